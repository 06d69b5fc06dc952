/*
 * fuzz_smtp_reply.c - libFuzzer harness for the SMTP reply parser (proxy/origin/smtp_reply.c).
 * The input is a server's byte stream: replies are parsed one after another until one is incomplete or malformed,
 * and each complete one is read as an EHLO reply too. Invariants: no crash or out-of-bounds read; a complete reply
 * lies within the input and the bounds (SMTP_REPLY_MAX, SMTP_REPLY_LINE_MAX per line), has a code 200-599, no NUL,
 * as many readable lines as it claims, parses the same on its own and is need-more one octet short; a malformed
 * input says why; a need-more input has no malformed prefix; extension keywords stay within their buffer.
 */
#include "smtp_reply.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_complete(const char *p, const char *end, const struct smtp_reply *r)
{
	struct smtp_reply again;
	struct smtp_ehlo e;
	const char *why, *text;
	char enhanced[16];
	size_t i, len;

	if (r->len == 0 || r->len > (size_t)(end - p) || r->len > SMTP_REPLY_MAX || r->code < 200 || r->code > 599 ||
	    r->n_lines == 0 || r->last_off + r->last_len > r->len || memchr(p, '\0', r->len) != NULL)
		abort();
	if (smtp_reply_parse(p, p + r->len, &again, &why) != SMTP_REPLY_COMPLETE || memcmp(&again, r, sizeof(again)))
		abort();
	if (smtp_reply_parse(p, p + r->len - 1, &again, &why) != SMTP_REPLY_NEED_MORE)
		abort();
	for (i = 0; i < r->n_lines; i++) {
		if (smtp_reply_line(p, r, i, &text, &len) != 0 || text < p || text + len > p + r->len ||
		    len + 4 > SMTP_REPLY_LINE_MAX)
			abort();
	}
	if (smtp_reply_line(p, r, r->n_lines, &text, &len) != -1)
		abort();
	smtp_ehlo_parse(p, r, &e);
	if (memchr(e.keywords, '\0', sizeof(e.keywords)) == NULL)
		abort();
	if (e.flags & ~0x3ffu)
		abort();
	if (smtp_reply_enhanced(r->code, p + r->last_off, r->last_len, enhanced, sizeof(enhanced)) == 0 &&
	    (strlen(enhanced) < 5 || strlen(enhanced) > 9 || enhanced[0] != (char)('0' + r->code / 100)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *why;
	struct smtp_reply r;
	enum smtp_reply_status st;

	while ((st = smtp_reply_parse(p, end, &r, &why)) == SMTP_REPLY_COMPLETE) {
		if (why != NULL)
			abort();
		check_complete(p, end, &r);
		p += r.len;
	}
	if (st == SMTP_REPLY_MALFORMED && why == NULL)
		abort();
	if (st == SMTP_REPLY_NEED_MORE) {
		/* Need-more is never preceded by a malformed prefix, and never exceeds the bound. */
		if (why != NULL || (size_t)(end - p) >= SMTP_REPLY_MAX ||
		    smtp_reply_parse(p, p + (end - p) / 2, &r, &why) == SMTP_REPLY_MALFORMED)
			abort();
	}
	return 0;
}

/*
 * fuzz_http_resp.c - libFuzzer harness for the response re-framer (proxy/http_resp.c).
 * The first input byte picks the piece size and the client's kind (HTTP/1.0 or 1.1, HEAD or not); the rest is
 * the origin's byte stream, fed in pieces, then EOF. Invariants: no crash; consumed never exceeds what was given;
 * what reaches the client starts with our status line; an HTTP/1.0 client never sees chunked framing announced
 * (a Transfer-Encoding field in the head of the final response; the body may hold any bytes, those too).
 */
#include "http_resp.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What reached the client: its length, and its first bytes (enough for every head: 16 KiB of fields and ours). */
struct sink {
	size_t len;
	char start[40 * 1024];
};

static void emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	size_t i;

	for (i = 0; i < n && s->len + i < sizeof(s->start); i++)
		s->start[s->len + i] = p[i];
	s->len += n;
}

/* final_head_has_te - the head of the final response (after any 1xx heads) has a Transfer-Encoding field; the
 * body is not looked at (its bytes may read like anything). 0 when that head is not all there. */
static int final_head_has_te(const struct sink *s)
{
	size_t have = s->len < sizeof(s->start) ? s->len : sizeof(s->start), pos = 0, i;
	const char *end;

	for (;;) {
		end = memmem(s->start + pos, have - pos, "\r\n\r\n", 4);
		if (end == NULL || have - pos < 14)
			return 0;
		/* "HTTP/1.1 1xx " other than 101: an informational head, the final one follows */
		if (s->start[pos + 9] == '1' && isdigit((unsigned char)s->start[pos + 10]) &&
		    isdigit((unsigned char)s->start[pos + 11]) && s->start[pos + 12] == ' ' &&
		    memcmp(s->start + pos + 9, "101", 3) != 0) {
			pos = (size_t)(end - s->start) + 4;
			continue;
		}
		for (i = pos; i + 20 <= (size_t)(end - s->start) + 2; i++)
			if (s->start[i] == '\n' && strncasecmp(s->start + i + 1, "transfer-encoding:", 18) == 0)
				return 1;
		return 0;
	}
}

static struct http_resp resp;
static struct sink s;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error, *why;
	size_t piece, pos = 0, n, consumed;
	enum http_resp_status st = HTTP_RESP_MORE;
	int http10;

	if (size < 1)
		return 0;
	s.len = 0;   /* start[] matters only up to len */
	piece = (data[0] & 0x3f) + 1;
	http10 = (data[0] & 0x40) != 0;
	http_resp_init(&resp, (data[0] & 0x80) != 0, http10 ? 0 : 1, 1, emit, &s);
	if ((data[0] & 0x3f) % 2 == 1)
		http_resp_expect_upgrade(&resp);   /* half the inputs come after an upgrade request */
	data++;
	size--;
	while (pos < size && st == HTTP_RESP_MORE) {
		n = size - pos < piece ? size - pos : piece;
		st = http_resp_feed(&resp, (const char *)data + pos, n, &consumed, &error, &why);
		if (consumed > n || (st == HTTP_RESP_MORE && consumed != n))
			abort();
		if (st == HTTP_RESP_ERROR && (error == NULL || why == NULL))
			abort();
		pos += consumed;
	}
	if (st == HTTP_RESP_MORE)
		http_resp_eof(&resp, &error, &why);
	if (s.len > 0 && memcmp(s.start, "HTTP/1.1", s.len < 8 ? s.len : 8) != 0)
		abort();
	if (http10 && resp.dechunk && final_head_has_te(&s))
		abort();
	/* a 101 switches protocols only when the request asked for it */
	if (st == HTTP_RESP_UPGRADED && !resp.upgrade_asked)
		abort();
	return 0;
}

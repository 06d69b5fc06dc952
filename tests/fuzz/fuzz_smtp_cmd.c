/*
 * fuzz_smtp_cmd.c - libFuzzer harness for the smarthost's parser of what mail clients send
 * (proxy/daemon/smtp_cmd.c). The input's first octet picks a split size; the rest is a client's byte stream.
 * Every line of it is parsed as a command; the whole stream is also scanned as message content, in pieces of that
 * size and in one piece. Invariants: no crash or out-of-bounds access; a parsed path, argument and domain are
 * NUL-terminated within their buffers, paths hold no controls or spaces, a RCPT domain is lower case; a failed
 * parse says why; the content scanner consumes everything unless it found the end, emits exactly the octets before
 * the end in order (its output is a prefix of the input minus the final "." CRLF), and answers the same whatever the
 * split.
 */
#include "smtp_cmd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	char *out;
	size_t len, cap;
};

static void emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	if (s->len + n > s->cap)
		abort();
	memcpy(s->out + s->len, p, n);
	s->len += n;
}

static void check_cmd(const char *line, size_t len)
{
	struct smtp_cmd c;
	int rc = smtp_cmd_parse(line, len, &c);

	if (memchr(c.arg, '\0', sizeof(c.arg)) == NULL || memchr(c.path, '\0', sizeof(c.path)) == NULL ||
	    memchr(c.domain, '\0', sizeof(c.domain)) == NULL)
		abort();
	if ((rc < 0) != (c.error != NULL))
		abort();
	if (rc == 0 && (c.verb == SMTP_CMD_MAIL || c.verb == SMTP_CMD_RCPT)) {
		for (const char *p = c.path; *p; p++)
			if ((unsigned char)*p <= 0x20 || *p == 0x7f)
				abort();
	}
	if (rc == 0 && c.verb == SMTP_CMD_RCPT) {
		if (c.domain[0] == '\0')
			abort();
		for (const char *p = c.domain; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				abort();
	}
}

/* scan - the content in pieces of split octets: what was emitted, the octets used, whether it ended. */
static size_t scan(const char *p, size_t len, size_t split, struct sink *s, int *done)
{
	struct smtp_data_scan sc;
	size_t off = 0, used = 0;

	s->len = 0;
	*done = 0;
	smtp_data_scan_init(&sc);
	while (off < len && !*done) {
		size_t n = len - off < split ? len - off : split;
		size_t u = smtp_data_scan(&sc, p + off, n, emit, s, done);
		if (u > n || (!*done && u != n))
			abort();
		used = off + u;
		off += n;
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *nl;
	struct sink a, b;
	size_t split, used_a, used_b;
	int done_a, done_b;

	if (size < 1)
		return 0;
	split = (size_t)data[0] % 16 + 1;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	/* every line a command (without its CRLF), the last one even without a line ending */
	for (const char *line = p; line < end; line = nl + 1) {
		size_t n;
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			nl = end;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n < SMTP_CMD_LINE_MAX)
			check_cmd(line, n);
	}
	a.cap = b.cap = size;
	a.out = malloc(size);
	b.out = malloc(size);
	if (a.out == NULL || b.out == NULL)
		abort();
	used_a = scan(p, size - 1, split, &a, &done_a);
	used_b = scan(p, size - 1, size, &b, &done_b);
	if (done_a != done_b || a.len != b.len || memcmp(a.out, b.out, a.len) != 0)
		abort();
	if (done_a && used_a != used_b)
		abort();
	if (done_a) {
		/* the end is CRLF "." CRLF (or "." CRLF at the very start), and the content is what came before it */
		if (used_a < 3 || memcmp(p + used_a - 3, ".\r\n", 3) != 0 || a.len != used_a - 3 ||
		    (used_a > 3 && memcmp(p + used_a - 5, "\r\n", 2) != 0))
			abort();
	} else if (a.len > size - 1) {
		abort();
	}
	if (memcmp(a.out, p, a.len) != 0)
		abort();
	free(a.out);
	free(b.out);
	return 0;
}

/*
 * fuzz_http_resp.c - libFuzzer harness for the response re-framer (proxy/http_resp.c).
 * The first input byte picks the piece size and the client's kind (HTTP/1.0 or 1.1, HEAD or not); the rest is
 * the origin's byte stream, fed in pieces, then EOF. Invariants: no crash; consumed never exceeds what was given;
 * what reaches the client starts with our status line; an HTTP/1.0 client never sees chunked framing announced.
 */
#include "http_resp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	size_t len;
	char start[9];
	int saw_te;
};

static void emit(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;
	size_t i;

	for (i = 0; i < n && s->len + i < 8; i++)
		s->start[s->len + i] = p[i];
	/* The head is emitted a line per call: a field line starts the call. */
	if (n >= 18 && strncasecmp(p, "transfer-encoding:", 18) == 0)
		s->saw_te = 1;
	s->len += n;
}

static struct http_resp resp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sink s;
	const char *error, *why;
	size_t piece, pos = 0, n, consumed;
	enum http_resp_status st = HTTP_RESP_MORE;
	int http10;

	if (size < 1)
		return 0;
	memset(&s, 0, sizeof(s));
	piece = (data[0] & 0x3f) + 1;
	http10 = (data[0] & 0x40) != 0;
	http_resp_init(&resp, (data[0] & 0x80) != 0, http10 ? 0 : 1, 1, emit, &s);
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
	if (http10 && resp.dechunk && s.saw_te)
		abort();
	return 0;
}

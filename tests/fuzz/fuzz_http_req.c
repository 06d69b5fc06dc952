/*
 * fuzz_http_req.c - libFuzzer harness for the client request parser and the origin-form rewrite.
 * The input is split at a fuzzer-chosen point (first byte) to exercise heads arriving in pieces, then fed
 * as the proxy does: head, target rewrite, body, next pipelined request. Invariants: no crash, consumed
 * never exceeds what was given, forwarded ranges stay inside the input, the rewritten head ends in CRLFCRLF.
 */
#include "http_req.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct http_req req;
static struct http_target target;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *why;
	size_t split, consumed, off, len, chunk;
	enum http_req_status st;
	int status, rounds = 0;
	char *copy;

	if (size < 1)
		return 0;
	split = data[0];
	copy = malloc(size - 1 ? size - 1 : 1);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	p = copy;
	end = copy + size - 1;
	http_req_init(&req);
	while (p < end && rounds++ < 64) {
		/* head, in up to two pieces */
		st = HTTP_REQ_MORE;
		while (p < end && st == HTTP_REQ_MORE) {
			chunk = (size_t)(end - p);
			if (split > 0 && chunk > split)
				chunk = split;
			st = http_req_feed_head(&req, p, chunk, &consumed, &status, &why);
			if (consumed > chunk)
				abort();
			p += consumed;
			if (st == HTTP_REQ_MORE && consumed < chunk)
				abort();   /* MORE means everything was taken */
		}
		if (st != HTTP_REQ_HEAD_DONE)
			break;
		if (http_req_target(&req, &target, &why) == 0) {
			if (target.head_len < 4 || target.head_len > sizeof(target.head) ||
			    memcmp(target.head + target.head_len - 4, "\r\n\r\n", 4) != 0)
				abort();
		}
		st = HTTP_REQ_MORE;
		while (p < end && st == HTTP_REQ_MORE) {
			st = http_req_feed_body(&req, p, (size_t)(end - p), &consumed, &off, &len, &why);
			if (consumed > (size_t)(end - p) || off + len > consumed)
				abort();
			p += consumed;
			if (st == HTTP_REQ_MORE && consumed == 0)
				break;
		}
		if (st != HTTP_REQ_BODY_DONE)
			break;
		http_req_next(&req);
	}
	free(copy);
	return 0;
}

/*
 * test_http_resp.c - unit tests of the response re-framer (proxy/http_resp.c).
 *
 * A driver feeds an origin's byte stream in pieces of every size and collects what would reach the client. Whatever
 * the piece size the result is the same: our status line, no hop-by-hop fields, bodies byte for byte (chunked framing
 * kept for HTTP/1.1 clients, removed for HTTP/1.0 clients), Connection: close where the client connection ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_resp.h"

struct sink {
	char buf[65536];
	size_t len;
};

static void sink_emit(void *arg, const char *data, size_t len)
{
	struct sink *s = arg;

	assert_true(s->len + len <= sizeof(s->buf));
	memcpy(s->buf + s->len, data, len);
	s->len += len;
}

struct result {
	enum http_resp_status st;   /* how it ended; MORE means the input ran out (then EOF is tried if asked) */
	const char *error;
	const char *why;
	size_t consumed;            /* bytes of the input used */
	int close_after;
	struct sink out;
};

static int upgrade_asked;   /* run(): the request asked to upgrade */

/* run - feed [in, in + len) piece bytes at a time (0: all at once); eof: the origin closes at the end. */
static struct result *run(const char *in, size_t len, size_t piece, int head, int minor, int keep, int eof)
{
	struct result *res = test_calloc(1, sizeof(*res));
	struct http_resp *r = test_malloc(sizeof(*r));
	size_t pos = 0, n, consumed;

	http_resp_init(r, head, minor, keep, sink_emit, &res->out);
	if (upgrade_asked)
		http_resp_expect_upgrade(r);
	res->st = HTTP_RESP_MORE;
	while (pos < len) {
		n = piece == 0 || len - pos < piece ? len - pos : piece;
		res->st = http_resp_feed(r, in + pos, n, &consumed, &res->error, &res->why);
		assert_true(consumed <= n);
		pos += consumed;
		if (res->st != HTTP_RESP_MORE)
			break;
		assert_int_equal(consumed, n);
	}
	if (res->st == HTTP_RESP_MORE && eof)
		res->st = http_resp_eof(r, &res->error, &res->why);
	res->consumed = pos;
	res->close_after = r->close_after;
	test_free(r);
	return res;
}

static const size_t pieces[] = {0, 1, 2, 5, 13};

/* expect - every piece size gives this status, these client bytes and this consumption. */
static void expect(const char *in, int head, int minor, int keep, int eof, enum http_resp_status st, const char *want,
		   size_t consumed, int close_after)
{
	size_t i;

	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct result *res = run(in, strlen(in), pieces[i], head, minor, keep, eof);
		if (res->st != st)
			fail_msg("piece %zu: status %d, want %d (%s)", pieces[i], (int)res->st, (int)st, res->why ? res->why : "");
		if (res->out.len != strlen(want) || memcmp(res->out.buf, want, res->out.len) != 0)
			fail_msg("piece %zu: client got\n%.*s\n--- want\n%s", pieces[i], (int)res->out.len, res->out.buf, want);
		assert_int_equal(res->consumed, consumed);
		assert_int_equal(res->close_after, close_after);
		test_free(res);
	}
}

/* Issue 10: the client sees HTTP/1.1 whatever the origin's version; a 1.0 origin without keep-alive ends the
 * client connection, and the head says so. */
static void test_status_line_is_ours(void **state)
{
	static const char in[] = "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc";

	(void)state;
	expect(in, 0, 1, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
	       strlen(in), 1);
	expect("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 0, 1, 1, 0, HTTP_RESP_DONE,
	       "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 45, 0);
}

/* RFC 9110 7.6.1: hop-by-hop fields and those the origin's Connection lists stay on that hop. */
static void test_hop_by_hop_removed(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nConnection: X-Hop, keep-alive\r\nKeep-Alive: timeout=5\r\n"
				 "X-Hop: secret\r\nX-Keep: 1\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhi";

	(void)state;
	expect(in, 0, 1, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nhi", strlen(in), 0);
}

/* Chunked framing reaches an HTTP/1.1 client unchanged, trailers included. */
static void test_chunked_kept_for_11(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";

	(void)state;
	expect(in, 0, 1, 1, 0, HTTP_RESP_DONE,
	       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", strlen(in), 0);
}

/* Issue 9 finding 7: an HTTP/1.0 client cannot read chunked framing: it gets the data, and the close ends it. */
static void test_dechunked_for_10(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";

	(void)state;
	expect(in, 0, 0, 0, 0, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nX-A: b\r\nConnection: close\r\n\r\nabcde", strlen(in), 1);
	/* A length-delimited body is passed on as it is; the connection still closes after it. */
	expect("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 0, 0, 1, 0, HTTP_RESP_DONE,
	       "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", 41, 1);
}

/* refused_chunked - every piece size: ERROR with the framing token, and none of the body reached the client. */
static void refused_chunked(const char *body, int minor)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	char in[512];
	size_t i, n;

	n = (size_t)snprintf(in, sizeof(in), "%s%s", head, body);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		struct result *res = run(in, n, pieces[i], 0, minor, 1, 1);
		if (res->st != HTTP_RESP_ERROR)
			fail_msg("piece %zu: %s accepted", pieces[i], body);
		assert_string_equal(res->error, "http_protocol_error");
		/* what reached the client: the head, and at most chunk data that came before the bad byte */
		if (minor == 1 && (res->out.len < 20 || memmem(res->out.buf, res->out.len, "XY", 2) != NULL ||
				   memmem(res->out.buf, res->out.len, "SMUGGLED", 8) != NULL))
			fail_msg("piece %zu: client got\n%.*s", pieces[i], (int)res->out.len, res->out.buf);
		test_free(res);
	}
}

/*
 * Chunked framing is checked strictly before http_parser (built lenient by Debian) sees it: framing the proxy read
 * one way and the client another would let the origin end a response early and answer the client's next request.
 */
static void test_chunked_strict(void **state)
{
	(void)state;
	refused_chunked("5\r\nhelloXY0\r\n\r\n", 1);                 /* no CRLF after the data */
	refused_chunked("5\r\nhelloXY0\r\n\r\n", 0);                 /* the same to an HTTP/1.0 client */
	refused_chunked("3 junk\r\nabc\r\n0\r\n\r\n", 1);             /* junk after the size */
	refused_chunked("3\nabc\r\n0\r\n\r\n", 1);                     /* bare LF */
	refused_chunked("0x3\r\nabc\r\n0\r\n\r\n", 1);                /* not hex */
	refused_chunked("-3\r\nabc\r\n0\r\n\r\n", 1);
	refused_chunked("\r\n3\r\nabc\r\n0\r\n\r\n", 1);            /* no size */
	refused_chunked("10000000000000000\r\nabc", 1);              /* 17 digits */
	refused_chunked("3;a\x01b\r\nabc\r\n0\r\n\r\n", 1);          /* control byte in an extension */
	refused_chunked("3\r\nabc\r\n0\r\nT: 1\n\r\n", 1);            /* bare LF in a trailer */
	refused_chunked("3\r\nabc\r\n0\r\nT: 1\r\n folded\r\n\r\n", 1); /* obs-fold in trailers */
	/* What RFC 9112 allows still passes, byte for byte: extensions with BWS, upper-case hex, leading zeros,
	 * trailers. */
	expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00A ; ext=\"q v\"\r\n0123456789\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
	       0, 1, 1, 0, HTTP_RESP_DONE,
	       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00A ; ext=\"q v\"\r\n0123456789\r\n0\r\nT: 1\r\nU: 2\r\n\r\n",
	       93, 0);
	/* Leading zeros are no digits of the size (RFC 9112 allows them; a 16th significant digit is refused). */
	expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000003\r\nabc\r\n0\r\n\r\n", 0, 1, 1, 0,
	       HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000003\r\nabc\r\n0\r\n\r\n", 79, 0);
	refused_chunked("1000000000000000\r\nabc", 1);
	/* The message ends where the strict reading ends it; what follows is not passed on as part of it. */
	expect("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nX: SMUGGLED\r\n\r\n",
	       0, 1, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 59, 0);
}

/* A body delimited by the origin's close ends the client connection too; EOF completes it, a cut is an error. */
static void test_close_delimited(void **state)
{
	static const char in[] = "HTTP/1.1 200 OK\r\n\r\nuntil the end";
	struct result *res;

	(void)state;
	expect(in, 0, 1, 1, 1, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", strlen(in), 1);
	res = run("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 41, 0, 0, 1, 1, 1);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "http_response_incomplete");
	test_free(res);
	res = run("HTTP/1.1 200 O", 14, 0, 0, 1, 1, 1);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "connection_terminated");
	assert_int_equal(res->out.len, 0);
	test_free(res);
}

/* HEAD, 204 and 304 have no body whatever the fields say; the next bytes are not ours. */
static void test_bodiless(void **state)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
	static const char s204[] = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n";

	(void)state;
	expect(head, 1, 1, 1, 0, HTTP_RESP_DONE, head, strlen(head), 0);
	expect(s204, 0, 1, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 204 No Content\r\n\r\n", 27, 0);
}

/* 1xx heads go through and the final response follows. */
static void test_informational(void **state)
{
	static const char in[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";

	(void)state;
	expect(in, 0, 1, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	       strlen(in), 0);
	/* An HTTP/1.0 client gets no 1xx (it has none), only the final response. */
	expect(in, 0, 0, 1, 0, HTTP_RESP_DONE, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx", strlen(in),
	       1);
	/* A 1xx has no body whatever its framing fields say (found by fuzz_http_resp): what follows its head is the
	 * next response, never bytes passed on as a body of the 1xx. */
	expect("HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 0, 1, 1,
	       0, HTTP_RESP_DONE,
	       "HTTP/1.1 100 Continue\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 93, 0);
	expect("HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 0, 1, 1, 0, HTTP_RESP_DONE,
	       "HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", 74, 0);
}

/* 101: Upgrade goes through with Connection: upgrade; what follows the head belongs to the new protocol. */
static void test_upgrade(void **state)
{
	static const char in[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Accept: x\r\n\r\n\x81\x02hi";

	struct result *res;

	(void)state;
	upgrade_asked = 1;
	expect(in, 0, 1, 1, 0, HTTP_RESP_UPGRADED,
	       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: x\r\nConnection: upgrade\r\n\r\n",
	       strlen(in) - 4, 0);
	upgrade_asked = 0;
	/* A 101 to a request that asked for no upgrade: an error before a byte reaches the client (a raw relay would
	 * hand the client's next requests to this origin). */
	res = run(in, strlen(in), 0, 0, 1, 1, 0);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "http_protocol_error");
	assert_non_null(strstr(res->why, "asked for no upgrade"));
	assert_int_equal(res->out.len, 0);
	test_free(res);
	res = run("HTTP/1.1 101 Switching Protocols\r\n\r\n", 36, 1, 0, 1, 1, 0);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_int_equal(res->out.len, 0);
	test_free(res);
}

static void test_errors(void **state)
{
	char *big = test_malloc(40000);
	struct result *res;
	size_t n = 0;
	int i;

	(void)state;
	res = run("HTTP/1.1 1 200 OK\r\nContent-Length: 0\r\n\r\n", 40, 0, 0, 1, 1, 0);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "http_protocol_error");
	assert_int_equal(res->out.len, 0);
	test_free(res);
	res = run("SMTP 220 hello\r\n", 16, 0, 0, 1, 1, 0);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "http_protocol_error");
	test_free(res);
	n += (size_t)sprintf(big, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 300; i++)
		n += (size_t)sprintf(big + n, "X-Pad-%03d: %s\r\n", i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	n += (size_t)sprintf(big + n, "\r\n");
	res = run(big, n, 0, 0, 1, 1, 0);
	assert_int_equal(res->st, HTTP_RESP_ERROR);
	assert_string_equal(res->error, "http_response_header_section_size");
	assert_int_equal(res->out.len, 0);
	test_free(res);
	test_free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_line_is_ours),
		cmocka_unit_test(test_hop_by_hop_removed),
		cmocka_unit_test(test_chunked_kept_for_11),
		cmocka_unit_test(test_dechunked_for_10),
		cmocka_unit_test(test_chunked_strict),
		cmocka_unit_test(test_close_delimited),
		cmocka_unit_test(test_bodiless),
		cmocka_unit_test(test_informational),
		cmocka_unit_test(test_upgrade),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

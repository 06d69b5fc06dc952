/*
 * test_http_req.c - unit tests of the client request parser (proxy/http_req.c).
 *
 * A driver feeds a byte stream the way http.c does (a buffer that grows by `piece` bytes at a time, parsed as
 * far as it goes, consumed bytes dropped) and records, per message, the rewritten origin-form head and the
 * body bytes the parser says to forward. Whatever the piece size, the result must be the same: heads with
 * Host from the URL and no hop-by-hop fields, bodies forwarded byte for byte (chunk framing included), the
 * head's final LF never forwarded, pipelined requests split exactly. Limits and malformed input end in the
 * documented status (400, 403, 414, 431), never in a crash or an overread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_req.h"

#define MAX_MSGS 4
#define MAX_BODY 8192

/* One parsed message: its rewritten head (or the status refusing it) and its forwarded body. */
struct msg {
	int target_status;          /* http_req_target's answer: 0 or an HTTP status */
	const char *target_why;
	struct http_target t;
	char method[24];
	int keep_alive;
	int is_head;
	int is_connect;
	size_t head_end;            /* stream offset where the head was complete (its final LF) */
	char body[MAX_BODY];        /* the forwarded bytes */
	size_t body_len;
	size_t end;                 /* stream offset just after the message */
	int body_done;
};

struct run {
	struct msg msgs[MAX_MSGS];
	size_t n;                   /* messages with a complete head */
	enum http_req_status last;  /* how the run ended: MORE (ran out of input), ERROR, BODY_DONE */
	int status;                 /* on a head error */
	const char *why;
	size_t pos;                 /* bytes consumed in all */
};

/* run_stream - parse [buf, buf + len) arriving `piece` bytes at a time, as http.c would. Pure bookkeeping
 * plus the invariants every call must keep; a target refusal or an error ends the run. */
static struct run *run_stream(const char *buf, size_t len, size_t piece)
{
	struct run *out = test_calloc(1, sizeof(*out));
	struct http_req *r = test_malloc(sizeof(*r));
	size_t pos = 0, avail = piece < len ? piece : len, consumed, off, flen;
	int in_body = 0, first_body_call = 0;
	struct msg *m = NULL;

	assert_non_null(out);
	assert_non_null(r);
	http_req_init(r);
	for (;;) {
		size_t given = avail - pos;
		enum http_req_status st;

		if (!in_body) {
			int status = -1;
			const char *why = NULL;
			st = http_req_feed_head(r, buf + pos, given, &consumed, &status, &why);
			assert_true(consumed <= given);
			if (st == HTTP_REQ_ERROR) {
				assert_true(status >= 400 && status <= 599);
				assert_non_null(why);
				out->status = status;
				out->why = why;
				out->last = st;
				break;
			}
			pos += consumed;
			if (st == HTTP_REQ_MORE) {
				assert_int_equal(consumed, given);   /* MORE: everything given was used */
			} else {
				assert_int_equal(st, HTTP_REQ_HEAD_DONE);
				assert_true(out->n < MAX_MSGS);
				m = &out->msgs[out->n++];
				m->head_end = pos;
				snprintf(m->method, sizeof(m->method), "%s", r->method);
				m->keep_alive = r->keep_alive;
				m->is_head = r->is_head;
				m->is_connect = r->is_connect;
				m->target_status = http_req_target(r, &m->t, &m->target_why);
				if (m->target_status != 0) {
					assert_non_null(m->target_why);
					out->last = st;
					break;
				}
				assert_true(m->t.head_len < sizeof(m->t.head));
				in_body = 1;
				first_body_call = 1;
				continue;
			}
		} else {
			const char *why = NULL;
			st = http_req_feed_body(r, buf + pos, given, &consumed, &off, &flen, &why);
			if (st == HTTP_REQ_ERROR) {
				assert_non_null(why);
				out->why = why;
				out->last = st;
				break;
			}
			assert_true(consumed <= given);
			assert_true(off + flen <= consumed);
			if (given > 0 && first_body_call) {
				/* The first byte is the head's final LF: consumed, never forwarded. */
				assert_int_equal(buf[pos], '\n');
				assert_int_equal(off, 1);
				first_body_call = 0;
			} else {
				assert_int_equal(off, 0);
			}
			assert_int_equal(off + flen, consumed);   /* everything else consumed is forwarded */
			assert_true(m->body_len + flen <= sizeof(m->body));
			memcpy(m->body + m->body_len, buf + pos + off, flen);
			m->body_len += flen;
			pos += consumed;
			if (st == HTTP_REQ_MORE) {
				assert_int_equal(consumed, given);
			} else {
				assert_int_equal(st, HTTP_REQ_BODY_DONE);
				m->end = pos;
				m->body_done = 1;
				in_body = 0;
				http_req_next(r);
				if (pos == len) {
					out->last = st;
					break;
				}
				continue;
			}
		}
		/* MORE: wait for the next piece, or stop at the end of the input. */
		if (avail == len) {
			out->last = HTTP_REQ_MORE;
			break;
		}
		avail = avail + piece < len ? avail + piece : len;
	}
	out->pos = pos;
	test_free(r);
	return out;
}

/* piece sizes every stream is tried with (0 = all at once) */
static const size_t pieces[] = {0, 1, 2, 3, 7, 64};
#define N_PIECES (sizeof(pieces) / sizeof(pieces[0]))

static struct run *run_piece(const char *buf, size_t len, size_t piece)
{
	return run_stream(buf, len, piece == 0 ? len : piece);
}

static void expect_head(const struct msg *m, const char *want)
{
	if (m->target_status != 0)
		fail_msg("target refused: %d %s", m->target_status, m->target_why);
	if (m->t.head_len != strlen(want) || memcmp(m->t.head, want, m->t.head_len) != 0)
		fail_msg("head\n--- got:\n%.*s--- want:\n%s---", (int)m->t.head_len, m->t.head, want);
}

/* expect_rewrite - one bodiless request, any piece size: the head, host and port, and a clean end. */
static void expect_rewrite(const char *req, const char *want_head, const char *host, uint16_t port)
{
	size_t i, len = strlen(req);

	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		if (run->n != 1 || run->last != HTTP_REQ_BODY_DONE)
			fail_msg("piece %zu: %zu messages, last %d, status %d (%s)", pieces[i], run->n, (int)run->last,
				 run->status, run->why ? run->why : "");
		expect_head(&run->msgs[0], want_head);
		assert_string_equal(run->msgs[0].t.host, host);
		assert_int_equal(run->msgs[0].t.port, port);
		assert_int_equal(run->msgs[0].body_len, 0);
		assert_int_equal(run->msgs[0].end, len);
		assert_int_equal(run->msgs[0].head_end, len - 1);   /* stopped on the final LF */
		test_free(run);
	}
}

/* head_error - the status a malformed head gets, whatever the piece size (and the same for all). */
static int head_error(const char *req, size_t len)
{
	size_t i;
	int status = 0;

	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		if (run->last != HTTP_REQ_ERROR || run->n != 0)
			fail_msg("piece %zu: no head error (last %d, %zu messages)", pieces[i], (int)run->last, run->n);
		if (i > 0 && run->status != status)
			fail_msg("piece %zu: status %d, all at once %d", pieces[i], run->status, status);
		status = run->status;
		test_free(run);
	}
	return status;
}

/* head_status_whole - the head error status when the request arrives in one piece, 0 when the head passes. */
static int head_status_whole(const char *req, size_t len)
{
	struct run *run = run_piece(req, len, 0);
	int status = run->last == HTTP_REQ_ERROR ? run->status : 0;

	test_free(run);
	return status;
}

/* target_error - the status http_req_target gives a well-formed head. */
static int target_error(const char *req)
{
	struct run *run = run_piece(req, strlen(req), 0);
	int status;

	if (run->n != 1)
		fail_msg("head not parsed: status %d (%s)", run->status, run->why ? run->why : "");
	status = run->msgs[0].target_status;
	test_free(run);
	return status;
}

/* ---------- the origin-form rewrite ---------- */

static void test_rewrite_get(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/path?q=1&r=%20 HTTP/1.1\r\n"
		       "Host: wrong.example\r\n"
		       "User-Agent: test/1.0\r\n"
		       "Connection: keep-alive\r\n"
		       "Proxy-Connection: keep-alive\r\n"
		       "Keep-Alive: timeout=5\r\n"
		       "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
		       "TE: trailers\r\n"
		       "Trailer: X-Checksum\r\n"
		       "Accept: */*\r\n"
		       "X-List: a, b;q=0.5\r\n"
		       "Cookie: a=1; b=2\r\n"
		       "\r\n",
		       "GET /path?q=1&r=%20 HTTP/1.1\r\n"
		       "Host: example.com\r\n"
		       "User-Agent: test/1.0\r\n"
		       "Accept: */*\r\n"
		       "X-List: a, b;q=0.5\r\n"
		       "Cookie: a=1; b=2\r\n"
		       "\r\n",
		       "example.com", 443);
}

/* Hop-by-hop names are matched without regard to case; end-to-end names keep the client's spelling. */
static void test_rewrite_hop_by_hop_any_case(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\n"
		       "x-first: 1\r\n"
		       "CONNECTION: keep-alive\r\n"
		       "proxy-connection: keep-alive\r\n"
		       "KEEP-ALIVE: 1\r\n"
		       "proxy-AUTHORIZATION: x\r\n"
		       "te: trailers\r\n"
		       "TRAILER: y\r\n"
		       "hOsT: evil.example\r\n"
		       "X-Last: 2\r\n"
		       "\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nx-first: 1\r\nX-Last: 2\r\n\r\n", "example.com", 443);
}

/* Headers the client repeats stay, in order, each with its own value. */
static void test_rewrite_order_and_repeats(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\n"
		       "Accept: text/html\r\n"
		       "Via: 1.1 a\r\n"
		       "Accept: application/json\r\n"
		       "Host: a\r\n"
		       "Host: b\r\n"
		       "X-Z: z\r\n"
		       "\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: text/html\r\nVia: 1.1 a\r\n"
		       "Accept: application/json\r\nX-Z: z\r\n\r\n",
		       "example.com", 443);
}

static void test_rewrite_ports(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com:8443/a HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "GET /a HTTP/1.1\r\nHost: example.com:8443\r\n\r\n", "example.com", 8443);
	/* The default port is not written. */
	expect_rewrite("GET https://example.com:443/a HTTP/1.1\r\n\r\n", "GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "example.com", 443);
	expect_rewrite("GET https://example.com:1/ HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: example.com:1\r\n\r\n",
		       "example.com", 1);
	expect_rewrite("GET https://example.com:65535/ HTTP/1.1\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com:65535\r\n\r\n", "example.com", 65535);
}

static void test_rewrite_ipv6(void **state)
{
	(void)state;
	expect_rewrite("GET https://[::1]:8443/x?y HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
		       "GET /x?y HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n", "::1", 8443);
	expect_rewrite("GET https://[2001:db8::1]/ HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n",
		       "2001:db8::1", 443);
	expect_rewrite("GET https://192.0.2.1:444/ HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: 192.0.2.1:444\r\n\r\n",
		       "192.0.2.1", 444);
}

static void test_rewrite_missing_path(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "example.com", 443);
	expect_rewrite("GET https://example.com:8443 HTTP/1.1\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com:8443\r\n\r\n", "example.com", 8443);
	expect_rewrite("GET https://example.com?q=1 HTTP/1.1\r\n\r\n", "GET /?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "example.com", 443);
}

/* The fragment is the client's business; userinfo never becomes part of Host. */
static void test_rewrite_fragment_userinfo(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/p?q#frag HTTP/1.1\r\n\r\n",
		       "GET /p?q HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443);
	expect_rewrite("GET https://user:pw@example.com/p HTTP/1.1\r\n\r\n",
		       "GET /p HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443);
}

static void test_rewrite_scheme_case_and_methods(void **state)
{
	struct run *run;
	const char *req = "HEAD HTTPS://example.com/ HTTP/1.1\r\n\r\n";

	(void)state;
	expect_rewrite(req, "HEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443);
	run = run_piece(req, strlen(req), 0);
	assert_string_equal(run->msgs[0].method, "HEAD");
	assert_int_equal(run->msgs[0].is_head, 1);
	test_free(run);
	expect_rewrite("DELETE https://example.com/x HTTP/1.1\r\n\r\n", "DELETE /x HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "example.com", 443);
	expect_rewrite("OPTIONS https://example.com/ HTTP/1.1\r\n\r\n", "OPTIONS / HTTP/1.1\r\nHost: example.com\r\n\r\n",
		       "example.com", 443);
}

/* ---------- persistence ---------- */

static void test_http10_connection_close(void **state)
{
	struct run *run;
	const char *req = "GET https://example.com/ HTTP/1.0\r\nAccept: */*\r\n\r\n";

	(void)state;
	expect_rewrite(req, "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		       "example.com", 443);
	run = run_piece(req, strlen(req), 0);
	assert_int_equal(run->msgs[0].keep_alive, 0);
	test_free(run);

	/* HTTP/1.0 asking for keep-alive: persistent, nothing added, its Keep-Alive dropped. */
	expect_rewrite("GET https://example.com/ HTTP/1.0\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "example.com", 443);
	/* HTTP/1.1 asking to close. */
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\nConnection: close\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n", "example.com", 443);
	/* HTTP/1.1 by default: persistent. */
	req = "GET https://example.com/ HTTP/1.1\r\n\r\n";
	run = run_piece(req, strlen(req), 0);
	assert_int_equal(run->msgs[0].keep_alive, 1);
	test_free(run);
}

/* ---------- bodies ---------- */

static void test_content_length_body(void **state)
{
	static const char req[] = "POST https://example.com/submit HTTP/1.1\r\n"
				  "Content-Type: text/plain\r\n"
				  "Content-Length: 26\r\n"
				  "\r\n"
				  "abcdefghijklm\r\nnopqrstuvw\n";   /* CR and LF in the body are just bytes */
	const char *body = strstr(req, "\r\n\r\n") + 4;
	size_t i, len = sizeof(req) - 1;

	(void)state;
	assert_int_equal(strlen(body), 26);
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		assert_int_equal(run->n, 1);
		assert_int_equal(run->last, HTTP_REQ_BODY_DONE);
		expect_head(&run->msgs[0], "POST /submit HTTP/1.1\r\nHost: example.com\r\nContent-Type: text/plain\r\n"
					   "Content-Length: 26\r\n\r\n");
		assert_int_equal(run->msgs[0].head_end, (size_t)(body - req) - 1);
		assert_int_equal(run->msgs[0].body_len, 26);
		assert_memory_equal(run->msgs[0].body, body, 26);
		assert_int_equal(run->msgs[0].end, len);
		test_free(run);
	}
}

/* A body that stops short: everything given is forwarded, and the message is not done. */
static void test_content_length_incomplete(void **state)
{
	static const char req[] = "PUT https://example.com/f HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345";
	size_t i;

	(void)state;
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, sizeof(req) - 1, pieces[i]);
		assert_int_equal(run->n, 1);
		assert_int_equal(run->last, HTTP_REQ_MORE);
		assert_int_equal(run->msgs[0].body_done, 0);
		assert_int_equal(run->msgs[0].body_len, 5);
		assert_memory_equal(run->msgs[0].body, "12345", 5);
		assert_int_equal(run->pos, sizeof(req) - 1);
		test_free(run);
	}
}

/* Direct calls: the first body call skips the head's LF; the last returns BODY_DONE and leaves the rest. */
static void test_body_calls_direct(void **state)
{
	static const char req[] = "POST https://example.com/ HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloNEXT";
	struct http_req *r = test_malloc(sizeof(*r));
	size_t consumed, off, flen, pos;
	int status;
	const char *why;

	(void)state;
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, req, sizeof(req) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	pos = consumed;
	assert_int_equal(req[pos], '\n');
	/* Only the LF so far. */
	assert_int_equal(http_req_feed_body(r, req + pos, 1, &consumed, &off, &flen, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 1);
	assert_int_equal(off, 1);
	assert_int_equal(flen, 0);
	pos += consumed;
	assert_int_equal(http_req_feed_body(r, req + pos, 2, &consumed, &off, &flen, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 2);
	assert_int_equal(off, 0);
	assert_int_equal(flen, 2);
	pos += consumed;
	assert_int_equal(http_req_feed_body(r, req + pos, sizeof(req) - 1 - pos, &consumed, &off, &flen, &why),
			 HTTP_REQ_BODY_DONE);
	assert_int_equal(consumed, 3);
	assert_int_equal(off, 0);
	assert_int_equal(flen, 3);
	assert_memory_equal(req + pos, "llo", 3);
	pos += consumed;
	assert_string_equal(req + pos, "NEXT");
	/* Done is done: more calls consume nothing. */
	assert_int_equal(http_req_feed_body(r, req + pos, 4, &consumed, &off, &flen, &why), HTTP_REQ_BODY_DONE);
	assert_int_equal(consumed, 0);
	assert_int_equal(flen, 0);
	test_free(r);
}

static void test_chunked_body(void **state)
{
	static const char req[] = "POST https://example.com/up HTTP/1.1\r\n"
				  "Transfer-Encoding: chunked\r\n"
				  "\r\n"
				  "5\r\nhello\r\n"
				  "6;ext=1\r\n world\r\n"
				  "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
				  "0\r\n\r\n";
	const char *raw = strstr(req, "\r\n\r\n") + 4;
	size_t i, len = sizeof(req) - 1;

	(void)state;
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		assert_int_equal(run->n, 1);
		assert_int_equal(run->last, HTTP_REQ_BODY_DONE);
		expect_head(&run->msgs[0],
			    "POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n");
		/* Forwarded raw: chunk sizes, extensions and CRLFs included, up to the end of the last chunk. */
		assert_int_equal(run->msgs[0].body_len, strlen(raw));
		assert_memory_equal(run->msgs[0].body, raw, strlen(raw));
		assert_int_equal(run->msgs[0].end, len);
		test_free(run);
	}
}

static void test_chunked_with_trailers(void **state)
{
	static const char req[] = "POST https://example.com/ HTTP/1.1\r\n"
				  "Transfer-Encoding: chunked\r\n"
				  "\r\n"
				  "3\r\nabc\r\n"
				  "0\r\n"
				  "X-Checksum: 1234\r\n"
				  "\r\n"
				  "GET https://example.com/next HTTP/1.1\r\n\r\n";
	const char *raw = strstr(req, "\r\n\r\n") + 4;
	const char *next = strstr(req, "GET ");
	size_t i, len = sizeof(req) - 1;

	(void)state;
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		assert_int_equal(run->n, 2);
		assert_int_equal(run->msgs[0].body_len, (size_t)(next - raw));
		assert_memory_equal(run->msgs[0].body, raw, (size_t)(next - raw));
		assert_int_equal(run->msgs[0].end, (size_t)(next - req));
		/* The trailer did not leak into the next head. */
		expect_head(&run->msgs[1], "GET /next HTTP/1.1\r\nHost: example.com\r\n\r\n");
		test_free(run);
	}
}

static void test_chunked_incomplete(void **state)
{
	static const char req[] = "POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
				  "5\r\nhel";
	size_t i;

	(void)state;
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, sizeof(req) - 1, pieces[i]);
		assert_int_equal(run->last, HTTP_REQ_MORE);
		assert_int_equal(run->msgs[0].body_done, 0);
		assert_int_equal(run->msgs[0].body_len, 6);
		assert_memory_equal(run->msgs[0].body, "5\r\nhel", 6);
		test_free(run);
	}
}

/* ---------- pipelining ---------- */

static void test_pipelined(void **state)
{
	static const char req[] = "POST https://a.example/one HTTP/1.1\r\n"
				  "Content-Length: 3\r\n"
				  "X-One: 1\r\n"
				  "\r\n"
				  "abc"
				  "GET https://b.example:8443/two HTTP/1.1\r\n"
				  "X-Two: 2\r\n"
				  "\r\n"
				  "GET https://c.example/three HTTP/1.1\r\n"
				  "\r\n";
	size_t first_end = (size_t)(strstr(req, "abc") - req) + 3;
	size_t second_end = (size_t)(strstr(req, "GET https://c") - req);
	size_t i, len = sizeof(req) - 1;

	(void)state;
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		if (run->n != 3)
			fail_msg("piece %zu: %zu messages (status %d %s)", pieces[i], run->n, run->status,
				 run->why ? run->why : "");
		assert_int_equal(run->last, HTTP_REQ_BODY_DONE);
		expect_head(&run->msgs[0], "POST /one HTTP/1.1\r\nHost: a.example\r\nContent-Length: 3\r\nX-One: 1\r\n\r\n");
		assert_int_equal(run->msgs[0].body_len, 3);
		assert_memory_equal(run->msgs[0].body, "abc", 3);
		assert_int_equal(run->msgs[0].end, first_end);
		/* The second head starts right after the first body, and carries nothing of the first. */
		expect_head(&run->msgs[1], "GET /two HTTP/1.1\r\nHost: b.example:8443\r\nX-Two: 2\r\n\r\n");
		assert_string_equal(run->msgs[1].t.host, "b.example");
		assert_int_equal(run->msgs[1].t.port, 8443);
		assert_int_equal(run->msgs[1].body_len, 0);
		assert_int_equal(run->msgs[1].end, second_end);
		expect_head(&run->msgs[2], "GET /three HTTP/1.1\r\nHost: c.example\r\n\r\n");
		assert_int_equal(run->msgs[2].end, len);
		test_free(run);
	}
}

/* ---------- errors ---------- */

static void test_origin_form_400(void **state)
{
	(void)state;
	assert_int_equal(target_error("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400);
	assert_int_equal(target_error("GET /path?q HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400);
	assert_int_equal(target_error("OPTIONS * HTTP/1.1\r\nHost: example.com\r\n\r\n"), 400);
}

static void test_http_scheme_403(void **state)
{
	(void)state;
	assert_int_equal(target_error("GET http://example.com/ HTTP/1.1\r\n\r\n"), 403);
	assert_int_equal(target_error("GET HTTP://example.com:443/ HTTP/1.1\r\n\r\n"), 403);
	assert_int_equal(target_error("GET ftp://example.com/ HTTP/1.1\r\n\r\n"), 403);
	assert_int_equal(target_error("GET httpss://example.com/ HTTP/1.1\r\n\r\n"), 403);
}

static void test_bad_port_400(void **state)
{
	(void)state;
	assert_int_equal(target_error("GET https://example.com:0/ HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(target_error("GET https://example.com:65536/ HTTP/1.1\r\n\r\n"), 400);
}

/* CONNECT is the tunnel code's: the head parses, says CONNECT, and is never rewritten into origin-form. */
static void test_connect_not_rewritten(void **state)
{
	static const char req[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
	struct run *run = run_piece(req, sizeof(req) - 1, 0);

	(void)state;
	assert_int_equal(run->n, 1);
	assert_int_equal(run->msgs[0].is_connect, 1);
	assert_string_equal(run->msgs[0].method, "CONNECT");
	assert_true(run->msgs[0].target_status >= 400);
	assert_int_equal(run->msgs[0].head_end, sizeof(req) - 2);
	test_free(run);
}

/* After a CONNECT head, the bytes that follow (the TLS ClientHello) are not part of any HTTP message. */
static void test_connect_body_is_empty(void **state)
{
	static const char req[] = "CONNECT example.com:443 HTTP/1.1\r\n\r\n\x16\x03\x01\x02\x00\x01";
	struct http_req *r = test_malloc(sizeof(*r));
	size_t consumed, off, flen;
	int status;
	const char *why;

	(void)state;
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, req, sizeof(req) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	assert_int_equal(r->is_connect, 1);
	assert_int_equal(req[consumed], '\n');
	assert_int_equal(http_req_feed_body(r, req + consumed, sizeof(req) - 1 - consumed, &consumed, &off, &flen, &why),
			 HTTP_REQ_BODY_DONE);
	assert_int_equal(consumed, 1);
	assert_int_equal(flen, 0);
	test_free(r);
}

/* build_long_url - "GET https://example.com/aaaa... HTTP/1.1\r\n\r\n" with a URL of url_len bytes. */
static char *build_long_url(size_t url_len, size_t *len)
{
	static const char prefix[] = "https://example.com/";
	char *buf = test_malloc(url_len + 64);
	size_t n = 0;

	assert_true(url_len > sizeof(prefix));
	memcpy(buf, "GET ", 4);
	n = 4;
	memcpy(buf + n, prefix, sizeof(prefix) - 1);
	memset(buf + n + sizeof(prefix) - 1, 'a', url_len - (sizeof(prefix) - 1));
	n += url_len;
	memcpy(buf + n, " HTTP/1.1\r\n\r\n", 13);
	n += 13;
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void test_url_too_long_414(void **state)
{
	size_t len;
	char *req;
	struct run *run;

	(void)state;
	req = build_long_url(9000, &len);
	assert_int_equal(head_error(req, len), 414);
	test_free(req);
	req = build_long_url(HTTP_REQ_MAX_URL + 1, &len);
	assert_int_equal(head_error(req, len), 414);
	test_free(req);
	/* A long URL under the limit is fine, and is written out whole. */
	req = build_long_url(8000, &len);
	run = run_piece(req, len, 0);
	assert_int_equal(run->n, 1);
	assert_int_equal(run->msgs[0].target_status, 0);
	assert_int_equal(run->msgs[0].t.head_len, strlen("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n") + 8000 - 20);
	test_free(run);
	test_free(req);
}

/* build_head - a request head of about `size` bytes: URL of url_len, then filler headers `name: xxx...`. */
static char *build_head(size_t url_len, const char *name, size_t header_len, size_t n_headers, size_t *len)
{
	char *buf = test_malloc(url_len + n_headers * (header_len + 2) + 64);
	size_t n = 0, i;

	n += (size_t)sprintf(buf, "GET https://example.com/");
	memset(buf + n, 'u', url_len - 20);
	n += url_len - 20;
	n += (size_t)sprintf(buf + n, " HTTP/1.1\r\n");
	for (i = 0; i < n_headers; i++) {
		size_t nl = (size_t)sprintf(buf + n, "%s: ", name);
		memset(buf + n + nl, 'v', header_len - nl);
		n += header_len;
		buf[n++] = '\r';
		buf[n++] = '\n';
	}
	buf[n++] = '\r';
	buf[n++] = '\n';
	buf[n] = '\0';
	*len = n;
	return buf;
}

static void test_head_too_large_431(void **state)
{
	size_t len;
	char *req;

	(void)state;
	/* 20 end-to-end headers of 1000 bytes. */
	req = build_head(30, "X-Fill", 1000, 20, &len);
	assert_true(len > HTTP_REQ_MAX_HEAD);
	assert_int_equal(head_error(req, len), 431);
	test_free(req);
	/* One huge header. */
	req = build_head(30, "X-Big", 17000, 1, &len);
	assert_int_equal(head_error(req, len), 431);
	test_free(req);
	/* A header name longer than the parser keeps. */
	req = build_head(30, "X-Long-Name-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
			 400, 1, &len);
	assert_int_equal(head_error(req, len), 431);
	test_free(req);
}

/* A head just under the limit passes, however it arrives. */
static void test_head_under_limit(void **state)
{
	size_t len, i;
	char *req = build_head(1000, "X-Fill", 1000, 15, &len);

	(void)state;
	assert_true(len < HTTP_REQ_MAX_HEAD && len > HTTP_REQ_MAX_HEAD - 1000);
	for (i = 0; i < N_PIECES; i++) {
		struct run *run = run_piece(req, len, pieces[i]);
		if (run->n != 1 || run->msgs[0].target_status != 0)
			fail_msg("piece %zu: %zu messages, status %d", pieces[i], run->n, run->status);
		test_free(run);
	}
	test_free(req);
}

/* The 16 KiB limit is on the head, not on what is kept of it, and does not depend on how the bytes arrive. */
static void test_head_limit_independent_of_feeding(void **state)
{
	size_t len, i;
	char *req[2];
	const char *what[2] = {"a 4000-byte URL and 13 KB of kept headers (17 KB of head)",
			       "one 17 KB Proxy-Authorization header (dropped by the rewrite)"};
	int failed = 0;

	(void)state;
	req[0] = build_head(4000, "X-Fill", 1000, 13, &len);
	assert_true(len > HTTP_REQ_MAX_HEAD + 512);
	req[1] = build_head(30, "Proxy-Authorization", 17000, 1, &len);
	for (i = 0; i < 2; i++) {
		size_t p;
		for (p = 0; p < N_PIECES; p++) {
			struct run *run = run_piece(req[i], strlen(req[i]), pieces[p]);
			if (run->last != HTTP_REQ_ERROR || run->status != 431) {
				print_error("%s, piece %zu: %s (status %d), want 431\n", what[i], pieces[p],
					    run->last == HTTP_REQ_ERROR ? "error" : "accepted", run->status);
				failed = 1;
			}
			test_free(run);
		}
	}
	test_free(req[0]);
	test_free(req[1]);
	if (failed)
		fail();
}

static void test_malformed_400(void **state)
{
	static const char nul_name[] = "GET https://example.com/ HTTP/1.1\r\nX-A\0b: 1\r\n\r\n";
	static const char nul_value[] = "GET https://example.com/ HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
	static const char nul_line[] = "GET https://example.com/ HTTP/1.1\r\n\0\r\n\r\n";
	static const char nul_url[] = "GET https://example.com/\0 HTTP/1.1\r\n\r\n";
	static const char *const garbage[] = {
		"GET https://example.com/ HTTP/1.1\r\nthis is not a header\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\nX-(A): b\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\nX-A: b\x7f\r\n\r\n",
		"HELLO\r\n\r\n",
		"GET\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"GET https://exa mple.com/ HTTP/1.1\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	};
	size_t i;

	(void)state;
	assert_int_equal(head_error(nul_name, sizeof(nul_name) - 1), 400);
	assert_int_equal(head_error(nul_value, sizeof(nul_value) - 1), 400);
	assert_int_equal(head_error(nul_line, sizeof(nul_line) - 1), 400);
	assert_int_equal(head_error(nul_url, sizeof(nul_url) - 1), 400);
	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		print_message("  malformed case %zu\n", i);
		assert_int_equal(head_error(garbage[i], strlen(garbage[i])), 400);
	}
}

/* RFC 9112 5.1: whitespace between a field name and its colon is a 400. Forwarded as is, "Transfer-Encoding :"
 * would frame the body one way here (no body) and another way at an origin that tolerates the space. */
static void test_space_before_colon_400(void **state)
{
	static const char *const bad[] = {
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\nX-A\t: b\r\n\r\n",
	};
	size_t i;
	int failed = 0;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int status = head_status_whole(bad[i], strlen(bad[i]));
		if (status != 400) {
			print_error("space-before-colon case %zu: status %d, want 400\n", i, status);
			failed = 1;
		}
	}
	if (failed)
		fail();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(head_error(bad[i], strlen(bad[i])), 400);
}

/* Framing that could smuggle a second request: both Content-Length and chunked, or two lengths. */
static void test_ambiguous_framing_400(void **state)
{
	static const char *const bad[] = {
		"POST https://example.com/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (head_error(bad[i], strlen(bad[i])) != 400)
			fail_msg("not 400: %s", bad[i]);
}

/* A zero-length feed is never EOF and never an error, whatever state the parser is in. */
static void test_zero_length_feed(void **state)
{
	static const char part[] = "GET https://example.com/ HT";
	static const char rest[] = "TP/1.1\r\nContent-Length: 2\r\n\r\n";
	struct http_req *r = test_malloc(sizeof(*r));
	size_t consumed = 99, off = 99, flen = 99;
	int status = 0;
	const char *why = NULL;

	(void)state;
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, "", 0, &consumed, &status, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(http_req_feed_head(r, part, 0, &consumed, &status, &why), HTTP_REQ_MORE);
	assert_int_equal(http_req_feed_head(r, part, sizeof(part) - 1, &consumed, &status, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, sizeof(part) - 1);
	assert_int_equal(http_req_feed_head(r, "", 0, &consumed, &status, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(http_req_feed_head(r, rest, strlen(rest), &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	assert_int_equal(consumed, strlen(rest) - 1);
	/* In the body. */
	assert_int_equal(http_req_feed_body(r, "", 0, &consumed, &off, &flen, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 0);
	assert_int_equal(off, 0);
	assert_int_equal(flen, 0);
	assert_int_equal(http_req_feed_body(r, "\na", 2, &consumed, &off, &flen, &why), HTTP_REQ_MORE);
	assert_int_equal(http_req_feed_body(r, "", 0, &consumed, &off, &flen, &why), HTTP_REQ_MORE);
	assert_int_equal(http_req_feed_body(r, "b", 1, &consumed, &off, &flen, &why), HTTP_REQ_BODY_DONE);
	assert_int_equal(http_req_feed_body(r, "", 0, &consumed, &off, &flen, &why), HTTP_REQ_BODY_DONE);
	assert_int_equal(consumed, 0);
	/* After an error, too. */
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, "\x01\x02", 2, &consumed, &status, &why), HTTP_REQ_ERROR);
	assert_int_equal(http_req_feed_head(r, "", 0, &consumed, &status, &why), HTTP_REQ_MORE);
	assert_int_equal(consumed, 0);
	test_free(r);
}

/* ---------- RFC 9110 / 9112 duties of a proxy ---------- */

/* RFC 9110 7.6.1: fields named in Connection are hop-by-hop too and must not be forwarded. */
static void test_connection_listed_fields_dropped(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\n"
		       "Connection: X-Hop, close\r\n"
		       "X-Hop: secret\r\n"
		       "X-Keep: 1\r\n"
		       "\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nX-Keep: 1\r\nConnection: close\r\n\r\n", "example.com", 443);
}

/* RFC 9112 5.2: obs-fold is rejected with 400 (a proxy may not forward it, and http_parser would fold
 * "Transfer-Encoding:\r\n chunked" into chunked silently), whatever the field and however the bytes arrive. */
static void test_obs_fold(void **state)
{
	static const char *const folded[] = {
		"GET https://example.com/ HTTP/1.1\r\nX-Folded: foo\r\n bar\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\nX-Folded: foo\r\n\tbar\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length:\r\n 3\r\n\r\nabc",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(folded) / sizeof(folded[0]); i++) {
		print_message("  obs-fold case %zu\n", i);
		assert_int_equal(head_error(folded[i], strlen(folded[i])), 400);
	}
	/* A blank inside a value, or at the start of the request line's successor value, is not a fold. */
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\nX-A: a  b\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: a  b\r\n\r\n", "example.com", 443);
}

/* Issue 9 finding 3: Content-Length, Transfer-Encoding and Host are never dropped because Connection names
 * them (the origin would read the body as a second request): such a request is a 400 before anything is sent. */
static void test_connection_lists_framing_400(void **state)
{
	static const char *const bad[] = {
		"POST https://example.com/ HTTP/1.1\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nGET /",
		"POST https://example.com/ HTTP/1.1\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET https://example.com/ HTTP/1.1\r\nConnection: close, HOST\r\nHost: evil.example\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nContent-Length: 5\r\nConnection: keep-alive\r\nConnection: content-length\r\n\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("  case %zu\n", i);
		assert_int_equal(head_error(bad[i], strlen(bad[i])), 400);
	}
}

/* Issue 9 finding 4: every Transfer-Encoding we would frame differently from some origin is refused at the head,
 * so the origin never receives it: unknown codings, codings after chunked, and the field twice. */
static void test_transfer_encoding_strict_400(void **state)
{
	static const char *const bad[] = {
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
		"POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("  case %zu\n", i);
		assert_int_equal(head_error(bad[i], strlen(bad[i])), 400);
	}
	/* Exactly chunked, in any case and with blanks around it, is fine. */
	{
		static const char ok[] = "POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding:  ChunKed \r\n\r\n"
					 "3\r\nabc\r\n0\r\n\r\n";
		struct run *run = run_piece(ok, sizeof(ok) - 1, 0);
		assert_int_equal(run->n, 1);
		assert_int_equal(run->last, HTTP_REQ_BODY_DONE);
		test_free(run);
	}
}

/* Issue 9 finding 7: only HTTP/1.0 and HTTP/1.1 are spoken; other versions get 505 before anything is sent. */
static void test_versions_505(void **state)
{
	static const char *const bad[] = {
		"GET https://example.com/ HTTP/2.0\r\n\r\n",
		"GET https://example.com/ HTTP/1.9\r\n\r\n",
		"GET https://example.com/ HTTP/3.0\r\n\r\n",
		"GET https://example.com/ HTTP/0.9\r\n\r\n",
	};
	struct run *run;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("  case %zu\n", i);
		assert_int_equal(head_error(bad[i], strlen(bad[i])), 505);
	}
	run = run_piece("GET https://example.com/ HTTP/1.0\r\n\r\n", 37, 0);
	assert_int_equal(run->n, 1);
	test_free(run);
}

/* Issue 9 findings 4 and 14: a chunk size that overflows is refused by name, and http_req_body_check finds it in
 * the bytes already buffered, without changing the request, so the head is never forwarded. */
static void test_chunk_size_overflow(void **state)
{
	static const char head[] = "POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char body[] = "\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n";   /* the head's final LF first */
	static const char good[] = "\n3\r\nabc\r\n0\r\n\r\n";
	struct http_req *r = test_malloc(sizeof(*r));
	size_t consumed, off, len;
	const char *why = NULL;
	int status = 0;

	(void)state;
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, head, sizeof(head) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_body_check(r, good, sizeof(good) - 1, &why), 1);   /* complete */
	assert_int_equal(http_req_body_check(r, good, 5, &why), 0);                  /* fine so far */
	assert_int_equal(http_req_body_check(r, body, 3, &why), 0);   /* too little to tell yet */
	assert_int_equal(http_req_body_check(r, body, sizeof(body) - 1, &why), -1);
	assert_string_equal(why, "malformed chunked body: chunk size too large");
	/* The check left the parser where it was: the good body still parses. */
	assert_int_equal(http_req_feed_body(r, good, sizeof(good) - 1, &consumed, &off, &len, &why), HTTP_REQ_BODY_DONE);
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, head, sizeof(head) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_feed_body(r, body, sizeof(body) - 1, &consumed, &off, &len, &why), HTTP_REQ_ERROR);
	assert_string_equal(why, "malformed chunked body: chunk size too large");
	test_free(r);
}

/*
 * Debian's http_parser is built lenient (any two bytes end chunk data, junk after a chunk size is skipped): the
 * origin would read such framing its own way and find a request of the client's choosing in the body. Every such
 * shape is refused, by the body check before the head goes and by feed_body, whatever the piece size; none of its
 * body is ever passed on.
 */
static void test_chunked_strict(void **state)
{
	static const char *const bad[] = {
		"5\r\nhelloXY0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: victim\r\n\r\n",
		"3 junk\r\nabc\r\n0\r\n\r\n",
		"3\nabc\r\n0\r\n\r\n",
		"0x3\r\nabc\r\n0\r\n\r\n",
		"\r\n3\r\nabc\r\n0\r\n\r\n",
		"3;a\x01b\r\nabc\r\n0\r\n\r\n",
		"3\r\nabc\r\n0\r\nT: 1\n\r\n",
		"3\r\nabc\r\n0\r\nT: 1\r\n folded\r\n\r\n",
		"3\r\nabc\r0\r\n\r\n",
	};
	static const char head[] = "POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	char req[512];
	size_t i, j, n;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct http_req *r = test_malloc(sizeof(*r));
		size_t consumed;
		const char *why = NULL;
		int status = 0;

		n = (size_t)snprintf(req, sizeof(req), "%s%s", head, bad[i]);
		http_req_init(r);
		assert_int_equal(http_req_feed_head(r, req, sizeof(head) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
		if (http_req_body_check(r, req + consumed, n - consumed, &why) != -1)
			fail_msg("body check accepted %s", bad[i]);
		assert_non_null(strstr(why, "malformed chunked body"));
		test_free(r);
		for (j = 0; j < N_PIECES; j++) {
			struct run *run = run_piece(req, n, pieces[j]);
			if (run->last != HTTP_REQ_ERROR)
				fail_msg("piece %zu: accepted %s", pieces[j], bad[i]);
			assert_int_equal(run->n, 1);
			if (run->msgs[0].body_len > 0 && memmem(run->msgs[0].body, run->msgs[0].body_len, "smuggled", 8))
				fail_msg("piece %zu: forwarded the smuggled request", pieces[j]);
			test_free(run);
		}
	}
}

/* Issue 9 finding 14: trailers beyond 16 KiB are refused with a reason that says so. */
static void test_trailers_too_large(void **state)
{
	static const char head[] = "POST https://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	char *body = test_malloc(40000);
	struct http_req *r = test_malloc(sizeof(*r));
	size_t consumed, off, len, n = 0;
	const char *why = NULL;
	int status = 0, i;

	(void)state;
	n += (size_t)sprintf(body + n, "\n3\r\nabc\r\n0\r\n");
	for (i = 0; i < 300; i++)
		n += (size_t)sprintf(body + n, "X-Trailer-%03d: %s\r\n", i, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	n += (size_t)sprintf(body + n, "\r\n");
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, head, sizeof(head) - 1, &consumed, &status, &why), HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_feed_body(r, body, n, &consumed, &off, &len, &why), HTTP_REQ_ERROR);
	assert_string_equal(why, "request trailers larger than 16 KiB");
	test_free(r);
	test_free(body);
}

/* Issue 9 finding 5: a target host is kept in one normal form (lower case, no trailing dot), and a name with an
 * empty label is a 400, for absolute-form and CONNECT alike. */
static void test_target_names_normalised(void **state)
{
	static const char *const bad[] = {
		"GET https://notlsa.dane.test../ HTTP/1.1\r\n\r\n",
		"GET https://a..b/ HTTP/1.1\r\n\r\n",
		"GET https://.example.com/ HTTP/1.1\r\n\r\n",
		"GET https://exa%41mple.com/ HTTP/1.1\r\n\r\n",
	};
	struct run *run;
	struct http_req *r = test_malloc(sizeof(*r));
	char host[256];
	uint16_t port = 0;
	size_t i, consumed;
	const char *why = NULL;
	int status;

	(void)state;
	expect_rewrite("GET https://NOTLSA.Dane.Test./x HTTP/1.1\r\n\r\n",
		       "GET /x HTTP/1.1\r\nHost: notlsa.dane.test\r\n\r\n", "notlsa.dane.test", 443);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run = run_piece(bad[i], strlen(bad[i]), 0);
		print_message("  case %zu: n %zu last %d status %d\n", i, run->n, (int)run->last, run->status);
		if (run->n == 1)
			assert_int_equal(run->msgs[0].target_status, 400);
		else
			assert_int_equal(run->status, 400);
		test_free(run);
	}
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, "CONNECT WWW.Dane.Test.:8443 HTTP/1.1\r\n\r\n", 42, &consumed, &status, &why),
			 HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_connect_target(r, host, sizeof(host), &port, &why), 0);
	assert_string_equal(host, "www.dane.test");
	assert_int_equal(port, 8443);
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, "CONNECT www.dane.test..:8443 HTTP/1.1\r\n\r\n", 42, &consumed, &status, &why),
			 HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_connect_target(r, host, sizeof(host), &port, &why), 400);
	http_req_init(r);
	assert_int_equal(http_req_feed_head(r, "CONNECT [::1]:443 HTTP/1.1\r\n\r\n", 32, &consumed, &status, &why),
			 HTTP_REQ_HEAD_DONE);
	assert_int_equal(http_req_connect_target(r, host, sizeof(host), &port, &why), 0);
	assert_string_equal(host, "::1");
	test_free(r);
}

/* Issue 10: an upgrade request (WebSocket) keeps Upgrade and asks for it with Connection: upgrade; other fields
 * the client's Connection lists are still dropped, and a plain request never gets Upgrade through. */
static void test_upgrade_forwarded(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
		       "Connection: Upgrade, X-Hop\r\nX-Hop: 1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		       "Sec-WebSocket-Version: 13\r\n\r\n",
		       "GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n"
		       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nConnection: upgrade\r\n\r\n",
		       "example.com", 443);
	/* Upgrade without Connection: upgrade is not an upgrade request, and Upgrade is hop-by-hop: dropped. */
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\nUpgrade: websocket\r\nX-A: 1\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n", "example.com", 443);
}

/* A field with an empty value is forwarded as such, and the next field keeps its own name. */
static void test_empty_header_value(void **state)
{
	(void)state;
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\nX-Empty:\r\nX-Next: 1\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\nX-Next: 1\r\n\r\n", "example.com", 443);
	expect_rewrite("GET https://example.com/ HTTP/1.1\r\nX-Empty:   \r\nX-Next: 1\r\n\r\n",
		       "GET / HTTP/1.1\r\nHost: example.com\r\nX-Empty: \r\nX-Next: 1\r\n\r\n", "example.com", 443);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_get),
		cmocka_unit_test(test_rewrite_hop_by_hop_any_case),
		cmocka_unit_test(test_rewrite_order_and_repeats),
		cmocka_unit_test(test_rewrite_ports),
		cmocka_unit_test(test_rewrite_ipv6),
		cmocka_unit_test(test_rewrite_missing_path),
		cmocka_unit_test(test_rewrite_fragment_userinfo),
		cmocka_unit_test(test_rewrite_scheme_case_and_methods),
		cmocka_unit_test(test_http10_connection_close),
		cmocka_unit_test(test_content_length_body),
		cmocka_unit_test(test_content_length_incomplete),
		cmocka_unit_test(test_body_calls_direct),
		cmocka_unit_test(test_chunked_body),
		cmocka_unit_test(test_chunked_with_trailers),
		cmocka_unit_test(test_chunked_incomplete),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_origin_form_400),
		cmocka_unit_test(test_http_scheme_403),
		cmocka_unit_test(test_bad_port_400),
		cmocka_unit_test(test_connect_not_rewritten),
		cmocka_unit_test(test_connect_body_is_empty),
		cmocka_unit_test(test_url_too_long_414),
		cmocka_unit_test(test_head_too_large_431),
		cmocka_unit_test(test_head_under_limit),
		cmocka_unit_test(test_head_limit_independent_of_feeding),
		cmocka_unit_test(test_malformed_400),
		cmocka_unit_test(test_space_before_colon_400),
		cmocka_unit_test(test_ambiguous_framing_400),
		cmocka_unit_test(test_zero_length_feed),
		cmocka_unit_test(test_connection_listed_fields_dropped),
		cmocka_unit_test(test_obs_fold),
		cmocka_unit_test(test_connection_lists_framing_400),
		cmocka_unit_test(test_transfer_encoding_strict_400),
		cmocka_unit_test(test_versions_505),
		cmocka_unit_test(test_chunk_size_overflow),
		cmocka_unit_test(test_chunked_strict),
		cmocka_unit_test(test_trailers_too_large),
		cmocka_unit_test(test_target_names_normalised),
		cmocka_unit_test(test_empty_header_value),
		cmocka_unit_test(test_upgrade_forwarded),
	};

	return cmocka_run_group_tests_name("http_req", tests, NULL, NULL);
}

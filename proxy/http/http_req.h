/*
 * http_req.h - requests from proxy clients: the head parsed and rewritten in origin-form, the body framed.
 *
 * Pure (no I/O): http.c feeds it the client's bytes and forwards what it says belongs to the message;
 * the fuzzer feeds it anything. Framing is http_parser's (Content-Length, chunked); limits are ours.
 */
#ifndef DANEPROXY_HTTP_REQ_H
#define DANEPROXY_HTTP_REQ_H

#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "chunked.h"

#define HTTP_REQ_MAX_HEAD (16 * 1024)
#define HTTP_REQ_MAX_URL 8192
#define HTTP_REQ_MAX_HOST 256
#define HTTP_REQ_MAX_TRAILERS (16 * 1024)

enum http_req_status {
	HTTP_REQ_MORE,       /* everything given was consumed; send more */
	HTTP_REQ_HEAD_DONE,  /* the head is complete (http_req_feed_head) */
	HTTP_REQ_BODY_DONE,  /* the message is complete (http_req_feed_body) */
	HTTP_REQ_ERROR,      /* *status and *why say what to answer */
};

struct http_req {
	http_parser parser;
	size_t head_bytes;
	int lf_pending;          /* http_parser stopped on the head's final LF */
	int head_done;
	int body_done;
	int keep_alive;          /* the client wants the connection kept */
	int is_head;             /* HEAD: the response has no body */
	int is_connect;
	int upgrade;
	int http_minor;          /* 0 for HTTP/1.0 clients, 1 for HTTP/1.1 */
	int too_large;
	int url_too_long;
	int last_was_value;
	int skip_header;
	int at_line_start;       /* the last head byte seen was LF: a blank or tab now is obs-fold */
	int obs_fold;
	int n_transfer_encoding;        /* Transfer-Encoding fields seen */
	int in_transfer_encoding;       /* the value being parsed belongs to Transfer-Encoding */
	char transfer_encoding[64];     /* its value, lowercase, blanks dropped ("" when longer than this) */
	size_t transfer_encoding_len;
	size_t trailer_bytes;           /* chunked trailer section so far */
	struct chunked chunk;           /* the strict scan of a chunked body (chunked.h) */
	int framing_differs;            /* http_parser ended the message elsewhere than the strict scan */
	const char *body_error;         /* why the body (trailers) is refused, set by the callbacks */
	char method[24];
	char url[HTTP_REQ_MAX_URL];
	size_t url_len;
	char field[256];
	size_t field_len;
	int bad_field;                  /* a header name with characters outside RFC 9110 tchar */
	char conn_tokens[512];          /* header names listed in Connection, ",name,name," */
	size_t conn_tokens_len;
	int in_connection;              /* the value being parsed belongs to Connection */
	char hdrs[HTTP_REQ_MAX_HEAD];   /* end-to-end headers, "Name: value\r\n" each */
	size_t hdrs_len;
};

/* The destination and the rewritten head. */
struct http_target {
	char host[HTTP_REQ_MAX_HOST];   /* without brackets for IPv6 */
	uint16_t port;
	char head[HTTP_REQ_MAX_HEAD + HTTP_REQ_MAX_URL + 512];
	size_t head_len;
};

/* http_req_init - a new client connection. */
void http_req_init(struct http_req *r);
/* http_req_next - the previous message is complete: get ready for the next one (pipelined bytes may follow). */
void http_req_next(struct http_req *r);

/*
 * http_req_feed_head - parse head bytes; *consumed bytes were used (the rest belongs to the body or the next
 * request). On HTTP_REQ_ERROR, *status is the HTTP status to answer (400, 414, 431) and *why the reason.
 */
enum http_req_status http_req_feed_head(struct http_req *r, const char *data, size_t len, size_t *consumed,
					int *status, const char **why);

/*
 * http_req_feed_body - parse body bytes after the head; [*fwd_off, *fwd_off + *fwd_len) of data belongs to this
 * message and goes to the origin unchanged; *consumed bytes were used in all.
 */
enum http_req_status http_req_feed_body(struct http_req *r, const char *data, size_t len, size_t *consumed,
					size_t *fwd_off, size_t *fwd_len, const char **why);

/*
 * http_req_body_check - would [data, data + len), the body bytes buffered so far, be accepted by
 * http_req_feed_body? Runs a copy of the parser, so the request is unchanged. Used to refuse a malformed chunked
 * body before the head is forwarded, and to tell whether a client that went away had sent its whole request.
 * 1: they complete the message; 0: fine so far, incomplete; -1: malformed, with *why.
 */
int http_req_body_check(const struct http_req *r, const char *data, size_t len, const char **why);

/*
 * http_req_connect_target - the host and port of a CONNECT request ("host:port", "[v6]:port"): the host
 * normalised (hostname_normalize, IP literals as they are). Returns 0, or 400 with *why.
 */
int http_req_connect_target(const struct http_req *r, char *host, size_t hostlen, uint16_t *port, const char **why);

/*
 * http_req_target - check the absolute-form target and write the origin-form head: request line, Host from
 * the URL (RFC 9112 section 3.2.2), the end-to-end headers, and Connection as needed. The host is normalised
 * (hostname_normalize: lower case, no trailing dot, no empty label). Returns 0, or the HTTP status to answer
 * (400, 403, 431) with *why.
 */
int http_req_target(const struct http_req *r, struct http_target *t, const char **why);

#endif

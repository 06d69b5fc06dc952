/*
 * http_resp.h - responses from origins, re-framed for the client (RFC 9110 section 7.6, RFC 9112).
 *
 * Pure (no I/O): the caller feeds the origin's bytes and gets back, through an emit callback, exactly the bytes
 * to send to the client. The head is rewritten: our own version in the status line (an intermediary MUST send
 * its own, RFC 9112 section 2.3), hop-by-hop fields and those named in Connection removed, Connection added as
 * needed. The body goes through as the bytes that carried it (Content-Length or chunked framing unchanged), except
 * for HTTP/1.0 clients, which cannot read chunked framing: they get the chunk data only, and the end of the body is
 * the end of the connection. Chunked framing is checked strictly (RFC 9112 section 7.1) before a byte of it is
 * parsed or passed on: Debian's http_parser is built lenient, and framing it reads one way and the client another
 * would let an origin end a response where the client does not, and answer the client's next request itself.
 */
#ifndef DANEPROXY_HTTP_RESP_H
#define DANEPROXY_HTTP_RESP_H

#include <stddef.h>

#include <http_parser.h>

#include "chunked.h"

#define HTTP_RESP_MAX_HEAD (16 * 1024)

enum http_resp_status {
	HTTP_RESP_MORE,       /* everything given was consumed; send more (or call http_resp_eof at its end) */
	HTTP_RESP_DONE,       /* the final response is complete; *consumed bytes were used, the rest is not ours */
	HTTP_RESP_UPGRADED,   /* 101 sent on: the bytes after *consumed belong to the new protocol */
	HTTP_RESP_ERROR,      /* *why says what; *error is the RFC 9209 token */
};

/* http_resp_emit - bytes for the client, in order. */
typedef void (*http_resp_emit)(void *arg, const char *data, size_t len);

struct http_resp {
	http_parser parser;
	http_resp_emit emit;
	void *emit_arg;
	int request_head;        /* the request was HEAD: no body whatever the headers say */
	int client_http10;
	int client_keep_alive;
	int phase;               /* reading a head, forwarding its body, or done */
	size_t emitted;          /* bytes given to emit */
	int skip_lf;             /* the next byte is the head's final LF (http_parser stops on it when paused) */
	int done;
	int upgraded;
	int upgrade_asked;       /* the request asked to upgrade: only then may a 101 switch protocols */
	int bad_upgrade;         /* a 101 to a request that asked for none (refused) */
	int bad_status;          /* a status code outside 100-599 (refused) */
	int dechunk;             /* forward chunk data only (HTTP/1.0 client, chunked response) */
	int chunked;             /* the body is chunked: its framing is scanned strictly before http_parser sees it */
	struct chunked chunk;
	int framing_differs;     /* http_parser ended the message elsewhere than the strict scan */
	int close_after;         /* the client connection ends after this response */
	int status;              /* of the final response, 0 until seen */
	int too_large;
	int last_was_value;
	int skip_field;
	int in_connection;
	size_t field_len;
	char field[256];
	char conn_tokens[512];   /* names listed in Connection: ",a,b," */
	size_t conn_tokens_len;
	size_t hdrs_len;
	char hdrs[HTTP_RESP_MAX_HEAD];   /* kept fields, "Name: value\r\n" each */
	char reason[128];
	size_t reason_len;
};

/*
 * http_resp_init - a new response to a request: request_head (HEAD: no body), client_minor (0 for an HTTP/1.0
 * client), client_keep_alive (the client did not ask to close). emit receives the client's bytes.
 */
void http_resp_init(struct http_resp *r, int request_head, int client_minor, int client_keep_alive,
		    http_resp_emit emit, void *arg);

/*
 * http_resp_expect_upgrade - the request asked to upgrade (Upgrade in its Connection): a 101 may switch protocols.
 * Without it a 101 is an error (a raw relay would hand the client's next requests to this origin).
 */
void http_resp_expect_upgrade(struct http_resp *r);

/* http_resp_feed - parse origin bytes; see enum http_resp_status. */
enum http_resp_status http_resp_feed(struct http_resp *r, const char *data, size_t len, size_t *consumed,
				     const char **error, const char **why);

/* http_resp_eof - the origin closed: DONE when that ends the response (close-delimited body), else ERROR. */
enum http_resp_status http_resp_eof(struct http_resp *r, const char **error, const char **why);

/* http_resp_started - some of the response reached the emit callback. */
int http_resp_started(const struct http_resp *r);

#endif

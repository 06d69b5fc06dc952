/*
 * http_resp.c - parse origin responses and re-frame them for the client (see http_resp.h).
 *
 * http_parser is paused at the end of every head and every message, so that one http_parser_execute() call never
 * spans a head and a body: what a call in the body phase consumed is body (bar the head's final LF, which
 * http_parser only consumes after a pause at headers_complete), and the head is re-written, never copied.
 */
#include "http_resp.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { PHASE_HEAD, PHASE_BODY, PHASE_DONE };

static void out(struct http_resp *r, const char *p, size_t n)
{
	if (n == 0)
		return;
	r->emitted += n;
	r->emit(r->emit_arg, p, n);
}

static int hdrs_append(struct http_resp *r, const char *s, size_t n)
{
	if (r->hdrs_len + n > sizeof(r->hdrs)) {
		r->too_large = 1;
		return -1;
	}
	memcpy(r->hdrs + r->hdrs_len, s, n);
	r->hdrs_len += n;
	return 0;
}

/* hop_by_hop - RFC 9110 7.6.1: fields about this connection only (Upgrade is decided per status). */
static int hop_by_hop(const char *name, size_t len)
{
	static const char *const drop[] = {"connection", "proxy-connection", "keep-alive", "te"};
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strlen(drop[i]) == len && strncasecmp(name, drop[i], len) == 0)
			return 1;
	return 0;
}

static void end_field(struct http_resp *r)
{
	if (r->last_was_value && !r->skip_field)
		hdrs_append(r, "\r\n", 2);
	r->field_len = 0;
	r->skip_field = 0;
	r->last_was_value = 0;
}

static int on_begin(http_parser *p)
{
	struct http_resp *r = p->data;

	/* A new head (the first, or the final one after a 1xx). */
	r->hdrs_len = r->field_len = r->conn_tokens_len = r->reason_len = 0;
	r->conn_tokens[0] = r->reason[0] = '\0';
	r->last_was_value = r->skip_field = r->in_connection = 0;
	return 0;
}

static int on_status(http_parser *p, const char *at, size_t n)
{
	struct http_resp *r = p->data;
	size_t i;

	for (i = 0; i < n && r->reason_len + 1 < sizeof(r->reason); i++) {
		unsigned char ch = (unsigned char)at[i];
		r->reason[r->reason_len++] = (char)((ch >= 0x20 && ch < 0x7f) || ch == '\t' ? ch : '?');
	}
	r->reason[r->reason_len] = '\0';
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct http_resp *r = p->data;

	if (r->phase != PHASE_HEAD)
		return 0;   /* trailers: forwarded inside the body bytes (or dropped when de-chunking) */
	if (r->last_was_value)
		end_field(r);
	if (r->field_len + n >= sizeof(r->field)) {
		r->too_large = 1;
		return 1;
	}
	memcpy(r->field + r->field_len, at, n);
	r->field_len += n;
	r->field[r->field_len] = '\0';
	return 0;
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct http_resp *r = p->data;
	size_t i;

	if (r->phase != PHASE_HEAD)
		return 0;
	if (!r->last_was_value) {
		r->skip_field = hop_by_hop(r->field, r->field_len);
		r->in_connection = strcasecmp(r->field, "connection") == 0;
		if (r->in_connection && r->conn_tokens_len + 1 < sizeof(r->conn_tokens))
			r->conn_tokens[r->conn_tokens_len++] = ',';
		if (!r->skip_field && (hdrs_append(r, r->field, r->field_len) < 0 || hdrs_append(r, ": ", 2) < 0))
			return 1;
	}
	r->last_was_value = 1;
	if (r->in_connection) {
		for (i = 0; i < n && r->conn_tokens_len + 2 < sizeof(r->conn_tokens); i++) {
			char ch = at[i];
			if (ch == ' ' || ch == '\t')
				continue;
			r->conn_tokens[r->conn_tokens_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		}
		r->conn_tokens[r->conn_tokens_len] = '\0';
	}
	if (!r->skip_field && hdrs_append(r, at, n) < 0)
		return 1;
	return 0;
}

/* listed_in_connection - name (len bytes) is one the origin's Connection field lists. */
static int listed_in_connection(const struct http_resp *r, const char *name, size_t len)
{
	const char *p = r->conn_tokens, *end = r->conn_tokens + r->conn_tokens_len;

	while (p < end) {
		const char *comma;
		size_t n;
		while (p < end && *p == ',')
			p++;
		comma = memchr(p, ',', (size_t)(end - p));
		n = comma ? (size_t)(comma - p) : (size_t)(end - p);
		if (n == len && strncasecmp(p, name, len) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* keep_field - whether a kept header line (name at line, len bytes) goes to the client. */
static int keep_field(const struct http_resp *r, const char *name, size_t len)
{
	if (len == 7 && strncasecmp(name, "upgrade", 7) == 0)
		return r->status == 101;   /* the 101's Connection lists it: that is what makes it an upgrade */
	if (listed_in_connection(r, name, len))
		return 0;
	if (len == 17 && strncasecmp(name, "transfer-encoding", 17) == 0)
		return !r->dechunk;
	return 1;
}

/* emit_head - the client's head: our status line, the fields it may see, our Connection. */
static void emit_head(struct http_resp *r, int status)
{
	char line[200];
	size_t in = 0;
	int n;

	n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, r->reason);
	out(r, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	while (in < r->hdrs_len) {
		const char *l = r->hdrs + in;
		const char *eol = memchr(l, '\n', r->hdrs_len - in);
		const char *colon = memchr(l, ':', r->hdrs_len - in);
		size_t len = eol ? (size_t)(eol - l) + 1 : r->hdrs_len - in;
		if (colon != NULL && colon < l + len && keep_field(r, l, (size_t)(colon - l)))
			out(r, l, len);
		in += len;
	}
	if (status == 101)
		out(r, "Connection: upgrade\r\n", 21);
	else if (status >= 200 && r->close_after)
		out(r, "Connection: close\r\n", 19);
	out(r, "\r\n", 2);
}

static int on_headers_complete(http_parser *p)
{
	struct http_resp *r = p->data;
	int status = p->status_code, bodiless;

	end_field(r);
	if (r->too_large)
		return -1;
	r->phase = PHASE_BODY;
	r->skip_lf = 1;
	http_parser_pause(p, 1);
	if (status < 100 || status > 599) {
		r->bad_status = 1;   /* Debian's http_parser is built lenient: "HTTP/1.1 1 OK" gets this far */
		return -1;
	}
	if (status >= 100 && status < 200 && status != 101) {
		/* Informational: on to the final response. A 1xx never has a body (RFC 9110 15.2), whatever framing
		 * fields it carries: 1 tells http_parser so, which would otherwise read a chunked body after a
		 * "100 Continue" with Transfer-Encoding and pass bytes on that the client reads as the next response.
		 * An HTTP/1.0 client gets none: 1xx is not HTTP/1.0 (RFC 9110 15.2). */
		if (!r->client_http10)
			emit_head(r, status);
		return 1;
	}
	if (status == 101 && !r->upgrade_asked) {
		r->bad_upgrade = 1;
		return -1;
	}
	r->status = status;
	bodiless = r->request_head || status == 204 || status == 304;
	r->chunked = (p->flags & F_CHUNKED) && !bodiless && status != 101;
	memset(&r->chunk, 0, sizeof(r->chunk));
	r->dechunk = r->client_http10 && r->chunked;
	r->close_after = status != 101 && (r->client_http10 || !r->client_keep_alive || !http_should_keep_alive(p));
	emit_head(r, status);
	/* 1: the response to HEAD has no body whatever its headers say. */
	return r->request_head && status >= 200 ? 1 : 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct http_resp *r = p->data;

	if (r->dechunk)
		out(r, at, n);
	return 0;
}

static int on_complete(http_parser *p)
{
	struct http_resp *r = p->data;

	http_parser_pause(p, 1);
	if (r->status == 0) {
		r->phase = PHASE_HEAD;   /* that was a 1xx: the final response follows */
		return 0;
	}
	r->phase = PHASE_DONE;
	r->done = 1;
	r->upgraded = r->status == 101;
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_status = on_status,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

void http_resp_init(struct http_resp *r, int request_head, int client_minor, int client_keep_alive,
		    http_resp_emit emit, void *arg)
{
	memset(r, 0, sizeof(*r));
	http_parser_init(&r->parser, HTTP_RESPONSE);
	r->parser.data = r;
	r->request_head = request_head;
	r->client_http10 = client_minor == 0;
	r->client_keep_alive = client_keep_alive;
	r->emit = emit;
	r->emit_arg = arg;
	r->phase = PHASE_HEAD;
}

void http_resp_expect_upgrade(struct http_resp *r)
{
	r->upgrade_asked = 1;
}

/* parse_error - the RFC 9209 token and words for an http_parser failure. */
static enum http_resp_status parse_error(struct http_resp *r, const char **error, const char **why)
{
	if (r->bad_upgrade) {
		*error = "http_protocol_error";
		*why = "the origin switched protocols (101) for a request that asked for no upgrade";
	} else if (r->bad_status) {
		*error = "http_protocol_error";
		*why = "the origin's status code is not 100-599";
	} else if (r->chunk.error != NULL) {
		*error = "http_protocol_error";
		*why = r->chunk.error;
	} else if (r->framing_differs) {
		*error = "http_protocol_error";
		*why = chunked_err_framing_differs;
	} else if (r->too_large) {
		*error = "http_response_header_section_size";
		*why = "response head larger than 16 KiB";
	} else {
		*error = "http_protocol_error";
		*why = http_errno_description(HTTP_PARSER_ERRNO(&r->parser));
	}
	return HTTP_RESP_ERROR;
}

enum http_resp_status http_resp_feed(struct http_resp *r, const char *data, size_t len, size_t *consumed,
				     const char **error, const char **why)
{
	size_t pos = 0, n, skip, avail;
	enum http_errno err;
	int phase;

	*consumed = 0;
	while (pos < len && !r->done) {
		phase = r->phase;
		avail = len - pos;
		if (phase == PHASE_BODY && r->chunked) {
			/* Only bytes the strict check accepts reach http_parser, and it must end the message where the
			 * check does: no byte of framing the two read differently is parsed or passed on. */
			skip = r->skip_lf ? 1 : 0;
			if (avail > skip)
				avail = skip + chunked_scan(&r->chunk, data + pos + skip, avail - skip);
			if (r->chunk.error != NULL)
				return parse_error(r, error, why);
		}
		n = http_parser_execute(&r->parser, &settings, data + pos, avail);
		err = HTTP_PARSER_ERRNO(&r->parser);
		if (err != HPE_OK && err != HPE_PAUSED)
			return parse_error(r, error, why);
		if (phase == PHASE_BODY && r->chunked && (n != avail || r->done != chunked_done(&r->chunk))) {
			r->framing_differs = 1;
			return parse_error(r, error, why);
		}
		if (phase == PHASE_BODY && n > 0) {
			skip = r->skip_lf ? 1 : 0;
			r->skip_lf = 0;
			if (!r->dechunk && n > skip)
				out(r, data + pos + skip, n - skip);
		}
		pos += n;
		if (err == HPE_PAUSED)
			http_parser_pause(&r->parser, 0);
		else if (n == 0)
			break;   /* no progress without a pause: cannot happen, but never spin */
	}
	*consumed = pos;
	if (r->done)
		return r->upgraded ? HTTP_RESP_UPGRADED : HTTP_RESP_DONE;
	return HTTP_RESP_MORE;
}

enum http_resp_status http_resp_eof(struct http_resp *r, const char **error, const char **why)
{
	if (r->done)
		return r->upgraded ? HTTP_RESP_UPGRADED : HTTP_RESP_DONE;
	if (r->phase == PHASE_BODY) {
		/* EOF may be how the body ends (no length given). */
		r->skip_lf = 0;
		http_parser_execute(&r->parser, &settings, NULL, 0);
		if (r->done)
			return HTTP_RESP_DONE;
		*error = "http_response_incomplete";
		*why = "the origin closed the connection in the middle of the response body";
		return HTTP_RESP_ERROR;
	}
	*error = "connection_terminated";
	*why = "the origin closed the connection without a complete response";
	return HTTP_RESP_ERROR;
}

int http_resp_started(const struct http_resp *r)
{
	return r->emitted > 0;
}

/*
 * http_req.c - parse and rewrite requests from proxy clients (see http_req.h).
 *
 * http_parser is paused at the end of the head and at the end of the message, so the caller decides when to
 * go on. Paused at headers_complete, http_parser returns without consuming the head's final LF; lf_pending
 * remembers that the first byte fed to http_req_feed_body is that LF and not body.
 */
#include "http_req.h"
#include "text.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* hop_by_hop - headers that describe this connection only, or that the proxy sets itself. */
static int hop_by_hop(const char *name)
{
	static const char *const drop[] = {"connection", "proxy-connection", "keep-alive", "proxy-authorization",
					   "proxy-authenticate", "te", "trailer", "host"};
	size_t i;

	for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
		if (strcasecmp(name, drop[i]) == 0)
			return 1;
	return 0;
}

static int hdrs_append(struct http_req *r, const char *s, size_t n)
{
	if (r->hdrs_len + n > sizeof(r->hdrs)) {
		r->too_large = 1;
		return -1;
	}
	memcpy(r->hdrs + r->hdrs_len, s, n);
	r->hdrs_len += n;
	return 0;
}

/* end_header - the previous header's value is complete. */
static void end_header(struct http_req *r)
{
	if (r->last_was_value && !r->skip_header)
		hdrs_append(r, "\r\n", 2);
	r->field_len = 0;
	r->skip_header = 0;
}

static int on_begin(http_parser *p)
{
	http_req_next(p->data);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct http_req *r = p->data;

	if (r->url_len + n >= sizeof(r->url)) {
		r->url_too_long = 1;
		return 1;
	}
	memcpy(r->url + r->url_len, at, n);
	r->url_len += n;
	r->url[r->url_len] = '\0';
	return 0;
}

/* is_tchar - RFC 9110 section 5.6.2: the characters a header name may have. */
static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* trailer_bytes - count the chunked trailer section; refuse it past HTTP_REQ_MAX_TRAILERS. */
static int trailer_bytes(struct http_req *r, size_t n)
{
	r->trailer_bytes += n;
	if (r->trailer_bytes > HTTP_REQ_MAX_TRAILERS) {
		r->body_error = "request trailers larger than 16 KiB";
		return 1;
	}
	return 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct http_req *r = p->data;
	size_t i;

	/* "Transfer-Encoding : chunked" would frame the body differently here and at the origin: refuse. */
	for (i = 0; i < n; i++) {
		if (!is_tchar((unsigned char)at[i])) {
			r->bad_field = 1;
			r->body_error = "malformed trailer field name";
			return 1;
		}
	}
	if (r->head_done)
		return trailer_bytes(r, n);

	if (r->last_was_value)
		end_header(r);
	r->last_was_value = 0;
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
	struct http_req *r = p->data;

	int value_start = !r->last_was_value;

	if (r->head_done)
		return trailer_bytes(r, n);   /* trailers travel inside the forwarded body bytes; only counted here */
	if (value_start) {
		r->skip_header = hop_by_hop(r->field);
		r->in_connection = strcasecmp(r->field, "connection") == 0;
		r->in_transfer_encoding = strcasecmp(r->field, "transfer-encoding") == 0;
		if (r->in_transfer_encoding)
			r->n_transfer_encoding++;
		if (!r->skip_header && (hdrs_append(r, r->field, r->field_len) < 0 || hdrs_append(r, ": ", 2) < 0))
			return 1;
	}
	r->last_was_value = 1;
	if (r->in_transfer_encoding) {
		/* Kept lowercase without blanks, for framing_error(); longer than any coding list we accept. */
		size_t i;
		for (i = 0; i < n; i++) {
			char ch = at[i];
			if (ch == ' ' || ch == '\t')
				continue;
			if (r->transfer_encoding_len + 1 >= sizeof(r->transfer_encoding)) {
				r->transfer_encoding[0] = '?';   /* too long: certainly not "chunked" */
				r->transfer_encoding[1] = '\0';
				r->transfer_encoding_len = 1;
				break;
			}
			r->transfer_encoding[r->transfer_encoding_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
			r->transfer_encoding[r->transfer_encoding_len] = '\0';
		}
	}
	if (r->in_connection) {
		/* Keep the listed names as ",name,name," (lowercase, blanks dropped) for drop_connection_listed(). */
		size_t i;
		/* Several Connection fields make one list: each starts after a comma. */
		if (value_start && (r->conn_tokens_len == 0 || r->conn_tokens[r->conn_tokens_len - 1] != ',')) {
			if (r->conn_tokens_len + 2 >= sizeof(r->conn_tokens)) {
				r->too_large = 1;
				return 1;
			}
			r->conn_tokens[r->conn_tokens_len++] = ',';
			r->conn_tokens[r->conn_tokens_len] = '\0';
		}
		for (i = 0; i < n; i++) {
			char ch = at[i];
			if (ch == ' ' || ch == '\t')
				continue;
			if (r->conn_tokens_len + 2 >= sizeof(r->conn_tokens)) {
				r->too_large = 1;
				return 1;
			}
			r->conn_tokens[r->conn_tokens_len++] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		}
		r->conn_tokens[r->conn_tokens_len] = '\0';
	}
	if (!r->skip_header && hdrs_append(r, at, n) < 0)
		return 1;
	return 0;
}

/* listed_in_connection - the header line's name is one the client's Connection header lists. */
static int listed_in_connection(const struct http_req *r, const char *line, size_t name_len)
{
	char needle[260];
	size_t i;

	if (r->conn_tokens_len == 0 || name_len + 2 >= sizeof(needle))
		return 0;
	needle[0] = ',';
	for (i = 0; i < name_len; i++)
		needle[i + 1] = (char)(line[i] >= 'A' && line[i] <= 'Z' ? line[i] - 'A' + 'a' : line[i]);
	needle[name_len + 1] = ',';
	needle[name_len + 2] = '\0';
	/* conn_tokens is ",a,b" without a trailing comma while parsing: compare with one appended. */
	{
		char hay[sizeof(r->conn_tokens) + 2];
		snprintf(hay, sizeof(hay), "%s,", r->conn_tokens);
		return strstr(hay, needle) != NULL;
	}
}

/* drop_connection_listed - RFC 9110 section 7.6.1: headers named in Connection are hop-by-hop too. */
static void drop_connection_listed(struct http_req *r)
{
	size_t in = 0, out = 0;

	while (in < r->hdrs_len) {
		const char *line = r->hdrs + in;
		const char *eol = memchr(line, '\n', r->hdrs_len - in);
		const char *colon = memchr(line, ':', r->hdrs_len - in);
		size_t len = eol ? (size_t)(eol - line) + 1 : r->hdrs_len - in;
		/* Upgrade is hop-by-hop (RFC 9110 7.6.1) except in an upgrade request, where it goes on with the
		 * Connection: upgrade that http_req_target adds. */
		int upgrade_field = colon != NULL && colon - line == 7 && strncasecmp(line, "upgrade", 7) == 0;
		int keep = colon == NULL ||
			   (upgrade_field ? r->upgrade : !listed_in_connection(r, line, (size_t)(colon - line)));
		if (keep) {
			memmove(r->hdrs + out, line, len);
			out += len;
		}
		in += len;
	}
	r->hdrs_len = out;
}

static int on_headers_complete(http_parser *p)
{
	struct http_req *r = p->data;

	end_header(r);
	r->last_was_value = 0;
	r->head_done = 1;
	r->upgrade = p->upgrade && !(p->method == HTTP_CONNECT);   /* Upgrade + Connection: upgrade (http_parser) */
	drop_connection_listed(r);
	snprintf(r->method, sizeof(r->method), "%s", http_method_str((enum http_method)p->method));
	r->keep_alive = http_should_keep_alive(p);
	r->is_head = p->method == HTTP_HEAD;
	r->is_connect = p->method == HTTP_CONNECT;
	r->upgrade = p->upgrade;
	r->http_minor = p->http_minor;
	http_parser_pause(p, 1);
	return 0;
}

static int on_complete(http_parser *p)
{
	struct http_req *r = p->data;

	r->body_done = 1;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_complete,
};

void http_req_init(struct http_req *r)
{
	http_parser_init(&r->parser, HTTP_REQUEST);
	r->parser.data = r;
	http_req_next(r);
}

void http_req_next(struct http_req *r)
{
	r->head_bytes = 0;
	r->lf_pending = 0;
	r->head_done = r->body_done = 0;
	memset(&r->chunk, 0, sizeof(r->chunk));
	r->framing_differs = 0;
	r->keep_alive = r->is_head = r->is_connect = r->upgrade = 0;
	r->too_large = r->url_too_long = 0;
	r->last_was_value = r->skip_header = 0;
	r->method[0] = '\0';
	r->url_len = 0;
	r->url[0] = '\0';
	r->field_len = 0;
	r->hdrs_len = 0;
	r->bad_field = 0;
	r->conn_tokens_len = 0;
	r->conn_tokens[0] = '\0';
	r->in_connection = 0;
	r->http_minor = 1;
	r->at_line_start = 0;
	r->obs_fold = 0;
	r->n_transfer_encoding = 0;
	r->in_transfer_encoding = 0;
	r->transfer_encoding[0] = '\0';
	r->transfer_encoding_len = 0;
	r->trailer_bytes = 0;
	r->body_error = NULL;
}

/* scan_obs_fold - RFC 9112 5.2: a head line that starts with a blank continues the previous field (obs-fold).
 * http_parser folds it silently ("Transfer-Encoding:\r\n chunked" reads as chunked), so we look ourselves. */
static void scan_obs_fold(struct http_req *r, const char *data, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (r->at_line_start && (data[i] == ' ' || data[i] == '\t'))
			r->obs_fold = 1;
		r->at_line_start = data[i] == '\n';
	}
}

/*
 * framing_error - the head is complete: refuse what an origin could frame differently from us (request
 * smuggling) or what we do not speak, before a byte of it goes anywhere. Returns the status, 0 when fine.
 */
static int framing_error(struct http_req *r, const char **why)
{
	if (r->parser.http_major != 1 || r->parser.http_minor > 1) {
		*why = "only HTTP/1.0 and HTTP/1.1 requests are accepted";
		return 505;
	}
	if (r->obs_fold) {
		*why = "malformed request: obsolete line folding (obs-fold) in the head";
		return 400;
	}
	/* RFC 9110 7.6.1 makes Connection-listed fields hop-by-hop, but dropping the fields that frame the message
	 * or name the target would let the origin read the body as more requests. */
	if (listed_in_connection(r, "content-length", 14) || listed_in_connection(r, "transfer-encoding", 17) ||
	    listed_in_connection(r, "host", 4)) {
		*why = "malformed request: Connection lists Content-Length, Transfer-Encoding or Host";
		return 400;
	}
	if (r->n_transfer_encoding > 1) {
		*why = "malformed request: more than one Transfer-Encoding field";
		return 400;
	}
	if (r->n_transfer_encoding == 1 && strcmp(r->transfer_encoding, "chunked") != 0) {
		*why = "malformed request: Transfer-Encoding must be exactly \"chunked\"";
		return 400;
	}
	return 0;
}

enum http_req_status http_req_feed_head(struct http_req *r, const char *data, size_t len, size_t *consumed,
					int *status, const char **why)
{
	enum http_errno err;
	size_t n;

	*consumed = 0;
	if (len == 0)
		return HTTP_REQ_MORE;   /* a zero length means EOF to http_parser: never pass it on */
	n = http_parser_execute(&r->parser, &settings, data, len);
	err = HTTP_PARSER_ERRNO(&r->parser);
	*consumed = n;
	r->head_bytes += n;
	scan_obs_fold(r, data, n);
	if (r->url_too_long) {
		*status = 414;
		*why = "request URL longer than 8 KiB";
		return HTTP_REQ_ERROR;
	}
	if (r->bad_field) {
		*status = 400;
		*why = "malformed header name (RFC 9110 tokens only, no space before the colon)";
		return HTTP_REQ_ERROR;
	}
	/* The limit holds however the bytes arrive: a head that completes in one read is measured too. */
	if (r->too_large || r->head_bytes > HTTP_REQ_MAX_HEAD) {
		*status = 431;
		*why = "request head larger than 16 KiB";
		return HTTP_REQ_ERROR;
	}
	if (err == HPE_PAUSED) {
		http_parser_pause(&r->parser, 0);
		r->lf_pending = 1;
		if ((*status = framing_error(r, why)) != 0)
			return HTTP_REQ_ERROR;
		return HTTP_REQ_HEAD_DONE;
	}
	if (err != HPE_OK) {
		*status = 400;
		*why = http_errno_description(err);
		return HTTP_REQ_ERROR;
	}
	return HTTP_REQ_MORE;
}

/* body_error_text - what a body parse error means, in words that name the real problem (http_parser reports a
 * chunk size overflow as an invalid Content-Length, and a refused trailer as a failed callback). */
static const char *body_error_text(const struct http_req *r, const http_parser *p)
{
	enum http_errno err = HTTP_PARSER_ERRNO(p);

	if (r->body_error != NULL)
		return r->body_error;
	if (r->chunk.error != NULL)
		return r->chunk.error;
	if (r->framing_differs)
		return chunked_err_framing_differs;
	if (p->flags & F_CHUNKED) {
		if (err == HPE_INVALID_CONTENT_LENGTH)
			return "malformed chunked body: chunk size too large";
		if (err == HPE_INVALID_CHUNK_SIZE)
			return "malformed chunked body: invalid chunk size";
	}
	return http_errno_description(err);
}

/* strict_scan - how many of the len body bytes at data the strict chunked scan accepts as this message's (the
 * head's final LF, when http_parser has not consumed it yet, is not body and not scanned). */
static size_t strict_scan(const struct http_req *r, struct chunked *scan, const char *data, size_t len)
{
	size_t skip = r->lf_pending ? 1 : 0;

	if (len <= skip)
		return len;
	return skip + chunked_scan(scan, data + skip, len - skip);
}

/* dry_complete - the message ends in the bytes checked: stop there (the copy's only callback, data unused). */
static int dry_complete(http_parser *p)
{
	http_parser_pause(p, 1);
	return 0;
}

int http_req_body_check(const struct http_req *r, const char *data, size_t len, const char **why)
{
	static const http_parser_settings dry = {.on_message_complete = dry_complete};
	http_parser copy = r->parser;
	struct chunked scan = r->chunk;
	enum http_errno err;
	size_t n;

	if (r->body_done)
		return 1;
	if (len == 0)
		return 0;
	if (r->parser.flags & F_CHUNKED) {
		n = strict_scan(r, &scan, data, len);
		if (scan.error != NULL) {
			*why = scan.error;
			return -1;
		}
		len = n;
	}
	copy.data = NULL;   /* no callbacks run on the copy */
	n = http_parser_execute(&copy, &dry, data, len);
	err = HTTP_PARSER_ERRNO(&copy);
	if ((r->parser.flags & F_CHUNKED) && (err == HPE_OK || err == HPE_PAUSED) &&
	    (n != len || (err == HPE_PAUSED) != chunked_done(&scan))) {
		*why = chunked_err_framing_differs;
		return -1;
	}
	if (err == HPE_OK)
		return 0;
	if (err == HPE_PAUSED)
		return 1;
	*why = body_error_text(r, &copy);
	return -1;
}

enum http_req_status http_req_feed_body(struct http_req *r, const char *data, size_t len, size_t *consumed,
					size_t *fwd_off, size_t *fwd_len, const char **why)
{
	enum http_errno err;
	size_t n, skip;

	*consumed = *fwd_off = *fwd_len = 0;
	if (r->body_done || len == 0)
		return r->body_done ? HTTP_REQ_BODY_DONE : HTTP_REQ_MORE;
	if (r->parser.flags & F_CHUNKED) {
		/* Only bytes the strict scan accepts reach http_parser, and it must end the message where the scan
		 * does: the origin never gets framing that the two of us could read differently. */
		len = strict_scan(r, &r->chunk, data, len);
		if (r->chunk.error != NULL) {
			*why = r->chunk.error;
			return HTTP_REQ_ERROR;
		}
	}
	n = http_parser_execute(&r->parser, &settings, data, len);
	err = HTTP_PARSER_ERRNO(&r->parser);
	if (err != HPE_OK && err != HPE_PAUSED) {
		*why = body_error_text(r, &r->parser);
		return HTTP_REQ_ERROR;
	}
	if ((r->parser.flags & F_CHUNKED) && (n != len || (err == HPE_PAUSED) != chunked_done(&r->chunk))) {
		r->framing_differs = 1;
		*why = body_error_text(r, &r->parser);
		return HTTP_REQ_ERROR;
	}
	skip = r->lf_pending && n > 0 ? 1 : 0;
	if (n > 0)
		r->lf_pending = 0;
	*consumed = n;
	*fwd_off = skip;
	*fwd_len = n - skip;
	if (err == HPE_PAUSED) {
		http_parser_pause(&r->parser, 0);
		return HTTP_REQ_BODY_DONE;
	}
	return HTTP_REQ_MORE;
}

/* host_normalize_url - a target host as written in a URL or CONNECT: an IP literal as it is (http_parser has
 * removed the brackets of IPv6), a name in its one normal form (text.h). 0, or -1 with *why. */
static int host_normalize_url(const char *host, size_t len, char *out, size_t outlen, const char **why)
{
	uint8_t addr[16];
	int family;

	if (len == 0 || len >= outlen) {
		*why = "malformed request: bad host in the target";
		return -1;
	}
	if (ip_literal_parse(host, len, &family, addr) == 0) {
		memcpy(out, host, len);
		out[len] = '\0';
		return 0;
	}
	if (hostname_normalize(host, len, out, outlen) != NULL) {
		*why = "malformed request: the target is not a valid host name (one trailing dot at most, no empty labels)";
		return -1;
	}
	return 0;
}

int http_req_connect_target(const struct http_req *r, char *host, size_t hostlen, uint16_t *port, const char **why)
{
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (!r->is_connect || http_parser_parse_url(r->url, r->url_len, 1, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
	    !(u.field_set & (1 << UF_PORT)) || u.port == 0) {
		*why = "malformed request: CONNECT needs host:port";
		return 400;
	}
	if (host_normalize_url(r->url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len, host, hostlen, why) < 0)
		return 400;
	*port = u.port;
	return 0;
}

int http_req_target(const struct http_req *r, struct http_target *t, const char **why)
{
	struct http_parser_url u;
	const char *path = "/";
	size_t path_len = 1, query_len = 0, host_len;
	const char *query = "";
	char authority[HTTP_REQ_MAX_HOST + 8];
	int n;

	if (r->is_connect) {
		*why = "CONNECT is handled by the tunnel code, not rewritten";
		return 400;
	}
	http_parser_url_init(&u);
	if (http_parser_parse_url(r->url, r->url_len, 0, &u) != 0 || !(u.field_set & (1 << UF_SCHEMA)) ||
	    !(u.field_set & (1 << UF_HOST))) {
		*why = "a proxy request needs an absolute URL: GET https://host/path HTTP/1.1";
		return 400;
	}
	if (u.field_data[UF_SCHEMA].len != 5 || strncasecmp(r->url + u.field_data[UF_SCHEMA].off, "https", 5) != 0) {
		*why = "only https:// targets are proxied: daneproxy originates DANE-verified TLS";
		return 403;
	}
	host_len = u.field_data[UF_HOST].len;
	if (host_len == 0 || host_len >= sizeof(t->host)) {
		*why = "bad host in the URL";
		return 400;
	}
	if (host_normalize_url(r->url + u.field_data[UF_HOST].off, host_len, t->host, sizeof(t->host), why) < 0)
		return 400;
	t->port = 443;
	if (u.field_set & (1 << UF_PORT)) {
		if (u.port == 0) {
			*why = "bad port in the URL";
			return 400;
		}
		t->port = u.port;
	}
	if (u.field_set & (1 << UF_PATH)) {
		path = r->url + u.field_data[UF_PATH].off;
		path_len = u.field_data[UF_PATH].len;
	}
	if (u.field_set & (1 << UF_QUERY)) {
		query = r->url + u.field_data[UF_QUERY].off - 1;   /* with its '?' */
		query_len = u.field_data[UF_QUERY].len + 1;
	}
	if (strchr(t->host, ':') != NULL)
		snprintf(authority, sizeof(authority), t->port == 443 ? "[%s]" : "[%s]:%u", t->host, t->port);
	else
		snprintf(authority, sizeof(authority), t->port == 443 ? "%s" : "%s:%u", t->host, t->port);
	n = snprintf(t->head, sizeof(t->head), "%s %.*s%.*s HTTP/1.1\r\nHost: %s\r\n", r->method, (int)path_len, path,
		     (int)query_len, query, authority);
	if (n < 0 || (size_t)n + r->hdrs_len + 64 > sizeof(t->head)) {
		*why = "request head too large";
		return 431;
	}
	memcpy(t->head + n, r->hdrs, r->hdrs_len);
	n += (int)r->hdrs_len;
	n += snprintf(t->head + n, sizeof(t->head) - (size_t)n, "%s\r\n",
		      r->upgrade ? "Connection: upgrade\r\n" : r->keep_alive ? "" : "Connection: close\r\n");
	t->head_len = (size_t)n;
	return 0;
}

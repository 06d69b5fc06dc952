/*
 * http.c - the HTTP proxy listener: absolute-form requests from clients that cannot do TLS, forwarded in
 * origin-form over a DANE-verified TLS connection to the origin.
 *
 * One request at a time per client connection (pipelined requests wait in the client buffer, so responses can
 * never be reordered), keep-alive on both sides, requests to different origins on one client connection.
 * Message framing is http_parser's on both sides (requests through http_req.c); bodies are forwarded as the
 * raw bytes that carried them, so Content-Length and chunked framing reach the other side unchanged. Before
 * the origin is verified, no byte of the request leaves the proxy.
 */
#include "ca.h"
#include "conn.h"
#include "mint.h"
#include "tls.h"
#include "server.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void http_process(struct conn *c);
static void client_room(struct conn *c);
static int client_append(struct conn *c, const uint8_t *data, size_t len);
static void http_client_event(struct stream *s, enum stream_event ev, void *arg);

/* ---------- error answers ---------- */

static const char *status_text(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "Error";
}

/* sf_string - RFC 8941 sf-string content: printable ASCII, with " and \ escaped. */
static void sf_string(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (; *in && j + 3 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		if (ch == '"' || ch == '\\')
			out[j++] = '\\';
		out[j++] = (char)ch;
	}
	out[j] = '\0';
}

static const char *what_to_check(const char *error)
{
	if (error == NULL)
		return "";
	if (strcmp(error, "tls_certificate_error") == 0)
		return "The origin's certificate does not satisfy its TLSA records (or PKIX where the policy allows it).\n"
		       "Run `daneproxy check HOST:PORT` to see the records, the presented chain and what differs.\n";
	if (strcmp(error, "dns_error") == 0)
		return "DNS or DNSSEC failed for this name; daneproxy never falls back when validation fails.\n"
		       "Run `daneproxy lookup HOST:PORT` to see the DNSSEC outcome.\n";
	if (strcmp(error, "dns_timeout") == 0)
		return "The resolver did not answer in time; check the configured resolvers.\n";
	if (strcmp(error, "connection_refused") == 0 || strcmp(error, "connection_timeout") == 0)
		return "No address of the origin accepted a TCP connection.\n";
	return "Run `daneproxy check HOST:PORT` for a full diagnosis.\n";
}

/* http_fail - answer the current request with an error page and close the client afterwards. */
static void http_fail(struct conn *c, int status, const char *error, const char *details)
{
	char head[1024], body[1400], sf[400];
	int hl, bl;

	if (c->resp_started || c->client == NULL) {
		conn_close(c, "aborted", details);
		return;
	}
	c->status = status;
	sf_string(details ? details : "", sf, sizeof(sf));
	bl = snprintf(body, sizeof(body), "daneproxy: %d %s\n\n%s%s%s%s%s%s%s\n\n%s", status, status_text(status),
		      c->host[0] ? "target: " : "", c->host[0] ? c->host : "", c->host[0] ? "\n" : "",
		      error ? "error: " : "", error ? error : "", error ? "\n" : "", details ? details : "",
		      what_to_check(error));
	if (bl < 0 || (size_t)bl >= sizeof(body))
		bl = (int)strlen(body);
	if (error != NULL)
		hl = snprintf(head, sizeof(head),
			      "HTTP/1.1 %d %s\r\nProxy-Status: daneproxy; error=%s; details=\"%s\"\r\n"
			      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
			      status, status_text(status), error, sf, bl);
	else
		hl = snprintf(head, sizeof(head),
			      "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n"
			      "Connection: close\r\n\r\n",
			      status, status_text(status), bl);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		hl = (int)strlen(head);
	c->resp_started = 1;
	stream_read_stop(c->client);
	stream_set_callbacks(c->client, NULL, http_client_event, c);
	if (stream_write(c->client, (const uint8_t *)head, (size_t)hl) < 0 ||
	    stream_write(c->client, (const uint8_t *)body, (size_t)bl) < 0) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	snprintf(c->close_detail, sizeof(c->close_detail), "%s", details ? details : status_text(status));
	c->close_after = 1;
	stream_shutdown(c->client);
	if (c->origin != NULL) {
		stream_close(c->origin);
		c->origin = NULL;
	}
	c->state = CONN_FORWARDING;
}

/* ---------- responses ---------- */

static int on_resp_headers_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->status = p->status_code;
	if (p->status_code >= 200 || p->status_code == 101)
		c->response_final = 1;
	/* 1: the response to HEAD has no body whatever its headers say. */
	return c->io->req.is_head && p->status_code >= 200 ? 1 : 0;
}

static int on_resp_complete(http_parser *p)
{
	struct conn *c = p->data;

	if (c->response_final) {
		c->resp_done = 1;
		http_parser_pause(p, 1);
	}
	return 0;
}

static const http_parser_settings resp_settings = {
	.on_headers_complete = on_resp_headers_complete,
	.on_message_complete = on_resp_complete,
};

/* request_finished - request and response are both complete: keep the connections or close them. */
static void request_finished(struct conn *c)
{
	int origin_keep = http_should_keep_alive(&c->io->resp_parser);

	c->requests++;
	if (c->upgraded) {
		conn_relay(c);
		return;
	}
	if (!origin_keep && c->origin != NULL) {
		stream_close(c->origin);
		c->origin = NULL;
	}
	if (!c->io->req.keep_alive || !origin_keep || c->client_eof) {
		c->close_after = 1;
		stream_shutdown(c->client);
		if (stream_write_queued(c->client) == 0)
			conn_close(c, "done", NULL);
		return;
	}
	c->state = CONN_EXPECT_REQUEST;
	http_req_next(&c->io->req);
	conn_touch(c);
	http_process(c);
	if (c->state == CONN_EXPECT_REQUEST && c->client != NULL)
		stream_read_start(c->client);
}

static void http_origin_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	size_t n;
	enum http_errno err;

	(void)s;
	conn_touch(c);
	if (c->resp_done) {
		conn_close(c, "origin_protocol_error", "data after the response");
		return;
	}
	n = http_parser_execute(&c->io->resp_parser, &resp_settings, (const char *)data, len);
	err = HTTP_PARSER_ERRNO(&c->io->resp_parser);
	if (err != HPE_OK && err != HPE_PAUSED) {
		if (!c->resp_started) {
			http_fail(c, 502, "http_response_error", http_errno_description(err));
		} else {
			conn_close(c, "origin_protocol_error", http_errno_description(err));
		}
		return;
	}
	if (n > 0) {
		c->resp_started = 1;
		c->bytes_down += n;
		if (stream_write(c->client, data, n) < 0) {
			conn_close(c, "client_write_error", NULL);
			return;
		}
	}
	if (err == HPE_PAUSED) {
		http_parser_pause(&c->io->resp_parser, 0);
		if (c->status == 101) {
			c->upgraded = 1;
			/* Bytes after the 101 head belong to the new protocol. */
			if (n < len && stream_write(c->client, data + n, len - n) < 0) {
				conn_close(c, "client_write_error", NULL);
				return;
			}
		} else if (n < len) {
			conn_close(c, "origin_protocol_error", "data after the response");
			return;
		}
		stream_read_stop(c->origin);
		if (c->io->req.body_done)
			request_finished(c);
		return;
	}
	if (stream_write_queued(c->client) > CONN_HIGH_WATER)
		stream_read_stop(c->origin);
}

static void http_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	(void)s;
	switch (ev) {
	case STREAM_EOF:
		c->origin_eof = 1;
		if (c->state != CONN_FORWARDING || c->resp_done) {
			/* A kept-alive origin went away between requests: open a new one next time. */
			stream_close(c->origin);
			c->origin = NULL;
			return;
		}
		/* EOF may be how the response ends (no length given). */
		http_parser_execute(&c->io->resp_parser, &resp_settings, NULL, 0);
		if (c->resp_done) {
			http_parser_pause(&c->io->resp_parser, 0);
			c->io->req.keep_alive = 0;
			stream_close(c->origin);
			c->origin = NULL;
			if (c->io->req.body_done)
				request_finished(c);
			else
				conn_close(c, "done", "origin closed before the request was complete");
		} else if (!c->resp_started) {
			http_fail(c, 502, "connection_terminated", "the origin closed the connection without a response");
		} else {
			conn_close(c, "origin_closed", "the origin closed the connection mid-response");
		}
		break;
	case STREAM_DRAINED:
		/* Request body backpressure released. */
		if (c->state == CONN_FORWARDING && !c->io->req.body_done && c->client != NULL)
			stream_read_start(c->client);
		break;
	case STREAM_ERROR:
		if (!c->resp_started)
			http_fail(c, 502, "connection_terminated", stream_error(s));
		else
			conn_close(c, "origin_error", stream_error(s));
		break;
	default:
		break;
	}
}

/* ---------- request flow ---------- */

/* forward_body - parse buffered request bytes and send the ones that belong to the current message. */
static void forward_body(struct conn *c)
{
	enum http_req_status st;
	size_t consumed, off, len;
	const char *why;

	if (c->io->req.body_done || c->buf_len == 0 || c->origin == NULL)
		return;
	st = http_req_feed_body(&c->io->req, (const char *)c->io->buf, c->buf_len, &consumed, &off, &len, &why);
	if (st == HTTP_REQ_ERROR) {
		if (!c->resp_started)
			http_fail(c, 400, NULL, why);
		else
			conn_close(c, "client_protocol_error", why);
		return;
	}
	if (len > 0) {
		c->bytes_up += len;
		if (stream_write(c->origin, c->io->buf + off, len) < 0) {
			conn_close(c, "origin_write_error", NULL);
			return;
		}
	}
	memmove(c->io->buf, c->io->buf + consumed, c->buf_len - consumed);
	c->buf_len -= consumed;
	client_room(c);
	if (st == HTTP_REQ_BODY_DONE) {
		/* The request is complete: read no further until the response is (pipelined requests wait). */
		stream_read_stop(c->client);
		if (c->resp_done)
			request_finished(c);
		return;
	}
	if (stream_write_queued(c->origin) > CONN_HIGH_WATER)
		stream_read_stop(c->client);
}

/* send_head - the origin is ready: send the rewritten head, then whatever body is buffered. */
static void send_head(struct conn *c)
{
	c->state = CONN_FORWARDING;
	http_parser_init(&c->io->resp_parser, HTTP_RESPONSE);
	c->io->resp_parser.data = c;
	c->resp_done = c->resp_started = 0;
	c->bytes_up += c->io->target.head_len;
	if (stream_write(c->origin, (const uint8_t *)c->io->target.head, c->io->target.head_len) < 0) {
		http_fail(c, 502, "connection_terminated", stream_error(c->origin));
		return;
	}
	stream_set_callbacks(c->origin, http_origin_data, http_origin_event, c);
	if (stream_read_start(c->origin) < 0 || c->state == CONN_CLOSING)
		return;
	forward_body(c);
	if (c->state == CONN_FORWARDING && !c->io->req.body_done && c->client != NULL)
		stream_read_start(c->client);
}

/* upstream_refused - record the upstream's report; when it refused, answer 502 (504 for timeouts) and say so. */
static int upstream_refused(struct conn *c, struct stream *origin, const struct upstream_report *rep)
{
	int timeout;

	c->up = NULL;
	conn_take_report(c, rep);
	if (origin != NULL)
		return 0;
	timeout = rep->error && (strcmp(rep->error, "dns_timeout") == 0 || strcmp(rep->error, "connection_timeout") == 0);
	http_fail(c, timeout ? 504 : 502, rep->error, rep->details);
	return 1;
}

static void http_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;

	if (upstream_refused(c, origin, rep))
		return;
	c->origin = origin;
	send_head(c);
}

/* ---------- CONNECT: verify the origin, then terminate the client's TLS with a minted leaf ---------- */

static void connect_client_tls_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_HANDSHAKE_DONE)
		conn_relay(c);
	else if (ev == STREAM_ERROR || ev == STREAM_EOF)
		conn_close(c, "client_tls_error", ev == STREAM_EOF ? "client closed during the TLS handshake" : stream_error(s));
}

/* connect_origin_event - while the client's handshake runs, the verified origin may only go away. */
static void connect_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_ERROR || ev == STREAM_EOF)
		conn_close(c, "origin_closed", ev == STREAM_EOF ? "the origin closed before the client's handshake"
								: stream_error(s));
}

/* connect_check_hello - once the ClientHello is in, mint a leaf for the CONNECT host and start the handshake. */
static void connect_check_hello(struct conn *c)
{
	struct server *srv = c->srv;
	const uint8_t *der, *key;
	size_t der_len, key_len, avail;
	struct tls_conn *t;
	char sni[256], err[256];
	uint8_t *space;
	int r, minted;

	r = tls_peek_sni(c->io->buf, c->buf_len, sni, sizeof(sni));
	if (r == -1) {
		if (c->buf_len == sizeof(c->io->buf))
			conn_close(c, "client_tls_error", "ClientHello larger than the buffer");
		return;
	}
	if (r == -2) {
		conn_close(c, "client_not_tls", "the client did not start TLS after CONNECT");
		return;
	}
	/* Only the name that was verified may be vouched for: the CONNECT host. */
	if (r == 1 && strcasecmp(sni, c->host) != 0) {
		snprintf(err, sizeof(err), "SNI %s differs from the CONNECT host", sni);
		conn_close(c, "sni_mismatch", err);
		return;
	}
	if (mint_get(srv->mint, c->host, &der, &der_len, &minted, err, sizeof(err)) < 0) {
		conn_close(c, "mint_error", err);
		return;
	}
	c->leaf = minted ? 2 : 1;
	key = ca_leaf_key_der(srv->ca, &key_len);
	t = tls_server_new(srv->tls_server, der, der_len, key, key_len, "http/1.1");
	if (t == NULL) {
		conn_close(c, "internal_error", "cannot create the client TLS session");
		return;
	}
	space = tls_in_space(t, &avail);
	if (avail < c->buf_len) {
		tls_free(t);
		conn_close(c, "internal_error", "ClientHello does not fit");
		return;
	}
	memcpy(space, c->io->buf, c->buf_len);
	tls_in_commit(t, c->buf_len);
	c->buf_len = 0;
	stream_read_stop(c->client);
	stream_set_callbacks(c->client, NULL, connect_client_tls_event, c);
	if (stream_start_tls(c->client, t) < 0 && c->state != CONN_CLOSING)
		conn_close(c, "client_tls_error", stream_error(c->client));
}

static void connect_hello_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)s;
	if (client_append(c, data, len) < 0)
		return;
	connect_check_hello(c);
	if (c->state == CONN_AWAIT_CLIENT_TLS && stream_tls(c->client) == NULL)
		client_room(c);
}

static void connect_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;
	static const char established[] = "HTTP/1.1 200 Connection Established\r\n\r\n";

	if (upstream_refused(c, origin, rep))
		return;
	c->origin = origin;
	c->status = 200;
	c->requests++;
	c->resp_started = 1;
	if (stream_write(c->client, (const uint8_t *)established, sizeof(established) - 1) < 0) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	if (c->tunnel == CONN_TUNNEL_PASSTHROUGH) {
		/* Bytes the client sent early (after the CONNECT head) go first. */
		if (c->buf_len > 0 && stream_write(c->origin, c->io->buf, c->buf_len) < 0) {
			conn_close(c, "origin_write_error", NULL);
			return;
		}
		c->bytes_up += c->buf_len;
		c->buf_len = 0;
		conn_relay(c);
		return;
	}
	c->state = CONN_AWAIT_CLIENT_TLS;
	c->client_tls_started_ms = uv_now(c->srv->loop);
	conn_touch(c);
	stream_set_callbacks(c->origin, NULL, connect_origin_event, c);
	stream_set_callbacks(c->client, connect_hello_data, connect_client_tls_event, c);
	if (c->buf_len > 0)
		connect_check_hello(c);
	if (c->state == CONN_AWAIT_CLIENT_TLS && stream_tls(c->client) == NULL)
		stream_read_start(c->client);
}

/* start_connect - CONNECT host:port: allowed port, then verify the origin before answering anything. */
static void start_connect(struct conn *c)
{
	struct http_parser_url u;
	size_t hl;

	http_parser_url_init(&u);
	if (http_parser_parse_url(c->io->req.url, c->io->req.url_len, 1, &u) != 0 || !(u.field_set & (1 << UF_HOST)) ||
	    !(u.field_set & (1 << UF_PORT)) || (hl = u.field_data[UF_HOST].len) == 0 || hl >= sizeof(c->host)) {
		http_fail(c, 400, NULL, "CONNECT needs host:port");
		return;
	}
	memcpy(c->host, c->io->req.url + u.field_data[UF_HOST].off, hl);
	c->host[hl] = '\0';
	c->port = u.port;
	if (!server_connect_port_allowed(c->srv, c->port)) {
		char why[80];
		snprintf(why, sizeof(why), "CONNECT to port %u is not allowed by the configuration", c->port);
		http_fail(c, 403, NULL, why);
		return;
	}
	/* The head's final LF is still in the buffer (http_req.h); after it come tunnel bytes, never HTTP. */
	if (c->io->req.lf_pending && c->buf_len > 0) {
		memmove(c->io->buf, c->io->buf + 1, c->buf_len - 1);
		c->buf_len--;
		c->io->req.lf_pending = 0;
	}
	c->tunnel = server_passthrough(c->srv, c->host) ? CONN_TUNNEL_PASSTHROUGH : CONN_TUNNEL_TERMINATED;
	if (c->tunnel == CONN_TUNNEL_TERMINATED && !ca_permits(c->srv->ca, c->host)) {
		http_fail(c, 403, NULL, "the target is outside the local CA's name constraints ([connect] ca_name_constraints)");
		return;
	}
	c->policy = server_policy(c->srv, c->host, c->port);
	c->state = CONN_AWAIT_UPSTREAM;
	c->have_rep = 0;
	stream_read_stop(c->client);
	c->up = upstream_open(&c->srv->rt.env, c->host, c->port, c->policy,
			      c->tunnel == CONN_TUNNEL_PASSTHROUGH ? NULL : "http/1.1",
			      c->tunnel == CONN_TUNNEL_PASSTHROUGH ? UPSTREAM_PLAIN : 0, connect_upstream_done, c);
	if (c->up == NULL)
		http_fail(c, 502, "proxy_internal_error", "out of memory");
}

/* start_request - the head is complete: check the target, rewrite the head, and get a verified origin. */
static void start_request(struct conn *c)
{
	const char *why = NULL;
	int status;

	if (c->io->req.is_connect) {
		start_connect(c);
		return;
	}
	status = http_req_target(&c->io->req, &c->io->target, &why);
	if (status != 0) {
		http_fail(c, status, NULL, why);
		return;
	}
	c->resp_started = c->resp_done = c->response_final = 0;
	c->status = 0;
	stream_read_stop(c->client);
	if (c->origin != NULL && strcasecmp(c->host, c->io->target.host) == 0 && c->port == c->io->target.port) {
		send_head(c);   /* the verified origin connection is still open: reuse it */
		return;
	}
	if (c->origin != NULL) {
		stream_close(c->origin);
		c->origin = NULL;
	}
	snprintf(c->host, sizeof(c->host), "%s", c->io->target.host);
	c->port = c->io->target.port;
	c->policy = server_policy(c->srv, c->host, c->port);
	c->origin_eof = 0;
	c->state = CONN_AWAIT_UPSTREAM;
	c->have_rep = 0;
	c->up = upstream_open(&c->srv->rt.env, c->host, c->port, c->policy, "http/1.1", 0, http_upstream_done, c);
	if (c->up == NULL)
		http_fail(c, 502, "proxy_internal_error", "out of memory");
}

/* http_process - parse what the client sent, as far as the current state allows. */
static void http_process(struct conn *c)
{
	enum http_req_status st;
	size_t consumed;
	const char *why = NULL;
	int status = 400;

	if (c->state == CONN_FORWARDING) {
		forward_body(c);
		return;
	}
	if (c->state != CONN_EXPECT_REQUEST || c->buf_len == 0)
		return;
	if (c->io->req.head_bytes == 0)
		c->head_started_ms = uv_now(c->srv->loop);
	st = http_req_feed_head(&c->io->req, (const char *)c->io->buf, c->buf_len, &consumed, &status, &why);
	if (st == HTTP_REQ_ERROR) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s%s", status == 400 ? "malformed request: " : "", why);
		http_fail(c, status, NULL, msg);
		return;
	}
	memmove(c->io->buf, c->io->buf + consumed, c->buf_len - consumed);
	c->buf_len -= consumed;
	if (st == HTTP_REQ_HEAD_DONE)
		start_request(c);
}

/* client_room - tell the client stream how much the buffer can take next (reads never overflow it). */
static void client_room(struct conn *c)
{
	if (c->client != NULL && c->io != NULL)
		stream_set_read_limit(c->client, sizeof(c->io->buf) - c->buf_len);
}

/* client_append - keep a client read in the buffer. Reads are bounded by client_room(), so it always fits;
 * anything else is a broken invariant and ends the connection. */
static int client_append(struct conn *c, const uint8_t *data, size_t len)
{
	conn_touch(c);
	if (len > sizeof(c->io->buf) - c->buf_len) {
		conn_close(c, "internal_error", "client read larger than the room announced");
		return -1;
	}
	memcpy(c->io->buf + c->buf_len, data, len);
	c->buf_len += len;
	return 0;
}

static void http_client_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)s;
	if (client_append(c, data, len) < 0)
		return;
	http_process(c);
	if (c->state != CONN_CLOSING) {
		client_room(c);
		conn_touch(c);   /* again: a head that started with this read has its header deadline now */
	}
}

static void http_client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	switch (ev) {
	case STREAM_EOF:
		c->client_eof = 1;
		if (c->close_after || (c->state == CONN_EXPECT_REQUEST && c->buf_len == 0 && !c->io->req.head_bytes))
			conn_close(c, "done", NULL);
		else if (c->state == CONN_EXPECT_REQUEST)
			http_fail(c, 400, NULL, "the client closed the connection in the middle of a request");
		/* else: the request is out, the response will be sent and then the connection closed */
		break;
	case STREAM_DRAINED:
		if (c->close_after) {
			conn_close(c, "done", NULL);
		} else if (c->state == CONN_FORWARDING && !c->resp_done && c->origin != NULL) {
			stream_read_start(c->origin);
		}
		break;
	case STREAM_ERROR:
		conn_close(c, "client_error", stream_error(s));
		break;
	default:
		break;
	}
	(void)s;
}

void http_conn_start(struct conn *c)
{
	c->io = malloc(sizeof(*c->io));
	if (c->io == NULL) {
		conn_close(c, "internal_error", "out of memory");
		return;
	}
	http_req_init(&c->io->req);
	c->buf_len = 0;
	client_room(c);
	c->state = CONN_EXPECT_REQUEST;
	stream_set_callbacks(c->client, http_client_data, http_client_event, c);
	conn_touch(c);
	stream_read_start(c->client);
}

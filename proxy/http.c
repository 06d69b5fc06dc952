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
#include "clienthello.h"
#include "conn.h"
#include "http_resp.h"
#include "proxy_status.h"
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
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

/*
 * http_fail - answer the current request with an error page and close the client afterwards. token: the RFC 9209
 * error (proxy_status.h), which also gives the status unless status is non-zero (414, 431, 505 refine 400).
 */
static void http_fail(struct conn *c, const char *token, int status, const char *details)
{
	const struct proxy_status *ps = proxy_status_lookup(token);
	char head[1024], body[1400], sf[400];
	int hl, bl;

	if (c->resp_started || c->client == NULL) {
		conn_close(c, "aborted", details);
		return;
	}
	if (status == 0)
		status = ps->status;
	c->status = status;
	c->refusal = ps->token;
	proxy_status_sf_string(details ? details : "", sf, sizeof(sf));
	bl = snprintf(body, sizeof(body), "daneproxy: %d %s\n\n%s%s%serror: %s\n%s\n\n%s\n", status,
		      status_text(status), c->host[0] ? "target: " : "", c->host[0] ? c->host : "", c->host[0] ? "\n" : "",
		      ps->token, details ? details : "", ps->hint);
	if (bl < 0 || (size_t)bl >= sizeof(body))
		bl = (int)strlen(body);
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nProxy-Status: daneproxy; error=%s; details=\"%s\"\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		      status, status_text(status), ps->token, sf, bl);
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

/* resp_emit - the re-framed response (http_resp.h) goes to the client. */
static void resp_emit(void *arg, const char *data, size_t len)
{
	struct conn *c = arg;

	if (c->client == NULL || c->client_write_failed)
		return;
	c->resp_started = 1;
	c->bytes_down += len;
	if (stream_write(c->client, (const uint8_t *)data, len) < 0)
		c->client_write_failed = 1;
}

/* request_finished - request and response are both complete: keep the connections or close them. */
static void request_finished(struct conn *c)
{
	int origin_keep = http_should_keep_alive(&c->io->resp.parser);

	c->requests++;
	if (c->upgraded) {
		conn_relay(c);
		return;
	}
	if (!origin_keep && c->origin != NULL) {
		stream_close(c->origin);
		c->origin = NULL;
	}
	if (c->io->resp.close_after || c->client_eof) {
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

/* response_complete - the final response is in: stop reading the origin, finish once the request is too. */
static void response_complete(struct conn *c)
{
	c->resp_done = 1;
	c->status = c->io->resp.status;
	stream_read_stop(c->origin);
	if (c->io->req.body_done)
		request_finished(c);
}

static void http_origin_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	enum http_resp_status st;
	const char *error = NULL, *why = NULL;
	size_t n;

	(void)s;
	conn_touch(c);
	if (c->resp_done) {
		conn_close(c, "origin_protocol_error", "data after the response");
		return;
	}
	st = http_resp_feed(&c->io->resp, (const char *)data, len, &n, &error, &why);
	if (c->client_write_failed) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	switch (st) {
	case HTTP_RESP_ERROR:
		if (!c->resp_started)
			http_fail(c, error, 0, why);
		else
			conn_close(c, "origin_protocol_error", why);
		return;
	case HTTP_RESP_UPGRADED:
		c->upgraded = 1;
		/* Bytes after the 101 head belong to the new protocol. */
		c->bytes_down += len - n;
		if (n < len && stream_write(c->client, data + n, len - n) < 0) {
			conn_close(c, "client_write_error", NULL);
			return;
		}
		response_complete(c);
		return;
	case HTTP_RESP_DONE:
		if (n < len) {
			conn_close(c, "origin_protocol_error", "data after the response");
			return;
		}
		response_complete(c);
		return;
	case HTTP_RESP_MORE:
		break;
	}
	if (stream_write_queued(c->client) > CONN_HIGH_WATER)
		stream_read_stop(c->origin);
}

static void http_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	(void)s;
	switch (ev) {
	case STREAM_EOF: {
		const char *error = NULL, *why = NULL;
		c->origin_eof = 1;
		if (c->state != CONN_FORWARDING || c->resp_done) {
			/* A kept-alive origin went away between requests: open a new one next time. */
			stream_close(c->origin);
			c->origin = NULL;
			return;
		}
		/* EOF may be how the response ends (no length given). */
		if (http_resp_eof(&c->io->resp, &error, &why) == HTTP_RESP_DONE) {
			stream_close(c->origin);
			c->origin = NULL;
			c->resp_done = 1;
			c->status = c->io->resp.status;
			if (c->client_write_failed)
				conn_close(c, "client_write_error", NULL);
			else if (c->io->req.body_done)
				request_finished(c);
			else
				conn_close(c, "done", "origin closed before the request was complete");
		} else if (!c->resp_started) {
			http_fail(c, error, 0, why);
		} else {
			conn_close(c, "origin_closed", why);
		}
		break;
	}
	case STREAM_DRAINED:
		/* Request body backpressure released. */
		if (c->state == CONN_FORWARDING && !c->io->req.body_done && c->client != NULL)
			stream_read_start(c->client);
		break;
	case STREAM_ERROR:
		if (!c->resp_started)
			http_fail(c, "connection_terminated", 0, stream_error(s));
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
			http_fail(c, "http_request_error", 0, why);
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
	http_resp_init(&c->io->resp, c->io->req.is_head, c->io->req.http_minor, c->io->req.keep_alive, resp_emit, c);
	c->resp_done = c->resp_started = 0;
	c->bytes_up += c->io->target.head_len;
	if (stream_write(c->origin, (const uint8_t *)c->io->target.head, c->io->target.head_len) < 0) {
		http_fail(c, "connection_terminated", 0, stream_error(c->origin));
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
	c->up = NULL;
	conn_take_report(c, rep);
	if (origin != NULL)
		return 0;
	http_fail(c, rep->error, 0, rep->details);
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

/* connect_check_hello - once the whole ClientHello is in, check its SNI against the verified CONNECT host, mint a
 * leaf for that host and start the handshake with the bytes read so far. */
static void connect_check_hello(struct conn *c)
{
	struct server *srv = c->srv;
	struct clienthello ch;
	const uint8_t *der, *key;
	size_t der_len, key_len, n;
	struct tls_conn *t;
	char err[400], sni[256 * 4 + 1];
	const char *why;
	int minted;

	switch (clienthello_parse(c->io->buf, c->buf_len, CLIENTHELLO_MAX, &ch, &why)) {
	case CLIENTHELLO_NEED_MORE:
		if (c->buf_len == sizeof(c->io->buf))
			conn_close(c, "client_tls_error", "ClientHello larger than the client buffer (32 KiB)");
		return;
	case CLIENTHELLO_NOT_TLS:
		conn_close(c, "client_not_tls", "the client did not start TLS after CONNECT");
		return;
	case CLIENTHELLO_TOO_LARGE:
		conn_close(c, "client_tls_error", "ClientHello larger than 32 KiB");
		return;
	case CLIENTHELLO_MALFORMED:
		snprintf(err, sizeof(err), "malformed ClientHello: %s", why);
		conn_close(c, "client_tls_error", err);
		return;
	case CLIENTHELLO_COMPLETE:
		break;
	}
	/* Only the name that was verified may be vouched for: the CONNECT host. */
	if (ch.has_sni && !ch.sni_valid) {
		clienthello_sni_printable(&ch, sni, sizeof(sni));
		snprintf(err, sizeof(err), "SNI \"%s\" is not a valid host name", sni);
		conn_close(c, "sni_invalid", err);
		return;
	}
	if (ch.has_sni && strcmp(ch.sni_name, c->host) != 0) {
		snprintf(err, sizeof(err), "SNI %s differs from the CONNECT host", ch.sni_name);
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
	stream_read_stop(c->client);
	stream_set_callbacks(c->client, NULL, connect_client_tls_event, c);
	n = c->buf_len;
	c->buf_len = 0;   /* handed to the TLS session, whatever its size */
	if (stream_start_tls(c->client, t, c->io->buf, n) < 0 && c->state != CONN_CLOSING)
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

/* port_refused - the destination port is outside the allow-list: 403 before any connection is tried. */
static int port_refused(struct conn *c, uint16_t port)
{
	char why[120];

	if (server_port_allowed(c->srv, port))
		return 0;
	snprintf(why, sizeof(why), "port %u is not in the ports the configuration allows ([proxy] ports)", port);
	http_fail(c, "http_request_denied", 0, why);
	return 1;
}

/* start_connect - CONNECT host:port: allowed port, then verify the origin before answering anything. */
static void start_connect(struct conn *c)
{
	const char *why = NULL;
	uint16_t port = 0;
	char host[sizeof(c->host)];

	if (http_req_connect_target(&c->io->req, host, sizeof(host), &port, &why) != 0) {
		http_fail(c, "http_request_error", 0, why);
		return;
	}
	snprintf(c->host, sizeof(c->host), "%s", host);
	c->port = port;
	if (port_refused(c, c->port))
		return;
	/* The head's final LF is still in the buffer (http_req.h); after it come tunnel bytes, never HTTP. */
	if (c->io->req.lf_pending && c->buf_len > 0) {
		memmove(c->io->buf, c->io->buf + 1, c->buf_len - 1);
		c->buf_len--;
		c->io->req.lf_pending = 0;
	}
	c->tunnel = server_passthrough(c->srv, c->host) ? CONN_TUNNEL_PASSTHROUGH : CONN_TUNNEL_TERMINATED;
	if (c->tunnel == CONN_TUNNEL_TERMINATED && !ca_permits(c->srv->ca, c->host)) {
		http_fail(c, "http_request_denied", 0,
			  "the target is outside the local CA's name constraints ([connect] ca_name_constraints)");
		return;
	}
	/* An origin kept from an earlier request on this connection is of no use to a tunnel. */
	if (c->origin != NULL) {
		stream_close(c->origin);
		c->origin = NULL;
	}
	c->policy = server_policy(c->srv, c->host, c->port);
	c->state = CONN_AWAIT_UPSTREAM;
	c->have_rep = 0;
	stream_read_stop(c->client);
	c->up = upstream_open(&c->srv->rt.env, c->host, c->port, c->policy,
			      c->tunnel == CONN_TUNNEL_PASSTHROUGH ? NULL : "http/1.1",
			      c->tunnel == CONN_TUNNEL_PASSTHROUGH ? UPSTREAM_PLAIN : 0, connect_upstream_done, c);
	if (c->up == NULL)
		http_fail(c, "proxy_internal_error", 0, "out of memory");
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
		http_fail(c, status == 403 ? "http_request_denied" : "http_request_error", status, why);
		return;
	}
	if (port_refused(c, c->io->target.port))
		return;
	/* Framing is checked on what is buffered before anything leaves for the origin (a malformed chunked body
	 * would otherwise reach it after the head). */
	if (c->io->req.lf_pending && http_req_body_check(&c->io->req, (const char *)c->io->buf, c->buf_len, &why) < 0) {
		http_fail(c, "http_request_error", 0, why);
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
		http_fail(c, "proxy_internal_error", 0, "out of memory");
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
		snprintf(msg, sizeof(msg), "%s%s", status == 400 && strncmp(why, "malformed", 9) != 0 ? "malformed request: " : "",
			 why);
		http_fail(c, "http_request_error", status, msg);
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
			http_fail(c, "http_request_error", 0, "the client closed the connection in the middle of a request");
		else if (c->state == CONN_FORWARDING && !c->io->req.body_done)
			/* The body can never be complete: the origin would wait for it, holding both sides. */
			conn_close(c, "client_closed", "the client closed the connection in the middle of the request body");
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

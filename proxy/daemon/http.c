/*
 * http.c - the HTTP proxy listener's driver: absolute-form requests from clients that cannot do TLS, forwarded in
 * origin-form over a DANE-verified TLS connection to the origin. A CONNECT request hands the connection to
 * connect.c.
 *
 * States (enum http_wait) are what the driver awaits: HTTP_AWAIT_HEAD -> HTTP_AWAIT_ORIGIN (when the origin must be
 * opened) -> HTTP_AWAIT_RESPONSE -> HTTP_AWAIT_HEAD again (keep-alive), or the relay after 101, or a refusal
 * (conn_refuse). One request at a time per connection: pipelined requests wait in the client buffer, so responses
 * never reorder. Requests are parsed by http_req.c, responses re-framed by http_resp.c; bodies go out as the bytes
 * that carried them. No byte of a request leaves the proxy before the origin is verified and the request's framing
 * is checked. Memory: the buffers of a request (struct http_exchange) exist from its first byte to its end; an
 * idle keep-alive connection holds none.
 */
#include "conn.h"
#include "http_req.h"
#include "http_resp.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_CLIENT_BUF (32 * 1024)

/* The request in flight. */
struct http_exchange {
	struct http_req req;
	struct http_resp resp;
	char *head;                 /* the rewritten head, until the origin is ready for it */
	size_t head_len;
	int client_write_failed;    /* writing the response to the client failed: close */
	size_t buf_len;             /* client bytes in buf not yet consumed */
	uint8_t buf[HTTP_CLIENT_BUF];
};

static void http_process(struct conn *c);
static void http_client_data(struct stream *s, const uint8_t *data, size_t len, void *arg);
static void http_client_event(struct stream *s, enum stream_event ev, void *arg);

/* ---------- the driver ---------- */

/* http_idle - kept alive between requests. A connection that has not sent its first request yet is not idle: it
 * was accepted to be served (closing it at shutdown would fail a client that just connected). */
static int http_idle(const struct conn *c)
{
	return c->d.http.wait == HTTP_AWAIT_HEAD && c->d.http.x == NULL && c->requests > 0;
}

/* http_release - free the request in flight (at close, or when the connection becomes a relay). */
static void http_release(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;

	if (x != NULL) {
		free(x->head);
		free(x);
		c->d.http.x = NULL;
	}
}

static const struct conn_driver http_driver = {"http", http_idle, http_release, NULL};

/* client_room - tell the client stream how much the buffer can take next (reads never overflow it). */
static void client_room(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;

	if (c->client.s != NULL && c->phase == CONN_DRIVEN)
		stream_set_read_limit(c->client.s, x == NULL ? HTTP_CLIENT_BUF : HTTP_CLIENT_BUF - x->buf_len);
}

/* consume - drop n parsed bytes from the front of the client buffer. */
static void consume(struct http_exchange *x, size_t n)
{
	memmove(x->buf, x->buf + n, x->buf_len - n);
	x->buf_len -= n;
}

/* refuse - answer with an error page, or, when part of the response already went out, just end. */
static void refuse(struct conn *c, const char *token, int status, const char *details)
{
	struct http_exchange *x = c->d.http.x;

	if (c->d.http.wait == HTTP_AWAIT_RESPONSE && x != NULL && http_resp_started(&x->resp)) {
		conn_close(c, "aborted", details);
		return;
	}
	/* http_parser knows the method from its first octets, before the head is complete or found malformed. */
	c->answering_head = x != NULL && x->req.parser.method == HTTP_HEAD;
	conn_refuse(c, token, status, details);
}

/* ---------- responses ---------- */

/* resp_emit - the re-framed response (http_resp.h) goes to the client. */
static void resp_emit(void *arg, const char *data, size_t len)
{
	struct conn *c = arg;
	struct http_exchange *x = c->d.http.x;

	if (x->client_write_failed)
		return;
	c->bytes_down += len;
	if (stream_write(c->client.s, (const uint8_t *)data, len) < 0)
		x->client_write_failed = 1;
}

/* idle_origin_event - a kept-alive origin between requests may only go away: open a new one next time. */
static void idle_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_EOF || ev == STREAM_ERROR) {
		conn_keep_origin(c, 0);
		stream_close(s);
		c->origin.s = NULL;
	}
}

/* request_finished - request and response are both complete: keep the connections, or close them. */
static void request_finished(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;

	c->requests++;
	if (x->resp.upgraded) {
		/* 101: bytes the client sent after its request are the new protocol's, and go first. */
		conn_relay(c, x->buf, x->buf_len);
		return;
	}
	if (c->origin.s != NULL && (!http_should_keep_alive(&x->resp.parser) || stream_eof(c->origin.s) ||
				    c->env->cfg->origin_keepalive_ms == 0)) {
		stream_close(c->origin.s);
		c->origin.s = NULL;
	}
	if (c->origin.s != NULL) {
		stream_read_stop(c->origin.s);
		stream_set_callbacks(c->origin.s, NULL, idle_origin_event, c);
		conn_keep_origin(c, 1);
	}
	if (x->resp.close_after || c->d.http.client_eof) {
		conn_close_when_flushed(c);
		return;
	}
	c->d.http.wait = HTTP_AWAIT_HEAD;
	http_req_next(&x->req);
	if (x->buf_len == 0) {
		http_release(c);   /* idle keep-alive: no buffers until the next request's first byte */
	} else {
		http_process(c);   /* a pipelined request is waiting */
		if (c->phase != CONN_DRIVEN || c->driver != &http_driver || c->d.http.wait == HTTP_AWAIT_RESPONSE)
			return;   /* refused, a tunnel now, or forwarding (which reads the client as the body needs) */
	}
	client_room(c);
	stream_read_start(c->client.s);
}

/* response_complete - the final response is in; the exchange ends once the request is out too. */
static void response_complete(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;

	c->status = x->resp.status;
	if (c->origin.s != NULL)
		stream_read_stop(c->origin.s);
	if (x->req.body_done)
		request_finished(c);
}

static void http_origin_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	struct http_exchange *x = c->d.http.x;
	const char *error = NULL, *why = NULL;
	enum http_resp_status st;
	size_t n;

	(void)s;
	conn_touch(c);
	if (x->resp.done) {
		conn_close(c, "origin_protocol_error", "data after the response");
		return;
	}
	st = http_resp_feed(&x->resp, (const char *)data, len, &n, &error, &why);
	if (x->client_write_failed) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	switch (st) {
	case HTTP_RESP_ERROR:
		refuse(c, error, 0, why);
		return;
	case HTTP_RESP_UPGRADED:
		/* Bytes after the 101 head belong to the new protocol. */
		c->bytes_down += len - n;
		if (n < len && stream_write(c->client.s, data + n, len - n) < 0) {
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
	if (stream_write_queued(c->client.s) > CONN_HIGH_WATER)
		stream_read_stop(c->origin.s);
}

static void http_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;
	struct http_exchange *x = c->d.http.x;
	const char *error = NULL, *why = NULL;

	switch (ev) {
	case STREAM_EOF:
		/* EOF may be how the response ends (no length given). */
		if (http_resp_eof(&x->resp, &error, &why) != HTTP_RESP_DONE) {
			refuse(c, error, 0, why);
			return;
		}
		if (x->client_write_failed) {
			conn_close(c, "client_write_error", NULL);
			return;
		}
		if (!x->req.body_done) {
			conn_close(c, "done", "the origin closed the connection before the request was complete");
			return;
		}
		response_complete(c);
		break;
	case STREAM_DRAINED:
		/* Request body backpressure released. */
		if (!x->req.body_done)
			stream_read_start(c->client.s);
		break;
	case STREAM_ERROR:
		refuse(c, "connection_terminated", 0, stream_error(s));
		break;
	default:
		break;
	}
}

/* ---------- requests ---------- */

/* forward_body - parse buffered request bytes and send the ones that belong to the current message. */
static void forward_body(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;
	enum http_req_status st;
	size_t consumed, off, len;
	const char *why;

	if (x->req.body_done || x->buf_len == 0)
		return;
	st = http_req_feed_body(&x->req, (const char *)x->buf, x->buf_len, &consumed, &off, &len, &why);
	if (st == HTTP_REQ_ERROR) {
		refuse(c, "http_request_error", 0, why);
		return;
	}
	if (len > 0) {
		c->bytes_up += len;
		if (stream_write(c->origin.s, x->buf + off, len) < 0) {
			conn_close(c, "origin_write_error", stream_error(c->origin.s));
			return;
		}
	}
	consume(x, consumed);
	client_room(c);
	if (st == HTTP_REQ_BODY_DONE) {
		/* The request is complete: read no further until the response is (pipelined requests wait). */
		stream_read_stop(c->client.s);
		if (x->resp.done)
			request_finished(c);
		return;
	}
	if (stream_write_queued(c->origin.s) > CONN_HIGH_WATER)
		stream_read_stop(c->client.s);
}

/* send_head - the verified origin is ready: the rewritten head, then whatever body is buffered. */
static void send_head(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;

	c->d.http.wait = HTTP_AWAIT_RESPONSE;
	/* Shutting down: this response is the connection's last, and says so. */
	http_resp_init(&x->resp, x->req.is_head, x->req.http_minor, x->req.keep_alive && !c->env->stopping, resp_emit, c);
	if (x->req.upgrade)
		http_resp_expect_upgrade(&x->resp);
	c->bytes_up += x->head_len;
	if (stream_write(c->origin.s, (const uint8_t *)x->head, x->head_len) < 0) {
		refuse(c, "connection_terminated", 0, stream_error(c->origin.s));
		return;
	}
	free(x->head);
	x->head = NULL;
	stream_set_callbacks(c->origin.s, http_origin_data, http_origin_event, c);
	if (stream_read_start(c->origin.s) < 0 || c->phase != CONN_DRIVEN)
		return;
	forward_body(c);
	if (c->phase == CONN_DRIVEN && c->d.http.wait == HTTP_AWAIT_RESPONSE && !x->req.body_done)
		stream_read_start(c->client.s);
}

static void http_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;

	c->up = NULL;
	conn_take_report(c, rep);
	if (origin == NULL) {
		refuse(c, rep->error, 0, rep->details);
		return;
	}
	c->origin.s = origin;
	send_head(c);
}

/* port_refused - the destination port is outside the allow-list: 403 before any connection is tried. */
static int port_refused(struct conn *c, uint16_t port)
{
	char why[120];

	if (config_port_allowed(c->env->cfg, port))
		return 0;
	snprintf(why, sizeof(why), "port %u is not in the ports the configuration allows ([proxy] ports)", port);
	refuse(c, "http_request_denied", 0, why);
	return 1;
}

/* start_connect - CONNECT host:port: checked here, then the connection is connect.c's. */
static void start_connect(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;
	const char *why = NULL;
	size_t skip;

	if (http_req_connect_target(&x->req, c->host, sizeof(c->host), &c->port, &why) != 0) {
		c->host[0] = '\0';
		refuse(c, "http_request_error", 0, why);
		return;
	}
	if (port_refused(c, c->port))
		return;
	/* The head's final LF is still in the buffer (http_req.h); after it come tunnel bytes, never HTTP. */
	skip = x->req.lf_pending && x->buf_len > 0 ? 1 : 0;
	c->d.http.x = NULL;
	c->driver = NULL;
	connect_start(c, x->buf + skip, x->buf_len - skip);
	free(x->head);
	free(x);
}

/* start_request - the head is complete: check the target, rewrite the head, and get a verified origin. */
static void start_request(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;
	struct http_target *t;
	const char *why = NULL;
	int status;

	if (x->req.is_connect) {
		start_connect(c);
		return;
	}
	t = malloc(sizeof(*t));   /* ~24 KiB, for the moment of the rewrite */
	if (t == NULL) {
		refuse(c, "proxy_internal_error", 0, "out of memory");
		return;
	}
	status = http_req_target(&x->req, t, &why);
	if (status != 0) {
		free(t);
		refuse(c, status == 403 ? "http_request_denied" : "http_request_error", status, why);
		return;
	}
	x->head = malloc(t->head_len);
	if (x->head == NULL) {
		free(t);
		refuse(c, "proxy_internal_error", 0, "out of memory");
		return;
	}
	memcpy(x->head, t->head, t->head_len);
	x->head_len = t->head_len;
	if (port_refused(c, t->port)) {
		free(t);
		return;
	}
	/* Framing is checked on what is buffered before anything leaves for the origin (a malformed chunked body would
	 * otherwise reach it after the head). */
	if (http_req_body_check(&x->req, (const char *)x->buf, x->buf_len, &why) < 0) {
		free(t);
		refuse(c, "http_request_error", 0, why);
		return;
	}
	c->status = 0;
	conn_keep_origin(c, 0);
	if (c->origin.s != NULL && strcmp(c->host, t->host) == 0 && c->port == t->port) {
		free(t);
		send_head(c);   /* the verified origin connection is still open: reuse it */
		return;
	}
	stream_close(c->origin.s);
	c->origin.s = NULL;
	snprintf(c->host, sizeof(c->host), "%s", t->host);
	c->port = t->port;
	free(t);
	c->policy = conn_policy(c, c->host, c->port);
	c->have_rep = 0;
	/* The client stays read (into the bounded buffer, nothing forwarded) while the origin is prepared, so that a
	 * client that goes away is noticed at once. */
	c->d.http.wait = HTTP_AWAIT_ORIGIN;
	c->up = upstream_open(c->env->upstream, c->host, c->port, c->policy, "http/1.1", 0, http_upstream_done, c);
	if (c->up == NULL)
		refuse(c, "proxy_internal_error", 0, "out of memory");
}

/* http_process - parse what the client sent, as far as the current state allows. */
static void http_process(struct conn *c)
{
	struct http_exchange *x = c->d.http.x;
	enum http_req_status st;
	size_t consumed;
	const char *why = NULL;
	int status = 400;

	switch (c->d.http.wait) {
	case HTTP_AWAIT_RESPONSE:
		forward_body(c);
		return;
	case HTTP_AWAIT_ORIGIN:
		return;   /* buffered until the origin is ready */
	case HTTP_AWAIT_HEAD:
		break;
	}
	if (x->buf_len == 0)
		return;
	if (x->req.head_bytes == 0)
		conn_set_deadline(c, c->env->cfg->header_timeout_ms, "header_timeout",
				  "the request head was not complete in time");
	st = http_req_feed_head(&x->req, (const char *)x->buf, x->buf_len, &consumed, &status, &why);
	if (st == HTTP_REQ_ERROR) {
		char msg[160];
		snprintf(msg, sizeof(msg), "%s%s", status == 400 && strncmp(why, "malformed", 9) != 0 ? "malformed request: " : "",
			 why);
		refuse(c, "http_request_error", status, msg);
		return;
	}
	consume(x, consumed);
	if (st == HTTP_REQ_HEAD_DONE) {
		conn_set_deadline(c, 0, NULL, NULL);
		start_request(c);
	}
}

static void http_client_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	struct http_exchange *x = c->d.http.x;

	(void)s;
	conn_touch(c);
	if (x == NULL) {
		/* The first byte of a request: its buffers exist from now until it ends. */
		x = malloc(sizeof(*x));
		if (x == NULL) {
			conn_close(c, "internal_error", "out of memory");
			return;
		}
		x->head = NULL;
		x->head_len = 0;
		x->buf_len = 0;
		x->client_write_failed = 0;
		http_req_init(&x->req);
		c->d.http.x = x;
	}
	if (len > sizeof(x->buf) - x->buf_len) {
		conn_close(c, "internal_error", "client read larger than the room announced");
		return;
	}
	memcpy(x->buf + x->buf_len, data, len);
	x->buf_len += len;
	http_process(c);
	if (c->phase == CONN_DRIVEN && c->driver == &http_driver)
		client_room(c);
}

static void http_client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;
	struct http_exchange *x = c->d.http.x;
	const char *why;

	switch (ev) {
	case STREAM_EOF:
		c->d.http.client_eof = 1;
		switch (c->d.http.wait) {
		case HTTP_AWAIT_HEAD:
			if (x == NULL || (x->buf_len == 0 && x->req.head_bytes == 0))
				conn_close(c, "done", NULL);
			else
				refuse(c, "http_request_error", 0,
					    "the client closed the connection in the middle of a request");
			break;
		case HTTP_AWAIT_ORIGIN:
			if (http_req_body_check(&x->req, (const char *)x->buf, x->buf_len, &why) != 1)
				conn_close(c, "client_closed", "the client closed the connection before its request was complete");
			break;
		case HTTP_AWAIT_RESPONSE:
			/* The body can never be complete: the origin would wait for it, holding both sides. */
			if (!x->req.body_done)
				conn_close(c, "client_closed",
					   "the client closed the connection in the middle of the request body");
			break;
		}
		/* else: the request is out, the response will be sent and then the connection closed */
		break;
	case STREAM_DRAINED:
		/* Response backpressure released. */
		if (c->d.http.wait == HTTP_AWAIT_RESPONSE && x != NULL && !x->resp.done && c->origin.s != NULL)
			stream_read_start(c->origin.s);
		break;
	case STREAM_ERROR:
		conn_close(c, "client_error", stream_error(s));
		break;
	default:
		break;
	}
}

void http_start(struct conn *c)
{
	c->driver = &http_driver;
	memset(&c->d.http, 0, sizeof(c->d.http));
	c->d.http.wait = HTTP_AWAIT_HEAD;
	stream_set_callbacks(c->client.s, http_client_data, http_client_event, c);
	client_room(c);
	stream_read_start(c->client.s);
}

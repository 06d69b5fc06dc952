/*
 * test_daemon.c - the daemon's drivers (proxy/daemon: conn.c, http.c, connect.c) and their state transitions, in
 * one process on one loop, with no DNS and nothing but loopback sockets: a client stream, the connection under
 * test (conn_new over a conn_env built here), and an in-process TLS origin whose certificate comes from a local CA
 * made for the test (the target is an IP literal, so the policy falls back to PKIX against that CA).
 *
 * Each test observes the connection through its struct (conn.h is the daemon's internal header): the driver's
 * awaited state, the phase, which buffers it holds, and the one log line written when it ends.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "ca.h"
#include "config.h"
#include "conn.h"
#include "dane.h"
#include "fileio.h"
#include "mint.h"
#include "stream.h"
#include "tls.h"

/* ---------- the fixture ---------- */

struct origin_conn {
	struct stream *s;
	char req[8192];
	size_t len;
	struct fixture *f;
};

struct fixture {
	uv_loop_t loop;
	char dir[64];
	struct config cfg;
	struct ca *ca;
	struct mint_cache *mint;
	struct tls_ctx *tls_server;
	struct tls_ctx *tls_client;
	struct dane_store *store;
	struct upstream_env up;
	struct conn_env env;
	struct conn_listener http_listener;
	uv_tcp_t proxy;              /* accepts clients into conn_new */
	uint16_t proxy_port;
	uv_tcp_t origin;             /* the in-process TLS origin */
	uint16_t origin_port;
	const char *origin_answer;   /* what the origin sends once it has a request head */
	int origin_requests;
	struct stream *client;       /* the test's client */
	char got[65536];             /* what the client received */
	size_t got_len;
	int client_eof;
	int gone;                    /* conns finished (env.gone) */
	char *log;
	size_t log_len;
	FILE *log_file;
};

static void on_gone(struct conn *c, void *arg)
{
	struct fixture *f = arg;

	(void)c;
	f->gone++;
}

static void on_proxy_accept(uv_stream_t *l, int status)
{
	struct fixture *f = l->data;
	struct stream *s;
	struct conn *c;

	assert_int_equal(status, 0);
	s = stream_new(&f->loop, NULL, NULL, NULL);
	assert_non_null(s);
	assert_int_equal(stream_accept(s, l), 0);
	c = conn_new(&f->env, &f->http_listener, s);
	assert_non_null(c);
	http_start(c);
}

/* ---- the origin: TLS with a leaf for 127.0.0.1 minted by the test CA; answers one canned response per head ---- */

static void origin_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct origin_conn *o = arg;

	if (o->len + len > sizeof(o->req))
		len = sizeof(o->req) - o->len;
	memcpy(o->req + o->len, data, len);
	o->len += len;
	if (memmem(o->req, o->len, "\r\n\r\n", 4) != NULL) {
		o->f->origin_requests++;
		o->len = 0;
		stream_write(s, (const uint8_t *)o->f->origin_answer, strlen(o->f->origin_answer));
	}
}

static void origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct origin_conn *o = arg;

	if (ev == STREAM_HANDSHAKE_DONE) {
		stream_read_start(s);
	} else if (ev == STREAM_EOF || ev == STREAM_ERROR) {
		stream_close(s);
		free(o);
	}
}

static void on_origin_accept(uv_stream_t *l, int status)
{
	struct fixture *f = l->data;
	struct origin_conn *o = calloc(1, sizeof(*o));
	const uint8_t *der, *key;
	size_t der_len, key_len;
	struct tls_conn *t;
	int minted;
	char err[200];

	assert_int_equal(status, 0);
	assert_non_null(o);
	o->f = f;
	o->s = stream_new(&f->loop, origin_data, origin_event, o);
	assert_int_equal(stream_accept(o->s, l), 0);
	assert_int_equal(mint_get(f->mint, "127.0.0.1", &der, &der_len, &minted, err, sizeof(err)), 0);
	key = ca_leaf_key_der(f->ca, &key_len);
	t = tls_server_new(f->tls_server, der, der_len, key, key_len, NULL);
	assert_non_null(t);
	assert_int_equal(stream_start_tls(o->s, t, NULL, 0), 0);
}

static uint16_t listen_on(struct fixture *f, uv_tcp_t *h, uv_connection_cb cb)
{
	struct sockaddr_in a;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	uv_ip4_addr("127.0.0.1", 0, &a);
	uv_tcp_init(&f->loop, h);
	h->data = f;
	assert_int_equal(uv_tcp_bind(h, (const struct sockaddr *)&a, 0), 0);
	assert_int_equal(uv_listen((uv_stream_t *)h, 16, cb), 0);
	assert_int_equal(uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len), 0);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* ---- the client ---- */

static void client_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct fixture *f = arg;

	(void)s;
	assert_true(f->got_len + len <= sizeof(f->got));
	memcpy(f->got + f->got_len, data, len);
	f->got_len += len;
}

static void client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct fixture *f = arg;

	if (ev == STREAM_CONNECTED)
		stream_read_start(s);
	else if (ev == STREAM_EOF || ev == STREAM_ERROR)
		f->client_eof = 1;
}

static void client_connect(struct fixture *f)
{
	struct sockaddr_in a;

	uv_ip4_addr("127.0.0.1", f->proxy_port, &a);
	f->client = stream_new(&f->loop, client_data, client_event, f);
	assert_non_null(f->client);
	assert_int_equal(stream_connect(f->client, (const struct sockaddr *)&a), 0);
}

static void client_send(struct fixture *f, const char *text)
{
	assert_int_equal(stream_write(f->client, (const uint8_t *)text, strlen(text)), 0);
}

/* run_until - run the loop until cond(f) holds; fails after 5 s. */
static void run_until(struct fixture *f, int (*cond)(struct fixture *f), const char *what)
{
	uint64_t end = uv_now(&f->loop) + 5000;

	while (!cond(f)) {
		if (uv_now(&f->loop) > end)
			fail_msg("timed out waiting for %s", what);
		uv_run(&f->loop, UV_RUN_ONCE);
		uv_update_time(&f->loop);
	}
}

static struct conn *the_conn(struct fixture *f)
{
	assert_int_equal(f->env.n_conns, 1);
	return f->env.conns;
}

static int got_response(struct fixture *f)
{
	const char *end = memmem(f->got, f->got_len, "\r\n\r\n", 4);
	const char *cl;

	if (end == NULL)
		return 0;
	cl = memmem(f->got, (size_t)(end - f->got), "Content-Length: ", 16);
	return cl == NULL || f->got_len >= (size_t)(end + 4 - f->got) + strtoul(cl + 16, NULL, 10);
}

static int conn_gone(struct fixture *f) { return f->gone > 0; }
static int client_closed(struct fixture *f) { return f->client_eof; }

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[300], path[128], *pem;
	size_t len;

	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	snprintf(f->dir, sizeof(f->dir), "/tmp/daneproxy-test-daemon.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	config_defaults(&f->cfg);
	f->cfg.ports[0].lo = 1;
	f->cfg.ports[0].hi = 65535;   /* the origin's port is whatever the kernel gave */
	f->cfg.n_ports = 1;
	assert_int_equal(ca_open(f->dir, 1, &f->ca, err, sizeof(err)), 0);
	f->mint = mint_cache_new(f->ca, 16);
	f->tls_server = tls_server_ctx_new(err, sizeof(err));
	f->tls_client = tls_client_ctx_new(err, sizeof(err));
	f->store = dane_store_new();
	assert_non_null(f->mint);
	assert_non_null(f->tls_server);
	assert_non_null(f->tls_client);
	snprintf(path, sizeof(path), "%s/ca.pem", f->dir);
	assert_int_equal(file_read_all(path, 65536, &pem, &len, err, sizeof(err)), 0);
	assert_int_equal(dane_store_add_pem(f->store, pem, len, err, sizeof(err)), 1);
	free(pem);
	f->up.loop = &f->loop;
	f->up.tls = f->tls_client;
	f->up.pkix_store = f->store;
	f->up.connect_timeout_ms = 2000;
	f->up.attempt_delay_ms = 250;
	f->up.handshake_timeout_ms = 2000;
	f->log_file = open_memstream(&f->log, &f->log_len);
	f->env.loop = &f->loop;
	f->env.cfg = &f->cfg;
	f->env.upstream = &f->up;
	f->env.default_policy = POLICY_DANE;
	f->env.ca = f->ca;
	f->env.mint = f->mint;
	f->env.tls_server = f->tls_server;
	f->env.log = f->log_file;
	f->env.gone = on_gone;
	f->env.gone_arg = f;
	f->http_listener.kind = "http";
	f->proxy_port = listen_on(f, &f->proxy, on_proxy_accept);
	f->origin_port = listen_on(f, &f->origin, on_origin_accept);
	f->origin_answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	conn_close_all(&f->env, 0);
	stream_close(f->client);
	uv_close((uv_handle_t *)&f->proxy, NULL);
	uv_close((uv_handle_t *)&f->origin, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);   /* every handle closes: the loop ends */
	assert_int_equal(f->env.n_conns, 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	fclose(f->log_file);
	free(f->log);
	mint_cache_free(f->mint);
	tls_ctx_free(f->tls_server);
	tls_ctx_free(f->tls_client);
	dane_store_free(f->store);
	ca_free(f->ca);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* request - an absolute-form GET to the in-process origin. */
static void request(struct fixture *f, const char *path, const char *extra)
{
	char req[512];

	snprintf(req, sizeof(req), "GET https://127.0.0.1:%u%s HTTP/1.1\r\nHost: x\r\n%s\r\n", f->origin_port, path, extra);
	client_send(f, req);
}

static int conn_exists(struct fixture *f) { return f->env.n_conns == 1; }

/* ---------- the tests ---------- */

/* HTTP_AWAIT_HEAD -> HTTP_AWAIT_ORIGIN -> HTTP_AWAIT_RESPONSE -> HTTP_AWAIT_HEAD; an idle keep-alive connection
 * holds no request buffers, and the verified origin is kept for the next request. */
static void test_http_keep_alive_cycle(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	client_connect(f);
	run_until(f, conn_exists, "the connection");
	c = the_conn(f);
	assert_int_equal(c->phase, CONN_DRIVEN);
	assert_int_equal(c->d.http.wait, HTTP_AWAIT_HEAD);
	assert_null(c->d.http.x);   /* nothing allocated before a byte arrives */
	request(f, "/one", "");
	run_until(f, got_response, "the first response");
	assert_non_null(strstr(f->got, "HTTP/1.1 200 OK\r\n"));
	assert_int_equal(c->d.http.wait, HTTP_AWAIT_HEAD);
	assert_null(c->d.http.x);   /* idle again: the buffers went with the request */
	assert_non_null(c->origin.s);
	assert_int_equal(c->requests, 1);
	f->got_len = 0;
	request(f, "/two", "");
	run_until(f, got_response, "the second response");
	assert_int_equal(f->origin_requests, 2);
	assert_int_equal(c->requests, 2);
	stream_shutdown(f->client);
	run_until(f, conn_gone, "the connection to end");
	assert_non_null(strstr(f->log, "\"requests\": 2"));
	assert_non_null(strstr(f->log, "\"close\": \"done\""));
}

/* A refusal answers with Proxy-Status and lingers: CONN_DRAINING reads and drops the client's body, then closes. */
static void test_refusal_drains(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	char req[256];

	f->cfg.ports[0].lo = f->cfg.ports[0].hi = 443;   /* the origin's port is now refused */
	client_connect(f);
	snprintf(req, sizeof(req), "POST https://127.0.0.1:%u/x HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc",
		 f->origin_port);
	client_send(f, req);
	run_until(f, got_response, "the 403");
	c = the_conn(f);
	assert_int_equal(c->phase, CONN_DRAINING);
	assert_null(c->driver);   /* the driver's buffers are gone already */
	assert_non_null(strstr(f->got, "HTTP/1.1 403 Forbidden\r\nProxy-Status: daneproxy; error=http_request_denied; "));
	assert_non_null(strstr(f->got, "Connection: close\r\n"));
	assert_int_equal(f->origin_requests, 0);
	client_send(f, "more body bytes the client was still sending");
	stream_shutdown(f->client);
	run_until(f, conn_gone, "the connection to end");
	assert_non_null(strstr(f->log, "\"error\": \"http_request_denied\""));
	assert_non_null(strstr(f->log, "\"close\": \"refused\""));
}

/* A client that leaves in the middle of its request body ends the connection at once (issue 9 finding 2). */
static void test_client_leaves_mid_body(void **state)
{
	struct fixture *f = *state;
	char req[256];

	f->origin_answer = "";   /* the origin waits for the body */
	client_connect(f);
	snprintf(req, sizeof(req), "POST https://127.0.0.1:%u/x HTTP/1.1\r\nContent-Length: 100000\r\n\r\nabc",
		 f->origin_port);
	client_send(f, req);
	stream_shutdown(f->client);
	run_until(f, conn_gone, "the connection to end");
	assert_non_null(strstr(f->log, "\"close\": \"client_closed\""));
}

/* An origin's HTTP/1.0 response reaches the client as HTTP/1.1, and its close ends the client connection. */
static void test_http10_origin(void **state)
{
	struct fixture *f = *state;

	f->origin_answer = "HTTP/1.0 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok";
	client_connect(f);
	request(f, "/old", "");
	run_until(f, client_closed, "the client connection to close");
	assert_string_equal(f->got, "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
	run_until(f, conn_gone, "the connection to end");
}

static int accept_any(const struct dane_chain *chain, void *arg)
{
	(void)chain;
	(void)arg;
	return 1;
}

/* CONNECT: CONNECT_AWAIT_ORIGIN -> 200 -> CONNECT_AWAIT_CLIENT_HELLO; a hello whose SNI names another host is refused
 * before anything is minted for it (the CONNECT host is an IP literal: an honest client sends no SNI for it). */
static void test_connect_sni_mismatch(void **state)
{
	struct fixture *f = *state;
	struct tls_conn *t;
	uint8_t *hello;
	size_t n;
	char req[128];
	struct conn *c;

	client_connect(f);
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f->origin_port);
	client_send(f, req);
	run_until(f, got_response, "the 200");
	assert_non_null(strstr(f->got, "HTTP/1.1 200 Connection Established\r\n"));
	c = the_conn(f);
	assert_int_equal(c->phase, CONN_DRIVEN);
	assert_int_equal(c->d.connect.wait, CONNECT_AWAIT_CLIENT_HELLO);
	assert_string_equal(c->tunnel, "terminated");
	t = tls_client_new(f->tls_client, "evil.example", NULL, accept_any, NULL);
	assert_non_null(t);
	assert_int_equal(tls_handshake(t), TLS_WANT);
	n = tls_out_take(t, &hello);
	assert_int_equal(stream_write(f->client, hello, n), 0);
	free(hello);
	tls_free(t);
	run_until(f, conn_gone, "the connection to end");
	assert_non_null(strstr(f->log, "\"close\": \"sni_mismatch\""));
	assert_non_null(strstr(f->log, "\"leaf\": null"));
}

/* CONNECT with passthrough: straight to the relay once the origin is reached; the connection holds no buffer. */
static void test_connect_passthrough_relays(void **state)
{
	struct fixture *f = *state;
	char req[128];
	struct conn *c;

	snprintf(f->cfg.passthrough[0], sizeof(f->cfg.passthrough[0]), "*");
	f->cfg.n_passthrough = 1;
	client_connect(f);
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", f->origin_port);
	client_send(f, req);
	run_until(f, got_response, "the 200");
	c = the_conn(f);
	assert_int_equal(c->phase, CONN_RELAYING);
	assert_null(c->driver);
	assert_string_equal(c->tunnel, "passthrough");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_http_keep_alive_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_drains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_leaves_mid_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10_origin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_sni_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connect_passthrough_relays, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * connect.c - the CONNECT driver: verify the origin, then either terminate the client's TLS with a leaf minted for
 * the CONNECT host (the default) or tunnel raw bytes (passthrough names). Handed over by http.c once a CONNECT
 * head has been checked (target syntax, port allow-list).
 *
 * States (enum connect_wait): CONNECT_AWAIT_ORIGIN (nothing is answered before the origin is verified, so a refused
 * origin is a 502 and never a 200) -> CONNECT_AWAIT_CLIENT_HELLO (200 sent; the whole ClientHello is read and its
 * SNI checked against the verified host before anything is minted) -> [CONNECT_AWAIT_ALPN_ORIGIN] ->
 * CONNECT_AWAIT_CLIENT_TLS (the handshake with the minted leaf, under handshake_timeout) -> the relay (conn.c).
 * Passthrough goes from the origin to the relay.
 *
 * ALPN is mirrored, so that HTTP/2 works through the tunnel without an HTTP/2 stack here: the origin is offered
 * "h2, http/1.1", the client is offered only what the origin chose; a client that does not offer that gets a second
 * origin connection, offered the client's own list (the TLSA records are cached: the same verification). With
 * [connect] terminate = dane, a name where DANE does not apply (no DNSSEC-secure usable TLSA) is tunnelled untouched.
 * Memory: the ClientHello buffer exists until the handshake starts; an established tunnel holds no buffer of ours.
 */
#include "ca.h"
#include "clienthello.h"
#include "conn.h"
#include "mint.h"
#include "stream.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int connect_idle(const struct conn *c)
{
	(void)c;
	return 0;   /* a tunnel being set up is work in flight */
}

/* connect_release - the ClientHello buffer. */
static void connect_release(struct conn *c)
{
	free(c->d.connect.hello);
	c->d.connect.hello = NULL;
	c->d.connect.hello_len = 0;
}

static const struct conn_driver connect_driver = {"connect", connect_idle, connect_release, NULL};

static void reopen_origin(struct conn *c);
static void connect_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg);

/* alpn_listed - proto is one of the comma-separated list. */
static int alpn_listed(const char *list, const char *proto)
{
	size_t n = strlen(proto);
	const char *p = list;

	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && memcmp(p, proto, n) == 0)
			return 1;
		p += len + (comma ? 1 : 0);
	}
	return 0;
}

/* hello_append - keep client bytes until the whole ClientHello is in (bounded by CLIENTHELLO_MAX). */
static int hello_append(struct conn *c, const uint8_t *data, size_t len)
{
	struct connect_state *st = &c->d.connect;

	if (len == 0)
		return 0;
	if (st->hello == NULL && (st->hello = malloc(CLIENTHELLO_MAX)) == NULL) {
		conn_close(c, "internal_error", "out of memory");
		return -1;
	}
	if (len > CLIENTHELLO_MAX - st->hello_len) {
		conn_close(c, "client_tls_error", "ClientHello larger than 32 KiB");
		return -1;
	}
	memcpy(st->hello + st->hello_len, data, len);
	st->hello_len += len;
	stream_set_read_limit(c->client.s, CLIENTHELLO_MAX - st->hello_len);
	return 0;
}

static void client_tls_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_HANDSHAKE_DONE)
		conn_relay(c, NULL, 0);
	else if (ev == STREAM_ERROR || ev == STREAM_EOF)
		conn_close(c, "client_tls_error",
			   ev == STREAM_EOF ? "client closed during the TLS handshake" : stream_error(s));
}

/* origin_event - while the client's side is being set up, the verified origin may only go away. */
static void origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_ERROR || ev == STREAM_EOF)
		conn_close(c, "origin_closed",
			   ev == STREAM_EOF ? "the origin closed before the client's handshake" : stream_error(s));
}

/* check_hello - once the whole ClientHello is in: its SNI must be the verified host; mint, start the handshake. */
static void check_hello(struct conn *c)
{
	struct connect_state *st = &c->d.connect;
	const struct conn_env *env = c->env;
	struct clienthello ch;
	const uint8_t *der, *key;
	size_t der_len, key_len;
	struct tls_conn *t;
	char err[400], sni[256 * 4 + 1];
	const char *why;
	int minted;

	switch (clienthello_parse(st->hello, st->hello_len, CLIENTHELLO_MAX, &ch, &why)) {
	case CLIENTHELLO_NEED_MORE:
		if (st->hello_len == CLIENTHELLO_MAX)
			conn_close(c, "client_tls_error", "ClientHello larger than 32 KiB");
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
	/* The client must speak what the origin chose; if it does not, ask the origin again with the client's list. */
	if (c->rep.alpn[0] != '\0' && !alpn_listed(ch.alpn, c->rep.alpn)) {
		snprintf(st->client_alpn, sizeof(st->client_alpn), "%s", ch.alpn);
		reopen_origin(c);
		return;
	}
	if (mint_get(env->mint, c->host, &der, &der_len, &minted, err, sizeof(err)) < 0) {
		conn_close(c, "mint_error", err);
		return;
	}
	c->leaf = minted ? "minted" : "cached";
	key = ca_leaf_key_der(env->ca, &key_len);
	t = tls_server_new(env->tls_server, der, der_len, key, key_len, c->rep.alpn[0] ? c->rep.alpn : NULL);
	if (t == NULL) {
		conn_close(c, "internal_error", "cannot create the client TLS session");
		return;
	}
	st->wait = CONNECT_AWAIT_CLIENT_TLS;
	stream_read_stop(c->client.s);
	stream_set_callbacks(c->client.s, NULL, client_tls_event, c);
	if (stream_start_tls(c->client.s, t, st->hello, st->hello_len) < 0 && c->phase != CONN_CLOSING) {
		conn_close(c, "client_tls_error", stream_error(c->client.s));
		return;
	}
	if (c->phase == CONN_DRIVEN && c->driver == &connect_driver)
		connect_release(c);   /* the session has the bytes; the buffer goes */
}

static void hello_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)s;
	conn_touch(c);
	if (hello_append(c, data, len) < 0)
		return;
	if (c->d.connect.wait == CONNECT_AWAIT_CLIENT_HELLO)
		check_hello(c);   /* (bytes that arrive while a second origin is opened wait in the buffer) */
}

/* client_event - before the tunnel: a client that goes away ends it at once. */
static void client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_EOF)
		conn_close(c, "client_closed", "the client closed the connection before the tunnel was established");
	else if (ev == STREAM_ERROR)
		conn_close(c, "client_error", stream_error(s));
}

static void connect_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;
	struct connect_state *st = &c->d.connect;
	static const char established[] = "HTTP/1.1 200 Connection Established\r\n\r\n";

	c->up = NULL;
	conn_take_report(c, rep);
	if (st->wait == CONNECT_AWAIT_ALPN_ORIGIN) {
		/* The 200 is out: a refusal now can only end the tunnel. */
		if (origin == NULL) {
			conn_close(c, "refused", rep->details);
			return;
		}
		c->origin.s = origin;
		stream_set_callbacks(c->origin.s, NULL, origin_event, c);
		st->wait = CONNECT_AWAIT_CLIENT_HELLO;
		check_hello(c);
		return;
	}
	if (origin == NULL) {
		conn_refuse(c, rep->error, 0, rep->details);
		return;
	}
	c->origin.s = origin;
	c->status = 200;
	c->requests++;
	if (rep->method == AUTH_PASSTHROUGH && !st->passthrough) {
		st->passthrough = 1;
		c->tunnel = "passthrough";
		c->tunnel_reason = "terminate = dane and no DNSSEC-secure usable TLSA: the client authenticates the origin";
	}
	if (stream_write(c->client.s, (const uint8_t *)established, sizeof(established) - 1) < 0) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	if (st->passthrough) {
		/* Bytes the client sent early (after the CONNECT head) go first. */
		conn_relay(c, st->hello, st->hello_len);
		return;
	}
	st->wait = CONNECT_AWAIT_CLIENT_HELLO;
	/* A client dribbling its handshake must not hold a verified origin open byte by byte. */
	conn_set_deadline(c, c->env->cfg->handshake_timeout_ms, "client_handshake_timeout",
			  "the client did not complete its TLS handshake in time");
	stream_set_callbacks(c->origin.s, NULL, origin_event, c);
	check_hello(c);
	if (c->phase == CONN_DRIVEN && st->wait == CONNECT_AWAIT_CLIENT_HELLO)
		stream_read_start(c->client.s);
}

/* passthrough - CONNECT to host is tunnelled without termination ([connect] passthrough). */
static int passthrough(const struct conn *c)
{
	const struct config *cfg = c->env->cfg;
	size_t i;

	for (i = 0; i < cfg->n_passthrough; i++)
		if (policy_pattern_matches(cfg->passthrough[i], c->host))
			return 1;
	return 0;
}

/* open_origin - upstream_open for this tunnel: plain for passthrough, else TLS offering alpn. */
static void open_origin(struct conn *c, const char *alpn)
{
	struct connect_state *st = &c->d.connect;
	unsigned flags = st->passthrough ? UPSTREAM_PLAIN : c->env->cfg->terminate_dane ? UPSTREAM_TUNNEL_UNLESS_DANE : 0;

	c->have_rep = 0;
	c->up = upstream_open(c->env->upstream, c->host, c->port, c->policy, st->passthrough ? NULL : alpn, flags,
			      connect_upstream_done, c);
	if (c->up == NULL)
		conn_close(c, "internal_error", "out of memory");
}

/* reopen_origin - the client cannot speak the protocol the origin chose: the same origin, offered the client's
 * own ALPN list (or none). */
static void reopen_origin(struct conn *c)
{
	struct connect_state *st = &c->d.connect;

	stream_close(c->origin.s);
	c->origin.s = NULL;
	st->wait = CONNECT_AWAIT_ALPN_ORIGIN;
	open_origin(c, st->client_alpn[0] ? st->client_alpn : NULL);
}

void connect_start(struct conn *c, const uint8_t *early, size_t early_len)
{
	struct connect_state *st = &c->d.connect;

	c->driver = &connect_driver;
	memset(st, 0, sizeof(*st));
	st->wait = CONNECT_AWAIT_ORIGIN;
	st->passthrough = passthrough(c);
	c->tunnel = st->passthrough ? "passthrough" : "terminated";
	c->tunnel_reason = st->passthrough ? "a [connect] passthrough rule names the host" : "the proxy authenticates the origin";
	if (!st->passthrough && !ca_permits(c->env->ca, c->host)) {
		conn_refuse(c, "http_request_denied", 0,
			    "the target is outside the local CA's name constraints ([connect] ca_name_constraints)");
		return;
	}
	if (hello_append(c, early, early_len) < 0)
		return;
	/* An origin kept from an earlier request on this connection is of no use to a tunnel. */
	conn_keep_origin(c, 0);
	stream_close(c->origin.s);
	c->origin.s = NULL;
	c->policy = conn_policy(c, c->host, c->port);
	c->have_rep = 0;
	/* The client is read while the origin is verified (into the hello buffer, nothing sent), so that a client that
	 * leaves is noticed at once. */
	stream_set_callbacks(c->client.s, hello_data, client_event, c);
	stream_set_read_limit(c->client.s, CLIENTHELLO_MAX - st->hello_len);
	stream_read_start(c->client.s);
	open_origin(c, "h2,http/1.1");
}

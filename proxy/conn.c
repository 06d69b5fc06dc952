/*
 * conn.c - the connection lifecycle (one owner, one exit, one log line) and port-mapped routes.
 *
 * A route connection waits in CONN_AWAIT_UPSTREAM without reading a byte from the client, so nothing the
 * client sends can reach an origin that has not been verified; then it relays in CONN_RELAYING with the two
 * streams as symmetric halves: data read from one is written to the other, reading stops while the other's
 * queue is above CONN_HIGH_WATER and resumes when it drains; EOF is passed on as a half-close.
 */
#include "conn.h"
#include "json.h"
#include "server.h"
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void on_idle_closed(uv_handle_t *h);
static void conn_arm(struct conn *c);

/* conn_log - the connection's one structured line. */
static void conn_log(const struct conn *c)
{
	FILE *out = c->srv->log;
	const struct upstream_report *r = &c->rep;
	struct timespec ts;
	struct tm tm;
	char when[40];

	if (out == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "{\"ts\": \"%s.%03ldZ\", \"conn\": %llu, \"listener\": \"%s\", \"client\": ", when,
		ts.tv_nsec / 1000000, (unsigned long long)c->id, c->kind == CONN_ROUTE ? "route" : "http");
	json_put_string(out, c->client_addr);
	fprintf(out, ", \"target\": ");
	if (c->host[0]) {
		char target[RESOLVER_MAX_NAME + 8];
		snprintf(target, sizeof(target), "%s:%u", c->host, c->port);
		json_put_string(out, target);
	} else {
		fputs("null", out);
	}
	fprintf(out, ", \"tunnel\": %s", c->tunnel == CONN_TUNNEL_TERMINATED ? "\"terminated\""
					  : c->tunnel == CONN_TUNNEL_PASSTHROUGH ? "\"passthrough\"" : "null");
	fprintf(out, ", \"leaf\": %s", c->leaf == 1 ? "\"cached\"" : c->leaf == 2 ? "\"minted\"" : "null");
	fprintf(out, ", \"requests\": %u, \"status\": ", c->requests);
	if (c->status)
		fprintf(out, "%d", c->status);
	else
		fputs("null", out);
	fprintf(out, ", \"policy\": \"%s\", \"dnssec\": ", policy_mode_name(c->have_rep ? r->policy : c->policy));
	json_put_string(out, c->have_rep && r->dns_done ? resolver_outcome_name(r->dnssec) : NULL);
	fprintf(out, ", \"auth\": ");
	json_put_string(out, !c->have_rep || r->error ? NULL : auth_method_name(r->method));
	fprintf(out, ", \"tlsa\": ");
	json_put_string(out, c->have_rep && r->record[0] ? r->record : NULL);
	fprintf(out, ", \"depth\": ");
	if (c->have_rep && r->depth >= 0)
		fprintf(out, "%d", r->depth);
	else
		fputs("null", out);
	fprintf(out, ", \"verdict\": ");
	json_put_string(out, c->have_rep ? r->verdict : NULL);
	fprintf(out, ", \"error\": ");
	json_put_string(out, c->have_rep && r->error ? r->error : c->refusal);
	fprintf(out, ", \"details\": ");
	json_put_string(out, c->have_rep && r->error ? r->details : NULL);
	fprintf(out, ", \"peer\": ");
	json_put_string(out, c->have_rep && r->peer[0] ? r->peer : NULL);
	fprintf(out, ", \"tls\": ");
	json_put_string(out, c->have_rep && r->tls_version[0] ? r->tls_version : NULL);
	fprintf(out, ", \"bytes_up\": %llu, \"bytes_down\": %llu, \"dns_ms\": %.3f, \"connect_ms\": %.3f, "
		     "\"handshake_ms\": %.3f, \"duration_ms\": %.3f, \"close\": ",
		(unsigned long long)c->bytes_up, (unsigned long long)c->bytes_down, c->have_rep ? r->dns_ms : 0.0,
		c->have_rep ? r->connect_ms : 0.0, c->have_rep ? r->handshake_ms : 0.0,
		(double)(uv_hrtime() - c->t_start_ns) / 1e6);
	json_put_string(out, c->close_reason);
	if (c->close_detail[0]) {
		fprintf(out, ", \"close_detail\": ");
		json_put_string(out, c->close_detail);
	}
	fputs("}\n", out);
	fflush(out);
}

void conn_take_report(struct conn *c, const struct upstream_report *rep)
{
	c->rep = *rep;
	c->have_rep = 1;
}

void conn_close(struct conn *c, const char *reason, const char *detail)
{
	if (c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	c->close_reason = reason;
	if (detail != NULL)
		snprintf(c->close_detail, sizeof(c->close_detail), "%s", detail);
	if (c->up != NULL) {
		upstream_cancel(c->up);
		c->up = NULL;
	}
	stream_close(c->client);
	stream_close(c->origin);
	c->client = c->origin = NULL;
	uv_timer_stop(&c->idle);
	uv_close((uv_handle_t *)&c->idle, on_idle_closed);
}

/* on_idle_closed - the last handle is gone: log, unlink, free. */
static void on_idle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	conn_log(c);
	server_conn_gone(c->srv, c);
	free(c->io);
	free(c);
}

/*
 * on_idle - one timer serves two limits: header_timeout from the first byte of a request head (a slow head
 * cannot keep itself alive byte by byte) and idle_timeout since the last byte moved.
 */
static void on_idle(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(c->srv->loop);

	if (c->state == CONN_EXPECT_REQUEST && conn_head_bytes(c) > 0 &&
	    now - c->head_started_ms >= c->srv->cfg->header_timeout_ms) {
		conn_close(c, "header_timeout", "the request head was not complete in time");
		return;
	}
	if (c->state == CONN_AWAIT_CLIENT_TLS &&
	    now - c->client_tls_started_ms >= c->srv->cfg->handshake_timeout_ms) {
		conn_close(c, "client_handshake_timeout", "the client did not complete its TLS handshake in time");
		return;
	}
	if (now - c->last_activity_ms >= c->srv->cfg->idle_timeout_ms) {
		conn_close(c, "idle_timeout", NULL);
		return;
	}
	conn_arm(c);
}

/* conn_arm - run on_idle at the nearer of the two deadlines. */
static void conn_arm(struct conn *c)
{
	uint64_t now = uv_now(c->srv->loop), due, header_due;

	due = c->last_activity_ms + c->srv->cfg->idle_timeout_ms;
	if (c->state == CONN_EXPECT_REQUEST && conn_head_bytes(c) > 0) {
		header_due = c->head_started_ms + c->srv->cfg->header_timeout_ms;
		if (header_due < due)
			due = header_due;
	}
	/* A client dribbling its handshake must not hold a verified origin open byte by byte. */
	if (c->state == CONN_AWAIT_CLIENT_TLS) {
		header_due = c->client_tls_started_ms + c->srv->cfg->handshake_timeout_ms;
		if (header_due < due)
			due = header_due;
	}
	uv_timer_start(&c->idle, on_idle, due > now ? due - now : 0, 0);
}

void conn_touch(struct conn *c)
{
	if (c->state == CONN_CLOSING)
		return;
	c->last_activity_ms = uv_now(c->srv->loop);
	conn_arm(c);
}

/* ---------- relaying (routes, and HTTP after 101 Switching Protocols) ---------- */

/* relay_check_done - close once both directions are done and drained. */
static void relay_check_done(struct conn *c)
{
	if (c->client_eof && c->origin_eof && stream_write_queued(c->client) == 0 &&
	    stream_write_queued(c->origin) == 0)
		conn_close(c, "done", NULL);
}

static void relay_data(struct stream *from, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	int upward = from == c->client;
	struct stream *to = upward ? c->origin : c->client;

	conn_touch(c);
	if (upward)
		c->bytes_up += len;
	else
		c->bytes_down += len;
	if (stream_write(to, data, len) < 0) {
		conn_close(c, upward ? "origin_write_error" : "client_write_error", stream_error(to));
		return;
	}
	if (stream_write_queued(to) > CONN_HIGH_WATER)
		stream_read_stop(from);
}

static void relay_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;
	int is_client = s == c->client;
	struct stream *other = is_client ? c->origin : c->client;

	switch (ev) {
	case STREAM_EOF:
		/* Half-close: pass the FIN on and keep the other direction flowing. */
		if (is_client)
			c->client_eof = 1;
		else
			c->origin_eof = 1;
		stream_shutdown(other);
		relay_check_done(c);
		break;
	case STREAM_DRAINED:
		conn_touch(c);
		if (!(is_client ? c->origin_eof : c->client_eof))
			stream_read_start(other);
		relay_check_done(c);
		break;
	case STREAM_ERROR:
		conn_close(c, is_client ? "client_error" : "origin_error", stream_error(s));
		break;
	default:
		break;
	}
}

void conn_relay(struct conn *c)
{
	c->state = CONN_RELAYING;
	stream_set_callbacks(c->client, relay_data, relay_event, c);
	stream_set_callbacks(c->origin, relay_data, relay_event, c);
	conn_touch(c);
	if (stream_read_start(c->origin) < 0 || c->state == CONN_CLOSING)
		return;
	stream_read_start(c->client);
}

/* ---------- routes ---------- */

static void route_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;

	c->up = NULL;
	conn_take_report(c, rep);
	if (origin == NULL) {
		/* Routes have no way to explain: the log line says why, the client sees the connection close. */
		conn_close(c, "refused", rep->details);
		return;
	}
	c->origin = origin;
	/* STARTTLS routes: the client gets the server's greeting, then talks to it over our TLS session. */
	if (rep->smtp_greeting[0] != '\0' &&
	    stream_write(c->client, (const uint8_t *)rep->smtp_greeting, strlen(rep->smtp_greeting)) < 0) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	conn_relay(c);
}

/* route_client_event - before the origin is verified the client is not read; only errors matter. */
static void route_client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_ERROR)
		conn_close(c, "client_error", stream_error(s));
}

void route_conn_start(struct conn *c)
{
	const struct listener *l = c->listener;

	snprintf(c->host, sizeof(c->host), "%s", l->route->host);
	c->port = l->route->port;
	c->policy = l->route_policy;
	c->state = CONN_AWAIT_UPSTREAM;
	stream_set_callbacks(c->client, NULL, route_client_event, c);
	c->up = upstream_open(&c->srv->rt.env, c->host, c->port, c->policy, NULL,
			      l->route->starttls[0] ? UPSTREAM_STARTTLS_SMTP : 0, route_upstream_done, c);
	if (c->up == NULL)
		conn_close(c, "internal_error", "out of memory");
}

/*
 * route.c - the port-mapped route driver: every client of a route's listener gets a DANE-verified TLS connection
 * to the route's destination (after an SMTP STARTTLS dialogue for `starttls = smtp`), then raw bytes both ways.
 *
 * One state, ROUTE_AWAIT_ORIGIN: the client is not read at all before the origin is verified, so nothing the client
 * sends can reach an origin that has not been; then the relay (conn.c). A refused origin closes the client
 * connection (a route has no way to explain: the log line says why).
 */
#include "conn.h"
#include "stream.h"

#include <stdio.h>
#include <string.h>

static int route_idle(const struct conn *c)
{
	(void)c;
	return 0;
}

static const struct conn_driver route_driver = {"route", route_idle, NULL, NULL};

static void route_upstream_done(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;

	c->up = NULL;
	conn_take_report(c, rep);
	if (origin == NULL) {
		conn_close(c, "refused", rep->details);
		return;
	}
	c->origin.s = origin;
	/* STARTTLS routes: the client gets the server's greeting, then talks to it over our TLS session. */
	if (rep->smtp_greeting[0] != '\0' &&
	    stream_write(c->client.s, (const uint8_t *)rep->smtp_greeting, strlen(rep->smtp_greeting)) < 0) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	conn_relay(c, NULL, 0);
}

/* route_client_event - before the origin is verified the client is not read; only errors matter. */
static void route_client_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_ERROR)
		conn_close(c, "client_error", stream_error(s));
}

void route_start(struct conn *c)
{
	const struct config_route *r = c->listener->route;

	c->driver = &route_driver;
	c->d.route.wait = ROUTE_AWAIT_ORIGIN;
	snprintf(c->host, sizeof(c->host), "%s", r->host);
	c->port = r->port;
	c->policy = c->listener->route_policy;
	stream_set_callbacks(c->client.s, NULL, route_client_event, c);
	c->up = upstream_open(c->env->upstream, c->host, c->port, c->policy, NULL,
			      r->starttls[0] ? UPSTREAM_STARTTLS_SMTP : 0, route_upstream_done, c);
	if (c->up == NULL)
		conn_close(c, "internal_error", "out of memory");
}

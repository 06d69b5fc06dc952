/*
 * conn.c - the one owner of client connections: creation, the timer, the relay of raw bytes, refusals answered
 * over HTTP with a lingering close, and the one exit with the one log line.
 *
 * The relay is two symmetric halves: bytes read from one stream are written to the other, reading stops while the
 * other's queue is above CONN_HIGH_WATER and resumes when it drains, and an end of stream is passed on as a
 * half-close. Memory: a connection is this struct, its streams and, only while a driver needs them, the driver's
 * buffers (see http.c and connect.c).
 */
#include "conn.h"
#include "json.h"
#include "metrics.h"
#include "proxy_status.h"
#include "stream.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A lingering close reads and drops at most this much, for at most this long after the answer is out. */
#define DRAIN_MAX_BYTES (16u << 20)
#define DRAIN_MAX_MS 5000

static void on_timer(uv_timer_t *t);
static void on_timer_closed(uv_handle_t *h);
static void conn_arm(struct conn *c);

/* ---------- lifecycle ---------- */

struct conn *conn_new(struct conn_env *env, const struct conn_listener *listener, struct stream *client)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		stream_close(client);
		return NULL;
	}
	c->env = env;
	c->listener = listener;
	c->id = ++env->next_id;
	c->phase = CONN_DRIVEN;
	c->client.s = client;
	c->t_start_ns = uv_hrtime();
	c->policy = env->default_policy;
	stream_peer(client, c->client_addr, sizeof(c->client_addr));
	uv_timer_init(env->loop, &c->timer);
	c->timer.data = c;
	c->next = env->conns;
	if (env->conns)
		env->conns->prev = c;
	env->conns = c;
	env->n_conns++;
	conn_touch(c);
	return c;
}

void conn_close(struct conn *c, const char *reason, const char *detail)
{
	if (c->phase == CONN_CLOSING)
		return;
	c->phase = CONN_CLOSING;
	c->close_reason = reason;
	if (detail != NULL)
		snprintf(c->close_detail, sizeof(c->close_detail), "%s", detail);
	if (c->up != NULL) {
		upstream_cancel(c->up);
		c->up = NULL;
	}
	stream_close(c->client.s);
	stream_close(c->origin.s);
	c->client.s = c->origin.s = NULL;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void conn_close_all(struct conn_env *env, int idle_only)
{
	struct conn *c, *next;

	for (c = env->conns; c != NULL; c = next) {
		next = c->next;   /* conn_close never unlinks at once (the timer closes first), but be safe */
		if (!idle_only || (c->phase == CONN_DRIVEN && c->driver != NULL && c->driver->idle != NULL &&
				   c->driver->idle(c)))
			conn_close(c, "shutdown", NULL);
	}
}

/* conn_log - the connection's one structured line. */
static void conn_log(const struct conn *c)
{
	FILE *out = c->env->log;
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
		ts.tv_nsec / 1000000, (unsigned long long)c->id, c->listener->kind);
	json_put_string(out, c->client_addr);
	fprintf(out, ", \"target\": ");
	if (c->host[0]) {
		char target[RESOLVER_MAX_NAME + 8];
		snprintf(target, sizeof(target), "%s:%u", c->host, c->port);
		json_put_string(out, target);
	} else {
		fputs("null", out);
	}
	fprintf(out, ", \"tunnel\": ");
	json_put_string(out, c->tunnel);
	fprintf(out, ", \"tunnel_reason\": ");
	json_put_string(out, c->tunnel_reason);
	fprintf(out, ", \"leaf\": ");
	json_put_string(out, c->leaf);
	fprintf(out, ", \"requests\": %u, \"status\": ", c->requests);
	if (c->status)
		fprintf(out, "%d", c->status);
	else
		fputs("null", out);
	fprintf(out, ", \"policy\": \"%s\", \"dnssec\": ", policy_mode_name(c->have_rep ? r->policy : c->policy));
	json_put_string(out, c->have_rep && r->dns_done ? resolver_outcome_name(r->dnssec) : NULL);
	fprintf(out, ", \"dns_rcode\": ");
	json_put_string(out, c->have_rep ? dns_rcode_name(r->dns_rcode) : NULL);
	fprintf(out, ", \"dns_info_code\": ");
	if (c->have_rep && r->dns_info_code >= 0)
		fprintf(out, "%d", r->dns_info_code);
	else
		fputs("null", out);
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
	fprintf(out, ", \"alpn\": ");
	json_put_string(out, c->have_rep && r->alpn[0] ? r->alpn : NULL);
	/* true or false only where a TLS handshake with the origin completed; null for tunnels, plaintext and refusals
	 * before (or during) the handshake, so that "false" always means a full, verified handshake. */
	fprintf(out, ", \"resumed\": %s", !c->have_rep || !r->tls_version[0] ? "null" : r->resumed ? "true" : "false");
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

/* on_timer_closed - the last handle is gone: log, unlink, release the driver's memory, free. */
static void on_timer_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct conn_env *env = c->env;

	conn_log(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		env->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	env->n_conns--;
	env->released++;
	if (c->driver != NULL && c->driver->release != NULL)
		c->driver->release(c);
	if (env->gone != NULL)
		env->gone(c, env->gone_arg);
	free(c);
}

void conn_keep_origin(struct conn *c, int keep)
{
	c->origin_idle_ms = keep ? uv_now(c->env->loop) + c->env->cfg->origin_keepalive_ms : 0;
	if (c->phase != CONN_CLOSING)
		conn_arm(c);
}

/* count_refusal - one refusal more under its RFC 9209 token. */
static void count_refusal(struct conn *c, const char *token)
{
	size_t i = proxy_status_index(proxy_status_lookup(token));

	if (c->env->metrics != NULL && i < METRICS_MAX_TOKENS)
		metrics_add(&c->env->metrics->refusals[i], 1);
}

/* count_upstream - what an origin's opening tells the metrics: the DNSSEC outcome, timings, how it was
 * authenticated or why it was refused. */
static void count_upstream(struct conn *c, const struct upstream_report *rep)
{
	struct metrics_slot *m = c->env->metrics;
	enum metrics_verification v;

	if (m == NULL)
		return;
	if (rep->dns_done && (unsigned)rep->dnssec < METRICS_N_OUTCOMES) {
		metrics_add(&m->dnssec[rep->dnssec], 1);
		metrics_observe(&m->dns, rep->dns_ms);
	}
	if (rep->tls_version[0]) {
		/* tls_version is set only once a handshake completed: the log line's "resumed" counts the same ones */
		metrics_observe(&m->handshake, rep->handshake_ms);
		metrics_add(&m->upstream_handshakes[rep->resumed ? 1 : 0], 1);
	}
	if (rep->error != NULL) {
		v = METRICS_VERIFY_REFUSED;
		count_refusal(c, rep->error);
	} else if (rep->method == AUTH_DANE) {
		/* the usage of the record that matched: 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
		v = rep->record[0] == '0' ? METRICS_VERIFY_PKIX_TA : rep->record[0] == '1' ? METRICS_VERIFY_PKIX_EE
		  : rep->record[0] == '2' ? METRICS_VERIFY_DANE_TA : METRICS_VERIFY_DANE_EE;
	} else if (rep->method == AUTH_PKIX) {
		v = METRICS_VERIFY_PKIX_FALLBACK;
	} else if (rep->method == AUTH_ENCRYPT) {
		v = METRICS_VERIFY_ENCRYPT_ONLY;
	} else {
		v = METRICS_VERIFY_PASSTHROUGH;
	}
	metrics_add(&m->verifications[v], 1);
}

void conn_take_report(struct conn *c, const struct upstream_report *rep)
{
	c->rep = *rep;
	c->have_rep = 1;
	count_upstream(c, rep);
}

enum policy_mode conn_policy(const struct conn *c, const char *host, uint16_t port)
{
	return policy_lookup(c->env->rules, c->env->n_rules, host, port, c->env->default_policy);
}

/* ---------- the timer: idle_timeout and the driver's deadline ---------- */

/* conn_arm - run on_timer at the nearer of the idle deadline and the driver's. */
static void conn_arm(struct conn *c)
{
	uint64_t now = uv_now(c->env->loop), due;

	due = c->last_activity_ms + c->env->cfg->idle_timeout_ms;
	if (c->deadline_ms != 0 && c->deadline_ms < due)
		due = c->deadline_ms;
	if (c->origin_idle_ms != 0 && c->origin_idle_ms < due)
		due = c->origin_idle_ms;
	uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	uint64_t now = uv_now(c->env->loop);

	if (c->deadline_ms != 0 && now >= c->deadline_ms) {
		conn_close(c, c->deadline_reason, c->deadline_detail);
		return;
	}
	if (c->origin_idle_ms != 0 && now >= c->origin_idle_ms) {
		/* The kept origin was not asked for again in time: an idle client should not hold a TLS session. */
		c->origin_idle_ms = 0;
		stream_close(c->origin.s);
		c->origin.s = NULL;
		c->env->released++;
	}
	if (now - c->last_activity_ms >= c->env->cfg->idle_timeout_ms) {
		if (c->driver != NULL && c->driver->awaiting_origin != NULL && c->driver->awaiting_origin(c))
			c->last_activity_ms = now;
		else {
			conn_close(c, "idle_timeout", NULL);
			return;
		}
	}
	conn_arm(c);
}

void conn_touch(struct conn *c)
{
	if (c->phase == CONN_CLOSING)
		return;
	c->last_activity_ms = uv_now(c->env->loop);
	conn_arm(c);
}

void conn_set_deadline(struct conn *c, uint64_t ms, const char *reason, const char *detail)
{
	if (c->phase == CONN_CLOSING)
		return;
	c->deadline_ms = ms ? uv_now(c->env->loop) + ms : 0;
	c->deadline_reason = reason;
	c->deadline_detail = detail;
	conn_arm(c);
}

/* ---------- relaying: routes, tunnels, HTTP after 101 Switching Protocols ---------- */

/* relay_other - the half a stream writes to. */
static struct half *relay_other(struct conn *c, const struct stream *s)
{
	return s == c->client.s ? &c->origin : &c->client;
}

/* relay_check_done - close once both directions are finished and their bytes delivered. */
static void relay_check_done(struct conn *c)
{
	if (c->client.eof && c->origin.eof && stream_write_queued(c->client.s) == 0 &&
	    stream_write_queued(c->origin.s) == 0)
		conn_close(c, "done", NULL);
}

static void relay_data(struct stream *from, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	struct half *to = relay_other(c, from);
	int upward = from == c->client.s;

	conn_touch(c);
	if (upward)
		c->bytes_up += len;
	else
		c->bytes_down += len;
	if (stream_write(to->s, data, len) < 0) {
		conn_close(c, upward ? "origin_write_error" : "client_write_error", stream_error(to->s));
		return;
	}
	if (stream_write_queued(to->s) > CONN_HIGH_WATER)
		stream_read_stop(from);
}

static void relay_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;
	struct half *self = s == c->client.s ? &c->client : &c->origin, *other = relay_other(c, s);

	switch (ev) {
	case STREAM_EOF:
		/* Half-close: pass the FIN on and keep the other direction flowing. */
		self->eof = 1;
		stream_shutdown(other->s);
		relay_check_done(c);
		break;
	case STREAM_DRAINED:
		/* s's queue is out: the other side may be read again. */
		conn_touch(c);
		if (!other->eof)
			stream_read_start(other->s);
		relay_check_done(c);
		break;
	case STREAM_ERROR:
		conn_close(c, s == c->client.s ? "client_error" : "origin_error", stream_error(s));
		break;
	default:
		break;
	}
}

void conn_relay(struct conn *c, const uint8_t *pending, size_t pending_len)
{
	int failed = 0;

	c->phase = CONN_RELAYING;
	conn_set_deadline(c, 0, NULL, NULL);
	stream_set_callbacks(c->client.s, relay_data, relay_event, c);
	stream_set_callbacks(c->origin.s, relay_data, relay_event, c);
	if (pending_len > 0) {
		c->bytes_up += pending_len;
		failed = stream_write(c->origin.s, pending, pending_len) < 0;
	}
	/* The driver is done (pending may have been its memory): what it held goes now, not at close. */
	if (c->driver != NULL && c->driver->release != NULL)
		c->driver->release(c);
	c->driver = NULL;
	if (failed) {
		conn_close(c, "origin_write_error", stream_error(c->origin.s));
		return;
	}
	conn_touch(c);
	if (stream_read_start(c->origin.s) < 0 || c->phase == CONN_CLOSING)
		return;
	stream_read_start(c->client.s);
}

/* ---------- closing once the client has everything ---------- */

static void flush_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_DRAINED)
		conn_close(c, "done", NULL);
	else if (ev == STREAM_ERROR)
		conn_close(c, "client_error", stream_error(s));
}

void conn_close_when_flushed(struct conn *c)
{
	if (c->phase == CONN_CLOSING)
		return;
	stream_read_stop(c->client.s);
	stream_set_callbacks(c->client.s, NULL, flush_event, c);
	stream_shutdown(c->client.s);
	if (stream_write_queued(c->client.s) == 0)
		conn_close(c, "done", NULL);
}

/* ---------- refusals over HTTP, with a lingering close ---------- */

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

/* drain_data - DRAINING: the client's bytes are read and dropped, within the bound. */
static void drain_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;

	(void)s;
	(void)data;
	c->drain_bytes += len;
	if (c->drain_bytes > DRAIN_MAX_BYTES)
		conn_close(c, c->close_reason ? c->close_reason : "refused", "lingering close: the client kept sending");
}

static void drain_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	(void)s;
	switch (ev) {
	case STREAM_EOF:
	case STREAM_ERROR:
		/* The client is done (or gone): nothing more to wait for once our answer is out. */
		if (ev == STREAM_ERROR || stream_write_queued(c->client.s) == 0)
			conn_close(c, "refused", NULL);
		else
			stream_read_stop(c->client.s);
		break;
	case STREAM_DRAINED:
		/* The answer is out and our FIN sent: linger for the client's FIN, bounded. */
		conn_set_deadline(c, DRAIN_MAX_MS, "refused", NULL);
		if (stream_eof(c->client.s))
			conn_close(c, "refused", NULL);
		break;
	default:
		break;
	}
}

void conn_refuse(struct conn *c, const char *token, int status, const char *details)
{
	const struct proxy_status *ps = proxy_status_lookup(token);
	char head[1024], body[1400], sf[400], dns_params[64];
	int hl, bl;

	if (c->phase == CONN_CLOSING)
		return;
	if (status == 0)
		status = ps->status;
	c->status = status;
	c->refusal = ps->token;
	if (!(c->have_rep && c->rep.error != NULL))
		count_refusal(c, ps->token);   /* refusals of the origin were counted with their report */
	proxy_status_sf_string(details ? details : "", sf, sizeof(sf));
	bl = snprintf(body, sizeof(body), "daneproxy: %d %s\n\n%s%s%serror: %s\n%s\n\n%s\n", status, status_text(status),
		      c->host[0] ? "target: " : "", c->host[0] ? c->host : "", c->host[0] ? "\n" : "", ps->token,
		      details ? details : "", ps->hint);
	if (bl < 0 || (size_t)bl >= sizeof(body))
		bl = (int)strlen(body);
	dns_params[0] = '\0';
	if (c->have_rep && strcmp(ps->token, "dns_error") == 0) {
		/* RFC 9209 section 2.3.2: the DNS RCODE and the RFC 8914 Extended DNS Error behind a dns_error. */
		const char *rcode = dns_rcode_name(c->rep.dns_rcode);
		int n = 0;
		if (rcode != NULL)
			n = snprintf(dns_params, sizeof(dns_params), "; rcode=\"%s\"", rcode);
		if (c->rep.dns_info_code >= 0 && n >= 0 && (size_t)n < sizeof(dns_params))
			snprintf(dns_params + n, sizeof(dns_params) - (size_t)n, "; info-code=%d", c->rep.dns_info_code);
	}
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nProxy-Status: daneproxy; error=%s%s; details=\"%s\"\r\n"
		      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		      status, status_text(status), ps->token, dns_params, sf, bl);
	if (hl < 0 || (size_t)hl >= sizeof(head))
		hl = (int)strlen(head);
	snprintf(c->close_detail, sizeof(c->close_detail), "%s", details ? details : status_text(status));
	/* Whatever was in flight towards the origin ends here. */
	if (c->up != NULL) {
		upstream_cancel(c->up);
		c->up = NULL;
	}
	stream_close(c->origin.s);
	c->origin.s = NULL;
	if (c->driver != NULL && c->driver->release != NULL)
		c->driver->release(c);
	c->driver = NULL;
	c->phase = CONN_DRAINING;
	c->drain_bytes = 0;
	conn_set_deadline(c, DRAIN_MAX_MS * 2, "refused", NULL);
	stream_set_callbacks(c->client.s, drain_data, drain_event, c);
	stream_set_read_limit(c->client.s, 64 * 1024);
	if (c->answering_head)
		bl = 0;   /* its Content-Length says what a GET would have received */
	if (stream_write(c->client.s, (const uint8_t *)head, (size_t)hl) < 0 ||
	    (bl > 0 && stream_write(c->client.s, (const uint8_t *)body, (size_t)bl) < 0)) {
		conn_close(c, "client_write_error", NULL);
		return;
	}
	c->bytes_down += (uint64_t)hl + (uint64_t)bl;
	stream_shutdown(c->client.s);
	if (stream_eof(c->client.s)) {
		/* The client already finished sending: once the answer is out there is nothing to wait for. */
		stream_read_stop(c->client.s);
		return;
	}
	stream_read_start(c->client.s);
}

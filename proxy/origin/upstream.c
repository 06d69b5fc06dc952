/*
 * upstream.c - resolve, decide, connect (Happy Eyeballs), handshake, verify.
 *
 * States are named after what the upstream waits for: UP_AWAIT_DNS, UP_AWAIT_CONNECT, UP_AWAIT_HANDSHAKE, then
 * UP_FINISHED. up_finish() is the one exit: it stops the timers, cancels the lookup, closes every attempt that
 * did not win, calls back once, and frees the struct when the last timer handle has closed.
 */
#include "upstream.h"
#include "smtp_client.h"
#include "stream.h"
#include "tlsa_text.h"
#include "tls.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define UP_MAX_ATTEMPTS RESOLVER_MAX_ADDRS

enum up_state { UP_AWAIT_DNS, UP_AWAIT_CONNECT, UP_AWAIT_SMTP, UP_AWAIT_HANDSHAKE, UP_FINISHED };

static const char verdict_encrypt_only[] = "TLS without authentication (SMTP, every TLSA record unusable)";

struct upstream {
	const struct upstream_env *env;
	enum up_state state;
	char host[RESOLVER_MAX_NAME];
	char tlsa_base[RESOLVER_MAX_NAME];
	uint16_t port;
	int host_is_ip;
	const char *alpn;
	unsigned flags;
	struct smtp_client *smtp;   /* STARTTLS routes, up to STARTTLS: the dialogue (greeting, EHLO, STARTTLS) */
	char *smtp_greeting;        /* the server's whole greeting, replayed to the client (rep.smtp_greeting) */
	upstream_cb cb;
	void *arg;
	upstream_inspect_fn inspect;
	void *inspect_arg;
	int cancelled;
	struct resolver_query *query;
	struct dane_tlsa records[RESOLVER_MAX_TLSA];
	size_t n_records;
	uint8_t *records_blob;
	struct sockaddr_storage addrs[RESOLVER_MAX_ADDRS];
	size_t n_addrs;
	size_t next_addr;
	size_t self_addrs;          /* addresses skipped because they are our own listeners */
	struct stream *attempts[UP_MAX_ATTEMPTS];
	size_t n_attempts;
	struct stream *winner;
	uv_timer_t attempt_timer;   /* Happy Eyeballs: start the next attempt */
	uv_timer_t deadline;        /* connect, then handshake timeout; also defers IP-literal starts */
	int open_handles;
	uint64_t t_start;
	uint64_t t_dns;
	uint64_t t_connect;
	char last_error[200];       /* why the last connection attempt failed */
	struct upstream_report rep;
};

static double ms_since(uint64_t from_ns, uint64_t to_ns)
{
	return (double)(to_ns - from_ns) / 1e6;
}

static void on_timer_closed(uv_handle_t *h)
{
	struct upstream *u = h->data;

	if (--u->open_handles == 0) {
		free(u->records_blob);
		free(u->smtp_greeting);
		free(u);
	}
}

/* up_finish - the one exit. origin: the winning stream handed to the caller, or NULL on failure. */
static void up_finish(struct upstream *u, struct stream *origin)
{
	size_t i;

	if (u->state == UP_FINISHED)
		return;
	u->state = UP_FINISHED;
	if (u->query != NULL) {
		resolver_cancel(u->query);
		u->query = NULL;
	}
	smtp_client_free(u->smtp);
	u->smtp = NULL;
	for (i = 0; i < u->n_attempts; i++)
		if (u->attempts[i] != NULL && u->attempts[i] != origin)
			stream_close(u->attempts[i]);
	if (u->winner != NULL && u->winner != origin)
		stream_close(u->winner);
	/* The caller owns the origin from here on: nothing may call back into this upstream any more. */
	if (origin != NULL)
		stream_set_callbacks(origin, NULL, NULL, NULL);
	if (!u->cancelled)
		u->cb(origin, &u->rep, u->arg);
	uv_close((uv_handle_t *)&u->attempt_timer, on_timer_closed);
	uv_close((uv_handle_t *)&u->deadline, on_timer_closed);
}

/* up_fail - finish with a Proxy-Status error and details. */
static void __attribute__((format(printf, 3, 4))) up_fail(struct upstream *u, const char *error, const char *fmt, ...)
{
	va_list ap;

	u->rep.error = error;
	va_start(ap, fmt);
	vsnprintf(u->rep.details, sizeof(u->rep.details), fmt, ap);
	va_end(ap);
	up_finish(u, NULL);
}

/* ---------- verification (called by the TLS layer during the handshake) ---------- */

static int verify_chain(const struct dane_chain *chain, void *arg)
{
	struct upstream *u = arg;
	struct dane_options opts;
	struct dane_result res;
	const char *names[2];
	size_t n_names = 0;

	if (u->rep.method == AUTH_ENCRYPT) {
		u->rep.verdict = verdict_encrypt_only;
		if (u->inspect != NULL) {
			memset(&res, 0, sizeof(res));
			res.authenticated = 1;
			res.reason = verdict_encrypt_only;
			res.depth = res.record = -1;
			u->inspect(chain, u->records, u->n_records, &res, u->inspect_arg);
		}
		return 1;
	}
	memset(&opts, 0, sizeof(opts));
	opts.ee_namecheck = u->env->ee_namecheck;
	memcpy(opts.digest_order, u->env->digests, sizeof(opts.digest_order));
	opts.smtp = (u->flags & UPSTREAM_STARTTLS_SMTP) != 0;
	opts.store = u->env->pkix_store;
	if (u->tlsa_base[0] != '\0')
		names[n_names++] = u->tlsa_base;
	if (n_names == 0 || strcmp(u->tlsa_base, u->host) != 0)
		names[n_names++] = u->host;
	if (u->rep.method == AUTH_DANE)
		dane_verify(chain, u->records, u->n_records, names, n_names, &opts, &res);
	else
		dane_verify_pkix(chain, &names[n_names - 1], 1, &opts, &res);
	u->rep.verdict = res.reason;
	u->rep.depth = res.depth;
	if (res.record >= 0)
		tlsa_text_short(u->records[res.record].usage, u->records[res.record].selector, u->records[res.record].mtype,
				u->records[res.record].data, u->records[res.record].len, u->rep.record, sizeof(u->rep.record));
	if (!res.authenticated) {
		u->rep.error = "tls_certificate_error";
		snprintf(u->rep.details, sizeof(u->rep.details), "%s: %s", res.reason, res.detail);
	}
	if (u->inspect != NULL)
		u->inspect(chain, u->records, u->n_records, &res, u->inspect_arg);
	return res.authenticated;
}

/* ---------- handshake ---------- */

static void on_origin_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct upstream *u = arg;
	struct tls_conn *t = stream_tls(s);

	if (ev == STREAM_HANDSHAKE_DONE) {
		u->rep.handshake_ms = ms_since(u->t_connect, uv_hrtime());
		snprintf(u->rep.tls_version, sizeof(u->rep.tls_version), "%s", tls_version(t));
		snprintf(u->rep.tls_cipher, sizeof(u->rep.tls_cipher), "%s", tls_cipher(t));
		snprintf(u->rep.alpn, sizeof(u->rep.alpn), "%s", tls_alpn(t));
		stream_read_stop(s);
		up_finish(u, s);
	} else if (ev == STREAM_ERROR || ev == STREAM_EOF) {
		u->rep.handshake_ms = ms_since(u->t_connect, uv_hrtime());
		if (t != NULL && tls_verify_refused(t))
			up_finish(u, NULL);   /* verify_chain() has set the error and the engine's explanation */
		else if (t != NULL && tls_alert_received(t))
			up_fail(u, "tls_alert_received", "TLS handshake with %s: %s", u->rep.peer, stream_error(s));
		else
			up_fail(u, "tls_protocol_error", "TLS handshake with %s failed: %s", u->rep.peer,
				ev == STREAM_EOF ? "connection closed" : stream_error(s));
	}
}

static void on_handshake_timeout(uv_timer_t *t)
{
	struct upstream *u = t->data;

	up_fail(u, "connection_timeout", "TLS handshake with %s did not finish within %u ms", u->rep.peer,
		u->env->handshake_timeout_ms);
}

/* note_connected - s won the connection race. */
static void note_connected(struct upstream *u, struct stream *s)
{
	u->winner = s;
	u->t_connect = uv_hrtime();
	u->rep.connect_ms = ms_since(u->t_dns, u->t_connect);
	stream_peer(s, u->rep.peer, sizeof(u->rep.peer));
	uv_timer_stop(&u->attempt_timer);
}

/* start_tls - the winner is connected: handshake with SNI (the name the client asked for) and our verifier. */
static void start_tls(struct upstream *u, struct stream *s)
{
	struct tls_conn *t;

	if (u->winner == NULL)
		note_connected(u, s);
	u->state = UP_AWAIT_HANDSHAKE;
	uv_timer_start(&u->deadline, on_handshake_timeout, u->env->handshake_timeout_ms, 0);
	t = tls_client_new(u->env->tls, u->host_is_ip ? NULL : u->host, u->alpn, verify_chain, u);
	if (t == NULL) {
		up_fail(u, "proxy_internal_error", "cannot create a TLS session");
		return;
	}
	stream_set_callbacks(s, NULL, on_origin_event, u);
	if (stream_start_tls(s, t, NULL, 0) < 0 && u->state != UP_FINISHED)
		up_fail(u, "tls_protocol_error", "TLS handshake with %s failed: %s", u->rep.peer, stream_error(s));
}

/* ---------- SMTP up to STARTTLS (RFC 3207) ---------- */

/*
 * The dialogue is smtp_client's: it waits for the greeting, sends EHLO, then STARTTLS, one reply each (their
 * callbacks below are the states SMTP_EXPECT_GREETING, _EHLO, _STARTTLS of the route). Where DANE applies,
 * nothing here ever falls back to plaintext: no STARTTLS, a refusal or a malformed reply ends the attempt.
 */

static void on_smtp_timeout(uv_timer_t *t)
{
	struct upstream *u = t->data;

	up_fail(u, "connection_timeout", "SMTP server %s did not reach STARTTLS within %u ms", u->rep.peer,
		u->env->handshake_timeout_ms);
}

/* smtp_write - smtp_client's way out: the plaintext connection. */
static int smtp_write(void *io, const char *data, size_t len)
{
	struct upstream *u = io;

	return stream_write(u->winner, (const uint8_t *)data, len);
}

/* smtp_failed - the dialogue broke (malformed reply, a reply nobody asked for, a write error). */
static void smtp_failed(struct upstream *u)
{
	const char *why = smtp_client_error(u->smtp);

	if (why == smtp_client_err_write)
		up_fail(u, "connection_terminated", "SMTP server %s: %s", u->rep.peer, stream_error(u->winner));
	else
		up_fail(u, "tls_protocol_error", "SMTP server %s: %s", u->rep.peer, why ? why : "dialogue failed");
}

static void on_smtp_starttls(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct upstream *u = arg;

	(void)text;
	if (r->code != 220) {
		up_fail(u, "tls_protocol_error", "SMTP server %s refuses STARTTLS (%d): never continued in plaintext",
			u->rep.peer, r->code);
		return;
	}
	if (smtp_client_buffered(c) > 0) {
		/* Bytes after the 220 would be read as TLS, or as replies to the client's commands: the STARTTLS
		 * command injection (CVE-2011-0411 and kin). */
		up_fail(u, "tls_protocol_error", "SMTP server %s sent data after its STARTTLS reply (%zu octets)",
			u->rep.peer, smtp_client_buffered(c));
		return;
	}
	smtp_client_halt(c);
	stream_read_stop(u->winner);
	start_tls(u, u->winner);
}

static void on_smtp_ehlo(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct upstream *u = arg;
	struct smtp_ehlo ehlo;

	if (r->code != 250) {
		up_fail(u, "tls_protocol_error", "SMTP server %s refuses EHLO (%d): STARTTLS impossible", u->rep.peer,
			r->code);
		return;
	}
	smtp_ehlo_parse(text, r, &ehlo);
	if (!(ehlo.flags & SMTP_EXT_STARTTLS)) {
		/* Never continue in plaintext: this is what a STARTTLS-stripping attacker would cause. */
		up_fail(u, "tls_protocol_error", "SMTP server %s does not offer STARTTLS (downgrade refused)", u->rep.peer);
		return;
	}
	if (smtp_client_command(c, "STARTTLS", on_smtp_starttls, u) < 0)
		smtp_failed(u);
}

static void on_smtp_greeting(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct upstream *u = arg;
	char host[256], line[300];

	if (r->code != 220) {
		up_fail(u, "destination_unavailable", "SMTP server %s greets with %d", u->rep.peer, r->code);
		return;
	}
	if (smtp_client_buffered(c) > 0) {
		up_fail(u, "tls_protocol_error", "SMTP server %s sent data before our command", u->rep.peer);
		return;
	}
	/* The whole greeting, however many lines (a reply holds no NUL: smtp_reply.h), for the client. */
	if ((u->smtp_greeting = malloc(r->len + 1)) == NULL) {
		up_fail(u, "proxy_internal_error", "out of memory");
		return;
	}
	memcpy(u->smtp_greeting, text, r->len);
	u->smtp_greeting[r->len] = '\0';
	u->rep.smtp_greeting = u->smtp_greeting;
	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(line, sizeof(line), "EHLO %s", host);
	if (smtp_client_command(c, line, on_smtp_ehlo, u) < 0)
		smtp_failed(u);
}

static void smtp_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct upstream *u = arg;

	(void)s;
	if (smtp_client_feed(u->smtp, (const char *)data, len) < 0 && u->state == UP_AWAIT_SMTP)
		smtp_failed(u);
}

static void smtp_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct upstream *u = arg;

	if (ev == STREAM_EOF || ev == STREAM_ERROR)
		up_fail(u, "connection_terminated", "SMTP server %s closed before STARTTLS: %s", u->rep.peer,
			ev == STREAM_EOF ? "connection closed" : stream_error(s));
}

/* start_smtp - the winner is connected to an SMTP server: greeting, EHLO, STARTTLS, then TLS. */
static void start_smtp(struct upstream *u, struct stream *s)
{
	note_connected(u, s);
	u->state = UP_AWAIT_SMTP;
	uv_timer_start(&u->deadline, on_smtp_timeout, u->env->handshake_timeout_ms, 0);
	if ((u->smtp = smtp_client_new(smtp_write, u)) == NULL || smtp_client_expect(u->smtp, on_smtp_greeting, u) < 0) {
		up_fail(u, "proxy_internal_error", "out of memory");
		return;
	}
	stream_set_callbacks(s, smtp_data, smtp_event, u);
	stream_read_start(s);
}

/* ---------- Happy Eyeballs (RFC 8305) ---------- */

static void start_attempt(struct upstream *u);
static void start_smtp(struct upstream *u, struct stream *s);

static size_t live_attempts(const struct upstream *u)
{
	size_t i, n = 0;

	for (i = 0; i < u->n_attempts; i++)
		if (u->attempts[i] != NULL)
			n++;
	return n;
}

static void on_attempt_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct upstream *u = arg;
	size_t i;

	for (i = 0; i < u->n_attempts && u->attempts[i] != s; i++)
		;
	if (i == u->n_attempts)
		return;
	if (ev == STREAM_CONNECTED) {
		u->attempts[i] = NULL;   /* now the winner, no longer an attempt */
		for (i = 0; i < u->n_attempts; i++) {
			if (u->attempts[i] != NULL) {
				stream_close(u->attempts[i]);
				u->attempts[i] = NULL;
			}
		}
		if (u->flags & UPSTREAM_PLAIN) {
			note_connected(u, s);
			stream_set_callbacks(s, NULL, NULL, NULL);
			up_finish(u, s);
		} else if (u->flags & UPSTREAM_STARTTLS_SMTP)
			start_smtp(u, s);
		else
			start_tls(u, s);
		return;
	}
	/* This address failed: try the next one at once (RFC 8305 section 5). */
	snprintf(u->last_error, sizeof(u->last_error), "%s", stream_error(s));
	u->attempts[i] = NULL;
	stream_close(s);
	if (u->next_addr < u->n_addrs) {
		start_attempt(u);
	} else if (live_attempts(u) == 0) {
		up_fail(u, "connection_refused", "no address of %s:%u accepted the connection (%s)", u->host, u->port,
			u->last_error);
	}
}

static void on_attempt_timer(uv_timer_t *t)
{
	struct upstream *u = t->data;

	if (u->next_addr < u->n_addrs)
		start_attempt(u);
}

/* start_attempt - connect to the next address and arm the attempt delay for the one after. */
static void start_attempt(struct upstream *u)
{
	struct stream *s;
	struct sockaddr_storage *ss;

	while (u->next_addr < u->n_addrs) {
		ss = &u->addrs[u->next_addr++];
		if (ss->ss_family == AF_INET6)
			((struct sockaddr_in6 *)ss)->sin6_port = htons(u->port);
		else
			((struct sockaddr_in *)ss)->sin_port = htons(u->port);
		if (u->env->is_self != NULL && u->env->is_self((struct sockaddr *)ss, u->env->is_self_arg)) {
			/* One client would fan out into max_connections connections to ourselves. */
			u->self_addrs++;
			snprintf(u->last_error, sizeof(u->last_error), "the address is one of this proxy's own listeners");
			continue;
		}
		s = stream_new(u->env->loop, NULL, on_attempt_event, u);
		if (s == NULL) {
			up_fail(u, "proxy_internal_error", "out of memory");
			return;
		}
		if (stream_connect(s, (struct sockaddr *)ss) < 0) {
			snprintf(u->last_error, sizeof(u->last_error), "%s", stream_error(s));
			stream_close(s);
			continue;
		}
		u->attempts[u->n_attempts++] = s;
		if (u->next_addr < u->n_addrs)
			uv_timer_start(&u->attempt_timer, on_attempt_timer, u->env->attempt_delay_ms, 0);
		return;
	}
	if (live_attempts(u) == 0 && u->self_addrs == u->n_addrs)
		up_fail(u, "proxy_loop_detected", "%s:%u is this proxy itself: every address is one of its listeners",
			u->host, u->port);
	else if (live_attempts(u) == 0)
		up_fail(u, "connection_refused", "cannot connect to %s:%u (%s)", u->host, u->port, u->last_error);
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct upstream *u = t->data;

	up_fail(u, "connection_timeout", "no address of %s:%u answered within %u ms", u->host, u->port,
		u->env->connect_timeout_ms);
}

/* order_addresses - alternate families, IPv6 first (RFC 8305 section 4). */
static void order_addresses(struct upstream *u, const struct sockaddr_storage *in, size_t n)
{
	size_t i6 = 0, i4 = 0, k = 0;
	int want6 = 1;

	while (k < n) {
		int found = 0;
		size_t *idx = want6 ? &i6 : &i4;
		int fam = want6 ? AF_INET6 : AF_INET;
		while (*idx < n && in[*idx].ss_family != fam)
			(*idx)++;
		if (*idx < n) {
			u->addrs[k++] = in[(*idx)++];
			found = 1;
		}
		want6 = !want6;
		if (!found) {
			/* One family is exhausted: append the rest of the other in order. */
			size_t *o = want6 ? &i6 : &i4;
			int ofam = want6 ? AF_INET6 : AF_INET;
			for (; *o < n && k < n; (*o)++)
				if (in[*o].ss_family == ofam)
					u->addrs[k++] = in[*o];
			break;
		}
	}
	u->n_addrs = k;
}

/* ---------- DNS ---------- */

/* proceed - the lookup is in: apply the policy, then connect. */
static void proceed(struct upstream *u)
{
	struct policy_decision d;

	policy_decide(u->rep.policy, u->rep.dnssec, (u->flags & UPSTREAM_STARTTLS_SMTP) != 0, &d);
	if ((u->flags & UPSTREAM_PLAIN) && (d.error == NULL || strncmp(d.error, "dns_", 4) != 0)) {
		/* Passthrough: the client authenticates the origin; only a failed or bogus lookup stops us. */
		d.method = AUTH_PASSTHROUGH;
		d.why = "passthrough";
	} else if ((u->flags & UPSTREAM_TUNNEL_UNLESS_DANE) && d.method == AUTH_PKIX) {
		/* DANE adds nothing here: the client's own PKIX (its trust store, pinning, CT) sees the real origin. */
		u->flags |= UPSTREAM_PLAIN;
		d.method = AUTH_PASSTHROUGH;
		d.why = "no DNSSEC-secure usable TLSA: tunnelled untouched (terminate = dane)";
	}
	u->rep.method = d.method;
	if (d.method == AUTH_REFUSE) {
		up_fail(u, d.error, "%s (%s)", d.why, u->rep.dns_detail);
		return;
	}
	if (d.method == AUTH_PKIX && u->env->pkix_store == NULL && !(u->flags & UPSTREAM_PLAIN)) {
		up_fail(u, "tls_certificate_error", "%s, but no PKIX trust store is configured", d.why);
		return;
	}
	u->state = UP_AWAIT_CONNECT;
	uv_timer_start(&u->deadline, on_connect_timeout, u->env->connect_timeout_ms, 0);
	start_attempt(u);
}

static void on_dns(const struct resolver_result *res, void *arg)
{
	struct upstream *u = arg;
	size_t i, total = 0, used = 0;
	const char *base;

	u->query = NULL;
	u->t_dns = uv_hrtime();
	u->rep.dns_ms = ms_since(u->t_start, u->t_dns);
	u->rep.dns_done = 1;
	u->rep.dnssec = res->outcome;
	snprintf(u->rep.dns_detail, sizeof(u->rep.dns_detail), "%s", res->detail);
	u->rep.dns_rcode = res->rcode;
	u->rep.dns_info_code = res->ede;
	snprintf(u->rep.tlsa_name, sizeof(u->rep.tlsa_name), "%s", res->tlsa_name);
	u->rep.tlsa_records = (int)res->n_tlsa;
	u->rep.usable_records = (int)res->n_tlsa_usable;
	/* The TLSA base domain is a reference identifier (DANE.md section 4): the owner name minus _port._tcp. */
	base = res->tlsa_name;
	for (i = 0; i < 2 && base != NULL; i++) {
		base = strchr(base, '.');
		if (base != NULL)
			base++;
	}
	snprintf(u->tlsa_base, sizeof(u->tlsa_base), "%s", base != NULL ? base : u->host);
	for (i = 0; i < res->n_tlsa; i++)
		total += res->tlsa[i].len;
	if (total > 0 && (u->records_blob = malloc(total)) == NULL) {
		up_fail(u, "proxy_internal_error", "out of memory");
		return;
	}
	for (i = 0; i < res->n_tlsa; i++) {
		memcpy(u->records_blob + used, res->tlsa[i].data, res->tlsa[i].len);
		u->records[i] = (struct dane_tlsa){res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype,
						   u->records_blob + used, res->tlsa[i].len};
		used += res->tlsa[i].len;
	}
	u->n_records = res->n_tlsa;
	if ((u->flags & UPSTREAM_STARTTLS_SMTP) && res->outcome == RESOLVER_SECURE) {
		/* RFC 7672 3.1.3: PKIX usages do not count for SMTP. */
		struct dane_options opts;
		memset(&opts, 0, sizeof(opts));
		opts.smtp = 1;
		memcpy(opts.digest_order, u->env->digests, sizeof(opts.digest_order));
		u->rep.usable_records = 0;
		for (i = 0; i < u->n_records; i++)
			u->rep.usable_records += dane_record_usable(&u->records[i], &opts, NULL);
		if (u->rep.usable_records == 0)
			u->rep.dnssec = RESOLVER_SECURE_UNUSABLE;
	}
	order_addresses(u, res->addrs, res->n_addrs);
	proceed(u);
}

/* on_ip_literal - an IP address has no DNS and so no TLSA: the policy decides as for an unsigned name. */
static void on_ip_literal(uv_timer_t *t)
{
	struct upstream *u = t->data;

	u->t_dns = uv_hrtime();
	u->rep.dns_done = 1;
	u->rep.dnssec = RESOLVER_INSECURE;
	snprintf(u->rep.dns_detail, sizeof(u->rep.dns_detail), "%s is an IP address: no DNS, no TLSA", u->host);
	proceed(u);
}

static void on_bad_name(uv_timer_t *t)
{
	struct upstream *u = t->data;

	u->rep.method = AUTH_REFUSE;
	up_fail(u, "dns_error", "%s", u->rep.dns_detail);
}

struct upstream *upstream_open(const struct upstream_env *env, const char *host, uint16_t port, enum policy_mode mode,
			       const char *alpn, unsigned flags, upstream_cb cb, void *arg)
{
	struct upstream *u = calloc(1, sizeof(*u));
	struct sockaddr_in6 *sin6;
	struct sockaddr_in *sin;
	char literal[64];
	size_t hl = strlen(host);

	if (u == NULL)
		return NULL;
	u->env = env;
	u->port = port;
	u->alpn = alpn;
	u->flags = flags;
	u->cb = cb;
	u->arg = arg;
	u->t_start = uv_hrtime();
	u->rep.policy = mode;
	u->rep.depth = -1;
	u->rep.dns_rcode = u->rep.dns_info_code = -1;
	u->rep.smtp_greeting = "";
	snprintf(u->host, sizeof(u->host), "%s", host);
	uv_timer_init(env->loop, &u->attempt_timer);
	uv_timer_init(env->loop, &u->deadline);
	u->attempt_timer.data = u->deadline.data = u;
	u->open_handles = 2;
	/* "[::1]" or "127.0.0.1": connect directly, no DNS. */
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(literal)) {
		memcpy(literal, host + 1, hl - 2);
		literal[hl - 2] = '\0';
	} else {
		snprintf(literal, sizeof(literal), "%s", host);
	}
	sin6 = (struct sockaddr_in6 *)&u->addrs[0];
	sin = (struct sockaddr_in *)&u->addrs[0];
	if (inet_pton(AF_INET6, literal, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		u->host_is_ip = 1;
	} else if (inet_pton(AF_INET, literal, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		u->host_is_ip = 1;
	}
	if (u->host_is_ip) {
		snprintf(u->host, sizeof(u->host), "%s", literal);
		u->n_addrs = 1;
		uv_timer_start(&u->deadline, on_ip_literal, 0, 0);
		return u;
	}
	u->query = resolver_lookup(env->resolver, host, port, on_dns, u);
	if (u->query == NULL) {
		/* Not a valid host name: still answer asynchronously, as promised. */
		u->rep.dns_done = 1;
		u->rep.dnssec = RESOLVER_FAILURE;
		snprintf(u->rep.dns_detail, sizeof(u->rep.dns_detail), "\"%s\" is not a valid host name", host);
		uv_timer_start(&u->deadline, on_bad_name, 0, 0);
	}
	return u;
}

void upstream_set_inspect(struct upstream *u, upstream_inspect_fn fn, void *arg)
{
	u->inspect = fn;
	u->inspect_arg = arg;
}

void upstream_cancel(struct upstream *u)
{
	if (u == NULL)
		return;
	u->cancelled = 1;
	up_finish(u, NULL);
}

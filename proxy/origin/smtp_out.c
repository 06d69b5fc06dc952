/*
 * smtp_out.c - an SMTP session to a mail domain's MX under RFC 7672 section 2 (see smtp_out.h).
 *
 * States are named after what the session waits for: OUT_AWAIT_MX (the MX lookup), OUT_AWAIT_HOST_DNS (the
 * addresses, and TLSA where the rules allow, of the current MX host), OUT_AWAIT_CONNECT (one address),
 * OUT_EXPECT_GREETING, OUT_EXPECT_EHLO, OUT_EXPECT_STARTTLS, OUT_AWAIT_HANDSHAKE, OUT_EXPECT_EHLO_TLS; then
 * OUT_OPEN (the caller's commands and their replies), OUT_QUITTING (QUIT sent after smtp_out_close) and
 * OUT_FINISHED. A failure before OUT_OPEN is one address's (attempt_failed: the next address, then the next host)
 * or the whole open's (open_failed: the callback with NULL). out_teardown() is the one way out: it cancels the
 * lookup, closes the stream and the timer; the struct is freed when the timer handle has closed.
 */
#include "smtp_out.h"
#include "dane.h"
#include "json.h"
#include "smtp_client.h"
#include "stream.h"
#include "tls.h"
#include "tlsa_text.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char smtp_out_err_mx_bogus[] = "the MX records failed DNSSEC validation";
const char smtp_out_err_mx_failed[] = "the MX lookup failed";
const char smtp_out_err_no_domain[] = "the domain does not exist";
const char smtp_out_err_null_mx[] = "the domain accepts no mail (null MX)";
const char smtp_out_err_dane_required[] = "policy dane-only: the MX records are not DNSSEC-signed";
const char smtp_out_err_no_host[] = "no MX host could take the mail";
const char smtp_out_err_bad_domain[] = "not a valid mail domain";
const char smtp_out_err_internal[] = "out of memory";
const char smtp_out_err_host_dns[] = "the host's DNS lookup failed";
const char smtp_out_err_host_no_address[] = "the host has no address";
const char smtp_out_err_host_no_tlsa[] = "policy dane-only: the host has no secure usable TLSA record";
const char smtp_out_err_loop[] = "the address is this proxy itself";
const char smtp_out_err_connect[] = "cannot connect";
const char smtp_out_err_greeting[] = "no 220 greeting";
const char smtp_out_err_ehlo[] = "EHLO refused";
const char smtp_out_err_no_starttls[] = "STARTTLS mandatory and not offered (downgrade refused)";
const char smtp_out_err_starttls_refused[] = "STARTTLS refused";
const char smtp_out_err_injection[] = "data after the 220 to STARTTLS (command injection)";
const char smtp_out_err_handshake[] = "TLS handshake failed";
const char smtp_out_err_tlsa_mismatch[] = "DANE authentication failed";
const char smtp_out_err_protocol[] = "SMTP protocol error";
const char smtp_out_err_timeout[] = "timed out";
const char smtp_out_err_closed[] = "the MX closed the connection";
const char smtp_out_err_content[] = "message content refused: a bare CR or LF, or a lone \".\" line";
const char smtp_out_err_busy[] = "the session cannot take this command now";

static const char verdict_unusable[] = "TLS without authentication (every TLSA record unusable, RFC 7672 2.2)";
static const char verdict_encrypt[] = "TLS without authentication (policy encrypt)";
static const char verdict_opportunistic[] = "TLS without authentication (no secure TLSA: opportunistic)";

enum out_state {
	OUT_AWAIT_MX,
	OUT_AWAIT_HOST_DNS,
	OUT_AWAIT_CONNECT,
	OUT_EXPECT_GREETING,
	OUT_EXPECT_EHLO,
	OUT_EXPECT_STARTTLS,
	OUT_AWAIT_HANDSHAKE,
	OUT_EXPECT_EHLO_TLS,
	OUT_OPEN,
	OUT_QUITTING,
	OUT_FINISHED,
};

/* What the current host's DNS demands of its TLS. */
enum host_tls {
	HOST_TLS_DANE,            /* secure usable TLSA: STARTTLS, DANE-authenticated */
	HOST_TLS_MANDATORY,       /* secure TLSA all unusable, or policy encrypt: STARTTLS, unauthenticated */
	HOST_TLS_OPPORTUNISTIC,   /* no secure TLSA under policy dane: STARTTLS when offered */
};

struct out_host {
	uint16_t preference;
	char name[RESOLVER_MAX_NAME];
};

/* The caller's pending commands, in the order of smtp_client's. */
struct out_cmd {
	smtp_out_reply_cb cb;
	void *arg;
	int is_data_end;
};

struct smtp_out {
	struct smtp_out_env env;
	enum out_state state;
	enum smtp_policy policy;
	char domain[RESOLVER_MAX_NAME];
	smtp_out_open_cb open_cb;
	void *open_arg;
	struct resolver_query *query;
	/* the MX hosts, in the order they are tried */
	struct out_host *hosts;
	size_t n_hosts;
	size_t next_host;
	int mx_secure;
	const struct out_host *host;           /* the current one */
	/* what the current host's DNS said */
	enum host_tls host_tls;
	char tlsa_base[RESOLVER_MAX_NAME];
	struct dane_tlsa records[RESOLVER_MAX_TLSA];
	size_t n_records;
	uint8_t *records_blob;
	struct sockaddr_storage addrs[RESOLVER_MAX_ADDRS];
	size_t n_addrs;
	size_t next_addr;
	unsigned attempts;
	char addr_text[64];                    /* the address being tried */
	char verify_detail[300];               /* the DANE engine's refusal, for the failure record */
	/* the connection */
	struct stream *stream;
	struct smtp_client *smtp;
	struct out_cmd cmds[SMTP_CLIENT_MAX_PENDING];
	size_t cmd_head, cmd_count;
	int broken;                            /* an open session that failed: commands refused */
	const char *error;
	void (*drained)(struct smtp_out *s, void *arg);
	void *drained_arg;
	uv_timer_t timer;                      /* connect, reply, handshake and QUIT deadlines; also async failures */
	uint64_t t_start, t_dns, t_connect, t_connected;
	struct smtp_out_report rep;
};

static void try_next(struct smtp_out *o);
static void start_host(struct smtp_out *o);
static void start_connect(struct smtp_out *o);
static void on_timer(uv_timer_t *t);

static double ms_since(uint64_t from_ns)
{
	return (double)(uv_hrtime() - from_ns) / 1e6;
}

/* ---------- names ---------- */

const char *smtp_policy_name(enum smtp_policy p)
{
	switch (p) {
	case SMTP_POLICY_DANE: return "dane";
	case SMTP_POLICY_DANE_ONLY: return "dane-only";
	case SMTP_POLICY_ENCRYPT: return "encrypt";
	}
	return "unknown";
}

int smtp_policy_parse(const char *s, enum smtp_policy *out)
{
	if (strcmp(s, "dane") == 0)
		*out = SMTP_POLICY_DANE;
	else if (strcmp(s, "dane-only") == 0)
		*out = SMTP_POLICY_DANE_ONLY;
	else if (strcmp(s, "encrypt") == 0)
		*out = SMTP_POLICY_ENCRYPT;
	else
		return -1;
	return 0;
}

const char *smtp_tls_level_name(enum smtp_tls_level l)
{
	switch (l) {
	case SMTP_TLS_NONE: return "none";
	case SMTP_TLS_ENCRYPT: return "encrypt";
	case SMTP_TLS_DANE: return "dane";
	}
	return "unknown";
}

const char *smtp_out_error(const struct smtp_out *s)
{
	return s->error;
}

/* ---------- the report for the log line ---------- */

/* put_str - ", \"key\": \"value\"", null for NULL or (when empty_null) "". */
static void put_str(FILE *out, const char *key, const char *v, int empty_null)
{
	fprintf(out, ", \"%s\": ", key);
	json_put_string(out, v == NULL || (empty_null && v[0] == '\0') ? NULL : v);
}

void smtp_out_report_json(FILE *out, const struct smtp_out_report *rep)
{
	size_t i, n = rep->n_failed < SMTP_OUT_MAX_FAILURES ? rep->n_failed : SMTP_OUT_MAX_FAILURES;
	int session = rep->error == NULL, host = session || rep->n_failed > 0;

	put_str(out, "smtp_error", rep->error, 0);
	if (session)
		fprintf(out, ", \"smtp_code\": null");
	else
		fprintf(out, ", \"smtp_code\": %d", rep->code);
	put_str(out, "smtp_enhanced", session ? NULL : rep->enhanced, 1);
	put_str(out, "smtp_details", session ? NULL : rep->details, 1);
	put_str(out, "domain", rep->domain, 0);
	put_str(out, "domain_cname", rep->domain_cname, 1);
	put_str(out, "mx_dnssec", resolver_outcome_name(rep->mx_dnssec), 0);
	fprintf(out, ", \"mx_implicit\": %s, \"mx_count\": %zu", rep->mx_implicit ? "true" : "false", rep->n_mx);
	put_str(out, "mx_host", session ? rep->mx_host : NULL, 1);
	if (session)
		fprintf(out, ", \"mx_preference\": %u", rep->mx_preference);
	else
		fprintf(out, ", \"mx_preference\": null");
	put_str(out, "addr_dnssec", !host ? NULL : rep->addr_secure ? "secure" : "insecure", 0);
	fprintf(out, ", \"tlsa_lookup\": %s", rep->tlsa_looked_up ? "true" : "false");
	put_str(out, "tlsa_dnssec", rep->tlsa_looked_up ? resolver_outcome_name(rep->tlsa_dnssec) : NULL, 0);
	put_str(out, "tlsa_name", rep->tlsa_looked_up ? rep->tlsa_name : NULL, 1);
	fprintf(out, ", \"tlsa_usable\": %d", rep->usable_records);
	put_str(out, "tls", session ? smtp_tls_level_name(rep->tls) : NULL, 0);
	put_str(out, "verdict", rep->verdict, 0);
	put_str(out, "tlsa", rep->record, 1);
	if (rep->depth >= 0)
		fprintf(out, ", \"depth\": %d", rep->depth);
	else
		fprintf(out, ", \"depth\": null");
	put_str(out, "peer", rep->peer, 1);
	put_str(out, "tls_version", rep->tls_version, 1);
	put_str(out, "tls_cipher", rep->tls_cipher, 1);
	fprintf(out, ", \"resumed\": %s", !rep->tls_version[0] ? "null" : rep->resumed ? "true" : "false");
	put_str(out, "ehlo", session ? rep->ehlo.keywords : NULL, 0);
	fprintf(out, ", \"mx_failed\": [");
	for (i = 0; i < n; i++) {
		const struct smtp_out_failure *f = &rep->failed[i];
		fprintf(out, "%s{\"host\": ", i ? ", " : "");
		json_put_string(out, f->host);
		fprintf(out, ", \"preference\": %u", f->preference);
		put_str(out, "addr", f->addr, 1);
		put_str(out, "reason", f->reason, 0);
		put_str(out, "detail", f->detail, 0);
		fputc('}', out);
	}
	fprintf(out, "], \"mx_failed_count\": %zu, \"mx_ms\": %.3f, \"dns_ms\": %.3f, \"connect_ms\": %.3f, "
		     "\"handshake_ms\": %.3f, \"open_ms\": %.3f",
		rep->n_failed, rep->mx_ms, rep->dns_ms, rep->connect_ms, rep->handshake_ms, rep->total_ms);
}

/* ---------- the one way out ---------- */

static void on_timer_closed(uv_handle_t *h)
{
	struct smtp_out *o = h->data;

	free(o->hosts);
	free(o->records_blob);
	free(o);
}

/* drop_connection - close the current stream and conversation (a failed attempt, or the end). */
static void drop_connection(struct smtp_out *o)
{
	smtp_client_free(o->smtp);
	o->smtp = NULL;
	stream_close(o->stream);
	o->stream = NULL;
	uv_timer_stop(&o->timer);
}

/* out_teardown - end everything; no callback after this; freed once the timer handle has closed. */
static void out_teardown(struct smtp_out *o)
{
	if (o->state == OUT_FINISHED)
		return;
	o->state = OUT_FINISHED;
	o->cmd_count = 0;
	if (o->query != NULL) {
		resolver_cancel(o->query);
		o->query = NULL;
	}
	drop_connection(o);
	uv_close((uv_handle_t *)&o->timer, on_timer_closed);
}

/* open_failed - the open ends without a session: tell the caller (code and enhanced code for its client). */
static void __attribute__((format(printf, 5, 6)))
open_failed(struct smtp_out *o, const char *error, int code, const char *enhanced, const char *fmt, ...)
{
	va_list ap;

	o->rep.error = error;
	o->rep.code = code;
	snprintf(o->rep.enhanced, sizeof(o->rep.enhanced), "%s", enhanced);
	va_start(ap, fmt);
	vsnprintf(o->rep.details, sizeof(o->rep.details), fmt, ap);
	va_end(ap);
	o->rep.total_ms = ms_since(o->t_start);
	drop_connection(o);
	o->open_cb(NULL, &o->rep, o->open_arg);
	out_teardown(o);
}

/* ---------- failures of one host or address ---------- */

/* is_security_failure - a failure that a downgrade or an impostor could cause (4.7.5 when nothing worked). */
static int is_security_failure(const char *reason)
{
	return reason == smtp_out_err_no_starttls || reason == smtp_out_err_starttls_refused ||
	       reason == smtp_out_err_injection || reason == smtp_out_err_handshake ||
	       reason == smtp_out_err_tlsa_mismatch || reason == smtp_out_err_host_no_tlsa;
}

/* record_failure - note why the current host (or address) did not work out. */
static void __attribute__((format(printf, 3, 4)))
record_failure(struct smtp_out *o, const char *reason, const char *fmt, ...)
{
	struct smtp_out_failure *f;
	va_list ap;

	if (o->rep.n_failed < SMTP_OUT_MAX_FAILURES) {
		f = &o->rep.failed[o->rep.n_failed];
		snprintf(f->host, sizeof(f->host), "%s", o->host != NULL ? o->host->name : o->domain);
		f->preference = o->host != NULL ? o->host->preference : 0;
		snprintf(f->addr, sizeof(f->addr), "%s", o->state >= OUT_AWAIT_CONNECT ? o->addr_text : "");
		f->reason = reason;
		va_start(ap, fmt);
		vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
		va_end(ap);
	}
	o->rep.n_failed++;
}

/* all_failed - no host is left: defer, saying which kind of failure it was. */
static void all_failed(struct smtp_out *o)
{
	size_t i, n = o->rep.n_failed < SMTP_OUT_MAX_FAILURES ? o->rep.n_failed : SMTP_OUT_MAX_FAILURES;
	int security = 0, dns = 0, loops = 0;
	const char *last = n > 0 ? o->rep.failed[n - 1].detail : "no host was tried";

	for (i = 0; i < n; i++) {
		security |= is_security_failure(o->rep.failed[i].reason);
		dns += o->rep.failed[i].reason == smtp_out_err_host_dns;
		loops += o->rep.failed[i].reason == smtp_out_err_loop;
	}
	if (n > 0 && (size_t)loops == n)
		open_failed(o, smtp_out_err_no_host, 554, "5.4.6", "mail for %s loops back to this proxy", o->domain);
	else if (security)
		open_failed(o, smtp_out_err_no_host, 451, "4.7.5", "no MX host of %s passed the TLS requirements (%s)",
			    o->domain, last);
	else if (n > 0 && (size_t)dns == n)
		open_failed(o, smtp_out_err_no_host, 451, "4.4.3", "no MX host of %s could be looked up (%s)", o->domain,
			    last);
	else
		open_failed(o, smtp_out_err_no_host, 451, "4.4.1", "no MX host of %s took the connection (%s)", o->domain,
			    last);
}

/* attempt_failed - the current address did not work out: the next address, then the next host. */
static void __attribute__((format(printf, 3, 4)))
attempt_failed(struct smtp_out *o, const char *reason, const char *fmt, ...)
{
	char detail[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	record_failure(o, reason, "%s", detail);
	drop_connection(o);
	try_next(o);
}

/* host_failed - the current host cannot be used at all (its DNS): the next host. */
static void __attribute__((format(printf, 3, 4)))
host_failed(struct smtp_out *o, const char *reason, const char *fmt, ...)
{
	char detail[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	record_failure(o, reason, "%s", detail);
	o->n_addrs = o->next_addr = 0;
	try_next(o);
}

/* try_next - the next address of the current host, else the next host, else give up. */
static void try_next(struct smtp_out *o)
{
	if (o->state == OUT_FINISHED)
		return;
	if (o->attempts >= o->env.max_attempts) {
		all_failed(o);
		return;
	}
	if (o->next_addr < o->n_addrs) {
		start_connect(o);
		return;
	}
	if (o->next_host < o->n_hosts) {
		start_host(o);
		return;
	}
	all_failed(o);
}

/* ---------- the open session: commands and replies ---------- */

static void arm_reply_timer(struct smtp_out *o);

/* session_broken - an open session failed: every pending command learns why; later commands are refused. */
static void session_broken(struct smtp_out *o, const char *error)
{
	struct smtp_out_reply r;
	struct out_cmd cmd;

	if (o->broken || o->state != OUT_OPEN)
		return;
	o->broken = 1;
	o->error = error;
	uv_timer_stop(&o->timer);
	if (o->stream != NULL)
		stream_read_stop(o->stream);
	memset(&r, 0, sizeof(r));
	r.error = error;
	r.text = r.last = "";
	while (o->cmd_count > 0 && o->state == OUT_OPEN) {
		cmd = o->cmds[o->cmd_head];
		o->cmd_head = (o->cmd_head + 1) % SMTP_CLIENT_MAX_PENDING;
		o->cmd_count--;
		cmd.cb(o, &r, cmd.arg);
	}
}

/* on_session_reply - smtp_client's reply to the caller's oldest pending command. */
static void on_session_reply(struct smtp_client *c, const struct smtp_reply *sr, const char *text, void *arg)
{
	struct smtp_out *o = arg;
	struct smtp_out_reply r;
	struct out_cmd cmd;

	(void)c;
	if (o->state != OUT_OPEN || o->cmd_count == 0)
		return;
	cmd = o->cmds[o->cmd_head];
	o->cmd_head = (o->cmd_head + 1) % SMTP_CLIENT_MAX_PENDING;
	o->cmd_count--;
	memset(&r, 0, sizeof(r));
	r.code = sr->code;
	r.text = text;
	r.text_len = sr->len;
	r.last = text + sr->last_off;
	r.last_len = sr->last_len;
	smtp_reply_enhanced(sr->code, r.last, r.last_len, r.enhanced, sizeof(r.enhanced));
	arm_reply_timer(o);
	cmd.cb(o, &r, cmd.arg);
}

/* arm_reply_timer - a deadline while a reply is awaited (the long one for the end of data), none when idle. */
static void arm_reply_timer(struct smtp_out *o)
{
	if (o->cmd_count == 0) {
		uv_timer_stop(&o->timer);
		return;
	}
	uv_timer_start(&o->timer, on_timer,
		       o->cmds[o->cmd_head].is_data_end ? o->env.data_timeout_ms : o->env.reply_timeout_ms, 0);
}

/* session_command - send line (NULL: the end of data) for the caller, its callback queued in the same order. */
static int session_command(struct smtp_out *o, const char *line, smtp_out_reply_cb cb, void *arg)
{
	struct out_cmd *cmd;

	if (o->state != OUT_OPEN || o->broken || cb == NULL) {
		o->error = o->broken ? o->error : smtp_out_err_busy;
		return -1;
	}
	if (o->cmd_count == SMTP_CLIENT_MAX_PENDING) {
		o->error = smtp_out_err_busy;
		return -1;
	}
	cmd = &o->cmds[(o->cmd_head + o->cmd_count) % SMTP_CLIENT_MAX_PENDING];
	cmd->cb = cb;
	cmd->arg = arg;
	cmd->is_data_end = line == NULL;
	o->cmd_count++;
	if ((line != NULL ? smtp_client_command(o->smtp, line, on_session_reply, o)
			  : smtp_client_body_end(o->smtp, on_session_reply, o)) < 0) {
		o->cmd_count--;
		o->error = smtp_client_error(o->smtp);
		if (o->error == smtp_client_err_write) {
			o->error = smtp_out_err_closed;
			session_broken(o, smtp_out_err_closed);
		}
		return -1;
	}
	if (o->cmd_count == 1)
		arm_reply_timer(o);
	return 0;
}

/* command_line - "VERB" + args into buf; -1 when args could smuggle a second command. */
static int command_line(char *buf, size_t len, const char *verb, const char *args)
{
	if (args != NULL && strpbrk(args, "\r\n") != NULL)
		return -1;
	if ((size_t)snprintf(buf, len, "%s%s", verb, args != NULL ? args : "") >= len)
		return -1;
	return 0;
}

int smtp_out_mail(struct smtp_out *s, const char *args, smtp_out_reply_cb cb, void *arg)
{
	char line[SMTP_CLIENT_MAX_LINE];

	if (command_line(line, sizeof(line), "MAIL FROM:", args) < 0) {
		s->error = smtp_client_err_line;
		return -1;
	}
	return session_command(s, line, cb, arg);
}

int smtp_out_rcpt(struct smtp_out *s, const char *args, smtp_out_reply_cb cb, void *arg)
{
	char line[SMTP_CLIENT_MAX_LINE];

	if (command_line(line, sizeof(line), "RCPT TO:", args) < 0) {
		s->error = smtp_client_err_line;
		return -1;
	}
	return session_command(s, line, cb, arg);
}

int smtp_out_rset(struct smtp_out *s, smtp_out_reply_cb cb, void *arg)
{
	return session_command(s, "RSET", cb, arg);
}

int smtp_out_data(struct smtp_out *s, smtp_out_reply_cb cb, void *arg)
{
	return session_command(s, "DATA", cb, arg);
}

int smtp_out_content(struct smtp_out *s, const char *data, size_t len)
{
	const char *why;

	if (s->state != OUT_OPEN || s->broken) {
		s->error = s->broken ? s->error : smtp_out_err_busy;
		return -1;
	}
	if (smtp_client_body(s->smtp, data, len) < 0) {
		why = smtp_client_error(s->smtp);
		s->error = why == smtp_client_err_bare_newline || why == smtp_client_err_dot_line ? smtp_out_err_content
			 : why == smtp_client_err_write ? smtp_out_err_closed : smtp_out_err_busy;
		return -1;
	}
	return 0;
}

int smtp_out_content_end(struct smtp_out *s, smtp_out_reply_cb cb, void *arg)
{
	return session_command(s, NULL, cb, arg);
}

size_t smtp_out_queued(const struct smtp_out *s)
{
	return s->stream != NULL ? stream_write_queued(s->stream) : 0;
}

void smtp_out_set_drain(struct smtp_out *s, void (*drained)(struct smtp_out *s, void *arg), void *arg)
{
	s->drained = drained;
	s->drained_arg = arg;
}

static void on_quit_reply(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	(void)c;
	(void)r;
	(void)text;
	out_teardown(arg);
}

void smtp_out_close(struct smtp_out *s)
{
	if (s == NULL || s->state == OUT_FINISHED || s->state == OUT_QUITTING)
		return;
	s->cmd_count = 0;
	s->drained = NULL;
	if (s->state == OUT_OPEN && !s->broken && smtp_client_awaiting(s->smtp) == 0 &&
	    smtp_client_command(s->smtp, "QUIT", on_quit_reply, s) == 0) {
		/* A polite end: the 221 (or the MX closing, or a short deadline) finishes it. */
		s->state = OUT_QUITTING;
		uv_timer_start(&s->timer, on_timer, 5000, 0);
		return;
	}
	out_teardown(s);
}

/* ---------- the dialogue up to an open session ---------- */

/* open_done - the session is ready for the caller. */
static void open_done(struct smtp_out *o)
{
	uv_timer_stop(&o->timer);
	o->state = OUT_OPEN;
	smtp_client_set_pipelining(o->smtp, (o->rep.ehlo.flags & SMTP_EXT_PIPELINING) != 0);
	o->rep.total_ms = ms_since(o->t_start);
	o->open_cb(o, &o->rep, o->open_arg);
}

static int out_write(void *io, const char *data, size_t len)
{
	struct smtp_out *o = io;

	return o->stream != NULL ? stream_write(o->stream, (const uint8_t *)data, len) : -1;
}

/* dialogue_failed - smtp_client gave up during the dialogue (malformed reply, unasked-for reply, write error). */
static void dialogue_failed(struct smtp_out *o, const char *why)
{
	if (why == smtp_client_err_write)
		attempt_failed(o, smtp_out_err_closed, "%s: %s", o->addr_text,
			       o->stream ? stream_error(o->stream) : "write failed");
	else
		attempt_failed(o, smtp_out_err_protocol, "%s: %s", o->addr_text, why ? why : "protocol error");
}

/* expect - await the reply to line (or, NULL, the greeting) in state st. */
static void expect(struct smtp_out *o, enum out_state st, const char *line, smtp_client_reply_fn fn)
{
	o->state = st;
	uv_timer_start(&o->timer, on_timer, o->env.reply_timeout_ms, 0);
	if ((line != NULL ? smtp_client_command(o->smtp, line, fn, o) : smtp_client_expect(o->smtp, fn, o)) < 0)
		dialogue_failed(o, smtp_client_error(o->smtp));
}

static void on_ehlo_tls(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct smtp_out *o = arg;

	(void)c;
	if (r->code != 250) {
		attempt_failed(o, smtp_out_err_ehlo, "%s refuses EHLO over TLS (%d)", o->addr_text, r->code);
		return;
	}
	/* RFC 3207 section 4.2: what was announced before TLS counts no more. */
	smtp_ehlo_parse(text, r, &o->rep.ehlo);
	open_done(o);
}

/* out_verify - the TLS layer's certificate decision, by the rules of this host (RFC 7672 section 3). */
static int out_verify(const struct dane_chain *chain, void *arg)
{
	struct smtp_out *o = arg;
	struct dane_options opts;
	struct dane_result res;
	const char *names[4];
	size_t n = 0, i;

	if (o->host_tls != HOST_TLS_DANE) {
		o->rep.verdict = o->host_tls == HOST_TLS_OPPORTUNISTIC ? verdict_opportunistic
			       : o->policy == SMTP_POLICY_ENCRYPT ? verdict_encrypt : verdict_unusable;
		return 1;
	}
	/* Reference identifiers (RFC 7672 3.2.2): the TLSA base domain (the expanded name when the TLSA came from
	 * there), the MX host name, the destination domain and its CNAME target. */
	names[n++] = o->tlsa_base;
	if (strcmp(o->host->name, o->tlsa_base) != 0)
		names[n++] = o->host->name;
	for (i = 0; i < n && strcmp(names[i], o->domain) != 0; i++)
		;
	if (i == n)
		names[n++] = o->domain;
	if (o->rep.domain_cname[0] != '\0' && strcmp(o->rep.domain_cname, o->host->name) != 0 &&
	    strcmp(o->rep.domain_cname, o->tlsa_base) != 0)
		names[n++] = o->rep.domain_cname;
	memset(&opts, 0, sizeof(opts));
	opts.smtp = 1;
	memcpy(opts.digest_order, o->env.digests, sizeof(opts.digest_order));
	dane_verify(chain, o->records, o->n_records, names, n, &opts, &res);
	o->rep.verdict = res.reason;
	o->rep.depth = res.depth;
	o->rep.record[0] = '\0';
	if (res.record >= 0)
		tlsa_text_short(o->records[res.record].usage, o->records[res.record].selector,
				o->records[res.record].mtype, o->records[res.record].data, o->records[res.record].len,
				o->rep.record, sizeof(o->rep.record));
	if (!res.authenticated)
		snprintf(o->verify_detail, sizeof(o->verify_detail), "%s: %s", res.reason, res.detail);
	return res.authenticated;
}

static void on_data(struct stream *s, const uint8_t *data, size_t len, void *arg);
static void on_event(struct stream *s, enum stream_event ev, void *arg);

/* start_tls - the 220 to STARTTLS came alone: the handshake, SNI the TLSA base domain (RFC 7672 8.1). */
static void start_tls(struct smtp_out *o)
{
	struct tls_conn *t;

	o->state = OUT_AWAIT_HANDSHAKE;
	uv_timer_start(&o->timer, on_timer, o->env.handshake_timeout_ms, 0);
	t = tls_client_new(o->env.tls, o->host_tls == HOST_TLS_DANE ? o->tlsa_base : o->host->name, NULL, out_verify, o);
	if (t == NULL) {
		attempt_failed(o, smtp_out_err_handshake, "cannot create a TLS session");
		return;
	}
	if (stream_start_tls(o->stream, t, NULL, 0) < 0 && o->state == OUT_AWAIT_HANDSHAKE)
		attempt_failed(o, smtp_out_err_handshake, "%s: %s", o->addr_text, stream_error(o->stream));
}

static void on_starttls(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct smtp_out *o = arg;

	(void)text;
	if (r->code != 220) {
		/* Also under opportunistic TLS: plaintext only when STARTTLS is not offered at all. */
		attempt_failed(o, smtp_out_err_starttls_refused, "%s refuses STARTTLS (%d)", o->addr_text, r->code);
		return;
	}
	if (smtp_client_buffered(c) > 0) {
		attempt_failed(o, smtp_out_err_injection, "%s sent %zu octets after its 220 to STARTTLS", o->addr_text,
			       smtp_client_buffered(c));
		return;
	}
	/* A new conversation begins on the TLS layer (RFC 3207 4.2): this one is over. */
	smtp_client_halt(c);
	smtp_client_free(c);
	o->smtp = NULL;
	stream_read_stop(o->stream);
	start_tls(o);
}

static void on_ehlo(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct smtp_out *o = arg;

	(void)c;
	if (r->code != 250) {
		attempt_failed(o, smtp_out_err_ehlo, "%s refuses EHLO (%d)", o->addr_text, r->code);
		return;
	}
	smtp_ehlo_parse(text, r, &o->rep.ehlo);
	if (o->rep.ehlo.flags & SMTP_EXT_STARTTLS) {
		expect(o, OUT_EXPECT_STARTTLS, "STARTTLS", on_starttls);
		return;
	}
	if (o->host_tls != HOST_TLS_OPPORTUNISTIC) {
		/* What a STARTTLS-stripping attacker would cause: never plaintext where TLS is mandatory. */
		attempt_failed(o, smtp_out_err_no_starttls, "%s does not offer STARTTLS", o->addr_text);
		return;
	}
	o->rep.tls = SMTP_TLS_NONE;
	o->rep.verdict = NULL;
	open_done(o);
}

static void on_greeting(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct smtp_out *o = arg;
	char line[SMTP_CLIENT_MAX_LINE];

	(void)text;
	if (r->code != 220) {
		attempt_failed(o, smtp_out_err_greeting, "%s greets with %d", o->addr_text, r->code);
		return;
	}
	if (smtp_client_buffered(c) > 0) {
		attempt_failed(o, smtp_out_err_protocol, "%s sent data before our EHLO", o->addr_text);
		return;
	}
	snprintf(line, sizeof(line), "EHLO %s", o->env.helo);
	expect(o, OUT_EXPECT_EHLO, line, on_ehlo);
}

static void on_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct smtp_out *o = arg;

	(void)s;
	if (o->smtp == NULL || smtp_client_feed(o->smtp, (const char *)data, len) == 0)
		return;
	if (o->state == OUT_OPEN)
		session_broken(o, smtp_out_err_protocol);
	else if (o->state == OUT_QUITTING)
		out_teardown(o);
	else if (o->state != OUT_FINISHED)
		dialogue_failed(o, smtp_client_error(o->smtp));
}

static void on_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct smtp_out *o = arg;
	struct tls_conn *t = stream_tls(s);

	switch (ev) {
	case STREAM_CONNECTED:
		if (o->state != OUT_AWAIT_CONNECT)
			return;
		o->t_connected = uv_hrtime();
		o->rep.connect_ms = (double)(o->t_connected - o->t_connect) / 1e6;
		stream_peer(s, o->rep.peer, sizeof(o->rep.peer));
		if ((o->smtp = smtp_client_new(out_write, o)) == NULL) {
			attempt_failed(o, smtp_out_err_connect, "out of memory");
			return;
		}
		stream_read_start(s);
		expect(o, OUT_EXPECT_GREETING, NULL, on_greeting);
		return;
	case STREAM_HANDSHAKE_DONE:
		if (o->state != OUT_AWAIT_HANDSHAKE)
			return;
		o->rep.handshake_ms = ms_since(o->t_connected);
		snprintf(o->rep.tls_version, sizeof(o->rep.tls_version), "%s", tls_version(t));
		snprintf(o->rep.tls_cipher, sizeof(o->rep.tls_cipher), "%s", tls_cipher(t));
		o->rep.resumed = tls_resumed(t);
		o->rep.tls = o->host_tls == HOST_TLS_DANE ? SMTP_TLS_DANE : SMTP_TLS_ENCRYPT;
		if ((o->smtp = smtp_client_new(out_write, o)) == NULL) {
			attempt_failed(o, smtp_out_err_handshake, "out of memory");
			return;
		}
		stream_read_start(s);
		{
			char line[SMTP_CLIENT_MAX_LINE];
			snprintf(line, sizeof(line), "EHLO %s", o->env.helo);
			expect(o, OUT_EXPECT_EHLO_TLS, line, on_ehlo_tls);
		}
		return;
	case STREAM_DRAINED:
		if (o->state == OUT_OPEN && o->drained != NULL)
			o->drained(o, o->drained_arg);
		return;
	case STREAM_EOF:
	case STREAM_ERROR:
		break;
	}
	/* The connection ended or failed. */
	switch (o->state) {
	case OUT_AWAIT_CONNECT:
		attempt_failed(o, smtp_out_err_connect, "%s: %s", o->addr_text, stream_error(s));
		return;
	case OUT_AWAIT_HANDSHAKE:
		if (t != NULL && tls_verify_refused(t))
			attempt_failed(o, smtp_out_err_tlsa_mismatch, "%s: %s", o->addr_text, o->verify_detail);
		else
			attempt_failed(o, smtp_out_err_handshake, "%s: %s", o->addr_text,
				       ev == STREAM_EOF ? "connection closed" : stream_error(s));
		return;
	case OUT_OPEN:
		session_broken(o, smtp_out_err_closed);
		return;
	case OUT_QUITTING:
		out_teardown(o);
		return;
	case OUT_FINISHED:
		return;
	default:
		attempt_failed(o, smtp_out_err_closed, "%s closed the connection%s%s", o->addr_text,
			       ev == STREAM_EOF ? "" : ": ", ev == STREAM_EOF ? "" : stream_error(s));
		return;
	}
}

static void on_timer(uv_timer_t *timer)
{
	struct smtp_out *o = timer->data;

	switch (o->state) {
	case OUT_AWAIT_CONNECT:
		attempt_failed(o, smtp_out_err_connect, "%s did not answer within %u ms", o->addr_text,
			       o->env.connect_timeout_ms);
		return;
	case OUT_EXPECT_GREETING:
	case OUT_EXPECT_EHLO:
	case OUT_EXPECT_STARTTLS:
	case OUT_EXPECT_EHLO_TLS:
		attempt_failed(o, smtp_out_err_timeout, "%s: no reply within %u ms", o->addr_text,
			       o->env.reply_timeout_ms);
		return;
	case OUT_AWAIT_HANDSHAKE:
		attempt_failed(o, smtp_out_err_handshake, "%s: the handshake did not finish within %u ms",
			       o->addr_text, o->env.handshake_timeout_ms);
		return;
	case OUT_OPEN:
		session_broken(o, smtp_out_err_timeout);
		return;
	case OUT_QUITTING:
		out_teardown(o);
		return;
	case OUT_AWAIT_MX:
	case OUT_AWAIT_HOST_DNS:
	case OUT_FINISHED:
		return;
	}
}

/* ---------- connecting ---------- */

/* reset_attempt - forget what an earlier attempt left in the report about its connection. */
static void reset_attempt(struct smtp_out *o)
{
	o->rep.tls = SMTP_TLS_NONE;
	o->rep.verdict = NULL;
	o->rep.depth = -1;
	o->rep.record[0] = o->rep.peer[0] = o->rep.tls_version[0] = o->rep.tls_cipher[0] = '\0';
	o->rep.connect_ms = o->rep.handshake_ms = 0;
	o->rep.resumed = 0;
	memset(&o->rep.ehlo, 0, sizeof(o->rep.ehlo));
	o->verify_detail[0] = '\0';
}

/* start_connect - the next address of the current host. */
static void start_connect(struct smtp_out *o)
{
	struct sockaddr_storage *ss;
	char ip[INET6_ADDRSTRLEN];

	while (o->next_addr < o->n_addrs && o->attempts < o->env.max_attempts) {
		ss = &o->addrs[o->next_addr++];
		if (ss->ss_family == AF_INET6) {
			((struct sockaddr_in6 *)ss)->sin6_port = htons(o->env.port);
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr, ip, sizeof(ip));
			snprintf(o->addr_text, sizeof(o->addr_text), "[%s]:%u", ip, o->env.port);
		} else {
			((struct sockaddr_in *)ss)->sin_port = htons(o->env.port);
			inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr, ip, sizeof(ip));
			snprintf(o->addr_text, sizeof(o->addr_text), "%s:%u", ip, o->env.port);
		}
		o->state = OUT_AWAIT_CONNECT;
		reset_attempt(o);
		if (o->env.is_self != NULL && o->env.is_self((struct sockaddr *)ss, o->env.is_self_arg)) {
			record_failure(o, smtp_out_err_loop, "%s (%s) is one of this proxy's listeners", o->addr_text,
				       o->host->name);
			continue;
		}
		o->attempts++;
		o->stream = stream_new(o->env.loop, on_data, on_event, o);
		if (o->stream == NULL) {
			open_failed(o, smtp_out_err_internal, 451, "4.3.0", "out of memory");
			return;
		}
		o->t_connect = uv_hrtime();
		uv_timer_start(&o->timer, on_timer, o->env.connect_timeout_ms, 0);
		if (stream_connect(o->stream, (struct sockaddr *)ss) < 0) {
			attempt_failed(o, smtp_out_err_connect, "%s: %s", o->addr_text, stream_error(o->stream));
			return;
		}
		return;
	}
	o->next_addr = o->n_addrs;
	try_next(o);
}

/* ---------- the DNS of one MX host ---------- */

/* take_records - copy the TLSA records of res and count the usable ones under the SMTP profile. */
static int take_records(struct smtp_out *o, const struct resolver_result *res)
{
	struct dane_options opts;
	size_t i, total = 0, used = 0;

	free(o->records_blob);
	o->records_blob = NULL;
	o->n_records = 0;
	for (i = 0; i < res->n_tlsa; i++)
		total += res->tlsa[i].len;
	if (total > 0 && (o->records_blob = malloc(total)) == NULL)
		return -1;
	memset(&opts, 0, sizeof(opts));
	opts.smtp = 1;
	memcpy(opts.digest_order, o->env.digests, sizeof(opts.digest_order));
	o->rep.usable_records = 0;
	for (i = 0; i < res->n_tlsa; i++) {
		if (res->tlsa[i].len > 0)
			memcpy(o->records_blob + used, res->tlsa[i].data, res->tlsa[i].len);
		o->records[i] = (struct dane_tlsa){res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype,
						   o->records_blob + used, res->tlsa[i].len};
		used += res->tlsa[i].len;
		o->rep.usable_records += dane_record_usable(&o->records[i], &opts, NULL);
	}
	o->n_records = res->n_tlsa;
	return 0;
}

static void on_host_dns(const struct resolver_result *res, void *arg)
{
	struct smtp_out *o = arg;
	const char *base;
	size_t i;

	o->query = NULL;
	o->rep.dns_ms += ms_since(o->t_dns);
	o->rep.addr_secure = res->addrs_secure;
	o->rep.tlsa_dnssec = RESOLVER_INSECURE;
	o->rep.usable_records = 0;
	o->rep.tlsa_name[0] = '\0';
	switch (res->outcome) {
	case RESOLVER_BOGUS:
	case RESOLVER_INDETERMINATE:
	case RESOLVER_TIMEOUT:
	case RESOLVER_FAILURE:
		/* A failed TLSA lookup is never "no TLSA": the host is skipped. */
		host_failed(o, smtp_out_err_host_dns, "%s: %s", resolver_outcome_name(res->outcome), res->detail);
		return;
	case RESOLVER_NO_HOST:
		host_failed(o, smtp_out_err_host_no_address, "%s", res->detail);
		return;
	default:
		break;
	}
	for (i = 0; i < res->n_addrs; i++)
		o->addrs[i] = res->addrs[i];
	o->n_addrs = res->n_addrs;
	o->next_addr = 0;
	snprintf(o->tlsa_base, sizeof(o->tlsa_base), "%s", o->host->name);
	if (o->rep.tlsa_looked_up) {
		snprintf(o->rep.tlsa_name, sizeof(o->rep.tlsa_name), "%s", res->tlsa_name);
		/* The TLSA base domain is the owner name minus "_port._tcp." (the CNAME target when found there). */
		base = strchr(res->tlsa_name, '.');
		base = base != NULL ? strchr(base + 1, '.') : NULL;
		if (base != NULL && base[1] != '\0')
			snprintf(o->tlsa_base, sizeof(o->tlsa_base), "%s", base + 1);
	}
	if (res->outcome == RESOLVER_SECURE || res->outcome == RESOLVER_SECURE_UNUSABLE) {
		if (take_records(o, res) < 0) {
			open_failed(o, smtp_out_err_internal, 451, "4.3.0", "out of memory");
			return;
		}
		/* RFC 7672 3.1.3: usages 0 and 1 do not count for SMTP; the resolver counted them. */
		o->rep.tlsa_dnssec = o->rep.usable_records > 0 ? RESOLVER_SECURE : RESOLVER_SECURE_UNUSABLE;
		o->host_tls = o->rep.usable_records > 0 && o->policy != SMTP_POLICY_ENCRYPT ? HOST_TLS_DANE
											: HOST_TLS_MANDATORY;
	} else {
		o->rep.tlsa_dnssec = res->outcome;
		o->n_records = 0;
		if (!res->addrs_secure)
			o->rep.tlsa_looked_up = 0;   /* unsigned addresses: the resolver asked no TLSA (DANE.md 5) */
		if (o->policy == SMTP_POLICY_ENCRYPT) {
			o->host_tls = HOST_TLS_MANDATORY;
		} else if (o->policy == SMTP_POLICY_DANE_ONLY) {
			host_failed(o, smtp_out_err_host_no_tlsa, "%s: %s", o->host->name, res->detail);
			return;
		} else {
			o->host_tls = HOST_TLS_OPPORTUNISTIC;
		}
	}
	if (o->host_tls == HOST_TLS_MANDATORY && o->policy == SMTP_POLICY_DANE_ONLY) {
		host_failed(o, smtp_out_err_host_no_tlsa, "%s: every TLSA record is unusable for SMTP", o->host->name);
		return;
	}
	start_connect(o);
}

/* start_host - look up the next MX host: addresses and TLSA when the MX answer and the policy allow DANE. */
static void start_host(struct smtp_out *o)
{
	o->host = &o->hosts[o->next_host++];
	o->state = OUT_AWAIT_HOST_DNS;
	o->n_addrs = o->next_addr = 0;
	snprintf(o->rep.mx_host, sizeof(o->rep.mx_host), "%s", o->host->name);
	o->rep.mx_preference = o->host->preference;
	/* RFC 7672 2.2.1: DANE only for MX hosts obtained securely; policy encrypt ignores TLSA. */
	o->rep.tlsa_looked_up = o->mx_secure && o->policy != SMTP_POLICY_ENCRYPT;
	o->t_dns = uv_hrtime();
	o->query = o->rep.tlsa_looked_up ? resolver_lookup(o->env.resolver, o->host->name, o->env.port, on_host_dns, o)
					 : resolver_lookup_addrs(o->env.resolver, o->host->name, on_host_dns, o);
	if (o->query == NULL)
		host_failed(o, smtp_out_err_host_dns, "\"%s\" is not a valid host name", o->host->name);
}

/* ---------- the MX lookup ---------- */

/* shuffle_equal - random order among hosts of equal preference (RFC 5321 5.1); the rest stays sorted. */
static void shuffle_equal(struct smtp_out *o)
{
	uint32_t rnd[RESOLVER_MAX_MX];
	struct out_host tmp;
	size_t i, j, start;

	if (o->n_hosts < 2 || uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL) != 0)
		return;
	for (start = 0; start < o->n_hosts; start = i) {
		for (i = start + 1; i < o->n_hosts && o->hosts[i].preference == o->hosts[start].preference; i++)
			;
		for (j = i - 1; j > start; j--) {
			size_t k = start + rnd[j] % (j - start + 1);
			tmp = o->hosts[j];
			o->hosts[j] = o->hosts[k];
			o->hosts[k] = tmp;
		}
	}
}

static void on_mx(const struct resolver_result *res, void *arg)
{
	struct smtp_out *o = arg;
	size_t i;

	o->query = NULL;
	o->rep.mx_ms = ms_since(o->t_start);
	o->rep.mx_dnssec = res->outcome;
	snprintf(o->rep.domain_cname, sizeof(o->rep.domain_cname), "%s", res->cname_target);
	switch (res->outcome) {
	case RESOLVER_BOGUS:
		open_failed(o, smtp_out_err_mx_bogus, 451, "4.4.3", "%s", res->detail);
		return;
	case RESOLVER_INDETERMINATE:
	case RESOLVER_TIMEOUT:
	case RESOLVER_FAILURE:
		open_failed(o, smtp_out_err_mx_failed, 451, "4.4.3", "%s", res->detail);
		return;
	case RESOLVER_NO_HOST:
		open_failed(o, smtp_out_err_no_domain, 550, "5.1.2", "%s", res->detail);
		return;
	default:
		break;
	}
	if (res->mx_null) {
		open_failed(o, smtp_out_err_null_mx, 556, "5.1.10", "%s", res->detail);
		return;
	}
	o->mx_secure = res->mx_secure;
	if (o->policy == SMTP_POLICY_DANE_ONLY && !o->mx_secure) {
		open_failed(o, smtp_out_err_dane_required, 451, "4.7.5", "%s", res->detail);
		return;
	}
	o->n_hosts = res->n_mx > 0 ? res->n_mx : 1;
	o->rep.n_mx = res->n_mx;
	o->rep.mx_implicit = res->n_mx == 0;
	if ((o->hosts = calloc(o->n_hosts, sizeof(*o->hosts))) == NULL) {
		open_failed(o, smtp_out_err_internal, 451, "4.3.0", "out of memory");
		return;
	}
	if (res->n_mx == 0) {
		/* RFC 5321 5.1: no MX RRset, the domain itself is the implicit MX (preference 0). */
		snprintf(o->hosts[0].name, sizeof(o->hosts[0].name), "%s", o->domain);
	} else {
		for (i = 0; i < res->n_mx; i++) {
			o->hosts[i].preference = res->mx[i].preference;
			snprintf(o->hosts[i].name, sizeof(o->hosts[i].name), "%s", res->mx[i].host);
		}
		shuffle_equal(o);
	}
	start_host(o);
}

/* on_bad_domain - asynchronously, as promised: the domain was refused before any lookup. */
static void on_bad_domain(uv_timer_t *t)
{
	struct smtp_out *o = t->data;

	open_failed(o, smtp_out_err_bad_domain, 501, "5.1.3", "\"%s\" is not a valid mail domain", o->domain);
}

struct smtp_out *smtp_out_open(const struct smtp_out_env *env, const char *domain, enum smtp_policy policy,
			       smtp_out_open_cb cb, void *arg)
{
	struct smtp_out *o = calloc(1, sizeof(*o));

	if (o == NULL)
		return NULL;
	o->env = *env;
	if (o->env.port == 0)
		o->env.port = 25;
	if (o->env.helo == NULL || o->env.helo[0] == '\0')
		o->env.helo = "localhost";
	if (o->env.connect_timeout_ms == 0)
		o->env.connect_timeout_ms = 30000;
	if (o->env.handshake_timeout_ms == 0)
		o->env.handshake_timeout_ms = 30000;
	if (o->env.reply_timeout_ms == 0)
		o->env.reply_timeout_ms = 300000;
	if (o->env.data_timeout_ms == 0)
		o->env.data_timeout_ms = 600000;
	if (o->env.max_attempts == 0)
		o->env.max_attempts = 10;
	o->policy = policy;
	o->open_cb = cb;
	o->open_arg = arg;
	o->t_start = uv_hrtime();
	o->state = OUT_AWAIT_MX;
	o->rep.depth = -1;
	o->rep.tlsa_dnssec = RESOLVER_INSECURE;
	snprintf(o->domain, sizeof(o->domain), "%s", domain);
	snprintf(o->rep.domain, sizeof(o->rep.domain), "%s", domain);
	uv_timer_init(env->loop, &o->timer);
	o->timer.data = o;
	o->query = resolver_lookup_mx(env->resolver, domain, on_mx, o);
	if (o->query == NULL)
		uv_timer_start(&o->timer, on_bad_domain, 0, 0);
	return o;
}

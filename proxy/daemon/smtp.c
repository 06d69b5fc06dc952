/*
 * smtp.c - the SMTP smarthost driver: a legacy mail server relays through daneproxy, which delivers each message to
 * its domain's MX under RFC 7672 (smtp_out.c does the destination side), as a transactional proxy with no queue.
 *
 * Nothing is accepted that the destination did not accept: the client's MAIL is answered here (syntax, SIZE), its
 * first RCPT picks the destination domain and opens the MX session, and from then on every RCPT, DATA and the end
 * of the message gets the MX's own reply; a message is answered 250 only when the MX answered 250, so every
 * failure is a 4xx/5xx the client's own queue keeps the message for. One destination domain per transaction:
 * recipients in another domain get 452 4.5.3 (RFC 5321 4.5.3.1.10) and come back in another transaction. The
 * content is streamed to the MX as it arrives (bounded buffers, backpressure), never held whole.
 *
 * States (enum smtp_wait) are what the driver awaits: SMTP_AWAIT_COMMAND (the client's next command; pipelined
 * ones wait in the buffer and are taken one at a time, so replies keep their order), SMTP_AWAIT_MX_OPEN,
 * SMTP_AWAIT_MX_REPLY, SMTP_AWAIT_CONTENT (the message, up to <CRLF>.<CRLF>), SMTP_AWAIT_FINAL_REPLY. Each
 * transaction gets one JSON log line (the connection its own at the end, as every connection).
 */
#include "conn.h"
#include "json.h"
#include "metrics.h"
#include "smtp_cmd.h"
#include "smtp_out.h"
#include "stream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SMTP_BUF 16384              /* client commands waiting (pipelining) */
#define SMTP_MAX_RCPT 100           /* recipients per transaction (RFC 5321 4.5.3.1.8: at least 100) */
#define SMTP_HIGH_WATER (256 * 1024)
#define SMTP_CONTENT_READ SMTP_BUF  /* content read at a time: what follows its end always fits the buffer */
#define SMTP_RELAY_LINES 20         /* lines of an MX reply passed on to the client */

/* The transaction in progress, and the connection's command buffer. */
struct smtp_session {
	int greeted;                    /* HELO or EHLO seen */
	int in_mail;                    /* MAIL accepted: a transaction is open */
	char from[SMTP_CMD_PATH_MAX];
	uint64_t size;
	int body_8bit;
	char domain[256];               /* chosen by the first RCPT */
	enum smtp_policy policy;
	struct smtp_out *mx;            /* the open MX session, or NULL */
	int mx_tried;                   /* the MX was asked for (open failed or succeeded) */
	struct smtp_out_report rep;     /* what the open said (copied: the log line and the refusals need it) */
	int refuse_code;                /* non-zero: every RCPT of this domain gets this (the open failed) */
	char refuse_text[460];
	char rcpt[SMTP_CMD_PATH_MAX];   /* the RCPT waiting for the MX */
	unsigned rcpt_ok;
	unsigned rcpt_refused;
	struct smtp_data_scan scan;
	uint64_t content_bytes;
	const char *content_error;      /* the content was refused (too large, smuggling): answered at its end */
	char final_reply[300];
	int last_refusal;               /* the code of the last recipient refused */
	double t_start_ms;
	double t_data_ms;
	size_t len;                     /* command bytes in buf */
	char buf[SMTP_BUF];
};

static void process(struct conn *c);
static void refuse_rcpt(struct conn *c);

static struct smtp_session *S(struct conn *c)
{
	return c->d.smtp.s;
}

static int smtp_idle(const struct conn *c)
{
	return c->d.smtp.wait == SMTP_AWAIT_COMMAND && (c->d.smtp.s == NULL || !c->d.smtp.s->in_mail);
}

static void smtp_release(struct conn *c)
{
	struct smtp_session *s = S(c);

	if (s == NULL)
		return;
	if (s->mx != NULL)
		smtp_out_close(s->mx);
	free(s);
	c->d.smtp.s = NULL;
}

/* smtp_awaiting_origin - an MX answer is awaited: smtp_out's own timeouts (RFC 5321 4.5.3.2) bound it. */
static int smtp_awaiting_origin(const struct conn *c)
{
	return c->d.smtp.wait != SMTP_AWAIT_COMMAND && c->d.smtp.wait != SMTP_AWAIT_CONTENT;
}

static const struct conn_driver smtp_driver = {"smtp", smtp_idle, smtp_release, smtp_awaiting_origin};

/* now_ms - a monotonic clock in milliseconds, finer than the loop's (the log's phase timings). */
static double now_ms(void)
{
	return (double)uv_hrtime() / 1e6;
}

/* reply - one reply line to the client (CRLF added). */
static void __attribute__((format(printf, 2, 3))) reply(struct conn *c, const char *fmt, ...)
{
	char line[600];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	c->bytes_down += (uint64_t)n;
	if (stream_write(c->client.s, (const uint8_t *)line, (size_t)n) < 0)
		conn_close(c, "client_write_error", stream_error(c->client.s));
}

/* ---------- the transaction's log line ---------- */

static void put_failure(FILE *out, const struct smtp_out_failure *f)
{
	fprintf(out, "{\"host\": ");
	json_put_string(out, f->host);
	fprintf(out, ", \"preference\": %u, \"addr\": ", f->preference);
	json_put_string(out, f->addr[0] ? f->addr : NULL);
	fprintf(out, ", \"reason\": ");
	json_put_string(out, f->reason);
	fprintf(out, ", \"detail\": ");
	json_put_string(out, f->detail);
	fputc('}', out);
}

/* log_transaction - one line per transaction, whatever its end. */
static void log_transaction(struct conn *c, const char *result)
{
	struct smtp_session *s = S(c);
	const struct smtp_out_report *r = &s->rep;
	FILE *out = c->env->log;
	struct timespec ts;
	struct tm tm;
	char when[40];
	size_t i;

	if (out == NULL || !s->in_mail)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(out, "{\"ts\": \"%s.%03ldZ\", \"conn\": %llu, \"listener\": \"smtp\", \"event\": \"transaction\", "
		     "\"client\": ", when, ts.tv_nsec / 1000000, (unsigned long long)c->id);
	json_put_string(out, c->client_addr);
	fprintf(out, ", \"result\": \"%s\", \"domain\": ", result);
	json_put_string(out, s->domain[0] ? s->domain : NULL);
	fprintf(out, ", \"policy\": \"%s\", \"mx_dnssec\": ", smtp_policy_name(s->policy));
	json_put_string(out, s->mx_tried ? resolver_outcome_name(r->mx_dnssec) : NULL);
	/* the host of the session; after a failed open the hosts tried are in mx_failed */
	fprintf(out, ", \"mx_host\": ");
	json_put_string(out, r->mx_host[0] && r->error == NULL ? r->mx_host : NULL);
	fprintf(out, ", \"mx_preference\": ");
	if (r->mx_host[0] && r->error == NULL)
		fprintf(out, "%u", r->mx_preference);
	else
		fputs("null", out);
	fprintf(out, ", \"addr_secure\": %s, \"tlsa_dnssec\": ", r->addr_secure ? "true" : "false");
	json_put_string(out, r->tlsa_looked_up ? resolver_outcome_name(r->tlsa_dnssec) : NULL);
	fprintf(out, ", \"tls\": ");
	json_put_string(out, r->mx_host[0] && r->error == NULL ? smtp_tls_level_name(r->tls) : NULL);
	/* as the connection line: true or false only for a session over TLS (the smarthost offers no sessions yet) */
	fprintf(out, ", \"resumed\": %s", !(r->mx_host[0] && r->error == NULL && r->tls != SMTP_TLS_NONE) ? "null"
					  : r->resumed ? "true" : "false");
	fprintf(out, ", \"tlsa\": ");
	json_put_string(out, r->record[0] ? r->record : NULL);
	fprintf(out, ", \"depth\": ");
	if (r->depth >= 0 && r->record[0])
		fprintf(out, "%d", r->depth);
	else
		fputs("null", out);
	fprintf(out, ", \"peer\": ");
	json_put_string(out, r->peer[0] ? r->peer : NULL);
	fprintf(out, ", \"mx_failed\": [");
	for (i = 0; i < r->n_failed && i < SMTP_OUT_MAX_FAILURES; i++) {
		if (i > 0)
			fputs(", ", out);
		put_failure(out, &r->failed[i]);
	}
	fprintf(out, "], \"error\": ");
	json_put_string(out, r->error);
	fprintf(out, ", \"recipients_accepted\": %u, \"recipients_refused\": %u, \"bytes\": %llu, \"final_reply\": ",
		s->rcpt_ok, s->rcpt_refused, (unsigned long long)s->content_bytes);
	json_put_string(out, s->final_reply[0] ? s->final_reply : NULL);
	fprintf(out, ", \"mx_ms\": %.3f, \"dns_ms\": %.3f, \"connect_ms\": %.3f, \"handshake_ms\": %.3f, "
		     "\"data_ms\": %.3f, \"duration_ms\": %.3f}\n",
		r->mx_ms, r->dns_ms, r->connect_ms, r->handshake_ms,
		s->t_data_ms > 0 ? now_ms() - s->t_data_ms : 0.0, now_ms() - s->t_start_ms);
	fflush(out);
}

/* end_transaction - log it, close the MX session (QUIT), and forget it: the connection may start another. */
/* end_destination - log what happened to this destination domain and forget it (and its MX session, QUIT): the
 * envelope (MAIL) stays. */
static void end_destination(struct conn *c, const char *result)
{
	struct smtp_session *s = S(c);

	/* A transaction that never got a recipient through ends as its recipients did. */
	if (strcmp(result, "aborted") == 0 && s->rcpt_ok == 0 && s->rcpt_refused > 0)
		result = s->last_refusal / 100 == 4 ? "deferred" : "refused";
	log_transaction(c, result);
	if (s->mx != NULL) {
		smtp_out_close(s->mx);
		s->mx = NULL;
	}
	s->domain[0] = s->rcpt[0] = s->final_reply[0] = '\0';
	s->content_bytes = 0;
	s->mx_tried = s->refuse_code = 0;
	s->rcpt_ok = s->rcpt_refused = 0;
	s->last_refusal = 0;
	s->content_error = NULL;
	s->t_data_ms = 0;
	s->t_start_ms = now_ms();
	memset(&s->rep, 0, sizeof(s->rep));
	s->rep.depth = -1;
}

/* end_transaction - the transaction is over, whatever its end: logged, the MX session closed, the envelope gone. */
static void end_transaction(struct conn *c, const char *result)
{
	struct smtp_session *s = S(c);

	end_destination(c, result);
	s->in_mail = 0;
	s->from[0] = '\0';
	s->size = 0;
	s->body_8bit = 0;
}

/* ---------- the MX's replies ---------- */

/*
 * relay_reply - the MX's reply, every line of it (at most SMTP_RELAY_LINES, the last always), answered to the client
 * with our own line endings. ENHANCEDSTATUSCODES is announced to the client: a line without an enhanced code gets
 * dflt ("2.1.5", "2.0.0", ...) or its class with ".0.0".
 */
static void relay_reply(struct conn *c, const struct smtp_out_reply *r, const char *dflt)
{
	char generic[8];
	const char *enh = NULL;
	size_t i, off = 0;

	if (r->enhanced[0] == '\0') {
		if (dflt != NULL && dflt[0] - '0' == r->code / 100)
			enh = dflt;
		else {
			snprintf(generic, sizeof(generic), "%d.0.0", r->code / 100);
			enh = generic;
		}
	}
	for (i = 0; off < r->text_len; i++) {
		const char *line = r->text + off, *nl = memchr(line, '\n', r->text_len - off);
		size_t len = nl != NULL ? (size_t)(nl - line) : r->text_len - off;
		int last = nl == NULL || off + len + 1 >= r->text_len;
		off += len + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!last && i + 1 >= SMTP_RELAY_LINES)
			continue;   /* a long reply: its middle is left out, its last line never */
		if (len > 480)
			len = 480;
		if (len < 4) {
			reply(c, "%d%c%s", r->code, last ? ' ' : '-', enh != NULL ? enh : "");
			continue;
		}
		reply(c, "%d%c%s%s%.*s", r->code, last ? ' ' : '-', enh != NULL ? enh : "", enh != NULL ? " " : "",
		      (int)(len - 4), line + 4);
	}
}

static void continue_commands(struct conn *c);

/*
 * mx_broken - when the session broke under a command (r->error): the client is told, the transaction ends (the
 * session with it) and the next commands are taken; 1 then, 0 for a reply.
 */
static int mx_broken(struct conn *c, struct smtp_out *mx, const struct smtp_out_reply *r)
{
	struct smtp_session *s = S(c);

	if (r->error == NULL)
		return 0;
	reply(c, "451 4.4.2 connection to the destination MX lost: %s", r->error);
	snprintf(s->final_reply, sizeof(s->final_reply), "451 4.4.2 %s", r->error);
	s->mx = mx;   /* closed by end_transaction */
	end_transaction(c, "deferred");
	continue_commands(c);
	return 1;
}

static void continue_commands(struct conn *c)
{
	if (c->phase != CONN_DRIVEN)
		return;
	c->d.smtp.wait = SMTP_AWAIT_COMMAND;
	process(c);
	if (c->phase == CONN_DRIVEN && c->d.smtp.wait == SMTP_AWAIT_COMMAND) {
		/* Room for what the client pipelines next (reading paused while the buffer was full). */
		stream_set_read_limit(c->client.s, sizeof(S(c)->buf) - S(c)->len);
		stream_read_start(c->client.s);
	}
}

static void on_rcpt_reply(struct smtp_out *mx, const struct smtp_out_reply *r, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	if (mx_broken(c, mx, r))
		return;
	if (s->refuse_code) {
		/* The MX refused the sender (pipelined before this RCPT): its answer, not the 503 that follows it. */
		refuse_rcpt(c);
		continue_commands(c);
		return;
	}
	if (r->code / 100 == 2)
		s->rcpt_ok++;
	else {
		s->rcpt_refused++;
		s->last_refusal = r->code;
	}
	relay_reply(c, r, r->code / 100 == 2 ? "2.1.5" : NULL);
	continue_commands(c);
}

/* on_mail_reply - the MX refused the sender: every recipient of this domain gets that answer. */
static void on_mail_reply(struct smtp_out *mx, const struct smtp_out_reply *r, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	(void)mx;
	if (r->error == NULL && r->code / 100 != 2) {
		s->refuse_code = r->code;
		snprintf(s->refuse_text, sizeof(s->refuse_text), "%s%.*s", r->enhanced[0] ? "" : r->code / 100 == 4 ?
			 "4.0.0 " : "5.0.0 ", (int)(r->last_len < 400 ? r->last_len : 400), r->last ? r->last : "");
	}
}

/* send_rcpt - the waiting RCPT to the open MX session (after its MAIL), or the domain's refusal. */
static void send_rcpt(struct conn *c)
{
	struct smtp_session *s = S(c);
	char args[SMTP_CMD_PATH_MAX + 4];

	snprintf(args, sizeof(args), "<%s>", s->rcpt);
	if (smtp_out_rcpt(s->mx, args, on_rcpt_reply, c) < 0) {
		reply(c, "451 4.3.0 cannot relay the recipient: %s", smtp_out_error(s->mx));
		s->rcpt_refused++;
		s->last_refusal = 451;
		continue_commands(c);
		return;
	}
	c->d.smtp.wait = SMTP_AWAIT_MX_REPLY;
}

/* refuse_rcpt - the domain cannot be delivered to now: this recipient gets the reason (4xx: the client retries). */
static void refuse_rcpt(struct conn *c)
{
	struct smtp_session *s = S(c);

	reply(c, "%d %s", s->refuse_code, s->refuse_text);
	s->rcpt_refused++;
	s->last_refusal = s->refuse_code;
}

static void on_mx_open(struct smtp_out *mx, const struct smtp_out_report *rep, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);
	char params[128];
	int n = 0;

	s->rep = *rep;
	s->mx_tried = 1;
	s->mx = NULL;   /* the opening handle: the session from here on, or gone */
	if (mx == NULL) {
		s->refuse_code = rep->code ? rep->code : 451;
		snprintf(s->refuse_text, sizeof(s->refuse_text), "%s daneproxy: %s",
			 rep->enhanced[0] ? rep->enhanced : "4.4.1", rep->details);
		refuse_rcpt(c);
		continue_commands(c);
		return;
	}
	s->mx = mx;
	/* Only what the MX can take end to end: never a message it would have to mangle. */
	if (s->body_8bit && !(rep->ehlo.flags & SMTP_EXT_8BITMIME)) {
		s->refuse_code = 554;
		snprintf(s->refuse_text, sizeof(s->refuse_text),
			 "5.6.3 the destination MX %s does not take 8BITMIME content, and daneproxy does not convert it",
			 rep->mx_host);
	} else if (s->size && rep->ehlo.size && s->size > rep->ehlo.size) {
		s->refuse_code = 552;
		snprintf(s->refuse_text, sizeof(s->refuse_text),
			 "5.3.4 the message (%llu octets) is larger than the destination MX %s takes (%llu)",
			 (unsigned long long)s->size, rep->mx_host, (unsigned long long)rep->ehlo.size);
	}
	if (s->refuse_code) {
		smtp_out_close(s->mx);
		s->mx = NULL;
		refuse_rcpt(c);
		continue_commands(c);
		return;
	}
	n = snprintf(params, sizeof(params), "<%s>", s->from);
	if (s->size && (rep->ehlo.flags & SMTP_EXT_SIZE) && n >= 0 && (size_t)n < sizeof(params))
		n += snprintf(params + n, sizeof(params) - (size_t)n, " SIZE=%llu", (unsigned long long)s->size);
	if (s->body_8bit && n >= 0 && (size_t)n < sizeof(params))
		snprintf(params + n, sizeof(params) - (size_t)n, " BODY=8BITMIME");
	if (smtp_out_mail(s->mx, params, on_mail_reply, c) < 0) {
		s->refuse_code = 451;
		snprintf(s->refuse_text, sizeof(s->refuse_text), "4.3.0 %s", smtp_out_error(s->mx));
		smtp_out_close(s->mx);
		s->mx = NULL;
		refuse_rcpt(c);
		continue_commands(c);
		return;
	}
	send_rcpt(c);
}

/* ---------- DATA ---------- */

static void content_emit(void *arg, const char *data, size_t n)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	s->content_bytes += n;
	c->bytes_up += n;
	if (s->content_error != NULL || s->mx == NULL)
		return;   /* already refused: the rest is read and dropped until its end */
	if (s->content_bytes > c->listener->smtp->max_message_size) {
		s->content_error = "552 5.3.4 message larger than the smarthost's maximum size";
		return;
	}
	if (smtp_out_content(s->mx, data, n) < 0)
		s->content_error = smtp_out_error(s->mx) == smtp_out_err_content
			? "554 5.6.11 message refused: a bare CR or LF, or a line that is a lone dot (they could end or "
			  "split the message at the destination)"
			: "451 4.4.2 connection to the destination MX lost during the message";
}

static void on_final_reply(struct smtp_out *mx, const struct smtp_out_reply *r, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	if (mx_broken(c, mx, r))
		return;
	relay_reply(c, r, r->code / 100 == 2 ? "2.0.0" : NULL);
	snprintf(s->final_reply, sizeof(s->final_reply), "%d %.*s", r->code, (int)r->last_len, r->last ? r->last : "");
	end_transaction(c, r->code / 100 == 2 ? "delivered" : r->code / 100 == 4 ? "deferred" : "refused");
	continue_commands(c);
}

static void on_mx_drain(struct smtp_out *mx, void *arg)
{
	struct conn *c = arg;

	(void)mx;
	if (c->phase == CONN_DRIVEN && c->d.smtp.wait == SMTP_AWAIT_CONTENT)
		stream_read_start(c->client.s);
}

/* content - client bytes in SMTP_AWAIT_CONTENT: through the end scanner to the MX. */
static void content(struct conn *c, const char *data, size_t len)
{
	struct smtp_session *s = S(c);
	size_t used;
	int done;

	used = smtp_data_scan(&s->scan, data, len, content_emit, c, &done);
	if (!done) {
		if (s->mx != NULL && smtp_out_queued(s->mx) > SMTP_HIGH_WATER)
			stream_read_stop(c->client.s);
		return;
	}
	/* The end of the message: what follows are the client's next commands. */
	if (len - used > sizeof(s->buf)) {
		conn_close(c, "client_protocol_error", "too many commands pipelined after the end of a message");
		return;
	}
	memcpy(s->buf, data + used, len - used);
	s->len = len - used;
	if (s->content_error != NULL || s->mx == NULL) {
		reply(c, "%s", s->content_error ? s->content_error : "451 4.4.2 the destination MX is gone");
		snprintf(s->final_reply, sizeof(s->final_reply), "%s", s->content_error ? s->content_error : "451");
		end_transaction(c, s->content_error != NULL && s->content_error[0] == '5' ? "refused" : "deferred");
		continue_commands(c);
		return;
	}
	c->d.smtp.wait = SMTP_AWAIT_FINAL_REPLY;
	if (smtp_out_content_end(s->mx, on_final_reply, c) < 0) {
		reply(c, "451 4.3.0 the message could not be finished at the destination: %s", smtp_out_error(s->mx));
		end_transaction(c, "deferred");
		continue_commands(c);
	}
}

static void on_data_reply(struct smtp_out *mx, const struct smtp_out_reply *r, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	if (mx_broken(c, mx, r))
		return;
	if (r->code != 354) {
		relay_reply(c, r, NULL);
		snprintf(s->final_reply, sizeof(s->final_reply), "%d %.*s", r->code, (int)r->last_len, r->last ? r->last : "");
		end_transaction(c, r->code / 100 == 4 ? "deferred" : "refused");
		continue_commands(c);
		return;
	}
	reply(c, "354 End data with <CR><LF>.<CR><LF>");
	c->d.smtp.wait = SMTP_AWAIT_CONTENT;
	s->t_data_ms = now_ms();
	smtp_data_scan_init(&s->scan);
	smtp_out_set_drain(s->mx, on_mx_drain, c);
	/* Bytes the client pipelined after DATA are content. */
	if (s->len > 0) {
		char *pending = malloc(s->len);
		size_t n = s->len;
		if (pending == NULL) {
			conn_close(c, "internal_error", "out of memory");
			return;
		}
		memcpy(pending, s->buf, n);
		s->len = 0;
		content(c, pending, n);
		free(pending);
	}
	if (c->phase == CONN_DRIVEN && c->d.smtp.wait == SMTP_AWAIT_CONTENT) {
		stream_set_read_limit(c->client.s, SMTP_CONTENT_READ);   /* content is streamed, not buffered */
		stream_read_start(c->client.s);
	}
}

/* ---------- commands ---------- */

static void cmd_ehlo(struct conn *c, const struct smtp_cmd *cmd, int esmtp)
{
	struct smtp_session *s = S(c);
	const char *name = c->listener->smtp_helo;

	if (s->in_mail)
		end_transaction(c, "aborted");
	s->greeted = 1;
	if (!esmtp) {
		reply(c, "250 %s", name);
		return;
	}
	/* Only what can be honoured end to end (checked against the MX when it is chosen): no STARTTLS, no AUTH. */
	reply(c, "250-%s greets %.100s", name, cmd->arg[0] ? cmd->arg : "you");
	reply(c, "250-PIPELINING");
	reply(c, "250-SIZE %llu", (unsigned long long)c->listener->smtp->max_message_size);
	reply(c, "250-8BITMIME");
	reply(c, "250 ENHANCEDSTATUSCODES");
}

static void cmd_mail(struct conn *c, const struct smtp_cmd *cmd)
{
	struct smtp_session *s = S(c);

	if (!s->greeted) {
		reply(c, "503 5.5.1 send EHLO first");
		return;
	}
	if (s->in_mail) {
		reply(c, "503 5.5.1 a transaction is already open (RSET first)");
		return;
	}
	if (cmd->error != NULL) {
		reply(c, "%s %s", cmd->error == smtp_cmd_err_param ? "555 5.5.4" : "501 5.1.7", cmd->error);
		return;
	}
	if (cmd->size > c->listener->smtp->max_message_size) {
		reply(c, "552 5.3.4 message larger than the smarthost's maximum size (%llu)",
		      (unsigned long long)c->listener->smtp->max_message_size);
		return;
	}
	s->in_mail = 1;
	s->t_start_ms = now_ms();
	snprintf(s->from, sizeof(s->from), "%s", cmd->path);
	s->size = cmd->size;
	s->body_8bit = cmd->body_8bit;
	s->rep.depth = -1;
	reply(c, "250 2.1.0 sender ok");
}

/* domain_policy - [smtp] policy, unless a [policy] rule names the domain: dane-only stays, pkix means encrypt (SMTP
 * has no PKIX: RFC 7672 gives the MX's certificate no meaning outside DANE). */
static enum smtp_policy domain_policy(const struct conn *c, const char *domain)
{
	enum smtp_policy base;
	size_t i;

	smtp_policy_parse(c->listener->smtp->policy, &base);
	for (i = 0; i < c->env->n_rules; i++) {
		const struct policy_rule *r = &c->env->rules[i];
		if ((r->port == 0 || r->port == c->listener->smtp->mx_port) && policy_pattern_matches(r->pattern, domain))
			return r->mode == POLICY_DANE_ONLY ? SMTP_POLICY_DANE_ONLY
			     : r->mode == POLICY_PKIX ? SMTP_POLICY_ENCRYPT : SMTP_POLICY_DANE;
	}
	return base;
}

static void cmd_rcpt(struct conn *c, const struct smtp_cmd *cmd)
{
	struct smtp_session *s = S(c);

	if (!s->in_mail) {
		reply(c, "503 5.5.1 send MAIL first");
		return;
	}
	if (cmd->error != NULL) {
		reply(c, "%s %s", cmd->error == smtp_cmd_err_param ? "555 5.5.4" : cmd->error == smtp_cmd_err_domain
										   ? "550 5.1.2" : "501 5.1.3", cmd->error);
		return;
	}
	if (s->rcpt_ok + s->rcpt_refused >= SMTP_MAX_RCPT) {
		reply(c, "452 4.5.3 too many recipients: send the others in another transaction");
		return;
	}
	if (s->domain[0] && strcmp(s->domain, cmd->domain) != 0 && s->refuse_code && s->rcpt_ok == 0) {
		/*
		 * The first domain cannot be delivered to now and took no recipient: the next domain takes the
		 * transaction over. Otherwise a client that always sends its recipients in the same order (Postfix
		 * sorts them by domain) would have the second domain's mail wait for the first one's, for days.
		 */
		end_destination(c, s->last_refusal / 100 == 4 ? "deferred" : "refused");
	}
	if (s->domain[0] && strcmp(s->domain, cmd->domain) != 0) {
		/* One destination per transaction: the client sends these again in another one. */
		reply(c, "452 4.5.3 one destination domain per transaction (%s): send mail for %s in another", s->domain,
		      cmd->domain);
		s->rcpt_refused++;
		s->last_refusal = 452;
		return;
	}
	snprintf(s->rcpt, sizeof(s->rcpt), "%s", cmd->path);
	if (s->refuse_code) {
		refuse_rcpt(c);
		return;
	}
	if (s->mx != NULL) {
		send_rcpt(c);
		return;
	}
	/* The first recipient: its domain is the destination. */
	snprintf(s->domain, sizeof(s->domain), "%s", cmd->domain);
	snprintf(c->host, sizeof(c->host), "%s", cmd->domain);
	c->port = c->listener->smtp->mx_port;
	s->policy = domain_policy(c, s->domain);
	c->d.smtp.wait = SMTP_AWAIT_MX_OPEN;
	/* Kept while it opens, so that a client leaving meanwhile cancels it (smtp_release). */
	s->mx = smtp_out_open(c->listener->smtp_env, s->domain, s->policy, on_mx_open, c);
	if (s->mx == NULL) {
		c->d.smtp.wait = SMTP_AWAIT_COMMAND;
		reply(c, "451 4.3.0 out of memory");
	}
}

static void cmd_data(struct conn *c)
{
	struct smtp_session *s = S(c);

	if (!s->in_mail) {
		reply(c, "503 5.5.1 send MAIL first");
		return;
	}
	if (s->rcpt_ok == 0 || s->mx == NULL) {
		reply(c, "554 5.5.1 no valid recipients");
		return;
	}
	if (smtp_out_data(s->mx, on_data_reply, c) < 0) {
		reply(c, "451 4.3.0 %s", smtp_out_error(s->mx));
		end_transaction(c, "deferred");
		return;
	}
	c->d.smtp.wait = SMTP_AWAIT_MX_REPLY;
}

/* command - one complete command line. */
static void command(struct conn *c, const char *line, size_t len)
{
	struct smtp_session *s = S(c);
	struct smtp_cmd cmd;

	smtp_cmd_parse(line, len, &cmd);
	switch (cmd.verb) {
	case SMTP_CMD_EHLO: cmd_ehlo(c, &cmd, 1); break;
	case SMTP_CMD_HELO: cmd_ehlo(c, &cmd, 0); break;
	case SMTP_CMD_MAIL: cmd_mail(c, &cmd); break;
	case SMTP_CMD_RCPT: cmd_rcpt(c, &cmd); break;
	case SMTP_CMD_DATA: cmd_data(c); break;
	case SMTP_CMD_RSET:
		if (s->in_mail)
			end_transaction(c, "aborted");
		reply(c, "250 2.0.0 reset");
		break;
	case SMTP_CMD_NOOP: reply(c, "250 2.0.0 ok"); break;
	case SMTP_CMD_VRFY: reply(c, "252 2.5.0 cannot verify users; send the mail"); break;
	case SMTP_CMD_HELP: reply(c, "214 2.0.0 daneproxy relays mail to each domain's MX with DANE (RFC 7672)"); break;
	case SMTP_CMD_QUIT:
		if (s->in_mail)
			end_transaction(c, "aborted");
		reply(c, "221 2.0.0 bye");
		conn_close_when_flushed(c);
		break;
	case SMTP_CMD_STARTTLS:
	case SMTP_CMD_AUTH:
	case SMTP_CMD_EXPN:
	case SMTP_CMD_BDAT:
		reply(c, "502 5.5.1 not offered here");
		break;
	case SMTP_CMD_UNKNOWN:
		reply(c, "500 5.5.2 command not recognised");
		break;
	}
}

/* process - take the buffered command lines one at a time while nothing is awaited from the MX. */
static void process(struct conn *c)
{
	struct smtp_session *s = S(c);

	while (c->phase == CONN_DRIVEN && c->d.smtp.wait == SMTP_AWAIT_COMMAND && s->len > 0) {
		char *nl = memchr(s->buf, '\n', s->len);
		size_t n, take;
		char line[SMTP_CMD_LINE_MAX];
		if (nl == NULL) {
			if (s->len >= SMTP_CMD_LINE_MAX) {
				reply(c, "500 5.5.6 line too long");
				conn_close_when_flushed(c);
			}
			return;
		}
		take = (size_t)(nl - s->buf) + 1;
		n = take - 1;
		if (n > 0 && s->buf[n - 1] == '\r')
			n--;
		if (n >= sizeof(line)) {
			reply(c, "500 5.5.6 line too long");
			conn_close_when_flushed(c);
			return;
		}
		memcpy(line, s->buf, n);
		memmove(s->buf, s->buf + take, s->len - take);
		s->len -= take;
		c->bytes_up += take;
		if (memchr(line, '\0', n) != NULL) {
			reply(c, "500 5.5.2 NUL in a command");
			continue;
		}
		command(c, line, n);
	}
}

static void smtp_client_data(struct stream *st, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	(void)st;
	conn_touch(c);
	if (c->d.smtp.wait == SMTP_AWAIT_CONTENT) {
		content(c, (const char *)data, len);
		return;
	}
	if (len > sizeof(s->buf) - s->len) {
		/* More pipelined than any client needs: stop reading until it has been worked through. */
		reply(c, "421 4.5.0 too many commands pipelined");
		conn_close_when_flushed(c);
		return;
	}
	memcpy(s->buf + s->len, data, len);
	s->len += len;
	process(c);
	if (c->phase == CONN_DRIVEN && c->driver == &smtp_driver)
		stream_set_read_limit(c->client.s, sizeof(s->buf) - s->len);
}

static void smtp_client_event(struct stream *st, enum stream_event ev, void *arg)
{
	struct conn *c = arg;
	struct smtp_session *s = S(c);

	switch (ev) {
	case STREAM_EOF:
		if (s->in_mail)
			end_transaction(c, "aborted");   /* a message cut short never reaches the MX's queue */
		conn_close(c, "done", NULL);
		break;
	case STREAM_ERROR:
		if (s->in_mail)
			end_transaction(c, "aborted");
		conn_close(c, "client_error", stream_error(st));
		break;
	default:
		break;
	}
}

void smtp_start(struct conn *c)
{
	struct smtp_session *s = calloc(1, sizeof(*s));

	c->driver = &smtp_driver;
	c->d.smtp.wait = SMTP_AWAIT_COMMAND;
	c->d.smtp.s = s;
	if (s == NULL) {
		conn_close(c, "internal_error", "out of memory");
		return;
	}
	s->rep.depth = -1;
	stream_set_callbacks(c->client.s, smtp_client_data, smtp_client_event, c);
	stream_set_read_limit(c->client.s, sizeof(s->buf));
	reply(c, "220 %s ESMTP daneproxy: DANE-enforcing smarthost", c->listener->smtp_helo);
	stream_read_start(c->client.s);
}

/*
 * test_smtp_out.c - drives the outbound SMTP module (proxy/origin/smtp_out.c) on a libuv loop against the real MX
 * servers tests/smtp/smtp.sh starts on the bed's MX host addresses, and prints what happened as JSON lines for
 * smtp.sh to check: the open report (MX host used, those that failed and why, DNSSEC outcomes, TLS level,
 * TLSA match and depth, EHLO extensions) and the replies of one transaction (MAIL, RCPT..., DATA, end of data).
 *
 * usage: TESTBED_ENV=FILE test_smtp_out [options]
 *   --domain D          the destination domain (required)
 *   --policy P          dane (default), dane-only, encrypt
 *   --from A --rcpt B   envelope (--rcpt repeatable; default rcpt@D)
 *   --message FILE      content as a client has it: dot-stuffed here, as an SMTP client does, CRLF lines
 *   --content FILE      content passed to smtp_out_content exactly as it is (no stuffing): for the refusals
 *   --chunk N           feed content in pieces of N octets (default 1 KiB; 1 splits every CRLF and dot)
 *   --opens N           open N sessions one after another (each with one transaction); default 1
 *   --open-only         open and close: no transaction
 *   --max-attempts N    smtp_out_env.max_attempts
 * Exit status: 0 when every open and transaction ran and the loop closed clean (the verdicts are smtp.sh's to
 * judge), 1 on a harness failure (a callback twice or never, the loop left with open handles), 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "json.h"
#include "resolver.h"
#include "smtp_out.h"
#include "tls.h"

struct run {
	uv_loop_t loop;
	uv_timer_t watchdog;
	uv_timer_t finish;        /* ends the run from the loop: never free the resolver inside its own callback */
	struct resolver *resolver;
	struct tls_ctx *tls;
	struct smtp_out_env env;
	const char *domain;
	enum smtp_policy policy;
	const char *from;
	const char *rcpts[16];
	size_t n_rcpts;
	char *content;            /* stuffed (or raw) content, without the final "." CRLF */
	size_t content_len;
	size_t chunk;
	int open_only;
	int opens_left;
	int opens_done;
	int failures;             /* harness failures */
	/* the current session */
	struct smtp_out *s;
	size_t sent;              /* content octets given so far */
	int rcpt_replies;
	int in_content;
	FILE *out;
};

static void next_open(struct run *r);

static void fail_harness(struct run *r, const char *why)
{
	fprintf(stderr, "test_smtp_out: %s\n", why);
	r->failures++;
}

/* read_file - the whole file, NUL-terminated for convenience. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "test_smtp_out: %s: %s\n", path, strerror(errno));
		free(buf);
		if (f != NULL)
			fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* dot_stuff - what an SMTP client sends for a message (RFC 5321 4.5.2): a "." doubled at every line start; a last
 * line without CRLF gets one (the end of data follows). */
static char *dot_stuff(const char *msg, size_t len, size_t *out_len)
{
	char *out = malloc(2 * len + 3);
	size_t i, n = 0;
	int line_start = 1;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		if (line_start && msg[i] == '.')
			out[n++] = '.';
		out[n++] = msg[i];
		line_start = msg[i] == '\n';
	}
	if (len > 0 && !line_start) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	*out_len = n;
	return out;
}

/* ---------- JSON output ---------- */

static void put_key_string(FILE *o, const char *key, const char *v)
{
	fprintf(o, ", \"%s\": ", key);
	json_put_string(o, v);
}

/* put_report - the module's own log fields (smtp_out_report_json), plus what only the test looks at. */
static void put_report(struct run *r, const struct smtp_out_report *rep)
{
	FILE *o = r->out;

	fprintf(o, "{\"open\": %d", r->opens_done);
	smtp_out_report_json(o, rep);
	fprintf(o, ", \"ehlo_pipelining\": %d, \"ehlo_size\": %llu}\n", (rep->ehlo.flags & SMTP_EXT_PIPELINING) != 0,
		(unsigned long long)rep->ehlo.size);
	fflush(o);
}

static void put_reply(struct run *r, const char *what, const struct smtp_out_reply *rep)
{
	char text[600];

	fprintf(r->out, "{\"open\": %d, \"reply\": \"%s\", \"code\": %d", r->opens_done, what, rep->code);
	put_key_string(r->out, "enhanced", rep->enhanced);
	snprintf(text, sizeof(text), "%.*s", (int)(rep->last_len < 500 ? rep->last_len : 500), rep->last);
	put_key_string(r->out, "text", text);
	put_key_string(r->out, "error", rep->error);
	fprintf(r->out, "}\n");
	fflush(r->out);
}

static void put_event(struct run *r, const char *what, const char *detail)
{
	fprintf(r->out, "{\"open\": %d, \"event\": \"%s\"", r->opens_done, what);
	put_key_string(r->out, "detail", detail);
	fprintf(r->out, "}\n");
	fflush(r->out);
}

/* ---------- one transaction ---------- */

static void session_done(struct run *r)
{
	struct smtp_out *s = r->s;

	r->s = NULL;
	r->in_content = 0;
	smtp_out_close(s);
	next_open(r);
}

static void on_end(struct smtp_out *s, const struct smtp_out_reply *rep, void *arg)
{
	struct run *r = arg;

	(void)s;
	put_reply(r, "end", rep);
	session_done(r);
}

/* feed - give content while the socket queue is short; the drain callback resumes. */
static void feed(struct run *r)
{
	size_t n;

	while (r->in_content && r->sent < r->content_len && smtp_out_queued(r->s) < 256 * 1024) {
		n = r->content_len - r->sent < r->chunk ? r->content_len - r->sent : r->chunk;
		if (smtp_out_content(r->s, r->content + r->sent, n) < 0) {
			put_event(r, "content-refused", smtp_out_error(r->s));
			session_done(r);
			return;
		}
		r->sent += n;
	}
	if (r->in_content && r->sent == r->content_len) {
		r->in_content = 0;
		if (smtp_out_content_end(r->s, on_end, r) < 0) {
			put_event(r, "end-refused", smtp_out_error(r->s));
			session_done(r);
		}
	}
}

static void on_drained(struct smtp_out *s, void *arg)
{
	(void)s;
	feed(arg);
}

static void on_data(struct smtp_out *s, const struct smtp_out_reply *rep, void *arg)
{
	struct run *r = arg;

	put_reply(r, "data", rep);
	if (rep->code != 354) {
		session_done(r);
		return;
	}
	r->in_content = 1;
	r->sent = 0;
	smtp_out_set_drain(s, on_drained, r);
	feed(r);
}

/* A broken session tells the first pending command (then the close stops the rest). */
static void on_rcpt(struct smtp_out *s, const struct smtp_out_reply *rep, void *arg)
{
	struct run *r = arg;

	(void)s;
	put_reply(r, "rcpt", rep);
	r->rcpt_replies++;
	if (rep->error != NULL)
		session_done(r);
}

static void on_mail(struct smtp_out *s, const struct smtp_out_reply *rep, void *arg)
{
	(void)s;
	put_reply(arg, "mail", rep);
	if (rep->error != NULL)
		session_done(arg);
}

static void on_open(struct smtp_out *s, const struct smtp_out_report *rep, void *arg)
{
	struct run *r = arg;
	char args[300];
	size_t i;

	put_report(r, rep);
	if (s == NULL) {
		r->s = NULL;
		next_open(r);
		return;
	}
	if (r->s != s)
		fail_harness(r, "the open callback got another session");
	if (r->open_only) {
		session_done(r);
		return;
	}
	/* The whole transaction at once: smtp_out pipelines when the MX allows it, serialises otherwise. */
	r->rcpt_replies = 0;
	snprintf(args, sizeof(args), "<%s>", r->from);
	if (smtp_out_mail(s, args, on_mail, r) < 0) {
		put_event(r, "mail-refused", smtp_out_error(s));
		session_done(r);
		return;
	}
	for (i = 0; i < r->n_rcpts; i++) {
		snprintf(args, sizeof(args), "<%s>", r->rcpts[i]);
		if (smtp_out_rcpt(s, args, on_rcpt, r) < 0) {
			put_event(r, "rcpt-refused", smtp_out_error(s));
			session_done(r);
			return;
		}
	}
	if (smtp_out_data(s, on_data, r) < 0) {
		put_event(r, "data-refused", smtp_out_error(s));
		session_done(r);
	}
}

static void on_finish(uv_timer_t *t)
{
	struct run *r = t->data;

	uv_close((uv_handle_t *)&r->watchdog, NULL);
	uv_close((uv_handle_t *)&r->finish, NULL);
	resolver_free(r->resolver);
	r->resolver = NULL;
}

static void next_open(struct run *r)
{
	if (r->opens_left == 0) {
		uv_timer_stop(&r->watchdog);
		uv_timer_start(&r->finish, on_finish, 0, 0);
		return;
	}
	r->opens_left--;
	r->opens_done++;
	r->s = smtp_out_open(&r->env, r->domain, r->policy, on_open, r);
	if (r->s == NULL) {
		fail_harness(r, "smtp_out_open returned NULL");
		r->opens_left = 0;
		next_open(r);
	}
}

static void on_watchdog(uv_timer_t *t)
{
	struct run *r = t->data;

	fail_harness(r, "the run did not finish within 60 s");
	if (r->s != NULL)
		smtp_out_close(r->s);
	r->s = NULL;
	r->opens_left = 0;
	next_open(r);
}

/* env_get - KEY from the bed's KEY=VALUE file. */
static char *env_get(const char *path, const char *key)
{
	FILE *f = fopen(path, "r");
	char line[1024], *v = NULL;
	size_t kl = strlen(key);

	if (f == NULL)
		return NULL;
	while (v == NULL && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strncmp(line, key, kl) == 0 && line[kl] == '=')
			v = strdup(line + kl + 1);
	}
	fclose(f);
	return v;
}

static void walk_print(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "  open handle: %s\n", uv_handle_type_name(uv_handle_get_type(h)));
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"domain", required_argument, NULL, 'd'},   {"policy", required_argument, NULL, 'p'},
		{"from", required_argument, NULL, 'f'},     {"rcpt", required_argument, NULL, 'r'},
		{"message", required_argument, NULL, 'm'},  {"content", required_argument, NULL, 'c'},
		{"chunk", required_argument, NULL, 'k'},    {"opens", required_argument, NULL, 'n'},
		{"open-only", no_argument, NULL, 'o'},      {"max-attempts", required_argument, NULL, 'a'},
		{NULL, 0, NULL, 0},
	};
	const char *envfile = getenv("TESTBED_ENV"), *message = NULL, *raw = NULL;
	char *resolver_addr, *anchor, *port, err[256], default_rcpt[300];
	struct resolver_options ro;
	struct run r;
	int opt;

	memset(&r, 0, sizeof(r));
	r.out = stdout;
	r.from = "sender@client.test";
	r.chunk = 1024;
	r.opens_left = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': r.domain = optarg; break;
		case 'p':
			if (smtp_policy_parse(optarg, &r.policy) < 0) {
				fprintf(stderr, "test_smtp_out: bad --policy %s\n", optarg);
				return 2;
			}
			break;
		case 'f': r.from = optarg; break;
		case 'r':
			if (r.n_rcpts < sizeof(r.rcpts) / sizeof(r.rcpts[0]))
				r.rcpts[r.n_rcpts++] = optarg;
			break;
		case 'm': message = optarg; break;
		case 'c': raw = optarg; break;
		case 'k': r.chunk = (size_t)strtoul(optarg, NULL, 10); break;
		case 'n': r.opens_left = atoi(optarg); break;
		case 'o': r.open_only = 1; break;
		case 'a': r.env.max_attempts = (unsigned)atoi(optarg); break;
		default: return 2;
		}
	}
	if (r.domain == NULL || envfile == NULL || r.chunk == 0 || r.opens_left < 1) {
		fprintf(stderr, "usage: TESTBED_ENV=FILE %s --domain D [--policy P] [--message FILE|--content FILE] ...\n",
			argv[0]);
		return 2;
	}
	if (r.n_rcpts == 0) {
		snprintf(default_rcpt, sizeof(default_rcpt), "rcpt@%s", r.domain);
		r.rcpts[r.n_rcpts++] = default_rcpt;
	}
	if (message != NULL) {
		size_t len;
		char *m = read_file(message, &len);
		if (m == NULL || (r.content = dot_stuff(m, len, &r.content_len)) == NULL)
			return 2;
		free(m);
	} else if (raw != NULL) {
		if ((r.content = read_file(raw, &r.content_len)) == NULL)
			return 2;
	} else {
		r.content = strdup("Subject: test\r\n\r\nhello\r\n");
		r.content_len = strlen(r.content);
	}
	resolver_addr = env_get(envfile, "TESTBED_RESOLVER");
	anchor = env_get(envfile, "TESTBED_TRUST_ANCHOR");
	port = env_get(envfile, "TESTBED_SMTP_PORT");
	if (resolver_addr == NULL || anchor == NULL || port == NULL) {
		fprintf(stderr, "test_smtp_out: %s lacks TESTBED_RESOLVER, TESTBED_TRUST_ANCHOR or TESTBED_SMTP_PORT\n",
			envfile);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&r.loop);
	memset(&ro, 0, sizeof(ro));
	ro.upstreams[0] = resolver_addr;
	ro.n_upstreams = 1;
	ro.trust_anchor_file = anchor;
	if (resolver_new(&r.loop, &ro, &r.resolver, err, sizeof(err)) < 0 ||
	    (r.tls = tls_client_ctx_new(err, sizeof(err))) == NULL) {
		fprintf(stderr, "test_smtp_out: %s\n", err);
		return 1;
	}
	r.env.loop = &r.loop;
	r.env.resolver = r.resolver;
	r.env.tls = r.tls;
	r.env.port = (uint16_t)atoi(port);
	r.env.helo = "smarthost.client.test";
	r.env.connect_timeout_ms = 3000;
	r.env.handshake_timeout_ms = 5000;
	r.env.reply_timeout_ms = 5000;
	r.env.data_timeout_ms = 10000;
	uv_timer_init(&r.loop, &r.watchdog);
	uv_timer_init(&r.loop, &r.finish);
	r.watchdog.data = r.finish.data = &r;
	uv_timer_start(&r.watchdog, on_watchdog, 60000, 0);
	next_open(&r);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	if (r.s != NULL)
		fail_harness(&r, "a session was left open");
	tls_ctx_free(r.tls);
	if (uv_loop_close(&r.loop) != 0) {
		uv_walk(&r.loop, walk_print, NULL);
		fail_harness(&r, "the loop has open handles at the end");
	}
	free(r.content);
	free(resolver_addr);
	free(anchor);
	free(port);
	return r.failures ? 1 : 0;
}

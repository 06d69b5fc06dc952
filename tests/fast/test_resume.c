/*
 * test_resume.c - origin session resumption bound to the DANE decision, end to end on the loop: upstream_open
 * against nginx origins with session tickets (and session IDs), resolving through a DNSSEC test bed that this
 * test owns, so that it may change TLSA RRsets between connections (tests/fast/bed-tlsa.sh).
 *
 *   test_resume ENVFILE TICKET_PORT ID_PORT MUTATE [TEST]
 *     ENVFILE      the bed's testbed.env
 *     TICKET_PORT  nginx, TLS 1.2 + 1.3, tickets on (the bed publishes TLSA at this port)
 *     ID_PORT      nginx, TLS 1.2 + 1.3, tickets off, a shared session cache (session IDs)
 *     MUTATE       tests/fast/bed-tlsa.sh
 * Started by tests/fast/resume.sh, which starts the bed and the origins (in a network namespace of its own
 * when it can). Every connection sends one request and reads the response to the end, as a relay would, so
 * that TLS 1.3 tickets (sent after the handshake) are read.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "runtime.h"
#include "session_cache.h"
#include "stream.h"
#include "tls.h"
#include "upstream.h"

#define ENV_MAX 256

static struct {
	char keys[ENV_MAX][64];
	char vals[ENV_MAX][512];
	size_t n;
	unsigned ticket_port;
	unsigned id_port;
	const char *mutate;
} g;

/* bed - a value of the bed's env file ("" when missing). */
static const char *bed(const char *key)
{
	size_t i;

	for (i = 0; i < g.n; i++)
		if (strcmp(g.keys[i], key) == 0)
			return g.vals[i];
	return "";
}

static int load_env(const char *path)
{
	char line[700], *eq;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL && g.n < ENV_MAX) {
		line[strcspn(line, "\n")] = '\0';
		eq = strchr(line, '=');
		if (eq == NULL || eq - line >= 64)
			continue;
		*eq = '\0';
		snprintf(g.keys[g.n], sizeof(g.keys[0]), "%s", line);
		snprintf(g.vals[g.n], sizeof(g.vals[0]), "%s", eq + 1);
		g.n++;
	}
	fclose(f);
	return 0;
}

/* mutate - replace the TLSA RRset of label.dane.test (NULL-terminated rdata list; none: remove it). */
static void mutate(const char *label, ...)
{
	char cmd[2048];
	const char *r;
	size_t n;
	va_list ap;

	n = (size_t)snprintf(cmd, sizeof(cmd), "%s '%s' '%s'", g.mutate, bed("TESTBED_DIR"), label);
	va_start(ap, label);
	while ((r = va_arg(ap, const char *)) != NULL && n < sizeof(cmd))
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " '%s'", r);
	va_end(ap);
	assert_true(n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
}

struct fixture {
	uv_loop_t loop;
	struct runtime rt;
	struct runtime_options ro;
	struct tls_ctx *tls12;   /* a client context limited to TLS 1.2 */
};

/* one connection: the upstream's report, then a request and its response */
struct conn {
	struct fixture *fx;
	struct stream *s;
	int done;                /* upstream finished and the stream (if any) is closed */
	int ok;
	struct upstream_report rep;
	char resp[64];
	size_t resp_len;
};

static void conn_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct conn *c = arg;
	size_t room = sizeof(c->resp) - 1 - c->resp_len;

	(void)s;
	if (len > room)
		len = room;
	memcpy(c->resp + c->resp_len, data, len);
	c->resp_len += len;
}

static void conn_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct conn *c = arg;

	if (ev == STREAM_EOF || ev == STREAM_ERROR) {
		stream_close(s);
		c->s = NULL;
		c->done = 1;
	}
}

static void on_upstream(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct conn *c = arg;
	char req[300];
	int n;

	c->rep = *rep;
	c->ok = origin != NULL;
	if (origin == NULL) {
		c->done = 1;
		return;
	}
	c->s = origin;
	stream_set_callbacks(origin, conn_data, conn_event, c);
	n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	if (stream_read_start(origin) < 0 || stream_write(origin, (const uint8_t *)req, (size_t)n) < 0) {
		stream_close(origin);
		c->s = NULL;
		c->done = 1;
	}
}

/* run_until - run the loop until *flag is set (or 20 s pass: a failure). */
static void run_until(struct fixture *fx, const int *flag)
{
	uint64_t deadline = uv_hrtime() + 20000000000ull;

	while (!*flag && uv_hrtime() < deadline)
		uv_run(&fx->loop, UV_RUN_ONCE);
	assert_true(*flag);
}

/* connect_once - one connection to host:port with the policy, through fx's runtime; its report in *rep. */
static int connect_once(struct fixture *fx, const char *host, unsigned port, enum policy_mode mode,
			struct upstream_report *rep)
{
	struct conn c;
	struct upstream *u;

	memset(&c, 0, sizeof(c));
	c.fx = fx;
	u = upstream_open(&fx->rt.env, host, (uint16_t)port, mode, "http/1.1", 0, on_upstream, &c);
	assert_non_null(u);
	run_until(fx, &c.done);
	*rep = c.rep;
	if (c.ok && (c.resp_len < 12 || memcmp(c.resp, "HTTP/1.1 200", 12) != 0)) {
		print_error("%s:%u: no 200 response over the TLS session (%zu bytes)\n", host, port, c.resp_len);
		return -1;
	}
	return c.ok ? 0 : -1;
}

/* fresh_resolver - a new resolver (nothing cached): the next lookup is asked anew. */
static void fresh_resolver(struct fixture *fx)
{
	struct resolver_options ro;
	char err[256];
	size_t i;

	resolver_free(fx->rt.resolver);
	memset(&ro, 0, sizeof(ro));
	for (i = 0; i < fx->ro.n_upstreams; i++)
		ro.upstreams[i] = fx->ro.upstreams[i];
	ro.n_upstreams = fx->ro.n_upstreams;
	ro.trust_anchor_file = fx->ro.trust_anchor;
	ro.ttl_min = fx->ro.ttl_min_s;
	ro.failure_ttl = fx->ro.failure_ttl_s;
	ro.ttls_literal = fx->ro.ttls_literal;
	ro.usable = runtime_usable;
	ro.usable_arg = fx->rt.env.digests;
	assert_int_equal(resolver_new(&fx->loop, &ro, &fx->rt.resolver, err, sizeof(err)), 0);
	fx->rt.env.resolver = fx->rt.resolver;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char err[256];

	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	runtime_options_init(&fx->ro);
	fx->ro.upstreams[0] = bed("TESTBED_RESOLVER");
	fx->ro.n_upstreams = 1;
	fx->ro.trust_anchor = bed("TESTBED_TRUST_ANCHOR");
	fx->ro.ca_file = bed("TESTBED_CA_CERT");
	fx->ro.connect_timeout_ms = fx->ro.handshake_timeout_ms = 5000;
	/* shortttl.dane.test has a TTL of 2 s: keep it (no 5 s minimum). */
	fx->ro.ttl_min_s = 1;
	fx->ro.failure_ttl_s = 1;
	fx->ro.ttls_literal = 1;
	if (runtime_open(&fx->rt, &fx->loop, &fx->ro, err, sizeof(err)) < 0) {
		print_error("runtime_open: %s\n", err);
		return -1;
	}
	fx->tls12 = tls_client_ctx_new(err, sizeof(err));
	assert_non_null(fx->tls12);
	tls_ctx_max_tls12(fx->tls12);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	runtime_close(&fx->rt);
	tls_ctx_free(fx->tls12);
	/* The resolver's handles close on the loop; then the loop must be empty (nothing leaked). */
	while (uv_run(&fx->loop, UV_RUN_NOWAIT) != 0)
		;
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	free(fx);
	return 0;
}

static struct session_cache_stats stats(struct fixture *fx)
{
	struct session_cache_stats st;

	session_cache_get_stats(fx->rt.sessions, &st);
	return st;
}

/* expect - one connection and what it must have been. */
static void expect(struct fixture *fx, const char *host, unsigned port, enum policy_mode mode, int ok, int resumed,
		   const char *auth, struct upstream_report *out)
{
	struct upstream_report rep;
	int r = connect_once(fx, host, port, mode, &rep);

	print_message("  %s:%u %s: %s, resumed %d, %s %s\n", host, port, policy_mode_name(mode), r == 0 ? "ok" : "refused",
		      rep.resumed, rep.tls_version, rep.error != NULL ? rep.error : auth_method_name(rep.method));
	if ((r == 0) != ok || rep.resumed != resumed) {
		print_error("%s:%u: %s, resumed %d (want %s, resumed %d): %s %s\n", host, port, r == 0 ? "ok" : "refused",
			    rep.resumed, ok ? "ok" : "refused", resumed, rep.error ? rep.error : "", rep.details);
		fail();
	}
	if (ok && auth != NULL)
		assert_string_equal(auth_method_name(rep.method), auth);
	if (out != NULL)
		*out = rep;
}

/* TLS 1.3 tickets: the second connection resumes, reports the record of the first and skips the chain. */
static void test_tls13_ticket(void **state)
{
	struct fixture *fx = *state;
	struct upstream_report full, res;

	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", &full);
	assert_string_equal(full.tls_version, "TLSv1.3");
	assert_true(full.record[0] != '\0');
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "dane", &res);
	assert_string_equal(res.tls_version, "TLSv1.3");
	assert_string_equal(res.record, full.record);
	assert_int_equal(res.depth, full.depth);
	assert_non_null(strstr(res.verdict, "resumed"));
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "dane", NULL);
	assert_true(stats(fx).hits >= 2);
	/* Another policy is another key: a full handshake of its own. */
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE_ONLY, 1, 0, "dane", NULL);
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE_ONLY, 1, 1, "dane", NULL);
}

/* TLS 1.2 with tickets, and with session IDs from the server's cache. */
static void test_tls12(void **state)
{
	struct fixture *fx = *state;
	struct upstream_report rep;

	fx->rt.env.tls = fx->tls12;
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", &rep);
	assert_string_equal(rep.tls_version, "TLSv1.2");
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "dane", &rep);
	assert_string_equal(rep.tls_version, "TLSv1.2");
	expect(fx, "www.dane.test", g.id_port, POLICY_DANE, 1, 0, "dane", NULL);
	expect(fx, "www.dane.test", g.id_port, POLICY_DANE, 1, 1, "dane", &rep);
	assert_string_equal(rep.tls_version, "TLSv1.2");
	fx->rt.env.tls = fx->rt.tls;
}

/* TLS 1.3 from an origin without tickets (OpenSSL then issues stateful tickets from its session cache). */
static void test_tls13_stateful(void **state)
{
	struct fixture *fx = *state;
	struct upstream_report rep;

	expect(fx, "www.dane.test", g.id_port, POLICY_DANE, 1, 0, "dane", NULL);
	expect(fx, "www.dane.test", g.id_port, POLICY_DANE, 1, 1, "dane", &rep);
	assert_string_equal(rep.tls_version, "TLSv1.3");
}

/* A refused handshake leaves nothing behind, and the next one is refused again. */
static void test_refused_never_cached(void **state)
{
	struct fixture *fx = *state;
	struct upstream_report rep;

	expect(fx, "mismatch.dane.test", g.ticket_port, POLICY_DANE, 0, 0, NULL, &rep);
	assert_string_equal(rep.error, "tls_certificate_error");
	expect(fx, "mismatch.dane.test", g.ticket_port, POLICY_DANE, 0, 0, NULL, &rep);
	assert_string_equal(rep.error, "tls_certificate_error");
	assert_int_equal(stats(fx).stored, 0);
	assert_int_equal(stats(fx).entries, 0);
}

/* PKIX fallback (secure absence of TLSA): resumed under the same PKIX decision, not after the store changes. */
static void test_pkix_keyed_by_store(void **state)
{
	struct fixture *fx = *state;

	expect(fx, "notlsa.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "pkix", NULL);
	expect(fx, "notlsa.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "pkix", NULL);
	fx->rt.env.pkix_store_id[0] ^= 1;   /* another trust store (a reloaded ca_file) */
	expect(fx, "notlsa.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "pkix", NULL);
	expect(fx, "notlsa.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "pkix", NULL);
	assert_true(stats(fx).stale >= 1);
}

/*
 * The TLSA RRset of www.dane.test changes between connections (each lookup is a fresh one): any change forces a
 * full handshake; a change to records the server no longer matches refuses it (a resumption would have been
 * accepted: this is what the binding is for); the DNSSEC outcome changing (no TLSA any more) too.
 */
static void test_tlsa_change(void **state)
{
	struct fixture *fx = *state;
	char ee[200], ta[200], bad[200];
	unsigned p = g.ticket_port;

	snprintf(ee, sizeof(ee), "3 1 1 %s", bed("TESTBED_LEAF_SPKI_SHA256"));
	snprintf(ta, sizeof(ta), "2 0 1 %s", bed("TESTBED_CA_CERT_SHA256"));
	snprintf(bad, sizeof(bad), "3 1 1 %064d", 7);
	mutate("www", ee, ta, (const char *)NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 0, "dane", NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 1, "dane", NULL);
	/* Still matching, but another RRset: authenticate again. */
	mutate("www", ee, (const char *)NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 0, "dane", NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 1, "dane", NULL);
	/* Records that no longer match the server: refused, although the server would have resumed. */
	mutate("www", bad, (const char *)NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 0, 0, NULL, NULL);
	/* Back to the matching record: the old session is gone, a full handshake first. */
	mutate("www", ee, (const char *)NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 0, "dane", NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 1, "dane", NULL);
	/* No TLSA at all (secure NXDOMAIN): policy dane falls back to PKIX, a new decision. */
	mutate("www", (const char *)NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 0, "pkix", NULL);
	fresh_resolver(fx);
	expect(fx, "www.dane.test", p, POLICY_DANE, 1, 1, "pkix", NULL);
	assert_true(stats(fx).stale >= 3);
	mutate("www", ee, ta, (const char *)NULL);
}

static void on_wait_timer(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* wait_ms - let the loop run for ms (an expiry is what is being waited for, not readiness). */
static void wait_ms(struct fixture *fx, uint64_t ms)
{
	uv_timer_t t;
	int fired = 0;

	uv_timer_init(&fx->loop, &t);
	t.data = &fired;
	uv_timer_start(&t, on_wait_timer, ms, 0);
	while (!fired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* An entry never outlives the TTL of the answer that authorised it (shortttl.dane.test: 2 s), even when the
 * RRset is the same afterwards. */
static void test_ttl_bound(void **state)
{
	struct fixture *fx = *state;
	uint64_t t0 = uv_hrtime(), elapsed_ms;

	expect(fx, "shortttl.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", NULL);
	if (uv_hrtime() - t0 < 1500000000ull)   /* a loaded machine may already be past the TTL */
		expect(fx, "shortttl.dane.test", g.ticket_port, POLICY_DANE, 1, 1, "dane", NULL);
	elapsed_ms = (uv_hrtime() - t0) / 1000000;
	if (elapsed_ms < 2100)
		wait_ms(fx, 2100 - elapsed_ms);
	expect(fx, "shortttl.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", NULL);
	assert_true(stats(fx).expired + stats(fx).stale >= 1);
}

/* Resumption off (runtime option sessions = -1): nothing is offered or stored. */
static void test_disabled(void **state)
{
	struct fixture *fx = *state;
	struct session_cache *keep = fx->rt.env.sessions;

	fx->rt.env.sessions = NULL;
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", NULL);
	expect(fx, "www.dane.test", g.ticket_port, POLICY_DANE, 1, 0, "dane", NULL);
	fx->rt.env.sessions = keep;
	assert_int_equal(stats(fx).stored, 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tls13_ticket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls12, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls13_stateful, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_never_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pkix_keyed_by_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tlsa_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ttl_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
	};

	if (argc < 5 || load_env(argv[1]) < 0) {
		fprintf(stderr, "usage: test_resume ENVFILE TICKET_PORT ID_PORT MUTATE [TEST]\n");
		return 2;
	}
	g.ticket_port = (unsigned)strtoul(argv[2], NULL, 10);
	g.id_port = (unsigned)strtoul(argv[3], NULL, 10);
	g.mutate = argv[4];
	if (argc > 5)
		cmocka_set_test_filter(argv[5]);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

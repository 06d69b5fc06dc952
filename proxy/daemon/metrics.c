/*
 * metrics.c - shared counters and their Prometheus text exposition (see metrics.h).
 */
#include "metrics.h"
#include "proxy_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Histogram bucket bounds, in milliseconds (rendered in seconds). */
static const double bucket_ms[METRICS_N_BUCKETS] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

/* Label values of the verification results and the DNSSEC outcomes: stable, snake_case, listed in the README. */
static const char *const verification_names[METRICS_N_VERIFICATIONS] = {
	"dane_ta", "dane_ee", "pkix_ta", "pkix_ee", "pkix_fallback", "encrypt_only", "passthrough", "refused"};
static const char *const outcome_names[METRICS_N_OUTCOMES] = {
	"secure", "secure_unusable", "secure_absent", "insecure", "bogus", "indeterminate", "timeout", "failure",
	"no_host"};

struct metrics_shm *metrics_shm_new(void)
{
	void *p = mmap(NULL, sizeof(struct metrics_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;   /* anonymous mappings start zeroed */
}

void metrics_shm_free(struct metrics_shm *m)
{
	if (m != NULL)
		munmap(m, sizeof(*m));
}

void metrics_add(uint64_t *counter, uint64_t n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

static uint64_t load(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

void metrics_observe(struct metrics_histogram *h, double ms)
{
	size_t i;

	for (i = 0; i < METRICS_N_BUCKETS && ms > bucket_ms[i]; i++)
		;
	if (i < METRICS_N_BUCKETS)
		metrics_add(&h->buckets[i], 1);
	metrics_add(&h->count, 1);
	metrics_add(&h->sum_us, ms > 0 ? (uint64_t)(ms * 1000.0) : 0);
}

int metrics_open_try(struct metrics_shm *m, struct metrics_slot *s, unsigned max)
{
	if (__atomic_add_fetch(&m->open_total, 1, __ATOMIC_RELAXED) > (int64_t)max) {
		__atomic_sub_fetch(&m->open_total, 1, __ATOMIC_RELAXED);
		return -1;
	}
	__atomic_add_fetch(&s->open, 1, __ATOMIC_RELAXED);
	return 0;
}

void metrics_open_release(struct metrics_shm *m, struct metrics_slot *s)
{
	__atomic_sub_fetch(&m->open_total, 1, __ATOMIC_RELAXED);
	__atomic_sub_fetch(&s->open, 1, __ATOMIC_RELAXED);
}

int metrics_slot_take(struct metrics_shm *m)
{
	int i;

	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		if (!m->slot_used[i]) {
			m->slot_used[i] = 1;
			memset(&m->slots[i], 0, sizeof(m->slots[i]));
			return i;
		}
	}
	return -1;
}

/* add_slot - to += from, counter by counter (the open gauge excepted). */
static void add_slot(struct metrics_slot *to, const struct metrics_slot *from)
{
	const uint64_t *f = (const uint64_t *)(const void *)from;
	uint64_t *t = (uint64_t *)(void *)to;
	size_t i, n = sizeof(*from) / sizeof(uint64_t), open_at = offsetof(struct metrics_slot, open) / sizeof(uint64_t);

	for (i = 0; i < n; i++)
		if (i != open_at)
			t[i] += load(&f[i]);
}

void metrics_slot_retire(struct metrics_shm *m, int slot)
{
	struct metrics_slot *s = &m->slots[slot];

	/* A worker that died took its connections with it. */
	__atomic_sub_fetch(&m->open_total, __atomic_load_n(&s->open, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	add_slot(&m->retired, s);
	memset(s, 0, sizeof(*s));
	m->slot_used[slot] = 0;
}

/* ---------- rendering ---------- */

struct out {
	char *buf;
	size_t len;
	size_t cap;
	int failed;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		if (o->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap *= 2;
		if ((o->buf = realloc(o->buf, o->cap)) == NULL)
			o->failed = 1;
	}
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(struct out *o, const char *name, const char *help, const struct metrics_histogram *h)
{
	uint64_t cum = 0;
	size_t i;

	head(o, name, "histogram", help);
	for (i = 0; i < METRICS_N_BUCKETS; i++) {
		cum += h->buckets[i];
		put(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_ms[i] / 1000.0, (unsigned long long)cum);
	}
	put(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)h->count, name,
	    (double)h->sum_us / 1e6, name, (unsigned long long)h->count);
}

size_t metrics_render(const struct metrics_shm *m, const char *version, const char *wolfssl, char **res)
{
	struct out o = {malloc(16384), 0, 16384, 0};
	struct metrics_slot sum;
	int64_t open = 0;
	size_t i;

	*res = NULL;
	if (o.buf == NULL)
		return 0;
	memset(&sum, 0, sizeof(sum));
	add_slot(&sum, &m->retired);
	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		if (!m->slot_used[i])
			continue;
		add_slot(&sum, &m->slots[i]);
		open += __atomic_load_n(&m->slots[i].open, __ATOMIC_RELAXED);
	}
	head(&o, "daneproxy_build_info", "gauge", "Version of daneproxy and of the wolfSSL it runs on.");
	put(&o, "daneproxy_build_info{version=\"%s\",wolfssl=\"%s\"} 1\n", version, wolfssl);
	head(&o, "daneproxy_connections_total", "counter", "Client connections accepted, by listener kind.");
	put(&o, "daneproxy_connections_total{listener=\"http\"} %llu\n", (unsigned long long)sum.connections[0]);
	put(&o, "daneproxy_connections_total{listener=\"route\"} %llu\n", (unsigned long long)sum.connections[1]);
	put(&o, "daneproxy_connections_total{listener=\"smtp\"} %llu\n", (unsigned long long)sum.connections[2]);
	head(&o, "daneproxy_connections_open", "gauge", "Client connections open now, over all workers.");
	put(&o, "daneproxy_connections_open %lld\n", (long long)open);
	head(&o, "daneproxy_refusals_total", "counter",
	     "Requests and connections refused, by RFC 9209 error token (the Proxy-Status error).");
	for (i = 0; i < proxy_status_count() && i < METRICS_MAX_TOKENS; i++) {
		uint64_t n = sum.refusals[i];
		if (strcmp(proxy_status_at(i)->token, "connection_limit_reached") == 0)
			n += load(&m->refused_at_accept[0]);
		if (strcmp(proxy_status_at(i)->token, "http_request_denied") == 0)
			n += load(&m->refused_at_accept[1]);
		put(&o, "daneproxy_refusals_total{error=\"%s\"} %llu\n", proxy_status_at(i)->token, (unsigned long long)n);
	}
	head(&o, "daneproxy_dnssec_outcomes_total", "counter", "DNSSEC outcomes of the origin lookups.");
	for (i = 0; i < METRICS_N_OUTCOMES; i++)
		put(&o, "daneproxy_dnssec_outcomes_total{outcome=\"%s\"} %llu\n", outcome_names[i],
		    (unsigned long long)sum.dnssec[i]);
	head(&o, "daneproxy_verifications_total", "counter",
	     "Origin authentications: which TLSA usage authenticated, PKIX fallback, encrypt-only, passthrough, refused.");
	for (i = 0; i < METRICS_N_VERIFICATIONS; i++)
		put(&o, "daneproxy_verifications_total{result=\"%s\"} %llu\n", verification_names[i],
		    (unsigned long long)sum.verifications[i]);
	histogram(&o, "daneproxy_dns_lookup_duration_seconds", "Time from the start of an origin lookup to its result.",
		  &sum.dns);
	histogram(&o, "daneproxy_upstream_handshake_duration_seconds",
		  "Time of the TLS handshake with the origin, verification included.", &sum.handshake);
	head(&o, "daneproxy_upstream_handshakes_total", "counter",
	     "TLS handshakes with origins, by whether they resumed a session (true) "
	     "or were full ones with the certificate verified (false).");
	put(&o, "daneproxy_upstream_handshakes_total{resumed=\"false\"} %llu\n",
	    (unsigned long long)sum.upstream_handshakes[0]);
	put(&o, "daneproxy_upstream_handshakes_total{resumed=\"true\"} %llu\n",
	    (unsigned long long)sum.upstream_handshakes[1]);
	head(&o, "daneproxy_tlsa_cache_lookups_total", "counter",
	     "Origin lookups by how the resolver cache served them: hit, miss (queries sent), coalesced.");
	put(&o, "daneproxy_tlsa_cache_lookups_total{result=\"hit\"} %llu\n", (unsigned long long)sum.tlsa_cache[0]);
	put(&o, "daneproxy_tlsa_cache_lookups_total{result=\"miss\"} %llu\n", (unsigned long long)sum.tlsa_cache[1]);
	put(&o, "daneproxy_tlsa_cache_lookups_total{result=\"coalesced\"} %llu\n", (unsigned long long)sum.tlsa_cache[2]);
	head(&o, "daneproxy_minted_leaves_total", "counter", "Leaves for CONNECT termination: from the cache, or minted.");
	put(&o, "daneproxy_minted_leaves_total{result=\"cached\"} %llu\n", (unsigned long long)sum.minted[0]);
	put(&o, "daneproxy_minted_leaves_total{result=\"minted\"} %llu\n", (unsigned long long)sum.minted[1]);
	head(&o, "daneproxy_bytes_total", "counter", "Payload bytes relayed: up (client to origin), down.");
	put(&o, "daneproxy_bytes_total{direction=\"up\"} %llu\n", (unsigned long long)sum.bytes[0]);
	put(&o, "daneproxy_bytes_total{direction=\"down\"} %llu\n", (unsigned long long)sum.bytes[1]);
	head(&o, "daneproxy_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
	put(&o, "daneproxy_config_reloads_total{result=\"success\"} %llu\n", (unsigned long long)load(&m->reloads[0]));
	put(&o, "daneproxy_config_reloads_total{result=\"failure\"} %llu\n", (unsigned long long)load(&m->reloads[1]));
	head(&o, "daneproxy_worker_restarts_total", "counter", "Workers that died and were started again.");
	put(&o, "daneproxy_worker_restarts_total %llu\n", (unsigned long long)load(&m->worker_restarts));
	if (o.failed) {
		free(o.buf);
		return 0;
	}
	*res = o.buf;
	return o.len;
}

/*
 * resolver.c - DNSSEC-validated A/AAAA/TLSA and MX lookups with getdns on libuv, a TTL-bounded LRU cache, and
 * coalescing of concurrent lookups.
 *
 * One cache entry per (host, port, kind), the kinds being the four entry points: addresses and TLSA
 * (resolver_lookup), TLSA only, addresses only, MX. A pending entry owns up to four getdns transactions (A, AAAA,
 * TLSA at the original name, TLSA at the CNAME target; or the one MX query) and a list of waiting queries; when it
 * finishes, its waiters move to the ready list and are called back from an idle handle, never from inside getdns
 * or resolver_lookup().
 * Outcomes follow shared/DANE.md sections 4-5: bogus never becomes "no TLSA", insecure address records end
 * the lookup without TLSA, a secure CNAME chain looks for TLSA at the target first.
 *
 * Who judges DNSSEC (enum resolver_validation): in self mode getdns validates each answer to the trust anchor;
 * in resolver mode the upstream (a validating resolver on loopback) does, and an answer is secure when its AD
 * bit is set, bogus or failed when it is a SERVFAIL, insecure otherwise. Every later step is the same.
 * Both modes ask over TCP, pipelined on one connection (context_create says why getdns 1.6.0 gets no UDP).
 *
 * Prefetch: a cache hit in the last 10% of an entry's TTL starts a refresh entry (not in the hash, linked from
 * the entry it refreshes). A successful refresh replaces the old entry; a failed one is dropped while the old
 * entry is still valid (the old entry is never served past its TTL: fail closed). Lookups arriving after the
 * old entry expired join the refresh in flight.
 */
#include "resolver.h"
#include "getdns_uv.h"
#include "fileio.h"
#include "text.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char resolver_err_bogus[] = "DNSSEC validation failed (bogus)";
const char resolver_err_indeterminate[] = "DNSSEC validation indeterminate";
const char resolver_err_timeout[] = "DNS lookup timed out";
const char resolver_err_failure[] = "DNS lookup failed";
const char resolver_err_no_host[] = "host has no address";
const char resolver_err_no_domain[] = "no such domain";
const char resolver_err_cancelled[] = "lookup cancelled";

#define RESOLVER_MAX_ANCHOR_FILE (1u << 20)
#define DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key"
#define HASH_BUCKETS 4096

/* DNSSEC EDE info-codes (RFC 8914 section 4): a SERVFAIL carrying one is a validation failure. */
#define EDE_IS_DNSSEC(c) ((c) == 1 || (c) == 2 || ((c) >= 5 && (c) <= 12))

enum txn_kind { TXN_A, TXN_AAAA, TXN_TLSA, TXN_TLSA_TARGET, TXN_MX, TXN_COUNT };

/* The RR type each transaction asks for. */
static const uint16_t txn_rrtype[TXN_COUNT] = {GETDNS_RRTYPE_A, GETDNS_RRTYPE_AAAA, GETDNS_RRTYPE_TLSA,
					       GETDNS_RRTYPE_TLSA, GETDNS_RRTYPE_MX};

/* What an entry looks up: part of the cache key. */
enum entry_kind {
	KIND_FULL,    /* resolver_lookup: A, AAAA, then TLSA */
	KIND_TLSA,    /* resolver_lookup_tlsa */
	KIND_ADDRS,   /* resolver_lookup_addrs */
	KIND_MX,      /* resolver_lookup_mx */
};

/* What one finished DNS query told us, reduced to what the decisions need. */
struct txn {
	struct entry *e;
	enum txn_kind kind;
	int started;
	int active;                 /* waiting for getdns */
	int done;
	getdns_transaction_t id;
	char qname[RESOLVER_MAX_NAME];
	/* outcome of the query */
	int timeout;
	int failed;                 /* no usable response (error, SERVFAIL, REFUSED) */
	uint32_t dnssec_status;     /* GETDNS_DNSSEC_* of the reply (resolver mode: from AD/SERVFAIL), 0 if none */
	uint32_t rcode;
	int answered;               /* a DNS message came back (rcode is real) */
	unsigned long stalled_at_start;   /* the adapter's stalled_connects when the query left */
	int ede;                    /* EDE info-code of the answer (or what self-validation can tell), -1 none */
	uint32_t ttl;               /* min TTL of the used answer RRs, or the negative TTL */
	char canonical[RESOLVER_MAX_NAME];
	size_t n_addrs;
	struct sockaddr_storage addrs[RESOLVER_MAX_ADDRS];
	size_t n_tlsa;
	struct resolver_tlsa tlsa[RESOLVER_MAX_TLSA];
	uint8_t *tlsa_blob;
	struct resolver_mx *mx;     /* TXN_MX: RESOLVER_MAX_MX slots, allocated with the first record */
	size_t n_mx;
	size_t mx_dropped;          /* records beyond RESOLVER_MAX_MX (the worst preferences) */
};

enum entry_state { ENTRY_PENDING, ENTRY_DONE };

struct entry {
	struct resolver *r;
	enum entry_state state;
	char host[RESOLVER_MAX_NAME];
	uint16_t port;
	enum entry_kind kind;                   /* part of the key */
	uint32_t hash;
	struct entry *hash_next;
	struct entry *lru_prev, *lru_next;      /* done entries, most recent first */
	struct entry *pend_prev, *pend_next;    /* pending entries, oldest first */
	uint64_t deadline_ms;
	uint64_t expires_ms;
	uint64_t prefetch_ms;                   /* hits from here on start a refresh (the last 10% of the TTL) */
	struct entry *refresh;                  /* the refresh in flight for this entry, NULL */
	struct entry *refresh_of;               /* this is a refresh: the entry it replaces (NULL once detached) */
	int refreshed;                          /* a refresh was started: one per entry */
	unsigned refs;                          /* queries waiting on or holding this entry */
	struct resolver_query *waiters;
	struct txn txn[TXN_COUNT];
	int addrs_evaluated;
	struct resolver_result result;
	uint8_t *result_blob;                   /* TLSA data the result points into */
	struct resolver_mx *result_mx;          /* MX records the result points to */
};

struct resolver_query {
	struct resolver *r;
	struct entry *e;
	resolver_cb cb;
	void *arg;
	int from_cache;
	int on_ready;
	struct resolver_query *prev, *next;
};

struct resolver {
	uv_loop_t *loop;
	getdns_context *ctx;            /* NULL when a rebuild failed: lookups fail until the next one works */
	getdns_list *upstreams;         /* NULL: /etc/resolv.conf */
	getdns_list *anchors;
	getdns_dict *extensions;
	int needs_rebuild;              /* a lookup timed out or failed: getdns may be wedged (see rebuild) */
	uint64_t last_rebuild_ms;
	struct getdns_uv ext;
	struct resolver_options opts;
	uv_idle_t deliver;
	uv_timer_t deadline;
	int closing_handles;
	int in_callback;                        /* inside a getdns callback: context must not be destroyed */
	struct entry *buckets[HASH_BUCKETS];
	struct entry *lru_head, *lru_tail;
	struct entry *pend_head, *pend_tail;
	struct resolver_query *ready_head, *ready_tail;
	size_t n_entries;
	struct resolver_stats stats;
};

/* ---------- small helpers ---------- */

const char *resolver_outcome_name(enum resolver_outcome o)
{
	switch (o) {
	case RESOLVER_SECURE: return "secure";
	case RESOLVER_SECURE_UNUSABLE: return "secure, no usable records";
	case RESOLVER_SECURE_ABSENT: return "secure absence";
	case RESOLVER_INSECURE: return "insecure";
	case RESOLVER_BOGUS: return "bogus";
	case RESOLVER_INDETERMINATE: return "indeterminate";
	case RESOLVER_TIMEOUT: return "timeout";
	case RESOLVER_FAILURE: return "failure";
	case RESOLVER_NO_HOST: return "no such host";
	}
	return "unknown";
}

int resolver_validation_parse(const char *s, enum resolver_validation *out)
{
	if (strcmp(s, "self") == 0)
		*out = RESOLVER_VALIDATE_SELF;
	else if (strcmp(s, "resolver") == 0)
		*out = RESOLVER_VALIDATE_RESOLVER;
	else
		return -1;
	return 0;
}

const char *resolver_validation_name(enum resolver_validation v)
{
	return v == RESOLVER_VALIDATE_RESOLVER ? "resolver" : "self";
}

int resolver_upstream_loopback(const char *spec)
{
	static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	struct net_addr a;

	if (resolver_addr_parse(spec, 53, &a) < 0)
		return 0;
	net_addr_unmap(&a.family, a.addr);
	if (a.family == AF_INET)
		return a.addr[0] == 127;
	return memcmp(a.addr, v6_loopback, 16) == 0;
}

const char *resolver_ede_name(int ede)
{
	/* RFC 8914 section 4 and the IANA registry. */
	static const char *const names[] = {
		"Other Error", "Unsupported DNSKEY Algorithm", "Unsupported DS Digest Type", "Stale Answer",
		"Forged Answer", "DNSSEC Indeterminate", "DNSSEC Bogus", "Signature Expired",
		"Signature Not Yet Valid", "DNSKEY Missing", "RRSIGs Missing", "No Zone Key Bit Set", "NSEC Missing",
		"Cached Error", "Not Ready", "Blocked", "Censored", "Filtered", "Prohibited", "Stale NXDomain Answer",
		"Not Authoritative", "Not Supported", "No Reachable Authority", "Network Error", "Invalid Data",
	};

	if (ede < 0 || (size_t)ede >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[ede];
}

int resolver_valid_hostname(const char *host)
{
	return hostname_valid(host);
}

static uint64_t now_ms(const struct resolver *r)
{
	return uv_now(r->loop);
}

/* normalise_name - lowercase copy without the trailing dot. */
static void normalise_name(const char *in, char *out, size_t outlen)
{
	size_t i, n = strlen(in);

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n >= outlen)
		n = outlen - 1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '\0';
}

static uint32_t hash_key(const char *host, uint16_t port, enum entry_kind kind)
{
	uint32_t h = 2166136261u ^ port ^ ((uint32_t)kind << 16);

	for (; *host; host++)
		h = (h ^ (uint8_t)*host) * 16777619u;
	return h;
}

/* default_usable - the syntactic part of DANE.md section 1, used when the caller gives no engine. */
static int default_usable(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, void *arg)
{
	(void)data;
	(void)arg;
	if (usage > 3 || selector > 1 || mtype > 2 || len == 0)
		return 0;
	return !(mtype == 1 && len != 32) && !(mtype == 2 && len != 64);
}

/* parse_upstream - "IP", "IP@PORT" or "[IPv6]@PORT" (text.h) into a getdns upstream dict. */
static getdns_dict *parse_upstream(const char *spec, char *err, size_t errlen)
{
	struct net_addr a;
	getdns_bindata data;
	getdns_dict *d;

	if (resolver_addr_parse(spec, 53, &a) < 0) {
		snprintf(err, errlen, "upstream \"%s\" is not IP, IP@PORT or [IPv6]@PORT", spec);
		return NULL;
	}
	data.size = a.family == AF_INET6 ? 16 : 4;
	data.data = a.addr;
	d = getdns_dict_create();
	if (d == NULL || getdns_dict_util_set_string(d, "address_type", a.family == AF_INET6 ? "IPv6" : "IPv4") ||
	    getdns_dict_set_bindata(d, "address_data", &data) || getdns_dict_set_int(d, "port", a.port)) {
		getdns_dict_destroy(d);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	return d;
}

/* ---------- construction ---------- */

static void handle_closed(uv_handle_t *h)
{
	struct resolver *r = h->data;

	if (--r->closing_handles == 0)
		free(r);
}

/*
 * context_create - the resolver's getdns context from its settings, on r->ext's loop; -1 with err.
 *
 * Transport: TCP only (one connection per upstream, queries pipelined), in both validation modes, unless opts.udp
 * asks for UDP first with getdns's own fallback to TCP. getdns 1.6.0 cannot be given UDP safely, even alone in
 * the transport list: on a truncated answer stub_udp_read_cb reads the transport one past the end of the list (a
 * slot never initialised), falls back to TCP when the heap happens to hold GETDNS_TRANSPORT_TCP there, and makes
 * the request's descriptor the upstream's shared connection; cancelling that request closes the connection under
 * the upstream's scheduled event, and libuv aborts the process (epoll_ctl: EBADF); destroying the context closes
 * it a second time (whatever then holds that descriptor number).
 * test_resolver known_bugs test_bug_udp_only_falls_back_to_tcp shows it; a lost UDP answer during validation can
 * also double-free (TESTBED.md). Over TCP neither path is reached; the upstreams are on loopback in resolver mode,
 * where a connection costs a round trip once per idle period.
 */
static int context_create(struct resolver *r, char *err, size_t errlen)
{
	getdns_transport_list_t udp_tcp[2] = {GETDNS_TRANSPORT_UDP, GETDNS_TRANSPORT_TCP};
	getdns_context *ctx = NULL;

	/* Without configured upstreams getdns reads /etc/resolv.conf (set_from_os = 1). */
	if (getdns_context_create(&ctx, r->upstreams == NULL) != GETDNS_RETURN_GOOD) {
		snprintf(err, errlen, "cannot create the getdns context");
		return -1;
	}
	if (getdns_context_set_resolution_type(ctx, GETDNS_RESOLUTION_STUB) != GETDNS_RETURN_GOOD)
		goto fail;
	if (r->upstreams != NULL && getdns_context_set_upstream_recursive_servers(ctx, r->upstreams) != GETDNS_RETURN_GOOD) {
		snprintf(err, errlen, "getdns rejected the upstream list");
		getdns_context_destroy(ctx);
		return -1;
	}
	if (r->anchors != NULL && getdns_context_set_dnssec_trust_anchors(ctx, r->anchors) != GETDNS_RETURN_GOOD) {
		snprintf(err, errlen, "getdns rejected the trust anchor");
		getdns_context_destroy(ctx);
		return -1;
	}
	/* Never fetch or refresh anchors over the network: they are configuration. */
	getdns_context_set_trust_anchors_verify_CA(ctx, "");
	if (getdns_context_set_timeout(ctx, r->opts.timeout_ms) != GETDNS_RETURN_GOOD)
		goto fail;
	/* Resolver mode: ask for DNSSEC records and the AD bit (RFC 3225, RFC 6840 section 5.7). */
	if (r->opts.validation == RESOLVER_VALIDATE_RESOLVER && getdns_context_set_edns_do_bit(ctx, 1) != GETDNS_RETURN_GOOD)
		goto fail;
	if (getdns_context_set_dns_transport_list(ctx, r->opts.udp ? 2 : 1, r->opts.udp ? udp_tcp : udp_tcp + 1) !=
	    GETDNS_RETURN_GOOD)
		goto fail;
	getdns_context_set_idle_timeout(ctx, 10000);
	if (getdns_uv_attach(&r->ext, ctx, r->loop) != GETDNS_RETURN_GOOD)
		goto fail;
	r->ctx = ctx;
	return 0;
fail:
	snprintf(err, errlen, "getdns configuration failed");
	getdns_context_destroy(ctx);
	return -1;
}

/* context_destroy - getdns may still call back (harmlessly: every transaction is inactive). */
static void context_destroy(struct resolver *r)
{
	if (r->ctx != NULL)
		getdns_context_destroy(r->ctx);
	r->ctx = NULL;
}

int resolver_new(uv_loop_t *loop, const struct resolver_options *opts, struct resolver **out, char *err,
		 size_t errlen)
{
	struct resolver *r;
	const char *anchor_path;
	FILE *f = NULL;
	char *anchor_text = NULL, why[300];
	size_t i, n_anchors = 0, anchor_len = 0;

	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->loop = loop;
	r->opts = *opts;
	if (r->opts.timeout_ms == 0)
		r->opts.timeout_ms = 5000;
	if (r->opts.cache_max == 0)
		r->opts.cache_max = 10000;
	if (r->opts.ttl_max == 0)
		r->opts.ttl_max = 3600;
	if (r->opts.ttl_min == 0 && !r->opts.ttls_literal)
		r->opts.ttl_min = 5;
	/* The maximum wins: a cache capped at 1 s must not hold answers for the default minimum of 5 s. */
	if (r->opts.ttl_min > r->opts.ttl_max)
		r->opts.ttl_min = r->opts.ttl_max;
	if (r->opts.failure_ttl == 0 && !r->opts.ttls_literal)
		r->opts.failure_ttl = 2;
	if (r->opts.usable == NULL)
		r->opts.usable = default_usable;

	if (r->opts.validation == RESOLVER_VALIDATE_RESOLVER) {
		/* The AD bit is only as trustworthy as the path it came over: loopback only, never resolv.conf. */
		if (opts->n_upstreams == 0) {
			snprintf(err, errlen, "validation = resolver needs upstream resolvers on loopback "
					      "(not /etc/resolv.conf)");
			goto fail;
		}
		for (i = 0; i < opts->n_upstreams && i < RESOLVER_MAX_UPSTREAMS; i++) {
			if (!resolver_upstream_loopback(opts->upstreams[i])) {
				snprintf(err, errlen, "validation = resolver trusts the AD bit only from loopback: "
						      "upstream \"%s\" is not 127.0.0.0/8 or ::1", opts->upstreams[i]);
				goto fail;
			}
		}
	}
	/* Parsed once, kept for the life of the resolver: the context is rebuilt from them after failures. */
	if (opts->n_upstreams > 0) {
		r->upstreams = getdns_list_create();
		if (r->upstreams == NULL)
			goto getdns_fail;
		for (i = 0; i < opts->n_upstreams && i < RESOLVER_MAX_UPSTREAMS; i++) {
			getdns_dict *d = parse_upstream(opts->upstreams[i], err, errlen);
			if (d == NULL)
				goto fail;
			if (getdns_list_set_dict(r->upstreams, i, d) != GETDNS_RETURN_GOOD) {
				getdns_dict_destroy(d);
				goto getdns_fail;
			}
			getdns_dict_destroy(d);
		}
	}
	r->extensions = getdns_dict_create();
	if (r->extensions == NULL)
		goto getdns_fail;
	if (r->opts.validation == RESOLVER_VALIDATE_RESOLVER)
		goto anchors_done;   /* the resolver holds the anchors; getdns validates nothing */
	anchor_path = opts->trust_anchor_file ? opts->trust_anchor_file : DEFAULT_TRUST_ANCHOR;
	/* Read bounded and type-checked first (a FIFO or /dev/zero must not hang start-up), then parse from memory. */
	if (file_read_all(anchor_path, RESOLVER_MAX_ANCHOR_FILE, &anchor_text, &anchor_len, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "trust anchor %s", why);
		goto fail;
	}
	f = fmemopen(anchor_text, anchor_len, "r");
	if (f == NULL) {
		snprintf(err, errlen, "trust anchor %s: %s", anchor_path, strerror(errno));
		goto fail;
	}
	if (getdns_fp2rr_list(f, &r->anchors, NULL, 3600) != GETDNS_RETURN_GOOD || r->anchors == NULL ||
	    getdns_list_get_length(r->anchors, &n_anchors) != GETDNS_RETURN_GOOD || n_anchors == 0) {
		snprintf(err, errlen, "trust anchor %s: no DS or DNSKEY record could be read", anchor_path);
		goto fail;
	}
	fclose(f);
	f = NULL;
	free(anchor_text);
	anchor_text = NULL;
	if (getdns_dict_set_int(r->extensions, "dnssec_return_all_statuses", GETDNS_EXTENSION_TRUE) != GETDNS_RETURN_GOOD)
		goto getdns_fail;
anchors_done:
	if (context_create(r, err, errlen) < 0)
		goto fail;
	uv_idle_init(loop, &r->deliver);
	uv_timer_init(loop, &r->deadline);
	r->deliver.data = r->deadline.data = r;
	*out = r;
	return 0;
getdns_fail:
	snprintf(err, errlen, "getdns configuration failed");
fail:
	if (f != NULL)
		fclose(f);
	free(anchor_text);
	getdns_list_destroy(r->upstreams);
	getdns_list_destroy(r->anchors);
	getdns_dict_destroy(r->extensions);
	free(r);
	return -1;
}

/* ---------- cache structure ---------- */

static void lru_unlink(struct resolver *r, struct entry *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else if (r->lru_head == e)
		r->lru_head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else if (r->lru_tail == e)
		r->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(struct resolver *r, struct entry *e)
{
	e->lru_prev = NULL;
	e->lru_next = r->lru_head;
	if (r->lru_head)
		r->lru_head->lru_prev = e;
	r->lru_head = e;
	if (r->lru_tail == NULL)
		r->lru_tail = e;
}

static void pend_unlink(struct resolver *r, struct entry *e)
{
	if (e->pend_prev)
		e->pend_prev->pend_next = e->pend_next;
	else if (r->pend_head == e)
		r->pend_head = e->pend_next;
	if (e->pend_next)
		e->pend_next->pend_prev = e->pend_prev;
	else if (r->pend_tail == e)
		r->pend_tail = e->pend_prev;
	e->pend_prev = e->pend_next = NULL;
}

static void txn_release(struct txn *t)
{
	free(t->tlsa_blob);
	t->tlsa_blob = NULL;
	free(t->mx);
	t->mx = NULL;
}

/* entry_free - unlink from the hash and free; the entry has no refs and no active transaction. */
static void hash_insert(struct resolver *r, struct entry *e);

static void entry_free(struct resolver *r, struct entry *e)
{
	struct entry **pp = &r->buckets[e->hash % HASH_BUCKETS];
	int i;

	int hashed;

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hash_next;
	hashed = *pp == e;
	if (hashed)
		*pp = e->hash_next;
	/* A refresh and the entry it refreshes point at each other: whichever goes first unlinks. An entry evicted
	 * while its refresh is in flight leaves the refresh in its place, so later lookups join it. */
	if (e->refresh != NULL) {
		e->refresh->refresh_of = NULL;
		if (hashed)
			hash_insert(r, e->refresh);
	}
	if (e->refresh_of != NULL)
		e->refresh_of->refresh = NULL;
	lru_unlink(r, e);
	pend_unlink(r, e);
	for (i = 0; i < TXN_COUNT; i++)
		txn_release(&e->txn[i]);
	free(e->result_blob);
	free(e->result_mx);
	free(e);
	r->n_entries--;
}

/* cache_trim - drop expired and least recently used finished entries until the bound holds. */
static void cache_trim(struct resolver *r, size_t room)
{
	struct entry *e = r->lru_tail, *prev;
	uint64_t now = now_ms(r);

	for (; e != NULL; e = prev) {
		prev = e->lru_prev;
		if (e->refs != 0)
			continue;
		if (e->expires_ms <= now) {
			entry_free(r, e);
		} else if (r->n_entries + room > r->opts.cache_max) {
			entry_free(r, e);
			r->stats.evictions++;
		}
	}
}

static struct entry *cache_find(struct resolver *r, const char *host, uint16_t port, enum entry_kind kind,
			       uint32_t hash)
{
	struct entry *e;

	for (e = r->buckets[hash % HASH_BUCKETS]; e != NULL; e = e->hash_next)
		if (e->hash == hash && e->port == port && e->kind == kind && strcmp(e->host, host) == 0)
			return e;
	return NULL;
}

/* hash_unlink - take e out of its bucket (it stays in the LRU list until freed). */
static void hash_unlink(struct resolver *r, struct entry *e)
{
	struct entry **pp = &r->buckets[e->hash % HASH_BUCKETS];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->hash_next;
	if (*pp == e)
		*pp = e->hash_next;
	e->hash_next = NULL;
}

static void hash_insert(struct resolver *r, struct entry *e)
{
	e->hash_next = r->buckets[e->hash % HASH_BUCKETS];
	r->buckets[e->hash % HASH_BUCKETS] = e;
}

/* entry_retire - e leaves the cache: freed now, or (still referenced by a delivery) once expired and unused. */
static void entry_retire(struct resolver *r, struct entry *e)
{
	if (e->refs == 0) {
		entry_free(r, e);
		return;
	}
	hash_unlink(r, e);
	e->expires_ms = 0;
}

/* ---------- delivery ---------- */

static void ready_push(struct resolver *r, struct resolver_query *q)
{
	q->on_ready = 1;
	q->next = NULL;
	q->prev = r->ready_tail;
	if (r->ready_tail)
		r->ready_tail->next = q;
	else
		r->ready_head = q;
	r->ready_tail = q;
}

static void query_unlink(struct resolver_query *q)
{
	struct resolver *r = q->r;

	if (q->on_ready) {
		if (q->prev)
			q->prev->next = q->next;
		else
			r->ready_head = q->next;
		if (q->next)
			q->next->prev = q->prev;
		else
			r->ready_tail = q->prev;
	} else {
		if (q->prev)
			q->prev->next = q->next;
		else
			q->e->waiters = q->next;
		if (q->next)
			q->next->prev = q->prev;
	}
	q->prev = q->next = NULL;
}

static void on_deliver(uv_idle_t *idle);
static void maybe_rebuild(struct resolver *r);

/* deliver_soon - make sure the idle handle runs. */
static void deliver_soon(struct resolver *r)
{
	if (r->ready_head != NULL && !uv_is_active((uv_handle_t *)&r->deliver))
		uv_idle_start(&r->deliver, on_deliver);
}

/* on_deliver - call back every ready query. A callback may cancel other queries or start new lookups. */
static void on_deliver(uv_idle_t *idle)
{
	struct resolver *r = idle->data;
	struct resolver_query *q;
	struct entry *e;

	uv_idle_stop(idle);
	while ((q = r->ready_head) != NULL) {
		query_unlink(q);
		e = q->e;
		e->result.from_cache = q->from_cache;
		e->result.ttl_left = e->expires_ms > now_ms(r) ? (uint32_t)((e->expires_ms - now_ms(r)) / 1000) : 0;
		q->cb(&e->result, q->arg);
		e->refs--;
		free(q);
	}
	cache_trim(r, 0);
	maybe_rebuild(r);
}

/* ---------- finishing a lookup ---------- */

static void txn_cancel(struct resolver *r, struct txn *t)
{
	if (!t->active)
		return;
	t->active = 0;
	if (r->ctx != NULL)
		getdns_cancel_callback(r->ctx, t->id);
}

/* entry_finish - freeze the result, cache it, wake the waiters. */
static void entry_finish(struct entry *e, uint32_t ttl)
{
	struct resolver *r = e->r;
	struct resolver_query *q;
	int i;

	if (e->state == ENTRY_DONE)
		return;
	for (i = 0; i < TXN_COUNT; i++)
		txn_cancel(r, &e->txn[i]);
	if (e->result.outcome == RESOLVER_TIMEOUT || e->result.outcome == RESOLVER_FAILURE)
		r->needs_rebuild = 1;
	if (e->result.outcome >= RESOLVER_BOGUS) {
		ttl = r->opts.failure_ttl;
	} else {
		if (ttl < r->opts.ttl_min)
			ttl = r->opts.ttl_min;
		if (ttl > r->opts.ttl_max)
			ttl = r->opts.ttl_max;
	}
	e->result.ttl = ttl;
	e->expires_ms = now_ms(r) + (uint64_t)ttl * 1000;
	/* unbound's prefetch rule: a hit in the last 10% of the TTL refreshes; failures simply expire. */
	e->prefetch_ms = e->result.outcome >= RESOLVER_BOGUS ? e->expires_ms : e->expires_ms - (uint64_t)ttl * 100;
	e->state = ENTRY_DONE;
	pend_unlink(r, e);
	lru_push_front(r, e);
	if (e->refresh_of != NULL) {
		struct entry *old = e->refresh_of;
		e->refresh_of = NULL;
		old->refresh = NULL;
		if (e->result.outcome >= RESOLVER_BOGUS && old->expires_ms > now_ms(r) && e->waiters == NULL) {
			/* Fail closed without failing early: the old answer serves out its own TTL, never longer. */
			entry_free(r, e);
			return;
		}
		entry_retire(r, old);
		hash_insert(r, e);
	}
	/* Waiters are kept newest first; call them back in the order they asked. */
	for (q = e->waiters; q != NULL && q->next != NULL; q = q->next)
		;
	while (q != NULL) {
		struct resolver_query *older = q->prev;
		query_unlink(q);
		ready_push(r, q);
		q = older;
	}
	deliver_soon(r);
}

/* entry_fail - finish with a failure outcome and an explanation. */
static void __attribute__((format(printf, 4, 5)))
entry_fail(struct entry *e, enum resolver_outcome o, const char *reason, const char *fmt, ...)
{
	va_list ap;

	e->result.outcome = o;
	e->result.reason = reason;
	va_start(ap, fmt);
	vsnprintf(e->result.detail, sizeof(e->result.detail), fmt, ap);
	va_end(ap);
	entry_finish(e, 0);
}

/* ---------- reading getdns answers ---------- */

/* dname_to_text - a wire-format name from getdns as lowercase text without the trailing dot. */
static int dname_to_text(const getdns_bindata *name, char *out, size_t outlen)
{
	char *fqdn = NULL;

	if (name == NULL || getdns_convert_dns_name_to_fqdn(name, &fqdn) != GETDNS_RETURN_GOOD || fqdn == NULL)
		return -1;
	normalise_name(fqdn, out, outlen);
	free(fqdn);
	return 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* negative_ttl - RFC 2308: the SOA TTL capped by its minimum field; 0 when no SOA is present. */
static uint32_t negative_ttl(getdns_dict *reply)
{
	getdns_list *auth;
	getdns_dict *rr;
	uint32_t type, ttl, minimum;
	size_t n = 0, i;

	if (getdns_dict_get_list(reply, "authority", &auth) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(auth, &n) != GETDNS_RETURN_GOOD)
		return 0;
	for (i = 0; i < n; i++) {
		if (getdns_list_get_dict(auth, i, &rr) == GETDNS_RETURN_GOOD &&
		    getdns_dict_get_int(rr, "type", &type) == GETDNS_RETURN_GOOD && type == GETDNS_RRTYPE_SOA &&
		    getdns_dict_get_int(rr, "ttl", &ttl) == GETDNS_RETURN_GOOD &&
		    getdns_dict_get_int(rr, "/rdata/minimum", &minimum) == GETDNS_RETURN_GOOD)
			return min_u32(ttl, minimum);
	}
	return 0;
}

/*
 * mx_add - one MX record into t (the exchange as lowercase text, "" for the root: the null MX of RFC 7505).
 * Beyond RESOLVER_MAX_MX records the worst preference gives way. -1 when the record is unreadable or memory is out.
 */
static int mx_add(struct txn *t, uint16_t preference, const getdns_bindata *exchange)
{
	struct resolver_mx *slot;
	size_t i, worst = 0;

	if (t->mx == NULL && (t->mx = calloc(RESOLVER_MAX_MX, sizeof(*t->mx))) == NULL)
		return -1;
	if (t->n_mx < RESOLVER_MAX_MX) {
		slot = &t->mx[t->n_mx];
	} else {
		for (i = 1; i < t->n_mx; i++)
			if (t->mx[i].preference > t->mx[worst].preference)
				worst = i;
		t->mx_dropped++;
		if (t->mx[worst].preference <= preference)
			return 0;
		slot = &t->mx[worst];
	}
	if (exchange->size == 1 && exchange->data[0] == 0)
		slot->host[0] = '\0';
	else if (dname_to_text(exchange, slot->host, sizeof(slot->host)) < 0)
		return -1;
	slot->preference = preference;
	if (slot == &t->mx[t->n_mx])
		t->n_mx++;
	return 0;
}

/* read_answer - collect the address, TLSA or MX RRs owned by owner from a reply's answer section. */
static void read_answer(struct txn *t, getdns_dict *reply, const char *owner)
{
	getdns_list *answer;
	getdns_dict *rr;
	getdns_bindata *bd, *name;
	uint32_t type, ttl, u, s, m;
	size_t n = 0, i, blob_used = 0, blob_cap = 0;
	char rr_owner[RESOLVER_MAX_NAME];
	int first = 1;

	if (getdns_dict_get_list(reply, "answer", &answer) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(answer, &n) != GETDNS_RETURN_GOOD)
		return;
	/* Size the TLSA blob once: the sum of the association data lengths. */
	for (i = 0; (t->kind == TXN_TLSA || t->kind == TXN_TLSA_TARGET) && i < n; i++)
		if (getdns_list_get_dict(answer, i, &rr) == GETDNS_RETURN_GOOD &&
		    getdns_dict_get_bindata(rr, "/rdata/certificate_association_data", &bd) == GETDNS_RETURN_GOOD)
			blob_cap += bd->size;
	if (blob_cap > 0) {
		t->tlsa_blob = malloc(blob_cap);
		if (t->tlsa_blob == NULL)
			return;
	}
	for (i = 0; i < n; i++) {
		if (getdns_list_get_dict(answer, i, &rr) != GETDNS_RETURN_GOOD ||
		    getdns_dict_get_int(rr, "type", &type) != GETDNS_RETURN_GOOD ||
		    getdns_dict_get_int(rr, "ttl", &ttl) != GETDNS_RETURN_GOOD ||
		    getdns_dict_get_bindata(rr, "name", &name) != GETDNS_RETURN_GOOD ||
		    dname_to_text(name, rr_owner, sizeof(rr_owner)) < 0)
			continue;
		/* Only the RRset for the name asked (after CNAME expansion): replayed signed data for other names is
		 * ignored. */
		if (strcmp(rr_owner, owner) != 0)
			continue;
		if ((type == GETDNS_RRTYPE_A && t->kind == TXN_A) || (type == GETDNS_RRTYPE_AAAA && t->kind == TXN_AAAA)) {
			struct sockaddr_storage *ss;
			int v6 = type == GETDNS_RRTYPE_AAAA;
			if (getdns_dict_get_bindata(rr, v6 ? "/rdata/ipv6_address" : "/rdata/ipv4_address", &bd) !=
				    GETDNS_RETURN_GOOD ||
			    bd->size != (v6 ? 16u : 4u) || t->n_addrs >= RESOLVER_MAX_ADDRS)
				continue;
			ss = &t->addrs[t->n_addrs++];
			memset(ss, 0, sizeof(*ss));
			if (v6) {
				struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
				sin6->sin6_family = AF_INET6;
				memcpy(&sin6->sin6_addr, bd->data, 16);
			} else {
				struct sockaddr_in *sin = (struct sockaddr_in *)ss;
				sin->sin_family = AF_INET;
				memcpy(&sin->sin_addr, bd->data, 4);
			}
		} else if (type == GETDNS_RRTYPE_TLSA && (t->kind == TXN_TLSA || t->kind == TXN_TLSA_TARGET)) {
			struct resolver_tlsa *rec;
			if (t->n_tlsa >= RESOLVER_MAX_TLSA ||
			    getdns_dict_get_int(rr, "/rdata/certificate_usage", &u) != GETDNS_RETURN_GOOD ||
			    getdns_dict_get_int(rr, "/rdata/selector", &s) != GETDNS_RETURN_GOOD ||
			    getdns_dict_get_int(rr, "/rdata/matching_type", &m) != GETDNS_RETURN_GOOD ||
			    getdns_dict_get_bindata(rr, "/rdata/certificate_association_data", &bd) != GETDNS_RETURN_GOOD ||
			    bd->size > 65535 || blob_used + bd->size > blob_cap)
				continue;
			rec = &t->tlsa[t->n_tlsa++];
			rec->usage = (uint8_t)u;
			rec->selector = (uint8_t)s;
			rec->mtype = (uint8_t)m;
			rec->len = (uint16_t)bd->size;
			if (bd->size > 0)
				memcpy(t->tlsa_blob + blob_used, bd->data, bd->size);
			rec->data = t->tlsa_blob + blob_used;
			blob_used += bd->size;
		} else if (type == GETDNS_RRTYPE_MX && t->kind == TXN_MX) {
			if (getdns_dict_get_int(rr, "/rdata/preference", &u) != GETDNS_RETURN_GOOD || u > 65535 ||
			    getdns_dict_get_bindata(rr, "/rdata/exchange", &bd) != GETDNS_RETURN_GOOD ||
			    mx_add(t, (uint16_t)u, bd) < 0)
				continue;
		} else {
			continue;
		}
		t->ttl = first ? ttl : min_u32(t->ttl, ttl);
		first = 0;
	}
}

/* reply_ede - the first Extended DNS Error (RFC 8914, EDNS option 15) in the OPT RR of a reply; -1 none. */
static int reply_ede(getdns_dict *reply)
{
	getdns_list *additional, *options;
	getdns_dict *rr, *opt;
	getdns_bindata *data;
	uint32_t type, code;
	size_t n = 0, m = 0, i, j;

	if (getdns_dict_get_list(reply, "additional", &additional) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(additional, &n) != GETDNS_RETURN_GOOD)
		return -1;
	for (i = 0; i < n; i++) {
		if (getdns_list_get_dict(additional, i, &rr) != GETDNS_RETURN_GOOD ||
		    getdns_dict_get_int(rr, "type", &type) != GETDNS_RETURN_GOOD || type != GETDNS_RRTYPE_OPT ||
		    getdns_dict_get_list(rr, "/rdata/options", &options) != GETDNS_RETURN_GOOD ||
		    getdns_list_get_length(options, &m) != GETDNS_RETURN_GOOD)
			continue;
		for (j = 0; j < m; j++)
			if (getdns_list_get_dict(options, j, &opt) == GETDNS_RETURN_GOOD &&
			    getdns_dict_get_int(opt, "option_code", &code) == GETDNS_RETURN_GOOD && code == 15 &&
			    getdns_dict_get_bindata(opt, "option_data", &data) == GETDNS_RETURN_GOOD && data->size >= 2)
				return (data->data[0] << 8) | data->data[1];
	}
	return -1;
}

/*
 * signature_ede - what a bogus answer's own RRSIGs tell (self mode): 7 when one has expired, 8 when one is not
 * valid yet (RFC 4034 section 3.1.5 serial arithmetic), else 6. getdns does not say why it judged bogus.
 */
static int signature_ede(getdns_dict *reply)
{
	static const char *const sections[] = {"answer", "authority"};
	getdns_list *list;
	getdns_dict *rr;
	uint32_t type, expiration, inception, now = (uint32_t)time(NULL);
	size_t n, i, k;

	for (k = 0; k < 2; k++) {
		if (getdns_dict_get_list(reply, sections[k], &list) != GETDNS_RETURN_GOOD ||
		    getdns_list_get_length(list, &n) != GETDNS_RETURN_GOOD)
			continue;
		for (i = 0; i < n; i++) {
			if (getdns_list_get_dict(list, i, &rr) != GETDNS_RETURN_GOOD ||
			    getdns_dict_get_int(rr, "type", &type) != GETDNS_RETURN_GOOD || type != GETDNS_RRTYPE_RRSIG ||
			    getdns_dict_get_int(rr, "/rdata/signature_expiration", &expiration) != GETDNS_RETURN_GOOD ||
			    getdns_dict_get_int(rr, "/rdata/signature_inception", &inception) != GETDNS_RETURN_GOOD)
				continue;
			if ((int32_t)(expiration - now) < 0)
				return RESOLVER_EDE_SIGNATURE_EXPIRED;
			if ((int32_t)(inception - now) > 0)
				return RESOLVER_EDE_SIGNATURE_NOT_YET_VALID;
		}
	}
	return RESOLVER_EDE_DNSSEC_BOGUS;
}

/*
 * reply_complete - every record the header counts was parsed. getdns 1.6.0 accepts a message cut short (no TC
 * bit) and returns the records that fit: in resolver mode nothing would notice, since the AD bit sits in the
 * header (test_relay_cut_resolver). Self mode does not need this: the signatures no longer verify.
 */
static int reply_complete(getdns_dict *reply)
{
	static const char *const counts[] = {"/header/ancount", "/header/nscount", "/header/arcount"};
	static const char *const sections[] = {"answer", "authority", "additional"};
	getdns_list *list;
	uint32_t want;
	size_t have, i;

	for (i = 0; i < 3; i++) {
		have = 0;
		if (getdns_dict_get_int(reply, counts[i], &want) != GETDNS_RETURN_GOOD ||
		    getdns_dict_get_list(reply, sections[i], &list) != GETDNS_RETURN_GOOD ||
		    getdns_list_get_length(list, &have) != GETDNS_RETURN_GOOD || have != want)
			return 0;
	}
	return 1;
}

/* txn_absorb - reduce one getdns response into t. */
static void txn_absorb(struct txn *t, getdns_callback_type_t type, getdns_dict *resp)
{
	getdns_list *replies;
	getdns_dict *reply;
	getdns_bindata *canon;
	uint32_t status = 0, ad = 0, tc = 0;
	size_t n = 0;

	if (type == GETDNS_CALLBACK_TIMEOUT) {
		t->timeout = 1;
		return;
	}
	if (type != GETDNS_CALLBACK_COMPLETE || resp == NULL) {
		t->failed = 1;
		return;
	}
	getdns_dict_get_int(resp, "status", &status);
	if (status == GETDNS_RESPSTATUS_ALL_TIMEOUT) {
		t->timeout = 1;
		return;
	}
	if (getdns_dict_get_list(resp, "replies_tree", &replies) != GETDNS_RETURN_GOOD ||
	    getdns_list_get_length(replies, &n) != GETDNS_RETURN_GOOD || n == 0 ||
	    getdns_list_get_dict(replies, 0, &reply) != GETDNS_RETURN_GOOD) {
		t->failed = 1;
		return;
	}
	t->answered = 1;
	t->ede = reply_ede(reply);
	getdns_dict_get_int(reply, "/header/rcode", &t->rcode);
	if (t->e->r->opts.validation == RESOLVER_VALIDATE_RESOLVER) {
		/* The upstream's verdict: AD = secure; a SERVFAIL naming a DNSSEC reason = bogus (indeterminate for 5);
		 * any other SERVFAIL is a failure, never "insecure"; an answer without AD is unsigned. A truncated
		 * answer (TC: getdns could not ask again over TCP) or one cut short holds part of the RRset at most:
		 * a failure, never a partial result. */
		getdns_dict_get_int(reply, "/header/ad", &ad);
		getdns_dict_get_int(reply, "/header/tc", &tc);
		if (tc || !reply_complete(reply)) {
			t->answered = 0;
			t->failed = 1;
			t->ede = RESOLVER_EDE_INVALID_DATA;
			return;
		}
		if (t->rcode == GETDNS_RCODE_SERVFAIL && EDE_IS_DNSSEC(t->ede))
			t->dnssec_status = t->ede == RESOLVER_EDE_DNSSEC_INDETERMINATE ? GETDNS_DNSSEC_INDETERMINATE
										: GETDNS_DNSSEC_BOGUS;
		else
			t->dnssec_status = ad ? GETDNS_DNSSEC_SECURE : GETDNS_DNSSEC_INSECURE;
	} else {
		getdns_dict_get_int(reply, "dnssec_status", &t->dnssec_status);
		if (t->dnssec_status == GETDNS_DNSSEC_BOGUS && t->ede < 0)
			t->ede = signature_ede(reply);
		else if (t->dnssec_status == GETDNS_DNSSEC_INDETERMINATE && t->ede < 0)
			t->ede = RESOLVER_EDE_DNSSEC_INDETERMINATE;
	}
	if (t->rcode != GETDNS_RCODE_NOERROR && t->rcode != GETDNS_RCODE_NXDOMAIN) {
		t->failed = 1;
		return;
	}
	normalise_name(t->qname, t->canonical, sizeof(t->canonical));
	if (getdns_dict_get_bindata(reply, "canonical_name", &canon) == GETDNS_RETURN_GOOD)
		dname_to_text(canon, t->canonical, sizeof(t->canonical));
	read_answer(t, reply, t->canonical);
	if (t->n_addrs == 0 && t->n_tlsa == 0 && t->n_mx == 0)
		t->ttl = negative_ttl(reply);
}

/* ---------- the decision ---------- */

static int txn_start(struct entry *e, enum txn_kind kind, const char *qname);

/*
 * note_error - the RFC 9209 dns_error parameters of the answer t that decided a failure: the rcode and EDE a
 * validating resolver gives (or gave, in resolver mode). A DNSSEC failure is a SERVFAIL whatever came on the
 * wire; a timeout is "No Reachable Authority", no answer at all a "Network Error".
 */
static void note_error(struct entry *e, const struct txn *t)
{
	struct resolver_result *res = &e->result;

	if (t->dnssec_status == GETDNS_DNSSEC_BOGUS || t->dnssec_status == GETDNS_DNSSEC_INDETERMINATE) {
		res->rcode = GETDNS_RCODE_SERVFAIL;
		res->ede = t->ede >= 0 ? t->ede
				       : t->dnssec_status == GETDNS_DNSSEC_BOGUS ? RESOLVER_EDE_DNSSEC_BOGUS
										  : RESOLVER_EDE_DNSSEC_INDETERMINATE;
	} else if (t->timeout) {
		res->rcode = -1;
		res->ede = RESOLVER_EDE_NO_REACHABLE_AUTHORITY;
	} else if (!t->answered) {
		res->rcode = -1;
		res->ede = t->ede >= 0 ? t->ede : RESOLVER_EDE_NETWORK_ERROR;
	} else {
		res->rcode = (int)t->rcode;
		res->ede = t->ede;
	}
}

/* dnssec_failure - finish e when t's validation failed; 1 if it did. */
static int dnssec_failure(struct entry *e, const struct txn *t, const char *what)
{
	if (t->dnssec_status == GETDNS_DNSSEC_BOGUS || t->dnssec_status == GETDNS_DNSSEC_INDETERMINATE)
		note_error(e, t);
	if (t->dnssec_status == GETDNS_DNSSEC_BOGUS) {
		entry_fail(e, RESOLVER_BOGUS, resolver_err_bogus, "%s of %s failed DNSSEC validation (bogus)", what,
			   t->qname);
		return 1;
	}
	if (t->dnssec_status == GETDNS_DNSSEC_INDETERMINATE) {
		entry_fail(e, RESOLVER_INDETERMINATE, resolver_err_indeterminate,
			   "%s of %s: DNSSEC validation indeterminate", what, t->qname);
		return 1;
	}
	return 0;
}

/* evaluate_addresses - A and AAAA are in; decide or move on to TLSA. Returns 1 when e finished. */
static int evaluate_addresses(struct entry *e)
{
	struct txn *a = &e->txn[TXN_A], *aaaa = &e->txn[TXN_AAAA];
	struct resolver_result *res = &e->result;
	char tlsa_target[RESOLVER_MAX_NAME];
	size_t i;
	int secure;

	if (dnssec_failure(e, a, "A records") || dnssec_failure(e, aaaa, "AAAA records"))
		return 1;
	if ((a->timeout || a->failed) && (aaaa->timeout || aaaa->failed)) {
		note_error(e, a->timeout || !aaaa->timeout ? a : aaaa);
		if (a->timeout || aaaa->timeout)
			entry_fail(e, RESOLVER_TIMEOUT, resolver_err_timeout, "no answer for the addresses of %s in %u ms",
				   e->host, e->r->opts.timeout_ms);
		else if (a->answered)
			entry_fail(e, RESOLVER_FAILURE, resolver_err_failure,
				   "address lookup of %s failed (rcode %u)", e->host, a->rcode);
		else
			entry_fail(e, RESOLVER_FAILURE, resolver_err_failure,
				   "address lookup of %s failed: no answer from the upstream (refused or network error)",
				   e->host);
		return 1;
	}
	/* IPv6 first, then IPv4: the order Happy Eyeballs starts from. */
	for (i = 0; i < aaaa->n_addrs && res->n_addrs < RESOLVER_MAX_ADDRS; i++)
		res->addrs[res->n_addrs++] = aaaa->addrs[i];
	for (i = 0; i < a->n_addrs && res->n_addrs < RESOLVER_MAX_ADDRS; i++)
		res->addrs[res->n_addrs++] = a->addrs[i];
	if (res->n_addrs == 0) {
		int nx = a->rcode == GETDNS_RCODE_NXDOMAIN || aaaa->rcode == GETDNS_RCODE_NXDOMAIN;
		/* A proven non-existence is secure: callers can tell it from an unsigned one. */
		res->addrs_secure = a->dnssec_status == GETDNS_DNSSEC_SECURE && aaaa->dnssec_status == GETDNS_DNSSEC_SECURE;
		note_error(e, a->answered ? a : aaaa);
		if (nx)
			res->rcode = GETDNS_RCODE_NXDOMAIN;
		entry_fail(e, RESOLVER_NO_HOST, resolver_err_no_host, "%s: %s", e->host,
			   nx ? "no such name (NXDOMAIN)" : "no A or AAAA records");
		return 1;
	}
	/* Secure when every answer that arrived validated (a NODATA for one family can be secure too). */
	secure = (a->timeout || a->failed || a->dnssec_status == GETDNS_DNSSEC_SECURE) &&
		 (aaaa->timeout || aaaa->failed || aaaa->dnssec_status == GETDNS_DNSSEC_SECURE);
	res->addrs_secure = secure;
	{
		const struct txn *src = a->n_addrs ? a : aaaa;
		if (strcmp(src->canonical, e->host) != 0)
			snprintf(res->cname_target, sizeof(res->cname_target), "%s", src->canonical);
	}
	if (!secure || e->kind == KIND_ADDRS) {
		/* DANE.md section 5 (Postfix's rule): DANE cannot apply to a host whose addresses are unsigned. An
		 * address-only lookup asks no TLSA, so DANE does not apply to it either. */
		res->outcome = RESOLVER_INSECURE;
		if (!secure)
			snprintf(res->detail, sizeof(res->detail), "address records of %s are not signed: no TLSA lookup",
				 res->cname_target[0] ? res->cname_target : e->host);
		else
			snprintf(res->detail, sizeof(res->detail), "address records of %s are signed (addresses only: "
				 "no TLSA lookup)", res->cname_target[0] ? res->cname_target : e->host);
		if (e->kind == KIND_FULL)
			snprintf(res->tlsa_name, sizeof(res->tlsa_name), "_%u._tcp.%s", e->port, e->host);
		res->rcode = GETDNS_RCODE_NOERROR;
		entry_finish(e, min_u32(a->n_addrs ? a->ttl : aaaa->ttl, aaaa->n_addrs ? aaaa->ttl : a->ttl));
		return 1;
	}
	if (res->cname_target[0] != '\0') {
		snprintf(tlsa_target, sizeof(tlsa_target), "_%u._tcp.%s", e->port, res->cname_target);
		if (txn_start(e, TXN_TLSA_TARGET, tlsa_target) < 0) {
			entry_fail(e, RESOLVER_FAILURE, resolver_err_failure, "cannot query %s", tlsa_target);
			return 1;
		}
	}
	return 0;
}

/* tlsa_absent - a secure NXDOMAIN or NODATA for the TLSA name. */
static int tlsa_absent(const struct txn *t)
{
	return t->dnssec_status == GETDNS_DNSSEC_SECURE && t->n_tlsa == 0;
}

/* evaluate_tlsa - every needed answer is in: pick the TLSA RRset (target first) and classify it. */
static void evaluate_tlsa(struct entry *e)
{
	struct resolver *r = e->r;
	struct resolver_result *res = &e->result;
	struct txn *t = &e->txn[TXN_TLSA], *tt = &e->txn[TXN_TLSA_TARGET];
	uint32_t ttl;
	size_t i, a_ttl_src;

	if (tt->started) {
		if (dnssec_failure(e, tt, "TLSA"))
			return;
		if (tt->timeout || tt->failed) {
			note_error(e, tt);
			entry_fail(e, tt->timeout ? RESOLVER_TIMEOUT : RESOLVER_FAILURE,
				   tt->timeout ? resolver_err_timeout : resolver_err_failure, "TLSA lookup of %s %s",
				   tt->qname, tt->timeout ? "timed out" : "failed");
			return;
		}
		/* RFC 7671 section 7: TLSA at the expanded name first; when that is absent or unsigned, the original. */
		if (tt->dnssec_status == GETDNS_DNSSEC_SECURE && tt->n_tlsa > 0)
			t = tt;
	}
	if (dnssec_failure(e, t, "TLSA"))
		return;
	if (t->timeout || t->failed) {
		note_error(e, t);
		entry_fail(e, t->timeout ? RESOLVER_TIMEOUT : RESOLVER_FAILURE,
			   t->timeout ? resolver_err_timeout : resolver_err_failure, "TLSA lookup of %s %s", t->qname,
			   t->timeout ? "timed out" : "failed");
		return;
	}
	snprintf(res->tlsa_name, sizeof(res->tlsa_name), "%s", t->qname);
	res->rcode = (int)t->rcode;
	res->ede = t->ede;
	a_ttl_src = e->txn[TXN_A].n_addrs ? TXN_A : TXN_AAAA;
	/* A TLSA-only lookup has no address TTL to bound it: the TLSA answer's own (or negative) TTL. */
	ttl = e->kind == KIND_TLSA ? (t->ttl > 0 ? t->ttl : r->opts.ttl_min) : e->txn[a_ttl_src].ttl;
	if (t->dnssec_status != GETDNS_DNSSEC_SECURE) {
		res->outcome = RESOLVER_INSECURE;
		snprintf(res->detail, sizeof(res->detail), "TLSA RRset at %s is not signed", t->qname);
	} else if (tlsa_absent(t)) {
		res->outcome = RESOLVER_SECURE_ABSENT;
		snprintf(res->detail, sizeof(res->detail), "no TLSA at %s (%s, proven by DNSSEC)", t->qname,
			 t->rcode == GETDNS_RCODE_NXDOMAIN ? "NXDOMAIN" : "NODATA");
		if (t->ttl > 0)
			ttl = min_u32(ttl, t->ttl);
	} else {
		/* Move the records into the result; the result outlives the transaction. */
		res->n_tlsa = t->n_tlsa;
		memcpy(res->tlsa, t->tlsa, t->n_tlsa * sizeof(t->tlsa[0]));
		e->result_blob = t->tlsa_blob;
		t->tlsa_blob = NULL;
		for (i = 0; i < res->n_tlsa; i++)
			if (r->opts.usable(res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype, res->tlsa[i].data,
					   res->tlsa[i].len, r->opts.usable_arg))
				res->n_tlsa_usable++;
		res->outcome = res->n_tlsa_usable ? RESOLVER_SECURE : RESOLVER_SECURE_UNUSABLE;
		snprintf(res->detail, sizeof(res->detail), "%zu TLSA records at %s, %zu usable", res->n_tlsa, t->qname,
			 res->n_tlsa_usable);
		ttl = min_u32(ttl, t->ttl);
	}
	entry_finish(e, ttl);
}

/* mx_order - qsort: preference, then name (a stable order for the cache; callers shuffle equals). */
static int mx_order(const void *pa, const void *pb)
{
	const struct resolver_mx *a = pa, *b = pb;

	if (a->preference != b->preference)
		return a->preference < b->preference ? -1 : 1;
	return strcmp(a->host, b->host);
}

/*
 * evaluate_mx - the MX answer is in (RFC 7672 section 2.2.1, RFC 7505): a failure, no such domain, or the RRset
 * (empty for NODATA: the domain is its own mail host) with its DNSSEC state, after CNAME expansion of the domain.
 */
static void evaluate_mx(struct entry *e)
{
	struct resolver_result *res = &e->result;
	struct txn *t = &e->txn[TXN_MX];
	size_t i, k;
	int roots = 0;

	if (dnssec_failure(e, t, "MX records"))
		return;
	if (t->timeout || t->failed) {
		note_error(e, t);
		if (t->timeout)
			entry_fail(e, RESOLVER_TIMEOUT, resolver_err_timeout, "no answer for the MX records of %s in %u ms",
				   e->host, e->r->opts.timeout_ms);
		else
			entry_fail(e, RESOLVER_FAILURE, resolver_err_failure, "MX lookup of %s failed%s", e->host,
				   t->answered ? " (rcode not NOERROR/NXDOMAIN)" : ": no answer from the upstream");
		return;
	}
	res->rcode = (int)t->rcode;
	res->ede = t->ede;
	if (strcmp(t->canonical, e->host) != 0)
		snprintf(res->cname_target, sizeof(res->cname_target), "%s", t->canonical);
	res->mx_secure = t->dnssec_status == GETDNS_DNSSEC_SECURE;
	if (t->rcode == GETDNS_RCODE_NXDOMAIN) {
		entry_fail(e, RESOLVER_NO_HOST, resolver_err_no_domain, "%s: no such domain (NXDOMAIN%s)",
			   res->cname_target[0] ? res->cname_target : e->host, res->mx_secure ? ", proven by DNSSEC" : "");
		return;
	}
	res->outcome = res->mx_secure ? RESOLVER_SECURE : RESOLVER_INSECURE;
	for (i = 0; i < t->n_mx; i++)
		roots += t->mx[i].host[0] == '\0';
	/* A root target names no host. Alone (RFC 7505's null MX, whatever its preference) the domain accepts no
	 * mail; beside other MX records it is dropped and the others are tried. */
	for (i = k = 0; i < t->n_mx; i++)
		if (t->mx[i].host[0] != '\0')
			t->mx[k++] = t->mx[i];
	t->n_mx = k;
	if (k > 1)
		qsort(t->mx, k, sizeof(t->mx[0]), mx_order);
	if (roots > 0 && k == 0) {
		res->mx_null = 1;
		snprintf(res->detail, sizeof(res->detail), "%s publishes a null MX (RFC 7505): it accepts no mail%s",
			 e->host, res->mx_secure ? "" : " (unsigned)");
	} else if (k == 0) {
		snprintf(res->detail, sizeof(res->detail), "%s has no MX records (NODATA%s): the domain is its own mail "
			 "host", e->host, res->mx_secure ? ", proven by DNSSEC" : ", unsigned");
	} else {
		snprintf(res->detail, sizeof(res->detail), "%zu MX records for %s (%s)%s%s", k, e->host,
			 res->mx_secure ? "signed" : "unsigned", roots ? ", a root target ignored" : "",
			 t->mx_dropped ? ", the worst preferences beyond the limit dropped" : "");
	}
	res->n_mx = t->n_mx;
	res->mx = e->result_mx = t->mx;
	t->mx = NULL;
	entry_finish(e, t->ttl > 0 ? t->ttl : e->r->opts.ttl_min);
}

/* entry_advance - called after each answer: decide as soon as the answers in hand allow. */
static void entry_advance(struct entry *e)
{
	if (e->state == ENTRY_DONE)
		return;
	if (e->kind == KIND_TLSA) {
		if (e->txn[TXN_TLSA].done)
			evaluate_tlsa(e);
		return;
	}
	if (e->kind == KIND_MX) {
		if (e->txn[TXN_MX].done)
			evaluate_mx(e);
		return;
	}
	if (!e->txn[TXN_A].done || !e->txn[TXN_AAAA].done)
		return;
	if (!e->addrs_evaluated) {
		e->addrs_evaluated = 1;
		if (evaluate_addresses(e))
			return;
	}
	if (!e->txn[TXN_TLSA].done || (e->txn[TXN_TLSA_TARGET].started && !e->txn[TXN_TLSA_TARGET].done))
		return;
	evaluate_tlsa(e);
}

static unsigned long stalled_connects(const struct resolver *r)
{
	return r->ext.stalled_connects;
}

static void on_getdns(getdns_context *ctx, getdns_callback_type_t type, getdns_dict *resp, void *userarg,
		      getdns_transaction_t id)
{
	struct txn *t = userarg;
	struct resolver *r = t->e->r;

	(void)ctx;
	(void)id;
	if (!t->active) {
		/* Cancelled by us, or the entry gave up at its deadline: nothing to do. */
		getdns_dict_destroy(resp);
		return;
	}
	t->active = 0;
	t->done = 1;
	txn_absorb(t, type, resp);
	/* An error after a TCP connect that never completed is the upstream not answering: a timeout. */
	if (t->failed && !t->answered && t->ede < 0 && stalled_connects(r) != t->stalled_at_start) {
		t->failed = 0;
		t->timeout = 1;
	}
	getdns_dict_destroy(resp);
	r->in_callback++;
	entry_advance(t->e);
	r->in_callback--;
}

/* txn_start - issue one query; -1 when getdns refused it outright. */
static int txn_start(struct entry *e, enum txn_kind kind, const char *qname)
{
	struct txn *t = &e->txn[kind];

	t->e = e;
	t->kind = kind;
	t->started = 1;
	t->active = 1;
	snprintf(t->qname, sizeof(t->qname), "%s", qname);
	t->ede = RESOLVER_EDE_NONE;
	t->stalled_at_start = stalled_connects(e->r);
	e->r->stats.queries++;
	if (e->r->ctx == NULL || getdns_general(e->r->ctx, qname, txn_rrtype[kind], e->r->extensions, t, &t->id, on_getdns) !=
	    GETDNS_RETURN_GOOD) {
		t->active = 0;
		t->done = 1;
		t->failed = 1;
		return -1;
	}
	return 0;
}

/* ---------- deadlines ---------- */

static void on_deadline(uv_timer_t *timer);

/* schedule_deadline - run on_deadline when the oldest pending lookup is due. */
static void schedule_deadline(struct resolver *r)
{
	uint64_t now = now_ms(r), due;

	if (r->pend_head == NULL) {
		uv_timer_stop(&r->deadline);
		return;
	}
	due = r->pend_head->deadline_ms;
	uv_timer_start(&r->deadline, on_deadline, due > now ? due - now : 0, 0);
}

/* on_deadline - a backstop for getdns's own timeout: lookups past their deadline end as timeouts. */
static void on_deadline(uv_timer_t *timer)
{
	struct resolver *r = timer->data;
	uint64_t now = now_ms(r);
	struct entry *e;

	while ((e = r->pend_head) != NULL && e->deadline_ms <= now) {
		e->result.rcode = -1;
		e->result.ede = RESOLVER_EDE_NO_REACHABLE_AUTHORITY;
		entry_fail(e, RESOLVER_TIMEOUT, resolver_err_timeout, "no complete answer for %s within %u ms", e->host,
			   r->opts.timeout_ms);
	}
	schedule_deadline(r);
}

/* ---------- recovery ---------- */

/* entry_start - issue e's queries: A, AAAA and TLSA at once (TLSA only, addresses only or MX only for those
 * kinds); -1 when getdns refused one (e is then failed, its waiters are told from the loop). */
static int entry_start(struct entry *e)
{
	char tlsa_name[RESOLVER_MAX_NAME];
	int bad = 0;

	e->result.rcode = -1;
	e->result.ede = RESOLVER_EDE_NONE;
	e->result.tlsa_only = e->kind == KIND_TLSA;
	snprintf(tlsa_name, sizeof(tlsa_name), "_%u._tcp.%s", e->port, e->host);
	/* All leave at once; the TLSA answer is simply dropped if the addresses turn out insecure. */
	if (e->kind == KIND_MX)
		bad = txn_start(e, TXN_MX, e->host) < 0;
	if (!bad && (e->kind == KIND_FULL || e->kind == KIND_ADDRS))
		bad = txn_start(e, TXN_A, e->host) < 0 || txn_start(e, TXN_AAAA, e->host) < 0;
	if (!bad && (e->kind == KIND_FULL || e->kind == KIND_TLSA))
		bad = txn_start(e, TXN_TLSA, tlsa_name) < 0;
	if (bad) {
		e->result.ede = RESOLVER_EDE_NETWORK_ERROR;
		entry_fail(e, RESOLVER_FAILURE, resolver_err_failure, "getdns refused to start the lookup of %s", e->host);
		return -1;
	}
	return 0;
}

/* entry_restart - issue a pending entry's queries again on a new context (its deadline stays). */
static void entry_restart(struct entry *e)
{
	int i;

	for (i = 0; i < TXN_COUNT; i++) {
		txn_release(&e->txn[i]);
		memset(&e->txn[i], 0, sizeof(e->txn[i]));
	}
	free(e->result_blob);
	e->result_blob = NULL;
	free(e->result_mx);
	e->result_mx = NULL;
	memset(&e->result, 0, sizeof(e->result));
	e->addrs_evaluated = 0;
	entry_start(e);
}

/*
 * maybe_rebuild - after a timeout or a failure, replace the getdns context (at most once a second, never from
 * inside a getdns callback). getdns 1.6.0 can wedge a context for good: after one TCP connection is closed in
 * the middle of an answer, it never sends the DNSKEY/DS queries of later lookups again (test_resolver
 * known_bugs). Pending lookups are issued again on the new context.
 */
static void maybe_rebuild(struct resolver *r)
{
	struct entry *e, *next;
	uint64_t now = now_ms(r);
	char err[200];
	int i;

	if (!r->needs_rebuild || r->in_callback || (r->last_rebuild_ms != 0 && now - r->last_rebuild_ms < 1000))
		return;
	r->needs_rebuild = 0;
	r->last_rebuild_ms = now;
	r->stats.rebuilds++;
	for (e = r->pend_head; e != NULL; e = e->pend_next)
		for (i = 0; i < TXN_COUNT; i++)
			e->txn[i].active = 0;
	context_destroy(r);
	if (context_create(r, err, sizeof(err)) < 0)
		r->needs_rebuild = 1;   /* lookups fail meanwhile; try again later */
	for (e = r->pend_head; e != NULL; e = next) {
		next = e->pend_next;
		entry_restart(e);
	}
}

/* ---------- public entry points ---------- */

/* entry_new - a pending entry for (name, port, kind), on the pending list and in the hash unless it is a refresh;
 * its queries are started. NULL when out of memory. */
static struct entry *entry_new(struct resolver *r, const char *name, uint16_t port, enum entry_kind kind,
			       uint32_t hash, struct entry *refresh_of)
{
	struct entry *e;

	cache_trim(r, 1);
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->r = r;
	e->state = ENTRY_PENDING;
	snprintf(e->host, sizeof(e->host), "%s", name);
	e->port = port;
	e->kind = kind;
	e->hash = hash;
	if (refresh_of != NULL) {
		e->refresh_of = refresh_of;
		refresh_of->refresh = e;
		refresh_of->refreshed = 1;
	} else {
		hash_insert(r, e);
	}
	r->n_entries++;
	e->deadline_ms = now_ms(r) + r->opts.timeout_ms + 250;
	e->pend_prev = r->pend_tail;
	if (r->pend_tail)
		r->pend_tail->pend_next = e;
	else
		r->pend_head = e;
	r->pend_tail = e;
	if (entry_start(e) < 0 && refresh_of != NULL)
		e = NULL;   /* a refresh that could not start is gone already (entry_finish) */
	schedule_deadline(r);
	return e;
}

/* waiter_add - q waits for pending entry e (newest first). */
static void waiter_add(struct entry *e, struct resolver_query *q)
{
	q->e = e;
	e->refs++;
	q->prev = NULL;
	q->next = e->waiters;
	if (e->waiters)
		e->waiters->prev = q;
	e->waiters = q;
}

/* lookup - every resolver_lookup_*: a cache hit (maybe starting a refresh), a join of the lookup in flight, or a
 * new entry. Addresses-only and MX lookups have no port (0). */
static struct resolver_query *lookup(struct resolver *r, const char *host, uint16_t port, enum entry_kind kind,
				     resolver_cb cb, void *arg)
{
	char name[RESOLVER_MAX_NAME];
	struct resolver_query *q;
	struct entry *e;
	uint32_t hash;
	uint64_t now;

	if (!resolver_valid_hostname(host) || (port == 0) != (kind == KIND_ADDRS || kind == KIND_MX))
		return NULL;
	maybe_rebuild(r);
	normalise_name(host, name, sizeof(name));
	hash = hash_key(name, port, kind);
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->r = r;
	q->cb = cb;
	q->arg = arg;
	r->stats.lookups++;
	now = now_ms(r);
	e = cache_find(r, name, port, kind, hash);
	if (e != NULL && e->state == ENTRY_DONE && e->expires_ms <= now) {
		if (e->refresh != NULL) {
			/* Expired while its refresh is in flight: wait for the refresh, which takes its place. */
			struct entry *fresh = e->refresh;
			r->stats.coalesced++;
			e->refresh = NULL;
			fresh->refresh_of = NULL;
			entry_retire(r, e);
			hash_insert(r, fresh);
			waiter_add(fresh, q);
			return q;
		}
		entry_retire(r, e);
		e = NULL;
	}
	if (e != NULL && e->state == ENTRY_DONE) {
		r->stats.cache_hits++;
		lru_unlink(r, e);
		lru_push_front(r, e);
		q->e = e;
		q->from_cache = 1;
		e->refs++;
		ready_push(r, q);
		deliver_soon(r);
		/* Used in the last 10% of its TTL: refresh in the background, once, so the next hits stay warm. */
		if (now >= e->prefetch_ms && e->refresh == NULL && !e->refreshed) {
			r->stats.prefetches++;
			entry_new(r, name, port, kind, hash, e);
		}
		return q;
	}
	if (e != NULL) {
		r->stats.coalesced++;
	} else {
		e = entry_new(r, name, port, kind, hash, NULL);
		if (e == NULL) {
			free(q);
			return NULL;
		}
	}
	if (e->state == ENTRY_DONE) {
		/* Failed at once (getdns refused a query): delivered from the loop like any other result. */
		q->e = e;
		e->refs++;
		ready_push(r, q);
		deliver_soon(r);
		return q;
	}
	waiter_add(e, q);
	return q;
}

struct resolver_query *resolver_lookup(struct resolver *r, const char *host, uint16_t port, resolver_cb cb,
				       void *arg)
{
	return lookup(r, host, port, KIND_FULL, cb, arg);
}

struct resolver_query *resolver_lookup_tlsa(struct resolver *r, const char *host, uint16_t port, resolver_cb cb,
					    void *arg)
{
	return lookup(r, host, port, KIND_TLSA, cb, arg);
}

struct resolver_query *resolver_lookup_addrs(struct resolver *r, const char *host, resolver_cb cb, void *arg)
{
	return lookup(r, host, 0, KIND_ADDRS, cb, arg);
}

struct resolver_query *resolver_lookup_mx(struct resolver *r, const char *domain, resolver_cb cb, void *arg)
{
	return lookup(r, domain, 0, KIND_MX, cb, arg);
}

void resolver_cancel(struct resolver_query *q)
{
	if (q == NULL)
		return;
	query_unlink(q);
	q->e->refs--;
	free(q);
}

void resolver_get_stats(const struct resolver *r, struct resolver_stats *st)
{
	*st = r->stats;
	st->entries = r->n_entries;
}

void resolver_free(struct resolver *r)
{
	struct resolver_query *q;
	struct entry *e, *next;
	struct entry *lists[2];
	int i, l;

	if (r == NULL)
		return;
	while ((q = r->ready_head) != NULL)
		resolver_cancel(q);
	/* Every entry is pending or in the LRU list. Silence all transactions first, destroy the context (which
	 * may still call back, harmlessly, into entries that are alive), and only then free the entries. */
	lists[0] = r->pend_head;
	lists[1] = r->lru_head;
	for (l = 0; l < 2; l++) {
		for (e = lists[l]; e != NULL; e = l == 0 ? e->pend_next : e->lru_next) {
			while ((q = e->waiters) != NULL)
				resolver_cancel(q);
			for (i = 0; i < TXN_COUNT; i++)
				e->txn[i].active = 0;
		}
	}
	context_destroy(r);
	getdns_dict_destroy(r->extensions);
	getdns_list_destroy(r->upstreams);
	getdns_list_destroy(r->anchors);
	for (l = 0; l < 2; l++) {
		for (e = l == 0 ? r->pend_head : r->lru_head; e != NULL; e = next) {
			next = l == 0 ? e->pend_next : e->lru_next;
			e->refs = 0;
			entry_free(r, e);
		}
	}
	r->closing_handles = 2;
	uv_close((uv_handle_t *)&r->deliver, handle_closed);
	uv_close((uv_handle_t *)&r->deadline, handle_closed);
}

/*
 * resolver.h - asynchronous DNSSEC-validated lookups of everything one upstream connection needs:
 * the host's A and AAAA records and its TLSA RRset at _<port>._tcp.<host>, on the caller's libuv loop; and for
 * mail, a destination domain's MX RRset (resolver_lookup_mx) and a host's addresses alone (resolver_lookup_addrs).
 *
 * getdns runs in stub mode, over TCP unless opts.udp asks for UDP. With validation = self (the default) it
 * validates DNSSEC itself against configured trust anchors; with validation = resolver it only asks a validating
 * resolver on loopback (DO bit set) and takes the AD bit of its answers as the verdict. No getdns type leaves
 * resolver/: callers get the plain result below.
 * Results are cached (TTL-bounded, LRU, count-bounded), concurrent lookups of one (host, port) share one set of
 * queries, and an entry used in the last 10% of its TTL is refreshed in the background.
 */
#ifndef DANEPROXY_RESOLVER_H
#define DANEPROXY_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#define RESOLVER_MAX_UPSTREAMS 8
#define RESOLVER_MAX_ADDRS 16
#define RESOLVER_MAX_TLSA 64
#define RESOLVER_MAX_NAME 272  /* a 253-byte host plus "_65535._tcp." */
#define RESOLVER_MAX_MX 32     /* MX records kept per domain (the best preferences) */

/* The TLSA outcome of shared/DANE.md section 5, plus the ways a lookup fails. */
enum resolver_outcome {
	RESOLVER_SECURE = 0,        /* signed TLSA RRset with at least one usable record */
	RESOLVER_SECURE_UNUSABLE,   /* signed TLSA RRset, every record unusable */
	RESOLVER_SECURE_ABSENT,     /* NXDOMAIN or NODATA for the TLSA name, proven by DNSSEC */
	RESOLVER_INSECURE,          /* provably unsigned (the TLSA name, or the host's address records) */
	RESOLVER_BOGUS,             /* validation failed: never usable, never a fallback */
	RESOLVER_INDETERMINATE,     /* validation could not be completed */
	RESOLVER_TIMEOUT,           /* no answer in time */
	RESOLVER_FAILURE,           /* SERVFAIL, refused, network error */
	RESOLVER_NO_HOST,           /* the host has no address (NXDOMAIN or no A/AAAA) */
};

/* Who decides whether an answer is DNSSEC-secure. */
enum resolver_validation {
	RESOLVER_VALIDATE_SELF = 0,   /* getdns validates every answer to the trust anchor (chases DNSKEY/DS) */
	RESOLVER_VALIDATE_RESOLVER,   /* the upstream validates: AD bit = secure, SERVFAIL = failure; loopback only */
};

/* RFC 8914 Extended DNS Error info-codes the resolver reports itself (others are passed through). */
#define RESOLVER_EDE_NONE (-1)
#define RESOLVER_EDE_DNSSEC_INDETERMINATE 5
#define RESOLVER_EDE_DNSSEC_BOGUS 6
#define RESOLVER_EDE_SIGNATURE_EXPIRED 7
#define RESOLVER_EDE_SIGNATURE_NOT_YET_VALID 8
#define RESOLVER_EDE_NO_REACHABLE_AUTHORITY 22
#define RESOLVER_EDE_NETWORK_ERROR 23
#define RESOLVER_EDE_INVALID_DATA 24

/* Failure reasons are constant strings compared by pointer (STYLE.md habit 7). */
extern const char resolver_err_bogus[];
extern const char resolver_err_indeterminate[];
extern const char resolver_err_timeout[];
extern const char resolver_err_failure[];
extern const char resolver_err_no_host[];
extern const char resolver_err_no_domain[];   /* resolver_lookup_mx: NXDOMAIN */
extern const char resolver_err_cancelled[];

struct resolver_tlsa {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	uint16_t len;
	const uint8_t *data;   /* owned by the result */
};

/* One MX record (RFC 5321 section 5.1): its preference and exchange host, lowercase, without the trailing dot. */
struct resolver_mx {
	uint16_t preference;
	char host[RESOLVER_MAX_NAME];
};

/* A finished lookup. Valid only during the callback: copy what you keep. */
struct resolver_result {
	enum resolver_outcome outcome;
	const char *reason;                 /* NULL on success, else a resolver_err_* constant */
	char detail[256];                   /* which name and type failed, in words (the extended error where known) */
	int addrs_secure;                   /* the address records (and any CNAME chain) validated as secure */
	size_t n_addrs;
	struct sockaddr_storage addrs[RESOLVER_MAX_ADDRS];  /* IPv6 first when both (Happy Eyeballs order) */
	size_t n_tlsa;
	struct resolver_tlsa tlsa[RESOLVER_MAX_TLSA];
	size_t n_tlsa_usable;
	char tlsa_name[RESOLVER_MAX_NAME];  /* owner name the TLSA RRset came from (or was looked up at) */
	char cname_target[RESOLVER_MAX_NAME]; /* the fully expanded name when the host is a CNAME, else "" */
	uint32_t ttl;                       /* seconds this result stays cached (after clamping) */
	uint32_t ttl_left;                  /* seconds of that left now (== ttl for a fresh answer; rounded down) */
	int from_cache;                     /* 1 when served without new queries */
	/* RFC 9209 dns_error parameters: what a validating resolver would have said about the deciding answer. */
	int rcode;                          /* DNS rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...); -1 no answer */
	int ede;                            /* RFC 8914 info-code, RESOLVER_EDE_NONE when there is none */
	int tlsa_only;                      /* from resolver_lookup_tlsa: no addresses were asked */
	/* resolver_lookup_mx only (see there) */
	size_t n_mx;                        /* 0: no MX RRset (NODATA: the domain is its own mail host), or null MX */
	const struct resolver_mx *mx;       /* by preference, then name; owned by the result */
	int mx_null;                        /* RFC 7505 null MX: the domain accepts no mail */
	int mx_secure;                      /* the MX answer (RRset, NODATA or NXDOMAIN, and any CNAME) validated */
};

/* Decides DANE.md section 1 usability of one record; the resolver counts, the caller's engine decides. */
typedef int (*resolver_usable_fn)(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len,
				  void *arg);

struct resolver_options {
	const char *upstreams[RESOLVER_MAX_UPSTREAMS]; /* "IP", "IP@PORT" or "[IPv6]@PORT"; none = /etc/resolv.conf */
	size_t n_upstreams;
	const char *trust_anchor_file;  /* DS or DNSKEY records; NULL = /usr/share/dns/root.key */
	unsigned timeout_ms;            /* per lookup; 0 = 5000 */
	unsigned cache_max;             /* entries; 0 = 10000 */
	unsigned ttl_min;               /* clamp, seconds; 0 = 5 */
	unsigned ttl_max;               /* clamp, seconds; 0 = 3600 */
	unsigned failure_ttl;           /* how long bogus/timeout/failure results are cached; 0 = 2 */
	int ttls_literal;               /* 1: ttl_min and failure_ttl of 0 mean 0 (no minimum, failures not cached) */
	int udp;                        /* 0 (default): TCP only, queries pipelined on one connection per
					 * upstream, in both validation modes. 1: UDP first with getdns's own
					 * fallback to TCP, for `lookup --udp` only: getdns 1.6.0 can double-free on
					 * a lost UDP answer and abort the process on a truncated one, even with UDP
					 * alone in its transport list (test_resolver known_bugs) */
	enum resolver_validation validation;   /* resolver: every upstream must be a loopback address */
	resolver_usable_fn usable;      /* NULL: every record with usage<=3, selector<=1, mtype<=2 counts as usable */
	void *usable_arg;
};

struct resolver;
struct resolver_query;

typedef void (*resolver_cb)(const struct resolver_result *result, void *arg);

struct resolver_stats {
	uint64_t lookups;        /* resolver_lookup calls */
	uint64_t cache_hits;     /* answered from a finished cache entry */
	uint64_t coalesced;      /* joined a lookup already in flight */
	uint64_t queries;        /* DNS queries handed to getdns (each validates its own chain) */
	uint64_t evictions;      /* entries dropped by the count bound */
	uint64_t rebuilds;       /* getdns contexts replaced after timeouts or failures */
	uint64_t prefetches;     /* background refreshes started for entries used in the last 10% of their TTL */
	size_t entries;          /* entries in the cache now */
};

/* resolver_new - a resolver on loop; -1 with a message in err (bad upstream, unreadable trust anchor, ...). */
int resolver_new(uv_loop_t *loop, const struct resolver_options *opts, struct resolver **out, char *err,
		 size_t errlen);

/*
 * resolver_free - cancel every lookup (no callback is called afterwards) and start closing. The loop must run
 * once more to let the last handles close; the memory is released then.
 */
void resolver_free(struct resolver *r);

/*
 * resolver_lookup - resolve host (a DNS name, no trailing dot needed) for a TCP connection to port.
 * The callback is always called later from the loop, never from inside this call, exactly once unless the query
 * is cancelled. Returns NULL (with nothing scheduled) for an invalid host name or when out of memory.
 */
struct resolver_query *resolver_lookup(struct resolver *r, const char *host, uint16_t port, resolver_cb cb,
				       void *arg);

/*
 * resolver_lookup_tlsa - only the TLSA RRset at _<port>._tcp.<host> (no addresses, no CNAME expansion of the
 * host), e.g. to probe a parent domain that has no addresses. Outcomes as for resolver_lookup, never
 * RESOLVER_NO_HOST; n_addrs is 0 and addrs_secure says nothing. Same contract as resolver_lookup.
 */
struct resolver_query *resolver_lookup_tlsa(struct resolver *r, const char *host, uint16_t port, resolver_cb cb,
					    void *arg);

/*
 * resolver_lookup_addrs - only the A and AAAA records of host (CNAMEs expanded), e.g. an MX host whose MX RRset is
 * unsigned, where DANE cannot apply and a TLSA lookup could only fail or delay. The outcome is RESOLVER_INSECURE
 * (no TLSA was asked, so DANE does not apply) with the addresses, or RESOLVER_NO_HOST, or a failure (bogus,
 * indeterminate, timeout, failure) that says why there are no addresses; addrs_secure tells whether the address
 * records validated. n_tlsa is 0. Same contract as resolver_lookup.
 */
struct resolver_query *resolver_lookup_addrs(struct resolver *r, const char *host, resolver_cb cb, void *arg);

/*
 * resolver_lookup_mx - the MX RRset of a mail domain (RFC 5321 section 5.1, RFC 7672 section 2.2.1). A CNAME at
 * the domain is followed (cname_target names the expanded domain); the DNSSEC state covers the whole answer.
 * Outcomes (STYLE.md habit 7: a lookup error is never "no MX"):
 *   RESOLVER_SECURE / RESOLVER_INSECURE - an answer, signed (mx_secure) or provably unsigned, that is either
 *       n_mx > 0 MX records sorted by preference (equal preferences by name: callers shuffle them), or
 *       mx_null: a null MX (RFC 7505: a root target alone; beside other records a root target is dropped), or
 *       n_mx == 0 and !mx_null: no MX RRset (NODATA), so the domain itself is the mail host (RFC 5321 5.1);
 *   RESOLVER_NO_HOST - the domain does not exist (NXDOMAIN; reason resolver_err_no_domain);
 *   RESOLVER_BOGUS / RESOLVER_INDETERMINATE / RESOLVER_TIMEOUT / RESOLVER_FAILURE - no usable answer: mail is
 *       deferred (RFC 7672 section 2.2.1), never sent to the domain itself.
 * No addresses and no TLSA are part of the result. Cached and coalesced like resolver_lookup (per domain, TTL of
 * the MX RRset or the negative TTL); same callback contract.
 */
struct resolver_query *resolver_lookup_mx(struct resolver *r, const char *domain, resolver_cb cb, void *arg);

/* resolver_cancel - the callback of q will never be called; q is freed. Safe to call from any callback. */
void resolver_cancel(struct resolver_query *q);

/* resolver_get_stats - counters since creation. */
void resolver_get_stats(const struct resolver *r, struct resolver_stats *st);

/* resolver_outcome_name - the outcome in words ("secure", "bogus", ...). */
const char *resolver_outcome_name(enum resolver_outcome o);

/* resolver_ede_name - the RFC 8914 purpose of an info-code ("DNSSEC Bogus", ...); NULL when unknown or none. */
const char *resolver_ede_name(int ede);

/* resolver_validation_parse - "self" or "resolver"; 0 or -1. resolver_validation_name - the reverse. */
int resolver_validation_parse(const char *s, enum resolver_validation *out);
const char *resolver_validation_name(enum resolver_validation v);

/* resolver_upstream_loopback - 1 when spec ("IP", "IP@PORT", "[IPv6]@PORT") is in 127.0.0.0/8 or ::1. */
int resolver_upstream_loopback(const char *spec);

/* resolver_valid_hostname - 1 when host is a syntactically valid DNS name (LDH labels, underscores allowed). */
int resolver_valid_hostname(const char *host);

#endif

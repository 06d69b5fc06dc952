/*
 * metrics.h - the daemon's counters, in memory shared by the supervisor and its workers, and their Prometheus text
 * exposition (format 0.0.4).
 *
 * The supervisor maps one region before it forks; each worker owns one slot and only adds to it (relaxed atomics:
 * a worker never waits for a scrape); the supervisor renders the sum over every slot plus the totals of workers
 * that have exited, so a scrape never stalls a worker's loop and counters survive reloads and restarts. The open
 * connection count is one shared atomic: it is what enforces max_connections across workers.
 */
#ifndef DANEPROXY_METRICS_H
#define DANEPROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_SLOTS 128           /* workers alive at once, current and retiring generations */
#define METRICS_MAX_TOKENS 32           /* RFC 9209 error tokens (proxy_status.h table) */
#define METRICS_N_OUTCOMES 9            /* enum resolver_outcome */
#define METRICS_N_BUCKETS 14

/* Verification results: which usage authenticated, or what happened instead. */
enum metrics_verification {
	METRICS_VERIFY_DANE_TA, METRICS_VERIFY_DANE_EE, METRICS_VERIFY_PKIX_TA, METRICS_VERIFY_PKIX_EE,
	METRICS_VERIFY_PKIX_FALLBACK, METRICS_VERIFY_ENCRYPT_ONLY, METRICS_VERIFY_PASSTHROUGH, METRICS_VERIFY_REFUSED,
	METRICS_N_VERIFICATIONS
};

struct metrics_histogram {
	uint64_t buckets[METRICS_N_BUCKETS];   /* counts per bucket (not cumulative) */
	uint64_t count;
	uint64_t sum_us;
};

/* One worker's counters. */
/* The kinds of listener, as the connections counter's label says. */
enum metrics_listener { METRICS_LISTENER_HTTP, METRICS_LISTENER_ROUTE, METRICS_LISTENER_SMTP };

struct metrics_slot {
	uint64_t connections[3];               /* accepted, by enum metrics_listener */
	int64_t open;                          /* open now */
	uint64_t refusals[METRICS_MAX_TOKENS];
	uint64_t dnssec[METRICS_N_OUTCOMES];
	uint64_t verifications[METRICS_N_VERIFICATIONS];
	struct metrics_histogram dns;
	struct metrics_histogram handshake;
	uint64_t upstream_handshakes[2];       /* the same handshakes by whether they resumed: [0] full, [1] resumed */
	uint64_t bytes[2];                     /* up (client to origin), down */
	/* cumulative figures of the worker's own caches, written (not added) by the worker */
	uint64_t tlsa_cache[3];                /* hit, miss, coalesced */
	uint64_t minted[2];                    /* cached, minted */
};

struct metrics_shm {
	int64_t open_total;                    /* every worker's open connections: the max_connections check */
	uint64_t reloads[2];                   /* success, failure */
	uint64_t worker_restarts;
	uint64_t refused_at_accept[2];         /* connection limit, allow_from */
	struct metrics_slot retired;           /* the sum of workers that have exited */
	struct metrics_slot slots[METRICS_MAX_SLOTS];
	uint8_t slot_used[METRICS_MAX_SLOTS];
};

/* metrics_shm_new - a zeroed region shared with the processes forked afterwards; NULL on failure. */
struct metrics_shm *metrics_shm_new(void);
void metrics_shm_free(struct metrics_shm *m);
/* metrics_slot_take - a free slot for a new worker (-1 when all are used); metrics_slot_retire - its worker has
 * exited: fold its counts into the retired totals and give back its open connections and the slot. */
int metrics_slot_take(struct metrics_shm *m);
void metrics_slot_retire(struct metrics_shm *m, int slot);

/* Worker side (relaxed atomics). */
void metrics_add(uint64_t *counter, uint64_t n);
void metrics_observe(struct metrics_histogram *h, double ms);
/* metrics_open_try - one more open connection if fewer than max are open across workers; 0 taken, -1 full. */
int metrics_open_try(struct metrics_shm *m, struct metrics_slot *s, unsigned max);
void metrics_open_release(struct metrics_shm *m, struct metrics_slot *s);

/*
 * metrics_render - the exposition of everything (sum of slots and retired totals), with the build information, into
 * a malloc'd buffer; its length, or 0 when out of memory.
 */
size_t metrics_render(const struct metrics_shm *m, const char *version, const char *wolfssl, char **out);

#endif

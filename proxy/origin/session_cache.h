/*
 * session_cache.h - TLS client sessions for resumption with origins, each bound to the decision that
 * authenticated its full handshake.
 *
 * A resumed TLS session skips the server's certificate (TLS 1.3 PSK, TLS 1.2 abbreviated handshake), so it may
 * only be used where a full handshake would have been authenticated by the very same evidence. Every entry is
 * stored under a key naming the connection (host, port, SNI, ALPN, policy, profile) together with a binding:
 * a digest of everything the certificate verdict depended on except the chain itself (the TLSA RRset and its
 * DNSSEC outcome, the method the policy chose, the reference identifiers, the PKIX store). An entry is handed
 * out only for the same binding and before its expiry, which never exceeds the TTL of the DNS answer that
 * authorised it; a lookup of another binding drops the entry. Sessions are opaque bytes here (tls.c encodes
 * them); nothing is written to disk. Bounded: the least recently used entry goes first. Pure: time is passed in.
 */
#ifndef DANEPROXY_SESSION_CACHE_H
#define DANEPROXY_SESSION_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define SESSION_BINDING_LEN 32
#define SESSION_KEY_MAX 600

struct session_cache;
struct session_slot;

struct session_cache_stats {
	uint64_t hits;        /* a session was handed out */
	uint64_t misses;      /* no entry for the key */
	uint64_t stale;       /* an entry under another binding: dropped, full handshake */
	uint64_t expired;     /* an entry past its expiry: dropped, full handshake */
	uint64_t stored;      /* sessions stored (new entries and updates) */
	uint64_t evictions;   /* entries dropped by the count bound */
	size_t entries;
};

/* session_cache_new - at most max entries (0: a cache that stores nothing). NULL when out of memory. */
struct session_cache *session_cache_new(size_t max);
/*
 * session_cache_free - drop every entry (their secrets are wiped). Slots still open keep the cache's memory
 * until they are freed, but can no longer store anything.
 */
void session_cache_free(struct session_cache *c);

/* A session handed out: aux (what the caller stored with it) then the session, in one wiped-on-clear buffer. */
struct session_found {
	uint8_t *data;          /* aux_len bytes of aux, then sess_len bytes of session */
	size_t aux_len;
	size_t sess_len;
	uint64_t expires_ms;    /* the entry's bound */
};

/*
 * session_cache_get - the session stored under key when it was bound to binding and expires after now_ms: a
 * copy in *out (release it with session_found_clear); 0. -1 when there is none (an entry under another binding,
 * or expired, is dropped on the way).
 */
int session_cache_get(struct session_cache *c, const char *key, const uint8_t binding[SESSION_BINDING_LEN],
		      uint64_t now_ms, struct session_found *out);
/* session_found_clear - wipe and free what session_cache_get handed out. */
void session_found_clear(struct session_found *f);
/* session_cache_remove - forget key (e.g. the server refused to resume it). */
void session_cache_remove(struct session_cache *c, const char *key);
/* session_cache_get_stats - counters since creation. */
void session_cache_get_stats(const struct session_cache *c, struct session_cache_stats *st);

/*
 * session_slot_new - where the sessions of one connection go: under key, bound to binding, never past
 * expires_ms (the full handshake's bound; a resumed connection passes the bound of the entry it resumed), each
 * stored with aux (e.g. the TLSA record that matched, to report on resumption; at most 255 bytes). Holds a
 * reference to the cache. NULL when out of memory or key is too long.
 */
struct session_slot *session_slot_new(struct session_cache *c, const char *key,
				      const uint8_t binding[SESSION_BINDING_LEN], uint64_t expires_ms, const void *aux,
				      size_t aux_len);
/*
 * session_slot_store - a session of the slot's connection, usable until min(the slot's bound, now_ms +
 * lifetime_s * 1000) (lifetime_s 0: the slot's bound). Replaces the entry of the key.
 */
void session_slot_store(struct session_slot *s, const uint8_t *sess, size_t len, uint64_t now_ms,
			uint32_t lifetime_s);
/* session_slot_free - the connection is gone. NULL is fine. */
void session_slot_free(struct session_slot *s);

#endif

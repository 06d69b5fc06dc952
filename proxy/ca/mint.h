/*
 * mint.h - minted leaf certificates for CONNECT termination, cached by name (bounded, least recently used
 * evicted, expired entries re-minted). Minting is one ECDSA signature on the loop; a cached name costs nothing.
 */
#ifndef DANEPROXY_MINT_H
#define DANEPROXY_MINT_H

#include <stddef.h>
#include <stdint.h>

struct ca;
struct mint_cache;

struct mint_stats {
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	size_t entries;
};

/* mint_cache_new - a cache of at most max entries over ca (which must outlive it). */
struct mint_cache *mint_cache_new(struct ca *ca, size_t max);
void mint_cache_free(struct mint_cache *m);
/*
 * mint_get - the leaf for name (DER, owned by the cache, valid until the next mint_get); *minted says whether
 * it was signed now (1) or came from the cache (0). -1 with err.
 */
int mint_get(struct mint_cache *m, const char *name, const uint8_t **der, size_t *len, int *minted, char *err,
	     size_t errlen);
void mint_get_stats(const struct mint_cache *m, struct mint_stats *st);

#endif

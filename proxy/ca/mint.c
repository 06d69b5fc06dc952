/*
 * mint.c - the minted-leaf cache. Lookups are a linear scan: the cache is small (hundreds of names) and a scan
 * of it costs far less than the TLS handshake it serves.
 */
#include "mint.h"
#include "ca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Re-mint a day before the leaf would expire. */
#define MINT_REUSE_SECONDS ((CA_LEAF_VALIDITY_DAYS - 1) * 86400L)

struct mint_entry {
	char name[256];
	uint8_t *der;
	size_t len;
	time_t minted;
	uint64_t last_used;
};

struct mint_cache {
	struct ca *ca;
	struct mint_entry *entries;
	size_t n;
	size_t max;
	uint64_t tick;
	struct mint_stats stats;
};

struct mint_cache *mint_cache_new(struct ca *ca, size_t max)
{
	struct mint_cache *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->entries = calloc(max ? max : 1, sizeof(*m->entries));
	if (m->entries == NULL) {
		free(m);
		return NULL;
	}
	m->ca = ca;
	m->max = max ? max : 1;
	return m;
}

void mint_cache_free(struct mint_cache *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->entries[i].der);
	free(m->entries);
	free(m);
}

int mint_get(struct mint_cache *m, const char *name, const uint8_t **der, size_t *len, int *minted, char *err,
	     size_t errlen)
{
	struct mint_entry *e = NULL, *victim;
	time_t now = time(NULL);
	uint8_t *fresh;
	size_t i, fresh_len;

	for (i = 0; i < m->n; i++) {
		if (strcasecmp(m->entries[i].name, name) == 0) {
			e = &m->entries[i];
			break;
		}
	}
	if (e != NULL && now - e->minted < MINT_REUSE_SECONDS) {
		m->stats.hits++;
		*minted = 0;
		e->last_used = ++m->tick;
		*der = e->der;
		*len = e->len;
		return 0;
	}
	m->stats.misses++;
	*minted = 1;
	if (ca_mint(m->ca, name, &fresh, &fresh_len, err, errlen) < 0)
		return -1;
	if (e == NULL) {
		if (m->n < m->max) {
			e = &m->entries[m->n++];
		} else {
			victim = &m->entries[0];
			for (i = 1; i < m->n; i++)
				if (m->entries[i].last_used < victim->last_used)
					victim = &m->entries[i];
			e = victim;
			m->stats.evictions++;
		}
	}
	free(e->der);
	snprintf(e->name, sizeof(e->name), "%s", name);
	e->der = fresh;
	e->len = fresh_len;
	e->minted = now;
	e->last_used = ++m->tick;
	*der = e->der;
	*len = e->len;
	return 0;
}

void mint_get_stats(const struct mint_cache *m, struct mint_stats *st)
{
	*st = m->stats;
	st->entries = m->n;
}

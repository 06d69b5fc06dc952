/*
 * session_cache.c - bound TLS client sessions: a hash table over the keys, a least-recently-used list, a count
 * bound, and slots through which each connection stores the sessions it receives (TLS 1.3 tickets arrive after
 * the handshake, when the connection belongs to the relay).
 */
#include "session_cache.h"

#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *hnext;        /* hash chain */
	struct entry *prev, *next;  /* LRU list, most recently used first */
	char *key;
	uint32_t hash;
	uint8_t binding[SESSION_BINDING_LEN];
	uint64_t expires_ms;
	uint8_t *data;              /* aux, then the session */
	size_t aux_len;
	size_t len;                 /* of data */
};

struct session_cache {
	size_t max;
	size_t n_buckets;           /* a power of two */
	struct entry **buckets;
	struct entry *head, *tail;
	size_t refs;                /* the owner and every open slot */
	int closed;                 /* session_cache_free was called */
	struct session_cache_stats st;
};

struct session_slot {
	struct session_cache *c;
	uint8_t binding[SESSION_BINDING_LEN];
	uint64_t expires_ms;
	uint8_t aux[255];
	size_t aux_len;
	char key[];
};

/* key_hash - FNV-1a. */
static uint32_t key_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 16777619u;
	return h;
}

struct session_cache *session_cache_new(size_t max)
{
	struct session_cache *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->max = max;
	c->refs = 1;
	if (max > 0) {
		c->n_buckets = 16;
		while (c->n_buckets < max && c->n_buckets < (1u << 20))
			c->n_buckets *= 2;
		c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
		if (c->buckets == NULL) {
			free(c);
			return NULL;
		}
	}
	return c;
}

static void lru_unlink(struct session_cache *c, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct session_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

/* wipe_free - the session holds a master secret or a resumption PSK: never leave it in freed memory. */
static void wipe_free(uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/* entry_drop - unlink e from the table and the list and free it. */
static void entry_drop(struct session_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->hash & (c->n_buckets - 1)];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->st.entries--;
	wipe_free(e->data, e->len);
	free(e->key);
	free(e);
}

static struct entry *entry_find(const struct session_cache *c, const char *key, uint32_t hash)
{
	struct entry *e;

	if (c->n_buckets == 0)
		return NULL;
	for (e = c->buckets[hash & (c->n_buckets - 1)]; e != NULL; e = e->hnext)
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

/* cache_release - drop one reference; the last one frees the memory. */
static void cache_release(struct session_cache *c)
{
	if (--c->refs > 0)
		return;
	free(c->buckets);
	free(c);
}

void session_cache_free(struct session_cache *c)
{
	if (c == NULL || c->closed)
		return;
	c->closed = 1;
	while (c->head != NULL)
		entry_drop(c, c->head);
	cache_release(c);
}

int session_cache_get(struct session_cache *c, const char *key, const uint8_t binding[SESSION_BINDING_LEN],
		      uint64_t now_ms, struct session_found *out)
{
	uint32_t hash = key_hash(key);
	struct entry *e;

	memset(out, 0, sizeof(*out));
	if (c == NULL || c->closed)
		return -1;
	e = entry_find(c, key, hash);
	if (e == NULL) {
		c->st.misses++;
		return -1;
	}
	if (memcmp(e->binding, binding, SESSION_BINDING_LEN) != 0) {
		/* The TLSA RRset, its DNSSEC outcome, the method or the trust store changed: authenticate again. */
		c->st.stale++;
		entry_drop(c, e);
		return -1;
	}
	if (now_ms >= e->expires_ms) {
		c->st.expired++;
		entry_drop(c, e);
		return -1;
	}
	out->data = malloc(e->len);
	if (out->data == NULL)
		return -1;
	memcpy(out->data, e->data, e->len);
	out->aux_len = e->aux_len;
	out->sess_len = e->len - e->aux_len;
	out->expires_ms = e->expires_ms;
	lru_unlink(c, e);
	lru_push_front(c, e);
	c->st.hits++;
	return 0;
}

void session_found_clear(struct session_found *f)
{
	wipe_free(f->data, f->aux_len + f->sess_len);
	memset(f, 0, sizeof(*f));
}

void session_cache_remove(struct session_cache *c, const char *key)
{
	struct entry *e;

	if (c == NULL || c->closed)
		return;
	e = entry_find(c, key, key_hash(key));
	if (e != NULL)
		entry_drop(c, e);
}

void session_cache_get_stats(const struct session_cache *c, struct session_cache_stats *st)
{
	*st = c->st;
}

struct session_slot *session_slot_new(struct session_cache *c, const char *key,
				      const uint8_t binding[SESSION_BINDING_LEN], uint64_t expires_ms, const void *aux,
				      size_t aux_len)
{
	size_t kl = strlen(key);
	struct session_slot *s;

	if (c == NULL || c->closed || kl >= SESSION_KEY_MAX || aux_len > sizeof(s->aux))
		return NULL;
	s = malloc(sizeof(*s) + kl + 1);
	if (s == NULL)
		return NULL;
	s->c = c;
	memcpy(s->binding, binding, SESSION_BINDING_LEN);
	s->expires_ms = expires_ms;
	if (aux_len > 0)
		memcpy(s->aux, aux, aux_len);
	s->aux_len = aux_len;
	memcpy(s->key, key, kl + 1);
	c->refs++;
	return s;
}

void session_slot_store(struct session_slot *s, const uint8_t *sess, size_t len, uint64_t now_ms, uint32_t lifetime_s)
{
	struct session_cache *c = s->c;
	uint32_t hash = key_hash(s->key);
	uint64_t expires = s->expires_ms;
	struct entry *e;
	uint8_t *copy;

	if (c->closed || c->max == 0 || len == 0)
		return;
	if (lifetime_s > 0 && now_ms + (uint64_t)lifetime_s * 1000 < expires)
		expires = now_ms + (uint64_t)lifetime_s * 1000;
	if (now_ms >= expires)
		return;
	copy = malloc(s->aux_len + len);
	if (copy == NULL)
		return;
	memcpy(copy, s->aux, s->aux_len);
	memcpy(copy + s->aux_len, sess, len);
	e = entry_find(c, s->key, hash);
	if (e == NULL) {
		if (c->st.entries >= c->max) {
			c->st.evictions++;
			entry_drop(c, c->tail);
		}
		e = calloc(1, sizeof(*e));
		if (e == NULL || (e->key = strdup(s->key)) == NULL) {
			free(e);
			wipe_free(copy, s->aux_len + len);
			return;
		}
		e->hash = hash;
		e->hnext = c->buckets[hash & (c->n_buckets - 1)];
		c->buckets[hash & (c->n_buckets - 1)] = e;
		c->st.entries++;
	} else {
		lru_unlink(c, e);
		wipe_free(e->data, e->len);
	}
	memcpy(e->binding, s->binding, SESSION_BINDING_LEN);
	e->expires_ms = expires;
	e->data = copy;
	e->aux_len = s->aux_len;
	e->len = s->aux_len + len;
	lru_push_front(c, e);
	c->st.stored++;
}

void session_slot_free(struct session_slot *s)
{
	if (s == NULL)
		return;
	cache_release(s->c);
	free(s);
}

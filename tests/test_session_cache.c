/*
 * test_session_cache.c - the bound session cache (proxy/origin/session_cache.c): keying, the binding, expiry,
 * the LRU bound, slots outliving the cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "session_cache.h"

static const uint8_t B1[SESSION_BINDING_LEN] = {1};
static const uint8_t B2[SESSION_BINDING_LEN] = {2};

/* store - what a connection under (key, binding, bound) does when a session arrives at now. */
static void store(struct session_cache *c, const char *key, const uint8_t *binding, uint64_t bound, const char *sess,
		  uint64_t now, uint32_t lifetime)
{
	struct session_slot *s = session_slot_new(c, key, binding, bound, "aux", 3);

	assert_non_null(s);
	session_slot_store(s, (const uint8_t *)sess, strlen(sess), now, lifetime);
	session_slot_free(s);
}

/* get - the session under (key, binding) at now as a string, or NULL; *exp its expiry. */
static char *get(struct session_cache *c, const char *key, const uint8_t *binding, uint64_t now, uint64_t *exp)
{
	struct session_found f;
	char *str;

	if (session_cache_get(c, key, binding, now, &f) < 0) {
		assert_null(f.data);
		return NULL;
	}
	assert_int_equal(f.aux_len, 3);
	assert_memory_equal(f.data, "aux", 3);
	str = malloc(f.sess_len + 1);
	assert_non_null(str);
	memcpy(str, f.data + f.aux_len, f.sess_len);
	str[f.sess_len] = '\0';
	if (exp != NULL)
		*exp = f.expires_ms;
	session_found_clear(&f);
	assert_null(f.data);
	return str;
}

static void assert_get(struct session_cache *c, const char *key, const uint8_t *binding, uint64_t now,
		       const char *want)
{
	char *got = get(c, key, binding, now, NULL);

	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_keyed_and_bound(void **state)
{
	struct session_cache *c = session_cache_new(10);
	struct session_cache_stats st;

	(void)state;
	store(c, "www.example:443|sni|alpn|dane", B1, 10000, "S1", 0, 0);
	assert_get(c, "www.example:443|sni|alpn|dane", B1, 1, "S1");
	assert_get(c, "www.example:443|sni|alpn|dane", B1, 2, "S1");   /* a session is reused, not consumed */
	/* Another key: another connection (port, SNI, ALPN or policy differ). */
	assert_get(c, "www.example:8443|sni|alpn|dane", B1, 3, NULL);
	assert_get(c, "www.example:443|sni|alpn|pkix", B1, 3, NULL);
	session_cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 2);
	assert_int_equal(st.entries, 1);
	session_cache_free(c);
}

static void test_binding_change_drops(void **state)
{
	struct session_cache *c = session_cache_new(10);
	struct session_cache_stats st;

	(void)state;
	store(c, "k", B1, 10000, "S1", 0, 0);
	/* The current lookup has another TLSA digest or DNSSEC status: no resumption, and the entry is gone... */
	assert_get(c, "k", B2, 5, NULL);
	/* ...so that going back to the old records does not bring it back either. */
	assert_get(c, "k", B1, 6, NULL);
	session_cache_get_stats(c, &st);
	assert_int_equal(st.stale, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.entries, 0);
	/* A full handshake under the new binding stores a new entry. */
	store(c, "k", B2, 10000, "S2", 7, 0);
	assert_get(c, "k", B2, 8, "S2");
	assert_get(c, "k", B1, 9, NULL);
	session_cache_free(c);
}

static void test_expiry(void **state)
{
	struct session_cache *c = session_cache_new(10);
	struct session_cache_stats st;
	uint64_t exp = 0;
	char *s;

	(void)state;
	/* Bound by the DNS TTL of the authorising lookup: 1000 ms. */
	store(c, "k", B1, 1000, "S1", 0, 0);
	s = get(c, "k", B1, 999, &exp);
	assert_non_null(s);
	assert_int_equal(exp, 1000);
	free(s);
	assert_get(c, "k", B1, 1000, NULL);
	session_cache_get_stats(c, &st);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 0);
	/* The ticket's lifetime shortens the bound, never lengthens it. */
	store(c, "k", B1, 100000, "S2", 0, 2);
	assert_get(c, "k", B1, 1999, "S2");
	assert_get(c, "k", B1, 2000, NULL);
	store(c, "k", B1, 1000, "S3", 0, 3600);
	assert_get(c, "k", B1, 999, "S3");
	assert_get(c, "k", B1, 1000, NULL);
	/* Nothing is stored once the bound has passed. */
	store(c, "k", B1, 1000, "S4", 1000, 0);
	assert_get(c, "k", B1, 500, NULL);
	session_cache_free(c);
}

static void test_resumed_keeps_bound(void **state)
{
	struct session_cache *c = session_cache_new(10);
	uint64_t exp = 0;
	char *s;

	(void)state;
	store(c, "k", B1, 5000, "S1", 0, 0);
	s = get(c, "k", B1, 100, &exp);
	assert_non_null(s);
	free(s);
	/* The resumed connection receives a new ticket: stored under the bound of the full handshake. */
	store(c, "k", B1, exp, "S1b", 200, 7200);
	s = get(c, "k", B1, 300, &exp);
	assert_non_null(s);
	assert_string_equal(s, "S1b");
	assert_int_equal(exp, 5000);
	free(s);
	assert_get(c, "k", B1, 5000, NULL);
	session_cache_free(c);
}

static void test_lru_bound(void **state)
{
	struct session_cache *c = session_cache_new(3);
	struct session_cache_stats st;

	(void)state;
	store(c, "a", B1, 10000, "A", 0, 0);
	store(c, "b", B1, 10000, "B", 0, 0);
	store(c, "c", B1, 10000, "C", 0, 0);
	assert_get(c, "a", B1, 1, "A");          /* a is now the most recently used */
	store(c, "d", B1, 10000, "D", 2, 0);     /* evicts b, the least recently used */
	assert_get(c, "b", B1, 3, NULL);
	assert_get(c, "a", B1, 3, "A");
	assert_get(c, "c", B1, 3, "C");
	assert_get(c, "d", B1, 3, "D");
	store(c, "d", B1, 10000, "D2", 4, 0);    /* an update takes no new room */
	session_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.evictions, 1);
	assert_get(c, "d", B1, 5, "D2");
	session_cache_free(c);
}

static void test_many_keys(void **state)
{
	struct session_cache *c = session_cache_new(1000);
	struct session_cache_stats st;
	char key[32], val[32];
	int i;

	(void)state;
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "host%d.example:443", i);
		snprintf(val, sizeof(val), "S%d", i);
		store(c, key, B1, 10000, val, 0, 0);
	}
	session_cache_get_stats(c, &st);
	assert_int_equal(st.entries, 1000);
	assert_int_equal(st.evictions, 4000);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "host%d.example:443", i);
		snprintf(val, sizeof(val), "S%d", i);
		assert_get(c, key, B1, 1, i >= 4000 ? val : NULL);
	}
	session_cache_free(c);
}

static void test_disabled_and_remove(void **state)
{
	struct session_cache *c = session_cache_new(0);

	(void)state;
	store(c, "k", B1, 10000, "S1", 0, 0);
	assert_get(c, "k", B1, 1, NULL);
	session_cache_free(c);
	c = session_cache_new(4);
	store(c, "k", B1, 10000, "S1", 0, 0);
	session_cache_remove(c, "k");
	assert_get(c, "k", B1, 1, NULL);
	session_cache_remove(c, "nothing");
	session_cache_free(c);
}

static void test_slot_outlives_cache(void **state)
{
	struct session_cache *c = session_cache_new(4);
	struct session_slot *s = session_slot_new(c, "k", B1, 10000, NULL, 0);
	char longkey[SESSION_KEY_MAX + 10], bigaux[300] = {0};

	(void)state;
	assert_non_null(s);
	memset(longkey, 'x', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_null(session_slot_new(c, longkey, B1, 10000, NULL, 0));
	assert_null(session_slot_new(c, "k", B1, 10000, bigaux, sizeof(bigaux)));
	/* The proxy shuts down while a connection is open: its late ticket is dropped, nothing is touched. */
	session_cache_free(c);
	session_slot_store(s, (const uint8_t *)"late", 4, 1, 0);
	session_slot_free(s);
	session_slot_free(NULL);
	session_cache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyed_and_bound),
		cmocka_unit_test(test_binding_change_drops),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_resumed_keeps_bound),
		cmocka_unit_test(test_lru_bound),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_disabled_and_remove),
		cmocka_unit_test(test_slot_outlives_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

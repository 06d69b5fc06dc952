/*
 * test_dane.c - unit tests of the TLSA matching engine (proxy/dane.c) against shared/DANE.md sections 1-4.
 *
 * The group setup runs tests/certs/gen-certs.sh into a fresh temporary directory; every record is built here
 * from the DER and SPKI DER files openssl wrote (digests by wolfCrypt), never from the engine's own parsing.
 * Verification runs at a fixed time (2030-01-01) inside the generated validity windows, so no test depends on
 * the wall clock. Each case asserts the exact reason (by pointer), depth and record index.
 */
#define _XOPEN_SOURCE 700

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "dane.h"

#ifndef DANEPROXY_TESTS_DIR
#error "DANEPROXY_TESTS_DIR must name the tests/ source directory"
#endif

#define NOW_2030 ((time_t)1893456000) /* 2030-01-01T00:00:00Z, inside every "valid" window */
#define ANY (-100)                    /* expect(): do not check this field */
#define WWW "www.example.test"
#define MAX_TEST_RECORDS 32

struct fixture {
	char dir[PATH_MAX];
	struct dane_store *root_store;   /* holds root.pem */
	struct dane_store *other_store;  /* holds other-root.pem only */
};

/* A record set whose data buffers the test owns. */
struct recset {
	struct dane_tlsa r[MAX_TEST_RECORDS];
	uint8_t *owned[MAX_TEST_RECORDS];
	size_t n;
};

static const char *const www_names[] = { WWW };

/* fits - whether an snprintf into size bytes wrote everything. */
static int fits(int n, size_t size)
{
	return n >= 0 && (size_t)n < size;
}

/* slurp - the contents of a generated file (NUL-terminated, length in *len); fails the test when missing. */
static uint8_t *slurp(const struct fixture *f, const char *name, size_t *len)
{
	char path[PATH_MAX];
	FILE *fp;
	long size;
	uint8_t *buf;

	if (!fits(snprintf(path, sizeof(path), "%s/%s", f->dir, name), sizeof(path)))
		fail_msg("path too long: %s/%s", f->dir, name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		fail_msg("cannot open %s", path);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size >= 0);
	assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
	buf = test_malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
	buf[size] = '\0';
	fclose(fp);
	*len = (size_t)size;
	return buf;
}

/* load_chain - a chain from a generated PEM file; fails the test when the engine rejects it. */
static struct dane_chain *load_chain(const struct fixture *f, const char *name)
{
	struct dane_chain *chain = dane_chain_new();
	char err[256] = "";
	size_t len;
	uint8_t *pem = slurp(f, name, &len);

	assert_non_null(chain);
	if (dane_chain_load_pem(chain, (const char *)pem, len, err, sizeof(err)) != 0)
		fail_msg("dane_chain_load_pem(%s): %s", name, err);
	test_free(pem);
	return chain;
}

/* load_store - a trust store from a generated PEM file. */
static struct dane_store *load_store(const struct fixture *f, const char *name)
{
	struct dane_store *store = dane_store_new();
	char err[256] = "";
	size_t len;
	uint8_t *pem = slurp(f, name, &len);

	assert_non_null(store);
	if (dane_store_add_pem(store, (const char *)pem, len, err, sizeof(err)) != 1)
		fail_msg("dane_store_add_pem(%s): %s", name, err);
	test_free(pem);
	return store;
}

/* rs_add_raw - append a record with a copy of data (len 0 gives an empty record with a non-NULL pointer). */
static void rs_add_raw(struct recset *rs, int usage, int selector, int mtype, const uint8_t *data, size_t len)
{
	uint8_t *copy;

	assert_true(rs->n < MAX_TEST_RECORDS);
	copy = test_malloc(len + 1);
	assert_non_null(copy);
	if (len > 0)
		memcpy(copy, data, len);
	rs->owned[rs->n] = copy;
	rs->r[rs->n].usage = (uint8_t)usage;
	rs->r[rs->n].selector = (uint8_t)selector;
	rs->r[rs->n].mtype = (uint8_t)mtype;
	rs->r[rs->n].data = copy;
	rs->r[rs->n].len = len;
	rs->n++;
}

/*
 * rs_add - append the record "usage selector mtype" for generated certificate cert: selector 0 uses cert.der,
 * anything else cert.spki.der; mtype 0 is the full data, 1 SHA-256, 2 SHA-512, anything else 32 bytes of SHA-256.
 */
static void rs_add(const struct fixture *f, struct recset *rs, int usage, int selector, int mtype, const char *cert)
{
	char name[PATH_MAX];
	uint8_t digest[64];
	size_t len;
	uint8_t *der;

	if (!fits(snprintf(name, sizeof(name), "%s%s", cert, selector == 0 ? ".der" : ".spki.der"), sizeof(name)))
		fail_msg("name too long: %s", cert);
	der = slurp(f, name, &len);
	if (mtype == DANE_MTYPE_FULL) {
		rs_add_raw(rs, usage, selector, mtype, der, len);
	} else if (mtype == DANE_MTYPE_SHA512) {
		assert_int_equal(wc_Sha512Hash(der, (word32)len, digest), 0);
		rs_add_raw(rs, usage, selector, mtype, digest, 64);
	} else {
		assert_int_equal(wc_Sha256Hash(der, (word32)len, digest), 0);
		rs_add_raw(rs, usage, selector, mtype, digest, 32);
	}
	test_free(der);
}

/* rs_free - free the data of every record. */
static void rs_free(struct recset *rs)
{
	for (size_t i = 0; i < rs->n; i++)
		test_free(rs->owned[i]);
	rs->n = 0;
}

/* opts_at - options at the fixed verification time with an optional store. */
static struct dane_options opts_at(const struct dane_store *store)
{
	struct dane_options o;

	memset(&o, 0, sizeof(o));
	o.now = NOW_2030;
	o.store = store;
	return o;
}

/* run_names - verify chain file against rs for names; dane_verify must reach a verdict. */
static void run_names(const struct fixture *f, const char *chain_file, const struct recset *rs,
		      const char *const *names, size_t n_names, const struct dane_options *opts,
		      struct dane_result *res)
{
	struct dane_chain *chain = load_chain(f, chain_file);

	memset(res, 0x5a, sizeof(*res));
	assert_int_equal(dane_verify(chain, rs->r, rs->n, names, n_names, opts, res), 0);
	dane_chain_free(chain);
}

/* run - verify for www.example.test. */
static void run(const struct fixture *f, const char *chain_file, const struct recset *rs,
		const struct dane_options *opts, struct dane_result *res)
{
	run_names(f, chain_file, rs, www_names, 1, opts, res);
}

/* reason_name - a printable name for a reason pointer. */
static const char *reason_name(const char *r)
{
	static const struct { const char *p; const char *name; } names[] = {
		{ dane_ok_dane_ee, "dane_ok_dane_ee" }, { dane_ok_dane_ta, "dane_ok_dane_ta" },
		{ dane_ok_pkix_ta, "dane_ok_pkix_ta" }, { dane_ok_pkix_ee, "dane_ok_pkix_ee" },
		{ dane_ok_pkix, "dane_ok_pkix" }, { dane_err_empty_chain, "dane_err_empty_chain" },
		{ dane_err_no_usable, "dane_err_no_usable" }, { dane_err_no_match, "dane_err_no_match" },
		{ dane_err_name_mismatch, "dane_err_name_mismatch" }, { dane_err_expired, "dane_err_expired" },
		{ dane_err_not_yet_valid, "dane_err_not_yet_valid" }, { dane_err_not_ca, "dane_err_not_ca" },
		{ dane_err_bad_usage, "dane_err_bad_usage" }, { dane_err_bad_signature, "dane_err_bad_signature" },
		{ dane_err_pkix_untrusted, "dane_err_pkix_untrusted" },
		{ dane_err_pkix_no_store, "dane_err_pkix_no_store" },
		{ dane_err_pkix_no_match, "dane_err_pkix_no_match" }, { dane_err_internal, "dane_err_internal" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].p == r)
			return names[i].name;
	return "(not a dane reason constant)";
}

/* expect_at - check a verdict; ANY skips depth or record. */
static void expect_at(const struct dane_result *res, int authenticated, const char *reason, int depth, int record,
		      const char *file, int line)
{
	int bad = 0;

	if (res->authenticated != authenticated || res->reason != reason)
		bad = 1;
	if (depth != ANY && res->depth != depth)
		bad = 1;
	if (record != ANY && res->record != record)
		bad = 1;
	if (!bad)
		return;
	print_error("expected authenticated=%d reason=%s depth=%d record=%d\n"
		    "     got authenticated=%d reason=%s depth=%d record=%d usable=%d unusable=%d chain_len=%d\n"
		    "  detail: %.256s\n",
		    authenticated, reason_name(reason), depth, record, res->authenticated, reason_name(res->reason),
		    res->depth, res->record, res->usable_records, res->unusable_records, res->chain_len,
		    memchr(res->detail, '\0', sizeof(res->detail)) ? res->detail : "(not terminated)");
	_fail(file, line);
}

#define expect(res, auth, reason, depth, record) expect_at(res, auth, reason, depth, record, __FILE__, __LINE__)

/* ---------------------------------------------------------------- fixture */

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static int group_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");
	char cmd[PATH_MAX * 2 + 64];

	if (f == NULL)
		return -1;
	if (!fits(snprintf(f->dir, sizeof(f->dir), "%s/daneproxy-test-dane-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp"),
		  sizeof(f->dir)) ||
	    mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	if (!fits(snprintf(cmd, sizeof(cmd), "sh '%s/certs/gen-certs.sh' '%s'", DANEPROXY_TESTS_DIR, f->dir),
		  sizeof(cmd)) ||
	    system(cmd) != 0) {
		fprintf(stderr, "gen-certs.sh failed\n");
		nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(f);
		return -1;
	}
	f->root_store = load_store(f, "root.pem");
	f->other_store = load_store(f, "other-root.pem");
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;

	if (f == NULL)
		return 0;
	dane_store_free(f->root_store);
	dane_store_free(f->other_store);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---------------------------------------------------------------- chains and stores */

static void test_chain_load_pem(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c;
	const uint8_t *der;
	size_t len, flen;
	uint8_t *want;

	c = load_chain(f, "chain-leaf-int1.pem");
	assert_int_equal(dane_chain_len(c), 2);
	der = dane_chain_der(c, 0, &len);
	want = slurp(f, "leaf.der", &flen);
	assert_int_equal(len, flen);
	assert_memory_equal(der, want, len);
	test_free(want);
	der = dane_chain_der(c, 1, &len);
	want = slurp(f, "int1.der", &flen);
	assert_int_equal(len, flen);
	assert_memory_equal(der, want, len);
	test_free(want);
	dane_chain_free(c);

	c = load_chain(f, "chain-leaf2-int2-int1.pem");
	assert_int_equal(dane_chain_len(c), 3);
	dane_chain_free(c);
	c = load_chain(f, "chain-leaf-only.pem");
	assert_int_equal(dane_chain_len(c), 1);
	dane_chain_free(c);
	dane_chain_free(NULL);
}

static void test_chain_load_single_der(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c = dane_chain_new();
	char err[256] = "";
	size_t len, got;
	uint8_t *der = slurp(f, "leaf.der", &len);

	assert_non_null(c);
	assert_int_equal(dane_chain_load_pem(c, (const char *)der, len, err, sizeof(err)), 0);
	assert_int_equal(dane_chain_len(c), 1);
	assert_memory_equal(dane_chain_der(c, 0, &got), der, len);
	assert_int_equal(got, len);
	test_free(der);
	dane_chain_free(c);
}

static void test_chain_add_der(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c = dane_chain_new();
	char err[256] = "";
	size_t len;
	uint8_t *der = slurp(f, "int1.der", &len);
	static const uint8_t garbage[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

	assert_int_equal(dane_chain_add_der(c, der, len, err, sizeof(err)), 0);
	assert_int_equal(dane_chain_len(c), 1);
	err[0] = '\0';
	assert_int_equal(dane_chain_add_der(c, garbage, sizeof(garbage), err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_int_equal(dane_chain_add_der(c, der, len - 1, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(dane_chain_len(c), 1);
	test_free(der);
	dane_chain_free(c);
}

static void test_chain_load_truncated_pem(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c = dane_chain_new();
	char err[256] = "";
	size_t len;
	uint8_t *pem = slurp(f, "leaf.pem", &len);
	char *end = strstr((char *)pem, "-----END");

	assert_non_null(end);
	assert_int_equal(dane_chain_load_pem(c, (const char *)pem, (size_t)(end - (char *)pem), err, sizeof(err)),
			 -1);
	assert_true(err[0] != '\0');
	test_free(pem);
	dane_chain_free(c);
}

static void test_chain_load_garbage(void **state)
{
	struct dane_chain *c = dane_chain_new();
	char err[256] = "";
	static const char text[] = "this is not a certificate\n";
	static const char bad_b64[] = "-----BEGIN CERTIFICATE-----\n@@@@ not base64 @@@@\n-----END CERTIFICATE-----\n";

	(void)state;
	assert_int_equal(dane_chain_load_pem(c, text, sizeof(text) - 1, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	err[0] = '\0';
	assert_int_equal(dane_chain_load_pem(c, bad_b64, sizeof(bad_b64) - 1, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(dane_chain_len(c), 0);
	dane_chain_free(c);
}

static void test_chain_too_long(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c = dane_chain_new();
	char err[256] = "";
	size_t len;
	uint8_t *pem = slurp(f, "int1.pem", &len);
	char *many = test_malloc(len * (DANE_MAX_CHAIN + 1));

	assert_non_null(many);
	for (size_t i = 0; i < DANE_MAX_CHAIN + 1; i++)
		memcpy(many + i * len, pem, len);
	assert_int_equal(dane_chain_load_pem(c, many, len * (DANE_MAX_CHAIN + 1), err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_true(dane_chain_len(c) <= DANE_MAX_CHAIN);
	dane_chain_free(c);

	c = dane_chain_new();
	assert_int_equal(dane_chain_load_pem(c, many, len * DANE_MAX_CHAIN, err, sizeof(err)), 0);
	assert_int_equal(dane_chain_len(c), DANE_MAX_CHAIN);
	dane_chain_free(c);
	test_free(many);
	test_free(pem);
}

/* The engine's SPKI must be byte-identical to what openssl extracts (EC and RSA). */
static void test_chain_spki_matches_openssl(void **state)
{
	const struct fixture *f = *state;
	static const char *const certs[][2] = {
		{ "chain-leaf-int1.pem", "leaf.spki.der" },
		{ "chain-rsa-leaf-int1.pem", "rsa-leaf.spki.der" },
	};

	for (size_t i = 0; i < 2; i++) {
		struct dane_chain *c = load_chain(f, certs[i][0]);
		size_t len = 0, wlen;
		const uint8_t *spki = dane_chain_spki(c, 0, &len);
		uint8_t *want = slurp(f, certs[i][1], &wlen);

		assert_non_null(spki);
		assert_int_equal(len, wlen);
		assert_memory_equal(spki, want, wlen);
		test_free(want);
		spki = dane_chain_spki(c, 1, &len);
		want = slurp(f, "int1.spki.der", &wlen);
		assert_non_null(spki);
		assert_int_equal(len, wlen);
		assert_memory_equal(spki, want, wlen);
		test_free(want);
		dane_chain_free(c);
	}
}

/*
 * The chain keeps each certificate's SPKI as found by its own DER walk (no X509 object is built for a DANE-EE
 * match): byte for byte what wolfSSL_X509_get_pubkey_buffer gives, over every root of the system bundle (RSA, EC,
 * several sizes and encodings) and the generated chains.
 */
static void test_chain_spki_matches_wolfssl(void **state)
{
	static const char bundle_path[] = "/etc/ssl/certs/ca-certificates.crt";
	static const char end_marker[] = "-----END CERTIFICATE-----";
	const struct fixture *f = *state;
	FILE *fp = fopen(bundle_path, "rb");
	char *bundle, *p, *end;
	size_t len, checked = 0;
	long size;

	(void)f;
	if (fp == NULL) {
		print_message("no %s: only the generated chains are compared (test_chain_spki_matches_openssl)\n", bundle_path);
		return;
	}
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size > 0);
	rewind(fp);
	bundle = test_malloc((size_t)size + 1);
	assert_int_equal(fread(bundle, 1, (size_t)size, fp), (size_t)size);
	bundle[size] = '\0';
	fclose(fp);
	for (p = bundle; (end = strstr(p, end_marker)) != NULL; p = end) {
		struct dane_chain *c = dane_chain_new();
		const uint8_t *der, *spki;
		const unsigned char *dp;
		size_t der_len, spki_len;
		unsigned char want[4096];
		int want_len = sizeof(want);
		char err[256];
		WOLFSSL_X509 *x;

		end += sizeof(end_marker) - 1;
		assert_non_null(c);
		if (dane_chain_load_pem(c, p, (size_t)(end - p), err, sizeof(err)) != 0) {
			dane_chain_free(c);   /* one wolfSSL cannot parse: the engine skips it as the store does */
			continue;
		}
		der = dane_chain_der(c, 0, &der_len);
		spki = dane_chain_spki(c, 0, &spki_len);
		dp = der;
		x = wolfSSL_d2i_X509(NULL, &dp, (int)der_len);
		if (x != NULL) {
			assert_int_equal(wolfSSL_X509_get_pubkey_buffer(x, want, &want_len), WOLFSSL_SUCCESS);
			len = (size_t)want_len;
			if (len != spki_len || memcmp(want, spki, len) != 0)
				fail_msg("certificate %zu of the bundle: SPKI differs from wolfSSL's", checked);
			checked++;
			wolfSSL_X509_free(x);
		}
		dane_chain_free(c);
	}
	test_free(bundle);
	print_message("%zu certificates compared\n", checked);
	assert_true(checked > 50);
}

static void test_store_add_pem(void **state)
{
	const struct fixture *f = *state;
	struct dane_store *s = dane_store_new();
	char err[256] = "";
	size_t len;
	uint8_t *pem = slurp(f, "chain-leaf-int1-root.pem", &len);
	static const char text[] = "no certificates here\n";

	assert_non_null(s);
	assert_int_equal(dane_store_count(s), 0);
	assert_int_equal(dane_store_add_pem(s, (const char *)pem, len, err, sizeof(err)), 3);
	assert_int_equal(dane_store_count(s), 3);
	assert_int_equal(dane_store_add_pem(s, text, sizeof(text) - 1, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(dane_store_count(f->root_store), 1);
	test_free(pem);
	dane_store_free(s);
	dane_store_free(NULL);
}

static void test_empty_chain(void **state)
{
	const struct fixture *f = *state;
	struct dane_chain *c = dane_chain_new();
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "leaf");
	assert_int_equal(dane_verify(c, rs.r, rs.n, www_names, 1, &o, &res), 0);
	expect(&res, 0, dane_err_empty_chain, -1, -1);
	o.store = f->root_store;
	assert_int_equal(dane_verify_pkix(c, www_names, 1, &o, &res), 0);
	expect(&res, 0, dane_err_empty_chain, -1, -1);
	rs_free(&rs);
	dane_chain_free(c);
}

/* ---------------------------------------------------------------- usage x selector x mtype matrix */

/*
 * matrix_match - a usable "u s m" record for the certificate the usage may match (leaf for 3/1, int1 for 2/0),
 * after a non-matching decoy of the same kind: authenticated by the right reason at the right depth, record 1.
 */
static void matrix_match(const struct fixture *f, int u, int s, int m)
{
	static const char *const target[4] = { "int1", "leaf", "int1", "leaf" };
	const char *const reason[4] = { dane_ok_pkix_ta, dane_ok_pkix_ee, dane_ok_dane_ta, dane_ok_dane_ee };
	static const int depth[4] = { 1, 0, 1, 0 };
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(u <= 1 ? f->root_store : NULL);
	struct dane_result res;

	rs_add(f, &rs, u, s, m, "other-root");
	rs_add(f, &rs, u, s, m, target[u]);
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, reason[u], depth[u], 1);
	assert_int_equal(res.usable_records, 2);
	assert_int_equal(res.unusable_records, 0);
	if (u == DANE_USAGE_DANE_TA)
		assert_int_equal(res.chain_len, 2);
	rs_free(&rs);
}

/*
 * matrix_nomatch - the same record for the certificate the usage must NOT match (usage 3/1 never match an
 * issuer, usage 2/0 never match the leaf): not authenticated, no match, no depth, no record.
 */
static void matrix_nomatch(const struct fixture *f, int u, int s, int m)
{
	static const char *const target[4] = { "leaf", "int1", "leaf", "int1" };
	const char *const reason[4] = { dane_err_pkix_no_match, dane_err_pkix_no_match, dane_err_no_match,
					dane_err_no_match };
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(u <= 1 ? f->root_store : NULL);
	struct dane_result res;

	rs_add(f, &rs, u, s, m, target[u]);
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, reason[u], -1, -1);
	assert_int_equal(res.usable_records, 1);
	rs_free(&rs);
}

#define MATRIX(u, s, m)                                                          \
	static void test_matrix_##u##s##m##_match(void **state)                   \
	{                                                                         \
		matrix_match(*state, u, s, m);                                    \
	}                                                                         \
	static void test_matrix_##u##s##m##_wrong_cert(void **state)              \
	{                                                                         \
		matrix_nomatch(*state, u, s, m);                                  \
	}
#define MATRIX_U(u) MATRIX(u, 0, 0) MATRIX(u, 0, 1) MATRIX(u, 0, 2) MATRIX(u, 1, 0) MATRIX(u, 1, 1) MATRIX(u, 1, 2)
MATRIX_U(0)
MATRIX_U(1)
MATRIX_U(2)
MATRIX_U(3)
#define MATRIX_ENTRY(u, s, m) cmocka_unit_test(test_matrix_##u##s##m##_match), \
	cmocka_unit_test(test_matrix_##u##s##m##_wrong_cert)
#define MATRIX_ENTRIES(u) MATRIX_ENTRY(u, 0, 0), MATRIX_ENTRY(u, 0, 1), MATRIX_ENTRY(u, 0, 2), \
	MATRIX_ENTRY(u, 1, 0), MATRIX_ENTRY(u, 1, 1), MATRIX_ENTRY(u, 1, 2)

/* DANE-EE and DANE-TA also work for an RSA-2048 leaf. */
static void test_rsa_leaf(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "rsa-leaf");
	run(f, "chain-rsa-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 0, 2, "rsa-leaf");
	run(f, "chain-rsa-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 2, 1, 1, "int1");
	run(f, "chain-rsa-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 1, 1, "leaf"); /* the EC leaf's key does not match the RSA leaf */
	run(f, "chain-rsa-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
}

/* ---------------------------------------------------------------- usability (DANE.md section 1) */

static void expect_unusable(const struct dane_tlsa *rec, const struct dane_options *o)
{
	const char *why = NULL;

	assert_int_equal(dane_record_usable(rec, o, &why), 0);
	assert_non_null(why);
	assert_true(why[0] != '\0');
}

static void expect_usable(const struct dane_tlsa *rec, const struct dane_options *o)
{
	const char *why = NULL;

	assert_int_equal(dane_record_usable(rec, o, &why), 1);
}

static void test_record_usable_valid(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);

	for (int u = 0; u <= 3; u++)
		for (int s = 0; s <= 1; s++)
			for (int m = 0; m <= 2; m++)
				rs_add(f, &rs, u, s, m, "leaf");
	for (size_t i = 0; i < rs.n; i++) {
		const char *why = NULL;

		if (dane_record_usable(&rs.r[i], &o, &why) != 1)
			fail_msg("record %u %u %u (%zu bytes) should be usable, engine says: %s", rs.r[i].usage,
				 rs.r[i].selector, rs.r[i].mtype, rs.r[i].len, why != NULL ? why : "(no reason)");
	}
	rs_free(&rs);
}

/* Builds one record of every unusable kind; returns how many. */
static size_t add_unusable(const struct fixture *f, struct recset *rs)
{
	static const uint8_t junk[] = { 0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef };
	uint8_t digest[64];
	size_t len;
	uint8_t *der;

	memset(digest, 0xab, sizeof(digest));
	rs_add(f, rs, 4, 1, 1, "leaf");                 /* usage 4 */
	rs_add(f, rs, 255, 1, 1, "leaf");               /* usage 255 */
	rs_add(f, rs, 3, 2, 1, "leaf");                 /* selector 2 */
	rs_add(f, rs, 3, 1, 3, "leaf");                 /* mtype 3 */
	rs_add(f, rs, 3, 1, 255, "leaf");               /* mtype 255 */
	rs_add_raw(rs, 3, 1, 1, digest, 31);            /* short SHA-256 */
	rs_add_raw(rs, 3, 1, 1, digest, 33);            /* long SHA-256 */
	rs_add_raw(rs, 3, 1, 2, digest, 32);            /* SHA-512 with SHA-256's length */
	rs_add_raw(rs, 3, 1, 2, digest, 63);            /* short SHA-512 */
	rs_add_raw(rs, 3, 1, 0, digest, 0);             /* empty */
	rs_add_raw(rs, 3, 0, 0, junk, sizeof(junk));    /* full cert that is not DER */
	rs_add_raw(rs, 3, 1, 0, junk, sizeof(junk));    /* full SPKI that is not DER */
	der = slurp(f, "leaf.der", &len);               /* a certificate followed by a stray byte */
	der = test_realloc(der, len + 1);
	assert_non_null(der);
	der[len] = 0;
	rs_add_raw(rs, 3, 0, 0, der, len + 1);
	rs_add_raw(rs, 3, 1, 0, der, len);              /* a certificate is not an SPKI */
	test_free(der);
	der = slurp(f, "leaf.spki.der", &len);          /* an SPKI is not a certificate */
	rs_add_raw(rs, 3, 0, 0, der, len);
	der = test_realloc(der, len + 1);               /* an SPKI followed by a stray byte */
	assert_non_null(der);
	der[len] = 0;
	rs_add_raw(rs, 3, 1, 0, der, len + 1);
	test_free(der);
	return 16;
}

static void test_record_unusable_kinds(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_tlsa null_data = { 3, 1, 1, NULL, 0 };
	size_t n = add_unusable(f, &rs);

	assert_int_equal(n, rs.n);
	for (size_t i = 0; i < rs.n; i++) {
		const char *why = NULL;

		if (dane_record_usable(&rs.r[i], &o, &why) != 0)
			fail_msg("record %zu (%u %u %u, %zu bytes) should be unusable", i, rs.r[i].usage,
				 rs.r[i].selector, rs.r[i].mtype, rs.r[i].len);
		assert_non_null(why);
	}
	expect_unusable(&null_data, &o);
	rs_free(&rs);
}

static void test_record_usable_smtp(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);

	o.smtp = 1;
	rs_add(f, &rs, 0, 0, 1, "int1");
	rs_add(f, &rs, 1, 1, 1, "leaf");
	rs_add(f, &rs, 2, 0, 1, "int1");
	rs_add(f, &rs, 3, 1, 1, "leaf");
	expect_unusable(&rs.r[0], &o);
	expect_unusable(&rs.r[1], &o);
	expect_usable(&rs.r[2], &o);
	expect_usable(&rs.r[3], &o);
	o.smtp = 0;
	expect_usable(&rs.r[0], &o);
	expect_usable(&rs.r[1], &o);
	rs_free(&rs);
}

/* Each unusable kind alone: "secure RRset, none usable" is its own outcome. */
static void test_verify_each_unusable_alone(void **state)
{
	const struct fixture *f = *state;
	struct recset all = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);

	add_unusable(f, &all);
	for (size_t i = 0; i < all.n; i++) {
		struct dane_chain *c = load_chain(f, "chain-leaf-int1.pem");
		struct dane_result res;

		assert_int_equal(dane_verify(c, &all.r[i], 1, www_names, 1, &o, &res), 0);
		if (res.authenticated || res.reason != dane_err_no_usable || res.usable_records != 0 ||
		    res.unusable_records != 1)
			fail_msg("record %zu (%u %u %u, %zu bytes): authenticated=%d reason=%s usable=%d unusable=%d",
				 i, all.r[i].usage, all.r[i].selector, all.r[i].mtype, all.r[i].len,
				 res.authenticated, reason_name(res.reason), res.usable_records,
				 res.unusable_records);
		expect(&res, 0, dane_err_no_usable, -1, -1);
		dane_chain_free(c);
	}
	rs_free(&all);
}

static void test_verify_all_unusable(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;
	size_t n = add_unusable(f, &rs);

	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_usable, -1, -1);
	assert_int_equal(res.usable_records, 0);
	assert_int_equal(res.unusable_records, (int)n);
	rs_free(&rs);
}

/* Usable and unusable counts, and a record index that counts unusable records too. */
static void test_verify_counts_and_index(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	uint8_t digest[64];

	memset(digest, 0xab, sizeof(digest));
	rs_add(f, &rs, 4, 1, 1, "leaf");          /* 0: unusable */
	rs_add_raw(&rs, 3, 1, 1, digest, 20);     /* 1: unusable */
	rs_add(f, &rs, 3, 0, 1, "other-root");    /* 2: usable, no match */
	rs_add(f, &rs, 3, 2, 1, "leaf");          /* 3: unusable */
	rs_add(f, &rs, 3, 1, 1, "leaf");          /* 4: usable, matches */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 4);
	assert_int_equal(res.usable_records, 2);
	assert_int_equal(res.unusable_records, 3);

	rs.n = 4; /* without the matching record */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	assert_int_equal(res.usable_records, 1);
	assert_int_equal(res.unusable_records, 3);
	rs.n = 5;
	rs_free(&rs);
}

/* No records at all. */
static void test_verify_no_records(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_usable, -1, -1);
	assert_int_equal(res.usable_records, 0);
	assert_int_equal(res.unusable_records, 0);
}

/* ---------------------------------------------------------------- rollover and digest agility */

static void test_rollover(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "leaf-wrongname"); /* old key */
	rs_add(f, &rs, 3, 1, 1, "leaf");           /* new key */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 1);
	assert_int_equal(res.usable_records, 2);
	rs_free(&rs);

	rs_add(f, &rs, 3, 1, 1, "leaf");           /* new key first */
	rs_add(f, &rs, 3, 1, 1, "leaf-wrongname");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);

	rs_add(f, &rs, 2, 1, 1, "other-root");     /* TA rollover */
	rs_add(f, &rs, 2, 1, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 1);
	rs_free(&rs);
}

/* A non-matching SHA-512 record hides a matching SHA-256 record of the same (usage, selector). */
static void test_agility_strongest_only(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 2, "other-root");
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	assert_int_equal(res.usable_records, 2);
	rs_free(&rs);

	rs_add(f, &rs, 2, 0, 1, "int1");           /* order in the RRset does not matter */
	rs_add(f, &rs, 2, 0, 2, "other-root");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
}

static void test_agility_strongest_matches(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "other-root");
	rs_add(f, &rs, 3, 1, 2, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 1);
	rs_free(&rs);
}

/* (usage, selector) groups are independent: another group can still match. */
static void test_agility_groups_independent(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 2, "other-root");
	rs_add(f, &rs, 3, 1, 1, "leaf");
	rs_add(f, &rs, 3, 0, 1, "leaf");           /* group (3,0): only SHA-256 present */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 2);
	rs_free(&rs);

	rs_add(f, &rs, 2, 0, 2, "other-root");
	rs_add(f, &rs, 2, 0, 1, "int1");
	rs_add(f, &rs, 2, 1, 1, "int1");           /* group (2,1) */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 2);
	rs_free(&rs);

	rs_add(f, &rs, 3, 1, 2, "other-root");     /* group (3,1) has nothing to do with group (2,1) */
	rs_add(f, &rs, 2, 1, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 1);
	rs_free(&rs);
}

/* Full-data records are always compared, whatever digests the group holds. */
static void test_agility_full_always_compared(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 2, "other-root");
	rs_add(f, &rs, 3, 1, 0, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 1);
	rs_free(&rs);
}

/* An unusable (wrong-length) SHA-512 record is not "the strongest digest present". */
static void test_agility_ignores_unusable_stronger(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	uint8_t digest[32];

	memset(digest, 0xab, sizeof(digest));
	rs_add_raw(&rs, 3, 1, 2, digest, 32);
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 1);
	assert_int_equal(res.usable_records, 1);
	assert_int_equal(res.unusable_records, 1);
	rs_free(&rs);
}

/* digest_order {1, 2}: SHA-256 is now the strongest. */
static void test_agility_digest_order(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	o.digest_order[0] = DANE_MTYPE_SHA256;
	o.digest_order[1] = DANE_MTYPE_SHA512;
	rs_add(f, &rs, 3, 1, 2, "other-root");
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 1);
	rs_free(&rs);

	rs_add(f, &rs, 3, 1, 1, "other-root");
	rs_add(f, &rs, 3, 1, 2, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);

	o.digest_order[0] = DANE_MTYPE_SHA512;     /* the explicit default */
	o.digest_order[1] = DANE_MTYPE_SHA256;
	rs_add(f, &rs, 3, 1, 2, "other-root");
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
}

/* ---------------------------------------------------------------- DANE-EE (DANE.md 3.1) */

static void test_ee_expired_leaf(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "leaf-expired");
	run(f, "chain-expired-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 0, 1, "leaf-notyet");
	run(f, "chain-notyet-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	o.ee_namecheck = 1; /* the name check does not bring date checks with it */
	run(f, "chain-notyet-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
}

static void test_ee_wrong_name_default(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "leaf-wrongname");
	run(f, "chain-wrongname-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	run_names(f, "chain-wrongname-int1.pem", &rs, NULL, 0, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
}

static void test_ee_namecheck_mismatch(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	o.ee_namecheck = 1;
	rs_add(f, &rs, 3, 1, 1, "leaf-wrongname");
	run(f, "chain-wrongname-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
}

static void test_ee_namecheck_match(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	static const char *const names[] = { "other.example.test" };

	o.ee_namecheck = 1;
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 1, 1, "leaf-wrongname");
	run_names(f, "chain-wrongname-int1.pem", &rs, names, 1, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
}

/* No key usage, EKU, signature or chain checks for DANE-EE. */
static void test_ee_no_pkix_checks(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "leaf-clientauth");
	run(f, "chain-clientauth-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 1, 1, "leaf-impostor");
	run(f, "chain-impostor.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	rs_add(f, &rs, 3, 0, 0, "leaf-other-root");
	run(f, "chain-other-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
}

static void test_ee_self_signed(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 3, 1, 1, "selfsigned");
	run(f, "chain-selfsigned.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 0);
	rs_free(&rs);
	/* A usage-2 record never matches the leaf, not even a self-signed one. */
	rs_add(f, &rs, 2, 0, 1, "selfsigned");
	rs_add(f, &rs, 2, 1, 1, "selfsigned");
	run(f, "chain-selfsigned.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
}

/* ---------------------------------------------------------------- DANE-TA (DANE.md 3.3, 3.4) */

static void test_ta_depth2(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-leaf2-int2-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	assert_int_equal(res.chain_len, 3);
	rs_free(&rs);
	rs_add(f, &rs, 2, 1, 2, "int2");
	run(f, "chain-leaf2-int2-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	assert_int_equal(res.chain_len, 2);
	rs_free(&rs);
}

/* The lowest certificate that matches becomes the anchor. */
static void test_ta_lowest_anchor(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	rs_add(f, &rs, 2, 0, 1, "int2");
	run(f, "chain-leaf2-int2-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 1);
	rs_free(&rs);
}

static void test_ta_root_sent(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 1, 1, "root");
	run(f, "chain-leaf-int1-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	assert_int_equal(res.chain_len, 3);
	rs_free(&rs);
}

/* The server sends only the leaf; a "2 0 0" record supplies the missing intermediate. */
static void test_ta_full_cert_supplies_issuer(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 0, "int1");
	run(f, "chain-leaf-only.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	assert_int_equal(res.chain_len, 2);
	rs_free(&rs);

	rs_add(f, &rs, 2, 0, 0, "root");           /* root not sent, above the sent int1 */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	assert_int_equal(res.chain_len, 3);
	rs_free(&rs);

	rs_add(f, &rs, 2, 0, 0, "int1");           /* missing link in the middle */
	run(f, "chain-leaf2-int2.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	rs_free(&rs);
}

/* A digest can only match a certificate that was sent. */
static void test_ta_digest_needs_sent_cert(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	rs_add(f, &rs, 2, 1, 2, "int1");
	run(f, "chain-leaf-only.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
	rs_add(f, &rs, 2, 1, 1, "root");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
	/* int1 comes from the "2 0 0" record (index 1): the digest record (index 0) must not be the one reported. */
	rs_add(f, &rs, 2, 0, 1, "int1");
	rs_add(f, &rs, 2, 0, 0, "int1");
	run(f, "chain-leaf-only.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 1);
	rs_free(&rs);
}

/* "2 1 0": the top certificate of the chain must verify with the bare key; depth = that certificate's index. */
static void test_ta_bare_key(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 1, 0, "root");           /* issuer of int1, not sent */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);

	rs_add(f, &rs, 2, 1, 0, "int1");           /* issuer of the leaf; only the leaf is sent */
	run(f, "chain-leaf-only.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 0, 0);
	rs_free(&rs);

	rs_add(f, &rs, 2, 1, 0, "other-root");     /* a key that signed nothing here */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);
}

/* Bare key: the chain below it still gets every check (here: the name). */
static void test_ta_bare_key_name_mismatch(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	static const char *const names[] = { "mail.example.test" };

	rs_add(f, &rs, 2, 1, 0, "root");
	run_names(f, "chain-leaf-int1.pem", &rs, names, 1, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
}

static void test_ta_name_mismatch(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	static const char *const names[] = { "other.example.test" };

	rs_add(f, &rs, 2, 0, 1, "int1");
	run_names(f, "chain-leaf-int1.pem", &rs, names, 1, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	run(f, "chain-wrongname-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	run_names(f, "chain-leaf-int1.pem", &rs, NULL, 0, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
}

/* Reference identifiers: the TLSA base domain, then the original host name; either may match. */
static void test_ta_two_reference_names(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	static const char *const second[] = { "cdn.example.net", WWW };
	static const char *const first[] = { WWW, "alias.example.net" };
	static const char *const neither[] = { "cdn.example.net", "alias.example.net" };

	rs_add(f, &rs, 2, 0, 1, "int1");
	run_names(f, "chain-leaf-int1.pem", &rs, second, 2, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	run_names(f, "chain-leaf-int1.pem", &rs, first, 2, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	run_names(f, "chain-leaf-int1.pem", &rs, neither, 2, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
}

static void test_ta_expired_leaf(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-expired-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, ANY);
	rs_free(&rs);
}

static void test_ta_not_yet_valid_leaf(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-notyet-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_not_yet_valid, ANY, ANY);
	o.now = (time_t)2051222400; /* 2035-01-01: valid from then on */
	run(f, "chain-notyet-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
}

/* opts.now is honoured: the valid chain is expired in 2041 and not yet valid in 2019. */
static void test_ta_uses_opts_now(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	o.now = (time_t)2240611200; /* 2041-01-01 */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, ANY);
	o.now = (time_t)1546300800; /* 2019-01-01 */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_not_yet_valid, ANY, ANY);
	rs_free(&rs);
}

/* Expired intermediate below the anchor (root). */
static void test_ta_expired_intermediate_below(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root");
	run(f, "chain-under-expired.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, ANY);
	rs_free(&rs);
}

/* The expired intermediate IS the anchor, and is not self-issued: its dates are not checked. */
static void test_ta_expired_anchor_not_self_issued(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int-expired");
	run(f, "chain-under-expired.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
}

/* A self-issued anchor's own dates are checked. */
static void test_ta_expired_self_issued_anchor(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root-expired");
	run(f, "chain-under-expired-root.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, ANY);
	o.now = (time_t)1590969600; /* 2020-06-01: all in date */
	run(f, "chain-under-expired-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
}

static void test_ta_not_ca_below_anchor(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root");
	run(f, "chain-under-noca.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_not_ca, ANY, ANY);
	rs_free(&rs);
}

static void test_ta_pathlen_exceeded(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root");
	run(f, "chain-under-pl0.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_not_ca, ANY, ANY);
	rs_free(&rs);
	rs_add(f, &rs, 2, 0, 1, "int-below-pl0"); /* pathlen 0 of the anchor itself is fine with a leaf under it */
	run(f, "chain-under-pl0.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
}

static void test_ta_eku_client_only(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-clientauth-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_bad_usage, ANY, ANY);
	rs_free(&rs);
}

static void test_ta_key_usage_forbids_tls(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-badku-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_bad_usage, ANY, ANY);
	rs_free(&rs);
}

/* The leaf names int1 as its issuer but was signed by another key with the same name. */
static void test_ta_bad_signature(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-impostor.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_bad_signature, ANY, ANY);
	rs_free(&rs);
}

/* DANE-TA takes precedence over PKIX-TA when both match. */
static void test_ta_precedence_over_pkix(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	rs_add(f, &rs, 0, 0, 1, "int1");
	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 1);
	rs_free(&rs);
}

/* DANE-TA does not need (or use) the PKIX store: works with the unrelated store and in the SMTP profile. */
static void test_ta_independent_of_store_and_smtp(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->other_store);
	struct dane_result res;

	rs_add(f, &rs, 2, 1, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	o.smtp = 1;
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 1, 0);
	rs_free(&rs);
}

/* A certificate that only the trust store has can match usages 0/1 only, never a DANE-TA record. */
static void test_store_cert_not_dane_ta(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root");
	rs_add(f, &rs, 2, 1, 1, "root");
	rs_add(f, &rs, 2, 1, 2, "root");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	rs_free(&rs);

	rs_add(f, &rs, 0, 0, 1, "root");            /* the same digest as PKIX-TA does match */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_pkix_ta, 2, 0);
	rs_free(&rs);
}

/* ---------------------------------------------------------------- chain building backtracks (issue 11) */

/* run_pkix_plain - dane_verify_pkix of a chain file for www.example.test. */
static void run_pkix_plain(const struct fixture *f, const char *chain_file, const struct dane_options *o,
			   struct dane_result *res)
{
	struct dane_chain *c = load_chain(f, chain_file);

	memset(res, 0x5a, sizeof(*res));
	assert_int_equal(dane_verify_pkix(c, www_names, 1, o, res), 0);
	dane_chain_free(c);
}

/* detail_has - the verdict's explanation mentions needle. */
static void detail_has(const struct dane_result *res, const char *needle)
{
	if (memchr(res->detail, '\0', sizeof(res->detail)) == NULL || strstr(res->detail, needle) == NULL)
		fail_msg("detail \"%.256s\" does not mention \"%s\"", res->detail, needle);
}

/*
 * OpenSSL test/dane-cross.in case 1: the TLSA record holds the self-signed root, the server sends only a
 * cross-signed copy of that root and its cross-signer. The root from DNS is tried first as int1's issuer.
 */
static void test_build_dns_root_before_sent_cross(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 0, "root");
	run(f, "chain-cross.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	assert_int_equal(res.chain_len, 3);
	detail_has(&res, "supplied by the TLSA record");
	rs_free(&rs);

	/* The root's key: the cross-signed copy carries it, so "2 1 0" matches that copy at depth 2 directly. */
	rs_add(f, &rs, 2, 1, 0, "root");
	run(f, "chain-cross.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	rs_free(&rs);
}

/* The first issuer in wire order (the cross-signed copy) leads nowhere; the self-signed root sent after it does. */
static void test_build_backtracks_past_first_issuer(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "root");
	run(f, "chain-cross-then-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ta, 2, 0);
	assert_int_equal(res.chain_len, 3);
	rs_free(&rs);

	/* The same for PKIX-TA over a store that holds only the self-signed root. */
	o = opts_at(f->root_store);
	rs_add(f, &rs, 0, 0, 1, "root");
	run(f, "chain-cross-then-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_pkix_ta, 2, 0);
	rs_free(&rs);
}

/* A valid cross-certificate wins over an expired one with the same subject and key, whatever the wire order. */
static void test_build_prefers_valid_cross_cert(void **state)
{
	const struct fixture *f = *state;
	static const char *const chains[] = { "chain-cross-expired-first.pem", "chain-cross-valid-first.pem" };
	struct dane_store *cross_store = load_store(f, "cross-root.pem");
	struct recset rs = { .n = 0 };
	struct dane_options o;
	struct dane_result res;

	for (size_t i = 0; i < 2; i++) {
		o = opts_at(NULL);
		rs_add(f, &rs, 2, 0, 1, "cross-root");
		run(f, chains[i], &rs, &o, &res);
		expect(&res, 1, dane_ok_dane_ta, 3, 0);
		assert_int_equal(res.chain_len, 4);
		rs_free(&rs);

		o = opts_at(cross_store);
		run_pkix_plain(f, chains[i], &o, &res);
		expect(&res, 1, dane_ok_pkix, -1, -1);
		assert_int_equal(res.chain_len, 4);

		rs_add(f, &rs, 0, 1, 1, "cross-root");
		run(f, chains[i], &rs, &o, &res);
		expect(&res, 1, dane_ok_pkix_ta, 3, 0);
		rs_free(&rs);
	}
	dane_store_free(cross_store);
}

/* Sixteen certificates of two CAs that issue each other: the search gives up after DANE_MAX_EDGES signatures. */
static void test_build_bounded_on_hostile_chain(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 1, 1, "other-root");
	rs_add(f, &rs, 2, 1, 0, "other-root");
	run(f, "chain-loop.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_match, -1, -1);
	assert_true(res.issuers_tried > 0);
	assert_true(res.issuers_tried <= DANE_MAX_EDGES);
	detail_has(&res, "gave up");
	rs_free(&rs);

	o = opts_at(f->other_store);
	run_pkix_plain(f, "chain-loop.pem", &o, &res);
	assert_int_equal(res.authenticated, 0);
	assert_true(res.issuers_tried > 0);
	assert_true(res.issuers_tried <= DANE_MAX_EDGES);
}

/* ---------------------------------------------------------------- a TA record naming a self-signed leaf (issue 11) */

/*
 * Every DANE-TA form of the self-signed leaf fails the same way: a usage-2 record names an issuer, and a
 * self-signed leaf has none but itself (README, "DANE-TA and a self-signed server certificate").
 */
static void test_ta_self_signed_leaf_every_form(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	for (int sel = 0; sel <= 1; sel++) {
		for (int m = 0; m <= 2; m++) {
			rs_add(f, &rs, 2, sel, m, "selfsigned");
			run(f, "chain-selfsigned.pem", &rs, &o, &res);
			if (res.authenticated)
				fail_msg("\"2 %d %d\" of the self-signed leaf authenticated it: %s", sel, m, res.detail);
			expect(&res, 0, dane_err_no_match, -1, -1);
			detail_has(&res, "DANE-EE");
			rs_free(&rs);
		}
	}
	/* The rule is about the leaf: a self-signed root sent above the leaf is still an anchor in every form. */
	for (int sel = 0; sel <= 1; sel++) {
		for (int m = 0; m <= 2; m++) {
			rs_add(f, &rs, 2, sel, m, "root");
			run(f, "chain-leaf-int1-root.pem", &rs, &o, &res);
			expect(&res, 1, dane_ok_dane_ta, 2, 0);
			rs_free(&rs);
		}
	}
}

/* ---------------------------------------------------------------- printable explanations (issue 9, finding 14) */

/* A subject with ESC, DEL and bytes that are not UTF-8 is quoted escaped in the explanation. */
static void test_detail_printable(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 2, 0, 1, "int1");
	run(f, "chain-ctrl-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, 1, 0);
	assert_non_null(memchr(res.detail, '\0', sizeof(res.detail)));
	for (const unsigned char *p = (const unsigned char *)res.detail; *p; p++)
		if (*p < 0x20 || *p >= 0x7f)
			fail_msg("byte 0x%02x at %zu of \"%s\"", *p, (size_t)(p - (const unsigned char *)res.detail),
				 res.detail);
	detail_has(&res, "evil\\x1b[31m\\x7f\\xff\\xfe");
	rs_free(&rs);
}


/* ---------------------------------------------------------------- PKIX-TA / PKIX-EE (DANE.md 3.5) */

static void test_pkix_ta_root_sent(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	rs_add(f, &rs, 0, 1, 1, "root");
	run(f, "chain-leaf-int1-root.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_pkix_ta, 2, 0);
	rs_free(&rs);
}

static void test_pkix_untrusted(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->other_store);
	struct dane_result res;

	rs_add(f, &rs, 1, 1, 1, "leaf");            /* the record matches, the chain is not PKIX-valid */
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_pkix_untrusted, ANY, ANY);
	rs_free(&rs);
	rs_add(f, &rs, 0, 0, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_pkix_untrusted, ANY, ANY);
	rs_free(&rs);
}

static void test_pkix_no_match(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	rs_add(f, &rs, 1, 1, 1, "leaf-wrongname");
	rs_add(f, &rs, 0, 1, 1, "other-root");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_pkix_no_match, -1, -1);
	rs_free(&rs);
}

static void test_pkix_no_store(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;

	rs_add(f, &rs, 1, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_pkix_no_store, ANY, ANY);
	rs_free(&rs);
	rs_add(f, &rs, 0, 0, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_pkix_no_store, ANY, ANY);
	rs_free(&rs);
}

/* Record matched but PKIX invalid: the PKIX reason comes back. */
static void test_pkix_reasons(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;
	static const char *const other[] = { "other.example.test" };

	rs_add(f, &rs, 1, 1, 1, "leaf-expired");
	run(f, "chain-expired-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, ANY);
	rs_free(&rs);
	rs_add(f, &rs, 1, 1, 1, "leaf");
	run_names(f, "chain-leaf-int1.pem", &rs, other, 1, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
	rs_add(f, &rs, 1, 1, 1, "leaf-clientauth");
	run(f, "chain-clientauth-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_bad_usage, ANY, ANY);
	rs_free(&rs);
}

/* SMTP profile: usages 0 and 1 are unusable. */
static void test_smtp_pkix_unusable(void **state)
{
	const struct fixture *f = *state;
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	o.smtp = 1;
	rs_add(f, &rs, 1, 1, 1, "leaf");
	rs_add(f, &rs, 0, 0, 1, "int1");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 0, dane_err_no_usable, -1, -1);
	assert_int_equal(res.usable_records, 0);
	assert_int_equal(res.unusable_records, 2);
	rs_add(f, &rs, 3, 1, 1, "leaf");
	run(f, "chain-leaf-int1.pem", &rs, &o, &res);
	expect(&res, 1, dane_ok_dane_ee, 0, 2);
	assert_int_equal(res.usable_records, 1);
	assert_int_equal(res.unusable_records, 2);
	rs_free(&rs);
}

/* ---------------------------------------------------------------- dane_verify_pkix */

static void run_pkix(const struct fixture *f, const char *chain_file, const char *const *names, size_t n,
		     const struct dane_options *o, struct dane_result *res)
{
	struct dane_chain *c = load_chain(f, chain_file);

	memset(res, 0x5a, sizeof(*res));
	assert_int_equal(dane_verify_pkix(c, names, n, o, res), 0);
	dane_chain_free(c);
}

static void test_verify_pkix_ok(void **state)
{
	const struct fixture *f = *state;
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;

	run_pkix(f, "chain-leaf-int1.pem", www_names, 1, &o, &res);
	expect(&res, 1, dane_ok_pkix, ANY, -1);
	run_pkix(f, "chain-leaf2-int2-int1.pem", www_names, 1, &o, &res);
	expect(&res, 1, dane_ok_pkix, ANY, -1);
	run_pkix(f, "chain-rsa-leaf-int1.pem", www_names, 1, &o, &res);
	expect(&res, 1, dane_ok_pkix, ANY, -1);
}

static void test_verify_pkix_failures(void **state)
{
	const struct fixture *f = *state;
	struct dane_options o = opts_at(f->root_store);
	struct dane_result res;
	static const char *const other[] = { "other.example.test" };

	run_pkix(f, "chain-leaf-int1.pem", other, 1, &o, &res);
	expect(&res, 0, dane_err_name_mismatch, ANY, -1);
	run_pkix(f, "chain-leaf-only.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_pkix_untrusted, ANY, -1);
	run_pkix(f, "chain-expired-int1.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_expired, ANY, -1);
	run_pkix(f, "chain-notyet-int1.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_not_yet_valid, ANY, -1);
	run_pkix(f, "chain-under-noca.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_not_ca, ANY, -1);
	run_pkix(f, "chain-impostor.pem", www_names, 1, &o, &res);
	assert_int_equal(res.authenticated, 0);
	o.store = f->other_store;
	run_pkix(f, "chain-leaf-int1.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_pkix_untrusted, ANY, -1);
	o.store = NULL;
	run_pkix(f, "chain-leaf-int1.pem", www_names, 1, &o, &res);
	expect(&res, 0, dane_err_pkix_no_store, ANY, -1);
}

/* ---------------------------------------------------------------- names (DANE.md section 4) */

static int nm(const char *presented, const char *reference)
{
	return dane_name_match(presented, strlen(presented), reference);
}

static void test_name_match_exact(void **state)
{
	(void)state;
	assert_int_equal(nm("www.example.test", "www.example.test"), 1);
	assert_int_equal(nm("www.example.test", "ww.example.test"), 0);
	assert_int_equal(nm("www.example.test", "wwww.example.test"), 0);
	assert_int_equal(nm("www.example.test", "www.example.test.evil"), 0);
	assert_int_equal(nm("www.example.test", "example.test"), 0);
	assert_int_equal(nm("example.test", "www.example.test"), 0);
	assert_int_equal(nm("", "www.example.test"), 0);
}

static void test_name_match_case(void **state)
{
	(void)state;
	assert_int_equal(nm("WWW.Example.TEST", "www.example.test"), 1);
	assert_int_equal(nm("www.example.test", "WWW.EXAMPLE.TEST"), 1);
	assert_int_equal(nm("*.EXAMPLE.test", "Www.example.TEST"), 1);
}

static void test_name_match_trailing_dot(void **state)
{
	(void)state;
	assert_int_equal(nm("www.example.test", "www.example.test."), 1);
	assert_int_equal(nm("*.example.test", "www.example.test."), 1);
	assert_int_equal(nm("www.example.test", "www.example.test.."), 0);
}

static void test_name_match_wildcard(void **state)
{
	(void)state;
	assert_int_equal(nm("*.example.test", "www.example.test"), 1);
	assert_int_equal(nm("*.example.test", "x.example.test"), 1);
	assert_int_equal(nm("*.example.test", "example.test"), 0);
	assert_int_equal(nm("*.example.test", "a.b.example.test"), 0);
	assert_int_equal(nm("*.example.test", ".example.test"), 0);
	assert_int_equal(nm("*.example.test", "www.example.org"), 0);
	assert_int_equal(nm("*.example.test", "wwwexample.test"), 0);
}

static void test_name_match_partial_wildcard(void **state)
{
	(void)state;
	assert_int_equal(nm("w*.example.test", "www.example.test"), 0);
	assert_int_equal(nm("w*.example.test", "w.example.test"), 0);
	assert_int_equal(nm("*w.example.test", "www.example.test"), 0);
	assert_int_equal(nm("w*w.example.test", "www.example.test"), 0);
	assert_int_equal(nm("www.*.test", "www.example.test"), 0);
	assert_int_equal(nm("*.*.test", "www.example.test"), 0);
}

static void test_name_match_wildcard_too_broad(void **state)
{
	(void)state;
	assert_int_equal(nm("*", "test"), 0);
	assert_int_equal(nm("*", "www"), 0);
	assert_int_equal(nm("*.test", "example.test"), 0);
	assert_int_equal(nm("*.", "test."), 0);
}

/* presented_len is honoured: an embedded NUL or bytes past the length do not count. */
static void test_name_match_length(void **state)
{
	static const char nul[] = "www.example.test\0.evil.test";

	(void)state;
	assert_int_equal(dane_name_match(nul, sizeof(nul) - 1, "www.example.test"), 0);
	assert_int_equal(dane_name_match(nul, sizeof(nul) - 1, "www.example.test.evil.test"), 0);
	assert_int_equal(dane_name_match("www.example.testXYZ", 16, "www.example.test"), 1);
	assert_int_equal(dane_name_match("www.example.test", 15, "www.example.test"), 0);
}

/* Full verifications (DANE-TA anchored at int1, so names are checked). */
static void expect_name(const struct fixture *f, const char *chain_file, const char *name, int ok)
{
	struct recset rs = { .n = 0 };
	struct dane_options o = opts_at(NULL);
	struct dane_result res;
	const char *names[1] = { name };

	rs_add(f, &rs, 2, 0, 1, "int1");
	run_names(f, chain_file, &rs, names, 1, &o, &res);
	if (ok)
		expect(&res, 1, dane_ok_dane_ta, 1, 0);
	else
		expect(&res, 0, dane_err_name_mismatch, ANY, ANY);
	rs_free(&rs);
}

static void test_verify_wildcard(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-wildcard-int1.pem", "www.example.test", 1);
	expect_name(f, "chain-wildcard-int1.pem", "mail.example.test", 1);
	expect_name(f, "chain-wildcard-int1.pem", "example.test", 0);
	expect_name(f, "chain-wildcard-int1.pem", "a.b.example.test", 0);
}

static void test_verify_partial_wildcard(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-partial-int1.pem", "www.example.test", 0);
	expect_name(f, "chain-partial-int1.pem", "w.example.test", 0);
}

static void test_verify_wildcard_over_tld(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-tldwild-int1.pem", "example.test", 0);
}

static void test_verify_name_case_and_dot(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-leaf-int1.pem", "WWW.EXAMPLE.TEST", 1);
	expect_name(f, "chain-leaf-int1.pem", "www.example.test.", 1);
	expect_name(f, "chain-wildcard-int1.pem", "WWW.Example.Test.", 1);
}

static void test_verify_cn_fallback(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-cn-int1.pem", "www.example.test", 1);  /* no SAN at all: CN is used */
	expect_name(f, "chain-cn-int1.pem", "other.example.test", 0);
	expect_name(f, "chain-san-cn-int1.pem", "www.example.test", 0); /* a DNS SAN hides the CN */
	expect_name(f, "chain-san-cn-int1.pem", "other.example.test", 1);
}

static void test_verify_ip_san(void **state)
{
	const struct fixture *f = *state;

	expect_name(f, "chain-ip-int1.pem", "127.0.0.1", 1);
	expect_name(f, "chain-ip-int1.pem", "127.0.0.2", 0);
	expect_name(f, "chain-ip-int1.pem", "www.example.test", 0);
	expect_name(f, "chain-leaf-int1.pem", "127.0.0.1", 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_load_pem),
		cmocka_unit_test(test_chain_load_single_der),
		cmocka_unit_test(test_chain_add_der),
		cmocka_unit_test(test_chain_load_truncated_pem),
		cmocka_unit_test(test_chain_load_garbage),
		cmocka_unit_test(test_chain_too_long),
		cmocka_unit_test(test_chain_spki_matches_openssl),
		cmocka_unit_test(test_chain_spki_matches_wolfssl),
		cmocka_unit_test(test_store_add_pem),
		cmocka_unit_test(test_empty_chain),
		MATRIX_ENTRIES(0),
		MATRIX_ENTRIES(1),
		MATRIX_ENTRIES(2),
		MATRIX_ENTRIES(3),
		cmocka_unit_test(test_rsa_leaf),
		cmocka_unit_test(test_record_usable_valid),
		cmocka_unit_test(test_record_unusable_kinds),
		cmocka_unit_test(test_record_usable_smtp),
		cmocka_unit_test(test_verify_each_unusable_alone),
		cmocka_unit_test(test_verify_all_unusable),
		cmocka_unit_test(test_verify_counts_and_index),
		cmocka_unit_test(test_verify_no_records),
		cmocka_unit_test(test_rollover),
		cmocka_unit_test(test_agility_strongest_only),
		cmocka_unit_test(test_agility_strongest_matches),
		cmocka_unit_test(test_agility_groups_independent),
		cmocka_unit_test(test_agility_full_always_compared),
		cmocka_unit_test(test_agility_ignores_unusable_stronger),
		cmocka_unit_test(test_agility_digest_order),
		cmocka_unit_test(test_ee_expired_leaf),
		cmocka_unit_test(test_ee_wrong_name_default),
		cmocka_unit_test(test_ee_namecheck_mismatch),
		cmocka_unit_test(test_ee_namecheck_match),
		cmocka_unit_test(test_ee_no_pkix_checks),
		cmocka_unit_test(test_ee_self_signed),
		cmocka_unit_test(test_ta_depth2),
		cmocka_unit_test(test_ta_lowest_anchor),
		cmocka_unit_test(test_ta_root_sent),
		cmocka_unit_test(test_ta_full_cert_supplies_issuer),
		cmocka_unit_test(test_ta_digest_needs_sent_cert),
		cmocka_unit_test(test_ta_bare_key),
		cmocka_unit_test(test_ta_bare_key_name_mismatch),
		cmocka_unit_test(test_ta_name_mismatch),
		cmocka_unit_test(test_ta_two_reference_names),
		cmocka_unit_test(test_ta_expired_leaf),
		cmocka_unit_test(test_ta_not_yet_valid_leaf),
		cmocka_unit_test(test_ta_uses_opts_now),
		cmocka_unit_test(test_ta_expired_intermediate_below),
		cmocka_unit_test(test_ta_expired_anchor_not_self_issued),
		cmocka_unit_test(test_ta_expired_self_issued_anchor),
		cmocka_unit_test(test_ta_not_ca_below_anchor),
		cmocka_unit_test(test_ta_pathlen_exceeded),
		cmocka_unit_test(test_ta_eku_client_only),
		cmocka_unit_test(test_ta_key_usage_forbids_tls),
		cmocka_unit_test(test_ta_bad_signature),
		cmocka_unit_test(test_ta_precedence_over_pkix),
		cmocka_unit_test(test_ta_independent_of_store_and_smtp),
		cmocka_unit_test(test_store_cert_not_dane_ta),
		cmocka_unit_test(test_build_dns_root_before_sent_cross),
		cmocka_unit_test(test_build_backtracks_past_first_issuer),
		cmocka_unit_test(test_build_prefers_valid_cross_cert),
		cmocka_unit_test(test_build_bounded_on_hostile_chain),
		cmocka_unit_test(test_ta_self_signed_leaf_every_form),
		cmocka_unit_test(test_detail_printable),
		cmocka_unit_test(test_pkix_ta_root_sent),
		cmocka_unit_test(test_pkix_untrusted),
		cmocka_unit_test(test_pkix_no_match),
		cmocka_unit_test(test_pkix_no_store),
		cmocka_unit_test(test_pkix_reasons),
		cmocka_unit_test(test_smtp_pkix_unusable),
		cmocka_unit_test(test_verify_pkix_ok),
		cmocka_unit_test(test_verify_pkix_failures),
		cmocka_unit_test(test_name_match_exact),
		cmocka_unit_test(test_name_match_case),
		cmocka_unit_test(test_name_match_trailing_dot),
		cmocka_unit_test(test_name_match_wildcard),
		cmocka_unit_test(test_name_match_partial_wildcard),
		cmocka_unit_test(test_name_match_wildcard_too_broad),
		cmocka_unit_test(test_name_match_length),
		cmocka_unit_test(test_verify_wildcard),
		cmocka_unit_test(test_verify_partial_wildcard),
		cmocka_unit_test(test_verify_wildcard_over_tld),
		cmocka_unit_test(test_verify_name_case_and_dot),
		cmocka_unit_test(test_verify_cn_fallback),
		cmocka_unit_test(test_verify_ip_san),
	};

	return cmocka_run_group_tests_name("dane", tests, group_setup, group_teardown);
}

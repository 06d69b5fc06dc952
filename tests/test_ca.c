/*
 * test_ca.c - the local CA: creation with private key modes, reloading, minted leaves that chain to it,
 * name constraints (present in the certificate, enforced by ca_permits, re-issued when changed), and refusal
 * of keys readable by others.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "ca.h"
#include "dane.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	wolfSSL_Init();
	snprintf(dir, sizeof(dir), "/tmp/daneproxy-test-ca.XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	wolfSSL_Cleanup();
	return system(cmd) == 0 ? 0 : -1;
}

static mode_t file_mode(const char *name)
{
	char path[400];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 0777;
}

/* leaf_verifies - a leaf minted for name chains to the CA and is valid for name. */
static int leaf_verifies(struct ca *ca, const char *name)
{
	struct dane_chain *chain = dane_chain_new();
	struct dane_store *store = dane_store_new();
	struct dane_options opts;
	struct dane_result res;
	const uint8_t *ca_der;
	uint8_t *der = NULL;
	size_t len, ca_len;
	char err[256];
	int ok;

	assert_non_null(chain);
	assert_non_null(store);
	assert_int_equal(ca_mint(ca, name, &der, &len, err, sizeof(err)), 0);
	assert_int_equal(dane_chain_add_der(chain, der, len, err, sizeof(err)), 0);
	ca_der = ca_cert_der(ca, &ca_len);
	/* The store takes PEM or a bare DER certificate. */
	assert_int_equal(dane_store_add_pem(store, (const char *)ca_der, ca_len, err, sizeof(err)), 1);
	memset(&opts, 0, sizeof(opts));
	opts.store = store;
	dane_verify_pkix(chain, &name, 1, &opts, &res);
	ok = res.authenticated;
	free(der);
	dane_chain_free(chain);
	dane_store_free(store);
	return ok;
}

static void test_create_and_reload(void **state)
{
	struct ca *ca = NULL, *again = NULL;
	const uint8_t *a, *b;
	size_t la, lb;
	char err[256];

	(void)state;
	assert_int_equal(ca_open(dir, 1, &ca, err, sizeof(err)), 0);
	assert_true(ca_renewed(ca));
	assert_int_equal(file_mode("ca.key"), 0600);
	assert_int_equal(file_mode("leaf.key"), 0600);
	assert_int_equal(file_mode("."), 0700);
	assert_true(leaf_verifies(ca, "www.example.test"));
	assert_true(leaf_verifies(ca, "127.0.0.1"));
	/* Loading again gives the same certificate, not a new one. */
	assert_int_equal(ca_open(dir, 0, &again, err, sizeof(err)), 0);
	assert_false(ca_renewed(again));
	a = ca_cert_der(ca, &la);
	b = ca_cert_der(again, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	ca_free(ca);
	ca_free(again);
}

static void test_name_constraints(void **state)
{
	static const char *const permitted[] = {"example.test", "corp.example"};
	static const char *const other[] = {"corp.example"};
	struct ca *ca = NULL;
	char err[256], text[256];
	const uint8_t *der;
	size_t len;
	WOLFSSL_X509 *x;
	const unsigned char *p;

	(void)state;
	assert_int_equal(ca_open_constrained(dir, permitted, 2, &ca, err, sizeof(err)), 0);
	/* Changing the constraints re-issued the certificate; it carries the extension and still parses. */
	assert_true(ca_renewed(ca));
	der = ca_cert_der(ca, &len);
	p = der;
	x = wolfSSL_d2i_X509(NULL, &p, (int)len);
	assert_non_null(x);
	wolfSSL_X509_free(x);
	/* wolfSSL's compatibility layer does not index nameConstraints: look for the critical extension itself,
	 * OID 2.5.29.30 followed by critical TRUE, and its two dNSName subtrees. */
	{
		static const uint8_t ext[] = {0x06, 0x03, 0x55, 0x1d, 0x1e, 0x01, 0x01, 0xff};
		assert_non_null(memmem(der, len, ext, sizeof(ext)));
		assert_non_null(memmem(der, len, "\x82\x0c" "example.test", 14));
		assert_non_null(memmem(der, len, "\x82\x0c" "corp.example", 14));
	}
	ca_constraints(ca, text, sizeof(text));
	assert_string_equal(text, "example.test,corp.example");
	assert_true(ca_permits(ca, "example.test"));
	assert_true(ca_permits(ca, "www.example.test"));
	assert_true(ca_permits(ca, "a.b.CORP.example"));
	assert_false(ca_permits(ca, "badexample.test"));
	assert_false(ca_permits(ca, "example.org"));
	assert_false(ca_permits(ca, "127.0.0.1"));
	assert_true(leaf_verifies(ca, "www.example.test"));
	ca_free(ca);
	/* The same list again: no re-issue. */
	assert_int_equal(ca_open_constrained(dir, permitted, 2, &ca, err, sizeof(err)), 0);
	assert_false(ca_renewed(ca));
	ca_free(ca);
	/* A different list: re-issued. */
	assert_int_equal(ca_open_constrained(dir, other, 1, &ca, err, sizeof(err)), 0);
	assert_true(ca_renewed(ca));
	assert_false(ca_permits(ca, "www.example.test"));
	ca_free(ca);
	/* The tools load the CA as it is, constraints included. */
	assert_int_equal(ca_open(dir, 0, &ca, err, sizeof(err)), 0);
	ca_constraints(ca, text, sizeof(text));
	assert_string_equal(text, "corp.example");
	ca_free(ca);
}

static void test_key_readable_by_others_refused(void **state)
{
	struct ca *ca = NULL;
	char path[400], err[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(ca_open(dir, 1, &ca, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "other users"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(ca_open(dir, 1, &ca, err, sizeof(err)), 0);
	ca_free(ca);
}

static void test_missing_ca_without_create(void **state)
{
	struct ca *ca = NULL;
	char err[256];

	(void)state;
	assert_int_equal(ca_open("/nonexistent/daneproxy-state", 0, &ca, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no CA"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_and_reload),
		cmocka_unit_test(test_name_constraints),
		cmocka_unit_test(test_key_readable_by_others_refused),
		cmocka_unit_test(test_missing_ca_without_create),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

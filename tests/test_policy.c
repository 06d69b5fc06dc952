/*
 * test_policy.c - unit tests of the destination policy (proxy/policy.c).
 *
 * policy_decide is shared/DANE.md section 5 as a table: every resolver outcome under every mode gives
 * exactly one method and, when refused, exactly one RFC 9209 error token. A failed or unanswered lookup
 * (bogus, indeterminate, timeout, failure, no host) is refused under every mode, HTTPS or SMTP, and never
 * becomes PKIX, DANE or encrypt-only. The SMTP profile (section 6) differs in one cell: secure records that
 * are all unusable, under policy dane, mean TLS without authentication. policy_lookup picks the first rule
 * whose host pattern and port match; policy_mode_parse reads the three mode names and nothing else.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "policy.h"

static const enum policy_mode all_modes[] = {POLICY_DANE_ONLY, POLICY_DANE, POLICY_PKIX};

static const enum resolver_outcome all_outcomes[] = {
	RESOLVER_SECURE,        RESOLVER_SECURE_UNUSABLE, RESOLVER_SECURE_ABSENT,
	RESOLVER_INSECURE,      RESOLVER_BOGUS,           RESOLVER_INDETERMINATE,
	RESOLVER_TIMEOUT,       RESOLVER_FAILURE,         RESOLVER_NO_HOST,
};

#define N_MODES (sizeof(all_modes) / sizeof(all_modes[0]))
#define N_OUTCOMES (sizeof(all_outcomes) / sizeof(all_outcomes[0]))

/* The expected table: method and error token (NULL = not refused) per outcome and mode. */
struct expect {
	enum resolver_outcome dns;
	enum policy_mode mode;
	enum auth_method method;
	const char *error;
};

static const struct expect table[] = {
	/* secure, usable records: DANE is mandatory, except that pkix ignores TLSA */
	{RESOLVER_SECURE, POLICY_DANE_ONLY, AUTH_DANE, NULL},
	{RESOLVER_SECURE, POLICY_DANE, AUTH_DANE, NULL},
	{RESOLVER_SECURE, POLICY_PKIX, AUTH_PKIX, NULL},
	/* secure, none usable / secure absence / insecure: PKIX, except dane-only refuses */
	{RESOLVER_SECURE_UNUSABLE, POLICY_DANE_ONLY, AUTH_REFUSE, "tls_certificate_error"},
	{RESOLVER_SECURE_UNUSABLE, POLICY_DANE, AUTH_PKIX, NULL},
	{RESOLVER_SECURE_UNUSABLE, POLICY_PKIX, AUTH_PKIX, NULL},
	{RESOLVER_SECURE_ABSENT, POLICY_DANE_ONLY, AUTH_REFUSE, "tls_certificate_error"},
	{RESOLVER_SECURE_ABSENT, POLICY_DANE, AUTH_PKIX, NULL},
	{RESOLVER_SECURE_ABSENT, POLICY_PKIX, AUTH_PKIX, NULL},
	{RESOLVER_INSECURE, POLICY_DANE_ONLY, AUTH_REFUSE, "tls_certificate_error"},
	{RESOLVER_INSECURE, POLICY_DANE, AUTH_PKIX, NULL},
	{RESOLVER_INSECURE, POLICY_PKIX, AUTH_PKIX, NULL},
	/* failed lookups: refuse (fail closed) under every mode */
	{RESOLVER_BOGUS, POLICY_DANE_ONLY, AUTH_REFUSE, "dns_error"},
	{RESOLVER_BOGUS, POLICY_DANE, AUTH_REFUSE, "dns_error"},
	{RESOLVER_BOGUS, POLICY_PKIX, AUTH_REFUSE, "dns_error"},
	{RESOLVER_INDETERMINATE, POLICY_DANE_ONLY, AUTH_REFUSE, "dns_error"},
	{RESOLVER_INDETERMINATE, POLICY_DANE, AUTH_REFUSE, "dns_error"},
	{RESOLVER_INDETERMINATE, POLICY_PKIX, AUTH_REFUSE, "dns_error"},
	{RESOLVER_TIMEOUT, POLICY_DANE_ONLY, AUTH_REFUSE, "dns_timeout"},
	{RESOLVER_TIMEOUT, POLICY_DANE, AUTH_REFUSE, "dns_timeout"},
	{RESOLVER_TIMEOUT, POLICY_PKIX, AUTH_REFUSE, "dns_timeout"},
	{RESOLVER_FAILURE, POLICY_DANE_ONLY, AUTH_REFUSE, "dns_error"},
	{RESOLVER_FAILURE, POLICY_DANE, AUTH_REFUSE, "dns_error"},
	{RESOLVER_FAILURE, POLICY_PKIX, AUTH_REFUSE, "dns_error"},
	{RESOLVER_NO_HOST, POLICY_DANE_ONLY, AUTH_REFUSE, "dns_error"},
	{RESOLVER_NO_HOST, POLICY_DANE, AUTH_REFUSE, "dns_error"},
	{RESOLVER_NO_HOST, POLICY_PKIX, AUTH_REFUSE, "dns_error"},
};

/* decide_smtp - policy_decide into a decision pre-filled with junk, so stale fields would show. */
static struct policy_decision decide_smtp(enum policy_mode mode, enum resolver_outcome dns, int smtp)
{
	struct policy_decision d;

	d.method = (enum auth_method)77;
	d.error = "stale-error";
	d.why = NULL;
	policy_decide(mode, dns, smtp, &d);
	return d;
}

/* decide - an HTTPS-like destination (not the SMTP profile). */
static struct policy_decision decide(enum policy_mode mode, enum resolver_outcome dns)
{
	return decide_smtp(mode, dns, 0);
}

/* outcome_name - for failure messages (kept local: the test needs nothing from resolver.c). */
static const char *outcome_name(enum resolver_outcome o)
{
	static const char *const names[] = {"secure", "secure-unusable", "secure-absent", "insecure", "bogus",
					    "indeterminate", "timeout", "failure", "no-host"};

	return (unsigned)o < sizeof(names) / sizeof(names[0]) ? names[o] : "?";
}

/* check_one - one row of the table, with the outcome and mode named in the failure message. */
static void check_one(const struct expect *e, int smtp)
{
	struct policy_decision d = decide_smtp(e->mode, e->dns, smtp);
	char label[128];

	snprintf(label, sizeof(label), "%s: outcome %s, mode %s", smtp ? "smtp" : "https", outcome_name(e->dns),
		 policy_mode_name(e->mode));
	if (d.method != e->method)
		fail_msg("%s: method %d, expected %d", label, (int)d.method, (int)e->method);
	if (e->error == NULL && d.error != NULL)
		fail_msg("%s: error \"%s\", expected none", label, d.error);
	if (e->error != NULL && (d.error == NULL || strcmp(d.error, e->error) != 0))
		fail_msg("%s: error \"%s\", expected \"%s\"", label, d.error ? d.error : "(null)", e->error);
	if (d.why == NULL || d.why[0] == '\0')
		fail_msg("%s: no explanation", label);
}

/* ---------- policy_decide ---------- */

static void test_decide_table(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		check_one(&table[i], 0);
}

/* SMTP (RFC 7672): the same table except secure-but-all-unusable under dane, which is TLS, unauthenticated. */
static void test_decide_table_smtp(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct expect e = table[i];
		if (e.dns == RESOLVER_SECURE_UNUSABLE && e.mode == POLICY_DANE)
			e.method = AUTH_ENCRYPT;
		check_one(&e, 1);
	}
}

/* The SMTP cell in detail: encrypt-only, not refused, not PKIX; dane-only still refuses, pkix still PKIX. */
static void test_decide_smtp_unusable(void **state)
{
	struct policy_decision d;

	(void)state;
	d = decide_smtp(POLICY_DANE, RESOLVER_SECURE_UNUSABLE, 1);
	assert_int_equal(d.method, AUTH_ENCRYPT);
	assert_null(d.error);
	assert_non_null(d.why);
	d = decide_smtp(POLICY_DANE_ONLY, RESOLVER_SECURE_UNUSABLE, 1);
	assert_int_equal(d.method, AUTH_REFUSE);
	assert_string_equal(d.error, "tls_certificate_error");
	d = decide_smtp(POLICY_PKIX, RESOLVER_SECURE_UNUSABLE, 1);
	assert_int_equal(d.method, AUTH_PKIX);
	assert_null(d.error);
	/* Any non-zero smtp flag is the SMTP profile. */
	d = decide_smtp(POLICY_DANE, RESOLVER_SECURE_UNUSABLE, 2);
	assert_int_equal(d.method, AUTH_ENCRYPT);
	/* Not SMTP: PKIX fallback. */
	d = decide_smtp(POLICY_DANE, RESOLVER_SECURE_UNUSABLE, 0);
	assert_int_equal(d.method, AUTH_PKIX);
}

static void test_auth_method_name(void **state)
{
	(void)state;
	assert_string_equal(auth_method_name(AUTH_REFUSE), "refuse");
	assert_string_equal(auth_method_name(AUTH_DANE), "dane");
	assert_string_equal(auth_method_name(AUTH_PKIX), "pkix");
	assert_string_equal(auth_method_name(AUTH_ENCRYPT), "encrypt-only");
	assert_string_equal(auth_method_name(AUTH_PASSTHROUGH), "passthrough");
	assert_non_null(auth_method_name((enum auth_method)42));
}

/* The table above covers every (outcome, mode) pair exactly once. */
static void test_decide_table_complete(void **state)
{
	size_t i, j, k, seen;

	(void)state;
	assert_int_equal(sizeof(table) / sizeof(table[0]), N_MODES * N_OUTCOMES);
	for (i = 0; i < N_OUTCOMES; i++)
		for (j = 0; j < N_MODES; j++) {
			seen = 0;
			for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)
				if (table[k].dns == all_outcomes[i] && table[k].mode == all_modes[j])
					seen++;
			assert_int_equal(seen, 1);
		}
}

/* No policy ever lets a failed lookup through: not PKIX, not DANE, not encrypt-only, whatever the mode. */
static void test_decide_failures_never_authenticate(void **state)
{
	static const enum resolver_outcome failures[] = {RESOLVER_BOGUS, RESOLVER_INDETERMINATE, RESOLVER_TIMEOUT,
							 RESOLVER_FAILURE, RESOLVER_NO_HOST};
	size_t i, j;
	int smtp;

	(void)state;
	for (smtp = 0; smtp <= 1; smtp++)
		for (i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
			for (j = 0; j < N_MODES; j++) {
				struct policy_decision d = decide_smtp(all_modes[j], failures[i], smtp);
				assert_int_equal(d.method, AUTH_REFUSE);
				assert_true(d.method != AUTH_PKIX && d.method != AUTH_DANE && d.method != AUTH_ENCRYPT);
				assert_non_null(d.error);
				assert_string_equal(d.error,
						    failures[i] == RESOLVER_TIMEOUT ? "dns_timeout" : "dns_error");
			}
}

/* A timeout is reported as a timeout, and a DNS failure is never reported as a certificate problem. */
static void test_decide_error_tokens_distinct(void **state)
{
	size_t j;

	(void)state;
	for (j = 0; j < N_MODES; j++) {
		assert_string_equal(decide(all_modes[j], RESOLVER_TIMEOUT).error, "dns_timeout");
		assert_string_equal(decide(all_modes[j], RESOLVER_BOGUS).error, "dns_error");
		assert_string_not_equal(decide(all_modes[j], RESOLVER_BOGUS).error, "tls_certificate_error");
	}
}

/* An outcome outside the enum (a broken invariant) fails closed. */
static void test_decide_unknown_outcome_refuses(void **state)
{
	size_t j;

	(void)state;
	for (j = 0; j < N_MODES; j++) {
		struct policy_decision d = decide(all_modes[j], (enum resolver_outcome)99);
		assert_int_equal(d.method, AUTH_REFUSE);
		assert_non_null(d.error);
		assert_string_equal(d.error, "dns_error");
		assert_non_null(d.why);
		d = decide_smtp(all_modes[j], (enum resolver_outcome)99, 1);
		assert_int_equal(d.method, AUTH_REFUSE);
		assert_string_equal(d.error, "dns_error");
	}
}

/* The explanations tell the outcomes apart (they reach the client and the log). */
static void test_decide_explanations_differ(void **state)
{
	size_t i, k;

	(void)state;
	for (i = 0; i < N_OUTCOMES; i++)
		for (k = i + 1; k < N_OUTCOMES; k++) {
			struct policy_decision a = decide(POLICY_DANE_ONLY, all_outcomes[i]);
			struct policy_decision b = decide(POLICY_DANE_ONLY, all_outcomes[k]);
			assert_string_not_equal(a.why, b.why);
		}
}

/* ---------- policy_mode_parse / policy_mode_name ---------- */

static void test_mode_parse(void **state)
{
	enum policy_mode m = POLICY_PKIX;

	(void)state;
	assert_int_equal(policy_mode_parse("dane-only", &m), 0);
	assert_int_equal(m, POLICY_DANE_ONLY);
	assert_int_equal(policy_mode_parse("dane", &m), 0);
	assert_int_equal(m, POLICY_DANE);
	assert_int_equal(policy_mode_parse("pkix", &m), 0);
	assert_int_equal(m, POLICY_PKIX);
}

static void test_mode_parse_rejects(void **state)
{
	static const char *const bad[] = {"", "DANE", "Dane-Only", "dane-", "dane-onl", "dane-only ", " dane",
					  "pkix\n", "danE", "none", "off", "dane_only", "pki"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum policy_mode m = POLICY_DANE;
		if (policy_mode_parse(bad[i], &m) != -1)
			fail_msg("\"%s\" was accepted as a mode", bad[i]);
		assert_int_equal(m, POLICY_DANE);   /* untouched on failure */
	}
}

static void test_mode_name_round_trip(void **state)
{
	size_t j;

	(void)state;
	assert_string_equal(policy_mode_name(POLICY_DANE_ONLY), "dane-only");
	assert_string_equal(policy_mode_name(POLICY_DANE), "dane");
	assert_string_equal(policy_mode_name(POLICY_PKIX), "pkix");
	for (j = 0; j < N_MODES; j++) {
		enum policy_mode m = (enum policy_mode)42;
		assert_int_equal(policy_mode_parse(policy_mode_name(all_modes[j]), &m), 0);
		assert_int_equal(m, all_modes[j]);
	}
	assert_non_null(policy_mode_name((enum policy_mode)42));
}

/* ---------- policy_lookup ---------- */

static struct policy_rule rule(const char *pattern, uint16_t port, enum policy_mode mode)
{
	struct policy_rule r;

	memset(&r, 0, sizeof(r));
	snprintf(r.pattern, sizeof(r.pattern), "%s", pattern);
	r.port = port;
	r.mode = mode;
	return r;
}

/* Fallback POLICY_DANE in these tests; rules use the other two modes so a match is visible. */
#define LOOKUP(rules, host, port) policy_lookup(rules, sizeof(rules) / sizeof(rules[0]), host, port, POLICY_DANE)

static void test_lookup_no_rules(void **state)
{
	struct policy_rule one = rule("example.com", 0, POLICY_PKIX);

	(void)state;
	assert_int_equal(policy_lookup(NULL, 0, "example.com", 443, POLICY_DANE_ONLY), POLICY_DANE_ONLY);
	assert_int_equal(policy_lookup(&one, 0, "example.com", 443, POLICY_DANE), POLICY_DANE);
}

static void test_lookup_exact(void **state)
{
	struct policy_rule rules[1];

	(void)state;
	rules[0] = rule("example.com", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 25), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "www.example.com", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "example.co", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "example.com.evil", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "xexample.com", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "example.comm", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "", 443), POLICY_DANE);
}

static void test_lookup_case_insensitive(void **state)
{
	struct policy_rule rules[1];

	(void)state;
	rules[0] = rule("Example.COM", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "EXAMPLE.COM", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "eXaMpLe.CoM", 443), POLICY_PKIX);
}

static void test_lookup_trailing_dot(void **state)
{
	struct policy_rule rules[1];

	(void)state;
	rules[0] = rule("example.com", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com.", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "EXAMPLE.COM.", 443), POLICY_PKIX);
	rules[0] = rule("example.com.", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com.", 443), POLICY_PKIX);
	rules[0] = rule("*.example.com.", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com", 443), POLICY_PKIX);
	rules[0] = rule("*.example.com", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com.", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com.", 443), POLICY_DANE);
}

static void test_lookup_wildcard(void **state)
{
	struct policy_rule rules[1];

	(void)state;
	rules[0] = rule("*.example.com", 0, POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "a.example.com", 443), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "a.b.example.com", 443), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "A.B.EXAMPLE.COM", 443), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "badexample.com", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "a.example.com.evil.net", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "a.example.co", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "com", 443), POLICY_DANE);
	assert_int_equal(LOOKUP(rules, "", 443), POLICY_DANE);
}

static void test_lookup_port(void **state)
{
	struct policy_rule rules[2];

	(void)state;
	rules[0] = rule("mail.example.com", 25, POLICY_DANE_ONLY);
	rules[1] = rule("mail.example.com", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "mail.example.com", 25), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "mail.example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "mail.example.com", 2525), POLICY_PKIX);

	/* A port-specific rule alone does not apply on other ports. */
	rules[1] = rule("other.example", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "mail.example.com", 465), POLICY_DANE);
	rules[0] = rule("*.example.com", 8443, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com", 8443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com", 443), POLICY_DANE);
}

static void test_lookup_first_match_wins(void **state)
{
	struct policy_rule rules[4];

	(void)state;
	rules[0] = rule("*.example.com", 0, POLICY_PKIX);
	rules[1] = rule("a.example.com", 0, POLICY_DANE_ONLY);
	rules[2] = rule("example.com", 0, POLICY_DANE_ONLY);
	rules[3] = rule("*", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "example.org", 443), POLICY_PKIX);

	/* Reversed: the specific rule first. */
	rules[0] = rule("a.example.com", 0, POLICY_DANE_ONLY);
	rules[1] = rule("*.example.com", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.example.com", 443), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "b.example.com", 443), POLICY_PKIX);
}

static void test_lookup_star(void **state)
{
	struct policy_rule rules[1];

	(void)state;
	rules[0] = rule("*", 0, POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "example.com", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "a.b.c.example", 25), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "localhost", 1), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "192.0.2.1", 443), POLICY_PKIX);
	assert_int_equal(LOOKUP(rules, "2001:db8::1", 443), POLICY_PKIX);
	rules[0] = rule("*", 25, POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "mx.example.net", 25), POLICY_DANE_ONLY);
	assert_int_equal(LOOKUP(rules, "mx.example.net", 443), POLICY_DANE);
}

/* The matcher on its own (CONNECT passthrough names use it too). */
static void test_pattern_matches(void **state)
{
	(void)state;
	assert_true(policy_pattern_matches("example.com", "example.com"));
	assert_true(policy_pattern_matches("example.com", "EXAMPLE.COM."));
	assert_true(policy_pattern_matches("*.example.com", "a.example.com"));
	assert_true(policy_pattern_matches("*.example.com", "a.b.example.com"));
	assert_false(policy_pattern_matches("*.example.com", "example.com"));
	assert_false(policy_pattern_matches("*.example.com", "aexample.com"));
	assert_true(policy_pattern_matches("*", "anything.example"));
	assert_false(policy_pattern_matches("example.com", "www.example.com"));
	assert_false(policy_pattern_matches("www.example.com", "example.com"));
	assert_false(policy_pattern_matches("example.com", ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_decide_table_smtp),
		cmocka_unit_test(test_decide_smtp_unusable),
		cmocka_unit_test(test_auth_method_name),
		cmocka_unit_test(test_decide_table_complete),
		cmocka_unit_test(test_decide_failures_never_authenticate),
		cmocka_unit_test(test_decide_error_tokens_distinct),
		cmocka_unit_test(test_decide_unknown_outcome_refuses),
		cmocka_unit_test(test_decide_explanations_differ),
		cmocka_unit_test(test_mode_parse),
		cmocka_unit_test(test_mode_parse_rejects),
		cmocka_unit_test(test_mode_name_round_trip),
		cmocka_unit_test(test_lookup_no_rules),
		cmocka_unit_test(test_lookup_exact),
		cmocka_unit_test(test_lookup_case_insensitive),
		cmocka_unit_test(test_lookup_trailing_dot),
		cmocka_unit_test(test_lookup_wildcard),
		cmocka_unit_test(test_lookup_port),
		cmocka_unit_test(test_lookup_first_match_wins),
		cmocka_unit_test(test_lookup_star),
		cmocka_unit_test(test_pattern_matches),
	};

	return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}

/*
 * policy.c - DANE.md section 5 as a table, and destination rules.
 */
#include "policy.h"

#include <string.h>
#include <strings.h>

void policy_decide(enum policy_mode mode, enum resolver_outcome dns, int smtp, struct policy_decision *out)
{
	out->error = NULL;
	if (smtp && dns == RESOLVER_SECURE_UNUSABLE && mode == POLICY_DANE) {
		out->method = AUTH_ENCRYPT;
		out->why = "every TLSA record is unusable: TLS is mandatory, the server stays unauthenticated (RFC 7672)";
		return;
	}
	switch (dns) {
	case RESOLVER_SECURE:
		out->method = mode == POLICY_PKIX ? AUTH_PKIX : AUTH_DANE;
		out->why = mode == POLICY_PKIX ? "policy pkix ignores TLSA" : "DNSSEC-secure TLSA records: DANE is mandatory";
		return;
	case RESOLVER_SECURE_UNUSABLE:
	case RESOLVER_SECURE_ABSENT:
	case RESOLVER_INSECURE:
		if (mode == POLICY_DANE_ONLY) {
			out->method = AUTH_REFUSE;
			out->error = "tls_certificate_error";
			out->why = dns == RESOLVER_SECURE_UNUSABLE ? "policy dane-only: every TLSA record is unusable"
				 : dns == RESOLVER_SECURE_ABSENT ? "policy dane-only: no TLSA record (proven by DNSSEC)"
								   : "policy dane-only: the name is not DNSSEC-signed";
			return;
		}
		out->method = AUTH_PKIX;
		out->why = dns == RESOLVER_SECURE_UNUSABLE ? "no usable TLSA record: PKIX fallback"
			 : dns == RESOLVER_SECURE_ABSENT ? "no TLSA record (proven by DNSSEC): PKIX fallback"
							   : "name not DNSSEC-signed: PKIX fallback";
		return;
	case RESOLVER_TIMEOUT:
		out->method = AUTH_REFUSE;
		out->error = "dns_timeout";
		out->why = "DNS lookup timed out: refusing (no fallback)";
		return;
	case RESOLVER_BOGUS:
		out->method = AUTH_REFUSE;
		out->error = "dns_error";
		out->why = "DNSSEC validation failed (bogus): refusing (no fallback)";
		return;
	case RESOLVER_INDETERMINATE:
		out->method = AUTH_REFUSE;
		out->error = "dns_error";
		out->why = "DNSSEC validation indeterminate: refusing (no fallback)";
		return;
	case RESOLVER_NO_HOST:
		out->method = AUTH_REFUSE;
		out->error = "dns_error";
		out->why = "the host name does not exist or has no address";
		return;
	case RESOLVER_FAILURE:
		break;
	}
	out->method = AUTH_REFUSE;
	out->error = "dns_error";
	out->why = "DNS lookup failed: refusing (no fallback)";
}

const char *auth_method_name(enum auth_method m)
{
	switch (m) {
	case AUTH_REFUSE: return "refuse";
	case AUTH_DANE: return "dane";
	case AUTH_PKIX: return "pkix";
	case AUTH_ENCRYPT: return "encrypt-only";
	case AUTH_PASSTHROUGH: return "passthrough";
	}
	return "unknown";
}

const char *policy_mode_name(enum policy_mode mode)
{
	switch (mode) {
	case POLICY_DANE_ONLY: return "dane-only";
	case POLICY_DANE: return "dane";
	case POLICY_PKIX: return "pkix";
	}
	return "unknown";
}

int policy_mode_parse(const char *s, enum policy_mode *out)
{
	if (strcmp(s, "dane-only") == 0)
		*out = POLICY_DANE_ONLY;
	else if (strcmp(s, "dane") == 0)
		*out = POLICY_DANE;
	else if (strcmp(s, "pkix") == 0)
		*out = POLICY_PKIX;
	else
		return -1;
	return 0;
}

int policy_pattern_matches(const char *pattern, const char *host)
{
	size_t hl = strlen(host), pl = strlen(pattern);

	if (hl > 0 && host[hl - 1] == '.')
		hl--;
	if (pl > 0 && pattern[pl - 1] == '.')
		pl--;
	if (pl == 1 && pattern[0] == '*')
		return 1;
	if (pl > 2 && pattern[0] == '*' && pattern[1] == '.')
		return hl > pl - 1 && strncasecmp(host + hl - (pl - 1), pattern + 1, pl - 1) == 0;
	return hl == pl && strncasecmp(host, pattern, hl) == 0;
}

enum policy_mode policy_lookup(const struct policy_rule *rules, size_t n, const char *host, uint16_t port,
			       enum policy_mode fallback)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((rules[i].port == 0 || rules[i].port == port) && policy_pattern_matches(rules[i].pattern, host))
			return rules[i].mode;
	return fallback;
}

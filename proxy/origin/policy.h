/*
 * policy.h - what a destination's policy makes of a DNSSEC outcome (shared/DANE.md section 5), and which
 * policy applies to a destination. Pure functions.
 */
#ifndef DANEPROXY_POLICY_H
#define DANEPROXY_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "resolver.h"

enum policy_mode { POLICY_DANE_ONLY, POLICY_DANE, POLICY_PKIX };

enum auth_method {
	AUTH_REFUSE,   /* do not connect */
	AUTH_DANE,     /* authenticate by the TLSA records only */
	AUTH_PKIX,     /* authenticate by the PKIX trust store */
	AUTH_ENCRYPT,  /* SMTP with only unusable TLSA records: TLS mandatory, peer unauthenticated (RFC 7672 2.2) */
	AUTH_PASSTHROUGH, /* CONNECT passthrough: a plain tunnel, the client authenticates the origin itself */
};

struct policy_decision {
	enum auth_method method;
	const char *error;     /* RFC 9209 Proxy-Status error token when refused, else NULL */
	const char *why;       /* one sentence for the client and the log */
};

/* policy_decide - the method the policy prescribes for a lookup outcome (smtp: the RFC 7672 profile).
 * Bogus never falls back. */
void policy_decide(enum policy_mode mode, enum resolver_outcome dns, int smtp, struct policy_decision *out);

/* auth_method_name - "refuse", "dane", "pkix", "encrypt-only". */
const char *auth_method_name(enum auth_method m);

/* policy_mode_name / policy_mode_parse - "dane-only", "dane", "pkix". */
const char *policy_mode_name(enum policy_mode mode);
int policy_mode_parse(const char *s, enum policy_mode *out);

/* A per-destination rule: host pattern ("example.com", "*.example.com" for any subdomain, "*" for all). */
struct policy_rule {
	char pattern[256];
	uint16_t port;          /* 0 = any port */
	enum policy_mode mode;
};

/* policy_pattern_matches - exact (case-insensitive, trailing dot ignored), "*.suffix" below suffix, or "*". */
int policy_pattern_matches(const char *pattern, const char *host);

/* policy_lookup - the mode of the first rule matching (host, port), else fallback. */
enum policy_mode policy_lookup(const struct policy_rule *rules, size_t n, const char *host, uint16_t port,
			       enum policy_mode fallback);

#endif

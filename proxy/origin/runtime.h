/*
 * runtime.h - what every network-facing command shares: the resolver, the TLS client context, the PKIX store,
 * and the options that set them up (--resolver, --trust-anchor, --ca-file, --policy, ...).
 */
#ifndef DANEPROXY_RUNTIME_H
#define DANEPROXY_RUNTIME_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "policy.h"
#include "resolver.h"
#include "upstream.h"

#define RUNTIME_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

struct runtime_options {
	const char *upstreams[RESOLVER_MAX_UPSTREAMS];
	size_t n_upstreams;
	const char *trust_anchor;      /* NULL: /usr/share/dns/root.key */
	const char *ca_file;           /* NULL: the system store */
	int dns_udp;
	enum resolver_validation validation;   /* self (default) or resolver */
	enum policy_mode policy;
	unsigned dns_timeout_ms;
	unsigned cache_size;           /* 0: the resolver's defaults for these four (unless ttls_literal) */
	unsigned ttl_min_s;
	unsigned ttl_max_s;
	unsigned failure_ttl_s;
	int ttls_literal;              /* the configuration gave ttl_min/failure_ttl: 0 means 0 */
	unsigned connect_timeout_ms;
	unsigned handshake_timeout_ms;
	int ee_namecheck;
	uint8_t digests[4];            /* DANE digest preference ([policy] digests), 0-terminated; {0}: the engine's */
};

struct runtime {
	uv_loop_t *loop;
	struct resolver *resolver;
	struct tls_ctx *tls;
	struct dane_store *store;
	struct upstream_env env;
};

/* The long options every such command accepts; their codes start at RUNTIME_OPT_BASE. */
enum {
	RUNTIME_OPT_BASE = 1000,
	RUNTIME_OPT_RESOLVER = RUNTIME_OPT_BASE,
	RUNTIME_OPT_TRUST_ANCHOR,
	RUNTIME_OPT_CA_FILE,
	RUNTIME_OPT_POLICY,
	RUNTIME_OPT_DNS_UDP,
	RUNTIME_OPT_DNS_TIMEOUT,
	RUNTIME_OPT_CONNECT_TIMEOUT,
	RUNTIME_OPT_EE_NAMECHECK,
	RUNTIME_OPT_VALIDATION,
	RUNTIME_OPT_END,
};
#define RUNTIME_LONG_OPTIONS                                                                                    \
	{"resolver", required_argument, NULL, RUNTIME_OPT_RESOLVER},                                            \
	{"trust-anchor", required_argument, NULL, RUNTIME_OPT_TRUST_ANCHOR},                                    \
	{"ca-file", required_argument, NULL, RUNTIME_OPT_CA_FILE},                                              \
	{"policy", required_argument, NULL, RUNTIME_OPT_POLICY},                                                \
	{"dns-udp", no_argument, NULL, RUNTIME_OPT_DNS_UDP},                                                    \
	{"dns-timeout", required_argument, NULL, RUNTIME_OPT_DNS_TIMEOUT},                                      \
	{"connect-timeout", required_argument, NULL, RUNTIME_OPT_CONNECT_TIMEOUT},                              \
	{"ee-namecheck", no_argument, NULL, RUNTIME_OPT_EE_NAMECHECK},                                          \
	{"validation", required_argument, NULL, RUNTIME_OPT_VALIDATION}

#define RUNTIME_OPTIONS_HELP                                                                                    \
	"  --resolver IP@PORT      upstream DNS resolver (repeatable; default: /etc/resolv.conf)\n"                 \
	"  --trust-anchor FILE     DNSSEC trust anchor, DS or DNSKEY (default /usr/share/dns/root.key)\n"           \
	"  --ca-file FILE          PKIX trust store (default " RUNTIME_DEFAULT_CA_FILE ")\n"                        \
	"  --policy MODE           dane (default), dane-only or pkix\n"                                             \
	"  --dns-udp               query over UDP first (default: TCP only)\n"                                      \
	"  --validation MODE       self (default: validate DNSSEC here) or resolver (trust the AD bit of the\n"     \
	"                          --resolver upstreams, which must all be on loopback)\n"                          \
	"  --dns-timeout MS        DNS lookup timeout (default 5000)\n"                                             \
	"  --connect-timeout MS    TCP connect and TLS handshake timeout each (default 10000)\n"                    \
	"  --ee-namecheck          also check host names on DANE-EE matches\n"

/* runtime_options_init - the embedded defaults. */
void runtime_options_init(struct runtime_options *o);
/* runtime_option - apply one parsed RUNTIME_OPT_* option; -1 with err for a bad value. */
int runtime_option(struct runtime_options *o, int opt, const char *arg, char *err, size_t errlen);
/* runtime_open - build resolver, TLS context and PKIX store on loop; -1 with err. */
int runtime_open(struct runtime *rt, uv_loop_t *loop, const struct runtime_options *o, char *err, size_t errlen);
/* runtime_close - release everything; run the loop afterwards so the last handles close. */
void runtime_close(struct runtime *rt);
/* runtime_parse_target - "HOST", "HOST:PORT", "[V6]:PORT" or a bare IPv6 address; port defaults to 443. */
int runtime_parse_target(const char *spec, char *host, size_t hostlen, uint16_t *port);
/* runtime_usable - DANE.md section 1 usability, for the resolver's counts. */
int runtime_usable(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, void *arg);

#endif

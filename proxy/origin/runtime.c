/*
 * runtime.c - shared setup of the network-facing commands.
 */
#include "runtime.h"
#include "dane.h"
#include "fileio.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void runtime_options_init(struct runtime_options *o)
{
	memset(o, 0, sizeof(*o));
	o->policy = POLICY_DANE;
	o->dns_timeout_ms = 5000;
	o->connect_timeout_ms = 10000;
	o->handshake_timeout_ms = 10000;
}

/* parse_ms - a decimal number of milliseconds, 1 .. 3600000. */
static int parse_ms(const char *s, unsigned *out)
{
	unsigned long v = 0;

	if (*s == '\0' || strlen(s) > 7)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v < 1 || v > 3600000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int runtime_option(struct runtime_options *o, int opt, const char *arg, char *err, size_t errlen)
{
	switch (opt) {
	case RUNTIME_OPT_RESOLVER:
		if (o->n_upstreams >= RESOLVER_MAX_UPSTREAMS) {
			snprintf(err, errlen, "--resolver: at most %d resolvers", RESOLVER_MAX_UPSTREAMS);
			return -1;
		}
		o->upstreams[o->n_upstreams++] = arg;
		return 0;
	case RUNTIME_OPT_TRUST_ANCHOR: o->trust_anchor = arg; return 0;
	case RUNTIME_OPT_CA_FILE: o->ca_file = arg; return 0;
	case RUNTIME_OPT_DNS_UDP: o->dns_udp = 1; return 0;
	case RUNTIME_OPT_EE_NAMECHECK: o->ee_namecheck = 1; return 0;
	case RUNTIME_OPT_VALIDATION:
		if (resolver_validation_parse(arg, &o->validation) < 0) {
			snprintf(err, errlen, "--validation: \"%s\" is not self or resolver", arg);
			return -1;
		}
		return 0;
	case RUNTIME_OPT_POLICY:
		if (policy_mode_parse(arg, &o->policy) < 0) {
			snprintf(err, errlen, "--policy: \"%s\" is not dane, dane-only or pkix", arg);
			return -1;
		}
		return 0;
	case RUNTIME_OPT_DNS_TIMEOUT:
		if (parse_ms(arg, &o->dns_timeout_ms) < 0) {
			snprintf(err, errlen, "--dns-timeout: \"%s\" is not 1-3600000 milliseconds", arg);
			return -1;
		}
		return 0;
	case RUNTIME_OPT_CONNECT_TIMEOUT:
		if (parse_ms(arg, &o->connect_timeout_ms) < 0) {
			snprintf(err, errlen, "--connect-timeout: \"%s\" is not 1-3600000 milliseconds", arg);
			return -1;
		}
		o->handshake_timeout_ms = o->connect_timeout_ms;
		return 0;
	}
	snprintf(err, errlen, "unknown option");
	return -1;
}

int runtime_parse_target(const char *spec, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(spec, ':');
	size_t n;
	unsigned long v = 0;
	const char *p;

	*port = 443;
	if (colon != NULL && strchr(spec, ':') != colon && spec[0] != '[')
		colon = NULL;   /* a bare IPv6 address */
	n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (colon != NULL) {
		if (colon[1] == '\0' || strlen(colon + 1) > 5)
			return -1;
		for (p = colon + 1; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v == 0 || v > 65535)
			return -1;
		*port = (uint16_t)v;
	}
	if (n >= 2 && spec[0] == '[' && spec[n - 1] == ']') {
		spec++;
		n -= 2;
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, spec, n);
	host[n] = '\0';
	return 0;
}

int runtime_usable(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, void *arg)
{
	struct dane_options opts;
	struct dane_tlsa rec = {usage, selector, mtype, data, len};

	memset(&opts, 0, sizeof(opts));
	if (arg != NULL)   /* the digest preference: a digest left out makes its records unusable, as in dane_verify */
		memcpy(opts.digest_order, arg, sizeof(opts.digest_order));
	return dane_record_usable(&rec, &opts, NULL);
}

int runtime_open(struct runtime *rt, uv_loop_t *loop, const struct runtime_options *o, char *err, size_t errlen)
{
	struct resolver_options ro;
	const char *ca = o->ca_file ? o->ca_file : RUNTIME_DEFAULT_CA_FILE;
	char *pem = NULL, why[256];
	size_t len, i;

	memset(rt, 0, sizeof(*rt));
	rt->loop = loop;
	memset(&ro, 0, sizeof(ro));
	for (i = 0; i < o->n_upstreams; i++)
		ro.upstreams[i] = o->upstreams[i];
	ro.n_upstreams = o->n_upstreams;
	ro.trust_anchor_file = o->trust_anchor;
	ro.timeout_ms = o->dns_timeout_ms;
	ro.cache_max = o->cache_size;
	ro.ttl_min = o->ttl_min_s;
	ro.ttl_max = o->ttl_max_s;
	ro.failure_ttl = o->failure_ttl_s;
	ro.ttls_literal = o->ttls_literal;
	ro.udp = o->dns_udp;
	ro.validation = o->validation;
	ro.usable = runtime_usable;
	memcpy(rt->env.digests, o->digests, sizeof(rt->env.digests));
	ro.usable_arg = rt->env.digests;
	rt->store = dane_store_new();
	if (rt->store == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (file_read_all(ca, 16u << 20, &pem, &len, why, sizeof(why)) < 0 ||
	    dane_store_add_pem(rt->store, pem, len, why, sizeof(why)) < 0) {
		free(pem);
		pem = NULL;
		if (o->ca_file != NULL) {
			snprintf(err, errlen, "--ca-file %s", why);
			goto fail;
		}
		/* No system store: PKIX fallback is impossible, DANE still works. Say so once. */
		fprintf(stderr, "daneproxy: warning: PKIX trust store %s unusable (%s); PKIX fallback will refuse\n", ca,
			why);
		dane_store_free(rt->store);
		rt->store = NULL;
	}
	free(pem);
	rt->tls = tls_client_ctx_new(why, sizeof(why));
	if (rt->tls == NULL) {
		snprintf(err, errlen, "TLS: %s", why);
		goto fail;
	}
	if (resolver_new(loop, &ro, &rt->resolver, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "resolver: %s", why);
		goto fail;
	}
	rt->env.loop = loop;
	rt->env.resolver = rt->resolver;
	rt->env.tls = rt->tls;
	rt->env.pkix_store = rt->store;
	rt->env.connect_timeout_ms = o->connect_timeout_ms;
	rt->env.handshake_timeout_ms = o->handshake_timeout_ms;
	rt->env.attempt_delay_ms = 250;
	rt->env.ee_namecheck = o->ee_namecheck;
	return 0;
fail:
	tls_ctx_free(rt->tls);
	dane_store_free(rt->store);
	memset(rt, 0, sizeof(*rt));
	return -1;
}

void runtime_close(struct runtime *rt)
{
	resolver_free(rt->resolver);
	tls_ctx_free(rt->tls);
	dane_store_free(rt->store);
	rt->resolver = NULL;
	rt->tls = NULL;
	rt->store = NULL;
}

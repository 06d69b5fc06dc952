/*
 * cmd_check.c - `daneproxy check HOST[:PORT]`: resolve with DNSSEC, connect, handshake and explain, the way the
 * proxy would decide, naming the common DANE deployment mistakes. Exit 0 authenticated, 1 refused, 2 bad input.
 */
#include "commands.h"
#include "dane.h"
#include "json.h"
#include "runtime.h"
#include "stream.h"
#include "tlsa_text.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#define CHECK_MAX_NOTES 8
#define CHECK_ALT_PORTS 7

struct check_cert {
	char subject[256];
	char issuer[256];
	time_t not_before;
	time_t not_after;
	char spki_sha256[65];
};

struct check_run {
	struct runtime rt;
	const char *host;
	uint16_t port;
	int json;
	int done;
	int exit_code;
	struct upstream *up;
	struct upstream_report rep;
	int have_chain;
	size_t n_certs;
	struct check_cert certs[DANE_MAX_CHAIN];
	char leaf_tlsa_311[65];
	char records[RESOLVER_MAX_TLSA][200];
	int record_usable[RESOLVER_MAX_TLSA];
	const char *record_why[RESOLVER_MAX_TLSA];
	size_t n_records;
	int has_3_0_x;
	int has_ee;
	int ee_matched;
	/* probing other ports when no TLSA was found at this one */
	int probes_pending;
	char alt_found[CHECK_ALT_PORTS][64];
	size_t n_alt_found;
	char notes[CHECK_MAX_NOTES][300];
	size_t n_notes;
};

static void check_usage(FILE *out)
{
	fprintf(out, "usage: daneproxy check HOST[:PORT] [--json] [options]\n\n"
		     "Resolves HOST with DNSSEC, connects to PORT (default 443), performs the TLS handshake and explains\n"
		     "the decision the proxy would take: DNSSEC outcome, each TLSA record, the presented chain, which\n"
		     "record matched at which depth, and the verdict under the policy.\n" RUNTIME_OPTIONS_HELP
		     "exit status: 0 authenticated, 1 refused, 2 bad input\n");
}

static void __attribute__((format(printf, 2, 3))) add_note(struct check_run *c, const char *fmt, ...)
{
	va_list ap;

	if (c->n_notes >= CHECK_MAX_NOTES)
		return;
	va_start(ap, fmt);
	vsnprintf(c->notes[c->n_notes++], sizeof(c->notes[0]), fmt, ap);
	va_end(ap);
}

static void fmt_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

/* on_inspect - the chain and the verdict, captured during the handshake. */
static void on_inspect(const struct dane_chain *chain, const struct dane_tlsa *records, size_t n_records,
		       const struct dane_result *verdict, void *arg)
{
	struct check_run *c = arg;
	uint8_t digest[32];
	const uint8_t *spki;
	size_t i, len;

	c->have_chain = 1;
	c->n_certs = dane_chain_len(chain);
	for (i = 0; i < c->n_certs; i++) {
		struct check_cert *cc = &c->certs[i];
		dane_chain_describe(chain, i, cc->subject, sizeof(cc->subject), cc->issuer, sizeof(cc->issuer),
				    &cc->not_before, &cc->not_after);
		spki = dane_chain_spki(chain, i, &len);
		if (wc_Sha256Hash(spki, (word32)len, digest) == 0)
			tlsa_text_hex(digest, sizeof(digest), cc->spki_sha256);
	}
	if (c->n_certs > 0)
		memcpy(c->leaf_tlsa_311, c->certs[0].spki_sha256, sizeof(c->leaf_tlsa_311));
	for (i = 0; i < n_records && i < RESOLVER_MAX_TLSA; i++)
		if (records[i].usage == DANE_USAGE_DANE_EE)
			c->ee_matched |= verdict->record == (int)i;
}

/* describe_records - usability of each record, and the selector-0 renewal trap. */
static void describe_records(struct check_run *c, const struct dane_tlsa *recs, size_t n)
{
	struct dane_options opts;
	size_t i;

	memset(&opts, 0, sizeof(opts));
	c->n_records = n;
	for (i = 0; i < n; i++) {
		tlsa_text_short(recs[i].usage, recs[i].selector, recs[i].mtype, recs[i].data, recs[i].len, c->records[i],
				sizeof(c->records[i]));
		c->record_usable[i] = dane_record_usable(&recs[i], &opts, &c->record_why[i]);
		if (recs[i].usage == DANE_USAGE_DANE_EE)
			c->has_ee = 1;
		if (recs[i].usage == DANE_USAGE_DANE_EE && recs[i].selector == DANE_SELECTOR_CERT)
			c->has_3_0_x = 1;
	}
}

static void print_text(struct check_run *c)
{
	const struct upstream_report *r = &c->rep;
	char nb[32], na[32];
	size_t i;

	printf("daneproxy check %s:%u (policy %s)\n\n", c->host, c->port, policy_mode_name(r->policy));
	printf("DNSSEC:    %s%s%s\n", r->dns_done ? resolver_outcome_name(r->dnssec) : "not reached",
	       r->dns_detail[0] ? " - " : "", r->dns_detail);
	if (r->tlsa_name[0])
		printf("TLSA at:   %s (%d records, %d usable)\n", r->tlsa_name, r->tlsa_records, r->usable_records);
	for (i = 0; i < c->n_records; i++)
		printf("  [%zu] %s  %s%s\n", i, c->records[i], c->record_usable[i] ? "usable" : "UNUSABLE: ",
		       c->record_usable[i] ? "" : c->record_why[i]);
	if (r->peer[0])
		printf("Connected: %s in %.1f ms (DNS %.1f ms)\n", r->peer, r->connect_ms, r->dns_ms);
	if (r->tls_version[0])
		printf("TLS:       %s %s, handshake %.1f ms\n", r->tls_version, r->tls_cipher, r->handshake_ms);
	if (c->have_chain) {
		printf("Chain presented (%zu):\n", c->n_certs);
		for (i = 0; i < c->n_certs; i++) {
			fmt_date(c->certs[i].not_before, nb, sizeof(nb));
			fmt_date(c->certs[i].not_after, na, sizeof(na));
			printf("  depth %zu: %s\n           issuer %s\n           valid %s .. %s\n"
			       "           SPKI SHA-256 %s\n",
			       i, c->certs[i].subject, c->certs[i].issuer, nb, na, c->certs[i].spki_sha256);
		}
	}
	if (r->verdict != NULL)
		printf("Decision:  %s\n", r->verdict);
	if (r->record[0])
		printf("Matched:   %s at depth %d\n", r->record, r->depth);
	printf("Verdict:   %s - %s\n", r->error ? "REFUSED" : "authenticated",
	       r->error ? r->details : auth_method_name(r->method));
	if (r->error)
		printf("Proxy-Status error: %s\n", r->error);
	for (i = 0; i < c->n_notes; i++)
		printf("%s %s\n", i == 0 ? "\nNotes:\n  -" : "  -", c->notes[i]);
}

static void print_json(struct check_run *c)
{
	const struct upstream_report *r = &c->rep;
	char nb[32], na[32];
	size_t i;

	printf("{\"host\": ");
	json_put_string(stdout, c->host);
	printf(", \"port\": %u, \"policy\": \"%s\", \"authenticated\": %s, \"error\": ", c->port,
	       policy_mode_name(r->policy), r->error ? "false" : "true");
	json_put_string(stdout, r->error);
	printf(", \"details\": ");
	json_put_string(stdout, r->error ? r->details : NULL);
	printf(", \"dnssec\": ");
	json_put_string(stdout, r->dns_done ? resolver_outcome_name(r->dnssec) : NULL);
	printf(", \"dns_detail\": ");
	json_put_string(stdout, r->dns_detail);
	printf(", \"tlsa_name\": ");
	json_put_string(stdout, r->tlsa_name[0] ? r->tlsa_name : NULL);
	printf(", \"tlsa\": [");
	for (i = 0; i < c->n_records; i++) {
		printf("%s{\"record\": ", i ? ", " : "");
		json_put_string(stdout, c->records[i]);
		printf(", \"usable\": %s, \"unusable_reason\": ", c->record_usable[i] ? "true" : "false");
		json_put_string(stdout, c->record_why[i]);
		printf("}");
	}
	printf("], \"peer\": ");
	json_put_string(stdout, r->peer[0] ? r->peer : NULL);
	printf(", \"tls_version\": ");
	json_put_string(stdout, r->tls_version[0] ? r->tls_version : NULL);
	printf(", \"chain\": [");
	for (i = 0; i < c->n_certs; i++) {
		fmt_date(c->certs[i].not_before, nb, sizeof(nb));
		fmt_date(c->certs[i].not_after, na, sizeof(na));
		printf("%s{\"subject\": ", i ? ", " : "");
		json_put_string(stdout, c->certs[i].subject);
		printf(", \"issuer\": ");
		json_put_string(stdout, c->certs[i].issuer);
		printf(", \"not_before\": \"%s\", \"not_after\": \"%s\", \"spki_sha256\": \"%s\"}", nb, na,
		       c->certs[i].spki_sha256);
	}
	printf("], \"verdict\": ");
	json_put_string(stdout, r->verdict);
	printf(", \"record\": ");
	json_put_string(stdout, r->record[0] ? r->record : NULL);
	printf(", \"depth\": ");
	if (r->depth >= 0)
		printf("%d", r->depth);
	else
		printf("null");
	printf(", \"dns_ms\": %.3f, \"connect_ms\": %.3f, \"handshake_ms\": %.3f, \"notes\": [", r->dns_ms, r->connect_ms,
	       r->handshake_ms);
	for (i = 0; i < c->n_notes; i++) {
		printf("%s", i ? ", " : "");
		json_put_string(stdout, c->notes[i]);
	}
	printf("]}\n");
}

/* diagnose - the common mistakes of the seed articles, from what was seen. */
static void diagnose(struct check_run *c)
{
	const struct upstream_report *r = &c->rep;
	size_t i;

	if (r->dns_done && r->dnssec == RESOLVER_INSECURE)
		add_note(c, "the name is not DNSSEC-signed (%s): TLSA records published in an unsigned zone are "
			    "ignored by every DANE client; sign the zone and publish its DS",
			 r->dns_detail);
	if (c->has_ee && !c->ee_matched && r->verdict == dane_err_no_match && c->leaf_tlsa_311[0])
		add_note(c, "no DANE-EE record matches the certificate now served: was the certificate or key replaced "
			    "without updating TLSA? The current key's record is: %s IN TLSA 3 1 1 %s",
			 r->tlsa_name, c->leaf_tlsa_311);
	if (c->has_3_0_x)
		add_note(c, "a 3 0 x record pins the whole certificate and breaks at the next renewal even when the key "
			    "is kept; prefer 3 1 1 (the public key)");
	for (i = 0; i < c->n_alt_found; i++)
		add_note(c, "TLSA records exist at %s but not at %s: wrong port or host in the owner name?",
			 c->alt_found[i], r->tlsa_name);
	if (r->dns_done && r->dnssec == RESOLVER_SECURE_UNUSABLE)
		add_note(c, "every TLSA record is unusable (unknown usage/selector/matching type or bad length): "
			    "clients treat this as no TLSA for HTTPS");
	if (r->dns_done && r->dnssec == RESOLVER_BOGUS)
		add_note(c, "DNSSEC validation fails: expired signatures, a DS that matches no key, or data changed "
			    "after signing; every validating client refuses this name");
}

static void finish(struct check_run *c)
{
	if (c->probes_pending > 0 || !c->done)
		return;
	diagnose(c);
	if (c->json)
		print_json(c);
	else
		print_text(c);
}

static const uint16_t alt_ports[CHECK_ALT_PORTS] = {443, 25, 465, 587, 993, 995, 8443};

struct probe {
	struct check_run *c;
	uint16_t port;
};

static void on_probe(const struct resolver_result *res, void *arg)
{
	struct probe *p = arg;
	struct check_run *c = p->c;

	if ((res->outcome == RESOLVER_SECURE || res->outcome == RESOLVER_SECURE_UNUSABLE) &&
	    c->n_alt_found < CHECK_ALT_PORTS)
		snprintf(c->alt_found[c->n_alt_found++], sizeof(c->alt_found[0]), "%s", res->tlsa_name);
	c->probes_pending--;
	free(p);
	finish(c);
}

/* probe - look for a TLSA RRset at _port._tcp.host in the background: the TLSA query alone, so a parent domain
 * without addresses of its own (the usual case) is probed too. */
static void probe(struct check_run *c, const char *host, uint16_t port)
{
	struct probe *p = malloc(sizeof(*p));

	if (p == NULL)
		return;
	p->c = c;
	p->port = port;
	if (resolver_lookup_tlsa(c->rt.resolver, host, port, on_probe, p) == NULL) {
		free(p);
		return;
	}
	c->probes_pending++;
}

/* probe_other_ports - no TLSA here: look for records published under another port's owner name, or under the
 * parent domain (the record written for "example.com" when the service is "www.example.com"). */
static void probe_other_ports(struct check_run *c)
{
	const char *parent = strchr(c->host, '.');
	size_t i;

	for (i = 0; i < CHECK_ALT_PORTS; i++)
		if (alt_ports[i] != c->port)
			probe(c, c->host, alt_ports[i]);
	if (parent != NULL && strchr(parent + 1, '.') != NULL)
		probe(c, parent + 1, c->port);
}

static void on_upstream(struct stream *origin, const struct upstream_report *rep, void *arg)
{
	struct check_run *c = arg;

	c->up = NULL;
	c->rep = *rep;
	c->exit_code = rep->error ? 1 : 0;
	if (origin != NULL) {
		stream_shutdown(origin);
		stream_close(origin);
	}
	if (rep->dns_done && rep->dnssec == RESOLVER_SECURE_ABSENT)
		probe_other_ports(c);
	c->done = 1;
	finish(c);
}

/* on_records - the records as the resolver returned them (also when the handshake never happens). */
static void on_records(const struct resolver_result *res, void *arg)
{
	struct check_run *c = arg;
	struct dane_tlsa recs[RESOLVER_MAX_TLSA];
	size_t i;

	for (i = 0; i < res->n_tlsa; i++)
		recs[i] = (struct dane_tlsa){res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype,
					     res->tlsa[i].data, res->tlsa[i].len};
	describe_records(c, recs, res->n_tlsa);
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		RUNTIME_LONG_OPTIONS,
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct runtime_options ro;
	struct check_run *c;
	uv_loop_t loop;
	char host[RESOLVER_MAX_NAME], err[300];
	int opt, rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return 1;
	runtime_options_init(&ro);
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (opt >= RUNTIME_OPT_BASE && opt < RUNTIME_OPT_END) {
			if (runtime_option(&ro, opt, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "daneproxy check: %s\n", err);
				free(c);
				return EXIT_BAD_INPUT;
			}
			continue;
		}
		switch (opt) {
		case 'j': c->json = 1; break;
		case 'h': check_usage(stdout); free(c); return 0;
		default: check_usage(stderr); free(c); return EXIT_BAD_INPUT;
		}
	}
	if (optind != argc - 1 || runtime_parse_target(argv[optind], host, sizeof(host), &c->port) < 0) {
		fprintf(stderr, "daneproxy check: give exactly one HOST[:PORT]\n");
		check_usage(stderr);
		free(c);
		return EXIT_BAD_INPUT;
	}
	c->host = host;
	if (uv_loop_init(&loop) < 0 || runtime_open(&c->rt, &loop, &ro, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy check: %s\n", err);
		free(c);
		return EXIT_BAD_INPUT;
	}
	c->exit_code = 1;
	/* The records are fetched through the same cache the connection will use: one set of queries. */
	if (resolver_valid_hostname(host))
		resolver_lookup(c->rt.resolver, host, c->port, on_records, c);
	c->up = upstream_open(&c->rt.env, host, c->port, ro.policy, NULL, 0, on_upstream, c);
	if (c->up == NULL) {
		fprintf(stderr, "daneproxy check: out of memory\n");
		c->done = 1;
	} else {
		upstream_set_inspect(c->up, on_inspect, c);
	}
	while ((!c->done || c->probes_pending > 0) && uv_run(&loop, UV_RUN_ONCE))
		;
	runtime_close(&c->rt);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	rc = c->exit_code;
	free(c);
	return rc;
}

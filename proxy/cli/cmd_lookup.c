/*
 * cmd_lookup.c - `daneproxy lookup HOST[:PORT]`: what the resolver would hand the proxy for a connection:
 * addresses, the TLSA RRset and the DNSSEC outcome in words (and JSON), with the RFC 9209 dns_error parameters
 * (rcode and RFC 8914 info-code) a failure would carry.
 * Exit 0 when the lookup completed securely or insecurely, 1 for bogus/failure, 2 for bad input.
 */
#include "commands.h"
#include "dane.h"
#include "json.h"
#include "resolver.h"
#include "runtime.h"
#include "tlsa_text.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

struct lookup_run {
	int json;
	int repeat;
	int done;
	int exit_code;
	const char *host;
	uint16_t port;
	enum resolver_validation validation;
	uint64_t started_ns;
	uint64_t first_ns;
	uint64_t cached_ns;
	struct resolver *resolver;
	uv_loop_t *loop;
};

static void lookup_usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy lookup HOST[:PORT] [--resolver IP@PORT]... [--trust-anchor FILE] [--timeout MS]\n"
		"                        [--udp] [--validation self|resolver] [--burst N] [--json]\n\n"
		"Resolves the addresses of HOST and its TLSA records at _PORT._tcp.HOST (default port 443) with DNSSEC\n"
		"validation, the way the proxy does, and prints the outcome.\n"
		"  --resolver      upstream resolver (repeatable; default: /etc/resolv.conf)\n"
		"  --trust-anchor  DS or DNSKEY file (default /usr/share/dns/root.key)\n"
		"  --udp           UDP first with getdns's own TCP fallback (default: TCP only, as the proxy does;\n"
		"                  getdns 1.6.0 can abort on a truncated UDP answer: for experiments only)\n"
		"  --validation    self (default): validate DNSSEC here; resolver: trust the AD bit of the --resolver\n"
		"                  upstreams, which must all be on loopback (queries pipelined on one TCP connection)\n"
		"  --burst N       also issue N concurrent lookups of the same name and report the DNS queries they cost\n"
		"exit status: 0 secure or insecure, 1 bogus, timeout or failure, 2 bad input\n");
}

/* addr_text - numeric form of a resolver address. */
static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)len);
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)len);
}

static void print_tlsa(FILE *out, const struct resolver_tlsa *t, int quote)
{
	char *hex = malloc(2u * t->len + 1);

	if (hex == NULL)
		return;
	tlsa_text_hex(t->data, t->len, hex);
	fprintf(out, "%s%u %u %u %s%s", quote ? "\"" : "", t->usage, t->selector, t->mtype, hex, quote ? "\"" : "");
	free(hex);
}

static void print_json(const struct lookup_run *run, const struct resolver_result *res, double ms)
{
	char addr[INET6_ADDRSTRLEN];
	const char *why;
	size_t i;

	printf("{\"host\": ");
	json_put_string(stdout, run->host);
	printf(", \"port\": %u, \"outcome\": ", run->port);
	json_put_string(stdout, resolver_outcome_name(res->outcome));
	printf(", \"reason\": ");
	json_put_string(stdout, res->reason);
	printf(", \"detail\": ");
	json_put_string(stdout, res->detail);
	printf(", \"addresses_secure\": %s, \"addresses\": [", res->addrs_secure ? "true" : "false");
	for (i = 0; i < res->n_addrs; i++) {
		addr_text(&res->addrs[i], addr, sizeof(addr));
		printf("%s\"%s\"", i ? ", " : "", addr);
	}
	printf("], \"cname_target\": ");
	json_put_string(stdout, res->cname_target[0] ? res->cname_target : NULL);
	printf(", \"tlsa_name\": ");
	json_put_string(stdout, res->tlsa_name[0] ? res->tlsa_name : NULL);
	printf(", \"tlsa\": [");
	for (i = 0; i < res->n_tlsa; i++) {
		struct dane_options opts;
		struct dane_tlsa rec = {res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype, res->tlsa[i].data,
					res->tlsa[i].len};
		memset(&opts, 0, sizeof(opts));
		printf("%s{\"record\": ", i ? ", " : "");
		print_tlsa(stdout, &res->tlsa[i], 1);
		printf(", \"usable\": %s, \"unusable_reason\": ", dane_record_usable(&rec, &opts, &why) ? "true" : "false");
		json_put_string(stdout, why);
		printf("}");
	}
	printf("], \"usable_records\": %zu, \"ttl\": %u, \"validation\": \"%s\", \"rcode\": ", res->n_tlsa_usable, res->ttl,
	       resolver_validation_name(run->validation));
	if (res->rcode >= 0)
		printf("%d", res->rcode);
	else
		printf("null");
	printf(", \"info_code\": ");
	if (res->ede >= 0)
		printf("%d", res->ede);
	else
		printf("null");
	printf(", \"info_code_text\": ");
	json_put_string(stdout, resolver_ede_name(res->ede));
	printf(", \"elapsed_ms\": %.3f}\n", ms);
}

static void print_text(const struct lookup_run *run, const struct resolver_result *res, double ms)
{
	char addr[INET6_ADDRSTRLEN];
	const char *why;
	size_t i;

	printf("%s port %u: DNSSEC outcome %s\n", run->host, run->port, resolver_outcome_name(res->outcome));
	printf("  %s\n", res->detail);
	if (res->cname_target[0])
		printf("  CNAME target: %s\n", res->cname_target);
	printf("  addresses (%s):", res->addrs_secure ? "secure" : "not secure");
	for (i = 0; i < res->n_addrs; i++) {
		addr_text(&res->addrs[i], addr, sizeof(addr));
		printf(" %s", addr);
	}
	printf("%s\n", res->n_addrs ? "" : " none");
	if (res->tlsa_name[0])
		printf("  TLSA at %s: %zu records, %zu usable\n", res->tlsa_name, res->n_tlsa, res->n_tlsa_usable);
	for (i = 0; i < res->n_tlsa; i++) {
		struct dane_options opts;
		struct dane_tlsa rec = {res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype, res->tlsa[i].data,
					res->tlsa[i].len};
		memset(&opts, 0, sizeof(opts));
		printf("    ");
		print_tlsa(stdout, &res->tlsa[i], 0);
		if (dane_record_usable(&rec, &opts, &why))
			printf("  usable\n");
		else
			printf("  UNUSABLE: %s\n", why);
	}
	if ((res->rcode > 0 || res->ede >= 0 || res->reason != NULL) && (res->rcode >= 0 || res->ede >= 0)) {
		printf("  DNS: rcode %d", res->rcode);
		if (res->ede >= 0)
			printf(", extended error %d (%s)", res->ede,
			       resolver_ede_name(res->ede) ? resolver_ede_name(res->ede) : "unknown");
		printf("\n");
	}
	printf("  cached for %u s; lookup took %.3f ms (validation %s)\n", res->ttl, ms,
	       resolver_validation_name(run->validation));
}

static void on_lookup(const struct resolver_result *res, void *arg)
{
	struct lookup_run *run = arg;
	double ms = (double)(uv_hrtime() - run->started_ns) / 1e6;

	if (run->json)
		print_json(run, res, ms);
	else
		print_text(run, res, ms);
	switch (res->outcome) {
	case RESOLVER_SECURE:
	case RESOLVER_SECURE_UNUSABLE:
	case RESOLVER_SECURE_ABSENT:
	case RESOLVER_INSECURE:
		run->exit_code = 0;
		break;
	default:
		run->exit_code = 1;
	}
	run->done = 1;
}

struct burst {
	int remaining;
};

static void on_burst(const struct resolver_result *res, void *arg)
{
	struct burst *b = arg;

	(void)res;
	b->remaining--;
}

int cmd_lookup(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"resolver", required_argument, NULL, 'r'}, {"trust-anchor", required_argument, NULL, 'a'},
		{"timeout", required_argument, NULL, 't'},  {"udp", no_argument, NULL, 'u'},
		{"burst", required_argument, NULL, 'b'},    {"json", no_argument, NULL, 'j'},
		{"validation", required_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
	};
	struct resolver_options ropts;
	struct lookup_run run;
	struct resolver_stats st;
	struct burst burst;
	uv_loop_t loop;
	char host[RESOLVER_MAX_NAME], err[256];
	long burst_n = 0;
	int opt, i;

	memset(&ropts, 0, sizeof(ropts));
	memset(&run, 0, sizeof(run));
	memset(&burst, 0, sizeof(burst));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			if (ropts.n_upstreams >= RESOLVER_MAX_UPSTREAMS) {
				fprintf(stderr, "daneproxy lookup: at most %d --resolver\n", RESOLVER_MAX_UPSTREAMS);
				return EXIT_BAD_INPUT;
			}
			ropts.upstreams[ropts.n_upstreams++] = optarg;
			break;
		case 'a': ropts.trust_anchor_file = optarg; break;
		case 'u': ropts.udp = 1; break;
		case 'j': run.json = 1; break;
		case 'v':
			if (resolver_validation_parse(optarg, &ropts.validation) < 0) {
				fprintf(stderr, "daneproxy lookup: --validation: \"%s\" is not self or resolver\n", optarg);
				return EXIT_BAD_INPUT;
			}
			break;
		case 't':
		case 'b': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 || v > (opt == 't' ? 600000 : 10000)) {
				fprintf(stderr, "daneproxy lookup: --%s: bad number \"%s\"\n", opt == 't' ? "timeout" : "burst",
					optarg);
				return EXIT_BAD_INPUT;
			}
			if (opt == 't')
				ropts.timeout_ms = (unsigned)v;
			else
				burst_n = v;
			break;
		}
		case 'h': lookup_usage(stdout); return 0;
		default: lookup_usage(stderr); return EXIT_BAD_INPUT;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "daneproxy lookup: give exactly one HOST[:PORT]\n");
		lookup_usage(stderr);
		return EXIT_BAD_INPUT;
	}
	if (runtime_parse_target(argv[optind], host, sizeof(host), &run.port) < 0 || !resolver_valid_hostname(host)) {
		fprintf(stderr, "daneproxy lookup: \"%s\" is not HOST or HOST:PORT with a valid DNS name and port\n",
			argv[optind]);
		return EXIT_BAD_INPUT;
	}
	run.host = host;
	run.validation = ropts.validation;
	ropts.usable = runtime_usable;
	if (uv_loop_init(&loop) < 0) {
		fprintf(stderr, "daneproxy lookup: cannot create the event loop\n");
		return 1;
	}
	if (resolver_new(&loop, &ropts, &run.resolver, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy lookup: %s\n", err);
		uv_loop_close(&loop);
		return EXIT_BAD_INPUT;
	}
	run.exit_code = 1;
	run.started_ns = uv_hrtime();
	if (resolver_lookup(run.resolver, host, run.port, on_lookup, &run) == NULL) {
		fprintf(stderr, "daneproxy lookup: cannot start the lookup\n");
		run.done = 1;
	}
	/* --burst: N more lookups of the same name while the first is in flight, as a burst of connections to one
	 * host would issue them; they should cost no DNS query of their own. */
	burst.remaining = (int)burst_n;
	for (i = 0; i < burst_n && !run.done; i++)
		if (resolver_lookup(run.resolver, host, run.port, on_burst, &burst) == NULL)
			burst.remaining--;
	while ((!run.done || burst.remaining > 0) && uv_run(&loop, UV_RUN_ONCE))
		;
	if (burst_n > 0) {
		resolver_get_stats(run.resolver, &st);
		fprintf(run.json ? stderr : stdout,
			"burst: %llu lookups cost %llu resolver queries (A, AAAA, TLSA; getdns adds its DNSKEY/DS "
			"fetches), %llu coalesced, %llu cache hits\n",
			(unsigned long long)st.lookups, (unsigned long long)st.queries,
			(unsigned long long)st.coalesced, (unsigned long long)st.cache_hits);
	}
	resolver_free(run.resolver);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&loop) != 0)
		fprintf(stderr, "daneproxy lookup: event loop did not close cleanly\n");
	return run.exit_code;
}

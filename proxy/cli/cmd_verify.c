/*
 * cmd_verify.c - `daneproxy verify`: check a certificate chain against TLSA records, offline.
 * Exit 0 authenticated, 1 not authenticated, 2 bad input.
 *
 * Records are judged as the proxy judges DNS records: one that is merely unusable (a digest of the wrong
 * length, an unknown usage, ...) is counted, warned about on stderr and ignored, and the others decide.
 * --strict makes every such record bad input, for records about to be published.
 */
#include "commands.h"
#include "config.h"
#include "dane.h"
#include "fileio.h"
#include "json.h"
#include "text.h"
#include "tlsa_text.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VERIFY_MAX_FILE (4u << 20)

struct record_list {
	struct dane_tlsa recs[DANE_MAX_RECORDS];
	uint8_t *bufs[DANE_MAX_RECORDS];
	const char *file[DANE_MAX_RECORDS];   /* where each came from: a --tlsa-file, or NULL for --tlsa */
	unsigned line[DANE_MAX_RECORDS];
	size_t n;
};

static void verify_usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy verify --host NAME --chain FILE.pem [--tlsa \"U S M HEX\"]... [--tlsa-file FILE]\n"
		"                        [--ca-file FILE] [--ee-namecheck] [--smtp] [--digests LIST] [--strict]\n"
		"                        [--time UNIX-SECONDS] [--json]\n\n"
		"Checks the chain (leaf first) against the TLSA records under the rules of RFC 6698/7671/7672.\n"
		"  --host          the name (or IP address) the client asked for\n"
		"  --tlsa          one record \"usage selector matching-type hex\" (repeatable)\n"
		"  --tlsa-file     one record per line; zone-file/dig lines (\"_443._tcp.host. 300 IN TLSA 3 1 1 ..\") work\n"
		"  --ca-file       PKIX trust store (PEM) for usages 0 and 1\n"
		"  --ee-namecheck  check the host name on DANE-EE matches too (off by default, RFC 7671 section 5.1)\n"
		"  --smtp          SMTP profile (RFC 7672): usages 0 and 1 are unusable\n"
		"  --digests       digests used, strongest first (default sha512,sha256; RFC 7671 section 9)\n"
		"  --strict        a record the DNS would call unusable is bad input (exit 2), not a warning\n"
		"  --time          verify as of this time instead of now\n"
		"  --json          print one JSON object\n"
		"exit status: 0 authenticated, 1 not authenticated, 2 bad input\n");
}

/* records_add_line - parse one record line (from file:line, or --tlsa when file is NULL) into the list; -1 with err. */
static int records_add_line(struct record_list *list, const char *p, const char *end, const char *file, unsigned line,
			    char *err, size_t errlen)
{
	struct tlsa_text_record rec;
	enum tlsa_text_status st;
	uint8_t *buf;

	if (list->n >= DANE_MAX_RECORDS) {
		snprintf(err, errlen, "more than %d TLSA records", DANE_MAX_RECORDS);
		return -1;
	}
	buf = malloc(TLSA_TEXT_MAX_DATA);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&rec, 0, sizeof(rec));
	rec.data = buf;
	rec.data_cap = TLSA_TEXT_MAX_DATA;
	rec.any_length = 1;   /* a wrong digest length makes the record unusable: judged in judge_records */
	st = tlsa_text_parse(p, end, &rec, err, errlen);
	if (st != TLSA_TEXT_OK) {
		free(buf);
		if (st == TLSA_TEXT_EMPTY)
			return 1;
		return -1;
	}
	list->bufs[list->n] = buf;
	list->recs[list->n] = (struct dane_tlsa){rec.usage, rec.selector, rec.mtype, buf, rec.len};
	list->file[list->n] = file;
	list->line[list->n] = line;
	list->n++;
	return 0;
}

/* records_add_file - every line of a record file; errors name file and line. */
static int records_add_file(struct record_list *list, const char *path, char *err, size_t errlen)
{
	char *text = NULL, why[200];
	const char *p, *end, *nl;
	size_t len;
	unsigned line = 0;

	if (file_read_all(path, VERIFY_MAX_FILE, &text, &len, err, errlen) < 0)
		return -1;
	for (p = text, end = text + len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		line++;
		if (records_add_line(list, p, nl, path, line, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, line, why);
			free(text);
			return -1;
		}
	}
	free(text);
	return 0;
}

static void records_free(struct record_list *list)
{
	size_t i;

	for (i = 0; i < list->n; i++)
		free(list->bufs[i]);
}

/* parse_time - decimal seconds since the epoch. */
static int parse_time(const char *s, time_t *out)
{
	long long v = 0;

	if (*s == '\0' || strlen(s) > 12)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	*out = (time_t)v;
	return 0;
}

/* host_check - 0 when host is a DNS name or an IP address; else -1 with the reason in why. */
static int host_check(const char *host, const char **why)
{
	char name[TEXT_NAME_MAX];
	uint8_t addr[16];
	int family;

	if (host[0] != '[' && ip_literal_parse(host, strlen(host), &family, addr) == 0)
		return 0;
	*why = hostname_normalize(host, strlen(host), name, sizeof(name));
	return *why == NULL ? 0 : -1;
}

/*
 * judge_records - DANE.md section 1 for every record, as for DNS records: an unusable one gets a warning and is
 * left to dane_verify, which ignores and counts it. With strict, a record that is unusable in itself (not merely
 * by the --smtp profile or the --digests preference) is bad input. Returns the number of such errors.
 */
static int judge_records(const struct record_list *list, const struct dane_options *opts, int strict)
{
	struct dane_options intrinsic;
	const char *why, *own;
	char where[300], shown[200];
	int errors = 0;
	size_t i;

	memset(&intrinsic, 0, sizeof(intrinsic));
	for (i = 0; i < list->n; i++) {
		const struct dane_tlsa *r = &list->recs[i];
		if (dane_record_usable(r, opts, &why))
			continue;
		if (list->file[i] != NULL)
			snprintf(where, sizeof(where), "%s:%u", list->file[i], list->line[i]);
		else
			snprintf(where, sizeof(where), "--tlsa");
		tlsa_text_short(r->usage, r->selector, r->mtype, r->data, r->len, shown, sizeof(shown));
		if (strict && !dane_record_usable(r, &intrinsic, &own)) {
			fprintf(stderr, "daneproxy verify: %s: record \"%s\" is unusable: %s\n", where, shown, own);
			errors++;
		} else {
			fprintf(stderr, "daneproxy verify: warning: %s: record \"%s\" is unusable (%s); ignored\n", where,
				shown, why);
		}
	}
	return errors;
}

/* print_record - "U S M HEX" of a record. */
static void print_record(FILE *out, const struct dane_tlsa *r, int json)
{
	char *hex = malloc(2 * r->len + 1);
	char head[16];

	snprintf(head, sizeof(head), "%u %u %u ", r->usage, r->selector, r->mtype);
	if (hex == NULL) {
		fputs(json ? "null" : "(out of memory)", out);
		return;
	}
	tlsa_text_hex(r->data, r->len, hex);
	if (json)
		fprintf(out, "\"%s%s\"", head, hex);
	else
		fprintf(out, "%s%s", head, hex);
	free(hex);
}

int cmd_verify(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},       {"chain", required_argument, NULL, 'c'},
		{"tlsa", required_argument, NULL, 'r'},       {"tlsa-file", required_argument, NULL, 'f'},
		{"ca-file", required_argument, NULL, 'C'},    {"ee-namecheck", no_argument, NULL, 'n'},
		{"smtp", no_argument, NULL, 's'},             {"json", no_argument, NULL, 'j'},
		{"time", required_argument, NULL, 't'},       {"help", no_argument, NULL, 'h'},
		{"digests", required_argument, NULL, 'd'},    {"strict", no_argument, NULL, 'S'},
		{NULL, 0, NULL, 0},
	};
	struct record_list *list = NULL;
	struct dane_chain *chain = NULL;
	struct dane_store *store = NULL;
	struct dane_options opts;
	struct dane_result res;
	const char *host = NULL, *chain_path = NULL, *ca_path = NULL, *why;
	char *text = NULL, err[512], shown[1100];
	size_t len;
	int opt, json = 0, strict = 0, rc = EXIT_BAD_INPUT;

	memset(&opts, 0, sizeof(opts));
	list = calloc(1, sizeof(*list));
	if (list == NULL) {
		fprintf(stderr, "daneproxy verify: out of memory\n");
		return EXIT_BAD_INPUT;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'H': host = optarg; break;
		case 'c': chain_path = optarg; break;
		case 'C': ca_path = optarg; break;
		case 'n': opts.ee_namecheck = 1; break;
		case 's': opts.smtp = 1; break;
		case 'j': json = 1; break;
		case 'S': strict = 1; break;
		case 'd':
			if (config_digests_parse(optarg, opts.digest_order, err, sizeof(err)) < 0) {
				fprintf(stderr, "daneproxy verify: --digests: %s\n", err);
				goto out;
			}
			break;
		case 'r':
			err[0] = '\0';
			if (records_add_line(list, optarg, optarg + strlen(optarg), NULL, 0, err, sizeof(err)) != 0) {
				fprintf(stderr, "daneproxy verify: --tlsa: %s\n",
					err[0] ? err : "empty record");
				goto out;
			}
			break;
		case 'f':
			if (records_add_file(list, optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "daneproxy verify: --tlsa-file %s\n", err);
				goto out;
			}
			break;
		case 't':
			if (parse_time(optarg, &opts.now) < 0) {
				fprintf(stderr, "daneproxy verify: --time: \"%s\" is not a number of seconds\n", optarg);
				goto out;
			}
			break;
		case 'h': verify_usage(stdout); rc = 0; goto out;
		default: verify_usage(stderr); goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daneproxy verify: unexpected argument \"%s\"\n", argv[optind]);
		goto out;
	}
	if (host == NULL || chain_path == NULL) {
		fprintf(stderr, "daneproxy verify: --host and --chain are required\n");
		verify_usage(stderr);
		goto out;
	}
	if (host_check(host, &why) < 0) {
		/* Shown escaped: a name may carry terminal escapes or bytes that are not UTF-8. */
		fprintf(stderr, "daneproxy verify: --host \"%s\" is not a DNS name or an IP address: %s\n",
			dane_printable(host, strlen(host), shown, sizeof(shown)), why);
		goto out;
	}
	if (list->n == 0) {
		fprintf(stderr, "daneproxy verify: no TLSA record given (use --tlsa or --tlsa-file)\n");
		goto out;
	}
	if (judge_records(list, &opts, strict) > 0)
		goto out;
	chain = dane_chain_new();
	if (chain == NULL)
		goto oom;
	if (file_read_all(chain_path, VERIFY_MAX_FILE, &text, &len, err, sizeof(err)) < 0 ||
	    dane_chain_load_pem(chain, text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy verify: --chain %s: %s\n", chain_path, err);
		goto out;
	}
	free(text);
	text = NULL;
	if (ca_path != NULL) {
		store = dane_store_new();
		if (store == NULL)
			goto oom;
		if (file_read_all(ca_path, VERIFY_MAX_FILE, &text, &len, err, sizeof(err)) < 0 ||
		    dane_store_add_pem(store, text, len, err, sizeof(err)) < 0) {
			fprintf(stderr, "daneproxy verify: --ca-file %s: %s\n", ca_path, err);
			goto out;
		}
		opts.store = store;
	}
	if (dane_verify(chain, list->recs, list->n, &host, 1, &opts, &res) < 0) {
		fprintf(stderr, "daneproxy verify: %s: %s\n", res.reason, res.detail);
		goto out;
	}
	if (json) {
		printf("{\"authenticated\": %s, \"depth\": ", res.authenticated ? "true" : "false");
		if (res.depth >= 0)
			printf("%d", res.depth);
		else
			printf("null");
		printf(", \"record\": ");
		if (res.record >= 0)
			print_record(stdout, &list->recs[res.record], 1);
		else
			printf("null");
		printf(", \"usable_records\": %d, \"unusable_records\": %d, \"reason\": ", res.usable_records,
		       res.unusable_records);
		json_put_string(stdout, res.reason);
		printf(", \"detail\": ");
		json_put_string(stdout, res.detail);
		printf("}\n");
	} else {
		printf("%s: %s\n", res.authenticated ? "authenticated" : "NOT authenticated", res.reason);
		printf("  %s\n", res.detail);
		if (res.record >= 0) {
			printf("  record %s: ", res.authenticated ? "matched" : "that matched");
			print_record(stdout, &list->recs[res.record], 0);
			printf(" at depth %d\n", res.depth);
		}
		printf("  usable records: %d of %zu\n", res.usable_records, list->n);
	}
	rc = res.authenticated ? EXIT_AUTHENTICATED : EXIT_REFUSED;
	goto out;
oom:
	fprintf(stderr, "daneproxy verify: out of memory\n");
out:
	free(text);
	dane_chain_free(chain);
	dane_store_free(store);
	records_free(list);
	free(list);
	return rc;
}

/*
 * cmd_verify.c - `daneproxy verify`: check a certificate chain against TLSA records, offline.
 * Exit 0 authenticated, 1 not authenticated, 2 bad input.
 */
#include "commands.h"
#include "dane.h"
#include "fileio.h"
#include "json.h"
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
	size_t n;
};

static void verify_usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy verify --host NAME --chain FILE.pem [--tlsa \"U S M HEX\"]... [--tlsa-file FILE]\n"
		"                        [--ca-file FILE] [--ee-namecheck] [--smtp] [--time UNIX-SECONDS] [--json]\n\n"
		"Checks the chain (leaf first) against the TLSA records under the rules of RFC 6698/7671/7672.\n"
		"  --tlsa          one record \"usage selector matching-type hex\" (repeatable)\n"
		"  --tlsa-file     one record per line; zone-file/dig lines (\"_443._tcp.host. 300 IN TLSA 3 1 1 ..\") work\n"
		"  --ca-file       PKIX trust store (PEM) for usages 0 and 1\n"
		"  --ee-namecheck  check the host name on DANE-EE matches too (off by default, RFC 7671 section 5.1)\n"
		"  --smtp          SMTP profile (RFC 7672): usages 0 and 1 are unusable\n"
		"  --time          verify as of this time instead of now\n"
		"  --json          print one JSON object\n"
		"exit status: 0 authenticated, 1 not authenticated, 2 bad input\n");
}

/* records_add_line - parse one record line into the list; -1 with err on bad input. */
static int records_add_line(struct record_list *list, const char *p, const char *end, char *err, size_t errlen)
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
	st = tlsa_text_parse(p, end, &rec, err, errlen);
	if (st != TLSA_TEXT_OK) {
		free(buf);
		if (st == TLSA_TEXT_EMPTY)
			return 1;
		return -1;
	}
	list->bufs[list->n] = buf;
	list->recs[list->n] = (struct dane_tlsa){rec.usage, rec.selector, rec.mtype, buf, rec.len};
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
		if (records_add_line(list, p, nl, why, sizeof(why)) < 0) {
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
		{NULL, 0, NULL, 0},
	};
	struct record_list *list = NULL;
	struct dane_chain *chain = NULL;
	struct dane_store *store = NULL;
	struct dane_options opts;
	struct dane_result res;
	const char *host = NULL, *chain_path = NULL, *ca_path = NULL;
	char *text = NULL, err[512];
	size_t len;
	int opt, json = 0, rc = EXIT_BAD_INPUT;

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
		case 'r':
			err[0] = '\0';
			if (records_add_line(list, optarg, optarg + strlen(optarg), err, sizeof(err)) != 0) {
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
	if (host[0] == '\0' || strlen(host) > 253) {
		fprintf(stderr, "daneproxy verify: --host must be a DNS name of 1 to 253 characters\n");
		goto out;
	}
	if (list->n == 0) {
		fprintf(stderr, "daneproxy verify: no TLSA record given (use --tlsa or --tlsa-file)\n");
		goto out;
	}
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

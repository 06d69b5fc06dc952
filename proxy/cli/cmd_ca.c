/*
 * cmd_ca.c - `daneproxy ca show` and `daneproxy ca export`: the local CA that CONNECT termination uses.
 */
#include "ca.h"
#include "commands.h"
#include "dane.h"
#include "tlsa_text.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/hash.h>

static void ca_usage(FILE *out)
{
	fprintf(out, "usage: daneproxy ca show [--state-dir DIR]\n"
		     "       daneproxy ca export [--state-dir DIR] [--out FILE]\n\n"
		     "show: the CA certificate's path, subject, validity and SHA-256 fingerprint.\n"
		     "export: the CA certificate in PEM (stdout or FILE), to install in clients' trust stores.\n"
		     "The CA is created in the state directory if it does not exist yet.\n");
}

static void fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "?");
}

static int ca_show(const struct ca *ca)
{
	struct dane_chain *chain = dane_chain_new();
	const uint8_t *der;
	size_t len, i;
	uint8_t fp[32];
	char subject[256], issuer[256], nb[32], na[32], err[200], hex[65], constraints[2048];
	time_t not_before, not_after;

	der = ca_cert_der(ca, &len);
	if (chain == NULL || dane_chain_add_der(chain, der, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy ca: cannot read the CA certificate\n");
		dane_chain_free(chain);
		return 1;
	}
	dane_chain_describe(chain, 0, subject, sizeof(subject), issuer, sizeof(issuer), &not_before, &not_after);
	fmt_time(not_before, nb, sizeof(nb));
	fmt_time(not_after, na, sizeof(na));
	wc_Sha256Hash(der, (word32)len, fp);
	printf("path:        %s\nsubject:     %s\nvalid:       %s .. %s\nsha256:      ", ca_cert_path(ca), subject, nb,
	       na);
	for (i = 0; i < sizeof(fp); i++)
		printf("%02X%s", fp[i], i + 1 < sizeof(fp) ? ":" : "\n");
	tlsa_text_hex(fp, sizeof(fp), hex);
	printf("sha256 hex:  %s\n", hex);
	ca_constraints(ca, constraints, sizeof(constraints));
	printf("constraints: %s\n", constraints[0] ? constraints : "none (the CA may vouch for any name)");
	dane_chain_free(chain);
	return 0;
}

static int ca_export(const struct ca *ca, const char *out_path)
{
	const uint8_t *der;
	size_t len;
	char pem[8192];
	int pem_len;
	FILE *out = stdout;

	der = ca_cert_der(ca, &len);
	pem_len = wc_DerToPem(der, (word32)len, (byte *)pem, sizeof(pem), CERT_TYPE);
	if (pem_len <= 0) {
		fprintf(stderr, "daneproxy ca: cannot encode the CA certificate\n");
		return 1;
	}
	if (out_path != NULL && (out = fopen(out_path, "w")) == NULL) {
		perror(out_path);
		return 1;
	}
	fwrite(pem, 1, (size_t)pem_len, out);
	if (out != stdout && fclose(out) != 0) {
		perror(out_path);
		return 1;
	}
	return 0;
}

int cmd_ca(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"state-dir", required_argument, NULL, 'd'},
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char dir[1024], err[512];
	const char *out_path = NULL, *action;
	struct ca *ca;
	int opt, rc;

	ca_default_dir(dir, sizeof(dir));
	if (argc < 2 || (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "export") != 0)) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			ca_usage(stdout);
			return 0;
		}
		ca_usage(stderr);
		return EXIT_BAD_INPUT;
	}
	action = argv[1];
	optind = 1;
	while ((opt = getopt_long(argc - 1, argv + 1, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'd': snprintf(dir, sizeof(dir), "%s", optarg); break;
		case 'o': out_path = optarg; break;
		case 'h': ca_usage(stdout); return 0;
		default: ca_usage(stderr); return EXIT_BAD_INPUT;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "daneproxy ca: unexpected argument \"%s\"\n", argv[optind + 1]);
		return EXIT_BAD_INPUT;
	}
	if (ca_open(dir, 1, &ca, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy ca: %s\n", err);
		return 1;
	}
	rc = strcmp(action, "show") == 0 ? ca_show(ca) : ca_export(ca, out_path);
	ca_free(ca);
	return rc;
}

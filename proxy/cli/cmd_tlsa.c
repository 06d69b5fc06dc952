/*
 * cmd_tlsa.c - `daneproxy tlsa`: the TLSA record to publish for a certificate.
 * The digests are the same bytes as the OpenSSL pipelines of the seed article (DER certificate, or DER
 * SubjectPublicKeyInfo, hashed with SHA-256 or SHA-512).
 */
#include "commands.h"
#include "dane.h"
#include "fileio.h"
#include "tlsa_text.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>
#include <wolfssl/wolfcrypt/hash.h>

static void tlsa_usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy tlsa --cert FILE.pem [--usage U] [--selector S] [--mtype M] [--host NAME]\n"
		"                      [--port N] [--proto tcp|udp|sctp]\n\n"
		"Prints the TLSA record for the first certificate of FILE, e.g.\n"
		"  _443._tcp.mail.example.com. IN TLSA 3 1 1 <hex>\n"
		"Defaults: 3 1 1, port 443, tcp, the certificate's first DNS name. For usage 2 (DANE-TA) give the\n"
		"CA certificate.\nexit status: 0 printed, 2 bad input\n");
}

/* parse_small - a decimal in [lo, hi]. */
static int parse_small(const char *s, long lo, long hi, long *out)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 6)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* valid_host - a DNS name we are willing to print in an owner name. */
static int valid_host(const char *h)
{
	size_t n = strlen(h), i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		char c = h[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.' || c == '_' || c == '*'))
			return 0;
	}
	return 1;
}

int cmd_tlsa(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"cert", required_argument, NULL, 'c'},    {"usage", required_argument, NULL, 'u'},
		{"selector", required_argument, NULL, 's'}, {"mtype", required_argument, NULL, 'm'},
		{"host", required_argument, NULL, 'H'},    {"port", required_argument, NULL, 'p'},
		{"proto", required_argument, NULL, 'P'},   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *cert_path = NULL, *host = NULL, *proto = "tcp";
	long usage = 3, selector = 1, mtype = 1, port = 443;
	struct dane_chain *chain = NULL;
	char *text = NULL, *hex = NULL, err[512], name[256];
	const uint8_t *data;
	uint8_t digest[WC_SHA512_DIGEST_SIZE];
	size_t len, host_len;
	int opt, rc = EXIT_BAD_INPUT;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': cert_path = optarg; break;
		case 'H': host = optarg; break;
		case 'u':
			if (parse_small(optarg, 0, 3, &usage) < 0) {
				fprintf(stderr, "daneproxy tlsa: --usage must be 0, 1, 2 or 3\n");
				return EXIT_BAD_INPUT;
			}
			break;
		case 's':
			if (parse_small(optarg, 0, 1, &selector) < 0) {
				fprintf(stderr, "daneproxy tlsa: --selector must be 0 (certificate) or 1 (public key)\n");
				return EXIT_BAD_INPUT;
			}
			break;
		case 'm':
			if (parse_small(optarg, 0, 2, &mtype) < 0) {
				fprintf(stderr, "daneproxy tlsa: --mtype must be 0 (full), 1 (SHA-256) or 2 (SHA-512)\n");
				return EXIT_BAD_INPUT;
			}
			break;
		case 'p':
			if (parse_small(optarg, 1, 65535, &port) < 0) {
				fprintf(stderr, "daneproxy tlsa: --port must be 1-65535\n");
				return EXIT_BAD_INPUT;
			}
			break;
		case 'P':
			if (strcmp(optarg, "tcp") != 0 && strcmp(optarg, "udp") != 0 && strcmp(optarg, "sctp") != 0) {
				fprintf(stderr, "daneproxy tlsa: --proto must be tcp, udp or sctp\n");
				return EXIT_BAD_INPUT;
			}
			proto = optarg;
			break;
		case 'h': tlsa_usage(stdout); return 0;
		default: tlsa_usage(stderr); return EXIT_BAD_INPUT;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daneproxy tlsa: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_BAD_INPUT;
	}
	if (cert_path == NULL) {
		fprintf(stderr, "daneproxy tlsa: --cert is required\n");
		tlsa_usage(stderr);
		return EXIT_BAD_INPUT;
	}
	chain = dane_chain_new();
	if (chain == NULL) {
		fprintf(stderr, "daneproxy tlsa: out of memory\n");
		return EXIT_BAD_INPUT;
	}
	if (file_read_all(cert_path, 4u << 20, &text, &len, err, sizeof(err)) < 0 ||
	    dane_chain_load_pem(chain, text, len, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy tlsa: --cert %s: %s\n", cert_path, err);
		goto out;
	}
	if (host == NULL) {
		if (dane_chain_dns_name(chain, 0, name, sizeof(name)) < 0) {
			fprintf(stderr, "daneproxy tlsa: the certificate names no host; give --host\n");
			goto out;
		}
		host = name;
	}
	if (!valid_host(host)) {
		fprintf(stderr, "daneproxy tlsa: \"%s\" is not a valid host name\n", host);
		goto out;
	}
	data = selector == 0 ? dane_chain_der(chain, 0, &len) : dane_chain_spki(chain, 0, &len);
	if (mtype == 1) {
		if (wc_Sha256Hash(data, (word32)len, digest) != 0)
			goto out;
		data = digest;
		len = WC_SHA256_DIGEST_SIZE;
	} else if (mtype == 2) {
		if (wc_Sha512Hash(data, (word32)len, digest) != 0)
			goto out;
		data = digest;
		len = WC_SHA512_DIGEST_SIZE;
	}
	hex = malloc(2 * len + 1);
	if (hex == NULL) {
		fprintf(stderr, "daneproxy tlsa: out of memory\n");
		goto out;
	}
	tlsa_text_hex(data, len, hex);
	host_len = strlen(host);
	if (host[host_len - 1] == '.')
		host_len--;
	printf("_%ld._%s.%.*s. IN TLSA %ld %ld %ld %s\n", port, proto, (int)host_len, host, usage, selector, mtype,
	       hex);
	rc = 0;
out:
	free(hex);
	free(text);
	dane_chain_free(chain);
	return rc;
}

/*
 * fuzz_chain_load.c - libFuzzer harness for the PEM/DER chain loader and the engine behind it.
 * Loads the input as a chain; when it loads, runs verifications with records derived from the input so that
 * certificate parsing, SPKI extraction, name checks and the backtracking path search (DANE-TA, bare keys, PKIX
 * over a store made of the same input) all see hostile data. Aborts when a verdict breaks the engine's promises:
 * at most DANE_MAX_EDGES signatures checked, an explanation that is terminated and free of control characters.
 */
#include "dane.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_result - abort unless res keeps the engine's promises. */
static void check_result(const struct dane_result *res)
{
	const unsigned char *p;

	if (res->issuers_tried < 0 || res->issuers_tried > DANE_MAX_EDGES || res->reason == NULL ||
	    memchr(res->detail, '\0', sizeof(res->detail)) == NULL)
		abort();
	for (p = (const unsigned char *)res->detail; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct dane_chain *chain;
	struct dane_store *store;
	struct dane_options opts;
	struct dane_result res;
	struct dane_tlsa recs[5];
	const char *names[2] = {"www.example.test", "127.0.0.1"};
	uint8_t zeros[64] = {0};
	char err[256];
	size_t i, len, spki_len;

	if (!initialised) {
		wolfSSL_Init();
		initialised = 1;
	}
	chain = dane_chain_new();
	if (chain == NULL)
		return 0;
	if (dane_chain_load_pem(chain, (const char *)data, size, err, sizeof(err)) == 0) {
		memset(&opts, 0, sizeof(opts));
		opts.now = 1900000000;
		i = dane_chain_len(chain) - 1;
		recs[0] = (struct dane_tlsa){3, 1, 1, zeros, 32};
		recs[1] = (struct dane_tlsa){2, 0, 2, zeros, 64};
		recs[2] = (struct dane_tlsa){2, 1, 0, dane_chain_spki(chain, i, &spki_len), 0};
		recs[2].len = spki_len;
		recs[3] = (struct dane_tlsa){2, 0, 0, dane_chain_der(chain, i, &len), 0};
		recs[3].len = len;
		recs[4] = (struct dane_tlsa){0, 0, 0, recs[3].data, len};
		dane_verify(chain, recs, 4, names, 2, &opts, &res);
		check_result(&res);
		/* The same input as a trust store: PKIX-only and PKIX-TA searches. */
		store = dane_store_new();
		if (store != NULL && dane_store_add_pem(store, (const char *)data, size, err, sizeof(err)) > 0) {
			opts.store = store;
			dane_verify_pkix(chain, names, 2, &opts, &res);
			check_result(&res);
			dane_verify(chain, &recs[4], 1, names, 2, &opts, &res);
			check_result(&res);
		}
		dane_store_free(store);
		for (i = 0; i < dane_chain_len(chain); i++) {
			char name[256];
			dane_chain_dns_name(chain, i, name, sizeof(name));
		}
	}
	dane_chain_free(chain);
	return 0;
}

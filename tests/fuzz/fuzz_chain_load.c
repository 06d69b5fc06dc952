/*
 * fuzz_chain_load.c - libFuzzer harness for the PEM/DER chain loader and the engine behind it.
 * Loads the input as a chain; when it loads, runs a verification with records derived from the input
 * so that certificate parsing, SPKI extraction, name checks and chain building all see hostile data.
 */
#include "dane.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int initialised;
	struct dane_chain *chain;
	struct dane_options opts;
	struct dane_result res;
	struct dane_tlsa recs[4];
	const char *names[2] = {"www.example.test", "127.0.0.1"};
	uint8_t zeros[64] = {0};
	char err[256];
	size_t i, len;

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
		recs[0] = (struct dane_tlsa){3, 1, 1, zeros, 32};
		recs[1] = (struct dane_tlsa){2, 0, 2, zeros, 64};
		recs[2] = (struct dane_tlsa){2, 1, 0, zeros, 64};
		i = dane_chain_len(chain) - 1;
		recs[3] = (struct dane_tlsa){2, 0, 0, dane_chain_der(chain, i, &len), 0};
		recs[3].len = len;
		dane_verify(chain, recs, 4, names, 2, &opts, &res);
		for (i = 0; i < dane_chain_len(chain); i++) {
			char name[256];
			dane_chain_dns_name(chain, i, name, sizeof(name));
		}
	}
	dane_chain_free(chain);
	return 0;
}

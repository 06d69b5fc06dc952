/*
 * fuzz_config.c - libFuzzer harness for the INI configuration loader and validation.
 * Invariants: no crash, every error message is NUL-terminated and names the file, counts stay in bounds.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config cfg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t i;

	config_defaults(&cfg);
	config_load_string(&cfg, (const char *)data, size, "fuzz.ini");
	config_validate(&cfg);
	if (cfg.n_errors > CONFIG_MAX_ERRORS || cfg.n_listen > CONFIG_MAX_LISTEN || cfg.n_routes > CONFIG_MAX_ROUTES ||
	    cfg.n_rules > CONFIG_MAX_RULES || cfg.n_allow_from > CONFIG_MAX_ALLOW ||
	    cfg.n_upstreams > CONFIG_MAX_UPSTREAMS)
		abort();
	for (i = 0; i < cfg.n_errors; i++)
		if (memchr(cfg.errors[i], '\0', sizeof(cfg.errors[i])) == NULL)
			abort();
	return 0;
}

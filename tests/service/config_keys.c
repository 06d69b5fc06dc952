/*
 * config_keys.c - the configuration keys as the loader knows them, for tests/service/check-manuals.sh.
 *
 *   config-keys               one line per key: SECTION<TAB>NAME<TAB>TYPE<TAB>HELP ("route" for [route NAME])
 *   config-keys --load FILE   load FILE (no whole-configuration validation) and print its errors, one a line
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct config_key_info k;
	struct config *c;
	size_t i;

	if (argc == 1) {
		for (i = 0; config_key_at(i, &k) == 0; i++)
			printf("%s\t%s\t%s\t%s\n", k.section, k.name, k.type, k.help);
		return i == config_key_count() ? 0 : 1;
	}
	if (argc == 3 && strcmp(argv[1], "--load") == 0) {
		if ((c = malloc(sizeof(*c))) == NULL)
			return 1;
		config_defaults(c);
		config_load_file(c, argv[2]);
		for (i = 0; i < c->n_errors; i++)
			printf("%s\n", c->errors[i]);
		free(c);
		return 0;
	}
	fprintf(stderr, "usage: config-keys [--load FILE]\n");
	return 2;
}

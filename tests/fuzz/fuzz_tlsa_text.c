/*
 * fuzz_tlsa_text.c - libFuzzer harness for the TLSA presentation-format parser.
 * Invariants: never crash, never write past the output buffer, and on success the data has the digest's length.
 */
#include "tlsa_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A small capacity makes the overflow path reachable with short inputs. */
	uint8_t buf[96];
	struct tlsa_text_record rec;
	char err[200];
	char *copy = malloc(size ? size : 1);

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	memset(&rec, 0, sizeof(rec));
	rec.data = buf;
	rec.data_cap = sizeof(buf);
	if (tlsa_text_parse(copy, copy + size, &rec, err, sizeof(err)) == TLSA_TEXT_OK) {
		if (rec.len > sizeof(buf) || (rec.mtype == 1 && rec.len != 32) || (rec.mtype == 2 && rec.len != 64))
			abort();
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	free(copy);
	return 0;
}

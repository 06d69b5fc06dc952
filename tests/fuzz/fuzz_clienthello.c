/*
 * fuzz_clienthello.c - libFuzzer harness for the CONNECT clients' ClientHello parser (proxy/clienthello.c).
 * Invariants: no crash or overread; a complete hello accounts for no more bytes than given; an SNI is bounded,
 * and a valid one has a non-empty normal form without NUL; every prefix of a complete hello asks for more.
 */
#include "clienthello.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clienthello ch;
	const char *why;
	char shown[1100];
	enum clienthello_status st = clienthello_parse(data, size, CLIENTHELLO_MAX, &ch, &why);

	if (st == CLIENTHELLO_MALFORMED && why == NULL)
		abort();
	if (st != CLIENTHELLO_COMPLETE)
		return 0;
	if (ch.bytes == 0 || ch.bytes > size || ch.sni_len >= sizeof(ch.sni))
		abort();
	if (ch.sni_valid && (ch.sni_name[0] == '\0' || !ch.has_sni || memchr(ch.sni, '\0', ch.sni_len) != NULL))
		abort();
	clienthello_sni_printable(&ch, shown, sizeof(shown));
	if (strlen(shown) >= sizeof(shown))
		abort();
	if (clienthello_parse(data, ch.bytes - 1, CLIENTHELLO_MAX, &ch, &why) != CLIENTHELLO_NEED_MORE)
		abort();
	return 0;
}

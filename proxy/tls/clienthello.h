/*
 * clienthello.h - the TLS ClientHello a CONNECT client sends, parsed before any TLS session exists: the whole
 * handshake message, reassembled over as many records as the client split it into (RFC 8446 section 5.1), with
 * the server name (RFC 6066 section 3) and the ALPN list (RFC 7301) it carries.
 *
 * Pure: no I/O, no state between calls; the caller buffers the client's bytes and asks again when more arrive.
 * The proxy uses it to refuse, before minting anything, a client whose SNI is not the verified CONNECT host.
 */
#ifndef DANEPROXY_CLIENTHELLO_H
#define DANEPROXY_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#define CLIENTHELLO_MAX (32 * 1024)   /* largest ClientHello accepted (Chrome's with post-quantum shares: ~2 KiB) */

enum clienthello_status {
	CLIENTHELLO_COMPLETE,     /* the whole message is in and well formed */
	CLIENTHELLO_NEED_MORE,    /* a prefix of a possibly valid ClientHello: read more */
	CLIENTHELLO_NOT_TLS,      /* the first bytes are not a TLS handshake record */
	CLIENTHELLO_MALFORMED,    /* *why says how */
	CLIENTHELLO_TOO_LARGE,    /* larger than max */
};

struct clienthello {
	int has_sni;
	uint8_t sni[256];         /* the host_name as sent (may hold any byte, NUL included) */
	size_t sni_len;
	int sni_valid;            /* a valid DNS host name (text.h): then sni_name is its normal form */
	char sni_name[256];
	char alpn[256];           /* the offered protocols, comma-separated ("h2,http/1.1"); "" when none */
	size_t bytes;             /* bytes of the records that carried the message */
};

/*
 * clienthello_parse - parse the ClientHello at the start of [p, p + len), no larger than max bytes (its
 * handshake message). On CLIENTHELLO_MALFORMED, *why is a constant explaining it.
 */
enum clienthello_status clienthello_parse(const uint8_t *p, size_t len, size_t max, struct clienthello *out,
					  const char **why);

/* clienthello_sni_printable - the SNI as sent, for messages: bytes outside printable ASCII as \xNN. */
void clienthello_sni_printable(const struct clienthello *ch, char *out, size_t outlen);

#endif

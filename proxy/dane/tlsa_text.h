/*
 * tlsa_text.h - TLSA records in presentation format ("U S M HEX", or a whole zone-file / dig line).
 *
 * A pure parser over (p, end): no allocation beyond the caller's output buffer, no locale,
 * no strtol on untrusted text. Used by the command-line tools and the configuration.
 */
#ifndef DANEPROXY_TLSA_TEXT_H
#define DANEPROXY_TLSA_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define TLSA_TEXT_MAX_DATA 65535  /* RDATA can never be longer */

enum tlsa_text_status {
	TLSA_TEXT_OK = 0,        /* a record was parsed into out */
	TLSA_TEXT_EMPTY = 1,     /* blank line or comment: nothing to do */
	TLSA_TEXT_MALFORMED = -1 /* err says why */
};

struct tlsa_text_record {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	size_t len;       /* bytes written to data */
	uint8_t *data;    /* caller-supplied buffer of data_cap bytes */
	size_t data_cap;
	int any_length;   /* in: accept digest data of any length; the caller judges usability as for DNS records */
};

/*
 * tlsa_text_parse - parse one line. Accepts "U S M HEX..." (hex may be split by blanks) and presentation lines
 * "owner [ttl] [class] TLSA U S M HEX..." (as dig and zone files print them). Comments start with ';' or '#'.
 * Strict about what a user typed: fields must be decimal 0-255, hex must be even-length, and SHA-256 / SHA-512
 * data must have the digest's length unless out->any_length is set (then a wrong length is left to
 * dane_record_usable, which calls such a record unusable, as it would be in the DNS).
 */
enum tlsa_text_status tlsa_text_parse(const char *p, const char *end, struct tlsa_text_record *out,
				      char *err, size_t errlen);

/* tlsa_text_hex - write len bytes as lowercase hex plus NUL into out (2*len+1 bytes). */
void tlsa_text_hex(const uint8_t *data, size_t len, char *out);

/* tlsa_text_short - "U S M hex" for logs and reports, the data cut to its first 64 bytes with "..." after. */
void tlsa_text_short(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, char *buf,
		     size_t buflen);

#endif

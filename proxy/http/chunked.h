/*
 * chunked.h - a strict reading of chunked framing (RFC 9112 section 7.1), kept beside http_parser's.
 *
 * Debian builds http_parser without HTTP_PARSER_STRICT: it takes any two bytes for the CRLF after chunk data and
 * skips junk after a chunk size. A proxy that forwards framing as it received it must not read it more leniently
 * than the next hop, or the two disagree on where a message ends: a client's body becomes a second request at the
 * origin (request smuggling), an origin's body a second response to the client. So every chunked body is scanned
 * here first, only the bytes this scan accepts are given to http_parser, and the message must end where it says.
 */
#ifndef DANEPROXY_CHUNKED_H
#define DANEPROXY_CHUNKED_H

#include <stddef.h>

/* Where the scan is; a zeroed struct is a scan at the start of a body. */
struct chunked {
	int state;
	int digits;               /* hex digits of the current chunk size so far */
	unsigned long long left;  /* data bytes of the current chunk still to come */
	size_t trailer;           /* bytes of the trailer section so far */
	const char *error;        /* why the framing was refused (a constant), NULL while it is fine */
};

/*
 * chunked_scan - scan the next len bytes of the body: the number of them that belong to the message (all of them
 * unless its end is among them). Afterwards chunked_done() or c->error may be set.
 */
size_t chunked_scan(struct chunked *c, const char *data, size_t len);

/* Why a message is refused when http_parser ended it elsewhere than the scan did (can happen only where the scan
 * is stricter than the parser yet both accepted every byte). */
extern const char chunked_err_framing_differs[];

/* chunked_done - the last chunk and the trailer section's empty line have been scanned. */
int chunked_done(const struct chunked *c);

#endif

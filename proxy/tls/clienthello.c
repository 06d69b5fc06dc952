/*
 * clienthello.c - parse a TLS ClientHello across records (see clienthello.h).
 *
 * Two steps: the handshake message is reassembled from the payloads of consecutive handshake records, then the
 * message is read field by field with a bounds-checked reader. Every length is checked against what contains it.
 */
#include "clienthello.h"
#include "text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TLS_RECORD_HEADER 5
#define TLS_RECORD_MAX 16384        /* TLSPlaintext.length limit, RFC 8446 section 5.1 */
#define TLS_CONTENT_HANDSHAKE 22
#define TLS_HANDSHAKE_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_ALPN 16

/* A bounds-checked reader over [p, end). */
struct reader {
	const uint8_t *p;
	const uint8_t *end;
};

static int take(struct reader *r, size_t n, const uint8_t **out)
{
	if ((size_t)(r->end - r->p) < n)
		return -1;
	if (out != NULL)
		*out = r->p;
	r->p += n;
	return 0;
}

static int take_u8(struct reader *r, size_t *v)
{
	const uint8_t *b;

	if (take(r, 1, &b) < 0)
		return -1;
	*v = b[0];
	return 0;
}

static int take_u16(struct reader *r, size_t *v)
{
	const uint8_t *b;

	if (take(r, 2, &b) < 0)
		return -1;
	*v = (size_t)b[0] << 8 | b[1];
	return 0;
}

/* sub - a reader over the next n bytes of r (a length-prefixed vector), which r skips. */
static int sub(struct reader *r, size_t n, struct reader *out)
{
	const uint8_t *b;

	if (take(r, n, &b) < 0)
		return -1;
	out->p = b;
	out->end = b + n;
	return 0;
}

/* parse_sni - server_name extension: one host_name (RFC 6066 section 3 allows one name per type). */
static const char *parse_sni(struct reader ext, struct clienthello *out)
{
	struct reader list, name;
	size_t list_len, type, len;

	if (out->has_sni)
		return "two server_name extensions";
	if (take_u16(&ext, &list_len) < 0 || sub(&ext, list_len, &list) < 0 || ext.p != ext.end || list_len == 0)
		return "malformed server_name extension";
	while (list.p < list.end) {
		if (take_u8(&list, &type) < 0 || take_u16(&list, &len) < 0 || sub(&list, len, &name) < 0)
			return "malformed server_name extension";
		if (type != 0)
			continue;
		if (out->has_sni)
			return "two host names in server_name";
		if (len == 0 || len >= sizeof(out->sni))
			return "server_name host name empty or longer than 255 bytes";
		out->has_sni = 1;
		memcpy(out->sni, name.p, len);
		out->sni_len = len;
		out->sni_valid = memchr(name.p, '\0', len) == NULL &&
				 hostname_normalize((const char *)name.p, len, out->sni_name, sizeof(out->sni_name)) == NULL;
		if (!out->sni_valid)
			out->sni_name[0] = '\0';
	}
	return NULL;
}

/* parse_alpn - the protocol list, kept comma-separated (protocols with a comma or a control byte: malformed). */
static const char *parse_alpn(struct reader ext, struct clienthello *out)
{
	struct reader list;
	const uint8_t *proto;
	size_t list_len, len, used = 0, i;

	if (take_u16(&ext, &list_len) < 0 || sub(&ext, list_len, &list) < 0 || ext.p != ext.end || list_len == 0)
		return "malformed ALPN extension";
	while (list.p < list.end) {
		if (take_u8(&list, &len) < 0 || len == 0 || take(&list, len, &proto) < 0)
			return "malformed ALPN extension";
		for (i = 0; i < len; i++)
			if (proto[i] <= 0x20 || proto[i] >= 0x7f || proto[i] == ',')
				return "ALPN protocol name with a comma or a byte outside printable ASCII";
		if (used + len + 2 > sizeof(out->alpn))
			continue;   /* kept as far as it fits: only the first few matter */
		if (used > 0)
			out->alpn[used++] = ',';
		memcpy(out->alpn + used, proto, len);
		used += len;
		out->alpn[used] = '\0';
	}
	return NULL;
}

/* parse_message - the ClientHello body (RFC 8446 section 4.1.2; TLS 1.2 hellos have the same shape). */
static const char *parse_message(const uint8_t *msg, size_t len, struct clienthello *out)
{
	struct reader r = {msg, msg + len}, exts, ext;
	size_t n, type;
	const char *why;

	if (take(&r, 2 + 32, NULL) < 0)                                   /* legacy_version, random */
		return "truncated ClientHello";
	if (take_u8(&r, &n) < 0 || n > 32 || take(&r, n, NULL) < 0)       /* legacy_session_id */
		return "malformed session id";
	if (take_u16(&r, &n) < 0 || n < 2 || n % 2 != 0 || take(&r, n, NULL) < 0)   /* cipher_suites */
		return "malformed cipher suite list";
	if (take_u8(&r, &n) < 0 || n < 1 || take(&r, n, NULL) < 0)        /* legacy_compression_methods */
		return "malformed compression methods";
	if (r.p == r.end)
		return NULL;                                                  /* no extensions (old clients) */
	if (take_u16(&r, &n) < 0 || sub(&r, n, &exts) < 0 || r.p != r.end)
		return "malformed extension block";
	while (exts.p < exts.end) {
		if (take_u16(&exts, &type) < 0 || take_u16(&exts, &n) < 0 || sub(&exts, n, &ext) < 0)
			return "malformed extension";
		why = NULL;
		if (type == TLS_EXT_SERVER_NAME)
			why = parse_sni(ext, out);
		else if (type == TLS_EXT_ALPN)
			why = out->alpn[0] ? "two ALPN extensions" : parse_alpn(ext, out);
		if (why != NULL)
			return why;
	}
	return NULL;
}

enum clienthello_status clienthello_parse(const uint8_t *p, size_t len, size_t max, struct clienthello *out,
					  const char **why)
{
	uint8_t *msg = NULL;
	size_t off = 0, have = 0, need = 0, rec_len;
	enum clienthello_status st = CLIENTHELLO_NEED_MORE;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (len >= 1 && p[0] != TLS_CONTENT_HANDSHAKE)
		return CLIENTHELLO_NOT_TLS;
	if (len >= 2 && p[1] != 3)
		return CLIENTHELLO_NOT_TLS;
	/* Records: header, then a payload that continues the handshake message. */
	while (off + TLS_RECORD_HEADER <= len) {
		if (p[off] != TLS_CONTENT_HANDSHAKE || p[off + 1] != 3) {
			*why = "a record other than handshake before the ClientHello was complete";
			st = CLIENTHELLO_MALFORMED;
			goto out;
		}
		rec_len = (size_t)p[off + 3] << 8 | p[off + 4];
		if (rec_len == 0 || rec_len > TLS_RECORD_MAX) {
			*why = "handshake record empty or longer than 16 KiB";
			st = CLIENTHELLO_MALFORMED;
			goto out;
		}
		if (off + TLS_RECORD_HEADER + rec_len > len)
			break;   /* the record is not all here yet */
		if (msg == NULL) {
			/* The first record holds the message header (a client may not split even that, but be lenient:
			 * the header is only 4 bytes and comes whole in every real client). */
			if (rec_len < 4) {
				*why = "first handshake record shorter than a message header";
				st = CLIENTHELLO_MALFORMED;
				goto out;
			}
			if (p[off + TLS_RECORD_HEADER] != TLS_HANDSHAKE_CLIENT_HELLO) {
				*why = "the first handshake message is not a ClientHello";
				st = CLIENTHELLO_MALFORMED;
				goto out;
			}
			need = (size_t)p[off + 6] << 16 | (size_t)p[off + 7] << 8 | p[off + 8];
			if (need > max) {
				st = CLIENTHELLO_TOO_LARGE;
				goto out;
			}
			need += 4;
			msg = malloc(need);
			if (msg == NULL) {
				*why = "out of memory";
				st = CLIENTHELLO_MALFORMED;
				goto out;
			}
		}
		if (have + rec_len > need) {
			/* Bytes of a next handshake message in the same record: a client sends nothing after its hello
			 * until the server answers. */
			*why = "data after the ClientHello in its last record";
			st = CLIENTHELLO_MALFORMED;
			goto out;
		}
		memcpy(msg + have, p + off + TLS_RECORD_HEADER, rec_len);
		have += rec_len;
		off += TLS_RECORD_HEADER + rec_len;
		if (have == need) {
			*why = parse_message(msg + 4, need - 4, out);
			if (*why != NULL) {
				memset(out, 0, sizeof(*out));
				st = CLIENTHELLO_MALFORMED;
				goto out;
			}
			out->bytes = off;
			st = CLIENTHELLO_COMPLETE;
			goto out;
		}
	}
	/* Incomplete: too large already if the records in hand could never hold a bounded hello. */
	if (off > max + 4 + (max / TLS_RECORD_MAX + 1) * TLS_RECORD_HEADER)
		st = CLIENTHELLO_TOO_LARGE;
out:
	free(msg);
	return st;
}

void clienthello_sni_printable(const struct clienthello *ch, char *out, size_t outlen)
{
	size_t i, j = 0;

	if (outlen == 0)
		return;
	for (i = 0; i < ch->sni_len && j + 5 < outlen; i++) {
		uint8_t b = ch->sni[i];
		if (b > 0x20 && b < 0x7f && b != '\\' && b != '"')
			out[j++] = (char)b;
		else
			j += (size_t)snprintf(out + j, outlen - j, "\\x%02x", b);
	}
	out[j] = '\0';
}

/*
 * json.c - JSON string escaping (RFC 8259 section 7), always valid UTF-8 out.
 *
 * Log lines carry bytes that clients choose (SNI, host names in refused requests, error details): whatever they
 * are, the line must stay one valid JSON object a log shipper can parse.
 */
#include "json.h"

#include <stddef.h>
#include <stdint.h>

/* utf8_sequence - length of the valid UTF-8 sequence at p (1-4), or 0 when the bytes there are not one
 * (stray continuation bytes, overlong forms, surrogates, code points above U+10FFFF, truncation). */
static size_t utf8_sequence(const unsigned char *p)
{
	uint32_t cp;
	size_t n, i;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)   /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void json_put_string(FILE *out, const char *s)
{
	const unsigned char *p;
	size_t n;

	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (p = (const unsigned char *)s; *p; p += n) {
		n = 1;
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(out, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, out);
			} else if ((n = utf8_sequence(p)) > 0) {
				fwrite(p, 1, n, out);
			} else {
				fputs("\\ufffd", out);   /* not UTF-8: the replacement character, one per byte */
				n = 1;
			}
		}
	}
	fputc('"', out);
}

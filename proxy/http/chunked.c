/*
 * chunked.c - the strict chunked-framing scan (see chunked.h). One state per thing awaited:
 *
 *   chunk-size [ BWS ; ext ] CRLF  chunk-data CRLF  ...  0 [ ext ] CRLF  *( field-line CRLF )  CRLF
 */
#include "chunked.h"

#include "text.h"

enum {
	CK_SIZE,           /* the first hex digit of a chunk size (zero: a new scan starts here) */
	CK_SIZE_MORE,      /* more hex digits, whitespace before an extension, ';' or CR */
	CK_SIZE_WS,        /* BWS after the size: more of it or ';' */
	CK_EXT,            /* a chunk extension, up to CR */
	CK_SIZE_LF,        /* LF ending the chunk-size line */
	CK_DATA,           /* `left` bytes of chunk data */
	CK_DATA_CR,        /* CR after chunk data */
	CK_DATA_LF,        /* LF after chunk data */
	CK_TRAILER_START,  /* a trailer field or the CR of the final empty line */
	CK_TRAILER,        /* a trailer field, up to CR */
	CK_TRAILER_LF,     /* LF ending a trailer field */
	CK_END_LF,         /* LF ending the message */
	CK_DONE,
	CK_BAD,
};

const char chunked_err_framing_differs[] =
	"malformed chunked body: the message does not end where a strict reading (RFC 9112) ends it";

#define CK_MAX_DIGITS 15             /* significant ones: 2^60 bytes in one chunk is more than any body */
#define CK_MAX_TRAILER (64 * 1024)   /* the request side refuses trailers past 16 KiB itself, by name */

/* field_byte - may appear in a chunk extension or a trailer line: VCHAR, obs-text, SP, HTAB. */
static int field_byte(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int bad(struct chunked *c, const char *why)
{
	c->error = why;
	return CK_BAD;
}

/* size_byte - one byte of a chunk-size line before its extension. */
static int size_byte(struct chunked *c, unsigned char ch)
{
	int v = hex_digit(ch);

	if (v >= 0) {
		if (c->left == 0 && v == 0)
			return CK_SIZE_MORE;   /* a leading zero: allowed, and no digit of the size */
		if (c->digits == CK_MAX_DIGITS)
			return bad(c, "malformed chunked body: chunk size too large");
		c->left = c->left * 16 + (unsigned)v;
		c->digits++;
		return CK_SIZE_MORE;
	}
	if (c->state == CK_SIZE)
		return bad(c, "malformed chunked body: invalid chunk size");
	if (ch == ' ' || ch == '\t')
		return CK_SIZE_WS;
	if (ch == ';')
		return CK_EXT;
	if (ch == '\r')
		return CK_SIZE_LF;
	return bad(c, "malformed chunked body: invalid chunk size");
}

/* trailer_byte - one byte of the trailer section (a line starting with whitespace would be obs-fold). */
static int trailer_byte(struct chunked *c, unsigned char ch)
{
	if (++c->trailer > CK_MAX_TRAILER)
		return bad(c, "malformed chunked body: trailer section too large");
	if (ch == '\r')
		return c->state == CK_TRAILER_START ? CK_END_LF : CK_TRAILER_LF;
	if (!field_byte(ch) || (c->state == CK_TRAILER_START && (ch == ' ' || ch == '\t')))
		return bad(c, "malformed chunked body: invalid trailer field");
	return CK_TRAILER;
}

size_t chunked_scan(struct chunked *c, const char *data, size_t len)
{
	size_t i = 0, take;
	unsigned char ch;

	while (i < len && c->state != CK_DONE && c->state != CK_BAD) {
		if (c->state == CK_DATA) {
			take = len - i < c->left ? len - i : (size_t)c->left;
			i += take;
			c->left -= take;
			if (c->left == 0)
				c->state = CK_DATA_CR;
			continue;
		}
		ch = (unsigned char)data[i++];
		switch (c->state) {
		case CK_SIZE:
		case CK_SIZE_MORE:
			c->state = size_byte(c, ch);
			break;
		case CK_SIZE_WS:
			c->state = ch == ';' ? CK_EXT : ch == ' ' || ch == '\t' ? CK_SIZE_WS
						   : bad(c, "malformed chunked body: invalid chunk size");
			break;
		case CK_EXT:
			c->state = ch == '\r' ? CK_SIZE_LF : field_byte(ch) ? CK_EXT
						  : bad(c, "malformed chunked body: invalid chunk extension");
			break;
		case CK_SIZE_LF:
			if (ch != '\n')
				c->state = bad(c, "malformed chunked body: chunk size line not ended by CRLF");
			else
				c->state = c->left == 0 ? CK_TRAILER_START : CK_DATA;
			c->digits = 0;
			break;
		case CK_DATA_CR:
		case CK_DATA_LF:
			if (ch != (c->state == CK_DATA_CR ? '\r' : '\n'))
				c->state = bad(c, "malformed chunked body: chunk data not followed by CRLF");
			else
				c->state = c->state == CK_DATA_CR ? CK_DATA_LF : CK_SIZE;
			break;
		case CK_TRAILER_START:
		case CK_TRAILER:
			c->state = trailer_byte(c, ch);
			break;
		case CK_TRAILER_LF:
		case CK_END_LF:
			if (ch != '\n')
				c->state = bad(c, "malformed chunked body: trailer line not ended by CRLF");
			else
				c->state = c->state == CK_TRAILER_LF ? CK_TRAILER_START : CK_DONE;
			break;
		default:
			c->state = bad(c, "malformed chunked body");
			break;
		}
	}
	return i;
}

int chunked_done(const struct chunked *c)
{
	return c->state == CK_DONE;
}

/*
 * tlsa_text.c - parse TLSA records typed by people or printed by dig and zone files.
 *
 * Pure functions over (p, end). The parser is strict because its input is an operator's assertion:
 * a record the DNS would merely mark unusable (wrong digest length) is a typo here, reported as such, unless
 * the caller asks for any length and judges usability itself (`daneproxy verify` without --strict).
 */
#include "tlsa_text.h"

#include "text.h"

#include <stdio.h>
#include <string.h>

/* is_blank - token separators; parentheses group multi-line zone-file records and carry no meaning here. */
static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '(' || c == ')';
}

/* next_token - the next token in [*p, end) into (tok, tok_end); 0 when none is left or a comment starts. */
static int next_token(const char **p, const char *end, const char **tok, const char **tok_end)
{
	const char *s = *p;

	while (s < end && is_blank(*s))
		s++;
	if (s == end || *s == ';' || *s == '#')
		return 0;
	*tok = s;
	while (s < end && !is_blank(*s) && *s != ';')
		s++;
	*tok_end = s;
	*p = s;
	return 1;
}

/* token_is - case-insensitive equality of a token with a word. */
static int token_is(const char *tok, const char *tok_end, const char *word)
{
	size_t n = strlen(word), i;

	if ((size_t)(tok_end - tok) != n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = tok[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c != word[i])
			return 0;
	}
	return 1;
}

/* parse_u8 - a decimal 0-255 with no sign and at most three digits. */
static int parse_u8(const char *tok, const char *tok_end, uint8_t *out)
{
	unsigned v = 0;
	const char *s;

	if (tok_end - tok < 1 || tok_end - tok > 3)
		return -1;
	for (s = tok; s < tok_end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > 255)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

/* show_token - a printable, bounded copy of a token for error messages. */
static void show_token(const char *tok, const char *tok_end, char *buf, size_t len)
{
	size_t n = (size_t)(tok_end - tok), i, j = 0;

	for (i = 0; i < n && j + 4 < len; i++)
		buf[j++] = tok[i] >= 0x20 && tok[i] < 0x7f ? tok[i] : '?';
	if (i < n && j + 4 <= len) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
}

enum tlsa_text_status tlsa_text_parse(const char *p, const char *end, struct tlsa_text_record *out, char *err,
				      size_t errlen)
{
	const char *tok, *tok_end, *scan = p, *fields = p;
	static const char *const field_names[3] = {"usage", "selector", "matching type"};
	uint8_t vals[3];
	size_t nibbles = 0;
	int i, hi = -1, v;
	char shown[40];

	out->len = 0;
	if (memchr(p, '\0', (size_t)(end - p)) != NULL) {
		snprintf(err, errlen, "NUL byte in the record text");
		return TLSA_TEXT_MALFORMED;
	}
	if (!next_token(&scan, end, &tok, &tok_end))
		return TLSA_TEXT_EMPTY;
	/* A presentation line: the fields follow the TLSA type token, whatever owner, TTL and class precede it. */
	scan = p;
	while (next_token(&scan, end, &tok, &tok_end)) {
		if (token_is(tok, tok_end, "TLSA")) {
			fields = scan;
			break;
		}
	}
	scan = fields;
	for (i = 0; i < 3; i++) {
		if (!next_token(&scan, end, &tok, &tok_end)) {
			snprintf(err, errlen, "missing %s: expected \"usage selector matching-type hex-data\"",
				 field_names[i]);
			return TLSA_TEXT_MALFORMED;
		}
		if (parse_u8(tok, tok_end, &vals[i]) < 0) {
			show_token(tok, tok_end, shown, sizeof(shown));
			snprintf(err, errlen, "%s \"%s\" is not a number from 0 to 255", field_names[i], shown);
			return TLSA_TEXT_MALFORMED;
		}
	}
	out->usage = vals[0];
	out->selector = vals[1];
	out->mtype = vals[2];
	while (next_token(&scan, end, &tok, &tok_end)) {
		for (; tok < tok_end; tok++) {
			v = hex_digit(*tok);
			if (v < 0) {
				snprintf(err, errlen, "association data has a non-hex character '%c'",
					 *tok >= 0x20 && *tok < 0x7f ? *tok : '?');
				return TLSA_TEXT_MALFORMED;
			}
			nibbles++;
			if (hi < 0) {
				hi = v;
				continue;
			}
			if (out->len >= out->data_cap || out->len >= TLSA_TEXT_MAX_DATA) {
				snprintf(err, errlen, "association data longer than %zu bytes",
					 out->data_cap < TLSA_TEXT_MAX_DATA ? out->data_cap : (size_t)TLSA_TEXT_MAX_DATA);
				return TLSA_TEXT_MALFORMED;
			}
			out->data[out->len++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	if (nibbles == 0) {
		snprintf(err, errlen, "missing certificate association data (hex)");
		return TLSA_TEXT_MALFORMED;
	}
	if (hi >= 0) {
		snprintf(err, errlen, "association data has an odd number of hex digits (%zu)", nibbles);
		return TLSA_TEXT_MALFORMED;
	}
	if (out->any_length)
		return TLSA_TEXT_OK;
	if (out->mtype == 1 && out->len != 32) {
		snprintf(err, errlen, "matching type 1 (SHA-256) needs 32 bytes (64 hex digits), got %zu", out->len);
		return TLSA_TEXT_MALFORMED;
	}
	if (out->mtype == 2 && out->len != 64) {
		snprintf(err, errlen, "matching type 2 (SHA-512) needs 64 bytes (128 hex digits), got %zu", out->len);
		return TLSA_TEXT_MALFORMED;
	}
	return TLSA_TEXT_OK;
}

void tlsa_text_hex(const uint8_t *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0xf];
	}
	out[2 * len] = '\0';
}

void tlsa_text_short(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, char *buf,
		     size_t buflen)
{
	char hex[129];

	tlsa_text_hex(data, len > 64 ? 64 : len, hex);
	snprintf(buf, buflen, "%u %u %u %s%s", usage, selector, mtype, hex, len > 64 ? "..." : "");
}

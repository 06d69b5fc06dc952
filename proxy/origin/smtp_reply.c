/*
 * smtp_reply.c - the SMTP reply parser and EHLO keyword reader (see smtp_reply.h).
 *
 * Every line is checked as far as it has arrived, so that garbage is malformed at once instead of after
 * SMTP_REPLY_LINE_MAX bytes; a line is judged whole only when its line ending is in the buffer.
 */
#include "smtp_reply.h"

#include <stdio.h>
#include <string.h>

const char smtp_reply_err_code[] = "a reply line does not start with a code 200-599";
const char smtp_reply_err_separator[] = "a reply code is not followed by \"-\", a space or the end of the line";
const char smtp_reply_err_code_changed[] = "the lines of a multi-line reply carry different codes";
const char smtp_reply_err_control[] = "a reply line holds a NUL, a bare CR or another control character";
const char smtp_reply_err_line_long[] = "a reply line is longer than 1000 octets";
const char smtp_reply_err_too_long[] = "a reply is longer than 16384 octets";

/* line_check - the bytes [line, stop) of one line without its ending (partial when !whole): NULL when they can be
 * (the start of) a reply line, else why not. */
static const char *line_check(const char *line, const char *stop, int whole)
{
	size_t n = (size_t)(stop - line), i;

	if (n >= 1 && (line[0] < '2' || line[0] > '5'))
		return smtp_reply_err_code;
	for (i = 1; i < 3 && i < n; i++)
		if (line[i] < '0' || line[i] > '9')
			return smtp_reply_err_code;
	if (whole && n < 3)
		return smtp_reply_err_code;
	/* "NNN" CR may still become the code-only line "NNN" CRLF. */
	if (n >= 4 && line[3] != ' ' && line[3] != '-' && !(line[3] == '\r' && !whole && n == 4))
		return smtp_reply_err_separator;
	for (i = 4; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		/* A CR is only the last byte of a partial line (its LF may follow); in a whole line it was stripped. */
		if (c == '\r' && !whole && i == n - 1)
			continue;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return smtp_reply_err_control;
	}
	return NULL;
}

enum smtp_reply_status smtp_reply_parse(const char *p, const char *end, struct smtp_reply *out, const char **why)
{
	const char *line = p, *nl, *stop;
	size_t avail, look;
	int code = 0, c;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	for (;;) {
		avail = (size_t)(end - line);
		look = avail < SMTP_REPLY_LINE_MAX ? avail : SMTP_REPLY_LINE_MAX;
		nl = look > 0 ? memchr(line, '\n', look) : NULL;
		if (nl == NULL) {
			/* The line so far must be a possible start; it must also end within the bounds. */
			if ((*why = line_check(line, line + look, 0)) != NULL)
				goto malformed;
			if (avail >= SMTP_REPLY_LINE_MAX) {
				*why = smtp_reply_err_line_long;
				goto malformed;
			}
			if ((size_t)(line + avail - p) >= SMTP_REPLY_MAX) {
				*why = smtp_reply_err_too_long;
				goto malformed;
			}
			memset(out, 0, sizeof(*out));
			return SMTP_REPLY_NEED_MORE;
		}
		stop = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
		if ((*why = line_check(line, stop, 1)) != NULL)
			goto malformed;
		c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (code != 0 && c != code) {
			*why = smtp_reply_err_code_changed;
			goto malformed;
		}
		code = c;
		out->n_lines++;
		if ((size_t)(nl + 1 - p) > SMTP_REPLY_MAX) {
			*why = smtp_reply_err_too_long;
			goto malformed;
		}
		if (stop - line >= 4 && line[3] == '-') {
			line = nl + 1;
			continue;
		}
		out->code = code;
		out->len = (size_t)(nl + 1 - p);
		out->last_off = stop - line >= 4 ? (size_t)(line + 4 - p) : (size_t)(stop - p);
		out->last_len = (size_t)(stop - p) - out->last_off;
		return SMTP_REPLY_COMPLETE;
	}
malformed:
	memset(out, 0, sizeof(*out));
	return SMTP_REPLY_MALFORMED;
}

int smtp_reply_line(const char *p, const struct smtp_reply *r, size_t i, const char **text, size_t *len)
{
	const char *line = p, *end = p + r->len, *nl, *stop;
	size_t k;

	for (k = 0; line < end; k++) {
		nl = memchr(line, '\n', (size_t)(end - line));
		if (nl == NULL)
			return -1;
		if (k == i) {
			stop = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
			*text = stop - line >= 4 ? line + 4 : stop;
			*len = (size_t)(stop - *text);
			return 0;
		}
		line = nl + 1;
	}
	return -1;
}

static int is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* parse_u64 - a decimal number filling [p, end) exactly; -1 when not one or too large. */
static int parse_u64(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;

	if (p == end || end - p > 19)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	return 0;
}

/* keywords_add - append one word to the report string, or "..." once when it no longer fits. */
static void keywords_add(struct smtp_ehlo *e, const char *word, size_t n)
{
	size_t used = strlen(e->keywords), need = n + (used > 0);

	if (used >= 3 && strcmp(e->keywords + used - 3, "...") == 0)
		return;
	if (used + need + 1 > sizeof(e->keywords) - 4) {
		snprintf(e->keywords + used, sizeof(e->keywords) - used, "%s...", used > 0 ? " " : "");
		return;
	}
	if (used > 0)
		e->keywords[used++] = ' ';
	memcpy(e->keywords + used, word, n);
	e->keywords[used + n] = '\0';
}

void smtp_ehlo_parse(const char *p, const struct smtp_reply *r, struct smtp_ehlo *out)
{
	static const struct {
		const char *name;
		unsigned flag;
	} known[] = {
		{"STARTTLS", SMTP_EXT_STARTTLS},     {"PIPELINING", SMTP_EXT_PIPELINING},
		{"SIZE", SMTP_EXT_SIZE},             {"8BITMIME", SMTP_EXT_8BITMIME},
		{"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
		{"SMTPUTF8", SMTP_EXT_SMTPUTF8},     {"CHUNKING", SMTP_EXT_CHUNKING},
		{"BINARYMIME", SMTP_EXT_BINARYMIME}, {"DSN", SMTP_EXT_DSN},
		{"REQUIRETLS", SMTP_EXT_REQUIRETLS},
	};
	const char *text, *kw_end, *param;
	char word[64 + 22];
	size_t len, plen, i, k, n;
	uint64_t size;

	memset(out, 0, sizeof(*out));
	/* Line 0 is "domain [greeting]"; every later line is one extension. */
	for (i = 1; smtp_reply_line(p, r, i, &text, &len) == 0; i++) {
		if (len == 0 || !is_alnum(text[0]))
			continue;
		for (kw_end = text; kw_end < text + len && (is_alnum(*kw_end) || *kw_end == '-'); kw_end++)
			;
		if (kw_end < text + len && *kw_end != ' ')
			continue;
		n = (size_t)(kw_end - text);
		if (n > 64)
			continue;
		for (k = 0; k < n; k++)
			word[k] = upper(text[k]);
		word[n] = '\0';
		for (k = 0; k < sizeof(known) / sizeof(known[0]) && strcmp(word, known[k].name) != 0; k++)
			;
		if (k == sizeof(known) / sizeof(known[0])) {
			out->n_unknown++;
		} else {
			out->flags |= known[k].flag;
			if (known[k].flag == SMTP_EXT_SIZE && kw_end < text + len) {
				param = kw_end + 1;
				plen = (size_t)(text + len - param);
				for (k = 0; k < plen && param[k] != ' '; k++)
					;
				if (parse_u64(param, param + k, &size) == 0) {
					out->size = size;
					n += (size_t)snprintf(word + n, sizeof(word) - n, "=%llu", (unsigned long long)size);
				}
			}
		}
		keywords_add(out, word, n);
	}
}

int smtp_reply_enhanced(int code, const char *text, size_t len, char *out, size_t outlen)
{
	size_t i = 0, part, digits;

	/* class "." subject "." detail: class 2, 4 or 5 (that of the code), subject 1-3 digits, detail 1-3 digits. */
	if (len < 5 || outlen < 16 || text[0] != (char)('0' + code / 100) || (text[0] != '2' && text[0] != '4' &&
	    text[0] != '5') || text[1] != '.')
		return -1;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; i < len && text[i] >= '0' && text[i] <= '9' && digits < 3; i++, digits++)
			;
		if (digits == 0 || (part == 0 && (i >= len || text[i] != '.')))
			return -1;
		if (part == 0)
			i++;
	}
	if (i < len && text[i] != ' ' && text[i] != '\t')
		return -1;
	memcpy(out, text, i);
	out[i] = '\0';
	return 0;
}

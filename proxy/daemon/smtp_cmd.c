/*
 * smtp_cmd.c - the mail client's command lines and the end of its message content, parsed (see smtp_cmd.h).
 */
#include "smtp_cmd.h"
#include "text.h"

#include <string.h>
#include <strings.h>

const char smtp_cmd_err_syntax[] = "syntax error in the address";
const char smtp_cmd_err_domain[] = "the recipient's domain is not a host name";
const char smtp_cmd_err_param[] = "unsupported parameter";

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{"HELO", SMTP_CMD_HELO}, {"EHLO", SMTP_CMD_EHLO}, {"MAIL", SMTP_CMD_MAIL}, {"RCPT", SMTP_CMD_RCPT},
	{"DATA", SMTP_CMD_DATA}, {"RSET", SMTP_CMD_RSET}, {"NOOP", SMTP_CMD_NOOP}, {"QUIT", SMTP_CMD_QUIT},
	{"VRFY", SMTP_CMD_VRFY}, {"EXPN", SMTP_CMD_EXPN}, {"HELP", SMTP_CMD_HELP}, {"STARTTLS", SMTP_CMD_STARTTLS},
	{"AUTH", SMTP_CMD_AUTH}, {"BDAT", SMTP_CMD_BDAT},
};

/* parse_path - "<...>" at p (len octets): the mailbox into out; the octets after '>' via *rest. */
static int parse_path(const char *p, size_t len, char *out, size_t outlen, const char **rest)
{
	const char *close;
	size_t n;

	if (len < 2 || p[0] != '<' || (close = memchr(p, '>', len)) == NULL)
		return -1;
	n = (size_t)(close - p - 1);
	if (n >= outlen || memchr(p + 1, '<', n) != NULL)
		return -1;
	/* A source route (@a,@b:user@c, RFC 5321 4.1.2) is accepted and ignored, as RFC 5321 asks. */
	if (n > 0 && p[1] == '@') {
		const char *colon = memchr(p + 1, ':', n);
		if (colon == NULL)
			return -1;
		n -= (size_t)(colon - p);
		p = colon;
	}
	memcpy(out, p + 1, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)out[i] <= 0x20 || out[i] == 0x7f)
			return -1;   /* no controls or spaces in a path (quoted local parts with spaces are refused) */
	*rest = close + 1;
	return 0;
}

/* parse_params - MAIL's ESMTP parameters: SIZE=n and BODY=7BIT|8BITMIME; others are unsupported. */
static int parse_params(const char *p, const char *end, struct smtp_cmd *out)
{
	while (p < end) {
		const char *sp, *eq;
		size_t n;
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		sp = memchr(p, ' ', (size_t)(end - p));
		n = sp ? (size_t)(sp - p) : (size_t)(end - p);
		eq = memchr(p, '=', n);
		if (eq != NULL && eq - p == 4 && strncasecmp(p, "SIZE", 4) == 0) {
			if (decimal_parse(eq + 1, n - 5, UINT64_MAX / 2, &out->size) < 0)
				return -1;
		} else if (eq != NULL && eq - p == 4 && strncasecmp(p, "BODY", 4) == 0) {
			if (n - 5 == 4 && strncasecmp(eq + 1, "7BIT", 4) == 0)
				out->body_8bit = 0;
			else if (n - 5 == 8 && strncasecmp(eq + 1, "8BITMIME", 8) == 0)
				out->body_8bit = 1;
			else
				return -1;
		} else {
			return -1;
		}
		p += n;
	}
	return 0;
}

int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out)
{
	const char *sp = memchr(line, ' ', len), *rest, *at, *end = line + len;
	size_t vlen = sp ? (size_t)(sp - line) : len, i;
	char norm[256];

	memset(out, 0, sizeof(*out));
	out->verb = SMTP_CMD_UNKNOWN;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strlen(verbs[i].name) == vlen && strncasecmp(line, verbs[i].name, vlen) == 0)
			out->verb = verbs[i].verb;
	if (sp != NULL) {
		size_t n = (size_t)(end - sp - 1);
		if (n >= sizeof(out->arg))
			n = sizeof(out->arg) - 1;
		memcpy(out->arg, sp + 1, n);
		out->arg[n] = '\0';
	}
	if (out->verb != SMTP_CMD_MAIL && out->verb != SMTP_CMD_RCPT)
		return 0;
	/* "MAIL FROM:<path> params" / "RCPT TO:<path>": the space after the colon is tolerated, as everyone does. */
	rest = sp ? sp + 1 : end;
	if (out->verb == SMTP_CMD_MAIL ? (end - rest < 5 || strncasecmp(rest, "FROM:", 5) != 0)
				       : (end - rest < 3 || strncasecmp(rest, "TO:", 3) != 0))
		goto syntax;
	rest += out->verb == SMTP_CMD_MAIL ? 5 : 3;
	while (rest < end && *rest == ' ')
		rest++;
	if (parse_path(rest, (size_t)(end - rest), out->path, sizeof(out->path), &rest) < 0)
		goto syntax;
	if (out->verb == SMTP_CMD_MAIL) {
		if (parse_params(rest, end, out) < 0) {
			out->error = smtp_cmd_err_param;
			return -1;
		}
		return 0;
	}
	/* RCPT: a mailbox with a domain (no parameters: DSN and friends are not relayed). */
	while (rest < end && *rest == ' ')
		rest++;
	if (rest != end) {
		out->error = smtp_cmd_err_param;
		return -1;
	}
	at = strrchr(out->path, '@');
	if (at == NULL || at == out->path || at[1] == '\0')
		goto syntax;
	if (at[1] == '[' || hostname_normalize(at + 1, strlen(at + 1), norm, sizeof(norm)) != NULL) {
		out->error = smtp_cmd_err_domain;
		return -1;
	}
	memcpy(out->domain, norm, strlen(norm) + 1);
	return 0;
syntax:
	out->error = smtp_cmd_err_syntax;
	return -1;
}

/* ---------- the end of the content ---------- */

enum { SCAN_MID, SCAN_CR, SCAN_LINE_START, SCAN_DOT, SCAN_DOT_CR };

void smtp_data_scan_init(struct smtp_data_scan *s)
{
	s->state = SCAN_LINE_START;
	s->n_held = 0;
}

size_t smtp_data_scan(struct smtp_data_scan *s, const char *p, size_t len,
		      void (*emit)(void *arg, const char *data, size_t n), void *arg, int *done)
{
	size_t i = 0, from = 0;   /* [from, i) is content not yet emitted */

	*done = 0;
	while (i < len) {
		char ch = p[i];
		switch (s->state) {
		case SCAN_MID:
			s->state = ch == '\r' ? SCAN_CR : SCAN_MID;
			i++;
			break;
		case SCAN_CR:
			s->state = ch == '\n' ? SCAN_LINE_START : ch == '\r' ? SCAN_CR : SCAN_MID;
			i++;
			break;
		case SCAN_LINE_START:
			if (ch == '.') {
				/* Maybe the end: hold the dot back until the next octets say. */
				if (i > from)
					emit(arg, p + from, i - from);
				s->held[0] = '.';
				s->n_held = 1;
				s->state = SCAN_DOT;
				from = ++i;
				break;
			}
			s->state = ch == '\r' ? SCAN_CR : SCAN_MID;
			i++;
			break;
		case SCAN_DOT:
			if (ch == '\r') {
				s->held[1] = '\r';
				s->n_held = 2;
				s->state = SCAN_DOT_CR;
				from = ++i;
				break;
			}
			/* A dot-stuffed line: the dot is content after all. */
			emit(arg, s->held, s->n_held);
			s->n_held = 0;
			s->state = SCAN_MID;   /* the octet is looked at again in that state */
			break;
		case SCAN_DOT_CR:
			if (ch == '\n') {
				s->n_held = 0;
				*done = 1;
				return i + 1;
			}
			emit(arg, s->held, s->n_held);
			s->n_held = 0;
			s->state = SCAN_CR;
			break;
		}
	}
	if (i > from)
		emit(arg, p + from, i - from);
	return len;
}

/*
 * smtp_reply.h - SMTP server replies (RFC 5321 section 4.2) and the extensions an EHLO reply announces
 * (section 4.1.1.1). Pure: no I/O, no allocation; the parser looks at the bytes from the start of a buffer and
 * says whether they begin with one complete reply, need more, or can never be a reply.
 *
 * Grammar accepted (RFC 5321 4.2, with the tolerance real servers need):
 *   reply = *( code "-" [ text ] EOL ) code [ SP [ text ] ] EOL,  code = %x32-35 DIGIT DIGIT, the same on every
 *   line;  EOL = CRLF, or a bare LF (tolerated, as Postfix and most clients do);  text = any octets but controls
 *   (HTAB allowed; UTF-8 allowed, RFC 6531). A NUL, a bare CR or another control byte is malformed, so a
 *   complete reply can be handled as text and replayed as it came.
 * Bounds: RFC 5321 4.5.3.1.5 allows 512 octets per reply line; lines up to SMTP_REPLY_LINE_MAX (1000, CRLF
 * included) are tolerated, longer ones are malformed; a whole reply is at most SMTP_REPLY_MAX octets.
 */
#ifndef DANEPROXY_SMTP_REPLY_H
#define DANEPROXY_SMTP_REPLY_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_REPLY_LINE_MAX 1000     /* octets per line, the line ending included */
#define SMTP_REPLY_MAX 16384         /* octets per reply, every line included */

enum smtp_reply_status {
	SMTP_REPLY_COMPLETE,     /* one whole reply at the start of the buffer: see struct smtp_reply */
	SMTP_REPLY_NEED_MORE,    /* everything so far may be the start of a reply */
	SMTP_REPLY_MALFORMED,    /* never a reply, whatever follows: *why is one of smtp_reply_err_* */
};

/* Why a reply is malformed: constants compared by pointer (STYLE.md habit 7). */
extern const char smtp_reply_err_code[];          /* a line does not start with a code 200-599 */
extern const char smtp_reply_err_separator[];     /* neither "-", SP nor the end of the line after the code */
extern const char smtp_reply_err_code_changed[];  /* a continuation line with another code */
extern const char smtp_reply_err_control[];       /* NUL, bare CR or another control byte in a line */
extern const char smtp_reply_err_line_long[];     /* a line longer than SMTP_REPLY_LINE_MAX */
extern const char smtp_reply_err_too_long[];      /* a reply longer than SMTP_REPLY_MAX */

struct smtp_reply {
	int code;             /* 200-599 */
	size_t len;           /* octets of the whole reply, the last line ending included */
	size_t n_lines;
	size_t last_off;      /* the text of the last line: [last_off, last_off + last_len) of the buffer, after */
	size_t last_len;      /* "NNN " and without the line ending ("" when the line is the code alone) */
};

/*
 * smtp_reply_parse - one reply at [p, end). COMPLETE fills out; bytes after out->len belong to what follows
 * (the caller decides whether anything may follow). NEED_MORE and MALFORMED leave out zeroed.
 */
enum smtp_reply_status smtp_reply_parse(const char *p, const char *end, struct smtp_reply *out, const char **why);

/* smtp_reply_line - the text of line i (0-based) of a COMPLETE reply at p: after "NNN-"/"NNN ", without the line
 * ending. Returns 0, or -1 when there is no such line. */
int smtp_reply_line(const char *p, const struct smtp_reply *r, size_t i, const char **text, size_t *len);

/* EHLO extensions (RFC 5321 4.1.1.1 ehlo-lines after the first), as flags. */
#define SMTP_EXT_STARTTLS 0x001              /* RFC 3207 */
#define SMTP_EXT_PIPELINING 0x002            /* RFC 2920 */
#define SMTP_EXT_SIZE 0x004                  /* RFC 1870; the limit in smtp_ehlo.size */
#define SMTP_EXT_8BITMIME 0x008              /* RFC 6152 */
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x010   /* RFC 2034 */
#define SMTP_EXT_SMTPUTF8 0x020              /* RFC 6531 */
#define SMTP_EXT_CHUNKING 0x040              /* RFC 3030 */
#define SMTP_EXT_BINARYMIME 0x080            /* RFC 3030 */
#define SMTP_EXT_DSN 0x100                   /* RFC 3461 */
#define SMTP_EXT_REQUIRETLS 0x200            /* RFC 8689 */

struct smtp_ehlo {
	unsigned flags;        /* SMTP_EXT_* */
	uint64_t size;         /* SIZE's maximum message size; 0 when absent, not given or 0 (no fixed limit) */
	size_t n_unknown;      /* keywords not in the list above (AUTH, ETRN, VRFY, X-..., ...) */
	char keywords[256];    /* every keyword as announced, upper-cased, space-separated, SIZE with "=N";
				* cut with "..." when longer (for logs and reports) */
};

/*
 * smtp_ehlo_parse - the extensions of a COMPLETE 250 reply at p to EHLO. A line that is not "keyword *(SP
 * param)" (keyword = ALPHA/DIGIT then ALPHA/DIGIT/"-") is ignored, as RFC 5321 lets clients ignore what they do
 * not understand; a SIZE parameter that is not a decimal number leaves the limit unknown (0).
 */
void smtp_ehlo_parse(const char *p, const struct smtp_reply *r, struct smtp_ehlo *out);

/* smtp_reply_enhanced - the RFC 3463 enhanced status code ("4.7.5") at the start of text, copied to out (at least
 * 16 bytes); 0, or -1 when text does not start with one whose class matches code's first digit. */
int smtp_reply_enhanced(int code, const char *text, size_t len, char *out, size_t outlen);

#endif

/*
 * smtp_cmd.h - what a mail client sends the smarthost, parsed without I/O: command lines (RFC 5321 section 4.1)
 * with the paths and ESMTP parameters of MAIL and RCPT, and the end of a message's content (<CRLF>.<CRLF>).
 */
#ifndef DANEPROXY_SMTP_CMD_H
#define DANEPROXY_SMTP_CMD_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_CMD_LINE_MAX 1000      /* octets of a command line, CRLF included (RFC 5321 4.5.3.1.4: 512; tolerant) */
#define SMTP_CMD_PATH_MAX 256       /* octets of a path (RFC 5321 4.5.3.1.3) */

enum smtp_verb {
	SMTP_CMD_HELO, SMTP_CMD_EHLO, SMTP_CMD_MAIL, SMTP_CMD_RCPT, SMTP_CMD_DATA, SMTP_CMD_RSET, SMTP_CMD_NOOP,
	SMTP_CMD_QUIT, SMTP_CMD_VRFY, SMTP_CMD_EXPN, SMTP_CMD_HELP, SMTP_CMD_STARTTLS, SMTP_CMD_AUTH, SMTP_CMD_BDAT,
	SMTP_CMD_UNKNOWN,
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *error;                  /* a syntax error (answer 501 / 555), NULL when the command parsed */
	char arg[SMTP_CMD_LINE_MAX];        /* everything after the verb and its space (HELO/EHLO name, ...) */
	/* MAIL FROM / RCPT TO */
	char path[SMTP_CMD_PATH_MAX];       /* the mailbox inside <>; "" for MAIL's null reverse-path <> */
	char domain[256];                   /* RCPT: the mailbox's domain, normalised (hostname_normalize) */
	uint64_t size;                      /* MAIL SIZE=, 0 when not given */
	int body_8bit;                      /* MAIL BODY=8BITMIME */
};

/* Syntax errors: constants compared by pointer. */
extern const char smtp_cmd_err_syntax[];       /* "FROM:" / "TO:" or the <path> is missing or malformed */
extern const char smtp_cmd_err_domain[];       /* the recipient's domain is not a host name (or an address literal) */
extern const char smtp_cmd_err_param[];        /* an ESMTP parameter this smarthost does not support */

/*
 * smtp_cmd_parse - one command line (without its CRLF, len octets): the verb, and for MAIL and RCPT the path and
 * parameters. Fills out (verb is always set); 0, or -1 with out->error.
 */
int smtp_cmd_parse(const char *line, size_t len, struct smtp_cmd *out);

/* The end of a message's content: the line "." after CRLF. States are what the scanner has just seen. */
struct smtp_data_scan {
	int state;
	char held[2];       /* ".", ".\r" at a line start: held until it is known not to be the end */
	size_t n_held;
};

/* smtp_data_scan_init - at the start of the content (which starts at a line start). */
void smtp_data_scan_init(struct smtp_data_scan *s);

/*
 * smtp_data_scan - look at [p, p + len) of the content: every octet that belongs to the message goes to emit
 * (in order, in pieces; "." CRLF of the end excluded, dot-stuffing kept), held back octets included once they are
 * known. Returns the octets consumed: all of them, or up to and including the end's LF, with *done = 1.
 */
size_t smtp_data_scan(struct smtp_data_scan *s, const char *p, size_t len,
		      void (*emit)(void *arg, const char *data, size_t n), void *arg, int *done);

#endif

/*
 * smtp_client.c - the SMTP conversation engine (see smtp_client.h).
 *
 * Awaited replies form a FIFO of pending entries; the first n_written of them belong to commands already on the
 * wire (or to the greeting), the rest to commands held back because pipelining does not allow them yet, whose
 * lines wait in the held buffer in the same order. A reply pops the head; then held lines go out as far as
 * the rules allow.
 */
#include "smtp_client.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char smtp_client_err_unexpected[] = "the SMTP server sent a reply nobody asked for";
const char smtp_client_err_write[] = "cannot write to the SMTP server";
const char smtp_client_err_line[] = "an SMTP command line is too long or holds CR, LF or NUL";
const char smtp_client_err_busy[] = "too many SMTP commands awaiting replies, or a command during DATA";
const char smtp_client_err_bare_newline[] = "message content holds a CR or LF that is not part of a CRLF";
const char smtp_client_err_dot_line[] = "message content holds a line that is a lone \".\" (end of data)";
const char smtp_client_err_state[] = "message content outside DATA";

#define HELD_MAX (8 * SMTP_CLIENT_MAX_LINE)

struct pending {
	smtp_client_reply_fn fn;
	void *arg;
	uint16_t held;          /* octets of its line in c->held; 0 once written (or for an awaited reply) */
	uint8_t ends_group;     /* RFC 2920: nothing may be written after it before its reply */
	uint8_t is_data;        /* DATA: a 354 opens the content */
};

/* What the message content scanner has just seen. */
struct body_scan {
	int line_start;         /* at the start of a line */
	int after_cr;           /* the last octet was a CR */
	int dot_line;           /* the line so far is "." */
};

struct smtp_client {
	smtp_client_write_fn write;
	void *io;
	int pipelining;
	struct pending q[SMTP_CLIENT_MAX_PENDING];
	size_t q_head, q_count;
	size_t n_written;       /* the first n_written pending entries are on the wire */
	char held[HELD_MAX];
	size_t held_len;
	char in[SMTP_REPLY_MAX];
	size_t in_len;
	size_t in_off;          /* replies before in_off were handed out */
	int in_body;            /* between a 354 and smtp_client_body_end */
	struct body_scan scan;
	uint64_t body_bytes;
	const char *error;
	int halted;
	int feeding;
	int dead;               /* freed inside a callback: the feed frees it when it unwinds */
};

struct smtp_client *smtp_client_new(smtp_client_write_fn write, void *io)
{
	struct smtp_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->write = write;
	c->io = io;
	return c;
}

void smtp_client_free(struct smtp_client *c)
{
	if (c == NULL)
		return;
	if (c->feeding) {
		c->dead = 1;
		c->halted = 1;
		return;
	}
	free(c);
}

void smtp_client_set_pipelining(struct smtp_client *c, int on)
{
	c->pipelining = on;
}

const char *smtp_client_error(const struct smtp_client *c)
{
	return c->error;
}

size_t smtp_client_buffered(const struct smtp_client *c)
{
	return c->in_len - c->in_off;
}

size_t smtp_client_awaiting(const struct smtp_client *c)
{
	return c->q_count;
}

uint64_t smtp_client_body_bytes(const struct smtp_client *c)
{
	return c->body_bytes;
}

void smtp_client_halt(struct smtp_client *c)
{
	c->halted = 1;
}

static struct pending *q_at(struct smtp_client *c, size_t i)
{
	return &c->q[(c->q_head + i) % SMTP_CLIENT_MAX_PENDING];
}

/* may_write - can the next held command go out now? (RFC 2920 section 3.1) */
static int may_write(struct smtp_client *c)
{
	if (c->n_written == 0)
		return 1;
	return c->pipelining && !q_at(c, c->n_written - 1)->ends_group;
}

/* flush_held - write held commands, in order, as far as the rules allow; -1 on a write error. */
static int flush_held(struct smtp_client *c)
{
	struct pending *p;
	size_t off = 0;

	while (c->n_written < c->q_count && may_write(c)) {
		p = q_at(c, c->n_written);
		if (c->write(c->io, c->held + off, p->held) < 0) {
			c->error = smtp_client_err_write;
			return -1;
		}
		off += p->held;
		p->held = 0;
		c->n_written++;
	}
	if (off > 0) {
		memmove(c->held, c->held + off, c->held_len - off);
		c->held_len -= off;
	}
	return 0;
}

/* push - one more awaited reply; line (with CRLF) is held, then flushed when allowed. */
static int push(struct smtp_client *c, const char *line, size_t n, int ends_group, int is_data,
		smtp_client_reply_fn fn, void *arg)
{
	struct pending *p;

	if (c->error != NULL)
		return -1;
	if (c->q_count == SMTP_CLIENT_MAX_PENDING || c->held_len + n > sizeof(c->held) || c->in_body) {
		c->error = smtp_client_err_busy;
		return -1;
	}
	p = q_at(c, c->q_count++);
	p->fn = fn;
	p->arg = arg;
	p->ends_group = (uint8_t)ends_group;
	p->is_data = (uint8_t)is_data;
	p->held = (uint16_t)n;
	if (n == 0) {
		/* An awaited reply with nothing to send: it counts as written (the greeting comes first). */
		if (c->n_written != c->q_count - 1) {
			c->q_count--;
			c->error = smtp_client_err_busy;
			return -1;
		}
		c->n_written++;
		return 0;
	}
	memcpy(c->held + c->held_len, line, n);
	c->held_len += n;
	return flush_held(c);
}

int smtp_client_expect(struct smtp_client *c, smtp_client_reply_fn fn, void *arg)
{
	return push(c, NULL, 0, 1, 0, fn, arg);
}

int smtp_client_command(struct smtp_client *c, const char *line, smtp_client_reply_fn fn, void *arg)
{
	char buf[SMTP_CLIENT_MAX_LINE];
	size_t n = strlen(line), i;
	int pipelinable;

	if (c->error != NULL)
		return -1;
	if (n == 0 || n > SMTP_CLIENT_MAX_LINE - 2 || strpbrk(line, "\r\n") != NULL) {
		c->error = smtp_client_err_line;
		return -1;
	}
	/* RFC 2920 section 3.1: MAIL, RCPT and RSET may be followed at once; every other command ends a group. */
	for (i = 0; i < n && line[i] != ' '; i++)
		;
	pipelinable = (i == 4 && (strncasecmp(line, "MAIL", 4) == 0 || strncasecmp(line, "RCPT", 4) == 0 ||
				  strncasecmp(line, "RSET", 4) == 0));
	memcpy(buf, line, n);
	memcpy(buf + n, "\r\n", 2);
	return push(c, buf, n + 2, !pipelinable, i == 4 && n == 4 && strncasecmp(line, "DATA", 4) == 0, fn, arg);
}

/* body_check - does [p, p + n) continue the content validly? Updates the scanner only when it does. */
static const char *body_check(struct body_scan *s, const char *p, size_t n)
{
	struct body_scan t = *s;
	size_t i;

	for (i = 0; i < n; i++) {
		char b = p[i];

		if (t.after_cr) {
			if (b != '\n')
				return smtp_client_err_bare_newline;
			if (t.dot_line)
				return smtp_client_err_dot_line;
			t.after_cr = 0;
			t.line_start = 1;
			continue;
		}
		if (b == '\r') {
			t.after_cr = 1;
			continue;
		}
		if (b == '\n')
			return smtp_client_err_bare_newline;
		t.dot_line = t.line_start && b == '.';
		t.line_start = 0;
	}
	*s = t;
	return NULL;
}

int smtp_client_body(struct smtp_client *c, const char *data, size_t len)
{
	const char *why;

	if (c->error != NULL)
		return -1;
	if (!c->in_body) {
		c->error = smtp_client_err_state;
		return -1;
	}
	if ((why = body_check(&c->scan, data, len)) != NULL) {
		c->error = why;
		return -1;
	}
	if (len > 0 && c->write(c->io, data, len) < 0) {
		c->error = smtp_client_err_write;
		return -1;
	}
	c->body_bytes += len;
	return 0;
}

int smtp_client_body_end(struct smtp_client *c, smtp_client_reply_fn fn, void *arg)
{
	static const char crlf_dot[] = "\r\n.\r\n";

	if (c->error != NULL)
		return -1;
	if (!c->in_body) {
		c->error = smtp_client_err_state;
		return -1;
	}
	if (c->scan.after_cr) {
		c->error = smtp_client_err_bare_newline;
		return -1;
	}
	c->in_body = 0;
	/* The end of data is CRLF "." CRLF; the first CRLF ends the last line when the content ended one. */
	if (c->scan.line_start) {
		if (c->write(c->io, crlf_dot + 2, 3) < 0) {
			c->error = smtp_client_err_write;
			return -1;
		}
	} else if (c->write(c->io, crlf_dot, 5) < 0) {
		c->error = smtp_client_err_write;
		return -1;
	}
	return push(c, NULL, 0, 1, 0, fn, arg);
}

/* compact - drop the replies already handed out from the input buffer. */
static void compact(struct smtp_client *c)
{
	if (c->in_off > 0) {
		memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
		c->in_len -= c->in_off;
		c->in_off = 0;
	}
}

/* deliver - hand out every complete reply in the buffer; -1 on a malformed or unasked-for reply. */
static int deliver(struct smtp_client *c)
{
	struct smtp_reply r;
	struct pending p;
	const char *why;
	size_t start;

	while (!c->halted) {
		start = c->in_off;
		switch (smtp_reply_parse(c->in + start, c->in + c->in_len, &r, &why)) {
		case SMTP_REPLY_MALFORMED:
			c->error = why;
			return -1;
		case SMTP_REPLY_NEED_MORE:
			return 0;
		case SMTP_REPLY_COMPLETE:
			break;
		}
		if (c->n_written == 0) {
			c->error = smtp_client_err_unexpected;
			return -1;
		}
		p = *q_at(c, 0);
		c->q_head = (c->q_head + 1) % SMTP_CLIENT_MAX_PENDING;
		c->q_count--;
		c->n_written--;
		c->in_off += r.len;
		if (p.is_data && r.code == 354) {
			c->in_body = 1;
			c->body_bytes = 0;
			c->scan = (struct body_scan){1, 0, 0};
		}
		if (p.fn != NULL)
			p.fn(c, &r, c->in + start, p.arg);
		if (c->dead)
			return 0;
		if (c->error != NULL)
			return -1;
		if (!c->halted && flush_held(c) < 0)
			return -1;
	}
	return 0;
}

int smtp_client_feed(struct smtp_client *c, const char *data, size_t len)
{
	size_t n;
	int rc = 0;

	if (c->error != NULL)
		return -1;
	c->feeding = 1;
	do {
		compact(c);
		n = sizeof(c->in) - c->in_len < len ? sizeof(c->in) - c->in_len : len;
		if (n == 0 && len > 0) {
			/* Only when halted with a full buffer: the parser refuses a reply before it fills the buffer. */
			c->error = smtp_reply_err_too_long;
			rc = -1;
			break;
		}
		memcpy(c->in + c->in_len, data, n);
		c->in_len += n;
		data += n;
		len -= n;
		/* Halted: the bytes are kept (smtp_client_buffered counts them), never parsed. */
		if (!c->halted && deliver(c) < 0) {
			rc = -1;
			break;
		}
	} while (len > 0 && !c->dead);
	c->feeding = 0;
	if (c->dead) {
		free(c);
		return 0;
	}
	return rc;
}

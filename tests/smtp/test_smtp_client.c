/*
 * test_smtp_client.c - the SMTP conversation engine (proxy/origin/smtp_client.c) without a network: what it
 * writes and when (RFC 2920 groups with and without PIPELINING), replies to the right callbacks in order however
 * they are split, the STARTTLS cut (halt, bytes left over), message content checks against smuggling, errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client.h"

struct io {
	char out[65536];
	size_t out_len;
	int fail_writes;
	/* what the callbacks saw */
	int codes[256];
	char names[256][16];
	size_t n;
	size_t buffered_at[256];
	struct smtp_client *c;
	int free_in_cb;         /* free the client inside the callback of this reply number (1-based) */
	int halt_in_cb;
	int command_in_cb;      /* send "NOOP" from the callback of this reply number */
};

static int io_write(void *arg, const char *data, size_t len)
{
	struct io *io = arg;

	if (io->fail_writes)
		return -1;
	assert_true(io->out_len + len <= sizeof(io->out));
	memcpy(io->out + io->out_len, data, len);
	io->out_len += len;
	return 0;
}

/* A callback argument carrying the io and a name for the reply. */
struct tag {
	struct io *io;
	char name[16];
};

static void on_reply(struct smtp_client *c, const struct smtp_reply *r, const char *text, void *arg)
{
	struct tag *t = arg;
	struct io *io = t->io;
	const char *name = t->name;

	assert_true(io->n < 256);
	assert_int_equal(text[0], '0' + r->code / 100);
	io->codes[io->n] = r->code;
	snprintf(io->names[io->n], sizeof(io->names[0]), "%s", name);
	io->buffered_at[io->n] = smtp_client_buffered(c);
	io->n++;
	if (io->halt_in_cb == (int)io->n)
		smtp_client_halt(c);
	if (io->command_in_cb == (int)io->n)
		assert_int_equal(smtp_client_command(c, "NOOP", on_reply, arg), 0);
	if (io->free_in_cb == (int)io->n) {
		smtp_client_free(c);
		io->c = NULL;
	}
}

static struct tag *tag(struct io *io, const char *name)
{
	static struct tag tags[64];
	static size_t next;
	struct tag *t = &tags[next++ % 64];

	t->io = io;
	snprintf(t->name, sizeof(t->name), "%s", name);
	return t;
}

static struct io *io_new(void)
{
	struct io *io = calloc(1, sizeof(*io));

	assert_non_null(io);
	io->c = smtp_client_new(io_write, io);
	assert_non_null(io->c);
	return io;
}

static void io_free(struct io *io)
{
	smtp_client_free(io->c);
	free(io);
}

static void feed(struct io *io, const char *s)
{
	assert_int_equal(smtp_client_feed(io->c, s, strlen(s)), 0);
}

static void expect_out(struct io *io, const char *want)
{
	if (io->out_len != strlen(want) || memcmp(io->out, want, io->out_len) != 0)
		fail_msg("written \"%.*s\", want \"%s\"", (int)io->out_len, io->out, want);
	io->out_len = 0;
}

/* test_dialogue - greeting, EHLO, STARTTLS: one at a time; the multi-line greeting is one reply. */
static void test_dialogue(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_expect(io->c, on_reply, tag(io, "greeting")), 0);
	expect_out(io, "");
	feed(io, "220-mx.example.net\r\n220-second\r\n220 ready\r\n");
	assert_int_equal(io->n, 1);
	assert_int_equal(io->codes[0], 220);
	assert_int_equal(smtp_client_command(io->c, "EHLO client.test", on_reply, tag(io, "ehlo")), 0);
	expect_out(io, "EHLO client.test\r\n");
	feed(io, "250-mx\r\n250 STARTTLS\r\n");
	assert_int_equal(smtp_client_command(io->c, "STARTTLS", on_reply, tag(io, "starttls")), 0);
	expect_out(io, "STARTTLS\r\n");
	feed(io, "220 go ahead\r\n");
	assert_int_equal(io->n, 3);
	assert_string_equal(io->names[2], "starttls");
	assert_int_equal(io->buffered_at[2], 0);
	assert_int_equal(smtp_client_awaiting(io->c), 0);
	io_free(io);
}

/* test_pipelining_groups - with PIPELINING, MAIL/RCPT/RSET go at once and a group ends with DATA (RFC 2920 3.1). */
static void test_pipelining_groups(void **state)
{
	struct io *io = io_new();

	(void)state;
	smtp_client_set_pipelining(io->c, 1);
	assert_int_equal(smtp_client_command(io->c, "MAIL FROM:<a@x>", on_reply, tag(io, "mail")), 0);
	assert_int_equal(smtp_client_command(io->c, "RCPT TO:<b@y>", on_reply, tag(io, "rcpt1")), 0);
	assert_int_equal(smtp_client_command(io->c, "rcpt TO:<c@y>", on_reply, tag(io, "rcpt2")), 0);
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	assert_int_equal(smtp_client_command(io->c, "RSET", on_reply, tag(io, "rset")), 0);
	/* the group went out in one piece; RSET waits for DATA's reply */
	expect_out(io, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nrcpt TO:<c@y>\r\nDATA\r\n");
	assert_int_equal(smtp_client_awaiting(io->c), 5);
	/* the replies arrive together: each goes to its command, in order */
	feed(io, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n");
	assert_int_equal(io->n, 4);
	assert_string_equal(io->names[0], "mail");
	assert_string_equal(io->names[2], "rcpt2");
	assert_int_equal(io->codes[2], 550);
	assert_int_equal(io->codes[3], 554);
	expect_out(io, "RSET\r\n");
	feed(io, "250 reset\r\n");
	assert_int_equal(io->n, 5);
	assert_int_equal(smtp_client_awaiting(io->c), 0);
	io_free(io);
}

/* test_no_pipelining - without PIPELINING each command waits for the reply before it. */
static void test_no_pipelining(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_command(io->c, "MAIL FROM:<a@x>", on_reply, tag(io, "mail")), 0);
	assert_int_equal(smtp_client_command(io->c, "RCPT TO:<b@y>", on_reply, tag(io, "rcpt")), 0);
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	expect_out(io, "MAIL FROM:<a@x>\r\n");
	/* split anywhere, even inside the line ending */
	feed(io, "25");
	feed(io, "0 ok\r");
	expect_out(io, "");
	feed(io, "\n");
	expect_out(io, "RCPT TO:<b@y>\r\n");
	feed(io, "250 ok\n");
	expect_out(io, "DATA\r\n");
	feed(io, "354 go\r\n");
	assert_int_equal(io->n, 3);
	io_free(io);
}

/* test_content - after a 354: content as given, checked; the end adds CRLF only when the content lacks it. */
static void test_content(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_body(io->c, "x", 1), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_state);
	io_free(io);

	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	feed(io, "354 go\r\n");
	io->out_len = 0;
	/* a command during content is refused, the content itself flows */
	assert_int_equal(smtp_client_command(io->c, "RSET", on_reply, tag(io, "rset")), -1);
	io_free(io);

	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	feed(io, "354 go\r\n");
	io->out_len = 0;
	assert_int_equal(smtp_client_body(io->c, "Subject: x\r\n\r\n..stuffed\r\n.", 26), 0);
	assert_int_equal(smtp_client_body(io->c, "x\r", 2), 0);
	assert_int_equal(smtp_client_body(io->c, "\nlast", 5), 0);
	assert_int_equal(smtp_client_body_bytes(io->c), 33);
	assert_int_equal(smtp_client_body_end(io->c, on_reply, tag(io, "end")), 0);
	expect_out(io, "Subject: x\r\n\r\n..stuffed\r\n.x\r\nlast\r\n.\r\n");
	feed(io, "250 queued\r\n");
	assert_string_equal(io->names[1], "end");
	/* the next transaction: content ending with CRLF gets only "." CRLF */
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data2")), 0);
	feed(io, "354 go\r\n");
	io->out_len = 0;
	assert_int_equal(smtp_client_body(io->c, "a\r\n", 3), 0);
	assert_int_equal(smtp_client_body_end(io->c, on_reply, tag(io, "end2")), 0);
	expect_out(io, "a\r\n.\r\n");
	io_free(io);

	/* empty content */
	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	feed(io, "354 go\r\n");
	io->out_len = 0;
	assert_int_equal(smtp_client_body_end(io->c, on_reply, tag(io, "end")), 0);
	expect_out(io, ".\r\n");
	io_free(io);
}

/* refused_content - after a 354, pieces p1 then p2 (p2 may be NULL): the last one is refused with why. */
static void refused_content(const char *p1, const char *p2, const char *why)
{
	struct io *io = io_new();

	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	feed(io, "354 go\r\n");
	io->out_len = 0;
	if (p2 != NULL) {
		assert_int_equal(smtp_client_body(io->c, p1, strlen(p1)), 0);
		p1 = p2;
		io->out_len = 0;
	}
	assert_int_equal(smtp_client_body(io->c, p1, strlen(p1)), -1);
	assert_ptr_equal(smtp_client_error(io->c), why);
	expect_out(io, "");   /* nothing of a refused piece is written */
	assert_int_equal(smtp_client_body_end(io->c, on_reply, tag(io, "end")), -1);
	io_free(io);
}

/* test_content_smuggling - what could end or split the message at the MX is refused, also across pieces. */
static void test_content_smuggling(void **state)
{
	(void)state;
	refused_content("a\r\n.\r\nMAIL FROM:<x@y>\r\n", NULL, smtp_client_err_dot_line);
	refused_content(".\r\n", NULL, smtp_client_err_dot_line);
	refused_content("a\r\n.", "\r\nMAIL FROM:<x@y>\r\n", smtp_client_err_dot_line);
	refused_content("a\r\n.\r", "\n", smtp_client_err_dot_line);
	refused_content("a\n.\nMAIL FROM:<x@y>\r\n", NULL, smtp_client_err_bare_newline);
	refused_content("a\r\n.\nMAIL", NULL, smtp_client_err_bare_newline);
	refused_content("a\r.\r\n", NULL, smtp_client_err_bare_newline);
	refused_content("a\r", "x", smtp_client_err_bare_newline);
	refused_content("line\n", NULL, smtp_client_err_bare_newline);
}

/* test_content_end_after_cr - content ending in a lone CR cannot be ended. */
static void test_content_end_after_cr(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_command(io->c, "DATA", on_reply, tag(io, "data")), 0);
	feed(io, "354 go\r\n");
	assert_int_equal(smtp_client_body(io->c, "a\r", 2), 0);
	assert_int_equal(smtp_client_body_end(io->c, on_reply, tag(io, "end")), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_bare_newline);
	io_free(io);
}

/* test_halt_leaves_bytes - the STARTTLS cut: the callback sees what came after its reply, and halting keeps it. */
static void test_halt_leaves_bytes(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_command(io->c, "STARTTLS", on_reply, tag(io, "starttls")), 0);
	assert_int_equal(smtp_client_command(io->c, "NOOP", on_reply, tag(io, "noop")), 0);
	io->halt_in_cb = 1;
	feed(io, "220 ready\r\n250 injected\r\n");
	assert_int_equal(io->n, 1);
	assert_int_equal(io->buffered_at[0], 14);
	assert_int_equal(smtp_client_buffered(io->c), 14);
	/* halted: more bytes are kept, never parsed */
	feed(io, "garbage");
	assert_int_equal(smtp_client_buffered(io->c), 21);
	assert_int_equal(io->n, 1);
	io_free(io);
}

/* test_free_in_callback - the owner may free the engine inside a reply callback, with more replies buffered. */
static void test_free_in_callback(void **state)
{
	struct io *io = io_new();

	(void)state;
	smtp_client_set_pipelining(io->c, 1);
	assert_int_equal(smtp_client_command(io->c, "MAIL FROM:<a@x>", on_reply, tag(io, "mail")), 0);
	assert_int_equal(smtp_client_command(io->c, "RCPT TO:<b@y>", on_reply, tag(io, "rcpt")), 0);
	io->free_in_cb = 1;
	assert_int_equal(smtp_client_feed(io->c, "250 a\r\n250 b\r\n", 14), 0);
	assert_int_equal(io->n, 1);
	assert_null(io->c);
	free(io);
}

/* test_command_in_callback - a command sent from a callback goes out after the replies before it. */
static void test_command_in_callback(void **state)
{
	struct io *io = io_new();

	(void)state;
	assert_int_equal(smtp_client_expect(io->c, on_reply, tag(io, "greeting")), 0);
	io->command_in_cb = 1;
	feed(io, "220 hi\r\n");
	expect_out(io, "NOOP\r\n");
	feed(io, "250 ok\r\n");
	assert_int_equal(io->n, 2);
	io_free(io);
}

/* test_errors - unasked-for and malformed replies, bad lines, write failures, too many pending. */
static void test_errors(void **state)
{
	struct io *io = io_new();
	char longline[600];
	int i;

	(void)state;
	/* a reply nobody asked for */
	assert_int_equal(smtp_client_feed(io->c, "220 hi\r\n", 8), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_unexpected);
	assert_int_equal(smtp_client_command(io->c, "NOOP", on_reply, tag(io, "x")), -1);
	io_free(io);
	/* a malformed one */
	io = io_new();
	assert_int_equal(smtp_client_expect(io->c, on_reply, tag(io, "greeting")), 0);
	assert_int_equal(smtp_client_feed(io->c, "HTTP/1.1 200 OK\r\n", 17), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_reply_err_code);
	assert_int_equal(io->n, 0);
	io_free(io);
	/* lines: CR, LF, too long, empty */
	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "RCPT TO:<a@b>\r\nDATA", on_reply, tag(io, "x")), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_line);
	io_free(io);
	io = io_new();
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(smtp_client_command(io->c, longline, on_reply, tag(io, "x")), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_line);
	io_free(io);
	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "", on_reply, tag(io, "x")), -1);
	io_free(io);
	/* the write fails */
	io = io_new();
	io->fail_writes = 1;
	assert_int_equal(smtp_client_command(io->c, "NOOP", on_reply, tag(io, "x")), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_write);
	io_free(io);
	/* more pending replies than the engine holds */
	io = io_new();
	smtp_client_set_pipelining(io->c, 1);
	for (i = 0; i < SMTP_CLIENT_MAX_PENDING; i++)
		assert_int_equal(smtp_client_command(io->c, "RCPT TO:<a@b>", on_reply, tag(io, "x")), 0);
	assert_int_equal(smtp_client_command(io->c, "RCPT TO:<a@b>", on_reply, tag(io, "x")), -1);
	assert_ptr_equal(smtp_client_error(io->c), smtp_client_err_busy);
	io_free(io);
	/* the greeting awaited while a command is held is a usage error */
	io = io_new();
	assert_int_equal(smtp_client_command(io->c, "NOOP", on_reply, tag(io, "x")), 0);
	assert_int_equal(smtp_client_command(io->c, "NOOP", on_reply, tag(io, "y")), 0);
	assert_int_equal(smtp_client_expect(io->c, on_reply, tag(io, "z")), -1);
	io_free(io);
}

/* test_many_replies - hundreds of pipelined replies in one feed larger than the engine's buffer. */
static void test_many_replies(void **state)
{
	struct io *io = io_new();
	size_t cap = 120 * 200, n;
	char *big = malloc(cap);
	int i, round;

	(void)state;
	assert_non_null(big);
	smtp_client_set_pipelining(io->c, 1);
	for (round = 0; round < 2; round++) {
		io->n = 0;
		n = 0;
		for (i = 0; i < 120; i++) {
			assert_int_equal(smtp_client_command(io->c, "RCPT TO:<a@b>", on_reply, tag(io, "r")), 0);
			n += (size_t)snprintf(big + n, cap - n, "250-%0150d\r\n250 2.1.5 ok %d\r\n", i, i);
		}
		assert_true(n > SMTP_REPLY_MAX);
		assert_int_equal(smtp_client_feed(io->c, big, n), 0);
		assert_int_equal(io->n, 120);
		assert_int_equal(smtp_client_awaiting(io->c), 0);
	}
	free(big);
	io_free(io);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dialogue),
		cmocka_unit_test(test_pipelining_groups),
		cmocka_unit_test(test_no_pipelining),
		cmocka_unit_test(test_content),
		cmocka_unit_test(test_content_smuggling),
		cmocka_unit_test(test_content_end_after_cr),
		cmocka_unit_test(test_halt_leaves_bytes),
		cmocka_unit_test(test_free_in_callback),
		cmocka_unit_test(test_command_in_callback),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_many_replies),
	};

	return cmocka_run_group_tests_name("smtp_client", tests, NULL, NULL);
}

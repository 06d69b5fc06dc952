/*
 * test_smtp_cmd.c - the smarthost's parser of what mail clients send (proxy/daemon/smtp_cmd.c): command lines with
 * their paths and parameters, and the end of a message's content found across any split of the bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_cmd.h"

static int parse(const char *line, struct smtp_cmd *c)
{
	return smtp_cmd_parse(line, strlen(line), c);
}

static void test_verbs(void **state)
{
	struct smtp_cmd c;

	(void)state;
	assert_int_equal(parse("EHLO client.example", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_EHLO);
	assert_string_equal(c.arg, "client.example");
	assert_int_equal(parse("helo x", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_HELO);
	assert_int_equal(parse("QuIt", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_QUIT);
	assert_int_equal(parse("STARTTLS", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_STARTTLS);
	assert_int_equal(parse("BDAT 100 LAST", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_BDAT);
	/* a verb is the whole word: no prefixes, no empty line */
	assert_int_equal(parse("DATAX", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_UNKNOWN);
	assert_int_equal(parse("", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_UNKNOWN);
	assert_int_equal(parse("GET / HTTP/1.1", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_UNKNOWN);
}

static void test_mail(void **state)
{
	struct smtp_cmd c;

	(void)state;
	assert_int_equal(parse("MAIL FROM:<alice@example.org>", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_MAIL);
	assert_string_equal(c.path, "alice@example.org");
	assert_int_equal(c.size, 0);
	assert_int_equal(c.body_8bit, 0);
	/* the null reverse-path (bounces), a space after the colon, parameters in any case */
	assert_int_equal(parse("mail from: <> size=1234 body=8BITMIME", &c), 0);
	assert_string_equal(c.path, "");
	assert_int_equal(c.size, 1234);
	assert_int_equal(c.body_8bit, 1);
	assert_int_equal(parse("MAIL FROM:<a@b.example> BODY=7BIT", &c), 0);
	assert_int_equal(c.body_8bit, 0);
	/* a source route is accepted and ignored (RFC 5321 4.1.2) */
	assert_int_equal(parse("MAIL FROM:<@relay.example,@r2.example:bob@example.org>", &c), 0);
	assert_string_equal(c.path, "bob@example.org");
	/* what cannot be relayed faithfully is refused, never dropped */
	assert_int_equal(parse("MAIL FROM:<a@b.example> SMTPUTF8", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_param);
	assert_int_equal(parse("MAIL FROM:<a@b.example> RET=FULL", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_param);
	assert_int_equal(parse("MAIL FROM:<a@b.example> BODY=BINARYMIME", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_param);
	assert_int_equal(parse("MAIL FROM:<a@b.example> SIZE=12x", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_param);
	assert_int_equal(parse("MAIL FROM:<a@b.example> SIZE=99999999999999999999999", &c), -1);
	/* syntax */
	assert_int_equal(parse("MAIL alice@example.org", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
	assert_int_equal(parse("MAIL FROM:alice@example.org", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
	assert_int_equal(parse("MAIL FROM:<alice@example.org", &c), -1);
	assert_int_equal(parse("MAIL FROM:<a <b>@example.org>", &c), -1);
	assert_int_equal(parse("MAIL FROM:<a b@example.org>", &c), -1);
	assert_int_equal(parse("MAIL FROM:<a\tb@example.org>", &c), -1);
	assert_int_equal(parse("MAIL FROM:<@relay.example>", &c), -1);
	assert_int_equal(parse("MAIL", &c), -1);
	assert_int_equal(c.verb, SMTP_CMD_MAIL);
}

static void test_rcpt(void **state)
{
	struct smtp_cmd c;
	char line[600];

	(void)state;
	assert_int_equal(parse("RCPT TO:<Bob@Mail.Example.NET.>", &c), 0);
	assert_int_equal(c.verb, SMTP_CMD_RCPT);
	assert_string_equal(c.path, "Bob@Mail.Example.NET.");
	assert_string_equal(c.domain, "mail.example.net");   /* the destination, normalised */
	assert_int_equal(parse("rcpt to: <x@y.example>", &c), 0);
	assert_string_equal(c.domain, "y.example");
	/* the last @ separates the domain */
	assert_int_equal(parse("RCPT TO:<\"a@b\"@c.example>", &c), 0);
	assert_string_equal(c.domain, "c.example");
	/* no domain, an address literal, a bad name: not a destination this smarthost can look up */
	assert_int_equal(parse("RCPT TO:<postmaster>", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
	assert_int_equal(parse("RCPT TO:<a@>", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
	assert_int_equal(parse("RCPT TO:<a@[192.0.2.1]>", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_domain);
	assert_int_equal(parse("RCPT TO:<a@bad..example>", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_domain);
	/* parameters (DSN) are not relayed: refused */
	assert_int_equal(parse("RCPT TO:<a@b.example> NOTIFY=NEVER", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_param);
	assert_int_equal(parse("RCPT FROM:<a@b.example>", &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
	/* a path longer than RFC 5321 allows */
	memset(line, 'a', sizeof(line));
	memcpy(line, "RCPT TO:<", 9);
	strcpy(line + 300, "@b.example>");
	assert_int_equal(parse(line, &c), -1);
	assert_ptr_equal(c.error, smtp_cmd_err_syntax);
}

/* ---------- the end of the content ---------- */

struct sink {
	char out[4096];
	size_t len;
};

static void emit(void *arg, const char *data, size_t n)
{
	struct sink *s = arg;

	assert_true(s->len + n <= sizeof(s->out));
	memcpy(s->out + s->len, data, n);
	s->len += n;
}

/*
 * scan_split - content in pieces cut at every position given by split (a piece per octet when split is 1): the
 * octets emitted, whether the end was found, and how much of the input was consumed.
 */
static size_t scan_split(const char *in, size_t len, size_t split, struct sink *s, int *done)
{
	struct smtp_data_scan sc;
	size_t off = 0, used = 0;

	memset(s, 0, sizeof(*s));
	smtp_data_scan_init(&sc);
	*done = 0;
	while (off < len && !*done) {
		size_t n = len - off < split ? len - off : split;
		size_t u = smtp_data_scan(&sc, in + off, n, emit, s, done);
		assert_true(u <= n);
		if (!*done)
			assert_int_equal(u, n);
		used = off + u;
		off += n;
	}
	return used;
}

static void expect_scan(const char *in, const char *content, int want_done, size_t want_used)
{
	size_t split, len = strlen(in);

	for (split = 1; split <= len + 1; split++) {
		struct sink s;
		int done;
		size_t used = scan_split(in, len, split, &s, &done);
		assert_int_equal(done, want_done);
		if (want_done)
			assert_int_equal(used, want_used);
		assert_int_equal(s.len, strlen(content));
		assert_memory_equal(s.out, content, s.len);
	}
}

static void test_data_end(void **state)
{
	(void)state;
	/* the end; what follows it (the next command) is not consumed */
	expect_scan("Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", "Subject: x\r\n\r\nbody\r\n", 1, 23);
	/* an empty message */
	expect_scan(".\r\n", "", 1, 3);
	/* dot-stuffing is kept: the MX undoes it */
	expect_scan("..\r\n.x\r\n..\r\n.\r\n", "..\r\n.x\r\n..\r\n", 1, 15);
	/* not the end: a dot not alone on its line, a dot line without CR, a dot CR not followed by LF */
	expect_scan("a.\r\n", "a.\r\n", 0, 0);
	expect_scan("a\r\n.\n", "a\r\n.\n", 0, 0);
	expect_scan("a\n.\r\n", "a\n.\r\n", 0, 0);
	expect_scan("a\r\n.\rb\r\n", "a\r\n.\rb\r\n", 0, 0);
	expect_scan("a\r\n.\r\r\n.\r\n", "a\r\n.\r\r\n", 1, 10);
	/* a held dot at the end of a piece is emitted once its line proves not to be the end */
	expect_scan("x\r\n.y", "x\r\n.y", 0, 0);
	/* CR CR LF: the line still ends */
	expect_scan("x\r\r\n.\r\n", "x\r\r\n", 1, 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_data_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_smtp_reply.c - the SMTP reply parser and EHLO keyword reader (proxy/origin/smtp_reply.c): complete,
 * need-more and malformed replies, the bounds, the tolerance real servers need, every prefix of a reply,
 * extension keywords and enhanced status codes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_reply.h"

static enum smtp_reply_status parse_str(const char *s, struct smtp_reply *r, const char **why)
{
	return smtp_reply_parse(s, s + strlen(s), r, why);
}

static void expect_complete(const char *s, int code, size_t len, size_t lines, const char *last)
{
	struct smtp_reply r;
	const char *why;

	if (parse_str(s, &r, &why) != SMTP_REPLY_COMPLETE)
		fail_msg("not complete: \"%s\" (%s)", s, why ? why : "need more");
	assert_int_equal(r.code, code);
	assert_int_equal(r.len, len);
	assert_int_equal(r.n_lines, lines);
	assert_int_equal(r.last_len, strlen(last));
	assert_memory_equal(s + r.last_off, last, r.last_len);
	assert_null(why);
}

static void expect_more(const char *s)
{
	struct smtp_reply r;
	const char *why;

	if (parse_str(s, &r, &why) != SMTP_REPLY_NEED_MORE)
		fail_msg("not need-more: \"%s\" (%s)", s, why ? why : "complete");
	assert_int_equal(r.len, 0);
	assert_null(why);
}

static void expect_malformed(const char *s, size_t n, const char *reason)
{
	struct smtp_reply r;
	const char *why;

	if (smtp_reply_parse(s, s + n, &r, &why) != SMTP_REPLY_MALFORMED)
		fail_msg("not malformed: \"%.*s\"", (int)n, s);
	assert_ptr_equal(why, reason);
	assert_int_equal(r.len, 0);
}

static void test_single_lines(void **state)
{
	(void)state;
	expect_complete("220 mx.example.net ESMTP Postfix\r\n", 220, 34, 1, "mx.example.net ESMTP Postfix");
	expect_complete("250\r\n", 250, 5, 1, "");
	expect_complete("250 \r\n", 250, 6, 1, "");
	expect_complete("554 5.7.1 Relay access denied\r\n", 554, 31, 1, "5.7.1 Relay access denied");
	/* tolerated: a bare LF, a tab, UTF-8 text (RFC 6531) */
	expect_complete("220 ok\n", 220, 7, 1, "ok");
	expect_complete("220 a\tb\r\n", 220, 9, 1, "a\tb");
	expect_complete("220 gr\xc3\xbc\xc3\x9f Gott\r\n", 220, 17, 1, "gr\xc3\xbc\xc3\x9f Gott");
	/* what follows a reply is not part of it */
	expect_complete("220 ready\r\nEXTRA", 220, 11, 1, "ready");
	expect_complete("220 ready\r\n220 again\r\n", 220, 11, 1, "ready");
}

static void test_multi_line(void **state)
{
	(void)state;
	expect_complete("250-mx.example.net\r\n250-PIPELINING\r\n250 STARTTLS\r\n", 250, 50, 3, "STARTTLS");
	expect_complete("250-first\r\n250-\r\n250\r\n", 250, 22, 3, "");
	expect_complete("250-a\n250 b\n", 250, 12, 2, "b");
}

static void test_need_more(void **state)
{
	(void)state;
	expect_more("");
	expect_more("2");
	expect_more("22");
	expect_more("220");
	expect_more("220 ");
	expect_more("220 partial");
	expect_more("220 partial\r");
	expect_more("250\r");
	expect_more("250-a\r\n250\r");
	expect_more("250-first\r\n");
	expect_more("250-first\r\n2");
	expect_more("250-first\r\n250");
	expect_more("250-first\r\n250-second\r\n250 la");
}

static void test_malformed(void **state)
{
	(void)state;
	expect_malformed("hello\r\n", 7, smtp_reply_err_code);
	expect_malformed("h", 1, smtp_reply_err_code);
	expect_malformed("120 x\r\n", 7, smtp_reply_err_code);
	expect_malformed("600 x\r\n", 7, smtp_reply_err_code);
	expect_malformed("2a0 x\r\n", 7, smtp_reply_err_code);
	expect_malformed("25\r\n", 4, smtp_reply_err_code);
	expect_malformed("\r\n", 2, smtp_reply_err_code);
	expect_malformed("220x\r\n", 6, smtp_reply_err_separator);
	expect_malformed("220x", 4, smtp_reply_err_separator);
	expect_malformed("250\rx", 5, smtp_reply_err_separator);
	expect_malformed("250-a\r\n251 b\r\n", 14, smtp_reply_err_code_changed);
	expect_malformed("250-a\r\nbad\r\n", 12, smtp_reply_err_code);
	expect_malformed("220 a\0b\r\n", 9, smtp_reply_err_control);
	expect_malformed("220 a\rb\r\n", 9, smtp_reply_err_control);
	expect_malformed("220 a\r\r\n", 8, smtp_reply_err_control);
	expect_malformed("220 a\x1b[31m\r\n", 12, smtp_reply_err_control);
	expect_malformed("220 a\x7f\r\n", 8, smtp_reply_err_control);
	/* a partial line is judged as far as it goes: garbage is malformed at once */
	expect_malformed("220 a\0", 6, smtp_reply_err_control);
	expect_malformed("250-a\r\nGET / HTTP/1.1", 21, smtp_reply_err_code);
}

/* test_bounds - 1000 octets per line (CRLF included) pass, 1001 do not; a reply stops at SMTP_REPLY_MAX. */
static void test_bounds(void **state)
{
	char *buf = malloc(SMTP_REPLY_MAX + 2048);
	struct smtp_reply r;
	const char *why;
	size_t n, lines;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "220 ", 4);
	memset(buf + 4, 'x', SMTP_REPLY_LINE_MAX - 6);
	memcpy(buf + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
	assert_int_equal(smtp_reply_parse(buf, buf + SMTP_REPLY_LINE_MAX, &r, &why), SMTP_REPLY_COMPLETE);
	assert_int_equal(r.len, SMTP_REPLY_LINE_MAX);
	/* one more octet in the line */
	memset(buf + 4, 'x', SMTP_REPLY_LINE_MAX - 5);
	memcpy(buf + SMTP_REPLY_LINE_MAX - 1, "\r\n", 2);
	expect_malformed(buf, SMTP_REPLY_LINE_MAX + 1, smtp_reply_err_line_long);
	/* without a line ending, need-more until the bound, then malformed */
	assert_int_equal(smtp_reply_parse(buf, buf + SMTP_REPLY_LINE_MAX - 1, &r, &why), SMTP_REPLY_NEED_MORE);
	expect_malformed(buf, SMTP_REPLY_LINE_MAX, smtp_reply_err_line_long);
	/* the whole reply: 100-octet continuation lines up to SMTP_REPLY_MAX, then one too many */
	for (n = 0, lines = 0; n + 100 <= SMTP_REPLY_MAX; n += 100, lines++) {
		memcpy(buf + n, "250-", 4);
		memset(buf + n + 4, 'y', 94);
		memcpy(buf + n + 98, "\r\n", 2);
	}
	assert_int_equal(smtp_reply_parse(buf, buf + n, &r, &why), SMTP_REPLY_NEED_MORE);
	memcpy(buf + n, "250 ", 4);
	memset(buf + n + 4, 'z', 94);
	memcpy(buf + n + 98, "\r\n", 2);
	expect_malformed(buf, n + 100, smtp_reply_err_too_long);
	/* ... and as soon as the pending data passes the bound, before any line ending */
	expect_malformed(buf, SMTP_REPLY_MAX, smtp_reply_err_too_long);
	/* the last continuation line turned into the end line: exactly within the bound */
	buf[n - 100 + 3] = ' ';
	assert_int_equal(smtp_reply_parse(buf, buf + n, &r, &why), SMTP_REPLY_COMPLETE);
	assert_int_equal(r.n_lines, lines);
	assert_true(r.len <= SMTP_REPLY_MAX);
	free(buf);
}

/* greeting_13 - a legitimate 13-line greeting of about 850 octets (what the old 511-byte buffer cut). */
static size_t greeting_13(char *buf, size_t cap)
{
	size_t n = 0;
	int i;

	for (i = 0; i < 12; i++)
		n += (size_t)snprintf(buf + n, cap - n, "220-mx.example.net line %02d: welcome here, unauthorised "
				      "use prohibited\r\n", i + 1);
	n += (size_t)snprintf(buf + n, cap - n, "220 mx.example.net ESMTP ready\r\n");
	return n;
}

/* test_every_prefix - every proper prefix of a valid reply needs more; the whole is complete; fed in any split. */
static void test_every_prefix(void **state)
{
	char buf[2048];
	size_t n = greeting_13(buf, sizeof(buf)), i;
	struct smtp_reply r;
	const char *why;

	(void)state;
	assert_true(n > 800 && n < 1000);
	for (i = 0; i < n; i++)
		if (smtp_reply_parse(buf, buf + i, &r, &why) != SMTP_REPLY_NEED_MORE)
			fail_msg("prefix of %zu octets: not need-more", i);
	assert_int_equal(smtp_reply_parse(buf, buf + n, &r, &why), SMTP_REPLY_COMPLETE);
	assert_int_equal(r.code, 220);
	assert_int_equal(r.n_lines, 13);
	assert_int_equal(r.len, n);
}

/* test_malformed_stays - once a prefix is malformed, every longer one is too (the parser never waits on junk). */
static void test_malformed_stays(void **state)
{
	static const char *const inputs[] = {"250-a\r\n25x b\r\n", "220 a\0bcdef\r\n", "250-a\r\n251-b\r\n",
					     "220hello\r\n"};
	struct smtp_reply r;
	const char *why;
	size_t k, i, n;
	int seen;

	(void)state;
	for (k = 0; k < sizeof(inputs) / sizeof(inputs[0]); k++) {
		n = k == 1 ? 13 : strlen(inputs[k]);
		for (i = 0, seen = 0; i <= n; i++) {
			enum smtp_reply_status st = smtp_reply_parse(inputs[k], inputs[k] + i, &r, &why);
			assert_int_not_equal(st, SMTP_REPLY_COMPLETE);
			if (seen)
				assert_int_equal(st, SMTP_REPLY_MALFORMED);
			seen |= st == SMTP_REPLY_MALFORMED;
		}
		assert_true(seen);
	}
}

static void test_lines(void **state)
{
	const char *s = "250-mx.example.net Hello\r\n250-SIZE 1000\r\n250\r\n", *text;
	struct smtp_reply r;
	const char *why;
	size_t len;

	(void)state;
	assert_int_equal(parse_str(s, &r, &why), SMTP_REPLY_COMPLETE);
	assert_int_equal(smtp_reply_line(s, &r, 0, &text, &len), 0);
	assert_int_equal(len, 20);
	assert_memory_equal(text, "mx.example.net Hello", 20);
	assert_int_equal(smtp_reply_line(s, &r, 1, &text, &len), 0);
	assert_memory_equal(text, "SIZE 1000", 9);
	assert_int_equal(smtp_reply_line(s, &r, 2, &text, &len), 0);
	assert_int_equal(len, 0);
	assert_int_equal(smtp_reply_line(s, &r, 3, &text, &len), -1);
}

static void ehlo(const char *s, struct smtp_ehlo *e)
{
	struct smtp_reply r;
	const char *why;

	if (parse_str(s, &r, &why) != SMTP_REPLY_COMPLETE)
		fail_msg("not a complete reply: %s", s);
	smtp_ehlo_parse(s, &r, e);
}

static void test_ehlo(void **state)
{
	struct smtp_ehlo e;

	(void)state;
	/* Postfix 3.7's reply */
	ehlo("250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n"
	     "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n", &e);
	assert_int_equal(e.flags, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_STARTTLS | SMTP_EXT_ENHANCEDSTATUSCODES |
					  SMTP_EXT_8BITMIME | SMTP_EXT_DSN | SMTP_EXT_SMTPUTF8 | SMTP_EXT_CHUNKING);
	assert_int_equal(e.size, 10240000);
	assert_int_equal(e.n_unknown, 2);
	assert_string_equal(e.keywords, "PIPELINING SIZE=10240000 VRFY ETRN STARTTLS ENHANCEDSTATUSCODES 8BITMIME DSN "
					"SMTPUTF8 CHUNKING");
	/* the first line is the domain, never a keyword; keywords are case-insensitive; SIZE without a limit */
	ehlo("250-STARTTLS\r\n250-starttls\r\n250-size\r\n250 Auth PLAIN LOGIN\r\n", &e);
	assert_int_equal(e.flags, SMTP_EXT_STARTTLS | SMTP_EXT_SIZE);
	assert_int_equal(e.size, 0);
	assert_string_equal(e.keywords, "STARTTLS SIZE AUTH");
	/* a keyword must stand alone: "STARTTLSX", "STARTTLS=1", "-STARTTLS", " STARTTLS" are not STARTTLS */
	ehlo("250-mx\r\n250-STARTTLSX\r\n250-STARTTLS=1\r\n250--STARTTLS\r\n250- STARTTLS\r\n250 X-STARTTLS\r\n", &e);
	assert_int_equal(e.flags & SMTP_EXT_STARTTLS, 0);
	/* a one-line reply has no extensions (plain SMTP after HELO, or a server with none) */
	ehlo("250 mx.example.net\r\n", &e);
	assert_int_equal(e.flags, 0);
	assert_string_equal(e.keywords, "");
	/* SIZE with junk or an overflowing number: offered, limit unknown */
	ehlo("250-mx\r\n250-SIZE 12x\r\n250 SIZE 999999999999999999999\r\n", &e);
	assert_int_equal(e.flags, SMTP_EXT_SIZE);
	assert_int_equal(e.size, 0);
}

static void test_ehlo_keywords_bounded(void **state)
{
	char s[4096];
	struct smtp_ehlo e;
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(s + n, sizeof(s) - n, "250-mx\r\n");
	for (i = 0; i < 60; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "250-XEXTENSION%02d\r\n", i);
	snprintf(s + n, sizeof(s) - n, "250 STARTTLS\r\n");
	ehlo(s, &e);
	assert_int_equal(e.flags, SMTP_EXT_STARTTLS);
	assert_int_equal(e.n_unknown, 60);
	assert_true(strlen(e.keywords) < sizeof(e.keywords));
	assert_string_equal(e.keywords + strlen(e.keywords) - 3, "...");
}

static void test_enhanced(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(smtp_reply_enhanced(554, "5.7.1 Relay access denied", 25, out, sizeof(out)), 0);
	assert_string_equal(out, "5.7.1");
	assert_int_equal(smtp_reply_enhanced(454, "4.7.5 TLS not available", 23, out, sizeof(out)), 0);
	assert_string_equal(out, "4.7.5");
	assert_int_equal(smtp_reply_enhanced(250, "2.1.0", 5, out, sizeof(out)), 0);
	assert_string_equal(out, "2.1.0");
	assert_int_equal(smtp_reply_enhanced(250, "2.100.100 x", 11, out, sizeof(out)), 0);
	assert_string_equal(out, "2.100.100");
	assert_int_equal(smtp_reply_enhanced(554, "4.7.1 wrong class", 17, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(354, "3.0.0 no such class", 19, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(554, "5.7 short", 9, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(554, "5.7.1x", 6, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(554, "5.1000.1", 8, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(554, "Relay denied", 12, out, sizeof(out)), -1);
	assert_int_equal(smtp_reply_enhanced(554, "5.7.1", 5, out, 8), -1);
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_lines),
		cmocka_unit_test(test_multi_line),
		cmocka_unit_test(test_need_more),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_malformed_stays),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_ehlo),
		cmocka_unit_test(test_ehlo_keywords_bounded),
		cmocka_unit_test(test_enhanced),
	};

	return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}

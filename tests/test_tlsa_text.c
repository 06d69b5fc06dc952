/*
 * test_tlsa_text.c - unit tests of the TLSA presentation-format parser (proxy/tlsa_text.c).
 *
 * Accepted forms: "U S M HEX" (hex split by blanks, any case), zone-file and dig lines
 * "owner [ttl] [class] TLSA U S M HEX"; comments and blank lines are EMPTY; everything a user
 * could mistype is MALFORMED with a message, never a crash or an overread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsa_text.h"

/* SHA-256 and SHA-512 sized test data: bytes 0x00, 0x11, ... repeating, lowercase hex. */
#define HEX32 "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"
#define HEX32_UPPER "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210"
#define HEX64 HEX32 "0f1e2d3c4b5a69788796a5b4c3d2e1f0deadbeefcafebabe0badf00dfeedface"

struct parsed {
	enum tlsa_text_status st;
	struct tlsa_text_record rec;
	uint8_t buf[TLSA_TEXT_MAX_DATA];
	char err[256];
};

/* parse_n - parse [p, p + n) into a fresh struct parsed with a data buffer of cap bytes. */
static struct parsed *parse_n(const char *p, size_t n, size_t cap)
{
	struct parsed *r = test_calloc(1, sizeof(*r));

	assert_non_null(r);
	assert_true(cap <= sizeof(r->buf));
	r->rec.data = r->buf;
	r->rec.data_cap = cap;
	memset(r->err, 0, sizeof(r->err));
	r->st = tlsa_text_parse(p, p + n, &r->rec, r->err, sizeof(r->err));
	return r;
}

static struct parsed *parse(const char *line)
{
	return parse_n(line, strlen(line), TLSA_TEXT_MAX_DATA);
}

/* hex_of - the parsed data as lowercase hex (static buffer, enough for the short cases). */
static const char *hex_of(const struct parsed *r)
{
	static char out[2 * 1024 + 1];

	assert_true(r->rec.len <= 1024);
	tlsa_text_hex(r->rec.data, r->rec.len, out);
	return out;
}

static void expect_ok(const char *line, int u, int s, int m, const char *hex)
{
	struct parsed *r = parse(line);

	if (r->st != TLSA_TEXT_OK)
		fail_msg("\"%.120s\": status %d (%s), expected OK", line, r->st, r->err);
	assert_int_equal(r->rec.usage, u);
	assert_int_equal(r->rec.selector, s);
	assert_int_equal(r->rec.mtype, m);
	assert_int_equal(r->rec.len, strlen(hex) / 2);
	assert_string_equal(hex_of(r), hex);
	test_free(r);
}

static void expect_empty(const char *line)
{
	struct parsed *r = parse(line);

	if (r->st != TLSA_TEXT_EMPTY)
		fail_msg("\"%.120s\": status %d (%s), expected EMPTY", line, r->st, r->err);
	test_free(r);
}

/* expect_malformed_n - MALFORMED with a non-empty, terminated message. */
static void expect_malformed_n(const char *p, size_t n, size_t cap)
{
	struct parsed *r = parse_n(p, n, cap);

	if (r->st != TLSA_TEXT_MALFORMED)
		fail_msg("\"%.120s\" (%zu bytes): status %d, expected MALFORMED", p, n, r->st);
	assert_true(r->err[0] != '\0');
	assert_non_null(memchr(r->err, '\0', sizeof(r->err)));
	test_free(r);
}

static void expect_malformed(const char *line)
{
	expect_malformed_n(line, strlen(line), TLSA_TEXT_MAX_DATA);
}

/* ---------------------------------------------------------------- accepted forms */

static void test_plain_sha256(void **state)
{
	(void)state;
	expect_ok("3 1 1 " HEX32, 3, 1, 1, HEX32);
	expect_ok("2 0 1 " HEX32, 2, 0, 1, HEX32);
	expect_ok("0 0 1 " HEX32, 0, 0, 1, HEX32);
}

static void test_plain_sha512(void **state)
{
	(void)state;
	expect_ok("3 1 2 " HEX64, 3, 1, 2, HEX64);
	expect_ok("1 0 2 " HEX64, 1, 0, 2, HEX64);
}

static void test_full_data_any_length(void **state)
{
	(void)state;
	expect_ok("3 1 0 3059301306072a", 3, 1, 0, "3059301306072a");
	expect_ok("2 0 0 ab", 2, 0, 0, "ab");
}

static void test_split_hex(void **state)
{
	(void)state;
	expect_ok("3 1 1 00112233445566778899aabbccddeeff 0123456789abcdeffedcba9876543210", 3, 1, 1, HEX32);
	expect_ok("3 1 1 0011 2233 4455 6677 8899 aabb ccdd eeff\t0123456789abcdef  fedcba9876543210", 3, 1, 1,
		  HEX32);
}

static void test_hex_case(void **state)
{
	(void)state;
	expect_ok("3 1 1 " HEX32_UPPER, 3, 1, 1, HEX32);
	expect_ok("3 1 1 00112233445566778899AaBbCcDdEeFf0123456789aBcDeFfEdCbA9876543210", 3, 1, 1, HEX32);
}

static void test_whitespace_around(void **state)
{
	(void)state;
	expect_ok("   3 1 1 " HEX32, 3, 1, 1, HEX32);
	expect_ok("\t3\t1\t1\t" HEX32 "\n", 3, 1, 1, HEX32);
	expect_ok("3 1 1 " HEX32 "\r\n", 3, 1, 1, HEX32);
	expect_ok("3 1 1 " HEX32 "   ", 3, 1, 1, HEX32);
}

static void test_presentation_full(void **state)
{
	(void)state;
	expect_ok("_443._tcp.www.example.test. 3600 IN TLSA 3 1 1 " HEX32, 3, 1, 1, HEX32);
	expect_ok("_25._tcp.mx.example.test.\t86400\tIN\tTLSA\t2 0 2 " HEX64, 2, 0, 2, HEX64);
}

static void test_presentation_optional_fields(void **state)
{
	(void)state;
	expect_ok("www.example.test. IN TLSA 3 1 1 " HEX32, 3, 1, 1, HEX32);
	expect_ok("_443._tcp.www.example.test. 300 TLSA 3 1 1 " HEX32, 3, 1, 1, HEX32);
	expect_ok("_443._tcp.www.example.test. TLSA 3 0 1 " HEX32, 3, 0, 1, HEX32);
}

/* dig prints the hex in 56-character chunks separated by blanks, uppercase. */
static void test_dig_output(void **state)
{
	(void)state;
	expect_ok("_443._tcp.www.example.test. 3600 IN\tTLSA\t3 1 1 00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDC"
		  " BA9876543210",
		  3, 1, 1, HEX32);
	expect_ok("_443._tcp.www.example.test. 3599\tIN\tTLSA\t3 1 2 00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDC"
		  " BA98765432100F1E2D3C4B5A69788796A5B4C3D2E1F0DEADBEEFCA FEBABE0BADF00DFEEDFACE\n",
		  3, 1, 2, HEX64);
}

/* The parser checks syntax; usability (usage 4, mtype 3, ...) is the engine's decision. */
static void test_unusable_but_wellformed(void **state)
{
	(void)state;
	expect_ok("4 1 1 " HEX32, 4, 1, 1, HEX32);
	expect_ok("255 255 255 abcd", 255, 255, 255, "abcd");
	expect_ok("3 2 1 " HEX32, 3, 2, 1, HEX32);
	expect_ok("3 1 3 abcdef", 3, 1, 3, "abcdef");
}

/* Only [p, end) is read: what follows end does not exist. */
static void test_respects_end(void **state)
{
	static const char line[] = "3 1 1 " HEX32 "zz garbage";
	struct parsed *r;

	(void)state;
	r = parse_n(line, 6 + 64, TLSA_TEXT_MAX_DATA);
	assert_int_equal(r->st, TLSA_TEXT_OK);
	assert_string_equal(hex_of(r), HEX32);
	test_free(r);
	expect_malformed_n(line, 6 + 63, TLSA_TEXT_MAX_DATA);
}

/* ---------------------------------------------------------------- nothing to do */

static void test_comments_and_blank(void **state)
{
	(void)state;
	expect_empty("");
	expect_empty("\n");
	expect_empty("   \t  ");
	expect_empty("\r\n");
	expect_empty("; a zone-file comment");
	expect_empty("# a shell-style comment");
	expect_empty("   ; indented comment 3 1 1 " HEX32);
	expect_empty("\t# indented comment\n");
}

/* ---------------------------------------------------------------- malformed */

static void test_odd_hex(void **state)
{
	(void)state;
	expect_malformed("3 1 0 abc");
	expect_malformed("3 1 0 ab c");
	expect_malformed("3 1 1 " HEX32 "0");
}

static void test_non_hex(void **state)
{
	(void)state;
	expect_malformed("3 1 1 zz112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210");
	expect_malformed("3 1 0 0x1234");
	expect_malformed("3 1 0 12-34");
	expect_malformed("3 1 0 g0");
}

static void test_embedded_nul(void **state)
{
	static const char line[] = "3 1 0 ab\0cd";

	(void)state;
	expect_malformed_n(line, sizeof(line) - 1, TLSA_TEXT_MAX_DATA);
}

static void test_field_range(void **state)
{
	(void)state;
	expect_malformed("256 1 1 " HEX32);
	expect_malformed("3 256 1 " HEX32);
	expect_malformed("3 1 256 abcd");
	expect_malformed("99999999999999999999999 1 1 " HEX32);
	expect_malformed("4294967299 1 1 " HEX32); /* 2^32 + 3 must not wrap to 3 */
	expect_malformed("259 1 1 " HEX32);        /* 256 + 3 must not wrap to 3 */
}

static void test_field_not_decimal(void **state)
{
	(void)state;
	expect_malformed("-1 1 1 " HEX32);
	expect_malformed("3 -1 1 " HEX32);
	expect_malformed("3 1 -1 " HEX32);
	expect_malformed("+3 1 1 " HEX32);
	expect_malformed("3a 1 1 " HEX32);
	expect_malformed("0x3 1 1 " HEX32);
	expect_malformed("x 1 1 " HEX32);
}

static void test_missing_fields(void **state)
{
	(void)state;
	expect_malformed("3");
	expect_malformed("3 1");
	expect_malformed("3 1 1");
	expect_malformed("3 1 1   ");
	expect_malformed("_443._tcp.www.example.test. 3600 IN TLSA");
	expect_malformed("_443._tcp.www.example.test. 3600 IN TLSA 3 1");
	expect_malformed("_443._tcp.www.example.test. 3600 IN TLSA 3 1 1");
	expect_malformed("www.example.test.");
}

static void test_wrong_digest_length(void **state)
{
	(void)state;
	expect_malformed("3 1 1 " HEX64);                       /* SHA-512 length for SHA-256 */
	expect_malformed("3 1 2 " HEX32);                       /* SHA-256 length for SHA-512 */
	expect_malformed("3 1 1 00112233445566778899aabbccddeeff0123456789abcdeffedcba98765432"); /* 31 */
	expect_malformed("3 1 1 " HEX32 "00");                  /* 33 */
	expect_malformed("3 1 2 " HEX64 "00");                  /* 65 */
}

static void test_over_capacity(void **state)
{
	static const char line[] = "3 1 0 " HEX32;
	struct parsed *r;

	(void)state;
	expect_malformed_n(line, sizeof(line) - 1, 16);
	expect_malformed_n(line, sizeof(line) - 1, 31);
	expect_malformed_n(line, sizeof(line) - 1, 0);
	r = parse_n(line, sizeof(line) - 1, 32); /* exactly enough */
	assert_int_equal(r->st, TLSA_TEXT_OK);
	assert_int_equal(r->rec.len, 32);
	test_free(r);
}

/* A 1 MB line of each kind: hex data, digits, blanks, letters. */
static void test_huge_lines(void **state)
{
	const size_t n = 1024 * 1024;
	char *line = test_malloc(n + 1);
	struct parsed *r;

	(void)state;
	assert_non_null(line);

	memcpy(line, "3 1 0 ", 6); /* 524 285 bytes of data: over TLSA_TEXT_MAX_DATA whatever the buffer */
	memset(line + 6, 'a', n - 6);
	line[n] = '\0';
	expect_malformed_n(line, n, TLSA_TEXT_MAX_DATA);

	memset(line, '3', n); /* one endless number */
	expect_malformed_n(line, n, TLSA_TEXT_MAX_DATA);

	memcpy(line, "3 1 1 ", 6); /* endless blanks after the fields */
	memset(line + 6, ' ', n - 6);
	expect_malformed_n(line, n, TLSA_TEXT_MAX_DATA);

	memset(line, 'x', n); /* one endless owner name */
	expect_malformed_n(line, n, TLSA_TEXT_MAX_DATA);

	memset(line, ';', 1); /* an endless comment is still a comment */
	r = parse_n(line, n, TLSA_TEXT_MAX_DATA);
	assert_int_equal(r->st, TLSA_TEXT_EMPTY);
	test_free(r);
	test_free(line);
}

/* Exactly TLSA_TEXT_MAX_DATA bytes of full data parse; one more byte does not. */
static void test_max_data(void **state)
{
	const size_t hexlen = 2 * (size_t)TLSA_TEXT_MAX_DATA;
	char *line = test_malloc(6 + hexlen + 2 + 1);
	struct parsed *r;

	(void)state;
	assert_non_null(line);
	memcpy(line, "3 0 0 ", 6);
	memset(line + 6, 'f', hexlen);
	r = parse_n(line, 6 + hexlen, TLSA_TEXT_MAX_DATA);
	assert_int_equal(r->st, TLSA_TEXT_OK);
	assert_int_equal(r->rec.len, TLSA_TEXT_MAX_DATA);
	assert_int_equal(r->rec.data[TLSA_TEXT_MAX_DATA - 1], 0xff);
	test_free(r);
	memcpy(line + 6 + hexlen, "ff", 2);
	expect_malformed_n(line, 6 + hexlen + 2, TLSA_TEXT_MAX_DATA);
	test_free(line);
}

/* A small err buffer is respected and terminated. */
static void test_small_err_buffer(void **state)
{
	static const char line[] = "3 1 1 zz";
	struct tlsa_text_record rec;
	uint8_t buf[64];
	char err[16];

	(void)state;
	memset(err, 'Q', sizeof(err));
	rec.data = buf;
	rec.data_cap = sizeof(buf);
	assert_int_equal(tlsa_text_parse(line, line + sizeof(line) - 1, &rec, err, 8), TLSA_TEXT_MALFORMED);
	assert_non_null(memchr(err, '\0', 8));
	for (size_t i = 8; i < sizeof(err); i++)
		assert_int_equal(err[i], 'Q');
}

/* ---------------------------------------------------------------- tlsa_text_hex */

static void test_hex_output(void **state)
{
	static const uint8_t data[] = { 0x00, 0xff, 0x10, 0xab, 0x7f };
	char out[2 * sizeof(data) + 2];

	(void)state;
	memset(out, 'Q', sizeof(out));
	tlsa_text_hex(data, sizeof(data), out);
	assert_string_equal(out, "00ff10ab7f");
	assert_int_equal(out[sizeof(out) - 1], 'Q');
	tlsa_text_hex(data, 0, out);
	assert_string_equal(out, "");
}

static void test_round_trip(void **state)
{
	(void)state;
	expect_ok("3 1 2 " HEX64, 3, 1, 2, HEX64);
	expect_ok("3 1 1 " HEX32_UPPER, 3, 1, 1, HEX32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_sha256),
		cmocka_unit_test(test_plain_sha512),
		cmocka_unit_test(test_full_data_any_length),
		cmocka_unit_test(test_split_hex),
		cmocka_unit_test(test_hex_case),
		cmocka_unit_test(test_whitespace_around),
		cmocka_unit_test(test_presentation_full),
		cmocka_unit_test(test_presentation_optional_fields),
		cmocka_unit_test(test_dig_output),
		cmocka_unit_test(test_unusable_but_wellformed),
		cmocka_unit_test(test_respects_end),
		cmocka_unit_test(test_comments_and_blank),
		cmocka_unit_test(test_odd_hex),
		cmocka_unit_test(test_non_hex),
		cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_field_range),
		cmocka_unit_test(test_field_not_decimal),
		cmocka_unit_test(test_missing_fields),
		cmocka_unit_test(test_wrong_digest_length),
		cmocka_unit_test(test_over_capacity),
		cmocka_unit_test(test_huge_lines),
		cmocka_unit_test(test_max_data),
		cmocka_unit_test(test_small_err_buffer),
		cmocka_unit_test(test_hex_output),
		cmocka_unit_test(test_round_trip),
	};

	return cmocka_run_group_tests_name("tlsa_text", tests, NULL, NULL);
}

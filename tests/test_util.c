/*
 * test_util.c - unit tests of the bottom layer (config/util: bounded file reads and the shared value parsers) and
 * of the JSON string writer every log line goes through (proxy/json.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "json.h"
#include "text.h"

/* ---------- numbers and ports ---------- */

/* One hex digit reader for chunk sizes and TLSA text: both cases, nothing else (no sign, no "0x", no high bytes). */
static void test_hex_digit(void **state)
{
	int ch;

	(void)state;
	for (ch = -128; ch < 256; ch++) {
		int want = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			   : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
		assert_int_equal(hex_digit(ch), want);
	}
}

static void test_decimal_parse(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(decimal_parse("0", 1, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(decimal_parse("4294967295", 10, 4294967295u, &v), 0);
	assert_int_equal(v, 4294967295u);
	assert_int_equal(decimal_parse("4294967296", 10, 4294967295u, &v), -1);
	assert_int_equal(decimal_parse("18446744073709551615", 20, UINT64_MAX, &v), 0);
	assert_int_equal(decimal_parse("18446744073709551616", 20, UINT64_MAX, &v), -1);
	assert_int_equal(decimal_parse("9", 1, 5, &v), -1);   /* a digit above max (no unsigned wrap) */
	assert_int_equal(decimal_parse("", 0, 10, &v), -1);
	assert_int_equal(decimal_parse("-1", 2, 10, &v), -1);
	assert_int_equal(decimal_parse("+1", 2, 10, &v), -1);
	assert_int_equal(decimal_parse(" 1", 2, 10, &v), -1);
	assert_int_equal(decimal_parse("1x", 2, 10, &v), -1);
	assert_int_equal(decimal_parse("12", 1, 10, &v), 0);   /* only len bytes are read */
	assert_int_equal(v, 1);
}

static void test_port_parse(void **state)
{
	uint16_t p = 0;

	(void)state;
	assert_int_equal(port_parse("1", 1, &p), 0);
	assert_int_equal(p, 1);
	assert_int_equal(port_parse("65535", 5, &p), 0);
	assert_int_equal(p, 65535);
	assert_int_equal(port_parse("0", 1, &p), -1);
	assert_int_equal(port_parse("65536", 5, &p), -1);
	assert_int_equal(port_parse("0443", 4, &p), 0);
	assert_int_equal(p, 443);
}

/* ---------- host names ---------- */

static void test_hostname_normalize(void **state)
{
	static const struct {
		const char *in;
		const char *want;   /* NULL: refused */
	} cases[] = {
		{"www.Dane.TEST", "www.dane.test"},
		{"www.dane.test.", "www.dane.test"},
		{"_25._tcp.mail.example", "_25._tcp.mail.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"localhost", "localhost"},
		{"www.dane.test..", NULL},
		{"a..b", NULL},
		{".a", NULL},
		{".", NULL},
		{"", NULL},
		{"a b", NULL},
		{"a\x80.b", NULL},
		{"www.dane.test\x01", NULL},
		{"exa%41mple.com", NULL},
		{"a*.example.com", NULL},
	};
	char out[TEXT_NAME_MAX], label[70], longname[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = hostname_normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out));
		if (cases[i].want == NULL) {
			if (why == NULL)
				fail_msg("\"%s\" accepted as \"%s\"", cases[i].in, out);
		} else {
			if (why != NULL)
				fail_msg("\"%s\" refused: %s", cases[i].in, why);
			assert_string_equal(out, cases[i].want);
		}
	}
	/* An embedded NUL is inside len: refused, never truncated into a shorter, valid name. */
	assert_non_null(hostname_normalize("www.dane.test\0.evil", 19, out, sizeof(out)));
	/* Label and name lengths. */
	memset(label, 'a', 63);
	label[63] = '\0';
	assert_null(hostname_normalize(label, 63, out, sizeof(out)));
	memset(label, 'a', 64);
	label[64] = '\0';
	assert_non_null(hostname_normalize(label, 64, out, sizeof(out)));
	for (i = 0; i < 253; i++)
		longname[i] = i % 2 ? '.' : 'a';
	longname[253] = '\0';
	assert_null(hostname_normalize(longname, 253, out, sizeof(out)));
	longname[253] = '.';   /* one trailing dot more is fine */
	assert_null(hostname_normalize(longname, 254, out, sizeof(out)));
	longname[253] = 'a';
	longname[254] = '\0';
	assert_non_null(hostname_normalize(longname, 254, out, sizeof(out)));
	assert_true(hostname_valid("a.b"));
	assert_false(hostname_valid("a..b"));
}

/* ---------- addresses ---------- */

static void test_ip_literal_parse(void **state)
{
	uint8_t a[16];
	int family = 0;

	(void)state;
	assert_int_equal(ip_literal_parse("192.0.2.1", 9, &family, a), 0);
	assert_int_equal(family, AF_INET);
	assert_memory_equal(a, "\xc0\x00\x02\x01", 4);
	assert_int_equal(ip_literal_parse("[2001:db8::1]", 13, &family, a), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(ip_literal_parse("::1", 3, &family, a), 0);
	assert_int_equal(family, AF_INET6);
	assert_int_equal(ip_literal_parse("[192.0.2.1]", 11, &family, a), -1);   /* brackets are for IPv6 */
	assert_int_equal(ip_literal_parse("192.0.2.1\0x", 11, &family, a), -1);
	assert_int_equal(ip_literal_parse("www.example", 11, &family, a), -1);
	assert_int_equal(ip_literal_parse("", 0, &family, a), -1);
}

static void test_resolver_addr_parse(void **state)
{
	struct net_addr n;

	(void)state;
	assert_int_equal(resolver_addr_parse("192.0.2.1", 53, &n), 0);
	assert_int_equal(n.family, AF_INET);
	assert_int_equal(n.port, 53);
	assert_int_equal(resolver_addr_parse("127.0.0.1@5300", 53, &n), 0);
	assert_int_equal(n.port, 5300);
	assert_int_equal(resolver_addr_parse("[::1]@5300", 53, &n), 0);
	assert_int_equal(n.family, AF_INET6);
	assert_int_equal(n.port, 5300);
	assert_int_equal(resolver_addr_parse("::1@53", 53, &n), 0);
	assert_int_equal(resolver_addr_parse("192.0.2.1@", 53, &n), -1);
	assert_int_equal(resolver_addr_parse("192.0.2.1@0", 53, &n), -1);
	assert_int_equal(resolver_addr_parse("192.0.2.1@65536", 53, &n), -1);
	assert_int_equal(resolver_addr_parse("resolver.example", 53, &n), -1);
	assert_int_equal(resolver_addr_parse("@53", 53, &n), -1);
}

/* Issue 9 finding 11: a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; every rule sees a.b.c.d. */
static void test_net_addr_unmap(void **state)
{
	uint8_t a[16];
	int family = AF_INET6;

	(void)state;
	assert_int_equal(inet_pton(AF_INET6, "::ffff:127.0.0.1", a), 1);
	net_addr_unmap(&family, a);
	assert_int_equal(family, AF_INET);
	assert_memory_equal(a, "\x7f\x00\x00\x01", 4);
	family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::1", a), 1);
	net_addr_unmap(&family, a);
	assert_int_equal(family, AF_INET6);
	family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "::127.0.0.1", a), 1);   /* IPv4-compatible (deprecated): not mapped */
	net_addr_unmap(&family, a);
	assert_int_equal(family, AF_INET6);
}

/* ---------- files ---------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/daneproxy-test-util.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Issue 9 finding 10: a FIFO, a device or a directory where a file is expected is refused at once: never
 * waited on (a FIFO without a writer) and never read forever (/dev/zero). */
static void test_file_read_all_refuses_non_files(void **state)
{
	char path[128], err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	time_t t0 = time(NULL);

	(void)state;
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(file_read_all(path, 1024, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(file_read_all("/dev/zero", 1024, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(file_read_all(tmpdir, 1024, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "is a directory"));
	assert_true(time(NULL) - t0 < 5);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(file_read_all(path, 1024, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	/* Size bound, and a good file. */
	snprintf(path, sizeof(path), "%s/file", tmpdir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("hello", f);
	fclose(f);
	assert_int_equal(file_read_all(path, 4, &buf, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than 4 bytes"));
	assert_int_equal(file_read_all(path, 5, &buf, &len, err, sizeof(err)), 0);
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	free(buf);
}

/* Issue 9 finding 14: "cannot tell" is never "missing" (a CA would be created where one may exist). */
static void test_file_exists(void **state)
{
	char path[128], err[256] = "";

	(void)state;
	assert_int_equal(file_exists(tmpdir, err, sizeof(err)), 1);
	snprintf(path, sizeof(path), "%s/nothing-here", tmpdir);
	assert_int_equal(file_exists(path, err, sizeof(err)), 0);
	/* A path through a regular file: ENOTDIR, not ENOENT. */
	snprintf(path, sizeof(path), "%s/file/ca.key", tmpdir);
	assert_int_equal(file_exists(path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "Not a directory"));
}

/* ---------- JSON strings ---------- */

static char *json_of(const char *s)
{
	static char out[512];
	FILE *f = fmemopen(out, sizeof(out), "w");

	assert_non_null(f);
	json_put_string(f, s);
	fputc('\0', f);
	fclose(f);
	return out;
}

/* Issue 9 finding 9: every string in a log line is valid UTF-8 JSON, whatever bytes the client sent. */
static void test_json_strings(void **state)
{
	(void)state;
	assert_string_equal(json_of(NULL), "null");
	assert_string_equal(json_of("plain"), "\"plain\"");
	assert_string_equal(json_of("q\"b\\"), "\"q\\\"b\\\\\"");
	assert_string_equal(json_of("a\nb\r\t\x01\x7f"), "\"a\\nb\\r\\t\\u0001\\u007f\"");
	/* Valid UTF-8 passes through. */
	assert_string_equal(json_of("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* Not UTF-8: each bad byte becomes U+FFFD, escaped. */
	assert_string_equal(json_of("\xff\xfe"), "\"\\ufffd\\ufffd\"");
	assert_string_equal(json_of("a\x80z"), "\"a\\ufffdz\"");
	assert_string_equal(json_of("\xc3"), "\"\\ufffd\"");                 /* truncated at the end */
	assert_string_equal(json_of("\xc3x"), "\"\\ufffdx\"");
	assert_string_equal(json_of("\xc0\xaf"), "\"\\ufffd\\ufffd\"");      /* overlong '/' */
	assert_string_equal(json_of("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");   /* a surrogate */
	assert_string_equal(json_of("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");   /* above U+10FFFF */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hex_digit),
		cmocka_unit_test(test_decimal_parse),
		cmocka_unit_test(test_port_parse),
		cmocka_unit_test(test_hostname_normalize),
		cmocka_unit_test(test_ip_literal_parse),
		cmocka_unit_test(test_resolver_addr_parse),
		cmocka_unit_test(test_net_addr_unmap),
		cmocka_unit_test(test_file_read_all_refuses_non_files),
		cmocka_unit_test(test_file_exists),
		cmocka_unit_test(test_json_strings),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}

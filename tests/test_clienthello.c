/*
 * test_clienthello.c - unit tests of the ClientHello parser (proxy/clienthello.c) over real ClientHellos that
 * wolfSSL writes (a client session over memory buffers, tls.c), re-framed and altered the way a hostile client would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "clienthello.h"
#include "tls.h"

static int accept_nothing(const struct dane_chain *chain, void *arg)
{
	(void)chain;
	(void)arg;
	return 0;
}

/* make_hello - a real ClientHello record (or records) from wolfSSL for sni/alpn; returns its length. */
static size_t make_hello(const char *sni, const char *alpn, uint8_t **out)
{
	char err[200];
	struct tls_ctx *ctx = tls_client_ctx_new(err, sizeof(err));
	struct tls_conn *t;
	size_t n;

	assert_non_null(ctx);
	t = tls_client_new(ctx, sni, alpn, accept_nothing, NULL);
	assert_non_null(t);
	assert_int_equal(tls_handshake(t), TLS_WANT);
	n = tls_out_take(t, out);
	assert_true(n > 5);
	tls_free(t);
	tls_ctx_free(ctx);
	return n;
}

/* reframe - the handshake payload of hello split into records of at most `piece` bytes (a fresh buffer). */
static size_t reframe(const uint8_t *hello, size_t len, size_t piece, uint8_t **out)
{
	size_t msg_len = len - 5, off = 0, n = 0;
	uint8_t *buf = malloc(len + 5 * (msg_len / piece + 1));

	assert_non_null(buf);
	assert_int_equal(hello[0], 22);
	assert_int_equal((size_t)hello[3] << 8 | hello[4], msg_len);   /* wolfSSL sends it in one record */
	while (off < msg_len) {
		size_t k = msg_len - off < piece ? msg_len - off : piece;
		buf[n] = 22;
		buf[n + 1] = 3;
		buf[n + 2] = 1;
		buf[n + 3] = (uint8_t)(k >> 8);
		buf[n + 4] = (uint8_t)k;
		memcpy(buf + n + 5, hello + 5 + off, k);
		n += 5 + k;
		off += k;
	}
	*out = buf;
	return n;
}

static void test_real_hello(void **state)
{
	uint8_t *hello;
	size_t len = make_hello("www.Dane.Test", "http/1.1", &hello), i;
	struct clienthello ch;
	const char *why;

	(void)state;
	assert_int_equal(clienthello_parse(hello, len, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_COMPLETE);
	assert_true(ch.has_sni);
	assert_true(ch.sni_valid);
	assert_string_equal(ch.sni_name, "www.dane.test");   /* normalised */
	assert_string_equal(ch.alpn, "http/1.1");
	assert_int_equal(ch.bytes, len);
	/* Every prefix is a valid start: read more. */
	for (i = 0; i < len; i++)
		if (clienthello_parse(hello, i, CLIENTHELLO_MAX, &ch, &why) != CLIENTHELLO_NEED_MORE)
			fail_msg("prefix of %zu bytes not NEED_MORE", i);
	/* A bound below its size. */
	assert_int_equal(clienthello_parse(hello, len, 100, &ch, &why), CLIENTHELLO_TOO_LARGE);
	free(hello);
	/* No SNI (an IP literal host), no ALPN. */
	len = make_hello(NULL, NULL, &hello);
	assert_int_equal(clienthello_parse(hello, len, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_COMPLETE);
	assert_false(ch.has_sni);
	assert_string_equal(ch.alpn, "");
	free(hello);
}

/* Issue 9 finding 8: a ClientHello split over records is read whole, whatever the split. */
static void test_split_records(void **state)
{
	static const size_t pieces[] = {1, 7, 40, 100, 4096};
	uint8_t *hello, *split;
	size_t len = make_hello("evil.dane.test", "h2,http/1.1", &hello), n, i, j;
	struct clienthello ch;
	const char *why;

	(void)state;
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		if (pieces[i] < 4)
			continue;   /* the first record must hold the 4-byte message header */
		n = reframe(hello, len, pieces[i], &split);
		assert_int_equal(clienthello_parse(split, n, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_COMPLETE);
		assert_string_equal(ch.sni_name, "evil.dane.test");
		assert_string_equal(ch.alpn, "h2,http/1.1");
		assert_int_equal(ch.bytes, n);
		for (j = 0; j < n; j++)
			if (clienthello_parse(split, j, CLIENTHELLO_MAX, &ch, &why) != CLIENTHELLO_NEED_MORE)
				fail_msg("piece %zu: prefix of %zu bytes not NEED_MORE", pieces[i], j);
		free(split);
	}
	free(hello);
}

/* patch - replace the first occurrence of from (n bytes) in buf by to. */
static void patch(uint8_t *buf, size_t len, const char *from, const char *to, size_t n)
{
	size_t i;

	for (i = 0; i + n <= len; i++) {
		if (memcmp(buf + i, from, n) == 0) {
			memcpy(buf + i, to, n);
			return;
		}
	}
	fail_msg("\"%s\" not in the hello", from);
}

/* Issue 9 finding 8: an SNI with a NUL, a high byte or an empty label is not a host name. */
static void test_sni_not_a_host_name(void **state)
{
	static const char *const bad[] = {"www.dane.test\0.evil", "www.dane.test\xff.evil", "www.dane..test.evil",
					  "www.dane.test .evil"};
	uint8_t *hello;
	size_t len, i;
	struct clienthello ch;
	const char *why;
	char shown[300];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		len = make_hello("www.dane.testX.evil", NULL, &hello);
		patch(hello, len, "www.dane.testX.evil", bad[i], 19);
		assert_int_equal(clienthello_parse(hello, len, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_COMPLETE);
		assert_true(ch.has_sni);
		assert_false(ch.sni_valid);
		assert_int_equal(ch.sni_len, 19);
		assert_memory_equal(ch.sni, bad[i], 19);
		free(hello);
	}
	clienthello_sni_printable(&ch, shown, sizeof(shown));
	assert_string_equal(shown, "www.dane.test\\x20.evil");
}

static void test_not_tls_and_malformed(void **state)
{
	uint8_t *hello, *bad;
	size_t len = make_hello("www.dane.test", NULL, &hello);
	struct clienthello ch;
	const char *why = NULL;

	(void)state;
	assert_int_equal(clienthello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, CLIENTHELLO_MAX, &ch, &why),
			 CLIENTHELLO_NOT_TLS);
	assert_int_equal(clienthello_parse((const uint8_t *)"\x16\x01", 2, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_NOT_TLS);
	/* A record longer than TLS allows. */
	assert_int_equal(clienthello_parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, CLIENTHELLO_MAX, &ch, &why),
			 CLIENTHELLO_MALFORMED);
	/* Bytes after the hello inside its record. */
	bad = malloc(len + 3);
	assert_non_null(bad);
	memcpy(bad, hello, len);
	memcpy(bad + len, "abc", 3);
	bad[3] = (uint8_t)((len - 5 + 3) >> 8);
	bad[4] = (uint8_t)(len - 5 + 3);
	assert_int_equal(clienthello_parse(bad, len + 3, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_MALFORMED);
	assert_string_equal(why, "data after the ClientHello in its last record");
	/* Not a ClientHello message (a ServerHello type). */
	memcpy(bad, hello, len);
	bad[5] = 2;
	assert_int_equal(clienthello_parse(bad, len, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_MALFORMED);
	/* A message length that ends inside the extensions. */
	memcpy(bad, hello, len);
	{
		size_t mlen = ((size_t)bad[6] << 16 | (size_t)bad[7] << 8 | bad[8]) - 3;
		bad[6] = (uint8_t)(mlen >> 16);
		bad[7] = (uint8_t)(mlen >> 8);
		bad[8] = (uint8_t)mlen;
	}
	bad[3] = (uint8_t)((len - 5 - 3) >> 8);
	bad[4] = (uint8_t)(len - 5 - 3);
	assert_int_equal(clienthello_parse(bad, len - 3, CLIENTHELLO_MAX, &ch, &why), CLIENTHELLO_MALFORMED);
	free(bad);
	free(hello);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_hello),
		cmocka_unit_test(test_split_records),
		cmocka_unit_test(test_sni_not_a_host_name),
		cmocka_unit_test(test_not_tls_and_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

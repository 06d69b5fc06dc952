/*
 * tls.c - wolfSSL sessions over memory buffers.
 *
 * Custom I/O callbacks read ciphertext from the session's input buffer and append ciphertext to its output
 * buffer; the event loop moves bytes between those buffers and sockets. Certificate decisions are never
 * wolfSSL's: the verify callback hands the presented chain to the caller (the DANE engine plus policy) and
 * aborts the handshake with an alert when it says no.
 *
 * Buffers: a session owns no I/O buffer while nothing is in flight. Ciphertext from the socket is read into its
 * context's input scratch (TLS_SCRATCH bytes: up to eight records per read) and decrypted in the same read callback;
 * only what the owner does not want yet is copied into a buffer of the session's own. Ciphertext wolfSSL
 * produces goes into the context's output scratch, from which the loop writes it straight to the socket; only
 * what the kernel does not take at once is copied. One loop, one thread: a scratch is lent to one session at a
 * time (another one that needs it meanwhile gets a private buffer).
 */
#include "tls.h"
#include "dane.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

/*
 * Eight full records (16 KiB plaintext + 5 header + up to 256 of expansion each) per read or per write: a bulk
 * transfer makes a fraction of the system calls and wake-ups that one record per read would (measured against
 * four records, assembly build: ~3% less CPU per MiB; sixteen gained nothing more). It is also the most a
 * session ever has to keep of its own when its owner stops reading in the middle of a read (flow control).
 * One per context, not per session.
 */
#define TLS_SCRATCH (8 * (16384 + 5 + 256))
#define TLS_PRIVATE_IN 16384            /* a session's own input buffer when the scratch is lent out */

/*
 * Preferences follow the library we were built against. Debian's wolfSSL has no AES-NI or assembly: ChaCha20 runs
 * at ~400 MB/s against ~165 MB/s for AES-GCM, and X25519 beats P-256, so those come first (peers that honour the
 * client's order then relay 2x faster). A wolfSSL built with bench/wolfssl-asm has AES-NI and SP assembly: AES-GCM
 * (~6.8 GB/s) and P-256 (ECDHE 16+22 us vs X25519 30+29 us) win there. Forward-secret AEAD suites only.
 */
#if defined(WOLFSSL_AESNI)
static const char cipher_list[] =
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
#else
static const char cipher_list[] =
	"TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
#endif

#if defined(WOLFSSL_SP_ASM) || defined(WOLFSSL_SP_X86_64_ASM)
#define TLS_PREFERRED_GROUP WOLFSSL_ECC_SECP256R1
#define TLS_GROUPS {WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP384R1}
#else
#define TLS_PREFERRED_GROUP WOLFSSL_ECC_X25519
#define TLS_GROUPS {WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1}
#endif
#define TLS_OUT_MAX (4 * 1024 * 1024)   /* callers apply backpressure long before this */

/* scratch - a buffer lent to one session at a time. */
struct scratch {
	uint8_t *buf;
	size_t cap;
	struct tls_conn *owner;
};

struct tls_ctx {
	WOLFSSL_CTX *ctx;
	struct scratch in;
	struct scratch out;
};

struct tls_conn {
	WOLFSSL *ssl;
	int server;
	tls_verify_fn verify;
	void *verify_arg;
	int verify_called;
	int verify_refused;
	int alert;
	int offered;          /* a session was set for resumption */
	int resumed;          /* the handshake resumed it */
	int authenticated;    /* the handshake finished: verified, or resumed what we offered */
	int server_done;      /* a server session finished its handshake */
	tls_session_fn session_fn;
	void *session_arg;
	void (*session_free)(void *);
	uint8_t *pending;     /* a session that arrived before the handshake finished (TLS 1.2) */
	size_t pending_len;
	uint32_t pending_lifetime;
	struct tls_ctx *ctx;
	uint8_t *in;          /* ctx->in.buf while lent, else a private buffer, or NULL */
	size_t in_off;
	size_t in_len;
	size_t in_cap;
	uint8_t *out;         /* ctx->out.buf while lent, else a private buffer, or NULL */
	size_t out_len;
	size_t out_cap;
	int in_lost;          /* unread ciphertext could not be kept: the stream is broken */
	char err[200];
	char alpn[32];           /* the negotiated protocol, copied out for tls_alpn() */
};

/* io_recv - wolfSSL wants ciphertext: give what the loop has put in. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *t = arg;
	size_t n = t->in_len - t->in_off;

	(void)ssl;
	if (t->in_lost)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	if (n > (size_t)sz)
		n = (size_t)sz;
	memcpy(buf, t->in + t->in_off, n);
	t->in_off += n;
	if (t->in_off == t->in_len)
		t->in_off = t->in_len = 0;
	return (int)n;
}

/* scratch_claim - lend sc to t when nobody has it; 0, or -1 when it is taken (or cannot be allocated). */
static int scratch_claim(struct scratch *sc, struct tls_conn *t)
{
	if (sc->owner != NULL && sc->owner != t)
		return -1;
	if (sc->buf == NULL) {
		sc->buf = malloc(TLS_SCRATCH);
		if (sc->buf == NULL)
			return -1;
		sc->cap = TLS_SCRATCH;
	}
	sc->owner = t;
	return 0;
}

/* io_send - wolfSSL produced ciphertext: keep it for the loop to send. */
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_conn *t = arg;
	struct scratch *sc = &t->ctx->out;
	size_t need = t->out_len + (size_t)sz, cap;
	uint8_t *grown;

	(void)ssl;
	if (need > TLS_OUT_MAX)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (t->out == NULL && scratch_claim(sc, t) == 0) {
		t->out = sc->buf;
		t->out_cap = sc->cap;
	}
	if (need > t->out_cap) {
		cap = t->out_cap ? t->out_cap : 16384;
		while (cap < need)
			cap *= 2;
		grown = realloc(t->out, cap);
		if (grown == NULL)
			return WOLFSSL_CBIO_ERR_GENERAL;
		t->out = grown;
		t->out_cap = cap;
		if (sc->owner == t) {   /* the scratch itself grew: keep the larger one */
			sc->buf = grown;
			sc->cap = cap;
		}
	}
	memcpy(t->out + t->out_len, buf, (size_t)sz);
	t->out_len = need;
	return sz;
}

/*
 * on_verify - called by wolfSSL for every certificate (WOLFSSL_VERIFY_CB_ALL_CERTS), top down; the decision is
 * taken once, at the leaf, over the whole presented chain. wolfSSL's own PKIX verdict (preverify) is ignored:
 * trust comes from DANE or from the engine's PKIX check against the configured store.
 */
static int on_verify(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct tls_conn *t = store->userCtx;
	struct dane_chain *chain;
	char err[160];
	int i, ok;

	(void)preverify;
	if (t == NULL)
		return 0;
	if (store->error_depth != 0)
		return 1;
	if (t->verify_called)
		return !t->verify_refused;
	t->verify_called = 1;
	chain = dane_chain_new();
	if (chain == NULL) {
		snprintf(t->err, sizeof(t->err), "out of memory verifying the certificate chain");
		t->verify_refused = 1;
		return 0;
	}
	for (i = 0; i < store->totalCerts && i < DANE_MAX_CHAIN; i++) {
		if (dane_chain_add_der(chain, store->certs[i].buffer, store->certs[i].length, err, sizeof(err)) < 0) {
			/* A certificate we cannot parse cannot be matched; stop the chain there. */
			break;
		}
	}
	ok = t->verify(chain, t->verify_arg);
	dane_chain_free(chain);
	if (!ok) {
		t->verify_refused = 1;
		snprintf(t->err, sizeof(t->err), "certificate refused by DANE/PKIX verification");
	}
	return ok;
}

/*
 * trim_zero_pages - give the kernel back the memory pages of a live heap block that hold nothing but zeros.
 *
 * Debian's wolfSSL (SESSION_CERTS, WOLFSSL_ALT_CERT_CHAINS) gives every session a WOLFSSL_SESSION of 37 KB, two
 * fixed arrays of nine 2 KB certificate slots each, zeroed at creation and mostly left so: about 30 KB of resident
 * zeros per connection, which no API releases. A private anonymous page dropped with MADV_DONTNEED reads back as
 * zeros, so for an all-zero page inside the block the contents are unchanged while the RSS goes; a later write
 * brings a page back. Only whole pages strictly inside [p, p + malloc_usable_size(p)) are touched, memory malloc
 * lends the caller and keeps no bookkeeping in.
 */
static void trim_zero_pages(void *p)
{
#if defined(__linux__) && defined(__GLIBC__)
	static const uint64_t zero[64];
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), a, end, run = 0;
	size_t i;

	if (p == NULL || page == 0 || page % sizeof(zero) != 0)
		return;
	a = ((uintptr_t)p + page - 1) & ~(page - 1);
	end = ((uintptr_t)p + malloc_usable_size(p)) & ~(page - 1);
	for (; a + page <= end; a += page) {
		for (i = 0; i < page && memcmp((const uint8_t *)a + i, zero, sizeof(zero)) == 0; i += sizeof(zero))
			;
		if (i == page) {
			if (run == 0)
				run = a;
			continue;
		}
		if (run != 0)
			madvise((void *)run, a - run, MADV_DONTNEED);
		run = 0;
	}
	if (run != 0)
		madvise((void *)run, a - run, MADV_DONTNEED);
#else
	(void)p;
#endif
}

/*
 * free_arrays - the handshake is over: wolfSSL frees most handshake state itself, but Debian's build
 * (WOLFSSL_POST_HANDSHAKE_AUTH with session tickets) keeps the handshake arrays of a TLS 1.3 session (5.5 KB:
 * Arrays and the pre-master secret buffer) for a client certificate requested after the handshake, which
 * daneproxy never sends; builds without that option free them here too, and later NewSessionTicket and KeyUpdate
 * messages do not use them.
 */
static void free_arrays(struct tls_conn *t)
{
	wolfSSL_FreeArrays(t->ssl);
}

/* slim - a session that stays open keeps only what it needs: its wolfSSL objects' pages of zeros go. */
static void slim(struct tls_conn *t)
{
	if (!t->authenticated && !t->server_done)
		return;   /* the handshake is not over: it still writes into them */
#if defined(NO_SESSION_CACHE_REF)
	/* With NO_SESSION_CACHE_REF wolfSSL_get_session returns the session's own WOLFSSL_SESSION. */
	trim_zero_pages(wolfSSL_get_session(t->ssl));
#endif
	trim_zero_pages(t->ssl);
}

/* wipe_free - sessions carry secrets. */
static void wipe_free(uint8_t *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * on_new_session - wolfSSL has a session for this connection (TLS 1.3: each NewSessionTicket, after the
 * handshake; TLS 1.2: a ticket or session ID, during the handshake). Encoded and handed on once the handshake
 * has finished authenticated; returning 0 leaves wolfSSL's reference to wolfSSL.
 */
static int on_new_session(WOLFSSL *ssl, WOLFSSL_SESSION *sess)
{
	struct tls_conn *t = wolfSSL_GetIOReadCtx(ssl);
	uint8_t *der, *p;
	long timeout;
	int len;

	if (t == NULL || t->session_fn == NULL || t->verify_refused)
		return 0;
	len = wolfSSL_i2d_SSL_SESSION(sess, NULL);
	if (len <= 0 || (der = malloc((size_t)len)) == NULL)
		return 0;
	p = der;
	if (wolfSSL_i2d_SSL_SESSION(sess, &p) != len) {
		wipe_free(der, (size_t)len);
		return 0;
	}
	timeout = wolfSSL_SESSION_get_timeout(sess);
	if (t->authenticated) {
		t->session_fn(der, (size_t)len, timeout > 0 ? (uint32_t)timeout : 0, t->session_arg);
		wipe_free(der, (size_t)len);
		return 0;
	}
	/* Not finished yet: kept until it is (and dropped if it never is). The newest one wins. */
	wipe_free(t->pending, t->pending_len);
	t->pending = der;
	t->pending_len = (size_t)len;
	t->pending_lifetime = timeout > 0 ? (uint32_t)timeout : 0;
	return 0;
}

struct tls_ctx *tls_client_ctx_new(char *err, size_t errlen)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));
	int tls_groups[] = TLS_GROUPS;   /* wolfSSL_CTX_set_groups takes a non-const array */

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
	if (c->ctx == NULL) {
		snprintf(err, errlen, "wolfSSL_CTX_new failed");
		free(c);
		return NULL;
	}
	if (wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_groups(c->ctx, tls_groups, (int)(sizeof(tls_groups) / sizeof(tls_groups[0]))) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(c->ctx, cipher_list) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot configure TLS versions, groups and ciphers");
		wolfSSL_CTX_free(c->ctx);
		free(c);
		return NULL;
	}
	wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(c->ctx, io_send);
	wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_PEER, on_verify);
	/* Client sessions go to the caller (tls_client_on_session), never to a cache of wolfSSL's. */
	wolfSSL_CTX_sess_set_new_cb(c->ctx, on_new_session);
	return c;
}

struct tls_ctx *tls_server_ctx_new(char *err, size_t errlen)
{
	struct tls_ctx *c = calloc(1, sizeof(*c));
	int tls_groups[] = TLS_GROUPS;   /* wolfSSL_CTX_set_groups takes a non-const array */

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
	if (c->ctx == NULL || wolfSSL_CTX_SetMinVersion(c->ctx, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_groups(c->ctx, tls_groups, (int)(sizeof(tls_groups) / sizeof(tls_groups[0]))) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_cipher_list(c->ctx, cipher_list) != WOLFSSL_SUCCESS) {
		snprintf(err, errlen, "cannot create the TLS server context");
		if (c->ctx != NULL)
			wolfSSL_CTX_free(c->ctx);
		free(c);
		return NULL;
	}
	wolfSSL_CTX_SetIORecv(c->ctx, io_recv);
	wolfSSL_CTX_SetIOSend(c->ctx, io_send);
	wolfSSL_CTX_set_verify(c->ctx, WOLFSSL_VERIFY_NONE, NULL);
	return c;
}

struct tls_conn *tls_server_new(struct tls_ctx *ctx, const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
				size_t key_len, const char *alpn)
{
	struct tls_conn *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->server = 1;
	t->ctx = ctx;
	t->ssl = wolfSSL_new(ctx->ctx);
	if (t->ssl == NULL)
		goto fail;
	wolfSSL_SetIOReadCtx(t->ssl, t);
	wolfSSL_SetIOWriteCtx(t->ssl, t);
	if (wolfSSL_use_certificate_buffer(t->ssl, cert_der, (long)cert_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
	    wolfSSL_use_PrivateKey_buffer(t->ssl, key_der, (long)key_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
		goto fail;
	if (alpn != NULL &&
	    wolfSSL_UseALPN(t->ssl, (char *)(uintptr_t)alpn, (unsigned)strlen(alpn), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
		    WOLFSSL_SUCCESS)
		goto fail;
	return t;
fail:
	tls_free(t);
	return NULL;
}

void tls_ctx_max_tls12(struct tls_ctx *ctx)
{
	wolfSSL_CTX_set_max_proto_version(ctx->ctx, TLS1_2_VERSION);
}

void tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	wolfSSL_CTX_free(ctx->ctx);
	free(ctx->in.buf);
	free(ctx->out.buf);
	free(ctx);
}

struct tls_conn *tls_client_new(struct tls_ctx *ctx, const char *sni, const char *alpn, tls_verify_fn verify,
				void *verify_arg)
{
	struct tls_conn *t;

	if (verify == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->ctx = ctx;
	t->ssl = wolfSSL_new(ctx->ctx);
	if (t->ssl == NULL)
		goto fail;
	t->verify = verify;
	t->verify_arg = verify_arg;
	wolfSSL_SetIOReadCtx(t->ssl, t);
	wolfSSL_SetIOWriteCtx(t->ssl, t);
	wolfSSL_SetCertCbCtx(t->ssl, t);
	if (sni != NULL && wolfSSL_UseSNI(t->ssl, WOLFSSL_SNI_HOST_NAME, sni, (unsigned short)strlen(sni)) !=
				   WOLFSSL_SUCCESS)
		goto fail;
	if (alpn != NULL &&
	    wolfSSL_UseALPN(t->ssl, (char *)(uintptr_t)alpn, (unsigned)strlen(alpn), WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) !=
		    WOLFSSL_SUCCESS)
		goto fail;
	wolfSSL_UseKeyShare(t->ssl, TLS_PREFERRED_GROUP);
	return t;
fail:
	tls_free(t);
	return NULL;
}

void tls_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	wolfSSL_free(t->ssl);
	wipe_free(t->pending, t->pending_len);
	if (t->session_free != NULL)
		t->session_free(t->session_arg);
	tls_out_release(t);
	t->in_off = t->in_len;
	tls_in_settle(t);
	free(t);
}

void tls_client_on_session(struct tls_conn *t, tls_session_fn fn, void *arg, void (*free_arg)(void *))
{
	if (t->session_free != NULL)
		t->session_free(t->session_arg);
	t->session_fn = fn;
	t->session_arg = arg;
	t->session_free = free_arg;
}

int tls_client_offer_session(struct tls_conn *t, const uint8_t *sess, size_t len)
{
	const unsigned char *p = sess;
	WOLFSSL_SESSION *s;
	int ok;

	if (t->server || len == 0 || len > 0x7fffffff)
		return -1;
	s = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
	if (s == NULL)
		return -1;
	/* wolfSSL_set_session copies it, and refuses an expired one. */
	ok = wolfSSL_set_session(t->ssl, s) == WOLFSSL_SUCCESS;
	wolfSSL_SESSION_free(s);
	if (!ok)
		return -1;
	t->offered = 1;
	return 0;
}

int tls_resumed(const struct tls_conn *t)
{
	return t->resumed;
}

void tls_sha256(const void *p, size_t len, uint8_t out[32])
{
	wc_Sha256 sha;

	/* Cannot fail for software SHA-256 with valid arguments; a failure leaves a digest of zeros. */
	memset(out, 0, 32);
	if (wc_InitSha256(&sha) == 0) {
		if (wc_Sha256Update(&sha, p, (word32)len) == 0)
			wc_Sha256Final(&sha, out);
		wc_Sha256Free(&sha);
	}
}

void tls_idle(struct tls_conn *t)
{
	slim(t);
	tls_in_settle(t);
	if (t->out_len == 0)
		tls_out_release(t);
}

uint8_t *tls_in_space(struct tls_conn *t, size_t *avail)
{
	struct scratch *sc = &t->ctx->in;

	if (t->in != NULL && t->in_off == t->in_len) {
		if (sc->owner == t && t->in == sc->buf) {
			t->in_off = t->in_len = 0;
		} else {
			free(t->in);   /* an emptied private buffer: the scratch reads more at a time */
			t->in = NULL;
		}
	}
	if (t->in == NULL) {
		if (scratch_claim(sc, t) == 0) {
			t->in = sc->buf;
			t->in_cap = sc->cap;
		} else if ((t->in = malloc(TLS_PRIVATE_IN)) != NULL) {
			t->in_cap = TLS_PRIVATE_IN;
		} else {
			*avail = 0;
			return NULL;
		}
		t->in_off = t->in_len = 0;
	}
	if (t->in_off > 0 && t->in_len == t->in_cap) {
		memmove(t->in, t->in + t->in_off, t->in_len - t->in_off);
		t->in_len -= t->in_off;
		t->in_off = 0;
	}
	*avail = t->in_cap - t->in_len;
	return t->in + t->in_len;
}

void tls_in_commit(struct tls_conn *t, size_t n)
{
	t->in_len += n;
}

void tls_in_settle(struct tls_conn *t)
{
	struct scratch *sc = &t->ctx->in;
	size_t left = t->in_len - t->in_off;
	uint8_t *keep;

	if (t->in == NULL)
		return;
	if (t->in != sc->buf || sc->owner != t) {
		/* A private buffer: gone once read. */
		if (left == 0) {
			free(t->in);
			t->in = NULL;
			t->in_off = t->in_len = t->in_cap = 0;
		}
		return;
	}
	sc->owner = NULL;
	t->in = NULL;
	t->in_cap = 0;
	if (left > 0) {
		/* Read but not wanted yet (the owner stopped reading): kept, exactly, until it is. */
		keep = malloc(left);
		if (keep == NULL) {
			t->in_lost = 1;
			snprintf(t->err, sizeof(t->err), "out of memory keeping received data");
		} else {
			memcpy(keep, sc->buf + t->in_off, left);
			t->in = keep;
			t->in_cap = left;
			t->in_off = 0;
			t->in_len = left;
			return;
		}
	}
	t->in_off = t->in_len = 0;
}

size_t tls_out_peek(struct tls_conn *t, const uint8_t **data)
{
	*data = t->out;
	return t->out_len;
}

void tls_out_release(struct tls_conn *t)
{
	struct scratch *sc = &t->ctx->out;

	if (t->out == NULL)
		return;
	if (sc->owner == t && t->out == sc->buf)
		sc->owner = NULL;
	else
		free(t->out);
	t->out = NULL;
	t->out_len = t->out_cap = 0;
}

size_t tls_out_take(struct tls_conn *t, uint8_t **data)
{
	size_t n = t->out_len;

	*data = NULL;
	if (n == 0)
		return 0;
	*data = malloc(n);
	if (*data == NULL)
		return 0;
	memcpy(*data, t->out, n);
	tls_out_release(t);
	return n;
}

/* note_error - record why wolfSSL failed; returns TLS_ERROR, or TLS_WANT for the non-fatal cases. */
static enum tls_status note_error(struct tls_conn *t, int ret)
{
	int code = wolfSSL_get_error(t->ssl, ret);
	char buf[WOLFSSL_MAX_ERROR_SZ];

	if (code == WOLFSSL_ERROR_WANT_READ || code == WOLFSSL_ERROR_WANT_WRITE)
		return TLS_WANT;
	if (code == WOLFSSL_ERROR_ZERO_RETURN)
		return TLS_CLOSED;
	if (t->verify_refused)
		return TLS_ERROR;
	if (code == FATAL_ERROR)
		t->alert = 1;
	wolfSSL_ERR_error_string_n((unsigned long)(code < 0 ? -code : code), buf, sizeof(buf));
	snprintf(t->err, sizeof(t->err), "%s (wolfSSL error %d)", wolfSSL_ERR_reason_error_string(code), code);
	(void)buf;
	return TLS_ERROR;
}

enum tls_status tls_handshake(struct tls_conn *t)
{
	int ret = t->server ? wolfSSL_accept(t->ssl) : wolfSSL_connect(t->ssl);

	if (ret == WOLFSSL_SUCCESS && t->server) {
		t->server_done = 1;
		free_arrays(t);
		return TLS_OK;
	}
	if (ret == WOLFSSL_SUCCESS) {
		/*
		 * Defence in depth: never report success unless our verification ran and accepted, or the server
		 * resumed the session we offered (and only the caller can have chosen to offer it).
		 */
		t->resumed = t->offered && wolfSSL_session_reused(t->ssl) == 1;
		if (t->verify_refused || (!t->verify_called && !t->resumed)) {
			snprintf(t->err, sizeof(t->err), "handshake finished without certificate verification");
			return TLS_ERROR;
		}
		if (t->verify_called)
			t->resumed = 0;   /* a certificate was presented and verified: a full handshake */
		t->authenticated = 1;
		free_arrays(t);
		if (t->pending != NULL) {
			if (t->session_fn != NULL)
				t->session_fn(t->pending, t->pending_len, t->pending_lifetime, t->session_arg);
			wipe_free(t->pending, t->pending_len);
			t->pending = NULL;
		}
		return TLS_OK;
	}
	return note_error(t, ret);
}

size_t tls_read(struct tls_conn *t, uint8_t *buf, size_t len, enum tls_status *st)
{
	int ret = wolfSSL_read(t->ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);

	if (ret > 0) {
		*st = TLS_OK;
		return (size_t)ret;
	}
	*st = note_error(t, ret);
	return 0;
}

int tls_write(struct tls_conn *t, const uint8_t *data, size_t len)
{
	int ret;

	while (len > 0) {
		ret = wolfSSL_write(t->ssl, data, len > 16384 ? 16384 : (int)len);
		if (ret <= 0) {
			note_error(t, ret);
			return -1;
		}
		data += ret;
		len -= (size_t)ret;
	}
	return 0;
}

void tls_shutdown(struct tls_conn *t)
{
	wolfSSL_shutdown(t->ssl);
}

const char *tls_error(const struct tls_conn *t)
{
	return t->err[0] ? t->err : "TLS error";
}

int tls_alert_received(const struct tls_conn *t)
{
	return t->alert;
}

int tls_verify_refused(const struct tls_conn *t)
{
	return t->verify_refused;
}

const char *tls_alpn(struct tls_conn *t)
{
	char *name = NULL;
	unsigned short len = 0;

	if (wolfSSL_ALPN_GetProtocol(t->ssl, &name, &len) != WOLFSSL_SUCCESS || name == NULL ||
	    len >= sizeof(t->alpn))
		return "";
	memcpy(t->alpn, name, len);
	t->alpn[len] = '\0';
	return t->alpn;
}

const char *tls_version(const struct tls_conn *t)
{
	return wolfSSL_get_version(t->ssl);
}

const char *tls_cipher(const struct tls_conn *t)
{
	return wolfSSL_get_cipher_name(t->ssl);
}


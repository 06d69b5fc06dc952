/*
 * tls.h - TLS sessions over memory buffers (wolfSSL stays inside tls.c).
 *
 * The event loop owns the sockets: it puts received ciphertext into tls_in_space()/tls_in_commit(), and sends
 * what tls_out_take() returns. wolfSSL never touches a file descriptor, so sessions work the same on either
 * side of the proxy and in tests.
 */
#ifndef DANEPROXY_TLS_H
#define DANEPROXY_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dane_chain;
struct tls_ctx;
struct tls_conn;

enum tls_status {
	TLS_OK = 0,       /* done (handshake complete, data read or written) */
	TLS_WANT = 1,     /* needs more ciphertext from the peer */
	TLS_CLOSED = 2,   /* the peer sent close_notify */
	TLS_ERROR = -1,   /* fatal: tls_error() says why */
};

/*
 * tls_verify_fn - decide on the peer's chain (leaf first) during the handshake; return 1 to accept, 0 to abort the
 * handshake with a bad_certificate alert. Called once, before the client sends its Finished message.
 */
typedef int (*tls_verify_fn)(const struct dane_chain *chain, void *arg);

/* tls_client_ctx_new - a client context: TLS 1.2 and 1.3, X25519 first. NULL with err on failure. */
struct tls_ctx *tls_client_ctx_new(char *err, size_t errlen);
/* tls_server_ctx_new - a server context for terminating clients' TLS (CONNECT): TLS 1.2 and 1.3. */
struct tls_ctx *tls_server_ctx_new(char *err, size_t errlen);
/* tls_ctx_free - free a context once no session uses it. */
void tls_ctx_free(struct tls_ctx *ctx);

/*
 * tls_client_new - a client session. sni: the name to send (NULL for none, e.g. an IP literal); alpn: a
 * protocol to offer (NULL for none); verify: called with the presented chain (required: there is no
 * unverified client mode).
 */
struct tls_conn *tls_client_new(struct tls_ctx *ctx, const char *sni, const char *alpn, tls_verify_fn verify,
				void *verify_arg);
/*
 * tls_server_new - a server session presenting cert_der (DER, leaf) with key_der (DER EC private key);
 * alpn: the only protocol it will select (NULL for none).
 */
struct tls_conn *tls_server_new(struct tls_ctx *ctx, const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
				size_t key_len, const char *alpn);
/* tls_free - free a session. */
void tls_free(struct tls_conn *t);

/* tls_in_space - where received ciphertext goes; *avail bytes are free (0: consume plaintext first). */
uint8_t *tls_in_space(struct tls_conn *t, size_t *avail);
/* tls_in_commit - n bytes were written at tls_in_space(). */
void tls_in_commit(struct tls_conn *t, size_t n);
/* tls_out_take - move the pending ciphertext to the caller (malloc'd, caller frees); 0 when none. */
size_t tls_out_take(struct tls_conn *t, uint8_t **data);

/* tls_handshake - advance the handshake with the ciphertext in hand. */
enum tls_status tls_handshake(struct tls_conn *t);
/* tls_read - decrypt up to len bytes; returns bytes (> 0) or 0 with *st saying why none. */
size_t tls_read(struct tls_conn *t, uint8_t *buf, size_t len, enum tls_status *st);
/* tls_write - encrypt all of data into the output; -1 on a fatal error. */
int tls_write(struct tls_conn *t, const uint8_t *data, size_t len);
/* tls_shutdown - queue a close_notify alert. */
void tls_shutdown(struct tls_conn *t);

/* tls_error - the last fatal error in words (wolfSSL's reason, or the verify refusal). */
const char *tls_error(const struct tls_conn *t);
/* tls_alert_received - 1 when the failure was an alert from the peer. */
int tls_alert_received(const struct tls_conn *t);
/* tls_verify_refused - 1 when the handshake failed because verify returned 0. */
int tls_verify_refused(const struct tls_conn *t);
/* tls_version / tls_cipher - negotiated protocol version and cipher suite, after the handshake. */
const char *tls_version(const struct tls_conn *t);
/* tls_alpn - the application protocol negotiated by ALPN ("h2", "http/1.1"), "" when none, after the handshake. */
const char *tls_alpn(struct tls_conn *t);
const char *tls_cipher(const struct tls_conn *t);

#endif

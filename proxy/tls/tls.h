/*
 * tls.h - TLS sessions over memory buffers (wolfSSL stays inside tls.c).
 *
 * The event loop owns the sockets: it puts received ciphertext into tls_in_space()/tls_in_commit() (and ends
 * each read callback with tls_in_settle()), and sends what tls_out_peek() shows (then tls_out_release()).
 * wolfSSL never touches a file descriptor, so sessions work the same on either side of the proxy and in tests.
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
/* tls_ctx_max_tls12 - sessions of ctx offer TLS 1.2 at most (tests and measurements). */
void tls_ctx_max_tls12(struct tls_ctx *ctx);

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
/*
 * tls_idle - the session has nothing to do for now: give back what it only needs while bytes move, and, after
 * the handshake, the pages of zeros in wolfSSL's objects (they come back, zeroed, when written; stream.c calls
 * this once a session has stayed open a while, since short connections would only pay for it).
 */
void tls_idle(struct tls_conn *t);

/*
 * Resumption (client sessions). The TLS layer only moves sessions as opaque bytes; what they may be used for is
 * the caller's decision (proxy/origin binds each one to the DANE decision that authenticated it).
 *
 * tls_session_fn - a session the server gave this connection: sess (valid during the call) can be offered to
 * a later connection with tls_client_offer_session. lifetime_s: how long the server says it is good (0: unknown).
 */
typedef void (*tls_session_fn)(const uint8_t *sess, size_t len, uint32_t lifetime_s, void *arg);
/*
 * tls_client_on_session - hand every session of t to fn, only after its handshake finished authenticated
 * (the verify callback accepted the chain, or it resumed an offered session); never for a refused or failed one.
 * free_arg (optional) releases arg when t is freed.
 */
void tls_client_on_session(struct tls_conn *t, tls_session_fn fn, void *arg, void (*free_arg)(void *));
/*
 * tls_client_offer_session - offer sess for resumption (before the first tls_handshake). If the server accepts
 * it, the handshake ends without a certificate and without calling verify: only offer what was authenticated
 * under the same conditions. -1 when it cannot be used (malformed, expired): the handshake is a full one.
 */
int tls_client_offer_session(struct tls_conn *t, const uint8_t *sess, size_t len);
/* tls_resumed - 1 when the handshake resumed the offered session (no certificate, no verify). */
int tls_resumed(const struct tls_conn *t);
/* tls_sha256 - SHA-256 of p (the caller's digests, e.g. a session binding, without wolfSSL types). */
void tls_sha256(const void *p, size_t len, uint8_t out[32]);

/*
 * tls_in_space - where received ciphertext goes; *avail bytes are free (0: consume plaintext first). Lends t
 * its context's input scratch when it has nothing unread: the read cycle must end with tls_in_settle.
 */
uint8_t *tls_in_space(struct tls_conn *t, size_t *avail);
/* tls_in_commit - n bytes were written at tls_in_space(). */
void tls_in_commit(struct tls_conn *t, size_t n);
/*
 * tls_in_settle - the read callback is over (everything wanted was decrypted): the scratch goes back, and
 * ciphertext nobody asked for yet is kept in a buffer of t's own, of exactly its size.
 */
void tls_in_settle(struct tls_conn *t);
/*
 * tls_out_peek - the ciphertext waiting to be sent; *data is valid until tls_out_release or the next call that
 * may produce output. tls_out_release - the caller has sent or copied all of it.
 */
size_t tls_out_peek(struct tls_conn *t, const uint8_t **data);
void tls_out_release(struct tls_conn *t);
/* tls_out_take - the pending ciphertext as a malloc'd copy the caller frees; 0 when none. */
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

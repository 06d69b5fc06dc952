/*
 * stream.h - one TCP socket on the loop, optionally wrapped in TLS, seen as a plaintext byte stream.
 *
 * Both sides of every proxied connection are streams: the client's (plain, or TLS-terminated later) and the
 * origin's (TLS). A relay is two streams pointing at each other. A stream owns its uv_tcp_t and its TLS
 * session; stream_close() is the only way to end it and no callback arrives after it; the memory goes with
 * the handle's close callback.
 */
#ifndef DANEPROXY_STREAM_H
#define DANEPROXY_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

struct tls_conn;
struct stream;

enum stream_event {
	STREAM_CONNECTED,       /* stream_connect() succeeded */
	STREAM_HANDSHAKE_DONE,  /* TLS handshake (and verification) succeeded */
	STREAM_EOF,             /* the peer finished sending (FIN or close_notify) */
	STREAM_DRAINED,         /* everything written so far has been handed to the kernel (always from the loop,
				 * never from inside stream_write, also when the kernel took a write at once) */
	STREAM_ERROR,           /* connect, read, write or TLS failure: stream_error() says which */
};

/* stream_data_cb - plaintext arrived. The callback may stop reading; unread plaintext waits in the stream. */
typedef void (*stream_data_cb)(struct stream *s, const uint8_t *data, size_t len, void *arg);
typedef void (*stream_event_cb)(struct stream *s, enum stream_event ev, void *arg);

/* stream_new - a stream whose socket is not yet connected or accepted. */
struct stream *stream_new(uv_loop_t *loop, stream_data_cb on_data, stream_event_cb on_event, void *arg);
/* stream_set_callbacks - hand the stream to a new owner (e.g. the connector to the relay). */
void stream_set_callbacks(struct stream *s, stream_data_cb on_data, stream_event_cb on_event, void *arg);
/* stream_accept - accept a pending connection of listener into s. */
int stream_accept(struct stream *s, uv_stream_t *listener);
/* stream_connect - start connecting; STREAM_CONNECTED or STREAM_ERROR follows. */
int stream_connect(struct stream *s, const struct sockaddr *addr);
/*
 * stream_start_tls - wrap the connected socket in t (owned by the stream from now on) and start the handshake;
 * pre: ciphertext already read from the socket (a server's ClientHello, any size), or NULL.
 */
int stream_start_tls(struct stream *s, struct tls_conn *t, const uint8_t *pre, size_t pre_len);
/* stream_read_start / stream_read_stop - flow control of incoming plaintext. */
int stream_read_start(struct stream *s);
void stream_read_stop(struct stream *s);
/* stream_set_read_limit - read at most n bytes at a time (plaintext streams); 0 pauses reading until raised. */
void stream_set_read_limit(struct stream *s, size_t n);
/*
 * stream_write - send plaintext: to the kernel at once when nothing is queued, what it does not take copied into
 * the queue (data need not outlive the call); -1 when the stream is broken or closed.
 */
int stream_write(struct stream *s, const uint8_t *data, size_t len);
/* stream_write_queued - bytes accepted by stream_write() and not yet handed to the kernel. */
size_t stream_write_queued(const struct stream *s);
/* stream_shutdown - no more writes: TLS close_notify, then TCP FIN once the queue drains. */
void stream_shutdown(struct stream *s);
/* stream_close - end the stream now; no callback after this returns. NULL is fine. */
void stream_close(struct stream *s);

/* stream_eof - the peer has finished sending (STREAM_EOF was raised). */
int stream_eof(const struct stream *s);
/* stream_error - why STREAM_ERROR was raised. */
const char *stream_error(const struct stream *s);
/* stream_tls - the TLS session, or NULL. */
struct tls_conn *stream_tls(struct stream *s);
/* stream_peer - the peer address in text ("[::1]:443", "127.0.0.1:443"). */
void stream_peer(const struct stream *s, char *buf, size_t len);
/* stream_peer_addr - the peer's socket address; -1 when unknown. */
int stream_peer_addr(const struct stream *s, struct sockaddr_storage *ss);

#endif

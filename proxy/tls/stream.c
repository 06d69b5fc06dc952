/*
 * stream.c - a TCP socket on the libuv loop, optionally wrapped in TLS, delivering plaintext.
 *
 * States are what the stream waits for: STREAM_AWAIT_CONNECT, STREAM_AWAIT_HANDSHAKE, STREAM_OPEN. Reading is
 * flow-controlled by the owner (stream_read_start/stop); in TLS mode ciphertext that arrived while reading was
 * stopped stays in the session and is decrypted when reading resumes.
 *
 * Copies: a TLS read lands in the session's (lent) input scratch, up to eight records at a time, and is decrypted
 * in batches of up to STREAM_DECRYPT_BATCH bytes of plaintext on the stack, handed to the owner in one call.
 * Writes go to the kernel at once when nothing is queued (uv_try_write), from the caller's buffer or from the
 * session's output scratch; only what the kernel does not take is copied into the write queue. The owner still
 * hears STREAM_DRAINED after every write, from the loop, as when every write went through the queue.
 */
#include "stream.h"
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stream_state { STREAM_IDLE, STREAM_AWAIT_CONNECT, STREAM_AWAIT_HANDSHAKE, STREAM_OPEN };

struct stream {
	uv_tcp_t tcp;
	uv_timer_t timer;     /* STREAM_DRAINED for writes the kernel took at once; slimming an idle session */
	int open_handles;
	uv_connect_t connect_req;
	uv_shutdown_t shutdown_req;
	stream_data_cb on_data;
	stream_event_cb on_event;
	void *arg;
	struct tls_conn *tls;
	enum stream_state state;
	int want_read;        /* the owner wants plaintext */
	int socket_reading;       /* uv_read_start is in effect */
	int dispatching;      /* inside deliver_plaintext: do not recurse */
	int eof;              /* the peer finished sending */
	int shutdown_pending; /* stream_shutdown called: FIN once writes drain */
	int shutdown_sent;
	int closing;
	int failed;
	int drain_notice;     /* a write completed at once: STREAM_DRAINED is due */
	uint64_t slim_at;     /* uv_now() when the TLS session is slimmed (tls_idle), 0: not due */
	size_t queued;
	size_t read_limit;    /* plaintext mode: the owner's room for the next read */
	const char *err;      /* why STREAM_ERROR: a constant, libuv's text, or the TLS session's (it lives as long) */
	uint8_t *read_buf;    /* plaintext mode: the buffer handed to libuv for the read in progress */
};

/* Plaintext reads use a buffer for the duration of one read only: an idle connection holds no read buffer
 * (RSS per idle connection is one of the benchmark's figures). */
#define STREAM_READ_MAX 65536
#define STREAM_DECRYPT_BATCH 131072   /* plaintext handed to the owner per call (on the stack): 8 records */
/*
 * A TLS session still open this long after its handshake gives back what it only needed then (tls_idle: pages of
 * zeros of wolfSSL's session objects). Not at once: a page returned is faulted in again when the memory is reused,
 * which short connections would pay for with nothing saved.
 */
#define STREAM_SLIM_DELAY_MS 500

struct write_req {
	uv_write_t req;
	struct stream *s;
	uint8_t *buf;
	size_t len;
};

static void socket_read_on(struct stream *s);

static void emit(struct stream *s, enum stream_event ev)
{
	if (!s->closing && s->on_event != NULL)
		s->on_event(s, ev, s->arg);
}

/* fail - record the first error and tell the owner. */
static void fail(struct stream *s, int uv_err, const char *msg)
{
	if (s->closing || s->failed)
		return;
	s->failed = 1;
	if (msg != NULL)
		s->err = msg;
	else
		s->err = uv_strerror(uv_err);
	emit(s, STREAM_ERROR);
}

struct stream *stream_new(uv_loop_t *loop, stream_data_cb on_data, stream_event_cb on_event, void *arg)
{
	struct stream *s = malloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	if (uv_tcp_init(loop, &s->tcp) < 0) {
		free(s);
		return NULL;
	}
	uv_timer_init(loop, &s->timer);
	s->open_handles = 2;
	s->tcp.data = s;
	s->timer.data = s;
	s->on_data = on_data;
	s->on_event = on_event;
	s->arg = arg;
	s->read_limit = STREAM_READ_MAX;
	return s;
}

void stream_set_read_limit(struct stream *s, size_t n)
{
	s->read_limit = n < STREAM_READ_MAX ? n : STREAM_READ_MAX;
	if (n > 0 && s->want_read && !s->socket_reading && !s->closing && !s->failed)
		socket_read_on(s);
}

void stream_set_callbacks(struct stream *s, stream_data_cb on_data, stream_event_cb on_event, void *arg)
{
	s->on_data = on_data;
	s->on_event = on_event;
	s->arg = arg;
}

static void on_closed(uv_handle_t *h)
{
	struct stream *s = h->data;

	if (--s->open_handles > 0)
		return;
	tls_free(s->tls);
	free(s);
}

void stream_close(struct stream *s)
{
	if (s == NULL || s->closing)
		return;
	s->closing = 1;
	uv_close((uv_handle_t *)&s->timer, on_closed);
	uv_close((uv_handle_t *)&s->tcp, on_closed);
}

/* ---------- writing ---------- */

static void maybe_send_fin(struct stream *s);

static void on_written(uv_write_t *req, int status)
{
	struct write_req *w = req->data;
	struct stream *s = w->s;

	s->queued -= w->len;
	free(w->buf);
	free(w);
	if (s->closing)
		return;
	if (status < 0) {
		fail(s, status, NULL);
		return;
	}
	if (s->queued == 0) {
		s->drain_notice = 0;
		maybe_send_fin(s);
		emit(s, STREAM_DRAINED);
	}
}

static void on_timer(uv_timer_t *h);

/* arm - the timer for whatever is due first: a STREAM_DRAINED notice (now) or slimming the session. */
static void arm(struct stream *s)
{
	uint64_t now = uv_now(s->timer.loop);

	if (s->closing)
		return;
	if (s->drain_notice)
		uv_timer_start(&s->timer, on_timer, 0, 0);
	else if (s->slim_at != 0)
		uv_timer_start(&s->timer, on_timer, s->slim_at > now ? s->slim_at - now : 0, 0);
}

/*
 * on_timer - writes the kernel took at once are out: the same STREAM_DRAINED a queued write gets; and a session
 * that has stayed open since its handshake is slimmed.
 */
static void on_timer(uv_timer_t *h)
{
	struct stream *s = h->data;

	if (s->closing)
		return;
	if (s->slim_at != 0 && uv_now(h->loop) >= s->slim_at) {
		s->slim_at = 0;
		if (s->tls != NULL)
			tls_idle(s->tls);
	}
	if (s->drain_notice && s->queued == 0) {   /* a queued write came after: its completion says it */
		s->drain_notice = 0;
		maybe_send_fin(s);
		emit(s, STREAM_DRAINED);
	}
	s->drain_notice = 0;
	arm(s);
}

/* queue_copy - len bytes behind what is queued, copied (the caller's buffer does not outlive the call). */
static int queue_copy(struct stream *s, const uint8_t *data, size_t len)
{
	struct write_req *w = malloc(sizeof(*w));
	uv_buf_t b;
	int r;

	if (w == NULL || (w->buf = malloc(len)) == NULL) {
		free(w);
		fail(s, UV_ENOMEM, "out of memory");
		return -1;
	}
	memcpy(w->buf, data, len);
	w->s = s;
	w->len = len;
	w->req.data = w;
	b = uv_buf_init((char *)w->buf, (unsigned)len);
	r = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
	if (r < 0) {
		free(w->buf);
		free(w);
		fail(s, r, NULL);
		return -1;
	}
	s->queued += len;
	return 0;
}

/* send_bytes - as much as the kernel takes now, the rest copied into the write queue. */
static int send_bytes(struct stream *s, const uint8_t *data, size_t len)
{
	uv_buf_t b;
	int r;

	if (len == 0)
		return 0;
	if (s->queued == 0 && len <= 0x7fffffff) {
		b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);
		r = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
		if (r == (int)len) {
			if (!s->drain_notice) {
				s->drain_notice = 1;
				arm(s);
			}
			return 0;
		}
		if (r > 0) {
			data += r;
			len -= (size_t)r;
		}
		/* Other errors: the queued write meets them too, and reports them from the loop as before. */
	}
	return queue_copy(s, data, len);
}

/* flush_tls - send whatever ciphertext the session produced. */
static int flush_tls(struct stream *s)
{
	const uint8_t *data;
	size_t n = tls_out_peek(s->tls, &data);
	int r = 0;

	if (n == 0)
		return 0;
	r = send_bytes(s, data, n);
	tls_out_release(s->tls);
	return r;
}

int stream_write(struct stream *s, const uint8_t *data, size_t len)
{
	if (s->closing || s->failed || s->shutdown_pending)
		return -1;
	if (len == 0)
		return 0;
	if (s->tls != NULL) {
		if (tls_write(s->tls, data, len) < 0) {
			flush_tls(s);
			fail(s, 0, tls_error(s->tls));
			return -1;
		}
		return flush_tls(s);
	}
	return send_bytes(s, data, len);
}

size_t stream_write_queued(const struct stream *s)
{
	return s->queued;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct stream *s = req->data;

	if (!s->closing && status < 0 && status != UV_ECANCELED && status != UV_ENOTCONN)
		fail(s, status, NULL);
}

/* maybe_send_fin - after stream_shutdown, send FIN once every queued write is out. */
static void maybe_send_fin(struct stream *s)
{
	if (!s->shutdown_pending || s->shutdown_sent || s->queued > 0 || s->closing)
		return;
	s->shutdown_sent = 1;
	s->shutdown_req.data = s;
	if (uv_shutdown(&s->shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown) < 0)
		s->shutdown_sent = 1;   /* already disconnected: nothing to half-close */
}

void stream_shutdown(struct stream *s)
{
	if (s->closing || s->shutdown_pending)
		return;
	if (s->tls != NULL && s->state == STREAM_OPEN) {
		tls_shutdown(s->tls);
		flush_tls(s);
	}
	s->shutdown_pending = 1;
	maybe_send_fin(s);
}

/* ---------- reading ---------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct stream *s = h->data;
	size_t avail;
	uint8_t *space;

	(void)suggested;
	if (s->tls != NULL) {
		space = tls_in_space(s->tls, &avail);
		*buf = uv_buf_init((char *)space, (unsigned)avail);
	} else {
		/* A zero-length buffer makes libuv report UV_ENOBUFS: reading pauses until the owner has room. */
		s->read_buf = s->read_limit > 0 ? malloc(s->read_limit) : NULL;
		*buf = uv_buf_init((char *)s->read_buf, s->read_buf != NULL ? (unsigned)s->read_limit : 0);
	}
}

static void on_read(uv_stream_t *u, ssize_t nread, const uv_buf_t *buf);

static void socket_read_on(struct stream *s)
{
	int r;

	if (s->socket_reading || s->closing || s->eof)
		return;
	r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	if (r < 0) {
		fail(s, r, NULL);
		return;
	}
	s->socket_reading = 1;
}

static void socket_read_off(struct stream *s)
{
	if (!s->socket_reading)
		return;
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->socket_reading = 0;
}

/*
 * deliver_plaintext - decrypt and hand over plaintext while the owner wants it, in batches of several records:
 * one call of the owner (and one write of its, for a relay) per batch instead of one per record.
 */
static void deliver_plaintext(struct stream *s)
{
	uint8_t plain[STREAM_DECRYPT_BATCH];
	enum tls_status st = TLS_OK;
	size_t n, filled;

	if (s->dispatching)
		return;
	s->dispatching = 1;
	while (s->want_read && !s->closing && !s->failed && !s->eof) {
		filled = 0;
		do {
			n = tls_read(s->tls, plain + filled, sizeof(plain) - filled, &st);
			flush_tls(s);   /* TLS 1.3 key updates and alerts */
			filled += n;
		} while (n > 0 && filled < sizeof(plain) && !s->failed);
		if (filled > 0)
			s->on_data(s, plain, filled, s->arg);
		if (n > 0)
			continue;   /* the batch is full: there may be more */
		/* Nothing more now; why is acted on only while the owner still reads (it is said again later). */
		if (!s->want_read || s->closing || s->failed)
			break;
		if (st == TLS_CLOSED) {
			s->eof = 1;
			socket_read_off(s);
			emit(s, STREAM_EOF);
		} else if (st == TLS_ERROR) {
			fail(s, 0, tls_error(s->tls));
		}
		break;
	}
	s->dispatching = 0;
}

/* advance_handshake - run the handshake with the ciphertext in hand. */
static void advance_handshake(struct stream *s)
{
	enum tls_status st = tls_handshake(s->tls);

	flush_tls(s);
	if (st == TLS_OK) {
		s->state = STREAM_OPEN;
		s->slim_at = uv_now(s->timer.loop) + STREAM_SLIM_DELAY_MS;
		arm(s);
		if (!s->want_read)
			socket_read_off(s);
		emit(s, STREAM_HANDSHAKE_DONE);
		if (!s->closing && s->want_read)
			deliver_plaintext(s);
	} else if (st != TLS_WANT) {
		fail(s, 0, tls_error(s->tls));
	}
}

static void on_read_data(struct stream *s, ssize_t nread, uint8_t *plain_buf);

/* on_read - libuv's callback: the plaintext read buffer lives exactly as long as this call. */
static void on_read(uv_stream_t *u, ssize_t nread, const uv_buf_t *buf)
{
	struct stream *s = u->data;
	uint8_t *owned = NULL;

	if (s->read_buf != NULL && (uint8_t *)buf->base == s->read_buf) {
		owned = s->read_buf;
		s->read_buf = NULL;
	}
	on_read_data(s, nread, owned);
	free(owned);
	if (s->tls != NULL)
		tls_in_settle(s->tls);   /* what was not wanted yet moves out of the shared scratch */
}

static void on_read_data(struct stream *s, ssize_t nread, uint8_t *plain_buf)
{
	if (s->closing)
		return;
	if (nread == UV_ENOBUFS) {
		/* The TLS input buffer is full of ciphertext the owner has not asked to decrypt yet, or the owner of a
		 * plaintext stream has no room: stream_read_start / stream_set_read_limit resume. */
		socket_read_off(s);
		return;
	}
	if (nread == UV_EOF) {
		socket_read_off(s);
		if (s->state == STREAM_AWAIT_HANDSHAKE) {
			fail(s, UV_EOF, "connection closed during the TLS handshake");
			return;
		}
		s->eof = 1;
		emit(s, STREAM_EOF);
		return;
	}
	if (nread < 0) {
		fail(s, (int)nread, NULL);
		return;
	}
	if (nread == 0)
		return;
	if (s->tls == NULL) {
		if (plain_buf == NULL)
			return;   /* cannot happen: a plaintext read always comes with its own buffer */
		s->on_data(s, plain_buf, (size_t)nread, s->arg);
		return;
	}
	tls_in_commit(s->tls, (size_t)nread);
	if (s->state == STREAM_AWAIT_HANDSHAKE)
		advance_handshake(s);
	else
		deliver_plaintext(s);
}

int stream_read_start(struct stream *s)
{
	if (s->closing || s->failed)
		return -1;
	s->want_read = 1;
	socket_read_on(s);
	if (s->tls != NULL && s->state == STREAM_OPEN)
		deliver_plaintext(s);
	return s->failed ? -1 : 0;
}

void stream_read_stop(struct stream *s)
{
	s->want_read = 0;
	if (s->state != STREAM_AWAIT_HANDSHAKE)
		socket_read_off(s);
}

/* ---------- establishing ---------- */

static void on_connect(uv_connect_t *req, int status)
{
	struct stream *s = req->data;

	if (s->closing)
		return;
	if (status < 0) {
		fail(s, status, NULL);
		return;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	s->state = STREAM_IDLE;
	emit(s, STREAM_CONNECTED);
}

int stream_connect(struct stream *s, const struct sockaddr *addr)
{
	int r;

	s->connect_req.data = s;
	r = uv_tcp_connect(&s->connect_req, &s->tcp, addr, on_connect);
	if (r < 0) {
		s->err = uv_strerror(r);
		return -1;
	}
	s->state = STREAM_AWAIT_CONNECT;
	return 0;
}

int stream_accept(struct stream *s, uv_stream_t *listener)
{
	int r = uv_accept(listener, (uv_stream_t *)&s->tcp);

	if (r < 0) {
		s->err = uv_strerror(r);
		return -1;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	s->state = STREAM_OPEN;
	return 0;
}

int stream_start_tls(struct stream *s, struct tls_conn *t, const uint8_t *pre, size_t pre_len)
{
	uint8_t *space;
	size_t avail, n;
	int fed = pre_len > 0;

	s->tls = t;
	s->state = STREAM_AWAIT_HANDSHAKE;
	/* Ciphertext read before the session existed (a ClientHello): in as many pieces as the input takes. */
	while (pre_len > 0 && !s->failed && !s->closing && s->state == STREAM_AWAIT_HANDSHAKE) {
		space = tls_in_space(t, &avail);
		if (avail == 0) {
			fail(s, 0, "TLS input buffer full during the handshake");
			return -1;
		}
		n = pre_len < avail ? pre_len : avail;
		memcpy(space, pre, n);
		tls_in_commit(t, n);
		pre += n;
		pre_len -= n;
		advance_handshake(s);
	}
	tls_in_settle(t);
	if (s->failed || s->closing)
		return -1;
	if (s->state == STREAM_AWAIT_HANDSHAKE)
		socket_read_on(s);
	if (s->failed)
		return -1;
	if (!fed)
		advance_handshake(s);   /* a client session: send the ClientHello */
	return s->failed ? -1 : 0;
}

/* ---------- accessors ---------- */

int stream_eof(const struct stream *s)
{
	return s->eof;
}

const char *stream_error(const struct stream *s)
{
	return s->err != NULL ? s->err : "no error";
}

struct tls_conn *stream_tls(struct stream *s)
{
	return s->tls;
}

void stream_peer(const struct stream *s, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];

	buf[0] = '\0';
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &sl) < 0)
		return;
	if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)&ss)->sin6_addr)) {
		/* An IPv4 client of a dual-stack listener: shown as the IPv4 address it is. */
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%u", addr, ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, ntohs(a->sin_port));
	}
}

int stream_peer_addr(const struct stream *s, struct sockaddr_storage *ss)
{
	int sl = sizeof(*ss);

	return uv_tcp_getpeername(&s->tcp, (struct sockaddr *)ss, &sl) < 0 ? -1 : 0;
}


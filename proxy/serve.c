/*
 * serve.c - the proxy daemon: listeners on the libuv loop, signals, shutdown.
 *
 * This foundation version listens, accepts and answers every request with 501 and an RFC 9209
 * Proxy-Status header naming what is missing, so that clients get a clear answer instead of a hang.
 * Request forwarding arrives with the proxy issue; the lifecycle rules (one owner, free in the last
 * close callback) are already the ones it will use.
 */
#include "commands.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#define SERVE_DEFAULT_LISTEN "127.0.0.1:8080"
#define SERVE_MAX_HEAD 16384

struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	unsigned open_conns;
};

enum client_state { CLIENT_EXPECT_REQUEST, CLIENT_WRITING_ANSWER, CLIENT_CLOSING };

struct client {
	uv_tcp_t tcp;
	uv_write_t write;
	struct server *server;
	enum client_state state;
	size_t head_len;
	char head[SERVE_MAX_HEAD];
};

static const char answer_501[] =
	"HTTP/1.1 501 Not Implemented\r\n"
	"Proxy-Status: daneproxy; error=proxy_internal_error; details=\"request forwarding is not built yet\"\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 62\r\n"
	"Connection: close\r\n"
	"\r\n"
	"daneproxy: this build does not forward requests yet (501).\r\n\r\n";

static const char answer_431[] =
	"HTTP/1.1 431 Request Header Fields Too Large\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Length: 39\r\n"
	"Connection: close\r\n"
	"\r\n"
	"daneproxy: request head over 16 KiB.\r\n";

static void serve_usage(FILE *out)
{
	fprintf(out, "usage: daneproxy [serve] [--listen ADDR:PORT]\n\n"
		     "Runs the proxy. Default listener: %s (loopback only).\n",
		SERVE_DEFAULT_LISTEN);
}

static void client_closed(uv_handle_t *h)
{
	struct client *c = h->data;

	c->server->open_conns--;
	free(c);
}

/* client_close - the one way a client connection ends. */
static void client_close(struct client *c)
{
	if (c->state == CLIENT_CLOSING)
		return;
	c->state = CLIENT_CLOSING;
	uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void client_wrote(uv_write_t *w, int status)
{
	(void)status;
	client_close(w->data);
}

static void client_answer(struct client *c, const char *answer, size_t len)
{
	uv_buf_t buf = uv_buf_init((char *)(uintptr_t)answer, (unsigned)len);

	uv_read_stop((uv_stream_t *)&c->tcp);
	c->state = CLIENT_WRITING_ANSWER;
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &buf, 1, client_wrote) < 0)
		client_close(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct client *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->head + c->head_len, (unsigned)(sizeof(c->head) - c->head_len));
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct client *c = s->data;
	size_t from;

	(void)buf;
	if (nread < 0) {
		client_close(c);
		return;
	}
	if (c->state != CLIENT_EXPECT_REQUEST)
		return;
	from = c->head_len > 3 ? c->head_len - 3 : 0;
	c->head_len += (size_t)nread;
	for (; from + 4 <= c->head_len; from++) {
		if (memcmp(c->head + from, "\r\n\r\n", 4) == 0) {
			client_answer(c, answer_501, sizeof(answer_501) - 1);
			return;
		}
	}
	if (c->head_len == sizeof(c->head))
		client_answer(c, answer_431, sizeof(answer_431) - 1);
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	struct client *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->server = srv;
	uv_tcp_init(srv->loop, &c->tcp);
	c->tcp.data = c;
	srv->open_conns++;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read) < 0)
		client_close(c);
}

/* close_walk - at shutdown, end every client through its owner (handles of the server itself close directly). */
static void close_walk(uv_handle_t *h, void *arg)
{
	if (h->type == UV_TCP && h->data != arg)
		client_close(h->data);
	else if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	fprintf(stderr, "daneproxy: signal %d, shutting down\n", signum);
	uv_close((uv_handle_t *)&srv->listener, NULL);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_walk(srv->loop, close_walk, srv);
}

/* parse_listen - "ADDR:PORT" or "[V6]:PORT" into a sockaddr; loopback only in this build. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[64];
	const char *colon, *h = spec;
	size_t hl;
	long port = 0;
	const char *p;

	colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || colon[1] == '\0') {
		snprintf(err, errlen, "\"%s\" is not ADDR:PORT", spec);
		return -1;
	}
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535) {
			snprintf(err, errlen, "\"%s\": bad port", spec);
			return -1;
		}
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "\"%s\": port must be 1-65535", spec);
		return -1;
	}
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && colon[-1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "\"%s\": address too long", spec);
		return -1;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) {
		if ((ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) != 127) {
			snprintf(err, errlen, "\"%s\": only loopback listeners are allowed in this build", spec);
			return -1;
		}
		return 0;
	}
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) {
		if (!IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr)) {
			snprintf(err, errlen, "\"%s\": only loopback listeners are allowed in this build", spec);
			return -1;
		}
		return 0;
	}
	snprintf(err, errlen, "\"%s\": not an IP address", spec);
	return -1;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"listen", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct server srv;
	struct sockaddr_storage ss;
	const char *listen_spec = SERVE_DEFAULT_LISTEN;
	char err[256];
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': listen_spec = optarg; break;
		case 'h': serve_usage(stdout); return 0;
		default: serve_usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daneproxy: unexpected argument \"%s\"\n", argv[optind]);
		serve_usage(stderr);
		return 2;
	}
	if (parse_listen(listen_spec, &ss, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy: --listen %s\n", err);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&srv, 0, sizeof(srv));
	srv.loop = uv_default_loop();
	uv_tcp_init(srv.loop, &srv.listener);
	srv.listener.data = &srv;
	if ((r = uv_tcp_bind(&srv.listener, (struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&srv.listener, 511, on_connection)) < 0) {
		fprintf(stderr, "daneproxy: cannot listen on %s: %s\n", listen_spec, uv_strerror(r));
		uv_close((uv_handle_t *)&srv.listener, NULL);
		uv_run(srv.loop, UV_RUN_DEFAULT);
		uv_loop_close(srv.loop);
		return 1;
	}
	uv_signal_init(srv.loop, &srv.sigint);
	uv_signal_init(srv.loop, &srv.sigterm);
	srv.sigint.data = srv.sigterm.data = &srv;
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	printf("daneproxy: ready, HTTP proxy listening on %s\n", listen_spec);
	fflush(stdout);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(srv.loop);
	return 0;
}

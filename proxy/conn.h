/*
 * conn.h - one client connection and everything it owns (internal to the proxy daemon).
 *
 * A connection is accepted on a listener (the HTTP proxy listener or a port-mapped route), owns its client
 * stream, at most one upstream being opened and one origin stream, and one idle timer. conn_close() is the
 * only way it ends: it cancels the upstream, closes both streams, and the timer's close callback writes the
 * connection's one log line and frees it.
 */
#ifndef DANEPROXY_CONN_H
#define DANEPROXY_CONN_H

#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "http_req.h"
#include "http_resp.h"
#include "policy.h"
#include "upstream.h"

struct server;
struct stream;
struct listener;

enum conn_kind { CONN_HTTP, CONN_ROUTE };
enum { CONN_TUNNEL_TERMINATED = 1, CONN_TUNNEL_PASSTHROUGH = 2 };

/* What the connection waits for. */
enum conn_state {
	CONN_EXPECT_REQUEST,   /* HTTP: the next request head from the client */
	CONN_AWAIT_UPSTREAM,   /* DNS, connect, handshake and verification of the origin */
	CONN_FORWARDING,       /* HTTP: request (head and body) going out, response coming back */
	CONN_AWAIT_CLIENT_TLS, /* CONNECT: 200 sent, the client's ClientHello and handshake */
	CONN_RELAYING,         /* routes (and upgraded HTTP): bytes both ways */
	CONN_CLOSING,
};

#define CONN_CLIENT_BUF (32 * 1024)
#define CONN_HIGH_WATER (256 * 1024)

struct conn {
	struct server *srv;
	const struct listener *listener;
	struct conn *prev, *next;
	uint64_t id;
	enum conn_kind kind;
	enum conn_state state;
	struct stream *client;
	struct stream *origin;
	struct upstream *up;
	uv_timer_t idle;
	char client_addr[64];
	char host[RESOLVER_MAX_NAME];
	uint16_t port;
	enum policy_mode policy;
	struct upstream_report rep;
	int have_rep;
	const char *close_reason;
	const char *refusal;       /* RFC 9209 token of a refusal the proxy answered itself (400, 403, ...) */
	char close_detail[200];
	int client_eof;
	int origin_eof;
	uint64_t bytes_up;         /* plaintext from client to origin */
	uint64_t bytes_down;       /* plaintext from origin to client */
	uint64_t t_start_ns;
	unsigned requests;
	int status;                /* HTTP status sent to the client for the last request (0 if none) */

	/* HTTP ingress (http.c); io is allocated for HTTP connections only */
	struct http_io *io;
	size_t buf_len;            /* client bytes in buf not yet consumed by the request parser */
	uint64_t head_started_ms;  /* loop time of the head's first byte, for header_timeout */
	uint64_t last_activity_ms;
	int resp_started;          /* some of the response reached the client */
	int client_write_failed;   /* a write of the response to the client failed: close */
	int resp_done;             /* the final response is complete */
	int response_final;        /* a final (>= 200, or 101) response head was seen */
	int upgraded;              /* 101 Switching Protocols: raw relay from now on */
	int close_after;           /* close once the client's queue drains */
	int tunnel;                /* CONNECT: 0 none, CONN_TUNNEL_TERMINATED or CONN_TUNNEL_PASSTHROUGH */
	int leaf;                  /* terminated tunnels: 1 leaf from the cache, 2 freshly minted */
	uint64_t client_tls_started_ms;   /* CONNECT: when the client's handshake began, for handshake_timeout */
};

/* The HTTP listener's per-connection buffers, kept out of struct conn so that routes stay small. */
struct http_io {
	struct http_req req;
	struct http_target target;
	struct http_resp resp;
	uint8_t buf[CONN_CLIENT_BUF];
};

/* conn_head_bytes - bytes of a request head received so far (0 for routes). */
static inline size_t conn_head_bytes(const struct conn *c)
{
	return c->io != NULL ? c->io->req.head_bytes : 0;
}

/* conn_close - end the connection; reason is a short constant, detail optional. */
void conn_close(struct conn *c, const char *reason, const char *detail);
/* conn_touch - data moved: push the idle deadline back. */
void conn_touch(struct conn *c);
/* conn_take_report - remember the upstream report for the log line. */
void conn_take_report(struct conn *c, const struct upstream_report *rep);
/* conn_relay - both streams relay raw bytes from now on (routes, HTTP after 101). */
void conn_relay(struct conn *c);

/* http_conn_start - begin reading requests on an accepted HTTP proxy connection. */
void http_conn_start(struct conn *c);
/* route_conn_start - open the route's upstream for an accepted connection. */
void route_conn_start(struct conn *c);

#endif

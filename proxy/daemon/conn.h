/*
 * conn.h - one client connection: its one owner (conn.c) and the drivers that speak its protocol
 * (internal to the daemon).
 *
 * conn_new() creates a connection over an injected environment (struct conn_env: loop, limits, policies, the local
 * CA, TLS contexts, log, a "gone" hook), so this file and the drivers include only what lies below the daemon.
 * A driver (http.c, connect.c, route.c, smtp.c) owns the connection's protocol and keeps its own state enum named after
 * what it awaits; conn.c owns what every connection has: the client and origin streams, the timer, the relay of
 * raw bytes, the refusal answered over HTTP with a lingering close, and the one way out, conn_close(), whose last
 * handle close writes the connection's one log line, calls the gone hook and frees it.
 */
#ifndef DANEPROXY_CONN_H
#define DANEPROXY_CONN_H

#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "config.h"
#include "policy.h"
#include "upstream.h"

struct ca;
struct metrics_slot;
struct mint_cache;
struct stream;
struct tls_ctx;
struct conn;

/* What the daemon gives every connection; owned by the server, outlives every connection. */
struct conn_env {
	uv_loop_t *loop;
	const struct config *cfg;                 /* limits, timeouts, ports, passthrough names */
	const struct upstream_env *upstream;      /* how origins are opened and verified */
	const struct policy_rule *rules;          /* destination policies */
	size_t n_rules;
	enum policy_mode default_policy;
	struct ca *ca;                            /* CONNECT termination: the local CA, */
	struct mint_cache *mint;                  /* the minted leaves, */
	struct tls_ctx *tls_server;               /* and the server side of clients' TLS (NULL: no HTTP listener) */
	FILE *log;                                /* one JSON line per connection; NULL: none */
	struct metrics_slot *metrics;             /* this worker's counters (metrics.h); NULL: none */
	void (*gone)(struct conn *c, void *arg);  /* the connection is finished and about to be freed */
	void *gone_arg;
	/* maintained by conn.c */
	struct conn *conns;                       /* every open connection */
	unsigned n_conns;
	uint64_t next_id;
	uint64_t released;                        /* connections and kept origins freed so far (memory to return) */
	int stopping;                             /* shutting down: no keep-alive, responses say Connection: close */
};

/* What a connection is accepted on. */
struct smtp_out_env;
struct conn_listener {
	const char *kind;                         /* "http", "route" or "smtp": the log line's listener */
	const struct config_route *route;         /* routes only */
	enum policy_mode route_policy;
	const struct config_smtp *smtp;           /* SMTP smarthosts only: */
	const struct smtp_out_env *smtp_env;      /*   how MX sessions are opened */
	const char *smtp_helo;                    /*   the name it greets with */
};

/* A driver: the protocol a connection speaks now (an HTTP connection becomes a CONNECT tunnel). */
struct conn_driver {
	const char *name;
	int (*idle)(const struct conn *c);        /* nothing in flight: may be closed at shutdown without loss */
	void (*release)(struct conn *c);          /* free what the driver allocated; called once, at close */
	/* awaiting_origin - optional: the client waits on the origin, whose own timeouts bound that wait (an MX may
	 * take ten minutes to accept a message): idle_timeout does not close the connection meanwhile. */
	int (*awaiting_origin)(const struct conn *c);
};

/* Where the connection is, as far as conn.c is concerned; drivers keep finer states of their own. */
enum conn_phase {
	CONN_DRIVEN,      /* a driver owns it (its state says what it awaits) */
	CONN_RELAYING,    /* raw bytes both ways: routes, tunnels, upgraded HTTP */
	CONN_DRAINING,    /* an error answer is on its way: the client's bytes are read and dropped until it is out */
	CONN_CLOSING,
};

/* One direction of a relay: its source stream and whether that source has finished. */
struct half {
	struct stream *s;
	int eof;
};

#define CONN_HIGH_WATER (256 * 1024)   /* write-queue size above which the other side stops reading */

/* The drivers' own states, kept small: large buffers are allocated only while needed. */
enum http_wait {
	HTTP_AWAIT_HEAD,      /* the next request head (an idle keep-alive connection holds no buffers) */
	HTTP_AWAIT_ORIGIN,    /* DNS, connect, handshake and verification of the origin; the client is read, not sent */
	HTTP_AWAIT_RESPONSE,  /* the request going out, the response coming back */
};
struct http_exchange;
struct http_state {
	enum http_wait wait;
	struct http_exchange *x;   /* the request in flight: client buffer, parsers (NULL when idle) */
	int client_eof;            /* the client finished sending (its requests are still answered) */
};

enum connect_wait {
	CONNECT_AWAIT_ORIGIN,          /* the origin verified (nothing answered before that) */
	CONNECT_AWAIT_CLIENT_HELLO,    /* 200 sent: the client's whole ClientHello */
	CONNECT_AWAIT_ALPN_ORIGIN,     /* the client cannot speak the protocol the origin chose: a second origin
					* connection offered the client's own ALPN list */
	CONNECT_AWAIT_CLIENT_TLS,      /* the client's handshake with the minted leaf */
};
struct connect_state {
	enum connect_wait wait;
	int passthrough;               /* a tunnel of raw bytes: the client authenticates the origin itself */
	char client_alpn[256];         /* the protocols the client offered ("h2,http/1.1"), for the second origin */
	uint8_t *hello;                /* bytes the client sent before the handshake started (bounded) */
	size_t hello_len;
};

enum route_wait {
	ROUTE_AWAIT_ORIGIN,            /* the origin verified; the client is not read before that */
};
struct route_state {
	enum route_wait wait;
};

enum smtp_wait {
	SMTP_AWAIT_COMMAND,            /* the client's next command (pipelined ones wait in the session's buffer) */
	SMTP_AWAIT_MX_OPEN,            /* the first RCPT's domain: its MX chosen, connected, STARTTLS, DANE */
	SMTP_AWAIT_MX_REPLY,           /* the MX's reply to a RCPT or DATA, answered to the client as it comes */
	SMTP_AWAIT_CONTENT,            /* the message, streamed to the MX up to <CRLF>.<CRLF> */
	SMTP_AWAIT_FINAL_REPLY,        /* the MX's reply to the end of data: 250 means it took the message */
};
struct smtp_session;
struct smtp_state {
	enum smtp_wait wait;
	struct smtp_session *s;        /* the transaction and the command buffer (smtp.c) */
};

struct conn {
	struct conn_env *env;
	const struct conn_listener *listener;
	struct conn *prev, *next;
	uint64_t id;
	enum conn_phase phase;
	const struct conn_driver *driver;
	union {
		struct http_state http;
		struct connect_state connect;
		struct route_state route;
		struct smtp_state smtp;
	} d;
	struct half client;            /* relay halves: client -> origin */
	struct half origin;            /*               origin -> client */
	struct upstream *up;           /* an origin being opened */
	uv_timer_t timer;
	uint64_t last_activity_ms;
	uint64_t origin_idle_ms;       /* when a kept-alive origin between requests is closed (0: none) */
	uint64_t deadline_ms;          /* a driver's deadline besides idle_timeout (0: none) */
	const char *deadline_reason;   /* the close reason when it passes */
	const char *deadline_detail;
	uint64_t drain_bytes;          /* DRAINING: client bytes dropped so far */
	/* what the log line says */
	char client_addr[64];
	char host[RESOLVER_MAX_NAME];
	uint16_t port;
	enum policy_mode policy;
	struct upstream_report rep;
	int have_rep;
	const char *tunnel;            /* "terminated", "passthrough" or NULL */
	const char *tunnel_reason;     /* why that: the passthrough rule, DANE applies, terminate = dane and no TLSA */
	const char *leaf;              /* "cached", "minted" or NULL */
	const char *refusal;           /* RFC 9209 token of a refusal answered by the proxy itself */
	const char *close_reason;
	char close_detail[200];
	unsigned requests;
	int status;                    /* the HTTP status last sent to the client, 0 if none */
	int answering_head;            /* the request being answered is HEAD: a refusal has no body (RFC 9110 9.3.2) */
	uint64_t bytes_up;             /* plaintext from client to origin */
	uint64_t bytes_down;           /* plaintext from origin to client */
	uint64_t t_start_ns;
};

/*
 * conn_new - a connection for an accepted client stream (owned from now on) on listener: linked into env,
 * timer armed. Its driver is started by the caller (http_start, route_start). NULL when out of memory (the
 * stream is closed then).
 */
struct conn *conn_new(struct conn_env *env, const struct conn_listener *listener, struct stream *client);
/* conn_close - end the connection; reason is a short constant, detail optional. Nothing touches c afterwards. */
void conn_close(struct conn *c, const char *reason, const char *detail);
/* conn_close_all - at shutdown: close every connection (only the idle ones when idle_only). */
void conn_close_all(struct conn_env *env, int idle_only);
/* conn_touch - data moved: push the idle deadline back. */
void conn_touch(struct conn *c);
/* conn_set_deadline - a driver's deadline ms from now (0 clears it); when it passes: conn_close(reason, detail). */
void conn_set_deadline(struct conn *c, uint64_t ms, const char *reason, const char *detail);
/*
 * conn_keep_origin - the origin stays open for the client's next request, at most origin_keepalive (then it is
 * closed and the connection holds no TLS session while idle); keep = 0 cancels that (the origin is in use again).
 */
void conn_keep_origin(struct conn *c, int keep);
/* conn_take_report - remember the upstream report for the log line. */
void conn_take_report(struct conn *c, const struct upstream_report *rep);
/* conn_policy - the policy for a destination (rules, then the default). */
enum policy_mode conn_policy(const struct conn *c, const char *host, uint16_t port);
/* conn_close_when_flushed - no more to send: FIN to the client, close once everything queued is out. */
void conn_close_when_flushed(struct conn *c);
/* conn_relay - client and origin relay raw bytes from now on; pending: client bytes to send the origin first. */
void conn_relay(struct conn *c, const uint8_t *pending, size_t pending_len);
/*
 * conn_refuse - answer the client's request with an HTTP error page (Proxy-Status with the RFC 9209 token, whose
 * table entry gives the status unless status is non-zero) and close after a lingering drain: the client's bytes
 * are read and dropped until the answer is out and the client stops, bounded in time and bytes, so that a client
 * still sending a body reads the answer instead of a reset. HTTP listener connections only.
 */
void conn_refuse(struct conn *c, const char *token, int status, const char *details);

/* The drivers. */
void http_start(struct conn *c);
void connect_start(struct conn *c, const uint8_t *early, size_t early_len);
void route_start(struct conn *c);
void smtp_start(struct conn *c);

#endif

/*
 * server.h - the proxy daemon: listeners from the frozen configuration, the connection table, limits,
 * signals and graceful shutdown. (Internal to proxy/.)
 */
#ifndef DANEPROXY_SERVER_H
#define DANEPROXY_SERVER_H

#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "config.h"
#include "conn.h"
#include "policy.h"
#include "runtime.h"
#include "text.h"

struct listener {
	uv_tcp_t tcp;
	struct server *srv;
	enum conn_kind kind;
	const struct config_addr *addr;
	const struct config_route *route;   /* CONN_ROUTE only */
	enum policy_mode route_policy;
	int closing;
};

struct server {
	uv_loop_t *loop;
	const struct config *cfg;
	struct runtime rt;
	struct ca *ca;                  /* CONNECT termination: the local CA, */
	struct tls_ctx *tls_server;     /* the server side of clients' TLS, */
	struct mint_cache *mint;        /* and the minted leaves */
	struct policy_rule *rules;
	size_t n_rules;
	enum policy_mode default_policy;
	struct listener *listeners;
	size_t n_listeners;
	struct conn *conns;
	unsigned n_conns;
	uint64_t next_id;
	uint64_t refused_limit;
	uint64_t last_accept_warning_ms;
	uv_signal_t sigint;
	uv_signal_t sigterm;
	uv_signal_t sighup;
	uv_signal_t sigusr1;
	uv_signal_t sigusr2;
	struct net_addr *local_addrs;   /* this host's interface addresses (self-loop checks) */
	size_t n_local_addrs;
	uv_timer_t grace;
	int stopping;
	FILE *log;
};

/* server_port_allowed - a client may choose this destination port (absolute-form and CONNECT). */
int server_port_allowed(const struct server *srv, uint16_t port);
/* server_passthrough - CONNECT to host is tunnelled without termination. */
int server_passthrough(const struct server *srv, const char *host);
/* server_policy - the policy for a destination (rules, then the default). */
enum policy_mode server_policy(const struct server *srv, const char *host, uint16_t port);
/* server_conn_gone - a connection finished closing: forget it (called from conn.c). */
void server_conn_gone(struct server *srv, struct conn *c);

#endif

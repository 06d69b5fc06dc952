/*
 * server.h - the proxy daemon's state: listeners from the frozen configuration, the connections' environment,
 * signals and graceful shutdown (internal to the daemon; the public entry point is daemon.h).
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

struct server;

struct listener {
	uv_tcp_t tcp;
	struct server *srv;
	const struct config_addr *addr;
	struct conn_listener conn_listener;   /* what its connections are accepted on */
	int closing;
};

struct server {
	uv_loop_t *loop;
	const struct config *cfg;
	struct runtime rt;              /* resolver, TLS client context, PKIX store: the outbound half */
	struct conn_env env;            /* what every connection gets */
	struct policy_rule *rules;
	struct listener *listeners;
	size_t n_listeners;
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
	uv_timer_t trim;                /* gives freed memory back to the system after connections end */
	uint64_t released_at_trim;
	int stopping;
	FILE *log;
};

#endif

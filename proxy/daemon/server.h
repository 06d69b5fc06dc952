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
#include "smtp_out.h"
#include "text.h"
#include "metrics.h"

struct server;
struct ca;

/* What the supervisor hands a worker it forks. */
struct worker_setup {
	const int *listen_fds;          /* bound, listening sockets: in config_listeners() order */
	struct metrics_shm *shm;
	int slot;                       /* this worker's metrics slot */
	int slot_index;                 /* 0 for the first worker of a generation (says the shared warnings) */
	int ready_fd;                   /* one byte written once listening; -1: none */
};

/* server_ca_dir - where the local CA lives: [connect] state_dir, else the default (ca.h). */
void server_ca_dir(const struct config *cfg, char *dir, size_t size);
/* server_ca_open - the local CA of cfg, with its name constraints (created or renewed as ca.h says). */
int server_ca_open(const struct config *cfg, struct ca **out, char *err, size_t errlen);

/* worker_run - run one worker until a signal ends it; its exit status. */
int worker_run(const struct config *cfg, const struct worker_setup *ws);

struct listener {
	uv_tcp_t tcp;
	struct server *srv;
	const struct config_addr *addr;
	struct conn_listener conn_listener;   /* what its connections are accepted on */
	struct smtp_out_env smtp_env;         /* SMTP smarthosts: how MX sessions are opened */
	char smtp_helo[256];                  /* SMTP smarthosts: the name it greets and says EHLO with */
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
	uv_timer_t stats;               /* copies cache figures to the shared metrics */
	struct metrics_shm *shm;        /* shared with the supervisor and the other workers */
	struct metrics_slot *metrics;   /* this worker's counters */
	uint64_t refused_unlogged;
	uint64_t last_refusal_log_ms;
	int stopping;
	FILE *log;
};

#endif

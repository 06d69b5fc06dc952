/*
 * server.c - one worker of the daemon: its own libuv loop, resolver, caches and connections, on listening sockets
 * the supervisor (supervisor.c) bound and handed down; accepting within limits shared by every worker; graceful
 * shutdown; log reopening.
 *
 * Read top-down: worker_run() opens the runtime and the local CA, drops privileges, listens on the inherited
 * sockets and tells the supervisor it is ready; on_accept() hands each client to conn.c with a driver (route.c or
 * http.c); on_signal() stops accepting and gives open connections shutdown_grace to finish.
 */
#include "ca.h"
#include "daemon.h"
#include "config.h"
#include "conn.h"
#include "metrics.h"
#include "mint.h"
#include "privdrop.h"
#include "server.h"
#include "stream.h"
#include "text.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define TRIM_INTERVAL_MS 5000
#define STATS_INTERVAL_MS 1000   /* cache figures copied to the shared metrics */

/* server_maybe_finish - once stopping and the last connection is gone, release the runtime: the loop ends. */
static void server_maybe_finish(struct server *srv)
{
	if (!srv->stopping || srv->env.n_conns > 0 || srv->rt.resolver == NULL)
		return;
	uv_timer_stop(&srv->grace);
	runtime_close(&srv->rt);
}

/*
 * on_trim - every few seconds, if connections or kept origins were freed since the last time, give the free pages
 * back to the system: glibc keeps freed memory in its heap, so after a burst (thousands of TLS sessions) the
 * process would keep the peak RSS while holding a few idle connections. malloc_trim releases whole free pages
 * inside the heap too (madvise); its cost is one walk of the free lists, paid only after frees.
 */
static void on_trim(uv_timer_t *t)
{
	struct server *srv = t->data;

	if (srv->env.released == srv->released_at_trim)
		return;
	srv->released_at_trim = srv->env.released;
#if defined(__GLIBC__)
	malloc_trim(0);
#endif
}

/* on_conn_gone - conn.c's hook: a connection has ended (it is unlinked already). */
static void on_conn_gone(struct conn *c, void *arg)
{
	struct server *srv = arg;

	metrics_add(&srv->metrics->bytes[0], c->bytes_up);
	metrics_add(&srv->metrics->bytes[1], c->bytes_down);
	metrics_open_release(srv->shm, srv->metrics);
	server_maybe_finish(srv);
}

/* on_stats - the resolver's and the mint cache's own figures, copied to this worker's metrics slot. */
static void on_stats(uv_timer_t *t)
{
	struct server *srv = t->data;
	struct resolver_stats rs;
	struct mint_stats ms;

	if (srv->rt.resolver != NULL) {
		resolver_get_stats(srv->rt.resolver, &rs);
		__atomic_store_n(&srv->metrics->tlsa_cache[0], rs.cache_hits, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->metrics->tlsa_cache[1], rs.lookups - rs.cache_hits - rs.coalesced, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->metrics->tlsa_cache[2], rs.coalesced, __ATOMIC_RELAXED);
	}
	if (srv->env.mint != NULL) {
		mint_get_stats(srv->env.mint, &ms);
		__atomic_store_n(&srv->metrics->minted[0], ms.hits, __ATOMIC_RELAXED);
		__atomic_store_n(&srv->metrics->minted[1], ms.misses, __ATOMIC_RELAXED);
	}
}

/* server_is_self - the destination is one of our own listeners (directly, or through a wildcard listener and one
 * of this host's addresses): connecting would loop. */
static int server_is_self(const struct sockaddr *sa, void *arg)
{
	const struct server *srv = arg;
	struct net_addr a;
	int local = 0;
	size_t i;

	if (net_addr_from_sockaddr(sa, &a) < 0)
		return 0;
	for (i = 0; i < srv->n_local_addrs && !local; i++)
		local = srv->local_addrs[i].family == a.family &&
			memcmp(srv->local_addrs[i].addr, a.addr, a.family == AF_INET ? 4 : 16) == 0;
	return config_listens_on(srv->cfg, a.family, a.addr, a.port, local);
}

/* local_addrs_load - this host's interface addresses, for server_is_self (wildcard listeners). */
static void local_addrs_load(struct server *srv)
{
	uv_interface_address_t *ifs;
	int n, i;

	if (uv_interface_addresses(&ifs, &n) != 0)
		return;
	srv->local_addrs = calloc((size_t)n + 1, sizeof(*srv->local_addrs));
	for (i = 0; srv->local_addrs != NULL && i < n; i++) {
		struct net_addr *a = &srv->local_addrs[srv->n_local_addrs];
		if (ifs[i].address.address4.sin_family == AF_INET) {
			a->family = AF_INET;
			memcpy(a->addr, &ifs[i].address.address4.sin_addr, 4);
		} else if (ifs[i].address.address6.sin6_family == AF_INET6) {
			a->family = AF_INET6;
			memcpy(a->addr, &ifs[i].address.address6.sin6_addr, 16);
		} else {
			continue;
		}
		srv->n_local_addrs++;
	}
	uv_free_interface_addresses(ifs, n);
}

static void refused_log(struct server *srv, const struct listener *l, const struct stream *s, const char *why);

static void on_accept(uv_stream_t *listener_handle, int status)
{
	struct listener *l = listener_handle->data;
	struct server *srv = l->srv;
	struct sockaddr_storage ss;
	struct net_addr peer;
	struct stream *s;
	struct conn *c;
	int full = 0;

	if (status < 0) {
		/* Out of descriptors: libuv's reserve-descriptor trick accepts and drops the backlog instead of
		 * spinning; we say so at most once a second. */
		uint64_t now = uv_now(srv->loop);
		if (now - srv->last_accept_warning_ms >= 1000) {
			srv->last_accept_warning_ms = now;
			fprintf(stderr, "daneproxy: accept on %s: %s (%u connections open)\n", l->addr->text,
				uv_strerror(status), srv->env.n_conns);
		}
		return;
	}
	s = stream_new(srv->loop, NULL, NULL, NULL);
	if (s == NULL)
		return;
	if (stream_accept(s, listener_handle) < 0) {
		stream_close(s);
		return;
	}
	if (stream_peer_addr(s, &ss) < 0 || net_addr_from_sockaddr((struct sockaddr *)&ss, &peer) < 0 ||
	    !(l->conn_listener.smtp != NULL ? config_smtp_client_allowed(l->conn_listener.smtp, peer.family, peer.addr)
					     : config_client_allowed(srv->cfg, peer.family, peer.addr))) {
		metrics_add(&srv->shm->refused_at_accept[1], 1);
		refused_log(srv, l, s, "client address not in allow_from");
		stream_close(s);
		return;
	}
	/* max_connections holds across every worker: one shared count. */
	if (srv->stopping || (full = metrics_open_try(srv->shm, srv->metrics, srv->cfg->max_connections) < 0)) {
		if (full) {
			metrics_add(&srv->shm->refused_at_accept[0], 1);
			refused_log(srv, l, s, "max_connections reached");
		}
		if (full && l->conn_listener.smtp != NULL) {
			static const char busy[] = "421 4.3.2 daneproxy: too many connections, try again later\r\n";
			stream_write(s, (const uint8_t *)busy, sizeof(busy) - 1);
			stream_shutdown(s);
		} else if (full && l->conn_listener.route == NULL) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nProxy-Status: daneproxy; "
						   "error=connection_limit_reached\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			stream_write(s, (const uint8_t *)busy, sizeof(busy) - 1);
			stream_shutdown(s);
		}
		stream_close(s);
		return;
	}
	c = conn_new(&srv->env, &l->conn_listener, s);
	if (c == NULL) {
		metrics_open_release(srv->shm, srv->metrics);
		return;
	}
	if (l->conn_listener.smtp != NULL) {
		metrics_add(&srv->metrics->connections[METRICS_LISTENER_SMTP], 1);
		smtp_start(c);
	} else if (l->conn_listener.route != NULL) {
		metrics_add(&srv->metrics->connections[METRICS_LISTENER_ROUTE], 1);
		route_start(c);
	} else {
		metrics_add(&srv->metrics->connections[METRICS_LISTENER_HTTP], 1);
		http_start(c);
	}
}

/*
 * refused_log - a connection turned away at accept gets a log line (never silence), at most one a second per
 * worker with a count of those left out; the metrics count every one.
 */
static void refused_log(struct server *srv, const struct listener *l, const struct stream *s, const char *why)
{
	uint64_t now = uv_now(srv->loop);
	char peer[64];

	srv->refused_unlogged++;
	if (now - srv->last_refusal_log_ms < 1000)
		return;
	srv->last_refusal_log_ms = now;
	stream_peer(s, peer, sizeof(peer));
	fprintf(stderr, "daneproxy: refused a connection from %s on %s: %s (%llu refused in the last second)\n", peer,
		l->addr->text, why, (unsigned long long)srv->refused_unlogged);
	srv->refused_unlogged = 0;
}

/* listener_open - listen on the socket the supervisor bound (fd, owned from now on); -1 with a message. */
static int listener_open(struct server *srv, struct listener *l, int fd)
{
	int r;

	uv_tcp_init(srv->loop, &l->tcp);
	l->tcp.data = l;
	l->srv = srv;
	if ((r = uv_tcp_open(&l->tcp, fd)) < 0 || (r = uv_listen((uv_stream_t *)&l->tcp, 511, on_accept)) < 0) {
		fprintf(stderr, "daneproxy: cannot listen on %s: %s\n", l->addr->text, uv_strerror(r));
		return -1;
	}
	return 0;
}

static void stop_listening(struct server *srv)
{
	size_t i;

	for (i = 0; i < srv->n_listeners; i++) {
		if (!srv->listeners[i].closing && srv->listeners[i].srv != NULL) {
			srv->listeners[i].closing = 1;
			uv_close((uv_handle_t *)&srv->listeners[i].tcp, NULL);
		}
	}
}

static void on_grace(uv_timer_t *t)
{
	struct server *srv = t->data;

	fprintf(stderr, "daneproxy: grace period over, closing %u connections\n", srv->env.n_conns);
	conn_close_all(&srv->env, 0);
}

/* reopen_log - SIGUSR1: the log file again (after logrotate moved it); the old one is closed once replaced. */
static void reopen_log(struct server *srv)
{
	FILE *f;

	if (strcmp(srv->cfg->log, "stderr") == 0)
		return;
	if ((f = fopen(srv->cfg->log, "a")) == NULL) {
		fprintf(stderr, "daneproxy: reopening log %s: %s (still writing to the old file)\n", srv->cfg->log,
			strerror(errno));
		return;
	}
	fclose(srv->log);
	srv->log = srv->env.log = f;
}

/* on_other_signal - USR1 reopens the log; HUP (the supervisor's reload) and USR2 mean nothing to a worker. */
static void on_other_signal(uv_signal_t *sig, int signum)
{
	if (signum == SIGUSR1)
		reopen_log(sig->data);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;

	if (srv->stopping) {
		fprintf(stderr, "daneproxy: second signal, closing now\n");
		conn_close_all(&srv->env, 0);
		return;
	}
	srv->stopping = 1;
	srv->env.stopping = 1;
	fprintf(stderr, "daneproxy: signal %d: no new connections, %u open get %u ms to finish\n", signum,
		srv->env.n_conns, srv->cfg->shutdown_grace_ms);
	stop_listening(srv);
	/* The handlers stay installed for the whole shutdown (a second signal means "close now"), but they no longer
	 * keep the loop alive. */
	uv_unref((uv_handle_t *)&srv->sigint);
	uv_unref((uv_handle_t *)&srv->sigterm);
	uv_unref((uv_handle_t *)&srv->sighup);
	uv_unref((uv_handle_t *)&srv->sigusr1);
	uv_unref((uv_handle_t *)&srv->sigusr2);
	/* Kept-alive clients between requests have nothing to finish. */
	conn_close_all(&srv->env, 1);
	if (srv->env.n_conns > 0)
		uv_timer_start(&srv->grace, on_grace, srv->cfg->shutdown_grace_ms, 0);
	server_maybe_finish(srv);
}

/* runtime_from_config - the runtime options the configuration implies. */
static void runtime_from_config(const struct config *cfg, struct runtime_options *ro)
{
	size_t i;

	runtime_options_init(ro);
	for (i = 0; i < cfg->n_upstreams; i++)
		ro->upstreams[i] = cfg->upstreams[i];
	ro->n_upstreams = cfg->n_upstreams;
	ro->trust_anchor = cfg->trust_anchor[0] ? cfg->trust_anchor : NULL;
	ro->ca_file = cfg->ca_file[0] ? cfg->ca_file : NULL;
	ro->dns_udp = cfg->dns_udp;
	ro->validation = cfg->validation_resolver ? RESOLVER_VALIDATE_RESOLVER : RESOLVER_VALIDATE_SELF;
	policy_mode_parse(cfg->policy, &ro->policy);
	ro->dns_timeout_ms = cfg->dns_timeout_ms;
	ro->cache_size = cfg->cache_size;
	ro->ttl_min_s = cfg->ttl_min_s;
	ro->ttl_max_s = cfg->ttl_max_s;
	ro->failure_ttl_s = cfg->failure_ttl_s;
	ro->ttls_literal = 1;
	ro->connect_timeout_ms = cfg->connect_timeout_ms;
	ro->handshake_timeout_ms = cfg->handshake_timeout_ms;
	ro->ee_namecheck = cfg->ee_namecheck;
	memcpy(ro->digests, cfg->digests, sizeof(ro->digests));
	/* The session cache's size; 0 turns resumption off (the runtime's -1; its 0 would mean its default). */
	ro->sessions = cfg->origin_sessions == 0 ? -1 : (int)cfg->origin_sessions;
}

void server_ca_dir(const struct config *cfg, char *dir, size_t size)
{
	if (cfg->state_dir[0])
		snprintf(dir, size, "%s", cfg->state_dir);
	else
		ca_default_dir(dir, size);
}

int server_ca_open(const struct config *cfg, struct ca **out, char *err, size_t errlen)
{
	const char *permitted[CONFIG_MAX_CONSTRAINTS];
	char dir[CONFIG_PATH_MAX];
	size_t i;

	server_ca_dir(cfg, dir, sizeof(dir));
	for (i = 0; i < cfg->n_ca_name_constraints; i++)
		permitted[i] = cfg->ca_name_constraints[i];
	return ca_open_constrained(dir, permitted, cfg->n_ca_name_constraints, out, err, errlen);
}

/* system_fqdn - this host's fully qualified name (the canonical name of gethostname's), as MTAs greet with. */
static void system_fqdn(char *out, size_t size)
{
	struct addrinfo hints, *ai = NULL;
	char host[256];

	if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	hints.ai_socktype = SOCK_STREAM;
	if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &ai) == 0 && ai->ai_canonname != NULL &&
	    strlen(ai->ai_canonname) < size)
		snprintf(out, size, "%s", ai->ai_canonname);
	else
		snprintf(out, size, "%s", host);
	if (ai != NULL)
		freeaddrinfo(ai);
}

/* smtp_listener_setup - an SMTP smarthost listener: its MX sessions go through this worker's resolver and TLS. */
static void smtp_listener_setup(struct server *srv, struct listener *l, const struct config_smtp *m)
{
	const struct config *cfg = srv->cfg;
	struct smtp_out_env *e = &l->smtp_env;

	if (m->helo[0])
		snprintf(l->smtp_helo, sizeof(l->smtp_helo), "%s", m->helo);
	else
		system_fqdn(l->smtp_helo, sizeof(l->smtp_helo));
	e->loop = srv->loop;
	e->resolver = srv->rt.resolver;
	e->tls = srv->rt.tls;
	memcpy(e->digests, cfg->digests, sizeof(e->digests));
	e->port = m->mx_port;
	e->helo = l->smtp_helo;
	e->connect_timeout_ms = cfg->connect_timeout_ms;
	e->handshake_timeout_ms = cfg->handshake_timeout_ms;
	e->reply_timeout_ms = m->reply_timeout_ms;
	e->data_timeout_ms = m->data_timeout_ms;
	e->max_attempts = m->max_attempts;
	e->is_self = server_is_self;
	e->is_self_arg = srv;
	l->conn_listener.kind = "smtp";
	l->conn_listener.smtp = m;
	l->conn_listener.smtp_env = e;
	l->conn_listener.smtp_helo = l->smtp_helo;
	l->addr = &m->listen;
}

int worker_run(const struct config *cfg, const struct worker_setup *ws)
{
	struct server srv;
	struct runtime_options ro;
	struct privdrop pd;
	char err[300], msg[PRIVDROP_MSG_MAX];
	size_t i, n = 0;
	int rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.loop = uv_default_loop();
	srv.cfg = cfg;
	srv.shm = ws->shm;
	srv.metrics = &ws->shm->slots[ws->slot];
	if (cfg->user[0] && privdrop_lookup(cfg->user, &pd, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy: %s\n", err);
		return 1;
	}
	runtime_from_config(cfg, &ro);
	srv.rules = calloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*srv.rules));
	srv.listeners = calloc(cfg->n_listen + cfg->n_routes + cfg->n_smtp, sizeof(*srv.listeners));
	if (srv.rules == NULL || srv.listeners == NULL) {
		fprintf(stderr, "daneproxy: out of memory\n");
		goto out;
	}
	for (i = 0; i < cfg->n_rules; i++) {
		snprintf(srv.rules[i].pattern, sizeof(srv.rules[i].pattern), "%s", cfg->rules[i].pattern);
		srv.rules[i].port = cfg->rules[i].port;
		policy_mode_parse(cfg->rules[i].policy, &srv.rules[i].mode);
	}
	if (strcmp(cfg->log, "stderr") == 0) {
		srv.log = stderr;
	} else if ((srv.log = fopen(cfg->log, "a")) == NULL) {
		fprintf(stderr, "daneproxy: log %s: %s\n", cfg->log, strerror(errno));
		goto out;
	}
	/* What every connection gets (conn.h). */
	srv.env.loop = srv.loop;
	srv.env.cfg = cfg;
	srv.env.upstream = &srv.rt.env;
	srv.env.rules = srv.rules;
	srv.env.n_rules = cfg->n_rules;
	srv.env.default_policy = ro.policy;
	srv.env.log = srv.log;
	srv.env.metrics = srv.metrics;
	srv.env.gone = on_conn_gone;
	srv.env.gone_arg = &srv;
	if (runtime_open(&srv.rt, srv.loop, &ro, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy: %s\n", err);
		goto out;
	}
	local_addrs_load(&srv);
	srv.rt.env.is_self = server_is_self;
	srv.rt.env.is_self_arg = &srv;
	if (cfg->n_listen > 0) {
		/* CONNECT termination: the local CA (the supervisor created or renewed it), a server context, the leaf
		 * cache. */
		if (server_ca_open(cfg, &srv.env.ca, err, sizeof(err)) < 0 ||
		    (srv.env.tls_server = tls_server_ctx_new(err, sizeof(err))) == NULL ||
		    (srv.env.mint = mint_cache_new(srv.env.ca, cfg->mint_cache_size)) == NULL) {
			fprintf(stderr, "daneproxy: CONNECT termination: %s\n", err);
			goto fail_listen;
		}
	}
	/* Keys and anchors read: the rest runs without root (privdrop.h). */
	if (cfg->user[0] && srv.env.ca != NULL && geteuid() == 0) {
		char dir[CONFIG_PATH_MAX];
		server_ca_dir(cfg, dir, sizeof(dir));
		if (privdrop_check_dir(&pd, dir, msg, sizeof(msg)) < 0 && ws->slot_index == 0)
			fprintf(stderr, "daneproxy: warning: %s\n", msg);
	}
	switch (privdrop_apply(cfg->user[0] ? &pd : NULL, msg, sizeof(msg))) {
	case PRIVDROP_FAILED:
		fprintf(stderr, "daneproxy: %s; not starting\n", msg);
		goto fail_listen;
	case PRIVDROP_NOT_ROOT:
		if (cfg->user[0] && ws->slot_index == 0)
			fprintf(stderr, "daneproxy: %s\n", msg);
		break;
	case PRIVDROP_DROPPED:
	case PRIVDROP_ROOT_NO_USER:
		if (ws->slot_index == 0)
			fprintf(stderr, "daneproxy: %s\n", msg);
		break;
	}
	for (i = 0; i < cfg->n_listen; i++) {
		srv.listeners[n].conn_listener.kind = "http";
		srv.listeners[n].addr = &cfg->listen[i];
		if (listener_open(&srv, &srv.listeners[n], ws->listen_fds[n]) < 0) {
			n++;
			goto fail_listen;
		}
		n++;
	}
	for (i = 0; i < cfg->n_routes; i++) {
		struct conn_listener *cl = &srv.listeners[n].conn_listener;
		cl->kind = "route";
		cl->route = &cfg->routes[i];
		if (cfg->routes[i].policy[0])
			policy_mode_parse(cfg->routes[i].policy, &cl->route_policy);
		else
			cl->route_policy = policy_lookup(srv.rules, cfg->n_rules, cfg->routes[i].host, cfg->routes[i].port,
							 ro.policy);
		srv.listeners[n].addr = &cfg->routes[i].listen;
		if (listener_open(&srv, &srv.listeners[n], ws->listen_fds[n]) < 0) {
			n++;
			goto fail_listen;
		}
		n++;
	}
	for (i = 0; i < cfg->n_smtp; i++) {
		struct listener *l = &srv.listeners[n];
		smtp_listener_setup(&srv, l, &cfg->smtp[i]);
		if (listener_open(&srv, l, ws->listen_fds[n]) < 0) {
			n++;
			goto fail_listen;
		}
		n++;
	}
	srv.n_listeners = n;
	uv_timer_init(srv.loop, &srv.grace);
	srv.grace.data = &srv;
	uv_unref((uv_handle_t *)&srv.grace);
	uv_timer_init(srv.loop, &srv.trim);
	srv.trim.data = &srv;
	uv_timer_start(&srv.trim, on_trim, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
	uv_unref((uv_handle_t *)&srv.trim);
	uv_timer_init(srv.loop, &srv.stats);
	srv.stats.data = &srv;
	uv_timer_start(&srv.stats, on_stats, STATS_INTERVAL_MS, STATS_INTERVAL_MS);
	uv_unref((uv_handle_t *)&srv.stats);
	uv_signal_init(srv.loop, &srv.sigint);
	uv_signal_init(srv.loop, &srv.sigterm);
	uv_signal_init(srv.loop, &srv.sighup);
	uv_signal_init(srv.loop, &srv.sigusr1);
	uv_signal_init(srv.loop, &srv.sigusr2);
	srv.sigint.data = srv.sigterm.data = srv.sighup.data = srv.sigusr1.data = srv.sigusr2.data = &srv;
	uv_signal_start(&srv.sigint, on_signal, SIGINT);
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sighup, on_other_signal, SIGHUP);
	uv_signal_start(&srv.sigusr1, on_other_signal, SIGUSR1);
	uv_signal_start(&srv.sigusr2, on_other_signal, SIGUSR2);
	/* Listening: the supervisor may now count this worker in (and retire an older generation). */
	if (ws->ready_fd >= 0) {
		int ready = ws->slot;   /* the supervisor counts its workers in by metrics slot */
		if (write(ws->ready_fd, &ready, sizeof(ready)) != (ssize_t)sizeof(ready))
			fprintf(stderr, "daneproxy: worker: telling the supervisor it is ready: %s\n", strerror(errno));
		close(ws->ready_fd);
	}
	uv_run(srv.loop, UV_RUN_DEFAULT);
	on_stats(&srv.stats);
	uv_close((uv_handle_t *)&srv.sigint, NULL);
	uv_close((uv_handle_t *)&srv.sigterm, NULL);
	uv_close((uv_handle_t *)&srv.sighup, NULL);
	uv_close((uv_handle_t *)&srv.sigusr1, NULL);
	uv_close((uv_handle_t *)&srv.sigusr2, NULL);
	uv_close((uv_handle_t *)&srv.grace, NULL);
	uv_close((uv_handle_t *)&srv.trim, NULL);
	uv_close((uv_handle_t *)&srv.stats, NULL);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	rc = 0;
	goto out_loop;
fail_listen:
	srv.n_listeners = n;
	stop_listening(&srv);
	runtime_close(&srv.rt);
	uv_run(srv.loop, UV_RUN_DEFAULT);
out_loop:
	if (uv_loop_close(srv.loop) != 0)
		fprintf(stderr, "daneproxy: warning: event loop not closed cleanly\n");
out:
	mint_cache_free(srv.env.mint);
	tls_ctx_free(srv.env.tls_server);
	ca_free(srv.env.ca);
	if (srv.log != NULL && srv.log != stderr)
		fclose(srv.log);
	free(srv.rules);
	free(srv.listeners);
	free(srv.local_addrs);
	return rc;
}

/*
 * server.c - the proxy daemon: listeners from the frozen configuration, accepting within limits, signals and
 * graceful shutdown.
 *
 * Read top-down: server_run() opens the runtime, the local CA and the listeners; on_accept() hands each client to
 * conn.c (routes) or http.c (HTTP proxy); on_signal() stops accepting and gives open connections shutdown_grace to
 * finish.
 */
#include "ca.h"
#include "daemon.h"
#include "config.h"
#include "conn.h"
#include "mint.h"
#include "notify.h"
#include "privdrop.h"
#include "server.h"
#include "stream.h"
#include "text.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
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
	(void)c;
	server_maybe_finish(arg);
}

/* client_allowed - loopback always; anything else only from allow_from networks. IPv4 clients of a dual-stack
 * listener arrive as ::ffff:a.b.c.d: every rule sees them as a.b.c.d. */
static int client_allowed(const struct server *srv, const struct sockaddr_storage *ss)
{
	uint8_t addr[16];
	int family = ss->ss_family;
	size_t i;

	if (family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else
		return 0;
	net_addr_unmap(&family, addr);
	if (family == AF_INET ? addr[0] == 127 : IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)(const void *)addr))
		return 1;
	for (i = 0; i < srv->cfg->n_allow_from; i++)
		if (config_cidr_contains(&srv->cfg->allow_from[i], family, addr))
			return 1;
	return 0;
}

/* server_is_self - the destination is one of our own listeners (directly, or through a wildcard listener and one
 * of this host's addresses): connecting would loop. */
static int server_is_self(const struct sockaddr *sa, void *arg)
{
	const struct server *srv = arg;
	uint8_t addr[16];
	int family = sa->sa_family, local = 0;
	uint16_t port;
	size_t i;

	if (family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		port = ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
	} else if (family == AF_INET6) {
		memcpy(addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		port = ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	} else {
		return 0;
	}
	net_addr_unmap(&family, addr);
	for (i = 0; i < srv->n_local_addrs && !local; i++)
		local = srv->local_addrs[i].family == family &&
			memcmp(srv->local_addrs[i].addr, addr, family == AF_INET ? 4 : 16) == 0;
	return config_listens_on(srv->cfg, family, addr, port, local);
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

static void on_accept(uv_stream_t *listener_handle, int status)
{
	struct listener *l = listener_handle->data;
	struct server *srv = l->srv;
	struct sockaddr_storage ss;
	struct stream *s;
	struct conn *c;
	int full = srv->env.n_conns >= srv->cfg->max_connections;

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
	if (stream_peer_addr(s, &ss) < 0 || !client_allowed(srv, &ss) || srv->stopping || full) {
		if (full)
			srv->refused_limit++;
		if (full && strcmp(l->conn_listener.kind, "http") == 0) {
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
	if (c == NULL)
		return;
	if (l->conn_listener.route != NULL)
		route_start(c);
	else
		http_start(c);
}

static void sockaddr_from(const struct config_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, 4);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
	}
}

/* listener_open - bind and listen; -1 with a message. */
static int listener_open(struct server *srv, struct listener *l)
{
	struct sockaddr_storage ss;
	int r;

	uv_tcp_init(srv->loop, &l->tcp);
	l->tcp.data = l;
	l->srv = srv;
	sockaddr_from(l->addr, &ss);
	if ((r = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) < 0 ||
	    (r = uv_listen((uv_stream_t *)&l->tcp, 511, on_accept)) < 0) {
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

/* on_other_signal - HUP, USR1, USR2: no meaning yet (reload and log rotation come with the service work);
 * logged and ignored, never the default action that would kill every transfer. */
static void on_other_signal(uv_signal_t *sig, int signum)
{
	(void)sig;
	fprintf(stderr, "daneproxy: signal %d (%s) ignored: it has no meaning in this version\n", signum,
		signum == SIGHUP ? "SIGHUP" : signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2");
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
	notify_stopping();
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
}

int server_run(const struct config *cfg)
{
	struct server srv;
	struct runtime_options ro;
	struct privdrop pd;
	char err[300], msg[PRIVDROP_MSG_MAX];
	size_t i, n;
	int rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.loop = uv_default_loop();
	srv.cfg = cfg;
	if (cfg->user[0] && privdrop_lookup(cfg->user, &pd, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy: %s\n", err);
		return 1;
	}
	runtime_from_config(cfg, &ro);
	srv.rules = calloc(cfg->n_rules ? cfg->n_rules : 1, sizeof(*srv.rules));
	srv.listeners = calloc(cfg->n_listen + cfg->n_routes, sizeof(*srv.listeners));
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
		/* CONNECT termination: the local CA (created on first start), a server context, the leaf cache. */
		char dir[CONFIG_PATH_MAX];
		if (cfg->state_dir[0])
			snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
		else
			ca_default_dir(dir, sizeof(dir));
		const char *permitted[CONFIG_MAX_CONSTRAINTS];
		for (i = 0; i < cfg->n_ca_name_constraints; i++)
			permitted[i] = cfg->ca_name_constraints[i];
		if (ca_open_constrained(dir, permitted, cfg->n_ca_name_constraints, &srv.env.ca, err, sizeof(err)) < 0 ||
		    (srv.env.tls_server = tls_server_ctx_new(err, sizeof(err))) == NULL ||
		    (srv.env.mint = mint_cache_new(srv.env.ca, cfg->mint_cache_size)) == NULL) {
			fprintf(stderr, "daneproxy: CONNECT termination: %s\n", err);
			n = 0;
			goto fail_listen;
		}
		printf("daneproxy: local CA %s%s (clients of CONNECT must trust it: daneproxy ca export)\n",
		       ca_cert_path(srv.env.ca), ca_renewed(srv.env.ca) ? ", newly issued" : "");
	}
	n = 0;
	for (i = 0; i < cfg->n_listen; i++) {
		srv.listeners[n].conn_listener.kind = "http";
		srv.listeners[n].addr = &cfg->listen[i];
		if (listener_open(&srv, &srv.listeners[n++]) < 0)
			goto fail_listen;
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
		if (listener_open(&srv, &srv.listeners[n++]) < 0)
			goto fail_listen;
	}
	srv.n_listeners = n;
	/* Listeners bound and keys read: the rest runs without root (privdrop.h). */
	if (cfg->user[0] && srv.env.ca != NULL && geteuid() == 0) {
		char dir[CONFIG_PATH_MAX];
		if (cfg->state_dir[0])
			snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
		else
			ca_default_dir(dir, sizeof(dir));
		if (privdrop_check_dir(&pd, dir, msg, sizeof(msg)) < 0)
			fprintf(stderr, "daneproxy: warning: %s\n", msg);
	}
	switch (privdrop_apply(cfg->user[0] ? &pd : NULL, msg, sizeof(msg))) {
	case PRIVDROP_FAILED:
		fprintf(stderr, "daneproxy: %s; not starting\n", msg);
		goto fail_listen;
	case PRIVDROP_NOT_ROOT:
		if (cfg->user[0])
			fprintf(stderr, "daneproxy: %s\n", msg);
		break;
	case PRIVDROP_DROPPED:
	case PRIVDROP_ROOT_NO_USER:
		fprintf(stderr, "daneproxy: %s\n", msg);
		break;
	}
	uv_timer_init(srv.loop, &srv.grace);
	srv.grace.data = &srv;
	uv_unref((uv_handle_t *)&srv.grace);
	uv_timer_init(srv.loop, &srv.trim);
	srv.trim.data = &srv;
	uv_timer_start(&srv.trim, on_trim, TRIM_INTERVAL_MS, TRIM_INTERVAL_MS);
	uv_unref((uv_handle_t *)&srv.trim);
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
	for (i = 0; i < cfg->n_listen; i++)
		printf("daneproxy: ready, HTTP proxy listening on %s (policy %s)\n", cfg->listen[i].text, cfg->policy);
	for (i = 0; i < cfg->n_routes; i++)
		printf("daneproxy: ready, route %s -> %s:%u (policy %s)\n", cfg->routes[i].listen.text,
		       cfg->routes[i].host, cfg->routes[i].port,
		       policy_mode_name(srv.listeners[cfg->n_listen + i].conn_listener.route_policy));
	fflush(stdout);
	notify_status("%zu listeners open, policy %s", srv.n_listeners, cfg->policy);
	notify_ready();
	uv_run(srv.loop, UV_RUN_DEFAULT);
	if (srv.env.mint != NULL) {
		struct mint_stats ms;
		mint_get_stats(srv.env.mint, &ms);
		fprintf(stderr, "daneproxy: minted leaves: %llu cache hits, %llu minted, %llu evicted\n",
			(unsigned long long)ms.hits, (unsigned long long)ms.misses, (unsigned long long)ms.evictions);
	}
	if (srv.refused_limit > 0)
		fprintf(stderr, "daneproxy: %llu connections turned away at max_connections (%u)\n",
			(unsigned long long)srv.refused_limit, cfg->max_connections);
	uv_close((uv_handle_t *)&srv.sigint, NULL);
	uv_close((uv_handle_t *)&srv.sigterm, NULL);
	uv_close((uv_handle_t *)&srv.sighup, NULL);
	uv_close((uv_handle_t *)&srv.sigusr1, NULL);
	uv_close((uv_handle_t *)&srv.sigusr2, NULL);
	uv_close((uv_handle_t *)&srv.grace, NULL);
	uv_close((uv_handle_t *)&srv.trim, NULL);
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

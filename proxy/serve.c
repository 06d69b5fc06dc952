/*
 * serve.c - the proxy daemon: configuration (file, then command line, validated as a whole and frozen),
 * listeners, accepting within limits, signals and graceful shutdown.
 *
 * Read top-down: cmd_serve() builds the configuration, server_start() opens the runtime and listeners,
 * on_accept() hands each client to conn.c (routes) or http.c (HTTP proxy), on_signal() stops accepting and
 * gives open connections shutdown_grace to finish.
 */
#include "ca.h"
#include "commands.h"
#include "config.h"
#include "conn.h"
#include "mint.h"
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

#include <uv.h>

static void serve_usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy [serve] [-c FILE] [-t] [--listen ADDR:PORT]... [--route LISTEN_ADDR:PORT=HOST:PORT]...\n"
		"                 [--allow-from CIDR]... [--max-connections N] [--log FILE] [options]\n\n"
		"Runs the proxy. With no file and no options: HTTP proxy on 127.0.0.1:8080, the system's resolvers,\n"
		"the root trust anchor, policy dane.\n"
		"  -c FILE                 INI configuration file (see README)\n"
		"  -t                      check the configuration, report every error, and exit\n"
		"  --listen ADDR:PORT      HTTP proxy listener (repeatable; replaces the default)\n"
		"  --route L=HOST:PORT     port-mapped route: a TLS connection to HOST:PORT for every client of L\n"
		"  --allow-from CIDR       client network allowed (required for non-loopback listeners)\n"
		"  --max-connections N     concurrent clients (default 1024)\n"
		"  --ports LIST            destination ports clients may reach, e.g. 443,8443,9000-9100\n"
		"                          (default 443,465,993,995,8443; absolute-form and CONNECT alike)\n"
		"  --log FILE              per-connection JSON lines (default stderr)\n"
		"  --state-dir DIR         where the local CA for CONNECT lives (default: /var/lib/daneproxy for root,\n"
		"                          else ~/.local/state/daneproxy)\n" RUNTIME_OPTIONS_HELP);
}

int server_port_allowed(const struct server *srv, uint16_t port)
{
	return config_port_allowed(srv->cfg, port);
}

int server_passthrough(const struct server *srv, const char *host)
{
	size_t i;

	for (i = 0; i < srv->cfg->n_passthrough; i++)
		if (policy_pattern_matches(srv->cfg->passthrough[i], host))
			return 1;
	return 0;
}

enum policy_mode server_policy(const struct server *srv, const char *host, uint16_t port)
{
	return policy_lookup(srv->rules, srv->n_rules, host, port, srv->default_policy);
}

/* server_maybe_finish - once stopping and the last connection is gone, release the runtime: the loop ends. */
static void server_maybe_finish(struct server *srv)
{
	if (!srv->stopping || srv->n_conns > 0 || srv->rt.resolver == NULL)
		return;
	uv_timer_stop(&srv->grace);
	runtime_close(&srv->rt);
}

void server_conn_gone(struct server *srv, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->n_conns--;
	server_maybe_finish(srv);
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

	if (status < 0) {
		/* Out of descriptors: libuv's reserve-descriptor trick accepts and drops the backlog instead of
		 * spinning; we say so at most once a second. */
		uint64_t now = uv_now(srv->loop);
		if (now - srv->last_accept_warning_ms >= 1000) {
			srv->last_accept_warning_ms = now;
			fprintf(stderr, "daneproxy: accept on %s: %s (%u connections open)\n", l->addr->text,
				uv_strerror(status), srv->n_conns);
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
	if (stream_peer_addr(s, &ss) < 0 || !client_allowed(srv, &ss) ||
	    srv->stopping || srv->n_conns >= srv->cfg->max_connections) {
		if (srv->n_conns >= srv->cfg->max_connections)
			srv->refused_limit++;
		if (l->kind == CONN_HTTP && srv->n_conns >= srv->cfg->max_connections) {
			static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nProxy-Status: daneproxy; "
						   "error=connection_limit_reached\r\nContent-Length: 0\r\n"
						   "Connection: close\r\n\r\n";
			stream_write(s, (const uint8_t *)busy, sizeof(busy) - 1);
			stream_shutdown(s);
		}
		stream_close(s);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		stream_close(s);
		return;
	}
	c->srv = srv;
	c->listener = l;
	c->kind = l->kind;
	c->id = ++srv->next_id;
	c->client = s;
	c->t_start_ns = uv_hrtime();
	c->policy = srv->default_policy;
	stream_peer(s, c->client_addr, sizeof(c->client_addr));
	uv_timer_init(srv->loop, &c->idle);
	c->idle.data = c;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	conn_touch(c);
	if (l->kind == CONN_ROUTE)
		route_conn_start(c);
	else
		http_conn_start(c);
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

/* close_all - end every connection (those already closing are left to finish). */
static void close_all(struct server *srv, int idle_only)
{
	struct conn *c;

	for (c = srv->conns; c != NULL; c = c->next)
		if (!idle_only || (c->state == CONN_EXPECT_REQUEST && c->buf_len == 0 && conn_head_bytes(c) == 0))
			conn_close(c, "shutdown", NULL);
}

static void on_grace(uv_timer_t *t)
{
	struct server *srv = t->data;

	fprintf(stderr, "daneproxy: grace period over, closing %u connections\n", srv->n_conns);
	close_all(srv, 0);
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
		close_all(srv, 0);
		return;
	}
	srv->stopping = 1;
	fprintf(stderr, "daneproxy: signal %d: no new connections, %u open get %u ms to finish\n", signum,
		srv->n_conns, srv->cfg->shutdown_grace_ms);
	stop_listening(srv);
	/* The handlers stay installed for the whole shutdown (a second signal means "close now"), but they no longer
	 * keep the loop alive. */
	uv_unref((uv_handle_t *)&srv->sigint);
	uv_unref((uv_handle_t *)&srv->sigterm);
	uv_unref((uv_handle_t *)&srv->sighup);
	uv_unref((uv_handle_t *)&srv->sigusr1);
	uv_unref((uv_handle_t *)&srv->sigusr2);
	/* Kept-alive clients between requests have nothing to finish. */
	close_all(srv, 1);
	if (srv->n_conns > 0)
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
}

static int server_run(const struct config *cfg)
{
	struct server srv;
	struct runtime_options ro;
	char err[300];
	size_t i, n;
	int rc = 1;

	memset(&srv, 0, sizeof(srv));
	srv.loop = uv_default_loop();
	srv.cfg = cfg;
	runtime_from_config(cfg, &ro);
	srv.default_policy = ro.policy;
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
	srv.n_rules = cfg->n_rules;
	if (strcmp(cfg->log, "stderr") == 0) {
		srv.log = stderr;
	} else if ((srv.log = fopen(cfg->log, "a")) == NULL) {
		fprintf(stderr, "daneproxy: log %s: %s\n", cfg->log, strerror(errno));
		goto out;
	}
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
		if (ca_open_constrained(dir, permitted, cfg->n_ca_name_constraints, &srv.ca, err, sizeof(err)) < 0 ||
		    (srv.tls_server = tls_server_ctx_new(err, sizeof(err))) == NULL ||
		    (srv.mint = mint_cache_new(srv.ca, cfg->mint_cache_size)) == NULL) {
			fprintf(stderr, "daneproxy: CONNECT termination: %s\n", err);
			n = 0;
			goto fail_listen;
		}
		printf("daneproxy: local CA %s%s (clients of CONNECT must trust it: daneproxy ca export)\n",
		       ca_cert_path(srv.ca), ca_renewed(srv.ca) ? ", newly issued" : "");
	}
	n = 0;
	for (i = 0; i < cfg->n_listen; i++) {
		srv.listeners[n].kind = CONN_HTTP;
		srv.listeners[n].addr = &cfg->listen[i];
		if (listener_open(&srv, &srv.listeners[n++]) < 0)
			goto fail_listen;
	}
	for (i = 0; i < cfg->n_routes; i++) {
		srv.listeners[n].kind = CONN_ROUTE;
		srv.listeners[n].addr = &cfg->routes[i].listen;
		srv.listeners[n].route = &cfg->routes[i];
		srv.listeners[n].route_policy = srv.default_policy;
		if (cfg->routes[i].policy[0])
			policy_mode_parse(cfg->routes[i].policy, &srv.listeners[n].route_policy);
		else
			srv.listeners[n].route_policy =
				server_policy(&srv, cfg->routes[i].host, cfg->routes[i].port);
		if (listener_open(&srv, &srv.listeners[n++]) < 0)
			goto fail_listen;
	}
	srv.n_listeners = n;
	uv_timer_init(srv.loop, &srv.grace);
	srv.grace.data = &srv;
	uv_unref((uv_handle_t *)&srv.grace);
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
		       cfg->routes[i].host, cfg->routes[i].port, policy_mode_name(srv.listeners[cfg->n_listen + i].route_policy));
	fflush(stdout);
	uv_run(srv.loop, UV_RUN_DEFAULT);
	if (srv.mint != NULL) {
		struct mint_stats ms;
		mint_get_stats(srv.mint, &ms);
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
	mint_cache_free(srv.mint);
	tls_ctx_free(srv.tls_server);
	ca_free(srv.ca);
	if (srv.log != NULL && srv.log != stderr)
		fclose(srv.log);
	free(srv.rules);
	free(srv.listeners);
	free(srv.local_addrs);
	return rc;
}

/* report - print every configuration error; returns their count. */
static size_t report(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_errors; i++)
		fprintf(stderr, "%s\n", cfg->errors[i]);
	if (cfg->n_errors_dropped)
		fprintf(stderr, "... and %zu more errors\n", cfg->n_errors_dropped);
	return cfg->n_errors + cfg->n_errors_dropped;
}

int cmd_serve(int argc, char **argv)
{
	enum { OPT_LISTEN = 1, OPT_ROUTE, OPT_ALLOW, OPT_MAXCONN, OPT_LOG, OPT_STATE_DIR, OPT_PORTS };
	static const struct option longopts[] = {
		RUNTIME_LONG_OPTIONS,
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"route", required_argument, NULL, OPT_ROUTE},
		{"allow-from", required_argument, NULL, OPT_ALLOW},
		{"max-connections", required_argument, NULL, OPT_MAXCONN},
		{"log", required_argument, NULL, OPT_LOG},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"ports", required_argument, NULL, OPT_PORTS},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct config *cfg;
	const char *file = NULL;
	int opt, test_only = 0, rc, cli_listen = 0;
	char num[16];

	cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		fprintf(stderr, "daneproxy: out of memory\n");
		return 1;
	}
	config_defaults(cfg);
	/* First pass: the file, so that command-line options override it. */
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1)
		if (opt == 'c')
			file = optarg;
	if (file != NULL)
		config_load_file(cfg, file);
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': break;
		case 't': test_only = 1; break;
		case 'h': serve_usage(stdout); free(cfg); return 0;
		case OPT_LISTEN:
			/* Command-line listeners replace the file's, as every other option overrides it. */
			if (!cli_listen++)
				cfg->listen_set = 0;
			config_set(cfg, "proxy", "listen", optarg, "--listen");
			break;
		case OPT_ROUTE: config_set(cfg, "", "route", optarg, "--route"); break;
		case OPT_ALLOW: config_set(cfg, "proxy", "allow_from", optarg, "--allow-from"); break;
		case OPT_MAXCONN: config_set(cfg, "proxy", "max_connections", optarg, "--max-connections"); break;
		case OPT_LOG: config_set(cfg, "proxy", "log", optarg, "--log"); break;
		case OPT_STATE_DIR: config_set(cfg, "connect", "state_dir", optarg, "--state-dir"); break;
		case OPT_PORTS: config_set(cfg, "proxy", "ports", optarg, "--ports"); break;
		case RUNTIME_OPT_RESOLVER: config_set(cfg, "resolver", "upstream", optarg, "--resolver"); break;
		case RUNTIME_OPT_TRUST_ANCHOR: config_set(cfg, "resolver", "trust_anchor", optarg, "--trust-anchor"); break;
		case RUNTIME_OPT_CA_FILE: config_set(cfg, "policy", "ca_file", optarg, "--ca-file"); break;
		case RUNTIME_OPT_POLICY: config_set(cfg, "policy", "default", optarg, "--policy"); break;
		case RUNTIME_OPT_DNS_UDP: config_set(cfg, "resolver", "transport", "udp", "--dns-udp"); break;
		case RUNTIME_OPT_EE_NAMECHECK: config_set(cfg, "policy", "ee_namecheck", "yes", "--ee-namecheck"); break;
		case RUNTIME_OPT_DNS_TIMEOUT:
			snprintf(num, sizeof(num), "%.10sms", optarg);
			config_set(cfg, "resolver", "timeout", num, "--dns-timeout");
			break;
		case RUNTIME_OPT_CONNECT_TIMEOUT:
			snprintf(num, sizeof(num), "%.10sms", optarg);
			config_set(cfg, "proxy", "connect_timeout", num, "--connect-timeout");
			config_set(cfg, "proxy", "handshake_timeout", num, "--connect-timeout");
			break;
		default: serve_usage(stderr); free(cfg); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daneproxy: unexpected argument \"%s\"\n", argv[optind]);
		serve_usage(stderr);
		free(cfg);
		return 2;
	}
	config_validate(cfg);
	if (report(cfg) > 0) {
		fprintf(stderr, "daneproxy: configuration has errors%s\n", test_only ? "" : "; not starting");
		free(cfg);
		return 2;
	}
	if (test_only) {
		printf("daneproxy: configuration %s is valid\n", file ? file : "(embedded default)");
		free(cfg);
		return 0;
	}
	rc = server_run(cfg);
	free(cfg);
	return rc;
}

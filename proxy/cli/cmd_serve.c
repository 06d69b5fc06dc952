/*
 * cmd_serve.c - the serve subcommand (the default): the configuration from the file, then the command line,
 * validated as a whole and frozen, then handed to the daemon (server_run); `-t` checks it and exits.
 */
#include "commands.h"
#include "config.h"
#include "daemon.h"
#include "runtime.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

/* serve_usage - the serve subcommand's help. */
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
		"  --log FILE              per-connection JSON lines (default stderr; SIGUSR1 reopens it)\n"
		"  --workers N|auto        worker processes (default auto: one per CPU the process may use)\n"
		"  --metrics ADDR:PORT     serve GET /metrics (Prometheus text format) there\n"
		"  --origin-sessions N     origin TLS sessions kept for resumption, per worker (default 1024;\n"
		"                          0: no resumption, every origin handshake is a full one)\n"
		"  --user NAME             started as root: switch to this account after binding\n"
		"  --smtp ADDR:PORT        an SMTP smarthost there: mail relayed to each domain's MX under RFC 7672 DANE\n"
		"  --smtp-mx-port PORT     the MX port of the last --smtp (default 25)\n"
		"  --terminate MODE        CONNECT: always (default) terminates every tunnel; dane only where secure\n"
		"                          TLSA records make DANE apply, other names are tunnelled untouched\n"
		"  --state-dir DIR         where the local CA for CONNECT lives (default: /var/lib/daneproxy for root,\n"
		"                          else ~/.local/state/daneproxy)\n" RUNTIME_OPTIONS_HELP);
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

enum { OPT_LISTEN = 1, OPT_ROUTE, OPT_ALLOW, OPT_MAXCONN, OPT_LOG, OPT_STATE_DIR, OPT_PORTS, OPT_TERMINATE, OPT_WORKERS,
       OPT_METRICS, OPT_USER, OPT_SMTP, OPT_SMTP_MX_PORT, OPT_ORIGIN_SESSIONS };
static const struct option longopts[] = {
	RUNTIME_LONG_OPTIONS,
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"route", required_argument, NULL, OPT_ROUTE},
	{"allow-from", required_argument, NULL, OPT_ALLOW},
	{"max-connections", required_argument, NULL, OPT_MAXCONN},
	{"log", required_argument, NULL, OPT_LOG},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"ports", required_argument, NULL, OPT_PORTS},
	{"terminate", required_argument, NULL, OPT_TERMINATE},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"user", required_argument, NULL, OPT_USER},
	{"smtp", required_argument, NULL, OPT_SMTP},
	{"smtp-mx-port", required_argument, NULL, OPT_SMTP_MX_PORT},
	{"origin-sessions", required_argument, NULL, OPT_ORIGIN_SESSIONS},
	{"help", no_argument, NULL, 'h'},
	{NULL, 0, NULL, 0},
};

/* The command line, kept for rebuilding the configuration on SIGHUP. */
struct serve_args {
	int argc;
	char **argv;
};

/* apply_option - one command-line option onto the configuration (the file is loaded first, so options win). */
static void apply_option(struct config *cfg, int opt, const char *arg, int *cli_listen)
{
	char num[16];

	switch (opt) {
	case OPT_LISTEN:
		/* Command-line listeners replace the file's, as every other option overrides it. */
		if (!(*cli_listen)++)
			cfg->listen_set = 0;
		config_set(cfg, "proxy", "listen", arg, "--listen");
		break;
	case OPT_ROUTE: config_set(cfg, "", "route", arg, "--route"); break;
	case OPT_ALLOW: config_set(cfg, "proxy", "allow_from", arg, "--allow-from"); break;
	case OPT_MAXCONN: config_set(cfg, "proxy", "max_connections", arg, "--max-connections"); break;
	case OPT_LOG: config_set(cfg, "proxy", "log", arg, "--log"); break;
	case OPT_STATE_DIR: config_set(cfg, "connect", "state_dir", arg, "--state-dir"); break;
	case OPT_PORTS: config_set(cfg, "proxy", "ports", arg, "--ports"); break;
	case OPT_TERMINATE: config_set(cfg, "connect", "terminate", arg, "--terminate"); break;
	case OPT_WORKERS: config_set(cfg, "proxy", "workers", arg, "--workers"); break;
	case OPT_METRICS: config_set(cfg, "metrics", "listen", arg, "--metrics"); break;
	case OPT_USER: config_set(cfg, "proxy", "user", arg, "--user"); break;
	case OPT_SMTP: config_set(cfg, "", "smtp", arg, "--smtp"); break;
	case OPT_SMTP_MX_PORT: config_set(cfg, "smtp", "mx_port", arg, "--smtp-mx-port"); break;
	case OPT_ORIGIN_SESSIONS: config_set(cfg, "proxy", "origin_sessions", arg, "--origin-sessions"); break;
	case RUNTIME_OPT_RESOLVER: config_set(cfg, "resolver", "upstream", arg, "--resolver"); break;
	case RUNTIME_OPT_TRUST_ANCHOR: config_set(cfg, "resolver", "trust_anchor", arg, "--trust-anchor"); break;
	case RUNTIME_OPT_CA_FILE: config_set(cfg, "policy", "ca_file", arg, "--ca-file"); break;
	case RUNTIME_OPT_POLICY: config_set(cfg, "policy", "default", arg, "--policy"); break;
	case RUNTIME_OPT_DNS_UDP: config_set(cfg, "resolver", "transport", "udp", "--dns-udp"); break;
	case RUNTIME_OPT_EE_NAMECHECK: config_set(cfg, "policy", "ee_namecheck", "yes", "--ee-namecheck"); break;
	case RUNTIME_OPT_VALIDATION: config_set(cfg, "resolver", "validation", arg, "--validation"); break;
	case RUNTIME_OPT_DNS_TIMEOUT:
		snprintf(num, sizeof(num), "%.10sms", arg);
		config_set(cfg, "resolver", "timeout", num, "--dns-timeout");
		break;
	case RUNTIME_OPT_CONNECT_TIMEOUT:
		snprintf(num, sizeof(num), "%.10sms", arg);
		config_set(cfg, "proxy", "connect_timeout", num, "--connect-timeout");
		config_set(cfg, "proxy", "handshake_timeout", num, "--connect-timeout");
		break;
	}
}

/*
 * build_config - the configuration from the embedded defaults, the file (-c), then the options, validated as a
 * whole: at start and again on every SIGHUP (so a reload sees the same command line). Problems are in cfg->errors.
 * Returns 0, or 2 for a usage error (reported here).
 */
static int build_config(struct config *cfg, int argc, char **argv, const char **file_out, int *test_only, int *help)
{
	const char *file = NULL;
	int opt, cli_listen = 0;

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
		if (opt == 'c')
			continue;
		if (opt == 't') {
			*test_only = 1;
		} else if (opt == 'h') {
			*help = 1;
		} else if (opt == '?' || opt == ':') {
			return 2;
		} else {
			apply_option(cfg, opt, optarg, &cli_listen);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "daneproxy: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	config_validate(cfg);
	*file_out = file;
	return 0;
}

/* rebuild - the daemon's SIGHUP: the same command line, the file read again. */
static int rebuild(struct config *cfg, void *arg)
{
	const struct serve_args *a = arg;
	const char *file;
	int test_only = 0, help = 0;

	return build_config(cfg, a->argc, a->argv, &file, &test_only, &help) == 0 ? 0 : -1;
}

int cmd_serve(int argc, char **argv)
{
	static struct serve_args args;
	struct config *cfg;
	const char *file = NULL;
	int test_only = 0, help = 0;

	cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		fprintf(stderr, "daneproxy: out of memory\n");
		return 1;
	}
	if (build_config(cfg, argc, argv, &file, &test_only, &help) != 0) {
		serve_usage(stderr);
		free(cfg);
		return 2;
	}
	if (help) {
		serve_usage(stdout);
		free(cfg);
		return 0;
	}
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
	args.argc = argc;
	args.argv = argv;
	return daemon_run(cfg, rebuild, &args);
}

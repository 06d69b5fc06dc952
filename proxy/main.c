/*
 * main.c - daneproxy entry point: picks the subcommand, or runs the proxy.
 *
 * Read top-down: main() -> cmd_serve() (serve.c) for the daemon, cmd_verify() / cmd_tlsa() for the offline
 * tools built on the DANE engine (dane.c).
 */
#include "commands.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

static const struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} subcommands[] = {
	{"verify", cmd_verify, "check a certificate chain against TLSA records, offline"},
	{"tlsa", cmd_tlsa, "print the TLSA record to publish for a certificate"},
	{"lookup", cmd_lookup, "resolve a host's addresses and TLSA records with DNSSEC, as the proxy does"},
	{"check", cmd_check, "connect to HOST[:PORT] and explain the DANE decision the proxy would take"},
	{"ca", cmd_ca, "show or export the local CA used for CONNECT termination"},
	{"serve", cmd_serve, "run the proxy (the default when no subcommand is given)"},
};

/* usage - the top-level help. */
static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: daneproxy [SUBCOMMAND] [OPTIONS]\n\n"
		     "daneproxy %s - a TLS-terminating, DANE-enforcing forward proxy.\n\nsubcommands:\n",
		DANEPROXY_VERSION);
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-8s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\nWithout a subcommand daneproxy runs the proxy; `daneproxy serve --help` lists its options.\n"
		     "`daneproxy SUBCOMMAND --help` describes each tool.\n");
}

int main(int argc, char **argv)
{
	size_t i;
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("daneproxy %s (wolfSSL %s)\n", DANEPROXY_VERSION, LIBWOLFSSL_VERSION_STRING);
		return 0;
	}
	/* A peer that closes early must cost an EPIPE, never the process (getdns writes to sockets too). */
	signal(SIGPIPE, SIG_IGN);
	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		fprintf(stderr, "daneproxy: cannot initialise wolfSSL\n");
		return 1;
	}
	rc = -1;
	for (i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (argc >= 2 && strcmp(argv[1], subcommands[i].name) == 0) {
			rc = subcommands[i].run(argc - 1, argv + 1);
			break;
		}
	}
	if (rc == -1)
		rc = cmd_serve(argc, argv);
	wolfSSL_Cleanup();
	return rc;
}

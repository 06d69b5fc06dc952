/*
 * test_config.c - unit tests of the configuration (config/config.c).
 *
 * The embedded defaults; INI files with every section and key landing in the right field; every problem in a
 * file reported, each as "FILE:LINE: key: problem" with the line it is on; command-line settings (--route);
 * whole-configuration validation (never an open proxy, no listener twice); network prefixes. Files are
 * parsed from memory (config_load_string) except where the file itself is the point.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

/* ---------- helpers ---------- */

/* new_config - the defaults on the heap (struct config is large); garbage first, so defaults must set all. */
static struct config *new_config(void)
{
	struct config *c = test_malloc(sizeof(*c));

	assert_non_null(c);
	memset(c, 0xa5, sizeof(*c));
	config_defaults(c);
	return c;
}

/* load - a NUL-free INI text named "t.ini"; returns the errors it added. */
static size_t load(struct config *c, const char *text)
{
	return config_load_string(c, text, strlen(text), "t.ini");
}

static void dump_errors(const struct config *c)
{
	size_t i;

	for (i = 0; i < c->n_errors; i++)
		print_message("  error %zu: %s\n", i, c->errors[i]);
}

/* expect_errors - exactly these errors, in this order; every mismatch is printed before failing. */
static void expect_errors(const struct config *c, const char *const *want, size_t n)
{
	size_t i, max = n > c->n_errors ? n : c->n_errors;
	int bad = 0;

	for (i = 0; i < max; i++) {
		const char *got = i < c->n_errors ? c->errors[i] : "(none)";
		const char *exp = i < n ? want[i] : "(none)";
		if (strcmp(got, exp) != 0) {
			print_error("error %zu:\n   got: %s\n  want: %s\n", i, got, exp);
			bad = 1;
		}
	}
	if (bad)
		fail_msg("%zu errors, %zu expected", c->n_errors, n);
}

/* find_error - index of the first error starting with prefix and containing part, or -1. */
static int find_error(const struct config *c, const char *prefix, const char *part)
{
	size_t i;

	for (i = 0; i < c->n_errors; i++)
		if (strncmp(c->errors[i], prefix, strlen(prefix)) == 0 && strstr(c->errors[i], part) != NULL)
			return (int)i;
	return -1;
}

static void expect_no_errors(const struct config *c)
{
	if (c->n_errors != 0) {
		dump_errors(c);
		fail_msg("%zu unexpected errors", c->n_errors);
	}
}

/* v4 / v6 - an address as bytes (4 or 16). */
static void v4(const char *s, uint8_t out[4])
{
	assert_int_equal(inet_pton(AF_INET, s, out), 1);
}

static void v6(const char *s, uint8_t out[16])
{
	assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static void check_addr(const struct config_addr *a, const char *text, int family, const char *ip, uint16_t port,
		       int loopback)
{
	uint8_t want[16] = {0};

	assert_string_equal(a->text, text);
	assert_int_equal(a->family, family);
	assert_int_equal(inet_pton(family, ip, want), 1);
	assert_memory_equal(a->addr, want, family == AF_INET ? 4 : 16);
	assert_int_equal(a->port, port);
	assert_int_equal(a->loopback, loopback);
}

/* ---------- defaults ---------- */

static void test_defaults(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(c->n_listen, 1);
	assert_int_equal(c->listen_set, 0);
	check_addr(&c->listen[0], "127.0.0.1:8080", AF_INET, "127.0.0.1", 8080, 1);
	assert_int_equal(c->n_allow_from, 0);
	assert_int_equal(c->max_connections, 1024);
	assert_int_equal(c->idle_timeout_ms, 300000);
	assert_int_equal(c->header_timeout_ms, 30000);
	assert_int_equal(c->connect_timeout_ms, 10000);
	assert_int_equal(c->handshake_timeout_ms, 10000);
	assert_int_equal(c->shutdown_grace_ms, 10000);
	assert_int_equal(c->origin_sessions, 1024);
	assert_string_equal(c->log, "stderr");
	assert_string_equal(c->state_dir, "");
	assert_int_equal(c->n_ports, 5);
	assert_int_equal(c->ports[0].lo, 443);
	assert_int_equal(c->ports[1].lo, 465);
	assert_int_equal(c->ports[2].lo, 993);
	assert_int_equal(c->ports[3].lo, 995);
	assert_int_equal(c->ports[4].lo, 8443);
	assert_int_equal(c->ports_set, 0);
	assert_int_equal(c->n_passthrough, 0);
	assert_int_equal(c->mint_cache_size, 1000);
	assert_int_equal(c->n_upstreams, 0);
	assert_string_equal(c->trust_anchor, "");
	assert_int_equal(c->dns_udp, 0);
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->cache_size, 10000);
	assert_int_equal(c->ttl_min_s, 5);
	assert_int_equal(c->ttl_max_s, 3600);
	assert_int_equal(c->failure_ttl_s, 2);
	assert_string_equal(c->policy, "dane");
	assert_string_equal(c->ca_file, "");
	assert_int_equal(c->ee_namecheck, 0);
	assert_int_equal(c->n_rules, 0);
	assert_int_equal(c->n_routes, 0);
	assert_int_equal(c->n_errors, 0);
	assert_int_equal(c->n_errors_dropped, 0);
	/* The defaults are a valid configuration. */
	assert_int_equal(config_validate(c), 0);
	expect_no_errors(c);
	test_free(c);
}

/* ---------- a complete, valid file ---------- */

static const char full_ini[] =
	"; daneproxy: every section and key\n"
	"# hash comments too\n"
	"\n"
	"[proxy]\n"
	"listen = 127.0.0.1:3128          ; inline comment\n"
	"listen = [::1]:3128\n"
	"allow_from = 10.0.0.0/8\n"
	"allow_from = 2001:db8::/32\n"
	"allow_from = 192.0.2.7\n"
	"max_connections = 500\n"
	"idle_timeout = 5m\n"
	"header_timeout = 1h\n"
	"connect_timeout = 500ms\n"
	"handshake_timeout = 10s\n"
	"shutdown_grace = 0\n"
	"log = /var/log/daneproxy.json\n"
	"\n"
	"[connect]\n"
	"state_dir = /var/lib/daneproxy\n"
	"ports = 443, 8443\n"
	"ports = 993\n"
	"passthrough = pinned.example.com\n"
	"passthrough = *.bank.example\n"
	"mint_cache_size = 50\n"
	"\n"
	"[resolver]\n"
	"upstream = 127.0.0.53\n"
	"upstream = [2001:db8::53]@5353\n"
	"upstream = 192.0.2.1@53\n"
	"trust_anchor = /etc/daneproxy/root.key\n"
	"transport = tcp\n"
	"timeout = 3\n"
	"cache_size = 2000\n"
	"ttl_min = 10\n"
	"ttl_max = 600\n"
	"failure_ttl = 1\n"
	"\n"
	"[policy]\n"
	"default = dane-only\n"
	"ca_file = /etc/ssl/certs/ca-certificates.crt\n"
	"ee_namecheck = yes\n"
	"rule = *.example.com:443 pkix\n"
	"rule = mail.example.net dane\n"
	"rule = *    dane-only\n"
	"\n"
	"[route smtp]\n"
	"listen = 127.0.0.1:2525\n"
	"target = mail.example.net:25\n"
	"policy = dane-only\n"
	"starttls = smtp\n"
	"\n"
	"[route web]\n"
	"listen = [::1]:8443\n"
	"target = www.example.org:443\n"
	"starttls = none\n"
	"\n"
	"[route v6]\n"
	"listen = 127.0.0.1:2526\n"
	"target = [2001:db8::25]:25\n"
	"policy = pkix\n";

static void check_full(const struct config *c)
{
	expect_no_errors(c);

	/* [proxy] */
	assert_int_equal(c->listen_set, 1);
	assert_int_equal(c->n_listen, 2);
	check_addr(&c->listen[0], "127.0.0.1:3128", AF_INET, "127.0.0.1", 3128, 1);
	check_addr(&c->listen[1], "[::1]:3128", AF_INET6, "::1", 3128, 1);
	assert_int_equal(c->n_allow_from, 3);
	assert_int_equal(c->allow_from[0].family, AF_INET);
	assert_int_equal(c->allow_from[0].prefix, 8);
	assert_int_equal(c->allow_from[0].addr[0], 10);
	assert_int_equal(c->allow_from[1].family, AF_INET6);
	assert_int_equal(c->allow_from[1].prefix, 32);
	assert_int_equal(c->allow_from[1].addr[0], 0x20);
	assert_int_equal(c->allow_from[1].addr[1], 0x01);
	assert_int_equal(c->allow_from[1].addr[2], 0x0d);
	assert_int_equal(c->allow_from[1].addr[3], 0xb8);
	assert_int_equal(c->allow_from[2].family, AF_INET);
	assert_int_equal(c->allow_from[2].prefix, 32);   /* a bare address is a host network */
	assert_int_equal(c->max_connections, 500);
	assert_int_equal(c->idle_timeout_ms, 5 * 60 * 1000);
	assert_int_equal(c->header_timeout_ms, 60 * 60 * 1000);
	assert_int_equal(c->connect_timeout_ms, 500);
	assert_int_equal(c->handshake_timeout_ms, 10 * 1000);
	assert_int_equal(c->shutdown_grace_ms, 0);
	assert_string_equal(c->log, "/var/log/daneproxy.json");

	/* [connect] */
	assert_string_equal(c->state_dir, "/var/lib/daneproxy");
	assert_int_equal(c->ports_set, 1);
	assert_int_equal(c->n_ports, 3);   /* the defaults replaced, then appended to */
	assert_int_equal(c->ports[0].lo, 443);
	assert_int_equal(c->ports[1].lo, 8443);
	assert_int_equal(c->ports[2].lo, 993);
	assert_int_equal(c->n_passthrough, 2);
	assert_string_equal(c->passthrough[0], "pinned.example.com");
	assert_string_equal(c->passthrough[1], "*.bank.example");
	assert_int_equal(c->mint_cache_size, 50);

	/* [resolver] */
	assert_int_equal(c->n_upstreams, 3);
	assert_string_equal(c->upstreams[0], "127.0.0.53");
	assert_string_equal(c->upstreams[1], "[2001:db8::53]@5353");
	assert_string_equal(c->upstreams[2], "192.0.2.1@53");
	assert_string_equal(c->trust_anchor, "/etc/daneproxy/root.key");
	assert_int_equal(c->dns_udp, 0);
	assert_int_equal(c->dns_timeout_ms, 3000);   /* a bare number is seconds */
	assert_int_equal(c->cache_size, 2000);
	assert_int_equal(c->ttl_min_s, 10);
	assert_int_equal(c->ttl_max_s, 600);
	assert_int_equal(c->failure_ttl_s, 1);

	/* [policy] */
	assert_string_equal(c->policy, "dane-only");
	assert_string_equal(c->ca_file, "/etc/ssl/certs/ca-certificates.crt");
	assert_int_equal(c->ee_namecheck, 1);
	assert_int_equal(c->n_rules, 3);
	assert_string_equal(c->rules[0].pattern, "*.example.com");
	assert_int_equal(c->rules[0].port, 443);
	assert_string_equal(c->rules[0].policy, "pkix");
	assert_string_equal(c->rules[1].pattern, "mail.example.net");
	assert_int_equal(c->rules[1].port, 0);
	assert_string_equal(c->rules[1].policy, "dane");
	assert_string_equal(c->rules[2].pattern, "*");
	assert_int_equal(c->rules[2].port, 0);
	assert_string_equal(c->rules[2].policy, "dane-only");

	/* [route NAME] */
	assert_int_equal(c->n_routes, 3);
	assert_string_equal(c->routes[0].name, "smtp");
	check_addr(&c->routes[0].listen, "127.0.0.1:2525", AF_INET, "127.0.0.1", 2525, 1);
	assert_string_equal(c->routes[0].host, "mail.example.net");
	assert_int_equal(c->routes[0].port, 25);
	assert_string_equal(c->routes[0].policy, "dane-only");
	assert_string_equal(c->routes[0].starttls, "smtp");
	assert_string_equal(c->routes[1].name, "web");
	check_addr(&c->routes[1].listen, "[::1]:8443", AF_INET6, "::1", 8443, 1);
	assert_string_equal(c->routes[1].host, "www.example.org");
	assert_int_equal(c->routes[1].port, 443);
	assert_string_equal(c->routes[1].policy, "");     /* the rules / default decide */
	assert_string_equal(c->routes[1].starttls, "");   /* "none" */
	assert_string_equal(c->routes[2].name, "v6");
	assert_string_equal(c->routes[2].host, "2001:db8::25");   /* brackets removed */
	assert_int_equal(c->routes[2].port, 25);
	assert_string_equal(c->routes[2].policy, "pkix");
}

static void test_full_file(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, full_ini), 0);
	check_full(c);
	assert_int_equal(config_validate(c), 0);
	expect_no_errors(c);
	test_free(c);
}

/* The same file with CRLF line ends. */
static void test_full_file_crlf(void **state)
{
	struct config *c = new_config();
	char *crlf = test_malloc(2 * sizeof(full_ini));
	size_t i, n = 0;

	(void)state;
	for (i = 0; full_ini[i] != '\0'; i++) {
		if (full_ini[i] == '\n')
			crlf[n++] = '\r';
		crlf[n++] = full_ini[i];
	}
	crlf[n] = '\0';
	assert_int_equal(load(c, crlf), 0);
	check_full(c);
	test_free(crlf);
	test_free(c);
}

/* The same file from disk through config_load_file. */
static void test_full_file_from_disk(void **state)
{
	struct config *c = new_config();
	char path[] = "/tmp/daneproxy-test-config-XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, full_ini, strlen(full_ini)), (ssize_t)strlen(full_ini));
	close(fd);
	assert_int_equal(config_load_file(c, path), 0);
	check_full(c);
	unlink(path);
	test_free(c);
}

/* ---------- every error, with its line ---------- */

/* build_bad_ini - the file below, with a 199-byte line 8 and a NUL byte on line 9; returns its length. */
static size_t build_bad_ini(char *buf, size_t cap)
{
	static const char head[] = "; several mistakes, each reported with its line\n"   /* 1 */
				   "[proxy]\n"                                         /* 2 */
				   "colour = blue\n"                                   /* 3: unknown key */
				   "max_connections = 12abc\n"                         /* 4: bad number */
				   "max_connections = 0\n"                             /* 5: out of range */
				   "idle_timeout = 10x\n"                              /* 6: bad duration */
				   "listen = localhost:8080\n";                        /* 7: bad address */
	static const char nul_line[] = "header_timeout = 5\0s\n";             /* 9: NUL byte */
	static const char tail[] = "[nowhere]\n"                              /* 10 */
				   "key = value\n"                                     /* 11: unknown section */
				   "[policy]\n"                                        /* 12 */
				   "default = strict\n"                                /* 13: bad policy */
				   "rule = example.com\n"                              /* 14: bad rule */
				   "[resolver]\n"                                      /* 15 */
				   "upstream = 192.0.2.1@99999\n"                      /* 16: bad upstream */
				   "[route lonely]\n"                                  /* 17 */
				   "listen = 127.0.0.1:2526\n"                         /* 18: no target (validate) */
				   "policy = dane\n"                                   /* 19 */
				   "[proxy]\n"                                         /* 20 */
				   "connect_timeout = 2s\n"                            /* 21: fine, still applied */
				   "listen = 127.0.0.1:3128\n";                        /* 22: fine */
	size_t n = 0;

	assert_true(cap > sizeof(head) + 200 + sizeof(nul_line) + sizeof(tail));
	memcpy(buf + n, head, sizeof(head) - 1);
	n += sizeof(head) - 1;
	/* line 8: "log = /aaa...a", 199 bytes before its LF */
	memcpy(buf + n, "log = /", 7);
	memset(buf + n + 7, 'a', 199 - 7);
	n += 199;
	buf[n++] = '\n';
	memcpy(buf + n, nul_line, sizeof(nul_line) - 1);
	n += sizeof(nul_line) - 1;
	memcpy(buf + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	return n;
}

static void test_every_error_with_line(void **state)
{
	static const char *const want[] = {
		"bad.ini:3: colour: unknown key in section [proxy]",
		"bad.ini:4: max_connections: \"12abc\" is not a whole number from 1 to 1000000",
		"bad.ini:5: max_connections: \"0\" is not a whole number from 1 to 1000000",
		"bad.ini:6: idle_timeout: \"10x\" is not a duration from 100ms to 86400s (e.g. 500ms, 10s, 5m)",
		"bad.ini:7: listen: \"localhost:8080\" is not IPv4:PORT or [IPv6]:PORT",
		"bad.ini:8: line: longer than 198 bytes",
		"bad.ini:9: line: contains a NUL byte",
		"bad.ini:11: key: unknown section [nowhere] (proxy, connect, resolver, policy, metrics, route NAME, smtp NAME)",
		"bad.ini:13: default: \"strict\" is not dane, dane-only or pkix",
		"bad.ini:14: rule: \"example.com\": expected \"PATTERN[:PORT] MODE\", e.g. \"*.example.com dane-only\"",
		"bad.ini:16: upstream: \"192.0.2.1@99999\" is not IP, IP@PORT or [IPv6]@PORT",
	};
	struct config *c = new_config();
	char buf[2048];
	size_t len = build_bad_ini(buf, sizeof(buf));
	int i;

	(void)state;
	assert_int_equal(config_load_string(c, buf, len, "bad.ini"), sizeof(want) / sizeof(want[0]));
	expect_errors(c, want, sizeof(want) / sizeof(want[0]));

	/* The good lines around the bad ones still took effect; the bad ones changed nothing. */
	assert_int_equal(c->connect_timeout_ms, 2000);
	assert_int_equal(c->n_listen, 1);
	check_addr(&c->listen[0], "127.0.0.1:3128", AF_INET, "127.0.0.1", 3128, 1);
	assert_int_equal(c->max_connections, 1024);
	assert_int_equal(c->idle_timeout_ms, 300000);
	assert_int_equal(c->header_timeout_ms, 30000);
	assert_string_equal(c->log, "stderr");
	assert_string_equal(c->policy, "dane");
	assert_int_equal(c->n_rules, 0);
	assert_int_equal(c->n_upstreams, 0);
	assert_int_equal(c->n_routes, 1);

	/* Validation adds the route without a target, named by its file and a line. */
	assert_int_equal(config_validate(c), 1);
	assert_int_equal(c->n_errors, sizeof(want) / sizeof(want[0]) + 1);
	i = find_error(c, "bad.ini:", ": route: route \"lonely\" has no target HOST:PORT");
	if (i < 0) {
		dump_errors(c);
		fail_msg("no error for the route without a target");
	}
	assert_int_equal(i, (int)(sizeof(want) / sizeof(want[0])));
	test_free(c);
}

/* A route without a target is reported at its [route NAME] line (line 2), not at one of its keys. */
static void test_route_without_target_line(void **state)
{
	static const char *const want[] = {"t.ini:2: route: route \"lonely\" has no target HOST:PORT"};
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, "[proxy]\n"
				 "[route lonely]\n"
				 "; a comment line\n"
				 "policy = dane\n"
				 "listen = 127.0.0.1:2526\n"),
			 0);
	assert_int_equal(config_validate(c), 1);
	expect_errors(c, want, 1);
	test_free(c);
}

/* A route section with no keys at all is still a route without a target: it is not silently dropped. */
static void test_empty_route_section(void **state)
{
	struct config *c = new_config();
	size_t errs;

	(void)state;
	errs = load(c, "[route forgotten]\n; listen = 127.0.0.1:2525\n; target = mail.example.net:25\n");
	errs += config_validate(c);
	if (errs == 0 || find_error(c, "t.ini:1: ", "forgotten") < 0) {
		dump_errors(c);
		fail_msg("an empty [route forgotten] section at t.ini:1 was accepted without a word");
	}
	test_free(c);
}

/* Syntax errors are errors like the others: every one is reported, each at its line. */
static void test_every_syntax_error(void **state)
{
	static const char *const want[] = {
		"t.ini:2: syntax: expected [section], key = value, or a ; comment",
		"t.ini:4: syntax: section header without ']'",
		"t.ini:5: syntax: expected [section], key = value, or a ; comment",
	};
	struct config *c = new_config();

	(void)state;
	load(c, "[proxy]\n"
		"this line has no equals sign\n"
		"max_connections = 10\n"
		"[unterminated\n"
		"another line without one\n");
	expect_errors(c, want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(c->max_connections, 10);
	test_free(c);
}

/* Lines of up to 198 bytes are read; 199 is too long (and nothing of it is applied). */
static void test_line_length_limit(void **state)
{
	static const char *const want[] = {"t.ini:3: line: longer than 198 bytes"};
	struct config *c = new_config();
	char buf[1024], *p = buf;

	(void)state;
	p += sprintf(p, "[proxy]\nlog = /");
	memset(p, 'b', 198 - 7);
	p += 198 - 7;
	p += sprintf(p, "\nca_file = /");
	memset(p, 'c', 199 - 11);
	p += 199 - 11;
	p += sprintf(p, "\n");
	assert_int_equal(load(c, buf), 1);
	expect_errors(c, want, 1);
	assert_int_equal(strlen(c->log), 198 - 6);
	assert_string_equal(c->ca_file, "");
	test_free(c);
}

/* A NUL byte anywhere in a line: reported at its line, and the line is not applied. */
static void test_nul_byte(void **state)
{
	static const char text[] = "[proxy]\nmax_connections = 7\0 7\nlog = /x\n\0\n";
	static const char *const want[] = {"nul.ini:2: line: contains a NUL byte", "nul.ini:4: line: contains a NUL byte"};
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_load_string(c, text, sizeof(text) - 1, "nul.ini"), 2);
	expect_errors(c, want, 2);
	assert_int_equal(c->max_connections, 1024);
	assert_string_equal(c->log, "/x");
	test_free(c);
}

static void test_route_errors(void **state)
{
	static const char *const want[] = {
		"t.ini:2: color: unknown key in a [route] section (listen, target, policy, starttls)",
		"t.ini:3: listen: \"127.0.0.1\" is not IPv4:PORT or [IPv6]:PORT",
		"t.ini:4: target: \"mail.example.net\" is not HOST:PORT",
		"t.ini:5: target: \"bad host!:25\" is not HOST:PORT",
		"t.ini:6: target: \"mail.example.net:0\" is not HOST:PORT",
		"t.ini:7: policy: \"strict\" is not dane, dane-only or pkix",
		"t.ini:8: starttls: \"imap\" is not smtp or none",
		"t.ini:10: listen: a route section needs a name: [route NAME]",
	};
	struct config *c = new_config();

	(void)state;
	load(c, "[route r]\n"
		"color = red\n"
		"listen = 127.0.0.1\n"
		"target = mail.example.net\n"
		"target = bad host!:25\n"
		"target = mail.example.net:0\n"
		"policy = strict\n"
		"starttls = imap\n"
		"[route ]\n"
		"listen = 127.0.0.1:2525\n");
	expect_errors(c, want, sizeof(want) / sizeof(want[0]));
	test_free(c);
}

/* Indented lines: each key either takes effect or is reported; none is silently swallowed by the previous one. */
static void test_indented_keys_not_swallowed(void **state)
{
	struct config *c = new_config();

	(void)state;
	load(c, "[policy]\n"
		"  ca_file = /etc/ssl/ca.pem\n"
		"  ee_namecheck = yes\n");
	if (c->n_errors == 0 && !(c->ee_namecheck == 1 && strcmp(c->ca_file, "/etc/ssl/ca.pem") == 0))
		fail_msg("no error, yet ee_namecheck = %d and ca_file = \"%s\"", c->ee_namecheck, c->ca_file);
	test_free(c);
}

/* ---------- value types ---------- */

static void test_durations(void **state)
{
	static const struct {
		const char *value;
		unsigned ms;
	} good[] = {
		{"500ms", 500}, {"10s", 10000}, {"5m", 300000}, {"1h", 3600000}, {"7", 7000},
		{"100ms", 100}, {"24h", 86400000}, {"1440m", 86400000}, {"86400", 86400000},
	};
	static const char *const bad[] = {"",     "ms",   "10 s", "1.5s", "-1s", "10S", "1d",  "10sec",
					  "s10", "99ms", "25h",  "0",    "10x", "0x10", "1e3", "99999999999999999999"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config *c = new_config();
		if (config_set(c, "proxy", "idle_timeout", good[i].value, "--test") != 0) {
			dump_errors(c);
			fail_msg("\"%s\" rejected", good[i].value);
		}
		assert_int_equal(c->idle_timeout_ms, good[i].ms);
		test_free(c);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = new_config();
		if (config_set(c, "proxy", "idle_timeout", bad[i], "--test") != -1)
			fail_msg("\"%s\" accepted as %u ms", bad[i], c->idle_timeout_ms);
		assert_int_equal(c->n_errors, 1);
		assert_int_equal(c->idle_timeout_ms, 300000);
		test_free(c);
	}
}

/* shutdown_grace may be zero; a duration that overflows 32 bits of milliseconds is an error, not a wrap. */
static void test_duration_edges(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "proxy", "shutdown_grace", "0ms", "--test"), 0);
	assert_int_equal(c->shutdown_grace_ms, 0);
	assert_int_equal(config_set(c, "proxy", "shutdown_grace", "1h", "--test"), 0);
	assert_int_equal(c->shutdown_grace_ms, 3600000);
	assert_int_equal(config_set(c, "proxy", "shutdown_grace", "61m", "--test"), -1);
	assert_int_equal(config_set(c, "proxy", "idle_timeout", "4294968s", "--test"), -1);
	assert_int_equal(config_set(c, "proxy", "idle_timeout", "1193047h", "--test"), -1);
	assert_int_equal(c->idle_timeout_ms, 300000);
	assert_int_equal(c->shutdown_grace_ms, 3600000);
	assert_int_equal(config_set(c, "resolver", "timeout", "11m", "--test"), -1);
	assert_int_equal(config_set(c, "resolver", "timeout", "10m", "--test"), 0);
	assert_int_equal(c->dns_timeout_ms, 600000);
	test_free(c);
}

static void test_numbers(void **state)
{
	static const char *const bad[] = {"", "+5", "-1", "0x10", "1e3", "5 5", "4294967296", "99999999999999999999",
					  "0", "1000001", "ten"};
	size_t i;
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "proxy", "max_connections", "1", "--test"), 0);
	assert_int_equal(c->max_connections, 1);
	assert_int_equal(config_set(c, "proxy", "max_connections", "1000000", "--test"), 0);
	assert_int_equal(c->max_connections, 1000000);
	assert_int_equal(config_set(c, "proxy", "max_connections", "007", "--test"), 0);
	assert_int_equal(c->max_connections, 7);
	test_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = new_config();
		if (config_set(c, "proxy", "max_connections", bad[i], "--test") != -1)
			fail_msg("max_connections \"%s\" accepted as %u", bad[i], c->max_connections);
		assert_int_equal(c->max_connections, 1024);
		assert_int_equal(c->n_errors, 1);
		test_free(c);
	}
	/* Ranges that include zero. */
	c = new_config();
	assert_int_equal(config_set(c, "resolver", "ttl_min", "0", "--test"), 0);
	assert_int_equal(config_set(c, "resolver", "failure_ttl", "0", "--test"), 0);
	assert_int_equal(config_set(c, "resolver", "failure_ttl", "3601", "--test"), -1);
	assert_int_equal(config_set(c, "resolver", "ttl_max", "0", "--test"), -1);
	assert_int_equal(config_set(c, "resolver", "ttl_max", "604800", "--test"), 0);
	assert_int_equal(config_set(c, "resolver", "ttl_max", "604801", "--test"), -1);
	assert_int_equal(c->ttl_min_s, 0);
	assert_int_equal(c->failure_ttl_s, 0);
	assert_int_equal(c->ttl_max_s, 604800);
	test_free(c);
}

/* [proxy] origin_sessions: a count from 0 (resumption off) to 1000000; anything else is an error with its line,
 * and the value before it stays. */
static void test_origin_sessions(void **state)
{
	static const char *const bad[] = {"-1", "1000001", "4294967296", "lots", "", "12 sessions", "+5", "1e3"};
	char ini[64], want[160];
	size_t i;
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, "[proxy]\norigin_sessions = 5000\n"), 0);
	assert_int_equal(c->origin_sessions, 5000);
	assert_int_equal(load(c, "[proxy]\norigin_sessions = 0\n"), 0);
	assert_int_equal(c->origin_sessions, 0);
	assert_int_equal(config_set(c, "proxy", "origin_sessions", "1000000", "--origin-sessions"), 0);
	assert_int_equal(c->origin_sessions, 1000000);
	assert_int_equal(config_set(c, "proxy", "origin_sessions", "1", "--origin-sessions"), 0);
	assert_int_equal(c->origin_sessions, 1);
	expect_no_errors(c);
	assert_int_equal(config_validate(c), 0);
	test_free(c);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = new_config();
		snprintf(ini, sizeof(ini), "[proxy]\n; the count\norigin_sessions = %s\n", bad[i]);
		if (load(c, ini) != 1) {
			dump_errors(c);
			fail_msg("origin_sessions = \"%s\": %zu errors, 1 expected", bad[i], c->n_errors);
		}
		snprintf(want, sizeof(want), "t.ini:3: origin_sessions: \"%s\" is not a whole number from 0 to 1000000",
			 bad[i]);
		expect_errors(c, (const char *const[]){want}, 1);
		assert_int_equal(c->origin_sessions, 1024);
		test_free(c);
		c = new_config();
		assert_int_equal(config_set(c, "proxy", "origin_sessions", bad[i], "--origin-sessions"), -1);
		snprintf(want, sizeof(want),
			 "--origin-sessions: origin_sessions: \"%s\" is not a whole number from 0 to 1000000", bad[i]);
		expect_errors(c, (const char *const[]){want}, 1);
		assert_int_equal(c->origin_sessions, 1024);
		test_free(c);
	}
}

static void test_bools_transport_paths(void **state)
{
	static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True"};
	static const char *const no[] = {"no", "false", "off", "0", "NO", "Off"};
	size_t i;
	struct config *c = new_config();

	(void)state;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		c->ee_namecheck = 0;
		assert_int_equal(config_set(c, "policy", "ee_namecheck", yes[i], "--test"), 0);
		assert_int_equal(c->ee_namecheck, 1);
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		c->ee_namecheck = 1;
		assert_int_equal(config_set(c, "policy", "ee_namecheck", no[i], "--test"), 0);
		assert_int_equal(c->ee_namecheck, 0);
	}
	assert_int_equal(config_set(c, "policy", "ee_namecheck", "maybe", "--test"), -1);
	assert_int_equal(config_set(c, "policy", "ee_namecheck", "2", "--test"), -1);
	/* UDP is refused for the daemon: getdns 1.6.0 crashes on lost or truncated UDP answers. */
	assert_int_equal(config_set(c, "resolver", "transport", "udp", "--test"), -1);
	assert_int_equal(c->dns_udp, 0);
	assert_int_equal(config_set(c, "resolver", "transport", "tcp", "--test"), 0);
	assert_int_equal(c->dns_udp, 0);
	assert_int_equal(config_set(c, "resolver", "transport", "quic", "--test"), -1);
	assert_int_equal(config_set(c, "policy", "ca_file", "", "--ca-file"), -1);
	assert_int_equal(config_set(c, "resolver", "trust_anchor", "/k", "--trust-anchor"), 0);
	assert_string_equal(c->trust_anchor, "/k");
	assert_int_equal(c->n_errors, 5);
	assert_string_equal(c->errors[0], "--test: ee_namecheck: \"maybe\" is not yes or no");
	assert_string_equal(c->errors[2],
			    "--test: transport: udp is refused: getdns 1.6.0 crashes on lost or truncated UDP answers; use tcp");
	assert_string_equal(c->errors[3], "--test: transport: \"quic\" is not tcp or udp");
	assert_string_equal(c->errors[4], "--ca-file: ca_file: needs a path of 1 to 1023 bytes");
	test_free(c);
}

/* [policy] digests: the DANE digest preference, strongest first (issue 11); bad values are "file:line: digests: ...". */
static void test_policy_digests(void **state)
{
	static const char *const want[] = {
		"t.ini:3: digests: \"md5\" is not sha256 or sha512",
		"t.ini:4: digests: sha256 is listed twice",
		"t.ini:5: digests: needs at least one of sha256, sha512",
		"t.ini:6: digests: \"sha384\" is not sha256 or sha512",
	};
	struct config *c = new_config();

	(void)state;
	assert_int_equal(c->digests[0], 0);   /* the engine's default: sha512, then sha256 */
	assert_int_equal(load(c, "[policy]\ndigests = sha512, sha256\n"), 0);
	expect_no_errors(c);
	assert_memory_equal(c->digests, ((uint8_t[4]){2, 1, 0, 0}), 4);
	assert_int_equal(load(c, "[policy]\ndigests = SHA256,sha512\n"), 0);
	expect_no_errors(c);
	assert_memory_equal(c->digests, ((uint8_t[4]){1, 2, 0, 0}), 4);
	assert_int_equal(load(c, "[policy]\ndigests = sha256\n"), 0);
	expect_no_errors(c);
	assert_memory_equal(c->digests, ((uint8_t[4]){1, 0, 0, 0}), 4);
	assert_int_equal(config_set(c, "policy", "digests", "sha512 sha256", "--test"), 0);
	assert_memory_equal(c->digests, ((uint8_t[4]){2, 1, 0, 0}), 4);

	assert_int_equal(load(c, "[policy]\n"
				 "digests = sha256\n"
				 "digests = md5\n"
				 "digests = sha256, sha256\n"
				 "digests =\n"
				 "digests = sha512, sha384\n"),
			 4);
	expect_errors(c, want, 4);
	assert_memory_equal(c->digests, ((uint8_t[4]){1, 0, 0, 0}), 4);   /* the last good value stays */
	test_free(c);
}

static void test_rules(void **state)
{
	static const char *const bad[] = {
		"example.com",           "example.com strict",  "example.com:99999 dane", "example.com:0 dane",
		"*example.com dane",     "a.*.example.com dane", "foo..com dane",        "exa mple.com dane",
		"example.com: dane",     "*. dane",             " dane",                 "example.com dane extra",
	};
	struct config *c = new_config();
	size_t i;

	(void)state;
	assert_int_equal(config_set(c, "policy", "rule", "Example.COM:25 dane-only", "--test"), 0);
	assert_int_equal(config_set(c, "policy", "rule", "*.example.org pkix  ", "--test"), 0);
	assert_int_equal(config_set(c, "policy", "rule", "_smtp.example.net dane", "--test"), 0);
	assert_int_equal(c->n_rules, 3);
	assert_string_equal(c->rules[0].pattern, "example.com");   /* names are kept in their one normal form */
	assert_int_equal(c->rules[0].port, 25);
	assert_string_equal(c->rules[0].policy, "dane-only");
	assert_string_equal(c->rules[1].pattern, "*.example.org");
	assert_string_equal(c->rules[1].policy, "pkix");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_set(c, "policy", "rule", bad[i], "--test") != -1)
			fail_msg("rule \"%s\" accepted", bad[i]);
	assert_int_equal(c->n_rules, 3);
	assert_int_equal(c->n_errors, sizeof(bad) / sizeof(bad[0]));
	assert_string_equal(c->errors[1], "--test: rule: \"example.com strict\": mode must be dane, dane-only or pkix");
	assert_string_equal(c->errors[2], "--test: rule: \"example.com:99999 dane\": bad port in the pattern");
	assert_string_equal(c->errors[4], "--test: rule: \"*example.com dane\": pattern must be a host name, *.domain or *");
	test_free(c);
}

static void test_upstreams_and_addresses(void **state)
{
	static const char *const bad_up[] = {"", "resolver.example", "192.0.2.1@", "192.0.2.1@0", "192.0.2.1@65536",
					     "[192.0.2.1]x", "2001:db8::1@53x", "@53"};
	static const char *const bad_listen[] = {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
						 ":8080", "::1:8080x", "[::1]", "localhost:8080", "256.0.0.1:80",
						 "[127.0.0.1]x:80"};
	struct config *c = new_config();
	size_t i;

	(void)state;
	assert_int_equal(config_set(c, "resolver", "upstream", "2001:db8::53", "--resolver"), 0);
	assert_int_equal(config_set(c, "resolver", "upstream", "[2001:db8::53]@53", "--resolver"), 0);
	assert_int_equal(config_set(c, "resolver", "upstream", "192.0.2.53@65535", "--resolver"), 0);
	assert_int_equal(c->n_upstreams, 3);
	for (i = 0; i < sizeof(bad_up) / sizeof(bad_up[0]); i++)
		if (config_set(c, "resolver", "upstream", bad_up[i], "--resolver") != -1)
			fail_msg("upstream \"%s\" accepted", bad_up[i]);
	assert_int_equal(c->n_upstreams, 3);

	assert_int_equal(config_set(c, "proxy", "listen", "0.0.0.0:3128", "--listen"), 0);
	assert_int_equal(config_set(c, "proxy", "listen", "[2001:db8::1]:65535", "--listen"), 0);
	assert_int_equal(c->n_listen, 2);   /* the first explicit listen replaced the default */
	check_addr(&c->listen[0], "0.0.0.0:3128", AF_INET, "0.0.0.0", 3128, 0);
	check_addr(&c->listen[1], "[2001:db8::1]:65535", AF_INET6, "2001:db8::1", 65535, 0);
	for (i = 0; i < sizeof(bad_listen) / sizeof(bad_listen[0]); i++)
		if (config_set(c, "proxy", "listen", bad_listen[i], "--listen") != -1)
			fail_msg("listen \"%s\" accepted", bad_listen[i]);
	assert_int_equal(c->n_listen, 2);
	test_free(c);
}

static void test_connect_section(void **state)
{
	static const char *const bad_ports[] = {"", ",", "0", "65536", "443,x", "443;8443", "-443", "443 8443x",
						"12345678", "4 43x"};
	static const char *const bad_pass[] = {"", "*example.com", "a.*.example", "exa mple.com", "*.", "foo..bar"};
	struct config *c = new_config();
	size_t i;

	(void)state;
	assert_int_equal(config_set(c, "connect", "ports", " 8443 ,, 9443,", "--test"), 0);
	assert_int_equal(c->n_ports, 2);
	assert_int_equal(c->ports[0].lo, 8443);
	assert_int_equal(c->ports[1].lo, 9443);
	assert_int_equal(config_set(c, "connect", "ports", "1,65535", "--test"), 0);
	assert_int_equal(c->n_ports, 4);
	assert_int_equal(c->ports[3].lo, 65535);
	assert_int_equal(config_set(c, "connect", "passthrough", "*", "--test"), 0);
	assert_int_equal(config_set(c, "connect", "passthrough", "Pinned.Example.COM.", "--test"), 0);
	assert_int_equal(config_set(c, "connect", "passthrough", "192.0.2.1", "--test"), 0);
	assert_int_equal(c->n_passthrough, 3);
	assert_int_equal(config_set(c, "connect", "mint_cache_size", "0", "--test"), -1);
	assert_int_equal(config_set(c, "connect", "state_dir", "/s", "--test"), 0);
	assert_string_equal(c->state_dir, "/s");
	assert_int_equal(c->n_errors, 1);
	test_free(c);

	for (i = 0; i < sizeof(bad_ports) / sizeof(bad_ports[0]); i++) {
		c = new_config();
		if (config_set(c, "connect", "ports", bad_ports[i], "--test") != -1)
			fail_msg("ports \"%s\" accepted", bad_ports[i]);
		assert_int_equal(c->n_errors, 1);
		test_free(c);
	}
	for (i = 0; i < sizeof(bad_pass) / sizeof(bad_pass[0]); i++) {
		c = new_config();
		if (config_set(c, "connect", "passthrough", bad_pass[i], "--test") != -1)
			fail_msg("passthrough \"%s\" accepted", bad_pass[i]);
		assert_int_equal(c->n_passthrough, 0);
		test_free(c);
	}

	c = new_config();
	load(c, "[connect]\nports = ,\nports = 443, x\npassthrough = bad name\ncolour = red\n");
	{
		static const char *const want[] = {
			"t.ini:2: ports: needs at least one port",
			"t.ini:3: ports: \"443, x\" is not a list of up to 32 ports or ranges (1-65535, e.g. 443, 8000-8999)",
			"t.ini:4: passthrough: \"bad name\" is not a host name, *.domain or *",
			"t.ini:5: colour: unknown key in section [connect]",
		};
		expect_errors(c, want, sizeof(want) / sizeof(want[0]));
	}
	test_free(c);
}

/* A ports line without a port is an error even when an earlier line gave some. */
static void test_connect_ports_empty_line(void **state)
{
	static const char *const want[] = {"t.ini:3: ports: needs at least one port"};
	struct config *c = new_config();

	(void)state;
	load(c, "[connect]\nports = 443\nports = , \n");
	expect_errors(c, want, 1);
	assert_int_equal(c->n_ports, 1);
	test_free(c);
}

/* Lists are bounded: the (N+1)th entry is an error, not an overflow. */
static void test_list_limits(void **state)
{
	struct config *c = new_config();
	char v[64];
	unsigned i;

	(void)state;
	for (i = 0; i < CONFIG_MAX_LISTEN; i++) {
		snprintf(v, sizeof(v), "127.0.0.1:%u", 3000 + i);
		assert_int_equal(config_set(c, "proxy", "listen", v, "--listen"), 0);
	}
	assert_int_equal(config_set(c, "proxy", "listen", "127.0.0.1:4000", "--listen"), -1);
	for (i = 0; i < CONFIG_MAX_UPSTREAMS; i++)
		assert_int_equal(config_set(c, "resolver", "upstream", "192.0.2.1", "--resolver"), 0);
	assert_int_equal(config_set(c, "resolver", "upstream", "192.0.2.1", "--resolver"), -1);
	for (i = 0; i < CONFIG_MAX_ALLOW; i++)
		assert_int_equal(config_set(c, "proxy", "allow_from", "10.0.0.0/8", "--allow-from"), 0);
	assert_int_equal(config_set(c, "proxy", "allow_from", "10.0.0.0/8", "--allow-from"), -1);
	for (i = 0; i < CONFIG_MAX_PASSTHROUGH; i++)
		assert_int_equal(config_set(c, "connect", "passthrough", "*.example", "--test"), 0);
	assert_int_equal(config_set(c, "connect", "passthrough", "*.example", "--test"), -1);
	assert_int_equal(c->n_listen, CONFIG_MAX_LISTEN);
	assert_int_equal(c->n_upstreams, CONFIG_MAX_UPSTREAMS);
	assert_int_equal(c->n_allow_from, CONFIG_MAX_ALLOW);
	assert_int_equal(c->n_passthrough, CONFIG_MAX_PASSTHROUGH);
	assert_int_equal(c->n_errors, 4);
	test_free(c);

	/* CONFIG_MAX_PORTS ports in one list are fine, one more is not. */
	{
		char list[512], *p = list;
		c = new_config();
		for (i = 0; i < CONFIG_MAX_PORTS; i++)
			p += sprintf(p, "%u,", 1000 + i);
		assert_int_equal(config_set(c, "connect", "ports", list, "--test"), 0);
		assert_int_equal(c->n_ports, CONFIG_MAX_PORTS);
		assert_int_equal(config_set(c, "connect", "ports", "2000", "--test"), -1);
		assert_int_equal(c->n_ports, CONFIG_MAX_PORTS);
		test_free(c);
	}
}

/* More errors than the table holds: the rest are counted, and the return value counts them all. */
static void test_error_overflow(void **state)
{
	struct config *c = new_config();
	char *text = test_malloc(CONFIG_MAX_ERRORS * 32 + 64);
	char *p = text;
	int i;

	(void)state;
	p += sprintf(p, "[proxy]\n");
	for (i = 0; i < CONFIG_MAX_ERRORS + 6; i++)
		p += sprintf(p, "bogus%d = 1\n", i);
	assert_int_equal(load(c, text), CONFIG_MAX_ERRORS + 6);
	assert_int_equal(c->n_errors, CONFIG_MAX_ERRORS);
	assert_int_equal(c->n_errors_dropped, 6);
	assert_string_equal(c->errors[0], "t.ini:2: bogus0: unknown key in section [proxy]");
	assert_string_equal(c->errors[CONFIG_MAX_ERRORS - 1], "t.ini:65: bogus63: unknown key in section [proxy]");
	test_free(text);
	test_free(c);
}

/* Keys outside any section, or keys of one section written in another. */
static void test_keys_in_wrong_place(void **state)
{
	static const char *const want[] = {
		"t.ini:1: listen: unknown section [] (proxy, connect, resolver, policy, metrics, route NAME, smtp NAME)",
		"t.ini:3: upstream: unknown key in section [proxy]",
		"t.ini:5: LISTEN: unknown key in section [proxy]",
		"t.ini:7: listen: unknown section [route] (proxy, connect, resolver, policy, metrics, route NAME, smtp NAME)",
	};
	struct config *c = new_config();

	(void)state;
	load(c, "listen = 127.0.0.1:1\n"
		"[proxy]\n"
		"upstream = 192.0.2.1\n"
		"max_connections = 9\n"
		"LISTEN = 127.0.0.1:2\n"
		"[route]\n"
		"listen = 127.0.0.1:3\n");
	expect_errors(c, want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(c->max_connections, 9);
	test_free(c);
}

/* ---------- config_validate ---------- */

static void test_open_proxy_v4(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, "[proxy]\nlisten = 0.0.0.0:3128\n"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "configuration: allow_from: ", "non-loopback") == 0);
	test_free(c);

	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = 0.0.0.0:3128\nallow_from = 192.168.0.0/16\n"), 0);
	assert_int_equal(config_validate(c), 0);
	expect_no_errors(c);
	test_free(c);
}

static void test_open_proxy_v6(void **state)
{
	static const char *const public_v6[] = {"[2001:db8::1]:3128", "[::]:3128", "[::ffff:192.0.2.1]:3128"};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(public_v6) / sizeof(public_v6[0]); i++) {
		struct config *c = new_config();
		assert_int_equal(config_set(c, "proxy", "listen", public_v6[i], "--listen"), 0);
		if (config_validate(c) != 1 || find_error(c, "configuration: allow_from: ", "non-loopback") != 0) {
			dump_errors(c);
			fail_msg("listen %s without allow_from", public_v6[i]);
		}
		test_free(c);

		c = new_config();
		assert_int_equal(config_set(c, "proxy", "listen", public_v6[i], "--listen"), 0);
		assert_int_equal(config_set(c, "proxy", "allow_from", "2001:db8::/32", "--allow-from"), 0);
		assert_int_equal(config_validate(c), 0);
		test_free(c);
	}
}

/* Loopback listeners (all of 127/8, ::1) need no allow_from; a route off loopback does. */
static void test_open_proxy_loopback_and_routes(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, "[proxy]\nlisten = 127.0.0.2:3128\nlisten = [::1]:3128\n"
				 "[route r]\nlisten = 127.1.2.3:2525\ntarget = mail.example.net:25\n"),
			 0);
	assert_int_equal(config_validate(c), 0);
	test_free(c);

	c = new_config();
	assert_int_equal(load(c, "[route r]\nlisten = 0.0.0.0:2525\ntarget = mail.example.net:25\n"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "configuration: allow_from: ", "non-loopback") == 0);
	test_free(c);

	c = new_config();
	assert_int_equal(load(c, "[proxy]\nallow_from = 10.0.0.0/8\n"
				 "[route r]\nlisten = 0.0.0.0:2525\ntarget = mail.example.net:25\n"),
			 0);
	assert_int_equal(config_validate(c), 0);
	test_free(c);
}

static void test_duplicate_listeners(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(load(c, "[proxy]\nlisten = 127.0.0.1:3128\nlisten = 127.0.0.1:3129\nlisten = 127.0.0.1:3128\n"),
			 0);
	assert_int_equal(config_validate(c), 1);
	assert_int_equal(find_error(c, "configuration: listen: ", "127.0.0.1:3128 is given twice"), 0);
	test_free(c);

	/* The same address written two ways. */
	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = [::1]:3128\nlisten = [0:0:0:0:0:0:0:1]:3128\n"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_int_equal(find_error(c, "configuration: listen: ", "is given twice"), 0);
	test_free(c);

	/* An explicit listen equal to the default is not a duplicate: it replaces the default. */
	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = 127.0.0.1:8080\n"), 0);
	assert_int_equal(c->n_listen, 1);
	assert_int_equal(config_validate(c), 0);
	test_free(c);

	/* Same address, other family or port: fine. */
	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = 127.0.0.1:3128\nlisten = [::1]:3128\nlisten = 127.0.0.1:3129\n"),
			 0);
	assert_int_equal(config_validate(c), 0);
	test_free(c);
}

static void test_route_listen_conflicts(void **state)
{
	struct config *c = new_config();

	(void)state;
	/* A route on the (default) proxy listener. */
	assert_int_equal(load(c, "[route web]\nlisten = 127.0.0.1:8080\ntarget = www.example.org:443\n"), 0);
	assert_int_equal(config_validate(c), 1);
	/* (which line it names is test_route_without_target_line's business) */
	assert_true(find_error(c, "t.ini:", ": route: listen 127.0.0.1:8080 is also the HTTP proxy listener") == 0);
	test_free(c);

	/* A route on an explicit proxy listener. */
	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = [::1]:3128\n"
				 "[route web]\nlisten = [::1]:3128\ntarget = www.example.org:443\n"),
			 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "t.ini:", "is also the HTTP proxy listener") == 0);
	test_free(c);

	/* Two routes on one address. */
	c = new_config();
	assert_int_equal(load(c, "[route a]\nlisten = 127.0.0.1:2525\ntarget = a.example:25\n"
				 "[route b]\nlisten = 127.0.0.1:2525\ntarget = b.example:25\n"),
			 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "t.ini:", "route: listen 127.0.0.1:2525 is used by route \"a\" too") == 0);
	test_free(c);

	/* A route with a target but no listen. */
	c = new_config();
	assert_int_equal(load(c, "[route t]\ntarget = a.example:25\n"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "t.ini:", "route: route \"t\" has no listen address") == 0);
	test_free(c);
}

/* [smtp NAME] sections and --smtp: defaults, every key, and the checks that keep it from being an open relay. */
static void test_smtp_sections(void **state)
{
	struct config *c = new_config();
	uint8_t lo[4] = {127, 0, 0, 1}, inside[4] = {10, 1, 0, 7}, outside[4] = {10, 2, 0, 7};

	(void)state;
	assert_int_equal(load(c, "[smtp relay]\n"), 0);
	expect_no_errors(c);
	assert_int_equal(config_validate(c), 0);
	assert_int_equal(c->n_smtp, 1);
	assert_string_equal(c->smtp[0].name, "relay");
	assert_string_equal(c->smtp[0].listen.text, "127.0.0.1:2525");
	assert_string_equal(c->smtp[0].policy, "dane");
	assert_int_equal(c->smtp[0].mx_port, 25);
	assert_int_equal(c->smtp[0].max_message_size, 52428800);
	assert_int_equal(c->smtp[0].reply_timeout_ms, 300000);
	assert_int_equal(c->smtp[0].data_timeout_ms, 600000);
	assert_int_equal(c->smtp[0].max_attempts, 10);
	assert_string_equal(c->smtp[0].helo, "");
	assert_true(config_smtp_client_allowed(&c->smtp[0], AF_INET, lo));
	assert_false(config_smtp_client_allowed(&c->smtp[0], AF_INET, inside));
	test_free(c);

	c = new_config();
	assert_int_equal(load(c, "[smtp out]\nlisten = 10.1.0.1:2525\nallow_from = 10.1.0.0/24\nhelo = Relay.Example.ORG.\n"
				 "policy = dane-only\nmx_port = 2025\nmax_message_size = 1048576\nreply_timeout = 90s\n"
				 "data_timeout = 1h\nmax_attempts = 3\n"), 0);
	expect_no_errors(c);
	assert_int_equal(config_validate(c), 0);
	assert_int_equal(c->smtp[0].reply_timeout_ms, 90000);
	assert_int_equal(c->smtp[0].data_timeout_ms, 3600000);
	assert_int_equal(c->smtp[0].max_attempts, 3);
	assert_string_equal(c->smtp[0].helo, "relay.example.org");
	assert_string_equal(c->smtp[0].policy, "dane-only");
	assert_int_equal(c->smtp[0].mx_port, 2025);
	assert_int_equal(c->smtp[0].max_message_size, 1048576);
	assert_true(config_smtp_client_allowed(&c->smtp[0], AF_INET, inside));
	assert_false(config_smtp_client_allowed(&c->smtp[0], AF_INET, outside));
	/* the HTTP listener's allow_from is not the smarthost's */
	assert_false(config_client_allowed(c, AF_INET, inside));
	test_free(c);

	/* Every bad value, with its line. */
	c = new_config();
	assert_int_equal(load(c, "[smtp a]\nlisten = nowhere\nallow_from = 10.0.0.0/99\nhelo = bad..name\n"
				 "policy = pkix\nmx_port = 0\nmax_message_size = 12\ncolour = blue\n[smtp ]\nhelo = x.test\n"),
			 8);
	assert_true(find_error(c, "t.ini:2: listen: ", "is not IPv4:PORT") == 0);
	assert_true(find_error(c, "t.ini:3: allow_from: ", "is not ADDRESS[/PREFIX]") == 1);
	assert_true(find_error(c, "t.ini:4: helo: ", "is not a host name") == 2);
	assert_true(find_error(c, "t.ini:5: policy: ", "is not dane, dane-only or encrypt") == 3);
	assert_true(find_error(c, "t.ini:6: mx_port: ", "is not a port") == 4);
	assert_true(find_error(c, "t.ini:7: max_message_size: ", "from 1024") == 5);
	assert_true(find_error(c, "t.ini:8: colour: ", "unknown key in an [smtp] section") == 6);
	assert_true(find_error(c, "t.ini:10: helo: ", "an smtp section needs a name") == 7);
	test_free(c);
	c = new_config();
	assert_int_equal(load(c, "[smtp t]\nreply_timeout = 500ms\ndata_timeout = 2h\nmax_attempts = 0\n"
				 "max_attempts = 101\nreply_timeout = soon\nmax_attempts = 3x\n"), 6);
	assert_true(find_error(c, "t.ini:2: reply_timeout: ", "is not a duration from 1s to 1h") == 0);
	assert_true(find_error(c, "t.ini:3: data_timeout: ", "is not a duration from 1s to 1h") == 1);
	assert_true(find_error(c, "t.ini:4: max_attempts: ", "from 1 to 100") == 2);
	assert_true(find_error(c, "t.ini:5: max_attempts: ", "from 1 to 100") == 3);
	assert_true(find_error(c, "t.ini:6: reply_timeout: ", "is not a duration") == 4);
	assert_true(find_error(c, "t.ini:7: max_attempts: ", "from 1 to 100") == 5);
	test_free(c);

	/* Not loopback without allow_from: refused (never an open relay); clashes with other listeners. */
	c = new_config();
	assert_int_equal(load(c, "[smtp open]\nlisten = 0.0.0.0:2525\n[smtp b]\nlisten = 127.0.0.1:8080\n"
				 "[smtp c]\nlisten = 127.0.0.1:2600\n[smtp d]\nlisten = 127.0.0.1:2600\n"), 0);
	assert_int_equal(config_validate(c), 3);
	assert_true(find_error(c, "t.ini:1: allow_from: ", "not loopback: it needs allow_from") == 0);
	assert_true(find_error(c, "t.ini:3: smtp: ", "is also the HTTP proxy listener") == 1);
	assert_true(find_error(c, "t.ini:7: smtp: ", "listen 127.0.0.1:2600 is used by smtp \"c\" too") == 2);
	test_free(c);

	/* The command line: --smtp creates one, --smtp-mx-port sets the last one's port, and only after it. */
	c = new_config();
	assert_int_equal(config_set(c, "smtp", "mx_port", "2025", "--smtp-mx-port"), -1);
	assert_true(find_error(c, "--smtp-mx-port", "needs --smtp") == 0);
	test_free(c);
	c = new_config();
	assert_int_equal(config_set(c, "", "smtp", "127.0.0.1:2526", "--smtp"), 0);
	assert_int_equal(config_set(c, "smtp", "mx_port", "2025", "--smtp-mx-port"), 0);
	expect_no_errors(c);
	assert_int_equal(config_validate(c), 0);
	assert_int_equal(c->n_smtp, 1);
	assert_string_equal(c->smtp[0].listen.text, "127.0.0.1:2526");
	assert_int_equal(c->smtp[0].mx_port, 2025);
	/* a route to the smarthost's own address is a loop */
	assert_true(config_listens_on(c, AF_INET, lo, 2526, 0));
	test_free(c);
}

static void test_validate_other(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "resolver", "ttl_min", "600", "--test"), 0);
	assert_int_equal(config_set(c, "resolver", "ttl_max", "60", "--test"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_string_equal(c->errors[0], "configuration: ttl_max: smaller than ttl_min");
	test_free(c);

	/* The only listen given is broken: nothing listens, which is its own error. */
	c = new_config();
	assert_int_equal(load(c, "[proxy]\nlisten = nowhere\n"), 1);
	assert_int_equal(c->n_listen, 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "configuration: listen: ", "nothing to do") == 1);
	test_free(c);
}

/* test_validation_mode - [resolver] validation: self or resolver; resolver only with loopback upstreams, every
 * other upstream reported at the validation key's line. */
static void test_validation_mode(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(c->validation_resolver, 0);   /* self is the default */
	assert_int_equal(load(c, "[resolver]\nvalidation = self\n"), 0);
	assert_int_equal(c->validation_resolver, 0);
	assert_int_equal(load(c, "[resolver]\nvalidation = yes\n"), 1);
	assert_string_equal(c->errors[0], "t.ini:2: validation: \"yes\" is not self or resolver");
	test_free(c);

	/* Loopback upstreams (v4, v6, v4-mapped): valid. */
	c = new_config();
	assert_int_equal(load(c, "[resolver]\nupstream = 127.0.0.1@5353\nupstream = ::1\nupstream = 127.9.9.9\n"
				 "upstream = [::ffff:127.0.0.1]@53\nvalidation = resolver\n"),
			 0);
	assert_int_equal(c->validation_resolver, 1);
	assert_int_equal(config_validate(c), 0);
	expect_no_errors(c);
	test_free(c);

	/* Anything else is named, at the line of the validation key. */
	c = new_config();
	assert_int_equal(load(c, "[resolver]\nupstream = 127.0.0.1\nupstream = 192.0.2.53@53\n\nvalidation = resolver\n"
				 "upstream = 2001:db8::53\n"),
			 0);
	assert_int_equal(config_validate(c), 2);
	{
		static const char *const want[] = {
			"t.ini:5: validation: resolver trusts the AD bit only from loopback: upstream 192.0.2.53@53 is "
			"not in 127.0.0.0/8 or ::1 (use validation = self, or run a validating resolver on this host)",
			"t.ini:5: validation: resolver trusts the AD bit only from loopback: upstream 2001:db8::53 is "
			"not in 127.0.0.0/8 or ::1 (use validation = self, or run a validating resolver on this host)",
		};
		expect_errors(c, want, 2);
	}
	test_free(c);

	/* No upstream at all would mean /etc/resolv.conf: refused. From the command line, the option is named. */
	c = new_config();
	assert_int_equal(config_set(c, "resolver", "validation", "resolver", "--validation"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_true(find_error(c, "--validation: validation: resolver needs [resolver] upstream", "loopback") == 0);
	test_free(c);
}

/* ---------- config_set: --route and friends ---------- */

static void test_set_route(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "", "route", "127.0.0.1:2525=mail.example.net:25", "--route"), 0);
	assert_int_equal(c->n_routes, 1);
	check_addr(&c->routes[0].listen, "127.0.0.1:2525", AF_INET, "127.0.0.1", 2525, 1);
	assert_string_equal(c->routes[0].host, "mail.example.net");
	assert_int_equal(c->routes[0].port, 25);
	assert_string_equal(c->routes[0].policy, "");
	assert_string_equal(c->routes[0].starttls, "");
	assert_true(c->routes[0].name[0] != '\0');

	assert_int_equal(config_set(c, "", "route", "[::1]:9443=[2001:db8::443]:443", "--route"), 0);
	assert_int_equal(c->n_routes, 2);
	check_addr(&c->routes[1].listen, "[::1]:9443", AF_INET6, "::1", 9443, 1);
	assert_string_equal(c->routes[1].host, "2001:db8::443");
	assert_int_equal(c->routes[1].port, 443);
	assert_string_not_equal(c->routes[0].name, c->routes[1].name);
	expect_no_errors(c);
	assert_int_equal(config_validate(c), 0);
	test_free(c);
}

static void test_set_route_bad(void **state)
{
	static const struct {
		const char *value;
		const char *error;
	} bad[] = {
		{"127.0.0.1:2525", "--route: route: \"127.0.0.1:2525\" is not LISTEN_ADDR:PORT=HOST:PORT"},
		{"localhost:2525=mail.example.net:25", "--route: listen: \"localhost:2525\" is not IPv4:PORT or [IPv6]:PORT"},
		{"=mail.example.net:25", "--route: listen: \"\" is not IPv4:PORT or [IPv6]:PORT"},
		{"127.0.0.1:2525=mail.example.net", "--route: target: \"mail.example.net\" is not HOST:PORT"},
		{"127.0.0.1:2525=", "--route: target: \"\" is not HOST:PORT"},
		{"127.0.0.1:2525=mail.example.net:0", "--route: target: \"mail.example.net:0\" is not HOST:PORT"},
		{"127.0.0.1:2525=mail example:25", "--route: target: \"mail example:25\" is not HOST:PORT"},
		{"127.0.0.1:2525=mail.example.net:25=x", "--route: target: \"mail.example.net:25=x\" is not HOST:PORT"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config *c = new_config();
		if (config_set(c, "", "route", bad[i].value, "--route") != -1)
			fail_msg("--route %s accepted", bad[i].value);
		if (c->n_errors != 1 || strcmp(c->errors[0], bad[i].error) != 0) {
			dump_errors(c);
			fail_msg("--route %s: want \"%s\"", bad[i].value, bad[i].error);
		}
		test_free(c);
	}
}

/* One mistake is one error: validation does not add more for a half-parsed route listen address. */
static void test_bad_route_listen_reported_once(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "", "route", "localhost:2525=mail.example.net:25", "--route"), -1);
	config_validate(c);
	if (c->n_errors != 1) {
		dump_errors(c);
		fail_msg("%zu errors for one bad --route", c->n_errors);
	}
	test_free(c);

	c = new_config();
	assert_int_equal(load(c, "[route r]\nlisten = localhost:2525\ntarget = mail.example.net:25\n"), 1);
	config_validate(c);
	if (c->n_errors != 1) {
		dump_errors(c);
		fail_msg("%zu errors for one bad route listen line", c->n_errors);
	}
	test_free(c);
}

/* Problems found later with a --route name the option the way load errors name a file: "--route: key: ...". */
static void test_set_route_validate_origin(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "", "route", "127.0.0.1:8080=www.example.org:443", "--route"), 0);
	assert_int_equal(config_validate(c), 1);
	assert_string_equal(c->errors[0], "--route: route: listen 127.0.0.1:8080 is also the HTTP proxy listener");
	test_free(c);
}

static void test_set_other_keys(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_set(c, "policy", "default", "pkix", "--policy"), 0);
	assert_string_equal(c->policy, "pkix");
	assert_int_equal(config_set(c, "policy", "default", "bogus", "--policy"), -1);
	assert_string_equal(c->policy, "pkix");
	assert_string_equal(c->errors[0], "--policy: default: \"bogus\" is not dane, dane-only or pkix");
	assert_int_equal(config_set(c, "proxy", "allow_from", "10.0.0.0/33", "--allow-from"), -1);
	assert_string_equal(c->errors[1], "--allow-from: allow_from: \"10.0.0.0/33\" is not ADDRESS[/PREFIX]");
	assert_int_equal(config_set(c, "proxy", "nonsense", "1", "--nonsense"), -1);
	assert_string_equal(c->errors[2], "--nonsense: nonsense: unknown key in section [proxy]");
	assert_int_equal(config_set(c, "proxy", "log", "/tmp/x.log", "--log"), 0);
	assert_string_equal(c->log, "/tmp/x.log");
	assert_int_equal(c->n_errors, 3);
	test_free(c);
}

/* ---------- networks ---------- */

static struct config_cidr cidr(const char *s)
{
	struct config *c = new_config();
	struct config_cidr n;

	if (config_set(c, "proxy", "allow_from", s, "--allow-from") != 0) {
		dump_errors(c);
		fail_msg("allow_from %s rejected", s);
	}
	n = c->allow_from[0];
	test_free(c);
	return n;
}

static int in4(const struct config_cidr *n, const char *ip)
{
	uint8_t a[4];

	v4(ip, a);
	return config_cidr_contains(n, AF_INET, a);
}

static int in6(const struct config_cidr *n, const char *ip)
{
	uint8_t a[16];

	v6(ip, a);
	return config_cidr_contains(n, AF_INET6, a);
}

static void test_cidr_v4(void **state)
{
	struct config_cidr n;

	(void)state;
	n = cidr("0.0.0.0/0");
	assert_int_equal(n.prefix, 0);
	assert_true(in4(&n, "0.0.0.0"));
	assert_true(in4(&n, "255.255.255.255"));
	assert_true(in4(&n, "192.0.2.1"));
	assert_false(in6(&n, "::1"));

	n = cidr("10.0.0.0/8");
	assert_true(in4(&n, "10.0.0.0"));
	assert_true(in4(&n, "10.255.255.255"));
	assert_false(in4(&n, "11.0.0.0"));
	assert_false(in4(&n, "9.255.255.255"));

	n = cidr("192.0.2.7/32");
	assert_true(in4(&n, "192.0.2.7"));
	assert_false(in4(&n, "192.0.2.6"));
	assert_false(in4(&n, "192.0.2.8"));

	n = cidr("192.0.2.7");
	assert_int_equal(n.prefix, 32);
	assert_true(in4(&n, "192.0.2.7"));
	assert_false(in4(&n, "192.0.2.70"));

	/* Non-byte-aligned: 172.16.0.0/12 is 172.16.0.0 - 172.31.255.255. */
	n = cidr("172.16.0.0/12");
	assert_true(in4(&n, "172.16.0.0"));
	assert_true(in4(&n, "172.20.1.2"));
	assert_true(in4(&n, "172.31.255.255"));
	assert_false(in4(&n, "172.32.0.0"));
	assert_false(in4(&n, "172.15.255.255"));
	assert_false(in4(&n, "173.16.0.0"));

	n = cidr("192.0.2.128/25");
	assert_true(in4(&n, "192.0.2.200"));
	assert_false(in4(&n, "192.0.2.127"));
	n = cidr("192.0.2.0/31");
	assert_true(in4(&n, "192.0.2.1"));
	assert_false(in4(&n, "192.0.2.2"));
}

static void test_cidr_v6(void **state)
{
	struct config_cidr n;

	(void)state;
	n = cidr("::/0");
	assert_int_equal(n.prefix, 0);
	assert_true(in6(&n, "::"));
	assert_true(in6(&n, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(in4(&n, "192.0.2.1"));

	n = cidr("2001:db8::/32");
	assert_true(in6(&n, "2001:db8::1"));
	assert_true(in6(&n, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
	assert_false(in6(&n, "2001:db9::1"));

	n = cidr("2001:db8::1/128");
	assert_true(in6(&n, "2001:db8::1"));
	assert_false(in6(&n, "2001:db8::2"));
	assert_false(in6(&n, "2001:db8::1:0"));

	n = cidr("::1");
	assert_int_equal(n.prefix, 128);
	assert_true(in6(&n, "::1"));
	assert_false(in6(&n, "::"));

	/* Non-byte-aligned: 2001:db0::/28 ends at 2001:dbf:ffff:... ; fe80::/10 covers fe80 - febf. */
	n = cidr("2001:db0::/28");
	assert_true(in6(&n, "2001:db0::"));
	assert_true(in6(&n, "2001:dbf:ffff::1"));
	assert_false(in6(&n, "2001:dc0::"));
	assert_false(in6(&n, "2001:daf::"));
	n = cidr("fe80::/10");
	assert_true(in6(&n, "fe80::1"));
	assert_true(in6(&n, "febf:ffff::1"));
	assert_false(in6(&n, "fec0::1"));
	assert_false(in6(&n, "fe7f::1"));

	/* A 12-bit IPv6 prefix. */
	n = cidr("2000::/12");
	assert_true(in6(&n, "200f:ffff::1"));
	assert_false(in6(&n, "2010::1"));
}

/* An IPv4 network never contains an IPv6 address and vice versa, even where the bytes would match. */
static void test_cidr_family_mismatch(void **state)
{
	struct config_cidr n4 = cidr("10.0.0.0/8"), n6 = cidr("a00::/8"), any4 = cidr("0.0.0.0/0");
	uint8_t a16[16] = {10, 1, 2, 3};
	uint8_t a4[4] = {10, 1, 2, 3};

	(void)state;
	assert_true(config_cidr_contains(&n4, AF_INET, a4));
	assert_false(config_cidr_contains(&n4, AF_INET6, a16));
	assert_false(config_cidr_contains(&any4, AF_INET6, a16));
	assert_true(config_cidr_contains(&n6, AF_INET6, a16));
	assert_false(config_cidr_contains(&n6, AF_INET, a4));
	/* A v4-mapped IPv6 address is not in an IPv4 network. */
	assert_false(in6(&n4, "::ffff:10.1.2.3"));
}

static void test_cidr_bad(void **state)
{
	static const char *const bad[] = {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8/8", "10.0.0/8",
					  "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0008", "example.com/8", "10.0.0.0/8 "};
	struct config *c = new_config();
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (config_set(c, "proxy", "allow_from", bad[i], "--allow-from") != -1)
			fail_msg("allow_from \"%s\" accepted", bad[i]);
	assert_int_equal(c->n_allow_from, 0);
	test_free(c);
}

static void test_is_loopback(void **state)
{
	struct config_addr a;

	(void)state;
	memset(&a, 0, sizeof(a));
	a.family = AF_INET;
	v4("127.0.0.1", a.addr);
	assert_true(config_is_loopback(&a));
	v4("127.255.255.254", a.addr);
	assert_true(config_is_loopback(&a));
	v4("128.0.0.1", a.addr);
	assert_false(config_is_loopback(&a));
	v4("0.0.0.0", a.addr);
	assert_false(config_is_loopback(&a));
	memset(&a, 0, sizeof(a));
	a.family = AF_INET6;
	v6("::1", a.addr);
	assert_true(config_is_loopback(&a));
	v6("::", a.addr);
	assert_false(config_is_loopback(&a));
	v6("::2", a.addr);
	assert_false(config_is_loopback(&a));
}

/* ---------- files ---------- */

static void test_missing_file(void **state)
{
	struct config *c = new_config();

	(void)state;
	assert_int_equal(config_load_file(c, "/nonexistent-daneproxy-dir/daneproxy.ini"), 1);
	assert_int_equal(c->n_errors, 1);
	assert_string_equal(c->errors[0], "/nonexistent-daneproxy-dir/daneproxy.ini: file: No such file or directory");
	/* Nothing else changed. */
	assert_int_equal(c->n_listen, 1);
	assert_int_equal(c->listen[0].port, 8080);
	test_free(c);
}

/* Errors in a file from disk carry its path. */
static void test_file_errors_name_the_path(void **state)
{
	struct config *c = new_config();
	char path[] = "/tmp/daneproxy-test-config-XXXXXX";
	char want[128];
	int fd = mkstemp(path);
	static const char text[] = "[proxy]\n\nmax_connections = lots\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	assert_int_equal(config_load_file(c, path), 1);
	snprintf(want, sizeof(want), "%s:3: max_connections: \"lots\" is not a whole number from 1 to 1000000", path);
	assert_string_equal(c->errors[0], want);
	unlink(path);
	test_free(c);
}

/* A directory given as the file is an error, not an empty configuration. */
static void test_directory_is_not_a_file(void **state)
{
	struct config *c = new_config();

	(void)state;
	if (config_load_file(c, "/tmp") == 0 || c->n_errors == 0 || strncmp(c->errors[0], "/tmp: file: ", 12) != 0) {
		dump_errors(c);
		fail_msg("config_load_file(\"/tmp\") loaded a directory as an empty configuration");
	}
	test_free(c);
}

/* ---------- [proxy] user and the key table (issue 13) ---------- */

/* user names an existing unprivileged account; the loader says when it does not exist, is root or is no name. */
static void test_user(void **state)
{
	static const char *const want[] = {
		("t.ini:3: user: no such user \"daneproxy-no-such-user\" on this host (useradd --system "
		 "daneproxy-no-such-user creates one)"),
		"t.ini:4: user: \"root\" has uid 0: name an unprivileged account",
		"t.ini:5: user: \"-x\" is not a user name",
		"t.ini:6: user: \"a b\" is not a user name",
		"t.ini:7: user: \"\" is not a user name",
		"t.ini:8: user: \"123abc\" is not a user name",
		"t.ini:9: user: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is not a user name",
	};
	struct config *c = new_config();

	(void)state;
	assert_string_equal(c->user, "");
	load(c, "[proxy]\n"
		"user = nobody\n"
		"user = daneproxy-no-such-user\n"
		"user = root\n"
		"user = -x\n"
		"user = a b\n"
		"user =\n"
		"user = 123abc\n"
		"user = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n");
	expect_errors(c, want, sizeof(want) / sizeof(want[0]));
	assert_string_equal(c->user, "nobody");   /* a rejected value never replaces a good one */
	test_free(c);

	c = new_config();
	assert_int_equal(config_set(c, "proxy", "user", "nobody", "--user"), 0);
	assert_string_equal(c->user, "nobody");
	assert_int_equal(config_validate(c), 0);
	test_free(c);
}

/* The key table is the loader's: every listed key loads into its section without "unknown key", each is listed
 * once with a type and help, and the list ends where config_key_count says. */
static void test_key_table(void **state)
{
	struct config_key_info k, other;
	size_t i, j, n = config_key_count();
	char text[200];
	int routes = 0, user = 0;

	(void)state;
	assert_true(n >= 30);
	assert_int_equal(config_key_at(n, &k), -1);
	assert_int_equal(config_key_at((size_t)-1, &k), -1);
	for (i = 0; i < n; i++) {
		struct config *c = new_config();
		assert_int_equal(config_key_at(i, &k), 0);
		assert_non_null(k.section);
		assert_true(k.name[0] != '\0' && k.type[0] != '\0' && k.help[0] != '\0');
		if (strcmp(k.type, "value") == 0)
			fail_msg("[%s] %s: its parse function has no name in config.c's type_names", k.section, k.name);
		for (j = 0; j < i; j++) {
			assert_int_equal(config_key_at(j, &other), 0);
			if (strcmp(k.section, other.section) == 0 && strcmp(k.name, other.name) == 0)
				fail_msg("[%s] %s listed twice", k.section, k.name);
		}
		routes += strcmp(k.section, "route") == 0;
		user += strcmp(k.section, "proxy") == 0 && strcmp(k.name, "user") == 0;
		/* A value no key accepts: the error must be about the value, never "unknown key". */
		snprintf(text, sizeof(text), "[%s%s]\n%s = \x01\n", k.section,
			 strcmp(k.section, "route") == 0 ? " t" : "", k.name);
		load(c, text);
		for (j = 0; j < c->n_errors; j++)
			if (strstr(c->errors[j], "unknown") != NULL)
				fail_msg("[%s] %s is listed but the loader says: %s", k.section, k.name, c->errors[j]);
		test_free(c);
	}
	assert_int_equal(routes, 4);
	assert_int_equal(user, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_full_file_crlf),
		cmocka_unit_test(test_full_file_from_disk),
		cmocka_unit_test(test_every_error_with_line),
		cmocka_unit_test(test_route_without_target_line),
		cmocka_unit_test(test_empty_route_section),
		cmocka_unit_test(test_every_syntax_error),
		cmocka_unit_test(test_line_length_limit),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_route_errors),
		cmocka_unit_test(test_indented_keys_not_swallowed),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_duration_edges),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_origin_sessions),
		cmocka_unit_test(test_bools_transport_paths),
		cmocka_unit_test(test_policy_digests),
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_upstreams_and_addresses),
		cmocka_unit_test(test_connect_section),
		cmocka_unit_test(test_connect_ports_empty_line),
		cmocka_unit_test(test_list_limits),
		cmocka_unit_test(test_error_overflow),
		cmocka_unit_test(test_keys_in_wrong_place),
		cmocka_unit_test(test_open_proxy_v4),
		cmocka_unit_test(test_open_proxy_v6),
		cmocka_unit_test(test_open_proxy_loopback_and_routes),
		cmocka_unit_test(test_duplicate_listeners),
		cmocka_unit_test(test_route_listen_conflicts),
		cmocka_unit_test(test_smtp_sections),
		cmocka_unit_test(test_validate_other),
		cmocka_unit_test(test_validation_mode),
		cmocka_unit_test(test_set_route),
		cmocka_unit_test(test_set_route_bad),
		cmocka_unit_test(test_bad_route_listen_reported_once),
		cmocka_unit_test(test_set_route_validate_origin),
		cmocka_unit_test(test_set_other_keys),
		cmocka_unit_test(test_cidr_v4),
		cmocka_unit_test(test_cidr_v6),
		cmocka_unit_test(test_cidr_family_mismatch),
		cmocka_unit_test(test_cidr_bad),
		cmocka_unit_test(test_is_loopback),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_file_errors_name_the_path),
		cmocka_unit_test(test_directory_is_not_a_file),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_key_table),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}

/*
 * config.c - the configuration table, the INI loader (libinih with a line-counting reader, so every problem
 * has its line) and whole-configuration validation.
 *
 * Parsers here are pure over NUL-terminated strings: no strtol/atoi on the file's text.
 */
#include "config.h"
#include "fileio.h"
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define CONFIG_MAX_FILE (1u << 20)

struct config;
struct key_def;

/* key_parse_fn - check a value for key k and store it in c, or add the error ("file:line: key: problem"). */
typedef int (*key_parse_fn)(struct config *c, const struct key_def *k, const char *value, const char *file, int line);

struct key_def {
	const char *section;
	const char *name;
	key_parse_fn parse;
	size_t offset;
	unsigned long min;
	unsigned long max;
	const char *help;
};

#define OFF(field) offsetof(struct config, field)

/* One parse function per kind of value (defined below, after the value parsers they use). */
static int set_listen(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_allow_from(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_uint(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_duration(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_bool(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_path(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_policy(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_transport(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_validation(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_upstream(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_ports(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_domains(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_pattern(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_digests(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_rule(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_terminate(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_user(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_workers(struct config *c, const struct key_def *k, const char *value, const char *file, int line);
static int set_address(struct config *c, const struct key_def *k, const char *value, const char *file, int line);

/* The table: every key of the file, with its type and range. Defaults live in config_defaults(). */
static const struct key_def keys[] = {
	{"proxy", "listen", set_listen, OFF(listen), 0, 0, "ADDR:PORT of the HTTP proxy listener (repeatable)"},
	{"proxy", "allow_from", set_allow_from, OFF(allow_from), 0, 0, "client network allowed in (repeatable)"},
	{"proxy", "max_connections", set_uint, OFF(max_connections), 1, 1000000,
	 "concurrent client connections, over all workers"},
	{"proxy", "workers", set_workers, OFF(workers), 1, 64,
	 "worker processes: auto (the CPUs the process may use) or 1 to 64"},
	{"proxy", "idle_timeout", set_duration, OFF(idle_timeout_ms), 100, 86400000, "idle connection timeout"},
	{"proxy", "header_timeout", set_duration, OFF(header_timeout_ms), 100, 3600000, "time to send a request head"},
	{"proxy", "connect_timeout", set_duration, OFF(connect_timeout_ms), 100, 3600000, "TCP connect timeout"},
	{"proxy", "handshake_timeout", set_duration, OFF(handshake_timeout_ms), 100, 3600000, "TLS handshake timeout"},
	{"proxy", "shutdown_grace", set_duration, OFF(shutdown_grace_ms), 0, 3600000, "time open connections get at exit"},
	{"proxy", "origin_keepalive", set_duration, OFF(origin_keepalive_ms), 0, 3600000,
	 "how long an origin connection is kept for the client's next request (0: closed after each response)"},
	{"proxy", "origin_sessions", set_uint, OFF(origin_sessions), 0, 1000000,
	 "origin TLS sessions kept for resumption, per worker (0: every origin handshake is a full one)"},
	{"proxy", "log", set_path, OFF(log), 0, 0, "stderr or a file for the per-connection JSON lines"},
	{"proxy", "user", set_user, OFF(user), 0, 0, "account to switch to after binding, when started as root"},
	{"metrics", "listen", set_address, OFF(metrics_listen), 0, 0,
	 "ADDR:PORT serving GET /metrics (Prometheus text format); none when unset"},
	{"connect", "state_dir", set_path, OFF(state_dir), 0, 0, "where the local CA lives"},
	{"proxy", "ports", set_ports, OFF(ports), 0, 0,
	 "destination ports clients may reach, absolute-form and CONNECT alike (\"443, 8443, 10000-10100\")"},
	{"connect", "ports", set_ports, OFF(ports), 0, 0, "the older name of [proxy] ports"},
	{"connect", "passthrough", set_pattern, OFF(passthrough), 0, 0, "names tunnelled without termination"},
	{"connect", "terminate", set_terminate, OFF(terminate_dane), 0, 0,
	 "always (every CONNECT is terminated) or dane (only where secure TLSA makes DANE apply; else a plain tunnel)"},
	{"connect", "mint_cache_size", set_uint, OFF(mint_cache_size), 1, 1000000, "minted certificates kept"},
	{"connect", "ca_name_constraints", set_domains, OFF(ca_name_constraints), 0, 0,
	 "DNS subtrees the local CA may vouch for"},
	{"resolver", "upstream", set_upstream, OFF(upstreams), 0, 0, "IP or IP@PORT of a resolver (repeatable)"},
	{"resolver", "trust_anchor", set_path, OFF(trust_anchor), 0, 0, "DS or DNSKEY file"},
	{"resolver", "transport", set_transport, OFF(dns_udp), 0, 0, "tcp (default) or udp"},
	{"resolver", "validation", set_validation, OFF(validation_resolver), 0, 0,
	 "self (default: validate DNSSEC here) or resolver (trust the AD bit of a loopback resolver)"},
	{"resolver", "timeout", set_duration, OFF(dns_timeout_ms), 100, 600000, "lookup timeout"},
	{"resolver", "cache_size", set_uint, OFF(cache_size), 1, 10000000, "cached lookups"},
	{"resolver", "ttl_min", set_uint, OFF(ttl_min_s), 0, 86400, "minimum cache time, seconds"},
	{"resolver", "ttl_max", set_uint, OFF(ttl_max_s), 1, 604800, "maximum cache time, seconds"},
	{"resolver", "failure_ttl", set_uint, OFF(failure_ttl_s), 0, 3600, "cache time of failures, seconds"},
	{"policy", "default", set_policy, OFF(policy), 0, 0, "dane, dane-only or pkix"},
	{"policy", "ca_file", set_path, OFF(ca_file), 0, 0, "PKIX trust store (PEM)"},
	{"policy", "ee_namecheck", set_bool, OFF(ee_namecheck), 0, 0, "check names on DANE-EE matches"},
	{"policy", "digests", set_digests, OFF(digests), 0, 0, "TLSA digests used, strongest first (sha512, sha256)"},
	{"policy", "rule", set_rule, OFF(rules), 0, 0, "\"PATTERN[:PORT] MODE\" (repeatable)"},
};

/* The keys of every [route NAME] section (set_route_key applies them): names and documentation only. */
static const struct route_key_def {
	const char *name;
	const char *type;
	const char *help;
} route_keys[] = {
	{"listen", "address", "ADDR:PORT the route listens on"},
	{"target", "host:port", "HOST:PORT every client of the route is connected to"},
	{"policy", "policy", "dane, dane-only or pkix (default: the rules, then [policy] default)"},
	{"starttls", "protocol", "smtp (STARTTLS before the handshake) or none"},
};

/* The keys of every [smtp NAME] section (set_smtp_key applies them). */
static const struct route_key_def smtp_keys[] = {
	{"listen", "address", "ADDR:PORT the smarthost listens on (default 127.0.0.1:2525)"},
	{"allow_from", "network list", "mail clients relayed for besides loopback (repeatable); never an open relay"},
	{"helo", "host name", "the EHLO name towards MX hosts (default: this host's fully qualified name)"},
	{"policy", "smtp policy", "dane (default), dane-only or encrypt; [policy] rule patterns apply to domains too"},
	{"mx_port", "port", "the port of the MX hosts (default 25)"},
	{"max_message_size", "number", "largest message accepted, octets (default 52428800), announced as SIZE"},
	{"reply_timeout", "duration", "wait for each MX reply but the one to the end of data (default 5m)"},
	{"data_timeout", "duration", "wait for the MX's reply to the end of data (default 10m)"},
	{"max_attempts", "number", "MX connections tried per delivery, over all hosts and addresses (default 10)"},
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))
#define N_ROUTE_KEYS (sizeof(route_keys) / sizeof(route_keys[0]))
#define N_SMTP_KEYS (sizeof(smtp_keys) / sizeof(smtp_keys[0]))

/* How the manual names the values of each parse function (daneproxy.conf(5) is checked against these). */
static const struct {
	key_parse_fn parse;
	const char *type;
} type_names[] = {
	{set_listen, "address list"}, {set_allow_from, "network list"}, {set_uint, "number"},
	{set_duration, "duration"}, {set_bool, "boolean"}, {set_path, "path"}, {set_policy, "policy"},
	{set_transport, "transport"}, {set_validation, "validation mode"}, {set_upstream, "resolver list"},
	{set_ports, "port list"}, {set_domains, "domain list"}, {set_pattern, "name pattern list"},
	{set_digests, "digest list"}, {set_rule, "rule list"}, {set_user, "user name"}, {set_terminate, "terminate mode"},
	{set_workers, "worker count"}, {set_address, "address"},
};

size_t config_key_count(void)
{
	return N_KEYS + N_ROUTE_KEYS + N_SMTP_KEYS;
}

int config_key_at(size_t i, struct config_key_info *out)
{
	size_t t;

	if (i < N_KEYS) {
		out->section = keys[i].section;
		out->name = keys[i].name;
		out->type = "value";   /* a parse function without a name here: test_config says so */
		for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
			if (type_names[t].parse == keys[i].parse)
				out->type = type_names[t].type;
		out->help = keys[i].help;
		return 0;
	}
	if (i < N_KEYS + N_ROUTE_KEYS) {
		out->section = "route";
		out->name = route_keys[i - N_KEYS].name;
		out->type = route_keys[i - N_KEYS].type;
		out->help = route_keys[i - N_KEYS].help;
		return 0;
	}
	if (i < N_KEYS + N_ROUTE_KEYS + N_SMTP_KEYS) {
		out->section = "smtp";
		out->name = smtp_keys[i - N_KEYS - N_ROUTE_KEYS].name;
		out->type = smtp_keys[i - N_KEYS - N_ROUTE_KEYS].type;
		out->help = smtp_keys[i - N_KEYS - N_ROUTE_KEYS].help;
		return 0;
	}
	return -1;
}

/* ---------- errors ---------- */

static void __attribute__((format(printf, 5, 6)))
add_error(struct config *c, const char *file, int line, const char *key, const char *fmt, ...)
{
	char msg[220];
	va_list ap;

	if (c->n_errors >= CONFIG_MAX_ERRORS) {
		c->n_errors_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(c->errors[c->n_errors++], sizeof(c->errors[0]), "%s:%d: %s: %s", file, line, key, msg);
	else
		snprintf(c->errors[c->n_errors++], sizeof(c->errors[0]), "%s: %s: %s", file, key, msg);
}

/* ---------- value parsers ---------- */

/* parse_ulong - decimal digits only, no sign, at most 2^32 - 1. */
static int parse_ulong(const char *s, unsigned long *out)
{
	uint64_t v;

	if (decimal_parse(s, strlen(s), 4294967295u, &v) < 0)
		return -1;
	*out = (unsigned long)v;
	return 0;
}

/* parse_duration - "250ms", "5s", "2m", "1h" or seconds, into milliseconds. */
static int parse_duration(const char *s, unsigned long *ms)
{
	char num[16];
	size_t n = 0;
	unsigned long v, mult = 1000;
	const char *unit;

	while (s[n] >= '0' && s[n] <= '9' && n < sizeof(num) - 1) {
		num[n] = s[n];
		n++;
	}
	num[n] = '\0';
	unit = s + n;
	if (n == 0 || parse_ulong(num, &v) < 0)
		return -1;
	if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "s") == 0 || *unit == '\0')
		mult = 1000;
	else if (strcmp(unit, "m") == 0)
		mult = 60000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600000;
	else
		return -1;
	if (v > 4294967295UL / mult)
		return -1;
	*ms = v * mult;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcasecmp(s, "on") || !strcmp(s, "1"))
		*out = 1;
	else if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcasecmp(s, "off") || !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

static int valid_policy(const char *s)
{
	return !strcmp(s, "dane") || !strcmp(s, "dane-only") || !strcmp(s, "pkix");
}

/* parse_port - 1..65535. */
static int parse_port(const char *s, uint16_t *port)
{
	return port_parse(s, strlen(s), port);
}

/* parse_port_range - "443" or "8000-8999" (n bytes at s). */
static int parse_port_range(const char *s, size_t n, struct config_port_range *pr)
{
	const char *dash = memchr(s, '-', n);

	if (dash == NULL) {
		if (port_parse(s, n, &pr->lo) < 0)
			return -1;
		pr->hi = pr->lo;
		return 0;
	}
	if (port_parse(s, (size_t)(dash - s), &pr->lo) < 0 || port_parse(dash + 1, (size_t)(s + n - dash - 1), &pr->hi) < 0)
		return -1;
	return pr->hi >= pr->lo ? 0 : -1;
}

/* split_host_port - "host:port" / "[v6]:port" into host (brackets removed) and port. */
static int split_host_port(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	size_t n;

	if (colon == NULL || parse_port(colon + 1, port) < 0)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

/* addr_is_wildcard / addr_is_loopback - 0.0.0.0 or ::; 127.0.0.0/8 or ::1. */
static int addr_is_wildcard(int family, const uint8_t *addr)
{
	static const uint8_t zero[16];

	return memcmp(addr, zero, family == AF_INET ? 4 : 16) == 0;
}

static int addr_is_loopback(int family, const uint8_t *addr)
{
	static const uint8_t v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	return family == AF_INET ? addr[0] == 127 : memcmp(addr, v6_loopback, 16) == 0;
}

int config_is_loopback(const struct config_addr *a)
{
	return addr_is_loopback(a->family, a->addr);
}

/* parse_addr - "ADDR:PORT" / "[V6]:PORT" into a listen address. */
static int parse_addr(const char *s, struct config_addr *a)
{
	char host[64];

	memset(a, 0, sizeof(*a));
	if (strlen(s) >= sizeof(a->text) || split_host_port(s, host, sizeof(host), &a->port) < 0)
		goto fail;
	snprintf(a->text, sizeof(a->text), "%s", s);
	if (inet_pton(AF_INET, host, a->addr) == 1)
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, host, a->addr) == 1)
		a->family = AF_INET6;
	else
		goto fail;
	a->loopback = config_is_loopback(a);
	return 0;
fail:
	memset(a, 0, sizeof(*a));
	return -1;
}

/* parse_cidr - "ADDR/PREFIX" or a single address. */
static int parse_cidr(const char *s, struct config_cidr *n)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long prefix;

	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	memset(n, 0, sizeof(*n));
	if (inet_pton(AF_INET, addr, n->addr) == 1)
		n->family = AF_INET;
	else if (inet_pton(AF_INET6, addr, n->addr) == 1)
		n->family = AF_INET6;
	else
		return -1;
	n->prefix = n->family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		if (strlen(slash + 1) > 3 || parse_ulong(slash + 1, &prefix) < 0 || prefix > n->prefix)
			return -1;
		n->prefix = (unsigned)prefix;
	}
	return 0;
}

int config_port_allowed(const struct config *c, uint16_t port)
{
	size_t i;

	for (i = 0; i < c->n_ports; i++)
		if (port >= c->ports[i].lo && port <= c->ports[i].hi)
			return 1;
	return 0;
}

size_t config_listeners(const struct config *c, const struct config_addr **out)
{
	size_t i, n = 0;

	for (i = 0; i < c->n_listen; i++)
		out[n++] = &c->listen[i];
	for (i = 0; i < c->n_routes; i++)
		out[n++] = &c->routes[i].listen;
	for (i = 0; i < c->n_smtp; i++)
		out[n++] = &c->smtp[i].listen;
	return n;
}

int config_smtp_client_allowed(const struct config_smtp *m, int family, const uint8_t *addr)
{
	size_t i;

	if (addr_is_loopback(family, addr))
		return 1;
	for (i = 0; i < m->n_allow_from; i++)
		if (config_cidr_contains(&m->allow_from[i], family, addr))
			return 1;
	return 0;
}

int config_client_allowed(const struct config *c, int family, const uint8_t *addr)
{
	size_t i;

	if (addr_is_loopback(family, addr))
		return 1;
	for (i = 0; i < c->n_allow_from; i++)
		if (config_cidr_contains(&c->allow_from[i], family, addr))
			return 1;
	return 0;
}

int config_cidr_contains(const struct config_cidr *net, int family, const uint8_t *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != family)
		return 0;
	if (memcmp(net->addr, addr, full) != 0)
		return 0;
	return rest == 0 || ((net->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* normalize_host - a host name in its one normal form (text.h), IP literals unchanged; -1 if neither. */
static int normalize_host(char *h, size_t size)
{
	char norm[TEXT_NAME_MAX];
	uint8_t tmp[16];
	int family;

	if (ip_literal_parse(h, strlen(h), &family, tmp) == 0)
		return 0;
	if (hostname_normalize(h, strlen(h), norm, sizeof(norm)) != NULL)
		return -1;
	snprintf(h, size, "%s", norm);
	return 0;
}

/* normalize_pattern - "*", "*.domain" or a host name, the name part normalised; -1 if none of those. */
static int normalize_pattern(char *p, size_t size)
{
	if (strcmp(p, "*") == 0)
		return 0;
	if (p[0] == '*' && p[1] == '.')
		return normalize_host(p + 2, size - 2);
	return normalize_host(p, size);
}

/* upstream_loopback - an upstream ("IP", "IP@PORT", "[IPv6]@PORT") in 127.0.0.0/8 or ::1 (v4-mapped too). */
static int upstream_loopback(const char *s)
{
	struct config_addr a;
	struct net_addr n;

	if (resolver_addr_parse(s, 53, &n) < 0)
		return 0;
	net_addr_unmap(&n.family, n.addr);
	memset(&a, 0, sizeof(a));
	a.family = n.family;
	memcpy(a.addr, n.addr, sizeof(a.addr));
	return config_is_loopback(&a);
}

/* valid_upstream - "IP", "IP@PORT", "[IPv6]@PORT". */
static int valid_upstream(const char *s)
{
	struct net_addr a;

	return resolver_addr_parse(s, 53, &a) == 0;
}

/* parse_rule - "PATTERN[:PORT] MODE". */
static int parse_rule(const char *s, struct config_rule *r, const char **why)
{
	char pat[CONFIG_HOST_MAX + 8], mode[32];
	const char *sp = strchr(s, ' '), *colon;
	size_t n;

	*why = "expected \"PATTERN[:PORT] MODE\", e.g. \"*.example.com dane-only\"";
	if (sp == NULL || (size_t)(sp - s) >= sizeof(pat))
		return -1;
	memcpy(pat, s, (size_t)(sp - s));
	pat[sp - s] = '\0';
	while (*sp == ' ')
		sp++;
	if (strlen(sp) >= sizeof(mode))
		return -1;
	snprintf(mode, sizeof(mode), "%s", sp);
	n = strlen(mode);
	while (n > 0 && mode[n - 1] == ' ')
		mode[--n] = '\0';
	if (!valid_policy(mode)) {
		*why = "mode must be dane, dane-only or pkix";
		return -1;
	}
	memset(r, 0, sizeof(*r));
	colon = strrchr(pat, ':');
	if (colon != NULL) {
		if (parse_port(colon + 1, &r->port) < 0) {
			*why = "bad port in the pattern";
			return -1;
		}
		pat[colon - pat] = '\0';
	}
	if (normalize_pattern(pat, sizeof(pat)) < 0) {
		*why = "pattern must be a host name, *.domain or *";
		return -1;
	}
	snprintf(r->pattern, sizeof(r->pattern), "%s", pat);
	snprintf(r->policy, sizeof(r->policy), "%s", mode);
	return 0;
}

int config_digests_parse(const char *s, uint8_t out[4], char *why, size_t whylen)
{
	static const struct { const char *name; uint8_t mtype; } known[] = {{"sha256", 1}, {"sha512", 2}};
	uint8_t order[4] = {0};
	size_t n = 0, len, i, k;

	while (*s != '\0') {
		while (*s == ' ' || *s == '\t' || *s == ',')
			s++;
		len = strcspn(s, " \t,");
		if (len == 0)
			break;
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strlen(known[k].name) == len && strncasecmp(s, known[k].name, len) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			snprintf(why, whylen, "\"%.*s\" is not sha256 or sha512", len > 32 ? 32 : (int)len, s);
			return -1;
		}
		for (i = 0; i < n; i++)
			if (order[i] == known[k].mtype) {
				snprintf(why, whylen, "%s is listed twice", known[k].name);
				return -1;
			}
		order[n++] = known[k].mtype;
		s += len;
	}
	if (n == 0) {
		snprintf(why, whylen, "needs at least one of sha256, sha512");
		return -1;
	}
	memcpy(out, order, sizeof(order));
	return 0;
}

/* ---------- applying keys ---------- */

/* set_listen - a listen address (replaces the default listener). */
static int set_listen(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (!c->listen_set) {
		c->listen_set = 1;
		c->n_listen = 0;   /* an explicit listen replaces the default listener */
	}
	if (c->n_listen >= CONFIG_MAX_LISTEN) {
		add_error(c, file, line, k->name, "at most %d listeners", CONFIG_MAX_LISTEN);
		return -1;
	}
	if (parse_addr(value, &c->listen[c->n_listen]) < 0) {
		add_error(c, file, line, k->name, "\"%s\" is not IPv4:PORT or [IPv6]:PORT", value);
		return -1;
	}
	c->n_listen++;
	return 0;
}

/* set_allow_from - a client network. */
static int set_allow_from(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (c->n_allow_from >= CONFIG_MAX_ALLOW) {
		add_error(c, file, line, k->name, "at most %d networks", CONFIG_MAX_ALLOW);
		return -1;
	}
	if (parse_cidr(value, &c->allow_from[c->n_allow_from]) < 0) {
		add_error(c, file, line, k->name, "\"%s\" is not ADDRESS[/PREFIX]", value);
		return -1;
	}
	c->n_allow_from++;
	return 0;
}

/* set_uint - a whole number within the key's range. */
static int set_uint(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;
	unsigned long v;

	if (parse_ulong(value, &v) < 0 || v < k->min || v > k->max) {
		add_error(c, file, line, k->name, "\"%s\" is not a whole number from %lu to %lu", value, k->min,
			  k->max);
		return -1;
	}
	*(unsigned *)(void *)base = (unsigned)v;
	return 0;
}

/* set_duration - a duration within the key's range. */
static int set_duration(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;
	unsigned long v;

	if (parse_duration(value, &v) < 0 || v < k->min || v > k->max) {
		add_error(c, file, line, k->name,
			  "\"%s\" is not a duration from %lums to %lus (e.g. 500ms, 10s, 5m)", value, k->min,
			  k->max / 1000);
		return -1;
	}
	*(unsigned *)(void *)base = (unsigned)v;
	return 0;
}

/* set_bool - yes or no. */
static int set_bool(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;

	if (parse_bool(value, (int *)(void *)base) < 0) {
		add_error(c, file, line, k->name, "\"%s\" is not yes or no", value);
		return -1;
	}
	return 0;
}

/* set_path - a path (log: stderr or a path). */
static int set_path(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;

	if (value[0] == '\0' || strlen(value) >= CONFIG_PATH_MAX) {
		add_error(c, file, line, k->name, "needs a path of 1 to %d bytes", CONFIG_PATH_MAX - 1);
		return -1;
	}
	snprintf(base, CONFIG_PATH_MAX, "%s", value);
	return 0;
}

/* set_policy - dane, dane-only or pkix. */
static int set_policy(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;

	if (!valid_policy(value)) {
		add_error(c, file, line, k->name, "\"%s\" is not dane, dane-only or pkix", value);
		return -1;
	}
	snprintf(base, 16, "%s", value);
	return 0;
}

/* set_transport - tcp (udp is refused). */
static int set_transport(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (strcmp(value, "tcp") != 0 && strcmp(value, "udp") != 0) {
		add_error(c, file, line, k->name, "\"%s\" is not tcp or udp", value);
		return -1;
	}
	if (strcmp(value, "udp") == 0) {
		/* Measured here (tests/test_resolver.c known_bugs): getdns 1.6.0 double-frees when UDP answers are
		 * lost or truncated, and reuses closed descriptors on TCP fallback. A daemon must not run that. */
		add_error(c, file, line, k->name,
			  "udp is refused: getdns 1.6.0 crashes on lost or truncated UDP answers; use tcp");
		return -1;
	}
	c->dns_udp = 0;
	return 0;
}

/* set_validation - self or resolver. */
static int set_validation(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (strcmp(value, "self") != 0 && strcmp(value, "resolver") != 0) {
		add_error(c, file, line, k->name, "\"%s\" is not self or resolver", value);
		return -1;
	}
	c->validation_resolver = strcmp(value, "resolver") == 0;
	/* Remembered for config_validate: the upstream rule is checked on the whole configuration. */
	snprintf(c->validation_file, sizeof(c->validation_file), "%s", file);
	c->validation_line = line;
	return 0;
}

/* set_upstream - a resolver address. */
static int set_upstream(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (c->n_upstreams >= CONFIG_MAX_UPSTREAMS) {
		add_error(c, file, line, k->name, "at most %d resolvers", CONFIG_MAX_UPSTREAMS);
		return -1;
	}
	if (!valid_upstream(value) || strlen(value) >= sizeof(c->upstreams[0])) {
		add_error(c, file, line, k->name, "\"%s\" is not IP, IP@PORT or [IPv6]@PORT", value);
		return -1;
	}
	snprintf(c->upstreams[c->n_upstreams++], sizeof(c->upstreams[0]), "%s", value);
	return 0;
}

/* set_ports - a list of ports and ranges. */
static int set_ports(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	const char *p = value;
	size_t n, before;
	if (!c->ports_set) {
		c->ports_set = 1;   /* a list given replaces the default one */
		c->n_ports = 0;
	}
	before = c->n_ports;
	while (*p) {
		struct config_port_range pr;
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		n = strcspn(p, " ,");
		if (c->n_ports >= CONFIG_MAX_PORTS || parse_port_range(p, n, &pr) < 0) {
			add_error(c, file, line, k->name,
				  "\"%s\" is not a list of up to %d ports or ranges (1-65535, e.g. 443, 8000-8999)",
				  value, CONFIG_MAX_PORTS);
			return -1;
		}
		c->ports[c->n_ports++] = pr;
		p += n;
	}
	if (c->n_ports == before) {
		add_error(c, file, line, k->name, "needs at least one port");
		return -1;
	}
	return 0;
}

/* set_domains - a list of domain names. */
static int set_domains(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	const char *p = value;
	char name[CONFIG_HOST_MAX];
	size_t n;
	c->n_ca_name_constraints = 0;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		n = strcspn(p, " ,");
		if (n == 0)
			break;
		if (n >= sizeof(name) || c->n_ca_name_constraints >= CONFIG_MAX_CONSTRAINTS) {
			add_error(c, file, line, k->name, "at most %d names of up to 253 bytes", CONFIG_MAX_CONSTRAINTS);
			return -1;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (!hostname_valid(name) || strchr(name, '.') == NULL ||
		    normalize_host(name, sizeof(name)) < 0) {
			add_error(c, file, line, k->name, "\"%s\" is not a domain name", name);
			return -1;
		}
		snprintf(c->ca_name_constraints[c->n_ca_name_constraints++], CONFIG_HOST_MAX, "%s", name);
		p += n;
	}
	if (c->n_ca_name_constraints == 0) {
		add_error(c, file, line, k->name, "needs at least one domain");
		return -1;
	}
	return 0;
}

/* set_pattern - a host name pattern. */
static int set_pattern(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (c->n_passthrough >= CONFIG_MAX_PASSTHROUGH) {
		add_error(c, file, line, k->name, "at most %d entries", CONFIG_MAX_PASSTHROUGH);
		return -1;
	}
	snprintf(c->passthrough[c->n_passthrough], CONFIG_HOST_MAX, "%s", value);
	if (strlen(value) >= CONFIG_HOST_MAX || normalize_pattern(c->passthrough[c->n_passthrough], CONFIG_HOST_MAX) < 0) {
		add_error(c, file, line, k->name, "\"%s\" is not a host name, *.domain or *", value);
		return -1;
	}
	c->n_passthrough++;
	return 0;
}

/* set_digests - the DANE digest preference. */
static int set_digests(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char *base = (char *)c + k->offset;

	char problem[120];
	if (config_digests_parse(value, (uint8_t *)base, problem, sizeof(problem)) < 0) {
		add_error(c, file, line, k->name, "%s", problem);
		return -1;
	}
	return 0;
}

/* set_workers - auto, or a count within the key's range. */
static int set_workers(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	unsigned long v;

	if (strcmp(value, "auto") == 0) {
		c->workers = 0;
		return 0;
	}
	if (parse_ulong(value, &v) < 0 || v < k->min || v > k->max) {
		add_error(c, file, line, k->name, "\"%s\" is not auto or a whole number from %lu to %lu", value, k->min,
			  k->max);
		return -1;
	}
	c->workers = (unsigned)v;
	return 0;
}

/* set_address - one ADDR:PORT. */
static int set_address(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	struct config_addr *a = (struct config_addr *)(void *)((char *)c + k->offset);

	if (parse_addr(value, a) < 0) {
		add_error(c, file, line, k->name, "\"%s\" is not IPv4:PORT or [IPv6]:PORT", value);
		return -1;
	}
	return 0;
}

/* set_terminate - always or dane. */
static int set_terminate(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	if (strcmp(value, "always") != 0 && strcmp(value, "dane") != 0) {
		add_error(c, file, line, k->name, "\"%s\" is not always or dane", value);
		return -1;
	}
	c->terminate_dane = strcmp(value, "dane") == 0;
	return 0;
}

/* set_rule - a destination policy rule. */
static int set_rule(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	const char *why;

	if (c->n_rules >= CONFIG_MAX_RULES) {
		add_error(c, file, line, k->name, "at most %d rules", CONFIG_MAX_RULES);
		return -1;
	}
	if (parse_rule(value, &c->rules[c->n_rules], &why) < 0) {
		add_error(c, file, line, k->name, "\"%s\": %s", value, why);
		return -1;
	}
	c->n_rules++;
	return 0;
}

/* valid_user_name - 1..32 bytes of letters, digits, '_', '-', '.', not starting with '-' or a digit (useradd's
 * rule with Debian's relaxations), optionally ending in '$'. */
static int valid_user_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= CONFIG_USER_MAX || s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
		    ch == '-' || ch == '.' || (ch == '$' && i == n - 1))
			continue;
		return 0;
	}
	return 1;
}

/* check_user - the account exists and is not root; -1 with the problem in why. */
static int check_user(const char *name, char *why, size_t whylen)
{
	struct passwd pw, *found = NULL;
	char *buf;
	size_t buflen = 16384;
	int rc;

	if (!valid_user_name(name)) {
		snprintf(why, whylen, "\"%.40s\" is not a user name", name);
		return -1;
	}
	if ((buf = malloc(buflen)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	rc = getpwnam_r(name, &pw, buf, buflen, &found);
	if (rc != 0 || found == NULL) {
		if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
			snprintf(why, whylen, "no such user \"%s\" on this host (useradd --system %s creates one)", name,
				 name);
		else
			snprintf(why, whylen, "cannot look up user \"%s\": %s", name, strerror(rc));
		free(buf);
		return -1;
	}
	rc = found->pw_uid == 0 ? -1 : 0;
	if (rc < 0)
		snprintf(why, whylen, "\"%s\" has uid 0: name an unprivileged account", name);
	free(buf);
	return rc;
}

/* set_user - [proxy] user: an existing account other than root, checked now so that -t names a missing one. */
static int set_user(struct config *c, const struct key_def *k, const char *value, const char *file, int line)
{
	char problem[160];

	if (check_user(value, problem, sizeof(problem)) < 0) {
		add_error(c, file, line, k->name, "%s", problem);
		return -1;
	}
	snprintf((char *)c + k->offset, CONFIG_USER_MAX, "%s", value);
	return 0;
}

/* route_find_or_add - the route of a [route NAME] section. */
static struct config_route *route_find_or_add(struct config *c, const char *name, const char *file, int line)
{
	size_t i;

	for (i = 0; i < c->n_routes; i++)
		if (strcmp(c->routes[i].name, name) == 0)
			return &c->routes[i];
	if (c->n_routes >= CONFIG_MAX_ROUTES) {
		add_error(c, file, line, "route", "at most %d routes", CONFIG_MAX_ROUTES);
		return NULL;
	}
	memset(&c->routes[c->n_routes], 0, sizeof(c->routes[0]));
	snprintf(c->routes[c->n_routes].name, sizeof(c->routes[0].name), "%s", name);
	if (line > 0)
		snprintf(c->routes[c->n_routes].origin, sizeof(c->routes[0].origin), "%s:%d", file, line);
	else
		snprintf(c->routes[c->n_routes].origin, sizeof(c->routes[0].origin), "%s", file);
	return &c->routes[c->n_routes++];
}

static int set_route_key_checked(struct config *c, struct config_route *r, const char *key, const char *value,
				 const char *file, int line);

/* set_route_key - listen / target / policy / starttls of a route. */
static int set_route_key(struct config *c, struct config_route *r, const char *key, const char *value, const char *file,
			 int line)
{
	int rc = set_route_key_checked(c, r, key, value, file, line);

	if (rc < 0)
		r->broken = 1;   /* already reported: whole-route checks would only repeat it */
	return rc;
}

static int set_route_key_checked(struct config *c, struct config_route *r, const char *key, const char *value,
				 const char *file, int line)
{
	if (strcmp(key, "listen") == 0) {
		if (parse_addr(value, &r->listen) < 0) {
			add_error(c, file, line, key, "\"%s\" is not IPv4:PORT or [IPv6]:PORT", value);
			return -1;
		}
	} else if (strcmp(key, "target") == 0) {
		if (split_host_port(value, r->host, sizeof(r->host), &r->port) < 0 ||
		    normalize_host(r->host, sizeof(r->host)) < 0) {
			add_error(c, file, line, key, "\"%s\" is not HOST:PORT", value);
			r->host[0] = '\0';
			return -1;
		}
	} else if (strcmp(key, "policy") == 0) {
		if (!valid_policy(value)) {
			add_error(c, file, line, key, "\"%s\" is not dane, dane-only or pkix", value);
			return -1;
		}
		snprintf(r->policy, sizeof(r->policy), "%s", value);
	} else if (strcmp(key, "starttls") == 0) {
		if (strcmp(value, "smtp") != 0 && strcmp(value, "none") != 0) {
			add_error(c, file, line, key, "\"%s\" is not smtp or none", value);
			return -1;
		}
		snprintf(r->starttls, sizeof(r->starttls), "%s", strcmp(value, "none") ? value : "");
	} else {
		add_error(c, file, line, key, "unknown key in a [route] section (listen, target, policy, starttls)");
		return -1;
	}
	return 0;
}

/* smtp_find_or_add - the smarthost of an [smtp NAME] section, with its defaults. */
static struct config_smtp *smtp_find_or_add(struct config *c, const char *name, const char *file, int line)
{
	struct config_smtp *m;
	size_t i;

	for (i = 0; i < c->n_smtp; i++)
		if (strcmp(c->smtp[i].name, name) == 0)
			return &c->smtp[i];
	if (c->n_smtp >= CONFIG_MAX_SMTP) {
		add_error(c, file, line, "smtp", "at most %d smtp listeners", CONFIG_MAX_SMTP);
		return NULL;
	}
	m = &c->smtp[c->n_smtp++];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	snprintf(m->policy, sizeof(m->policy), "dane");
	parse_addr("127.0.0.1:2525", &m->listen);   /* loopback: what a local MTA relays to */
	m->mx_port = 25;
	m->max_message_size = 52428800;
	m->reply_timeout_ms = 300000;
	m->data_timeout_ms = 600000;
	m->max_attempts = 10;
	if (line > 0)
		snprintf(m->origin, sizeof(m->origin), "%s:%d", file, line);
	else
		snprintf(m->origin, sizeof(m->origin), "%s", file);
	return m;
}

/* set_smtp_key - one key of an [smtp NAME] section (smtp_keys lists them). */
static int set_smtp_key(struct config *c, struct config_smtp *m, const char *key, const char *value, const char *file,
			int line)
{
	unsigned long v;

	if (strcmp(key, "listen") == 0) {
		if (parse_addr(value, &m->listen) < 0) {
			add_error(c, file, line, key, "\"%s\" is not IPv4:PORT or [IPv6]:PORT", value);
			goto fail;
		}
	} else if (strcmp(key, "allow_from") == 0) {
		if (m->n_allow_from >= CONFIG_MAX_ALLOW || parse_cidr(value, &m->allow_from[m->n_allow_from]) < 0) {
			add_error(c, file, line, key, "\"%s\" is not ADDRESS[/PREFIX] (at most %d networks)", value,
				  CONFIG_MAX_ALLOW);
			goto fail;
		}
		m->n_allow_from++;
	} else if (strcmp(key, "helo") == 0) {
		snprintf(m->helo, sizeof(m->helo), "%s", value);
		if (strlen(value) >= sizeof(m->helo) || !hostname_valid(value) || normalize_host(m->helo, sizeof(m->helo)) < 0) {
			add_error(c, file, line, key, "\"%s\" is not a host name", value);
			m->helo[0] = '\0';
			goto fail;
		}
	} else if (strcmp(key, "policy") == 0) {
		if (strcmp(value, "dane") != 0 && strcmp(value, "dane-only") != 0 && strcmp(value, "encrypt") != 0) {
			add_error(c, file, line, key, "\"%s\" is not dane, dane-only or encrypt", value);
			goto fail;
		}
		snprintf(m->policy, sizeof(m->policy), "%s", value);
	} else if (strcmp(key, "mx_port") == 0) {
		if (parse_port(value, &m->mx_port) < 0) {
			add_error(c, file, line, key, "\"%s\" is not a port (1-65535)", value);
			goto fail;
		}
	} else if (strcmp(key, "max_message_size") == 0) {
		if (parse_ulong(value, &v) < 0 || v < 1024) {
			add_error(c, file, line, key, "\"%s\" is not a whole number of octets from 1024 to 4294967295", value);
			goto fail;
		}
		m->max_message_size = v;
	} else if (strcmp(key, "reply_timeout") == 0 || strcmp(key, "data_timeout") == 0) {
		if (parse_duration(value, &v) < 0 || v < 1000 || v > 3600000) {
			add_error(c, file, line, key, "\"%s\" is not a duration from 1s to 1h (e.g. 30s, 5m)", value);
			goto fail;
		}
		*(key[0] == 'r' ? &m->reply_timeout_ms : &m->data_timeout_ms) = (unsigned)v;
	} else if (strcmp(key, "max_attempts") == 0) {
		if (parse_ulong(value, &v) < 0 || v < 1 || v > 100) {
			add_error(c, file, line, key, "\"%s\" is not a whole number from 1 to 100", value);
			goto fail;
		}
		m->max_attempts = (unsigned)v;
	} else {
		add_error(c, file, line, key,
			  "unknown key in an [smtp] section (listen, allow_from, helo, policy, mx_port, max_message_size, "
			  "reply_timeout, data_timeout, max_attempts)");
		goto fail;
	}
	return 0;
fail:
	m->broken = 1;
	return -1;
}

/* apply - one key=value from a file or the command line. */
static int apply(struct config *c, const char *section, const char *key, const char *value, const char *file, int line)
{
	size_t i;

	if (strncmp(section, "route ", 6) == 0) {
		const char *name = section + 6;
		struct config_route *r;
		while (*name == ' ')
			name++;
		if (*name == '\0' || strlen(name) >= sizeof(c->routes[0].name)) {
			add_error(c, file, line, key, "a route section needs a name: [route NAME]");
			return -1;
		}
		r = route_find_or_add(c, name, file, line);
		if (r == NULL)
			return -1;
		/* The table decides which keys exist, as for every other section (the manual is checked against it). */
		for (i = 0; i < N_ROUTE_KEYS; i++)
			if (strcmp(route_keys[i].name, key) == 0)
				return set_route_key(c, r, key, value, file, line);
		add_error(c, file, line, key, "unknown key in a [route] section (listen, target, policy, starttls)");
		r->broken = 1;
		return -1;
	}
	if (strncmp(section, "smtp ", 5) == 0) {
		const char *name = section + 5;
		struct config_smtp *m;
		while (*name == ' ')
			name++;
		if (*name == '\0' || strlen(name) >= sizeof(c->smtp[0].name)) {
			add_error(c, file, line, key, "an smtp section needs a name: [smtp NAME]");
			return -1;
		}
		m = smtp_find_or_add(c, name, file, line);
		return m == NULL ? -1 : set_smtp_key(c, m, key, value, file, line);
	}
	if (strcmp(section, "smtp") == 0) {
		/* --smtp-mx-port and friends: the smarthost the command line created last */
		if (c->n_smtp == 0 || strncmp(c->smtp[c->n_smtp - 1].name, "cli-", 4) != 0) {
			add_error(c, file, line, key, "needs --smtp LISTEN_ADDR:PORT before it");
			return -1;
		}
		return set_smtp_key(c, &c->smtp[c->n_smtp - 1], key, value, file, line);
	}
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, key) == 0)
			return keys[i].parse(c, &keys[i], value, file, line);
	for (i = 0; i < N_KEYS; i++)
		if (strcmp(keys[i].section, section) == 0)
			break;
	if (i == N_KEYS)
		add_error(c, file, line, key, "unknown section [%s] (proxy, connect, resolver, policy, metrics, route NAME, smtp NAME)",
			  section);
	else
		add_error(c, file, line, key, "unknown key in section [%s]", section);
	return -1;
}

/* ---------- INI loading ---------- */

struct ini_state {
	struct config *c;
	const char *name;
	const char *p;
	const char *end;
	int line;
};

static struct config_route *route_find_or_add(struct config *c, const char *name, const char *file, int line);
static struct config_smtp *smtp_find_or_add(struct config *c, const char *name, const char *file, int line);

/*
 * check_line - syntax of one line (leading blanks already gone): blank, comment, [section] or key = value.
 * A bad line is reported here, with its number, and handed to inih as blank, so every bad line is reported
 * (inih itself only returns the first). A [route NAME] header creates the route at once, so an empty route
 * section is reported and route errors point at the header.
 */
static int check_line(struct ini_state *st, const char *s, size_t n)
{
	const char *close;
	char name[80];
	size_t k;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n == 0 || s[0] == ';' || s[0] == '#')
		return 0;
	if (s[0] == '[') {
		close = memchr(s, ']', n);
		if (close == NULL) {
			add_error(st->c, st->name, st->line, "syntax", "section header without ']'");
			return -1;
		}
		if (close - s > 5 && strncmp(s + 1, "smtp ", 5) == 0) {
			const char *r = s + 6;
			while (*r == ' ' && r < close)
				r++;
			k = (size_t)(close - r);
			if (k > 0 && k < sizeof(name) && k < sizeof(st->c->smtp[0].name)) {
				memcpy(name, r, k);
				name[k] = '\0';
				smtp_find_or_add(st->c, name, st->name, st->line);
			}
		}
		if (close - s > 6 && strncmp(s + 1, "route ", 6) == 0) {
			const char *r = s + 7;
			while (*r == ' ' && r < close)
				r++;
			k = (size_t)(close - r);
			if (k > 0 && k < sizeof(name) && k < sizeof(st->c->routes[0].name)) {
				memcpy(name, r, k);
				name[k] = '\0';
				route_find_or_add(st->c, name, st->name, st->line);
			}
		}
		return 0;
	}
	if (memchr(s, '=', n) == NULL && memchr(s, ':', n) == NULL) {
		add_error(st->c, st->name, st->line, "syntax", "expected [section], key = value, or a ; comment");
		return -1;
	}
	return 0;
}

/* ini_read_line - inih's reader: one line per call, counted, never more than num - 1 bytes. */
static char *ini_read_line(char *str, int num, void *stream)
{
	struct ini_state *st = stream;
	const char *nl, *s;
	size_t n, take;

	if (st->p >= st->end)
		return NULL;
	nl = memchr(st->p, '\n', (size_t)(st->end - st->p));
	n = nl ? (size_t)(nl - st->p) : (size_t)(st->end - st->p);
	st->line++;
	/* No continuation lines: an indented "key = value" is a key of its own, not part of the previous value. */
	s = st->p;
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	take = n;
	if (n + 2 > (size_t)num) {
		add_error(st->c, st->name, st->line, "line", "longer than %d bytes", num - 2);
		take = 0;
	} else if (memchr(s, '\0', n) != NULL) {
		add_error(st->c, st->name, st->line, "line", "contains a NUL byte");
		take = 0;
	} else if (check_line(st, s, n) < 0) {
		take = 0;
	}
	memcpy(str, s, take);
	str[take] = '\n';
	str[take + 1] = '\0';
	st->p = nl ? nl + 1 : st->end;
	return str;
}

static int ini_on_key(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;

	apply(st->c, section, name, value, st->name, st->line);
	return 1;   /* keep going: every error is reported */
}

size_t config_load_string(struct config *c, const char *text, size_t len, const char *name)
{
	struct ini_state st = {c, name, text, text + len, 0};
	size_t before = c->n_errors + c->n_errors_dropped;
	int r = ini_parse_stream(ini_read_line, &st, ini_on_key, &st);

	if (r > 0)
		add_error(c, name, r, "syntax", "expected [section], key = value, or a ; comment");
	else if (r < 0)
		add_error(c, name, 0, "file", "could not be parsed (out of memory)");
	return c->n_errors + c->n_errors_dropped - before;
}

size_t config_load_file(struct config *c, const char *path)
{
	char *buf, err[CONFIG_PATH_MAX + 80];
	size_t len, errs;

	if (file_read_all(path, CONFIG_MAX_FILE, &buf, &len, err, sizeof(err)) < 0) {
		/* err names the path already */
		add_error(c, path, 0, "file", "%s", strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':'
							    ? err + strlen(path) + 2 : err);
		return 1;
	}
	errs = config_load_string(c, buf, len, path);
	free(buf);
	return errs;
}

/* ---------- defaults, command line, validation ---------- */

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	parse_addr("127.0.0.1:8080", &c->listen[0]);
	c->n_listen = 1;
	c->max_connections = 1024;
	c->idle_timeout_ms = 300000;
	c->header_timeout_ms = 30000;
	c->connect_timeout_ms = 10000;
	c->handshake_timeout_ms = 10000;
	c->shutdown_grace_ms = 10000;
	c->origin_keepalive_ms = 10000;
	c->origin_sessions = 1024;   /* RUNTIME_DEFAULT_SESSIONS (config/ sees nothing of proxy/) */
	snprintf(c->log, sizeof(c->log), "stderr");
	/* The TLS ports of the seed articles: HTTPS, SMTPS, IMAPS, POP3S, and 8443. */
	{
		static const uint16_t default_ports[] = {443, 465, 993, 995, 8443};
		for (size_t i = 0; i < sizeof(default_ports) / sizeof(default_ports[0]); i++)
			c->ports[i].lo = c->ports[i].hi = default_ports[i];
		c->n_ports = sizeof(default_ports) / sizeof(default_ports[0]);
	}
	c->mint_cache_size = 1000;
	c->dns_timeout_ms = 5000;
	c->cache_size = 10000;
	c->ttl_min_s = 5;
	c->ttl_max_s = 3600;
	c->failure_ttl_s = 2;
	snprintf(c->policy, sizeof(c->policy), "dane");
}

int config_set(struct config *c, const char *section, const char *key, const char *value, const char *origin)
{
	char name[32], listen[96];
	const char *eq;
	struct config_route *r;

	if (strcmp(key, "route") == 0) {
		/* --route LISTEN_ADDR:PORT=HOST:PORT */
		eq = strchr(value, '=');
		if (eq == NULL || (size_t)(eq - value) >= sizeof(listen)) {
			add_error(c, origin, 0, "route", "\"%s\" is not LISTEN_ADDR:PORT=HOST:PORT", value);
			return -1;
		}
		memcpy(listen, value, (size_t)(eq - value));
		listen[eq - value] = '\0';
		snprintf(name, sizeof(name), "cli-%zu", c->n_routes + 1);
		r = route_find_or_add(c, name, origin, 0);
		if (r == NULL)
			return -1;
		if (set_route_key(c, r, "listen", listen, origin, 0) < 0 || set_route_key(c, r, "target", eq + 1, origin, 0) < 0)
			return -1;
		return 0;
	}
	if (strcmp(key, "smtp") == 0 && section[0] == '\0') {
		/* --smtp LISTEN_ADDR:PORT: a smarthost with the defaults */
		struct config_smtp *m;
		snprintf(name, sizeof(name), "cli-%zu", c->n_smtp + 1);
		m = smtp_find_or_add(c, name, origin, 0);
		return m == NULL ? -1 : set_smtp_key(c, m, "listen", value, origin, 0);
	}
	return apply(c, section, key, value, origin, 0);
}

/* same_addr - two listeners on one address and port. */
static int same_addr(const struct config_addr *a, const struct config_addr *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

/* listener_catches - a connection to (family, addr, port) would arrive on listener l. */
static int listener_catches(const struct config_addr *l, int family, const uint8_t *addr, uint16_t port, int local)
{
	if (l->port != port)
		return 0;
	if (addr_is_wildcard(l->family, l->addr))   /* [::] is dual-stack: it takes IPv4 too */
		return (l->family == AF_INET6 || family == AF_INET) &&
		       (local || addr_is_loopback(family, addr) || addr_is_wildcard(family, addr));
	return l->family == family && memcmp(l->addr, addr, family == AF_INET ? 4 : 16) == 0;
}

int config_listens_on(const struct config *c, int family, const uint8_t *addr_in, uint16_t port, int local)
{
	uint8_t addr[16];
	size_t i;

	memcpy(addr, addr_in, family == AF_INET ? 4 : 16);
	net_addr_unmap(&family, addr);
	/* Connecting to 0.0.0.0 or :: reaches this host. */
	local |= addr_is_wildcard(family, addr);
	for (i = 0; i < c->n_listen; i++)
		if (listener_catches(&c->listen[i], family, addr, port, local))
			return 1;
	for (i = 0; i < c->n_routes; i++)
		if (c->routes[i].listen.port != 0 && listener_catches(&c->routes[i].listen, family, addr, port, local))
			return 1;
	for (i = 0; i < c->n_smtp; i++)
		if (c->smtp[i].listen.port != 0 && listener_catches(&c->smtp[i].listen, family, addr, port, local))
			return 1;
	return 0;
}

size_t config_validate(struct config *c)
{
	size_t before = c->n_errors + c->n_errors_dropped, i, j;
	int public_listener = 0;

	for (i = 0; i < c->n_routes; i++) {
		struct config_route *r = &c->routes[i];
		if (r->broken) {
			public_listener |= r->listen.port != 0 && !r->listen.loopback;
			continue;
		}
		if (r->listen.port == 0)
			add_error(c, r->origin, 0, "route", "route \"%s\" has no listen address", r->name);
		if (r->host[0] == '\0')
			add_error(c, r->origin, 0, "route", "route \"%s\" has no target HOST:PORT", r->name);
		if (r->listen.port != 0 && !r->listen.loopback)
			public_listener = 1;
		for (j = 0; j < c->n_listen; j++)
			if (r->listen.port != 0 && same_addr(&r->listen, &c->listen[j]))
				add_error(c, r->origin, 0, "route", "listen %s is also the HTTP proxy listener",
					  r->listen.text);
		for (j = 0; j < i; j++)
			if (r->listen.port != 0 && same_addr(&r->listen, &c->routes[j].listen))
				add_error(c, r->origin, 0, "route", "listen %s is used by route \"%s\" too", r->listen.text,
					  c->routes[j].name);
		/* A route to one of our own listeners would feed itself (one client, max_connections connections). */
		{
			uint8_t addr[16];
			int family;
			if (ip_literal_parse(r->host, strlen(r->host), &family, addr) == 0 &&
			    config_listens_on(c, family, addr, r->port, 0))
				add_error(c, r->origin, 0, "route", "route \"%s\" targets %s:%u, one of the proxy's own listeners",
					  r->name, r->host, r->port);
		}
	}
	for (i = 0; i < c->n_listen; i++) {
		if (!c->listen[i].loopback)
			public_listener = 1;
		for (j = 0; j < i; j++)
			if (same_addr(&c->listen[i], &c->listen[j]))
				add_error(c, "configuration", 0, "listen", "%s is given twice", c->listen[i].text);
	}
	for (i = 0; i < c->n_smtp; i++) {
		struct config_smtp *m = &c->smtp[i];
		if (m->broken)
			continue;
		if (m->listen.port == 0) {
			add_error(c, m->origin, 0, "smtp", "smtp \"%s\" has no listen address", m->name);
			continue;
		}
		/* Never an open relay: off loopback, the section names the mail clients it relays for. */
		if (!m->listen.loopback && m->n_allow_from == 0)
			add_error(c, m->origin, 0, "allow_from",
				  "smtp \"%s\" listens on %s, not loopback: it needs allow_from (the mail clients it relays for)",
				  m->name, m->listen.text);
		for (j = 0; j < c->n_listen; j++)
			if (same_addr(&m->listen, &c->listen[j]))
				add_error(c, m->origin, 0, "smtp", "listen %s is also the HTTP proxy listener", m->listen.text);
		for (j = 0; j < c->n_routes; j++)
			if (same_addr(&m->listen, &c->routes[j].listen))
				add_error(c, m->origin, 0, "smtp", "listen %s is also route \"%s\"'s listener", m->listen.text,
					  c->routes[j].name);
		for (j = 0; j < i; j++)
			if (same_addr(&m->listen, &c->smtp[j].listen))
				add_error(c, m->origin, 0, "smtp", "listen %s is used by smtp \"%s\" too", m->listen.text,
					  c->smtp[j].name);
	}
	if (c->metrics_listen.port != 0) {
		if (!c->metrics_listen.loopback)
			public_listener = 1;   /* the metrics are served under the same allow_from rule */
		for (j = 0; j < c->n_listen; j++)
			if (same_addr(&c->metrics_listen, &c->listen[j]))
				add_error(c, "configuration", 0, "metrics", "listen %s is also the HTTP proxy listener",
					  c->metrics_listen.text);
		for (j = 0; j < c->n_routes; j++)
			if (same_addr(&c->metrics_listen, &c->routes[j].listen))
				add_error(c, "configuration", 0, "metrics", "listen %s is also route \"%s\"'s listener",
					  c->metrics_listen.text, c->routes[j].name);
	}
	if (c->n_listen == 0 && c->n_routes == 0 && c->n_smtp == 0)
		add_error(c, "configuration", 0, "listen", "no listener and no route: nothing to do");
	/* Never an open proxy: a listener off loopback needs an explicit list of client networks. */
	if (public_listener && c->n_allow_from == 0)
		add_error(c, "configuration", 0, "allow_from",
			  "a listener on a non-loopback address needs allow_from (the client networks it serves)");
	if (c->ttl_max_s < c->ttl_min_s)
		add_error(c, "configuration", 0, "ttl_max", "smaller than ttl_min");
	/* validation = resolver takes the AD bit on trust: only over loopback, from resolvers named here. */
	if (c->validation_resolver) {
		if (c->n_upstreams == 0)
			add_error(c, c->validation_file, c->validation_line, "validation",
				  "resolver needs [resolver] upstream set to validating resolvers on loopback "
				  "(/etc/resolv.conf is not trusted for the AD bit)");
		for (i = 0; i < c->n_upstreams; i++)
			if (!upstream_loopback(c->upstreams[i]))
				add_error(c, c->validation_file, c->validation_line, "validation",
					  "resolver trusts the AD bit only from loopback: upstream %s is not in "
					  "127.0.0.0/8 or ::1 (use validation = self, or run a validating resolver "
					  "on this host)", c->upstreams[i]);
	}
	return c->n_errors + c->n_errors_dropped - before;
}

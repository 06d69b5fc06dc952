/*
 * config.h - daneproxy's configuration: one plain struct, filled from the embedded defaults, an INI file
 * (libinih) and command-line options, validated as a whole, then frozen.
 *
 * Every key has one row in the table in config.c (section, name, type, range, default). Errors are collected,
 * all of them, as "file:line: key: problem". config/ knows nothing of proxy/: policies are plain names here.
 */
#ifndef DANEPROXY_CONFIG_H
#define DANEPROXY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_ROUTES 64
#define CONFIG_MAX_RULES 256
#define CONFIG_MAX_ALLOW 64
#define CONFIG_MAX_UPSTREAMS 8
#define CONFIG_MAX_ERRORS 64
#define CONFIG_MAX_PORTS 32
#define CONFIG_MAX_PASSTHROUGH 64
#define CONFIG_MAX_CONSTRAINTS 32
#define CONFIG_PATH_MAX 1024
#define CONFIG_HOST_MAX 254
#define CONFIG_MAX_SMTP 16
#define CONFIG_USER_MAX 33                  /* a user name of up to 32 bytes (useradd's limit) */

/* An address to listen on: IPv4 or IPv6 and a port. */
struct config_addr {
	char text[80];          /* as written, for messages */
	int family;             /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
	int loopback;
};

struct config_route {
	char name[64];
	struct config_addr listen;
	char host[CONFIG_HOST_MAX];
	uint16_t port;
	char policy[16];        /* "" = the default policy */
	char starttls[8];       /* "" or "smtp" */
	char origin[CONFIG_PATH_MAX + 16];   /* "file:line" where it was defined */
	int broken;                          /* a key of it was rejected (and reported) */
};

struct config_rule {
	char pattern[CONFIG_HOST_MAX];
	uint16_t port;          /* 0 = any */
	char policy[16];
};

/* A port or a range of ports, lo..hi inclusive. */
struct config_port_range {
	uint16_t lo;
	uint16_t hi;
};

struct config_cidr {
	int family;
	uint8_t addr[16];
	unsigned prefix;
};

/* An SMTP smarthost listener: [smtp NAME] or --smtp. */
struct config_smtp {
	char name[64];
	struct config_addr listen;
	struct config_cidr allow_from[CONFIG_MAX_ALLOW];   /* the mail clients it relays for (loopback always) */
	size_t n_allow_from;
	char helo[CONFIG_HOST_MAX];         /* the EHLO name towards MX hosts; "" = this host's name */
	char policy[16];                    /* dane (default), dane-only or encrypt */
	uint16_t mx_port;                   /* the MX port, 25 */
	uint64_t max_message_size;          /* octets, announced as SIZE */
	unsigned reply_timeout_ms;          /* each MX reply but the last of DATA (RFC 5321 4.5.3.2: 5 min) */
	unsigned data_timeout_ms;           /* the MX's reply to the end of data (RFC 5321 4.5.3.2.6: 10 min) */
	unsigned max_attempts;              /* MX connections tried per delivery, over all hosts and addresses */
	char origin[CONFIG_PATH_MAX + 16];  /* "file:line" where it was defined */
	int broken;
};

struct config {
	/* [proxy] */
	struct config_addr listen[CONFIG_MAX_LISTEN];
	size_t n_listen;
	int listen_set;                      /* listen given explicitly (the default listener is dropped) */
	struct config_cidr allow_from[CONFIG_MAX_ALLOW];
	size_t n_allow_from;
	unsigned max_connections;
	unsigned workers;                    /* worker processes; 0 = auto (the CPUs the process may use) */
	struct config_addr metrics_listen;   /* [metrics] listen: GET /metrics; port 0 = none */
	unsigned idle_timeout_ms;
	unsigned header_timeout_ms;
	unsigned connect_timeout_ms;
	unsigned handshake_timeout_ms;
	unsigned shutdown_grace_ms;
	unsigned origin_keepalive_ms;        /* a verified origin connection kept between a client's requests */
	unsigned origin_sessions;            /* origin TLS sessions kept for resumption, per worker; 0 = none */
	char log[CONFIG_PATH_MAX];           /* "stderr" or a file path */
	char user[CONFIG_USER_MAX];          /* account to switch to when started as root; "" = none */
	/* CONNECT termination */
	char state_dir[CONFIG_PATH_MAX];     /* local CA; "" = the per-user or system default */
	struct config_port_range ports[CONFIG_MAX_PORTS];   /* destination ports clients may choose */
	size_t n_ports;
	int ports_set;
	char passthrough[CONFIG_MAX_PASSTHROUGH][CONFIG_HOST_MAX];   /* names tunnelled without termination */
	size_t n_passthrough;
	unsigned mint_cache_size;
	int terminate_dane;                  /* [connect] terminate = dane: tunnel untouched where DANE does not apply */
	char ca_name_constraints[CONFIG_MAX_CONSTRAINTS][CONFIG_HOST_MAX];   /* permitted DNS subtrees of the CA */
	size_t n_ca_name_constraints;
	/* [resolver] */
	char upstreams[CONFIG_MAX_UPSTREAMS][64];
	size_t n_upstreams;
	char trust_anchor[CONFIG_PATH_MAX];  /* "" = the system root key */
	int dns_udp;
	int validation_resolver;             /* validation = resolver: the upstream's AD bit decides */
	char validation_file[CONFIG_PATH_MAX];   /* where validation was set, for config_validate's messages */
	int validation_line;
	unsigned dns_timeout_ms;
	unsigned cache_size;
	unsigned ttl_min_s;
	unsigned ttl_max_s;
	unsigned failure_ttl_s;
	/* [policy] */
	char policy[16];
	char ca_file[CONFIG_PATH_MAX];       /* "" = the system store */
	int ee_namecheck;
	uint8_t digests[4];                  /* DANE matching types, strongest first, 0-terminated; {0}: sha512, sha256 */
	struct config_rule rules[CONFIG_MAX_RULES];
	size_t n_rules;
	/* [route NAME] sections and --route */
	struct config_route routes[CONFIG_MAX_ROUTES];
	size_t n_routes;
	/* [smtp NAME] sections and --smtp */
	struct config_smtp smtp[CONFIG_MAX_SMTP];
	size_t n_smtp;

	/* every problem found, "file:line: key: problem" */
	char errors[CONFIG_MAX_ERRORS][300];
	size_t n_errors;
	size_t n_errors_dropped;
};

/* config_defaults - the embedded default: HTTP proxy on 127.0.0.1:8080, system resolvers, root anchor, dane. */
void config_defaults(struct config *c);

/* config_load_file - apply an INI file; problems are appended to c->errors. Returns the number of new errors. */
size_t config_load_file(struct config *c, const char *path);
/* config_load_string - the same for text already in memory; name is used in messages (and by the fuzzer). */
size_t config_load_string(struct config *c, const char *text, size_t len, const char *name);

/*
 * config_set - apply one setting from the command line ("listen", "route", "resolver", "trust-anchor",
 * "ca-file", "policy", ...); origin names it in messages (e.g. "--route"). Returns 0 or -1 (error recorded).
 */
int config_set(struct config *c, const char *section, const char *key, const char *value, const char *origin);

/* config_validate - whole-configuration checks (open-proxy rule, duplicate listeners, ...). Returns errors added. */
size_t config_validate(struct config *c);

/*
 * config_digests_parse - a DANE digest preference, "sha512, sha256" (names separated by commas or blanks, any
 * case, strongest first), into out as TLSA matching types (1 SHA-256, 2 SHA-512), 0-terminated. A digest left out
 * is not used at all (Postfix's tls_dane_digests). Returns 0, or -1 with the problem in why (out unchanged).
 */
int config_digests_parse(const char *s, uint8_t out[4], char *why, size_t whylen);

/*
 * One key of the configuration file as the loader knows it, for the manual and its tests (config_key_at).
 * section is "proxy", "connect", "resolver", "policy", or "route" for the keys of every [route NAME] section.
 */
struct config_key_info {
	const char *section;
	const char *name;
	const char *type;       /* what the value is: "duration", "number", "path", "address list", ... */
	const char *help;       /* one line */
};

/* config_key_count - how many keys the loader knows (the table plus the [route NAME] keys). */
size_t config_key_count(void);
/* config_key_at - key i (0 .. config_key_count() - 1) into out, in table order; -1 when i is past the end. */
int config_key_at(size_t i, struct config_key_info *out);

/* config_is_loopback - 1 when addr is in 127.0.0.0/8 or ::1. */
int config_is_loopback(const struct config_addr *a);
#define CONFIG_MAX_LISTENERS (CONFIG_MAX_LISTEN + CONFIG_MAX_ROUTES + CONFIG_MAX_SMTP)
/* config_listeners - every listening address in worker order: listen[], then routes[], then smtp[]; the count
 * (at most CONFIG_MAX_LISTENERS). */
size_t config_listeners(const struct config *c, const struct config_addr **out);

/*
 * config_listens_on - 1 when a connection to (family, addr, port) would arrive on one of the configured listeners
 * (HTTP or route): the same address, or a wildcard listener and an address of this host (loopback, 0.0.0.0/::, or
 * local = 1 when the caller knows addr is one of the host's interface addresses). IPv4-mapped addresses count as
 * IPv4. Used against self-loops, in validation and for every destination at run time.
 */
int config_listens_on(const struct config *c, int family, const uint8_t *addr, uint16_t port, int local);
/* config_port_allowed - 1 when port is in the ports allow-list (every destination a client chooses). */
int config_port_allowed(const struct config *c, uint16_t port);
/* config_client_allowed - a client at (family, 4 or 16 bytes, unmapped) may use the listeners: loopback always,
 * other addresses only from allow_from networks (never an open proxy). */
int config_client_allowed(const struct config *c, int family, const uint8_t *addr);
/* config_smtp_client_allowed - a mail client may relay through smarthost m: loopback always, else its allow_from. */
int config_smtp_client_allowed(const struct config_smtp *m, int family, const uint8_t *addr);
/* config_cidr_contains - 1 when the address (family, 4 or 16 bytes) is inside the network. */
int config_cidr_contains(const struct config_cidr *net, int family, const uint8_t *addr);

#endif

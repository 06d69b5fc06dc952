/*
 * upstream.h - open a DANE-verified TLS connection to HOST:PORT.
 *
 * One call does the whole outbound half of a proxied connection: DNSSEC lookup (resolver/), the policy
 * decision (policy.h), Happy Eyeballs over the returned addresses (RFC 8305), the TLS handshake with SNI, and
 * the certificate decision by the DANE engine (or PKIX where the policy allows). The callback receives either
 * an open TLS stream, with nothing sent on it yet but the handshake, or a report saying exactly why not.
 */
#ifndef DANEPROXY_UPSTREAM_H
#define DANEPROXY_UPSTREAM_H

#include <stdint.h>

#include <uv.h>

#include "dane.h"
#include "policy.h"
#include "resolver.h"

struct stream;
struct tls_ctx;
struct upstream;

struct upstream_env {
	uv_loop_t *loop;
	struct resolver *resolver;
	struct tls_ctx *tls;
	const struct dane_store *pkix_store;   /* for PKIX fallback and usages 0/1; NULL: PKIX always fails */
	uint8_t digests[4];                    /* DANE digest preference, 0-terminated; {0}: sha512, then sha256 */
	unsigned connect_timeout_ms;           /* all attempts together */
	unsigned attempt_delay_ms;             /* Happy Eyeballs connection attempt delay */
	unsigned handshake_timeout_ms;
	int ee_namecheck;
	/* is_self - the address (with port) is one of the proxy's own listeners: never connect (a loop). Optional. */
	int (*is_self)(const struct sockaddr *addr, void *arg);
	void *is_self_arg;
};

/* Everything the log line, the error page and `daneproxy check` say about the outbound half. */
struct upstream_report {
	const char *error;              /* RFC 9209 Proxy-Status error token, NULL on success */
	char details[400];              /* the precise reason, e.g. the DANE engine's explanation */
	int dns_done;
	enum resolver_outcome dnssec;
	char dns_detail[256];
	int dns_rcode;                  /* RFC 9209 dns_error rcode of the lookup (resolver_result.rcode), -1 none;
					 * set by the lookup only (0 until then) */
	int dns_info_code;              /* RFC 8914 EDE info-code (resolver_result.ede), -1 none; as dns_rcode */
	enum policy_mode policy;
	enum auth_method method;
	const char *verdict;            /* dane_ok_* / dane_err_* reason, NULL if no certificate was judged */
	int depth;                      /* matched certificate depth, -1 */
	char record[200];               /* matched TLSA record "U S M hex" (hex shortened), "" */
	char tlsa_name[RESOLVER_MAX_NAME];
	int tlsa_records;
	int usable_records;
	char peer[64];                  /* address that answered */
	char tls_version[16];
	char alpn[32];                  /* the protocol the origin chose by ALPN, "" when none */
	char tls_cipher[64];
	double dns_ms;
	double connect_ms;
	double handshake_ms;
	const char *smtp_greeting;      /* STARTTLS routes: the server's whole 220 greeting (every line, CRLFs
					 * included, no NUL), replayed to the client; "" otherwise. Valid only during
					 * the callback: copy it (or write it out) there */
};

/* upstream_open flags */
#define UPSTREAM_STARTTLS_SMTP 0x1   /* plaintext SMTP up to STARTTLS, then TLS (RFC 3207, RFC 7672 profile) */
#define UPSTREAM_PLAIN 0x2           /* CONNECT passthrough: no TLS here; DNS failures still refuse */
/* CONNECT with terminate = dane: where no DNSSEC-secure usable TLSA makes DANE apply, the policy's PKIX fallback
 * becomes a plain tunnel (the client authenticates the origin itself, method AUTH_PASSTHROUGH); refusals stay. */
#define UPSTREAM_TUNNEL_UNLESS_DANE 0x4

/* upstream_cb - origin is an open TLS stream owned by the callee from now on, or NULL with rep->error set. */
typedef void (*upstream_cb)(struct stream *origin, const struct upstream_report *rep, void *arg);

/* upstream_inspect_fn - sees the presented chain, the lookup and the verdict (for `daneproxy check`). */
typedef void (*upstream_inspect_fn)(const struct dane_chain *chain, const struct dane_tlsa *records, size_t n_records,
				    const struct dane_result *verdict, void *arg);

/*
 * upstream_open - start; the callback comes later from the loop, exactly once, unless cancelled.
 * alpn: protocol to offer, or NULL; flags: UPSTREAM_*. Returns NULL only when out of memory.
 */
struct upstream *upstream_open(const struct upstream_env *env, const char *host, uint16_t port, enum policy_mode mode,
			       const char *alpn, unsigned flags, upstream_cb cb, void *arg);
/* upstream_set_inspect - install an inspection hook (call right after upstream_open). */
void upstream_set_inspect(struct upstream *u, upstream_inspect_fn fn, void *arg);
/* upstream_cancel - stop everything; the callback will not be called. */
void upstream_cancel(struct upstream *u);

#endif

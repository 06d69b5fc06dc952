/*
 * smtp_out.h - the destination side of the smarthost: an SMTP session to a mail domain's MX under RFC 7672
 * section 2 (SMTP security via opportunistic DANE TLS).
 *
 * smtp_out_open() looks up the domain's MX RRset with DNSSEC, tries its hosts in preference order (random among
 * equals), each host's addresses in turn, speaks SMTP up to and through STARTTLS as the DNS and the policy
 * demand, says EHLO again on the TLS layer, and hands the open session to its callback with a report; or a
 * report saying why not and whether the mail must wait (4xx) or bounce (5xx). The open session then carries
 * transactions: MAIL, RCPT (pipelined when the MX offers PIPELINING), DATA with the client's content, RSET;
 * smtp_out_close() ends it (QUIT). The rules, as implemented:
 *   - MX lookup bogus, indeterminate, timed out or failed: defer (4.4.3), never "no MX" (RFC 7672 2.2.1);
 *     no such domain: 5.1.2; a null MX (RFC 7505): 5.1.10; no MX RRset: the domain itself is the one host.
 *   - TLSA at _PORT._tcp.HOST only when the MX RRset (or its proven absence) and the host's address records are
 *     DNSSEC-secure; a CNAME'd host is looked up at its expanded name first (RFC 7672 2.2.2, resolver_lookup).
 *     A TLSA (or address) lookup that fails skips that host: never taken for "no TLSA".
 *   - secure usable TLSA (usages 0 and 1 are unusable for SMTP): STARTTLS mandatory and DANE-authenticated:
 *     DANE-EE without name checks, DANE-TA against the TLSA base domain, the MX host name and the destination
 *     domain (and its CNAME target); SNI is the TLSA base domain (RFC 7672 8.1).
 *   - secure TLSA RRset, every record unusable: STARTTLS mandatory, the server unauthenticated.
 *   - no secure TLSA: policy dane: opportunistic STARTTLS (plaintext only when the MX does not offer STARTTLS;
 *     a 454 or a failed handshake fails the host); dane-only: an insecure MX RRset defers at once (4.7.5), an
 *     MX host without secure TLSA is skipped; encrypt: STARTTLS mandatory, never authenticated, TLSA not asked.
 *   - a host that fails (connection, greeting, EHLO, missing or refused STARTTLS where mandatory, bytes after
 *     the 220 to STARTTLS, handshake, TLSA mismatch, timeout) is recorded with why and the next host is tried;
 *     when none is left the mail is deferred (4.7.5 when a security requirement failed somewhere, else 4.4.1).
 */
#ifndef DANEPROXY_SMTP_OUT_H
#define DANEPROXY_SMTP_OUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include <uv.h>

#include "resolver.h"
#include "smtp_reply.h"

struct smtp_out;
struct tls_ctx;

/* What a destination demands ([smtp NAME] policy, or a [policy] rule for the domain). */
enum smtp_policy {
	SMTP_POLICY_DANE,        /* DANE where the DNS says so, else opportunistic STARTTLS (RFC 7672) */
	SMTP_POLICY_DANE_ONLY,   /* DANE-authenticated TLS or nothing (defer) */
	SMTP_POLICY_ENCRYPT,     /* TLS required, never authenticated, TLSA ignored */
};

/* The TLS level a session reached. */
enum smtp_tls_level {
	SMTP_TLS_NONE,           /* plaintext: the MX offered no STARTTLS and nothing demanded it */
	SMTP_TLS_ENCRYPT,        /* TLS, server unauthenticated */
	SMTP_TLS_DANE,           /* TLS, server authenticated by a DNSSEC-secure TLSA record */
};

struct smtp_out_env {
	uv_loop_t *loop;
	struct resolver *resolver;
	struct tls_ctx *tls;
	uint8_t digests[4];               /* DANE digest preference, 0-terminated; {0}: sha512, then sha256 */
	uint16_t port;                    /* the MX port; 0: 25 */
	const char *helo;                 /* the EHLO name (a FQDN of this host) */
	unsigned connect_timeout_ms;      /* per address; 0: 30 s */
	unsigned handshake_timeout_ms;    /* TLS handshake; 0: 30 s */
	unsigned reply_timeout_ms;        /* each reply but the last of DATA; 0: 300 s (RFC 5321 4.5.3.2) */
	unsigned data_timeout_ms;         /* the reply to the end of data; 0: 600 s (RFC 5321 4.5.3.2.6) */
	unsigned max_attempts;            /* connections tried per open, over all hosts and addresses; 0: 10 */
	/* is_self - the address is one of the proxy's own listeners: never connect (a mail loop). Optional. */
	int (*is_self)(const struct sockaddr *addr, void *arg);
	void *is_self_arg;
};

/* Why an open failed, or a host was skipped: constants compared by pointer (STYLE.md habit 7). */
extern const char smtp_out_err_mx_bogus[];          /* the MX answer failed DNSSEC validation */
extern const char smtp_out_err_mx_failed[];         /* the MX lookup timed out or failed */
extern const char smtp_out_err_no_domain[];         /* the domain does not exist */
extern const char smtp_out_err_null_mx[];           /* RFC 7505: the domain accepts no mail */
extern const char smtp_out_err_dane_required[];     /* dane-only, and the MX RRset is not DNSSEC-secure */
extern const char smtp_out_err_no_host[];           /* every MX host failed (rep.failed says how) */
extern const char smtp_out_err_bad_domain[];        /* not a valid domain name */
extern const char smtp_out_err_internal[];          /* out of memory */
/* ... and per host (struct smtp_out_failure.reason) */
extern const char smtp_out_err_host_dns[];          /* address or TLSA lookup bogus, failed or timed out */
extern const char smtp_out_err_host_no_address[];   /* the host has no address */
extern const char smtp_out_err_host_no_tlsa[];      /* dane-only: no secure usable TLSA for this host */
extern const char smtp_out_err_loop[];              /* the address is this proxy itself */
extern const char smtp_out_err_connect[];           /* connection refused, unreachable or timed out */
extern const char smtp_out_err_greeting[];          /* no 220 greeting */
extern const char smtp_out_err_ehlo[];              /* EHLO refused */
extern const char smtp_out_err_no_starttls[];       /* STARTTLS mandatory, not offered (downgrade refused) */
extern const char smtp_out_err_starttls_refused[];  /* STARTTLS answered other than 220 */
extern const char smtp_out_err_injection[];         /* bytes after the 220 to STARTTLS */
extern const char smtp_out_err_handshake[];         /* TLS handshake failed */
extern const char smtp_out_err_tlsa_mismatch[];     /* DANE authentication failed (verdict in detail) */
extern const char smtp_out_err_protocol[];          /* malformed or unasked-for reply */
extern const char smtp_out_err_timeout[];           /* no reply in time */
extern const char smtp_out_err_closed[];            /* the MX closed the connection */
/* ... and for an open session (struct smtp_out_reply.error, smtp_out_error) */
extern const char smtp_out_err_content[];           /* message content refused (bare CR/LF, a lone "." line) */
extern const char smtp_out_err_busy[];              /* a command the session cannot take now */

#define SMTP_OUT_MAX_FAILURES 10

/* One host or address that did not work out. */
struct smtp_out_failure {
	char host[RESOLVER_MAX_NAME];
	uint16_t preference;
	char addr[64];                    /* the address tried, "" when it failed before connecting */
	const char *reason;               /* smtp_out_err_host_* ... smtp_out_err_closed */
	char detail[200];
};

/* Everything the log line says about the destination side. */
struct smtp_out_report {
	const char *error;                /* NULL: an open session; else smtp_out_err_* */
	int code;                         /* suggested reply to the client when error: 451, 550, 556, ... */
	char enhanced[16];                /* its RFC 3463 code: "4.7.5", "5.1.10", ... ("" on success) */
	char details[400];
	char domain[RESOLVER_MAX_NAME];
	char domain_cname[RESOLVER_MAX_NAME]; /* the CNAME-expanded domain of the MX lookup, "" */
	enum resolver_outcome mx_dnssec;  /* of the MX lookup */
	int mx_implicit;                  /* no MX RRset: the domain itself */
	size_t n_mx;                      /* MX hosts the domain lists */
	char mx_host[RESOLVER_MAX_NAME];  /* the host of the session */
	uint16_t mx_preference;
	int addr_secure;                  /* its address records validated */
	enum resolver_outcome tlsa_dnssec;/* its TLSA lookup; RESOLVER_INSECURE when none was made */
	int tlsa_looked_up;               /* 0: the rules said no TLSA lookup (insecure MX or addresses, encrypt) */
	char tlsa_name[RESOLVER_MAX_NAME];
	int usable_records;               /* under the SMTP profile */
	enum smtp_tls_level tls;
	const char *verdict;              /* dane_ok_* / dane_err_* or "TLS without authentication ..." , NULL */
	int depth;                        /* of the matching certificate, -1 */
	char record[200];                 /* the TLSA record that matched, "U S M hex", "" */
	char peer[64];
	char tls_version[16];
	char tls_cipher[64];
	int resumed;                      /* the TLS handshake resumed a session (this module offers none: 0) */
	struct smtp_ehlo ehlo;            /* what the MX announced (on the TLS layer when there is one) */
	size_t n_failed;                  /* hosts/addresses that failed before the session (or the failure) */
	struct smtp_out_failure failed[SMTP_OUT_MAX_FAILURES];   /* the first SMTP_OUT_MAX_FAILURES of them */
	double mx_ms;                     /* MX lookup */
	double dns_ms;                    /* host lookups, all together */
	double connect_ms;                /* to the session's address */
	double handshake_ms;              /* STARTTLS dialogue and handshake */
	double total_ms;                  /* open to callback */
};

/* smtp_out_open_cb - s is the open session (the caller's until smtp_out_close), or NULL with rep->error set (the
 * handle is gone). rep is valid during the call. */
typedef void (*smtp_out_open_cb)(struct smtp_out *s, const struct smtp_out_report *rep, void *arg);

/*
 * smtp_out_open - start a session to domain (an ASCII domain name; no IP literals) under policy. The callback
 * comes later from the loop, exactly once, unless smtp_out_close() is called first. NULL only when out of memory.
 */
struct smtp_out *smtp_out_open(const struct smtp_out_env *env, const char *domain, enum smtp_policy policy,
			       smtp_out_open_cb cb, void *arg);

/* The MX's reply to one command, or why none came. */
struct smtp_out_reply {
	int code;                         /* 200-599; 0 when error is set */
	const char *text;                 /* the whole reply as received ("250-...\r\n250 ...\r\n"), text_len octets */
	size_t text_len;
	const char *last;                 /* the text of its last line, after "NNN ", last_len octets */
	size_t last_len;
	char enhanced[16];                /* "2.1.5" when the last line starts with one, else "" */
	const char *error;                /* NULL for a reply; else smtp_out_err_timeout/_closed/_protocol: the session
					   * is broken, every command still pending gets this too; close it */
};
/* smtp_out_reply_cb - valid during the call; the callback may issue commands or smtp_out_close(s). */
typedef void (*smtp_out_reply_cb)(struct smtp_out *s, const struct smtp_out_reply *r, void *arg);

/*
 * Commands on an open session. Each returns 0 (the reply comes to cb, in order) or -1 (smtp_out_error(s) says
 * why; nothing was sent). They may be issued back to back: the session pipelines them when the MX announced
 * PIPELINING and sends them one by one otherwise (RFC 2920); the caller need not care.
 *   smtp_out_mail - "MAIL FROM:" args, e.g. "<a@example.org> SIZE=1000 BODY=8BITMIME". The caller passes only
 *                   parameters of extensions rep->ehlo announced (the MX's, not the client's).
 *   smtp_out_rcpt - "RCPT TO:" args, e.g. "<b@example.net>".
 *   smtp_out_rset - RSET: ends a transaction.
 *   smtp_out_data - DATA: cb gets 354 (then the content may flow) or the refusal.
 */
/* A session that breaks while no reply is pending (the MX closes, or sends an unasked-for 421) is noticed by the
 * next command: -1 with smtp_out_error(s). */
int smtp_out_mail(struct smtp_out *s, const char *args, smtp_out_reply_cb cb, void *arg);
int smtp_out_rcpt(struct smtp_out *s, const char *args, smtp_out_reply_cb cb, void *arg);
int smtp_out_rset(struct smtp_out *s, smtp_out_reply_cb cb, void *arg);
int smtp_out_data(struct smtp_out *s, smtp_out_reply_cb cb, void *arg);

/*
 * The content contract (after a 354): smtp_out_content takes the bytes exactly as the client sent them after
 * its own 354, up to but not including the "." CRLF that ends them: still dot-stuffed (RFC 5321 4.5.2), CRLF
 * line endings. The driver finds the client's end of data itself (CRLF "." CRLF) and then calls
 * smtp_out_content_end, whose cb gets the MX's final reply (the one to answer the client with: 250 means the
 * MX took responsibility). Content is copied (written to the socket queue) and may come in any pieces. A piece
 * holding a CR or LF outside a CRLF pair, or a line that is a lone "." (either could end or split the message
 * at the MX: SMTP smuggling), is refused with -1 (smtp_out_err_content) and nothing of it is sent: the
 * transaction cannot finish, close the session (the MX then discards the partial message). Flow control:
 * smtp_out_queued() is what still waits for the socket; the drain callback fires when it reaches 0.
 */
int smtp_out_content(struct smtp_out *s, const char *data, size_t len);
int smtp_out_content_end(struct smtp_out *s, smtp_out_reply_cb cb, void *arg);
size_t smtp_out_queued(const struct smtp_out *s);
void smtp_out_set_drain(struct smtp_out *s, void (*drained)(struct smtp_out *s, void *arg), void *arg);

/* smtp_out_error - why the last call returned -1, or why the session broke (smtp_out_err_* or smtp_client_err_*). */
const char *smtp_out_error(const struct smtp_out *s);

/*
 * smtp_out_close - the caller is done: before the open callback it cancels (no callback); on an open session it
 * sends QUIT when no command is pending and closes after the reply (or at once); no callback comes after it
 * returns. Safe inside any callback of s. Never after an open callback with s == NULL.
 */
void smtp_out_close(struct smtp_out *s);

/*
 * smtp_out_report_json - the report as fields of a JSON object, for the one log line of a transaction: each one
 * written as ", \"key\": value" (so that they follow the caller's own first field). Keys: smtp_error,
 * smtp_code, smtp_enhanced, smtp_details (null on success), domain, domain_cname, mx_dnssec, mx_implicit, mx_count,
 * mx_host, mx_preference (null without a session), addr_dnssec ("secure", "insecure"), tlsa_lookup (false when
 * the rules asked none), tlsa_dnssec, tlsa_name, tlsa_usable, tls ("none", "encrypt", "dane"), verdict, tlsa (the
 * record matched), depth, peer, tls_version, tls_cipher, resumed (null without a TLS handshake), ehlo (the MX's
 * keywords), mx_failed ([{host, preference, addr, reason, detail}], the first SMTP_OUT_MAX_FAILURES),
 * mx_failed_count, and the times mx_ms, dns_ms, connect_ms, handshake_ms, open_ms. After a failed open, verdict ...
 * resumed describe the last attempt.
 */
void smtp_out_report_json(FILE *out, const struct smtp_out_report *rep);

/* smtp_policy_name / smtp_policy_parse - "dane", "dane-only", "encrypt". smtp_tls_level_name - "none",
 * "encrypt", "dane". */
const char *smtp_policy_name(enum smtp_policy p);
int smtp_policy_parse(const char *s, enum smtp_policy *out);
const char *smtp_tls_level_name(enum smtp_tls_level l);

#endif

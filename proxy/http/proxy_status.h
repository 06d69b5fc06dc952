/*
 * proxy_status.h - the one table of refusals: every error the proxy reports to a client carries a Proxy-Status
 * error token from the RFC 9209 registry, the HTTP status it answers with, and a hint saying what to check.
 * The same token goes to the log line (and to metrics), so a refusal reads the same everywhere.
 */
#ifndef DANEPROXY_PROXY_STATUS_H
#define DANEPROXY_PROXY_STATUS_H

#include <stddef.h>

struct proxy_status {
	const char *token;   /* RFC 9209 section 2.3 error type */
	int status;          /* the HTTP status answered */
	const char *hint;    /* one or two lines for the error page: what to check */
};

/* proxy_status_lookup - the entry of token; an unknown token maps to proxy_internal_error (never NULL). */
const struct proxy_status *proxy_status_lookup(const char *token);

/* proxy_status_count / proxy_status_at / proxy_status_index - the table as a list (metrics label values). */
size_t proxy_status_count(void);
const struct proxy_status *proxy_status_at(size_t i);
size_t proxy_status_index(const struct proxy_status *ps);

/* dns_rcode_name - "NOERROR", "SERVFAIL", "NXDOMAIN", ... (RFC 6895); NULL for a negative or unknown code. */
const char *dns_rcode_name(int rcode);

/* proxy_status_sf_string - RFC 8941 sf-string content of s (printable ASCII, " and \ escaped), bounded. */
void proxy_status_sf_string(const char *s, char *out, size_t outlen);

#endif

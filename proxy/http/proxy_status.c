/*
 * proxy_status.c - the table of RFC 9209 error tokens, statuses and hints (see proxy_status.h).
 */
#include <stddef.h>
#include <string.h>

#include "proxy_status.h"

static const struct proxy_status table[] = {
	{"dns_timeout", 504, "The resolver did not answer in time; check the configured resolvers."},
	{"dns_error", 502,
	 "DNS or DNSSEC failed for this name; daneproxy never falls back when validation fails.\n"
	 "Run `daneproxy lookup HOST:PORT` to see the DNSSEC outcome."},
	{"destination_not_found", 502, "The name has no address."},
	{"destination_unavailable", 502, "The destination answered, but not as a server that can be used."},
	{"destination_ip_prohibited", 403, "The configuration does not allow this destination."},
	{"connection_refused", 502, "No address of the origin accepted a TCP connection."},
	{"connection_terminated", 502, "The origin closed the connection."},
	{"connection_timeout", 504, "The origin did not complete the connection in time."},
	{"connection_limit_reached", 503, "The proxy is at its connection limit (max_connections); try again later."},
	{"tls_protocol_error", 502, "The TLS handshake with the origin failed."},
	{"tls_certificate_error", 502,
	 "The origin's certificate does not satisfy its TLSA records (or PKIX where the policy allows it).\n"
	 "Run `daneproxy check HOST:PORT` to see the records, the presented chain and what differs."},
	{"tls_alert_received", 502, "The origin ended the TLS handshake with an alert."},
	{"http_request_error", 400, "The request is malformed or uses something this proxy does not accept."},
	{"http_request_denied", 403, "The configuration does not allow this request (ports, schemes, names)."},
	{"http_response_incomplete", 502, "The origin's response ended early."},
	{"http_response_header_section_size", 502, "The origin's response head is larger than 16 KiB."},
	{"http_protocol_error", 502, "The origin's response is not valid HTTP/1.1."},
	{"http_upgrade_failed", 502, "The origin did not accept the protocol upgrade."},
	{"proxy_loop_detected", 502, "The destination is this proxy itself."},
	{"proxy_internal_error", 500, "An internal error in the proxy; see its log."},
};

const struct proxy_status *proxy_status_lookup(const char *token)
{
	size_t i;

	for (i = 0; token != NULL && i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].token, token) == 0)
			return &table[i];
	return &table[sizeof(table) / sizeof(table[0]) - 1];
}

size_t proxy_status_count(void)
{
	return sizeof(table) / sizeof(table[0]);
}

const struct proxy_status *proxy_status_at(size_t i)
{
	return i < proxy_status_count() ? &table[i] : NULL;
}

size_t proxy_status_index(const struct proxy_status *ps)
{
	return (size_t)(ps - table);
}

void proxy_status_sf_string(const char *in, char *out, size_t len)
{
	size_t j = 0;

	for (; *in && j + 3 < len; in++) {
		unsigned char ch = (unsigned char)*in;
		if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		if (ch == '"' || ch == '\\')
			out[j++] = '\\';
		out[j++] = (char)ch;
	}
	out[j] = '\0';
}

const char *dns_rcode_name(int rcode)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
					    "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"};

	return rcode >= 0 && (size_t)rcode < sizeof(names) / sizeof(names[0]) ? names[rcode] : NULL;
}

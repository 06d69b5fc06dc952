/*
 * text.h - the parsers of small values every layer reads from configuration, the command line and the network:
 * decimal numbers, ports, host names, IP literals and resolver addresses. Pure functions over (p, len); nothing
 * here allocates. The one place these rules live: config/, resolver/ and proxy/ all call them.
 */
#ifndef DANEPROXY_TEXT_H
#define DANEPROXY_TEXT_H

#include <stddef.h>
#include <stdint.h>

#define TEXT_NAME_MAX 254   /* a normalised host name with its NUL: 253 bytes at most (RFC 1035 section 2.3.4) */

/* hex_digit - the value 0-15 of a hexadecimal digit (either case), or -1. */
int hex_digit(int ch);

/* decimal_parse - digits only (no sign, no blanks), value <= max; 0 or -1. */
int decimal_parse(const char *s, size_t len, uint64_t max, uint64_t *out);

/* port_parse - a decimal port 1..65535; 0 or -1. */
int port_parse(const char *s, size_t len, uint16_t *port);

/*
 * hostname_normalize - the one form of a DNS host name used for rules, DNS, SNI, minted leaves and logs:
 * lower case, at most one trailing dot (dropped), no empty label, labels of letters, digits, '-' and '_' of at
 * most 63 bytes, at most 253 bytes in all. Returns NULL and writes the name to out (outlen >= TEXT_NAME_MAX
 * suffices), or a constant saying what is wrong. IP literals are not host names: see ip_literal_parse.
 */
const char *hostname_normalize(const char *in, size_t len, char *out, size_t outlen);

/* hostname_valid - hostname_normalize would accept it. */
int hostname_valid(const char *name);

/*
 * ip_literal_parse - "192.0.2.1", "2001:db8::1" or "[2001:db8::1]" (brackets only around IPv6): 0 with the family
 * (AF_INET/AF_INET6) and 4 or 16 bytes in addr, or -1. An IPv4-mapped IPv6 address stays AF_INET6 here.
 */
int ip_literal_parse(const char *s, size_t len, int *family, uint8_t addr[16]);

/* An address and port, e.g. of a DNS resolver or a listener. */
struct net_addr {
	int family;          /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint16_t port;
};

/* resolver_addr_parse - "IP", "IP@PORT" or "[IPv6]@PORT" (port default_port when absent); 0 or -1. */
int resolver_addr_parse(const char *s, uint16_t default_port, struct net_addr *out);

/*
 * net_addr_unmap - an IPv4-mapped IPv6 address (::ffff:a.b.c.d, as a dual-stack socket reports IPv4 peers)
 * becomes the IPv4 address it carries; others are left as they are. Every address rule sees the unmapped form.
 */
void net_addr_unmap(int *family, uint8_t addr[16]);

struct sockaddr;

/* net_addr_from_sockaddr - the address and port of an AF_INET/AF_INET6 socket address, IPv4-mapped ones unmapped;
 * 0, or -1 for another family. */
int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out);

#endif

/*
 * text.c - small value parsers shared by every layer (see text.h).
 */
#include "text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int decimal_parse(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int port_parse(const char *s, size_t len, uint16_t *port)
{
	uint64_t v;

	if (decimal_parse(s, len, 65535, &v) < 0 || v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

const char *hostname_normalize(const char *in, size_t len, char *out, size_t outlen)
{
	size_t i, label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0)
		return "empty host name";
	if (len > 253)
		return "host name longer than 253 bytes";
	if (len >= outlen)
		return "host name too long";
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];
		if (ch == '.') {
			if (label == 0)
				return "empty label in host name";
			label = 0;
			out[i] = '.';
			continue;
		}
		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return "invalid character in host name";
		if (++label > 63)
			return "host name label longer than 63 bytes";
		out[i] = (char)ch;
	}
	if (label == 0)
		return "empty label in host name";   /* "name.." */
	out[len] = '\0';
	return NULL;
}

int hostname_valid(const char *name)
{
	char tmp[TEXT_NAME_MAX];

	return hostname_normalize(name, strlen(name), tmp, sizeof(tmp)) == NULL;
}

int ip_literal_parse(const char *s, size_t len, int *family, uint8_t addr[16])
{
	char text[64];
	int bracketed = len >= 2 && s[0] == '[' && s[len - 1] == ']';

	if (bracketed) {
		s++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	memset(addr, 0, 16);
	if (!bracketed && inet_pton(AF_INET, text, addr) == 1) {
		*family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, addr) == 1) {
		*family = AF_INET6;
		return 0;
	}
	return -1;
}

int resolver_addr_parse(const char *s, uint16_t default_port, struct net_addr *out)
{
	const char *at = strrchr(s, '@');
	size_t n = at ? (size_t)(at - s) : strlen(s);

	memset(out, 0, sizeof(*out));
	out->port = default_port;
	if (at != NULL && port_parse(at + 1, strlen(at + 1), &out->port) < 0)
		return -1;
	/* Brackets are for IPv6 only, and an IPv6 address without them is fine too ("::1@53" is unambiguous). */
	return ip_literal_parse(s, n, &out->family, out->addr);
}

void net_addr_unmap(int *family, uint8_t addr[16])
{
	static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (*family != AF_INET6 || memcmp(addr, mapped_prefix, sizeof(mapped_prefix)) != 0)
		return;
	memmove(addr, addr + 12, 4);
	memset(addr + 4, 0, 12);
	*family = AF_INET;
}

int net_addr_from_sockaddr(const struct sockaddr *sa, struct net_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		out->family = AF_INET;
		memcpy(out->addr, &sin->sin_addr, 4);
		out->port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		out->family = AF_INET6;
		memcpy(out->addr, &sin6->sin6_addr, 16);
		out->port = ntohs(sin6->sin6_port);
	} else {
		return -1;
	}
	net_addr_unmap(&out->family, out->addr);
	return 0;
}

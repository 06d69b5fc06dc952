/*
 * test_resolver.c - the resolver (resolver/) against the hermetic DNSSEC test bed (tests/testbed/testbed.sh).
 *
 * Covers: the outcome of every case the bed lists (TESTBED_CASES), the MX lookups of the mail cases
 * (TESTBED_MAIL_CASES: secure, unsigned, bogus, null MX, no MX, no such domain, CNAMEs) and the address and TLSA
 * lookups of their MX hosts (TESTBED_MXHOST_CASES) at the SMTP port, the result cache (hits, TTL expiry, the count
 * bound, failure TTL), coalescing of concurrent lookups, cancellation (also from callbacks and by resolver_free),
 * timeouts against a server that never answers, and resilience behind an in-process lossy DNS relay (dropped,
 * truncated, cut answers, TCP connections closed mid-answer, parallel lookups on one TCP connection) in both
 * validation modes. It prints the measured figures (latency, DNS queries on the wire) so that `ctest -V` shows them.
 *
 * Usage: TESTBED_ENV=DIR/testbed.env test_resolver [GROUP [TEST]]. GROUP is one of the names in main() (without it
 * every default group runs), TEST the function name of one of its tests. The group known_bugs runs only when named:
 * it reproduces getdns 1.6.0 defects (UDP: fallback hangs, a double free, a UDP-only context falling back to TCP on a
 * socket it then closes under a scheduled event; no recovery after a broken TCP connection).
 * Each test has its own uv_loop_t and ends by freeing the resolver, running the loop until no handle is left and
 * asserting uv_loop_close() == 0. Nothing sleeps: the loop runs with uv timers as deadlines.
 * Expectations come from testbed.env and from the bed's own NSD (the TLSA RRsets, fetched over plain TCP), never
 * from names written here.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <poll.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "dane.h"
#include "getdns_uv.h"   /* known_bugs only: getdns 1.6.0 driven directly, on the test's loop */
#include "resolver.h"

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define BED_MAX_VARS 512
#define BED_MAX_CASES 64
#define BED_MAX_PORTS 8
#define TLSA_BLOB 16384

/* ---------- the bed: testbed.env ---------- */

struct bed_case {
	const char *name;          /* TESTBED_CASES entry, e.g. SECURE */
	const char *host;          /* TESTBED_HOST_<name> */
	const char *expect_addr;   /* TESTBED_EXPECT_ADDR_<name> */
	const char *expect_tlsa;   /* TESTBED_EXPECT_TLSA_<name> */
	const char *target;        /* TESTBED_TARGET_<name>: the CNAME target, NULL when the host is no CNAME */
};

struct bed {
	char *keys[BED_MAX_VARS];
	char *vals[BED_MAX_VARS];
	size_t n_vars;
	const char *resolver;      /* "127.0.0.1@PORT" */
	const char *unbound;       /* TESTBED_UNBOUND_RESOLVER: a validating unbound in front of NSD, or NULL */
	struct sockaddr_in unbound_addr;
	const char *anchor;
	struct sockaddr_in dns;    /* the bed's NSD */
	struct in_addr addr4;      /* what every host with addresses resolves to */
	struct in6_addr addr6;
	uint16_t ports[BED_MAX_PORTS];  /* TESTBED_TLSA_PORTS: ports with TLSA records */
	size_t n_ports;
	struct bed_case cases[BED_MAX_CASES];
	size_t n_cases;
	char *case_list;           /* TESTBED_CASES, split in place */
};

static const char *bed_get(const struct bed *b, const char *key)
{
	size_t i;

	for (i = 0; i < b->n_vars; i++)
		if (strcmp(b->keys[i], key) == 0)
			return b->vals[i];
	return NULL;
}

static const char *__attribute__((format(printf, 2, 3))) bed_getf(const struct bed *b, const char *fmt, ...)
{
	char key[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	return bed_get(b, key);
}

/* parse_port - a decimal port 1..65535 in [p, end); -1 otherwise. */
static long parse_port(const char *p, const char *end)
{
	long v = 0;

	if (p == end || end - p > 5)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v >= 1 && v <= 65535 ? v : -1;
}

static void bed_free(struct bed *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n_vars; i++) {
		free(b->keys[i]);
		free(b->vals[i]);
	}
	free(b->case_list);
	free(b);
}

/* bed_load - read testbed.env (KEY=VALUE lines) and check that everything the tests need is there. */
static int bed_load(const char *path, struct bed *b)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *p, *tok, *save = NULL;
	size_t cap = 0;
	ssize_t n;
	const char *v, *s, *dns_port;
	long port;

	if (f == NULL) {
		fprintf(stderr, "test_resolver: %s: %s (is the dnsbed fixture running?)\n", path, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, f)) > 0 && b->n_vars < BED_MAX_VARS) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		p = strchr(line, '=');
		if (line[0] == '#' || p == NULL)
			continue;
		*p = '\0';
		b->keys[b->n_vars] = strdup(line);
		b->vals[b->n_vars] = strdup(p + 1);
		if (b->keys[b->n_vars] == NULL || b->vals[b->n_vars] == NULL)
			break;
		b->n_vars++;
	}
	free(line);
	fclose(f);

	b->resolver = bed_get(b, "TESTBED_RESOLVER");
	b->anchor = bed_get(b, "TESTBED_TRUST_ANCHOR");
	dns_port = bed_get(b, "TESTBED_DNS_PORT");
	v = bed_get(b, "TESTBED_DNS_ADDR");
	if (b->resolver == NULL || b->anchor == NULL || dns_port == NULL || v == NULL) {
		fprintf(stderr, "test_resolver: %s lacks TESTBED_RESOLVER, _TRUST_ANCHOR, _DNS_ADDR or _DNS_PORT\n", path);
		return -1;
	}
	b->dns.sin_family = AF_INET;
	port = parse_port(dns_port, dns_port + strlen(dns_port));
	if (port < 0 || inet_pton(AF_INET, v, &b->dns.sin_addr) != 1) {
		fprintf(stderr, "test_resolver: bad TESTBED_DNS_ADDR/PORT %s %s\n", v, dns_port);
		return -1;
	}
	b->dns.sin_port = htons((uint16_t)port);
	b->unbound = bed_get(b, "TESTBED_UNBOUND_RESOLVER");
	if (b->unbound != NULL) {
		const char *at = strchr(b->unbound, '@');
		char ip[32];
		if (at == NULL || (size_t)(at - b->unbound) >= sizeof(ip) ||
		    (port = parse_port(at + 1, at + strlen(at))) < 0) {
			fprintf(stderr, "test_resolver: bad TESTBED_UNBOUND_RESOLVER %s\n", b->unbound);
			return -1;
		}
		memcpy(ip, b->unbound, (size_t)(at - b->unbound));
		ip[at - b->unbound] = '\0';
		b->unbound_addr.sin_family = AF_INET;
		b->unbound_addr.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &b->unbound_addr.sin_addr) != 1) {
			fprintf(stderr, "test_resolver: bad TESTBED_UNBOUND_RESOLVER %s\n", b->unbound);
			return -1;
		}
	}
	if ((v = bed_get(b, "TESTBED_ADDR4")) == NULL || inet_pton(AF_INET, v, &b->addr4) != 1 ||
	    (v = bed_get(b, "TESTBED_ADDR6")) == NULL || inet_pton(AF_INET6, v, &b->addr6) != 1) {
		fprintf(stderr, "test_resolver: TESTBED_ADDR4/TESTBED_ADDR6 missing or malformed\n");
		return -1;
	}
	v = bed_get(b, "TESTBED_TLSA_PORTS");
	for (s = v; s != NULL && *s != '\0' && b->n_ports < BED_MAX_PORTS;) {
		const char *comma = strchr(s, ',');
		const char *end = comma ? comma : s + strlen(s);
		size_t i;
		int dup = 0;

		port = parse_port(s, end);
		if (port < 0) {
			fprintf(stderr, "test_resolver: bad TESTBED_TLSA_PORTS %s\n", v);
			return -1;
		}
		for (i = 0; i < b->n_ports; i++)
			dup |= b->ports[i] == port;
		if (!dup)
			b->ports[b->n_ports++] = (uint16_t)port;
		s = comma ? comma + 1 : end;
	}
	if (b->n_ports < 2) {
		fprintf(stderr, "test_resolver: TESTBED_TLSA_PORTS must list at least two ports\n");
		return -1;
	}
	v = bed_get(b, "TESTBED_CASES");
	if (v == NULL || (b->case_list = strdup(v)) == NULL) {
		fprintf(stderr, "test_resolver: TESTBED_CASES missing\n");
		return -1;
	}
	for (tok = strtok_r(b->case_list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct bed_case *c;

		if (b->n_cases == BED_MAX_CASES) {
			fprintf(stderr, "test_resolver: more than %d cases\n", BED_MAX_CASES);
			return -1;
		}
		c = &b->cases[b->n_cases++];
		c->name = tok;
		c->host = bed_getf(b, "TESTBED_HOST_%s", tok);
		c->expect_addr = bed_getf(b, "TESTBED_EXPECT_ADDR_%s", tok);
		c->expect_tlsa = bed_getf(b, "TESTBED_EXPECT_TLSA_%s", tok);
		c->target = bed_getf(b, "TESTBED_TARGET_%s", tok);
		if (c->host == NULL || c->expect_addr == NULL || c->expect_tlsa == NULL) {
			fprintf(stderr, "test_resolver: case %s lacks TESTBED_HOST/EXPECT_ADDR/EXPECT_TLSA\n", tok);
			return -1;
		}
	}
	if (b->n_cases == 0) {
		fprintf(stderr, "test_resolver: TESTBED_CASES is empty\n");
		return -1;
	}
	return 0;
}

static const struct bed_case *bed_case(const struct bed *b, const char *name)
{
	size_t i;

	for (i = 0; i < b->n_cases; i++)
		if (strcmp(b->cases[i].name, name) == 0)
			return &b->cases[i];
	fail_msg("the bed has no case %s", name);
	return NULL;
}

static const struct bed_case *bed_case_by_host(const struct bed *b, const char *host)
{
	size_t i;

	for (i = 0; i < b->n_cases; i++)
		if (strcmp(b->cases[i].host, host) == 0)
			return &b->cases[i];
	fail_msg("the bed has no case for %s", host);
	return NULL;
}

static int group_setup(void **state)
{
	const char *path = getenv("TESTBED_ENV");
	struct bed *b;

	if (path == NULL || *path == '\0') {
		fprintf(stderr, "test_resolver: TESTBED_ENV is not set; run under ctest (fixture dnsbed) or start the bed "
				"with tests/testbed/testbed.sh start DIR and set TESTBED_ENV=DIR/testbed.env\n");
		return -1;
	}
	b = calloc(1, sizeof(*b));
	if (b == NULL || bed_load(path, b) < 0) {
		bed_free(b);
		return -1;
	}
	*state = b;
	return 0;
}

static int group_teardown(void **state)
{
	bed_free(*state);
	return 0;
}

/* ---------- DNS wire helpers (for the relay and the independent TLSA fetch) ---------- */

/* dns_read_name - the name at off of m as lowercase text without the trailing dot; the offset after it, or -1. */
static long dns_read_name(const uint8_t *m, size_t len, size_t off, char *out, size_t outlen)
{
	size_t o = off, n = 0, hops = 0;
	long after = -1;

	for (;;) {
		uint8_t l;

		if (o >= len)
			return -1;
		l = m[o];
		if ((l & 0xc0) == 0xc0) {
			if (o + 1 >= len || ++hops > 32)
				return -1;
			if (after < 0)
				after = (long)(o + 2);
			o = (size_t)(((l & 0x3f) << 8) | m[o + 1]);
			continue;
		}
		if (l & 0xc0)
			return -1;
		if (l == 0) {
			if (after < 0)
				after = (long)(o + 1);
			break;
		}
		if (o + 1 + l > len)
			return -1;
		if (out != NULL) {
			size_t i;
			if (n + l + 2 > outlen)
				return -1;
			if (n > 0)
				out[n++] = '.';
			for (i = 0; i < l; i++) {
				char c = (char)m[o + 1 + i];
				out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
			}
		}
		o += 1 + l;
	}
	if (out != NULL)
		out[n] = '\0';
	return after;
}

/* dns_truncate - keep the header and question of the message, set TC, drop every other record; the new length. */
static size_t dns_truncate(uint8_t *m, size_t len)
{
	long q;

	if (len < 12)
		return len;
	m[2] |= 0x02;
	memset(m + 6, 0, 6);
	if (m[4] == 0 && m[5] == 1 && (q = dns_read_name(m, len, 12, NULL, 0)) > 0 && (size_t)q + 4 <= len)
		return (size_t)q + 4;
	m[4] = m[5] = 0;
	return 12;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

/* read_full / write_full - blocking socket I/O with the socket's own timeouts. */
static int write_full(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

struct wire_tlsa {
	size_t n;
	struct resolver_tlsa rec[RESOLVER_MAX_TLSA];
	uint8_t blob[TLSA_BLOB];
	size_t used;
};

/*
 * wire_fetch_tlsa - the TLSA RRset at qname straight from the bed's NSD over TCP (no validation): what a correct
 * resolver must hand back. -1 when the query fails.
 */
static int wire_fetch_tlsa(const struct bed *b, const char *qname, struct wire_tlsa *out)
{
	uint8_t q[300], *resp = NULL;
	size_t qlen = 14, off;
	const char *p = qname;
	struct timeval tv = {5, 0};
	uint16_t rlen, an, i;
	long o;
	int fd = -1, rc = -1;

	memset(out, 0, sizeof(*out));
	memset(q, 0, sizeof(q));
	q[2] = 0x12;   /* id */
	q[3] = 0x34;
	q[7] = 1;      /* QDCOUNT; RD = 0: NSD answers authoritatively */
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63 || qlen + l + 6 > sizeof(q))
			return -1;
		q[qlen++] = (uint8_t)l;
		memcpy(q + qlen, p, l);
		qlen += l;
		p += l + (dot != NULL);
	}
	q[qlen++] = 0;
	q[qlen++] = 0;
	q[qlen++] = 52;   /* TLSA */
	q[qlen++] = 0;
	q[qlen++] = 1;    /* IN */
	q[0] = (uint8_t)((qlen - 2) >> 8);
	q[1] = (uint8_t)(qlen - 2);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(fd, (const struct sockaddr *)&b->dns, sizeof(b->dns)) < 0 || write_full(fd, q, qlen) < 0 ||
	    read_full(fd, q, 2) < 0)
		goto out;
	rlen = get16(q);
	resp = malloc(rlen);
	if (resp == NULL || rlen < 12 || read_full(fd, resp, rlen) < 0 || (resp[3] & 0x0f) > 3)
		goto out;
	an = get16(resp + 6);
	if ((o = dns_read_name(resp, rlen, 12, NULL, 0)) < 0)
		goto out;
	off = (size_t)o + 4;
	for (i = 0; i < an; i++) {
		char owner[300];
		uint16_t type, rdlen;

		if ((o = dns_read_name(resp, rlen, off, owner, sizeof(owner))) < 0 || (size_t)o + 10 > rlen)
			goto out;
		off = (size_t)o;
		type = get16(resp + off);
		rdlen = get16(resp + off + 8);
		off += 10;
		if (off + rdlen > rlen)
			goto out;
		if (type == 52 && strcasecmp(owner, qname) == 0 && rdlen >= 3 && out->n < RESOLVER_MAX_TLSA &&
		    out->used + rdlen - 3 <= sizeof(out->blob)) {
			struct resolver_tlsa *t = &out->rec[out->n++];
			t->usage = resp[off];
			t->selector = resp[off + 1];
			t->mtype = resp[off + 2];
			t->len = (uint16_t)(rdlen - 3);
			memcpy(out->blob + out->used, resp + off + 3, t->len);
			t->data = out->blob + out->used;
			out->used += t->len;
		}
		off += rdlen;
	}
	rc = 0;
out:
	free(resp);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---------- expectations ---------- */

/* usable_by_engine - the engine's DANE.md section 1 rules, as the proxy passes them to the resolver. */
static int usable_by_engine(uint8_t usage, uint8_t selector, uint8_t mtype, const uint8_t *data, size_t len, void *arg)
{
	struct dane_options opts;
	struct dane_tlsa rec = {usage, selector, mtype, data, len};

	(void)arg;
	memset(&opts, 0, sizeof(opts));
	return dane_record_usable(&rec, &opts, NULL);
}

/* What one (case, port) must resolve to. */
struct expect {
	const struct bed_case *c;
	uint16_t port;
	enum resolver_outcome outcome;
	const char *reason;         /* NULL on success, else the resolver_err_* constant */
	int n_addrs;                /* 2 (IPv6 then IPv4) or 0 */
	int addrs_secure;           /* -1: not promised (no address records) */
	char tlsa_name[RESOLVER_MAX_NAME];   /* "" when not promised (failures) */
	const char *cname_target;   /* "" when the host is no CNAME */
	size_t n_usable;
	struct wire_tlsa tlsa;
};

static int is_failure(enum resolver_outcome o)
{
	return o == RESOLVER_BOGUS || o == RESOLVER_INDETERMINATE || o == RESOLVER_TIMEOUT || o == RESOLVER_FAILURE;
}

static const char *failure_reason(enum resolver_outcome o)
{
	switch (o) {
	case RESOLVER_BOGUS: return resolver_err_bogus;
	case RESOLVER_INDETERMINATE: return resolver_err_indeterminate;
	case RESOLVER_TIMEOUT: return resolver_err_timeout;
	case RESOLVER_FAILURE: return resolver_err_failure;
	case RESOLVER_NO_HOST: return resolver_err_no_host;
	default: return NULL;
	}
}

/*
 * expect_build - the expectation for case c at port from the bed's table (the mapping in the brief of this test)
 * and, for signed TLSA, the RRset NSD serves at the name the resolver must use (the CNAME target first).
 */
static void expect_build(const struct bed *b, const struct bed_case *c, uint16_t port, struct expect *x)
{
	const char *a = c->expect_addr, *t = c->expect_tlsa;
	char name[RESOLVER_MAX_NAME];
	size_t i;

	memset(x, 0, sizeof(*x));
	x->c = c;
	x->port = port;
	x->addrs_secure = -1;
	x->cname_target = c->target ? c->target : "";
	if (strcmp(a, "secure-nxdomain") == 0) {
		x->outcome = RESOLVER_NO_HOST;
		x->reason = resolver_err_no_host;
		return;
	}
	if (strcmp(a, "bogus") == 0) {
		x->outcome = RESOLVER_BOGUS;
		x->reason = resolver_err_bogus;
		x->addrs_secure = 0;   /* bogus addresses must never be handed out */
		return;
	}
	if (strcmp(a, "insecure") == 0) {
		x->outcome = RESOLVER_INSECURE;
		x->n_addrs = 2;
		x->addrs_secure = 0;
		snprintf(x->tlsa_name, sizeof(x->tlsa_name), "_%u._tcp.%s", port, c->host);
		return;
	}
	if (strcmp(a, "secure") != 0)
		fail_msg("case %s: unknown address expectation \"%s\": teach test_resolver.c", c->name, a);
	x->n_addrs = 2;
	x->addrs_secure = 1;
	if (strcmp(t, "bogus") == 0) {
		/* Whether a bogus TLSA result still carries the (secure) addresses is not promised. */
		x->outcome = RESOLVER_BOGUS;
		x->reason = resolver_err_bogus;
		x->n_addrs = -1;
		x->addrs_secure = -1;
	} else if (strcmp(t, "secure") == 0) {
		x->outcome = strcmp(c->name, "UNUSABLE") == 0 ? RESOLVER_SECURE_UNUSABLE : RESOLVER_SECURE;
		/* RFC 7671 section 7: the expanded name first, the original when nothing is there. */
		if (c->target != NULL) {
			snprintf(name, sizeof(name), "_%u._tcp.%s", port, c->target);
			if (wire_fetch_tlsa(b, name, &x->tlsa) < 0)
				fail_msg("case %s: cannot fetch TLSA %s from the bed", c->name, name);
		}
		if (x->tlsa.n == 0) {
			snprintf(name, sizeof(name), "_%u._tcp.%s", port, c->host);
			if (wire_fetch_tlsa(b, name, &x->tlsa) < 0)
				fail_msg("case %s: cannot fetch TLSA %s from the bed", c->name, name);
		}
		if (x->tlsa.n == 0)
			fail_msg("case %s: the bed promises signed TLSA but serves none at %s", c->name, name);
		snprintf(x->tlsa_name, sizeof(x->tlsa_name), "%s", name);
		for (i = 0; i < x->tlsa.n; i++)
			x->n_usable += (size_t)usable_by_engine(x->tlsa.rec[i].usage, x->tlsa.rec[i].selector,
								x->tlsa.rec[i].mtype, x->tlsa.rec[i].data, x->tlsa.rec[i].len,
								NULL);
	} else if (strcmp(t, "secure-nodata") == 0 || strcmp(t, "secure-nxdomain") == 0) {
		x->outcome = RESOLVER_SECURE_ABSENT;
		snprintf(x->tlsa_name, sizeof(x->tlsa_name), "_%u._tcp.%s", port, c->host);
	} else if (strcmp(t, "insecure") == 0) {
		x->outcome = RESOLVER_INSECURE;
		snprintf(x->tlsa_name, sizeof(x->tlsa_name), "_%u._tcp.%s", port, c->host);
	} else {
		fail_msg("case %s: unknown TLSA expectation \"%s\": teach test_resolver.c", c->name, t);
	}
}

static int tlsa_equal(const struct resolver_tlsa *a, const struct resolver_tlsa *b)
{
	return a->usage == b->usage && a->selector == b->selector && a->mtype == b->mtype && a->len == b->len &&
	       (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* addrs_ok - the addresses are the bed's ::1 and 127.0.0.1, IPv6 first; partial allows a non-empty subset. */
static int addrs_ok(const struct bed *b, const struct resolver_result *res, size_t want, int partial)
{
	size_t i, n6 = 0, n4 = 0;
	int seen4 = 0;

	if (!partial && res->n_addrs != want)
		return 0;
	if (partial && (res->n_addrs == 0 || res->n_addrs > want))
		return 0;
	for (i = 0; i < res->n_addrs; i++) {
		const struct sockaddr_storage *ss = &res->addrs[i];
		if (ss->ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
			if (seen4 || memcmp(&s6->sin6_addr, &b->addr6, 16) != 0)
				return 0;
			n6++;
		} else if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
			if (s4->sin_addr.s_addr != b->addr4.s_addr)
				return 0;
			seen4 = 1;
			n4++;
		} else {
			return 0;
		}
	}
	return n6 <= 1 && n4 <= 1;
}

/*
 * check_exact - 0 when res is exactly what x promises, else -1 with the first difference in why.
 * partial_addrs accepts a non-empty subset of the addresses (one family lost under loss).
 */
static int check_exact(const struct bed *b, const struct expect *x, const struct resolver_result *res,
		       int partial_addrs, char *why, size_t whylen)
{
	size_t i, j;
	int used[RESOLVER_MAX_TLSA] = {0};

	if (res->outcome != x->outcome) {
		snprintf(why, whylen, "outcome \"%s\" (%s), expected \"%s\"", resolver_outcome_name(res->outcome),
			 res->detail, resolver_outcome_name(x->outcome));
		return -1;
	}
	if (res->reason != x->reason) {
		snprintf(why, whylen, "reason %p \"%s\", expected the %s constant", (const void *)res->reason,
			 res->reason ? res->reason : "(null)", x->reason ? x->reason : "NULL");
		return -1;
	}
	if (x->n_addrs == 0 && res->n_addrs != 0) {
		snprintf(why, whylen, "%zu addresses, expected none", res->n_addrs);
		return -1;
	}
	if (x->n_addrs > 0 && !addrs_ok(b, res, (size_t)x->n_addrs, partial_addrs)) {
		snprintf(why, whylen, "%zu addresses, expected ::1 then 127.0.0.1", res->n_addrs);
		return -1;
	}
	if (x->addrs_secure >= 0 && res->addrs_secure != x->addrs_secure) {
		snprintf(why, whylen, "addrs_secure %d, expected %d", res->addrs_secure, x->addrs_secure);
		return -1;
	}
	if (is_failure(res->outcome) || res->outcome == RESOLVER_NO_HOST) {
		if (res->n_tlsa != 0 || res->n_tlsa_usable != 0) {
			snprintf(why, whylen, "a failure carries %zu TLSA records", res->n_tlsa);
			return -1;
		}
	} else {
		if (strcmp(res->tlsa_name, x->tlsa_name) != 0) {
			snprintf(why, whylen, "tlsa_name \"%s\", expected \"%s\"", res->tlsa_name, x->tlsa_name);
			return -1;
		}
		if (res->n_tlsa != x->tlsa.n || res->n_tlsa_usable != x->n_usable) {
			snprintf(why, whylen, "%zu TLSA records (%zu usable), expected %zu (%zu usable)", res->n_tlsa,
				 res->n_tlsa_usable, x->tlsa.n, x->n_usable);
			return -1;
		}
		for (i = 0; i < res->n_tlsa; i++) {
			for (j = 0; j < x->tlsa.n; j++)
				if (!used[j] && tlsa_equal(&res->tlsa[i], &x->tlsa.rec[j]))
					break;
			if (j == x->tlsa.n) {
				snprintf(why, whylen, "TLSA record %zu (%u %u %u, %u bytes) is not in the bed's RRset", i,
					 res->tlsa[i].usage, res->tlsa[i].selector, res->tlsa[i].mtype, res->tlsa[i].len);
				return -1;
			}
			used[j] = 1;
		}
		if (strcmp(res->cname_target, x->cname_target) != 0) {
			snprintf(why, whylen, "cname_target \"%s\", expected \"%s\"", res->cname_target, x->cname_target);
			return -1;
		}
	}
	if (res->ttl == 0) {
		snprintf(why, whylen, "ttl 0");
		return -1;
	}
	/* The RFC 9209 dns_error parameters: a DNSSEC failure is a SERVFAIL with a DNSSEC EDE; NXDOMAIN says so. */
	if (res->outcome == RESOLVER_BOGUS &&
	    (res->rcode != 2 || !(res->ede == 1 || res->ede == 2 || (res->ede >= 5 && res->ede <= 12)))) {
		snprintf(why, whylen, "bogus with rcode %d, EDE %d (expected SERVFAIL and a DNSSEC EDE)", res->rcode,
			 res->ede);
		return -1;
	}
	if (res->outcome == RESOLVER_NO_HOST && res->rcode != 3) {
		snprintf(why, whylen, "no such host with rcode %d (expected NXDOMAIN)", res->rcode);
		return -1;
	}
	if (!is_failure(res->outcome) && res->outcome != RESOLVER_NO_HOST && res->rcode != 0 && res->rcode != 3) {
		snprintf(why, whylen, "%s with rcode %d", resolver_outcome_name(res->outcome), res->rcode);
		return -1;
	}
	return 0;
}

/* What a lookup under loss ended as. */
enum verdict { V_EXACT, V_PARTIAL, V_TIMEOUT, V_FAILURE, V_INDETERMINATE, V_BOGUS_UNDER_LOSS, V_WRONG, V_COUNT };
static const char *const verdict_names[V_COUNT] = {"exact", "partial-addrs", "timeout", "failure", "indeterminate",
						   "bogus-under-loss", "WRONG"};

/*
 * check_tolerant - under loss a lookup may fail (with the right reason, no records) but never succeed wrongly:
 * any success outcome must be exactly the bed's, and a bogus name never ends as anything but a failure.
 */
static enum verdict check_tolerant(const struct bed *b, const struct expect *x, const struct resolver_result *res,
				   char *why, size_t whylen)
{
	if (res->outcome == x->outcome) {
		if (check_exact(b, x, res, 0, why, whylen) == 0)
			return V_EXACT;
		if (check_exact(b, x, res, 1, why, whylen) == 0)
			return V_PARTIAL;
		return V_WRONG;
	}
	if (!is_failure(res->outcome)) {
		snprintf(why, whylen, "outcome \"%s\" (%s), expected \"%s\" or a failure", resolver_outcome_name(res->outcome),
			 res->detail, resolver_outcome_name(x->outcome));
		return V_WRONG;
	}
	if (res->reason != failure_reason(res->outcome) || res->n_tlsa != 0) {
		snprintf(why, whylen, "failure \"%s\" with reason \"%s\" and %zu TLSA records",
			 resolver_outcome_name(res->outcome), res->reason ? res->reason : "(null)", res->n_tlsa);
		return V_WRONG;
	}
	switch (res->outcome) {
	case RESOLVER_TIMEOUT: return V_TIMEOUT;
	case RESOLVER_FAILURE: return V_FAILURE;
	case RESOLVER_INDETERMINATE: return V_INDETERMINATE;
	default: return V_BOGUS_UNDER_LOSS;
	}
}

/* ---------- one test's loop ---------- */

struct relay;
static void relay_close(struct relay *rl);

struct tctx {
	const struct bed *bed;
	uv_loop_t loop;
	uv_timer_t timer;          /* deadlines and loop-time waits */
	int timer_fired;
	struct resolver *r;
	struct relay *relay;       /* closed with the test when set */
	unsigned done;             /* callbacks so far */
	int in_lookup;             /* inside resolver_lookup(): a callback now would be synchronous */
	enum resolver_validation validation;   /* relays lead to unbound and relay_opts asks for resolver mode */
	uint32_t poison;           /* run_wave: heap_poison(poison) before the lookups start, when not 0 */
	unsigned sync_calls;
};

/* A lookup and what its callback saw. */
struct lk {
	struct tctx *t;
	struct resolver_query *q;  /* NULL once called back or cancelled */
	const char *host;
	uint16_t port;
	unsigned calls;
	uint64_t t_start, t_done;  /* uv_hrtime() */
	uint64_t cpu_start, cpu_done;   /* this thread's CPU time, ns */
	uint64_t rq_start, rq_done;     /* this thread's time waiting for a CPU (run queue), ns */
	void (*hook)(struct lk *l);   /* run inside the callback, after the copy */
	void *hook_arg;
	struct resolver_result res;
	uint8_t blob[TLSA_BLOB];
	struct resolver_mx mx[RESOLVER_MAX_MX];   /* res.mx points here */
};

static void on_timer(uv_timer_t *timer)
{
	struct tctx *t = container_of(timer, struct tctx, timer);

	t->timer_fired = 1;
}

static void tctx_open(struct tctx *t, const struct bed *bed)
{
	memset(t, 0, sizeof(*t));
	t->bed = bed;
	assert_int_equal(uv_loop_init(&t->loop), 0);
	assert_int_equal(uv_timer_init(&t->loop, &t->timer), 0);
}

static void default_opts(const struct tctx *t, struct resolver_options *o)
{
	memset(o, 0, sizeof(*o));
	o->upstreams[0] = t->bed->resolver;
	o->n_upstreams = 1;
	o->trust_anchor_file = t->bed->anchor;
	o->usable = usable_by_engine;
}

/* need_unbound - skip the test when the bed runs no unbound (TESTBED_UNBOUND=0 or unbound not installed). */
static void need_unbound(const struct bed *b)
{
	if (b->unbound == NULL) {
		printf("  skipped: the bed has no unbound (install unbound, or TESTBED_UNBOUND is 0)\n");
		skip();
	}
}

/* resolver_mode_opts - validation = resolver through the bed's unbound. */
static void resolver_mode_opts(const struct tctx *t, struct resolver_options *o)
{
	default_opts(t, o);
	o->upstreams[0] = t->bed->unbound;
	o->trust_anchor_file = NULL;
	o->validation = RESOLVER_VALIDATE_RESOLVER;
}

static void tctx_resolver(struct tctx *t, const struct resolver_options *o)
{
	char err[256] = "";

	if (resolver_new(&t->loop, o, &t->r, err, sizeof(err)) != 0)
		fail_msg("resolver_new: %s", err);
}

/* tctx_free_resolver - free the resolver mid-test; its handles close while the loop runs on. */
static void tctx_free_resolver(struct tctx *t)
{
	resolver_free(t->r);
	t->r = NULL;
}

/* run_until - run the loop until *counter >= want or ms of loop time pass; 1 when the count was reached. */
static int run_until(struct tctx *t, const unsigned *counter, unsigned want, uint64_t ms)
{
	t->timer_fired = 0;
	uv_timer_start(&t->timer, on_timer, ms, 0);
	while (*counter < want && !t->timer_fired)
		uv_run(&t->loop, UV_RUN_ONCE);
	uv_timer_stop(&t->timer);
	return *counter >= want;
}

/* run_for - let ms of loop time pass (a uv timer, not a sleep). */
static void run_for(struct tctx *t, uint64_t ms)
{
	static const unsigned never = 0;

	run_until(t, &never, 1, ms);
}

static void on_watchdog(uv_timer_t *timer)
{
	*(int *)timer->data = 1;
	uv_stop(timer->loop);
}

static void print_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	fprintf(stderr, "  open handle %p: %s%s%s\n", (void *)h, uv_handle_type_name(uv_handle_get_type(h)),
		uv_is_active(h) ? " active" : "", uv_is_closing(h) ? " closing" : "");
}

/*
 * tctx_close - free the resolver (and relay), run the loop until nothing is left and assert that no callback
 * came after resolver_free and that the loop closes cleanly. A watchdog catches handles that never close.
 */
static void tctx_close(struct tctx *t)
{
	unsigned before = t->done;
	uv_timer_t watchdog;
	int stuck = 0;

	if (t->r != NULL)
		tctx_free_resolver(t);
	if (t->relay != NULL)
		relay_close(t->relay);
	uv_close((uv_handle_t *)&t->timer, NULL);
	uv_timer_init(&t->loop, &watchdog);
	watchdog.data = &stuck;
	uv_timer_start(&watchdog, on_watchdog, 5000, 0);
	uv_unref((uv_handle_t *)&watchdog);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	if (stuck) {
		uv_walk(&t->loop, print_handle, NULL);
		fail_msg("the loop still has live handles 5 s after resolver_free");
	}
	uv_close((uv_handle_t *)&watchdog, NULL);
	uv_run(&t->loop, UV_RUN_DEFAULT);
	assert_int_equal(t->done, before);
	assert_int_equal(t->sync_calls, 0);
	if (uv_loop_close(&t->loop) != 0) {
		uv_walk(&t->loop, print_handle, NULL);
		fail_msg("uv_loop_close: handles left open");
	}
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* runqueue_ns - time this thread spent runnable but not running (/proc/thread-self/schedstat, field 2); 0. */
static uint64_t runqueue_ns(void)
{
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	unsigned long long run = 0, wait = 0;

	if (f == NULL)
		return 0;
	if (fscanf(f, "%llu %llu", &run, &wait) != 2)
		wait = 0;
	fclose(f);
	return wait;
}

static void on_result(const struct resolver_result *res, void *arg)
{
	struct lk *l = arg;
	size_t i, used = 0;

	l->cpu_done = thread_cpu_ns();
	l->rq_done = runqueue_ns();
	l->calls++;
	l->t_done = uv_hrtime();
	l->q = NULL;
	l->t->done++;
	if (l->t->in_lookup)
		l->t->sync_calls++;
	l->res = *res;
	for (i = 0; i < res->n_tlsa && i < RESOLVER_MAX_TLSA; i++) {
		size_t len = res->tlsa[i].len;
		if (used + len > sizeof(l->blob)) {
			l->res.n_tlsa = i;
			break;
		}
		if (len > 0)
			memcpy(l->blob + used, res->tlsa[i].data, len);
		l->res.tlsa[i].data = l->blob + used;
		used += len;
	}
	if (res->n_mx > RESOLVER_MAX_MX)
		fail_msg("%zu MX records in a result (limit %d)", res->n_mx, RESOLVER_MAX_MX);
	if (res->n_mx > 0)
		memcpy(l->mx, res->mx, res->n_mx * sizeof(res->mx[0]));
	l->res.mx = res->n_mx > 0 ? l->mx : NULL;
	if (l->hook != NULL)
		l->hook(l);
}

static void lk_start(struct tctx *t, struct lk *l, const char *host, uint16_t port)
{
	l->t = t;
	l->host = host;
	l->port = port;
	l->rq_start = runqueue_ns();
	l->cpu_start = thread_cpu_ns();
	l->t_start = uv_hrtime();
	t->in_lookup = 1;
	l->q = resolver_lookup(t->r, host, port, on_result, l);
	t->in_lookup = 0;
	if (l->q == NULL)
		fail_msg("resolver_lookup(%s, %u) returned NULL", host, port);
}

static void lk_cancel(struct lk *l)
{
	assert_non_null(l->q);
	resolver_cancel(l->q);
	l->q = NULL;
}

static double lk_ms(const struct lk *l)
{
	return (double)(l->t_done - l->t_start) / 1e6;
}

static struct resolver_stats stats(const struct tctx *t)
{
	struct resolver_stats st;

	resolver_get_stats(t->r, &st);
	return st;
}

/* assert_exact - check_exact or fail naming the case. */
static void assert_exact(const struct bed *b, const struct expect *x, const struct lk *l)
{
	char why[512];

	if (l->calls != 1)
		fail_msg("%s %s:%u: callback called %u times", x->c->name, x->c->host, x->port, l->calls);
	if (check_exact(b, x, &l->res, 0, why, sizeof(why)) != 0)
		fail_msg("%s %s:%u: %s", x->c->name, x->c->host, x->port, why);
}

static struct expect *expect_one(const struct bed *b, const char *case_name, uint16_t port)
{
	struct expect *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	expect_build(b, bed_case(b, case_name), port, x);
	return x;
}

/* first_case - the first case whose expectation has outcome o (the bed names them, not this file). */
static const struct bed_case *first_case(const struct bed *b, enum resolver_outcome o, int want_cname)
{
	struct expect *x = calloc(1, sizeof(*x));
	const struct bed_case *found = NULL;
	size_t i;

	assert_non_null(x);
	for (i = 0; i < b->n_cases && found == NULL; i++) {
		if ((b->cases[i].target != NULL) != want_cname)
			continue;
		expect_build(b, &b->cases[i], b->ports[0], x);
		if (x->outcome == o)
			found = &b->cases[i];
	}
	free(x);
	if (found == NULL)
		fail_msg("the bed has no case with outcome %s", resolver_outcome_name(o));
	return found;
}

/* ---------- an in-process DNS relay (and silent server) on the test's loop ---------- */

enum relay_mode {
	RELAY_PASS,        /* forward every query and answer */
	RELAY_SILENT,      /* read queries, never answer, forward nothing */
	RELAY_DROP,        /* drop every nth answer */
	RELAY_TRUNCATE,    /* every nth answer: header and question only, TC set */
	RELAY_CUT,         /* every nth answer cut to half its length, TC untouched: malformed */
	RELAY_CLOSE_MID,   /* every nth TCP answer: half of it, then the connection closes */
};

static const char *const relay_mode_names[] = {"pass", "silent", "drop", "truncate", "cut", "close-mid"};

struct relay_counts {
	unsigned udp_queries, tcp_queries, tcp_conns, answers, dropped, truncated, cut, closed_mid;
	unsigned client_eof, upstream_eof;   /* TCP connections ended by the resolver / by NSD */
};

struct relay_udp_txn;
struct relay_conn;

struct relay {
	uv_loop_t *loop;
	enum relay_mode mode;
	unsigned nth;              /* the mode hits every nth answer on the transports below */
	int on_udp, on_tcp;
	int hold_tcp;              /* answers over TCP are read and never passed on (a request stays outstanding) */
	unsigned udp_seen, tcp_seen;
	struct sockaddr_in upstream;
	char spec[32];             /* "127.0.0.1@PORT" for resolver_options.upstreams */
	uv_udp_t udp;
	uv_tcp_t listener;
	int open;
	struct relay_udp_txn *txns;
	struct relay_conn *conns;
	struct relay_counts n;
};

static unsigned relay_wire(const struct relay *rl)
{
	return rl->n.udp_queries + rl->n.tcp_queries;
}

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = malloc(65536);
	buf->len = buf->base ? 65536 : 0;
}

static int relay_hit(struct relay *rl, int tcp)
{
	if (rl->nth == 0 || rl->mode == RELAY_PASS || rl->mode == RELAY_SILENT)
		return 0;
	if (tcp)
		return rl->on_tcp && ++rl->tcp_seen % rl->nth == 0;
	return rl->on_udp && ++rl->udp_seen % rl->nth == 0;
}

/* UDP: one upstream socket per query, closed after its answer. */
struct relay_udp_txn {
	struct relay *rl;
	uv_udp_t up;
	struct sockaddr_storage client;
	int closing;
	struct relay_udp_txn *prev, *next;
};

struct udp_send {
	uv_udp_send_t req;
	uint8_t data[];
};

static void udp_sent(uv_udp_send_t *req, int status)
{
	(void)status;
	free(container_of(req, struct udp_send, req));
}

static int udp_send_copy(uv_udp_t *h, const struct sockaddr *to, const void *p, size_t len)
{
	struct udp_send *s = malloc(sizeof(*s) + len);
	uv_buf_t b;

	if (s == NULL)
		return -1;
	memcpy(s->data, p, len);
	b = uv_buf_init((char *)s->data, (unsigned)len);
	if (uv_udp_send(&s->req, h, &b, 1, to, udp_sent) < 0) {
		free(s);
		return -1;
	}
	return 0;
}

static void txn_closed(uv_handle_t *h)
{
	free(h->data);
}

static void txn_close(struct relay_udp_txn *x)
{
	struct relay *rl = x->rl;

	if (x->closing)
		return;
	x->closing = 1;
	if (x->prev)
		x->prev->next = x->next;
	else
		rl->txns = x->next;
	if (x->next)
		x->next->prev = x->prev;
	uv_close((uv_handle_t *)&x->up, txn_closed);
}

static void on_udp_answer(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
			  unsigned flags)
{
	struct relay_udp_txn *x = h->data;
	struct relay *rl = x->rl;
	uint8_t *m = (uint8_t *)buf->base;
	size_t len;

	(void)addr;
	(void)flags;
	if (nread == 0 || x->closing)
		goto out;
	if (nread < 0) {
		txn_close(x);
		goto out;
	}
	len = (size_t)nread;
	rl->n.answers++;
	if (relay_hit(rl, 0)) {
		switch (rl->mode) {
		case RELAY_DROP:
			rl->n.dropped++;
			len = 0;
			break;
		case RELAY_TRUNCATE:
			rl->n.truncated++;
			len = dns_truncate(m, len);
			break;
		case RELAY_CUT:
			rl->n.cut++;
			len /= 2;
			break;
		default:
			break;
		}
	}
	if (len > 0 && rl->open)
		udp_send_copy(&rl->udp, (const struct sockaddr *)&x->client, m, len);
	txn_close(x);
out:
	free(buf->base);
}

static void on_udp_query(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
			 unsigned flags)
{
	struct relay *rl = h->data;
	struct relay_udp_txn *x;

	(void)flags;
	if (nread <= 0 || addr == NULL || addr->sa_family != AF_INET)
		goto out;
	rl->n.udp_queries++;
	if (rl->mode == RELAY_SILENT)
		goto out;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		goto out;
	x->rl = rl;
	memcpy(&x->client, addr, sizeof(struct sockaddr_in));
	uv_udp_init(rl->loop, &x->up);
	x->up.data = x;
	x->next = rl->txns;
	if (rl->txns)
		rl->txns->prev = x;
	rl->txns = x;
	if (udp_send_copy(&x->up, (const struct sockaddr *)&rl->upstream, buf->base, (size_t)nread) < 0 ||
	    uv_udp_recv_start(&x->up, relay_alloc, on_udp_answer) < 0)
		txn_close(x);
out:
	free(buf->base);
}

/* TCP: one upstream connection per client connection, messages relayed frame by frame. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static int bytes_add(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		uint8_t *np;
		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (np == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void bytes_consume(struct bytes *b, size_t n)
{
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* bytes_frame - the length of the complete 2-byte-prefixed frame at the front, or 0. */
static size_t bytes_frame(const struct bytes *b)
{
	size_t n;

	if (b->len < 2)
		return 0;
	n = 2 + (size_t)get16(b->p);
	return b->len >= n ? n : 0;
}

struct relay_conn {
	struct relay *rl;
	uv_tcp_t client;
	uv_tcp_t up;
	uv_connect_t connect;
	int has_up, connected, closing, doomed, pending_closes;
	struct bytes from_client, pending, from_up;
	struct relay_conn *prev, *next;
};

struct tcp_write {
	uv_write_t req;
	struct relay_conn *c;
	int close_after;
	uint8_t data[];
};

static void conn_closed(uv_handle_t *h)
{
	struct relay_conn *c = h->data;

	if (--c->pending_closes == 0) {
		free(c->from_client.p);
		free(c->pending.p);
		free(c->from_up.p);
		free(c);
	}
}

/* conn_close - the one way a relayed connection ends; the struct goes with the last close callback. */
static void conn_close(struct relay_conn *c)
{
	struct relay *rl = c->rl;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		rl->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->pending_closes = 1 + c->has_up;
	uv_close((uv_handle_t *)&c->client, conn_closed);
	if (c->has_up)
		uv_close((uv_handle_t *)&c->up, conn_closed);
}

static void tcp_written(uv_write_t *req, int status)
{
	struct tcp_write *w = container_of(req, struct tcp_write, req);
	struct relay_conn *c = w->c;
	int close_after = w->close_after;

	free(w);
	/* Cancelled writes are reported before the close callbacks, so c is still there. */
	if (close_after || status < 0)
		conn_close(c);
}

static int tcp_write2(struct relay_conn *c, uv_tcp_t *h, const uint8_t *hdr, size_t hlen, const uint8_t *p,
		      size_t len, int close_after)
{
	struct tcp_write *w = malloc(sizeof(*w) + hlen + len);
	uv_buf_t b;

	if (w == NULL)
		return -1;
	w->c = c;
	w->close_after = close_after;
	memcpy(w->data, hdr, hlen);
	memcpy(w->data + hlen, p, len);
	b = uv_buf_init((char *)w->data, (unsigned)(hlen + len));
	if (uv_write(&w->req, (uv_stream_t *)h, &b, 1, tcp_written) < 0) {
		free(w);
		return -1;
	}
	return 0;
}

static void on_up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct relay_conn *c = s->data;
	struct relay *rl = c->rl;
	size_t flen;

	if (nread < 0) {
		rl->n.upstream_eof += !c->closing;
		conn_close(c);
		goto out;
	}
	if (nread == 0 || c->closing || c->doomed || bytes_add(&c->from_up, buf->base, (size_t)nread) < 0)
		goto out;
	while (!c->closing && !c->doomed && (flen = bytes_frame(&c->from_up)) > 0) {
		const uint8_t *body = c->from_up.p + 2;
		size_t blen = flen - 2, half = blen / 2;
		uint8_t hdr[2] = {(uint8_t)(half >> 8), (uint8_t)half};
		int rc = 0;

		rl->n.answers++;
		if (rl->hold_tcp) {
			rl->n.dropped++;
		} else if (!relay_hit(rl, 1)) {
			rc = tcp_write2(c, &c->client, c->from_up.p, 2, body, blen, 0);
		} else if (rl->mode == RELAY_DROP) {
			rl->n.dropped++;
		} else if (rl->mode == RELAY_CUT) {
			rl->n.cut++;
			rc = tcp_write2(c, &c->client, hdr, 2, body, half, 0);
		} else if (rl->mode == RELAY_CLOSE_MID) {
			rl->n.closed_mid++;
			c->doomed = 1;
			uv_read_stop((uv_stream_t *)&c->client);
			uv_read_stop((uv_stream_t *)&c->up);
			rc = tcp_write2(c, &c->client, c->from_up.p, 2, body, half, 1);
		} else {
			rc = tcp_write2(c, &c->client, c->from_up.p, 2, body, blen, 0);
		}
		if (rc < 0) {
			conn_close(c);
			break;
		}
		bytes_consume(&c->from_up, flen);
	}
out:
	free(buf->base);
}

static void on_up_connect(uv_connect_t *req, int status)
{
	struct relay_conn *c = container_of(req, struct relay_conn, connect);

	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	c->connected = 1;
	if (c->pending.len > 0) {
		static const uint8_t none[1] = {0};
		if (tcp_write2(c, &c->up, none, 0, c->pending.p, c->pending.len, 0) < 0) {
			conn_close(c);
			return;
		}
		c->pending.len = 0;
	}
	if (uv_read_start((uv_stream_t *)&c->up, relay_alloc, on_up_read) < 0)
		conn_close(c);
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct relay_conn *c = s->data;
	struct relay *rl = c->rl;
	size_t flen;

	if (nread < 0) {
		rl->n.client_eof += !c->closing;
		conn_close(c);
		goto out;
	}
	if (nread == 0 || c->closing || c->doomed || bytes_add(&c->from_client, buf->base, (size_t)nread) < 0)
		goto out;
	while (!c->closing && (flen = bytes_frame(&c->from_client)) > 0) {
		static const uint8_t none[1] = {0};
		int rc = 0;

		rl->n.tcp_queries++;
		if (rl->mode != RELAY_SILENT) {
			if (c->connected)
				rc = tcp_write2(c, &c->up, none, 0, c->from_client.p, flen, 0);
			else
				rc = bytes_add(&c->pending, c->from_client.p, flen);
		}
		if (rc < 0) {
			conn_close(c);
			break;
		}
		bytes_consume(&c->from_client, flen);
	}
out:
	free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct relay *rl = server->data;
	struct relay_conn *c;

	if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->rl = rl;
	uv_tcp_init(rl->loop, &c->client);
	c->client.data = c;
	c->next = rl->conns;
	if (rl->conns)
		rl->conns->prev = c;
	rl->conns = c;
	if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
		conn_close(c);
		return;
	}
	rl->n.tcp_conns++;
	if (rl->mode != RELAY_SILENT) {
		uv_tcp_init(rl->loop, &c->up);
		c->up.data = c;
		c->has_up = 1;
		if (uv_tcp_connect(&c->connect, &c->up, (const struct sockaddr *)&rl->upstream, on_up_connect) < 0) {
			conn_close(c);
			return;
		}
	}
	if (uv_read_start((uv_stream_t *)&c->client, relay_alloc, on_client_read) < 0)
		conn_close(c);
}

/*
 * relay_open - a UDP socket and a TCP listener on one free 127.0.0.1 port, relaying to the bed's NSD (or, when
 * RELAY_SILENT, to nobody). The mode hits every nth answer; TRUNCATE only on UDP, CLOSE_MID only on TCP.
 */
static void relay_open(struct tctx *t, struct relay *rl, enum relay_mode mode, unsigned nth)
{
	struct sockaddr_in sa;
	socklen_t sl;
	int ts = -1, us = -1, attempt;

	memset(rl, 0, sizeof(*rl));
	rl->loop = &t->loop;
	rl->mode = mode;
	rl->nth = nth;
	rl->on_udp = mode != RELAY_CLOSE_MID;
	rl->on_tcp = mode != RELAY_TRUNCATE;
	rl->upstream = t->validation == RESOLVER_VALIDATE_RESOLVER ? t->bed->unbound_addr : t->bed->dns;
	for (attempt = 0; attempt < 50; attempt++) {
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(sa);
		ts = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(ts >= 0);
		assert_int_equal(bind(ts, (const struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(getsockname(ts, (struct sockaddr *)&sa, &sl), 0);
		us = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(us >= 0);
		if (bind(us, (const struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		close(us);
		close(ts);
		us = ts = -1;
	}
	if (us < 0)
		fail_msg("no port free for both UDP and TCP on 127.0.0.1");
	snprintf(rl->spec, sizeof(rl->spec), "127.0.0.1@%u", ntohs(sa.sin_port));
	assert_int_equal(uv_tcp_init(rl->loop, &rl->listener), 0);
	assert_int_equal(uv_tcp_open(&rl->listener, ts), 0);
	rl->listener.data = rl;
	assert_int_equal(uv_listen((uv_stream_t *)&rl->listener, 128, on_connection), 0);
	assert_int_equal(uv_udp_init(rl->loop, &rl->udp), 0);
	assert_int_equal(uv_udp_open(&rl->udp, us), 0);
	rl->udp.data = rl;
	assert_int_equal(uv_udp_recv_start(&rl->udp, relay_alloc, on_udp_query), 0);
	rl->open = 1;
	t->relay = rl;
}

static void relay_close(struct relay *rl)
{
	if (!rl->open)
		return;
	rl->open = 0;
	uv_close((uv_handle_t *)&rl->udp, NULL);
	uv_close((uv_handle_t *)&rl->listener, NULL);
	while (rl->txns != NULL)
		txn_close(rl->txns);
	while (rl->conns != NULL)
		conn_close(rl->conns);
}

static void relay_opts(const struct tctx *t, const struct relay *rl, struct resolver_options *o)
{
	if (t->validation == RESOLVER_VALIDATE_RESOLVER)
		resolver_mode_opts(t, o);
	else
		default_opts(t, o);
	o->upstreams[0] = rl->spec;
}

/* ---------- 1. every case of the bed ---------- */

/* run_case_matrix - every case at one port, all at once on one resolver; each result exactly as the bed says. */
static void run_case_matrix(void **state, int udp, size_t port_index, enum resolver_validation validation)
{
	const struct bed *b = *state;
	uint16_t port = b->ports[port_index];
	struct expect *x = calloc(b->n_cases, sizeof(*x));
	struct lk *l = calloc(b->n_cases, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	unsigned bad = 0;
	size_t i;
	char why[512];

	assert_non_null(x);
	assert_non_null(l);
	for (i = 0; i < b->n_cases; i++)
		expect_build(b, &b->cases[i], port, &x[i]);
	tctx_open(&t, b);
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		resolver_mode_opts(&t, &o);
	else
		default_opts(&t, &o);
	o.udp = udp;
	tctx_resolver(&t, &o);
	for (i = 0; i < b->n_cases; i++)
		lk_start(&t, &l[i], b->cases[i].host, port);
	if (!run_until(&t, &t.done, (unsigned)b->n_cases, 15000))
		fail_msg("only %u of %zu lookups finished within 15 s", t.done, b->n_cases);
	printf("  case matrix, port %u, validation %s, %s:\n", port, resolver_validation_name(validation),
	       udp ? "UDP then TCP" : "TCP only");
	for (i = 0; i < b->n_cases; i++) {
		int ok = l[i].calls == 1 && check_exact(b, &x[i], &l[i].res, 0, why, sizeof(why)) == 0;
		if (l[i].calls != 1)
			snprintf(why, sizeof(why), "callback called %u times", l[i].calls);
		printf("    %-15s %-26s %-26s tlsa %2zu/%2zu %-8s rcode %2d ede %2d %s%s\n", b->cases[i].name,
		       b->cases[i].host, resolver_outcome_name(l[i].res.outcome), l[i].res.n_tlsa_usable, l[i].res.n_tlsa,
		       l[i].res.addrs_secure ? "addrs-s" : "addrs-i", l[i].res.rcode, l[i].res.ede, ok ? "ok" : "MISMATCH: ",
		       ok ? "" : why);
		bad += !ok;
	}
	tctx_close(&t);
	free(x);
	free(l);
	if (bad)
		fail_msg("%u of %zu cases differ from the bed's expectations", bad, b->n_cases);
}

static void test_cases_tcp_443(void **state)
{
	run_case_matrix(state, 0, 0, RESOLVER_VALIDATE_SELF);
}

static void test_cases_udp_443(void **state)
{
	run_case_matrix(state, 1, 0, RESOLVER_VALIDATE_SELF);
}

static void test_cases_tcp_other_port(void **state)
{
	run_case_matrix(state, 0, 1, RESOLVER_VALIDATE_SELF);
}

/* test_cases_resolver_mode - every case at every TLSA port through unbound (validation = resolver): the same
 * outcomes as self mode, secure from the AD bit, bogus from unbound's SERVFAIL + EDE, never insecure. */
static void test_cases_resolver_mode(void **state)
{
	const struct bed *b = *state;
	size_t p;

	need_unbound(b);
	for (p = 0; p < b->n_ports; p++)
		run_case_matrix(state, 0, p, RESOLVER_VALIDATE_RESOLVER);
}

/*
 * run_tlsa_only - resolver_lookup_tlsa in one mode: a name with TLSA and no addresses (what `check` probes at a
 * parent domain) is secure with its records, where resolver_lookup says "no such host"; a bogus TLSA RRset stays
 * bogus, an unsigned one insecure; one TLSA query each, a cache entry of its own.
 */
static void run_tlsa_only(const struct bed *b, enum resolver_validation validation)
{
	const char *noaddr = bed_get(b, "TESTBED_TLSA_NOADDR");
	struct lk *l = calloc(6, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	char name[RESOLVER_MAX_NAME];
	uint64_t q;

	assert_non_null(l);
	if (noaddr == NULL)
		fail_msg("the bed has no TESTBED_TLSA_NOADDR");
	tctx_open(&t, b);
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		resolver_mode_opts(&t, &o);
	else
		default_opts(&t, &o);
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], noaddr, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 10000));
	snprintf(name, sizeof(name), "_%u._tcp.%s", b->ports[0], noaddr);
	printf("  %s TLSA only, %s: %s (%s)\n", noaddr, resolver_validation_name(validation),
	       resolver_outcome_name(l[0].res.outcome), l[0].res.detail);
	assert_int_equal(l[0].res.outcome, RESOLVER_NO_HOST);
	l[1].q = resolver_lookup_tlsa(t.r, noaddr, b->ports[0], on_result, &l[1]);
	l[1].t = &t;
	l[1].t_start = uv_hrtime();
	assert_non_null(l[1].q);
	q = stats(&t).queries;
	assert_true(run_until(&t, &t.done, 2, 10000));
	assert_int_equal(stats(&t).queries, q);   /* counted when started */
	assert_int_equal(l[1].res.outcome, RESOLVER_SECURE);
	assert_int_equal(l[1].res.tlsa_only, 1);
	assert_int_equal(l[1].res.n_addrs, 0);
	assert_int_equal(l[1].res.n_tlsa, 1);
	assert_string_equal(l[1].res.tlsa_name, name);
	/* Bogus and unsigned TLSA keep their verdicts; each is one query. */
	q = stats(&t).queries;
	l[2].t = l[3].t = &t;
	l[2].q = resolver_lookup_tlsa(t.r, bed_case(b, "ALTERED")->host, b->ports[0], on_result, &l[2]);
	l[3].q = resolver_lookup_tlsa(t.r, bed_case(b, "INSECURE")->host, b->ports[0], on_result, &l[3]);
	assert_true(run_until(&t, &t.done, 4, 10000));
	assert_int_equal(stats(&t).queries, q + 2);
	assert_int_equal(l[2].res.outcome, RESOLVER_BOGUS);
	assert_ptr_equal(l[2].res.reason, resolver_err_bogus);
	assert_int_equal(l[2].res.rcode, 2);
	assert_int_equal(l[3].res.outcome, RESOLVER_INSECURE);
	/* A second TLSA-only lookup is a cache hit of its own kind. */
	l[4].t = &t;
	l[4].q = resolver_lookup_tlsa(t.r, noaddr, b->ports[0], on_result, &l[4]);
	assert_true(run_until(&t, &t.done, 5, 10000));
	assert_int_equal(l[4].res.from_cache, 1);
	assert_int_equal(l[4].res.outcome, RESOLVER_SECURE);
	tctx_close(&t);
	free(l);
}

static void test_cases_tlsa_only(void **state)
{
	const struct bed *b = *state;

	run_tlsa_only(b, RESOLVER_VALIDATE_SELF);
	if (b->unbound != NULL)
		run_tlsa_only(b, RESOLVER_VALIDATE_RESOLVER);
}

/* ---------- mail: MX lookups and MX hosts (TESTBED_MAIL_CASES, TESTBED_MXHOST_CASES) ---------- */

/* bed_list - the ids of a comma-separated list key (split into a static-free copy the caller frees). */
static char *bed_list(const struct bed *b, const char *key, const char **ids, size_t max, size_t *n)
{
	const char *v = bed_get(b, key);
	char *copy, *tok, *save = NULL;

	*n = 0;
	if (v == NULL)
		fail_msg("the bed has no %s (a bed from before the mail cases?)", key);
	copy = strdup(v);
	assert_non_null(copy);
	for (tok = strtok_r(copy, ",", &save); tok != NULL && *n < max; tok = strtok_r(NULL, ",", &save))
		ids[(*n)++] = tok;
	return copy;
}

/* mx_expected - does res carry exactly the bed's MX list ("pref:host,..."; "" none; "0:." the null MX)? */
static int mx_list_matches(const struct resolver_result *res, const char *want, char *why, size_t whylen)
{
	char buf[1024], *tok, *save = NULL, *colon;
	size_t i = 0;

	if (strcmp(want, "0:.") == 0) {
		if (!res->mx_null || res->n_mx != 0) {
			snprintf(why, whylen, "expected a null MX, got mx_null %d and %zu records", res->mx_null, res->n_mx);
			return 0;
		}
		return 1;
	}
	if (res->mx_null) {
		snprintf(why, whylen, "unexpected null MX");
		return 0;
	}
	snprintf(buf, sizeof(buf), "%s", want);
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save), i++) {
		colon = strchr(tok, ':');
		assert_non_null(colon);
		*colon = '\0';
		if (i >= res->n_mx || res->mx[i].preference != (uint16_t)atoi(tok) || strcmp(res->mx[i].host, colon + 1)) {
			snprintf(why, whylen, "MX %zu: got %s, want %s %s", i,
				 i < res->n_mx ? res->mx[i].host : "(none)", tok, colon + 1);
			return 0;
		}
	}
	if (i != res->n_mx) {
		snprintf(why, whylen, "%zu MX records, want %zu", res->n_mx, i);
		return 0;
	}
	return 1;
}

/* mail_case_ok - one MX lookup against TESTBED_EXPECT_MX_<id> and TESTBED_MX_<id>; 1 when it matches. */
static int mail_case_ok(const struct bed *b, const char *id, const struct lk *l, char *why, size_t whylen)
{
	const char *expect = bed_getf(b, "TESTBED_EXPECT_MX_%s", id), *list = bed_getf(b, "TESTBED_MX_%s", id);
	const struct resolver_result *res = &l->res;

	if (expect == NULL || list == NULL)
		fail_msg("the bed lacks TESTBED_EXPECT_MX_%s or TESTBED_MX_%s", id, id);
	if (l->calls != 1) {
		snprintf(why, whylen, "callback called %u times", l->calls);
		return 0;
	}
	if (res->n_addrs != 0 || res->n_tlsa != 0) {
		snprintf(why, whylen, "an MX result with addresses or TLSA");
		return 0;
	}
	if (strcmp(expect, "secure") == 0 || strcmp(expect, "insecure") == 0 || strcmp(expect, "secure-nodata") == 0) {
		enum resolver_outcome want = strcmp(expect, "insecure") == 0 ? RESOLVER_INSECURE : RESOLVER_SECURE;
		if (res->outcome != want || res->reason != NULL || res->mx_secure != (want == RESOLVER_SECURE)) {
			snprintf(why, whylen, "outcome %s (mx_secure %d), want %s", resolver_outcome_name(res->outcome),
				 res->mx_secure, expect);
			return 0;
		}
		if (res->rcode != 0) {
			snprintf(why, whylen, "rcode %d, want 0", res->rcode);
			return 0;
		}
		return mx_list_matches(res, list, why, whylen);
	}
	if (strcmp(expect, "secure-nxdomain") == 0) {
		if (res->outcome != RESOLVER_NO_HOST || res->reason != resolver_err_no_domain || !res->mx_secure ||
		    res->rcode != 3 || res->n_mx != 0 || res->mx_null) {
			snprintf(why, whylen, "outcome %s reason %s rcode %d mx_secure %d, want no such domain (proven)",
				 resolver_outcome_name(res->outcome), res->reason ? res->reason : "-", res->rcode,
				 res->mx_secure);
			return 0;
		}
		return 1;
	}
	if (strcmp(expect, "bogus") == 0) {
		/* Never "no MX": a bogus answer defers the mail. */
		if (res->outcome != RESOLVER_BOGUS || res->reason != resolver_err_bogus || res->rcode != 2 ||
		    res->n_mx != 0 || res->mx_null) {
			snprintf(why, whylen, "outcome %s rcode %d, want bogus (SERVFAIL)", resolver_outcome_name(res->outcome),
				 res->rcode);
			return 0;
		}
		return 1;
	}
	fail_msg("unknown MX expectation %s for %s", expect, id);
	return 0;
}

/* run_mail_matrix - every mail case's MX lookup in one mode, all at once; the CNAME'd domains name their target. */
static void run_mail_matrix(const struct bed *b, int udp, enum resolver_validation validation)
{
	const char *ids[64];
	size_t n, i;
	char *list = bed_list(b, "TESTBED_MAIL_CASES", ids, 64, &n);
	struct lk *l = calloc(n, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	unsigned bad = 0;
	char why[512];

	assert_non_null(l);
	tctx_open(&t, b);
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		resolver_mode_opts(&t, &o);
	else
		default_opts(&t, &o);
	o.udp = udp;
	tctx_resolver(&t, &o);
	for (i = 0; i < n; i++) {
		l[i].t = &t;
		l[i].host = bed_getf(b, "TESTBED_MAIL_DOMAIN_%s", ids[i]);
		assert_non_null(l[i].host);
		t.in_lookup = 1;
		l[i].q = resolver_lookup_mx(t.r, l[i].host, on_result, &l[i]);
		t.in_lookup = 0;
		assert_non_null(l[i].q);
	}
	if (!run_until(&t, &t.done, (unsigned)n, 15000))
		fail_msg("only %u of %zu MX lookups finished within 15 s", t.done, n);
	printf("  mail matrix, validation %s, %s:\n", resolver_validation_name(validation),
	       validation == RESOLVER_VALIDATE_RESOLVER || udp ? "UDP then TCP" : "TCP only");
	for (i = 0; i < n; i++) {
		int ok = mail_case_ok(b, ids[i], &l[i], why, sizeof(why));
		const char *cname = bed_getf(b, "TESTBED_MAIL_DOMAIN_%s", strcmp(ids[i], "ALIAS") == 0 ? "SECURE"
							: strcmp(ids[i], "ALIAS_INSECURE") == 0 ? "INSECURE" : ids[i]);
		/* The CNAME'd domains: the expanded name is reported; the others are no alias. */
		if (ok && strcmp(l[i].res.cname_target, strcmp(cname, l[i].host) ? cname : "") != 0) {
			snprintf(why, sizeof(why), "cname_target \"%s\", want \"%s\"", l[i].res.cname_target,
				 strcmp(cname, l[i].host) ? cname : "");
			ok = 0;
		}
		printf("    %-15s %-30s %-14s mx %2zu%s rcode %2d %s%s\n", ids[i], l[i].host,
		       resolver_outcome_name(l[i].res.outcome), l[i].res.n_mx, l[i].res.mx_null ? " null" : "     ",
		       l[i].res.rcode, ok ? "ok" : "MISMATCH: ", ok ? "" : why);
		bad += !ok;
	}
	tctx_close(&t);
	free(l);
	free(list);
	if (bad)
		fail_msg("%u of %zu mail cases differ from the bed's expectations", bad, n);
}

static void test_mail_mx_tcp(void **state)
{
	run_mail_matrix(*state, 0, RESOLVER_VALIDATE_SELF);
}

static void test_mail_mx_udp(void **state)
{
	run_mail_matrix(*state, 1, RESOLVER_VALIDATE_SELF);
}

static void test_mail_mx_resolver_mode(void **state)
{
	need_unbound(*state);
	run_mail_matrix(*state, 0, RESOLVER_VALIDATE_RESOLVER);
}

/* smtp_port - TESTBED_SMTP_PORT, where the MX hosts publish TLSA (besides 25). */
static uint16_t smtp_port(const struct bed *b)
{
	const char *v = bed_get(b, "TESTBED_SMTP_PORT");
	long port = v != NULL ? parse_port(v, v + strlen(v)) : -1;

	if (port < 0)
		fail_msg("the bed has no valid TESTBED_SMTP_PORT");
	return (uint16_t)port;
}

/* one_addr4 - res holds exactly the IPv4 address text ip (MX hosts have one A record and no AAAA). */
static int one_addr4(const struct resolver_result *res, const char *ip)
{
	struct in_addr want;

	return inet_pton(AF_INET, ip, &want) == 1 && res->n_addrs == 1 && res->addrs[0].ss_family == AF_INET &&
	       memcmp(&((const struct sockaddr_in *)&res->addrs[0])->sin_addr, &want, sizeof(want)) == 0;
}

/*
 * test_mail_mx_hosts - every MX host at the SMTP port: resolver_lookup (addresses + TLSA, with the CNAME rule of
 * RFC 7672 section 2.2.2) and resolver_lookup_addrs (addresses only: a bogus TLSA RRset cannot hide them, which is
 * what a host reached through an unsigned MX RRset needs).
 */
static void test_mail_mx_hosts(void **state)
{
	const struct bed *b = *state;
	const char *ids[64];
	size_t n, i;
	char *list = bed_list(b, "TESTBED_MXHOST_CASES", ids, 64, &n);
	struct lk *full = calloc(n, sizeof(*full)), *addrs = calloc(n, sizeof(*addrs));
	uint16_t port = smtp_port(b);
	struct resolver_options o;
	struct tctx t;
	unsigned bad = 0;
	char why[300];

	assert_non_null(full);
	assert_non_null(addrs);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < n; i++) {
		const char *host = bed_getf(b, "TESTBED_MXHOST_%s", ids[i]);
		assert_non_null(host);
		lk_start(&t, &full[i], host, port);
		addrs[i].t = &t;
		addrs[i].host = host;
		t.in_lookup = 1;
		addrs[i].q = resolver_lookup_addrs(t.r, host, on_result, &addrs[i]);
		t.in_lookup = 0;
		assert_non_null(addrs[i].q);
	}
	if (!run_until(&t, &t.done, (unsigned)(2 * n), 15000))
		fail_msg("only %u of %zu lookups finished within 15 s", t.done, 2 * n);
	printf("  MX hosts at port %u:\n", port);
	for (i = 0; i < n; i++) {
		const char *ip = bed_getf(b, "TESTBED_MXHOST_ADDR_%s", ids[i]);
		const char *ea = bed_getf(b, "TESTBED_EXPECT_MXHOST_ADDR_%s", ids[i]);
		const char *et = bed_getf(b, "TESTBED_EXPECT_MXHOST_TLSA_%s", ids[i]);
		const struct resolver_result *f = &full[i].res, *a = &addrs[i].res;
		int ok = 1;

		why[0] = '\0';
		if (strcmp(ea, "bogus") == 0) {
			ok = f->outcome == RESOLVER_BOGUS && a->outcome == RESOLVER_BOGUS && a->n_addrs == 0;
			snprintf(why, sizeof(why), "addresses bogus: full %s, addrs-only %s", resolver_outcome_name(f->outcome),
				 resolver_outcome_name(a->outcome));
		} else {
			int secure = strcmp(ea, "secure") == 0;
			/* Addresses only: never a TLSA verdict, whatever the TLSA RRset is. */
			if (a->outcome != RESOLVER_INSECURE || a->addrs_secure != secure || !one_addr4(a, ip) || a->n_tlsa) {
				ok = 0;
				snprintf(why, sizeof(why), "addrs-only: %s addrs_secure %d n_addrs %zu, want insecure/%d/%s",
					 resolver_outcome_name(a->outcome), a->addrs_secure, a->n_addrs, secure, ip);
			} else if (!secure) {
				ok = f->outcome == RESOLVER_INSECURE && !f->addrs_secure && one_addr4(f, ip) && f->n_tlsa == 0;
				snprintf(why, sizeof(why), "full: %s, want insecure", resolver_outcome_name(f->outcome));
			} else if (strcmp(et, "bogus") == 0) {
				ok = f->outcome == RESOLVER_BOGUS && f->reason == resolver_err_bogus;
				snprintf(why, sizeof(why), "full: %s, want bogus (the TLSA RRset)", resolver_outcome_name(f->outcome));
			} else if (strcmp(et, "secure-nxdomain") == 0 || strcmp(et, "secure-nodata") == 0) {
				ok = f->outcome == RESOLVER_SECURE_ABSENT && f->addrs_secure && one_addr4(f, ip);
				snprintf(why, sizeof(why), "full: %s, want secure absence", resolver_outcome_name(f->outcome));
			} else {
				ok = (f->outcome == RESOLVER_SECURE || f->outcome == RESOLVER_SECURE_UNUSABLE) && f->addrs_secure &&
				     one_addr4(f, ip) && f->n_tlsa > 0;
				snprintf(why, sizeof(why), "full: %s n_tlsa %zu, want secure TLSA",
					 resolver_outcome_name(f->outcome), f->n_tlsa);
			}
		}
		if (ok && strcmp(ids[i], "MX_ALIAS") == 0) {
			/* RFC 7672 section 2.2.2: TLSA at the expanded name first (mx1's records, which match the leaf). */
			char want[RESOLVER_MAX_NAME];
			const char *target = bed_getf(b, "TESTBED_MXHOST_MX1");
			snprintf(want, sizeof(want), "_%u._tcp.%s", port, target);
			ok = strcmp(f->cname_target, target) == 0 && strcmp(f->tlsa_name, want) == 0;
			snprintf(why, sizeof(why), "alias: cname_target %s tlsa_name %s, want %s", f->cname_target, f->tlsa_name,
				 want);
		}
		printf("    %-14s %-26s full %-26s addrs-only %-9s addrs-%s %s%s\n", ids[i], full[i].host,
		       resolver_outcome_name(f->outcome), resolver_outcome_name(a->outcome), a->addrs_secure ? "s" : "i",
		       ok ? "ok" : "MISMATCH: ", ok ? "" : why);
		bad += !ok;
	}
	tctx_close(&t);
	free(full);
	free(addrs);
	free(list);
	if (bad)
		fail_msg("%u of %zu MX hosts differ from the bed's expectations", bad, n);
}

/*
 * test_mail_mx_cache - MX lookups are coalesced and cached per domain, apart from address and full lookups of the
 * same name: 3 concurrent lookups cost one query, a fourth is a cache hit, the domain's own address lookup is
 * another entry; a cancelled MX lookup is never called back; a bogus answer is cached briefly as a failure.
 */
static void test_mail_mx_cache(void **state)
{
	const struct bed *b = *state;
	const char *domain = bed_get(b, "TESTBED_MAIL_DOMAIN_NOMX"), *bogus = bed_get(b, "TESTBED_MAIL_DOMAIN_BOGUS");
	struct lk *l = calloc(8, sizeof(*l));
	struct resolver_options o;
	struct resolver_stats st;
	struct tctx t;
	int i;

	assert_non_null(l);
	assert_non_null(domain);
	assert_non_null(bogus);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < 4; i++) {
		l[i].t = &t;
		l[i].q = resolver_lookup_mx(t.r, domain, on_result, &l[i]);
		assert_non_null(l[i].q);
	}
	resolver_cancel(l[3].q);
	l[3].q = NULL;
	st = stats(&t);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.coalesced, 3);
	assert_true(run_until(&t, &t.done, 3, 10000));
	run_for(&t, 20);
	assert_int_equal(l[3].calls, 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(l[i].calls, 1);
		assert_int_equal(l[i].res.outcome, RESOLVER_SECURE);
		assert_int_equal(l[i].res.n_mx, 0);
		assert_int_equal(l[i].res.mx_null, 0);
	}
	/* cached */
	l[4].t = &t;
	l[4].q = resolver_lookup_mx(t.r, domain, on_result, &l[4]);
	assert_true(run_until(&t, &t.done, 4, 10000));
	assert_int_equal(l[4].res.from_cache, 1);
	assert_int_equal(stats(&t).queries, 1);
	/* the same name's addresses are another kind of entry: two queries (A, AAAA) */
	l[5].t = &t;
	l[5].q = resolver_lookup_addrs(t.r, domain, on_result, &l[5]);
	assert_true(run_until(&t, &t.done, 5, 10000));
	assert_int_equal(l[5].res.from_cache, 0);
	assert_int_equal(stats(&t).queries, 3);
	assert_int_equal(l[5].res.outcome, RESOLVER_INSECURE);
	assert_int_equal(l[5].res.addrs_secure, 1);
	/* bogus: a failure, cached for failure_ttl like any other */
	l[6].t = l[7].t = &t;
	l[6].q = resolver_lookup_mx(t.r, bogus, on_result, &l[6]);
	assert_true(run_until(&t, &t.done, 6, 10000));
	assert_int_equal(l[6].res.outcome, RESOLVER_BOGUS);
	assert_true(l[6].res.ttl <= 2);
	l[7].q = resolver_lookup_mx(t.r, bogus, on_result, &l[7]);
	assert_true(run_until(&t, &t.done, 7, 10000));
	assert_int_equal(l[7].res.from_cache, 1);
	assert_int_equal(l[7].res.outcome, RESOLVER_BOGUS);
	tctx_close(&t);
	free(l);
}

/* test_mail_invalid_input - bad domain names are refused at once, like resolver_lookup's. */
static void test_mail_invalid_input(void **state)
{
	static const char *const bad[] = {"", ".", "a..b", "a b", "x/y", "-bad!", "a.b\n"};
	const struct bed *b = *state;
	struct resolver_options o;
	struct tctx t;
	struct lk l;
	size_t i;

	memset(&l, 0, sizeof(l));
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (resolver_lookup_mx(t.r, bad[i], on_result, &l) != NULL)
			fail_msg("resolver_lookup_mx accepted \"%s\"", bad[i]);
		if (resolver_lookup_addrs(t.r, bad[i], on_result, &l) != NULL)
			fail_msg("resolver_lookup_addrs accepted \"%s\"", bad[i]);
	}
	assert_int_equal(stats(&t).queries, 0);
	run_for(&t, 50);
	assert_int_equal(l.calls, 0);
	tctx_close(&t);
}

/* test_cases_resolver_mode_upstreams - resolver mode takes the AD bit only from explicit loopback upstreams. */
static void test_cases_resolver_mode_upstreams(void **state)
{
	static const char *const bad[] = {"192.0.2.53", "10.0.0.1@53", "[2001:db8::1]@53", "::2", "128.0.0.1"};
	static const char *const good[] = {"127.0.0.1", "127.1.2.3@5353", "::1", "[::1]@53", "::ffff:127.0.0.1"};
	struct resolver_options o;
	struct resolver *r = NULL;
	uv_loop_t loop;
	char err[256];
	size_t i;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	memset(&o, 0, sizeof(o));
	o.validation = RESOLVER_VALIDATE_RESOLVER;
	/* No upstream would mean /etc/resolv.conf: refused. */
	assert_int_equal(resolver_new(&loop, &o, &r, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "loopback"));
	o.n_upstreams = 2;
	o.upstreams[0] = "127.0.0.1@53";
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o.upstreams[1] = bad[i];
		if (resolver_new(&loop, &o, &r, err, sizeof(err)) != -1)
			fail_msg("resolver mode accepted upstream %s", bad[i]);
		assert_non_null(strstr(err, bad[i]));
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o.upstreams[1] = good[i];
		if (resolver_new(&loop, &o, &r, err, sizeof(err)) != 0)
			fail_msg("resolver mode refused upstream %s: %s", good[i], err);
		resolver_free(r);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* test_cases_invalid_input - bad names and port 0 are refused synchronously with nothing scheduled. */
static void test_cases_invalid_input(void **state)
{
	static const char *const bad[] = {"", ".", "a..b", "a b", "x/y", "-bad!", "a.b\n"};
	const struct bed *b = *state;
	struct resolver_options o;
	struct tctx t;
	struct lk l;
	char long_label[80];
	size_t i;

	memset(&l, 0, sizeof(l));
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".test");
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (resolver_lookup(t.r, bad[i], 443, on_result, &l) != NULL)
			fail_msg("resolver_lookup accepted \"%s\"", bad[i]);
	assert_null(resolver_lookup(t.r, long_label, 443, on_result, &l));
	assert_null(resolver_lookup(t.r, bed_case(b, "SECURE")->host, 0, on_result, &l));
	assert_int_equal(stats(&t).queries, 0);
	run_for(&t, 50);
	assert_int_equal(l.calls, 0);
	tctx_close(&t);
}

/* ---------- 2. the cache ---------- */

/* test_cache_hit - a second lookup is served from the cache: no query, cache_hits + 1, the same result. */
static void test_cache_hit(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE");
	struct expect *x = expect_one(b, "SECURE", b->ports[0]);
	struct lk *l = calloc(4, sizeof(*l));
	struct resolver_stats s1, s2;
	struct resolver_options o;
	struct tctx t;
	char upper[RESOLVER_MAX_NAME];
	size_t i;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 10000));
	assert_exact(b, x, &l[0]);
	assert_int_equal(l[0].res.from_cache, 0);
	s1 = stats(&t);
	assert_int_equal(s1.lookups, 1);
	assert_int_equal(s1.cache_hits, 0);
	assert_int_equal(s1.queries, 3);   /* A, AAAA, TLSA */

	lk_start(&t, &l[1], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 10000));
	s2 = stats(&t);
	assert_exact(b, x, &l[1]);
	assert_int_equal(l[1].res.from_cache, 1);
	assert_int_equal(s2.queries, s1.queries);
	assert_int_equal(s2.cache_hits, s1.cache_hits + 1);
	assert_int_equal(s2.lookups, s1.lookups + 1);
	assert_true(l[1].res.ttl <= l[0].res.ttl);

	/* The key is the normalised name: case and a trailing dot do not matter. */
	for (i = 0; c->host[i] != '\0' && i + 2 < sizeof(upper); i++)
		upper[i] = (char)((c->host[i] >= 'a' && c->host[i] <= 'z') ? c->host[i] - 'a' + 'A' : c->host[i]);
	upper[i++] = '.';
	upper[i] = '\0';
	lk_start(&t, &l[2], upper, b->ports[0]);
	assert_true(run_until(&t, &t.done, 3, 10000));
	assert_int_equal(l[2].res.from_cache, 1);
	assert_int_equal(stats(&t).queries, s1.queries);

	/* Another port is another entry. */
	lk_start(&t, &l[3], c->host, b->ports[1]);
	assert_true(run_until(&t, &t.done, 4, 10000));
	assert_int_equal(l[3].res.from_cache, 0);
	assert_int_equal(l[3].res.outcome, RESOLVER_SECURE);
	assert_int_equal(stats(&t).queries, s1.queries + 3);
	assert_int_equal(stats(&t).entries, 2);
	tctx_close(&t);
	free(l);
	free(x);
}

/* run_ttl_expiry - after ttl_max seconds of loop time the entry is gone and a lookup queries again. */
static void run_ttl_expiry(void **state, unsigned ttl_min)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE");
	struct lk *l = calloc(3, sizeof(*l));
	struct resolver_stats s1;
	struct resolver_options o;
	struct tctx t;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.ttl_min = ttl_min;
	o.ttl_max = 1;
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 10000));
	assert_int_equal(l[0].res.outcome, RESOLVER_SECURE);
	if (l[0].res.ttl != 1) {
		unsigned ttl = l[0].res.ttl;
		tctx_close(&t);   /* a clean failure, without leak reports */
		free(l);
		fail_msg("opts.ttl_max = 1 (ttl_min %u): the result is cached for %u s", ttl_min, ttl);
	}
	lk_start(&t, &l[1], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 10000));
	assert_int_equal(l[1].res.from_cache, 1);
	s1 = stats(&t);
	run_for(&t, 1100);
	lk_start(&t, &l[2], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 3, 10000));
	assert_int_equal(l[2].res.from_cache, 0);
	assert_int_equal(l[2].res.outcome, RESOLVER_SECURE);
	assert_int_equal(stats(&t).queries, s1.queries + 3);
	assert_int_equal(stats(&t).cache_hits, s1.cache_hits);
	tctx_close(&t);
	free(l);
}

static void test_cache_ttl_expiry(void **state)
{
	run_ttl_expiry(state, 1);
}

/* test_cache_ttl_max_alone - opts.ttl_max = 1 with ttl_min left at its default still bounds the TTL to 1 s. */
static void test_cache_ttl_max_alone(void **state)
{
	run_ttl_expiry(state, 0);
}

/* distinct_hosts - up to n hosts of cases with a successful outcome, in the bed's order. */
static size_t distinct_hosts(const struct bed *b, const char **hosts, size_t n)
{
	struct expect *x = calloc(1, sizeof(*x));
	size_t i, k = 0;

	assert_non_null(x);
	for (i = 0; i < b->n_cases && k < n; i++) {
		expect_build(b, &b->cases[i], b->ports[0], x);
		if (x->reason == NULL)
			hosts[k++] = b->cases[i].host;
	}
	free(x);
	return k;
}

/* test_cache_count_bound - cache_max = 3 holds over 6 names looked up one after the other; LRU order. */
static void test_cache_count_bound(void **state)
{
	const struct bed *b = *state;
	const char *hosts[6];
	struct lk *l = calloc(8, sizeof(*l));
	struct resolver_stats st;
	struct resolver_options o;
	struct tctx t;
	size_t i;
	uint64_t q;

	assert_non_null(l);
	assert_int_equal(distinct_hosts(b, hosts, 6), 6);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.cache_max = 3;
	tctx_resolver(&t, &o);
	for (i = 0; i < 6; i++) {
		lk_start(&t, &l[i], hosts[i], b->ports[0]);
		assert_true(run_until(&t, &t.done, (unsigned)i + 1, 10000));
		assert_int_equal(l[i].res.from_cache, 0);
		st = stats(&t);
		if (st.entries > 3)
			fail_msg("after %zu names the cache holds %zu entries (cache_max 3)", i + 1, st.entries);
	}
	st = stats(&t);
	printf("  cache_max 3, 6 names: entries %zu, evictions %llu\n", st.entries, (unsigned long long)st.evictions);
	assert_true(st.entries <= 3);
	assert_true(st.evictions >= 3);
	/* The most recent name is still there, the oldest is not. */
	q = st.queries;
	lk_start(&t, &l[6], hosts[5], b->ports[0]);
	assert_true(run_until(&t, &t.done, 7, 10000));
	assert_int_equal(l[6].res.from_cache, 1);
	assert_int_equal(stats(&t).queries, q);
	lk_start(&t, &l[7], hosts[0], b->ports[0]);
	assert_true(run_until(&t, &t.done, 8, 10000));
	assert_int_equal(l[7].res.from_cache, 0);
	assert_true(stats(&t).queries > q);
	assert_true(stats(&t).entries <= 3);
	tctx_close(&t);
	free(l);
}

/* test_cache_count_bound_concurrent - 6 names in flight at once: once delivered, the bound holds again. */
static void test_cache_count_bound_concurrent(void **state)
{
	const struct bed *b = *state;
	const char *hosts[6];
	struct lk *l = calloc(6, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	size_t i;

	assert_non_null(l);
	assert_int_equal(distinct_hosts(b, hosts, 6), 6);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.cache_max = 3;
	tctx_resolver(&t, &o);
	for (i = 0; i < 6; i++)
		lk_start(&t, &l[i], hosts[i], b->ports[0]);
	assert_true(run_until(&t, &t.done, 6, 10000));
	for (i = 0; i < 6; i++)
		assert_int_equal(l[i].calls, 1);
	printf("  cache_max 3, 6 concurrent names: entries %zu, evictions %llu\n", stats(&t).entries,
	       (unsigned long long)stats(&t).evictions);
	assert_true(stats(&t).entries <= 3);
	assert_true(stats(&t).evictions > 0);
	tctx_close(&t);
	free(l);
}

/* test_cache_failure_ttl - a bogus result is cached for failure_ttl only; a good one stays. */
static void test_cache_failure_ttl(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *bogus = first_case(b, RESOLVER_BOGUS, 0);
	const struct bed_case *good = bed_case(b, "SECURE");
	struct lk *l = calloc(6, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	uint64_t q;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.failure_ttl = 1;
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], bogus->host, b->ports[0]);
	lk_start(&t, &l[1], good->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 10000));
	assert_int_equal(l[0].res.outcome, RESOLVER_BOGUS);
	assert_ptr_equal(l[0].res.reason, resolver_err_bogus);
	assert_int_equal(l[0].res.ttl, 1);
	assert_int_equal(l[1].res.outcome, RESOLVER_SECURE);
	assert_true(l[1].res.ttl >= 5);   /* the default ttl_min */
	/* Within failure_ttl both come from the cache. */
	q = stats(&t).queries;
	lk_start(&t, &l[2], bogus->host, b->ports[0]);
	lk_start(&t, &l[3], good->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 4, 10000));
	assert_int_equal(l[2].res.from_cache, 1);
	assert_int_equal(l[2].res.outcome, RESOLVER_BOGUS);
	assert_ptr_equal(l[2].res.reason, resolver_err_bogus);
	assert_int_equal(l[3].res.from_cache, 1);
	assert_int_equal(stats(&t).queries, q);
	/* After it, the failure is asked again; the good result is still cached. */
	run_for(&t, 1100);
	lk_start(&t, &l[4], bogus->host, b->ports[0]);
	lk_start(&t, &l[5], good->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 6, 10000));
	assert_int_equal(l[4].res.from_cache, 0);
	assert_int_equal(l[4].res.outcome, RESOLVER_BOGUS);
	assert_int_equal(l[5].res.from_cache, 1);
	assert_int_equal(stats(&t).queries, q + 3);
	tctx_close(&t);
	free(l);
}

/*
 * run_prefetch - steady load on the bed's short-TTL name (TTL 2 s) for 3x its TTL, one lookup every 50 ms:
 * only the first waits for DNS; every later callback comes from the cache because hits in the last 10% of the
 * TTL refresh the entry in the background (issue 11, "names in use stay warm").
 */
static void run_prefetch(const struct bed *b, enum resolver_validation validation)
{
	const struct bed_case *c = bed_case(b, "SHORTTTL");
	struct lk *l = calloc(1, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	unsigned n = 0, cold = 0, wrong = 0;
	uint64_t start;
	double slowest = 0;

	assert_non_null(l);
	tctx_open(&t, b);
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		resolver_mode_opts(&t, &o);
	else
		default_opts(&t, &o);
	o.ttl_min = 1;   /* the name's own 2 s, not the default minimum of 5 s */
	tctx_resolver(&t, &o);
	start = uv_now(&t.loop);
	while (uv_now(&t.loop) - start < 6000) {
		memset(l, 0, sizeof(*l));
		lk_start(&t, l, c->host, b->ports[0]);
		assert_true(run_until(&t, &t.done, n + 1, 5000));
		if (n > 0 && !l->res.from_cache) {
			cold++;
			printf("    lookup %u at %llu ms waited for DNS (%.2f ms)\n", n,
			       (unsigned long long)(uv_now(&t.loop) - start), lk_ms(l));
		}
		if (n > 0 && lk_ms(l) > slowest)
			slowest = lk_ms(l);
		wrong += l->res.outcome != RESOLVER_SECURE;
		n++;
		run_for(&t, 50);
	}
	printf("FIGURE steady load on %s (TTL %u s) for 6 s, validation %s: %u lookups, %u after the first waited "
	       "for DNS, %llu background refreshes, slowest later callback %.3f ms\n",
	       c->host, 2u, resolver_validation_name(validation), n, cold,
	       (unsigned long long)stats(&t).prefetches, slowest);
	assert_int_equal(wrong, 0);
	assert_int_equal(cold, 0);
	assert_true(stats(&t).prefetches >= 2);
	tctx_close(&t);
	free(l);
}

static void test_cache_prefetch(void **state)
{
	run_prefetch(*state, RESOLVER_VALIDATE_SELF);
}

static void test_cache_prefetch_resolver_mode(void **state)
{
	need_unbound(*state);
	run_prefetch(*state, RESOLVER_VALIDATE_RESOLVER);
}

/*
 * test_cache_prefetch_fail_closed - a refresh that fails (the upstream went silent) keeps the old answer only
 * until its own TTL: the first lookup after that is not served stale, and fails.
 */
static void test_cache_prefetch_fail_closed(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SHORTTTL");
	struct relay *rl = calloc(1, sizeof(*rl));
	struct lk *l = calloc(4, sizeof(*l));
	struct resolver_options o;
	struct tctx t;

	assert_non_null(rl);
	assert_non_null(l);
	tctx_open(&t, b);
	relay_open(&t, rl, RELAY_PASS, 0);
	relay_opts(&t, rl, &o);
	o.ttl_min = 1;
	o.timeout_ms = 500;
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 5000));
	assert_int_equal(l[0].res.outcome, RESOLVER_SECURE);
	assert_int_equal(l[0].res.ttl, 2);
	rl->mode = RELAY_SILENT;
	/* In the last 10% of the TTL: served from the cache, and a refresh starts (and will time out). */
	run_for(&t, 1850);
	lk_start(&t, &l[1], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 5000));
	assert_int_equal(l[1].res.from_cache, 1);
	assert_int_equal(l[1].res.outcome, RESOLVER_SECURE);
	assert_int_equal(stats(&t).prefetches, 1);
	/* Past the TTL: nothing stale. The lookup joins the refresh in flight and gets its timeout. */
	run_for(&t, 250);
	lk_start(&t, &l[2], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 3, 5000));
	printf("  after a failed refresh, past the TTL: %s (%s)\n", resolver_outcome_name(l[2].res.outcome),
	       l[2].res.detail);
	assert_int_equal(l[2].res.from_cache, 0);
	assert_int_equal(l[2].res.outcome, RESOLVER_TIMEOUT);
	assert_int_equal(l[2].res.n_addrs, 0);
	tctx_close(&t);
	free(l);
	free(rl);
}

/* ---------- 3. coalescing ---------- */

#define BURST 100

/* test_coalesce_100 - 100 concurrent lookups of one (host, port): 3 queries, 99 coalesced, 100 equal results. */
static void test_coalesce_100(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE");
	struct expect *x = expect_one(b, "SECURE", b->ports[0]);
	struct lk *l = calloc(BURST, sizeof(*l));
	struct resolver_stats st;
	struct resolver_options o;
	struct tctx t;
	size_t i;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < BURST; i++)
		lk_start(&t, &l[i], c->host, b->ports[0]);
	st = stats(&t);
	assert_int_equal(st.lookups, BURST);
	assert_int_equal(st.coalesced, BURST - 1);
	assert_int_equal(st.queries, 3);
	assert_int_equal(t.done, 0);
	assert_true(run_until(&t, &t.done, BURST, 10000));
	run_for(&t, 20);   /* a second delivery would show here */
	for (i = 0; i < BURST; i++) {
		assert_exact(b, x, &l[i]);
		assert_int_equal(l[i].res.from_cache, 0);
		assert_int_equal(l[i].res.ttl, l[0].res.ttl);
	}
	st = stats(&t);
	printf("  burst of %d: queries %llu, coalesced %llu, cache hits %llu, slowest callback %.2f ms\n", BURST,
	       (unsigned long long)st.queries, (unsigned long long)st.coalesced, (unsigned long long)st.cache_hits,
	       lk_ms(&l[BURST - 1]) > lk_ms(&l[0]) ? lk_ms(&l[BURST - 1]) : lk_ms(&l[0]));
	assert_int_equal(st.queries, 3);
	assert_int_equal(st.coalesced, BURST - 1);
	assert_int_equal(st.cache_hits, 0);
	assert_int_equal(t.done, BURST);
	tctx_close(&t);
	free(l);
	free(x);
}

/* ---------- 4. cancellation ---------- */

/* test_cancel_immediately - cancelled right after resolver_lookup (pending, then a cache hit): never called. */
static void test_cancel_immediately(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE"), *other = first_case(b, RESOLVER_SECURE_ABSENT, 0);
	struct lk *l = calloc(5, sizeof(*l));
	struct resolver_options o;
	struct tctx t;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	/* A pending entry whose only waiter leaves: the lookup goes on without anyone to call. */
	lk_start(&t, &l[0], c->host, b->ports[0]);
	lk_cancel(&l[0]);
	lk_start(&t, &l[1], other->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 10000));
	assert_int_equal(l[1].calls, 1);
	/* The same name again: joins the entry or finds it cached. */
	lk_start(&t, &l[2], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 10000));
	assert_int_equal(l[2].res.outcome, RESOLVER_SECURE);
	/* A cache hit waiting for delivery, cancelled before the loop runs. */
	lk_start(&t, &l[3], c->host, b->ports[0]);
	lk_cancel(&l[3]);
	lk_start(&t, &l[4], other->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 3, 10000));
	assert_int_equal(l[4].res.from_cache, 1);
	run_for(&t, 50);
	assert_int_equal(l[0].calls, 0);
	assert_int_equal(l[3].calls, 0);
	assert_int_equal(t.done, 3);
	tctx_close(&t);
	free(l);
}

/* test_cancel_one_of_coalesced - the first, a middle and the last of 7 coalesced queries leave; 4 get called. */
static void test_cancel_one_of_coalesced(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE");
	struct expect *x = expect_one(b, "SECURE", b->ports[0]);
	struct lk *l = calloc(7, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	size_t i;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < 7; i++)
		lk_start(&t, &l[i], c->host, b->ports[0]);
	lk_cancel(&l[0]);
	lk_cancel(&l[3]);
	lk_cancel(&l[6]);
	assert_true(run_until(&t, &t.done, 4, 10000));
	run_for(&t, 50);
	for (i = 0; i < 7; i++) {
		if (i == 0 || i == 3 || i == 6)
			assert_int_equal(l[i].calls, 0);
		else
			assert_exact(b, x, &l[i]);
	}
	assert_int_equal(t.done, 4);
	tctx_close(&t);
	free(l);
	free(x);
}

/* Cancelling from inside callbacks: a script shared by the queries of test_cancel_from_callback. */
struct cancel_script {
	struct lk *pair[2];        /* coalesced: the first one called cancels the other */
	struct lk *pending;        /* started by the first callback, cancelled by the next one */
	struct lk *cached;         /* a cache hit started and cancelled inside a callback */
	struct lk *late;           /* started inside a callback and left to finish */
	const char *pending_host, *cached_host;
	uint16_t port;
	unsigned first_done;
};

static void script_hook(struct lk *l)
{
	struct cancel_script *s = l->hook_arg;
	struct lk *other = l == s->pair[0] ? s->pair[1] : s->pair[0];

	if (s->first_done++ == 0) {
		/* First callback: the other half of the pair is on the ready list now. */
		if (other->q != NULL)
			lk_cancel(other);
		lk_start(l->t, s->pending, s->pending_host, s->port);
		lk_start(l->t, s->cached, s->cached_host, s->port);
		lk_cancel(s->cached);
		lk_start(l->t, s->late, s->pending_host, s->port);
		lk_cancel(s->pending);   /* pending on an entry another query still waits for */
	}
}

/* test_cancel_from_callback - cancel a ready query, a pending one and a cache hit, all from inside callbacks. */
static void test_cancel_from_callback(void **state)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE"), *other = first_case(b, RESOLVER_SECURE_ABSENT, 0);
	struct lk *l = calloc(6, sizeof(*l));
	struct cancel_script s;
	struct resolver_options o;
	struct tctx t;

	assert_non_null(l);
	memset(&s, 0, sizeof(s));
	s.pair[0] = &l[0];
	s.pair[1] = &l[1];
	s.pending = &l[2];
	s.cached = &l[3];
	s.late = &l[4];
	s.pending_host = other->host;
	s.cached_host = c->host;
	s.port = b->ports[0];
	tctx_open(&t, b);
	default_opts(&t, &o);
	tctx_resolver(&t, &o);
	l[0].hook = l[1].hook = script_hook;
	l[0].hook_arg = l[1].hook_arg = &s;
	lk_start(&t, &l[0], c->host, b->ports[0]);
	lk_start(&t, &l[1], c->host, b->ports[0]);
	/* One of the pair, then `late` (the pending entry finishes). */
	assert_true(run_until(&t, &t.done, 2, 10000));
	run_for(&t, 50);
	assert_int_equal(l[0].calls + l[1].calls, 1);
	assert_int_equal(l[2].calls, 0);
	assert_int_equal(l[3].calls, 0);
	assert_int_equal(l[4].calls, 1);
	assert_int_equal(l[4].res.outcome, RESOLVER_SECURE_ABSENT);
	assert_int_equal(t.done, 2);
	/* Both entries are cached; nothing else is owed. */
	lk_start(&t, &l[5], other->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 3, 10000));
	assert_int_equal(l[5].res.from_cache, 1);
	tctx_close(&t);
	free(l);
}

/* run_free_in_flight - resolver_free with lookups in flight after `after` callbacks: no callback afterwards. */
static void run_free_in_flight(const struct bed *b, unsigned after, int udp)
{
	struct lk *l = calloc(2 * b->n_cases, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	size_t i;
	unsigned seen;

	assert_non_null(l);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.udp = udp;
	tctx_resolver(&t, &o);
	for (i = 0; i < b->n_cases; i++) {
		lk_start(&t, &l[2 * i], b->cases[i].host, b->ports[0]);
		lk_start(&t, &l[2 * i + 1], b->cases[i].host, b->ports[0]);
	}
	if (after > 0)
		assert_true(run_until(&t, &t.done, after, 10000));
	seen = t.done;
	printf("  resolver_free after %u of %zu callbacks (%s)\n", seen, 2 * b->n_cases, udp ? "UDP" : "TCP");
	tctx_close(&t);   /* asserts no callback after resolver_free */
	for (i = 0; i < 2 * b->n_cases; i++)
		assert_true(l[i].calls <= 1);
	assert_int_equal(t.done, seen);
	free(l);
}

static void test_cancel_free_in_flight(void **state)
{
	const struct bed *b = *state;

	run_free_in_flight(b, 0, 0);   /* before the loop ever ran */
	run_free_in_flight(b, 1, 0);   /* after the first answers, the rest in flight */
	run_free_in_flight(b, 5, 1);
}

/* ---------- 5. timeouts against a server that never answers ---------- */

static void run_timeout(void **state, int udp)
{
	const struct bed *b = *state;
	const struct bed_case *c = bed_case(b, "SECURE");
	struct relay *rl = calloc(1, sizeof(*rl));
	struct lk *l = calloc(2, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	double ms;
	uint64_t q;

	assert_non_null(rl);
	assert_non_null(l);
	tctx_open(&t, b);
	relay_open(&t, rl, RELAY_SILENT, 0);
	relay_opts(&t, rl, &o);
	o.timeout_ms = 300;
	o.udp = udp;
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], c->host, b->ports[0]);
	if (!run_until(&t, &t.done, 1, 3000))
		fail_msg("no callback 3 s after a lookup with timeout_ms 300");
	ms = lk_ms(&l[0]);
	printf("  silent server (%s): %s after %.1f ms (%s); it saw %u UDP queries, %u TCP connections, %u TCP "
	       "queries\n",
	       udp ? "UDP then TCP" : "TCP only", resolver_outcome_name(l[0].res.outcome), ms, l[0].res.detail,
	       rl->n.udp_queries, rl->n.tcp_conns, rl->n.tcp_queries);
	assert_int_equal(l[0].res.outcome, RESOLVER_TIMEOUT);
	assert_ptr_equal(l[0].res.reason, resolver_err_timeout);
	assert_int_equal(l[0].res.n_addrs, 0);
	assert_int_equal(l[0].res.n_tlsa, 0);
	assert_true(ms >= 250);
	if (ms > 1000)
		fail_msg("the timeout took %.1f ms with timeout_ms 300", ms);
	if (udp)
		assert_true(rl->n.udp_queries > 0);
	else
		assert_true(rl->n.tcp_conns > 0 && rl->n.tcp_queries > 0 && rl->n.udp_queries == 0);
	/* The timeout is a failure: cached for failure_ttl, answered without queries meanwhile. */
	assert_int_equal(l[0].res.ttl, 2);
	q = stats(&t).queries;
	lk_start(&t, &l[1], c->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 2, 3000));
	assert_int_equal(l[1].res.from_cache, 1);
	assert_int_equal(l[1].res.outcome, RESOLVER_TIMEOUT);
	assert_ptr_equal(l[1].res.reason, resolver_err_timeout);
	assert_int_equal(stats(&t).queries, q);
	tctx_close(&t);
	free(l);
	free(rl);
}

static void test_timeout_tcp(void **state)
{
	run_timeout(state, 0);
}

static void test_timeout_udp(void **state)
{
	run_timeout(state, 1);
}

/*
 * full_backlog_listener - a TCP listener on a free 127.0.0.1 port with backlog 0 that never accepts, its accept
 * queue filled by our own connections so that the kernel drops every further SYN (issue 9 finding 14). The
 * caller closes fds[0] (listener) and fds[1..n-1]. Returns the port.
 */
static uint16_t full_backlog_listener(int fds[4], size_t *n)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fds[0] >= 0);
	assert_int_equal(bind(fds[0], (const struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fds[0], (struct sockaddr *)&sa, &sl), 0);
	assert_int_equal(listen(fds[0], 0), 0);
	*n = 1;
	/* Linux queues backlog + 1 connections; non-blocking connects beyond that stay in SYN_SENT. */
	for (i = 1; i < 4; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		assert_true(fds[i] >= 0);
		if (connect(fds[i], (const struct sockaddr *)&sa, sizeof(sa)) < 0)
			assert_true(errno == EINPROGRESS);
		(*n)++;
	}
	return ntohs(sa.sin_port);
}

/*
 * test_timeout_backlog_full - an upstream whose TCP backlog is full (connect never completes) is a timeout, not
 * a failure: 504 dns_timeout, not 502 dns_error (issue 9 finding 14). TCP only, as the daemon runs.
 */
static void test_timeout_backlog_full(void **state)
{
	const struct bed *b = *state;
	struct lk *l = calloc(1, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	char spec[32];
	int fds[4];
	size_t n, i;
	double ms;

	assert_non_null(l);
	snprintf(spec, sizeof(spec), "127.0.0.1@%u", full_backlog_listener(fds, &n));
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.upstreams[0] = spec;
	o.timeout_ms = 300;
	tctx_resolver(&t, &o);
	lk_start(&t, l, bed_case(b, "SECURE")->host, b->ports[0]);
	if (!run_until(&t, &t.done, 1, 3000))
		fail_msg("no callback 3 s after a lookup with timeout_ms 300");
	ms = lk_ms(l);
	printf("  full TCP backlog: %s after %.1f ms (%s), rcode %d, EDE %d\n", resolver_outcome_name(l->res.outcome), ms,
	       l->res.detail, l->res.rcode, l->res.ede);
	tctx_close(&t);
	for (i = 0; i < n; i++)
		close(fds[i]);
	assert_int_equal(l->res.outcome, RESOLVER_TIMEOUT);
	assert_ptr_equal(l->res.reason, resolver_err_timeout);
	assert_int_equal(l->res.ede, RESOLVER_EDE_NO_REACHABLE_AUTHORITY);
	assert_true(ms < 1500);   /* getdns gives up on the connect a little before timeout_ms */
	free(l);
}

/* test_failure_refused - a port where nothing listens refuses at once: that stays a failure (Network Error). */
static void test_failure_refused(void **state)
{
	const struct bed *b = *state;
	struct lk *l = calloc(1, sizeof(*l));
	struct resolver_options o;
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct tctx t;
	char spec[32];
	int fd;

	assert_non_null(l);
	/* A port that was free a moment ago and has no listener: connects get RST. */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(spec, sizeof(spec), "127.0.0.1@%u", ntohs(sa.sin_port));
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.upstreams[0] = spec;
	o.timeout_ms = 1000;
	tctx_resolver(&t, &o);
	lk_start(&t, l, bed_case(b, "SECURE")->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 3000));
	printf("  refused: %s after %.1f ms (%s), rcode %d, EDE %d\n", resolver_outcome_name(l->res.outcome), lk_ms(l),
	       l->res.detail, l->res.rcode, l->res.ede);
	tctx_close(&t);
	close(fd);
	assert_int_equal(l->res.outcome, RESOLVER_FAILURE);
	assert_ptr_equal(l->res.reason, resolver_err_failure);
	assert_int_equal(l->res.ede, RESOLVER_EDE_NETWORK_ERROR);
	free(l);
}

/* test_timeout_free_pending - resolver_free while queries wait on the silent server (open TCP connections). */
static void test_timeout_free_pending(void **state)
{
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	struct lk *l = calloc(b->n_cases, sizeof(*l));
	struct resolver_options o;
	struct tctx t;
	size_t i;

	assert_non_null(rl);
	assert_non_null(l);
	tctx_open(&t, b);
	relay_open(&t, rl, RELAY_SILENT, 0);
	relay_opts(&t, rl, &o);
	tctx_resolver(&t, &o);
	for (i = 0; i < b->n_cases; i++)
		lk_start(&t, &l[i], b->cases[i].host, b->ports[0]);
	if (!run_until(&t, &rl->n.tcp_queries, 3, 3000))
		fail_msg("the silent server saw %u TCP queries", rl->n.tcp_queries);
	tctx_close(&t);
	assert_int_equal(t.done, 0);
	free(l);
	free(rl);
}

/* ---------- 6. resilience behind the relay ---------- */

static void print_counts(const char *label, const struct relay *rl, const unsigned counts[V_COUNT])
{
	int v;

	printf("  %s:", label);
	for (v = 0; v < V_COUNT; v++)
		if (counts[v])
			printf(" %s %u", verdict_names[v], counts[v]);
	printf(" | relay: %u UDP + %u TCP queries (%u connections: %u closed by the resolver, %u by NSD), %u answers, "
	       "%u dropped, %u truncated, %u cut, %u closed mid-answer\n",
	       rl->n.udp_queries, rl->n.tcp_queries, rl->n.tcp_conns, rl->n.client_eof, rl->n.upstream_eof,
	       rl->n.answers, rl->n.dropped, rl->n.truncated, rl->n.cut, rl->n.closed_mid);
}

/*
 * heap_poison - leave word in every 32-bit slot of a few MB of freed heap (blocks of 64 B to 16 KB, filled and freed;
 * a guard block allocated after them keeps them out of the top chunk, which glibc may hand back to the kernel and
 * get again zeroed). The allocations that follow reuse that memory; what they never initialise reads as word.
 * Returns the guard: free it when those allocations are made.
 */
static void *heap_poison(uint32_t word)
{
	enum { N = 512 };
	void *blocks[N], *guard;
	size_t i, j, size;

	for (i = 0; i < N; i++) {
		volatile uint32_t *w;   /* volatile: stores into memory freed next are otherwise optimised away */
		size = 64 * (1 + i % 256);
		blocks[i] = malloc(size);
		assert_non_null(blocks[i]);
		w = blocks[i];
		for (j = 0; j < size / sizeof(*w); j++)
			w[j] = word;
	}
	guard = malloc(64);
	assert_non_null(guard);
	for (i = 0; i < N; i++)
		free(blocks[i]);
	return guard;
}

/* run_wave - every case at port at once on a fresh resolver; classify each; freed afterwards. */
static void run_wave(struct tctx *t, const struct resolver_options *o, uint16_t port, int strict,
		     unsigned counts[V_COUNT])
{
	const struct bed *b = t->bed;
	struct expect *x = calloc(b->n_cases, sizeof(*x));
	struct lk *l = calloc(b->n_cases, sizeof(*l));
	unsigned start = t->done, timeout = o->timeout_ms ? o->timeout_ms : 5000;
	void *guard;
	size_t i;
	char why[512];
	int wrong = 0;

	assert_non_null(x);
	assert_non_null(l);
	for (i = 0; i < b->n_cases; i++)
		expect_build(b, &b->cases[i], port, &x[i]);
	tctx_resolver(t, o);
	guard = t->poison ? heap_poison(t->poison) : NULL;
	for (i = 0; i < b->n_cases; i++)
		lk_start(t, &l[i], b->cases[i].host, port);
	free(guard);
	if (!run_until(t, &t->done, start + (unsigned)b->n_cases, timeout + 5000))
		fail_msg("hang: %u of %zu lookups answered %u ms after a lookup timeout of %u ms", t->done - start,
			 b->n_cases, timeout + 5000, timeout);
	for (i = 0; i < b->n_cases; i++) {
		enum verdict v;

		if (l[i].calls != 1)
			fail_msg("%s: callback called %u times", b->cases[i].name, l[i].calls);
		v = strict ? (check_exact(b, &x[i], &l[i].res, 0, why, sizeof(why)) == 0 ? V_EXACT : V_WRONG)
			   : check_tolerant(b, &x[i], &l[i].res, why, sizeof(why));
		counts[v]++;
		if (v == V_WRONG) {
			printf("    WRONG %s %s:%u after %.1f ms: %s\n", b->cases[i].name, b->cases[i].host, port,
			       lk_ms(&l[i]), why);
			wrong = 1;
		}
	}
	if (wrong && t->relay != NULL)
		print_counts("at the failure", t->relay, counts);
	tctx_free_resolver(t);
	free(x);
	free(l);
	if (wrong)
		fail_msg("a lookup ended wrongly (see above)");
}


/*
 * run_lossy - waves of every case (one per TLSA port, so nothing comes from a cache) through a relay in mode,
 * hitting every nth answer; strict demands exact results (the mode loses nothing a resolver cannot recover).
 */
static void run_lossy(void **state, enum relay_mode mode, const unsigned *nths, size_t waves, int udp, int strict,
		      enum resolver_validation validation)
{
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	unsigned counts[V_COUNT] = {0};
	struct resolver_options o;
	struct tctx t;
	char label[96];
	size_t w;

	assert_non_null(rl);
	tctx_open(&t, b);
	t.validation = validation;
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		need_unbound(b);
	relay_open(&t, rl, mode, nths[0]);
	relay_opts(&t, rl, &o);
	o.udp = udp;
	o.timeout_ms = 1000;
	for (w = 0; w < waves; w++) {
		rl->nth = nths[w];
		run_wave(&t, &o, b->ports[w % b->n_ports], strict, counts);
	}
	snprintf(label, sizeof(label), "%s every %u%s, %s, %zu lookups", relay_mode_names[mode], nths[0],
		 waves > 1 ? "+" : "", udp ? "UDP then TCP" : "TCP only", waves * b->n_cases);
	print_counts(label, rl, counts);
	assert_int_equal(counts[V_WRONG], 0);
	if (strict)
		assert_int_equal(counts[V_EXACT], waves * b->n_cases);
	if (!udp)
		assert_int_equal(rl->n.udp_queries, 0);   /* TCP only means TCP only */
	switch (mode) {
	case RELAY_DROP: assert_true(rl->n.dropped > 0); break;
	case RELAY_TRUNCATE: assert_true(udp ? rl->n.truncated > 0 && rl->n.tcp_queries > 0 : rl->n.truncated == 0); break;
	case RELAY_CUT: assert_true(rl->n.cut > 0); break;
	case RELAY_CLOSE_MID: assert_true(rl->n.closed_mid > 0); break;
	default: break;
	}
	tctx_close(&t);
	free(rl);
}

/* wire_cold - DNS queries on the wire for one cold lookup of host on a fresh resolver (exactly checked). */
static unsigned wire_cold(struct tctx *t, struct relay *rl, const struct resolver_options *o, const struct expect *x,
			  double *ms)
{
	struct lk *l = calloc(1, sizeof(*l));
	unsigned before = relay_wire(rl), start = t->done;

	assert_non_null(l);
	tctx_resolver(t, o);
	lk_start(t, l, x->c->host, x->port);
	assert_true(run_until(t, &t->done, start + 1, 10000));
	assert_exact(t->bed, x, l);
	*ms = lk_ms(l);
	tctx_free_resolver(t);
	free(l);
	return relay_wire(rl) - before;
}

/*
 * run_pass - pass-through: the wire cost of one cold lookup, of every successful (host, port) one after the other
 * (each exactly checked) and of a coalesced burst; then, when concurrent, every case at every port at once, exactly.
 */
static void run_pass(void **state, int udp, int concurrent, enum resolver_validation validation)
{
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	struct expect *x = expect_one(b, "SECURE", b->ports[0]);
	struct lk *l = calloc(BURST, sizeof(*l));
	unsigned counts[V_COUNT] = {0}, cold, burst, before, n = 0, sum = 0, mn = ~0u, mx = 0;
	const char *mode = udp ? "UDP then TCP" : "TCP only";
	struct resolver_options o;
	struct tctx t;
	double ms;
	size_t i, p;

	assert_non_null(rl);
	assert_non_null(l);
	tctx_open(&t, b);
	t.validation = validation;
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		need_unbound(b);
	relay_open(&t, rl, RELAY_PASS, 0);
	relay_opts(&t, rl, &o);
	o.udp = udp;

	cold = wire_cold(&t, rl, &o, x, &ms);
	printf("FIGURE wire queries, one cold lookup of %s:%u (%s): %u\n", x->c->host, x->port, mode, cold);

	/* Every distinct successful (host, port), each on a fresh resolver. */
	for (p = 0; p < b->n_ports; p++) {
		for (i = 0; i < b->n_cases; i++) {
			unsigned w;
			expect_build(b, &b->cases[i], b->ports[p], x);
			if (x->reason != NULL)
				continue;
			w = wire_cold(&t, rl, &o, x, &ms);
			sum += w;
			n++;
			mn = w < mn ? w : mn;
			mx = w > mx ? w : mx;
		}
	}
	printf("FIGURE wire queries per cold lookup over %u distinct (host, port) (%s): mean %.1f, min %u, max %u\n", n,
	       mode, (double)sum / n, mn, mx);

	/* 100 concurrent lookups of one name on a fresh resolver. */
	expect_build(b, bed_case(b, "SECURE"), b->ports[0], x);
	before = relay_wire(rl);
	tctx_resolver(&t, &o);
	for (i = 0; i < BURST; i++)
		lk_start(&t, &l[i], x->c->host, x->port);
	assert_true(run_until(&t, &t.done, t.done + BURST, 10000));
	for (i = 0; i < BURST; i++)
		assert_exact(b, x, &l[i]);
	assert_int_equal(stats(&t).queries, 3);
	burst = relay_wire(rl) - before;
	tctx_free_resolver(&t);
	printf("FIGURE wire queries, burst of %d coalesced lookups of %s:%u (%s): %u (resolver queries 3)\n", BURST,
	       x->c->host, x->port, mode, burst);
	assert_true(burst <= cold);

	/* Every case at every TLSA port at once through the relay. */
	for (p = 0; concurrent && p < b->n_ports; p++)
		run_wave(&t, &o, b->ports[p], 1, counts);
	print_counts(udp ? "pass, UDP then TCP, one lookup at a time" : "pass, TCP only", rl, counts);
	if (concurrent)
		assert_int_equal(counts[V_EXACT], b->n_ports * b->n_cases);
	if (!udp)
		assert_int_equal(rl->n.udp_queries, 0);
	tctx_close(&t);
	free(l);
	free(x);
	free(rl);
}

static void test_relay_pass_tcp(void **state)
{
	run_pass(state, 0, 1, RESOLVER_VALIDATE_SELF);
}

/*
 * test_relay_pass_udp - UDP first: the figures, lookups one at a time (the BIG TLSA RRset alone falls back to TCP).
 * Concurrent TCP fallback is in known_bugs: it times out and can crash getdns.
 */
static void test_relay_pass_udp(void **state)
{
	run_pass(state, 1, 0, RESOLVER_VALIDATE_SELF);
}

static void test_relay_drop_tcp(void **state)
{
	static const unsigned nths[] = {5, 11, 3, 17};

	run_lossy(state, RELAY_DROP, nths, 4, 0, 0, RESOLVER_VALIDATE_SELF);
}

static void test_relay_cut_tcp(void **state)
{
	static const unsigned nths[] = {3, 7, 13};

	run_lossy(state, RELAY_CUT, nths, 3, 0, 0, RESOLVER_VALIDATE_SELF);
}

static void test_relay_close_mid_tcp(void **state)
{
	static const unsigned nths[] = {4, 9, 2};

	run_lossy(state, RELAY_CLOSE_MID, nths, 3, 0, 0, RESOLVER_VALIDATE_SELF);
}

/*
 * Resolver mode (validation = resolver) asks over TCP only, like self mode: getdns 1.6.0 cannot be given UDP, not
 * even alone (known_bugs test_bug_udp_only_falls_back_to_tcp: the SIGABRT this group hit 1 run in 4-8 while resolver
 * mode asked over UDP). Behind the relay in front of the bed's unbound, the same abuse as in self mode must neither
 * crash nor give a wrong answer, and no query may leave over UDP.
 */
static void test_relay_pass_resolver(void **state)
{
	run_pass(state, 0, 1, RESOLVER_VALIDATE_RESOLVER);
}

static void test_relay_drop_resolver(void **state)
{
	static const unsigned nths[] = {5, 11, 3, 17, 7, 13};

	run_lossy(state, RELAY_DROP, nths, 6, 0, 0, RESOLVER_VALIDATE_RESOLVER);
}

/* Answers cut in half (malformed, no TC): failures (Invalid Data), never a partial RRset taken for the whole. */
static void test_relay_cut_resolver(void **state)
{
	static const unsigned nths[] = {3, 7, 13, 5};

	run_lossy(state, RELAY_CUT, nths, 4, 0, 0, RESOLVER_VALIDATE_RESOLVER);
}

static void test_relay_close_mid_resolver(void **state)
{
	static const unsigned nths[] = {4, 9, 2};

	run_lossy(state, RELAY_CLOSE_MID, nths, 3, 0, 0, RESOLVER_VALIDATE_RESOLVER);
}

/*
 * test_relay_truncate_resolver_poisoned - resolver mode, a relay that truncates every UDP answer, and the heap
 * poisoned with GETDNS_TRANSPORT_TCP before the lookups start (what earlier UDP+TCP requests leave behind by
 * chance): nothing may reach getdns's UDP path. No UDP on the wire, every result exact, the process alive. It
 * aborted 5 runs in 5 while resolver mode asked over UDP.
 */
static void test_relay_truncate_resolver_poisoned(void **state)
{
	static const unsigned nths[] = {1, 1, 1};
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	unsigned counts[V_COUNT] = {0};
	struct resolver_options o;
	struct tctx t;
	size_t w;

	assert_non_null(rl);
	tctx_open(&t, b);
	t.validation = RESOLVER_VALIDATE_RESOLVER;
	need_unbound(b);
	relay_open(&t, rl, RELAY_TRUNCATE, 1);
	relay_opts(&t, rl, &o);
	o.timeout_ms = 2000;
	t.poison = GETDNS_TRANSPORT_TCP;
	for (w = 0; w < 3; w++) {
		rl->nth = nths[w];
		run_wave(&t, &o, b->ports[w % b->n_ports], 1, counts);
	}
	print_counts("resolver mode, heap poisoned, every UDP answer truncated", rl, counts);
	assert_int_equal(counts[V_EXACT], 3 * b->n_cases);
	assert_int_equal(rl->n.udp_queries, 0);
	tctx_close(&t);
	free(rl);
}

/*
 * run_parallel_truncated - the BIG case at every port three times at once, then every case, three rounds, behind a
 * relay that truncates every UDP answer. With udp (UDP then TCP) every query (the big TLSA RRset at every port,
 * DNSKEY and DS included) falls back to TCP at once; without, they all share one pipelined TCP connection and
 * nothing may go over UDP.
 */
static void run_parallel_truncated(void **state, int strict, enum resolver_validation validation, int udp)
{
	const struct bed *b = *state;
	const struct bed_case *big = bed_case(b, "BIG");
	struct relay *rl = calloc(1, sizeof(*rl));
	struct expect *x = calloc(b->n_ports, sizeof(*x));
	struct lk *l = calloc(b->n_ports * 3, sizeof(*l));
	unsigned counts[V_COUNT] = {0};
	struct resolver_options o;
	struct tctx t;
	size_t i, w;
	char why[512];

	assert_non_null(rl);
	assert_non_null(x);
	assert_non_null(l);
	for (i = 0; i < b->n_ports; i++) {
		expect_build(b, big, b->ports[i], &x[i]);
		assert_true(x[i].tlsa.n > 20);   /* large enough that NSD itself truncates it over UDP */
	}
	tctx_open(&t, b);
	t.validation = validation;
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		need_unbound(b);
	relay_open(&t, rl, RELAY_TRUNCATE, 1);
	relay_opts(&t, rl, &o);
	o.udp = udp;
	o.timeout_ms = 1000;
	for (w = 0; w < 3; w++) {
		unsigned start = t.done;
		memset(l, 0, b->n_ports * 3 * sizeof(*l));
		tctx_resolver(&t, &o);
		for (i = 0; i < b->n_ports * 3; i++)
			lk_start(&t, &l[i], big->host, b->ports[i % b->n_ports]);
		if (!run_until(&t, &t.done, start + (unsigned)(b->n_ports * 3), o.timeout_ms + 5000))
			fail_msg("hang: %u of %zu lookups of %s answered", t.done - start, b->n_ports * 3, big->host);
		for (i = 0; i < b->n_ports * 3; i++) {
			enum verdict v;
			if (l[i].calls != 1)
				fail_msg("%s: callback called %u times", big->host, l[i].calls);
			v = strict ? (check_exact(b, &x[i % b->n_ports], &l[i].res, 0, why, sizeof(why)) == 0 ? V_EXACT
													   : V_WRONG)
				   : check_tolerant(b, &x[i % b->n_ports], &l[i].res, why, sizeof(why));
			counts[v]++;
			if (v == V_WRONG)
				fail_msg("%s:%u: %s", big->host, l[i].port, why);
		}
		tctx_free_resolver(&t);
		/* And every case at once. */
		run_wave(&t, &o, b->ports[w % b->n_ports], strict, counts);
	}
	print_counts(udp ? "parallel truncated (BIG at every port x3, then every case), UDP then TCP"
			 : "parallel (BIG at every port x3, then every case), TCP only",
		     rl, counts);
	assert_int_equal(counts[V_WRONG], 0);
	if (udp)
		assert_true(rl->n.truncated > 0);
	else
		assert_int_equal(rl->n.udp_queries, 0);
	assert_true(rl->n.tcp_queries > 0);
	tctx_close(&t);
	free(l);
	free(x);
	free(rl);
}

/* test_relay_parallel_big_resolver - resolver mode: 2.2 KB answers, many at once on one connection, all exact. */
static void test_relay_parallel_big_resolver(void **state)
{
	run_parallel_truncated(state, 1, RESOLVER_VALIDATE_RESOLVER, 0);
}

/*
 * Known bugs: not run by default nor by ctest (`test_resolver known_bugs [TEST]` runs them). Each states what a
 * correct resolver does and fails, hangs up or crashes today (getdns 1.6.0); see the report that came with this file.
 */

static const unsigned truncate_nths[] = {1, 2, 3};

/* test_bug_truncate_udp - truncated UDP answers: never crash, never a wrong answer (getdns double free). */
static void test_bug_truncate_udp(void **state)
{
	run_lossy(state, RELAY_TRUNCATE, truncate_nths, 3, 1, 0, RESOLVER_VALIDATE_SELF);
}

/* test_bug_truncate_udp_exact - truncation loses nothing: TCP fallback must give exact results. */
static void test_bug_truncate_udp_exact(void **state)
{
	run_lossy(state, RELAY_TRUNCATE, truncate_nths, 3, 1, 1, RESOLVER_VALIDATE_SELF);
}

/* test_bug_parallel_truncated - the brief's parallel TCP fallback (BIG, opts.udp = 1): never crash. */
static void test_bug_parallel_truncated(void **state)
{
	run_parallel_truncated(state, 0, RESOLVER_VALIDATE_SELF, 1);
}

static void test_bug_parallel_truncated_exact(void **state)
{
	run_parallel_truncated(state, 1, RESOLVER_VALIDATE_SELF, 1);
}

/* test_bug_pass_udp_concurrent - UDP first through a lossless relay: every concurrent lookup must succeed. */
static void test_bug_pass_udp_concurrent(void **state)
{
	run_pass(state, 1, 1, RESOLVER_VALIDATE_SELF);
}

/*
 * test_bug_resolver_getdns_fallback - resolver mode over UDP with getdns's own fallback to TCP (opts.udp = 1, what
 * `lookup --udp --validation resolver` asks for), every answer truncated, as for BIG. getdns 1.6.0 aborts the
 * process (libuv: epoll_ctl on a socket it closed under a scheduled event, the request's fd being the upstream's
 * shared connection; 4 runs in 4 here) or leaves half the lookups to time out. Resolver mode asks over TCP only by
 * default (test_relay_parallel_big_resolver: all exact); asking truncated questions again on a TCP-only context
 * of our own was not enough, since a UDP-only context falls back too (test_bug_udp_only_falls_back_to_tcp).
 */
static void test_bug_resolver_getdns_fallback(void **state)
{
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	unsigned counts[V_COUNT] = {0};
	struct resolver_options o;
	struct tctx t;

	need_unbound(b);
	assert_non_null(rl);
	tctx_open(&t, b);
	t.validation = RESOLVER_VALIDATE_RESOLVER;
	relay_open(&t, rl, RELAY_TRUNCATE, 1);
	relay_opts(&t, rl, &o);
	o.udp = 1;
	o.timeout_ms = 1000;
	run_wave(&t, &o, b->ports[0], 1, counts);
	print_counts("resolver mode, getdns's own fallback, every UDP answer truncated", rl, counts);
	tctx_close(&t);
	free(rl);
}

/* test_bug_drop_udp - dropped UDP answers (opts.udp = 1): TESTBED.md's getdns 1.6.0 double free. */
static void test_bug_drop_udp(void **state)
{
	static const unsigned nths[] = {5, 11, 3, 17, 7, 13};

	run_lossy(state, RELAY_DROP, nths, 6, 1, 0, RESOLVER_VALIDATE_SELF);
}

/* test_bug_cut_udp - UDP answers cut in half (malformed), opts.udp = 1. */
static void test_bug_cut_udp(void **state)
{
	static const unsigned nths[] = {3, 7, 13, 5};

	run_lossy(state, RELAY_CUT, nths, 4, 1, 0, RESOLVER_VALIDATE_SELF);
}

static void on_bug_answer(getdns_context *ctx, getdns_callback_type_t type, getdns_dict *resp, void *arg,
			  getdns_transaction_t id)
{
	(void)ctx;
	(void)type;
	(void)id;
	(*(unsigned *)arg)++;
	getdns_dict_destroy(resp);
}

/*
 * test_bug_udp_only_falls_back_to_tcp - getdns 1.6.0 alone (no resolver.c), a context whose transport list is UDP
 * only, on the test's loop through our adapter, behind a relay that truncates every UDP answer. A correct stub hands
 * the truncated answer back: a UDP-only list has nothing to fall back to. getdns 1.6.0 (stub.c, stub_udp_read_cb)
 * checks transport_current < transport_count and then reads transports[++transport_current], one past the list:
 * network_req_init copied only transport_count entries into the malloc'ed request, so the slot holds whatever the
 * heap held. When that is 1201 (GETDNS_TRANSPORT_TCP), getdns connects TCP on the UDP upstream and sets the
 * request's fd to that upstream's connection; cancelling the request (getdns_cancel_callback; also a context
 * destroy) then re-arms the upstream's event and closes the socket under it (_getdns_cancel_stub_request), and
 * libuv aborts on the next loop turn (epoll_ctl EPOLL_CTL_ADD: EBADF). This is the SIGABRT the relay group hit
 * 1 run in 4-8 while resolver mode still asked over UDP: earlier self-mode UDP+TCP requests of the same size had
 * left 1201 in that slot. Here the heap is poisoned with 1201 first, so it happens every time: the test aborts
 * (or, if the cancel does not strike, fails on the TCP connection). With 1200 (UDP) in the slot it passes
 * (TEST_POISON=1200). An ASan build hides it (ASan fills new blocks with 0xbe and delays reuse) unless run with
 * ASAN_OPTIONS=quarantine_size_mb=0:max_malloc_fill_size=0.
 */
static void test_bug_udp_only_falls_back_to_tcp(void **state)
{
	const struct bed *b = *state;
	const char *host = bed_case(b, "SECURE")->host;
	const char *poison = getenv("TEST_POISON");   /* another word to poison with, e.g. 1200 (UDP): then it passes */
	getdns_transport_list_t udp_only[1] = {GETDNS_TRANSPORT_UDP};
	uint8_t loopback[4] = {127, 0, 0, 1};
	getdns_bindata addr = {4, loopback};
	struct relay *rl = calloc(1, sizeof(*rl));
	struct getdns_uv ext;
	getdns_context *ctx = NULL;
	getdns_list *upstreams = getdns_list_create();
	getdns_dict *up = getdns_dict_create();
	getdns_transaction_t id[2] = {0, 0};
	unsigned calls = 0;
	struct tctx t;
	void *guard;

	assert_non_null(rl);
	tctx_open(&t, b);
	relay_open(&t, rl, RELAY_TRUNCATE, 1);
	rl->hold_tcp = 1;   /* so both questions are still outstanding over TCP when one is cancelled */
	assert_int_equal(getdns_context_create(&ctx, 0), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_context_set_resolution_type(ctx, GETDNS_RESOLUTION_STUB), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_dict_set_bindata(up, "address_data", &addr), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_dict_set_int(up, "port", (uint32_t)strtoul(strchr(rl->spec, '@') + 1, NULL, 10)),
			 GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_list_set_dict(upstreams, 0, up), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_context_set_upstream_recursive_servers(ctx, upstreams), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_context_set_dns_transport_list(ctx, 1, udp_only), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_context_set_timeout(ctx, 2000), GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_uv_attach(&ext, ctx, &t.loop), GETDNS_RETURN_GOOD);
	getdns_dict_destroy(up);
	getdns_list_destroy(upstreams);

	/* Two questions, so that the fallback connection is still in use by one when the other is cancelled. */
	guard = heap_poison(poison != NULL ? (uint32_t)strtoul(poison, NULL, 10) : GETDNS_TRANSPORT_TCP);
	assert_int_equal(getdns_general(ctx, host, GETDNS_RRTYPE_A, NULL, &calls, &id[0], on_bug_answer),
			 GETDNS_RETURN_GOOD);
	assert_int_equal(getdns_general(ctx, host, GETDNS_RRTYPE_AAAA, NULL, &calls, &id[1], on_bug_answer),
			 GETDNS_RETURN_GOOD);
	free(guard);
	/* Until both truncated answers are handed back, or both questions reach the relay again over TCP (where
	 * their answers are held back). */
	t.timer_fired = 0;
	uv_timer_start(&t.timer, on_timer, 3000, 0);
	while (calls < 2 && rl->n.tcp_queries < 2 && !t.timer_fired)
		uv_run(&t.loop, UV_RUN_ONCE);
	uv_timer_stop(&t.timer);
	printf("  UDP-only context, every UDP answer truncated: %u UDP + %u TCP queries (%u connections), %u of 2 "
	       "answers back\n",
	       rl->n.udp_queries, rl->n.tcp_queries, rl->n.tcp_conns, calls);
	if (rl->n.tcp_conns > 0) {
		/* Both requests' fd is now the upstream's TCP socket. Cancelling one re-arms the upstream's read event
		 * (the other is still waiting) and closes the socket under it: libuv aborts on the next turn. */
		printf("  cancelling the A question: getdns closes the connection the AAAA question waits on\n");
		getdns_cancel_callback(ctx, id[0]);
		run_for(&t, 200);
	}
	getdns_context_destroy(ctx);
	tctx_close(&t);
	assert_int_equal(rl->n.tcp_conns, 0);
	assert_int_equal(calls, 2);
	free(rl);
}

/*
 * run_recovery_after_close_mid - one TCP connection closed mid-answer, then a healthy upstream: lookups must
 * succeed again once the failure has left the cache. getdns 1.6.0 wedges the context (every later lookup times
 * out); the resolver replaces the context after a failure, which this test holds it to, in either mode.
 */
static void run_recovery_after_close_mid(void **state, enum resolver_validation validation)
{
	const struct bed *b = *state;
	struct relay *rl = calloc(1, sizeof(*rl));
	struct lk *l = calloc(6, sizeof(*l));
	const char *hosts[5];
	struct resolver_options o;
	struct tctx t;
	size_t i, n;

	assert_non_null(rl);
	assert_non_null(l);
	n = distinct_hosts(b, hosts, 5);
	tctx_open(&t, b);
	t.validation = validation;
	if (validation == RESOLVER_VALIDATE_RESOLVER)
		need_unbound(b);
	relay_open(&t, rl, RELAY_CLOSE_MID, 1);
	relay_opts(&t, rl, &o);
	o.timeout_ms = 1000;
	o.failure_ttl = 1;
	tctx_resolver(&t, &o);
	lk_start(&t, &l[0], bed_case(b, "SECURE")->host, b->ports[0]);
	assert_true(run_until(&t, &t.done, 1, 5000));
	assert_true(rl->n.closed_mid == 1);
	assert_true(is_failure(l[0].res.outcome));
	rl->mode = RELAY_PASS;
	run_for(&t, 1100);
	for (i = 0; i < n; i++) {
		lk_start(&t, &l[i + 1], hosts[i], b->ports[1]);
		assert_true(run_until(&t, &t.done, (unsigned)i + 2, 5000));
		printf("  after a connection closed mid-answer: %s:%u %s (%s)\n", hosts[i], b->ports[1],
		       resolver_outcome_name(l[i + 1].res.outcome), l[i + 1].res.detail);
		if (!is_failure(l[i + 1].res.outcome))
			break;
	}
	if (i == n)
		fail_msg("no lookup succeeded in %zu tries after one TCP connection was closed mid-answer", n);
	tctx_close(&t);
	free(l);
	free(rl);
}

static void test_recovery_after_close_mid(void **state)
{
	run_recovery_after_close_mid(state, RESOLVER_VALIDATE_SELF);
}

static void test_recovery_after_close_mid_resolver(void **state)
{
	run_recovery_after_close_mid(state, RESOLVER_VALIDATE_RESOLVER);
}

/* ---------- figures ---------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

#define COLD_SAMPLES 60

/* percentile - the p-th percentile (0..1) of n sorted samples (nearest rank). */
static double percentile(const double *sorted, size_t n, double p)
{
	size_t i = (size_t)(p * (double)n + 0.999999);

	return sorted[i == 0 ? 0 : (i > n ? n - 1 : i - 1)];
}

/* cold_stats - p50, p99 and the count above 20 ms of n samples (sorted in place), and the stall target. */
static int cold_stats(double *ms, size_t n, double *p50, double *p99, size_t *slow)
{
	size_t i;

	qsort(ms, n, sizeof(ms[0]), cmp_double);
	*p50 = percentile(ms, n, 0.5);
	*p99 = percentile(ms, n, 0.99);
	for (i = 0, *slow = 0; i < n; i++)
		*slow += ms[i] > 20;
	return *p99 <= 2 * *p50 && *slow == 0;
}

/*
 * run_latency - issue 11's stall target (the 40 ms stall was Nagle in the server + our delayed ACK, see
 * getdns_uv.c ack_now): COLD_SAMPLES cold lookups of one name, each on a fresh resolver (new getdns context, new
 * TCP connection), as a freshly started proxy's first connection; target p99 <= 2x p50 and none above 20 ms.
 * Then COLD_SAMPLES cold lookups over every successful (host, port) of the bed on one resolver (their work
 * differs: 16 to 24 queries), and cached latency. Printed, not asserted: a loaded machine must not fail the suite.
 */
static void run_latency(const struct bed *b, int udp)
{
	struct expect *x = calloc(1, sizeof(*x));
	struct lk *l = calloc(2 * COLD_SAMPLES, sizeof(*l));
	const char *hosts[BED_MAX_CASES * BED_MAX_PORTS];
	uint16_t ports[BED_MAX_CASES * BED_MAX_PORTS];
	double one[COLD_SAMPLES], one_cpu[COLD_SAMPLES], one_idle[COLD_SAMPLES], cold[COLD_SAMPLES], cached[COLD_SAMPLES];
	double p50, p99;
	const char *mode = udp ? "UDP then TCP" : "TCP only";
	struct resolver_options o;
	struct tctx t;
	size_t n_pairs = 0, i, p, slow;
	int met;

	assert_non_null(x);
	assert_non_null(l);
	for (p = 0; p < b->n_ports; p++) {
		for (i = 0; i < b->n_cases; i++) {
			expect_build(b, &b->cases[i], b->ports[p], x);
			if (x->reason != NULL)
				continue;
			hosts[n_pairs] = b->cases[i].host;
			ports[n_pairs++] = b->ports[p];
		}
	}
	assert_true(n_pairs >= 10);
	tctx_open(&t, b);
	default_opts(&t, &o);
	o.udp = udp;
	expect_build(b, bed_case(b, "SECURE"), b->ports[0], x);
	for (i = 0; i < COLD_SAMPLES; i++) {
		tctx_resolver(&t, &o);
		lk_start(&t, &l[i], x->c->host, x->port);
		assert_true(run_until(&t, &t.done, t.done + 1, 10000));
		assert_exact(b, x, &l[i]);
		one[i] = lk_ms(&l[i]);
		one_cpu[i] = (double)(l[i].cpu_done - l[i].cpu_start) / 1e6;
		/* Neither running nor waiting for a CPU: waiting for the network (where a stall would show). */
		one_idle[i] = one[i] - one_cpu[i] - (double)(l[i].rq_done - l[i].rq_start) / 1e6;
		tctx_free_resolver(&t);
	}
	met = cold_stats(one, COLD_SAMPLES, &p50, &p99, &slow);
	qsort(one_cpu, COLD_SAMPLES, sizeof(one_cpu[0]), cmp_double);
	qsort(one_idle, COLD_SAMPLES, sizeof(one_idle[0]), cmp_double);
	printf("FIGURE cold lookup latency, self mode, %d lookups of %s:%u each on a fresh resolver, %s: p50 %.2f ms, "
	       "p99 %.2f ms (min %.2f, p90 %.2f, max %.2f; %zu above 20 ms); target p99 <= 2x p50 and none above "
	       "20 ms: %s; CPU p50 %.2f ms, p99 %.2f ms; waiting for the network (wall - CPU - run queue) p50 %.2f "
	       "ms, p99 %.2f ms\n",
	       COLD_SAMPLES, x->c->host, x->port, mode, p50, p99, one[0], percentile(one, COLD_SAMPLES, 0.9),
	       one[COLD_SAMPLES - 1], slow, met ? "met" : "NOT met", percentile(one_cpu, COLD_SAMPLES, 0.5),
	       percentile(one_cpu, COLD_SAMPLES, 0.99), percentile(one_idle, COLD_SAMPLES, 0.5),
	       percentile(one_idle, COLD_SAMPLES, 0.99));
	memset(l, 0, 2 * COLD_SAMPLES * sizeof(*l));
	for (i = 0; i < COLD_SAMPLES; i++) {
		size_t k = i % n_pairs;

		if (k == 0) {
			if (t.r != NULL)
				tctx_free_resolver(&t);
			tctx_resolver(&t, &o);
		}
		expect_build(b, bed_case_by_host(b, hosts[k]), ports[k], x);
		lk_start(&t, &l[i], hosts[k], ports[k]);
		assert_true(run_until(&t, &t.done, t.done + 1, 10000));
		assert_exact(b, x, &l[i]);
		assert_int_equal(l[i].res.from_cache, 0);
		cold[i] = lk_ms(&l[i]);
	}
	for (i = 0; i < COLD_SAMPLES; i++) {
		size_t k = i % ((COLD_SAMPLES - 1) % n_pairs + 1);   /* the pairs the last resolver has cached */

		lk_start(&t, &l[COLD_SAMPLES + i], hosts[k], ports[k]);
		assert_true(run_until(&t, &t.done, t.done + 1, 10000));
		assert_int_equal(l[COLD_SAMPLES + i].res.from_cache, 1);
		cached[i] = lk_ms(&l[COLD_SAMPLES + i]);
	}
	cold_stats(cold, COLD_SAMPLES, &p50, &p99, &slow);
	printf("FIGURE cold lookup latency, self mode, %d lookups over %zu distinct (host, port) on one resolver, %s: "
	       "p50 %.2f ms, p99 %.2f ms (min %.2f, p90 %.2f, max %.2f; %zu above 20 ms)\n",
	       COLD_SAMPLES, n_pairs, mode, p50, p99, cold[0], percentile(cold, COLD_SAMPLES, 0.9),
	       cold[COLD_SAMPLES - 1], slow);
	qsort(cached, COLD_SAMPLES, sizeof(cached[0]), cmp_double);
	printf("FIGURE cached lookup latency (callback from the loop), %s: p50 %.1f us (max %.1f us)\n", mode,
	       percentile(cached, COLD_SAMPLES, 0.5) * 1000, cached[COLD_SAMPLES - 1] * 1000);
	tctx_close(&t);
	free(l);
	free(x);
}

/* dns_query - a query for qname/qtype with RD and EDNS DO (what drill -D sends) into q; its length, 0 on error. */
static size_t dns_query(uint8_t *q, size_t cap, uint16_t id, const char *qname, uint16_t qtype)
{
	static const uint8_t opt[11] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0};   /* OPT, 1232, DO */
	size_t n = 12;
	const char *p = qname;

	if (cap < 12 + strlen(qname) + 2 + 4 + sizeof(opt))
		return 0;
	memset(q, 0, 12);
	q[0] = (uint8_t)(id >> 8);
	q[1] = (uint8_t)id;
	q[2] = 0x01;   /* RD */
	q[5] = 1;      /* QDCOUNT */
	q[11] = 1;     /* ARCOUNT */
	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		if (l == 0 || l > 63)
			return 0;
		q[n++] = (uint8_t)l;
		memcpy(q + n, p, l);
		n += l;
		p += l + (dot != NULL);
	}
	q[n++] = 0;
	q[n++] = (uint8_t)(qtype >> 8);
	q[n++] = (uint8_t)qtype;
	q[n++] = 0;
	q[n++] = 1;
	memcpy(q + n, opt, sizeof(opt));
	return n + sizeof(opt);
}

/*
 * parallel3_us - the floor of a resolver-mode lookup: A, AAAA and TLSA sent at once over one UDP socket to
 * the bed's unbound, all three answers read (what `drill` does three times in parallel, without three process
 * starts). Microseconds, or -1.
 */
static double parallel3_us(const struct bed *b, const char *host, uint16_t port)
{
	uint8_t q[3][300], buf[4096];
	char tlsa[RESOLVER_MAX_NAME];
	size_t len[3];
	uint64_t t0;
	int fd, got = 0, i;

	snprintf(tlsa, sizeof(tlsa), "_%u._tcp.%s", port, host);
	len[0] = dns_query(q[0], sizeof(q[0]), 0x1001, host, 1);
	len[1] = dns_query(q[1], sizeof(q[1]), 0x1002, host, 28);
	len[2] = dns_query(q[2], sizeof(q[2]), 0x1003, tlsa, 52);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&b->unbound_addr, sizeof(b->unbound_addr)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	t0 = uv_hrtime();
	for (i = 0; i < 3; i++)
		if (send(fd, q[i], len[i], 0) != (ssize_t)len[i])
			got = -100;
	while (got >= 0 && got < 3) {
		struct pollfd pfd = {fd, POLLIN, 0};
		if (poll(&pfd, 1, 2000) != 1 || recv(fd, buf, sizeof(buf), 0) < 12)
			break;
		got++;
	}
	close(fd);
	return got == 3 ? (double)(uv_hrtime() - t0) / 1e3 : -1;
}

/*
 * test_figures_modes - issue 11's resolver-mode targets, measured in one run: cold lookups (a fresh resolver
 * each, so nothing is cached and the connection is new) in self mode against NSD and in resolver mode against
 * a warm unbound, wall time and this thread's CPU per lookup, and the parallel 3-query floor. Targets: resolver
 * mode <= 1.5x the floor (bench/dns compares with drill itself) and CPU <= 1/10 of self mode. Printed.
 */
static void test_figures_modes(void **state)
{
	const struct bed *b = *state;
	enum { N = COLD_SAMPLES };
	struct expect *x = calloc(1, sizeof(*x));
	struct lk *l = calloc(1, sizeof(*l));
	const char *hosts[BED_MAX_CASES * BED_MAX_PORTS];
	uint16_t ports[BED_MAX_CASES * BED_MAX_PORTS];
	double ms[2][N], cpu[2][N], floor_us[N], p50[2], cpu50[2], f50;
	struct resolver_options o;
	struct tctx t;
	size_t n_pairs = 0, i, p;
	int m;

	need_unbound(b);
	assert_non_null(x);
	assert_non_null(l);
	for (p = 0; p < b->n_ports; p++)
		for (i = 0; i < b->n_cases; i++) {
			expect_build(b, &b->cases[i], b->ports[p], x);
			if (x->reason != NULL)
				continue;
			hosts[n_pairs] = b->cases[i].host;
			ports[n_pairs++] = b->ports[p];
		}
	tctx_open(&t, b);
	/* unbound warm: every name asked once before anything is measured */
	for (i = 0; i < n_pairs; i++)
		if (parallel3_us(b, hosts[i], ports[i]) < 0)
			fail_msg("unbound did not answer %s", hosts[i]);
	for (m = 0; m < 2; m++) {
		for (i = 0; i < N; i++) {
			size_t k = i % n_pairs;
			if (m == 1)
				resolver_mode_opts(&t, &o);
			else
				default_opts(&t, &o);
			tctx_resolver(&t, &o);
			memset(l, 0, sizeof(*l));
			expect_build(b, bed_case_by_host(b, hosts[k]), ports[k], x);
			lk_start(&t, l, hosts[k], ports[k]);
			assert_true(run_until(&t, &t.done, t.done + 1, 10000));
			assert_exact(b, x, l);
			ms[m][i] = lk_ms(l);
			cpu[m][i] = (double)(l->cpu_done - l->cpu_start) / 1e3;
			tctx_free_resolver(&t);
			if (m == 1)
				floor_us[i] = parallel3_us(b, hosts[k], ports[k]);
		}
		qsort(ms[m], N, sizeof(double), cmp_double);
		qsort(cpu[m], N, sizeof(double), cmp_double);
		p50[m] = percentile(ms[m], N, 0.5);
		cpu50[m] = percentile(cpu[m], N, 0.5);
		printf("FIGURE cold lookup, validation %s (%s), %d lookups: p50 %.3f ms, p99 %.3f ms, max %.3f ms; CPU "
		       "p50 %.0f us, p99 %.0f us\n",
		       m ? "resolver" : "self", m ? "warm unbound, TCP" : "NSD, TCP", N, p50[m], percentile(ms[m], N, 0.99),
		       ms[m][N - 1], cpu50[m], percentile(cpu[m], N, 0.99));
	}
	qsort(floor_us, N, sizeof(double), cmp_double);
	f50 = percentile(floor_us, N, 0.5);
	printf("FIGURE parallel A+AAAA+TLSA over one UDP socket to the warm unbound (drill's wire exchange, no process "
	       "start), %d samples: p50 %.3f ms, p99 %.3f ms\n",
	       N, f50 / 1000, percentile(floor_us, N, 0.99) / 1000);
	printf("FIGURE resolver mode vs the floor: %.2fx (target <= 1.5x vs drill: see bench/dns); CPU resolver/self "
	       "%.3f (target <= 0.1: %s)\n",
	       p50[1] / (f50 / 1000), cpu50[1] / cpu50[0], cpu50[1] <= 0.1 * cpu50[0] ? "met" : "NOT met");
	tctx_close(&t);
	free(l);
	free(x);
}

static void test_figures_latency(void **state)
{
	run_latency(*state, 0);
	run_latency(*state, 1);
}

/* ---------- main ---------- */

struct group {
	const char *name;
	const struct CMUnitTest *tests;
	size_t n;
	int by_default;
};

#define GROUP(name, arr, dflt) {name, arr, sizeof(arr) / sizeof(arr[0]), dflt}

int main(int argc, char **argv)
{
	static const struct CMUnitTest cases[] = {
		cmocka_unit_test(test_cases_tcp_443),
		cmocka_unit_test(test_cases_udp_443),
		cmocka_unit_test(test_cases_tcp_other_port),
		cmocka_unit_test(test_cases_resolver_mode),
		cmocka_unit_test(test_cases_tlsa_only),
		cmocka_unit_test(test_cases_resolver_mode_upstreams),
		cmocka_unit_test(test_cases_invalid_input),
	};
	static const struct CMUnitTest mail[] = {
		cmocka_unit_test(test_mail_mx_tcp),
		cmocka_unit_test(test_mail_mx_udp),
		cmocka_unit_test(test_mail_mx_resolver_mode),
		cmocka_unit_test(test_mail_mx_hosts),
		cmocka_unit_test(test_mail_mx_cache),
		cmocka_unit_test(test_mail_invalid_input),
	};
	static const struct CMUnitTest cache[] = {
		cmocka_unit_test(test_cache_hit),
		cmocka_unit_test(test_cache_ttl_expiry),
		cmocka_unit_test(test_cache_ttl_max_alone),
		cmocka_unit_test(test_cache_count_bound),
		cmocka_unit_test(test_cache_count_bound_concurrent),
		cmocka_unit_test(test_cache_failure_ttl),
		cmocka_unit_test(test_cache_prefetch),
		cmocka_unit_test(test_cache_prefetch_resolver_mode),
		cmocka_unit_test(test_cache_prefetch_fail_closed),
	};
	static const struct CMUnitTest coalesce[] = {
		cmocka_unit_test(test_coalesce_100),
	};
	static const struct CMUnitTest cancel[] = {
		cmocka_unit_test(test_cancel_immediately),
		cmocka_unit_test(test_cancel_one_of_coalesced),
		cmocka_unit_test(test_cancel_from_callback),
		cmocka_unit_test(test_cancel_free_in_flight),
	};
	static const struct CMUnitTest timeout[] = {
		cmocka_unit_test(test_timeout_tcp),
		cmocka_unit_test(test_timeout_udp),
		cmocka_unit_test(test_timeout_backlog_full),
		cmocka_unit_test(test_failure_refused),
		cmocka_unit_test(test_timeout_free_pending),
	};
	static const struct CMUnitTest relay[] = {
		cmocka_unit_test(test_relay_pass_tcp),
		cmocka_unit_test(test_relay_pass_udp),
		cmocka_unit_test(test_relay_drop_tcp),
		cmocka_unit_test(test_relay_cut_tcp),
		cmocka_unit_test(test_relay_close_mid_tcp),
		cmocka_unit_test(test_recovery_after_close_mid),
		cmocka_unit_test(test_relay_pass_resolver),
		cmocka_unit_test(test_relay_drop_resolver),
		cmocka_unit_test(test_relay_cut_resolver),
		cmocka_unit_test(test_relay_close_mid_resolver),
		cmocka_unit_test(test_recovery_after_close_mid_resolver),
		cmocka_unit_test(test_relay_parallel_big_resolver),
		cmocka_unit_test(test_relay_truncate_resolver_poisoned),
	};
	static const struct CMUnitTest figures[] = {
		cmocka_unit_test(test_figures_latency),
		cmocka_unit_test(test_figures_modes),
	};
	static const struct CMUnitTest known_bugs[] = {
		cmocka_unit_test(test_bug_truncate_udp),
		cmocka_unit_test(test_bug_truncate_udp_exact),
		cmocka_unit_test(test_bug_parallel_truncated),
		cmocka_unit_test(test_bug_parallel_truncated_exact),
		cmocka_unit_test(test_bug_pass_udp_concurrent),
		cmocka_unit_test(test_bug_drop_udp),
		cmocka_unit_test(test_bug_cut_udp),
		cmocka_unit_test(test_bug_resolver_getdns_fallback),
		cmocka_unit_test(test_bug_udp_only_falls_back_to_tcp),
	};
	static const struct group groups[] = {
		GROUP("cases", cases, 1),     GROUP("mail", mail, 1),       GROUP("cache", cache, 1),
		GROUP("coalesce", coalesce, 1),
		GROUP("cancel", cancel, 1),   GROUP("timeout", timeout, 1), GROUP("relay", relay, 1),
		GROUP("figures", figures, 1), GROUP("known_bugs", known_bugs, 0),
	};
	struct CMUnitTest one[1];
	size_t i, j;
	int failed = 0, matched = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As `daneproxy serve` does: a peer closing a TCP connection must not kill the process (getdns and the relay
	 * write without MSG_NOSIGNAL). */
	signal(SIGPIPE, SIG_IGN);
	if (argc > 3) {
		fprintf(stderr, "usage: %s [GROUP [TEST]]\n", argv[0]);
		return 2;
	}
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		const struct CMUnitTest *tests = groups[i].tests;
		size_t n = groups[i].n;
		char name[64];

		if (argc >= 2 ? strcmp(argv[1], groups[i].name) != 0 : !groups[i].by_default)
			continue;
		if (argc == 3) {
			/* One test of the group, by its function name. */
			for (j = 0; j < n && strcmp(tests[j].name, argv[2]) != 0; j++)
				;
			if (j == n)
				continue;
			one[0] = tests[j];
			tests = one;
			n = 1;
		}
		matched = 1;
		snprintf(name, sizeof(name), "resolver_%s", groups[i].name);
		failed += _cmocka_run_group_tests(name, tests, n, group_setup, group_teardown);
	}
	if (!matched) {
		fprintf(stderr, "%s: no test group \"%s\"%s%s; groups:", argv[0], argv[1], argc == 3 ? " with test " : "",
			argc == 3 ? argv[2] : "");
		for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			fprintf(stderr, " %s", groups[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
	return failed ? 1 : 0;
}

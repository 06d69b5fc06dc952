/*
 * loadgen.c - daneproxy-loadgen: new-connection load against an origin directly or through daneproxy.
 *
 * Modes:
 *   direct   TLS straight to the origin (the limit)
 *   route    plaintext to a daneproxy route, which originates the TLS
 *   http     absolute-form "GET https://host/path" to the HTTP proxy listener
 *   connect  CONNECT through the proxy, then TLS inside the tunnel (verified against --ca-file, as a client would)
 * Every connection sends one request with "Connection: close" and reads to EOF; latency runs from socket open to
 * the last byte. Reports connections/s, latency percentiles, errors by kind and bytes/s, as text or JSON.
 * Built on the proxy's own stream and TLS modules, on one libuv loop.
 */
#include "dane.h"
#include "fileio.h"
#include "json.h"
#include "stream.h"
#include "tls.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

enum mode { MODE_DIRECT, MODE_ROUTE, MODE_HTTP, MODE_CONNECT };

struct lg {
	uv_loop_t *loop;
	enum mode mode;
	struct sockaddr_storage target;   /* where sockets connect: origin or proxy */
	char host[256];                   /* origin host name (SNI, Host, CONNECT) */
	unsigned port;                    /* origin port */
	char path[512];
	unsigned concurrency;
	unsigned long total;              /* stop after this many (0: by duration) */
	double duration_s;
	struct tls_ctx *tls;
	struct dane_store *store;
	uint64_t start_ns;
	uint64_t deadline_ns;
	unsigned long started;
	unsigned long done;
	unsigned long ok;
	unsigned long err_connect, err_tls, err_proxy, err_http, err_io;
	uint64_t bytes;
	double *lat_ms;
	size_t n_lat, cap_lat;
	unsigned active;
};

enum phase { PH_CONNECT, PH_PROXY_REPLY, PH_TLS, PH_RESPONSE };

struct lconn {
	struct lg *lg;
	struct stream *s;
	enum phase phase;
	uint64_t t0;
	char head[512];
	size_t head_len;
	int status_ok;
	int got_status;
	char first[16];
	size_t first_len;
};

static void start_one(struct lg *lg);

static int verify(const struct dane_chain *chain, void *arg)
{
	struct lconn *c = arg;
	struct dane_options opts;
	struct dane_result res;
	const char *name = c->lg->host;

	if (c->lg->store == NULL)
		return 1;   /* no --ca-file: measure without checking (reported in the output) */
	memset(&opts, 0, sizeof(opts));
	opts.store = c->lg->store;
	dane_verify_pkix(chain, &name, 1, &opts, &res);
	return res.authenticated;
}

static void finish(struct lconn *c, unsigned long *err)
{
	struct lg *lg = c->lg;
	double ms = (double)(uv_hrtime() - c->t0) / 1e6;

	if (err != NULL) {
		(*err)++;
	} else if (!c->status_ok) {
		lg->err_http++;
	} else {
		lg->ok++;
		if (lg->n_lat == lg->cap_lat) {
			size_t cap = lg->cap_lat ? lg->cap_lat * 2 : 4096;
			double *grown = realloc(lg->lat_ms, cap * sizeof(double));
			if (grown != NULL) {
				lg->lat_ms = grown;
				lg->cap_lat = cap;
			}
		}
		if (lg->n_lat < lg->cap_lat)
			lg->lat_ms[lg->n_lat++] = ms;
	}
	stream_close(c->s);
	free(c);
	lg->done++;
	lg->active--;
	start_one(lg);
}

static void send_request(struct lconn *c)
{
	char req[1024];
	int n;

	char authority[300];

	/* RFC 9110 7.2: Host carries the port unless it is the scheme's default. */
	if (c->lg->port == 443)
		snprintf(authority, sizeof(authority), "%s", c->lg->host);
	else
		snprintf(authority, sizeof(authority), "%s:%u", c->lg->host, c->lg->port);
	if (c->lg->mode == MODE_HTTP)
		n = snprintf(req, sizeof(req), "GET https://%s%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
			     authority, c->lg->path, authority);
	else
		n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", c->lg->path,
			     authority);
	c->phase = PH_RESPONSE;
	stream_write(c->s, (const uint8_t *)req, (size_t)n);
}

static void on_data(struct stream *s, const uint8_t *data, size_t len, void *arg)
{
	struct lconn *c = arg;
	size_t i;

	(void)s;
	if (c->phase == PH_PROXY_REPLY) {
		/* The CONNECT reply head ends with an empty line; nothing follows it before our ClientHello. */
		for (i = 0; i < len; i++) {
			if (c->head_len < sizeof(c->head))
				c->head[c->head_len++] = (char)data[i];
			if (c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0) {
				struct tls_conn *t;
				if (c->head_len < 12 || memcmp(c->head + 9, "200", 3) != 0) {
					finish(c, &c->lg->err_proxy);
					return;
				}
				c->phase = PH_TLS;
				t = tls_client_new(c->lg->tls, c->lg->host, "http/1.1", verify, c);
				if (t == NULL || stream_start_tls(c->s, t, NULL, 0) < 0)
					finish(c, &c->lg->err_tls);
				return;
			}
		}
		return;
	}
	c->lg->bytes += len;
	for (i = 0; i < len && c->first_len < sizeof(c->first) - 1; i++)
		c->first[c->first_len++] = (char)data[i];
	if (!c->got_status && c->first_len >= 12) {
		c->got_status = 1;
		c->status_ok = c->first[9] == '2';
	}
}

static void on_event(struct stream *s, enum stream_event ev, void *arg)
{
	struct lconn *c = arg;
	char req[600];
	int n;

	switch (ev) {
	case STREAM_CONNECTED:
		if (c->lg->mode == MODE_DIRECT) {
			struct tls_conn *t = tls_client_new(c->lg->tls, c->lg->host, "http/1.1", verify, c);
			c->phase = PH_TLS;
			if (t == NULL || stream_start_tls(s, t, NULL, 0) < 0)
				finish(c, &c->lg->err_tls);
			return;
		}
		stream_read_start(s);
		if (c->lg->mode == MODE_CONNECT) {
			c->phase = PH_PROXY_REPLY;
			n = snprintf(req, sizeof(req), "CONNECT %s:%u HTTP/1.1\r\nHost: %s:%u\r\n\r\n", c->lg->host,
				     c->lg->port, c->lg->host, c->lg->port);
			stream_write(s, (const uint8_t *)req, (size_t)n);
			return;
		}
		send_request(c);
		return;
	case STREAM_HANDSHAKE_DONE:
		stream_read_start(s);
		send_request(c);
		return;
	case STREAM_EOF:
		if (c->phase == PH_RESPONSE)
			finish(c, c->got_status ? NULL : &c->lg->err_io);
		else
			finish(c, c->phase == PH_PROXY_REPLY ? &c->lg->err_proxy : &c->lg->err_tls);
		return;
	case STREAM_ERROR:
		finish(c, c->phase == PH_CONNECT ? &c->lg->err_connect
			 : c->phase == PH_TLS ? &c->lg->err_tls
			 : c->phase == PH_PROXY_REPLY ? &c->lg->err_proxy : &c->lg->err_io);
		return;
	case STREAM_DRAINED:
		return;
	}
}

static void start_one(struct lg *lg)
{
	struct lconn *c;

	if ((lg->total && lg->started >= lg->total) || (!lg->total && uv_hrtime() >= lg->deadline_ns))
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->lg = lg;
	c->t0 = uv_hrtime();
	c->s = stream_new(lg->loop, on_data, on_event, c);
	if (c->s == NULL) {
		free(c);
		return;
	}
	lg->started++;
	lg->active++;
	if (stream_connect(c->s, (struct sockaddr *)&lg->target) < 0)
		finish(c, &lg->err_connect);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: daneproxy-loadgen --mode direct|route|http|connect --connect ADDR:PORT --host NAME --port N\n"
		"                         [--path /] [-c CONCURRENCY] [-n TOTAL | -d SECONDS] [--ca-file FILE] [--json]\n"
		"  --connect  where sockets go: the origin (direct), the route, or the proxy listener (http, connect)\n"
		"  --host/--port  the origin (SNI, Host, CONNECT target)\n");
}

/* parse_addr - "IPv4:PORT" or "[IPv6]:PORT". */
static int parse_addr(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t n;

	if (colon == NULL)
		return -1;
	n = (size_t)(colon - s);
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	if (uv_ip4_addr(host, atoi(colon + 1), (struct sockaddr_in *)ss) == 0)
		return 0;
	return uv_ip6_addr(host, atoi(colon + 1), (struct sockaddr_in6 *)ss) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, 'm'},  {"connect", required_argument, NULL, 't'},
		{"host", required_argument, NULL, 'H'},  {"port", required_argument, NULL, 'p'},
		{"path", required_argument, NULL, 'P'},  {"ca-file", required_argument, NULL, 'C'},
		{"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static const char *const mode_names[] = {"direct", "route", "http", "connect"};
	struct lg lg;
	const char *ca_file = NULL;
	char err[256], *pem;
	size_t len;
	int opt, json = 0, have_target = 0;
	double elapsed;
	unsigned i;

	memset(&lg, 0, sizeof(lg));
	lg.concurrency = 10;
	lg.duration_s = 5;
	snprintf(lg.path, sizeof(lg.path), "/");
	while ((opt = getopt_long(argc, argv, "c:n:d:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			for (i = 0; i < 4 && strcmp(optarg, mode_names[i]) != 0; i++)
				;
			if (i == 4) {
				usage(stderr);
				return 2;
			}
			lg.mode = (enum mode)i;
			break;
		case 't':
			if (parse_addr(optarg, &lg.target) < 0) {
				fprintf(stderr, "loadgen: bad --connect %s\n", optarg);
				return 2;
			}
			have_target = 1;
			break;
		case 'H': snprintf(lg.host, sizeof(lg.host), "%s", optarg); break;
		case 'p': lg.port = (unsigned)atoi(optarg); break;
		case 'P': snprintf(lg.path, sizeof(lg.path), "%s", optarg); break;
		case 'C': ca_file = optarg; break;
		case 'j': json = 1; break;
		case 'c': lg.concurrency = (unsigned)atoi(optarg); break;
		case 'n': lg.total = strtoul(optarg, NULL, 10); break;
		case 'd': lg.duration_s = atof(optarg); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!have_target || lg.host[0] == '\0' || lg.port == 0 || lg.port > 65535 || lg.concurrency == 0 ||
	    lg.concurrency > 100000 || lg.duration_s <= 0) {
		usage(stderr);
		return 2;
	}
	wolfSSL_Init();
	if (ca_file != NULL) {
		lg.store = dane_store_new();
		if (lg.store == NULL || file_read_all(ca_file, 16u << 20, &pem, &len, err, sizeof(err)) < 0 ||
		    dane_store_add_pem(lg.store, pem, len, err, sizeof(err)) < 0) {
			fprintf(stderr, "loadgen: --ca-file: %s\n", err);
			return 2;
		}
		free(pem);
	}
	lg.tls = tls_client_ctx_new(err, sizeof(err));
	if (lg.tls == NULL) {
		fprintf(stderr, "loadgen: %s\n", err);
		return 1;
	}
	lg.loop = uv_default_loop();
	lg.start_ns = uv_hrtime();
	lg.deadline_ns = lg.start_ns + (uint64_t)(lg.duration_s * 1e9);
	for (i = 0; i < lg.concurrency; i++)
		start_one(&lg);
	uv_run(lg.loop, UV_RUN_DEFAULT);
	elapsed = (double)(uv_hrtime() - lg.start_ns) / 1e9;
	qsort(lg.lat_ms, lg.n_lat, sizeof(double), cmp_double);
	if (json) {
		printf("{\"mode\": \"%s\", \"concurrency\": %u, \"connections\": %lu, \"ok\": %lu, \"seconds\": %.3f, "
		       "\"conn_per_s\": %.1f, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
		       "\"bytes_per_s\": %.0f, \"errors\": {\"connect\": %lu, \"tls\": %lu, \"proxy\": %lu, \"http\": %lu, "
		       "\"io\": %lu}, \"verified\": %s}\n",
		       mode_names[lg.mode], lg.concurrency, lg.done, lg.ok, elapsed, (double)lg.ok / elapsed,
		       pct(lg.lat_ms, lg.n_lat, 50), pct(lg.lat_ms, lg.n_lat, 90), pct(lg.lat_ms, lg.n_lat, 99),
		       lg.n_lat ? lg.lat_ms[lg.n_lat - 1] : 0.0, (double)lg.bytes / elapsed, lg.err_connect, lg.err_tls,
		       lg.err_proxy, lg.err_http, lg.err_io,
		       lg.store || lg.mode == MODE_ROUTE || lg.mode == MODE_HTTP ? "true" : "false");
	} else {
		printf("%s: %lu connections (%lu ok) in %.2f s, c=%u: %.1f conn/s, latency p50 %.2f p90 %.2f p99 %.2f "
		       "max %.2f ms, %.1f KB/s, errors connect %lu tls %lu proxy %lu http %lu io %lu%s\n",
		       mode_names[lg.mode], lg.done, lg.ok, elapsed, lg.concurrency, (double)lg.ok / elapsed,
		       pct(lg.lat_ms, lg.n_lat, 50), pct(lg.lat_ms, lg.n_lat, 90), pct(lg.lat_ms, lg.n_lat, 99),
		       lg.n_lat ? lg.lat_ms[lg.n_lat - 1] : 0.0, (double)lg.bytes / elapsed / 1024, lg.err_connect,
		       lg.err_tls, lg.err_proxy, lg.err_http, lg.err_io,
		       lg.store || lg.mode == MODE_ROUTE || lg.mode == MODE_HTTP ? "" : " (certificates NOT verified)");
	}
	free(lg.lat_ms);
	tls_ctx_free(lg.tls);
	dane_store_free(lg.store);
	uv_loop_close(lg.loop);
	wolfSSL_Cleanup();
	return lg.ok > 0 ? 0 : 1;
}

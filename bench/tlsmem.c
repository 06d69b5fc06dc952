/*
 * tlsmem.c - daneproxy-tlsmem: heap held per TLS session, measured in process with mallinfo2.
 *
 * N client sessions (the origin side of every proxied connection) and N server sessions (the client side of a
 * terminated CONNECT, presenting a leaf minted by a throw-away local CA) are created, shake hands with each
 * other in memory through proxy/tls, exchange one small record each way (so that TLS 1.3 session tickets are
 * read), and are then left idle. The heap in use (mallinfo2: uordblks + hblkhd) and the resident memory
 * (/proc/self/statm) are read after each phase and divided by N. The server sessions are freed first, so the
 * client figures are the client sessions' own. RSS sees what the heap figure cannot: pages of zeros returned to
 * the kernel (tls.c trim_zero_pages) and memory malloc keeps after frees.
 *
 *   daneproxy-tlsmem [-n N] [--tls12] [--json]
 */
#include "ca.h"
#include "dane.h"
#include "tls.h"

#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

struct pair {
	struct tls_conn *cli;
	struct tls_conn *srv;
	int cli_done;
	int srv_done;
};

/* rss - resident bytes of this process (/proc/self/statm). */
static size_t rss(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* heap_in_use - bytes malloc has handed out and not had back (arena and mmap'd chunks). */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static int accept_all(const struct dane_chain *chain, void *arg)
{
	(void)chain;
	(void)arg;
	return 1;
}

/* move - everything from's session has produced goes into to's input; -1 when it does not fit. */
static int move(struct tls_conn *from, struct tls_conn *to)
{
	uint8_t *data, *space;
	size_t n = tls_out_take(from, &data), off = 0, avail, k;

	while (off < n) {
		space = tls_in_space(to, &avail);
		if (avail == 0) {
			free(data);
			return -1;
		}
		k = n - off < avail ? n - off : avail;
		memcpy(space, data + off, k);
		tls_in_commit(to, k);
		off += k;
	}
	free(data);
	return 0;
}

/* side_step - one handshake step of one side (who: for the message), unless it is done; -1 on failure. */
static int side_step(struct tls_conn *t, int *done, const char *who)
{
	enum tls_status st;

	if (*done)
		return 0;
	st = tls_handshake(t);
	if (st == TLS_ERROR) {
		fprintf(stderr, "tlsmem: %s: %s\n", who, tls_error(t));
		return -1;
	}
	*done = st == TLS_OK;
	return 0;
}

/* handshake - drive one pair to the end of both handshakes; -1 on failure. */
static int handshake(struct pair *p)
{
	int rounds;

	for (rounds = 0; rounds < 20 && !(p->cli_done && p->srv_done); rounds++) {
		if (side_step(p->cli, &p->cli_done, "client") < 0 || move(p->cli, p->srv) < 0 ||
		    side_step(p->srv, &p->srv_done, "server") < 0 || move(p->srv, p->cli) < 0)
			return -1;
	}
	return p->cli_done && p->srv_done ? 0 : -1;
}

/* exchange - one small record each way, read to the end (tickets and key updates included). */
static int exchange(struct pair *p)
{
	static const uint8_t ping[] = "ping";
	uint8_t buf[64];
	enum tls_status st;

	if (tls_write(p->cli, ping, sizeof(ping)) < 0 || move(p->cli, p->srv) < 0)
		return -1;
	if (tls_read(p->srv, buf, sizeof(buf), &st) != sizeof(ping))
		return -1;
	if (tls_write(p->srv, ping, sizeof(ping)) < 0 || move(p->srv, p->cli) < 0)
		return -1;
	if (tls_read(p->cli, buf, sizeof(buf), &st) != sizeof(ping))
		return -1;
	tls_read(p->cli, buf, sizeof(buf), &st);   /* anything left (a second ticket) */
	tls_read(p->srv, buf, sizeof(buf), &st);
	return move(p->cli, p->srv) < 0 || move(p->srv, p->cli) < 0 ? -1 : 0;
}

/* A point of measurement: heap in use and resident memory. */
struct mark {
	size_t heap;
	size_t rss;
};

/* mark - after malloc_trim(0), which gives every whole free page back: RSS then counts what is live. */
static struct mark mark(void)
{
	struct mark m;

	malloc_trim(0);
	m.heap = heap_in_use();
	m.rss = rss();
	return m;
}

static double per(size_t after, size_t before, size_t n)
{
	return ((double)after - (double)before) / (double)n / 1024.0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'}, {"tls12", no_argument, NULL, '2'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char dir[] = "/tmp/daneproxy-tlsmem.XXXXXX", err[256];
	struct tls_ctx *cctx = NULL, *sctx = NULL;
	struct pair *pairs = NULL;
	struct ca *ca = NULL;
	uint8_t *leaf = NULL;
	const uint8_t *key;
	size_t leaf_len, key_len, n = 200, i;
	struct mark m_start, m_cli, m_srv, m_hs, m_data, m_idle, m_cli_idle, m_end;
	int opt, json = 0, tls12 = 0, rc = 1;

	while ((opt = getopt_long(argc, argv, "n:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'j': json = 1; break;
		case '2': tls12 = 1; break;
		case 'h':
			printf("usage: daneproxy-tlsmem [-n SESSIONS] [--tls12] [--json]\n");
			return 0;
		default: return 2;
		}
	}
	if (n == 0 || n > 100000)
		return 2;
	wolfSSL_Init();
	if (mkdtemp(dir) == NULL || ca_open(dir, 1, &ca, err, sizeof(err)) < 0 ||
	    ca_mint(ca, "www.example", &leaf, &leaf_len, err, sizeof(err)) < 0) {
		fprintf(stderr, "tlsmem: CA: %s\n", err);
		goto out;
	}
	key = ca_leaf_key_der(ca, &key_len);
	cctx = tls_client_ctx_new(err, sizeof(err));
	sctx = tls_server_ctx_new(err, sizeof(err));
	pairs = calloc(n, sizeof(*pairs));
	if (cctx == NULL || sctx == NULL || pairs == NULL) {
		fprintf(stderr, "tlsmem: %s\n", err);
		goto out;
	}
	if (tls12)
		tls_ctx_max_tls12(cctx);
	/* Warm up: lazily created globals (RNG, ECC tables) must not count as per-session memory. */
	for (i = 0; i < 3; i++) {
		struct pair w = {tls_client_new(cctx, "www.example", "http/1.1", accept_all, NULL),
				 tls_server_new(sctx, leaf, leaf_len, key, key_len, "http/1.1"), 0, 0};
		if (w.cli == NULL || w.srv == NULL || handshake(&w) < 0 || exchange(&w) < 0) {
			fprintf(stderr, "tlsmem: warm-up handshake failed\n");
			goto out;
		}
		tls_free(w.cli);
		tls_free(w.srv);
	}
	malloc_trim(0);
	m_start = mark();
	for (i = 0; i < n; i++)
		pairs[i].cli = tls_client_new(cctx, "www.example", "http/1.1", accept_all, NULL);
	m_cli = mark();
	for (i = 0; i < n; i++)
		pairs[i].srv = tls_server_new(sctx, leaf, leaf_len, key, key_len, "http/1.1");
	m_srv = mark();
	for (i = 0; i < n; i++) {
		if (pairs[i].cli == NULL || pairs[i].srv == NULL || handshake(&pairs[i]) < 0) {
			fprintf(stderr, "tlsmem: handshake %zu failed\n", i);
			goto out;
		}
	}
	m_hs = mark();
	for (i = 0; i < n; i++) {
		if (exchange(&pairs[i]) < 0) {
			fprintf(stderr, "tlsmem: data exchange %zu failed\n", i);
			goto out;
		}
	}
	m_data = mark();
	for (i = 0; i < n; i++) {
		tls_idle(pairs[i].cli);
		tls_idle(pairs[i].srv);
	}
	m_idle = mark();
	for (i = 0; i < n; i++) {
		tls_free(pairs[i].srv);
		pairs[i].srv = NULL;
	}
	m_cli_idle = mark();
	for (i = 0; i < n; i++) {
		tls_free(pairs[i].cli);
		pairs[i].cli = NULL;
	}
	m_end = mark();
	if (json) {
		printf("{\"sessions\": %zu, \"tls\": \"%s\"", n, tls12 ? "1.2" : "1.3");
#define FIG(name, a, b) printf(", \"" name "_heap_kib\": %.2f, \"" name "_rss_kib\": %.2f", per(a.heap, b.heap, n), \
			       per(a.rss, b.rss, n))
		FIG("client_new", m_cli, m_start);
		FIG("server_new", m_srv, m_cli);
		FIG("pair_handshaken", m_hs, m_start);
		FIG("pair_after_data", m_data, m_start);
		FIG("pair_idle", m_idle, m_start);
		FIG("client_idle", m_cli_idle, m_start);
		FIG("server_idle", m_idle, m_cli_idle);
		FIG("left_after_free", m_end, m_start);
#undef FIG
		printf("}\n");
	} else {
		printf("per session (KiB; heap: mallinfo2, RSS: /proc/self/statm; %zu sessions, TLS %s, wolfSSL %s):\n", n,
		       tls12 ? "1.2" : "1.3", wolfSSL_lib_version());
		printf("                                  heap      RSS\n");
#define ROW(label, a, b) printf("  %-28s %8.2f %8.2f\n", label, per(a.heap, b.heap, n), per(a.rss, b.rss, n))
		ROW("client, new", m_cli, m_start);
		ROW("server, new", m_srv, m_cli);
		ROW("pair, after the handshake", m_hs, m_start);
		ROW("pair, after one record each", m_data, m_start);
		ROW("pair, idle", m_idle, m_start);
		ROW("client, idle", m_cli_idle, m_start);
		ROW("server, idle", m_idle, m_cli_idle);
		ROW("left after freeing all", m_end, m_start);
#undef ROW
	}
	rc = 0;
out:
	if (pairs != NULL) {
		for (i = 0; i < n; i++) {
			tls_free(pairs[i].cli);
			tls_free(pairs[i].srv);
		}
	}
	free(pairs);
	free(leaf);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	ca_free(ca);
	if (dir[0] != '\0') {
		char path[sizeof(dir) + 16];
		snprintf(path, sizeof(path), "%s/ca.pem", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/ca.key", dir);
		unlink(path);
		snprintf(path, sizeof(path), "%s/leaf.key", dir);
		unlink(path);
		rmdir(dir);
	}
	wolfSSL_Cleanup();
	return rc;
}

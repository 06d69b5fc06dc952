/*
 * supervisor.c - the daemon's first process: it owns the configuration, the listening sockets, the signals and the
 * metrics endpoint, and runs the workers (server.c) that do the proxying.
 *
 * Design (nginx's, which is proven): the supervisor binds every listening socket itself and forks the workers,
 * which inherit them, so that all workers accept on the same sockets and the kernel spreads the connections; each
 * worker has its own libuv loop, resolver and caches. Nothing is ever re-bound for a worker (no SO_REUSEPORT: closing
 * such a socket drops the connections queued on it).
 *   - SIGHUP reloads: the configuration is built again (file and command line) and validated; if it is invalid,
 *     every error is logged and the old workers keep serving. If it is valid, listeners that stay the same keep
 *     their sockets, new ones are bound, a new generation of workers is forked on them, and only once all of them
 *     listen is the old generation told to stop (SIGTERM: it stops accepting and finishes what is in flight within
 *     shutdown_grace). The sockets stay open throughout, so no connection is refused or reset by a reload.
 *   - A worker that dies is logged, counted and replaced (after a second's pause when it dies young).
 *   - SIGUSR1 is passed on (the workers reopen their log files); SIGTERM/SIGINT stop everything gracefully, a second
 *     one closes at once.
 *   - The counters live in memory shared with the workers (metrics.h); GET /metrics is served here, so a scrape
 *     never runs in a worker's loop.
 * The supervisor does not use libuv: a poll() loop with a signalfd, so that forked workers start with a clean libuv.
 */
#include "ca.h"
#include "daemon.h"
#include "metrics.h"
#include "notify.h"
#include "server.h"
#include "text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/version.h>

#define MAX_SOCKS CONFIG_MAX_LISTENERS
#define MAX_METRICS_CLIENTS 8
#define METRICS_CLIENT_TIMEOUT_MS 5000
#define READY_TIMEOUT_MS 15000          /* a new generation must listen within this, or the reload fails */
#define RESTART_PAUSE_MS 1000           /* a worker that died within this of its start is restarted after it */

/* A bound, listening socket, shared by the workers of every generation that uses its address. */
struct sock {
	struct config_addr addr;
	int fd;
	int used;                       /* by the current configuration */
};

struct worker {
	pid_t pid;                      /* 0: a free entry */
	int generation;
	int slot;                       /* metrics slot */
	int index;                      /* 0 .. n-1 within its generation */
	int ready;
	int retiring;                   /* told to stop (an older generation, or shutdown) */
	uint64_t started_ms;
	uint64_t restart_at_ms;         /* a dead worker to replace at this time (pid 0, entry kept) */
};

struct metrics_client {
	int fd;                         /* -1: free */
	uint64_t deadline_ms;
	size_t len;
	char buf[4096];
};

struct supervisor {
	struct config *cfg;             /* the current configuration */
	daemon_config_fn build;
	void *build_arg;
	struct metrics_shm *shm;
	struct sock socks[MAX_SOCKS];
	size_t n_socks;
	struct worker workers[METRICS_MAX_SLOTS];
	int generation;                 /* the current one */
	int pending;                    /* a reload's generation waiting for its workers to listen; 0: none */
	struct config *pending_cfg;
	uint64_t pending_deadline_ms;
	int sigfd;
	int ready_rd, ready_wr;         /* workers write one byte once they listen */
	int metrics_fd;                 /* -1: no metrics endpoint */
	struct metrics_client clients[MAX_METRICS_CLIENTS];
	int stopping;
	uint64_t kill_at_ms;            /* shutdown: workers still alive then are killed */
	int announced;                  /* the ready lines are out */
	int start_failed;               /* a first-generation worker died before listening: exit 1 */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---------- listening sockets ---------- */

static void sockaddr_from(const struct config_addr *a, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(a->port);
		memcpy(&sin->sin_addr, a->addr, 4);
		*len = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(a->port);
		memcpy(&sin6->sin6_addr, a->addr, 16);
		*len = sizeof(*sin6);
	}
}

/* bind_listen - a listening socket for a; -1 with a message. */
static int bind_listen(const struct config_addr *a)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;

	sockaddr_from(a, &ss, &len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 511) < 0) {
		fprintf(stderr, "daneproxy: cannot listen on %s: %s\n", a->text, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int same_addr(const struct config_addr *a, const struct config_addr *b)
{
	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, 16) == 0;
}

/*
 * socks_for - the sockets of every listener of cfg, in worker order (config_listeners): kept ones reused,
 * new ones bound. fds[] receives them; -1 when one cannot be bound (those bound here are closed again).
 */
static int socks_for(struct supervisor *sv, const struct config *cfg, int *fds)
{
	const struct config_addr *want[MAX_SOCKS];
	size_t n = config_listeners(cfg, want), i, j, before = sv->n_socks;

	for (i = 0; i < n; i++) {
		for (j = 0; j < sv->n_socks && !same_addr(&sv->socks[j].addr, want[i]); j++)
			;
		if (j == sv->n_socks) {
			int fd = bind_listen(want[i]);
			if (fd < 0 || sv->n_socks == MAX_SOCKS) {
				if (fd >= 0)
					close(fd);
				while (sv->n_socks > before)
					close(sv->socks[--sv->n_socks].fd);
				return -1;
			}
			sv->socks[sv->n_socks].addr = *want[i];
			sv->socks[sv->n_socks].fd = fd;
			sv->socks[sv->n_socks++].used = 0;
		}
		fds[i] = sv->socks[j].fd;
	}
	return 0;
}

/* socks_settle - the current configuration's sockets are marked used, the others closed here (workers of an older
 * generation keep their own descriptors until they exit). */
static void socks_settle(struct supervisor *sv)
{
	const struct config_addr *want[MAX_SOCKS];
	size_t i, j, k = 0, n = config_listeners(sv->cfg, want);

	for (i = 0; i < sv->n_socks; i++) {
		int used = 0;
		for (j = 0; j < n && !used; j++)
			used = same_addr(&sv->socks[i].addr, want[j]);
		if (!used) {
			close(sv->socks[i].fd);
			continue;
		}
		sv->socks[i].used = 1;
		sv->socks[k++] = sv->socks[i];
	}
	sv->n_socks = k;
}

/* ---------- workers ---------- */

/* worker_count - workers = N, or auto: the CPUs this process may run on. */
static unsigned worker_count(const struct config *cfg)
{
	cpu_set_t set;
	int n;

	if (cfg->workers > 0)
		return cfg->workers;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && (n = CPU_COUNT(&set)) > 0)
		return n > METRICS_MAX_SLOTS / 2 ? METRICS_MAX_SLOTS / 2 : (unsigned)n;
	return 1;
}

/* child_main - in the forked worker: drop what belongs to the supervisor, then run. Never returns. */
static void child_main(struct supervisor *sv, const struct config *cfg, const int *fds, int slot, int index)
{
	struct worker_setup ws;
	sigset_t all;
	const struct config_addr *want[MAX_SOCKS];
	size_t i, j, n = config_listeners(cfg, want);
	int rc;

	/* The worker ends with the supervisor, whatever kills it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(1);
	close(sv->sigfd);
	close(sv->ready_rd);
	if (sv->metrics_fd >= 0)
		close(sv->metrics_fd);
	for (i = 0; i < MAX_METRICS_CLIENTS; i++)
		if (sv->clients[i].fd >= 0)
			close(sv->clients[i].fd);
	/* Only this generation's sockets stay open here: a socket the configuration dropped must close when the older
	 * workers exit, not live on in this one. */
	for (i = 0; i < sv->n_socks; i++) {
		int mine = 0;
		for (j = 0; j < n && !mine; j++)
			mine = fds[j] == sv->socks[i].fd;
		if (!mine)
			close(sv->socks[i].fd);
	}
	/* Only the supervisor talks to the service manager (NotifyAccess=main). */
	unsetenv("NOTIFY_SOCKET");
	/* Until the worker's loop handles them, a forwarded SIGUSR1 (log reopening) or a stray SIGHUP/SIGUSR2 must not
	 * kill it (their default action); TERM and INT keep theirs: a worker that is starting may just go. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	ws.listen_fds = fds;
	ws.shm = sv->shm;
	ws.slot = slot;
	ws.slot_index = index;
	ws.ready_fd = sv->ready_wr;
	rc = worker_run(cfg, &ws);
	fflush(NULL);
	exit(rc);
}

/* spawn - fork one worker of generation gen on cfg and fds; 0, or -1 with a message. */
static int spawn(struct supervisor *sv, const struct config *cfg, const int *fds, int gen, int index)
{
	struct worker *w = NULL;
	size_t i;
	int slot;
	pid_t pid;

	for (i = 0; i < METRICS_MAX_SLOTS && w == NULL; i++)
		if (sv->workers[i].pid == 0 && sv->workers[i].restart_at_ms == 0)
			w = &sv->workers[i];
	if (w == NULL || (slot = metrics_slot_take(sv->shm)) < 0) {
		fprintf(stderr, "daneproxy: too many workers alive (%d at most)\n", METRICS_MAX_SLOTS);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "daneproxy: fork: %s\n", strerror(errno));
		metrics_slot_retire(sv->shm, slot);
		return -1;
	}
	if (pid == 0)
		child_main(sv, cfg, fds, slot, index);
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->generation = gen;
	w->slot = slot;
	w->index = index;
	w->started_ms = now_ms();
	return 0;
}

/* spawn_generation - every worker of a new generation; -1 when one cannot be started (the others are killed). */
static int spawn_generation(struct supervisor *sv, const struct config *cfg, const int *fds, int gen)
{
	unsigned i, n = worker_count(cfg);

	for (i = 0; i < n; i++) {
		if (spawn(sv, cfg, fds, gen, (int)i) < 0) {
			size_t k;
			for (k = 0; k < METRICS_MAX_SLOTS; k++)
				if (sv->workers[k].pid > 0 && sv->workers[k].generation == gen) {
					kill(sv->workers[k].pid, SIGKILL);
					sv->workers[k].retiring = 1;
				}
			return -1;
		}
	}
	return 0;
}

/* signal_generation - send sig to every live worker of gen (-1: of every generation). */
static void signal_generation(struct supervisor *sv, int gen, int sig, int retire)
{
	size_t i;

	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		struct worker *w = &sv->workers[i];
		if (w->pid > 0 && (gen < 0 || w->generation == gen)) {
			kill(w->pid, sig);
			if (retire)
				w->retiring = 1;
		}
	}
}

static int generation_ready(const struct supervisor *sv, int gen)
{
	size_t i;
	int any = 0;

	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		const struct worker *w = &sv->workers[i];
		if (w->pid > 0 && w->generation == gen) {
			if (!w->ready)
				return 0;
			any = 1;
		}
	}
	return any;
}

static unsigned alive(const struct supervisor *sv)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < METRICS_MAX_SLOTS; i++)
		n += sv->workers[i].pid > 0;
	return n;
}

/* announce - the first generation listens: the lines the operator (and the tests) wait for. */
static void announce(struct supervisor *sv)
{
	const struct config *cfg = sv->cfg;
	size_t i;

	sv->announced = 1;
	for (i = 0; i < cfg->n_listen; i++)
		printf("daneproxy: ready, HTTP proxy listening on %s (policy %s)\n", cfg->listen[i].text, cfg->policy);
	for (i = 0; i < cfg->n_routes; i++)
		printf("daneproxy: ready, route %s -> %s:%u\n", cfg->routes[i].listen.text, cfg->routes[i].host,
		       cfg->routes[i].port);
	for (i = 0; i < cfg->n_smtp; i++)
		printf("daneproxy: ready, SMTP smarthost on %s (policy %s, MX port %u)\n", cfg->smtp[i].listen.text,
		       cfg->smtp[i].policy, cfg->smtp[i].mx_port);
	if (cfg->metrics_listen.port != 0)
		printf("daneproxy: ready, metrics on http://%s/metrics\n", cfg->metrics_listen.text);
	printf("daneproxy: %u workers\n", worker_count(cfg));
	fflush(stdout);
	notify_status("%zu listeners, %u workers, policy %s", cfg->n_listen + cfg->n_routes + cfg->n_smtp, worker_count(cfg),
		      cfg->policy);
	notify_ready();
}

/* ---------- the local CA, before any worker starts ---------- */

/* ca_preflight - create or renew the local CA once, here, so that workers only load it; -1 with a message. */
static int ca_preflight(const struct config *cfg, int quiet)
{
	char err[400];
	struct ca *ca;

	if (cfg->n_listen == 0)
		return 0;   /* routes only: no CONNECT termination */
	if (server_ca_open(cfg, &ca, err, sizeof(err)) < 0) {
		fprintf(stderr, "daneproxy: CONNECT termination: %s\n", err);
		return -1;
	}
	if (!quiet || ca_renewed(ca))
		printf("daneproxy: local CA %s%s (clients of CONNECT must trust it: daneproxy ca export)\n", ca_cert_path(ca),
		       ca_renewed(ca) ? ", newly issued" : "");
	ca_free(ca);
	return 0;
}

/* ---------- reload ---------- */

static void reload_failed(struct supervisor *sv, const char *why)
{
	metrics_add(&sv->shm->reloads[1], 1);
	fprintf(stderr, "daneproxy: reload failed (%s): still running the previous configuration\n", why);
	notify_status("reload failed (%s); running the previous configuration", why);
	notify_ready();
}

/* reload_start - SIGHUP: build and check the configuration, then start its workers (reload_finish retires the old). */
static void reload_start(struct supervisor *sv)
{
	struct config *cfg;
	int fds[MAX_SOCKS];
	size_t i;

	if (sv->pending) {
		fprintf(stderr, "daneproxy: SIGHUP: a reload is already in progress\n");
		return;
	}
	notify_reloading();
	fprintf(stderr, "daneproxy: SIGHUP: reloading the configuration\n");
	cfg = malloc(sizeof(*cfg));
	if (cfg == NULL) {
		reload_failed(sv, "out of memory");
		return;
	}
	if (sv->build(cfg, sv->build_arg) < 0 || cfg->n_errors + cfg->n_errors_dropped > 0) {
		for (i = 0; i < cfg->n_errors; i++)
			fprintf(stderr, "%s\n", cfg->errors[i]);
		if (cfg->n_errors_dropped)
			fprintf(stderr, "... and %zu more errors\n", cfg->n_errors_dropped);
		free(cfg);
		reload_failed(sv, "the configuration has errors");
		return;
	}
	if (ca_preflight(cfg, 1) < 0) {
		free(cfg);
		reload_failed(sv, "the local CA");
		return;
	}
	if (socks_for(sv, cfg, fds) < 0) {
		free(cfg);
		reload_failed(sv, "a listener could not be bound");
		return;
	}
	if (spawn_generation(sv, cfg, fds, sv->generation + 1) < 0) {
		free(cfg);
		reload_failed(sv, "workers could not be started");
		return;
	}
	sv->pending = sv->generation + 1;
	sv->pending_cfg = cfg;
	sv->pending_deadline_ms = now_ms() + READY_TIMEOUT_MS;
}

/* reload_finish - the new generation listens: it takes over, the old one finishes what it has in flight. */
static void reload_finish(struct supervisor *sv)
{
	int old = sv->generation;

	signal_generation(sv, old, SIGTERM, 1);
	free(sv->cfg);
	sv->cfg = sv->pending_cfg;
	sv->generation = sv->pending;
	sv->pending = 0;
	sv->pending_cfg = NULL;
	socks_settle(sv);
	metrics_add(&sv->shm->reloads[0], 1);
	fprintf(stderr, "daneproxy: configuration reloaded (generation %d, %u workers)\n", sv->generation,
		worker_count(sv->cfg));
	notify_status("reloaded: %zu listeners, %u workers", sv->cfg->n_listen + sv->cfg->n_routes + sv->cfg->n_smtp,
		      worker_count(sv->cfg));
	notify_ready();
}

/* reload_abandon - the new generation did not come up: it goes, the old one stays. */
static void reload_abandon(struct supervisor *sv, const char *why)
{
	signal_generation(sv, sv->pending, SIGKILL, 1);
	free(sv->pending_cfg);
	sv->pending_cfg = NULL;
	sv->pending = 0;
	socks_settle(sv);   /* sockets bound for the abandoned configuration only are closed */
	reload_failed(sv, why);
}

/* ---------- children ---------- */

/* reap - collect exited workers: retire their metrics, replace the current generation's that died. */
static void reap(struct supervisor *sv)
{
	int status;
	pid_t pid;
	size_t i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < METRICS_MAX_SLOTS && sv->workers[i].pid != pid; i++)
			;
		if (i == METRICS_MAX_SLOTS)
			continue;
		struct worker *w = &sv->workers[i];
		metrics_slot_retire(sv->shm, w->slot);
		w->pid = 0;
		if (w->retiring || sv->stopping)
			continue;
		/* Died unasked. */
		if (WIFSIGNALED(status))
			fprintf(stderr, "daneproxy: worker %d (pid %d) killed by signal %d\n", w->index, (int)pid,
				WTERMSIG(status));
		else
			fprintf(stderr, "daneproxy: worker %d (pid %d) exited with status %d\n", w->index, (int)pid,
				WEXITSTATUS(status));
		if (w->generation == sv->pending) {
			reload_abandon(sv, "a new worker died");
			continue;
		}
		if (!sv->announced) {
			/* A worker of the first generation that cannot start (its error is on stderr) fails the start-up:
			 * restarting it would fail the same way. */
			fprintf(stderr, "daneproxy: not starting: a worker failed to start\n");
			sv->start_failed = 1;
			sv->stopping = 1;
			signal_generation(sv, -1, SIGKILL, 1);
			continue;
		}
		metrics_add(&sv->shm->worker_restarts, 1);
		w->restart_at_ms = now_ms() - w->started_ms < RESTART_PAUSE_MS ? now_ms() + RESTART_PAUSE_MS : now_ms();
	}
}

/* restart_due - replace workers whose restart time has come. */
static void restart_due(struct supervisor *sv)
{
	int fds[MAX_SOCKS];
	uint64_t now = now_ms();
	size_t i;

	for (i = 0; i < METRICS_MAX_SLOTS; i++) {
		struct worker *w = &sv->workers[i];
		int index = w->index;
		if (w->pid != 0 || w->restart_at_ms == 0 || w->restart_at_ms > now)
			continue;
		w->restart_at_ms = 0;
		if (sv->stopping || w->generation != sv->generation)
			continue;
		if (socks_for(sv, sv->cfg, fds) < 0 || spawn(sv, sv->cfg, fds, sv->generation, index) < 0)
			fprintf(stderr, "daneproxy: worker %d could not be restarted\n", index);
		else
			fprintf(stderr, "daneproxy: worker %d restarted\n", index);
	}
}

/* on_ready - workers say they listen: each writes its metrics slot (an int: pipe writes this small are atomic). */
static void on_ready(struct supervisor *sv)
{
	int slots[64];
	ssize_t n = read(sv->ready_rd, slots, sizeof(slots));
	size_t i, k;

	for (k = 0; n > 0 && k < (size_t)n / sizeof(int); k++)
		for (i = 0; i < METRICS_MAX_SLOTS; i++)
			if (sv->workers[i].pid > 0 && sv->workers[i].slot == slots[k])
				sv->workers[i].ready = 1;
}

/* ---------- GET /metrics ---------- */

static void metrics_accept(struct supervisor *sv)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = accept4(sv->metrics_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct net_addr peer;
	size_t i;

	if (fd < 0)
		return;
	/* Loopback, or the [proxy] allow_from networks, as for the proxy's own listeners. */
	if (net_addr_from_sockaddr((struct sockaddr *)&ss, &peer) < 0 ||
	    !config_client_allowed(sv->cfg, peer.family, peer.addr)) {
		close(fd);
		return;
	}
	for (i = 0; i < MAX_METRICS_CLIENTS && sv->clients[i].fd >= 0; i++)
		;
	if (i == MAX_METRICS_CLIENTS) {
		close(fd);   /* more scrapers at once than this serves: they retry */
		return;
	}
	sv->clients[i].fd = fd;
	sv->clients[i].len = 0;
	sv->clients[i].deadline_ms = now_ms() + METRICS_CLIENT_TIMEOUT_MS;
}

static void client_close(struct metrics_client *mc)
{
	close(mc->fd);
	mc->fd = -1;
}

/* write_all - the whole response, bounded in time (the supervisor's loop only: workers never wait for a scrape). */
static void write_all(int fd, const char *p, size_t len)
{
	struct pollfd pfd = {fd, POLLOUT, 0};
	uint64_t end = now_ms() + 2000;
	ssize_t n;

	while (len > 0 && now_ms() < end) {
		n = write(fd, p, len);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
		} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			return;
		} else {
			poll(&pfd, 1, 100);
		}
	}
}

static void metrics_read(struct supervisor *sv, struct metrics_client *mc)
{
	char head[256], *body = NULL;
	ssize_t n = read(mc->fd, mc->buf + mc->len, sizeof(mc->buf) - 1 - mc->len);
	size_t blen;
	int hl;

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			client_close(mc);
		return;
	}
	mc->len += (size_t)n;
	mc->buf[mc->len] = '\0';
	if (strstr(mc->buf, "\r\n\r\n") == NULL && strstr(mc->buf, "\n\n") == NULL) {
		if (mc->len == sizeof(mc->buf) - 1)
			client_close(mc);   /* a head this large is no scrape */
		return;
	}
	if (strncmp(mc->buf, "GET /metrics ", 13) != 0 && strncmp(mc->buf, "GET /metrics? ", 14) != 0) {
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 26\r\n"
					 "Connection: close\r\n\r\nonly GET /metrics is here\n";
		write_all(mc->fd, nf, sizeof(nf) - 1);
		client_close(mc);
		return;
	}
	blen = metrics_render(sv->shm, DANEPROXY_VERSION, LIBWOLFSSL_VERSION_STRING, &body);
	hl = snprintf(head, sizeof(head),
		      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n\r\n", blen);
	write_all(mc->fd, head, (size_t)hl);
	if (body != NULL)
		write_all(mc->fd, body, blen);
	free(body);
	client_close(mc);
}

/* metrics_listen - the endpoint of the current configuration (none when not configured). */
static int metrics_listen(struct supervisor *sv)
{
	if (sv->cfg->metrics_listen.port == 0)
		return 0;
	sv->metrics_fd = bind_listen(&sv->cfg->metrics_listen);
	if (sv->metrics_fd < 0)
		return -1;
	fcntl(sv->metrics_fd, F_SETFL, fcntl(sv->metrics_fd, F_GETFL) | O_NONBLOCK);
	return 0;
}

/* ---------- the loop ---------- */

static void on_signal(struct supervisor *sv, int signo)
{
	switch (signo) {
	case SIGCHLD:
		reap(sv);
		break;
	case SIGHUP:
		if (!sv->stopping)
			reload_start(sv);
		break;
	case SIGUSR1:
		signal_generation(sv, -1, SIGUSR1, 0);   /* the workers reopen their log files */
		break;
	case SIGUSR2:
		fprintf(stderr, "daneproxy: SIGUSR2 ignored: it has no meaning in this version\n");
		break;
	case SIGTERM:
	case SIGINT:
		if (sv->stopping) {
			fprintf(stderr, "daneproxy: second signal, closing now\n");
			signal_generation(sv, -1, SIGTERM, 1);   /* a worker's second signal closes its connections */
			break;
		}
		sv->stopping = 1;
		notify_stopping();
		fprintf(stderr, "daneproxy: signal %d: no new connections, %u workers get %u ms to finish\n", signo,
			alive(sv), sv->cfg->shutdown_grace_ms);
		if (sv->pending)
			signal_generation(sv, sv->pending, SIGKILL, 1);
		signal_generation(sv, -1, SIGTERM, 1);
		sv->kill_at_ms = now_ms() + sv->cfg->shutdown_grace_ms + 5000;
		if (sv->metrics_fd >= 0) {
			close(sv->metrics_fd);
			sv->metrics_fd = -1;
		}
		/* The workers close theirs: the ports close now, and new connections are refused, not queued. */
		for (size_t i = 0; i < sv->n_socks; i++)
			close(sv->socks[i].fd);
		sv->n_socks = 0;
		break;
	}
}

/* poll_timeout - ms until the next timed event. */
static int poll_timeout(const struct supervisor *sv)
{
	uint64_t now = now_ms(), next = now + 1000;
	size_t i;

	if (sv->pending && sv->pending_deadline_ms < next)
		next = sv->pending_deadline_ms;
	if (sv->stopping && sv->kill_at_ms < next)
		next = sv->kill_at_ms;
	for (i = 0; i < METRICS_MAX_SLOTS; i++)
		if (sv->workers[i].restart_at_ms != 0 && sv->workers[i].restart_at_ms < next)
			next = sv->workers[i].restart_at_ms;
	for (i = 0; i < MAX_METRICS_CLIENTS; i++)
		if (sv->clients[i].fd >= 0 && sv->clients[i].deadline_ms < next)
			next = sv->clients[i].deadline_ms;
	return next > now ? (int)(next - now) : 0;
}

static void run(struct supervisor *sv)
{
	struct pollfd pfd[3 + MAX_METRICS_CLIENTS];
	struct metrics_client *pc[MAX_METRICS_CLIENTS];
	struct signalfd_siginfo si;
	size_t i, n, nc;
	uint64_t now;

	for (;;) {
		if (sv->stopping && alive(sv) == 0)
			return;
		n = 0;
		pfd[n++] = (struct pollfd){sv->sigfd, POLLIN, 0};
		pfd[n++] = (struct pollfd){sv->ready_rd, POLLIN, 0};
		pfd[n++] = (struct pollfd){sv->metrics_fd, POLLIN, 0};   /* a negative fd is ignored by poll */
		for (i = 0, nc = 0; i < MAX_METRICS_CLIENTS; i++) {
			if (sv->clients[i].fd >= 0) {
				pc[nc++] = &sv->clients[i];
				pfd[n++] = (struct pollfd){sv->clients[i].fd, POLLIN, 0};
			}
		}
		if (poll(pfd, n, poll_timeout(sv)) < 0 && errno != EINTR) {
			fprintf(stderr, "daneproxy: poll: %s\n", strerror(errno));
			return;
		}
		if (pfd[0].revents & POLLIN)
			while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
				on_signal(sv, (int)si.ssi_signo);
		if (pfd[1].revents & POLLIN)
			on_ready(sv);
		if (sv->metrics_fd >= 0 && (pfd[2].revents & POLLIN))
			metrics_accept(sv);
		for (i = 0; i < nc; i++)
			if (pfd[3 + i].revents & (POLLIN | POLLHUP | POLLERR))
				metrics_read(sv, pc[i]);
		now = now_ms();
		for (i = 0; i < MAX_METRICS_CLIENTS; i++)
			if (sv->clients[i].fd >= 0 && now >= sv->clients[i].deadline_ms)
				client_close(&sv->clients[i]);
		if (!sv->announced && generation_ready(sv, sv->generation))
			announce(sv);
		if (sv->pending && generation_ready(sv, sv->pending))
			reload_finish(sv);
		else if (sv->pending && now >= sv->pending_deadline_ms)
			reload_abandon(sv, "the new workers did not listen in time");
		restart_due(sv);
		if (sv->stopping && now >= sv->kill_at_ms) {
			fprintf(stderr, "daneproxy: %u workers still running after the grace period: killed\n", alive(sv));
			signal_generation(sv, -1, SIGKILL, 1);
			sv->kill_at_ms = now + 60000;
		}
	}
}

int daemon_run(struct config *cfg, daemon_config_fn build, void *arg)
{
	struct supervisor *sv = calloc(1, sizeof(*sv));
	int fds[MAX_SOCKS], pipefd[2];
	sigset_t mask;
	size_t i;
	int rc = 1;

	if (sv == NULL) {
		fprintf(stderr, "daneproxy: out of memory\n");
		free(cfg);
		return 1;
	}
	sv->cfg = cfg;
	sv->build = build;
	sv->build_arg = arg;
	sv->metrics_fd = sv->sigfd = sv->ready_rd = sv->ready_wr = -1;
	for (i = 0; i < MAX_METRICS_CLIENTS; i++)
		sv->clients[i].fd = -1;
	/* Signals arrive as reads on a descriptor: blocked here, unblocked again in every worker. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 || (sv->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0) {
		fprintf(stderr, "daneproxy: %s\n", strerror(errno));
		goto out;
	}
	sv->ready_rd = pipefd[0];
	sv->ready_wr = pipefd[1];
	fcntl(sv->ready_rd, F_SETFL, O_NONBLOCK);
	if ((sv->shm = metrics_shm_new()) == NULL) {
		fprintf(stderr, "daneproxy: shared memory for the metrics: %s\n", strerror(errno));
		goto out;
	}
	if (ca_preflight(cfg, 0) < 0 || socks_for(sv, cfg, fds) < 0 || metrics_listen(sv) < 0)
		goto out;
	socks_settle(sv);
	sv->generation = 1;
	if (spawn_generation(sv, cfg, fds, 1) < 0)
		goto out_workers;
	run(sv);
	rc = sv->start_failed ? 1 : 0;
out_workers:
	signal_generation(sv, -1, SIGKILL, 1);
	while (alive(sv) > 0 && waitpid(-1, NULL, 0) > 0)
		reap(sv);
out:
	for (i = 0; i < sv->n_socks; i++)
		close(sv->socks[i].fd);
	for (i = 0; i < MAX_METRICS_CLIENTS; i++)
		if (sv->clients[i].fd >= 0)
			close(sv->clients[i].fd);
	if (sv->metrics_fd >= 0)
		close(sv->metrics_fd);
	if (sv->sigfd >= 0)
		close(sv->sigfd);
	if (sv->ready_rd >= 0)
		close(sv->ready_rd);
	if (sv->ready_wr >= 0)
		close(sv->ready_wr);
	metrics_shm_free(sv->shm);
	free(sv->pending_cfg);
	free(sv->cfg);
	free(sv);
	return rc;
}

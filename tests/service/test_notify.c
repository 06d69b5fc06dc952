/*
 * test_notify.c - unit tests of the readiness protocol (proxy/daemon/notify.c) against a test AF_UNIX datagram
 * socket named in $NOTIFY_SOCKET, as systemd would set it: a path and the abstract namespace; no socket at all;
 * bad names; a manager that does not read (the call gives up in bounded time); STATUS= kept on one line.
 * Receives poll with a deadline; nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"

struct receiver {
	int fd;
	char dir[64];
	char path[128];
};

/* receiver_open - a datagram socket bound to a fresh path (abstract = 0) or abstract name, named in NOTIFY_SOCKET. */
static void receiver_open(struct receiver *r, int abstract)
{
	struct sockaddr_un sun;
	socklen_t len;

	memset(r, 0, sizeof(*r));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	r->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(r->fd >= 0);
	if (abstract) {
		snprintf(r->path, sizeof(r->path), "@daneproxy-test-notify-%ld-%ld", (long)getpid(), (long)time(NULL));
		memcpy(sun.sun_path, r->path, strlen(r->path));
		sun.sun_path[0] = '\0';
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(r->path));
	} else {
		snprintf(r->dir, sizeof(r->dir), "/tmp/daneproxy-notify-XXXXXX");
		assert_non_null(mkdtemp(r->dir));
		snprintf(r->path, sizeof(r->path), "%s/notify", r->dir);
		memcpy(sun.sun_path, r->path, strlen(r->path) + 1);
		len = (socklen_t)sizeof(sun);
	}
	assert_int_equal(bind(r->fd, (struct sockaddr *)&sun, len), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", r->path, 1), 0);
}

static void receiver_close(struct receiver *r)
{
	close(r->fd);
	if (r->dir[0]) {
		unlink(r->path);
		rmdir(r->dir);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* receive - the next datagram within 5 s, NUL-terminated; its length. */
static size_t receive(struct receiver *r, char *buf, size_t size)
{
	struct pollfd p = {r->fd, POLLIN, 0};
	ssize_t n;

	assert_int_equal(poll(&p, 1, 5000), 1);
	n = recv(r->fd, buf, size - 1, MSG_DONTWAIT);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (size_t)n;
}

/* nothing_queued - no further datagram is waiting. */
static void nothing_queued(struct receiver *r)
{
	char c;

	assert_int_equal(recv(r->fd, &c, 1, MSG_DONTWAIT), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
}

static unsigned long long monotonic_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull;
}

/* Without NOTIFY_SOCKET (not under systemd) every call does nothing and says so. */
static void test_unset(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_ready(), 0);
	assert_int_equal(notify_reloading(), 0);
	assert_int_equal(notify_stopping(), 0);
	assert_int_equal(notify_status("x %d", 1), 0);
	assert_int_equal(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_ready(), 0);
	unsetenv("NOTIFY_SOCKET");
}

/* Each state as its own datagram, exactly as sd_notify(3) spells it. */
static void test_states_on_a_path(void **state)
{
	struct receiver r;
	char buf[1024];
	unsigned long long before, after, usec;
	const char *p;

	(void)state;
	receiver_open(&r, 0);
	assert_int_equal(notify_ready(), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");
	assert_int_equal(notify_stopping(), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STOPPING=1");
	assert_int_equal(notify_status("serving %d listeners, %s", 3, "0 connections"), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=serving 3 listeners, 0 connections");

	/* RELOADING=1 carries the monotonic clock in microseconds, read while sending. */
	before = monotonic_usec();
	assert_int_equal(notify_reloading(), 1);
	after = monotonic_usec();
	receive(&r, buf, sizeof(buf));
	assert_true(strncmp(buf, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0);
	usec = 0;
	for (p = buf + 27; *p >= '0' && *p <= '9'; p++)
		usec = usec * 10 + (unsigned long long)(*p - '0');
	assert_true(*p == '\0' && p > buf + 27);
	assert_true(usec >= before && usec <= after);
	nothing_queued(&r);
	receiver_close(&r);
}

/* "@name": the abstract namespace (a leading NUL, no file). */
static void test_abstract_namespace(void **state)
{
	struct receiver r;
	char buf[256];

	(void)state;
	receiver_open(&r, 1);
	assert_int_equal(notify_ready(), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "READY=1");
	assert_int_equal(notify_send("STATUS=a\nREADY=1"), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=a\nREADY=1");
	receiver_close(&r);
}

/* STATUS= stays one assignment: control characters become spaces (no "\nREADY=1" smuggled in), long text is cut. */
static void test_status_one_line(void **state)
{
	struct receiver r;
	char buf[2048], longtext[1000];

	(void)state;
	receiver_open(&r, 0);
	assert_int_equal(notify_status("bad config:\nREADY=1\r\tend"), 1);
	receive(&r, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=bad config: READY=1  end");
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	assert_int_equal(notify_status("%s", longtext), 1);
	assert_int_equal(receive(&r, buf, sizeof(buf)), 7 + NOTIFY_STATUS_MAX);
	nothing_queued(&r);
	receiver_close(&r);
}

/* Names that cannot work fail with errno and nothing else: relative, too long, nobody bound, no directory. */
static void test_bad_sockets(void **state)
{
	struct receiver r;
	char longname[300];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/socket", 1);
	errno = 0;
	assert_int_equal(notify_ready(), -1);
	assert_int_equal(errno, EAFNOSUPPORT);

	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(notify_ready(), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	longname[0] = '@';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_int_equal(notify_ready(), -1);
	assert_int_equal(errno, ENAMETOOLONG);

	setenv("NOTIFY_SOCKET", "/nonexistent-daneproxy-dir/notify", 1);
	assert_int_equal(notify_stopping(), -1);
	assert_int_equal(errno, ENOENT);

	/* The socket file is left but its owner is gone. */
	receiver_open(&r, 0);
	close(r.fd);
	r.fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_int_equal(notify_status("x"), -1);
	assert_int_equal(errno, ECONNREFUSED);
	receiver_close(&r);
}

/* A manager that stops reading: once its queue is full the call gives up after NOTIFY_SEND_TIMEOUT_MS. */
static void test_full_queue_is_bounded(void **state)
{
	struct receiver r;
	struct sockaddr_un sun;
	unsigned long long t0, ms;
	int fd, i;

	(void)state;
	receiver_open(&r, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, r.path, strlen(r.path) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_true(fd >= 0);
	for (i = 0; i < 100000; i++)
		if (sendto(fd, "X=1", 3, MSG_DONTWAIT, (struct sockaddr *)&sun, sizeof(sun)) < 0)
			break;
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	t0 = monotonic_usec();
	assert_int_equal(notify_ready(), -1);
	assert_int_equal(errno, ETIMEDOUT);
	ms = (monotonic_usec() - t0) / 1000;
	assert_true(ms >= NOTIFY_SEND_TIMEOUT_MS / 2 && ms < NOTIFY_SEND_TIMEOUT_MS * 5);
	close(fd);
	receiver_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset),
		cmocka_unit_test(test_states_on_a_path),
		cmocka_unit_test(test_abstract_namespace),
		cmocka_unit_test(test_status_one_line),
		cmocka_unit_test(test_bad_sockets),
		cmocka_unit_test(test_full_queue_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

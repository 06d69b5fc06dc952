/*
 * notify.c - sd_notify(3) without libsystemd: the protocol is one datagram per state change to $NOTIFY_SOCKET,
 * which systemd documents as a stable interface for exactly this use. A socket is opened per message (states
 * change a handful of times in a process's life), so nothing is kept between calls.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* notify_addr - $NOTIFY_SOCKET as an AF_UNIX address: "/path", or "@name" for the abstract namespace (a leading
 * NUL, length counted exactly). 0, 1 when unset or empty, -1 (errno) when it is neither form or too long. */
static int notify_addr(struct sockaddr_un *sun, socklen_t *len)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (e == NULL || e[0] == '\0')
		return 1;
	n = strlen(e);
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (e[0] != '/' && e[0] != '@') {
		errno = EAFNOSUPPORT;   /* relative paths are refused by sd_notify too; vsock: is systemd 254 */
		return -1;
	}
	if (n > sizeof(sun->sun_path) - (e[0] == '/')) {   /* a path needs its NUL, an abstract name does not */
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sun->sun_path, e, n);
	if (e[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
	return 0;
}

int notify_send(const char *state)
{
	struct sockaddr_un sun;
	struct timeval tv = {NOTIFY_SEND_TIMEOUT_MS / 1000, (NOTIFY_SEND_TIMEOUT_MS % 1000) * 1000};
	socklen_t len = 0;
	size_t n = strlen(state);
	ssize_t sent;
	int fd, r, saved;

	r = notify_addr(&sun, &len);
	if (r != 0)
		return r > 0 ? 0 : -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* A manager that does not read must not stall the daemon's loop for long. */
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	do
		sent = sendto(fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sun, len);
	while (sent < 0 && errno == EINTR);
	saved = errno;
	close(fd);
	if (sent < 0) {
		errno = saved == EWOULDBLOCK ? ETIMEDOUT : saved;
		return -1;
	}
	if ((size_t)sent != n) {   /* a datagram goes whole or not at all; never act on half a state */
		errno = EMSGSIZE;
		return -1;
	}
	return 1;
}

int notify_ready(void)
{
	return notify_send("READY=1");
}

int notify_reloading(void)
{
	struct timespec ts;
	char msg[64];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return notify_send("RELOADING=1");
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
	return notify_send(msg);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

int notify_status(const char *fmt, ...)
{
	char msg[sizeof("STATUS=") + NOTIFY_STATUS_MAX];
	va_list ap;
	size_t i;

	memcpy(msg, "STATUS=", 7);
	va_start(ap, fmt);
	vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	/* One line: a '\n' in the text would start an assignment of its own ("...\nREADY=1"). */
	for (i = 7; msg[i] != '\0'; i++)
		if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f)
			msg[i] = ' ';
	return notify_send(msg);
}

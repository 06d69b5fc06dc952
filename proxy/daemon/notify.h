/*
 * notify.h - the service manager's readiness protocol (sd_notify(3)), spoken without libsystemd: each state is
 * one datagram of "KEY=VALUE" lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or "@name" in the
 * abstract namespace). Without that variable every call is a no-op. A failure only shows in the return value:
 * the daemon never stops because its manager did not listen.
 *
 * Return values, for every function: 1 sent, 0 nothing to do ($NOTIFY_SOCKET unset or empty), -1 not sent
 * (errno says why; a full receive queue gives up after NOTIFY_SEND_TIMEOUT_MS).
 */
#ifndef DANEPROXY_NOTIFY_H
#define DANEPROXY_NOTIFY_H

#define NOTIFY_SEND_TIMEOUT_MS 1000
#define NOTIFY_STATUS_MAX 400       /* STATUS= text longer than this is cut */

/* notify_send - send state as it is ("READY=1", or several "KEY=VALUE" lines separated by '\n'). */
int notify_send(const char *state);
/* notify_ready - READY=1: every listener is open (after start-up, and again after a reload). */
int notify_ready(void);
/* notify_reloading - RELOADING=1 with MONOTONIC_USEC (systemd 253 and later require it): a reload begins. */
int notify_reloading(void);
/* notify_stopping - STOPPING=1: shutting down (no new connections). */
int notify_stopping(void);
/* notify_status - STATUS=text for `systemctl status`, printf-style, on one line (control characters become ' '). */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

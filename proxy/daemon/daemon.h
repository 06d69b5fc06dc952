/*
 * daemon.h - the proxy daemon's one entry point (the daemon library's public interface).
 */
#ifndef DANEPROXY_DAEMON_H
#define DANEPROXY_DAEMON_H

#include "config.h"

/* server_run - run the proxy with a validated configuration until a signal stops it; the exit status. */
int server_run(const struct config *cfg);

#endif

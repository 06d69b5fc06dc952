/*
 * daemon.h - the proxy daemon's entry point (the daemon library's public interface).
 */
#ifndef DANEPROXY_DAEMON_H
#define DANEPROXY_DAEMON_H

#include "config.h"

/*
 * daemon_config_fn - build the configuration again, as at start (file, then command line, validated as a whole):
 * what SIGHUP reloads. Problems go to cfg->errors; -1 when it could not be built at all.
 */
typedef int (*daemon_config_fn)(struct config *cfg, void *arg);

/*
 * daemon_run - run the proxy on cfg (validated, malloc'd: owned from now on) until a signal stops it: the supervisor
 * with its workers (supervisor.c). build is called on SIGHUP. Returns the exit status.
 */
int daemon_run(struct config *cfg, daemon_config_fn build, void *arg);

#endif

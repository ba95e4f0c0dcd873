/*
 * daemon: what every Herald daemon does the same way.
 *
 * Signals: SIGTERM and SIGINT set one flag, daemon_stop (0 while running,
 * 1 once asked to stop), which the daemon's loops and its blocking waits
 * (PostgreSQL connects, Kafka polls) read; SIGPIPE is ignored, so a peer
 * closing a socket is an error return, not a death.
 *
 * Configuration: a daemon takes flags and no positional arguments; a bad
 * value stops startup with one line naming the variable or flag, and exit
 * code 2 (docs/interface.md, "Exit codes").
 */
#ifndef HERALD_DAEMON_H
#define HERALD_DAEMON_H

#include "config.h"

#include <signal.h>

/*
 * Loads prog's tables (see config_load), then starts logging as common
 * says (common is the target of the config_common_vars table).  Returns -1
 * when the daemon is to go on, otherwise the exit code: 0 after --help, 2
 * after printing "prog: <error>" to stderr.
 */
int daemon_load_config(const char *prog, const config_table *tables, size_t ntables, int argc,
                       char **argv, config_kafka_props *props, const char *usage,
                       const herald_common_config *common);

/* Set to 1 by SIGTERM or SIGINT once daemon_signals_init() has run. */
extern volatile sig_atomic_t daemon_stop;

/* Installs the handlers; call once, before any thread starts. */
void daemon_signals_init(void);

/* For a daemon whose work runs on other threads: returns once daemon_stop
 * is set (within DAEMON_STOP_POLL_MS). */
#define DAEMON_STOP_POLL_MS 100
void daemon_wait_stop(void);

#endif

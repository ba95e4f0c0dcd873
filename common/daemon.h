/*
 * daemon: what every Herald daemon does the same way.
 *
 * Signals: SIGTERM and SIGINT set one flag, daemon_stop (0 while running,
 * 1 once asked to stop), which the daemon's loops and its blocking waits
 * (PostgreSQL connects, Kafka polls) read; SIGPIPE is ignored, so a peer
 * closing a socket is an error return, not a death.
 */
#ifndef HERALD_DAEMON_H
#define HERALD_DAEMON_H

#include <signal.h>

/* Set to 1 by SIGTERM or SIGINT once daemon_signals_init() has run. */
extern volatile sig_atomic_t daemon_stop;

/* Installs the handlers; call once, before any thread starts. */
void daemon_signals_init(void);

/* For a daemon whose work runs on other threads: returns once daemon_stop
 * is set (within DAEMON_STOP_POLL_MS). */
#define DAEMON_STOP_POLL_MS 100
void daemon_wait_stop(void);

#endif

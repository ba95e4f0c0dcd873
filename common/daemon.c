/*
 * daemon: the signal handling shared by the daemons (see daemon.h).
 *
 * A handler that only sets a sig_atomic_t is async-signal-safe and works
 * whichever thread the signal lands on; the loops poll the flag at least
 * every wait they make, so shutdown starts within one tick.
 */
#include "daemon.h"
#include "log.h"

#include <stddef.h>
#include <stdio.h>
#include <time.h>

volatile sig_atomic_t daemon_stop = 0;

int daemon_load_config(const char *prog, const config_table *tables, size_t ntables, int argc,
                       char **argv, config_kafka_props *props, const char *usage,
                       const herald_common_config *common)
{
    char err[1024];
    config_status st =
        config_load(tables, ntables, argc, argv, NULL, props, usage, err, sizeof err);
    if (st == CONFIG_HELP)
        return 0;
    if (st == CONFIG_ERROR) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    log_init(prog, (log_level)common->log_level, (log_format)common->log_format);
    return -1;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    daemon_stop = 1;
}

void daemon_signals_init(void)
{
    struct sigaction sa = {.sa_handler = on_stop_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void daemon_wait_stop(void)
{
    /* The signal may land on any thread, so this thread cannot count on
     * being interrupted: it looks at the flag every tick. */
    const struct timespec tick = {0, DAEMON_STOP_POLL_MS * 1000000L};
    while (!daemon_stop)
        nanosleep(&tick, NULL);
}

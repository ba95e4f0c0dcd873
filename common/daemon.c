/*
 * daemon: the signal handling shared by the daemons (see daemon.h).
 *
 * A handler that only sets a sig_atomic_t is async-signal-safe and works
 * whichever thread the signal lands on; the loops poll the flag at least
 * every wait they make, so shutdown starts within one tick.
 */
#include "daemon.h"
#include "log.h"
#include "opsserver.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "timeutil.h"

volatile sig_atomic_t daemon_stop = 0;

const config_var daemon_config_vars[] = {
    {.env = "HERALD_STALL_TIMEOUT",
     .flag = "stall-timeout",
     .type = CONFIG_DURATION,
     .def = "60s",
     .offset = offsetof(herald_common_config, stall_ms),
     .min = 1000,
     .max = 3600000,
     .help = "/healthz fails once the main loop has not turned for this long"},
    {0},
};

void daemon_heartbeat_init(daemon_heartbeat *hb, long stall_ms)
{
    hb->stall_ms = stall_ms > 0 ? stall_ms : DAEMON_STALL_DEFAULT_MS;
    daemon_beat(hb);
}

void daemon_beat(daemon_heartbeat *hb)
{
    atomic_store(&hb->beat_ms, timeutil_monotonic_ms());
}

bool daemon_alive(daemon_heartbeat *hb, const char *what, char *reason, size_t reasonlen)
{
    int64_t age = timeutil_monotonic_ms() - atomic_load(&hb->beat_ms);
    if (age <= hb->stall_ms)
        return true;
    snprintf(reason, reasonlen, "%s stalled for %" PRId64 " ms", what, age);
    return false;
}

void daemon_health_init(daemon_health *h, const char *loop, const char *fatal_what, long stall_ms)
{
    h->loop = loop;
    h->fatal_what = fatal_what;
    atomic_store(&h->fatal, false);
    atomic_store(&h->pg_up, true);
    daemon_heartbeat_init(&h->heartbeat, stall_ms);
}

static bool health_check(void *ctx, char *reason, size_t reasonlen)
{
    daemon_health *h = ctx;
    if (atomic_load(&h->fatal)) {
        snprintf(reason, reasonlen, "%s", h->fatal_what);
        return false;
    }
    return daemon_alive(&h->heartbeat, h->loop, reason, reasonlen);
}

static bool ready_check(void *ctx, char *reason, size_t reasonlen)
{
    daemon_health *h = ctx;
    if (!atomic_load(&h->pg_up)) {
        snprintf(reason, reasonlen, "PostgreSQL unavailable");
        return false;
    }
    return health_check(ctx, reason, reasonlen);
}

opsserver *daemon_ops_start(const char *addr, metrics_registry *reg, daemon_health *h, char *err,
                            size_t errlen)
{
    return opsserver_start(addr, reg, health_check, ready_check, h, err, errlen);
}

/*
 * Loads prog's tables (see config_load), then starts logging as common
 * says.  Returns -1 when the daemon is to go on, otherwise the exit code: 0
 * after --help, 2 after printing "prog: <error>" to stderr.
 */
static int daemon_load_config(const char *prog, const config_table *tables, size_t ntables,
                              int argc, char **argv, config_kafka_props *props, const char *usage,
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

int daemon_main(const daemon_spec *spec, int argc, char **argv)
{
    config_table tables[4] = {{config_common_vars, spec->common}, {spec->vars, spec->cfg}};
    size_t ntables = 2;
    if (spec->heartbeat)
        tables[ntables++] = (config_table){daemon_config_vars, spec->common};
    if (spec->group_member)
        tables[ntables++] = (config_table){config_member_vars, spec->common};
    char err[1024];
    int config_error = 0;
    void *d = NULL;

    int rc = daemon_load_config(spec->prog, tables, ntables, argc, argv, spec->props, spec->usage,
                                spec->common);
    if (rc >= 0)
        goto out;
    if (spec->process_init != NULL)
        spec->process_init();
    daemon_signals_init();

    d = spec->start(spec->cfg, spec->common, spec->props, &config_error, err, sizeof err);
    if (d == NULL) {
        if (config_error)
            fprintf(stderr, "%s: %s\n", spec->prog, err);
        else
            LOG_ERROR(NULL, "cannot start: %s", err);
        rc = config_error ? 2 : (daemon_stop ? 0 : 1);
    } else {
        rc = spec->run(d);
        spec->free(d);
    }
    if (spec->process_cleanup != NULL)
        spec->process_cleanup();
out:
    config_free(tables, ntables, spec->props);
    return rc;
}

void daemon_shutdown(daemon_shutdown_stage stage)
{
    static const char *const what[] = {
        [DAEMON_SHUTDOWN_INTAKE] = "stop intake",
        [DAEMON_SHUTDOWN_DRAIN] = "finish work in flight",
        [DAEMON_SHUTDOWN_DURABLE] = "make outcomes durable",
        [DAEMON_SHUTDOWN_COMMIT] = "commit offsets, leave the group",
        [DAEMON_SHUTDOWN_RELEASE] = "flush, report, release",
    };
    if (stage >= DAEMON_SHUTDOWN_INTAKE && stage <= DAEMON_SHUTDOWN_RELEASE)
        LOG_INFO(NULL, "shutdown %d/%d: %s", (int)stage, (int)DAEMON_SHUTDOWN_RELEASE, what[stage]);
}

void daemon_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void daemon_curl_cleanup(void)
{
    curl_global_cleanup();
}

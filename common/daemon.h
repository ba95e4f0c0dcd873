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
 *
 * Liveness: a daemon whose main loop must keep turning beats a
 * daemon_heartbeat each pass; its /healthz fails once the last beat is older
 * than HERALD_STALL_TIMEOUT (docs/configuration.md, "Health and shutdown").
 *
 * daemon_main() is the whole life of a daemon process in that order:
 * configuration, logging, process-wide setup, signals, start, run until
 * asked to stop, free.  A daemon's main() fills in a daemon_spec.
 */
#ifndef HERALD_DAEMON_H
#define HERALD_DAEMON_H

#include "config.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Set to 1 by SIGTERM or SIGINT once daemon_signals_init() has run. */
extern volatile sig_atomic_t daemon_stop;

/* Installs the handlers; call once, before any thread starts. */
void daemon_signals_init(void);

/* For a daemon whose work runs on other threads: returns once daemon_stop
 * is set (within DAEMON_STOP_POLL_MS). */
#define DAEMON_STOP_POLL_MS 100
void daemon_wait_stop(void);

/* HERALD_STALL_TIMEOUT, into herald_common_config.stall_ms. */
extern const config_var daemon_config_vars[];

typedef struct {
    _Atomic int64_t beat_ms; /* monotonic ms of the last beat */
    long stall_ms;
} daemon_heartbeat;

/* Starts the clock: the loop counts as alive from now.  stall_ms 0 (not
 * configured): HERALD_STALL_TIMEOUT's default. */
#define DAEMON_STALL_DEFAULT_MS 60000
void daemon_heartbeat_init(daemon_heartbeat *hb, long stall_ms);
void daemon_beat(daemon_heartbeat *hb);

/* false, with "<what> stalled for N ms" in reason, once the last beat is
 * older than the threshold. */
bool daemon_alive(daemon_heartbeat *hb, const char *what, char *reason, size_t reasonlen);

/*
 * The health of a daemon with a main loop, as its metrics port reports it
 * (docs/configuration.md, "Health and shutdown"): /healthz (liveness) fails
 * on a fatal error or a stalled loop, and a restart is the cure; /readyz
 * fails on those and also while PostgreSQL is down, which waiting cures.
 */
typedef struct {
    daemon_heartbeat heartbeat; /* beaten each pass of the main loop */
    const char *loop;           /* "main loop": named when it stalls */
    const char *fatal_what;     /* "fatal Kafka error": said when fatal is set */
    atomic_bool fatal;
    atomic_bool pg_up;
} daemon_health;

/* Alive and ready from now; stall_ms as for daemon_heartbeat_init. */
void daemon_health_init(daemon_health *h, const char *loop, const char *fatal_what, long stall_ms);

/* The metrics, /healthz and /readyz server on addr, answering from h (see opsserver_start). */
struct opsserver;
struct metrics_registry;
struct opsserver *daemon_ops_start(const char *addr, struct metrics_registry *reg, daemon_health *h,
                                   char *err, size_t errlen) __attribute__((warn_unused_result));

typedef struct {
    const char *prog;  /* "herald-dispatcher": log and error prefix */
    const char *usage; /* first line of --help */
    /* The program's own settings and where they go. */
    const config_var *vars;
    void *cfg;
    /* Where the shared settings go (config_common_vars; daemon_config_vars
     * too when heartbeat is set). */
    herald_common_config *common;
    config_kafka_props *props;
    bool heartbeat; /* the daemon has a main loop and takes HERALD_STALL_TIMEOUT */
    /* its consumer joins a group: it takes config_member_vars into common->member */
    bool group_member;
    /* Optional process-wide setup after logging starts, and its undoing
     * (daemon_curl_init/daemon_curl_cleanup for a daemon that calls HTTP). */
    void (*process_init)(void);
    void (*process_cleanup)(void);
    /*
     * Builds the daemon.  On failure: NULL, err set and *config_error set when
     * err is about a setting (exit 2; otherwise 1, or 0 when asked to stop
     * while starting).
     */
    void *(*start)(const void *cfg, const herald_common_config *common,
                   const config_kafka_props *props, int *config_error, char *err, size_t errlen);
    int (*run)(void *daemon); /* until daemon_stop; the exit code */
    void (*free)(void *daemon);
} daemon_spec;

int daemon_main(const daemon_spec *spec, int argc, char **argv);

/*
 * The start, run and free of a daemon_spec, named spec_start, spec_run and
 * spec_free, for a daemon built as
 *     T *new_fn(const C *cfg, const herald_common_config *, const config_kafka_props *,
 *               const volatile sig_atomic_t *stop, int *config_error, char *err, size_t);
 *     int run_fn(T *);  void free_fn(T *);
 */
#define DAEMON_ADAPTERS(new_fn, run_fn, free_fn)                                                   \
    static void *spec_start(const void *cfg, const herald_common_config *common,                   \
                            const config_kafka_props *props, int *config_error, char *err,         \
                            size_t errlen)                                                         \
    {                                                                                              \
        return new_fn(cfg, common, props, &daemon_stop, config_error, err, errlen);                \
    }                                                                                              \
    static int spec_run(void *d)                                                                   \
    {                                                                                              \
        return run_fn(d);                                                                          \
    }                                                                                              \
    static void spec_free(void *d)                                                                 \
    {                                                                                              \
        free_fn(d);                                                                                \
    }

/*
 * The stages of a graceful stop, in the order every daemon goes through
 * the ones it has (docs/interface.md section 4).  Each is logged as
 * "shutdown N/5: <what>" when it starts, so an operator reading one
 * daemon's log knows where a slow stop is.
 */
typedef enum {
    DAEMON_SHUTDOWN_INTAKE = 1, /* take no new work */
    DAEMON_SHUTDOWN_DRAIN,      /* finish or hand back the work in flight, within a deadline */
    DAEMON_SHUTDOWN_DURABLE,    /* make outcomes durable: produce them, write their rows */
    DAEMON_SHUTDOWN_COMMIT,     /* commit the offsets of durable work, leave the group */
    DAEMON_SHUTDOWN_RELEASE,    /* flush what is left, report it, free */
} daemon_shutdown_stage;

void daemon_shutdown(daemon_shutdown_stage stage);

/*
 * libcurl's process-wide set-up and its undoing, for process_init and
 * process_cleanup: once per process, before any thread uses curl, never
 * from a module that runs beside others (curl_global_cleanup under a
 * running transfer is undefined).
 */
void daemon_curl_init(void);
void daemon_curl_cleanup(void);

#endif

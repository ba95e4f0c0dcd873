/*
 * replays: the gateway's background replays (POST /v1/replays).
 *
 * A run is recorded in replay_runs (migration 021) by the request that
 * starts it, then executed by a thread of its own with common/replayrun.c,
 * the code of `heraldctl replay`, which updates the row's counts as it goes
 * (about twice a second) and its state at the end: done, or failed with
 * the error.  At most REPLAYS_MAX_RUNNING run at once in one gateway.
 * Stopping the gateway stops its runs, which end failed ("the gateway
 * stopped"); a run whose gateway died stays running with a stale
 * updated_at.
 */
#ifndef HERALD_REPLAYS_H
#define HERALD_REPLAYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "replay.h"
#include "replayrun.h"

#define REPLAYS_MAX_RUNNING 4

typedef struct replays replays;

typedef struct replays_config {
    const char *brokers;
    const config_kafka_props *props;
    const char *database_url;
    const char *events_topic; /* prefixed */
    int timeout_ms;           /* longest wait for the broker */
} replays_config;

/* What one run replays; strings are copied by replays_start(). */
typedef struct replays_request {
    replay_filter filter; /* from_ms and to_ms both set */
    bool redeliver;
} replays_request;

typedef enum {
    REPLAYS_STARTED = 0,
    REPLAYS_BUSY,   /* REPLAYS_MAX_RUNNING run already */
    REPLAYS_FAILED, /* no memory or no thread (err) */
} replays_status;

/* Copies cfg.  NULL when out of memory. */
replays *replays_new(const replays_config *cfg);

/* Asks the runs to stop and waits for them; frees r.  NULL: nothing. */
void replays_free(replays *r);

/* Starts the run recorded under id (a UUID) in a thread of its own. */
replays_status replays_start(replays *r, const char *id, const replays_request *req, char *err,
                             size_t errlen) __attribute__((warn_unused_result));

/* A dry run now, on the caller's thread: how many events the window covers into *events. */
replayrun_result replays_count(replays *r, const replays_request *req, int64_t *events, char *err,
                               size_t errlen) __attribute__((warn_unused_result));

#endif

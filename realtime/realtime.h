/*
 * realtime: herald-realtime, the daemon that pushes each change of a
 * user's inbox to that user's open WebSocket connections
 * (docs/inapp.md, "Live updates").
 *
 * Two threads.  The Kafka thread reads every partition of
 * <prefix>inbox.updates from the end, with no consumer group, turns each
 * record into the event its user's clients get (rtframe) and hands it over
 * (handoff), waking the service thread.  The service thread runs
 * libwebsockets: it admits connections (path, user token, limits), reads
 * the counts and the catch-up from PostgreSQL at connect, and queues each
 * handed-over event on every connection of its user (outq), skipping what
 * a connection already has and closing one that falls too far behind.
 *
 * Connections: GET /v1/users/{id}/live, upgraded to a WebSocket; the token
 * comes as ?token= (what a browser can send) or as an Authorization
 * Bearer header.  Refusals are HTTP answers before the upgrade.
 */
#ifndef HERALD_REALTIME_H
#define HERALD_REALTIME_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "realtime_config.h"

typedef struct realtime realtime;

/*
 * Builds the daemon: PostgreSQL, the consumer, the listener, the ops
 * server.  cfg, common and props must outlive it.  On failure NULL with
 * err set, and *config_error set when err is about a setting.
 */
realtime *realtime_new(const realtime_config *cfg, const herald_common_config *common,
                       const config_kafka_props *props, const volatile sig_atomic_t *stop,
                       int *config_error, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Serves until *stop, then closes every connection with 1012; the exit code. */
int realtime_run(realtime *rt);

/* NULL is a no-op. */
void realtime_free(realtime *rt);

#endif

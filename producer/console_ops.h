/*
 * console_ops: the gateway's view of the whole pipeline, for the ops
 * console — where the daemons answer (HERALD_STATUS_*), the status document
 * of common/opsstatus.c on demand, and a sampler thread that keeps one
 * hour of samples in memory (docs/operations.md).
 *
 * Every HERALD_CONSOLE_SAMPLE_INTERVAL_S seconds (0: no sampler) the
 * thread gathers the status document and each daemon's /metrics, and keeps
 *   {"t":ms, "lag":{"<group>":n}, "dlq":n, "retry":{"<topic>":n},
 *    "rates":{"gateway.accepted":per_s,...}, "health":{"<daemon>":bool}}
 * where a rate is the delta of a daemon's own counter over the time since
 * the sample before, per second (absent on the first sample, and while the
 * daemon does not answer).  A pass whose broker does not answer keeps
 * {"t", "error", "rates"}.
 */
#ifndef HERALD_CONSOLE_OPS_H
#define HERALD_CONSOLE_OPS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "config.h"
#include "opsstatus.h"

typedef struct console_ops console_ops;

typedef struct console_ops_config {
    const herald_common_config *common;
    const config_kafka_props *kafka_props;
    const char *groups;                   /* NULL: the daemons' own */
    const char *addrs[OPSSTATUS_DAEMONS]; /* by opsstatus_daemon_names; all set */
    long timeout_ms;
    long health_timeout_ms;
    long sample_interval_s; /* 0: no sampler */
} console_ops_config;

/* Copies what cfg says and starts the sampler; NULL with err. */
console_ops *console_ops_start(const console_ops_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops the sampler (waits for a pass under way) and frees o.  NULL: nothing. */
void console_ops_free(console_ops *o);

/* The status document now, with held work counted on conn (NULL: unreachable). */
opsstatus_result console_ops_status(console_ops *o, PGconn *conn, json_t **out, char *err,
                                    size_t errlen) __attribute__((warn_unused_result));

/* {"interval_s":N,"samples":[...]} of the samples taken at or after since_ms; NULL: no memory. */
json_t *console_ops_history(console_ops *o, int64_t since_ms);

#endif

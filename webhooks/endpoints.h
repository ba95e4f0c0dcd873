/*
 * endpoints: what the sender reads and writes of webhook_endpoints and
 * webhook_attempts: an endpoint's URL, secret and state; each attempt,
 * with the counters and the disabling rule it feeds.
 *
 * The rule (docs/webhooks.md, "Disabling"): an endpoint is disabled when
 * an attempt fails that makes `disable_after` failed attempts in a row,
 * the first of them at least `disable_min_ms` before it.  A success ends
 * the run.  The endpoint row records when and why; the gateway's re-enable
 * clears it.
 */
#ifndef HERALD_WEBHOOKS_ENDPOINTS_H
#define HERALD_WEBHOOKS_ENDPOINTS_H

#include <stdbool.h>
#include <stdint.h>

#include "pg.h"

typedef struct endpoints_info {
    char url[2049];
    char secret[257];
    bool enabled;
} endpoints_info;

/* Reads endpoint id into *out: 1, 0 when there is no such endpoint, -1 (err) on error. */
int endpoints_load(pg_conn *db, const char *id, endpoints_info *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

typedef struct endpoints_attempt {
    const char *call_id;
    const char *endpoint_id;
    const char *type;
    int attempt;
    long http_status; /* 0: no answer */
    int64_t latency_ms;
    const char *outcome; /* ok, retry, dead; skipped: not tried (counters untouched) */
    const char *error;   /* NULL on success */
} endpoints_attempt;

/*
 * Logs the attempt and updates the endpoint's counters in one statement;
 * *disabled_now is set when this attempt disabled the endpoint.
 */
pg_status endpoints_record(pg_conn *db, const endpoints_attempt *a, long disable_after,
                           long disable_min_ms, bool *disabled_now, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

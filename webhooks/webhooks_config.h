/*
 * webhooks_config: the settings of herald-webhooks, in one table that
 * drives parsing, validation and --help (config.h, docs/configuration.md).
 */
#ifndef HERALD_WEBHOOKS_CONFIG_H
#define HERALD_WEBHOOKS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef struct webhooks_config {
    char *metrics_addr;
    char *group_id;
    int role;            /* webhooks_role */
    long feed_batch;     /* rows of a stream read per pass */
    long feed_idle_ms;   /* pause of the feeder when there was nothing new */
    long timeout_ms;     /* one POST */
    long concurrency;    /* POSTs in flight at once, at most one per endpoint */
    long max_attempts;   /* of one call, the first included */
    long retry_base_ms;  /* first retry's delay ceiling */
    long retry_max_ms;   /* no delay above this (a Retry-After may exceed it) */
    long retry_hold_max; /* calls held in memory (retries not due, waiting) before intake stops */
    long disable_after;  /* failed attempts in a row that disable an endpoint ... */
    long disable_min_ms; /* ... when they span at least this long */
    long drain_ms;       /* at shutdown, how long answers and acknowledgements may take */
    long retention_ms;   /* attempts, calls and inbox changes older than this are deleted */
} webhooks_config;

typedef enum {
    WEBHOOKS_ROLE_ALL = 0, /* feeder (when it holds the lock) and sender */
    WEBHOOKS_ROLE_FEEDER,
    WEBHOOKS_ROLE_SENDER,
} webhooks_role;

/* Terminated by an all-NULL entry; target a webhooks_config. */
extern const config_var webhooks_config_vars[];

#endif

/*
 * dispatcher_config: the settings of herald-dispatcher, in one table that
 * drives parsing, validation and --help (config.h).  The shared settings
 * (brokers, database, topic prefix, logging) come from config_common_vars.
 */
#ifndef HERALD_DISPATCHER_CONFIG_H
#define HERALD_DISPATCHER_CONFIG_H

#include <stdbool.h>

#include "config.h"

typedef struct dispatcher_config {
    char *metrics_addr;
    char *group_id;
    char *transactional_id; /* NULL: herald-dispatcher-<hostname>-<pid> */
    long batch_size;        /* events per transaction */
    long batch_ms;          /* longest wait to fill a batch */
    long status_part;       /* events whose status rows go in one INSERT */
    long cache_size;        /* users in the preferences cache */
    long cache_max_bytes;
    long cache_ttl_ms;
    long cache_negative_ttl_ms;
    long template_ttl_ms;
    long broadcast_page;  /* subscribers per keyset query */
    long broadcast_chunk; /* per-user events per broadcast transaction */
    long sms_max_segments;
    long pg_retry_max_ms;     /* longest pause between PostgreSQL retries */
    long digest_scan_ms;      /* interval between looks for due digest windows */
    long digest_close_batch;  /* windows per closing transaction */
    long digest_retention_ms; /* finished windows and follow-ups kept this long */
    long shutdown_ms;         /* deadline for the producer flush at exit */
} dispatcher_config;

/* Terminated by an all-NULL entry; target a dispatcher_config. */
extern const config_var dispatcher_config_vars[];

#endif

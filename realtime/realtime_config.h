/*
 * realtime_config: the settings of herald-realtime, in one table that
 * drives parsing, validation and --help (config.h).  The shared settings
 * (brokers, database, topic prefix, logging) come from config_common_vars.
 */
#ifndef HERALD_REALTIME_CONFIG_H
#define HERALD_REALTIME_CONFIG_H

#include "config.h"

typedef struct realtime_config {
    char *listen;            /* the WebSocket listener, host:port */
    char *metrics_addr;      /* /metrics, /healthz, /readyz */
    char *token_secret;      /* HERALD_USER_TOKEN_SECRET */
    long max_connections;    /* on this instance */
    long max_per_user;       /* of one user on this instance */
    long queue;              /* live events waiting to be written to one connection */
    long ping_interval_ms;   /* idle time before a ping; twice it without a pong closes */
    long shutdown_ms;        /* at exit, how long clients get to take their close */
    long pg_statement_ms;    /* longest connect-time query */
    long pg_pool;            /* connect-time query threads, a connection each */
    long partition_check_ms; /* how often inbox.updates is checked for new partitions */
} realtime_config;

/* Terminated by an all-NULL entry; target a realtime_config. */
extern const config_var realtime_config_vars[];

#endif

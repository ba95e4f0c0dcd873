/*
 * realtime_config: see realtime_config.h.
 */
#include "realtime_config.h"

#include <stddef.h>

#include "usertoken.h"

#define F(field) offsetof(realtime_config, field)

const config_var realtime_config_vars[] = {
    {.env = "HERALD_REALTIME_LISTEN",
     .flag = "listen",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:8090",
     .offset = F(listen),
     .help = "WebSocket listen address (port 0: any free port)"},
    {.env = "HERALD_METRICS_ADDR",
     .flag = "metrics-addr",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:9106",
     .offset = F(metrics_addr),
     .help = "/metrics, /healthz and /readyz listen address (port 0: any free port)"},
    {.env = "HERALD_USER_TOKEN_SECRET",
     .type = CONFIG_STRING,
     .offset = F(token_secret),
     .flags = CONFIG_SECRET | CONFIG_REQUIRED,
     .check = usertoken_check_secret,
     .help = "the key user tokens are signed with (at least 32 bytes)"},
    {.env = "HERALD_REALTIME_MAX_CONNECTIONS",
     .flag = "max-connections",
     .type = CONFIG_INT,
     .def = "10000",
     .offset = F(max_connections),
     .min = 1,
     .max = 1000000,
     .help = "open connections on this instance; more are refused with 503"},
    {.env = "HERALD_REALTIME_MAX_PER_USER",
     .type = CONFIG_INT,
     .def = "10",
     .offset = F(max_per_user),
     .min = 1,
     .max = 1000,
     .help = "open connections of one user on this instance; more are refused with 429"},
    {.env = "HERALD_REALTIME_QUEUE",
     .type = CONFIG_INT,
     .def = "64",
     .offset = F(queue),
     .min = 1,
     .max = 100000,
     .help = "live events waiting to be written to one connection; a client that lets more "
             "pile up is disconnected (1013)"},
    {.env = "HERALD_REALTIME_PING_INTERVAL",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = F(ping_interval_ms),
     .min = 1000,
     .max = 3600000,
     .help = "a connection idle this long is pinged; one silent for twice as long is closed "
             "(whole seconds)"},
    {.env = "HERALD_SHUTDOWN_TIMEOUT",
     .type = CONFIG_DURATION,
     .def = "5s",
     .offset = F(shutdown_ms),
     .min = 0,
     .max = 600000,
     .help = "at exit, how long clients get to take their close (1012) before sockets drop"},
    {.env = "HERALD_REALTIME_PG_TIMEOUT",
     .type = CONFIG_DURATION,
     .def = "2s",
     .offset = F(pg_statement_ms),
     .min = 10,
     .max = 60000,
     .help = "longest connect-time query (counts and catch-up) before the connection is "
             "closed with 1011"},
    {.env = "HERALD_REALTIME_PG_POOL",
     .type = CONFIG_INT,
     .def = "2",
     .offset = F(pg_pool),
     .min = 1,
     .max = 64,
     .help = "threads running the connect-time queries, each with its own PostgreSQL "
             "connection"},
    {.env = "HERALD_REALTIME_PARTITION_CHECK",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = F(partition_check_ms),
     .min = 1000,
     .max = 3600000,
     .help = "how often inbox.updates is checked for partitions added since startup, which "
             "are then read from their beginning"},
    {0},
};

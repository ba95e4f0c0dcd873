/*
 * dispatcher_config: see dispatcher_config.h.
 */
#include "dispatcher_config.h"

#include <stddef.h>

#define F(field) offsetof(dispatcher_config, field)

const config_var dispatcher_config_vars[] = {
    {.env = "HERALD_METRICS_ADDR", .flag = "metrics-addr", .type = CONFIG_ADDR,
     .def = "127.0.0.1:9101", .offset = F(metrics_addr),
     .help = "/metrics and /healthz listen address (port 0: any free port)"},
    {.env = "HERALD_DISPATCHER_GROUP", .flag = "group", .type = CONFIG_STRING,
     .def = "herald-dispatcher", .offset = F(group_id),
     .help = "consumer group of the events topic"},
    {.env = "HERALD_DISPATCHER_TRANSACTIONAL_ID", .flag = "transactional-id",
     .type = CONFIG_STRING, .offset = F(transactional_id),
     .help = "Kafka transactional.id (default herald-dispatcher-<hostname>-<pid>)"},
    {.env = "HERALD_DISPATCHER_BATCH_SIZE", .flag = "batch-size", .type = CONFIG_INT,
     .def = "2000", .offset = F(batch_size), .min = 1, .max = 100000,
     .help = "most events processed in one transaction"},
    {.env = "HERALD_DISPATCHER_BATCH_WAIT", .flag = "batch-wait", .type = CONFIG_DURATION,
     .def = "30ms", .offset = F(batch_ms), .min = 1, .max = 10000,
     .help = "longest wait for a batch to fill before it is processed (counted from the first "
             "event's timestamp; the broker holds a fetch up to 20 ms more)"},
    {.env = "HERALD_DISPATCHER_STATUS_PART", .type = CONFIG_INT, .def = "250",
     .offset = F(status_part), .min = 1, .max = 100000,
     .help = "events whose status rows are inserted by one statement; the next part is "
             "fanned out while two connections insert the last two"},
    {.env = "HERALD_CACHE_SIZE", .flag = "cache-size", .type = CONFIG_INT, .def = "100000",
     .offset = F(cache_size), .min = 1, .max = 100000000,
     .help = "users held in the preferences cache"},
    {.env = "HERALD_CACHE_MAX_BYTES", .type = CONFIG_INT, .def = "67108864",
     .offset = F(cache_max_bytes), .min = 0, .max = 68719476736L,
     .help = "approximate memory budget of the preferences cache in bytes (0: entries only)"},
    {.env = "HERALD_CACHE_TTL", .flag = "cache-ttl", .type = CONFIG_DURATION, .def = "60s",
     .offset = F(cache_ttl_ms), .min = 1, .max = 86400000,
     .help = "how long a cached user is trusted (+-10% jitter; changes invalidate at once)"},
    {.env = "HERALD_CACHE_NEGATIVE_TTL", .type = CONFIG_DURATION, .def = "5s",
     .offset = F(cache_negative_ttl_ms), .min = 1, .max = 86400000,
     .help = "how long an unknown user is remembered as unknown"},
    {.env = "HERALD_TEMPLATE_CACHE_TTL", .type = CONFIG_DURATION, .def = "5m",
     .offset = F(template_ttl_ms), .min = 1, .max = 86400000,
     .help = "how long cached templates are trusted (changes invalidate at once)"},
    {.env = "HERALD_BROADCAST_PAGE", .type = CONFIG_INT, .def = "1000",
     .offset = F(broadcast_page), .min = 1, .max = 100000,
     .help = "subscribers read per query when a topic broadcast fans out"},
    {.env = "HERALD_BROADCAST_CHUNK", .type = CONFIG_INT, .def = "10000",
     .offset = F(broadcast_chunk), .min = 1, .max = 1000000,
     .help = "per-user events per broadcast transaction (and progress record)"},
    {.env = "HERALD_SMS_MAX_SEGMENTS", .type = CONFIG_INT, .def = "10",
     .offset = F(sms_max_segments), .min = 1, .max = 10,
     .help = "longer SMS bodies are truncated to this many parts"},
    {.env = "HERALD_DISPATCHER_PG_RETRY_MAX", .type = CONFIG_DURATION, .def = "10s",
     .offset = F(pg_retry_max_ms), .min = 10, .max = 600000,
     .help = "longest pause between retries while PostgreSQL is unavailable"},
    {.env = "HERALD_SHUTDOWN_TIMEOUT", .type = CONFIG_DURATION, .def = "10s",
     .offset = F(shutdown_ms), .min = 0, .max = 600000,
     .help = "at exit, how long the producer may take to flush"},
    {0},
};

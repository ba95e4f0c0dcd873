/*
 * gateway: herald-gateway as a whole — its configuration and its lifecycle.
 *
 * gateway_start() builds the parts (PostgreSQL pool, key cache, rate
 * limiter, Kafka publisher, metrics, HTTP server) and serves until
 * gateway_stop(), which shuts down in order: stop accepting connections,
 * let requests in flight finish (their records are acknowledged or time
 * out), flush the producer within a deadline, then free everything.  Tests
 * run a gateway in-process with these two calls.
 */
#ifndef HERALD_GATEWAY_H
#define HERALD_GATEWAY_H

#include "config.h"
#include "opsstatus.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gateway_config {
    herald_common_config common;
    config_kafka_props kafka_props;
    char *http_addr;
    long max_body_bytes;
    long rate_limit; /* requests per second per API key; 0 = unlimited */
    long rate_burst;
    long publish_timeout_ms;
    long queue_max_messages;
    long linger_ms;
    long http_threads;
    long client_timeout_ms;
    long header_timeout_ms;
    long min_body_rate;
    long max_connections;
    long db_pool_size;
    long auth_cache_ms;
    long shutdown_timeout_ms;
    bool access_log;
    char *user_token_secret;  /* NULL: user tokens are refused */
    char *unsubscribe_secret; /* NULL: /v1/unsubscribe answers 503 */
    char *cors_origins;       /* NULL or "": no CORS headers (cors.h) */
    char *console_secret;     /* NULL: the console is disabled (docs/console.md) */
    long console_session_ms;
    bool console_cookie_secure;
    /* delivery receipts (receipts_api.h) */
    char *receipts_base_url;
    char *twilio_auth_token;
    char *sns_cert_file;
    char *sns_topic_arns;
    char *sns_confirm_hosts;
    char *http_callback_secret;
    char *email_bounce_address;
    long soft_bounce_limit;
    /* the ops console's status and history (console_ops.h) */
    char *status_group;
    char *status_addrs[OPSSTATUS_DAEMONS]; /* gateway's NULL: its own listener */
    long status_timeout_ms;
    long status_health_timeout_ms;
    long console_sample_interval_s;
} gateway_config;

/*
 * Fills cfg from defaults, the environment and argv (see --help).  Returns
 * CONFIG_OK, CONFIG_HELP (usage printed: exit 0) or CONFIG_ERROR (err names
 * the variable or flag: exit 2).  gateway_config_free() releases cfg in
 * every case.
 */
/* The gateway's own settings (beside config_common_vars) and --help's first line. */
extern const config_var gateway_config_vars[];
extern const char gateway_usage[];

config_status gateway_config_load(gateway_config *cfg, int argc, char **argv, char *err,
                                  size_t errlen) __attribute__((warn_unused_result));
void gateway_config_free(gateway_config *cfg);

typedef struct gateway gateway;

/* Starts serving; cfg is copied where needed.  NULL with err set. */
gateway *gateway_start(const gateway_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The port the HTTP listener is bound to. */
uint16_t gateway_port(const gateway *g);

/* Shuts down gracefully (see above) and frees g.  Returns the number of
 * records that could not be flushed in time (0 on a clean stop).  NULL: 0. */
int gateway_stop(gateway *g);

#endif

/*
 * worker_config: the settings of herald-worker, in one table that drives
 * parsing, validation and --help (config.h).
 *
 * Per-channel settings exist once per channel (HERALD_EMAIL_RATE,
 * HERALD_SMS_RATE, ...) and are stored in arrays indexed by
 * delivery_channel; the worker reads the row of its --channel.
 */
#ifndef HERALD_CHANNELS_WORKER_CONFIG_H
#define HERALD_CHANNELS_WORKER_CONFIG_H

#include <stdbool.h>

#include "config.h"
#include "delivery.h"

typedef struct worker_config {
    int channel; /* delivery_channel, from --channel */
    char *metrics_addr;
    char *worker_id;
    char *group_id;
    long concurrency;
    long lease_ms;
    long drain_ms;
    long provider_timeout_ms;
    long retry_base_ms;
    long retry_max_ms;
    long retry_hold_max;
    long breaker_failures;
    long breaker_open_ms;
    bool tls_insecure;

    /* per channel, indexed by delivery_channel */
    int provider[DELIVERY_CHANNEL_COUNT];          /* index into worker_config_providers */
    int fallback_provider[DELIVERY_CHANNEL_COUNT]; /* "none" = 0 */
    char *fallback_url[DELIVERY_CHANNEL_COUNT];
    char *fallback_auth_token[DELIVERY_CHANNEL_COUNT];
    long rate[DELIVERY_CHANNEL_COUNT];
    long max_attempts[DELIVERY_CHANNEL_COUNT];

    /* provider settings */
    char *smtp_url, *smtp_username, *smtp_password, *email_from;
    char *smtp_ca_file;
    bool smtp_require_tls;
    char *sms_url, *sms_auth_token, *sms_from;
    char *twilio_account_sid, *twilio_auth_token, *twilio_status_callback_url;
    char *push_url, *push_auth_token;
    char *fcm_project_id, *fcm_access_token;
    char *outbox_dir;

    /* email: List-Unsubscribe (list_unsubscribe.h) and the VERP return path */
    char *unsubscribe_secret, *unsubscribe_url, *unsubscribe_mailto, *unsubscribe_exempt;
    long unsubscribe_ttl_ms;
    char *email_bounce_address;
} worker_config;

/* Terminated by an all-NULL entry; target a worker_config. */
extern const config_var worker_config_vars[];

/* Provider kind names, by the index stored in provider / fallback_provider. */
extern const char *const worker_config_providers[];

/* The default metrics address of a channel: email 9102, sms 9103, push 9104, inapp 9105. */
const char *worker_config_default_metrics_addr(delivery_channel c);

/*
 * Checks what the table cannot: the chosen providers serve the channel.
 * err names the variable.
 */
int worker_config_check(const worker_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

/*
 * receipts_api: the routes where providers report what became of a
 * delivery (docs/receipts.md), each authenticated the way its provider
 * signs:
 *
 *   POST /v1/receipts/twilio  X-Twilio-Signature (HERALD_TWILIO_AUTH_TOKEN)
 *   POST /v1/receipts/ses     SNS message signatures (HERALD_SNS_CERT_FILE)
 *   POST /v1/receipts/http    Herald-Signature (HERALD_HTTP_CALLBACK_SECRET)
 *   POST /v1/receipts/smtp    an admin API key: a bounce piped by the MTA
 *
 * Each parses its callback into receipts (receipts_parse, receipts_dsn),
 * checks its signature (receipts_verify) and hands the receipts to
 * herald_receipt_apply (store), which makes them idempotent and orders
 * them.  Outcomes are counted as herald_gateway_receipts_total{provider,
 * outcome}.  A route whose provider is not configured answers 404.
 */
#ifndef HERALD_RECEIPTS_API_H
#define HERALD_RECEIPTS_API_H

#include "api.h"
#include "metrics.h"

#include <stddef.h>

typedef struct receipts_config {
    const char *base_url;             /* the public URL of the gateway, as Twilio calls it */
    const char *twilio_auth_token;    /* NULL: /v1/receipts/twilio is 404 */
    const char *sns_cert_file;        /* NULL: /v1/receipts/ses is 404 */
    const char *sns_topic_arns;       /* comma-separated */
    const char *sns_confirm_hosts;    /* comma-separated; "*.example.com" takes subdomains */
    const char *http_callback_secret; /* NULL: /v1/receipts/http is 404 */
    const char *bounce_address;       /* HERALD_EMAIL_BOUNCE_ADDRESS; NULL: no VERP */
    long soft_bounce_limit;
    long confirm_timeout_ms; /* the SubscribeURL GET */
} receipts_config;

/* Builds the receipts' part of the gateway (copies cfg).  NULL, with err naming the setting. */
receipts_env *receipts_env_new(const receipts_config *cfg, metrics_registry *metrics, char *err,
                               size_t errlen) __attribute__((warn_unused_result));
void receipts_env_free(receipts_env *r);

/* A config check (config_var.check) of HERALD_RECEIPTS_BASE_URL. */
int receipts_check_base_url(const char *value, char *err, size_t errlen);
/* A config check of HERALD_SNS_TOPIC_ARNS. */
int receipts_check_topic_arns(const char *value, char *err, size_t errlen);

void receipts_api_twilio(api_env *env, http_request *req, api_call *call, http_phase phase);
void receipts_api_ses(api_env *env, http_request *req, api_call *call, http_phase phase);
void receipts_api_http(api_env *env, http_request *req, api_call *call, http_phase phase);
void receipts_api_smtp(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif

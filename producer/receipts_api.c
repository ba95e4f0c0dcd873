/*
 * receipts_api: the providers' receipt routes (see receipts_api.h).
 *
 * A refused signature is answered 403 before anything is read from or
 * written to the database, and counted as "forged".  Receipts are applied
 * one statement each: a callback answered 5xx halfway is sent again by
 * its provider, and what was applied before comes back "duplicate".
 */
#include "receipts_api.h"

#include "error.h"
#include "hsig.h"
#include "log.h"
#include "mailkey.h"
#include "receipts_dsn.h"
#include "receipts_parse.h"
#include "receipts_verify.h"
#include "timeutil.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RECEIPTS_URL_MAX 2048

typedef enum {
    PROVIDER_TWILIO = 0,
    PROVIDER_SES,
    PROVIDER_HTTP,
    PROVIDER_SMTP,
    PROVIDER_COUNT,
} provider;

typedef enum {
    OUTCOME_APPLIED = 0, /* the order of store_receipt_outcome */
    OUTCOME_STALE,
    OUTCOME_UNKNOWN,
    OUTCOME_DUPLICATE,
    OUTCOME_IGNORED,
    OUTCOME_FORGED,
    OUTCOME_COUNT,
} outcome;

/* As receipts.provider spells them. */
static const char *const provider_names[PROVIDER_COUNT] = {"twilio", "ses", "http", "smtp"};
static const char *const outcome_names[OUTCOME_COUNT] = {"applied",   "stale",   "unknown",
                                                         "duplicate", "ignored", "forged"};

struct receipts_env {
    char *base_url;
    char *twilio_token;
    receipts_sns_keys *sns_keys;
    char *topic_arns;
    char *confirm_hosts;
    char *http_secret;
    char *bounce_address;
    int soft_limit;
    long confirm_timeout_ms;
    metrics_counter *counts[PROVIDER_COUNT][OUTCOME_COUNT];
};

/* ---- configuration ---- */

int receipts_check_base_url(const char *value, char *err, size_t errlen)
{
    if ((strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0) ||
        strpbrk(value, "?# \t") != NULL || strlen(value) > RECEIPTS_URL_MAX / 2)
        return error_set(err, errlen, "expected an http:// or https:// URL without query");
    return 0;
}

int receipts_check_topic_arns(const char *value, char *err, size_t errlen)
{
    const char *p = value;
    do {
        size_t n = strcspn(p, ",");
        if (n < 5 || strncmp(p, "arn:", 4) != 0 || memchr(p, ' ', n) != NULL)
            return error_set(err, errlen, "expected comma-separated topic ARNs (arn:aws:sns:...)");
        p += n;
    } while (*p++ == ',');
    return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (s == NULL || s[0] == '\0')
        return NULL;
    char *d = strdup(s);
    if (d == NULL)
        *oom = true;
    return d;
}

static void free_secret(char *s)
{
    if (s != NULL) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

receipts_env *receipts_env_new(const receipts_config *cfg, metrics_registry *metrics, char *err,
                               size_t errlen)
{
    bool oom = false;
    receipts_env *r = calloc(1, sizeof *r);
    if (r == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    if (cfg->twilio_auth_token != NULL && cfg->base_url == NULL) {
        error_set(err, errlen,
                  "HERALD_RECEIPTS_BASE_URL: required with HERALD_TWILIO_AUTH_TOKEN "
                  "(the public URL Twilio signs)");
        goto fail;
    }
    if (cfg->sns_cert_file != NULL && cfg->sns_topic_arns == NULL) {
        error_set(err, errlen, "HERALD_SNS_TOPIC_ARNS: required with HERALD_SNS_CERT_FILE");
        goto fail;
    }
    if (cfg->sns_cert_file != NULL) {
        char why[256];
        r->sns_keys = receipts_sns_keys_load(cfg->sns_cert_file, why, sizeof why);
        if (r->sns_keys == NULL) {
            error_set(err, errlen, "HERALD_SNS_CERT_FILE: %s", why);
            goto fail;
        }
    }
    r->base_url = dup_or_null(cfg->base_url, &oom);
    /* The URL Twilio signs is base + path: one '/' between them. */
    if (r->base_url != NULL && r->base_url[strlen(r->base_url) - 1] == '/')
        r->base_url[strlen(r->base_url) - 1] = '\0';
    r->twilio_token = dup_or_null(cfg->twilio_auth_token, &oom);
    r->topic_arns = dup_or_null(cfg->sns_topic_arns, &oom);
    r->confirm_hosts = dup_or_null(cfg->sns_confirm_hosts, &oom);
    r->http_secret = dup_or_null(cfg->http_callback_secret, &oom);
    r->bounce_address = dup_or_null(cfg->bounce_address, &oom);
    r->soft_limit = (int)cfg->soft_bounce_limit;
    r->confirm_timeout_ms = cfg->confirm_timeout_ms > 0 ? cfg->confirm_timeout_ms : 10000;
    for (int p = 0; !oom && p < PROVIDER_COUNT; p++)
        for (int o = 0; !oom && o < OUTCOME_COUNT; o++) {
            char labels[128];
            if (metrics_labels(labels, sizeof labels, "provider", provider_names[p], "outcome",
                               outcome_names[o], NULL) != 0)
                oom = true;
            else
                r->counts[p][o] =
                    metrics_counter_get(metrics, "herald_gateway_receipts_total",
                                        "Delivery receipts by provider and what they did", labels);
            oom = oom || r->counts[p][o] == NULL;
        }
    if (oom) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    return r;
fail:
    receipts_env_free(r);
    return NULL;
}

void receipts_env_free(receipts_env *r)
{
    if (r == NULL)
        return;
    free(r->base_url);
    free_secret(r->twilio_token);
    receipts_sns_keys_free(r->sns_keys);
    free(r->topic_arns);
    free(r->confirm_hosts);
    free_secret(r->http_secret);
    free(r->bounce_address);
    free(r);
}

/* ---- shared by the routes ---- */

static void count(receipts_env *r, provider p, outcome o)
{
    metrics_counter_inc(r->counts[p][o]);
}

static void refuse_forged(receipts_env *r, http_request *req, provider p, const char *why)
{
    count(r, p, OUTCOME_FORGED);
    LOG_WARN(http_request_id(req), "%s receipt refused: %s", provider_names[p], why);
    http_respond_error(req, 403, "forbidden", why, NULL);
}

static void not_configured(http_request *req, const char *what, const char *setting)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s receipts are not enabled on this gateway (%s is not set)", what,
             setting);
    http_respond_error(req, 404, "not_configured", msg, NULL);
}

/*
 * Applies rs[0..n) and answers 200 {"receipts":[{"id","outcome"}]}, or
 * the database's error (5xx: the provider sends the callback again).
 */
static void apply(api_env *env, http_request *req, provider p, const receipt *rs, size_t n)
{
    receipts_env *r = env->receipts;
    char err[256];
    json_t *list = json_array();
    pg_conn *c = NULL;
    for (size_t i = 0; i < n; i++) {
        outcome o;
        if (rs[i].status == NULL) {
            o = OUTCOME_IGNORED;
        } else if (rs[i].key[0] == '\0' && rs[i].message_id[0] == '\0') {
            o = OUTCOME_UNKNOWN; /* names nothing Herald sent: nothing to record it under */
        } else {
            if (c == NULL && (c = api_db(env, req)) == NULL)
                goto out;
            store_receipt_outcome so;
            store_status st = store_receipt_apply(c, provider_names[p], &rs[i], r->soft_limit, &so,
                                                  err, sizeof err);
            if (st != STORE_OK) {
                api_store_error(req, st, "receipt", err);
                goto out;
            }
            o = (outcome)so;
        }
        count(r, p, o);
        json_array_append_new(
            list, json_pack("{s:s,s:s}", "id", rs[i].receipt_id, "outcome", outcome_names[o]));
    }
    http_respond_json(req, 200, json_pack("{s:O}", "receipts", list));
out:
    if (c != NULL)
        pgpool_release(env->pool, c);
    json_decref(list);
}

/* ---- Twilio ---- */

void receipts_api_twilio(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    receipts_env *r = env->receipts;
    receipts_form form = {0};
    receipt rec;
    char err[160], query[RECEIPTS_URL_MAX], url[2 * RECEIPTS_URL_MAX];
    if (r->twilio_token == NULL) {
        not_configured(req, "Twilio", "HERALD_TWILIO_AUTH_TOKEN");
        return;
    }
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    if (receipts_form_parse(body, len, &form, err, sizeof err) != 0) {
        api_bad_field(req, "", err);
        goto out;
    }
    if (http_request_query_string(req, query, sizeof query) != 0) {
        api_bad_field(req, "", "the query string is too long");
        goto out;
    }
    snprintf(url, sizeof url, "%s%s%s%s", r->base_url, http_request_path(req),
             query[0] != '\0' ? "?" : "", query);
    if (!receipts_twilio_verify(r->twilio_token, url, &form,
                                http_request_header(req, "X-Twilio-Signature"))) {
        refuse_forged(r, req, PROVIDER_TWILIO, "X-Twilio-Signature is missing or does not match");
        goto out;
    }
    if (receipts_twilio(&form, http_request_query(req, "key"), &rec, err, sizeof err) != 0) {
        api_bad_field(req, "", err);
        goto out;
    }
    apply(env, req, PROVIDER_TWILIO, &rec, 1);
out:
    receipts_form_free(&form);
}

/* ---- Amazon SNS / SES ---- */

/* Whether needle is one of the comma-separated list; "*.x" entries take subdomains of x. */
static bool listed(const char *list, const char *needle, bool wildcards)
{
    size_t nl = strlen(needle);
    for (const char *p = list; p != NULL && *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == nl && strncasecmp(p, needle, n) == 0)
            return true;
        if (wildcards && n > 2 && p[0] == '*' && p[1] == '.' && nl > n - 1 &&
            strncasecmp(needle + nl - (n - 1), p + 1, n - 1) == 0)
            return true;
        p += n;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Whether SNS may make the gateway GET url: https to an allowed host (http on loopback). */
static bool confirm_url_allowed(const receipts_env *r, const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    bool ok = false;
    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        bool loopback = strcmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
                        strcasecmp(host, "localhost") == 0;
        ok = (strcmp(scheme, "https") == 0 || (strcmp(scheme, "http") == 0 && loopback)) &&
             listed(r->confirm_hosts, host, true);
    }
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

/* GETs the SubscribeURL, which is what confirms a subscription to SNS. */
static int confirm_subscription(const receipts_env *r, const char *url, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (c == NULL)
        return error_set(err, errlen, "out of memory");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->confirm_timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK)
        return error_set(err, errlen, "%s", curl_easy_strerror(rc));
    if (status < 200 || status > 299)
        return error_set(err, errlen, "the SubscribeURL answered %ld", status);
    return 0;
}

static void sns_control(api_env *env, http_request *req, const receipts_sns *m)
{
    receipts_env *r = env->receipts;
    char err[256];
    if (m->type == RECEIPTS_SNS_UNSUBSCRIBE) {
        LOG_WARN(http_request_id(req), "SNS unsubscribed the gateway from %s", m->topic_arn);
        http_respond_json(req, 200, json_pack("{s:b}", "confirmed", 0));
        return;
    }
    if (!confirm_url_allowed(r, m->subscribe_url)) {
        refuse_forged(r, req, PROVIDER_SES,
                      "the SubscribeURL's host is not allowed "
                      "(HERALD_SNS_CONFIRM_HOSTS)");
        return;
    }
    if (confirm_subscription(r, m->subscribe_url, err, sizeof err) != 0) {
        LOG_WARN(http_request_id(req), "SNS subscription to %s not confirmed: %s", m->topic_arn,
                 err);
        http_respond_error(req, 502, "confirmation_failed", err, NULL);
        return;
    }
    LOG_INFO(http_request_id(req), "SNS subscription to %s confirmed", m->topic_arn);
    http_respond_json(req, 200, json_pack("{s:b}", "confirmed", 1));
}

void receipts_api_ses(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    receipts_env *r = env->receipts;
    receipts_sns m = {0};
    receipt *rs = NULL;
    char err[256];
    if (r->sns_keys == NULL) {
        not_configured(req, "SES", "HERALD_SNS_CERT_FILE");
        return;
    }
    size_t len = 0, n = 0;
    const char *body = http_request_body(req, &len);
    if (receipts_sns_parse(body, len, &m, err, sizeof err) != 0) {
        api_bad_field(req, "", err);
        goto out;
    }
    if (!listed(r->topic_arns, m.topic_arn, false)) {
        refuse_forged(r, req, PROVIDER_SES, "the TopicArn is not one of HERALD_SNS_TOPIC_ARNS");
        goto out;
    }
    if (!receipts_sns_verify(r->sns_keys, &m)) {
        refuse_forged(r, req, PROVIDER_SES, "the SNS signature does not match");
        goto out;
    }
    if (m.type != RECEIPTS_SNS_NOTIFICATION) {
        sns_control(env, req, &m);
        goto out;
    }
    rs = malloc(RECEIPTS_SES_MAX * sizeof *rs);
    if (rs == NULL) {
        http_respond_error(req, 503, "overloaded", "out of memory", NULL);
        goto out;
    }
    if (receipts_ses(&m, rs, RECEIPTS_SES_MAX, &n, err, sizeof err) != 0) {
        api_bad_field(req, "Message", err);
        goto out;
    }
    if (n == 0) { /* another kind of SES event */
        count(r, PROVIDER_SES, OUTCOME_IGNORED);
        http_respond_json(req, 200, json_pack("{s:[]}", "receipts"));
        goto out;
    }
    apply(env, req, PROVIDER_SES, rs, n);
out:
    free(rs);
    receipts_sns_free(&m);
}

/* ---- the generic HTTP provider ---- */

void receipts_api_http(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    receipts_env *r = env->receipts;
    json_t *doc = NULL;
    receipt rec;
    char err[160];
    if (r->http_secret == NULL) {
        not_configured(req, "HTTP provider", "HERALD_HTTP_CALLBACK_SECRET");
        return;
    }
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    hsig_result hr =
        hsig_verify(http_request_header(req, HSIG_HEADER), r->http_secret, strlen(r->http_secret),
                    body, len, timeutil_now_ms(), HSIG_TOLERANCE_MS);
    if (hr != HSIG_OK) {
        snprintf(err, sizeof err, "Herald-Signature is missing or refused (%s)",
                 hsig_result_name(hr));
        refuse_forged(r, req, PROVIDER_HTTP, err);
        return;
    }
    if (api_body_object(req, &doc) != 0)
        return;
    if (receipts_http(doc, &rec, err, sizeof err) != 0)
        api_bad_field(req, "", err);
    else
        apply(env, req, PROVIDER_HTTP, &rec, 1);
    json_decref(doc);
}

/* ---- SMTP bounces ---- */

void receipts_api_smtp(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    receipts_env *r = env->receipts;
    receipt rs[RECEIPTS_DSN_MAX];
    char err[160], recipient[MAILKEY_ADDRESS_MAX + 1];
    size_t len = 0, n = 0;
    const char *body = http_request_body(req, &len);
    const char *q = http_request_query(req, "recipient");
    if (q != NULL) {
        /* The server turned a '+' into a space before decoding: an MTA that
         * did not escape the VERP address's '+' meant it as one. */
        if (strlen(q) >= sizeof recipient) {
            api_bad_field(req, "recipient", "recipient is too long");
            return;
        }
        snprintf(recipient, sizeof recipient, "%s", q);
        for (char *p = recipient; *p != '\0'; p++)
            if (*p == ' ')
                *p = '+';
    }
    if (receipts_dsn(body, len, r->bounce_address, q != NULL ? recipient : NULL, rs,
                     RECEIPTS_DSN_MAX, &n, err, sizeof err) != 0) {
        api_bad_field(req, "", err);
        return;
    }
    apply(env, req, PROVIDER_SMTP, rs, n);
}

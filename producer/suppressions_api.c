/*
 * suppressions_api: see suppressions_api.h.  The page cursor is the last
 * entry's "channel\naddress" in URL-safe base64, opaque to callers.
 */
#include "suppressions_api.h"

#include "ids.h"
#include "validate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT 100
#define PAGE_MAX     1000
#define ADDRESS_MAX  4096
#define DETAIL_MAX   1024
#define CURSOR_MAX   ((16 + ADDRESS_MAX) * 4 / 3 + 8)

static const char *const channels[] = {"email", "sms", "push"};
static const char *const reasons[] = {"hard_bounce", "complaint", "soft_bounces", "manual"};

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s != NULL && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static int check_channel(http_request *req, const char *channel)
{
    if (one_of(channel, channels, 3))
        return 0;
    api_bad_field(req, "channel", "channel must be email, sms or push");
    return -1;
}

/* The address as the channel needs it; -1 after answering 400. */
static int check_address(http_request *req, const char *channel, const char *address)
{
    char why[160], msg[200];
    size_t len = address ? strlen(address) : 0;
    int rc = -1;
    if (address == NULL || len == 0)
        snprintf(why, sizeof why, "is required");
    else if (strcmp(channel, "email") == 0)
        rc = validate_email(address, len, why, sizeof why);
    else if (strcmp(channel, "sms") == 0)
        rc = validate_phone(address, len, why, sizeof why);
    else
        rc = validate_push_token(address, len, why, sizeof why);
    if (rc == 0)
        return 0;
    snprintf(msg, sizeof msg, "address %s", why);
    api_bad_field(req, "address", msg);
    return -1;
}

void suppressions_api_list(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    const char *channel = http_request_query(req, "channel");
    const char *reason = http_request_query(req, "reason");
    const char *after = http_request_query(req, "after");
    char cursor[16 + ADDRESS_MAX + 1], *after_address = NULL, err[256];
    const char *after_channel = NULL;
    if (channel != NULL && check_channel(req, channel) != 0)
        return;
    if (reason != NULL && !one_of(reason, reasons, 4)) {
        api_bad_field(req, "reason",
                      "reason must be hard_bounce, complaint, soft_bounces or manual");
        return;
    }
    long limit = api_query_long(req, "limit", PAGE_DEFAULT, PAGE_MAX);
    if (limit < 0)
        return;
    if (after != NULL) {
        size_t n = 0;
        if (strlen(after) > CURSOR_MAX ||
            id_base64url_decode(after, strlen(after), cursor, sizeof cursor - 1, &n) != 0 ||
            memchr(cursor, '\0', n) != NULL || (cursor[n] = '\0', strchr(cursor, '\n')) == NULL) {
            api_bad_field(req, "after", "after is not a cursor this API gave");
            return;
        }
        after_address = strchr(cursor, '\n');
        *after_address++ = '\0';
        after_channel = cursor;
    }
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    json_t *list = NULL;
    store_status st = store_suppression_list(c, channel, reason, after_channel, after_address,
                                             (int)limit, &list, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "suppression", err);
        return;
    }
    json_t *doc = json_pack("{s:o}", "suppressions", list);
    size_t n = json_array_size(list);
    if (doc != NULL && n == (size_t)limit) {
        json_t *last = json_array_get(list, n - 1);
        const char *lc = json_string_value(json_object_get(last, "channel"));
        const char *la = json_string_value(json_object_get(last, "address"));
        char raw[16 + ADDRESS_MAX + 2], enc[CURSOR_MAX + 8];
        snprintf(raw, sizeof raw, "%s\n%s", lc ? lc : "", la ? la : "");
        if (id_base64url_encode(raw, strlen(raw), enc, sizeof enc) == 0)
            json_object_set_new(doc, "next_after", json_string(enc));
    }
    http_respond_json(req, 200, doc);
}

void suppressions_api_add(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    json_t *body = NULL, *doc = NULL;
    char err[256], why[160];
    if (api_body_object(req, &body) != 0)
        return;
    const char *channel = json_string_value(json_object_get(body, "channel"));
    const char *address = json_string_value(json_object_get(body, "address"));
    const char *detail = json_string_value(json_object_get(body, "detail"));
    json_t *d = json_object_get(body, "detail");
    if (check_channel(req, channel) != 0 || check_address(req, channel, address) != 0)
        goto out;
    if (d != NULL && !json_is_null(d) &&
        (detail == NULL ||
         validate_text(detail, strlen(detail), DETAIL_MAX, why, sizeof why) != 0)) {
        api_bad_field(req, "detail", "detail must be a string of at most 1024 bytes");
        goto out;
    }
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        goto out;
    bool created = false;
    store_status st =
        store_suppression_add(c, channel, address, detail, &doc, &created, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "suppression", err);
        goto out;
    }
    http_respond_json(req, created ? 201 : 200, doc);
out:
    json_decref(body);
}

/* The path's channel and address, checked; -1 after answering 400. */
static int path_entry(http_request *req, api_call *call, const char **channel, const char **address)
{
    *channel = router_param(&call->params, "channel");
    *address = router_param(&call->params, "address");
    return check_channel(req, *channel) != 0 || check_address(req, *channel, *address) != 0 ? -1
                                                                                            : 0;
}

void suppressions_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *channel, *address;
    char err[256];
    json_t *doc = NULL;
    if (path_entry(req, call, &channel, &address) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_suppression_get(c, channel, address, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "suppression", err);
        return;
    }
    http_respond_json(req, 200, doc);
}

void suppressions_api_delete(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    const char *channel, *address;
    char err[256];
    if (path_entry(req, call, &channel, &address) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    store_status st = store_suppression_delete(c, channel, address, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "suppression", err);
        return;
    }
    http_respond_json(req, 204, NULL);
}

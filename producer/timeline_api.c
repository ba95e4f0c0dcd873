/*
 * timeline_api: see timeline_api.h.  The search's page cursor is the last
 * event's "created_us.event_id" in URL-safe base64, opaque to callers.
 */
#include "timeline_api.h"

#include "ids.h"
#include "validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEFAULT   20
#define PAGE_MAX       100
#define KEY_MAX        255 /* an idempotency key (publish_idempotency's CHECK) */
#define CURSOR_RAW_MAX (20 + 1 + ID_UUID_LEN)
#define CURSOR_MAX     ((CURSOR_RAW_MAX + 2) / 3 * 4 + 1)
#define ENTRIES_MAX    5000

/* The one search key of the query; -1 after answering 400. */
static int search_key(http_request *req, store_event_key *key, const char **value, char *id)
{
    static const char *const names[] = {"event_id", "user_id", "idempotency_key"};
    int found = 0;
    for (int i = 0; i < 3; i++) {
        const char *v = http_request_query(req, names[i]);
        if (v == NULL)
            continue;
        found++;
        *key = (store_event_key)i;
        *value = v;
    }
    if (found != 1) {
        api_bad_field(req, "event_id", "give exactly one of event_id, user_id and idempotency_key");
        return -1;
    }
    char why[160], msg[200];
    size_t len = strlen(*value);
    switch (*key) {
    case STORE_EVENT_BY_ID:
        if (api_event_id(req, "event_id", *value, id) != 0)
            return -1;
        *value = id;
        return 0;
    case STORE_EVENT_BY_USER:
        if (validate_user_id(*value, len, why, sizeof why) == 0)
            return 0;
        snprintf(msg, sizeof msg, "user_id %s", why);
        api_bad_field(req, "user_id", msg);
        return -1;
    case STORE_EVENT_BY_KEY:
        if (len >= 1 && len <= KEY_MAX)
            return 0;
        api_bad_field(req, "idempotency_key", "idempotency_key must be 1 to 255 characters");
        return -1;
    }
    return -1;
}

/* ?limit and ?after; -1 after answering 400. */
static int search_page(http_request *req, int *limit, store_event_cursor *after, bool *has_after)
{
    const char *limit_s = http_request_query(req, "limit");
    const char *after_s = http_request_query(req, "after");
    *limit = PAGE_DEFAULT;
    *has_after = false;
    if (limit_s != NULL) {
        char *end;
        long l = strtol(limit_s, &end, 10);
        if (*limit_s == '\0' || *end != '\0' || l < 1 || l > PAGE_MAX) {
            api_bad_field(req, "limit", "limit must be an integer from 1 to 100");
            return -1;
        }
        *limit = (int)l;
    }
    if (after_s == NULL)
        return 0;
    char raw[CURSOR_RAW_MAX + 1], *dot, *end;
    size_t n = 0;
    if (strlen(after_s) > CURSOR_MAX ||
        id_base64url_decode(after_s, strlen(after_s), raw, sizeof raw - 1, &n) != 0 ||
        memchr(raw, '\0', n) != NULL || (raw[n] = '\0', dot = strchr(raw, '.')) == NULL)
        goto bad;
    *dot = '\0';
    after->created_us = strtoll(raw, &end, 10);
    if (raw[0] == '\0' || *end != '\0' || strlen(dot + 1) != ID_UUID_LEN || !id_is_uuid(dot + 1))
        goto bad;
    memcpy(after->event_id, dot + 1, ID_UUID_SIZE);
    *has_after = true;
    return 0;
bad:
    api_bad_field(req, "after", "after is not a cursor this API gave");
    return -1;
}

void timeline_api_search(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call;
    (void)phase;
    store_event_key key = STORE_EVENT_BY_ID;
    const char *value = NULL;
    char id[ID_UUID_SIZE], err[256];
    store_event_cursor after, last;
    bool has_after, more;
    int limit;
    if (search_key(req, &key, &value, id) != 0 || search_page(req, &limit, &after, &has_after) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    json_t *list = NULL;
    store_status st = store_event_search(c, key, value, has_after ? &after : NULL, limit, &list,
                                         &more, &last, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "event", err);
        return;
    }
    json_t *next = json_null();
    if (more) {
        char raw[CURSOR_RAW_MAX + 1], enc[CURSOR_MAX + 1];
        snprintf(raw, sizeof raw, "%" PRId64 ".%s", last.created_us, last.event_id);
        if (id_base64url_encode(raw, strlen(raw), enc, sizeof enc) == 0) {
            json_decref(next);
            next = json_string(enc);
        }
    }
    http_respond_json(req, 200, json_pack("{s:o,s:o}", "events", list, "next", next));
}

void timeline_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    char id[ID_UUID_SIZE], err[256];
    if (api_event_id(req, "event_id", router_param(&call->params, "event_id"), id) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    json_t *doc = NULL;
    store_status st = store_event_timeline(c, id, ENTRIES_MAX, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "event", err);
        return;
    }
    http_respond_json(req, 200, doc);
}

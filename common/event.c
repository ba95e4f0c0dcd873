/*
 * event: parsing, validation and serialisation of the events-topic record.
 *
 * Parsing is two steps: take typed values out of the JSON (type errors),
 * then event_validate on the struct (value errors), so an event from a
 * request, from Kafka or from code is held to the same rules and messages.
 */
#include "event.h"

#include "jsonw.h"
#include "record.h"
#include "timeutil.h"
#include "validate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const priority_names[EVENT_PRIORITY_COUNT] = {"normal", "low", "high",
                                                                 "critical"};

/* The fields a client may send in POST /v1/events. */
static const char *const request_fields[] = {
    "type", "user_id", "topic", "data", "priority", "category", "idempotency_key", "digest", NULL};

const char *event_priority_name(event_priority p)
{
    if ((int)p < 0 || (int)p >= EVENT_PRIORITY_COUNT)
        return priority_names[EVENT_PRIORITY_NORMAL];
    return priority_names[p];
}

int event_priority_parse(const char *s, event_priority *out)
{
    int i = record_name_index(priority_names, EVENT_PRIORITY_COUNT, s);
    if (i < 0)
        return -1;
    *out = (event_priority)i;
    return 0;
}

/* Where a failure is reported: the field name and the "<field>: <problem>" line. */
typedef struct report {
    char *field;
    size_t fieldlen;
    char *err;
    size_t errlen;
} report;

static int fail(const report *r, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const report *r, const char *field, const char *fmt, ...)
{
    if (r->field != NULL && r->fieldlen > 0)
        snprintf(r->field, r->fieldlen, "%s", field);
    if (r->err != NULL && r->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A validator's complete message ("<key>: <problem>") with the field recorded. */
static int fail_with(const report *r, const char *field, const char *msg)
{
    return fail(r, field, "%s", msg);
}

/* Copies the string member key into *dst (NULL when absent): 1, 0 (absent) or -1 (reported). */
static int take_string(json_t *obj, const char *key, char **dst, const report *r)
{
    char msg[256];
    int rc = validate_json_strdup(obj, key, dst, msg, sizeof msg);
    return rc < 0 ? fail_with(r, key, msg) : rc;
}

static int take_uuid(json_t *obj, const char *key, char *dst, const report *r)
{
    char msg[256];
    int rc = validate_json_uuid(obj, key, dst, msg, sizeof msg);
    return rc < 0 ? fail_with(r, key, msg) : rc;
}

static int take_priority(json_t *obj, event_priority *dst, const report *r)
{
    char msg[256];
    const char *s;
    size_t n;
    int rc = validate_json_string(obj, "priority", &s, &n, msg, sizeof msg);
    if (rc < 0)
        return fail_with(r, "priority", msg);
    if (rc == 0)
        return 0;
    if (strlen(s) != n || event_priority_parse(s, dst) != 0)
        return fail(r, "priority", "priority: must be one of critical|high|normal|low");
    return 1;
}

/* "digest": true (the default) or false, which lets the event bypass digest rules. */
static int take_digest(json_t *obj, bool *no_digest, const report *r)
{
    json_t *v = json_object_get(obj, "digest");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return fail(r, "digest", "digest: must be true or false");
    *no_digest = json_is_false(v);
    return 1;
}

static int take_data(json_t *obj, json_t **dst, const report *r)
{
    json_t *data = json_object_get(obj, "data");
    if (data == NULL || json_is_null(data))
        return 0;
    if (!json_is_object(data))
        return fail(r, "data", "data: must be an object");
    *dst = json_incref(data);
    return 1;
}

/*
 * Compact JSON of a value jansson parsed is at most this many times as long
 * as the text it came from: strings and integers never grow, and the worst
 * real ("1e-7", 4 bytes, is dumped as 9.9999999999999995e-08) grows 5.5 times.
 */
#define DUMP_GROWTH_MAX 8

/*
 * Value rules shared by every way in.  identity: event_id and created_at are
 * required (Kafka records and events about to be produced; not requests).
 * max_data: cap on data's compact JSON, 0 for none.  text_len: the length of
 * the JSON text ev was parsed from, 0 when it was built otherwise.  Parsed
 * text is UTF-8 throughout (keys included) and nested within jansson's
 * limit, so data parsed from a text too short to exceed the cap (or with no
 * cap) needs no dump to prove it: the dispatcher checks every record it
 * consumes, and that dump was several per cent of its time per event.
 */
static int check_fields(const event *ev, size_t max_data, bool identity, size_t text_len,
                        const report *r)
{
    char phrase[256];
    if (identity && ev->event_id[0] == '\0')
        return fail(r, "event_id", "event_id: required");
    if (identity && !id_is_uuid(ev->event_id))
        return fail(r, "event_id", "event_id: must be a lowercase UUID");

    if (ev->type == NULL)
        return fail(r, "type", "type: required");
    if (validate_name(ev->type, strlen(ev->type), EVENT_TYPE_MAX, phrase, sizeof phrase) != 0)
        return fail(r, "type", "type: %s", phrase);

    if (ev->user_id != NULL && ev->topic != NULL)
        return fail(r, "topic", "topic: give either user_id or topic, not both");
    if (ev->user_id == NULL && ev->topic == NULL)
        return fail(r, "user_id", "user_id: required (or topic, for a broadcast)");
    if (ev->user_id != NULL &&
        validate_user_id(ev->user_id, strlen(ev->user_id), phrase, sizeof phrase) != 0)
        return fail(r, "user_id", "user_id: %s", phrase);
    if (ev->topic != NULL &&
        validate_name(ev->topic, strlen(ev->topic), EVENT_TOPIC_MAX, phrase, sizeof phrase) != 0)
        return fail(r, "topic", "topic: %s", phrase);

    if (ev->data == NULL)
        return fail(r, "data", "data: required");
    if (!json_is_object(ev->data))
        return fail(r, "data", "data: must be an object");
    bool proven = text_len != 0 && (max_data == 0 || text_len <= max_data / DUMP_GROWTH_MAX);
    if (!proven && validate_json_size(ev->data, "data", max_data, phrase, sizeof phrase) != 0)
        return fail_with(r, "data", phrase);

    if ((int)ev->priority < 0 || (int)ev->priority >= EVENT_PRIORITY_COUNT)
        return fail(r, "priority", "priority: must be one of critical|high|normal|low");
    if (ev->category != NULL && validate_name(ev->category, strlen(ev->category),
                                              EVENT_CATEGORY_MAX, phrase, sizeof phrase) != 0)
        return fail(r, "category", "category: %s", phrase);
    if (ev->idempotency_key != NULL &&
        validate_idempotency_key(ev->idempotency_key, strlen(ev->idempotency_key), phrase,
                                 sizeof phrase) != 0)
        return fail(r, "idempotency_key", "idempotency_key: %s", phrase);

    if (identity && ev->created_at <= 0)
        return fail(r, "created_at", "created_at: required");
    if (ev->broadcast_id[0] != '\0' && !id_is_uuid(ev->broadcast_id))
        return fail(r, "broadcast_id", "broadcast_id: must be a lowercase UUID");
    if (ev->broadcast_id[0] != '\0' && ev->topic != NULL)
        return fail(r, "broadcast_id", "broadcast_id: only for per-user events, not a topic");
    if (ev->generation < 0)
        return fail(r, "generation", "generation: must be an integer in 0..%d", INT_MAX);
    if (ev->api_key_id < 0)
        return fail(r, "api_key_id", "api_key_id: must be a positive integer");
    return 0;
}

int event_validate(const event *ev, const event_limits *lim, char *field, size_t fieldlen,
                   char *err, size_t errlen)
{
    report r = {field, fieldlen, err, errlen};
    if (ev == NULL)
        return fail(&r, "", "no event");
    return check_fields(ev, lim != NULL ? lim->max_data_bytes : 0, true, 0, &r);
}

/* Type checks of the members; kafka adds the fields only Herald itself writes. */
static int extract(json_t *obj, event *ev, bool kafka, const report *r)
{
    if (kafka) {
        int rc = take_uuid(obj, "event_id", ev->event_id, r);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return fail(r, "event_id", "event_id: required");
    }
    if (take_string(obj, "type", &ev->type, r) < 0 ||
        take_string(obj, "user_id", &ev->user_id, r) < 0 ||
        take_string(obj, "topic", &ev->topic, r) < 0 || take_data(obj, &ev->data, r) < 0)
        return -1;
    int rc = take_priority(obj, &ev->priority, r);
    if (rc < 0)
        return -1;
    if (rc == 0 && kafka)
        return fail(r, "priority", "priority: required");
    if (take_string(obj, "category", &ev->category, r) < 0 ||
        take_string(obj, "idempotency_key", &ev->idempotency_key, r) < 0 ||
        take_digest(obj, &ev->no_digest, r) < 0)
        return -1;
    if (!kafka)
        return 0;

    char msg[256], terr[256];
    const char *s;
    size_t n;
    rc = validate_json_string(obj, "created_at", &s, &n, msg, sizeof msg);
    if (rc < 0)
        return fail_with(r, "created_at", msg);
    if (rc == 0)
        return fail(r, "created_at", "created_at: required");
    if (strlen(s) != n || timeutil_parse_rfc3339(s, &ev->created_at, terr, sizeof terr) != 0)
        return fail(r, "created_at", "created_at: must be an RFC 3339 time like %s",
                    "2026-11-27T22:10:55.123Z");
    if (take_uuid(obj, "broadcast_id", ev->broadcast_id, r) < 0)
        return -1;
    long long generation = 0;
    if (validate_json_int(obj, "generation", 0, INT_MAX, &generation, msg, sizeof msg) < 0)
        return fail_with(r, "generation", msg);
    ev->generation = (int)generation;
    long long key = 0;
    if (validate_json_int(obj, "api_key_id", 1, INT64_MAX, &key, msg, sizeof msg) < 0)
        return fail_with(r, "api_key_id", msg);
    ev->api_key_id = key;
    return 0;
}

event_status event_parse(const char *json, size_t len, event *out, char *err, size_t errlen)
{
    event_status status = EVENT_INVALID;
    report r = {NULL, 0, err, errlen};
    event ev = {0};
    bool not_json;
    json_t *root = record_load(json, len, "an event", &not_json, err, errlen);
    memset(out, 0, sizeof *out);

    if (root == NULL) {
        status = not_json ? EVENT_INVALID_JSON : EVENT_INVALID;
        goto out;
    }
    if (extract(root, &ev, true, &r) != 0)
        goto out;
    if (ev.data == NULL) {
        fail(&r, "data", "data: required");
        goto out;
    }
    if (check_fields(&ev, 0, true, len, &r) != 0)
        goto out;
    *out = ev;
    memset(&ev, 0, sizeof ev);
    status = EVENT_OK;

out:
    event_free(&ev);
    json_decref(root);
    return status;
}

int event_from_request(json_t *body, event *out, const event_limits *lim, char *field,
                       size_t fieldlen, char *err, size_t errlen)
{
    int rc = -1;
    report r = {field, fieldlen, err, errlen};
    event ev = {0};
    memset(out, 0, sizeof *out);

    if (!json_is_object(body)) {
        fail(&r, "", "the request body must be a JSON object");
        goto out;
    }
    const char *unknown = validate_json_unknown_key(body, request_fields);
    if (unknown != NULL) {
        fail(&r, unknown,
             "%.64s: unknown field (allowed: type, user_id, topic, data, priority, category, "
             "idempotency_key, digest)",
             unknown);
        goto out;
    }
    if (extract(body, &ev, false, &r) != 0)
        goto out;
    if (ev.data == NULL && (ev.data = json_object()) == NULL) {
        fail(&r, "data", "data: out of memory");
        goto out;
    }
    size_t max =
        lim != NULL && lim->max_data_bytes != 0 ? lim->max_data_bytes : EVENT_DATA_MAX_DEFAULT;
    if (check_fields(&ev, max, false, 0, &r) != 0)
        goto out;
    *out = ev;
    memset(&ev, 0, sizeof ev);
    rc = 0;

out:
    event_free(&ev);
    return rc;
}

json_t *event_to_json(const event *ev)
{
    json_t *result = NULL;
    char ts[TIMEUTIL_RFC3339_SIZE];
    json_t *o = json_object();
    json_t *data = ev->data != NULL ? json_incref(ev->data) : json_object();
    if (o == NULL || data == NULL)
        goto out;
    if (record_put_string(o, "event_id", ev->event_id) != 0 ||
        record_put_string(o, "type", ev->type) != 0 ||
        record_put_string(o, "user_id", ev->user_id) != 0 ||
        record_put_string(o, "topic", ev->topic) != 0)
        goto out;
    int rc = json_object_set_new(o, "data", data);
    data = NULL; /* taken even on failure */
    if (rc != 0)
        goto out;
    if (record_put_string(o, "priority", event_priority_name(ev->priority)) != 0 ||
        record_put_string(o, "category", ev->category) != 0 ||
        record_put_string(o, "created_at",
                          timeutil_format_rfc3339(ev->created_at, ts, sizeof ts)) != 0 ||
        record_put_string(o, "idempotency_key", ev->idempotency_key) != 0 ||
        record_put_string(o, "broadcast_id",
                          ev->broadcast_id[0] != '\0' ? ev->broadcast_id : NULL) != 0 ||
        json_object_set_new(o, "generation", json_integer(ev->generation)) != 0 ||
        (ev->api_key_id > 0 &&
         json_object_set_new(o, "api_key_id", json_integer(ev->api_key_id)) != 0) ||
        (ev->no_digest && json_object_set_new(o, "digest", json_false()) != 0))
        goto out;
    result = o;
    o = NULL;

out:
    json_decref(data);
    json_decref(o);
    return result;
}

/*
 * The record written without a JSON tree (common/jsonw): building a jansson
 * object of the envelope and dumping it is a dozen allocations and a second
 * walk per event, which profiling showed to be the gateway's largest cost
 * per publish after the kernel's.  The bytes are those of jansson's compact
 * dump of event_to_json() (same members, order and escaping).
 */
int event_serialize_at(const event *ev, const char *created_at, char **out, size_t *outlen)
{
    char ts[TIMEUTIL_RFC3339_SIZE];
    buf b;
    jsonw w;

    *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (created_at == NULL)
        created_at = timeutil_format_rfc3339(ev->created_at, ts, sizeof ts);
    /* One allocation for a typical event: its strings, the member names and
     * a small data. */
    size_t est = 512 + strlen(created_at);
    const char *strs[] = {ev->event_id, ev->type,     ev->user_id,
                          ev->topic,    ev->category, ev->idempotency_key};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        est += strs[i] != NULL ? strlen(strs[i]) : 0;
    buf_init(&b, 0);
    if (buf_reserve(&b, est) != 0)
        return -1;
    jsonw_begin(&w, &b);
    jsonw_str(&w, JSONW_NAME("event_id"), ev->event_id);
    jsonw_str(&w, JSONW_NAME("type"), ev->type);
    jsonw_str(&w, JSONW_NAME("user_id"), ev->user_id);
    jsonw_str(&w, JSONW_NAME("topic"), ev->topic);
    jsonw_json(&w, JSONW_NAME("data"), ev->data, true);
    jsonw_str(&w, JSONW_NAME("priority"), event_priority_name(ev->priority));
    jsonw_str(&w, JSONW_NAME("category"), ev->category);
    jsonw_str(&w, JSONW_NAME("created_at"), created_at);
    jsonw_str(&w, JSONW_NAME("idempotency_key"), ev->idempotency_key);
    jsonw_str(&w, JSONW_NAME("broadcast_id"),
              ev->broadcast_id[0] != '\0' ? ev->broadcast_id : NULL);
    jsonw_int(&w, JSONW_NAME("generation"), ev->generation);
    if (ev->api_key_id > 0)
        jsonw_int(&w, JSONW_NAME("api_key_id"), ev->api_key_id);
    if (ev->no_digest)
        jsonw_bool(&w, JSONW_NAME("digest"), false);
    if (jsonw_end(&w) != 0) {
        buf_free(&b);
        return -1;
    }
    *out = buf_steal(&b, outlen);
    return 0;
}

int event_serialize(const event *ev, char **out, size_t *outlen)
{
    return event_serialize_at(ev, NULL, out, outlen);
}

char *event_kafka_key(const event *ev, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    if (ev->user_id != NULL)
        snprintf(out, outlen, "%s", ev->user_id);
    else
        snprintf(out, outlen, "topic:%s", ev->topic != NULL ? ev->topic : "");
    return out;
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst != NULL ? 0 : -1;
}

int event_copy(event *dst, const event *src)
{
    memset(dst, 0, sizeof *dst);
    memcpy(dst->event_id, src->event_id, sizeof dst->event_id);
    memcpy(dst->broadcast_id, src->broadcast_id, sizeof dst->broadcast_id);
    dst->priority = src->priority;
    dst->created_at = src->created_at;
    dst->generation = src->generation;
    dst->no_digest = src->no_digest;
    dst->api_key_id = src->api_key_id;
    dst->data = src->data != NULL ? json_incref(src->data) : NULL;
    if (dup_opt(&dst->type, src->type) != 0 || dup_opt(&dst->user_id, src->user_id) != 0 ||
        dup_opt(&dst->topic, src->topic) != 0 || dup_opt(&dst->category, src->category) != 0 ||
        dup_opt(&dst->idempotency_key, src->idempotency_key) != 0) {
        event_free(dst);
        return -1;
    }
    return 0;
}

void event_free(event *ev)
{
    if (ev == NULL)
        return;
    free(ev->type);
    free(ev->user_id);
    free(ev->topic);
    free(ev->category);
    free(ev->idempotency_key);
    json_decref(ev->data);
    memset(ev, 0, sizeof *ev);
}

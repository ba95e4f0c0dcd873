/*
 * delivery: parsing, validation, serialisation and idempotency keys of
 * delivery records.  As in event.c, parsing takes typed values out of the
 * JSON and then applies the same value rules as delivery_validate.
 */
#include "delivery.h"
#include "buf.h"
#include "error.h"
#include "record.h"

#include "jsonw.h"
#include "timeutil.h"
#include "validate.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const channel_names[DELIVERY_CHANNEL_COUNT] = {"email", "sms", "push", "inapp"};

const char *delivery_channel_name(delivery_channel c)
{
    if ((int)c < 0 || (int)c >= DELIVERY_CHANNEL_COUNT)
        return channel_names[DELIVERY_EMAIL];
    return channel_names[c];
}

int delivery_channel_parse(const char *s, delivery_channel *out)
{
    int i = record_name_index(channel_names, DELIVERY_CHANNEL_COUNT, s);
    if (i < 0)
        return -1;
    *out = (delivery_channel)i;
    return 0;
}

static bool has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int check_address(const delivery *d, char *err, size_t errlen)
{
    char phrase[256];
    size_t n = strlen(d->address);
    int rc;
    switch (d->channel) {
    case DELIVERY_EMAIL:
        rc = validate_email(d->address, n, phrase, sizeof phrase);
        break;
    case DELIVERY_SMS:
        rc = validate_phone(d->address, n, phrase, sizeof phrase);
        break;
    case DELIVERY_INAPP:
        /* The inbox is the user's own: an in-app delivery goes nowhere else. */
        if (strcmp(d->address, d->user_id) != 0)
            return error_set(err, errlen, "address: must be the user id for inapp");
        return 0;
    default:
        rc = validate_push_token(d->address, n, phrase, sizeof phrase);
        break;
    }
    return rc != 0 ? error_set(err, errlen, "address: %s", phrase) : 0;
}

static int check_body(const delivery *d, char *err, size_t errlen)
{
    char phrase[256];
    size_t n = strlen(d->body);
    size_t max = d->channel == DELIVERY_EMAIL   ? DELIVERY_EMAIL_BODY_MAX
                 : d->channel == DELIVERY_PUSH  ? DELIVERY_PUSH_BODY_MAX
                 : d->channel == DELIVERY_INAPP ? DELIVERY_INAPP_BODY_MAX
                                                : SIZE_MAX;
    if (n == 0)
        return error_set(err, errlen, "body: must not be empty");
    if (validate_text(d->body, n, max, phrase, sizeof phrase) != 0)
        return error_set(err, errlen, "body: %s", phrase);
    /* SMS providers count characters, not bytes. */
    if (d->channel == DELIVERY_SMS && validate_utf8_chars(d->body, n) > DELIVERY_SMS_BODY_CHARS)
        return error_set(err, errlen, "body: must be at most %d characters for sms",
                         DELIVERY_SMS_BODY_CHARS);
    return 0;
}

int delivery_validate(const delivery *d, char *err, size_t errlen)
{
    char phrase[256];
    if (d == NULL)
        return error_set(err, errlen, "no delivery");
    if (!id_is_uuid(d->idempotency_key))
        return error_set(err, errlen, "idempotency_key: %s",
                         d->idempotency_key[0] ? "must be a lowercase UUID" : "required");
    if (!id_is_uuid(d->event_id))
        return error_set(err, errlen, "event_id: %s",
                         d->event_id[0] ? "must be a lowercase UUID" : "required");
    if (d->user_id == NULL)
        return error_set(err, errlen, "user_id: required");
    if (validate_user_id(d->user_id, strlen(d->user_id), phrase, sizeof phrase) != 0)
        return error_set(err, errlen, "user_id: %s", phrase);
    if ((int)d->channel < 0 || (int)d->channel >= DELIVERY_CHANNEL_COUNT)
        return error_set(err, errlen, "channel: must be one of email|sms|push|inapp");
    const char *channel = delivery_channel_name(d->channel);
    if (d->attempt < 1)
        return error_set(err, errlen, "attempt: must be an integer in 1..%d", INT_MAX);
    if (d->address == NULL)
        return error_set(err, errlen, "address: required");
    if (check_address(d, err, errlen) != 0)
        return -1;

    if (d->subject != NULL) {
        if (d->channel != DELIVERY_EMAIL)
            return error_set(err, errlen, "subject: only for email, not %s", channel);
        if (validate_text(d->subject, strlen(d->subject), DELIVERY_SUBJECT_MAX, phrase,
                          sizeof phrase) != 0)
            return error_set(err, errlen, "subject: %s", phrase);
        /* A line break in a header value would let content inject SMTP headers. */
        if (has_line_break(d->subject))
            return error_set(err, errlen, "subject: must be a single line");
    }
    if (d->body == NULL)
        return error_set(err, errlen, "body: required");
    if (check_body(d, err, errlen) != 0)
        return -1;
    bool titled = d->channel == DELIVERY_PUSH || d->channel == DELIVERY_INAPP;
    if (d->title != NULL) {
        if (!titled)
            return error_set(err, errlen, "title: only for push and inapp, not %s", channel);
        if (validate_text(d->title, strlen(d->title), DELIVERY_TITLE_MAX, phrase, sizeof phrase) !=
            0)
            return error_set(err, errlen, "title: %s", phrase);
        /* An inbox lists titles as one line, like a mail client its subjects. */
        if (d->channel == DELIVERY_INAPP && has_line_break(d->title))
            return error_set(err, errlen, "title: must be a single line");
    }
    if (d->data != NULL) {
        if (!titled)
            return error_set(err, errlen, "data: only for push and inapp, not %s", channel);
        if (!json_is_object(d->data))
            return error_set(err, errlen, "data: must be an object");
        if (validate_json_size(d->data, "data", DELIVERY_DATA_MAX, err, errlen) != 0)
            return -1;
    }

    if ((int)d->priority < 0 || (int)d->priority >= EVENT_PRIORITY_COUNT)
        return error_set(err, errlen, "priority: must be one of critical|high|normal|low");
    if (d->category != NULL && validate_name(d->category, strlen(d->category), EVENT_CATEGORY_MAX,
                                             phrase, sizeof phrase) != 0)
        return error_set(err, errlen, "category: %s", phrase);
    if (d->event_type == NULL)
        return error_set(err, errlen, "event_type: required");
    if (validate_name(d->event_type, strlen(d->event_type), EVENT_TYPE_MAX, phrase,
                      sizeof phrase) != 0)
        return error_set(err, errlen, "event_type: %s", phrase);
    if (d->created_at <= 0)
        return error_set(err, errlen, "created_at: required");
    if (d->not_before < 0)
        return error_set(err, errlen, "not_before: must not be before 1970");
    if (d->generation < 0)
        return error_set(err, errlen, "generation: must be an integer in 0..%d", INT_MAX);
    return 0;
}

/* An RFC 3339 member into *ms: 1, 0 when absent, -1 (err set). */
static int take_time(json_t *obj, const char *key, int64_t *ms, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    char terr[256];
    int rc = validate_json_string(obj, key, &s, &n, err, errlen);
    if (rc <= 0)
        return rc;
    if (strlen(s) != n || timeutil_parse_rfc3339(s, ms, terr, sizeof terr) != 0)
        return error_set(err, errlen, "%s: must be an RFC 3339 time like 2026-11-27T22:10:55.123Z",
                         key);
    return 1;
}

static int parse_channel(const char *s, void *out)
{
    return delivery_channel_parse(s, out);
}

static int parse_priority(const char *s, void *out)
{
    return event_priority_parse(s, out);
}

/* A required enum member, by name. */
static int take_name(json_t *obj, const char *key, const char *choices,
                     int (*parse)(const char *, void *), void *out, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    int rc = validate_json_string(obj, key, &s, &n, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return error_set(err, errlen, "%s: required", key);
    if (strlen(s) != n || parse(s, out) != 0)
        return error_set(err, errlen, "%s: must be one of %s", key, choices);
    return 1;
}

static int required(int rc, const char *key, char *err, size_t errlen)
{
    if (rc == 0)
        return error_set(err, errlen, "%s: required", key);
    return rc < 0 ? -1 : 0;
}

static int extract(json_t *o, delivery *d, char *err, size_t errlen)
{
    long long n = 0;
    if (required(validate_json_uuid(o, "idempotency_key", d->idempotency_key, err, errlen),
                 "idempotency_key", err, errlen) != 0 ||
        required(validate_json_uuid(o, "event_id", d->event_id, err, errlen), "event_id", err,
                 errlen) != 0 ||
        required(validate_json_strdup(o, "user_id", &d->user_id, err, errlen), "user_id", err,
                 errlen) != 0 ||
        take_name(o, "channel", "email|sms|push|inapp", parse_channel, &d->channel, err, errlen) <
            0)
        return -1;
    if (required(validate_json_int(o, "attempt", 1, INT_MAX, &n, err, errlen), "attempt", err,
                 errlen) != 0)
        return -1;
    d->attempt = (int)n;
    if (required(validate_json_strdup(o, "address", &d->address, err, errlen), "address", err,
                 errlen) != 0 ||
        validate_json_strdup(o, "subject", &d->subject, err, errlen) < 0 ||
        required(validate_json_strdup(o, "body", &d->body, err, errlen), "body", err, errlen) !=
            0 ||
        validate_json_strdup(o, "title", &d->title, err, errlen) < 0)
        return -1;

    json_t *data = json_object_get(o, "data");
    if (data != NULL && !json_is_null(data)) {
        if (!json_is_object(data))
            return error_set(err, errlen, "data: must be an object");
        d->data = json_incref(data);
    }

    if (take_name(o, "priority", "critical|high|normal|low", parse_priority, &d->priority, err,
                  errlen) < 0 ||
        validate_json_strdup(o, "category", &d->category, err, errlen) < 0 ||
        required(validate_json_strdup(o, "event_type", &d->event_type, err, errlen), "event_type",
                 err, errlen) != 0 ||
        required(take_time(o, "created_at", &d->created_at, err, errlen), "created_at", err,
                 errlen) != 0 ||
        take_time(o, "not_before", &d->not_before, err, errlen) < 0)
        return -1;
    n = 0;
    if (validate_json_int(o, "generation", 0, INT_MAX, &n, err, errlen) < 0)
        return -1;
    d->generation = (int)n;
    return 0;
}

delivery_status delivery_parse(const char *json, size_t len, delivery *out, char *err,
                               size_t errlen)
{
    delivery_status status = DELIVERY_INVALID;
    delivery d = {0};
    bool not_json;
    json_t *root = record_load(json, len, "a delivery", &not_json, err, errlen);
    memset(out, 0, sizeof *out);

    if (root == NULL) {
        status = not_json ? DELIVERY_INVALID_JSON : DELIVERY_INVALID;
        goto out;
    }
    if (extract(root, &d, err, errlen) != 0 || delivery_validate(&d, err, errlen) != 0)
        goto out;
    *out = d;
    memset(&d, 0, sizeof d);
    status = DELIVERY_OK;

out:
    delivery_free(&d);
    json_decref(root);
    return status;
}

json_t *delivery_to_json(const delivery *d)
{
    char created[TIMEUTIL_RFC3339_SIZE], not_before[TIMEUTIL_RFC3339_SIZE];
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (record_put_string(o, "idempotency_key", d->idempotency_key) != 0 ||
        record_put_string(o, "event_id", d->event_id) != 0 ||
        record_put_string(o, "user_id", d->user_id) != 0 ||
        record_put_string(o, "channel", delivery_channel_name(d->channel)) != 0 ||
        json_object_set_new(o, "attempt", json_integer(d->attempt)) != 0 ||
        record_put_string(o, "address", d->address) != 0 ||
        record_put_string(o, "subject", d->subject) != 0 ||
        record_put_string(o, "body", d->body) != 0 ||
        record_put_string(o, "title", d->title) != 0 ||
        (d->data != NULL && json_object_set(o, "data", d->data) != 0) ||
        record_put_string(o, "priority", event_priority_name(d->priority)) != 0 ||
        record_put_string(o, "category", d->category) != 0 ||
        record_put_string(o, "event_type", d->event_type) != 0 ||
        record_put_string(o, "created_at",
                          timeutil_format_rfc3339(d->created_at, created, sizeof created)) != 0 ||
        (d->not_before != 0 &&
         record_put_string(o, "not_before",
                           timeutil_format_rfc3339(d->not_before, not_before, sizeof not_before)) !=
             0) ||
        json_object_set_new(o, "generation", json_integer(d->generation)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * The record written directly into a buf (common/jsonw), byte for byte
 * what jansson makes of delivery_to_json(), without building a jansson
 * object per record: that build, its dump and its frees were about a fifth
 * of the dispatcher's CPU time per event.
 */
int delivery_write(buf *b, const delivery *d, const char *created_at)
{
    char created[TIMEUTIL_RFC3339_SIZE], nb[TIMEUTIL_RFC3339_SIZE];
    jsonw w;
    if (created_at == NULL)
        created_at = timeutil_format_rfc3339(d->created_at, created, sizeof created);
    jsonw_begin(&w, b);
    jsonw_str(&w, JSONW_NAME("idempotency_key"), d->idempotency_key);
    jsonw_str(&w, JSONW_NAME("event_id"), d->event_id);
    jsonw_str(&w, JSONW_NAME("user_id"), d->user_id);
    jsonw_str(&w, JSONW_NAME("channel"), delivery_channel_name(d->channel));
    jsonw_int(&w, JSONW_NAME("attempt"), d->attempt);
    jsonw_str(&w, JSONW_NAME("address"), d->address);
    jsonw_str(&w, JSONW_NAME("subject"), d->subject);
    jsonw_str(&w, JSONW_NAME("body"), d->body);
    jsonw_str(&w, JSONW_NAME("title"), d->title);
    jsonw_json(&w, JSONW_NAME("data"), d->data, false);
    jsonw_str(&w, JSONW_NAME("priority"), event_priority_name(d->priority));
    jsonw_str(&w, JSONW_NAME("category"), d->category);
    jsonw_str(&w, JSONW_NAME("event_type"), d->event_type);
    jsonw_str(&w, JSONW_NAME("created_at"), created_at);
    if (d->not_before != 0)
        jsonw_str(&w, JSONW_NAME("not_before"),
                  timeutil_format_rfc3339(d->not_before, nb, sizeof nb));
    jsonw_int(&w, JSONW_NAME("generation"), d->generation);
    return jsonw_end(&w);
}

int delivery_serialize(const delivery *d, char **out, size_t *outlen)
{
    buf b;
    buf_init(&b, 0);
    *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (delivery_write(&b, d, NULL) != 0) {
        buf_free(&b);
        return -1;
    }
    size_t len = 0;
    *out = buf_steal(&b, &len);
    if (outlen != NULL)
        *outlen = len;
    return *out != NULL ? 0 : -1;
}

int delivery_idempotency_key(const char *event_id, delivery_channel channel, const char *address,
                             int generation, char *out, size_t outlen)
{
    /* uuid | channel | address (at most a 4096-byte token) | generation */
    char name[ID_UUID_LEN + 8 + VALIDATE_PUSH_TOKEN_MAX + 16];
    if (out == NULL || outlen < ID_UUID_SIZE || !id_is_uuid(event_id) || address == NULL ||
        *address == '\0' || generation < 0 || (int)channel < 0 ||
        (int)channel >= DELIVERY_CHANNEL_COUNT)
        return -1;
    /*
     * The name "%s|%s|%s|%d" put together without snprintf: the dispatcher
     * makes one key per delivery and per skip.
     */
    const char *cname = delivery_channel_name(channel);
    size_t clen = strlen(cname), alen = strlen(address);
    char gen[16];
    size_t glen = 0;
    for (unsigned g = (unsigned)generation;; g /= 10) {
        gen[sizeof gen - 1 - glen++] = (char)('0' + g % 10);
        if (g < 10)
            break;
    }
    size_t n = ID_UUID_LEN + 1 + clen + 1 + alen + 1 + glen;
    if (n >= sizeof name)
        return -1;
    char *p = name;
    memcpy(p, event_id, ID_UUID_LEN);
    p += ID_UUID_LEN;
    *p++ = '|';
    memcpy(p, cname, clen);
    p += clen;
    *p++ = '|';
    memcpy(p, address, alen);
    p += alen;
    *p++ = '|';
    memcpy(p, gen + sizeof gen - glen, glen);
    return id_uuid_v5(ID_NAMESPACE_HERALD, name, n, out);
}

void delivery_free(delivery *d)
{
    if (d == NULL)
        return;
    free(d->user_id);
    free(d->address);
    free(d->subject);
    free(d->body);
    free(d->title);
    free(d->category);
    free(d->event_type);
    json_decref(d->data);
    memset(d, 0, sizeof *d);
}

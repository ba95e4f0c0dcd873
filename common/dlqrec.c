/*
 * dlqrec: see dlqrec.h.
 */
#include "dlqrec.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"
#include "validate.h"
#include "vec.h"

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static const char *header_text(const dlqrec *r, const char *name)
{
    const dlqrec_header *h = dlqrec_header_get(r, name);
    return h != NULL ? h->value : "";
}

static int64_t header_int(const dlqrec *r, const char *name)
{
    const dlqrec_header *h = dlqrec_header_get(r, name);
    if (h == NULL || h->len == 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(h->value, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0)
        return -1;
    return (int64_t)v;
}

/* The channel of "worker.email", "…deliveries.sms" or "…retry.inapp"; NULL if none. */
static const char *channel_of(const char *stage, const char *topic)
{
    static const char *const channels[] = {"email", "sms", "push", "inapp"};
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        char want[32];
        snprintf(want, sizeof(want), "worker.%s", channels[i]);
        if (strcmp(stage, want) == 0)
            return channels[i];
        const char *const kinds[] = {"deliveries.", "retry."};
        for (size_t k = 0; k < 2; k++) {
            snprintf(want, sizeof(want), "%s%s", kinds[k], channels[i]);
            size_t tl = strlen(topic), wl = strlen(want);
            if (tl >= wl && strcmp(topic + tl - wl, want) == 0)
                return channels[i];
        }
    }
    return NULL;
}

/* user, event_id and channel from the payload when it is a JSON object. */
static int derive_payload_fields(dlqrec *r)
{
    const char *user = NULL, *event_id = NULL, *channel = NULL;
    json_t *root = NULL;
    int rc = -1;
    if (r->value != NULL) {
        root = json_loadb(r->value, r->vlen, 0, NULL);
        if (json_is_object(root)) {
            /* A broadcast has no user_id: it is shown by its key, topic:<name>. */
            user = json_string_value(json_object_get(root, "user_id"));
            event_id = json_string_value(json_object_get(root, "event_id"));
            channel = json_string_value(json_object_get(root, "channel"));
        }
    }
    const char *from_meta = channel_of(r->stage, r->orig_topic);
    if (from_meta != NULL)
        channel = from_meta;
    if (user != NULL)
        r->user = strdup(user);
    else
        r->user = r->key != NULL && validate_utf8(r->key, r->keylen) ? strdup(r->key) : strdup("");
    r->event_id = strdup(event_id != NULL ? event_id : "");
    r->channel = strdup(channel != NULL ? channel : "");
    if (r->user != NULL && r->event_id != NULL && r->channel != NULL)
        rc = 0;
    json_decref(root);
    return rc;
}

int dlqrec_init(dlqrec *out, int32_t partition, int64_t offset, int64_t timestamp_ms,
                const void *key, size_t keylen, const void *value, size_t vlen,
                const rd_kafka_headers_t *hdrs, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->partition = partition;
    out->offset = offset;
    out->timestamp_ms = timestamp_ms;
    size_t n = hdrs != NULL ? rd_kafka_header_cnt(hdrs) : 0;
    if (n > DLQREC_MAX_HEADERS) {
        error_set(err, errlen, "record %d:%" PRId64 " has %zu headers (at most %d)", (int)partition,
                  offset, n, DLQREC_MAX_HEADERS);
        return -1;
    }
    if (key != NULL) {
        out->key = dup_bytes(key, keylen);
        out->keylen = keylen;
        if (out->key == NULL)
            goto oom;
    }
    if (value != NULL) {
        out->value = dup_bytes(value, vlen);
        out->vlen = vlen;
        if (out->value == NULL)
            goto oom;
    }
    if (n > 0 && (out->headers = calloc(n, sizeof(*out->headers))) == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        dlqrec_header *h = &out->headers[out->nheaders];
        h->name = strdup(name);
        h->value = dup_bytes(val != NULL ? val : "", val != NULL ? size : 0);
        h->len = val != NULL ? size : 0;
        out->nheaders++;
        if (h->name == NULL || h->value == NULL)
            goto oom;
    }
    out->stage = header_text(out, HDR_DLQ_STAGE);
    out->reason = header_text(out, HDR_DLQ_REASON);
    out->error = header_text(out, HDR_DLQ_ERROR);
    out->orig_topic = header_text(out, HDR_ORIGINAL_TOPIC);
    out->failed_at = header_text(out, HDR_FAILED_AT);
    int64_t part = header_int(out, HDR_ORIGINAL_PARTITION);
    out->orig_partition = part >= 0 && part <= INT32_MAX ? (int32_t)part : -1;
    out->orig_offset = header_int(out, HDR_ORIGINAL_OFFSET);
    out->orig_timestamp = header_int(out, HDR_ORIGINAL_TIMESTAMP);
    int64_t attempts = header_int(out, HDR_ATTEMPTS);
    out->attempts = attempts >= 0 && attempts <= INT32_MAX ? (int)attempts : -1;
    if (derive_payload_fields(out) != 0)
        goto oom;
    return 0;
oom:
    error_set(err, errlen, "out of memory");
    dlqrec_free(out);
    return -1;
}

void dlqrec_free(dlqrec *r)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->key);
    free(r->value);
    free(r->user);
    free(r->event_id);
    free(r->channel);
    memset(r, 0, sizeof(*r));
}

const dlqrec_header *dlqrec_header_get(const dlqrec *r, const char *name)
{
    /* The last one wins, as for kafka_header_get(). */
    for (size_t i = r->nheaders; i > 0; i--)
        if (r->headers[i - 1].name != NULL && strcmp(r->headers[i - 1].name, name) == 0)
            return &r->headers[i - 1];
    return NULL;
}

bool dlqrec_matches(const dlqrec *r, const dlqrec_filter *f)
{
    if (f == NULL)
        return true;
    if (f->stage != NULL && strcmp(r->stage, f->stage) != 0)
        return false;
    if (f->reason != NULL && strcmp(r->reason, f->reason) != 0)
        return false;
    if (f->channel != NULL && strcmp(r->channel, f->channel) != 0)
        return false;
    if (f->since_ms >= 0 && r->timestamp_ms < f->since_ms)
        return false;
    if (f->until_ms > 0 && r->timestamp_ms >= f->until_ms)
        return false;
    return true;
}

static json_t *text_or_null(const char *s, size_t len)
{
    if (s == NULL || !validate_utf8(s, len))
        return json_null();
    return json_stringn(s, len);
}

static json_t *time_or_null(int64_t ms)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    if (ms < 0)
        return json_null();
    return json_string(timeutil_format_rfc3339(ms, buf, sizeof(buf)));
}

static json_t *int_or_null(int64_t v)
{
    return v >= 0 ? json_integer((json_int_t)v) : json_null();
}

json_t *dlqrec_to_json(const dlqrec *r)
{
    json_t *o = json_object(), *orig = json_object(), *hdrs = json_object(), *payload = NULL;
    if (o == NULL || orig == NULL || hdrs == NULL)
        goto fail;
    for (size_t i = 0; i < r->nheaders; i++) {
        const dlqrec_header *h = &r->headers[i];
        if (validate_utf8(h->name, strlen(h->name)) &&
            json_object_set_new(hdrs, h->name, text_or_null(h->value, h->len)) != 0)
            goto fail;
    }
    if (r->value != NULL) {
        payload = json_loadb(r->value, r->vlen, JSON_DECODE_ANY, NULL);
        if (payload == NULL)
            payload = text_or_null(r->value, r->vlen);
    } else {
        payload = json_null();
    }
    int bad = 0;
    bad |= json_object_set_new(orig, "topic", json_string(r->orig_topic));
    bad |= json_object_set_new(orig, "partition", int_or_null(r->orig_partition));
    bad |= json_object_set_new(orig, "offset", int_or_null(r->orig_offset));
    bad |= json_object_set_new(orig, "timestamp", time_or_null(r->orig_timestamp));
    bad |= json_object_set_new(o, "partition", json_integer(r->partition));
    bad |= json_object_set_new(o, "offset", json_integer((json_int_t)r->offset));
    bad |= json_object_set_new(o, "timestamp", time_or_null(r->timestamp_ms));
    bad |= json_object_set_new(o, "key", r->key ? text_or_null(r->key, r->keylen) : json_null());
    bad |= json_object_set_new(o, "stage", json_string(r->stage));
    bad |= json_object_set_new(o, "reason", json_string(r->reason));
    bad |= json_object_set_new(o, "error", text_or_null(r->error, strlen(r->error)));
    bad |= json_object_set_new(o, "attempts", int_or_null(r->attempts));
    bad |= json_object_set_new(o, "failed_at", json_string(r->failed_at));
    bad |= json_object_set_new(o, "user_id", json_string(r->user));
    bad |= json_object_set_new(o, "event_id", json_string(r->event_id));
    bad |= json_object_set_new(o, "channel", json_string(r->channel));
    bad |= json_object_set_new(o, "original", orig);
    orig = NULL;
    bad |= json_object_set_new(o, "headers", hdrs);
    hdrs = NULL;
    bad |= json_object_set_new(o, "payload", payload);
    payload = NULL;
    if (bad)
        goto fail;
    return o;
fail:
    json_decref(o);
    json_decref(orig);
    json_decref(hdrs);
    json_decref(payload);
    return NULL;
}

int dlqrec_parse_position(const char *s, int32_t *partition, int64_t *offset, char *err,
                          size_t errlen)
{
    const char *colon = s != NULL ? strchr(s, ':') : NULL;
    if (colon == NULL || colon == s || colon[1] == '\0') {
        error_set(err, errlen, "expected PARTITION:OFFSET, got \"%.64s\"", s ? s : "");
        return -1;
    }
    for (const char *c = s; *c; c++) {
        if (c != colon && (*c < '0' || *c > '9')) {
            error_set(err, errlen,
                      "expected PARTITION:OFFSET (two non-negative integers), got "
                      "\"%.64s\"",
                      s);
            return -1;
        }
    }
    errno = 0;
    long long p = strtoll(s, NULL, 10);
    long long o = strtoll(colon + 1, NULL, 10);
    if (errno != 0 || p > INT32_MAX) {
        error_set(err, errlen, "PARTITION:OFFSET out of range: \"%.64s\"", s);
        return -1;
    }
    *partition = (int32_t)p;
    *offset = (int64_t)o;
    return 0;
}

char *dlqrec_position_id(const char *dlq_topic, const dlqrec *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s:%d:%" PRId64, dlq_topic, (int)r->partition, r->offset);
    return out;
}

int dlqrec_requeue_value(const dlqrec *r, char **out, size_t *outlen)
{
    json_t *root = NULL;
    *out = NULL;
    *outlen = 0;
    if (r->value == NULL)
        return 0;
    root = json_loadb(r->value, r->vlen, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(root) && json_is_integer(json_object_get(root, "attempt"))) {
        int rc = -1;
        if (json_object_set_new(root, "attempt", json_integer(1)) == 0 &&
            (*out = json_dumps(root, JSON_COMPACT)) != NULL) {
            *outlen = strlen(*out);
            rc = 0;
        }
        json_decref(root);
        return rc;
    }
    json_decref(root);
    /* Not a delivery: byte for byte what the stage failed on. */
    *out = dup_bytes(r->value, r->vlen);
    if (*out == NULL)
        return -1;
    *outlen = r->vlen;
    return 0;
}

/* The dead letter's headers, and an earlier requeue's: a requeue writes its own. */
static bool dead_letter_header(const char *name)
{
    return hdr_is_failure(name) || hdr_has_prefix(name, HDR_ORIGINAL_PREFIX) ||
           strcmp(name, HDR_REQUEUED_FROM) == 0 || strcmp(name, HDR_REQUEUED_AT) == 0;
}

rd_kafka_headers_t *dlqrec_requeue_headers(const dlqrec *r, const char *dlq_topic, int64_t now_ms)
{
    char from[512], at[TIMEUTIL_RFC3339_SIZE];
    rd_kafka_headers_t *h = rd_kafka_headers_new(r->nheaders + 2);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++) {
        const dlqrec_header *hd = &r->headers[i];
        if (dead_letter_header(hd->name))
            continue;
        if (rd_kafka_header_add(h, hd->name, -1, hd->value, (ssize_t)hd->len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            goto fail;
    }
    dlqrec_position_id(dlq_topic, r, from, sizeof(from));
    timeutil_format_rfc3339(now_ms, at, sizeof(at));
    if (rd_kafka_header_add(h, HDR_REQUEUED_FROM, -1, from, -1) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_add(h, HDR_REQUEUED_AT, -1, at, -1) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto fail;
    return h;
fail:
    rd_kafka_headers_destroy(h);
    return NULL;
}

/* ------------------------------------------------------------------ stats */

/* Few distinct (stage, reason) pairs exist: a sorted array is enough. */
struct dlqrec_stats {
    dlqrec_stats_row *rows;
    size_t n, cap;
    int64_t total;
};

dlqrec_stats *dlqrec_stats_new(void)
{
    return calloc(1, sizeof(dlqrec_stats));
}

static int row_cmp(const char *stage, const char *reason, const dlqrec_stats_row *row)
{
    int c = strcmp(stage, row->stage);
    return c != 0 ? c : strcmp(reason, row->reason);
}

int dlqrec_stats_add(dlqrec_stats *s, const dlqrec *r)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = row_cmp(r->stage, r->reason, &s->rows[mid]);
        if (c == 0) {
            lo = mid;
            goto found;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (s->n == s->cap) {
        dlqrec_stats_row *rows = vec_grow(s->rows, &s->cap, sizeof(*rows));
        if (rows == NULL)
            return -1;
        s->rows = rows;
    }
    char *stage = strdup(r->stage), *reason = strdup(r->reason);
    if (stage == NULL || reason == NULL) {
        free(stage);
        free(reason);
        return -1;
    }
    memmove(&s->rows[lo + 1], &s->rows[lo], (s->n - lo) * sizeof(*s->rows));
    s->rows[lo] = (dlqrec_stats_row){stage, reason, 0, -1, -1};
    s->n++;
found:;
    dlqrec_stats_row *row = &s->rows[lo];
    row->count++;
    s->total++;
    if (r->timestamp_ms >= 0) {
        if (row->oldest_ms < 0 || r->timestamp_ms < row->oldest_ms)
            row->oldest_ms = r->timestamp_ms;
        if (r->timestamp_ms > row->newest_ms)
            row->newest_ms = r->timestamp_ms;
    }
    return 0;
}

size_t dlqrec_stats_rows(dlqrec_stats *s, const dlqrec_stats_row **rows)
{
    *rows = s->rows;
    return s->n;
}

int64_t dlqrec_stats_total(const dlqrec_stats *s)
{
    return s->total;
}

/* heraldctl's form of a time: "-" when unknown. */
static const char *time_or_dash(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else
        timeutil_format_rfc3339(ms, buf, len);
    return buf;
}

json_t *dlqrec_stats_to_json(dlqrec_stats *s, const char *rows_key)
{
    const dlqrec_stats_row *rows = NULL;
    size_t n = dlqrec_stats_rows(s, &rows);
    json_t *list = json_array();
    json_t *j = json_pack("{s:I,s:o}", "total", (json_int_t)s->total, rows_key, list);
    char oldest[TIMEUTIL_RFC3339_SIZE], newest[TIMEUTIL_RFC3339_SIZE];
    for (size_t i = 0; j != NULL && i < n; i++) {
        json_t *g = json_pack("{s:s,s:s,s:I,s:s,s:s}", "stage", rows[i].stage, "reason",
                              rows[i].reason, "count", (json_int_t)rows[i].count, "oldest",
                              time_or_dash(rows[i].oldest_ms, oldest, sizeof(oldest)), "newest",
                              time_or_dash(rows[i].newest_ms, newest, sizeof(newest)));
        if (g == NULL || json_array_append_new(list, g) != 0) {
            json_decref(j);
            return NULL;
        }
    }
    return j;
}

void dlqrec_stats_free(dlqrec_stats *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free((char *)s->rows[i].stage);
        free((char *)s->rows[i].reason);
    }
    free(s->rows);
    free(s);
}

/*
 * rtframe: see rtframe.h.
 */
#include "rtframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "jsonw.h"

/* Events are small: counts and at most INBOX_UPDATE_IDS_MAX ids. */
#define FRAME_MAX (64 * 1024)

rtframe *rtframe_ref(rtframe *f)
{
    f->refs++;
    return f;
}

void rtframe_unref(rtframe *f)
{
    if (f != NULL && --f->refs == 0)
        free(f);
}

/* Moves the JSON in b into a new frame of seq; b is freed either way. */
static rtframe *frame_of(buf *b, int64_t seq)
{
    rtframe *f = malloc(sizeof *f + RTFRAME_PRE + b->len + 1);
    if (f != NULL) {
        f->refs = 1;
        f->seq = seq;
        f->len = b->len;
        memset(f->data, 0, RTFRAME_PRE);
        memcpy(rtframe_text(f), b->data, b->len);
        rtframe_text(f)[b->len] = '\0';
    }
    buf_free(b);
    return f;
}

static void write_counts(jsonw *w, const rtframe_counts *c)
{
    jsonw_int(w, JSONW_NAME("unread_count"), c->unread);
    jsonw_int(w, JSONW_NAME("unseen_count"), c->unseen);
}

static rtframe *counts_like(const char *type, const rtframe_counts *c)
{
    buf b;
    jsonw w;
    buf_init(&b, FRAME_MAX);
    jsonw_begin(&w, &b);
    jsonw_str(&w, JSONW_NAME("type"), type);
    jsonw_int(&w, JSONW_NAME("seq"), c->seq);
    write_counts(&w, c);
    if (jsonw_end(&w) != 0) {
        buf_free(&b);
        return NULL;
    }
    return frame_of(&b, c->seq);
}

rtframe *rtframe_counts_new(const rtframe_counts *c)
{
    return counts_like("counts", c);
}

rtframe *rtframe_reset_new(const rtframe_counts *c)
{
    return counts_like("reset", c);
}

rtframe *rtframe_change_new(const char *kind, int64_t seq, const json_t *message_ids,
                            const rtframe_counts *c)
{
    if (!json_is_array(message_ids))
        return NULL;
    buf b;
    jsonw w;
    buf_init(&b, FRAME_MAX);
    jsonw_begin(&w, &b);
    jsonw_str(&w, JSONW_NAME("type"), kind);
    jsonw_int(&w, JSONW_NAME("seq"), seq);
    jsonw_json(&w, JSONW_NAME("message_ids"), message_ids, false);
    write_counts(&w, c);
    if (jsonw_end(&w) != 0) {
        buf_free(&b);
        return NULL;
    }
    return frame_of(&b, seq);
}

/* A count field: an integer >= 0. */
static int count_field(const json_t *root, const char *name, long long *out, char *err,
                       size_t errlen)
{
    const json_t *v = json_object_get(root, name);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return error_set(err, errlen, "%s: expected an integer >= 0", name);
    *out = json_integer_value(v);
    return 0;
}

int rtframe_from_update(const char *json, size_t len, char *user_out, rtframe **out, char *err,
                        size_t errlen)
{
    int rc = -1;
    json_error_t jerr;
    rtframe_counts c = {0};
    *out = NULL;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        error_set(err, errlen, "not a JSON object");
        goto out;
    }
    const char *user = json_string_value(json_object_get(root, "user_id"));
    char why[160];
    if (user == NULL) {
        error_set(err, errlen, "user_id: expected a string");
        goto out;
    }
    if (validate_user_id(user, strlen(user), why, sizeof why) != 0) {
        error_set(err, errlen, "user_id: %s", why);
        goto out;
    }
    const json_t *seq = json_object_get(root, "seq");
    if (!json_is_integer(seq) || json_integer_value(seq) < 1) {
        error_set(err, errlen, "seq: expected an integer >= 1");
        goto out;
    }
    c.seq = json_integer_value(seq);
    const char *kind = json_string_value(json_object_get(root, "kind"));
    if (kind == NULL || (strcmp(kind, "message") != 0 && strcmp(kind, "state") != 0)) {
        error_set(err, errlen, "kind: expected \"message\" or \"state\"");
        goto out;
    }
    const json_t *ids = json_object_get(root, "message_ids");
    size_t i;
    const json_t *id;
    if (!json_is_array(ids)) {
        error_set(err, errlen, "message_ids: expected an array");
        goto out;
    }
    json_array_foreach(ids, i, id)
    {
        if (!json_is_string(id)) {
            error_set(err, errlen, "message_ids: expected strings");
            goto out;
        }
    }
    if (count_field(root, "unread_count", &c.unread, err, errlen) != 0 ||
        count_field(root, "unseen_count", &c.unseen, err, errlen) != 0)
        goto out;
    *out = rtframe_change_new(kind, c.seq, ids, &c);
    if (*out == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    snprintf(user_out, VALIDATE_USER_ID_MAX + 1, "%s", user);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

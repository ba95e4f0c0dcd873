/*
 * inbox_api: list, count and mark a user's inbox messages.
 */
#include "inbox_api.h"

#include "inbox.h"
#include "buf.h"
#include "inbox_update.h"
#include "log.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *query_param(void *ctx, const char *name)
{
    return http_request_query(ctx, name);
}

static json_t *counts_json(const store_inbox_state *s)
{
    return json_pack("{s:I,s:I,s:I}", "unread_count", (json_int_t)s->unread, "unseen_count",
                     (json_int_t)s->unseen, "seq", (json_int_t)s->seq);
}

/* Sets key to the cursor of c in doc. */
static void put_cursor(json_t *doc, const char *key, const inbox_cursor *c)
{
    char text[INBOX_CURSOR_SIZE];
    if (inbox_cursor_encode(c, text, sizeof text) == 0)
        json_object_set_new(doc, key, json_string(text));
}

/*
 * next_cursor leads to older messages (pass it as after), prev_cursor to
 * newer ones (as before); each is there only when that way has more.
 * Read with before, the page is the one just newer than the cursor, so the
 * cursor's own message is older still.
 */
static json_t *page_json(const inbox_query *q, store_inbox_page_result *page,
                         const store_inbox_state *counts)
{
    json_t *doc = json_pack("{s:o,s:I,s:I}", "messages", page->messages, "unread_count",
                            (json_int_t)counts->unread, "unseen_count", (json_int_t)counts->unseen);
    page->messages = NULL;
    if (doc == NULL || page->count == 0)
        return doc;
    bool older = q->direction == INBOX_BEFORE || page->more;
    bool newer = q->direction == INBOX_AFTER || (q->direction == INBOX_BEFORE && page->more);
    if (older)
        put_cursor(doc, "next_cursor", &page->last);
    if (newer)
        put_cursor(doc, "prev_cursor", &page->first);
    return doc;
}

void inbox_api_list(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    inbox_query q;
    inbox_error e;
    store_inbox_state counts;
    store_inbox_page_result page = {0};
    char err[256];
    pg_conn *c = NULL;
    const char *id = api_user_id(req, call);
    if (id == NULL)
        goto out;
    if (inbox_parse_query(query_param, req, &q, &e) != 0) {
        api_bad_field(req, e.field, e.message);
        goto out;
    }
    if ((c = api_db(env, req)) == NULL)
        goto out;
    store_status st = store_inbox_counts(c, id, &counts, err, sizeof err);
    if (st == STORE_OK)
        st = store_inbox_page(c, id, &q, &page, err, sizeof err);
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        goto out;
    }
    http_respond_json(req, 200, page_json(&q, &page, &counts));
out:
    json_decref(page.messages);
    pgpool_release(env->pool, c);
}

/* The counts as a user document, for api_user_get. */
static store_status counts_doc(pg_conn *c, const char *user_id, json_t **out, char *err,
                               size_t errlen)
{
    store_inbox_state counts;
    store_status st = store_inbox_counts(c, user_id, &counts, err, errlen);
    if (st == STORE_OK)
        *out = counts_json(&counts);
    return st;
}

void inbox_api_counts(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    api_user_get(env, req, call, counts_doc);
}

/* Runs on the producer's poll thread: a lost update is only counted. */
static void update_delivered(void *opaque, publisher_result result, const char *errstr,
                             int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    api_env *env = opaque;
    if (result != PUBLISHER_OK) {
        LOG_WARN(env->inbox_updates_topic, "inbox update not produced: %s", errstr);
        metrics_counter_inc(env->inbox_updates_failed);
    }
}

/* Announces a committed change on inbox.updates (docs/inapp.md). */
static void publish_update(api_env *env, const char *user_id, const store_inbox_change *ch)
{
    char err[256];
    size_t n = json_array_size(ch->message_ids), len = 0;
    const char *ids[INBOX_UPDATE_IDS_MAX];
    for (size_t i = 0; i < n && i < INBOX_UPDATE_IDS_MAX; i++)
        ids[i] = json_string_value(json_array_get(ch->message_ids, i));
    const inbox_update u = {
        .user_id = user_id,
        .seq = ch->state.seq,
        .kind = INBOX_UPDATE_STATE,
        .message_ids = ids,
        .nmessage_ids = n, /* past the maximum the record lists none */
        .unread_count = ch->state.unread,
        .unseen_count = ch->state.unseen,
        .at_ms = timeutil_now_ms(),
    };
    buf b;
    buf_init(&b, 0);
    char *value = inbox_update_write(&b, &u) == 0 ? buf_steal(&b, &len) : NULL;
    buf_free(&b);
    if (value == NULL) {
        snprintf(err, sizeof err, "out of memory");
        goto failed;
    }
    publisher_result r =
        publisher_send_with(env->pub, update_delivered, env->inbox_updates_topic, user_id,
                            strlen(user_id), value, len, env, err, sizeof err);
    free(value);
    if (r == PUBLISHER_OK)
        return;
failed:
    LOG_WARN(env->inbox_updates_topic, "inbox update of %s (seq %lld) not produced: %s", user_id,
             (long long)ch->state.seq, err);
    metrics_counter_inc(env->inbox_updates_failed);
}

void inbox_api_mark(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    json_t *body = NULL;
    inbox_mark *m = NULL;
    inbox_error e;
    store_inbox_change ch = {0};
    char err[256];
    pg_conn *c = NULL;
    const char *id = api_user_id(req, call);
    if (id == NULL || api_body_object(req, &body) != 0)
        goto out;
    if ((m = malloc(sizeof *m)) == NULL) {
        http_respond_error(req, 503, "overloaded", "out of memory", NULL);
        goto out;
    }
    if (inbox_parse_mark(body, m, &e) != 0) {
        api_bad_field(req, e.field, e.message);
        goto out;
    }
    if ((c = api_db(env, req)) == NULL)
        goto out;
    store_status st = store_inbox_mark(c, id, m, &ch, err, sizeof err);
    pgpool_release(env->pool, c);
    c = NULL;
    if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        goto out;
    }
    if (ch.changed > 0)
        publish_update(env, id, &ch);
    http_respond_json(req, 200,
                      json_pack("{s:I,s:I,s:I,s:I}", "changed", (json_int_t)ch.changed,
                                "unread_count", (json_int_t)ch.state.unread, "unseen_count",
                                (json_int_t)ch.state.unseen, "seq", (json_int_t)ch.state.seq));
out:
    json_decref(ch.message_ids);
    pgpool_release(env->pool, c);
    free(m);
    json_decref(body);
}

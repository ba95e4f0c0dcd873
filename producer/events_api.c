/*
 * events_api: publish one or many events, read an event's deliveries.
 *
 * A publish runs in two halves on the HTTP workers.  The first (BODY)
 * validates, claims idempotency keys, suspends the request and hands the
 * records to the publisher.  Delivery reports arrive on the publisher's
 * poll thread, which only records the outcome and, for the last record of
 * the request, resumes it.  The second half (RESUMED) releases the claims of
 * records that failed and answers.  A count of outstanding records, started
 * one above the number sent, keeps the request suspended until both the
 * sending loop and every report are done, whichever finishes last.
 */
#include "events_api.h"

#include "apikey.h"
#include "buf.h"
#include "ids.h"
#include "log.h"
#include "timeutil.h"
#include "validate.h"
#include "wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long past the publish timeout a claim may stay unconfirmed before a
 * replay takes it as settled: the database round trips around a publish. */
#define IDEM_MARGIN_MS 5000

typedef enum {
    ITEM_INVALID = 0, /* refused before publishing: code/message/field say why */
    ITEM_REPLAY,      /* an idempotency key already used: its event id, nothing sent */
    ITEM_SENT,        /* handed to the publisher, outcome pending */
    ITEM_DONE,        /* outcome in result */
} item_state;

typedef struct pub_work pub_work;

typedef struct pub_item {
    pub_work *work;
    item_state state;
    publisher_result result;
    char event_id[ID_UUID_SIZE];
    char *idem_key;           /* owned; set when this item claimed a key */
    bool retaken;             /* the key's first publish was in doubt: never release it */
    struct pub_item *same_as; /* an earlier item of the batch, same key and request:
                               * this one answers as it does, nothing sent */
    int http_status;          /* for ITEM_INVALID: 400, 503, ... */
    char code[32];
    char field[96];
    char message[256];
} pub_item;

struct pub_work {
    http_request *req;
    atomic_int outstanding;
    int64_t key_id;
    size_t n;
    pub_item items[];
};

static void work_free(void *p)
{
    pub_work *w = p;
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->items[i].idem_key);
    free(w);
}

static void item_fail(pub_item *it, int status, const char *code, const char *field,
                      const char *message)
{
    it->state = ITEM_INVALID;
    it->http_status = status;
    snprintf(it->code, sizeof it->code, "%s", code);
    snprintf(it->field, sizeof it->field, "%s", field != NULL ? field : "");
    snprintf(it->message, sizeof it->message, "%s", message);
}

/* One finished record; the last one of a request resumes it. */
static void item_finished(pub_item *it)
{
    pub_work *w = it->work;
    if (atomic_fetch_sub_explicit(&w->outstanding, 1, memory_order_acq_rel) == 1)
        http_request_resume(w->req);
}

void events_api_delivered(void *opaque, publisher_result result, const char *errstr,
                          int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    pub_item *it = opaque;
    it->result = result;
    if (result != PUBLISHER_OK)
        snprintf(it->message, sizeof it->message, "%s", errstr != NULL ? errstr : "");
    it->state = ITEM_DONE;
    item_finished(it);
}

/* One item between validation and sending: the event and its record. */
typedef struct prepared {
    event ev;
    char *wire; /* the record (owned), NULL when the item was refused */
    size_t len;
    unsigned char hash[ID_SHA256_LEN]; /* wire_request_hash() */
} prepared;

/*
 * Validates one event object into it (event id and time assigned) and
 * serializes it.  Returns the wire JSON (free()) or NULL with it failed.
 */
static char *prepare_item(api_env *env, json_t *obj, pub_item *it, event *ev,
                          const char *header_key, size_t *wlen, unsigned char hash[ID_SHA256_LEN])
{
    char field[64] = "", err[256];
    char *wire = NULL;
    if (!json_is_object(obj)) {
        item_fail(it, 400, "invalid_field", "", "an event must be a JSON object");
        return NULL;
    }
    if (event_from_request(obj, ev, &env->ev_limits, field, sizeof field, err, sizeof err) != 0) {
        item_fail(it, 400, "invalid_field", field, err);
        return NULL;
    }
    if (header_key != NULL) {
        if (ev->idempotency_key != NULL && strcmp(ev->idempotency_key, header_key) != 0) {
            item_fail(it, 400, "invalid_field", "idempotency_key",
                      "idempotency_key: differs from the Idempotency-Key header");
            return NULL;
        }
        if (ev->idempotency_key == NULL && (ev->idempotency_key = strdup(header_key)) == NULL) {
            item_fail(it, 503, "overloaded", NULL, "out of memory");
            return NULL;
        }
    }
    ev->api_key_id = it->work->key_id; /* whose status webhooks hear of it */
    if (wire_request_hash(ev, hash) != 0) {
        item_fail(it, 503, "overloaded", NULL, "out of memory");
        return NULL;
    }
    if (wire_event_id(ev->event_id) != 0) {
        item_fail(it, 503, "unavailable", NULL, "no randomness for an event id");
        return NULL;
    }
    ev->created_at = timeutil_now_ms();
    if (wire_event(ev, &wire, wlen) != 0) {
        item_fail(it, 400, "invalid_field", "", "the event cannot be serialized");
        return NULL;
    }
    memcpy(it->event_id, ev->event_id, sizeof it->event_id);
    return wire;
}

/* Gives a prepared item the event id an earlier claim of its key holds. */
static int rebind_item(pub_item *it, prepared *pre, const char *event_id)
{
    char *wire = NULL, *key = strdup(pre->ev.idempotency_key);
    size_t len = 0;
    snprintf(pre->ev.event_id, sizeof pre->ev.event_id, "%s", event_id);
    if (key == NULL || wire_event(&pre->ev, &wire, &len) != 0) {
        free(key);
        return -1;
    }
    it->idem_key = key;
    it->retaken = true;
    free(pre->wire);
    pre->wire = wire;
    pre->len = len;
    snprintf(it->event_id, sizeof it->event_id, "%s", event_id);
    return 0;
}

/*
 * Opens the claims' transaction on a pooled connection.  Returns -1,
 * answered, on failure; *c is set whenever a connection was taken.
 */
static int claims_begin(api_env *env, http_request *req, pg_conn **c)
{
    char err[256];
    if ((*c = api_db(env, req)) == NULL)
        return -1;
    if (pg_begin(*c, err, sizeof err) != PG_OK) {
        api_store_error(req, STORE_UNAVAILABLE, "idempotency key", err);
        return -1;
    }
    return 0;
}

/* Refuses an item whose key was used for a different request (Stripe's 422). */
static void key_reused(pub_item *it)
{
    item_fail(it, 422, "idempotency_key_reused", "idempotency_key",
              "this idempotency key was already used for a different request; use a new key "
              "for a new event");
}

/*
 * An earlier item of the batch under item i's key, or NULL: item i then
 * answers as that one if both are the same request, else is refused.
 */
static pub_item *batch_same_key(pub_work *w, const prepared *pre, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (pre[j].wire != NULL && pre[j].ev.idempotency_key != NULL &&
            strcmp(pre[j].ev.idempotency_key, pre[i].ev.idempotency_key) == 0)
            return &w->items[j];
    return NULL;
}

/*
 * Claims one item's key in the open transaction: the item then holds the
 * key, republishes an event in doubt, replays one or is refused while the
 * key is in flight.  Returns -1, answered, when the claim cannot be made.
 */
static int claim_key(api_env *env, http_request *req, pg_conn *c, pub_item *it, prepared *pre)
{
    store_idem_state state;
    char existing[ID_UUID_SIZE], err[256];
    store_status st = store_idem_claim(c, it->work->key_id, pre->ev.idempotency_key, it->event_id,
                                       pre->hash, env->publish_timeout_ms + IDEM_MARGIN_MS, &state,
                                       existing, err, sizeof err);
    if (st != STORE_OK) {
        api_store_error(req, st, "idempotency key", err);
        return -1;
    }
    switch (state) {
    case STORE_IDEM_CLAIMED:
        if ((it->idem_key = strdup(pre->ev.idempotency_key)) == NULL) {
            http_respond_retry(req, 503, "overloaded", "out of memory", 1);
            return -1;
        }
        break;
    case STORE_IDEM_RETAKEN:
        /* The first publish under this key is in doubt: send its event
         * again, under its own id. */
        if (rebind_item(it, pre, existing) != 0) {
            /* Left unconfirmed, as it was: a later retry takes it again. */
            http_respond_retry(req, 503, "overloaded", "out of memory", 1);
            return -1;
        }
        break;
    case STORE_IDEM_REPLAY:
        it->state = ITEM_REPLAY;
        snprintf(it->event_id, sizeof it->event_id, "%s", existing);
        break;
    case STORE_IDEM_IN_FLIGHT:
        /* Its event id cannot be promised yet: that publish may still fail. */
        item_fail(it, 409, "idempotency_in_progress", "idempotency_key",
                  "a request with this idempotency key is still being published; retry "
                  "shortly");
        break;
    case STORE_IDEM_REUSED:
        key_reused(it);
        break;
    }
    return 0;
}

/*
 * Commits the claims.  Returns -1, answered, when not committed, with
 * *unknown set when the COMMIT's answer was lost with the connection.
 */
static int claims_commit(http_request *req, pg_conn *c, bool *unknown)
{
    char err[256];
    pg_status ps = pg_commit(c, err, sizeof err);
    if (ps == PG_OK)
        return 0;
    api_store_error(req, STORE_UNAVAILABLE, "idempotency key", err);
    *unknown = ps == PG_RETRY || ps == PG_DOWN;
    return -1;
}

/*
 * Undoes the claims of a request that will send nothing: a rollback while
 * the transaction stands, else, after a COMMIT whose answer was lost,
 * a release of each claim but those retaken, which stay in doubt.
 */
static void claims_undo(http_request *req, pub_work *w, pg_conn *c, bool unknown)
{
    char err[256];
    if (c != NULL && pg_in_transaction(c)) {
        if (pg_rollback(c, err, sizeof err) != PG_OK)
            LOG_WARN(http_request_id(req), "idempotency claims not rolled back: %s", err);
        return;
    }
    if (!unknown)
        return;
    for (size_t i = 0; i < w->n; i++) {
        pub_item *it = &w->items[i];
        if (it->idem_key != NULL && !it->retaken &&
            store_idem_release(c, w->key_id, it->idem_key, it->event_id, err, sizeof err) !=
                STORE_OK)
            LOG_WARN(http_request_id(req), "idempotency key not released: %s", err);
    }
}

/*
 * Claims the items' idempotency keys.  An item whose key was used before
 * becomes a replay of that event id.  Returns -1 (and answers 503) when the
 * database cannot be reached: no publish without its claim.
 *
 * The claims of a request are one transaction.  A claim left behind by a
 * request that failed halfway is a publish in doubt to every retry (409 for
 * the in-flight window, then taken for one that may have been sent), and
 * releasing the claims already made cannot be relied on when the server
 * went away halfway through; a rollback, by the server itself when the
 * connection is lost, can.  Only a COMMIT whose answer was lost leaves
 * claims that may stand; those are released, as before.
 */
static int claim_keys(api_env *env, http_request *req, pub_work *w, prepared *pre)
{
    pg_conn *c = NULL;
    int rc = 0;
    bool unknown = false; /* the COMMIT's answer was lost: the claims may stand */
    for (size_t i = 0; i < w->n; i++) {
        pub_item *it = &w->items[i];
        if (it->state != ITEM_SENT || pre[i].ev.idempotency_key == NULL)
            continue;
        pub_item *first = batch_same_key(w, pre, i);
        if (first != NULL) {
            if (memcmp(pre[first - w->items].hash, pre[i].hash, ID_SHA256_LEN) != 0) {
                key_reused(it);
            } else {
                it->state = ITEM_REPLAY;
                it->same_as = first;
            }
            continue;
        }
        if (c == NULL && (rc = claims_begin(env, req, &c)) != 0)
            goto out;
        if ((rc = claim_key(env, req, c, it, &pre[i])) != 0)
            goto out;
    }
    if (c != NULL)
        rc = claims_commit(req, c, &unknown);
out:
    if (rc != 0)
        claims_undo(req, w, c, unknown);
    pgpool_release(env->pool, c);
    return rc;
}

/* Sends every item still ITEM_SENT; the request is suspended first. */
static void send_items(api_env *env, pub_work *w, const prepared *pre)
{
    atomic_store(&w->outstanding, 1);
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].state == ITEM_SENT)
            atomic_fetch_add(&w->outstanding, 1);
    http_request_suspend(w->req);
    for (size_t i = 0; i < w->n; i++) {
        pub_item *it = &w->items[i];
        if (it->state != ITEM_SENT)
            continue;
        char topic_key[EVENT_KAFKA_KEY_SIZE], err[256];
        /* event_kafka_key() without its copy for the common case: a user's
         * events are keyed by the user id itself. */
        const char *key = pre[i].ev.user_id != NULL
                              ? pre[i].ev.user_id
                              : event_kafka_key(&pre[i].ev, topic_key, sizeof topic_key);
        publisher_result r = publisher_send(env->pub, env->events_topic, key, strlen(key),
                                            pre[i].wire, pre[i].len, it, err, sizeof err);
        if (r != PUBLISHER_OK) {
            it->result = r;
            snprintf(it->message, sizeof it->message, "%s", err);
            it->state = ITEM_DONE;
            item_finished(it);
        }
    }
    item_finished(&(pub_item){.work = w}); /* drops the count's extra one */
}

/* The batch answer; the first failed append latches (the answer becomes a
 * 503).  Bounded by its use: API_MAX_BATCH items of a few hundred bytes each. */
typedef struct text_buf {
    buf text;
    bool failed;
} text_buf;

static void text_put(text_buf *b, const char *s, size_t n)
{
    if (!b->failed && buf_append(&b->text, s, n) != 0)
        b->failed = true;
}

/* Turns a finished item's outcome into an answer: 202 or an error. */
static void item_outcome(pub_item *it, int *status, const char **code, const char **message)
{
    *message = it->message;
    switch (it->state) {
    case ITEM_INVALID:
        *status = it->http_status;
        *code = it->code;
        return;
    case ITEM_REPLAY:
    case ITEM_SENT:
        *status = 202;
        *code = NULL;
        return;
    case ITEM_DONE:
        break;
    }
    switch (it->result) {
    case PUBLISHER_OK:
        *status = 202;
        *code = NULL;
        return;
    case PUBLISHER_QUEUE_FULL:
        *status = 503;
        *code = "queue_full";
        *message = "the gateway's publish queue is full; retry shortly";
        return;
    case PUBLISHER_UNAVAILABLE:
    case PUBLISHER_IN_DOUBT:
        *status = 503;
        *code = "broker_unavailable";
        return;
    case PUBLISHER_FAILED:
        break;
    }
    *status = 500;
    *code = "publish_failed";
}

/*
 * Confirms the claims of items Kafka acknowledged and releases those whose
 * record surely was not written.  An item in doubt keeps its claim
 * unconfirmed: its record may be in Kafka, so a retry under the same key
 * must publish the same event id again (store_idem_claim's STORE_IDEM_RETAKEN),
 * which the dispatcher's delivery keys turn into no second notification.
 */
static void settle_claims(api_env *env, http_request *req, pub_work *w)
{
    pg_conn *c = NULL;
    for (size_t i = 0; i < w->n; i++) {
        pub_item *it = &w->items[i];
        if (it->idem_key == NULL || it->state != ITEM_DONE)
            continue;
        if (it->result != PUBLISHER_OK && (it->result == PUBLISHER_IN_DOUBT || it->retaken))
            continue;
        char err[256];
        if (c == NULL) {
            c = pgpool_acquire(env->pool, API_DB_WAIT_MS, err, sizeof err);
            if (c == NULL) {
                /* Unconfirmed claims settle by age; unreleased ones block retries until then. */
                LOG_WARN(http_request_id(req), "idempotency keys not settled: %s", err);
                return;
            }
        }
        store_status st =
            it->result == PUBLISHER_OK
                ? store_idem_confirm(c, w->key_id, it->idem_key, it->event_id, err, sizeof err)
                : store_idem_release(c, w->key_id, it->idem_key, it->event_id, err, sizeof err);
        if (st != STORE_OK)
            LOG_WARN(http_request_id(req), "idempotency key not settled: %s", err);
    }
    pgpool_release(env->pool, c);
}

static void observe(api_env *env, http_request *req, pub_work *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now_us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
    double secs = (double)(now_us - http_request_start_us(req)) / 1e6;
    metrics_histogram_observe(env->publish_latency, secs);
    uint64_t ok = 0;
    for (size_t i = 0; i < w->n; i++)
        if (w->items[i].state == ITEM_DONE && w->items[i].result == PUBLISHER_OK)
            ok++;
    metrics_counter_add(env->published_events, ok);
}

static pub_work *work_new(http_request *req, api_call *call, size_t n)
{
    pub_work *w = calloc(1, sizeof *w + n * sizeof(pub_item));
    if (w == NULL) {
        http_respond_retry(req, 503, "overloaded", "out of memory", 1);
        return NULL;
    }
    w->req = req;
    w->key_id = call->key_id;
    w->n = n;
    for (size_t i = 0; i < n; i++) {
        w->items[i].work = w;
        w->items[i].state = ITEM_SENT;
    }
    call->work = w;
    call->work_free = work_free;
    return w;
}

/*
 * The common first half: items[i] from objs[i]; answers itself and
 * returns when nothing needs sending.
 */
static void publish_start(api_env *env, http_request *req, pub_work *w, json_t *const *objs,
                          const char *header_key)
{
    prepared one = {0};
    prepared *pre = w->n == 1 ? &one : calloc(w->n, sizeof *pre);
    size_t to_send = 0;
    if (pre == NULL) {
        http_respond_retry(req, 503, "overloaded", "out of memory", 1);
        return;
    }
    for (size_t i = 0; i < w->n; i++) {
        pre[i].wire = prepare_item(env, objs[i], &w->items[i], &pre[i].ev, header_key, &pre[i].len,
                                   pre[i].hash);
        if (pre[i].wire != NULL)
            to_send++;
    }
    if (to_send == 0 || claim_keys(env, req, w, pre) == 0)
        send_items(env, w, pre);
    for (size_t i = 0; i < w->n; i++) {
        event_free(&pre[i].ev);
        free(pre[i].wire);
    }
    if (pre != &one)
        free(pre);
}

void events_api_publish(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    pub_work *w = call->work;
    if (phase == HTTP_PHASE_RESUMED) {
        settle_claims(env, req, w);
        observe(env, req, w);
        pub_item *it = &w->items[0];
        int status;
        const char *code, *message;
        item_outcome(it, &status, &code, &message);
        http_request_log_field(req, "event_id", it->event_id);
        if (status == 202) {
            if (it->state == ITEM_REPLAY)
                http_add_header(req, "Idempotent-Replayed", "true");
            char doc[WIRE_ACCEPTED_SIZE];
            size_t len = wire_accepted(it->event_id, doc);
            http_respond(req, 202, "application/json", doc, len);
        } else if (status == 503 || status == 409) {
            http_respond_retry(req, status, code, message, 1);
        } else {
            http_respond_error(req, status, code, message, it->field);
        }
        return;
    }

    const char *key = http_request_header(req, "Idempotency-Key");
    char err[160];
    if (key != NULL && validate_idempotency_key(key, strlen(key), err, sizeof err) != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "Idempotency-Key %s", err);
        api_bad_field(req, "Idempotency-Key", msg);
        return;
    }
    json_t *body = NULL;
    if (api_body_object(req, &body) != 0)
        return;
    if ((w = work_new(req, call, 1)) != NULL)
        publish_start(env, req, w, &body, key);
    json_decref(body);
}

/* Appends one item's result to the batch answer; returns the item's status. */
static int batch_put_result(text_buf *b, pub_item *it)
{
    if (it->same_as != NULL)
        it = it->same_as;
    int status;
    const char *code, *message;
    item_outcome(it, &status, &code, &message);
    if (status == 202) {
        char item[WIRE_ACCEPTED_SIZE];
        text_put(b, item, wire_accepted(it->event_id, item));
        return status;
    }
    /* Refusals are rare and carry free text: jansson escapes it. */
    json_t *r = it->field[0] != '\0'
                    ? json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", message,
                                "field", it->field)
                    : json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *text = r != NULL ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    if (text == NULL)
        b->failed = true;
    else
        text_put(b, text, strlen(text));
    free(text);
    return status;
}

/*
 * The batch's status and the tail that closes its answer: 202 when any item
 * was accepted, else why none was: the broker, a key in flight, the items.
 */
static int batch_status(size_t accepted, size_t unavailable, size_t in_flight, const char **tail)
{
    if (accepted > 0) {
        *tail = "]}";
        return 202;
    }
    if (unavailable > 0) {
        *tail = "],\"error\":{\"code\":\"broker_unavailable\",\"message\":\"no event of the "
                "batch was accepted; retry\"}}";
        return 503;
    }
    if (in_flight > 0) {
        *tail = "],\"error\":{\"code\":\"idempotency_in_progress\",\"message\":\"no event of "
                "the batch was accepted; some are still being published under their "
                "idempotency keys\"}}";
        return 409;
    }
    *tail = "],\"error\":{\"code\":\"invalid_batch\",\"message\":\"no event of the batch "
            "is valid\"}}";
    return 400;
}

/* Answers a finished batch: every item's result, then the batch's status. */
static void batch_answer(http_request *req, pub_work *w)
{
    size_t accepted = 0, unavailable = 0, in_flight = 0;
    text_buf b = {.failed = false};
    buf_init(&b.text, 0);
    static const char head[] = "{\"results\":[";
    text_put(&b, head, sizeof head - 1);
    for (size_t i = 0; i < w->n; i++) {
        if (i > 0)
            text_put(&b, ",", 1);
        int status = batch_put_result(&b, &w->items[i]);
        if (status == 202)
            accepted++;
        else if (status == 503)
            unavailable++;
        else if (status == 409)
            in_flight++;
    }
    const char *tail;
    int status = batch_status(accepted, unavailable, in_flight, &tail);
    text_put(&b, tail, strlen(tail));
    if (b.failed) {
        buf_free(&b.text);
        http_respond_retry(req, 503, "overloaded", "out of memory", 1);
        return;
    }
    if (status == 503 || status == 409)
        http_add_header(req, "Retry-After", "1");
    size_t len;
    char *text = buf_steal(&b.text, &len);
    http_respond_take(req, status, "application/json", text, len);
}

/*
 * The batch body's events: its only field, an array of 1 to API_MAX_BATCH.
 * Returns the array (borrowed from body) or NULL, answered.
 */
static json_t *batch_events(http_request *req, json_t *body)
{
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "events") != 0) {
            char msg[128];
            snprintf(msg, sizeof msg, "unknown field \"%.64s\"", k);
            api_bad_field(req, k, msg);
            return NULL;
        }
    }
    json_t *events = json_object_get(body, "events");
    if (!json_is_array(events)) {
        api_bad_field(req, "events", "events must be an array of events");
        return NULL;
    }
    size_t n = json_array_size(events);
    if (n == 0 || n > API_MAX_BATCH) {
        char msg[96];
        snprintf(msg, sizeof msg, "events must hold 1 to %d events", API_MAX_BATCH);
        api_bad_field(req, "events", msg);
        return NULL;
    }
    return events;
}

/* Starts publishing a checked events array, one item per element. */
static void batch_start(api_env *env, http_request *req, api_call *call, json_t *events)
{
    size_t n = json_array_size(events);
    pub_work *w = work_new(req, call, n);
    if (w == NULL)
        return;
    json_t **objs = malloc(n * sizeof *objs);
    if (objs == NULL) {
        http_respond_retry(req, 503, "overloaded", "out of memory", 1);
        return;
    }
    for (size_t i = 0; i < n; i++)
        objs[i] = json_array_get(events, i);
    publish_start(env, req, w, objs, NULL);
    free(objs);
}

void events_api_batch(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    if (phase == HTTP_PHASE_RESUMED) {
        settle_claims(env, req, call->work);
        observe(env, req, call->work);
        batch_answer(req, call->work);
        return;
    }
    json_t *body = NULL;
    if (api_body_object(req, &body) != 0)
        return;
    json_t *events = batch_events(req, body);
    if (events != NULL)
        batch_start(env, req, call, events);
    json_decref(body);
}

void events_api_get(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)phase;
    char id[ID_UUID_SIZE];
    if (api_event_id(req, "event_id", router_param(&call->params, "event_id"), id) != 0)
        return;
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    json_t *doc = NULL;
    char err[256];
    store_status st = store_event_status(c, id, &doc, err, sizeof err);
    pgpool_release(env->pool, c);
    if (st != STORE_OK) {
        api_store_error(req, st, "event", err);
        return;
    }
    http_respond_json(req, 200, doc);
}

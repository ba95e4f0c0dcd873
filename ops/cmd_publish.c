/*
 * heraldctl publish --type T (--user U | --topic NAME) [--data JSON]
 *                   [--priority P] [--category C] [--idempotency-key K]
 *                   [--no-digest]
 *
 * Publishes one event the way the gateway does: the same validation
 * (event_from_request on a body built from the flags), the same key on the
 * events topic, and success only once the broker acknowledged it.  Prints
 * the event id alone on stdout, for scripts.
 *
 * Idempotency: the gateway remembers (API key, Idempotency-Key) in
 * PostgreSQL, but the CLI has no API key.  Instead, with --idempotency-key
 * the event id is derived from the key (UUID v5), so publishing the same key
 * twice yields the same event id, hence the same delivery idempotency keys,
 * and workers never send a notification of it twice.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmdutil.h"
#include "error.h"
#include "event.h"
#include "ids.h"
#include "kafka.h"
#include "timeutil.h"
#include "topics.h"

#define PUBLISH_USAGE                                                                              \
    "usage: heraldctl publish --type T (--user U | --topic NAME) [--data JSON] [--priority P] "    \
    "[--category C] [--idempotency-key K] [--no-digest]"

/* The event id of an idempotency key: "heraldctl.publish|<key>" in Herald's namespace. */
#define PUBLISH_ID_NAME "heraldctl.publish|"

typedef struct publish_flags {
    char *type;
    char *user;
    char *topic;
    char *data;
    char *priority;
    char *category;
    char *idempotency_key;
    bool no_digest;
    long timeout_ms;
} publish_flags;

#define F(field) offsetof(publish_flags, field)

static const config_var publish_vars[] = {
    {.flag = "type",
     .type = CONFIG_STRING,
     .offset = F(type),
     .help = "event type, a lowercase dotted name such as order.shipped"},
    {.flag = "user", .type = CONFIG_STRING, .offset = F(user), .help = "the recipient's user id"},
    {.flag = "topic",
     .type = CONFIG_STRING,
     .offset = F(topic),
     .help = "broadcast to every subscriber of this topic instead"},
    {.flag = "data",
     .type = CONFIG_STRING,
     .offset = F(data),
     .help = "the event's data, a JSON object (default {})"},
    {.flag = "priority",
     .type = CONFIG_STRING,
     .offset = F(priority),
     .help = "critical, high, normal (default) or low"},
    {.flag = "category",
     .type = CONFIG_STRING,
     .offset = F(category),
     .help = "preference category (default: the template's, else transactional)"},
    {.flag = "idempotency-key",
     .type = CONFIG_STRING,
     .offset = F(idempotency_key),
     .help = "the same key always gives the same event id (never delivered twice)"},
    {.flag = "no-digest",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(no_digest),
     .help = "send at once, past any digest rule (\"digest\": false)"},
    {.flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker's acknowledgement"},
    {0},
};

/* The flag a request field comes from, for error lines; NULL for none. */
static const char *flag_of(const char *field)
{
    static const char *const map[][2] = {
        {"type", "--type"},
        {"user_id", "--user"},
        {"topic", "--topic"},
        {"data", "--data"},
        {"priority", "--priority"},
        {"category", "--category"},
        {"idempotency_key", "--idempotency-key"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(field, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

/* Builds the request body a client would send; NULL with one line printed. */
static json_t *build_body(const publish_flags *f)
{
    json_t *body = json_object();
    if (body == NULL)
        goto oom;
    if (f->user != NULL && f->topic != NULL) {
        fprintf(stderr, "heraldctl publish: give --user or --topic, not both\n");
        goto fail;
    }
    if (f->type == NULL || (f->user == NULL && f->topic == NULL)) {
        fprintf(stderr, "heraldctl publish: %s are required (%s)\n",
                f->type == NULL ? "--type and --user or --topic" : "--user or --topic",
                PUBLISH_USAGE);
        goto fail;
    }
    const struct {
        const char *key;
        const char *value;
    } strings[] = {{"type", f->type},         {"user_id", f->user},
                   {"topic", f->topic},       {"priority", f->priority},
                   {"category", f->category}, {"idempotency_key", f->idempotency_key}};
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        if (strings[i].value == NULL)
            continue;
        json_t *s = json_string(strings[i].value);
        if (s == NULL) {
            /* Every key of strings has its flag. */
            fprintf(stderr, "heraldctl publish: %s: not valid UTF-8\n", flag_of(strings[i].key));
            goto fail;
        }
        if (json_object_set_new(body, strings[i].key, s) != 0)
            goto oom;
    }
    if (f->data != NULL) {
        json_error_t jerr;
        json_t *data = json_loads(f->data, JSON_REJECT_DUPLICATES, &jerr);
        if (data == NULL) {
            fprintf(stderr, "heraldctl publish: --data: not JSON: %s (column %d)\n", jerr.text,
                    jerr.column);
            goto fail;
        }
        if (json_object_set_new(body, "data", data) != 0)
            goto oom;
    }
    if (f->no_digest && json_object_set_new(body, "digest", json_false()) != 0)
        goto oom;
    return body;
oom:
    fprintf(stderr, "heraldctl publish: out of memory\n");
fail:
    json_decref(body);
    return NULL;
}

typedef struct publish_outcome {
    bool reported;
    rd_kafka_resp_err_t err;
    char errstr[256];
} publish_outcome;

static void publish_report(void *opaque, const kafka_delivery_report *dr)
{
    publish_outcome *o = opaque;
    o->reported = true;
    o->err = dr->err;
    /* dr->errstr may be the payload for some failures (librdkafka's message errstr). */
    snprintf(o->errstr, sizeof(o->errstr), "%s", rd_kafka_err2str(dr->err));
}

/* One run of the command: the flags, the event, its record and the producer that sends it. */
typedef struct publish_job {
    publish_flags f;
    json_t *body;
    event ev;
    char *wire;
    size_t wlen;
    char key[EVENT_KAFKA_KEY_SIZE];
    char topic[512];
    kafka_producer *p;
    publish_outcome outcome; /* the delivery report's; outlives p, whose destroy may report */
} publish_job;

/* The event the flags describe, validated as the gateway does; -1 with one line printed. */
static int build_event(publish_job *j)
{
    char field[64] = "", err[512];
    if ((j->body = build_body(&j->f)) == NULL)
        return -1;
    if (event_from_request(j->body, &j->ev, NULL, field, sizeof(field), err, sizeof(err)) != 0) {
        /* err names the request's field: the line names the flag instead. */
        const char *flag = flag_of(field);
        if (flag != NULL)
            fprintf(stderr, "heraldctl publish: %s: %s\n", flag, error_after_field(err, field));
        else
            fprintf(stderr, "heraldctl publish: %s\n", err);
        return -1;
    }
    return 0;
}

/* The event id: derived from --idempotency-key, else random; -1 on failure. */
static int assign_event_id(const publish_flags *f, event *ev)
{
    if (f->idempotency_key != NULL) {
        size_t n = strlen(PUBLISH_ID_NAME) + strlen(f->idempotency_key);
        char *name = malloc(n + 1);
        if (name == NULL)
            return -1;
        snprintf(name, n + 1, "%s%s", PUBLISH_ID_NAME, f->idempotency_key);
        int idrc = id_uuid_v5(ID_NAMESPACE_HERALD, name, n, ev->event_id);
        free(name);
        return idrc != 0 ? -1 : 0;
    }
    if (id_uuid_v4(ev->event_id) != 0) {
        fprintf(stderr, "heraldctl publish: no randomness for an event id\n");
        return -1;
    }
    return 0;
}

/* Stamps the event and encodes its record, key and topic; -1 with one line printed. */
static int encode_event(const ctl_context *ctx, publish_job *j)
{
    j->ev.created_at = timeutil_now_ms();
    if (event_serialize(&j->ev, &j->wire, &j->wlen) != 0) {
        fprintf(stderr, "heraldctl publish: the event cannot be serialized\n");
        return -1;
    }
    event_kafka_key(&j->ev, j->key, sizeof(j->key));
    config_topic(&ctx->common, TOPICS_EVENTS, j->topic, sizeof(j->topic));
    return 0;
}

/* Sends the record and waits, bounded, for the broker to accept it; -1 with the error printed. */
static int send_event(const ctl_context *ctx, publish_job *j)
{
    char err[512];
    j->p = cmdutil_producer(ctx, "publish", (int)j->f.timeout_ms);
    if (j->p == NULL)
        return -1;
    kafka_producer_set_delivery_cb(j->p, publish_report);
    kafka_status kst = kafka_produce(j->p, j->topic, j->key, strlen(j->key), j->wire, j->wlen, NULL,
                                     &j->outcome, err, sizeof(err));
    if (kst != KAFKA_OK) {
        cmdutil_kafka_error(ctx, "publish", "cannot send the event", err);
        return -1;
    }
    /* message.timeout.ms bounds the wait; the margin lets its report arrive. */
    kafka_producer_flush(j->p, (int)j->f.timeout_ms + 5000);
    if (!j->outcome.reported) {
        cmdutil_kafka_error(ctx, "publish", "no acknowledgement", "timed out");
        return -1;
    }
    if (j->outcome.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cmdutil_kafka_error(ctx, "publish", "the event was not accepted", j->outcome.errstr);
        return -1;
    }
    return 0;
}

int cmd_publish(const ctl_context *ctx, int argc, char **argv)
{
    publish_job j = {0};
    const config_table table = {publish_vars, &j.f};

    int rc = ctl_parse_only_flags("publish", PUBLISH_USAGE, publish_vars, &j.f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    if (build_event(&j) != 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    if (assign_event_id(&j.f, &j.ev) != 0 || encode_event(ctx, &j) != 0 || send_event(ctx, &j) != 0)
        goto out;
    printf("%s\n", j.ev.event_id);
    rc = CTL_EXIT_OK;
out:
    kafka_producer_destroy(j.p);
    free(j.wire);
    event_free(&j.ev);
    json_decref(j.body);
    config_free(&table, 1, NULL);
    return rc;
}

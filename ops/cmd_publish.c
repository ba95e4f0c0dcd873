/*
 * heraldctl publish --type T (--user U | --topic NAME) [--data JSON]
 *                   [--priority P] [--category C] [--idempotency-key K]
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
#include "event.h"
#include "ids.h"
#include "kafka.h"
#include "timeutil.h"
#include "topics.h"

#define PUBLISH_USAGE                                                                              \
    "usage: heraldctl publish --type T (--user U | --topic NAME) [--data JSON] [--priority P] "    \
    "[--category C] [--idempotency-key K]"

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
    {.flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "10s",
     .offset = F(timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "longest wait for the broker's acknowledgement"},
    {0},
};

/* The flag a request field comes from, for error lines. */
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
    return "the event";
}

/* Builds the request body a client would send; -1 with one line printed. */
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

int cmd_publish(const ctl_context *ctx, int argc, char **argv)
{
    publish_flags f = {0};
    const config_table table = {publish_vars, &f};
    json_t *body = NULL;
    event ev = {0};
    char *wire = NULL;
    kafka_producer *p = NULL;
    char field[64] = "", err[512], topic[512], key[EVENT_KAFKA_KEY_SIZE];
    size_t wlen = 0;
    int first = argc, rc = CTL_EXIT_USAGE;
    publish_outcome outcome = {0};

    config_status st =
        ctl_parse_flags("publish", PUBLISH_USAGE, publish_vars, &f, argc, argv, &first);
    if (st != CONFIG_OK) {
        rc = st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (first < argc) {
        fprintf(stderr, "heraldctl publish: unexpected argument \"%s\"\n", argv[first]);
        goto out;
    }
    if ((body = build_body(&f)) == NULL)
        goto out;
    if (event_from_request(body, &ev, NULL, field, sizeof(field), err, sizeof(err)) != 0) {
        fprintf(stderr, "heraldctl publish: %s: %s\n", flag_of(field), err);
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    if (f.idempotency_key != NULL) {
        size_t n = strlen(PUBLISH_ID_NAME) + strlen(f.idempotency_key);
        char *name = malloc(n + 1);
        if (name == NULL)
            goto out;
        snprintf(name, n + 1, "%s%s", PUBLISH_ID_NAME, f.idempotency_key);
        int idrc = id_uuid_v5(ID_NAMESPACE_HERALD, name, n, ev.event_id);
        free(name);
        if (idrc != 0)
            goto out;
    } else if (id_uuid_v4(ev.event_id) != 0) {
        fprintf(stderr, "heraldctl publish: no randomness for an event id\n");
        goto out;
    }
    ev.created_at = timeutil_now_ms();
    if (event_serialize(&ev, &wire, &wlen) != 0) {
        fprintf(stderr, "heraldctl publish: the event cannot be serialized\n");
        goto out;
    }
    event_kafka_key(&ev, key, sizeof(key));
    config_topic(&ctx->common, TOPICS_EVENTS, topic, sizeof(topic));

    p = cmdutil_producer(ctx, "publish", (int)f.timeout_ms);
    if (p == NULL)
        goto out;
    kafka_producer_set_delivery_cb(p, publish_report);
    kafka_status kst =
        kafka_produce(p, topic, key, strlen(key), wire, wlen, NULL, &outcome, err, sizeof(err));
    if (kst != KAFKA_OK) {
        cmdutil_kafka_error(ctx, "publish", "cannot send the event", err);
        goto out;
    }
    /* message.timeout.ms bounds the wait; the margin lets its report arrive. */
    kafka_producer_flush(p, (int)f.timeout_ms + 5000);
    if (!outcome.reported) {
        cmdutil_kafka_error(ctx, "publish", "no acknowledgement", "timed out");
        goto out;
    }
    if (outcome.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cmdutil_kafka_error(ctx, "publish", "the event was not accepted", outcome.errstr);
        goto out;
    }
    printf("%s\n", ev.event_id);
    rc = CTL_EXIT_OK;
out:
    kafka_producer_destroy(p);
    free(wire);
    event_free(&ev);
    json_decref(body);
    config_free(&table, 1, NULL);
    return rc;
}

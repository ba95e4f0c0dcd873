/*
 * GET /v1/dlq, /v1/dlq/stats, /v1/dlq/{position} and POST /v1/dlq/requeue
 * against the real broker and database.  Dead letters are written with
 * the pipeline's own header writer (dlq.h) into the suite's DLQ topic;
 * every test reads only what it wrote, by asking from the time it began.
 */
#include "gateway_harness.h"

#include "dlq.h"
#include "dlqscan.h"
#include "partread.h"

#include <inttypes.h>

#define DLQ_PARTITIONS 3

static char dlq_topic[96], email_topic[96], sms_topic[96];

static void ensure_topic(const char *name, int partitions)
{
    char err[512];
    kafka_topic_spec spec = {.name = name, .partitions = partitions, .replication_factor = 1};
    kafka_topic_result res;
    ck_assert_msg(kafka_topics_create(getenv("HERALD_KAFKA_BROKERS"), NULL, &spec, 1, 30000, &res,
                                      err, sizeof err) == KAFKA_OK &&
                      res.outcome != KAFKA_TOPIC_FAILED,
                  "create %s: %s %s", name, err, res.msg);
    kafka_topic_desc d;
    for (int i = 0; i < 100; i++) {
        if (kafka_topic_describe(getenv("HERALD_KAFKA_BROKERS"), NULL, name, 2000, &d, err,
                                 sizeof err) == KAFKA_OK &&
            d.partitions == partitions)
            return;
        testsupport_sleep_ms(100);
    }
    ck_abort_msg("%s never showed %d partitions", name, partitions);
}

/* The suite's topics, and the time from which this test's records count (RFC 3339). */
static void setup(h_gateway *g, char *since, size_t sincelen)
{
    snprintf(dlq_topic, sizeof dlq_topic, "%sdlq", h_prefix);
    snprintf(email_topic, sizeof email_topic, "%sdeliveries.email", h_prefix);
    ensure_topic(dlq_topic, DLQ_PARTITIONS);
    snprintf(sms_topic, sizeof sms_topic, "%sdeliveries.sms", h_prefix);
    ensure_topic(email_topic, 1);
    ensure_topic(sms_topic, 1);
    /* Records of an earlier test may share this millisecond. */
    testsupport_sleep_ms(5);
    timeutil_format_rfc3339(timeutil_now_ms(), since, sincelen);
    testsupport_sleep_ms(5);
    h_start(g, NULL);
}

__attribute__((destructor)) static void dlq_down(void)
{
    if (getpid() != h_owner || dlq_topic[0] == '\0')
        return;
    char err[512];
    const char *topics[] = {dlq_topic, email_topic, sms_topic};
    if (kafka_topics_delete(getenv("HERALD_KAFKA_BROKERS"), NULL, topics, 3, 30000, err,
                            sizeof err) != KAFKA_OK)
        fprintf(stderr, "gateway_dlq: topics not deleted: %s\n", err);
}

typedef struct dead_letter {
    const char *key;
    const char *value;
    size_t vlen; /* 0: strlen(value) */
    const char *reason, *error, *stage, *orig_topic;
} dead_letter;

/* Writes the dead letters as a stage of the pipeline would, and waits for the broker. */
static void write_dead_letters(const dead_letter *d, size_t n)
{
    char err[512];
    kafka_producer *p =
        kafka_producer_new(getenv("HERALD_KAFKA_BROKERS"), NULL, NULL, NULL, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    for (size_t i = 0; i < n; i++) {
        rd_kafka_headers_t *in = rd_kafka_headers_new(1);
        rd_kafka_header_add(in, "trace-id", -1, "t-1", -1);
        dlq_origin o = {d[i].orig_topic, 0, (int64_t)(100 + i), timeutil_now_ms() - 60000};
        rd_kafka_headers_t *h =
            dlq_headers(in, d[i].reason, d[i].error, d[i].stage, &o, 5, timeutil_now_ms());
        rd_kafka_headers_destroy(in);
        ck_assert_ptr_nonnull(h);
        size_t vlen = d[i].vlen > 0 ? d[i].vlen : strlen(d[i].value);
        ck_assert_int_eq(kafka_produce(p, dlq_topic, d[i].key, strlen(d[i].key), d[i].value, vlen,
                                       h, NULL, err, sizeof err),
                         KAFKA_OK);
        /* Distinct timestamps, so the order across partitions is known. */
        testsupport_sleep_ms(2);
    }
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);
    kafka_producer_destroy(p);
}

static char delivery_json[256];

static const char *delivery(const char *user, const char *channel)
{
    snprintf(delivery_json, sizeof delivery_json,
             "{\"idempotency_key\":\"k-%s\",\"event_id\":\"e-%s\",\"user_id\":\"%s\","
             "\"channel\":\"%s\",\"attempt\":5}",
             user, user, user, channel);
    return delivery_json;
}

/* Four dead letters of three stages; the last is not JSON. */
static void write_mix(void)
{
    char v[4][256], events[96];
    snprintf(events, sizeof events, "%sevents", h_prefix);
    snprintf(v[0], sizeof v[0], "%s", delivery("u-1", "email"));
    snprintf(v[1], sizeof v[1], "%s", delivery("u-2", "email"));
    snprintf(v[2], sizeof v[2], "%s", delivery("u-3", "sms"));
    const dead_letter d[] = {
        {"u-1", v[0], 0, "max_attempts", "451 try again later", "worker.email", email_topic},
        {"u-2", v[1], 0, "permanent_failure", "550 mailbox unavailable", "worker.email",
         email_topic},
        {"u-3", v[2], 0, "max_attempts", "provider 503", "worker.sms", sms_topic},
        {"topic:news", "{not json", 0, "invalid_json", "'}' expected", "dispatcher", events},
    };
    write_dead_letters(d, 4);
}

static void get(h_gateway *g, const char *path, const char *key, h_resp *r)
{
    h_http(g, "GET", path, key, NULL, NULL, NULL, r);
}

static size_t count_records(h_gateway *g, const char *since, const char *extra)
{
    char path[512];
    h_resp r = {0};
    snprintf(path, sizeof path, "/v1/dlq?from=%s%s", since, extra);
    get(g, path, h_adminkey, &r);
    ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    size_t n = json_array_size(json_object_get(r.json, "records"));
    h_resp_clear(&r);
    return n;
}

START_TEST(test_dlq_lists_dead_letters_with_their_reason_and_filters)
{
    h_gateway g;
    char since[TIMEUTIL_RFC3339_SIZE], path[512];
    setup(&g, since, sizeof since);
    write_mix();

    h_resp r = {0};
    snprintf(path, sizeof path, "/v1/dlq?from=%s", since);
    get(&g, path, h_adminkey, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    json_t *recs = json_object_get(r.json, "records");
    ck_assert_int_eq((int)json_array_size(recs), 4);
    ck_assert(json_is_null(json_object_get(r.json, "next")));
    /* Oldest first across partitions: the order they were written. */
    static const char *const reasons[] = {"max_attempts", "permanent_failure", "max_attempts",
                                          "invalid_json"};
    for (size_t i = 0; i < 4; i++) {
        json_t *rec = json_array_get(recs, i);
        ck_assert_str_eq(json_string_value(json_object_get(rec, "reason")), reasons[i]);
        char id[48];
        snprintf(id, sizeof id, "%" JSON_INTEGER_FORMAT ":%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(rec, "partition")),
                 json_integer_value(json_object_get(rec, "offset")));
        ck_assert_str_eq(json_string_value(json_object_get(rec, "id")), id);
    }
    json_t *first = json_array_get(recs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "error")), "451 try again later");
    ck_assert_str_eq(json_string_value(json_object_get(first, "user_id")), "u-1");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(first, "original"), "topic")),
        email_topic);
    h_resp_clear(&r);

    ck_assert_int_eq((int)count_records(&g, since, "&stage=worker.email"), 2);
    ck_assert_int_eq((int)count_records(&g, since, "&reason=invalid_json"), 1);
    ck_assert_int_eq((int)count_records(&g, since, "&channel=sms"), 1);
    ck_assert_int_eq((int)count_records(&g, since, "&stage=worker.email&reason=max_attempts"), 1);
    ck_assert_int_eq((int)count_records(&g, since, "&to=2000-01-01T00:00:00Z"), 0);

    get(&g, "/v1/dlq?from=yesterday-ish", h_adminkey, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "from");
    h_resp_clear(&r);
    get(&g, "/v1/dlq?limit=501", h_adminkey, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "limit");
    h_resp_clear(&r);

    /* Admin scope only. */
    static const char *const paths[] = {"/v1/dlq", "/v1/dlq/stats", "/v1/dlq/0:0"};
    for (size_t i = 0; i < 3; i++) {
        get(&g, paths[i], NULL, &r);
        ck_assert_msg(r.status == 401, "%s: %ld", paths[i], r.status);
        ck_assert_str_eq(h_error_code(&r), "unauthorized");
        h_resp_clear(&r);
        get(&g, paths[i], h_pubkey, &r);
        ck_assert_msg(r.status == 403, "%s: %ld", paths[i], r.status);
        h_resp_clear(&r);
    }
    h_http(&g, "POST", "/v1/dlq/requeue", NULL, NULL, "{\"ids\":[\"0:0\"]}", NULL, &r);
    ck_assert_int_eq(r.status, 401);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_dlq_pages_return_every_record_exactly_once_in_time_order)
{
    enum { N = 23 };
    h_gateway g;
    char since[TIMEUTIL_RFC3339_SIZE], path[DLQSCAN_CURSOR_MAX + 256];
    char keys[N][16], values[N][256];
    dead_letter d[N];
    setup(&g, since, sizeof since);
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "p-%d", i);
        snprintf(values[i], sizeof values[i], "%s", delivery(keys[i], "email"));
        d[i] = (dead_letter){keys[i], values[i],      0,          "max_attempts",
                             "451",   "worker.email", email_topic};
    }
    write_dead_letters(d, N);

    bool seen[N] = {false};
    int total = 0, pages = 0;
    char after[DLQSCAN_CURSOR_MAX] = "";
    const char *last_ts = "";
    char last_buf[64] = "";
    for (; pages < 20; pages++) {
        h_resp r = {0};
        snprintf(path, sizeof path, "/v1/dlq?from=%s&limit=5%s%s", since, after[0] ? "&after=" : "",
                 after);
        get(&g, path, h_adminkey, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        json_t *recs = json_object_get(r.json, "records");
        ck_assert_int_le((int)json_array_size(recs), 5);
        for (size_t i = 0; i < json_array_size(recs); i++) {
            json_t *rec = json_array_get(recs, i);
            const char *user = json_string_value(json_object_get(rec, "user_id"));
            const char *ts = json_string_value(json_object_get(rec, "timestamp"));
            int k = atoi(user + 2);
            ck_assert_msg(!seen[k], "%s returned twice", user);
            seen[k] = true;
            total++;
            ck_assert_msg(strcmp(last_ts, ts) <= 0, "%s after %s", ts, last_ts);
            snprintf(last_buf, sizeof last_buf, "%s", ts);
            last_ts = last_buf;
        }
        json_t *next = json_object_get(r.json, "next");
        if (json_is_null(next)) {
            h_resp_clear(&r);
            break;
        }
        ck_assert_int_eq((int)json_array_size(recs), 5);
        snprintf(after, sizeof after, "%s", json_string_value(next));
        h_resp_clear(&r);
    }
    ck_assert_int_eq(total, N);
    ck_assert_int_eq(pages, 4); /* 5 + 5 + 5 + 5 + 3 */

    h_resp r = {0};
    get(&g, "/v1/dlq?after=bm90LWEtY3Vyc29y", h_adminkey, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "after");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_dlq_stats_equal_what_heraldctl_prints)
{
    h_gateway g;
    char since[TIMEUTIL_RFC3339_SIZE], path[512];
    setup(&g, since, sizeof since);
    write_mix();

    h_resp r = {0};
    snprintf(path, sizeof path, "/v1/dlq/stats?from=%s", since);
    get(&g, path, h_adminkey, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_int_eq((int)json_integer_value(json_object_get(r.json, "total")), 4);

    char bin[1024], out[65536], err[8192], env_prefix[128], env_db[1024];
    testsupport_bin("heraldctl", bin, sizeof bin);
    snprintf(env_prefix, sizeof env_prefix, "HERALD_TOPIC_PREFIX=%s", h_prefix);
    snprintf(env_db, sizeof env_db, "HERALD_DATABASE_URL=%s", h_dburl);
    char *argv[] = {bin, "dlq", "stats", "--since", since, "--json", NULL};
    const char *env[] = {env_prefix, env_db, NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof out, err, sizeof err, 60000), 0);
    json_t *ctl = json_loads(out, 0, NULL);
    ck_assert_msg(ctl != NULL, "%s", out);
    ck_assert_int_eq(json_integer_value(json_object_get(ctl, "total")),
                     json_integer_value(json_object_get(r.json, "total")));
    /* The same rows, under the API's name for them. */
    ck_assert(json_equal(json_object_get(ctl, "groups"), json_object_get(r.json, "rows")));
    json_t *rows = json_object_get(r.json, "rows");
    ck_assert_int_eq((int)json_array_size(rows), 4);
    json_decref(ctl);
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/dlq/stats?from=%s&stage=worker.email", since);
    get(&g, path, h_adminkey, &r);
    ck_assert_int_eq((int)json_integer_value(json_object_get(r.json, "total")), 2);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_dlq_shows_one_record_with_headers_and_payload)
{
    h_gateway g;
    char since[TIMEUTIL_RFC3339_SIZE], path[512];
    setup(&g, since, sizeof since);
    static const char binary[] = {'\xff', '\xfe', 'x', '\0', 'y'};
    const dead_letter d[] = {
        {"u-9", delivery("u-9", "email"), 0, "permanent_failure", "550 no such user",
         "worker.email", email_topic},
        {"u-10", binary, sizeof binary, "max_attempts", "451", "worker.email", email_topic},
    };
    write_dead_letters(d, 2);

    h_resp r = {0};
    snprintf(path, sizeof path, "/v1/dlq?from=%s", since);
    get(&g, path, h_adminkey, &r);
    ck_assert_int_eq((int)json_array_size(json_object_get(r.json, "records")), 2);
    char id[2][48];
    for (int i = 0; i < 2; i++)
        snprintf(id[i], sizeof id[i], "%s",
                 json_string_value(
                     json_object_get(json_array_get(json_object_get(r.json, "records"), i), "id")));
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/dlq/%s", id[0]);
    get(&g, path, h_adminkey, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "reason")), "permanent_failure");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "error")), "550 no such user");
    ck_assert_int_eq((int)json_integer_value(json_object_get(r.json, "attempts")), 5);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "stage")), "worker.email");
    json_t *hdrs = json_object_get(r.json, "headers");
    ck_assert_str_eq(json_string_value(json_object_get(hdrs, "trace-id")), "t-1");
    ck_assert_str_eq(json_string_value(json_object_get(hdrs, "herald.original.offset")), "100");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(r.json, "payload"), "user_id")), "u-9");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "payload_encoding")), "text");
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/dlq/%s", id[1]);
    get(&g, path, h_adminkey, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "payload_encoding")), "base64");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "payload")), "//54AHk=");
    h_resp_clear(&r);

    get(&g, "/v1/dlq/0:99999999", h_adminkey, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    get(&g, "/v1/dlq/zero:one", h_adminkey, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "position");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* Records of topic carrying herald.requeued_from == from. */
static int count_requeued(const char *topic, const char *from)
{
    char err[512], got[512];
    partread *pr = NULL;
    partread_range range = PARTREAD_ALL(10000);
    ck_assert_int_eq(
        partread_open(getenv("HERALD_KAFKA_BROKERS"), NULL, topic, &range, &pr, err, sizeof err),
        PARTREAD_OK);
    int n = 0;
    for (int i = 0; i < 100000; i++) {
        rd_kafka_message_t *m = NULL;
        partread_status st = partread_next(pr, &m, err, sizeof err);
        if (st == PARTREAD_END)
            break;
        ck_assert_msg(st == PARTREAD_OK, "%s", err);
        if (kafka_header_get(m, HDR_REQUEUED_FROM, got, sizeof got) > 0 && strcmp(got, from) == 0)
            n++;
        rd_kafka_message_destroy(m);
    }
    partread_close(pr);
    return n;
}

/* POSTs body to /v1/dlq/requeue as admin, asserting 200. */
static void requeue(h_gateway *g, const char *body, h_resp *r)
{
    h_http(g, "POST", "/v1/dlq/requeue", h_adminkey, NULL, body, NULL, r);
    ck_assert_msg(r->status == 200, "%s: %ld %s", body, r->status, r->body);
}

static long num(const h_resp *r, const char *name)
{
    return (long)json_integer_value(json_object_get(r->json, name));
}

START_TEST(test_dlq_requeue_sends_a_record_back_once_and_skips_invalid_json)
{
    h_gateway g;
    char since[TIMEUTIL_RFC3339_SIZE], path[512], body[1024];
    setup(&g, since, sizeof since);
    write_mix();

    /* The ids of this test's records, in write order. */
    h_resp r = {0};
    snprintf(path, sizeof path, "/v1/dlq?from=%s", since);
    get(&g, path, h_adminkey, &r);
    char id[4][48];
    for (int i = 0; i < 4; i++)
        snprintf(id[i], sizeof id[i], "%s",
                 json_string_value(
                     json_object_get(json_array_get(json_object_get(r.json, "records"), i), "id")));
    h_resp_clear(&r);

    /* A dry run counts and changes nothing. */
    snprintf(body, sizeof body, "{\"filter\":{\"from\":\"%s\"},\"dry_run\":true}", since);
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "matched"), 4);
    ck_assert_int_eq(num(&r, "would_requeue"), 3);
    ck_assert_int_eq(num(&r, "skipped"), 1); /* invalid_json */
    ck_assert_ptr_null(json_object_get(r.json, "results"));
    h_resp_clear(&r);
    snprintf(body, sizeof body,
             "{\"filter\":{\"from\":\"%s\",\"stage\":\"worker.email\"},\"dry_run\":true}", since);
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "matched"), 2);
    h_resp_clear(&r);
    ck_assert_int_eq(testsupport_db_count(h_dburl, "SELECT 1 FROM dlq_requeues"), 0);

    /* One id: delivered back once, to its original topic. */
    char from[256];
    snprintf(from, sizeof from, "%s:%s", dlq_topic, id[0]);
    snprintf(body, sizeof body, "{\"ids\":[\"%s\"]}", id[0]);
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "matched"), 1);
    ck_assert_int_eq(num(&r, "requeued"), 1);
    ck_assert_int_eq(num(&r, "already_requeued"), 0);
    json_t *res = json_array_get(json_object_get(r.json, "results"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "id")), id[0]);
    ck_assert_str_eq(json_string_value(json_object_get(res, "outcome")), "requeued");
    ck_assert_str_eq(json_string_value(json_object_get(res, "topic")), email_topic);
    h_resp_clear(&r);
    ck_assert_int_eq(count_requeued(email_topic, from), 1);

    /* Twice: the ledger says already requeued, nothing more is sent. */
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "requeued"), 0);
    ck_assert_int_eq(num(&r, "already_requeued"), 1);
    res = json_array_get(json_object_get(r.json, "results"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "outcome")), "already_requeued");
    h_resp_clear(&r);
    ck_assert_int_eq(count_requeued(email_topic, from), 1);

    /* heraldctl keeps the same ledger: it too finds the record requeued. */
    char bin[1024], out[8192], err[8192], env_prefix[128], env_db[1024];
    testsupport_bin("heraldctl", bin, sizeof bin);
    snprintf(env_prefix, sizeof env_prefix, "HERALD_TOPIC_PREFIX=%s", h_prefix);
    snprintf(env_db, sizeof env_db, "HERALD_DATABASE_URL=%s", h_dburl);
    char *argv[] = {bin, "dlq", "requeue", id[0], NULL};
    const char *env[] = {env_prefix, env_db, NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof out, err, sizeof err, 60000), 0);
    ck_assert_msg(strstr(out, "0 requeued, 1 already requeued") != NULL, "%s %s", out, err);
    ck_assert_int_eq(count_requeued(email_topic, from), 1);

    /* invalid_json is never requeued; an absent id is skipped too. */
    snprintf(body, sizeof body, "{\"ids\":[\"%s\",\"0:99999999\"]}", id[3]);
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "requeued"), 0);
    ck_assert_int_eq(num(&r, "skipped"), 2);
    res = json_array_get(json_object_get(r.json, "results"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(res, "outcome")), "skipped");
    h_resp_clear(&r);
    char events[96], bad_from[256];
    snprintf(events, sizeof events, "%sevents", h_prefix);
    snprintf(bad_from, sizeof bad_from, "%s:%s", dlq_topic, id[3]);
    ck_assert_int_eq(count_requeued(events, bad_from), 0);

    /* The rest by filter: the two worker records left, then nothing. */
    snprintf(body, sizeof body, "{\"filter\":{\"from\":\"%s\"}}", since);
    requeue(&g, body, &r);
    ck_assert_int_eq(num(&r, "requeued"), 2);
    ck_assert_int_eq(num(&r, "already_requeued"), 1);
    ck_assert_int_eq(num(&r, "skipped"), 1);
    ck_assert_int_eq(num(&r, "failed"), 0);
    h_resp_clear(&r);

    /* Bad bodies. */
    static const char *const bad[][2] = {
        {"{}", "ids"},
        {"{\"ids\":[\"0:1\"],\"filter\":{}}", "filter"},
        {"{\"ids\":[]}", "ids"},
        {"{\"ids\":[\"one\"]}", "ids"},
        {"{\"filter\":{\"stage\":5}}", "filter.stage"},
        {"{\"ids\":[\"0:1\"],\"dry_run\":\"yes\"}", "dry_run"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_http(&g, "POST", "/v1/dlq/requeue", h_adminkey, NULL, bad[i][0], NULL, &r);
        ck_assert_msg(r.status == 400, "%s: %ld", bad[i][0], r.status);
        ck_assert_str_eq(h_error_field(&r), bad[i][1]);
        h_resp_clear(&r);
    }
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_dlq_lists_dead_letters_with_their_reason_and_filters),
    TEST_ENTRY(test_dlq_pages_return_every_record_exactly_once_in_time_order),
    TEST_ENTRY(test_dlq_stats_equal_what_heraldctl_prints),
    TEST_ENTRY(test_dlq_shows_one_record_with_headers_and_payload),
    TEST_ENTRY(test_dlq_requeue_sends_a_record_back_once_and_skips_invalid_json),
};

TEST_MAIN("gateway_dlq", cases)

/*
 * The ops console's APIs against the real broker and database: the status
 * the gateway answers is the document `heraldctl status --json` prints for
 * the same stack, the history fills with samples and rates, and none of it
 * opens without an admin key.
 */
#include "gateway_harness.h"
#include "headers.h"
#include "partread.h"

#define DOWN "127.0.0.1:1" /* nothing listens there: a daemon that is down */

static char h_dlq_topic[64];

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void call(h_gateway *g, const char *method, const char *path, const char *key,
                 const char *body, long status, h_resp *r)
{
    h_http(g, method, path, key, NULL, body, NULL, r);
    ck_assert_msg(r->status == status, "%s %s %s: %ld %s", method, path, body ? body : "",
                  r->status, r->body);
}

/* The group the stack reports: a dispatcher's, which is expected to consume the events topic. */
static void group_name(char *out, size_t outlen)
{
    snprintf(out, outlen, "%sdispatcher", h_prefix);
}

/* A gateway whose status names the group above and every other daemon down. */
static void start_ops_gateway(h_gateway *g, const char *interval)
{
    static char group[64];
    group_name(group, sizeof group);
    h_start(g, "--status-group", group, "--status-dispatcher", DOWN, "--status-worker-email", DOWN,
            "--status-worker-sms", DOWN, "--status-worker-push", DOWN, "--status-worker-inapp",
            DOWN, "--status-realtime", DOWN, "--status-health-timeout", "500ms",
            "--console-sample-interval", interval, NULL);
}

/* Creates the DLQ topic (one partition) and writes n dead letters to it. */
static void dead_letters(int n)
{
    char err[512];
    const char *brokers = getenv("HERALD_KAFKA_BROKERS");
    snprintf(h_dlq_topic, sizeof h_dlq_topic, "%sdlq", h_prefix);
    kafka_topic_spec spec = {.name = h_dlq_topic, .partitions = 1, .replication_factor = 1};
    kafka_topic_result res;
    ck_assert_msg(kafka_topics_create(brokers, NULL, &spec, 1, 30000, &res, err, sizeof err) ==
                          KAFKA_OK &&
                      res.outcome != KAFKA_TOPIC_FAILED,
                  "%s %s", err, res.msg);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(h_dlq_topic), RD_KAFKA_V_VALUE((void *)"{}", 2),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
            RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

static void drop_dlq(void)
{
    char err[512];
    const char *topics[] = {h_dlq_topic};
    if (kafka_topics_delete(getenv("HERALD_KAFKA_BROKERS"), NULL, topics, 1, 30000, err,
                            sizeof err) != KAFKA_OK)
        fprintf(stderr, "test topic %s not deleted: %s\n", h_dlq_topic, err);
}

/* heraldctl with the gateway's prefix and database; its stdout into out. */
static int heraldctl(char *out, size_t outlen, char *errout, size_t errlen, ...)
{
    char bin[1024], env_prefix[96], env_db[1024];
    char *argv[40];
    int n = 0;
    testsupport_bin("heraldctl", bin, sizeof bin);
    argv[n++] = bin;
    va_list ap;
    va_start(ap, errlen);
    for (char *a; n < 39 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(env_prefix, sizeof env_prefix, "HERALD_TOPIC_PREFIX=%s", h_prefix);
    snprintf(env_db, sizeof env_db, "HERALD_DATABASE_URL=%s", h_dburl);
    const char *env[] = {env_prefix, env_db, NULL};
    return testsupport_run(argv, env, out, outlen, errout, errlen, 60000);
}

static void publish_n(h_gateway *g, int n)
{
    char id[ID_UUID_SIZE];
    for (int i = 0; i < n; i++)
        h_publish(g, "{\"type\":\"ops.test\",\"user_id\":\"u-ops\"}", NULL, id);
}

START_TEST(test_status_is_the_document_heraldctl_status_prints)
{
    static char out[65536], errout[8192];
    char group[64], own[32];
    h_gateway g;
    dead_letters(2);
    start_ops_gateway(&g, "0");
    publish_n(&g, 3);
    group_name(group, sizeof group);
    snprintf(own, sizeof own, "127.0.0.1:%u", (unsigned)gateway_port(g.gw));

    h_resp r;
    call(&g, "GET", "/v1/ops/status", h_adminkey, NULL, 200, &r);
    int rc = heraldctl(out, sizeof out, errout, sizeof errout, "status", "--json", "--group", group,
                       "--gateway", own, "--dispatcher", DOWN, "--worker-email", DOWN,
                       "--worker-sms", DOWN, "--worker-push", DOWN, "--worker-inapp", DOWN,
                       "--realtime", DOWN, "--health-timeout", "500ms", NULL);
    ck_assert_msg(rc == 0, "heraldctl status: %d %s", rc, errout);
    json_t *cli = json_loads(out, 0, NULL);
    ck_assert_msg(cli != NULL, "%s", out);
    ck_assert_msg(json_equal(r.json, cli), "gateway: %s\nheraldctl: %s", r.body, out);

    /* What both say: nothing consumed the three events, two dead letters wait. */
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r.json, "group_lag"), group)), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "dlq_size")), 2);
    json_t *d = json_array_get(json_object_get(r.json, "daemons"), 0);
    ck_assert_str_eq(str(d, "name"), "gateway");
    ck_assert(json_is_true(json_object_get(d, "healthy")));
    d = json_array_get(json_object_get(r.json, "daemons"), 1);
    ck_assert_str_eq(str(d, "name"), "dispatcher");
    ck_assert(json_is_false(json_object_get(d, "healthy")));
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r.json, "digest_windows"), "open")), 0);
    json_decref(cli);
    h_resp_clear(&r);
    h_stop(&g);
    drop_dlq();
}
END_TEST

/* The newest sample of the history, or NULL; the caller frees r. */
static json_t *last_sample(h_gateway *g, h_resp *r)
{
    call(g, "GET", "/v1/ops/history?minutes=5", h_adminkey, NULL, 200, r);
    json_t *samples = json_object_get(r->json, "samples");
    size_t n = json_array_size(samples);
    return n > 0 ? json_array_get(samples, n - 1) : NULL;
}

START_TEST(test_history_keeps_samples_and_the_rate_of_a_publish_burst)
{
    char group[64];
    h_gateway g;
    h_resp r;
    start_ops_gateway(&g, "1");
    group_name(group, sizeof group);

    /* A first sample, so that the burst falls between two. */
    json_t *s = NULL;
    for (int i = 0; i < 100 && s == NULL; i++) {
        h_resp_clear(&r);
        if ((s = last_sample(&g, &r)) == NULL)
            testsupport_sleep_ms(200);
    }
    ck_assert_msg(s != NULL, "no sample within 20 s");
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "interval_s")), 1);
    int64_t first_t = json_integer_value(json_object_get(s, "t"));
    h_resp_clear(&r);

    publish_n(&g, 20);
    double rate = 0;
    json_t *seen = NULL;
    for (int i = 0; i < 150 && rate <= 0; i++) {
        h_resp_clear(&r);
        s = last_sample(&g, &r);
        json_t *v = json_object_get(json_object_get(s, "rates"), "gateway.accepted");
        if (s != NULL && json_integer_value(json_object_get(s, "t")) > first_t && v != NULL)
            rate = json_number_value(v);
        if (rate > 0) {
            seen = json_deep_copy(s);
            break;
        }
        testsupport_sleep_ms(200);
    }
    ck_assert_msg(seen != NULL, "no sample with a publish rate within 30 s: %s", r.body);
    ck_assert_msg(json_array_size(json_object_get(r.json, "samples")) >= 2, "%s", r.body);
    /* At most the 20 events over at least the interval. */
    ck_assert_msg(rate <= 20.5, "%f", rate);
    ck_assert(json_is_true(json_object_get(json_object_get(seen, "health"), "gateway")));
    ck_assert(json_is_false(json_object_get(json_object_get(seen, "health"), "dispatcher")));
    ck_assert(json_is_integer(json_object_get(json_object_get(seen, "lag"), group)));
    ck_assert(json_is_integer(json_object_get(seen, "dlq")));
    ck_assert(json_is_object(json_object_get(seen, "retry")));
    json_decref(seen);
    h_resp_clear(&r);

    call(&g, "GET", "/v1/ops/history?minutes=0", h_adminkey, NULL, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "minutes");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* How many records of the events topic carry event id, and how many of those are replays. */
static void count_copies(const char *id, int *copies, int *replayed)
{
    char err[512];
    partread *pr = NULL;
    partread_range range = PARTREAD_ALL(10000);
    ck_assert_int_eq(partread_open(getenv("HERALD_KAFKA_BROKERS"), NULL, h_events_topic, &range,
                                   &pr, err, sizeof err),
                     PARTREAD_OK);
    *copies = *replayed = 0;
    rd_kafka_message_t *m = NULL;
    partread_status st;
    while ((st = partread_next(pr, &m, err, sizeof err)) == PARTREAD_OK) {
        json_t *v = json_loadb(m->payload, m->len, 0, NULL);
        const char *eid = json_string_value(json_object_get(v, "event_id"));
        if (eid != NULL && strcmp(eid, id) == 0) {
            rd_kafka_headers_t *h = NULL;
            const void *val = NULL;
            size_t len = 0;
            (*copies)++;
            if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(h, HDR_REPLAYED, &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
                (*replayed)++;
        }
        json_decref(v);
        rd_kafka_message_destroy(m);
    }
    ck_assert_msg(st == PARTREAD_END, "%s", err);
    partread_close(pr);
}

START_TEST(test_replay_counts_the_window_and_republishes_it)
{
    char ids[4][ID_UUID_SIZE], from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE];
    char body[512], path[128], replay_id[ID_UUID_SIZE];
    h_gateway g;
    h_resp r;
    start_ops_gateway(&g, "0");
    timeutil_format_rfc3339(timeutil_now_ms() - 1000, from, sizeof from);
    /* A user of this run's own: the other cases publish to the same topic. */
    char user[64], ev[160];
    snprintf(user, sizeof user, "u-rp-%s", h_prefix);
    for (int i = 0; i < 4; i++) {
        snprintf(ev, sizeof ev, "{\"type\":\"replay.%s\",\"user_id\":\"%s\"}", i < 3 ? "a" : "b",
                 user);
        h_publish(&g, ev, NULL, ids[i]);
    }
    testsupport_sleep_ms(10);
    timeutil_format_rfc3339(timeutil_now_ms(), to, sizeof to);

    snprintf(body, sizeof body,
             "{\"from\":\"%s\",\"to\":\"%s\",\"user_id\":\"%s\",\"dry_run\":true}", from, to, user);
    call(&g, "POST", "/v1/replays", h_adminkey, body, 200, &r);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "events")), 4);
    h_resp_clear(&r);
    snprintf(body, sizeof body,
             "{\"from\":\"%s\",\"to\":\"%s\",\"type\":\"replay.a\",\"user_id\":\"%s\","
             "\"dry_run\":true}",
             from, to, user);
    call(&g, "POST", "/v1/replays", h_adminkey, body, 200, &r);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "events")), 3);
    h_resp_clear(&r);

    snprintf(body, sizeof body,
             "{\"from\":\"%s\",\"to\":\"%s\",\"type\":\"replay.a\",\"user_id\":\"%s\"}", from, to,
             user);
    call(&g, "POST", "/v1/replays", h_adminkey, body, 202, &r);
    ck_assert_str_eq(str(r.json, "state"), "running");
    ck_assert(id_is_uuid(str(r.json, "replay_id")));
    snprintf(replay_id, sizeof replay_id, "%s", str(r.json, "replay_id"));
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/replays/%s", replay_id);
    const char *state = "running";
    for (int i = 0; i < 150; i++) {
        h_resp_clear(&r);
        call(&g, "GET", path, h_adminkey, NULL, 200, &r);
        state = str(r.json, "state");
        if (strcmp(state, "running") != 0)
            break;
        testsupport_sleep_ms(200);
    }
    ck_assert_msg(strcmp(state, "done") == 0, "%s", r.body);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "matched")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "published")), 3);
    /* Every record of the window is read; other cases' may be among them. */
    ck_assert_int_ge(json_integer_value(json_object_get(r.json, "scanned")), 4);
    ck_assert_str_eq(str(r.json, "from"), from);
    ck_assert_str_eq(str(r.json, "to"), to);
    ck_assert_str_eq(str(r.json, "type"), "replay.a");
    ck_assert_ptr_nonnull(str(r.json, "finished_at"));
    ck_assert(json_is_null(json_object_get(r.json, "error")));
    h_resp_clear(&r);

    /* The topic holds each matching event again, marked as a replay; the other once. */
    for (int i = 0; i < 4; i++) {
        int copies = 0, replayed = 0;
        count_copies(ids[i], &copies, &replayed);
        ck_assert_int_eq(copies, i < 3 ? 2 : 1);
        ck_assert_int_eq(replayed, i < 3 ? 1 : 0);
    }

    call(&g, "GET", "/v1/replays", h_adminkey, NULL, 200, &r);
    json_t *first = json_array_get(json_object_get(r.json, "replays"), 0);
    ck_assert_str_eq(str(first, "replay_id"), replay_id);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_replay_refuses_bad_requests_naming_the_field)
{
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"to\":\"-1m\"}", "from"},
        {"{\"from\":\"last tuesday\"}", "from"},
        {"{\"from\":\"-1h\",\"to\":\"-2h\"}", "to"},
        {"{\"from\":\"-1h\",\"dry_run\":\"yes\"}", "dry_run"},
        {"{\"from\":\"-1h\",\"type\":\"Not A Type\"}", "type"},
        {"{\"from\":\"-1h\",\"window\":1}", "window"},
    };
    h_gateway g;
    h_resp r;
    start_ops_gateway(&g, "0");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call(&g, "POST", "/v1/replays", h_adminkey, bad[i].body, 400, &r);
        ck_assert_str_eq(h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    call(&g, "GET", "/v1/replays/not-a-uuid", h_adminkey, NULL, 400, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/replays/6f1c1d1e-8f39-4a57-9c43-8a0c1b8e2f10", h_adminkey, NULL, 404, &r);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_ops_routes_need_an_admin_key)
{
    static const struct {
        const char *method, *path, *body;
    } routes[] = {
        {"GET", "/v1/ops/status", NULL},
        {"GET", "/v1/ops/history", NULL},
        {"GET", "/v1/replays", NULL},
        {"GET", "/v1/replays/6f1c1d1e-8f39-4a57-9c43-8a0c1b8e2f10", NULL},
        {"POST", "/v1/replays", "{\"from\":\"-1h\",\"dry_run\":true}"},
    };
    h_gateway g;
    h_resp r;
    start_ops_gateway(&g, "0");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        call(&g, routes[i].method, routes[i].path, NULL, routes[i].body, 401, &r);
        ck_assert_str_eq(h_error_code(&r), "unauthorized");
        h_resp_clear(&r);
        call(&g, routes[i].method, routes[i].path, h_pubkey, routes[i].body, 403, &r);
        ck_assert_str_eq(h_error_code(&r), "forbidden");
        h_resp_clear(&r);
    }
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_status_is_the_document_heraldctl_status_prints),
    TEST_ENTRY(test_history_keeps_samples_and_the_rate_of_a_publish_burst),
    TEST_ENTRY(test_replay_counts_the_window_and_republishes_it),
    TEST_ENTRY(test_replay_refuses_bad_requests_naming_the_field),
    TEST_ENTRY(test_ops_routes_need_an_admin_key),
};

TEST_MAIN("gateway_ops", cases)

/*
 * End to end under provider, input and database failures:
 *
 *   1. the SMS provider answers 503 for about 3 s, then recovers;
 *   2. the push provider hangs (requests held, past the worker's request
 *      timeout) for about 3 s, while email keeps flowing;
 *   3. poison records written straight into every topic the daemons read
 *      land in the dead-letter topic with their reason and stage, and valid
 *      events right after them still get through;
 *   4. every PostgreSQL backend of the scratch database is terminated twice
 *      while events flow.
 *
 * Each case checks, from the providers' own records, that every expected
 * notification arrived (loss = 0) and counts re-sends (the same idempotency
 * key received more than once; a re-send must carry the key of the first
 * send).  Prints `loss=N resends=N` per case.
 *
 * The workers get HERALD_BREAKER_COOLDOWN=1s (inherited from this process)
 * so that a provider's recovery is noticed within seconds, and the push
 * worker a 2 s request timeout so that a hang outlives it.
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define BATCH         50
#define OUTAGE_EVENTS 200
#define HANG_EVENTS   100
#define POISON_EVENTS 20
#define PG_EVENTS     300
#define PG_BATCH      30
#define OUTAGE_MS     3000L
#define HANG_MIN_MS   3000L

/* ------------------------------------------------------------ helpers */

/* The channels a case expects for each of its users. */
#define CH_EMAIL 1
#define CH_SMS   2
#define CH_PUSH  4
#define CH_ALL   (CH_EMAIL | CH_SMS | CH_PUSH)

/* Users <prefix>000.. with an address on every channel. */
static void make_users(const char *prefix, int n, int phone_base)
{
    char user[48], email[80], phone[32], token[64];
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof user, "%s%03d", prefix, i);
        snprintf(email, sizeof email, "%s%03d@e2e.test", prefix, i);
        snprintf(phone, sizeof phone, "+1555%03d%04d", phone_base, i);
        snprintf(token, sizeof token, "%s-token-%03d", prefix, i);
        e2e_put_user(&env, user, email, phone, token);
    }
}

/*
 * Publishes one event of type for users [from, from+n) of prefix with one
 * POST /v1/events/batch; stores the event ids.  Returns the HTTP status (the
 * ids are stored only on 202).
 */
static long try_publish_batch(const char *type, const char *prefix, int from, int n,
                              char ids[][ID_UUID_SIZE])
{
    json_t *events = json_array();
    for (int i = from; i < from + n; i++) {
        char user[48];
        snprintf(user, sizeof user, "%s%03d", prefix, i);
        json_array_append_new(
            events, json_pack("{s:s,s:s,s:{s:i}}", "type", type, "user_id", user, "data", "n", i));
    }
    json_t *req = json_pack("{s:o}", "events", events);
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    json_t *res = NULL;
    long st = e2e_api(&env, "POST", "/v1/events/batch", body, &res);
    free(body);
    if (st == 202) {
        json_t *results = json_object_get(res, "results");
        ck_assert_msg(json_array_size(results) == (size_t)n, "batch: %zu results for %d events",
                      json_array_size(results), n);
        for (int k = 0; k < n; k++) {
            const char *id =
                json_string_value(json_object_get(json_array_get(results, k), "event_id"));
            ck_assert_msg(id != NULL, "batch item %d was not accepted", k);
            snprintf(ids[from + k], ID_UUID_SIZE, "%s", id);
        }
    } else {
        char *dump = res ? json_dumps(res, JSON_COMPACT) : NULL;
        fprintf(stderr, "e2e: POST /v1/events/batch -> %ld %s\n", st, dump ? dump : "");
        free(dump);
    }
    json_decref(res);
    return st;
}

static void publish_batch(const char *type, const char *prefix, int from, int n,
                          char ids[][ID_UUID_SIZE])
{
    long st = try_publish_batch(type, prefix, from, n, ids);
    ck_assert_msg(st == 202, "POST /v1/events/batch -> %ld", st);
}

static void publish_all(const char *type, const char *prefix, int n, char ids[][ID_UUID_SIZE])
{
    for (int from = 0; from < n; from += BATCH)
        publish_batch(type, prefix, from, n - from < BATCH ? n - from : BATCH, ids);
}

/* key -> number of records, per expected notification (event id or address). */
typedef struct tally {
    json_t *by_item; /* item -> {key -> count} */
    long records;
    long mismatched; /* header and body keys differ */
} tally;

static void tally_add(tally *t, const char *item, const char *key)
{
    json_t *keys = json_object_get(t->by_item, item);
    if (keys == NULL) {
        keys = json_object();
        json_object_set_new(t->by_item, item, keys);
    }
    const char *k = key ? key : "";
    json_int_t c = json_integer_value(json_object_get(keys, k));
    json_object_set_new(keys, k, json_integer(c + 1));
    t->records++;
}

static void tally_http(json_t *records, const char *protocol, const char *prefix, tally *t)
{
    size_t i, plen = strlen(prefix);
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "protocol"));
        const char *u = json_string_value(json_object_get(r, "user_id"));
        const char *ev = json_string_value(json_object_get(r, "event_id"));
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        const char *bk = json_string_value(json_object_get(r, "body_idempotency_key"));
        if (!p || strcmp(p, protocol) != 0 || !u || strncmp(u, prefix, plen) != 0 || !ev)
            continue;
        if (!k || !bk || strcmp(k, bk) != 0)
            t->mismatched++;
        tally_add(t, ev, k);
    }
}

static void tally_smtp(json_t *records, const char *prefix, tally *t)
{
    size_t i, plen = strlen(prefix);
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *rcpt = json_string_value(json_array_get(json_object_get(r, "rcpt"), 0));
        const char *k = json_string_value(json_object_get(r, "message_id"));
        if (!rcpt || strncmp(rcpt, prefix, plen) != 0)
            continue;
        if (!k)
            t->mismatched++;
        tally_add(t, rcpt, k);
    }
}

typedef struct outcome {
    long loss, resends, rekeyed, mismatched;
    long email, sms, push; /* distinct notifications seen */
} outcome;

/* Counts what the providers hold for n users of prefix with events ids. */
static outcome count(const char *prefix, int n, char ids[][ID_UUID_SIZE], int channels)
{
    tally te = {json_object(), 0, 0}, ts = {json_object(), 0, 0}, tp = {json_object(), 0, 0};
    json_t *h = e2e_records(&env, E2E_HTTP), *m = e2e_records(&env, E2E_SMTP);
    tally_http(h, "sms", prefix, &ts);
    tally_http(h, "push", prefix, &tp);
    tally_smtp(m, prefix, &te);
    json_decref(h);
    json_decref(m);
    outcome o = {0};
    char email[80];
    for (int k = 0; k < n; k++) {
        snprintf(email, sizeof email, "%s%03d@e2e.test", prefix, k);
        o.loss += (channels & CH_EMAIL) && json_object_get(te.by_item, email) == NULL;
        o.loss += (channels & CH_SMS) && json_object_get(ts.by_item, ids[k]) == NULL;
        o.loss += (channels & CH_PUSH) && json_object_get(tp.by_item, ids[k]) == NULL;
    }
    tally *all[3] = {&te, &ts, &tp};
    for (int c = 0; c < 3; c++) {
        const char *item;
        json_t *keys;
        json_object_foreach(all[c]->by_item, item, keys)
        {
            /* One key per notification: a second key would be a re-send that
             * a provider cannot recognise as one. */
            if (json_object_size(keys) != 1) {
                char *dump = json_dumps(keys, JSON_COMPACT);
                fprintf(stderr, "e2e: %s received under several keys: %s\n", item, dump);
                free(dump);
                o.rekeyed++;
            }
        }
        o.resends += all[c]->records - (long)json_object_size(all[c]->by_item);
        o.mismatched += all[c]->mismatched;
    }
    o.email = (long)json_object_size(te.by_item);
    o.sms = (long)json_object_size(ts.by_item);
    o.push = (long)json_object_size(tp.by_item);
    json_decref(te.by_item);
    json_decref(ts.by_item);
    json_decref(tp.by_item);
    return o;
}

/*
 * Waits (bounded) until every expected notification of the case reached its
 * provider, then a moment more for late re-sends; prints and asserts
 * loss = 0, one key per notification, nothing unexpected.
 */
static void expect_delivered(const char *what, const char *prefix, int n, char ids[][ID_UUID_SIZE],
                             int channels, int64_t t0)
{
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    outcome o = {0};
    for (int i = 0; i < 2000; i++) {
        o = count(prefix, n, ids, channels);
        if (o.loss == 0 || timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(250);
    }
    long loss = o.loss;
    int64_t took = timeutil_monotonic_ms() - t0;
    testsupport_sleep_ms(1000); /* late re-sends still count */
    o = count(prefix, n, ids, channels);
    fprintf(stderr,
            "e2e: %s: email %ld, sms %ld, push %ld notifications of %d events, all in %lld ms\n",
            what, o.email, o.sms, o.push, n, (long long)took);
    printf("%s: loss=%ld resends=%ld\n", what, loss, o.resends);
    fflush(stdout);
    int per =
        ((channels & CH_EMAIL) != 0) + ((channels & CH_SMS) != 0) + ((channels & CH_PUSH) != 0);
    ck_assert_msg(loss == 0, "%s: %ld of %d notifications never reached their provider", what, loss,
                  per * n);
    ck_assert_msg(o.rekeyed == 0, "%s: %ld notifications were re-sent under another key", what,
                  o.rekeyed);
    ck_assert_msg(o.mismatched == 0,
                  "%s: %ld requests carried no key or different header and body keys", what,
                  o.mismatched);
    ck_assert_int_eq(o.email, (channels & CH_EMAIL) ? n : 0);
    ck_assert_int_eq(o.sms, (channels & CH_SMS) ? n : 0);
    ck_assert_int_eq(o.push, (channels & CH_PUSH) ? n : 0);
}

/* A counter of the HTTP provider's GET /_control stats. */
static long http_stat(const char *name)
{
    json_t *j = e2e_provider(&env, &env.procs[E2E_HTTP], "/_control", NULL);
    long v = (long)json_integer_value(json_object_get(json_object_get(j, "stats"), name));
    json_decref(j);
    return v;
}

/* ------------------------------------------------------------ cases */

START_TEST(test_whole_stack_starts)
{
    /* Inherited by the workers: an open breaker probes again after 1 s. */
    setenv("HERALD_BREAKER_COOLDOWN", "1s", 1);
    e2e_up(&env, "e2e_resilience");
    up = true;

    /* The push worker again, with a request timeout a hang outlasts. */
    e2e_proc *p = &env.procs[E2E_PUSH];
    int n = 0;
    while (n < 46 && p->env[n] != NULL)
        n++;
    ck_assert_int_lt(n, 46);
    p->env[n] = e2e_printf("HERALD_PROVIDER_TIMEOUT=2s");
    ck_assert_int_eq(e2e_stop(p, SIGTERM, 30000), 0);
    e2e_restart(&env, E2E_PUSH);

    e2e_put_templates(&env, "e2e.res");
    make_users("down-", OUTAGE_EVENTS, 501);
    make_users("hang-", HANG_EVENTS, 502);
    make_users("pois-", POISON_EVENTS, 503);
    make_users("pgkill-", PG_EVENTS, 504);

    /* One event end to end first: on a fresh broker the first consumer
     * groups (and __consumer_offsets) take seconds to form, and the failure
     * windows below must start with every consumer at work. */
    static char warm[1][ID_UUID_SIZE];
    make_users("warm-", 1, 500);
    int64_t t0 = timeutil_monotonic_ms();
    publish_all("e2e.res", "warm-", 1, warm);
    expect_delivered("warmup", "warm-", 1, warm, CH_ALL, t0);
}
END_TEST

START_TEST(test_sms_provider_down_for_a_while_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[OUTAGE_EVENTS][ID_UUID_SIZE];
    long failed0 = http_stat("failed_injected");
    e2e_control(&env, E2E_HTTP,
                "{\"fail_status\":503,\"fail_count\":100000000,\"match\":\"/sms\"}");
    int64_t t0 = timeutil_monotonic_ms();
    publish_all("e2e.res", "down-", OUTAGE_EVENTS, ids);
    int64_t left = t0 + OUTAGE_MS - timeutil_monotonic_ms();
    if (left > 0)
        testsupport_sleep_ms((long)left);
    e2e_control(&env, E2E_HTTP, "{\"fail_count\":0,\"match\":\"\"}");
    long failed = http_stat("failed_injected") - failed0;
    fprintf(stderr, "e2e: sms answered 503 to %ld requests during %lld ms\n", failed,
            (long long)(timeutil_monotonic_ms() - t0));
    ck_assert_msg(failed > 0, "no SMS request was refused during the outage");
    expect_delivered("provider_down", "down-", OUTAGE_EVENTS, ids, CH_ALL, t0);
}
END_TEST

START_TEST(test_hanging_push_provider_loses_nothing_and_stalls_no_other_channel)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[HANG_EVENTS][ID_UUID_SIZE];
    e2e_control(&env, E2E_HTTP, "{\"hang\":true,\"match\":\"/push\"}");
    int64_t t0 = timeutil_monotonic_ms();
    publish_all("e2e.res", "hang-", HANG_EVENTS, ids);

    /* Email of every event published during the hang arrives while push hangs. */
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    outcome o = {0};
    long hung = 0;
    for (int i = 0; i < 2000; i++) {
        o = count("hang-", HANG_EVENTS, ids, CH_EMAIL);
        hung = hung > 0 ? hung : http_stat("hung");
        if ((o.loss == 0 && hung > 0) || timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(100);
    }
    int64_t email_ms = timeutil_monotonic_ms() - t0;
    o = count("hang-", HANG_EVENTS, ids, CH_PUSH);
    long pushed = o.push;
    int64_t left = t0 + HANG_MIN_MS - timeutil_monotonic_ms();
    if (left > 0)
        testsupport_sleep_ms((long)left);
    long hung_now = http_stat("hung");
    e2e_control(&env, E2E_HTTP, "{\"hang\":false,\"match\":\"\"}");
    fprintf(stderr,
            "e2e: push hung for %lld ms (%ld requests held at the end); email of every event "
            "in %lld ms; %ld push notifications recorded during the hang\n",
            (long long)(timeutil_monotonic_ms() - t0), hung_now, (long long)email_ms, pushed);
    ck_assert_msg(hung > 0, "no push request was ever held by the hang");
    ck_assert_msg(pushed == 0, "%ld push notifications got through a hanging provider", pushed);
    ck_assert_msg(count("hang-", HANG_EVENTS, ids, CH_EMAIL).loss == 0,
                  "email stalled while push hung: not every email arrived within %ld s",
                  E2E_PHASE_MS / 1000);
    expect_delivered("provider_hang", "hang-", HANG_EVENTS, ids, CH_ALL, t0);
}
END_TEST

/* One poison record, identified in the DLQ by its key. */
typedef struct poison {
    const char *topic; /* after the prefix */
    const char *value;
    const char *reason; /* expected herald.dlq.reason */
    const char *stage;  /* expected herald.dlq.stage */
} poison;

static const poison poisons[] = {
    {"events", "{\"type\":\"e2e.res\",\"user_id\":", "invalid_json", "dispatcher"},
    {"events", "{\"hello\":\"world\"}", "invalid_event", "dispatcher"},
    {"deliveries.email", "\xff\xfe not json", "invalid_json", "worker.email"},
    {"deliveries.email", "{\"hello\":\"world\"}", "invalid_delivery", "worker.email"},
    {"deliveries.sms", "[1,2,", "invalid_json", "worker.sms"},
    {"deliveries.sms", "{\"channel\":\"sms\"}", "invalid_delivery", "worker.sms"},
    {"deliveries.push", "", "invalid_json", "worker.push"},
    {"deliveries.push", "[]", "invalid_delivery", "worker.push"},
    {"retry.sms", "not json at all", "invalid_json", "worker.sms"},
    {"retry.sms", "{\"delivery_id\":42}", "invalid_delivery", "worker.sms"},
};
#define NPOISON (sizeof poisons / sizeof poisons[0])

static void produce_poisons(const char *tag)
{
    char err[512], topic[160], key[96];
    kafka_producer *p = kafka_producer_new(env.brokers, NULL, NULL, NULL, err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    for (size_t i = 0; i < NPOISON; i++) {
        snprintf(topic, sizeof topic, "%s%s", env.prefix, poisons[i].topic);
        snprintf(key, sizeof key, "%s-%zu", tag, i);
        kafka_status st = kafka_produce(p, topic, key, strlen(key), poisons[i].value,
                                        strlen(poisons[i].value), NULL, NULL, err, sizeof err);
        ck_assert_msg(st == KAFKA_OK, "produce to %s: %s", topic, err);
    }
    int left = kafka_producer_flush(p, 30000);
    kafka_producer_destroy(p);
    ck_assert_msg(left == 0, "%d poison records not acknowledged", left);
}

/* Bytes as a hex JSON string (values need not be UTF-8). */
static json_t *hex(const void *p, size_t n)
{
    char *s = malloc(2 * n + 1);
    ck_assert_ptr_nonnull(s);
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02x", ((const unsigned char *)p)[i]);
    s[2 * n] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
}

/* The headers of the DLQ records whose key starts with tag: key -> headers. */
static json_t *dlq_by_key(const char *tag, size_t want, long timeout_ms)
{
    char err[512], topic[96], group[96];
    snprintf(topic, sizeof topic, "%sdlq", env.prefix);
    snprintf(group, sizeof group, "%se2e-resilience-dlq", env.prefix);
    kafka_consumer *c = kafka_consumer_new(env.brokers, group, NULL, NULL, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    int parts = atoi(E2E_PARTITIONS);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(kafka_consumer_rk(c), l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    json_t *found = json_object();
    size_t tlen = strlen(tag);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0;
         i < 100000 && json_object_size(found) < want && timeutil_monotonic_ms() < deadline; i++) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == 0 && m->key != NULL && m->key_len > tlen && memcmp(m->key, tag, tlen) == 0) {
            json_t *h = json_object();
            rd_kafka_headers_t *hdrs = NULL;
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_message_headers(m, &hdrs) == 0)
                for (size_t k = 0; rd_kafka_header_get_all(hdrs, k, &name, &val, &size) == 0; k++)
                    json_object_set_new(h, name, json_stringn(val ? val : "", val ? size : 0));
            json_object_set_new(h, "(value)", hex(m->payload, m->payload ? m->len : 0));
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)m->key_len, (const char *)m->key);
            json_object_set_new(found, key, h);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(kafka_consumer_rk(c), NULL);
    kafka_consumer_destroy(c);
    return found;
}

START_TEST(test_poison_records_in_every_topic_go_to_the_dlq_and_block_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[POISON_EVENTS][ID_UUID_SIZE];
    char tag[64];
    snprintf(tag, sizeof tag, "poison-%s", env.prefix);
    int64_t t0 = timeutil_monotonic_ms();
    produce_poisons(tag);
    publish_all("e2e.res", "pois-", POISON_EVENTS, ids);
    expect_delivered("poison", "pois-", POISON_EVENTS, ids, CH_ALL, t0);

    json_t *dlq = dlq_by_key(tag, NPOISON, 60000);
    size_t bad = 0;
    for (size_t i = 0; i < NPOISON; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s-%zu", tag, i);
        json_t *h = json_object_get(dlq, key);
        char *dump = h ? json_dumps(h, JSON_COMPACT) : NULL;
        const char *reason = json_string_value(json_object_get(h, "herald.dlq.reason"));
        const char *stage = json_string_value(json_object_get(h, "herald.dlq.stage"));
        const char *orig = json_string_value(json_object_get(h, "herald.original.topic"));
        const char *value = json_string_value(json_object_get(h, "(value)"));
        json_t *want = hex(poisons[i].value, strlen(poisons[i].value));
        char topic[160];
        snprintf(topic, sizeof topic, "%s%s", env.prefix, poisons[i].topic);
        bool ok = h && reason && strcmp(reason, poisons[i].reason) == 0 && stage &&
                  strcmp(stage, poisons[i].stage) == 0 && orig && strcmp(orig, topic) == 0 &&
                  value && json_equal(json_object_get(h, "(value)"), want);
        json_decref(want);
        fprintf(stderr, "e2e: poison %zu in %s (%s): %s %s\n", i, poisons[i].topic,
                poisons[i].reason, ok ? "ok" : "WRONG", dump ? dump : "not in the DLQ");
        bad += !ok;
        free(dump);
    }
    json_decref(dlq);
    ck_assert_msg(bad == 0, "%zu of %zu poison records not dead-lettered as expected", bad,
                  NPOISON);
}
END_TEST

/* Terminates every other backend of the scratch database; returns how many. */
static long terminate_backends(void)
{
    PGconn *c = PQconnectdb(env.db_url);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    long n = testsupport_sql_long(
        c, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE datname = current_database() AND pid <> pg_backend_pid()) t");
    PQfinish(c);
    return n;
}

START_TEST(test_postgres_connections_lost_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    static char ids[PG_EVENTS][ID_UUID_SIZE];
    int64_t t0 = timeutil_monotonic_ms();
    int kills = 0;
    long refused = 0;
    for (int b = 0; b * PG_BATCH < PG_EVENTS; b++) {
        /* A gateway that lost its connection may refuse a request with 503
         * (retry later); a client retries it.  Anything else fails. */
        long st = 0;
        for (int attempt = 0; attempt < 40; attempt++) {
            st = try_publish_batch("e2e.res", "pgkill-", b * PG_BATCH, PG_BATCH, ids);
            if (st != 503)
                break;
            refused++;
            testsupport_sleep_ms(250);
        }
        ck_assert_msg(st == 202, "POST /v1/events/batch -> %ld", st);
        if (b == 2 || b == 6) {
            long n = terminate_backends();
            kills++;
            fprintf(stderr, "e2e: terminated %ld PostgreSQL backends (after %d events)\n", n,
                    (b + 1) * PG_BATCH);
            ck_assert_msg(n > 0, "no backend of the scratch database to terminate");
        }
        testsupport_sleep_ms(150);
    }
    fprintf(stderr, "e2e: %d events published, %d terminations, %ld batches refused with 503\n",
            PG_EVENTS, kills, refused);
    expect_delivered("postgres_loss", "pgkill-", PG_EVENTS, ids, CH_ALL, t0);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts),
    TEST_ENTRY(test_sms_provider_down_for_a_while_loses_nothing),
    TEST_ENTRY(test_hanging_push_provider_loses_nothing_and_stalls_no_other_channel),
    TEST_ENTRY(test_poison_records_in_every_topic_go_to_the_dlq_and_block_nothing),
    TEST_ENTRY(test_postgres_connections_lost_mid_run_loses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_resilience", cases, env)

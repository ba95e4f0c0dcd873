/*
 * End to end through a broker failure: Herald on a three-node Kafka cluster
 * (tests/e2e/kafka-cluster: every topic with three replicas and
 * min.insync.replicas=2) while events stream in through the HTTP API.  One
 * broker, one that leads partitions of the events topic (the coordinator of
 * the dispatcher's group when that one does), is killed with SIGKILL and
 * started again a few seconds later.  The client retries what the gateway
 * could not hand to Kafka, with the event's idempotency key, as the API
 * says.  Nothing may be lost: from the providers' own records, every
 * expected notification arrives.  Re-sends are allowed by at-least-once
 * delivery and counted; each must carry the notification's one idempotency
 * key.  Prints `loss=N resends=N`.
 *
 * The suite starts the cluster itself, in a scratch directory, and stops it
 * at exit (a watchdog of the script does when this process is killed);
 * HERALD_KAFKA_BROKERS from dev/services is replaced by the cluster's
 * bootstrap list.  PostgreSQL is the one of dev/services.
 */
#include "e2e_suite.h"

#include <librdkafka/rdkafka.h>

static e2e_env env;
static bool up;

#define USERS            400
#define PER_USER         6
#define EVENTS           (USERS * PER_USER)
#define BATCH            100 /* events n..n+99: one each for 100 users */
#define BATCH_PAUSE_MS   100
#define KILL_AFTER_BATCH 6
#define DOWN_MS          5000 /* how long the killed broker stays down */
#define SCRIPT_MS        180000

enum { CH_EMAIL, CH_SMS, CH_PUSH, NCH };

static char ids[EVENTS][ID_UUID_SIZE];

/* ------------------------------------------------------------ the cluster */

static struct {
    pid_t owner;  /* the process that started the cluster (not a fork of it) */
    char dir[64]; /* node data and logs */
    char script[512];
    char brokers[160];
    pid_t restart; /* `start N` running in the background, or 0 */
} cluster;

/* Runs `kafka-cluster DIR args...`; stdout into out.  Returns the exit status. */
static int cluster_run(const char *const args[], char *out, size_t outlen, int timeout_ms)
{
    char *argv[8] = {cluster.script, cluster.dir};
    char errout[8192] = "";
    for (int i = 0; args[i] != NULL && i < 5; i++)
        argv[2 + i] = (char *)args[i];
    int rc = testsupport_run(argv, NULL, out, outlen, errout, sizeof errout, timeout_ms);
    if (rc != 0)
        fprintf(stderr, "e2e: kafka-cluster %s: exit %d\n%s", args[0], rc, errout);
    return rc;
}

static void cluster_down(void)
{
    if (cluster.owner != getpid() || cluster.dir[0] == '\0')
        return;
    char out[256];
    if (cluster.restart > 0) /* a failed run: `down` stops what it may have started */
        (void)testsupport_wait(cluster.restart, 5000);
    (void)cluster_run((const char *const[]){"down", NULL}, out, sizeof out, 60000);
    const char *keep = getenv("HERALD_TEST_KEEP");
    if (keep == NULL || *keep == '\0' || strcmp(keep, "0") == 0) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", cluster.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "e2e: could not remove %s\n", cluster.dir);
    } else {
        fprintf(stderr, "e2e: cluster logs kept in %s\n", cluster.dir);
    }
}

/* Starts the cluster and points the harness at it. */
static void cluster_up(void)
{
    char owner[32];
    const char *src = test_require_env("HERALD_SOURCE_DIR");
    (void)test_require_env("HERALD_BIN_DIR");
    (void)test_require_env("HERALD_DATABASE_URL");
    snprintf(cluster.script, sizeof cluster.script, "%s/tests/e2e/kafka-cluster", src);
    snprintf(cluster.dir, sizeof cluster.dir, "/tmp/herald-kafka-cluster-XXXXXX");
    ck_assert_msg(mkdtemp(cluster.dir) != NULL, "mkdtemp: %s", strerror(errno));
    cluster.owner = getpid();
    atexit(cluster_down);
    snprintf(owner, sizeof owner, "%d", (int)getpid());

    int64_t t0 = timeutil_monotonic_ms();
    int rc = cluster_run((const char *const[]){"up", "--owner", owner, NULL}, cluster.brokers,
                         sizeof cluster.brokers, SCRIPT_MS);
    cluster.brokers[strcspn(cluster.brokers, "\n")] = '\0';
    ck_assert_msg(rc == 0 && cluster.brokers[0] != '\0',
                  "the three-node Kafka cluster did not start (exit %d; see above)", rc);
    fprintf(stderr, "e2e: Kafka cluster %s up in %lld ms (data and logs in %s)\n", cluster.brokers,
            (long long)(timeutil_monotonic_ms() - t0), cluster.dir);
    ck_assert_int_eq(setenv("HERALD_KAFKA_BROKERS", cluster.brokers, 1), 0);
}

/*
 * Starts node (as text) again DOWN_MS from now, in the background: the run
 * goes on meanwhile, and a publish stalled by the failure does not delay it.
 */
static void cluster_restart_later(const char *node)
{
    char log[128], delay[32];
    snprintf(log, sizeof log, "%s/restart.log", cluster.dir);
    snprintf(delay, sizeof delay, "%d.%03d", DOWN_MS / 1000, DOWN_MS % 1000);
    char *argv[] = {"/bin/sh",
                    "-c",
                    "sleep \"$0\" && exec \"$1\" \"$2\" start \"$3\"",
                    delay,
                    cluster.script,
                    cluster.dir,
                    (char *)node,
                    NULL};
    cluster.restart = testsupport_spawn(argv, NULL, "/dev/null", log);
    ck_assert_int_gt(cluster.restart, 0);
}

static void cluster_restart_wait(void)
{
    int rc = testsupport_wait(cluster.restart, SCRIPT_MS);
    cluster.restart = 0;
    if (rc != 0) {
        char log[128];
        snprintf(log, sizeof log, "%s/restart.log", cluster.dir);
        char *s = testsupport_read_file(log, NULL);
        fprintf(stderr, "%s", s ? s : "");
        free(s);
    }
    ck_assert_msg(rc == 0, "the killed broker did not come back (exit %d)", rc);
}

/*
 * The node to kill: the coordinator of the dispatcher's consumer group when
 * it leads a partition of the events topic, else the leader of most of them.
 * Asserts that every partition of the events topic has three replicas.
 */
static int choose_victim(void)
{
    char err[512], topic[128], group[128];
    int leads[4] = {0}, coordinator = -1;
    snprintf(topic, sizeof topic, "%sevents", env.prefix);
    snprintf(group, sizeof group, "%sdispatcher", env.prefix);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    ck_assert(rd_kafka_conf_set(conf, "bootstrap.servers", cluster.brokers, err, sizeof err) ==
              RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "rd_kafka_new: %s", err);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 15000);
    ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topic_cnt == 1 &&
                      md->topics[0].partition_cnt > 0,
                  "metadata of %s: %s", topic, rd_kafka_err2str(e));
    for (int i = 0; i < md->topics[0].partition_cnt; i++) {
        const rd_kafka_metadata_partition_t *p = &md->topics[0].partitions[i];
        ck_assert_msg(p->replica_cnt == 3, "%s [%d] has %d replicas, not 3", topic, p->id,
                      p->replica_cnt);
        if (p->leader >= 1 && p->leader <= 3)
            leads[p->leader]++;
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    /* A coordinator that is still loading its partition answers "not
     * coordinator" for a while: ask again, a bounded number of times. */
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const char *groups[] = {group};
    for (int attempt = 0; attempt < 4 && coordinator < 0; attempt++) {
        if (attempt > 0)
            testsupport_sleep_ms(1000);
        rd_kafka_DescribeConsumerGroups(rk, groups, 1, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 5000);
        const rd_kafka_DescribeConsumerGroups_result_t *res =
            ev ? rd_kafka_event_DescribeConsumerGroups_result(ev) : NULL;
        size_t n = 0;
        const rd_kafka_ConsumerGroupDescription_t **descs =
            res ? rd_kafka_DescribeConsumerGroups_result_groups(res, &n) : NULL;
        const rd_kafka_error_t *gerr =
            n == 1 ? rd_kafka_ConsumerGroupDescription_error(descs[0]) : NULL;
        if (n == 1 && gerr == NULL && rd_kafka_ConsumerGroupDescription_coordinator(descs[0]))
            coordinator = rd_kafka_Node_id(rd_kafka_ConsumerGroupDescription_coordinator(descs[0]));
        else
            fprintf(stderr, "e2e: coordinator of %s not known yet: %s\n", group,
                    ev == NULL                 ? "no answer"
                    : rd_kafka_event_error(ev) ? rd_kafka_event_error_string(ev)
                    : gerr != NULL             ? rd_kafka_error_string(gerr)
                                               : "no description");
        if (ev)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);

    int victim = 1;
    for (int id = 2; id <= 3; id++)
        if (leads[id] > leads[victim])
            victim = id;
    if (coordinator >= 1 && coordinator <= 3 && leads[coordinator] > 0)
        victim = coordinator;
    ck_assert_msg(leads[victim] > 0, "no node leads a partition of %s", topic);
    fprintf(stderr,
            "e2e: node %d leads %d partitions of %s; the dispatcher group's coordinator is "
            "node %d\n",
            victim, leads[victim], topic, coordinator);
    return victim;
}

/* ------------------------------------------------------------ publishing */

static bool retryable(const char *code)
{
    return code != NULL &&
           (strcmp(code, "broker_unavailable") == 0 || strcmp(code, "queue_full") == 0 ||
            strcmp(code, "idempotency_in_progress") == 0);
}

/*
 * Publishes events [from, from+BATCH) with POST /v1/events/batch, each with
 * an idempotency key of its own, and publishes again (same keys) the items
 * the gateway could not hand to Kafka, as a client should.  Returns how many
 * item publishes were retried.
 */
static long publish_batch(int from)
{
    int pending[BATCH], npending = BATCH;
    long retried = 0;
    for (int k = 0; k < BATCH; k++)
        pending[k] = from + k;
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int round = 0; npending > 0; round++) {
        ck_assert_msg(round < 500 && timeutil_monotonic_ms() < deadline,
                      "events %d-%d: %d still not accepted", from, from + BATCH - 1, npending);
        json_t *events = json_array();
        for (int k = 0; k < npending; k++) {
            char user[32], key[32];
            snprintf(user, sizeof user, "fo-%03d", pending[k] % USERS);
            snprintf(key, sizeof key, "failover-%d", pending[k]);
            json_array_append_new(events, json_pack("{s:s,s:s,s:{s:i},s:s}", "type", "e2e.failover",
                                                    "user_id", user, "data", "n", pending[k],
                                                    "idempotency_key", key));
        }
        json_t *req = json_pack("{s:o}", "events", events);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        json_t *res = NULL;
        long st = e2e_api(&env, "POST", "/v1/events/batch", body, &res);
        free(body);
        json_t *results = json_object_get(res, "results");
        bool whole = json_array_size(results) == (size_t)npending;
        if ((st != 202 && st != 503 && st != 409) || (st == 202 && !whole)) {
            char *dump = res ? json_dumps(res, JSON_COMPACT) : NULL;
            fprintf(stderr, "POST /v1/events/batch -> %ld %s\n", st, dump ? dump : "");
            free(dump);
            json_decref(res);
            ck_abort_msg("POST /v1/events/batch answered %ld", st);
        }
        /* 503 or 409 for the whole request: every item is to be sent again. */
        int left = 0, refused = -1;
        char refusal[64] = "";
        for (int k = 0; k < npending; k++) {
            json_t *item = json_array_get(results, k);
            const char *id = json_string_value(json_object_get(item, "event_id"));
            const char *code =
                json_string_value(json_object_get(json_object_get(item, "error"), "code"));
            if (id != NULL) {
                snprintf(ids[pending[k]], ID_UUID_SIZE, "%s", id);
                continue;
            }
            if (whole && !retryable(code) && refused < 0) {
                refused = pending[k];
                snprintf(refusal, sizeof refusal, "%s", code ? code : "(no code)");
            }
            pending[left++] = pending[k];
        }
        json_decref(res);
        ck_assert_msg(refused < 0, "event %d refused: %s", refused, refusal);
        retried += left;
        npending = left;
        if (npending > 0)
            testsupport_sleep_ms(500);
    }
    return retried;
}

/* ------------------------------------------------------------ what arrived */

typedef struct tally {
    long records[NCH];
    long loss;    /* expected notifications (event, channel) never received */
    long resends; /* records beyond the first of a notification, same key */
    long rekeyed; /* records of a notification under a second key: a duplicate */
    long strays;  /* records that are no notification of this run */
} tally;

/* "Failover <n>", the text every template of this suite starts with: n, or -1. */
static int text_event(const char *s)
{
    if (s == NULL || strncmp(s, "Failover ", 9) != 0)
        return -1;
    char *end;
    long n = strtol(s + 9, &end, 10);
    return end != s + 9 && n >= 0 && n < EVENTS ? (int)n : -1;
}

static void tally_add(tally *t, json_t *first_keys, int ch, const char *text, const char *key)
{
    int n = text_event(text);
    if (n < 0 || key == NULL) {
        t->strays++;
        return;
    }
    t->records[ch]++;
    char slot[32];
    snprintf(slot, sizeof slot, "%d/%d", ch, n);
    const char *first = json_string_value(json_object_get(first_keys, slot));
    if (first == NULL)
        json_object_set_new(first_keys, slot, json_string(key));
    else if (strcmp(first, key) == 0)
        t->resends++;
    else
        t->rekeyed++;
}

/* What the providers received so far. */
static tally tally_records(void)
{
    tally t = {0};
    json_t *first_keys = json_object();
    json_t *http = e2e_records(&env, E2E_HTTP), *smtp = e2e_records(&env, E2E_SMTP);
    size_t i;
    json_t *r;
    json_array_foreach(http, i, r)
    {
        const char *proto = json_string_value(json_object_get(r, "protocol"));
        int ch = proto && strcmp(proto, "sms") == 0    ? CH_SMS
                 : proto && strcmp(proto, "push") == 0 ? CH_PUSH
                                                       : -1;
        if (ch < 0)
            t.strays++;
        else
            tally_add(&t, first_keys, ch, json_string_value(json_object_get(r, "body")),
                      json_string_value(json_object_get(r, "idempotency_key")));
    }
    json_array_foreach(smtp, i, r)
    {
        tally_add(&t, first_keys, CH_EMAIL, json_string_value(json_object_get(r, "subject")),
                  json_string_value(json_object_get(r, "message_id")));
    }
    t.loss = (long)NCH * EVENTS - (long)json_object_size(first_keys);
    json_decref(first_keys);
    json_decref(http);
    json_decref(smtp);
    return t;
}

/* ------------------------------------------------------------ the cases */

START_TEST(test_cluster_and_stack_start)
{
    cluster_up();
    e2e_up_replicated(&env, "e2e_failover", 3);
    up = true;
}
END_TEST

START_TEST(test_killing_a_broker_mid_run_loses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    char user[32], email[64], phone[32], token[48], node[8];

    e2e_put_template(&env, "e2e.failover", "email", "Failover {{data.n}}",
                     "Event {{data.n}} for {{user.name}}", NULL);
    e2e_put_template(&env, "e2e.failover", "sms", NULL, "Failover {{data.n}}", NULL);
    e2e_put_template(&env, "e2e.failover", "push", "Failover {{data.n}}", "Failover {{data.n}}",
                     NULL);
    for (int i = 0; i < USERS; i++) {
        snprintf(user, sizeof user, "fo-%03d", i);
        snprintf(email, sizeof email, "fo-%03d@e2e.test", i);
        snprintf(phone, sizeof phone, "+1555400%04d", i);
        snprintf(token, sizeof token, "fo-token-%03d", i);
        e2e_put_user(&env, user, email, phone, token);
    }
    /* Provider latency keeps deliveries in flight while the broker is down. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":20,\"latency_jitter_ms\":20}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":5}");
    snprintf(node, sizeof node, "%d", choose_victim());

    long retried = 0;
    int64_t t0 = timeutil_monotonic_ms(), killed_at = 0;
    for (int b = 0; b * BATCH < EVENTS; b++) {
        retried += publish_batch(b * BATCH);
        if (b == KILL_AFTER_BATCH) {
            fprintf(stderr, "e2e: killing Kafka node %s after %d events; it restarts in %d ms\n",
                    node, (b + 1) * BATCH, DOWN_MS);
            char out[64];
            ck_assert_int_eq(
                cluster_run((const char *const[]){"kill", node, NULL}, out, sizeof out, 30000), 0);
            killed_at = timeutil_monotonic_ms();
            cluster_restart_later(node);
        }
        testsupport_sleep_ms(BATCH_PAUSE_MS);
    }
    fprintf(stderr, "e2e: %d events published in %lld ms, %ld item publishes retried\n", EVENTS,
            (long long)(timeutil_monotonic_ms() - t0), retried);
    cluster_restart_wait();
    fprintf(stderr, "e2e: node %s is back, %lld ms after it was killed\n", node,
            (long long)(timeutil_monotonic_ms() - killed_at));

    /* Wait (bounded) until every expected notification reached its provider. */
    tally t = {0};
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < 2000; i++) {
        t = tally_records();
        if (t.loss == 0 || timeutil_monotonic_ms() > deadline || !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(500);
    }
    testsupport_sleep_ms(2000); /* late re-sends still count */
    t = tally_records();
    fprintf(stderr,
            "e2e: records email %ld, sms %ld, push %ld; %ld under a second key, %ld strays; "
            "%lld ms since the first publish\n",
            t.records[CH_EMAIL], t.records[CH_SMS], t.records[CH_PUSH], t.rekeyed, t.strays,
            (long long)(timeutil_monotonic_ms() - t0));
    printf("loss=%ld resends=%ld\n", t.loss, t.resends);
    fflush(stdout);
    ck_assert_msg(t.loss == 0, "%ld of %d notifications never reached their provider", t.loss,
                  NCH * EVENTS);
    ck_assert_msg(t.strays == 0, "%ld records are no notification of this run", t.strays);

    /* The API agrees: every event delivered on its three channels. */
    e2e_control(&env, E2E_HTTP, "{\"latency_ms\":0,\"latency_jitter_ms\":0}");
    e2e_control(&env, E2E_SMTP, "{\"latency_ms\":0}");
    deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < EVENTS; i++) {
        long left = (long)(deadline - timeutil_monotonic_ms());
        json_t *doc = e2e_wait_event(&env, ids[i], NCH, left > 0 ? left : 1);
        ck_assert_msg(doc != NULL, "GET /v1/events/%s stayed 404", ids[i]);
        size_t sent = e2e_count_deliveries(doc, NULL, "sent");
        if (sent != NCH) {
            char *dump = json_dumps(doc, JSON_COMPACT);
            fprintf(stderr, "event %d: %s\n", i, dump);
            free(dump);
        }
        json_decref(doc);
        ck_assert_msg(sent == NCH, "event %s is not reported sent on its three channels", ids[i]);
    }
    /* Last, so that a failure here comes after every other check: an event
     * published twice (a retried publish whose first attempt Kafka stored
     * after all) reaches its user twice, under two keys. */
    ck_assert_msg(t.rekeyed == 0, "%ld notifications were sent again under another key", t.rekeyed);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_cluster_and_stack_start),
    TEST_ENTRY(test_killing_a_broker_mid_run_loses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_failover", cases, env)

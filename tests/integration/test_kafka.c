/*
 * kafka against the real broker: topics are created (then reported as
 * existing), keyed messages come back on the partition their delivery
 * report named, in per-key order, with their headers; committed offsets hold
 * for the next member of the group; transactions hide aborted messages;
 * paused consumers stay paused across assignment; and failures (no broker,
 * full queue, fatal producer, bad property) are reported the way callers
 * act on them.  Every topic has a random name and is deleted at the end.
 */
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"
#include "kafka_admin.h"
#include "kafka_txn.h"
#include "log.h"
#include "testutil.h"
#include "timeutil.h"

#define ADMIN_TIMEOUT_MS 15000

static const char *brokers;

/*
 * Topics are named herald-test-kafka-<run>-...  Each test deletes its own;
 * Check ends a failed test's process with _exit(), skipping that, so the
 * suite's main process deletes what its tests left when it exits.
 */
static char run_tag[16];
static pid_t suite_pid;

static unsigned long long random_u64(void)
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 20);
    return v;
}

static void delete_run_topics(void)
{
    const char *bootstrap = getenv("HERALD_KAFKA_BROKERS");
    char prefix[64], err[512];
    if (getpid() != suite_pid || bootstrap == NULL || *bootstrap == '\0')
        return;
    snprintf(prefix, sizeof(prefix), "herald-test-kafka-%s-", run_tag);
    rd_kafka_conf_t *conf = kafka_conf_new(bootstrap, NULL, err, sizeof(err));
    rd_kafka_t *rk = conf != NULL ? rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err)) : NULL;
    const struct rd_kafka_metadata *md = NULL;
    if (rk != NULL && rd_kafka_metadata(rk, 1, NULL, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *names[64];
        size_t n = 0;
        for (int i = 0; i < md->topic_cnt && n < 64; i++)
            if (strncmp(md->topics[i].topic, prefix, strlen(prefix)) == 0)
                names[n++] = md->topics[i].topic;
        if (n > 0 && kafka_topics_delete(bootstrap, NULL, names, n, ADMIN_TIMEOUT_MS, err,
                                         sizeof(err)) != KAFKA_OK)
            fprintf(stderr, "test_kafka: cleanup: %s\n", err);
        rd_kafka_metadata_destroy(md);
    }
    if (rk != NULL)
        rd_kafka_destroy(rk);
}

__attribute__((constructor)) static void register_cleanup(void)
{
    snprintf(run_tag, sizeof(run_tag), "%08llx", random_u64() & 0xffffffffULL);
    suite_pid = getpid();
    atexit(delete_run_topics);
}

static void setup(void)
{
    brokers = test_require_env("HERALD_KAFKA_BROKERS");
    log_init("test_kafka", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
}

static void delete_topic(const char *name)
{
    char err[512];
    ck_assert_msg(kafka_topics_delete(brokers, NULL, &name, 1, ADMIN_TIMEOUT_MS, err,
                                      sizeof(err)) == KAFKA_OK,
                  "%s", err);
}

static void unique_name(const char *what, char *out, size_t outlen)
{
    snprintf(out, outlen, "herald-test-kafka-%s-%s-%llx", run_tag, what,
             random_u64() & 0xffffffffffULL);
}

/* Creates a topic and waits until metadata shows all its partitions. */
static void create_topic(char *name, size_t namelen, const char *what, int partitions)
{
    char err[512];
    kafka_topic_result res;
    unique_name(what, name, namelen);
    kafka_topic_spec spec = {.name = name, .partitions = partitions, .replication_factor = 1};
    ck_assert_msg(kafka_topics_create(brokers, NULL, &spec, 1, ADMIN_TIMEOUT_MS, &res, err,
                                      sizeof(err)) == KAFKA_OK,
                  "%s", err);
    ck_assert_msg(res.outcome == KAFKA_TOPIC_CREATED, "create %s: %s", name, res.msg);

    kafka_topic_desc d = {.partitions = -1};
    int64_t deadline = timeutil_monotonic_ms() + 15000;
    while (timeutil_monotonic_ms() < deadline) {
        if (kafka_topic_describe(brokers, NULL, name, 5000, &d, err, sizeof(err)) == KAFKA_OK &&
            d.partitions == partitions)
            return;
        usleep(200 * 1000);
    }
    ck_abort_msg("topic %s: %d partitions visible, want %d (%s)", name, d.partitions, partitions,
                 err);
}

/* A TCP port on 127.0.0.1 that nothing listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* ---------------------------------------------------------------- topics */

START_TEST(test_topic_create_reports_created_then_exists_and_describe_counts_partitions)
{
    setup();
    char name[96], err[512];
    unique_name("admin", name, sizeof(name));
    kafka_topic_config cfg[] = {{"retention.ms", "3600000"}};
    kafka_topic_spec specs[] = {
        {.name = name, .partitions = 6, .replication_factor = 1, .configs = cfg, .nconfigs = 1},
        /* Invalid name: fails alone, the valid topic is still created. */
        {.name = "herald test invalid name!", .partitions = 1, .replication_factor = 1},
    };
    kafka_topic_result res[2];

    ck_assert_msg(kafka_topics_create(brokers, NULL, specs, 2, ADMIN_TIMEOUT_MS, res, err,
                                      sizeof(err)) == KAFKA_OK,
                  "%s", err);
    ck_assert_msg(res[0].outcome == KAFKA_TOPIC_CREATED, "%s", res[0].msg);
    ck_assert_int_eq(res[1].outcome, KAFKA_TOPIC_FAILED);
    ck_assert_str_ne(res[1].msg, "");

    ck_assert_int_eq(
        kafka_topics_create(brokers, NULL, specs, 1, ADMIN_TIMEOUT_MS, res, err, sizeof(err)),
        KAFKA_OK);
    ck_assert_int_eq(res[0].outcome, KAFKA_TOPIC_EXISTS);
    ck_assert_int_eq(res[0].err, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS);

    kafka_topic_desc d = {.partitions = -1};
    kafka_status st = KAFKA_ERR;
    for (int64_t deadline = timeutil_monotonic_ms() + 15000; timeutil_monotonic_ms() < deadline;
         usleep(200 * 1000)) {
        st = kafka_topic_describe(brokers, NULL, name, 5000, &d, err, sizeof(err));
        if (st == KAFKA_OK && d.partitions == 6)
            break;
    }
    ck_assert_msg(st == KAFKA_OK, "%s", err);
    ck_assert_int_eq(d.partitions, 6);
    ck_assert_int_eq(d.replication_factor, 1); /* the single-node broker holds one copy */

    delete_topic(name);
    /* Deletion completes asynchronously on the broker: wait for it, bounded. */
    for (int64_t deadline = timeutil_monotonic_ms() + 15000; timeutil_monotonic_ms() < deadline;
         usleep(200 * 1000)) {
        st = kafka_topic_describe(brokers, NULL, name, 5000, &d, err, sizeof(err));
        if (st == KAFKA_ERR_NOT_FOUND)
            break;
    }
    ck_assert_int_eq(st, KAFKA_ERR_NOT_FOUND);
}
END_TEST

/* ------------------------------------------------------------- round trip */

#define NKEYS 20
#define NMSGS 300

typedef struct sent {
    int key;
    int seq;
    bool reported;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
    bool consumed;
} sent;

static void record_dr(void *opaque, const kafka_delivery_report *dr)
{
    sent *s = opaque;
    s->reported = true;
    s->err = dr->err;
    s->partition = dr->partition;
    s->offset = dr->offset;
}

static void count_assigned(void *ctx, bool assigned, const rd_kafka_topic_partition_list_t *parts,
                           bool lost)
{
    (void)lost;
    *(int *)ctx += assigned ? parts->cnt : -parts->cnt;
}

static void produce_one(kafka_producer *p, const char *topic, sent *s)
{
    char key[32], value[64], err[512];
    snprintf(key, sizeof(key), "user-%02d", s->key);
    snprintf(value, sizeof(value), "{\"user\":\"%s\",\"seq\":%d}", key, s->seq);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(3);
    ck_assert_int_eq(kafka_header_add_str(hdrs, "herald.test.key", key), 0);
    ck_assert_int_eq(kafka_header_add_int64(hdrs, "herald.test.seq", s->seq), 0);
    ck_assert_int_eq(kafka_header_add_str(hdrs, "herald.test.text", "h\xc3\xa9llo w\xc3\xb6rld"),
                     0);
    kafka_status st;
    int tries = 0;
    while ((st = kafka_produce(p, topic, key, strlen(key), value, strlen(value), hdrs, s, err,
                               sizeof(err))) == KAFKA_QUEUE_FULL &&
           tries++ < 100)
        kafka_producer_poll(p, 100);
    if (st != KAFKA_OK)
        rd_kafka_headers_destroy(hdrs);
    ck_assert_msg(st == KAFKA_OK, "%s", err);
}

static sent *find_sent(sent *all, size_t n, int key, int seq)
{
    for (size_t i = 0; i < n; i++)
        if (all[i].key == key && all[i].seq == seq)
            return &all[i];
    return NULL;
}

/*
 * Polls until the rebalance callback counted want partitions.  Returns the
 * first data message that came meanwhile (the poll that assigns may also
 * fetch), NULL when none did; later ones are dropped.
 */
static rd_kafka_message_t *wait_assigned(kafka_consumer *c, const int *assigned, int want)
{
    rd_kafka_message_t *first = NULL;
    for (int64_t deadline = timeutil_monotonic_ms() + 30000;
         *assigned < want && timeutil_monotonic_ms() < deadline;) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 100);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR && first == NULL)
            first = m;
        else if (m != NULL)
            rd_kafka_message_destroy(m);
    }
    ck_assert_int_eq(*assigned, want);
    return first;
}

static void assert_nothing_before_assignment(rd_kafka_message_t *m)
{
    ck_assert_msg(m == NULL, "unexpected message at offset %" PRId64,
                  m != NULL ? m->offset : (int64_t)-1);
}

START_TEST(test_keyed_messages_round_trip_on_reported_partitions_in_key_order_with_headers)
{
    setup();
    char topic[96], group[96], err[512];
    create_topic(topic, sizeof(topic), "roundtrip", 6);
    unique_name("group", group, sizeof(group));

    static sent all[NMSGS + 1];
    for (int i = 0; i < NMSGS; i++)
        all[i] = (sent){.key = i % NKEYS, .seq = i / NKEYS, .partition = -1};

    kafka_producer *p = kafka_producer_new(brokers, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    kafka_producer_set_delivery_cb(p, record_dr);
    for (int i = 0; i < NMSGS; i++)
        produce_one(p, topic, &all[i]);
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);

    int32_t key_partition[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        key_partition[k] = -1;
    for (int i = 0; i < NMSGS; i++) {
        ck_assert_msg(all[i].reported, "message %d has no delivery report", i);
        ck_assert_msg(all[i].err == RD_KAFKA_RESP_ERR_NO_ERROR, "message %d: %s", i,
                      rd_kafka_err2str(all[i].err));
        ck_assert_int_ge(all[i].partition, 0);
        ck_assert_int_lt(all[i].partition, 6);
        ck_assert_int_ge(all[i].offset, 0);
        if (key_partition[all[i].key] < 0)
            key_partition[all[i].key] = all[i].partition;
        ck_assert_int_eq(all[i].partition, key_partition[all[i].key]);
    }

    /* A fresh group reads everything, from the beginning. */
    int assigned = 0;
    kafka_consumer *c = kafka_consumer_new(brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    kafka_consumer_set_rebalance_cb(c, count_assigned, &assigned);
    const char *topics[] = {topic};
    ck_assert_int_eq(kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), KAFKA_OK);

    int last_seq[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        last_seq[k] = -1;
    int received = 0;
    for (int64_t deadline = timeutil_monotonic_ms() + 60000;
         received < NMSGS && timeutil_monotonic_ms() < deadline;) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ck_assert_msg(kafka_classify(m->err, NULL) != KAFKA_ERRCLASS_FATAL, "%s",
                          rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        char key[32], hkey[32], text[64];
        int64_t seq = -1;
        ck_assert_uint_lt(m->key_len, sizeof(key));
        memcpy(key, m->key, m->key_len);
        key[m->key_len] = '\0';
        int k = atoi(key + strlen("user-"));
        ck_assert_int_eq(kafka_header_get(m, "herald.test.key", hkey, sizeof(hkey)),
                         (int)strlen(key));
        ck_assert_str_eq(hkey, key);
        ck_assert_int_eq(kafka_header_get_int64(m, "herald.test.seq", &seq), 0);
        ck_assert_int_eq(kafka_header_get(m, "herald.test.text", text, sizeof(text)), 13);
        ck_assert_str_eq(text, "h\xc3\xa9llo w\xc3\xb6rld");
        ck_assert_int_eq(kafka_header_get(m, "herald.test.missing", text, sizeof(text)), -1);
        ck_assert_int_eq(kafka_header_get(m, "herald.test.text", text, 4), -2);

        sent *s = find_sent(all, NMSGS, k, (int)seq);
        ck_assert_msg(s != NULL, "unexpected message %s seq %" PRId64, key, seq);
        ck_assert_msg(!s->consumed, "duplicate message %s seq %" PRId64, key, seq);
        s->consumed = true;
        ck_assert_int_eq(m->partition, s->partition);
        ck_assert_int_eq(m->offset, s->offset);
        ck_assert_msg(seq == last_seq[k] + 1, "%s: seq %" PRId64 " after %d", key, seq,
                      last_seq[k]);
        last_seq[k] = (int)seq;

        char value[64];
        snprintf(value, sizeof(value), "{\"user\":\"%s\",\"seq\":%d}", key, (int)seq);
        ck_assert_uint_eq(m->len, strlen(value));
        ck_assert_int_eq(memcmp(m->payload, value, m->len), 0);

        ck_assert_int_eq(kafka_consumer_store_offset(c, m, err, sizeof(err)), KAFKA_OK);
        rd_kafka_message_destroy(m);
        received++;
    }
    ck_assert_int_eq(received, NMSGS);
    ck_assert_int_eq(kafka_consumer_commit(c, false, err, sizeof(err)), KAFKA_OK);
    ck_assert_msg(kafka_consumer_close(c, err, sizeof(err)) == KAFKA_OK, "%s", err);
    kafka_consumer_destroy(c);

    /* The next member of the group starts after what was committed. */
    assigned = 0;
    c = kafka_consumer_new(brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    kafka_consumer_set_rebalance_cb(c, count_assigned, &assigned);
    ck_assert_int_eq(kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), KAFKA_OK);
    assert_nothing_before_assignment(wait_assigned(c, &assigned, 6));
    for (int64_t until = timeutil_monotonic_ms() + 3000; timeutil_monotonic_ms() < until;) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        ck_assert_msg(m->err != RD_KAFKA_RESP_ERR_NO_ERROR,
                      "an already committed message came back at offset %" PRId64, m->offset);
        rd_kafka_message_destroy(m);
    }
    /* It does consume: a new message arrives, and only that one. */
    all[NMSGS] = (sent){.key = 7, .seq = NMSGS / NKEYS, .partition = -1};
    produce_one(p, topic, &all[NMSGS]);
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);
    ck_assert_int_eq(all[NMSGS].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_message_t *m = NULL;
    for (int64_t deadline = timeutil_monotonic_ms() + 20000;
         m == NULL && timeutil_monotonic_ms() < deadline;) {
        m = kafka_consumer_poll(c, 200);
        if (m != NULL && m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_message_destroy(m);
            m = NULL;
        }
    }
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(m->partition, all[NMSGS].partition);
    ck_assert_int_eq(m->offset, all[NMSGS].offset);
    ck_assert_int_eq(m->partition, key_partition[7]);
    rd_kafka_message_destroy(m);
    ck_assert_int_eq(kafka_consumer_close(c, err, sizeof(err)), KAFKA_OK);
    kafka_consumer_destroy(c);
    kafka_producer_destroy(p);

    kafka_topic_desc d;
    ck_assert_int_eq(kafka_topic_describe(brokers, NULL, topic, 10000, &d, err, sizeof(err)),
                     KAFKA_OK);
    ck_assert_int_eq(d.partitions, 6);
    delete_topic(topic);
}
END_TEST

/* ---------------------------------------------------------- transactions */

static rd_kafka_message_t *poll_data(kafka_consumer *c, int timeout_ms)
{
    for (int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
         timeutil_monotonic_ms() < deadline;) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return m;
        rd_kafka_message_destroy(m);
    }
    return NULL;
}

static void produce_value(kafka_producer *p, const char *topic, const char *value)
{
    char err[512];
    ck_assert_msg(kafka_produce(p, topic, "k", 1, value, strlen(value), NULL, NULL, err,
                                sizeof(err)) == KAFKA_OK,
                  "%s", err);
}

START_TEST(test_transaction_commit_is_visible_and_abort_is_not)
{
    setup();
    char topic[96], txid[96], group[96], err[512];
    create_topic(topic, sizeof(topic), "txn", 1);
    unique_name("txid", txid, sizeof(txid));
    unique_name("txgroup", group, sizeof(group));

    kafka_producer *plain = kafka_producer_new(brokers, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(plain != NULL, "%s", err);
    ck_assert_int_eq(kafka_txn_begin(plain, err, sizeof(err)), KAFKA_ERRCLASS_PERMANENT);
    kafka_producer_destroy(plain);

    kafka_producer *p = kafka_producer_new(brokers, NULL, NULL, txid, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    kafka_err_class ec = KAFKA_ERRCLASS_RETRIABLE;
    for (int tries = 0; ec == KAFKA_ERRCLASS_RETRIABLE && tries < 3; tries++)
        ec = kafka_txn_init(p, 20000, err, sizeof(err));
    ck_assert_msg(ec == KAFKA_ERRCLASS_NONE, "%s", err);

    ck_assert_int_eq(kafka_txn_begin(p, err, sizeof(err)), KAFKA_ERRCLASS_NONE);
    produce_value(p, topic, "committed-1");
    ck_assert_msg(kafka_txn_commit(p, 20000, err, sizeof(err)) == KAFKA_ERRCLASS_NONE, "%s", err);
    ck_assert_int_eq(kafka_txn_begin(p, err, sizeof(err)), KAFKA_ERRCLASS_NONE);
    produce_value(p, topic, "aborted");
    ck_assert_int_eq(kafka_producer_flush(p, 10000), 0); /* it reached the log... */
    ck_assert_msg(kafka_txn_abort(p, 20000, err, sizeof(err)) == KAFKA_ERRCLASS_NONE, "%s", err);
    ck_assert_int_eq(kafka_txn_begin(p, err, sizeof(err)), KAFKA_ERRCLASS_NONE);
    produce_value(p, topic, "committed-2");
    ck_assert_msg(kafka_txn_commit(p, 20000, err, sizeof(err)) == KAFKA_ERRCLASS_NONE, "%s", err);

    /* ...but a read_committed consumer (librdkafka's default) never sees it. */
    kafka_consumer *c = kafka_consumer_new(brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    const char *topics[] = {topic};
    ck_assert_int_eq(kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), KAFKA_OK);
    const char *want[] = {"committed-1", "committed-2"};
    for (size_t i = 0; i < 2; i++) {
        rd_kafka_message_t *m = poll_data(c, 30000);
        ck_assert_msg(m != NULL, "no message %zu", i);
        ck_assert_uint_eq(m->len, strlen(want[i]));
        ck_assert_int_eq(memcmp(m->payload, want[i], m->len), 0);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_message_t *extra = poll_data(c, 2000);
    ck_assert_msg(extra == NULL, "unexpected message after the committed ones");

    /*
     * Consume-transform-produce: the output and the input offsets commit
     * together, so the group's next member starts right after the input.
     */
    ck_assert_int_eq(kafka_txn_begin(p, err, sizeof(err)), KAFKA_ERRCLASS_NONE);
    produce_value(p, topic, "derived");
    ck_assert_msg(kafka_txn_send_offsets(p, c, NULL, 20000, err, sizeof(err)) ==
                      KAFKA_ERRCLASS_NONE,
                  "%s", err);
    ck_assert_msg(kafka_txn_commit(p, 20000, err, sizeof(err)) == KAFKA_ERRCLASS_NONE, "%s", err);
    ck_assert_int_eq(kafka_consumer_close(c, err, sizeof(err)), KAFKA_OK);
    kafka_consumer_destroy(c);

    int assigned = 0;
    c = kafka_consumer_new(brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    kafka_consumer_set_rebalance_cb(c, count_assigned, &assigned);
    ck_assert_int_eq(kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), KAFKA_OK);
    rd_kafka_message_t *m = wait_assigned(c, &assigned, 1);
    if (m == NULL)
        m = poll_data(c, 20000);
    ck_assert_msg(m != NULL, "the derived message did not arrive");
    ck_assert_uint_eq(m->len, strlen("derived"));
    ck_assert_int_eq(memcmp(m->payload, "derived", m->len), 0);
    rd_kafka_message_destroy(m);
    ck_assert_int_eq(kafka_consumer_close(c, err, sizeof(err)), KAFKA_OK);
    kafka_consumer_destroy(c);
    kafka_producer_destroy(p);
    delete_topic(topic);
}
END_TEST

/* ------------------------------------------------------------ pause/resume */

START_TEST(test_consumer_paused_before_assignment_stays_paused_until_resumed)
{
    setup();
    char topic[96], group[96], err[512];
    create_topic(topic, sizeof(topic), "pause", 2);
    unique_name("pgroup", group, sizeof(group));

    kafka_producer *p = kafka_producer_new(brokers, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    for (int i = 0; i < 5; i++)
        produce_value(p, topic, "paused");
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);

    int assigned = 0;
    kafka_consumer *c = kafka_consumer_new(brokers, group, NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    kafka_consumer_set_rebalance_cb(c, count_assigned, &assigned);
    /* Back-pressure applied before the group assigns anything. */
    ck_assert_int_eq(kafka_consumer_pause(c, err, sizeof(err)), KAFKA_OK);
    ck_assert(kafka_consumer_paused(c));
    const char *topics[] = {topic};
    ck_assert_int_eq(kafka_consumer_subscribe(c, topics, 1, err, sizeof(err)), KAFKA_OK);
    assert_nothing_before_assignment(wait_assigned(c, &assigned, 2));
    rd_kafka_message_t *m = poll_data(c, 3000);
    ck_assert_msg(m == NULL, "a paused consumer received a message");

    ck_assert_int_eq(kafka_consumer_resume(c, err, sizeof(err)), KAFKA_OK);
    ck_assert(!kafka_consumer_paused(c));
    for (int i = 0; i < 5; i++) {
        m = poll_data(c, 20000);
        ck_assert_msg(m != NULL, "message %d did not arrive after resume", i);
        rd_kafka_message_destroy(m);
    }
    kafka_consumer_destroy(c); /* closes */
    kafka_producer_destroy(p);
    delete_topic(topic);
}
END_TEST

/* ---------------------------------------------------------------- failures */

typedef struct outcome {
    int reports;
    rd_kafka_resp_err_t err;
    kafka_err_class cls;
} outcome;

static void record_outcome(void *opaque, const kafka_delivery_report *dr)
{
    outcome *o = opaque;
    o->reports++;
    o->err = dr->err;
    o->cls = dr->errclass;
}

START_TEST(test_unreachable_broker_fails_delivery_as_retriable_within_the_timeout)
{
    log_init("test_kafka", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    char bad[64], err[512];
    snprintf(bad, sizeof(bad), "127.0.0.1:%d", closed_port());
    config_kv kv[] = {{"message.timeout.ms", "1500"}};
    config_kafka_props props = {kv, 1};
    kafka_producer *p = kafka_producer_new(bad, NULL, &props, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    kafka_producer_set_delivery_cb(p, record_outcome);

    outcome o = {0};
    int64_t start = timeutil_monotonic_ms();
    ck_assert_int_eq(
        kafka_produce(p, "herald-test-nowhere", "k", 1, "v", 1, NULL, &o, err, sizeof(err)),
        KAFKA_OK);
    while (o.reports == 0 && timeutil_monotonic_ms() - start < 15000)
        kafka_producer_poll(p, 100);
    int64_t took = timeutil_monotonic_ms() - start;

    ck_assert_int_eq(o.reports, 1);
    ck_assert_int_ne(o.err, RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_msg(o.cls == KAFKA_ERRCLASS_RETRIABLE, "%s is %s", rd_kafka_err2name(o.err),
                  kafka_err_class_name(o.cls));
    ck_assert_msg(took < 8000, "the failure took %lld ms", (long long)took);
    ck_assert_int_eq(kafka_producer_outq_len(p), 0);
    kafka_producer_destroy(p);
}
END_TEST

START_TEST(test_full_queue_asks_for_backpressure_and_destroy_reports_the_purged)
{
    log_init("test_kafka", LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    char bad[64], err[512];
    snprintf(bad, sizeof(bad), "127.0.0.1:%d", closed_port());
    config_kv kv[] = {{"queue.buffering.max.messages", "5"}};
    config_kafka_props props = {kv, 1};
    kafka_producer *p = kafka_producer_new(bad, NULL, &props, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    kafka_producer_set_delivery_cb(p, record_outcome);

    outcome o = {0};
    int queued = 0;
    kafka_status st = KAFKA_OK;
    while (queued < 10 && (st = kafka_produce(p, "herald-test-nowhere", "k", 1, "v", 1, NULL, &o,
                                              err, sizeof(err))) == KAFKA_OK)
        queued++;
    ck_assert_int_eq(st, KAFKA_QUEUE_FULL);
    ck_assert_int_eq(queued, 5);
    /* A caller that must not block answers 503; nothing was lost silently. */
    ck_assert_int_eq(kafka_producer_flush(p, 0), 5);
    kafka_producer_destroy(p);
    ck_assert_int_eq(o.reports, 5);
    ck_assert(o.err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
              o.err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT);
}
END_TEST

START_TEST(test_fatal_producer_refuses_messages_and_leaves_headers_to_the_caller)
{
    log_init("test_kafka", LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    char bad[64], err[512];
    snprintf(bad, sizeof(bad), "127.0.0.1:%d", closed_port());
    kafka_producer *p = kafka_producer_new(bad, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert(!kafka_producer_fatal(p, err, sizeof(err)));
    ck_assert_int_eq(rd_kafka_test_fatal_error(kafka_producer_rk(p),
                                               RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                               "simulated sequence gap"),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(1);
    ck_assert_int_eq(kafka_header_add_str(hdrs, "h", "v"), 0);
    ck_assert_int_eq(
        kafka_produce(p, "herald-test-nowhere", "k", 1, "v", 1, hdrs, NULL, err, sizeof(err)),
        KAFKA_ERR_FATAL);
    ck_assert_ptr_nonnull(strstr(err, "simulated sequence gap"));
    ck_assert(kafka_producer_fatal(p, err, sizeof(err)));
    rd_kafka_headers_destroy(hdrs); /* still ours: the leak checker would tell */
    kafka_producer_destroy(p);
}
END_TEST

START_TEST(test_defaults_apply_and_passthrough_properties_win)
{
    char err[512], val[64];
    size_t len;
    config_kv kv[] = {{"linger.ms", "50"}, {"client.id", "herald-test"}};
    config_kafka_props props = {kv, 2};
    kafka_producer *p = kafka_producer_new("127.0.0.1:1", NULL, &props, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    const rd_kafka_conf_t *conf = rd_kafka_conf(kafka_producer_rk(p));
    struct {
        const char *key, *want;
    } checks[] = {
        {"linger.ms", "50"},
        {"client.id", "herald-test"},
        {"acks", "-1"}, /* all in-sync replicas: librdkafka spells "all" -1 */
        {"enable.idempotence", "true"},
        {"compression.type", "lz4"},
        {"message.timeout.ms", "30000"},
        {"partitioner", "murmur2_random"},
    };
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        len = sizeof(val);
        ck_assert_int_eq(rd_kafka_conf_get(conf, checks[i].key, val, &len), RD_KAFKA_CONF_OK);
        ck_assert_msg(strcmp(val, checks[i].want) == 0, "%s = %s, want %s", checks[i].key, val,
                      checks[i].want);
    }
    kafka_producer_destroy(p);

    kafka_consumer *c = kafka_consumer_new("127.0.0.1:1", "g", NULL, NULL, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s", err);
    conf = rd_kafka_conf(kafka_consumer_rk(c));
    len = sizeof(val);
    ck_assert_int_eq(rd_kafka_conf_get(conf, "enable.auto.commit", val, &len), RD_KAFKA_CONF_OK);
    ck_assert_str_eq(val, "false");
    len = sizeof(val);
    ck_assert_int_eq(rd_kafka_conf_get(conf, "partition.assignment.strategy", val, &len),
                     RD_KAFKA_CONF_OK);
    ck_assert_str_eq(val, "cooperative-sticky");
    kafka_consumer_destroy(c);

    /* A bad property is refused at construction, naming the key. */
    config_kv bad[] = {{"linger.ms", "soon"}};
    config_kafka_props badprops = {bad, 1};
    ck_assert_ptr_null(kafka_producer_new("127.0.0.1:1", NULL, &badprops, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "linger.ms"));
    config_kv unknown[] = {{"no.such.property", "x"}};
    config_kafka_props unknownprops = {unknown, 1};
    ck_assert_ptr_null(
        kafka_consumer_new("127.0.0.1:1", "g", NULL, &unknownprops, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "no.such.property"));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_topic_create_reports_created_then_exists_and_describe_counts_partitions),
    TEST_ENTRY(test_keyed_messages_round_trip_on_reported_partitions_in_key_order_with_headers),
    TEST_ENTRY(test_transaction_commit_is_visible_and_abort_is_not),
    TEST_ENTRY(test_consumer_paused_before_assignment_stays_paused_until_resumed),
    TEST_ENTRY(test_unreachable_broker_fails_delivery_as_retriable_within_the_timeout),
    TEST_ENTRY(test_full_queue_asks_for_backpressure_and_destroy_reports_the_purged),
    TEST_ENTRY(test_fatal_producer_refuses_messages_and_leaves_headers_to_the_caller),
    TEST_ENTRY(test_defaults_apply_and_passthrough_properties_win),
};

TEST_MAIN_TIMEOUT("kafka", cases, 150)

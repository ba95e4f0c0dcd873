/*
 * loader: the load side of the dispatcher benchmark (bench/dispatcher/run).
 *
 *   loader produce BROKERS TOPIC N FIRST_USER USERS TYPE
 *       N events for users u<FIRST_USER + i % USERS> (7 digits), as fast as
 *       the broker takes them; prints the rate.
 *   loader broadcast BROKERS TOPIC NAME TYPE
 *       one topic:<NAME> broadcast event.
 *   loader passthrough BROKERS GROUP SRC DST N BATCH
 *       the baseline: consume N records of SRC and produce each, unchanged,
 *       to DST in transactions of BATCH records with the consumed offsets
 *       (what the dispatcher does, minus the dispatching); prints the rate.
 *   loader delete-topics BROKERS PREFIX
 *       deletes the benchmark's topics.
 *
 * Plain librdkafka so that it measures the broker, not Herald's wrappers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random version-4 UUID (not cryptographic: benchmark ids only). */
static void uuid4(char out[37])
{
    uint64_t a = next_rand(), b = next_rand();
    a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
    b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
    snprintf(out, 37, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64,
             a >> 32, (a >> 16) & 0xFFFF, a & 0xFFFF, b >> 48, b & (uint64_t)0xFFFFFFFFFFFF);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "loader: %s: %s\n", what, why);
    exit(1);
}

static rd_kafka_t *producer(const char *brokers, const char *txn_id)
{
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", brokers},
                           {"linger.ms", "20"},
                           {"compression.type", "lz4"},
                           {"enable.idempotence", "true"},
                           {"acks", "all"},
                           {"partitioner", "murmur2_random"},
                           {"queue.buffering.max.messages", "500000"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            die(kv[i][0], err);
    if (txn_id != NULL &&
        rd_kafka_conf_set(c, "transactional.id", txn_id, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("transactional.id", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (rk == NULL)
        die("producer", err);
    return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key, size_t klen,
                    const void *val, size_t vlen)
{
    for (int tries = 0; tries < 100000; tries++) {
        rd_kafka_resp_err_t e =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                              RD_KAFKA_V_VALUE((void *)val, vlen),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            die("produce", rd_kafka_err2str(e));
        rd_kafka_poll(rk, 5);
    }
    die("produce", "queue stayed full");
}

static int cmd_produce(char **argv)
{
    const char *brokers = argv[0], *topic = argv[1], *type = argv[5];
    long n = atol(argv[2]), first = atol(argv[3]), users = atol(argv[4]);
    rng ^= (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
    rd_kafka_t *rk = producer(brokers, NULL);
    double t0 = now_s();
    char key[32], id[37], val[512];
    for (long i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof key, "u%07ld", first + i % users);
        uuid4(id);
        int vl = snprintf(val, sizeof val,
                          "{\"event_id\":\"%s\",\"type\":\"%s\",\"user_id\":\"%s\","
                          "\"data\":{\"order\":{\"id\":\"A-%ld\",\"total\":19.99}},"
                          "\"priority\":\"normal\",\"created_at\":\"2026-11-27T12:00:00.000Z\"}",
                          id, type, key, i);
        produce(rk, topic, key, (size_t)kl, val, (size_t)vl);
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "timed out");
    double t = now_s() - t0;
    printf("produced %ld events in %.2f s (%.0f/s)\n", n, t, (double)n / t);
    rd_kafka_destroy(rk);
    return 0;
}

static int cmd_broadcast(char **argv)
{
    const char *brokers = argv[0], *topic = argv[1], *name = argv[2], *type = argv[3];
    rng ^= (uint64_t)getpid() << 20 ^ (uint64_t)time(NULL);
    rd_kafka_t *rk = producer(brokers, NULL);
    char key[160], id[37], val[512];
    int kl = snprintf(key, sizeof key, "topic:%s", name);
    uuid4(id);
    int vl = snprintf(val, sizeof val,
                      "{\"event_id\":\"%s\",\"type\":\"%s\",\"topic\":\"%s\",\"data\":{},"
                      "\"priority\":\"normal\",\"created_at\":\"2026-11-27T12:00:00.000Z\"}",
                      id, type, name);
    produce(rk, topic, key, (size_t)kl, val, (size_t)vl);
    if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("flush", "timed out");
    printf("%s\n", id);
    rd_kafka_destroy(rk);
    return 0;
}

static void txn_check(rd_kafka_error_t *e, const char *what)
{
    if (e != NULL)
        die(what, rd_kafka_error_string(e));
}

static int cmd_passthrough(char **argv)
{
    const char *brokers = argv[0], *group = argv[1], *src = argv[2], *dst = argv[3];
    long n = atol(argv[4]), batch = atol(argv[5]);
    char err[512], tid[128];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", brokers},
                           {"group.id", group},
                           {"enable.auto.commit", "false"},
                           {"auto.offset.reset", "earliest"},
                           {"isolation.level", "read_committed"},
                           {"partition.assignment.strategy", "cooperative-sticky"}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (rd_kafka_conf_set(c, kv[i][0], kv[i][1], err, sizeof err) != RD_KAFKA_CONF_OK)
            die(kv[i][0], err);
    rd_kafka_t *cons = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (cons == NULL)
        die("consumer", err);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, src, RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(cons, sub) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("subscribe", src);
    rd_kafka_topic_partition_list_destroy(sub);
    snprintf(tid, sizeof tid, "%s-%d", group, (int)getpid());
    rd_kafka_t *prod = producer(brokers, tid);
    txn_check(rd_kafka_init_transactions(prod, 30000), "init");

    long done = 0;
    double t0 = 0, deadline = now_s() + 600;
    while (done < n && now_s() < deadline) {
        rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new(8);
        long in_batch = 0;
        double bstart = 0;
        txn_check(rd_kafka_begin_transaction(prod), "begin");
        while (in_batch < batch && done + in_batch < n) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 50);
            if (m == NULL) {
                if (bstart != 0 && now_s() - bstart > 0.05)
                    break;
                continue;
            }
            if (m->err) {
                rd_kafka_message_destroy(m);
                continue;
            }
            if (t0 == 0)
                t0 = now_s();
            if (bstart == 0)
                bstart = now_s();
            produce(prod, dst, m->key, m->key_len, m->payload, m->len);
            const char *t = rd_kafka_topic_name(m->rkt);
            rd_kafka_topic_partition_t *p =
                rd_kafka_topic_partition_list_find(offs, t, m->partition);
            if (p == NULL)
                p = rd_kafka_topic_partition_list_add(offs, t, m->partition);
            p->offset = m->offset + 1;
            rd_kafka_message_destroy(m);
            in_batch++;
        }
        if (in_batch > 0) {
            rd_kafka_consumer_group_metadata_t *md = rd_kafka_consumer_group_metadata(cons);
            txn_check(rd_kafka_send_offsets_to_transaction(prod, offs, md, 30000), "offsets");
            rd_kafka_consumer_group_metadata_destroy(md);
            txn_check(rd_kafka_commit_transaction(prod, 30000), "commit");
        } else {
            txn_check(rd_kafka_abort_transaction(prod, 30000), "abort");
        }
        rd_kafka_topic_partition_list_destroy(offs);
        done += in_batch;
    }
    double t = now_s() - t0;
    printf("passed through %ld records in %.2f s (%.0f/s)\n", done, t, (double)done / t);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return done == n ? 0 : 1;
}

/* Deletes every topic whose name starts with prefix (the benchmark's own). */
static int cmd_delete(char **argv)
{
    const char *brokers = argv[0], *prefix = argv[1];
    char err[512];
    if (strlen(prefix) < 4)
        die("delete", "refusing a prefix shorter than 4 characters");
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK)
        die("bootstrap.servers", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
    if (rk == NULL)
        die("admin", err);
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 1, NULL, &md, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("metadata", "failed");
    rd_kafka_DeleteTopic_t *del[256];
    size_t n = 0;
    for (int i = 0; i < md->topic_cnt && n < 256; i++)
        if (strncmp(md->topics[i].topic, prefix, strlen(prefix)) == 0)
            del[n++] = rd_kafka_DeleteTopic_new(md->topics[i].topic);
    rd_kafka_metadata_destroy(md);
    if (n > 0) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_DeleteTopics(rk, del, n, NULL, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 60000);
        if (ev != NULL)
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_DeleteTopic_destroy_array(del, n);
    }
    printf("deleted %zu topic(s) %s*\n", n, prefix);
    rd_kafka_destroy(rk);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "delete-topics") == 0)
        return cmd_delete(argv + 2);
    if (argc >= 8 && strcmp(argv[1], "produce") == 0)
        return cmd_produce(argv + 2);
    if (argc >= 6 && strcmp(argv[1], "broadcast") == 0)
        return cmd_broadcast(argv + 2);
    if (argc >= 8 && strcmp(argv[1], "passthrough") == 0)
        return cmd_passthrough(argv + 2);
    fprintf(stderr, "usage: loader produce BROKERS TOPIC N FIRST_USER USERS TYPE\n"
                    "       loader broadcast BROKERS TOPIC NAME TYPE\n"
                    "       loader passthrough BROKERS GROUP SRC DST N BATCH\n"
                    "       loader delete-topics BROKERS PREFIX\n");
    return 2;
}

/*
 * herald-bench-produce: the baseline for bench/gateway/run — how fast this
 * machine's librdkafka and broker take the gateway's records when nothing
 * stands in between (no HTTP, no JSON validation).
 *
 *   herald-bench-produce --brokers B --topic T [--count N] [--linger-ms L]
 *       produces N event-shaped records (the size the gateway writes),
 *       keyed over 10,000 users, with Herald's producer settings, waits for
 *       every acknowledgement and prints "raw_msgs_per_s=<rate>".
 *   herald-bench-produce --brokers B --create-topic T [--partitions P]
 *   herald-bench-produce --brokers B --delete-topic T
 */
#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "log.h"
#include "timeutil.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long acked, failed;

static void on_delivery(void *opaque, const kafka_delivery_report *dr)
{
    (void)opaque;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&acked, 1);
    else
        atomic_fetch_add(&failed, 1);
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

static int produce(const char *brokers, const char *topic, long count, const char *linger)
{
    char err[512];
    config_kv kv[] = {{(char *)"linger.ms", (char *)linger},
                      {(char *)"queue.buffering.max.messages", (char *)"100000"}};
    config_kafka_props props = {kv, 2};
    kafka_producer *p = kafka_producer_new(brokers, NULL, &props, NULL, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "herald-bench-produce: %s\n", err);
        return 1;
    }
    kafka_producer_set_delivery_cb(p, on_delivery);
    int64_t t0 = timeutil_monotonic_ms();
    for (long i = 0; i < count; i++) {
        char id[ID_UUID_SIZE], ts[TIMEUTIL_RFC3339_SIZE], key[16], value[512];
        if (id_uuid_v4(id) != 0)
            return 1;
        timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts);
        snprintf(key, sizeof key, "u%ld", i % 10000);
        int n = snprintf(value, sizeof value,
                         "{\"event_id\":\"%s\",\"type\":\"bench.publish\",\"user_id\":\"%s\","
                         "\"data\":{\"n\":%ld,\"text\":\"hello from the benchmark\"},"
                         "\"priority\":\"normal\",\"created_at\":\"%s\"}",
                         id, key, i, ts);
        for (;;) {
            kafka_status st = kafka_produce(p, topic, key, strlen(key), value, (size_t)n, NULL,
                                            NULL, err, sizeof err);
            if (st == KAFKA_OK)
                break;
            if (st != KAFKA_QUEUE_FULL) {
                fprintf(stderr, "herald-bench-produce: %s\n", err);
                kafka_producer_destroy(p);
                return 1;
            }
            kafka_producer_poll(p, 10);
        }
        kafka_producer_poll(p, 0);
    }
    int left = kafka_producer_flush(p, 60000);
    int64_t ms = timeutil_monotonic_ms() - t0;
    kafka_producer_destroy(p);
    printf("raw_msgs=%ld\nraw_failed=%ld\nraw_unflushed=%d\nraw_seconds=%.3f\n"
           "raw_msgs_per_s=%.0f\n",
           atomic_load(&acked), atomic_load(&failed), left, (double)ms / 1000.0,
           (double)atomic_load(&acked) * 1000.0 / (double)(ms > 0 ? ms : 1));
    return left == 0 && atomic_load(&failed) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[512];
    log_init("herald-bench-produce", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    const char *brokers = arg(argc, argv, "--brokers", getenv("HERALD_KAFKA_BROKERS"));
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || brokers == NULL) {
        printf("usage: herald-bench-produce --brokers B (--topic T [--count N] [--linger-ms L] |"
               " --create-topic T [--partitions P] | --delete-topic T)\n");
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const char *create = arg(argc, argv, "--create-topic", NULL);
    const char *del = arg(argc, argv, "--delete-topic", NULL);
    if (create != NULL) {
        kafka_topic_spec spec = {.name = create,
                                 .partitions = atoi(arg(argc, argv, "--partitions", "12")),
                                 .replication_factor = 1};
        kafka_topic_result r;
        if (kafka_topics_create(brokers, NULL, &spec, 1, 30000, &r, err, sizeof err) != KAFKA_OK ||
            r.outcome == KAFKA_TOPIC_FAILED) {
            fprintf(stderr, "herald-bench-produce: cannot create %s: %s%s\n", create, err, r.msg);
            return 1;
        }
        return 0;
    }
    if (del != NULL) {
        const char *topics[] = {del};
        if (kafka_topics_delete(brokers, NULL, topics, 1, 30000, err, sizeof err) != KAFKA_OK) {
            fprintf(stderr, "herald-bench-produce: cannot delete %s: %s\n", del, err);
            return 1;
        }
        return 0;
    }
    const char *topic = arg(argc, argv, "--topic", NULL);
    if (topic == NULL) {
        fprintf(stderr, "herald-bench-produce: --topic is required\n");
        return 2;
    }
    return produce(brokers, topic, atol(arg(argc, argv, "--count", "300000")),
                   arg(argc, argv, "--linger-ms", "5"));
}

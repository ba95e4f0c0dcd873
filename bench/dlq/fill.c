/*
 * herald-bench-dlq-fill: fills a DLQ topic for bench/dlq/run.
 *
 *   herald-bench-dlq-fill --brokers B --topic T [--count N] [--origin O]
 *       produces N dead letters of email deliveries, keyed over 10,000
 *       users, with the pipeline's own dead-letter headers (dlq.h): nine
 *       in ten max_attempts, one in ten permanent_failure.  Waits for every
 *       acknowledgement and prints "filled=<n> fill_s=<seconds>".
 */
#include "dlq.h"
#include "kafka.h"
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
    atomic_fetch_add(dr->err == RD_KAFKA_RESP_ERR_NO_ERROR ? &acked : &failed, 1);
}

static const char *arg(int argc, char **argv, const char *name, const char *def)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return def;
}

int main(int argc, char **argv)
{
    const char *brokers = arg(argc, argv, "--brokers", NULL);
    const char *topic = arg(argc, argv, "--topic", NULL);
    const char *origin = arg(argc, argv, "--origin", "deliveries.email");
    long count = atol(arg(argc, argv, "--count", "100000"));
    char err[512];
    bool help = argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0);
    if (help || brokers == NULL || topic == NULL || count <= 0) {
        printf("usage: herald-bench-dlq-fill --brokers B --topic T [--count N] [--origin O]\n");
        return help ? 0 : 2;
    }
    log_init("herald-bench-dlq-fill", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    config_kv kv[] = {{(char *)"linger.ms", (char *)"20"},
                      {(char *)"queue.buffering.max.messages", (char *)"100000"}};
    config_kafka_props props = {kv, 2};
    kafka_producer *p = kafka_producer_new(brokers, NULL, &props, NULL, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "herald-bench-dlq-fill: %s\n", err);
        return 1;
    }
    kafka_producer_set_delivery_cb(p, on_delivery);
    int64_t t0 = timeutil_monotonic_ms();
    for (long i = 0; i < count; i++) {
        char key[16], value[512];
        snprintf(key, sizeof key, "u%ld", i % 10000);
        int n = snprintf(value, sizeof value,
                         "{\"idempotency_key\":\"bench-%ld\",\"event_id\":\"e-%ld\","
                         "\"user_id\":\"%s\",\"channel\":\"email\",\"attempt\":5,"
                         "\"address\":\"%s@example.com\"}",
                         i, i, key, key);
        bool permanent = i % 10 == 9;
        dlq_origin o = {origin, 0, i, timeutil_now_ms()};
        rd_kafka_headers_t *h =
            dlq_headers(NULL, permanent ? "permanent_failure" : "max_attempts",
                        permanent ? "550 mailbox unavailable" : "451 try again later",
                        "worker.email", &o, 5, timeutil_now_ms());
        if (h == NULL) {
            fprintf(stderr, "herald-bench-dlq-fill: out of memory\n");
            return 1;
        }
        for (;;) {
            kafka_status st = kafka_produce(p, topic, key, strlen(key), value, (size_t)n, h, NULL,
                                            err, sizeof err);
            if (st == KAFKA_OK)
                break;
            if (st != KAFKA_QUEUE_FULL) {
                fprintf(stderr, "herald-bench-dlq-fill: %s\n", err);
                rd_kafka_headers_destroy(h);
                kafka_producer_destroy(p);
                return 1;
            }
            kafka_producer_poll(p, 50);
        }
        kafka_producer_poll(p, 0);
    }
    int left = kafka_producer_flush(p, 60000);
    kafka_producer_destroy(p);
    double secs = (double)(timeutil_monotonic_ms() - t0) / 1000.0;
    printf("filled=%ld fill_s=%.1f\n", atomic_load(&acked), secs);
    return left == 0 && atomic_load(&failed) == 0 ? 0 : 1;
}

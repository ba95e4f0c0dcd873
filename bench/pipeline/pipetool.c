/*
 * herald-bench-pipeline: the C half of bench/pipeline/run.
 *
 *   herald-bench-pipeline publish URL KEY COUNT RATE FIRST_USER PHASE [CONNS]
 *       publishes COUNT events of type bench.pipeline through
 *       POST /v1/events/batch, event i to user u<FIRST_USER + i> (9 digits).
 *       RATE 0: as fast as the gateway takes batches of 500 on CONNS
 *       keep-alive connections (default 4).  RATE > 0: batches of RATE/200
 *       (at least 1) sent on a fixed schedule, RATE events/s.
 *       Each event carries its publish time (wall-clock ms) in data.t and the
 *       phase name in data.ph; the templates copy both into every message,
 *       so a provider's record says when its event was published.  When
 *       paced, the publish time is the scheduled send time, not the moment
 *       a free connection sent it, so a stalled gateway shows as latency
 *       (no coordinated omission).  Prints key=value lines.
 *   herald-bench-pipeline analyze PHASE SERIES_OUT FILE...
 *       reads provider record files (JSON lines), takes the records of PHASE
 *       and prints deliveries per channel, duplicates, the latency
 *       percentiles (received_at_ms - data.t), the span from the first
 *       publish to the last receipt and deliveries/s over it; writes
 *       "seconds_since_first_publish latency_ms channel" lines (at most
 *       ~20,000, evenly sampled) to SERIES_OUT for the plot.
 *   herald-bench-pipeline raw BROKERS TOPIC COUNT SIZE
 *       the Kafka baseline: creates TOPIC (6 partitions), produces COUNT
 *       records of SIZE bytes with Herald's producer settings and waits for
 *       every acknowledgement, then consumes them all back; prints the
 *       rates and deletes the topic.
 *   herald-bench-pipeline stages BROKERS PREFIX PHASE
 *       where the latency of PHASE accumulates: for the records of PHASE on
 *       the events topic (written by the gateway) and on deliveries.sms
 *       (written by the dispatcher), the record's timestamp (taken when its
 *       producer accepted it) minus the publish time in its payload, as
 *       p50/p99.  With the end-to-end figures (provider receipt) this
 *       splits the latency into intake, fan-out, and commit + delivery.
 *   herald-bench-pipeline avgsize BROKERS TOPIC
 *       prints the mean key + value size of the first records of TOPIC.
 *   herald-bench-pipeline delete-topics BROKERS PREFIX
 *       deletes every Herald topic under PREFIX (and PREFIX + "raw").
 *
 * All traffic goes to the addresses given (127.0.0.1 in the run script);
 * every loop is bounded.
 */
#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "log.h"
#include "timeutil.h"
#include "topics.h"

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 32
#define SAT_BATCH 500

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ publish */

typedef struct pub_ctx {
    const char *url, *key, *phase;
    long count, first_user, batch;
    double rate;
    int64_t start_wall, start_mono;
    atomic_long next_batch;
    atomic_long ok, failed, http_errors, late_ms_max;
    pthread_mutex_t lat_mu;
    int64_t *batch_ms; /* request duration per batch */
    long nbatches;
} pub_ctx;

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static size_t collect(char *p, size_t size, size_t nmemb, void *ud)
{
    sbuf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *t = realloc(b->s, cap);
        if (t == NULL)
            return 0;
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    return n;
}

static void *pub_thread(void *arg)
{
    pub_ctx *c = arg;
    CURL *h = curl_easy_init();
    char auth[300];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->key);
    struct curl_slist *hdr = curl_slist_append(NULL, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    size_t bodycap = (size_t)c->batch * 200 + 64;
    char *body = malloc(bodycap);
    sbuf ans = {0};
    if (h == NULL || body == NULL) {
        fprintf(stderr, "herald-bench-pipeline: out of memory\n");
        exit(1);
    }
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    for (long guard = 0; guard < c->nbatches + 1; guard++) {
        long b = atomic_fetch_add(&c->next_batch, 1);
        if (b >= c->nbatches)
            break;
        long first = b * c->batch;
        long n = c->count - first < c->batch ? c->count - first : c->batch;
        int64_t t_pub;
        if (c->rate > 0) {
            int64_t due = c->start_mono + (int64_t)((double)first * 1000.0 / c->rate);
            int64_t now = timeutil_monotonic_ms();
            if (due > now)
                sleep_ms(due - now);
            else if (now - due > atomic_load(&c->late_ms_max))
                atomic_store(&c->late_ms_max, now - due);
            t_pub = c->start_wall + (due - c->start_mono);
        } else {
            t_pub = timeutil_now_ms();
        }
        size_t len = (size_t)snprintf(body, bodycap, "{\"events\":[");
        for (long i = 0; i < n; i++)
            len += (size_t)snprintf(body + len, bodycap - len,
                                    "%s{\"type\":\"bench.pipeline\",\"user_id\":\"u%09ld\","
                                    "\"data\":{\"ph\":\"%s\",\"t\":\"%lld\",\"n\":%ld}}",
                                    i ? "," : "", c->first_user + first + i, c->phase,
                                    (long long)t_pub, first + i);
        len += (size_t)snprintf(body + len, bodycap - len, "]}");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
        ans.len = 0;
        int64_t t0 = timeutil_monotonic_ms();
        CURLcode rc = curl_easy_perform(h);
        int64_t t1 = timeutil_monotonic_ms();
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        c->batch_ms[b] = t1 - t0;
        long good = 0;
        if (rc == CURLE_OK && status == 202 && ans.s != NULL) {
            json_t *j = json_loads(ans.s, 0, NULL);
            json_t *res = json_is_array(j) ? j : json_object_get(j, "results");
            if (res == NULL)
                res = json_object_get(j, "events");
            size_t i;
            json_t *r;
            json_array_foreach(res, i, r) if (json_object_get(r, "event_id") &&
                                              !json_object_get(r, "error")) good++;
            json_decref(j);
        } else {
            atomic_fetch_add(&c->http_errors, 1);
            if (atomic_load(&c->http_errors) <= 3)
                fprintf(stderr, "herald-bench-pipeline: batch %ld: %s, status %ld: %.200s\n", b,
                        curl_easy_strerror(rc), status, ans.s ? ans.s : "");
        }
        atomic_fetch_add(&c->ok, good);
        atomic_fetch_add(&c->failed, n - good);
    }
    free(ans.s);
    free(body);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    return NULL;
}

static int cmd_publish(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: herald-bench-pipeline publish URL KEY COUNT RATE FIRST_USER PHASE"
                        " [CONNS]\n");
        return 2;
    }
    pub_ctx c = {.url = argv[0], .key = argv[1], .phase = argv[5]};
    c.count = atol(argv[2]);
    c.rate = atof(argv[3]);
    c.first_user = atol(argv[4]);
    int conns = argc > 6 ? atoi(argv[6]) : 4;
    if (c.count <= 0 || c.rate < 0 || conns < 1 || conns > MAX_CONNS) {
        fprintf(stderr, "herald-bench-pipeline: bad COUNT, RATE or CONNS\n");
        return 2;
    }
    c.batch = c.rate > 0 ? (long)(c.rate / 200) : SAT_BATCH;
    if (c.batch < 1)
        c.batch = 1;
    if (c.batch > SAT_BATCH)
        c.batch = SAT_BATCH;
    c.nbatches = (c.count + c.batch - 1) / c.batch;
    c.batch_ms = calloc((size_t)c.nbatches, sizeof *c.batch_ms);
    if (c.batch_ms == NULL)
        return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_t th[MAX_CONNS];
    c.start_wall = timeutil_now_ms();
    c.start_mono = timeutil_monotonic_ms();
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, pub_thread, &c);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    int64_t ms = timeutil_monotonic_ms() - c.start_mono;
    qsort(c.batch_ms, (size_t)c.nbatches, sizeof *c.batch_ms, cmp_i64);
    printf("published=%ld\nfailed=%ld\nhttp_errors=%ld\nbatch_size=%ld\nstart_ms=%lld\n"
           "seconds=%.3f\nevents_per_s=%.0f\nbatch_p50_ms=%lld\nbatch_p99_ms=%lld\n"
           "late_max_ms=%ld\n",
           atomic_load(&c.ok), atomic_load(&c.failed), atomic_load(&c.http_errors), c.batch,
           (long long)c.start_wall, (double)ms / 1000.0,
           (double)atomic_load(&c.ok) * 1000.0 / (double)(ms > 0 ? ms : 1),
           (long long)c.batch_ms[c.nbatches / 2], (long long)c.batch_ms[c.nbatches * 99 / 100],
           atomic_load(&c.late_ms_max));
    free(c.batch_ms);
    curl_global_cleanup();
    return atomic_load(&c.failed) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ analyze */

typedef struct sample {
    int64_t pub, recv;
    char ch; /* e, s, p */
} sample;

static int cmp_recv(const void *a, const void *b)
{
    const sample *x = a, *y = b;
    return x->recv < y->recv ? -1 : x->recv > y->recv;
}

static int cmd_analyze(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: herald-bench-pipeline analyze PHASE SERIES_OUT FILE...\n");
        return 2;
    }
    const char *phase = argv[0];
    char marker[64];
    snprintf(marker, sizeof marker, "hb|%s|", phase);
    size_t cap = 1 << 16, n = 0;
    sample *s = malloc(cap * sizeof *s);
    long dups = 0, per[3] = {0, 0, 0};
    size_t linecap = 1 << 16;
    char *line = malloc(linecap);
    if (s == NULL || line == NULL)
        return 1;
    for (int f = 2; f < argc; f++) {
        FILE *fp = fopen(argv[f], "r");
        if (fp == NULL)
            continue;
        ssize_t len;
        for (long guard = 0; guard < 100000000L && (len = getline(&line, &linecap, fp)) > 0;
             guard++) {
            const char *m = strstr(line, marker);
            const char *r = strstr(line, "\"received_at_ms\":");
            if (m == NULL || r == NULL)
                continue;
            if (strstr(line, "\"duplicate\":true")) {
                dups++;
                continue;
            }
            char ch =
                strstr(line, "\"protocol\":\"smtp\"") ? 'e'
                : strstr(line, "\"protocol\":\"sms\"") || strstr(line, "\"protocol\":\"twilio\"")
                    ? 's'
                    : 'p';
            if (n == cap) {
                cap *= 2;
                sample *t = realloc(s, cap * sizeof *s);
                if (t == NULL)
                    return 1;
                s = t;
            }
            s[n].pub = atoll(m + strlen(marker));
            s[n].recv = atoll(r + strlen("\"received_at_ms\":"));
            s[n].ch = ch;
            per[ch == 'e' ? 0 : ch == 's' ? 1 : 2]++;
            n++;
        }
        fclose(fp);
    }
    free(line);
    printf("deliveries=%zu\nemail=%ld\nsms=%ld\npush=%ld\nduplicates=%ld\n", n, per[0], per[1],
           per[2], dups);
    if (n == 0) {
        free(s);
        return 1;
    }
    int64_t *lat = malloc(n * sizeof *lat);
    int64_t first_pub = s[0].pub, last_recv = s[0].recv, first_recv = s[0].recv;
    for (size_t i = 0; i < n; i++) {
        lat[i] = s[i].recv - s[i].pub;
        if (s[i].pub < first_pub)
            first_pub = s[i].pub;
        if (s[i].recv > last_recv)
            last_recv = s[i].recv;
        if (s[i].recv < first_recv)
            first_recv = s[i].recv;
    }
    qsort(lat, n, sizeof *lat, cmp_i64);
    double span = (double)(last_recv - first_pub) / 1000.0;
    printf("p50_ms=%lld\np95_ms=%lld\np99_ms=%lld\nmax_ms=%lld\nfirst_publish_ms=%lld\n"
           "last_receipt_ms=%lld\nspan_s=%.3f\ndeliveries_per_s=%.0f\n",
           (long long)lat[n / 2], (long long)lat[n * 95 / 100], (long long)lat[n * 99 / 100],
           (long long)lat[n - 1], (long long)first_pub, (long long)last_recv, span,
           span > 0 ? (double)n / span : 0.0);
    /* Per channel: where the time goes (email takes SMTP's round trips). */
    static const char chans[3] = {'e', 's', 'p'};
    static const char *const chan_names[3] = {"email", "sms", "push"};
    for (int c = 0; c < 3; c++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (s[i].ch == chans[c])
                lat[m++] = s[i].recv - s[i].pub;
        if (m == 0)
            continue;
        qsort(lat, m, sizeof *lat, cmp_i64);
        printf("%s_p50_ms=%lld\n%s_p99_ms=%lld\n", chan_names[c], (long long)lat[m / 2],
               chan_names[c], (long long)lat[m * 99 / 100]);
    }
    free(lat);
    qsort(s, n, sizeof *s, cmp_recv);
    FILE *out = fopen(argv[1], "w");
    if (out) {
        size_t step = n / 20000 + 1;
        for (size_t i = 0; i < n; i += step)
            fprintf(out, "%.3f %lld %c\n", (double)(s[i].recv - first_pub) / 1000.0,
                    (long long)(s[i].recv - s[i].pub), s[i].ch);
        fclose(out);
    }
    free(s);
    return 0;
}

/* ------------------------------------------------------------ raw Kafka */

static atomic_long raw_acked, raw_failed;

static void on_dr(void *opaque, const kafka_delivery_report *dr)
{
    (void)opaque;
    if (dr->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&raw_acked, 1);
    else
        atomic_fetch_add(&raw_failed, 1);
}

static int cmd_raw(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: herald-bench-pipeline raw BROKERS TOPIC COUNT SIZE\n");
        return 2;
    }
    const char *brokers = argv[0], *topic = argv[1];
    long count = atol(argv[2]);
    int size = atoi(argv[3]);
    char err[512];
    if (count <= 0 || size < 16 || size > 100000)
        return 2;
    kafka_topic_spec spec = {.name = topic, .partitions = 6, .replication_factor = 1};
    kafka_topic_result tr;
    if (kafka_topics_create(brokers, NULL, &spec, 1, 30000, &tr, err, sizeof err) != KAFKA_OK ||
        tr.outcome == KAFKA_TOPIC_FAILED) {
        fprintf(stderr, "herald-bench-pipeline: cannot create %s: %s %s\n", topic, err, tr.msg);
        return 1;
    }
    /* Herald's producer settings (common/kafka.c), as the gateway and the
     * dispatcher use them; linger as the gateway's default. */
    config_kv kv[] = {{(char *)"linger.ms", (char *)"5"},
                      {(char *)"queue.buffering.max.messages", (char *)"100000"}};
    config_kafka_props props = {kv, 2};
    kafka_producer *p = kafka_producer_new(brokers, NULL, &props, NULL, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "herald-bench-pipeline: %s\n", err);
        return 1;
    }
    kafka_producer_set_delivery_cb(p, on_dr);
    char *val = malloc((size_t)size);
    for (int i = 0; i < size; i++)
        val[i] = (char)('a' + i % 26);
    int64_t t0 = timeutil_monotonic_ms();
    for (long i = 0; i < count; i++) {
        char key[24];
        int kl = snprintf(key, sizeof key, "u%09ld", i);
        int sent = 0;
        for (int tries = 0; tries < 100000 && !sent; tries++) {
            kafka_status st = kafka_produce(p, topic, key, (size_t)kl, val, (size_t)size, NULL,
                                            NULL, err, sizeof err);
            if (st == KAFKA_OK)
                sent = 1;
            else if (st == KAFKA_QUEUE_FULL)
                kafka_producer_poll(p, 10);
            else {
                fprintf(stderr, "herald-bench-pipeline: produce: %s\n", err);
                return 1;
            }
        }
        if ((i & 255) == 0)
            kafka_producer_poll(p, 0);
    }
    int left = kafka_producer_flush(p, 120000);
    int64_t t1 = timeutil_monotonic_ms();
    kafka_producer_destroy(p);
    free(val);

    /* Consume them back: a plain consumer assigned every partition from
     * the start (no group join in the measured time). */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "herald-bench-raw", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL) {
        fprintf(stderr, "herald-bench-pipeline: consumer: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(6);
    for (int i = 0; i < 6; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    long got = 0;
    int64_t t2 = timeutil_monotonic_ms(), deadline = t2 + 120000;
    for (long i = 0; i < count * 4 + 100000 && got < count && timeutil_monotonic_ms() < deadline;
         i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            got++;
        rd_kafka_message_destroy(m);
    }
    int64_t t3 = timeutil_monotonic_ms();
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    const char *topics[] = {topic};
    if (kafka_topics_delete(brokers, NULL, topics, 1, 30000, err, sizeof err) != KAFKA_OK)
        fprintf(stderr, "herald-bench-pipeline: %s not deleted: %s\n", topic, err);

    double ps = (double)(t1 - t0) / 1000.0, cs = (double)(t3 - t2) / 1000.0;
    if (ps <= 0)
        ps = 0.001;
    if (cs <= 0)
        cs = 0.001;
    printf("raw_count=%ld\nraw_size=%d\nraw_acked=%ld\nraw_failed=%ld\nraw_unflushed=%d\n"
           "raw_consumed=%ld\nraw_produce_s=%.3f\nraw_consume_s=%.3f\nraw_produce_per_s=%.0f\n"
           "raw_consume_per_s=%.0f\nraw_msgs_per_s=%.0f\n",
           count, size, atomic_load(&raw_acked), atomic_load(&raw_failed), left, got, ps, cs,
           (double)count / ps, (double)got / cs, (double)got / (ps + cs));
    return got == count ? 0 : 1;
}

/* The mean value size of the first records of TOPIC (up to 2,000, 15 s). */
/* A consumer assigned every partition of topic from the beginning, with end-of-partition events. */
static rd_kafka_t *open_reader(const char *brokers, const char *topic, int *nparts)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "herald-bench-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (rk == NULL)
        return NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    *nparts = 1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1)
        *nparts = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(*nparts);
    for (int i = 0; i < *nparts; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

static void close_reader(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

static int cmd_avgsize(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int nparts;
    rd_kafka_t *rk = open_reader(argv[0], argv[1], &nparts);
    if (rk == NULL)
        return 1;
    long n = 0, bytes = 0;
    int64_t deadline = timeutil_monotonic_ms() + 15000;
    for (int i = 0; i < 100000 && n < 2000 && timeutil_monotonic_ms() < deadline; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n++;
            bytes += (long)m->len + (long)m->key_len;
        }
        rd_kafka_message_destroy(m);
    }
    close_reader(rk);
    printf("%ld\n", n > 0 ? bytes / n : 0);
    return n > 0 ? 0 : 1;
}

/* ------------------------------------------------------------ stages */

/* The first needle[0..m) in hay[0..n), or NULL. */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m)
{
    for (const char *p = hay; m > 0 && p + m <= hay + n; p++) {
        p = memchr(p, needle[0], (size_t)(hay + n - p));
        if (p == NULL || p + m > hay + n)
            return NULL;
        if (memcmp(p, needle, m) == 0)
            return p;
    }
    return NULL;
}

/*
 * Milliseconds from publish to each record of topic that belongs to the
 * phase: the record's timestamp (set when its producer took it) minus the
 * publish time found after marker in the payload.  The whole topic is read
 * up to its end (bounded by count and time).  Percentiles into p50 and p99;
 * -1 when no record matched.
 */
static void stage_latency(const char *brokers, const char *topic, const char *marker, long *p50,
                          long *p99, long *n_out)
{
    *p50 = *p99 = -1;
    *n_out = 0;
    int nparts;
    rd_kafka_t *rk = open_reader(brokers, topic, &nparts);
    if (rk == NULL)
        return;
    size_t cap = 1 << 16, n = 0;
    int64_t *lat = malloc(cap * sizeof *lat);
    size_t mlen = strlen(marker);
    int eofs = 0;
    int64_t deadline = timeutil_monotonic_ms() + 60000;
    for (long i = 0;
         lat != NULL && i < 50000000L && eofs < nparts && timeutil_monotonic_ms() < deadline; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->len > 0) {
            rd_kafka_timestamp_type_t tt;
            int64_t ts = rd_kafka_message_timestamp(m, &tt);
            const char *p = find_bytes(m->payload, m->len, marker, mlen);
            if (p != NULL && ts > 0 && (size_t)(p - (const char *)m->payload) + mlen < m->len) {
                int64_t pub = atoll(p + mlen);
                if (n == cap) {
                    int64_t *t = realloc(lat, 2 * cap * sizeof *lat);
                    if (t == NULL) {
                        rd_kafka_message_destroy(m);
                        break;
                    }
                    lat = t;
                    cap *= 2;
                }
                lat[n++] = ts - pub;
            }
        }
        rd_kafka_message_destroy(m);
    }
    close_reader(rk);
    if (lat != NULL && n > 0) {
        qsort(lat, n, sizeof *lat, cmp_i64);
        *p50 = (long)lat[n / 2];
        *p99 = (long)lat[n * 99 / 100];
    }
    *n_out = (long)n;
    free(lat);
}

static int cmd_stages(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: herald-bench-pipeline stages BROKERS PREFIX PHASE\n");
        return 2;
    }
    const char *brokers = argv[0], *prefix = argv[1], *phase = argv[2];
    char topic[256], marker[128];
    long p50, p99, n;
    /* The events record: its payload's data carries "ph":"PHASE","t":"MS". */
    snprintf(topic, sizeof topic, "%sevents", prefix);
    snprintf(marker, sizeof marker, "\"ph\":\"%s\",\"t\":\"", phase);
    stage_latency(brokers, topic, marker, &p50, &p99, &n);
    printf("stage_accepted_n=%ld\nstage_accepted_p50_ms=%ld\nstage_accepted_p99_ms=%ld\n", n, p50,
           p99);
    /* The SMS delivery record: its rendered body starts hb|PHASE|MS|. */
    snprintf(topic, sizeof topic, "%sdeliveries.sms", prefix);
    snprintf(marker, sizeof marker, "hb|%s|", phase);
    stage_latency(brokers, topic, marker, &p50, &p99, &n);
    printf("stage_fanned_out_n=%ld\nstage_fanned_out_p50_ms=%ld\nstage_fanned_out_p99_ms=%ld\n", n,
           p50, p99);
    return 0;
}

static int cmd_delete_topics(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char names[40][200], err[512];
    const char *list[40];
    size_t n = 0;
    for (size_t i = 0; topics_all[i].name != NULL && n < 39; i++, n++) {
        snprintf(names[n], sizeof names[n], "%s%s", argv[1], topics_all[i].name);
        list[n] = names[n];
    }
    snprintf(names[n], sizeof names[n], "%sraw", argv[1]);
    list[n] = names[n];
    n++;
    /* One by one: a topic that does not exist must not stop the others. */
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        if (kafka_topics_delete(argv[0], NULL, &list[i], 1, 15000, err, sizeof err) != KAFKA_OK)
            bad++;
    return bad == (int)n ? 1 : 0;
}

int main(int argc, char **argv)
{
    log_init("herald-bench-pipeline", LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("usage: herald-bench-pipeline publish URL KEY COUNT RATE FIRST_USER PHASE [CONNS]\n"
               "       herald-bench-pipeline analyze PHASE SERIES_OUT FILE...\n"
               "       herald-bench-pipeline raw BROKERS TOPIC COUNT SIZE\n"
               "       herald-bench-pipeline stages BROKERS PREFIX PHASE\n"
               "       herald-bench-pipeline avgsize BROKERS TOPIC\n"
               "       herald-bench-pipeline delete-topics BROKERS PREFIX\n");
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "publish") == 0)
        return cmd_publish(argc - 2, argv + 2);
    if (strcmp(argv[1], "analyze") == 0)
        return cmd_analyze(argc - 2, argv + 2);
    if (strcmp(argv[1], "raw") == 0)
        return cmd_raw(argc - 2, argv + 2);
    if (strcmp(argv[1], "stages") == 0)
        return cmd_stages(argc - 2, argv + 2);
    if (strcmp(argv[1], "avgsize") == 0)
        return cmd_avgsize(argc - 2, argv + 2);
    if (strcmp(argv[1], "delete-topics") == 0)
        return cmd_delete_topics(argc - 2, argv + 2);
    fprintf(stderr, "herald-bench-pipeline: unknown command %s\n", argv[1]);
    return 2;
}

/*
 * herald-bench-realtime: the load tool of bench/realtime/run.
 *
 *   herald-bench-realtime herald PORT PID CONNS RATE SECONDS WRITERS
 *   herald-bench-realtime echo   PORT PID CONNS RATE SECONDS
 *
 * herald: opens CONNS WebSocket connections to herald-realtime on PORT,
 * each for its own user r0000000, r0000001, ... (tokens minted here with
 * HERALD_USER_TOKEN_SECRET), and waits until every one has its counts
 * event.  Then WRITERS threads store RATE inbox messages a second for
 * SECONDS, on a fixed schedule, to users in turn: each is the inapp
 * channel's own write, through the inbox provider of channels/ (the
 * transaction in PostgreSQL, HERALD_DATABASE_URL, then the update record
 * on <HERALD_TOPIC_PREFIX>inbox.updates at HERALD_KAFKA_BROKERS).  The
 * write's time is taken when the provider returns (after the commit, the
 * record handed to the producer); the receipt's when the client has read
 * the message event, found by its message id.  One clock (this process's
 * CLOCK_MONOTONIC) for both.
 *
 * echo: the same CONNS connections to herald-bench-echo on PORT; RATE
 * messages a second for SECONDS, to connections in turn, each carrying its
 * number; the round trip is timed from the send to the echo's receipt.
 *
 * Both print "key=value" lines: connections held, how long opening them
 * took, PID's VmRSS (KiB) before the first connection, with all held and
 * after the load, the RSS per 1,000 connections, messages written and
 * received, duplicates, per-second rates, p50/p99/max latency (ms) and
 * PID's CPU time per 1,000 received (ms, from /proc/PID/stat).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dict.h"
#include "ids.h"
#include "provider.h"
#include "timeutil.h"
#include "topics.h"
#include "usertoken.h"
#include "wsfleet.h"

/* Upgrades in flight at once: below the listen backlog. */
#define IN_FLIGHT 256
#define OPEN_MS   600000
/* How long after the last write a missing receipt is waited for. */
#define DRAIN_MS 15000

typedef struct write_rec {
    dict_node node; /* keyed by id */
    char id[ID_UUID_SIZE];
    char key[48];
} write_rec;

typedef struct bench {
    bool echo;
    int port;
    pid_t pid;
    size_t conns;
    long rate, seconds, writers;
    size_t total; /* messages to send */
    wsfleet *fleet;
    unsigned char *ready; /* per connection: counts event (herald) or 101 (echo) */
    size_t nready;
    write_rec *w; /* herald: per message */
    dict ids;
    int64_t *sent_us, *recv_us; /* per message; 0: not (yet) */
    size_t received, duplicates, unknown;
    /* herald writers */
    atomic_size_t next;
    atomic_size_t write_errors;
    atomic_int writers_done;
    atomic_int writers_warm; /* each has written once: its connections are open */
    atomic_int go;           /* t0_us is set */
    atomic_int writers_started;
    int64_t t0_us;
    const char *db_url, *brokers;
    char topic[256];
    char last_error[256];
    pthread_mutex_t error_lock;
} bench;

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "herald-bench-realtime: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        die("%s is not set", name);
    return v;
}

static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* utime + stime of pid in clock ticks (-1 when unreadable). */
static long cpu_ticks(pid_t pid)
{
    char path[64], stat[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *p = strrchr(stat, ')'); /* comm may hold spaces */
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)(ut + st);
}

static void on_text(void *ctx, size_t conn, const char *text, size_t len)
{
    bench *b = ctx;
    int64_t now = timeutil_monotonic_us();
    size_t w = SIZE_MAX;
    if (b->echo) {
        char *end = NULL;
        unsigned long long v = strtoull(text, &end, 10);
        if (end != text && v < b->total)
            w = (size_t)v;
    } else {
        json_t *j = json_loadb(text, len, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (type != NULL && strcmp(type, "counts") == 0) {
            if (!b->ready[conn]) {
                b->ready[conn] = 1;
                b->nready++;
            }
        } else if (type != NULL && strcmp(type, "message") == 0) {
            const char *id =
                json_string_value(json_array_get(json_object_get(j, "message_ids"), 0));
            dict_node *n = id != NULL ? dict_find(&b->ids, id) : NULL;
            if (n != NULL)
                w = (size_t)(dict_record(n, write_rec, node) - b->w);
        }
        json_decref(j);
        if (type != NULL && strcmp(type, "counts") == 0)
            return;
    }
    if (w == SIZE_MAX)
        b->unknown++;
    else if (b->recv_us[w] != 0)
        b->duplicates++;
    else {
        b->recv_us[w] = now;
        b->received++;
    }
}

static void user_name(size_t i, char *out, size_t outlen)
{
    snprintf(out, outlen, "r%07zu", i);
}

/* Opens every connection, IN_FLIGHT at a time, until each is ready or closed. */
static void open_all(bench *b, const char *secret)
{
    char user[16], tok[USERTOKEN_SIZE], target[512], err[256];
    int64_t deadline = timeutil_monotonic_ms() + OPEN_MS;
    size_t next = 0;
    for (long pass = 0; pass < 100000000 && timeutil_monotonic_ms() < deadline; pass++) {
        size_t pending = wsfleet_count(b->fleet, WSFLEET_CONNECTING);
        size_t nopen = wsfleet_count(b->fleet, WSFLEET_OPEN);
        if (!b->echo && nopen > b->nready) /* open but without its counts yet */
            pending += nopen - b->nready;
        for (; next < b->conns && pending < IN_FLIGHT; next++, pending++) {
            if (b->echo) {
                snprintf(target, sizeof target, "/");
            } else {
                user_name(next, user, sizeof user);
                if (usertoken_mint(secret, strlen(secret), user, timeutil_now_ms() / 1000 + 86400,
                                   tok, sizeof tok, err, sizeof err) != 0)
                    die("%s", err);
                snprintf(target, sizeof target, "/v1/users/%s/live?token=%s", user, tok);
            }
            if (wsfleet_open(b->fleet, next, b->port, target) != 0)
                die("no socket for %s (ulimit -n?)", target);
        }
        if (b->echo)
            b->nready = wsfleet_count(b->fleet, WSFLEET_OPEN);
        if (next == b->conns && b->nready + wsfleet_count(b->fleet, WSFLEET_CLOSED) >= b->conns)
            return;
        wsfleet_poll(b->fleet, 10);
    }
}

static void *writer(void *arg)
{
    bench *b = arg;
    char err[256];
    provider_settings ps = {.channel = "inapp",
                            .database_url = b->db_url,
                            .kafka_brokers = b->brokers,
                            .updates_topic = b->topic};
    provider *p = provider_new("inbox", &ps, err, sizeof err);
    if (p == NULL)
        die("inbox provider: %s", err);
    char user[16], event_id[ID_UUID_SIZE], key[64];
    /* One write first, outside the figures: the provider opens its database
     * connection and the producer its broker connection at the first one. */
    snprintf(key, sizeof key, "%s-warm-%d", b->w[0].key, atomic_fetch_add(&b->writers_started, 1));
    if (id_uuid_v4(event_id) != 0)
        die("%s", "no random bytes");
    provider_message warm = {.channel = "inapp",
                             .idempotency_key = key,
                             .event_id = event_id,
                             .user_id = "r0000000",
                             .to = "r0000000",
                             .body = "warm-up",
                             .event_type = "bench.realtime"};
    provider_result wr;
    memset(&wr, 0, sizeof wr);
    provider_send_now(p, &warm, &wr);
    atomic_fetch_add(&b->writers_warm, 1);
    for (int i = 0; i < 60000 && !atomic_load(&b->go); i++)
        usleep(1000);
    for (;;) {
        size_t w = atomic_fetch_add(&b->next, 1);
        if (w >= b->total)
            break;
        int64_t at = b->t0_us + (int64_t)((double)w * 1e6 / (double)b->rate);
        int64_t wait = at - timeutil_monotonic_us();
        if (wait > 0)
            usleep((useconds_t)wait);
        user_name(w % b->conns, user, sizeof user);
        if (id_uuid_v4(event_id) != 0)
            die("%s", "no random bytes");
        provider_message m = {.channel = "inapp",
                              .idempotency_key = b->w[w].key,
                              .event_id = event_id,
                              .user_id = user,
                              .to = user,
                              .subject = "Bench",
                              .body = "A message of the realtime benchmark",
                              .event_type = "bench.realtime"};
        provider_result r;
        memset(&r, 0, sizeof r);
        provider_send_now(p, &m, &r);
        int64_t done = timeutil_monotonic_us();
        if (r.outcome == PROVIDER_SENT) {
            b->sent_us[w] = done;
        } else {
            atomic_fetch_add(&b->write_errors, 1);
            pthread_mutex_lock(&b->error_lock);
            snprintf(b->last_error, sizeof b->last_error, "%s", r.message);
            pthread_mutex_unlock(&b->error_lock);
        }
        if (provider_flush(p, err, sizeof err) != 0)
            fprintf(stderr, "herald-bench-realtime: flush: %s\n", err);
    }
    provider_free(p); /* flushes the update records */
    atomic_fetch_add(&b->writers_done, 1);
    return NULL;
}

/* Herald: the writer threads, while this thread reads. */
static void drive_herald(bench *b)
{
    pthread_t *th = calloc((size_t)b->writers, sizeof *th);
    if (th == NULL)
        die("%s", "out of memory");
    for (long i = 0; i < b->writers; i++)
        if (pthread_create(&th[i], NULL, writer, b) != 0)
            die("%s", "cannot start a writer");
    /* The warm-up writes' events are "unknown" receipts, not figures. */
    for (int i = 0; i < 3000 && atomic_load(&b->writers_warm) < b->writers; i++)
        wsfleet_poll(b->fleet, 10);
    for (int i = 0; i < 100; i++)
        wsfleet_poll(b->fleet, 10);
    b->t0_us = timeutil_monotonic_us() + 100000;
    atomic_store(&b->go, 1);
    int64_t done_at = 0;
    int64_t hard = timeutil_monotonic_ms() + (b->seconds + 120) * 1000;
    for (long pass = 0; pass < 100000000 && timeutil_monotonic_ms() < hard; pass++) {
        wsfleet_poll(b->fleet, 10);
        if (atomic_load(&b->writers_done) == b->writers) {
            if (done_at == 0)
                done_at = timeutil_monotonic_ms();
            size_t ok = b->total - atomic_load(&b->write_errors);
            if (b->received >= ok || timeutil_monotonic_ms() > done_at + DRAIN_MS)
                break;
        }
    }
    for (long i = 0; i < b->writers; i++)
        pthread_join(th[i], NULL);
    free(th);
}

/* Echo: sends on the schedule and reads in between, on this thread. */
static void drive_echo(bench *b)
{
    char text[64];
    b->t0_us = timeutil_monotonic_us() + 100000;
    size_t w = 0;
    int64_t done_at = 0;
    int64_t hard = timeutil_monotonic_ms() + (b->seconds + 120) * 1000;
    for (long pass = 0; pass < 100000000 && timeutil_monotonic_ms() < hard; pass++) {
        int64_t now = timeutil_monotonic_us();
        for (; w < b->total; w++) {
            int64_t at = b->t0_us + (int64_t)((double)w * 1e6 / (double)b->rate);
            if (at > now)
                break;
            int n = snprintf(text, sizeof text, "%zu", w);
            b->sent_us[w] = timeutil_monotonic_us();
            if (wsfleet_send_text(b->fleet, w % b->conns, text, (size_t)n) != 0) {
                b->sent_us[w] = 0;
                atomic_fetch_add(&b->write_errors, 1);
            }
        }
        int timeout = 0;
        if (w < b->total) {
            int64_t at = b->t0_us + (int64_t)((double)w * 1e6 / (double)b->rate);
            int64_t left = at - timeutil_monotonic_us();
            timeout = left > 0 ? (int)((left + 999) / 1000) : 0;
        } else {
            if (done_at == 0)
                done_at = timeutil_monotonic_ms();
            if (b->received >= b->total - atomic_load(&b->write_errors) ||
                timeutil_monotonic_ms() > done_at + DRAIN_MS)
                break;
            timeout = 10;
        }
        wsfleet_poll(b->fleet, timeout);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(bench *b, double connect_s, long rss0, long rss1, long rss2, long cpu)
{
    int64_t *lat = malloc((b->total ? b->total : 1) * sizeof *lat);
    if (lat == NULL)
        die("%s", "out of memory");
    size_t n = 0, written = 0;
    int64_t first = 0, last_sent = 0, last_recv = 0;
    for (size_t w = 0; w < b->total; w++) {
        if (b->sent_us[w] != 0) {
            written++;
            if (first == 0 || b->sent_us[w] < first)
                first = b->sent_us[w];
            if (b->sent_us[w] > last_sent)
                last_sent = b->sent_us[w];
        }
        if (b->recv_us[w] != 0 && b->sent_us[w] != 0) {
            lat[n++] = b->recv_us[w] - b->sent_us[w];
            if (b->recv_us[w] > last_recv)
                last_recv = b->recv_us[w];
        }
    }
    qsort(lat, n, sizeof *lat, cmp_i64);
    size_t held = b->nready;
    printf("conns=%zu\nconns_held=%zu\nconnect_s=%.2f\n", b->conns, held, connect_s);
    printf("rss_before_kib=%ld\nrss_held_kib=%ld\nrss_after_kib=%ld\n", rss0, rss1, rss2);
    if (held > 0)
        printf("rss_per_1000_kib=%.0f\n", (double)(rss1 - rss0) * 1000.0 / (double)held);
    printf("rate=%ld\nseconds=%ld\nwritten=%zu\nwrite_errors=%zu\n", b->rate, b->seconds, written,
           (size_t)atomic_load(&b->write_errors));
    if (last_sent > first)
        printf("written_per_s=%.0f\n", (double)(written - 1) * 1e6 / (double)(last_sent - first));
    printf("received=%zu\nduplicates=%zu\nunknown=%zu\nlost=%zu\n", b->received, b->duplicates,
           b->unknown, written - n);
    if (last_recv > first && n > 1)
        printf("pushed_per_s=%.0f\n", (double)n * 1e6 / (double)(last_recv - first));
    if (n > 0) {
        printf("p50_ms=%.2f\np99_ms=%.2f\nmax_ms=%.2f\n", lat[n / 2] / 1000.0,
               lat[n * 99 / 100 < n ? n * 99 / 100 : n - 1] / 1000.0, lat[n - 1] / 1000.0);
    }
    if (cpu >= 0 && n > 0)
        printf("cpu_ms_per_1000=%.1f\n",
               (double)cpu * 1000.0 / (double)sysconf(_SC_CLK_TCK) * 1000.0 / (double)n);
    if (b->last_error[0] != '\0')
        printf("last_write_error=%s\n", b->last_error);
    free(lat);
}

static long arg_long(const char *s, const char *what)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v <= 0)
        die("%s must be a whole number > 0", what);
    return v;
}

int main(int argc, char **argv)
{
    static bench b;
    bool help = argc == 2 && strcmp(argv[1], "--help") == 0;
    if (help || argc < 7 || (strcmp(argv[1], "herald") == 0 && argc != 8) ||
        (strcmp(argv[1], "echo") == 0 && argc != 7) ||
        (strcmp(argv[1], "herald") != 0 && strcmp(argv[1], "echo") != 0)) {
        fprintf(help ? stdout : stderr,
                "usage: %s herald PORT PID CONNS RATE SECONDS WRITERS\n"
                "       %s echo PORT PID CONNS RATE SECONDS\n",
                argv[0], argv[0]);
        return help ? 0 : 2;
    }
    b.echo = strcmp(argv[1], "echo") == 0;
    b.port = (int)arg_long(argv[2], "PORT");
    b.pid = (pid_t)arg_long(argv[3], "PID");
    b.conns = (size_t)arg_long(argv[4], "CONNS");
    b.rate = arg_long(argv[5], "RATE");
    b.seconds = arg_long(argv[6], "SECONDS");
    b.writers = b.echo ? 0 : arg_long(argv[7], "WRITERS");
    b.total = (size_t)(b.rate * b.seconds);
    pthread_mutex_init(&b.error_lock, NULL);
    const char *secret = NULL;
    if (!b.echo) {
        secret = need_env("HERALD_USER_TOKEN_SECRET");
        b.db_url = need_env("HERALD_DATABASE_URL");
        b.brokers = need_env("HERALD_KAFKA_BROKERS");
        const char *prefix = getenv("HERALD_TOPIC_PREFIX");
        snprintf(b.topic, sizeof b.topic, "%s%s", prefix ? prefix : "", TOPICS_INBOX_UPDATES);
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < b.conns + 256) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < b.conns + 256)
            die("%s", "RLIMIT_NOFILE is too low for the connections (ulimit -Hn)");
    }
    b.ready = calloc(b.conns, 1);
    b.sent_us = calloc(b.total, sizeof *b.sent_us);
    b.recv_us = calloc(b.total, sizeof *b.recv_us);
    b.fleet = wsfleet_new(b.conns, on_text, &b);
    if (b.ready == NULL || b.sent_us == NULL || b.recv_us == NULL || b.fleet == NULL)
        die("%s", "out of memory");
    if (!b.echo) {
        /* Every message's id, known before it is written, so a receipt finds its write. */
        unsigned char r[4];
        char run[9];
        if (id_random_bytes(r, sizeof r) != 0)
            die("%s", "no random bytes");
        id_hex(r, sizeof r, run);
        b.w = calloc(b.total, sizeof *b.w);
        if (b.w == NULL || dict_init(&b.ids, b.total) != 0)
            die("%s", "out of memory");
        for (size_t w = 0; w < b.total; w++) {
            snprintf(b.w[w].key, sizeof b.w[w].key, "bench-rt-%s-%zu", run, w);
            if (id_uuid_v5(ID_NAMESPACE_HERALD, b.w[w].key, strlen(b.w[w].key), b.w[w].id) != 0)
                die("%s", "uuid");
            dict_add(&b.ids, &b.w[w].node, b.w[w].id);
        }
    }

    long rss0 = rss_kib(b.pid);
    int64_t t = timeutil_monotonic_ms();
    open_all(&b, secret);
    double connect_s = (double)(timeutil_monotonic_ms() - t) / 1000.0;
    if (b.nready < b.conns)
        fprintf(stderr, "herald-bench-realtime: %zu of %zu connections ready (%zu closed)\n",
                b.nready, b.conns, wsfleet_count(b.fleet, WSFLEET_CLOSED));
    /* A moment for the server to settle (freed handshake buffers) before its RSS. */
    for (int i = 0; i < 50; i++)
        wsfleet_poll(b.fleet, 10);
    long rss1 = rss_kib(b.pid);
    long cpu0 = cpu_ticks(b.pid);
    if (b.echo)
        drive_echo(&b);
    else
        drive_herald(&b);
    long cpu1 = cpu_ticks(b.pid);
    long rss2 = rss_kib(b.pid);
    report(&b, connect_s, rss0, rss1, rss2, cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1);
    wsfleet_free(b.fleet);
    if (!b.echo)
        dict_fini(&b.ids);
    free(b.w);
    free(b.ready);
    free(b.sent_us);
    free(b.recv_us);
    return 0;
}

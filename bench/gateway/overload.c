/*
 * herald-bench-overload: keep-alive HTTP/1.1 load on POST /v1/events from
 * many connections at once, with the latency of each answer kept by its
 * status, for bench/gateway/run's overload runs.
 *
 * wrk reports one latency distribution for every answer.  Under overload
 * that mixes the refusals (429, 503), whose speed is the point, with the
 * 202s of the requests that found room, which wait for the broker's
 * acknowledgement like any publish.  This tool keeps them apart.
 *
 *   herald-bench-overload --addr 127.0.0.1:PORT --key API_KEY
 *       [--connections 1024] [--threads 2] [--seconds 15] [--users 10000]
 *
 * Prints key=value lines: requests, rps, non2xx, errors, p50_ms, p99_ms (all
 * answers), then accepted_* and refused_* (429 and 503) count, p50_ms,
 * p99_ms and max_ms.  Each connection sends its next request as soon as the
 * answer to the previous one arrived (a closed loop, as wrk does); a closed
 * connection is opened again.  Bounded by --seconds; exits 1 when nothing
 * was answered.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESP_MAX 8192

enum { CLASS_ACCEPTED, CLASS_REFUSED, CLASS_OTHER, NCLASS };

typedef struct samples {
    uint32_t *us;
    size_t n, cap;
} samples;

typedef struct conn {
    int fd;
    const char *req; /* the request being sent */
    size_t req_len, sent;
    char resp[RESP_MAX];
    size_t got;
    int64_t started_ns;
} conn;

typedef struct worker {
    pthread_t thread;
    int nconns, epfd;
    conn *conns;
    samples by_class[NCLASS];
    uint64_t errors, next_req;
} worker;

static struct sockaddr_in g_addr;
static char **g_reqs;
static size_t *g_req_lens;
static int g_nreqs, g_seconds = 15;
static int64_t g_deadline_ns;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "herald-bench-overload: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void sample_add(samples *s, int64_t ns)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 65536;
        s->us = realloc(s->us, s->cap * sizeof *s->us);
        if (s->us == NULL)
            die("out of memory");
    }
    int64_t us = ns / 1000;
    s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void next_request(worker *w, conn *c)
{
    size_t i = (size_t)(w->next_req++ % (uint64_t)g_nreqs);
    c->req = g_reqs[i];
    c->req_len = g_req_lens[i];
    c->sent = 0;
    c->got = 0;
    c->started_ns = now_ns();
}

static int conn_open(worker *w, conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    next_request(w, c);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl");
    return 0;
}

static void conn_reopen(worker *w, conn *c)
{
    w->errors++;
    if (c->fd >= 0) {
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (now_ns() < g_deadline_ns)
        (void)conn_open(w, c);
}

/* Whether resp holds a whole answer; its status goes to *status. */
static int answer_complete(conn *c, int *status)
{
    c->resp[c->got] = '\0';
    char *end = strstr(c->resp, "\r\n\r\n");
    if (end == NULL)
        return 0;
    if (sscanf(c->resp, "HTTP/1.%*d %d", status) != 1)
        return -1;
    size_t body = 0;
    for (char *p = c->resp; p < end; p++) {
        if ((p == c->resp || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0) {
            body = strtoul(p + 15, NULL, 10);
            break;
        }
    }
    size_t need = (size_t)(end + 4 - c->resp) + body;
    if (need >= RESP_MAX)
        return -1;
    return c->got >= need ? 1 : 0;
}

static void on_ready(worker *w, conn *c, uint32_t events)
{
    if (events & (EPOLLERR | EPOLLHUP)) {
        conn_reopen(w, c);
        return;
    }
    if ((events & EPOLLOUT) && c->sent < c->req_len) {
        ssize_t n = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN) {
            conn_reopen(w, c);
            return;
        }
        if (n > 0)
            c->sent += (size_t)n;
        if (c->sent == c->req_len) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    if (!(events & EPOLLIN))
        return;
    for (;;) {
        ssize_t n = recv(c->fd, c->resp + c->got, RESP_MAX - 1 - c->got, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            conn_reopen(w, c);
            return;
        }
        if (n < 0)
            return;
        c->got += (size_t)n;
        int status = 0, done = answer_complete(c, &status);
        if (done < 0) {
            conn_reopen(w, c);
            return;
        }
        if (done == 0)
            continue;
        int cls = status >= 200 && status < 300    ? CLASS_ACCEPTED
                  : status == 429 || status == 503 ? CLASS_REFUSED
                                                   : CLASS_OTHER;
        sample_add(&w->by_class[cls], now_ns() - c->started_ns);
        if (now_ns() >= g_deadline_ns)
            return;
        next_request(w, c);
        ssize_t s = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
        if (s < 0 && errno != EAGAIN) {
            conn_reopen(w, c);
            return;
        }
        c->sent = s > 0 ? (size_t)s : 0;
        if (c->sent < c->req_len) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
        return;
    }
}

static void *run(void *arg)
{
    worker *w = arg;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        die("epoll_create1");
    for (int i = 0; i < w->nconns; i++)
        if (conn_open(w, &w->conns[i]) != 0)
            die("connect");
    struct epoll_event evs[256];
    while (now_ns() < g_deadline_ns) {
        int n = epoll_wait(w->epfd, evs, 256, 100);
        for (int i = 0; i < n; i++)
            on_ready(w, evs[i].data.ptr, evs[i].events);
    }
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].fd >= 0)
            close(w->conns[i].fd);
    close(w->epfd);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const samples *s, double p)
{
    if (s->n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return s->us[i] / 1000.0;
}

static void merge(samples *into, const samples *from)
{
    for (size_t i = 0; i < from->n; i++)
        sample_add(into, (int64_t)from->us[i] * 1000);
}

int main(int argc, char **argv)
{
    static const char usage[] =
        "usage: herald-bench-overload --addr IP:PORT --key KEY [--connections N] "
        "[--threads N] [--seconds N] [--users N]\n";
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    const char *addr = NULL, *key = "";
    int conns = 1024, threads = 2, users = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--addr") == 0)
            addr = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--connections") == 0)
            conns = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            g_seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--users") == 0)
            users = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "herald-bench-overload: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char host[64];
    int port = 0;
    if (addr == NULL || sscanf(addr, "%63[^:]:%d", host, &port) != 2 || port <= 0 ||
        inet_pton(AF_INET, host, &g_addr.sin_addr) != 1 || conns < 1 || threads < 1 ||
        threads > conns || g_seconds < 1 || users < 1) {
        fputs(usage, stderr);
        return 2;
    }
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)port);

    /* The requests, built once: one per user, sent in turn. */
    g_nreqs = users;
    g_reqs = calloc((size_t)users, sizeof *g_reqs);
    g_req_lens = calloc((size_t)users, sizeof *g_req_lens);
    if (g_reqs == NULL || g_req_lens == NULL)
        die("out of memory");
    for (int u = 0; u < users; u++) {
        char body[256];
        int blen = snprintf(body, sizeof body,
                            "{\"type\":\"bench.publish\",\"user_id\":\"u%d\",\"data\":{\"n\":%d,"
                            "\"text\":\"hello from the benchmark\"}}",
                            u, u + 1);
        size_t cap = (size_t)blen + strlen(key) + 256;
        g_reqs[u] = malloc(cap);
        if (g_reqs[u] == NULL)
            die("out of memory");
        g_req_lens[u] = (size_t)snprintf(g_reqs[u], cap,
                                         "POST /v1/events HTTP/1.1\r\nHost: %s\r\n"
                                         "Authorization: Bearer %s\r\n"
                                         "Content-Type: application/json\r\n"
                                         "Content-Length: %d\r\n\r\n%s",
                                         addr, key, blen, body);
    }

    worker *ws = calloc((size_t)threads, sizeof *ws);
    if (ws == NULL)
        die("out of memory");
    int64_t t0 = now_ns();
    g_deadline_ns = t0 + (int64_t)g_seconds * 1000000000;
    for (int t = 0; t < threads; t++) {
        ws[t].nconns = conns / threads + (t < conns % threads);
        ws[t].conns = calloc((size_t)ws[t].nconns, sizeof(conn));
        ws[t].next_req = (uint64_t)t * (uint64_t)users / (uint64_t)threads;
        if (ws[t].conns == NULL)
            die("out of memory");
        if (pthread_create(&ws[t].thread, NULL, run, &ws[t]) != 0)
            die("pthread_create");
    }
    samples all = {0}, by[NCLASS] = {{0}};
    uint64_t errors = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ws[t].thread, NULL);
        errors += ws[t].errors;
        for (int k = 0; k < NCLASS; k++) {
            merge(&by[k], &ws[t].by_class[k]);
            merge(&all, &ws[t].by_class[k]);
            free(ws[t].by_class[k].us);
        }
        free(ws[t].conns);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(all.us, all.n, sizeof *all.us, cmp_u32);
    printf("requests=%zu\nrps=%.0f\nnon2xx=%zu\nerrors=%llu\n", all.n, (double)all.n / secs,
           all.n - by[CLASS_ACCEPTED].n, (unsigned long long)errors);
    printf("p50_ms=%.2f\np99_ms=%.2f\n", pct_ms(&all, 50), pct_ms(&all, 99));
    static const char *const names[] = {"accepted", "refused", "other"};
    for (int k = 0; k < NCLASS; k++) {
        qsort(by[k].us, by[k].n, sizeof *by[k].us, cmp_u32);
        printf("%s_count=%zu\n%s_p50_ms=%.2f\n%s_p99_ms=%.2f\n%s_max_ms=%.2f\n", names[k], by[k].n,
               names[k], pct_ms(&by[k], 50), names[k], pct_ms(&by[k], 99), names[k],
               by[k].n ? by[k].us[by[k].n - 1] / 1000.0 : 0.0);
        free(by[k].us);
    }
    free(all.us);
    for (int u = 0; u < users; u++)
        free(g_reqs[u]);
    free(g_reqs);
    free(g_req_lens);
    free(ws);
    return all.n > 0 ? 0 : 1;
}

/*
 * sender: see sender.h.
 *
 * The multi handle is driven through its socket interface on an epoll set:
 * libcurl says which sockets it waits on (on_socket) and when it next needs
 * a call (on_timer), and each pass hands it only the sockets that are ready.
 * curl_multi_perform() would instead visit every transfer on every pass and,
 * in libcurl 7.88, poll each one's socket with a system call of its own, so
 * its cost grew with the concurrency rather than with the work done.
 */
#include "sender.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "timeutil.h"

/* A transfer and its place in the live table (for aborting without
 * curl_multi_get_handles, which libcurl 7.88 lacks). */
typedef struct sender_xfer {
    provider_xfer x; /* first: a provider_xfer * is a sender_xfer * */
    int slot;
    bool pooled;              /* runs on a pool thread, not in the multi handle */
    provider *setup_for;      /* the provider whose options the easy handle still has */
    CURLcode rc;              /* pooled: the result of curl_easy_perform() */
    struct sender_xfer *next; /* pooled: in the pending or done list */
} sender_xfer;

/* epoll data of an extra descriptor; a curl socket's data is the socket itself. */
#define EXTRA_TAG (UINT64_C(1) << 63)
#define MAX_EXTRA 8

struct sender {
    CURLM *multi;
    int epfd;
    int64_t timer_at;         /* monotonic ms libcurl wants a timeout call at; -1: none */
    int64_t last_kick;        /* monotonic ms of the last timeout call */
    int extra_fds[MAX_EXTRA]; /* extra descriptors already in the epoll set */
    int nextra;
    int max_in_flight;
    int in_flight;
    sender_xfer **live;   /* [0..in_flight) */
    provider_xfer **pool; /* idle transfers with their easy handles */
    int npool;
    sender_done_cb cb;
    void *ctx;
    /* the pool for blocking providers */
    int wake_fd;
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* pending work for idle pool threads */
    pthread_cond_t landed; /* a pooled transfer finished (sender_abort_all waits) */
    sender_xfer *pending, *pending_tail, *done;
    pthread_t *threads;
    int nthreads, idle;
    bool stop;
    atomic_bool aborting; /* read by the progress callback of pooled transfers */
};

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    provider_xfer *x = ud;
    size_t n = size * nmemb;
    /* Past the cap the rest is dropped: only the start of an answer matters. */
    if (x->response.len + n <= PROVIDER_RESPONSE_MAX)
        (void)!buf_append(&x->response, p, n);
    return n;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    provider_xfer *x = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
        size_t vlen = n - (sizeof name - 1);
        if (vlen >= sizeof x->retry_after)
            vlen = sizeof x->retry_after - 1;
        memcpy(x->retry_after, p + sizeof name - 1, vlen);
        x->retry_after[vlen] = '\0';
    }
    return n;
}

/* libcurl's socket callback: keeps the epoll set in step with what it waits for. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp)
{
    (void)easy;
    sender *s = ud;
    if (what == CURL_POLL_REMOVE) {
        if (sockp)
            (void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
        return 0;
    }
    struct epoll_event ev = {.events = 0, .data.u64 = (uint64_t)(unsigned)fd};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;
    /* A socket closed without a REMOVE leaves the set by itself, and its
     * number may come back: ADD and MOD each fall back to the other. */
    int op = sockp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(s->epfd, op, fd, &ev) != 0) {
        if (op == EPOLL_CTL_ADD && errno == EEXIST)
            (void)epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
        else if (op == EPOLL_CTL_MOD && errno == ENOENT)
            (void)epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    }
    if (sockp == NULL)
        curl_multi_assign(s->multi, fd, s); /* any non-NULL mark: registered */
    return 0;
}

/* libcurl's timer callback: -1 removes the timer, 0 means call at once. */
static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
    (void)multi;
    sender *s = ud;
    s->timer_at = timeout_ms < 0 ? -1 : timeutil_monotonic_ms() + timeout_ms;
    return 0;
}

sender *sender_new(int max_in_flight, sender_done_cb cb, void *ctx, int wake_fd, char *err,
                   size_t errlen)
{
    sender *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->epfd = -1;
    s->timer_at = -1;
    s->max_in_flight = max_in_flight < 1 ? 1 : max_in_flight;
    s->cb = cb;
    s->ctx = ctx;
    s->wake_fd = wake_fd;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->landed, NULL);
    s->threads = calloc((size_t)s->max_in_flight, sizeof *s->threads);
    if (s->threads == NULL)
        goto oom;
    s->pool = calloc((size_t)s->max_in_flight, sizeof *s->pool);
    s->live = calloc((size_t)s->max_in_flight, sizeof *s->live);
    s->multi = curl_multi_init();
    if (s->pool == NULL || s->live == NULL || s->multi == NULL)
        goto oom;
    /* Keep as many idle connections as there can be requests, so none is
     * closed only to be reopened on the next pass. */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, (long)s->max_in_flight);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)s->max_in_flight);
    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        error_set(err, errlen, "epoll_create1: %s", strerror(errno));
        sender_free(s);
        return NULL;
    }
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, s);
    return s;
oom:
    error_set(err, errlen, "out of memory");
    sender_free(s);
    return NULL;
}

static void xfer_clear(provider_xfer *x)
{
    curl_slist_free_all(x->headers);
    curl_slist_free_all(x->rcpt);
    x->headers = NULL;
    x->rcpt = NULL;
    buf_reset(&x->request);
    buf_reset(&x->response);
    x->retry_after[0] = '\0';
    x->upload_pos = 0;
    x->opaque = NULL;
    x->prov = NULL;
}

static void xfer_destroy(provider_xfer *x)
{
    if (x == NULL)
        return;
    xfer_clear(x);
    buf_free(&x->request);
    buf_free(&x->response);
    if (x->easy)
        curl_easy_cleanup(x->easy);
    free(x);
}

void sender_free(sender *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->nthreads; i++)
        pthread_join(s->threads[i], NULL);
    free(s->threads);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->landed);
    for (int i = 0; i < s->npool; i++)
        xfer_destroy(s->pool[i]);
    free(s->pool);
    free(s->live);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s);
}

static provider_xfer *xfer_get(sender *s)
{
    provider_xfer *x;
    if (s->npool > 0)
        return s->pool[--s->npool]; /* sender_start() resets it when needed */
    sender_xfer *sx = calloc(1, sizeof *sx);
    if (sx == NULL)
        return NULL;
    x = &sx->x;
    buf_init(&x->request, 0);
    buf_init(&x->response, PROVIDER_RESPONSE_MAX);
    x->easy = curl_easy_init();
    if (x->easy == NULL) {
        xfer_destroy(x);
        return NULL;
    }
    return x;
}

static void xfer_put(sender *s, provider_xfer *x)
{
    xfer_clear(x);
    if (s->npool < s->max_in_flight)
        s->pool[s->npool++] = x;
    else
        xfer_destroy(x);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    sender *s = ud;
    return atomic_load(&s->aborting) ? 1 : 0;
}

/* A pool thread: runs blocking transfers one at a time. */
static void *pool_run(void *arg)
{
    sender *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->pending == NULL && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        sender_xfer *sx = s->pending;
        if (sx == NULL) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->pending = sx->next;
        if (s->pending == NULL)
            s->pending_tail = NULL;
        s->idle--;
        pthread_mutex_unlock(&s->mu);
        sx->rc = curl_easy_perform(sx->x.easy);
        pthread_mutex_lock(&s->mu);
        s->idle++;
        sx->next = s->done;
        s->done = sx;
        /* Not on cv: that would wake every idle thread for nothing, once
         * per message. */
        pthread_cond_broadcast(&s->landed);
        pthread_mutex_unlock(&s->mu);
        /* Outside the lock, so the loop thread and the other pool threads
         * do not queue on it behind a system call. */
        (void)!write(s->wake_fd, "s", 1);
    }
    return NULL;
}

static int pool_submit(sender *s, sender_xfer *sx, char *err, size_t errlen)
{
    int ret = 0;
    pthread_mutex_lock(&s->mu);
    sx->next = NULL;
    if (s->pending_tail)
        s->pending_tail->next = sx;
    else
        s->pending = sx;
    s->pending_tail = sx;
    /* One thread per concurrent transfer, started the first time it is needed. */
    if (s->idle == 0 && s->nthreads < s->max_in_flight) {
        int rc = pthread_create(&s->threads[s->nthreads], NULL, pool_run, s);
        if (rc == 0) {
            s->nthreads++;
            s->idle++;
        } else if (s->nthreads == 0) {
            s->pending = s->pending_tail = NULL;
            error_set(err, errlen, "pthread_create: %s", strerror(rc));
            ret = -1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    /* After the unlock: the woken thread's first step is to take the lock. */
    if (ret == 0)
        pthread_cond_signal(&s->cv);
    return ret;
}

int sender_start(sender *s, provider *p, const provider_message *m, void *opaque, char *err,
                 size_t errlen)
{
    if (s->in_flight >= s->max_in_flight) {
        error_set(err, errlen, "too many requests in flight");
        return -1;
    }
    provider_xfer *x = xfer_get(s);
    if (x == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    x->opaque = opaque;
    x->prov = p;
    CURL *e = x->easy;
    sender_xfer *sx = (sender_xfer *)x;
    sx->pooled = provider_is_blocking(p);
    /*
     * A handle that last carried a request of the same network provider
     * keeps its options: every prepare() sets the same options again (URL,
     * body, headers), and the rest below depend only on the provider.
     * Resetting and setting them all again costs more than the rest of a
     * request's set-up.  Blocking (SMTP) transfers start afresh every time.
     */
    if (sx->setup_for != p || sx->pooled) {
        curl_easy_reset(e);
        curl_easy_setopt(e, CURLOPT_PRIVATE, x);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, p->s.timeout_ms);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->s.connect_timeout_ms);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
        curl_easy_setopt(e, CURLOPT_USERAGENT, "herald-worker");
        if (p->s.insecure_tls) {
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
            curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        }
        sx->setup_for = sx->pooled ? NULL : p;
    }
    if (provider_prepare(p, m, x, err, errlen) != 0)
        goto fail;
    x->started_ms = timeutil_monotonic_ms();
    if (sx->pooled) {
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, s);
        if (pool_submit(s, sx, err, errlen) != 0)
            goto fail;
    } else {
        CURLMcode mc = curl_multi_add_handle(s->multi, e);
        if (mc != CURLM_OK) {
            error_set(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
            goto fail;
        }
    }
    sx->slot = s->in_flight;
    s->live[s->in_flight++] = sx;
    return 0;
fail:
    xfer_put(s, x);
    return -1;
}

int sender_in_flight(const sender *s)
{
    return s->in_flight;
}

bool sender_full(const sender *s)
{
    return s->in_flight >= s->max_in_flight;
}

static void finish(sender *s, provider_xfer *x, CURLcode rc, bool aborted)
{
    provider_result res;
    memset(&res, 0, sizeof res);
    if (aborted) {
        res.outcome = PROVIDER_TRANSIENT;
        snprintf(res.message, sizeof res.message, "aborted at shutdown");
    } else {
        provider_classify(x->prov, x, rc, &res);
    }
    int64_t latency = timeutil_monotonic_ms() - x->started_ms;
    void *opaque = x->opaque;
    provider *p = x->prov;
    sender_xfer *sx = (sender_xfer *)x;
    if (!sx->pooled)
        curl_multi_remove_handle(s->multi, x->easy);
    sender_xfer *last = s->live[--s->in_flight];
    s->live[sx->slot] = last;
    last->slot = sx->slot;
    xfer_put(s, x);
    s->cb(s->ctx, opaque, p, &res, latency);
}

/* Takes the pooled transfers that finished. */
static sender_xfer *pool_take_done(sender *s)
{
    pthread_mutex_lock(&s->mu);
    sender_xfer *d = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* Puts the caller's extra descriptors in the epoll set, once each. */
static void watch_extra(sender *s, const struct curl_waitfd *extra, unsigned nextra)
{
    for (unsigned i = 0; i < nextra; i++) {
        int known = 0;
        for (int k = 0; k < s->nextra && !known; k++)
            known = s->extra_fds[k] == extra[i].fd;
        if (known || s->nextra == MAX_EXTRA)
            continue;
        struct epoll_event ev = {.events = 0,
                                 .data.u64 = EXTRA_TAG | (uint64_t)(unsigned)extra[i].fd};
        if (extra[i].events & CURL_WAIT_POLLIN)
            ev.events |= EPOLLIN;
        if (extra[i].events & CURL_WAIT_POLLOUT)
            ev.events |= EPOLLOUT;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, extra[i].fd, &ev) == 0 || errno == EEXIST)
            s->extra_fds[s->nextra++] = extra[i].fd;
    }
}

int sender_poll(sender *s, int timeout_ms, struct curl_waitfd *extra, unsigned nextra)
{
    struct epoll_event evs[128];
    int running = 0, done = 0;
    watch_extra(s, extra, nextra);
    int64_t now = timeutil_monotonic_ms();
    int wait = timeout_ms > 0 ? timeout_ms : 0;
    if (s->timer_at >= 0 && s->timer_at - now < wait)
        wait = s->timer_at > now ? (int)(s->timer_at - now) : 0;
    int n = epoll_wait(s->epfd, evs, (int)(sizeof evs / sizeof evs[0]), wait);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.u64 & EXTRA_TAG)
            continue; /* the caller's: it reads them itself */
        int mask = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
            mask |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            mask |= CURL_CSELECT_OUT;
        if (evs[i].events & EPOLLERR)
            mask |= CURL_CSELECT_ERR;
        curl_multi_socket_action(s->multi, (curl_socket_t)evs[i].data.u64, mask, &running);
    }
    now = timeutil_monotonic_ms();
    /* libcurl skips the timer callback when its next deadline has not moved,
     * so a deadline taken here could in theory be missed: a transfer in the
     * multi handle also gets a timeout call at least once a second. */
    if ((s->timer_at >= 0 && now >= s->timer_at) ||
        (s->in_flight > 0 && now - s->last_kick >= 1000)) {
        s->timer_at = -1; /* the call below sets it again when still needed */
        s->last_kick = now;
        curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    for (sender_xfer *sx = pool_take_done(s); sx;) {
        sender_xfer *next = sx->next;
        finish(s, &sx->x, sx->rc, false);
        done++;
        sx = next;
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        provider_xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        finish(s, x, msg->data.result, false);
        done++;
    }
    return done;
}

void sender_abort_all(sender *s)
{
    /* Pooled transfers stop at their next progress call; wait for them to land. */
    atomic_store(&s->aborting, true);
    pthread_mutex_lock(&s->mu);
    for (sender_xfer *sx = s->pending; sx; sx = sx->next)
        sx->rc = CURLE_ABORTED_BY_CALLBACK;
    while (s->pending) { /* never started: straight to done */
        sender_xfer *sx = s->pending;
        s->pending = sx->next;
        sx->next = s->done;
        s->done = sx;
    }
    s->pending_tail = NULL;
    int pooled = 0;
    for (int i = 0; i < s->in_flight; i++)
        pooled += s->live[i]->pooled;
    for (;;) {
        int landed = 0;
        for (sender_xfer *sx = s->done; sx; sx = sx->next)
            landed++;
        if (landed >= pooled)
            break;
        pthread_cond_wait(&s->landed, &s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    for (sender_xfer *sx = pool_take_done(s); sx;) {
        sender_xfer *next = sx->next;
        finish(s, &sx->x, CURLE_ABORTED_BY_CALLBACK, true);
        sx = next;
    }
    while (s->in_flight > 0)
        finish(s, &s->live[s->in_flight - 1]->x, CURLE_ABORTED_BY_CALLBACK, true);
    atomic_store(&s->aborting, false);
}

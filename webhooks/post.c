/*
 * post: see post.h.  One slot per request that may be in flight, each
 * keeping its easy handle for the next request once it is done (its
 * header list rebuilt each time).
 */
#include "post.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "error.h"
#include "hsig.h"
#include "timeutil.h"
#include "webhook_call.h"

#define ANSWER_KEPT 200 /* bytes of an error answer quoted in the attempt log */

typedef struct xfer {
    CURL *easy;
    struct curl_slist *hdrs;
    void *opaque;
    int64_t t0;
    char answer[ANSWER_KEPT + 1];
    size_t answer_len;
    int64_t retry_after_ms;
    bool busy;
} xfer;

struct post_pool {
    CURLM *multi;
    int max, in_flight;
    long timeout_ms;
    post_done_cb cb;
    void *ctx;
    xfer *slots; /* max of them */
};

post_outcome post_classify(long status)
{
    if (status >= 200 && status <= 299)
        return POST_OK;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return POST_RETRY;
    return POST_DEAD;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n, room = ANSWER_KEPT - x->answer_len;
    size_t take = len < room ? len : room;
    /* Quoted in logs and the attempt log: printable ASCII only. */
    for (size_t i = 0; i < take; i++) {
        unsigned char ch = (unsigned char)data[i];
        x->answer[x->answer_len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    x->answer[x->answer_len] = '\0';
    return len;
}

/* Retry-After in seconds (an HTTP date counts as none: rare from webhooks). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[32];
        size_t vlen = len - (sizeof name - 1);
        if (vlen >= sizeof value)
            vlen = sizeof value - 1;
        memcpy(value, data + sizeof name - 1, vlen);
        value[vlen] = '\0';
        char *end;
        long s = strtol(value, &end, 10);
        if (end != value && s > 0 && s <= 86400)
            x->retry_after_ms = s * 1000;
    }
    return len;
}

post_pool *post_pool_new(int max_in_flight, long timeout_ms, post_done_cb cb, void *ctx, char *err,
                         size_t errlen)
{
    post_pool *p = calloc(1, sizeof *p);
    if (p == NULL || (p->multi = curl_multi_init()) == NULL) {
        free(p);
        error_set(err, errlen, "cannot make an HTTP client");
        return NULL;
    }
    p->slots = calloc((size_t)max_in_flight, sizeof *p->slots);
    if (p->slots == NULL) {
        curl_multi_cleanup(p->multi);
        free(p);
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    p->max = max_in_flight;
    p->timeout_ms = timeout_ms;
    p->cb = cb;
    p->ctx = ctx;
    curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)max_in_flight);
    return p;
}

void post_pool_free(post_pool *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->max; i++) {
        xfer *x = &p->slots[i];
        if (x->busy)
            curl_multi_remove_handle(p->multi, x->easy);
        curl_slist_free_all(x->hdrs);
        if (x->easy != NULL)
            curl_easy_cleanup(x->easy);
    }
    free(p->slots);
    curl_multi_cleanup(p->multi);
    free(p);
}

int post_in_flight(const post_pool *p)
{
    return p->in_flight;
}

bool post_full(const post_pool *p)
{
    return p->in_flight >= p->max;
}

/* Appends one header line; -1 when out of memory (the list is kept). */
static int add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (n == NULL)
        return -1;
    *l = n;
    return 0;
}

int post_start(post_pool *p, void *opaque, const char *url, const char *secret, const char *id,
               int attempt, const void *body, size_t len, int64_t now_ms, char *err, size_t errlen)
{
    char sig[HSIG_SIZE], line[HSIG_SIZE + 64], sigline[HSIG_SIZE + 32];
    if (post_full(p)) {
        error_set(err, errlen, "%d requests in flight already", p->in_flight);
        return -1;
    }
    if (hsig_sign(secret, strlen(secret), now_ms, body, len, sig, sizeof sig) != 0) {
        error_set(err, errlen, "cannot sign the call");
        return -1;
    }
    xfer *x = p->slots;
    while (x->busy)
        x++; /* one is free: in_flight < max */
    if (x->easy != NULL)
        curl_easy_reset(x->easy);
    else if ((x->easy = curl_easy_init()) == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    x->opaque = opaque;
    x->answer_len = 0;
    x->answer[0] = '\0';
    x->retry_after_ms = 0;
    snprintf(sigline, sizeof sigline, "%s: %s", HSIG_HEADER, sig);
    int bad = add_header(&x->hdrs, "Content-Type: application/json");
    bad |= add_header(&x->hdrs, sigline);
    snprintf(line, sizeof line, "%s: %s", WEBHOOK_HTTP_ID, id);
    bad |= add_header(&x->hdrs, line);
    snprintf(line, sizeof line, "%s: %d", WEBHOOK_HTTP_ATTEMPT, attempt);
    bad |= add_header(&x->hdrs, line);
    bad |= add_header(&x->hdrs, "Expect:");
    bad |= add_header(&x->hdrs, "User-Agent: Herald-Webhooks/1");
    CURL *c = x->easy;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_PRIVATE, (char *)x);
    if (bad || curl_multi_add_handle(p->multi, c) != CURLM_OK) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    x->busy = true;
    x->t0 = timeutil_monotonic_ms();
    p->in_flight++;
    return 0;
}

static void report(post_pool *p, CURL *c, CURLcode rc)
{
    xfer *x = NULL;
    post_result r = {0};
    curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(p->multi, c);
    p->in_flight--;
    r.latency_ms = timeutil_monotonic_ms() - x->t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    r.outcome = rc == CURLE_OK ? post_classify(r.status) : POST_RETRY;
    r.retry_after_ms = x->retry_after_ms;
    if (rc != CURLE_OK)
        snprintf(r.error, sizeof r.error, "%s", curl_easy_strerror(rc));
    else if (r.outcome != POST_OK)
        snprintf(r.error, sizeof r.error, "HTTP %ld%s%.*s", r.status, x->answer_len ? ": " : "",
                 (int)x->answer_len, x->answer);
    x->busy = false;
    p->cb(p->ctx, x->opaque, &r);
}

void post_poll(post_pool *p, int timeout_ms)
{
    int running = 0, queued = 0;
    curl_multi_perform(p->multi, &running);
    if (p->in_flight > 0 && timeout_ms > 0)
        curl_multi_poll(p->multi, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(p->multi, &running);
    CURLMsg *m;
    while ((m = curl_multi_info_read(p->multi, &queued)) != NULL)
        if (m->msg == CURLMSG_DONE)
            report(p, m->easy_handle, m->data.result);
}

/*
 * sender: see sender.h.
 */
#include "sender.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "timeutil.h"

/* A transfer and its place in the live table (for aborting without
 * curl_multi_get_handles, which libcurl 7.88 lacks). */
typedef struct sender_xfer {
    provider_xfer x; /* first: a provider_xfer * is a sender_xfer * */
    int slot;
} sender_xfer;

struct sender {
    CURLM *multi;
    int max_in_flight;
    int in_flight;
    sender_xfer **live;   /* [0..in_flight) */
    provider_xfer **pool; /* idle transfers with their easy handles */
    int npool;
    sender_done_cb cb;
    void *ctx;
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

sender *sender_new(int max_in_flight, sender_done_cb cb, void *ctx, char *err, size_t errlen)
{
    sender *s = calloc(1, sizeof *s);
    if (s == NULL)
        goto oom;
    s->max_in_flight = max_in_flight < 1 ? 1 : max_in_flight;
    s->cb = cb;
    s->ctx = ctx;
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
    return s;
oom:
    snprintf(err, errlen, "out of memory");
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
    for (int i = 0; i < s->npool; i++)
        xfer_destroy(s->pool[i]);
    free(s->pool);
    free(s->live);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    free(s);
}

static provider_xfer *xfer_get(sender *s)
{
    provider_xfer *x;
    if (s->npool > 0) {
        x = s->pool[--s->npool];
        curl_easy_reset(x->easy);
        return x;
    }
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

int sender_start(sender *s, provider *p, const provider_message *m, void *opaque, char *err,
                 size_t errlen)
{
    if (s->in_flight >= s->max_in_flight) {
        snprintf(err, errlen, "too many requests in flight");
        return -1;
    }
    provider_xfer *x = xfer_get(s);
    if (x == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    x->opaque = opaque;
    x->prov = p;
    CURL *e = x->easy;
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
    if (provider_prepare(p, m, x, err, errlen) != 0)
        goto fail;
    x->started_ms = timeutil_monotonic_ms();
    CURLMcode mc = curl_multi_add_handle(s->multi, e);
    if (mc != CURLM_OK) {
        snprintf(err, errlen, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
        goto fail;
    }
    sender_xfer *sx = (sender_xfer *)x;
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
    curl_multi_remove_handle(s->multi, x->easy);
    sender_xfer *sx = (sender_xfer *)x;
    sender_xfer *last = s->live[--s->in_flight];
    s->live[sx->slot] = last;
    last->slot = sx->slot;
    xfer_put(s, x);
    s->cb(s->ctx, opaque, p, &res, latency);
}

int sender_poll(sender *s, int timeout_ms, struct curl_waitfd *extra, unsigned nextra)
{
    int running = 0, done = 0;
    if (timeout_ms > 0)
        curl_multi_poll(s->multi, extra, nextra, timeout_ms, NULL);
    curl_multi_perform(s->multi, &running);
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
    while (s->in_flight > 0)
        finish(s, &s->live[s->in_flight - 1]->x, CURLE_ABORTED_BY_CALLBACK, true);
}

/*
 * post: see post.h.
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

struct post {
    CURL *curl;
    long timeout_ms;
    /* Of the request in progress. */
    char answer[ANSWER_KEPT + 1];
    size_t answer_len;
    int64_t retry_after_ms;
};

post_outcome post_classify(long status)
{
    if (status >= 200 && status <= 299)
        return POST_OK;
    if (status == 0 || status == 408 || status == 429 || status >= 500)
        return POST_RETRY;
    return POST_DEAD;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    post *p = ctx;
    size_t len = size * n, room = ANSWER_KEPT - p->answer_len;
    size_t take = len < room ? len : room;
    /* Quoted in logs and the attempt log: printable ASCII only. */
    for (size_t i = 0; i < take; i++) {
        unsigned char ch = (unsigned char)data[i];
        p->answer[p->answer_len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : ' ';
    }
    p->answer[p->answer_len] = '\0';
    return len;
}

/* Retry-After in seconds (an HTTP date counts as none: rare from webhooks). */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    post *p = ctx;
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
            p->retry_after_ms = s * 1000;
    }
    return len;
}

post *post_new(long timeout_ms, char *err, size_t errlen)
{
    post *p = calloc(1, sizeof *p);
    if (p == NULL || (p->curl = curl_easy_init()) == NULL) {
        free(p);
        error_set(err, errlen, "cannot make an HTTP client");
        return NULL;
    }
    p->timeout_ms = timeout_ms;
    return p;
}

void post_free(post *p)
{
    if (p == NULL)
        return;
    curl_easy_cleanup(p->curl);
    free(p);
}

void post_call(post *p, const char *url, const char *secret, const char *id, int attempt,
               const char *body, size_t len, int64_t now_ms, post_result *out)
{
    char sig[HSIG_SIZE], line[HSIG_SIZE + 64];
    struct curl_slist *hdrs = NULL, *l;
    memset(out, 0, sizeof *out);
    p->answer_len = 0;
    p->answer[0] = '\0';
    p->retry_after_ms = 0;

    if (hsig_sign(secret, strlen(secret), now_ms, body, len, sig, sizeof sig) != 0) {
        out->outcome = POST_DEAD;
        snprintf(out->error, sizeof out->error, "cannot sign the call");
        return;
    }
    snprintf(line, sizeof line, "%s: %s", HSIG_HEADER, sig);
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    hdrs = (l = curl_slist_append(hdrs, line)) ? l : hdrs;
    snprintf(line, sizeof line, "%s: %s", WEBHOOK_HTTP_ID, id);
    hdrs = (l = curl_slist_append(hdrs, line)) ? l : hdrs;
    snprintf(line, sizeof line, "%s: %d", WEBHOOK_HTTP_ATTEMPT, attempt);
    hdrs = (l = curl_slist_append(hdrs, line)) ? l : hdrs;
    hdrs = (l = curl_slist_append(hdrs, "Expect:")) ? l : hdrs;
    hdrs = (l = curl_slist_append(hdrs, "User-Agent: Herald-Webhooks/1")) ? l : hdrs;

    CURL *c = p->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, p);

    int64_t t0 = timeutil_monotonic_ms();
    CURLcode rc = curl_easy_perform(c);
    out->latency_ms = timeutil_monotonic_ms() - t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    out->outcome = rc == CURLE_OK ? post_classify(out->status) : POST_RETRY;
    out->retry_after_ms = p->retry_after_ms;
    if (rc != CURLE_OK)
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    else if (out->outcome != POST_OK)
        snprintf(out->error, sizeof out->error, "HTTP %ld%s%.*s", out->status,
                 p->answer_len ? ": " : "", (int)p->answer_len, p->answer);
    curl_slist_free_all(hdrs);
}

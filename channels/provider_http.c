/*
 * provider_http: Herald's generic HTTP providers for SMS and push
 * (docs/interface.md section 6): one JSON POST per delivery (per device token
 * for push) with the Idempotency-Key header, so a provider that
 * deduplicates never delivers a re-send twice.
 */
#include "provider.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "timeutil.h"

static int http_init(provider *p, char *err, size_t errlen)
{
    if (p->s.url == NULL) {
        error_set(err, errlen, "HERALD_%s_URL: required with the http provider",
                  strcmp(p->s.channel, "push") == 0 ? "PUSH" : "SMS");
        return -1;
    }
    return 0;
}

static int http_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                        size_t errlen)
{
    bool push = strcmp(p->s.channel, "push") == 0;
    buf *b = &x->request;
    int rc = 0;
    if (push) {
        rc |= buf_append_str(b, "{\"token\":");
        rc |= provider_json_string(b, m->to);
        rc |= buf_append_str(b, ",\"title\":");
        rc |= provider_json_string(b, m->subject ? m->subject : "");
        rc |= buf_append_str(b, ",\"body\":");
        rc |= provider_json_string(b, m->body ? m->body : "");
        rc |= buf_append_str(b, ",\"data\":");
        rc |= buf_append_str(b, m->data_json && *m->data_json ? m->data_json : "{}");
    } else {
        rc |= buf_append_str(b, "{\"to\":");
        rc |= provider_json_string(b, m->to);
        rc |= buf_append_str(b, ",\"body\":");
        rc |= provider_json_string(b, m->body ? m->body : "");
    }
    rc |= buf_append_str(b, ",\"idempotency_key\":");
    rc |= provider_json_string(b, m->idempotency_key);
    rc |= buf_append_str(b, ",\"event_id\":");
    rc |= provider_json_string(b, m->event_id);
    rc |= buf_append_str(b, ",\"user_id\":");
    rc |= provider_json_string(b, m->user_id);
    rc |= buf_append_str(b, "}");
    rc |= provider_xfer_header(x, "Content-Type", "application/json");
    rc |= provider_xfer_header(x, "Idempotency-Key", m->idempotency_key);
    if (p->s.auth_token) {
        char bearer[1100];
        snprintf(bearer, sizeof bearer, "Bearer %s", p->s.auth_token);
        rc |= provider_xfer_header(x, "Authorization", bearer);
    }
    if (rc != 0) {
        error_set(err, errlen, "request too large or out of memory");
        return -1;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, p->s.url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, b->data);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    return 0;
}

static void http_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    provider_classify_http(rc, status, x->retry_after, strcmp(p->s.channel, "push") == 0,
                           x->response.data, timeutil_now_ms(), out);
    if (out->outcome == PROVIDER_SENT)
        provider_json_id(x->response.data, (const char *const[]){"id", "message_id", NULL},
                         out->message_id, sizeof out->message_id);
}

const provider_ops provider_http_ops = {
    .name = "http",
    .init = http_init,
    .prepare = http_prepare,
    .classify = http_classify,
};

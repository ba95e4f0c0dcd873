/*
 * provider_fcm: push through Firebase Cloud Messaging HTTP v1,
 * POST {base}/v1/projects/{project}/messages:send with a Bearer access
 * token.  The base is https://fcm.googleapis.com unless HERALD_PUSH_URL
 * overrides it.  FCM data values must be strings, so non-string members
 * of the delivery's data are sent as their JSON text.
 *
 * Answers: 200 with "name" sent; errorCode UNREGISTERED (HTTP 404, and
 * some 400s) a dead token; 401 an expired access token, which is the
 * deployment's problem and stays transient; the rest per the HTTP rules.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "timeutil.h"

#define FCM_DEFAULT_BASE "https://fcm.googleapis.com"

static int fcm_init(provider *p, char *err, size_t errlen)
{
    if (p->s.project_id == NULL) {
        error_set(err, errlen, "HERALD_FCM_PROJECT_ID: required with the fcm provider");
        return -1;
    }
    if (p->s.auth_token == NULL) {
        error_set(err, errlen, "HERALD_FCM_ACCESS_TOKEN: required with the fcm provider");
        return -1;
    }
    return 0;
}

static int fcm_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                       size_t errlen)
{
    char url[1024];
    char bearer[4200];
    json_t *root = NULL, *data = NULL, *in = NULL;
    char *text = NULL;
    int ret = -1;
    const char *base = p->s.url ? p->s.url : FCM_DEFAULT_BASE;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof url, "%.*s/v1/projects/%s/messages:send", (int)blen, base,
             p->s.project_id);

    data = json_object();
    in = m->data_json ? json_loads(m->data_json, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(in, k, v)
    {
        if (json_is_string(v)) {
            json_object_set(data, k, v);
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (s)
                json_object_set_new(data, k, json_string(s));
            free(s);
        }
    }
    json_object_set_new(data, "idempotency_key", json_string(m->idempotency_key));
    json_object_set_new(data, "event_id", json_string(m->event_id));
    root = json_pack("{s:{s:s, s:{s:s, s:s}, s:O}}", "message", "token", m->to, "notification",
                     "title", m->subject ? m->subject : "", "body", m->body ? m->body : "", "data",
                     data);
    text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (text == NULL || buf_append_str(&x->request, text) != 0) {
        error_set(err, errlen, "cannot build the FCM request");
        goto out;
    }
    snprintf(bearer, sizeof bearer, "Bearer %s", p->s.auth_token);
    if (provider_xfer_header(x, "Content-Type", "application/json; charset=UTF-8") != 0 ||
        provider_xfer_header(x, "Authorization", bearer) != 0 ||
        provider_xfer_header(x, "Idempotency-Key", m->idempotency_key) != 0) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->request.data);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->request.len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    ret = 0;
out:
    free(text);
    json_decref(root);
    json_decref(data);
    json_decref(in);
    return ret;
}

static void fcm_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    (void)p;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    const char *body = x->response.data;
    provider_classify_http(rc, status, x->retry_after, true, body, timeutil_now_ms(), out);
    if (rc != CURLE_OK)
        return;
    if (out->outcome == PROVIDER_SENT) {
        provider_json_id(body, (const char *const[]){"name", NULL}, out->message_id,
                         sizeof out->message_id);
    } else if (body && strstr(body, "UNREGISTERED") != NULL) {
        out->outcome = PROVIDER_DEAD_TOKEN;
        snprintf(out->message, sizeof out->message, "HTTP %ld: UNREGISTERED", status);
    } else if (status == 401) {
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
    }
}

const provider_ops provider_fcm_ops = {
    .name = "fcm",
    .init = fcm_init,
    .prepare = fcm_prepare,
    .classify = fcm_classify,
};

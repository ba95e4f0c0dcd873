/*
 * provider_http: Herald's generic HTTP providers for SMS and push
 * (CONTRACT.md section 6): one JSON POST per delivery (per device token
 * for push) with the Idempotency-Key header, so a provider that
 * deduplicates never delivers a re-send twice.
 */
#include "provider.h"

#include <stdio.h>
#include <string.h>

#include "timeutil.h"

static int http_init(provider *p, char *err, size_t errlen)
{
    if (p->s.url == NULL) {
        snprintf(err, errlen, "HERALD_%s_URL: required with the http provider",
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
        snprintf(err, errlen, "request too large or out of memory");
        return -1;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, p->s.url);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, b->data);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)b->len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    return 0;
}

/* Skips JSON whitespace. */
static const char *skip_ws(const char *c)
{
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
        c++;
    return c;
}

/* A string of printable ASCII without escapes, from its opening quote; NULL otherwise. */
static const char *plain_string(const char *c, const char **start, size_t *len)
{
    if (*c != '"')
        return NULL;
    const char *s = ++c;
    while (*c >= 0x20 && *c <= 0x7e && *c != '"' && *c != '\\')
        c++;
    if (*c != '"')
        return NULL;
    *start = s;
    *len = (size_t)(c - s);
    return c + 1;
}

/*
 * The provider's message id from a flat answer such as
 * {"id":"msg-1","status":"accepted","duplicate":false}, read in place:
 * that is every answer of a busy provider, and parsing it into a tree cost
 * more than the rest of the classification.  Only objects whose members are
 * plain strings (printable ASCII, no escapes), true, false or null are read
 * here, with the same result as provider_json_id() (the last of duplicate
 * members counts); anything else returns -1 and goes to jansson.
 */
static int flat_json_id(const char *body, const char *const *keys, char *out, size_t outlen)
{
    enum { NKEYS = 4 };
    const char *val[NKEYS] = {0};
    size_t vlen[NKEYS] = {0};
    size_t nkeys = 0;
    while (keys[nkeys] && nkeys < NKEYS)
        nkeys++;
    if (keys[nkeys] != NULL || *body != '{')
        return -1;
    const char *c = skip_ws(body + 1);
    if (*c == '}')
        goto end;
    for (;;) {
        const char *k, *v = NULL;
        size_t klen, len = 0;
        if ((c = plain_string(c, &k, &klen)) == NULL)
            return -1;
        c = skip_ws(c);
        if (*c++ != ':')
            return -1;
        c = skip_ws(c);
        if (*c == '"') {
            if ((c = plain_string(c, &v, &len)) == NULL)
                return -1;
        } else if (strncmp(c, "true", 4) == 0 || strncmp(c, "null", 4) == 0) {
            c += 4;
        } else if (strncmp(c, "false", 5) == 0) {
            c += 5;
        } else {
            return -1;
        }
        for (size_t i = 0; i < nkeys; i++)
            if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0) {
                val[i] = v; /* NULL: the last one is not a string */
                vlen[i] = len;
            }
        c = skip_ws(c);
        if (*c == '}')
            break;
        if (*c++ != ',')
            return -1;
        c = skip_ws(c);
    }
end:
    if (*skip_ws(c + 1) != '\0')
        return -1;
    if (outlen)
        out[0] = '\0';
    for (size_t i = 0; i < nkeys; i++)
        if (val[i] != NULL) {
            snprintf(out, outlen, "%.*s", (int)vlen[i], val[i]);
            break;
        }
    return 0;
}

static void http_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    provider_classify_http(rc, status, x->retry_after, strcmp(p->s.channel, "push") == 0,
                           x->response.data, timeutil_now_ms(), out);
    if (out->outcome == PROVIDER_SENT) {
        const char *const keys[] = {"id", "message_id", NULL};
        if (x->response.data == NULL ||
            flat_json_id(x->response.data, keys, out->message_id, sizeof out->message_id) != 0)
            provider_json_id(x->response.data, keys, out->message_id, sizeof out->message_id);
    }
}

const provider_ops provider_http_ops = {
    .name = "http",
    .init = http_init,
    .prepare = http_prepare,
    .classify = http_classify,
};

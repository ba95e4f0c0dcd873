/*
 * provider_twilio: SMS through Twilio's Messages API,
 * POST {base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded To,
 * From and Body, basic auth with the account SID and auth token.  The base
 * is https://api.twilio.com unless HERALD_SMS_URL overrides it (tests, a
 * regional edge).  The idempotency key goes in I-Twilio-Idempotency-Token,
 * which Twilio honours for retried requests.  With a status callback URL
 * (HERALD_TWILIO_STATUS_CALLBACK_URL) every message carries it as
 * StatusCallback, with key=<idempotency key> added to its query, and
 * Twilio posts the message's status changes to exactly that URL: the
 * receiver knows the delivery from the URL alone (docs/receipts.md).
 */
#include "provider.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include <jansson.h>
#include "timeutil.h"

#define TWILIO_DEFAULT_BASE "https://api.twilio.com"

static int twilio_init(provider *p, char *err, size_t errlen)
{
    if (p->s.username == NULL) {
        error_set(err, errlen, "HERALD_TWILIO_ACCOUNT_SID: required with the twilio provider");
        return -1;
    }
    if (p->s.auth_token == NULL) {
        error_set(err, errlen, "HERALD_TWILIO_AUTH_TOKEN: required with the twilio provider");
        return -1;
    }
    if (p->s.from == NULL) {
        error_set(err, errlen, "HERALD_SMS_FROM: required with the twilio provider");
        return -1;
    }
    return 0;
}

static int form_field(buf *b, CURL *e, const char *name, const char *value)
{
    char *esc = curl_easy_escape(e, value ? value : "", 0);
    if (esc == NULL)
        return -1;
    int rc = buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, esc);
    curl_free(esc);
    return rc;
}

/* The configured callback URL with this message's key=<idempotency key>. */
static int status_callback_url(buf *out, CURL *e, const char *base, const char *key)
{
    char *esc = curl_easy_escape(e, key ? key : "", 0);
    if (esc == NULL)
        return -1;
    int rc = buf_printf(out, "%s%skey=%s", base, strchr(base, '?') ? "&" : "?", esc);
    curl_free(esc);
    return rc;
}

static int twilio_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                          size_t errlen)
{
    char url[1024];
    const char *base = p->s.url ? p->s.url : TWILIO_DEFAULT_BASE;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    snprintf(url, sizeof url, "%.*s/2010-04-01/Accounts/%s/Messages.json", (int)blen, base,
             p->s.username);
    int rc = 0;
    rc |= form_field(&x->request, x->easy, "To", m->to);
    rc |= form_field(&x->request, x->easy, "From", p->s.from);
    rc |= form_field(&x->request, x->easy, "Body", m->body);
    if (p->s.status_callback != NULL) {
        buf cb;
        buf_init(&cb, 8192);
        rc |= status_callback_url(&cb, x->easy, p->s.status_callback, m->idempotency_key);
        rc |= form_field(&x->request, x->easy, "StatusCallback", cb.data);
        buf_free(&cb);
    }
    rc |= provider_xfer_header(x, "I-Twilio-Idempotency-Token", m->idempotency_key);
    if (rc != 0) {
        error_set(err, errlen, "request too large or out of memory");
        return -1;
    }
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(x->easy, CURLOPT_USERNAME, p->s.username);
    curl_easy_setopt(x->easy, CURLOPT_PASSWORD, p->s.auth_token);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->request.data);
    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->request.len);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    return 0;
}

static void twilio_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    (void)p;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    provider_classify_http(rc, status, x->retry_after, false, x->response.data, timeutil_now_ms(),
                           out);
    if (out->outcome == PROVIDER_SENT)
        provider_json_id(x->response.data, (const char *const[]){"sid", NULL}, out->message_id,
                         sizeof out->message_id);
    else if (status == 401) {
        /* Bad credentials are the account's problem, not this message's. */
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
    } else if (out->outcome == PROVIDER_PERMANENT && provider_twilio_refuses(x->response.data)) {
        out->recipient_refused = true;
    }
}

bool provider_twilio_refuses(const char *body)
{
    /* Twilio's error codes for a number that can never take the message:
     * 21211 not a valid number, 21610 the recipient replied STOP, 21614
     * not a mobile number. */
    json_t *j = body ? json_loads(body, 0, NULL) : NULL;
    json_int_t code = json_integer_value(json_object_get(j, "code"));
    json_decref(j);
    return code == 21211 || code == 21610 || code == 21614;
}

const provider_ops provider_twilio_ops = {
    .name = "twilio",
    .init = twilio_init,
    .prepare = twilio_prepare,
    .classify = twilio_classify,
};

/*
 * provider: the factory, the helpers every implementation shares and the
 * pure classification rules (see provider.h).
 */
#include "provider.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "error.h"
#include "timeutil.h"

static const provider_ops *const provider_kinds[] = {
    &provider_smtp_ops,
    &provider_http_ops,
    &provider_twilio_ops,
    &provider_fcm_ops,
    &provider_file_ops,
    &provider_inbox_ops,
    NULL,
};

bool provider_kind_serves(const char *kind, const char *channel)
{
    /* The inbox is the in-app channel's one destination, and only its. */
    if (strcmp(channel, "inapp") == 0)
        return strcmp(kind, "inbox") == 0;
    if (strcmp(kind, "file") == 0)
        return true;
    if (strcmp(channel, "email") == 0)
        return strcmp(kind, "smtp") == 0;
    if (strcmp(channel, "sms") == 0)
        return strcmp(kind, "http") == 0 || strcmp(kind, "twilio") == 0;
    if (strcmp(channel, "push") == 0)
        return strcmp(kind, "http") == 0 || strcmp(kind, "fcm") == 0;
    return false;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void settings_free(provider_settings *s)
{
    free((char *)s->channel);
    free((char *)s->url);
    free((char *)s->auth_token);
    free((char *)s->username);
    free((char *)s->password);
    free((char *)s->from);
    free((char *)s->project_id);
    free((char *)s->status_callback);
    free((char *)s->outbox_dir);
    free((char *)s->ca_file);
    free((char *)s->database_url);
    free((char *)s->kafka_brokers);
    free((char *)s->updates_topic);
    free((char *)s->bounce_address);
}

provider *provider_new(const char *kind, const provider_settings *s, char *err, size_t errlen)
{
    provider *p = NULL;
    const provider_ops *ops = NULL;
    for (size_t i = 0; provider_kinds[i]; i++)
        if (strcmp(provider_kinds[i]->name, kind) == 0)
            ops = provider_kinds[i];
    if (ops == NULL || s->channel == NULL || !provider_kind_serves(kind, s->channel)) {
        error_set(err, errlen, "provider \"%s\" cannot deliver %s", kind,
                  s->channel ? s->channel : "(no channel)");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL)
        goto oom;
    p->ops = ops;
    p->s = *s;
    p->s.channel = strdup(s->channel);
    p->s.url = dup_or_null(s->url);
    p->s.auth_token = dup_or_null(s->auth_token);
    p->s.username = dup_or_null(s->username);
    p->s.password = dup_or_null(s->password);
    p->s.from = dup_or_null(s->from);
    p->s.project_id = dup_or_null(s->project_id);
    p->s.status_callback = dup_or_null(s->status_callback);
    p->s.outbox_dir = dup_or_null(s->outbox_dir);
    p->s.ca_file = dup_or_null(s->ca_file);
    p->s.database_url = dup_or_null(s->database_url);
    p->s.kafka_brokers = dup_or_null(s->kafka_brokers);
    p->s.updates_topic = dup_or_null(s->updates_topic);
    p->s.bounce_address = dup_or_null(s->bounce_address);
    if (p->s.channel == NULL)
        goto oom;
    if (p->s.timeout_ms <= 0)
        p->s.timeout_ms = 30000;
    if (p->s.connect_timeout_ms <= 0)
        p->s.connect_timeout_ms = 5000;
    if (ops->init && ops->init(p, err, errlen) != 0) {
        provider_free(p);
        return NULL;
    }
    return p;
oom:
    error_set(err, errlen, "out of memory");
    provider_free(p);
    return NULL;
}

void provider_free(provider *p)
{
    if (p == NULL)
        return;
    if (p->ops->destroy)
        p->ops->destroy(p);
    settings_free(&p->s);
    free(p);
}

const char *provider_name(const provider *p)
{
    return p->ops->name;
}

bool provider_is_async(const provider *p)
{
    return p->ops->prepare != NULL;
}

bool provider_is_blocking(const provider *p)
{
    return p->ops->blocking;
}

int provider_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                     size_t errlen)
{
    x->prov = p;
    return p->ops->prepare(p, m, x, err, errlen);
}

void provider_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    memset(out, 0, sizeof *out);
    p->ops->classify(p, x, rc, out);
}

void provider_send_now(provider *p, const provider_message *m, provider_result *out)
{
    memset(out, 0, sizeof *out);
    p->ops->send_now(p, m, out);
}

int provider_flush(provider *p, char *err, size_t errlen)
{
    return p->ops->flush ? p->ops->flush(p, err, errlen) : 0;
}

/* ------------------------------------------------------------- helpers */

static size_t xfer_read(char *dst, size_t size, size_t nmemb, void *ud)
{
    provider_xfer *x = ud;
    size_t room = size * nmemb;
    size_t left = x->request.len - x->upload_pos;
    size_t n = left < room ? left : room;
    if (n)
        memcpy(dst, x->request.data + x->upload_pos, n);
    x->upload_pos += n;
    return n;
}

void provider_xfer_upload(provider_xfer *x)
{
    x->upload_pos = 0;
    curl_easy_setopt(x->easy, CURLOPT_READFUNCTION, xfer_read);
    curl_easy_setopt(x->easy, CURLOPT_READDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->request.len);
}

int provider_xfer_header(provider_xfer *x, const char *name, const char *value)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%s: %s", name, value);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    struct curl_slist *l = curl_slist_append(x->headers, line);
    if (l == NULL)
        return -1;
    x->headers = l;
    return 0;
}

int provider_json_string(buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (buf_append(out, "\"", 1) != 0)
        return -1;
    const char *run = s;
    for (const char *c = s;; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch != '\0' && ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        if (buf_append(out, run, (size_t)(c - run)) != 0)
            return -1;
        if (ch == '\0')
            break;
        char esc[7] = {'\\', (char)ch, 0};
        size_t elen = 2;
        if (ch == '\n')
            esc[1] = 'n';
        else if (ch == '\r')
            esc[1] = 'r';
        else if (ch == '\t')
            esc[1] = 't';
        else if (ch < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            elen = 6;
        }
        if (buf_append(out, esc, elen) != 0)
            return -1;
        run = c + 1;
    }
    return buf_append(out, "\"", 1);
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
 * provider_json_id() of a flat answer such as
 * {"id":"msg-1","status":"accepted","duplicate":false}, read in place:
 * that is every answer of a busy provider, and parsing it into a tree cost
 * more than the rest of the classification.  Only objects whose members are
 * plain strings (printable ASCII, no escapes), true, false or null are read
 * here, with jansson's result (the last of duplicate members counts);
 * anything else returns -1 and goes to jansson.
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

void provider_json_id(const char *body, const char *const *keys, char *out, size_t outlen)
{
    if (body != NULL && flat_json_id(body, keys, out, outlen) == 0)
        return;
    if (outlen)
        out[0] = '\0';
    json_t *j = body && *body == '{' ? json_loads(body, 0, NULL) : NULL;
    for (size_t i = 0; j && keys[i]; i++) {
        const char *v = json_string_value(json_object_get(j, keys[i]));
        if (v) {
            snprintf(out, outlen, "%s", v);
            break;
        }
    }
    json_decref(j);
}

/* -------------------------------------------------------- Retry-After */

static int month_index(const char *m)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (int i = 0; i < 12; i++)
        if (strncmp(m, months[i], 3) == 0 && m[3] == '\0')
            return i + 1;
    return 0;
}

static int parse_http_date(const char *v, int64_t *out_ms)
{
    char wd[16], mon[8], zone[8];
    int d, y, h, mi, s;
    int n = 0;
    /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
    if (sscanf(v, "%3s, %2d %3s %4d %2d:%2d:%2d %3s%n", wd, &d, mon, &y, &h, &mi, &s, zone, &n) ==
            8 &&
        v[n] == '\0' && strcmp(zone, "GMT") == 0)
        goto found;
    /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
    n = 0;
    if (sscanf(v, "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d %3s%n", wd, &d, mon, &y, &h, &mi, &s, zone,
               &n) == 8 &&
        v[n] == '\0' && strcmp(zone, "GMT") == 0) {
        /* RFC 7231 7.1.1.1: a two-digit year more than 50 years ahead is in the past century. */
        y += y < 70 ? 2000 : 1900;
        goto found;
    }
    /* asctime: Sun Nov  6 08:49:37 1994 */
    n = 0;
    if (sscanf(v, "%3s %3s %d %2d:%2d:%2d %4d%n", wd, mon, &d, &h, &mi, &s, &y, &n) == 7 &&
        v[n] == '\0')
        goto found;
    return -1;
found:;
    int mo = month_index(mon);
    if (mo == 0 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 || y < 1970)
        return -1;
    int64_t days = timeutil_days_from_civil(y, mo, d);
    *out_ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)s * 1000;
    return 0;
}

int provider_parse_retry_after(const char *value, int64_t now_ms, int64_t *ms)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strlen(value);
    while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
                   value[len - 1] == '\n'))
        len--;
    if (len == 0 || len >= 64)
        return -1;
    char v[64];
    memcpy(v, value, len);
    v[len] = '\0';
    if (isdigit((unsigned char)v[0])) {
        int64_t secs = 0;
        for (size_t i = 0; i < len; i++) {
            if (!isdigit((unsigned char)v[i]))
                return -1;
            if (secs < INT64_C(1000000000))
                secs = secs * 10 + (v[i] - '0');
        }
        *ms = secs * 1000;
        return 0;
    }
    int64_t at;
    if (parse_http_date(v, &at) != 0)
        return -1;
    *ms = at > now_ms ? at - now_ms : 0;
    return 0;
}

/* ------------------------------------------------------ classification */

const char *provider_outcome_name(provider_outcome o)
{
    switch (o) {
    case PROVIDER_SENT:
        return "sent";
    case PROVIDER_TRANSIENT:
        return "transient";
    case PROVIDER_PERMANENT:
        return "permanent";
    case PROVIDER_DEAD_TOKEN:
        return "dead_token";
    }
    return "unknown";
}

/* A short, single-line excerpt of a response body for error messages. */
static void excerpt(const char *body, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return;
    for (const char *c = body ? body : ""; *c && o + 1 < outlen && o < 160; c++)
        out[o++] = (*c == '\n' || *c == '\r' || *c == '\t') ? ' ' : *c;
    out[o] = '\0';
}

void provider_classify_http(CURLcode rc, long status, const char *retry_after, bool push,
                            const char *body, int64_t now_ms, provider_result *out)
{
    char ex[200];
    out->status = status;
    out->retry_after_ms = 0;
    out->provider_fault = false;
    out->recipient_refused = false;
    if (rc != CURLE_OK) {
        /* Timeouts, refused or reset connections, TLS trouble: the provider's side. */
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
        snprintf(out->message, sizeof out->message, "transport: %s", curl_easy_strerror(rc));
        return;
    }
    excerpt(body, ex, sizeof ex);
    if (status >= 200 && status <= 299) {
        out->outcome = PROVIDER_SENT;
        snprintf(out->message, sizeof out->message, "HTTP %ld", status);
        return;
    }
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
        int64_t wait = 0;
        if (retry_after && *retry_after &&
            provider_parse_retry_after(retry_after, now_ms, &wait) == 0)
            out->retry_after_ms = wait;
        snprintf(out->message, sizeof out->message, "HTTP %ld: %s", status, ex);
        return;
    }
    if (push && (status == 404 || status == 410)) {
        out->outcome = PROVIDER_DEAD_TOKEN;
        snprintf(out->message, sizeof out->message, "HTTP %ld: token not registered", status);
        return;
    }
    out->outcome = PROVIDER_PERMANENT;
    snprintf(out->message, sizeof out->message, "HTTP %ld: %s", status, ex);
}

void provider_classify_pg(const char *sqlstate, const char *user_id, const char *error,
                          provider_result *out)
{
    out->status = 0;
    out->retry_after_ms = 0;
    out->provider_fault = false;
    if (sqlstate == NULL)
        sqlstate = "";
    if (strcmp(sqlstate, "23503") == 0) {
        out->outcome = PROVIDER_PERMANENT;
        snprintf(out->message, sizeof out->message, "unknown user: no user %.100s for the inbox",
                 user_id ? user_id : "");
        return;
    }
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0) {
        out->outcome = PROVIDER_PERMANENT;
        snprintf(out->message, sizeof out->message, "inbox refused it (SQLSTATE %s): %.180s",
                 sqlstate, error ? error : "");
        return;
    }
    out->outcome = PROVIDER_TRANSIENT;
    out->provider_fault = true;
    snprintf(out->message, sizeof out->message, "inbox unavailable%s%s: %.180s",
             *sqlstate ? " SQLSTATE " : "", sqlstate, error ? error : "");
}

void provider_classify_smtp(CURLcode rc, long reply, const char *curl_error, provider_result *out)
{
    out->status = reply;
    out->retry_after_ms = 0;
    out->provider_fault = false;
    out->recipient_refused = false;
    if (rc == CURLE_OK) {
        out->outcome = PROVIDER_SENT;
        snprintf(out->message, sizeof out->message, "SMTP %ld", reply ? reply : 250);
        return;
    }
    if (rc == CURLE_LOGIN_DENIED) {
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
        snprintf(out->message, sizeof out->message, "SMTP %ld: authentication failed", reply);
        return;
    }
    if (reply >= 400 && reply <= 499) {
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
        snprintf(out->message, sizeof out->message, "SMTP %ld: %s", reply, curl_easy_strerror(rc));
        return;
    }
    if (reply >= 500 && reply <= 599) {
        out->outcome = PROVIDER_PERMANENT;
        if (curl_error != NULL && strncmp(curl_error, "RCPT failed", 11) == 0) {
            out->recipient_refused = true;
            snprintf(out->message, sizeof out->message,
                     "SMTP %ld at RCPT TO: the relay refused the address", reply);
            return;
        }
        snprintf(out->message, sizeof out->message, "SMTP %ld: %s", reply, curl_easy_strerror(rc));
        return;
    }
    out->outcome = PROVIDER_TRANSIENT;
    out->provider_fault = true;
    snprintf(out->message, sizeof out->message, "transport: %s", curl_easy_strerror(rc));
}

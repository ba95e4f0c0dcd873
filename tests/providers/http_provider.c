/*
 * herald-test-http-provider: a local stand-in for the SMS and push providers
 * Herald's channel workers call, for integration tests, failure tests and
 * benchmarks.
 *
 * One libmicrohttpd server speaks four protocols, chosen by path:
 *   POST /sms                                          generic SMS (JSON)
 *   POST /push                                         generic push (JSON)
 *   POST /2010-04-01/Accounts/{sid}/Messages.json      Twilio Messages API
 *   POST /v1/projects/{project}/messages:send          FCM HTTP v1
 * plus the control API of control.h under /_.  Requests are validated the
 * way the contract describes them; accepted ones are recorded (record_log)
 * and counted; misbehaviour is scripted through fault.
 *
 * A Twilio message with a StatusCallback gets its status callbacks
 * (callbacks.h) once its 201 is out.
 *
 * Latency and hangs never block a server thread: the connection is
 * suspended and resumed later, by the delay thread when its deadline
 * passes or by a control request that lifts the hang.  So a 50 ms latency
 * costs a timer entry, not a thread, and thousands of requests can wait at
 * once.
 */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ptime.h"
#include "base64.h"
#include "callbacks.h"
#include "control.h"
#include "fault.h"
#include "flags.h"
#include "listener.h"
#include "jtext.h"
#include "record_log.h"

#define PROGRAM "herald-test-http-provider"

/* How long shutdown waits for suspended requests to be answered. */
#define SHUTDOWN_DRAIN_MS 5000
/* How long shutdown goes on sending the status callbacks already due. */
#define SHUTDOWN_CALLBACKS_MS 2000

static volatile sig_atomic_t stop_requested;

typedef enum {
    PROTO_SMS,
    PROTO_PUSH,
    PROTO_TWILIO,
    PROTO_FCM,
    PROTO_NONE,
} proto;

static const char *const proto_names[] = {"sms", "push", "twilio", "fcm", "none"};

typedef struct provider_config {
    const char *listen;
    const char *record;
    bool record_all;
    long keep;
    long threads;
    const char *auth_token;
    const char *twilio_sid;
    const char *twilio_token;
    const char *fcm_token;
    long success_status;
    const char *dead_tokens;
    const char *match;
    fault_settings fault;
    const char *callback_statuses;
    const char *callback_record;
    long callback_queue;
    long callback_threads;
    callbacks_settings callbacks;
} provider_config;

/* A connection waiting for its deadline (latency injection). */
typedef struct delayed {
    int64_t due_ms; /* monotonic */
    struct MHD_Connection *conn;
} delayed;

typedef struct delay_queue {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    delayed *heap; /* min-heap on due_ms */
    size_t count, cap;
    bool stopping;
    pthread_t thread;
} delay_queue;

typedef struct provider {
    provider_config cfg;
    fault *fault;
    record_log *records;
    record_log *callback_log; /* one record per status callback attempt */
    callbacks *callbacks;
    control_counters counters;
    control_api api;
    struct MHD_Daemon *daemon;
    delay_queue delays;

    pthread_mutex_t hang_lock; /* the hung list and the decision to add to it */
    struct MHD_Connection **hung;
    size_t hung_count, hung_cap;

    atomic_bool stopping;
    atomic_long suspended;
    uint64_t id_seed;
} provider;

typedef enum {
    RQ_READING, /* body arriving, or ready to be processed */
    RQ_HUNG,    /* suspended by a hang, not processed yet */
    RQ_DELAYED, /* processed, answer waiting for its deadline */
    RQ_ANSWERED,
} request_state;

/* Per-request state, libmicrohttpd's con_cls. */
typedef struct request {
    int64_t received_ms; /* realtime, for latency measurements */
    request_state state;
    char *body;
    size_t len;
    bool too_large;

    /* The answer, prepared by process() and sent now or after a delay. */
    unsigned status;
    char *answer;
    long retry_after_s;
    const char *www_authenticate;
    long delay_ms;
    callbacks_job *callback; /* submitted once the answer is out */
} request;

/* What one message request carried; strings are borrowed from the parsed
 * JSON, the form or the connection, all alive until process() returns. */
typedef struct message {
    proto proto;
    char account[128]; /* Twilio AccountSid or FCM project from the path */
    const char *idem_header;
    const char *to, *from, *body, *title, *token;
    const char *body_idem, *event_id, *user_id;
    json_t *data;                          /* borrowed */
    const char *status_callback, *service; /* Twilio StatusCallback, MessagingServiceSid */
    char auth_token[256];                  /* Twilio: the one the request carried */
} message;

typedef struct form_field {
    char *name;
    char *value;
} form_field;

typedef struct form {
    form_field *fields;
    size_t count;
} form;

/* ---- small utilities ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* Whether the Content-Type's media type is `type` (parameters ignored). */
static bool content_type_is(struct MHD_Connection *c, const char *type)
{
    const char *ct = header(c, "Content-Type");
    size_t n = strlen(type);
    return ct != NULL && strncasecmp(ct, type, n) == 0 &&
           (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool bearer_is(struct MHD_Connection *c, const char *token)
{
    const char *auth = header(c, "Authorization");
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0')
        return false;
    return token == NULL || strcmp(auth + 7, token) == 0;
}

static void set_answer(request *rq, unsigned status, json_t *body)
{
    free(rq->answer);
    rq->answer = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    rq->status = rq->answer != NULL ? status : 500;
}

/* As set_answer, with the body already serialised. */
static void set_answer_text(request *rq, unsigned status, const char *text)
{
    free(rq->answer);
    rq->answer = strdup(text);
    rq->status = rq->answer != NULL ? status : 500;
}

/* ---- the shapes of errors, per protocol ---- */

static json_t *generic_error(const char *code, const char *text)
{
    return json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", text);
}

static json_t *twilio_error(int code, unsigned status, const char *text)
{
    char more[96];
    snprintf(more, sizeof(more), "https://www.twilio.com/docs/errors/%d", code);
    return json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", text, "more_info", more,
                     "status", (int)status);
}

static const char *fcm_status_name(unsigned status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 500:
        return "INTERNAL";
    case 503:
        return "UNAVAILABLE";
    default:
        return status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

static const char *fcm_error_code(unsigned status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "THIRD_PARTY_AUTH_ERROR";
    case 403:
        return "SENDER_ID_MISMATCH";
    case 404:
        return "UNREGISTERED";
    case 429:
        return "QUOTA_EXCEEDED";
    case 503:
        return "UNAVAILABLE";
    default:
        return status >= 500 ? "INTERNAL" : "UNSPECIFIED_ERROR";
    }
}

static json_t *fcm_error(unsigned status, const char *text, const char *error_code)
{
    return json_pack("{s:{s:i, s:s, s:s, s:[{s:s, s:s}]}}", "error", "code", (int)status, "message",
                     text, "status", fcm_status_name(status), "details", "@type",
                     "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode",
                     error_code);
}

/* A rejection (400/401/413) in the protocol's own shape. */
static void reject(provider *p, request *rq, const message *m, unsigned status, const char *code,
                   const char *why)
{
    atomic_fetch_add(&p->counters.rejected, 1);
    if (status == 401)
        atomic_fetch_add(&p->counters.auth_failed, 1);
    switch (m->proto) {
    case PROTO_TWILIO: {
        /* Twilio's own codes where it has one, else 20000 + status. */
        int tcode = status == 401                          ? 20003
                    : strcmp(code, "to") == 0              ? 21604
                    : strcmp(code, "from") == 0            ? 21603
                    : strcmp(code, "body") == 0            ? 21602
                    : strcmp(code, "status_callback") == 0 ? 21609
                                                           : 20000 + (int)status;
        if (status == 401)
            rq->www_authenticate = "Basic realm=\"Twilio API\"";
        set_answer(rq, status, twilio_error(tcode, status, why));
        break;
    }
    case PROTO_FCM:
        set_answer(rq, status, fcm_error(status, why, fcm_error_code(status)));
        break;
    default:
        set_answer(rq, status, generic_error(code, why));
        break;
    }
}

/* ---- request parsing and validation ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static char *url_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (s[i] == '%') {
            free(out);
            return NULL;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void form_free(form *f)
{
    for (size_t i = 0; i < f->count; i++) {
        free(f->fields[i].name);
        free(f->fields[i].value);
    }
    free(f->fields);
    f->fields = NULL;
    f->count = 0;
}

/* Parses application/x-www-form-urlencoded; -1 on bad percent-encoding. */
static int form_parse(const char *body, size_t len, form *f)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && body[eq] != '=')
                eq++;
            form_field *nf = realloc(f->fields, (f->count + 1) * sizeof(*nf));
            if (nf == NULL)
                return -1;
            f->fields = nf;
            form_field *fld = &f->fields[f->count];
            fld->name = url_decode(body + i, eq - i);
            fld->value = eq < end ? url_decode(body + eq + 1, end - eq - 1) : strdup("");
            f->count++;
            if (fld->name == NULL || fld->value == NULL)
                return -1;
        }
        i = end + 1;
    }
    return 0;
}

static const char *form_get(const form *f, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->fields[i].name, name) == 0)
            v = f->fields[i].value;
    return v;
}

/* Reads a string member; required ones must exist (and be non-empty when
 * asked).  Returns -1 with why filled. */
static int get_field(const json_t *o, const char *key, bool required, bool nonempty,
                     const char **out, char *why, size_t whylen)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        snprintf(why, whylen, "missing field \"%s\"", key);
        return -1;
    }
    if (!json_is_string(v)) {
        snprintf(why, whylen, "field \"%s\" must be a string", key);
        return -1;
    }
    if (nonempty && json_string_length(v) == 0) {
        snprintf(why, whylen, "field \"%s\" must not be empty", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* /sms and /push: the contract's JSON, every listed field required. */
static int parse_generic(message *m, const json_t *o, char *why, size_t whylen)
{
    if (m->proto == PROTO_SMS) {
        if (get_field(o, "to", true, true, &m->to, why, whylen) != 0 ||
            get_field(o, "body", true, true, &m->body, why, whylen) != 0)
            return -1;
    } else {
        if (get_field(o, "token", true, true, &m->token, why, whylen) != 0 ||
            get_field(o, "title", true, false, &m->title, why, whylen) != 0 ||
            get_field(o, "body", true, false, &m->body, why, whylen) != 0)
            return -1;
        json_t *data = json_object_get(o, "data");
        if (!json_is_object(data)) {
            snprintf(why, whylen, "field \"data\" must be an object");
            return -1;
        }
        m->data = data;
    }
    if (get_field(o, "idempotency_key", true, true, &m->body_idem, why, whylen) != 0 ||
        get_field(o, "event_id", true, true, &m->event_id, why, whylen) != 0 ||
        get_field(o, "user_id", true, true, &m->user_id, why, whylen) != 0)
        return -1;
    return 0;
}

/* FCM HTTP v1: {"message":{"token"|"topic"|"condition", "notification",
 * "data" with string values, ...}}; unknown names are rejected as FCM
 * does. */
static int parse_fcm(message *m, const json_t *o, char *why, size_t whylen)
{
    static const char *const top_names[] = {"message", "validate_only", NULL};
    static const char *const msg_names[] = {
        "name",  "data",  "notification", "android",     "webpush", "apns",
        "token", "topic", "condition",    "fcm_options", NULL};
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)o, key, v)
    {
        bool ok = false;
        for (const char *const *n = top_names; *n != NULL; n++)
            ok = ok || strcmp(*n, key) == 0;
        if (!ok) {
            snprintf(why, whylen, "Invalid JSON payload received. Unknown name \"%s\"", key);
            return -1;
        }
    }
    json_t *msg = json_object_get(o, "message");
    if (!json_is_object(msg)) {
        snprintf(why, whylen, "Request contains an invalid argument: \"message\" is required");
        return -1;
    }
    json_object_foreach(msg, key, v)
    {
        bool ok = false;
        for (const char *const *n = msg_names; *n != NULL; n++)
            ok = ok || strcmp(*n, key) == 0;
        if (!ok) {
            snprintf(why, whylen, "Invalid JSON payload received. Unknown name \"%s\" at 'message'",
                     key);
            return -1;
        }
    }
    int targets = 0;
    const char *topic = NULL, *condition = NULL;
    if (get_field(msg, "token", false, true, &m->token, why, whylen) != 0 ||
        get_field(msg, "topic", false, true, &topic, why, whylen) != 0 ||
        get_field(msg, "condition", false, true, &condition, why, whylen) != 0)
        return -1;
    targets = (m->token != NULL) + (topic != NULL) + (condition != NULL);
    if (targets != 1) {
        snprintf(why, whylen,
                 "Request contains an invalid argument: exactly one of "
                 "message.token, message.topic, message.condition is required");
        return -1;
    }
    json_t *notif = json_object_get(msg, "notification");
    if (notif != NULL) {
        if (!json_is_object(notif) ||
            get_field(notif, "title", false, false, &m->title, why, whylen) != 0 ||
            get_field(notif, "body", false, false, &m->body, why, whylen) != 0) {
            if (!json_is_object(notif))
                snprintf(why, whylen, "Invalid value at 'message.notification'");
            return -1;
        }
    }
    json_t *data = json_object_get(msg, "data");
    if (data != NULL) {
        if (!json_is_object(data)) {
            snprintf(why, whylen, "Invalid value at 'message.data'");
            return -1;
        }
        json_object_foreach(data, key, v)
        {
            if (!json_is_string(v)) {
                snprintf(why, whylen, "Invalid value at 'message.data[%s].value' (TYPE_STRING)",
                         key);
                return -1;
            }
        }
        m->data = data;
        if (get_field(data, "idempotency_key", false, false, &m->body_idem, why, whylen) != 0 ||
            get_field(data, "event_id", false, false, &m->event_id, why, whylen) != 0 ||
            get_field(data, "user_id", false, false, &m->user_id, why, whylen) != 0)
            return -1;
    }
    if (m->token == NULL) {
        /* Herald sends to devices only; a topic send is still accepted. */
        m->token = topic != NULL ? topic : condition;
    }
    return 0;
}

/* Checks Twilio basic auth: the user must be the path's AccountSid and,
 * when configured, the SID and token must match.  The token is kept: it
 * signs the message's status callbacks. */
static bool twilio_auth_ok(provider *p, struct MHD_Connection *c, message *m)
{
    bool ok = false;
    const char *auth = header(c, "Authorization");
    unsigned char *dec = NULL;
    size_t declen = 0;
    if (auth == NULL || strncasecmp(auth, "Basic ", 6) != 0)
        goto out;
    dec = base64_decode(auth + 6, strlen(auth + 6), &declen);
    if (dec == NULL || memchr(dec, '\0', declen) != NULL)
        goto out;
    char *colon = strchr((char *)dec, ':');
    if (colon == NULL)
        goto out;
    *colon = '\0';
    const char *user = (const char *)dec, *pass = colon + 1;
    if (strcmp(user, m->account) != 0)
        goto out;
    if (p->cfg.twilio_sid != NULL && strcmp(user, p->cfg.twilio_sid) != 0)
        goto out;
    if (p->cfg.twilio_token != NULL && strcmp(pass, p->cfg.twilio_token) != 0)
        goto out;
    ok = *pass != '\0';
    snprintf(m->auth_token, sizeof(m->auth_token), "%s", pass);

out:
    free(dec);
    return ok;
}

/* Splits the path into a protocol and, for Twilio and FCM, the account. */
static proto route(const char *url, message *m)
{
    static const char twilio_prefix[] = "/2010-04-01/Accounts/";
    static const char twilio_suffix[] = "/Messages.json";
    static const char fcm_prefix[] = "/v1/projects/";
    static const char fcm_suffix[] = "/messages:send";
    size_t len = strlen(url);

    if (strcmp(url, "/sms") == 0)
        return PROTO_SMS;
    if (strcmp(url, "/push") == 0)
        return PROTO_PUSH;
    size_t pl = sizeof(twilio_prefix) - 1, sl = sizeof(twilio_suffix) - 1;
    if (len > pl + sl && strncmp(url, twilio_prefix, pl) == 0 &&
        strcmp(url + len - sl, twilio_suffix) == 0 && len - pl - sl < sizeof(m->account) &&
        memchr(url + pl, '/', len - pl - sl) == NULL) {
        memcpy(m->account, url + pl, len - pl - sl);
        m->account[len - pl - sl] = '\0';
        return PROTO_TWILIO;
    }
    pl = sizeof(fcm_prefix) - 1;
    sl = sizeof(fcm_suffix) - 1;
    if (len > pl + sl && strncmp(url, fcm_prefix, pl) == 0 &&
        strcmp(url + len - sl, fcm_suffix) == 0 && len - pl - sl < sizeof(m->account) &&
        memchr(url + pl, '/', len - pl - sl) == NULL) {
        memcpy(m->account, url + pl, len - pl - sl);
        m->account[len - pl - sl] = '\0';
        return PROTO_FCM;
    }
    return PROTO_NONE;
}

/* ---- answers ---- */

static void answer_injected(request *rq, const message *m, const fault_decision *d)
{
    unsigned st = (unsigned)d->status;
    char why[96];
    snprintf(why, sizeof(why), "injected failure (status %u)", st);
    switch (m->proto) {
    case PROTO_TWILIO:
        set_answer(rq, st, twilio_error(20000 + (int)st, st, why));
        break;
    case PROTO_FCM:
        set_answer(rq, st, fcm_error(st, why, fcm_error_code(st)));
        break;
    default:
        set_answer(rq, st, generic_error(st == 429 ? "rate_limited" : "injected_failure", why));
        break;
    }
    rq->retry_after_s = d->retry_after_s;
}

/* The Twilio message SID of the record seq: "SM" and 32 hex digits. */
static void twilio_sid(const provider *p, long seq, char sid[40])
{
    uint64_t a = mix64(p->id_seed ^ (uint64_t)seq), b = mix64(a ^ 0x5bd1e995ull);
    snprintf(sid, 40, "SM%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static void answer_success(provider *p, request *rq, const message *m, long seq, bool duplicate)
{
    char id[64];
    uint64_t a = mix64(p->id_seed ^ (uint64_t)seq);
    switch (m->proto) {
    case PROTO_TWILIO: {
        char sid[40], uri[256], media[288], date[64];
        twilio_sid(p, seq, sid);
        snprintf(uri, sizeof(uri), "/2010-04-01/Accounts/%s/Messages/%s.json", m->account, sid);
        snprintf(media, sizeof(media), "/2010-04-01/Accounts/%s/Messages/%s/Media.json", m->account,
                 sid);
        time_t now = (time_t)(rq->received_ms / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
        set_answer(rq, 201,
                   json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:s, s:s, s:n, s:n, s:s?, s:s?, "
                             "s:s, s:s, s:n, s:s, s:s, s:s, s:{s:s}, s:s}",
                             "account_sid", m->account, "api_version", "2010-04-01", "body",
                             m->body, "date_created", date, "date_updated", date, "date_sent",
                             "direction", "outbound-api", "num_segments", "1", "error_code",
                             "error_message", "from", m->from, "messaging_service_sid",
                             (const char *)NULL, "num_media", "0", "status", "queued", "price",
                             "price_unit", "USD", "sid", sid, "to", m->to, "subresource_uris",
                             "media", media, "uri", uri));
        break;
    }
    case PROTO_FCM: {
        char name[256];
        snprintf(name, sizeof(name), "projects/%s/messages/0:%llu%%%016llx", m->account,
                 (unsigned long long)seq, (unsigned long long)a);
        set_answer(rq, 200, json_pack("{s:s}", "name", name));
        break;
    }
    default:
        /* The text json_pack("{s:s, s:s, s:b}") and a compact dump would give,
         * written directly: this answer is the one a benchmark gets. */
        char text[128];
        snprintf(id, sizeof(id), "msg-%016llx", (unsigned long long)a);
        snprintf(text, sizeof(text), "{\"id\":\"%s\",\"status\":\"accepted\",\"duplicate\":%s}", id,
                 duplicate ? "true" : "false");
        set_answer_text(rq, (unsigned)p->cfg.success_status, text);
        break;
    }
}

/* ,"key":"value" (no comma first), left out when value is NULL. */
static void text_member(jtext *t, const char *key, const char *v)
{
    if (v == NULL)
        return;
    jt_str(t, t->len > 1 ? ",\"" : "\"");
    jt_str(t, key);
    jt_str(t, "\":");
    jt_wire(t, v, strlen(v), NULL);
}

/*
 * The record of one message, what the provider saw, as tests assert it:
 * written as JSON text directly (building a jansson object first cost more
 * than the rest of a request).  Returns 0, or -1 when out of memory.
 */
static int record_text(const request *rq, const message *m, const char *url, unsigned status,
                       const char *outcome, jtext *t)
{
    jt_str(t, "{");
    text_member(t, "protocol", proto_names[m->proto]);
    text_member(t, "path", url);
    text_member(t, "idempotency_key", m->idem_header);
    text_member(t, "body_idempotency_key", m->body_idem);
    text_member(t, "to", m->to);
    text_member(t, "from", m->from);
    text_member(t, "token", m->token);
    text_member(t, "title", m->title);
    text_member(t, "body", m->body);
    text_member(t, "event_id", m->event_id);
    text_member(t, "user_id", m->user_id);
    text_member(t, "status_callback", m->status_callback);
    if (m->data != NULL) {
        char *data = json_dumps(m->data, JSON_COMPACT);
        if (data == NULL)
            return -1;
        jt_str(t, ",\"data\":");
        jt_str(t, data);
        free(data);
    }
    if (m->proto == PROTO_TWILIO)
        text_member(t, "account_sid", m->account);
    if (m->proto == PROTO_FCM)
        text_member(t, "project", m->account);
    jt_str(t, ",\"received_at_ms\":");
    jt_long(t, (long long)rq->received_ms);
    jt_str(t, ",\"status\":");
    jt_long(t, (long long)status);
    text_member(t, "outcome", outcome);
    jt_str(t, "}");
    return t->failed ? -1 : 0;
}

/* Appends the record (key: duplicate tracking); returns its seq, -1 when out of memory. */
static long record(provider *p, const request *rq, const message *m, const char *url,
                   unsigned status, const char *outcome, const char *key, bool *duplicate)
{
    jtext t = {0};
    long seq = -1;
    if (record_text(rq, m, url, status, outcome, &t) == 0)
        seq = record_log_append_text(p->records, t.p, t.len, key, duplicate);
    free(t.p);
    return seq;
}

/* Records an accepted message; returns its seq, -1 when out of memory. */
static long record_accepted(provider *p, const request *rq, const message *m, const char *url,
                            unsigned status, const char *key, bool *duplicate)
{
    return record(p, rq, m, url, status, p->cfg.record_all ? "accepted" : NULL, key, duplicate);
}

/* With --record-all, failures are recorded too (without duplicate tracking). */
static void record_failure(provider *p, const request *rq, const message *m, const char *url,
                           const char *outcome)
{
    if (p->cfg.record_all)
        (void)record(p, rq, m, url, rq->status, outcome, NULL, NULL);
}

/*
 * Decides the answer of one complete message request into rq: route, method,
 * auth, size, content type, body, then injected failures, dead tokens, and
 * finally acceptance (recorded).
 */
static void process(provider *p, struct MHD_Connection *c, const char *url, const char *method,
                    request *rq)
{
    message m;
    form f = {0};
    json_t *body = NULL;
    char why[256];
    const char *key = NULL;

    memset(&m, 0, sizeof(m));
    atomic_fetch_add(&p->counters.received, 1);
    m.proto = route(url, &m);
    m.idem_header = header(c, "Idempotency-Key");

    if (m.proto == PROTO_NONE) {
        reject(p, rq, &m, 404, "not_found", "no such path");
        goto out;
    }
    if (strcmp(method, "POST") != 0) {
        reject(p, rq, &m, 405, "method_not_allowed", "use POST");
        goto out;
    }
    switch (m.proto) {
    case PROTO_SMS:
    case PROTO_PUSH:
        if (p->cfg.auth_token != NULL && !bearer_is(c, p->cfg.auth_token)) {
            reject(p, rq, &m, 401, "unauthorized", "missing or wrong bearer token");
            goto out;
        }
        break;
    case PROTO_TWILIO:
        if (!twilio_auth_ok(p, c, &m)) {
            reject(p, rq, &m, 401, "unauthorized", "Authenticate");
            goto out;
        }
        break;
    case PROTO_FCM:
        if (!bearer_is(c, p->cfg.fcm_token)) {
            reject(p, rq, &m, 401, "unauthorized",
                   "Request had invalid authentication credentials. Expected OAuth 2 access "
                   "token, login cookie or other valid authentication credential.");
            goto out;
        }
        break;
    case PROTO_NONE:
        break;
    }
    if (rq->too_large) {
        reject(p, rq, &m, 413, "too_large", "request body too large");
        goto out;
    }

    if (m.proto == PROTO_TWILIO) {
        if (!content_type_is(c, "application/x-www-form-urlencoded") ||
            form_parse(rq->body != NULL ? rq->body : "", rq->len, &f) != 0) {
            reject(p, rq, &m, 400, "invalid_request",
                   "expected an application/x-www-form-urlencoded body");
            goto out;
        }
        m.to = form_get(&f, "To");
        m.from = form_get(&f, "From");
        m.body = form_get(&f, "Body");
        const char *service = form_get(&f, "MessagingServiceSid");
        m.service = service != NULL && *service != '\0' ? service : NULL;
        m.status_callback = form_get(&f, "StatusCallback");
        if (m.to == NULL || *m.to == '\0') {
            reject(p, rq, &m, 400, "to", "A 'To' phone number is required.");
            goto out;
        }
        if ((m.from == NULL || *m.from == '\0') && (service == NULL || *service == '\0')) {
            reject(p, rq, &m, 400, "from", "A 'From' phone number is required.");
            goto out;
        }
        if (m.body == NULL || *m.body == '\0') {
            reject(p, rq, &m, 400, "body", "Message body is required.");
            goto out;
        }
        if (m.status_callback != NULL && strncmp(m.status_callback, "http://", 7) != 0 &&
            strncmp(m.status_callback, "https://", 8) != 0) {
            reject(p, rq, &m, 400, "status_callback", "The StatusCallback URL is not valid.");
            goto out;
        }
        /* Twilio's own header for idempotent retries stands in for ours. */
        if (m.idem_header == NULL)
            m.idem_header = header(c, "I-Twilio-Idempotency-Token");
        key = m.idem_header;
    } else {
        json_error_t jerr;
        if (!content_type_is(c, "application/json")) {
            reject(p, rq, &m, 400, "invalid_content_type", "Content-Type must be application/json");
            goto out;
        }
        if ((m.proto == PROTO_SMS || m.proto == PROTO_PUSH) && m.idem_header == NULL) {
            reject(p, rq, &m, 400, "missing_idempotency_key", "Idempotency-Key header is required");
            goto out;
        }
        body = json_loadb(rq->body != NULL ? rq->body : "", rq->len, 0, &jerr);
        if (!json_is_object(body)) {
            snprintf(why, sizeof(why), "body must be a JSON object%s%s", body == NULL ? ": " : "",
                     body == NULL ? jerr.text : "");
            reject(p, rq, &m, 400, "invalid_json", why);
            goto out;
        }
        int rc = m.proto == PROTO_FCM ? parse_fcm(&m, body, why, sizeof(why))
                                      : parse_generic(&m, body, why, sizeof(why));
        if (rc != 0) {
            reject(p, rq, &m, 400, "invalid_request", why);
            goto out;
        }
        key = m.idem_header != NULL ? m.idem_header : m.body_idem;
    }

    fault_decision d;
    fault_decide(p->fault, url, &d);
    rq->delay_ms = d.delay_ms;
    if (d.status != 0) {
        atomic_fetch_add(&p->counters.failed_injected, 1);
        answer_injected(rq, &m, &d);
        record_failure(p, rq, &m, url, "injected");
        goto out;
    }
    int dead_status = 404;
    if ((m.proto == PROTO_PUSH || m.proto == PROTO_FCM) &&
        fault_token_dead(p->fault, m.token, &dead_status)) {
        atomic_fetch_add(&p->counters.dead_token, 1);
        if (m.proto == PROTO_FCM)
            set_answer(rq, 404, fcm_error(404, "Requested entity was not found.", "UNREGISTERED"));
        else
            set_answer(rq, (unsigned)dead_status,
                       generic_error("unregistered", "the device token is not registered"));
        record_failure(p, rq, &m, url, "dead_token");
        goto out;
    }

    unsigned status = m.proto == PROTO_TWILIO ? 201
                      : m.proto == PROTO_FCM  ? 200
                                              : (unsigned)p->cfg.success_status;
    bool duplicate = false;
    long seq = record_accepted(p, rq, &m, url, status, key, &duplicate);
    if (seq < 0) {
        set_answer(rq, 500, generic_error("internal", "out of memory"));
        goto out;
    }
    atomic_fetch_add(&p->counters.accepted, 1);
    answer_success(p, rq, &m, seq, duplicate);
    if (m.proto == PROTO_TWILIO && m.status_callback != NULL && *m.status_callback != '\0') {
        char sid[40];
        twilio_sid(p, seq, sid);
        callbacks_message cm = {.url = m.status_callback,
                                .auth_token = m.auth_token,
                                .message_sid = sid,
                                .account_sid = m.account,
                                .from = m.from != NULL && *m.from != '\0' ? m.from : NULL,
                                .to = m.to,
                                .messaging_service_sid = m.service};
        rq->callback = callbacks_job_new(&cm);
        if (rq->callback == NULL)
            fprintf(stderr, PROGRAM ": out of memory: no status callbacks for %s\n", sid);
    }

out:
    json_decref(body);
    form_free(&f);
}

/* ---- suspension: delays and hangs ---- */

static void heap_swap(delayed *a, delayed *b)
{
    delayed t = *a;
    *a = *b;
    *b = t;
}

static int delay_push(delay_queue *q, int64_t due_ms, struct MHD_Connection *conn)
{
    if (q->count == q->cap) {
        size_t ncap = q->cap == 0 ? 1024 : q->cap * 2;
        delayed *nh = realloc(q->heap, ncap * sizeof(*nh));
        if (nh == NULL)
            return -1;
        q->heap = nh;
        q->cap = ncap;
    }
    size_t i = q->count++;
    q->heap[i].due_ms = due_ms;
    q->heap[i].conn = conn;
    while (i > 0 && q->heap[(i - 1) / 2].due_ms > q->heap[i].due_ms) {
        heap_swap(&q->heap[(i - 1) / 2], &q->heap[i]);
        i = (i - 1) / 2;
    }
    return 0;
}

static struct MHD_Connection *delay_pop(delay_queue *q)
{
    struct MHD_Connection *conn = q->heap[0].conn;
    q->heap[0] = q->heap[--q->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->count && q->heap[l].due_ms < q->heap[m].due_ms)
            m = l;
        if (r < q->count && q->heap[r].due_ms < q->heap[m].due_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(&q->heap[m], &q->heap[i]);
        i = m;
    }
    return conn;
}

/* Resumes each delayed connection when its deadline passes; on stop,
 * resumes them all at once so the daemon can be stopped. */
static void *delay_thread(void *arg)
{
    provider *p = arg;
    delay_queue *q = &p->delays;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->stopping) {
            while (q->count > 0)
                MHD_resume_connection(delay_pop(q));
            break;
        }
        if (q->count == 0) {
            pthread_cond_wait(&q->wake, &q->lock);
            continue;
        }
        int64_t now = ptime_monotonic_ms();
        if (q->heap[0].due_ms <= now) {
            MHD_resume_connection(delay_pop(q));
            continue;
        }
        int64_t due = q->heap[0].due_ms;
        struct timespec ts = {.tv_sec = (time_t)(due / 1000),
                              .tv_nsec = (long)(due % 1000) * 1000000L};
        (void)pthread_cond_timedwait(&q->wake, &q->lock, &ts);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* Suspends the connection until rq->delay_ms from now; false when the
 * answer must go out at once (stopping, or out of memory). */
static bool delay_park(provider *p, struct MHD_Connection *c, request *rq)
{
    delay_queue *q = &p->delays;
    bool parked = false;
    pthread_mutex_lock(&q->lock);
    if (!q->stopping && delay_push(q, ptime_monotonic_ms() + rq->delay_ms, c) == 0) {
        /* Under the lock, so the delay thread cannot resume it first. */
        MHD_suspend_connection(c);
        atomic_fetch_add(&p->suspended, 1);
        rq->state = RQ_DELAYED;
        pthread_cond_signal(&q->wake);
        parked = true;
    }
    pthread_mutex_unlock(&q->lock);
    return parked;
}

/* Holds the request while a hang covers its path. */
static bool hang_park(provider *p, struct MHD_Connection *c, const char *url, request *rq)
{
    bool parked = false;
    pthread_mutex_lock(&p->hang_lock);
    if (!atomic_load(&p->stopping) && fault_hanging(p->fault, url)) {
        if (p->hung_count == p->hung_cap) {
            size_t ncap = p->hung_cap == 0 ? 256 : p->hung_cap * 2;
            struct MHD_Connection **nh = realloc(p->hung, ncap * sizeof(*nh));
            if (nh == NULL)
                goto out;
            p->hung = nh;
            p->hung_cap = ncap;
        }
        p->hung[p->hung_count++] = c;
        MHD_suspend_connection(c);
        atomic_fetch_add(&p->suspended, 1);
        rq->state = RQ_HUNG;
        parked = true;
    }

out:
    pthread_mutex_unlock(&p->hang_lock);
    return parked;
}

/* Resumes every hung request: each one looks at the hang again and parks
 * anew if it still applies.  Called after each control change and on stop. */
static void hang_release_all(void *arg)
{
    provider *p = arg;
    pthread_mutex_lock(&p->hang_lock);
    for (size_t i = 0; i < p->hung_count; i++)
        MHD_resume_connection(p->hung[i]);
    p->hung_count = 0;
    pthread_mutex_unlock(&p->hang_lock);
}

static void add_stats(json_t *stats, void *arg)
{
    provider *p = arg;
    callbacks_stats_to_json(p->callbacks, stats);
    pthread_mutex_lock(&p->hang_lock);
    json_object_set_new(stats, "hung", json_integer((json_int_t)p->hung_count));
    pthread_mutex_unlock(&p->hang_lock);
    pthread_mutex_lock(&p->delays.lock);
    json_object_set_new(stats, "delayed", json_integer((json_int_t)p->delays.count));
    pthread_mutex_unlock(&p->delays.lock);
}

static int callbacks_apply(void *arg, const json_t *req, bool reset, bool check_only, char *err,
                           size_t errlen)
{
    provider *p = arg;
    return callbacks_apply_json(p->callbacks, req, reset, check_only, err, errlen);
}

static void callbacks_settings_shown(json_t *settings, void *arg)
{
    provider *p = arg;
    callbacks_settings_to_json(p->callbacks, settings);
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result send_answer(struct MHD_Connection *c, request *rq)
{
    const char *text = rq->answer != NULL ? rq->answer : "{}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (rq->retry_after_s > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%ld", rq->retry_after_s);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    if (rq->www_authenticate != NULL)
        MHD_add_response_header(r, "WWW-Authenticate", rq->www_authenticate);
    enum MHD_Result ret = MHD_queue_response(c, rq->status != 0 ? rq->status : 500, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    provider *p = cls;
    request *rq = *con_cls;

    if (rq == NULL) {
        rq = calloc(1, sizeof(*rq));
        if (rq == NULL)
            return MHD_NO;
        rq->received_ms = ptime_realtime_ms();
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (rq->too_large || rq->len + n > CONTROL_MAX_BODY) {
            rq->too_large = true;
            return MHD_YES;
        }
        char *nb = realloc(rq->body, rq->len + n + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + rq->len, upload_data, n);
        nb[rq->len + n] = '\0';
        rq->body = nb;
        rq->len += n;
        return MHD_YES;
    }

    switch (rq->state) {
    case RQ_DELAYED:
        atomic_fetch_sub(&p->suspended, 1);
        rq->state = RQ_ANSWERED;
        return send_answer(c, rq);
    case RQ_ANSWERED:
        return send_answer(c, rq);
    case RQ_HUNG:
        atomic_fetch_sub(&p->suspended, 1);
        rq->state = RQ_READING;
        if (atomic_load(&p->stopping))
            return control_reply_error(c, 503, "shutting_down", "the provider is stopping");
        break;
    case RQ_READING:
        if (control_path(url)) {
            if (rq->too_large)
                return control_reply_error(c, 413, "too_large", "request body too large");
            return control_handle(&p->api, c, method, url, rq->body, rq->len);
        }
        break;
    }

    if (hang_park(p, c, url, rq))
        return MHD_YES;
    process(p, c, url, method, rq);
    if (rq->delay_ms > 0 && delay_park(p, c, rq))
        return MHD_YES;
    return send_answer(c, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    provider *p = cls;
    request *rq = *con_cls;
    if (rq == NULL)
        return;
    /* A client that left while its request was suspended is dropped on
     * resume without another call of on_request: account for it here. */
    if (rq->state == RQ_HUNG || rq->state == RQ_DELAYED)
        atomic_fetch_sub(&p->suspended, 1);
    /* Twilio reports on a message it took, whether or not its client read the 201. */
    if (rq->callback != NULL)
        callbacks_submit(p->callbacks, &rq->callback);
    free(rq->body);
    free(rq->answer);
    free(rq);
    *con_cls = NULL;
}

/* ---- program ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char usage[] =
    "Usage: " PROGRAM " [flags]\n"
    "\n"
    "A local SMS/push provider for Herald's tests: generic JSON on POST /sms and\n"
    "POST /push, Twilio on POST /2010-04-01/Accounts/{sid}/Messages.json, FCM HTTP v1\n"
    "on POST /v1/projects/{project}/messages:send; control API on /_control,\n"
    "/_records, /_callbacks and /_stats.  A Twilio message with StatusCallback gets\n"
    "Twilio's signed status callbacks.  Prints \"listening on HOST:PORT\" once ready.";

/*
 * Tears down in order: stop parking requests, answer every suspended one,
 * stop the daemon, send the status callbacks already due (for a bounded
 * time), write the last records.  From the stopping flag on,
 * every request is answered at once (no delay, no hang), new connections
 * included, so the drain below ends.  The listening socket stays open until
 * MHD_stop_daemon(): MHD_quiesce_daemon() races libmicrohttpd's own epoll
 * worker threads (both remove the listening socket from a worker's epoll
 * set, and the loser aborts the process with "Failed to remove listen FD
 * from epoll set"), as the gateway found before.
 */
static void provider_stop(provider *p)
{
    atomic_store(&p->stopping, true);
    hang_release_all(p);
    pthread_mutex_lock(&p->delays.lock);
    p->delays.stopping = true;
    pthread_cond_signal(&p->delays.wake);
    pthread_mutex_unlock(&p->delays.lock);
    pthread_join(p->delays.thread, NULL);

    int64_t deadline = ptime_monotonic_ms() + SHUTDOWN_DRAIN_MS;
    while (atomic_load(&p->suspended) > 0 && ptime_monotonic_ms() < deadline) {
        ptime_sleep_ms(5);
    }
    if (atomic_load(&p->suspended) > 0)
        fprintf(stderr, PROGRAM ": %ld requests still suspended at shutdown\n",
                atomic_load(&p->suspended));
    if (p->daemon != NULL)
        MHD_stop_daemon(p->daemon);
    p->daemon = NULL;
    callbacks_stop(p->callbacks, SHUTDOWN_CALLBACKS_MS);
    p->callbacks = NULL;
}

int main(int argc, char **argv)
{
    int exit_code = 1;
    int lfd = -1;
    int port = 0;
    bool delay_started = false;
    bool locks_made = false;
    char err[256];
    provider *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return 1;
    }
    provider_config *cfg = &p->cfg;
    cfg->listen = "127.0.0.1:0";
    cfg->keep = 100000;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = ncpu > 0 ? (ncpu < 64 ? ncpu : 64) : 2;
    cfg->success_status = 202;
    cfg->match = "";
    fault_settings_defaults(FAULT_HTTP, &cfg->fault);
    callbacks_settings_defaults(&cfg->callbacks);
    cfg->callback_statuses = "sent,delivered";
    cfg->callback_queue = 100000;
    cfg->callback_threads = 4;

    const flag_spec flags[] = {
        {"listen", FLAG_STRING, &cfg->listen, "ADDR", "listen on HOST:PORT (port 0: any free port)",
         0, 0},
        {"record", FLAG_STRING, &cfg->record, "FILE",
         "append accepted messages to FILE as JSON lines", 0, 0},
        {"record-all", FLAG_BOOL, &cfg->record_all, NULL,
         "record rejected and failed requests too, with \"outcome\"", 0, 0},
        {"keep", FLAG_LONG, &cfg->keep, "N", "records kept in memory for GET /_records", 0,
         100000000},
        {"threads", FLAG_LONG, &cfg->threads, "N", "server threads", 1, 64},
        {"auth-token", FLAG_STRING, &cfg->auth_token, "T",
         "require Authorization: Bearer T on /sms and /push", 0, 0},
        {"twilio-sid", FLAG_STRING, &cfg->twilio_sid, "SID",
         "Twilio AccountSid accepted (default: any)", 0, 0},
        {"twilio-token", FLAG_STRING, &cfg->twilio_token, "TOK",
         "Twilio AuthToken accepted (default: any)", 0, 0},
        {"fcm-token", FLAG_STRING, &cfg->fcm_token, "T", "FCM bearer token accepted (default: any)",
         0, 0},
        {"success-status", FLAG_LONG, &cfg->success_status, "N",
         "status of an accepted /sms or /push", 200, 299},
        {"latency-ms", FLAG_LONG, &cfg->fault.latency_ms, "N", "added latency per request", 0,
         600000},
        {"latency-jitter-ms", FLAG_LONG, &cfg->fault.latency_jitter_ms, "N",
         "uniform extra latency 0..N", 0, 600000},
        {"fail-status", FLAG_LONG, &cfg->fault.fail_status, "N", "status of injected failures", 400,
         599},
        {"fail-count", FLAG_LONG, &cfg->fault.fail_count, "N", "fail the first N requests", 0,
         1000000000},
        {"fail-rate", FLAG_DOUBLE, &cfg->fault.fail_rate, "R",
         "then fail this fraction of requests", 0, 1},
        {"retry-after", FLAG_LONG, &cfg->fault.retry_after_s, "S",
         "Retry-After seconds on injected failures", 0, 86400},
        {"hang", FLAG_BOOL, &cfg->fault.hang, NULL, "hold every request until the hang is lifted",
         0, 0},
        {"dead-tokens", FLAG_STRING, &cfg->dead_tokens, "LIST",
         "comma-separated push tokens answered as dead", 0, 0},
        {"dead-status", FLAG_LONG, &cfg->fault.dead_status, "N",
         "status for a dead token on /push (404 or 410)", 404, 410},
        {"match", FLAG_STRING, &cfg->match, "PREFIX",
         "apply injected behaviour only to paths with this prefix", 0, 0},
        {"callback-statuses", FLAG_STRING, &cfg->callback_statuses, "LIST",
         "Twilio status callbacks sent per message, in order (\"\": none)", 0, 0},
        {"callback-error-code", FLAG_LONG, &cfg->callbacks.error_code, "N",
         "ErrorCode of undelivered and failed callbacks", 0, 99999},
        {"callback-delay-ms", FLAG_LONG, &cfg->callbacks.delay_ms, "N",
         "wait before each status callback", 0, 600000},
        {"callback-duplicate-count", FLAG_LONG, &cfg->callbacks.duplicate_count, "N",
         "send the first N status callbacks twice", 0, 1000000000},
        {"callback-duplicate-rate", FLAG_DOUBLE, &cfg->callbacks.duplicate_rate, "R",
         "then send each one twice with this probability", 0, 1},
        {"callback-reorder-count", FLAG_LONG, &cfg->callbacks.reorder_count, "N",
         "reverse the status callbacks of the first N messages", 0, 1000000000},
        {"callback-reorder-rate", FLAG_DOUBLE, &cfg->callbacks.reorder_rate, "R",
         "then reverse each message's with this probability", 0, 1},
        {"callback-retries", FLAG_LONG, &cfg->callbacks.retries, "N",
         "attempts after a callback not answered 2xx", 0, 10},
        {"callback-retry-ms", FLAG_LONG, &cfg->callbacks.retry_ms, "N",
         "wait before the first retry, doubled for each next", 1, 600000},
        {"callback-timeout-ms", FLAG_LONG, &cfg->callbacks.timeout_ms, "N",
         "limit of one callback attempt", 1, 600000},
        {"callback-queue", FLAG_LONG, &cfg->callback_queue, "N",
         "status callbacks waiting at most (more are dropped)", 1, 10000000},
        {"callback-threads", FLAG_LONG, &cfg->callback_threads, "N",
         "threads sending status callbacks (a message's all by one, in order)", 1,
         CALLBACKS_MAX_THREADS},
        {"callback-record", FLAG_STRING, &cfg->callback_record, "FILE",
         "append each status callback attempt to FILE as JSON lines", 0, 0},
        {NULL, FLAG_BOOL, NULL, NULL, NULL, 0, 0},
    };
    flags_status fs = flags_parse(flags, argc, argv, usage, err, sizeof(err));
    if (fs == FLAGS_HELP) {
        exit_code = 0;
        goto out;
    }
    if (fs == FLAGS_ERROR) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        exit_code = 2;
        goto out;
    }
    if (strlen(cfg->match) >= sizeof(cfg->fault.match)) {
        fprintf(stderr, PROGRAM ": --match: at most %zu bytes\n", sizeof(cfg->fault.match) - 1);
        exit_code = 2;
        goto out;
    }
    snprintf(cfg->fault.match, sizeof(cfg->fault.match), "%s", cfg->match);
    p->fault = fault_new(FAULT_HTTP, &cfg->fault, cfg->dead_tokens, err, sizeof(err));
    if (p->fault == NULL) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        exit_code = 2;
        goto out;
    }
    if (strlen(cfg->callback_statuses) >= sizeof(cfg->callbacks.statuses)) {
        fprintf(stderr, PROGRAM ": --callback-statuses: at most %zu bytes\n",
                sizeof(cfg->callbacks.statuses) - 1);
        exit_code = 2;
        goto out;
    }
    snprintf(cfg->callbacks.statuses, sizeof(cfg->callbacks.statuses), "%s",
             cfg->callback_statuses);
    pthread_mutex_init(&p->hang_lock, NULL);
    pthread_mutex_init(&p->delays.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->delays.wake, &ca);
    pthread_condattr_destroy(&ca);
    locks_made = true;
    p->records = record_log_open(cfg->record, cfg->keep, err, sizeof(err));
    if (p->records == NULL) {
        fprintf(stderr, PROGRAM ": --record: %s\n", err);
        goto out;
    }
    p->callback_log = record_log_open(cfg->callback_record, cfg->keep, err, sizeof(err));
    if (p->callback_log == NULL) {
        fprintf(stderr, PROGRAM ": --callback-record: %s\n", err);
        goto out;
    }
    p->callbacks = callbacks_start(&cfg->callbacks, cfg->callback_queue, cfg->callback_threads,
                                   p->callback_log, err, sizeof(err));
    if (p->callbacks == NULL) {
        /* The settings are the flags': err names the control field
         * ("callback_statuses: ..."), which is the flag with dashes. */
        for (char *ch = err; *ch != '\0' && *ch != ':'; ch++)
            *ch = *ch == '_' ? '-' : *ch;
        fprintf(stderr, PROGRAM ": --%s\n", err);
        exit_code = 2;
        goto out;
    }
    p->api = (control_api){.fault = p->fault,
                           .records = p->records,
                           .counters = &p->counters,
                           .on_change = hang_release_all,
                           .add_stats = add_stats,
                           .callbacks = p->callback_log,
                           .extra_prefix = CALLBACKS_FIELD_PREFIX,
                           .extra_apply = callbacks_apply,
                           .extra_settings = callbacks_settings_shown,
                           .arg = p};
    p->id_seed = (uint64_t)ptime_realtime_ms() ^ ((uint64_t)getpid() << 40);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    listener_raise_fd_limit();

    lfd = listener_open(cfg->listen, &port, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, PROGRAM ": --listen: %s\n", err);
        goto out;
    }
    if (pthread_create(&p->delays.thread, NULL, delay_thread, p) != 0) {
        fprintf(stderr, PROGRAM ": cannot start the delay thread\n");
        goto out;
    }
    delay_started = true;

    /* No MHD_USE_ERROR_LOG: it reports every client that hangs up early,
     * which failure tests do on purpose. */
    unsigned flags_mhd = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO;
    p->daemon = MHD_start_daemon(
        flags_mhd, 0, NULL, NULL, on_request, p, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(cfg->threads > 1 ? cfg->threads : 0),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)16384, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, p, MHD_OPTION_END);
    if (p->daemon == NULL) {
        fprintf(stderr, PROGRAM ": cannot start the HTTP server on %s\n", cfg->listen);
        goto out;
    }
    lfd = -1; /* the daemon owns it now */
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    /* Main loop: a short sleep, then the periodic flush of the records. */
    while (!stop_requested) {
        ptime_sleep_ms(50);
        if (record_log_flush(p->records) != 0)
            fprintf(stderr, PROGRAM ": writing %s: %s\n", cfg->record, strerror(errno));
        if (record_log_flush(p->callback_log) != 0)
            fprintf(stderr, PROGRAM ": writing %s: %s\n", cfg->callback_record, strerror(errno));
    }
    exit_code = 0;

out:
    if (delay_started)
        provider_stop(p);
    callbacks_stop(p->callbacks, 0); /* not started that far */
    if (lfd >= 0)
        close(lfd);
    record_log_close(p->records);
    record_log_close(p->callback_log);
    fault_free(p->fault);
    if (locks_made) {
        pthread_mutex_destroy(&p->hang_lock);
        pthread_mutex_destroy(&p->delays.lock);
        pthread_cond_destroy(&p->delays.wake);
    }
    free(p->hung);
    free(p->delays.heap);
    free(p);
    return exit_code;
}

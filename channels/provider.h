/*
 * provider: the one interface behind which every delivery provider sits.
 *
 * A provider turns one delivery into one request and one request's end into
 * an outcome:
 *
 *   prepare   fills a libcurl easy handle (URL, method, body, headers,
 *             auth) for the message; the sender adds it to its multi handle
 *             and drives many at once.
 *   classify  reads the finished transfer (CURLcode, status, body, the
 *             Retry-After header) and says SENT, TRANSIENT (with the wait
 *             the provider asked for), PERMANENT or DEAD_TOKEN.
 *
 * The file provider has no network: it delivers in send_now() and makes a
 * batch durable in flush() (one fsync per loop pass), and the worker records
 * its outcomes only after the flush.  The inbox provider (the inapp
 * channel) is synchronous too: send_now() commits the message to the
 * user's inbox in PostgreSQL, so it is durable when it returns.
 *
 * The classification rules of docs/interface.md section 6 live in the pure
 * functions provider_classify_http(), provider_classify_smtp() and
 * provider_classify_pg(), which
 * the implementations call, so unit tests cover every status class without
 * a network.
 *
 * Implementations: provider_smtp.c, provider_http.c, provider_twilio.c,
 * provider_fcm.c, provider_file.c, provider_inbox.c.  Ownership: a provider copies its
 * settings; a transfer's buffers belong to the transfer (provider_xfer).
 */
#ifndef HERALD_CHANNELS_PROVIDER_H
#define HERALD_CHANNELS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"
#include "event.h"

#define PROVIDER_MUSTCHECK __attribute__((warn_unused_result))

/* Responses are kept only for their error text and ids. */
#define PROVIDER_RESPONSE_MAX (64u * 1024u)

typedef enum {
    PROVIDER_SENT = 0,
    PROVIDER_TRANSIENT,  /* try again later: retry topic */
    PROVIDER_PERMANENT,  /* will fail again: dead-letter at once */
    PROVIDER_DEAD_TOKEN, /* push token unknown to the provider: delete it, no retry */
} provider_outcome;

typedef struct provider_result {
    provider_outcome outcome;
    int64_t retry_after_ms; /* TRANSIENT: the provider's minimum wait (0: none given) */
    long status;            /* HTTP or SMTP reply code; 0 when there was none */
    bool provider_fault;    /* counts against the breaker (outage, throttling) */
    bool recipient_refused; /* PERMANENT: the address itself was refused (a hard bounce) */
    char message[256];      /* human-readable, for last_error and the DLQ */
    char message_id[128];   /* the provider's id for a sent message, "" when none */
} provider_result;

/* One delivery as providers see it; every string is borrowed for the call. */
typedef struct provider_message {
    const char *channel; /* "email", "sms", "push" or "inapp" */
    const char *idempotency_key;
    const char *event_id;
    const char *user_id;
    const char *to;      /* email address, E.164 number, device token or (inapp) user id */
    const char *subject; /* email subject, push or inapp title; may be NULL */
    const char *body;
    const char *data_json;   /* push, inapp: a JSON object as text; may be NULL */
    const char *event_type;  /* the event's type */
    const char *category;    /* the event's category; may be NULL */
    event_priority priority; /* the event's */
} provider_message;

struct config_kafka_props;
struct list_unsubscribe;

/* Settings of one provider instance (copied by provider_new). */
typedef struct provider_settings {
    const char *channel;         /* "email", "sms", "push" or "inapp" */
    const char *url;             /* endpoint, base URL or smtp(s):// URL */
    const char *auth_token;      /* Bearer token (http, fcm) or Twilio auth token */
    const char *username;        /* SMTP user or Twilio account SID */
    const char *password;        /* SMTP password */
    const char *from;            /* email From or SMS sender */
    const char *project_id;      /* FCM project */
    const char *status_callback; /* Twilio: StatusCallback URL of every message; may be NULL */
    const char *outbox_dir;      /* file provider */
    long timeout_ms;             /* whole transfer */
    long connect_timeout_ms;
    bool insecure_tls;         /* tests only: accept self-signed relays */
    const char *ca_file;       /* SMTP: PEM bundle of the CAs to trust; NULL: the system store */
    bool require_tls;          /* SMTP: smtp:// refuses to go on without STARTTLS */
    const char *database_url;  /* inbox: where the inboxes are */
    const char *kafka_brokers; /* inbox: where inbox.updates is */
    const char *updates_topic; /* inbox: <prefix>inbox.updates */
    /* inbox: librdkafka overrides; borrowed, must outlive the provider */
    const struct config_kafka_props *kafka_props;
    /* SMTP: which emails carry List-Unsubscribe; NULL: none.  Borrowed,
     * must outlive the provider. */
    const struct list_unsubscribe *list_unsubscribe;
    const char *bounce_address; /* SMTP: LOCAL@DOMAIN of the VERP return path; NULL: From */
} provider_settings;

typedef struct provider provider;

/* One transfer in flight.  The sender owns it; prepare() fills it. */
typedef struct provider_xfer {
    CURL *easy;
    struct curl_slist *headers;       /* request headers */
    struct curl_slist *rcpt;          /* SMTP RCPT TO list */
    buf request;                      /* body uploaded or posted */
    size_t upload_pos;                /* read position for uploads */
    buf response;                     /* at most PROVIDER_RESPONSE_MAX */
    char curl_error[CURL_ERROR_SIZE]; /* libcurl's text for a failed transfer (SMTP) */
    char retry_after[128];            /* the Retry-After header, "" when absent */
    provider *prov;
    void *opaque; /* the caller's job */
    int64_t started_ms;
} provider_xfer;

typedef struct provider_ops {
    const char *name; /* "smtp", "http", "twilio", "fcm", "file", "inbox" */
    /*
     * The transfer blocks its thread somewhere even under the multi
     * interface: libcurl 7.88 waits for the reply to SMTP's end of data
     * inside its "done" step.  The sender runs such transfers on threads of
     * their own so one slow relay answer does not stall every other send.
     */
    bool blocking;
    /* Validates settings at startup: err names the missing variable. */
    int (*init)(provider *p, char *err, size_t errlen);
    /* Network providers: set up x->easy (fresh defaults already applied). */
    int (*prepare)(provider *p, const provider_message *m, provider_xfer *x, char *err,
                   size_t errlen);
    void (*classify)(provider *p, provider_xfer *x, CURLcode rc, provider_result *out);
    /* The file and inbox providers: deliver now; durable after flush(). */
    void (*send_now)(provider *p, const provider_message *m, provider_result *out);
    int (*flush)(provider *p, char *err, size_t errlen);
    void (*destroy)(provider *p);
} provider_ops;

/* For implementations only: the instance behind the opaque handle. */
struct provider {
    const provider_ops *ops;
    provider_settings s; /* strings owned by the provider */
    void *impl;          /* the implementation's own state */
};

extern const provider_ops provider_smtp_ops;
extern const provider_ops provider_http_ops;
extern const provider_ops provider_twilio_ops;
extern const provider_ops provider_fcm_ops;
extern const provider_ops provider_file_ops;
extern const provider_ops provider_inbox_ops;

/*
 * Creates the provider called kind ("smtp", "http", "twilio", "fcm",
 * "file", "inbox") for a channel.  Fails when the kind does not serve the channel or
 * a required setting is missing (err names the variable's role, e.g. "url").
 */
provider *provider_new(const char *kind, const provider_settings *s, char *err,
                       size_t errlen) PROVIDER_MUSTCHECK;
void provider_free(provider *p);

const char *provider_name(const provider *p);

/* Network providers go through prepare/classify, the file provider through send_now. */
bool provider_is_async(const provider *p);

/* See provider_ops.blocking. */
bool provider_is_blocking(const provider *p);

int provider_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                     size_t errlen) PROVIDER_MUSTCHECK;
void provider_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out);
void provider_send_now(provider *p, const provider_message *m, provider_result *out);
/* Makes what send_now() wrote durable; a no-op for network providers. */
int provider_flush(provider *p, char *err, size_t errlen) PROVIDER_MUSTCHECK;

/* Whether kind can deliver on channel (e.g. fcm only push, inbox only inapp). */
bool provider_kind_serves(const char *kind, const char *channel);

/* ---------------------------------------------------- helpers for prepare */

/* Sets x up to upload x->request as the body read by libcurl (SMTP). */
void provider_xfer_upload(provider_xfer *x);

/* Appends "Name: value" to x->headers; -1 when out of memory. */
int provider_xfer_header(provider_xfer *x, const char *name, const char *value) PROVIDER_MUSTCHECK;

/* Appends s to out as a JSON string literal (quoted, escaped). */
int provider_json_string(buf *out, const char *s) PROVIDER_MUSTCHECK;

/* Copies the first string member of a JSON object answer named in keys
 * (NULL-terminated) into out; out is "" when there is none. */
void provider_json_id(const char *body, const char *const *keys, char *out, size_t outlen);

/* ------------------------------------------------- pure classification */

/*
 * Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime).  *ms is the wait from now_ms, 0 for a date already
 * past.  Returns -1 when the value is neither.
 */
int provider_parse_retry_after(const char *value, int64_t now_ms, int64_t *ms) PROVIDER_MUSTCHECK;

/*
 * The contract's HTTP rules: transport errors, 408, 429 and 5xx transient
 * (429/503 with Retry-After); 2xx sent; push 404/410 dead token; other
 * statuses permanent.  body may be NULL; it is quoted in the message.
 */
void provider_classify_http(CURLcode rc, long status, const char *retry_after, bool push,
                            const char *body, int64_t now_ms, provider_result *out);

/*
 * SMTP: success sent; a 4xx reply transient; a 5xx reply permanent, except
 * that an authentication failure is the relay's configuration, not the
 * message's, and stays transient (the breaker stops the flood instead);
 * transport errors transient.  A 5xx reply to RCPT TO (libcurl's error
 * text, curl_error, says "RCPT failed") is a hard bounce: the relay refused
 * the address itself, so out->recipient_refused is set.  curl_error may
 * be NULL.
 */
void provider_classify_smtp(CURLcode rc, long reply, const char *curl_error, provider_result *out);

/*
 * PostgreSQL (the inbox): a statement the server refused for the delivery's
 * own sake is permanent — SQLSTATE 23503, a foreign key, means the user
 * does not exist; other class 22 (data) and 23 (integrity) errors too.
 * Anything else (a lost connection: sqlstate "" or class 08, a timeout, a
 * serialisation failure, a shutdown) is transient and the database's fault.
 * user_id and error go into the message.
 */
void provider_classify_pg(const char *sqlstate, const char *user_id, const char *error,
                          provider_result *out);

/* Whether a Twilio error answer says the number itself refuses messages
 * (a hard bounce: invalid, unsubscribed by STOP, not a mobile). */
bool provider_twilio_refuses(const char *body);

const char *provider_outcome_name(provider_outcome o);

#endif

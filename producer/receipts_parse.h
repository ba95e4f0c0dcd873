/*
 * receipts_parse: what the providers' delivery receipts say, parsed
 * (docs/receipts.md).  Each parser turns one provider's callback into
 * receipts, the arguments of herald_receipt_apply (migration 016):
 *
 *   - receipts_form_*: an application/x-www-form-urlencoded body (Twilio);
 *   - receipts_twilio: a Twilio status callback, from its form;
 *   - receipts_http: the generic HTTP provider's JSON callback;
 *   - receipts_sns_*: an Amazon SNS message and the canonical text its
 *     signature covers; receipts_ses: the SES notification it carries.
 *
 * Delivery status notifications (SMTP bounces) are receipts_dsn's.
 * Signatures are checked by receipts_verify.  Pure logic: no I/O.
 */
#ifndef HERALD_RECEIPTS_PARSE_H
#define HERALD_RECEIPTS_PARSE_H

#include "ids.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf; /* common/buf.h */

#define RECEIPTS_ID_MAX      512 /* receipts.receipt_id */
#define RECEIPTS_MESSAGE_MAX 256 /* receipts.message_id */
#define RECEIPTS_REASON_MAX  1024
#define RECEIPTS_ADDRESS_MAX 512
#define RECEIPTS_FORM_MAX    64 /* parameters of a form body */
#define RECEIPTS_SES_MAX     50 /* SES's own limit of recipients per message */

/*
 * One receipt.  status NULL means the callback is one Herald ignores (a
 * Twilio "queued", a DSN "delayed"): answered 2xx and counted, not applied.
 * An empty message_id or key is none; occurred_ms 0 is "when it arrived".
 */
typedef struct receipt {
    char receipt_id[RECEIPTS_ID_MAX + 1];
    char message_id[RECEIPTS_MESSAGE_MAX + 1];
    char key[ID_UUID_SIZE];
    const char *status;      /* sent, delivered, undelivered, bounced, complained */
    const char *bounce_kind; /* permanent, transient, undetermined; NULL */
    char reason[RECEIPTS_REASON_MAX + 1];
    char address[RECEIPTS_ADDRESS_MAX + 1];
    int64_t occurred_ms;
} receipt;

/* ---- form bodies ---- */

typedef struct receipts_form {
    size_t count;
    char *names[RECEIPTS_FORM_MAX]; /* decoded, NUL-terminated, in order of the body */
    char *values[RECEIPTS_FORM_MAX];
    char *storage; /* owned */
} receipts_form;

/*
 * Parses a urlencoded body ('+' is a space, %XX a byte).  -1, with err,
 * on a bad escape, a NUL byte or more than RECEIPTS_FORM_MAX parameters.
 * receipts_form_free() releases the form in every case.
 */
int receipts_form_parse(const char *body, size_t len, receipts_form *f, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void receipts_form_free(receipts_form *f);
/* The first value of name, or NULL. */
const char *receipts_form_get(const receipts_form *f, const char *name);

/* ---- Twilio ---- */

/*
 * The receipt of a Twilio status callback: MessageSid and MessageStatus
 * are required; queued, accepted, sending and scheduled are ignored,
 * failed is undelivered (ErrorCode becomes the reason).  key is the
 * delivery's idempotency key, from the key= of the callback URL the
 * worker gave the message (NULL, or not a UUID: none).
 */
int receipts_twilio(const receipts_form *f, const char *key, receipt *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- the generic HTTP provider ---- */

/*
 * The receipt of a callback {"id","idempotency_key","message_id","status",
 * "bounce_kind","reason","address","occurred_at"} (docs/channels.md): id,
 * idempotency_key (the one Herald sent, a UUID) and status required,
 * bounce_kind only with bounced, occurred_at RFC 3339.
 */
int receipts_http(const json_t *doc, receipt *r, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* ---- Amazon SNS and SES ---- */

typedef enum {
    RECEIPTS_SNS_NOTIFICATION = 0,
    RECEIPTS_SNS_SUBSCRIBE,   /* SubscriptionConfirmation */
    RECEIPTS_SNS_UNSUBSCRIBE, /* UnsubscribeConfirmation */
} receipts_sns_type;

/* An SNS message; the strings point into doc, which it holds a reference to. */
typedef struct receipts_sns {
    json_t *doc;
    receipts_sns_type type;
    int version; /* SignatureVersion: 1 (SHA1withRSA) or 2 (SHA256withRSA) */
    const char *type_name, *message_id, *topic_arn, *message, *timestamp, *signature;
    const char *subject;       /* NULL when absent */
    const char *subscribe_url; /* the confirmations' */
    const char *token;
} receipts_sns;

/* Parses an SNS message body.  -1, with err, when it is not one. */
int receipts_sns_parse(const char *body, size_t len, receipts_sns *m, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void receipts_sns_free(receipts_sns *m);

/* The text SNS signs for m (AWS's documented field order), into out. */
int receipts_sns_string_to_sign(const receipts_sns *m, struct buf *out)
    __attribute__((warn_unused_result));

/*
 * The receipts of an SES notification (m->message): one per recipient
 * of a Bounce, Complaint or Delivery, receipt ids "<sns id>:<recipient>".
 * The delivery's key comes from the sent mail's Message-ID, its message
 * id is SES's.  *n is 0 for a notification of another type (ignored).
 */
int receipts_ses(const receipts_sns *m, receipt *out, size_t max, size_t *n, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

#endif

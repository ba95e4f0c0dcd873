/* receipts_parse: see receipts_parse.h. */
#include "receipts_parse.h"

#include "buf.h"
#include "error.h"
#include "mailkey.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Copies s into out, truncated to fit (receipt fields are bounded by the schema). */
static void copy(char *out, size_t outlen, const char *s)
{
    snprintf(out, outlen, "%s", s != NULL ? s : "");
}

/* ---- form bodies ---- */

int receipts_form_parse(const char *body, size_t len, receipts_form *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    /* Decoding only shrinks: one byte per input byte and a NUL per field. */
    f->storage = malloc(2 * len + 2);
    if (f->storage == NULL)
        return error_set(err, errlen, "out of memory");
    char *p = f->storage;
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        if (end > i) {
            if (f->count == RECEIPTS_FORM_MAX)
                return error_set(err, errlen, "more than %d parameters", RECEIPTS_FORM_MAX);
            const char *eq = memchr(body + i, '=', end - i);
            size_t nl = eq != NULL ? (size_t)(eq - (body + i)) : end - i;
            const char *v = eq != NULL ? eq + 1 : body + end;
            size_t vl = eq != NULL ? (size_t)(body + end - v) : 0;
            f->names[f->count] = p;
            if (id_url_decode(body + i, nl, true, p, nl + 1) != 0)
                return error_set(err, errlen, "a parameter name is badly escaped");
            p += strlen(p) + 1;
            f->values[f->count] = p;
            if (id_url_decode(v, vl, true, p, vl + 1) != 0)
                return error_set(err, errlen, "the value of %s is badly escaped",
                                 f->names[f->count]);
            p += strlen(p) + 1;
            f->count++;
        }
        i = end + 1;
    }
    return 0;
}

void receipts_form_free(receipts_form *f)
{
    free(f->storage);
    memset(f, 0, sizeof *f);
}

const char *receipts_form_get(const receipts_form *f, const char *name)
{
    for (size_t i = 0; i < f->count; i++)
        if (strcmp(f->names[i], name) == 0)
            return f->values[i];
    return NULL;
}

/* ---- Twilio ---- */

int receipts_twilio(const receipts_form *f, const char *key, receipt *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    const char *sid = receipts_form_get(f, "MessageSid");
    const char *st = receipts_form_get(f, "MessageStatus");
    if (sid == NULL)
        sid = receipts_form_get(f, "SmsSid");
    if (st == NULL)
        st = receipts_form_get(f, "SmsStatus");
    if (sid == NULL || sid[0] == '\0' || strlen(sid) > RECEIPTS_MESSAGE_MAX)
        return error_set(err, errlen, "MessageSid is missing or too long");
    if (st == NULL || st[0] == '\0')
        return error_set(err, errlen, "MessageStatus is missing");
    static const struct {
        const char *twilio, *status;
    } map[] = {
        {"queued", NULL},          {"accepted", NULL},
        {"sending", NULL},         {"scheduled", NULL},
        {"sent", "sent"},          {"delivered", "delivered"},
        {"read", "delivered"},     {"undelivered", "undelivered"},
        {"failed", "undelivered"}, {"canceled", NULL},
    };
    size_t i;
    for (i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(st, map[i].twilio) == 0)
            break;
    if (i == sizeof map / sizeof map[0])
        return error_set(err, errlen, "MessageStatus \"%.32s\" is not one Twilio sends", st);
    r->status = map[i].status;
    if (key != NULL && id_is_uuid(key))
        copy(r->key, sizeof r->key, key);
    copy(r->message_id, sizeof r->message_id, sid);
    /* Twilio calls once per status change, and again only as a retry. */
    snprintf(r->receipt_id, sizeof r->receipt_id, "%s:%s", sid, st);
    const char *code = receipts_form_get(f, "ErrorCode");
    if (code != NULL && code[0] != '\0')
        snprintf(r->reason, sizeof r->reason, "twilio error %.32s (%s)", code, st);
    copy(r->address, sizeof r->address, receipts_form_get(f, "To"));
    return 0;
}

/* ---- the generic HTTP provider ---- */

static const char *const statuses[] = {"sent",    "delivered",  "undelivered",
                                       "bounced", "complained", NULL};
static const char *const kinds[] = {"permanent", "transient", "undetermined", NULL};

/* The entry of names equal to s, or NULL. */
static const char *one_of(const char *const *names, const char *s)
{
    for (size_t i = 0; s != NULL && names[i] != NULL; i++)
        if (strcmp(names[i], s) == 0)
            return names[i];
    return NULL;
}

/* doc's optional string field into *out (NULL when absent); -1 when not a string. */
static int opt_string(const json_t *doc, const char *name, const char **out)
{
    json_t *v = json_object_get(doc, name);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    *out = json_string_value(v);
    return 0;
}

int receipts_http(const json_t *doc, receipt *r, char *err, size_t errlen)
{
    static const char *const fields[] = {"id",          "message_id",      "status",
                                         "bounce_kind", "reason",          "address",
                                         "occurred_at", "idempotency_key", NULL};
    const char *v[8];
    memset(r, 0, sizeof *r);
    if (!json_is_object(doc))
        return error_set(err, errlen, "the body must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)doc, key, val)
    {
        (void)val;
        if (one_of(fields, key) == NULL)
            return error_set(err, errlen, "unknown field \"%.64s\"", key);
    }
    for (size_t i = 0; fields[i] != NULL; i++)
        if (opt_string(doc, fields[i], &v[i]) != 0)
            return error_set(err, errlen, "%s must be a string", fields[i]);
    if (v[0] == NULL || v[0][0] == '\0' || strlen(v[0]) > RECEIPTS_ID_MAX)
        return error_set(err, errlen, "id is required, at most %d bytes", RECEIPTS_ID_MAX);
    if (v[7] == NULL || !id_is_uuid(v[7]))
        return error_set(err, errlen, "idempotency_key is required: the one Herald sent");
    if (v[1] != NULL && strlen(v[1]) > RECEIPTS_MESSAGE_MAX)
        return error_set(err, errlen, "message_id is at most %d bytes", RECEIPTS_MESSAGE_MAX);
    r->status = one_of(statuses, v[2]);
    if (r->status == NULL)
        return error_set(err, errlen,
                         "status must be sent, delivered, undelivered, bounced or complained");
    if (v[3] != NULL) {
        r->bounce_kind = one_of(kinds, v[3]);
        if (r->bounce_kind == NULL || strcmp(r->status, "bounced") != 0)
            return error_set(err, errlen,
                             "bounce_kind is permanent, transient or undetermined, "
                             "with status bounced only");
    } else if (strcmp(r->status, "bounced") == 0) {
        r->bounce_kind = "undetermined";
    }
    if (v[6] != NULL && timeutil_parse_rfc3339(v[6], &r->occurred_ms, NULL, 0) != 0)
        return error_set(err, errlen, "occurred_at must be an RFC 3339 time");
    copy(r->receipt_id, sizeof r->receipt_id, v[0]);
    copy(r->key, sizeof r->key, v[7]);
    copy(r->message_id, sizeof r->message_id, v[1]);
    copy(r->reason, sizeof r->reason, v[4]);
    copy(r->address, sizeof r->address, v[5]);
    return 0;
}

/* ---- Amazon SNS ---- */

int receipts_sns_parse(const char *body, size_t len, receipts_sns *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    m->doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(m->doc))
        return error_set(err, errlen, "not an SNS message: the body is not a JSON object");
    const char *version = NULL;
    struct {
        const char *name;
        const char **out;
        bool required;
    } f[] = {
        {"Type", &m->type_name, true},
        {"MessageId", &m->message_id, true},
        {"TopicArn", &m->topic_arn, true},
        {"Message", &m->message, true},
        {"Timestamp", &m->timestamp, true},
        {"Signature", &m->signature, true},
        {"SignatureVersion", &version, true},
        {"Subject", &m->subject, false},
        {"SubscribeURL", &m->subscribe_url, false},
        {"Token", &m->token, false},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (opt_string(m->doc, f[i].name, f[i].out) != 0 || (f[i].required && *f[i].out == NULL))
            return error_set(err, errlen, "not an SNS message: %s is missing or not a string",
                             f[i].name);
    }
    if (strcmp(m->type_name, "Notification") == 0)
        m->type = RECEIPTS_SNS_NOTIFICATION;
    else if (strcmp(m->type_name, "SubscriptionConfirmation") == 0)
        m->type = RECEIPTS_SNS_SUBSCRIBE;
    else if (strcmp(m->type_name, "UnsubscribeConfirmation") == 0)
        m->type = RECEIPTS_SNS_UNSUBSCRIBE;
    else
        return error_set(err, errlen, "unknown SNS message Type \"%.40s\"", m->type_name);
    if (m->type != RECEIPTS_SNS_NOTIFICATION && (m->subscribe_url == NULL || m->token == NULL))
        return error_set(err, errlen, "an SNS %s without SubscribeURL or Token", m->type_name);
    if (strcmp(version, "1") == 0)
        m->version = 1;
    else if (strcmp(version, "2") == 0)
        m->version = 2;
    else
        return error_set(err, errlen, "SignatureVersion must be 1 or 2");
    return 0;
}

void receipts_sns_free(receipts_sns *m)
{
    json_decref(m->doc);
    memset(m, 0, sizeof *m);
}

static int sign_field(buf *out, const char *name, const char *value)
{
    return buf_append_str(out, name) != 0 || buf_append_str(out, "\n") != 0 ||
                   buf_append_str(out, value) != 0 || buf_append_str(out, "\n") != 0
               ? -1
               : 0;
}

int receipts_sns_string_to_sign(const receipts_sns *m, buf *out)
{
    /* docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html */
    if (sign_field(out, "Message", m->message) != 0 ||
        sign_field(out, "MessageId", m->message_id) != 0)
        return -1;
    if (m->type == RECEIPTS_SNS_NOTIFICATION) {
        if (m->subject != NULL && sign_field(out, "Subject", m->subject) != 0)
            return -1;
    } else if (sign_field(out, "SubscribeURL", m->subscribe_url) != 0) {
        return -1;
    }
    if (sign_field(out, "Timestamp", m->timestamp) != 0)
        return -1;
    if (m->type != RECEIPTS_SNS_NOTIFICATION && sign_field(out, "Token", m->token) != 0)
        return -1;
    return sign_field(out, "TopicArn", m->topic_arn) != 0 ||
                   sign_field(out, "Type", m->type_name) != 0
               ? -1
               : 0;
}

/* ---- SES notifications ---- */

/* The key of the sent mail: its Message-ID header, as the email worker wrote it. */
static void ses_key(json_t *mail, char key[ID_UUID_SIZE])
{
    const char *mid =
        json_string_value(json_object_get(json_object_get(mail, "commonHeaders"), "messageId"));
    if (mid != NULL && mailkey_from_message_id(mid, strlen(mid), key) == 0)
        return;
    size_t i;
    json_t *h;
    json_array_foreach(json_object_get(mail, "headers"), i, h)
    {
        const char *name = json_string_value(json_object_get(h, "name"));
        const char *value = json_string_value(json_object_get(h, "value"));
        if (name != NULL && value != NULL && strcasecmp(name, "Message-ID") == 0 &&
            mailkey_from_message_id(value, strlen(value), key) == 0)
            return;
    }
    key[0] = '\0';
}

/* What one recipient of a notification of type says. */
typedef struct ses_kind {
    const char *type;       /* notificationType / eventType */
    const char *object;     /* the object that details it */
    const char *recipients; /* its array of recipients */
    const char *status;
} ses_kind;

static const ses_kind ses_kinds[] = {
    {"Bounce", "bounce", "bouncedRecipients", "bounced"},
    {"Complaint", "complaint", "complainedRecipients", "complained"},
    {"Delivery", "delivery", "recipients", "delivered"},
};

static const char *bounce_kind(const char *ses)
{
    if (ses != NULL && strcmp(ses, "Permanent") == 0)
        return "permanent";
    if (ses != NULL && strcmp(ses, "Transient") == 0)
        return "transient";
    return "undetermined";
}

int receipts_ses(const receipts_sns *m, receipt *out, size_t max, size_t *n, char *err,
                 size_t errlen)
{
    int rc = -1;
    *n = 0;
    json_t *doc = json_loads(m->message, 0, NULL);
    if (!json_is_object(doc)) {
        error_set(err, errlen, "the SNS Message is not an SES notification (not JSON)");
        goto out;
    }
    const char *type = json_string_value(json_object_get(doc, "notificationType"));
    if (type == NULL)
        type = json_string_value(json_object_get(doc, "eventType"));
    if (type == NULL) {
        error_set(err, errlen, "the SES notification has no notificationType");
        goto out;
    }
    const ses_kind *k = NULL;
    for (size_t i = 0; i < sizeof ses_kinds / sizeof ses_kinds[0]; i++)
        if (strcmp(type, ses_kinds[i].type) == 0)
            k = &ses_kinds[i];
    if (k == NULL) { /* Send, Reject, Open, Click, DeliveryDelay...: not a receipt */
        rc = 0;
        goto out;
    }
    json_t *mail = json_object_get(doc, "mail");
    json_t *detail = json_object_get(doc, k->object);
    json_t *list = json_object_get(detail, k->recipients);
    if (!json_is_object(mail) || !json_is_array(list) || json_array_size(list) == 0) {
        error_set(err, errlen, "the SES %s notification has no mail or no %s", type, k->recipients);
        goto out;
    }
    const char *ses_id = json_string_value(json_object_get(mail, "messageId"));
    char key[ID_UUID_SIZE];
    ses_key(mail, key);
    if (key[0] == '\0' && (ses_id == NULL || ses_id[0] == '\0')) {
        error_set(err, errlen, "the SES notification names no message (mail.messageId)");
        goto out;
    }
    const char *when = json_string_value(json_object_get(detail, "timestamp"));
    if (when == NULL)
        when = json_string_value(json_object_get(mail, "timestamp"));
    int64_t at = 0;
    if (when != NULL && timeutil_parse_rfc3339(when, &at, NULL, 0) != 0)
        at = 0;
    const char *kind = strcmp(k->status, "bounced") == 0
                           ? bounce_kind(json_string_value(json_object_get(detail, "bounceType")))
                           : NULL;
    const char *sub = json_string_value(json_object_get(
        detail, strcmp(k->status, "bounced") == 0 ? "bounceSubType" : "complaintFeedbackType"));
    const char *smtp = json_string_value(json_object_get(detail, "smtpResponse"));
    size_t i;
    json_t *rcpt;
    json_array_foreach(list, i, rcpt)
    {
        if (*n == max)
            break;
        const char *addr = json_is_string(rcpt)
                               ? json_string_value(rcpt)
                               : json_string_value(json_object_get(rcpt, "emailAddress"));
        const char *diag = json_string_value(json_object_get(rcpt, "diagnosticCode"));
        if (addr == NULL || addr[0] == '\0')
            continue;
        receipt *r = &out[(*n)++];
        memset(r, 0, sizeof *r);
        r->status = k->status;
        r->bounce_kind = kind;
        r->occurred_ms = at;
        memcpy(r->key, key, sizeof key);
        copy(r->message_id, sizeof r->message_id, ses_id);
        snprintf(r->receipt_id, sizeof r->receipt_id, "%s:%s", m->message_id, addr);
        copy(r->address, sizeof r->address, addr);
        if (diag != NULL)
            copy(r->reason, sizeof r->reason, diag);
        else if (smtp != NULL)
            copy(r->reason, sizeof r->reason, smtp);
        else if (sub != NULL)
            snprintf(r->reason, sizeof r->reason, "%s: %s", type, sub);
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}

/*
 * provider_smtp: email through an SMTP relay with libcurl.
 *
 * smtp:// upgrades with STARTTLS when the relay offers it (CURLUSESSL_TRY:
 * a relay without TLS still works, as local relays often are), or insists
 * on it with HERALD_SMTP_REQUIRE_TLS (CURLUSESSL_ALL: no STARTTLS, no
 * send); smtps:// is TLS from the first byte.  The relay's certificate is
 * always verified, name included, against the system's trust store or the
 * bundle of HERALD_SMTP_CA_FILE.  A certificate that fails verification is
 * a transient, provider-side failure: nothing about the message is wrong,
 * the operator fixes the trust (or the relay) and the deliveries that ran
 * out of attempts meanwhile are requeued from the DLQ; the breaker stops
 * the flood of handshakes until then.  The message is built by mime.c with
 * Message-ID <idempotency_key@herald>, so a relay or mailbox that
 * deduplicates by Message-ID sees a re-send as the same message.  libcurl
 * 7.88 waits for the reply to the end of DATA synchronously, so the sender
 * runs these transfers on its threads (provider_ops.blocking); each pooled
 * easy handle keeps its SMTP session open between messages.
 *
 * An email whose category allows it carries List-Unsubscribe links
 * (list_unsubscribe.c).  With HERALD_EMAIL_BOUNCE_ADDRESS=LOCAL@DOMAIN the
 * envelope sender is the VERP address LOCAL+<idempotency key>@DOMAIN, so a
 * bounce names the delivery it is about (docs/channels.md "Return path");
 * the From header stays HERALD_EMAIL_FROM.
 */
#include "provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ids.h"
#include "list_unsubscribe.h"
#include "mailkey.h"
#include "mime.h"
#include "timeutil.h"
#include "validate.h"

typedef struct smtp_state {
    char envelope_from[320]; /* the bare address of HERALD_EMAIL_FROM */
} smtp_state;

static int smtp_init(provider *p, char *err, size_t errlen)
{
    if (p->s.url == NULL) {
        error_set(err, errlen, "HERALD_SMTP_URL: required with the smtp provider");
        return -1;
    }
    if (strncmp(p->s.url, "smtp://", 7) != 0 && strncmp(p->s.url, "smtps://", 8) != 0) {
        error_set(err, errlen, "HERALD_SMTP_URL: must start with smtp:// or smtps://");
        return -1;
    }
    if (p->s.from == NULL) {
        error_set(err, errlen, "HERALD_EMAIL_FROM: required with the smtp provider");
        return -1;
    }
    if (p->s.bounce_address != NULL) {
        char why[200];
        if (mailkey_check_bounce_address(p->s.bounce_address, why, sizeof why) != 0)
            return error_set(err, errlen, "HERALD_EMAIL_BOUNCE_ADDRESS: %s", why);
    }
    smtp_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    const char *lt = strchr(p->s.from, '<');
    const char *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt && gt > lt + 1)
        snprintf(st->envelope_from, sizeof st->envelope_from, "<%.*s>", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(st->envelope_from, sizeof st->envelope_from, "<%s>", p->s.from);
    p->impl = st;
    return 0;
}

static int smtp_prepare(provider *p, const provider_message *m, provider_xfer *x, char *err,
                        size_t errlen)
{
    smtp_state *st = p->impl;
    char rcpt[320], envelope[VALIDATE_EMAIL_MAX + ID_UUID_LEN + 8];
    list_unsubscribe_links links;
    int64_t now = timeutil_now_ms();
    int nlinks = list_unsubscribe_links_for(p->s.list_unsubscribe, m->user_id, m->category,
                                            m->priority, DELIVERY_EMAIL, now, &links, err, errlen);
    if (nlinks < 0)
        return -1;
    mime_message mm = {
        .from = p->s.from,
        .to = m->to,
        .subject = m->subject,
        .body = m->body,
        .message_id = m->idempotency_key,
        .date_ms = now,
        .unsubscribe_https = nlinks > 0 ? links.https : NULL,
        .unsubscribe_mailto = nlinks > 0 && links.mailto[0] != '\0' ? links.mailto : NULL,
    };
    if (mime_build(&mm, &x->request, err, errlen) != 0)
        return -1;
    snprintf(rcpt, sizeof rcpt, "<%s>", m->to);
    struct curl_slist *l = curl_slist_append(x->rcpt, rcpt);
    if (l == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    x->rcpt = l;
    CURL *e = x->easy;
    x->curl_error[0] = '\0';
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_error);
    curl_easy_setopt(e, CURLOPT_URL, p->s.url);
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     p->s.require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (p->s.ca_file != NULL) {
        /* The bundle replaces the system store, directory included: trust
         * is exactly what the operator listed. */
        curl_easy_setopt(e, CURLOPT_CAINFO, p->s.ca_file);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    /* libcurl copies the string: envelope may go when this returns. */
    char verp[MAILKEY_ADDRESS_MAX + 1];
    if (p->s.bounce_address != NULL &&
        mailkey_verp_address(p->s.bounce_address, m->idempotency_key, verp, sizeof verp) == 0) {
        snprintf(envelope, sizeof envelope, "<%s>", verp);
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, envelope);
    } else {
        curl_easy_setopt(e, CURLOPT_MAIL_FROM, st->envelope_from);
    }
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, x->rcpt);
    if (p->s.username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, p->s.username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, p->s.password ? p->s.password : "");
    }
    provider_xfer_upload(x);
    return 0;
}

static void smtp_classify(provider *p, provider_xfer *x, CURLcode rc, provider_result *out)
{
    (void)p;
    long reply = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &reply);
    provider_classify_smtp(rc, reply, x->curl_error, out);
    /* TLS trouble is the relay's or the trust settings', never the
     * message's: the outcome stays transient, with a message that points
     * the operator at the setting to check. */
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
        snprintf(out->message, sizeof out->message,
                 "TLS: the relay's certificate failed verification (unknown CA or wrong name; "
                 "see HERALD_SMTP_CA_FILE)");
        break;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(out->message, sizeof out->message, "TLS: cannot use HERALD_SMTP_CA_FILE");
        break;
    case CURLE_USE_SSL_FAILED:
        snprintf(out->message, sizeof out->message,
                 "TLS: HERALD_SMTP_REQUIRE_TLS is set and the relay did not start TLS "
                 "(STARTTLS not offered or refused)");
        break;
    default:
        return;
    }
    /* A 5xx refusal of STARTTLS would otherwise read as the message's fault. */
    out->outcome = PROVIDER_TRANSIENT;
    out->provider_fault = true;
}

static void smtp_destroy(provider *p)
{
    free(p->impl);
    p->impl = NULL;
}

const provider_ops provider_smtp_ops = {
    .name = "smtp",
    .blocking = true,
    .init = smtp_init,
    .prepare = smtp_prepare,
    .classify = smtp_classify,
    .destroy = smtp_destroy,
};

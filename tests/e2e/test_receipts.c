/*
 * End to end: receipts close the loop.  SMS go through the Twilio stand-in,
 * which calls the gateway back with signed status callbacks at the URL the
 * worker gave each message; email goes through the SMTP stand-in, and its
 * bounces and complaints come back as SES notifications through SNS,
 * signed with a certificate made here.  What a user of the API sees: the
 * SMS moves to delivered (or undelivered) whatever order and how often the
 * callbacks come, a forged callback changes nothing, and an address that
 * bounced or complained is suppressed: the next email to it is
 * 'suppressed' and never reaches the SMTP server.
 */
#include "e2e_suite.h"

#include "snssigner.h"

#include <ctype.h>
#include <strings.h>

#define TWILIO_TOKEN "e2e-twilio-auth-token"
#define TOPIC        "arn:aws:sns:us-east-1:123456789012:herald-ses"

static e2e_env env;
static bool up;
static snssigner *sns;
static char sms_key[ID_UUID_SIZE], sms_event[ID_UUID_SIZE];

START_TEST(test_stack_starts_with_receipts)
{
    e2e_up(&env, "e2e_receipts");
    up = true;
    char cert[256], kv[512];
    snprintf(cert, sizeof cert, "%s/sns.pem", env.dir);
    sns = snssigner_new(cert);
    ck_assert_ptr_nonnull(sns);

    /* The gateway on a port known before it starts: Twilio signs the URL it
     * calls, so the gateway must know its own public address. */
    int port = testsupport_free_port();
    e2e_proc *g = &env.procs[E2E_GATEWAY];
    ck_assert_int_eq(e2e_stop(g, SIGTERM, 20000), 0);
    free(g->argv[2]);
    g->argv[2] = e2e_printf("127.0.0.1:%d", port);
    snprintf(kv, sizeof kv, "HERALD_RECEIPTS_BASE_URL=http://127.0.0.1:%d", port);
    e2e_set_env(g, kv);
    e2e_set_env(g, "HERALD_TWILIO_AUTH_TOKEN=" TWILIO_TOKEN);
    snprintf(kv, sizeof kv, "HERALD_SNS_CERT_FILE=%s", cert);
    e2e_set_env(g, kv);
    e2e_set_env(g, "HERALD_SNS_TOPIC_ARNS=" TOPIC);
    e2e_restart(&env, E2E_GATEWAY);

    /* SMS through the stand-in's Twilio API, with a callback per message. */
    e2e_proc *w = &env.procs[E2E_SMS];
    ck_assert_int_eq(e2e_stop(w, SIGTERM, 20000), 0);
    e2e_set_env(w, "HERALD_SMS_PROVIDER=twilio");
    snprintf(kv, sizeof kv, "HERALD_SMS_URL=http://127.0.0.1:%d", env.procs[E2E_HTTP].port);
    e2e_set_env(w, kv);
    e2e_set_env(w, "HERALD_TWILIO_ACCOUNT_SID=ACe2e");
    e2e_set_env(w, "HERALD_TWILIO_AUTH_TOKEN=" TWILIO_TOKEN);
    snprintf(kv, sizeof kv, "HERALD_TWILIO_STATUS_CALLBACK_URL=%s/v1/receipts/twilio", env.base);
    e2e_set_env(w, kv);
    e2e_restart(&env, E2E_SMS);

    e2e_put_user(&env, "rc-sms", NULL, "+15550102001", NULL);
    e2e_put_user(&env, "rc-bounce", "Bounce.Me@Example.com", NULL, NULL);
    e2e_put_user(&env, "rc-spam", "spam-me@example.com", NULL, NULL);
    e2e_put_templates(&env, "order.shipped");
}
END_TEST

static void publish(const char *user, char *id)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"type\":\"order.shipped\",\"user_id\":\"%s\",\"data\":{\"n\":1}}", user);
    e2e_publish(&env, body, id);
}

/* Waits until the event's delivery on channel has status; returns the document. */
static json_t *wait_for(const char *id, const char *channel, const char *status)
{
    json_t *doc = e2e_wait_status(&env, id, channel, status, 1, E2E_PHASE_MS);
    json_t *d = doc ? e2e_delivery(doc, channel) : NULL;
    ck_assert_msg(d != NULL && strcmp(json_string_value(json_object_get(d, "status")), status) == 0,
                  "event %s: %s is %s, not %s", id, channel,
                  d ? json_string_value(json_object_get(d, "status")) : "missing", status);
    return doc;
}

/*
 * Whether a delivery's history is the worker's 'sent' and the callback's
 * 'delivered', in either order: the callback can overtake the worker's
 * record of the send (the stand-in calls back once its answer is out).
 */
static bool sent_and_delivered(const char *h)
{
    return strcmp(h, "sent/worker delivered/receipt") == 0 ||
           strcmp(h, "delivered/receipt sent/worker") == 0;
}

/* The statuses of a delivery's history, "status/source ...". */
static void history(json_t *d, char *out, size_t outlen)
{
    size_t i, o = 0;
    json_t *h;
    out[0] = '\0';
    json_array_foreach(json_object_get(d, "history"), i, h)
    {
        int n = snprintf(out + o, outlen - o, "%s%s/%s", i ? " " : "",
                         json_string_value(json_object_get(h, "status")),
                         json_string_value(json_object_get(h, "source")));
        if (n < 0 || (size_t)n >= outlen - o)
            break;
        o += (size_t)n;
    }
}

START_TEST(test_sms_is_delivered_by_its_status_callbacks)
{
    ck_assert_msg(up, "the stack did not start");
    char id[ID_UUID_SIZE], h[512];
    publish("rc-sms", id);
    json_t *doc = wait_for(id, "sms", "delivered");
    json_t *d = e2e_delivery(doc, "sms");
    history(d, h, sizeof h);
    /* The callback's 'sent' moves nothing: the worker records its own. */
    ck_assert_msg(sent_and_delivered(h), "%s", h);
    ck_assert_str_eq(json_string_value(json_object_get(d, "provider")), "twilio");
    ck_assert_int_eq(strncmp(json_string_value(json_object_get(d, "provider_message_id")), "SM", 2),
                     0);
    snprintf(sms_key, sizeof sms_key, "%s",
             json_string_value(json_object_get(d, "idempotency_key")));
    snprintf(sms_event, sizeof sms_event, "%s", id);
    json_decref(doc);
    ck_assert_double_ge(e2e_metric(&env, E2E_GATEWAY, "herald_gateway_receipts_total"), 2);
}
END_TEST

START_TEST(test_repeated_and_reordered_callbacks_end_delivered)
{
    ck_assert_msg(up, "the stack did not start");
    double dup0 =
        e2e_metric(&env, E2E_GATEWAY,
                   "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"duplicate\"}");
    if (dup0 < 0)
        dup0 = 0;
    e2e_control(&env, E2E_HTTP, "{\"callback_reorder_count\":1,\"callback_duplicate_count\":2}");
    char id[ID_UUID_SIZE], h[512];
    publish("rc-sms", id);
    json_t *doc = wait_for(id, "sms", "delivered");
    history(e2e_delivery(doc, "sms"), h, sizeof h);
    ck_assert_msg(sent_and_delivered(h), "%s", h);
    json_decref(doc);
    /* Both copies arrived and the second changed nothing. */
    double dup = -1;
    for (int i = 0; i < 100 && dup < dup0 + 2; i++) {
        dup =
            e2e_metric(&env, E2E_GATEWAY,
                       "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"duplicate\"}");
        if (dup < dup0 + 2)
            testsupport_sleep_ms(100);
    }
    ck_assert_double_ge(dup, dup0 + 2);
}
END_TEST

START_TEST(test_an_undelivered_callback_says_why)
{
    ck_assert_msg(up, "the stack did not start");
    e2e_control(&env, E2E_HTTP,
                "{\"callback_statuses\":\"sent,undelivered\",\"callback_error_code\":30005}");
    char id[ID_UUID_SIZE];
    publish("rc-sms", id);
    json_t *doc = wait_for(id, "sms", "undelivered");
    const char *err = json_string_value(json_object_get(e2e_delivery(doc, "sms"), "last_error"));
    ck_assert_msg(err != NULL && strstr(err, "30005") != NULL, "%s", err ? err : "(none)");
    json_decref(doc);
    e2e_control(&env, E2E_HTTP, "{\"callback_statuses\":\"sent,delivered\"}");
}
END_TEST

START_TEST(test_a_forged_callback_changes_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    ck_assert_msg(sms_key[0] != '\0', "no delivered SMS from the earlier case");
    char url[256];
    snprintf(url, sizeof url, "%s/v1/receipts/twilio?key=%s", env.base, sms_key);
    CURL *c = curl_easy_init();
    struct curl_slist *hs =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    hs = curl_slist_append(hs, "X-Twilio-Signature: bm90IGEgc2lnbmF0dXJlIGF0IGFsbA==");
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                     "AccountSid=ACe2e&MessageSid=SMforged&MessageStatus=undelivered&ErrorCode=1");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    fclose(devnull);
    ck_assert_int_eq(status, 403);
    ck_assert_double_ge(e2e_metric(&env, E2E_GATEWAY,
                                   "herald_gateway_receipts_total{provider=\"twilio\",outcome="
                                   "\"forged\"}"),
                        1);
    json_t *doc = e2e_event(&env, sms_event);
    json_t *d = e2e_delivery(doc, "sms");
    ck_assert_str_eq(json_string_value(json_object_get(d, "status")), "delivered");
    ck_assert_int_eq(json_array_size(json_object_get(d, "history")), 2);
    json_decref(doc);
}
END_TEST

/* Posts an SES notification about the email delivery d, signed as SNS signs. */
static void ses_notify(json_t *d, const char *type, const char *sns_id)
{
    const char *key = json_string_value(json_object_get(d, "idempotency_key"));
    const char *address = json_string_value(json_object_get(d, "address"));
    char detail[512], message[2048];
    if (strcmp(type, "Bounce") == 0)
        snprintf(detail, sizeof detail,
                 "\"bounce\":{\"bounceType\":\"Permanent\",\"bounceSubType\":\"General\","
                 "\"bouncedRecipients\":[{\"emailAddress\":\"%s\",\"action\":\"failed\","
                 "\"status\":\"5.1.1\",\"diagnosticCode\":\"smtp; 550 5.1.1 user unknown\"}],"
                 "\"timestamp\":\"2026-12-07T12:00:01.000Z\",\"feedbackId\":\"fb-%s\"}",
                 address, sns_id);
    else
        snprintf(detail, sizeof detail,
                 "\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"%s\"}],"
                 "\"complaintFeedbackType\":\"abuse\",\"timestamp\":\"2026-12-07T12:00:02.000Z\","
                 "\"feedbackId\":\"fb-%s\"}",
                 address, sns_id);
    snprintf(message, sizeof message,
             "{\"notificationType\":\"%s\",%s,\"mail\":{\"timestamp\":\"2026-12-07T12:00:00.000Z\","
             "\"messageId\":\"0100018c-ses-%s\",\"source\":\"e2e@herald.test\",\"destination\":"
             "[\"%s\"],\"commonHeaders\":{\"messageId\":\"<%s@herald>\"}}}",
             type, detail, sns_id, address, key);
    char *body = snssigner_message(sns, strcmp(type, "Bounce") == 0 ? 2 : 1, "Notification", sns_id,
                                   TOPIC, NULL, message, NULL);
    ck_assert_ptr_nonnull(body);
    char url[256];
    snprintf(url, sizeof url, "%s/v1/receipts/ses", env.base);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: text/plain; charset=UTF-8");
    hs = curl_slist_append(hs, "x-amz-sns-message-type: Notification");
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    fclose(devnull);
    free(body);
    ck_assert_int_eq(status, 200);
}

/* How many emails the SMTP stand-in took for address (in any case). */
static size_t emails_to(const char *address)
{
    json_t *all = e2e_records(&env, E2E_SMTP);
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        size_t k;
        json_t *to;
        json_array_foreach(json_object_get(r, "rcpt"), k, to)
        {
            if (strcasecmp(json_string_value(to), address) == 0)
                n++;
        }
    }
    json_decref(all);
    return n;
}

/* An email that came back as type: the address is suppressed and the next
 * email to it never reaches the SMTP server. */
static void bounce_then_suppressed(const char *user, const char *address, const char *type,
                                   const char *status, const char *reason, const char *sns_id)
{
    char id[ID_UUID_SIZE], next[ID_UUID_SIZE], path[256];
    publish(user, id);
    json_t *doc = wait_for(id, "email", "sent");
    ck_assert_int_eq(emails_to(address), 1);
    ses_notify(e2e_delivery(doc, "email"), type, sns_id);
    json_decref(doc);
    doc = wait_for(id, "email", status);
    json_decref(doc);
    /* SNS retrying the same notification changes nothing. */
    json_t *again = e2e_event(&env, id);
    ses_notify(e2e_delivery(again, "email"), type, sns_id);
    json_decref(again);

    json_t *entry = NULL;
    char lower[128];
    snprintf(lower, sizeof lower, "%s", address);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    snprintf(path, sizeof path, "/v1/suppressions/email/%s", lower);
    ck_assert_int_eq(e2e_api(&env, "GET", path, NULL, &entry), 200);
    ck_assert_str_eq(json_string_value(json_object_get(entry, "reason")), reason);
    ck_assert_str_eq(json_string_value(json_object_get(entry, "event_id")), id);
    json_decref(entry);

    publish(user, next);
    doc = wait_for(next, "email", "suppressed");
    json_decref(doc);
    ck_assert_int_eq(emails_to(address), 1);
}

START_TEST(test_an_ses_hard_bounce_suppresses_the_address)
{
    ck_assert_msg(up, "the stack did not start");
    bounce_then_suppressed("rc-bounce", "Bounce.Me@Example.com", "Bounce", "bounced", "hard_bounce",
                           "sns-bounce-1");
}
END_TEST

START_TEST(test_an_ses_complaint_suppresses_the_address)
{
    ck_assert_msg(up, "the stack did not start");
    bounce_then_suppressed("rc-spam", "spam-me@example.com", "Complaint", "complained", "complaint",
                           "sns-complaint-1");
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
    snssigner_free(sns);
    sns = NULL;
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_stack_starts_with_receipts),
    TEST_ENTRY(test_sms_is_delivered_by_its_status_callbacks),
    TEST_ENTRY(test_repeated_and_reordered_callbacks_end_delivered),
    TEST_ENTRY(test_an_undelivered_callback_says_why),
    TEST_ENTRY(test_a_forged_callback_changes_nothing),
    TEST_ENTRY(test_an_ses_hard_bounce_suppresses_the_address),
    TEST_ENTRY(test_an_ses_complaint_suppresses_the_address),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_receipts", cases, env)

/*
 * The providers' delivery receipts through herald-gateway against a real
 * database: deliveries are inserted as a worker leaves them ('sent'), then
 * each provider's callback, naming the delivery's key as that provider
 * does, is posted signed as that provider signs, and what a user sees is
 * checked: the delivery's status from GET /v1/events/{id}, the
 * suppression list, and /metrics.
 */
#include "gateway_harness.h"

#include "hsig.h"
#include "snssigner.h"

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <signal.h>
#include <stdatomic.h>

#define TWILIO_TOKEN "twilio-auth-token-for-tests"
#define BASE_URL     "https://herald.example.com/base"
#define HTTP_SECRET  "http-callback-secret-0123456789abcdef"
#define TOPIC        "arn:aws:sns:eu-west-1:123456789012:herald-ses"
#define BOUNCE       "bounces@mail.example.com"

/* ------------------------------------------------------------ fixtures */

typedef struct seeded {
    char event_id[ID_UUID_SIZE];
    char key[ID_UUID_SIZE];
} seeded;

/* An event with one delivery to address on channel, 'sent' as a worker leaves it. */
static void seed(const char *channel, const char *address, seeded *s)
{
    char sql[1024];
    ck_assert_int_eq(id_uuid_v4(s->event_id), 0);
    ck_assert_int_eq(id_uuid_v4(s->key), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO events (event_id, type, user_id, priority, created_at) "
             "VALUES ('%s', 'order.shipped', 'u-receipts', 'normal', now()); "
             "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, "
             "status, attempts) VALUES ('%s', '%s', 'u-receipts', '%s', '%s', 'sent', 1)",
             s->event_id, s->key, s->event_id, channel, address);
    h_sql(sql);
}

/* The status of s's delivery (event: of the event) as GET /v1/events/{id} shows it. */
static const char *status_of(h_gateway *g, const seeded *s, bool event, char *out, size_t outlen)
{
    h_resp r;
    char path[128];
    snprintf(path, sizeof path, "/v1/events/%s", s->event_id);
    h_http(g, "GET", path, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%s: %ld %s", path, r.status, r.body);
    json_t *d = event ? r.json : json_array_get(json_object_get(r.json, "deliveries"), 0);
    snprintf(out, outlen, "%s", json_string_value(json_object_get(d, "status")));
    h_resp_clear(&r);
    return out;
}

#define ck_status(g, s, want)                                                                      \
    do {                                                                                           \
        char st_[32];                                                                              \
        ck_assert_str_eq(status_of(g, s, false, st_, sizeof st_), want);                           \
    } while (0)
#define ck_event_status(g, s, want)                                                                \
    do {                                                                                           \
        char st_[32];                                                                              \
        ck_assert_str_eq(status_of(g, s, true, st_, sizeof st_), want);                            \
    } while (0)

/* The suppression reason of (channel, address), "" when it is not suppressed. */
static void suppression(const char *channel, const char *address, char *out, size_t outlen)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT reason FROM suppressions WHERE channel = '%s' AND address = '%s'", channel,
             address);
    h_sql_value(sql, out, outlen);
}

/* The outcome of the only (or first) receipt of an answer. */
static const char *outcome(const h_resp *r)
{
    ck_assert_msg(r->status == 200, "%ld %s", r->status, r->body);
    json_t *first = json_array_get(json_object_get(r->json, "receipts"), 0);
    const char *o = json_string_value(json_object_get(first, "outcome"));
    ck_assert_msg(o != NULL, "no outcome: %s", r->body);
    return o;
}

/* The value of the series name{labels} on /metrics, -1 when absent. */
static long metric(h_gateway *g, const char *series)
{
    h_resp r;
    h_http(g, "GET", "/metrics", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    long v = -1;
    const char *p = strstr(r.body, series);
    if (p != NULL && p[strlen(series)] == ' ')
        v = strtol(p + strlen(series) + 1, NULL, 10);
    h_resp_clear(&r);
    return v;
}

/* -------------------------------------------------------------- Twilio */

/* X-Twilio-Signature as Twilio computes it, written here apart from the gateway's. */
static void twilio_header(const char *url, const char *const *sorted_pairs, size_t n, char *out,
                          size_t outlen)
{
    char text[2048];
    snprintf(text, sizeof text, "%s", url);
    for (size_t i = 0; i < 2 * n; i++)
        strncat(text, sorted_pairs[i], sizeof text - strlen(text) - 1);
    unsigned char mac[20];
    unsigned int len = 0;
    HMAC(EVP_sha1(), TWILIO_TOKEN, (int)strlen(TWILIO_TOKEN), (unsigned char *)text, strlen(text),
         mac, &len);
    char b64[64];
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)len);
    snprintf(out, outlen, "X-Twilio-Signature: %s", b64);
}

/* A status callback to the URL the worker gave the message: key= its delivery's key. */
static void twilio_post(h_gateway *g, const seeded *s, const char *sid, const char *status,
                        bool good, h_resp *r)
{
    char body[512], sig[128], path[160], url[256];
    snprintf(body, sizeof body,
             "AccountSid=AC1&MessageSid=%s&MessageStatus=%s&To=%%2B15550001111&ApiVersion="
             "2010-04-01",
             sid, status);
    /* sorted by name: AccountSid, ApiVersion, MessageSid, MessageStatus, To */
    const char *pairs[] = {"AccountSid",    "AC1",  "ApiVersion", "2010-04-01",  "MessageSid", sid,
                           "MessageStatus", status, "To",         "+15550001111"};
    snprintf(path, sizeof path, "/v1/receipts/twilio?tenant=a%%20b&key=%s", s->key);
    snprintf(url, sizeof url, "%s%s", good ? BASE_URL : "https://elsewhere.example.com", path);
    twilio_header(url, pairs, 5, sig, sizeof sig);
    h_http(g, "POST", path, NULL, "application/x-www-form-urlencoded", body, sig, r);
}

START_TEST(test_twilio_signed_callback_moves_the_delivery_and_a_forged_one_does_not)
{
    setenv("HERALD_TWILIO_AUTH_TOKEN", TWILIO_TOKEN, 1);
    h_gateway g;
    h_start(&g, "--receipts-base-url", BASE_URL "/", NULL);
    seeded s;
    seed("sms", "+15550001111", &s);
    h_resp r;

    /* signed for another URL: refused, nothing moves */
    twilio_post(&g, &s, "SMtw1", "delivered", false, &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(h_error_code(&r), "forbidden");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/receipts/twilio", NULL, "application/x-www-form-urlencoded",
           "MessageSid=SMtw1&MessageStatus=delivered", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    ck_status(&g, &s, "sent");

    /* queued and sending say nothing new */
    twilio_post(&g, &s, "SMtw1", "sending", true, &r);
    ck_assert_str_eq(outcome(&r), "ignored");
    h_resp_clear(&r);
    twilio_post(&g, &s, "SMtw1", "delivered", true, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &s, "delivered");
    ck_event_status(&g, &s, "delivered");
    /* Twilio's retry of it, and a late "sent" */
    twilio_post(&g, &s, "SMtw1", "delivered", true, &r);
    ck_assert_str_eq(outcome(&r), "duplicate");
    h_resp_clear(&r);
    twilio_post(&g, &s, "SMtw1", "sent", true, &r);
    ck_assert_str_eq(outcome(&r), "stale");
    h_resp_clear(&r);
    ck_status(&g, &s, "delivered");

    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"forged\"}"), 2);
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"applied\"}"), 1);
    h_stop(&g);
    unsetenv("HERALD_TWILIO_AUTH_TOKEN");
}
END_TEST

START_TEST(test_twilio_failed_is_undelivered)
{
    setenv("HERALD_TWILIO_AUTH_TOKEN", TWILIO_TOKEN, 1);
    h_gateway g;
    h_start(&g, "--receipts-base-url", BASE_URL, NULL);
    seeded s;
    seed("sms", "+15550002222", &s);
    h_resp r;
    twilio_post(&g, &s, "SMtw2", "failed", true, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &s, "undelivered");
    h_stop(&g);
    unsetenv("HERALD_TWILIO_AUTH_TOKEN");
}
END_TEST

/* herald-test-http-provider as Twilio: it takes a message and posts its
 * signed status callbacks to the StatusCallback the message gave. */
static pid_t start_twilio_stand_in(int *port)
{
    char bin[512], line[256];
    int fd = -1, control = 0;
    testsupport_bin("herald-test-http-provider", bin, sizeof bin);
    char *const argv[] = {"herald-test-http-provider",
                          "--listen",
                          "127.0.0.1:0",
                          "--twilio-sid",
                          "AC1",
                          "--twilio-token",
                          TWILIO_TOKEN,
                          "--callback-statuses",
                          "sent,delivered",
                          "--callback-duplicate-count",
                          "1",
                          "--callback-reorder-count",
                          "1",
                          NULL};
    pid_t pid = testsupport_spawn_logged(bin, argv, NULL, NULL, &fd, true);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(testsupport_read_listen_line(fd, 10000, port, &control, line, sizeof line), 0);
    close(fd);
    return pid;
}

/* Sends an SMS through the stand-in as the worker does, asking for callbacks at callback. */
static void twilio_send(int port, const char *callback)
{
    char url[128], body[512];
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, callback, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/2010-04-01/Accounts/AC1/Messages.json", port);
    snprintf(body, sizeof body, "To=%%2B15550009999&From=%%2B15005550006&Body=hi&StatusCallback=%s",
             esc);
    curl_free(esc);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERPWD, "AC1:" TWILIO_TOKEN);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, h_body_cb);
    h_resp r = {0};
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    ck_assert_msg(status == 201, "Twilio stand-in: %ld %s", status, r.body);
}

START_TEST(test_twilio_stand_in_callbacks_duplicated_and_reordered_end_delivered)
{
    setenv("HERALD_TWILIO_AUTH_TOKEN", TWILIO_TOKEN, 1);
    /* The public URL is the gateway's own address: no proxy in between. */
    char addr[32], base[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", testsupport_free_port());
    snprintf(base, sizeof base, "http://%s", addr);
    h_gateway g;
    h_start(&g, "--http-addr", addr, "--receipts-base-url", base, NULL);
    snprintf(g.base, sizeof g.base, "%s", base);
    int port = 0;
    pid_t stand_in = start_twilio_stand_in(&port);
    seeded s;
    seed("sms", "+15550009999", &s);
    char callback[256];
    snprintf(callback, sizeof callback, "%s/v1/receipts/twilio?src=herald&key=%s", base, s.key);
    twilio_send(port, callback);

    /* delivered, delivered again (the duplicate), then the overtaken sent */
    const char *series[] = {
        "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"applied\"}",
        "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"duplicate\"}",
        "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"stale\"}"};
    long got[3] = {0};
    for (int i = 0; i < 200; i++) {
        for (int k = 0; k < 3; k++)
            got[k] = metric(&g, series[k]);
        if (got[0] == 1 && got[1] == 1 && got[2] == 1)
            break;
        testsupport_sleep_ms(50);
    }
    ck_assert_int_eq(got[0], 1);
    ck_assert_int_eq(got[1], 1);
    ck_assert_int_eq(got[2], 1);
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"twilio\",outcome=\"forged\"}"), 0);
    ck_status(&g, &s, "delivered");
    kill(stand_in, SIGTERM);
    testsupport_wait(stand_in, 10000);
    h_stop(&g);
    unsetenv("HERALD_TWILIO_AUTH_TOKEN");
}
END_TEST

/* ------------------------------------------------------------ SNS / SES */

static char cert_path[64], other_cert_path[64];
static snssigner *sns, *other_sns;

static snssigner *make_signer(char *path)
{
    snprintf(path, 64, "/tmp/herald-sns-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snssigner *s = snssigner_new(path);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void ses_start(h_gateway *g, const char *confirm_hosts)
{
    sns = make_signer(cert_path);
    other_sns = make_signer(other_cert_path);
    h_start(g, "--sns-cert-file", cert_path, "--sns-topic-arns",
            "arn:aws:sns:eu-west-1:123456789012:other," TOPIC, "--soft-bounce-limit", "2",
            "--sns-confirm-hosts", confirm_hosts != NULL ? confirm_hosts : "*.amazonaws.com", NULL);
}

static void ses_stop(h_gateway *g)
{
    h_stop(g);
    snssigner_free(sns);
    snssigner_free(other_sns);
    unlink(cert_path);
    unlink(other_cert_path);
}

/* An SES notification of type for s's message, to address. */
static void ses_message(const char *type, const char *bounce_type, const char *address,
                        const char *key, const char *ses_id, char *out, size_t outlen)
{
    char detail[512];
    if (strcmp(type, "Bounce") == 0)
        snprintf(detail, sizeof detail,
                 "\"bounce\":{\"bounceType\":\"%s\",\"bounceSubType\":\"General\","
                 "\"bouncedRecipients\":[{\"emailAddress\":\"%s\",\"diagnosticCode\":"
                 "\"smtp; 550 5.1.1 user unknown\"}],\"timestamp\":\"2026-12-07T12:00:01.000Z\"}",
                 bounce_type, address);
    else if (strcmp(type, "Complaint") == 0)
        snprintf(detail, sizeof detail,
                 "\"complaint\":{\"complainedRecipients\":[{\"emailAddress\":\"%s\"}],"
                 "\"complaintFeedbackType\":\"abuse\",\"timestamp\":\"2026-12-07T12:00:02.000Z\"}",
                 address);
    else
        snprintf(detail, sizeof detail,
                 "\"delivery\":{\"recipients\":[\"%s\"],\"smtpResponse\":\"250 ok\","
                 "\"timestamp\":\"2026-12-07T12:00:00.500Z\"}",
                 address);
    snprintf(out, outlen,
             "{\"notificationType\":\"%s\",%s,\"mail\":{\"timestamp\":\"2026-12-07T12:00:00.000Z\","
             "\"messageId\":\"%s\",\"destination\":[\"%s\"],\"commonHeaders\":{\"messageId\":"
             "\"<%s@herald>\",\"subject\":\"Your order\"}}}",
             type, detail, ses_id, address, key);
}

static void sns_post(h_gateway *g, const char *body, h_resp *r)
{
    h_http(g, "POST", "/v1/receipts/ses", NULL, "text/plain; charset=UTF-8", body, NULL, r);
}

/* Signs an SES notification with version v and posts it under SNS id sns_id. */
static void ses_post(h_gateway *g, const snssigner *signer, int v, const char *topic,
                     const char *sns_id, const char *message, h_resp *r)
{
    char *body =
        snssigner_message(signer, v, "Notification", sns_id, topic, "Amazon SES", message, NULL);
    ck_assert_ptr_nonnull(body);
    sns_post(g, body, r);
    free(body);
}

START_TEST(test_ses_permanent_bounce_and_complaint_suppress_with_v1_and_v2)
{
    h_gateway g;
    ses_start(&g, NULL);
    seeded a, b;
    seed("email", "Hard@Example.com", &a);
    seed("email", "angry@example.com", &b);
    char msg[2048], why[64];
    h_resp r;

    ses_message("Bounce", "Permanent", "hard@example.com", a.key, "ses-a", msg, sizeof msg);
    ses_post(&g, sns, 1, TOPIC, "sns-1", msg, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &a, "bounced");
    ck_event_status(&g, &a, "failed");
    suppression("email", "hard@example.com", why, sizeof why);
    ck_assert_str_eq(why, "hard_bounce");

    ses_message("Complaint", NULL, "angry@example.com", b.key, "ses-b", msg, sizeof msg);
    ses_post(&g, sns, 2, TOPIC, "sns-2", msg, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &b, "complained");
    ck_event_status(&g, &b, "delivered");
    suppression("email", "angry@example.com", why, sizeof why);
    ck_assert_str_eq(why, "complaint");
    ses_stop(&g);
}
END_TEST

START_TEST(test_ses_forged_other_certificate_or_topic_is_refused)
{
    h_gateway g;
    ses_start(&g, NULL);
    seeded a;
    seed("email", "victim@example.com", &a);
    char msg[2048], why[64];
    h_resp r;
    ses_message("Bounce", "Permanent", "victim@example.com", a.key, "ses-f", msg, sizeof msg);

    for (int v = 1; v <= 2; v++) {
        ses_post(&g, other_sns, v, TOPIC, "sns-f1", msg, &r); /* another certificate */
        ck_assert_int_eq(r.status, 403);
        h_resp_clear(&r);
        ses_post(&g, sns, v, "arn:aws:sns:eu-west-1:999:evil", "sns-f2", msg, &r);
        ck_assert_int_eq(r.status, 403);
        h_resp_clear(&r);
    }
    /* a good signature over another message */
    char *body = snssigner_message(sns, 2, "Notification", "sns-f3", TOPIC, NULL, msg, NULL);
    char *p = strstr(body, "Permanent");
    ck_assert_ptr_nonnull(p);
    memcpy(p, "Transien", 8);
    sns_post(&g, body, &r);
    free(body);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(h_error_code(&r), "forbidden");
    h_resp_clear(&r);

    ck_status(&g, &a, "sent");
    suppression("email", "victim@example.com", why, sizeof why);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"ses\",outcome=\"forged\"}"), 5);
    ses_stop(&g);
}
END_TEST

START_TEST(test_ses_transient_bounces_suppress_at_the_limit)
{
    h_gateway g;
    ses_start(&g, NULL); /* --soft-bounce-limit 2 */
    seeded a, b;
    seed("email", "full@example.com", &a);
    seed("email", "full@example.com", &b);
    char msg[2048], why[64];
    h_resp r;
    ses_message("Bounce", "Transient", "full@example.com", a.key, "ses-t1", msg, sizeof msg);
    ses_post(&g, sns, 1, TOPIC, "sns-t1", msg, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &a, "bounced");
    suppression("email", "full@example.com", why, sizeof why);
    ck_assert_str_eq(why, "");
    /* SNS sending the same notification again does not count twice */
    ses_post(&g, sns, 1, TOPIC, "sns-t1", msg, &r);
    ck_assert_str_eq(outcome(&r), "duplicate");
    h_resp_clear(&r);
    suppression("email", "full@example.com", why, sizeof why);
    ck_assert_str_eq(why, "");

    ses_message("Bounce", "Transient", "full@example.com", b.key, "ses-t2", msg, sizeof msg);
    ses_post(&g, sns, 1, TOPIC, "sns-t2", msg, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    suppression("email", "full@example.com", why, sizeof why);
    ck_assert_str_eq(why, "soft_bounces");
    ses_stop(&g);
}
END_TEST

START_TEST(test_ses_duplicated_and_reordered_receipts_end_in_the_right_status)
{
    h_gateway g;
    ses_start(&g, NULL);
    seeded a;
    seed("email", "late@example.com", &a);
    char bounce[2048], delivery[2048];
    h_resp r;
    ses_message("Bounce", "Permanent", "late@example.com", a.key, "ses-o", bounce, sizeof bounce);
    ses_message("Delivery", NULL, "late@example.com", a.key, "ses-o", delivery, sizeof delivery);
    /* the bounce arrives first, twice, then the delivery notice it overtook */
    ses_post(&g, sns, 2, TOPIC, "sns-o1", bounce, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ses_post(&g, sns, 2, TOPIC, "sns-o1", bounce, &r);
    ck_assert_str_eq(outcome(&r), "duplicate");
    h_resp_clear(&r);
    ses_post(&g, sns, 2, TOPIC, "sns-o2", delivery, &r);
    ck_assert_str_eq(outcome(&r), "stale");
    h_resp_clear(&r);
    ck_status(&g, &a, "bounced");

    /* the other order, on another delivery, ends the same */
    seeded b;
    seed("email", "late2@example.com", &b);
    ses_message("Bounce", "Permanent", "late2@example.com", b.key, "ses-p", bounce, sizeof bounce);
    ses_message("Delivery", NULL, "late2@example.com", b.key, "ses-p", delivery, sizeof delivery);
    ses_post(&g, sns, 1, TOPIC, "sns-p2", delivery, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &b, "delivered");
    ses_post(&g, sns, 1, TOPIC, "sns-p1", bounce, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &b, "bounced");
    ses_stop(&g);
}
END_TEST

START_TEST(test_ses_receipt_for_an_unknown_message_is_answered_and_counted)
{
    h_gateway g;
    ses_start(&g, NULL);
    char msg[2048], key[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v4(key), 0);
    h_resp r;
    ses_message("Bounce", "Permanent", "nobody@example.com", key, "ses-unknown", msg, sizeof msg);
    ses_post(&g, sns, 1, TOPIC, "sns-u1", msg, &r);
    ck_assert_str_eq(outcome(&r), "unknown");
    h_resp_clear(&r);
    /* other SES events are answered and ignored */
    ses_post(&g, sns, 1, TOPIC, "sns-u2", "{\"eventType\":\"Open\",\"mail\":{}}", &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"ses\",outcome=\"unknown\"}"), 1);
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"ses\",outcome=\"ignored\"}"), 1);
    char why[64];
    suppression("email", "nobody@example.com", why, sizeof why);
    ck_assert_str_eq(why, "");
    ses_stop(&g);
}
END_TEST

/* A local stand-in for SNS's SubscribeURL: counts the GETs of /confirm. */
static atomic_int confirm_gets;

static enum MHD_Result on_confirm(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    (void)cls, (void)version, (void)data, (void)size, (void)ctx;
    if (strcmp(method, "GET") == 0 && strcmp(url, "/confirm") == 0)
        atomic_fetch_add(&confirm_gets, 1);
    static const char body[] = "<ConfirmSubscriptionResponse/>";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return rc;
}

START_TEST(test_sns_subscription_is_confirmed_for_an_allowed_host_only)
{
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_confirm, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&(struct sockaddr_in){.sin_family = AF_INET,
                                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)},
        MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    unsigned port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    h_gateway g;
    ses_start(&g, "127.0.0.1");
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/confirm?Action=ConfirmSubscription&Token=t",
             port);
    h_resp r;

    /* a host not allowed: refused, nothing fetched */
    char *body = snssigner_message(sns, 1, "SubscriptionConfirmation", "sub-1", TOPIC, NULL,
                                   "You have chosen to subscribe",
                                   "http://localhost:1/confirm?Action=ConfirmSubscription");
    sns_post(&g, body, &r);
    free(body);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    /* another topic: refused */
    body = snssigner_message(sns, 2, "SubscriptionConfirmation", "sub-2",
                             "arn:aws:sns:eu-west-1:999:evil", NULL, "subscribe", url);
    sns_post(&g, body, &r);
    free(body);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    ck_assert_int_eq(atomic_load(&confirm_gets), 0);

    body = snssigner_message(sns, 2, "SubscriptionConfirmation", "sub-3", TOPIC, NULL,
                             "You have chosen to subscribe", url);
    sns_post(&g, body, &r);
    free(body);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(json_is_true(json_object_get(r.json, "confirmed")));
    h_resp_clear(&r);
    ck_assert_int_eq(atomic_load(&confirm_gets), 1);
    ses_stop(&g);
    MHD_stop_daemon(d);
}
END_TEST

/* ------------------------------------------------------- SMTP bounces */

static void dsn(char *out, size_t outlen, const char *to, const char *status,
                const char *message_id)
{
    snprintf(out, outlen,
             "Return-Path: <>\r\n"
             "Delivered-To: %s\r\n"
             "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
             "To: %s\r\n"
             "Subject: Undelivered Mail Returned to Sender\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "\tboundary=\"AB12.1/mx.example.com\"\r\n"
             "\r\n"
             "--AB12.1/mx.example.com\r\n"
             "Content-Type: text/plain\r\n"
             "\r\n"
             "Your message could not be delivered.\r\n"
             "\r\n"
             "--AB12.1/mx.example.com\r\n"
             "Content-Type: message/delivery-status\r\n"
             "\r\n"
             "Reporting-MTA: dns; mx.example.com\r\n"
             "\r\n"
             "Final-Recipient: rfc822; gone@example.org\r\n"
             "Action: failed\r\n"
             "Status: %s\r\n"
             "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
             "\r\n"
             "--AB12.1/mx.example.com\r\n"
             "Content-Type: text/rfc822-headers\r\n"
             "\r\n"
             "Message-ID: %s\r\n"
             "Subject: Your order\r\n"
             "\r\n"
             "--AB12.1/mx.example.com--\r\n",
             to, to, status, message_id);
}

START_TEST(test_smtp_bounce_found_by_verp_and_by_message_id)
{
    h_gateway g;
    h_start(&g, "--email-bounce-address", BOUNCE, NULL);
    seeded a, b, c;
    seed("email", "gone@example.org", &a);
    seed("email", "gone2@example.org", &b);
    seed("email", "gone3@example.org", &c);
    char msg[4096], to[128], why[64];
    h_resp r;

    /* by the VERP address in Delivered-To, whatever the returned headers say */
    snprintf(to, sizeof to, "bounces+%s@mail.example.com", a.key);
    dsn(msg, sizeof msg, to, "5.1.1", "<someone-else@example.net>");
    h_http(&g, "POST", "/v1/receipts/smtp", h_adminkey, "message/rfc822", msg, NULL, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &a, "bounced");
    suppression("email", "gone@example.org", why, sizeof why);
    ck_assert_str_eq(why, "hard_bounce");
    /* the MTA piping it again */
    h_http(&g, "POST", "/v1/receipts/smtp", h_adminkey, "message/rfc822", msg, NULL, &r);
    ck_assert_str_eq(outcome(&r), "duplicate");
    h_resp_clear(&r);

    /* by the returned Message-ID */
    char mid[64];
    snprintf(mid, sizeof mid, "<%s@herald>", b.key);
    dsn(msg, sizeof msg, "postmaster@mail.example.com", "4.2.2", mid);
    h_http(&g, "POST", "/v1/receipts/smtp", h_adminkey, "application/x-www-form-urlencoded", msg,
           NULL, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &b, "bounced");
    suppression("email", "gone2@example.org", why, sizeof why);
    ck_assert_str_eq(why, ""); /* transient, once */

    /* by the recipient the MTA names in the query */
    char path[160];
    snprintf(path, sizeof path, "/v1/receipts/smtp?recipient=bounces%%2B%s%%40mail.example.com",
             c.key);
    dsn(msg, sizeof msg, "postmaster@mail.example.com", "5.1.1", "<x@y>");
    h_http(&g, "POST", path, h_adminkey, "message/rfc822", msg, NULL, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &c, "bounced");
    /* an MTA that does not escape the address's '+' */
    seeded d;
    seed("email", "gone4@example.org", &d);
    snprintf(path, sizeof path, "/v1/receipts/smtp?recipient=bounces+%s@mail.example.com", d.key);
    h_http(&g, "POST", path, h_adminkey, "message/rfc822", msg, NULL, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &d, "bounced");

    /* a publish key may not, nor anyone without a key */
    h_http(&g, "POST", "/v1/receipts/smtp", h_pubkey, "message/rfc822", msg, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/receipts/smtp", NULL, "message/rfc822", msg, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    h_resp_clear(&r);
    /* not a bounce */
    h_http(&g, "POST", "/v1/receipts/smtp", h_adminkey, "message/rfc822",
           "Subject: hello\r\n\r\nhi\r\n", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* ------------------------------------------------- the HTTP provider */

static void http_post(h_gateway *g, const char *body, const char *secret, h_resp *r)
{
    char sig[HSIG_SIZE], header[HSIG_SIZE + 32];
    ck_assert_int_eq(
        hsig_sign(secret, strlen(secret), timeutil_now_ms(), body, strlen(body), sig, sizeof sig),
        0);
    snprintf(header, sizeof header, "%s: %s", HSIG_HEADER, sig);
    h_http(g, "POST", "/v1/receipts/http", NULL, NULL, body, header, r);
}

START_TEST(test_http_provider_callback_good_and_forged)
{
    setenv("HERALD_HTTP_CALLBACK_SECRET", HTTP_SECRET, 1);
    h_gateway g;
    h_start(&g, NULL);
    seeded s;
    seed("sms", "+15550003333", &s);
    char body[256];
    snprintf(body, sizeof body,
             "{\"id\":\"cb-1\",\"idempotency_key\":\"%s\",\"message_id\":\"hp-1\","
             "\"status\":\"delivered\",\"occurred_at\":\"2026-12-07T12:00:00Z\"}",
             s.key);
    h_resp r;
    http_post(&g, body, "some-other-secret-0123456789abcdef", &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/receipts/http", NULL, NULL, body, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    ck_status(&g, &s, "sent");

    http_post(&g, body, HTTP_SECRET, &r);
    ck_assert_str_eq(outcome(&r), "applied");
    h_resp_clear(&r);
    ck_status(&g, &s, "delivered");
    http_post(&g, "{\"id\":\"cb-2\",\"message_id\":\"hp-1\",\"status\":\"opened\"}", HTTP_SECRET,
              &r);
    ck_assert_int_eq(r.status, 400);
    h_resp_clear(&r);
    ck_assert_int_eq(
        metric(&g, "herald_gateway_receipts_total{provider=\"http\",outcome=\"forged\"}"), 2);
    h_stop(&g);
    unsetenv("HERALD_HTTP_CALLBACK_SECRET");
}
END_TEST

START_TEST(test_unconfigured_receipt_routes_answer_404)
{
    unsetenv("HERALD_TWILIO_AUTH_TOKEN");
    unsetenv("HERALD_HTTP_CALLBACK_SECRET");
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "POST", "/v1/receipts/twilio", NULL, "application/x-www-form-urlencoded",
           "MessageSid=SM1&MessageStatus=delivered", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_configured");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/receipts/ses", NULL, "text/plain", "{}", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_configured");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/receipts/http", NULL, NULL, "{}", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_bad_receipt_settings_stop_startup_naming_the_variable)
{
    gateway_config cfg;
    char err[512];
    char *argv1[] = {"herald-gateway", "--sns-cert-file", "/nonexistent.pem"};
    memset(&cfg, 0, sizeof cfg);
    ck_assert_int_eq(gateway_config_load(&cfg, 3, argv1, err, sizeof err), CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "sns-cert-file"));
    gateway_config_free(&cfg);
    char *argv2[] = {"herald-gateway", "--email-bounce-address", "nobody"};
    memset(&cfg, 0, sizeof cfg);
    ck_assert_int_eq(gateway_config_load(&cfg, 3, argv2, err, sizeof err), CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "email-bounce-address"));
    gateway_config_free(&cfg);
    /* a Twilio token without the URL it signs */
    setenv("HERALD_TWILIO_AUTH_TOKEN", TWILIO_TOKEN, 1);
    char *argv3[] = {"herald-gateway", "--database-url", h_dburl, "--http-addr", "127.0.0.1:0"};
    memset(&cfg, 0, sizeof cfg);
    ck_assert_int_eq(gateway_config_load(&cfg, 5, argv3, err, sizeof err), CONFIG_OK);
    ck_assert_ptr_null(gateway_start(&cfg, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "HERALD_RECEIPTS_BASE_URL"));
    gateway_config_free(&cfg);
    unsetenv("HERALD_TWILIO_AUTH_TOKEN");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_twilio_signed_callback_moves_the_delivery_and_a_forged_one_does_not),
    TEST_ENTRY(test_twilio_failed_is_undelivered),
    TEST_ENTRY(test_twilio_stand_in_callbacks_duplicated_and_reordered_end_delivered),
    TEST_ENTRY(test_ses_permanent_bounce_and_complaint_suppress_with_v1_and_v2),
    TEST_ENTRY(test_ses_forged_other_certificate_or_topic_is_refused),
    TEST_ENTRY(test_ses_transient_bounces_suppress_at_the_limit),
    TEST_ENTRY(test_ses_duplicated_and_reordered_receipts_end_in_the_right_status),
    TEST_ENTRY(test_ses_receipt_for_an_unknown_message_is_answered_and_counted),
    TEST_ENTRY(test_sns_subscription_is_confirmed_for_an_allowed_host_only),
    TEST_ENTRY(test_smtp_bounce_found_by_verp_and_by_message_id),
    TEST_ENTRY(test_http_provider_callback_good_and_forged),
    TEST_ENTRY(test_unconfigured_receipt_routes_answer_404),
    TEST_ENTRY(test_bad_receipt_settings_stop_startup_naming_the_variable),
};

TEST_MAIN("gateway_receipts", cases)

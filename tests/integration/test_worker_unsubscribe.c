/*
 * herald-worker's email against the SMTP stand-in: a marketing email
 * carries List-Unsubscribe (https and mailto) and List-Unsubscribe-Post,
 * a transactional, critical or uncategorised one does not; with a bounce
 * address the envelope sender is the VERP address of the delivery while
 * From and Message-ID stay; half a configuration stops startup.
 */
#include "worker_harness.h"

#include "unsubtoken.h"

#define SECRET "unsubscribe-secret-of-32-bytes!!"

/* Produces an email delivery of category (may be NULL) and priority; its key into key. */
static void produce_email(wh_env *e, const char *user, const char *category,
                          event_priority priority, char *key)
{
    char err[256];
    char *json = NULL;
    size_t len = 0;
    delivery d = {0};
    ck_assert_int_eq(id_uuid_v4(d.event_id), 0);
    d.channel = DELIVERY_EMAIL;
    ck_assert_int_eq(delivery_idempotency_key(d.event_id, d.channel, "ann@example.com", 0,
                                              d.idempotency_key, sizeof d.idempotency_key),
                     0);
    d.user_id = (char *)user;
    d.attempt = 1;
    d.address = (char *)"ann@example.com";
    d.subject = (char *)"News of the week";
    d.body = (char *)"Hello Ann";
    d.priority = priority;
    d.category = (char *)category;
    d.event_type = (char *)"newsletter.sent";
    d.created_at = timeutil_now_ms();
    ck_assert_int_eq(delivery_serialize(&d, &json, &len), 0);
    ck_assert(kafka_produce(e->producer, e->topics[0], user, strlen(user), json, len, NULL, NULL,
                            err, sizeof err) == KAFKA_OK);
    free(json);
    snprintf(key, ID_UUID_SIZE, "%s", d.idempotency_key);
}

/* The stand-in's record of the message whose Message-ID holds key. */
static json_t *record_of(json_t *records, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *mid = json_string_value(json_object_get(r, "message_id"));
        if (mid != NULL && strstr(mid, key) != NULL)
            return r;
    }
    ck_abort_msg("no message with key %s", key);
    return NULL;
}

static const char *raw_of(json_t *records, const char *key)
{
    const char *raw = json_string_value(json_object_get(record_of(records, key), "raw"));
    ck_assert_ptr_nonnull(raw);
    return raw;
}

START_TEST(test_marketing_email_carries_one_click_and_others_do_not_with_verp_sender)
{
    wh_env e;
    wh_proc smtp = {0}, w = {0};
    char url[128], marketing[ID_UUID_SIZE], txn[ID_UUID_SIZE], critical[ID_UUID_SIZE],
        bare[ID_UUID_SIZE], value[2048], link[1024], want[128];
    wh_setup(&e, "email");
    wh_start_smtp(&e, &smtp, NULL);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp",
                         url,
                         "HERALD_EMAIL_FROM=Herald <noreply@example.com>",
                         "HERALD_UNSUBSCRIBE_SECRET=" SECRET,
                         "HERALD_UNSUBSCRIBE_URL=https://notify.example.com",
                         "HERALD_UNSUBSCRIBE_MAILTO=unsubscribe@example.com",
                         "HERALD_EMAIL_BOUNCE_ADDRESS=bounces@mail.example.com",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    produce_email(&e, "u-1", "marketing", EVENT_PRIORITY_NORMAL, marketing);
    produce_email(&e, "u-1", "transactional", EVENT_PRIORITY_NORMAL, txn);
    produce_email(&e, "u-1", "marketing", EVENT_PRIORITY_CRITICAL, critical);
    produce_email(&e, "u-1", NULL, EVENT_PRIORITY_LOW, bare);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 4, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 4)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 4);
    json_t *recs = wh_records(&smtp);
    ck_assert_int_eq(json_array_size(recs), 4);

    /* The marketing email: both links, one-click, the token for its user and category. */
    const char *raw = raw_of(recs, marketing);
    ck_assert_int_eq(testsupport_mail_header(raw, "List-Unsubscribe", value, sizeof value), 0);
    ck_assert_int_eq(testsupport_unsubscribe_link(value, link, sizeof link), 0);
    const char *prefix = "https://notify.example.com/v1/unsubscribe?token=";
    ck_assert_msg(strncmp(link, prefix, strlen(prefix)) == 0, "%s", link);
    const char *token = link + strlen(prefix);
    unsubtoken t;
    ck_assert_int_eq(unsubtoken_verify(SECRET, strlen(SECRET), token, strlen(token),
                                       timeutil_now_ms() / 1000, &t),
                     SIGNEDTOKEN_OK);
    ck_assert_str_eq(t.user_id, "u-1");
    ck_assert_str_eq(t.category, "marketing");
    ck_assert_int_eq(t.channel, DELIVERY_EMAIL);
    ck_assert_msg(t.expires_unix > timeutil_now_ms() / 1000 + 59 * 86400, "60 days by default");
    char mailto[600];
    snprintf(mailto, sizeof mailto, ", <mailto:unsubscribe@example.com?subject=%s>", token);
    ck_assert_msg(strstr(value, mailto) != NULL, "%s", value);
    ck_assert_int_eq(testsupport_mail_header(raw, "List-Unsubscribe-Post", value, sizeof value), 0);
    ck_assert_str_eq(value, "List-Unsubscribe=One-Click");
    /* Folded lines only: no header line past RFC 5322's limit. */
    for (const char *p = raw, *end = strstr(raw, "\r\n\r\n"); p < end;) {
        const char *eol = strstr(p, "\r\n");
        ck_assert_int_le(eol - p, 998);
        p = eol + 2;
    }

    /* Transactional, critical and uncategorised: neither header. */
    const char *others[] = {txn, critical, bare};
    for (int i = 0; i < 3; i++) {
        raw = raw_of(recs, others[i]);
        ck_assert_msg(strstr(raw, "List-Unsubscribe") == NULL, "%s", raw);
    }

    /* Every envelope sender is the delivery's VERP address; From and Message-ID stay. */
    const char *all[] = {marketing, txn, critical, bare};
    for (int i = 0; i < 4; i++) {
        json_t *r = record_of(recs, all[i]);
        snprintf(want, sizeof want, "bounces+%s@mail.example.com", all[i]);
        ck_assert_str_eq(json_string_value(json_object_get(r, "from")), want);
        raw = json_string_value(json_object_get(r, "raw"));
        ck_assert_int_eq(testsupport_mail_header(raw, "From", value, sizeof value), 0);
        ck_assert_str_eq(value, "Herald <noreply@example.com>");
        snprintf(want, sizeof want, "<%s@herald>", all[i]);
        ck_assert_int_eq(testsupport_mail_header(raw, "Message-ID", value, sizeof value), 0);
        ck_assert_str_eq(value, want);
    }
    json_decref(recs);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_without_the_settings_no_header_and_the_from_address_as_sender)
{
    wh_env e;
    wh_proc smtp = {0}, w = {0};
    char url[128], k[ID_UUID_SIZE];
    wh_setup(&e, "email");
    wh_start_smtp(&e, &smtp, NULL);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp", url,
                         "HERALD_EMAIL_FROM=Herald <noreply@example.com>", NULL};
    wh_start_worker(&e, &w, "worker", env);
    produce_email(&e, "u-1", "marketing", EVENT_PRIORITY_NORMAL, k);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    json_t *recs = wh_records(&smtp);
    json_t *r = record_of(recs, k);
    ck_assert_str_eq(json_string_value(json_object_get(r, "from")), "noreply@example.com");
    ck_assert_ptr_null(strstr(json_string_value(json_object_get(r, "raw")), "List-Unsubscribe"));
    json_decref(recs);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

/* Runs herald-worker --channel email with env added; expects exit 2 naming var. */
static void refused_naming(const char *const *env, const char *var)
{
    char bin[512], out[4096], errout[8192];
    testsupport_bin("herald-worker", bin, sizeof bin);
    char *argv[] = {bin, "--channel", "email", NULL};
    int rc = testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 30000);
    ck_assert_msg(rc == 2, "exit %d: %s", rc, errout);
    ck_assert_msg(strstr(errout, var) != NULL, "%s", errout);
}

START_TEST(test_half_a_configuration_stops_startup_naming_the_variable)
{
    const char *base[] = {"HERALD_EMAIL_PROVIDER=smtp", "HERALD_SMTP_URL=smtp://127.0.0.1:9",
                          "HERALD_EMAIL_FROM=noreply@example.com",
                          "HERALD_METRICS_ADDR=127.0.0.1:0"};
    const char *secret_only[] = {
        base[0], base[1], base[2], base[3], "HERALD_UNSUBSCRIBE_SECRET=" SECRET, NULL};
    refused_naming(secret_only, "HERALD_UNSUBSCRIBE_URL");
    const char *url_only[] = {
        base[0], base[1], base[2], base[3], "HERALD_UNSUBSCRIBE_URL=https://notify.example.com",
        NULL};
    refused_naming(url_only, "HERALD_UNSUBSCRIBE_SECRET");
    const char *bad_url[] = {
        base[0], base[1], base[2], base[3], "HERALD_UNSUBSCRIBE_URL=notify.example.com", NULL};
    refused_naming(bad_url, "HERALD_UNSUBSCRIBE_URL");
    const char *bad_bounce[] = {
        base[0], base[1], base[2], base[3], "HERALD_EMAIL_BOUNCE_ADDRESS=bounces", NULL};
    refused_naming(bad_bounce, "HERALD_EMAIL_BOUNCE_ADDRESS");
    const char *long_bounce[] = {
        base[0],
        base[1],
        base[2],
        base[3],
        "HERALD_EMAIL_BOUNCE_ADDRESS=a-local-part-too-long-for-a-key@example.com",
        NULL};
    refused_naming(long_bounce, "HERALD_EMAIL_BOUNCE_ADDRESS");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_marketing_email_carries_one_click_and_others_do_not_with_verp_sender),
    TEST_ENTRY(test_without_the_settings_no_header_and_the_from_address_as_sender),
    TEST_ENTRY(test_half_a_configuration_stops_startup_naming_the_variable),
};

TEST_MAIN_TIMEOUT("worker_unsubscribe", cases, 120)

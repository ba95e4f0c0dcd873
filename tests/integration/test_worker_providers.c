/*
 * herald-worker against the test providers: each provider receives a
 * correct request (headers, encoding, auth), rows end 'sent' with the
 * provider's message id, a dead push token is removed.
 */
#include "worker_harness.h"

static json_t *record_with_key(json_t *records, const char *field, const char *key)
{
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        const char *v = json_string_value(json_object_get(r, field));
        if (v && strcmp(v, key) == 0)
            return r;
    }
    return NULL;
}

START_TEST(test_sms_http_provider_gets_json_with_idempotency_and_bearer)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char k1[ID_UUID_SIZE], k2[ID_UUID_SIZE], url[128];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--auth-token", "s3cret", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, "HERALD_SMS_AUTH_TOKEN=s3cret", NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "+14155550100", NULL, "Your code is 1234", k1);
    wh_produce_delivery(&e, "u-2", "+14155550101", NULL, "Grüße ✓ \"quoted\"", k2);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 2, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 2)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 2);
    json_t *recs = wh_records(&prov);
    json_t *r = record_with_key(recs, "idempotency_key", k1);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(json_string_value(json_object_get(r, "body_idempotency_key")), k1);
    ck_assert_str_eq(json_string_value(json_object_get(r, "to")), "+14155550100");
    ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "Your code is 1234");
    ck_assert_str_eq(json_string_value(json_object_get(r, "user_id")), "u-1");
    r = record_with_key(recs, "idempotency_key", k2);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "Grüße ✓ \"quoted\"");
    json_decref(recs);
    char *row = wh_db_text(&e,
                           "SELECT provider || ' ' || attempts || ' ' || (lease_owner IS NULL) || "
                           "' ' || (provider_message_id LIKE 'msg-%%') FROM deliveries "
                           "WHERE idempotency_key = '%s'",
                           k1);
    ck_assert_str_eq(row, "http 1 true true");
    free(row);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_sms_twilio_provider_gets_form_with_basic_auth)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--twilio-sid", "AC123", "--twilio-token", "tok", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=twilio",      url,
                         "HERALD_TWILIO_ACCOUNT_SID=AC123", "HERALD_TWILIO_AUTH_TOKEN=tok",
                         "HERALD_SMS_FROM=+15005550006",    NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "+14155550100", NULL, "a & b = c?", k);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    json_t *recs = wh_records(&prov);
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "protocol")), "twilio");
    ck_assert_str_eq(json_string_value(json_object_get(r, "account_sid")), "AC123");
    ck_assert_str_eq(json_string_value(json_object_get(r, "to")), "+14155550100");
    ck_assert_str_eq(json_string_value(json_object_get(r, "from")), "+15005550006");
    ck_assert_str_eq(json_string_value(json_object_get(r, "body")), "a & b = c?");
    json_decref(recs);
    char *pid = wh_db_text(&e, "SELECT provider_message_id FROM deliveries");
    ck_assert_int_eq(strncmp(pid, "SM", 2), 0);
    free(pid);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

/*
 * A provider's receipt may come before the worker recorded the send (a
 * fast callback): the delivery keeps the receipt's status and its history
 * has both, the worker's 'sent' after the receipt's 'delivered'.
 */
START_TEST(test_a_receipt_during_the_send_is_kept_by_the_record)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128];
    wh_setup(&e, "sms");
    const char *pargs[] = {"--auth-token", "s3cret", "--latency-ms", "1500", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d/sms", prov.port);
    const char *env[] = {"HERALD_SMS_PROVIDER=http", url, "HERALD_SMS_AUTH_TOKEN=s3cret", NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "+14155550101", NULL, "hello", k);
    wh_flush(&e);
    /* Claimed: the send is in flight for 1.5 s. */
    long claimed = wh_wait_count(&e, 1, 30000,
                                 "SELECT count(*) FROM deliveries WHERE idempotency_key='%s' AND "
                                 "lease_owner IS NOT NULL",
                                 k);
    ck_assert_int_eq(claimed, 1);
    char *out = wh_db_text(&e,
                           "SELECT herald_receipt_apply('http', 'r-early', NULL, '%s', "
                           "'delivered', NULL, NULL, NULL, now(), 3)",
                           k);
    ck_assert_str_eq(out, "applied");
    free(out);
    long recorded = wh_wait_count(&e, 1, 30000,
                                  "SELECT count(*) FROM deliveries WHERE idempotency_key='%s' AND "
                                  "lease_owner IS NULL AND provider_message_id IS NOT NULL",
                                  k);
    if (recorded != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(recorded, 1);
    char *st = wh_db_text(&e, "SELECT status FROM deliveries WHERE idempotency_key='%s'", k);
    ck_assert_str_eq(st, "delivered");
    free(st);
    char *hist = wh_db_text(&e,
                            "SELECT string_agg(status || '/' || source, ' ' ORDER BY id) FROM "
                            "delivery_history WHERE idempotency_key='%s'",
                            k);
    ck_assert_str_eq(hist, "delivered/receipt sent/worker");
    free(hist);
    /* Sent once. */
    ck_assert_int_eq(wh_stat(&prov, "accepted"), 1);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_push_http_provider_and_dead_token_removed)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char live[ID_UUID_SIZE], dead[ID_UUID_SIZE], url[128];
    wh_setup(&e, "push");
    wh_db_exec(&e, "INSERT INTO users (user_id) VALUES ('u-1')");
    wh_db_exec(&e, "INSERT INTO push_tokens (user_id, token) VALUES ('u-1', 'tok-live'), "
                   "('u-1', 'tok-dead')");
    const char *pargs[] = {"--dead-tokens", "tok-dead", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_PUSH_URL=http://127.0.0.1:%d/push", prov.port);
    const char *env[] = {"HERALD_PUSH_PROVIDER=http", url, NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "tok-live", "Shipped", "Your order is on its way", live);
    wh_produce_delivery(&e, "u-1", "tok-dead", "Shipped", "Your order is on its way", dead);
    wh_flush(&e);
    long done = wh_wait_count(
        &e, 2, 30000, "SELECT count(*) FROM deliveries WHERE status IN ('sent','undelivered')");
    if (done != 2)
        wh_dump_log(&w);
    ck_assert_int_eq(done, 2);
    char *st = wh_db_text(&e,
                          "SELECT status || ' ' || attempts || ' ' || last_error FROM "
                          "deliveries WHERE idempotency_key = '%s'",
                          dead);
    ck_assert_msg(strncmp(st, "undelivered 1 dead_token", 24) == 0, "%s", st);
    free(st);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM push_tokens WHERE token='tok-dead'"), 0);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM push_tokens WHERE token='tok-live'"), 1);
    json_t *recs = wh_records(&prov);
    json_t *r = record_with_key(recs, "idempotency_key", live);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(json_string_value(json_object_get(r, "token")), "tok-live");
    ck_assert_str_eq(json_string_value(json_object_get(r, "title")), "Shipped");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "data"), "order")),
                     "A-1");
    json_decref(recs);
    /* a dead token is not retried: nothing in the retry topic or the DLQ */
    ck_assert_int_eq(wh_read_topic(&e, e.topics[1], 1, 2000, NULL, NULL), 0);
    ck_assert_int_eq(wh_read_topic(&e, e.topics[2], 1, 1000, NULL, NULL), 0);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_push_fcm_provider_and_unregistered_token)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char live[ID_UUID_SIZE], dead[ID_UUID_SIZE], url[128];
    wh_setup(&e, "push");
    wh_db_exec(&e, "INSERT INTO users (user_id) VALUES ('u-9')");
    wh_db_exec(&e, "INSERT INTO push_tokens (user_id, token) VALUES ('u-9', 'fcm-dead')");
    const char *pargs[] = {"--fcm-token", "ya29.test", "--dead-tokens", "fcm-dead", NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_PUSH_URL=http://127.0.0.1:%d", prov.port);
    const char *env[] = {"HERALD_PUSH_PROVIDER=fcm", url, "HERALD_FCM_PROJECT_ID=herald-test",
                         "HERALD_FCM_ACCESS_TOKEN=ya29.test", NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-9", "fcm-live", "Hi", "Body", live);
    wh_produce_delivery(&e, "u-9", "fcm-dead", "Hi", "Body", dead);
    wh_flush(&e);
    long done = wh_wait_count(
        &e, 2, 30000, "SELECT count(*) FROM deliveries WHERE status IN ('sent','undelivered')");
    if (done != 2)
        wh_dump_log(&w);
    ck_assert_int_eq(done, 2);
    char *pid = wh_db_text(&e,
                           "SELECT provider_message_id FROM deliveries WHERE "
                           "idempotency_key='%s' AND status='sent'",
                           live);
    ck_assert_msg(strncmp(pid, "projects/herald-test/messages/", 30) == 0, "%s", pid);
    free(pid);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM push_tokens"), 0);
    json_t *recs = wh_records(&prov);
    json_t *r = json_array_get(recs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "protocol")), "fcm");
    ck_assert_str_eq(json_string_value(json_object_get(r, "project")), "herald-test");
    json_decref(recs);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_email_smtp_with_auth_utf8_subject_and_message_id)
{
    wh_env e;
    wh_proc smtp = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128];
    wh_setup(&e, "email");
    const char *sargs[] = {"--user", "herald", "--password", "pw", NULL};
    wh_start_smtp(&e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp",
                         url,
                         "HERALD_SMTP_USERNAME=herald",
                         "HERALD_SMTP_PASSWORD=pw",
                         "HERALD_EMAIL_FROM=Herald <noreply@example.com>",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "ann@example.com", "Commande expédiée ✓",
                        "Bonjour Ann,\n\nVotre commande est partie.\n.\nÀ bientôt", k);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    json_t *recs = wh_records(&smtp);
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(r, "auth_user")), "herald");
    ck_assert_str_eq(json_string_value(json_object_get(r, "from")), "noreply@example.com");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "rcpt"), 0)),
                     "ann@example.com");
    char mid[128];
    snprintf(mid, sizeof mid, "<%s@herald>", k);
    const char *got_mid = json_string_value(json_object_get(r, "message_id"));
    ck_assert_msg(got_mid && strstr(got_mid, k), "message_id %s", got_mid ? got_mid : "(null)");
    const char *subject = json_string_value(json_object_get(r, "subject"));
    ck_assert_msg(subject && strncmp(subject, "=?UTF-8?B?", 10) == 0, "subject %s",
                  subject ? subject : "(null)");
    const char *raw = json_string_value(json_object_get(r, "raw"));
    ck_assert_ptr_nonnull(strstr(raw, "Content-Transfer-Encoding: quoted-printable"));
    ck_assert_ptr_nonnull(strstr(raw, "Content-Type: text/plain; charset=UTF-8"));
    ck_assert_ptr_nonnull(strstr(raw, "MIME-Version: 1.0"));
    ck_assert_ptr_nonnull(strstr(raw, "Date: "));
    ck_assert_ptr_nonnull(strstr(raw, "=C3=80 bient=C3=B4t"));
    ck_assert_ptr_nonnull(strstr(raw, "\r\n.\r\n") == NULL ? raw : strstr(raw, "parti"));
    json_decref(recs);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_email_smtp_550_at_rcpt_bounces_and_suppresses)
{
    wh_env e;
    wh_proc smtp = {0}, w = {0};
    char url[128], key[ID_UUID_SIZE], again[ID_UUID_SIZE];
    wh_setup(&e, "email");
    /* the first message is refused for good at RCPT: a hard bounce */
    const char *sargs[] = {"--fail-status", "550", "--fail-count", "1", "--fail-stage",
                           "rcpt",          NULL};
    wh_start_smtp(&e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp", url, "HERALD_EMAIL_FROM=noreply@example.com",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "gone@example.com", "s", "b", key);
    wh_flush(&e);
    long bounced = wh_wait_count(
        &e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='bounced' AND attempts=1");
    if (bounced != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(bounced, 1);
    char *sup = wh_db_text(&e, "SELECT reason || ' ' || idempotency_key || ' ' || detail "
                               "FROM suppressions WHERE channel='email' AND "
                               "address='gone@example.com'");
    ck_assert_msg(strncmp(sup, "hard_bounce ", 12) == 0 && strstr(sup, key) != NULL &&
                      strstr(sup, "SMTP 550 at RCPT TO") != NULL,
                  "%s", sup);
    free(sup);
    ck_assert_int_eq(wh_db_long(&e,
                                "SELECT count(*) FROM delivery_history WHERE "
                                "idempotency_key='%s' AND status='bounced'",
                                key),
                     1);

    /* The next message to that address (in any case) is suppressed: not sent,
     * not retried, not dead-lettered. */
    wh_produce_delivery(&e, "u-1", "Gone@Example.com", "s2", "b2", again);
    wh_flush(&e);
    long suppressed = wh_wait_count(&e, 1, 30000,
                                    "SELECT count(*) FROM deliveries WHERE status='suppressed' "
                                    "AND idempotency_key='%s'",
                                    again);
    if (suppressed != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(suppressed, 1);
    char *why =
        wh_db_text(&e, "SELECT last_error FROM deliveries WHERE idempotency_key='%s'", again);
    ck_assert_msg(strncmp(why, "suppressed: hard_bounce", 23) == 0, "%s", why);
    free(why);
    json_t *recs = wh_records(&smtp);
    ck_assert_int_eq(json_array_size(recs), 0);
    json_decref(recs);
    ck_assert_int_eq(
        wh_metric(wh_metrics_port(&w), "herald_worker_suppressed_total{channel=\"email\"}"), 1);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_email_smtp_5xx_at_data_is_permanent_4xx_transient)
{
    wh_env e;
    wh_proc smtp = {0}, w = {0};
    char url[128];
    wh_setup(&e, "email");
    /* the first message is refused for good after DATA (the message, not
     * the address: dead-lettered), the second once for now */
    const char *sargs[] = {"--fail-status", "554", "--fail-count", "1", "--fail-stage",
                           "data",          NULL};
    wh_start_smtp(&e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp", url, "HERALD_EMAIL_FROM=noreply@example.com",
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "rejected@example.com", "s", "b", NULL);
    wh_flush(&e);
    long failed =
        wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='failed'");
    if (failed != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(failed, 1);
    char *err = wh_db_text(&e, "SELECT attempts || ' ' || last_error FROM deliveries");
    ck_assert_msg(strncmp(err, "1 SMTP 554", 10) == 0, "%s", err);
    free(err);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM suppressions"), 0);
    wh_control(&smtp, "{\"fail_status\":451,\"fail_count\":1,\"fail_stage\":\"data\"}");
    wh_produce_delivery(&e, "u-2", "later@example.com", "s", "b", NULL);
    wh_flush(&e);
    ck_assert_int_eq(
        wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'"), 1);
    ck_assert_int_eq(
        wh_db_long(&e, "SELECT attempts FROM deliveries WHERE address='later@example.com'"), 2);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_email_file_provider_appends_jsonl)
{
    wh_env e;
    wh_proc w = {0};
    char k[ID_UUID_SIZE], path[300];
    wh_setup(&e, "email");
    wh_start_worker(&e, &w, "worker", NULL);
    wh_produce_delivery(&e, "u-1", "ann@example.com", "Hello", "Body", k);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    snprintf(path, sizeof path, "%s/outbox/email.jsonl", e.dir);
    char *s = testsupport_read_file(path, NULL);
    ck_assert_ptr_nonnull(s);
    json_t *line = json_loads(s, JSON_DISABLE_EOF_CHECK, NULL);
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(json_string_value(json_object_get(line, "idempotency_key")), k);
    ck_assert_str_eq(json_string_value(json_object_get(line, "to")), "ann@example.com");
    ck_assert_str_eq(json_string_value(json_object_get(line, "subject")), "Hello");
    json_decref(line);
    free(s);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}
END_TEST

/* With a status callback URL, Twilio is asked for callbacks naming the
 * delivery, and sends them there. */
START_TEST(test_sms_twilio_asks_for_status_callbacks_at_the_configured_url)
{
    wh_env e;
    wh_proc prov = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128], cb_env[160], cb_url[128];
    wh_setup(&e, "sms");
    /* The stand-in posts the callback to its own port, which answers 404:
     * one attempt, no retry, enough to see where it went and what it said. */
    const char *pargs[] = {"--twilio-sid",
                           "AC123",
                           "--twilio-token",
                           "tok",
                           "--callback-statuses",
                           "sent",
                           "--callback-retries",
                           "0",
                           NULL};
    wh_start_http_provider(&e, &prov, "provider", pargs);
    snprintf(url, sizeof url, "HERALD_SMS_URL=http://127.0.0.1:%d", prov.port);
    snprintf(cb_url, sizeof cb_url, "http://127.0.0.1:%d/v1/receipts/twilio?src=herald", prov.port);
    snprintf(cb_env, sizeof cb_env, "HERALD_TWILIO_STATUS_CALLBACK_URL=%s", cb_url);
    const char *env[] = {"HERALD_SMS_PROVIDER=twilio",
                         url,
                         "HERALD_TWILIO_ACCOUNT_SID=AC123",
                         "HERALD_TWILIO_AUTH_TOKEN=tok",
                         "HERALD_SMS_FROM=+15005550006",
                         cb_env,
                         NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "u-1", "+14155550100", NULL, "status please", k);
    wh_flush(&e);
    long sent = wh_wait_count(&e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    json_t *recs = wh_records(&prov);
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *r = json_array_get(recs, 0);
    /* The configured URL, with this delivery's key added to its query. */
    char want[256];
    snprintf(want, sizeof want, "%s&key=%s", cb_url, k);
    ck_assert_str_eq(json_string_value(json_object_get(r, "status_callback")), want);
    json_decref(recs);

    char *sid = wh_db_text(&e, "SELECT provider_message_id FROM deliveries");
    json_t *cbs = NULL;
    for (int i = 0; i < 200; i++) {
        json_decref(cbs);
        cbs = wh_http_json(prov.control, "/_callbacks", NULL);
        if (json_array_size(cbs) >= 1)
            break;
        testsupport_sleep_ms(50);
    }
    ck_assert_int_eq(json_array_size(cbs), 1);
    json_t *c = json_array_get(cbs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(c, "url")), want);
    ck_assert_str_eq(json_string_value(json_object_get(c, "message_sid")), sid);
    ck_assert_str_eq(json_string_value(json_object_get(c, "message_status")), "sent");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "response_status")), 404);
    json_decref(cbs);
    free(sid);
    wh_stop(&w, SIGTERM, 15000);
    wh_teardown(&e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_sms_http_provider_gets_json_with_idempotency_and_bearer),
    TEST_ENTRY(test_sms_twilio_provider_gets_form_with_basic_auth),
    TEST_ENTRY(test_a_receipt_during_the_send_is_kept_by_the_record),
    TEST_ENTRY(test_push_http_provider_and_dead_token_removed),
    TEST_ENTRY(test_push_fcm_provider_and_unregistered_token),
    TEST_ENTRY(test_email_smtp_with_auth_utf8_subject_and_message_id),
    TEST_ENTRY(test_email_smtp_550_at_rcpt_bounces_and_suppresses),
    TEST_ENTRY(test_email_smtp_5xx_at_data_is_permanent_4xx_transient),
    TEST_ENTRY(test_email_file_provider_appends_jsonl),
    TEST_ENTRY(test_sms_twilio_asks_for_status_callbacks_at_the_configured_url),
};

TEST_MAIN_TIMEOUT("worker_providers", cases, 120)

/*
 * End to end: events published through the gateway's HTTP API reach the
 * providers through the whole pipeline (gateway → events → dispatcher →
 * deliveries.* → workers → SMTP / HTTP providers), and GET /v1/events/{id}
 * tells the truth about each of them — sent, skipped by a preference, failed
 * permanently (with a dead letter) or sent after transient failures.
 *
 * Assertions are on what users and operators see: the providers' own
 * records, the API's answers and the dead-letter topic.
 */
#include "e2e_suite.h"

static e2e_env env;
static bool up;

#define A_USERS       200
#define B_SUBSCRIBERS 100

/* ------------------------------------------------------------ records */

/* The records of the HTTP provider for protocol whose user_id starts with prefix. */
static json_t *http_records(const char *protocol, const char *user_prefix)
{
    json_t *all = e2e_records(&env, E2E_HTTP), *out = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "protocol"));
        const char *u = json_string_value(json_object_get(r, "user_id"));
        if (p && u && strcmp(p, protocol) == 0 && strncmp(u, user_prefix, strlen(user_prefix)) == 0)
            json_array_append(out, r);
    }
    json_decref(all);
    return out;
}

/* The SMTP records with a recipient starting with prefix. */
static json_t *smtp_records(const char *rcpt_prefix)
{
    json_t *all = e2e_records(&env, E2E_SMTP), *out = json_array();
    size_t i, k;
    json_t *r, *to;
    json_array_foreach(all, i, r)
    {
        json_array_foreach(json_object_get(r, "rcpt"), k, to)
        {
            const char *a = json_string_value(to);
            if (a && strncmp(a, rcpt_prefix, strlen(rcpt_prefix)) == 0) {
                json_array_append(out, r);
                break;
            }
        }
    }
    json_decref(all);
    return out;
}

/* Distinct values of field (or of the first rcpt when field is "rcpt"). */
static json_t *distinct(json_t *records, const char *field)
{
    json_t *set = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(records, i, r)
    {
        json_t *v = json_object_get(r, field);
        if (json_is_array(v))
            v = json_array_get(v, 0);
        if (json_is_string(v))
            json_object_set_new(set, json_string_value(v), json_true());
    }
    return set;
}

/*
 * Waits until the providers hold at least want records of each channel for
 * users whose id (and email local part) starts with prefix; returns whether
 * they did within the phase limit.
 */
static bool wait_all_channels(const char *prefix, size_t want)
{
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    char rcpt[64];
    snprintf(rcpt, sizeof rcpt, "%s", prefix);
    size_t ne = 0, ns = 0, np = 0;
    for (int i = 0; i < 1000; i++) {
        json_t *e = smtp_records(rcpt), *s = http_records("sms", prefix),
               *p = http_records("push", prefix);
        ne = json_array_size(e);
        ns = json_array_size(s);
        np = json_array_size(p);
        json_decref(e);
        json_decref(s);
        json_decref(p);
        if ((ne >= want && ns >= want && np >= want) || timeutil_monotonic_ms() > deadline ||
            !e2e_all_alive(&env))
            break;
        testsupport_sleep_ms(250);
    }
    fprintf(stderr, "e2e: %s*: email %zu, sms %zu, push %zu of %zu\n", prefix, ne, ns, np, want);
    return ne >= want && ns >= want && np >= want;
}

/* ------------------------------------------------------------ cases */

START_TEST(test_whole_stack_starts_and_answers)
{
    e2e_up(&env, "e2e_pipeline");
    up = true;
    json_t *j = NULL;
    ck_assert_int_eq(e2e_api(&env, "GET", "/healthz", NULL, &j), 200);
    json_decref(j);
    /* An unknown key is refused: the API really checks keys. */
    char url[128];
    snprintf(url, sizeof url, "%s/v1/users/nobody", env.base);
    ck_assert_int_eq(e2e_request(&env, "GET", url, "hk_not_a_key", NULL, NULL), 401);
}
END_TEST

START_TEST(test_events_for_many_users_reach_every_channel_and_report_sent)
{
    ck_assert_msg(up, "the stack did not start");
    char user[64], email[96], phone[32], token[64], body[256];
    static char ids[A_USERS][ID_UUID_SIZE];
    e2e_put_templates(&env, "e2e.many");
    for (int i = 0; i < A_USERS; i++) {
        snprintf(user, sizeof user, "many-%03d", i);
        snprintf(email, sizeof email, "many-%03d@e2e.test", i);
        snprintf(phone, sizeof phone, "+1555100%04d", i);
        snprintf(token, sizeof token, "many-token-%03d", i);
        e2e_put_user(&env, user, email, phone, token);
    }
    int64_t t0 = timeutil_monotonic_ms();
    for (int i = 0; i < A_USERS; i++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.many\",\"user_id\":\"many-%03d\",\"data\":{\"n\":%d}}", i, i);
        e2e_publish(&env, body, ids[i]);
    }
    ck_assert_msg(wait_all_channels("many-", A_USERS),
                  "not every notification reached the providers within %ld s", E2E_PHASE_MS / 1000);
    fprintf(stderr, "e2e: %d events x 3 channels delivered in %lld ms\n", A_USERS,
            (long long)(timeutil_monotonic_ms() - t0));

    /* Exactly the expected ones: every event on SMS and push, every address by email. */
    json_t *e = smtp_records("many-"), *s = http_records("sms", "many-"),
           *p = http_records("push", "many-");
    json_t *se = distinct(e, "rcpt"), *ss = distinct(s, "event_id"), *sp = distinct(p, "event_id");
    ck_assert_int_eq(json_object_size(se), A_USERS);
    for (int i = 0; i < A_USERS; i++) {
        snprintf(email, sizeof email, "many-%03d@e2e.test", i);
        ck_assert_msg(json_object_get(se, email), "no email to %s", email);
        ck_assert_msg(json_object_get(ss, ids[i]), "no SMS for event %s", ids[i]);
        ck_assert_msg(json_object_get(sp, ids[i]), "no push for event %s", ids[i]);
    }
    /* The rendered content and the address are the user's. */
    json_t *r0 = json_array_get(s, 0);
    const char *to = json_string_value(json_object_get(r0, "to"));
    const char *uid = json_string_value(json_object_get(r0, "user_id"));
    const char *text = json_string_value(json_object_get(r0, "body"));
    ck_assert_ptr_nonnull(to);
    ck_assert_ptr_nonnull(uid);
    ck_assert_msg(text && strstr(text, uid) != NULL, "SMS body \"%s\" does not name %s",
                  text ? text : "", uid);
    ck_assert_str_eq(to + strlen(to) - 3, uid + strlen(uid) - 3);
    json_decref(se);
    json_decref(ss);
    json_decref(sp);
    json_decref(e);
    json_decref(s);
    json_decref(p);

    /* And the API reports each event sent on all three channels. */
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < A_USERS; i++) {
        long left = (long)(deadline - timeutil_monotonic_ms());
        json_t *doc = e2e_wait_event(&env, ids[i], 3, left > 0 ? left : 1);
        ck_assert_msg(doc != NULL, "GET /v1/events/%s stayed 404", ids[i]);
        char *dump = json_dumps(doc, JSON_COMPACT);
        ck_assert_msg(e2e_count_deliveries(doc, NULL, "sent") == 3 &&
                          json_array_size(json_object_get(doc, "deliveries")) == 3,
                      "event %d: %s", i, dump);
        ck_assert_str_eq(json_string_value(json_object_get(doc, "status")), "delivered");
        free(dump);
        json_decref(doc);
    }
}
END_TEST

START_TEST(test_topic_broadcast_reaches_every_subscriber_on_every_channel)
{
    ck_assert_msg(up, "the stack did not start");
    char user[64], email[96], phone[32], token[64], path[160], id[ID_UUID_SIZE];
    e2e_put_templates(&env, "e2e.news");
    for (int i = 0; i < B_SUBSCRIBERS; i++) {
        snprintf(user, sizeof user, "sub-%03d", i);
        snprintf(email, sizeof email, "sub-%03d@e2e.test", i);
        snprintf(phone, sizeof phone, "+1555200%04d", i);
        snprintf(token, sizeof token, "sub-token-%03d", i);
        e2e_put_user(&env, user, email, phone, token);
        snprintf(path, sizeof path, "/v1/topics/e2e-news/subscribers/%s", user);
        e2e_api_expect(&env, 204, "PUT", path, NULL);
    }
    /* A user who is not subscribed gets nothing. */
    e2e_put_user(&env, "sub-outsider", "sub-outsider@e2e.test", "+15552999999", "sub-tok-out");
    e2e_publish(&env, "{\"type\":\"e2e.news\",\"topic\":\"e2e-news\",\"data\":{\"n\":1}}", id);

    ck_assert_msg(wait_all_channels("sub-", B_SUBSCRIBERS),
                  "the broadcast did not reach every subscriber within %ld s", E2E_PHASE_MS / 1000);
    testsupport_sleep_ms(1000); /* room for any extra delivery to show up */
    json_t *e = smtp_records("sub-"), *s = http_records("sms", "sub-"),
           *p = http_records("push", "sub-");
    json_t *se = distinct(e, "rcpt"), *ss = distinct(s, "user_id"), *sp = distinct(p, "user_id");
    ck_assert_int_eq(json_object_size(se), B_SUBSCRIBERS);
    ck_assert_int_eq(json_object_size(ss), B_SUBSCRIBERS);
    ck_assert_int_eq(json_object_size(sp), B_SUBSCRIBERS);
    ck_assert_ptr_null(json_object_get(ss, "sub-outsider"));
    ck_assert_ptr_null(json_object_get(se, "sub-outsider@e2e.test"));
    json_decref(se);
    json_decref(ss);
    json_decref(sp);
    json_decref(e);
    json_decref(s);
    json_decref(p);

    json_t *doc = e2e_wait_event(&env, id, 3 * B_SUBSCRIBERS, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL, "GET /v1/events/%s stayed 404", id);
    for (int k = 0; k < 3; k++) {
        static const char *const ch[] = {"email", "sms", "push"};
        ck_assert_msg(e2e_count_deliveries(doc, ch[k], "sent") == B_SUBSCRIBERS,
                      "broadcast: %zu %s deliveries sent, expected %d",
                      e2e_count_deliveries(doc, ch[k], "sent"), ch[k], B_SUBSCRIBERS);
    }
    json_decref(doc);
}
END_TEST

START_TEST(test_preferences_skip_opted_out_channels_with_a_reason)
{
    ck_assert_msg(up, "the stack did not start");
    char id1[ID_UUID_SIZE], id2[ID_UUID_SIZE];
    e2e_put_templates(&env, "e2e.prefs");
    e2e_put_user(&env, "pref-nosms", "pref-nosms@e2e.test", "+15553000001", "pref-tok-1");
    e2e_api_expect(&env, 200, "PUT", "/v1/users/pref-nosms/preferences",
                   "{\"channels\":{\"sms\":false}}");
    e2e_put_user(&env, "pref-nomarketing", "pref-nomarketing@e2e.test", "+15553000002",
                 "pref-tok-2");
    e2e_api_expect(&env, 200, "PUT", "/v1/users/pref-nomarketing/preferences",
                   "{\"categories\":{\"marketing\":{\"email\":false}}}");

    e2e_publish(&env, "{\"type\":\"e2e.prefs\",\"user_id\":\"pref-nosms\",\"data\":{\"n\":1}}",
                id1);
    e2e_publish(&env,
                "{\"type\":\"e2e.prefs\",\"user_id\":\"pref-nomarketing\",\"category\":"
                "\"marketing\",\"data\":{\"n\":2}}",
                id2);

    json_t *d1 = e2e_wait_event(&env, id1, 3, E2E_PHASE_MS);
    json_t *d2 = e2e_wait_event(&env, id2, 3, E2E_PHASE_MS);
    ck_assert_msg(d1 && d2, "the events were not processed");
    char *s1 = json_dumps(d1, JSON_COMPACT), *s2 = json_dumps(d2, JSON_COMPACT);

    /* SMS opted out: skipped with its reason; email and push sent. */
    json_t *sms = e2e_delivery(d1, "sms");
    ck_assert_msg(sms != NULL, "no sms delivery listed: %s", s1);
    ck_assert_str_eq(json_string_value(json_object_get(sms, "status")), "skipped");
    ck_assert_msg(json_is_string(json_object_get(sms, "skip_reason")) ||
                      json_string_length(json_object_get(sms, "last_error")) > 0,
                  "a skipped delivery without a reason: %s", s1);
    const char *why = json_string_value(json_object_get(sms, "skip_reason"));
    if (why != NULL)
        ck_assert_str_eq(why, "channel_disabled");
    ck_assert_msg(e2e_count_deliveries(d1, "email", "sent") == 1, "%s", s1);
    ck_assert_msg(e2e_count_deliveries(d1, "push", "sent") == 1, "%s", s1);

    /* Marketing email opted out: skipped; SMS and push sent. */
    json_t *mail = e2e_delivery(d2, "email");
    ck_assert_msg(mail != NULL, "no email delivery listed: %s", s2);
    ck_assert_str_eq(json_string_value(json_object_get(mail, "status")), "skipped");
    why = json_string_value(json_object_get(mail, "skip_reason"));
    if (why != NULL)
        ck_assert_str_eq(why, "category_opted_out");
    ck_assert_msg(e2e_count_deliveries(d2, "sms", "sent") == 1, "%s", s2);
    ck_assert_msg(e2e_count_deliveries(d2, "push", "sent") == 1, "%s", s2);

    /* The providers agree: nothing went where the user said no. */
    json_t *r = http_records("sms", "pref-nosms");
    ck_assert_int_eq(json_array_size(r), 0);
    json_decref(r);
    r = smtp_records("pref-nomarketing@");
    ck_assert_int_eq(json_array_size(r), 0);
    json_decref(r);
    r = smtp_records("pref-nosms@");
    ck_assert_int_eq(json_array_size(r), 1);
    json_decref(r);
    r = http_records("sms", "pref-nomarketing");
    ck_assert_int_eq(json_array_size(r), 1);
    json_decref(r);
    free(s1);
    free(s2);
    json_decref(d1);
    json_decref(d2);
}
END_TEST

/* Finds the DLQ record of event_id (value's event_id); returns its headers or NULL. */
static json_t *dlq_find(const char *event_id, long timeout_ms)
{
    char err[512], topic[96], group[96];
    snprintf(topic, sizeof topic, "%sdlq", env.prefix);
    snprintf(group, sizeof group, "%se2e-dlq-reader", env.prefix);
    kafka_consumer *c = kafka_consumer_new(env.brokers, group, NULL, NULL, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    int parts = atoi(E2E_PARTITIONS);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(kafka_consumer_rk(c), l), 0);
    rd_kafka_topic_partition_list_destroy(l);
    json_t *found = NULL;
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000 && found == NULL && timeutil_monotonic_ms() < deadline; i++) {
        rd_kafka_message_t *m = kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == 0) {
            json_t *v = json_loadb(m->payload, m->len, 0, NULL);
            const char *id = json_string_value(json_object_get(v, "event_id"));
            if (id && strcmp(id, event_id) == 0) {
                found = json_object();
                rd_kafka_headers_t *h = NULL;
                const char *name;
                const void *val;
                size_t size;
                if (rd_kafka_message_headers(m, &h) == 0)
                    for (size_t k = 0; rd_kafka_header_get_all(h, k, &name, &val, &size) == 0; k++)
                        json_object_set_new(found, name,
                                            json_stringn(val ? val : "", val ? size : 0));
            }
            json_decref(v);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(kafka_consumer_rk(c), NULL);
    kafka_consumer_destroy(c);
    return found;
}

START_TEST(test_status_reports_permanent_failure_with_dead_letter_and_transient_then_sent)
{
    ck_assert_msg(up, "the stack did not start");
    char id_perm[ID_UUID_SIZE], id_tran[ID_UUID_SIZE];
    /* SMS only, so that each event makes exactly one provider request. */
    e2e_put_template(&env, "e2e.fail", "sms", NULL, "Failure test {{data.n}}", NULL);
    e2e_put_user(&env, "fail-perm", NULL, "+15554000001", NULL);
    e2e_put_user(&env, "fail-tran", NULL, "+15554000002", NULL);

    /* Permanent: the provider answers 400 once. */
    e2e_control(&env, E2E_HTTP, "{\"fail_status\":400,\"fail_count\":1,\"match\":\"/sms\"}");
    e2e_publish(&env, "{\"type\":\"e2e.fail\",\"user_id\":\"fail-perm\",\"data\":{\"n\":1}}",
                id_perm);
    json_t *doc = e2e_wait_event(&env, id_perm, 1, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL, "event %s never processed", id_perm);
    char *dump = json_dumps(doc, JSON_COMPACT);
    json_t *d = e2e_delivery(doc, "sms");
    ck_assert_msg(d != NULL, "%s", dump);
    ck_assert_msg(strcmp(json_string_value(json_object_get(d, "status")), "failed") == 0,
                  "a 400 did not fail the delivery: %s", dump);
    ck_assert_msg(json_integer_value(json_object_get(d, "attempts")) == 1,
                  "a permanent failure was retried: %s", dump);
    ck_assert_msg(json_string_length(json_object_get(d, "last_error")) > 0, "no last_error: %s",
                  dump);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "status")), "failed");
    free(dump);
    json_decref(doc);
    json_t *h = dlq_find(id_perm, 30000);
    ck_assert_msg(h != NULL, "no dead letter for event %s in %sdlq", id_perm, env.prefix);
    dump = json_dumps(h, JSON_COMPACT);
    ck_assert_msg(json_is_string(json_object_get(h, "herald.dlq.reason")) &&
                      strcmp(json_string_value(json_object_get(h, "herald.dlq.reason")),
                             "permanent_failure") == 0,
                  "DLQ headers: %s", dump);
    ck_assert_msg(
        json_is_string(json_object_get(h, "herald.dlq.stage")) &&
            strcmp(json_string_value(json_object_get(h, "herald.dlq.stage")), "worker.sms") == 0,
        "DLQ headers: %s", dump);
    ck_assert_msg(json_is_string(json_object_get(h, "herald.original.topic")), "DLQ headers: %s",
                  dump);
    free(dump);
    json_decref(h);
    json_t *r = http_records("sms", "fail-perm");
    ck_assert_int_eq(json_array_size(r), 0);
    json_decref(r);

    /* Transient: 503 twice, then accepted. */
    e2e_control(&env, E2E_HTTP, "{\"fail_status\":503,\"fail_count\":2,\"match\":\"/sms\"}");
    e2e_publish(&env, "{\"type\":\"e2e.fail\",\"user_id\":\"fail-tran\",\"data\":{\"n\":2}}",
                id_tran);
    doc = e2e_wait_event(&env, id_tran, 1, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL, "event %s never processed", id_tran);
    dump = json_dumps(doc, JSON_COMPACT);
    d = e2e_delivery(doc, "sms");
    ck_assert_msg(d != NULL, "%s", dump);
    ck_assert_msg(strcmp(json_string_value(json_object_get(d, "status")), "sent") == 0,
                  "not sent after two 503s: %s", dump);
    ck_assert_msg(json_integer_value(json_object_get(d, "attempts")) == 3,
                  "expected 3 attempts (503, 503, 202): %s", dump);
    ck_assert_str_eq(json_string_value(json_object_get(doc, "status")), "delivered");
    free(dump);
    json_decref(doc);
    r = http_records("sms", "fail-tran");
    ck_assert_int_eq(json_array_size(r), 1);
    json_decref(r);
    e2e_control(&env, E2E_HTTP, "{\"fail_count\":0,\"match\":\"\"}");
}
END_TEST

/*
 * An event type with an in-app template: the published event becomes one
 * message in the user's inbox, with the user's first change number, and
 * the API reports the in-app delivery sent.
 */
START_TEST(test_inapp_template_puts_a_message_in_the_users_inbox)
{
    ck_assert_msg(up, "the stack did not start");
    char id[ID_UUID_SIZE];
    e2e_put_template(&env, "e2e.inbox", "inapp", "Hi {{user.name}}", "Inbox {{data.n}}", NULL);
    e2e_put_template(&env, "e2e.inbox", "email", "Mail", "Mail {{data.n}}", NULL);
    e2e_put_user(&env, "inbox-ann", "inbox-ann@e2e.test", NULL, NULL);
    e2e_publish(&env, "{\"type\":\"e2e.inbox\",\"user_id\":\"inbox-ann\",\"data\":{\"n\":5}}", id);

    json_t *doc = e2e_wait_event(&env, id, 2, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL, "event %s never reported its in-app delivery sent", id);
    char *dump = json_dumps(doc, JSON_COMPACT);
    ck_assert_msg(e2e_count_deliveries(doc, "inapp", "sent") == 1, "%s", dump);
    ck_assert_msg(e2e_count_deliveries(doc, "email", "sent") == 1, "%s", dump);
    free(dump);
    json_decref(doc);

    PGconn *db = PQconnectdb(env.db_url);
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    char *row =
        testsupport_sql_text(db, "SELECT count(*) || '|' || max(title) || '|' || max(body) || "
                                 "'|' || max(seq) || '|' || max(event_id::text) "
                                 "FROM inbox_messages WHERE user_id = 'inbox-ann'");
    char want[256];
    snprintf(want, sizeof want, "1|Hi inbox-ann|Inbox 5|1|%s", id);
    ck_assert_str_eq(row, want);
    free(row);
    row = testsupport_sql_text(db, "SELECT seq || '/' || unread || '/' || unseen FROM inbox_state "
                                   "WHERE user_id = 'inbox-ann'");
    ck_assert_str_eq(row, "1/1/1");
    free(row);
    PQfinish(db);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_whole_stack_starts_and_answers),
    TEST_ENTRY(test_events_for_many_users_reach_every_channel_and_report_sent),
    TEST_ENTRY(test_topic_broadcast_reaches_every_subscriber_on_every_channel),
    TEST_ENTRY(test_preferences_skip_opted_out_channels_with_a_reason),
    TEST_ENTRY(test_status_reports_permanent_failure_with_dead_letter_and_transient_then_sent),
    TEST_ENTRY(test_inapp_template_puts_a_message_in_the_users_inbox),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_pipeline", cases, env)

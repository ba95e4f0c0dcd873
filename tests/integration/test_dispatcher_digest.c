/*
 * Digest and throttle rules in herald-dispatcher, against the real broker
 * and database: what a worker would read from the deliveries and retry
 * topics (read_committed) and what the status rows and windows say.
 */
#include "dispatcher_harness.h"

#define WAIT_MS 30000

/* comment.created goes by email and push; comment.digest renders its email digest. */
static void comment_templates(dh_env *e)
{
    dh_sql(e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
              "('comment.created','email','New comment','{{data.text}}'),"
              "('comment.created','push','New comment','{{data.text}}'),"
              "('comment.digest','email','{{data.count}} new comments',"
              "'{{#data.events}}[{{data.text}}]{{/data.events}} ... "
              "latest: {{data.last_events.0.data.text}}; by {{data.actor_count}}')");
    dh_sql(e, "INSERT INTO users (user_id, email, name) VALUES "
              "('ann','ann@example.com','Ann'),('bob','bob@example.com','Bob')");
    dh_sql(e,
           "INSERT INTO push_tokens (user_id, token) VALUES ('ann','ann-tok'),('bob','bob-tok')");
}

static void publish_in(dh_env *e, const char *user, const char *thread, const char *text,
                       const char *actor, const char *priority, char *id)
{
    char data[256];
    snprintf(data, sizeof data, "{\"text\":\"%s\",\"actor\":\"%s\",\"thread_id\":\"%s\"}", text,
             actor, thread);
    char *v = dh_event(user, "comment.created", data, priority, NULL, id);
    dh_publish(e, user, v, NULL);
    free(v);
}

static void publish_comment(dh_env *e, const char *user, const char *text, const char *actor,
                            const char *priority, char *id)
{
    publish_in(e, user, "t1", text, actor, priority, id);
}

/* Records of r whose event_type is type. */
static size_t of_type(const dh_records *r, const char *type)
{
    return dh_count(r, "event_type", type);
}

START_TEST(test_a_fixed_window_sends_one_email_while_push_goes_every_time)
{
    dh_env e;
    dh_setup(&e);
    comment_templates(&e);
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, window_ms, "
               "template) VALUES ('comments','comment.created','{email}','fixed',3000,"
               "'comment.digest')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char ids[20][ID_UUID_SIZE];
    const char *actors[3] = {"cy", "di", "ed"};
    for (int i = 0; i < 20; i++) {
        char text[32];
        snprintf(text, sizeof text, "comment %d", i + 1);
        publish_comment(&e, "ann", text, actors[i % 3], "normal", ids[i]);
    }
    ck_assert_int_eq(dh_wait_count(&e, 20, WAIT_MS,
                                   "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
                     20);

    /* Push went out 20 times at once; email 20 times into the digest. */
    dh_records push, email;
    dh_read(&e, "deliveries.push", 20, WAIT_MS, &push);
    ck_assert_uint_eq(push.n, 20);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM delivery_status WHERE channel = 'email' "
                                 "AND status = 'digested'"),
                     20);
    ck_assert_int_eq(
        dh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM digest_windows WHERE status = 'sent'"),
        1);
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 1);
    ck_assert_uint_eq(of_type(&email, "comment.digest"), 1);
    ck_assert_str_eq(dh_str(&email.v[0], "subject"), "20 new comments");
    /* The first ten listed (the rule's default events_shown), the latest, three actors. */
    ck_assert_str_eq(dh_str(&email.v[0], "body"),
                     "[comment 1][comment 2][comment 3][comment 4][comment 5][comment 6]"
                     "[comment 7][comment 8][comment 9][comment 10] ... latest: comment 20; "
                     "by 3");
    ck_assert_str_eq(dh_str(&email.v[0], "address"), "ann@example.com");

    /* Every event is a member of that one window, and the digest has its own status. */
    char *wid = dh_text(&e, "SELECT window_id FROM digest_windows");
    ck_assert_str_eq(dh_str(&email.v[0], "event_id"), wid);
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM digest_events WHERE window_id = '%s' AND "
                             "role = 'member'",
                             wid),
                     20);
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "channel = 'email' AND status = 'pending'",
                             wid),
                     1);
    /* The window closed about when it said it would, not before. */
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows WHERE "
                                 "closed_at >= opened_at + interval '3 s' AND "
                                 "closes_at = opened_at + interval '3 s'"),
                     1);
    free(wid);
    dh_records_free(&push);
    dh_records_free(&email);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_keys_max_events_and_bypasses)
{
    dh_env e;
    dh_setup(&e);
    comment_templates(&e);
    /* Per thread, closed early after 3 events; a long window otherwise. */
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, window_ms, "
               "max_events, group_by, template) VALUES ('threads','comment.created','{email}',"
               "'fixed',600000,3,'data.thread_id','comment.digest')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id[8][ID_UUID_SIZE], crit[ID_UUID_SIZE];
    /* Two events in one millisecond, same thread: one window. */
    char ts[TIMEUTIL_RFC3339_SIZE];
    timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(id_uuid_v4(id[i]), 0);
        char v[512];
        snprintf(v, sizeof v,
                 "{\"event_id\":\"%s\",\"type\":\"comment.created\",\"user_id\":\"bob\","
                 "\"data\":{\"text\":\"same ms %d\",\"thread_id\":\"t9\"},\"priority\":\"normal\","
                 "\"created_at\":\"%s\"}",
                 id[i], i, ts);
        dh_publish(&e, "bob", v, NULL);
    }
    /* A third closes it early; a fourth opens the next window. */
    publish_in(&e, "bob", "t9", "third", "cy", "normal", id[2]);
    /* A critical event bypasses the digest. */
    publish_comment(&e, "bob", "urgent", "cy", "critical", crit);
    ck_assert_int_eq(
        dh_wait_count(&e, 4, WAIT_MS, "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
        4);
    ck_assert_int_eq(
        dh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM digest_windows WHERE status = 'sent'"),
        1);
    /* An event without the grouping field goes under the empty key. */
    char *v = dh_event("bob", "comment.created", "{\"text\":\"no thread\"}", "normal", NULL, id[3]);
    dh_publish(&e, "bob", v, NULL);
    free(v);
    publish_comment(&e, "bob", "fourth", "cy", "normal", id[4]);
    ck_assert_int_eq(
        dh_wait_count(&e, 6, WAIT_MS, "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
        6);

    dh_records email;
    dh_read(&e, "deliveries.email", 2, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 2);
    ck_assert_uint_eq(of_type(&email, "comment.digest"), 1);
    const dh_record *d = dh_find(&email, "event_type", "comment.digest");
    ck_assert_str_eq(dh_str(d, "subject"), "3 new comments");
    const dh_record *c = dh_find(&email, "event_id", crit);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows WHERE group_key = 't9' "
                                 "AND status = 'sent' AND members = 3"),
                     1);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows WHERE group_key = '' AND "
                                 "status = 'open' AND members = 1"),
                     1);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows WHERE group_key = 't1' AND "
                                 "status = 'open' AND members = 1"),
                     1);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_events WHERE event_id = '%s'", crit),
                     0);
    dh_records_free(&email);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_a_sliding_window_extends_and_stops_at_its_maximum)
{
    dh_env e;
    dh_setup(&e);
    comment_templates(&e);
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, window_ms, "
               "max_window_ms, template) VALUES ('slide','comment.created','{email}','sliding',"
               "3000,5000,'comment.digest')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    /* An event every half second for 7 s: each extends the window, until its 5 s maximum. */
    char id[15][ID_UUID_SIZE];
    for (int i = 0; i < 15; i++) {
        publish_comment(&e, "ann", "tick", "cy", "normal", id[i]);
        testsupport_sleep_ms(500);
    }
    ck_assert_int_eq(dh_wait_count(&e, 15, WAIT_MS,
                                   "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
                     15);
    ck_assert_int_eq(
        dh_wait_count(&e, 15, WAIT_MS,
                      "SELECT coalesce(sum(members), 0) FROM digest_windows WHERE status = 'sent'"),
        15);
    /* The first window ran to its maximum; the rest went into the next. */
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM (SELECT * FROM digest_windows "
                                 "ORDER BY opened_at LIMIT 1) w WHERE "
                                 "closes_at = opened_at + interval '5 s' AND "
                                 "deadline = opened_at + interval '5 s'"),
                     1);
    long first = dh_long(&e, "SELECT members FROM digest_windows ORDER BY opened_at LIMIT 1");
    ck_assert_msg(first >= 6 && first <= 12, "first window: %ld events", first);
    dh_records email;
    long windows = dh_long(&e, "SELECT count(*) FROM digest_windows");
    dh_read(&e, "deliveries.email", (size_t)windows, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, (size_t)windows);
    ck_assert_uint_eq(of_type(&email, "comment.digest"), (size_t)windows);
    dh_records_free(&email);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_send_first_and_a_daily_schedule_on_the_users_clock)
{
    dh_env e;
    dh_setup(&e);
    comment_templates(&e);
    dh_sql(&e, "UPDATE users SET timezone = 'America/New_York' WHERE user_id = 'bob'");
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, window_ms, "
               "send_first, template) VALUES ('first','comment.created','{email}','fixed',2000,"
               "true,'comment.digest')");
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('daily.news','email','News','{{data.text}}'),"
               "('daily.digest','email','Your day','{{data.count}} items')");
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, schedule_at, "
               "template) VALUES ('daily','daily.news','{email}','scheduled','09:00',"
               "'daily.digest')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id[4][ID_UUID_SIZE], news[ID_UUID_SIZE];
    for (int i = 0; i < 4; i++)
        publish_comment(&e, "ann", i == 0 ? "opener" : "later", "cy", "normal", id[i]);
    char *v = dh_event("bob", "daily.news", "{\"text\":\"x\"}", "normal", NULL, news);
    dh_publish(&e, "bob", v, NULL);
    free(v);
    ck_assert_int_eq(
        dh_wait_count(&e, 5, WAIT_MS, "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
        5);
    ck_assert_int_eq(
        dh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM digest_windows WHERE status = 'sent'"),
        1);
    dh_records email;
    dh_read(&e, "deliveries.email", 2, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 2);
    /* The first event went at once, the three after it in the digest. */
    const dh_record *f = dh_find(&email, "event_id", id[0]);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(dh_str(f, "body"), "opener");
    const dh_record *d = dh_find(&email, "event_type", "comment.digest");
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(dh_str(d, "subject"), "3 new comments");
    ck_assert_int_eq(
        dh_long(&e, "SELECT count(*) FROM digest_events WHERE event_id = '%s' AND role = 'first'",
                id[0]),
        1);
    /* bob's daily digest closes at the next 09:00 in New York, as PostgreSQL places it. */
    long want = dh_long(&e, "WITH p AS (SELECT now() AT TIME ZONE 'America/New_York' AS loc) "
                            "SELECT (extract(epoch FROM ((CASE WHEN loc::time < '09:00' THEN "
                            "loc::date ELSE loc::date + 1 END + time '09:00') AT TIME ZONE "
                            "'America/New_York')) * 1000)::bigint FROM p");
    ck_assert_int_eq(dh_long(&e, "SELECT (extract(epoch FROM closes_at) * 1000)::bigint FROM "
                                 "digest_windows WHERE rule_name = 'daily' AND status = 'open'"),
                     want);
    dh_records_free(&email);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_throttles_drop_or_defer_and_say_so)
{
    dh_env e;
    dh_setup(&e);
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('promo.sale','email','Sale','Sale on'),('promo.sale','sms',NULL,'Sale on')");
    dh_sql(&e, "INSERT INTO users (user_id, email, phone) VALUES "
               "('ann','ann@example.com','+15550000001')");
    dh_sql(&e, "INSERT INTO throttle_rules (name, category, channel, max_count, window_ms, action) "
               "VALUES ('mail3','marketing','email',3,86400000,'drop'),"
               "('sms1','marketing','sms',1,3600000,'defer')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id[5][ID_UUID_SIZE], crit[ID_UUID_SIZE];
    for (int i = 0; i < 5; i++) {
        char *v = dh_event("ann", "promo.sale", NULL, "normal", "marketing", id[i]);
        dh_publish(&e, "ann", v, NULL);
        free(v);
    }
    char *v = dh_event("ann", "promo.sale", NULL, "critical", "marketing", crit);
    dh_publish(&e, "ann", v, NULL);
    free(v);
    ck_assert_int_eq(
        dh_wait_count(&e, 6, WAIT_MS, "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
        6);

    dh_records email, sms, later;
    dh_read(&e, "deliveries.email", 4, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 4); /* three, and the critical one */
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_nonnull(dh_find(&email, "event_id", id[i]));
    ck_assert_ptr_nonnull(dh_find(&email, "event_id", crit));
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM delivery_status WHERE channel = 'email' "
                                 "AND status = 'throttled' AND skip_reason = 'throttle_dropped'"),
                     2);
    /* One SMS now, the next four deferred an hour apart, each in order. */
    dh_read(&e, "deliveries.sms", 2, WAIT_MS, &sms);
    ck_assert_uint_eq(sms.n, 2);
    ck_assert_ptr_nonnull(dh_find(&sms, "event_id", id[0]));
    dh_read(&e, "retry.sms", 4, WAIT_MS, &later);
    ck_assert_uint_eq(later.n, 4);
    for (int i = 1; i < 5; i++) {
        const dh_record *r = dh_find(&later, "event_id", id[i]);
        ck_assert_ptr_nonnull(r);
        int64_t nb = 0;
        char errb[128];
        ck_assert_int_eq(timeutil_parse_rfc3339(dh_str(r, "not_before"), &nb, errb, sizeof errb),
                         0);
        long sent = dh_long(&e,
                            "SELECT (extract(epoch FROM at) * 1000)::bigint FROM throttle_sends "
                            "WHERE event_id = '%s' AND rule_name = 'sms1'",
                            id[0]);
        ck_assert_int_eq(nb, sent + (int64_t)i * 3600000);
        ck_assert_int_eq(dh_long(&e,
                                 "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                                 "channel = 'sms' AND status = 'throttled' AND "
                                 "skip_reason = 'throttle_deferred' AND "
                                 "(extract(epoch FROM not_before) * 1000)::bigint = %lld",
                                 id[i], (long long)nb),
                         1);
    }
    dh_records_free(&email);
    dh_records_free(&sms);
    dh_records_free(&later);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_settings_at_send_time_bypass_and_retention)
{
    dh_env e;
    dh_setup(&e);
    comment_templates(&e);
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('cid','cid@example.com')");
    dh_sql(&e, "INSERT INTO digest_rules (name, event_type, channels, window_kind, window_ms, "
               "template) VALUES ('comments','comment.created','{email}','fixed',4000,"
               "'comment.digest')");
    /* Finished long ago: a window, its event, and a throttle count. */
    dh_sql(&e, "INSERT INTO digest_windows (window_id, rule_name, channel, user_id, "
               "kafka_partition, status, members, opened_at, last_event_at, closes_at, deadline, "
               "closed_at, sent_at) VALUES ('00000000-0000-4000-8000-000000000001','comments',"
               "'email','cid',0,'sent',1,now() - interval '3 min',now() - interval '3 min',"
               "now() - interval '2 min',now() - interval '2 min',now() - interval '2 min',"
               "now() - interval '2 min')");
    dh_sql(&e, "INSERT INTO digest_events (event_id, channel, window_id, role, item, added_at) "
               "VALUES ('00000000-0000-4000-8000-0000000000e1','email',"
               "'00000000-0000-4000-8000-000000000001','member','{}',now() - interval '3 min')");
    dh_sql(&e, "INSERT INTO throttle_rules (name, max_count, window_ms, action) VALUES "
               "('few',100,1000,'drop')");
    dh_sql(&e, "INSERT INTO throttle_sends (rule_name, channel, event_id, user_id, at, outcome) "
               "VALUES ('few','sms','00000000-0000-4000-8000-0000000000e2','cid',"
               "now() - interval '5 min','pass')");
    const char *extra[] = {"HERALD_DIGEST_RETENTION=1m", NULL};
    dh_start(&e, extra);
    dh_wait_ready(&e, WAIT_MS);
    char a[2][ID_UUID_SIZE], b[2][ID_UUID_SIZE], own[ID_UUID_SIZE];
    for (int i = 0; i < 2; i++) {
        publish_comment(&e, "ann", "for ann", "cy", "normal", a[i]);
        publish_comment(&e, "bob", "for bob", "cy", "normal", b[i]);
    }
    /* "digest": false goes out at once. */
    ck_assert_int_eq(id_uuid_v4(own), 0);
    char v[512], ts[TIMEUTIL_RFC3339_SIZE];
    snprintf(v, sizeof v,
             "{\"event_id\":\"%s\",\"type\":\"comment.created\",\"user_id\":\"cid\","
             "\"data\":{\"text\":\"alone\"},\"priority\":\"normal\",\"digest\":false,"
             "\"created_at\":\"%s\"}",
             own, timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts));
    dh_publish(&e, "cid", v, NULL);
    ck_assert_int_eq(
        dh_wait_count(&e, 5, WAIT_MS, "SELECT count(*) FROM events WHERE type NOT LIKE '%.digest'"),
        5);
    /* While the windows are open, ann turns email off and bob is deleted. */
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows WHERE status = 'open'"), 2);
    dh_sql(&e, "INSERT INTO preferences (user_id, channels) VALUES ('ann','{\"email\": false}')");
    dh_sql(&e, "DELETE FROM users WHERE user_id = 'bob'");
    ck_assert_int_eq(dh_wait_count(&e, 2, WAIT_MS,
                                   "SELECT count(*) FROM digest_windows WHERE status = 'sent' "
                                   "AND user_id IN ('ann', 'bob')"),
                     2);
    char *wa = dh_text(&e, "SELECT window_id FROM digest_windows WHERE user_id = 'ann'");
    char *wb = dh_text(&e, "SELECT window_id FROM digest_windows WHERE user_id = 'bob'");
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "status = 'skipped' AND skip_reason = 'channel_disabled'",
                             wa),
                     1);
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "status = 'skipped' AND skip_reason = 'unknown_user'",
                             wb),
                     1);
    dh_records email;
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 1);
    ck_assert_str_eq(dh_str(&email.v[0], "event_id"), own);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_events WHERE event_id = '%s'", own),
                     0);
    /* The old window, its event and the old count were purged; the new ones kept. */
    ck_assert_int_eq(
        dh_wait_count(&e, 0, WAIT_MS, "SELECT count(*) FROM digest_windows WHERE user_id = 'cid'"),
        0);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_events WHERE event_id = "
                                 "'00000000-0000-4000-8000-0000000000e1'"),
                     0);
    ck_assert_int_eq(dh_wait_count(&e, 0, WAIT_MS,
                                   "SELECT count(*) FROM throttle_sends WHERE "
                                   "user_id = 'cid' AND channel = 'sms'"),
                     0);
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM digest_windows"), 2);
    free(wa);
    free(wb);
    dh_records_free(&email);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

/* herald-worker --channel inapp on e's database and prefix: it writes the inbox messages. */
static pid_t start_inapp_worker(dh_env *e)
{
    char bin[512], url[1024], prefix[80], brokers[300], log[256];
    snprintf(url, sizeof url, "HERALD_DATABASE_URL=%s", e->db_url);
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    snprintf(brokers, sizeof brokers, "HERALD_KAFKA_BROKERS=%s", e->brokers);
    snprintf(log, sizeof log, "%s.inapp", e->log);
    const char *env[] = {
        url, prefix, brokers, "HERALD_METRICS_ADDR=127.0.0.1:0", "HERALD_LOG_LEVEL=info", NULL};
    char *argv[] = {testsupport_bin("herald-worker", bin, sizeof bin), "--channel", "inapp", NULL};
    pid_t pid = testsupport_spawn(argv, env, NULL, log);
    ck_assert_msg(pid > 0, "cannot start herald-worker");
    return pid;
}

START_TEST(test_a_follow_up_email_goes_only_for_an_unread_inbox_message)
{
    dh_env e;
    dh_setup(&e);
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('comment.created','inapp','New comment','{{data.text}}'),"
               "('comment.created','email','New comment','At once: {{data.text}}'),"
               "('comment.reminder','email','Unread comment','Reminder: {{data.text}}')");
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('ann','ann@example.com')");
    dh_sql(&e, "INSERT INTO followup_rules (name, event_type, after_channel, delay_ms, channel, "
               "template) VALUES ('remind','comment.created','inapp',5000,'email',"
               "'comment.reminder')");
    pid_t worker = start_inapp_worker(&e);
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char read[ID_UUID_SIZE], unread[ID_UUID_SIZE];
    char *v = dh_event("ann", "comment.created", "{\"text\":\"first\"}", "normal", NULL, read);
    dh_publish(&e, "ann", v, NULL);
    free(v);
    v = dh_event("ann", "comment.created", "{\"text\":\"second\"}", "normal", NULL, unread);
    dh_publish(&e, "ann", v, NULL);
    free(v);
    ck_assert_int_eq(dh_wait_count(&e, 2, WAIT_MS, "SELECT count(*) FROM inbox_messages"), 2);
    /* The email waits for the follow-up; ann reads the first message before it is due. */
    ck_assert_int_eq(dh_long(&e, "SELECT count(*) FROM delivery_status WHERE channel = 'email' "
                                 "AND status = 'scheduled' AND skip_reason = 'followup'"),
                     2);
    dh_sql(&e, "UPDATE inbox_messages SET read_at = now() WHERE event_id = '%s'", read);
    ck_assert_msg(dh_long(&e,
                          "SELECT count(*) FROM followups WHERE event_id = '%s' AND "
                          "status = 'pending' AND due_at > now()",
                          read) == 1,
                  "the inbox message was read only after its follow-up was due");
    ck_assert_int_eq(dh_wait_count(&e, 2, WAIT_MS,
                                   "SELECT count(*) FROM followups WHERE status IN "
                                   "('sent', 'cancelled')"),
                     2);
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM followups WHERE event_id = '%s' AND "
                             "status = 'cancelled' AND reason = 'read'",
                             read),
                     1);
    ck_assert_int_eq(
        dh_long(&e, "SELECT count(*) FROM followups WHERE event_id = '%s' AND status = 'sent'",
                unread),
        1);
    dh_records email;
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &email);
    ck_assert_uint_eq(email.n, 1);
    ck_assert_str_eq(dh_str(&email.v[0], "event_id"), unread);
    ck_assert_str_eq(dh_str(&email.v[0], "body"), "Reminder: second");
    ck_assert_str_eq(dh_str(&email.v[0], "subject"), "Unread comment");
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "channel = 'email' AND status = 'skipped' AND "
                             "skip_reason = 'followup_read'",
                             read),
                     1);
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "channel = 'email' AND status = 'pending' AND skip_reason IS NULL",
                             unread),
                     1);
    dh_records_free(&email);
    kill(worker, SIGTERM);
    (void)testsupport_wait(worker, 20000);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_a_fixed_window_sends_one_email_while_push_goes_every_time),
    TEST_ENTRY(test_keys_max_events_and_bypasses),
    TEST_ENTRY(test_a_sliding_window_extends_and_stops_at_its_maximum),
    TEST_ENTRY(test_send_first_and_a_daily_schedule_on_the_users_clock),
    TEST_ENTRY(test_throttles_drop_or_defer_and_say_so),
    TEST_ENTRY(test_a_follow_up_email_goes_only_for_an_unread_inbox_message),
    TEST_ENTRY(test_settings_at_send_time_bypass_and_retention),
};

TEST_MAIN_TIMEOUT("dispatcher_digest", cases, 240)

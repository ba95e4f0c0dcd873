/*
 * herald-dispatcher against the real broker and database: what a worker
 * would read from the deliveries topics (read_committed) and what the
 * deliveries table says, for each preference rule, quiet hours, templates,
 * poison records, cache invalidation, a PostgreSQL outage and shutdown.
 */
#include "dispatcher_harness.h"
#include "event.h"
#include "kafka_txn.h"

#define WAIT_MS 30000

static void templates_all_channels(dh_env *e, const char *type)
{
    dh_sql(e,
           "INSERT INTO templates (event_type, channel, subject, body, category) VALUES "
           "('%s','email','Hello {{user.name}}','Body for {{user.name}}', NULL),"
           "('%s','sms',NULL,'SMS for {{user.name}}', NULL),"
           "('%s','push','Title','Push for {{user.name}}', NULL)",
           type, type, type);
}

static long rows(dh_env *e, const char *event_id, const char *channel, const char *status,
                 const char *reason)
{
    return dh_long(e,
                   "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND channel = '%s' "
                   "AND status = '%s' AND coalesce(skip_reason, '') = '%s'",
                   event_id, channel, status, reason ? reason : "");
}

START_TEST(test_preferences_decide_every_channel)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "promo.sale");
    /* order.shipped has no push template at all. */
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('order.shipped','email','Shipped','Your order shipped'),"
               "('order.shipped','sms',NULL,'Your order shipped')");
    dh_sql(&e, "INSERT INTO users (user_id, email, phone, name) VALUES "
               "('ann','ann@example.com','+15550000001','Ann'),"
               "('bob','bob@example.com','+15550000002','Bob'),"
               "('cid','cid@example.com',NULL,'Cid')");
    dh_sql(&e, "INSERT INTO push_tokens (user_id, token) VALUES ('ann','ann-tok'),"
               "('bob','bob-tok-1'),('bob','bob-tok-2')");
    dh_sql(&e, "INSERT INTO preferences (user_id, channels, categories) VALUES "
               "('ann','{\"email\": false}','{}'),"
               "('bob','{}','{\"marketing\": {\"sms\": false}}')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);

    char ann[ID_UUID_SIZE], bob[ID_UUID_SIZE], bobc[ID_UUID_SIZE], cid[ID_UUID_SIZE],
        ship[ID_UUID_SIZE], nobody[ID_UUID_SIZE];
    char *v[6] = {
        dh_event("ann", "promo.sale", NULL, "normal", "marketing", ann),
        dh_event("bob", "promo.sale", NULL, "normal", "marketing", bob),
        dh_event("bob", "promo.sale", NULL, "critical", "marketing", bobc),
        dh_event("cid", "promo.sale", NULL, "normal", NULL, cid),
        dh_event("ann", "order.shipped", NULL, "normal", NULL, ship),
        dh_event("nobody", "promo.sale", NULL, "normal", NULL, nobody),
    };
    const char *keys[6] = {"ann", "bob", "bob", "cid", "ann", "nobody"};
    for (int i = 0; i < 6; i++) {
        dh_publish(&e, keys[i], v[i], NULL);
        free(v[i]);
    }
    ck_assert_int_eq(dh_wait_count(&e, 6, WAIT_MS, "SELECT count(*) FROM events"), 6);

    /* ann turned email off: sms and push only. */
    ck_assert_int_eq(rows(&e, ann, "email", "skipped", "channel_disabled"), 1);
    ck_assert_int_eq(rows(&e, ann, "sms", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, ann, "push", "pending", NULL), 1);
    /* bob opted out of marketing SMS: email and both devices. */
    ck_assert_int_eq(rows(&e, bob, "sms", "skipped", "category_opted_out"), 1);
    ck_assert_int_eq(rows(&e, bob, "email", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, bob, "push", "pending", NULL), 2);
    /* ...but a critical event overrides a category opt-out. */
    ck_assert_int_eq(rows(&e, bobc, "sms", "pending", NULL), 1);
    /* cid has no phone and no device. */
    ck_assert_int_eq(rows(&e, cid, "sms", "skipped", "no_address"), 1);
    ck_assert_int_eq(rows(&e, cid, "push", "skipped", "no_address"), 1);
    ck_assert_int_eq(rows(&e, cid, "email", "pending", NULL), 1);
    /* No push template for order.shipped: no delivery, no row. */
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "channel = 'push'",
                             ship),
                     0);
    ck_assert_int_eq(rows(&e, ship, "sms", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, ship, "email", "skipped", "channel_disabled"), 1);
    /* An unknown user is a skip, not an error. */
    ck_assert_int_eq(rows(&e, nobody, "email", "skipped", "unknown_user"), 1);

    /* What the workers see matches the table, one record per address. */
    dh_records em, sms, push;
    dh_read(&e, "deliveries.email", 3, WAIT_MS, &em);
    dh_read(&e, "deliveries.sms", 3, WAIT_MS, &sms);
    dh_read(&e, "deliveries.push", 3, WAIT_MS, &push);
    ck_assert_uint_eq(em.n, 3); /* bob, cid, and nothing for ann */
    ck_assert_uint_eq(dh_count(&em, "user_id", "ann"), 0);
    ck_assert_uint_eq(sms.n, 3); /* ann (promo), bob critical, ann (order) */
    ck_assert_uint_eq(dh_count(&sms, "event_id", bob), 0);
    ck_assert_uint_eq(push.n, 5); /* ann, bob x2 twice */
    ck_assert_uint_eq(dh_count(&push, "event_id", ship), 0);
    const dh_record *r = dh_find(&em, "event_id", bob);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->key, "bob");
    ck_assert_str_eq(dh_str(r, "address"), "bob@example.com");
    ck_assert_str_eq(dh_str(r, "subject"), "Hello Bob");
    ck_assert_str_eq(dh_str(r, "body"), "Body for Bob");
    ck_assert_str_eq(dh_str(r, "category"), "marketing");
    /* The record's key is the row's key. */
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE idempotency_key = '%s' "
                             "AND address = 'bob@example.com'",
                             dh_str(r, "idempotency_key")),
                     1);
    dh_records_free(&em);
    dh_records_free(&sms);
    dh_records_free(&push);

    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_template_category_wins_over_the_publishers)
{
    dh_env e;
    dh_setup(&e);
    /* A marketing email template; the SMS template has no category. */
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body, category) VALUES "
               "('promo.flash','email','Sale','Sale for {{user.name}}','marketing'),"
               "('promo.flash','sms',NULL,'Sale for {{user.name}}',NULL)");
    dh_sql(&e, "INSERT INTO users (user_id, email, phone, name) VALUES "
               "('dee','dee@example.com','+15550000004','Dee')");
    dh_sql(&e, "INSERT INTO preferences (user_id, channels, categories) VALUES "
               "('dee','{}','{\"marketing\": false}')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    /* The publisher calls it transactional: the template's category wins. */
    char id[ID_UUID_SIZE];
    char *v = dh_event("dee", "promo.flash", NULL, "normal", "transactional", id);
    dh_publish(&e, "dee", v, NULL);
    free(v);
    ck_assert_int_eq(dh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM events"), 1);
    ck_assert_int_eq(rows(&e, id, "email", "skipped", "category_opted_out"), 1);
    ck_assert_int_eq(rows(&e, id, "sms", "pending", NULL), 1);
    dh_records sms;
    dh_read(&e, "deliveries.sms", 1, WAIT_MS, &sms);
    const dh_record *r = dh_find(&sms, "event_id", id);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(dh_str(r, "category"), "transactional");
    dh_records_free(&sms);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_inapp_template_fans_out_to_each_users_inbox)
{
    dh_env e;
    dh_setup(&e);
    /* notice.posted has an in-app template; promo.sale (every other channel) has none. */
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('notice.posted','email','Notice','Notice {{data.n}}'),"
               "('notice.posted','inapp','Hi {{user.name}}','Notice {{data.n}} is up')");
    templates_all_channels(&e, "promo.sale");
    dh_sql(&e, "INSERT INTO users (user_id, email, name) VALUES "
               "('ann','ann@example.com','Ann'),('bob','bob@example.com','Bob'),"
               "('cid','cid@example.com','Cid')");
    /* ann sleeps now (quiet hours all day), bob turned in-app off, cid opted out of news. */
    dh_sql(&e, "INSERT INTO preferences (user_id, channels, categories, quiet_start, quiet_end) "
               "VALUES ('ann','{}','{}', "
               "date_trunc('minute', now() AT TIME ZONE 'UTC' - interval '1 hour')::time, "
               "date_trunc('minute', now() AT TIME ZONE 'UTC' + interval '2 hours')::time),"
               "('bob','{\"inapp\": false}','{}',NULL,NULL),"
               "('cid','{}','{\"news\": {\"inapp\": false}}',NULL,NULL)");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);

    char ann[ID_UUID_SIZE], bob[ID_UUID_SIZE], cid[ID_UUID_SIZE], cidc[ID_UUID_SIZE],
        nobody[ID_UUID_SIZE], promo[ID_UUID_SIZE];
    char *v[6] = {
        dh_event("ann", "notice.posted", "{\"n\":7}", "normal", "news", ann),
        dh_event("bob", "notice.posted", "{\"n\":8}", "normal", "news", bob),
        dh_event("cid", "notice.posted", "{\"n\":9}", "normal", "news", cid),
        dh_event("cid", "notice.posted", "{\"n\":10}", "critical", "news", cidc),
        dh_event("nobody", "notice.posted", "{\"n\":11}", "normal", NULL, nobody),
        dh_event("bob", "promo.sale", NULL, "normal", NULL, promo),
    };
    const char *keys[6] = {"ann", "bob", "cid", "cid", "nobody", "bob"};
    for (int i = 0; i < 6; i++) {
        dh_publish(&e, keys[i], v[i], NULL);
        free(v[i]);
    }
    ck_assert_int_eq(dh_wait_count(&e, 6, WAIT_MS, "SELECT count(*) FROM events"), 6);

    /* Quiet hours hold ann's email but not her inbox. */
    ck_assert_int_eq(rows(&e, ann, "inapp", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, ann, "email", "scheduled", NULL), 1);
    /* Preferences hold for in-app as for any channel; critical overrides the category. */
    ck_assert_int_eq(rows(&e, bob, "inapp", "skipped", "channel_disabled"), 1);
    ck_assert_int_eq(rows(&e, bob, "email", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, cid, "inapp", "skipped", "category_opted_out"), 1);
    ck_assert_int_eq(rows(&e, cidc, "inapp", "pending", NULL), 1);
    ck_assert_int_eq(rows(&e, nobody, "inapp", "skipped", "unknown_user"), 1);
    /* An event type without an in-app template makes no in-app row at all. */
    ck_assert_int_eq(dh_long(&e,
                             "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                             "channel = 'inapp'",
                             promo),
                     0);
    ck_assert_int_eq(
        dh_long(&e, "SELECT count(*) FROM delivery_status WHERE event_id = '%s'", promo), 3);

    /* One record per user on deliveries.inapp, addressed to the user's inbox. */
    dh_records in;
    dh_read(&e, "deliveries.inapp", 2, WAIT_MS, &in);
    ck_assert_uint_eq(in.n, 2);
    ck_assert_uint_eq(dh_count(&in, "event_id", promo), 0);
    const dh_record *r = dh_find(&in, "event_id", ann);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->key, "ann");
    ck_assert_str_eq(dh_str(r, "channel"), "inapp");
    ck_assert_str_eq(dh_str(r, "address"), "ann");
    ck_assert_str_eq(dh_str(r, "title"), "Hi Ann");
    ck_assert_str_eq(dh_str(r, "body"), "Notice 7 is up");
    ck_assert_str_eq(dh_str(r, "not_before"), "");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(r->json, "data"), "n")), 7);
    ck_assert_ptr_nonnull(dh_find(&in, "event_id", cidc));
    dh_records_free(&in);

    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_quiet_hours_schedule_on_retry_topic)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "digest.ready");
    /*
     * Two users in zones 9.5 hours apart, each in quiet hours from an hour
     * ago to two hours ahead on their own clock.  The expected end is
     * computed by PostgreSQL's own time-zone rules, independently of
     * Herald's.
     */
    const char *zones[2] = {"America/New_York", "Asia/Kolkata"};
    const char *users[2] = {"ny", "in"};
    for (int i = 0; i < 2; i++) {
        dh_sql(&e,
               "INSERT INTO users (user_id, email, timezone) VALUES ('%s','%s@example.com','%s')",
               users[i], users[i], zones[i]);
        dh_sql(&e,
               "INSERT INTO preferences (user_id, quiet_start, quiet_end) VALUES ('%s', "
               "date_trunc('minute', (now() AT TIME ZONE '%s') - interval '1 hour')::time, "
               "date_trunc('minute', (now() AT TIME ZONE '%s') + interval '2 hours')::time)",
               users[i], zones[i], zones[i]);
    }
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id[2][ID_UUID_SIZE], low[ID_UUID_SIZE], crit[ID_UUID_SIZE];
    for (int i = 0; i < 2; i++) {
        char *v = dh_event(users[i], "digest.ready", NULL, "normal", NULL, id[i]);
        dh_publish(&e, users[i], v, NULL);
        free(v);
    }
    char *v = dh_event("ny", "digest.ready", NULL, "low", NULL, low);
    dh_publish(&e, "ny", v, NULL);
    free(v);
    v = dh_event("ny", "digest.ready", NULL, "critical", NULL, crit);
    dh_publish(&e, "ny", v, NULL);
    free(v);
    ck_assert_int_eq(dh_wait_count(&e, 4, WAIT_MS, "SELECT count(*) FROM events"), 4);

    dh_records rt, now;
    dh_read(&e, "retry.email", 2, WAIT_MS, &rt);
    ck_assert_uint_eq(rt.n, 2);
    for (int i = 0; i < 2; i++) {
        const dh_record *r = dh_find(&rt, "event_id", id[i]);
        ck_assert_ptr_nonnull(r);
        int64_t nb = 0;
        char errb[128];
        ck_assert_int_eq(timeutil_parse_rfc3339(dh_str(r, "not_before"), &nb, errb, sizeof errb),
                         0);
        /* The next local occurrence of the stored end, as PostgreSQL's rules place it. */
        long want = dh_long(&e,
                            "WITH p AS (SELECT quiet_end AS q, now() AT TIME ZONE '%s' AS loc "
                            "FROM preferences WHERE user_id = '%s') "
                            "SELECT (extract(epoch FROM ((CASE WHEN q > loc::time THEN loc::date "
                            "ELSE loc::date + 1 END + q) AT TIME ZONE '%s')) * 1000)::bigint "
                            "FROM p",
                            zones[i], users[i], zones[i]);
        ck_assert_msg(nb == want, "%s: not_before %s, expected %ld ms", users[i],
                      dh_str(r, "not_before"), want);
        ck_assert_int_eq(dh_long(&e,
                                 "SELECT count(*) FROM delivery_status WHERE event_id = '%s' AND "
                                 "status = 'scheduled' AND "
                                 "(extract(epoch FROM not_before) * 1000)::bigint = %ld",
                                 id[i], want),
                         1);
    }
    /* Low priority is dropped in quiet hours; critical goes at once. */
    ck_assert_int_eq(rows(&e, low, "email", "skipped", "quiet_hours_dropped"), 1);
    ck_assert_int_eq(rows(&e, crit, "email", "pending", NULL), 1);
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &now);
    ck_assert_uint_eq(now.n, 1);
    ck_assert_str_eq(dh_str(&now.v[0], "event_id"), crit);
    dh_records_free(&rt);
    dh_records_free(&now);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_template_renders_nested_data_and_escapes_html)
{
    dh_env e;
    dh_setup(&e);
    dh_sql(&e, "INSERT INTO templates (event_type, channel, subject, body) VALUES "
               "('order.shipped','email','Order {{data.order.id}} for {{user.name}}',"
               "'<p>Hi {{user.name}}, {{data.order.items.0.name}} x{{data.order.items.0.qty}} "
               "costs {{data.order.total}}</p>'),"
               "('order.shipped','sms',NULL,'{{data.order.items.0.name}} shipped')");
    dh_sql(&e, "INSERT INTO users (user_id, email, phone, name) VALUES "
               "('u1','u1@example.com','+15550000009','Tom & \"Jerry\"')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id[ID_UUID_SIZE];
    char *v = dh_event("u1", "order.shipped",
                       "{\"order\":{\"id\":\"A-7\",\"total\":19.99,\"items\":"
                       "[{\"name\":\"<b>Tea</b> & cake\",\"qty\":2}]}}",
                       "normal", NULL, id);
    dh_publish(&e, "u1", v, NULL);
    free(v);
    dh_records em, sms;
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &em);
    dh_read(&e, "deliveries.sms", 1, WAIT_MS, &sms);
    ck_assert_uint_eq(em.n, 1);
    ck_assert_uint_eq(sms.n, 1);
    /* HTML body: inserted values escaped, the template's own markup kept. */
    ck_assert_str_eq(dh_str(&em.v[0], "body"),
                     "<p>Hi Tom &amp; &quot;Jerry&quot;, &lt;b&gt;Tea&lt;/b&gt; &amp; cake x2 "
                     "costs 19.99</p>");
    /* Subject and SMS are plain text: verbatim. */
    ck_assert_str_eq(dh_str(&em.v[0], "subject"), "Order A-7 for Tom & \"Jerry\"");
    ck_assert_str_eq(dh_str(&sms.v[0], "body"), "<b>Tea</b> & cake shipped");
    dh_records_free(&em);
    dh_records_free(&sms);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_poison_records_go_to_dlq_and_the_next_event_is_processed)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "a.b");
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('u1','u1@example.com')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);

    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    ck_assert_int_eq(kafka_header_add_str(h, "trace-id", "t-123"), 0);
    dh_publish(&e, "u1", "{not json", h);
    /* JSON, but no type: an invalid event. */
    dh_publish(&e, "u1",
               "{\"event_id\":\"6f1c0c5e-3c0b-4b8e-9d3e-2f1a7c9b8e01\",\"user_id\":\"u1\","
               "\"data\":{},\"priority\":\"normal\",\"created_at\":\"2026-01-01T00:00:00Z\"}",
               NULL);
    char id[ID_UUID_SIZE];
    char *v = dh_event("u1", "a.b", NULL, "normal", NULL, id);
    dh_publish(&e, "u1", v, NULL);
    free(v);

    dh_records dlq, em;
    dh_read(&e, TOPICS_DLQ, 2, WAIT_MS, &dlq);
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &em);
    ck_assert_uint_eq(dlq.n, 2);
    ck_assert_uint_eq(em.n, 1);
    ck_assert_str_eq(dh_str(&em.v[0], "event_id"), id);

    char b[512], topic[128];
    dh_topic(&e, TOPICS_EVENTS, topic, sizeof topic);
    const dh_record *bad = strcmp(dlq.v[0].value, "{not json") == 0 ? &dlq.v[0] : &dlq.v[1];
    const dh_record *inv = bad == &dlq.v[0] ? &dlq.v[1] : &dlq.v[0];
    ck_assert_str_eq(bad->value, "{not json");
    ck_assert_str_eq(bad->key, "u1");
    ck_assert_str_eq(dh_header(bad, "herald.dlq.reason", b, sizeof b), "invalid_json");
    ck_assert_str_eq(dh_header(bad, "herald.dlq.stage", b, sizeof b), "dispatcher");
    ck_assert_str_eq(dh_header(bad, "herald.original.topic", b, sizeof b), topic);
    ck_assert_str_eq(dh_header(bad, "herald.attempts", b, sizeof b), "1");
    ck_assert_str_eq(dh_header(bad, "trace-id", b, sizeof b), "t-123");
    ck_assert(strlen(dh_header(bad, "herald.dlq.error", b, sizeof b)) > 0);
    ck_assert(strlen(dh_header(bad, "herald.original.partition", b, sizeof b)) > 0);
    ck_assert(strlen(dh_header(bad, "herald.original.offset", b, sizeof b)) > 0);
    ck_assert(atoll(dh_header(bad, "herald.original.timestamp", b, sizeof b)) > 1000000000000LL);
    int64_t when = 0;
    char errb[128];
    ck_assert_int_eq(timeutil_parse_rfc3339(dh_header(bad, "herald.failed_at", b, sizeof b), &when,
                                            errb, sizeof errb),
                     0);
    ck_assert_str_eq(dh_header(inv, "herald.dlq.reason", b, sizeof b), "invalid_event");
    ck_assert_msg(strstr(dh_header(inv, "herald.dlq.error", b, sizeof b), "type") != NULL, "%s", b);
    dh_records_free(&dlq);
    dh_records_free(&em);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

/*
 * A transaction the broker aborted (it outlived transaction.timeout.ms, as
 * while a coordinator fails over) leaves the producer fenced.  Fencing it
 * the other way, with a producer of the same transactional id, has the
 * same effect on the dispatcher's next commit: it must start a new
 * producer, redo the batch and go on, not stop.
 */
START_TEST(test_a_fenced_producer_is_replaced_and_the_batch_redone)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "a.b");
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('u1','u1@example.com')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    char id1[ID_UUID_SIZE], id2[ID_UUID_SIZE];
    char *v = dh_event("u1", "a.b", NULL, "normal", NULL, id1);
    dh_publish(&e, "u1", v, NULL);
    free(v);
    dh_records em;
    dh_read(&e, "deliveries.email", 1, WAIT_MS, &em);
    ck_assert_uint_eq(em.n, 1);
    dh_records_free(&em);

    char err[512];
    kafka_producer *usurper = kafka_producer_new(e.brokers, NULL, NULL, e.tid, err, sizeof err);
    ck_assert_msg(usurper != NULL, "%s", err);
    ck_assert_int_eq(kafka_txn_init(usurper, 30000, err, sizeof err), KAFKA_ERRCLASS_NONE);
    kafka_producer_destroy(usurper);

    v = dh_event("u1", "a.b", NULL, "normal", NULL, id2);
    dh_publish(&e, "u1", v, NULL);
    free(v);
    dh_read(&e, "deliveries.email", 2, WAIT_MS, &em);
    ck_assert_uint_eq(em.n, 2);
    ck_assert_ptr_nonnull(dh_find(&em, "event_id", id2));
    dh_records_free(&em);
    char log[256], tail[8192];
    snprintf(log, sizeof log, "%s.%d", e.log, e.starts - 1);
    ck_assert_msg(strstr(testsupport_file_tail(log, tail, sizeof tail), "starting a new one") !=
                      NULL,
                  "no producer renewal in the log: %s", tail);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_user_change_invalidates_the_cache_within_a_second)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "a.b");
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('u1','old@example.com')");
    /* A long TTL: only the notification can refresh the entry. */
    const char *extra[] = {"HERALD_CACHE_TTL=10m", NULL};
    dh_start(&e, extra);
    dh_wait_ready(&e, WAIT_MS);
    char id1[ID_UUID_SIZE], id2[ID_UUID_SIZE];
    char *v = dh_event("u1", "a.b", NULL, "normal", NULL, id1);
    dh_publish(&e, "u1", v, NULL);
    free(v);
    ck_assert_int_eq(dh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM events"), 1);

    dh_sql(&e, "UPDATE users SET email = 'new@example.com' WHERE user_id = 'u1'");
    testsupport_sleep_ms(1000);
    v = dh_event("u1", "a.b", NULL, "normal", NULL, id2);
    dh_publish(&e, "u1", v, NULL);
    free(v);
    dh_records em;
    dh_read(&e, "deliveries.email", 2, WAIT_MS, &em);
    ck_assert_uint_eq(em.n, 2);
    ck_assert_str_eq(dh_str(dh_find(&em, "event_id", id1), "address"), "old@example.com");
    ck_assert_str_eq(dh_str(dh_find(&em, "event_id", id2), "address"), "new@example.com");
    dh_records_free(&em);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_postgres_connection_loss_loses_nothing)
{
    enum { N = 300 };
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "a.b");
    dh_sql(&e, "INSERT INTO users (user_id, email) SELECT 'u' || g, 'u' || g || '@example.com' "
               "FROM generate_series(1, 50) g");
    /* Small batches, so that the outage falls between and inside many of them. */
    const char *extra[] = {"HERALD_DISPATCHER_BATCH_SIZE=20", "HERALD_DISPATCHER_STATUS_PART=4",
                           "HERALD_CACHE_TTL=50ms", "HERALD_DISPATCHER_PG_RETRY_MAX=500ms", NULL};
    dh_start(&e, extra);
    dh_wait_ready(&e, WAIT_MS);
    char dbname[128];
    char *cur = dh_text(&e, "SELECT current_database()");
    snprintf(dbname, sizeof dbname, "%s", cur);
    free(cur);
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", 1 + i % 50);
        char *v = dh_event(user, "a.b", NULL, "normal", NULL, NULL);
        dh_publish(&e, user, v, NULL);
        free(v);
        if (i % 60 == 30) {
            /* Every backend of the dispatcher, batch queries and LISTEN alike, once
             * it has reconnected from the previous round. */
            char q[512];
            snprintf(q, sizeof q,
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND "
                     "application_name LIKE 'herald-dispatcher%%'",
                     dbname);
            ck_assert_int_ge(dh_wait_count(&e, 1, WAIT_MS, q), 1);
            long killed = dh_long(&e,
                                  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = '%s' AND application_name LIKE "
                                  "'herald-dispatcher%%'",
                                  dbname);
            ck_assert_int_ge(killed, 1);
        }
    }
    ck_assert_int_eq(dh_wait_count(&e, N, 60000, "SELECT count(*) FROM events"), N);
    dh_records em;
    dh_read(&e, "deliveries.email", N, WAIT_MS, &em);
    /* Exactly once per event in what workers read, and one row each. */
    ck_assert_uint_eq(em.n, N);
    ck_assert_int_eq(dh_long(&e, "SELECT count(DISTINCT event_id) FROM delivery_status WHERE "
                                 "status = 'pending'"),
                     N);
    dh_records_free(&em);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_two_dispatchers_share_the_work_and_hand_over_on_shutdown)
{
    enum { N = 400 };
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "a.b");
    dh_sql(&e, "INSERT INTO users (user_id, email) SELECT 'u' || g, 'u' || g || '@example.com' "
               "FROM generate_series(1, 40) g");
    const char *extra[] = {"HERALD_DISPATCHER_BATCH_SIZE=25", NULL};
    dh_start(&e, extra);
    dh_wait_ready(&e, WAIT_MS);
    pid_t first = e.pid;
    /* A second member, with its own transactional id. */
    char tid2[120];
    snprintf(tid2, sizeof tid2, "HERALD_DISPATCHER_TRANSACTIONAL_ID=%sdispatcher-1", e.prefix);
    const char *extra2[] = {"HERALD_DISPATCHER_BATCH_SIZE=25", tid2, NULL};
    dh_start(&e, extra2);
    pid_t second = e.pid;
    testsupport_sleep_ms(3000); /* the group rebalances onto both */
    for (int i = 0; i < N; i++) {
        char user[16];
        snprintf(user, sizeof user, "u%d", 1 + i % 40);
        char *v = dh_event(user, "a.b", NULL, "normal", NULL, NULL);
        dh_publish(&e, user, v, NULL);
        free(v);
        if (i == N / 2) {
            /* The first member leaves mid-stream; its partitions move over. */
            e.pid = first;
            ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
            e.pid = second;
        }
    }
    ck_assert_int_eq(dh_wait_count(&e, N, 60000, "SELECT count(*) FROM events"), N);
    dh_records em;
    dh_read(&e, "deliveries.email", N, WAIT_MS, &em);
    ck_assert_uint_eq(em.n, N);
    dh_records_free(&em);
    ck_assert_int_eq(dh_stop(&e, SIGTERM, 20000), 0);
    dh_teardown(&e);
}
END_TEST

/* The events row names the key that published the event, for its status webhooks. */
START_TEST(test_events_row_keeps_the_publishing_api_key)
{
    dh_env e;
    dh_setup(&e);
    templates_all_channels(&e, "promo.sale");
    dh_sql(&e, "INSERT INTO users (user_id, email) VALUES ('ann','ann@example.com')");
    dh_start(&e, NULL);
    dh_wait_ready(&e, WAIT_MS);
    event keyed = {.type = "promo.sale", .user_id = "ann", .api_key_id = 42};
    event plain = {.type = "promo.sale", .user_id = "ann"};
    event *evs[2] = {&keyed, &plain};
    for (int i = 0; i < 2; i++) {
        char *wire;
        size_t len;
        ck_assert_int_eq(id_uuid_v4(evs[i]->event_id), 0);
        evs[i]->created_at = timeutil_now_ms();
        ck_assert_int_eq(event_serialize(evs[i], &wire, &len), 0);
        dh_publish(&e, "ann", wire, NULL);
        free(wire);
    }
    ck_assert_int_eq(dh_wait_count(&e, 2, WAIT_MS, "SELECT count(*) FROM events"), 2);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT api_key_id FROM events WHERE event_id = '%s'",
             keyed.event_id);
    ck_assert_int_eq(testsupport_sql_long(e.db, "%s", sql), 42);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM events WHERE event_id = '%s'"
             " AND api_key_id IS NULL",
             plain.event_id);
    ck_assert_int_eq(testsupport_sql_long(e.db, "%s", sql), 1);
    dh_teardown(&e);
}
END_TEST

START_TEST(test_bad_configuration_exits_2_naming_the_variable)
{
    char bin[512], out[4096], err[4096];
    char *argv[] = {testsupport_bin("herald-dispatcher", bin, sizeof bin), NULL};
    const char *env[] = {"HERALD_DISPATCHER_BATCH_SIZE=zero", NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof out, err, sizeof err, 10000), 2);
    ck_assert_msg(strstr(err, "HERALD_DISPATCHER_BATCH_SIZE") != NULL, "%s", err);
    char *help[] = {bin, "--help", NULL};
    ck_assert_int_eq(testsupport_run(help, NULL, out, sizeof out, err, sizeof err, 10000), 0);
    ck_assert_msg(strstr(out, "HERALD_CACHE_SIZE") != NULL, "%s", out);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_preferences_decide_every_channel),
    TEST_ENTRY(test_template_category_wins_over_the_publishers),
    TEST_ENTRY(test_inapp_template_fans_out_to_each_users_inbox),
    TEST_ENTRY(test_quiet_hours_schedule_on_retry_topic),
    TEST_ENTRY(test_template_renders_nested_data_and_escapes_html),
    TEST_ENTRY(test_poison_records_go_to_dlq_and_the_next_event_is_processed),
    TEST_ENTRY(test_a_fenced_producer_is_replaced_and_the_batch_redone),
    TEST_ENTRY(test_user_change_invalidates_the_cache_within_a_second),
    TEST_ENTRY(test_postgres_connection_loss_loses_nothing),
    TEST_ENTRY(test_two_dispatchers_share_the_work_and_hand_over_on_shutdown),
    TEST_ENTRY(test_events_row_keeps_the_publishing_api_key),
    TEST_ENTRY(test_bad_configuration_exits_2_naming_the_variable),
};

TEST_MAIN_TIMEOUT("dispatcher", cases, 240)

/*
 * herald-worker --channel inapp against the real broker and database: each
 * delivery becomes one inbox message with the user's next seq and exact
 * counts, one update record rings inbox.updates per new message, a
 * redelivered record changes nothing but rings again, an unknown user is dead-lettered, and
 * a database error is retried until the message is stored once.
 */
#include "worker_harness.h"

#define WAIT_MS 30000

/* The update records on inbox.updates, as {"key","value","headers"} objects. */
static json_t *updates(wh_env *e, int want, long timeout_ms)
{
    json_t *all = json_array();
    wh_read_topic(e, e->topics[3], want, timeout_ms, wh_collect_record, all);
    return all;
}

/* The update for user at seq, parsed; NULL when there is none. */
static json_t *update_at(json_t *all, const char *user, long long seq)
{
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        json_t *v = json_loads(json_string_value(json_object_get(r, "value")), 0, NULL);
        ck_assert_ptr_nonnull(v);
        if (strcmp(json_string_value(json_object_get(r, "key")), user) == 0 &&
            json_integer_value(json_object_get(v, "seq")) == seq)
            return v;
        json_decref(v);
    }
    return NULL;
}

static void assert_update(json_t *all, const char *user, long long seq, const char *message_id,
                          long long unread, long long unseen)
{
    json_t *u = update_at(all, user, seq);
    ck_assert_msg(u != NULL, "no update for %s at seq %lld", user, seq);
    ck_assert_str_eq(json_string_value(json_object_get(u, "user_id")), user);
    ck_assert_str_eq(json_string_value(json_object_get(u, "kind")), "message");
    json_t *ids = json_object_get(u, "message_ids");
    ck_assert_uint_eq(json_array_size(ids), 1);
    ck_assert_str_eq(json_string_value(json_array_get(ids, 0)), message_id);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "unread_count")), unread);
    ck_assert_int_eq(json_integer_value(json_object_get(u, "unseen_count")), unseen);
    ck_assert_int_eq(strlen(json_string_value(json_object_get(u, "at"))), 24);
    json_decref(u);
}

/* The message id the contract gives a delivery: UUID v5 of its key. */
static void message_id_of(const char *key, char *out)
{
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_HERALD, key, strlen(key), out), 0);
}

static void produce_json(wh_env *e, const char *user, const char *json)
{
    wh_produce_raw(e, e->topics[0], user, json);
}

START_TEST(test_each_delivery_is_one_inbox_message_and_one_update)
{
    wh_env e;
    wh_proc w = {0};
    char k1[ID_UUID_SIZE], k2[ID_UUID_SIZE], k3[ID_UUID_SIZE], kg[ID_UUID_SIZE];
    char m1[ID_UUID_SIZE], m2[ID_UUID_SIZE], m3[ID_UUID_SIZE];
    wh_setup(&e, "inapp");
    wh_db_exec(&e, "INSERT INTO users (user_id, name) VALUES ('ann','Ann'),('bob','Bob')");
    wh_start_worker(&e, &w, "worker", NULL);

    char *d1 = wh_delivery_json(&e, "ann", "ann", "Shipped", "Order A-1 is on its way", k1);
    produce_json(&e, "ann", d1);
    produce_json(&e, "ann", d1); /* the same record twice */
    wh_produce_delivery(&e, "ann", "ann", NULL, "Your invoice is ready", k2);
    wh_produce_delivery(&e, "bob", "bob", "Welcome", "Hello Bob", k3);
    wh_produce_delivery(&e, "ghost", "ghost", "Boo", "Nobody reads this", kg);
    wh_flush(&e);

    long sent =
        wh_wait_count(&e, 3, WAIT_MS, "SELECT count(*) FROM deliveries WHERE status='sent'");
    long failed =
        wh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM deliveries WHERE status='failed'");
    if (sent != 3 || failed != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 3);
    ck_assert_int_eq(failed, 1);
    message_id_of(k1, m1);
    message_id_of(k2, m2);
    message_id_of(k3, m3);

    /* One message per delivery key, stored as rendered, in the user's order. */
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM inbox_messages"), 3);
    char *row = wh_db_text(&e,
                           "SELECT message_id || '|' || user_id || '|' || seq || '|' || title || "
                           "'|' || body || '|' || event_type || '|' || (data->>'order') || '|' || "
                           "(read_at IS NULL AND seen_at IS NULL) FROM inbox_messages "
                           "WHERE delivery_key = '%s'",
                           k1);
    char want[512];
    snprintf(want, sizeof want, "%s|ann|1|Shipped|Order A-1 is on its way|order.shipped|A-1|true",
             m1);
    ck_assert_str_eq(row, want);
    free(row);
    row = wh_db_text(&e,
                     "SELECT seq || '|' || coalesce(title, '(none)') FROM inbox_messages "
                     "WHERE delivery_key = '%s'",
                     k2);
    ck_assert_str_eq(row, "2|(none)");
    free(row);
    /* The counts and the change number of each inbox. */
    row = wh_db_text(&e, "SELECT string_agg(user_id || ':' || seq || '/' || unread || '/' || "
                         "unseen, ' ' ORDER BY user_id) FROM inbox_state");
    ck_assert_str_eq(row, "ann:2/2/2 bob:1/1/1");
    free(row);
    /* The worker's row names the message it made. */
    row = wh_db_text(&e,
                     "SELECT provider || ' ' || provider_message_id FROM deliveries "
                     "WHERE idempotency_key = '%s'",
                     k1);
    snprintf(want, sizeof want, "inbox %s", m1);
    ck_assert_str_eq(row, want);
    free(row);

    /* One update per stored message, with that change's seq and counts. */
    json_t *all = updates(&e, 4, 5000);
    ck_assert_uint_eq(json_array_size(all), 3);
    assert_update(all, "ann", 1, m1, 1, 1);
    assert_update(all, "ann", 2, m2, 2, 2);
    assert_update(all, "bob", 1, m3, 1, 1);
    json_decref(all);

    /* The unknown user: dead-lettered with the reason, no inbox made for it. */
    json_t *dlq = json_array();
    ck_assert_int_eq(wh_read_topic(&e, e.topics[2], 1, 10000, wh_collect_record, dlq), 1);
    json_t *h = json_object_get(json_array_get(dlq, 0), "headers");
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.dlq.reason")),
                     "permanent_failure");
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.dlq.stage")), "worker.inapp");
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(h, "herald.dlq.error")), "unknown user"));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(dlq, 0), "key")), "ghost");
    json_decref(dlq);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM inbox_state WHERE user_id = 'ghost'"), 0);
    row = wh_db_text(&e, "SELECT last_error FROM deliveries WHERE idempotency_key = '%s'", kg);
    ck_assert_ptr_nonnull(strstr(row, "unknown user"));
    free(row);

    /*
     * A crash after the inbox commit and before the worker's row said
     * 'sent': the record comes again and finds its message.  Nothing moves,
     * and the doorbell rings again with the message's own seq (the crash
     * may have come before the first one was out).
     */
    wh_db_exec(&e, "DELETE FROM deliveries WHERE idempotency_key IN (SELECT delivery_key "
                   "FROM inbox_messages WHERE user_id = 'ann' AND seq = 1)");
    produce_json(&e, "ann", d1);
    wh_flush(&e);
    sent = wh_wait_count(&e, 3, WAIT_MS, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 3)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 3);
    ck_assert_int_eq(
        wh_db_long(&e, "SELECT count(*) FROM inbox_messages WHERE delivery_key = '%s'", k1), 1);
    row = wh_db_text(&e, "SELECT seq || '/' || unread || '/' || unseen FROM inbox_state "
                         "WHERE user_id = 'ann'");
    ck_assert_str_eq(row, "2/2/2");
    free(row);
    all = updates(&e, 5, 5000);
    ck_assert_uint_eq(json_array_size(all), 4);
    /* ann's partition keeps her order: seq 1, 2, then seq 1 again, with the counts now */
    int nann = 0;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "key")), "ann") != 0)
            continue;
        json_t *v = json_loads(json_string_value(json_object_get(r, "value")), 0, NULL);
        ck_assert_ptr_nonnull(v);
        if (++nann == 3) {
            ck_assert_int_eq(json_integer_value(json_object_get(v, "seq")), 1);
            ck_assert_str_eq(json_string_value(json_object_get(v, "kind")), "message");
            ck_assert_str_eq(
                json_string_value(json_array_get(json_object_get(v, "message_ids"), 0)), m1);
            ck_assert_int_eq(json_integer_value(json_object_get(v, "unread_count")), 2);
        }
        json_decref(v);
    }
    ck_assert_int_eq(nann, 3);
    json_decref(all);

    free(d1);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}

START_TEST(test_database_error_is_retried_until_the_message_is_stored_once)
{
    wh_env e;
    wh_proc w = {0};
    char k[ID_UUID_SIZE], m[ID_UUID_SIZE];
    wh_setup(&e, "inapp");
    wh_db_exec(&e, "INSERT INTO users (user_id) VALUES ('cid')");
    /* Every insert fails as a serialisation failure would, until the trigger goes. */
    wh_db_exec(&e, "CREATE FUNCTION inbox_busy() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "RAISE EXCEPTION 'inbox busy' USING ERRCODE = '40001'; END $$");
    wh_db_exec(&e, "CREATE TRIGGER inbox_busy BEFORE INSERT ON inbox_messages FOR EACH ROW "
                   "EXECUTE FUNCTION inbox_busy()");
    const char *env[] = {"HERALD_INAPP_MAX_ATTEMPTS=10", NULL};
    wh_start_worker(&e, &w, "worker", env);
    wh_produce_delivery(&e, "cid", "cid", "Hi", "Retried until stored", k);
    wh_flush(&e);

    long retrying = wh_wait_count(&e, 1, WAIT_MS,
                                  "SELECT count(*) FROM deliveries WHERE status='retrying' AND "
                                  "last_error LIKE '%%inbox busy%%'");
    if (retrying != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(retrying, 1);
    ck_assert_int_eq(wh_db_long(&e, "SELECT count(*) FROM inbox_messages"), 0);
    wh_db_exec(&e, "DROP TRIGGER inbox_busy ON inbox_messages");

    long sent =
        wh_wait_count(&e, 1, WAIT_MS, "SELECT count(*) FROM deliveries WHERE status='sent'");
    if (sent != 1)
        wh_dump_log(&w);
    ck_assert_int_eq(sent, 1);
    ck_assert_int_gt(wh_db_long(&e, "SELECT attempts FROM deliveries"), 1);
    /* The failed attempts rolled back whole: one message, the first change number. */
    message_id_of(k, m);
    char *row = wh_db_text(&e, "SELECT message_id || ' ' || seq FROM inbox_messages");
    char want[128];
    snprintf(want, sizeof want, "%s 1", m);
    ck_assert_str_eq(row, want);
    free(row);
    row = wh_db_text(&e, "SELECT seq || '/' || unread || '/' || unseen FROM inbox_state");
    ck_assert_str_eq(row, "1/1/1");
    free(row);
    json_t *all = updates(&e, 2, 3000);
    ck_assert_uint_eq(json_array_size(all), 1);
    assert_update(all, "cid", 1, m, 1, 1);
    json_decref(all);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&e);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_each_delivery_is_one_inbox_message_and_one_update),
    TEST_ENTRY(test_database_error_is_retried_until_the_message_is_stored_once),
};

TEST_MAIN("worker_inapp", cases)

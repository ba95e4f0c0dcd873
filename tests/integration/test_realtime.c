/*
 * herald-realtime against the real broker and database, through a small
 * RFC 6455 client over a plain socket (so a test can also send what no
 * well-behaved client would): the counts on connect, one live event on
 * every instance a user is connected to, no change seen twice, the
 * catch-up after last_event_id and the reset past a page, refused tokens,
 * garbage and oversized frames closed while the daemon keeps serving,
 * 1012 for everyone at shutdown, a killed instance's clients catching up
 * on the other, a delivery stored by herald-worker --channel inapp
 * reaching the client, and the same stream as Server-Sent Events.
 */
#include "buf.h"
#include "inbox_update.h"
#include "usertoken.h"
#include "worker_harness.h"

#define SECRET           "realtime-test-secret-0123456789abcdef"
#define WAIT_MS          15000
#define RTCLIENT_WAIT_MS WAIT_MS

#include "rtclient.h"

/* ------------------------------------------------------------ the daemon */

typedef struct rt_inst {
    wh_proc proc;
    int port, metrics;
} rt_inst;

static void rt_start(wh_env *e, rt_inst *r, const char *log, const char *const *extra)
{
    char url[700], prefix[64], brokers[300];
    snprintf(url, sizeof url, "HERALD_DATABASE_URL=%s", e->db_url);
    snprintf(prefix, sizeof prefix, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    snprintf(brokers, sizeof brokers, "HERALD_KAFKA_BROKERS=%s", e->brokers);
    const char *env[24] = {url,
                           prefix,
                           brokers,
                           "HERALD_USER_TOKEN_SECRET=" SECRET,
                           "HERALD_REALTIME_LISTEN=127.0.0.1:0",
                           "HERALD_METRICS_ADDR=127.0.0.1:0",
                           "HERALD_LOG_LEVEL=info"};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 23; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    const char *argv[] = {"herald-realtime", NULL};
    wh_spawn(e, &r->proc, log, argv, env, false);
    r->port = wh_port_in_log(&r->proc, "listening on port ");
    r->metrics = wh_port_in_log(&r->proc, "metrics on port ");
}

static void token_for(const char *user, int64_t expires, const char *secret, char *out)
{
    char err[256];
    ck_assert_msg(usertoken_mint(secret, strlen(secret), user, expires, out, USERTOKEN_SIZE, err,
                                 sizeof err) == 0,
                  "%s", err);
}

/* Opens /v1/users/<user>/live with a valid token and the query extra (may be NULL). */
static ws *connect_user(const rt_inst *r, const char *user, const char *extra)
{
    char tok[USERTOKEN_SIZE], target[1024];
    token_for(user, timeutil_now_ms() / 1000 + 600, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/%s/live?token=%s%s%s", user, tok, extra ? "&" : "",
             extra ? extra : "");
    ws *w = NULL;
    int st = ws_open(r->port, target, NULL, &w);
    ck_assert_msg(st == 101, "upgrade answered %d", st);
    return w;
}

/* Opens an SSE stream of user with a valid token, the query extra and the header line (each may be
 * NULL). */
static ws *connect_user_sse(const rt_inst *r, const char *user, const char *extra,
                            const char *header)
{
    char tok[USERTOKEN_SIZE], target[1024];
    token_for(user, timeutil_now_ms() / 1000 + 600, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/%s/live?token=%s%s%s", user, tok, extra ? "&" : "",
             extra ? extra : "");
    ws *w = NULL;
    int st = sse_open(r->port, target, header, &w);
    ck_assert_msg(st == 200, "SSE answered %d: %s", st, last_refusal);
    return w;
}

/* Produces one update record through the one writer. */
static void produce_update(wh_env *e, const char *user, int64_t seq, inbox_update_kind kind,
                           const char *message_id, long long unread, long long unseen)
{
    const char *ids[] = {message_id};
    inbox_update u = {.user_id = user,
                      .seq = seq,
                      .kind = kind,
                      .message_ids = ids,
                      .nmessage_ids = 1,
                      .unread_count = unread,
                      .unseen_count = unseen,
                      .at_ms = timeutil_now_ms()};
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(inbox_update_write(&b, &u), 0);
    wh_produce_raw(e, e->topics[3], user, b.data);
    buf_free(&b);
    wh_flush(e);
}

static void seed_user(wh_env *e, const char *user, long seq, long unread, long unseen)
{
    testsupport_sql(e->db, "INSERT INTO users (user_id) VALUES ('%s')", user);
    testsupport_sql(e->db,
                    "INSERT INTO inbox_state (user_id, seq, unread, unseen) "
                    "VALUES ('%s', %ld, %ld, %ld)",
                    user, seq, unread, unseen);
}

/* One inbox message of user changed last at seq, named by n; its id into id (ID_UUID_SIZE). */
static void seed_message(wh_env *e, const char *user, long seq, int n, bool read, char *id)
{
    char key[64];
    snprintf(key, sizeof key, "%s-%d", user, n);
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_HERALD, key, strlen(key), id), 0);
    testsupport_sql(e->db,
                    "INSERT INTO inbox_messages (message_id, user_id, delivery_key, event_id, "
                    "event_type, body, seq, read_at, seen_at) VALUES ('%s', '%s', '%s', "
                    "gen_random_uuid(), 'order.shipped', 'hello', %ld, %s, %s)",
                    id, user, key, seq, read ? "now()" : "NULL", read ? "now()" : "NULL");
}

/* ----------------------------------------------------------------- cases */

START_TEST(test_both_instances_push_each_change_once_after_the_counts)
{
    wh_env e;
    rt_inst a = {0}, b = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "ann", 3, 2, 3);
    testsupport_sql(e.db, "INSERT INTO users (user_id) VALUES ('bob')");
    rt_start(&e, &a, "realtime-a", NULL);
    rt_start(&e, &b, "realtime-b", NULL);

    ws *wa = connect_user(&a, "ann", NULL);
    ws *wb = connect_user(&b, "ann", NULL);
    ws *wbob = connect_user(&a, "bob", NULL);
    expect_counts(wa, 3, 2, 3);
    expect_counts(wb, 3, 2, 3);
    expect_counts(wbob, 0, 0, 0); /* no inbox yet */

    produce_update(&e, "ann", 4, INBOX_UPDATE_MESSAGE, "m-4", 3, 4);
    produce_update(&e, "ann", 4, INBOX_UPDATE_MESSAGE, "m-4", 3, 4); /* read twice */
    produce_update(&e, "ann", 3, INBOX_UPDATE_MESSAGE, "m-3", 2, 3); /* in the counts already */
    produce_update(&e, "ann", 5, INBOX_UPDATE_STATE, "m-4", 2, 3);
    ws *clients[] = {wa, wb};
    for (int i = 0; i < 2; i++) {
        json_t *j = expect_event(clients[i], "message", 4);
        ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)),
                         "m-4");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 3);
        ck_assert_int_eq(json_integer_value(json_object_get(j, "unseen_count")), 4);
        json_decref(j);
        json_decref(expect_event(clients[i], "state", 5));
    }
    expect_quiet(wa, 500);
    expect_quiet(wbob, 100); /* ann's changes are ann's */
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_connections"), 2);
    /* ann: the counts and two changes; bob: the counts */
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_events_pushed_total"), 4);

    ws_close(wa);
    ws_close(wb);
    ws_close(wbob);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_catchup_replays_exactly_the_missed_changes)
{
    wh_env e;
    rt_inst a = {0};
    char m[6][ID_UUID_SIZE];
    wh_setup(&e, "inapp");
    seed_user(&e, "cat", 6, 3, 3);
    seed_message(&e, "cat", 2, 0, false, m[0]);
    seed_message(&e, "cat", 3, 1, false, m[1]);
    seed_message(&e, "cat", 4, 2, false, m[2]);
    seed_message(&e, "cat", 6, 3, true, m[3]); /* two marked read in one change */
    seed_message(&e, "cat", 6, 4, true, m[4]);
    seed_message(&e, "cat", 5, 5, false, m[5]);
    rt_start(&e, &a, "realtime", NULL);

    ws *w = connect_user(&a, "cat", "last_event_id=3");
    expect_counts(w, 6, 3, 3);
    json_t *j = expect_event(w, "message", 4);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "message_ids")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)), m[2]);
    json_decref(j);
    json_decref(expect_event(w, "message", 5));
    j = expect_event(w, "state", 6);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "message_ids")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 3);
    json_decref(j);
    expect_quiet(w, 300);
    /* A live record of a replayed change is not sent again; the next one is. */
    produce_update(&e, "cat", 6, INBOX_UPDATE_STATE, m[3], 3, 3);
    produce_update(&e, "cat", 7, INBOX_UPDATE_MESSAGE, "m-7", 4, 4);
    json_decref(expect_event(w, "message", 7));
    ws_close(w);

    /* Up to date: the counts only. */
    w = connect_user(&a, "cat", "last_event_id=6");
    expect_counts(w, 6, 3, 3);
    expect_quiet(w, 300);
    ws_close(w);

    /* More than a page behind: a reset. */
    seed_user(&e, "far", 300, 250, 250);
    testsupport_sql(e.db, "INSERT INTO inbox_messages (message_id, user_id, delivery_key, "
                          "event_id, event_type, body, seq) SELECT gen_random_uuid(), 'far', "
                          "'far-' || g, gen_random_uuid(), 'x', 'b', g FROM "
                          "generate_series(1, 250) g");
    w = connect_user(&a, "far", "last_event_id=0");
    expect_counts(w, 300, 250, 250);
    j = expect_event(w, "reset", 300);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 250);
    json_decref(j);
    expect_quiet(w, 300);
    ws_close(w);
    /* Exactly a page is still replayed. */
    w = connect_user(&a, "far", "last_event_id=50");
    expect_counts(w, 300, 250, 250);
    for (long s = 51; s <= 250; s++)
        json_decref(expect_event(w, "message", s));
    expect_quiet(w, 300);
    ws_close(w);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_bad_and_other_users_tokens_are_refused_before_the_upgrade)
{
    wh_env e;
    rt_inst a = {0};
    char tok[USERTOKEN_SIZE], target[1024], header[1200];
    ws *w = NULL;
    int64_t now = timeutil_now_ms() / 1000;
    wh_setup(&e, "inapp");
    seed_user(&e, "dan", 1, 1, 1);
    rt_start(&e, &a, "realtime", NULL);

    ck_assert_int_eq(ws_open(a.port, "/v1/users/dan/live", NULL, &w), 401);
    ck_assert_str_eq(
        last_refusal,
        "{\"error\":{\"code\":\"unauthorized\",\"message\":\"a user token is required\"}}");
    ck_assert_int_eq(ws_open(a.port, "/v1/users/dan/live?token=v1.garbage", NULL, &w), 401);
    token_for("dan", now + 600, "another-secret-0123456789abcdefghij", tok);
    snprintf(target, sizeof target, "/v1/users/dan/live?token=%s", tok);
    ck_assert_int_eq(ws_open(a.port, target, NULL, &w), 401);
    token_for("dan", now - 10, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/dan/live?token=%s", tok);
    ck_assert_int_eq(ws_open(a.port, target, NULL, &w), 401);
    token_for("eve", now + 600, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/dan/live?token=%s", tok);
    ck_assert_int_eq(ws_open(a.port, target, NULL, &w), 403);
    ck_assert_msg(strstr(last_refusal, "\"code\":\"forbidden\"") != NULL, "%s", last_refusal);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(ws_open(a.port, "/v1/users/dan/other", NULL, &w), 404);
    ck_assert_int_eq(ws_open(a.port, "/v1/users/dan/live?last_event_id=x&token=x", NULL, &w), 401);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_auth_failures_total"), 6);

    /* The header works as well as the query. */
    token_for("dan", now + 600, SECRET, tok);
    snprintf(header, sizeof header, "Authorization: Bearer %s", tok);
    ck_assert_int_eq(ws_open(a.port, "/v1/users/dan/live", header, &w), 101);
    expect_counts(w, 1, 1, 1);
    ws_close(w);
    snprintf(target, sizeof target, "/v1/users/dan/live?token=%s&last_event_id=-1", tok);
    ck_assert_int_eq(ws_open(a.port, target, NULL, &w), 400);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_garbage_and_oversized_frames_are_closed_and_serving_goes_on)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "gus", 2, 1, 1);
    rt_start(&e, &a, "realtime", NULL);

    ws *w = connect_user(&a, "gus", NULL);
    expect_counts(w, 2, 1, 1);
    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0xde, 0xad, 0xbe, 0xef,
                                            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};
    ws_write_all(w->fd, garbage, sizeof garbage);
    int code = ws_wait_close(w, WAIT_MS);
    ck_assert_msg(code != 0, "garbage was not closed on");
    ws_close(w);

    w = connect_user(&a, "gus", NULL);
    expect_counts(w, 2, 1, 1);
    size_t big = 100 * 1024;
    char *payload = malloc(big);
    memset(payload, 'a', big);
    ws_send(w, 0x1, payload, big);
    free(payload);
    code = ws_wait_close(w, WAIT_MS);
    ck_assert_msg(code == 1009 || code == -1, "oversized frame: close %d", code);
    ws_close(w);

    /* A small message is ignored; the connection stays and gets its events. */
    w = connect_user(&a, "gus", NULL);
    expect_counts(w, 2, 1, 1);
    ws_send(w, 0x1, "hello", 5);
    produce_update(&e, "gus", 3, INBOX_UPDATE_MESSAGE, "m-3", 2, 2);
    json_decref(expect_event(w, "message", 3));
    ck_assert(wh_all_alive(&e));
    ws_close(w);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_a_client_that_never_answers_pings_is_closed)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "ivy", 0, 0, 0);
    const char *env[] = {"HERALD_REALTIME_PING_INTERVAL=1s", NULL};
    rt_start(&e, &a, "realtime", env);
    ws *mute = connect_user(&a, "ivy", NULL);
    ws *live = connect_user(&a, "ivy", NULL);
    expect_counts(mute, 0, 0, 0);
    expect_counts(live, 0, 0, 0);
    /* The mute one reads but never pongs; the live one answers. */
    int64_t deadline = timeutil_monotonic_ms() + 10000;
    bool closed = false;
    for (int i = 0; i < 200 && !closed && timeutil_monotonic_ms() < deadline; i++) {
        json_t *j = ws_next_opt(mute, 50, false);
        json_decref(j);
        closed = mute->close_code != 0;
        json_decref(ws_next(live, 50));
    }
    ck_assert_msg(closed, "a client without pongs stayed connected");
    ck_assert_int_eq(live->close_code, 0);
    produce_update(&e, "ivy", 1, INBOX_UPDATE_MESSAGE, "m-1", 1, 1);
    json_decref(expect_event(live, "message", 1));
    ws_close(mute);
    ws_close(live);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_shutdown_closes_every_connection_with_1012)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "sam", 1, 0, 0);
    rt_start(&e, &a, "realtime", NULL);
    ws *w1 = connect_user(&a, "sam", NULL);
    ws *w2 = connect_user(&a, "sam", NULL);
    expect_counts(w1, 1, 0, 0);
    expect_counts(w2, 1, 0, 0);
    kill(a.proc.pid, SIGTERM);
    ck_assert_int_eq(ws_wait_close(w1, WAIT_MS), 1012);
    ck_assert_int_eq(ws_wait_close(w2, WAIT_MS), 1012);
    int status = wh_stop(&a.proc, SIGTERM, WAIT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    char *log = testsupport_read_file(a.proc.log, NULL);
    ck_assert_ptr_nonnull(strstr(log, "shutdown 1/5"));
    ck_assert_ptr_nonnull(strstr(log, "closed 2 connection(s) with 1012"));
    free(log);
    ws_close(w1);
    ws_close(w2);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_a_delivery_stored_by_the_inapp_worker_reaches_the_client)
{
    wh_env e;
    rt_inst a = {0};
    wh_proc w = {0};
    char key[ID_UUID_SIZE], mid[ID_UUID_SIZE];
    wh_setup(&e, "inapp");
    testsupport_sql(e.db, "INSERT INTO users (user_id) VALUES ('wes')");
    rt_start(&e, &a, "realtime", NULL);
    ws *c = connect_user(&a, "wes", NULL);
    expect_counts(c, 0, 0, 0);

    wh_start_worker(&e, &w, "worker", NULL);
    wh_produce_delivery(&e, "wes", "wes", "Shipped", "Order A-1 is on its way", key);
    wh_flush(&e);
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_HERALD, key, strlen(key), mid), 0);
    json_t *j = ws_next(c, 60000); /* the worker's first poll joins its group */
    ck_assert_msg(j != NULL, "no event (close %d)", c->close_code);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "message");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)), mid);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unseen_count")), 1);
    json_decref(j);
    ws_close(c);

    /* A reconnect from before it catches the same message up from the inbox. */
    c = connect_user(&a, "wes", "last_event_id=0");
    expect_counts(c, 1, 1, 1);
    j = expect_event(c, "message", 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)), mid);
    json_decref(j);
    ws_close(c);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_a_client_that_does_not_read_is_closed_and_others_go_on)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "sly", 0, 0, 0);
    const char *env[] = {"HERALD_REALTIME_QUEUE=4", NULL};
    rt_start(&e, &a, "realtime", env);
    tcp_rcvbuf = 1024; /* a small window, so the server's socket fills soon */
    ws *slow = connect_user(&a, "sly", NULL);
    tcp_rcvbuf = 0;
    ws *fast = connect_user(&a, "sly", NULL);
    expect_counts(slow, 0, 0, 0);
    expect_counts(fast, 0, 0, 0);

    /* Enough changes to fill both socket buffers and the queue; the fast
     * client reads them all as they come. */
    enum { N = 20000 };
    char err[256], ids[64];
    long long seen = 0;
    for (int i = 1; i <= N; i++) {
        buf b;
        buf_init(&b, 0);
        snprintf(ids, sizeof ids, "m-%d", i);
        const char *idv[] = {ids};
        inbox_update u = {.user_id = "sly",
                          .seq = i,
                          .message_ids = idv,
                          .nmessage_ids = 1,
                          .unread_count = i,
                          .unseen_count = i,
                          .at_ms = timeutil_now_ms()};
        ck_assert_int_eq(inbox_update_write(&b, &u), 0);
        for (int k = 0; k < 100; k++) {
            kafka_status st = kafka_produce(e.producer, e.topics[3], "sly", 3, b.data, b.len, NULL,
                                            NULL, err, sizeof err);
            if (st != KAFKA_QUEUE_FULL) {
                ck_assert_msg(st == KAFKA_OK, "%s", err);
                break;
            }
            kafka_producer_poll(e.producer, 10);
        }
        buf_free(&b);
        if (i % 1000 == 0)
            kafka_producer_poll(e.producer, 0);
    }
    wh_flush(&e);
    int64_t deadline = timeutil_monotonic_ms() + 60000;
    for (int i = 0; i < 100000 && seen < N && timeutil_monotonic_ms() < deadline; i++) {
        json_t *j = ws_next(fast, WAIT_MS);
        ck_assert_msg(j != NULL, "after seq %lld: no event (close %d)", seen, fast->close_code);
        long long seq = json_integer_value(json_object_get(j, "seq"));
        ck_assert_int_gt(seq, seen); /* strictly rising */
        seen = seq;
        json_decref(j);
    }
    ck_assert_int_eq(seen, N);
    ck_assert_int_eq(fast->close_code, 0);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_slow_disconnects_total"), 1);
    /* The slow one, still not reading, is dropped within the grace. */
    testsupport_sleep_ms(6000);
    ck_assert_int_ne(ws_wait_close(slow, WAIT_MS), 0);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_connections"), 1);
    ws_close(slow);
    ws_close(fast);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_a_killed_instances_clients_catch_up_on_the_other)
{
    wh_env e;
    rt_inst a = {0}, b = {0};
    char m[4][ID_UUID_SIZE];
    wh_setup(&e, "inapp");
    seed_user(&e, "kim", 1, 1, 1);
    seed_message(&e, "kim", 1, 0, false, m[0]);
    rt_start(&e, &a, "realtime-a", NULL);
    rt_start(&e, &b, "realtime-b", NULL);
    ws *w = connect_user(&a, "kim", NULL);
    expect_counts(w, 1, 1, 1);

    /* a dies; two messages arrive while the client has no connection */
    ck_assert_int_eq(kill(a.proc.pid, SIGKILL), 0);
    ck_assert_int_ne(ws_wait_close(w, WAIT_MS), 0);
    ws_close(w);
    seed_message(&e, "kim", 2, 1, false, m[1]);
    seed_message(&e, "kim", 3, 2, false, m[2]);
    testsupport_sql(e.db, "UPDATE inbox_state SET seq = 3, unread = 3, unseen = 3 "
                          "WHERE user_id = 'kim'");
    produce_update(&e, "kim", 2, INBOX_UPDATE_MESSAGE, m[1], 2, 2);
    produce_update(&e, "kim", 3, INBOX_UPDATE_MESSAGE, m[2], 3, 3);

    /* The client reconnects, through any balancer, to b with its last id. */
    w = connect_user(&b, "kim", "last_event_id=1");
    expect_counts(w, 3, 3, 3);
    json_t *j = expect_event(w, "message", 2);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)), m[1]);
    json_decref(j);
    j = expect_event(w, "message", 3);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)), m[2]);
    json_decref(j);
    expect_quiet(w, 300); /* b read those records live, but the client has them */
    seed_message(&e, "kim", 4, 3, false, m[3]);
    produce_update(&e, "kim", 4, INBOX_UPDATE_MESSAGE, m[3], 4, 4);
    json_decref(expect_event(w, "message", 4));
    ws_close(w);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_sse_streams_the_same_events_and_catches_up_by_last_event_id)
{
    wh_env e;
    rt_inst a = {0};
    char m[3][ID_UUID_SIZE], tok[USERTOKEN_SIZE], target[1024];
    wh_setup(&e, "inapp");
    seed_user(&e, "sue", 3, 3, 3);
    seed_message(&e, "sue", 1, 0, false, m[0]);
    seed_message(&e, "sue", 2, 1, false, m[1]);
    seed_message(&e, "sue", 3, 2, false, m[2]);
    rt_start(&e, &a, "realtime", NULL);

    ws *s = connect_user_sse(&a, "sue", NULL, NULL);
    ws *w = connect_user(&a, "sue", NULL);
    ck_assert_msg(strstr(s->head, "access-control-allow-origin: *") != NULL, "%s", s->head);
    expect_counts(s, 3, 3, 3);
    ck_assert_int_gt(s->retry_ms, 0);
    expect_counts(w, 3, 3, 3);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_connections"), 2);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_sse_connections"), 1);

    /* One update reaches the stream and the WebSocket alike. */
    produce_update(&e, "sue", 4, INBOX_UPDATE_STATE, m[2], 2, 2);
    json_t *j = expect_event(s, "state", 4);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 2);
    json_decref(j);
    json_decref(expect_event(w, "state", 4));
    ws_close(s);
    ws_close(w);

    /* EventSource's reconnect: the Last-Event-ID header, over the query. */
    s = connect_user_sse(&a, "sue", "last_event_id=0", "Last-Event-ID: 1");
    expect_counts(s, 3, 3, 3);
    json_decref(expect_event(s, "message", 2));
    json_decref(expect_event(s, "message", 3));
    expect_quiet(s, 300);
    ws_close(s);
    s = connect_user_sse(&a, "sue", "last_event_id=2", NULL);
    expect_counts(s, 3, 3, 3);
    json_decref(expect_event(s, "message", 3));
    ws_close(s);

    /* Refusals are the same JSON errors as before an upgrade. */
    ck_assert_int_eq(sse_open(a.port, "/v1/users/sue/live", NULL, &s), 401);
    ck_assert_str_eq(
        last_refusal,
        "{\"error\":{\"code\":\"unauthorized\",\"message\":\"a user token is required\"}}");
    token_for("sue", timeutil_now_ms() / 1000 + 600, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/sue/live?token=%s", tok);
    ck_assert_int_eq(sse_open(a.port, target, "Last-Event-ID: x", &s), 400);
    ck_assert_int_eq(stream_open(a.port, target, "", NULL, 200, &s), 400); /* no Accept */
    ck_assert_msg(strstr(last_refusal, "text/event-stream") != NULL, "%s", last_refusal);
    token_for("tom", timeutil_now_ms() / 1000 + 600, SECRET, tok);
    snprintf(target, sizeof target, "/v1/users/sue/live?token=%s", tok);
    ck_assert_int_eq(sse_open(a.port, target, NULL, &s), 403);
    ck_assert(wh_all_alive(&e));
    wh_teardown(&e);
}
END_TEST

START_TEST(test_sse_heartbeats_and_the_close_event_at_shutdown)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "hal", 0, 0, 0);
    const char *env[] = {"HERALD_REALTIME_PING_INTERVAL=1s", NULL};
    rt_start(&e, &a, "realtime", env);
    ws *s = connect_user_sse(&a, "hal", NULL, NULL);
    expect_counts(s, 0, 0, 0);
    /* Nothing to send for 3.5 s: heartbeats keep the stream alive. */
    expect_quiet(s, 3500);
    ck_assert_int_ge(s->beats, 2);
    produce_update(&e, "hal", 1, INBOX_UPDATE_MESSAGE, "m-1", 1, 1);
    json_decref(expect_event(s, "message", 1));

    kill(a.proc.pid, SIGTERM);
    ck_assert_int_eq(ws_wait_close(s, WAIT_MS), 1012);
    int status = wh_stop(&a.proc, SIGTERM, WAIT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    /* and then the stream ends, so the browser reconnects elsewhere */
    ck_assert_int_eq(ws_wait_close(s, WAIT_MS), -1);
    ws_close(s);
    wh_teardown(&e);
}
END_TEST

START_TEST(test_a_slow_inbox_read_holds_up_no_one_else)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "pat", 1, 1, 1);
    seed_user(&e, "lou", 5, 2, 2);
    const char *env[] = {"HERALD_REALTIME_PG_TIMEOUT=3s", NULL};
    rt_start(&e, &a, "realtime", env);
    ws *pat = connect_user(&a, "pat", NULL);
    expect_counts(pat, 1, 1, 1);

    /* Every connect-time read now waits on a lock another session holds. */
    PGconn *locker = PQconnectdb(e.db_url);
    ck_assert_int_eq(PQstatus(locker), CONNECTION_OK);
    PGresult *r = PQexec(locker, "BEGIN; LOCK TABLE inbox_state IN ACCESS EXCLUSIVE MODE");
    ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    ws *lou = connect_user(&a, "lou", NULL); /* the upgrade is not held up either */
    produce_update(&e, "pat", 2, INBOX_UPDATE_MESSAGE, "m-2", 2, 2);
    /* pat's event comes while lou's read waits: were the service thread
     * waiting with it, lou's read would time out first and close (1011). */
    json_decref(expect_event(pat, "message", 2));
    /* lou's live event waits behind its counts, and comes after them */
    produce_update(&e, "lou", 6, INBOX_UPDATE_MESSAGE, "m-6", 3, 3);
    expect_quiet(lou, 200);
    r = PQexec(locker, "ROLLBACK");
    PQclear(r);
    expect_counts(lou, 5, 2, 2);
    json_decref(expect_event(lou, "message", 6));
    ws_close(lou);

    /* A read that fails (the lock outlasts the timeout) closes with 1011. */
    r = PQexec(locker, "BEGIN; LOCK TABLE inbox_state IN ACCESS EXCLUSIVE MODE");
    PQclear(r);
    lou = connect_user(&a, "lou", NULL);
    ck_assert_int_eq(ws_wait_close(lou, WAIT_MS), 1011);
    r = PQexec(locker, "ROLLBACK");
    PQclear(r);
    PQfinish(locker);
    ws_close(lou);
    ck_assert_int_eq(wh_metric(a.metrics, "herald_realtime_snapshot_failures_total"), 1);
    lou = connect_user(&a, "lou", NULL);
    expect_counts(lou, 5, 2, 2);
    ws_close(lou);
    ws_close(pat);
    wh_teardown(&e);
}
END_TEST

/* The partitions topic has now, as the producer's client sees it. */
static int partition_count(wh_env *e, const char *topic)
{
    rd_kafka_t *rk = kafka_producer_rk(e->producer);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    int n = -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1)
        n = md->topics[0].partition_cnt;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Grows topic to total partitions through the admin API. */
static void add_partitions(wh_env *e, const char *topic, int total)
{
    rd_kafka_t *rk = kafka_producer_rk(e->producer);
    char err[256];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(topic, (size_t)total, err, sizeof err);
    ck_assert_msg(np != NULL, "%s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreatePartitions(rk, &np, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    ck_assert_ptr_nonnull(ev);
    const rd_kafka_CreatePartitions_result_t *res = rd_kafka_event_CreatePartitions_result(ev);
    ck_assert_ptr_nonnull(res);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = rd_kafka_CreatePartitions_result_topics(res, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_msg(rd_kafka_topic_result_error(tr[0]) == RD_KAFKA_RESP_ERR_NO_ERROR, "%s",
                  rd_kafka_topic_result_error_string(tr[0]));
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    for (int i = 0; i < 100 && partition_count(e, topic) < total; i++)
        testsupport_sleep_ms(100);
    ck_assert_int_eq(partition_count(e, topic), total);
}

START_TEST(test_partitions_added_to_the_topic_are_read_too)
{
    wh_env e;
    rt_inst a = {0};
    wh_setup(&e, "inapp");
    seed_user(&e, "nia", 0, 0, 0);
    const char *env[] = {"HERALD_REALTIME_PARTITION_CHECK=1s", NULL};
    rt_start(&e, &a, "realtime", env);
    ws *w = connect_user(&a, "nia", NULL);
    expect_counts(w, 0, 0, 0);

    int before = partition_count(&e, e.topics[3]);
    ck_assert_int_gt(before, 0);
    add_partitions(&e, e.topics[3], before + 2);
    /* A record on a partition that did not exist when the instance started. */
    char value[512];
    buf b;
    buf_init(&b, 0);
    const char *ids[] = {"m-1"};
    inbox_update u = {.user_id = "nia",
                      .seq = 1,
                      .kind = INBOX_UPDATE_MESSAGE,
                      .message_ids = ids,
                      .nmessage_ids = 1,
                      .unread_count = 1,
                      .unseen_count = 1,
                      .at_ms = timeutil_now_ms()};
    ck_assert_int_eq(inbox_update_write(&b, &u), 0);
    snprintf(value, sizeof value, "%s", b.data);
    buf_free(&b);
    rd_kafka_t *rk = kafka_producer_rk(e.producer);
    ck_assert_int_eq(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(e.topics[3]),
                                       RD_KAFKA_V_PARTITION(before + 1), RD_KAFKA_V_KEY("nia", 3),
                                       RD_KAFKA_V_VALUE(value, strlen(value)),
                                       RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    wh_flush(&e);
    json_decref(expect_event(w, "message", 1));
    char *log = testsupport_read_file(a.proc.log, NULL);
    ck_assert_ptr_nonnull(strstr(log, "new partition(s)"));
    free(log);
    ws_close(w);
    wh_teardown(&e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_both_instances_push_each_change_once_after_the_counts),
    TEST_ENTRY(test_catchup_replays_exactly_the_missed_changes),
    TEST_ENTRY(test_bad_and_other_users_tokens_are_refused_before_the_upgrade),
    TEST_ENTRY(test_garbage_and_oversized_frames_are_closed_and_serving_goes_on),
    TEST_ENTRY(test_a_client_that_never_answers_pings_is_closed),
    TEST_ENTRY(test_a_client_that_does_not_read_is_closed_and_others_go_on),
    TEST_ENTRY(test_shutdown_closes_every_connection_with_1012),
    TEST_ENTRY(test_a_delivery_stored_by_the_inapp_worker_reaches_the_client),
    TEST_ENTRY(test_a_killed_instances_clients_catch_up_on_the_other),
    TEST_ENTRY(test_a_slow_inbox_read_holds_up_no_one_else),
    TEST_ENTRY(test_partitions_added_to_the_topic_are_read_too),
    TEST_ENTRY(test_sse_streams_the_same_events_and_catches_up_by_last_event_id),
    TEST_ENTRY(test_sse_heartbeats_and_the_close_event_at_shutdown),
};

TEST_MAIN_TIMEOUT("realtime", cases, 300)

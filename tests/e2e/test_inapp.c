/*
 * End to end for the in-app channel with two herald-realtime instances
 * behind no balancer at all: a user's two devices, one on each instance
 * (a WebSocket on the first, Server-Sent Events on the second), with a
 * user token minted through the gateway.
 *
 *  - an event published through the gateway reaches both devices live,
 *    and the message it names is in the inbox the devices read;
 *  - marks from the two devices (seen, read, archived) reach both, with
 *    counts that equal the gateway's at every step;
 *  - a follow-up rule made through the admin API emails the message left
 *    unread after its delay, and not the one the user read meanwhile;
 *  - the first instance is killed: its device reconnects to the second
 *    with its last event id and misses nothing published meanwhile.
 *
 * Assertions are on what a client sees: the events and the API's answers.
 */
#define RTCLIENT_WAIT_MS 30000
#include "e2e_suite.h"
#include "rtclient.h"
#include "usertoken.h"

static e2e_env env;
static bool up;
static char token[USERTOKEN_SIZE];
static ws *dev_a, *dev_b; /* WebSocket on the first instance, SSE on the second */
static long long last_seq;

#define USER "live-ann"

static ws *open_device(int which, bool sse, long long last_event_id)
{
    char target[1024], arg[64] = "";
    if (last_event_id >= 0)
        snprintf(arg, sizeof arg, "&last_event_id=%lld", last_event_id);
    snprintf(target, sizeof target, "/v1/users/%s/live?token=%s%s", USER, token, arg);
    ws *w = NULL;
    int port = env.procs[which].live;
    int st = sse ? sse_open(port, target, NULL, &w) : ws_open(port, target, NULL, &w);
    ck_assert_msg(st == (sse ? 200 : 101), "%s: %d %s", env.procs[which].name, st, last_refusal);
    return w;
}

/* A request with the user's token, as the user's browser makes it. */
static json_t *as_user(const char *method, const char *path, const char *body, long want)
{
    char url[512];
    json_t *j = NULL;
    snprintf(url, sizeof url, "%s%s", env.base, path);
    long st = e2e_request(&env, method, url, token, body, &j);
    ck_assert_msg(st == want, "%s %s -> %ld", method, path, st);
    return j;
}

static long long num(const json_t *j, const char *name)
{
    return json_integer_value(json_object_get(j, name));
}

/* The next event on both devices: the same change, and the gateway's counts. */
static void expect_on_both(const char *type, long long unread, long long unseen)
{
    ws *devs[] = {dev_a, dev_b};
    last_seq++;
    for (int i = 0; i < 2; i++) {
        json_t *j = expect_event(devs[i], type, last_seq);
        ck_assert_int_eq(num(j, "unread_count"), unread);
        ck_assert_int_eq(num(j, "unseen_count"), unseen);
        json_decref(j);
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/inbox/counts", USER);
    json_t *c = as_user("GET", path, NULL, 200);
    ck_assert_int_eq(num(c, "unread_count"), unread);
    ck_assert_int_eq(num(c, "unseen_count"), unseen);
    ck_assert_int_eq(num(c, "seq"), last_seq);
    json_decref(c);
}

static void mark(const char *action, const char *id)
{
    char path[256], body[256];
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", USER);
    snprintf(body, sizeof body, "{\"action\":\"%s\",\"ids\":[\"%s\"]}", action, id);
    json_t *j = as_user("POST", path, body, 200);
    ck_assert_int_eq(num(j, "changed"), 1);
    json_decref(j);
}

/* The newest message of the user's inbox: its id into id, its title checked. */
static void newest_message(const char *title, char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/inbox?page_size=1&archived=include", USER);
    json_t *j = as_user("GET", path, NULL, 200);
    json_t *m = json_array_get(json_object_get(j, "messages"), 0);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(json_string_value(json_object_get(m, "title")), title);
    snprintf(id, ID_UUID_SIZE, "%s", json_string_value(json_object_get(m, "id")));
    json_decref(j);
}

static void publish(int n)
{
    char body[256], id[ID_UUID_SIZE];
    snprintf(body, sizeof body, "{\"type\":\"e2e.live\",\"user_id\":\"%s\",\"data\":{\"n\":%d}}",
             USER, n);
    e2e_publish(&env, body, id);
}

START_TEST(test_two_live_instances_and_a_users_token)
{
    e2e_up(&env, "inapp");
    e2e_add_instance(&env, E2E_REALTIME_2);
    up = true;
    e2e_put_template(&env, "e2e.live", "inapp", "Note {{data.n}}", "Body {{data.n}}", NULL);
    e2e_put_user(&env, USER, NULL, NULL, NULL);
    char path[128];
    snprintf(path, sizeof path, "/v1/users/%s/tokens", USER);
    json_t *j = NULL;
    ck_assert_int_eq(e2e_api(&env, "POST", path, "{\"ttl_seconds\":3600}", &j), 201);
    snprintf(token, sizeof token, "%s", json_string_value(json_object_get(j, "token")));
    json_decref(j);
    dev_a = open_device(E2E_REALTIME, false, -1);
    dev_b = open_device(E2E_REALTIME_2, true, -1);
    expect_counts(dev_a, 0, 0, 0);
    expect_counts(dev_b, 0, 0, 0);
}
END_TEST

START_TEST(test_a_published_event_reaches_both_devices)
{
    ck_assert_msg(up, "the stack did not start");
    publish(1);
    /* The dispatcher's first poll joins its group: the first event is slow. */
    ws *devs[] = {dev_a, dev_b};
    char ids[2][ID_UUID_SIZE];
    for (int i = 0; i < 2; i++) {
        json_t *ev = ws_next(devs[i], E2E_PHASE_MS);
        ck_assert_msg(ev != NULL, "device %d: no event (close %d)", i, devs[i]->close_code);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "message");
        ck_assert_int_eq(num(ev, "seq"), 1);
        ck_assert_int_eq(num(ev, "unread_count"), 1);
        snprintf(ids[i], sizeof ids[i], "%s",
                 json_string_value(json_array_get(json_object_get(ev, "message_ids"), 0)));
        json_decref(ev);
    }
    ck_assert_str_eq(ids[0], ids[1]);
    char id[ID_UUID_SIZE];
    newest_message("Note 1", id);
    ck_assert_str_eq(id, ids[0]); /* the client fetches what the event names */
    last_seq = 1;
}
END_TEST

START_TEST(test_marks_from_two_devices_keep_both_counts_right)
{
    ck_assert_msg(up, "the stack did not start");
    char first[ID_UUID_SIZE], second[ID_UUID_SIZE];
    newest_message("Note 1", first);
    mark("seen", first); /* device A saw the list */
    expect_on_both("state", 1, 0);
    mark("read", first); /* device B opened it */
    expect_on_both("state", 0, 0);
    publish(2);
    expect_on_both("message", 1, 1);
    newest_message("Note 2", second);
    mark("archived", second); /* archived messages leave the counts */
    expect_on_both("state", 0, 0);
    mark("unarchived", second);
    expect_on_both("state", 1, 1);
    mark("read", second);
    expect_on_both("state", 0, 0);
    expect_quiet(dev_a, 300);
    expect_quiet(dev_b, 300);
}
END_TEST

/* The next event of type on both devices, whatever its counts. */
static void next_on_both(const char *type)
{
    ws *devs[] = {dev_a, dev_b};
    last_seq++;
    for (int i = 0; i < 2; i++)
        json_decref(expect_event(devs[i], type, last_seq));
}

/* A mark whose change (if any) both devices see. */
static void mark_seen_by_both(const char *action, const char *id)
{
    char path[256], body[256];
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", USER);
    snprintf(body, sizeof body, "{\"action\":\"%s\",\"ids\":[\"%s\"]}", action, id);
    json_t *j = as_user("POST", path, body, 200);
    if (num(j, "changed") > 0)
        next_on_both("state");
    json_decref(j);
}

/* How many emails the SMTP server has with this subject. */
static size_t emails_with_subject(const char *subject)
{
    json_t *all = e2e_records(&env, E2E_SMTP), *r;
    size_t i, n = 0;
    json_array_foreach(all, i, r)
    {
        const char *s = json_string_value(json_object_get(r, "subject"));
        n += s != NULL && strcmp(s, subject) == 0;
    }
    json_decref(all);
    return n;
}

START_TEST(test_a_follow_up_email_goes_for_the_unread_message_only)
{
    ck_assert_msg(up, "the stack did not start");
    e2e_put_user(&env, USER, USER "@example.com", NULL, NULL);
    e2e_put_template(&env, "e2e.remind", "inapp", "Remind {{data.n}}", "Unread {{data.n}}", NULL);
    e2e_put_template(&env, "e2e.remind", "email", "Still unread: {{data.n}}",
                     "Note {{data.n}} is waiting in your inbox", NULL);
    e2e_api_expect(&env, 200, "PUT", "/v1/followup-rules/remind",
                   "{\"event_type\":\"e2e.remind\",\"after_channel\":\"inapp\","
                   "\"delay_ms\":5000,\"channel\":\"email\"}");
    /* The dispatchers reload their rules on the change's notification. */
    testsupport_sleep_ms(1000);
    char ev[2][ID_UUID_SIZE], body[256];
    for (int n = 1; n <= 2; n++) {
        snprintf(body, sizeof body,
                 "{\"type\":\"e2e.remind\",\"user_id\":\"%s\",\"data\":{\"n\":%d}}", USER, n);
        e2e_publish(&env, body, ev[n - 1]);
        next_on_both("message");
    }
    /* The user opens the first on a device; the second stays unread. */
    char path[256], first[ID_UUID_SIZE], second[ID_UUID_SIZE];
    snprintf(path, sizeof path, "/v1/users/%s/inbox?page_size=2", USER);
    json_t *page = as_user("GET", path, NULL, 200);
    json_t *msgs = json_object_get(page, "messages");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "title")),
                     "Remind 1");
    snprintf(first, sizeof first, "%s",
             json_string_value(json_object_get(json_array_get(msgs, 1), "id")));
    snprintf(second, sizeof second, "%s",
             json_string_value(json_object_get(json_array_get(msgs, 0), "id")));
    json_decref(page);
    mark_seen_by_both("read", first);
    /* The reminder for the second arrives, for the first never. */
    int64_t deadline = timeutil_monotonic_ms() + E2E_PHASE_MS;
    for (int i = 0; i < 600 && emails_with_subject("Still unread: 2") == 0 &&
                    timeutil_monotonic_ms() < deadline;
         i++)
        testsupport_sleep_ms(100);
    ck_assert_uint_eq(emails_with_subject("Still unread: 2"), 1);
    testsupport_sleep_ms(2000);
    ck_assert_uint_eq(emails_with_subject("Still unread: 1"), 0);
    ck_assert_uint_eq(emails_with_subject("Still unread: 2"), 1);
    /* The event status says what became of each. */
    for (int k = 0; k < 2; k++) {
        char epath[128];
        snprintf(epath, sizeof epath, "/v1/events/%s", ev[k]);
        json_t *j = NULL;
        ck_assert_int_eq(e2e_api(&env, "GET", epath, NULL, &j), 200);
        json_t *f = json_array_get(json_object_get(j, "followups"), 0);
        ck_assert_ptr_nonnull(f);
        ck_assert_str_eq(json_string_value(json_object_get(f, "status")),
                         k == 0 ? "cancelled" : "sent");
        json_decref(j);
    }
    /* Both read and seen again, as the next cases expect the inbox. */
    const char *ids[2] = {first, second};
    for (int k = 0; k < 2; k++) {
        mark_seen_by_both("seen", ids[k]);
        mark_seen_by_both("read", ids[k]);
    }
    e2e_api_expect(&env, 204, "DELETE", "/v1/followup-rules/remind", NULL);
    expect_quiet(dev_a, 300);
    expect_quiet(dev_b, 300);
}
END_TEST

START_TEST(test_a_killed_instances_device_reconnects_to_the_other_and_misses_nothing)
{
    ck_assert_msg(up, "the stack did not start");
    e2e_kill(&env, E2E_REALTIME);
    ck_assert_int_ne(ws_wait_close(dev_a, RTCLIENT_WAIT_MS), 0);
    ws_close(dev_a);
    dev_a = NULL;
    /* Published while device A has no connection: B sees it live. */
    publish(3);
    json_t *ev = ws_next(dev_b, E2E_PHASE_MS);
    ck_assert_msg(ev != NULL, "device B: no event (close %d)", dev_b->close_code);
    ck_assert_int_eq(num(ev, "seq"), last_seq + 1);
    char id[ID_UUID_SIZE];
    snprintf(id, sizeof id, "%s",
             json_string_value(json_array_get(json_object_get(ev, "message_ids"), 0)));
    json_decref(ev);
    last_seq++;
    /* A reconnects, to the instance that is left, from the last id it saw. */
    dev_a = open_device(E2E_REALTIME_2, false, last_seq - 1);
    expect_counts(dev_a, last_seq, 1, 1);
    ev = expect_event(dev_a, "message", last_seq);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ev, "message_ids"), 0)), id);
    json_decref(ev);
    expect_quiet(dev_a, 500);
    /* and both go on together */
    publish(4);
    expect_on_both("message", 2, 2);
    e2e_restart(&env, E2E_REALTIME);
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    ws_close(dev_a);
    ws_close(dev_b);
    dev_a = dev_b = NULL;
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_two_live_instances_and_a_users_token),
    TEST_ENTRY(test_a_published_event_reaches_both_devices),
    TEST_ENTRY(test_marks_from_two_devices_keep_both_counts_right),
    TEST_ENTRY(test_a_follow_up_email_goes_for_the_unread_message_only),
    TEST_ENTRY(test_a_killed_instances_device_reconnects_to_the_other_and_misses_nothing),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_inapp", cases, env)

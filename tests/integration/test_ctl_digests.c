/*
 * heraldctl digest-rules, throttle-rules, followup-rules, digests,
 * followups, the digest and follow-up lines of status, and suppress, against a
 * gateway started in-process on the scratch database and against that
 * database directly.
 */
#include "gateway_harness.h"

static char out[65536], errout[65536];

/* Runs heraldctl with the gateway's URL, the admin key and the scratch database. */
static int ctl(const h_gateway *g, const char *key, ...)
{
    char bin[1024], env_url[128], env_key[128], env_db[1024];
    char *argv[32];
    int n = 0;
    testsupport_bin("heraldctl", bin, sizeof bin);
    argv[n++] = bin;
    va_list ap;
    va_start(ap, key);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(env_url, sizeof env_url, "HERALD_GATEWAY_URL=%s", g != NULL ? g->base : "");
    snprintf(env_key, sizeof env_key, "HERALD_API_KEY=%s", key);
    snprintf(env_db, sizeof env_db, "HERALD_DATABASE_URL=%s", h_dburl);
    const char *env[] = {env_url, env_key, env_db, NULL};
    return testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 60000);
}

/* Writes text to a new temporary file; its path into path. */
static void temp_file(const char *text, char *path, size_t len)
{
    snprintf(path, len, "/tmp/herald-ctl-rule-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

START_TEST(test_digest_rules_put_list_get_delete_through_the_gateway)
{
    h_gateway g;
    h_start(&g, NULL);
    char file[64];
    temp_file("{\"event_type\":\"comment.created\",\"channels\":[\"email\"],\"window\":\"fixed\","
              "\"window_ms\":600000,\"group_by\":\"data.thread_id\"}",
              file, sizeof file);
    int rc = ctl(&g, h_adminkey, "digest-rules", "put", "comments-email", "--file", file, NULL);
    ck_assert_msg(rc == 0, "put: %d %s %s", rc, out, errout);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "template")), "comment.created.digest");
    json_decref(j);
    unlink(file);

    rc = ctl(&g, h_adminkey, "digest-rules", "list", NULL);
    ck_assert_msg(rc == 0, "list: %d %s", rc, errout);
    ck_assert_ptr_nonnull(strstr(out, "NAME"));
    ck_assert_msg(strstr(out, "comments-email") != NULL && strstr(out, "data.thread_id") != NULL &&
                      strstr(out, "600000") != NULL,
                  "%s", out);
    rc = ctl(&g, h_adminkey, "digest-rules", "list", "--json", NULL);
    ck_assert_int_eq(rc, 0);
    j = json_loads(out, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "rules")), 1);
    json_decref(j);
    rc = ctl(&g, h_adminkey, "digest-rules", "get", "comments-email", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "\"window\": \"fixed\""));

    /* The gateway's refusal reaches the operator with its field. */
    temp_file("{\"event_type\":\"comment.created\",\"channels\":[\"fax\"],\"window\":\"fixed\","
              "\"window_ms\":1}",
              file, sizeof file);
    rc = ctl(&g, h_adminkey, "digest-rules", "put", "bad", "--file", file, NULL);
    unlink(file);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(errout, "heraldctl digest-rules: HTTP 400: channels: \"fax\" is not a channel "
                             "(email, sms, push, inapp)\n");
    /* A publish key is refused; no key at all is a usage error. */
    rc = ctl(&g, h_pubkey, "digest-rules", "list", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errout, "HTTP 403"));
    rc = ctl(&g, "", "digest-rules", "list", NULL);
    ck_assert_int_eq(rc, 2);
    rc = ctl(&g, h_adminkey, "digest-rules", "get", NULL);
    ck_assert_int_eq(rc, 2);

    rc = ctl(&g, h_adminkey, "digest-rules", "delete", "comments-email", NULL);
    ck_assert_msg(rc == 0, "%s", errout);
    rc = ctl(&g, h_adminkey, "digest-rules", "get", "comments-email", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errout, "HTTP 404"));

    temp_file("{\"category\":\"marketing\",\"max_count\":3,\"window_ms\":86400000,"
              "\"action\":\"defer\"}",
              file, sizeof file);
    rc = ctl(&g, h_adminkey, "throttle-rules", "put", "marketing-cap", "--file", file, NULL);
    unlink(file);
    ck_assert_msg(rc == 0, "%s", errout);
    rc = ctl(&g, h_adminkey, "throttle-rules", "list", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "marketing-cap") != NULL && strstr(out, "defer") != NULL, "%s", out);
    h_sql("DELETE FROM throttle_rules");
    h_stop(&g);

    /* No gateway there: exit 1, saying so. */
    h_gateway none = {0};
    snprintf(none.base, sizeof none.base, "http://127.0.0.1:%d", testsupport_free_port());
    rc = ctl(&none, h_adminkey, "digest-rules", "list", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errout, "cannot reach the gateway"));
}
END_TEST

START_TEST(test_digests_lists_open_windows_and_status_counts_them)
{
    h_sql("INSERT INTO digest_windows (window_id, rule_name, channel, user_id, group_key, "
          "kafka_partition, status, members, opened_at, last_event_at, closes_at, deadline) VALUES "
          "('11111111-1111-4111-8111-111111111111', 'comments-email', 'email', 'u-dig', 't-7', 0, "
          "'open', 3, now() - interval '20 minutes', now(), now() - interval '1 minute', "
          "now() + interval '1 hour'), "
          "('22222222-2222-4222-8222-222222222222', 'comments-email', 'email', 'u-other', '', 1, "
          "'open', 1, now(), now(), now() + interval '10 minutes', now() + interval '1 hour'), "
          "('33333333-3333-4333-8333-333333333333', 'comments-email', 'email', 'u-dig', 't-8', 0, "
          "'sent', 2, now() - interval '1 day', now(), now() - interval '1 day', now())");
    int rc = ctl(NULL, h_adminkey, "digests", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(out, "WINDOW_ID") != NULL &&
                      strstr(out, "11111111-1111-4111-8111-111111111111") != NULL &&
                      strstr(out, "22222222-2222-4222-8222-222222222222") != NULL &&
                      strstr(out, "33333333") == NULL,
                  "%s", out);
    /* Soonest to close first. */
    ck_assert(strstr(out, "11111111") < strstr(out, "22222222"));

    rc = ctl(NULL, h_adminkey, "digests", "--user", "u-dig", "--json", NULL);
    ck_assert_msg(rc == 0, "%s", errout);
    json_t *j = json_loads(out, 0, NULL);
    json_t *ws = json_object_get(j, "windows");
    ck_assert_uint_eq(json_array_size(ws), 1);
    json_t *w = json_array_get(ws, 0);
    ck_assert_str_eq(json_string_value(json_object_get(w, "window_id")),
                     "11111111-1111-4111-8111-111111111111");
    ck_assert_str_eq(json_string_value(json_object_get(w, "rule")), "comments-email");
    ck_assert_str_eq(json_string_value(json_object_get(w, "key")), "t-7");
    ck_assert_str_eq(json_string_value(json_object_get(w, "status")), "open");
    ck_assert_int_eq(json_integer_value(json_object_get(w, "members")), 3);
    ck_assert_ptr_nonnull(json_object_get(w, "closes_at"));
    json_decref(j);

    rc = ctl(NULL, h_adminkey, "digests", "--user", "topic:x", NULL);
    ck_assert_int_eq(rc, 2);

    rc = ctl(NULL, h_adminkey, "status", "--json", "--health-timeout", "100ms", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "%s", out);
    json_t *d = json_object_get(j, "digest_windows");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "open")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "closing")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "due")), 1);
    json_decref(j);
    rc = ctl(NULL, h_adminkey, "status", "--health-timeout", "100ms", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "digest windows: 2 open, 0 closing, 1 due") != NULL, "%s", out);
    h_sql("DELETE FROM digest_windows");
}
END_TEST

START_TEST(test_followup_rules_put_list_get_delete_through_the_gateway)
{
    h_gateway g;
    h_start(&g, NULL);
    char file[64];
    temp_file("{\"event_type\":\"comment.created\",\"delay_ms\":3600000,\"channel\":\"email\","
              "\"template\":\"comment.reminder\"}",
              file, sizeof file);
    int rc = ctl(&g, h_adminkey, "followup-rules", "put", "comment-reminder", "--file", file, NULL);
    unlink(file);
    ck_assert_msg(rc == 0, "put: %d %s %s", rc, out, errout);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "after_channel")), "inapp");
    json_decref(j);

    rc = ctl(&g, h_adminkey, "followup-rules", "list", NULL);
    ck_assert_msg(rc == 0, "list: %d %s", rc, errout);
    ck_assert_msg(strstr(out, "DELAY_MS") != NULL && strstr(out, "comment-reminder") != NULL &&
                      strstr(out, "3600000") != NULL && strstr(out, "comment.reminder") != NULL,
                  "%s", out);
    rc = ctl(&g, h_adminkey, "followup-rules", "get", "comment-reminder", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(strstr(out, "\"channel\": \"email\""));

    /* A second rule for the same event type and channel: the gateway's 409 reaches the operator. */
    temp_file("{\"event_type\":\"comment.created\",\"delay_ms\":60000,\"channel\":\"email\"}", file,
              sizeof file);
    rc = ctl(&g, h_adminkey, "followup-rules", "put", "other", "--file", file, NULL);
    unlink(file);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "HTTP 409") != NULL && strstr(errout, "comment-reminder") != NULL,
                  "%s", errout);
    temp_file("{\"event_type\":\"comment.created\",\"delay_ms\":60000,\"channel\":\"inapp\"}", file,
              sizeof file);
    rc = ctl(&g, h_adminkey, "followup-rules", "put", "other", "--file", file, NULL);
    unlink(file);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(errout,
                     "heraldctl followup-rules: HTTP 400: channel must be email, sms or push\n");

    rc = ctl(&g, h_adminkey, "followup-rules", "delete", "comment-reminder", NULL);
    ck_assert_msg(rc == 0, "%s", errout);
    rc = ctl(&g, h_adminkey, "followup-rules", "get", "comment-reminder", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_nonnull(strstr(errout, "HTTP 404"));
    h_sql("DELETE FROM followup_rules");
    h_stop(&g);
}
END_TEST

/* Follow-ups as the dispatcher records them (migration 014). */
START_TEST(test_followups_lists_pending_ones_and_status_counts_them)
{
#define EV1 "cccccccc-0000-4000-8000-000000000001"
#define EV2 "cccccccc-0000-4000-8000-000000000002"
#define EV3 "cccccccc-0000-4000-8000-000000000003"
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
          "('" EV1 "', 'comment.created', 'u-fu', 'normal', now()), "
          "('" EV2 "', 'comment.created', 'u-fu', 'normal', now()), "
          "('" EV3 "', 'comment.created', 'u-other', 'normal', now());"
          "INSERT INTO followups (event_id, rule_name, channel, user_id, kafka_partition, due_at, "
          "status, reason, event, decided_at) VALUES "
          "('" EV1 "', 'comment-reminder', 'email', 'u-fu', 0, now() - interval '1 minute', "
          "'pending', NULL, '{}', NULL), "
          "('" EV1 "', 'comment-sms', 'sms', 'u-fu', 0, now() + interval '1 hour', "
          "'cancelled', 'read', '{}', now()), "
          "('" EV2 "', 'comment-reminder', 'email', 'u-fu', 0, now() + interval '2 hours', "
          "'running', NULL, '{}', NULL), "
          "('" EV3 "', 'comment-reminder', 'email', 'u-other', 1, now() + interval '30 minutes', "
          "'pending', NULL, '{}', NULL)");

    int rc = ctl(NULL, h_adminkey, "followups", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(out, "DUE_AT") != NULL && strstr(out, EV1) != NULL &&
                      strstr(out, EV2) != NULL && strstr(out, EV3) != NULL &&
                      strstr(out, "comment-sms") == NULL,
                  "%s", out);
    /* Soonest due first. */
    ck_assert(strstr(out, EV1) < strstr(out, EV3) && strstr(out, EV3) < strstr(out, EV2));

    rc = ctl(NULL, h_adminkey, "followups", "--user", "u-fu", "--json", NULL);
    ck_assert_msg(rc == 0, "%s", errout);
    json_t *j = json_loads(out, 0, NULL);
    json_t *fs = json_object_get(j, "followups");
    ck_assert_uint_eq(json_array_size(fs), 2);
    json_t *f = json_array_get(fs, 0);
    ck_assert_str_eq(json_string_value(json_object_get(f, "event_id")), EV1);
    ck_assert_str_eq(json_string_value(json_object_get(f, "rule")), "comment-reminder");
    ck_assert_str_eq(json_string_value(json_object_get(f, "channel")), "email");
    ck_assert_str_eq(json_string_value(json_object_get(f, "status")), "pending");
    ck_assert_ptr_nonnull(json_string_value(json_object_get(f, "due_at")));
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(fs, 1), "status")),
                     "running");
    json_decref(j);
    rc = ctl(NULL, h_adminkey, "followups", "--user", "topic:x", NULL);
    ck_assert_int_eq(rc, 2);

    rc = ctl(NULL, h_adminkey, "status", "--json", "--health-timeout", "100ms", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "%s", out);
    json_t *c = json_object_get(j, "followups");
    ck_assert_int_eq(json_integer_value(json_object_get(c, "pending")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "running")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "due")), 1);
    json_decref(j);
    rc = ctl(NULL, h_adminkey, "status", "--health-timeout", "100ms", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "follow-ups: 2 pending, 1 running, 1 due") != NULL, "%s", out);

    h_sql("DELETE FROM followups; DELETE FROM events");
#undef EV1
#undef EV2
#undef EV3
}
END_TEST

START_TEST(test_suppress_add_list_remove_through_the_gateway)
{
    h_gateway g;
    h_start(&g, NULL);
    int rc = ctl(&g, h_adminkey, "suppress", "add", "email", "Kim@Example.com", "--detail",
                 "asked to stop", NULL);
    ck_assert_msg(rc == 0, "add: %d %s %s", rc, out, errout);
    ck_assert_msg(strstr(out, "suppressed email kim@example.com (manual)") != NULL, "%s", out);
    rc = ctl(&g, h_adminkey, "suppress", "add", "email", "kim@example.com", NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert_msg(strstr(out, "already suppressed") != NULL, "%s", out);
    ck_assert_int_eq(ctl(&g, h_adminkey, "suppress", "add", "sms", "+15550103", NULL), 0);
    /* Entries the receipts made are listed alike. */
    h_sql("INSERT INTO suppressions (channel, address, reason, detail) VALUES "
          "('push', 'tok-1', 'hard_bounce', 'unregistered')");
    rc = ctl(&g, h_adminkey, "suppress", "list", NULL);
    ck_assert_msg(rc == 0, "list: %d %s", rc, errout);
    ck_assert_msg(strstr(out, "CHANNEL") != NULL && strstr(out, "kim@example.com") != NULL &&
                      strstr(out, "asked to stop") != NULL && strstr(out, "+15550103") != NULL &&
                      strstr(out, "tok-1") != NULL && strstr(out, "hard_bounce") != NULL,
                  "%s", out);
    rc = ctl(&g, h_adminkey, "suppress", "list", "--reason", "manual", "--json", NULL);
    ck_assert_int_eq(rc, 0);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_uint_eq(json_array_size(j), 2);
    json_decref(j);
    rc = ctl(&g, h_adminkey, "suppress", "list", "--max", "1", "--json", NULL);
    j = json_loads(out, 0, NULL);
    ck_assert_uint_eq(json_array_size(j), 1);
    json_decref(j);

    ck_assert_int_eq(ctl(&g, h_adminkey, "suppress", "remove", "email", "kim@example.com", NULL),
                     0);
    ck_assert_msg(strstr(out, "removed email kim@example.com") != NULL, "%s", out);
    rc = ctl(&g, h_adminkey, "suppress", "remove", "email", "kim@example.com", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(errout, "HTTP 404") != NULL, "%s", errout);
    /* The gateway's refusal, with its field; usage errors exit 2. */
    rc = ctl(&g, h_adminkey, "suppress", "add", "email", "not-an-address", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(errout, "heraldctl suppress add: HTTP 400: address must be an email address "
                             "like name@example.com\n");
    ck_assert_int_eq(ctl(&g, h_adminkey, "suppress", "add", "email", NULL), 2);
    ck_assert_int_eq(ctl(&g, h_adminkey, "suppress", "forget", NULL), 2);
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_digest_rules_put_list_get_delete_through_the_gateway),
    TEST_ENTRY(test_digests_lists_open_windows_and_status_counts_them),
    TEST_ENTRY(test_followup_rules_put_list_get_delete_through_the_gateway),
    TEST_ENTRY(test_followups_lists_pending_ones_and_status_counts_them),
    TEST_ENTRY(test_suppress_add_list_remove_through_the_gateway),
};

TEST_MAIN_TIMEOUT("ctl_digests", cases, 180)

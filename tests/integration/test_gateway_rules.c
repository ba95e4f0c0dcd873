/*
 * The gateway's digest, throttle and follow-up rule routes
 * (docs/digests.md) against a real PostgreSQL: round trips, every refusal
 * naming its field, the one rule per match, and what GET /v1/events/{id}
 * tells of digests and follow-ups (rows written here as the dispatcher
 * would write them).
 */
#include "gateway_harness.h"

/* PUT path body and expect status; the response is left in r. */
static void put(h_gateway *g, const char *path, const char *body, long status, h_resp *r)
{
    h_http(g, "PUT", path, h_adminkey, NULL, body, NULL, r);
    ck_assert_msg(r->status == status, "PUT %s %s: %ld %s", path, body, r->status, r->body);
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_int_t num(json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

START_TEST(test_digest_rules_put_get_list_delete)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    put(&g, "/v1/digest-rules/comments-email",
        "{\"event_type\":\"comment.created\",\"channels\":[\"email\"],\"window\":\"fixed\","
        "\"window_ms\":600000,\"group_by\":\"data.thread_id\",\"max_events\":50}",
        200, &r);
    ck_assert_str_eq(str(r.json, "name"), "comments-email");
    ck_assert_str_eq(str(r.json, "window"), "fixed");
    ck_assert_int_eq(num(r.json, "window_ms"), 600000);
    ck_assert_int_eq(num(r.json, "max_events"), 50);
    ck_assert_str_eq(str(r.json, "template"), "comment.created.digest");
    ck_assert_int_eq(num(r.json, "events_shown"), 10);
    ck_assert(json_is_false(json_object_get(r.json, "send_first")));
    ck_assert(json_is_null(json_object_get(r.json, "category")));
    ck_assert(json_is_null(json_object_get(r.json, "schedule_at")));
    ck_assert_str_eq(str(r.json, "group_by"), "data.thread_id");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r.json, "channels"), 0)),
                     "email");
    char created[40];
    snprintf(created, sizeof created, "%s", str(r.json, "created_at"));
    ck_assert_str_eq(str(r.json, "updated_at"), created);
    h_resp_clear(&r);

    put(&g, "/v1/digest-rules/daily-summary",
        "{\"event_type\":\"comment.created\",\"category\":\"social\",\"channels\":[\"email\","
        "\"push\"],\"window\":\"scheduled\",\"schedule_at\":\"09:00\",\"template\":"
        "\"summary.daily\",\"events_shown\":25,\"send_first\":true}",
        200, &r);
    ck_assert_str_eq(str(r.json, "schedule_at"), "09:00");
    ck_assert_str_eq(str(r.json, "template"), "summary.daily");
    ck_assert_str_eq(str(r.json, "category"), "social");
    ck_assert(json_is_null(json_object_get(r.json, "window_ms")));
    ck_assert(json_is_true(json_object_get(r.json, "send_first")));
    h_resp_clear(&r);

    /* Replacing keeps created_at and bumps updated_at; a GET answer can be PUT back. */
    testsupport_sleep_ms(20);
    h_http(&g, "GET", "/v1/digest-rules/comments-email", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object_set_new(r.json, "window", json_string("sliding"));
    json_object_set_new(r.json, "max_window_ms", json_integer(3600000));
    char *again = json_dumps(r.json, JSON_COMPACT);
    h_resp_clear(&r);
    put(&g, "/v1/digest-rules/comments-email", again, 200, &r);
    free(again);
    ck_assert_str_eq(str(r.json, "window"), "sliding");
    ck_assert_int_eq(num(r.json, "max_window_ms"), 3600000);
    ck_assert_str_eq(str(r.json, "created_at"), created);
    ck_assert_str_ne(str(r.json, "updated_at"), created);
    h_resp_clear(&r);

    h_http(&g, "GET", "/v1/digest-rules", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_t *rules = json_object_get(r.json, "rules");
    ck_assert_uint_eq(json_array_size(rules), 2);
    ck_assert_str_eq(str(json_array_get(rules, 0), "name"), "comments-email");
    ck_assert_str_eq(str(json_array_get(rules, 1), "name"), "daily-summary");
    h_resp_clear(&r);

    /* A publish key may not touch rules. */
    h_http(&g, "GET", "/v1/digest-rules", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);

    h_http(&g, "DELETE", "/v1/digest-rules/daily-summary", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/digest-rules/daily-summary", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/digest-rules/daily-summary", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_sql("DELETE FROM digest_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_digest_rules_refuse_bad_input_naming_the_field)
{
    static const struct {
        const char *body, *field, *says;
    } bad[] = {
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"colour\":1}",
         "colour", "unknown field"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\"}", "window_ms",
         "window_ms"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":0}",
         "window_ms", "window_ms"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"sliding\",\"window_ms\":-5,"
         "\"max_window_ms\":10}",
         "window_ms", "window_ms"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1.5}",
         "window_ms", "integer"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":\"9\"}",
         "window_ms", "integer"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"sliding\",\"window_ms\":"
         "1000}",
         "max_window_ms", "required"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"sliding\",\"window_ms\":1000,"
         "\"max_window_ms\":999}",
         "max_window_ms", "at least window_ms"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"scheduled\"}", "schedule_at",
         "HH:MM"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"scheduled\","
         "\"schedule_at\":\"24:00\"}",
         "schedule_at", "HH:MM"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"scheduled\","
         "\"schedule_at\":\"9:00\"}",
         "schedule_at", "HH:MM"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"weekly\"}", "window",
         "fixed, sliding or scheduled"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"max_events\":0}",
         "max_events", "max_events"},
        {"{\"event_type\":\"a\",\"channels\":[],\"window\":\"fixed\",\"window_ms\":1}", "channels",
         "non-empty"},
        {"{\"event_type\":\"a\",\"channels\":\"email\",\"window\":\"fixed\",\"window_ms\":1}",
         "channels", "array"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\",\"email\"],\"window\":\"fixed\","
         "\"window_ms\":1}",
         "channels", "twice"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\",\"fax\"],\"window\":\"fixed\","
         "\"window_ms\":1}",
         "channels", "\"fax\""},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"group_by\":\"thread_id\"}",
         "group_by", "field under data"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"group_by\":\"data.\"}",
         "group_by", "field under data"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"group_by\":\"data.a b\"}",
         "group_by", "field under data"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"group_by\":\"data.1.2.3.4.5.6.7.8.9.10.11.12.13.14.15.16.17\"}",
         "group_by", "field under data"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"category\":\"\"}",
         "category", "category"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"category\":"
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "category", "category"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"events_shown\":0}",
         "events_shown", "1..100"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"events_shown\":101}",
         "events_shown", "1..100"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"template\":\"Digest\"}",
         "template", "template"},
        {"{\"event_type\":\"Comment\",\"channels\":[\"email\"],\"window\":\"fixed\","
         "\"window_ms\":1}",
         "event_type", "event_type"},
        {"{\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1}", "event_type",
         "required"},
        {"{\"name\":\"other\",\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\","
         "\"window_ms\":1}",
         "name", "name"},
        {"{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1,"
         "\"send_first\":\"yes\"}",
         "send_first", "true or false"},
    };
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(&g, "/v1/digest-rules/r1", bad[i].body, 400, &r);
        ck_assert_str_eq(h_error_code(&r), "invalid_field");
        ck_assert_msg(strcmp(h_error_field(&r), bad[i].field) == 0, "%s: field %s, not %s",
                      bad[i].body, h_error_field(&r), bad[i].field);
        const char *msg = str(json_object_get(r.json, "error"), "message");
        ck_assert_msg(strstr(msg, bad[i].says) != NULL, "%s: \"%s\" does not say %s", bad[i].body,
                      msg, bad[i].says);
        h_resp_clear(&r);
    }
    /* A bad name in the path. */
    put(&g, "/v1/digest-rules/Bad%20Name",
        "{\"event_type\":\"a\",\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":1}", 400,
        &r);
    ck_assert_str_eq(h_error_field(&r), "name");
    h_resp_clear(&r);
    /* A scheduled window needs no window_ms. */
    put(&g, "/v1/digest-rules/r1",
        "{\"event_type\":\"a\",\"channels\":[\"inapp\"],\"window\":\"scheduled\","
        "\"schedule_at\":\"23:59\"}",
        200, &r);
    h_resp_clear(&r);
    char n[16];
    h_sql_value("SELECT count(*) FROM digest_rules", n, sizeof n);
    ck_assert_str_eq(n, "1");
    h_sql("DELETE FROM digest_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_digest_rules_one_per_event_type_and_category)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    const char *fixed = "\"channels\":[\"email\"],\"window\":\"fixed\",\"window_ms\":60000";
    char body[512];
    snprintf(body, sizeof body, "{\"event_type\":\"comment.created\",%s}", fixed);
    put(&g, "/v1/digest-rules/first", body, 200, &r);
    h_resp_clear(&r);
    /* The same pair under another name: 409 naming the rule in the way. */
    put(&g, "/v1/digest-rules/second", body, 409, &r);
    ck_assert_str_eq(h_error_code(&r), "conflict");
    ck_assert_ptr_nonnull(strstr(str(json_object_get(r.json, "error"), "message"), "\"first\""));
    h_resp_clear(&r);
    /* Another category is another pair; the same name replaces itself. */
    snprintf(body, sizeof body, "{\"event_type\":\"comment.created\",\"category\":\"social\",%s}",
             fixed);
    put(&g, "/v1/digest-rules/second", body, 200, &r);
    h_resp_clear(&r);
    put(&g, "/v1/digest-rules/second", body, 200, &r);
    h_resp_clear(&r);
    put(&g, "/v1/digest-rules/third", body, 409, &r);
    h_resp_clear(&r);
    /* Moving "first" onto "second"'s pair is refused too. */
    put(&g, "/v1/digest-rules/first", body, 409, &r);
    h_resp_clear(&r);
    char n[16];
    h_sql_value("SELECT count(*) FROM digest_rules", n, sizeof n);
    ck_assert_str_eq(n, "2");
    h_sql("DELETE FROM digest_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_throttle_rules_put_get_list_delete)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    put(&g, "/v1/throttle-rules/marketing-cap",
        "{\"category\":\"marketing\",\"channel\":\"email\",\"max_count\":3,\"window_ms\":86400000,"
        "\"action\":\"drop\"}",
        200, &r);
    ck_assert_str_eq(str(r.json, "name"), "marketing-cap");
    ck_assert_str_eq(str(r.json, "category"), "marketing");
    ck_assert_str_eq(str(r.json, "channel"), "email");
    ck_assert_int_eq(num(r.json, "max_count"), 3);
    ck_assert_int_eq(num(r.json, "window_ms"), 86400000);
    ck_assert_str_eq(str(r.json, "action"), "drop");
    ck_assert_ptr_nonnull(str(r.json, "created_at"));
    h_resp_clear(&r);
    put(&g, "/v1/throttle-rules/all-push",
        "{\"max_count\":10,\"window_ms\":3600000,\"action\":\"defer\"}", 200, &r);
    ck_assert(json_is_null(json_object_get(r.json, "category")));
    ck_assert(json_is_null(json_object_get(r.json, "channel")));
    h_resp_clear(&r);
    put(&g, "/v1/throttle-rules/all-push",
        "{\"channel\":\"push\",\"max_count\":5,\"window_ms\":3600000,\"action\":\"defer\"}", 200,
        &r);
    ck_assert_str_eq(str(r.json, "channel"), "push");
    ck_assert_int_eq(num(r.json, "max_count"), 5);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/throttle-rules/all-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(num(r.json, "max_count"), 5);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/throttle-rules", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_t *rules = json_object_get(r.json, "rules");
    ck_assert_uint_eq(json_array_size(rules), 2);
    ck_assert_str_eq(str(json_array_get(rules, 0), "name"), "all-push");
    ck_assert_str_eq(str(json_array_get(rules, 1), "name"), "marketing-cap");
    h_resp_clear(&r);

    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{\"max_count\":1,\"window_ms\":1,\"action\":\"drop\",\"per\":\"day\"}", "per"},
        {"{\"max_count\":0,\"window_ms\":1,\"action\":\"drop\"}", "max_count"},
        {"{\"window_ms\":1,\"action\":\"drop\"}", "max_count"},
        {"{\"max_count\":1,\"window_ms\":0,\"action\":\"drop\"}", "window_ms"},
        {"{\"max_count\":1,\"action\":\"drop\"}", "window_ms"},
        {"{\"max_count\":1,\"window_ms\":1.5,\"action\":\"drop\"}", "window_ms"},
        {"{\"max_count\":1,\"window_ms\":1,\"action\":\"queue\"}", "action"},
        {"{\"max_count\":1,\"window_ms\":1}", "action"},
        {"{\"max_count\":1,\"window_ms\":1,\"action\":\"drop\",\"channel\":\"fax\"}", "channel"},
        {"{\"max_count\":1,\"window_ms\":1,\"action\":\"drop\",\"category\":\"\"}", "category"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(&g, "/v1/throttle-rules/t1", bad[i].body, 400, &r);
        ck_assert_msg(strcmp(h_error_field(&r), bad[i].field) == 0, "%s: field %s, not %s",
                      bad[i].body, h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }

    h_http(&g, "DELETE", "/v1/throttle-rules/all-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/throttle-rules/all-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/throttle-rules/x", h_pubkey, NULL,
           "{\"max_count\":1,\"window_ms\":1,\"action\":\"drop\"}", NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    h_sql("DELETE FROM throttle_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_followup_rules_put_get_list_delete)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    put(&g, "/v1/followup-rules/comment-reminder",
        "{\"event_type\":\"comment.created\",\"after_channel\":\"inapp\",\"delay_ms\":3600000,"
        "\"channel\":\"email\",\"template\":\"comment.reminder\"}",
        200, &r);
    ck_assert_str_eq(str(r.json, "name"), "comment-reminder");
    ck_assert_str_eq(str(r.json, "event_type"), "comment.created");
    ck_assert_str_eq(str(r.json, "after_channel"), "inapp");
    ck_assert_int_eq(num(r.json, "delay_ms"), 3600000);
    ck_assert_str_eq(str(r.json, "channel"), "email");
    ck_assert_str_eq(str(r.json, "template"), "comment.reminder");
    ck_assert(json_is_null(json_object_get(r.json, "category")));
    char created[40];
    snprintf(created, sizeof created, "%s", str(r.json, "created_at"));
    ck_assert_str_eq(str(r.json, "updated_at"), created);
    h_resp_clear(&r);

    /* after_channel defaults to inapp, template to the event's own (null). */
    put(&g, "/v1/followup-rules/mention-push",
        "{\"event_type\":\"mention.created\",\"category\":\"social\",\"delay_ms\":600000,"
        "\"channel\":\"push\"}",
        200, &r);
    ck_assert_str_eq(str(r.json, "after_channel"), "inapp");
    ck_assert_str_eq(str(r.json, "category"), "social");
    ck_assert(json_is_null(json_object_get(r.json, "template")));
    h_resp_clear(&r);

    /* A GET answer can be PUT back; replacing keeps created_at. */
    testsupport_sleep_ms(20);
    h_http(&g, "GET", "/v1/followup-rules/comment-reminder", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_object_set_new(r.json, "delay_ms", json_integer(7200000));
    char *again = json_dumps(r.json, JSON_COMPACT);
    h_resp_clear(&r);
    put(&g, "/v1/followup-rules/comment-reminder", again, 200, &r);
    free(again);
    ck_assert_int_eq(num(r.json, "delay_ms"), 7200000);
    ck_assert_str_eq(str(r.json, "created_at"), created);
    ck_assert_str_ne(str(r.json, "updated_at"), created);
    h_resp_clear(&r);

    h_http(&g, "GET", "/v1/followup-rules", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    json_t *rules = json_object_get(r.json, "rules");
    ck_assert_uint_eq(json_array_size(rules), 2);
    ck_assert_str_eq(str(json_array_get(rules, 0), "name"), "comment-reminder");
    ck_assert_str_eq(str(json_array_get(rules, 1), "name"), "mention-push");
    h_resp_clear(&r);

    h_http(&g, "GET", "/v1/followup-rules", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);

    h_http(&g, "DELETE", "/v1/followup-rules/mention-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/followup-rules/mention-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/followup-rules/mention-push", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_sql("DELETE FROM followup_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_followup_rules_refuse_bad_input_and_a_second_rule_for_a_channel)
{
    static const struct {
        const char *body, *field, *says;
    } bad[] = {
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\",\"when\":\"unread\"}", "when",
         "unknown field"},
        {"{\"event_type\":\"A b\",\"delay_ms\":1,\"channel\":\"email\"}", "event_type",
         "event_type"},
        {"{\"delay_ms\":1,\"channel\":\"email\"}", "event_type", "required"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\",\"template\":\"Reminder\"}",
         "template", "template"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\",\"category\":\"\"}",
         "category", "category"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\",\"category\":"
         "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "category", "category"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"sms\",\"after_channel\":\"email\"}",
         "after_channel", "only the in-app channel has a read state"},
        {"{\"event_type\":\"a\",\"channel\":\"email\"}", "delay_ms", "required"},
        {"{\"event_type\":\"a\",\"delay_ms\":0,\"channel\":\"email\"}", "delay_ms", "integer"},
        {"{\"event_type\":\"a\",\"delay_ms\":-1000,\"channel\":\"email\"}", "delay_ms", "integer"},
        {"{\"event_type\":\"a\",\"delay_ms\":1.5,\"channel\":\"email\"}", "delay_ms", "integer"},
        {"{\"event_type\":\"a\",\"delay_ms\":\"60000\",\"channel\":\"email\"}", "delay_ms",
         "integer"},
        {"{\"event_type\":\"a\",\"delay_ms\":31622400001,\"channel\":\"email\"}", "delay_ms",
         "31622400000"},
        {"{\"event_type\":\"a\",\"delay_ms\":1}", "channel", "required"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"inapp\"}", "channel",
         "email, sms or push"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"fax\"}", "channel",
         "email, sms or push"},
        {"{\"name\":\"other\",\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\"}", "name",
         "name"},
    };
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(&g, "/v1/followup-rules/f1", bad[i].body, 400, &r);
        ck_assert_str_eq(h_error_code(&r), "invalid_field");
        ck_assert_msg(strcmp(h_error_field(&r), bad[i].field) == 0, "%s: field %s, not %s",
                      bad[i].body, h_error_field(&r), bad[i].field);
        const char *msg = str(json_object_get(r.json, "error"), "message");
        ck_assert_msg(strstr(msg, bad[i].says) != NULL, "%s: \"%s\" does not say %s", bad[i].body,
                      msg, bad[i].says);
        h_resp_clear(&r);
    }
    put(&g, "/v1/followup-rules/Bad%20Name",
        "{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\"}", 400, &r);
    ck_assert_str_eq(h_error_field(&r), "name");
    h_resp_clear(&r);

    /* One rule per event type, category and channel: 409 naming the rule in the way. */
    const char *email = "{\"event_type\":\"comment.created\",\"delay_ms\":3600000,"
                        "\"channel\":\"email\"}";
    put(&g, "/v1/followup-rules/first", email, 200, &r);
    h_resp_clear(&r);
    put(&g, "/v1/followup-rules/second", email, 409, &r);
    ck_assert_str_eq(h_error_code(&r), "conflict");
    const char *msg = str(json_object_get(r.json, "error"), "message");
    ck_assert_msg(strstr(msg, "\"first\"") != NULL && strstr(msg, "channel \"email\"") != NULL,
                  "%s", msg);
    h_resp_clear(&r);
    /* Another channel or category is another rule; the same name replaces itself. */
    put(&g, "/v1/followup-rules/second",
        "{\"event_type\":\"comment.created\",\"delay_ms\":3600000,\"channel\":\"sms\"}", 200, &r);
    h_resp_clear(&r);
    put(&g, "/v1/followup-rules/third",
        "{\"event_type\":\"comment.created\",\"category\":\"social\",\"delay_ms\":60000,"
        "\"channel\":\"email\"}",
        200, &r);
    h_resp_clear(&r);
    put(&g, "/v1/followup-rules/first", email, 200, &r);
    h_resp_clear(&r);
    /* Moving "second" onto "first"'s match is refused too. */
    put(&g, "/v1/followup-rules/second", email, 409, &r);
    h_resp_clear(&r);
    char n[16];
    h_sql_value("SELECT count(*) FROM followup_rules", n, sizeof n);
    ck_assert_str_eq(n, "3");
    h_sql_value("SELECT channel FROM followup_rules WHERE name = 'second'", n, sizeof n);
    ck_assert_str_eq(n, "sms");
    h_sql("DELETE FROM followup_rules");
    h_stop(&g);
}
END_TEST

START_TEST(test_event_status_shows_its_digests_and_a_digest_its_events)
{
#define EV   "aaaaaaaa-0000-4000-8000-000000000001"
#define EV2  "aaaaaaaa-0000-4000-8000-000000000002"
#define WIN  "bbbbbbbb-0000-4000-8000-000000000001"
#define WIN2 "bbbbbbbb-0000-4000-8000-000000000002"
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
          "('" EV "', 'comment.created', 'u-dg', 'normal', now()), "
          "('" EV2 "', 'comment.created', 'u-dg', 'normal', now());"
          "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, status, "
          "skip_reason) VALUES ('" EV "/email', '" EV "', 'u-dg', 'email', 'digested', 'digest'), "
          "('" EV "/push', '" EV "', 'u-dg', 'push', 'sent', NULL);"
          "INSERT INTO digest_windows (window_id, rule_name, channel, user_id, group_key, "
          "kafka_partition, status, members, opened_at, last_event_at, closes_at, deadline) "
          "VALUES ('" WIN "', 'comments-email', 'email', 'u-dg', 't-1', 0, 'open', 2, now(), "
          "now(), now() + interval '10 minutes', now() + interval '1 hour'), "
          "('" WIN2 "', 'comments-push', 'push', 'u-dg', '', 0, 'sent', 0, now(), now(), now(), "
          "now());"
          "UPDATE digest_windows SET sent_at = now(), closed_at = now() WHERE window_id = '" WIN2
          "';"
          "INSERT INTO digest_events (event_id, channel, window_id, role, item, added_at) VALUES "
          "('" EV "', 'email', '" WIN "', 'member', '{}', now()), "
          "('" EV2 "', 'email', '" WIN "', 'member', '{}', now()), "
          "('" EV "', 'push', '" WIN2 "', 'first', '{}', now())");
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "GET", "/v1/events/" EV, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(str(r.json, "status"), "delivered");
    json_t *ds = json_object_get(r.json, "digests");
    ck_assert_uint_eq(json_array_size(ds), 2);
    json_t *d = json_array_get(ds, 0);
    ck_assert_str_eq(str(d, "channel"), "email");
    ck_assert_str_eq(str(d, "digest_id"), WIN);
    ck_assert_str_eq(str(d, "rule"), "comments-email");
    ck_assert_str_eq(str(d, "role"), "member");
    ck_assert_str_eq(str(d, "status"), "waiting");
    ck_assert_ptr_nonnull(str(d, "closes_at"));
    ck_assert(json_is_null(json_object_get(d, "sent_at")));
    d = json_array_get(ds, 1);
    ck_assert_str_eq(str(d, "channel"), "push");
    ck_assert_str_eq(str(d, "role"), "first");
    ck_assert_str_eq(str(d, "status"), "sent");
    ck_assert_ptr_nonnull(str(d, "sent_at"));
    /* The digested delivery is listed with its reason. */
    json_t *dl = json_object_get(r.json, "deliveries");
    int digested = 0;
    for (size_t i = 0; i < json_array_size(dl); i++)
        if (strcmp(str(json_array_get(dl, i), "status"), "digested") == 0) {
            ck_assert_str_eq(str(json_array_get(dl, i), "skip_reason"), "digest");
            digested++;
        }
    ck_assert_int_eq(digested, 1);
    ck_assert_ptr_null(json_object_get(r.json, "digest"));
    h_resp_clear(&r);

    /* The window's own id: the digest, its members in order, before any events row. */
    h_http(&g, "GET", "/v1/events/" WIN, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    json_t *dg = json_object_get(r.json, "digest");
    ck_assert_str_eq(str(dg, "rule"), "comments-email");
    ck_assert_str_eq(str(dg, "channel"), "email");
    ck_assert_str_eq(str(dg, "user_id"), "u-dg");
    ck_assert_str_eq(str(dg, "group_key"), "t-1");
    ck_assert_int_eq(num(dg, "members"), 2);
    ck_assert_str_eq(str(dg, "status"), "waiting");
    ck_assert_ptr_nonnull(str(dg, "opened_at"));
    json_t *evs = json_object_get(dg, "events");
    ck_assert_uint_eq(json_array_size(evs), 2);
    ck_assert_str_eq(json_string_value(json_array_get(evs, 0)), EV);
    ck_assert_str_eq(json_string_value(json_array_get(evs, 1)), EV2);
    ck_assert_uint_eq(json_array_size(json_object_get(r.json, "digests")), 0);
    h_resp_clear(&r);

    /* Once the dispatcher recorded the digest's delivery as an event. */
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
          "('" WIN2 "', 'comment.created.digest', 'u-dg', 'normal', now())");
    h_http(&g, "GET", "/v1/events/" WIN2, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(str(r.json, "type"), "comment.created.digest");
    ck_assert_str_eq(str(json_object_get(r.json, "digest"), "status"), "sent");
    ck_assert_uint_eq(json_array_size(json_object_get(json_object_get(r.json, "digest"), "events")),
                      0);
    h_resp_clear(&r);
    h_stop(&g);
    h_sql("DELETE FROM digest_windows; DELETE FROM deliveries; DELETE FROM events");
#undef EV
#undef EV2
#undef WIN
#undef WIN2
}
END_TEST

/* Follow-ups as the dispatcher records them (migration 014), with the delivery held for one. */
START_TEST(test_event_status_shows_its_followups)
{
#define EV1 "cccccccc-0000-4000-8000-000000000001"
#define EV2 "cccccccc-0000-4000-8000-000000000002"
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
          "('" EV1 "', 'comment.created', 'u-fu', 'normal', now()), "
          "('" EV2 "', 'comment.created', 'u-fu', 'normal', now());"
          "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, status, "
          "skip_reason) VALUES ('" EV1 "/inapp', '" EV1 "', 'u-fu', 'inapp', 'sent', NULL), "
          "('" EV1 "/email', '" EV1 "', 'u-fu', 'email', 'scheduled', 'followup'), "
          "('" EV2 "/inapp', '" EV2 "', 'u-fu', 'inapp', 'sent', NULL);"
          "INSERT INTO followups (event_id, rule_name, channel, user_id, kafka_partition, due_at, "
          "status, reason, event, decided_at) VALUES "
          "('" EV1 "', 'comment-reminder', 'email', 'u-fu', 0, now() + interval '1 hour', "
          "'pending', NULL, '{}', NULL), "
          "('" EV1 "', 'comment-sms', 'sms', 'u-fu', 0, now() + interval '2 hours', "
          "'cancelled', 'read', '{}', now())");
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    /* The event tells of its follow-ups and of the delivery held for them. */
    h_http(&g, "GET", "/v1/events/" EV1, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    json_t *fs = json_object_get(r.json, "followups");
    ck_assert_uint_eq(json_array_size(fs), 2);
    json_t *f = json_array_get(fs, 0);
    ck_assert_str_eq(str(f, "rule"), "comment-reminder");
    ck_assert_str_eq(str(f, "channel"), "email");
    ck_assert_str_eq(str(f, "status"), "pending");
    ck_assert(json_is_null(json_object_get(f, "reason")));
    ck_assert_ptr_nonnull(str(f, "due_at"));
    ck_assert(json_is_null(json_object_get(f, "decided_at")));
    f = json_array_get(fs, 1);
    ck_assert_str_eq(str(f, "rule"), "comment-sms");
    ck_assert_str_eq(str(f, "status"), "cancelled");
    ck_assert_str_eq(str(f, "reason"), "read");
    ck_assert_ptr_nonnull(str(f, "decided_at"));
    json_t *dl = json_object_get(r.json, "deliveries");
    int held = 0;
    for (size_t i = 0; i < json_array_size(dl); i++) {
        json_t *d = json_array_get(dl, i);
        if (strcmp(str(d, "status"), "scheduled") == 0) {
            ck_assert_str_eq(str(d, "skip_reason"), "followup");
            held++;
        }
    }
    ck_assert_int_eq(held, 1);
    ck_assert_str_eq(str(r.json, "status"), "processing");
    h_resp_clear(&r);
    /* None: an empty list, as for digests. */
    h_http(&g, "GET", "/v1/events/" EV2, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_array(json_object_get(r.json, "followups")));
    ck_assert_uint_eq(json_array_size(json_object_get(r.json, "followups")), 0);
    h_resp_clear(&r);
    h_stop(&g);
    h_sql("DELETE FROM followups; DELETE FROM deliveries; DELETE FROM events");
#undef EV1
#undef EV2
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_digest_rules_put_get_list_delete),
    TEST_ENTRY(test_digest_rules_refuse_bad_input_naming_the_field),
    TEST_ENTRY(test_digest_rules_one_per_event_type_and_category),
    TEST_ENTRY(test_throttle_rules_put_get_list_delete),
    TEST_ENTRY(test_followup_rules_put_get_list_delete),
    TEST_ENTRY(test_followup_rules_refuse_bad_input_and_a_second_rule_for_a_channel),
    TEST_ENTRY(test_event_status_shows_its_digests_and_a_digest_its_events),
    TEST_ENTRY(test_event_status_shows_its_followups),
};

TEST_MAIN_TIMEOUT("gateway_rules", cases, 120)

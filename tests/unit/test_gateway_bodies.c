/*
 * The management API's request bodies: each rule, and the field named
 * when it is broken.
 */
#include "bodies.h"
#include "testutil.h"

#include <string.h>

/* Parses text and runs check; returns the error (field "" and rc 0 when valid). */
static int run(int (*check)(const json_t *, bodies_error *), const char *text, bodies_error *e)
{
    json_t *doc = NULL;
    memset(e, 0, sizeof *e);
    if (bodies_parse_object(text, strlen(text), &doc, e) != 0)
        return -2;
    int rc = check(doc, e);
    json_decref(doc);
    return rc;
}

START_TEST(test_bodies_parse_rejects_non_objects_duplicates_and_trailing_data)
{
    json_t *doc = NULL;
    bodies_error e;
    ck_assert_int_eq(bodies_parse_object("[1]", 3, &doc, &e), -1);
    ck_assert_int_eq(bodies_parse_object("{\"a\":1,\"a\":2}", 13, &doc, &e), -1);
    ck_assert_int_eq(bodies_parse_object("{} {}", 5, &doc, &e), -1);
    ck_assert_int_eq(bodies_parse_object("", 0, &doc, &e), -1);
    ck_assert_int_eq(bodies_parse_object("{\"a\":\"\\u0000\"}", 14, &doc, &e), -1);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(bodies_parse_object("{\"a\":1}", 7, &doc, &e), 0);
    json_decref(doc);
}
END_TEST

START_TEST(test_bodies_user_accepts_a_full_user)
{
    bodies_error e;
    ck_assert_int_eq(run(bodies_check_user,
                         "{\"email\":\"ann@example.com\",\"phone\":\"+14155550123\","
                         "\"push_tokens\":[\"tok-1\",\"tok-2\"],\"timezone\":\"Europe/Paris\","
                         "\"locale\":\"pt-BR\",\"name\":\"Ann\"}",
                         &e),
                     0);
    ck_assert_int_eq(run(bodies_check_user, "{}", &e), 0);
    ck_assert_int_eq(run(bodies_check_user, "{\"email\":null,\"push_tokens\":null}", &e), 0);
}
END_TEST

START_TEST(test_bodies_user_names_the_offending_field)
{
    bodies_error e;
    ck_assert_int_eq(run(bodies_check_user, "{\"email\":\"not an email\"}", &e), -1);
    ck_assert_str_eq(e.field, "email");
    ck_assert_int_eq(run(bodies_check_user, "{\"phone\":\"0123\"}", &e), -1);
    ck_assert_str_eq(e.field, "phone");
    ck_assert_int_eq(run(bodies_check_user, "{\"timezone\":\"Mars/Olympus\"}", &e), -1);
    ck_assert_str_eq(e.field, "timezone");
    ck_assert_int_eq(run(bodies_check_user, "{\"locale\":\"english\"}", &e), -1);
    ck_assert_str_eq(e.field, "locale");
    ck_assert_int_eq(run(bodies_check_user, "{\"push_tokens\":[\"ok\",\"has space\"]}", &e), -1);
    ck_assert_str_eq(e.field, "push_tokens[1]");
    ck_assert_int_eq(run(bodies_check_user, "{\"push_tokens\":\"tok\"}", &e), -1);
    ck_assert_str_eq(e.field, "push_tokens");
    ck_assert_int_eq(run(bodies_check_user, "{\"emial\":\"a@b.co\"}", &e), -1);
    ck_assert_str_eq(e.field, "emial");
    ck_assert_int_eq(run(bodies_check_user, "{\"name\":42}", &e), -1);
    ck_assert_str_eq(e.field, "name");
}
END_TEST

START_TEST(test_bodies_preferences_accept_channels_categories_and_quiet_hours)
{
    bodies_error e;
    ck_assert_int_eq(run(bodies_check_preferences,
                         "{\"channels\":{\"email\":true,\"sms\":false},"
                         "\"categories\":{\"marketing\":{\"email\":false}},"
                         "\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"07:00\"}}",
                         &e),
                     0);
    ck_assert_int_eq(run(bodies_check_preferences, "{\"quiet_hours\":null}", &e), 0);
    /* The in-app inbox is switched off and opted out of like any channel. */
    ck_assert_int_eq(run(bodies_check_preferences,
                         "{\"channels\":{\"inapp\":false},"
                         "\"categories\":{\"news\":{\"inapp\":false}}}",
                         &e),
                     0);
}
END_TEST

START_TEST(test_bodies_preferences_name_the_offending_field)
{
    bodies_error e;
    ck_assert_int_eq(run(bodies_check_preferences, "{\"channels\":{\"fax\":true}}", &e), -1);
    ck_assert_str_eq(e.field, "channels.fax");
    ck_assert_int_eq(run(bodies_check_preferences, "{\"channels\":{\"sms\":\"no\"}}", &e), -1);
    ck_assert_str_eq(e.field, "channels.sms");
    ck_assert_int_eq(run(bodies_check_preferences, "{\"categories\":{\"promo\":{\"push\":1}}}", &e),
                     -1);
    ck_assert_str_eq(e.field, "categories.promo.push");
    ck_assert_int_eq(run(bodies_check_preferences, "{\"categories\":{\"Bad Name\":{}}}", &e), -1);
    ck_assert_str_eq(e.field, "categories.Bad Name");
    ck_assert_int_eq(run(bodies_check_preferences,
                         "{\"quiet_hours\":{\"start\":\"24:00\",\"end\":\"07:00\"}}", &e),
                     -1);
    ck_assert_str_eq(e.field, "quiet_hours.start");
    ck_assert_int_eq(run(bodies_check_preferences, "{\"quiet_hours\":{\"start\":\"22:00\"}}", &e),
                     -1);
    ck_assert_str_eq(e.field, "quiet_hours.end");
    ck_assert_int_eq(run(bodies_check_preferences,
                         "{\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"07:00\",\"tz\":\"UTC\"}}",
                         &e),
                     -1);
    ck_assert_str_eq(e.field, "quiet_hours.tz");
}
END_TEST

START_TEST(test_bodies_hhmm_bounds)
{
    int m = -1;
    ck_assert_int_eq(bodies_parse_hhmm("00:00", 5, &m), 0);
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(bodies_parse_hhmm("23:59", 5, &m), 0);
    ck_assert_int_eq(m, 23 * 60 + 59);
    ck_assert_int_eq(bodies_parse_hhmm("23:60", 5, &m), -1);
    ck_assert_int_eq(bodies_parse_hhmm("7:00", 4, &m), -1);
    ck_assert_int_eq(bodies_parse_hhmm("07-00", 5, &m), -1);
}
END_TEST

START_TEST(test_bodies_placeholders_must_parse)
{
    char err[128];
    /* The dispatcher's grammar: array indexes and '-' in keys are paths, and
     * a stray "}}" is text (as in Mustache, so CSS in HTML mail survives). */
    const char *good[] = {"Hi {{user.name}}, order {{ data.order.id }}",
                          "{{event.type}} {single} braces",
                          "no placeholders",
                          "",
                          "{{data.items.0.name}}",
                          "{{data.x-y}}",
                          "@media{.a{b:c}}"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(bodies_check_placeholders(good[i], strlen(good[i]), err, sizeof err) == 0,
                      "refused %s: %s", good[i], err);
    const char *bad[] = {"{{user.name}",   "{{ }}",          "{{secret.x}}",
                         "{{data.}}",      "{{data..x}}",    "{{data}}",
                         "{{user.{{x}}}}", "{{user.na me}}", "a\0{{user.name}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = strlen(bad[i]) + (bad[i][1] == '\0' ? 1 + strlen(bad[i] + 2) : 0);
        ck_assert_msg(bodies_check_placeholders(bad[i], len, err, sizeof err) == -1, "accepted %s",
                      bad[i]);
    }
    /* Not NUL-terminated: only len bytes are read. */
    const char unterminated[] = {'{', '{', 'u', 's', 'e', 'r', '.', 'n', '}', '}', '}'};
    ck_assert_int_eq(bodies_check_placeholders(unterminated, 10, err, sizeof err), 0);
}
END_TEST

START_TEST(test_bodies_template_requires_a_body_and_checks_each_text)
{
    bodies_error e;
    ck_assert_int_eq(run(bodies_check_template,
                         "{\"subject\":\"Shipped {{data.id}}\",\"body\":\"Hi {{user.name}}\","
                         "\"category\":\"orders\"}",
                         &e),
                     0);
    ck_assert_int_eq(run(bodies_check_template, "{\"subject\":\"x\"}", &e), -1);
    ck_assert_str_eq(e.field, "body");
    ck_assert_int_eq(run(bodies_check_template, "{\"body\":\"Hi {{user.name}\"}", &e), -1);
    ck_assert_str_eq(e.field, "body");
    ck_assert_int_eq(run(bodies_check_template, "{\"body\":\"x\",\"subject\":\"a\\nb\"}", &e), -1);
    ck_assert_str_eq(e.field, "subject");
    ck_assert_int_eq(run(bodies_check_template, "{\"body\":\"x\",\"category\":\"Not OK\"}", &e),
                     -1);
    ck_assert_str_eq(e.field, "category");
    ck_assert_int_eq(run(bodies_check_template, "{\"body\":\"x\",\"html\":true}", &e), -1);
    ck_assert_str_eq(e.field, "html");
}
END_TEST

START_TEST(test_bodies_locale_shapes)
{
    ck_assert_int_eq(bodies_check_locale("en", 2), 0);
    ck_assert_int_eq(bodies_check_locale("zh-Hant-TW", 10), 0);
    ck_assert_int_eq(bodies_check_locale("e", 1), -1);
    ck_assert_int_eq(bodies_check_locale("en-", 3), -1);
    ck_assert_int_eq(bodies_check_locale("en_US", 5), -1);
    ck_assert_int_eq(bodies_check_locale("en-abcdefghi", 12), -1);
}
END_TEST

START_TEST(test_bodies_group_by_names_a_field_under_data)
{
    static const char *const good[] = {"data.thread_id", "data.a.b-c.D_9", "data.x"};
    static const char *const bad[] = {
        "",          "data",    "data.",
        "thread_id", "data..a", "data.a.",
        "data.a b",  "user.id", "data.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(bodies_check_group_by(good[i], strlen(good[i])) == 0, "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(bodies_check_group_by(bad[i], strlen(bad[i])) != 0, "%s", bad[i]);
    char seg[200];
    memset(seg, 'a', sizeof seg);
    memcpy(seg, "data.", 5);
    ck_assert_int_eq(bodies_check_group_by(seg, 5 + 128), 0);
    ck_assert_int_eq(bodies_check_group_by(seg, 5 + 129), -1);
}

START_TEST(test_bodies_digest_rule_default_template_must_fit_a_name)
{
    char text[400];
    bodies_error e;
    char type[130];
    memset(type, 'a', 121);
    type[121] = '\0';
    snprintf(text, sizeof text,
             "{\"event_type\":\"%s\",\"channels\":[\"sms\"],\"window\":\"fixed\","
             "\"window_ms\":5}",
             type);
    json_t *body = json_loads(text, 0, NULL);
    ck_assert_int_eq(bodies_check_digest_rule(body, "r", &e), 0);
    json_decref(body);
    memset(type, 'a', 122);
    type[122] = '\0';
    snprintf(text, sizeof text,
             "{\"event_type\":\"%s\",\"channels\":[\"sms\"],\"window\":\"fixed\","
             "\"window_ms\":5}",
             type);
    body = json_loads(text, 0, NULL);
    ck_assert_int_eq(bodies_check_digest_rule(body, "r", &e), -1);
    ck_assert_str_eq(e.field, "template");
    json_decref(body);
}

START_TEST(test_bodies_followup_rule_delay_bounds_and_read_state)
{
    static const struct {
        const char *body, *field; /* field NULL: accepted */
    } cases[] = {
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"sms\"}", NULL},
        {"{\"event_type\":\"a\",\"delay_ms\":31622400000,\"channel\":\"push\","
         "\"after_channel\":null,\"template\":null,\"category\":null}",
         NULL},
        {"{\"event_type\":\"a\",\"delay_ms\":31622400001,\"channel\":\"push\"}", "delay_ms"},
        {"{\"event_type\":\"a\",\"delay_ms\":null,\"channel\":\"push\"}", "delay_ms"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"push\",\"after_channel\":\"push\"}",
         "after_channel"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"push\",\"after_channel\":1}",
         "after_channel"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":null}", "channel"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":[\"email\"]}", "channel"},
        {"{\"event_type\":\"a\",\"delay_ms\":1,\"channel\":\"email\",\"template\":7}", "template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bodies_error e = {0};
        json_t *body = json_loads(cases[i].body, 0, NULL);
        ck_assert_ptr_nonnull(body);
        int rc = bodies_check_followup_rule(body, "r", &e);
        if (cases[i].field == NULL)
            ck_assert_msg(rc == 0, "%s: %s %s", cases[i].body, e.field, e.message);
        else
            ck_assert_msg(rc == -1 && strcmp(e.field, cases[i].field) == 0, "%s: %d %s",
                          cases[i].body, rc, e.field);
        json_decref(body);
    }
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_bodies_parse_rejects_non_objects_duplicates_and_trailing_data),
    TEST_ENTRY(test_bodies_user_accepts_a_full_user),
    TEST_ENTRY(test_bodies_user_names_the_offending_field),
    TEST_ENTRY(test_bodies_preferences_accept_channels_categories_and_quiet_hours),
    TEST_ENTRY(test_bodies_preferences_name_the_offending_field),
    TEST_ENTRY(test_bodies_hhmm_bounds),
    TEST_ENTRY(test_bodies_placeholders_must_parse),
    TEST_ENTRY(test_bodies_template_requires_a_body_and_checks_each_text),
    TEST_ENTRY(test_bodies_locale_shapes),
    TEST_ENTRY(test_bodies_group_by_names_a_field_under_data),
    TEST_ENTRY(test_bodies_digest_rule_default_template_must_fit_a_name),
    TEST_ENTRY(test_bodies_followup_rule_delay_bounds_and_read_state),
};

TEST_MAIN("gateway_bodies", cases)

/*
 * decide: which channels an event reaches for one user, and why not when it
 * does not — preferences, categories, priorities, addresses, templates and
 * quiet hours in the user's own time zone.
 */
#include "decide.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

#include <string.h>

static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
    return (timeutil_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

/* Noon UTC on an ordinary day: outside any quiet hours used below. */
#define NOON utc_ms(2026, 5, 12, 12, 0)

static const char *const tokens[] = {"tok-phone", "tok-tablet", "tok-laptop"};

static decide_user ada(void)
{
    decide_user u = {.user_id = "ada",
                     .email = "ada@example.com",
                     .phone = "+4915112345678",
                     .push_tokens = tokens,
                     .npush_tokens = 2,
                     .zone = NULL};
    return u;
}

static decide_templates all_templates(void)
{
    decide_templates t = {.exists = {true, true, true, true}};
    return t;
}

static decide_event event(decide_priority p, const char *category)
{
    decide_event e = {.priority = p, .category = category};
    return e;
}

/* Prefs from JSON text; *holder keeps the documents alive. */
static decide_prefs prefs_from(const char *channels, const char *categories, json_t **holder)
{
    json_error_t jerr;
    decide_prefs p = {0};
    *holder = json_pack("{s:o?,s:o?}", "channels", channels ? json_loads(channels, 0, &jerr) : NULL,
                        "categories", categories ? json_loads(categories, 0, &jerr) : NULL);
    ck_assert_ptr_nonnull(*holder);
    p.channels = json_object_get(*holder, "channels");
    p.categories = json_object_get(*holder, "categories");
    return p;
}

static const tz_zone *zone(const char *name)
{
    char err[256] = "";
    const tz_zone *z = tz_get(name, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    return z;
}

#define ASSERT_SKIP(res, ch, why)                                                                  \
    do {                                                                                           \
        ck_assert_int_eq((res).channel[ch].action, DECIDE_SKIP);                                   \
        ck_assert_str_eq(decide_reason_name((res).channel[ch].reason), (why));                     \
        ck_assert_uint_eq((res).channel[ch].naddresses, 0);                                        \
    } while (0)

#define ASSERT_SEND(res, ch)                                                                       \
    do {                                                                                           \
        ck_assert_int_eq((res).channel[ch].action, DECIDE_SEND);                                   \
        ck_assert_int_eq((res).channel[ch].reason, DECIDE_REASON_NONE);                            \
        ck_assert_uint_gt((res).channel[ch].naddresses, 0);                                        \
    } while (0)

START_TEST(test_sends_every_channel_by_default)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    decide_event e = event(DECIDE_PRIORITY_NORMAL, NULL);
    decide_result r;

    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    ASSERT_SEND(r, DECIDE_EMAIL);
    ASSERT_SEND(r, DECIDE_SMS);
    ASSERT_SEND(r, DECIDE_PUSH);
    ck_assert_uint_eq(r.channel[DECIDE_EMAIL].naddresses, 1);
    ck_assert_str_eq(r.channel[DECIDE_EMAIL].addresses[0], "ada@example.com");
    ck_assert_uint_eq(r.channel[DECIDE_SMS].naddresses, 1);
    ck_assert_str_eq(r.channel[DECIDE_SMS].addresses[0], "+4915112345678");
    ck_assert_str_eq(decide_action_status(r.channel[DECIDE_SMS].action), "pending");

    /* Empty documents are the same as none. */
    json_t *holder;
    decide_prefs p = prefs_from("{}", "{}", &holder);
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SEND(r, ch);
    json_decref(holder);
}
END_TEST

START_TEST(test_push_goes_to_every_token)
{
    decide_user u = ada();
    u.npush_tokens = 3;
    decide_templates t = all_templates();
    decide_event e = event(DECIDE_PRIORITY_HIGH, NULL);
    decide_result r;

    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    ck_assert_uint_eq(r.channel[DECIDE_PUSH].naddresses, 3);
    ck_assert_str_eq(r.channel[DECIDE_PUSH].addresses[0], "tok-phone");
    ck_assert_str_eq(r.channel[DECIDE_PUSH].addresses[1], "tok-tablet");
    ck_assert_str_eq(r.channel[DECIDE_PUSH].addresses[2], "tok-laptop");
}
END_TEST

START_TEST(test_unknown_user_skips_every_channel)
{
    decide_templates t = all_templates();
    decide_event e = event(DECIDE_PRIORITY_CRITICAL, NULL);
    decide_result r;

    decide_for_user(&e, NULL, NULL, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SKIP(r, ch, "unknown_user");
    ck_assert_str_eq(decide_action_status(r.channel[DECIDE_EMAIL].action), "skipped");
}
END_TEST

START_TEST(test_channel_without_template_is_skipped)
{
    decide_user u = ada();
    decide_templates t = {.exists = {true, false, true}};
    decide_event e = event(DECIDE_PRIORITY_CRITICAL, NULL);
    decide_result r;

    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    ASSERT_SEND(r, DECIDE_EMAIL);
    ASSERT_SKIP(r, DECIDE_SMS, "no_template");
    ASSERT_SEND(r, DECIDE_PUSH);
}
END_TEST

START_TEST(test_disabled_channel_is_skipped_even_for_critical)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    json_t *holder;
    /* Only false disables; true, absent and junk values leave it on. */
    decide_prefs p = prefs_from("{\"sms\":false,\"email\":true,\"push\":\"no\"}", NULL, &holder);
    decide_result r;

    for (int pr = DECIDE_PRIORITY_CRITICAL; pr <= DECIDE_PRIORITY_LOW; pr++) {
        decide_event e = event((decide_priority)pr, NULL);
        decide_for_user(&e, &u, &p, &t, NOON, &r);
        ASSERT_SEND(r, DECIDE_EMAIL);
        ASSERT_SKIP(r, DECIDE_SMS, "channel_disabled");
        ASSERT_SEND(r, DECIDE_PUSH);
    }
    json_decref(holder);
}
END_TEST

START_TEST(test_category_opt_out_applies_per_channel)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    json_t *holder;
    decide_prefs p = prefs_from(NULL, "{\"marketing\":{\"email\":false,\"sms\":true}}", &holder);
    decide_result r;

    decide_event e = event(DECIDE_PRIORITY_NORMAL, "marketing");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_EMAIL, "category_opted_out");
    ASSERT_SEND(r, DECIDE_SMS);
    ASSERT_SEND(r, DECIDE_PUSH);
    ck_assert_str_eq(r.channel[DECIDE_EMAIL].category, "marketing");

    /* Another category is unaffected. */
    e = event(DECIDE_PRIORITY_NORMAL, "security");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SEND(r, DECIDE_EMAIL);
    json_decref(holder);
}
END_TEST

START_TEST(test_template_category_wins_over_the_events)
{
    decide_user u = ada();
    decide_templates t = {.exists = {true, true, true},
                          .category = {"marketing", NULL, "marketing"}};
    json_t *holder;
    decide_prefs p = prefs_from(NULL, "{\"marketing\":{\"email\":false,\"push\":false}}", &holder);
    decide_result r;

    decide_event e = event(DECIDE_PRIORITY_NORMAL, NULL);
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_EMAIL, "category_opted_out");
    ASSERT_SEND(r, DECIDE_SMS);
    ASSERT_SKIP(r, DECIDE_PUSH, "category_opted_out");

    /* The template's category wins over the publisher's, "transactional"
     * included; a channel whose template has none takes the event's. */
    e = event(DECIDE_PRIORITY_NORMAL, "transactional");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_EMAIL, "category_opted_out");
    ASSERT_SKIP(r, DECIDE_PUSH, "category_opted_out");
    ck_assert_str_eq(r.channel[DECIDE_PUSH].category, "marketing");
    ASSERT_SEND(r, DECIDE_SMS);
    ck_assert_str_eq(r.channel[DECIDE_SMS].category, "transactional");
    json_decref(holder);
}
END_TEST

START_TEST(test_category_set_to_false_opts_out_of_every_channel)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    json_t *holder;
    decide_prefs p = prefs_from(NULL, "{\"marketing\":false}", &holder);
    decide_result r;

    decide_event e = event(DECIDE_PRIORITY_HIGH, "marketing");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SKIP(r, ch, "category_opted_out");
    json_decref(holder);
}
END_TEST

START_TEST(test_transactional_and_uncategorised_events_cannot_be_opted_out)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    json_t *holder;
    decide_prefs p = prefs_from(NULL, "{\"transactional\":false}", &holder);
    decide_result r;

    decide_event e = event(DECIDE_PRIORITY_LOW, "transactional");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SEND(r, ch);
    e = event(DECIDE_PRIORITY_LOW, NULL);
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SEND(r, ch);
    json_decref(holder);
}
END_TEST

START_TEST(test_critical_ignores_category_opt_outs_and_quiet_hours)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    json_t *holder;
    decide_prefs p = prefs_from(NULL, "{\"security\":{\"email\":false,\"sms\":false}}", &holder);
    ck_assert_int_eq(quiet_parse("22:00", "07:00", &p.quiet, NULL, 0), 0);
    int64_t night = utc_ms(2026, 5, 12, 23, 0);
    decide_result r;

    decide_event e = event(DECIDE_PRIORITY_CRITICAL, "security");
    decide_for_user(&e, &u, &p, &t, night, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SEND(r, ch);

    /* The same event at high priority: opted out where asked, delayed elsewhere. */
    e = event(DECIDE_PRIORITY_HIGH, "security");
    decide_for_user(&e, &u, &p, &t, night, &r);
    ASSERT_SKIP(r, DECIDE_EMAIL, "category_opted_out");
    ASSERT_SKIP(r, DECIDE_SMS, "category_opted_out");
    ck_assert_int_eq(r.channel[DECIDE_PUSH].action, DECIDE_SCHEDULE);
    json_decref(holder);
}
END_TEST

START_TEST(test_missing_addresses_are_skipped)
{
    decide_user u = {.email = NULL, .phone = "", .push_tokens = NULL, .npush_tokens = 0};
    decide_templates t = all_templates();
    decide_event e = event(DECIDE_PRIORITY_CRITICAL, NULL);
    decide_result r;

    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SKIP(r, ch, "no_address");
    ck_assert_ptr_null(r.channel[DECIDE_EMAIL].addresses);

    u = ada();
    u.npush_tokens = 0; /* a token array with no tokens */
    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_PUSH, "no_address");
    ASSERT_SEND(r, DECIDE_EMAIL);
}
END_TEST

START_TEST(test_reasons_follow_the_documented_order)
{
    /* No address, channel disabled, no template and quiet hours all at once. */
    decide_user u = {.email = NULL, .phone = NULL};
    decide_templates t = {.exists = {true, false, true}};
    json_t *holder;
    decide_prefs p = prefs_from("{\"email\":false}", "{\"news\":{\"push\":false}}", &holder);
    ck_assert_int_eq(quiet_parse("00:00", "23:59", &p.quiet, NULL, 0), 0);
    decide_event e = event(DECIDE_PRIORITY_LOW, "news");
    decide_result r;

    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_EMAIL, "channel_disabled");
    ASSERT_SKIP(r, DECIDE_SMS, "no_template");
    ASSERT_SKIP(r, DECIDE_PUSH, "category_opted_out");

    /* With addresses and nothing else in the way, the low event meets quiet hours. */
    u = ada();
    e = event(DECIDE_PRIORITY_LOW, "orders");
    decide_for_user(&e, &u, &p, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_PUSH, "quiet_hours_dropped");
    json_decref(holder);
}
END_TEST

START_TEST(test_quiet_hours_delay_normal_and_high_and_drop_low)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    decide_prefs p = {0};
    ck_assert_int_eq(quiet_parse("22:00", "07:00", &p.quiet, NULL, 0), 0);
    int64_t night = utc_ms(2026, 5, 12, 23, 15);
    decide_result r;

    for (int pr = DECIDE_PRIORITY_HIGH; pr <= DECIDE_PRIORITY_NORMAL; pr++) {
        decide_event e = event((decide_priority)pr, NULL);
        decide_for_user(&e, &u, &p, &t, night, &r);
        for (int ch = 0; ch < DECIDE_INAPP; ch++) {
            ck_assert_int_eq(r.channel[ch].action, DECIDE_SCHEDULE);
            ck_assert_int_eq(r.channel[ch].not_before_ms, utc_ms(2026, 5, 13, 7, 0));
            ck_assert_uint_gt(r.channel[ch].naddresses, 0);
        }
        ck_assert_str_eq(decide_action_status(r.channel[DECIDE_EMAIL].action), "scheduled");
    }
    decide_event low = event(DECIDE_PRIORITY_LOW, NULL);
    decide_for_user(&low, &u, &p, &t, night, &r);
    for (int ch = 0; ch < DECIDE_INAPP; ch++)
        ASSERT_SKIP(r, ch, "quiet_hours_dropped");

    /* Outside the window low priority goes out. */
    decide_for_user(&low, &u, &p, &t, NOON, &r);
    for (int ch = 0; ch < DECIDE_CHANNELS; ch++)
        ASSERT_SEND(r, ch);
}
END_TEST

START_TEST(test_inapp_goes_to_the_inbox_and_ignores_quiet_hours)
{
    decide_user u = ada();
    decide_templates t = all_templates();
    decide_prefs p = {0};
    ck_assert_int_eq(quiet_parse("22:00", "07:00", &p.quiet, NULL, 0), 0);
    int64_t night = utc_ms(2026, 5, 12, 23, 15);
    decide_result r;

    for (int pr = DECIDE_PRIORITY_CRITICAL; pr <= DECIDE_PRIORITY_LOW; pr++) {
        decide_event e = event((decide_priority)pr, NULL);
        decide_for_user(&e, &u, &p, &t, night, &r);
        ASSERT_SEND(r, DECIDE_INAPP);
        ck_assert_uint_eq(r.channel[DECIDE_INAPP].naddresses, 1);
        ck_assert_str_eq(r.channel[DECIDE_INAPP].addresses[0], "ada");
    }
    /* The same preferences as every channel: switched off, or opted out of. */
    json_t *holder;
    decide_prefs off = prefs_from("{\"inapp\":false}", "{\"news\":{\"inapp\":false}}", &holder);
    decide_event e = event(DECIDE_PRIORITY_CRITICAL, NULL);
    decide_for_user(&e, &u, &off, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_INAPP, "channel_disabled");
    ASSERT_SEND(r, DECIDE_EMAIL);
    off.channels = NULL;
    e = event(DECIDE_PRIORITY_NORMAL, "news");
    decide_for_user(&e, &u, &off, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_INAPP, "category_opted_out");
    ASSERT_SEND(r, DECIDE_PUSH);
    e = event(DECIDE_PRIORITY_CRITICAL, "news");
    decide_for_user(&e, &u, &off, &t, NOON, &r);
    ASSERT_SEND(r, DECIDE_INAPP);
    /* No inapp template: the inbox is not meant for this event type. */
    t.exists[DECIDE_INAPP] = false;
    decide_for_user(&e, &u, NULL, &t, NOON, &r);
    ASSERT_SKIP(r, DECIDE_INAPP, "no_template");
    json_decref(holder);
}
END_TEST

START_TEST(test_quiet_hours_in_new_york_across_the_spring_change)
{
    decide_user u = ada();
    u.zone = zone("America/New_York");
    decide_templates t = all_templates();
    decide_prefs p = {0};
    ck_assert_int_eq(quiet_parse("22:00", "07:00", &p.quiet, NULL, 0), 0);
    decide_event e = event(DECIDE_PRIORITY_NORMAL, NULL);
    decide_result r;

    /* 22:00 EST on 6 March: held until 07:00 EST = 12:00 UTC. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 3, 7, 3, 0), &r);
    ck_assert_int_eq(r.channel[DECIDE_SMS].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_SMS].not_before_ms, utc_ms(2026, 3, 7, 12, 0));
    /* 22:00 EST on 7 March: held until 07:00 EDT = 11:00 UTC. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 3, 8, 3, 0), &r);
    ck_assert_int_eq(r.channel[DECIDE_SMS].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_SMS].not_before_ms, utc_ms(2026, 3, 8, 11, 0));
    /* 11:00 UTC is 07:00 EDT: the window is over. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 3, 8, 11, 0), &r);
    ASSERT_SEND(r, DECIDE_SMS);
    tz_cache_clear();
}
END_TEST

START_TEST(test_quiet_hours_in_berlin_across_the_autumn_change)
{
    decide_user u = ada();
    u.zone = zone("Europe/Berlin");
    decide_templates t = all_templates();
    decide_prefs p = {0};
    ck_assert_int_eq(quiet_parse("22:00", "07:00", &p.quiet, NULL, 0), 0);
    decide_event e = event(DECIDE_PRIORITY_HIGH, NULL);
    decide_result r;

    /* 23:00 CEST on 24 October: held until 07:00 CET on the 25th = 06:00 UTC. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 10, 24, 21, 0), &r);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].not_before_ms, utc_ms(2026, 10, 25, 6, 0));
    /* 05:30 UTC is 06:30 CET: still quiet. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 10, 25, 5, 30), &r);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].not_before_ms, utc_ms(2026, 10, 25, 6, 0));
    /* 06:00 UTC is 07:00 CET: sent; a user without a zone (UTC) still sleeps. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 10, 25, 6, 0), &r);
    ASSERT_SEND(r, DECIDE_PUSH);
    u.zone = NULL;
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 10, 25, 6, 0), &r);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_PUSH].not_before_ms, utc_ms(2026, 10, 25, 7, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_non_wrapping_quiet_hours_in_a_half_hour_zone)
{
    decide_user u = ada();
    u.zone = zone("Asia/Kolkata");
    decide_templates t = all_templates();
    decide_prefs p = {0};
    ck_assert_int_eq(quiet_parse("13:00", "14:00", &p.quiet, NULL, 0), 0);
    decide_event e = event(DECIDE_PRIORITY_NORMAL, NULL);
    decide_result r;

    /* 08:00 UTC is 13:30 IST: held until 14:00 IST = 08:30 UTC. */
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 6, 1, 8, 0), &r);
    ck_assert_int_eq(r.channel[DECIDE_EMAIL].action, DECIDE_SCHEDULE);
    ck_assert_int_eq(r.channel[DECIDE_EMAIL].not_before_ms, utc_ms(2026, 6, 1, 8, 30));
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 6, 1, 8, 30), &r);
    ASSERT_SEND(r, DECIDE_EMAIL);
    decide_for_user(&e, &u, &p, &t, utc_ms(2026, 6, 1, 7, 29), &r);
    ASSERT_SEND(r, DECIDE_EMAIL);
    tz_cache_clear();
}
END_TEST

START_TEST(test_reason_names_are_the_stored_codes)
{
    ck_assert_str_eq(decide_reason_name(DECIDE_REASON_QUIET_HOURS_DROPPED), "quiet_hours_dropped");
    ck_assert_str_eq(decide_reason_name(DECIDE_REASON_NONE), "");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_sends_every_channel_by_default),
    TEST_ENTRY(test_push_goes_to_every_token),
    TEST_ENTRY(test_unknown_user_skips_every_channel),
    TEST_ENTRY(test_channel_without_template_is_skipped),
    TEST_ENTRY(test_disabled_channel_is_skipped_even_for_critical),
    TEST_ENTRY(test_category_opt_out_applies_per_channel),
    TEST_ENTRY(test_template_category_wins_over_the_events),
    TEST_ENTRY(test_category_set_to_false_opts_out_of_every_channel),
    TEST_ENTRY(test_transactional_and_uncategorised_events_cannot_be_opted_out),
    TEST_ENTRY(test_critical_ignores_category_opt_outs_and_quiet_hours),
    TEST_ENTRY(test_missing_addresses_are_skipped),
    TEST_ENTRY(test_reasons_follow_the_documented_order),
    TEST_ENTRY(test_quiet_hours_delay_normal_and_high_and_drop_low),
    TEST_ENTRY(test_inapp_goes_to_the_inbox_and_ignores_quiet_hours),
    TEST_ENTRY(test_quiet_hours_in_new_york_across_the_spring_change),
    TEST_ENTRY(test_quiet_hours_in_berlin_across_the_autumn_change),
    TEST_ENTRY(test_non_wrapping_quiet_hours_in_a_half_hour_zone),
    TEST_ENTRY(test_reason_names_are_the_stored_codes),
};

TEST_MAIN("decide", cases)

/*
 * quiet: when a user's quiet hours hold and the instant they end, on the
 * user's own wall clock, across DST changes.
 */
#include "quiet.h"
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

#include <string.h>

static int64_t utc_ms(int y, int mo, int d, int h, int mi)
{
    return (timeutil_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static quiet_hours window(const char *start, const char *end)
{
    quiet_hours q;
    char err[128];
    ck_assert_msg(quiet_parse(start, end, &q, err, sizeof(err)) == 0, "%s", err);
    return q;
}

static const tz_zone *zone(const char *name)
{
    char err[256] = "";
    const tz_zone *z = tz_get(name, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    return z;
}

/* Asserts the window is active at now and ends at want. */
static void assert_ends(const quiet_hours *q, const tz_zone *z, int64_t now, int64_t want)
{
    int64_t end = -1;
    ck_assert_msg(quiet_active(q, z, now, &end), "not quiet at %lld", (long long)now);
    ck_assert_int_eq(end, want);
}

START_TEST(test_parse_accepts_hh_mm_and_postgres_time)
{
    int s = -1;
    ck_assert_int_eq(quiet_parse_time("22:00", &s, NULL, 0), 0);
    ck_assert_int_eq(s, 22 * 3600);
    ck_assert_int_eq(quiet_parse_time("07:30:15", &s, NULL, 0), 0);
    ck_assert_int_eq(s, 7 * 3600 + 30 * 60 + 15);
    ck_assert_int_eq(quiet_parse_time("00:00", &s, NULL, 0), 0);
    ck_assert_int_eq(s, 0);
    ck_assert_int_eq(quiet_parse_time("24:00", &s, NULL, 0), 0);
    ck_assert_int_eq(s, 0);

    quiet_hours none = window(NULL, NULL);
    ck_assert(!quiet_is_set(&none));
}
END_TEST

START_TEST(test_parse_rejects_malformed_times)
{
    const char *bad[] = {"7:00",   "25:00", "22:60",    "22:00:", "2200", "",
                         "22:00 ", "24:01", "22:00:60", "ab:cd",  "-1:00"};
    char err[128];
    int s;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(quiet_parse_time(bad[i], &s, err, sizeof(err)) == -1, "accepted \"%s\"",
                      bad[i]);
    ck_assert_int_eq(quiet_parse_time("7:00", &s, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "expected a time of day HH:MM, got \"7:00\"");

    quiet_hours q;
    ck_assert_int_eq(quiet_parse(NULL, "07:00", &q, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "quiet_hours: needs both start and end");
    ck_assert_int_eq(quiet_parse("22:00", "7am", &q, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "quiet_hours.end: expected a time of day HH:MM, got \"7am\"");
}
END_TEST

START_TEST(test_equal_start_and_end_means_no_window)
{
    quiet_hours q = window("22:00", "22:00");
    ck_assert(!quiet_is_set(&q));
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 1, 22, 0), NULL));
    quiet_hours zero = {0, 0};
    ck_assert(!quiet_active(&zero, NULL, utc_ms(2026, 5, 1, 0, 0), NULL));
}
END_TEST

START_TEST(test_wrapping_window_spans_midnight)
{
    quiet_hours q = window("22:00", "07:00");
    /* No zone: UTC. */
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 1, 21, 59), NULL));
    assert_ends(&q, NULL, utc_ms(2026, 5, 1, 22, 0), utc_ms(2026, 5, 2, 7, 0));
    assert_ends(&q, NULL, utc_ms(2026, 5, 1, 23, 30), utc_ms(2026, 5, 2, 7, 0));
    assert_ends(&q, NULL, utc_ms(2026, 5, 2, 3, 0), utc_ms(2026, 5, 2, 7, 0));
    assert_ends(&q, NULL, utc_ms(2026, 5, 2, 6, 59) + 59999, utc_ms(2026, 5, 2, 7, 0));
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 2, 7, 0), NULL));
    /* Across a month and a year end. */
    assert_ends(&q, NULL, utc_ms(2026, 12, 31, 23, 0), utc_ms(2027, 1, 1, 7, 0));
}
END_TEST

START_TEST(test_non_wrapping_window_within_a_day)
{
    quiet_hours q = window("13:00", "14:00");
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 1, 12, 59), NULL));
    assert_ends(&q, NULL, utc_ms(2026, 5, 1, 13, 0), utc_ms(2026, 5, 1, 14, 0));
    assert_ends(&q, NULL, utc_ms(2026, 5, 1, 13, 30), utc_ms(2026, 5, 1, 14, 0));
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 1, 14, 0), NULL));
    ck_assert(!quiet_active(&q, NULL, utc_ms(2026, 5, 1, 23, 0), NULL));
}
END_TEST

START_TEST(test_new_york_window_ends_an_hour_earlier_in_utc_after_spring_forward)
{
    const tz_zone *ny = zone("America/New_York");
    quiet_hours q = window("22:00", "07:00");
    /* An ordinary night: 07:00 EST is 12:00 UTC. */
    assert_ends(&q, ny, utc_ms(2026, 3, 7, 3, 0), utc_ms(2026, 3, 7, 12, 0));
    /* The night of 7 to 8 March 2026: 07:00 EDT is 11:00 UTC. */
    assert_ends(&q, ny, utc_ms(2026, 3, 8, 3, 0), utc_ms(2026, 3, 8, 11, 0));
    assert_ends(&q, ny, utc_ms(2026, 3, 8, 6, 30), utc_ms(2026, 3, 8, 11, 0)); /* 01:30 EST */
    assert_ends(&q, ny, utc_ms(2026, 3, 8, 7, 30), utc_ms(2026, 3, 8, 11, 0)); /* 03:30 EDT */
    ck_assert(!quiet_active(&q, ny, utc_ms(2026, 3, 8, 11, 0), NULL));
    /* 22:00 EDT the next evening is 02:00 UTC. */
    ck_assert(!quiet_active(&q, ny, utc_ms(2026, 3, 9, 1, 59), NULL));
    assert_ends(&q, ny, utc_ms(2026, 3, 9, 2, 0), utc_ms(2026, 3, 9, 11, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_berlin_window_ends_an_hour_later_in_utc_after_fall_back)
{
    const tz_zone *be = zone("Europe/Berlin");
    quiet_hours q = window("22:00", "07:00");
    /* 23:00 CEST on 23 October: ends 07:00 CEST = 05:00 UTC. */
    assert_ends(&q, be, utc_ms(2026, 10, 23, 21, 0), utc_ms(2026, 10, 24, 5, 0));
    /* 23:00 CEST on 24 October: ends 07:00 CET on the 25th = 06:00 UTC. */
    assert_ends(&q, be, utc_ms(2026, 10, 24, 21, 0), utc_ms(2026, 10, 25, 6, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_window_ending_in_a_skipped_hour_ends_when_clocks_jump)
{
    const tz_zone *ny = zone("America/New_York");
    quiet_hours q = window("22:00", "02:30");
    /* 01:45 EST on 8 March 2026; 02:30 never happens, 03:00 EDT does. */
    assert_ends(&q, ny, utc_ms(2026, 3, 8, 6, 45), utc_ms(2026, 3, 8, 7, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_window_ending_in_a_repeated_hour_ends_at_the_next_occurrence)
{
    const tz_zone *be = zone("Europe/Berlin");
    quiet_hours q = window("01:00", "02:30");
    /* 01:30 CEST: the first 02:30 (CEST, 00:30 UTC) ends it. */
    assert_ends(&q, be, utc_ms(2026, 10, 24, 23, 30), utc_ms(2026, 10, 25, 0, 30));
    /* 02:45 CEST is past the end... */
    ck_assert(!quiet_active(&q, be, utc_ms(2026, 10, 25, 0, 45), NULL));
    /* ...but the clocks go back and 02:10 CET is inside again, until 02:30 CET. */
    assert_ends(&q, be, utc_ms(2026, 10, 25, 1, 10), utc_ms(2026, 10, 25, 1, 30));
    tz_cache_clear();
}
END_TEST

START_TEST(test_half_hour_zone_window)
{
    const tz_zone *in = zone("Asia/Kolkata");
    quiet_hours q = window("22:00", "07:00");
    /* 22:30 IST on 10 January is 17:00 UTC; 07:00 IST on the 11th is 01:30 UTC. */
    assert_ends(&q, in, utc_ms(2026, 1, 10, 17, 0), utc_ms(2026, 1, 11, 1, 30));
    ck_assert(!quiet_active(&q, in, utc_ms(2026, 1, 10, 16, 29), NULL));
    tz_cache_clear();
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_parse_accepts_hh_mm_and_postgres_time),
    TEST_ENTRY(test_parse_rejects_malformed_times),
    TEST_ENTRY(test_equal_start_and_end_means_no_window),
    TEST_ENTRY(test_wrapping_window_spans_midnight),
    TEST_ENTRY(test_non_wrapping_window_within_a_day),
    TEST_ENTRY(test_new_york_window_ends_an_hour_earlier_in_utc_after_spring_forward),
    TEST_ENTRY(test_berlin_window_ends_an_hour_later_in_utc_after_fall_back),
    TEST_ENTRY(test_window_ending_in_a_skipped_hour_ends_when_clocks_jump),
    TEST_ENTRY(test_window_ending_in_a_repeated_hour_ends_at_the_next_occurrence),
    TEST_ENTRY(test_half_hour_zone_window),
};

TEST_MAIN("quiet", cases)

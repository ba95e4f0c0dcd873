/* Unit tests of common/timeutil: RFC 3339 formatting and strict parsing, relative times. */
#include "testutil.h"

#include "timeutil.h"

#include <string.h>
#include <time.h>

#define T_2026 1795817455123LL /* 2026-11-27T22:10:55.123Z */

static int64_t parse_ok(const char *s)
{
    int64_t ms = 0;
    char err[256] = "";
    int rc = timeutil_parse_rfc3339(s, &ms, err, sizeof err);
    ck_assert_msg(rc == 0, "\"%s\" rejected: %s", s, err);
    return ms;
}

static void parse_bad(const char *s, const char *expect_in_err)
{
    int64_t ms = 42;
    char err[256] = "";
    ck_assert_msg(timeutil_parse_rfc3339(s, &ms, err, sizeof err) == -1, "\"%s\" accepted", s);
    ck_assert_int_eq(ms, 42);
    ck_assert_msg(strstr(err, expect_in_err) != NULL, "error for \"%s\" lacks \"%s\": %s", s,
                  expect_in_err, err);
}

START_TEST(test_format_writes_utc_with_milliseconds)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    ck_assert_str_eq(timeutil_format_rfc3339(T_2026, buf, sizeof buf), "2026-11-27T22:10:55.123Z");
    ck_assert_str_eq(timeutil_format_rfc3339(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
    ck_assert_str_eq(timeutil_format_rfc3339(1709251199999LL, buf, sizeof buf),
                     "2024-02-29T23:59:59.999Z");
}

START_TEST(test_format_handles_times_before_the_epoch)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    ck_assert_str_eq(timeutil_format_rfc3339(-1, buf, sizeof buf), "1969-12-31T23:59:59.999Z");
    ck_assert_str_eq(timeutil_format_rfc3339(-62135596800000LL, buf, sizeof buf),
                     "0001-01-01T00:00:00.000Z");
}

START_TEST(test_format_does_not_depend_on_tz)
{
    char buf[TIMEUTIL_RFC3339_SIZE];
    setenv("TZ", "America/New_York", 1);
    tzset();
    ck_assert_str_eq(timeutil_format_rfc3339(T_2026, buf, sizeof buf), "2026-11-27T22:10:55.123Z");
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55.123Z"), T_2026);
}

START_TEST(test_parse_roundtrips_formatted_times)
{
    static const int64_t samples[] = {0, 1, -1, T_2026, 253402300799999LL, 951782400000LL};
    char buf[TIMEUTIL_RFC3339_SIZE];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        ck_assert_int_eq(parse_ok(timeutil_format_rfc3339(samples[i], buf, sizeof buf)),
                         samples[i]);
}

START_TEST(test_parse_applies_offsets)
{
    ck_assert_int_eq(parse_ok("2026-11-27T23:10:55.123+01:00"), T_2026);
    ck_assert_int_eq(parse_ok("2026-11-27T16:40:55.123-05:30"), T_2026);
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55.123-00:00"), T_2026);
}

START_TEST(test_parse_accepts_optional_fraction_and_lowercase)
{
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55Z"), T_2026 - 123);
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55.1Z"), T_2026 - 23);
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55.12Z"), T_2026 - 3);
    ck_assert_int_eq(parse_ok("2026-11-27t22:10:55.123z"), T_2026);
}

START_TEST(test_parse_truncates_sub_millisecond_digits)
{
    ck_assert_int_eq(parse_ok("2026-11-27T22:10:55.123999999Z"), T_2026);
    parse_bad("2026-11-27T22:10:55.1239999999Z", "fraction");
}

START_TEST(test_parse_rejects_impossible_dates)
{
    parse_bad("2026-02-30T00:00:00Z", "no such day");
    parse_bad("2023-02-29T00:00:00Z", "no such day");
    parse_bad("2026-04-31T00:00:00Z", "no such day");
    parse_bad("2026-13-01T00:00:00Z", "no such day");
    parse_bad("2026-00-10T00:00:00Z", "no such day");
    parse_bad("2026-01-00T00:00:00Z", "no such day");
    ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
    ck_assert_int_eq(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    parse_bad("1900-02-29T00:00:00Z", "no such day");
}

START_TEST(test_parse_rejects_out_of_range_times_of_day)
{
    parse_bad("2026-11-27T24:00:00Z", "time of day");
    parse_bad("2026-11-27T23:60:00Z", "time of day");
    parse_bad("2026-11-27T23:59:60Z", "time of day");
    parse_bad("2026-11-27T23:59:59+24:00", "offset");
    parse_bad("2026-11-27T23:59:59+01:60", "offset");
}

START_TEST(test_parse_rejects_malformed_text)
{
    parse_bad("", "invalid time");
    parse_bad("2026-11-27", "invalid time");
    parse_bad("2026-11-27 22:10:55Z", "invalid time");
    parse_bad("2026-11-27T22:10:55", "missing offset");
    parse_bad("2026-11-27T22:10:55.Z", "fraction");
    parse_bad("2026-11-27T22:10:55Zjunk", "trailing");
    parse_bad("2026-1-27T22:10:55Z", "invalid time");
    parse_bad("2026-11-27T22:10:5xZ", "invalid time");
    parse_bad("2026-11-27T22:10:55+0100", "offset");
    parse_bad("+2026-11-27T22:10:55Z", "invalid time");
}

START_TEST(test_parse_error_quotes_the_input)
{
    int64_t ms;
    char err[256];
    ck_assert_int_eq(timeutil_parse_rfc3339("yesterday", &ms, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"yesterday\""));
    ck_assert_ptr_nonnull(strstr(err, "RFC 3339"));
}

START_TEST(test_days_from_civil_matches_known_dates)
{
    ck_assert_int_eq(timeutil_days_from_civil(1970, 1, 1), 0);
    ck_assert_int_eq(timeutil_days_from_civil(2000, 3, 1), 11017);
    ck_assert_int_eq(timeutil_days_from_civil(1969, 12, 31), -1);
}

START_TEST(test_civil_from_days_inverts_days_from_civil)
{
    for (int64_t d = -800000; d <= 3000000; d += 997) {
        int64_t y;
        int m, day;
        timeutil_civil_from_days(d, &y, &m, &day);
        ck_assert_int_ge(m, 1);
        ck_assert_int_le(m, 12);
        ck_assert_int_eq(timeutil_days_from_civil(y, m, day), d);
    }
    int64_t y;
    int m, day;
    timeutil_civil_from_days(19690, &y, &m, &day); /* 2023-11-29 */
    ck_assert_int_eq(y, 2023);
    ck_assert_int_eq(m, 11);
    ck_assert_int_eq(day, 29);
}

START_TEST(test_calendar_helpers_match_known_dates)
{
    ck_assert_int_eq(timeutil_weekday(0), 4);                                     /* Thursday */
    ck_assert_int_eq(timeutil_weekday(-1), 3);                                    /* Wednesday */
    ck_assert_int_eq(timeutil_weekday(timeutil_days_from_civil(2026, 12, 7)), 1); /* Monday */
    ck_assert_int_eq(timeutil_days_in_month(2024, 2), 29);
    ck_assert_int_eq(timeutil_days_in_month(1900, 2), 28);
    ck_assert_int_eq(timeutil_days_in_month(2000, 2), 29);
    ck_assert_int_eq(timeutil_days_in_month(2023, 12), 31);
    ck_assert(!timeutil_is_leap_year(2100));
    ck_assert_int_eq(timeutil_floor_div(-1, 86400), -1);
    ck_assert_int_eq(timeutil_floor_div(-86400, 86400), -1);
    ck_assert_int_eq(timeutil_floor_div(86399, 86400), 0);
}

static int64_t rel(const char *s, int64_t now)
{
    int64_t ms = 0;
    char err[256] = "";
    ck_assert_msg(timeutil_parse_relative(s, now, &ms, err, sizeof err) == 0, "%s: %s", s, err);
    return ms;
}

START_TEST(test_relative_times_count_back_from_now)
{
    int64_t now = T_2026;
    ck_assert_int_eq(rel("-30s", now), now - 30000);
    ck_assert_int_eq(rel("-15m", now), now - 15 * 60000);
    ck_assert_int_eq(rel("-2h", now), now - 2 * 3600000LL);
    ck_assert_int_eq(rel("-7d", now), now - 7 * 86400000LL);
    ck_assert_int_eq(rel("-1w", now), now - 7 * 86400000LL);
    ck_assert_int_eq(rel("+1h", now), now + 3600000LL);
    ck_assert_int_eq(rel("now", now), now);
    ck_assert_int_eq(rel("-0s", now), now);
}

START_TEST(test_relative_rejects_missing_sign_unit_or_number)
{
    static const char *const bad[] = {"15m",  "-15",  "-m", "-15x",         "-15mm",
                                      "--1m", "- 1m", "",   "-1234567890d", "-1.5h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 7;
        char err[256] = "";
        ck_assert_msg(timeutil_parse_relative(bad[i], 0, &ms, err, sizeof err) == -1,
                      "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(ms, 7);
        ck_assert_ptr_nonnull(strstr(err, "relative"));
    }
}

START_TEST(test_parse_time_accepts_either_form)
{
    int64_t ms;
    char err[256];
    ck_assert_int_eq(timeutil_parse_time("-15m", T_2026, &ms, err, sizeof err), 0);
    ck_assert_int_eq(ms, T_2026 - 900000);
    ck_assert_int_eq(timeutil_parse_time("2026-11-27T22:10:55.123Z", 0, &ms, err, sizeof err), 0);
    ck_assert_int_eq(ms, T_2026);
    ck_assert_int_eq(timeutil_parse_time("now", T_2026, &ms, err, sizeof err), 0);
    ck_assert_int_eq(ms, T_2026);
    ck_assert_int_eq(timeutil_parse_time("last tuesday", 0, &ms, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "\"last tuesday\""));
    ck_assert_int_eq(timeutil_parse_time(NULL, 0, &ms, err, sizeof err), -1);
}

START_TEST(test_clocks_are_plausible)
{
    int64_t wall = timeutil_now_ms();
    int64_t sys = (int64_t)time(NULL) * 1000;
    ck_assert_int_le(wall - sys, 2000);
    ck_assert_int_ge(wall - sys, -2000);
    int64_t a = timeutil_monotonic_ms();
    int64_t b = timeutil_monotonic_ms();
    ck_assert_int_ge(b, a);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_format_writes_utc_with_milliseconds),
    TEST_ENTRY(test_format_handles_times_before_the_epoch),
    TEST_ENTRY(test_format_does_not_depend_on_tz),
    TEST_ENTRY(test_parse_roundtrips_formatted_times),
    TEST_ENTRY(test_parse_applies_offsets),
    TEST_ENTRY(test_parse_accepts_optional_fraction_and_lowercase),
    TEST_ENTRY(test_parse_truncates_sub_millisecond_digits),
    TEST_ENTRY(test_parse_rejects_impossible_dates),
    TEST_ENTRY(test_parse_rejects_out_of_range_times_of_day),
    TEST_ENTRY(test_parse_rejects_malformed_text),
    TEST_ENTRY(test_parse_error_quotes_the_input),
    TEST_ENTRY(test_days_from_civil_matches_known_dates),
    TEST_ENTRY(test_civil_from_days_inverts_days_from_civil),
    TEST_ENTRY(test_calendar_helpers_match_known_dates),
    TEST_ENTRY(test_relative_times_count_back_from_now),
    TEST_ENTRY(test_relative_rejects_missing_sign_unit_or_number),
    TEST_ENTRY(test_parse_time_accepts_either_form),
    TEST_ENTRY(test_clocks_are_plausible),
};

TEST_MAIN("timeutil", cases)

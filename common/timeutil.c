/*
 * timeutil: clocks, RFC 3339 formatting and strict parsing, relative times.
 *
 * The civil-date conversions follow Howard Hinnant's days_from_civil /
 * civil_from_days, which are exact for the proleptic Gregorian calendar and
 * need neither timegm() (a non-standard extension) nor the TZ variable.
 */
#include "timeutil.h"
#include "error.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_DAY 86400000LL

/* What an error quotes of the input: enough to recognise it, never a page. */
#define QUOTE_MAX 64

#define RFC3339_EXPECTED                                                                           \
    "expected RFC 3339 like 2026-11-27T22:10:55Z or 2026-11-27T23:10:55.123+01:00"
#define TIME_EXPECTED                                                                              \
    "expected RFC 3339 (2026-11-27T22:10:55Z), \"now\" or relative (-30s, -15m, -2h, -7d)"

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    /* clock_gettime cannot fail for these clocks on Linux; keep a defined value anyway. */
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t timeutil_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t timeutil_monotonic_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t timeutil_monotonic_us(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t timeutil_days_from_civil(int64_t year, int month, int day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t yoe = year - era * 400;
    int64_t doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void timeutil_civil_from_days(int64_t days, int64_t *year, int *month, int *day)
{
    /* Shift the epoch to 0000-03-01 so leap days fall at the end of a year. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

int64_t timeutil_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int timeutil_weekday(int64_t days)
{
    return (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
}

char *timeutil_format_rfc3339(int64_t ms, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    int64_t days = timeutil_floor_div(ms, MS_PER_DAY);
    int64_t rem = ms - days * MS_PER_DAY; /* 0 .. MS_PER_DAY-1 */
    int64_t year;
    int month, day;
    timeutil_civil_from_days(days, &year, &month, &day);
    if (year >= 0 && year <= 9999 && outlen >= TIMEUTIL_RFC3339_SIZE) {
        /* The usual case by hand: services format several times per message. */
        static const char fmt[] = "0000-00-00T00:00:00.000Z";
        int v[] = {(int)year,
                   month,
                   day,
                   (int)(rem / 3600000),
                   (int)(rem / 60000 % 60),
                   (int)(rem / 1000 % 60),
                   (int)(rem % 1000)};
        static const int at[] = {0, 5, 8, 11, 14, 17, 20}, width[] = {4, 2, 2, 2, 2, 2, 3};
        memcpy(out, fmt, sizeof fmt);
        for (int i = 0; i < 7; i++)
            for (int k = width[i] - 1, x = v[i]; k >= 0; k--, x /= 10)
                out[at[i] + k] = (char)('0' + x % 10);
        return out;
    }
    snprintf(out, outlen, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", (long long)year, month, day,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    return out;
}

bool timeutil_is_leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int timeutil_days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && timeutil_is_leap_year(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits at s; -1 if any is not a digit. */
static int read_digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int timeutil_parse_rfc3339(const char *s, int64_t *out_ms, char *err, size_t errlen)
{
    if (s == NULL)
        return error_set(err, errlen, "missing time: " RFC3339_EXPECTED);
    /* Fixed-width fields first; every separator must be exactly where RFC 3339 puts it. */
    size_t n = strlen(s);
    if (n < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        return error_set(err, errlen, "invalid time \"%.*s\": " RFC3339_EXPECTED, QUOTE_MAX, s);
    int year = read_digits(s, 4), month = read_digits(s + 5, 2), day = read_digits(s + 8, 2);
    int hour = read_digits(s + 11, 2), min = read_digits(s + 14, 2), sec = read_digits(s + 17, 2);
    if (year < 0 || month < 0 || day < 0 || hour < 0 || min < 0 || sec < 0)
        return error_set(err, errlen, "invalid time \"%.*s\": " RFC3339_EXPECTED, QUOTE_MAX, s);

    const char *p = s + 19;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return error_set(
                err, errlen,
                "invalid fraction of a second in \"%.*s\": 1 to 9 digits; " RFC3339_EXPECTED,
                QUOTE_MAX, s);
        for (int i = digits; i < 3; i++)
            frac_ms *= 10;
    }

    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = read_digits(p + 1, 2);
        int om = oh >= 0 && p[3] == ':' ? read_digits(p + 4, 2) : -1;
        if (om < 0 || oh > 23 || om > 59)
            return error_set(err, errlen, "invalid offset in \"%.*s\": " RFC3339_EXPECTED,
                             QUOTE_MAX, s);
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return error_set(err, errlen, "missing offset (Z or +hh:mm) in \"%.*s\": " RFC3339_EXPECTED,
                         QUOTE_MAX, s);
    }
    if (*p != '\0')
        return error_set(err, errlen, "trailing characters in \"%.*s\": " RFC3339_EXPECTED,
                         QUOTE_MAX, s);

    if (month < 1 || month > 12 || day < 1 || day > timeutil_days_in_month(year, month))
        return error_set(err, errlen, "invalid date \"%.*s\": no such day", QUOTE_MAX, s);
    /* Second 60 (leap second) has no Unix-time representation: refuse it rather than guess. */
    if (hour > 23 || min > 59 || sec > 59)
        return error_set(err, errlen,
                         "invalid time of day in \"%.*s\": hour 00-23, minute 00-59, second 00-59",
                         QUOTE_MAX, s);

    int64_t days = timeutil_days_from_civil(year, month, day);
    int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - (int64_t)offset_min * 60;
    *out_ms = secs * 1000 + frac_ms;
    return 0;
}

int timeutil_parse_relative(const char *s, int64_t now_ms, int64_t *out_ms, char *err,
                            size_t errlen)
{
    if (s == NULL)
        return error_set(err, errlen, "missing time: " TIME_EXPECTED);
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return 0;
    }
    if (s[0] != '-' && s[0] != '+')
        return error_set(err, errlen, "invalid time \"%.*s\": " TIME_EXPECTED, QUOTE_MAX, s);
    const char *p = s + 1;
    int64_t n = 0;
    int digits = 0;
    /* Nine digits of weeks still fit int64 milliseconds with room for the addition. */
    while (*p >= '0' && *p <= '9' && digits <= 9) {
        n = n * 10 + (*p - '0');
        digits++;
        p++;
    }
    int64_t unit;
    switch (*p) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60 * 1000;
        break;
    case 'h':
        unit = 3600 * 1000;
        break;
    case 'd':
        unit = MS_PER_DAY;
        break;
    case 'w':
        unit = 7 * MS_PER_DAY;
        break;
    default:
        unit = 0;
        break;
    }
    if (digits == 0 || digits > 9 || unit == 0 || p[1] != '\0')
        return error_set(err, errlen, "invalid time \"%.*s\": " TIME_EXPECTED, QUOTE_MAX, s);
    int64_t delta = n * unit;
    int64_t result;
    if (__builtin_add_overflow(now_ms, s[0] == '-' ? -delta : delta, &result))
        return error_set(err, errlen, "time out of range \"%.*s\": " TIME_EXPECTED, QUOTE_MAX, s);
    *out_ms = result;
    return 0;
}

int timeutil_parse_time(const char *s, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen)
{
    if (s != NULL && (s[0] == '-' || s[0] == '+' || strcmp(s, "now") == 0))
        return timeutil_parse_relative(s, now_ms, out_ms, err, errlen);
    if (s != NULL && s[0] >= '0' && s[0] <= '9')
        return timeutil_parse_rfc3339(s, out_ms, err, errlen);
    if (s == NULL)
        return error_set(err, errlen, "missing time: " TIME_EXPECTED);
    return error_set(err, errlen, "invalid time \"%.*s\": " TIME_EXPECTED, QUOTE_MAX, s);
}

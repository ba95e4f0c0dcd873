/*
 * timeutil: clocks and the time formats Herald speaks.
 *
 * Herald keeps every instant as int64 milliseconds since the Unix epoch (UTC)
 * and writes it as RFC 3339 with milliseconds, "2026-11-27T22:10:55.123Z".
 * Nothing here reads the TZ environment: the calendar arithmetic is done
 * by hand (days-from-civil), so results are the same on every host.
 *
 * Parsing is strict: a date-time needs all of date, 'T', time and an offset
 * ('Z' or +hh:mm / -hh:mm); impossible dates (Feb 30, hour 24, second 60)
 * are rejected rather than normalised.  Fractions beyond milliseconds are
 * truncated.  Relative times ("-15m", "-2h", "-7d", "-30s", "now") are
 * what an operator types for heraldctl's TIME arguments.
 */
#ifndef HERALD_TIMEUTIL_H
#define HERALD_TIMEUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size of a buffer for timeutil_format_rfc3339 (24 characters + NUL for
 * years 0000..9999, with room to spare for years outside that range). */
#define TIMEUTIL_RFC3339_SIZE 32

/* Wall-clock time (CLOCK_REALTIME) in ms since the epoch. */
int64_t timeutil_now_ms(void);

/* CLOCK_MONOTONIC in ms: for timeouts and intervals, never for timestamps. */
int64_t timeutil_monotonic_ms(void);

/* CLOCK_MONOTONIC in microseconds: for latencies below a millisecond. */
int64_t timeutil_monotonic_us(void);

/* Writes ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC); returns out. */
char *timeutil_format_rfc3339(int64_t ms, char *out, size_t outlen);

/* Parses an RFC 3339 date-time into ms since the epoch. */
int timeutil_parse_rfc3339(const char *s, int64_t *out_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Parses "now" or a signed offset "<sign><digits><unit>" with unit s, m, h,
 * d or w (e.g. "-15m", "+1h") relative to now_ms.
 */
int timeutil_parse_relative(const char *s, int64_t now_ms, int64_t *out_ms, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* Either of the above: heraldctl's TIME argument. */
int timeutil_parse_time(const char *s, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int64_t timeutil_days_from_civil(int64_t year, int month, int day);

/* The inverse: the date of a day number (days since 1970-01-01). */
void timeutil_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

/* a / b rounded toward minus infinity (b > 0): the day of an instant before 1970. */
int64_t timeutil_floor_div(int64_t a, int64_t b);

/* The day of the week of a day number: 0 = Sunday. */
int timeutil_weekday(int64_t days);

bool timeutil_is_leap_year(int64_t year);

/* 28..31 days in month (1..12) of year. */
int timeutil_days_in_month(int64_t year, int month);

#endif

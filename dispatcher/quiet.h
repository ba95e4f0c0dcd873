/*
 * quiet: a user's quiet hours, evaluated on the user's own wall clock.
 *
 * Quiet hours are a daily window of local time, [start, end): "22:00" to
 * "07:00" wraps past midnight, "13:00" to "14:00" does not, and start == end
 * means no window at all.  Membership is decided on the wall clock of the
 * user's zone, so the window follows the user through DST changes: on the
 * night clocks spring forward, 22:00-07:00 lasts an hour less in real time,
 * and the instant it ends moves an hour earlier in UTC.  An end that falls in
 * a skipped hour ends the window when the clocks jump; an end that occurs
 * twice ends it at the first occurrence still ahead.
 *
 * Pure: the zone is passed in (see tz_get), nothing is read here.
 */
#ifndef HERALD_QUIET_H
#define HERALD_QUIET_H

#include "tz.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds after local midnight, 0..86399.  Zero-initialised means "none". */
typedef struct quiet_hours {
    int start_s;
    int end_s;
} quiet_hours;

/*
 * Parses a time of day "HH:MM" or "HH:MM:SS" (PostgreSQL's text for `time`)
 * into seconds after midnight.  "24:00" is accepted as midnight.
 */
int quiet_parse_time(const char *s, int *seconds, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Parses a window from its two ends; both NULL means none, one NULL is an
 * error.  On error err names the end at fault ("quiet_hours.end: ...").
 */
int quiet_parse(const char *start, const char *end, quiet_hours *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* True when the window is set (start != end). */
bool quiet_is_set(const quiet_hours *q);

/*
 * True when now_ms falls inside the window on the wall clock of zone (NULL
 * means UTC); then *end_ms (may be NULL) is the first instant, after now_ms,
 * at which the window is over.
 */
bool quiet_active(const quiet_hours *q, const tz_zone *zone, int64_t now_ms, int64_t *end_ms);

#endif

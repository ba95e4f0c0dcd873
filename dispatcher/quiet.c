/*
 * quiet: parsing quiet-hour windows and locating their end (see quiet.h).
 */
#include "quiet.h"

#include "error.h"
#include "timeutil.h"

#include <stdio.h>
#include <string.h>

static bool two_digits(const char *p, int *v)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    *v = (p[0] - '0') * 10 + (p[1] - '0');
    return true;
}

int quiet_parse_time(const char *s, int *seconds, char *err, size_t errlen)
{
    int h = 0, m = 0, sec = 0;
    size_t len = strlen(s);
    bool ok = (len == 5 || len == 8) && two_digits(s, &h) && s[2] == ':' && two_digits(s + 3, &m) &&
              (len == 5 || (s[5] == ':' && two_digits(s + 6, &sec)));

    if (!ok || h > 24 || m > 59 || sec > 59 || (h == 24 && (m != 0 || sec != 0))) {
        if (err != NULL && errlen > 0)
            error_set(err, errlen, "expected a time of day HH:MM, got \"%.16s\"", s);
        return -1;
    }
    *seconds = (h * 3600 + m * 60 + sec) % 86400;
    return 0;
}

int quiet_parse(const char *start, const char *end, quiet_hours *out, char *err, size_t errlen)
{
    char detail[96];
    quiet_hours q = {0, 0};

    if (start == NULL && end == NULL) {
        *out = q;
        return 0;
    }
    if (start == NULL || end == NULL) {
        if (err != NULL && errlen > 0)
            error_set(err, errlen, "quiet_hours: needs both start and end");
        return -1;
    }
    if (quiet_parse_time(start, &q.start_s, detail, sizeof(detail)) < 0) {
        if (err != NULL && errlen > 0)
            error_set(err, errlen, "quiet_hours.start: %s", detail);
        return -1;
    }
    if (quiet_parse_time(end, &q.end_s, detail, sizeof(detail)) < 0) {
        if (err != NULL && errlen > 0)
            error_set(err, errlen, "quiet_hours.end: %s", detail);
        return -1;
    }
    *out = q;
    return 0;
}

bool quiet_is_set(const quiet_hours *q)
{
    return q->start_s != q->end_s;
}

bool quiet_active(const quiet_hours *q, const tz_zone *zone, int64_t now_ms, int64_t *end_ms)
{
    tz_local now, day;
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : -((999 - now_ms) / 1000);

    if (!quiet_is_set(q))
        return false;
    if (zone == NULL)
        zone = tz_utc();
    if (tz_to_local(zone, now_s, &now) < 0)
        return false;
    int s = now.hour * 3600 + now.minute * 60 + now.second;
    bool wraps = q->start_s > q->end_s;
    if (wraps ? (s < q->start_s && s >= q->end_s) : (s < q->start_s || s >= q->end_s))
        return false;

    /* The window ends today, or tomorrow when it wrapped past midnight. */
    int64_t days = timeutil_days_from_civil(now.year, now.month, now.day);
    if (wraps && s >= q->start_s)
        days++;
    if (tz_to_local(tz_utc(), days * 86400, &day) < 0)
        return false;
    tz_local end = {.year = day.year,
                    .month = day.month,
                    .day = day.day,
                    .hour = q->end_s / 3600,
                    .minute = q->end_s / 60 % 60,
                    .second = q->end_s % 60};
    int64_t end_s;
    /* Inside a repeated hour the first occurrence of the end may be behind us. */
    for (end.fold = 0; end.fold <= 1; end.fold++)
        if (tz_from_local(zone, &end, &end_s) == 0 && end_s * 1000 > now_ms) {
            if (end_ms != NULL)
                *end_ms = end_s * 1000;
            return true;
        }
    return false;
}

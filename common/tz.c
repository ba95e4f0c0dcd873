/*
 * tz: TZif reader, POSIX TZ rules and the shared zone cache.
 *
 * A zone is the file's transition table (instant -> local time type) plus,
 * for instants at or after the last transition, the footer rule.  Local ->
 * UTC is done by walking the constant-offset segments that can contain the
 * answer (every offset is under 26 hours, so the answer lies within 26 hours
 * of the wall-clock time read as UTC), which handles gaps and repeats the
 * same way for table and rule without special cases.
 */
#include "tz.h"
#include "dict.h"
#include "error.h"

#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_ZONEINFO_DIR "/usr/share/zoneinfo"

/* No real offset reaches 26 hours; tzcode bounds them the same way. */
#define OFFSET_LIMIT (26 * 3600)
/* The largest TZif file in tzdata is a few kilobytes. */
#define TZIF_MAX_SIZE    (1 << 20)
#define TZIF_HEADER_SIZE 44
#define ZONE_PATH_MAX    4096
/* A file claiming more is corrupt; tzcode's own limit is 2000. */
#define TZIF_MAX_TIMES 100000
#define TZIF_MAX_TYPES 256

/* Names that failed to load are remembered up to this many. */
#define CACHE_MAX_NEGATIVE 256
#define CACHE_BUCKETS      128

/* POSIX's default rule when a zone names DST but gives no dates (as tzcode). */
#define DEFAULT_DST_RULE ",M3.2.0,M11.1.0"

typedef struct tz_type {
    int32_t utoff; /* seconds east */
    bool isdst;
    char abbr[TZ_ABBR_SIZE];
} tz_type;

typedef enum {
    RULE_JULIAN_NOLEAP, /* Jn: 1..365, February 29 never counted */
    RULE_JULIAN,        /* n: 0..365, February 29 counted */
    RULE_MWD,           /* Mm.w.d: weekday d of week w (5 = last) of month m */
} rule_kind;

typedef struct rule_date {
    rule_kind kind;
    int day;
    int month, week, wday;
    int32_t time; /* seconds after local midnight, in the time then in force */
} rule_date;

typedef struct tz_rule {
    tz_type std;
    tz_type dst;
    bool has_dst;
    rule_date start; /* std -> dst */
    rule_date end;   /* dst -> std */
} tz_rule;

struct tz_zone {
    char *name;
    size_t ntrans;
    int64_t *trans;     /* ascending */
    uint8_t *trans_idx; /* type in force from trans[i] */
    size_t ntypes;
    tz_type *types;
    bool has_rule;
    tz_rule rule;
};

/* The year of t (seconds since the epoch, as UTC). */
static int64_t year_of(int64_t t)
{
    int64_t y;
    int m, d;
    timeutil_civil_from_days(timeutil_floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* ---- POSIX TZ rules ---------------------------------------------------- */

/* The wall-clock instant (local seconds, read as UTC) of a rule date in year y. */
static int64_t rule_date_local(const rule_date *d, int64_t y)
{
    int64_t days = 0;
    switch (d->kind) {
    case RULE_JULIAN_NOLEAP:
        days = timeutil_days_from_civil(y, 1, 1) + d->day - 1 +
               (timeutil_is_leap_year(y) && d->day >= 60);
        break;
    case RULE_JULIAN:
        days = timeutil_days_from_civil(y, 1, 1) + d->day;
        break;
    case RULE_MWD: {
        int64_t first = timeutil_days_from_civil(y, d->month, 1);
        int mday = (d->wday - timeutil_weekday(first) + 7) % 7 + (d->week - 1) * 7;
        while (mday >= timeutil_days_in_month(y, d->month))
            mday -= 7;
        days = first + mday;
        break;
    }
    }
    return days * 86400 + d->time;
}

typedef struct rule_transition {
    int64_t at;
    bool to_dst;
} rule_transition;

/*
 * The rule's transitions in years y0..y0+nyears-1, sorted.  Ties keep
 * generation order, so in an all-year-DST rule ("J0/0,J365/25") the next
 * year's start sorts after this year's end and DST stays in force.
 */
static size_t rule_transitions(const tz_rule *r, int64_t y0, int nyears, rule_transition *out)
{
    size_t n = 0;
    for (int i = 0; i < nyears; i++) {
        out[n].at = rule_date_local(&r->start, y0 + i) - r->std.utoff;
        out[n++].to_dst = true;
        out[n].at = rule_date_local(&r->end, y0 + i) - r->dst.utoff;
        out[n++].to_dst = false;
    }
    for (size_t i = 1; i < n; i++) {
        rule_transition v = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1].at > v.at) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = v;
    }
    return n;
}

static const tz_type *rule_type_at(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return &r->std;
    rule_transition tr[6];
    size_t n = rule_transitions(r, year_of(t + r->std.utoff) - 1, 3, tr);
    /* Before the first one the opposite of its state was in force. */
    bool dst = !tr[0].to_dst;
    for (size_t i = 0; i < n && tr[i].at <= t; i++)
        dst = tr[i].to_dst;
    return dst ? &r->dst : &r->std;
}

static int64_t rule_next_transition(const tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return INT64_MAX;
    rule_transition tr[8];
    size_t n = rule_transitions(r, year_of(t + r->std.utoff) - 1, 4, tr);
    for (size_t i = 0; i < n; i++)
        if (tr[i].at > t)
            return tr[i].at;
    return INT64_MAX;
}

typedef struct rule_parser {
    const char *start;
    const char *p;
    char *err;
    size_t errlen;
} rule_parser;

static int rule_fail(rule_parser *rp, const char *what)
{
    error_set(rp->err, rp->errlen, "TZ rule \"%.64s\": %s at offset %zu", rp->start, what,
              (size_t)(rp->p - rp->start));
    return -1;
}

static int parse_abbr(rule_parser *rp, char *out)
{
    const char *s = rp->p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (s[n] != '>' || n == 0)
            return rule_fail(rp, "bad quoted zone abbreviation");
        rp->p = s + n + 1;
    } else {
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
            n++;
        if (n < 3)
            return rule_fail(rp, "zone abbreviation needs at least 3 letters");
        rp->p = s + n;
    }
    if (n >= TZ_ABBR_SIZE)
        n = TZ_ABBR_SIZE - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int parse_num(rule_parser *rp, int lo, int hi, int *out)
{
    const char *s = rp->p;
    if (*s < '0' || *s > '9')
        return rule_fail(rp, "expected a number");
    long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s - '0');
        if (v > hi)
            return rule_fail(rp, "number out of range");
        s++;
    }
    if (v < lo)
        return rule_fail(rp, "number out of range");
    rp->p = s;
    *out = (int)v;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh in 0..max_hours. */
static int parse_hms(rule_parser *rp, int max_hours, int32_t *out)
{
    int sign = 1, h = 0, m = 0, s = 0;
    if (*rp->p == '+' || *rp->p == '-')
        sign = *rp->p++ == '-' ? -1 : 1;
    if (parse_num(rp, 0, max_hours, &h) < 0)
        return -1;
    if (*rp->p == ':') {
        rp->p++;
        if (parse_num(rp, 0, 59, &m) < 0)
            return -1;
        if (*rp->p == ':') {
            rp->p++;
            if (parse_num(rp, 0, 59, &s) < 0)
                return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return 0;
}

static int parse_rule_date(rule_parser *rp, rule_date *d)
{
    memset(d, 0, sizeof(*d));
    if (*rp->p == 'J') {
        rp->p++;
        d->kind = RULE_JULIAN_NOLEAP;
        if (parse_num(rp, 1, 365, &d->day) < 0)
            return -1;
    } else if (*rp->p == 'M') {
        rp->p++;
        d->kind = RULE_MWD;
        if (parse_num(rp, 1, 12, &d->month) < 0)
            return -1;
        if (*rp->p++ != '.')
            return rule_fail(rp, "expected '.' in Mm.w.d");
        if (parse_num(rp, 1, 5, &d->week) < 0)
            return -1;
        if (*rp->p++ != '.')
            return rule_fail(rp, "expected '.' in Mm.w.d");
        if (parse_num(rp, 0, 6, &d->wday) < 0)
            return -1;
    } else {
        d->kind = RULE_JULIAN;
        if (parse_num(rp, 0, 365, &d->day) < 0)
            return -1;
    }
    d->time = 2 * 3600;
    if (*rp->p == '/') {
        rp->p++;
        /* RFC 8536 extends POSIX's 0..24 to -167..167 hours. */
        if (parse_hms(rp, 167, &d->time) < 0)
            return -1;
    }
    return 0;
}

static int parse_rule_dates(rule_parser *rp, tz_rule *r)
{
    if (*rp->p++ != ',')
        return rule_fail(rp, "expected ',' before the DST start");
    if (parse_rule_date(rp, &r->start) < 0)
        return -1;
    if (*rp->p++ != ',')
        return rule_fail(rp, "expected ',' before the DST end");
    return parse_rule_date(rp, &r->end);
}

/* POSIX offsets count west ("EST5"); Herald's count east. */
static int parse_rule(const char *s, tz_rule *r, char *err, size_t errlen)
{
    rule_parser rp = {s, s, err, errlen};
    int32_t west = 0;
    memset(r, 0, sizeof(*r));
    if (parse_abbr(&rp, r->std.abbr) < 0 || parse_hms(&rp, 24, &west) < 0)
        return -1;
    r->std.utoff = -west;
    if (*rp.p == '\0')
        return 0;
    r->has_dst = true;
    r->dst.isdst = true;
    if (parse_abbr(&rp, r->dst.abbr) < 0)
        return -1;
    r->dst.utoff = r->std.utoff + 3600;
    if (*rp.p != ',' && *rp.p != '\0') {
        if (parse_hms(&rp, 24, &west) < 0)
            return -1;
        r->dst.utoff = -west;
    }
    if (*rp.p == '\0') {
        rule_parser def = {DEFAULT_DST_RULE, DEFAULT_DST_RULE, err, errlen};
        return parse_rule_dates(&def, r);
    }
    if (parse_rule_dates(&rp, r) < 0)
        return -1;
    if (*rp.p != '\0')
        return rule_fail(&rp, "unexpected character");
    return 0;
}

/* ---- zones ------------------------------------------------------------- */

static const tz_type utc_type = {0, false, "UTC"};
static const tz_zone utc_zone = {
    .name = (char *)"UTC", .ntrans = 0, .ntypes = 1, .types = (tz_type *)&utc_type};

const tz_zone *tz_utc(void)
{
    return &utc_zone;
}

const char *tz_name(const tz_zone *zone)
{
    return zone->name;
}

void tz_free(tz_zone *zone)
{
    if (zone == NULL || zone == &utc_zone)
        return;
    free(zone->name);
    free(zone->trans);
    free(zone->trans_idx);
    free(zone->types);
    free(zone);
}

static tz_zone *zone_new(const char *name, char *err, size_t errlen)
{
    tz_zone *z = calloc(1, sizeof(*z));
    if (z == NULL || (z->name = strdup(name)) == NULL) {
        free(z);
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    return z;
}

tz_zone *tz_from_rule(const char *rule, char *err, size_t errlen)
{
    tz_zone *z = zone_new(rule, err, errlen);
    if (z == NULL)
        return NULL;
    if (parse_rule(rule, &z->rule, err, errlen) < 0) {
        tz_free(z);
        return NULL;
    }
    z->has_rule = true;
    return z;
}

static const tz_type *zone_type_at(const tz_zone *z, int64_t t)
{
    if (z->ntrans == 0)
        return z->has_rule ? rule_type_at(&z->rule, t) : &z->types[0];
    if (t < z->trans[0])
        return &z->types[0];
    if (t >= z->trans[z->ntrans - 1] && z->has_rule)
        return rule_type_at(&z->rule, t);
    /* The last transition at or before t. */
    size_t lo = 0, hi = z->ntrans;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return &z->types[z->trans_idx[lo]];
}

/* The first instant after t at which the zone may change type. */
static int64_t zone_next_transition(const tz_zone *z, int64_t t)
{
    if (z->ntrans > 0 && t < z->trans[z->ntrans - 1]) {
        size_t lo = 0, hi = z->ntrans - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        return z->trans[lo];
    }
    return z->has_rule ? rule_next_transition(&z->rule, t) : INT64_MAX;
}

static int64_t clamp_time(int64_t t)
{
    return t < TZ_MIN_TIME ? TZ_MIN_TIME : t >= TZ_MAX_TIME ? TZ_MAX_TIME - 1 : t;
}

int32_t tz_utc_offset(const tz_zone *zone, int64_t utc_s)
{
    return zone_type_at(zone, clamp_time(utc_s))->utoff;
}

static int resolve_local(const tz_zone *z, int64_t naive, int fold, int64_t *out)
{
    int64_t lo = naive - OFFSET_LIMIT, hi = naive + OFFSET_LIMIT;
    int64_t first = 0, last = 0, gap = 0;
    bool found = false, in_gap = false;
    int64_t seg = lo;
    /* Zones change a handful of times in 52 hours; the bound guards bad data. */
    for (int i = 0; i < 64; i++) {
        int64_t next = zone_next_transition(z, seg);
        int64_t cand = naive - zone_type_at(z, seg)->utoff;
        if (cand >= seg && cand < next) {
            if (!found)
                first = cand;
            last = cand;
            found = true;
        } else if (cand < seg && !found && !in_gap) {
            /* The clocks jumped over naive when this segment began. */
            gap = seg;
            in_gap = true;
        }
        if (next > hi)
            break;
        seg = next;
    }
    if (found) {
        *out = fold ? last : first;
        return 0;
    }
    if (in_gap) {
        *out = gap;
        return 0;
    }
    return -1;
}

int tz_from_local(const tz_zone *zone, const tz_local *l, int64_t *utc_s)
{
    if (l->year < -9999 || l->year > 9999 || l->month < 1 || l->month > 12 || l->day < 1 ||
        l->day > timeutil_days_in_month(l->year, l->month) || l->hour < 0 || l->hour > 23 ||
        l->minute < 0 || l->minute > 59 || l->second < 0 || l->second > 59)
        return -1;
    int64_t naive = timeutil_days_from_civil(l->year, l->month, l->day) * 86400 + l->hour * 3600 +
                    l->minute * 60 + l->second;
    return resolve_local(zone, naive, l->fold, utc_s);
}

int tz_to_local(const tz_zone *zone, int64_t utc_s, tz_local *out)
{
    if (utc_s < TZ_MIN_TIME || utc_s >= TZ_MAX_TIME)
        return -1;
    const tz_type *type = zone_type_at(zone, utc_s);
    int64_t local = utc_s + type->utoff;
    int64_t days = timeutil_floor_div(local, 86400);
    int64_t secs = local - days * 86400;
    int64_t year;
    memset(out, 0, sizeof(*out));
    timeutil_civil_from_days(days, &year, &out->month, &out->day);
    out->year = (int)year;
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->wday = timeutil_weekday(days);
    out->yday = (int)(days - timeutil_days_from_civil(year, 1, 1));
    out->utc_offset = type->utoff;
    out->is_dst = type->isdst;
    memcpy(out->abbr, type->abbr, sizeof(out->abbr));
    /* The later of two identical wall-clock times gets fold 1. */
    int64_t earliest;
    if (resolve_local(zone, local, 0, &earliest) == 0 && earliest != utc_s)
        out->fold = 1;
    return 0;
}

/* ---- TZif -------------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct tzif_header {
    int version; /* 1, 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} tzif_header;

static int read_header(const unsigned char *p, size_t len, tzif_header *h, char *err, size_t errlen)
{
    if (len < TZIF_HEADER_SIZE || memcmp(p, "TZif", 4) != 0) {
        error_set(err, errlen, "not a TZif file");
        return -1;
    }
    h->version = p[4] == 0 ? 1 : p[4] - '0';
    if (h->version < 1 || h->version > 9) {
        error_set(err, errlen, "unknown TZif version byte 0x%02x", p[4]);
        return -1;
    }
    h->isutcnt = be32(p + 20);
    h->isstdcnt = be32(p + 24);
    h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32);
    h->typecnt = be32(p + 36);
    h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > TZIF_MAX_TYPES || h->charcnt == 0 ||
        h->timecnt > TZIF_MAX_TIMES || (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
        (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) || h->charcnt > 65536) {
        error_set(err, errlen, "TZif header counts are inconsistent");
        return -1;
    }
    if (h->leapcnt != 0) {
        error_set(err, errlen, "zones with leap seconds are not supported");
        return -1;
    }
    return 0;
}

static size_t block_size(const tzif_header *h, size_t timesize)
{
    return (size_t)h->timecnt * timesize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (timesize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills the table of z from one data block (timesize 4 for v1, 8 for v2+). */
static int read_block(tz_zone *z, const tzif_header *h, const unsigned char *p, size_t timesize,
                      char *err, size_t errlen)
{
    z->ntrans = h->timecnt;
    z->ntypes = h->typecnt;
    z->trans = calloc(h->timecnt ? h->timecnt : 1, sizeof(*z->trans));
    z->trans_idx = calloc(h->timecnt ? h->timecnt : 1, 1);
    z->types = calloc(h->typecnt, sizeof(*z->types));
    if (z->trans == NULL || z->trans_idx == NULL || z->types == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    const unsigned char *times = p;
    const unsigned char *idx = times + (size_t)h->timecnt * timesize;
    const unsigned char *types = idx + h->timecnt;
    const char *chars = (const char *)(types + (size_t)h->typecnt * 6);
    for (size_t i = 0; i < h->timecnt; i++) {
        z->trans[i] = timesize == 8 ? be64(times + i * 8) : (int32_t)be32(times + i * 4);
        if (i > 0 && z->trans[i] <= z->trans[i - 1]) {
            error_set(err, errlen, "TZif transition times are not ascending");
            return -1;
        }
        if (idx[i] >= h->typecnt) {
            error_set(err, errlen, "TZif transition names a missing type");
            return -1;
        }
        z->trans_idx[i] = idx[i];
    }
    for (size_t i = 0; i < h->typecnt; i++) {
        const unsigned char *t = types + i * 6;
        int32_t utoff = (int32_t)be32(t);
        if (utoff <= -OFFSET_LIMIT || utoff >= OFFSET_LIMIT || t[4] > 1 || t[5] >= h->charcnt) {
            error_set(err, errlen, "TZif local time type %zu is invalid", i);
            return -1;
        }
        z->types[i].utoff = utoff;
        z->types[i].isdst = t[4] == 1;
        size_t n = strnlen(chars + t[5], h->charcnt - t[5]);
        if (n >= TZ_ABBR_SIZE)
            n = TZ_ABBR_SIZE - 1;
        memcpy(z->types[i].abbr, chars + t[5], n);
        z->types[i].abbr[n] = '\0';
    }
    return 0;
}

tz_zone *tz_parse(const char *name, const unsigned char *data, size_t len, char *err, size_t errlen)
{
    int rc = -1;
    tz_zone *z = NULL;
    tzif_header h;
    char footer[256];

    if (read_header(data, len, &h, err, errlen) < 0)
        goto out;
    size_t size = block_size(&h, 4);
    if (len - TZIF_HEADER_SIZE < size) {
        error_set(err, errlen, "TZif file is truncated");
        goto out;
    }
    const unsigned char *p = data + TZIF_HEADER_SIZE;
    size_t timesize = 4;
    if (h.version >= 2) {
        /* The v1 block only serves old readers; the 64-bit block follows. */
        data = p + size;
        len -= TZIF_HEADER_SIZE + size;
        if (read_header(data, len, &h, err, errlen) < 0)
            goto out;
        timesize = 8;
        size = block_size(&h, 8);
        if (len - TZIF_HEADER_SIZE < size) {
            error_set(err, errlen, "TZif file is truncated");
            goto out;
        }
        p = data + TZIF_HEADER_SIZE;
    }
    if ((z = zone_new(name, err, errlen)) == NULL)
        goto out;
    if (read_block(z, &h, p, timesize, err, errlen) < 0)
        goto out;
    if (h.version >= 2) {
        const char *f = (const char *)p + size;
        size_t flen = len - TZIF_HEADER_SIZE - size;
        const char *nl = flen > 1 && f[0] == '\n' ? memchr(f + 1, '\n', flen - 1) : NULL;
        if (nl == NULL || (size_t)(nl - f - 1) >= sizeof(footer)) {
            error_set(err, errlen, "TZif footer is missing or too long");
            goto out;
        }
        memcpy(footer, f + 1, (size_t)(nl - f - 1));
        footer[nl - f - 1] = '\0';
        if (footer[0] != '\0') {
            if (parse_rule(footer, &z->rule, err, errlen) < 0)
                goto out;
            z->has_rule = true;
        }
    }
    rc = 0;
out:
    if (rc < 0) {
        tz_free(z);
        z = NULL;
    }
    return z;
}

/* ---- files ------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '+' || *c == '-' || *c == '/'))
            return false;
    return true;
}

static int read_file(const char *path, unsigned char **out, size_t *outlen)
{
    int rc = -1;
    unsigned char *buf = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (fstat(fd, &st) < 0)
        goto out;
    if (!S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_SIZE) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EFBIG;
        goto out;
    }
    size_t size = (size_t)st.st_size, got = 0;
    if ((buf = malloc(size ? size : 1)) == NULL)
        goto out;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            errno = r == 0 ? EIO : errno;
            goto out;
        }
        got += (size_t)r;
    }
    *out = buf;
    *outlen = size;
    buf = NULL;
    rc = 0;
out:
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    free(buf);
    return rc;
}

/* The built-in UTC as a zone of its own, for hosts without tzdata. */
static tz_zone *utc_copy(const char *name, char *err, size_t errlen)
{
    tz_zone *z = zone_new(name, err, errlen);
    if (z == NULL)
        return NULL;
    if ((z->types = malloc(sizeof(*z->types))) == NULL) {
        error_set(err, errlen, "out of memory");
        tz_free(z);
        return NULL;
    }
    z->ntypes = 1;
    z->types[0] = utc_type;
    return z;
}

tz_zone *tz_load(const char *name, char *err, size_t errlen)
{
    tz_zone *z = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    char path[ZONE_PATH_MAX];

    if (!name_ok(name)) {
        error_set(err, errlen, "invalid time zone name \"%.*s\"", TZ_NAME_MAX, name);
        goto out;
    }
    const char *dir = getenv("HERALD_ZONEINFO_DIR");
    if (dir == NULL || *dir == '\0')
        dir = DEFAULT_ZONEINFO_DIR;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
        error_set(err, errlen, "zoneinfo path for \"%s\" is too long", name);
        goto out;
    }
    if (read_file(path, &data, &len) < 0) {
        if (errno == ENOENT && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
            z = utc_copy(name, err, errlen);
            goto out;
        }
        if (errno == ENOENT || errno == ENOTDIR || errno == EISDIR)
            error_set(err, errlen, "unknown time zone \"%s\"", name);
        else
            error_set(err, errlen, "cannot read time zone \"%s\" (%s): %s", name, path,
                      strerror(errno));
        goto out;
    }
    char detail[160];
    if ((z = tz_parse(name, data, len, detail, sizeof(detail))) == NULL)
        error_set(err, errlen, "time zone \"%s\": %s", name, detail);
out:
    free(data);
    return z;
}

/* ---- cache ------------------------------------------------------------- */

typedef struct cache_entry {
    dict_node node;
    tz_zone *zone; /* NULL: the name failed to load, error says why */
    char *error;
    char name[];
} cache_entry;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static dict cache; /* zeroed until the first insert */
static size_t cache_negative;

static cache_entry *cache_find(const char *name)
{
    dict_node *n = dict_find(&cache, name);
    return n != NULL ? dict_record(n, cache_entry, node) : NULL;
}

/* True when name is cached, as a zone or as a failure (then err says why). */
static bool cache_lookup(const char *name, const tz_zone **zone, char *err, size_t errlen)
{
    pthread_mutex_lock(&cache_lock);
    cache_entry *e = cache_find(name);
    if (e != NULL) {
        *zone = e->zone;
        if (e->zone == NULL)
            error_set(err, errlen, "%s", e->error);
    }
    pthread_mutex_unlock(&cache_lock);
    return e != NULL;
}

/*
 * Records what loading name gave: zone (ownership taken; NULL for a failure
 * described by error).  Returns the cached zone, which is another thread's
 * copy when it got there first, or NULL.
 */
static const tz_zone *cache_insert(const char *name, tz_zone *zone, const char *error)
{
    const tz_zone *result = NULL;
    size_t n = strlen(name);
    cache_entry *e = NULL;

    pthread_mutex_lock(&cache_lock);
    if ((e = cache_find(name)) != NULL) {
        result = e->zone;
        goto out;
    }
    /* Invalid names fail without I/O; other failures are bounded. */
    if (zone == NULL && (cache_negative >= CACHE_MAX_NEGATIVE || !name_ok(name)))
        goto out;
    if (cache.nbuckets == 0 && dict_init(&cache, CACHE_BUCKETS) < 0)
        goto out;
    if ((e = calloc(1, sizeof(*e) + n + 1)) == NULL)
        goto out;
    if (zone == NULL && (e->error = strdup(error)) == NULL) {
        free(e);
        goto out;
    }
    memcpy(e->name, name, n + 1);
    e->zone = zone;
    zone = NULL;
    dict_add(&cache, &e->node, e->name);
    cache_negative += e->zone == NULL;
    result = e->zone;
out:
    pthread_mutex_unlock(&cache_lock);
    tz_free(zone);
    return result;
}

const tz_zone *tz_get(const char *name, char *err, size_t errlen)
{
    const tz_zone *zone = NULL;
    char detail[256];

    if (cache_lookup(name, &zone, err, errlen))
        return zone;
    /* Load outside the lock: a slow disk must not stall other threads. */
    tz_zone *loaded = tz_load(name, detail, sizeof(detail));
    bool ok = loaded != NULL;
    zone = cache_insert(name, loaded, detail);
    if (zone == NULL)
        error_set(err, errlen, "%s", ok ? "out of memory" : detail);
    return zone;
}

bool tz_valid_name(const char *name)
{
    return tz_get(name, NULL, 0) != NULL;
}

void tz_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    dict_iter it;
    dict_iter_init(&it, &cache);
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL;) {
        cache_entry *e = dict_record(n, cache_entry, node);
        tz_free(e->zone);
        free(e->error);
        free(e);
    }
    dict_fini(&cache);
    cache_negative = 0;
    pthread_mutex_unlock(&cache_lock);
}

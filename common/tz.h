/*
 * tz: UTC instants <-> wall-clock time in named IANA time zones.
 *
 * Herald needs local time for one reason: a user's quiet hours are written in
 * the user's own zone.  The C library can only convert through the
 * process-wide TZ variable (setenv + tzset), which is neither thread-safe nor
 * per-user, so this module reads the compiled tz database itself: TZif files
 * (RFC 8536, version 1 and the 64-bit data of version 2+), and the POSIX TZ
 * rule in the file's footer ("CET-1CEST,M3.5.0,M10.5.0/3") that governs every
 * instant after the last listed transition.  "Slim" files, which list no
 * transitions past 2007 and rely on the footer, work as well as "fat" ones.
 *
 * Files come from $HERALD_ZONEINFO_DIR, else /usr/share/zoneinfo (Debian's
 * tzdata package).  "UTC" and "Etc/UTC" work even without any files, so a
 * bare container still has a zone to fall back on.  Zones with leap seconds
 * ("right/...") are refused: their clocks are not POSIX time.
 *
 * A zone is immutable once loaded.  tz_load() gives the caller its own copy;
 * tz_get() returns a copy shared through a process-wide cache that lives until
 * tz_cache_clear() and is safe to use from any thread.
 *
 * Instants are int64 seconds since the Unix epoch, limited to years
 * -9999..9999 (TZ_MIN_TIME..TZ_MAX_TIME); the calendar is proleptic Gregorian.
 */
#ifndef HERALD_TZ_H
#define HERALD_TZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tz_zone tz_zone;

/* Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define TZ_NAME_MAX 128
/* Room for an abbreviation such as "CEST" or "+0530", NUL included. */
#define TZ_ABBR_SIZE 16

/* 10000-01-01T00:00:00Z (exclusive) and -9999-01-01T00:00:00Z. */
#define TZ_MAX_TIME INT64_C(253402300800)
#define TZ_MIN_TIME INT64_C(-377705203200)

/* Broken-down local time. */
typedef struct tz_local {
    int year;   /* e.g. 2026 */
    int month;  /* 1..12 */
    int day;    /* 1..31 */
    int hour;   /* 0..23 */
    int minute; /* 0..59 */
    int second; /* 0..59 */
    /*
     * Which occurrence of a wall-clock time repeated by a backward shift:
     * 0 the earlier, 1 the later (as Python's datetime.fold).  tz_to_local
     * sets it; tz_from_local reads it.  Zero-initialised means "the earlier".
     */
    int fold;
    /* Set by tz_to_local only. */
    int wday;           /* 0 = Sunday */
    int yday;           /* 0..365 */
    int32_t utc_offset; /* seconds east of UTC */
    bool is_dst;
    char abbr[TZ_ABBR_SIZE]; /* "CET", "EDT", "+0530" */
} tz_local;

/*
 * Loads the zone called name ("Europe/Berlin").  The name must be 1..128
 * characters of [A-Za-z0-9_+-/], must not start or end with '/' nor contain
 * "//", and so can never leave the zoneinfo directory.  Returns a zone the
 * caller owns (free with tz_free), or NULL with err set.
 */
tz_zone *tz_load(const char *name, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Parses the bytes of a TZif file; name is only recorded.  Returns a zone the
 * caller owns, or NULL with err set.  Does no I/O.
 */
tz_zone *tz_parse(const char *name, const unsigned char *data, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Builds a zone from a POSIX TZ rule alone, e.g. "EST5EDT,M3.2.0,M11.1.0",
 * "<+0530>-5:30" or "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0": the forms of a
 * TZif footer (RFC 8536 section 3.3), with rule dates Mm.w.d, Jn or n.
 * Returns a zone the caller owns, or NULL with err set.
 */
tz_zone *tz_from_rule(const char *rule, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Frees a zone from tz_load/tz_parse/tz_from_rule; NULL is ignored. */
void tz_free(tz_zone *zone);

/* The built-in UTC zone: never NULL, never freed. */
const tz_zone *tz_utc(void);

/*
 * The cached, shared zone called name, loading it on first use.  The zone
 * stays valid until tz_cache_clear(); do not free it.  Names that fail to load
 * are remembered too (up to a bound), so a bad user setting costs one file
 * lookup, not one per event.  Returns NULL with err set when the zone does not
 * load.  Thread-safe.
 */
const tz_zone *tz_get(const char *name, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* True when name is a zone tz_get can load (what the gateway accepts). */
bool tz_valid_name(const char *name);

/* Drops the cache; no zone from tz_get may be in use.  For shutdown and tests. */
void tz_cache_clear(void);

/* The name the zone was loaded under ("UTC" for tz_utc, the rule for tz_from_rule). */
const char *tz_name(const tz_zone *zone);

/* Seconds east of UTC in effect at utc_s (clamped to TZ_MIN_TIME..TZ_MAX_TIME). */
int32_t tz_utc_offset(const tz_zone *zone, int64_t utc_s);

/* The wall-clock time at utc_s.  Returns -1 when utc_s is out of range. */
int tz_to_local(const tz_zone *zone, int64_t utc_s, tz_local *out)
    __attribute__((warn_unused_result));

/*
 * The instant at which the zone's clocks show local (year..second, fold; the
 * other fields are ignored).  A wall-clock time that occurs twice (clocks set
 * back) gives the earlier instant, or the later when local->fold is 1.  A
 * wall-clock time that never occurs (clocks set forward over it) gives the
 * first instant after the gap: 02:30 on a night that jumps from 02:00 to 03:00
 * gives the instant of 03:00.  Returns -1 for impossible fields (Feb 30,
 * 24:00) or out-of-range years.
 */
int tz_from_local(const tz_zone *zone, const tz_local *local, int64_t *utc_s)
    __attribute__((warn_unused_result));

#endif

/*
 * tz: offsets and wall-clock conversions against the system's tz database,
 * POSIX rules on their own, and the refusal of names and files that are not
 * zones.
 */
#include "testutil.h"
#include "timeutil.h"
#include "tz.h"

#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    return timeutil_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static const tz_zone *zone(const char *name)
{
    char err[256] = "";
    const tz_zone *z = tz_get(name, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s: %s (is tzdata installed?)", name, err);
    return z;
}

static tz_local wall(int y, int mo, int d, int h, int mi, int fold)
{
    tz_local l = {.year = y, .month = mo, .day = d, .hour = h, .minute = mi, .fold = fold};
    return l;
}

static int64_t from_local(const tz_zone *z, tz_local l)
{
    int64_t t = 0;
    ck_assert_int_eq(tz_from_local(z, &l, &t), 0);
    return t;
}

START_TEST(test_berlin_offsets_switch_at_2026_dst_changes)
{
    const tz_zone *z = zone("Europe/Berlin");
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 3, 29, 0, 59, 59)), 3600);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 3, 29, 1, 0, 0)), 7200);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 10, 25, 0, 59, 59)), 7200);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 10, 25, 1, 0, 0)), 3600);

    tz_local l;
    ck_assert_int_eq(tz_to_local(z, utc(2026, 3, 29, 1, 0, 0), &l), 0);
    ck_assert_int_eq(l.hour, 3);
    ck_assert(l.is_dst);
    ck_assert_str_eq(l.abbr, "CEST");
    tz_cache_clear();
}
END_TEST

START_TEST(test_new_york_offsets_switch_at_2026_dst_changes)
{
    const tz_zone *z = zone("America/New_York");
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 3, 8, 6, 59, 59)), -5 * 3600);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 3, 8, 7, 0, 0)), -4 * 3600);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 11, 1, 5, 59, 59)), -4 * 3600);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 11, 1, 6, 0, 0)), -5 * 3600);

    tz_local l;
    ck_assert_int_eq(tz_to_local(z, utc(2026, 11, 1, 6, 0, 0), &l), 0);
    ck_assert_int_eq(l.year, 2026);
    ck_assert_int_eq(l.month, 11);
    ck_assert_int_eq(l.day, 1);
    ck_assert_int_eq(l.hour, 1);
    ck_assert_int_eq(l.wday, 0); /* a Sunday */
    ck_assert_int_eq(l.yday, 304);
    ck_assert_str_eq(l.abbr, "EST");
    tz_cache_clear();
}
END_TEST

START_TEST(test_nonexistent_spring_time_maps_to_first_instant_after_gap)
{
    /* 02:30 does not exist on either night: the clocks read 03:00 next. */
    ck_assert_int_eq(from_local(zone("America/New_York"), wall(2026, 3, 8, 2, 30, 0)),
                     utc(2026, 3, 8, 7, 0, 0));
    ck_assert_int_eq(from_local(zone("Europe/Berlin"), wall(2026, 3, 29, 2, 30, 0)),
                     utc(2026, 3, 29, 1, 0, 0));
    /* The minutes either side of the gap are ordinary. */
    ck_assert_int_eq(from_local(zone("America/New_York"), wall(2026, 3, 8, 1, 59, 0)),
                     utc(2026, 3, 8, 6, 59, 0));
    ck_assert_int_eq(from_local(zone("America/New_York"), wall(2026, 3, 8, 3, 0, 0)),
                     utc(2026, 3, 8, 7, 0, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_ambiguous_autumn_time_prefers_earlier_instant)
{
    const tz_zone *ny = zone("America/New_York");
    ck_assert_int_eq(from_local(ny, wall(2026, 11, 1, 1, 30, 0)), utc(2026, 11, 1, 5, 30, 0));
    ck_assert_int_eq(from_local(ny, wall(2026, 11, 1, 1, 30, 1)), utc(2026, 11, 1, 6, 30, 0));

    const tz_zone *be = zone("Europe/Berlin");
    ck_assert_int_eq(from_local(be, wall(2026, 10, 25, 2, 30, 0)), utc(2026, 10, 25, 0, 30, 0));
    ck_assert_int_eq(from_local(be, wall(2026, 10, 25, 2, 30, 1)), utc(2026, 10, 25, 1, 30, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_to_local_marks_the_repeated_hour_and_round_trips)
{
    const tz_zone *ny = zone("America/New_York");
    for (int64_t t = utc(2026, 11, 1, 4, 0, 0); t < utc(2026, 11, 1, 8, 0, 0); t += 600) {
        tz_local l;
        int64_t back = 0;
        ck_assert_int_eq(tz_to_local(ny, t, &l), 0);
        ck_assert_int_eq(l.fold, t >= utc(2026, 11, 1, 6, 0, 0) && t < utc(2026, 11, 1, 7, 0, 0));
        ck_assert_int_eq(tz_from_local(ny, &l, &back), 0);
        ck_assert_int_eq(back, t);
    }
    tz_cache_clear();
}
END_TEST

START_TEST(test_kolkata_is_half_hour_ahead_all_year)
{
    const tz_zone *z = zone("Asia/Kolkata");
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 1, 15, 12, 0, 0)), 19800);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 7, 15, 12, 0, 0)), 19800);
    tz_local l;
    ck_assert_int_eq(tz_to_local(z, utc(2026, 6, 30, 20, 0, 0), &l), 0);
    ck_assert_int_eq(l.day, 1);
    ck_assert_int_eq(l.month, 7);
    ck_assert_int_eq(l.hour, 1);
    ck_assert_int_eq(l.minute, 30);
    ck_assert(!l.is_dst);
    ck_assert_int_eq(from_local(z, wall(2026, 7, 1, 1, 30, 0)), utc(2026, 6, 30, 20, 0, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_utc_has_zero_offset_with_or_without_files)
{
    ck_assert_int_eq(tz_utc_offset(tz_utc(), utc(2026, 6, 1, 0, 0, 0)), 0);
    ck_assert_str_eq(tz_name(tz_utc()), "UTC");
    ck_assert_int_eq(tz_utc_offset(zone("UTC"), utc(2026, 6, 1, 0, 0, 0)), 0);
    ck_assert_int_eq(tz_utc_offset(zone("Etc/UTC"), utc(1990, 6, 1, 0, 0, 0)), 0);

    /* A container without tzdata still has UTC. */
    char dir[] = "/tmp/herald-tz-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    setenv("HERALD_ZONEINFO_DIR", dir, 1);
    char err[256];
    tz_zone *z = tz_load("UTC", err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(z, 0), 0);
    tz_free(z);
    ck_assert_ptr_null(tz_load("Europe/Berlin", err, sizeof(err)));
    ck_assert_str_eq(err, "unknown time zone \"Europe/Berlin\"");
    rmdir(dir);
    unsetenv("HERALD_ZONEINFO_DIR");
    tz_cache_clear();
}
END_TEST

START_TEST(test_lord_howe_shifts_by_thirty_minutes)
{
    char err[256];
    if (!tz_valid_name("Australia/Lord_Howe")) {
        fprintf(stderr, "Australia/Lord_Howe not installed: skipped\n");
        return;
    }
    const tz_zone *z = tz_get("Australia/Lord_Howe", err, sizeof(err));
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 4, 4, 14, 59, 59)), 11 * 3600);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 4, 4, 15, 0, 0)), 10 * 3600 + 1800);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 10, 3, 15, 29, 59)), 10 * 3600 + 1800);
    ck_assert_int_eq(tz_utc_offset(z, utc(2026, 10, 3, 15, 30, 0)), 11 * 3600);
    /* 02:15 is skipped on 4 October 2026 (02:00 jumps to 02:30). */
    ck_assert_int_eq(from_local(z, wall(2026, 10, 4, 2, 15, 0)), utc(2026, 10, 3, 15, 30, 0));
    /* 01:45 happens twice on 5 April 2026. */
    ck_assert_int_eq(from_local(z, wall(2026, 4, 5, 1, 45, 0)), utc(2026, 4, 4, 14, 45, 0));
    ck_assert_int_eq(from_local(z, wall(2026, 4, 5, 1, 45, 1)), utc(2026, 4, 4, 15, 15, 0));
    tz_cache_clear();
}
END_TEST

START_TEST(test_far_future_instants_follow_the_footer_rule)
{
    const tz_zone *be = zone("Europe/Berlin");
    ck_assert_int_eq(tz_utc_offset(be, utc(2100, 3, 28, 0, 59, 59)), 3600);
    ck_assert_int_eq(tz_utc_offset(be, utc(2100, 3, 28, 1, 0, 0)), 7200);
    ck_assert_int_eq(tz_utc_offset(be, utc(2100, 10, 31, 0, 59, 59)), 7200);
    ck_assert_int_eq(tz_utc_offset(be, utc(2100, 10, 31, 1, 0, 0)), 3600);

    const tz_zone *ny = zone("America/New_York");
    ck_assert_int_eq(tz_utc_offset(ny, utc(2100, 3, 14, 6, 59, 59)), -5 * 3600);
    ck_assert_int_eq(tz_utc_offset(ny, utc(2100, 3, 14, 7, 0, 0)), -4 * 3600);
    ck_assert_int_eq(tz_utc_offset(ny, utc(2100, 11, 7, 6, 0, 0)), -5 * 3600);
    ck_assert_int_eq(from_local(ny, wall(2100, 3, 14, 2, 30, 0)), utc(2100, 3, 14, 7, 0, 0));

    tz_local l;
    ck_assert_int_eq(tz_to_local(ny, utc(2100, 7, 4, 16, 0, 0), &l), 0);
    ck_assert_str_eq(l.abbr, "EDT");
    ck_assert_int_eq(l.hour, 12);
    ck_assert_int_eq(tz_to_local(ny, TZ_MAX_TIME, &l), -1);
    tz_cache_clear();
}
END_TEST

START_TEST(test_posix_rules_in_every_footer_form)
{
    char err[256];
    tz_zone *cet = tz_from_rule("CET-1CEST,M3.5.0,M10.5.0/3", err, sizeof(err));
    ck_assert_msg(cet != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(cet, utc(2031, 3, 30, 0, 59, 59)), 3600);
    ck_assert_int_eq(tz_utc_offset(cet, utc(2031, 3, 30, 1, 0, 0)), 7200);
    ck_assert_int_eq(tz_utc_offset(cet, utc(2031, 10, 26, 1, 0, 0)), 3600);
    tz_free(cet);

    tz_zone *est = tz_from_rule("EST5EDT,M3.2.0,M11.1.0", err, sizeof(err));
    ck_assert_msg(est != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(est, utc(2026, 3, 8, 7, 0, 0)), -4 * 3600);
    ck_assert_int_eq(tz_utc_offset(est, utc(2026, 11, 1, 6, 0, 0)), -5 * 3600);
    tz_free(est);

    tz_zone *ist = tz_from_rule("<+0530>-5:30", err, sizeof(err));
    ck_assert_msg(ist != NULL, "%s", err);
    tz_local l;
    ck_assert_int_eq(tz_to_local(ist, utc(2026, 1, 1, 0, 0, 0), &l), 0);
    ck_assert_int_eq(l.utc_offset, 19800);
    ck_assert_str_eq(l.abbr, "+0530");
    tz_free(ist);

    /* Southern hemisphere, explicit DST offset of +30 minutes. */
    tz_zone *lh = tz_from_rule("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", err, sizeof(err));
    ck_assert_msg(lh != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(lh, utc(2026, 1, 1, 0, 0, 0)), 11 * 3600);
    ck_assert_int_eq(tz_utc_offset(lh, utc(2026, 7, 1, 0, 0, 0)), 10 * 3600 + 1800);
    tz_free(lh);

    /* Julian days: J60 is 1 March even in leap years; 59 (zero-based) is 29 February. */
    tz_zone *jul = tz_from_rule("AAA0BBB,J60/0,J300/0", err, sizeof(err));
    ck_assert_msg(jul != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(jul, utc(2028, 2, 29, 23, 59, 59)), 0);
    ck_assert_int_eq(tz_utc_offset(jul, utc(2028, 3, 1, 0, 0, 0)), 3600);
    tz_free(jul);
    tz_zone *zb = tz_from_rule("AAA0BBB,59/0,300/0", err, sizeof(err));
    ck_assert_msg(zb != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(zb, utc(2028, 2, 29, 0, 0, 0)), 3600);
    ck_assert_int_eq(tz_utc_offset(zb, utc(2027, 2, 28, 23, 59, 59)), 0);
    tz_free(zb);

    /* DST all year (RFC 8536's extension), and times past 24h. */
    tz_zone *all = tz_from_rule("EST5EDT4,0/0,J365/25", err, sizeof(err));
    ck_assert_msg(all != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(all, utc(2026, 1, 1, 5, 0, 0)), -4 * 3600);
    ck_assert_int_eq(tz_utc_offset(all, utc(2026, 12, 31, 23, 0, 0)), -4 * 3600);
    tz_free(all);

    const char *bad[] = {"",
                         "EST",
                         "ES5",
                         "EST5EDT,M13.1.0,M11.1.0",
                         "EST5EDT,M3.2.0",
                         "<>5",
                         "EST25",
                         "EST5EDT,M3.2.0,M11.1.0x",
                         "EST5EDT,J0,J1",
                         "EST5EDT,M3.6.0,M11.1.0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(tz_from_rule(bad[i], err, sizeof(err)) == NULL, "accepted \"%s\"", bad[i]);
        ck_assert_msg(err[0] != '\0', "no error for \"%s\"", bad[i]);
    }
}
END_TEST

START_TEST(test_invalid_names_are_rejected_without_reading_outside_zoneinfo)
{
    const char *bad[] = {"../../etc/passwd", "Not/AZone",      "",         "/etc/passwd",
                         "Europe/../../etc", "Europe//Berlin", "Europe/",  "Europe",
                         "Europe/Berlin ",   "Europe\\Berlin", "right/UTC"};
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(!tz_valid_name(bad[i]), "accepted \"%s\"", bad[i]);
        ck_assert_ptr_null(tz_get(bad[i], err, sizeof(err)));
        ck_assert_msg(err[0] != '\0', "no error for \"%s\"", bad[i]);
    }
    ck_assert_ptr_null(tz_get("../../etc/passwd", err, sizeof(err)));
    ck_assert_str_eq(err, "invalid time zone name \"../../etc/passwd\"");
    ck_assert(tz_valid_name("Europe/Berlin"));
    ck_assert(tz_valid_name("America/Argentina/Buenos_Aires"));
    ck_assert(tz_valid_name("Etc/GMT+5"));
    tz_cache_clear();
}
END_TEST

/* Reads a zone's file from wherever tz_load would. */
static unsigned char *slurp_zone(const char *name, size_t *len)
{
    const char *dir = getenv("HERALD_ZONEINFO_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir != NULL && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    unsigned char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

START_TEST(test_corrupt_tzif_data_is_rejected)
{
    size_t len;
    char err[256];
    unsigned char *data = slurp_zone("Europe/Berlin", &len);

    tz_zone *z = tz_parse("Europe/Berlin", data, len, err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    tz_free(z);

    /* Every truncation fails cleanly (the sanitizer build checks the reads). */
    for (size_t cut = 0; cut < len; cut += 7) {
        err[0] = '\0';
        ck_assert_ptr_null(tz_parse("x", data, cut, err, sizeof(err)));
        ck_assert(err[0] != '\0');
    }
    data[0] = 'X';
    ck_assert_ptr_null(tz_parse("x", data, len, err, sizeof(err)));
    ck_assert_str_eq(err, "not a TZif file");
    free(data);
}
END_TEST

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/*
 * A version-1 file (32-bit data, no footer): "AAA" +1h until 2000-01-01,
 * then "BBB" +2h for ever.
 */
static size_t make_v1_file(unsigned char *buf)
{
    memset(buf, 0, 128);
    memcpy(buf, "TZif", 4);
    put32(buf + 32, 1); /* timecnt */
    put32(buf + 36, 2); /* typecnt */
    put32(buf + 40, 8); /* charcnt */
    unsigned char *p = buf + 44;
    put32(p, 946684800);
    p += 4;
    *p++ = 1;
    put32(p, 3600);
    p[4] = 0, p[5] = 0;
    p += 6;
    put32(p, 7200);
    p[4] = 0, p[5] = 4;
    p += 6;
    memcpy(p, "AAA\0BBB\0", 8);
    p += 8;
    return (size_t)(p - buf);
}

START_TEST(test_version_one_files_and_the_zoneinfo_dir_override)
{
    unsigned char buf[128];
    char err[256];
    size_t len = make_v1_file(buf);

    char dir[] = "/tmp/herald-tz-XXXXXX", sub[64], path[96];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/Test", dir);
    snprintf(path, sizeof(path), "%s/Zone", sub);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(buf, 1, len, f), len);
    fclose(f);

    setenv("HERALD_ZONEINFO_DIR", dir, 1);
    tz_zone *z = tz_load("Test/Zone", err, sizeof(err));
    ck_assert_msg(z != NULL, "%s", err);
    ck_assert_int_eq(tz_utc_offset(z, 946684799), 3600);
    ck_assert_int_eq(tz_utc_offset(z, 946684800), 7200);
    ck_assert_int_eq(tz_utc_offset(z, utc(2200, 1, 1, 0, 0, 0)), 7200);
    tz_local l;
    ck_assert_int_eq(tz_to_local(z, 0, &l), 0);
    ck_assert_str_eq(l.abbr, "AAA");
    tz_free(z);

    /* A directory is not a zone. */
    ck_assert_ptr_null(tz_load("Test", err, sizeof(err)));
    ck_assert_str_eq(err, "unknown time zone \"Test\"");

    /* An index past the types is corrupt. */
    buf[44 + 4] = 2;
    ck_assert_ptr_null(tz_parse("x", buf, len, err, sizeof(err)));

    unlink(path);
    rmdir(sub);
    rmdir(dir);
    unsetenv("HERALD_ZONEINFO_DIR");
}
END_TEST

START_TEST(test_from_local_rejects_impossible_fields)
{
    const tz_zone *z = tz_utc();
    int64_t t;
    tz_local feb30 = wall(2026, 2, 30, 12, 0, 0);
    tz_local h24 = wall(2026, 2, 1, 24, 0, 0);
    tz_local m13 = wall(2026, 13, 1, 0, 0, 0);
    tz_local leap = wall(2028, 2, 29, 0, 0, 0);
    ck_assert_int_eq(tz_from_local(z, &feb30, &t), -1);
    ck_assert_int_eq(tz_from_local(z, &h24, &t), -1);
    ck_assert_int_eq(tz_from_local(z, &m13, &t), -1);
    ck_assert_int_eq(tz_from_local(z, &leap, &t), 0);
    ck_assert_int_eq(t, utc(2028, 2, 29, 0, 0, 0));
}
END_TEST

static void *lookup_many(void *arg)
{
    static const char *names[] = {"Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC",
                                  "Not/AZone"};
    const tz_zone **first = arg;
    for (int i = 0; i < 200; i++) {
        size_t k = (size_t)i % 5;
        const tz_zone *z = tz_get(names[k], NULL, 0);
        if (k == 4 ? z != NULL : z == NULL)
            return (void *)"wrong answer";
        if (k == 0 && *first != NULL && z != *first)
            return (void *)"two copies of one zone";
    }
    return NULL;
}

START_TEST(test_cache_shares_one_zone_across_threads)
{
    const tz_zone *berlin = zone("Europe/Berlin");
    ck_assert_ptr_eq(zone("Europe/Berlin"), berlin);
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, lookup_many, &berlin), 0);
    for (int i = 0; i < 8; i++) {
        void *res;
        ck_assert_int_eq(pthread_join(th[i], &res), 0);
        ck_assert_msg(res == NULL, "%s", (const char *)res);
    }
    tz_cache_clear();
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_berlin_offsets_switch_at_2026_dst_changes),
    TEST_ENTRY(test_new_york_offsets_switch_at_2026_dst_changes),
    TEST_ENTRY(test_nonexistent_spring_time_maps_to_first_instant_after_gap),
    TEST_ENTRY(test_ambiguous_autumn_time_prefers_earlier_instant),
    TEST_ENTRY(test_to_local_marks_the_repeated_hour_and_round_trips),
    TEST_ENTRY(test_kolkata_is_half_hour_ahead_all_year),
    TEST_ENTRY(test_utc_has_zero_offset_with_or_without_files),
    TEST_ENTRY(test_lord_howe_shifts_by_thirty_minutes),
    TEST_ENTRY(test_far_future_instants_follow_the_footer_rule),
    TEST_ENTRY(test_posix_rules_in_every_footer_form),
    TEST_ENTRY(test_invalid_names_are_rejected_without_reading_outside_zoneinfo),
    TEST_ENTRY(test_corrupt_tzif_data_is_rejected),
    TEST_ENTRY(test_version_one_files_and_the_zoneinfo_dir_override),
    TEST_ENTRY(test_from_local_rejects_impossible_fields),
    TEST_ENTRY(test_cache_shares_one_zone_across_threads),
};

TEST_MAIN("tz", cases)

/*
 * sms: segment counts at the carriers' exact boundaries, and truncation that
 * fits its marker without splitting a character.
 */
#include "sms.h"
#include "testutil.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* n copies of s. */
static char *repeat(const char *s, size_t n)
{
    size_t len = strlen(s);
    char *out = malloc(len * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * len, s, len);
    out[len * n] = '\0';
    return out;
}

static int segments(const char *s, sms_encoding *enc)
{
    return sms_segments(s, enc);
}

#define ASSERT_SEGMENTS(unit, count, want_parts, want_enc)                                         \
    do {                                                                                           \
        char *body_ = repeat((unit), (count));                                                     \
        sms_encoding enc_;                                                                         \
        ck_assert_msg(segments(body_, &enc_) == (want_parts), "%zu x \"%s\": %d parts",            \
                      (size_t)(count), (unit), segments(body_, NULL));                             \
        ck_assert_int_eq(enc_, (want_enc));                                                        \
        free(body_);                                                                               \
    } while (0)

START_TEST(test_gsm7_segment_counts_at_the_boundaries)
{
    ck_assert_int_eq(segments("", NULL), 0);
    ASSERT_SEGMENTS("a", 160, 1, SMS_GSM7);
    ASSERT_SEGMENTS("a", 161, 2, SMS_GSM7);
    ASSERT_SEGMENTS("a", 306, 2, SMS_GSM7);
    ASSERT_SEGMENTS("a", 307, 3, SMS_GSM7);
    /* Extension characters take two septets. */
    ASSERT_SEGMENTS("\xe2\x82\xac", 80, 1, SMS_GSM7); /* € */
    ASSERT_SEGMENTS("\xe2\x82\xac", 81, 2, SMS_GSM7);
    ASSERT_SEGMENTS("^", 80, 1, SMS_GSM7);
    ASSERT_SEGMENTS("^", 81, 2, SMS_GSM7);
    /* The basic set beyond ASCII: accented letters and Greek capitals. */
    ASSERT_SEGMENTS("\xc3\xa9\xce\x94\xc2\xa3", 53, 1, SMS_GSM7); /* éΔ£ */
    ASSERT_SEGMENTS("\xc3\xa9\xce\x94\xc2\xa3", 54, 2, SMS_GSM7);

    /* 159 'a' and one '{' is 161 septets. */
    char *s = repeat("a", 161);
    s[159] = '{';
    s[160] = '\0';
    ck_assert_int_eq(segments(s, NULL), 2);
    free(s);

    /* An escape pair is never split: 152 + "{" + 152 needs 3 parts, not 2. */
    s = repeat("a", 305);
    s[152] = '{';
    sms_encoding enc;
    ck_assert_int_eq(segments(s, &enc), 3);
    ck_assert_int_eq(enc, SMS_GSM7);
    free(s);
}
END_TEST

START_TEST(test_ucs2_segment_counts_at_the_boundaries)
{
    ASSERT_SEGMENTS("\xd0\xb6", 70, 1, SMS_UCS2); /* ж */
    ASSERT_SEGMENTS("\xd0\xb6", 71, 2, SMS_UCS2);
    ASSERT_SEGMENTS("\xd0\xb6", 134, 2, SMS_UCS2);
    ASSERT_SEGMENTS("\xd0\xb6", 135, 3, SMS_UCS2);
    /* An emoji is a surrogate pair: two code units. */
    ASSERT_SEGMENTS("\xf0\x9f\x98\x80", 35, 1, SMS_UCS2);
    ASSERT_SEGMENTS("\xf0\x9f\x98\x80", 36, 2, SMS_UCS2);
    /* One character outside GSM-7 turns the whole message into UCS-2. */
    char *s = repeat("a", 71);
    s[70] = '`';
    ck_assert_int_eq(segments(s, NULL), 2);
    s[70] = '\0';
    ck_assert_int_eq(segments(s, NULL), 1);
    free(s);
    /* A pair is never split: 66 units then an emoji start the second part. */
    s = repeat("\xd0\xb6", 66 + 67);
    char *t = malloc(strlen(s) + 5);
    memcpy(t, s, 66 * 2);
    memcpy(t + 66 * 2, "\xf0\x9f\x98\x80", 4);
    strcpy(t + 66 * 2 + 4, s + 66 * 2 + 2); /* 66 ж + 😀 + 66 ж = 134 units */
    ck_assert_int_eq(segments(t, NULL), 3);
    free(t);
    free(s);
}
END_TEST

static char *truncate_ok(const char *body, int max, const char *marker, bool *truncated)
{
    char *out = NULL;
    char err[256];
    ck_assert_msg(sms_truncate(body, max, marker, &out, truncated, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert(validate_utf8(out, strlen(out)));
    ck_assert_int_le(segments(out, NULL), max);
    return out;
}

static const char *ellipsis = "\xe2\x80\xa6"; /* … */

START_TEST(test_truncation_fits_the_marker_and_never_splits_characters)
{
    bool cut;
    char *s = truncate_ok("short", 1, ellipsis, &cut);
    ck_assert_str_eq(s, "short");
    ck_assert(!cut);
    free(s);

    /* GSM-7 body, GSM-7 marker: 157 letters and "...". */
    char *body = repeat("a", 400);
    s = truncate_ok(body, 1, "...", &cut);
    ck_assert(cut);
    ck_assert_uint_eq(strlen(s), 160);
    ck_assert_str_eq(s + 157, "...");
    free(s);
    /* "…" is not GSM-7: the message becomes UCS-2, 69 letters and the marker. */
    s = truncate_ok(body, 1, ellipsis, &cut);
    ck_assert_uint_eq(strlen(s), 69 + 3);
    ck_assert_str_eq(s + 69, ellipsis);
    free(s);
    /* Two parts of UCS-2 hold 134 units. */
    s = truncate_ok(body, 2, ellipsis, NULL);
    ck_assert_uint_eq(strlen(s), 133 + 3);
    free(s);
    free(body);

    /* Emoji: 34 pairs (68 units) and the marker fit; the 35th would not. */
    body = repeat("\xf0\x9f\x98\x80", 50);
    s = truncate_ok(body, 1, ellipsis, NULL);
    ck_assert_uint_eq(strlen(s), 34 * 4 + 3);
    free(s);
    free(body);

    /* Two-byte characters: cut on their boundaries, at 1, 2 and 3 parts. */
    body = repeat("\xd0\xb6", 200);
    s = truncate_ok(body, 1, ellipsis, &cut);
    ck_assert(cut);
    ck_assert_uint_eq(strlen(s), 69 * 2 + 3);
    free(s);
    s = truncate_ok(body, 2, ellipsis, &cut);
    ck_assert(cut);
    ck_assert_uint_eq(strlen(s), 133 * 2 + 3);
    free(s);
    s = truncate_ok(body, 3, ellipsis, &cut); /* 200 units fit in 3 x 67 */
    ck_assert(!cut);
    ck_assert_str_eq(s, body);
    free(s);
    free(body);

    /* A combining accent stays with its letter: "e" + U+0301 is never cut apart. */
    body = repeat("e\xcc\x81", 60); /* 120 units */
    s = truncate_ok(body, 1, ellipsis, NULL);
    /* 69 units fit before the marker; 69 would end between e and its accent. */
    ck_assert_uint_eq(strlen(s), 34 * 3 + 3);
    free(s);
    free(body);

    /* Trailing spaces are not left before the marker. */
    body = repeat("a", 257);
    body[156] = ' ';
    memset(body + 157, 'b', 100);
    s = truncate_ok(body, 1, "...", NULL);
    ck_assert_uint_eq(strlen(s), 156 + 3);
    ck_assert_str_eq(s + 155, "a...");
    free(s);
    free(body);

    /* No marker at all. */
    body = repeat("b", 200);
    s = truncate_ok(body, 1, NULL, NULL);
    ck_assert_uint_eq(strlen(s), 160);
    free(s);
    free(body);
}
END_TEST

START_TEST(test_truncation_refuses_impossible_limits)
{
    char *out = (char *)1;
    char err[256];
    char *body = repeat("a", 200);
    ck_assert_int_eq(sms_truncate(body, 0, ellipsis, &out, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "max_segments must be at least 1");
    char *marker = repeat("\xd0\xb6", 71);
    ck_assert_int_eq(sms_truncate(body, 1, marker, &out, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "the truncation marker alone does not fit in max_segments (1)");
    free(marker);
    free(body);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_gsm7_segment_counts_at_the_boundaries),
    TEST_ENTRY(test_ucs2_segment_counts_at_the_boundaries),
    TEST_ENTRY(test_truncation_fits_the_marker_and_never_splits_characters),
    TEST_ENTRY(test_truncation_refuses_impossible_limits),
};

TEST_MAIN("sms", cases)

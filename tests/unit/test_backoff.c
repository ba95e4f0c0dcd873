/*
 * backoff: the exponential ceiling doubles and caps, jitter stays inside
 * its range and is reproducible from a seed, huge attempt numbers do not
 * overflow, and a peer's minimum (Retry-After) wins.
 */
#include <limits.h>
#include <stdint.h>

#include "backoff.h"
#include "testutil.h"

START_TEST(test_backoff_ceiling_doubles_then_caps)
{
    static const int64_t want[] = {100, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000};
    for (unsigned a = 0; a < sizeof(want) / sizeof(want[0]); a++)
        ck_assert_int_eq(backoff_ceiling_ms(100, 10000, a), want[a]);
}
END_TEST

START_TEST(test_backoff_huge_attempt_does_not_overflow)
{
    ck_assert_int_eq(backoff_ceiling_ms(1000, 60000, 63), 60000);
    ck_assert_int_eq(backoff_ceiling_ms(1000, 60000, 64), 60000);
    ck_assert_int_eq(backoff_ceiling_ms(1000, 60000, UINT_MAX), 60000);
    ck_assert_int_eq(backoff_ceiling_ms(INT64_MAX / 2, INT64_MAX, 3), INT64_MAX);
    ck_assert_int_eq(backoff_ceiling_ms(1, INT64_MAX, 63), INT64_C(1) << 62);
    ck_assert_int_eq(backoff_ceiling_ms(1, INT64_MAX, 64), INT64_MAX);

    uint64_t rng = 42;
    for (int i = 0; i < 1000; i++) {
        int64_t d = backoff_delay_ms(1000, INT64_MAX, UINT_MAX, &rng);
        ck_assert_int_ge(d, 0);
    }
    int64_t d = backoff_decorrelated_ms(1000, INT64_MAX, INT64_MAX, &rng);
    ck_assert_int_ge(d, 1000);
}
END_TEST

START_TEST(test_backoff_full_jitter_stays_within_the_ceiling)
{
    uint64_t rng = 7;
    for (unsigned attempt = 1; attempt <= 12; attempt++) {
        int64_t ceiling = backoff_ceiling_ms(1000, 60000, attempt);
        int64_t lo = INT64_MAX, hi = 0, sum = 0;
        const int n = 4000;
        for (int i = 0; i < n; i++) {
            int64_t d = backoff_delay_ms(1000, 60000, attempt, &rng);
            ck_assert_int_ge(d, 0);
            ck_assert_int_le(d, ceiling);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += d;
        }
        /* Spread over the whole range, centred on its middle. */
        ck_assert_int_lt(lo, ceiling / 20);
        ck_assert_int_gt(hi, ceiling - ceiling / 20);
        int64_t mean = sum / n;
        ck_assert_int_gt(mean, ceiling * 45 / 100);
        ck_assert_int_lt(mean, ceiling * 55 / 100);
    }
}
END_TEST

START_TEST(test_backoff_same_seed_gives_same_delays)
{
    uint64_t a = 12345, b = 12345, c = 54321;
    int differ = 0;
    for (unsigned i = 1; i < 50; i++) {
        int64_t da = backoff_delay_ms(500, 30000, i, &a);
        ck_assert_int_eq(da, backoff_delay_ms(500, 30000, i, &b));
        differ += da != backoff_delay_ms(500, 30000, i, &c);
    }
    ck_assert_int_gt(differ, 40);
}
END_TEST

START_TEST(test_backoff_rand_is_splitmix64)
{
    /* Reference outputs of splitmix64 seeded with 0. */
    uint64_t s = 0;
    ck_assert_uint_eq(backoff_rand(&s), 0xe220a8397b1dcdafULL);
    ck_assert_uint_eq(backoff_rand(&s), 0x6e789e6aa1b965f4ULL);
    ck_assert_uint_eq(backoff_rand(&s), 0x06c45d188009454fULL);
}
END_TEST

START_TEST(test_backoff_uniform_covers_a_small_range_evenly)
{
    uint64_t rng = 99;
    int counts[4] = {0};
    for (int i = 0; i < 40000; i++) {
        int64_t v = backoff_uniform(&rng, 10, 13);
        ck_assert_int_ge(v, 10);
        ck_assert_int_le(v, 13);
        counts[v - 10]++;
    }
    for (int i = 0; i < 4; i++) {
        ck_assert_int_gt(counts[i], 9500);
        ck_assert_int_lt(counts[i], 10500);
    }
    ck_assert_int_eq(backoff_uniform(&rng, 5, 5), 5);
    ck_assert_int_eq(backoff_uniform(&rng, 5, 2), 5);
    int64_t full = backoff_uniform(&rng, 0, INT64_MAX);
    ck_assert_int_ge(full, 0);
}
END_TEST

START_TEST(test_backoff_decorrelated_stays_between_base_and_cap)
{
    uint64_t rng = 3;
    int64_t prev = 0, maxseen = 0;
    for (int i = 0; i < 200; i++) {
        int64_t d = backoff_decorrelated_ms(100, 5000, prev, &rng);
        ck_assert_int_ge(d, 100);
        ck_assert_int_le(d, 5000);
        /* Never more than three times the previous delay. */
        ck_assert_int_le(d, 3 * (prev < 100 ? 100 : prev));
        maxseen = d > maxseen ? d : maxseen;
        prev = d;
    }
    ck_assert_int_eq(maxseen, 5000);
}
END_TEST

START_TEST(test_backoff_retry_after_minimum_wins)
{
    ck_assert_int_eq(backoff_at_least(50, 3000), 3000);
    ck_assert_int_eq(backoff_at_least(5000, 3000), 5000);
    ck_assert_int_eq(backoff_at_least(500, 0), 500);
    ck_assert_int_eq(backoff_at_least(-5, -10), 0);
    /* Above the cap too: retrying before the peer allows is pointless. */
    uint64_t rng = 1;
    int64_t d = backoff_delay_ms(100, 1000, 5, &rng);
    ck_assert_int_eq(backoff_at_least(d, 120000), 120000);
}
END_TEST

START_TEST(test_backoff_zero_or_negative_inputs_give_zero)
{
    uint64_t rng = 1;
    ck_assert_int_eq(backoff_delay_ms(0, 1000, 3, &rng), 0);
    ck_assert_int_eq(backoff_delay_ms(-100, 1000, 3, &rng), 0);
    ck_assert_int_eq(backoff_delay_ms(100, 0, 3, &rng), 0);
    ck_assert_int_eq(backoff_ceiling_ms(100, -1, 1), 0);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_backoff_ceiling_doubles_then_caps),
    TEST_ENTRY(test_backoff_huge_attempt_does_not_overflow),
    TEST_ENTRY(test_backoff_full_jitter_stays_within_the_ceiling),
    TEST_ENTRY(test_backoff_same_seed_gives_same_delays),
    TEST_ENTRY(test_backoff_rand_is_splitmix64),
    TEST_ENTRY(test_backoff_uniform_covers_a_small_range_evenly),
    TEST_ENTRY(test_backoff_decorrelated_stays_between_base_and_cap),
    TEST_ENTRY(test_backoff_retry_after_minimum_wins),
    TEST_ENTRY(test_backoff_zero_or_negative_inputs_give_zero),
};

TEST_MAIN("backoff", cases)

/*
 * ratelimit: a token bucket allows its burst, then one call per 1/rate
 * seconds; wait_ms is exact enough for Retry-After; the keyed table keeps
 * keys apart, stays bounded and counts exactly under concurrent use.
 */
#include <pthread.h>
#include <stdio.h>

#include "ratelimit.h"
#include "testutil.h"

START_TEST(test_token_bucket_allows_burst_then_throttles)
{
    ratelimit_bucket *tb = ratelimit_new(10, 5, 0);
    ck_assert_ptr_nonnull(tb);
    for (int i = 0; i < 5; i++)
        ck_assert(ratelimit_take(tb, 0, 1));
    ck_assert(!ratelimit_take(tb, 0, 1));
    ck_assert(!ratelimit_take(tb, 99, 1));
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_token_bucket_refills_at_the_rate_up_to_the_burst)
{
    ratelimit_bucket *tb = ratelimit_new(10, 5, 0);
    for (int i = 0; i < 5; i++)
        ck_assert(ratelimit_take(tb, 0, 1));
    /* 10/s: one token every 100 ms. */
    ck_assert(ratelimit_take(tb, 100, 1));
    ck_assert(!ratelimit_take(tb, 150, 1));
    ck_assert(ratelimit_take(tb, 200, 1));
    /* A long pause refills to the burst, no further. */
    ck_assert_double_eq_tol(ratelimit_tokens(tb, 60000), 5.0, 1e-9);
    int allowed = 0;
    while (ratelimit_take(tb, 60000, 1))
        allowed++;
    ck_assert_int_eq(allowed, 5);

    /* Over 10 seconds of steady demand, 10/s lets about 100 through. */
    allowed = 0;
    for (int64_t t = 60000; t < 70000; t++)
        allowed += ratelimit_take(tb, t, 1);
    ck_assert_int_ge(allowed, 99);
    ck_assert_int_le(allowed, 100);
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_token_bucket_wait_ms_says_when_a_take_will_succeed)
{
    ratelimit_bucket *tb = ratelimit_new(10, 5, 1000);
    ck_assert_int_eq(ratelimit_wait_ms(tb, 1000, 5), 0);
    ck_assert(ratelimit_take(tb, 1000, 5));
    ck_assert_int_eq(ratelimit_wait_ms(tb, 1000, 1), 100);
    ck_assert_int_eq(ratelimit_wait_ms(tb, 1000, 3), 300);
    ck_assert_int_eq(ratelimit_wait_ms(tb, 1040, 1), 60);
    ck_assert(!ratelimit_take(tb, 1099, 1));
    ck_assert(ratelimit_take(tb, 1100, 1));
    /* More than the burst can never be granted. */
    ck_assert_int_eq(ratelimit_wait_ms(tb, 1100, 6), -1);
    ck_assert(!ratelimit_take(tb, 999999, 6));
    ratelimit_free(tb);

    /* A rate that does not divide a second: 3/s is 333.3 ms a token. */
    tb = ratelimit_new(3, 1, 0);
    ck_assert(ratelimit_take(tb, 0, 1));
    int64_t w = ratelimit_wait_ms(tb, 0, 1);
    ck_assert_int_eq(w, 334);
    ck_assert(!ratelimit_take(tb, w - 1, 1));
    ck_assert(ratelimit_take(tb, w, 1));
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_token_bucket_rate_zero_is_unlimited)
{
    ratelimit_bucket *tb = ratelimit_new(0, 0, 0);
    for (int i = 0; i < 100000; i++)
        ck_assert(ratelimit_take(tb, 0, 1));
    ck_assert_int_eq(ratelimit_wait_ms(tb, 0, 1e9), 0);
    ratelimit_free(tb);
    tb = ratelimit_new(-5, 10, 0);
    ck_assert(ratelimit_take(tb, 0, 1000));
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_token_bucket_default_burst_is_one_second_of_rate)
{
    ratelimit_bucket *tb = ratelimit_new(50, 0, 0);
    ck_assert_double_eq_tol(ratelimit_tokens(tb, 0), 50.0, 1e-9);
    ratelimit_free(tb);
    /* Slow rates still let a single call through. */
    tb = ratelimit_new(0.5, 0, 0);
    ck_assert(ratelimit_take(tb, 0, 1));
    ck_assert(!ratelimit_take(tb, 0, 1));
    ck_assert_int_eq(ratelimit_wait_ms(tb, 0, 1), 2000);
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_token_bucket_ignores_time_going_backwards)
{
    ratelimit_bucket *tb = ratelimit_new(10, 1, 5000);
    ck_assert(ratelimit_take(tb, 5000, 1));
    /* An earlier timestamp (another thread's clock read) adds nothing... */
    ck_assert(!ratelimit_take(tb, 4000, 1));
    ck_assert_double_eq_tol(ratelimit_tokens(tb, 4000), 0.0, 1e-9);
    /* ...and the refill still counts from 5000. */
    ck_assert(!ratelimit_take(tb, 5099, 1));
    ck_assert(ratelimit_take(tb, 5100, 1));
    ratelimit_free(tb);
}
END_TEST

START_TEST(test_ratelimit_table_keeps_keys_apart)
{
    ratelimit_table *t = ratelimit_table_new(1, 2, 100);
    ck_assert_ptr_nonnull(t);
    ck_assert(ratelimit_table_take(t, "key-a", 0, 1, NULL));
    ck_assert(ratelimit_table_take(t, "key-a", 0, 1, NULL));
    int64_t wait = -7;
    ck_assert(!ratelimit_table_take(t, "key-a", 0, 1, &wait));
    ck_assert_int_eq(wait, 1000);
    ck_assert(ratelimit_table_take(t, "key-b", 0, 2, NULL));
    ck_assert(ratelimit_table_take(t, "key-a", 1000, 1, NULL));
    ck_assert_uint_eq(ratelimit_table_size(t), 2);
    ratelimit_table_free(t);
}
END_TEST

START_TEST(test_ratelimit_table_evicts_least_recent_key_when_full)
{
    ratelimit_table *t = ratelimit_table_new(1, 1, 2);
    ck_assert(ratelimit_table_take(t, "a", 0, 1, NULL));
    ck_assert(ratelimit_table_take(t, "b", 0, 1, NULL));
    ck_assert(!ratelimit_table_take(t, "a", 0, 1, NULL)); /* a is now the most recent */
    ck_assert(ratelimit_table_take(t, "c", 0, 1, NULL));  /* evicts b */
    ck_assert_uint_eq(ratelimit_table_size(t), 2);
    ck_assert(ratelimit_table_take(t, "b", 0, 1, NULL));  /* forgotten: fresh burst; evicts a */
    ck_assert(!ratelimit_table_take(t, "c", 0, 1, NULL)); /* still remembered */
    ck_assert(ratelimit_table_take(t, "a", 0, 1, NULL));  /* forgotten too */
    ck_assert_uint_eq(ratelimit_table_size(t), 2);

    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert(ratelimit_table_take(t, key, 0, 1, NULL));
    }
    ck_assert_uint_eq(ratelimit_table_size(t), 2);
    ratelimit_table_free(t);
    ck_assert_ptr_null(ratelimit_table_new(1, 1, 0));
}
END_TEST

typedef struct {
    ratelimit_table *t;
    int allowed;
} taker;

static void *take_many(void *arg)
{
    taker *tk = arg;
    for (int i = 0; i < 5000; i++)
        tk->allowed += ratelimit_table_take(tk->t, i % 2 ? "odd" : "even", 0, 1, NULL);
    return NULL;
}

START_TEST(test_ratelimit_table_counts_exactly_under_concurrency)
{
    /* The clock stands still, so exactly the burst of each key gets through
     * however the threads interleave. */
    ratelimit_table *t = ratelimit_table_new(0.001, 3000, 16);
    pthread_t th[4];
    taker tk[4];
    for (int i = 0; i < 4; i++) {
        tk[i] = (taker){t, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, take_many, &tk[i]), 0);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        total += tk[i].allowed;
    }
    ck_assert_int_eq(total, 6000);
    ratelimit_table_free(t);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_token_bucket_allows_burst_then_throttles),
    TEST_ENTRY(test_token_bucket_refills_at_the_rate_up_to_the_burst),
    TEST_ENTRY(test_token_bucket_wait_ms_says_when_a_take_will_succeed),
    TEST_ENTRY(test_token_bucket_rate_zero_is_unlimited),
    TEST_ENTRY(test_token_bucket_default_burst_is_one_second_of_rate),
    TEST_ENTRY(test_token_bucket_ignores_time_going_backwards),
    TEST_ENTRY(test_ratelimit_table_keeps_keys_apart),
    TEST_ENTRY(test_ratelimit_table_evicts_least_recent_key_when_full),
    TEST_ENTRY(test_ratelimit_table_counts_exactly_under_concurrency),
};

TEST_MAIN("ratelimit", cases)

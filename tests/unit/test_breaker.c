/*
 * breaker: closed → open after consecutive failures, refusal during the
 * cool-down, limited probes when half-open, close on success, reopen with
 * a growing cool-down on failure.
 */
#include <stdbool.h>
#include <string.h>

#include "breaker.h"
#include "testutil.h"

static breaker *make(unsigned threshold, int64_t open_ms, int64_t max_open_ms, unsigned probes)
{
    breaker_config cfg = {.failure_threshold = threshold,
                          .open_ms = open_ms,
                          .max_open_ms = max_open_ms,
                          .half_open_max = probes};
    breaker *b = breaker_new(&cfg);
    ck_assert_ptr_nonnull(b);
    return b;
}

static void fail_once(breaker *b, int64_t now)
{
    ck_assert(breaker_allow(b, now));
    breaker_record(b, now, false);
}

START_TEST(test_breaker_opens_after_consecutive_failures_only)
{
    breaker *b = make(3, 1000, 0, 1);
    fail_once(b, 0);
    fail_once(b, 1);
    /* A success in between resets the streak. */
    ck_assert(breaker_allow(b, 2));
    breaker_record(b, 2, true);
    fail_once(b, 3);
    fail_once(b, 4);
    ck_assert_int_eq(breaker_get_state(b, 4), BREAKER_CLOSED);
    fail_once(b, 5);
    ck_assert_int_eq(breaker_get_state(b, 5), BREAKER_OPEN);
    ck_assert(!breaker_allow(b, 6));
    ck_assert(!breaker_allow(b, 1004));
    ck_assert_uint_eq(breaker_opens(b), 1);
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_full_cycle_closed_open_half_open_closed)
{
    breaker *b = make(2, 1000, 8000, 1);
    fail_once(b, 0);
    fail_once(b, 10);
    ck_assert_int_eq(breaker_get_state(b, 10), BREAKER_OPEN);

    /* Cool-down over: one probe goes through, the next call waits for it. */
    ck_assert_int_eq(breaker_get_state(b, 1010), BREAKER_HALF_OPEN);
    ck_assert(breaker_allow(b, 1010));
    ck_assert(!breaker_allow(b, 1011));
    /* The probe fails: open again, for twice as long. */
    breaker_record(b, 1020, false);
    ck_assert_int_eq(breaker_get_state(b, 1020), BREAKER_OPEN);
    ck_assert(!breaker_allow(b, 3019));
    ck_assert_int_eq(breaker_retry_in_ms(b, 3019), 1);
    ck_assert(breaker_allow(b, 3020));
    /* The probe succeeds: closed, everything passes. */
    breaker_record(b, 3030, true);
    ck_assert_int_eq(breaker_get_state(b, 3030), BREAKER_CLOSED);
    for (int i = 0; i < 5; i++)
        ck_assert(breaker_allow(b, 3031 + i));
    ck_assert_uint_eq(breaker_opens(b), 2);

    /* Closing reset the cool-down to its first value. */
    fail_once(b, 4000);
    fail_once(b, 4001);
    ck_assert(!breaker_allow(b, 5000));
    ck_assert(breaker_allow(b, 5001));
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_cooldown_doubles_up_to_its_cap)
{
    breaker *b = make(1, 1000, 3000, 1);
    int64_t now = 0;
    fail_once(b, now);
    static const int64_t want[] = {1000, 2000, 3000, 3000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        ck_assert_int_eq(breaker_retry_in_ms(b, now), want[i]);
        ck_assert(!breaker_allow(b, now + want[i] - 1));
        now += want[i];
        fail_once(b, now); /* the probe fails */
    }
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_half_open_allows_the_configured_number_of_probes)
{
    breaker *b = make(1, 100, 0, 3);
    fail_once(b, 0);
    ck_assert(breaker_allow(b, 100));
    ck_assert(breaker_allow(b, 100));
    ck_assert(breaker_allow(b, 101));
    ck_assert(!breaker_allow(b, 102));
    ck_assert_int_eq(breaker_retry_in_ms(b, 102), 98);
    breaker_record(b, 103, true);
    ck_assert_int_eq(breaker_get_state(b, 103), BREAKER_CLOSED);
    /* Late outcomes of the other probes are accepted as closed-state
     * results and do not reopen it alone. */
    breaker_record(b, 104, true);
    ck_assert(breaker_allow(b, 105));
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_lost_probe_is_forgotten_after_a_cooldown)
{
    breaker *b = make(1, 500, 0, 1);
    fail_once(b, 0);
    ck_assert(breaker_allow(b, 500)); /* a probe whose result never comes */
    ck_assert(!breaker_allow(b, 999));
    ck_assert(breaker_allow(b, 1000));
    breaker_record(b, 1001, true);
    ck_assert_int_eq(breaker_get_state(b, 1001), BREAKER_CLOSED);
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_ignores_results_that_arrive_while_open)
{
    breaker *b = make(2, 1000, 0, 1);
    ck_assert(breaker_allow(b, 0));
    ck_assert(breaker_allow(b, 0));
    ck_assert(breaker_allow(b, 0));
    breaker_record(b, 1, false);
    breaker_record(b, 2, false); /* opens */
    breaker_record(b, 3, true);  /* in flight before it opened */
    ck_assert_int_eq(breaker_get_state(b, 3), BREAKER_OPEN);
    ck_assert_int_eq(breaker_retry_in_ms(b, 3), 999);
    breaker_free(b);
}
END_TEST

START_TEST(test_breaker_defaults_apply_to_zero_fields)
{
    breaker *b = breaker_new(NULL);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 4; i++)
        fail_once(b, i);
    ck_assert_int_eq(breaker_get_state(b, 4), BREAKER_CLOSED);
    fail_once(b, 4);
    ck_assert_int_eq(breaker_get_state(b, 4), BREAKER_OPEN);
    ck_assert_int_eq(breaker_retry_in_ms(b, 4), 30000);
    breaker_free(b);
    breaker_free(NULL);
}
END_TEST

START_TEST(test_breaker_state_names_are_stable)
{
    ck_assert_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    ck_assert_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    ck_assert_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_breaker_opens_after_consecutive_failures_only),
    TEST_ENTRY(test_breaker_full_cycle_closed_open_half_open_closed),
    TEST_ENTRY(test_breaker_cooldown_doubles_up_to_its_cap),
    TEST_ENTRY(test_breaker_half_open_allows_the_configured_number_of_probes),
    TEST_ENTRY(test_breaker_lost_probe_is_forgotten_after_a_cooldown),
    TEST_ENTRY(test_breaker_ignores_results_that_arrive_while_open),
    TEST_ENTRY(test_breaker_defaults_apply_to_zero_fields),
    TEST_ENTRY(test_breaker_state_names_are_stable),
};

TEST_MAIN("breaker", cases)

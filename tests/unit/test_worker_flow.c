/*
 * The worker's pure bookkeeping: retry scheduling, contiguous offset
 * completion, per-key ordering, the due-time heap.
 */
#include <stdint.h>
#include <string.h>

#include "dueq.h"
#include "keyq.h"
#include "offsets.h"
#include "retry.h"
#include "testutil.h"

START_TEST(test_retry_delays_grow_with_jitter_within_bounds)
{
    retry_policy p = {.max_attempts = 10, .base_ms = 1000, .cap_ms = 60000};
    uint64_t rng = 42;
    for (int n = 1; n <= 8; n++) {
        int64_t ceiling = 1000LL << (n - 1);
        if (ceiling > 60000)
            ceiling = 60000;
        for (int k = 0; k < 200; k++) {
            int64_t d = retry_delay_ms(&p, n, &rng);
            ck_assert_int_ge(d, ceiling / 2);
            ck_assert_int_le(d, ceiling);
        }
    }
    /* successive retries never wait less than half the next ceiling: they grow */
    int64_t prev_max = 0;
    for (int n = 1; n <= 6; n++) {
        int64_t lo = INT64_MAX;
        for (int k = 0; k < 100; k++) {
            int64_t d = retry_delay_ms(&p, n, &rng);
            if (d < lo)
                lo = d;
        }
        ck_assert_int_ge(lo, prev_max / 2);
        prev_max = (1000LL << (n - 1));
    }
}
END_TEST

START_TEST(test_retry_respects_retry_after_and_max_attempts)
{
    retry_policy p = {.max_attempts = 3, .base_ms = 100, .cap_ms = 1000};
    uint64_t rng = 7;
    int64_t nb = 0;
    ck_assert_int_eq(retry_decide(&p, 1, 0, 5000, &rng, &nb), RETRY_SCHEDULE);
    ck_assert_int_ge(nb, 5050);
    ck_assert_int_le(nb, 5100);
    ck_assert_int_eq(retry_decide(&p, 2, 30000, 5000, &rng, &nb), RETRY_SCHEDULE);
    ck_assert_int_eq(nb, 35000); /* Retry-After beats the cap */
    ck_assert_int_eq(retry_decide(&p, 3, 0, 5000, &rng, &nb), RETRY_EXHAUSTED);
    p.max_attempts = 1;
    ck_assert_int_eq(retry_decide(&p, 1, 0, 5000, &rng, &nb), RETRY_EXHAUSTED);
}
END_TEST

START_TEST(test_offsets_commit_only_contiguous_completion)
{
    offsets *t = offsets_new();
    offsets_position pos[4];
    for (int64_t o = 10; o < 15; o++)
        ck_assert_int_eq(offsets_track(t, "d", 0, o), 0);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 10);
    offsets_done(t, "d", 0, 12);
    offsets_done(t, "d", 0, 13);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 10); /* 10 and 11 still running */
    offsets_done(t, "d", 0, 10);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 11);
    offsets_done(t, "d", 0, 11);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 14);
    offsets_done(t, "d", 0, 14);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 15);
    ck_assert_int_eq(offsets_in_progress(t), 0);
    ck_assert_int_eq(offsets_collect(t, pos, 4), 1);
    ck_assert_str_eq(pos[0].topic, "d");
    ck_assert_int_eq(pos[0].offset, 15);
    ck_assert_int_eq(offsets_collect(t, pos, 4), 0); /* nothing moved */
    offsets_free(t);
}
END_TEST

START_TEST(test_offsets_idle_partition_advances_past_transaction_markers)
{
    offsets *t = offsets_new();
    ck_assert_int_eq(offsets_track(t, "d", 0, 0), 0);
    offsets_done(t, "d", 0, 0);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 1);
    /* The consumer skipped the commit marker at offset 1. */
    offsets_advance_idle(t, "d", 0, 2);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 2);
    /* Never backwards. */
    offsets_advance_idle(t, "d", 0, 1);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 2);
    /* Not while a record is in progress: it must be committed first. */
    ck_assert_int_eq(offsets_track(t, "d", 0, 2), 0);
    offsets_advance_idle(t, "d", 0, 4);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 2);
    offsets_done(t, "d", 0, 2);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 3);
    /* An untracked partition is left alone. */
    offsets_advance_idle(t, "d", 7, 9);
    ck_assert_int_eq(offsets_position_of(t, "d", 7), -1);
    offsets_free(t);
}
END_TEST

START_TEST(test_offsets_partitions_independent_gaps_and_rewind)
{
    offsets *t = offsets_new();
    ck_assert_int_eq(offsets_track(t, "d", 0, 100), 0);
    ck_assert_int_eq(offsets_track(t, "d", 0, 105), 0); /* gap: compacted or txn markers */
    ck_assert_int_eq(offsets_track(t, "r", 0, 7), 0);
    offsets_done(t, "d", 0, 105);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 100);
    ck_assert_int_eq(offsets_position_of(t, "r", 0), 7);
    offsets_done(t, "d", 0, 100);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 106);
    offsets_done(t, "d", 0, 999); /* unknown: ignored */
    /* rewind (seek back after a rebalance): tracking starts over */
    ck_assert_int_eq(offsets_track(t, "d", 0, 50), 0);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), 50);
    offsets_forget(t, "d", 0);
    ck_assert_int_eq(offsets_position_of(t, "d", 0), -1);
    offsets_done(t, "d", 0, 50);
    ck_assert_int_eq(offsets_in_progress(t), 1); /* r/0@7 */
    offsets_free(t);
}
END_TEST

START_TEST(test_offsets_many_in_flight_grow)
{
    offsets *t = offsets_new();
    for (int64_t o = 0; o < 10000; o++)
        ck_assert_int_eq(offsets_track(t, "d", 3, o), 0);
    for (int64_t o = 9999; o >= 1; o--)
        offsets_done(t, "d", 3, o);
    ck_assert_int_eq(offsets_position_of(t, "d", 3), 0);
    offsets_done(t, "d", 3, 0);
    ck_assert_int_eq(offsets_position_of(t, "d", 3), 10000);
    offsets_free(t);
}
END_TEST

START_TEST(test_keyq_one_holder_per_key_fifo_behind)
{
    keyq *q = keyq_new();
    int a = 1, b = 2, c = 3, d = 4;
    ck_assert_int_eq(keyq_acquire(q, "u1", &a), 1);
    ck_assert_int_eq(keyq_acquire(q, "u1", &b), 0);
    ck_assert_int_eq(keyq_acquire(q, "u2", &c), 1);
    ck_assert_int_eq(keyq_acquire(q, "u1", &d), 0);
    ck_assert_int_eq(keyq_held(q), 2);
    ck_assert_int_eq(keyq_waiting(q), 2);
    ck_assert_ptr_eq(keyq_release(q, "u1"), &b);
    ck_assert_ptr_eq(keyq_release(q, "u1"), &d);
    ck_assert_ptr_null(keyq_release(q, "u1"));
    ck_assert_int_eq(keyq_acquire(q, "u1", &a), 1);
    ck_assert_ptr_null(keyq_release(q, "u2"));
    ck_assert_int_eq(keyq_held(q), 1);
    keyq_free(q);
}
END_TEST

START_TEST(test_keyq_many_keys)
{
    keyq *q = keyq_new();
    char k[32];
    static int item;
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "user-%d", i);
        ck_assert_int_eq(keyq_acquire(q, k, &item), 1);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "user-%d", i);
        ck_assert_int_eq(keyq_acquire(q, k, &item), 0);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "user-%d", i);
        ck_assert_ptr_eq(keyq_release(q, k), &item);
        ck_assert_ptr_null(keyq_release(q, k));
    }
    ck_assert_int_eq(keyq_held(q), 0);
    keyq_free(q);
}
END_TEST

START_TEST(test_dueq_orders_by_time_then_insertion)
{
    dueq *q = dueq_new();
    int v[6];
    int64_t due[6] = {500, 100, 300, 100, 900, 0};
    for (int i = 0; i < 6; i++)
        ck_assert_int_eq(dueq_push(q, due[i], &v[i]), 0);
    ck_assert_int_eq(dueq_next_due(q), 0);
    ck_assert_ptr_eq(dueq_pop_due(q, 50), &v[5]);
    ck_assert_ptr_null(dueq_pop_due(q, 50));
    ck_assert_ptr_eq(dueq_pop_due(q, 100), &v[1]);
    ck_assert_ptr_eq(dueq_pop_due(q, 100), &v[3]);
    ck_assert_ptr_eq(dueq_pop_due(q, 1000), &v[2]);
    ck_assert_ptr_eq(dueq_pop_due(q, 1000), &v[0]);
    ck_assert_ptr_eq(dueq_pop_due(q, 1000), &v[4]);
    ck_assert_int_eq(dueq_size(q), 0);
    ck_assert_int_eq(dueq_next_due(q), INT64_MAX);
    dueq_free(q);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_retry_delays_grow_with_jitter_within_bounds),
    TEST_ENTRY(test_retry_respects_retry_after_and_max_attempts),
    TEST_ENTRY(test_offsets_commit_only_contiguous_completion),
    TEST_ENTRY(test_offsets_idle_partition_advances_past_transaction_markers),
    TEST_ENTRY(test_offsets_partitions_independent_gaps_and_rewind),
    TEST_ENTRY(test_offsets_many_in_flight_grow),
    TEST_ENTRY(test_keyq_one_holder_per_key_fifo_behind),
    TEST_ENTRY(test_keyq_many_keys),
    TEST_ENTRY(test_dueq_orders_by_time_then_insertion),
};

TEST_MAIN("worker_flow", cases)

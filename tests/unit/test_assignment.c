/*
 * assignment: a partition assigned again gets a new epoch, so work read
 * before its revocation is no longer live; revocation forgets its offsets;
 * other topics are ignored.
 */
#include <librdkafka/rdkafka.h>

#include "assignment.h"
#include "offsets.h"
#include "testutil.h"

static const char *const topics[] = {"t.deliveries", "t.retry"};

static rd_kafka_topic_partition_list_t *list_of(const char *topic, int32_t from, int32_t to)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (int32_t p = from; p <= to; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    return l;
}

START_TEST(test_reassigned_partition_gets_a_new_epoch_and_old_work_is_not_live)
{
    assignment a;
    assignment_init(&a, topics, 2);
    rd_kafka_topic_partition_list_t *l = list_of("t.deliveries", 0, 2);
    ck_assert_int_eq(assignment_rebalance(&a, true, l, NULL), 0);
    ck_assert_uint_eq(a.nparts, 3);
    assignment_part *p = assignment_find(&a, 0, 1);
    ck_assert_ptr_nonnull(p);
    uint64_t before = p->epoch;
    ck_assert(assignment_live(&a, 0, 1, before));

    rd_kafka_topic_partition_list_t *one = list_of("t.deliveries", 1, 1);
    ck_assert_int_eq(assignment_rebalance(&a, false, one, NULL), 0);
    ck_assert_uint_eq(a.nparts, 2);
    ck_assert(!assignment_live(&a, 0, 1, before));
    ck_assert_int_eq(assignment_rebalance(&a, true, one, NULL), 0);
    ck_assert(!assignment_live(&a, 0, 1, before)); /* same partition, new epoch */
    ck_assert(assignment_live(&a, 0, 1, assignment_find(&a, 0, 1)->epoch));
    ck_assert(assignment_find(&a, 1, 1) == NULL); /* the other topic was never assigned */
    rd_kafka_topic_partition_list_destroy(one);
    rd_kafka_topic_partition_list_destroy(l);
    assignment_free(&a);
}
END_TEST

START_TEST(test_foreign_topics_are_ignored_and_names_resolve)
{
    assignment a;
    assignment_init(&a, topics, 2);
    ck_assert_int_eq(assignment_topic(&a, "t.retry"), 1);
    ck_assert_int_eq(assignment_topic(&a, "t.other"), -1);
    rd_kafka_topic_partition_list_t *l = list_of("t.other", 0, 5);
    ck_assert_int_eq(assignment_rebalance(&a, true, l, NULL), 0);
    ck_assert_uint_eq(a.nparts, 0);
    rd_kafka_topic_partition_list_destroy(l);
    assignment_free(&a);
}
END_TEST

START_TEST(test_revocation_forgets_the_partitions_offsets)
{
    assignment a;
    assignment_init(&a, topics, 2);
    offsets *offs = offsets_new();
    ck_assert_ptr_nonnull(offs);
    rd_kafka_topic_partition_list_t *l = list_of("t.retry", 3, 3);
    ck_assert_int_eq(assignment_rebalance(&a, true, l, offs), 0);
    ck_assert_int_eq(offsets_track(offs, "t.retry", 3, 10), 0);
    offsets_done(offs, "t.retry", 3, 10);
    ck_assert_int_eq(assignment_rebalance(&a, false, l, offs), 0);
    offsets_position pos[4];
    ck_assert_uint_eq(offsets_collect(offs, pos, 4), 0); /* nothing left to commit for it */
    rd_kafka_topic_partition_list_destroy(l);
    offsets_free(offs);
    assignment_free(&a);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_reassigned_partition_gets_a_new_epoch_and_old_work_is_not_live),
    TEST_ENTRY(test_foreign_topics_are_ignored_and_names_resolve),
    TEST_ENTRY(test_revocation_forgets_the_partitions_offsets),
};

TEST_MAIN("assignment", cases)

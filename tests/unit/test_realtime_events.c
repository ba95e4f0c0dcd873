/*
 * herald-realtime's pure parts: an inbox.updates record becomes the event
 * its user's clients get, and a malformed one is refused with why; a
 * connection's queue skips changes the client has and bounds live events;
 * the handoff between the Kafka and service threads is bounded.
 */
#include <jansson.h>
#include <string.h>

#include "buf.h"
#include "handoff.h"
#include "inbox_update.h"
#include "outq.h"
#include "rtframe.h"
#include "testutil.h"

/* The record as the worker writes it (the one writer, common/inbox_update). */
static char *record(const char *user, int64_t seq, inbox_update_kind kind)
{
    static const char *const ids[] = {"5b3c0000-0000-5000-8000-000000000001",
                                      "5b3c0000-0000-5000-8000-000000000002"};
    inbox_update u = {.user_id = user,
                      .seq = seq,
                      .kind = kind,
                      .message_ids = ids,
                      .nmessage_ids = 2,
                      .unread_count = 3,
                      .unseen_count = 5,
                      .at_ms = 1796000000000};
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(inbox_update_write(&b, &u), 0);
    return buf_steal(&b, NULL);
}

static json_t *frame_json(rtframe *f)
{
    json_t *j = json_loadb(rtframe_text(f), f->len, 0, NULL);
    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(test_update_record_becomes_the_clients_event)
{
    char user[VALIDATE_USER_ID_MAX + 1], err[256];
    rtframe *f = NULL;
    char *rec = record("u42", 17, INBOX_UPDATE_STATE);
    ck_assert_int_eq(rtframe_from_update(rec, strlen(rec), user, &f, err, sizeof err), 0);
    ck_assert_str_eq(user, "u42");
    ck_assert_int_eq(f->seq, 17);
    json_t *j = frame_json(f);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "state");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 17);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unseen_count")), 5);
    json_t *ids = json_object_get(j, "message_ids");
    ck_assert_uint_eq(json_array_size(ids), 2);
    ck_assert_str_eq(json_string_value(json_array_get(ids, 1)),
                     "5b3c0000-0000-5000-8000-000000000002");
    /* What the client does not need stays in the record. */
    ck_assert_ptr_null(json_object_get(j, "user_id"));
    ck_assert_ptr_null(json_object_get(j, "at"));
    json_decref(j);
    rtframe_unref(f);
    free(rec);
}
END_TEST

START_TEST(test_malformed_records_are_refused_naming_the_field)
{
    static const struct {
        const char *json, *want;
    } bad[] = {
        {"not json", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {"{\"seq\":1}", "user_id"},
        {"{\"user_id\":\"topic:x\",\"seq\":1}", "user_id: "},
        {"{\"user_id\":\"u\",\"seq\":0}", "seq"},
        {"{\"user_id\":\"u\",\"seq\":\"1\"}", "seq"},
        {"{\"user_id\":\"u\",\"seq\":1,\"kind\":\"other\"}", "kind"},
        {"{\"user_id\":\"u\",\"seq\":1,\"kind\":\"message\",\"message_ids\":\"x\"}", "message_ids"},
        {"{\"user_id\":\"u\",\"seq\":1,\"kind\":\"message\",\"message_ids\":[1]}", "message_ids"},
        {"{\"user_id\":\"u\",\"seq\":1,\"kind\":\"message\",\"message_ids\":[],"
         "\"unread_count\":-1,\"unseen_count\":0}",
         "unread_count"},
        {"{\"user_id\":\"u\",\"seq\":1,\"kind\":\"message\",\"message_ids\":[],"
         "\"unread_count\":0}",
         "unseen_count"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char user[VALIDATE_USER_ID_MAX + 1], err[256] = "";
        rtframe *f = (rtframe *)1;
        ck_assert_int_eq(
            rtframe_from_update(bad[i].json, strlen(bad[i].json), user, &f, err, sizeof err), -1);
        ck_assert_ptr_null(f);
        ck_assert_msg(strstr(err, bad[i].want) != NULL, "%s: %s", bad[i].json, err);
    }
}
END_TEST

START_TEST(test_counts_and_reset_events)
{
    rtframe_counts c = {.seq = 40, .unread = 2, .unseen = 7};
    rtframe *f = rtframe_counts_new(&c);
    ck_assert_str_eq(rtframe_text(f),
                     "{\"type\":\"counts\",\"seq\":40,\"unread_count\":2,\"unseen_count\":7}");
    rtframe_unref(f);
    f = rtframe_reset_new(&c);
    ck_assert_str_eq(rtframe_text(f),
                     "{\"type\":\"reset\",\"seq\":40,\"unread_count\":2,\"unseen_count\":7}");
    ck_assert_int_eq(f->seq, 40);
    rtframe_unref(f);
}
END_TEST

static rtframe *change(int64_t seq)
{
    rtframe_counts c = {.seq = seq};
    json_t *ids = json_array();
    rtframe *f = rtframe_change_new("message", seq, ids, &c);
    json_decref(ids);
    ck_assert_ptr_nonnull(f);
    return f;
}

/* Offers seq and drops the caller's reference. */
static outq_result offer(outq *q, int64_t seq)
{
    rtframe *f = change(seq);
    outq_result r = outq_offer(q, f);
    rtframe_unref(f);
    return r;
}

START_TEST(test_live_events_at_or_below_the_snapshot_are_skipped)
{
    outq q;
    outq_init(&q, 8);
    rtframe_counts now = {.seq = 5};
    rtframe *counts = rtframe_counts_new(&now);
    ck_assert_int_eq(outq_push_initial(&q, counts), OUTQ_QUEUED);
    rtframe_unref(counts);
    ck_assert_int_eq(offer(&q, 4), OUTQ_SKIPPED); /* committed before the snapshot */
    ck_assert_int_eq(offer(&q, 5), OUTQ_SKIPPED); /* in the snapshot */
    ck_assert_int_eq(offer(&q, 6), OUTQ_QUEUED);
    ck_assert_int_eq(offer(&q, 6), OUTQ_SKIPPED); /* the same record read twice */
    ck_assert_int_eq(offer(&q, 8), OUTQ_QUEUED);
    ck_assert_int_eq(offer(&q, 7), OUTQ_SKIPPED); /* late: the client has moved past it */
    int64_t want[] = {5, 6, 8};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_ptr_nonnull(outq_peek(&q));
        ck_assert_int_eq(outq_peek(&q)->seq, want[i]);
        outq_pop(&q);
    }
    ck_assert(outq_empty(&q));
    /* Written is still given: the seq stays. */
    ck_assert_int_eq(offer(&q, 8), OUTQ_SKIPPED);
    outq_fini(&q);
}
END_TEST

START_TEST(test_catchup_events_share_a_seq_and_do_not_count_against_the_bound)
{
    outq q;
    outq_init(&q, 2);
    for (int i = 0; i < OUTQ_INITIAL_MAX; i++) {
        rtframe *f = change(3 + i / 2); /* two messages per change */
        ck_assert_int_eq(outq_push_initial(&q, f), OUTQ_QUEUED);
        rtframe_unref(f);
    }
    ck_assert_uint_eq(q.ntotal, OUTQ_INITIAL_MAX);
    ck_assert_int_eq(offer(&q, 1000), OUTQ_QUEUED);
    ck_assert_int_eq(offer(&q, 1001), OUTQ_QUEUED);
    ck_assert_int_eq(offer(&q, 1002), OUTQ_FULL); /* the third live event: too slow */
    outq_fini(&q);
    ck_assert(outq_empty(&q));
}
END_TEST

START_TEST(test_a_full_queue_frees_up_as_the_client_reads)
{
    outq q;
    outq_init(&q, 1);
    ck_assert_int_eq(offer(&q, 1), OUTQ_QUEUED);
    ck_assert_int_eq(offer(&q, 2), OUTQ_FULL);
    outq_pop(&q);
    ck_assert_int_eq(offer(&q, 2), OUTQ_QUEUED);
    ck_assert_uint_eq(q.nlive, 1);
    outq_fini(&q);
}
END_TEST

START_TEST(test_handoff_is_bounded_and_keeps_order)
{
    handoff h;
    ck_assert_int_eq(handoff_init(&h, 3), 0);
    for (int i = 1; i <= 3; i++)
        ck_assert(handoff_push(&h, "ann", change(i)));
    rtframe *extra = change(4);
    ck_assert(!handoff_push(&h, "ann", extra));
    handoff_item out[2];
    ck_assert_uint_eq(handoff_take(&h, out, 2), 2);
    ck_assert_int_eq(out[0].frame->seq, 1);
    ck_assert_int_eq(out[1].frame->seq, 2);
    ck_assert_str_eq(out[1].user_id, "ann");
    rtframe_unref(out[0].frame);
    rtframe_unref(out[1].frame);
    ck_assert(handoff_push(&h, "bob", extra)); /* room again, wrapping the ring */
    ck_assert_uint_eq(handoff_take(&h, out, 1), 1);
    ck_assert_int_eq(out[0].frame->seq, 3);
    rtframe_unref(out[0].frame);
    handoff_fini(&h); /* frees seq 4 */
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_update_record_becomes_the_clients_event),
    TEST_ENTRY(test_malformed_records_are_refused_naming_the_field),
    TEST_ENTRY(test_counts_and_reset_events),
    TEST_ENTRY(test_live_events_at_or_below_the_snapshot_are_skipped),
    TEST_ENTRY(test_catchup_events_share_a_seq_and_do_not_count_against_the_bound),
    TEST_ENTRY(test_a_full_queue_frees_up_as_the_client_reads),
    TEST_ENTRY(test_handoff_is_bounded_and_keeps_order),
};

TEST_MAIN("realtime_events", cases)

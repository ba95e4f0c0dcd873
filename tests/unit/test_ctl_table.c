/*
 * table and replay: listings stay one line per record whatever the data
 * holds, and replay selects by window, user and type and changes the
 * generation only when asked to redeliver, so that two redeliveries both
 * send again.
 */
#include <jansson.h>
#include <string.h>

#include "replay.h"
#include "table.h"
#include "testutil.h"

START_TEST(test_table_cell_cuts_long_text_with_ellipsis_on_character_boundary)
{
    char out[64];
    ck_assert_int_eq((int)table_cell("abcdefghij", 6, out, sizeof(out)), 6);
    ck_assert_str_eq(out, "abc...");
    ck_assert_int_eq((int)table_cell("abc", 6, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "abc");
    /* "é" is two bytes, one character: never split. */
    ck_assert_int_eq(
        (int)table_cell("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 4, out, sizeof(out)), 4);
    ck_assert_str_eq(out, "\xc3\xa9...");
}
END_TEST

START_TEST(test_table_cell_turns_control_characters_into_spaces)
{
    char out[64];
    table_cell("line1\nline2\t\033[31m", 0, out, sizeof(out));
    ck_assert_ptr_null(strchr(out, '\n'));
    ck_assert_ptr_null(strchr(out, '\033'));
    ck_assert_ptr_nonnull(strstr(out, "line1 line2"));
}
END_TEST

START_TEST(test_table_pads_columns_to_widest_cell)
{
    const char *headers[] = {"A", "B"};
    table *t = table_new(2, headers);
    ck_assert_ptr_nonnull(t);
    const char *r1[] = {"xxxx", "1"};
    const char *r2[] = {"y", NULL};
    ck_assert_int_eq(table_add(t, r1), 0);
    ck_assert_int_eq(table_add(t, r2), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    table_print(t, f);
    fclose(f);
    ck_assert_str_eq(buf, "A     B\nxxxx  1\ny     \n");
    free(buf);
    table_free(t);
}
END_TEST

static const char *const ev_user =
    "{\"event_id\":\"6f1c1c8e-0f1a-4c55-9d3b-2b1d7c1e9a01\",\"type\":\"order.shipped\","
    "\"user_id\":\"u-1\",\"data\":{},\"priority\":\"normal\",\"created_at\":\"2026-01-01T00:00:00."
    "000Z\","
    "\"generation\":2}";
static const char *const ev_topic =
    "{\"event_id\":\"6f1c1c8e-0f1a-4c55-9d3b-2b1d7c1e9a02\",\"type\":\"news.daily\","
    "\"topic\":\"news\",\"data\":{},\"priority\":\"low\",\"created_at\":\"2026-01-01T00:00:00."
    "000Z\"}";

START_TEST(test_replay_selects_by_window_user_and_type)
{
    replay_filter all = {NULL, NULL, 100, 200};
    replay_info info;
    ck_assert_int_eq(replay_check(ev_user, strlen(ev_user), 150, &all, &info), REPLAY_MATCH);
    ck_assert_str_eq(info.target, "u-1");
    ck_assert_int_eq(info.generation, 2);
    ck_assert_int_eq(replay_check(ev_user, strlen(ev_user), 99, &all, NULL), REPLAY_SKIP);
    ck_assert_int_eq(replay_check(ev_user, strlen(ev_user), 200, &all, NULL), REPLAY_SKIP);
    replay_filter user = {"u-1", NULL, 0, -1};
    ck_assert_int_eq(replay_check(ev_user, strlen(ev_user), 150, &user, NULL), REPLAY_MATCH);
    ck_assert_int_eq(replay_check(ev_topic, strlen(ev_topic), 150, &user, NULL), REPLAY_SKIP);
    replay_filter type = {NULL, "news.daily", 0, -1};
    ck_assert_int_eq(replay_check(ev_user, strlen(ev_user), 150, &type, NULL), REPLAY_SKIP);
    ck_assert_int_eq(replay_check(ev_topic, strlen(ev_topic), 150, &type, &info), REPLAY_MATCH);
    ck_assert_str_eq(info.target, "topic:news");
    ck_assert_int_eq(replay_check("{nope", 5, 150, &all, NULL), REPLAY_INVALID);
}
END_TEST

START_TEST(test_replay_keeps_generation_unless_redelivering)
{
    char *out = NULL;
    size_t len = 0;
    int gen = -1;
    ck_assert_int_eq(replay_rewrite(ev_user, strlen(ev_user), false, 1000, &out, &len, &gen), 0);
    ck_assert_str_eq(out, ev_user);
    ck_assert_int_eq(gen, 2);
    free(out);
    ck_assert_int_eq(replay_rewrite(ev_user, strlen(ev_user), true, 1000, &out, &len, &gen), 0);
    ck_assert_int_eq(gen, 1000);
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "generation")), 1000);
    ck_assert_str_eq(json_string_value(json_object_get(j, "event_id")),
                     "6f1c1c8e-0f1a-4c55-9d3b-2b1d7c1e9a01");
    json_decref(j);
    free(out);
    /* A generation already past the stamp still moves forward. */
    ck_assert_int_eq(replay_rewrite(ev_user, strlen(ev_user), true, 1, &out, &len, &gen), 0);
    ck_assert_int_eq(gen, 3);
    free(out);
}
END_TEST

START_TEST(test_replay_stamps_of_later_runs_are_larger)
{
    int64_t t = (int64_t)(REPLAY_STAMP_EPOCH_S + 1000) * 1000;
    ck_assert_int_eq(replay_stamp(t), 1000);
    ck_assert_int_gt(replay_stamp(t + 1000), replay_stamp(t));
    ck_assert_int_eq(replay_stamp(0), 1);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_table_cell_cuts_long_text_with_ellipsis_on_character_boundary),
    TEST_ENTRY(test_table_cell_turns_control_characters_into_spaces),
    TEST_ENTRY(test_table_pads_columns_to_widest_cell),
    TEST_ENTRY(test_replay_selects_by_window_user_and_type),
    TEST_ENTRY(test_replay_keeps_generation_unless_redelivering),
    TEST_ENTRY(test_replay_stamps_of_later_runs_are_larger),
};

TEST_MAIN("ctl_table_replay", cases)

/*
 * record: what an event's and a delivery's reader tell about text that is
 * not a record, and the helpers their JSON builders share.
 */
#include <string.h>

#include "record.h"
#include "testutil.h"

START_TEST(test_load_tells_bad_json_from_a_non_object)
{
    char err[256];
    bool not_json = false;
    ck_assert_ptr_null(record_load(NULL, 0, "an event", &not_json, err, sizeof err));
    ck_assert(not_json);
    ck_assert_str_eq(err, "invalid JSON: empty record");

    const char *bad = "{\"a\":1,\n\"a\":2}";
    ck_assert_ptr_null(record_load(bad, strlen(bad), "an event", &not_json, err, sizeof err));
    ck_assert(not_json);
    ck_assert_msg(strstr(err, "duplicate") != NULL && strstr(err, "line 2") != NULL, "%s", err);

    ck_assert_ptr_null(record_load("[1]", 3, "a delivery", &not_json, err, sizeof err));
    ck_assert(!not_json);
    ck_assert_str_eq(err, "a delivery must be a JSON object");

    json_t *o = record_load("{\"k\":\"v\"} ", 10, "an event", &not_json, err, sizeof err);
    ck_assert_ptr_nonnull(o);
    ck_assert(!not_json);
    ck_assert_str_eq(json_string_value(json_object_get(o, "k")), "v");
    json_decref(o);
}
END_TEST

START_TEST(test_put_string_leaves_out_null)
{
    json_t *o = json_object();
    ck_assert_int_eq(record_put_string(o, "a", "x"), 0);
    ck_assert_int_eq(record_put_string(o, "b", NULL), 0);
    ck_assert_int_eq(json_object_size(o), 1);
    ck_assert_str_eq(json_string_value(json_object_get(o, "a")), "x");
    ck_assert_int_eq(record_put_string(o, "c", "\xff"), -1); /* not UTF-8 */
    ck_assert_int_eq(json_object_size(o), 1);
    json_decref(o);
}
END_TEST

START_TEST(test_name_index_reads_back_wire_names)
{
    static const char *const names[] = {"email", "sms", "push"};
    ck_assert_int_eq(record_name_index(names, 3, "email"), 0);
    ck_assert_int_eq(record_name_index(names, 3, "push"), 2);
    ck_assert_int_eq(record_name_index(names, 3, "Push"), -1);
    ck_assert_int_eq(record_name_index(names, 3, ""), -1);
    ck_assert_int_eq(record_name_index(names, 3, NULL), -1);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_load_tells_bad_json_from_a_non_object),
    TEST_ENTRY(test_put_string_leaves_out_null),
    TEST_ENTRY(test_name_index_reads_back_wire_names),
};

TEST_MAIN("record", cases)

/*
 * inbox_update: the record a live client reads from inbox.updates is the
 * contract's (docs/inapp.md): its fields, their order-free meaning when read
 * back, and a large change listing no ids.
 */
#include "testutil.h"

#include "inbox_update.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define AT_MS 1796605323456LL /* 2026-12-07T01:02:03.456Z */

static json_t *written(const inbox_update *u, char **text)
{
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(inbox_update_write(&b, u), 0);
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(j != NULL, "not JSON: %s: %s", jerr.text, b.data);
    if (text != NULL)
        *text = buf_steal(&b, NULL);
    buf_free(&b);
    return j;
}

START_TEST(test_new_message_record_has_the_contracts_fields)
{
    const char *ids[] = {"5b3c0e2a-0c3e-5a4e-9f1b-0d2c3b4a5e6f"};
    inbox_update u = {.user_id = "u42",
                      .seq = 17,
                      .kind = INBOX_UPDATE_MESSAGE,
                      .message_ids = ids,
                      .nmessage_ids = 1,
                      .unread_count = 3,
                      .unseen_count = 5,
                      .at_ms = AT_MS};
    char *text = NULL;
    json_t *j = written(&u, &text);
    ck_assert_str_eq(text, "{\"user_id\":\"u42\",\"seq\":17,\"kind\":\"message\","
                           "\"message_ids\":[\"5b3c0e2a-0c3e-5a4e-9f1b-0d2c3b4a5e6f\"],"
                           "\"unread_count\":3,\"unseen_count\":5,"
                           "\"at\":\"2026-12-07T01:02:03.456Z\"}");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "seq")), 17);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(j, "message_ids"), 0)),
                     ids[0]);
    json_decref(j);
    free(text);
}

START_TEST(test_state_change_and_escaped_user_id)
{
    const char *ids[] = {"a", "b"};
    inbox_update u = {.user_id = "ann \"the\" admin",
                      .seq = 1,
                      .kind = INBOX_UPDATE_STATE,
                      .message_ids = ids,
                      .nmessage_ids = 2,
                      .at_ms = AT_MS};
    json_t *j = written(&u, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "user_id")), "ann \"the\" admin");
    ck_assert_str_eq(json_string_value(json_object_get(j, "kind")), "state");
    ck_assert_uint_eq(json_array_size(json_object_get(j, "message_ids")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "unread_count")), 0);
    json_decref(j);
}

START_TEST(test_large_change_lists_no_ids)
{
    static const char *ids[INBOX_UPDATE_IDS_MAX + 1];
    for (size_t i = 0; i <= INBOX_UPDATE_IDS_MAX; i++)
        ids[i] = "id";
    inbox_update u = {.user_id = "u1", .seq = 9, .kind = INBOX_UPDATE_STATE, .at_ms = AT_MS};
    u.message_ids = ids;
    u.nmessage_ids = INBOX_UPDATE_IDS_MAX;
    json_t *j = written(&u, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(j, "message_ids")), INBOX_UPDATE_IDS_MAX);
    json_decref(j);
    u.nmessage_ids = INBOX_UPDATE_IDS_MAX + 1;
    j = written(&u, NULL);
    ck_assert(json_is_array(json_object_get(j, "message_ids")));
    ck_assert_uint_eq(json_array_size(json_object_get(j, "message_ids")), 0);
    json_decref(j);
}

START_TEST(test_invalid_utf8_leaves_the_buffer_as_it_was)
{
    inbox_update u = {.user_id = "bad\xff", .seq = 1, .at_ms = AT_MS};
    buf b;
    buf_init(&b, 0);
    ck_assert_int_eq(buf_append_str(&b, "x"), 0);
    ck_assert_int_eq(inbox_update_write(&b, &u), -1);
    ck_assert_uint_eq(b.len, 1);
    ck_assert_str_eq(b.data, "x");
    buf_free(&b);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_new_message_record_has_the_contracts_fields),
    TEST_ENTRY(test_state_change_and_escaped_user_id),
    TEST_ENTRY(test_large_change_lists_no_ids),
    TEST_ENTRY(test_invalid_utf8_leaves_the_buffer_as_it_was),
};

TEST_MAIN("inbox_update", cases)

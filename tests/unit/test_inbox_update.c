/* Unit tests of common/inbox_update: the inbox.updates record as docs/inapp.md shows it. */
#include "testutil.h"

#include "inbox_update.h"

#include <stdlib.h>
#include <string.h>

START_TEST(test_update_record_has_the_documented_shape)
{
    json_t *ids = json_pack("[s]", "5b3c");
    const inbox_update u = {.user_id = "u42",
                            .seq = 17,
                            .kind = "message",
                            .message_ids = ids,
                            .unread_count = 3,
                            .unseen_count = 5,
                            .at_ms = 1796605323456LL};
    size_t len = 0;
    char *s = inbox_update_json(&u, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s, "{\"user_id\":\"u42\",\"seq\":17,\"kind\":\"message\",\"message_ids\":"
                        "[\"5b3c\"],\"unread_count\":3,\"unseen_count\":5,"
                        "\"at\":\"2026-12-07T01:02:03.456Z\"}");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
    json_decref(ids);
}

START_TEST(test_update_record_lists_no_ids_past_the_limit)
{
    json_t *ids = json_array();
    for (int i = 0; i < INBOX_UPDATE_IDS_MAX + 1; i++)
        json_array_append_new(ids, json_string("x"));
    const inbox_update u = {.user_id = "u", .kind = "state", .message_ids = ids};
    size_t len = 0;
    char *s = inbox_update_json(&u, &len);
    json_t *doc = json_loads(s, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "message_ids")), 0);
    json_decref(doc);
    free(s);
    json_array_remove(ids, 0);
    s = inbox_update_json(&u, &len);
    doc = json_loads(s, 0, NULL);
    ck_assert_uint_eq(json_array_size(json_object_get(doc, "message_ids")), INBOX_UPDATE_IDS_MAX);
    json_decref(doc);
    free(s);
    json_decref(ids);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_update_record_has_the_documented_shape),
    TEST_ENTRY(test_update_record_lists_no_ids_past_the_limit),
};

TEST_MAIN("inbox_update", cases)

/*
 * The gateway's event records (event_serialize() by way of wire_event()):
 * byte for byte what jansson dumps of event_to_json(), for events that
 * passed event_from_request() and for the ones that take jansson's path.
 */
#include "event.h"
#include "ids.h"
#include "testutil.h"
#include "wire.h"

#include <stdlib.h>
#include <string.h>

/* Validates body as the gateway does, assigns id and time, and compares the two records. */
static void check_same_record(const char *body, int64_t created_at)
{
    json_error_t jerr;
    json_t *obj = json_loads(body, 0, &jerr);
    ck_assert_msg(obj != NULL, "%s: %s", body, jerr.text);
    event ev = {0};
    char field[64], err[256];
    ck_assert_msg(event_from_request(obj, &ev, NULL, field, sizeof field, err, sizeof err) == 0,
                  "%s: %s", body, err);
    json_decref(obj);
    ck_assert_int_eq(wire_event_id(ev.event_id), 0);
    ev.created_at = created_at;

    char *want = NULL, *got = NULL;
    size_t wlen = 0, glen = 0;
    json_t *tree = event_to_json(&ev);
    ck_assert_ptr_nonnull(tree);
    want = json_dumps(tree, JSON_COMPACT);
    json_decref(tree);
    ck_assert_ptr_nonnull(want);
    wlen = strlen(want);
    ck_assert_int_eq(wire_event(&ev, &got, &glen), 0);
    ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
                  "\nwire:      %.*s\njansson:   %.*s", (int)glen, got, (int)wlen, want);
    free(got);
    ck_assert_int_eq(event_serialize(&ev, &got, &glen), 0);
    ck_assert_msg(glen == wlen && memcmp(got, want, wlen) == 0,
                  "\nserialize: %.*s\njansson:   %.*s", (int)glen, got, (int)wlen, want);
    free(want);
    free(got);
    event_free(&ev);
}

START_TEST(test_wire_matches_serialize_for_every_envelope_field)
{
    check_same_record("{\"type\":\"order.shipped\",\"user_id\":\"u42\"}", 1795000000000);
    check_same_record("{\"type\":\"a.b\",\"topic\":\"news\",\"priority\":\"critical\","
                      "\"category\":\"marketing\",\"idempotency_key\":\"k-1\"}",
                      1795000000123);
    check_same_record("{\"type\":\"a.b\",\"user_id\":\"u\",\"priority\":\"low\",\"data\":{}}", 0);
    check_same_record("{\"type\":\"a.b\",\"user_id\":\"u\",\"priority\":\"high\","
                      "\"data\":{\"order\":{\"id\":7,\"items\":[1,2.5,null,true]}}}",
                      1795000000999);
}
END_TEST

START_TEST(test_wire_escapes_like_jansson)
{
    /* Quotes, backslashes, control characters and non-ASCII in data, and
     * the printable ASCII the envelope fields allow. */
    check_same_record("{\"type\":\"a.b\",\"user_id\":\"u.q_b:c@d+e-f\",\"data\":{\"t\":"
                      "\"line\\nbreak \\u00e9\\u2028 tab\\t </script>\"}}",
                      1795000000001);
    check_same_record("{\"type\":\"a.b\",\"user_id\":\"u\",\"idempotency_key\":"
                      "\"key/with\\\"quotes\\\"and\\\\back~slash\"}",
                      1795000000002);
}
END_TEST

/* An event as Herald's own producers make it (broadcast fan-out, replay). */
static void check_serialize_matches_jansson(const event *ev)
{
    json_t *tree = event_to_json(ev);
    ck_assert_ptr_nonnull(tree);
    char *want = json_dumps(tree, JSON_COMPACT), *got = NULL;
    json_decref(tree);
    ck_assert_ptr_nonnull(want);
    size_t glen = 0;
    ck_assert_int_eq(event_serialize(ev, &got, &glen), 0);
    ck_assert_msg(glen == strlen(want) && memcmp(got, want, glen) == 0,
                  "\nserialize: %s\njansson:   %s", got, want);
    free(want);
    free(got);
}

START_TEST(test_serialize_matches_jansson_for_producer_made_events)
{
    event ev = {.type = strdup("news.posted"),
                .user_id = strdup("u\xc3\xa9\x01\"7"),
                .category = strdup("caf\xc3\xa9\ttab"),
                .idempotency_key = strdup("k\\\n"),
                .priority = EVENT_PRIORITY_HIGH,
                .created_at = 1795000000456,
                .generation = 3};
    snprintf(ev.event_id, sizeof ev.event_id, "0b6f3c1e-8d1f-4a51-9a43-1d9f0b1b2c3d");
    snprintf(ev.broadcast_id, sizeof ev.broadcast_id, "5d1e9a7c-2b4f-4c8e-8f00-aa11bb22cc33");
    check_serialize_matches_jansson(&ev); /* no data: written as {} */

    /* A data bigger than the first allocation: dumped a second time. */
    ev.data = json_object();
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(json_object_set_new(ev.data, "big", json_string(big)), 0);
    check_serialize_matches_jansson(&ev);
    event_free(&ev);

    /* Not UTF-8: refused, as jansson refuses it. */
    event bad = {.type = strdup("a.b"), .user_id = strdup("u\xff")};
    char *out = NULL;
    ck_assert_int_eq(event_serialize(&bad, &out, NULL), -1);
    ck_assert_ptr_null(out);
    event_free(&bad);
}
END_TEST

START_TEST(test_wire_timestamps_across_second_boundaries)
{
    const int64_t t[] = {1795000000999, 1795000001000, 1795000001001, 1795000000500, 1795000061000};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        check_same_record("{\"type\":\"a.b\",\"user_id\":\"u\"}", t[i]);
}
END_TEST

START_TEST(test_wire_ids_are_distinct_v4_uuids)
{
    char a[ID_UUID_SIZE], b[ID_UUID_SIZE];
    ck_assert_int_eq(wire_event_id(a), 0);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(wire_event_id(b), 0);
        ck_assert_str_ne(a, b);
        ck_assert_int_eq(b[14], '4');
        ck_assert_msg(strchr("89ab", b[19]) != NULL, "%s", b);
        memcpy(a, b, sizeof a);
    }
    char doc[WIRE_ACCEPTED_SIZE];
    size_t n = wire_accepted(a, doc);
    ck_assert_uint_eq(n, strlen(doc));
    char want[80];
    snprintf(want, sizeof want, "{\"event_id\":\"%s\"}", a);
    ck_assert_str_eq(doc, want);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_wire_matches_serialize_for_every_envelope_field),
    TEST_ENTRY(test_wire_escapes_like_jansson),
    TEST_ENTRY(test_serialize_matches_jansson_for_producer_made_events),
    TEST_ENTRY(test_wire_timestamps_across_second_boundaries),
    TEST_ENTRY(test_wire_ids_are_distinct_v4_uuids),
};

TEST_MAIN("gateway_wire", cases)

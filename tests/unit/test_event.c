/* Unit tests of common/event (and the shared rules of common/validate it applies). */
#include "testutil.h"

#include "event.h"

#include <string.h>

#define EVENT_ID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define OTHER_ID "7c9e6679-7425-40de-944b-e07fc1f90ae7"

static char field[64];
static char err[512];

static json_t *J(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    ck_assert_msg(j != NULL, "test JSON: %s", jerr.text);
    return j;
}

/* Runs event_from_request on body (consumed) and returns its result. */
static int request(json_t *body, event *ev, const event_limits *lim)
{
    field[0] = err[0] = '\0';
    int rc = event_from_request(body, ev, lim, field, sizeof field, err, sizeof err);
    json_decref(body);
    return rc;
}

static void request_fails(json_t *body, const char *expect_field, const char *expect_err)
{
    event ev;
    ck_assert_int_eq(request(body, &ev, NULL), -1);
    ck_assert_str_eq(field, expect_field);
    ck_assert_str_eq(err, expect_err);
    ck_assert_ptr_null(ev.type);
    ck_assert_ptr_null(ev.data);
}

/* A valid request body with one member replaced (or added) by value (consumed). */
static json_t *body_with(const char *key, json_t *value)
{
    json_t *b = J("{\"type\":\"order.shipped\",\"user_id\":\"u-42\"}");
    json_object_set_new_nocheck(b, key, value);
    return b;
}

START_TEST(test_request_minimal_user_event_gets_defaults)
{
    event ev;
    ck_assert_int_eq(request(J("{\"type\":\"order.shipped\",\"user_id\":\"u-42\"}"), &ev, NULL), 0);
    ck_assert_str_eq(ev.type, "order.shipped");
    ck_assert_str_eq(ev.user_id, "u-42");
    ck_assert_ptr_null(ev.topic);
    ck_assert(json_is_object(ev.data));
    ck_assert_int_eq(json_object_size(ev.data), 0);
    ck_assert_int_eq(ev.priority, EVENT_PRIORITY_NORMAL);
    ck_assert_ptr_null(ev.category);
    ck_assert_ptr_null(ev.idempotency_key);
    ck_assert_str_eq(ev.event_id, "");
    ck_assert_int_eq(ev.created_at, 0);
    ck_assert_int_eq(ev.generation, 0);
    event_free(&ev);
}

START_TEST(test_request_accepts_every_optional_field)
{
    event ev;
    ck_assert_int_eq(request(J("{\"type\":\"news.published\",\"topic\":\"news\","
                               "\"data\":{\"title\":\"Hi\",\"n\":[1,2]},\"priority\":\"critical\","
                               "\"category\":\"marketing\",\"idempotency_key\":\"req-1\"}"),
                             &ev, NULL),
                     0);
    ck_assert_ptr_null(ev.user_id);
    ck_assert_str_eq(ev.topic, "news");
    ck_assert_str_eq(json_string_value(json_object_get(ev.data, "title")), "Hi");
    ck_assert_int_eq(ev.priority, EVENT_PRIORITY_CRITICAL);
    ck_assert_str_eq(ev.category, "marketing");
    ck_assert_str_eq(ev.idempotency_key, "req-1");
    event_free(&ev);
}

START_TEST(test_request_body_must_be_an_object)
{
    request_fails(J("[1]"), "", "the request body must be a JSON object");
    event ev;
    ck_assert_int_eq(event_from_request(NULL, &ev, NULL, field, sizeof field, err, sizeof err), -1);
}

START_TEST(test_request_rejects_unknown_fields)
{
    request_fails(body_with("usr", json_integer(1)), "usr",
                  "usr: unknown field (allowed: type, user_id, topic, data, priority, category, "
                  "idempotency_key, digest)");
    request_fails(body_with("event_id", json_string(EVENT_ID)), "event_id",
                  "event_id: unknown field (allowed: type, user_id, topic, data, priority, "
                  "category, idempotency_key, digest)");
}

START_TEST(test_request_reports_missing_type)
{
    request_fails(J("{\"user_id\":\"u\"}"), "type", "type: required");
}

START_TEST(test_request_reports_wrong_types_by_field)
{
    request_fails(body_with("type", json_integer(5)), "type", "type: must be a string");
    request_fails(body_with("user_id", json_true()), "user_id", "user_id: must be a string");
    request_fails(body_with("data", json_array()), "data", "data: must be an object");
    request_fails(body_with("data", json_string("{}")), "data", "data: must be an object");
    request_fails(body_with("priority", json_integer(1)), "priority", "priority: must be a string");
    request_fails(body_with("priority", json_string("urgent")), "priority",
                  "priority: must be one of critical|high|normal|low");
    request_fails(body_with("category", json_real(1.5)), "category", "category: must be a string");
}

START_TEST(test_request_needs_exactly_one_of_user_id_and_topic)
{
    request_fails(J("{\"type\":\"a\"}"), "user_id",
                  "user_id: required (or topic, for a broadcast)");
    request_fails(body_with("topic", json_string("news")), "topic",
                  "topic: give either user_id or topic, not both");
}

START_TEST(test_null_optional_fields_count_as_absent)
{
    event ev;
    ck_assert_int_eq(request(J("{\"type\":\"a\",\"user_id\":\"u\",\"data\":null,"
                               "\"category\":null,\"priority\":null,\"topic\":null}"),
                             &ev, NULL),
                     0);
    ck_assert(json_is_object(ev.data));
    ck_assert_ptr_null(ev.category);
    ck_assert_int_eq(ev.priority, EVENT_PRIORITY_NORMAL);
    event_free(&ev);
}

START_TEST(test_type_must_be_a_lowercase_dotted_name)
{
    static const char *const good[] = {"a", "order.shipped", "x_1-2.y", "9lives"};
    static const char *const bad[] = {"Order", ".a", "-a", "_a", "a b", "caf\xc3\xa9", "a/b", ""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        event ev;
        ck_assert_msg(request(body_with("type", json_string(good[i])), &ev, NULL) == 0, "%s: %s",
                      good[i], err);
        event_free(&ev);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        request_fails(body_with("type", json_string(bad[i])), "type",
                      "type: must be 1..128 characters of a-z 0-9 _ . -, starting with a letter "
                      "or digit (like order.shipped)");
    char name[130];
    memset(name, 'a', sizeof name);
    name[128] = '\0';
    event ev;
    ck_assert_int_eq(request(body_with("type", json_string(name)), &ev, NULL), 0);
    event_free(&ev);
    name[128] = 'a', name[129] = '\0';
    ck_assert_int_eq(request(body_with("type", json_string(name)), &ev, NULL), -1);
    ck_assert_str_eq(field, "type");
}

START_TEST(test_user_id_rules)
{
    static const char *const good[] = {"u", "user@example.com", "a:b+c-d_e.f", "U42"};
    static const char *const bad[] = {"", "a b", "caf\xc3\xa9", "a/b", "a\"b", "x\ty"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        event ev;
        ck_assert_msg(request(body_with("user_id", json_string(good[i])), &ev, NULL) == 0, "%s: %s",
                      good[i], err);
        event_free(&ev);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        request_fails(body_with("user_id", json_string(bad[i])), "user_id",
                      "user_id: must be 1..128 characters of A-Z a-z 0-9 . _ : @ + -");
    request_fails(body_with("user_id", json_string("topic:news")), "user_id",
                  "user_id: must not start with \"topic:\" (reserved for topic broadcasts)");
    char id[130];
    memset(id, 'u', sizeof id);
    id[129] = '\0';
    request_fails(body_with("user_id", json_string(id)), "user_id",
                  "user_id: must be 1..128 characters of A-Z a-z 0-9 . _ : @ + -");
}

START_TEST(test_topic_and_category_follow_the_name_rule)
{
    json_t *b = J("{\"type\":\"a\",\"topic\":\"News\"}");
    request_fails(b, "topic",
                  "topic: must be 1..128 characters of a-z 0-9 _ . -, starting with a letter or "
                  "digit (like order.shipped)");
    char cat[66];
    memset(cat, 'c', sizeof cat);
    cat[64] = '\0';
    event ev;
    ck_assert_int_eq(request(body_with("category", json_string(cat)), &ev, NULL), 0);
    event_free(&ev);
    cat[64] = 'c', cat[65] = '\0';
    request_fails(body_with("category", json_string(cat)), "category",
                  "category: must be 1..64 characters of a-z 0-9 _ . -, starting with a letter or "
                  "digit (like order.shipped)");
}

START_TEST(test_idempotency_key_must_be_printable_ascii)
{
    char key[257];
    memset(key, 'k', sizeof key);
    key[256] = '\0';
    const char *msg = "idempotency_key: must be 1..255 printable ASCII characters without spaces";
    request_fails(body_with("idempotency_key", json_string(key)), "idempotency_key", msg);
    request_fails(body_with("idempotency_key", json_string("a b")), "idempotency_key", msg);
    request_fails(body_with("idempotency_key", json_string("")), "idempotency_key", msg);
}

START_TEST(test_request_rejects_oversize_data)
{
    char *big = malloc(70000);
    memset(big, 'x', 69999);
    big[69999] = '\0';
    json_t *data = json_object();
    json_object_set_new(data, "blob", json_string(big));
    free(big);
    request_fails(body_with("data", data), "data", "data: must be at most 65536 bytes as JSON");

    /* A custom limit counts the compact JSON: {"k":"vvvv"} is 12 bytes. */
    event_limits lim = {.max_data_bytes = 12};
    event ev;
    ck_assert_int_eq(request(body_with("data", J("{\"k\":\"vvvv\"}")), &ev, &lim), 0);
    event_free(&ev);
    ck_assert_int_eq(request(body_with("data", J("{\"k\":\"vvvvv\"}")), &ev, &lim), -1);
    ck_assert_str_eq(err, "data: must be at most 12 bytes as JSON");
}

START_TEST(test_invalid_utf8_built_in_code_is_rejected)
{
    /* jansson refuses invalid UTF-8 where it checks, so such strings only come from _nocheck. */
    ck_assert_ptr_null(json_stringn("ab\xff", 3));
    request_fails(body_with("type", json_stringn_nocheck("ab\xff", 3)), "type",
                  "type: invalid UTF-8");
    request_fails(body_with("category", json_stringn_nocheck("\xc0\xaf", 2)), "category",
                  "category: invalid UTF-8");

    json_t *data = json_object();
    json_object_set_new(data, "s", json_stringn_nocheck("\xed\xa0\x80", 3));
    request_fails(body_with("data", data), "data", "data: invalid UTF-8 in a string");

    data = json_object();
    json_t *inner = json_object();
    json_object_set_new_nocheck(inner, "bad\xfe", json_integer(1));
    json_object_set_new(data, "nested", json_pack("[o]", inner));
    request_fails(body_with("data", data), "data", "data: invalid UTF-8 in a key");
}

START_TEST(test_data_nested_too_deeply_is_rejected)
{
    json_t *data = json_object();
    json_t *cur = data;
    for (int i = 0; i < 2100; i++) {
        json_t *next = json_array();
        json_object_set_new(cur, "a", json_pack("[o]", next));
        cur = json_object();
        json_array_append_new(next, cur);
    }
    request_fails(body_with("data", data), "data", "data: nested more than 2048 levels deep");
}

START_TEST(test_strings_with_nul_are_rejected)
{
    request_fails(body_with("user_id", json_stringn("a\0b", 3)), "user_id",
                  "user_id: must not contain NUL characters");
}

/* ---- Kafka records ---- */

static const char full_event[] =
    "{\"event_id\":\"" EVENT_ID "\",\"type\":\"order.shipped\",\"user_id\":\"u-42\","
    "\"data\":{\"order\":{\"id\":\"o-1\",\"total\":12.5}},\"priority\":\"high\","
    "\"category\":\"billing\",\"created_at\":\"2026-11-27T22:10:55.123Z\","
    "\"idempotency_key\":\"k-1\",\"broadcast_id\":\"" OTHER_ID "\",\"generation\":3}";

START_TEST(test_parse_reads_every_field)
{
    event ev;
    ck_assert_int_eq(event_parse(full_event, strlen(full_event), &ev, err, sizeof err), EVENT_OK);
    ck_assert_str_eq(ev.event_id, EVENT_ID);
    ck_assert_str_eq(ev.type, "order.shipped");
    ck_assert_str_eq(ev.user_id, "u-42");
    ck_assert_ptr_null(ev.topic);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(ev.data, "order"), "id")),
                     "o-1");
    ck_assert_int_eq(ev.priority, EVENT_PRIORITY_HIGH);
    ck_assert_str_eq(ev.category, "billing");
    ck_assert_int_eq(ev.created_at, 1795817455123LL);
    ck_assert_str_eq(ev.idempotency_key, "k-1");
    ck_assert_str_eq(ev.broadcast_id, OTHER_ID);
    ck_assert_int_eq(ev.generation, 3);
    event_free(&ev);
}

static void parse_fails(const char *json, event_status expect, const char *expect_err)
{
    event ev;
    err[0] = '\0';
    ck_assert_int_eq(event_parse(json, strlen(json), &ev, err, sizeof err), expect);
    ck_assert_msg(strstr(err, expect_err) != NULL, "\"%s\" not in \"%s\"", expect_err, err);
    ck_assert_ptr_null(ev.type);
    ck_assert_ptr_null(ev.data);
}

/* full_event with the member key replaced by raw JSON text (or removed when NULL). */
static char *full_with(const char *key, const char *raw)
{
    json_t *j = J(full_event);
    if (raw == NULL)
        json_object_del(j, key);
    else
        json_object_set_new(j, key, J(raw));
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

static void parse_with_fails(const char *key, const char *raw, const char *expect_err)
{
    char *s = full_with(key, raw);
    parse_fails(s, EVENT_INVALID, expect_err);
    free(s);
}

START_TEST(test_parse_rejects_duplicate_keys)
{
    parse_fails("{\"type\":\"a\",\"type\":\"b\"}", EVENT_INVALID_JSON, "duplicate");
}

START_TEST(test_parse_rejects_text_that_is_not_json)
{
    parse_fails("", EVENT_INVALID_JSON, "invalid JSON");
    parse_fails("{\"type\":", EVENT_INVALID_JSON, "invalid JSON");
    parse_fails("{} trailing", EVENT_INVALID_JSON, "invalid JSON");
    parse_fails("{\"type\":\"ab\xff\"}", EVENT_INVALID_JSON, "invalid JSON");
    event ev;
    ck_assert_int_eq(event_parse(NULL, 0, &ev, err, sizeof err), EVENT_INVALID_JSON);
}

START_TEST(test_parse_requires_an_object)
{
    parse_fails("[]", EVENT_INVALID, "an event must be a JSON object");
    parse_fails("\"event\"", EVENT_INVALID, "an event must be a JSON object");
}

START_TEST(test_parse_requires_identity_fields)
{
    parse_with_fails("event_id", NULL, "event_id: required");
    parse_with_fails("created_at", NULL, "created_at: required");
    parse_with_fails("priority", NULL, "priority: required");
    parse_with_fails("data", NULL, "data: required");
    parse_with_fails("type", NULL, "type: required");
}

START_TEST(test_parse_rejects_bad_identity_values)
{
    parse_with_fails("event_id", "\"123\"", "event_id: must be a lowercase UUID");
    parse_with_fails("event_id", "\"0F8FAD5B-D9CB-469F-A165-70867728950E\"",
                     "event_id: must be a lowercase UUID");
    parse_with_fails("created_at", "\"yesterday\"", "created_at: must be an RFC 3339 time");
    parse_with_fails("created_at", "1795817455123", "created_at: must be a string");
    parse_with_fails("created_at", "\"2026-02-30T00:00:00Z\"", "created_at: must be an RFC 3339");
    parse_with_fails("broadcast_id", "\"x\"", "broadcast_id: must be a lowercase UUID");
    parse_with_fails("generation", "-1", "generation: must be an integer in 0..2147483647");
    parse_with_fails("generation", "\"1\"", "generation: must be an integer in 0..");
    parse_with_fails("generation", "1.5", "generation: must be an integer in 0..");
    parse_with_fails("generation", "2147483648", "generation: must be an integer in 0..");
    parse_with_fails("data", "[]", "data: must be an object");
    parse_with_fails("user_id", "\"topic:x\"", "user_id: must not start with \"topic:\"");
}

START_TEST(test_parse_ignores_unknown_fields)
{
    char *s = full_with("added_in_a_later_version", "{\"x\":1}");
    event ev;
    ck_assert_int_eq(event_parse(s, strlen(s), &ev, err, sizeof err), EVENT_OK);
    event_free(&ev);
    free(s);
}

START_TEST(test_parse_rejects_broadcast_id_on_a_topic_event)
{
    json_t *j = J(full_event);
    json_object_del(j, "user_id");
    json_object_set_new(j, "topic", json_string("news"));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    parse_fails(s, EVENT_INVALID, "broadcast_id: only for per-user events");
    free(s);
}

static void assert_events_equal(const event *a, const event *b)
{
    ck_assert_str_eq(a->event_id, b->event_id);
    ck_assert_str_eq(a->type, b->type);
    ck_assert_pstr_eq(a->user_id, b->user_id);
    ck_assert_pstr_eq(a->topic, b->topic);
    ck_assert(json_equal(a->data, b->data));
    ck_assert_int_eq(a->priority, b->priority);
    ck_assert_pstr_eq(a->category, b->category);
    ck_assert_int_eq(a->created_at, b->created_at);
    ck_assert_pstr_eq(a->idempotency_key, b->idempotency_key);
    ck_assert_str_eq(a->broadcast_id, b->broadcast_id);
    ck_assert_int_eq(a->generation, b->generation);
    ck_assert_int_eq(a->no_digest, b->no_digest);
}

START_TEST(test_serialize_then_parse_roundtrips)
{
    event a, b;
    ck_assert_int_eq(event_parse(full_event, strlen(full_event), &a, err, sizeof err), EVENT_OK);
    char *s;
    size_t n;
    ck_assert_int_eq(event_serialize(&a, &s, &n), 0);
    ck_assert_int_eq(n, strlen(s));
    ck_assert_int_eq(event_parse(s, n, &b, err, sizeof err), EVENT_OK);
    assert_events_equal(&a, &b);
    free(s);
    event_free(&a);
    event_free(&b);

    /* A topic event from a request, completed the way the gateway does it. */
    ck_assert_int_eq(request(J("{\"type\":\"news.published\",\"topic\":\"news\","
                               "\"data\":{\"t\":\"\xe2\x9c\x93 caf\xc3\xa9 \\\"q\\\"\"}}"),
                             &a, NULL),
                     0);
    ck_assert_int_eq(id_uuid_v4(a.event_id), 0);
    a.created_at = 1795817455123LL;
    ck_assert_int_eq(event_validate(&a, NULL, field, sizeof field, err, sizeof err), 0);
    ck_assert_int_eq(event_serialize(&a, &s, &n), 0);
    ck_assert_int_eq(event_parse(s, n, &b, err, sizeof err), EVENT_OK);
    assert_events_equal(&a, &b);
    free(s);
    event_free(&a);
    event_free(&b);
}

START_TEST(test_serialize_writes_contract_fields_and_omits_absent_ones)
{
    event ev;
    ck_assert_int_eq(request(J("{\"type\":\"a\",\"user_id\":\"u\"}"), &ev, NULL), 0);
    memcpy(ev.event_id, EVENT_ID, sizeof ev.event_id);
    ev.created_at = 0;
    char *s;
    ck_assert_int_eq(event_serialize(&ev, &s, NULL), 0);
    ck_assert_str_eq(s, "{\"event_id\":\"" EVENT_ID "\",\"type\":\"a\",\"user_id\":\"u\","
                        "\"data\":{},\"priority\":\"normal\","
                        "\"created_at\":\"1970-01-01T00:00:00.000Z\",\"generation\":0}");
    free(s);
    event_free(&ev);
}

START_TEST(test_digest_defaults_to_true_and_false_opts_out)
{
    event ev;
    ck_assert_int_eq(request(J("{\"type\":\"a\",\"user_id\":\"u\"}"), &ev, NULL), 0);
    ck_assert(!ev.no_digest);
    event_free(&ev);
    ck_assert_int_eq(request(body_with("digest", json_true()), &ev, NULL), 0);
    ck_assert(!ev.no_digest);
    event_free(&ev);
    ck_assert_int_eq(request(body_with("digest", json_false()), &ev, NULL), 0);
    ck_assert(ev.no_digest);
    event_free(&ev);
    ck_assert_int_eq(request(body_with("digest", json_null()), &ev, NULL), 0);
    ck_assert(!ev.no_digest);
    event_free(&ev);
}

START_TEST(test_digest_must_be_a_boolean)
{
    request_fails(body_with("digest", json_string("false")), "digest",
                  "digest: must be true or false");
    request_fails(body_with("digest", json_integer(0)), "digest", "digest: must be true or false");
}

START_TEST(test_digest_false_is_written_read_and_copied)
{
    event a, b, c;
    ck_assert_int_eq(request(body_with("digest", json_false()), &a, NULL), 0);
    memcpy(a.event_id, EVENT_ID, sizeof a.event_id);
    a.created_at = 0;
    char *s;
    size_t n;
    ck_assert_int_eq(event_serialize(&a, &s, &n), 0);
    ck_assert_str_eq(s, "{\"event_id\":\"" EVENT_ID "\",\"type\":\"order.shipped\","
                        "\"user_id\":\"u-42\",\"data\":{},\"priority\":\"normal\","
                        "\"created_at\":\"1970-01-01T00:00:00.000Z\",\"generation\":0,"
                        "\"digest\":false}");
    /* The tree writer and the direct writer make the same bytes. */
    json_t *tree = event_to_json(&a);
    char *dumped = json_dumps(tree, JSON_COMPACT);
    ck_assert_str_eq(dumped, s);
    free(dumped);
    json_decref(tree);
    a.created_at = 1795817455123LL;
    free(s);
    ck_assert_int_eq(event_serialize(&a, &s, &n), 0);
    ck_assert_int_eq(event_parse(s, n, &b, err, sizeof err), EVENT_OK);
    ck_assert(b.no_digest);
    ck_assert_int_eq(event_copy(&c, &b), 0);
    ck_assert(c.no_digest);
    free(s);
    event_free(&a);
    event_free(&b);
    event_free(&c);
}

START_TEST(test_api_key_id_is_written_read_and_copied_but_never_requested)
{
    event a, b, c;
    /* Only the gateway says which key published an event. */
    ck_assert_int_eq(request(body_with("api_key_id", json_integer(7)), &a, NULL), -1);
    ck_assert_str_eq(field, "api_key_id");
    ck_assert_int_eq(request(body_with("digest", json_true()), &a, NULL), 0);
    memcpy(a.event_id, EVENT_ID, sizeof a.event_id);
    a.created_at = 1795817455123LL;
    a.api_key_id = 7;
    char *s;
    size_t n;
    ck_assert_int_eq(event_serialize(&a, &s, &n), 0);
    ck_assert_ptr_nonnull(strstr(s, ",\"generation\":0,\"api_key_id\":7}"));
    json_t *tree = event_to_json(&a);
    char *dumped = json_dumps(tree, JSON_COMPACT);
    ck_assert_str_eq(dumped, s);
    free(dumped);
    json_decref(tree);
    ck_assert_int_eq(event_parse(s, n, &b, err, sizeof err), EVENT_OK);
    ck_assert_int_eq(b.api_key_id, 7);
    ck_assert_int_eq(event_copy(&c, &b), 0);
    ck_assert_int_eq(c.api_key_id, 7);
    free(s);
    event_free(&a);
    event_free(&b);
    event_free(&c);
}
END_TEST

START_TEST(test_serialize_fails_on_invalid_utf8)
{
    event ev = {0};
    ev.type = strdup("ab\xff");
    ev.user_id = strdup("u");
    char *s = (char *)"untouched";
    ck_assert_int_eq(event_serialize(&ev, &s, NULL), -1);
    ck_assert_ptr_null(s);
    event_free(&ev);
}

START_TEST(test_kafka_key_is_user_id_or_topic_prefixed)
{
    char key[EVENT_KAFKA_KEY_SIZE];
    event ev = {0};
    ev.user_id = "u-42";
    ck_assert_str_eq(event_kafka_key(&ev, key, sizeof key), "u-42");
    ev.user_id = NULL;
    ev.topic = "news";
    ck_assert_str_eq(event_kafka_key(&ev, key, sizeof key), "topic:news");
}

START_TEST(test_copy_is_independent_of_the_original)
{
    event a, b;
    ck_assert_int_eq(event_parse(full_event, strlen(full_event), &a, err, sizeof err), EVENT_OK);
    ck_assert_int_eq(event_copy(&b, &a), 0);
    event_free(&a);
    ck_assert_str_eq(b.type, "order.shipped");
    ck_assert_str_eq(b.event_id, EVENT_ID);
    ck_assert_str_eq(b.broadcast_id, OTHER_ID);
    ck_assert_ptr_nonnull(json_object_get(b.data, "order"));
    event_free(&b);
    event_free(&b); /* idempotent on an empty event */
}

START_TEST(test_validate_checks_events_built_in_code)
{
    event ev = {0};
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), -1);
    ck_assert_str_eq(err, "event_id: required");
    memcpy(ev.event_id, EVENT_ID, sizeof ev.event_id);
    ev.type = "a";
    ev.user_id = "u";
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), -1);
    ck_assert_str_eq(err, "data: required");
    ev.data = json_object();
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), -1);
    ck_assert_str_eq(field, "created_at");
    ev.created_at = 1;
    ev.priority = (event_priority)9;
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), -1);
    ck_assert_str_eq(field, "priority");
    ev.priority = EVENT_PRIORITY_LOW;
    ev.generation = -1;
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), -1);
    ck_assert_str_eq(field, "generation");
    ev.generation = 0;
    ck_assert_int_eq(event_validate(&ev, NULL, field, sizeof field, err, sizeof err), 0);
    json_decref(ev.data);
}

START_TEST(test_priority_names_roundtrip)
{
    static const char *const names[] = {"critical", "high", "normal", "low"};
    for (size_t i = 0; i < 4; i++) {
        event_priority p;
        ck_assert_int_eq(event_priority_parse(names[i], &p), 0);
        ck_assert_str_eq(event_priority_name(p), names[i]);
    }
    event_priority p;
    ck_assert_int_eq(event_priority_parse("Normal", &p), -1);
    ck_assert_str_eq(event_priority_name((event_priority)42), "normal");
    event zero = {0};
    ck_assert_int_eq(zero.priority, EVENT_PRIORITY_NORMAL);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_request_minimal_user_event_gets_defaults),
    TEST_ENTRY(test_request_accepts_every_optional_field),
    TEST_ENTRY(test_request_body_must_be_an_object),
    TEST_ENTRY(test_request_rejects_unknown_fields),
    TEST_ENTRY(test_request_reports_missing_type),
    TEST_ENTRY(test_request_reports_wrong_types_by_field),
    TEST_ENTRY(test_request_needs_exactly_one_of_user_id_and_topic),
    TEST_ENTRY(test_null_optional_fields_count_as_absent),
    TEST_ENTRY(test_type_must_be_a_lowercase_dotted_name),
    TEST_ENTRY(test_user_id_rules),
    TEST_ENTRY(test_topic_and_category_follow_the_name_rule),
    TEST_ENTRY(test_idempotency_key_must_be_printable_ascii),
    TEST_ENTRY(test_request_rejects_oversize_data),
    TEST_ENTRY(test_invalid_utf8_built_in_code_is_rejected),
    TEST_ENTRY(test_data_nested_too_deeply_is_rejected),
    TEST_ENTRY(test_strings_with_nul_are_rejected),
    TEST_ENTRY(test_parse_reads_every_field),
    TEST_ENTRY(test_parse_rejects_duplicate_keys),
    TEST_ENTRY(test_parse_rejects_text_that_is_not_json),
    TEST_ENTRY(test_parse_requires_an_object),
    TEST_ENTRY(test_parse_requires_identity_fields),
    TEST_ENTRY(test_parse_rejects_bad_identity_values),
    TEST_ENTRY(test_parse_ignores_unknown_fields),
    TEST_ENTRY(test_parse_rejects_broadcast_id_on_a_topic_event),
    TEST_ENTRY(test_serialize_then_parse_roundtrips),
    TEST_ENTRY(test_serialize_writes_contract_fields_and_omits_absent_ones),
    TEST_ENTRY(test_digest_defaults_to_true_and_false_opts_out),
    TEST_ENTRY(test_digest_must_be_a_boolean),
    TEST_ENTRY(test_digest_false_is_written_read_and_copied),
    TEST_ENTRY(test_api_key_id_is_written_read_and_copied_but_never_requested),
    TEST_ENTRY(test_serialize_fails_on_invalid_utf8),
    TEST_ENTRY(test_kafka_key_is_user_id_or_topic_prefixed),
    TEST_ENTRY(test_copy_is_independent_of_the_original),
    TEST_ENTRY(test_validate_checks_events_built_in_code),
    TEST_ENTRY(test_priority_names_roundtrip),
};

TEST_MAIN("event", cases)

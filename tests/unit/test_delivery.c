/* Unit tests of common/delivery and the address rules of common/validate. */
#include "testutil.h"

#include "delivery.h"
#include "validate.h"

#include <string.h>

#define EVENT_ID "0f8fad5b-d9cb-469f-a165-70867728950e"
#define KEY_ID                                                                                     \
    "d8191196-ed11-553d-bcee-6ed1ac5ae62f" /* key of EVENT_ID|email|ann@example.com|0              \
                                            */

static char err[512];

static const char email_delivery[] =
    "{\"idempotency_key\":\"" KEY_ID "\",\"event_id\":\"" EVENT_ID "\",\"user_id\":\"u-42\","
    "\"channel\":\"email\",\"attempt\":2,\"address\":\"ann@example.com\","
    "\"subject\":\"Your order shipped\",\"body\":\"Hello Ann,\\nit is on its way.\","
    "\"priority\":\"high\",\"category\":\"billing\",\"event_type\":\"order.shipped\","
    "\"created_at\":\"2026-11-27T22:10:55.123Z\",\"not_before\":\"2026-11-28T07:00:00.000Z\","
    "\"generation\":1}";

static const char push_delivery[] =
    "{\"idempotency_key\":\"" KEY_ID "\",\"event_id\":\"" EVENT_ID "\",\"user_id\":\"u-42\","
    "\"channel\":\"push\",\"attempt\":1,\"address\":\"fcm:token-abc_123\","
    "\"title\":\"Shipped\",\"body\":\"On its way\",\"data\":{\"order_id\":\"o-1\"},"
    "\"priority\":\"normal\",\"event_type\":\"order.shipped\","
    "\"created_at\":\"2026-11-27T22:10:55.123Z\"}";

static const char inapp_delivery[] =
    "{\"idempotency_key\":\"" KEY_ID "\",\"event_id\":\"" EVENT_ID "\",\"user_id\":\"u-42\","
    "\"channel\":\"inapp\",\"attempt\":1,\"address\":\"u-42\","
    "\"title\":\"Shipped\",\"body\":\"Your order is on its way\",\"data\":{\"order_id\":\"o-1\"},"
    "\"priority\":\"normal\",\"category\":\"orders\",\"event_type\":\"order.shipped\","
    "\"created_at\":\"2026-11-27T22:10:55.123Z\",\"generation\":0}";

static json_t *J(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    ck_assert_msg(j != NULL, "test JSON: %s", jerr.text);
    return j;
}

/* base with member key replaced by raw JSON text (removed when raw is NULL); free() it. */
static char *with(const char *base, const char *key, const char *raw)
{
    json_t *j = J(base);
    if (raw == NULL)
        json_object_del(j, key);
    else
        json_object_set_new(j, key, J(raw));
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void parse_fails(const char *json, delivery_status expect, const char *expect_err)
{
    delivery d;
    err[0] = '\0';
    ck_assert_int_eq(delivery_parse(json, strlen(json), &d, err, sizeof err), expect);
    ck_assert_str_eq(err, expect_err);
    ck_assert_ptr_null(d.body);
    ck_assert_ptr_null(d.user_id);
}

static void with_fails(const char *base, const char *key, const char *raw, const char *expect_err)
{
    char *s = with(base, key, raw);
    parse_fails(s, DELIVERY_INVALID, expect_err);
    free(s);
}

START_TEST(test_parse_reads_an_email_delivery)
{
    delivery d;
    ck_assert_int_eq(delivery_parse(email_delivery, strlen(email_delivery), &d, err, sizeof err),
                     DELIVERY_OK);
    ck_assert_str_eq(d.idempotency_key, KEY_ID);
    ck_assert_str_eq(d.event_id, EVENT_ID);
    ck_assert_str_eq(d.user_id, "u-42");
    ck_assert_int_eq(d.channel, DELIVERY_EMAIL);
    ck_assert_int_eq(d.attempt, 2);
    ck_assert_str_eq(d.address, "ann@example.com");
    ck_assert_str_eq(d.subject, "Your order shipped");
    ck_assert_str_eq(d.body, "Hello Ann,\nit is on its way.");
    ck_assert_ptr_null(d.title);
    ck_assert_ptr_null(d.data);
    ck_assert_int_eq(d.priority, EVENT_PRIORITY_HIGH);
    ck_assert_str_eq(d.category, "billing");
    ck_assert_str_eq(d.event_type, "order.shipped");
    ck_assert_int_eq(d.created_at, 1795817455123LL);
    ck_assert_int_eq(d.not_before, 1795849200000LL);
    ck_assert_int_eq(d.generation, 1);
    delivery_free(&d);
}

START_TEST(test_parse_reads_a_push_delivery)
{
    delivery d;
    ck_assert_int_eq(delivery_parse(push_delivery, strlen(push_delivery), &d, err, sizeof err),
                     DELIVERY_OK);
    ck_assert_int_eq(d.channel, DELIVERY_PUSH);
    ck_assert_str_eq(d.title, "Shipped");
    ck_assert_str_eq(json_string_value(json_object_get(d.data, "order_id")), "o-1");
    ck_assert_int_eq(d.not_before, 0);
    ck_assert_int_eq(d.generation, 0);
    ck_assert_ptr_null(d.category);
    delivery_free(&d);
}

static void assert_roundtrip(const char *json)
{
    delivery a, b;
    char *s;
    size_t n;
    ck_assert_int_eq(delivery_parse(json, strlen(json), &a, err, sizeof err), DELIVERY_OK);
    ck_assert_int_eq(delivery_serialize(&a, &s, &n), 0);
    ck_assert_int_eq(delivery_parse(s, n, &b, err, sizeof err), DELIVERY_OK);
    ck_assert_str_eq(a.idempotency_key, b.idempotency_key);
    ck_assert_str_eq(a.event_id, b.event_id);
    ck_assert_str_eq(a.user_id, b.user_id);
    ck_assert_int_eq(a.channel, b.channel);
    ck_assert_int_eq(a.attempt, b.attempt);
    ck_assert_str_eq(a.address, b.address);
    ck_assert_pstr_eq(a.subject, b.subject);
    ck_assert_str_eq(a.body, b.body);
    ck_assert_pstr_eq(a.title, b.title);
    ck_assert(a.data == NULL ? b.data == NULL : json_equal(a.data, b.data));
    ck_assert_int_eq(a.priority, b.priority);
    ck_assert_pstr_eq(a.category, b.category);
    ck_assert_str_eq(a.event_type, b.event_type);
    ck_assert_int_eq(a.created_at, b.created_at);
    ck_assert_int_eq(a.not_before, b.not_before);
    ck_assert_int_eq(a.generation, b.generation);
    free(s);
    delivery_free(&a);
    delivery_free(&b);
}

START_TEST(test_serialize_then_parse_roundtrips)
{
    assert_roundtrip(email_delivery);
    assert_roundtrip(push_delivery);
    char *sms = with(push_delivery, "channel", "\"sms\"");
    json_t *j = J(sms);
    json_object_del(j, "title");
    json_object_del(j, "data");
    json_object_set_new(j, "address", json_string("+14155550123"));
    json_object_set_new(j, "body", json_string("Caf\xc3\xa9 \xe2\x98\x95 \"quoted\"\ttab"));
    free(sms);
    sms = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_roundtrip(sms);
    free(sms);
}

START_TEST(test_serialize_writes_the_wire_form)
{
    delivery d = {0};
    memcpy(d.idempotency_key, KEY_ID, ID_UUID_SIZE);
    memcpy(d.event_id, EVENT_ID, ID_UUID_SIZE);
    d.user_id = "u";
    d.channel = DELIVERY_SMS;
    d.attempt = 1;
    d.address = "+14155550123";
    d.body = "hi";
    d.event_type = "a";
    d.created_at = 1;
    ck_assert_int_eq(delivery_validate(&d, err, sizeof err), 0);
    char *s;
    ck_assert_int_eq(delivery_serialize(&d, &s, NULL), 0);
    ck_assert_str_eq(s, "{\"idempotency_key\":\"" KEY_ID "\",\"event_id\":\"" EVENT_ID "\","
                        "\"user_id\":\"u\",\"channel\":\"sms\",\"attempt\":1,"
                        "\"address\":\"+14155550123\",\"body\":\"hi\",\"priority\":\"normal\","
                        "\"event_type\":\"a\",\"created_at\":\"1970-01-01T00:00:00.001Z\","
                        "\"generation\":0}");
    free(s);
}

START_TEST(test_parse_names_each_missing_required_field)
{
    static const char *const required[] = {"idempotency_key", "event_id",  "user_id", "channel",
                                           "attempt",         "address",   "body",    "priority",
                                           "event_type",      "created_at"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        char expect[64];
        snprintf(expect, sizeof expect, "%s: required", required[i]);
        with_fails(email_delivery, required[i], NULL, expect);
    }
}

START_TEST(test_parse_rejects_wrong_types_and_values)
{
    with_fails(email_delivery, "attempt", "\"1\"", "attempt: must be an integer in 1..2147483647");
    with_fails(email_delivery, "attempt", "0", "attempt: must be an integer in 1..2147483647");
    with_fails(email_delivery, "channel", "\"fax\"",
               "channel: must be one of email|sms|push|inapp");
    with_fails(email_delivery, "channel", "1", "channel: must be a string");
    with_fails(email_delivery, "priority", "\"urgent\"",
               "priority: must be one of critical|high|normal|low");
    with_fails(email_delivery, "event_id", "\"nope\"", "event_id: must be a lowercase UUID");
    with_fails(email_delivery, "idempotency_key", "\"k-1\"",
               "idempotency_key: must be a lowercase UUID");
    with_fails(email_delivery, "not_before", "\"tomorrow\"",
               "not_before: must be an RFC 3339 time like 2026-11-27T22:10:55.123Z");
    with_fails(email_delivery, "generation", "-1",
               "generation: must be an integer in 0..2147483647");
    with_fails(email_delivery, "event_type", "\"Order\"",
               "event_type: must be 1..128 characters of a-z 0-9 _ . -, starting with a letter or "
               "digit (like order.shipped)");
    with_fails(push_delivery, "data", "[1]", "data: must be an object");
    with_fails(email_delivery, "user_id", "\"topic:news\"",
               "user_id: must not start with \"topic:\" (reserved for topic broadcasts)");
}

START_TEST(test_parse_rejects_bad_json_and_duplicate_keys)
{
    parse_fails("{\"channel\":\"email\",\"channel\":\"sms\"}", DELIVERY_INVALID_JSON,
                "invalid JSON: duplicate object key near '\"channel\"' (line 1, column 28)");
    delivery d;
    ck_assert_int_eq(delivery_parse("not json", 8, &d, err, sizeof err), DELIVERY_INVALID_JSON);
    ck_assert_int_eq(delivery_parse("{\"body\":\"\xff\"}", 11, &d, err, sizeof err),
                     DELIVERY_INVALID_JSON);
    parse_fails("[]", DELIVERY_INVALID, "a delivery must be a JSON object");
}

START_TEST(test_parse_ignores_unknown_fields)
{
    char *s = with(email_delivery, "last_error", "\"smtp 451\"");
    delivery d;
    ck_assert_int_eq(delivery_parse(s, strlen(s), &d, err, sizeof err), DELIVERY_OK);
    delivery_free(&d);
    free(s);
}

START_TEST(test_address_is_checked_for_its_channel)
{
    with_fails(email_delivery, "address", "\"+14155550123\"",
               "address: must be an email address like name@example.com");
    char *sms = with(push_delivery, "channel", "\"sms\"");
    char *sms2 = with(sms, "title", NULL);
    char *sms3 = with(sms2, "data", NULL);
    with_fails(sms3, "address", "\"ann@example.com\"",
               "address: must be an E.164 number: + and 7..15 digits, like +14155550123");
    free(sms);
    free(sms2);
    free(sms3);
    with_fails(push_delivery, "address", "\"tok en\"",
               "address: must be a device token of 1..4096 printable ASCII characters without "
               "spaces");
}

START_TEST(test_subject_is_for_email_only_and_single_line)
{
    with_fails(email_delivery, "subject", "\"Hi\\r\\nBcc: everyone@example.com\"",
               "subject: must be a single line");
    with_fails(push_delivery, "subject", "\"Hi\"", "subject: only for email, not push");
    char subject[1002]; /* 999 bytes between the quotes */
    memset(subject, 's', sizeof subject);
    subject[0] = subject[1000] = '"';
    subject[1001] = '\0';
    with_fails(email_delivery, "subject", subject, "subject: must be at most 998 bytes");
}

START_TEST(test_title_and_data_are_for_push_and_inapp_only)
{
    with_fails(email_delivery, "title", "\"T\"", "title: only for push and inapp, not email");
    with_fails(email_delivery, "data", "{}", "data: only for push and inapp, not email");
}

START_TEST(test_parse_reads_an_inapp_delivery)
{
    delivery d;
    ck_assert_int_eq(delivery_parse(inapp_delivery, strlen(inapp_delivery), &d, err, sizeof err),
                     DELIVERY_OK);
    ck_assert_int_eq(d.channel, DELIVERY_INAPP);
    ck_assert_str_eq(d.address, "u-42");
    ck_assert_str_eq(d.title, "Shipped");
    ck_assert_str_eq(d.body, "Your order is on its way");
    ck_assert_str_eq(json_string_value(json_object_get(d.data, "order_id")), "o-1");
    delivery_free(&d);
    assert_roundtrip(inapp_delivery);

    /* Title and data are optional: a message may be its text alone. */
    char *bare = with(inapp_delivery, "title", NULL);
    char *bare2 = with(bare, "data", NULL);
    ck_assert_int_eq(delivery_parse(bare2, strlen(bare2), &d, err, sizeof err), DELIVERY_OK);
    ck_assert_ptr_null(d.title);
    ck_assert_ptr_null(d.data);
    delivery_free(&d);
    free(bare);
    free(bare2);
}

START_TEST(test_inapp_delivery_goes_to_its_own_user_only)
{
    with_fails(inapp_delivery, "address", "\"u-43\"", "address: must be the user id for inapp");
    with_fails(inapp_delivery, "address", "\"ann@example.com\"",
               "address: must be the user id for inapp");
    with_fails(inapp_delivery, "body", NULL, "body: required");
    with_fails(inapp_delivery, "body", "\"\"", "body: must not be empty");
    with_fails(inapp_delivery, "subject", "\"Hi\"", "subject: only for email, not inapp");
    with_fails(inapp_delivery, "title", "\"Two\\nlines\"", "title: must be a single line");
    with_fails(inapp_delivery, "data", "\"x\"", "data: must be an object");

    /* An inbox body is capped, so one message cannot fill a user's inbox page. */
    size_t n = DELIVERY_INAPP_BODY_MAX + 1;
    char *big = malloc(n + 3);
    ck_assert_ptr_nonnull(big);
    memset(big, 'b', n + 2);
    big[0] = big[n + 1] = '"';
    big[n + 2] = '\0';
    with_fails(inapp_delivery, "body", big, "body: must be at most 16384 bytes");
    free(big);
}

START_TEST(test_body_limits_depend_on_the_channel)
{
    with_fails(email_delivery, "body", "\"\"", "body: must not be empty");

    delivery d;
    ck_assert_int_eq(delivery_parse(push_delivery, strlen(push_delivery), &d, err, sizeof err),
                     DELIVERY_OK);
    free(d.body);
    d.body = calloc(1, 4098);
    memset(d.body, 'b', 4097);
    ck_assert_int_eq(delivery_validate(&d, err, sizeof err), -1);
    ck_assert_str_eq(err, "body: must be at most 4096 bytes");

    /* SMS counts characters: 1600 two-byte characters fit, 1601 do not. */
    d.channel = DELIVERY_SMS;
    free(d.title);
    d.title = NULL;
    json_decref(d.data);
    d.data = NULL;
    free(d.address);
    d.address = strdup("+14155550123");
    free(d.body);
    d.body = calloc(1, 2 * 1601 + 1);
    for (int i = 0; i < 1600; i++)
        memcpy(d.body + 2 * i, "\xc3\xa9", 2);
    ck_assert_int_eq(delivery_validate(&d, err, sizeof err), 0);
    memcpy(d.body + 2 * 1600, "\xc3\xa9", 2);
    ck_assert_int_eq(delivery_validate(&d, err, sizeof err), -1);
    ck_assert_str_eq(err, "body: must be at most 1600 characters for sms");

    strcpy(d.body, "bad \xff byte");
    ck_assert_int_eq(delivery_validate(&d, err, sizeof err), -1);
    ck_assert_str_eq(err, "body: invalid UTF-8");
    delivery_free(&d);
}

START_TEST(test_idempotency_key_is_deterministic_per_event_channel_address_generation)
{
    char k[ID_UUID_SIZE], other[ID_UUID_SIZE];
    ck_assert_int_eq(
        delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "ann@example.com", 0, k, sizeof k), 0);
    ck_assert_str_eq(k, KEY_ID);
    ck_assert(id_is_uuid(k));
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "ann@example.com", 0, other,
                                              sizeof other),
                     0);
    ck_assert_str_eq(k, other);

    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "ann@example.com", 1, other,
                                              sizeof other),
                     0);
    ck_assert_str_ne(k, other);
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_PUSH, "ann@example.com", 0, other,
                                              sizeof other),
                     0);
    ck_assert_str_ne(k, other);
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "bob@example.com", 0, other,
                                              sizeof other),
                     0);
    ck_assert_str_ne(k, other);
    ck_assert_int_eq(delivery_idempotency_key("7c9e6679-7425-40de-944b-e07fc1f90ae7",
                                              DELIVERY_EMAIL, "ann@example.com", 0, other,
                                              sizeof other),
                     0);
    ck_assert_str_ne(k, other);
}

START_TEST(test_idempotency_key_rejects_bad_inputs)
{
    char k[ID_UUID_SIZE];
    ck_assert_int_eq(delivery_idempotency_key("x", DELIVERY_EMAIL, "a@b.c", 0, k, sizeof k), -1);
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "", 0, k, sizeof k), -1);
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "a@b.c", -1, k, sizeof k),
                     -1);
    ck_assert_int_eq(
        delivery_idempotency_key(EVENT_ID, (delivery_channel)7, "a@b.c", 0, k, sizeof k), -1);
    ck_assert_int_eq(delivery_idempotency_key(EVENT_ID, DELIVERY_EMAIL, "a@b.c", 0, k, 36), -1);
}

START_TEST(test_email_rules)
{
    static const char *const good[] = {
        "ann@example.com",   "a.b+tag@sub.example.co.uk",    "x@localhost",
        "o'neil@example.ie", "j\xc3\xb6rg@m\xc3\xbcller.de", "user_name-1@ex-ample.com"};
    static const char *const bad[] = {"",
                                      "ann",
                                      "@example.com",
                                      "ann@",
                                      "a@b@c",
                                      "a b@example.com",
                                      ".ann@example.com",
                                      "ann.@example.com",
                                      "a..b@example.com",
                                      "ann@.example.com",
                                      "ann@example..com",
                                      "ann@example.com.",
                                      "ann@-example.com",
                                      "ann@example-.com",
                                      "\"ann\"@example.com",
                                      "<ann@example.com>",
                                      "ann@exa_mple.com",
                                      "ann@ex\xff.com"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(validate_email(good[i], strlen(good[i]), NULL, 0) == 0, "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(validate_email(bad[i], strlen(bad[i]), NULL, 0) == -1, "%s", bad[i]);
    char local[80];
    memset(local, 'l', 65);
    strcpy(local + 65, "@example.com");
    ck_assert_int_eq(validate_email(local, strlen(local), NULL, 0), -1);
    ck_assert_int_eq(validate_email("a\0b@example.com", 15, NULL, 0), -1);
}

START_TEST(test_phone_rules)
{
    static const char *const good[] = {"+14155550123", "+4930123456", "+1234567",
                                       "+123456789012345"};
    static const char *const bad[] = {"14155550123",       "+0123456789",  "+1 415 555", "+123456",
                                      "+1234567890123456", "+1415555012a", "+",          ""};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(validate_phone(good[i], strlen(good[i]), NULL, 0) == 0, "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(validate_phone(bad[i], strlen(bad[i]), NULL, 0) == -1, "%s", bad[i]);
}

START_TEST(test_push_token_rules)
{
    ck_assert_int_eq(validate_push_token("abc:DEF-123_x", 13, NULL, 0), 0);
    ck_assert_int_eq(validate_push_token("", 0, NULL, 0), -1);
    ck_assert_int_eq(validate_push_token("a b", 3, NULL, 0), -1);
    ck_assert_int_eq(validate_push_token("a\xc3\xa9", 3, NULL, 0), -1);
    char *big = malloc(4097);
    memset(big, 't', 4097);
    ck_assert_int_eq(validate_push_token(big, 4096, NULL, 0), 0);
    ck_assert_int_eq(validate_push_token(big, 4097, NULL, 0), -1);
    free(big);
}

START_TEST(test_utf8_validation_rejects_malformed_sequences)
{
    ck_assert(validate_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    ck_assert(!validate_utf8("\xc0\xaf", 2));         /* overlong '/' */
    ck_assert(!validate_utf8("\xed\xa0\x80", 3));     /* surrogate */
    ck_assert(!validate_utf8("\xf4\x90\x80\x80", 4)); /* beyond U+10FFFF */
    ck_assert(!validate_utf8("\xe2\x82", 2));         /* truncated */
    ck_assert(!validate_utf8("\x80", 1));             /* stray continuation */
    ck_assert_int_eq(validate_utf8_chars("caf\xc3\xa9", 5), 4);
    /* One character at a time, as the JSON writers step through a string. */
    ck_assert_uint_eq(validate_utf8_char("a", 1), 1);
    ck_assert_uint_eq(validate_utf8_char("\xc3\xa9x", 3), 2);
    ck_assert_uint_eq(validate_utf8_char("\xf0\x9f\x98\x80", 4), 4);
    ck_assert_uint_eq(validate_utf8_char("\xe2\x82\xac", 2), 0); /* cut by len */
    ck_assert_uint_eq(validate_utf8_char("\xc0\xaf", 2), 0);
    ck_assert_uint_eq(validate_utf8_char("\xed\xa0\x80", 3), 0);
    ck_assert_uint_eq(validate_utf8_char("", 0), 0);
}

START_TEST(test_channel_names_roundtrip)
{
    static const char *const names[] = {"email", "sms", "push", "inapp"};
    for (size_t i = 0; i < 4; i++) {
        delivery_channel c;
        ck_assert_int_eq(delivery_channel_parse(names[i], &c), 0);
        ck_assert_str_eq(delivery_channel_name(c), names[i]);
    }
    delivery_channel c;
    ck_assert_int_eq(delivery_channel_parse("fax", &c), -1);
    ck_assert_int_eq(delivery_channel_parse(NULL, &c), -1);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_parse_reads_an_email_delivery),
    TEST_ENTRY(test_parse_reads_a_push_delivery),
    TEST_ENTRY(test_serialize_then_parse_roundtrips),
    TEST_ENTRY(test_serialize_writes_the_wire_form),
    TEST_ENTRY(test_parse_names_each_missing_required_field),
    TEST_ENTRY(test_parse_rejects_wrong_types_and_values),
    TEST_ENTRY(test_parse_rejects_bad_json_and_duplicate_keys),
    TEST_ENTRY(test_parse_ignores_unknown_fields),
    TEST_ENTRY(test_address_is_checked_for_its_channel),
    TEST_ENTRY(test_subject_is_for_email_only_and_single_line),
    TEST_ENTRY(test_title_and_data_are_for_push_and_inapp_only),
    TEST_ENTRY(test_parse_reads_an_inapp_delivery),
    TEST_ENTRY(test_inapp_delivery_goes_to_its_own_user_only),
    TEST_ENTRY(test_body_limits_depend_on_the_channel),
    TEST_ENTRY(test_idempotency_key_is_deterministic_per_event_channel_address_generation),
    TEST_ENTRY(test_idempotency_key_rejects_bad_inputs),
    TEST_ENTRY(test_email_rules),
    TEST_ENTRY(test_phone_rules),
    TEST_ENTRY(test_push_token_rules),
    TEST_ENTRY(test_utf8_validation_rejects_malformed_sequences),
    TEST_ENTRY(test_channel_names_roundtrip),
};

TEST_MAIN("delivery", cases)

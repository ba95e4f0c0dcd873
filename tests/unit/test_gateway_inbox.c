/* Unit tests of producer/inbox: the cursor codec and the checks of list and mark requests. */
#include "testutil.h"

#include "inbox.h"

#include <string.h>

START_TEST(test_cursor_round_trips_a_position)
{
    inbox_cursor c = {"2026-12-01T12:00:00.123456Z", "5b3c1f2e-0a4d-4c6b-9e8f-1a2b3c4d5e6f"}, d;
    char text[INBOX_CURSOR_SIZE];
    ck_assert_int_eq(inbox_cursor_encode(&c, text, sizeof text), 0);
    ck_assert_int_eq(
        strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
        strlen(text));
    ck_assert_int_eq(inbox_cursor_decode(text, &d), 0);
    ck_assert_str_eq(d.created_at, c.created_at);
    ck_assert_str_eq(d.message_id, c.message_id);
}

START_TEST(test_cursor_refuses_what_it_did_not_make)
{
    inbox_cursor c = {"2026-12-01 12:00:00.123456", "5b3c1f2e-0a4d-4c6b-9e8f-1a2b3c4d5e6f"}, d;
    char text[INBOX_CURSOR_SIZE];
    ck_assert_int_eq(inbox_cursor_encode(&c, text, sizeof text), -1);
    ck_assert_int_eq(inbox_cursor_decode("", &d), -1);
    ck_assert_int_eq(inbox_cursor_decode("bm90IGEgY3Vyc29y", &d), -1); /* "not a cursor" */
    ck_assert_int_eq(inbox_cursor_decode("%%%", &d), -1);
    /* A valid layout with a bad id. */
    inbox_cursor good = {"2026-12-01T12:00:00.123456Z", "5b3c1f2e-0a4d-4c6b-9e8f-1a2b3c4d5e6f"};
    ck_assert_int_eq(inbox_cursor_encode(&good, text, sizeof text), 0);
    text[strlen(text) - 2] = text[strlen(text) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(inbox_cursor_decode(text, &d), -1);
}

typedef struct kv {
    const char *k, *v;
} kv;

static const char *lookup(void *ctx, const char *name)
{
    for (const kv *p = ctx; p->k != NULL; p++)
        if (strcmp(p->k, name) == 0)
            return p->v;
    return NULL;
}

START_TEST(test_query_defaults_and_filters)
{
    inbox_query q;
    inbox_error e;
    kv none[] = {{NULL, NULL}};
    ck_assert_int_eq(inbox_parse_query(lookup, none, &q, &e), 0);
    ck_assert_int_eq(q.page_size, 50);
    ck_assert_int_eq(q.filter.status, INBOX_STATUS_ALL);
    ck_assert_int_eq(q.filter.archived, INBOX_ARCHIVED_EXCLUDE);
    ck_assert_int_eq(q.direction, INBOX_FROM_TOP);
    kv some[] = {{"page_size", "200"},
                 {"status", "unseen"},
                 {"archived", "only"},
                 {"category", "billing"},
                 {"since", "2026-12-01T00:00:00Z"},
                 {NULL, NULL}};
    ck_assert_int_eq(inbox_parse_query(lookup, some, &q, &e), 0);
    ck_assert_int_eq(q.page_size, 200);
    ck_assert_int_eq(q.filter.status, INBOX_STATUS_UNSEEN);
    ck_assert_int_eq(q.filter.archived, INBOX_ARCHIVED_ONLY);
    ck_assert_str_eq(q.filter.category, "billing");
    ck_assert(q.filter.has_since && !q.filter.has_until);
}

static void bad_query(const char *k, const char *v, const char *field)
{
    inbox_query q;
    inbox_error e;
    kv one[] = {{k, v}, {NULL, NULL}};
    ck_assert_int_eq(inbox_parse_query(lookup, one, &q, &e), -1);
    ck_assert_str_eq(e.field, field);
}

START_TEST(test_query_names_the_bad_parameter)
{
    bad_query("page_size", "0", "page_size");
    bad_query("page_size", "201", "page_size");
    bad_query("page_size", "-1", "page_size");
    bad_query("page_size", "", "page_size");
    bad_query("status", "new", "status");
    bad_query("archived", "", "archived");
    bad_query("category", "Upper", "category");
    bad_query("until", "tomorrow", "until");
    bad_query("after", "x", "after");
}

static int parse_mark(const char *json, inbox_mark *m, inbox_error *e)
{
    json_t *body = json_loads(json, 0, NULL);
    ck_assert_ptr_nonnull(body);
    int rc = inbox_parse_mark(body, m, e);
    json_decref(body);
    return rc;
}

START_TEST(test_mark_takes_ids_or_all_with_a_filter)
{
    static inbox_mark m;
    inbox_error e;
    ck_assert_int_eq(
        parse_mark("{\"action\":\"read\",\"ids\":[\"5b3c1f2e-0a4d-4c6b-9e8f-1a2b3c4d5e6f\"]}", &m,
                   &e),
        0);
    ck_assert_int_eq(m.action, INBOX_MARK_READ);
    ck_assert(!m.all);
    ck_assert_uint_eq(m.nids, 1);
    ck_assert_int_eq(parse_mark("{\"action\":\"archived\",\"all\":true,\"filter\":{\"status\":"
                                "\"read\",\"until\":\"2026-12-01T00:00:00Z\"}}",
                                &m, &e),
                     0);
    ck_assert(m.all);
    ck_assert_int_eq(m.filter.status, INBOX_STATUS_READ);
    ck_assert_int_eq(m.filter.archived, INBOX_ARCHIVED_EXCLUDE);
    ck_assert(m.filter.has_until);
    /* Unarchiving all means the archived ones. */
    ck_assert_int_eq(parse_mark("{\"action\":\"unarchived\",\"all\":true}", &m, &e), 0);
    ck_assert_int_eq(m.filter.archived, INBOX_ARCHIVED_ONLY);
}

START_TEST(test_mark_names_the_bad_field)
{
    static inbox_mark m;
    inbox_error e;
    static const char *const bad[][2] = {
        {"{\"ids\":[]}", "action"},
        {"{\"action\":\"read\"}", "ids"},
        {"{\"action\":\"read\",\"ids\":[\"A5B3C1F2-0A4D-4C6B-9E8F-1A2B3C4D5E6F\"]}", "ids"},
        {"{\"action\":\"read\",\"ids\":[\"x\"],\"all\":true}", "ids"},
        {"{\"action\":\"read\",\"all\":1}", "all"},
        {"{\"action\":\"read\",\"all\":true,\"filter\":[]}", "filter"},
        {"{\"action\":\"read\",\"all\":true,\"filter\":{\"page_size\":\"1\"}}", "filter.page_size"},
        {"{\"action\":\"read\",\"all\":true,\"filter\":{\"since\":\"x\"}}", "filter.since"},
        {"{\"action\":\"read\",\"ids\":[\"5b3c1f2e-0a4d-4c6b-9e8f-1a2b3c4d5e6f\"],\"filter\":{}}",
         "filter"},
        {"{\"action\":\"read\",\"all\":true,\"why\":1}", "why"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(parse_mark(bad[i][0], &m, &e) == -1, "%s", bad[i][0]);
        ck_assert_msg(strcmp(e.field, bad[i][1]) == 0, "%s: %s", bad[i][0], e.field);
    }
    char big[16384];
    int o = snprintf(big, sizeof big, "{\"action\":\"seen\",\"ids\":[");
    for (int i = 0; i < 201; i++)
        o += snprintf(big + o, sizeof big - (size_t)o, "%s\"5b3c1f2e-0a4d-4c6b-9e8f-%012d\"",
                      i ? "," : "", i);
    snprintf(big + o, sizeof big - (size_t)o, "]}");
    ck_assert_int_eq(parse_mark(big, &m, &e), -1);
    ck_assert_str_eq(e.field, "ids");
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_cursor_round_trips_a_position),
    TEST_ENTRY(test_cursor_refuses_what_it_did_not_make),
    TEST_ENTRY(test_query_defaults_and_filters),
    TEST_ENTRY(test_query_names_the_bad_parameter),
    TEST_ENTRY(test_mark_takes_ids_or_all_with_a_filter),
    TEST_ENTRY(test_mark_names_the_bad_field),
};

TEST_MAIN("gateway_inbox", cases)

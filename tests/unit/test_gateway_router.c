/*
 * The gateway's router: path patterns, captures, 404 against 405, scopes.
 */
#include "router.h"
#include "testutil.h"

#include <string.h>

static const int h_events = 1, h_batch = 2, h_event = 3, h_user = 4, h_prefs = 5, h_sub = 6;

static const router_route table[] = {
    {"POST", "/v1/events", ROUTER_SCOPE_PUBLISH, &h_events},
    {"POST", "/v1/events/batch", ROUTER_SCOPE_PUBLISH, &h_batch},
    {"GET", "/v1/events/{event_id}", ROUTER_SCOPE_PUBLISH, &h_event},
    {"PUT", "/v1/users/{user_id}", ROUTER_SCOPE_ADMIN, &h_user},
    {"PUT", "/v1/users/{user_id}/preferences", ROUTER_SCOPE_ADMIN, &h_prefs},
    {"PUT", "/v1/topics/{topic}/subscribers/{user_id}", ROUTER_SCOPE_ADMIN, &h_sub},
};
#define N (sizeof table / sizeof table[0])

START_TEST(test_router_matches_literal_routes_before_captures)
{
    size_t idx = 99;
    router_params p;
    ck_assert_int_eq(router_match(table, N, "POST", "/v1/events/batch", &idx, &p), ROUTER_MATCH);
    ck_assert_ptr_eq(table[idx].handler, &h_batch);
    ck_assert_int_eq(router_match(table, N, "POST", "/v1/events", &idx, &p), ROUTER_MATCH);
    ck_assert_ptr_eq(table[idx].handler, &h_events);
    ck_assert_uint_eq(p.count, 0);
}
END_TEST

START_TEST(test_router_captures_and_decodes_each_segment)
{
    size_t idx;
    router_params p;
    ck_assert_int_eq(
        router_match(table, N, "PUT", "/v1/topics/news/subscribers/a%2Fb%40c", &idx, &p),
        ROUTER_MATCH);
    ck_assert_ptr_eq(table[idx].handler, &h_sub);
    ck_assert_str_eq(router_param(&p, "topic"), "news");
    ck_assert_str_eq(router_param(&p, "user_id"), "a/b@c");
    ck_assert_ptr_null(router_param(&p, "nope"));
}
END_TEST

START_TEST(test_router_ignores_the_query_string)
{
    size_t idx;
    router_params p;
    ck_assert_int_eq(router_match(table, N, "GET", "/v1/events/abc?verbose=1", &idx, &p),
                     ROUTER_MATCH);
    ck_assert_str_eq(router_param(&p, "event_id"), "abc");
}
END_TEST

START_TEST(test_router_tells_unknown_paths_from_wrong_methods)
{
    size_t idx;
    router_params p;
    ck_assert_int_eq(router_match(table, N, "GET", "/v1/nothing", &idx, &p), ROUTER_NOT_FOUND);
    ck_assert_int_eq(router_match(table, N, "GET", "/v1/events/", &idx, &p), ROUTER_BAD_PARAM);
    ck_assert_int_eq(router_match(table, N, "DELETE", "/v1/events", &idx, &p), ROUTER_BAD_METHOD);
    ck_assert_int_eq(router_match(table, N, "PUT", "/v1/users/u1/extra/deep", &idx, &p),
                     ROUTER_NOT_FOUND);
    ck_assert_int_eq(router_match(table, N, "PUT", "/v1/events/", &idx, &p), ROUTER_BAD_METHOD);
}
END_TEST

START_TEST(test_router_rejects_bad_escapes_and_nul)
{
    size_t idx;
    router_params p;
    ck_assert_int_eq(router_match(table, N, "PUT", "/v1/users/a%2", &idx, &p), ROUTER_BAD_PARAM);
    ck_assert_int_eq(router_match(table, N, "PUT", "/v1/users/a%zz", &idx, &p), ROUTER_BAD_PARAM);
    ck_assert_int_eq(router_match(table, N, "PUT", "/v1/users/a%00b", &idx, &p), ROUTER_BAD_PARAM);
    char longpath[2048] = "/v1/users/";
    memset(longpath + strlen(longpath), 'x', 1000);
    ck_assert_int_eq(router_match(table, N, "PUT", longpath, &idx, &p), ROUTER_BAD_PARAM);
}
END_TEST

START_TEST(test_router_scopes_admin_covers_publish)
{
    ck_assert(router_scope_allows(ROUTER_SCOPE_ADMIN, ROUTER_SCOPE_PUBLISH));
    ck_assert(router_scope_allows(ROUTER_SCOPE_ADMIN, ROUTER_SCOPE_ADMIN));
    ck_assert(router_scope_allows(ROUTER_SCOPE_PUBLISH, ROUTER_SCOPE_PUBLISH));
    ck_assert(!router_scope_allows(ROUTER_SCOPE_PUBLISH, ROUTER_SCOPE_ADMIN));
    ck_assert(router_scope_allows(ROUTER_SCOPE_NONE, ROUTER_SCOPE_NONE));
    ck_assert(!router_scope_allows(ROUTER_SCOPE_NONE, ROUTER_SCOPE_PUBLISH));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_router_matches_literal_routes_before_captures),
    TEST_ENTRY(test_router_captures_and_decodes_each_segment),
    TEST_ENTRY(test_router_ignores_the_query_string),
    TEST_ENTRY(test_router_tells_unknown_paths_from_wrong_methods),
    TEST_ENTRY(test_router_rejects_bad_escapes_and_nul),
    TEST_ENTRY(test_router_scopes_admin_covers_publish),
};

TEST_MAIN("gateway_router", cases)

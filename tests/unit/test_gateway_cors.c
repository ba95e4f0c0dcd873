/*
 * The gateway's CORS origins: what HERALD_GATEWAY_CORS_ORIGINS accepts and
 * which Origin headers a policy allows.
 */
#include "cors.h"
#include "testutil.h"

#include <string.h>

START_TEST(test_cors_accepts_exact_origins_star_and_empty)
{
    char err[256];
    static const char *const ok[] = {
        "",
        "*",
        "https://app.example.com",
        "http://127.0.0.1:8000",
        "https://a.example.com, https://b.example.com:8443",
        " http://localhost:3000 ,http://[::1]:8080",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(cors_check_origins(ok[i], err, sizeof err) == 0, "%s: %s", ok[i], err);
}
END_TEST

START_TEST(test_cors_refuses_paths_schemes_and_empty_entries)
{
    char err[256];
    static const char *const bad[] = {
        "https://app.example.com/",
        "https://app.example.com/inbox",
        "ftp://app.example.com",
        "app.example.com",
        "https://",
        "https://a.example.com,",
        "https://a.example.com,,https://b.example.com",
        "*, https://a.example.com",
        "https://a.example.com:0",
        "https://a.example.com:65536",
        "https://a.example.com:80x",
        "https://user@a.example.com",
        "null",
        " ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(cors_check_origins(bad[i], err, sizeof err) == -1, "accepted \"%s\"", bad[i]);
        ck_assert_msg(strncmp(err, "expected", 8) == 0, "%s: %s", bad[i], err);
        ck_assert_ptr_null(cors_policy_new(bad[i], err, sizeof err));
    }
}
END_TEST

START_TEST(test_cors_allows_only_listed_origins)
{
    char err[256];
    cors_policy *p =
        cors_policy_new("https://app.example.com, http://127.0.0.1:8000", err, sizeof err);
    ck_assert_msg(p != NULL, "%s", err);
    ck_assert(cors_policy_allows(p, "https://app.example.com"));
    ck_assert(cors_policy_allows(p, "HTTPS://App.Example.com"));
    ck_assert(cors_policy_allows(p, "http://127.0.0.1:8000"));
    ck_assert(!cors_policy_allows(p, "http://app.example.com"));
    ck_assert(!cors_policy_allows(p, "https://app.example.com:443"));
    ck_assert(!cors_policy_allows(p, "https://app.example.com.evil.test"));
    ck_assert(!cors_policy_allows(p, "http://127.0.0.1:8001"));
    ck_assert(!cors_policy_allows(p, "null"));
    ck_assert(!cors_policy_allows(p, ""));
    ck_assert(!cors_policy_allows(p, NULL));
    cors_policy_free(p);
}
END_TEST

START_TEST(test_cors_star_allows_any_well_formed_origin)
{
    char err[256];
    cors_policy *p = cors_policy_new("*", err, sizeof err);
    ck_assert_ptr_nonnull(p);
    ck_assert(cors_policy_allows(p, "https://anything.example"));
    ck_assert(cors_policy_allows(p, "http://127.0.0.1:5173"));
    /* Echoed back as a header: nothing but an origin's characters passes. */
    ck_assert(!cors_policy_allows(p, "https://a.example\r\nSet-Cookie: x=1"));
    ck_assert(!cors_policy_allows(p, "null"));
    ck_assert(!cors_policy_allows(p, "https://a.example/path"));
    cors_policy_free(p);
}
END_TEST

START_TEST(test_cors_empty_value_is_no_policy)
{
    char err[64] = "x";
    ck_assert_ptr_null(cors_policy_new("", err, sizeof err));
    ck_assert_str_eq(err, "");
    ck_assert_ptr_null(cors_policy_new(NULL, err, sizeof err));
    ck_assert(!cors_policy_allows(NULL, "https://app.example.com"));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_cors_accepts_exact_origins_star_and_empty),
    TEST_ENTRY(test_cors_refuses_paths_schemes_and_empty_entries),
    TEST_ENTRY(test_cors_allows_only_listed_origins),
    TEST_ENTRY(test_cors_star_allows_any_well_formed_origin),
    TEST_ENTRY(test_cors_empty_value_is_no_policy),
};

TEST_MAIN("gateway_cors", cases)

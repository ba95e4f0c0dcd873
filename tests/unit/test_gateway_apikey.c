/*
 * API keys: their shape, hash and displayable prefix.
 */
#include "apikey.h"
#include "testutil.h"

#include <string.h>

START_TEST(test_apikey_generate_gives_distinct_well_formed_keys)
{
    char a[APIKEY_SIZE], b[APIKEY_SIZE], err[128];
    ck_assert_int_eq(apikey_generate(a, err, sizeof err), 0);
    ck_assert_int_eq(apikey_generate(b, err, sizeof err), 0);
    ck_assert_uint_eq(strlen(a), APIKEY_LEN);
    ck_assert(strncmp(a, "hk_", 3) == 0);
    ck_assert(apikey_well_formed(a, strlen(a)));
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_apikey_well_formed_rejects_other_shapes)
{
    char k[APIKEY_SIZE], err[128];
    ck_assert_int_eq(apikey_generate(k, err, sizeof err), 0);
    ck_assert(!apikey_well_formed(k, strlen(k) - 1));
    k[10] = '/';
    ck_assert(!apikey_well_formed(k, strlen(k)));
    ck_assert(!apikey_well_formed("sk_0123456789012345678901234567890123456789abc", 46));
    ck_assert(!apikey_well_formed("", 0));
}
END_TEST

START_TEST(test_apikey_hash_is_sha256_of_the_text)
{
    unsigned char h[APIKEY_HASH_LEN], h2[APIKEY_HASH_LEN];
    apikey_hash("abc", 3, h);
    /* FIPS 180-2 example: SHA-256("abc") starts with ba7816bf. */
    ck_assert_uint_eq(h[0], 0xba);
    ck_assert_uint_eq(h[1], 0x78);
    ck_assert_uint_eq(h[2], 0x16);
    ck_assert_uint_eq(h[3], 0xbf);
    apikey_hash("abd", 3, h2);
    ck_assert(apikey_hash_equal(h, h));
    ck_assert(!apikey_hash_equal(h, h2));
}
END_TEST

START_TEST(test_apikey_prefix_and_scope_names)
{
    char p[APIKEY_PREFIX_SIZE];
    ck_assert_str_eq(apikey_prefix("hk_abcdefghijklmnop", p), "hk_abcdefgh");
    apikey_scope s;
    ck_assert_int_eq(apikey_scope_parse("admin", &s), 0);
    ck_assert_int_eq(s, APIKEY_SCOPE_ADMIN);
    ck_assert_int_eq(apikey_scope_parse("publish", &s), 0);
    ck_assert_int_eq(s, APIKEY_SCOPE_PUBLISH);
    ck_assert_int_eq(apikey_scope_parse("root", &s), -1);
    ck_assert_str_eq(apikey_scope_name(APIKEY_SCOPE_ADMIN), "admin");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_apikey_generate_gives_distinct_well_formed_keys),
    TEST_ENTRY(test_apikey_well_formed_rejects_other_shapes),
    TEST_ENTRY(test_apikey_hash_is_sha256_of_the_text),
    TEST_ENTRY(test_apikey_prefix_and_scope_names),
};

TEST_MAIN("gateway_apikey", cases)

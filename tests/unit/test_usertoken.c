/* Unit tests of common/usertoken: the user token's shape, signature and expiry. */
#include "testutil.h"

#include "ids.h"
#include "usertoken.h"

#include <string.h>

static const char secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET secret, strlen(secret)
#define NOW    1800000000LL

static void mint(const char *user, int64_t expires, char *out)
{
    char err[160];
    ck_assert_msg(usertoken_mint(SECRET, user, expires, out, USERTOKEN_SIZE, err, sizeof err) == 0,
                  "%s", err);
}

static usertoken_result verify(const char *token, char *user)
{
    int64_t exp = 0;
    return usertoken_verify(SECRET, token, strlen(token), NOW, user, &exp);
}

START_TEST(test_token_round_trips_its_user_and_expiry)
{
    char tok[USERTOKEN_SIZE], user[VALIDATE_USER_ID_MAX + 1];
    int64_t exp = 0;
    mint("u-42@example.com", NOW + 3600, tok);
    ck_assert_int_eq(strncmp(tok, "v1.", 3), 0);
    ck_assert_int_eq(usertoken_verify(SECRET, tok, strlen(tok), NOW, user, &exp), USERTOKEN_OK);
    ck_assert_str_eq(user, "u-42@example.com");
    ck_assert_int_eq(exp, NOW + 3600);
}

START_TEST(test_token_has_the_documented_format)
{
    char tok[USERTOKEN_SIZE], want[USERTOKEN_SIZE], sig[64];
    unsigned char mac[ID_SHA256_LEN];
    mint("u42", 1900000000, tok);
    /* base64url("u42") is "dTQy"; the signature covers the text before the last dot. */
    const char *head = "v1.dTQy.1900000000";
    id_hmac_sha256(SECRET, head, strlen(head), mac);
    ck_assert_int_eq(id_base64url_encode(mac, sizeof mac, sig, sizeof sig), 0);
    snprintf(want, sizeof want, "%s.%s", head, sig);
    ck_assert_str_eq(tok, want);
}

START_TEST(test_token_past_its_expiry_is_expired)
{
    char tok[USERTOKEN_SIZE], user[VALIDATE_USER_ID_MAX + 1];
    mint("u42", NOW, tok);
    ck_assert_int_eq(verify(tok, user), USERTOKEN_EXPIRED);
    mint("u42", NOW + 1, tok);
    ck_assert_int_eq(verify(tok, user), USERTOKEN_OK);
}

START_TEST(test_token_with_a_changed_part_is_forged)
{
    char tok[USERTOKEN_SIZE], user[VALIDATE_USER_ID_MAX + 1], other[USERTOKEN_SIZE];
    mint("u42", NOW + 60, tok);
    /* Another user's id under the same signature. */
    mint("u43", NOW + 60, other);
    memcpy(other + strlen(other) - 43, tok + strlen(tok) - 43, 43);
    ck_assert_int_eq(verify(other, user), USERTOKEN_BAD_SIGNATURE);
    /* A longer life. */
    snprintf(other, sizeof other, "%s", tok);
    other[8] = other[8] == '9' ? '8' : '9';
    ck_assert_int_eq(verify(other, user), USERTOKEN_BAD_SIGNATURE);
    /* A flipped signature character. */
    snprintf(other, sizeof other, "%s", tok);
    other[strlen(other) - 1] = other[strlen(other) - 1] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(other, user), USERTOKEN_BAD_SIGNATURE);
    /* Another secret. */
    int64_t exp;
    ck_assert_int_eq(usertoken_verify("another secret of thirty-two bytes!", 35, tok, strlen(tok),
                                      NOW, user, &exp),
                     USERTOKEN_BAD_SIGNATURE);
}

START_TEST(test_token_of_another_version_or_shape_is_malformed)
{
    char tok[USERTOKEN_SIZE], user[VALIDATE_USER_ID_MAX + 1], other[USERTOKEN_SIZE];
    mint("u42", NOW + 60, tok);
    snprintf(other, sizeof other, "v2%s", tok + 2);
    ck_assert_int_eq(verify(other, user), USERTOKEN_MALFORMED);
    ck_assert_int_eq(verify("", user), USERTOKEN_MALFORMED);
    ck_assert_int_eq(verify("v1.", user), USERTOKEN_MALFORMED);
    ck_assert_int_eq(verify("v1.dTQy.1900000000", user), USERTOKEN_MALFORMED);
    ck_assert_int_eq(verify("hk_abcdefghijklmnopqrstuvwxyz", user), USERTOKEN_MALFORMED);
    snprintf(other, sizeof other, "%s.", tok);
    ck_assert_int_eq(verify(other, user), USERTOKEN_MALFORMED);
}

START_TEST(test_mint_refuses_an_invalid_user_id)
{
    char tok[USERTOKEN_SIZE], err[160];
    ck_assert_int_eq(usertoken_mint(SECRET, "a b", NOW, tok, sizeof tok, err, sizeof err), -1);
    ck_assert_int_eq(usertoken_mint(SECRET, "", NOW, tok, sizeof tok, err, sizeof err), -1);
    ck_assert_int_eq(usertoken_mint(SECRET, "u42", NOW, tok, 20, err, sizeof err), -1);
}

START_TEST(test_secret_needs_thirty_two_bytes)
{
    char err[160];
    ck_assert_int_eq(usertoken_check_secret(secret, err, sizeof err), 0);
    ck_assert_int_eq(usertoken_check_secret("short", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "32"));
    ck_assert_int_eq(usertoken_check_secret("", err, sizeof err), -1);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_token_round_trips_its_user_and_expiry),
    TEST_ENTRY(test_token_has_the_documented_format),
    TEST_ENTRY(test_token_past_its_expiry_is_expired),
    TEST_ENTRY(test_token_with_a_changed_part_is_forged),
    TEST_ENTRY(test_token_of_another_version_or_shape_is_malformed),
    TEST_ENTRY(test_mint_refuses_an_invalid_user_id),
    TEST_ENTRY(test_secret_needs_thirty_two_bytes),
};

TEST_MAIN("usertoken", cases)

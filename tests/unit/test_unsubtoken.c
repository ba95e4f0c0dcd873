/* Unit tests of common/unsubtoken and the signedtoken shape under it. */
#include "testutil.h"

#include "ids.h"
#include "unsubtoken.h"

#include <string.h>

static const char secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET secret, strlen(secret)
#define NOW    1800000000LL

static void mint(const char *user, const char *category, delivery_channel ch, int64_t expires,
                 char *out)
{
    char err[160];
    ck_assert_msg(unsubtoken_mint(SECRET, user, category, ch, expires, out, UNSUBTOKEN_SIZE, err,
                                  sizeof err) == 0,
                  "%s", err);
}

static signedtoken_result verify(const char *token, unsubtoken *t)
{
    return unsubtoken_verify(SECRET, token, strlen(token), NOW, t);
}

START_TEST(test_token_round_trips_user_category_channel_and_expiry)
{
    char tok[UNSUBTOKEN_SIZE];
    unsubtoken t;
    mint("u-42@example.com", "marketing", DELIVERY_EMAIL, NOW + 86400, tok);
    ck_assert_int_eq(strncmp(tok, "u1.", 3), 0);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_OK);
    ck_assert_str_eq(t.user_id, "u-42@example.com");
    ck_assert_str_eq(t.category, "marketing");
    ck_assert_int_eq(t.channel, DELIVERY_EMAIL);
    ck_assert_int_eq(t.expires_unix, NOW + 86400);
}

START_TEST(test_token_has_the_documented_format)
{
    char tok[UNSUBTOKEN_SIZE], want[UNSUBTOKEN_SIZE], sig[64], b64[64];
    unsigned char mac[ID_SHA256_LEN];
    mint("u42", "news", DELIVERY_SMS, 1900000000, tok);
    ck_assert_int_eq(id_base64url_encode("u42|news|sms", 12, b64, sizeof b64), 0);
    char head[128];
    snprintf(head, sizeof head, "u1.%s.1900000000", b64);
    id_hmac_sha256(SECRET, head, strlen(head), mac);
    ck_assert_int_eq(id_base64url_encode(mac, sizeof mac, sig, sizeof sig), 0);
    snprintf(want, sizeof want, "%s.%s", head, sig);
    ck_assert_str_eq(tok, want);
    /* Only URL-safe characters: it goes into a query string as it is. */
    ck_assert_uint_eq(
        strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
        strlen(tok));
}

START_TEST(test_longest_names_fit_the_token_size)
{
    char user[VALIDATE_USER_ID_MAX + 1], cat[VALIDATE_CATEGORY_MAX + 1], tok[UNSUBTOKEN_SIZE];
    unsubtoken t;
    memset(user, 'u', VALIDATE_USER_ID_MAX);
    user[VALIDATE_USER_ID_MAX] = '\0';
    memset(cat, 'c', VALIDATE_CATEGORY_MAX);
    cat[VALIDATE_CATEGORY_MAX] = '\0';
    mint(user, cat, DELIVERY_INAPP, 999999999999LL, tok);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_OK);
    ck_assert_str_eq(t.user_id, user);
    ck_assert_str_eq(t.category, cat);
}

START_TEST(test_token_past_its_expiry_is_expired_and_still_says_what_it_was_for)
{
    char tok[UNSUBTOKEN_SIZE];
    unsubtoken t;
    mint("u42", "marketing", DELIVERY_EMAIL, NOW, tok);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_EXPIRED);
    ck_assert_str_eq(t.category, "marketing");
    mint("u42", "marketing", DELIVERY_EMAIL, NOW + 1, tok);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_OK);
}

START_TEST(test_token_with_a_changed_part_is_forged)
{
    char tok[UNSUBTOKEN_SIZE], other[UNSUBTOKEN_SIZE];
    unsubtoken t;
    mint("u42", "marketing", DELIVERY_EMAIL, NOW + 60, tok);
    /* Another category under the same signature. */
    mint("u42", "billing", DELIVERY_EMAIL, NOW + 60, other);
    memcpy(other + strlen(other) - SIGNEDTOKEN_SIG_LEN, tok + strlen(tok) - SIGNEDTOKEN_SIG_LEN,
           SIGNEDTOKEN_SIG_LEN);
    ck_assert_int_eq(verify(other, &t), SIGNEDTOKEN_BAD_SIGNATURE);
    /* A flipped signature character. */
    snprintf(other, sizeof other, "%s", tok);
    other[strlen(other) - 1] = other[strlen(other) - 1] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(other, &t), SIGNEDTOKEN_BAD_SIGNATURE);
    /* Another secret. */
    ck_assert_int_eq(
        unsubtoken_verify("another secret of thirty-two bytes!", 35, tok, strlen(tok), NOW, &t),
        SIGNEDTOKEN_BAD_SIGNATURE);
}

START_TEST(test_a_user_token_is_not_an_unsubscribe_token)
{
    /* The same payload shape under the same secret, signed as version v1. */
    char tok[UNSUBTOKEN_SIZE];
    unsubtoken t;
    ck_assert_int_eq(
        signedtoken_mint("v1.", SECRET, "u42|marketing|email", 19, NOW + 60, tok, sizeof tok), 0);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_MALFORMED);
    tok[0] = 'u'; /* now shaped like ours, but signed as the other kind */
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_BAD_SIGNATURE);
}

START_TEST(test_token_of_another_shape_is_malformed)
{
    char tok[UNSUBTOKEN_SIZE], other[UNSUBTOKEN_SIZE];
    unsubtoken t;
    mint("u42", "marketing", DELIVERY_EMAIL, NOW + 60, tok);
    ck_assert_int_eq(verify("", &t), SIGNEDTOKEN_MALFORMED);
    ck_assert_int_eq(verify("u1.", &t), SIGNEDTOKEN_MALFORMED);
    ck_assert_int_eq(verify("u1.dTQy.1900000000", &t), SIGNEDTOKEN_MALFORMED);
    snprintf(other, sizeof other, "%s.", tok);
    ck_assert_int_eq(verify(other, &t), SIGNEDTOKEN_MALFORMED);
    /* Signed, but not three names. */
    ck_assert_int_eq(
        signedtoken_mint("u1.", SECRET, "u42|marketing", 13, NOW + 60, tok, sizeof tok), 0);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_MALFORMED);
    ck_assert_int_eq(
        signedtoken_mint("u1.", SECRET, "u42|Marketing|email", 19, NOW + 60, tok, sizeof tok), 0);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_MALFORMED);
    ck_assert_int_eq(
        signedtoken_mint("u1.", SECRET, "u42|marketing|fax", 17, NOW + 60, tok, sizeof tok), 0);
    ck_assert_int_eq(verify(tok, &t), SIGNEDTOKEN_MALFORMED);
}

START_TEST(test_mint_refuses_invalid_names_and_small_buffers)
{
    char tok[UNSUBTOKEN_SIZE], err[160];
    ck_assert_int_eq(unsubtoken_mint(SECRET, "a b", "news", DELIVERY_EMAIL, NOW, tok, sizeof tok,
                                     err, sizeof err),
                     -1);
    ck_assert_int_eq(unsubtoken_mint(SECRET, "u42", "News", DELIVERY_EMAIL, NOW, tok, sizeof tok,
                                     err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "category"));
    ck_assert_int_eq(
        unsubtoken_mint(SECRET, "u42", "news", DELIVERY_EMAIL, NOW, tok, 40, err, sizeof err), -1);
}

START_TEST(test_secret_needs_thirty_two_bytes)
{
    char err[160];
    ck_assert_int_eq(signedtoken_check_secret(secret, err, sizeof err), 0);
    ck_assert_int_eq(signedtoken_check_secret("short", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "32"));
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_token_round_trips_user_category_channel_and_expiry),
    TEST_ENTRY(test_token_has_the_documented_format),
    TEST_ENTRY(test_longest_names_fit_the_token_size),
    TEST_ENTRY(test_token_past_its_expiry_is_expired_and_still_says_what_it_was_for),
    TEST_ENTRY(test_token_with_a_changed_part_is_forged),
    TEST_ENTRY(test_a_user_token_is_not_an_unsubscribe_token),
    TEST_ENTRY(test_token_of_another_shape_is_malformed),
    TEST_ENTRY(test_mint_refuses_invalid_names_and_small_buffers),
    TEST_ENTRY(test_secret_needs_thirty_two_bytes),
};

TEST_MAIN("unsubtoken", cases)

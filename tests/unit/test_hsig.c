/* Unit tests of common/hsig: the Herald-Signature header. */
#include "testutil.h"

#include "hsig.h"
#include "ids.h"

#include <stdio.h>
#include <string.h>

static const char secret[] = "whsec-test-0123456789";
#define SECRET secret, strlen(secret)
#define NOW    1800000000000LL

static const char body[] = "{\"id\":\"c1\",\"type\":\"delivery.sent\"}";
#define BODY body, strlen(body)

START_TEST(test_signature_is_the_documented_hmac)
{
    char sig[HSIG_SIZE], want[HSIG_SIZE], msg[256], hex[65];
    unsigned char mac[ID_SHA256_LEN];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), 0);
    snprintf(msg, sizeof msg, "%lld.%s", NOW, body);
    id_hmac_sha256(SECRET, msg, strlen(msg), mac);
    snprintf(want, sizeof want, "t=%lld,v1=%s", NOW, id_hex(mac, sizeof mac, hex));
    ck_assert_str_eq(sig, want);
}

START_TEST(test_signature_round_trips)
{
    char sig[HSIG_SIZE];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), 0);
    ck_assert_int_eq(hsig_verify(sig, SECRET, BODY, NOW + 1000, HSIG_TOLERANCE_MS), HSIG_OK);
    ck_assert_int_eq(hsig_verify(sig, SECRET, "", 0, NOW, HSIG_TOLERANCE_MS), HSIG_MISMATCH);
    ck_assert_int_eq(hsig_verify(sig, "other", 5, BODY, NOW, HSIG_TOLERANCE_MS), HSIG_MISMATCH);
}

START_TEST(test_a_changed_body_or_time_does_not_verify)
{
    char sig[HSIG_SIZE], forged[HSIG_SIZE + 8];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), 0);
    char other[sizeof body];
    memcpy(other, body, sizeof body);
    other[8] = 'X';
    ck_assert_int_eq(hsig_verify(sig, SECRET, other, strlen(other), NOW, HSIG_TOLERANCE_MS),
                     HSIG_MISMATCH);
    /* The same MAC with another timestamp: the time is signed too. */
    snprintf(forged, sizeof forged, "t=%lld%s", NOW + 1, strchr(sig, ','));
    ck_assert_int_eq(hsig_verify(forged, SECRET, BODY, NOW, HSIG_TOLERANCE_MS), HSIG_MISMATCH);
}

START_TEST(test_an_old_or_future_timestamp_is_expired)
{
    char sig[HSIG_SIZE];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), 0);
    ck_assert_int_eq(hsig_verify(sig, SECRET, BODY, NOW + HSIG_TOLERANCE_MS + 1, HSIG_TOLERANCE_MS),
                     HSIG_EXPIRED);
    ck_assert_int_eq(hsig_verify(sig, SECRET, BODY, NOW - HSIG_TOLERANCE_MS - 1, HSIG_TOLERANCE_MS),
                     HSIG_EXPIRED);
    ck_assert_int_eq(hsig_verify(sig, SECRET, BODY, NOW + HSIG_TOLERANCE_MS, HSIG_TOLERANCE_MS),
                     HSIG_OK);
}

START_TEST(test_any_of_several_signatures_is_enough)
{
    char sig[HSIG_SIZE], two[2 * HSIG_SIZE];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), 0);
    snprintf(two, sizeof two, "t=%lld, v1=%064d, v0=legacy, %s", NOW, 0, strchr(sig, 'v'));
    ck_assert_int_eq(hsig_verify(two, SECRET, BODY, NOW, HSIG_TOLERANCE_MS), HSIG_OK);
}

START_TEST(test_malformed_headers_are_refused)
{
    static const char *const bad[] = {
        "",
        "v1=0000000000000000000000000000000000000000000000000000000000000000",
        "t=1800000000000",
        "t=abc,v1=0000000000000000000000000000000000000000000000000000000000000000",
        "t=1800000000000,v1=00",
        "t=1800000000000,v1=zz00000000000000000000000000000000000000000000000000000000000000",
        "t=1,t=2,v1=0000000000000000000000000000000000000000000000000000000000000000",
        "t=99999999999999999999999,v1="
        "0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(hsig_verify(bad[i], SECRET, BODY, NOW, HSIG_TOLERANCE_MS) == HSIG_MALFORMED,
                      "accepted: %s", bad[i]);
    ck_assert_int_eq(hsig_verify(NULL, SECRET, BODY, NOW, HSIG_TOLERANCE_MS), HSIG_MALFORMED);
}

START_TEST(test_sign_refuses_a_short_buffer)
{
    char sig[20];
    ck_assert_int_eq(hsig_sign(SECRET, NOW, BODY, sig, sizeof sig), -1);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_signature_is_the_documented_hmac),
    TEST_ENTRY(test_signature_round_trips),
    TEST_ENTRY(test_a_changed_body_or_time_does_not_verify),
    TEST_ENTRY(test_an_old_or_future_timestamp_is_expired),
    TEST_ENTRY(test_any_of_several_signatures_is_enough),
    TEST_ENTRY(test_malformed_headers_are_refused),
    TEST_ENTRY(test_sign_refuses_a_short_buffer),
};

TEST_MAIN("hsig", cases)

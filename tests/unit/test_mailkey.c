/* Unit tests of common/mailkey: Message-ID and VERP addresses of a delivery. */
#include "testutil.h"

#include "mailkey.h"

#include <string.h>

#define KEY "1b4e28ba-2fa1-41d2-883f-0016d3cca427"

START_TEST(test_message_id_and_verp_address_round_trip)
{
    char key[ID_UUID_SIZE], addr[MAILKEY_ADDRESS_MAX + 1];
    static const char mid[] = " <" KEY "@herald> ";
    ck_assert_int_eq(mailkey_from_message_id(mid, strlen(mid), key), 0);
    ck_assert_str_eq(key, KEY);
    ck_assert_int_eq(mailkey_from_message_id("<abc@herald>", 12, key), -1);
    ck_assert_int_eq(mailkey_from_message_id("<" KEY "@other>", 44, key), -1);
    ck_assert_int_eq(mailkey_verp_address("bounces@mail.example.com", KEY, addr, sizeof addr), 0);
    ck_assert_str_eq(addr, "bounces+" KEY "@mail.example.com");
    ck_assert_int_eq(mailkey_from_verp("bounces@mail.example.com", addr, strlen(addr), key), 0);
    ck_assert_str_eq(key, KEY);
    static const char typed[] = "rfc822; <Bounces+" KEY "@Mail.Example.com>";
    ck_assert_int_eq(mailkey_from_verp("bounces@mail.example.com", typed, strlen(typed), key), 0);
    ck_assert_int_eq(mailkey_from_verp("bounces@other.example.com", addr, strlen(addr), key), -1);
    ck_assert_int_eq(mailkey_from_verp("b@mail.example.com", addr, strlen(addr), key), -1);
    ck_assert_int_eq(mailkey_check_bounce_address("bounces@mail.example.com", NULL, 0), 0);
    ck_assert_int_eq(mailkey_check_bounce_address("bounces", NULL, 0), -1);
    /* LOCAL + "+" + 36 must fit a local part's 64 bytes */
    ck_assert_int_eq(
        mailkey_check_bounce_address("b23456789012345678901234567@example.com", NULL, 0), 0);
    ck_assert_int_eq(
        mailkey_check_bounce_address("b234567890123456789012345678@example.com", NULL, 0), -1);
    ck_assert_int_eq(mailkey_check_bounce_address("@c", NULL, 0), -1);
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_message_id_and_verp_address_round_trip),
};

TEST_MAIN("mailkey", cases)

/* Unit tests of common/ids: UUIDs v4/v5, random tokens, SHA-1, SHA-256 and HMAC vectors. */
#include "testutil.h"

#include "ids.h"

#include <string.h>

static const char fips_448[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

static void sha256_is(const void *data, size_t len, const char *hex)
{
    char out[ID_SHA256_HEX_SIZE];
    ck_assert_str_eq(id_sha256_hex(data, len, out), hex);
}

START_TEST(test_sha256_matches_fips_vectors)
{
    sha256_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_is(fips_448, strlen(fips_448),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

START_TEST(test_sha256_pads_at_block_boundaries)
{
    static char a[1000000];
    memset(a, 'a', sizeof a);
    /* 55 bytes leave exactly room for the length; 56 and 64 need a second block. */
    sha256_is(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    sha256_is(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
    sha256_is(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
    sha256_is(a, sizeof a, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

START_TEST(test_sha1_matches_fips_vectors)
{
    unsigned char d[ID_SHA1_LEN];
    char hex[2 * ID_SHA1_LEN + 1];
    id_sha1("abc", 3, d);
    ck_assert_str_eq(id_hex(d, sizeof d, hex), "a9993e364706816aba3e25717850c26c9cd0d89d");
    id_sha1(fips_448, strlen(fips_448), d);
    ck_assert_str_eq(id_hex(d, sizeof d, hex), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

static void hmac_is(const void *key, size_t keylen, const void *data, size_t len, const char *hex)
{
    unsigned char mac[ID_SHA256_LEN];
    char out[ID_SHA256_HEX_SIZE];
    id_hmac_sha256(key, keylen, data, len, mac);
    ck_assert_str_eq(id_hex(mac, sizeof mac, out), hex);
}

START_TEST(test_hmac_sha256_matches_rfc4231_vectors)
{
    unsigned char k[131], d[50];
    memset(k, 0x0b, 20);
    hmac_is(k, 20, "Hi There", 8,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_is("Jefe", 4, "what do ya want for nothing?", 28,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k, 0xaa, 20);
    memset(d, 0xdd, sizeof d);
    hmac_is(k, 20, d, sizeof d, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
    for (int i = 0; i < 25; i++)
        k[i] = (unsigned char)(i + 1);
    memset(d, 0xcd, sizeof d);
    hmac_is(k, 25, d, sizeof d, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

START_TEST(test_hmac_sha256_hashes_a_key_longer_than_a_block)
{
    static const char d6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    static const char d7[] = "This is a test using a larger than block-size key and a larger than "
                             "block-size data. The key needs to be hashed before being used by "
                             "the HMAC algorithm.";
    unsigned char k[131];
    memset(k, 0xaa, sizeof k);
    hmac_is(k, sizeof k, d6, strlen(d6),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    hmac_is(k, sizeof k, d7, strlen(d7),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

START_TEST(test_base64url_round_trips_and_refuses_non_canonical_text)
{
    char text[16];
    unsigned char raw[8];
    size_t n = 0;
    ck_assert_int_eq(id_base64url_encode("\xfb\xff", 2, text, sizeof text), 0);
    ck_assert_str_eq(text, "-_8");
    ck_assert_int_eq(id_base64url_decode(text, strlen(text), raw, sizeof raw, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(memcmp(raw, "\xfb\xff", 2), 0);
    ck_assert_int_eq(id_base64url_decode("", 0, raw, sizeof raw, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(id_base64url_decode("-_9", 3, raw, sizeof raw, &n), -1); /* stray bits */
    ck_assert_int_eq(id_base64url_decode("-_8=", 4, raw, sizeof raw, &n), -1);
    ck_assert_int_eq(id_base64url_decode("a", 1, raw, sizeof raw, &n), -1);
    ck_assert_int_eq(id_base64url_decode("a+b/", 4, raw, sizeof raw, &n), -1);
    ck_assert_int_eq(id_base64url_decode("AAAAAAAAAAAA", 12, raw, sizeof raw, &n), -1);
    ck_assert_int_eq(id_base64url_encode("abc", 3, text, 4), -1);
}

START_TEST(test_equal_ct_compares_every_byte)
{
    ck_assert(id_equal_ct("abcd", "abcd", 4));
    ck_assert(!id_equal_ct("abcd", "abce", 4));
    ck_assert(!id_equal_ct("xbcd", "abcd", 4));
}

START_TEST(test_uuid_v5_matches_known_vectors)
{
    char out[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_DNS, "python.org", 10, out), 0);
    ck_assert_str_eq(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_URL, "http://python.org/", 18, out), 0);
    ck_assert_str_eq(out, "4c565f0d-3f5a-5890-b41b-20cf47701c5e");
}

START_TEST(test_uuid_v5_hashes_long_names)
{
    char name[1000], out[ID_UUID_SIZE];
    memset(name, 'x', sizeof name);
    ck_assert_int_eq(id_uuid_v5(ID_NAMESPACE_DNS, name, sizeof name, out), 0);
    ck_assert_str_eq(out, "f6d12730-a238-51ed-bf69-3689855f9bbf");
}

START_TEST(test_uuid_v5_rejects_a_bad_namespace)
{
    char out[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v5("not-a-uuid", "x", 1, out), -1);
    ck_assert_int_eq(id_uuid_v5("6BA7B810-9DAD-11D1-80B4-00C04FD430C8", "x", 1, out), -1);
}

START_TEST(test_uuid_v4_is_canonical_random_and_versioned)
{
    char a[ID_UUID_SIZE], b[ID_UUID_SIZE];
    ck_assert_int_eq(id_uuid_v4(a), 0);
    ck_assert_int_eq(id_uuid_v4(b), 0);
    ck_assert_int_eq(strlen(a), ID_UUID_LEN);
    ck_assert(id_is_uuid(a));
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(a[14], '4');
    ck_assert_ptr_nonnull(strchr("89ab", a[19]));
}

START_TEST(test_is_uuid_accepts_only_the_canonical_form)
{
    ck_assert(id_is_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5d"));
    ck_assert(!id_is_uuid("886313E1-3B8A-5372-9B90-0C9AEE199E5D"));
    ck_assert(!id_is_uuid("886313e13b8a53729b900c9aee199e5d"));
    ck_assert(!id_is_uuid("{886313e1-3b8a-5372-9b90-0c9aee199e5d}"));
    ck_assert(!id_is_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5"));
    ck_assert(!id_is_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5dd"));
    ck_assert(!id_is_uuid("886313e1-3b8a-5372-9b90-0c9aee199e5g"));
    ck_assert(!id_is_uuid(""));
    ck_assert(!id_is_uuid(NULL));
}

START_TEST(test_random_token_is_url_safe_base64_of_the_requested_size)
{
    char a[64], b[64];
    ck_assert_int_eq(id_random_token(a, sizeof a, 32), 0);
    ck_assert_int_eq(id_random_token(b, sizeof b, 32), 0);
    ck_assert_int_eq(strlen(a), 43);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     43);
    ck_assert_int_eq(id_random_token(a, sizeof a, 3), 0);
    ck_assert_int_eq(strlen(a), 4);
    ck_assert_int_eq(id_random_token(a, sizeof a, 1), 0);
    ck_assert_int_eq(strlen(a), 2);
}

START_TEST(test_random_token_refuses_a_short_buffer)
{
    char small[43];
    ck_assert_int_eq(id_random_token(small, sizeof small, 32), -1);
    ck_assert_int_eq(id_random_token(small, sizeof small, 0), -1);
}

START_TEST(test_random_bytes_fill_the_buffer)
{
    unsigned char buf[4096] = {0};
    ck_assert_int_eq(id_random_bytes(buf, sizeof buf), 0);
    size_t zeros = 0;
    for (size_t i = 0; i < sizeof buf; i++)
        zeros += buf[i] == 0;
    ck_assert_int_lt(zeros, 64); /* about 16 expected */
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_sha256_matches_fips_vectors),
    TEST_ENTRY(test_sha256_pads_at_block_boundaries),
    TEST_ENTRY(test_sha1_matches_fips_vectors),
    TEST_ENTRY(test_hmac_sha256_matches_rfc4231_vectors),
    TEST_ENTRY(test_hmac_sha256_hashes_a_key_longer_than_a_block),
    TEST_ENTRY(test_base64url_round_trips_and_refuses_non_canonical_text),
    TEST_ENTRY(test_equal_ct_compares_every_byte),
    TEST_ENTRY(test_uuid_v5_matches_known_vectors),
    TEST_ENTRY(test_uuid_v5_hashes_long_names),
    TEST_ENTRY(test_uuid_v5_rejects_a_bad_namespace),
    TEST_ENTRY(test_uuid_v4_is_canonical_random_and_versioned),
    TEST_ENTRY(test_is_uuid_accepts_only_the_canonical_form),
    TEST_ENTRY(test_random_token_is_url_safe_base64_of_the_requested_size),
    TEST_ENTRY(test_random_token_refuses_a_short_buffer),
    TEST_ENTRY(test_random_bytes_fill_the_buffer),
};

TEST_MAIN("ids", cases)

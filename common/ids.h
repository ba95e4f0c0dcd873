/*
 * ids: identifiers, random tokens and the hashes behind them.
 *
 * - id_uuid_v4: random event ids, from getrandom(2) (falling back to
 *   /dev/urandom on kernels without it).
 * - id_uuid_v5: name-based ids (RFC 4122 section 4.3, SHA-1), for anything
 *   that must come out the same every time it is derived, such as delivery
 *   idempotency keys.  ID_NAMESPACE_HERALD is Herald's own namespace.
 * - id_random_token: unguessable API keys, URL-safe base64 without padding.
 * - id_sha256: API keys are stored as their SHA-256 only.
 * - id_hmac_sha256: signed tokens (common/signedtoken) and the
 *   Herald-Signature header (common/hsig).
 *
 * The hashes are small self-contained implementations (FIPS 180-4), so the
 * common library does not depend on which TLS library libcurl was built with.
 * Herald writes UUIDs in the canonical lowercase 8-4-4-4-12 form and
 * id_is_uuid accepts only that form, so UUIDs compare with strcmp.
 */
#ifndef HERALD_IDS_H
#define HERALD_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ID_UUID_LEN  36 /* characters, without the NUL */
#define ID_UUID_SIZE 37 /* buffer size, with the NUL */

#define ID_SHA256_LEN      32
#define ID_SHA256_HEX_SIZE 65
#define ID_SHA1_LEN        20

/* RFC 4122 appendix C namespaces, and Herald's own (a fixed random UUID). */
#define ID_NAMESPACE_DNS    "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
#define ID_NAMESPACE_URL    "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
#define ID_NAMESPACE_HERALD "21581fea-3b3e-4358-871a-e0b50b3b292f"

/* Fills buf with n bytes from the kernel CSPRNG; -1 (errno set) if none is available. */
int id_random_bytes(void *buf, size_t n) __attribute__((warn_unused_result));

/* Writes a random (version 4) UUID into out[ID_UUID_SIZE]; -1 without randomness. */
int id_uuid_v4(char *out) __attribute__((warn_unused_result));

/* The same from 16 random bytes the caller drew (a pool of them, say). */
void id_uuid_v4_from(const unsigned char random[16], char *out);

/*
 * Writes the name-based (version 5) UUID of name[0..namelen) in the given
 * namespace into out[ID_UUID_SIZE]; -1 if namespace_uuid is not a UUID.
 */
int id_uuid_v5(const char *namespace_uuid, const void *name, size_t namelen, char *out)
    __attribute__((warn_unused_result));

/* True for a canonical lowercase UUID "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". */
bool id_is_uuid(const char *s);

/*
 * Writes nbytes random bytes as URL-safe base64 without padding
 * (ceil(nbytes * 4 / 3) characters) into out; -1 if outlen is too small
 * or there is no randomness.  32 bytes give a 43-character, 256-bit token.
 */
int id_random_token(char *out, size_t outlen, size_t nbytes) __attribute__((warn_unused_result));

/* FIPS 180-4 SHA-1 (only for UUID v5: it is not used where collisions matter). */
void id_sha1(const void *data, size_t len, unsigned char out[ID_SHA1_LEN]);

/* FIPS 180-4 SHA-256 of data[0..len). */
void id_sha256(const void *data, size_t len, unsigned char out[ID_SHA256_LEN]);

/* RFC 2104 HMAC-SHA-256 of data[0..len) under key[0..keylen). */
void id_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[ID_SHA256_LEN]);

/* Whether a[0..n) equals b[0..n), in time that does not depend on where they differ. */
bool id_equal_ct(const void *a, const void *b, size_t n);

/*
 * URL-safe base64 without padding (RFC 4648 section 5): encode writes
 * ceil(n * 4 / 3) characters and a NUL (-1 if outlen is too small); decode
 * accepts only the canonical text of some byte string (no padding, no
 * stray bits) and fills *n, -1 otherwise or if it does not fit outlen.
 */
int id_base64url_encode(const void *data, size_t n, char *out, size_t outlen)
    __attribute__((warn_unused_result));
int id_base64url_decode(const char *s, size_t len, void *out, size_t outlen, size_t *n)
    __attribute__((warn_unused_result));

/* Lowercase hex SHA-256 into out[ID_SHA256_HEX_SIZE]; returns out. */
char *id_sha256_hex(const void *data, size_t len, char *out);

/* The value of one hex digit, either case; -1 for anything else. */
int id_hex_digit(char c);

/* Percent-decodes s[0..n) ('+' as a space when plus) into out; -1 on a bad
 * escape, a NUL or when it does not fit. */
int id_url_decode(const char *s, size_t n, bool plus, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Lowercase hex of n bytes into out (2n + 1 bytes); returns out. */
char *id_hex(const unsigned char *bytes, size_t n, char *out);

#endif

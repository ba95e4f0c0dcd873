/*
 * validate: the field rules shared by events, deliveries, users and the CLI.
 *
 * Each check takes a byte string with its length (JSON strings may contain
 * NUL), returns 0 when the value is acceptable, and otherwise -1 with a
 * short phrase in err saying what was expected, written to follow a field
 * name: "type: " + "must be 1..128 characters of a-z 0-9 _ . - ...".
 * err may be NULL.  No check does I/O, and only validate_json_strdup allocates.
 *
 * The validate_json_* functions read one member of a JSON object for the
 * event and delivery parsers.  A member that is JSON null counts as absent.
 * Their errors are complete: "<key>: <problem>".
 */
#ifndef HERALD_VALIDATE_H
#define HERALD_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_NAME_MAX            128 /* event type, topic name */
#define VALIDATE_CATEGORY_MAX        64
#define VALIDATE_USER_ID_MAX         128
#define VALIDATE_IDEMPOTENCY_KEY_MAX 255
#define VALIDATE_EMAIL_MAX           254 /* RFC 5321 path limit */
#define VALIDATE_PUSH_TOKEN_MAX      4096

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
bool validate_utf8(const char *s, size_t len);

/* Bytes (1..4) of the well-formed UTF-8 character at s[0..len), or 0 when there is none. */
size_t validate_utf8_char(const char *s, size_t len);

/* The same, storing the character's code point in *cp when there is one. */
size_t validate_utf8_decode(const char *s, size_t len, int32_t *cp);

/* Number of code points in well-formed UTF-8 s[0..len). */
size_t validate_utf8_chars(const char *s, size_t len);

/*
 * A lowercase dotted name, ^[a-z0-9][a-z0-9_.-]*$ of 1..maxlen bytes:
 * event types ("order.shipped"), topic names and categories.
 */
int validate_name(const char *s, size_t len, size_t maxlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 1..128 of [A-Za-z0-9._:@+-], not starting with "topic:" (the broadcast key space). */
int validate_user_id(const char *s, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* 1..255 printable ASCII characters without spaces (an Idempotency-Key header). */
int validate_idempotency_key(const char *s, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * A deliverable mailbox "local@domain": no spaces, quotes or angle brackets,
 * dot-atom local part of at most 64 bytes, a domain of letters, digits,
 * hyphens and dots (non-ASCII allowed for IDNs), at most 254 bytes in all.
 */
int validate_email(const char *s, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* E.164: "+" then 7..15 digits, the first not 0. */
int validate_phone(const char *s, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A device token: 1..4096 printable ASCII characters without spaces. */
int validate_push_token(const char *s, size_t len, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Free text (subject, body, title): valid UTF-8, no NUL, at most maxlen bytes. */
int validate_text(const char *s, size_t len, size_t maxlen, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Member key of obj as a string: 1 with *s and *len borrowed from obj, 0 when
 * absent or null, -1 when not a string, not UTF-8 or containing NUL.
 */
int validate_json_string(json_t *obj, const char *key, const char **s, size_t *len, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* As validate_json_string, but *dst receives a malloc'd copy (NULL when absent). */
int validate_json_strdup(json_t *obj, const char *key, char **dst, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Member key as a canonical lowercase UUID copied into dst[37]: 1, 0 when absent, or -1. */
int validate_json_uuid(json_t *obj, const char *key, char *dst, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Member key as an integer in min..max: 1 with *out, 0 when absent or null, -1 otherwise. */
int validate_json_int(json_t *obj, const char *key, long long min, long long max, long long *out,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * 0 when value's compact JSON is valid (all strings and keys UTF-8) and at
 * most max bytes (0 = no cap), else -1 with "<key>: <problem>".  Stops
 * serialising at the cap, so an oversize value costs no more than max.
 */
int validate_json_size(json_t *value, const char *key, size_t max, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The first member of obj whose key is not in allowed (NULL-terminated), or NULL. */
const char *validate_json_unknown_key(json_t *obj, const char *const *allowed);

#endif

/*
 * apikey: Herald's API keys and the api_keys table.
 *
 * A key is "hk_" followed by 43 URL-safe base64 characters (256 random
 * bits).  Only its SHA-256 is stored; the first characters ("hk_AbCdEfGh")
 * are kept as a prefix so an operator can tell keys apart in a listing
 * without the secret.  The gateway looks keys up by hash; heraldctl creates,
 * lists and revokes them.  Both go through this module, so the table has a
 * single owner.
 *
 * The pure helpers (generate, hash, prefix, compare, scope names) do no I/O
 * beyond reading the kernel's randomness; the apikey_db_* functions run one
 * statement each on a libpq connection the caller owns.
 */
#ifndef HERALD_APIKEY_H
#define HERALD_APIKEY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define APIKEY_TAG         "hk_"
#define APIKEY_TAG_LEN     3
#define APIKEY_SECRET_LEN  43 /* base64url of 32 bytes, no padding */
#define APIKEY_LEN         (APIKEY_TAG_LEN + APIKEY_SECRET_LEN)
#define APIKEY_SIZE        (APIKEY_LEN + 1)
#define APIKEY_HASH_LEN    32
#define APIKEY_PREFIX_LEN  11 /* "hk_" + 8 characters */
#define APIKEY_PREFIX_SIZE (APIKEY_PREFIX_LEN + 1)

typedef enum {
    APIKEY_SCOPE_PUBLISH = 0, /* publish events and read their status */
    APIKEY_SCOPE_ADMIN = 1,   /* everything */
} apikey_scope;

/* Writes a fresh key into out[APIKEY_SIZE]; -1 when no randomness is available. */
int apikey_generate(char out[APIKEY_SIZE], char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* SHA-256 of the key text, as stored in api_keys.key_hash. */
void apikey_hash(const char *key, size_t len, unsigned char out[APIKEY_HASH_LEN]);

/* The displayable start of a key ("hk_" + 8 characters) into out[APIKEY_PREFIX_SIZE]. */
char *apikey_prefix(const char *key, char out[APIKEY_PREFIX_SIZE]);

/*
 * Whether text has the shape of a key (tag, length, alphabet).  Lets the
 * gateway refuse garbage without a database round trip; it says nothing
 * about whether the key exists.
 */
bool apikey_well_formed(const char *text, size_t len);

/* Compares two hashes in time independent of where they differ. */
bool apikey_hash_equal(const unsigned char a[APIKEY_HASH_LEN],
                       const unsigned char b[APIKEY_HASH_LEN]);

const char *apikey_scope_name(apikey_scope s);
/* "publish" / "admin" → scope; -1 on anything else. */
int apikey_scope_parse(const char *s, apikey_scope *out) __attribute__((warn_unused_result));

/* One row of api_keys, without the hash. */
typedef struct apikey_record {
    int64_t id;
    char name[129];
    apikey_scope scope;
    char prefix[APIKEY_PREFIX_SIZE + 8];
    char created_at[40];   /* RFC 3339 */
    char revoked_at[40];   /* "" while active */
    char last_used_at[40]; /* "" when never used */
} apikey_record;

/*
 * Generates a key, stores its hash, and writes the key into key_out (shown
 * once, never again) and its id into *id_out.  name must be 1..128 bytes.
 */
int apikey_db_create(PGconn *conn, const char *name, apikey_scope scope, char key_out[APIKEY_SIZE],
                     int64_t *id_out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Every key, oldest first, into *out (malloc'd, caller frees); *n rows. */
int apikey_db_list(PGconn *conn, apikey_record **out, size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Marks a key revoked.  Returns 0, 1 when no active key has that id, -1 on error. */
int apikey_db_revoke(PGconn *conn, int64_t id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

typedef struct apikey_lookup_result {
    bool found; /* an active (not revoked) key has this hash */
    int64_t id;
    apikey_scope scope;
} apikey_lookup_result;

/* Finds the active key whose hash is `hash`.  Returns 0 (see out->found) or -1. */
int apikey_db_lookup(PGconn *conn, const unsigned char hash[APIKEY_HASH_LEN],
                     apikey_lookup_result *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Finds the active key whose id is `id`.  Returns 0 (see out->found) or -1. */
int apikey_db_lookup_id(PGconn *conn, int64_t id, apikey_lookup_result *out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Stamps last_used_at (best effort, done at most once per cache refresh). */
int apikey_db_touch(PGconn *conn, int64_t id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

/*
 * apikey: key generation, hashing and the api_keys table.
 *
 * Keys are stored as a plain SHA-256, not a slow password hash: they carry
 * 256 random bits, so there is nothing to brute-force, and the gateway has
 * to verify one on every request.
 */
#include "apikey.h"

#include "error.h"
#include "ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* libpq messages end with a newline; a one-line error reads better. */
static const char *pq_msg(PGconn *conn, PGresult *res)
{
    static _Thread_local char buf[256];
    const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    if (m == NULL || *m == '\0')
        m = PQerrorMessage(conn);
    snprintf(buf, sizeof buf, "%s", m != NULL ? m : "unknown error");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

int apikey_generate(char out[APIKEY_SIZE], char *err, size_t errlen)
{
    memcpy(out, APIKEY_TAG, APIKEY_TAG_LEN);
    if (id_random_token(out + APIKEY_TAG_LEN, APIKEY_SIZE - APIKEY_TAG_LEN, 32) != 0) {
        error_set(err, errlen, "%s", "no randomness available to generate a key");
        out[0] = '\0';
        return -1;
    }
    return 0;
}

void apikey_hash(const char *key, size_t len, unsigned char out[APIKEY_HASH_LEN])
{
    id_sha256(key, len, out);
}

char *apikey_prefix(const char *key, char out[APIKEY_PREFIX_SIZE])
{
    size_t n = strnlen(key, APIKEY_PREFIX_LEN);
    memcpy(out, key, n);
    out[n] = '\0';
    return out;
}

bool apikey_well_formed(const char *text, size_t len)
{
    if (len != APIKEY_LEN || memcmp(text, APIKEY_TAG, APIKEY_TAG_LEN) != 0)
        return false;
    for (size_t i = APIKEY_TAG_LEN; i < len; i++) {
        char c = text[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

bool apikey_hash_equal(const unsigned char a[APIKEY_HASH_LEN],
                       const unsigned char b[APIKEY_HASH_LEN])
{
    return id_equal_ct(a, b, APIKEY_HASH_LEN);
}

const char *apikey_scope_name(apikey_scope s)
{
    return s == APIKEY_SCOPE_ADMIN ? "admin" : "publish";
}

int apikey_scope_parse(const char *s, apikey_scope *out)
{
    if (strcmp(s, "publish") == 0) {
        *out = APIKEY_SCOPE_PUBLISH;
        return 0;
    }
    if (strcmp(s, "admin") == 0) {
        *out = APIKEY_SCOPE_ADMIN;
        return 0;
    }
    return -1;
}

int apikey_db_create(PGconn *conn, const char *name, apikey_scope scope, char key_out[APIKEY_SIZE],
                     int64_t *id_out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    int rc = -1;
    size_t namelen = strlen(name);
    if (namelen == 0 || namelen > 128) {
        error_set(err, errlen, "%s", "the name must be 1 to 128 bytes long");
        goto out;
    }
    if (apikey_generate(key_out, err, errlen) != 0)
        goto out;
    unsigned char hash[APIKEY_HASH_LEN];
    char prefix[APIKEY_PREFIX_SIZE];
    apikey_hash(key_out, APIKEY_LEN, hash);
    apikey_prefix(key_out, prefix);
    const char *values[4] = {name, apikey_scope_name(scope), (const char *)hash, prefix};
    int lengths[4] = {0, 0, APIKEY_HASH_LEN, 0};
    int formats[4] = {0, 0, 1, 0};
    res = PQexecParams(conn,
                       "INSERT INTO api_keys (name, scope, key_hash, key_prefix) "
                       "VALUES ($1, $2, $3, $4) RETURNING id",
                       4, NULL, values, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        error_set(err, errlen, "storing the key: %s", pq_msg(conn, res));
        goto out;
    }
    *id_out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    rc = 0;
out:
    if (rc != 0)
        memset(key_out, 0, APIKEY_SIZE);
    PQclear(res);
    return rc;
}

static void copy_field(char *dst, size_t dstlen, PGresult *res, int row, int col)
{
    snprintf(dst, dstlen, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

int apikey_db_list(PGconn *conn, apikey_record **out, size_t *n, char *err, size_t errlen)
{
    PGresult *res = NULL;
    apikey_record *rows = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    /* Times in UTC with milliseconds, the way every Herald timestamp reads. */
    res = PQexec(conn,
                 "SELECT id, name, scope, key_prefix, "
                 "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                 "to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "
                 "to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                 "FROM api_keys ORDER BY id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        error_set(err, errlen, "listing keys: %s", pq_msg(conn, res));
        goto out;
    }
    int nt = PQntuples(res);
    if (nt > 0) {
        rows = calloc((size_t)nt, sizeof *rows);
        if (rows == NULL) {
            error_set(err, errlen, "%s", "out of memory");
            goto out;
        }
    }
    for (int i = 0; i < nt; i++) {
        rows[i].id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        copy_field(rows[i].name, sizeof rows[i].name, res, i, 1);
        rows[i].scope =
            strcmp(PQgetvalue(res, i, 2), "admin") == 0 ? APIKEY_SCOPE_ADMIN : APIKEY_SCOPE_PUBLISH;
        copy_field(rows[i].prefix, sizeof rows[i].prefix, res, i, 3);
        copy_field(rows[i].created_at, sizeof rows[i].created_at, res, i, 4);
        copy_field(rows[i].revoked_at, sizeof rows[i].revoked_at, res, i, 5);
        copy_field(rows[i].last_used_at, sizeof rows[i].last_used_at, res, i, 6);
    }
    *out = rows;
    *n = (size_t)nt;
    rows = NULL;
    rc = 0;
out:
    free(rows);
    PQclear(res);
    return rc;
}

/* Runs an UPDATE of one key by id ($1); the rows it touched, or -1 with err saying doing what. */
static long update_by_id(PGconn *conn, const char *sql, int64_t id, const char *doing, char *err,
                         size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
    const char *values[1] = {idbuf};
    PGresult *res = PQexecParams(conn, sql, 1, NULL, values, NULL, NULL, 0);
    long rows = -1;
    if (PQresultStatus(res) == PGRES_COMMAND_OK)
        rows = strtol(PQcmdTuples(res), NULL, 10);
    else
        error_set(err, errlen, "%s: %s", doing, pq_msg(conn, res));
    PQclear(res);
    return rows;
}

int apikey_db_revoke(PGconn *conn, int64_t id, char *err, size_t errlen)
{
    long rows = update_by_id(conn,
                             "UPDATE api_keys SET revoked_at = now() "
                             "WHERE id = $1 AND revoked_at IS NULL",
                             id, "revoking the key", err, errlen);
    return rows < 0 ? -1 : rows == 0 ? 1 : 0;
}

int apikey_db_lookup(PGconn *conn, const unsigned char hash[APIKEY_HASH_LEN],
                     apikey_lookup_result *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    const char *values[1] = {(const char *)hash};
    int lengths[1] = {APIKEY_HASH_LEN};
    int formats[1] = {1};
    /* The hash column is returned too, so the final comparison happens here
     * in constant time rather than being left to the index lookup alone. */
    res = PQexecParams(conn,
                       "SELECT id, scope, key_hash FROM api_keys "
                       "WHERE key_hash = $1 AND revoked_at IS NULL",
                       1, NULL, values, lengths, formats, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        error_set(err, errlen, "looking up the key: %s", pq_msg(conn, res));
        goto out;
    }
    rc = 0;
    if (PQntuples(res) != 1 || PQgetlength(res, 0, 2) != APIKEY_HASH_LEN ||
        PQgetlength(res, 0, 0) != 8)
        goto out;
    if (!apikey_hash_equal((const unsigned char *)PQgetvalue(res, 0, 2), hash))
        goto out;
    const unsigned char *idb = (const unsigned char *)PQgetvalue(res, 0, 0);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | idb[i];
    out->id = (int64_t)id;
    out->scope = strncmp(PQgetvalue(res, 0, 1), "admin", (size_t)PQgetlength(res, 0, 1)) == 0 &&
                         PQgetlength(res, 0, 1) == 5
                     ? APIKEY_SCOPE_ADMIN
                     : APIKEY_SCOPE_PUBLISH;
    out->found = true;
out:
    PQclear(res);
    return rc;
}

int apikey_db_lookup_id(PGconn *conn, int64_t id, apikey_lookup_result *out, char *err,
                        size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)id);
    const char *values[1] = {idbuf};
    memset(out, 0, sizeof *out);
    PGresult *res =
        PQexecParams(conn, "SELECT scope FROM api_keys WHERE id = $1 AND revoked_at IS NULL", 1,
                     NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        error_set(err, errlen, "looking up the key: %s", pq_msg(conn, res));
        PQclear(res);
        return -1;
    }
    if (PQntuples(res) == 1) {
        out->found = true;
        out->id = id;
        out->scope =
            strcmp(PQgetvalue(res, 0, 0), "admin") == 0 ? APIKEY_SCOPE_ADMIN : APIKEY_SCOPE_PUBLISH;
    }
    PQclear(res);
    return 0;
}

int apikey_db_touch(PGconn *conn, int64_t id, char *err, size_t errlen)
{
    return update_by_id(conn, "UPDATE api_keys SET last_used_at = now() WHERE id = $1", id,
                        "stamping the key", err, errlen) < 0
               ? -1
               : 0;
}

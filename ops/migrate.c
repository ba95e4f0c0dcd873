/*
 * migrate: see migrate.h.  The schema table and lock live here so that every
 * tool that migrates (heraldctl, tests) agrees on them.
 */
#include "migrate.h"
#include "error.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

/* An arbitrary constant: "herald" as ASCII, so it is recognisable in pg_locks. */
#define MIGRATE_LOCK_KEY 0x68657261646cLL

struct migrate_set {
    size_t count;
    int *versions;
    char **names;
    char **sql;
    char (*checksum)[65];
};

int migrate_version_of(const char *filename)
{
    int version = 0;
    size_t i = 0;
    for (; filename[i] >= '0' && filename[i] <= '9'; i++) {
        if (i >= 6)
            return -1;
        version = version * 10 + (filename[i] - '0');
    }
    if (i == 0 || filename[i] != '_' || version == 0)
        return -1;
    size_t len = strlen(filename);
    if (len < 5 || strcmp(filename + len - 4, ".sql") != 0 || len - 4 <= i + 1)
        return -1;
    if (len >= sizeof(((migrate_status *)0)->name))
        return -1;
    return version;
}

void migrate_set_free(migrate_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->names[i]);
        free(set->sql[i]);
    }
    free(set->versions);
    free(set->names);
    free(set->sql);
    free(set->checksum);
    free(set);
}

static migrate_set *set_alloc(size_t n)
{
    migrate_set *set = calloc(1, sizeof(*set));
    if (set == NULL)
        return NULL;
    set->versions = calloc(n ? n : 1, sizeof(*set->versions));
    set->names = calloc(n ? n : 1, sizeof(*set->names));
    set->sql = calloc(n ? n : 1, sizeof(*set->sql));
    set->checksum = calloc(n ? n : 1, sizeof(*set->checksum));
    if (!set->versions || !set->names || !set->sql || !set->checksum) {
        migrate_set_free(set);
        return NULL;
    }
    return set;
}

/* Adds one file, keeping the set sorted by version; rejects duplicates. */
static int set_add(migrate_set *set, const char *name, const char *sql, size_t len, char *err,
                   size_t errlen)
{
    int version = migrate_version_of(name);
    if (version < 0) {
        error_set(err, errlen, "%s: not a migration file name (expected NNN_name.sql)", name);
        return -1;
    }
    if (memchr(sql, '\0', len) != NULL) {
        error_set(err, errlen, "%s: contains a NUL byte", name);
        return -1;
    }
    size_t pos = set->count;
    while (pos > 0 && set->versions[pos - 1] > version)
        pos--;
    if (pos > 0 && set->versions[pos - 1] == version) {
        error_set(err, errlen, "%s: version %d is also used by %s", name, version,
                  set->names[pos - 1]);
        return -1;
    }
    char *name_copy = strdup(name);
    char *sql_copy = malloc(len + 1);
    if (name_copy == NULL || sql_copy == NULL) {
        free(name_copy);
        free(sql_copy);
        error_set(err, errlen, "out of memory");
        return -1;
    }
    memcpy(sql_copy, sql, len);
    sql_copy[len] = '\0';
    size_t tail = set->count - pos;
    memmove(set->versions + pos + 1, set->versions + pos, tail * sizeof(*set->versions));
    memmove(set->names + pos + 1, set->names + pos, tail * sizeof(*set->names));
    memmove(set->sql + pos + 1, set->sql + pos, tail * sizeof(*set->sql));
    memmove(set->checksum + pos + 1, set->checksum + pos, tail * sizeof(*set->checksum));
    set->versions[pos] = version;
    set->names[pos] = name_copy;
    set->sql[pos] = sql_copy;
    id_sha256_hex(sql_copy, len, set->checksum[pos]);
    set->count++;
    return 0;
}

migrate_set *migrate_set_embedded(char *err, size_t errlen)
{
    size_t n = 0;
    while (migrate_embedded[n].name != NULL)
        n++;
    migrate_set *set = set_alloc(n);
    if (set == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const migrate_file *f = &migrate_embedded[i];
        if (set_add(set, f->name, f->sql, f->len, err, errlen) != 0) {
            migrate_set_free(set);
            return NULL;
        }
    }
    return set;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        error_set(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0)
        goto io_error;
    long size = ftell(f);
    if (size < 0 || size > 16L * 1024 * 1024) {
        error_set(err, errlen, "%s: unreadable or larger than 16 MiB", path);
        goto out;
    }
    rewind(f);
    buf = malloc((size_t)size + 1);
    if (buf == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
        goto io_error;
    }
    buf[size] = '\0';
    *len = (size_t)size;
    goto out;
io_error:
    error_set(err, errlen, "%s: read error", path);
out:
    fclose(f);
    return buf;
}

migrate_set *migrate_set_from_dir(const char *dir, char *err, size_t errlen)
{
    migrate_set *set = NULL;
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, NULL, alphasort);
    if (n < 0) {
        error_set(err, errlen, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    set = set_alloc((size_t)n);
    if (set == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const char *name = entries[i]->d_name;
        if (migrate_version_of(name) < 0)
            continue; /* README, editor backups and the like */
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        size_t len = 0;
        char *sql = read_file(path, &len, err, errlen);
        if (sql == NULL || set_add(set, name, sql, len, err, errlen) != 0) {
            free(sql);
            migrate_set_free(set);
            set = NULL;
            goto out;
        }
        free(sql);
    }
out:
    for (int i = 0; i < n; i++)
        free(entries[i]);
    free(entries);
    return set;
}

/* Runs sql; on failure puts the server's message into err. */
static int exec_ok(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
    if (rc != 0) {
        const char *msg = PQresultErrorMessage(res);
        error_set(err, errlen, "%s", (msg && *msg) ? msg : PQerrorMessage(conn));
        size_t l = err ? strlen(err) : 0;
        while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
            err[--l] = '\0';
    }
    PQclear(res);
    return rc;
}

static int lock_and_prepare(PGconn *conn, char *err, size_t errlen)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", (long long)MIGRATE_LOCK_KEY);
    if (exec_ok(conn, sql, err, errlen) != 0)
        return -1;
    return exec_ok(conn,
                   "SET client_min_messages = warning;"
                   "CREATE TABLE IF NOT EXISTS herald_schema_migrations ("
                   " version integer PRIMARY KEY,"
                   " name text NOT NULL,"
                   " checksum text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())",
                   err, errlen);
}

static void unlock(PGconn *conn)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", (long long)MIGRATE_LOCK_KEY);
    PQclear(PQexec(conn, sql));
}

/* Index of version in set, or -1. */
static ssize_t find_version(const migrate_set *set, int version)
{
    for (size_t i = 0; i < set->count; i++)
        if (set->versions[i] == version)
            return (ssize_t)i;
    return -1;
}

int migrate_apply(PGconn *conn, const migrate_set *set, int *applied,
                  void (*on_applied)(const char *name, void *opaque), void *opaque, char *err,
                  size_t errlen)
{
    int rc = -1;
    PGresult *res = NULL;
    bool locked = false;
    *applied = 0;

    if (lock_and_prepare(conn, err, errlen) != 0)
        goto out;
    locked = true;

    res = PQexec(conn, "SELECT version, checksum, name FROM herald_schema_migrations");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        error_set(err, errlen, "reading herald_schema_migrations: %s", PQerrorMessage(conn));
        goto out;
    }
    bool *done = calloc(set->count ? set->count : 1, sizeof(bool));
    if (done == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        ssize_t i = find_version(set, atoi(PQgetvalue(res, r, 0)));
        if (i < 0)
            continue; /* applied by a newer heraldctl: leave it alone */
        if (strcmp(PQgetvalue(res, r, 1), set->checksum[i]) != 0) {
            error_set(err, errlen,
                      "%s was applied with different content (recorded as %s): "
                      "migrations are immutable, add a new one instead",
                      set->names[i], PQgetvalue(res, r, 2));
            free(done);
            goto out;
        }
        done[i] = true;
    }

    for (size_t i = 0; i < set->count; i++) {
        if (done[i])
            continue;
        char detail[1024] = "";
        if (exec_ok(conn, "BEGIN", detail, sizeof(detail)) != 0 ||
            exec_ok(conn, set->sql[i], detail, sizeof(detail)) != 0) {
            PQclear(PQexec(conn, "ROLLBACK"));
            error_set(err, errlen, "%s: %s", set->names[i], detail);
            free(done);
            goto out;
        }
        char version[16];
        snprintf(version, sizeof(version), "%d", set->versions[i]);
        const char *params[3] = {version, set->names[i], set->checksum[i]};
        PGresult *ins =
            PQexecParams(conn,
                         "INSERT INTO herald_schema_migrations (version, name, checksum)"
                         " VALUES ($1, $2, $3)",
                         3, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(ins) == PGRES_COMMAND_OK;
        PQclear(ins);
        if (!ok || exec_ok(conn, "COMMIT", detail, sizeof(detail)) != 0) {
            if (!ok)
                snprintf(detail, sizeof(detail), "%s", PQerrorMessage(conn));
            PQclear(PQexec(conn, "ROLLBACK"));
            error_set(err, errlen, "%s: recording it failed: %s", set->names[i], detail);
            free(done);
            goto out;
        }
        (*applied)++;
        if (on_applied)
            on_applied(set->names[i], opaque);
    }
    free(done);
    rc = 0;
out:
    PQclear(res);
    if (locked)
        unlock(conn);
    return rc;
}

int migrate_status_list(PGconn *conn, const migrate_set *set, migrate_status **out, size_t *n,
                        char *err, size_t errlen)
{
    int rc = -1;
    PGresult *res = NULL;
    migrate_status *list = NULL;
    *out = NULL;
    *n = 0;

    /* Reading needs no lock; the table may not exist on a fresh database. */
    res = PQexec(conn, "SELECT version, name, checksum,"
                       " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                       " FROM herald_schema_migrations ORDER BY version");
    int rows = 0;
    if (PQresultStatus(res) == PGRES_TUPLES_OK) {
        rows = PQntuples(res);
    } else {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state == NULL || strcmp(state, "42P01") != 0) { /* undefined_table */
            error_set(err, errlen, "reading herald_schema_migrations: %s", PQerrorMessage(conn));
            goto out;
        }
    }
    list = calloc(set->count + (size_t)rows + 1, sizeof(*list));
    if (list == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < set->count; i++) {
        migrate_status *s = &list[k++];
        s->version = set->versions[i];
        snprintf(s->name, sizeof(s->name), "%s", set->names[i]);
        s->state = MIGRATE_PENDING;
        for (int r = 0; r < rows; r++) {
            if (atoi(PQgetvalue(res, r, 0)) != s->version)
                continue;
            bool same = strcmp(PQgetvalue(res, r, 2), set->checksum[i]) == 0;
            s->state = same ? MIGRATE_APPLIED : MIGRATE_CHANGED;
            snprintf(s->applied_at, sizeof(s->applied_at), "%s", PQgetvalue(res, r, 3));
        }
    }
    for (int r = 0; r < rows; r++) {
        int version = atoi(PQgetvalue(res, r, 0));
        if (find_version(set, version) >= 0)
            continue;
        migrate_status *s = &list[k++];
        s->version = version;
        snprintf(s->name, sizeof(s->name), "%s", PQgetvalue(res, r, 1));
        s->state = MIGRATE_UNKNOWN;
        snprintf(s->applied_at, sizeof(s->applied_at), "%s", PQgetvalue(res, r, 3));
    }
    *out = list;
    *n = k;
    list = NULL;
    rc = 0;
out:
    free(list);
    PQclear(res);
    return rc;
}

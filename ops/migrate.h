/*
 * migrate: applies the numbered SQL files of migrations/ to PostgreSQL.
 *
 * Each file NNN_name.sql is applied once, in version order, in its own
 * transaction, and recorded in herald_schema_migrations with its SHA-256.
 * A session-level advisory lock serialises concurrent runs: the second run
 * waits, then finds nothing pending.  A recorded file whose content changed
 * is reported as an error rather than silently re-applied.
 *
 * The files are compiled into heraldctl (migrate_embedded); a directory can
 * be given instead, e.g. to test a new migration without rebuilding.
 */
#ifndef HERALD_MIGRATE_H
#define HERALD_MIGRATE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct migrate_file {
    const char *name; /* "001_initial_schema.sql" */
    const char *sql;  /* NUL-terminated */
    size_t len;
} migrate_file;

/* Terminated by an entry with name == NULL. */
extern const migrate_file migrate_embedded[];

typedef enum {
    MIGRATE_PENDING,
    MIGRATE_APPLIED,
    MIGRATE_CHANGED, /* applied, but the file differs from what was applied */
    MIGRATE_UNKNOWN, /* recorded in the database, no such file here */
} migrate_state;

typedef struct migrate_status {
    int version;
    char name[128];
    migrate_state state;
    char applied_at[40]; /* RFC 3339 as PostgreSQL prints it, or "" */
} migrate_status;

typedef struct migrate_set migrate_set;

/* The embedded files, validated (names, order, duplicate versions). */
migrate_set *migrate_set_embedded(char *err, size_t errlen) __attribute__((warn_unused_result));

/* Reads dir's NNN_*.sql files. */
migrate_set *migrate_set_from_dir(const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void migrate_set_free(migrate_set *set);

/* Parses "001_name.sql" → 1; -1 when the name is not a migration file. */
int migrate_version_of(const char *filename);

/*
 * Applies every pending migration.  *applied counts what this call applied
 * (0 when the database was up to date).  Each applied file is reported via
 * on_applied (may be NULL).  Returns 0 or -1 with err set.
 */
int migrate_apply(PGconn *conn, const migrate_set *set, int *applied,
                  void (*on_applied)(const char *name, void *opaque), void *opaque, char *err,
                  size_t errlen) __attribute__((warn_unused_result));

/*
 * Fills *out (malloc'd, caller frees) with one entry per file, in version
 * order, followed by versions the database records but this set lacks.
 */
int migrate_status_list(PGconn *conn, const migrate_set *set, migrate_status **out, size_t *n,
                        char *err, size_t errlen) __attribute__((warn_unused_result));

#endif

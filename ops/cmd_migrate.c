/*
 * heraldctl migrate [--status] [--dir DIR]
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"
#include "migrate.h"

typedef struct migrate_flags {
    bool status;
    char *dir;
} migrate_flags;

static const config_var migrate_vars[] = {
    {.flag = "status",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(migrate_flags, status),
     .help = "list every migration and whether it is applied; change nothing"},
    {.flag = "dir",
     .type = CONFIG_STRING,
     .offset = offsetof(migrate_flags, dir),
     .help = "read NNN_name.sql files from DIR instead of the ones built in"},
    {0},
};

static void report_applied(const char *name, void *opaque)
{
    (void)opaque;
    printf("applied %s\n", name);
}

static const char *state_name(migrate_state s)
{
    switch (s) {
    case MIGRATE_PENDING:
        return "pending";
    case MIGRATE_APPLIED:
        return "applied";
    case MIGRATE_CHANGED:
        return "CHANGED since applied";
    case MIGRATE_UNKNOWN:
        return "applied, unknown here";
    }
    return "?";
}

int cmd_migrate(const ctl_context *ctx, int argc, char **argv)
{
    migrate_flags flags = {0};
    const config_table table = {migrate_vars, &flags};
    migrate_set *set = NULL;
    PGconn *conn = NULL;
    migrate_status *list = NULL;
    char err[1024];
    int rc = ctl_parse_only_flags("migrate", "usage: heraldctl migrate [--status] [--dir DIR]",
                                  migrate_vars, &flags, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    set = flags.dir ? migrate_set_from_dir(flags.dir, err, sizeof(err))
                    : migrate_set_embedded(err, sizeof(err));
    if (set == NULL) {
        fprintf(stderr, "heraldctl migrate: %s\n", err);
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    conn = ctl_pg_connect(ctx);
    if (conn == NULL)
        goto out;

    if (flags.status) {
        size_t n = 0;
        if (migrate_status_list(conn, set, &list, &n, err, sizeof(err)) != 0) {
            fprintf(stderr, "heraldctl migrate: %s\n", err);
            goto out;
        }
        int pending = 0;
        printf("%-8s %-40s %-22s %s\n", "VERSION", "NAME", "STATE", "APPLIED AT");
        for (size_t i = 0; i < n; i++) {
            printf("%-8d %-40s %-22s %s\n", list[i].version, list[i].name,
                   state_name(list[i].state), list[i].applied_at);
            pending += list[i].state == MIGRATE_PENDING;
        }
        printf("%d pending\n", pending);
        rc = CTL_EXIT_OK;
        goto out;
    }

    int applied = 0;
    if (migrate_apply(conn, set, &applied, report_applied, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "heraldctl migrate: %s\n", err);
        goto out;
    }
    printf(applied ? "schema up to date (%d applied)\n" : "schema up to date (nothing to apply)\n",
           applied);
    rc = CTL_EXIT_OK;
out:
    free(list);
    PQfinish(conn);
    migrate_set_free(set);
    config_free(&table, 1, NULL);
    return rc;
}

/*
 * heraldctl apikey: create, list and revoke the gateway's API keys.
 *
 * The table is owned by common/apikey; this file is the operator's view
 * of it.  A created key goes to stdout alone, so that scripts can capture
 * it (`KEY=$(heraldctl apikey create --name ci)`); everything else a human
 * should read goes to stderr.
 */
#include "cmd_apikey.h"

#include "apikey.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define APIKEY_USAGE                                                                               \
    "usage: heraldctl apikey create --name NAME [--scope publish|admin]\n"                         \
    "       heraldctl apikey list [--json]\n"                                                      \
    "       heraldctl apikey revoke ID"

static const char *const scope_choices[] = {"publish", "admin", NULL};

typedef struct create_flags {
    char *name;
    int scope; /* index in scope_choices, which matches apikey_scope */
} create_flags;

static const config_var create_vars[] = {
    {.flag = "name",
     .type = CONFIG_STRING,
     .offset = offsetof(create_flags, name),
     .flags = CONFIG_REQUIRED,
     .help = "what the key is for (1..128 bytes), shown in listings"},
    {.flag = "scope",
     .type = CONFIG_ENUM,
     .def = "publish",
     .offset = offsetof(create_flags, scope),
     .choices = scope_choices,
     .help = "publish: POST /v1/events, /v1/events/batch, GET /v1/events/{id}; admin: everything"},
    {0},
};

typedef struct list_flags {
    bool json;
} list_flags;

static const config_var list_vars[] = {
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(list_flags, json),
     .help = "print a JSON array instead of a table"},
    {0},
};

static int apikey_create(const ctl_context *ctx, int argc, char **argv)
{
    create_flags f = {0};
    const config_table table = {create_vars, &f};
    PGconn *conn = NULL;
    char key[APIKEY_SIZE], err[512];
    int64_t id = 0;
    int rc = ctl_parse_only_flags("apikey create", APIKEY_USAGE, create_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    size_t namelen = f.name != NULL ? strlen(f.name) : 0;
    if (namelen == 0 || namelen > 128) {
        fprintf(stderr, "heraldctl apikey create: --name must be 1 to 128 bytes long\n");
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    if (apikey_db_create(conn, f.name, (apikey_scope)f.scope, key, &id, err, sizeof err) != 0) {
        fprintf(stderr, "heraldctl apikey create: %s\n", err);
        goto out;
    }
    char prefix[APIKEY_PREFIX_SIZE];
    printf("%s\n", key);
    fprintf(stderr, "created API key %lld (%s..., scope %s); it is not shown again\n",
            (long long)id, apikey_prefix(key, prefix), scope_choices[f.scope]);
    memset(key, 0, sizeof key);
    rc = CTL_EXIT_OK;
out:
    PQfinish(conn);
    config_free(&table, 1, NULL);
    return rc;
}

static int apikey_list(const ctl_context *ctx, int argc, char **argv)
{
    list_flags f = {0};
    const config_table table = {list_vars, &f};
    PGconn *conn = NULL;
    apikey_record *rows = NULL;
    size_t n = 0;
    char err[512];
    int rc = ctl_parse_only_flags("apikey list", APIKEY_USAGE, list_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    if (apikey_db_list(conn, &rows, &n, err, sizeof err) != 0) {
        fprintf(stderr, "heraldctl apikey list: %s\n", err);
        goto out;
    }
    if (f.json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr != NULL && i < n; i++) {
            apikey_record *k = &rows[i];
            json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:o,s:o,s:b}", "id", (json_int_t)k->id,
                                  "name", k->name, "scope", apikey_scope_name(k->scope), "prefix",
                                  k->prefix, "created_at", k->created_at, "revoked_at",
                                  k->revoked_at[0] ? json_string(k->revoked_at) : json_null(),
                                  "last_used_at",
                                  k->last_used_at[0] ? json_string(k->last_used_at) : json_null(),
                                  "active", k->revoked_at[0] == '\0');
            if (o == NULL || json_array_append_new(arr, o) != 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        if (arr == NULL || json_dumpf(arr, stdout, JSON_INDENT(2)) != 0) {
            json_decref(arr);
            fprintf(stderr, "heraldctl apikey list: out of memory\n");
            goto out;
        }
        putchar('\n');
        json_decref(arr);
    } else {
        printf("%-6s %-24s %-8s %-12s %-25s %-25s %s\n", "ID", "NAME", "SCOPE", "PREFIX", "CREATED",
               "LAST USED", "STATUS");
        for (size_t i = 0; i < n; i++) {
            apikey_record *k = &rows[i];
            printf("%-6lld %-24s %-8s %-12s %-25s %-25s %s\n", (long long)k->id, k->name,
                   apikey_scope_name(k->scope), k->prefix, k->created_at,
                   k->last_used_at[0] ? k->last_used_at : "-",
                   k->revoked_at[0] ? "revoked" : "active");
        }
    }
    rc = CTL_EXIT_OK;
out:
    free(rows);
    PQfinish(conn);
    config_free(&table, 1, NULL);
    return rc;
}

static int apikey_revoke(const ctl_context *ctx, int argc, char **argv)
{
    static const config_var no_vars[] = {{0}};
    PGconn *conn = NULL;
    char err[512];
    int first = argc, rc = CTL_EXIT_USAGE;
    config_status st =
        ctl_parse_flags("apikey revoke", APIKEY_USAGE, no_vars, NULL, argc, argv, &first);
    if (st != CONFIG_OK)
        return st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (argc - first != 1) {
        fprintf(stderr,
                "heraldctl apikey revoke: expected one key ID (see heraldctl apikey list)\n");
        goto out;
    }
    char *end = NULL;
    errno = 0;
    long long id = strtoll(argv[first], &end, 10);
    if (errno != 0 || end == argv[first] || *end != '\0' || id <= 0) {
        fprintf(stderr, "heraldctl apikey revoke: ID must be a positive integer, got \"%s\"\n",
                argv[first]);
        goto out;
    }
    rc = CTL_EXIT_FAILURE;
    if ((conn = ctl_pg_connect(ctx)) == NULL)
        goto out;
    int r = apikey_db_revoke(conn, id, err, sizeof err);
    if (r < 0) {
        fprintf(stderr, "heraldctl apikey revoke: %s\n", err);
        goto out;
    }
    if (r == 1) {
        fprintf(stderr, "heraldctl apikey revoke: no active key with ID %lld\n", id);
        goto out;
    }
    printf("revoked API key %lld (gateways stop accepting it within their key cache TTL)\n", id);
    rc = CTL_EXIT_OK;
out:
    PQfinish(conn);
    return rc;
}

int cmd_apikey(const ctl_context *ctx, int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "heraldctl apikey: expected create, list or revoke (see heraldctl apikey "
                        "--help)\n");
        return CTL_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("%s\n", APIKEY_USAGE);
        return CTL_EXIT_OK;
    }
    if (strcmp(sub, "create") == 0)
        return apikey_create(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "list") == 0)
        return apikey_list(ctx, argc - 1, argv + 1);
    if (strcmp(sub, "revoke") == 0)
        return apikey_revoke(ctx, argc - 1, argv + 1);
    fprintf(stderr, "heraldctl apikey: unknown subcommand \"%s\" (create, list or revoke)\n", sub);
    return CTL_EXIT_USAGE;
}

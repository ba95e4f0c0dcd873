/*
 * ctl: the heraldctl command table and what commands share.
 */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "cmd_apikey.h"
#include "log.h"

const ctl_command ctl_commands[] = {
    {"migrate", cmd_migrate, "apply pending schema migrations (--status to list them)"},
    {"topics", cmd_topics, "create Herald's Kafka topics; list a topic's subscribers"},
    {"apikey", cmd_apikey, "create, list and revoke API keys"},
    {"publish", cmd_publish, "publish one event, as the gateway would"},
    {"replay", cmd_replay, "re-publish the events of a time window"},
    {"dlq", cmd_dlq, "list, show, count and requeue dead letters"},
    {"status", cmd_status, "consumer lag, DLQ size and daemon health"},
    {"token", cmd_token, "mint a user token for one user's inbox"},
    {"inbox", cmd_inbox, "purge inbox messages past their retention"},
    {"digest-rules", cmd_digest_rules, "list, get, put and delete digest rules (gateway API)"},
    {"throttle-rules", cmd_throttle_rules,
     "list, get, put and delete throttle rules (gateway API)"},
    {"followup-rules", cmd_followup_rules,
     "list, get, put and delete follow-up rules (gateway API)"},
    {"digests", cmd_digests, "the open and closing digest windows"},
    {"followups", cmd_followups, "the pending follow-ups, soonest due first"},
    {"event", cmd_event, "one event's deliveries and their history, or its timeline (gateway API)"},
    {"suppress", cmd_suppress, "list, add and remove suppressed addresses (gateway API)"},
    {"webhooks", cmd_webhooks,
     "list, add, remove, enable status webhooks; their attempt log, replays (gateway API)"},
    {NULL, NULL, NULL},
};

config_status ctl_parse_flags(const char *name, const char *usage, const config_var *vars,
                              void *target, int argc, char **argv, int *first_positional)
{
    char err[512];
    const config_table table = {vars, target};
    config_status st =
        config_load(&table, 1, argc, argv, first_positional, NULL, usage, err, sizeof(err));
    if (st == CONFIG_ERROR)
        fprintf(stderr, "heraldctl %s: %s\n", name, err);
    return st;
}

int ctl_parse_only_flags(const char *name, const char *usage, const config_var *vars, void *target,
                         int argc, char **argv)
{
    int first = argc;
    config_status st = ctl_parse_flags(name, usage, vars, target, argc, argv, &first);
    if (st != CONFIG_OK)
        return st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (first < argc) {
        fprintf(stderr, "heraldctl %s: unexpected argument \"%s\"\n", name, argv[first]);
        return CTL_EXIT_USAGE;
    }
    return -1;
}

bool ctl_database_configured(const ctl_context *ctx)
{
    const char *env = getenv("HERALD_DATABASE_URL");
    if (env != NULL && env[0] != '\0')
        return true;
    for (const config_var *v = config_common_vars; v->env != NULL || v->flag != NULL; v++)
        if (v->env != NULL && strcmp(v->env, "HERALD_DATABASE_URL") == 0)
            return ctx->common.database_url != NULL && v->def != NULL &&
                   strcmp(ctx->common.database_url, v->def) != 0;
    return false;
}

PGconn *ctl_pg_connect(const ctl_context *ctx)
{
    /* connect_timeout keeps an unreachable server from hanging the CLI. */
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *values[] = {ctx->common.database_url, "10", "heraldctl", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char redacted[512];
        log_redact_url(ctx->common.database_url, redacted, sizeof(redacted));
        const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
        size_t len = strcspn(msg, "\n");
        fprintf(stderr, "heraldctl: cannot connect to PostgreSQL at %s: %.*s\n", redacted, (int)len,
                msg);
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

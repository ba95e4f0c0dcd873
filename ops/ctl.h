/*
 * ctl: what every heraldctl command shares — the global settings, exit
 * codes and the command table.
 *
 * Exit codes follow the contract: 0 success, 1 runtime failure (broker or
 * database unreachable, a write failed), 2 usage or configuration error.
 */
#ifndef HERALD_CTL_H
#define HERALD_CTL_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"

enum {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILURE = 1,
    CTL_EXIT_USAGE = 2,
};

typedef struct ctl_context {
    herald_common_config common;
    config_kafka_props kafka_props;
} ctl_context;

/* argv[0] is the command name ("migrate"); returns an exit code. */
typedef int (*ctl_command_fn)(const ctl_context *ctx, int argc, char **argv);

typedef struct ctl_command {
    const char *name;
    ctl_command_fn run;
    const char *summary;
} ctl_command;

extern const ctl_command ctl_commands[];

/*
 * Parses a subcommand's flags (a flag-only config table) from argv[1..].
 * Returns CONFIG_OK with *first_positional set, CONFIG_HELP after printing
 * usage, or CONFIG_ERROR after printing one line "heraldctl NAME: ..." to
 * stderr.
 */
config_status ctl_parse_flags(const char *name, const char *usage, const config_var *vars,
                              void *target, int argc, char **argv, int *first_positional);

/*
 * ctl_parse_flags for a command that takes flags and no arguments.  Returns
 * -1 to go on, or the exit code: CTL_EXIT_OK after --help, CTL_EXIT_USAGE
 * after a bad flag or an argument (named on stderr).
 */
int ctl_parse_only_flags(const char *name, const char *usage, const config_var *vars, void *target,
                         int argc, char **argv);

/*
 * Whether the operator pointed heraldctl at a database (HERALD_DATABASE_URL
 * or --database-url), rather than it holding the built-in default: commands
 * that only add to their report from the database skip it otherwise.
 */
bool ctl_database_configured(const ctl_context *ctx);

/* Connects to ctx's database; NULL and one line on stderr on failure. */
PGconn *ctl_pg_connect(const ctl_context *ctx);

#endif

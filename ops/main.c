/*
 * heraldctl: the operator's command line — migrate the schema, create
 * topics, manage API keys.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "kafka.h"
#include "log.h"

static void print_commands(FILE *out)
{
    fprintf(out, "\ncommands:\n");
    for (const ctl_command *c = ctl_commands; c->name != NULL; c++)
        fprintf(out, "  %-10s %s\n", c->name, c->summary);
    fprintf(out, "\n'heraldctl COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    ctl_context ctx = {0};
    const config_table tables[] = {{config_common_vars, &ctx.common}};
    char err[512];
    int first = argc;
    int rc = CTL_EXIT_USAGE;

    config_status st =
        config_load(tables, 1, argc, argv, &first, &ctx.kafka_props,
                    "usage: heraldctl [global flags] COMMAND [ARGS]", err, sizeof(err));
    if (st == CONFIG_HELP) {
        print_commands(stdout);
        rc = CTL_EXIT_OK;
        goto out;
    }
    if (st == CONFIG_ERROR) {
        fprintf(stderr, "heraldctl: %s\n", err);
        goto out;
    }
    log_init("heraldctl", (log_level)ctx.common.log_level, (log_format)ctx.common.log_format);
    /* Commands say what failed in their own line; the client's complaints
     * would come before it, repeated.  Its last one follows a failure. */
    kafka_client_log_quiet(true);
    curl_global_init(CURL_GLOBAL_DEFAULT); /* the commands that call the gateway or daemons */
    if (first >= argc) {
        fprintf(stderr, "usage: heraldctl [global flags] COMMAND [ARGS]\n");
        print_commands(stderr);
        goto out;
    }
    for (const ctl_command *c = ctl_commands; c->name != NULL; c++) {
        if (strcmp(c->name, argv[first]) == 0) {
            rc = c->run(&ctx, argc - first, argv + first);
            goto out;
        }
    }
    fprintf(stderr, "heraldctl: unknown command \"%s\" (see heraldctl --help)\n", argv[first]);
out:
    if (rc == CTL_EXIT_FAILURE) {
        char last[512];
        if (kafka_client_last_problem(last, sizeof(last)))
            fprintf(stderr, "heraldctl: the Kafka client last reported: %s\n", last);
    }
    curl_global_cleanup(); /* a no-op when init was not reached */
    config_free(tables, 1, &ctx.kafka_props);
    return rc;
}

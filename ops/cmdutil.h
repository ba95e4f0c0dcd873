/*
 * cmdutil: small pieces the operator commands share — TIME flags, a
 * producer with a bounded wait, the progress line of long scans, and
 * requests to the gateway's HTTP API.
 */
#ifndef HERALD_OPS_CMDUTIL_H
#define HERALD_OPS_CMDUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ctl.h"
#include "kafka.h"

#include <jansson.h>

/*
 * Parses the TIME argument of a flag (RFC 3339 or relative, timeutil.h).
 * NULL or "" leaves *out_ms at -1 and succeeds.  On error prints one line
 * "heraldctl CMD: --FLAG: ..." and returns -1 (exit 2).
 */
int cmdutil_time_flag(const char *cmd, const char *flag, const char *value, int64_t *out_ms)
    __attribute__((warn_unused_result));

/*
 * A producer whose messages give up after timeout_ms (message.timeout.ms,
 * unless the operator set it with -X), so an unreachable broker fails the
 * command instead of hanging it.  NULL with one line on stderr.
 */
kafka_producer *cmdutil_producer(const ctl_context *ctx, const char *cmd, int timeout_ms)
    __attribute__((warn_unused_result));

/*
 * The progress line of a long scan: redrawn in place on a terminal (stderr
 * a tty) at most a few times a second, silent otherwise.
 */
typedef struct cmdutil_progress {
    bool tty;
    int64_t last_ms;
    bool drawn;
} cmdutil_progress;

void cmdutil_progress_init(cmdutil_progress *p);

/* Redraws the line with the text of fmt when due (force: now). */
void cmdutil_progress_update(cmdutil_progress *p, bool force, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears the line, so what follows starts on a clean one. */
void cmdutil_progress_done(cmdutil_progress *p);

/* Prints "heraldctl CMD: cannot reach Kafka at BROKERS: ERR" (exit 1). */
void cmdutil_kafka_error(const ctl_context *ctx, const char *cmd, const char *what,
                         const char *err);

/* Where the gateway's API is and the admin key to call it with (flags of a command). */
typedef struct cmdutil_gateway {
    const char *url; /* "http://127.0.0.1:8080" */
    const char *api_key;
    long timeout_ms;
} cmdutil_gateway;

#define CMDUTIL_GATEWAY_MAX_BODY (4 * 1024 * 1024)

/*
 * The flags of a command that talks to the gateway, as entries of its
 * config_var table: --gateway-url (HERALD_GATEWAY_URL), --api-key
 * (HERALD_API_KEY, described by key_help) and --timeout, into the
 * members url_member, key_member and timeout_member of flags_type.
 */
#define CMDUTIL_GATEWAY_FLAGS(flags_type, url_member, key_member, timeout_member, key_help)        \
    {.env = "HERALD_GATEWAY_URL",                                                                  \
     .flag = "gateway-url",                                                                        \
     .type = CONFIG_STRING,                                                                        \
     .def = "http://127.0.0.1:8080",                                                               \
     .offset = offsetof(flags_type, url_member),                                                   \
     .help = "the gateway's base URL"},                                                            \
        {.env = "HERALD_API_KEY",                                                                  \
         .flag = "api-key",                                                                        \
         .type = CONFIG_STRING,                                                                    \
         .offset = offsetof(flags_type, key_member),                                               \
         .flags = CONFIG_SECRET,                                                                   \
         .help = key_help},                                                                        \
    {                                                                                              \
        .flag = "timeout", .type = CONFIG_DURATION, .def = "10s",                                  \
        .offset = offsetof(flags_type, timeout_member), .min = 100, .max = 600000,                 \
        .help = "longest wait for the gateway"                                                     \
    }

/*
 * One request to the gateway: method, path ("/v1/digest-rules"), an
 * optional JSON body.  0 when it answered: *status, and *out its JSON
 * body (NULL when empty or not JSON; the caller decrefs).  -1 after one
 * line "heraldctl CMD: cannot reach the gateway at URL: ..." (exit 1).
 */
int cmdutil_gateway_call(const cmdutil_gateway *g, const char *cmd, const char *method,
                         const char *path, const char *body, size_t body_len, long *status,
                         json_t **out) __attribute__((warn_unused_result));

/* Appends "&name=escaped value" to path when value is set; -1 when it does not fit. */
int cmdutil_add_query(char *path, size_t len, const char *name, const char *value)
    __attribute__((warn_unused_result));

/*
 * Prints "heraldctl CMD: HTTP STATUS: message (field F)" from the gateway's
 * error body; without "(field F)" when the message starts with F already.
 */
void cmdutil_gateway_error(const char *cmd, long status, const json_t *answer);

/*
 * One gateway call for a command, and its error line: 0 for a 2xx answer
 * (*out its JSON body, may be NULL; the caller decrefs), -1 after one line
 * on stderr (the gateway unreachable, or its error message).
 */
int cmdutil_gateway_request(const cmdutil_gateway *g, const char *cmd, const char *method,
                            const char *path, const char *body, size_t body_len, json_t **out)
    __attribute__((warn_unused_result));

/*
 * The subcommands of a "heraldctl CMD SUB [ARGS...] [flags]" command.  A
 * subcommand takes nargs positional arguments before its flags, described
 * by args ("CHANNEL ADDRESS", "a rule NAME") and, when valid is set,
 * checked by it.
 */
typedef struct cmdutil_sub {
    const char *name;
    int nargs;
    const char *args;
    bool (*valid)(const char *arg);
} cmdutil_sub;

/* What cmdutil_parse_sub found. */
typedef struct cmdutil_subcmd {
    const cmdutil_sub *sub;
    char name[64]; /* "CMD SUB", the prefix of the command's messages */
    char **args;   /* the sub's nargs positional arguments */
} cmdutil_subcmd;

/*
 * Parses argv (argv[0] is CMD) into out and the flags of vars into flags.
 * Returns -1 to go on, or the exit code: CTL_EXIT_OK after --help (usage on
 * stdout), CTL_EXIT_USAGE after one line on stderr naming what is wrong (no
 * or an unknown subcommand, missing arguments, a bad flag, an extra
 * argument).  The caller frees flags with config_free either way.
 */
int cmdutil_parse_sub(const char *cmd, const char *usage, const cmdutil_sub *subs, size_t nsubs,
                      const config_var *vars, void *flags, int argc, char **argv,
                      cmdutil_subcmd *out);

/* Whether the command has its API key; else one line naming what (e.g. "an admin API key"). */
bool cmdutil_have_key(const char *name, const char *api_key, const char *what);

/* Prints j indented on stdout. */
void cmdutil_print_json(const json_t *j);

/* A table cell of a JSON value: strings as they are, numbers, booleans,
 * arrays joined by commas, "-" for null or absent. */
void cmdutil_cell_text(const json_t *v, char *out, size_t outlen);

#endif

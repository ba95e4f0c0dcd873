/*
 * config: table-driven configuration from environment variables and flags.
 *
 * Each program describes its settings in one or more tables of config_var
 * (name, type, default, target field, help).  The same tables drive parsing,
 * validation and --help.  A bad value stops startup with one line that names
 * the variable or flag, e.g.
 *   "HERALD_SMS_MAX_ATTEMPTS: expected an integer in 1..100, got \"abc\"".
 *
 * Sources, later wins: the default, the environment variable, the flag.
 * Flags are "--name value" or "--name=value"; bool flags take no value.
 * "-X key=value" (repeatable, like kcat) and the HERALD_KAFKA_OPTS variable
 * (whitespace-separated key=value pairs) pass librdkafka properties through.
 *
 * Values of variables flagged CONFIG_SECRET are never printed (not in --help,
 * not in error messages, not by config_dump).
 */
#ifndef HERALD_CONFIG_H
#define HERALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CONFIG_STRING,   /* char *, owned by the target; NULL when unset */
    CONFIG_INT,      /* long, checked against min..max */
    CONFIG_BOOL,     /* bool: 1/0, true/false, yes/no, on/off */
    CONFIG_ENUM,     /* int: index into choices */
    CONFIG_DURATION, /* long milliseconds: "250ms", "5s", "2m", "1h" or bare ms */
    CONFIG_ADDR,     /* char *: "host:port" with a port in 0..65535 (0: any free port) */
} config_type;

enum {
    CONFIG_SECRET = 1 << 0,   /* never print the value */
    CONFIG_REQUIRED = 1 << 1, /* must be set (no default) */
};

typedef struct config_var {
    const char *env;  /* environment variable name, or NULL */
    const char *flag; /* long flag without "--", or NULL */
    config_type type;
    const char *def; /* default as text, or NULL for unset */
    size_t offset;   /* offsetof() the field in the target struct */
    const char *help;
    unsigned flags;
    long min, max;              /* CONFIG_INT / CONFIG_DURATION bounds (0,0 = none) */
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated */
    /*
     * Optional extra rule for CONFIG_STRING / CONFIG_ADDR values: returns 0,
     * or -1 with what was expected in err ("expected ..."), which config
     * completes into "NAME: expected ..., got \"value\"".
     */
    int (*check)(const char *value, char *err, size_t errlen);
} config_var;

/* A table and the struct its offsets point into. */
typedef struct config_table {
    const config_var *vars; /* terminated by an entry with env == NULL && flag == NULL */
    void *target;
} config_table;

/* librdkafka properties passed through with -X / HERALD_KAFKA_OPTS. */
typedef struct config_kv {
    char *key;
    char *value;
} config_kv;

typedef struct config_kafka_props {
    config_kv *items;
    size_t count;
} config_kafka_props;

typedef enum {
    CONFIG_OK = 0,
    CONFIG_HELP = 1,   /* --help was given: usage was printed, exit 0 */
    CONFIG_ERROR = -1, /* err names the variable or flag: exit 2 */
} config_status;

/*
 * Applies defaults, then the environment, then argv[1..] to every table.
 * Parsing stops at the first argument that is not a flag (or after "--");
 * its index is stored in *first_positional (argc when there is none), so a
 * CLI can parse subcommands.  With first_positional NULL, a positional
 * argument is an error (daemons take none).  Unknown flags are errors.
 * -X pairs and HERALD_KAFKA_OPTS go to *props (NULL rejects -X and ignores
 * the variable); *props starts zeroed, and a key given again replaces its
 * value, so the later source wins.  usage is printed to stdout on --help
 * with the tables' help texts.  On error nothing needs freeing beyond
 * config_free().
 *
 * The target structs start zeroed (config_free() frees what is in them).
 * An empty environment variable counts as unset, except for CONFIG_STRING,
 * where it sets the empty string (an empty HERALD_TOPIC_PREFIX is valid).
 */
config_status config_load(const config_table *tables, size_t ntables, int argc, char **argv,
                          int *first_positional, config_kafka_props *props, const char *usage,
                          char *err, size_t errlen) __attribute__((warn_unused_result));

/* Prints usage then one line per setting: flag, variable, default, help. */
void config_print_help(FILE *out, const char *usage, const config_table *tables, size_t ntables);

/* Prints the effective settings, one "NAME=value" per line; secrets as "(secret)",
 * and passwords inside URLs redacted. */
void config_dump(FILE *out, const config_table *tables, size_t ntables);

/* A deep copy of from (NULL: empty) into *to, freed with config_free(NULL, 0, to); -1 when out
 * of memory (then *to is empty). */
int config_kafka_props_copy(const config_kafka_props *from, config_kafka_props *to)
    __attribute__((warn_unused_result));

/* Frees the CONFIG_STRING / CONFIG_ADDR fields of every table and the props. */
void config_free(const config_table *tables, size_t ntables, config_kafka_props *props);

/* Frees the pairs of props (NULL: nothing) and empties it. */
void config_kafka_props_free(config_kafka_props *props);

/*
 * Parses one value of the given var into the struct its offset points into
 * (target is the struct, as in config_table), for reuse by subcommand
 * parsers.  Errors name the var's flag, or its variable if it has no flag.
 */
int config_parse_value(const config_var *var, const char *text, void *target, char *err,
                       size_t errlen) __attribute__((warn_unused_result));

/*
 * An address "host:port", or "[v6]:port" with an IPv6 literal: the one
 * syntax of every CONFIG_ADDR setting and of every listener.  The host is
 * non-empty, without blanks or '/', and not resolved here; the port is
 * decimal 0..65535, 0 meaning any free port.
 */
typedef struct config_addr {
    const char *host; /* into the parsed text, hostlen bytes, brackets excluded */
    size_t hostlen;
    uint16_t port;
    bool bracketed; /* given as "[v6]:port" */
} config_addr;

/* Returns 0 and fills *out, or -1 with a message quoting text in err (err
 * may be NULL). */
int config_parse_addr(const char *text, config_addr *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * How a daemon's consumer is a member of its group (config_member_vars):
 * its static member id and its session.  See kafka_member_consumer_new().
 */
typedef struct config_group_member {
    char *instance_id;       /* HERALD_KAFKA_GROUP_INSTANCE_ID; NULL: a dynamic member */
    long session_timeout_ms; /* HERALD_KAFKA_SESSION_TIMEOUT_MS; 0: librdkafka's default */
} config_group_member;

/* Kafka's limit on a group.instance.id, as on a topic name. */
#define CONFIG_GROUP_INSTANCE_ID_MAX 249

/*
 * Settings every Herald program shares.  Programs list config_common_vars
 * as one of their tables with a herald_common_config as its target.
 */
typedef struct herald_common_config {
    char *kafka_brokers;
    char *database_url;
    char *topic_prefix;
    int log_level;  /* log_level */
    int log_format; /* log_format */
    long stall_ms;  /* daemons only (daemon_config_vars): liveness threshold */
    /* daemons whose consumer joins a group only (config_member_vars) */
    config_group_member member;
} herald_common_config;

extern const config_var config_common_vars[];

/*
 * HERALD_KAFKA_GROUP_INSTANCE_ID and HERALD_KAFKA_SESSION_TIMEOUT_MS, into
 * herald_common_config.member: for the daemons whose consumer joins a
 * group (dispatcher, workers, herald-webhooks).
 */
extern const config_var config_member_vars[];

/* Kafka's rule for a group.instance.id: 1..249 of [A-Za-z0-9._-]; the
 * check of HERALD_KAFKA_GROUP_INSTANCE_ID (0, or -1 with what was expected). */
int config_check_group_instance_id(const char *value, char *err, size_t errlen);

/* Builds "<prefix><name>" into out; returns out. */
char *config_topic(const herald_common_config *c, const char *name, char *out, size_t outlen);

#endif

/*
 * flags: the command-line table of the test providers.
 *
 * Each server describes its flags in one table (name, type, target, help);
 * the same table drives parsing, range checks and --help, so the usage text
 * cannot drift from what is accepted.  Flags are "--name value" or
 * "--name=value"; bool flags take no value.  String targets point into argv
 * (nothing to free).
 */
#ifndef PROVIDERS_FLAGS_H
#define PROVIDERS_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum {
    FLAG_STRING, /* const char ** */
    FLAG_LONG,   /* long *, checked against min..max */
    FLAG_DOUBLE, /* double *, checked against min..max */
    FLAG_BOOL,   /* bool *, set to true when present */
} flag_type;

typedef struct flag_spec {
    const char *name; /* without "--"; NULL ends the table */
    flag_type type;
    void *target;
    const char *metavar; /* shown in --help, e.g. "MS" */
    const char *help;
    double min, max; /* FLAG_LONG / FLAG_DOUBLE bounds */
} flag_spec;

typedef enum {
    FLAGS_OK = 0,
    FLAGS_HELP = 1,   /* --help: usage printed on stdout, exit 0 */
    FLAGS_ERROR = -1, /* err names the flag: exit 2 */
} flags_status;

/* Parses argv[1..]; positional arguments are errors. */
flags_status flags_parse(const flag_spec *specs, int argc, char **argv, const char *usage,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/* Prints usage, then one line per flag with its current value as default. */
void flags_print_help(FILE *out, const char *usage, const flag_spec *specs);

#endif

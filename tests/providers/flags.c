/*
 * flags: see flags.h.
 */
#include "flags.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const flag_spec *flags_find(const flag_spec *specs, const char *name, size_t namelen)
{
    for (const flag_spec *s = specs; s->name != NULL; s++) {
        if (strlen(s->name) == namelen && strncmp(s->name, name, namelen) == 0)
            return s;
    }
    return NULL;
}

static int flags_set(const flag_spec *s, const char *value, char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case FLAG_STRING:
        *(const char **)s->target = value;
        return 0;
    case FLAG_LONG: {
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < s->min || v > s->max) {
            snprintf(err, errlen, "--%s: expected an integer in %.0f..%.0f, got \"%s\"", s->name,
                     s->min, s->max, value);
            return -1;
        }
        *(long *)s->target = v;
        return 0;
    }
    case FLAG_DOUBLE: {
        double v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || isnan(v) || v < s->min || v > s->max) {
            snprintf(err, errlen, "--%s: expected a number in %g..%g, got \"%s\"", s->name, s->min,
                     s->max, value);
            return -1;
        }
        *(double *)s->target = v;
        return 0;
    }
    case FLAG_BOOL:
        *(bool *)s->target = true;
        return 0;
    }
    snprintf(err, errlen, "--%s: unknown flag type", s->name);
    return -1;
}

flags_status flags_parse(const flag_spec *specs, int argc, char **argv, const char *usage,
                         char *err, size_t errlen)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            flags_print_help(stdout, usage, specs);
            return FLAGS_HELP;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
            return FLAGS_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const flag_spec *s = flags_find(specs, name, namelen);
        if (s == NULL) {
            snprintf(err, errlen, "unknown flag --%.*s (see --help)", (int)namelen, name);
            return FLAGS_ERROR;
        }
        const char *value = NULL;
        if (s->type == FLAG_BOOL) {
            if (eq != NULL) {
                snprintf(err, errlen, "--%s takes no value", s->name);
                return FLAGS_ERROR;
            }
            value = "";
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value", s->name);
            return FLAGS_ERROR;
        }
        if (flags_set(s, value, err, errlen) != 0)
            return FLAGS_ERROR;
    }
    return FLAGS_OK;
}

void flags_print_help(FILE *out, const char *usage, const flag_spec *specs)
{
    fprintf(out, "%s\n\nFlags:\n", usage);
    for (const flag_spec *s = specs; s->name != NULL; s++) {
        char left[64];
        if (s->metavar != NULL)
            snprintf(left, sizeof(left), "--%s %s", s->name, s->metavar);
        else
            snprintf(left, sizeof(left), "--%s", s->name);
        char def[64] = "";
        switch (s->type) {
        case FLAG_STRING: {
            const char *v = *(const char **)s->target;
            if (v != NULL && *v != '\0')
                snprintf(def, sizeof(def), " (default %s)", v);
            break;
        }
        case FLAG_LONG:
            snprintf(def, sizeof(def), " (default %ld)", *(long *)s->target);
            break;
        case FLAG_DOUBLE:
            snprintf(def, sizeof(def), " (default %g)", *(double *)s->target);
            break;
        case FLAG_BOOL:
            break;
        }
        fprintf(out, "  %-28s %s%s\n", left, s->help, def);
    }
    fprintf(out, "  %-28s %s\n", "--help", "print this help and exit");
}

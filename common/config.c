/*
 * config: one pass over the tables per source (default, environment,
 * flags), each value parsed by the same per-type routine, so a setting
 * behaves the same whichever way it was given.  Error lines name the
 * source the bad value came from (the variable, or the flag), and quote
 * the value unless it is secret.
 */
#include "config.h"
#include "error.h"

#include "log.h"

#include <libpq-fe.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUOTE_MAX        64  /* bytes of a bad value quoted in an error */
#define PROPS_MAX        256 /* -X / HERALD_KAFKA_OPTS pairs */
#define TOPIC_PREFIX_MAX 100

/* Indexes are the log_level and log_format values of log.h. */
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_format_choices[] = {"text", "json", NULL};

/* Whether every character of value is one Kafka allows in a name: A-Z a-z 0-9 . _ - */
static bool kafka_name_chars(const char *value)
{
    for (const char *p = value; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Kafka topic names allow [A-Za-z0-9._-] up to 249 bytes; 100 leaves room for our names. */
static int check_topic_prefix(const char *value, char *err, size_t errlen)
{
    if (strlen(value) <= TOPIC_PREFIX_MAX && kafka_name_chars(value))
        return 0;
    error_set(err, errlen, "expected at most %d characters of A-Z a-z 0-9 . _ -", TOPIC_PREFIX_MAX);
    return -1;
}

int config_check_group_instance_id(const char *value, char *err, size_t errlen)
{
    size_t n = strlen(value);
    if (n >= 1 && n <= CONFIG_GROUP_INSTANCE_ID_MAX && kafka_name_chars(value))
        return 0;
    error_set(err, errlen, "expected 1 to %d characters of A-Z a-z 0-9 . _ -",
              CONFIG_GROUP_INSTANCE_ID_MAX);
    return -1;
}

/* A list of host:port (or host) with nothing empty in it and no blanks. */
static int check_brokers(const char *value, char *err, size_t errlen)
{
    bool ok = *value != '\0' && *value != ',' && value[strlen(value) - 1] != ',' &&
              strstr(value, ",,") == NULL;
    for (const char *p = value; ok && *p; p++)
        ok = *p > ' ' && *p != 0x7f;
    if (ok)
        return 0;
    error_set(err, errlen, "expected host:port[,host:port...]");
    return -1;
}

/*
 * What libpq will accept.  Its own message is not passed on: it can quote
 * part of the string, and the string may hold a password.
 */
static int check_database_url(const char *value, char *err, size_t errlen)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &why);
    PQconninfoFree(opts);
    PQfreemem(why);
    if (opts != NULL)
        return 0;
    error_set(err, errlen,
              "expected a libpq connection string (postgresql://... or key=value ...)");
    return -1;
}

#define COMMON(field) offsetof(herald_common_config, field)

const config_var config_common_vars[] = {
    {.env = "HERALD_KAFKA_BROKERS",
     .flag = "brokers",
     .type = CONFIG_STRING,
     .def = "127.0.0.1:9092",
     .offset = COMMON(kafka_brokers),
     .help = "Kafka bootstrap servers, host:port[,host:port...]",
     .check = check_brokers},
    /* A libpq URL or keyword string may carry a password. */
    {.env = "HERALD_DATABASE_URL",
     .flag = "database-url",
     .type = CONFIG_STRING,
     .def = "postgresql://127.0.0.1:55432/herald",
     .offset = COMMON(database_url),
     .help = "PostgreSQL connection string (libpq URL or key=value)",
     .flags = CONFIG_SECRET,
     .check = check_database_url},
    {.env = "HERALD_TOPIC_PREFIX",
     .flag = "topic-prefix",
     .type = CONFIG_STRING,
     .def = "herald.",
     .offset = COMMON(topic_prefix),
     .help = "prefix of every topic name",
     .check = check_topic_prefix},
    {.env = "HERALD_LOG_LEVEL",
     .flag = "log-level",
     .type = CONFIG_ENUM,
     .def = "info",
     .offset = COMMON(log_level),
     .help = "lowest level logged",
     .choices = log_level_choices},
    {.env = "HERALD_LOG_FORMAT",
     .flag = "log-format",
     .type = CONFIG_ENUM,
     .def = "text",
     .offset = COMMON(log_format),
     .help = "log line format",
     .choices = log_format_choices},
    {0},
};

/*
 * The session's default is 15 s instead of librdkafka's 45 s.  Heartbeats
 * come from librdkafka's own thread, every 3 s, so a busy main loop never
 * misses one (a stuck loop is max.poll.interval.ms's business): a session
 * runs out only for a dead process or a network cut that long, and five
 * heartbeats lost in a row are not a blip.  It is also how long the
 * partitions of a killed member without an instance id, or of a static
 * member stopped for good, stay unread.
 */
const config_var config_member_vars[] = {
    {.env = "HERALD_KAFKA_GROUP_INSTANCE_ID",
     .type = CONFIG_STRING,
     .offset = COMMON(member.instance_id),
     .help = "static group member id (group.instance.id), unique per live process: a restart "
             "with the same id takes its partitions back without a rebalance",
     .check = config_check_group_instance_id},
    {.env = "HERALD_KAFKA_SESSION_TIMEOUT_MS",
     .type = CONFIG_DURATION,
     .def = "15000",
     .offset = COMMON(member.session_timeout_ms),
     .min = 6000,
     .max = 300000,
     .help = "how long the group waits for a silent member before it gives its partitions "
             "away (session.timeout.ms; heartbeats every third of it, at most every 3 s)"},
    {0},
};

/* ---- values ---- */

static bool var_is_end(const config_var *v)
{
    return v->env == NULL && v->flag == NULL;
}

static void *field_of(const config_var *v, void *target)
{
    return (char *)target + v->offset;
}

static bool is_string_type(config_type t)
{
    return t == CONFIG_STRING || t == CONFIG_ADDR;
}

/* "value" quoted for an error line: escaped, bounded, or (secret). */
static const char *quote_value(const config_var *v, const char *text, char *out, size_t outlen)
{
    if (v != NULL && (v->flags & CONFIG_SECRET)) {
        snprintf(out, outlen, "(secret)");
        return out;
    }
    size_t o = 0;
    if (outlen < QUOTE_MAX * 4 + 8)
        return "(value)";
    out[o++] = '"';
    size_t i;
    for (i = 0; text[i] != '\0' && i < QUOTE_MAX; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        else if (c == '"' || c == '\\')
            out[o++] = '\\', out[o++] = (char)c;
        else
            out[o++] = (char)c;
    }
    if (text[i] != '\0') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Writes "1h", "5s", "250ms": the largest unit that divides the value. */
static void format_duration(long ms, char *out, size_t outlen)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, outlen, "%ldh", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, outlen, "%ldm", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, outlen, "%lds", ms / 1000);
    else
        snprintf(out, outlen, "%ldms", ms);
}

static int parse_long(const char *text, long *out)
{
    if (text[0] == '\0' || text[0] == ' ' || text[0] == '\t')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_duration(const char *text, long *out)
{
    long n = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        if (n > (LONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (text[i] - '0');
    }
    if (i == 0)
        return -1;
    const char *unit = text + i;
    long mult;
    if (*unit == '\0' || strcmp(unit, "ms") == 0)
        mult = 1;
    else if (strcmp(unit, "s") == 0)
        mult = 1000;
    else if (strcmp(unit, "m") == 0)
        mult = 60000;
    else if (strcmp(unit, "h") == 0)
        mult = 3600000;
    else
        return -1;
    if (__builtin_mul_overflow(n, mult, out))
        return -1;
    return 0;
}

static int parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

#define ADDR_HINT "expected host:port, e.g. 127.0.0.1:9100 or [::1]:9100"

/* Decimal 0..65535, at most five digits. */
static int parse_port(const char *s, uint16_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
        return -1;
    long v = strtol(s, NULL, 10);
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int config_parse_addr(const char *text, config_addr *out, char *err, size_t errlen)
{
    const char *port;

    if (text == NULL || text[0] == '\0') {
        error_set(err, errlen, "empty listen address: " ADDR_HINT);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':') {
            error_set(err, errlen, "invalid listen address \"%s\": " ADDR_HINT, text);
            return -1;
        }
        if (close == text + 1) {
            error_set(err, errlen, "invalid listen address \"%s\": bad IPv6 address", text);
            return -1;
        }
        out->host = text + 1;
        out->hostlen = (size_t)(close - text - 1);
        out->bracketed = true;
        port = close + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL) {
            error_set(err, errlen, "invalid listen address \"%s\": missing port; " ADDR_HINT, text);
            return -1;
        }
        /* An unbracketed IPv6 address cannot be told apart from its port. */
        if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
            error_set(err, errlen,
                      "invalid listen address \"%s\": put an IPv6 address in brackets, "
                      "e.g. [::1]:9100",
                      text);
            return -1;
        }
        if (colon == text) {
            error_set(err, errlen,
                      "invalid listen address \"%s\": missing host (0.0.0.0 listens on "
                      "all interfaces)",
                      text);
            return -1;
        }
        out->host = text;
        out->hostlen = (size_t)(colon - text);
        port = colon + 1;
    }
    for (size_t i = 0; i < out->hostlen; i++) {
        char c = out->host[i];
        if (c == ' ' || c == '\t' || c == '/') {
            error_set(err, errlen, "invalid listen address \"%s\": blank or '/' in the host", text);
            return -1;
        }
    }
    if (parse_port(port, &out->port) != 0) {
        error_set(err, errlen, "invalid listen address \"%s\": port must be 0..65535", text);
        return -1;
    }
    return 0;
}

static void join_choices(const char *const *choices, char *out, size_t outlen)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; choices != NULL && choices[i] != NULL; i++)
        o += (size_t)snprintf(out + o, o < outlen ? outlen - o : 0, "%s%s", i ? "|" : "",
                              choices[i]);
}

/*
 * Parses text into var's field of target; label names the source in errors
 * ("HERALD_LOG_LEVEL", "--log-level").
 */
static int parse_value(const config_var *v, const char *label, const char *text, void *target,
                       char *err, size_t errlen)
{
    char quoted[QUOTE_MAX * 4 + 8];
    char expect[256];
    void *f = field_of(v, target);

    switch (v->type) {
    case CONFIG_STRING:
    case CONFIG_ADDR: {
        config_addr addr;
        if (v->type == CONFIG_ADDR && config_parse_addr(text, &addr, NULL, 0) != 0) {
            error_set(err, errlen, "%s: expected host:port with a port in 0..65535, got %s", label,
                      quote_value(v, text, quoted, sizeof quoted));
            return -1;
        }
        if (v->check != NULL && v->check(text, expect, sizeof expect) != 0) {
            error_set(err, errlen, "%s: %s, got %s", label, expect,
                      quote_value(v, text, quoted, sizeof quoted));
            return -1;
        }
        char *copy = strdup(text);
        if (copy == NULL) {
            error_set(err, errlen, "%s: out of memory", label);
            return -1;
        }
        char **slot = f;
        free(*slot);
        *slot = copy;
        return 0;
    }
    case CONFIG_INT: {
        long n;
        bool bounded = v->min != 0 || v->max != 0;
        if (parse_long(text, &n) != 0 || (bounded && (n < v->min || n > v->max))) {
            if (bounded)
                snprintf(expect, sizeof expect, "an integer in %ld..%ld", v->min, v->max);
            else
                snprintf(expect, sizeof expect, "an integer");
            error_set(err, errlen, "%s: expected %s, got %s", label, expect,
                      quote_value(v, text, quoted, sizeof quoted));
            return -1;
        }
        *(long *)f = n;
        return 0;
    }
    case CONFIG_BOOL:
        if (parse_bool(text, f) != 0) {
            error_set(err, errlen, "%s: expected true or false (or 1/0, yes/no, on/off), got %s",
                      label, quote_value(v, text, quoted, sizeof quoted));
            return -1;
        }
        return 0;
    case CONFIG_ENUM:
        for (int i = 0; v->choices != NULL && v->choices[i] != NULL; i++) {
            if (strcasecmp(text, v->choices[i]) == 0) {
                *(int *)f = i;
                return 0;
            }
        }
        join_choices(v->choices, expect, sizeof expect);
        error_set(err, errlen, "%s: expected one of %s, got %s", label, expect,
                  quote_value(v, text, quoted, sizeof quoted));
        return -1;
    case CONFIG_DURATION: {
        long ms;
        bool bounded = v->min != 0 || v->max != 0;
        if (parse_duration(text, &ms) != 0 || (bounded && (ms < v->min || ms > v->max))) {
            if (bounded) {
                char lo[32], hi[32];
                format_duration(v->min, lo, sizeof lo);
                format_duration(v->max, hi, sizeof hi);
                snprintf(expect, sizeof expect, "a duration from %s to %s", lo, hi);
            } else {
                snprintf(expect, sizeof expect, "a duration");
            }
            error_set(err, errlen, "%s: expected %s (like 250ms, 5s, 2m, 1h), got %s", label,
                      expect, quote_value(v, text, quoted, sizeof quoted));
            return -1;
        }
        *(long *)f = ms;
        return 0;
    }
    }
    error_set(err, errlen, "%s: unsupported setting type", label);
    return -1;
}

int config_parse_value(const config_var *var, const char *text, void *target, char *err,
                       size_t errlen)
{
    char label[128];
    if (var->flag != NULL)
        snprintf(label, sizeof label, "--%s", var->flag);
    else
        snprintf(label, sizeof label, "%s", var->env);
    return parse_value(var, label, text != NULL ? text : "", target, err, errlen);
}

/* ---- librdkafka pass-through ---- */

static int props_set(config_kafka_props *props, const char *key, size_t keylen, const char *value,
                     size_t valuelen)
{
    for (size_t i = 0; i < props->count; i++) {
        config_kv *kv = &props->items[i];
        if (strlen(kv->key) == keylen && memcmp(kv->key, key, keylen) == 0) {
            char *v = strndup(value, valuelen);
            if (v == NULL)
                return -1;
            free(kv->value);
            kv->value = v;
            return 0;
        }
    }
    if (props->count >= PROPS_MAX)
        return -1;
    config_kv *grown = realloc(props->items, (props->count + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    props->items = grown;
    char *k = strndup(key, keylen);
    char *v = strndup(value, valuelen);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return -1;
    }
    props->items[props->count++] = (config_kv){k, v};
    return 0;
}

int config_kafka_props_copy(const config_kafka_props *from, config_kafka_props *to)
{
    *to = (config_kafka_props){0};
    for (size_t i = 0; from != NULL && i < from->count; i++) {
        const config_kv *kv = &from->items[i];
        if (props_set(to, kv->key, strlen(kv->key), kv->value, strlen(kv->value)) != 0) {
            config_free(NULL, 0, to);
            return -1;
        }
    }
    return 0;
}

/*
 * Adds one "key=value" of n bytes.  The text is never quoted back in errors:
 * the value may be sasl.password, and a missing '=' may mean a value was
 * split from its key.
 */
static int props_add_pair(config_kafka_props *props, const char *text, size_t n, const char *label,
                          char *err, size_t errlen)
{
    const char *eq = memchr(text, '=', n);
    if (eq == NULL || eq == text) {
        error_set(err, errlen, "%s: expected key=value (a librdkafka property)", label);
        return -1;
    }
    for (const char *p = text; p < eq; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            error_set(err, errlen, "%s: expected key=value (a librdkafka property)", label);
            return -1;
        }
    }
    if (props_set(props, text, (size_t)(eq - text), eq + 1, n - (size_t)(eq - text) - 1) != 0) {
        error_set(err, errlen, "%s: too many librdkafka properties (at most %d) or out of memory",
                  label, PROPS_MAX);
        return -1;
    }
    return 0;
}

static int props_from_env(config_kafka_props *props, char *err, size_t errlen)
{
    const char *s = getenv("HERALD_KAFKA_OPTS");
    if (s == NULL)
        return 0;
    size_t item = 0;
    while (*s != '\0') {
        s += strspn(s, " \t\r\n");
        size_t n = strcspn(s, " \t\r\n");
        if (n == 0)
            break;
        item++;
        char label[64];
        snprintf(label, sizeof label, "HERALD_KAFKA_OPTS (item %zu)", item);
        if (props_add_pair(props, s, n, label, err, errlen) != 0)
            return -1;
        s += n;
    }
    return 0;
}

/* ---- help ---- */

static const char *type_placeholder(const config_var *v, char *buf, size_t buflen)
{
    switch (v->type) {
    case CONFIG_STRING:
        return "VALUE";
    case CONFIG_INT:
        return "N";
    case CONFIG_BOOL:
        return "";
    case CONFIG_ENUM:
        join_choices(v->choices, buf, buflen);
        return buf;
    case CONFIG_DURATION:
        return "DURATION";
    case CONFIG_ADDR:
        return "HOST:PORT";
    }
    return "VALUE";
}

static void print_var_help(FILE *out, const config_var *v)
{
    char flagcol[320] = "", placeholder[256], extra[96] = "";
    if (v->flag != NULL) {
        const char *ph = type_placeholder(v, placeholder, sizeof placeholder);
        snprintf(flagcol, sizeof flagcol, "--%s%s%s", v->flag, *ph ? " " : "", ph);
    }
    if (v->type == CONFIG_INT && (v->min != 0 || v->max != 0)) {
        snprintf(extra, sizeof extra, " (%ld..%ld)", v->min, v->max);
    } else if (v->type == CONFIG_DURATION && (v->min != 0 || v->max != 0)) {
        char lo[32], hi[32];
        format_duration(v->min, lo, sizeof lo);
        format_duration(v->max, hi, sizeof hi);
        snprintf(extra, sizeof extra, " (%s..%s)", lo, hi);
    }
    fprintf(out, "  %-34s %-28s %s%s", flagcol, v->env != NULL ? v->env : "",
            v->help != NULL ? v->help : "", extra);
    if (v->flags & CONFIG_SECRET)
        fprintf(out, " [default: (secret)]");
    else if (v->def != NULL)
        fprintf(out, " [default: %s]", *v->def ? v->def : "\"\"");
    else if (v->flags & CONFIG_REQUIRED)
        fprintf(out, " [required]");
    fputc('\n', out);
}

static void print_help(FILE *out, const char *usage, const config_table *tables, size_t ntables,
                       bool kafka_props)
{
    if (usage != NULL && *usage != '\0') {
        fputs(usage, out);
        if (usage[strlen(usage) - 1] != '\n')
            fputc('\n', out);
        fputc('\n', out);
    }
    fprintf(out, "Options (flag, environment variable; a flag overrides its variable):\n");
    for (size_t t = 0; t < ntables; t++)
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++)
            print_var_help(out, v);
    if (kafka_props) {
        fprintf(out, "  %-34s %-28s %s\n", "-X KEY=VALUE", "HERALD_KAFKA_OPTS",
                "librdkafka property, repeatable; the variable takes space-separated pairs");
    }
    fprintf(out, "  %-34s %-28s %s\n", "-h, --help", "", "show this help and exit");
}

void config_print_help(FILE *out, const char *usage, const config_table *tables, size_t ntables)
{
    print_help(out, usage, tables, ntables, false);
}

void config_dump(FILE *out, const config_table *tables, size_t ntables)
{
    for (size_t t = 0; t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++) {
            const void *f = field_of(v, tables[t].target);
            const char *name = v->env != NULL ? v->env : v->flag;
            char buf[1024];
            switch (v->type) {
            case CONFIG_STRING:
            case CONFIG_ADDR: {
                const char *s = *(char *const *)f;
                if (s == NULL)
                    snprintf(buf, sizeof buf, "(unset)");
                else if (v->flags & CONFIG_SECRET)
                    snprintf(buf, sizeof buf, "(secret)");
                else
                    log_redact_url(s, buf, sizeof buf);
                break;
            }
            case CONFIG_INT:
                snprintf(buf, sizeof buf, "%ld", *(const long *)f);
                break;
            case CONFIG_BOOL:
                snprintf(buf, sizeof buf, "%s", *(const bool *)f ? "true" : "false");
                break;
            case CONFIG_ENUM:
                snprintf(buf, sizeof buf, "%s", v->choices[*(const int *)f]);
                break;
            case CONFIG_DURATION:
                format_duration(*(const long *)f, buf, sizeof buf);
                break;
            }
            if (v->flags & CONFIG_SECRET && !is_string_type(v->type))
                snprintf(buf, sizeof buf, "(secret)");
            fprintf(out, "%s=%s\n", name, buf);
        }
    }
}

/* ---- loading ---- */

static const config_var *find_flag(const config_table *tables, size_t ntables, const char *name,
                                   size_t namelen, const config_table **table, size_t *index)
{
    size_t idx = 0;
    for (size_t t = 0; t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++, idx++) {
            if (v->flag != NULL && strlen(v->flag) == namelen &&
                memcmp(v->flag, name, namelen) == 0) {
                *table = &tables[t];
                *index = idx;
                return v;
            }
        }
    }
    return NULL;
}

/* Step 1: every default, so that a bad default in a table shows at once. */
static int apply_defaults(const config_table *tables, size_t ntables, bool *given, char *err,
                          size_t errlen)
{
    char label[160];
    size_t idx = 0;
    for (size_t t = 0; t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++, idx++) {
            if (v->def == NULL)
                continue;
            snprintf(label, sizeof label, "%s (default)", v->env != NULL ? v->env : v->flag);
            if (parse_value(v, label, v->def, tables[t].target, err, errlen) != 0)
                return -1;
            given[idx] = true;
        }
    }
    return 0;
}

/* Step 2: the environment, over the defaults. */
static int apply_env(const config_table *tables, size_t ntables, bool *given, char *err,
                     size_t errlen)
{
    size_t idx = 0;
    for (size_t t = 0; t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++, idx++) {
            const char *text = v->env != NULL ? getenv(v->env) : NULL;
            if (text == NULL || (*text == '\0' && v->type != CONFIG_STRING))
                continue;
            if (parse_value(v, v->env, text, tables[t].target, err, errlen) != 0)
                return -1;
            given[idx] = true;
        }
    }
    return 0;
}

/* One "--name[=value]" at argv[*i]; *i moves past a separate value. */
static int apply_flag(const config_table *tables, size_t ntables, int argc, char **argv, int *i,
                      bool *given, char *err, size_t errlen)
{
    char label[160];
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t namelen = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const config_table *table = NULL;
    size_t vi = 0;
    const config_var *v = find_flag(tables, ntables, name, namelen, &table, &vi);
    if (v == NULL) {
        /* Only the name: text after '=' may be a secret typed under a wrong flag. */
        error_set(err, errlen, "unknown flag --%.*s (see --help)", (int)namelen, name);
        return -1;
    }
    snprintf(label, sizeof label, "--%s", v->flag);
    const char *text;
    if (eq != NULL)
        text = eq + 1;
    else if (v->type == CONFIG_BOOL)
        text = "true";
    else if (*i + 1 < argc)
        text = argv[++*i]; /* may start with '-': "--from -15m" */
    else {
        error_set(err, errlen, "%s: expected a value", label);
        return -1;
    }
    if (parse_value(v, label, text, table->target, err, errlen) != 0)
        return -1;
    given[vi] = true;
    return 0;
}

/* Step 3: the flags, over the environment, up to the first positional
 * argument, whose index goes to *next. */
static config_status apply_args(const config_table *tables, size_t ntables, int argc, char **argv,
                                config_kafka_props *props, const char *usage, bool *given,
                                int *next, char *err, size_t errlen)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_help(stdout, usage, tables, ntables, props != NULL);
            fflush(stdout);
            return CONFIG_HELP;
        }
        if (a[0] == '-' && a[1] == 'X' && props != NULL) {
            const char *pair = a[2] != '\0' ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (pair == NULL) {
                error_set(err, errlen, "-X: expected key=value (a librdkafka property)");
                return CONFIG_ERROR;
            }
            if (props_add_pair(props, pair, strlen(pair), "-X", err, errlen) != 0)
                return CONFIG_ERROR;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (apply_flag(tables, ntables, argc, argv, &i, given, err, errlen) != 0)
                return CONFIG_ERROR;
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            error_set(err, errlen, "unknown flag %.*s (see --help)", 64, a);
            return CONFIG_ERROR;
        }
        break; /* the first positional argument ("-" included: it conventionally means stdin) */
    }
    *next = i;
    return CONFIG_OK;
}

/* Step 4: every CONFIG_REQUIRED setting was given, and not empty. */
static int check_required(const config_table *tables, size_t ntables, const bool *given, char *err,
                          size_t errlen)
{
    size_t idx = 0;
    for (size_t t = 0; t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++, idx++) {
            if (!(v->flags & CONFIG_REQUIRED))
                continue;
            const void *f = field_of(v, tables[t].target);
            bool empty = is_string_type(v->type) &&
                         (*(char *const *)f == NULL || **(char *const *)f == '\0');
            if (given[idx] && !empty)
                continue;
            if (v->env != NULL && v->flag != NULL)
                error_set(err, errlen, "%s: required, set it or pass --%s", v->env, v->flag);
            else if (v->env != NULL)
                error_set(err, errlen, "%s: required", v->env);
            else
                error_set(err, errlen, "--%s: required", v->flag);
            return -1;
        }
    }
    return 0;
}

config_status config_load(const config_table *tables, size_t ntables, int argc, char **argv,
                          int *first_positional, config_kafka_props *props, const char *usage,
                          char *err, size_t errlen)
{
    config_status status = CONFIG_ERROR;
    size_t nvars = 0;
    for (size_t t = 0; t < ntables; t++)
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++)
            nvars++;
    /* Which settings some source gave, for CONFIG_REQUIRED. */
    bool *given = calloc(nvars + 1, sizeof *given);
    if (given == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    if (apply_defaults(tables, ntables, given, err, errlen) != 0 ||
        apply_env(tables, ntables, given, err, errlen) != 0)
        goto out;
    if (props != NULL && props_from_env(props, err, errlen) != 0)
        goto out;
    int next;
    status = apply_args(tables, ntables, argc, argv, props, usage, given, &next, err, errlen);
    if (status != CONFIG_OK)
        goto out;
    status = CONFIG_ERROR;
    if (first_positional != NULL) {
        *first_positional = next;
    } else if (next < argc) {
        error_set(err, errlen, "unexpected argument \"%.*s\" (see --help)", 64, argv[next]);
        goto out;
    }
    if (check_required(tables, ntables, given, err, errlen) != 0)
        goto out;
    status = CONFIG_OK;

out:
    free(given);
    return status;
}

void config_free(const config_table *tables, size_t ntables, config_kafka_props *props)
{
    for (size_t t = 0; tables != NULL && t < ntables; t++) {
        for (const config_var *v = tables[t].vars; !var_is_end(v); v++) {
            if (!is_string_type(v->type))
                continue;
            char **slot = field_of(v, tables[t].target);
            free(*slot);
            *slot = NULL;
        }
    }
    config_kafka_props_free(props);
}

void config_kafka_props_free(config_kafka_props *props)
{
    if (props == NULL)
        return;
    for (size_t i = 0; i < props->count; i++) {
        free(props->items[i].key);
        free(props->items[i].value);
    }
    free(props->items);
    props->items = NULL;
    props->count = 0;
}

char *config_topic(const herald_common_config *c, const char *name, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    snprintf(out, outlen, "%s%s", c != NULL && c->topic_prefix != NULL ? c->topic_prefix : "",
             name != NULL ? name : "");
    return out;
}

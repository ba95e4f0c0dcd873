/*
 * heraldctl webhooks: status webhook endpoints (docs/webhooks.md), through
 * the gateway's API, as the service that owns them would call it.
 *
 *   heraldctl webhooks list [--json]
 *   heraldctl webhooks add --url URL [--types T,T...] [--secret S]
 *                          [--description D] [--all-events]
 *   heraldctl webhooks remove ID
 *   heraldctl webhooks enable ID
 *   heraldctl webhooks log ID [--limit N] [--before N] [--json]
 *   heraldctl webhooks replay ID --from TIME --to TIME
 *
 * The gateway is HERALD_GATEWAY_URL (--gateway-url) and the key
 * HERALD_API_KEY (--api-key): endpoints belong to the key that added them
 * (an admin key sees every one).  Exit 1 when the gateway refuses (its
 * message and field on stderr) or cannot be reached, 2 for a usage error.
 */
#include "cmd.h"
#include "cmdutil.h"
#include "table.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "timeutil.h"

#define WEBHOOKS_USAGE                                                                             \
    "usage: heraldctl webhooks list [--json] | add --url URL [--types T,...] [--secret S] "        \
    "[--description D] [--all-events] | remove ID | enable ID | log ID [--limit N] "               \
    "[--before N] [--json] | replay ID --from TIME --to TIME   [--gateway-url URL] "               \
    "[--api-key KEY]"

typedef struct webhooks_flags {
    char *gateway_url;
    char *api_key;
    char *url;
    char *types;
    char *secret;
    char *description;
    char *from;
    char *to;
    bool all_events;
    bool json;
    long limit;
    long before;
    long timeout_ms;
} webhooks_flags;

#define F(field) offsetof(webhooks_flags, field)

static const config_var webhooks_vars[] = {
    CMDUTIL_GATEWAY_FLAGS(webhooks_flags, gateway_url, api_key, timeout_ms,
                          "the API key the endpoints belong to (an admin key: every endpoint)"),
    {.flag = "url", .type = CONFIG_STRING, .offset = F(url), .help = "add: where to POST"},
    {.flag = "types",
     .type = CONFIG_STRING,
     .offset = F(types),
     .help = "add: event types, comma-separated (default every delivery.* type)"},
    {.flag = "secret",
     .type = CONFIG_STRING,
     .offset = F(secret),
     .flags = CONFIG_SECRET,
     .help = "add: the signing secret (default: generated and printed once)"},
    {.flag = "description",
     .type = CONFIG_STRING,
     .offset = F(description),
     .help = "add: a note for operators"},
    {.flag = "all-events",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(all_events),
     .help = "add: every event, whoever published it (admin key only)"},
    {.flag = "from",
     .type = CONFIG_STRING,
     .offset = F(from),
     .help = "replay: start of the window (RFC 3339 or relative, like -1h)"},
    {.flag = "to",
     .type = CONFIG_STRING,
     .offset = F(to),
     .help = "replay: end of the window, excluded (RFC 3339 or relative, like now)"},
    {.flag = "limit",
     .type = CONFIG_INT,
     .def = "50",
     .offset = F(limit),
     .min = 1,
     .max = 500,
     .help = "log: attempts shown"},
    {.flag = "before",
     .type = CONFIG_INT,
     .def = "0",
     .offset = F(before),
     .min = 0,
     .max = 0x7fffffffffffffffL,
     .help = "log: attempts older than this attempt id (the next_before of a page)"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "list, log: print the gateway's JSON instead of a table"},
    {0},
};

static const char *const list_headers[] = {"ID", "URL",    "TYPES",       "ENABLED",
                                           "OK", "FAILED", "LAST_STATUS", "DISABLED_REASON"};
static const char *const list_fields[] = {
    "id",       "url",          "event_types", "enabled",
    "calls_ok", "calls_failed", "last_status", "disabled_reason"};
static const char *const log_headers[] = {"AT",     "CALL_ID",    "TYPE",    "ATTEMPT",
                                          "STATUS", "LATENCY_MS", "OUTCOME", "ERROR"};
static const char *const log_fields[] = {"at",          "call_id",    "type",    "attempt",
                                         "http_status", "latency_ms", "outcome", "error"};

static int print_table(const json_t *rows, size_t ncols, const char *const *headers,
                       const char *const *fields)
{
    table *t = table_new(ncols, headers);
    size_t i;
    json_t *r;
    int rc = CTL_EXIT_FAILURE;
    if (t == NULL)
        goto out;
    json_array_foreach(rows, i, r)
    {
        char cells[8][512];
        const char *ptrs[8];
        for (size_t c = 0; c < ncols; c++) {
            cmdutil_cell_text(json_object_get(r, fields[c]), cells[c], sizeof cells[c]);
            ptrs[c] = cells[c];
        }
        if (table_add(t, ptrs) != 0)
            goto out;
    }
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl webhooks: out of memory\n");
    table_free(t);
    return rc;
}

/* The body of add; NULL after a line on stderr. */
static char *add_body(const webhooks_flags *f)
{
    json_t *b = json_object(), *types = NULL;
    char *text = NULL;
    if (b == NULL)
        goto out;
    json_object_set_new(b, "url", json_string(f->url));
    if (f->types != NULL) {
        types = json_array();
        char *copy = strdup(f->types), *save = NULL;
        for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t != NULL;
             t = strtok_r(NULL, ",", &save))
            json_array_append_new(types, json_string(t));
        free(copy);
        json_object_set_new(b, "event_types", types);
    }
    if (f->secret != NULL)
        json_object_set_new(b, "secret", json_string(f->secret));
    if (f->description != NULL)
        json_object_set_new(b, "description", json_string(f->description));
    if (f->all_events)
        json_object_set_new(b, "all_events", json_true());
    text = json_dumps(b, JSON_COMPACT);
out:
    json_decref(b);
    if (text == NULL)
        fprintf(stderr, "heraldctl webhooks add: --url, --types or --description is not UTF-8\n");
    return text;
}

/* The body of replay, the window's times in RFC 3339; NULL after a line on stderr. */
static char *replay_body(const webhooks_flags *f)
{
    int64_t from, to;
    char a[TIMEUTIL_RFC3339_SIZE], b[TIMEUTIL_RFC3339_SIZE], text[128];
    if (cmdutil_time_flag("webhooks replay", "from", f->from, &from) != 0 ||
        cmdutil_time_flag("webhooks replay", "to", f->to, &to) != 0)
        return NULL;
    if (from < 0 || to < 0 || to <= from) {
        fprintf(stderr, "heraldctl webhooks replay: --from and --to are required, --to after "
                        "--from\n");
        return NULL;
    }
    snprintf(text, sizeof text, "{\"from\":\"%s\",\"to\":\"%s\"}",
             timeutil_format_rfc3339(from, a, sizeof a), timeutil_format_rfc3339(to, b, sizeof b));
    return strdup(text);
}

static int run_sub(const webhooks_flags *f, const char *sub, const char *id)
{
    cmdutil_gateway g = {.url = f->gateway_url, .api_key = f->api_key, .timeout_ms = f->timeout_ms};
    char path[256], name[64];
    char *body = NULL;
    const char *method = "GET";
    json_t *answer = NULL;
    int rc = CTL_EXIT_FAILURE;
    snprintf(name, sizeof name, "webhooks %s", sub);
    if (strcmp(sub, "list") == 0) {
        snprintf(path, sizeof path, "/v1/webhooks");
    } else if (strcmp(sub, "add") == 0) {
        method = "POST";
        snprintf(path, sizeof path, "/v1/webhooks");
        if ((body = add_body(f)) == NULL)
            return CTL_EXIT_USAGE;
    } else if (strcmp(sub, "remove") == 0) {
        method = "DELETE";
        snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    } else if (strcmp(sub, "enable") == 0) {
        method = "POST";
        snprintf(path, sizeof path, "/v1/webhooks/%s/enable", id);
    } else if (strcmp(sub, "log") == 0) {
        int n = snprintf(path, sizeof path, "/v1/webhooks/%s/attempts?limit=%ld", id, f->limit);
        if (f->before > 0)
            snprintf(path + n, sizeof path - (size_t)n, "&before=%ld", f->before);
    } else {
        method = "POST";
        snprintf(path, sizeof path, "/v1/webhooks/%s/replay", id);
        if ((body = replay_body(f)) == NULL)
            return CTL_EXIT_USAGE;
    }
    if (cmdutil_gateway_request(&g, name, method, path, body, body ? strlen(body) : 0, &answer) !=
        0)
        goto out;
    rc = CTL_EXIT_OK;
    if (strcmp(sub, "remove") == 0)
        printf("removed %s\n", id);
    else if (strcmp(sub, "list") == 0 && !f->json)
        rc = print_table(json_object_get(answer, "webhooks"), 8, list_headers, list_fields);
    else if (strcmp(sub, "log") == 0 && !f->json) {
        rc = print_table(json_object_get(answer, "attempts"), 8, log_headers, log_fields);
        json_t *next = json_object_get(answer, "next_before");
        if (json_is_integer(next))
            printf("more: --before %lld\n", (long long)json_integer_value(next));
    } else
        cmdutil_print_json(answer);
out:
    json_decref(answer);
    free(body);
    return rc;
}

static bool is_endpoint_id(const char *s)
{
    return id_is_uuid(s);
}

int cmd_webhooks(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    /* A subcommand about one endpoint takes its ID first; its flags follow. */
    static const char id[] = "an endpoint ID (a lowercase UUID)";
    static const cmdutil_sub subs[] = {
        {"list", 0, NULL, NULL},           {"add", 0, NULL, NULL},
        {"remove", 1, id, is_endpoint_id}, {"enable", 1, id, is_endpoint_id},
        {"log", 1, id, is_endpoint_id},    {"replay", 1, id, is_endpoint_id},
    };
    webhooks_flags f = {0};
    const config_table ctable = {webhooks_vars, &f};
    cmdutil_subcmd c;
    int rc = cmdutil_parse_sub("webhooks", WEBHOOKS_USAGE, subs, sizeof subs / sizeof subs[0],
                               webhooks_vars, &f, argc, argv, &c);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    if (!cmdutil_have_key(c.name, f.api_key, "an API key"))
        goto out;
    if (strcmp(c.sub->name, "add") == 0 && f.url == NULL) {
        fprintf(stderr, "heraldctl %s: --url is required\n", c.name);
        goto out;
    }
    rc = run_sub(&f, c.sub->name, c.sub->nargs ? c.args[0] : NULL);
out:
    config_free(&ctable, 1, NULL);
    return rc;
}

/*
 * heraldctl digest-rules | throttle-rules | followup-rules: the rules of
 * docs/digests.md,
 * through the gateway's API (so they are checked exactly as a client's
 * PUT is, and the dispatchers hear of the change the same way).
 *
 *   heraldctl digest-rules list [--json]
 *   heraldctl digest-rules get NAME
 *   heraldctl digest-rules put NAME --file F.json     (- reads stdin)
 *   heraldctl digest-rules delete NAME
 *
 * and the same for throttle-rules and followup-rules.  The gateway is HERALD_GATEWAY_URL
 * (--gateway-url) and the admin key HERALD_API_KEY (--api-key).  Exit 1
 * when the gateway refuses (its message and field on stderr) or cannot
 * be reached, 2 for a usage error.
 */
#include "cmd.h"
#include "cmdutil.h"
#include "table.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RULES_USAGE                                                                                \
    "usage: heraldctl digest-rules|throttle-rules|followup-rules list [--json] | get NAME | "      \
    "put NAME --file F.json | delete NAME   [--gateway-url URL] [--api-key KEY]"

#define RULES_MAX_FILE CMDUTIL_GATEWAY_MAX_BODY

typedef struct rules_flags {
    char *gateway_url;
    char *api_key;
    char *file;
    bool json;
    long timeout_ms;
} rules_flags;

#define F(field) offsetof(rules_flags, field)

static const config_var rules_vars[] = {
    CMDUTIL_GATEWAY_FLAGS(rules_flags, gateway_url, api_key, timeout_ms,
                          "an admin API key (heraldctl apikey create --scope admin)"),
    {.flag = "file",
     .type = CONFIG_STRING,
     .offset = F(file),
     .help = "put: the rule as a JSON file, - for stdin"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "list: print the gateway's JSON instead of a table"},
    {0},
};

/* A kind of rule: its command, its API path and its table's columns. */
typedef struct rules_kind {
    const char *cmd;
    const char *path;
    size_t ncols;
    const char *const *headers;
    const char *const *fields; /* the JSON member of each column */
} rules_kind;

static const char *const digest_headers[] = {"NAME",     "EVENT_TYPE", "CATEGORY",
                                             "CHANNELS", "WINDOW",     "WINDOW_MS",
                                             "AT",       "GROUP_BY",   "TEMPLATE"};
static const char *const digest_fields[] = {"name",        "event_type", "category",
                                            "channels",    "window",     "window_ms",
                                            "schedule_at", "group_by",   "template"};
static const char *const throttle_headers[] = {"NAME",      "CATEGORY",  "CHANNEL",
                                               "MAX_COUNT", "WINDOW_MS", "ACTION"};
static const char *const throttle_fields[] = {"name",      "category",  "channel",
                                              "max_count", "window_ms", "action"};

static const char *const followup_headers[] = {"NAME",     "EVENT_TYPE", "CATEGORY", "AFTER",
                                               "DELAY_MS", "CHANNEL",    "TEMPLATE"};
static const char *const followup_fields[] = {"name",     "event_type", "category", "after_channel",
                                              "delay_ms", "channel",    "template"};

static const rules_kind digest_rules = {"digest-rules", "/v1/digest-rules", 9, digest_headers,
                                        digest_fields};
static const rules_kind throttle_rules = {"throttle-rules", "/v1/throttle-rules", 6,
                                          throttle_headers, throttle_fields};

static const rules_kind followup_rules = {"followup-rules", "/v1/followup-rules", 7,
                                          followup_headers, followup_fields};

static int print_list(const rules_kind *k, const json_t *answer)
{
    table *t = table_new(k->ncols, k->headers);
    json_t *rules = json_object_get(answer, "rules");
    size_t i;
    json_t *r;
    int rc = CTL_EXIT_FAILURE;
    if (t == NULL)
        goto out;
    json_array_foreach(rules, i, r)
    {
        char cells[16][256];
        const char *ptrs[16];
        for (size_t c = 0; c < k->ncols; c++) {
            cmdutil_cell_text(json_object_get(r, k->fields[c]), cells[c], sizeof cells[c]);
            ptrs[c] = cells[c];
        }
        if (table_add(t, ptrs) != 0)
            goto out;
    }
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    if (rc != CTL_EXIT_OK)
        fprintf(stderr, "heraldctl %s: out of memory\n", k->cmd);
    table_free(t);
    return rc;
}

/* The whole of path ("-": stdin) into *out (free() it); -1 after a line on stderr. */
static int read_file(const char *cmd, const char *path, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *data = NULL;
    size_t n = 0;
    int rc = -1;
    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "heraldctl %s: --file %s: cannot open it\n", cmd, path);
        return -1;
    }
    if ((data = malloc(RULES_MAX_FILE + 1)) == NULL) {
        fprintf(stderr, "heraldctl %s: out of memory\n", cmd);
        goto out;
    }
    n = fread(data, 1, RULES_MAX_FILE + 1, f);
    if (ferror(f) || n > RULES_MAX_FILE) {
        fprintf(stderr, "heraldctl %s: --file %s: %s\n", cmd, path,
                n > RULES_MAX_FILE ? "larger than 4 MiB" : "cannot read it");
        goto out;
    }
    data[n] = '\0';
    *out = data;
    *len = n;
    data = NULL;
    rc = 0;
out:
    free(data);
    if (f != stdin)
        fclose(f);
    return rc;
}

/* The path of one rule, its name escaped; -1 when it cannot be. */
static int rule_path(const rules_kind *k, const char *name, char *out, size_t outlen)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    if (esc == NULL)
        return -1;
    int n = snprintf(out, outlen, "%s/%s", k->path, esc);
    curl_free(esc);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* Runs sub (list, get, put, delete) with its NAME (NULL for list). */
static int run_sub(const rules_kind *k, const rules_flags *f, const char *sub, const char *name)
{
    cmdutil_gateway g = {.url = f->gateway_url, .api_key = f->api_key, .timeout_ms = f->timeout_ms};
    char path[1024], *body = NULL;
    size_t body_len = 0;
    const char *method = "GET";
    json_t *answer = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (name == NULL)
        snprintf(path, sizeof path, "%s", k->path);
    else if (rule_path(k, name, path, sizeof path) != 0) {
        fprintf(stderr, "heraldctl %s: the rule name is too long\n", k->cmd);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(sub, "put") == 0) {
        method = "PUT";
        if (read_file(k->cmd, f->file, &body, &body_len) != 0)
            return CTL_EXIT_USAGE;
    } else if (strcmp(sub, "delete") == 0) {
        method = "DELETE";
    }
    if (cmdutil_gateway_request(&g, k->cmd, method, path, body, body_len, &answer) != 0)
        goto out;
    rc = CTL_EXIT_OK;
    if (strcmp(sub, "delete") == 0)
        printf("deleted %s\n", name);
    else if (strcmp(sub, "list") == 0 && !f->json)
        rc = print_list(k, answer);
    else
        cmdutil_print_json(answer);
out:
    json_decref(answer);
    free(body);
    return rc;
}

static int cmd_rules(const rules_kind *k, int argc, char **argv)
{
    /* A named subcommand's NAME comes first; its flags follow. */
    static const cmdutil_sub subs[] = {
        {"list", 0, NULL, NULL},
        {"get", 1, "a rule NAME", NULL},
        {"put", 1, "a rule NAME", NULL},
        {"delete", 1, "a rule NAME", NULL},
    };
    rules_flags f = {0};
    const config_table ctable = {rules_vars, &f};
    cmdutil_subcmd c;
    int rc = cmdutil_parse_sub(k->cmd, RULES_USAGE, subs, 4, rules_vars, &f, argc, argv, &c);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    const char *sub = c.sub->name;
    if (!cmdutil_have_key(c.name, f.api_key, "an admin API key"))
        goto out;
    if ((strcmp(sub, "put") == 0) != (f.file != NULL)) {
        fprintf(stderr, "heraldctl %s: --file %s\n", c.name,
                f.file == NULL ? "is required" : "is only for put");
        goto out;
    }
    rc = run_sub(k, &f, sub, c.sub->nargs ? c.args[0] : NULL);
out:
    config_free(&ctable, 1, NULL);
    return rc;
}

int cmd_digest_rules(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    return cmd_rules(&digest_rules, argc, argv);
}

int cmd_throttle_rules(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    return cmd_rules(&throttle_rules, argc, argv);
}

int cmd_followup_rules(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    return cmd_rules(&followup_rules, argc, argv);
}

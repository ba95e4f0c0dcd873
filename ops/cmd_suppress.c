/*
 * heraldctl suppress: the suppression list (docs/receipts.md), through the
 * gateway's API.
 *
 *   heraldctl suppress list [--channel C] [--reason R] [--max N] [--json]
 *   heraldctl suppress add CHANNEL ADDRESS [--detail TEXT]
 *   heraldctl suppress remove CHANNEL ADDRESS
 *
 * list follows the API's pages until --max entries (default 1000) were
 * printed.  The gateway is HERALD_GATEWAY_URL (--gateway-url) and the admin
 * key HERALD_API_KEY (--api-key).  Exit 1 when the gateway refuses (its
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

#define SUPPRESS_USAGE                                                                             \
    "usage: heraldctl suppress list [--channel C] [--reason R] [--max N] [--json] | "              \
    "add CHANNEL ADDRESS [--detail TEXT] | remove CHANNEL ADDRESS   [--gateway-url URL] "          \
    "[--api-key KEY]"

#define PAGE 1000

typedef struct suppress_flags {
    char *gateway_url;
    char *api_key;
    char *channel;
    char *reason;
    char *detail;
    long max;
    bool json;
    long timeout_ms;
} suppress_flags;

#define F(field) offsetof(suppress_flags, field)

static const config_var suppress_vars[] = {
    CMDUTIL_GATEWAY_FLAGS(suppress_flags, gateway_url, api_key, timeout_ms,
                          "an admin API key (heraldctl apikey create --scope admin)"),
    {.flag = "channel",
     .type = CONFIG_STRING,
     .offset = F(channel),
     .help = "list: only this channel (email, sms, push)"},
    {.flag = "reason",
     .type = CONFIG_STRING,
     .offset = F(reason),
     .help = "list: only this reason (hard_bounce, complaint, soft_bounces, manual)"},
    {.flag = "detail",
     .type = CONFIG_STRING,
     .offset = F(detail),
     .help = "add: why, kept with the entry"},
    {.flag = "max",
     .type = CONFIG_INT,
     .def = "1000",
     .offset = F(max),
     .min = 1,
     .max = 10000000,
     .help = "list: print at most this many entries"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "list: print the entries as a JSON array instead of a table"},
    {0},
};

static const char *const headers[] = {"CHANNEL", "ADDRESS", "REASON", "SINCE", "EVENT", "DETAIL"};
static const char *const fields[] = {"channel",    "address",  "reason",
                                     "created_at", "event_id", "detail"};
#define NCOLS (sizeof headers / sizeof headers[0])

static int run_list(const cmdutil_gateway *g, const suppress_flags *f)
{
    json_t *all = json_array();
    table *t = f->json ? NULL : table_new(NCOLS, headers);
    char *after = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (all == NULL || (!f->json && t == NULL)) {
        fprintf(stderr, "heraldctl suppress list: out of memory\n");
        goto out;
    }
    while ((long)json_array_size(all) < f->max) {
        char path[2048];
        long want = f->max - (long)json_array_size(all);
        snprintf(path, sizeof path, "/v1/suppressions?limit=%ld", want < PAGE ? want : PAGE);
        if (cmdutil_add_query(path, sizeof path, "channel", f->channel) != 0 ||
            cmdutil_add_query(path, sizeof path, "reason", f->reason) != 0 ||
            cmdutil_add_query(path, sizeof path, "after", after) != 0) {
            fprintf(stderr, "heraldctl suppress list: a filter is too long\n");
            rc = CTL_EXIT_USAGE;
            goto out;
        }
        json_t *answer = NULL;
        if (cmdutil_gateway_request(g, "suppress list", "GET", path, NULL, 0, &answer) != 0)
            goto out;
        json_array_extend(all, json_object_get(answer, "suppressions"));
        const char *next = json_string_value(json_object_get(answer, "next_after"));
        free(after);
        after = next ? strdup(next) : NULL;
        json_decref(answer);
        if (after == NULL)
            break;
    }
    if (f->json) {
        cmdutil_print_json(all);
        rc = CTL_EXIT_OK;
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        char cells[NCOLS][512];
        const char *ptrs[NCOLS];
        for (size_t c = 0; c < NCOLS; c++) {
            cmdutil_cell_text(json_object_get(e, fields[c]), cells[c], sizeof cells[c]);
            ptrs[c] = cells[c];
        }
        if (table_add(t, ptrs) != 0) {
            fprintf(stderr, "heraldctl suppress list: out of memory\n");
            goto out;
        }
    }
    table_print(t, stdout);
    rc = CTL_EXIT_OK;
out:
    free(after);
    table_free(t);
    json_decref(all);
    return rc;
}

static int run_add(const cmdutil_gateway *g, const suppress_flags *f, const char *channel,
                   const char *address)
{
    json_t *req = json_pack("{s:s,s:s}", "channel", channel, "address", address);
    if (req != NULL && f->detail != NULL)
        json_object_set_new(req, "detail", json_string(f->detail));
    char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL) {
        fprintf(stderr, "heraldctl suppress add: the address or detail is not UTF-8\n");
        return CTL_EXIT_USAGE;
    }
    long status = 0;
    json_t *answer = NULL;
    int rc = CTL_EXIT_FAILURE;
    if (cmdutil_gateway_call(g, "suppress add", "POST", "/v1/suppressions", body, strlen(body),
                             &status, &answer) != 0)
        goto out;
    if (status != 200 && status != 201) {
        cmdutil_gateway_error("suppress add", status, answer);
        goto out;
    }
    printf("%s %s %s (%s)\n", status == 201 ? "suppressed" : "already suppressed", channel,
           json_string_value(json_object_get(answer, "address")),
           json_string_value(json_object_get(answer, "reason")));
    rc = CTL_EXIT_OK;
out:
    json_decref(answer);
    free(body);
    return rc;
}

static int run_remove(const cmdutil_gateway *g, const char *channel, const char *address)
{
    char path[8192];
    char *c = curl_easy_escape(NULL, channel, 0), *a = curl_easy_escape(NULL, address, 0);
    int n = c && a ? snprintf(path, sizeof path, "/v1/suppressions/%s/%s", c, a) : -1;
    curl_free(c);
    curl_free(a);
    if (n < 0 || (size_t)n >= sizeof path) {
        fprintf(stderr, "heraldctl suppress remove: the address is too long\n");
        return CTL_EXIT_USAGE;
    }
    json_t *answer = NULL;
    if (cmdutil_gateway_request(g, "suppress remove", "DELETE", path, NULL, 0, &answer) != 0)
        return CTL_EXIT_FAILURE;
    json_decref(answer);
    printf("removed %s %s\n", channel, address);
    return CTL_EXIT_OK;
}

int cmd_suppress(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    static const cmdutil_sub subs[] = {
        {"list", 0, NULL, NULL},
        {"add", 2, "CHANNEL ADDRESS", NULL},
        {"remove", 2, "CHANNEL ADDRESS", NULL},
    };
    suppress_flags f = {0};
    const config_table ctable = {suppress_vars, &f};
    cmdutil_subcmd c;
    int rc =
        cmdutil_parse_sub("suppress", SUPPRESS_USAGE, subs, 3, suppress_vars, &f, argc, argv, &c);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    const char *sub = c.sub->name;
    if (!cmdutil_have_key(c.name, f.api_key, "an admin API key"))
        goto out;
    if (f.detail != NULL && strcmp(sub, "add") != 0) {
        fprintf(stderr, "heraldctl %s: --detail is only for add\n", c.name);
        goto out;
    }
    if ((f.channel != NULL || f.reason != NULL || f.json) && strcmp(sub, "list") != 0) {
        fprintf(stderr, "heraldctl %s: --channel, --reason and --json are only for list\n", c.name);
        goto out;
    }
    cmdutil_gateway g = {.url = f.gateway_url, .api_key = f.api_key, .timeout_ms = f.timeout_ms};
    if (strcmp(sub, "list") == 0)
        rc = run_list(&g, &f);
    else if (strcmp(sub, "add") == 0)
        rc = run_add(&g, &f, c.args[0], c.args[1]);
    else
        rc = run_remove(&g, c.args[0], c.args[1]);
out:
    config_free(&ctable, 1, NULL);
    return rc;
}

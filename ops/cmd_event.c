/*
 * heraldctl event: one event's story through the gateway's
 * GET /v1/events/{id}: each delivery's status, address and the history of
 * statuses it reached (docs/receipts.md), with when and why; or, with
 * --timeline, GET /v1/events/{id}/timeline: everything that happened to
 * it in time order, one line each (docs/interface.md).
 *
 *   heraldctl event EVENT_ID [--timeline] [--json]
 *
 * The gateway is HERALD_GATEWAY_URL (--gateway-url) and the key
 * HERALD_API_KEY (--api-key; publish or admin, admin for --timeline).  Exit 1 when the gateway
 * refuses (404 for an unknown event) or cannot be reached, 2 for a usage
 * error.
 */
#include "cmd.h"
#include "cmdutil.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_USAGE                                                                                \
    "usage: heraldctl event EVENT_ID [--timeline] [--json] [--gateway-url URL] [--api-key KEY]"

typedef struct event_flags {
    char *gateway_url;
    char *api_key;
    bool json;
    bool timeline;
    long timeout_ms;
} event_flags;

#define F(field) offsetof(event_flags, field)

static const config_var event_vars[] = {
    CMDUTIL_GATEWAY_FLAGS(event_flags, gateway_url, api_key, timeout_ms,
                          "a publish or admin API key"),
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(json),
     .help = "print the gateway's JSON instead of the story"},
    {.flag = "timeline",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(timeline),
     .help = "everything that happened to the event, in time order (an admin key)"},
    {0},
};

static const char *s_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : dflt;
}

static void print_story(const json_t *ev)
{
    printf("event %s  %s  %s %s  status %s\n", s_or(ev, "event_id", "?"), s_or(ev, "type", "-"),
           json_object_get(ev, "topic") ? "topic" : "user",
           s_or(ev, "user_id", s_or(ev, "topic", "-")), s_or(ev, "status", "?"));
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(ev, "deliveries"), i, d)
    {
        printf("  %-6s %-11s %s  attempts %lld", s_or(d, "channel", "?"), s_or(d, "status", "?"),
               s_or(d, "address", "-"),
               (long long)json_integer_value(json_object_get(d, "attempts")));
        if (json_object_get(d, "skip_reason"))
            printf("  skipped: %s", s_or(d, "skip_reason", ""));
        if (json_is_string(json_object_get(d, "last_error")))
            printf("  (%s)", s_or(d, "last_error", ""));
        printf("\n");
        size_t k;
        json_t *h;
        json_array_foreach(json_object_get(d, "history"), k, h)
        {
            printf("      %s  %-11s %-8s %s", s_or(h, "at", "?"), s_or(h, "status", "?"),
                   s_or(h, "source", ""), s_or(h, "provider", ""));
            if (json_is_integer(json_object_get(h, "attempt")))
                printf("  attempt %lld",
                       (long long)json_integer_value(json_object_get(h, "attempt")));
            printf("%s%s\n", json_is_string(json_object_get(h, "reason")) ? "  " : "",
                   s_or(h, "reason", ""));
        }
    }
}

/* One line per timeline entry: when, what, on which channel, and why. */
static void print_timeline(const json_t *tl)
{
    printf("event %s  %s  %s %s\n", s_or(tl, "event_id", "?"), s_or(tl, "type", "-"),
           json_object_get(tl, "topic") ? "topic" : "user",
           s_or(tl, "user_id", s_or(tl, "topic", "-")));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(tl, "entries"), i, e)
    {
        printf("  %s  %-10s %-6s %-11s", s_or(e, "at", "?"), s_or(e, "kind", "?"),
               s_or(e, "channel", "-"), s_or(e, "status", ""));
        if (json_is_integer(json_object_get(e, "attempt")))
            printf("  attempt %lld", (long long)json_integer_value(json_object_get(e, "attempt")));
        if (json_is_string(json_object_get(e, "reason")))
            printf("  %s", s_or(e, "reason", ""));
        if (json_is_string(json_object_get(e, "detail")))
            printf("  %s", s_or(e, "detail", ""));
        printf("\n");
    }
    if (json_is_true(json_object_get(tl, "truncated")))
        printf("  (more entries than the gateway shows)\n");
}

int cmd_event(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    event_flags f = {0};
    const config_table ctable = {event_vars, &f};
    int rc = CTL_EXIT_USAGE, first = 0;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        FILE *out = argc < 2 ? stderr : stdout;
        fprintf(out, "%s\n", EVENT_USAGE);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    if (argv[1][0] == '-') {
        fprintf(stderr, "heraldctl event: expected an EVENT_ID\n");
        return CTL_EXIT_USAGE;
    }
    config_status st =
        ctl_parse_flags("event", EVENT_USAGE, event_vars, &f, argc - 1, argv + 1, &first);
    if (st != CONFIG_OK) {
        rc = st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
        goto out;
    }
    if (first < argc - 1) {
        fprintf(stderr, "heraldctl event: unexpected argument \"%s\"\n", argv[1 + first]);
        goto out;
    }
    if (f.api_key == NULL || f.api_key[0] == '\0') {
        fprintf(stderr, "heraldctl event: an API key is needed (HERALD_API_KEY or --api-key)\n");
        goto out;
    }
    char path[256];
    char *esc = curl_easy_escape(NULL, argv[1], 0);
    int n = esc ? snprintf(path, sizeof path, "/v1/events/%s%s", esc, f.timeline ? "/timeline" : "")
                : -1;
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof path) {
        fprintf(stderr, "heraldctl event: the event id is too long\n");
        goto out;
    }
    cmdutil_gateway g = {.url = f.gateway_url, .api_key = f.api_key, .timeout_ms = f.timeout_ms};
    long status = 0;
    json_t *answer = NULL;
    rc = CTL_EXIT_FAILURE;
    if (cmdutil_gateway_call(&g, "event", "GET", path, NULL, 0, &status, &answer) == 0) {
        if (status != 200) {
            cmdutil_gateway_error("event", status, answer);
        } else {
            if (f.json)
                cmdutil_print_json(answer);
            else if (f.timeline)
                print_timeline(answer);
            else
                print_story(answer);
            rc = CTL_EXIT_OK;
        }
    }
    json_decref(answer);
out:
    config_free(&ctable, 1, NULL);
    return rc;
}

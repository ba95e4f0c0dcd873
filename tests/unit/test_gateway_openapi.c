/*
 * docs/openapi.yaml describes every route of the gateway's route table,
 * with its method, and nothing the gateway does not serve.
 */
#include "api.h"
#include "testutil.h"

#include <ctype.h>
#include <string.h>

#define MAX_OPS 128

typedef struct op {
    char method[8];
    char path[128];
} op;

/* Reads "  /path:" lines under "paths:" and the "    get:" lines under them. */
static size_t read_spec(op *ops)
{
    const char *src = getenv("HERALD_SOURCE_DIR");
    char file[1024];
    snprintf(file, sizeof file, "%s/docs/openapi.yaml", src != NULL ? src : ".");
    FILE *f = fopen(file, "r");
    ck_assert_msg(f != NULL, "cannot open %s", file);
    char line[512], path[128] = "";
    bool in_paths = false;
    size_t n = 0;
    while (fgets(line, sizeof line, f) != NULL && n < MAX_OPS) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] != ' ' && line[0] != '\0') {
            in_paths = strcmp(line, "paths:") == 0;
            continue;
        }
        if (!in_paths)
            continue;
        size_t len = strlen(line);
        if (strncmp(line, "  /", 3) == 0 && line[len - 1] == ':') {
            snprintf(path, sizeof path, "%.*s", (int)(len - 3), line + 2);
            continue;
        }
        static const char *const methods[] = {"get", "put", "post", "delete", "patch"};
        for (size_t m = 0; m < 5; m++) {
            char want[32];
            snprintf(want, sizeof want, "    %s:", methods[m]);
            if (strcmp(line, want) == 0 && path[0] != '\0') {
                for (size_t i = 0; methods[m][i] != '\0'; i++)
                    ops[n].method[i] = (char)toupper((unsigned char)methods[m][i]);
                ops[n].method[strlen(methods[m])] = '\0';
                snprintf(ops[n].path, sizeof ops[n].path, "%s", path);
                n++;
            }
        }
    }
    fclose(f);
    return n;
}

START_TEST(test_openapi_describes_every_route)
{
    op ops[MAX_OPS];
    size_t nops = read_spec(ops), nroutes;
    const router_route *routes = api_routes(&nroutes);
    ck_assert_uint_gt(nops, 0);
    for (size_t r = 0; r < nroutes; r++) {
        bool found = false;
        for (size_t i = 0; i < nops; i++)
            if (strcmp(ops[i].method, routes[r].method) == 0 &&
                strcmp(ops[i].path, routes[r].pattern) == 0)
                found = true;
        ck_assert_msg(found, "%s %s is not in docs/openapi.yaml", routes[r].method,
                      routes[r].pattern);
    }
}
END_TEST

START_TEST(test_openapi_describes_nothing_else)
{
    op ops[MAX_OPS];
    size_t nops = read_spec(ops), nroutes;
    const router_route *routes = api_routes(&nroutes);
    for (size_t i = 0; i < nops; i++) {
        bool found = false;
        for (size_t r = 0; r < nroutes; r++)
            if (strcmp(ops[i].method, routes[r].method) == 0 &&
                strcmp(ops[i].path, routes[r].pattern) == 0)
                found = true;
        ck_assert_msg(found, "docs/openapi.yaml describes %s %s, which the gateway lacks",
                      ops[i].method, ops[i].path);
    }
}
END_TEST

START_TEST(test_route_table_scopes_follow_the_contract)
{
    size_t n;
    const router_route *routes = api_routes(&n);
    for (size_t r = 0; r < n; r++) {
        const char *p = routes[r].pattern;
        /* Searching events and their timelines are for operators. */
        bool operators = (strcmp(p, "/v1/events") == 0 && strcmp(routes[r].method, "GET") == 0) ||
                         strcmp(p, "/v1/events/{event_id}/timeline") == 0;
        if (operators)
            ck_assert_int_eq(routes[r].scope, ROUTER_SCOPE_ADMIN);
        /* Publishing services read inboxes and mint user tokens for their users,
         * and register the webhook endpoints that hear of their events. */
        else if (strncmp(p, "/v1/events", 10) == 0 || strstr(p, "}/inbox") != NULL ||
                 strstr(p, "}/tokens") != NULL || strncmp(p, "/v1/webhooks", 12) == 0)
            ck_assert_int_eq(routes[r].scope, ROUTER_SCOPE_PUBLISH);
        /* An unsubscribe link's own signed token is its credential; providers sign
         * their receipts (an MTA pipes bounces with an admin key). */
        /* A console login's admin key comes in its body. */
        else if (strcmp(p, "/v1/unsubscribe") == 0 ||
                 (strncmp(p, "/v1/receipts/", 13) == 0 && strcmp(p, "/v1/receipts/smtp") != 0) ||
                 (strcmp(p, "/v1/console/session") == 0 && strcmp(routes[r].method, "POST") == 0))
            ck_assert_int_eq(routes[r].scope, ROUTER_SCOPE_NONE);
        else if (strncmp(p, "/v1/", 4) == 0)
            ck_assert_int_eq(routes[r].scope, ROUTER_SCOPE_ADMIN);
        else
            ck_assert_int_eq(routes[r].scope, ROUTER_SCOPE_NONE);
    }
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_openapi_describes_every_route),
    TEST_ENTRY(test_openapi_describes_nothing_else),
    TEST_ENTRY(test_route_table_scopes_follow_the_contract),
};

TEST_MAIN("gateway_openapi", cases)

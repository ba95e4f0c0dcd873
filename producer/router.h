/*
 * router: matches a method and a raw request path against a table of routes.
 *
 * A route is a method, a pattern such as "/v1/users/{user_id}/preferences",
 * the scope an API key needs, and an opaque handler the caller interprets.
 * Captured segments are percent-decoded one by one, after the path was
 * split on '/', so "/v1/users/a%2Fb" names the user "a/b" rather than a
 * deeper path.  Pure logic: no I/O, no allocation; the table is the
 * caller's and is read only.
 */
#ifndef HERALD_ROUTER_H
#define HERALD_ROUTER_H

#include <stddef.h>

/* Who may call a route.  Admin keys may call everything. */
typedef enum {
    ROUTER_SCOPE_NONE = 0, /* no key needed (health, readiness, metrics) */
    ROUTER_SCOPE_PUBLISH,  /* publish or admin key */
    ROUTER_SCOPE_ADMIN,    /* admin key only */
} router_scope;

typedef struct router_route {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern; /* literal segments and {name} captures */
    router_scope scope;
    const void *handler; /* interpreted by the caller */
} router_route;

#define ROUTER_MAX_PARAMS 4
#define ROUTER_PARAM_MAX  512 /* decoded bytes of one captured segment, NUL included */

typedef struct router_params {
    size_t count;
    const char *names[ROUTER_MAX_PARAMS]; /* point into the pattern, not terminated: see name_len */
    size_t name_len[ROUTER_MAX_PARAMS];
    char values[ROUTER_MAX_PARAMS][ROUTER_PARAM_MAX];
} router_params;

typedef enum {
    ROUTER_MATCH = 0,
    ROUTER_NOT_FOUND = 1,  /* no pattern fits the path */
    ROUTER_BAD_METHOD = 2, /* a pattern fits, with another method: 405 */
    ROUTER_BAD_PARAM = 3,  /* a captured segment is empty, too long or badly escaped */
} router_result;

/*
 * Finds the route of method and path (the path without the query string;
 * a '?' ends it).  On ROUTER_MATCH *index is the route's position in the
 * table and params holds the captures in pattern order.
 */
router_result router_match(const router_route *routes, size_t nroutes, const char *method,
                           const char *path, size_t *index, router_params *params)
    __attribute__((warn_unused_result));

/* The decoded value of the capture called name, or NULL. */
const char *router_param(const router_params *params, const char *name);

/* Whether a key of scope `have` may call a route needing `need`. */
int router_scope_allows(router_scope have, router_scope need);

const char *router_scope_name(router_scope s);

#endif

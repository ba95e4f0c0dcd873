/*
 * router: segment-wise matching of request paths against a route table.
 *
 * The table is small (a dozen routes), so a linear scan beats any index and
 * keeps the order of the table meaningful: the first route that fits wins.
 */
#include "router.h"

#include "ids.h"

#include <string.h>

typedef enum { SEG_FIT, SEG_NOFIT, SEG_BADPARAM } seg_fit;

/* Walks pattern and path together; fills params when they fit. */
static seg_fit fits(const char *pattern, const char *path, size_t pathlen, router_params *params)
{
    const char *p = pattern, *u = path, *uend = path + pathlen;
    int bad = 0;
    params->count = 0;
    for (;;) {
        if (*p == '\0' && u == uend)
            return bad ? SEG_BADPARAM : SEG_FIT;
        if (*p != '/' || u >= uend || *u != '/')
            return SEG_NOFIT;
        p++;
        u++;
        const char *pseg_end = strchr(p, '/');
        if (pseg_end == NULL)
            pseg_end = p + strlen(p);
        const char *useg_end = memchr(u, '/', (size_t)(uend - u));
        if (useg_end == NULL)
            useg_end = uend;
        size_t plen = (size_t)(pseg_end - p), ulen = (size_t)(useg_end - u);
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (params->count >= ROUTER_MAX_PARAMS)
                return SEG_NOFIT;
            size_t k = params->count++;
            params->names[k] = p + 1;
            params->name_len[k] = plen - 2;
            /* An empty or undecodable capture still "fits" the shape: the
             * caller answers 400 rather than a misleading 404. */
            if (ulen == 0 ||
                id_url_decode(u, ulen, false, params->values[k], ROUTER_PARAM_MAX) != 0) {
                params->values[k][0] = '\0';
                bad = 1;
            }
        } else if (plen != ulen || memcmp(p, u, plen) != 0) {
            return SEG_NOFIT;
        }
        p = pseg_end;
        u = useg_end;
    }
}

router_result router_match(const router_route *routes, size_t nroutes, const char *method,
                           const char *path, size_t *index, router_params *params)
{
    size_t pathlen = strcspn(path, "?");
    router_result best = ROUTER_NOT_FOUND;
    router_params scratch;
    for (size_t i = 0; i < nroutes; i++) {
        seg_fit f = fits(routes[i].pattern, path, pathlen, &scratch);
        if (f == SEG_NOFIT)
            continue;
        if (strcmp(routes[i].method, method) != 0) {
            best = ROUTER_BAD_METHOD;
            continue;
        }
        *params = scratch;
        *index = i;
        return f == SEG_FIT ? ROUTER_MATCH : ROUTER_BAD_PARAM;
    }
    return best;
}

const char *router_param(const router_params *params, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < params->count; i++)
        if (params->name_len[i] == n && memcmp(params->names[i], name, n) == 0)
            return params->values[i];
    return NULL;
}

int router_scope_allows(router_scope have, router_scope need)
{
    switch (need) {
    case ROUTER_SCOPE_NONE:
        return 1;
    case ROUTER_SCOPE_PUBLISH:
        return have == ROUTER_SCOPE_PUBLISH || have == ROUTER_SCOPE_ADMIN;
    case ROUTER_SCOPE_ADMIN:
        return have == ROUTER_SCOPE_ADMIN;
    }
    return 0;
}

const char *router_scope_name(router_scope s)
{
    switch (s) {
    case ROUTER_SCOPE_NONE:
        return "none";
    case ROUTER_SCOPE_PUBLISH:
        return "publish";
    case ROUTER_SCOPE_ADMIN:
        return "admin";
    }
    return "?";
}

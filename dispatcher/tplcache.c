/*
 * tplcache: see tplcache.h.
 */
#include "tplcache.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "lru.h"
#include "prefs_cache.h"

struct tplcache {
    lru_cache *lru;
    int64_t ttl_ms;
};

static const char load_sql[] = "SELECT event_type, channel, subject, body, category "
                               "FROM templates WHERE event_type = ANY($1::text[]) "
                               "ORDER BY event_type";

static void type_destroy(tplcache_type *t)
{
    for (int i = 0; i < DELIVERY_CHANNEL_COUNT; i++) {
        template_free(t->ch[i].subject);
        template_free(t->ch[i].body);
        free(t->ch[i].category);
    }
    free(t->event_type);
    free(t);
}

void tplcache_type_unref(tplcache_type *t)
{
    if (t != NULL && --t->refs == 0)
        type_destroy(t);
}

static void lru_drop(void *v)
{
    tplcache_type_unref(v);
}

tplcache *tplcache_new(size_t max_entries, int64_t ttl_ms)
{
    tplcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    if ((c->lru = lru_new(max_entries, 0, lru_drop)) == NULL) {
        free(c);
        return NULL;
    }
    c->ttl_ms = ttl_ms;
    return c;
}

void tplcache_free(tplcache *c)
{
    if (c == NULL)
        return;
    lru_free(c->lru);
    free(c);
}

tplcache_type *tplcache_get(tplcache *c, const char *event_type, int64_t now_ms)
{
    tplcache_type *t = lru_get(c->lru, event_type, now_ms);
    if (t != NULL)
        t->refs++;
    return t;
}

bool tplcache_looks_html(const char *src)
{
    const char *p = src;
    while (*p != '\0' && isspace((unsigned char)*p))
        p++;
    return *p == '<' || strstr(src, "</") != NULL;
}

static int compile_one(const char *event_type, const char *channel, const char *what,
                       const char *src, template **out)
{
    char why[256];
    size_t off = 0;
    if (template_compile(src, out, &off, why, sizeof why) == 0)
        return 0;
    LOG_ERROR(event_type, "template %s/%s %s does not compile, channel left out: %s", event_type,
              channel, what, why);
    return -1;
}

static int put_entry(tplcache *c, const char *event_type, const tplcache_row *rows, size_t n,
                     int64_t now_ms, tplcache_type **entry, char *err, size_t errlen)
{
    tplcache_type *t = calloc(1, sizeof(*t));
    int rc = -1;
    if (t == NULL || (t->event_type = strdup(event_type)) == NULL)
        goto out;
    t->refs = 1;
    for (size_t i = 0; i < n; i++) {
        delivery_channel ch;
        if (rows[i].body == NULL || delivery_channel_parse(rows[i].channel, &ch) != 0)
            continue;
        tplcache_channel *tc = &t->ch[ch];
        if (compile_one(event_type, rows[i].channel, "body", rows[i].body, &tc->body) != 0)
            continue;
        if (rows[i].subject != NULL && *rows[i].subject != '\0' &&
            compile_one(event_type, rows[i].channel, "subject", rows[i].subject, &tc->subject) !=
                0) {
            template_free(tc->body);
            tc->body = NULL;
            continue;
        }
        if (rows[i].category != NULL && *rows[i].category != '\0' &&
            (tc->category = strdup(rows[i].category)) == NULL)
            goto out;
        tc->html = ch == DELIVERY_EMAIL && tplcache_looks_html(rows[i].body);
        tc->exists = true;
        t->uses_user = t->uses_user || template_uses_root(tc->body, "user") ||
                       template_uses_root(tc->subject, "user");
        t->uses_event = t->uses_event || template_uses_root(tc->body, "event") ||
                        template_uses_root(tc->subject, "event");
    }
    if (lru_put(c->lru, event_type, t, 1, now_ms + c->ttl_ms) != 0)
        goto out;
    if (entry != NULL) {
        t->refs++;
        *entry = t;
    }
    t = NULL;
    rc = 0;
out:
    if (rc != 0 && err != NULL && errlen > 0)
        error_set(err, errlen, "template cache: out of memory");
    if (t != NULL)
        type_destroy(t);
    return rc;
}

int tplcache_put(tplcache *c, const char *event_type, const tplcache_row *rows, size_t n,
                 int64_t now_ms, char *err, size_t errlen)
{
    return put_entry(c, event_type, rows, n, now_ms, NULL, err, errlen);
}

static const char *col(PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
}

pg_status tplcache_load(tplcache *c, pg_conn *db, const char *const *types, size_t n,
                        int64_t now_ms, tplcache_type **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    char *arr = NULL;
    pg_status st = PG_ERROR;
    for (size_t i = 0; out != NULL && i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return PG_OK;
    if ((arr = prefs_pg_array(types, n)) == NULL) {
        error_set(err, errlen, "template cache: out of memory");
        goto out;
    }
    if ((st = pg_prepare(db, "tpl_load", load_sql, 1, err, errlen)) != PG_OK)
        goto out;
    const char *params[1] = {arr};
    if ((st = pg_exec_prepared(db, "tpl_load", 1, params, NULL, NULL, 0, &res, err, errlen)) !=
        PG_OK)
        goto out;
    st = PG_ERROR;
    /* Rows come grouped by type; every requested type gets an entry, empty or not. */
    for (size_t i = 0; i < n; i++) {
        tplcache_row rows[DELIVERY_CHANNEL_COUNT];
        size_t nr = 0;
        for (int r = 0; r < PQntuples(res) && nr < DELIVERY_CHANNEL_COUNT; r++) {
            if (strcmp(PQgetvalue(res, r, 0), types[i]) != 0)
                continue;
            rows[nr++] =
                (tplcache_row){col(res, r, 1), col(res, r, 2), col(res, r, 3), col(res, r, 4)};
        }
        if (put_entry(c, types[i], rows, nr, now_ms, out != NULL ? &out[i] : NULL, err, errlen) !=
            0)
            goto out;
    }
    st = PG_OK;
out:
    if (st != PG_OK)
        for (size_t i = 0; out != NULL && i < n; i++) {
            tplcache_type_unref(out[i]);
            out[i] = NULL;
        }
    PQclear(res);
    free(arr);
    return st;
}

void tplcache_invalidate(tplcache *c, const char *payload)
{
    char type[256];
    snprintf(type, sizeof type, "%s", payload);
    char *slash = strrchr(type, '/');
    if (slash != NULL)
        *slash = '\0';
    (void)lru_remove(c->lru, type);
}

void tplcache_clear(tplcache *c)
{
    lru_clear(c->lru);
}

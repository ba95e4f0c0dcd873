/*
 * prefs_cache: see prefs_cache.h.
 */
#include "prefs_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "error.h"
#include "log.h"
#include "lru.h"

struct prefs_cache {
    lru_cache *lru;
    int64_t ttl_ms, negative_ttl_ms;
    uint64_t rng;
    uint64_t invalidations;
};

/*
 * One query for a whole batch's misses.  Push tokens come back as a JSON
 * array, which needs no array-literal parser; oldest first so that a user's
 * deliveries keep a stable order.
 */
static const char load_sql[] =
    "SELECT u.user_id, u.email, u.phone, u.name, u.timezone, u.locale, "
    "       p.channels::text, p.categories::text, p.quiet_start::text, p.quiet_end::text, "
    "       coalesce((SELECT json_agg(t.token ORDER BY t.created_at, t.token) "
    "                 FROM push_tokens t WHERE t.user_id = u.user_id), '[]')::text "
    "FROM users u LEFT JOIN preferences p ON p.user_id = u.user_id "
    "WHERE u.user_id = ANY($1::text[])";

static void user_destroy(prefs_user *u)
{
    free(u->user_id);
    free(u->email);
    free(u->phone);
    for (size_t i = 0; i < u->npush_tokens; i++)
        free(u->push_tokens[i]);
    free(u->push_tokens);
    json_decref(u->channels);
    json_decref(u->categories);
    free(u->name);
    free(u->timezone);
    free(u->locale);
    free(u);
}

void prefs_user_unref(prefs_user *u)
{
    if (u != NULL && --u->refs == 0)
        user_destroy(u);
}

static void lru_drop(void *v)
{
    prefs_user_unref(v);
}

prefs_cache *prefs_cache_new(const prefs_cache_options *opt)
{
    prefs_cache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->lru = lru_new(opt->max_entries, opt->max_bytes, lru_drop);
    if (c->lru == NULL) {
        free(c);
        return NULL;
    }
    c->ttl_ms = opt->ttl_ms > 0 ? opt->ttl_ms : 60000;
    c->negative_ttl_ms = opt->negative_ttl_ms > 0 ? opt->negative_ttl_ms : 5000;
    c->rng = opt->seed;
    return c;
}

void prefs_cache_free(prefs_cache *c)
{
    if (c == NULL)
        return;
    lru_free(c->lru);
    free(c);
}

prefs_user *prefs_cache_get(prefs_cache *c, const char *user_id, int64_t now_ms)
{
    prefs_user *u = lru_get(c->lru, user_id, now_ms);
    if (u != NULL)
        u->refs++;
    return u;
}

/* A preference document, or NULL when absent or not an object (logged: the gateway validates). */
static json_t *parse_doc(const char *user_id, const char *what, const char *text)
{
    if (text == NULL)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    if (j == NULL)
        LOG_WARN(user_id, "preferences.%s is not a JSON object: ignored", what);
    return j;
}

json_t *prefs_user_json(const prefs_user *u)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    const char *names[] = {"user_id", "name", "email", "phone", "timezone", "locale"};
    const char *vals[] = {u->user_id, u->name, u->email, u->phone, u->timezone, u->locale};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (vals[i] == NULL)
            continue;
        json_t *v = json_string(vals[i]);
        if (v == NULL || json_object_set_new(o, names[i], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A copy of a non-empty column value into *dst (NULL stays NULL); -1 when out of memory. */
static int keep(char **dst, const char *src, size_t *bytes)
{
    if (src == NULL || *src == '\0')
        return 0;
    if ((*dst = strdup(src)) == NULL)
        return -1;
    /* malloc rounds small blocks up to 16 bytes and adds a header of 8. */
    *bytes += (strlen(src) + 1 + 8 + 15) / 16 * 16;
    return 0;
}

static int set_tokens(prefs_user *u, const char *text)
{
    if (text == NULL)
        return 0;
    json_error_t jerr;
    json_t *arr = json_loads(text, 0, &jerr);
    int rc = -1;
    if (!json_is_array(arr)) {
        rc = 0; /* not expected from our own query; treat as no tokens */
        goto out;
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        rc = 0;
        goto out;
    }
    u->push_tokens = calloc(n, sizeof(char *));
    if (u->push_tokens == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(arr, i));
        if (t == NULL || *t == '\0')
            continue;
        if ((u->push_tokens[u->npush_tokens] = strdup(t)) == NULL)
            goto out;
        u->bytes += strlen(t) + 16;
        u->npush_tokens++;
    }
    rc = 0;
out:
    json_decref(arr);
    return rc;
}

static int fill_user(prefs_user *u, const prefs_row *row)
{
    char why[256];
    u->known = true;
    if (keep(&u->email, row->email, &u->bytes) != 0 ||
        keep(&u->phone, row->phone, &u->bytes) != 0 || keep(&u->name, row->name, &u->bytes) != 0 ||
        keep(&u->timezone, row->timezone, &u->bytes) != 0 ||
        keep(&u->locale, row->locale, &u->bytes) != 0)
        return -1;
    u->channels = parse_doc(row->user_id, "channels", row->channels_json);
    u->categories = parse_doc(row->user_id, "categories", row->categories_json);
    /* A jansson tree costs several times its text: a hashtable per object. */
    u->bytes += (row->channels_json ? 256 + strlen(row->channels_json) * 4 : 0) +
                (row->categories_json ? 256 + strlen(row->categories_json) * 4 : 0);
    if ((row->quiet_start != NULL || row->quiet_end != NULL) &&
        quiet_parse(row->quiet_start, row->quiet_end, &u->quiet, why, sizeof why) != 0) {
        LOG_WARN(row->user_id, "quiet hours ignored: %s", why);
        memset(&u->quiet, 0, sizeof u->quiet);
    }
    if (row->timezone != NULL && *row->timezone != '\0') {
        u->zone = tz_get(row->timezone, why, sizeof why);
        if (u->zone == NULL)
            LOG_WARN(row->user_id, "time zone %s unusable, using UTC: %s", row->timezone, why);
    }
    return set_tokens(u, row->push_tokens_json);
}

/* As prefs_cache_put(); *entry (may be NULL) receives the stored entry with an extra reference. */
static int put_entry(prefs_cache *c, const char *user_id, const prefs_row *row, int64_t now_ms,
                     prefs_user **entry, char *err, size_t errlen)
{
    prefs_user *u = calloc(1, sizeof(*u));
    int rc = -1;
    if (u == NULL || (u->user_id = strdup(user_id)) == NULL)
        goto out;
    u->refs = 1; /* the cache's */
    /* The entry, its id here and as the LRU's key, and the LRU's node. */
    u->bytes = sizeof(*u) + 2 * (strlen(user_id) + 24) + 96;
    if (row != NULL && fill_user(u, row) != 0)
        goto out;
    int64_t ttl = row != NULL ? backoff_uniform(&c->rng, c->ttl_ms * 9 / 10, c->ttl_ms * 11 / 10)
                              : c->negative_ttl_ms;
    if (lru_put(c->lru, user_id, u, u->bytes, now_ms + ttl) != 0)
        goto out;
    if (entry != NULL) {
        u->refs++;
        *entry = u;
    }
    u = NULL;
    rc = 0;
out:
    if (rc != 0)
        error_set(err, errlen, "preferences cache: out of memory");
    if (u != NULL)
        user_destroy(u);
    return rc;
}

int prefs_cache_put(prefs_cache *c, const char *user_id, const prefs_row *row, int64_t now_ms,
                    char *err, size_t errlen)
{
    return put_entry(c, user_id, row, now_ms, NULL, err, errlen);
}

static void append_escaped(char *dst, size_t *pos, const char *s)
{
    dst[(*pos)++] = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            dst[(*pos)++] = '\\';
        dst[(*pos)++] = *s;
    }
    dst[(*pos)++] = '"';
}

char *prefs_pg_array(const char *const *items, size_t n)
{
    size_t need = 3;
    for (size_t i = 0; i < n; i++)
        need += strlen(items[i]) * 2 + 3;
    char *s = malloc(need);
    if (s == NULL)
        return NULL;
    size_t pos = 0;
    s[pos++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            s[pos++] = ',';
        append_escaped(s, &pos, items[i]);
    }
    s[pos++] = '}';
    s[pos] = '\0';
    return s;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *col(PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
}

pg_status prefs_cache_load(prefs_cache *c, pg_conn *db, const char *const *ids, size_t n,
                           int64_t now_ms, prefs_user **out, char *err, size_t errlen)
{
    const char **uniq = NULL;
    prefs_user **found = NULL;
    char *arr = NULL;
    PGresult *res = NULL;
    pg_status st = PG_ERROR;
    size_t nu = 0;

    for (size_t i = 0; out != NULL && i < n; i++)
        out[i] = NULL;
    if (n == 0)
        return PG_OK;
    uniq = malloc(n * sizeof(*uniq));
    found = calloc(n, sizeof(*found));
    if (uniq == NULL || found == NULL) {
        error_set(err, errlen, "preferences cache: out of memory");
        goto out;
    }
    memcpy(uniq, ids, n * sizeof(*uniq));
    qsort(uniq, n, sizeof(*uniq), cmp_str);
    for (size_t i = 0; i < n; i++)
        if (nu == 0 || strcmp(uniq[nu - 1], uniq[i]) != 0)
            uniq[nu++] = uniq[i];
    if ((arr = prefs_pg_array(uniq, nu)) == NULL) {
        error_set(err, errlen, "preferences cache: out of memory");
        goto out;
    }
    if ((st = pg_prepare(db, "prefs_load", load_sql, 1, err, errlen)) != PG_OK)
        goto out;
    const char *params[1] = {arr};
    if ((st = pg_exec_prepared(db, "prefs_load", 1, params, NULL, NULL, 0, &res, err, errlen)) !=
        PG_OK)
        goto out;
    for (int r = 0; r < PQntuples(res); r++) {
        prefs_row row = {
            .user_id = col(res, r, 0),
            .email = col(res, r, 1),
            .phone = col(res, r, 2),
            .name = col(res, r, 3),
            .timezone = col(res, r, 4),
            .locale = col(res, r, 5),
            .channels_json = col(res, r, 6),
            .categories_json = col(res, r, 7),
            .quiet_start = col(res, r, 8),
            .quiet_end = col(res, r, 9),
            .push_tokens_json = col(res, r, 10),
        };
        const char **hit = bsearch(&row.user_id, uniq, nu, sizeof(*uniq), cmp_str);
        if (hit == NULL || found[hit - uniq] != NULL)
            continue; /* not asked for, or twice: neither happens with the query above */
        if (put_entry(c, row.user_id, &row, now_ms, &found[hit - uniq], err, errlen) != 0) {
            st = PG_ERROR;
            goto out;
        }
    }
    for (size_t i = 0; i < nu; i++)
        if (found[i] == NULL && put_entry(c, uniq[i], NULL, now_ms, &found[i], err, errlen) != 0) {
            st = PG_ERROR;
            goto out;
        }
    for (size_t i = 0; out != NULL && i < n; i++) {
        const char **hit = bsearch(&ids[i], uniq, nu, sizeof(*uniq), cmp_str);
        out[i] = found[hit - uniq];
        out[i]->refs++;
    }
    st = PG_OK;
out:
    PQclear(res);
    free(arr);
    for (size_t i = 0; found != NULL && i < nu; i++)
        prefs_user_unref(found[i]);
    free(found);
    free(uniq);
    return st;
}

void prefs_cache_invalidate(prefs_cache *c, const char *user_id)
{
    if (lru_remove(c->lru, user_id))
        c->invalidations++;
}

void prefs_cache_clear(prefs_cache *c)
{
    c->invalidations += lru_count(c->lru);
    lru_clear(c->lru);
}

void prefs_cache_stats_get(const prefs_cache *c, prefs_cache_stats *out)
{
    lru_stats s;
    lru_stats_get(c->lru, &s);
    out->hits = s.hits;
    out->misses = s.misses;
    out->evictions = s.evictions;
    out->expirations = s.expirations;
    out->invalidations = c->invalidations;
    out->entries = s.entries;
    out->bytes = s.bytes;
}

/*
 * rules: see rules.h.
 */
#include "rules.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "quiet.h"

struct rules {
    digest_rule *digest;
    size_t ndigest;
    throttle_rule *throttle;
    size_t nthrottle;
    followup_rule *followup;
    size_t nfollowup;
    bool loaded;
    int64_t loaded_at_ms;
};

static const char load_sql[] =
    "SELECT (SELECT coalesce(json_agg(row_to_json(d) ORDER BY d.name), '[]') FROM digest_rules d),"
    "       (SELECT coalesce(json_agg(row_to_json(t) ORDER BY t.name), '[]') "
    "        FROM throttle_rules t),"
    "       (SELECT coalesce(json_agg(row_to_json(f) ORDER BY f.name), '[]') "
    "        FROM followup_rules f)";

static void digest_rule_clear(digest_rule *d)
{
    free(d->name);
    free(d->event_type);
    free(d->category);
    free(d->group_by);
    free(d->template_type);
}

static void throttle_rule_clear(throttle_rule *t)
{
    free(t->name);
    free(t->category);
}

static void followup_rule_clear(followup_rule *f)
{
    free(f->name);
    free(f->event_type);
    free(f->category);
    free(f->template_type);
}

static void clear(rules *r)
{
    for (size_t i = 0; i < r->ndigest; i++)
        digest_rule_clear(&r->digest[i]);
    for (size_t i = 0; i < r->nthrottle; i++)
        throttle_rule_clear(&r->throttle[i]);
    for (size_t i = 0; i < r->nfollowup; i++)
        followup_rule_clear(&r->followup[i]);
    free(r->digest);
    free(r->throttle);
    free(r->followup);
    r->digest = NULL;
    r->throttle = NULL;
    r->followup = NULL;
    r->ndigest = r->nthrottle = r->nfollowup = 0;
}

rules *rules_new(void)
{
    return calloc(1, sizeof(rules));
}

void rules_free(rules *r)
{
    if (r == NULL)
        return;
    clear(r);
    free(r);
}

/* A copy of the string member key, NULL when absent or null; *oom on failure. */
static char *dup_member(const json_t *o, const char *key, bool *oom)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (s == NULL)
        return NULL;
    char *c = strdup(s);
    if (c == NULL)
        *oom = true;
    return c;
}

/* 0, -1 when the row is not a rule (logged), -2 when out of memory. */
static int parse_digest(const json_t *row, digest_rule *d)
{
    memset(d, 0, sizeof *d);
    bool oom = false;
    d->name = dup_member(row, "name", &oom);
    d->event_type = dup_member(row, "event_type", &oom);
    d->category = dup_member(row, "category", &oom);
    d->group_by = dup_member(row, "group_by", &oom);
    d->template_type = dup_member(row, "template", &oom);
    if (oom) {
        digest_rule_clear(d);
        return -2;
    }
    const char *kind = json_string_value(json_object_get(row, "window_kind"));
    const char *why = NULL;
    if (d->name == NULL || d->event_type == NULL || d->template_type == NULL)
        why = "name, event_type or template missing";
    else if (kind == NULL)
        why = "window_kind missing";
    else if (strcmp(kind, "fixed") == 0)
        d->kind = DIGEST_FIXED;
    else if (strcmp(kind, "sliding") == 0)
        d->kind = DIGEST_SLIDING;
    else if (strcmp(kind, "scheduled") == 0)
        d->kind = DIGEST_SCHEDULED;
    else
        why = "unknown window_kind";
    d->window_ms = json_integer_value(json_object_get(row, "window_ms"));
    d->max_window_ms = json_integer_value(json_object_get(row, "max_window_ms"));
    d->max_events = (int)json_integer_value(json_object_get(row, "max_events"));
    d->send_first = json_is_true(json_object_get(row, "send_first"));
    d->events_shown = (int)json_integer_value(json_object_get(row, "events_shown"));
    if (d->events_shown < 1)
        d->events_shown = 10;
    const json_t *chans = json_object_get(row, "channels");
    size_t i;
    const json_t *c;
    json_array_foreach(chans, i, c)
    {
        delivery_channel ch;
        if (json_is_string(c) && delivery_channel_parse(json_string_value(c), &ch) == 0)
            d->channel[ch] = true;
    }
    const char *at = json_string_value(json_object_get(row, "schedule_at"));
    char perr[128];
    if (why == NULL && d->kind == DIGEST_SCHEDULED &&
        (at == NULL || quiet_parse_time(at, &d->schedule_s, perr, sizeof perr) != 0))
        why = "schedule_at missing or not a time";
    if (why == NULL && d->kind != DIGEST_SCHEDULED && d->window_ms <= 0)
        why = "window_ms missing";
    if (why == NULL && d->kind == DIGEST_SLIDING && d->max_window_ms < d->window_ms)
        why = "max_window_ms missing or below window_ms";
    if (why != NULL) {
        LOG_WARN("rules", "digest rule %s left out: %s", d->name ? d->name : "?", why);
        digest_rule_clear(d);
        return -1;
    }
    return 0;
}

static int parse_throttle(const json_t *row, throttle_rule *t)
{
    memset(t, 0, sizeof *t);
    bool oom = false;
    t->name = dup_member(row, "name", &oom);
    t->category = dup_member(row, "category", &oom);
    if (oom) {
        throttle_rule_clear(t);
        return -2;
    }
    const char *ch = json_string_value(json_object_get(row, "channel"));
    const char *action = json_string_value(json_object_get(row, "action"));
    delivery_channel c;
    t->channel = -1;
    const char *why = NULL;
    if (ch != NULL) {
        if (delivery_channel_parse(ch, &c) == 0)
            t->channel = (int)c;
        else
            why = "unknown channel";
    }
    t->max_count = (int)json_integer_value(json_object_get(row, "max_count"));
    t->window_ms = json_integer_value(json_object_get(row, "window_ms"));
    t->defer = action != NULL && strcmp(action, "defer") == 0;
    if (t->name == NULL)
        why = "name missing";
    else if (t->max_count < 1 || t->window_ms <= 0)
        why = "max_count or window_ms missing";
    else if (action == NULL || (!t->defer && strcmp(action, "drop") != 0))
        why = "action is neither drop nor defer";
    if (why != NULL) {
        LOG_WARN("rules", "throttle rule %s left out: %s", t->name ? t->name : "?", why);
        throttle_rule_clear(t);
        return -1;
    }
    return 0;
}

static int parse_followup(const json_t *row, followup_rule *f)
{
    memset(f, 0, sizeof *f);
    bool oom = false;
    f->name = dup_member(row, "name", &oom);
    f->event_type = dup_member(row, "event_type", &oom);
    f->category = dup_member(row, "category", &oom);
    f->template_type = dup_member(row, "template", &oom);
    if (oom) {
        followup_rule_clear(f);
        return -2;
    }
    const char *after = json_string_value(json_object_get(row, "after_channel"));
    const char *ch = json_string_value(json_object_get(row, "channel"));
    f->delay_ms = json_integer_value(json_object_get(row, "delay_ms"));
    const char *why = NULL;
    if (f->name == NULL || f->event_type == NULL)
        why = "name or event_type missing";
    else if (after == NULL || delivery_channel_parse(after, &f->after_channel) != 0 ||
             f->after_channel != DELIVERY_INAPP)
        why = "after_channel is not inapp";
    else if (ch == NULL || delivery_channel_parse(ch, &f->channel) != 0 ||
             f->channel == DELIVERY_INAPP)
        why = "channel is not email, sms or push";
    else if (f->delay_ms <= 0)
        why = "delay_ms missing";
    if (why != NULL) {
        LOG_WARN("rules", "follow-up rule %s left out: %s", f->name ? f->name : "?", why);
        followup_rule_clear(f);
        return -1;
    }
    return 0;
}

int rules_set(rules *r, const char *digest_rows, const char *throttle_rows,
              const char *followup_rows, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *dj = json_loads(digest_rows, 0, &jerr);
    json_t *tj = json_loads(throttle_rows, 0, &jerr);
    json_t *fj = json_loads(followup_rows, 0, &jerr);
    digest_rule *dv = NULL;
    throttle_rule *tv = NULL;
    followup_rule *fv = NULL;
    size_t nd = 0, nt = 0, nf = 0;
    int rc = -1;
    if (!json_is_array(dj) || !json_is_array(tj) || !json_is_array(fj)) {
        error_set(err, errlen, "rules: the tables' rows are not JSON arrays");
        goto out;
    }
    dv = calloc(json_array_size(dj) + 1, sizeof(*dv));
    tv = calloc(json_array_size(tj) + 1, sizeof(*tv));
    fv = calloc(json_array_size(fj) + 1, sizeof(*fv));
    if (dv == NULL || tv == NULL || fv == NULL)
        goto oom;
    size_t i;
    json_t *row;
    json_array_foreach(dj, i, row)
    {
        int p = parse_digest(row, &dv[nd]);
        if (p == -2)
            goto oom;
        nd += p == 0;
    }
    json_array_foreach(tj, i, row)
    {
        int p = parse_throttle(row, &tv[nt]);
        if (p == -2)
            goto oom;
        nt += p == 0;
    }
    json_array_foreach(fj, i, row)
    {
        int p = parse_followup(row, &fv[nf]);
        if (p == -2)
            goto oom;
        nf += p == 0;
    }
    clear(r);
    r->digest = dv;
    r->ndigest = nd;
    r->throttle = tv;
    r->nthrottle = nt;
    r->followup = fv;
    r->nfollowup = nf;
    dv = NULL;
    tv = NULL;
    fv = NULL;
    nd = nt = nf = 0;
    rc = 0;
    goto out;
oom:
    error_set(err, errlen, "rules: out of memory");
out:
    for (size_t k = 0; dv != NULL && k < nd; k++)
        digest_rule_clear(&dv[k]);
    for (size_t k = 0; tv != NULL && k < nt; k++)
        throttle_rule_clear(&tv[k]);
    for (size_t k = 0; fv != NULL && k < nf; k++)
        followup_rule_clear(&fv[k]);
    free(dv);
    free(tv);
    free(fv);
    json_decref(dj);
    json_decref(tj);
    json_decref(fj);
    return rc;
}

pg_status rules_refresh(rules *r, pg_conn *db, int64_t now_ms, char *err, size_t errlen)
{
    if (r->loaded && now_ms - r->loaded_at_ms < RULES_TTL_MS)
        return PG_OK;
    PGresult *res = NULL;
    pg_status st = pg_query(db, load_sql, 0, NULL, &res, err, errlen);
    if (st != PG_OK)
        return st;
    if (PQntuples(res) != 1) {
        PQclear(res);
        error_set(err, errlen, "rules: unexpected result");
        return PG_ERROR;
    }
    int rc = rules_set(r, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), err,
                       errlen);
    PQclear(res);
    if (rc != 0)
        return PG_ERROR;
    r->loaded = true;
    r->loaded_at_ms = now_ms;
    return PG_OK;
}

void rules_invalidate(rules *r)
{
    r->loaded = false;
}

bool rules_have_digests(const rules *r)
{
    return r->ndigest > 0;
}

bool rules_have_throttles(const rules *r)
{
    return r->nthrottle > 0;
}

bool rules_have_followups(const rules *r)
{
    return r->nfollowup > 0;
}

const digest_rule *rules_digest_for(const rules *r, const char *event_type, const char *category)
{
    const digest_rule *any = NULL;
    for (size_t i = 0; i < r->ndigest; i++) {
        const digest_rule *d = &r->digest[i];
        if (strcmp(d->event_type, event_type) != 0)
            continue;
        if (d->category == NULL)
            any = d;
        else if (category != NULL && strcmp(d->category, category) == 0)
            return d;
    }
    return any;
}

const digest_rule *rules_digest_named(const rules *r, const char *name)
{
    for (size_t i = 0; i < r->ndigest; i++)
        if (strcmp(r->digest[i].name, name) == 0)
            return &r->digest[i];
    return NULL;
}

const throttle_rule *rules_throttle_for(const rules *r, const char *category,
                                        delivery_channel channel)
{
    const throttle_rule *best = NULL;
    int best_score = -1;
    for (size_t i = 0; i < r->nthrottle; i++) {
        const throttle_rule *t = &r->throttle[i];
        if (t->category != NULL && (category == NULL || strcmp(t->category, category) != 0))
            continue;
        if (t->channel >= 0 && t->channel != (int)channel)
            continue;
        int score = (t->category != NULL ? 2 : 0) + (t->channel >= 0 ? 1 : 0);
        if (score > best_score) {
            best = t;
            best_score = score;
        }
    }
    return best;
}

size_t rules_followups_for(const rules *r, const char *event_type, const char *category,
                           const followup_rule *out[DELIVERY_CHANNEL_COUNT])
{
    const followup_rule *pick[DELIVERY_CHANNEL_COUNT] = {0};
    for (size_t i = 0; i < r->nfollowup; i++) {
        const followup_rule *f = &r->followup[i];
        if (strcmp(f->event_type, event_type) != 0)
            continue;
        if (f->category == NULL) {
            if (pick[f->channel] == NULL)
                pick[f->channel] = f;
        } else if (category != NULL && strcmp(f->category, category) == 0) {
            pick[f->channel] = f;
        }
    }
    size_t n = 0;
    for (int c = 0; c < DELIVERY_CHANNEL_COUNT; c++)
        if (pick[c] != NULL)
            out[n++] = pick[c];
    return n;
}

const followup_rule *rules_followup_named(const rules *r, const char *name)
{
    for (size_t i = 0; i < r->nfollowup; i++)
        if (strcmp(r->followup[i].name, name) == 0)
            return &r->followup[i];
    return NULL;
}

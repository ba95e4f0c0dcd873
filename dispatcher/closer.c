/*
 * closer: see closer.h.
 */
#include "closer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "error.h"
#include "event.h"
#include "followup.h"
#include "log.h"
#include "timeutil.h"
#include "txn.h"

/* The user of a window, from the cache or read now; NULL only when out of memory or PG failed. */
static pg_status user_of(closer_ctx *c, const char *user_id, int64_t now_ms, prefs_user **out,
                         char *err, size_t errlen)
{
    if ((*out = prefs_cache_get(c->users, user_id, now_ms)) != NULL)
        return PG_OK;
    const char *ids[1] = {user_id};
    return prefs_cache_load(c->users, c->db, ids, 1, now_ms, out, err, errlen);
}

static pg_status templates_of(closer_ctx *c, const char *type, int64_t now_ms, tplcache_type **out,
                              char *err, size_t errlen)
{
    if ((*out = tplcache_get(c->tpls, type, now_ms)) != NULL)
        return PG_OK;
    const char *types[1] = {type};
    return tplcache_load(c->tpls, c->db, types, 1, now_ms, out, err, errlen);
}

/*
 * The digest's template type: its rule's; for a window whose rule was
 * deleted meanwhile, "<type of its first event>.digest", so that its events
 * still go out rather than vanish.
 */
static void template_type(const closer_ctx *c, const digest_due *w, char *out, size_t outlen)
{
    const digest_rule *r = rules_digest_named(c->rules, w->rule);
    if (r != NULL) {
        snprintf(out, outlen, "%s", r->template_type);
        return;
    }
    const json_t *first = json_array_get(json_object_get(w->summary, "events"), 0);
    const char *t = json_string_value(json_object_get(first, "type"));
    snprintf(out, outlen, "%s.digest", t != NULL ? t : "unknown");
}

/* The digest event of a window (data: the summary and the window's facts). */
static int digest_event(const closer_ctx *c, const digest_due *w, const char *type, event *ev)
{
    memset(ev, 0, sizeof *ev);
    const digest_rule *r = rules_digest_named(c->rules, w->rule);
    char opened[TIMEUTIL_RFC3339_SIZE], closed[TIMEUTIL_RFC3339_SIZE];
    timeutil_format_rfc3339(w->opened_ms, opened, sizeof opened);
    timeutil_format_rfc3339(w->closed_ms, closed, sizeof closed);
    json_t *data = json_deep_copy(w->summary);
    if (data == NULL || json_object_update_new(
                            data, json_pack("{s:s, s:s, s:s, s:s, s:s}", "rule", w->rule, "channel",
                                            delivery_channel_name(w->channel), "key", w->group_key,
                                            "opened_at", opened, "closed_at", closed)) != 0) {
        json_decref(data);
        return -1;
    }
    if (digest_fit(data, DELIVERY_DATA_MAX) != 0)
        LOG_WARN("digest", "digest %s: its data is over %d bytes even without its lists",
                 w->window_id, DELIVERY_DATA_MAX);
    snprintf(ev->event_id, sizeof ev->event_id, "%s", w->window_id);
    ev->type = strdup(type);
    ev->user_id = strdup(w->user_id);
    ev->category = r != NULL && r->category != NULL ? strdup(r->category) : NULL;
    ev->data = data;
    ev->priority = EVENT_PRIORITY_NORMAL;
    ev->created_at = w->closed_ms;
    if (ev->type == NULL || ev->user_id == NULL ||
        (r != NULL && r->category != NULL && ev->category == NULL)) {
        event_free(ev);
        return -1;
    }
    return 0;
}

/*
 * Reads the users and template types of a pass that the caches lack, one
 * query each, so that a pass over many windows does not query per window.
 * Names may repeat.  A user or type evicted again before its turn is read
 * alone then.
 */
static pg_status prefetch(closer_ctx *c, const char **users, size_t nu, const char **types,
                          size_t nt, int64_t now_ms, char *err, size_t errlen)
{
    size_t um = 0, tm = 0;
    for (size_t i = 0; i < nu; i++) {
        prefs_user *u = prefs_cache_get(c->users, users[i], now_ms);
        if (u != NULL)
            prefs_user_unref(u);
        else
            users[um++] = users[i];
    }
    for (size_t i = 0; i < nt; i++) {
        bool seen = false;
        for (size_t k = 0; k < tm && !seen; k++)
            seen = strcmp(types[k], types[i]) == 0;
        tplcache_type *t = seen ? NULL : tplcache_get(c->tpls, types[i], now_ms);
        if (t != NULL)
            tplcache_type_unref(t);
        else if (!seen)
            types[tm++] = types[i];
    }
    pg_status st = PG_OK;
    if (um > 0)
        st = prefs_cache_load(c->users, c->db, users, um, now_ms, NULL, err, errlen);
    if (st == PG_OK && tm > 0)
        st = tplcache_load(c->tpls, c->db, types, tm, now_ms, NULL, err, errlen);
    return st;
}

/*
 * Renders ev for channel ch alone, with the templates of type, for its user
 * as the caches have them now; adds its status rows (with its events row
 * when event_row, else deliveries rows only) and produces its deliveries
 * into the open transaction.  keys (may be NULL) gets the idempotency keys
 * produced, *skip the first reason nothing went ("no_template" when type
 * has no template for ch).
 */
static batch_status render_one(closer_ctx *c, const event *ev, const char *type,
                               delivery_channel ch, bool event_row, int64_t now_ms, json_t *keys,
                               const char **skip, closer_counts *n, char *err, size_t errlen)
{
    prefs_user *user = NULL;
    tplcache_type *tpl = NULL;
    batch_status ret = BATCH_RETRY_PG;
    *skip = NULL;
    if (user_of(c, ev->user_id, now_ms, &user, err, errlen) != PG_OK ||
        templates_of(c, type, now_ms, &tpl, err, errlen) != PG_OK)
        goto out;
    ret = BATCH_OK;
    tplcache_type one;
    memset(&one, 0, sizeof one);
    if (tpl == NULL || !tpl->ch[ch].exists) {
        LOG_WARN("digest", "%s: no %s template for %s: nothing sent", ev->event_id,
                 delivery_channel_name(ch), type);
        *skip = "no_template";
        if (!event_row)
            goto out;
    } else {
        one = *tpl;
        for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
            if (k != (int)ch)
                one.ch[k].exists = false;
    }
    size_t from = c->fl->n;
    ret = BATCH_FATAL;
    if (fanout_event(ev, user, &one, c->fo, now_ms, c->fl, err, errlen) != 0 ||
        (event_row ? status_add_event(c->sb, ev, c->fl->items + from, c->fl->n - from)
                   : status_add_deliveries(c->sb, ev, c->fl->items + from, c->fl->n - from)) != 0)
        goto out;
    ret = BATCH_OK;
    for (size_t i = from; i < c->fl->n && ret == BATCH_OK; i++) {
        fanout_item *it = &c->fl->items[i];
        if (it->action == DECIDE_SKIP) {
            if (*skip == NULL)
                *skip = it->skip_reason;
            n->skipped++;
            continue;
        }
        const char *topic = it->action == DECIDE_SCHEDULE ? c->retry_topic[it->channel]
                                                          : c->deliver_topic[it->channel];
        txn_result tr = txn_produce(c->producer, topic, ev->user_id, strlen(ev->user_id), it->value,
                                    it->vlen, NULL, c->produce_timeout_ms, err, errlen);
        if (tr != TXN_OK) {
            ret = batch_from_txn(tr);
        } else if (keys != NULL && json_array_append_new(keys, json_string(it->idempotency_key))) {
            error_set(err, errlen, "out of memory");
            ret = BATCH_FATAL;
        } else {
            n->deliveries[it->channel]++;
        }
    }
out:
    if (user != NULL)
        prefs_user_unref(user);
    tplcache_type_unref(tpl);
    return ret;
}

/*
 * One pass over n taken items: in one Kafka transaction, one() renders and
 * produces item i; the status rows are written and before_commit (may be
 * NULL) runs before the commit, after_commit after it.  counts are added to
 * only when all of it succeeded; a failure aborts, and the items, still
 * taken, are taken again by the next pass.
 */
typedef struct pass_ops {
    batch_status (*one)(closer_ctx *c, void *items, size_t i, int64_t now_ms, closer_counts *n,
                        char *err, size_t errlen);
    pg_status (*before_commit)(closer_ctx *c, void *items, char *err, size_t errlen);
    pg_status (*after_commit)(closer_ctx *c, void *items, char *err, size_t errlen);
} pass_ops;

static batch_status run_pass(closer_ctx *c, const pass_ops *ops, void *items, size_t n,
                             int64_t now_ms, closer_counts *counts, char *err, size_t errlen)
{
    closer_counts k;
    memset(&k, 0, sizeof k);
    batch_status ret = BATCH_OK;
    bool in_txn = false;
    txn_result tr = txn_begin(c->producer, err, errlen);
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    in_txn = true;
    fanout_list_reset(c->fl);
    status_batch_reset(c->sb);
    for (size_t i = 0; i < n && ret == BATCH_OK; i++)
        ret = ops->one(c, items, i, now_ms, &k, err, errlen);
    if (ret != BATCH_OK)
        goto out;
    /* Rows first: a delivery visible in Kafka must have its row. */
    if (status_write(c->sb, c->db, err, errlen) != PG_OK ||
        (ops->before_commit != NULL && ops->before_commit(c, items, err, errlen) != PG_OK)) {
        ret = BATCH_RETRY_PG;
        goto out;
    }
    tr = txn_commit(c->producer, c->consumer, NULL, err, errlen);
    in_txn = false;
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    /*
     * Committed.  Should this fail, the items stay taken and the next pass
     * produces them again: the same keys, so still sent once.
     */
    if (ops->after_commit(c, items, err, errlen) != PG_OK) {
        ret = BATCH_RETRY_PG;
        goto out;
    }
    counts->sent += k.sent;
    counts->empty += k.empty;
    counts->followups += k.followups;
    counts->cancelled += k.cancelled;
    counts->skipped += k.skipped;
    for (int ch = 0; ch < DELIVERY_CHANNEL_COUNT; ch++)
        counts->deliveries[ch] += k.deliveries[ch];
out:
    if (in_txn) {
        char why[256];
        if (txn_abort(c->producer, why, sizeof why) != TXN_OK) {
            LOG_ERROR("digest", "abort failed: %s", why);
            ret = BATCH_FATAL;
        }
    }
    fanout_list_reset(c->fl);
    status_batch_reset(c->sb);
    return ret;
}

/* ---------------------------------------------------------------- digests */

static batch_status close_one(closer_ctx *c, void *items, size_t i, int64_t now_ms,
                              closer_counts *n, char *err, size_t errlen)
{
    const digest_due *w = &((digest_due_list *)items)->w[i];
    if (w->members == 0) {
        n->empty++;
        return BATCH_OK;
    }
    char type[160];
    template_type(c, w, type, sizeof type);
    event ev;
    if (digest_event(c, w, type, &ev) != 0) {
        error_set(err, errlen, "digest %s: out of memory", w->window_id);
        return BATCH_FATAL;
    }
    const char *skip;
    batch_status r =
        render_one(c, &ev, type, w->channel, true, now_ms, NULL, &skip, n, err, errlen);
    event_free(&ev);
    if (r == BATCH_OK)
        n->sent++;
    return r;
}

static pg_status windows_done(closer_ctx *c, void *items, char *err, size_t errlen)
{
    return digest_done(c->db, items, err, errlen);
}

batch_status closer_run(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                        char *err, size_t errlen)
{
    static const pass_ops ops = {.one = close_one, .after_commit = windows_done};
    digest_due_list due;
    *taken = 0;
    if (digest_take_due(c->db, c->parts, c->nparts, now_ms, c->limit, &due, err, errlen) != PG_OK)
        return BATCH_RETRY_PG;
    *taken = due.n;
    batch_status r = BATCH_OK;
    const char **users = calloc(due.n + 1, sizeof(*users));
    const char **types = calloc(due.n + 1, sizeof(*types));
    char(*names)[160] = calloc(due.n + 1, sizeof(*names));
    if (users == NULL || types == NULL || names == NULL) {
        error_set(err, errlen, "digest: out of memory");
        r = BATCH_FATAL;
    } else if (due.n > 0) {
        for (size_t i = 0; i < due.n; i++) {
            users[i] = due.w[i].user_id;
            template_type(c, &due.w[i], names[i], sizeof names[i]);
            types[i] = names[i];
        }
        if (prefetch(c, users, due.n, types, due.n, now_ms, err, errlen) != PG_OK)
            r = BATCH_RETRY_PG;
        else
            r = run_pass(c, &ops, &due, due.n, now_ms, counts, err, errlen);
    }
    free(users);
    free(types);
    free(names);
    digest_due_list_free(&due);
    return r;
}

/* -------------------------------------------------------------- follow-ups */

typedef struct followup_pass {
    followup_due_list due;
    followup_outcome *o;
} followup_pass;

/*
 * A follow-up: cancelled when its in-app message was read or archived;
 * otherwise the stored event rendered for the rule's channel with the
 * rule's template (else the event's own).
 */
static batch_status follow_one(closer_ctx *c, void *items, size_t i, int64_t now_ms,
                               closer_counts *n, char *err, size_t errlen)
{
    followup_pass *p = items;
    const followup_due *f = &p->due.f[i];
    followup_outcome *o = &p->o[i];
    o->status = "skipped";
    o->reason = NULL;
    if (f->read != NULL) {
        o->status = "cancelled";
        o->reason = f->read;
        n->cancelled++;
        return BATCH_OK;
    }
    event ev;
    char perr[256];
    if (event_parse(f->event_json, strlen(f->event_json), &ev, perr, sizeof perr) != EVENT_OK) {
        LOG_WARN("followup", "follow-up of %s: the stored event does not parse (%s): skipped",
                 f->event_id, perr);
        o->reason = "invalid_event";
        return BATCH_OK;
    }
    const followup_rule *r = rules_followup_named(c->rules, f->rule);
    const char *type = r != NULL && r->template_type != NULL ? r->template_type : ev.type;
    batch_status ret = BATCH_FATAL;
    if ((o->keys = json_array()) == NULL) {
        error_set(err, errlen, "follow-up: out of memory");
    } else {
        ret = render_one(c, &ev, type, f->channel, false, now_ms, o->keys, &o->reason, n, err,
                         errlen);
    }
    if (ret == BATCH_OK && json_array_size(o->keys) > 0) {
        o->status = "sent";
        o->reason = NULL;
        n->followups++;
    }
    event_free(&ev);
    return ret;
}

static pg_status followups_held(closer_ctx *c, void *items, char *err, size_t errlen)
{
    followup_pass *p = items;
    return followup_resolve_held(c->db, &p->due, p->o, err, errlen);
}

static pg_status followups_done(closer_ctx *c, void *items, char *err, size_t errlen)
{
    followup_pass *p = items;
    return followup_done(c->db, &p->due, p->o, err, errlen);
}

batch_status closer_followups(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                              char *err, size_t errlen)
{
    static const pass_ops ops = {
        .one = follow_one, .before_commit = followups_held, .after_commit = followups_done};
    followup_pass p = {0};
    *taken = 0;
    if (followup_take_due(c->db, c->parts, c->nparts, now_ms, c->limit, &p.due, err, errlen) !=
        PG_OK)
        return BATCH_RETRY_PG;
    *taken = p.due.n;
    batch_status r = BATCH_OK;
    if (p.due.n > 0 && (p.o = calloc(p.due.n, sizeof(*p.o))) == NULL) {
        error_set(err, errlen, "follow-up: out of memory");
        r = BATCH_FATAL;
    } else if (p.due.n > 0) {
        const char **users = calloc(p.due.n, sizeof(*users));
        for (size_t i = 0; users != NULL && i < p.due.n; i++)
            users[i] = p.due.f[i].user_id;
        if (users == NULL) {
            error_set(err, errlen, "follow-up: out of memory");
            r = BATCH_FATAL;
        } else if (prefetch(c, users, p.due.n, NULL, 0, now_ms, err, errlen) != PG_OK) {
            r = BATCH_RETRY_PG;
        } else {
            r = run_pass(c, &ops, &p, p.due.n, now_ms, counts, err, errlen);
        }
        free(users);
    }
    for (size_t i = 0; p.o != NULL && i < p.due.n; i++)
        json_decref(p.o[i].keys);
    free(p.o);
    followup_due_list_free(&p.due);
    return r;
}

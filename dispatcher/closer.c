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

/* Renders and produces one window's digest into the open transaction. */
static batch_status close_one(closer_ctx *c, const digest_due *w, int64_t now_ms, closer_counts *n,
                              char *err, size_t errlen)
{
    char type[160];
    template_type(c, w, type, sizeof type);
    prefs_user *user = NULL;
    tplcache_type *tpl = NULL;
    event ev;
    batch_status ret = BATCH_RETRY_PG;
    if (user_of(c, w->user_id, now_ms, &user, err, errlen) != PG_OK ||
        templates_of(c, type, now_ms, &tpl, err, errlen) != PG_OK)
        goto out;
    ret = BATCH_FATAL;
    if (digest_event(c, w, type, &ev) != 0) {
        error_set(err, errlen, "digest %s: out of memory", w->window_id);
        goto out;
    }
    /* Only the window's own channel: the rule digests each channel apart. */
    tplcache_type one;
    memset(&one, 0, sizeof one);
    if (tpl != NULL) {
        one = *tpl;
        for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
            if (k != (int)w->channel)
                one.ch[k].exists = false;
    }
    if (tpl == NULL || !tpl->ch[w->channel].exists)
        LOG_WARN("digest", "digest %s: no %s template for %s: not sent", w->window_id,
                 delivery_channel_name(w->channel), type);
    size_t from = c->fl->n;
    if (fanout_event(&ev, user, tpl != NULL ? &one : NULL, c->fo, now_ms, c->fl, err, errlen) !=
            0 ||
        status_add_event(c->sb, &ev, c->fl->items + from, c->fl->n - from) != 0) {
        event_free(&ev);
        goto out;
    }
    ret = BATCH_OK;
    for (size_t i = from; i < c->fl->n && ret == BATCH_OK; i++) {
        fanout_item *it = &c->fl->items[i];
        if (it->action == DECIDE_SKIP) {
            n->skipped++;
            continue;
        }
        const char *topic = it->action == DECIDE_SCHEDULE ? c->retry_topic[it->channel]
                                                          : c->deliver_topic[it->channel];
        txn_result tr = txn_produce(c->producer, topic, ev.user_id, strlen(ev.user_id), it->value,
                                    it->vlen, NULL, c->produce_timeout_ms, err, errlen);
        if (tr != TXN_OK)
            ret = batch_from_txn(tr);
        else
            n->deliveries[it->channel]++;
    }
    event_free(&ev);
out:
    if (user != NULL)
        prefs_user_unref(user);
    tplcache_type_unref(tpl);
    return ret;
}

batch_status closer_run(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                        char *err, size_t errlen)
{
    digest_due_list due;
    *taken = 0;
    if (digest_take_due(c->db, c->parts, c->nparts, now_ms, c->limit, &due, err, errlen) != PG_OK)
        return BATCH_RETRY_PG;
    *taken = due.n;
    if (due.n == 0)
        return BATCH_OK;
    closer_counts n;
    memset(&n, 0, sizeof n);
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
    for (size_t i = 0; i < due.n && ret == BATCH_OK; i++) {
        if (due.w[i].members == 0) {
            n.empty++;
            continue;
        }
        if ((ret = close_one(c, &due.w[i], now_ms, &n, err, errlen)) == BATCH_OK)
            n.sent++;
    }
    if (ret != BATCH_OK)
        goto out;
    /* Rows first: a delivery visible in Kafka must have its row. */
    if (status_write(c->sb, c->db, err, errlen) != PG_OK) {
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
     * Committed.  Should this fail, the windows stay closing and the next
     * pass produces them again: same keys, so still sent once.
     */
    if (digest_done(c->db, &due, err, errlen) != PG_OK) {
        ret = BATCH_RETRY_PG;
        goto out;
    }
    counts->sent += n.sent;
    counts->empty += n.empty;
    counts->skipped += n.skipped;
    for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
        counts->deliveries[k] += n.deliveries[k];
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
    digest_due_list_free(&due);
    return ret;
}

/*
 * Renders one follow-up into the open transaction: the event for the
 * rule's channel only, with the rule's template (or the event's own), for
 * the user as they are now.  o gets the outcome.
 */
static batch_status follow_one(closer_ctx *c, const followup_due *f, int64_t now_ms,
                               followup_outcome *o, closer_counts *n, char *err, size_t errlen)
{
    event ev;
    char perr[256];
    o->status = "skipped";
    o->reason = NULL;
    if (event_parse(f->event_json, strlen(f->event_json), &ev, perr, sizeof perr) != EVENT_OK) {
        LOG_WARN("followup", "follow-up of %s: the stored event does not parse (%s): skipped",
                 f->event_id, perr);
        o->reason = "invalid_event";
        return BATCH_OK;
    }
    const followup_rule *r = rules_followup_named(c->rules, f->rule);
    const char *type = r != NULL && r->template_type != NULL ? r->template_type : ev.type;
    prefs_user *user = NULL;
    tplcache_type *tpl = NULL;
    batch_status ret = BATCH_RETRY_PG;
    if (user_of(c, f->user_id, now_ms, &user, err, errlen) != PG_OK ||
        templates_of(c, type, now_ms, &tpl, err, errlen) != PG_OK)
        goto out;
    tplcache_type one;
    memset(&one, 0, sizeof one);
    if (tpl != NULL) {
        one = *tpl;
        for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
            if (k != (int)f->channel)
                one.ch[k].exists = false;
    }
    if (tpl == NULL || !tpl->ch[f->channel].exists) {
        LOG_WARN("followup", "follow-up of %s: no %s template for %s: skipped", f->event_id,
                 delivery_channel_name(f->channel), type);
        o->reason = "no_template";
        ret = BATCH_OK;
        goto out;
    }
    size_t from = c->fl->n;
    ret = BATCH_FATAL;
    if (fanout_event(&ev, user, &one, c->fo, now_ms, c->fl, err, errlen) != 0 ||
        status_add_deliveries(c->sb, &ev, c->fl->items + from, c->fl->n - from) != 0 ||
        (o->keys = json_array()) == NULL)
        goto out;
    ret = BATCH_OK;
    for (size_t i = from; i < c->fl->n && ret == BATCH_OK; i++) {
        fanout_item *it = &c->fl->items[i];
        if (it->action == DECIDE_SKIP) {
            if (o->reason == NULL)
                o->reason = it->skip_reason;
            n->skipped++;
            continue;
        }
        const char *topic = it->action == DECIDE_SCHEDULE ? c->retry_topic[it->channel]
                                                          : c->deliver_topic[it->channel];
        txn_result tr = txn_produce(c->producer, topic, ev.user_id, strlen(ev.user_id), it->value,
                                    it->vlen, NULL, c->produce_timeout_ms, err, errlen);
        if (tr != TXN_OK) {
            ret = batch_from_txn(tr);
        } else if (json_array_append_new(o->keys, json_string(it->idempotency_key)) != 0) {
            error_set(err, errlen, "follow-up: out of memory");
            ret = BATCH_FATAL;
        } else {
            n->deliveries[it->channel]++;
        }
    }
    if (json_array_size(o->keys) > 0) {
        o->status = "sent";
        o->reason = NULL;
    }
out:
    event_free(&ev);
    if (user != NULL)
        prefs_user_unref(user);
    tplcache_type_unref(tpl);
    return ret;
}

batch_status closer_followups(closer_ctx *c, int64_t now_ms, size_t *taken, closer_counts *counts,
                              char *err, size_t errlen)
{
    followup_due_list due;
    *taken = 0;
    if (followup_take_due(c->db, c->parts, c->nparts, now_ms, c->limit, &due, err, errlen) != PG_OK)
        return BATCH_RETRY_PG;
    *taken = due.n;
    if (due.n == 0)
        return BATCH_OK;
    closer_counts n;
    memset(&n, 0, sizeof n);
    batch_status ret = BATCH_OK;
    bool in_txn = false;
    followup_outcome *o = calloc(due.n, sizeof(*o));
    if (o == NULL) {
        error_set(err, errlen, "follow-up: out of memory");
        ret = BATCH_FATAL;
        goto out;
    }
    txn_result tr = txn_begin(c->producer, err, errlen);
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    in_txn = true;
    fanout_list_reset(c->fl);
    status_batch_reset(c->sb);
    for (size_t i = 0; i < due.n && ret == BATCH_OK; i++) {
        if (due.f[i].read != NULL) {
            o[i].status = "cancelled";
            o[i].reason = due.f[i].read;
            n.cancelled++;
            continue;
        }
        ret = follow_one(c, &due.f[i], now_ms, &o[i], &n, err, errlen);
        if (ret == BATCH_OK && strcmp(o[i].status, "sent") == 0)
            n.followups++;
    }
    if (ret != BATCH_OK)
        goto out;
    /* Rows first: a delivery visible in Kafka must have its row. */
    if (status_write(c->sb, c->db, err, errlen) != PG_OK ||
        followup_resolve_held(c->db, &due, o, err, errlen) != PG_OK) {
        ret = BATCH_RETRY_PG;
        goto out;
    }
    tr = txn_commit(c->producer, c->consumer, NULL, err, errlen);
    in_txn = false;
    if (tr != TXN_OK) {
        ret = batch_from_txn(tr);
        goto out;
    }
    if (followup_done(c->db, &due, o, err, errlen) != PG_OK) {
        ret = BATCH_RETRY_PG;
        goto out;
    }
    counts->followups += n.followups;
    counts->cancelled += n.cancelled;
    counts->skipped += n.skipped;
    for (int k = 0; k < DELIVERY_CHANNEL_COUNT; k++)
        counts->deliveries[k] += n.deliveries[k];
out:
    if (in_txn) {
        char why[256];
        if (txn_abort(c->producer, why, sizeof why) != TXN_OK) {
            LOG_ERROR("followup", "abort failed: %s", why);
            ret = BATCH_FATAL;
        }
    }
    for (size_t i = 0; o != NULL && i < due.n; i++)
        json_decref(o[i].keys);
    free(o);
    fanout_list_reset(c->fl);
    status_batch_reset(c->sb);
    followup_due_list_free(&due);
    return ret;
}

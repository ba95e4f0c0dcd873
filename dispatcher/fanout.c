/*
 * fanout: see fanout.h.
 */
#include "fanout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "record.h"
#include "log.h"
#include "sms.h"
#include "vec.h"
#include "timeutil.h"
#include "validate.h"

_Static_assert((int)DECIDE_EMAIL == (int)DELIVERY_EMAIL && (int)DECIDE_SMS == (int)DELIVERY_SMS &&
                   (int)DECIDE_PUSH == (int)DELIVERY_PUSH &&
                   (int)DECIDE_INAPP == (int)DELIVERY_INAPP &&
                   (int)DECIDE_CHANNELS == DELIVERY_CHANNEL_COUNT,
               "decide and delivery number the channels alike");

#define SKIP_INVALID_ADDRESS "invalid_address"
#define SKIP_RENDER_FAILED   "render_failed"
#define SKIP_KEY_ADDRESS     "-" /* no real address is "-", so skip rows never collide */

decide_priority fanout_priority(event_priority p)
{
    switch (p) {
    case EVENT_PRIORITY_CRITICAL:
        return DECIDE_PRIORITY_CRITICAL;
    case EVENT_PRIORITY_HIGH:
        return DECIDE_PRIORITY_HIGH;
    case EVENT_PRIORITY_LOW:
        return DECIDE_PRIORITY_LOW;
    case EVENT_PRIORITY_NORMAL:
        break;
    }
    return DECIDE_PRIORITY_NORMAL;
}

void fanout_utf8_cut(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    /* Back off continuation bytes so the cut lands on a character boundary. */
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            *s = ' ';
}

static fanout_item *push_item(fanout_list *l)
{
    if (l->n == l->cap) {
        fanout_item *v = vec_grow(l->items, &l->cap, sizeof(*v));
        if (v == NULL)
            return NULL;
        l->items = v;
    }
    fanout_item *it = &l->items[l->n++];
    memset(it, 0, sizeof(*it));
    return it;
}

static int add_skip(const event *ev, delivery_channel ch, const char *reason, fanout_list *out)
{
    fanout_item *it = push_item(out);
    if (it == NULL)
        return -1;
    it->channel = ch;
    it->action = DECIDE_SKIP;
    it->skip_reason = reason;
    if (delivery_idempotency_key(ev->event_id, ch, SKIP_KEY_ADDRESS, ev->generation,
                                 it->idempotency_key, sizeof it->idempotency_key) != 0) {
        out->n--; /* only a malformed event id gets here; event_parse rules it out */
        return 0;
    }
    return 0;
}

/* The rendered content of one channel, shared by every address on it. */
typedef struct content {
    char *subject; /* email subject or push title */
    char *body;
    const char *fail; /* skip reason when the content is unusable */
} content;

static void content_free(content *c)
{
    free(c->subject);
    free(c->body);
}

static int render(const tplcache_channel *tc, delivery_channel ch, json_t *ctx,
                  const fanout_options *opt, content *c, char *err, size_t errlen)
{
    char why[256];
    memset(c, 0, sizeof(*c));
    template_escape esc = tc->html ? TEMPLATE_ESCAPE_HTML : TEMPLATE_ESCAPE_NONE;
    if (template_render(tc->body, ctx, esc, &c->body, NULL, NULL, why, sizeof why) != 0) {
        c->fail = SKIP_RENDER_FAILED;
        LOG_WARN(delivery_channel_name(ch), "render failed: %s", why);
        return 0;
    }
    if (tc->subject != NULL && ch != DELIVERY_SMS) {
        if (template_render(tc->subject, ctx, TEMPLATE_ESCAPE_NONE, &c->subject, NULL, NULL, why,
                            sizeof why) != 0) {
            c->fail = SKIP_RENDER_FAILED;
            return 0;
        }
        one_line(c->subject);
        fanout_utf8_cut(c->subject,
                        ch == DELIVERY_EMAIL ? DELIVERY_SUBJECT_MAX : DELIVERY_TITLE_MAX);
        if (c->subject[0] == '\0') {
            free(c->subject);
            c->subject = NULL;
        }
    }
    if (ch == DELIVERY_SMS) {
        char *cut = NULL;
        if (sms_truncate(c->body, opt->sms_max_segments, "…", &cut, NULL, err, errlen) != 0)
            return -1;
        free(c->body);
        c->body = cut;
    } else if (ch == DELIVERY_PUSH) {
        fanout_utf8_cut(c->body, DELIVERY_PUSH_BODY_MAX);
    } else if (ch == DELIVERY_INAPP) {
        fanout_utf8_cut(c->body, DELIVERY_INAPP_BODY_MAX);
    }
    if (c->body[0] == '\0')
        c->fail = SKIP_RENDER_FAILED;
    return 0;
}

static int add_delivery(const event *ev, const prefs_user *user, delivery_channel ch,
                        const decide_outcome *o, const char *address, const content *c,
                        const char *created_at, fanout_list *out)
{
    char why[256];
    bool titled = ch == DELIVERY_PUSH || ch == DELIVERY_INAPP;
    delivery d = {
        .user_id = user->user_id,
        .channel = ch,
        .attempt = 1,
        .address = (char *)address,
        .subject = ch == DELIVERY_EMAIL ? c->subject : NULL,
        .body = c->body,
        .title = titled ? c->subject : NULL,
        .data = titled ? ev->data : NULL,
        .priority = ev->priority,
        .category = (char *)o->category,
        .event_type = ev->type,
        .created_at = ev->created_at,
        .not_before = o->action == DECIDE_SCHEDULE ? o->not_before_ms : 0,
        .generation = ev->generation,
    };
    memcpy(d.event_id, ev->event_id, sizeof d.event_id);
    if (delivery_idempotency_key(ev->event_id, ch, address, ev->generation, d.idempotency_key,
                                 sizeof d.idempotency_key) != 0)
        return add_skip(ev, ch, SKIP_INVALID_ADDRESS, out);
    if (delivery_validate(&d, why, sizeof why) != 0) {
        LOG_WARN(ev->event_id, "%s delivery to user %s not made: %s", delivery_channel_name(ch),
                 user->user_id, why);
        return add_skip(ev, ch,
                        strncmp(why, "address", 7) == 0 ? SKIP_INVALID_ADDRESS : SKIP_RENDER_FAILED,
                        out);
    }
    fanout_item *it = push_item(out);
    if (it == NULL)
        return -1;
    it->channel = ch;
    it->action = o->action;
    it->not_before_ms = d.not_before;
    memcpy(it->idempotency_key, d.idempotency_key, sizeof it->idempotency_key);
    buf json;
    buf_init(&json, 0);
    if ((it->address = strdup(address)) == NULL || delivery_write(&json, &d, created_at) != 0) {
        buf_free(&json);
        free(it->address);
        out->n--;
        return -1;
    }
    it->value = buf_steal(&json, &it->vlen);
    return 0;
}

/*
 * The "event" object of the template context: what template_context_new()
 * keeps of event_to_json() (every member but data, plus "id"), built at once
 * instead of built and then copied member by member.
 */
static json_t *context_event(const event *ev, const char *created)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    if (record_put_string(o, "event_id", ev->event_id) != 0 ||
        record_put_string(o, "type", ev->type) != 0 ||
        record_put_string(o, "user_id", ev->user_id) != 0 ||
        record_put_string(o, "topic", ev->topic) != 0 ||
        record_put_string(o, "priority", event_priority_name(ev->priority)) != 0 ||
        record_put_string(o, "category", ev->category) != 0 ||
        record_put_string(o, "created_at", created) != 0 ||
        record_put_string(o, "idempotency_key", ev->idempotency_key) != 0 ||
        record_put_string(o, "broadcast_id",
                          ev->broadcast_id[0] != '\0' ? ev->broadcast_id : NULL) != 0 ||
        json_object_set_new_nocheck(o, "generation", json_integer(ev->generation)) != 0 ||
        record_put_string(o, "id", ev->event_id) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/*
 * {"event": evjson, "user": ujson, "data": data}, as template_context_new()
 * makes it of event_to_json() (which gives an event without data "{}");
 * a NULL evjson or ujson is left out.
 */
static json_t *context_new(json_t *evjson, json_t *ujson, json_t *data)
{
    json_t *ctx = json_object();
    if (ctx == NULL || (evjson != NULL && json_object_set_nocheck(ctx, "event", evjson) != 0) ||
        (json_is_object(ujson) && json_object_set_nocheck(ctx, "user", ujson) != 0) ||
        (data == NULL ? json_object_set_new_nocheck(ctx, "data", json_object()) != 0
                      : json_is_object(data) && json_object_set_nocheck(ctx, "data", data) != 0)) {
        json_decref(ctx);
        return NULL;
    }
    return ctx;
}

int fanout_event(const event *ev, const prefs_user *user, const tplcache_type *tpl,
                 const fanout_options *opt, int64_t now_ms, fanout_list *out, char *err,
                 size_t errlen)
{
    json_t *evjson = NULL, *ujson = NULL, *ctx = NULL;
    int rc = -1;
    bool known = user != NULL && user->known;
    char created[TIMEUTIL_RFC3339_SIZE]; /* the same in every record of the event */
    timeutil_format_rfc3339(ev->created_at, created, sizeof created);

    decide_event de = {.priority = fanout_priority(ev->priority), .category = ev->category};
    decide_templates dt;
    memset(&dt, 0, sizeof dt);
    for (int i = 0; i < DECIDE_CHANNELS && tpl != NULL; i++) {
        dt.exists[i] = tpl->ch[i].exists;
        dt.category[i] = tpl->ch[i].category;
    }
    decide_user du = {0};
    decide_prefs dp = {0};
    if (known) {
        du.user_id = user->user_id;
        du.email = user->email;
        du.phone = user->phone;
        du.push_tokens = (const char *const *)user->push_tokens;
        du.npush_tokens = user->npush_tokens;
        du.zone = user->zone;
        dp.channels = user->channels;
        dp.categories = user->categories;
        dp.quiet = user->quiet;
    }
    decide_result res;
    decide_for_user(&de, known ? &du : NULL, known ? &dp : NULL, &dt, now_ms, &res);

    for (int i = 0; i < DECIDE_CHANNELS; i++) {
        delivery_channel ch = (delivery_channel)i;
        const decide_outcome *o = &res.channel[i];
        if (o->action == DECIDE_SKIP) {
            if (o->reason == DECIDE_REASON_NO_TEMPLATE ||
                (o->reason == DECIDE_REASON_UNKNOWN_USER && !dt.exists[i]))
                continue;
            if (add_skip(ev, ch, decide_reason_name(o->reason), out) != 0)
                goto oom;
            continue;
        }
        if (ctx == NULL) {
            /* Only what some template of the type reads: a bare root is not a placeholder. */
            if ((tpl->uses_event && (evjson = context_event(ev, created)) == NULL) ||
                (tpl->uses_user && (ujson = prefs_user_json(user)) == NULL) ||
                (ctx = context_new(evjson, ujson, ev->data)) == NULL)
                goto oom;
        }
        content c;
        if (render(&tpl->ch[i], ch, ctx, opt, &c, err, errlen) != 0) {
            content_free(&c);
            goto out;
        }
        int r = 0;
        if (c.fail != NULL)
            r = add_skip(ev, ch, c.fail, out);
        for (size_t a = 0; c.fail == NULL && a < o->naddresses && r == 0; a++)
            r = add_delivery(ev, user, ch, o, o->addresses[a], &c, created, out);
        content_free(&c);
        if (r != 0)
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    error_set(err, errlen, "fanout: out of memory");
out:
    json_decref(ctx);
    json_decref(ujson);
    json_decref(evjson);
    return rc;
}

void fanout_list_reset(fanout_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].address);
        free(l->items[i].value);
    }
    l->n = 0;
}

void fanout_list_free(fanout_list *l)
{
    fanout_list_reset(l);
    free(l->items);
    l->items = NULL;
    l->cap = 0;
}

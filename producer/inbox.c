/*
 * inbox: parsing of inbox requests and the cursor codec.
 */
#include "inbox.h"

#include "timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[] = {"all", "unread", "read", "unseen", "seen", NULL};
static const char *const archived_names[] = {"exclude", "include", "only", NULL};
static const char *const action_names[] = {"seen",       "read",       "unread", "archived",
                                           "unarchived", "interacted", NULL};

/* The index of s in names, or -1. */
static int choice(const char *s, const char *const *names)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* One filter value by name (status, archived, category, since, until). */
static int set_filter(inbox_filter *f, const char *name, const char *value, inbox_error *e)
{
    char why[160];
    int i;
    if (strcmp(name, "status") == 0) {
        if ((i = choice(value, status_names)) < 0)
            return bodies_fail(e, name, "status must be unread, read, unseen, seen or all");
        f->status = (inbox_status)i;
    } else if (strcmp(name, "archived") == 0) {
        if ((i = choice(value, archived_names)) < 0)
            return bodies_fail(e, name, "archived must be exclude, include or only");
        f->archived = (inbox_archived)i;
    } else if (strcmp(name, "category") == 0) {
        if (validate_name(value, strlen(value), VALIDATE_CATEGORY_MAX, why, sizeof why) != 0)
            return bodies_fail(e, name, "category %s", why);
        snprintf(f->category, sizeof f->category, "%s", value);
        f->has_category = true;
    } else {
        bool since = strcmp(name, "since") == 0;
        int64_t ms = 0;
        if (timeutil_parse_rfc3339(value, &ms, why, sizeof why) != 0)
            return bodies_fail(e, name, "%s must be an RFC 3339 time: %s", name, why);
        if (since) {
            f->since_ms = ms;
            f->has_since = true;
        } else {
            f->until_ms = ms;
            f->has_until = true;
        }
    }
    return 0;
}

static const char *const filter_params[] = {"status", "archived", "category",
                                            "since",  "until",    NULL};

/* page_size: 1..INBOX_PAGE_MAX in plain digits. */
static int parse_page_size(const char *s, int *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 3 || strspn(s, "0123456789") != n)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    if (v < 1 || v > INBOX_PAGE_MAX)
        return -1;
    *out = v;
    return 0;
}

int inbox_parse_query(inbox_param_fn param, void *ctx, inbox_query *q, inbox_error *e)
{
    memset(q, 0, sizeof *q);
    q->page_size = INBOX_PAGE_DEFAULT;
    for (size_t i = 0; filter_params[i] != NULL; i++) {
        const char *v = param(ctx, filter_params[i]);
        if (v != NULL && set_filter(&q->filter, filter_params[i], v, e) != 0)
            return -1;
    }
    const char *ps = param(ctx, "page_size");
    if (ps != NULL && parse_page_size(ps, &q->page_size) != 0)
        return bodies_fail(e, "page_size", "page_size must be an integer from 1 to %d",
                           INBOX_PAGE_MAX);
    const char *after = param(ctx, "after"), *before = param(ctx, "before");
    if (after != NULL && before != NULL)
        return bodies_fail(e, "before", "after and before cannot be given together");
    if (after != NULL || before != NULL) {
        const char *name = after != NULL ? "after" : "before";
        if (inbox_cursor_decode(after != NULL ? after : before, &q->cursor) != 0)
            return bodies_fail(e, name, "%s is not a cursor this API returned", name);
        q->direction = after != NULL ? INBOX_AFTER : INBOX_BEFORE;
    }
    return 0;
}

static int parse_mark_filter(const json_t *filter, inbox_filter *f, inbox_error *e)
{
    const char *key;
    json_t *v;
    char field[40];
    if (!json_is_object(filter))
        return bodies_fail(e, "filter", "filter must be an object");
    json_object_foreach((json_t *)filter, key, v)
    {
        snprintf(field, sizeof field, "filter.%s", key);
        if (choice(key, filter_params) < 0)
            return bodies_fail(e, field,
                               "unknown field: filter takes status, archived, category, "
                               "since and until");
        if (!json_is_string(v))
            return bodies_fail(e, field, "%s must be a string", field);
        if (set_filter(f, key, json_string_value(v), e) != 0) {
            snprintf(e->field, sizeof e->field, "%s", field);
            return -1;
        }
    }
    return 0;
}

static int parse_mark_ids(const json_t *ids, inbox_mark *m, inbox_error *e)
{
    size_t n = json_array_size(ids);
    if (!json_is_array(ids) || n == 0 || n > INBOX_MARK_IDS_MAX)
        return bodies_fail(e, "ids", "ids must be an array of 1 to %d message ids",
                           INBOX_MARK_IDS_MAX);
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id == NULL || !id_is_uuid(id))
            return bodies_fail(e, "ids", "ids[%zu] must be a lowercase UUID", i);
        snprintf(m->ids[i], sizeof m->ids[i], "%s", id);
    }
    m->nids = n;
    return 0;
}

int inbox_parse_mark(const json_t *body, inbox_mark *m, inbox_error *e)
{
    const char *key;
    json_t *v;
    memset(m, 0, sizeof *m);
    json_object_foreach((json_t *)body, key, v)
    {
        if (strcmp(key, "action") != 0 && strcmp(key, "ids") != 0 && strcmp(key, "all") != 0 &&
            strcmp(key, "filter") != 0)
            return bodies_fail(e, key, "unknown field: a mark takes action, ids, all and filter");
    }
    const char *action = json_string_value(json_object_get(body, "action"));
    int a = action != NULL ? choice(action, action_names) : -1;
    if (a < 0)
        return bodies_fail(e, "action",
                           "action must be seen, read, unread, archived, unarchived or interacted");
    m->action = (inbox_action)a;
    json_t *ids = json_object_get(body, "ids"), *all = json_object_get(body, "all"),
           *filter = json_object_get(body, "filter");
    if (all != NULL && !json_is_true(all))
        return bodies_fail(e, "all", "all must be true when given");
    if ((ids != NULL) == (all != NULL))
        return bodies_fail(e, "ids", "give either ids or \"all\": true");
    if (ids != NULL) {
        if (filter != NULL)
            return bodies_fail(e, "filter", "filter goes with \"all\": true, not with ids");
        return parse_mark_ids(ids, m, e);
    }
    m->all = true;
    /* Unarchiving "all" means the archived ones unless the filter says otherwise. */
    if (m->action == INBOX_MARK_UNARCHIVED)
        m->filter.archived = INBOX_ARCHIVED_ONLY;
    return filter != NULL ? parse_mark_filter(filter, &m->filter, e) : 0;
}

/* The layout of INBOX_TS_LEN: digits everywhere but the separators. */
static bool ts_well_formed(const char *s, size_t len)
{
    static const char layout[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (len != INBOX_TS_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (layout[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != layout[i])
            return false;
    }
    return true;
}

int inbox_cursor_encode(const inbox_cursor *c, char *out, size_t outlen)
{
    char plain[INBOX_TS_LEN + 1 + ID_UUID_LEN + 1];
    if (!ts_well_formed(c->created_at, strlen(c->created_at)) || !id_is_uuid(c->message_id))
        return -1;
    int n = snprintf(plain, sizeof plain, "%s|%s", c->created_at, c->message_id);
    return id_base64url_encode(plain, (size_t)n, out, outlen);
}

int inbox_cursor_decode(const char *text, inbox_cursor *c)
{
    char plain[INBOX_TS_LEN + 1 + ID_UUID_LEN + 1];
    size_t n = 0;
    if (text == NULL || id_base64url_decode(text, strlen(text), plain, sizeof plain - 1, &n) != 0 ||
        n != INBOX_TS_LEN + 1 + ID_UUID_LEN)
        return -1;
    plain[n] = '\0';
    if (plain[INBOX_TS_LEN] != '|' || !ts_well_formed(plain, INBOX_TS_LEN) ||
        !id_is_uuid(plain + INBOX_TS_LEN + 1))
        return -1;
    memcpy(c->created_at, plain, INBOX_TS_LEN);
    c->created_at[INBOX_TS_LEN] = '\0';
    memcpy(c->message_id, plain + INBOX_TS_LEN + 1, ID_UUID_SIZE);
    return 0;
}

const char *inbox_status_name(inbox_status s)
{
    return status_names[s];
}

const char *inbox_archived_name(inbox_archived a)
{
    return archived_names[a];
}

const char *inbox_action_name(inbox_action a)
{
    return action_names[a];
}

/*
 * tplcache: the compiled templates of each event type, cached in front of
 * PostgreSQL like the users (see prefs_cache.h): one query per batch for
 * every event type it misses, a TTL, negative entries for types without any
 * template, and invalidation by the herald_template_changed notification
 * (payload "<event_type>/<channel>").
 *
 * HTML: an email body template is treated as HTML, and the values inserted
 * into it escaped, when its source looks like markup: after leading
 * whitespace it starts with '<' ("<!DOCTYPE html>", "<p>") or it contains a
 * closing tag "</".  Plain-text templates get values verbatim: escaping
 * "Tom & Jerry" into "Tom &amp; Jerry" in a text mail would be a visible bug.
 * Subjects, SMS, push and in-app are always plain text.
 *
 * Entries are reference counted like prefs_user.  Not thread-safe.
 */
#ifndef HERALD_DISPATCHER_TPLCACHE_H
#define HERALD_DISPATCHER_TPLCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery.h"
#include "pg.h"
#include "template.h"

typedef struct tplcache tplcache;

typedef struct tplcache_channel {
    bool exists;
    template *subject; /* email subject / push or inapp title; NULL when none */
    template *body;
    char *category; /* NULL when none */
    bool html;      /* email body is HTML: escape inserted values */
} tplcache_channel;

typedef struct tplcache_type {
    int refs;
    char *event_type;
    tplcache_channel ch[DELIVERY_CHANNEL_COUNT];
    bool uses_user, uses_event; /* some template of the type reads {{user.*}} / {{event.*}} */
} tplcache_type;

tplcache *tplcache_new(size_t max_entries, int64_t ttl_ms) __attribute__((warn_unused_result));
void tplcache_free(tplcache *c);

/* The cached templates of event_type, with a reference; NULL on a miss. */
tplcache_type *tplcache_get(tplcache *c, const char *event_type, int64_t now_ms);
void tplcache_type_unref(tplcache_type *t);

/* The templates of one event type as read from the table. */
typedef struct tplcache_row {
    const char *channel; /* "email", "sms", "push", "inapp" */
    const char *subject; /* NULL when none */
    const char *body;
    const char *category;
} tplcache_row;

/*
 * Compiles the rows and stores them under event_type (no I/O); n = 0 stores a
 * negative entry.  A template that does not compile is logged and left out
 * (the gateway compiles on PUT, so only a hand-written row can be broken).
 */
int tplcache_put(tplcache *c, const char *event_type, const tplcache_row *rows, size_t n,
                 int64_t now_ms, char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Reads the templates of the n distinct event types with one query and
 * stores them; out (may be NULL) receives each type's entry with a reference
 * for the caller (tplcache_type_unref), as prefs_cache_load().
 */
pg_status tplcache_load(tplcache *c, pg_conn *db, const char *const *types, size_t n,
                        int64_t now_ms, tplcache_type **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Drops a type, given a notification payload "<event_type>/<channel>" or a bare type. */
void tplcache_invalidate(tplcache *c, const char *payload);
void tplcache_clear(tplcache *c);

/* The HTML rule above. */
bool tplcache_looks_html(const char *src);

#endif

/*
 * store: the gateway's SQL.
 *
 * Each write is one statement or one short transaction, idempotent as a
 * whole, so that PG_RETRY (the connection broke and came back) is handled by
 * running it again.  Times are returned as RFC 3339 UTC with milliseconds,
 * the way every Herald timestamp reads.
 */
#include "bodies.h"
#include "error.h"
#include "log.h"
#include "store.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS(col) STORE_SQL_RFC3339(col)

/* One suppression list entry as the API shows it. */
#define SUPPRESSION_JSON                                                                           \
    "json_build_object('channel', channel, 'address', address, 'reason', reason, 'detail', "       \
    "detail, 'idempotency_key', idempotency_key, 'event_id', event_id, 'created_at', " TS(         \
        "created_at") ")"
/* The times of a delivery_status row ds. */
#define DS_UPDATED_AT TS("ds.updated_at")
#define DS_NOT_BEFORE TS("ds.not_before")
/* One delivery_history row h as the API shows it; attempt is the worker's
 * attempt number (migrations/022), null for receipts and operators. */
#define HISTORY_AT TS("h.at")
#define HISTORY_JSON                                                                               \
    "json_build_object('status', h.status, 'at', " HISTORY_AT ", 'reason', h.reason, 'source', "   \
    "h.source, 'provider', h.provider, 'attempt', h.attempt)"

/*
 * An event e as the search lists it (joined to EVENT_COUNTS), and its page
 * position (microseconds since the epoch) second.
 */
#define EVENT_CREATED_AT TS("e.created_at")
#define EVENT_SUMMARY                                                                              \
    "json_build_object('event_id', e.event_id, 'type', e.type, 'user_id', e.user_id, "             \
    "'topic', e.topic, 'created_at', " EVENT_CREATED_AT ", 'deliveries', coalesce(s.n, 0), "       \
    "'status_summary', coalesce(s.by_status, '{}'::json)), "                                       \
    "(extract(epoch FROM e.created_at) * 1000000)::bigint FROM events e " EVENT_COUNTS
/* Its deliveries (a broadcast's: its subscribers' events'), planned ones
 * included, counted by status. */
#define EVENT_COUNTS                                                                               \
    "LEFT JOIN LATERAL (SELECT sum(c.n)::bigint AS n, json_object_agg(c.status, c.n) AS "          \
    "by_status FROM (SELECT ds.status, count(*) AS n FROM delivery_status ds "                     \
    "WHERE ds.event_id = e.event_id OR ds.event_id = ANY (ARRAY(SELECT b.event_id FROM events b "  \
    "WHERE b.broadcast_id = e.event_id)) GROUP BY ds.status) c) s ON true "
#define EVENT_PAGE                                                                                 \
    "($2::bigint IS NULL OR (e.created_at, e.event_id) < "                                         \
    "(timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid)) "                    \
    "ORDER BY e.created_at DESC, e.event_id DESC LIMIT $4::int"

/*
 * The parts of an event's timeline, over the event ids in ids.a (the event
 * and a broadcast's per-subscriber events): columns at, r (the order at one
 * instant: the event, its deliveries, what happened to them, the dead
 * letter), q (then the order of rows in their table), k (then by channel
 * and user) and j (the entry, its nulls stripped later).
 */
#define TIMELINE_IDS "ANY ((SELECT a FROM ids)::uuid[])"
#define TIMELINE_PUBLISHED                                                                         \
    "SELECT e.created_at AS at, 0 AS r, 0::bigint AS q, '' AS k, json_build_object('kind', "       \
    "'published', 'user_id', e.user_id, 'topic', e.topic, 'detail', e.type || ' (' || "            \
    "e.priority || coalesce(', ' || e.category, '') || ')') AS j "                                 \
    "FROM events e WHERE e.event_id = $1::uuid"
/* What the dispatcher planned: a delivery, or why it made none on a channel. */
#define TIMELINE_SKIPPED    "ds.status IN ('skipped', 'throttled', 'digested')"
#define TIMELINE_NOT_BEFORE TS("ds.not_before")
#define TIMELINE_DELIVERIES                                                                        \
    "SELECT coalesce(e.dispatched_at, ds.created_at), 1, 0, ds.channel || ' ' || ds.user_id, "     \
    "json_build_object('kind', CASE WHEN " TIMELINE_SKIPPED " THEN 'skipped' ELSE 'dispatched' "   \
    "END, 'channel', ds.channel, 'status', CASE WHEN " TIMELINE_SKIPPED " OR ds.status = "         \
    "'scheduled' THEN ds.status END, 'reason', ds.skip_reason, 'user_id', ds.user_id, "            \
    "'address', ds.address, 'idempotency_key', ds.idempotency_key, 'not_before', "                 \
    "CASE WHEN ds.status = 'scheduled' THEN " TIMELINE_NOT_BEFORE " END) "                         \
    "FROM delivery_status ds LEFT JOIN events e ON e.event_id = ds.event_id "                      \
    "WHERE ds.event_id = " TIMELINE_IDS
/* Each attempt the worker recorded (a suppressed address: a skip), each
 * status a receipt applied and each an operator set. */
#define TIMELINE_HISTORY                                                                           \
    "SELECT h.at, 2, h.id, '', json_build_object('kind', CASE WHEN h.source = 'receipt' THEN "     \
    "'receipt' WHEN h.source = 'operator' THEN 'status' WHEN h.status = 'suppressed' THEN "        \
    "'skipped' ELSE 'attempt' END, 'channel', h.channel, 'status', h.status, 'reason', "           \
    "h.reason, 'attempt', h.attempt, 'provider', h.provider, 'user_id', h.user_id, "               \
    "'idempotency_key', h.idempotency_key) "                                                       \
    "FROM delivery_history h WHERE h.event_id = " TIMELINE_IDS
/* A delivery the worker gave up on went to the dead letter topic. */
#define TIMELINE_DLQ                                                                               \
    "SELECT h.at, 3, h.id, '', json_build_object('kind', 'dlq', 'channel', h.channel, "            \
    "'status', h.status, 'reason', h.reason, 'user_id', h.user_id, 'idempotency_key', "            \
    "h.idempotency_key, 'detail', 'dead-lettered') "                                               \
    "FROM delivery_history h WHERE h.event_id = " TIMELINE_IDS                                     \
    " AND h.source = 'worker' AND h.status = 'failed'"
/* The digests that took the event, and when each was sent. */
#define TIMELINE_DIGEST_WHO                                                                        \
    "'kind', 'digest', 'channel', de.channel, 'user_id', w.user_id, 'digest_id', de.window_id"
#define TIMELINE_DIGEST_FROM                                                                       \
    "FROM digest_events de JOIN digest_windows w ON w.window_id = de.window_id "                   \
    "WHERE de.event_id = " TIMELINE_IDS
#define TIMELINE_DIGESTS                                                                           \
    "SELECT de.added_at, 2, de.seq, de.channel, json_build_object(" TIMELINE_DIGEST_WHO            \
    ", 'status', CASE w.status WHEN 'open' THEN 'waiting' ELSE w.status END, "                     \
    "'detail', 'rule ' || w.rule_name || ', ' || de.role) " TIMELINE_DIGEST_FROM                   \
    " UNION ALL SELECT w.sent_at, 2, de.seq, de.channel, json_build_object(" TIMELINE_DIGEST_WHO   \
    ", 'status', 'sent', 'detail', 'rule ' || w.rule_name || ', ' || w.members || ' "              \
    "events') " TIMELINE_DIGEST_FROM " AND w.sent_at IS NOT NULL"
/* The follow-ups planned for it, and what became of each. */
#define TIMELINE_DUE_AT TS("f.due_at")
#define TIMELINE_FOLLOWUPS                                                                         \
    "SELECT f.created_at, 2, 0, f.channel || ' ' || f.rule_name, json_build_object('kind', "       \
    "'followup', 'channel', f.channel, 'status', 'pending', 'user_id', f.user_id, 'detail', "      \
    "'rule ' || f.rule_name || ', due at ' || " TIMELINE_DUE_AT ") "                               \
    "FROM followups f WHERE f.event_id = " TIMELINE_IDS " UNION ALL "                              \
    "SELECT f.decided_at, 2, 0, f.channel || ' ' || f.rule_name, json_build_object('kind', "       \
    "'followup', 'channel', f.channel, 'status', f.status, 'reason', f.reason, 'user_id', "        \
    "f.user_id, 'detail', 'rule ' || f.rule_name) "                                                \
    "FROM followups f WHERE f.event_id = " TIMELINE_IDS " AND f.decided_at IS NOT NULL"
#define TIMELINE_AT TS("t.at")
/* To the microsecond, as PostgreSQL keeps it: the inbox cursor's position. */
#define TS_US(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

/*
 * The inbox filters (inbox.h) on the messages m: $2 status, $3 archived,
 * $4 category, $5 since and $6 until, each NULL or a name inbox.c checked.
 */
#define INBOX_FILTER                                                                               \
    "($2 = 'all' OR ($2 = 'unread' AND m.read_at IS NULL) "                                        \
    "OR ($2 = 'read' AND m.read_at IS NOT NULL) OR ($2 = 'unseen' AND m.seen_at IS NULL) "         \
    "OR ($2 = 'seen' AND m.seen_at IS NOT NULL)) "                                                 \
    "AND ($3 = 'include' OR ($3 = 'exclude' AND m.archived_at IS NULL) "                           \
    "OR ($3 = 'only' AND m.archived_at IS NOT NULL)) "                                             \
    "AND ($4::text IS NULL OR m.category = $4) "                                                   \
    "AND ($5::timestamptz IS NULL OR m.created_at >= $5::timestamptz) "                            \
    "AND ($6::timestamptz IS NULL OR m.created_at < $6::timestamptz) "

/* The columns of a message in the answer, and its cursor position last. */
#define INBOX_TIMES  TS("m.created_at") ", " TS("m.seen_at") ", " TS("m.read_at") ", "
#define INBOX_TIMES2 TS("m.archived_at") ", " TS("m.interacted_at") ", " TS_US("m.created_at")
#define INBOX_COLUMNS                                                                              \
    "m.message_id, m.event_id, m.event_type, m.category, m.title, m.body, m.data, " INBOX_TIMES    \
        INBOX_TIMES2

/* Unread and unseen count the messages that are not archived (docs/inapp.md);
 * m is a message as it is, o as it was before an update. */
#define UNREAD_M "(m.archived_at IS NULL AND m.read_at IS NULL)"
#define UNSEEN_M "(m.archived_at IS NULL AND m.seen_at IS NULL)"
#define UNREAD_O "(o.archived_at IS NULL AND o.read_at IS NULL)"
#define UNSEEN_O "(o.archived_at IS NULL AND o.seen_at IS NULL)"

/*
 * A mark ($9 the action) of the ids $7, or of what the filter takes,
 * moving only the rows it changes, each stamped with $8 = seq + 1; the
 * counts move by the difference each row made (o is the row before the
 * update).  seq and the counts change only when a row did.
 */
#define INBOX_MARK_SQL                                                                             \
    "WITH upd AS (UPDATE inbox_messages m SET "                                                    \
    "seen_at = CASE WHEN $9 IN ('seen', 'read', 'interacted') "                                    \
    "THEN coalesce(m.seen_at, now()) ELSE m.seen_at END, "                                         \
    "read_at = CASE WHEN $9 IN ('read', 'interacted') THEN coalesce(m.read_at, now()) "            \
    "WHEN $9 = 'unread' THEN NULL ELSE m.read_at END, "                                            \
    "archived_at = CASE WHEN $9 = 'archived' THEN coalesce(m.archived_at, now()) "                 \
    "WHEN $9 = 'unarchived' THEN NULL ELSE m.archived_at END, "                                    \
    "interacted_at = CASE WHEN $9 = 'interacted' THEN coalesce(m.interacted_at, now()) "           \
    "ELSE m.interacted_at END, seq = $8 "                                                          \
    "FROM inbox_messages o WHERE o.message_id = m.message_id AND m.user_id = $1 "                  \
    "AND ($7::uuid[] IS NULL OR m.message_id = ANY ($7::uuid[])) AND " INBOX_FILTER                \
    "AND CASE $9 WHEN 'seen' THEN m.seen_at IS NULL "                                              \
    "WHEN 'read' THEN m.read_at IS NULL OR m.seen_at IS NULL "                                     \
    "WHEN 'unread' THEN m.read_at IS NOT NULL "                                                    \
    "WHEN 'archived' THEN m.archived_at IS NULL "                                                  \
    "WHEN 'unarchived' THEN m.archived_at IS NOT NULL "                                            \
    "WHEN 'interacted' THEN m.interacted_at IS NULL OR m.read_at IS NULL OR m.seen_at IS NULL "    \
    "ELSE false END "                                                                              \
    "RETURNING m.message_id, " UNREAD_M "::int - " UNREAD_O "::int AS du, " UNSEEN_M               \
    "::int - " UNSEEN_O "::int AS ds), "                                                           \
    "d AS (SELECT count(*) AS n, coalesce(sum(du), 0) AS du, coalesce(sum(ds), 0) AS ds "          \
    "FROM upd), "                                                                                  \
    "st AS (UPDATE inbox_state s SET seq = $8, unread = s.unread + d.du, "                         \
    "unseen = s.unseen + d.ds, updated_at = now() FROM d WHERE s.user_id = $1 AND d.n > 0 "        \
    "RETURNING s.seq, s.unread, s.unseen) "                                                        \
    "SELECT d.n, coalesce(st.seq, cur.seq), coalesce(st.unread, cur.unread), "                     \
    "coalesce(st.unseen, cur.unseen), (SELECT coalesce(json_agg(x.message_id), '[]') "             \
    "FROM (SELECT message_id FROM upd LIMIT 201) x) "                                              \
    "FROM d CROSS JOIN (SELECT seq, unread, unseen FROM inbox_state WHERE user_id = $1) cur "      \
    "LEFT JOIN st ON true"

/* A digest rule's columns as the API names them (digest_json reads them in order). */
#define DIGEST_RULE_COLUMNS                                                                        \
    "name, event_type, category, to_json(channels), window_kind, window_ms, max_window_ms, "       \
    "max_events, send_first, to_char(schedule_at, 'HH24:MI'), group_by, template, "                \
    "events_shown, " TS("created_at") ", " TS("updated_at")
#define THROTTLE_RULE_COLUMNS                                                                      \
    "name, category, channel, max_count, window_ms, action, " TS("created_at") ", " TS("updated_"  \
                                                                                       "at")

#define FOLLOWUP_RULE_COLUMNS                                                                      \
    "name, event_type, category, after_channel, delay_ms, channel, template, " TS(                 \
        "created_at") ", " TS("updated_at")

typedef struct stmt {
    const char *name;
    const char *sql;
    int nparams;
} stmt;

static const stmt statements[] = {
    {"gw_user_upsert",
     "INSERT INTO users (user_id, email, phone, name, timezone, locale) "
     "VALUES ($1, $2, $3, $4, $5, $6) "
     "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, phone = EXCLUDED.phone, "
     "name = EXCLUDED.name, timezone = EXCLUDED.timezone, locale = EXCLUDED.locale, "
     "updated_at = now()",
     6},
    /* Tokens are replaced as a set: keep the ones still listed (their
     * created_at says how old the device is), drop the rest, add the new. */
    {"gw_tokens_prune",
     "DELETE FROM push_tokens WHERE user_id = $1 "
     "AND NOT (token = ANY (ARRAY(SELECT jsonb_array_elements_text($2::jsonb))))",
     2},
    {"gw_tokens_add",
     "INSERT INTO push_tokens (user_id, token) "
     "SELECT $1, t FROM jsonb_array_elements_text($2::jsonb) AS t ON CONFLICT DO NOTHING",
     2},
    {"gw_user_get",
     "SELECT u.user_id, u.email, u.phone, u.name, u.timezone, u.locale, " TS(
         "u.created_at") ", " TS("u.updated_at") ", "
                                                 "COALESCE((SELECT json_agg(t.token ORDER BY "
                                                 "t.created_at, t.token) FROM push_tokens t "
                                                 "WHERE t.user_id = u.user_id), '[]'::json) "
                                                 "FROM users u WHERE u.user_id = $1",
     1},
    {"gw_user_delete", "DELETE FROM users WHERE user_id = $1", 1},
    {"gw_prefs_put",
     "INSERT INTO preferences (user_id, channels, categories, quiet_start, quiet_end) "
     "VALUES ($1, $2::jsonb, $3::jsonb, $4::time, $5::time) "
     "ON CONFLICT (user_id) DO UPDATE SET channels = EXCLUDED.channels, "
     "categories = EXCLUDED.categories, quiet_start = EXCLUDED.quiet_start, "
     "quiet_end = EXCLUDED.quiet_end, updated_at = now()",
     5},
    {"gw_prefs_get",
     "SELECT u.user_id, p.channels, p.categories, to_char(p.quiet_start, 'HH24:MI'), "
     "to_char(p.quiet_end, 'HH24:MI'), " TS(
         "p.updated_at") ", p.user_id IS NOT NULL "
                         "FROM users u LEFT JOIN preferences p ON p.user_id = u.user_id WHERE "
                         "u.user_id = $1",
     1},
    /* One-click unsubscribe: categories.$2.$3 becomes false, merged into
     * what is there (other categories and channels stay), written only when
     * it was not false already, so a repeat changes nothing.  The first
     * column says whether the user exists, the second whether a row changed. */
    {"gw_prefs_unsubscribe",
     "WITH up AS (INSERT INTO preferences (user_id, categories) "
     "SELECT user_id, jsonb_build_object($2::text, jsonb_build_object($3::text, false)) "
     "FROM users WHERE user_id = $1 "
     "ON CONFLICT (user_id) DO UPDATE SET categories = preferences.categories || "
     "jsonb_build_object($2::text, CASE WHEN jsonb_typeof(preferences.categories -> $2::text) = "
     "'object' THEN preferences.categories -> $2::text ELSE '{}'::jsonb END || "
     "jsonb_build_object($3::text, false)), updated_at = now() "
     "WHERE preferences.categories -> $2::text -> $3::text IS DISTINCT FROM 'false'::jsonb "
     "RETURNING 1) "
     "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1), (SELECT count(*) FROM up)",
     3},
    /* One statement: the topic exists exactly when a subscription needs it,
     * and a missing user (foreign key) leaves no topic behind. */
    {"gw_subscribe",
     "WITH t AS (INSERT INTO topics (name) VALUES ($1) ON CONFLICT DO NOTHING) "
     "INSERT INTO topic_subscriptions (topic, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
     2},
    {"gw_unsubscribe",
     "WITH d AS (DELETE FROM topic_subscriptions WHERE topic = $1 AND user_id = $2 RETURNING 1) "
     "SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $2), (SELECT count(*) FROM d)",
     2},
    {"gw_template_put",
     "INSERT INTO templates (event_type, channel, subject, body, category) "
     "VALUES ($1, $2, $3, $4, $5) "
     "ON CONFLICT (event_type, channel) DO UPDATE SET subject = EXCLUDED.subject, "
     "body = EXCLUDED.body, category = EXCLUDED.category, updated_at = now() "
     "RETURNING event_type, channel, subject, body, category, " TS("updated_at"),
     5},
    {"gw_template_get",
     "SELECT event_type, channel, subject, body, category, " TS(
         "updated_at") " FROM templates WHERE event_type = $1 AND channel = $2",
     2},
    {"gw_template_delete", "DELETE FROM templates WHERE event_type = $1 AND channel = $2", 2},
    {"gw_digest_rule_put",
     "INSERT INTO digest_rules (name, event_type, category, channels, window_kind, window_ms, "
     "max_window_ms, max_events, send_first, schedule_at, group_by, template, events_shown) "
     "VALUES ($1, $2, $3, ARRAY(SELECT jsonb_array_elements_text($4::jsonb)), $5, $6::bigint, "
     "$7::bigint, $8::integer, $9::boolean, $10::time, $11, $12, $13::integer) "
     "ON CONFLICT (name) DO UPDATE SET event_type = EXCLUDED.event_type, "
     "category = EXCLUDED.category, channels = EXCLUDED.channels, "
     "window_kind = EXCLUDED.window_kind, window_ms = EXCLUDED.window_ms, "
     "max_window_ms = EXCLUDED.max_window_ms, max_events = EXCLUDED.max_events, "
     "send_first = EXCLUDED.send_first, schedule_at = EXCLUDED.schedule_at, "
     "group_by = EXCLUDED.group_by, template = EXCLUDED.template, "
     "events_shown = EXCLUDED.events_shown, updated_at = now() "
     "RETURNING " DIGEST_RULE_COLUMNS,
     13},
    /* The rule that already has this (event_type, category), for the 409. */
    {"gw_digest_rule_rival",
     "SELECT name FROM digest_rules WHERE event_type = $2 "
     "AND coalesce(category, '') = coalesce($3, '') AND name <> $1",
     3},
    {"gw_digest_rule_get", "SELECT " DIGEST_RULE_COLUMNS " FROM digest_rules WHERE name = $1", 1},
    {"gw_digest_rule_list", "SELECT " DIGEST_RULE_COLUMNS " FROM digest_rules ORDER BY name", 0},
    {"gw_digest_rule_delete", "DELETE FROM digest_rules WHERE name = $1", 1},
    {"gw_throttle_rule_put",
     "INSERT INTO throttle_rules (name, category, channel, max_count, window_ms, action) "
     "VALUES ($1, $2, $3, $4::integer, $5::bigint, $6) "
     "ON CONFLICT (name) DO UPDATE SET category = EXCLUDED.category, "
     "channel = EXCLUDED.channel, max_count = EXCLUDED.max_count, "
     "window_ms = EXCLUDED.window_ms, action = EXCLUDED.action, updated_at = now() "
     "RETURNING " THROTTLE_RULE_COLUMNS,
     6},
    {"gw_throttle_rule_get", "SELECT " THROTTLE_RULE_COLUMNS " FROM throttle_rules WHERE name = $1",
     1},
    {"gw_throttle_rule_list", "SELECT " THROTTLE_RULE_COLUMNS " FROM throttle_rules ORDER BY name",
     0},
    {"gw_throttle_rule_delete", "DELETE FROM throttle_rules WHERE name = $1", 1},
    {"gw_followup_rule_put",
     "INSERT INTO followup_rules (name, event_type, category, channel, after_channel, delay_ms, "
     "template) VALUES ($1, $2, $3, $4, coalesce($5, 'inapp'), $6::bigint, $7) "
     "ON CONFLICT (name) DO UPDATE SET event_type = EXCLUDED.event_type, "
     "category = EXCLUDED.category, after_channel = EXCLUDED.after_channel, "
     "delay_ms = EXCLUDED.delay_ms, channel = EXCLUDED.channel, template = EXCLUDED.template, "
     "updated_at = now() "
     "RETURNING " FOLLOWUP_RULE_COLUMNS,
     7},
    /* The rule that already has this (event_type, category, channel), for the 409. */
    {"gw_followup_rule_rival",
     "SELECT name FROM followup_rules WHERE event_type = $2 "
     "AND coalesce(category, '') = coalesce($3, '') AND channel = $4 AND name <> $1",
     4},
    {"gw_followup_rule_get", "SELECT " FOLLOWUP_RULE_COLUMNS " FROM followup_rules WHERE name = $1",
     1},
    {"gw_followup_rule_list", "SELECT " FOLLOWUP_RULE_COLUMNS " FROM followup_rules ORDER BY name",
     0},
    {"gw_followup_rule_delete", "DELETE FROM followup_rules WHERE name = $1", 1},
    {"gw_event_get",
     "SELECT event_id, type, user_id, topic, priority, category, " TS("created_at") ", " TS(
         "dispatched_at") " FROM events WHERE event_id = $1::uuid",
     1},
    /* The event's deliveries (a broadcast's: its subscribers' events'),
     * claimed or only planned (migration 010). */
    /* Each with its history (migration 016): the statuses it reached,
     * when, why and who said so. */
    {"gw_event_deliveries",
     "SELECT ds.channel, ds.status, ds.attempts, ds.last_error, " DS_UPDATED_AT ", ds.user_id, "
     "ds.skip_reason, " DS_NOT_BEFORE ", ds.idempotency_key, ds.address, ds.provider, "
     "ds.provider_message_id, (SELECT json_agg(" HISTORY_JSON " ORDER BY h.id) "
     "FROM delivery_history h "
     "WHERE h.event_id = ds.event_id AND h.idempotency_key = ds.idempotency_key) "
     "FROM delivery_status ds WHERE ds.event_id = $1::uuid OR ds.event_id = ANY "
     "(ARRAY(SELECT e.event_id FROM events e WHERE e.broadcast_id = $1::uuid)) "
     "ORDER BY ds.created_at, ds.user_id, ds.channel LIMIT 1000",
     1},
    /* The digest windows that took the event (a broadcast's: its subscribers' events'). */
    {"gw_event_digests",
     "SELECT de.channel, de.window_id, w.rule_name, de.role, w.status, " TS("w.closes_at") ", " TS(
         "w.sent_at") ", w.user_id FROM digest_events de "
                      "JOIN digest_windows w ON w.window_id = de.window_id "
                      "WHERE de.event_id = $1::uuid OR de.event_id = ANY "
                      "(ARRAY(SELECT e.event_id FROM events e "
                      "WHERE e.broadcast_id = $1::uuid)) "
                      "ORDER BY de.seq LIMIT 1000",
     1},
    /* The digest whose delivery is the event: the dispatcher records it
     * under the window's id. */
    {"gw_event_digest",
     "SELECT w.rule_name, w.channel, w.user_id, w.group_key, w.members, w.status, " TS(
         "w.opened_at") ", " TS("w.closes_at") ", " TS("w.sent_at") ", "
                                                                    "(SELECT coalesce(json_agg("
                                                                    "m.event_id ORDER BY m.seq), "
                                                                    "'[]') FROM (SELECT "
                                                                    "event_id, seq FROM "
                                                                    "digest_events WHERE "
                                                                    "window_id = w.window_id AND "
                                                                    "role = 'member' ORDER BY seq "
                                                                    "LIMIT 100) m) "
                                                                    "FROM digest_windows w WHERE "
                                                                    "w.window_id = $1::uuid",
     1},
    /* The event's follow-ups (a broadcast's: its subscribers' events'). */
    {"gw_event_followups",
     "SELECT rule_name, channel, status, reason, " TS("due_at") ", " TS(
         "decided_at") ", user_id FROM followups "
                       "WHERE event_id = $1::uuid OR event_id = ANY "
                       "(ARRAY(SELECT e.event_id FROM events e "
                       "WHERE e.broadcast_id = $1::uuid)) "
                       "ORDER BY due_at, user_id, rule_name LIMIT 1000",
     1},
    /* Event search (GET /v1/events), newest first, paged on (created_at,
     * event_id) after $2 (microseconds since the epoch) and $3, at most $4:
     * one statement per key, so that each uses its index. */
    {"gw_event_search_id", "SELECT " EVENT_SUMMARY "WHERE e.event_id = $1::uuid AND " EVENT_PAGE,
     4},
    {"gw_event_search_user", "SELECT " EVENT_SUMMARY "WHERE e.user_id = $1 AND " EVENT_PAGE, 4},
    /* The publisher's Idempotency-Key under any API key, or a delivery's key. */
    {"gw_event_search_key",
     "SELECT " EVENT_SUMMARY "WHERE e.event_id = ANY (ARRAY("
     "SELECT p.event_id FROM publish_idempotency p WHERE p.idempotency_key = $1 "
     "UNION SELECT d.event_id FROM deliveries d WHERE d.idempotency_key = $1)) AND " EVENT_PAGE,
     4},
    /* The timeline (GET /v1/events/{id}/timeline), at most $2 entries. */
    {"gw_event_timeline",
     "WITH ids AS (SELECT ARRAY(SELECT e.event_id FROM events e WHERE e.event_id = $1::uuid "
     "OR e.broadcast_id = $1::uuid) || $1::uuid AS a), "
     "t AS (" TIMELINE_PUBLISHED " UNION ALL " TIMELINE_DELIVERIES " UNION ALL " TIMELINE_HISTORY
     " UNION ALL " TIMELINE_DLQ " UNION ALL " TIMELINE_DIGESTS " UNION ALL " TIMELINE_FOLLOWUPS
     ") SELECT " TIMELINE_AT ", json_strip_nulls(t.j) FROM t ORDER BY t.at, t.r, t.q, t.k "
     "LIMIT $2::int",
     2},
    /* A key older than 24 hours is free again: the row is taken over. */
    {"gw_idem_claim",
     "INSERT INTO publish_idempotency (api_key_id, idempotency_key, event_id, request_hash) "
     "VALUES ($1, $2, $3::uuid, $4) "
     "ON CONFLICT (api_key_id, idempotency_key) DO UPDATE SET event_id = EXCLUDED.event_id, "
     "request_hash = EXCLUDED.request_hash, created_at = now(), published_at = NULL, "
     "attempted_at = NULL "
     "WHERE publish_idempotency.created_at < now() - interval '24 hours' "
     "RETURNING event_id",
     4},
    /* Whether the claim is settled (confirmed, or unconfirmed for longer
     * than a publish can take), whether it was never confirmed (a publish
     * in doubt, or a gateway that died between producing and confirming.
     * The record may or may not be in Kafka; publishing the first event id
     * again is safe either way) and whether it was made for another request
     * (a claim without a hash, from before migration 023, matches any). */
    {"gw_idem_get",
     "SELECT event_id, published_at IS NOT NULL "
     "OR coalesce(attempted_at, created_at) < now() - $3::bigint * interval '1 millisecond', "
     "published_at IS NULL, request_hash IS NOT NULL AND request_hash <> $4 "
     "FROM publish_idempotency WHERE api_key_id = $1 AND idempotency_key = $2",
     4},
    /* An unconfirmed claim past its in-flight window, claimed again as it
     * is: a new attempt, in flight from now on, within the key's first 24
     * hours (created_at stays). */
    {"gw_idem_retake",
     "UPDATE publish_idempotency SET attempted_at = now() "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND published_at IS NULL "
     "AND coalesce(attempted_at, created_at) < now() - $3::bigint * interval '1 millisecond' "
     "AND created_at >= now() - interval '24 hours' RETURNING event_id",
     3},
    {"gw_idem_confirm",
     "UPDATE publish_idempotency SET published_at = now() "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND event_id = $3::uuid",
     3},
    {"gw_idem_release",
     "DELETE FROM publish_idempotency "
     "WHERE api_key_id = $1 AND idempotency_key = $2 AND event_id = $3::uuid",
     3},
    /* The suppression list (migration 016), in (channel, address) order. */
    {"gw_suppression_list",
     "SELECT " SUPPRESSION_JSON " FROM suppressions "
     "WHERE ($1::text IS NULL OR channel = $1) AND ($2::text IS NULL OR reason = $2) "
     "AND ($3::text IS NULL OR (channel, address) > ($3, $4)) "
     "ORDER BY channel, address LIMIT $5",
     5},
    {"gw_suppression_get",
     "SELECT " SUPPRESSION_JSON " FROM suppressions "
     "WHERE channel = $1 AND address = herald_address_key($1, $2)",
     2},
    {"gw_suppression_add",
     "INSERT INTO suppressions (channel, address, reason, detail) "
     "VALUES ($1, herald_address_key($1, $2), 'manual', $3) "
     "ON CONFLICT (channel, address) DO NOTHING RETURNING " SUPPRESSION_JSON,
     3},
    /* Removing an entry forgets its transient bounces too: the count starts again. */
    {"gw_suppression_delete",
     "WITH d AS (DELETE FROM suppressions WHERE channel = $1 "
     "           AND address = herald_address_key($1, $2) RETURNING 1), "
     "b AS (DELETE FROM soft_bounces WHERE channel = $1 "
     "      AND address = herald_address_key($1, $2)) "
     "SELECT count(*) FROM d",
     2},
    {"gw_receipt_apply",
     "SELECT herald_receipt_apply($1, $2, $3, $4, $5, $6, $7, $8, "
     "coalesce($9::timestamptz, now()), $10::integer)",
     10},
    {"gw_ping", "SELECT 1", 0},
    {"gw_user_exists", "SELECT 1 FROM users WHERE user_id = $1", 1},
    /* A user whose inbox never changed has no inbox_state row yet: its
     * counts are those of its messages (none, normally). */
    {"gw_inbox_counts",
     "SELECT coalesce(s.seq, (SELECT coalesce(max(m.seq), 0) FROM inbox_messages m "
     "WHERE m.user_id = $1)), "
     "coalesce(s.unread, (SELECT count(*) FROM inbox_messages m WHERE m.user_id = $1 "
     "AND " UNREAD_M ")), "
     "coalesce(s.unseen, (SELECT count(*) FROM inbox_messages m WHERE m.user_id = $1 "
     "AND " UNSEEN_M ")) "
     "FROM users u LEFT JOIN inbox_state s ON s.user_id = u.user_id WHERE u.user_id = $1",
     1},
    /* A page older than the cursor ($7, $8), or the newest page without one. */
    {"gw_inbox_older",
     "SELECT " INBOX_COLUMNS " FROM inbox_messages m WHERE m.user_id = $1 AND " INBOX_FILTER
     "AND ($7::timestamptz IS NULL OR (m.created_at, m.message_id) < ($7::timestamptz, $8::uuid)) "
     "ORDER BY m.created_at DESC, m.message_id DESC LIMIT $9",
     9},
    /* The page just newer than the cursor, nearest first (the caller reverses it). */
    {"gw_inbox_newer",
     "SELECT " INBOX_COLUMNS " FROM inbox_messages m WHERE m.user_id = $1 AND " INBOX_FILTER
     "AND (m.created_at, m.message_id) > ($7::timestamptz, $8::uuid) "
     "ORDER BY m.created_at, m.message_id LIMIT $9",
     9},
    /* The state row of an inbox that has none yet, from its messages; a
     * missing user fails the foreign key. */
    {"gw_inbox_state_create",
     "INSERT INTO inbox_state (user_id, seq, unread, unseen) "
     "SELECT $1, coalesce(max(m.seq), 0), count(*) FILTER (WHERE " UNREAD_M "), "
     "count(*) FILTER (WHERE " UNSEEN_M ") FROM inbox_messages m WHERE m.user_id = $1 "
     "HAVING NOT EXISTS (SELECT 1 FROM inbox_state WHERE user_id = $1) "
     "ON CONFLICT (user_id) DO NOTHING",
     1},
    /* Every change of one inbox holds this lock until it commits. */
    {"gw_inbox_state_lock", "SELECT seq FROM inbox_state WHERE user_id = $1 FOR UPDATE", 1},
    {"gw_inbox_mark", INBOX_MARK_SQL, 9},
};

int store_prepare(pg_conn *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof statements / sizeof statements[0]; i++) {
        pg_status st = pg_prepare(c, statements[i].name, statements[i].sql, statements[i].nparams,
                                  err, errlen);
        if (st != PG_OK)
            return -1;
    }
    return 0;
}

static store_status classify(pg_conn *c, pg_status st)
{
    switch (st) {
    case PG_OK:
        return STORE_OK;
    case PG_RETRY:
    case PG_DOWN:
        return STORE_UNAVAILABLE;
    case PG_ERROR:
        break;
    }
    const char *state = pg_last_sqlstate(c);
    if (strcmp(state, "23505") == 0)
        return STORE_CONFLICT;
    if (strcmp(state, "23503") == 0)
        return STORE_NOT_FOUND; /* foreign key: the user is not there */
    if (strncmp(state, "22", 2) == 0 || strcmp(state, "23514") == 0 || strcmp(state, "23502") == 0)
        return STORE_INVALID;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return STORE_UNAVAILABLE;
    return STORE_ERROR;
}

/*
 * Runs a statement, once more after a reconnect.  Inside a transaction only
 * once: the transaction was lost with the connection, and running the rest
 * of it outside one would commit it piecemeal; the caller gives up instead.
 */
static store_status run(pg_conn *c, const char *name, int n, const char *const *values,
                        const int *lengths, const int *formats, PGresult **out, char *err,
                        size_t errlen)
{
    pg_status st = PG_RETRY;
    int attempts = pg_in_transaction(c) ? 1 : 2;
    for (int attempt = 0; attempt < attempts && st == PG_RETRY; attempt++)
        st = pg_exec_prepared(c, name, n, values, lengths, formats, 0, out, err, errlen);
    return classify(c, st);
}

static json_t *col_str(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_stringn(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

static int64_t col_int(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static json_t *col_json(PGresult *res, int row, int col, json_t *dflt)
{
    if (PQgetisnull(res, row, col))
        return dflt;
    json_t *v = json_loadb(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), 0, NULL);
    if (v == NULL)
        return dflt;
    json_decref(dflt);
    return v;
}

/* The JSON objects of res's first column as an array (new reference). */
static json_t *json_rows(PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++)
        if (json_array_append_new(list, col_json(res, i, 0, json_null())) != 0) {
            json_decref(list);
            list = NULL;
        }
    return list;
}

/* A string member of body, or NULL (absent, null). */
static const char *member(const json_t *body, const char *name)
{
    json_t *v = json_object_get(body, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

store_status store_user_get(pg_conn *c, const char *user_id, json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    *out = NULL;
    store_status st = run(c, "gw_user_get", 1, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if (PQntuples(res) != 1) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    *out = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "user_id", col_str(res, 0, 0),
                     "email", col_str(res, 0, 1), "phone", col_str(res, 0, 2), "name",
                     col_str(res, 0, 3), "timezone", col_str(res, 0, 4), "locale",
                     col_str(res, 0, 5), "push_tokens", col_json(res, 0, 8, json_array()),
                     "created_at", col_str(res, 0, 6), "updated_at", col_str(res, 0, 7));
    if (*out == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
    }
out:
    PQclear(res);
    return st;
}

store_status store_user_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                            char *err, size_t errlen)
{
    char *tokens = NULL;
    store_status st = STORE_ERROR;
    *out = NULL;
    json_t *jt = json_object_get(body, "push_tokens");
    tokens = json_is_array(jt) ? json_dumps(jt, JSON_COMPACT) : strdup("[]");
    if (tokens == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    const char *uv[6] = {user_id,
                         member(body, "email"),
                         member(body, "phone"),
                         member(body, "name"),
                         member(body, "timezone"),
                         member(body, "locale")};
    const char *tv[2] = {user_id, tokens};
    /* The whole transaction is redone after a reconnect: it is idempotent. */
    for (int attempt = 0; attempt < 2; attempt++) {
        pg_status ps = pg_begin(c, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_user_upsert", 6, uv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_tokens_prune", 2, tv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_exec_prepared(c, "gw_tokens_add", 2, tv, NULL, NULL, 0, NULL, err, errlen);
        if (ps == PG_OK)
            ps = pg_commit(c, err, errlen);
        if (ps == PG_OK) {
            st = STORE_OK;
            break;
        }
        st = classify(c, ps);
        if (pg_in_transaction(c)) {
            char rerr[128];
            if (pg_rollback(c, rerr, sizeof rerr) != PG_OK)
                break; /* the pool rolls back again before lending it out */
        }
        if (ps != PG_RETRY)
            break;
    }
    if (st == STORE_OK)
        st = store_user_get(c, user_id, out, err, errlen);
out:
    free(tokens);
    return st;
}

store_status store_user_delete(pg_conn *c, const char *user_id, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    pg_status ps = pg_exec_prepared(c, "gw_user_delete", 1, v, NULL, NULL, 0, &res, err, errlen);
    if (ps == PG_RETRY)
        ps = pg_exec_prepared(c, "gw_user_delete", 1, v, NULL, NULL, 0, &res, err, errlen);
    store_status st = classify(c, ps);
    if (st == STORE_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

store_status store_prefs_get(pg_conn *c, const char *user_id, json_t **out, char *err,
                             size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    *out = NULL;
    store_status st = run(c, "gw_prefs_get", 1, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if (PQntuples(res) != 1) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    json_t *qh = json_null();
    if (!PQgetisnull(res, 0, 3) && !PQgetisnull(res, 0, 4)) {
        json_decref(qh);
        qh = json_pack("{s:o,s:o}", "start", col_str(res, 0, 3), "end", col_str(res, 0, 4));
    }
    *out = json_pack("{s:o,s:o,s:o,s:o,s:o}", "user_id", col_str(res, 0, 0), "channels",
                     col_json(res, 0, 1, json_object()), "categories",
                     col_json(res, 0, 2, json_object()), "quiet_hours", qh, "updated_at",
                     col_str(res, 0, 5));
    if (*out == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
    }
out:
    PQclear(res);
    return st;
}

store_status store_prefs_put(pg_conn *c, const char *user_id, const json_t *body, json_t **out,
                             char *err, size_t errlen)
{
    char *channels = NULL, *categories = NULL;
    store_status st = STORE_ERROR;
    *out = NULL;
    json_t *jc = json_object_get(body, "channels"), *jk = json_object_get(body, "categories");
    channels = jc != NULL ? json_dumps(jc, JSON_COMPACT) : strdup("{}");
    categories = jk != NULL ? json_dumps(jk, JSON_COMPACT) : strdup("{}");
    if (channels == NULL || categories == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    json_t *qh = json_object_get(body, "quiet_hours");
    const char *qs = json_is_object(qh) ? member(qh, "start") : NULL;
    const char *qe = json_is_object(qh) ? member(qh, "end") : NULL;
    const char *v[5] = {user_id, channels, categories, qs, qe};
    st = run(c, "gw_prefs_put", 5, v, NULL, NULL, NULL, err, errlen);
    if (st == STORE_OK)
        st = store_prefs_get(c, user_id, out, err, errlen);
out:
    free(channels);
    free(categories);
    return st;
}

store_status store_prefs_unsubscribe(pg_conn *c, const char *user_id, const char *category,
                                     const char *channel, bool *changed, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[3] = {user_id, category, channel};
    *changed = false;
    store_status st = run(c, "gw_prefs_unsubscribe", 3, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
        st = STORE_NOT_FOUND;
    else if (st == STORE_OK)
        *changed = strcmp(PQgetvalue(res, 0, 1), "0") != 0;
    PQclear(res);
    return st;
}

store_status store_subscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                             size_t errlen)
{
    const char *v[2] = {topic, user_id};
    return run(c, "gw_subscribe", 2, v, NULL, NULL, NULL, err, errlen);
}

store_status store_unsubscribe(pg_conn *c, const char *topic, const char *user_id, char *err,
                               size_t errlen)
{
    PGresult *res = NULL;
    const char *v[2] = {topic, user_id};
    store_status st = run(c, "gw_unsubscribe", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "t") != 0))
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

static json_t *template_json(PGresult *res)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "event_type", col_str(res, 0, 0), "channel",
                     col_str(res, 0, 1), "subject", col_str(res, 0, 2), "body", col_str(res, 0, 3),
                     "category", col_str(res, 0, 4), "updated_at", col_str(res, 0, 5));
}

store_status store_template_put(pg_conn *c, const char *event_type, const char *channel,
                                const json_t *body, json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    const char *v[5] = {event_type, channel, member(body, "subject"), member(body, "body"),
                        member(body, "category")};
    store_status st = run(c, "gw_template_put", 5, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK) {
        *out = PQntuples(res) == 1 ? template_json(res) : NULL;
        if (*out == NULL) {
            error_set(err, errlen, "the template was not returned");
            st = STORE_ERROR;
        }
    }
    PQclear(res);
    return st;
}

store_status store_template_get(pg_conn *c, const char *event_type, const char *channel,
                                json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    const char *v[2] = {event_type, channel};
    store_status st = run(c, "gw_template_get", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK) {
        if (PQntuples(res) != 1) {
            st = STORE_NOT_FOUND;
        } else if ((*out = template_json(res)) == NULL) {
            error_set(err, errlen, "out of memory");
            st = STORE_ERROR;
        }
    }
    PQclear(res);
    return st;
}

store_status store_template_delete(pg_conn *c, const char *event_type, const char *channel,
                                   char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[2] = {event_type, channel};
    store_status st = run(c, "gw_template_delete", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

/* ---- digest and throttle rules (docs/digests.md) ---- */

static json_t *col_int_or_null(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_integer(strtoll(PQgetvalue(res, row, col), NULL, 10));
}

static json_t *digest_json(PGresult *res, int row)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:o,s:o,s:o,s:o,s:o,s:o}", "name",
                     col_str(res, row, 0), "event_type", col_str(res, row, 1), "category",
                     col_str(res, row, 2), "channels", col_json(res, row, 3, json_array()),
                     "window", col_str(res, row, 4), "window_ms", col_int_or_null(res, row, 5),
                     "max_window_ms", col_int_or_null(res, row, 6), "max_events",
                     col_int_or_null(res, row, 7), "send_first",
                     strcmp(PQgetvalue(res, row, 8), "t") == 0, "schedule_at", col_str(res, row, 9),
                     "group_by", col_str(res, row, 10), "template", col_str(res, row, 11),
                     "events_shown", col_int_or_null(res, row, 12), "created_at",
                     col_str(res, row, 13), "updated_at", col_str(res, row, 14));
}

static json_t *throttle_json(PGresult *res, int row)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "name", col_str(res, row, 0), "category",
                     col_str(res, row, 1), "channel", col_str(res, row, 2), "max_count",
                     col_int_or_null(res, row, 3), "window_ms", col_int_or_null(res, row, 4),
                     "action", col_str(res, row, 5), "created_at", col_str(res, row, 6),
                     "updated_at", col_str(res, row, 7));
}

static json_t *followup_json(PGresult *res, int row)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "name", col_str(res, row, 0),
                     "event_type", col_str(res, row, 1), "category", col_str(res, row, 2),
                     "after_channel", col_str(res, row, 3), "delay_ms",
                     col_int_or_null(res, row, 4), "channel", col_str(res, row, 5), "template",
                     col_str(res, row, 6), "created_at", col_str(res, row, 7), "updated_at",
                     col_str(res, row, 8));
}

typedef json_t *(*row_json_fn)(PGresult *res, int row);

/* The one row of res as JSON into *out: STORE_NOT_FOUND without one. */
static store_status one_row(PGresult *res, row_json_fn fn, json_t **out, char *err, size_t errlen)
{
    if (PQntuples(res) != 1)
        return STORE_NOT_FOUND;
    if ((*out = fn(res, 0)) == NULL) {
        error_set(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    return STORE_OK;
}

/* Runs a 1-row statement (v its parameters) and answers its row. */
static store_status rule_row(pg_conn *c, const char *stmt_name, int n, const char *const *v,
                             row_json_fn fn, json_t **out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    store_status st = run(c, stmt_name, n, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK)
        st = one_row(res, fn, out, err, errlen);
    PQclear(res);
    return st;
}

/* {"rules":[...]} of a list statement. */
static store_status rule_list(pg_conn *c, const char *stmt_name, row_json_fn fn, json_t **out,
                              char *err, size_t errlen)
{
    PGresult *res = NULL;
    json_t *list = NULL;
    *out = NULL;
    store_status st = run(c, stmt_name, 0, NULL, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if ((list = json_array()) == NULL)
        goto oom;
    for (int i = 0; i < PQntuples(res); i++)
        if (json_array_append_new(list, fn(res, i)) != 0)
            goto oom;
    if ((*out = json_pack("{s:O}", "rules", list)) == NULL)
        goto oom;
    goto out;
oom:
    error_set(err, errlen, "out of memory");
    st = STORE_ERROR;
out:
    json_decref(list);
    PQclear(res);
    return st;
}

static store_status rule_delete(pg_conn *c, const char *stmt_name, const char *name, char *err,
                                size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {name};
    store_status st = run(c, stmt_name, 1, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && strcmp(PQcmdTuples(res), "0") == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

/* An integer member as text into buf, or NULL (absent, null). */
static const char *int_member(const json_t *body, const char *field, char *buf, size_t len)
{
    json_t *v = json_object_get(body, field);
    if (!json_is_integer(v))
        return NULL;
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    return buf;
}

/*
 * Runs the put statement (n parameters v) unless the rival statement (the
 * first nrival of v) finds another rule with the same match: then
 * STORE_CONFLICT with that rule's name in other (NULL: not wanted).  The
 * client learns which rule to change; the unique index still decides when
 * two PUTs race.
 */
static store_status rule_put_unless_rival(pg_conn *c, const char *rival_stmt, int nrival,
                                          const char *put_stmt, int n, const char *const *v,
                                          row_json_fn fn, json_t **out, char other[129], char *err,
                                          size_t errlen)
{
    PGresult *res = NULL;
    *out = NULL;
    if (other != NULL)
        other[0] = '\0';
    store_status st = run(c, rival_stmt, nrival, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && PQntuples(res) > 0) {
        if (other != NULL)
            snprintf(other, 129, "%s", PQgetvalue(res, 0, 0));
        st = STORE_CONFLICT;
    }
    PQclear(res);
    if (st != STORE_OK)
        return st;
    return rule_row(c, put_stmt, n, v, fn, out, err, errlen);
}

store_status store_digest_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                   char other[129], char *err, size_t errlen)
{
    char *channels = NULL, window_ms[24], max_window_ms[24], max_events[24], shown[24];
    char tmpl[160];
    store_status st = STORE_ERROR;
    *out = NULL;
    const char *type = member(body, "event_type");
    const char *category = member(body, "category");
    if ((channels = json_dumps(json_object_get(body, "channels"), JSON_COMPACT)) == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    const char *t = member(body, "template");
    if (t == NULL) {
        snprintf(tmpl, sizeof tmpl, "%s%s", type, BODIES_DIGEST_SUFFIX);
        t = tmpl;
    }
    const char *shown_v = int_member(body, "events_shown", shown, sizeof shown);
    const char *v[13] = {name,
                         type,
                         category,
                         channels,
                         member(body, "window"),
                         int_member(body, "window_ms", window_ms, sizeof window_ms),
                         int_member(body, "max_window_ms", max_window_ms, sizeof max_window_ms),
                         int_member(body, "max_events", max_events, sizeof max_events),
                         json_is_true(json_object_get(body, "send_first")) ? "true" : "false",
                         member(body, "schedule_at"),
                         member(body, "group_by"),
                         t,
                         shown_v != NULL ? shown_v : "10"};
    st = rule_put_unless_rival(c, "gw_digest_rule_rival", 3, "gw_digest_rule_put", 13, v,
                               digest_json, out, other, err, errlen);
out:
    free(channels);
    return st;
}

store_status store_digest_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                   size_t errlen)
{
    const char *v[1] = {name};
    return rule_row(c, "gw_digest_rule_get", 1, v, digest_json, out, err, errlen);
}

store_status store_digest_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
{
    return rule_list(c, "gw_digest_rule_list", digest_json, out, err, errlen);
}

store_status store_digest_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
{
    return rule_delete(c, "gw_digest_rule_delete", name, err, errlen);
}

store_status store_throttle_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                     char *err, size_t errlen)
{
    char max_count[24], window_ms[24];
    const char *v[6] = {name,
                        member(body, "category"),
                        member(body, "channel"),
                        int_member(body, "max_count", max_count, sizeof max_count),
                        int_member(body, "window_ms", window_ms, sizeof window_ms),
                        member(body, "action")};
    return rule_row(c, "gw_throttle_rule_put", 6, v, throttle_json, out, err, errlen);
}

store_status store_throttle_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                     size_t errlen)
{
    const char *v[1] = {name};
    return rule_row(c, "gw_throttle_rule_get", 1, v, throttle_json, out, err, errlen);
}

store_status store_throttle_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
{
    return rule_list(c, "gw_throttle_rule_list", throttle_json, out, err, errlen);
}

store_status store_throttle_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
{
    return rule_delete(c, "gw_throttle_rule_delete", name, err, errlen);
}

store_status store_followup_rule_put(pg_conn *c, const char *name, const json_t *body, json_t **out,
                                     char other[129], char *err, size_t errlen)
{
    char delay_ms[24];
    /* The rival statement takes the first four: name, type, category, channel. */
    const char *v[7] = {name,
                        member(body, "event_type"),
                        member(body, "category"),
                        member(body, "channel"),
                        member(body, "after_channel"),
                        int_member(body, "delay_ms", delay_ms, sizeof delay_ms),
                        member(body, "template")};
    return rule_put_unless_rival(c, "gw_followup_rule_rival", 4, "gw_followup_rule_put", 7, v,
                                 followup_json, out, other, err, errlen);
}

store_status store_followup_rule_get(pg_conn *c, const char *name, json_t **out, char *err,
                                     size_t errlen)
{
    const char *v[1] = {name};
    return rule_row(c, "gw_followup_rule_get", 1, v, followup_json, out, err, errlen);
}

store_status store_followup_rule_list(pg_conn *c, json_t **out, char *err, size_t errlen)
{
    return rule_list(c, "gw_followup_rule_list", followup_json, out, err, errlen);
}

store_status store_followup_rule_delete(pg_conn *c, const char *name, char *err, size_t errlen)
{
    return rule_delete(c, "gw_followup_rule_delete", name, err, errlen);
}

/*
 * One word for where an event stands, from its deliveries:
 * "processing" while any is pending, scheduled or retrying; otherwise
 * "failed" if any failed, "delivered" if any was sent, "digested" when
 * the rest went into digests, "throttled" when a throttle rule held them,
 * "skipped" when every channel was skipped, and "dispatched" when the
 * dispatcher planned none.  "accepted": deliveries exist but the events
 * row is not written yet.
 */
static const char *overall_status(json_t *deliveries, bool have_event)
{
    size_t i;
    json_t *d;
    bool active = false, failed = false, sent = false, digested = false, throttled = false;
    if (json_array_size(deliveries) == 0)
        return have_event ? "dispatched" : "accepted";
    json_array_foreach(deliveries, i, d)
    {
        const char *s = json_string_value(json_object_get(d, "status"));
        if (s == NULL)
            continue;
        if (strcmp(s, "pending") == 0 || strcmp(s, "scheduled") == 0 || strcmp(s, "retrying") == 0)
            active = true;
        else if (strcmp(s, "failed") == 0 || strcmp(s, "undelivered") == 0 ||
                 strcmp(s, "bounced") == 0)
            failed = true;
        else if (strcmp(s, "sent") == 0 || strcmp(s, "delivered") == 0 ||
                 strcmp(s, "complained") == 0)
            sent = true;
        else if (strcmp(s, "digested") == 0)
            digested = true;
        else if (strcmp(s, "throttled") == 0)
            throttled = true;
    }
    if (active)
        return "processing";
    if (failed)
        return "failed";
    if (sent)
        return "delivered";
    if (digested)
        return "digested";
    return throttled ? "throttled" : "skipped";
}

/* What the API calls a window's status: an open window is waiting for more events. */
static json_t *window_status(PGresult *res, int row, int col)
{
    const char *s = PQgetvalue(res, row, col);
    return json_string(strcmp(s, "open") == 0 ? "waiting" : s);
}

/* The "digests" of an event: each channel a digest rule took it on. */
static json_t *event_digests(PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        json_t *d = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "channel", col_str(res, i, 0),
                              "digest_id", col_str(res, i, 1), "rule", col_str(res, i, 2), "role",
                              col_str(res, i, 3), "status", window_status(res, i, 4), "closes_at",
                              col_str(res, i, 5), "sent_at", col_str(res, i, 6), "user_id",
                              col_str(res, i, 7));
        if (d == NULL || json_array_append_new(list, d) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

/* The "digest" of an event that is a digest's own delivery (its id a window's). */
static json_t *event_digest(PGresult *res)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o}", "rule", col_str(res, 0, 0),
                     "channel", col_str(res, 0, 1), "user_id", col_str(res, 0, 2), "group_key",
                     col_str(res, 0, 3), "members", (json_int_t)col_int(res, 0, 4), "status",
                     window_status(res, 0, 5), "opened_at", col_str(res, 0, 6), "closes_at",
                     col_str(res, 0, 7), "sent_at", col_str(res, 0, 8), "events",
                     col_json(res, 0, 9, json_array()));
}

/* The "followups" of an event: each follow-up a rule planned for it. */
static json_t *event_followups(PGresult *res)
{
    json_t *list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        json_t *f = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "rule", col_str(res, i, 0),
                              "channel", col_str(res, i, 1), "status", col_str(res, i, 2), "reason",
                              col_str(res, i, 3), "due_at", col_str(res, i, 4), "decided_at",
                              col_str(res, i, 5), "user_id", col_str(res, i, 6));
        if (f == NULL || json_array_append_new(list, f) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list;
}

/* The event's own members (gw_event_get's row) into doc. */
static void event_header(json_t *doc, PGresult *ev)
{
    json_object_set_new(doc, "type", col_str(ev, 0, 1));
    if (!PQgetisnull(ev, 0, 2))
        json_object_set_new(doc, "user_id", col_str(ev, 0, 2));
    if (!PQgetisnull(ev, 0, 3))
        json_object_set_new(doc, "topic", col_str(ev, 0, 3));
    json_object_set_new(doc, "priority", col_str(ev, 0, 4));
    if (!PQgetisnull(ev, 0, 5))
        json_object_set_new(doc, "category", col_str(ev, 0, 5));
    json_object_set_new(doc, "created_at", col_str(ev, 0, 6));
    json_object_set_new(doc, "dispatched_at", col_str(ev, 0, 7));
}

store_status store_event_status(pg_conn *c, const char *event_id, json_t **out, char *err,
                                size_t errlen)
{
    PGresult *ev = NULL, *dl = NULL, *dg = NULL, *win = NULL, *fu = NULL;
    json_t *doc = NULL, *list = NULL, *digests = NULL, *followups = NULL;
    const char *v[1] = {event_id};
    *out = NULL;
    store_status st = run(c, "gw_event_get", 1, v, NULL, NULL, &ev, err, errlen);
    if (st != STORE_OK)
        goto out;
    st = run(c, "gw_event_deliveries", 1, v, NULL, NULL, &dl, err, errlen);
    if (st != STORE_OK)
        goto out;
    if ((st = run(c, "gw_event_digests", 1, v, NULL, NULL, &dg, err, errlen)) != STORE_OK ||
        (st = run(c, "gw_event_digest", 1, v, NULL, NULL, &win, err, errlen)) != STORE_OK ||
        (st = run(c, "gw_event_followups", 1, v, NULL, NULL, &fu, err, errlen)) != STORE_OK)
        goto out;
    bool have_event = PQntuples(ev) == 1;
    /* An open digest has no events row yet, but its id answers. */
    if (!have_event && PQntuples(dl) == 0 && PQntuples(dg) == 0 && PQntuples(win) == 0) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(dl); i++) {
        json_t *d = json_pack(
            "{s:o,s:o,s:I,s:o,s:o,s:o}", "channel", col_str(dl, i, 0), "status", col_str(dl, i, 1),
            "attempts", (json_int_t)strtoll(PQgetvalue(dl, i, 2), NULL, 10), "last_error",
            col_str(dl, i, 3), "updated_at", col_str(dl, i, 4), "user_id", col_str(dl, i, 5));
        if (d != NULL && !PQgetisnull(dl, i, 6))
            json_object_set_new(d, "skip_reason", col_str(dl, i, 6));
        if (d != NULL && !PQgetisnull(dl, i, 7))
            json_object_set_new(d, "not_before", col_str(dl, i, 7));
        if (d != NULL) {
            json_object_set_new(d, "idempotency_key", col_str(dl, i, 8));
            if (!PQgetisnull(dl, i, 9))
                json_object_set_new(d, "address", col_str(dl, i, 9));
            if (!PQgetisnull(dl, i, 10))
                json_object_set_new(d, "provider", col_str(dl, i, 10));
            if (!PQgetisnull(dl, i, 11))
                json_object_set_new(d, "provider_message_id", col_str(dl, i, 11));
            json_t *h =
                PQgetisnull(dl, i, 12) ? json_array() : json_loads(PQgetvalue(dl, i, 12), 0, NULL);
            json_object_set_new(d, "history", h != NULL ? h : json_array());
        }
        if (d == NULL || json_array_append_new(list, d) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    doc = list != NULL ? json_pack("{s:s,s:s}", "event_id", event_id, "status",
                                   overall_status(list, have_event))
                       : NULL;
    if (doc != NULL && have_event)
        event_header(doc, ev);
    digests = event_digests(dg);
    followups = event_followups(fu);
    if (doc == NULL || json_object_set(doc, "deliveries", list) != 0 || digests == NULL ||
        json_object_set(doc, "digests", digests) != 0 || followups == NULL ||
        json_object_set(doc, "followups", followups) != 0 ||
        (PQntuples(win) == 1 && json_object_set_new(doc, "digest", event_digest(win)) != 0)) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
        goto out;
    }
    *out = doc;
    doc = NULL;
out:
    json_decref(doc);
    json_decref(list);
    json_decref(digests);
    json_decref(followups);
    PQclear(ev);
    PQclear(dl);
    PQclear(dg);
    PQclear(win);
    PQclear(fu);
    return st;
}

static const char *const search_statements[] = {"gw_event_search_id", "gw_event_search_user",
                                                "gw_event_search_key"};

store_status store_event_search(pg_conn *c, store_event_key key, const char *value,
                                const store_event_cursor *after, int limit, json_t **out,
                                bool *more, store_event_cursor *last, char *err, size_t errlen)
{
    char us[24], lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    if (after != NULL)
        snprintf(us, sizeof us, "%lld", (long long)after->created_us);
    const char *v[4] = {value, after ? us : NULL, after ? after->event_id : NULL, lim};
    PGresult *res = NULL;
    *out = NULL;
    *more = false;
    store_status st = run(c, search_statements[key], 4, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    if ((*out = json_rows(res)) == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
        goto out;
    }
    int n = PQntuples(res);
    if (n > 0 && n == limit) {
        json_t *ev = json_array_get(*out, (size_t)n - 1);
        *more = true;
        last->created_us = col_int(res, n - 1, 1);
        snprintf(last->event_id, sizeof last->event_id, "%s",
                 json_string_value(json_object_get(ev, "event_id")));
    }
out:
    PQclear(res);
    return st;
}

store_status store_event_timeline(pg_conn *c, const char *event_id, int max_entries, json_t **out,
                                  char *err, size_t errlen)
{
    PGresult *ev = NULL, *tl = NULL;
    json_t *doc = NULL, *entries = NULL;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", max_entries + 1); /* one more: whether it was cut */
    const char *v[2] = {event_id, lim};
    *out = NULL;
    store_status st = run(c, "gw_event_get", 1, v, NULL, NULL, &ev, err, errlen);
    if (st != STORE_OK ||
        (st = run(c, "gw_event_timeline", 2, v, NULL, NULL, &tl, err, errlen)) != STORE_OK)
        goto out;
    int n = PQntuples(tl);
    if (PQntuples(ev) == 0 && n == 0) {
        st = STORE_NOT_FOUND;
        goto out;
    }
    doc = json_pack("{s:s}", "event_id", event_id);
    entries = json_array();
    st = STORE_ERROR;
    if (doc == NULL || entries == NULL)
        goto oom;
    if (PQntuples(ev) == 1)
        event_header(doc, ev);
    for (int i = 0; i < n && i < max_entries; i++) {
        /* "at" first, then the entry's members as the statement made them. */
        json_t *e = json_pack("{s:o}", "at", col_str(tl, i, 0));
        json_t *rest = col_json(tl, i, 1, json_object());
        bool ok = e != NULL && rest != NULL && json_object_update(e, rest) == 0;
        json_decref(rest);
        if (!ok) {
            json_decref(e);
            goto oom;
        }
        if (json_array_append_new(entries, e) != 0)
            goto oom;
    }
    if (json_object_set(doc, "entries", entries) != 0 ||
        (n > max_entries && json_object_set_new(doc, "truncated", json_true()) != 0))
        goto oom;
    *out = doc;
    doc = NULL;
    st = STORE_OK;
    goto out;
oom:
    error_set(err, errlen, "out of memory");
out:
    json_decref(doc);
    json_decref(entries);
    PQclear(ev);
    PQclear(tl);
    return st;
}

store_status store_idem_claim(pg_conn *c, int64_t api_key_id, const char *key, const char *event_id,
                              const unsigned char request_hash[32], int in_flight_ms,
                              store_idem_state *state, char existing_id[37], char *err,
                              size_t errlen)
{
    PGresult *res = NULL;
    char idbuf[24], window[24];
    store_status st = STORE_ERROR;
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    snprintf(window, sizeof window, "%d", in_flight_ms);
    const char *v[4] = {idbuf, key, event_id, (const char *)request_hash};
    const char *gv[4] = {idbuf, key, window, (const char *)request_hash};
    int lengths[4] = {0, 0, 0, 32}, glengths[4] = {0, 0, 0, 32};
    int formats[4] = {0, 0, 0, 1}, gformats[4] = {0, 0, 0, 1};
    *state = STORE_IDEM_CLAIMED;
    existing_id[0] = '\0';
    /* A conflicting row can vanish between the two statements (its publish
     * failed and released it); then claiming again is right. */
    for (int attempt = 0; attempt < 3; attempt++) {
        PQclear(res);
        res = NULL;
        st = run(c, "gw_idem_claim", 4, v, lengths, formats, &res, err, errlen);
        if (st != STORE_OK)
            goto out;
        if (PQntuples(res) == 1)
            goto out;
        PQclear(res);
        res = NULL;
        st = run(c, "gw_idem_get", 4, gv, glengths, gformats, &res, err, errlen);
        if (st != STORE_OK)
            goto out;
        if (PQntuples(res) == 1) {
            snprintf(existing_id, 37, "%s", PQgetvalue(res, 0, 0));
            if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
                *state = STORE_IDEM_REUSED;
                goto out;
            }
            *state =
                strcmp(PQgetvalue(res, 0, 1), "t") == 0 ? STORE_IDEM_REPLAY : STORE_IDEM_IN_FLIGHT;
            if (*state == STORE_IDEM_IN_FLIGHT || strcmp(PQgetvalue(res, 0, 2), "t") != 0)
                goto out;
            /* Unconfirmed and old: take it again, unless another request just did. */
            PQclear(res);
            res = NULL;
            st = run(c, "gw_idem_retake", 3, gv, NULL, NULL, &res, err, errlen);
            if (st != STORE_OK)
                goto out;
            if (PQntuples(res) == 1) {
                snprintf(existing_id, 37, "%s", PQgetvalue(res, 0, 0));
                *state = STORE_IDEM_RETAKEN;
                goto out;
            }
            continue;
        }
    }
    error_set(err, errlen, "the idempotency key kept changing hands");
    st = STORE_ERROR;
out:
    PQclear(res);
    return st;
}

store_status store_idem_confirm(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    const char *v[3] = {idbuf, key, event_id};
    return run(c, "gw_idem_confirm", 3, v, NULL, NULL, NULL, err, errlen);
}

store_status store_idem_release(pg_conn *c, int64_t api_key_id, const char *key,
                                const char *event_id, char *err, size_t errlen)
{
    char idbuf[24];
    snprintf(idbuf, sizeof idbuf, "%lld", (long long)api_key_id);
    const char *v[3] = {idbuf, key, event_id};
    return run(c, "gw_idem_release", 3, v, NULL, NULL, NULL, err, errlen);
}

store_status store_ping(pg_conn *c, char *err, size_t errlen)
{
    return run(c, "gw_ping", 0, NULL, NULL, NULL, NULL, err, errlen);
}

/* ---- delivery receipts (docs/receipts.md) ---- */

static const char *null_if_empty(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

store_status store_receipt_apply(pg_conn *c, const char *provider, const receipt *r, int soft_limit,
                                 store_receipt_outcome *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    char at[TIMEUTIL_RFC3339_SIZE], limit[16];
    snprintf(limit, sizeof limit, "%d", soft_limit);
    const char *v[10] = {
        provider,
        r->receipt_id,
        null_if_empty(r->message_id),
        null_if_empty(r->key),
        r->status,
        r->bounce_kind,
        null_if_empty(r->reason),
        null_if_empty(r->address),
        r->occurred_ms != 0 ? timeutil_format_rfc3339(r->occurred_ms, at, sizeof at) : NULL,
        limit};
    store_status st = run(c, "gw_receipt_apply", 10, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK) {
        const char *o = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "";
        if (strcmp(o, "applied") == 0)
            *out = STORE_RECEIPT_APPLIED;
        else if (strcmp(o, "stale") == 0)
            *out = STORE_RECEIPT_STALE;
        else if (strcmp(o, "unknown") == 0)
            *out = STORE_RECEIPT_UNKNOWN;
        else if (strcmp(o, "duplicate") == 0)
            *out = STORE_RECEIPT_DUPLICATE;
        else {
            error_set(err, errlen, "herald_receipt_apply answered \"%s\"", o);
            st = STORE_ERROR;
        }
    }
    PQclear(res);
    return st;
}

/* ---- users' inboxes (docs/inapp.md) ---- */

store_status store_user_exists(pg_conn *c, const char *user_id, char *err, size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    store_status st = run(c, "gw_user_exists", 1, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && PQntuples(res) != 1)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

store_status store_inbox_counts(pg_conn *c, const char *user_id, store_inbox_state *out, char *err,
                                size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    store_status st = run(c, "gw_inbox_counts", 1, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && PQntuples(res) != 1)
        st = STORE_NOT_FOUND;
    if (st == STORE_OK) {
        out->seq = col_int(res, 0, 0);
        out->unread = col_int(res, 0, 1);
        out->unseen = col_int(res, 0, 2);
    }
    PQclear(res);
    return st;
}

/* The filter's SQL parameters $2..$6 into v[1..5], text kept in the caller's bufs. */
static void filter_params(const inbox_filter *f, const char **v, char since[32], char until[32])
{
    v[1] = inbox_status_name(f->status);
    v[2] = inbox_archived_name(f->archived);
    v[3] = f->has_category ? f->category : NULL;
    v[4] = f->has_since ? timeutil_format_rfc3339(f->since_ms, since, 32) : NULL;
    v[5] = f->has_until ? timeutil_format_rfc3339(f->until_ms, until, 32) : NULL;
}

static json_t *inbox_message_json(PGresult *res, int row)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "id",
                     col_str(res, row, 0), "event_id", col_str(res, row, 1), "event_type",
                     col_str(res, row, 2), "category", col_str(res, row, 3), "title",
                     col_str(res, row, 4), "body", col_str(res, row, 5), "data",
                     col_json(res, row, 6, json_object()), "created_at", col_str(res, row, 7),
                     "seen_at", col_str(res, row, 8), "read_at", col_str(res, row, 9),
                     "archived_at", col_str(res, row, 10), "interacted_at", col_str(res, row, 11));
}

static void row_cursor(PGresult *res, int row, inbox_cursor *c)
{
    snprintf(c->created_at, sizeof c->created_at, "%s", PQgetvalue(res, row, 12));
    snprintf(c->message_id, sizeof c->message_id, "%s", PQgetvalue(res, row, 0));
}

store_status store_inbox_page(pg_conn *c, const char *user_id, const inbox_query *q,
                              store_inbox_page_result *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    char since[32], until[32], limit[16];
    const char *v[9] = {user_id};
    bool newer = q->direction == INBOX_BEFORE;
    memset(out, 0, sizeof *out);
    filter_params(&q->filter, v, since, until);
    v[6] = q->direction != INBOX_FROM_TOP ? q->cursor.created_at : NULL;
    v[7] = q->direction != INBOX_FROM_TOP ? q->cursor.message_id : NULL;
    /* One more than the page tells whether there is more that way. */
    snprintf(limit, sizeof limit, "%d", q->page_size + 1);
    v[8] = limit;
    store_status st =
        run(c, newer ? "gw_inbox_newer" : "gw_inbox_older", 9, v, NULL, NULL, &res, err, errlen);
    if (st != STORE_OK)
        goto out;
    int rows = PQntuples(res);
    out->more = rows > q->page_size;
    if (out->more)
        rows = q->page_size;
    out->messages = json_array();
    if (out->messages == NULL)
        goto oom;
    for (int i = 0; i < rows; i++) {
        int row = newer ? rows - 1 - i : i;
        if (json_array_append_new(out->messages, inbox_message_json(res, row)) != 0)
            goto oom;
    }
    if (rows > 0) {
        row_cursor(res, newer ? rows - 1 : 0, &out->first);
        row_cursor(res, newer ? 0 : rows - 1, &out->last);
    }
    out->count = (size_t)rows;
    goto out;
oom:
    json_decref(out->messages);
    out->messages = NULL;
    error_set(err, errlen, "out of memory");
    st = STORE_ERROR;
out:
    PQclear(res);
    return st;
}

/* "{id,id,...}", the uuid[] literal of the mark's ids, into a malloc'd string. */
static char *uuid_array(const inbox_mark *m)
{
    char *s = malloc(m->nids * (ID_UUID_LEN + 1) + 3);
    if (s == NULL)
        return NULL;
    size_t o = 0;
    s[o++] = '{';
    for (size_t i = 0; i < m->nids; i++) {
        if (i > 0)
            s[o++] = ',';
        memcpy(s + o, m->ids[i], ID_UUID_LEN);
        o += ID_UUID_LEN;
    }
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

/* Creates the user's inbox_state row if needed and locks it; its seq into *seq. */
static store_status lock_inbox(pg_conn *c, const char *user_id, int64_t *seq, char *err,
                               size_t errlen)
{
    PGresult *res = NULL;
    const char *v[1] = {user_id};
    store_status st = run(c, "gw_inbox_state_create", 1, v, NULL, NULL, NULL, err, errlen);
    if (st == STORE_OK)
        st = run(c, "gw_inbox_state_lock", 1, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && PQntuples(res) != 1)
        st = STORE_NOT_FOUND;
    if (st == STORE_OK)
        *seq = col_int(res, 0, 0);
    PQclear(res);
    return st;
}

store_status store_inbox_mark(pg_conn *c, const char *user_id, const inbox_mark *m,
                              store_inbox_change *out, char *err, size_t errlen)
{
    PGresult *res = NULL;
    char *ids = NULL, since[32], until[32], next[24];
    const char *v[9] = {user_id};
    int64_t seq = 0;
    memset(out, 0, sizeof *out);
    if (!m->all && (ids = uuid_array(m)) == NULL) {
        error_set(err, errlen, "out of memory");
        return STORE_ERROR;
    }
    if (m->all) {
        filter_params(&m->filter, v, since, until);
    } else {
        const inbox_filter any = {.status = INBOX_STATUS_ALL, .archived = INBOX_ARCHIVED_INCLUDE};
        filter_params(&any, v, since, until);
    }
    v[6] = ids;
    v[8] = inbox_action_name(m->action);
    store_status st = classify(c, pg_begin(c, err, errlen));
    if (st != STORE_OK)
        goto out;
    if ((st = lock_inbox(c, user_id, &seq, err, errlen)) != STORE_OK)
        goto rollback;
    snprintf(next, sizeof next, "%lld", (long long)(seq + 1));
    v[7] = next;
    if ((st = run(c, "gw_inbox_mark", 9, v, NULL, NULL, &res, err, errlen)) != STORE_OK)
        goto rollback;
    if (PQntuples(res) != 1) {
        error_set(err, errlen, "the mark returned %d rows", PQntuples(res));
        st = STORE_ERROR;
        goto rollback;
    }
    if ((st = classify(c, pg_commit(c, err, errlen))) != STORE_OK)
        goto out;
    out->changed = col_int(res, 0, 0);
    out->state.seq = col_int(res, 0, 1);
    out->state.unread = col_int(res, 0, 2);
    out->state.unseen = col_int(res, 0, 3);
    out->message_ids = col_json(res, 0, 4, json_array());
    goto out;
rollback:;
    char rerr[128];
    if (pg_rollback(c, rerr, sizeof rerr) != PG_OK)
        LOG_WARN("store", "rollback failed: %s", rerr);
out:
    PQclear(res);
    free(ids);
    return st;
}

/* ------------------------------------------------------------ suppressions */

/* The JSON objects of res's first column as an array (new reference). */
store_status store_suppression_list(pg_conn *c, const char *channel, const char *reason,
                                    const char *after_channel, const char *after_address, int limit,
                                    json_t **out, char *err, size_t errlen)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *v[5] = {channel, reason, after_channel, after_address, lim};
    PGresult *res = NULL;
    store_status st = run(c, "gw_suppression_list", 5, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && (*out = json_rows(res)) == NULL) {
        error_set(err, errlen, "out of memory");
        st = STORE_ERROR;
    }
    PQclear(res);
    return st;
}

store_status store_suppression_get(pg_conn *c, const char *channel, const char *address,
                                   json_t **out, char *err, size_t errlen)
{
    const char *v[2] = {channel, address};
    PGresult *res = NULL;
    store_status st = run(c, "gw_suppression_get", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && PQntuples(res) == 0)
        st = STORE_NOT_FOUND;
    else if (st == STORE_OK)
        *out = col_json(res, 0, 0, json_null());
    PQclear(res);
    return st;
}

store_status store_suppression_add(pg_conn *c, const char *channel, const char *address,
                                   const char *detail, json_t **out, bool *created, char *err,
                                   size_t errlen)
{
    const char *v[3] = {channel, address, detail};
    PGresult *res = NULL;
    store_status st = run(c, "gw_suppression_add", 3, v, NULL, NULL, &res, err, errlen);
    *created = st == STORE_OK && PQntuples(res) == 1;
    if (*created)
        *out = col_json(res, 0, 0, json_null());
    PQclear(res);
    if (st == STORE_OK && !*created)
        st = store_suppression_get(c, channel, address, out, err, errlen);
    return st;
}

store_status store_suppression_delete(pg_conn *c, const char *channel, const char *address,
                                      char *err, size_t errlen)
{
    const char *v[2] = {channel, address};
    PGresult *res = NULL;
    store_status st = run(c, "gw_suppression_delete", 2, v, NULL, NULL, &res, err, errlen);
    if (st == STORE_OK && col_int(res, 0, 0) == 0)
        st = STORE_NOT_FOUND;
    PQclear(res);
    return st;
}

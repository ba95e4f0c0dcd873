/*
 * status: see status.h.
 */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timeutil.h"

/*
 * Writes JSON text directly rather than through jansson: at tens of
 * thousands of rows per second, building and dumping a tree per row would
 * cost more than the database insert it feeds.
 */
typedef struct sbuf {
    char *p;
    size_t len, cap, max;
    size_t rows;
} sbuf;

struct status_batch {
    sbuf ev, dl;
};

static const char write_sql[] =
    "WITH e AS ("
    "  INSERT INTO events (event_id, type, user_id, topic, priority, category, broadcast_id, "
    "                      created_at) "
    "  SELECT event_id, type, user_id, topic, priority, category, broadcast_id, created_at "
    "  FROM json_to_recordset($1::json) AS x(event_id uuid, type text, user_id text, "
    "       topic text, priority text, category text, broadcast_id uuid, created_at timestamptz) "
    "  ON CONFLICT (event_id) DO NOTHING RETURNING 1), "
    "d AS ("
    "  INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, status, "
    "                          skip_reason, not_before) "
    "  SELECT k, e, u, c, a, s, r, nb "
    "  FROM json_to_recordset($2::json) AS y(k text, e uuid, u text, c text, a text, s text, "
    "       r text, nb timestamptz) "
    "  ON CONFLICT (idempotency_key) DO NOTHING RETURNING 1) "
    "SELECT (SELECT count(*) FROM e), (SELECT count(*) FROM d)";

static int sb_reserve(sbuf *b, size_t more)
{
    if (b->len + more + 2 <= b->cap)
        return 0;
    if (b->len + more + 2 > b->max)
        return -1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 2)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    char *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int sb_raw(sbuf *b, const char *s, size_t n)
{
    if (sb_reserve(b, n) != 0)
        return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* ,"name":"value" (or null), escaped as JSON requires. */
static int sb_field(sbuf *b, const char *name, const char *v)
{
    size_t nl = strlen(name);
    if (sb_reserve(b, nl + 4 + (v ? strlen(v) * 6 + 2 : 4)) != 0)
        return -1;
    char *p = b->p + b->len;
    if (b->p[b->len - 1] != '{')
        *p++ = ',';
    *p++ = '"';
    memcpy(p, name, nl);
    p += nl;
    *p++ = '"';
    *p++ = ':';
    if (v == NULL) {
        memcpy(p, "null", 4);
        p += 4;
    } else {
        *p++ = '"';
        for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
                *p++ = (char)*s;
            } else if (*s < 0x20) {
                p += sprintf(p, "\\u%04x", *s);
            } else {
                *p++ = (char)*s;
            }
        }
        *p++ = '"';
    }
    b->len = (size_t)(p - b->p);
    b->p[b->len] = '\0';
    return 0;
}

static int sb_open_row(sbuf *b)
{
    if (b->rows > 0 && b->p[b->len - 1] == ']')
        b->len--; /* reopen an array closed by status_*_json() */
    return sb_raw(b, b->rows == 0 ? "[{" : ",{", 2);
}

static int sb_close_row(sbuf *b)
{
    if (sb_raw(b, "}", 1) != 0)
        return -1;
    b->rows++;
    return 0;
}

status_batch *status_batch_new(size_t byte_cap)
{
    status_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->ev.max = b->dl.max = byte_cap;
    return b;
}

void status_batch_free(status_batch *b)
{
    if (b == NULL)
        return;
    free(b->ev.p);
    free(b->dl.p);
    free(b);
}

void status_batch_reset(status_batch *b)
{
    b->ev.len = b->dl.len = 0;
    b->ev.rows = b->dl.rows = 0;
    if (b->ev.p)
        b->ev.p[0] = '\0';
    if (b->dl.p)
        b->dl.p[0] = '\0';
}

int status_add_event(status_batch *b, const event *ev)
{
    char created[TIMEUTIL_RFC3339_SIZE];
    sbuf *s = &b->ev;
    size_t mark = s->len;
    timeutil_format_rfc3339(ev->created_at, created, sizeof created);
    if (sb_open_row(s) != 0 || sb_field(s, "event_id", ev->event_id) != 0 ||
        sb_field(s, "type", ev->type) != 0 || sb_field(s, "user_id", ev->user_id) != 0 ||
        sb_field(s, "topic", ev->topic) != 0 ||
        sb_field(s, "priority", event_priority_name(ev->priority)) != 0 ||
        sb_field(s, "category", ev->category) != 0 ||
        sb_field(s, "broadcast_id", ev->broadcast_id[0] ? ev->broadcast_id : NULL) != 0 ||
        sb_field(s, "created_at", created) != 0 || sb_close_row(s) != 0) {
        s->len = mark;
        if (s->p)
            s->p[mark] = '\0';
        return -1;
    }
    return 0;
}

int status_add_items(status_batch *b, const event *ev, const fanout_item *items, size_t n)
{
    sbuf *s = &b->dl;
    for (size_t i = 0; i < n; i++) {
        const fanout_item *it = &items[i];
        char nb[TIMEUTIL_RFC3339_SIZE];
        size_t mark = s->len;
        if (sb_open_row(s) != 0 || sb_field(s, "k", it->idempotency_key) != 0 ||
            sb_field(s, "e", ev->event_id) != 0 || sb_field(s, "u", ev->user_id) != 0 ||
            sb_field(s, "c", delivery_channel_name(it->channel)) != 0 ||
            sb_field(s, "a", it->address) != 0 ||
            sb_field(s, "s", decide_action_status(it->action)) != 0 ||
            sb_field(s, "r", it->action == DECIDE_SKIP ? it->skip_reason : NULL) != 0 ||
            sb_field(s, "nb",
                     it->not_before_ms > 0
                         ? timeutil_format_rfc3339(it->not_before_ms, nb, sizeof nb)
                         : NULL) != 0 ||
            sb_close_row(s) != 0) {
            s->len = mark;
            if (s->p)
                s->p[mark] = '\0';
            return -1;
        }
    }
    return 0;
}

size_t status_event_count(const status_batch *b)
{
    return b->ev.rows;
}

size_t status_delivery_count(const status_batch *b)
{
    return b->dl.rows;
}

static const char *closed(sbuf *s)
{
    /* The arrays are closed on demand so that adding needs no bookkeeping. */
    if (s->rows == 0)
        return "[]";
    if (s->p[s->len - 1] != ']') {
        if (sb_reserve(s, 1) != 0)
            return NULL;
        s->p[s->len++] = ']';
        s->p[s->len] = '\0';
    }
    return s->p;
}

const char *status_events_json(status_batch *b)
{
    return closed(&b->ev);
}

const char *status_deliveries_json(status_batch *b)
{
    return closed(&b->dl);
}

pg_status status_write(status_batch *b, pg_conn *db, char *err, size_t errlen)
{
    if (b->ev.rows == 0 && b->dl.rows == 0)
        return PG_OK;
    const char *params[2] = {status_events_json(b), status_deliveries_json(b)};
    if (params[0] == NULL || params[1] == NULL) {
        snprintf(err, errlen, "status: out of memory");
        return PG_ERROR;
    }
    pg_status st = pg_prepare(db, "status_write", write_sql, 2, err, errlen);
    if (st != PG_OK)
        return st;
    return pg_exec_prepared(db, "status_write", 2, params, NULL, NULL, 0, NULL, err, errlen);
}

pg_status status_send(status_batch *b, PGconn *conn, char *err, size_t errlen)
{
    const char *params[2] = {status_events_json(b), status_deliveries_json(b)};
    if (params[0] == NULL || params[1] == NULL) {
        snprintf(err, errlen, "status: out of memory");
        return PG_ERROR;
    }
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "status: PostgreSQL connection down");
        return PG_RETRY;
    }
    /* Unnamed statement: one parse per part costs nothing next to the insert. */
    if (PQsendQueryParams(conn, write_sql, 2, NULL, params, NULL, NULL, 0) != 1) {
        snprintf(err, errlen, "status: send: %s", PQerrorMessage(conn));
        return PG_RETRY;
    }
    return PG_OK;
}

pg_status status_recv(PGconn *conn, char *err, size_t errlen)
{
    pg_status st = PG_OK;
    PGresult *r;
    int n = 0;
    if (conn == NULL)
        return PG_RETRY;
    while ((r = PQgetResult(conn)) != NULL && n++ < 16) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK && st == PG_OK) {
            snprintf(err, errlen, "status: insert: %s", PQresultErrorMessage(r));
            st = PQstatus(conn) == CONNECTION_OK ? PG_ERROR : PG_RETRY;
        }
        PQclear(r);
    }
    if (r != NULL)
        PQclear(r);
    if (st == PG_OK && PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "status: PostgreSQL connection lost");
        st = PG_RETRY;
    }
    return st;
}

/*
 * status: see status.h.
 */
#include "status.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "error.h"
#include "timeutil.h"

/*
 * Writes array literals directly rather than through JSON: at tens of
 * thousands of rows per second, the server parsing a JSON document per batch
 * (json_to_recordset) cost a fifth of the insert it fed; array_in on a
 * text[] is several times cheaper, and the client writes fewer bytes (no
 * field name per value).
 *
 * Each column is a growing buffer holding "{v1,v2" (closed with "}" on
 * demand); the columns of one table share one byte budget.
 */
typedef buf column;

#define MAX_COLUMNS STATUS_EVENT_COLUMNS

typedef struct table {
    column col[MAX_COLUMNS];
    size_t ncols;
    size_t bytes, max; /* capacity of all columns together, and its bound */
    size_t rows;
} table;

struct status_batch {
    table ev, dl;
    column planned; /* one event's planned deliveries, an array literal */
};

static const char write_sql[] =
    "WITH e AS ("
    "  INSERT INTO events (event_id, type, user_id, topic, priority, category, broadcast_id, "
    "                      created_at, planned, api_key_id) "
    "  SELECT e, t, u, tp, p, c, b, ca, pl::text[], k "
    "  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], "
    "              $6::text[], $7::uuid[], $8::timestamptz[], $9::text[], $10::bigint[]) "
    "       AS x(e, t, u, tp, p, c, b, ca, pl, k) "
    "  ON CONFLICT (event_id) DO NOTHING) "
    "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, status, "
    "                        skip_reason, not_before) "
    "SELECT * FROM unnest($11::text[], $12::uuid[], $13::text[], $14::text[], $15::text[], "
    "                     $16::text[], $17::text[], $18::timestamptz[]) "
    "ON CONFLICT (idempotency_key) DO NOTHING";

#define STATUS_PARAMS (STATUS_EVENT_COLUMNS + STATUS_DELIVERY_COLUMNS)

/*
 * Room for more bytes plus the closing "}" (buf keeps room for the NUL); t,
 * whose budget the growth counts against, may be NULL.  Growing the table's
 * columns past the budget fails.
 */
static int col_reserve(table *t, column *c, size_t more)
{
    size_t cap = c->cap;
    if (buf_reserve(c, more + 1) != 0)
        return -1;
    if (t == NULL || c->cap == cap)
        return 0;
    t->bytes += c->cap - cap;
    return t->bytes > t->max ? -1 : 0;
}

/*
 * Writes one element at p: NULL, or the value in double quotes with '"' and
 * '\\' escaped (array_in's rules; the literal travels as a parameter, so
 * nothing else needs quoting).  Room for 2 * strlen(v) + 3 bytes (5 for
 * NULL); returns the end.
 */
static char *put_elem(char *p, const char *v)
{
    if (v == NULL) {
        memcpy(p, "NULL", 4);
        return p + 4;
    }
    *p++ = '"';
    for (const char *s = v; *s; s++) {
        if (*s == '"' || *s == '\\')
            *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    return p;
}

static size_t elem_room(const char *v)
{
    return v ? 2 * strlen(v) + 3 : 5;
}

/* Appends one element to the column's array. */
static int col_add(table *t, column *c, const char *v)
{
    if (col_reserve(t, c, elem_room(v)) != 0)
        return -1;
    char *p = c->data + c->len;
    if (c->len > 0 && p[-1] == '}')
        p--; /* reopen an array closed by status_*_column() */
    *p++ = c->len == 0 ? '{' : ',';
    p = put_elem(p, v);
    *p = '\0';
    c->len = (size_t)(p - c->data);
    return 0;
}

/* Adds one row of t->ncols values; on failure the table is as before. */
static int table_add(table *t, const char *const v[])
{
    size_t mark[MAX_COLUMNS];
    for (size_t i = 0; i < t->ncols; i++)
        mark[i] = t->col[i].len;
    for (size_t i = 0; i < t->ncols; i++) {
        if (col_add(t, &t->col[i], v[i]) != 0) {
            for (size_t j = 0; j <= i; j++) {
                t->col[j].len = mark[j];
                if (t->col[j].data != NULL)
                    t->col[j].data[mark[j]] = '\0';
            }
            return -1;
        }
    }
    t->rows++;
    return 0;
}

/* The column's array literal, closed on demand so that adding needs no bookkeeping. */
static const char *table_column(table *t, size_t i)
{
    if (i >= t->ncols)
        return NULL;
    column *c = &t->col[i];
    if (t->rows == 0 || c->len == 0)
        return "{}";
    if (c->data[c->len - 1] != '}') {
        if (col_reserve(t, c, 1) != 0)
            return NULL;
        c->data[c->len++] = '}';
        c->data[c->len] = '\0';
    }
    return c->data;
}

static void table_reset(table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        buf_reset(&t->col[i]);
    t->rows = 0;
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        buf_free(&t->col[i]);
}

/* The statement's parameters; -1 when out of memory. */
static int params_of(status_batch *b, const char *params[STATUS_PARAMS])
{
    for (size_t i = 0; i < STATUS_EVENT_COLUMNS; i++)
        if ((params[i] = table_column(&b->ev, i)) == NULL)
            return -1;
    for (size_t i = 0; i < STATUS_DELIVERY_COLUMNS; i++)
        if ((params[STATUS_EVENT_COLUMNS + i] = table_column(&b->dl, i)) == NULL)
            return -1;
    return 0;
}

status_batch *status_batch_new(size_t byte_cap)
{
    status_batch *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->ev.max = b->dl.max = byte_cap;
    b->ev.ncols = STATUS_EVENT_COLUMNS;
    for (size_t i = 0; i < MAX_COLUMNS; i++) {
        buf_init(&b->ev.col[i], byte_cap);
        buf_init(&b->dl.col[i], byte_cap);
    }
    buf_init(&b->planned, byte_cap);
    b->dl.ncols = STATUS_DELIVERY_COLUMNS;
    return b;
}

void status_batch_free(status_batch *b)
{
    if (b == NULL)
        return;
    table_free(&b->ev);
    table_free(&b->dl);
    buf_free(&b->planned);
    free(b);
}

void status_batch_reset(status_batch *b)
{
    table_reset(&b->ev);
    table_reset(&b->dl);
}

/*
 * The planned deliveries of items[0..n) as a two-dimensional array literal,
 * {{"email","key","address"},...}, in b->planned; *out is NULL (SQL NULL)
 * when nothing is planned, and -1 means out of memory.  The literal becomes
 * one element of the events table's planned column, where col_add quotes it
 * once more.
 */
static int planned_literal(status_batch *b, const fanout_item *items, size_t n, const char **out)
{
    column *c = &b->planned;
    buf_reset(c);
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (items[i].action != DECIDE_SEND)
            continue;
        const char *v[3] = {delivery_channel_name(items[i].channel), items[i].idempotency_key,
                            items[i].address};
        if (col_reserve(NULL, c, elem_room(v[0]) + elem_room(v[1]) + elem_room(v[2]) + 5) != 0)
            return -1;
        char *p = c->data + c->len;
        *p++ = c->len == 0 ? '{' : ',';
        *p++ = '{';
        for (size_t k = 0; k < 3; k++) {
            if (k > 0)
                *p++ = ',';
            p = put_elem(p, v[k]);
        }
        *p++ = '}';
        *p = '\0';
        c->len = (size_t)(p - c->data);
    }
    if (c->len == 0)
        return 0;
    c->data[c->len++] = '}'; /* col_reserve left room for it */
    c->data[c->len] = '\0';
    *out = c->data;
    return 0;
}

/* Deliveries rows for items[0..n) of ev; SEND items only when all is set. */
static int add_deliveries(status_batch *b, const event *ev, const fanout_item *items, size_t n,
                          bool all)
{
    for (size_t i = 0; i < n; i++) {
        const fanout_item *it = &items[i];
        if (it->action == DECIDE_SEND && !all)
            continue;
        char nb[TIMEUTIL_RFC3339_SIZE];
        const char *d[STATUS_DELIVERY_COLUMNS] = {
            it->idempotency_key,
            ev->event_id,
            ev->user_id,
            delivery_channel_name(it->channel),
            it->address,
            decide_action_status(it->action),
            it->action == DECIDE_SEND || it->action == DECIDE_SCHEDULE ? NULL : it->skip_reason,
            it->not_before_ms > 0 ? timeutil_format_rfc3339(it->not_before_ms, nb, sizeof nb)
                                  : NULL,
        };
        if (table_add(&b->dl, d) != 0)
            return -1;
    }
    return 0;
}

int status_add_event(status_batch *b, const event *ev, const fanout_item *items, size_t n)
{
    char created[TIMEUTIL_RFC3339_SIZE], key[24];
    timeutil_format_rfc3339(ev->created_at, created, sizeof created);
    snprintf(key, sizeof key, "%" PRId64, ev->api_key_id);
    /*
     * An event redelivered on purpose (replay --redeliver, generation > 0)
     * finds its events row already there (ON CONFLICT DO NOTHING keeps the
     * first generation's planned deliveries), so its own planned deliveries
     * get pending rows, as everything did before the planned column.
     */
    bool in_row = ev->generation == 0;
    const char *planned = NULL;
    if (in_row && planned_literal(b, items, n, &planned) != 0)
        return -1;
    const char *v[STATUS_EVENT_COLUMNS] = {
        ev->event_id,
        ev->type,
        ev->user_id,
        ev->topic,
        event_priority_name(ev->priority),
        ev->category,
        ev->broadcast_id[0] ? ev->broadcast_id : NULL,
        created,
        planned,
        ev->api_key_id > 0 ? key : NULL,
    };
    if (table_add(&b->ev, v) != 0)
        return -1;
    return add_deliveries(b, ev, items, n, !in_row);
}

int status_add_deliveries(status_batch *b, const event *ev, const fanout_item *items, size_t n)
{
    return add_deliveries(b, ev, items, n, true);
}

size_t status_event_count(const status_batch *b)
{
    return b->ev.rows;
}

size_t status_delivery_count(const status_batch *b)
{
    return b->dl.rows;
}

const char *status_events_column(status_batch *b, size_t col)
{
    return table_column(&b->ev, col);
}

const char *status_deliveries_column(status_batch *b, size_t col)
{
    return table_column(&b->dl, col);
}

pg_status status_write(status_batch *b, pg_conn *db, char *err, size_t errlen)
{
    const char *params[STATUS_PARAMS];
    if (b->ev.rows == 0 && b->dl.rows == 0)
        return PG_OK;
    if (params_of(b, params) != 0) {
        error_set(err, errlen, "status: out of memory");
        return PG_ERROR;
    }
    pg_status st = pg_prepare(db, "status_write", write_sql, STATUS_PARAMS, err, errlen);
    if (st != PG_OK)
        return st;
    return pg_exec_prepared(db, "status_write", STATUS_PARAMS, params, NULL, NULL, 0, NULL, err,
                            errlen);
}

pg_status status_send(status_batch *b, PGconn *conn, char *err, size_t errlen)
{
    const char *params[STATUS_PARAMS];
    if (params_of(b, params) != 0) {
        error_set(err, errlen, "status: out of memory");
        return PG_ERROR;
    }
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        error_set(err, errlen, "status: PostgreSQL connection down");
        return PG_RETRY;
    }
    /* Unnamed statement: one parse per part costs nothing next to the insert. */
    if (PQsendQueryParams(conn, write_sql, STATUS_PARAMS, NULL, params, NULL, NULL, 0) != 1) {
        error_set(err, errlen, "status: send: %s", PQerrorMessage(conn));
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
        ExecStatusType rs = PQresultStatus(r);
        if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && st == PG_OK) {
            error_set(err, errlen, "status: insert: %s", PQresultErrorMessage(r));
            st = PQstatus(conn) == CONNECTION_OK ? PG_ERROR : PG_RETRY;
        }
        PQclear(r);
    }
    if (r != NULL)
        PQclear(r);
    if (st == PG_OK && PQstatus(conn) != CONNECTION_OK) {
        error_set(err, errlen, "status: PostgreSQL connection lost");
        st = PG_RETRY;
    }
    return st;
}

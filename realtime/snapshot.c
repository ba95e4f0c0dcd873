/*
 * snapshot: see snapshot.h.
 */
#include "snapshot.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "pg.h"

#define LOGCTX "realtime"

/* Changes replayed at most; a larger gap is answered with a reset. */
#define CATCHUP_MAX 200
_Static_assert(CATCHUP_MAX + 2 <= OUTQ_INITIAL_MAX, "the counts, the catch-up and no more");

static const char STATE_SQL[] = "SELECT seq, unread, unseen FROM inbox_state WHERE user_id = $1";

/*
 * What changed after $2, one row per change (seq) with its messages; the
 * inner LIMIT reads one message more than a catch-up replays, so a larger
 * gap shows without reading it.  A change is "message" when none of its
 * messages has been marked since it arrived, otherwise "state".
 */
static const char CATCHUP_SQL[] =
    "SELECT seq, count(*), json_agg(message_id::text ORDER BY message_id)::text, "
    "bool_and(seen_at IS NULL AND read_at IS NULL AND archived_at IS NULL "
    "AND interacted_at IS NULL) "
    "FROM (SELECT seq, message_id, seen_at, read_at, archived_at, interacted_at "
    "FROM inbox_messages WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT 201) m "
    "GROUP BY seq ORDER BY seq";

struct snapshot_pool {
    snapshot_options opt;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    snapshot_job *todo, *todo_tail, *done;
    bool stopping;
    int nthreads;
    struct worker {
        snapshot_pool *pool;
        pthread_t thread;
        bool started;
        pg_conn *pg;
    } * workers;
};

snapshot_job *snapshot_job_new(void *owner, const char *user_id, int64_t last_event_id)
{
    snapshot_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->owner = owner;
    snprintf(j->user_id, sizeof j->user_id, "%s", user_id);
    j->last_event_id = last_event_id;
    return j;
}

void snapshot_job_free(snapshot_job *j)
{
    if (j == NULL)
        return;
    for (size_t i = 0; i < j->nframes; i++)
        rtframe_unref(j->frames[i]);
    free(j);
}

static int add_frame(snapshot_job *j, rtframe *f)
{
    if (f == NULL || j->nframes == OUTQ_INITIAL_MAX) {
        rtframe_unref(f);
        return error_set(j->err, sizeof j->err, "out of memory");
    }
    j->frames[j->nframes++] = f;
    return 0;
}

/* The catch-up after j->last_event_id (or a reset): 0, or -1 with j->err. */
static int read_catchup(pg_conn *pg, snapshot_job *j, const rtframe_counts *now)
{
    char since[24];
    snprintf(since, sizeof since, "%" PRId64, j->last_event_id);
    const char *params[] = {j->user_id, since};
    PGresult *res = NULL;
    int rc = -1;
    if (pg_exec_prepared(pg, "rt_catchup", 2, params, NULL, NULL, 0, &res, j->err, sizeof j->err) !=
        PG_OK)
        goto out;
    long total = 0;
    for (int i = 0; i < PQntuples(res); i++)
        total += atol(PQgetvalue(res, i, 1));
    if (total > CATCHUP_MAX) {
        rc = add_frame(j, rtframe_reset_new(now));
        goto out;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *ids = json_loads(PQgetvalue(res, i, 2), 0, NULL);
        const char *kind = PQgetvalue(res, i, 3)[0] == 't' ? "message" : "state";
        rtframe *f = rtframe_change_new(kind, atoll(PQgetvalue(res, i, 0)), ids, now);
        json_decref(ids);
        if (add_frame(j, f) != 0)
            goto out;
    }
    rc = 0;
out:
    PQclear(res);
    return rc;
}

/* The counts and the catch-up, read in one snapshot of the database. */
static void run_job(snapshot_pool *p, pg_conn *pg, snapshot_job *j)
{
    char sql[160];
    PGresult *res = NULL;
    rtframe_counts now = {0};
    const char *params[] = {j->user_id};
    snprintf(sql, sizeof sql,
             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = %ld",
             p->opt.statement_ms);
    pg_status st = pg_exec(pg, sql, j->err, sizeof j->err);
    if (st == PG_OK)
        st =
            pg_exec_prepared(pg, "rt_state", 1, params, NULL, NULL, 0, &res, j->err, sizeof j->err);
    if (p->opt.pg_up != NULL)
        atomic_store(p->opt.pg_up, st != PG_DOWN);
    if (st == PG_OK) {
        if (PQntuples(res) == 1) {
            now.seq = atoll(PQgetvalue(res, 0, 0));
            now.unread = atoll(PQgetvalue(res, 0, 1));
            now.unseen = atoll(PQgetvalue(res, 0, 2));
        }
        j->ok =
            add_frame(j, rtframe_counts_new(&now)) == 0 &&
            (j->last_event_id < 0 || j->last_event_id >= now.seq || read_catchup(pg, j, &now) == 0);
    }
    PQclear(res);
    if (pg_in_transaction(pg)) {
        char why[256];
        if (pg_rollback(pg, why, sizeof why) != PG_OK)
            LOG_WARN(LOGCTX, "rollback: %s", why);
    }
    if (!j->ok)
        for (; j->nframes > 0; j->nframes--)
            rtframe_unref(j->frames[j->nframes - 1]);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    snapshot_pool *p = w->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (p->todo == NULL && !p->stopping)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->stopping)
            break;
        snapshot_job *j = p->todo;
        p->todo = j->next;
        if (p->todo == NULL)
            p->todo_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        run_job(p, w->pg, j);
        pthread_mutex_lock(&p->lock);
        j->next = p->done;
        p->done = j;
        pthread_mutex_unlock(&p->lock);
        p->opt.wake(p->opt.wake_ctx);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int worker_connect(snapshot_pool *p, struct worker *w, char *err, size_t errlen)
{
    pg_options opt = {.connect_timeout_s = 2,
                      .max_wait_ms = (int)p->opt.statement_ms,
                      .application_name = "herald-realtime",
                      .stop = p->opt.stop};
    w->pool = p;
    w->pg = pg_connect(p->opt.database_url, &opt, err, errlen);
    if (w->pg == NULL)
        return -1;
    if (pg_prepare(w->pg, "rt_state", STATE_SQL, 1, err, errlen) != PG_OK ||
        pg_prepare(w->pg, "rt_catchup", CATCHUP_SQL, 2, err, errlen) != PG_OK)
        return -1;
    return 0;
}

snapshot_pool *snapshot_pool_new(const snapshot_options *opt, char *err, size_t errlen)
{
    snapshot_pool *p = calloc(1, sizeof *p);
    if (p == NULL || (p->workers = calloc((size_t)opt->threads, sizeof *p->workers)) == NULL) {
        free(p);
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    p->opt = *opt;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; i < opt->threads; i++, p->nthreads++) {
        if (worker_connect(p, &p->workers[i], err, errlen) != 0)
            goto fail;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            error_set(err, errlen, "cannot start a query thread");
            goto fail;
        }
        p->workers[i].started = true;
    }
    return p;
fail:
    p->nthreads++; /* the one that failed holds a connection to close */
    snapshot_pool_free(p);
    return NULL;
}

void snapshot_pool_submit(snapshot_pool *p, snapshot_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->todo_tail != NULL)
        p->todo_tail->next = j;
    else
        p->todo = j;
    p->todo_tail = j;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

size_t snapshot_pool_take(snapshot_pool *p, snapshot_job **out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    while (n < max && p->done != NULL) {
        out[n] = p->done;
        p->done = p->done->next;
        out[n++]->next = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

static void free_list(snapshot_job *j)
{
    while (j != NULL) {
        snapshot_job *next = j->next;
        snapshot_job_free(j);
        j = next;
    }
}

void snapshot_pool_stop(snapshot_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++) {
        if (p->workers[i].started)
            pthread_join(p->workers[i].thread, NULL);
        p->workers[i].started = false;
        pg_close(p->workers[i].pg);
        p->workers[i].pg = NULL;
    }
}

void snapshot_pool_free(snapshot_pool *p)
{
    if (p == NULL)
        return;
    snapshot_pool_stop(p);
    free_list(p->todo);
    free_list(p->done);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p->workers);
    free(p);
}

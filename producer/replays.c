/*
 * replays: run threads, their slots, and the row each keeps up to date.
 */
#include "replays.h"

#include "error.h"
#include "ids.h"
#include "log.h"
#include "pg.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROGRESS_EVERY_MS 500

typedef struct replays_run replays_run;

/* One slot: a thread and what it replays. */
struct replays_run {
    replays *owner;
    pthread_t thread;
    bool used;
    atomic_bool finished; /* the thread returned: the slot may be joined and reused */
    char id[ID_UUID_SIZE];
    char *user, *type;
    replays_request req;
    pg_conn *db;
    int64_t last_update_ms;
};

struct replays {
    char *brokers, *database_url, *events_topic;
    config_kafka_props props;
    int timeout_ms;
    atomic_bool stopping;
    pthread_mutex_t mu; /* guards the slots */
    replays_run runs[REPLAYS_MAX_RUNNING];
};

replays *replays_new(const replays_config *cfg)
{
    replays *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->timeout_ms = cfg->timeout_ms;
    r->brokers = strdup(cfg->brokers);
    r->database_url = strdup(cfg->database_url);
    r->events_topic = strdup(cfg->events_topic);
    if (r->brokers == NULL || r->database_url == NULL || r->events_topic == NULL ||
        config_kafka_props_copy(cfg->props, &r->props) != 0) {
        replays_free(r);
        return NULL;
    }
    return r;
}

/* Joins a finished run's thread and frees what it held; the slot is free after. */
static void reap(replays_run *run)
{
    pthread_join(run->thread, NULL);
    free(run->user);
    free(run->type);
    run->user = run->type = NULL;
    run->used = false;
}

void replays_free(replays *r)
{
    if (r == NULL)
        return;
    atomic_store(&r->stopping, true);
    for (size_t i = 0; i < REPLAYS_MAX_RUNNING; i++)
        if (r->runs[i].used)
            reap(&r->runs[i]);
    pthread_mutex_destroy(&r->mu);
    config_kafka_props_free(&r->props);
    free(r->brokers);
    free(r->database_url);
    free(r->events_topic);
    free(r);
}

/* The job of req over r's topic. */
static replayrun_job job_of(const replays *r, const replays_request *req, bool dry_run)
{
    return (replayrun_job){
        .brokers = r->brokers,
        .props = &r->props,
        .topic = r->events_topic,
        .filter = req->filter,
        .redeliver = req->redeliver,
        .dry_run = dry_run,
        .stamp = replay_stamp(timeutil_now_ms()),
        .timeout_ms = r->timeout_ms,
    };
}

replayrun_result replays_count(replays *r, const replays_request *req, int64_t *events, char *err,
                               size_t errlen)
{
    replayrun_counts c;
    replayrun_job job = job_of(r, req, true);
    replayrun_result res = replayrun_run(&job, NULL, NULL, &c, err, errlen);
    *events = c.matched;
    return res;
}

/* Writes the run's counts, and with state its end, to its row; logs a failure. */
static void update_row(replays_run *run, const replayrun_counts *c, const char *state,
                       const char *error)
{
    static const char sql[] =
        "UPDATE replay_runs SET scanned = $2, matched = $3, published = $4, failed = $5,"
        " state = coalesce($6, state), error = coalesce($7, error), updated_at = now(),"
        " finished_at = CASE WHEN $6 IS NULL THEN NULL ELSE now() END"
        " WHERE replay_id = $1::uuid";
    char err[256];
    PGresult *res = NULL;
    pg_params p = {0};
    if (run->db == NULL)
        return;
    pg_params_text(&p, run->id);
    pg_params_int(&p, c->scanned);
    pg_params_int(&p, c->matched);
    pg_params_int(&p, c->published);
    pg_params_int(&p, c->failed);
    pg_params_text(&p, state);
    pg_params_text(&p, error);
    if (pg_query_params(run->db, sql, &p, &res, err, sizeof err) != PG_OK)
        LOG_WARN(run->id, "replay progress not recorded: %s", err);
    PQclear(res);
    pg_params_free(&p);
}

/* Progress: the row at most every PROGRESS_EVERY_MS; false (stop) while the gateway stops. */
static bool on_progress(void *opaque, const replayrun_counts *c)
{
    replays_run *run = opaque;
    int64_t now = timeutil_monotonic_ms();
    if (now - run->last_update_ms >= PROGRESS_EVERY_MS) {
        run->last_update_ms = now;
        update_row(run, c, NULL, NULL);
    }
    return !atomic_load(&run->owner->stopping);
}

static void on_problem(void *opaque, const char *message)
{
    replays_run *run = opaque;
    LOG_WARN(run->id, "replay: %s", message);
}

/* Runs the replay and records how it ended. */
static void *run_main(void *arg)
{
    replays_run *run = arg;
    replays *r = run->owner;
    char err[512] = "";
    kafka_producer *p = NULL;
    replayrun_counts c = {0};
    const char *why = NULL;
    const replayrun_hooks hooks = {.opaque = run, .progress = on_progress, .problem = on_problem};
    replayrun_job job = job_of(r, &run->req, false);
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", r->timeout_ms);
    config_kv timeout_kv = {(char *)"message.timeout.ms", timeout};
    config_kafka_props defaults = {&timeout_kv, 1};

    run->db = pg_connect(r->database_url, NULL, err, sizeof err);
    if (run->db == NULL) {
        LOG_ERROR(run->id, "replay cannot record its progress: %s", err);
        goto out;
    }
    p = kafka_producer_new(r->brokers, &defaults, &r->props, NULL, err, sizeof err);
    if (p == NULL) {
        why = err;
        goto out;
    }
    replayrun_result res = replayrun_run(&job, p, &hooks, &c, err, sizeof err);
    if (atomic_load(&r->stopping))
        why = "the gateway stopped";
    else if (res != REPLAYRUN_OK)
        why = err;
    else if (!replayrun_complete(&job, &c))
        why = "some events were not re-published";
    if (run->req.redeliver)
        replayrun_wait_next_stamp(job.stamp);
out:
    update_row(run, &c, why == NULL ? "done" : "failed", why);
    kafka_producer_destroy(p);
    pg_close(run->db);
    run->db = NULL;
    atomic_store(&run->finished, true);
    return NULL;
}

/* A slot for a new run, reaping the finished ones; NULL when all are busy. */
static replays_run *free_slot(replays *r)
{
    replays_run *slot = NULL;
    for (size_t i = 0; i < REPLAYS_MAX_RUNNING; i++) {
        replays_run *run = &r->runs[i];
        if (run->used && atomic_load(&run->finished))
            reap(run);
        if (!run->used && slot == NULL)
            slot = run;
    }
    return slot;
}

replays_status replays_start(replays *r, const char *id, const replays_request *req, char *err,
                             size_t errlen)
{
    replays_status st = REPLAYS_FAILED;
    pthread_mutex_lock(&r->mu);
    replays_run *run = free_slot(r);
    if (run == NULL) {
        error_set(err, errlen, "%d replays are running already", REPLAYS_MAX_RUNNING);
        st = REPLAYS_BUSY;
        goto out;
    }
    *run = (replays_run){.owner = r, .req = *req};
    snprintf(run->id, sizeof run->id, "%s", id);
    run->user = req->filter.user != NULL ? strdup(req->filter.user) : NULL;
    run->type = req->filter.type != NULL ? strdup(req->filter.type) : NULL;
    if ((req->filter.user != NULL && run->user == NULL) ||
        (req->filter.type != NULL && run->type == NULL)) {
        error_set(err, errlen, "out of memory");
        goto fail;
    }
    run->req.filter.user = run->user;
    run->req.filter.type = run->type;
    if (pthread_create(&run->thread, NULL, run_main, run) != 0) {
        error_set(err, errlen, "cannot start a thread");
        goto fail;
    }
    run->used = true;
    st = REPLAYS_STARTED;
    goto out;
fail:
    free(run->user);
    free(run->type);
    *run = (replays_run){0};
out:
    pthread_mutex_unlock(&r->mu);
    return st;
}

/*
 * pgpool: fixed slots, one mutex, one condition variable.
 */
#include "pgpool.h"

#include "error.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
    pg_conn *conn;
    bool busy;
    bool ready; /* setup ran on this connection */
} slot;

struct pgpool {
    char *url;
    pg_options opt;
    pgpool_setup_fn setup;
    pthread_mutex_t lock;
    pthread_cond_t freed;
    size_t n;
    slot slots[];
};

pgpool *pgpool_new(const char *url, size_t size, int reconnect_wait_ms, pgpool_setup_fn setup,
                   char *err, size_t errlen)
{
    if (size == 0)
        size = 1;
    pgpool *p = calloc(1, sizeof *p + size * sizeof(slot));
    if (p == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    p->url = strdup(url);
    if (p->url == NULL) {
        free(p);
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    p->n = size;
    p->setup = setup;
    p->opt.connect_timeout_s = 2;
    p->opt.max_wait_ms = reconnect_wait_ms;
    p->opt.backoff_initial_ms = 50;
    p->opt.backoff_max_ms = 500;
    p->opt.application_name = "herald-gateway";
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    return p;
}

static void give_back(pgpool *p, size_t i)
{
    pthread_mutex_lock(&p->lock);
    p->slots[i].busy = false;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

pg_conn *pgpool_acquire(pgpool *p, int wait_ms, char *err, size_t errlen)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    size_t i = 0;
    bool found = false;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        /* Prefer a slot that is already connected. */
        for (size_t k = 0; k < p->n && !found; k++)
            if (!p->slots[k].busy && p->slots[k].conn != NULL) {
                i = k;
                found = true;
            }
        for (size_t k = 0; k < p->n && !found; k++)
            if (!p->slots[k].busy) {
                i = k;
                found = true;
            }
        if (found)
            break;
        if (pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT)
            break;
    }
    if (found)
        p->slots[i].busy = true;
    pthread_mutex_unlock(&p->lock);
    if (!found) {
        error_set(err, errlen, "no database connection free within %d ms", wait_ms);
        return NULL;
    }

    slot *s = &p->slots[i];
    if (s->conn == NULL) {
        s->conn = pg_connect(p->url, &p->opt, err, errlen);
        s->ready = false;
        if (s->conn == NULL) {
            give_back(p, i);
            return NULL;
        }
    }
    if (!s->ready) {
        if (p->setup != NULL && p->setup(s->conn, err, errlen) != 0) {
            /* A broken connection is retried next time; keep it, it reconnects. */
            give_back(p, i);
            return NULL;
        }
        s->ready = true;
    }
    return s->conn;
}

void pgpool_release(pgpool *p, pg_conn *c)
{
    if (p == NULL || c == NULL)
        return;
    if (pg_in_transaction(c)) {
        char err[256];
        if (pg_rollback(c, err, sizeof err) != PG_OK)
            LOG_WARN("pgpool", "rollback of an abandoned transaction failed: %s", err);
    }
    for (size_t i = 0; i < p->n; i++)
        if (p->slots[i].conn == c) {
            give_back(p, i);
            return;
        }
}

void pgpool_free(pgpool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        pg_close(p->slots[i].conn);
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
    free(p->url);
    free(p);
}

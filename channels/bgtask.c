/*
 * bgtask: see bgtask.h.  A mutex and a condition variable guard a
 * one-slot mailbox: IDLE -> SUBMITTED -> DONE -> (taken) IDLE.
 */
#include "bgtask.h"
#include "error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { SLOT_IDLE, SLOT_SUBMITTED, SLOT_DONE } slot_state;

struct bgtask {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    slot_state state;
    bool stop;
    void *arg;
    bgtask_fn fn;
    void *ctx;
    int wake_fd;
};

static void *run(void *p)
{
    bgtask *t = p;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->state != SLOT_SUBMITTED && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->state != SLOT_SUBMITTED)
            break;
        void *arg = t->arg;
        pthread_mutex_unlock(&t->mu);
        t->fn(arg, t->ctx);
        pthread_mutex_lock(&t->mu);
        t->state = SLOT_DONE;
        pthread_cond_broadcast(&t->cv);
        /* The loop may be asleep in poll: tell it (a full pipe already says so). */
        (void)!write(t->wake_fd, "d", 1);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

bgtask *bgtask_new(bgtask_fn fn, void *ctx, int wake_fd, char *err, size_t errlen)
{
    bgtask *t = calloc(1, sizeof *t);
    if (t == NULL) {
        error_set(err, errlen, "out of memory");
        return NULL;
    }
    t->fn = fn;
    t->ctx = ctx;
    t->wake_fd = wake_fd;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    int rc = pthread_create(&t->thread, NULL, run, t);
    if (rc != 0) {
        error_set(err, errlen, "pthread_create: %s", strerror(rc));
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        free(t);
        return NULL;
    }
    return t;
}

bool bgtask_busy(bgtask *t)
{
    pthread_mutex_lock(&t->mu);
    bool busy = t->state != SLOT_IDLE;
    pthread_mutex_unlock(&t->mu);
    return busy;
}

void bgtask_submit(bgtask *t, void *arg)
{
    pthread_mutex_lock(&t->mu);
    t->arg = arg;
    t->state = SLOT_SUBMITTED;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

void *bgtask_take(bgtask *t)
{
    void *arg = NULL;
    pthread_mutex_lock(&t->mu);
    if (t->state == SLOT_DONE) {
        arg = t->arg;
        t->arg = NULL;
        t->state = SLOT_IDLE;
    }
    pthread_mutex_unlock(&t->mu);
    return arg;
}

void bgtask_wait(bgtask *t)
{
    pthread_mutex_lock(&t->mu);
    while (t->state == SLOT_SUBMITTED)
        pthread_cond_wait(&t->cv, &t->mu);
    pthread_mutex_unlock(&t->mu);
}

void bgtask_free(bgtask *t, void **leftover)
{
    if (t == NULL)
        return;
    bgtask_wait(t);
    pthread_mutex_lock(&t->mu);
    t->stop = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->thread, NULL);
    if (leftover)
        *leftover = t->state == SLOT_DONE ? t->arg : NULL;
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

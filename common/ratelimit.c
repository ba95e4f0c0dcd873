/*
 * ratelimit: token bucket and a bounded, locked table of them keyed by
 * string (see ratelimit.h).  The table is an lru_cache of buckets, which
 * gives it O(1) lookups and least-recently-used eviction.
 */
#include "ratelimit.h"

#include "lru.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

struct ratelimit_bucket {
    double rate_per_ms; /* 0 = unlimited */
    double burst;
    double tokens;
    int64_t last_ms; /* when tokens was last brought up to date */
};

struct ratelimit_table {
    pthread_mutex_t mu;
    lru_cache *buckets;
    double rate_per_s;
    double burst;
};

/* Refill arithmetic is in doubles: after waiting exactly the computed time
 * the sum can land a hair under n.  Forgive that much. */
static double slack(double n)
{
    return 1e-9 * (n > 1.0 ? n : 1.0);
}

static void bucket_init(ratelimit_bucket *tb, double rate_per_s, double burst, int64_t now_ms)
{
    /* !(x > 0) also catches NaN. */
    if (!(rate_per_s > 0) || isinf(rate_per_s))
        rate_per_s = 0;
    if (!(burst > 0))
        burst = rate_per_s > 1.0 ? rate_per_s : 1.0;
    if (burst < 1.0)
        burst = 1.0;
    tb->rate_per_ms = rate_per_s / 1000.0;
    tb->burst = burst;
    tb->tokens = burst;
    tb->last_ms = now_ms;
}

static double tokens_at(const ratelimit_bucket *tb, int64_t now_ms)
{
    if (now_ms <= tb->last_ms)
        return tb->tokens;
    double t = tb->tokens + (double)(now_ms - tb->last_ms) * tb->rate_per_ms;
    return t < tb->burst ? t : tb->burst;
}

static bool bucket_take(ratelimit_bucket *tb, int64_t now_ms, double n)
{
    if (tb->rate_per_ms == 0)
        return true;
    if (now_ms > tb->last_ms) {
        tb->tokens = tokens_at(tb, now_ms);
        tb->last_ms = now_ms;
    }
    if (tb->tokens + slack(n) < n)
        return false;
    tb->tokens -= n;
    if (tb->tokens < 0)
        tb->tokens = 0;
    return true;
}

static int64_t bucket_wait_ms(const ratelimit_bucket *tb, int64_t now_ms, double n)
{
    if (tb->rate_per_ms == 0)
        return 0;
    if (n > tb->burst + slack(n))
        return -1;
    double missing = n - tokens_at(tb, now_ms);
    if (missing <= slack(n))
        return 0;
    double ms = ceil(missing / tb->rate_per_ms);
    return ms >= 9.0e18 ? INT64_MAX : (int64_t)ms;
}

ratelimit_bucket *ratelimit_new(double rate_per_s, double burst, int64_t now_ms)
{
    ratelimit_bucket *tb = malloc(sizeof(*tb));
    if (tb == NULL)
        return NULL;
    bucket_init(tb, rate_per_s, burst, now_ms);
    return tb;
}

void ratelimit_free(ratelimit_bucket *tb)
{
    free(tb);
}

bool ratelimit_take(ratelimit_bucket *tb, int64_t now_ms, double n)
{
    return bucket_take(tb, now_ms, n);
}

int64_t ratelimit_wait_ms(const ratelimit_bucket *tb, int64_t now_ms, double n)
{
    return bucket_wait_ms(tb, now_ms, n);
}

double ratelimit_tokens(const ratelimit_bucket *tb, int64_t now_ms)
{
    if (tb->rate_per_ms == 0)
        return tb->burst;
    return tokens_at(tb, now_ms);
}

ratelimit_table *ratelimit_table_new(double rate_per_s, double burst, size_t max_keys)
{
    ratelimit_table *t = NULL;
    ratelimit_table *ret = NULL;

    if (max_keys == 0)
        goto out;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto out;
    t->buckets = lru_new(max_keys, 0, free);
    if (t->buckets == NULL || pthread_mutex_init(&t->mu, NULL) != 0)
        goto out;
    t->rate_per_s = rate_per_s;
    t->burst = burst;
    ret = t;
    t = NULL;
out:
    if (t != NULL)
        lru_free(t->buckets);
    free(t);
    return ret;
}

void ratelimit_table_free(ratelimit_table *t)
{
    if (t == NULL)
        return;
    lru_free(t->buckets);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

bool ratelimit_table_take(ratelimit_table *t, const char *key, int64_t now_ms, double n,
                          int64_t *wait_ms)
{
    bool ok = true;

    pthread_mutex_lock(&t->mu);
    ratelimit_bucket *tb = lru_get(t->buckets, key, now_ms);
    if (tb == NULL) {
        tb = malloc(sizeof(*tb));
        if (tb == NULL)
            goto out;
        bucket_init(tb, t->rate_per_s, t->burst, now_ms);
        if (lru_put(t->buckets, key, tb, sizeof(*tb), LRU_NEVER) != 0) {
            free(tb);
            goto out;
        }
    }
    ok = bucket_take(tb, now_ms, n);
    if (!ok && wait_ms != NULL)
        *wait_ms = bucket_wait_ms(tb, now_ms, n);
out:
    pthread_mutex_unlock(&t->mu);
    return ok;
}

size_t ratelimit_table_size(ratelimit_table *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = lru_count(t->buckets);
    pthread_mutex_unlock(&t->mu);
    return n;
}

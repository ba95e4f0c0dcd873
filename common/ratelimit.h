/*
 * ratelimit: token buckets, alone or one per key.
 *
 * A bucket holds up to `burst` tokens and gains `rate` tokens per second;
 * a call that takes n tokens goes ahead when n are there.  A fresh bucket is
 * full, so a quiet client may burst.  Rate 0 (or below) means unlimited.
 * Workers use one bucket per provider (HERALD_<CHANNEL>_RATE) and pause
 * their partitions for ratelimit_wait_ms(); the gateway keeps a table of
 * buckets keyed by API key and answers 429 with Retry-After.
 *
 * Pure logic: the caller passes now_ms from a monotonic clock; a now_ms
 * earlier than one already seen adds no tokens (it never removes any).
 * A single bucket is not thread-safe; a table is (one mutex), since the
 * gateway serves requests on several threads.
 */
#ifndef HERALD_RATELIMIT_H
#define HERALD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit_bucket ratelimit_bucket;
typedef struct ratelimit_table ratelimit_table;

/*
 * Creates a full bucket.  rate_per_s <= 0 means unlimited.  burst <= 0
 * takes the default max(1, rate_per_s), one second's worth; a burst below 1
 * is raised to 1 so that single tokens can pass.  Returns NULL when out of
 * memory.
 */
ratelimit_bucket *ratelimit_new(double rate_per_s, double burst, int64_t now_ms)
    __attribute__((warn_unused_result));
void ratelimit_free(ratelimit_bucket *tb);

/* Takes n tokens if they are all there; returns whether it did. */
bool ratelimit_take(ratelimit_bucket *tb, int64_t now_ms, double n);

/*
 * Milliseconds until n tokens will be there (0 if they are now), rounded
 * up, so a take at now_ms + the result succeeds if nothing else took
 * tokens meanwhile.  -1 when n exceeds the burst: that many can never be
 * taken at once.
 */
int64_t ratelimit_wait_ms(const ratelimit_bucket *tb, int64_t now_ms, double n);

/* Tokens there at now_ms (for tests and gauges); unlimited buckets report
 * their burst. */
double ratelimit_tokens(const ratelimit_bucket *tb, int64_t now_ms);

/*
 * A table of buckets, all with the same rate and burst, holding at most
 * max_keys keys (at least 1).  When full, the least recently used key is
 * forgotten; that costs nothing when it had been idle long enough to refill,
 * and at worst grants it a fresh burst.  Returns NULL on max_keys 0 or when
 * out of memory.
 */
ratelimit_table *ratelimit_table_new(double rate_per_s, double burst, size_t max_keys)
    __attribute__((warn_unused_result));
void ratelimit_table_free(ratelimit_table *t);

/*
 * Takes n tokens from key's bucket (created full on first use).  Returns
 * whether it did; when not, *wait_ms (if not NULL) gets ratelimit_wait_ms()
 * of that bucket, for Retry-After.  Out of memory fails open: the call is
 * allowed rather than turning a memory problem into refused traffic.
 */
bool ratelimit_table_take(ratelimit_table *t, const char *key, int64_t now_ms, double n,
                          int64_t *wait_ms);

/* Keys currently tracked. */
size_t ratelimit_table_size(ratelimit_table *t);

#endif

/*
 * retry: when something that failed transiently is tried again, and when
 * it is not tried again: a worker's delivery, a status webhook's call.
 *
 * Delays grow exponentially from the policy's base with "equal jitter":
 * uniform in [ceiling/2, ceiling] where ceiling = min(cap, base * 2^(n-1))
 * for the n-th retry.  Half of the delay is fixed, so successive retries of
 * one delivery really do wait longer and longer, and the other half spreads
 * a burst of failures so they do not come back at the provider together.
 * A Retry-After from the provider is a floor: retrying earlier would only
 * be refused again.
 *
 * Pure: the caller passes now_ms and a PRNG state (see backoff.h).
 */
#ifndef HERALD_RETRY_H
#define HERALD_RETRY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct retry_policy {
    int max_attempts; /* attempts in all, the first included (>= 1) */
    int64_t base_ms;  /* ceiling of the first retry's delay */
    int64_t cap_ms;   /* no delay above this, except a longer Retry-After */
} retry_policy;

typedef enum {
    RETRY_SCHEDULE = 0, /* produce to the retry topic, due at *not_before_ms */
    RETRY_EXHAUSTED,    /* attempts used up: dead-letter with reason max_attempts */
} retry_decision;

/*
 * Decides after attempt number `attempts` (1 = the first) failed
 * transiently.  retry_after_ms is the provider's minimum wait (0: none).
 */
retry_decision retry_decide(const retry_policy *p, int attempts, int64_t retry_after_ms,
                            int64_t now_ms, uint64_t *rng, int64_t *not_before_ms);

/* The delay alone: the n-th retry's, before any Retry-After floor. */
int64_t retry_delay_ms(const retry_policy *p, int n, uint64_t *rng);

#endif

/*
 * backoff: retry delays, exponential with jitter.
 *
 * Pure arithmetic: no clock, no global random state.  The caller keeps a
 * uint64_t PRNG state per retrying loop (seed it once from anything, e.g. the
 * pid and the clock; every value, 0 included, is a valid seed), so a test
 * that fixes the seed sees the same delays every run.
 *
 * Two jitter schemes (see "Exponential Backoff And Jitter", AWS
 * Architecture Blog, 2015):
 *   full          uniform in [0, min(cap, base * 2^(attempt-1))]; spreads a
 *                 herd of clients the most, used for provider retries.
 *   decorrelated  min(cap, uniform in [base, 3 * previous delay]); grows
 *                 from the last delay rather than an attempt count.
 * Arithmetic saturates, so any attempt number is safe.  Negative inputs
 * count as 0.
 */
#ifndef HERALD_BACKOFF_H
#define HERALD_BACKOFF_H

#include <stdint.h>

/* splitmix64: advances *state and returns 64 fresh bits. */
uint64_t backoff_rand(uint64_t *state);

/* Uniform in [lo, hi] (both >= 0; hi < lo yields lo), without modulo bias. */
int64_t backoff_uniform(uint64_t *state, int64_t lo, int64_t hi);

/* min(cap_ms, base_ms * 2^(attempt-1)) without overflow; attempt 0 counts as 1. */
int64_t backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms, unsigned attempt);

/*
 * Full-jitter delay before retry number `attempt` (1 = the first retry,
 * i.e. after the first failed attempt): uniform in
 * [0, backoff_ceiling_ms(base_ms, cap_ms, attempt)].
 */
int64_t backoff_delay_ms(int64_t base_ms, int64_t cap_ms, unsigned attempt, uint64_t *rng_state);

/*
 * Decorrelated-jitter delay: min(cap_ms, uniform in [base_ms, 3 * prev_ms]),
 * where prev_ms is the previous delay returned (pass 0 or base_ms the first
 * time).
 */
int64_t backoff_decorrelated_ms(int64_t base_ms, int64_t cap_ms, int64_t prev_ms,
                                uint64_t *rng_state);

/*
 * The delay to use when the other side asked for at least min_ms (a
 * Retry-After, a breaker cool-down): max(delay_ms, min_ms).  The peer's
 * minimum wins over the cap: retrying earlier would only be refused again.
 */
int64_t backoff_at_least(int64_t delay_ms, int64_t min_ms);

#endif

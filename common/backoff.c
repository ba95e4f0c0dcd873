/*
 * backoff: exponential retry delays with full or decorrelated jitter
 * (see backoff.h).
 */
#include "backoff.h"

static int64_t nonneg(int64_t v)
{
    return v < 0 ? 0 : v;
}

uint64_t backoff_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int64_t backoff_uniform(uint64_t *state, int64_t lo, int64_t hi)
{
    lo = nonneg(lo);
    hi = nonneg(hi);
    if (hi <= lo)
        return lo;
    /* Both ends are in [0, INT64_MAX], so the span fits in uint64_t. */
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;
    /* Reject the low values that would make r % span favour small results:
     * 2^64 mod span of them. */
    uint64_t threshold = (0 - span) % span;
    uint64_t r;
    do {
        r = backoff_rand(state);
    } while (r < threshold);
    return lo + (int64_t)(r % span);
}

int64_t backoff_ceiling_ms(int64_t base_ms, int64_t cap_ms, unsigned attempt)
{
    base_ms = nonneg(base_ms);
    cap_ms = nonneg(cap_ms);
    unsigned shift = attempt > 0 ? attempt - 1 : 0;
    if (base_ms == 0)
        return 0;
    if (base_ms >= cap_ms)
        return cap_ms;
    /* base < cap here, so base << shift <= cap exactly when
     * base <= cap >> shift; checking that way round cannot overflow. */
    if (shift >= 63 || base_ms > (cap_ms >> shift))
        return cap_ms;
    return base_ms << shift;
}

int64_t backoff_delay_ms(int64_t base_ms, int64_t cap_ms, unsigned attempt, uint64_t *rng_state)
{
    return backoff_uniform(rng_state, 0, backoff_ceiling_ms(base_ms, cap_ms, attempt));
}

int64_t backoff_decorrelated_ms(int64_t base_ms, int64_t cap_ms, int64_t prev_ms,
                                uint64_t *rng_state)
{
    base_ms = nonneg(base_ms);
    cap_ms = nonneg(cap_ms);
    prev_ms = nonneg(prev_ms);
    if (prev_ms < base_ms)
        prev_ms = base_ms;
    int64_t hi = prev_ms > INT64_MAX / 3 ? INT64_MAX : prev_ms * 3;
    int64_t d = backoff_uniform(rng_state, base_ms, hi);
    return d < cap_ms ? d : cap_ms;
}

int64_t backoff_at_least(int64_t delay_ms, int64_t min_ms)
{
    delay_ms = nonneg(delay_ms);
    return delay_ms > min_ms ? delay_ms : min_ms;
}

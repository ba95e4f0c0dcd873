/*
 * retry: see retry.h.
 */
#include "retry.h"

#include "backoff.h"

int64_t retry_delay_ms(const retry_policy *p, int n, uint64_t *rng)
{
    int64_t ceiling = backoff_ceiling_ms(p->base_ms, p->cap_ms, n < 1 ? 1u : (unsigned)n);
    return backoff_uniform(rng, ceiling / 2, ceiling);
}

retry_decision retry_decide(const retry_policy *p, int attempts, int64_t retry_after_ms,
                            int64_t now_ms, uint64_t *rng, int64_t *not_before_ms)
{
    if (attempts >= p->max_attempts)
        return RETRY_EXHAUSTED;
    int64_t delay = backoff_at_least(retry_delay_ms(p, attempts, rng), retry_after_ms);
    *not_before_ms = now_ms + delay;
    return RETRY_SCHEDULE;
}

/*
 * breaker: consecutive-failure circuit breaker (see breaker.h).
 */
#include "breaker.h"

#include <stdlib.h>

#define BREAKER_DEFAULT_THRESHOLD 5
#define BREAKER_DEFAULT_OPEN_MS   30000

struct breaker {
    breaker_config cfg;
    breaker_state state;
    unsigned failures;   /* consecutive, while closed */
    int64_t since_ms;    /* when it opened, or when the current probe window began */
    int64_t cooldown_ms; /* the current cool-down */
    unsigned probes;     /* probe slots taken in the current window */
    uint64_t opens;
};

breaker *breaker_new(const breaker_config *cfg)
{
    breaker *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    if (cfg != NULL)
        b->cfg = *cfg;
    if (b->cfg.failure_threshold == 0)
        b->cfg.failure_threshold = BREAKER_DEFAULT_THRESHOLD;
    if (b->cfg.open_ms <= 0)
        b->cfg.open_ms = BREAKER_DEFAULT_OPEN_MS;
    if (b->cfg.max_open_ms < b->cfg.open_ms)
        b->cfg.max_open_ms = b->cfg.open_ms;
    if (b->cfg.half_open_max == 0)
        b->cfg.half_open_max = 1;
    b->state = BREAKER_CLOSED;
    b->cooldown_ms = b->cfg.open_ms;
    return b;
}

void breaker_free(breaker *b)
{
    free(b);
}

/* Elapsed time that tolerates a clock read on another thread landing a
 * little before since_ms. */
static int64_t elapsed(int64_t now_ms, int64_t since_ms)
{
    return now_ms > since_ms ? now_ms - since_ms : 0;
}

static void trip(breaker *b, int64_t now_ms)
{
    b->state = BREAKER_OPEN;
    b->since_ms = now_ms;
    b->probes = 0;
    b->opens++;
}

bool breaker_allow(breaker *b, int64_t now_ms)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        if (elapsed(now_ms, b->since_ms) < b->cooldown_ms)
            return false;
        b->state = BREAKER_HALF_OPEN;
        b->since_ms = now_ms;
        b->probes = 0;
        break;
    case BREAKER_HALF_OPEN:
        if (b->probes >= b->cfg.half_open_max && elapsed(now_ms, b->since_ms) >= b->cooldown_ms) {
            /* The outstanding probes never reported: forget them. */
            b->since_ms = now_ms;
            b->probes = 0;
        }
        break;
    }
    if (b->probes >= b->cfg.half_open_max)
        return false;
    b->probes++;
    return true;
}

void breaker_record(breaker *b, int64_t now_ms, bool success)
{
    switch (b->state) {
    case BREAKER_CLOSED:
        if (success) {
            b->failures = 0;
        } else if (++b->failures >= b->cfg.failure_threshold) {
            b->failures = 0;
            b->cooldown_ms = b->cfg.open_ms;
            trip(b, now_ms);
        }
        break;
    case BREAKER_OPEN:
        /* A call let through before the circuit opened: its outcome says
         * nothing the failures that opened it did not. */
        break;
    case BREAKER_HALF_OPEN:
        if (success) {
            b->state = BREAKER_CLOSED;
            b->failures = 0;
            b->probes = 0;
            b->cooldown_ms = b->cfg.open_ms;
        } else {
            b->cooldown_ms =
                b->cooldown_ms > b->cfg.max_open_ms / 2 ? b->cfg.max_open_ms : b->cooldown_ms * 2;
            trip(b, now_ms);
        }
        break;
    }
}

breaker_state breaker_get_state(const breaker *b, int64_t now_ms)
{
    if (b->state == BREAKER_OPEN && elapsed(now_ms, b->since_ms) >= b->cooldown_ms)
        return BREAKER_HALF_OPEN;
    return b->state;
}

int64_t breaker_retry_in_ms(const breaker *b, int64_t now_ms)
{
    int64_t left = b->cooldown_ms - elapsed(now_ms, b->since_ms);
    switch (b->state) {
    case BREAKER_CLOSED:
        return 0;
    case BREAKER_OPEN:
        return left > 0 ? left : 0;
    case BREAKER_HALF_OPEN:
        if (b->probes < b->cfg.half_open_max)
            return 0;
        return left > 0 ? left : 0;
    }
    return 0;
}

uint64_t breaker_opens(const breaker *b)
{
    return b->opens;
}

const char *breaker_state_name(breaker_state s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "unknown";
}

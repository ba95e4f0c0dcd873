/*
 * breaker: a circuit breaker in front of a failing dependency (an SMS or
 * push provider, an SMTP relay).
 *
 *   closed     calls pass; `failure_threshold` consecutive failures open it.
 *              Consecutive failures rather than a ratio over a window: the
 *              state is two integers, needs no window tuning, and a provider
 *              that fails every call trips it after a known number of tries
 *              whatever the traffic.
 *   open       calls are refused for the cool-down (open_ms at first).
 *   half-open  after the cool-down, up to `half_open_max` probe calls pass
 *              at once.  A success closes the circuit and resets the
 *              cool-down; a failure reopens it with the cool-down doubled,
 *              up to max_open_ms.  Probes whose outcome never gets recorded
 *              stop counting after one cool-down, so a lost result cannot
 *              wedge the breaker half-open.
 *
 * Pure logic: callers pass now_ms (a monotonic clock).  Not thread-safe;
 * callers that share a breaker between threads lock around it.
 */
#ifndef HERALD_BREAKER_H
#define HERALD_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct breaker breaker;

typedef enum {
    BREAKER_CLOSED = 0,
    BREAKER_OPEN = 1,
    BREAKER_HALF_OPEN = 2,
} breaker_state;

/* Zero fields take the defaults in brackets. */
typedef struct breaker_config {
    unsigned failure_threshold; /* consecutive failures that open [5] */
    int64_t open_ms;            /* first cool-down [30000] */
    int64_t max_open_ms;        /* cap of the doubling cool-down [open_ms: no growth] */
    unsigned half_open_max;     /* probes allowed at once when half-open [1] */
} breaker_config;

/* cfg may be NULL for all defaults.  Returns NULL when out of memory. */
breaker *breaker_new(const breaker_config *cfg) __attribute__((warn_unused_result));
void breaker_free(breaker *b);

/*
 * Whether a call may go ahead now.  In half-open a true answer reserves one
 * probe slot, so every allowed call must be followed by breaker_record().
 */
bool breaker_allow(breaker *b, int64_t now_ms);

/* Records the outcome of an allowed call. */
void breaker_record(breaker *b, int64_t now_ms, bool success);

/* The state as breaker_allow() would see it now (an open breaker whose
 * cool-down is over reports half-open).  Does not change anything. */
breaker_state breaker_get_state(const breaker *b, int64_t now_ms);

/* 0 when a call would be allowed now, else the milliseconds until one
 * would be (for pausing a consumer rather than spinning). */
int64_t breaker_retry_in_ms(const breaker *b, int64_t now_ms);

/* How many times the circuit has opened (closed → open or half-open → open). */
uint64_t breaker_opens(const breaker *b);

/* "closed", "open" or "half_open" (stable: used in logs and metric labels). */
const char *breaker_state_name(breaker_state s);

#endif

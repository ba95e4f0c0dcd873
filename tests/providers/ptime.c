/*
 * ptime: see ptime.h.
 */
#include "ptime.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ptime_realtime_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t ptime_monotonic_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

void ptime_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

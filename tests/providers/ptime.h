/*
 * ptime: the clocks the test providers read (record timestamps in realtime
 * milliseconds, deadlines on the monotonic clock) and a millisecond sleep.
 */
#ifndef HERALD_PROVIDERS_PTIME_H
#define HERALD_PROVIDERS_PTIME_H

#include <stdint.h>

int64_t ptime_realtime_ms(void);
int64_t ptime_monotonic_ms(void);
void ptime_sleep_ms(long ms);

#endif

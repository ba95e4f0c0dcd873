/*
 * promtext: reads counters out of the Prometheus text exposition format
 * (what every daemon's /metrics serves, metrics.c), for the gateway's
 * history of rates (no I/O).
 */
#ifndef HERALD_PROMTEXT_H
#define HERALD_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The sum of every sample of metric name whose label set contains label
 * (a pair as rendered, `outcome="sent"`; NULL: any) into *sum.  Comments,
 * other metrics and lines that do not parse are skipped.  Returns whether
 * any sample matched.
 */
bool promtext_sum(const char *text, size_t len, const char *name, const char *label, double *sum);

#endif

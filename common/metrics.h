/*
 * metrics: a registry of counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4.
 *
 * A metric family is a name with its help text and type; each distinct
 * label set under it is one series.  The *_get functions are get-or-create
 * and take the registry lock (the first registration's help text is the
 * family's), so call them once and keep the handle: the
 * handle lives as long as the registry, and updating through it is a
 * lock-free atomic operation, safe from any thread.
 *
 * Labels are passed pre-rendered, as they appear between the braces:
 *   route="/v1/events",status="202"
 * with values escaped (\\, \" and \n).  metrics_labels() builds such a
 * string from raw values.  The same string, byte for byte, is the same
 * series; write the labels of a family in one order.  NULL or "" is the
 * series without labels.
 *
 * Values: counters are uint64_t (they only go up); gauges and histogram
 * observations are doubles, as in Prometheus itself (integers are exact up
 * to 2^53).  Latencies are observed in seconds.
 *
 * Exposition: families sorted by name, each with one HELP (omitted when the
 * help text is empty) and one TYPE line, its series sorted by label string.
 * The output is independent of the order in which code first touched a
 * metric.  Numbers use the "C" locale's '.' decimal point.
 *
 * Errors: a *_get returns NULL for an invalid name or label string, a name
 * already registered with another type (or, for histograms, other bounds),
 * or when out of memory.  Updating a NULL handle does nothing, so a metric
 * that could not be registered never takes the daemon down.
 */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics_registry metrics_registry;
typedef struct metrics_counter metrics_counter;
typedef struct metrics_gauge metrics_gauge;
typedef struct metrics_histogram metrics_histogram;

/* A gauge read at scrape time, e.g. a producer's queue depth.  Runs on the
 * scraping thread with the registry locked: it must be thread-safe and must
 * not call metrics_* on the same registry. */
typedef double (*metrics_gauge_cb)(void *ctx);

/* Request and delivery latencies in seconds, 0.5 ms .. 10 s. */
extern const double metrics_default_latency_buckets[];
extern const size_t metrics_default_latency_buckets_n;

metrics_registry *metrics_registry_new(void) __attribute__((warn_unused_result));

/* Frees the registry and every handle it gave out.  NULL is a no-op. */
void metrics_registry_free(metrics_registry *reg);

metrics_counter *metrics_counter_get(metrics_registry *reg, const char *name, const char *help,
                                     const char *labels) __attribute__((warn_unused_result));
void metrics_counter_add(metrics_counter *c, uint64_t n);
void metrics_counter_inc(metrics_counter *c);
uint64_t metrics_counter_value(const metrics_counter *c);

metrics_gauge *metrics_gauge_get(metrics_registry *reg, const char *name, const char *help,
                                 const char *labels) __attribute__((warn_unused_result));
void metrics_gauge_set(metrics_gauge *g, double v);
void metrics_gauge_add(metrics_gauge *g, double delta);
double metrics_gauge_value(const metrics_gauge *g);

/*
 * Registers a gauge series whose value is fn(ctx) at each scrape.  ctx must
 * stay valid while the registry may be rendered (stop the ops server before
 * freeing it).  Registering the same name and labels again replaces fn and
 * ctx.  Returns 0, or -1 for the reasons a *_get returns NULL (including a
 * series of that name and labels already made by metrics_gauge_get).
 */
int metrics_gauge_fn(metrics_registry *reg, const char *name, const char *help, const char *labels,
                     metrics_gauge_cb fn, void *ctx) __attribute__((warn_unused_result));

/*
 * A histogram with the upper bounds bounds[0..n-1], strictly increasing and
 * finite (a trailing +Inf is accepted and ignored: the +Inf bucket is always
 * there).  Every series of a family must use the same bounds.  labels must
 * not use the name "le".
 */
metrics_histogram *metrics_histogram_get(metrics_registry *reg, const char *name, const char *help,
                                         const char *labels, const double *bounds, size_t n)
    __attribute__((warn_unused_result));

/*
 * Counts value in the first bucket whose bound is >= value.  Lock-free; a
 * scrape racing observations may see _sum lag _count by the observations
 * in flight, never a _count that disagrees with the +Inf bucket.
 */
void metrics_histogram_observe(metrics_histogram *h, double value);

/*
 * Renders the whole registry.  On success *out is a NUL-terminated string
 * of *len bytes, malloc()ed, for the caller to free.  Returns -1 when out of
 * memory (then *out is NULL).
 */
int metrics_render(metrics_registry *reg, char **out, size_t *len)
    __attribute__((warn_unused_result));

/*
 * Builds a label string from NULL-terminated name/value pairs:
 *   metrics_labels(buf, sizeof buf, "route", "/v1/events", "status", "202", NULL)
 * escaping the values.  Returns 0, or -1 when a name is invalid or the
 * result does not fit (out then holds "").
 */
int metrics_labels(char *out, size_t outlen, ...) __attribute__((sentinel, warn_unused_result));

#endif

/*
 * metrics: counters, gauges and histograms with Prometheus text exposition
 * (see metrics.h).
 *
 * Layout: the registry holds families sorted by name; a family holds its
 * series sorted by label string.  Both arrays only grow under the registry
 * mutex, and each series is its own allocation, so the handles given out
 * (pointers into a series) never move.  Hot-path updates touch only C11
 * atomics with relaxed ordering: each value is an independent tally, and a
 * scrape needs no ordering between them.  Doubles are kept as their bit
 * patterns in uint64_t atomics, updated by compare-and-swap, because C11
 * has no atomic floating-point add.
 */
#include "metrics.h"

#include "buf.h"
#include "vec.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A scrape that needs more than this is a runaway label cardinality, not
 * something to keep allocating for. */
#define METRICS_RENDER_MAX (64u * 1024u * 1024u)
#define METRICS_MAX_LABELS 32

const double metrics_default_latency_buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const size_t metrics_default_latency_buckets_n =
    sizeof(metrics_default_latency_buckets) / sizeof(metrics_default_latency_buckets[0]);

typedef enum {
    FAMILY_COUNTER,
    FAMILY_GAUGE,
    FAMILY_HISTOGRAM,
} family_type;

struct metrics_counter {
    _Atomic uint64_t value;
};

struct metrics_gauge {
    _Atomic uint64_t bits; /* a double */
};

struct metrics_histogram {
    const double *bounds; /* the family's */
    size_t nbounds;
    _Atomic uint64_t *counts;  /* per bucket, not cumulative; [nbounds] is +Inf */
    _Atomic uint64_t sum_bits; /* a double */
};

typedef struct series {
    char *labels; /* "" for none */
    bool is_fn;   /* a metrics_gauge_fn series */
    metrics_gauge_cb fn;
    void *fn_ctx;
    union {
        metrics_counter counter;
        metrics_gauge gauge;
        metrics_histogram hist;
    } u;
} series;

typedef struct family {
    char *name;
    char *help;
    family_type type;
    double *bounds; /* histograms */
    size_t nbounds;
    series **series;
    size_t nseries;
    size_t cap;
} family;

struct metrics_registry {
    pthread_mutex_t mu;
    family **fams;
    size_t nfams;
    size_t cap;
};

/* ---- doubles in atomics ---- */

static uint64_t dbl_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof(b));
    return b;
}

static double bits_dbl(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof(v));
    return v;
}

static void atomic_dbl_add(_Atomic uint64_t *a, double delta)
{
    uint64_t old = atomic_load_explicit(a, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(a, &old, dbl_bits(bits_dbl(old) + delta),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* ---- names and labels ---- */

static bool is_name_start(char c, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
}

static bool is_name_char(char c, bool colon_ok)
{
    return is_name_start(c, colon_ok) || (c >= '0' && c <= '9');
}

static bool metric_name_valid(const char *name)
{
    if (name == NULL || !is_name_start(name[0], true))
        return false;
    for (const char *p = name + 1; *p != '\0'; p++) {
        if (!is_name_char(*p, true))
            return false;
    }
    return true;
}

static bool label_name_valid(const char *s, size_t n)
{
    if (n == 0 || !is_name_start(s[0], false))
        return false;
    /* Names starting with "__" are reserved for Prometheus itself. */
    if (n >= 2 && s[0] == '_' && s[1] == '_')
        return false;
    for (size_t i = 1; i < n; i++) {
        if (!is_name_char(s[i], false))
            return false;
    }
    return true;
}

/* Checks a pre-rendered label string: name="value" pairs joined by commas,
 * values escaped, no name twice, and no "le" when forbid_le. */
static bool labels_valid(const char *l, bool forbid_le)
{
    const char *names[METRICS_MAX_LABELS];
    size_t lens[METRICS_MAX_LABELS];
    size_t k = 0;
    const char *p = l;

    if (*p == '\0')
        return true;
    for (;;) {
        const char *name = p;
        while (is_name_char(*p, false))
            p++;
        size_t n = (size_t)(p - name);
        if (!label_name_valid(name, n) || k == METRICS_MAX_LABELS)
            return false;
        if (forbid_le && n == 2 && memcmp(name, "le", 2) == 0)
            return false;
        for (size_t i = 0; i < k; i++) {
            if (lens[i] == n && memcmp(names[i], name, n) == 0)
                return false;
        }
        names[k] = name;
        lens[k] = n;
        k++;
        if (p[0] != '=' || p[1] != '"')
            return false;
        p += 2;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return false;
                p++;
            }
            p++;
        }
        p++;
        if (*p == '\0')
            return true;
        if (*p != ',')
            return false;
        p++;
    }
}

int metrics_labels(char *out, size_t outlen, ...)
{
    va_list ap;
    size_t len = 0;
    int rc = -1;

    if (outlen == 0)
        return -1;
    out[0] = '\0';
    va_start(ap, outlen);
    for (;;) {
        const char *name = va_arg(ap, const char *);
        if (name == NULL)
            break;
        const char *value = va_arg(ap, const char *);
        size_t n = strlen(name);
        if (value == NULL || !label_name_valid(name, n))
            goto out;
        size_t vlen = 0;
        for (const char *v = value; *v != '\0'; v++)
            vlen += (*v == '\\' || *v == '"' || *v == '\n') ? 2 : 1;
        /* [','] name '=' '"' value '"' and the final NUL */
        if (len + (len > 0) + n + vlen + 4 > outlen)
            goto out;
        if (len > 0)
            out[len++] = ',';
        memcpy(out + len, name, n);
        len += n;
        out[len++] = '=';
        out[len++] = '"';
        for (const char *v = value; *v != '\0'; v++) {
            if (*v == '\\' || *v == '"') {
                out[len++] = '\\';
                out[len++] = *v;
            } else if (*v == '\n') {
                out[len++] = '\\';
                out[len++] = 'n';
            } else {
                out[len++] = *v;
            }
        }
        out[len++] = '"';
    }
    out[len] = '\0';
    rc = 0;
out:
    va_end(ap);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

/* ---- registry ---- */

metrics_registry *metrics_registry_new(void)
{
    metrics_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return NULL;
    if (pthread_mutex_init(&reg->mu, NULL) != 0) {
        free(reg);
        return NULL;
    }
    return reg;
}

static void series_free(series *s)
{
    if (s == NULL)
        return;
    free(s->u.hist.counts);
    free(s->labels);
    free(s);
}

static void family_free(family *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        series_free(f->series[i]);
    free(f->series);
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

void metrics_registry_free(metrics_registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->nfams; i++)
        family_free(reg->fams[i]);
    free(reg->fams);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

/* The sort key of element i of an array of families or of series. */
typedef const char *(*key_at_fn)(const void *array, size_t i);

static const char *family_name_at(const void *array, size_t i)
{
    return ((family *const *)array)[i]->name;
}

static const char *series_labels_at(const void *array, size_t i)
{
    return ((series *const *)array)[i]->labels;
}

/* Index of key in array[0..n) sorted by key_at, or where it would go (*found false). */
static size_t sorted_index(const void *array, size_t n, key_at_fn key_at, const char *key,
                           bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key_at(array, mid), key);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t family_index(const metrics_registry *reg, const char *name, bool *found)
{
    return sorted_index(reg->fams, reg->nfams, family_name_at, name, found);
}

static size_t series_index(const family *f, const char *labels, bool *found)
{
    return sorted_index(f->series, f->nseries, series_labels_at, labels, found);
}

static const family *family_lookup(const metrics_registry *reg, const char *name)
{
    bool found;
    size_t i = family_index(reg, name, &found);
    return found ? reg->fams[i] : NULL;
}

static const char *const histogram_suffixes[] = {"_bucket", "_sum", "_count"};

/* A histogram named h also writes h_bucket, h_sum and h_count: a new family
 * must not collide with those sample names in either direction. */
static bool family_name_clashes(const metrics_registry *reg, const char *name, family_type type)
{
    size_t n = strlen(name);
    char *tmp = NULL;
    bool clash = false;

    for (size_t i = 0; i < 3 && !clash; i++) {
        size_t sl = strlen(histogram_suffixes[i]);
        if (n > sl && strcmp(name + n - sl, histogram_suffixes[i]) == 0) {
            tmp = strndup(name, n - sl);
            if (tmp == NULL)
                return true;
            const family *h = family_lookup(reg, tmp);
            clash = h != NULL && h->type == FAMILY_HISTOGRAM;
            free(tmp);
            tmp = NULL;
        }
        if (!clash && type == FAMILY_HISTOGRAM) {
            tmp = malloc(n + sl + 1);
            if (tmp == NULL)
                return true;
            memcpy(tmp, name, n);
            memcpy(tmp + n, histogram_suffixes[i], sl + 1);
            clash = family_lookup(reg, tmp) != NULL;
            free(tmp);
            tmp = NULL;
        }
    }
    return clash;
}

/* Inserts at idx, growing the array; the two element types get their own
 * function rather than a cast through void ** (which would break aliasing). */
static int family_insert(metrics_registry *reg, size_t idx, family *f)
{
    if (reg->nfams == reg->cap) {
        family **a = vec_grow(reg->fams, &reg->cap, sizeof(*a));
        if (a == NULL)
            return -1;
        reg->fams = a;
    }
    memmove(reg->fams + idx + 1, reg->fams + idx, (reg->nfams - idx) * sizeof(*reg->fams));
    reg->fams[idx] = f;
    reg->nfams++;
    return 0;
}

static int series_insert(family *f, size_t idx, series *s)
{
    if (f->nseries == f->cap) {
        series **a = vec_grow(f->series, &f->cap, sizeof(*a));
        if (a == NULL)
            return -1;
        f->series = a;
    }
    memmove(f->series + idx + 1, f->series + idx, (f->nseries - idx) * sizeof(*f->series));
    f->series[idx] = s;
    f->nseries++;
    return 0;
}

static series *series_new(const char *labels, const family *f, bool is_fn)
{
    series *s = NULL;
    series *ret = NULL;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    s->labels = strdup(labels);
    if (s->labels == NULL)
        goto out;
    s->is_fn = is_fn;
    switch (f->type) {
    case FAMILY_COUNTER:
        atomic_init(&s->u.counter.value, 0);
        break;
    case FAMILY_GAUGE:
        atomic_init(&s->u.gauge.bits, dbl_bits(0.0));
        break;
    case FAMILY_HISTOGRAM:
        s->u.hist.bounds = f->bounds;
        s->u.hist.nbounds = f->nbounds;
        s->u.hist.counts = calloc(f->nbounds + 1, sizeof(*s->u.hist.counts));
        if (s->u.hist.counts == NULL)
            goto out;
        for (size_t i = 0; i <= f->nbounds; i++)
            atomic_init(&s->u.hist.counts[i], 0);
        atomic_init(&s->u.hist.sum_bits, dbl_bits(0.0));
        break;
    }
    ret = s;
    s = NULL;
out:
    series_free(s);
    return ret;
}

/* Adds a series to an existing family.  Caller holds reg->mu. */
static series *family_add_series(family *f, size_t idx, const char *labels, bool is_fn)
{
    series *s = series_new(labels, f, is_fn);
    if (s != NULL && series_insert(f, idx, s) != 0) {
        series_free(s);
        s = NULL;
    }
    return s;
}

/* Creates a family with its first series and files it at idx.  Caller
 * holds reg->mu. */
static series *family_create(metrics_registry *reg, size_t idx, const char *name, const char *help,
                             family_type type, const double *bounds, size_t nbounds,
                             const char *labels, bool is_fn)
{
    family *f = NULL;
    series *s = NULL;
    series *ret = NULL;

    f = calloc(1, sizeof(*f));
    if (f == NULL)
        goto out;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help != NULL ? help : "");
    if (f->name == NULL || f->help == NULL)
        goto out;
    if (nbounds > 0) {
        f->bounds = malloc(nbounds * sizeof(*bounds));
        if (f->bounds == NULL)
            goto out;
        memcpy(f->bounds, bounds, nbounds * sizeof(*bounds));
    }
    f->nbounds = nbounds;
    s = family_add_series(f, 0, labels, is_fn);
    if (s == NULL || family_insert(reg, idx, f) != 0)
        goto out;
    ret = s;
    f = NULL;
out:
    family_free(f);
    return ret;
}

/*
 * The get-or-create behind every public *_get.  Caller holds reg->mu.
 * bounds/nbounds are already validated (histograms only).  The first
 * registration's help text is the family's.
 */
static series *series_get_locked(metrics_registry *reg, const char *name, const char *help,
                                 const char *labels, family_type type, const double *bounds,
                                 size_t nbounds, bool is_fn)
{
    bool found;

    if (labels == NULL)
        labels = "";
    if (!metric_name_valid(name) || !labels_valid(labels, type == FAMILY_HISTOGRAM))
        return NULL;

    size_t fi = family_index(reg, name, &found);
    if (!found) {
        if (family_name_clashes(reg, name, type))
            return NULL;
        return family_create(reg, fi, name, help, type, bounds, nbounds, labels, is_fn);
    }
    family *f = reg->fams[fi];
    if (f->type != type)
        return NULL;
    if (type == FAMILY_HISTOGRAM &&
        (f->nbounds != nbounds ||
         (nbounds > 0 && memcmp(f->bounds, bounds, nbounds * sizeof(*bounds)) != 0)))
        return NULL;
    size_t si = series_index(f, labels, &found);
    if (found)
        return f->series[si]->is_fn == is_fn ? f->series[si] : NULL;
    return family_add_series(f, si, labels, is_fn);
}

static series *series_get(metrics_registry *reg, const char *name, const char *help,
                          const char *labels, family_type type, const double *bounds,
                          size_t nbounds)
{
    pthread_mutex_lock(&reg->mu);
    series *s = series_get_locked(reg, name, help, labels, type, bounds, nbounds, false);
    pthread_mutex_unlock(&reg->mu);
    return s;
}

/* ---- counters ---- */

metrics_counter *metrics_counter_get(metrics_registry *reg, const char *name, const char *help,
                                     const char *labels)
{
    series *s = series_get(reg, name, help, labels, FAMILY_COUNTER, NULL, 0);
    return s != NULL ? &s->u.counter : NULL;
}

void metrics_counter_add(metrics_counter *c, uint64_t n)
{
    if (c != NULL)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void metrics_counter_inc(metrics_counter *c)
{
    metrics_counter_add(c, 1);
}

uint64_t metrics_counter_value(const metrics_counter *c)
{
    return c != NULL ? atomic_load_explicit(&c->value, memory_order_relaxed) : 0;
}

/* ---- gauges ---- */

metrics_gauge *metrics_gauge_get(metrics_registry *reg, const char *name, const char *help,
                                 const char *labels)
{
    series *s = series_get(reg, name, help, labels, FAMILY_GAUGE, NULL, 0);
    return s != NULL ? &s->u.gauge : NULL;
}

void metrics_gauge_set(metrics_gauge *g, double v)
{
    if (g != NULL)
        atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void metrics_gauge_add(metrics_gauge *g, double delta)
{
    if (g != NULL)
        atomic_dbl_add(&g->bits, delta);
}

double metrics_gauge_value(const metrics_gauge *g)
{
    return g != NULL ? bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed)) : 0.0;
}

int metrics_gauge_fn(metrics_registry *reg, const char *name, const char *help, const char *labels,
                     metrics_gauge_cb fn, void *ctx)
{
    if (fn == NULL)
        return -1;
    pthread_mutex_lock(&reg->mu);
    series *s = series_get_locked(reg, name, help, labels, FAMILY_GAUGE, NULL, 0, true);
    if (s != NULL) {
        s->fn = fn;
        s->fn_ctx = ctx;
    }
    pthread_mutex_unlock(&reg->mu);
    return s != NULL ? 0 : -1;
}

/* ---- histograms ---- */

metrics_histogram *metrics_histogram_get(metrics_registry *reg, const char *name, const char *help,
                                         const char *labels, const double *bounds, size_t n)
{
    if (n > 0 && bounds == NULL)
        return NULL;
    if (n > 0 && isinf(bounds[n - 1]) && bounds[n - 1] > 0)
        n--;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return NULL;
    }
    series *s = series_get(reg, name, help, labels, FAMILY_HISTOGRAM, bounds, n);
    return s != NULL ? &s->u.hist : NULL;
}

void metrics_histogram_observe(metrics_histogram *h, double value)
{
    if (h == NULL)
        return;
    /* First bound >= value; NaN compares false everywhere and lands in +Inf. */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (value <= h->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    atomic_dbl_add(&h->sum_bits, value);
}

/* ---- rendering ---- */

/* The scrape text; the first failed append latches, so the render code
 * appends unconditionally and metrics_render checks once at the end. */
typedef struct render_buf {
    buf text;
    bool failed;
} render_buf;

static void rb_append(render_buf *b, const char *s, size_t n)
{
    if (!b->failed && buf_append(&b->text, s, n) != 0)
        b->failed = true;
}

static void rb_puts(render_buf *b, const char *s)
{
    rb_append(b, s, strlen(s));
}

/* Shortest of %.15g / %.17g that reads back as the same double, so 0.1
 * prints as 0.1 and nothing loses precision. */
static void fmt_double(char *out, size_t outlen, double v)
{
    if (isnan(v)) {
        snprintf(out, outlen, "NaN");
    } else if (isinf(v)) {
        snprintf(out, outlen, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, outlen, "%.17g", v);
    }
}

/* HELP text escapes only backslash and newline (format 0.0.4). */
static void rb_help(render_buf *b, const char *help)
{
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            rb_append(b, "\\\\", 2);
        else if (*p == '\n')
            rb_append(b, "\\n", 2);
        else
            rb_append(b, p, 1);
    }
}

/* name+suffix{labels[,le="le"]} value\n */
static void rb_sample(render_buf *b, const char *name, const char *suffix, const char *labels,
                      const char *le, const char *value)
{
    rb_puts(b, name);
    rb_puts(b, suffix);
    if (labels[0] != '\0' || le != NULL) {
        rb_append(b, "{", 1);
        rb_puts(b, labels);
        if (le != NULL) {
            if (labels[0] != '\0')
                rb_append(b, ",", 1);
            rb_append(b, "le=\"", 4);
            rb_puts(b, le);
            rb_append(b, "\"", 1);
        }
        rb_append(b, "}", 1);
    }
    rb_append(b, " ", 1);
    rb_puts(b, value);
    rb_append(b, "\n", 1);
}

static void render_histogram(render_buf *b, const family *f, const series *s)
{
    const metrics_histogram *h = &s->u.hist;
    char le[32], val[32];
    uint64_t cum = 0;

    for (size_t i = 0; i < h->nbounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        fmt_double(le, sizeof(le), h->bounds[i]);
        snprintf(val, sizeof(val), "%llu", (unsigned long long)cum);
        rb_sample(b, f->name, "_bucket", s->labels, le, val);
    }
    /* _count is the +Inf bucket by construction, so the two always agree. */
    cum += atomic_load_explicit(&h->counts[h->nbounds], memory_order_relaxed);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)cum);
    rb_sample(b, f->name, "_bucket", s->labels, "+Inf", val);
    fmt_double(le, sizeof(le), bits_dbl(atomic_load_explicit(&h->sum_bits, memory_order_relaxed)));
    rb_sample(b, f->name, "_sum", s->labels, NULL, le);
    rb_sample(b, f->name, "_count", s->labels, NULL, val);
}

int metrics_render(metrics_registry *reg, char **out, size_t *len)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    render_buf b = {.failed = false};
    buf_init(&b.text, METRICS_RENDER_MAX);
    char val[32];

    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->nfams; i++) {
        const family *f = reg->fams[i];
        if (f->help[0] != '\0') {
            rb_puts(&b, "# HELP ");
            rb_puts(&b, f->name);
            rb_append(&b, " ", 1);
            rb_help(&b, f->help);
            rb_append(&b, "\n", 1);
        }
        rb_puts(&b, "# TYPE ");
        rb_puts(&b, f->name);
        rb_append(&b, " ", 1);
        rb_puts(&b, type_names[f->type]);
        rb_append(&b, "\n", 1);
        for (size_t j = 0; j < f->nseries; j++) {
            const series *s = f->series[j];
            switch (f->type) {
            case FAMILY_COUNTER:
                snprintf(val, sizeof(val), "%llu",
                         (unsigned long long)atomic_load_explicit(&s->u.counter.value,
                                                                  memory_order_relaxed));
                rb_sample(&b, f->name, "", s->labels, NULL, val);
                break;
            case FAMILY_GAUGE:
                fmt_double(val, sizeof(val),
                           s->is_fn ? s->fn(s->fn_ctx) : metrics_gauge_value(&s->u.gauge));
                rb_sample(&b, f->name, "", s->labels, NULL, val);
                break;
            case FAMILY_HISTOGRAM:
                render_histogram(&b, f, s);
                break;
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);

    if (b.failed) {
        buf_free(&b.text);
        *out = NULL;
        *len = 0;
        return -1;
    }
    /* An empty registry still renders a valid (empty) string. */
    *out = buf_steal(&b.text, len);
    return *out != NULL ? 0 : -1;
}

/*
 * metrics: the exposition text is exactly what Prometheus expects, labels
 * and help are escaped, histogram buckets are cumulative, invalid
 * registrations are refused, and concurrent updates are not lost.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "testutil.h"

static char *render(metrics_registry *reg)
{
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(reg, &out, &len), 0);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(len, strlen(out));
    return out;
}

static double lag_fn(void *ctx)
{
    return *(const double *)ctx;
}

START_TEST(test_metrics_renders_exact_exposition_text)
{
    metrics_registry *reg = metrics_registry_new();
    ck_assert_ptr_nonnull(reg);
    static const double bounds[] = {0.1, 1};
    double lag = 42;

    /* Registered out of order on purpose: the output is sorted. */
    metrics_histogram *h =
        metrics_histogram_get(reg, "herald_request_seconds", "Latency.", NULL, bounds, 2);
    metrics_counter *c400 =
        metrics_counter_get(reg, "herald_http_requests_total", "HTTP requests served.",
                            "route=\"/v1/events\",status=\"400\"");
    metrics_counter *c202 =
        metrics_counter_get(reg, "herald_http_requests_total", "HTTP requests served.",
                            "route=\"/v1/events\",status=\"202\"");
    metrics_gauge *depth = metrics_gauge_get(reg, "herald_queue_depth", "Messages waiting.", "");
    ck_assert_int_eq(
        metrics_gauge_fn(reg, "herald_consumer_lag", "Lag.", "partition=\"0\"", lag_fn, &lag), 0);
    metrics_counter *first = metrics_counter_get(reg, "a_first_total", "", NULL);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_nonnull(c400);
    ck_assert_ptr_nonnull(c202);
    ck_assert_ptr_nonnull(depth);
    ck_assert_ptr_nonnull(first);

    metrics_counter_add(c202, 3);
    metrics_counter_inc(c400);
    metrics_counter_inc(first);
    metrics_gauge_set(depth, 12.5);
    metrics_histogram_observe(h, 0.0625);
    metrics_histogram_observe(h, 0.5);
    metrics_histogram_observe(h, 2);

    static const char want[] = "# TYPE a_first_total counter\n"
                               "a_first_total 1\n"
                               "# HELP herald_consumer_lag Lag.\n"
                               "# TYPE herald_consumer_lag gauge\n"
                               "herald_consumer_lag{partition=\"0\"} 42\n"
                               "# HELP herald_http_requests_total HTTP requests served.\n"
                               "# TYPE herald_http_requests_total counter\n"
                               "herald_http_requests_total{route=\"/v1/events\",status=\"202\"} 3\n"
                               "herald_http_requests_total{route=\"/v1/events\",status=\"400\"} 1\n"
                               "# HELP herald_queue_depth Messages waiting.\n"
                               "# TYPE herald_queue_depth gauge\n"
                               "herald_queue_depth 12.5\n"
                               "# HELP herald_request_seconds Latency.\n"
                               "# TYPE herald_request_seconds histogram\n"
                               "herald_request_seconds_bucket{le=\"0.1\"} 1\n"
                               "herald_request_seconds_bucket{le=\"1\"} 2\n"
                               "herald_request_seconds_bucket{le=\"+Inf\"} 3\n"
                               "herald_request_seconds_sum 2.5625\n"
                               "herald_request_seconds_count 3\n";
    char *out = render(reg);
    ck_assert_str_eq(out, want);
    free(out);

    /* The callback is read at each scrape. */
    lag = 7;
    out = render(reg);
    ck_assert_ptr_nonnull(strstr(out, "herald_consumer_lag{partition=\"0\"} 7\n"));
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_escapes_label_values_and_help)
{
    metrics_registry *reg = metrics_registry_new();
    char labels[128];
    ck_assert_int_eq(metrics_labels(labels, sizeof(labels), "path", "C:\\dir \"x\"\nnext", "kind",
                                    "plain", NULL),
                     0);
    ck_assert_str_eq(labels, "path=\"C:\\\\dir \\\"x\\\"\\nnext\",kind=\"plain\"");

    metrics_gauge *g =
        metrics_gauge_get(reg, "odd_gauge", "First line\nsecond \\ \"quoted\"", labels);
    ck_assert_ptr_nonnull(g);
    metrics_gauge_set(g, -0.25);
    char *out = render(reg);
    ck_assert_str_eq(out, "# HELP odd_gauge First line\\nsecond \\\\ \"quoted\"\n"
                          "# TYPE odd_gauge gauge\n"
                          "odd_gauge{path=\"C:\\\\dir \\\"x\\\"\\nnext\",kind=\"plain\"} -0.25\n");
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_labels_builder_refuses_bad_names_and_overflow)
{
    char small[16];
    /* 15 characters and the NUL fit exactly; one more does not. */
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "k", "0123456789a", NULL), 0);
    ck_assert_str_eq(small, "k=\"0123456789a\"");
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "k", "0123456789ab", NULL), -1);
    ck_assert_str_eq(small, "");
    /* Escapes count towards the size. */
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "k", "\"\"\"\"\"\"", NULL), -1);
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "9k", "v", NULL), -1);
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "__k", "v", NULL), -1);
    ck_assert_int_eq(metrics_labels(small, sizeof(small), "k", (const char *)NULL, NULL), -1);
    ck_assert_int_eq(metrics_labels(small, sizeof(small), NULL), 0);
    ck_assert_str_eq(small, "");
}
END_TEST

START_TEST(test_metrics_histogram_buckets_are_cumulative)
{
    metrics_registry *reg = metrics_registry_new();
    static const double bounds[] = {0.25, 1, 4, INFINITY};
    metrics_histogram *h =
        metrics_histogram_get(reg, "delivery_seconds", "", "channel=\"sms\"", bounds, 4);
    ck_assert_ptr_nonnull(h);
    /* A value equal to a bound belongs to that bucket (le = less or equal). */
    static const double values[] = {0.125, 0.25, 0.5, 1, 3, 4, 100, 1000};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        metrics_histogram_observe(h, values[i]);
    char *out = render(reg);
    ck_assert_str_eq(out, "# TYPE delivery_seconds histogram\n"
                          "delivery_seconds_bucket{channel=\"sms\",le=\"0.25\"} 2\n"
                          "delivery_seconds_bucket{channel=\"sms\",le=\"1\"} 4\n"
                          "delivery_seconds_bucket{channel=\"sms\",le=\"4\"} 6\n"
                          "delivery_seconds_bucket{channel=\"sms\",le=\"+Inf\"} 8\n"
                          "delivery_seconds_sum{channel=\"sms\"} 1108.875\n"
                          "delivery_seconds_count{channel=\"sms\"} 8\n");
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_default_latency_buckets_span_half_ms_to_ten_s)
{
    ck_assert_uint_ge(metrics_default_latency_buckets_n, 10);
    ck_assert_double_eq(metrics_default_latency_buckets[0], 0.0005);
    ck_assert_double_eq(metrics_default_latency_buckets[metrics_default_latency_buckets_n - 1], 10);
    metrics_registry *reg = metrics_registry_new();
    metrics_histogram *h =
        metrics_histogram_get(reg, "x_seconds", "", NULL, metrics_default_latency_buckets,
                              metrics_default_latency_buckets_n);
    ck_assert_ptr_nonnull(h);
    metrics_histogram_observe(h, 0.003);
    char *out = render(reg);
    ck_assert_ptr_nonnull(strstr(out, "x_seconds_bucket{le=\"0.0005\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(out, "x_seconds_bucket{le=\"0.0025\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(out, "x_seconds_bucket{le=\"0.005\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(out, "x_seconds_bucket{le=\"10\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(out, "x_seconds_sum 0.003\n"));
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_get_returns_the_same_series_for_the_same_labels)
{
    metrics_registry *reg = metrics_registry_new();
    metrics_counter *a = metrics_counter_get(reg, "sent_total", "Sent.", "channel=\"email\"");
    metrics_counter *b = metrics_counter_get(reg, "sent_total", "Other help.", "channel=\"email\"");
    metrics_counter *c = metrics_counter_get(reg, "sent_total", "Sent.", "channel=\"sms\"");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    ck_assert_ptr_ne(a, c);
    metrics_counter *none1 = metrics_counter_get(reg, "plain_total", "", NULL);
    metrics_counter *none2 = metrics_counter_get(reg, "plain_total", "", "");
    ck_assert_ptr_eq(none1, none2);
    /* Handles stay put while the registry grows. */
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "m%03d_total", i);
        ck_assert_ptr_nonnull(metrics_counter_get(reg, name, "", NULL));
    }
    metrics_counter_add(a, 5);
    ck_assert_uint_eq(
        metrics_counter_value(metrics_counter_get(reg, "sent_total", "", "channel=\"email\"")), 5);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_refuses_invalid_names_labels_and_conflicts)
{
    metrics_registry *reg = metrics_registry_new();
    static const double b1[] = {1, 2};
    static const double b2[] = {1, 3};
    static const double bad[] = {2, 1};

    ck_assert_ptr_null(metrics_counter_get(reg, "1bad", "", NULL));
    ck_assert_ptr_null(metrics_counter_get(reg, "has-dash", "", NULL));
    ck_assert_ptr_null(metrics_counter_get(reg, "", "", NULL));
    ck_assert_ptr_nonnull(metrics_counter_get(reg, "ns:ok_total", "", NULL));

    static const char *const bad_labels[] = {
        "k=v",        "k=\"v",           "k=\"v\",",       "=\"v\"",   "k=\"a\\q\"",
        "k=\"a\nb\"", "k=\"1\",k=\"2\"", "__name__=\"x\"", "k=\"v\" ", "9k=\"v\"",
    };
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
        ck_assert_msg(metrics_counter_get(reg, "lbl_total", "", bad_labels[i]) == NULL,
                      "accepted labels %s", bad_labels[i]);
    ck_assert_ptr_nonnull(metrics_counter_get(reg, "lbl_total", "", "a=\"\",b=\"\\\\\\\"\\n\""));

    /* One name, one type. */
    ck_assert_ptr_nonnull(metrics_counter_get(reg, "jobs", "", NULL));
    ck_assert_ptr_null(metrics_gauge_get(reg, "jobs", "", NULL));
    ck_assert_ptr_null(metrics_histogram_get(reg, "jobs", "", NULL, b1, 2));

    /* One family, one set of bounds; bounds strictly increasing; no "le". */
    ck_assert_ptr_nonnull(metrics_histogram_get(reg, "lat", "", "a=\"1\"", b1, 2));
    ck_assert_ptr_null(metrics_histogram_get(reg, "lat", "", "a=\"2\"", b2, 2));
    ck_assert_ptr_null(metrics_histogram_get(reg, "lat2", "", NULL, bad, 2));
    ck_assert_ptr_null(metrics_histogram_get(reg, "lat3", "", "le=\"1\"", b1, 2));
    ck_assert_ptr_nonnull(metrics_gauge_get(reg, "lat4", "", "le=\"1\""));

    /* A histogram's sample names are taken, in both directions. */
    ck_assert_ptr_null(metrics_counter_get(reg, "lat_count", "", NULL));
    ck_assert_ptr_null(metrics_gauge_get(reg, "lat_bucket", "", NULL));
    ck_assert_ptr_nonnull(metrics_gauge_get(reg, "depth_sum", "", NULL));
    ck_assert_ptr_null(metrics_histogram_get(reg, "depth", "", NULL, b1, 2));

    /* A callback gauge and a settable gauge never share a series. */
    ck_assert_ptr_nonnull(metrics_gauge_get(reg, "q", "", "p=\"0\""));
    ck_assert_int_eq(metrics_gauge_fn(reg, "q", "", "p=\"0\"", lag_fn, NULL), -1);
    ck_assert_int_eq(metrics_gauge_fn(reg, "q", "", "p=\"1\"", lag_fn, NULL), 0);
    ck_assert_ptr_null(metrics_gauge_get(reg, "q", "", "p=\"1\""));
    ck_assert_int_eq(metrics_gauge_fn(reg, "q", "", "p=\"2\"", NULL, NULL), -1);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_null_handles_are_ignored)
{
    metrics_counter_add(NULL, 1);
    metrics_counter_inc(NULL);
    metrics_gauge_set(NULL, 1);
    metrics_gauge_add(NULL, 1);
    metrics_histogram_observe(NULL, 1);
    ck_assert_uint_eq(metrics_counter_value(NULL), 0);
    ck_assert_double_eq(metrics_gauge_value(NULL), 0);
    metrics_registry_free(NULL);
}
END_TEST

START_TEST(test_metrics_empty_registry_renders_an_empty_string)
{
    metrics_registry *reg = metrics_registry_new();
    char *out = render(reg);
    ck_assert_str_eq(out, "");
    free(out);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_metrics_gauge_values_print_exactly)
{
    metrics_registry *reg = metrics_registry_new();
    metrics_gauge *g = metrics_gauge_get(reg, "g", "", NULL);
    static const struct {
        double v;
        const char *text;
    } cases_[] = {
        {0.1, "0.1"},
        {1e21, "1e+21"},
        {-3, "-3"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
        {1.0 / 3, "0.33333333333333331"},
        {9007199254740993.0, "9007199254740992"},
    };
    for (size_t i = 0; i < sizeof(cases_) / sizeof(cases_[0]); i++) {
        metrics_gauge_set(g, cases_[i].v);
        char *out = render(reg);
        char want[64];
        snprintf(want, sizeof(want), "\ng %s\n", cases_[i].text);
        ck_assert_msg(strstr(out, want) != NULL, "want %s in %s", cases_[i].text, out);
        free(out);
    }
    metrics_gauge_set(g, 10);
    metrics_gauge_add(g, -2.5);
    ck_assert_double_eq(metrics_gauge_value(g), 7.5);
    metrics_registry_free(reg);
}
END_TEST

#define THREADS 8
#define ROUNDS  100000

typedef struct {
    metrics_registry *reg;
    metrics_counter *c;
    metrics_gauge *g;
    metrics_histogram *h;
} shared;

static void *hammer(void *arg)
{
    shared *s = arg;
    for (int i = 0; i < ROUNDS; i++) {
        metrics_counter_inc(s->c);
        metrics_gauge_add(s->g, 1);
        metrics_histogram_observe(s->h, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5 */
        if (i % 10000 == 0) {
            /* Registration and scrapes race the updates too. */
            metrics_counter *again = metrics_counter_get(s->reg, "hits_total", "", NULL);
            metrics_counter_add(again, 0);
            char *out = NULL;
            size_t len;
            if (metrics_render(s->reg, &out, &len) == 0)
                free(out);
        }
    }
    return NULL;
}

START_TEST(test_metrics_concurrent_updates_add_up_exactly)
{
    static const double bounds[] = {0.5, 1};
    shared s = {.reg = metrics_registry_new()};
    s.c = metrics_counter_get(s.reg, "hits_total", "", NULL);
    s.g = metrics_gauge_get(s.reg, "level", "", NULL);
    s.h = metrics_histogram_get(s.reg, "size", "", NULL, bounds, 2);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);

    ck_assert_uint_eq(metrics_counter_value(s.c), (uint64_t)THREADS * ROUNDS);
    ck_assert_double_eq(metrics_gauge_value(s.g), (double)THREADS * ROUNDS);
    char *out = render(s.reg);
    /* Per thread: a quarter each of 0, 0.5, 1, 1.5; sum 0.75 per observation. */
    ck_assert_ptr_nonnull(strstr(out, "size_bucket{le=\"0.5\"} 400000\n"));
    ck_assert_ptr_nonnull(strstr(out, "size_bucket{le=\"1\"} 600000\n"));
    ck_assert_ptr_nonnull(strstr(out, "size_bucket{le=\"+Inf\"} 800000\n"));
    ck_assert_ptr_nonnull(strstr(out, "size_sum 600000\n"));
    ck_assert_ptr_nonnull(strstr(out, "size_count 800000\n"));
    free(out);
    metrics_registry_free(s.reg);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_metrics_renders_exact_exposition_text),
    TEST_ENTRY(test_metrics_escapes_label_values_and_help),
    TEST_ENTRY(test_metrics_labels_builder_refuses_bad_names_and_overflow),
    TEST_ENTRY(test_metrics_histogram_buckets_are_cumulative),
    TEST_ENTRY(test_metrics_default_latency_buckets_span_half_ms_to_ten_s),
    TEST_ENTRY(test_metrics_get_returns_the_same_series_for_the_same_labels),
    TEST_ENTRY(test_metrics_refuses_invalid_names_labels_and_conflicts),
    TEST_ENTRY(test_metrics_null_handles_are_ignored),
    TEST_ENTRY(test_metrics_empty_registry_renders_an_empty_string),
    TEST_ENTRY(test_metrics_gauge_values_print_exactly),
    TEST_ENTRY(test_metrics_concurrent_updates_add_up_exactly),
};

TEST_MAIN("metrics", cases)

/*
 * promtext: the counters a registry renders read back exactly, summed over
 * label sets or narrowed to one label, and nothing else is taken for them.
 */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "promtext.h"
#include "testutil.h"

START_TEST(test_promtext_reads_back_what_the_registry_renders)
{
    metrics_registry *reg = metrics_registry_new();
    metrics_counter_add(metrics_counter_get(reg, "herald_worker_sends_total", "sends",
                                            "channel=\"email\",outcome=\"sent\""),
                        7);
    metrics_counter_add(metrics_counter_get(reg, "herald_worker_sends_total", "sends",
                                            "channel=\"email\",outcome=\"transient\""),
                        2);
    metrics_counter_add(metrics_counter_get(reg, "herald_worker_sends_total_x", "other", NULL),
                        100);
    metrics_counter_add(metrics_counter_get(reg, "herald_dispatcher_events_total", "events", NULL),
                        41);
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(metrics_render(reg, &text, &len), 0);
    double v = -1;
    ck_assert(promtext_sum(text, len, "herald_worker_sends_total", NULL, &v));
    ck_assert(v == 9);
    ck_assert(promtext_sum(text, len, "herald_worker_sends_total", "outcome=\"sent\"", &v));
    ck_assert(v == 7);
    ck_assert(promtext_sum(text, len, "herald_dispatcher_events_total", NULL, &v));
    ck_assert(v == 41);
    ck_assert(!promtext_sum(text, len, "herald_worker_sends_total", "outcome=\"sen\"", &v));
    ck_assert(!promtext_sum(text, len, "herald_worker_sends", NULL, &v));
    ck_assert(!promtext_sum(text, len, "herald_dispatcher_events_total", "a=\"b\"", &v));
    free(text);
    metrics_registry_free(reg);
}
END_TEST

START_TEST(test_promtext_skips_comments_and_broken_lines)
{
    static const char text[] = "# HELP a_total x\n# TYPE a_total counter\na_total 3\n"
                               "a_total{x=\"1\"\na_total{x=\"2\"} zz\na_total{x=\"3\"} 1.5";
    double v = 0;
    ck_assert(promtext_sum(text, strlen(text), "a_total", NULL, &v));
    ck_assert(v == 4.5);
    ck_assert(!promtext_sum("", 0, "a_total", NULL, &v));
    ck_assert(v == 0);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_promtext_reads_back_what_the_registry_renders),
    TEST_ENTRY(test_promtext_skips_comments_and_broken_lines),
};

TEST_MAIN("promtext", cases)

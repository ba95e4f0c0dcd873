/*
 * testutil: the shared shape of every Check suite.
 *
 * A suite file defines its cases in one table and ends with
 *   TEST_MAIN("config", cases)
 * Integration suites call test_require_env() first: without the services
 * started by dev/services they fail loudly rather than pass vacuously.
 */
#ifndef HERALD_TESTUTIL_H
#define HERALD_TESTUTIL_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct test_case_entry {
    const char *name;
    const TTest *const *fn; /* START_TEST's handle, by address */
} test_case_entry;

#define TEST_ENTRY(fn)                                                                             \
    {                                                                                              \
#fn, &fn                                                                                   \
    }

static inline Suite *test_build_suite(const char *name, const test_case_entry *cases, size_t n,
                                      int timeout_s)
{
    Suite *s = suite_create(name);
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, timeout_s);
        tcase_add_test(tc, *cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* Returns the variable's value or exits the suite with a clear failure. */
static inline const char *test_require_env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "%s is not set: start the services with `eval \"$(dev/services up)\"`\n",
                name);
        exit(1);
    }
    return v;
}

#define TEST_MAIN_TIMEOUT(suite_name, cases, timeout_s)                                            \
    int main(void)                                                                                 \
    {                                                                                              \
        Suite *s =                                                                                 \
            test_build_suite(suite_name, cases, sizeof(cases) / sizeof(cases[0]), timeout_s);      \
        SRunner *sr = srunner_create(s);                                                           \
        srunner_run_all(sr, CK_NORMAL);                                                            \
        int failed = srunner_ntests_failed(sr);                                                    \
        srunner_free(sr);                                                                          \
        return failed == 0 ? 0 : 1;                                                                \
    }

#define TEST_MAIN(suite_name, cases) TEST_MAIN_TIMEOUT(suite_name, cases, 60)

#endif

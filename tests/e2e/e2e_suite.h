/*
 * e2e_suite: the shape of an end-to-end suite.
 *
 * The cases of a suite share one running Herald (e2e_harness), so they run
 * in order in this process (CK_NOFORK): the first case brings the stack up,
 * the last one stops it and checks every daemon exits 0, and main() cleans
 * up whatever a failed case left.  Check's per-case timeout does not apply
 * without fork; every wait is bounded by the harness instead, and ctest's
 * TIMEOUT bounds the whole run.
 */
#ifndef HERALD_TESTS_E2E_SUITE_H
#define HERALD_TESTS_E2E_SUITE_H

#include "e2e_harness.h"

/*
 * A suite's last case: the stack came up, no daemon died on its own during
 * the run, and every one exits 0 on SIGTERM.
 */
static inline void e2e_expect_clean_stop(e2e_env *env, bool up)
{
    ck_assert_msg(up, "the stack did not start");
    ck_assert_msg(e2e_all_alive(env), "a daemon died during the run");
    ck_assert_int_eq(e2e_down(env), 0);
}

static inline int e2e_suite_main(const char *name, const test_case_entry *cases, size_t n,
                                 e2e_env *env)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 0);
    for (size_t i = 0; i < n; i++)
        tcase_add_test(tc, *cases[i].fn);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_VERBOSE);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    (void)e2e_down(env); /* after a failure: stop what is left, drop, delete */
    curl_global_cleanup();
    return failed == 0 ? 0 : 1;
}

#define E2E_MAIN(suite_name, cases, env)                                                           \
    int main(void)                                                                                 \
    {                                                                                              \
        return e2e_suite_main(suite_name, cases, sizeof(cases) / sizeof(cases[0]), &(env));        \
    }

#endif

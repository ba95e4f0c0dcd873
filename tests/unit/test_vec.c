/*
 * vec: growth keeps the contents, doubles, and refuses sizes past SIZE_MAX.
 */
#include <stdint.h>
#include <stdlib.h>

#include "testutil.h"
#include "vec.h"

START_TEST(test_grow_doubles_and_keeps_the_contents)
{
    int *v = NULL;
    size_t n = 0, cap = 0, grows = 0;
    for (int i = 0; i < 1000; i++) {
        if (n == cap) {
            int *g = vec_grow(v, &cap, sizeof *g);
            ck_assert_ptr_nonnull(g);
            v = g;
            grows++;
        }
        v[n++] = i;
    }
    ck_assert_uint_eq(cap, 1024);
    ck_assert_uint_eq(grows, 7); /* 16, 32, ..., 1024 */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], i);
    free(v);
}
END_TEST

START_TEST(test_grow_refuses_an_overflowing_size)
{
    char one = 'x';
    char *v = malloc(1);
    ck_assert_ptr_nonnull(v);
    *v = one;
    size_t cap = SIZE_MAX / 4 + 1;
    ck_assert_ptr_null(vec_grow(v, &cap, 4));
    ck_assert_uint_eq(cap, SIZE_MAX / 4 + 1); /* unchanged, and v still ours */
    ck_assert_int_eq(*v, 'x');
    free(v);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_grow_doubles_and_keeps_the_contents),
    TEST_ENTRY(test_grow_refuses_an_overflowing_size),
};

TEST_MAIN("vec", cases)

/*
 * dict: lookup, removal, growth and iteration over caller-owned nodes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dict.h"
#include "testutil.h"

typedef struct item {
    dict_node node;
    int value;
    char key[32];
} item;

static item *item_new(const char *key, int value)
{
    item *it = calloc(1, sizeof(*it));
    ck_assert_ptr_nonnull(it);
    snprintf(it->key, sizeof(it->key), "%s", key);
    it->value = value;
    return it;
}

static int find_value(const dict *d, const char *key)
{
    dict_node *n = dict_find(d, key);
    return n != NULL ? dict_record(n, item, node)->value : -1;
}

/* Adds n items keyed fmt % i with value i to an empty dict of that initial size hint. */
static void fill(dict *d, size_t size_hint, const char *fmt, int n)
{
    ck_assert_int_eq(dict_init(d, size_hint), 0);
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), fmt, i);
        item *it = item_new(key, i);
        ck_assert_ptr_null(dict_find(d, key));
        dict_add(d, &it->node, it->key);
    }
}

static void free_all(dict *d)
{
    dict_iter it;
    dict_iter_init(&it, d);
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL;) {
        dict_remove(d, n);
        free(dict_record(n, item, node));
    }
    ck_assert_uint_eq(dict_count(d), 0);
    dict_fini(d);
}

START_TEST(test_dict_finds_what_was_added_and_nothing_else)
{
    dict d;
    ck_assert_int_eq(dict_init(&d, 0), 0);
    item *a = item_new("alice", 1), *b = item_new("bob", 2);
    dict_add(&d, &a->node, a->key);
    dict_add(&d, &b->node, b->key);
    ck_assert_int_eq(find_value(&d, "alice"), 1);
    ck_assert_int_eq(find_value(&d, "bob"), 2);
    ck_assert_ptr_null(dict_find(&d, "carol"));
    ck_assert_ptr_null(dict_find(&d, ""));
    ck_assert_ptr_null(dict_find(&d, "alicex"));
    ck_assert_uint_eq(dict_count(&d), 2);
    free_all(&d);
}
END_TEST

START_TEST(test_dict_remove_unlinks_only_that_key)
{
    dict d;
    ck_assert_int_eq(dict_init(&d, 1), 0);
    item *its[40];
    char key[32];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        its[i] = item_new(key, i);
        dict_add(&d, &its[i]->node, its[i]->key);
    }
    for (int i = 0; i < 40; i += 2) {
        dict_remove(&d, &its[i]->node);
        free(its[i]);
    }
    ck_assert_uint_eq(dict_count(&d), 20);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(find_value(&d, key), i % 2 ? i : -1);
    }
    free_all(&d);
}
END_TEST

START_TEST(test_dict_keeps_every_key_across_growth)
{
    enum { N = 5000 };
    dict d;
    fill(&d, 16, "user-%d", N);
    char key[32];
    ck_assert_uint_eq(dict_count(&d), N);
    ck_assert_uint_ge(d.nbuckets, N / 2);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        ck_assert_int_eq(find_value(&d, key), i);
    }
    free_all(&d);
}
END_TEST

START_TEST(test_dict_iteration_visits_each_node_once)
{
    enum { N = 300 };
    dict d;
    fill(&d, 0, "%d", N);
    int seen[N] = {0};
    dict_iter it;
    dict_iter_init(&it, &d);
    size_t visits = 0;
    for (dict_node *n; (n = dict_iter_next(&it)) != NULL; visits++)
        seen[dict_record(n, item, node)->value]++;
    ck_assert_uint_eq(visits, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    free_all(&d);
}
END_TEST

START_TEST(test_dict_zeroed_table_is_empty)
{
    dict d = {0};
    ck_assert_ptr_null(dict_find(&d, "x"));
    ck_assert_uint_eq(dict_count(&d), 0);
    dict_iter it;
    dict_iter_init(&it, &d);
    ck_assert_ptr_null(dict_iter_next(&it));
    dict_fini(&d);
}
END_TEST

START_TEST(test_dict_hashed_calls_match_the_plain_ones)
{
    dict d;
    ck_assert_int_eq(dict_init(&d, 0), 0);
    item *a = item_new("same", 7);
    uint64_t h = dict_hash(a->key);
    ck_assert_ptr_null(dict_find_hashed(&d, a->key, h));
    dict_add_hashed(&d, &a->node, a->key, h);
    ck_assert_ptr_eq(dict_find(&d, "same"), &a->node);
    ck_assert_ptr_eq(dict_find_hashed(&d, "same", dict_hash("same")), &a->node);
    free_all(&d);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_dict_finds_what_was_added_and_nothing_else),
    TEST_ENTRY(test_dict_remove_unlinks_only_that_key),
    TEST_ENTRY(test_dict_keeps_every_key_across_growth),
    TEST_ENTRY(test_dict_iteration_visits_each_node_once),
    TEST_ENTRY(test_dict_zeroed_table_is_empty),
    TEST_ENTRY(test_dict_hashed_calls_match_the_plain_ones),
};

TEST_MAIN("dict", cases)

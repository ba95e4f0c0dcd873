/*
 * lru: recency order, byte and entry limits, TTL expiry, and that every
 * value reaches the destructor exactly once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lru.h"
#include "testutil.h"

/* Values are heap ints; the destructor tallies what it frees so a test can
 * prove nothing is freed twice (ASan) or never (the tally). */
static int destroyed;

static void count_free(void *v)
{
    destroyed++;
    free(v);
}

static int *val(int v)
{
    int *p = malloc(sizeof(*p));
    ck_assert_ptr_nonnull(p);
    *p = v;
    return p;
}

static void put_ok(lru_cache *c, const char *key, int v, size_t size, int64_t expires)
{
    ck_assert_int_eq(lru_put(c, key, val(v), size, expires), 0);
}

static int get_int(lru_cache *c, const char *key, int64_t now)
{
    int *p = lru_get(c, key, now);
    return p != NULL ? *p : -1;
}

START_TEST(test_lru_get_returns_what_put_stored)
{
    destroyed = 0;
    lru_cache *c = lru_new(4, 0, count_free);
    ck_assert_ptr_nonnull(c);
    put_ok(c, "alice", 1, 1, LRU_NEVER);
    put_ok(c, "bob", 2, 1, LRU_NEVER);
    ck_assert_int_eq(get_int(c, "alice", 0), 1);
    ck_assert_int_eq(get_int(c, "bob", 0), 2);
    ck_assert_ptr_null(lru_get(c, "carol", 0));
    ck_assert_uint_eq(lru_count(c), 2);
    lru_free(c);
    ck_assert_int_eq(destroyed, 2);
}
END_TEST

START_TEST(test_lru_evicts_least_recently_used_first)
{
    destroyed = 0;
    lru_cache *c = lru_new(3, 0, count_free);
    put_ok(c, "a", 1, 0, LRU_NEVER);
    put_ok(c, "b", 2, 0, LRU_NEVER);
    put_ok(c, "c", 3, 0, LRU_NEVER);
    /* Reading a makes b the least recently used. */
    ck_assert_int_eq(get_int(c, "a", 0), 1);
    put_ok(c, "d", 4, 0, LRU_NEVER);
    ck_assert_ptr_null(lru_get(c, "b", 0));
    ck_assert_int_eq(destroyed, 1);
    /* Now c is the oldest untouched entry. */
    put_ok(c, "e", 5, 0, LRU_NEVER);
    ck_assert_ptr_null(lru_get(c, "c", 0));
    ck_assert_int_eq(get_int(c, "a", 0), 1);
    ck_assert_int_eq(get_int(c, "d", 0), 4);
    ck_assert_int_eq(get_int(c, "e", 0), 5);

    lru_stats st;
    lru_stats_get(c, &st);
    ck_assert_uint_eq(st.evictions, 2);
    ck_assert_uint_eq(st.entries, 3);
    lru_free(c);
    ck_assert_int_eq(destroyed, 5);
}
END_TEST

START_TEST(test_lru_entry_expires_at_its_deadline)
{
    destroyed = 0;
    lru_cache *c = lru_new(4, 0, count_free);
    put_ok(c, "k", 7, 0, 1000);
    ck_assert_int_eq(get_int(c, "k", 999), 7);
    ck_assert_int_eq(destroyed, 0);
    /* expires_at_ms is the first instant the entry is stale. */
    ck_assert_ptr_null(lru_get(c, "k", 1000));
    ck_assert_int_eq(destroyed, 1);
    ck_assert_uint_eq(lru_count(c), 0);

    lru_stats st;
    lru_stats_get(c, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.expirations, 1);
    ck_assert_uint_eq(st.evictions, 0);
    lru_free(c);
    ck_assert_int_eq(destroyed, 1);
}
END_TEST

START_TEST(test_lru_purge_expired_drops_only_expired_entries)
{
    destroyed = 0;
    lru_cache *c = lru_new(8, 0, count_free);
    put_ok(c, "early", 1, 0, 100);
    put_ok(c, "late", 2, 0, 500);
    put_ok(c, "never", 3, 0, LRU_NEVER);
    put_ok(c, "also-early", 4, 0, 50);
    ck_assert_uint_eq(lru_purge_expired(c, 200), 2);
    ck_assert_int_eq(destroyed, 2);
    ck_assert_uint_eq(lru_count(c), 2);
    ck_assert_int_eq(get_int(c, "late", 200), 2);
    ck_assert_int_eq(get_int(c, "never", 200), 3);
    lru_free(c);
    ck_assert_int_eq(destroyed, 4);
}
END_TEST

START_TEST(test_lru_replacing_a_key_destroys_the_old_value_once)
{
    destroyed = 0;
    lru_cache *c = lru_new(4, 0, count_free);
    put_ok(c, "k", 1, 10, LRU_NEVER);
    put_ok(c, "k", 2, 20, LRU_NEVER);
    ck_assert_int_eq(destroyed, 1);
    ck_assert_int_eq(get_int(c, "k", 0), 2);
    ck_assert_uint_eq(lru_count(c), 1);

    lru_stats st;
    lru_stats_get(c, &st);
    ck_assert_uint_eq(st.bytes, 20);

    /* Putting the very same pointer again (to refresh its TTL) must not
     * free it. */
    int *same = lru_get(c, "k", 0);
    ck_assert_int_eq(lru_put(c, "k", same, 20, 5000), 0);
    ck_assert_int_eq(destroyed, 1);
    ck_assert_ptr_eq(lru_get(c, "k", 4999), same);
    ck_assert_ptr_null(lru_get(c, "k", 5000));
    ck_assert_int_eq(destroyed, 2);
    lru_free(c);
    ck_assert_int_eq(destroyed, 2);
}
END_TEST

START_TEST(test_lru_remove_and_clear_destroy_each_value_once)
{
    destroyed = 0;
    lru_cache *c = lru_new(10, 0, count_free);
    put_ok(c, "a", 1, 0, LRU_NEVER);
    put_ok(c, "b", 2, 0, LRU_NEVER);
    put_ok(c, "c", 3, 0, LRU_NEVER);
    ck_assert(lru_remove(c, "b"));
    ck_assert(!lru_remove(c, "b"));
    ck_assert_int_eq(destroyed, 1);
    lru_clear(c);
    ck_assert_int_eq(destroyed, 3);
    ck_assert_uint_eq(lru_count(c), 0);
    ck_assert_ptr_null(lru_get(c, "a", 0));
    /* Still usable after a clear. */
    put_ok(c, "a", 4, 0, LRU_NEVER);
    ck_assert_int_eq(get_int(c, "a", 0), 4);
    lru_free(c);
    ck_assert_int_eq(destroyed, 4);
}
END_TEST

START_TEST(test_lru_byte_limit_evicts_until_the_new_entry_fits)
{
    destroyed = 0;
    lru_cache *c = lru_new(100, 100, count_free);
    put_ok(c, "a", 1, 40, LRU_NEVER);
    put_ok(c, "b", 2, 40, LRU_NEVER);
    put_ok(c, "c", 3, 20, LRU_NEVER);
    ck_assert_int_eq(destroyed, 0);
    /* 70 more bytes: a (40) and b (40) must go, c stays. */
    put_ok(c, "d", 4, 70, LRU_NEVER);
    ck_assert_int_eq(destroyed, 2);
    ck_assert_ptr_null(lru_get(c, "a", 0));
    ck_assert_ptr_null(lru_get(c, "b", 0));
    ck_assert_int_eq(get_int(c, "c", 0), 3);
    ck_assert_int_eq(get_int(c, "d", 0), 4);

    lru_stats st;
    lru_stats_get(c, &st);
    ck_assert_uint_eq(st.bytes, 90);
    ck_assert_uint_eq(st.evictions, 2);

    /* An entry larger than the whole cache is refused and stays the
     * caller's; the cache is left as it was. */
    int *big = val(9);
    ck_assert_int_eq(lru_put(c, "big", big, 101, LRU_NEVER), -1);
    ck_assert_uint_eq(lru_count(c), 2);
    free(big);
    ck_assert_int_eq(lru_put(c, "null", NULL, 1, LRU_NEVER), -1);
    lru_free(c);
    ck_assert_int_eq(destroyed, 4);
}
END_TEST

START_TEST(test_lru_keeps_the_newest_entries_across_table_growth)
{
    destroyed = 0;
    lru_cache *c = lru_new(5000, 0, count_free);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        put_ok(c, key, i, 1, LRU_NEVER);
    }
    ck_assert_uint_eq(lru_count(c), 5000);
    ck_assert_int_eq(destroyed, 15000);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        ck_assert_int_eq(get_int(c, key, 0), i >= 15000 ? i : -1);
    }
    lru_stats st;
    lru_stats_get(c, &st);
    ck_assert_uint_eq(st.hits, 5000);
    ck_assert_uint_eq(st.misses, 15000);
    lru_free(c);
    ck_assert_int_eq(destroyed, 20000);
}
END_TEST

START_TEST(test_lru_without_destructor_leaves_values_alone)
{
    static int a = 1, b = 2;
    lru_cache *c = lru_new(1, 0, NULL);
    ck_assert_int_eq(lru_put(c, "a", &a, 0, LRU_NEVER), 0);
    ck_assert_int_eq(lru_put(c, "b", &b, 0, LRU_NEVER), 0);
    ck_assert_ptr_null(lru_get(c, "a", 0));
    ck_assert_ptr_eq(lru_get(c, "b", 0), &b);
    lru_free(c);
}
END_TEST

START_TEST(test_lru_rejects_zero_capacity)
{
    ck_assert_ptr_null(lru_new(0, 0, NULL));
    lru_free(NULL);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_lru_get_returns_what_put_stored),
    TEST_ENTRY(test_lru_evicts_least_recently_used_first),
    TEST_ENTRY(test_lru_entry_expires_at_its_deadline),
    TEST_ENTRY(test_lru_purge_expired_drops_only_expired_entries),
    TEST_ENTRY(test_lru_replacing_a_key_destroys_the_old_value_once),
    TEST_ENTRY(test_lru_remove_and_clear_destroy_each_value_once),
    TEST_ENTRY(test_lru_byte_limit_evicts_until_the_new_entry_fits),
    TEST_ENTRY(test_lru_keeps_the_newest_entries_across_table_growth),
    TEST_ENTRY(test_lru_without_destructor_leaves_values_alone),
    TEST_ENTRY(test_lru_rejects_zero_capacity),
};

TEST_MAIN("lru", cases)

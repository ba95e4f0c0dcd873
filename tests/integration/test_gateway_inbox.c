/*
 * The inbox API and user tokens over real HTTP, against a real database
 * and broker: paging, filters, every mark and its counts, concurrent marks,
 * token authorisation, minting (API and heraldctl) and the update record
 * on inbox.updates.  Messages are seeded directly in SQL, as the in-app
 * worker would store them.
 */
#include "gateway_harness.h"

#include "usertoken.h"

#include <pthread.h>

#define SECRET "inbox-test-secret-of-at-least-32-bytes"

static char updates_topic[96];

/* Creates "<prefix>inbox.updates", which the gateway produces marks to. */
static void updates_topic_create(void)
{
    char err[512];
    snprintf(updates_topic, sizeof updates_topic, "%sinbox.updates", h_prefix);
    kafka_topic_spec spec = {.name = updates_topic, .partitions = 1, .replication_factor = 1};
    kafka_topic_result res;
    ck_assert_msg(kafka_topics_create(getenv("HERALD_KAFKA_BROKERS"), NULL, &spec, 1, 30000, &res,
                                      err, sizeof err) == KAFKA_OK &&
                      res.outcome != KAFKA_TOPIC_FAILED,
                  "cannot create %s: %s %s", updates_topic, err, res.msg);
}

static void updates_topic_delete(void)
{
    char err[512];
    const char *topics[] = {updates_topic};
    if (kafka_topics_delete(getenv("HERALD_KAFKA_BROKERS"), NULL, topics, 1, 30000, err,
                            sizeof err) != KAFKA_OK)
        fprintf(stderr, "inbox suite: topic %s not deleted: %s\n", updates_topic, err);
}

/* A fresh user id, so cases sharing the database never meet. */
static void new_user(const char *tag, char *out, size_t outlen)
{
    char rnd[16];
    ck_assert_int_eq(id_random_token(rnd, sizeof rnd, 6), 0);
    for (char *p = rnd; *p; p++)
        if (*p == '-' || *p == '_')
            *p = 'x';
    snprintf(out, outlen, "inbox-%s-%s", tag, rnd);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO users (user_id) VALUES ('%s')", out);
    h_sql(sql);
}

/*
 * Seeds n messages for user, the i-th created i minutes before a fixed
 * time, with category "c<i % 2>"; messages 0 and 1 share one created_at
 * (the id breaks the tie).  Unread and unseen, seq 0.
 */
static void seed(const char *user, int n)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO inbox_messages (message_id, user_id, delivery_key, event_id, "
             "event_type, category, title, body, data, created_at, seq) "
             "SELECT gen_random_uuid(), '%s', '%s:' || i, gen_random_uuid(), 'order.shipped', "
             "'c' || (i %% 2), 'Title ' || i, 'Body ' || i, jsonb_build_object('i', i), "
             "timestamptz '2026-12-01 12:00:00.123456+00' - "
             "(greatest(i, 1) - 1) * interval '1 minute', 0 "
             "FROM generate_series(0, %d) AS i",
             user, user, n - 1);
    h_sql(sql);
}

static void get(h_gateway *g, const char *key, h_resp *r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void get(h_gateway *g, const char *key, h_resp *r, const char *fmt, ...)
{
    char path[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    h_http(g, "GET", path, key, NULL, NULL, NULL, r);
}

static void mark(h_gateway *g, const char *key, const char *user, const char *body, h_resp *r)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", user);
    h_http(g, "POST", path, key, NULL, body, NULL, r);
    ck_assert_msg(r->status == 200, "mark %s: %ld %s", body, r->status, r->body);
}

static long num(const h_resp *r, const char *name)
{
    json_t *v = json_object_get(r->json, name);
    ck_assert_msg(json_is_integer(v), "%s missing in %s", name, r->body);
    return (long)json_integer_value(v);
}

/* The counts the messages themselves give, to hold the kept ones against. */
static long db_long(const char *fmt, const char *user)
{
    char sql[512], v[64];
    snprintf(sql, sizeof sql, fmt, user);
    h_sql_value(sql, v, sizeof v);
    return atol(v);
}

static void assert_counts_exact(h_gateway *g, const char *user)
{
    h_resp r;
    get(g, h_pubkey, &r, "/v1/users/%s/inbox/counts", user);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(num(&r, "unread_count"),
                     db_long("SELECT count(*) FROM inbox_messages WHERE user_id = '%s' "
                             "AND archived_at IS NULL AND read_at IS NULL",
                             user));
    ck_assert_int_eq(num(&r, "unseen_count"),
                     db_long("SELECT count(*) FROM inbox_messages WHERE user_id = '%s' "
                             "AND archived_at IS NULL AND seen_at IS NULL",
                             user));
    h_resp_clear(&r);
}

/* The ids of the page in r, appended to ids (n so far). */
static void page_ids(const h_resp *r, char ids[][ID_UUID_SIZE], size_t *n, size_t cap)
{
    json_t *msgs = json_object_get(r->json, "messages");
    ck_assert_msg(json_is_array(msgs), "%s", r->body);
    for (size_t i = 0; i < json_array_size(msgs); i++) {
        ck_assert_uint_lt(*n, cap);
        snprintf(ids[(*n)++], ID_UUID_SIZE, "%s",
                 json_string_value(json_object_get(json_array_get(msgs, i), "id")));
    }
}

START_TEST(test_inbox_pages_newest_first_without_gaps_or_duplicates)
{
    h_gateway g;
    h_start(&g, NULL);
    char user[64], want[16][ID_UUID_SIZE], got[32][ID_UUID_SIZE], cursor[256] = "";
    new_user("page", user, sizeof user);
    seed(user, 11);
    /* The order the contract promises, from the database itself. */
    PGconn *db = h_db();
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT message_id FROM inbox_messages WHERE user_id = '%s' "
             "ORDER BY created_at DESC, message_id DESC",
             user);
    PGresult *res = PQexec(db, sql);
    ck_assert_int_eq(PQntuples(res), 11);
    for (int i = 0; i < 11; i++)
        snprintf(want[i], ID_UUID_SIZE, "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    PQfinish(db);

    size_t n = 0;
    int pages = 0;
    h_resp r;
    for (; pages < 10; pages++) {
        if (cursor[0] == '\0')
            get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=4", user);
        else
            get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=4&after=%s", user, cursor);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        ck_assert_int_eq(num(&r, "unread_count"), 11);
        ck_assert_int_eq(num(&r, "unseen_count"), 11);
        page_ids(&r, got, &n, 32);
        const char *next = json_string_value(json_object_get(r.json, "next_cursor"));
        if (next == NULL) {
            h_resp_clear(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        h_resp_clear(&r);
    }
    ck_assert_int_eq(pages, 2); /* 4 + 4 + 3 */
    ck_assert_uint_eq(n, 11);
    for (size_t i = 0; i < 11; i++)
        ck_assert_str_eq(got[i], want[i]);

    /* before: the page just newer than a cursor, still newest first. */
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=4", user);
    char first_next[256];
    snprintf(first_next, sizeof first_next, "%s",
             json_string_value(json_object_get(r.json, "next_cursor")));
    h_resp_clear(&r);
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=4&after=%s", user, first_next);
    const char *prev = json_string_value(json_object_get(r.json, "prev_cursor"));
    ck_assert_ptr_nonnull(prev);
    char prevbuf[256];
    snprintf(prevbuf, sizeof prevbuf, "%s", prev);
    h_resp_clear(&r);
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=2&before=%s", user, prevbuf);
    ck_assert_int_eq(r.status, 200);
    n = 0;
    page_ids(&r, got, &n, 32);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(got[0], want[2]);
    ck_assert_str_eq(got[1], want[3]);
    ck_assert_ptr_nonnull(json_object_get(r.json, "prev_cursor"));
    h_resp_clear(&r);

    /* A message in full. */
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=200", user);
    json_t *m = json_array_get(json_object_get(r.json, "messages"), 10);
    ck_assert_str_eq(json_string_value(json_object_get(m, "event_type")), "order.shipped");
    ck_assert_str_eq(json_string_value(json_object_get(m, "title")), "Title 10");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(m, "data"), "i")), 10);
    ck_assert_str_eq(json_string_value(json_object_get(m, "created_at")),
                     "2026-12-01T11:51:00.123Z");
    ck_assert(json_is_null(json_object_get(m, "read_at")));
    ck_assert_ptr_null(json_object_get(r.json, "next_cursor"));
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* The number of messages a list request answers with. */
static size_t count_of(h_gateway *g, const char *user, const char *query)
{
    h_resp r;
    get(g, h_pubkey, &r, "/v1/users/%s/inbox?page_size=200&%s", user, query);
    ck_assert_msg(r.status == 200, "%s: %ld %s", query, r.status, r.body);
    size_t n = json_array_size(json_object_get(r.json, "messages"));
    h_resp_clear(&r);
    return n;
}

static void bad_query(h_gateway *g, const char *user, const char *query, const char *field)
{
    h_resp r;
    get(g, h_pubkey, &r, "/v1/users/%s/inbox?%s", user, query);
    ck_assert_msg(r.status == 400, "%s: %ld %s", query, r.status, r.body);
    ck_assert_str_eq(h_error_code(&r), "invalid_field");
    ck_assert_str_eq(h_error_field(&r), field);
    h_resp_clear(&r);
}

START_TEST(test_inbox_filters_take_what_they_name)
{
    h_gateway g;
    h_start(&g, NULL);
    char user[64], sql[512];
    new_user("filter", user, sizeof user);
    seed(user, 10);
    /* i = 0..2 read (and seen), 3..4 seen only, 9 archived. */
    snprintf(sql, sizeof sql,
             "UPDATE inbox_messages SET seen_at = now(), read_at = CASE WHEN title IN "
             "('Title 0', 'Title 1', 'Title 2') THEN now() END WHERE user_id = '%s' AND title IN "
             "('Title 0', 'Title 1', 'Title 2', 'Title 3', 'Title 4');"
             "UPDATE inbox_messages SET archived_at = now() WHERE user_id = '%s' "
             "AND title = 'Title 9'",
             user, user);
    h_sql(sql);
    ck_assert_uint_eq(count_of(&g, user, "status=all"), 9);
    ck_assert_uint_eq(count_of(&g, user, "status=unread"), 6);
    ck_assert_uint_eq(count_of(&g, user, "status=read"), 3);
    ck_assert_uint_eq(count_of(&g, user, "status=unseen"), 4);
    ck_assert_uint_eq(count_of(&g, user, "status=seen"), 5);
    ck_assert_uint_eq(count_of(&g, user, "archived=include"), 10);
    ck_assert_uint_eq(count_of(&g, user, "archived=only"), 1);
    ck_assert_uint_eq(count_of(&g, user, "category=c1"), 4); /* 1 3 5 7; 9 is archived */
    ck_assert_uint_eq(count_of(&g, user, "category=c1&archived=include"), 5);
    /* Created 12:00:00.123 (0, 1), 11:59 (2), 11:58 (3), ... 11:52 (9). */
    ck_assert_uint_eq(count_of(&g, user, "since=2026-12-01T11:58:00Z"), 4);
    ck_assert_uint_eq(count_of(&g, user, "until=2026-12-01T11:58:00Z"), 5);
    ck_assert_uint_eq(
        count_of(&g, user, "since=2026-12-01T11:55:00Z&until=2026-12-01T11:59:00Z&status=unread"),
        4);

    bad_query(&g, user, "page_size=0", "page_size");
    bad_query(&g, user, "page_size=201", "page_size");
    bad_query(&g, user, "page_size=x", "page_size");
    bad_query(&g, user, "status=new", "status");
    bad_query(&g, user, "archived=yes", "archived");
    bad_query(&g, user, "since=yesterday", "since");
    bad_query(&g, user, "until=2026-13-01T00:00:00Z", "until");
    bad_query(&g, user, "category=Bad%20Cat", "category");
    bad_query(&g, user, "after=bm90IGEgY3Vyc29y", "after");
    bad_query(&g, user, "after=x&before=y", "before");

    h_resp r;
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox", "inbox-nobody");
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* The ids of the user's messages, newest first, into ids[0..n). */
static void ids_of(const char *user, char ids[][ID_UUID_SIZE], int n)
{
    PGconn *db = h_db();
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT message_id FROM inbox_messages WHERE user_id = '%s' "
             "ORDER BY created_at DESC, message_id DESC",
             user);
    PGresult *res = PQexec(db, sql);
    ck_assert_int_eq(PQntuples(res), n);
    for (int i = 0; i < n; i++)
        snprintf(ids[i], ID_UUID_SIZE, "%s", PQgetvalue(res, i, 0));
    PQclear(res);
    PQfinish(db);
}

/* A message's state column, "" when NULL. */
static void col_of(const char *id, const char *col, char *out, size_t outlen)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT coalesce(%s::text, '') FROM inbox_messages "
             "WHERE message_id = '%s'",
             col, id);
    h_sql_value(sql, out, outlen);
}

static void expect_mark(h_gateway *g, const char *user, const char *body, long changed, long unread,
                        long unseen, long seq)
{
    h_resp r;
    mark(g, h_pubkey, user, body, &r);
    ck_assert_msg(num(&r, "changed") == changed && num(&r, "unread_count") == unread &&
                      num(&r, "unseen_count") == unseen && num(&r, "seq") == seq,
                  "%s -> %s (want changed %ld unread %ld unseen %ld seq %ld)", body, r.body,
                  changed, unread, unseen, seq);
    h_resp_clear(&r);
}

START_TEST(test_inbox_marks_follow_the_state_rules)
{
    h_gateway g;
    h_start(&g, NULL);
    char user[64], id[6][ID_UUID_SIZE], body[512], t1[64], t2[64];
    new_user("mark", user, sizeof user);
    seed(user, 6);
    ids_of(user, id, 6);

    /* seen: once; its time stays. */
    snprintf(body, sizeof body, "{\"action\":\"seen\",\"ids\":[\"%s\"]}", id[0]);
    expect_mark(&g, user, body, 1, 6, 5, 1);
    col_of(id[0], "seen_at", t1, sizeof t1);
    ck_assert_str_ne(t1, "");
    expect_mark(&g, user, body, 0, 6, 5, 1); /* nothing moved: no new seq */
    col_of(id[0], "seen_at", t2, sizeof t2);
    ck_assert_str_eq(t1, t2);

    /* read implies seen, and keeps the first seen time. */
    snprintf(body, sizeof body, "{\"action\":\"read\",\"ids\":[\"%s\",\"%s\"]}", id[0], id[1]);
    expect_mark(&g, user, body, 2, 4, 4, 2);
    col_of(id[0], "seen_at", t2, sizeof t2);
    ck_assert_str_eq(t1, t2);
    col_of(id[1], "seen_at", t2, sizeof t2);
    ck_assert_str_ne(t2, "");

    /* unread clears read only: never unseen. */
    snprintf(body, sizeof body, "{\"action\":\"unread\",\"ids\":[\"%s\"]}", id[1]);
    expect_mark(&g, user, body, 1, 5, 4, 3);
    col_of(id[1], "seen_at", t2, sizeof t2);
    ck_assert_str_ne(t2, "");

    /* archived leaves the counts; unarchived brings it back as it was. */
    snprintf(body, sizeof body, "{\"action\":\"archived\",\"ids\":[\"%s\",\"%s\"]}", id[1], id[2]);
    expect_mark(&g, user, body, 2, 3, 3, 4);
    snprintf(body, sizeof body, "{\"action\":\"read\",\"ids\":[\"%s\"]}", id[2]);
    expect_mark(&g, user, body, 1, 3, 3, 5); /* read while archived: counts stay */
    snprintf(body, sizeof body, "{\"action\":\"unarchived\",\"ids\":[\"%s\",\"%s\"]}", id[1],
             id[2]);
    expect_mark(&g, user, body, 2, 4, 3, 6); /* id1 unread+seen, id2 read */

    /* interacted implies read and seen, and keeps its first time. */
    snprintf(body, sizeof body, "{\"action\":\"interacted\",\"ids\":[\"%s\"]}", id[3]);
    expect_mark(&g, user, body, 1, 3, 2, 7);
    col_of(id[3], "interacted_at", t1, sizeof t1);
    snprintf(body, sizeof body, "{\"action\":\"unread\",\"ids\":[\"%s\"]}", id[3]);
    expect_mark(&g, user, body, 1, 4, 2, 8);
    snprintf(body, sizeof body, "{\"action\":\"interacted\",\"ids\":[\"%s\"]}", id[3]);
    expect_mark(&g, user, body, 1, 3, 2, 9);
    col_of(id[3], "interacted_at", t2, sizeof t2);
    ck_assert_str_eq(t1, t2);

    /* Each changed row carries the change's seq. */
    char seq[16];
    col_of(id[3], "seq", seq, sizeof seq);
    ck_assert_str_eq(seq, "9");

    /* all, with a filter, then without; i4 and i5 are the two oldest. */
    expect_mark(&g, user,
                "{\"action\":\"read\",\"all\":true,\"filter\":{\"until\":"
                "\"2026-12-01T11:57:30Z\"}}",
                2, 1, 0, 10);
    expect_mark(&g, user, "{\"action\":\"read\",\"all\":true}", 1, 0, 0, 11);
    expect_mark(&g, user, "{\"action\":\"archived\",\"all\":true}", 6, 0, 0, 12);
    expect_mark(&g, user, "{\"action\":\"unread\",\"all\":true}", 0, 0, 0, 12);
    expect_mark(&g, user, "{\"action\":\"unarchived\",\"all\":true}", 6, 0, 0, 13);
    expect_mark(&g, user,
                "{\"action\":\"unread\",\"all\":true,\"filter\":{\"until\":"
                "\"2026-12-01T11:58:00Z\"}}",
                2, 2, 0, 14);
    /* c1 is i1, i3, i5; i5 is unread already. */
    expect_mark(&g, user, "{\"action\":\"unread\",\"all\":true,\"filter\":{\"category\":\"c1\"}}",
                2, 4, 0, 15);
    assert_counts_exact(&g, user);

    h_resp r;
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox/counts", user);
    ck_assert_int_eq(num(&r, "seq"), 15);
    h_resp_clear(&r);

    /* What a mark refuses. */
    static const char *const bad[][2] = {
        {"{\"action\":\"starred\",\"all\":true}", "action"},
        {"{\"action\":\"read\"}", "ids"},
        {"{\"action\":\"read\",\"ids\":[],\"all\":true}", "ids"},
        {"{\"action\":\"read\",\"ids\":[]}", "ids"},
        {"{\"action\":\"read\",\"ids\":[\"nope\"]}", "ids"},
        {"{\"action\":\"read\",\"all\":false}", "all"},
        {"{\"action\":\"read\",\"all\":true,\"filter\":{\"status\":\"x\"}}", "filter.status"},
        {"{\"action\":\"read\",\"all\":true,\"extra\":1}", "extra"},
    };
    char path[128];
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", user);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_http(&g, "POST", path, h_pubkey, NULL, bad[i][0], NULL, &r);
        ck_assert_msg(r.status == 400, "%s: %ld %s", bad[i][0], r.status, r.body);
        ck_assert_str_eq(h_error_field(&r), bad[i][1]);
        h_resp_clear(&r);
    }
    h_http(&g, "POST", "/v1/users/inbox-nobody/inbox/mark", h_pubkey, NULL,
           "{\"action\":\"read\",\"all\":true}", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

typedef struct marker {
    h_gateway *g;
    const char *user;
    char (*ids)[ID_UUID_SIZE];
    int first;
} marker;

/* Toggles read and unread over overlapping halves of the inbox. */
static void *mark_loop(void *arg)
{
    marker *m = arg;
    char body[1024];
    h_resp r;
    for (int round = 0; round < 15; round++) {
        const char *action = round % 2 == 0 ? "read" : "unread";
        int o = snprintf(body, sizeof body, "{\"action\":\"%s\",\"ids\":[", action);
        for (int i = 0; i < 6; i++)
            o += snprintf(body + o, sizeof body - (size_t)o, "%s\"%s\"", i ? "," : "",
                          m->ids[m->first + i]);
        snprintf(body + o, sizeof body - (size_t)o, "]}");
        mark(m->g, h_pubkey, m->user, body, &r);
        h_resp_clear(&r);
        mark(m->g, h_pubkey, m->user,
             round % 3 == 0 ? "{\"action\":\"archived\",\"all\":true,\"filter\":{\"category\":"
                              "\"c0\"}}"
                            : "{\"action\":\"unarchived\",\"all\":true}",
             &r);
        h_resp_clear(&r);
    }
    return NULL;
}

/*
 * Two devices of one user, each through its own gateway (its own pool of
 * database connections, as two gateway processes have), marking
 * overlapping messages at once.
 */
START_TEST(test_inbox_concurrent_marks_keep_counts_exact)
{
    h_gateway g, g2;
    h_start(&g, "--db-pool-size", "4", NULL);
    h_start(&g2, "--db-pool-size", "4", NULL);
    char user[64], ids[10][ID_UUID_SIZE];
    new_user("race", user, sizeof user);
    seed(user, 10);
    ids_of(user, ids, 10);
    marker a = {&g, user, ids, 0}, b = {&g2, user, ids, 4};
    pthread_t ta, tb;
    ck_assert_int_eq(pthread_create(&ta, NULL, mark_loop, &a), 0);
    ck_assert_int_eq(pthread_create(&tb, NULL, mark_loop, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_counts_exact(&g, user);
    /* Every change had its own number. */
    h_resp r;
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox/counts", user);
    long seq = num(&r, "seq");
    h_resp_clear(&r);
    ck_assert_int_eq(seq,
                     db_long("SELECT max(seq) FROM inbox_messages WHERE user_id = '%s'", user));
    h_stop(&g2);
    h_stop(&g);
}
END_TEST

/* The inbox.updates records keyed by user, read from the start until a
 * quiet second after the deadline's first half; returns how many. */
static int read_updates(const char *user, json_t **last, int timeout_ms)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", getenv("HERALD_KAFKA_BROKERS"), err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "test-inbox-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_msg(rk != NULL, "%s", err);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, updates_topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    int found = 0;
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms, quiet_until = 0;
    while (timeutil_monotonic_ms() < deadline &&
           (quiet_until == 0 || timeutil_monotonic_ms() < quiet_until)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key_len == strlen(user) &&
            memcmp(m->key, user, m->key_len) == 0) {
            found++;
            json_decref(*last);
            *last = json_loadb(m->payload, m->len, 0, NULL);
            quiet_until = timeutil_monotonic_ms() + 1500;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return found;
}

START_TEST(test_inbox_change_produces_one_update_record)
{
    h_gateway g;
    h_start(&g, NULL);
    char user[64], id[3][ID_UUID_SIZE], body[256];
    updates_topic_create();
    new_user("upd", user, sizeof user);
    seed(user, 3);
    ids_of(user, id, 3);
    h_resp r;
    snprintf(body, sizeof body, "{\"action\":\"read\",\"ids\":[\"%s\",\"%s\"]}", id[0], id[1]);
    mark(&g, h_pubkey, user, body, &r);
    h_resp_clear(&r);
    mark(&g, h_pubkey, user, body, &r); /* moves nothing: no record */
    ck_assert_int_eq(num(&r, "changed"), 0);
    h_resp_clear(&r);

    json_t *rec = NULL;
    ck_assert_int_eq(read_updates(user, &rec, 20000), 1);
    ck_assert_ptr_nonnull(rec);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "user_id")), user);
    ck_assert_str_eq(json_string_value(json_object_get(rec, "kind")), "state");
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "seq")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "unread_count")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "unseen_count")), 1);
    json_t *ids = json_object_get(rec, "message_ids");
    ck_assert_uint_eq(json_array_size(ids), 2);
    const char *a = json_string_value(json_array_get(ids, 0)),
               *b = json_string_value(json_array_get(ids, 1));
    ck_assert((strcmp(a, id[0]) == 0 && strcmp(b, id[1]) == 0) ||
              (strcmp(a, id[1]) == 0 && strcmp(b, id[0]) == 0));
    int64_t at = 0;
    char why[128];
    ck_assert_int_eq(
        timeutil_parse_rfc3339(json_string_value(json_object_get(rec, "at")), &at, why, sizeof why),
        0);
    json_decref(rec);
    h_stop(&g);
    updates_topic_delete();
}
END_TEST

/* Mints a token through the API with key; returns the status, the token into out. */
static long mint_api(h_gateway *g, const char *key, const char *user, const char *body, char *out)
{
    char path[256];
    h_resp r;
    snprintf(path, sizeof path, "/v1/users/%s/tokens", user);
    h_http(g, "POST", path, key, NULL, body, NULL, &r);
    long status = r.status;
    if (status == 201) {
        ck_assert_str_eq(json_string_value(json_object_get(r.json, "user_id")), user);
        ck_assert_ptr_nonnull(json_string_value(json_object_get(r.json, "expires_at")));
        snprintf(out, USERTOKEN_SIZE, "%s", json_string_value(json_object_get(r.json, "token")));
    } else {
        (void)h_error_code(&r);
    }
    h_resp_clear(&r);
    return status;
}

static long status_of(h_gateway *g, const char *method, const char *path, const char *key,
                      const char *body)
{
    h_resp r;
    h_http(g, method, path, key, NULL, body, NULL, &r);
    long s = r.status;
    if (s >= 400)
        (void)h_error_code(&r);
    h_resp_clear(&r);
    return s;
}

START_TEST(test_user_token_opens_its_own_inbox_only)
{
    setenv("HERALD_USER_TOKEN_SECRET", SECRET, 1);
    h_gateway g;
    h_start(&g, NULL);
    char user[64], other[64], tok[USERTOKEN_SIZE], path[256], err[128];
    new_user("tok", user, sizeof user);
    new_user("tok2", other, sizeof other);
    seed(user, 2);
    ck_assert_int_eq(mint_api(&g, h_pubkey, user, NULL, tok), 201);
    ck_assert_int_eq(mint_api(&g, h_adminkey, user, "{\"ttl_seconds\":60}", tok), 201);

    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    ck_assert_int_eq(status_of(&g, "GET", path, tok, NULL), 200);
    snprintf(path, sizeof path, "/v1/users/%s/inbox/counts", user);
    ck_assert_int_eq(status_of(&g, "GET", path, tok, NULL), 200);
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", user);
    ck_assert_int_eq(status_of(&g, "POST", path, tok, "{\"action\":\"seen\",\"all\":true}"), 200);

    /* Another user's inbox: 403. */
    snprintf(path, sizeof path, "/v1/users/%s/inbox", other);
    ck_assert_int_eq(status_of(&g, "GET", path, tok, NULL), 403);
    /* Nothing but the inbox: not even its own user, tokens or events. */
    snprintf(path, sizeof path, "/v1/users/%s", user);
    ck_assert_int_eq(status_of(&g, "GET", path, tok, NULL), 403);
    snprintf(path, sizeof path, "/v1/users/%s/tokens", user);
    ck_assert_int_eq(status_of(&g, "POST", path, tok, NULL), 403);
    ck_assert_int_eq(
        status_of(&g, "POST", "/v1/events", tok, "{\"type\":\"order.shipped\",\"user_id\":\"u1\"}"),
        403);

    /* Expired, forged, malformed: 401. */
    char bad[USERTOKEN_SIZE];
    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    ck_assert_int_eq(usertoken_mint(SECRET, strlen(SECRET), user, timeutil_now_ms() / 1000 - 1, bad,
                                    sizeof bad, err, sizeof err),
                     0);
    ck_assert_int_eq(status_of(&g, "GET", path, bad, NULL), 401);
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(status_of(&g, "GET", path, bad, NULL), 401);
    ck_assert_int_eq(usertoken_mint("another-secret-that-is-also-32-bytes", 36, user,
                                    timeutil_now_ms() / 1000 + 60, bad, sizeof bad, err,
                                    sizeof err),
                     0);
    ck_assert_int_eq(status_of(&g, "GET", path, bad, NULL), 401);
    ck_assert_int_eq(status_of(&g, "GET", path, "v1.garbage", NULL), 401);
    ck_assert_int_eq(status_of(&g, "POST", "/v1/events", "v1.garbage", "{}"), 401);

    /* What minting refuses. */
    char t[USERTOKEN_SIZE];
    ck_assert_int_eq(mint_api(&g, h_pubkey, user, "{\"ttl_seconds\":59}", t), 400);
    ck_assert_int_eq(mint_api(&g, h_pubkey, user, "{\"ttl_seconds\":86401}", t), 400);
    ck_assert_int_eq(mint_api(&g, h_pubkey, user, "{\"ttl\":60}", t), 400);
    ck_assert_int_eq(mint_api(&g, h_pubkey, "inbox-nobody", NULL, t), 404);
    ck_assert_int_eq(mint_api(&g, NULL, user, NULL, t), 401);
    h_stop(&g);
    unsetenv("HERALD_USER_TOKEN_SECRET");
}
END_TEST

START_TEST(test_user_tokens_without_a_secret_are_refused)
{
    unsetenv("HERALD_USER_TOKEN_SECRET");
    h_gateway g;
    h_start(&g, NULL);
    char user[64], tok[USERTOKEN_SIZE], err[128], path[256];
    new_user("nosecret", user, sizeof user);
    ck_assert_int_eq(mint_api(&g, h_pubkey, user, NULL, tok), 503);
    ck_assert_int_eq(usertoken_mint(SECRET, strlen(SECRET), user, timeutil_now_ms() / 1000 + 60,
                                    tok, sizeof tok, err, sizeof err),
                     0);
    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    ck_assert_int_eq(status_of(&g, "GET", path, tok, NULL), 401);
    h_stop(&g);

    /* A secret too short stops startup, naming the variable. */
    setenv("HERALD_USER_TOKEN_SECRET", "too-short", 1);
    gateway_config cfg = {0};
    char *argv[] = {"herald-gateway", NULL};
    ck_assert_int_eq(gateway_config_load(&cfg, 1, argv, err, sizeof err), CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "HERALD_USER_TOKEN_SECRET"));
    ck_assert_ptr_null(strstr(err, "too-short"));
    gateway_config_free(&cfg);
    unsetenv("HERALD_USER_TOKEN_SECRET");
}
END_TEST

START_TEST(test_heraldctl_token_mints_a_token_the_gateway_takes)
{
    setenv("HERALD_USER_TOKEN_SECRET", SECRET, 1);
    h_gateway g;
    h_start(&g, NULL);
    char user[64], bin[512], out[512], errout[512], path[256];
    new_user("ctl", user, sizeof user);
    testsupport_bin("heraldctl", bin, sizeof bin);
    char *argv[] = {bin, "token", "--user", user, "--ttl", "120", NULL};
    const char *env[] = {"HERALD_USER_TOKEN_SECRET=" SECRET, NULL};
    int rc = testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 10000);
    ck_assert_msg(rc == 0, "heraldctl token: %d %s", rc, errout);
    out[strcspn(out, "\n")] = '\0';
    snprintf(path, sizeof path, "/v1/users/%s/inbox/counts", user);
    ck_assert_int_eq(status_of(&g, "GET", path, out, NULL), 200);

    const char *noenv[] = {"HERALD_USER_TOKEN_SECRET=", NULL};
    rc = testsupport_run(argv, noenv, out, sizeof out, errout, sizeof errout, 10000);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(errout, "HERALD_USER_TOKEN_SECRET"));

    /* A bad user id: the flag is named, once. */
    char *bad[] = {bin, "token", "--user", "a b", NULL};
    rc = testsupport_run(bad, env, out, sizeof out, errout, sizeof errout, 10000);
    ck_assert_int_eq(rc, 2);
    ck_assert_str_eq(errout, "heraldctl token: --user: must be 1..128 characters of A-Z a-z 0-9 . "
                             "_ : @ + -\n");
    h_stop(&g);
    unsetenv("HERALD_USER_TOKEN_SECRET");
}
END_TEST

START_TEST(test_heraldctl_inbox_purge_keeps_counts_exact)
{
    h_gateway g;
    h_start(&g, NULL);
    char user[64], fresh[64], sql[512], bin[512], out[512], errout[512], dburl[1024];
    new_user("purge", user, sizeof user);
    new_user("purge-new", fresh, sizeof fresh);
    seed(user, 5);
    seed(fresh, 2);
    /* user: 5 old (one read, one archived) and 2 new; fresh: 2 new, no state row yet. */
    snprintf(sql, sizeof sql,
             "UPDATE inbox_messages SET created_at = now() - interval '100 days' "
             "WHERE user_id = '%s'",
             user);
    h_sql(sql);
    h_resp r;
    mark(&g, h_pubkey, user, "{\"action\":\"read\",\"all\":true,\"filter\":{\"category\":\"c1\"}}",
         &r);
    h_resp_clear(&r);
    char ids[5][ID_UUID_SIZE], body[256];
    ids_of(user, ids, 5);
    snprintf(body, sizeof body, "{\"action\":\"archived\",\"ids\":[\"%s\"]}", ids[4]);
    mark(&g, h_pubkey, user, body, &r);
    h_resp_clear(&r);
    snprintf(sql, sizeof sql,
             "INSERT INTO inbox_messages (message_id, user_id, delivery_key, event_id, "
             "event_type, body, seq) SELECT gen_random_uuid(), '%s', '%s:new' || i, "
             "gen_random_uuid(), 't', 'b', 0 FROM generate_series(1, 2) i; "
             "UPDATE inbox_state SET unread = unread + 2, unseen = unseen + 2 "
             "WHERE user_id = '%s'",
             user, user, user);
    h_sql(sql);
    assert_counts_exact(&g, user);

    testsupport_bin("heraldctl", bin, sizeof bin);
    snprintf(dburl, sizeof dburl, "HERALD_DATABASE_URL=%s", h_dburl);
    char *argv[] = {bin, "inbox", "purge", "--older-than", "720h", "--batch", "2", NULL};
    const char *env[] = {dburl, NULL};
    int rc = testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 30000);
    ck_assert_msg(rc == 0, "heraldctl inbox purge: %d %s", rc, errout);
    ck_assert_int_eq(atol(out), 5);
    ck_assert_int_eq(db_long("SELECT count(*) FROM inbox_messages WHERE user_id = '%s'", user), 2);
    ck_assert_int_eq(db_long("SELECT count(*) FROM inbox_messages WHERE user_id = '%s'", fresh), 2);
    assert_counts_exact(&g, user);
    assert_counts_exact(&g, fresh);
    get(&g, h_pubkey, &r, "/v1/users/%s/inbox/counts", user);
    ck_assert_int_eq(num(&r, "unread_count"), 2);
    h_resp_clear(&r);

    /* HERALD_INBOX_RETENTION is the default; nothing is left to delete. */
    char *argv2[] = {bin, "inbox", "purge", NULL};
    const char *env2[] = {dburl, "HERALD_INBOX_RETENTION=720h", NULL};
    rc = testsupport_run(argv2, env2, out, sizeof out, errout, sizeof errout, 30000);
    ck_assert_msg(rc == 0, "heraldctl inbox purge: %d %s", rc, errout);
    ck_assert_int_eq(atol(out), 0);
    char *argv3[] = {bin, "inbox", "purge", "--older-than", "5m", NULL};
    rc = testsupport_run(argv3, env, out, sizeof out, errout, sizeof errout, 30000);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_nonnull(strstr(errout, "--older-than"));
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_inbox_pages_newest_first_without_gaps_or_duplicates),
    TEST_ENTRY(test_inbox_filters_take_what_they_name),
    TEST_ENTRY(test_inbox_marks_follow_the_state_rules),
    TEST_ENTRY(test_inbox_concurrent_marks_keep_counts_exact),
    TEST_ENTRY(test_inbox_change_produces_one_update_record),
    TEST_ENTRY(test_user_token_opens_its_own_inbox_only),
    TEST_ENTRY(test_user_tokens_without_a_secret_are_refused),
    TEST_ENTRY(test_heraldctl_token_mints_a_token_the_gateway_takes),
    TEST_ENTRY(test_heraldctl_inbox_purge_keeps_counts_exact),
};

TEST_MAIN("gateway_inbox", cases)

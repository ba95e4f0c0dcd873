/*
 * heraldctl dlq against the real broker and database: dead letters written
 * with the contract's headers are listed (table and JSON) and filtered,
 * shown one by one and counted; requeue puts them back on their original
 * topic with their key, a reset attempt count and a requeued_from header,
 * exactly once, even across a run that died between claim and send; a dry
 * run changes nothing; bad arguments exit 2 and an unreachable broker 1.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#include "test_ctl_harness.h"
#include "timeutil.h"

/* Three email dead letters (u-1..u-3) and one dispatcher one, all on partition 0. */
static void seed(ctl_harness *h, char *dlq, size_t dlqlen, char *email, size_t emaillen)
{
    char events[256], body[512], user[16], orig_off[16];
    ctl_topic(h, "dlq", dlq, dlqlen);
    ctl_topic(h, "deliveries.email", email, emaillen);
    ctl_topic(h, "events", events, sizeof(events));
    for (int i = 1; i <= 3; i++) {
        snprintf(user, sizeof(user), "u-%d", i);
        snprintf(orig_off, sizeof(orig_off), "%d", 10 + i);
        snprintf(body, sizeof(body),
                 "{\"idempotency_key\":\"k-%d\",\"event_id\":\"e-%d\",\"user_id\":\"u-%d\","
                 "\"channel\":\"email\",\"attempt\":5,\"address\":\"u%d@example.com\"}",
                 i, i, i, i);
        ctl_produce(h, dlq, user, body, "trace-id", "t-1", "herald.dlq.reason",
                    i == 3 ? "permanent_failure" : "max_attempts", "herald.dlq.error",
                    i == 3 ? "550 mailbox unavailable" : "451 try again later", "herald.dlq.stage",
                    "worker.email", "herald.original.topic", email, "herald.original.partition",
                    "0", "herald.original.offset", orig_off, "herald.original.timestamp",
                    "1700000000000", "herald.attempts", "5", "herald.failed_at",
                    "2026-01-01T00:00:00.000Z", NULL);
    }
    ctl_produce(h, dlq, "topic:news", "{not json", "herald.dlq.reason", "invalid_json",
                "herald.dlq.error", "'}' expected", "herald.dlq.stage", "dispatcher",
                "herald.original.topic", events, "herald.original.partition", "1",
                "herald.original.offset", "7", "herald.attempts", "1", "herald.failed_at",
                "2026-01-01T00:00:00.000Z", NULL);
}

START_TEST(test_dlq_list_shows_reason_and_error_and_filters)
{
    ctl_harness h;
    char dlq[256], email[256];
    ctl_setup(&h, 0);
    seed(&h, dlq, sizeof(dlq), email, sizeof(email));

    ck_assert_int_eq(ctl_run(&h, "dlq", "list", NULL), 0);
    ck_assert_msg(strstr(h.out, "max_attempts") && strstr(h.out, "451 try again later") &&
                      strstr(h.out, "550 mailbox unavailable") && strstr(h.out, "invalid_json") &&
                      strstr(h.out, "0:3") && strstr(h.out, "4 records"),
                  "%s", h.out);

    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--json", NULL), 0);
    json_error_t jerr;
    json_t *arr = json_loads(h.out, 0, &jerr);
    ck_assert_msg(json_is_array(arr), "%s: %s", jerr.text, h.out);
    ck_assert_int_eq((int)json_array_size(arr), 4);
    json_t *first = json_array_get(arr, 0);
    ck_assert_str_eq(json_string_value(json_object_get(first, "reason")), "max_attempts");
    ck_assert_str_eq(json_string_value(json_object_get(first, "user_id")), "u-1");
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(first, "headers"), "trace-id")), "t-1");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(first, "payload"), "attempt")), 5);
    json_decref(arr);

    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--reason", "permanent_failure", "--json", NULL),
                     0);
    arr = json_loads(h.out, 0, NULL);
    ck_assert_int_eq((int)json_array_size(arr), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(arr, 0), "user_id")), "u-3");
    json_decref(arr);

    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--stage", "dispatcher", NULL), 0);
    ck_assert_msg(strstr(h.out, "1 record\n") && !strstr(h.out, "worker.email"), "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--channel", "email", "--limit", "2", NULL), 0);
    ck_assert_msg(strstr(h.out, "2 records (more match") != NULL, "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--since", "2999-01-01T00:00:00Z", NULL), 0);
    ck_assert_msg(strstr(h.out, "0 records") != NULL, "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--since", "-1h", "--json", NULL), 0);
    arr = json_loads(h.out, 0, NULL);
    ck_assert_int_eq((int)json_array_size(arr), 4);
    json_decref(arr);
    ctl_teardown(&h);
}
END_TEST

/*
 * --since and replay's window start where the time is, found with
 * offsets-for-times, instead of reading the topic from its start and
 * filtering: the reader's range holds only the records in the window.
 */
START_TEST(test_reader_range_starts_and_ends_at_the_given_times)
{
    ctl_harness h;
    char dlq[256], err[512];
    ctl_setup(&h, 0);
    ctl_topic(&h, "dlq", dlq, sizeof(dlq));
    int64_t t0 = timeutil_now_ms() - 3 * 3600 * 1000LL;
    kafka_producer *p = kafka_producer_new(h.brokers, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_msg(p != NULL, "%s", err);
    for (int i = 0; i < 3; i++) {
        char v[32];
        snprintf(v, sizeof(v), "{\"n\":%d}", i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            kafka_producer_rk(p), RD_KAFKA_V_TOPIC(dlq), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(v, strlen(v)),
            RD_KAFKA_V_TIMESTAMP(t0 + i * 3600 * 1000LL), RD_KAFKA_V_END);
        ck_assert_msg(e == RD_KAFKA_RESP_ERR_NO_ERROR, "%s", rd_kafka_err2str(e));
    }
    ck_assert_int_eq(kafka_producer_flush(p, 30000), 0);
    kafka_producer_destroy(p);

    /* from t0 + 90 min: only the third record (offset 2) */
    partread_range range = PARTREAD_ALL(10000);
    range.from_ms = t0 + 90 * 60 * 1000LL;
    partread *r = NULL;
    rd_kafka_message_t *m = NULL;
    ck_assert_int_eq(partread_open(h.brokers, NULL, dlq, &range, &r, err, sizeof(err)),
                     PARTREAD_OK);
    ck_assert_int_eq(partread_total(r), 1);
    ck_assert_int_eq(partread_next(r, &m, err, sizeof(err)), PARTREAD_OK);
    ck_assert_int_eq(m->offset, 2);
    rd_kafka_message_destroy(m);
    ck_assert_int_eq(partread_next(r, &m, err, sizeof(err)), PARTREAD_END);
    partread_close(r);

    /* from t0 + 30 min to t0 + 90 min: only the second (offset 1) */
    range.from_ms = t0 + 30 * 60 * 1000LL;
    range.to_ms = t0 + 90 * 60 * 1000LL;
    ck_assert_int_eq(partread_open(h.brokers, NULL, dlq, &range, &r, err, sizeof(err)),
                     PARTREAD_OK);
    ck_assert_int_eq(partread_total(r), 1);
    ck_assert_int_eq(partread_next(r, &m, err, sizeof(err)), PARTREAD_OK);
    ck_assert_int_eq(m->offset, 1);
    rd_kafka_message_destroy(m);
    ck_assert_int_eq(partread_next(r, &m, err, sizeof(err)), PARTREAD_END);
    partread_close(r);
    ctl_teardown(&h);
}
END_TEST

START_TEST(test_dlq_show_and_stats_describe_records)
{
    ctl_harness h;
    char dlq[256], email[256];
    ctl_setup(&h, 0);
    seed(&h, dlq, sizeof(dlq), email, sizeof(email));

    ck_assert_int_eq(ctl_run(&h, "dlq", "show", "0:2", NULL), 0);
    ck_assert_msg(strstr(h.out, "550 mailbox unavailable") &&
                      strstr(h.out, "\"user_id\": \"u-3\"") &&
                      strstr(h.out, "herald.original.offset"),
                  "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "dlq", "show", "0:3", "--json", NULL), 0);
    json_t *j = json_loads(h.out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "payload")), "{not json");
    ck_assert_str_eq(json_string_value(json_object_get(j, "stage")), "dispatcher");
    json_decref(j);
    ck_assert_int_eq(ctl_run(&h, "dlq", "show", "0:99", NULL), 1);
    ck_assert_msg(strstr(h.err, "0:99") != NULL, "%s", h.err);

    ck_assert_int_eq(ctl_run(&h, "dlq", "stats", NULL), 0);
    ck_assert_msg(strstr(h.out, "4 records"), "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "dlq", "stats", "--json", NULL), 0);
    j = json_loads(h.out, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "total")), 4);
    json_t *groups = json_object_get(j, "groups");
    ck_assert_int_eq((int)json_array_size(groups), 3);
    int found = 0;
    for (size_t i = 0; i < json_array_size(groups); i++) {
        json_t *g = json_array_get(groups, i);
        if (strcmp(json_string_value(json_object_get(g, "stage")), "worker.email") == 0 &&
            strcmp(json_string_value(json_object_get(g, "reason")), "max_attempts") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(g, "count")), 2);
            found = 1;
        }
    }
    ck_assert(found);
    json_decref(j);
    ctl_teardown(&h);
}
END_TEST

typedef struct seen {
    int n;
    char keys[8][32];
    char values[8][512];
    char from[8][256];
    int has_dlq_headers;
    char trace[8][32];
} seen;

static void collect(rd_kafka_message_t *m, void *opaque)
{
    seen *s = opaque;
    if (s->n >= 8)
        return;
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)m->key_len, (const char *)m->key);
    snprintf(s->values[s->n], sizeof(s->values[0]), "%.*s", (int)m->len, (const char *)m->payload);
    kafka_header_get(m, "herald.requeued_from", s->from[s->n], sizeof(s->from[0]));
    kafka_header_get(m, "trace-id", s->trace[s->n], sizeof(s->trace[0]));
    char tmp[64];
    if (kafka_header_get(m, "herald.dlq.reason", tmp, sizeof(tmp)) >= 0 ||
        kafka_header_get(m, "herald.attempts", tmp, sizeof(tmp)) >= 0 ||
        kafka_header_get(m, "herald.original.topic", tmp, sizeof(tmp)) >= 0)
        s->has_dlq_headers = 1;
    s->n++;
}

START_TEST(test_dlq_requeue_sends_back_once_and_dry_run_changes_nothing)
{
    ctl_harness h;
    char dlq[256], email[256], events[256], sql[2048];
    ctl_setup(&h, 1);
    seed(&h, dlq, sizeof(dlq), email, sizeof(email));
    ctl_topic(&h, "events", events, sizeof(events));

    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--stage", "worker.email", "--dry-run", NULL),
                     0);
    ck_assert_msg(strstr(h.out, "3 would be requeued"), "%s %s", h.out, h.err);
    ck_assert_int_eq(ctl_read_all(&h, email, NULL, NULL), 0);
    ck_assert_int_eq(testsupport_db_count(h.db_url, "SELECT 1 FROM dlq_requeues"), 0);

    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--stage", "worker.email", NULL), 0);
    ck_assert_msg(strstr(h.out, "3 requeued, 0 already requeued"), "%s %s", h.out, h.err);
    seen s = {0};
    ck_assert_int_eq(ctl_read_all(&h, email, collect, &s), 3);
    ck_assert_int_eq(s.has_dlq_headers, 0);
    for (int i = 0; i < 3; i++) {
        json_t *v = json_loads(s.values[i], 0, NULL);
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(json_integer_value(json_object_get(v, "attempt")), 1);
        const char *user = json_string_value(json_object_get(v, "user_id"));
        ck_assert_str_eq(s.keys[i], user); /* the original key */
        char want[300];
        int n = atoi(user + 2);
        snprintf(want, sizeof(want), "%s:0:%d", dlq, n - 1);
        ck_assert_str_eq(s.from[i], want);
        ck_assert_str_eq(s.trace[i], "t-1"); /* other headers kept */
        char key[16];
        snprintf(key, sizeof(key), "k-%d", n);
        ck_assert_str_eq(json_string_value(json_object_get(v, "idempotency_key")), key);
        json_decref(v);
    }
    snprintf(sql, sizeof(sql),
             "SELECT 1 FROM dlq_requeues WHERE dlq_topic = '%s' AND acked_at IS NOT NULL "
             "AND requeued_to = '%s'",
             dlq, email);
    ck_assert_int_eq(testsupport_db_count(h.db_url, sql), 3);

    /* Again: nothing more is sent. */
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--stage", "worker.email", NULL), 0);
    ck_assert_msg(strstr(h.out, "0 requeued, 3 already requeued"), "%s %s", h.out, h.err);
    ck_assert_int_eq(ctl_read_all(&h, email, NULL, NULL), 3);
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--dry-run", NULL), 0);
    ck_assert_msg(strstr(h.out, "0 would be requeued, 3 already requeued, 1 skipped"), "%s", h.out);

    /* The whole DLQ only when asked for: not a terminal, so no question. */
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", NULL), 2);
    ck_assert_str_eq(h.err, "heraldctl dlq requeue: without a filter or PARTITION:OFFSET this "
                            "requeues every record of the DLQ: give --all (see them first with "
                            "--dry-run)\n");
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--all", "--stage", "dispatcher", NULL), 2);
    ck_assert_msg(strstr(h.err, "--all") != NULL, "%s", h.err);
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--all", NULL), 0);
    ck_assert_msg(strstr(h.out, "0 requeued, 3 already requeued, 1 skipped"), "%s %s", h.out,
                  h.err);

    /* Not JSON: it would fail again, so even by position it stays, counted as skipped. */
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "0:3", NULL), 0);
    ck_assert_msg(strstr(h.out, "0 requeued, 0 already requeued, 1 skipped"), "%s", h.out);
    ck_assert_msg(strstr(h.err, "heraldctl dlq requeue: 0:3 skipped: invalid_json: not valid "
                                "JSON, it would fail again\n"),
                  "%s", h.err);
    ck_assert_int_eq(ctl_read_all(&h, events, NULL, NULL), 0);
    ck_assert_int_eq(testsupport_db_count(h.db_url, "SELECT 1 FROM dlq_requeues"), 3);
    ctl_teardown(&h);
}
END_TEST

static void exec_sql(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

START_TEST(test_dlq_requeue_settles_claims_a_dead_run_left_unconfirmed)
{
    ctl_harness h;
    char dlq[256], email[256], sql[2048], from[300];
    ctl_setup(&h, 1);
    seed(&h, dlq, sizeof(dlq), email, sizeof(email));

    /* A run that died after sending 0:0 and one that died before sending 0:1. */
    snprintf(from, sizeof(from), "%s:0:0", dlq);
    ctl_produce(&h, email, "u-1", "{\"attempt\":1}", "herald.requeued_from", from, NULL);
    snprintf(sql, sizeof(sql),
             "INSERT INTO dlq_requeues (dlq_topic, dlq_partition, dlq_offset, requeued_to) "
             "VALUES ('%s', 0, 0, '%s'), ('%s', 0, 1, '%s')",
             dlq, email, dlq, email);
    exec_sql(h.db_url, sql);

    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "--stage", "worker.email", NULL), 0);
    ck_assert_msg(strstr(h.out, "settled 0:0") != NULL, "%s %s", h.out, h.err);
    seen s = {0};
    ck_assert_int_eq(ctl_read_all(&h, email, collect, &s), 3); /* 0:0 once, 0:1, 0:2 */
    int count00 = 0, count01 = 0;
    for (int i = 0; i < s.n; i++) {
        count00 += strstr(s.from[i], ":0:0") != NULL;
        count01 += strstr(s.from[i], ":0:1") != NULL;
    }
    ck_assert_int_eq(count00, 1);
    ck_assert_int_eq(count01, 1);
    ck_assert_int_eq(
        testsupport_db_count(h.db_url, "SELECT 1 FROM dlq_requeues WHERE acked_at IS NULL"), 0);
    ctl_teardown(&h);
}
END_TEST

START_TEST(test_dlq_rejects_bad_arguments_with_exit_2)
{
    ctl_harness h = {0};
    testsupport_bin("heraldctl", h.bin, sizeof(h.bin));
    snprintf(h.env_prefix, sizeof(h.env_prefix), "HERALD_TOPIC_PREFIX=herald.");
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--bogus", NULL), 2);
    ck_assert_msg(strstr(h.err, "--bogus") != NULL, "%s", h.err);
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--since", "yesterday", NULL), 2);
    ck_assert_str_eq(h.err, "heraldctl dlq list: --since: invalid time \"yesterday\": expected RFC "
                            "3339 (2026-11-27T22:10:55Z), \"now\" or relative (-30s, -15m, -2h, "
                            "-7d)\n");
    ck_assert_int_eq(ctl_run(&h, "dlq", "show", "zero:one", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", "show", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", "requeue", "1:x", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", "purge", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", "list", "--limit", "-3", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "dlq", "--help", NULL), 0);
}
END_TEST

/* Every command: a bad argument is exit 2 and one line on stderr, naming it where it can. */
START_TEST(test_every_command_rejects_bad_arguments_in_one_line)
{
    static const struct {
        const char *args[6];
        const char *named; /* in the line; NULL: anything */
    } cases[] = {
        {{"dlq", "list", "--bogus"}, "--bogus"},
        {{"dlq", "stats", "--since", "last tuesday"}, "--since"},
        {{"dlq", "requeue", "--since", "soon"}, "--since"},
        {{"dlq", "show", "3:"}, NULL},
        {{"dlq", "requeue", "-1:5"}, NULL},
        {{"replay", "--bogus"}, "--bogus"},
        {{"replay", "--from", "2026-11-28T10:00:00Z", "--to", "noon"}, "--to"},
        {{"replay", "--from", "2026-11-28T10:00:00Z", "--to", "2026-11-28T09:00:00Z"}, "--to"},
        {{"replay", "--to", "2026-11-28T10:00:00Z"}, "--from"},
        {{"status", "--bogus"}, "--bogus"},
        {{"publish", "--bogus"}, "--bogus"},
        {{"topics", "create", "--partitions", "0"}, "--partitions"},
        {{"migrate", "--bogus"}, "--bogus"},
        {{"nosuchcommand"}, "nosuchcommand"},
    };
    char bin[1024];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[4096], err[4096], *argv[8] = {bin};
        int n = 1;
        for (int a = 0; a < 6 && cases[i].args[a] != NULL; a++)
            argv[n++] = (char *)cases[i].args[a];
        argv[n] = NULL;
        const char *env[] = {"HERALD_KAFKA_BROKERS=127.0.0.1:1", NULL};
        int rc = testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 30000);
        ck_assert_msg(rc == 2, "%s %s: exit %d: %s", cases[i].args[0], cases[i].args[1], rc, err);
        size_t len = strlen(err);
        ck_assert_msg(len > 1 && strchr(err, '\n') == err + len - 1, "%s %s: not one line: %s",
                      cases[i].args[0], cases[i].args[1], err);
        ck_assert_msg(cases[i].named == NULL || strstr(err, cases[i].named) != NULL,
                      "%s %s: %s not named: %s", cases[i].args[0], cases[i].args[1], cases[i].named,
                      err);
    }
}
END_TEST

/* Each DLQ subcommand that reads the topic: an unreachable broker is exit 1. */
START_TEST(test_dlq_commands_report_unreachable_broker_with_exit_1)
{
    static const char *const cmds[][3] = {{"show", "0:0"}, {"stats"}, {"requeue", "--dry-run"}};
    char bin[1024];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char out[4096], err[8192];
        char *argv[8] = {bin, "dlq", (char *)cmds[i][0], "--timeout", "2s", NULL};
        if (cmds[i][1] != NULL) {
            argv[3] = (char *)cmds[i][1];
            argv[4] = "--timeout";
            argv[5] = "2s";
            argv[6] = NULL;
        }
        const char *env[] = {"HERALD_KAFKA_BROKERS=127.0.0.1:1", NULL};
        int rc = testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 30000);
        ck_assert_msg(rc == 1, "dlq %s: exit %d: %s", cmds[i][0], rc, err);
        ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "dlq %s: %s", cmds[i][0], err);
    }
}
END_TEST

START_TEST(test_dlq_reports_unreachable_broker_with_exit_1)
{
    char bin[1024], out[4096], err[4096];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    char *argv[] = {bin, "dlq", "list", "--timeout", "2s", NULL};
    const char *env[] = {"HERALD_KAFKA_BROKERS=127.0.0.1:1", NULL};
    ck_assert_int_eq(testsupport_run(argv, env, out, sizeof(out), err, sizeof(err), 30000), 1);
    /* Two lines: what failed, then the cause as the Kafka client saw it;
     * none of the client's own log lines before them. */
    char *second = strchr(err, '\n');
    ck_assert_msg(strncmp(err, "heraldctl dlq list: ", 20) == 0 && second != NULL &&
                      strstr(second, "\nheraldctl: the Kafka client last reported: ") == second &&
                      strstr(second, "Connection refused") != NULL &&
                      strchr(second + 1, '\n') == err + strlen(err) - 1,
                  "stderr: %s", err);
    ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "%s", err);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_dlq_list_shows_reason_and_error_and_filters),
    TEST_ENTRY(test_dlq_show_and_stats_describe_records),
    TEST_ENTRY(test_reader_range_starts_and_ends_at_the_given_times),
    TEST_ENTRY(test_dlq_requeue_sends_back_once_and_dry_run_changes_nothing),
    TEST_ENTRY(test_dlq_requeue_settles_claims_a_dead_run_left_unconfirmed),
    TEST_ENTRY(test_dlq_rejects_bad_arguments_with_exit_2),
    TEST_ENTRY(test_dlq_reports_unreachable_broker_with_exit_1),
    TEST_ENTRY(test_every_command_rejects_bad_arguments_in_one_line),
    TEST_ENTRY(test_dlq_commands_report_unreachable_broker_with_exit_1),
};

TEST_MAIN_TIMEOUT("ctl_dlq", cases, 180)

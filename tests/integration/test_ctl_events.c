/*
 * heraldctl publish, replay and status against the real broker: publish
 * produces a valid event keyed like the gateway's (the same id for the same
 * idempotency key); replay re-publishes exactly the events of its window,
 * filtered by user and type, with their generation, or a new one per
 * --redeliver run; status shows a group's lag from its committed offsets and
 * a daemon that does not answer, and counts records, not the transaction
 * markers and aborted records of transactional writes (an upper bound,
 * marked, past OPSSTATUS_COUNT_SPAN offsets); bad arguments exit 2, no
 * broker exits 1.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dlq.h"
#include "event.h"
#include "opsstatus.h"
#include "test_ctl_harness.h"
#include "timeutil.h"

static void publish(ctl_harness *h, const char *type, const char *user, char *id, size_t idlen)
{
    int rc = ctl_run(h, "publish", "--type", type, "--user", user, "--data", "{\"n\":1}", NULL);
    ck_assert_msg(rc == 0, "publish: %s", h->err);
    snprintf(id, idlen, "%.36s", h->out);
}

typedef struct events_seen {
    int n, replayed;
    char ids[32][40];
    int gens[32];
    int replayed_flags[32];
    int no_digest[32];
    char keys[32][64];
} events_seen;

static void collect_events(rd_kafka_message_t *m, void *opaque)
{
    events_seen *s = opaque;
    event ev = {0};
    char err[256], flag[8] = "";
    if (s->n >= 32)
        return;
    ck_assert_msg(event_parse(m->payload, m->len, &ev, err, sizeof(err)) == EVENT_OK, "%s", err);
    snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", ev.event_id);
    s->gens[s->n] = ev.generation;
    s->no_digest[s->n] = ev.no_digest;
    snprintf(s->keys[s->n], sizeof(s->keys[0]), "%.*s", (int)m->key_len, (const char *)m->key);
    char key[EVENT_KAFKA_KEY_SIZE];
    ck_assert_str_eq(s->keys[s->n], event_kafka_key(&ev, key, sizeof(key)));
    s->replayed_flags[s->n] =
        kafka_header_get(m, "herald.replayed", flag, sizeof(flag)) == 1 && flag[0] == '1';
    s->replayed += s->replayed_flags[s->n];
    s->n++;
    event_free(&ev);
}

START_TEST(test_publish_produces_a_valid_event_keyed_like_the_gateway)
{
    ctl_harness h;
    char events[256], id[40], id2[40];
    ctl_setup(&h, 0);
    ctl_topic(&h, "events", events, sizeof(events));
    publish(&h, "order.shipped", "u-1", id, sizeof(id));
    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "news.daily", "--topic", "news", "--priority",
                             "low", NULL),
                     0);
    ck_assert_int_eq(
        ctl_run(&h, "publish", "--type", "a.b", "--user", "u-2", "--idempotency-key", "k-1", NULL),
        0);
    snprintf(id2, sizeof(id2), "%.36s", h.out);
    ck_assert_int_eq(
        ctl_run(&h, "publish", "--type", "a.b", "--user", "u-2", "--idempotency-key", "k-1", NULL),
        0);
    ck_assert(strncmp(h.out, id2, 36) == 0); /* same key, same event id */
    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "a.b", "--user", "u-3", "--no-digest", NULL),
                     0);
    events_seen s = {0};
    ck_assert_int_eq(ctl_read_all(&h, events, collect_events, &s), 5);
    int found = 0, undigested = 0;
    for (int i = 0; i < s.n; i++) {
        found += strcmp(s.ids[i], id) == 0 && strcmp(s.keys[i], "u-1") == 0;
        found += strcmp(s.keys[i], "topic:news") == 0;
        undigested += s.no_digest[i] && strcmp(s.keys[i], "u-3") == 0;
    }
    ck_assert_int_eq(found, 2);
    ck_assert_int_eq(undigested, 1);

    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "Not Valid", "--user", "u", NULL), 2);
    ck_assert_msg(strstr(h.err, "--type") != NULL, "%s", h.err);
    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "a.b", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "a.b", "--user", "u", "--data", "[", NULL),
                     2);
    ck_assert_int_eq(ctl_run(&h, "publish", "--type", "a.b", "--user", "u", "--data", "[1]", NULL),
                     2);
    ck_assert_str_eq(h.err, "heraldctl publish: --data: must be an object\n");
    ck_assert_int_eq(
        ctl_run(&h, "publish", "--type", "a.b", "--user", "u", "--priority", "soon", NULL), 2);
    ck_assert_str_eq(h.err,
                     "heraldctl publish: --priority: must be one of critical|high|normal|low\n");
    ck_assert_int_eq(ctl_read_all(&h, events, NULL, NULL), 5);
    ctl_teardown(&h);
}
END_TEST

START_TEST(test_replay_republishes_exactly_the_window_with_filters_and_generations)
{
    ctl_harness h;
    char events[256], before[40], in1[40], in2[40], in3[40], after[40];
    char from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE];
    ctl_setup(&h, 0);
    ctl_topic(&h, "events", events, sizeof(events));
    publish(&h, "a.x", "u-1", before, sizeof(before));
    testsupport_sleep_ms(1200);
    timeutil_format_rfc3339(timeutil_now_ms(), from, sizeof(from));
    publish(&h, "a.x", "u-1", in1, sizeof(in1));
    publish(&h, "a.y", "u-1", in2, sizeof(in2));
    publish(&h, "a.y", "u-2", in3, sizeof(in3));
    testsupport_sleep_ms(1200);
    timeutil_format_rfc3339(timeutil_now_ms(), to, sizeof(to));
    publish(&h, "a.y", "u-1", after, sizeof(after));

    ck_assert_int_eq(ctl_run(&h, "replay", "--from", from, "--to", to, "--dry-run", NULL), 0);
    ck_assert_msg(strstr(h.out, "scanned 3, matched 3 (dry run"), "%s %s", h.out, h.err);
    ck_assert_int_eq(ctl_read_all(&h, events, NULL, NULL), 5);

    ck_assert_int_eq(ctl_run(&h, "replay", "--from", from, "--to", to, NULL), 0);
    ck_assert_msg(strstr(h.out, "matched 3, published 3"), "%s %s", h.out, h.err);
    events_seen s = {0};
    ck_assert_int_eq(ctl_read_all(&h, events, collect_events, &s), 8);
    ck_assert_int_eq(s.replayed, 3);
    for (int i = 0; i < s.n; i++) {
        if (!s.replayed_flags[i])
            continue;
        ck_assert_msg(strcmp(s.ids[i], in1) == 0 || strcmp(s.ids[i], in2) == 0 ||
                          strcmp(s.ids[i], in3) == 0,
                      "replayed %s", s.ids[i]);
        ck_assert_int_eq(s.gens[i], 0);
    }

    ck_assert_int_eq(ctl_run(&h, "replay", "--from", from, "--to", to, "--user", "u-1", "--type",
                             "a.y", "--redeliver", NULL),
                     0);
    ck_assert_msg(strstr(h.out, "matched 1, published 1"), "%s %s", h.out, h.err);
    ck_assert_int_eq(ctl_run(&h, "replay", "--from", from, "--to", to, "--user", "u-1", "--type",
                             "a.y", "--redeliver", NULL),
                     0);
    events_seen r = {0};
    ck_assert_int_eq(ctl_read_all(&h, events, collect_events, &r), 10);
    int g1 = -1, g2 = -1;
    for (int i = 0; i < r.n; i++) {
        if (!r.replayed_flags[i] || r.gens[i] == 0)
            continue;
        ck_assert_str_eq(r.ids[i], in2);
        if (g1 < 0)
            g1 = r.gens[i];
        else
            g2 = r.gens[i];
    }
    ck_assert_int_gt(g1, 0);
    ck_assert_int_gt(g2, 0);
    ck_assert_int_ne(g1, g2); /* each redelivery gets keys of its own */

    ck_assert_int_eq(ctl_run(&h, "replay", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "replay", "--from", "last tuesday", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "replay", "--from", "-1h", "--to", "-2h", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "replay", "--from", "-1h", "extra", NULL), 2);
    ctl_teardown(&h);
}
END_TEST

/*
 * On a terminal replay redraws one progress line in place and erases it
 * before the summary; into a pipe or file it draws nothing, so scripts get
 * the summary alone.
 */
START_TEST(test_replay_shows_progress_only_on_a_terminal_and_clears_it)
{
    ctl_harness h;
    char id1[40], id2[40];
    char from[TIMEUTIL_RFC3339_SIZE], to[TIMEUTIL_RFC3339_SIZE];
    ctl_setup(&h, 0);
    timeutil_format_rfc3339(timeutil_now_ms() - 1000, from, sizeof(from));
    publish(&h, "a.p", "u-p", id1, sizeof(id1));
    publish(&h, "a.p", "u-p", id2, sizeof(id2));
    testsupport_sleep_ms(20);
    timeutil_format_rfc3339(timeutil_now_ms(), to, sizeof(to));

    char *argv[] = {h.bin, "replay", "--from", from, "--to", to, NULL};
    const char *env[] = {h.env_prefix, NULL};
    ck_assert_int_eq(
        testsupport_run_tty(argv, env, h.out, sizeof(h.out), h.err, sizeof(h.err), 90000), 0);
    ck_assert_msg(strstr(h.out, "scanned 2, matched 2, published 2"), "stdout: %s", h.out);
    /* Redrawn at most a few times a second: the first record draws it. */
    ck_assert_msg(strstr(h.err, "\rscanned 1/2, matched 1, published "),
                  "no progress line on the terminal: %s", h.err);
    ck_assert_msg(strstr(h.err, "\rwaiting for "), "no acknowledgement wait shown: %s", h.err);
    size_t n = strlen(h.err), clear = strlen("\r\033[K");
    ck_assert_msg(n >= clear && strcmp(h.err + n - clear, "\r\033[K") == 0,
                  "the progress line is left on the terminal: %s", h.err);

    ck_assert_int_eq(ctl_run(&h, "replay", "--from", from, "--to", to, NULL), 0);
    ck_assert_msg(strstr(h.out, "scanned 2, matched 2, published 2"), "stdout: %s", h.out);
    ck_assert_msg(strchr(h.err, '\r') == NULL && strstr(h.err, "scanned") == NULL,
                  "progress drawn into a pipe: %s", h.err);
}
END_TEST

START_TEST(test_status_shows_group_lag_and_a_daemon_not_answering)
{
    ctl_harness h;
    char events[256], group[96];
    ctl_setup(&h, 0);
    char dlq[256], retry[256];
    ctl_topic(&h, "events", events, sizeof(events));
    ctl_topic(&h, "dlq", dlq, sizeof(dlq));
    ctl_topic(&h, "retry.email", retry, sizeof(retry));
    for (int i = 0; i < 5; i++)
        ctl_produce(&h, events, "u-1", "{}", NULL);
    for (int i = 0; i < 2; i++)
        ctl_produce(&h, dlq, "u-1", "{}", NULL);
    for (int i = 0; i < 3; i++)
        ctl_produce(&h, retry, "u-1", "{}", NULL);
    snprintf(group, sizeof(group), "%sstatus-test", h.prefix);

    /* A consumer of the group commits offset 2 of partition 0 without subscribing. */
    ctl_commit(&h, group, events, 0, 2);

    ck_assert_int_eq(
        ctl_run(&h, "status", "--group", group, "--dispatcher", "127.0.0.1:1", "--json", NULL), 0);
    json_error_t jerr;
    json_t *j = json_loads(h.out, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s %s", jerr.text, h.out, h.err);
    json_t *lag = json_object_get(j, "lag");
    int found = 0;
    for (size_t i = 0; i < json_array_size(lag); i++) {
        json_t *row = json_array_get(lag, i);
        if (strcmp(json_string_value(json_object_get(row, "topic")), events) == 0 &&
            json_integer_value(json_object_get(row, "partition")) == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(row, "committed")), 2);
            ck_assert_int_eq(json_integer_value(json_object_get(row, "end")), 5);
            ck_assert_int_eq(json_integer_value(json_object_get(row, "lag")), 3);
            found = 1;
        }
    }
    ck_assert_msg(found, "%s", h.out);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "group_lag"), group)),
                     3);
    json_t *daemons = json_object_get(j, "daemons");
    for (size_t i = 0; i < json_array_size(daemons); i++) {
        json_t *d = json_array_get(daemons, i);
        if (strcmp(json_string_value(json_object_get(d, "name")), "dispatcher") == 0)
            ck_assert(json_is_false(json_object_get(d, "healthy")));
    }
    ck_assert_int_eq((int)json_integer_value(json_object_get(j, "dlq_size")), 2);
    /* No email worker group has read the retry topic: its depth is what it holds. */
    ck_assert_int_eq(
        (int)json_integer_value(json_object_get(json_object_get(j, "retry_depth"), retry)), 3);
    json_decref(j);

    ck_assert_int_eq(ctl_run(&h, "status", "--group", group, "--dispatcher", "127.0.0.1:1", NULL),
                     0);
    ck_assert_msg(strstr(h.out, "dispatcher") && strstr(h.out, "down"), "%s", h.out);
    ck_assert_int_eq(ctl_run(&h, "status", "--gateway", "nowhere", NULL), 2);
    ck_assert_int_eq(ctl_run(&h, "status", "--group", ",", NULL), 2);
    ctl_teardown(&h);
}
END_TEST

/* The row of group on topic [partition] in a status document; fails when there is none. */
static json_t *lag_row(json_t *doc, const char *group, const char *topic, int partition)
{
    json_t *lag = json_object_get(doc, "lag");
    for (size_t i = 0; i < json_array_size(lag); i++) {
        json_t *row = json_array_get(lag, i);
        if (strcmp(json_string_value(json_object_get(row, "group")), group) == 0 &&
            strcmp(json_string_value(json_object_get(row, "topic")), topic) == 0 &&
            json_integer_value(json_object_get(row, "partition")) == partition)
            return row;
    }
    ck_abort_msg("no row %s %s [%d]", group, topic, partition);
    return NULL;
}

static json_int_t member(const json_t *o, const char *name)
{
    ck_assert_msg(json_is_integer(json_object_get(o, name)), "no integer %s", name);
    return json_integer_value(json_object_get(o, name));
}

START_TEST(test_status_counts_records_not_transaction_markers)
{
    ctl_harness h;
    char events[256], dlq[256], retry_sms[256], retry_email[256], caught[128], behind[128];
    ctl_setup(&h, 0);
    ctl_topic(&h, "events", events, sizeof events);
    ctl_topic(&h, "dlq", dlq, sizeof dlq);
    ctl_topic(&h, "retry.sms", retry_sms, sizeof retry_sms);
    ctl_topic(&h, "retry.email", retry_email, sizeof retry_email);
    snprintf(caught, sizeof caught, "%sdispatcher-caught-up", h.prefix);
    snprintf(behind, sizeof behind, "%sdispatcher-behind", h.prefix);

    /* As the pipeline writes: every batch a transaction, some aborted. */
    kafka_producer *p = ctl_txn_producer(&h, "status-txn");
    (void)ctl_produce_txn(p, events, 0, 2, "{}", NULL, 1);           /* 0, 1; marker 2 */
    (void)ctl_produce_txn(p, events, 0, 2, "{}", NULL, 0);           /* aborted 3, 4; marker 5 */
    int64_t last0 = ctl_produce_txn(p, events, 0, 2, "{}", NULL, 1); /* 6, 7; marker 8 */
    int64_t last1 = ctl_produce_txn(p, events, 1, 3, "{}", NULL, 1); /* 0..2; marker 3 */
    ck_assert_int_eq(last0, 7);
    ck_assert_int_eq(last1, 2);

    dlq_origin o = {.topic = events, .partition = 0, .offset = 0, .timestamp_ms = -1};
    rd_kafka_headers_t *dead = dlq_headers(NULL, "max_attempts", "boom", "worker", &o, 3, 0);
    ck_assert_ptr_nonnull(dead);
    (void)ctl_produce_txn(p, dlq, 0, 4, "{}", dead, 1);
    (void)ctl_produce_txn(p, dlq, 0, 2, "{}", dead, 0);
    (void)ctl_produce_txn(p, dlq, 1, 2, "{}", dead, 1);
    rd_kafka_headers_destroy(dead);
    (void)ctl_produce_txn(p, retry_sms, 0, 3, "{}", NULL, 1);
    /* One more offset than is read to count: an upper bound. */
    (void)ctl_produce_txn(p, retry_email, 0, OPSSTATUS_COUNT_SPAN, "{}", NULL, 1);
    kafka_producer_destroy(p);

    /* A group that processed everything commits last + 1, short of the markers. */
    ctl_commit(&h, caught, events, 0, last0 + 1);
    ctl_commit(&h, caught, events, 1, last1 + 1);
    /* One still at the start of partition 0: 4 records, 9 offsets. */
    ctl_commit(&h, behind, events, 0, 0);
    ctl_commit(&h, behind, events, 1, last1 + 1);

    char groups[300];
    snprintf(groups, sizeof groups, "%s,%s", caught, behind);
    ck_assert_int_eq(ctl_run(&h, "status", "--group", groups, "--json", NULL), 0);
    json_error_t jerr;
    json_t *j = json_loads(h.out, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s %s", jerr.text, h.out, h.err);
    for (int part = 0; part < 2; part++) {
        json_t *row = lag_row(j, caught, events, part);
        ck_assert_msg(member(row, "end") > member(row, "committed"), "no marker at the end");
        ck_assert_int_eq(member(row, "lag"), 0);
        ck_assert(json_is_true(json_object_get(row, "exact")));
    }
    json_t *row = lag_row(j, behind, events, 0);
    ck_assert_int_eq(member(row, "end"), 9);
    ck_assert_int_eq(member(row, "lag"), 4);
    ck_assert(json_is_true(json_object_get(row, "exact")));
    ck_assert_int_eq(member(json_object_get(j, "group_lag"), caught), 0);
    ck_assert_int_eq(member(json_object_get(j, "group_lag"), behind), 4);
    ck_assert(json_is_true(json_object_get(json_object_get(j, "group_lag_exact"), behind)));
    ck_assert_int_eq(member(j, "dlq_size"), 6);
    ck_assert(json_is_true(json_object_get(j, "dlq_size_exact")));
    ck_assert_int_eq(member(json_object_get(j, "retry_depth"), retry_sms), 3);
    ck_assert(json_is_true(json_object_get(json_object_get(j, "retry_depth_exact"), retry_sms)));
    ck_assert_int_eq(member(json_object_get(j, "retry_depth"), retry_email),
                     OPSSTATUS_COUNT_SPAN + 1);
    ck_assert(json_is_false(json_object_get(json_object_get(j, "retry_depth_exact"), retry_email)));
    json_decref(j);

    /* The same count as `dlq stats`. */
    ck_assert_msg(ctl_run(&h, "dlq", "stats", "--json", NULL) == 0, "%s", h.err);
    j = json_loads(h.out, 0, &jerr);
    ck_assert_msg(j != NULL, "%s: %s", jerr.text, h.out);
    ck_assert_int_eq(member(j, "total"), 6);
    json_decref(j);

    ck_assert_int_eq(ctl_run(&h, "status", "--group", groups, NULL), 0);
    char want[512];
    snprintf(want, sizeof want, "dead letters: 6 in %s\n", dlq);
    ck_assert_msg(strstr(h.out, want) != NULL, "%s", h.out);
    snprintf(want, sizeof want, "retry depth:  3 in %s\n", retry_sms);
    ck_assert_msg(strstr(h.out, want) != NULL, "%s", h.out);
    snprintf(want, sizeof want, "retry depth:  <=%d in %s\n", OPSSTATUS_COUNT_SPAN + 1,
             retry_email);
    ck_assert_msg(strstr(h.out, want) != NULL && strstr(h.out, "upper bound") != NULL, "%s", h.out);
    ctl_teardown(&h);
}
END_TEST

START_TEST(test_commands_report_unreachable_broker_with_exit_1)
{
    char bin[1024], out[4096], err[4096];
    testsupport_bin("heraldctl", bin, sizeof(bin));
    const char *env[] = {"HERALD_KAFKA_BROKERS=127.0.0.1:1", NULL};
    char *publish[] = {bin, "publish", "--type", "a.b", "--user", "u", "--timeout", "2s", NULL};
    char *replay[] = {bin, "replay", "--from", "-1h", "--timeout", "2s", NULL};
    char *status[] = {bin, "status", "--timeout", "2s", NULL};
    char *const *all[] = {publish, replay, status};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(testsupport_run(all[i], env, out, sizeof(out), err, sizeof(err), 30000),
                         1);
        ck_assert_msg(strstr(err, "127.0.0.1:1") != NULL, "%s: %s", all[i][1], err);
    }
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_publish_produces_a_valid_event_keyed_like_the_gateway),
    TEST_ENTRY(test_replay_republishes_exactly_the_window_with_filters_and_generations),
    TEST_ENTRY(test_replay_shows_progress_only_on_a_terminal_and_clears_it),
    TEST_ENTRY(test_status_shows_group_lag_and_a_daemon_not_answering),
    TEST_ENTRY(test_status_counts_records_not_transaction_markers),
    TEST_ENTRY(test_commands_report_unreachable_broker_with_exit_1),
};

TEST_MAIN_TIMEOUT("ctl_events", cases, 180)

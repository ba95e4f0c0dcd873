/*
 * herald-gateway publishing, over real HTTP against a real broker and
 * database: acknowledgement, keys and partitions, auth, limits, overload,
 * idempotency, batches, and resilience to malformed HTTP.
 */
#include "gateway_harness.h"

#include <signal.h>

START_TEST(test_publish_is_acknowledged_and_keyed_by_user)
{
    h_gateway g;
    h_start(&g, NULL);
    char id1[ID_UUID_SIZE], id2[ID_UUID_SIZE];
    h_publish(&g,
              "{\"type\":\"order.shipped\",\"user_id\":\"u-pub-1\",\"data\":{\"order\":7},"
              "\"priority\":\"high\"}",
              NULL, id1);
    h_publish(&g, "{\"type\":\"order.paid\",\"user_id\":\"u-pub-1\"}", NULL, id2);
    ck_assert_str_ne(id1, id2);

    h_record r1 = {0}, r2 = {0};
    ck_assert_msg(h_find_record(id1, 20000, &r1, NULL, NULL), "event %s not in Kafka", id1);
    ck_assert_msg(h_find_record(id2, 20000, &r2, NULL, NULL), "event %s not in Kafka", id2);
    ck_assert_str_eq(r1.key, "u-pub-1");
    ck_assert_int_eq(r1.partition, r2.partition);
    ck_assert_str_eq(json_string_value(json_object_get(r1.value, "type")), "order.shipped");
    ck_assert_str_eq(json_string_value(json_object_get(r1.value, "priority")), "high");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(r1.value, "data"), "order")), 7);
    int64_t ms;
    char err[128];
    ck_assert_int_eq(
        timeutil_parse_rfc3339(json_string_value(json_object_get(r1.value, "created_at")), &ms, err,
                               sizeof err),
        0);
    json_decref(r1.value);
    json_decref(r2.value);
    h_stop(&g);
}
END_TEST

START_TEST(test_topic_broadcast_is_keyed_by_topic)
{
    h_gateway g;
    h_start(&g, NULL);
    char id[ID_UUID_SIZE];
    h_publish(&g, "{\"type\":\"news.posted\",\"topic\":\"news\"}", NULL, id);
    h_record r = {0};
    ck_assert(h_find_record(id, 20000, &r, NULL, NULL));
    ck_assert_str_eq(r.key, "topic:news");
    json_decref(r.value);
    h_stop(&g);
}
END_TEST

START_TEST(test_digest_false_reaches_the_record_and_bad_values_are_400)
{
    h_gateway g;
    h_start(&g, NULL);
    char id1[ID_UUID_SIZE], id2[ID_UUID_SIZE];
    h_publish(&g, "{\"type\":\"comment.created\",\"user_id\":\"u-dg\",\"digest\":false}", NULL,
              id1);
    h_publish(&g, "{\"type\":\"comment.created\",\"user_id\":\"u-dg\",\"digest\":true}", NULL, id2);
    h_record r1 = {0}, r2 = {0};
    ck_assert(h_find_record(id1, 20000, &r1, NULL, NULL));
    ck_assert(h_find_record(id2, 20000, &r2, NULL, NULL));
    ck_assert(json_is_false(json_object_get(r1.value, "digest")));
    ck_assert_ptr_null(json_object_get(r2.value, "digest")); /* the default is not written */
    json_decref(r1.value);
    json_decref(r2.value);
    h_resp r;
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL,
           "{\"type\":\"comment.created\",\"user_id\":\"u-dg\",\"digest\":\"no\"}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "digest");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_auth_answers_401_and_403)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    const char *ev = "{\"type\":\"a.b\",\"user_id\":\"u1\"}";
    h_http(&g, "POST", "/v1/events", NULL, NULL, ev, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(h_error_code(&r), "unauthorized");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", "hk_wrongwrongwrongwrongwrongwrongwrongwrongwro", NULL, ev,
           NULL, &r);
    ck_assert_int_eq(r.status, 401);
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", "not-even-a-key", NULL, ev, NULL, &r);
    ck_assert_int_eq(r.status, 401);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/u1", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    ck_assert_str_eq(h_error_code(&r), "forbidden");
    h_resp_clear(&r);
    /* An admin key may publish too. */
    h_http(&g, "POST", "/v1/events", h_adminkey, NULL, ev, NULL, &r);
    ck_assert_int_eq(r.status, 202);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_revoked_key_stops_working_within_the_cache_ttl)
{
    PGconn *c = h_db();
    char key[APIKEY_SIZE], err[256];
    int64_t id;
    ck_assert_int_eq(
        apikey_db_create(c, "short-lived", APIKEY_SCOPE_PUBLISH, key, &id, err, sizeof err), 0);
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    const char *ev = "{\"type\":\"a.b\",\"user_id\":\"u1\"}";
    h_http(&g, "POST", "/v1/events", key, NULL, ev, NULL, &r);
    ck_assert_int_eq(r.status, 202);
    h_resp_clear(&r);
    ck_assert_int_eq(apikey_db_revoke(c, id, err, sizeof err), 0);
    PQfinish(c);
    /* The harness runs gateways with a 1 s key cache. */
    long status = 202;
    for (int i = 0; i < 40 && status != 401; i++) {
        usleep(100 * 1000);
        h_http(&g, "POST", "/v1/events", key, NULL, ev, NULL, &r);
        status = r.status;
        h_resp_clear(&r);
    }
    ck_assert_int_eq(status, 401);
    h_stop(&g);
}
END_TEST

START_TEST(test_bad_requests_name_the_field)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, "{\"type\":", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_code(&r), "invalid_json");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, "{\"user_id\":\"u1\"}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "type");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL,
           "{\"type\":\"a.b\",\"user_id\":\"u1\",\"colour\":\"red\"}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "colour");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL,
           "{\"type\":\"a.b\",\"user_id\":\"u1\",\"priority\":\"urgent\"}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "priority");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, "{\"type\":\"a.b\",\"user_id\":\"u1\"}",
           "Idempotency-Key: has space", &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "Idempotency-Key");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, "text/plain", "{}", NULL, &r);
    ck_assert_int_eq(r.status, 415);
    ck_assert_str_eq(h_error_code(&r), "unsupported_media_type");
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events", h_pubkey, "application/json; charset=utf-8",
           "{\"type\":\"a.b\",\"user_id\":\"u1\"}", NULL, &r);
    ck_assert_int_eq(r.status, 202);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/nothing", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_error_code(&r);
    h_resp_clear(&r);
    char allow[64];
    h_http(&g, "DELETE", "/v1/events", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 405);
    ck_assert_str_eq(h_header(&r, "Allow", allow, sizeof allow), "GET, POST"); /* GET: the search */
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_bodies_over_the_limit_get_413)
{
    h_gateway g;
    h_start(&g, "--max-body-bytes", "2048", NULL);
    char *big = malloc(4096);
    int n = snprintf(big, 4096, "{\"type\":\"a.b\",\"user_id\":\"u1\",\"data\":{\"s\":\"");
    memset(big + n, 'x', 3000);
    strcpy(big + n + 3000, "\"}}");
    h_resp r;
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, big, NULL, &r);
    ck_assert_int_eq(r.status, 413);
    ck_assert_str_eq(h_error_code(&r), "payload_too_large");
    h_resp_clear(&r);
    /* Without Content-Length (chunked), the limit holds while reading. */
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, big, "Transfer-Encoding: chunked", &r);
    ck_assert_int_eq(r.status, 413);
    h_resp_clear(&r);
    big[n + 1000] = '\0';
    strcat(big, "\"}}");
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, big, NULL, &r);
    ck_assert_int_eq(r.status, 202);
    h_resp_clear(&r);
    free(big);
    h_stop(&g);
}
END_TEST

START_TEST(test_rate_limit_answers_429_with_retry_after)
{
    h_gateway g;
    h_start(&g, "--rate-limit", "1", "--rate-burst", "2", NULL);
    h_resp r;
    const char *ev = "{\"type\":\"a.b\",\"user_id\":\"u1\"}";
    long last = 0;
    for (int i = 0; i < 3; i++) {
        h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, NULL, &r);
        last = r.status;
        if (i < 2)
            h_resp_clear(&r);
    }
    ck_assert_int_eq(last, 429);
    ck_assert_str_eq(h_error_code(&r), "rate_limited");
    char ra[16];
    ck_assert_str_eq(h_header(&r, "Retry-After", ra, sizeof ra), "1");
    h_resp_clear(&r);
    /* The admin key has its own bucket. */
    h_http(&g, "POST", "/v1/events", h_adminkey, NULL, ev, NULL, &r);
    ck_assert_int_eq(r.status, 202);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_unreachable_broker_gets_503_quickly)
{
    char brokers[32];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", testsupport_free_port());
    h_gateway g;
    h_start(&g, "--brokers", brokers, "--publish-timeout", "1000", NULL);
    h_resp r;
    for (int i = 0; i < 2; i++) {
        int64_t t0 = timeutil_monotonic_ms();
        h_http(&g, "POST", "/v1/events", h_pubkey, NULL, "{\"type\":\"a.b\",\"user_id\":\"u1\"}",
               "Idempotency-Key: down-1", &r);
        int64_t took = timeutil_monotonic_ms() - t0;
        ck_assert_int_eq(r.status, 503);
        ck_assert_str_eq(h_error_code(&r), "broker_unavailable");
        char ra[16];
        ck_assert_str_ne(h_header(&r, "Retry-After", ra, sizeof ra), "");
        ck_assert_msg(took < 3000, "503 took %lld ms", (long long)took);
        h_resp_clear(&r);
    }
    /* The failed publish released its idempotency key. */
    char n[16];
    h_sql_value("SELECT count(*) FROM publish_idempotency WHERE idempotency_key = 'down-1'", n,
                sizeof n);
    ck_assert_str_eq(n, "0");
    h_http(&g, "GET", "/readyz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_idempotency_key_replays_the_same_event)
{
    h_gateway g;
    h_start(&g, NULL);
    char key[64], hdr[96], other[96], id1[ID_UUID_SIZE], id2[ID_UUID_SIZE], id3[ID_UUID_SIZE],
        marker[ID_UUID_SIZE];
    unsigned char rnd[8];
    ck_assert_int_eq(id_random_bytes(rnd, sizeof rnd), 0);
    id_hex(rnd, sizeof rnd, key);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    snprintf(other, sizeof other, "Idempotency-Key: %s-other", key);
    const char *ev = "{\"type\":\"order.shipped\",\"user_id\":\"u-idem\"}";
    h_publish(&g, ev, hdr, id1);
    h_resp r;
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, hdr, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "event_id")), id1);
    char replayed[16];
    ck_assert_str_eq(h_header(&r, "Idempotent-Replayed", replayed, sizeof replayed), "true");
    h_resp_clear(&r);
    h_publish(&g, ev, other, id3);
    ck_assert_str_ne(id1, id3);
    h_stop(&g);

    /* Another gateway (a restart, or another instance) knows the key too. */
    h_start(&g, NULL);
    h_publish(&g, ev, hdr, id2);
    ck_assert_str_eq(id1, id2);
    h_publish(&g, "{\"type\":\"marker\",\"user_id\":\"u-idem\"}", NULL, marker);
    h_stop(&g);

    /* Same user, same partition: once the marker is read, every earlier
     * record of that user was read too; the key was published once. */
    h_record rec = {0};
    int count = 0;
    ck_assert(h_find_record(marker, 20000, &rec, key, &count));
    ck_assert_int_eq(count, 1);
    json_decref(rec.value);
}
END_TEST

START_TEST(test_idempotency_key_reused_for_another_request_gets_422)
{
    h_gateway g;
    h_start(&g, NULL);
    char key[32], bkey[40], hdr[96], id1[ID_UUID_SIZE], marker[ID_UUID_SIZE], body[512];
    unsigned char rnd[8];
    ck_assert_int_eq(id_random_bytes(rnd, sizeof rnd), 0);
    id_hex(rnd, sizeof rnd, key);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
    const char *ev = "{\"type\":\"order.shipped\",\"user_id\":\"u-reuse\",\"data\":{\"n\":1}}";
    h_publish(&g, ev, hdr, id1);
    /* Another user, type, data or category under the same key: refused,
     * not answered with the first event. */
    static const char *const others[] = {
        "{\"type\":\"order.shipped\",\"user_id\":\"u-reuse-2\",\"data\":{\"n\":1}}",
        "{\"type\":\"order.paid\",\"user_id\":\"u-reuse\",\"data\":{\"n\":1}}",
        "{\"type\":\"order.shipped\",\"user_id\":\"u-reuse\",\"data\":{\"n\":2}}",
        "{\"type\":\"order.shipped\",\"user_id\":\"u-reuse\",\"data\":{\"n\":1},"
        "\"category\":\"marketing\"}",
    };
    h_resp r;
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        h_http(&g, "POST", "/v1/events", h_pubkey, NULL, others[i], hdr, &r);
        ck_assert_msg(r.status == 422, "%s: %ld %s", others[i], r.status, r.body);
        ck_assert_str_eq(h_error_code(&r), "idempotency_key_reused");
        ck_assert_ptr_null(json_object_get(r.json, "event_id"));
        h_resp_clear(&r);
    }
    /* The same request still replays the first event. */
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, hdr, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "event_id")), id1);
    h_resp_clear(&r);

    /* In a batch, a second item under one key answers as the first when it
     * is the same request, and is refused when it is not. */
    snprintf(bkey, sizeof bkey, "b-%s", key);
    snprintf(body, sizeof body,
             "{\"events\":[{\"type\":\"a.b\",\"user_id\":\"u-reuse\",\"idempotency_key\":\"%s\"},"
             "{\"type\":\"a.b\",\"user_id\":\"u-reuse\",\"idempotency_key\":\"%s\"},"
             "{\"type\":\"a.b\",\"user_id\":\"u-reuse-3\",\"idempotency_key\":\"%s\"}]}",
             bkey, bkey, bkey);
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, body, NULL, &r);
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    json_t *res = json_object_get(r.json, "results");
    ck_assert_uint_eq(json_array_size(res), 3);
    const char *b0 = json_string_value(json_object_get(json_array_get(res, 0), "event_id"));
    const char *b1 = json_string_value(json_object_get(json_array_get(res, 1), "event_id"));
    ck_assert_ptr_nonnull(b0);
    ck_assert_ptr_nonnull(b1);
    ck_assert_str_eq(b0, b1);
    json_t *e2 = json_object_get(json_array_get(res, 2), "error");
    ck_assert_str_eq(json_string_value(json_object_get(e2, "code")), "idempotency_key_reused");
    ck_assert_str_eq(json_string_value(json_object_get(e2, "field")), "idempotency_key");
    h_resp_clear(&r);
    h_publish(&g, "{\"type\":\"marker\",\"user_id\":\"u-reuse\"}", NULL, marker);
    h_stop(&g);

    /* Each key was published once: the refused requests sent nothing. */
    h_record rec = {0};
    int count = 0;
    ck_assert(h_find_record(marker, 20000, &rec, key, &count));
    ck_assert_int_eq(count, 1);
    json_decref(rec.value);
    count = 0;
    ck_assert(h_find_record(marker, 20000, &rec, bkey, &count));
    ck_assert_int_eq(count, 1);
    json_decref(rec.value);
}
END_TEST

START_TEST(test_idempotency_key_still_in_flight_gets_409)
{
    char fresh[ID_UUID_SIZE], stale[ID_UUID_SIZE], sql[512], hdr[96], v[64];
    ck_assert_int_eq(id_uuid_v4(fresh), 0);
    ck_assert_int_eq(id_uuid_v4(stale), 0);
    /* A claim just made by another request, not yet acknowledged... */
    snprintf(sql, sizeof sql,
             "INSERT INTO publish_idempotency (api_key_id, idempotency_key, event_id) "
             "VALUES (%lld, 'busy-%.8s', '%s')",
             (long long)h_pubkey_id, fresh, fresh);
    h_sql(sql);
    /* ...and one never confirmed: its publish was in doubt (a broker
     * failover outlasted the publish timeout), or its gateway died first. */
    snprintf(sql, sizeof sql,
             "INSERT INTO publish_idempotency (api_key_id, idempotency_key, event_id, created_at) "
             "VALUES (%lld, 'old-%.8s', '%s', now() - interval '1 hour')",
             (long long)h_pubkey_id, stale, stale);
    h_sql(sql);
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    const char *ev = "{\"type\":\"a.b\",\"user_id\":\"u-busy\"}";
    snprintf(hdr, sizeof hdr, "Idempotency-Key: busy-%.8s", fresh);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, hdr, &r);
    ck_assert_int_eq(r.status, 409);
    ck_assert_str_eq(h_error_code(&r), "idempotency_in_progress");
    ck_assert_str_eq(h_header(&r, "Retry-After", v, sizeof v), "1");
    h_resp_clear(&r);
    /* A retry publishes that event again under its first id (whether or not
     * the first record reached Kafka, the dispatcher's delivery keys make it
     * one notification), and confirms the claim. */
    snprintf(hdr, sizeof hdr, "Idempotency-Key: old-%.8s", stale);
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, hdr, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "event_id")), stale);
    h_resp_clear(&r);
    h_record rec = {0};
    ck_assert_msg(h_find_record(stale, 20000, &rec, NULL, NULL), "event %s not republished", stale);
    ck_assert_str_eq(rec.key, "u-busy");
    json_decref(rec.value);
    snprintf(sql, sizeof sql,
             "SELECT published_at IS NOT NULL FROM publish_idempotency WHERE event_id = '%s'",
             stale);
    h_sql_value(sql, v, sizeof v);
    ck_assert_str_eq(v, "t");
    /* The retry is a new attempt of the same key: its 24 hours still count
     * from the first claim. */
    snprintf(sql, sizeof sql,
             "SELECT created_at < now() - interval '59 minutes' AND attempted_at > now() - "
             "interval '1 minute' FROM publish_idempotency WHERE event_id = '%s'",
             stale);
    h_sql_value(sql, v, sizeof v);
    ck_assert_str_eq(v, "t");
    /* Confirmed now: the next retry is a replay, nothing sent. */
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, ev, hdr, &r);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "event_id")), stale);
    ck_assert_str_eq(h_header(&r, "Idempotent-Replayed", v, sizeof v), "true");
    h_resp_clear(&r);
    /* A publish that Kafka acknowledged is confirmed. */
    char id[ID_UUID_SIZE];
    snprintf(hdr, sizeof hdr, "Idempotency-Key: done-%.8s", fresh);
    h_publish(&g, ev, hdr, id);
    h_stop(&g);
    snprintf(sql, sizeof sql,
             "SELECT published_at IS NOT NULL FROM publish_idempotency WHERE event_id = '%s'", id);
    h_sql_value(sql, v, sizeof v);
    ck_assert_str_eq(v, "t");
}
END_TEST

START_TEST(test_full_producer_queue_refuses_with_503)
{
    h_gateway g;
    h_start(&g, "--publish-queue-max", "1", NULL);
    size_t cap = 50 * 64 + 64, o = 0;
    char *big = malloc(cap);
    ck_assert_ptr_nonnull(big);
    o += (size_t)snprintf(big + o, cap - o, "{\"events\":[");
    for (int i = 0; i < 50; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{\"type\":\"q.item\",\"user_id\":\"u%d\"}",
                              i ? "," : "", i);
    snprintf(big + o, cap - o, "]}");
    h_resp r;
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, big, NULL, &r);
    free(big);
    /* The first record fits the one-record queue; the others find it full. */
    ck_assert_msg(r.status == 202, "%ld %.600s", r.status, r.body);
    json_t *res = json_object_get(r.json, "results");
    ck_assert_uint_eq(json_array_size(res), 50);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(res, 0), "event_id"));
    size_t full = 0;
    for (size_t i = 0; i < 50; i++) {
        json_t *e = json_object_get(json_array_get(res, i), "error");
        if (e != NULL && strcmp(json_string_value(json_object_get(e, "code")), "queue_full") == 0)
            full++;
    }
    ck_assert_uint_gt(full, 0);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_slow_clients_are_disconnected)
{
    h_gateway g;
    h_start(&g, "--http-client-timeout", "1s", NULL);
    int port = atoi(strrchr(g.base, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *partial = "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le";
    ck_assert(write(fd, partial, strlen(partial)) == (ssize_t)strlen(partial));
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int64_t t0 = timeutil_monotonic_ms();
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    int64_t took = timeutil_monotonic_ms() - t0;
    close(fd);
    ck_assert_msg(n <= 0 && took < 4500, "the slow client was kept (%zd bytes after %lld ms)", n,
                  (long long)took);
    h_stop(&g);
}
END_TEST

START_TEST(test_batch_reports_each_item_in_order)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL,
           "{\"events\":[{\"type\":\"a.b\",\"user_id\":\"u-b1\"},{\"type\":\"Bad\",\"user_id\":"
           "\"u-b2\"},{\"type\":\"a.c\",\"topic\":\"news\"},{\"user_id\":\"u-b3\"}]}",
           NULL, &r);
    ck_assert_msg(r.status == 202, "%ld %s", r.status, r.body);
    json_t *res = json_object_get(r.json, "results");
    ck_assert_uint_eq(json_array_size(res), 4);
    const char *id0 = json_string_value(json_object_get(json_array_get(res, 0), "event_id"));
    ck_assert_ptr_nonnull(id0);
    ck_assert_ptr_nonnull(json_object_get(json_array_get(res, 2), "event_id"));
    json_t *e1 = json_object_get(json_array_get(res, 1), "error");
    ck_assert_str_eq(json_string_value(json_object_get(e1, "field")), "type");
    json_t *e3 = json_object_get(json_array_get(res, 3), "error");
    ck_assert_str_eq(json_string_value(json_object_get(e3, "field")), "type");
    h_record rec = {0};
    ck_assert(h_find_record(id0, 20000, &rec, NULL, NULL));
    ck_assert_str_eq(rec.key, "u-b1");
    json_decref(rec.value);
    h_resp_clear(&r);

    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, "{\"events\":[{\"type\":\"X\"}]}", NULL,
           &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_code(&r), "invalid_batch");
    ck_assert_uint_eq(json_array_size(json_object_get(r.json, "results")), 1);
    h_resp_clear(&r);
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, "{\"events\":[]}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "events");
    h_resp_clear(&r);

    /* 1001 events are refused whole. */
    size_t cap = 1001 * 40 + 64, o = 0;
    char *big = malloc(cap);
    o += (size_t)snprintf(big + o, cap - o, "{\"events\":[");
    for (int i = 0; i < 1001; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{\"type\":\"a\",\"user_id\":\"u%d\"}",
                              i ? "," : "", i);
    snprintf(big + o, cap - o, "]}");
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, big, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "events");
    h_resp_clear(&r);
    free(big);
    h_stop(&g);
}
END_TEST

START_TEST(test_batch_of_1000_is_published)
{
    h_gateway g;
    h_start(&g, NULL);
    size_t cap = 1000 * 64 + 64, o = 0;
    char *big = malloc(cap);
    o += (size_t)snprintf(big + o, cap - o, "{\"events\":[");
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(big + o, cap - o, "%s{\"type\":\"bulk.item\",\"user_id\":\"u%d\"}",
                              i ? "," : "", i);
    snprintf(big + o, cap - o, "]}");
    h_resp r;
    h_http(&g, "POST", "/v1/events/batch", h_pubkey, NULL, big, NULL, &r);
    ck_assert_int_eq(r.status, 202);
    json_t *res = json_object_get(r.json, "results");
    ck_assert_uint_eq(json_array_size(res), 1000);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_ptr_nonnull(json_object_get(json_array_get(res, i), "event_id"));
    h_resp_clear(&r);
    free(big);
    h_stop(&g);
}
END_TEST

/* Sends raw bytes on a fresh connection and reads what comes back. */
static void raw_exchange(h_gateway *g, const char *data, size_t len, bool half_close)
{
    int port = atoi(strrchr(g->base, ':') + 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert(write(fd, data, len) == (ssize_t)len);
    if (half_close)
        shutdown(fd, SHUT_WR);
    struct timeval tv = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    (void)!read(fd, buf, sizeof buf);
    close(fd);
}

START_TEST(test_malformed_http_and_truncated_bodies_do_not_hurt)
{
    h_gateway g;
    h_start(&g, NULL);
    const char *garbage = "\x16\x03\x01\x02\x00 not http at all\r\n\r\n";
    raw_exchange(&g, garbage, strlen(garbage), true);
    const char *bad_line = "GET /healthz HTTP/9.9 extra\r\n\r\n";
    raw_exchange(&g, bad_line, strlen(bad_line), true);
    char trunc[512];
    int n = snprintf(trunc, sizeof trunc,
                     "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":",
                     h_pubkey);
    raw_exchange(&g, trunc, (size_t)n, true);
    const char *bad_chunk = "POST /v1/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                            "Content-Type: application/json\r\n\r\nzz\r\nabc\r\n";
    raw_exchange(&g, bad_chunk, strlen(bad_chunk), true);
    const char *huge_header_start = "GET /healthz HTTP/1.1\r\nX-Big: ";
    size_t hl = strlen(huge_header_start);
    char *huge = malloc(hl + 65000 + 8);
    ck_assert_ptr_nonnull(huge);
    memcpy(huge, huge_header_start, hl);
    memset(huge + hl, 'a', 65000);
    strcpy(huge + hl + 65000, "\r\n\r\n");
    raw_exchange(&g, huge, strlen(huge), true);
    free(huge);

    h_resp r;
    h_http(&g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_operations_endpoints_and_request_ids)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    long status = 0;
    for (int i = 0; i < 50 && status != 200; i++) {
        h_http(&g, "GET", "/readyz", NULL, NULL, NULL, NULL, &r);
        status = r.status;
        h_resp_clear(&r);
        if (status != 200)
            usleep(100 * 1000);
    }
    ck_assert_int_eq(status, 200);
    char rid[80];
    h_http(&g, "POST", "/v1/events", h_pubkey, NULL, "{\"type\":\"a.b\",\"user_id\":\"u1\"}",
           "X-Request-Id: trace-abc.123", &r);
    ck_assert_msg(r.status == 202, "publish answered %ld: %s", r.status, r.body);
    ck_assert_str_eq(h_header(&r, "X-Request-Id", rid, sizeof rid), "trace-abc.123");
    h_resp_clear(&r);
    h_http(&g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
    ck_assert_uint_gt(strlen(h_header(&r, "X-Request-Id", rid, sizeof rid)), 8);
    h_resp_clear(&r);
    h_http(&g, "GET", "/metrics", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(
        r.body,
        "herald_gateway_requests_total{route=\"/v1/events\",method=\"POST\",status=\"202\"} 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "herald_gateway_publish_seconds_count 1"));
    ck_assert_ptr_nonnull(strstr(r.body, "herald_gateway_producer_queue_depth"));
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_executable_stops_gracefully_on_sigterm)
{
    char bin[1024], out[4096], errout[4096], addr[32], url[96], prefix_env[96], db_env[1200],
        addr_env[96];
    testsupport_bin("herald-gateway", bin, sizeof bin);
    char *help[] = {bin, "--help", NULL};
    ck_assert_int_eq(testsupport_run(help, NULL, out, sizeof out, errout, sizeof errout, 10000), 0);
    ck_assert_ptr_nonnull(strstr(out, "HERALD_HTTP_ADDR"));
    const char *bad_env[] = {"HERALD_MAX_BODY_BYTES=lots", NULL};
    char *plain[] = {bin, NULL};
    ck_assert_int_eq(testsupport_run(plain, bad_env, out, sizeof out, errout, sizeof errout, 10000),
                     2);
    ck_assert_ptr_nonnull(strstr(errout, "HERALD_MAX_BODY_BYTES"));

    snprintf(addr, sizeof addr, "127.0.0.1:%d", testsupport_free_port());
    snprintf(addr_env, sizeof addr_env, "HERALD_HTTP_ADDR=%s", addr);
    snprintf(prefix_env, sizeof prefix_env, "HERALD_TOPIC_PREFIX=%s", h_prefix);
    snprintf(db_env, sizeof db_env, "HERALD_DATABASE_URL=%s", h_dburl);
    const char *env[] = {addr_env, prefix_env, db_env, "HERALD_ACCESS_LOG=false", NULL};
    pid_t pid = testsupport_spawn(plain, env, NULL, NULL);
    ck_assert_int_gt(pid, 0);
    h_gateway g = {0};
    snprintf(g.base, sizeof g.base, "http://%s", addr);
    snprintf(url, sizeof url, "%s/healthz", g.base);
    bool up = false;
    for (int i = 0; i < 100 && !up; i++) {
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        up = curl_easy_perform(c) == CURLE_OK;
        curl_easy_cleanup(c);
        if (!up)
            usleep(100 * 1000);
    }
    ck_assert_msg(up, "the gateway did not come up");
    char id[ID_UUID_SIZE];
    h_publish(&g, "{\"type\":\"a.b\",\"user_id\":\"u-term\"}", NULL, id);
    kill(pid, SIGTERM);
    ck_assert_int_eq(testsupport_wait(pid, 20000), 0);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_publish_is_acknowledged_and_keyed_by_user),
    TEST_ENTRY(test_topic_broadcast_is_keyed_by_topic),
    TEST_ENTRY(test_digest_false_reaches_the_record_and_bad_values_are_400),
    TEST_ENTRY(test_auth_answers_401_and_403),
    TEST_ENTRY(test_revoked_key_stops_working_within_the_cache_ttl),
    TEST_ENTRY(test_bad_requests_name_the_field),
    TEST_ENTRY(test_bodies_over_the_limit_get_413),
    TEST_ENTRY(test_rate_limit_answers_429_with_retry_after),
    TEST_ENTRY(test_unreachable_broker_gets_503_quickly),
    TEST_ENTRY(test_idempotency_key_replays_the_same_event),
    TEST_ENTRY(test_idempotency_key_reused_for_another_request_gets_422),
    TEST_ENTRY(test_idempotency_key_still_in_flight_gets_409),
    TEST_ENTRY(test_full_producer_queue_refuses_with_503),
    TEST_ENTRY(test_slow_clients_are_disconnected),
    TEST_ENTRY(test_batch_reports_each_item_in_order),
    TEST_ENTRY(test_batch_of_1000_is_published),
    TEST_ENTRY(test_malformed_http_and_truncated_bodies_do_not_hurt),
    TEST_ENTRY(test_operations_endpoints_and_request_ids),
    TEST_ENTRY(test_executable_stops_gracefully_on_sigterm),
};

TEST_MAIN_TIMEOUT("gateway_publish", cases, 120)

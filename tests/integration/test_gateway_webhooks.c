/*
 * Integration tests of the gateway's /v1/webhooks routes against the real
 * database: an endpoint belongs to the key that registered it, its secret
 * is shown once, a disabled one is enabled again, the attempt log pages,
 * a replay is queued; heraldctl webhooks does the same through them; and a
 * published event names its key.
 */
#include "gateway_harness.h"

static const char *str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    ck_assert_msg(s != NULL, "no string %s", k);
    return s;
}

static void call(h_gateway *g, const char *method, const char *path, const char *key,
                 const char *body, long want, h_resp *r)
{
    h_http(g, method, path, key, NULL, body, NULL, r);
    ck_assert_msg(r->status == want, "%s %s: %ld %s", method, path, r->status, r->body);
}

START_TEST(test_endpoints_belong_to_their_key_and_show_the_secret_once)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    char id[ID_UUID_SIZE], path[128];
    call(&g, "POST", "/v1/webhooks", h_pubkey,
         "{\"url\":\"https://svc.example.com/hook\",\"event_types\":[\"delivery.bounced\"],"
         "\"description\":\"bounces\"}",
         201, &r);
    snprintf(id, sizeof id, "%s", str(r.json, "id"));
    ck_assert(id_is_uuid(id));
    ck_assert_int_eq(strncmp(str(r.json, "secret"), "whsec_", 6), 0);
    ck_assert_int_eq(strlen(str(r.json, "secret")), 6 + 43);
    ck_assert(json_is_true(json_object_get(r.json, "enabled")));
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r.json, "event_types"), 0)),
                     "delivery.bounced");
    h_resp_clear(&r);

    /* Read back: everything but the secret. */
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    call(&g, "GET", path, h_pubkey, NULL, 200, &r);
    ck_assert_str_eq(str(r.json, "url"), "https://svc.example.com/hook");
    ck_assert_ptr_null(json_object_get(r.json, "secret"));
    h_resp_clear(&r);
    call(&g, "GET", "/v1/webhooks", h_pubkey, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "webhooks")), 1);
    ck_assert_ptr_null(
        json_object_get(json_array_get(json_object_get(r.json, "webhooks"), 0), "secret"));
    h_resp_clear(&r);

    /* A given secret is kept; all_events is for admin keys only. */
    call(&g, "POST", "/v1/webhooks", h_pubkey,
         "{\"url\":\"http://127.0.0.1:9/x\",\"secret\":\"0123456789abcdef-given\"}", 201, &r);
    ck_assert_str_eq(str(r.json, "secret"), "0123456789abcdef-given");
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "event_types")), 6);
    h_resp_clear(&r);
    call(&g, "POST", "/v1/webhooks", h_pubkey,
         "{\"url\":\"http://127.0.0.1:9/x\",\"all_events\":true}", 403, &r);
    ck_assert_str_eq(h_error_field(&r), "all_events");
    h_resp_clear(&r);
    call(&g, "POST", "/v1/webhooks", h_adminkey,
         "{\"url\":\"http://127.0.0.1:9/all\",\"all_events\":true}", 201, &r);
    ck_assert(json_is_true(json_object_get(r.json, "all_events")));
    h_resp_clear(&r);

    /* The admin key sees every endpoint; the publish key only its two. */
    call(&g, "GET", "/v1/webhooks", h_adminkey, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "webhooks")), 3);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/webhooks", h_pubkey, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "webhooks")), 2);
    h_resp_clear(&r);

    /* Another publish key does not see this one at all. */
    char other[APIKEY_SIZE], err[256];
    int64_t other_id;
    PGconn *c = h_db();
    ck_assert_int_eq(
        apikey_db_create(c, "other", APIKEY_SCOPE_PUBLISH, other, &other_id, err, sizeof err), 0);
    PQfinish(c);
    call(&g, "GET", path, other, NULL, 404, &r);
    h_resp_clear(&r);
    call(&g, "DELETE", path, other, NULL, 404, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/webhooks", other, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "webhooks")), 0);
    h_resp_clear(&r);

    call(&g, "DELETE", path, h_pubkey, NULL, 204, &r);
    h_resp_clear(&r);
    call(&g, "GET", path, h_pubkey, NULL, 404, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_bad_endpoints_are_refused_naming_the_field)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    static const struct {
        const char *body, *field;
    } bad[] = {
        {"{}", "url"},
        {"{\"url\":\"ftp://example.com/\"}", "url"},
        {"{\"url\":\"http://exa mple.com/\"}", "url"},
        {"{\"url\":\"http://example.com/\",\"event_types\":[]}", "event_types"},
        {"{\"url\":\"http://example.com/\",\"event_types\":[\"delivery.opened\"]}", "event_types"},
        {"{\"url\":\"http://example.com/\",\"secret\":\"short\"}", "secret"},
        {"{\"url\":\"http://example.com/\",\"all_events\":\"yes\"}", "all_events"},
        {"{\"url\":\"http://example.com/\",\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call(&g, "POST", "/v1/webhooks", h_pubkey, bad[i].body, 400, &r);
        ck_assert_str_eq(h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    call(&g, "GET", "/v1/webhooks/not-a-uuid", h_pubkey, NULL, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "webhook_id");
    h_resp_clear(&r);
    call(&g, "GET", "/v1/webhooks", NULL, NULL, 401, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_enable_attempt_log_pages_and_replay)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    char id[ID_UUID_SIZE], path[160], sql[512];
    call(&g, "POST", "/v1/webhooks", h_pubkey, "{\"url\":\"http://127.0.0.1:9/x\"}", 201, &r);
    snprintf(id, sizeof id, "%s", str(r.json, "id"));
    h_resp_clear(&r);
    /* As herald-webhooks leaves a failing endpoint: disabled, with its attempts. */
    snprintf(sql, sizeof sql,
             "UPDATE webhook_endpoints SET enabled = false, disabled_at = now(),"
             " disabled_reason = '20 attempts in a row failed', consecutive_failures = 20"
             " WHERE id = '%s';"
             "INSERT INTO webhook_attempts (call_id, endpoint_id, type, attempt, http_status,"
             " latency_ms, outcome, error)"
             " SELECT gen_random_uuid(), '%s', 'delivery.sent', n, 503, 7, 'retry', 'HTTP 503'"
             " FROM generate_series(1, 5) n",
             id, id);
    h_sql(sql);
    snprintf(path, sizeof path, "/v1/webhooks/%s", id);
    call(&g, "GET", path, h_pubkey, NULL, 200, &r);
    ck_assert(json_is_false(json_object_get(r.json, "enabled")));
    ck_assert_str_eq(str(r.json, "disabled_reason"), "20 attempts in a row failed");
    h_resp_clear(&r);
    snprintf(path, sizeof path, "/v1/webhooks/%s/enable", id);
    call(&g, "POST", path, h_pubkey, NULL, 200, &r);
    ck_assert(json_is_true(json_object_get(r.json, "enabled")));
    ck_assert(json_is_null(json_object_get(r.json, "disabled_reason")));
    ck_assert_int_eq(json_integer_value(json_object_get(r.json, "consecutive_failures")), 0);
    h_resp_clear(&r);

    /* Newest first, three then two. */
    snprintf(path, sizeof path, "/v1/webhooks/%s/attempts?limit=3", id);
    call(&g, "GET", path, h_pubkey, NULL, 200, &r);
    json_t *a = json_object_get(r.json, "attempts");
    ck_assert_int_eq(json_array_size(a), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(a, 0), "attempt")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(a, 0), "http_status")), 503);
    long long next = json_integer_value(json_object_get(r.json, "next_before"));
    ck_assert_int_gt(next, 0);
    h_resp_clear(&r);
    snprintf(path, sizeof path, "/v1/webhooks/%s/attempts?limit=3&before=%lld", id, next);
    call(&g, "GET", path, h_pubkey, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "attempts")), 2);
    ck_assert(json_is_null(json_object_get(r.json, "next_before")));
    h_resp_clear(&r);
    snprintf(path, sizeof path, "/v1/webhooks/%s/attempts?limit=0", id);
    call(&g, "GET", path, h_pubkey, NULL, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "limit");
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/webhooks/%s/replay", id);
    call(&g, "POST", path, h_pubkey,
         "{\"from\":\"2026-12-07T10:00:00Z\",\"to\":\"2026-12-07T09:00:00Z\"}", 400, &r);
    ck_assert_str_eq(h_error_field(&r), "to");
    h_resp_clear(&r);
    call(&g, "POST", path, h_pubkey,
         "{\"from\":\"2026-12-07T09:00:00Z\",\"to\":\"2026-12-07T10:00:00Z\"}", 202, &r);
    ck_assert_int_gt(json_integer_value(json_object_get(r.json, "replay_id")), 0);
    h_resp_clear(&r);
    char n[16];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM webhook_replays WHERE endpoint_id = '%s' AND done_at IS NULL",
             id);
    h_sql_value(sql, n, sizeof n);
    ck_assert_str_eq(n, "1");
    h_stop(&g);
}
END_TEST

START_TEST(test_a_published_event_names_its_key)
{
    h_gateway g;
    h_start(&g, NULL);
    char id[ID_UUID_SIZE];
    h_publish(&g, "{\"type\":\"order.shipped\",\"user_id\":\"u-1\"}", NULL, id);
    h_record rec = {0};
    ck_assert(h_find_record(id, 20000, &rec, NULL, NULL));
    ck_assert_int_eq(json_integer_value(json_object_get(rec.value, "api_key_id")), h_pubkey_id);
    json_decref(rec.value);
    h_stop(&g);
}
END_TEST

static char out[65536], errout[65536];

/* Runs heraldctl webhooks with the gateway's URL and key. */
static int ctl(const h_gateway *g, const char *key, ...)
{
    char bin[1024], env_url[128], env_key[128];
    char *argv[32];
    int n = 0;
    testsupport_bin("heraldctl", bin, sizeof bin);
    argv[n++] = bin;
    argv[n++] = "webhooks";
    va_list ap;
    va_start(ap, key);
    for (char *a; n < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    snprintf(env_url, sizeof env_url, "HERALD_GATEWAY_URL=%s", g->base);
    snprintf(env_key, sizeof env_key, "HERALD_API_KEY=%s", key);
    const char *env[] = {env_url, env_key, NULL};
    return testsupport_run(argv, env, out, sizeof out, errout, sizeof errout, 60000);
}

START_TEST(test_heraldctl_webhooks_add_list_log_replay_enable_remove)
{
    h_gateway g;
    h_start(&g, NULL);
    int rc = ctl(&g, h_pubkey, "add", "--url", "http://127.0.0.1:9/ctl", "--types",
                 "delivery.sent,delivery.bounced", "--secret", "ctl-secret-0123456789", NULL);
    ck_assert_msg(rc == 0, "add: %d %s", rc, errout);
    json_t *doc = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(doc);
    char id[ID_UUID_SIZE];
    snprintf(id, sizeof id, "%s", str(doc, "id"));
    ck_assert_str_eq(str(doc, "secret"), "ctl-secret-0123456789");
    json_decref(doc);

    ck_assert_int_eq(ctl(&g, h_pubkey, "list", NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, id));
    ck_assert_ptr_nonnull(strstr(out, "delivery.sent,delivery.bounced"));
    ck_assert_ptr_null(strstr(out, "ctl-secret"));

    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO webhook_attempts (call_id, endpoint_id, type, attempt, http_status,"
             " latency_ms, outcome, error) VALUES (gen_random_uuid(), '%s', 'delivery.sent', 1,"
             " 503, 12, 'retry', 'HTTP 503')",
             id);
    h_sql(sql);
    ck_assert_int_eq(ctl(&g, h_pubkey, "log", id, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "503"));
    ck_assert_ptr_nonnull(strstr(out, "retry"));

    rc = ctl(&g, h_pubkey, "replay", id, "--from", "-1h", "--to", "now", NULL);
    ck_assert_msg(rc == 0, "replay: %d %s", rc, errout);
    ck_assert_ptr_nonnull(strstr(out, "replay_id"));
    ck_assert_int_eq(ctl(&g, h_pubkey, "replay", id, "--from", "now", "--to", "-1h", NULL), 2);
    ck_assert_int_eq(ctl(&g, h_pubkey, "enable", id, NULL), 0);

    /* An unknown endpoint is the gateway's 404, a bad URL its 400, a bad ID a usage error. */
    ck_assert_int_eq(ctl(&g, h_pubkey, "remove", "00000000-0000-4000-8000-000000000000", NULL), 1);
    ck_assert_ptr_nonnull(strstr(errout, "404"));
    ck_assert_int_eq(ctl(&g, h_pubkey, "add", "--url", "ftp://x", NULL), 1);
    ck_assert_str_eq(errout, "heraldctl webhooks add: HTTP 400: url must be an http:// or https:// "
                             "URL of at most 2048 bytes\n");
    ck_assert_int_eq(ctl(&g, h_pubkey, "remove", "not-an-id", NULL), 2);
    ck_assert_int_eq(ctl(&g, h_pubkey, "remove", id, NULL), 0);
    ck_assert_int_eq(ctl(&g, h_pubkey, "list", "--json", NULL), 0);
    ck_assert_ptr_null(strstr(out, id));
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_endpoints_belong_to_their_key_and_show_the_secret_once),
    TEST_ENTRY(test_bad_endpoints_are_refused_naming_the_field),
    TEST_ENTRY(test_enable_attempt_log_pages_and_replay),
    TEST_ENTRY(test_a_published_event_names_its_key),
    TEST_ENTRY(test_heraldctl_webhooks_add_list_log_replay_enable_remove),
};

TEST_MAIN("gateway_webhooks", cases)

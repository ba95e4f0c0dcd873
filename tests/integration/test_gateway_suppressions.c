/*
 * The suppression list's routes and the delivery statuses after 'sent'
 * (docs/receipts.md) against a real PostgreSQL: manual entries, paging,
 * refusals naming their field, and what GET /v1/events/{id} shows once
 * receipts moved a delivery on, whatever order they came in.  Receipts are
 * applied here through herald_receipt_apply(), the function the gateway's
 * receipt routes call.
 */
#include "gateway_harness.h"

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void call(h_gateway *g, const char *method, const char *path, const char *key,
                 const char *body, long status, h_resp *r)
{
    h_http(g, method, path, key, NULL, body, NULL, r);
    ck_assert_msg(r->status == status, "%s %s %s: %ld %s", method, path, body ? body : "",
                  r->status, r->body);
}

START_TEST(test_manual_entries_add_read_page_and_remove)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    call(&g, "POST", "/v1/suppressions", h_adminkey,
         "{\"channel\":\"email\",\"address\":\"Ann@Example.COM\",\"detail\":\"asked by phone\"}",
         201, &r);
    ck_assert_str_eq(str(r.json, "address"), "ann@example.com");
    ck_assert_str_eq(str(r.json, "reason"), "manual");
    ck_assert_str_eq(str(r.json, "detail"), "asked by phone");
    h_resp_clear(&r);
    /* Again, in another case: the entry that is there. */
    call(&g, "POST", "/v1/suppressions", h_adminkey,
         "{\"channel\":\"email\",\"address\":\"ann@example.com\"}", 200, &r);
    ck_assert_str_eq(str(r.json, "detail"), "asked by phone");
    h_resp_clear(&r);
    call(&g, "POST", "/v1/suppressions", h_adminkey,
         "{\"channel\":\"email\",\"address\":\"bob@example.com\"}", 201, &r);
    h_resp_clear(&r);
    call(&g, "POST", "/v1/suppressions", h_adminkey,
         "{\"channel\":\"sms\",\"address\":\"+15550100\"}", 201, &r);
    h_resp_clear(&r);

    call(&g, "GET", "/v1/suppressions/email/ANN@example.com", h_adminkey, NULL, 200, &r);
    ck_assert_str_eq(str(r.json, "address"), "ann@example.com");
    h_resp_clear(&r);

    /* Two pages of two and one. */
    call(&g, "GET", "/v1/suppressions?limit=2", h_adminkey, NULL, 200, &r);
    json_t *list = json_object_get(r.json, "suppressions");
    ck_assert_int_eq(json_array_size(list), 2);
    ck_assert_str_eq(str(json_array_get(list, 0), "address"), "ann@example.com");
    ck_assert_str_eq(str(json_array_get(list, 1), "address"), "bob@example.com");
    char path[256];
    snprintf(path, sizeof path, "/v1/suppressions?limit=2&after=%s", str(r.json, "next_after"));
    h_resp_clear(&r);
    call(&g, "GET", path, h_adminkey, NULL, 200, &r);
    list = json_object_get(r.json, "suppressions");
    ck_assert_int_eq(json_array_size(list), 1);
    ck_assert_str_eq(str(json_array_get(list, 0), "channel"), "sms");
    ck_assert_ptr_null(json_object_get(r.json, "next_after"));
    h_resp_clear(&r);
    call(&g, "GET", "/v1/suppressions?channel=sms", h_adminkey, NULL, 200, &r);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "suppressions")), 1);
    h_resp_clear(&r);

    call(&g, "DELETE", "/v1/suppressions/email/ann@example.com", h_adminkey, NULL, 204, &r);
    h_resp_clear(&r);
    call(&g, "DELETE", "/v1/suppressions/email/ann@example.com", h_adminkey, NULL, 404, &r);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    call(&g, "GET", "/v1/suppressions/email/ann@example.com", h_adminkey, NULL, 404, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_bad_input_is_refused_naming_the_field)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    static const struct {
        const char *method, *path, *body, *field;
    } bad[] = {
        {"POST", "/v1/suppressions", "{\"channel\":\"fax\",\"address\":\"x\"}", "channel"},
        {"POST", "/v1/suppressions", "{\"address\":\"a@example.com\"}", "channel"},
        {"POST", "/v1/suppressions", "{\"channel\":\"email\",\"address\":\"no-at-sign\"}",
         "address"},
        {"POST", "/v1/suppressions", "{\"channel\":\"sms\",\"address\":\"5550100\"}", "address"},
        {"POST", "/v1/suppressions", "{\"channel\":\"email\"}", "address"},
        {"POST", "/v1/suppressions",
         "{\"channel\":\"email\",\"address\":\"a@example.com\",\"detail\":7}", "detail"},
        {"GET", "/v1/suppressions?limit=0", NULL, "limit"},
        {"GET", "/v1/suppressions?limit=1001", NULL, "limit"},
        {"GET", "/v1/suppressions?reason=bored", NULL, "reason"},
        {"GET", "/v1/suppressions?channel=fax", NULL, "channel"},
        {"GET", "/v1/suppressions?after=!!", NULL, "after"},
        {"GET", "/v1/suppressions?after=YWJj", NULL, "after"},
        {"GET", "/v1/suppressions/fax/x", NULL, "channel"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call(&g, bad[i].method, bad[i].path, h_adminkey, bad[i].body, 400, &r);
        ck_assert_str_eq(h_error_code(&r), "invalid_field");
        ck_assert_msg(strcmp(h_error_field(&r), bad[i].field) == 0, "%s %s: field %s, not %s",
                      bad[i].path, bad[i].body ? bad[i].body : "", h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    /* Operators only. */
    call(&g, "GET", "/v1/suppressions", h_pubkey, NULL, 403, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/suppressions", NULL, NULL, 401, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

#define EV "5a0c7f4e-8a4b-4f55-9f0e-2f1d6c1b0a01"
#define K1 "5a0c7f4e-0000-4000-8000-000000000001"
#define K2 "5a0c7f4e-0000-4000-8000-000000000002"

/* Applies one receipt and returns what the function said. */
static void receipt(const char *provider, const char *id, const char *key, const char *status,
                    const char *kind, char *out, size_t outlen)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT herald_receipt_apply('%s', '%s', NULL, '%s', '%s', %s%s%s, 'why', NULL, "
             "now(), 3)",
             provider, id, key, status, kind ? "'" : "", kind ? kind : "NULL", kind ? "'" : "");
    h_sql_value(sql, out, outlen);
}

START_TEST(test_event_status_shows_receipts_in_precedence_order)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    char out[64];
    h_sql("INSERT INTO events (event_id, type, user_id, priority, category, created_at) VALUES "
          "('" EV "', 'order.shipped', 'u-rc', 'normal', 'orders', now());"
          "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, status, "
          "attempts, provider) VALUES "
          "('" K1 "', '" EV "', 'u-rc', 'email', 'Rc@Example.com', 'sent', 1, 'smtp'), "
          "('" K2 "', '" EV "', 'u-rc', 'sms', '+15550101', 'sent', 1, 'twilio');"
          "INSERT INTO delivery_history (idempotency_key, event_id, user_id, channel, address, "
          "status, provider, source) VALUES "
          "('" K1 "', '" EV "', 'u-rc', 'email', 'Rc@Example.com', 'sent', 'smtp', 'worker'), "
          "('" K2 "', '" EV "', 'u-rc', 'sms', '+15550101', 'sent', 'twilio', 'worker');");
    /* Email: a bounce, then a late delivery notice and a late 'sent', then
     * the bounce again (a provider retrying its callback). */
    receipt("ses", "b-1", K1, "bounced", "permanent", out, sizeof out);
    ck_assert_str_eq(out, "applied");
    receipt("ses", "d-1", K1, "delivered", NULL, out, sizeof out);
    ck_assert_str_eq(out, "stale");
    receipt("ses", "s-1", K1, "sent", NULL, out, sizeof out);
    ck_assert_str_eq(out, "stale");
    receipt("ses", "b-1", K1, "bounced", "permanent", out, sizeof out);
    ck_assert_str_eq(out, "duplicate");
    /* SMS: delivered after sent, then a complaint outranks it. */
    receipt("twilio", "t-1", K2, "delivered", NULL, out, sizeof out);
    ck_assert_str_eq(out, "applied");
    receipt("twilio", "t-2", K2, "complained", NULL, out, sizeof out);
    ck_assert_str_eq(out, "applied");
    /* A message nobody sent. */
    receipt("ses", "x-1", "5a0c7f4e-0000-4000-8000-0000000000ff", "delivered", NULL, out,
            sizeof out);
    ck_assert_str_eq(out, "unknown");

    call(&g, "GET", "/v1/events/" EV, h_pubkey, NULL, 200, &r);
    json_t *ds = json_object_get(r.json, "deliveries");
    ck_assert_int_eq(json_array_size(ds), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *d = json_array_get(ds, i);
        json_t *h = json_object_get(d, "history");
        if (strcmp(str(d, "channel"), "email") == 0) {
            ck_assert_str_eq(str(d, "status"), "bounced");
            ck_assert_str_eq(str(d, "address"), "Rc@Example.com");
            ck_assert_str_eq(str(d, "idempotency_key"), K1);
            ck_assert_int_eq(json_array_size(h), 2);
            ck_assert_str_eq(str(json_array_get(h, 0), "status"), "sent");
            ck_assert_str_eq(str(json_array_get(h, 0), "source"), "worker");
            ck_assert_str_eq(str(json_array_get(h, 1), "status"), "bounced");
            ck_assert_str_eq(str(json_array_get(h, 1), "source"), "receipt");
            ck_assert_str_eq(str(json_array_get(h, 1), "reason"), "why");
            ck_assert_str_eq(str(json_array_get(h, 1), "provider"), "ses");
        } else {
            ck_assert_str_eq(str(d, "status"), "complained");
            ck_assert_int_eq(json_array_size(h), 3);
            ck_assert_str_eq(str(json_array_get(h, 1), "status"), "delivered");
        }
    }
    h_resp_clear(&r);

    /* heraldctl tells the same story. */
    char story[16384], errout[4096];
    int rc =
        h_heraldctl(&g, h_pubkey, story, sizeof story, errout, sizeof errout, "event", EV, NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(story, "status failed") != NULL && strstr(story, "bounced") != NULL &&
                      strstr(story, "Rc@Example.com") != NULL &&
                      strstr(story, "receipt  ses") != NULL && strstr(story, "complained") != NULL,
                  "%s", story);

    /* The permanent bounce and the complaint suppressed both addresses. */
    call(&g, "GET", "/v1/suppressions/email/rc@example.com", h_adminkey, NULL, 200, &r);
    ck_assert_str_eq(str(r.json, "reason"), "hard_bounce");
    ck_assert_str_eq(str(r.json, "idempotency_key"), K1);
    ck_assert_str_eq(str(r.json, "event_id"), EV);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/suppressions/sms/+15550101", h_adminkey, NULL, 200, &r);
    ck_assert_str_eq(str(r.json, "reason"), "complaint");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

#define EV2 "5a0c7f4e-8a4b-4f55-9f0e-2f1d6c1b0a02"

START_TEST(test_transient_bounces_suppress_only_at_the_limit)
{
    char out[64], key[40], sql[512];
    h_sql("INSERT INTO events (event_id, type, user_id, priority, created_at) VALUES "
          "('" EV2 "', 'order.shipped', 'u-tb', 'normal', now())");
    for (int i = 1; i <= 3; i++) {
        snprintf(key, sizeof key, "5a0c7f4e-0000-4000-8000-00000000010%d", i);
        snprintf(sql, sizeof sql,
                 "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, "
                 "status) VALUES ('%s', '" EV2 "', 'u-tb', 'email', 'full@example.com', 'sent')",
                 key);
        h_sql(sql);
        char rid[16];
        snprintf(rid, sizeof rid, "tb-%d", i);
        receipt("ses", rid, key, "bounced", "transient", out, sizeof out);
        ck_assert_str_eq(out, "applied");
        h_sql_value("SELECT count(*) FROM suppressions WHERE address = 'full@example.com'", out,
                    sizeof out);
        ck_assert_str_eq(out, i < 3 ? "0" : "1");
    }
    h_sql_value("SELECT reason FROM suppressions WHERE address = 'full@example.com'", out,
                sizeof out);
    ck_assert_str_eq(out, "soft_bounces");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_manual_entries_add_read_page_and_remove),
    TEST_ENTRY(test_bad_input_is_refused_naming_the_field),
    TEST_ENTRY(test_event_status_shows_receipts_in_precedence_order),
    TEST_ENTRY(test_transient_bounces_suppress_only_at_the_limit),
};

TEST_MAIN("gateway_suppressions", cases)

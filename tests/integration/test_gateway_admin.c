/*
 * herald-gateway management API over real HTTP against a real database:
 * users, preferences, topic subscriptions, templates and event status,
 * each with the inputs it must refuse.
 */
#include "gateway_harness.h"

START_TEST(test_users_put_get_delete)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "PUT", "/v1/users/u-admin-1", h_adminkey, NULL,
           "{\"email\":\"ann@example.com\",\"phone\":\"+14155550123\",\"push_tokens\":[\"t1\","
           "\"t2\"],\"timezone\":\"Europe/Paris\",\"locale\":\"fr-FR\",\"name\":\"Ann\"}",
           NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "user_id")), "u-admin-1");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "timezone")), "Europe/Paris");
    ck_assert_uint_eq(json_array_size(json_object_get(r.json, "push_tokens")), 2);
    h_resp_clear(&r);

    /* PUT replaces: tokens become exactly the new set, a missing field is cleared. */
    h_http(&g, "PUT", "/v1/users/u-admin-1", h_adminkey, NULL,
           "{\"email\":\"ann@example.org\",\"push_tokens\":[\"t2\",\"t3\"]}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/u-admin-1", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "email")), "ann@example.org");
    ck_assert(json_is_null(json_object_get(r.json, "phone")));
    json_t *toks = json_object_get(r.json, "push_tokens");
    ck_assert_uint_eq(json_array_size(toks), 2);
    ck_assert_str_eq(json_string_value(json_array_get(toks, 0)), "t2");
    ck_assert_str_eq(json_string_value(json_array_get(toks, 1)), "t3");
    h_resp_clear(&r);

    /* An escaped '/' and '@' stay inside the id. */
    h_http(&g, "PUT", "/v1/users/team%40example.com", h_adminkey, NULL, "{}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "user_id")), "team@example.com");
    h_resp_clear(&r);

    h_http(&g, "DELETE", "/v1/users/u-admin-1", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(r.len, 0);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/u-admin-1", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/users/u-admin-1", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    char n[16];
    h_sql_value("SELECT count(*) FROM push_tokens WHERE user_id = 'u-admin-1'", n, sizeof n);
    ck_assert_str_eq(n, "0");
    h_stop(&g);
}
END_TEST

START_TEST(test_users_refuse_bad_input)
{
    h_gateway g;
    h_start(&g, NULL);
    static const struct {
        const char *path, *body, *field;
    } bad[] = {
        {"/v1/users/u1", "{\"email\":\"nope\"}", "email"},
        {"/v1/users/u1", "{\"phone\":\"555-1234\"}", "phone"},
        {"/v1/users/u1", "{\"timezone\":\"Moon/Base\"}", "timezone"},
        {"/v1/users/u1", "{\"locale\":\"x\"}", "locale"},
        {"/v1/users/u1", "{\"push_tokens\":[\"ok\",7]}", "push_tokens[1]"},
        {"/v1/users/u1", "{\"nickname\":\"a\"}", "nickname"},
        {"/v1/users/bad%20id", "{}", "user_id"},
        {"/v1/users/topic:news", "{}", "user_id"},
    };
    h_resp r;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_http(&g, "PUT", bad[i].path, h_adminkey, NULL, bad[i].body, NULL, &r);
        ck_assert_msg(r.status == 400, "%s %s: %ld", bad[i].path, bad[i].body, r.status);
        ck_assert_str_eq(h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    h_http(&g, "PUT", "/v1/users/u1", h_adminkey, NULL, "[]", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/users/u1", h_adminkey, "text/plain", "{}", NULL, &r);
    ck_assert_int_eq(r.status, 415);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_preferences_put_get)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "PUT", "/v1/users/u-prefs/preferences", h_adminkey, NULL, "{}", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/users/u-prefs", h_adminkey, NULL, "{\"email\":\"p@example.com\"}", NULL,
           &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/u-prefs/preferences", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_null(json_object_get(r.json, "quiet_hours")));
    ck_assert_uint_eq(json_object_size(json_object_get(r.json, "channels")), 0);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/users/u-prefs/preferences", h_adminkey, NULL,
           "{\"channels\":{\"sms\":false},\"categories\":{\"marketing\":{\"email\":false}},"
           "\"quiet_hours\":{\"start\":\"22:00\",\"end\":\"07:30\"}}",
           NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/u-prefs/preferences", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(json_is_false(json_object_get(json_object_get(r.json, "channels"), "sms")));
    ck_assert(json_is_false(json_object_get(
        json_object_get(json_object_get(r.json, "categories"), "marketing"), "email")));
    json_t *qh = json_object_get(r.json, "quiet_hours");
    ck_assert_str_eq(json_string_value(json_object_get(qh, "start")), "22:00");
    ck_assert_str_eq(json_string_value(json_object_get(qh, "end")), "07:30");
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/users/u-prefs/preferences", h_adminkey, NULL,
           "{\"channels\":{\"pigeon\":true}}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "channels.pigeon");
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/users/u-prefs/preferences", h_adminkey, NULL,
           "{\"quiet_hours\":{\"start\":\"25:00\",\"end\":\"07:00\"}}", NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "quiet_hours.start");
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/users/nobody/preferences", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_topic_subscriptions)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "PUT", "/v1/users/u-sub", h_adminkey, NULL, "{}", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    for (int i = 0; i < 2; i++) {
        h_http(&g, "PUT", "/v1/topics/deals.weekly/subscribers/u-sub", h_adminkey, NULL, NULL, NULL,
               &r);
        ck_assert_int_eq(r.status, 204);
        h_resp_clear(&r);
    }
    char n[16];
    h_sql_value("SELECT count(*) FROM topic_subscriptions WHERE topic = 'deals.weekly' AND "
                "user_id = 'u-sub'",
                n, sizeof n);
    ck_assert_str_eq(n, "1");
    h_http(&g, "PUT", "/v1/topics/deals.weekly/subscribers/nobody", h_adminkey, NULL, NULL, NULL,
           &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/topics/Bad%20Topic/subscribers/u-sub", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "topic");
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/topics/deals.weekly/subscribers/u-sub", h_adminkey, NULL, NULL, NULL,
           &r);
    ck_assert_int_eq(r.status, 204);
    h_resp_clear(&r);
    h_sql_value("SELECT count(*) FROM topic_subscriptions WHERE user_id = 'u-sub'", n, sizeof n);
    ck_assert_str_eq(n, "0");
    h_http(&g, "DELETE", "/v1/topics/deals.weekly/subscribers/nobody", h_adminkey, NULL, NULL, NULL,
           &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_http(&g, "PUT", "/v1/topics/deals.weekly/subscribers/u-sub", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* The subscriber at index i of r's page. */
static const char *subscriber(const h_resp *r, size_t i)
{
    json_t *s = json_array_get(json_object_get(r->json, "subscribers"), i);
    return json_string_value(json_object_get(s, "user_id"));
}

START_TEST(test_topic_subscribers_are_listed_a_page_at_a_time)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    static const char *const users[] = {"u-sl-c", "u-sl-a", "u-sl-b"};
    char path[256];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/v1/users/%s", users[i]);
        h_http(&g, "PUT", path, h_adminkey, NULL, "{}", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        h_resp_clear(&r);
        snprintf(path, sizeof path, "/v1/topics/club.readers/subscribers/%s", users[i]);
        h_http(&g, "PUT", path, h_adminkey, NULL, NULL, NULL, &r);
        ck_assert_int_eq(r.status, 204);
        h_resp_clear(&r);
    }
    /* In user id order, two at a time. */
    h_http(&g, "GET", "/v1/topics/club.readers/subscribers?limit=2", h_adminkey, NULL, NULL, NULL,
           &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "topic")), "club.readers");
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "subscribers")), 2);
    ck_assert_str_eq(subscriber(&r, 0), "u-sl-a");
    ck_assert_str_eq(subscriber(&r, 1), "u-sl-b");
    json_t *s0 = json_array_get(json_object_get(r.json, "subscribers"), 0);
    ck_assert_int_eq(strlen(json_string_value(json_object_get(s0, "subscribed_at"))), 24);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "next_after")), "u-sl-b");
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/topics/club.readers/subscribers?limit=2&after=u-sl-b", h_adminkey, NULL,
           NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "subscribers")), 1);
    ck_assert_str_eq(subscriber(&r, 0), "u-sl-c");
    ck_assert_ptr_null(json_object_get(r.json, "next_after"));
    h_resp_clear(&r);

    /* A topic whose subscribers all left still answers, empty. */
    h_http(&g, "PUT", "/v1/topics/club.quiet/subscribers/u-sl-a", h_adminkey, NULL, NULL, NULL, &r);
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/topics/club.quiet/subscribers/u-sl-a", h_adminkey, NULL, NULL, NULL,
           &r);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/topics/club.quiet/subscribers", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_array_size(json_object_get(r.json, "subscribers")), 0);
    h_resp_clear(&r);

    /* Unknown topic, bad arguments, the wrong key. */
    h_http(&g, "GET", "/v1/topics/no.such.topic/subscribers", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    static const struct {
        const char *path, *field;
    } bad[] = {
        {"/v1/topics/club.readers/subscribers?limit=0", "limit"},
        {"/v1/topics/club.readers/subscribers?limit=1001", "limit"},
        {"/v1/topics/club.readers/subscribers?after=a%20b", "after"},
        {"/v1/topics/Bad%20Topic/subscribers", "topic"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_http(&g, "GET", bad[i].path, h_adminkey, NULL, NULL, NULL, &r);
        ck_assert_msg(r.status == 400, "%s: %ld", bad[i].path, (long)r.status);
        ck_assert_str_eq(h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    h_http(&g, "GET", "/v1/topics/club.readers/subscribers", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 403);
    h_resp_clear(&r);

    /* heraldctl shows the same page and where the next one starts. */
    char out[4096], errout[4096];
    int rc = h_heraldctl(&g, h_adminkey, out, sizeof out, errout, sizeof errout, "topics",
                         "subscribers", "club.readers", "--limit", "2", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(out, "u-sl-a") != NULL && strstr(out, "u-sl-b") != NULL &&
                      strstr(out, "u-sl-c") == NULL &&
                      strstr(out, "2 subscribers (more: --after u-sl-b)\n") != NULL,
                  "%s", out);
    rc = h_heraldctl(&g, h_adminkey, out, sizeof out, errout, sizeof errout, "topics",
                     "subscribers", "club.readers", "--after", "u-sl-b", NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(out, "u-sl-c") != NULL && strstr(out, "1 subscriber\n") != NULL, "%s",
                  out);
    rc = h_heraldctl(&g, h_adminkey, out, sizeof out, errout, sizeof errout, "topics",
                     "subscribers", "no.such.topic", NULL);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(errout, "heraldctl topics subscribers: HTTP 404: topic not found\n");
    ck_assert_int_eq(h_heraldctl(&g, h_adminkey, out, sizeof out, errout, sizeof errout, "topics",
                                 "subscribers", NULL),
                     2);
    h_stop(&g);
}
END_TEST

START_TEST(test_templates_put_get_delete)
{
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    h_http(&g, "PUT", "/v1/templates/order.shipped/email", h_adminkey, NULL,
           "{\"subject\":\"Your order {{data.order.id}}\",\"body\":\"Hi {{ user.name }}, it "
           "shipped.\",\"category\":\"orders\"}",
           NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "channel")), "email");
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/templates/order.shipped/email", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "subject")),
                     "Your order {{data.order.id}}");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "category")), "orders");
    h_resp_clear(&r);

    static const struct {
        const char *path, *body, *field;
    } bad[] = {
        {"/v1/templates/order.shipped/email", "{\"body\":\"Hi {{user.name}\"}", "body"},
        {"/v1/templates/order.shipped/email", "{\"body\":\"Hi {{secret.key}}\"}", "body"},
        {"/v1/templates/order.shipped/email", "{\"subject\":\"x\"}", "body"},
        {"/v1/templates/order.shipped/fax", "{\"body\":\"x\"}", "channel"},
        {"/v1/templates/Order/email", "{\"body\":\"x\"}", "event_type"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        h_http(&g, "PUT", bad[i].path, h_adminkey, NULL, bad[i].body, NULL, &r);
        ck_assert_msg(r.status == 400, "%s %s: %ld", bad[i].path, bad[i].body, r.status);
        ck_assert_str_eq(h_error_field(&r), bad[i].field);
        h_resp_clear(&r);
    }
    h_http(&g, "GET", "/v1/templates/order.shipped/sms", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    /* The in-app channel: subject is the inbox message's title. */
    h_http(&g, "PUT", "/v1/templates/order.shipped/inapp", h_adminkey, NULL,
           "{\"subject\":\"Order {{data.order.id}} shipped\",\"body\":\"On its way\"}", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "channel")), "inapp");
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/templates/order.shipped/inapp", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "subject")),
                     "Order {{data.order.id}} shipped");
    h_resp_clear(&r);
    h_http(&g, "DELETE", "/v1/templates/order.shipped/email", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 204);
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/templates/order.shipped/email", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_event_status_reads_events_and_deliveries)
{
    char id[ID_UUID_SIZE], child[ID_UUID_SIZE], sql[2048];
    ck_assert_int_eq(id_uuid_v4(id), 0);
    ck_assert_int_eq(id_uuid_v4(child), 0);
    snprintf(sql, sizeof sql,
             /* Four planned deliveries: two claimed by workers (rows), two not yet. */
             "INSERT INTO events (event_id, type, user_id, priority, created_at, planned) VALUES "
             "('%s', 'order.shipped', 'u-st', 'normal', now(), "
             "'{{email,%s/email,a@example.com},{sms,%s/sms,+15550000001},"
             "{push,%s/push,\"tok \\\"1\\\"\"},{inapp,%s/inapp,u-st}}');"
             "INSERT INTO deliveries (idempotency_key, event_id, user_id, channel, address, "
             "status, attempts, last_error) VALUES "
             "('%s/email', '%s', 'u-st', 'email', 'a@example.com', 'sent', 1, NULL),"
             "('%s/sms', '%s', 'u-st', 'sms', '+15550000001', 'retrying', 2, 'provider 503')",
             id, id, id, id, id, id, id, id, id);
    h_sql(sql);
    h_gateway g;
    h_start(&g, NULL);
    h_resp r;
    char path[128];
    snprintf(path, sizeof path, "/v1/events/%s", id);
    h_http(&g, "GET", path, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "event_id")), id);
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "status")), "processing");
    json_t *ds = json_object_get(r.json, "deliveries");
    ck_assert_uint_eq(json_array_size(ds), 4); /* a claimed delivery is reported once */
    int seen = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *d = json_array_get(ds, i);
        const char *ch = json_string_value(json_object_get(d, "channel"));
        const char *status = json_string_value(json_object_get(d, "status"));
        /* Where each went: the address, the device token, the in-app user. */
        const char *address = json_string_value(json_object_get(d, "address"));
        ck_assert_ptr_nonnull(address);
        ck_assert_ptr_nonnull(json_object_get(d, "updated_at"));
        ck_assert_str_eq(json_string_value(json_object_get(d, "user_id")), "u-st");
        if (strcmp(ch, "email") == 0) {
            seen |= 1;
            ck_assert_str_eq(status, "sent");
            ck_assert_str_eq(address, "a@example.com");
        } else if (strcmp(ch, "sms") == 0) {
            seen |= 2;
            ck_assert_str_eq(status, "retrying");
            ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 2);
            ck_assert_str_eq(json_string_value(json_object_get(d, "last_error")), "provider 503");
            ck_assert_str_eq(address, "+15550000001");
        } else if (strcmp(ch, "push") == 0) {
            seen |= 4;
            ck_assert_str_eq(status, "pending"); /* planned, no worker has it yet */
            ck_assert_int_eq(json_integer_value(json_object_get(d, "attempts")), 0);
            ck_assert_str_eq(address, "tok \"1\"");
        } else {
            seen |= 8;
            ck_assert_str_eq(ch, "inapp");
            ck_assert_str_eq(address, "u-st");
        }
    }
    ck_assert_int_eq(seen, 15);
    h_resp_clear(&r);

    /* heraldctl event names them too, one delivery a line. */
    char out[8192], errout[4096];
    int rc = h_heraldctl(&g, h_pubkey, out, sizeof out, errout, sizeof errout, "event", id, NULL);
    ck_assert_msg(rc == 0, "%d %s", rc, errout);
    ck_assert_msg(strstr(out, "  email  sent        a@example.com  attempts 1\n") != NULL &&
                      strstr(out, "  push   pending     tok \"1\"  attempts 0\n") != NULL &&
                      strstr(out, "  inapp  pending     u-st  attempts 0\n") != NULL,
                  "%s", out);

    /* Upper case is the same UUID. */
    for (char *p = path; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    memcpy(path, "/v1/events/", 11);
    h_http(&g, "GET", path, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);

    snprintf(path, sizeof path, "/v1/events/%s", child);
    h_http(&g, "GET", path, h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    h_http(&g, "GET", "/v1/events/not-a-uuid", h_pubkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "event_id");
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_unreachable_database_gets_503)
{
    h_gateway g;
    char url[128];
    snprintf(url, sizeof url, "postgresql://herald@127.0.0.1:%d/none", testsupport_free_port());
    h_start(&g, "--database-url", url, NULL);
    h_resp r;
    h_http(&g, "GET", "/v1/users/u1", h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    h_error_code(&r);
    h_resp_clear(&r);
    h_http(&g, "GET", "/readyz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 503);
    h_resp_clear(&r);
    h_http(&g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_users_put_get_delete),
    TEST_ENTRY(test_users_refuse_bad_input),
    TEST_ENTRY(test_preferences_put_get),
    TEST_ENTRY(test_topic_subscriptions),
    TEST_ENTRY(test_topic_subscribers_are_listed_a_page_at_a_time),
    TEST_ENTRY(test_templates_put_get_delete),
    TEST_ENTRY(test_event_status_reads_events_and_deliveries),
    TEST_ENTRY(test_unreachable_database_gets_503),
};

TEST_MAIN_TIMEOUT("gateway_admin", cases, 120)

/*
 * One-click unsubscribe on the gateway: the link of an email's
 * List-Unsubscribe header, posted the way a mailbox provider posts it,
 * turns that one category off on that one channel; its page changes
 * nothing; forged and expired links are refused.  The email is built by
 * the worker's own code (list_unsubscribe, mime), so the link is the one
 * a recipient gets.
 */
#include "gateway_harness.h"

#include "list_unsubscribe.h"
#include "mime.h"
#include "unsubtoken.h"

#define SECRET "unsubscribe-secret-of-32-bytes!!"

static void new_user(const char *tag, char *out, size_t outlen)
{
    char rnd[16];
    ck_assert_int_eq(id_random_token(rnd, sizeof rnd, 6), 0);
    for (char *p = rnd; *p; p++)
        if (*p == '-' || *p == '_')
            *p = 'x';
    snprintf(out, outlen, "unsub-%s-%s", tag, rnd);
    char sql[256];
    snprintf(sql, sizeof sql, "INSERT INTO users (user_id, email) VALUES ('%s', 'a@example.com')",
             out);
    h_sql(sql);
}

static void start(h_gateway *g)
{
    setenv("HERALD_UNSUBSCRIBE_SECRET", SECRET, 1);
    h_start(g, NULL);
}

/*
 * The https link of the List-Unsubscribe header of the email the worker
 * would send user about category, as a path on g ("/v1/unsubscribe?...").
 */
static void link_from_email(h_gateway *g, const char *user, const char *category, char *path,
                            size_t pathlen)
{
    char err[256], header[2048], link[1024];
    list_unsubscribe *lu = NULL;
    const list_unsubscribe_config c = {
        .secret = SECRET, .url = g->base, .mailto = "unsub@example.com", .ttl_ms = 3600000};
    ck_assert_msg(list_unsubscribe_new(&c, &lu, err, sizeof err) == 0, "%s", err);
    list_unsubscribe_links l;
    ck_assert_int_eq(list_unsubscribe_links_for(lu, user, category, EVENT_PRIORITY_NORMAL,
                                                DELIVERY_EMAIL, timeutil_now_ms(), &l, err,
                                                sizeof err),
                     1);
    buf b;
    buf_init(&b, 0);
    mime_message m = {.from = "noreply@example.com",
                      .to = "a@example.com",
                      .subject = "News",
                      .body = "Hello",
                      .message_id = "k",
                      .date_ms = timeutil_now_ms(),
                      .unsubscribe_https = l.https,
                      .unsubscribe_mailto = l.mailto};
    ck_assert_int_eq(mime_build(&m, &b, err, sizeof err), 0);
    char *raw = buf_steal(&b, NULL);
    ck_assert_int_eq(testsupport_mail_header(raw, "List-Unsubscribe", header, sizeof header), 0);
    ck_assert_int_eq(testsupport_unsubscribe_link(header, link, sizeof link), 0);
    free(raw);
    list_unsubscribe_free(lu);
    ck_assert_int_eq(strncmp(link, g->base, strlen(g->base)), 0);
    snprintf(path, pathlen, "%s", link + strlen(g->base));
}

/* The user's categories as compact JSON, keys sorted. */
static void categories(h_gateway *g, const char *user, char *out, size_t outlen)
{
    h_resp r;
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/preferences", user);
    h_http(g, "GET", path, h_adminkey, NULL, NULL, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    char *s = json_dumps(json_object_get(r.json, "categories"), JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, outlen, "%s", s);
    free(s);
    h_resp_clear(&r);
}

static void put_prefs(h_gateway *g, const char *user, const char *body)
{
    h_resp r;
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s/preferences", user);
    h_http(g, "PUT", path, h_adminkey, NULL, body, NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_clear(&r);
}

/* POSTs the one-click body as a mailbox provider does: no key, a form. */
static void one_click(h_gateway *g, const char *path, h_resp *r)
{
    h_http(g, "POST", path, NULL, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click",
           NULL, r);
}

static long metric(h_gateway *g, const char *series)
{
    h_resp r;
    h_http(g, "GET", "/metrics", NULL, NULL, NULL, NULL, &r);
    const char *p = strstr(r.body, series);
    long v = p != NULL ? strtol(p + strlen(series), NULL, 10) : -1;
    h_resp_clear(&r);
    return v;
}

START_TEST(test_one_click_post_of_the_email_link_turns_only_that_category_off)
{
    h_gateway g;
    h_resp r;
    char user[64], path[1024], cats[1024], prefs[256];
    start(&g);
    new_user("post", user, sizeof user);
    put_prefs(&g, user,
              "{\"channels\":{\"push\":false},\"categories\":{\"marketing\":{\"sms\":false},"
              "\"billing\":{\"email\":false}}}");
    link_from_email(&g, user, "marketing", path, sizeof path);
    one_click(&g, path, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert(json_is_true(json_object_get(r.json, "unsubscribed")));
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "category")), "marketing");
    ck_assert_str_eq(json_string_value(json_object_get(r.json, "channel")), "email");
    h_resp_clear(&r);
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{\"billing\":{\"email\":false},"
                           "\"marketing\":{\"email\":false,\"sms\":false}}");
    /* the rest of the preferences stays */
    snprintf(prefs, sizeof prefs, "SELECT channels::text FROM preferences WHERE user_id = '%s'",
             user);
    char channels[128];
    h_sql_value(prefs, channels, sizeof channels);
    ck_assert_str_eq(channels, "{\"push\": false}");
    /* again: the same answer, nothing more changes */
    one_click(&g, path, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{\"billing\":{\"email\":false},"
                           "\"marketing\":{\"email\":false,\"sms\":false}}");
    ck_assert_int_eq(metric(&g, "herald_gateway_unsubscribes_total{result=\"unsubscribed\"} "), 1);
    ck_assert_int_eq(metric(&g, "herald_gateway_unsubscribes_total{result=\"already\"} "), 1);
    h_stop(&g);
}
END_TEST

START_TEST(test_one_click_as_multipart_and_for_a_user_without_preferences)
{
    h_gateway g;
    h_resp r;
    char user[64], path[1024], cats[1024];
    start(&g);
    new_user("multi", user, sizeof user);
    link_from_email(&g, user, "news.weekly", path, sizeof path);
    h_http(&g, "POST", path, NULL, "multipart/form-data; boundary=----b0undary",
           "------b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
           "One-Click\r\n------b0undary--\r\n",
           NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_clear(&r);
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{\"news.weekly\":{\"email\":false}}");
    /* other fields around it, and the first of two fields of the name */
    h_http(&g, "POST", path, NULL, "application/x-www-form-urlencoded; charset=utf-8",
           "x=1&List-Unsubscribe=One-Click&List-Unsubscribe=No", NULL, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_the_page_of_a_link_changes_nothing_and_posts_back)
{
    h_gateway g;
    h_resp r;
    char user[64], path[1024], cats[1024], csp[512], hv[128];
    start(&g);
    new_user("page", user, sizeof user);
    link_from_email(&g, user, "marketing", path, sizeof path);
    for (int i = 0; i < 3; i++) {
        h_http(&g, "GET", path, NULL, NULL, NULL, NULL, &r);
        ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
        ck_assert_str_eq(h_header(&r, "Content-Type", hv, sizeof hv), "text/html; charset=utf-8");
        h_header(&r, "Content-Security-Policy", csp, sizeof csp);
        ck_assert_ptr_nonnull(strstr(csp, "default-src 'none'"));
        ck_assert_ptr_null(strstr(csp, "unsafe-inline"));
        ck_assert_str_eq(h_header(&r, "Referrer-Policy", hv, sizeof hv), "no-referrer");
        ck_assert_ptr_null(strstr(r.body, "<script"));
        ck_assert_ptr_nonnull(strstr(r.body, "marketing messages by email"));
        ck_assert_ptr_nonnull(strstr(r.body, "<form method=\"post\" action=\"\">"));
        ck_assert_ptr_nonnull(strstr(r.body, "name=\"List-Unsubscribe\" value=\"One-Click\""));
        h_resp_clear(&r);
    }
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{}");
    /* the page's button: the browser posts the form to the same URL */
    h_http(&g, "POST", path, NULL, "application/x-www-form-urlencoded",
           "List-Unsubscribe=One-Click", "Accept: text/html,application/xhtml+xml", &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(strstr(r.body, "You will no longer receive marketing messages by email"));
    h_resp_clear(&r);
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{\"marketing\":{\"email\":false}}");
    h_stop(&g);
}
END_TEST

START_TEST(test_forged_expired_and_missing_tokens_are_refused)
{
    h_gateway g;
    h_resp r;
    char user[64], path[1024], bad[1100], tok[UNSUBTOKEN_SIZE], err[256], cats[1024];
    start(&g);
    new_user("forged", user, sizeof user);
    link_from_email(&g, user, "marketing", path, sizeof path);
    /* a flipped signature character */
    snprintf(bad, sizeof bad, "%s", path);
    bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'A' ? 'B' : 'A';
    one_click(&g, bad, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_code(&r), "invalid_token");
    h_resp_clear(&r);
    h_http(&g, "GET", bad, NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "not valid"));
    ck_assert_ptr_null(strstr(r.body, "<form"));
    h_resp_clear(&r);
    /* another secret's token */
    ck_assert_int_eq(unsubtoken_mint("another-secret-of-thirty-two-byte", 33, user, "marketing",
                                     DELIVERY_EMAIL, timeutil_now_ms() / 1000 + 3600, tok,
                                     sizeof tok, err, sizeof err),
                     0);
    snprintf(bad, sizeof bad, "/v1/unsubscribe?token=%s", tok);
    one_click(&g, bad, &r);
    ck_assert_int_eq(r.status, 400);
    h_resp_clear(&r);
    /* expired */
    ck_assert_int_eq(unsubtoken_mint(SECRET, strlen(SECRET), user, "marketing", DELIVERY_EMAIL,
                                     timeutil_now_ms() / 1000 - 1, tok, sizeof tok, err,
                                     sizeof err),
                     0);
    snprintf(bad, sizeof bad, "/v1/unsubscribe?token=%s", tok);
    one_click(&g, bad, &r);
    ck_assert_int_eq(r.status, 410);
    ck_assert_str_eq(h_error_code(&r), "token_expired");
    h_resp_clear(&r);
    h_http(&g, "GET", bad, NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 410);
    ck_assert_ptr_nonnull(strstr(r.body, "expired"));
    h_resp_clear(&r);
    /* none, a user token, a body that is not the one-click form */
    one_click(&g, "/v1/unsubscribe", &r);
    ck_assert_int_eq(r.status, 400);
    h_resp_clear(&r);
    h_http(&g, "POST", path, NULL, "application/x-www-form-urlencoded", "List-Unsubscribe=No", NULL,
           &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(h_error_field(&r), "List-Unsubscribe");
    h_resp_clear(&r);
    h_http(&g, "POST", path, NULL, "application/json", "{\"List-Unsubscribe\":\"One-Click\"}", NULL,
           &r);
    ck_assert_int_eq(r.status, 415);
    h_resp_clear(&r);
    categories(&g, user, cats, sizeof cats);
    ck_assert_str_eq(cats, "{}");
    h_stop(&g);
}
END_TEST

START_TEST(test_a_deleted_user_gets_a_success_that_changes_nothing)
{
    h_gateway g;
    h_resp r;
    char user[64], path[1024], sql[256], n[16];
    start(&g);
    new_user("gone", user, sizeof user);
    link_from_email(&g, user, "marketing", path, sizeof path);
    snprintf(sql, sizeof sql, "DELETE FROM users WHERE user_id = '%s'", user);
    h_sql(sql);
    one_click(&g, path, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM preferences WHERE user_id = '%s'", user);
    h_sql_value(sql, n, sizeof n);
    ck_assert_str_eq(n, "0");
    ck_assert_int_eq(metric(&g, "herald_gateway_unsubscribes_total{result=\"unknown_user\"} "), 1);
    h_stop(&g);
}
END_TEST

START_TEST(test_without_a_secret_links_are_refused)
{
    h_gateway g;
    h_resp r;
    unsetenv("HERALD_UNSUBSCRIBE_SECRET");
    h_start(&g, NULL);
    one_click(&g, "/v1/unsubscribe?token=u1.x.1.y", &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(h_error_code(&r), "unsubscribe_disabled");
    h_resp_clear(&r);
    h_stop(&g);
    /* a secret too short stops startup, naming the variable */
    setenv("HERALD_UNSUBSCRIBE_SECRET", "short", 1);
    gateway_config cfg;
    char err[512];
    char *argv[] = {"herald-gateway", NULL};
    memset(&cfg, 0, sizeof cfg);
    ck_assert_int_eq(gateway_config_load(&cfg, 1, argv, err, sizeof err), CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "HERALD_UNSUBSCRIBE_SECRET"));
    gateway_config_free(&cfg);
    unsetenv("HERALD_UNSUBSCRIBE_SECRET");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_one_click_post_of_the_email_link_turns_only_that_category_off),
    TEST_ENTRY(test_one_click_as_multipart_and_for_a_user_without_preferences),
    TEST_ENTRY(test_the_page_of_a_link_changes_nothing_and_posts_back),
    TEST_ENTRY(test_forged_expired_and_missing_tokens_are_refused),
    TEST_ENTRY(test_a_deleted_user_gets_a_success_that_changes_nothing),
    TEST_ENTRY(test_without_a_secret_links_are_refused),
};

TEST_MAIN("gateway_unsubscribe", cases)

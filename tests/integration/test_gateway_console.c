/*
 * The ops console as a browser meets it (docs/console.md), against a real
 * gateway and PostgreSQL: login with an admin key sets the session cookie,
 * the cookie opens the admin API and the pages, a request that may change
 * something needs the session's CSRF token, forged, expired and revoked
 * sessions are refused, every page carries the CSP, and the console is
 * not there at all without HERALD_CONSOLE_SECRET.
 */
#include "console_session.h"
#include "gateway_harness.h"

#define SECRET "console-test-secret-0123456789abcdef"

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void start(h_gateway *g)
{
    setenv("HERALD_CONSOLE_SECRET", SECRET, 1);
    h_start(g, NULL);
}

static void call(h_gateway *g, const char *method, const char *path, const char *key,
                 const char *body, const char *extra, long status, h_resp *r)
{
    h_http(g, method, path, key, NULL, body, extra, r);
    ck_assert_msg(r->status == status, "%s %s: %ld, not %ld: %s", method, path, r->status, status,
                  r->body);
}

typedef struct session {
    char cookie[CONSOLE_TOKEN_SIZE + 32]; /* "Cookie: herald_console=..." */
    char csrf[CONSOLE_CSRF_SIZE];
    char both[2 * CONSOLE_TOKEN_SIZE]; /* the cookie and "X-CSRF-Token: ..." */
} session;

/* Logs in with key, asserting 200, and keeps the cookie as a browser would send it. */
static void login(h_gateway *g, const char *key, session *s)
{
    char body[128], set[512];
    h_resp r;
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", key);
    call(g, "POST", "/v1/console/session", NULL, body, NULL, 200, &r);
    h_header(&r, "Set-Cookie", set, sizeof set);
    ck_assert_msg(strncmp(set, CONSOLE_COOKIE "=", strlen(CONSOLE_COOKIE) + 1) == 0, "%s", set);
    snprintf(s->cookie, sizeof s->cookie, "Cookie: %.*s", (int)strcspn(set, ";"), set);
    ck_assert(str(r.json, "csrf_token") != NULL);
    snprintf(s->csrf, sizeof s->csrf, "%s", str(r.json, "csrf_token"));
    snprintf(s->both, sizeof s->both, "%s\nX-CSRF-Token: %s", s->cookie, s->csrf);
    h_resp_clear(&r);
}

START_TEST(test_admin_login_sets_a_strict_http_only_cookie)
{
    h_gateway g;
    start(&g);
    h_resp r;
    char body[128], set[512], n[32];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", h_adminkey);
    call(&g, "POST", "/v1/console/session", NULL, body, NULL, 200, &r);
    h_header(&r, "Set-Cookie", set, sizeof set);
    ck_assert_msg(strstr(set, "; HttpOnly") != NULL, "%s", set);
    ck_assert_msg(strstr(set, "; SameSite=Strict") != NULL, "%s", set);
    ck_assert_msg(strstr(set, "; Path=/;") != NULL, "%s", set);
    ck_assert_msg(strstr(set, "; Max-Age=28800") != NULL, "default 8h: %s", set);
    ck_assert_msg(strstr(set, "Secure") == NULL, "plain HTTP: %s", set);
    ck_assert_int_eq(strlen(str(r.json, "csrf_token")), SIGNEDTOKEN_SIG_LEN);
    int64_t at = 0;
    char err[128];
    ck_assert_int_eq(timeutil_parse_rfc3339(str(r.json, "expires_at"), &at, err, sizeof err), 0);
    ck_assert(at > timeutil_now_ms() + 7 * 3600 * 1000LL);
    h_sql_value("SELECT id FROM api_keys WHERE name = 'test-admin'", n, sizeof n);
    ck_assert_str_eq(str(r.json, "key_id"), n);
    h_resp_clear(&r);

    /* The reloaded page gets the same CSRF token back. */
    session s;
    login(&g, h_adminkey, &s);
    call(&g, "GET", "/v1/console/session", NULL, NULL, s.cookie, 200, &r);
    ck_assert_str_eq(str(r.json, "csrf_token"), s.csrf);
    ck_assert_str_eq(str(r.json, "key_id"), n);
    h_resp_clear(&r);
    /* The session's own route reads the cookie even beside a Bearer key. */
    call(&g, "GET", "/v1/console/session", h_pubkey, NULL, s.cookie, 200, &r);
    ck_assert_str_eq(str(r.json, "key_id"), n);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_cookie_secure_when_configured)
{
    h_gateway g;
    setenv("HERALD_CONSOLE_SECRET", SECRET, 1);
    h_start(&g, "--console-cookie-secure=true", "--console-session-ttl", "15m", NULL);
    h_resp r;
    char body[128], set[512];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", h_adminkey);
    call(&g, "POST", "/v1/console/session", NULL, body, NULL, 200, &r);
    h_header(&r, "Set-Cookie", set, sizeof set);
    ck_assert_msg(strstr(set, "; Secure") != NULL, "%s", set);
    ck_assert_msg(strstr(set, "; Max-Age=900") != NULL, "%s", set);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_wrong_or_publish_key_gets_no_session)
{
    h_gateway g;
    start(&g);
    h_resp r;
    char body[128], set[512];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", h_pubkey);
    call(&g, "POST", "/v1/console/session", NULL, body, NULL, 403, &r);
    ck_assert_str_eq(h_error_code(&r), "forbidden");
    ck_assert_str_eq(h_header(&r, "Set-Cookie", set, sizeof set), "");
    h_resp_clear(&r);
    call(&g, "POST", "/v1/console/session", NULL,
         "{\"api_key\":\"hk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", NULL, 401, &r);
    ck_assert_str_eq(h_error_code(&r), "unauthorized");
    ck_assert_str_eq(h_header(&r, "Set-Cookie", set, sizeof set), "");
    h_resp_clear(&r);
    call(&g, "POST", "/v1/console/session", NULL, "{\"api_key\":42}", NULL, 400, &r);
    ck_assert_str_eq(h_error_field(&r), "api_key");
    h_resp_clear(&r);
    /* No session: GET answers 401. */
    call(&g, "GET", "/v1/console/session", NULL, NULL, NULL, 401, &r);
    h_resp_clear(&r);
    /* A Bearer key is no session either. */
    call(&g, "GET", "/v1/console/session", h_adminkey, NULL, NULL, 401, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_cookie_opens_admin_api_and_writes_need_csrf)
{
    h_gateway g;
    start(&g);
    session s;
    login(&g, h_adminkey, &s);
    h_resp r;
    char out[32];
    call(&g, "GET", "/v1/suppressions", NULL, NULL, s.cookie, 200, &r);
    ck_assert(json_is_array(json_object_get(r.json, "suppressions")));
    h_resp_clear(&r);

    const char *add = "{\"channel\":\"email\",\"address\":\"csrf@example.com\"}";
    call(&g, "POST", "/v1/suppressions", NULL, add, s.cookie, 403, &r);
    ck_assert_str_eq(h_error_code(&r), "csrf_failed");
    h_resp_clear(&r);
    /* The right token with its last character changed. */
    char wrong[512], bad[sizeof s.csrf];
    snprintf(bad, sizeof bad, "%s", s.csrf);
    size_t last = strlen(bad) - 1;
    bad[last] = bad[last] == 'A' ? 'B' : 'A';
    snprintf(wrong, sizeof wrong, "%s\nX-CSRF-Token: %s", s.cookie, bad);
    call(&g, "POST", "/v1/suppressions", NULL, add, wrong, 403, &r);
    ck_assert_str_eq(h_error_code(&r), "csrf_failed");
    h_resp_clear(&r);
    h_sql_value("SELECT count(*) FROM suppressions WHERE address = 'csrf@example.com'", out,
                sizeof out);
    ck_assert_str_eq(out, "0");

    call(&g, "POST", "/v1/suppressions", NULL, add, s.both, 201, &r);
    h_resp_clear(&r);
    h_sql_value("SELECT count(*) FROM suppressions WHERE address = 'csrf@example.com'", out,
                sizeof out);
    ck_assert_str_eq(out, "1");
    call(&g, "DELETE", "/v1/suppressions/email/csrf@example.com", NULL, NULL, s.cookie, 403, &r);
    ck_assert_str_eq(h_error_code(&r), "csrf_failed");
    h_resp_clear(&r);
    call(&g, "DELETE", "/v1/suppressions/email/csrf@example.com", NULL, NULL, s.both, 204, &r);
    h_resp_clear(&r);

    /* A Bearer key needs no CSRF token, cookie or not. */
    call(&g, "POST", "/v1/suppressions", h_adminkey, add, s.cookie, 201, &r);
    h_resp_clear(&r);

    /* Logout needs the token too, and clears the cookie. */
    call(&g, "DELETE", "/v1/console/session", NULL, NULL, s.cookie, 403, &r);
    ck_assert_str_eq(h_error_code(&r), "csrf_failed");
    h_resp_clear(&r);
    char set[512];
    call(&g, "DELETE", "/v1/console/session", NULL, NULL, s.both, 204, &r);
    h_header(&r, "Set-Cookie", set, sizeof set);
    ck_assert_msg(strncmp(set, CONSOLE_COOKIE "=;", strlen(CONSOLE_COOKIE) + 2) == 0, "%s", set);
    ck_assert_msg(strstr(set, "Max-Age=0") != NULL, "%s", set);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* Asserts the headers every /console/ answer carries. */
static void assert_console_headers(const h_resp *r)
{
    char v[512];
    ck_assert_str_eq(h_header(r, "Content-Security-Policy", v, sizeof v),
                     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
                     "data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'");
    ck_assert_str_eq(h_header(r, "X-Content-Type-Options", v, sizeof v), "nosniff");
    ck_assert_str_eq(h_header(r, "Referrer-Policy", v, sizeof v), "no-referrer");
    ck_assert_str_eq(h_header(r, "Cache-Control", v, sizeof v), "no-store");
}

START_TEST(test_pages_need_a_session_and_carry_the_csp)
{
    h_gateway g;
    start(&g);
    h_resp r;
    char v[256];
    /* Without a session: the login page and assets, and 302s to it. */
    call(&g, "GET", "/console/login", NULL, NULL, NULL, 200, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
    ck_assert_msg(strstr(r.body, "<form") != NULL, "%s", r.body);
    ck_assert_msg(strstr(r.body, "<script>") == NULL, "no inline script");
    h_resp_clear(&r);
    call(&g, "GET", "/console/static/console.css", NULL, NULL, NULL, 200, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Content-Type", v, sizeof v), "text/css; charset=utf-8");
    h_resp_clear(&r);
    call(&g, "GET", "/console/static/login.js", NULL, NULL, NULL, 200, &r);
    ck_assert_str_eq(h_header(&r, "Content-Type", v, sizeof v), "text/javascript; charset=utf-8");
    h_resp_clear(&r);
    call(&g, "GET", "/console/", NULL, NULL, NULL, 302, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Location", v, sizeof v), "/console/login");
    h_resp_clear(&r);
    call(&g, "GET", "/console/dlq", NULL, NULL, NULL, 302, &r);
    ck_assert_str_eq(h_header(&r, "Location", v, sizeof v), "/console/login");
    h_resp_clear(&r);
    call(&g, "GET", "/console", NULL, NULL, NULL, 301, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Location", v, sizeof v), "/console/");
    h_resp_clear(&r);

    /* Nothing else is served, nor outside console/static/. */
    static const char *const missing[] = {"/console/nope", "/console/index.html",
                                          "/console/static/", "/console/static/../login.html",
                                          "/console/static/%2e%2e/login.html"};
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++) {
        call(&g, "GET", missing[i], NULL, NULL, NULL, 404, &r);
        ck_assert_str_eq(h_error_code(&r), "not_found");
        assert_console_headers(&r);
        h_resp_clear(&r);
    }
    call(&g, "POST", "/console/login", NULL, "{}", NULL, 405, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Allow", v, sizeof v), "GET, HEAD");
    h_resp_clear(&r);

    /* With one: the overview. */
    session s;
    login(&g, h_adminkey, &s);
    call(&g, "GET", "/console/", NULL, NULL, s.cookie, 200, &r);
    assert_console_headers(&r);
    ck_assert_str_eq(h_header(&r, "Content-Type", v, sizeof v), "text/html; charset=utf-8");
    h_resp_clear(&r);
    call(&g, "HEAD", "/console/", NULL, NULL, s.cookie, 200, &r);
    assert_console_headers(&r);
    ck_assert_int_eq(r.len, 0);
    h_resp_clear(&r);
    call(&g, "HEAD", "/console/", NULL, NULL, NULL, 302, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_forged_or_expired_sessions_are_refused)
{
    h_gateway g;
    start(&g);
    h_resp r;
    char id[32], token[CONSOLE_TOKEN_SIZE], hdr[512], v[64];
    h_sql_value("SELECT id FROM api_keys WHERE name = 'test-admin'", id, sizeof id);
    int64_t kid = strtoll(id, NULL, 10), now = timeutil_now_ms() / 1000;
    static const char other[] = "another-secret-0123456789abcdefghij";

    /* Signed by another secret. */
    ck_assert_int_eq(
        console_session_mint(other, strlen(other), kid, now + 3600, token, sizeof token), 0);
    snprintf(hdr, sizeof hdr, "Cookie: " CONSOLE_COOKIE "=%s", token);
    call(&g, "GET", "/v1/suppressions", NULL, NULL, hdr, 401, &r);
    ck_assert_str_eq(h_error_code(&r), "unauthorized");
    h_resp_clear(&r);
    call(&g, "GET", "/console/", NULL, NULL, hdr, 302, &r);
    ck_assert_str_eq(h_header(&r, "Location", v, sizeof v), "/console/login");
    h_resp_clear(&r);

    /* Right secret, expired. */
    ck_assert_int_eq(
        console_session_mint(SECRET, strlen(SECRET), kid, now - 1, token, sizeof token), 0);
    snprintf(hdr, sizeof hdr, "Cookie: " CONSOLE_COOKIE "=%s", token);
    call(&g, "GET", "/v1/console/session", NULL, NULL, hdr, 401, &r);
    ck_assert_msg(strstr(r.body, "expired") != NULL, "%s", r.body);
    h_resp_clear(&r);
    call(&g, "GET", "/console/", NULL, NULL, hdr, 302, &r);
    h_resp_clear(&r);

    /* Right secret, a key id that was never issued. */
    ck_assert_int_eq(
        console_session_mint(SECRET, strlen(SECRET), 987654321, now + 3600, token, sizeof token),
        0);
    snprintf(hdr, sizeof hdr, "Cookie: " CONSOLE_COOKIE "=%s", token);
    call(&g, "GET", "/v1/suppressions", NULL, NULL, hdr, 401, &r);
    h_resp_clear(&r);

    /* Garbage. */
    call(&g, "GET", "/v1/suppressions", NULL, NULL, "Cookie: " CONSOLE_COOKIE "=x.y.z", 401, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_revoking_the_key_ends_the_session)
{
    h_gateway g;
    start(&g);
    char key[APIKEY_SIZE], err[256];
    int64_t id = 0;
    PGconn *c = h_db();
    ck_assert_msg(
        apikey_db_create(c, "console-revoked", APIKEY_SCOPE_ADMIN, key, &id, err, sizeof err) == 0,
        "%s", err);
    session s;
    login(&g, key, &s);
    h_resp r;
    call(&g, "GET", "/v1/suppressions", NULL, NULL, s.cookie, 200, &r);
    h_resp_clear(&r);
    ck_assert_int_eq(apikey_db_revoke(c, id, err, sizeof err), 0);
    PQfinish(c);
    /* At once: the session checks its key on every request. */
    call(&g, "GET", "/v1/suppressions", NULL, NULL, s.cookie, 401, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/v1/console/session", NULL, NULL, s.cookie, 401, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/console/", NULL, NULL, s.cookie, 302, &r);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

START_TEST(test_console_is_absent_without_a_secret)
{
    h_gateway g;
    unsetenv("HERALD_CONSOLE_SECRET");
    h_start(&g, NULL);
    h_resp r;
    char body[128];
    snprintf(body, sizeof body, "{\"api_key\":\"%s\"}", h_adminkey);
    call(&g, "POST", "/v1/console/session", NULL, body, NULL, 404, &r);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    call(&g, "GET", "/v1/console/session", NULL, NULL, NULL, 404, &r);
    h_resp_clear(&r);
    call(&g, "GET", "/console/login", NULL, NULL, NULL, 404, &r);
    ck_assert_str_eq(h_error_code(&r), "not_found");
    h_resp_clear(&r);
    call(&g, "GET", "/console/", NULL, NULL, NULL, 404, &r);
    h_resp_clear(&r);
    h_stop(&g);

    /* A short secret is refused by name. */
    gateway_config cfg;
    char err_buf[512];
    memset(&cfg, 0, sizeof cfg);
    setenv("HERALD_CONSOLE_SECRET", "short", 1);
    char *argv[] = {"herald-gateway", "--database-url", h_dburl};
    ck_assert_int_eq(gateway_config_load(&cfg, 3, argv, err_buf, sizeof err_buf), CONFIG_ERROR);
    ck_assert_msg(strstr(err_buf, "HERALD_CONSOLE_SECRET") != NULL, "%s", err_buf);
    gateway_config_free(&cfg);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_admin_login_sets_a_strict_http_only_cookie),
    TEST_ENTRY(test_cookie_secure_when_configured),
    TEST_ENTRY(test_wrong_or_publish_key_gets_no_session),
    TEST_ENTRY(test_cookie_opens_admin_api_and_writes_need_csrf),
    TEST_ENTRY(test_pages_need_a_session_and_carry_the_csp),
    TEST_ENTRY(test_forged_or_expired_sessions_are_refused),
    TEST_ENTRY(test_revoking_the_key_ends_the_session),
    TEST_ENTRY(test_console_is_absent_without_a_secret),
};

TEST_MAIN("gateway_console", cases)

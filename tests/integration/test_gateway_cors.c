/*
 * CORS on the gateway (HERALD_GATEWAY_CORS_ORIGINS) over real HTTP: the
 * preflight a browser sends before an inbox call with a user token, the
 * headers on every answer of those routes (refusals included) for an
 * allowed origin, and nothing for other origins, other routes, or when
 * the variable is unset.
 */
#include "gateway_harness.h"

#include "usertoken.h"

#define SECRET  "cors-test-secret-of-at-least-32-bytes"
#define ORIGINS "http://127.0.0.1:8000, https://app.example.com"
#define ALLOWED "Origin: https://app.example.com"
#define OTHER   "Origin: https://evil.example.com"

/* A fresh user and a token for it. */
static void new_user(char *user, size_t userlen, char tok[USERTOKEN_SIZE])
{
    char rnd[16], sql[256], err[128];
    ck_assert_int_eq(id_random_token(rnd, sizeof rnd, 6), 0);
    for (char *p = rnd; *p; p++)
        if (*p == '-' || *p == '_')
            *p = 'x';
    snprintf(user, userlen, "cors-%s", rnd);
    snprintf(sql, sizeof sql, "INSERT INTO users (user_id) VALUES ('%s')", user);
    h_sql(sql);
    ck_assert_int_eq(usertoken_mint(SECRET, strlen(SECRET), user, timeutil_now_ms() / 1000 + 600,
                                    tok, USERTOKEN_SIZE, err, sizeof err),
                     0);
}

static void start(h_gateway *g, const char *origins)
{
    setenv("HERALD_USER_TOKEN_SECRET", SECRET, 1);
    if (origins != NULL)
        h_start(g, "--cors-origins", origins, NULL);
    else
        h_start(g, NULL);
}

static void stop(h_gateway *g)
{
    h_stop(g);
    unsetenv("HERALD_USER_TOKEN_SECRET");
}

static void assert_header(const h_resp *r, const char *name, const char *want)
{
    char v[256];
    ck_assert_msg(strcmp(h_header(r, name, v, sizeof v), want) == 0, "%s: \"%s\", expected \"%s\"",
                  name, v, want);
}

static void assert_no_cors(const h_resp *r)
{
    char v[256];
    ck_assert_msg(h_header(r, "Access-Control-Allow-Origin", v, sizeof v)[0] == '\0',
                  "unexpected Access-Control-Allow-Origin: %s", v);
    ck_assert_msg(h_header(r, "Access-Control-Allow-Methods", v, sizeof v)[0] == '\0',
                  "unexpected Access-Control-Allow-Methods: %s", v);
}

START_TEST(test_cors_preflight_from_an_allowed_origin_is_answered)
{
    h_gateway g;
    start(&g, ORIGINS);
    char user[64], tok[USERTOKEN_SIZE], path[256];
    new_user(user, sizeof user, tok);
    static const char *const tails[] = {"/inbox", "/inbox/counts", "/inbox/mark"};
    for (size_t i = 0; i < 3; i++) {
        h_resp r;
        snprintf(path, sizeof path, "/v1/users/%s%s", user, tails[i]);
        /* No credential: a browser sends none with a preflight. */
        h_http(&g, "OPTIONS", path, NULL, NULL, NULL, ALLOWED, &r);
        ck_assert_msg(r.status == 204, "%s: %ld %s", path, r.status, r.body);
        ck_assert_uint_eq(r.len, 0);
        assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
        assert_header(&r, "Access-Control-Allow-Methods", "GET, POST");
        assert_header(&r, "Access-Control-Allow-Headers", "Authorization, Content-Type");
        assert_header(&r, "Access-Control-Max-Age", "600");
        assert_header(&r, "Vary", "Origin");
        h_resp_clear(&r);
    }
    /* The other listed origin, echoed as it came. */
    h_resp r;
    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    h_http(&g, "OPTIONS", path, NULL, NULL, NULL, "Origin: http://127.0.0.1:8000", &r);
    ck_assert_int_eq(r.status, 204);
    assert_header(&r, "Access-Control-Allow-Origin", "http://127.0.0.1:8000");
    h_resp_clear(&r);
    stop(&g);
}
END_TEST

START_TEST(test_cors_answers_carry_the_origin_refusals_included)
{
    h_gateway g;
    start(&g, ORIGINS);
    char user[64], tok[USERTOKEN_SIZE], other[64], otok[USERTOKEN_SIZE], path[256];
    new_user(user, sizeof user, tok);
    new_user(other, sizeof other, otok);
    h_resp r;

    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    h_http(&g, "GET", path, tok, NULL, NULL, ALLOWED, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    assert_header(&r, "Vary", "Origin");
    h_resp_clear(&r);

    /* The page can read why it was refused: 401, 403, 415. */
    h_http(&g, "GET", path, NULL, NULL, NULL, ALLOWED, &r);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq(h_error_code(&r), "unauthorized");
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    assert_header(&r, "WWW-Authenticate", "Bearer");
    h_resp_clear(&r);
    h_http(&g, "GET", path, otok, NULL, NULL, ALLOWED, &r);
    ck_assert_int_eq(r.status, 403);
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    assert_header(&r, "Vary", "Origin");
    h_resp_clear(&r);
    snprintf(path, sizeof path, "/v1/users/%s/inbox/mark", user);
    h_http(&g, "POST", path, tok, "text/plain", "{}", ALLOWED, &r);
    ck_assert_int_eq(r.status, 415);
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    h_resp_clear(&r);

    /* A mark with the token, as the page makes it. */
    h_http(&g, "POST", path, tok, NULL,
           "{\"action\":\"read\",\"ids\":[\"00000000-0000-5000-8000-000000000000\"]}", ALLOWED, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    assert_header(&r, "Access-Control-Allow-Origin", "https://app.example.com");
    h_resp_clear(&r);
    stop(&g);
}
END_TEST

START_TEST(test_cors_other_origins_and_routes_get_no_headers)
{
    h_gateway g;
    start(&g, ORIGINS);
    char user[64], tok[USERTOKEN_SIZE], path[256];
    new_user(user, sizeof user, tok);
    h_resp r;

    /* An origin not listed: answered as without CORS. */
    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    h_http(&g, "OPTIONS", path, NULL, NULL, NULL, OTHER, &r);
    ck_assert_int_eq(r.status, 405);
    assert_no_cors(&r);
    h_resp_clear(&r);
    h_http(&g, "GET", path, tok, NULL, NULL, OTHER, &r);
    ck_assert_int_eq(r.status, 200);
    assert_no_cors(&r);
    h_resp_clear(&r);
    h_http(&g, "GET", path, tok, NULL, NULL, "Origin: null", &r);
    ck_assert_int_eq(r.status, 200);
    assert_no_cors(&r);
    h_resp_clear(&r);

    /* Routes a user token does not open: no browser calls them. */
    static const char *const methods[] = {"OPTIONS", "POST", "GET", "POST"};
    char paths[4][256];
    snprintf(paths[0], sizeof paths[0], "/v1/users/%s/tokens", user);
    snprintf(paths[1], sizeof paths[1], "/v1/users/%s/tokens", user);
    snprintf(paths[2], sizeof paths[2], "/v1/users/%s", user);
    snprintf(paths[3], sizeof paths[3], "/v1/events");
    for (size_t i = 0; i < 4; i++) {
        h_http(&g, methods[i], paths[i], h_pubkey, NULL, i == 3 ? "{}" : NULL, ALLOWED, &r);
        ck_assert_msg(r.status != 204, "%s %s: 204", methods[i], paths[i]);
        assert_no_cors(&r);
        h_resp_clear(&r);
    }
    stop(&g);
}
END_TEST

START_TEST(test_cors_unset_sends_no_headers)
{
    h_gateway g;
    start(&g, NULL);
    char user[64], tok[USERTOKEN_SIZE], path[256];
    new_user(user, sizeof user, tok);
    h_resp r;
    snprintf(path, sizeof path, "/v1/users/%s/inbox", user);
    h_http(&g, "OPTIONS", path, NULL, NULL, NULL, ALLOWED, &r);
    ck_assert_int_eq(r.status, 405);
    assert_no_cors(&r);
    h_resp_clear(&r);
    h_http(&g, "GET", path, tok, NULL, NULL, ALLOWED, &r);
    ck_assert_int_eq(r.status, 200);
    assert_no_cors(&r);
    h_resp_clear(&r);
    stop(&g);

    /* Empty is unset too. */
    start(&g, "");
    h_http(&g, "GET", path, tok, NULL, NULL, ALLOWED, &r);
    ck_assert_int_eq(r.status, 200);
    assert_no_cors(&r);
    h_resp_clear(&r);
    stop(&g);
}
END_TEST

START_TEST(test_cors_star_echoes_any_origin)
{
    h_gateway g;
    start(&g, "*");
    char user[64], tok[USERTOKEN_SIZE], path[256];
    new_user(user, sizeof user, tok);
    h_resp r;
    snprintf(path, sizeof path, "/v1/users/%s/inbox/counts", user);
    h_http(&g, "OPTIONS", path, NULL, NULL, NULL, OTHER, &r);
    ck_assert_int_eq(r.status, 204);
    assert_header(&r, "Access-Control-Allow-Origin", "https://evil.example.com");
    h_resp_clear(&r);
    h_http(&g, "GET", path, tok, NULL, NULL, "Origin: http://localhost:5173", &r);
    ck_assert_int_eq(r.status, 200);
    assert_header(&r, "Access-Control-Allow-Origin", "http://localhost:5173");
    assert_header(&r, "Vary", "Origin");
    h_resp_clear(&r);
    stop(&g);
}
END_TEST

START_TEST(test_cors_bad_value_stops_startup)
{
    static const char *const bad[] = {"https://app.example.com/", "app.example.com", "*,http://a.b",
                                      "https://a.example.com,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char err[512];
        setenv("HERALD_GATEWAY_CORS_ORIGINS", bad[i], 1);
        gateway_config cfg = {0};
        char *argv[] = {"herald-gateway", NULL};
        ck_assert_int_eq(gateway_config_load(&cfg, 1, argv, err, sizeof err), CONFIG_ERROR);
        ck_assert_msg(strstr(err, "HERALD_GATEWAY_CORS_ORIGINS") != NULL, "%s", err);
        gateway_config_free(&cfg);
    }
    unsetenv("HERALD_GATEWAY_CORS_ORIGINS");
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_cors_preflight_from_an_allowed_origin_is_answered),
    TEST_ENTRY(test_cors_answers_carry_the_origin_refusals_included),
    TEST_ENTRY(test_cors_other_origins_and_routes_get_no_headers),
    TEST_ENTRY(test_cors_unset_sends_no_headers),
    TEST_ENTRY(test_cors_star_echoes_any_origin),
    TEST_ENTRY(test_cors_bad_value_stops_startup),
};

TEST_MAIN("gateway_cors", cases)

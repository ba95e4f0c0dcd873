/*
 * Unit tests of the console's pure pieces: the session token, its CSRF
 * token, the Cookie and Set-Cookie headers (producer/console_session) and
 * the URL map of the pages (producer/console).
 */
#include "testutil.h"

#include "console.h"
#include "console_session.h"

#include <string.h>

static const char secret[] = "0123456789abcdef0123456789abcdef";
#define SECRET secret, strlen(secret)
#define NOW    1800000000LL

static void mint(int64_t key_id, int64_t expires, char *out)
{
    ck_assert_int_eq(console_session_mint(SECRET, key_id, expires, out, CONSOLE_TOKEN_SIZE), 0);
}

START_TEST(test_session_round_trips_key_id_and_expiry)
{
    char tok[CONSOLE_TOKEN_SIZE];
    int64_t id = 0, exp = 0;
    mint(123456789012LL, NOW + 28800, tok);
    ck_assert_int_eq(strncmp(tok, "c1.", 3), 0);
    ck_assert_int_eq(console_session_verify(SECRET, tok, strlen(tok), NOW, &id, &exp),
                     SIGNEDTOKEN_OK);
    ck_assert_int_eq(id, 123456789012LL);
    ck_assert_int_eq(exp, NOW + 28800);
}
END_TEST

START_TEST(test_session_refuses_expired_forged_and_other_kinds)
{
    char tok[CONSOLE_TOKEN_SIZE], bad[CONSOLE_TOKEN_SIZE];
    int64_t id = 0, exp = 0;
    mint(7, NOW - 1, tok);
    ck_assert_int_eq(console_session_verify(SECRET, tok, strlen(tok), NOW, &id, &exp),
                     SIGNEDTOKEN_EXPIRED);
    mint(7, NOW + 60, tok);
    static const char other[] = "another secret of at least 32 bytes";
    ck_assert_int_eq(console_session_verify(other, strlen(other), tok, strlen(tok), NOW, &id, &exp),
                     SIGNEDTOKEN_BAD_SIGNATURE);
    /* Another key id under the same signature. */
    snprintf(bad, sizeof bad, "%s", tok);
    bad[3] = bad[3] == 'O' ? 'N' : 'O';
    ck_assert_int_ne(console_session_verify(SECRET, bad, strlen(bad), NOW, &id, &exp),
                     SIGNEDTOKEN_OK);
    /* A token of another kind under the same secret: "v1." for "c1.". */
    snprintf(bad, sizeof bad, "v1.%s", tok + 3);
    ck_assert_int_ne(console_session_verify(SECRET, bad, strlen(bad), NOW, &id, &exp),
                     SIGNEDTOKEN_OK);
    ck_assert_int_ne(console_session_mint(SECRET, 0, NOW, tok, sizeof tok), 0);
    ck_assert_int_ne(console_session_mint(SECRET, 7, NOW, tok, 20), 0);
}
END_TEST

START_TEST(test_csrf_token_is_bound_to_the_session)
{
    char a[CONSOLE_TOKEN_SIZE], b[CONSOLE_TOKEN_SIZE], ca[CONSOLE_CSRF_SIZE], cb[CONSOLE_CSRF_SIZE];
    mint(7, NOW + 60, a);
    mint(8, NOW + 60, b);
    console_session_csrf(SECRET, a, strlen(a), ca);
    console_session_csrf(SECRET, b, strlen(b), cb);
    ck_assert_int_eq(strlen(ca), SIGNEDTOKEN_SIG_LEN);
    ck_assert_str_ne(ca, cb);
    ck_assert(console_session_csrf_ok(SECRET, a, strlen(a), ca));
    ck_assert(!console_session_csrf_ok(SECRET, a, strlen(a), cb));
    ck_assert(!console_session_csrf_ok(SECRET, a, strlen(a), NULL));
    ck_assert(!console_session_csrf_ok(SECRET, a, strlen(a), ""));
    ca[SIGNEDTOKEN_SIG_LEN - 1] = '\0';
    ck_assert(!console_session_csrf_ok(SECRET, a, strlen(a), ca));
}
END_TEST

START_TEST(test_cookie_value_is_found_among_others)
{
    size_t len = 0;
    const char *v =
        console_cookie_value("a=1; herald_console=c1.x.y.z; b=2", "herald_console", &len);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(len, 8);
    ck_assert_int_eq(strncmp(v, "c1.x.y.z", len), 0);
    v = console_cookie_value("herald_console=\"q\"", "herald_console", &len);
    ck_assert_int_eq(len, 1);
    ck_assert_int_eq(v[0], 'q');
    v = console_cookie_value("x_herald_console=1;herald_console=2 ", "herald_console", &len);
    ck_assert_int_eq(len, 1);
    ck_assert_int_eq(v[0], '2');
    v = console_cookie_value("herald_console=first; herald_console=second", "herald_console", &len);
    ck_assert_int_eq(strncmp(v, "first", len), 0);
    ck_assert_ptr_null(console_cookie_value("herald_consolex=1", "herald_console", &len));
    ck_assert_ptr_null(console_cookie_value("herald_console", "herald_console", &len));
    ck_assert_ptr_null(console_cookie_value("", "herald_console", &len));
    ck_assert_ptr_null(console_cookie_value(NULL, "herald_console", &len));
}
END_TEST

START_TEST(test_set_cookie_has_every_attribute)
{
    char out[CONSOLE_SET_COOKIE_SIZE];
    ck_assert_int_eq(console_set_cookie("c1.t", 28800, false, out, sizeof out), 0);
    ck_assert_str_eq(out, "herald_console=c1.t; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800");
    ck_assert_int_eq(console_set_cookie("c1.t", 60, true, out, sizeof out), 0);
    ck_assert_str_eq(out,
                     "herald_console=c1.t; Path=/; HttpOnly; SameSite=Strict; Max-Age=60; Secure");
    ck_assert_int_eq(console_set_cookie(NULL, 60, false, out, sizeof out), 0);
    ck_assert_str_eq(out, "herald_console=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ck_assert_int_ne(console_set_cookie("c1.t", 60, false, out, 10), 0);
}
END_TEST

static console_page map(const char *path, char *file, bool *session)
{
    *session = false;
    file[0] = '\0';
    return console_map(path, file, 256, session);
}

START_TEST(test_urls_map_onto_the_console_files)
{
    static const struct {
        const char *url, *file;
        bool session;
    } pages[] = {
        {"/console/", "index.html", true},
        {"/console/login", "login.html", false},
        {"/console/dlq", "dlq.html", true},
        {"/console/event", "event.html", true},
        {"/console/replay", "replay.html", true},
        {"/console/static/console.css", "static/console.css", false},
        {"/console/static/app/chart.js", "static/app/chart.js", false},
    };
    char file[256];
    bool session;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        ck_assert_int_eq(map(pages[i].url, file, &session), CONSOLE_PAGE_FILE);
        ck_assert_str_eq(file, pages[i].file);
        ck_assert_int_eq(session, pages[i].session);
    }
    ck_assert_int_eq(map("/console", file, &session), CONSOLE_PAGE_REDIRECT);
    static const char *const missing[] = {
        "/console/index.html",
        "/console/login.html",
        "/console/nope",
        "/console/static/",
        "/console/static/../index.html",
        "/console/static/%2e.js",
        "/console/static//etc/passwd",
        "/console/dlq/",
    };
    for (size_t i = 0; i < sizeof missing / sizeof missing[0]; i++)
        ck_assert_msg(map(missing[i], file, &session) == CONSOLE_PAGE_NOT_FOUND, "%s", missing[i]);
    ck_assert_int_eq(map("/consoles", file, &session), CONSOLE_PAGE_NOT_CONSOLE);
    ck_assert_int_eq(map("/v1/console/session", file, &session), CONSOLE_PAGE_NOT_CONSOLE);
}
END_TEST

START_TEST(test_embedded_files_carry_their_content_type)
{
    const console_file *f = console_file_find("login.html");
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(f->content_type, "text/html; charset=utf-8");
    ck_assert_int_eq(f->len, strlen(f->bytes));
    ck_assert_ptr_nonnull(strstr(f->bytes, "<html"));
    for (f = console_files; f->path != NULL; f++) {
        size_t n = strlen(f->path);
        if (n > 3 && strcmp(f->path + n - 3, ".js") == 0)
            ck_assert_str_eq(f->content_type, "text/javascript; charset=utf-8");
        if (n > 4 && strcmp(f->path + n - 4, ".css") == 0)
            ck_assert_str_eq(f->content_type, "text/css; charset=utf-8");
    }
    ck_assert_ptr_null(console_file_find("nope.html"));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_session_round_trips_key_id_and_expiry),
    TEST_ENTRY(test_session_refuses_expired_forged_and_other_kinds),
    TEST_ENTRY(test_csrf_token_is_bound_to_the_session),
    TEST_ENTRY(test_cookie_value_is_found_among_others),
    TEST_ENTRY(test_set_cookie_has_every_attribute),
    TEST_ENTRY(test_urls_map_onto_the_console_files),
    TEST_ENTRY(test_embedded_files_carry_their_content_type),
};

TEST_MAIN("gateway_console", cases)

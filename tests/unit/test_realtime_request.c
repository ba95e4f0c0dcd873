/*
 * herald-realtime's admission of a request for the live stream: the path
 * names the user, the token (query before header) must be that user's and
 * valid now, and the last event id (header before query) must be an
 * integer >= 0; each refusal has its status and a reason for the client.
 */
#include <string.h>

#include "rtrequest.h"
#include "testutil.h"
#include "usertoken.h"

#define SECRET "request-test-secret-0123456789abcdef"
#define NOW    1796000000

static char tok_ann[USERTOKEN_SIZE], tok_bob[USERTOKEN_SIZE], tok_old[USERTOKEN_SIZE],
    tok_forged[USERTOKEN_SIZE];
static char arg_ann[USERTOKEN_SIZE + 16], arg_bob[USERTOKEN_SIZE + 16],
    bearer_ann[USERTOKEN_SIZE + 16];

static void mint(const char *secret, const char *user, int64_t expires, char *out)
{
    char err[256];
    ck_assert_msg(usertoken_mint(secret, strlen(secret), user, expires, out, USERTOKEN_SIZE, err,
                                 sizeof err) == 0,
                  "%s", err);
}

static void setup(void)
{
    mint(SECRET, "ann", NOW + 600, tok_ann);
    mint(SECRET, "bob", NOW + 600, tok_bob);
    mint(SECRET, "ann", NOW, tok_old); /* valid while now < expiry: expired at NOW */
    mint("another-secret-0123456789abcdefghij", "ann", NOW + 600, tok_forged);
    snprintf(arg_ann, sizeof arg_ann, "token=%s", tok_ann);
    snprintf(arg_bob, sizeof arg_bob, "token=%s", tok_bob);
    snprintf(bearer_ann, sizeof bearer_ann, "Bearer %s", tok_ann);
}

static unsigned admit(const char *path, const char *a1, const char *a2, const char *auth,
                      const char *last, rtrequest_admission *out, const char **why)
{
    const char *args[2];
    size_t n = 0;
    if (a1 != NULL)
        args[n++] = a1;
    if (a2 != NULL)
        args[n++] = a2;
    rtrequest req = {
        .path = path, .args = args, .nargs = n, .authorization = auth, .last_event_header = last};
    *why = NULL;
    return rtrequest_admit(&req, SECRET, NOW, out, why);
}

START_TEST(test_the_users_token_admits_with_the_last_event_id)
{
    setup();
    rtrequest_admission a;
    const char *why;
    ck_assert_uint_eq(admit("/v1/users/ann/live", arg_ann, NULL, NULL, NULL, &a, &why), 0);
    ck_assert_str_eq(a.user_id, "ann");
    ck_assert_int_eq(a.last_event_id, -1);
    ck_assert_uint_eq(
        admit("/v1/users/ann/live", arg_ann, "last_event_id=17", NULL, NULL, &a, &why), 0);
    ck_assert_int_eq(a.last_event_id, 17);
    /* EventSource's header wins over the first connect's argument */
    ck_assert_uint_eq(
        admit("/v1/users/ann/live", "last_event_id=17", arg_ann, NULL, "42", &a, &why), 0);
    ck_assert_int_eq(a.last_event_id, 42);
    /* the header form of the token */
    ck_assert_uint_eq(admit("/v1/users/ann/live", NULL, NULL, bearer_ann, "0", &a, &why), 0);
    ck_assert_int_eq(a.last_event_id, 0);
    ck_assert(!a.token_refused);
}
END_TEST

START_TEST(test_tokens_are_refused_with_401_or_403)
{
    setup();
    rtrequest_admission a;
    const char *why;
    char arg[USERTOKEN_SIZE + 16];
    ck_assert_uint_eq(admit("/v1/users/ann/live", NULL, NULL, NULL, NULL, &a, &why), 401);
    ck_assert_str_eq(why, "a user token is required");
    ck_assert(a.token_refused);
    ck_assert_uint_eq(admit("/v1/users/ann/live", arg_bob, NULL, NULL, NULL, &a, &why), 403);
    ck_assert_str_eq(why, "the token is another user's");
    snprintf(arg, sizeof arg, "token=%s", tok_old);
    ck_assert_uint_eq(admit("/v1/users/ann/live", arg, NULL, NULL, NULL, &a, &why), 401);
    ck_assert_str_eq(why, "the token has expired");
    snprintf(arg, sizeof arg, "token=%s", tok_forged);
    ck_assert_uint_eq(admit("/v1/users/ann/live", arg, NULL, NULL, NULL, &a, &why), 401);
    ck_assert_str_eq(why, "the token is not valid");
    /* the query's token is the one checked, even beside a good header */
    ck_assert_uint_eq(admit("/v1/users/ann/live", arg_bob, NULL, bearer_ann, NULL, &a, &why), 403);
    ck_assert_uint_eq(admit("/v1/users/ann/live", NULL, NULL, "Basic YW5uOng=", NULL, &a, &why),
                      401);
    ck_assert_uint_eq(admit("/v1/users/ann/live", "token=", NULL, NULL, NULL, &a, &why), 401);
}
END_TEST

START_TEST(test_other_paths_are_404_and_bad_ids_400)
{
    setup();
    rtrequest_admission a;
    const char *why;
    static const char *const paths[] = {"/",
                                        "/v1/users/ann",
                                        "/v1/users//live",
                                        "/v1/users/ann/live/",
                                        "/v1/users/ann/other",
                                        "/v1/users/a b/live",
                                        "/v2/users/ann/live",
                                        "v1/users/ann/live"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        ck_assert_msg(admit(paths[i], arg_ann, NULL, NULL, NULL, &a, &why) == 404, "%s", paths[i]);
        ck_assert(!a.token_refused);
    }
    rtrequest req = {0};
    ck_assert_uint_eq(rtrequest_admit(&req, SECRET, NOW, &a, &why), 404); /* no path at all */
    static const char *const ids[] = {"-1", "x", "1x", "", " 1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        ck_assert_msg(admit("/v1/users/ann/live", arg_ann, NULL, NULL, ids[i], &a, &why) == 400,
                      "header %s", ids[i]);
        char q[64];
        snprintf(q, sizeof q, "last_event_id=%s", ids[i]);
        ck_assert_msg(admit("/v1/users/ann/live", arg_ann, q, NULL, NULL, &a, &why) == 400,
                      "query %s", ids[i]);
    }
    ck_assert_ptr_nonnull(strstr(why, "last_event_id"));
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_the_users_token_admits_with_the_last_event_id),
    TEST_ENTRY(test_tokens_are_refused_with_401_or_403),
    TEST_ENTRY(test_other_paths_are_404_and_bad_ids_400),
};

TEST_MAIN("realtime_request", cases)

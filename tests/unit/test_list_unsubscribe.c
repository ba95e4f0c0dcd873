/*
 * channels/list_unsubscribe: which emails carry unsubscribe links, what the
 * links are, and the configuration that turns them on.
 */
#include "testutil.h"

#include "list_unsubscribe.h"
#include "unsubtoken.h"

#include <string.h>

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW_MS 1800000000000LL

static list_unsubscribe *make(const char *mailto, const char *exempt)
{
    char err[256];
    list_unsubscribe *lu = NULL;
    const list_unsubscribe_config c = {.secret = SECRET,
                                       .url = "https://notify.example.com/",
                                       .mailto = mailto,
                                       .exempt = exempt,
                                       .ttl_ms = 60LL * 86400 * 1000};
    ck_assert_msg(list_unsubscribe_new(&c, &lu, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(lu);
    return lu;
}

/* The config error of c, "" when it is accepted. */
static const char *config_error(const list_unsubscribe_config *c)
{
    static char err[256];
    list_unsubscribe *lu = NULL;
    err[0] = '\0';
    if (list_unsubscribe_new(c, &lu, err, sizeof err) == 0)
        err[0] = '\0';
    list_unsubscribe_free(lu);
    return err;
}

START_TEST(test_links_carry_a_token_for_the_user_category_and_channel)
{
    list_unsubscribe *lu = make("unsub@example.com", NULL);
    list_unsubscribe_links l;
    char err[256];
    ck_assert_int_eq(list_unsubscribe_links_for(lu, "u-42", "marketing", EVENT_PRIORITY_NORMAL,
                                                DELIVERY_EMAIL, NOW_MS, &l, err, sizeof err),
                     1);
    const char *prefix = "https://notify.example.com/v1/unsubscribe?token=";
    ck_assert_int_eq(strncmp(l.https, prefix, strlen(prefix)), 0);
    const char *token = l.https + strlen(prefix);
    unsubtoken t;
    ck_assert_int_eq(
        unsubtoken_verify(SECRET, strlen(SECRET), token, strlen(token), NOW_MS / 1000, &t),
        SIGNEDTOKEN_OK);
    ck_assert_str_eq(t.user_id, "u-42");
    ck_assert_str_eq(t.category, "marketing");
    ck_assert_int_eq(t.channel, DELIVERY_EMAIL);
    ck_assert_int_eq(t.expires_unix, NOW_MS / 1000 + 60 * 86400);
    char want[LIST_UNSUBSCRIBE_URI_SIZE];
    snprintf(want, sizeof want, "mailto:unsub@example.com?subject=%s", token);
    ck_assert_str_eq(l.mailto, want);
    list_unsubscribe_free(lu);
}
END_TEST

START_TEST(test_exempt_uncategorised_and_critical_emails_carry_none)
{
    list_unsubscribe *lu = make(NULL, NULL);
    list_unsubscribe_links l;
    char err[256];
    ck_assert(list_unsubscribe_applies(lu, "marketing", EVENT_PRIORITY_LOW));
    ck_assert(list_unsubscribe_applies(lu, "marketing", EVENT_PRIORITY_HIGH));
    ck_assert(!list_unsubscribe_applies(lu, "marketing", EVENT_PRIORITY_CRITICAL));
    ck_assert(!list_unsubscribe_applies(lu, "transactional", EVENT_PRIORITY_NORMAL));
    ck_assert(!list_unsubscribe_applies(lu, "security", EVENT_PRIORITY_NORMAL));
    ck_assert(!list_unsubscribe_applies(lu, NULL, EVENT_PRIORITY_NORMAL));
    ck_assert_int_eq(list_unsubscribe_links_for(lu, "u-42", "security", EVENT_PRIORITY_NORMAL,
                                                DELIVERY_EMAIL, NOW_MS, &l, err, sizeof err),
                     0);
    ck_assert_int_eq(list_unsubscribe_links_for(lu, "u-42", "news", EVENT_PRIORITY_NORMAL,
                                                DELIVERY_EMAIL, NOW_MS, &l, err, sizeof err),
                     1);
    ck_assert_str_eq(l.mailto, "");
    list_unsubscribe_free(lu);
    /* an exempt list of its own replaces the default */
    lu = make(NULL, "billing, receipts");
    ck_assert(!list_unsubscribe_applies(lu, "receipts", EVENT_PRIORITY_NORMAL));
    ck_assert(list_unsubscribe_applies(lu, "security", EVENT_PRIORITY_NORMAL));
    list_unsubscribe_free(lu);
    /* links off: nothing applies */
    ck_assert(!list_unsubscribe_applies(NULL, "marketing", EVENT_PRIORITY_NORMAL));
    ck_assert_int_eq(list_unsubscribe_links_for(NULL, "u-42", "marketing", EVENT_PRIORITY_NORMAL,
                                                DELIVERY_EMAIL, NOW_MS, &l, err, sizeof err),
                     0);
}
END_TEST

START_TEST(test_half_a_configuration_names_the_missing_variable)
{
    list_unsubscribe_config c = {.ttl_ms = 3600000};
    ck_assert_str_eq(config_error(&c), "");
    c.secret = SECRET;
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_URL:", 23), 0);
    c.secret = NULL;
    c.url = "https://notify.example.com";
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_SECRET:", 26), 0);
    c.url = NULL;
    c.mailto = "unsub@example.com";
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_MAILTO:", 26), 0);
    c = (list_unsubscribe_config){.secret = "short", .url = "https://n.example", .ttl_ms = 3600000};
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_SECRET:", 26), 0);
    c.secret = SECRET;
    c.mailto = "a?b@example.com";
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_MAILTO:", 26), 0);
    c.mailto = NULL;
    c.exempt = "Billing";
    ck_assert_int_eq(strncmp(config_error(&c), "HERALD_UNSUBSCRIBE_EXEMPT:", 26), 0);
}
END_TEST

START_TEST(test_url_check_takes_a_base_url_only)
{
    char err[256];
    ck_assert_int_eq(list_unsubscribe_check_url("https://notify.example.com", err, sizeof err), 0);
    ck_assert_int_eq(list_unsubscribe_check_url("http://127.0.0.1:8080/herald", err, sizeof err),
                     0);
    ck_assert_int_eq(list_unsubscribe_check_url("ftp://notify.example.com", err, sizeof err), -1);
    ck_assert_int_eq(list_unsubscribe_check_url("https://", err, sizeof err), -1);
    ck_assert_int_eq(list_unsubscribe_check_url("https://a.example/?x=1", err, sizeof err), -1);
    ck_assert_int_eq(list_unsubscribe_check_url("https://a.example/a b", err, sizeof err), -1);
    ck_assert_int_eq(list_unsubscribe_check_url("https://a.example/>", err, sizeof err), -1);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_links_carry_a_token_for_the_user_category_and_channel),
    TEST_ENTRY(test_exempt_uncategorised_and_critical_emails_carry_none),
    TEST_ENTRY(test_half_a_configuration_names_the_missing_variable),
    TEST_ENTRY(test_url_check_takes_a_base_url_only),
};

TEST_MAIN("list_unsubscribe", cases)

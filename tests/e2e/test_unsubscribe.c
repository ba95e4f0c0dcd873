/*
 * End to end: one-click unsubscribe.  A marketing email reaches the SMTP
 * stand-in through the whole pipeline with a List-Unsubscribe link to the
 * gateway; the one-click POST of that link, as a mailbox provider sends
 * it, turns marketing email off for that user, so the next marketing
 * event sends no email while a billing event still does.
 */
#include "e2e_suite.h"

#include "unsubtoken.h"

#define UNSUB_SECRET "e2e-unsubscribe-secret-of-32-bytes"
#define USER         "unsub-ann"
#define ADDRESS      "unsub-ann@example.com"

static e2e_env env;
static bool up;
static char first_marketing[ID_UUID_SIZE];

/* The SMTP stand-in's record of the email whose subject names event id, or NULL. */
static json_t *email_of(const char *id)
{
    json_t *all = e2e_records(&env, E2E_SMTP), *found = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        const char *s = json_string_value(json_object_get(r, "subject"));
        if (s != NULL && strstr(s, id) != NULL)
            found = json_incref(r);
    }
    json_decref(all);
    return found;
}

static void publish(const char *type, const char *category, char *id)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"type\":\"%s\",\"user_id\":\"" USER "\",\"category\":\"%s\",\"data\":{}}", type,
             category);
    e2e_publish(&env, body, id);
}

/* The event's email delivery settled; returns its status and any skip reason (static). */
static const char *email_status(const char *id)
{
    static char status[96];
    json_t *doc = e2e_wait_event(&env, id, 1, E2E_PHASE_MS);
    ck_assert_msg(doc != NULL && e2e_event_settled(doc, 1), "event %s did not settle", id);
    json_t *d = e2e_delivery(doc, "email");
    ck_assert_ptr_nonnull(d);
    const char *why = json_string_value(json_object_get(d, "skip_reason"));
    snprintf(status, sizeof status, "%s%s%s%s", json_string_value(json_object_get(d, "status")),
             why ? " (" : "", why ? why : "", why ? ")" : "");
    json_decref(doc);
    return status;
}

START_TEST(test_stack_starts_with_unsubscribe_links)
{
    e2e_up(&env, "e2e_unsub");
    up = true;
    /* The gateway verifies the links, then the email worker mints them for
     * the gateway's own address: both restarted with the settings. */
    e2e_proc *g = &env.procs[E2E_GATEWAY];
    ck_assert_int_eq(e2e_stop(g, SIGTERM, 20000), 0);
    e2e_set_env(g, "HERALD_UNSUBSCRIBE_SECRET=" UNSUB_SECRET);
    e2e_restart(&env, E2E_GATEWAY);
    e2e_proc *w = &env.procs[E2E_EMAIL];
    ck_assert_int_eq(e2e_stop(w, SIGTERM, 20000), 0);
    e2e_set_env(w, "HERALD_UNSUBSCRIBE_SECRET=" UNSUB_SECRET);
    char url[128];
    snprintf(url, sizeof url, "HERALD_UNSUBSCRIBE_URL=%s", env.base);
    e2e_set_env(w, url);
    e2e_set_env(w, "HERALD_EMAIL_BOUNCE_ADDRESS=bounces@herald.test");
    e2e_restart(&env, E2E_EMAIL);
    e2e_put_user(&env, USER, ADDRESS, NULL, NULL);
    e2e_put_template(&env, "promo.sent", "email", "Offer {{event.id}}", "Our offers", NULL);
    e2e_put_template(&env, "invoice.ready", "email", "Invoice {{event.id}}", "Your invoice", NULL);
}
END_TEST

START_TEST(test_a_marketing_email_carries_a_link_to_the_gateway)
{
    ck_assert_msg(up, "the stack did not start");
    char value[2048], link[1024];
    publish("promo.sent", "marketing", first_marketing);
    ck_assert_str_eq(email_status(first_marketing), "sent");
    json_t *r = email_of(first_marketing);
    ck_assert_ptr_nonnull(r);
    const char *raw = json_string_value(json_object_get(r, "raw"));
    ck_assert_int_eq(testsupport_mail_header(raw, "List-Unsubscribe", value, sizeof value), 0);
    ck_assert_int_eq(testsupport_unsubscribe_link(value, link, sizeof link), 0);
    ck_assert_msg(strncmp(link, env.base, strlen(env.base)) == 0, "%s", link);
    ck_assert_int_eq(testsupport_mail_header(raw, "List-Unsubscribe-Post", value, sizeof value), 0);
    ck_assert_str_eq(value, "List-Unsubscribe=One-Click");
    const char *from = json_string_value(json_object_get(r, "from"));
    ck_assert_msg(from != NULL && strncmp(from, "bounces+", 8) == 0, "%s", from ? from : "");
    json_decref(r);
}
END_TEST

/* POSTs the one-click form to url as a mailbox provider does; returns the status. */
static long one_click(const char *url)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h =
        curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
    h = curl_slist_append(h, "Expect:");
    FILE *devnull = fopen("/dev/null", "w");
    long status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "List-Unsubscribe=One-Click");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (devnull != NULL)
        fclose(devnull);
    ck_assert_msg(rc == CURLE_OK, "POST %s: %s", url, curl_easy_strerror(rc));
    return status;
}

START_TEST(test_after_one_click_marketing_email_stops_and_billing_still_goes)
{
    ck_assert_msg(up, "the stack did not start");
    char value[2048], link[1024], promo[ID_UUID_SIZE], invoice[ID_UUID_SIZE];
    json_t *r = email_of(first_marketing);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(testsupport_mail_header(json_string_value(json_object_get(r, "raw")),
                                             "List-Unsubscribe", value, sizeof value),
                     0);
    json_decref(r);
    ck_assert_int_eq(testsupport_unsubscribe_link(value, link, sizeof link), 0);
    /* The dispatcher learns of the change by notification: wait for it
     * rather than for a time. */
    double before = e2e_metric(&env, E2E_DISPATCHER, "herald_dispatcher_cache_invalidations_total");
    ck_assert_int_eq(one_click(link), 200);
    int64_t deadline = timeutil_monotonic_ms() + 30000;
    double now = before;
    for (int i = 0; i < 300 && now <= before && timeutil_monotonic_ms() < deadline; i++) {
        testsupport_sleep_ms(100);
        now = e2e_metric(&env, E2E_DISPATCHER, "herald_dispatcher_cache_invalidations_total");
    }
    ck_assert_msg(now > before, "the dispatcher was not told of the change");

    publish("promo.sent", "marketing", promo);
    publish("invoice.ready", "billing", invoice);
    ck_assert_str_eq(email_status(invoice), "sent");
    ck_assert_str_eq(email_status(promo), "skipped (category_opted_out)");
    json_t *got = email_of(invoice);
    ck_assert_ptr_nonnull(got);
    /* billing is not exempt either: its email offers its own link */
    ck_assert_int_eq(testsupport_mail_header(json_string_value(json_object_get(got, "raw")),
                                             "List-Unsubscribe", value, sizeof value),
                     0);
    json_decref(got);
    ck_assert_ptr_null(email_of(promo));
}
END_TEST

START_TEST(test_every_daemon_exits_0_on_sigterm)
{
    e2e_expect_clean_stop(&env, up);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_stack_starts_with_unsubscribe_links),
    TEST_ENTRY(test_a_marketing_email_carries_a_link_to_the_gateway),
    TEST_ENTRY(test_after_one_click_marketing_email_stops_and_billing_still_goes),
    TEST_ENTRY(test_every_daemon_exits_0_on_sigterm),
};

E2E_MAIN("e2e_unsubscribe", cases, env)

/*
 * herald-worker --channel email over TLS, against the test SMTP server with
 * certificates made for the test: STARTTLS with AUTH, smtps, a relay whose
 * certificate the worker must refuse (transient, retried, then the DLQ, and
 * nothing sent in clear text), HERALD_SMTP_REQUIRE_TLS against a relay
 * without STARTTLS, and HERALD_SMTP_CA_FILE checked at startup.
 */
#include "worker_harness.h"

#include "providers/test_certs.h"

typedef struct tls_fixture {
    wh_env e;
    test_certs certs;
    char ca_env[300];
} tls_fixture;

static void tls_setup(tls_fixture *f)
{
    char dir[200], err[512];
    wh_setup(&f->e, "email");
    /* Inside the scratch directory, so wh_teardown() removes it too. */
    snprintf(dir, sizeof dir, "%s/certs", f->e.dir);
    ck_assert_msg(test_certs_make(dir, &f->certs, err, sizeof err) == 0, "certificates: %s", err);
    snprintf(f->ca_env, sizeof f->ca_env, "HERALD_SMTP_CA_FILE=%s", f->certs.ca);
}

/* The only record of the SMTP server, which must have come over TLS. */
static json_t *only_tls_record(const wh_proc *smtp, const char *mode)
{
    json_t *recs = wh_records(smtp);
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *r = json_incref(json_array_get(recs, 0));
    json_decref(recs);
    ck_assert_msg(json_is_true(json_object_get(r, "tls")), "message not sent over TLS");
    ck_assert_str_eq(json_string_value(json_object_get(r, "tls_mode")), mode);
    const char *version = json_string_value(json_object_get(r, "tls_version"));
    ck_assert_msg(version != NULL && strncmp(version, "TLSv1.", 6) == 0, "tls_version %s",
                  version ? version : "(null)");
    return r;
}

/* Waits (bounded) for the one delivery to reach status; shows the worker's log if it does not. */
static void expect_one_delivery(tls_fixture *f, wh_proc *w, const char *status)
{
    long n =
        wh_wait_count(&f->e, 1, 30000, "SELECT count(*) FROM deliveries WHERE status='%s'", status);
    if (n != 1)
        wh_dump_log(w);
    ck_assert_msg(n == 1, "%ld deliveries %s, expected 1", n, status);
}

START_TEST(test_email_over_starttls_with_auth_arrives_encrypted)
{
    tls_fixture f;
    wh_proc smtp = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128];
    tls_setup(&f);
    /* --require-tls: anything tried in clear text would be refused (530). */
    const char *sargs[] = {"--starttls", "--require-tls", "--cert", f.certs.cert, "--key",
                           f.certs.key,  "--user",        "herald", "--password", "pw",
                           NULL};
    wh_start_smtp(&f.e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp",
                         url,
                         f.ca_env,
                         "HERALD_SMTP_USERNAME=herald",
                         "HERALD_SMTP_PASSWORD=pw",
                         "HERALD_EMAIL_FROM=Herald <noreply@example.com>",
                         NULL};
    wh_start_worker(&f.e, &w, "worker", env);
    wh_produce_delivery(&f.e, "u-1", "ann@example.com", "Shipped", "Your order is on its way", k);
    wh_flush(&f.e);
    expect_one_delivery(&f, &w, "sent");
    json_t *r = only_tls_record(&smtp, "starttls");
    ck_assert_str_eq(json_string_value(json_object_get(r, "auth_user")), "herald");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "rcpt"), 0)),
                     "ann@example.com");
    const char *mid = json_string_value(json_object_get(r, "message_id"));
    ck_assert_msg(mid && strstr(mid, k), "message_id %s", mid ? mid : "(null)");
    json_decref(r);
    ck_assert_int_eq(wh_stat(&smtp, "rejected"), 0);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_email_over_smtps_arrives_encrypted)
{
    tls_fixture f;
    wh_proc smtp = {0}, w = {0};
    char k[ID_UUID_SIZE], url[128];
    tls_setup(&f);
    const char *sargs[] = {"--tls", "--cert", f.certs.cert, "--key", f.certs.key, NULL};
    wh_start_smtp(&f.e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtps://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp", url, f.ca_env,
                         "HERALD_EMAIL_FROM=noreply@example.com", NULL};
    wh_start_worker(&f.e, &w, "worker", env);
    wh_produce_delivery(&f.e, "u-1", "bob@example.com", "Hello", "Body", k);
    wh_flush(&f.e);
    expect_one_delivery(&f, &w, "sent");
    json_t *r = only_tls_record(&smtp, "implicit");
    ck_assert_str_eq(json_string_value(json_object_get(r, "from")), "noreply@example.com");
    json_decref(r);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&f.e);
}
END_TEST

/* The one DLQ record, checked for reason and error text. */
static void check_single_dlq(tls_fixture *f, const char *reason, const char *error_part)
{
    json_t *dlq = json_array();
    int n = wh_read_topic(&f->e, f->e.topics[2], 1, 30000, wh_collect_record, dlq);
    ck_assert_int_eq(n, 1);
    json_t *h = json_object_get(json_array_get(dlq, 0), "headers");
    ck_assert_str_eq(json_string_value(json_object_get(h, "herald.dlq.reason")), reason);
    const char *error = json_string_value(json_object_get(h, "herald.dlq.error"));
    ck_assert_msg(error && strstr(error, error_part), "herald.dlq.error %s",
                  error ? error : "(null)");
    json_decref(dlq);
}

START_TEST(test_email_to_relay_with_untrusted_certificate_is_retried_then_dead_lettered)
{
    tls_fixture f;
    wh_proc smtp = {0}, w = {0};
    char url[128];
    tls_setup(&f);
    /* Signed by a CA the worker was not told to trust. */
    const char *sargs[] = {"--starttls", "--require-tls",   "--cert", f.certs.rogue_cert,
                           "--key",      f.certs.rogue_key, NULL};
    wh_start_smtp(&f.e, &smtp, sargs);
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp",
                         url,
                         f.ca_env,
                         "HERALD_EMAIL_FROM=noreply@example.com",
                         "HERALD_EMAIL_MAX_ATTEMPTS=2",
                         "HERALD_RETRY_BASE_MS=100",
                         NULL};
    wh_start_worker(&f.e, &w, "worker", env);
    wh_produce_delivery(&f.e, "u-1", "ann@example.com", "Hello", "Body", NULL);
    wh_flush(&f.e);
    expect_one_delivery(&f, &w, "failed");
    /* Transient: tried again, then out of attempts. */
    char *row = wh_db_text(&f.e, "SELECT attempts || ' ' || last_error FROM deliveries");
    ck_assert_msg(strncmp(row, "2 ", 2) == 0 && strstr(row, "HERALD_SMTP_CA_FILE") != NULL, "%s",
                  row);
    free(row);
    check_single_dlq(&f, "max_attempts", "certificate");
    /* Both attempts ended in the handshake: no MAIL, no message, in clear or not. */
    ck_assert_int_ge(wh_stat(&smtp, "tls_failures"), 2);
    ck_assert_int_eq(wh_stat(&smtp, "tls_handshakes"), 0);
    ck_assert_int_eq(wh_stat(&smtp, "received"), 0);
    ck_assert_int_eq(wh_stat(&smtp, "records"), 0);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&f.e);
}
END_TEST

START_TEST(test_email_require_tls_never_sends_to_relay_without_starttls)
{
    tls_fixture f;
    wh_proc smtp = {0}, w = {0};
    char url[128];
    tls_setup(&f);
    wh_start_smtp(&f.e, &smtp, NULL); /* plain SMTP, STARTTLS not offered */
    snprintf(url, sizeof url, "HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp.port);
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp",   url,
                         "HERALD_SMTP_REQUIRE_TLS=true", "HERALD_EMAIL_FROM=noreply@example.com",
                         "HERALD_EMAIL_MAX_ATTEMPTS=1",  NULL};
    wh_start_worker(&f.e, &w, "worker", env);
    wh_produce_delivery(&f.e, "u-1", "ann@example.com", "Hello", "Body", NULL);
    wh_flush(&f.e);
    expect_one_delivery(&f, &w, "failed");
    check_single_dlq(&f, "max_attempts", "HERALD_SMTP_REQUIRE_TLS");
    ck_assert_int_eq(wh_stat(&smtp, "received"), 0);
    ck_assert_int_eq(wh_stat(&smtp, "records"), 0);
    ck_assert_int_eq(WEXITSTATUS(wh_stop(&w, SIGTERM, 15000)), 0);
    wh_teardown(&f.e);
}
END_TEST

/* Starts the worker with one more variable and returns its exit status and log. */
static int worker_exit_with(tls_fixture *f, wh_proc *w, const char *name, const char *var,
                            char **log)
{
    const char *env[] = {"HERALD_EMAIL_PROVIDER=smtp", "HERALD_SMTP_URL=smtp://127.0.0.1:1",
                         "HERALD_EMAIL_FROM=noreply@example.com", var, NULL};
    wh_start_worker(&f->e, w, name, env);
    int status = -1;
    for (int i = 0; i < 200; i++) {
        if (waitpid(w->pid, &status, WNOHANG) == w->pid) {
            w->exited = true;
            w->status = status;
            break;
        }
        testsupport_sleep_ms(50);
    }
    ck_assert_msg(w->exited, "the worker did not stop at startup");
    *log = testsupport_read_file(w->log, NULL);
    ck_assert_ptr_nonnull(*log);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(test_worker_checks_smtp_ca_file_at_startup)
{
    tls_fixture f;
    wh_proc missing = {0}, not_pem = {0};
    char *log = NULL, var[320];
    tls_setup(&f);
    ck_assert_int_eq(
        worker_exit_with(&f, &missing, "missing", "HERALD_SMTP_CA_FILE=/nonexistent/ca.pem", &log),
        2);
    ck_assert_msg(strstr(log, "HERALD_SMTP_CA_FILE") && strstr(log, "No such file"), "%s", log);
    free(log);
    /* A key is PEM, but not a certificate. */
    snprintf(var, sizeof var, "HERALD_SMTP_CA_FILE=%s", f.certs.key);
    ck_assert_int_eq(worker_exit_with(&f, &not_pem, "not-pem", var, &log), 2);
    ck_assert_msg(strstr(log, "HERALD_SMTP_CA_FILE") && strstr(log, "BEGIN CERTIFICATE"), "%s",
                  log);
    free(log);
    wh_teardown(&f.e);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_email_over_starttls_with_auth_arrives_encrypted),
    TEST_ENTRY(test_email_over_smtps_arrives_encrypted),
    TEST_ENTRY(test_email_to_relay_with_untrusted_certificate_is_retried_then_dead_lettered),
    TEST_ENTRY(test_email_require_tls_never_sends_to_relay_without_starttls),
    TEST_ENTRY(test_worker_checks_smtp_ca_file_at_startup),
};

TEST_MAIN_TIMEOUT("worker_smtp_tls", cases, 120)

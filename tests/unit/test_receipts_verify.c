/* Unit tests of producer/receipts_verify: the providers' signatures. */
#include "testutil.h"

#include "receipts_verify.h"
#include "snssigner.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Twilio's own example (twilio.com/docs/usage/security). */
START_TEST(test_twilio_signature_matches_twilios_example)
{
    static const char body[] = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234"
                               "&From=%2B12349013030&To=%2B18005551212";
    static const char url[] = "https://mycompany.com/myapp.php?foo=1&bar=2";
    receipts_form f;
    char sig[RECEIPTS_TWILIO_SIG_SIZE];
    ck_assert_int_eq(receipts_form_parse(body, strlen(body), &f, NULL, 0), 0);
    ck_assert_int_eq(receipts_twilio_sign("12345", url, &f, sig, sizeof sig), 0);
    ck_assert_str_eq(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    ck_assert(receipts_twilio_verify("12345", url, &f, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    ck_assert(!receipts_twilio_verify("12346", url, &f, "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    ck_assert(!receipts_twilio_verify("12345", "https://mycompany.com/myapp.php", &f,
                                      "0/KCTR6DLpKmkAf8muzZqo1nDgQ="));
    ck_assert(!receipts_twilio_verify("12345", url, &f, NULL));
    ck_assert(!receipts_twilio_verify("12345", url, &f, "short"));
    receipts_form_free(&f);
}

static char cert_a[64], cert_b[64];

static snssigner *signer(char *path)
{
    snprintf(path, 64, "/tmp/herald-sns-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snssigner *s = snssigner_new(path);
    ck_assert_ptr_nonnull(s);
    return s;
}

static bool verifies(const receipts_sns_keys *k, const char *body)
{
    receipts_sns m;
    char err[160];
    ck_assert_msg(receipts_sns_parse(body, strlen(body), &m, err, sizeof err) == 0, "%s", err);
    bool ok = receipts_sns_verify(k, &m);
    receipts_sns_free(&m);
    return ok;
}

START_TEST(test_sns_signatures_v1_and_v2_verify_only_with_their_certificate)
{
    char err[256];
    snssigner *a = signer(cert_a), *b = signer(cert_b);
    receipts_sns_keys *ka = receipts_sns_keys_load(cert_a, err, sizeof err);
    ck_assert_msg(ka != NULL, "%s", err);
    for (int v = 1; v <= 2; v++) {
        char *n = snssigner_message(a, v, "Notification", "m1", "arn:aws:sns:x:1:t", "Subj",
                                    "{\"x\":1}", NULL);
        char *nb = snssigner_message(b, v, "Notification", "m1", "arn:aws:sns:x:1:t", NULL,
                                     "{\"x\":1}", NULL);
        char *s = snssigner_message(a, v, "SubscriptionConfirmation", "m2", "arn:aws:sns:x:1:t",
                                    NULL, "confirm", "https://sns.example/?Action=Confirm");
        ck_assert(verifies(ka, n));
        ck_assert(verifies(ka, s));
        ck_assert(!verifies(ka, nb));
        /* a changed Message breaks it */
        char *p = strstr(n, "{\\\"x\\\":1}");
        ck_assert_ptr_nonnull(p);
        p[7] = '2';
        ck_assert(!verifies(ka, n));
        free(n);
        free(nb);
        free(s);
    }
    receipts_sns_keys_free(ka);
    snssigner_free(a);
    snssigner_free(b);
    unlink(cert_a);
    unlink(cert_b);
}

START_TEST(test_sns_cert_file_check_names_the_problem)
{
    char err[256];
    ck_assert_int_eq(receipts_sns_check_cert_file("/nonexistent/cert.pem", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "PEM"));
    ck_assert_ptr_null(receipts_sns_keys_load("/dev/null", err, sizeof err));
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_twilio_signature_matches_twilios_example),
    TEST_ENTRY(test_sns_signatures_v1_and_v2_verify_only_with_their_certificate),
    TEST_ENTRY(test_sns_cert_file_check_names_the_problem),
};

TEST_MAIN("receipts_verify", cases)

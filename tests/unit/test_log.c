/* Unit tests of common/log: line formats, escaping, truncation, atomic lines, redaction. */
#include "testutil.h"

#include "log.h"
#include "validate.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

/* Everything written to stderr while the capture is on, NUL-terminated. */
static FILE *capture_file;
static int saved_stderr = -1;

static void capture_start(void)
{
    capture_file = tmpfile();
    ck_assert_ptr_nonnull(capture_file);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(dup2(fileno(capture_file), STDERR_FILENO), 0);
}

static char *capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    fseek(capture_file, 0, SEEK_END);
    long n = ftell(capture_file);
    rewind(capture_file);
    char *buf = calloc(1, (size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, capture_file), n);
    fclose(capture_file);
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* "2026-11-27T22:10:55.123Z" at the start of s. */
static void assert_timestamp(const char *s)
{
    ck_assert_int_ge(strlen(s), 24);
    for (int i = 0; i < 24; i++) {
        const char *expect = "dddd-dd-ddTdd:dd:dd.dddZ";
        if (expect[i] == 'd')
            ck_assert_msg(s[i] >= '0' && s[i] <= '9', "bad timestamp: %.24s", s);
        else
            ck_assert_int_eq(s[i], expect[i]);
    }
}

START_TEST(test_text_line_has_time_level_program_ctx_and_message)
{
    log_init("herald-gateway", LOG_LEVEL_DEBUG, LOG_FORMAT_TEXT);
    capture_start();
    LOG_INFO("events/3@42", "published %d events", 7);
    char *out = capture_end();
    assert_timestamp(out);
    ck_assert_str_eq(out + 24, " INFO  herald-gateway [events/3@42] published 7 events\n");
    free(out);
}

START_TEST(test_text_line_without_ctx_has_no_brackets)
{
    log_init("herald-worker", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    capture_start();
    LOG_ERROR(NULL, "broker down");
    LOG_DEBUG(NULL, "x");
    char *out = capture_end();
    ck_assert_str_eq(out + 24, " ERROR herald-worker broker down\n");
    free(out);
}

START_TEST(test_text_escapes_line_breaks_so_input_cannot_forge_lines)
{
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    capture_start();
    LOG_WARN("c", "user %s", "bob\n2026-01-01T00:00:00.000Z ERROR p forged\x01");
    char *out = capture_end();
    ck_assert_int_eq(count_lines(out), 1);
    ck_assert_ptr_nonnull(strstr(out, "bob\\n2026"));
    ck_assert_ptr_nonnull(strstr(out, "forged\\x01\n"));
    free(out);
}

START_TEST(test_json_line_has_all_fields_and_roundtrips_the_message)
{
    const char *msg = "quote \" backslash \\ newline \n tab \t bell \x07 caf\xc3\xa9";
    log_init("herald-dispatcher", LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    capture_start();
    LOG_WARN("events/0@17", "%s", msg);
    char *out = capture_end();
    ck_assert_int_eq(count_lines(out), 1);
    json_error_t jerr;
    json_t *j = json_loads(out, 0, &jerr);
    ck_assert_msg(j != NULL, "not JSON: %s: %s", jerr.text, out);
    ck_assert_str_eq(json_string_value(json_object_get(j, "level")), "warn");
    ck_assert_str_eq(json_string_value(json_object_get(j, "program")), "herald-dispatcher");
    ck_assert_str_eq(json_string_value(json_object_get(j, "ctx")), "events/0@17");
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")), msg);
    assert_timestamp(json_string_value(json_object_get(j, "ts")));
    json_decref(j);
    free(out);
}

START_TEST(test_json_line_omits_absent_ctx)
{
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    capture_start();
    LOG_INFO(NULL, "hello");
    char *out = capture_end();
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_null(json_object_get(j, "ctx"));
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")), "hello");
    json_decref(j);
    free(out);
}

START_TEST(test_json_replaces_invalid_utf8_so_the_line_stays_valid)
{
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    capture_start();
    LOG_INFO("\xff", "bad \xc3\x28 bytes \xed\xa0\x80");
    char *out = capture_end();
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    ck_assert_str_eq(json_string_value(json_object_get(j, "msg")),
                     "bad \xef\xbf\xbd( bytes \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
    free(out);
}

START_TEST(test_long_message_is_truncated_with_ellipsis)
{
    char *big = malloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    capture_start();
    LOG_INFO(NULL, "%s", big);
    char *out = capture_end();
    size_t n = strlen(out);
    ck_assert_int_le(n, 4096);
    ck_assert_int_gt(n, 4000);
    ck_assert_str_eq(out + n - 5, "x\xe2\x80\xa6\n");
    free(out);
    free(big);
}

START_TEST(test_truncation_keeps_json_valid_and_characters_whole)
{
    /* 3000 two-byte characters with quotes that expand when escaped. */
    char *big = malloc(12001);
    size_t o = 0;
    for (int i = 0; i < 3000; i++) {
        big[o++] = '"';
        big[o++] = '\xc3';
        big[o++] = '\xa9';
    }
    big[o] = '\0';
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_JSON);
    capture_start();
    LOG_INFO("ctx", "%s", big);
    char *out = capture_end();
    ck_assert_int_le(strlen(out), 4096);
    ck_assert(validate_utf8(out, strlen(out)));
    json_t *j = json_loads(out, 0, NULL);
    ck_assert_msg(j != NULL, "not JSON: %s", out);
    const char *msg = json_string_value(json_object_get(j, "msg"));
    ck_assert_str_eq(msg + strlen(msg) - 3, "\xe2\x80\xa6");
    json_decref(j);
    free(out);
    free(big);
}

static int evaluations;

static int side_effect(void)
{
    return ++evaluations;
}

START_TEST(test_disabled_level_skips_argument_evaluation)
{
    log_init("p", LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    capture_start();
    LOG_DEBUG(NULL, "%d", side_effect());
    LOG_INFO(NULL, "%d", side_effect());
    LOG_WARN(NULL, "%d", side_effect());
    char *out = capture_end();
    ck_assert_int_eq(evaluations, 1);
    ck_assert_int_eq(count_lines(out), 1);
    free(out);
}

START_TEST(test_log_write_preserves_errno)
{
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    capture_start();
    errno = ECONNREFUSED;
    LOG_ERROR(NULL, "connect failed");
    int e = errno;
    char *out = capture_end();
    ck_assert_int_eq(e, ECONNREFUSED);
    free(out);
}

START_TEST(test_level_and_format_names_parse)
{
    log_level l;
    log_format f;
    ck_assert_int_eq(log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(log_level_parse("ERROR", &l), 0);
    ck_assert_int_eq(l, LOG_LEVEL_ERROR);
    ck_assert_int_eq(log_level_parse("loud", &l), -1);
    ck_assert_int_eq(log_format_parse("json", &f), 0);
    ck_assert_int_eq(f, LOG_FORMAT_JSON);
    ck_assert_int_eq(log_format_parse("xml", &f), -1);
}

/* ---- concurrent writers ---- */

#define WRITERS 8
#define LINES   200

static void *writer(void *arg)
{
    char msg[3000];
    memset(msg, 'a' + (int)(intptr_t)arg, sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        LOG_INFO("w", "%s", msg);
    return NULL;
}

typedef struct sink {
    int fd;
    char *buf;
    size_t len, cap;
} sink;

static void *reader(void *arg)
{
    sink *s = arg;
    for (;;) {
        if (s->cap - s->len < 65536) {
            s->cap *= 2;
            s->buf = realloc(s->buf, s->cap);
        }
        ssize_t r = read(s->fd, s->buf + s->len, s->cap - s->len - 1);
        if (r <= 0)
            break;
        s->len += (size_t)r;
    }
    s->buf[s->len] = '\0';
    return NULL;
}

START_TEST(test_concurrent_lines_never_interleave_on_a_pipe)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    sink s = {fds[0], malloc(1 << 20), 0, 1 << 20};
    pthread_t rt, wt[WRITERS];
    pthread_create(&rt, NULL, reader, &s);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    log_init("p", LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
    for (intptr_t i = 0; i < WRITERS; i++)
        pthread_create(&wt[i], NULL, writer, (void *)i);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(wt[i], NULL);
    dup2(saved, STDERR_FILENO); /* closes the last write end: the reader sees EOF */
    close(saved);
    pthread_join(rt, NULL);

    ck_assert_int_eq(count_lines(s.buf), WRITERS * LINES);
    for (char *line = s.buf; *line; line = strchr(line, '\n') + 1) {
        assert_timestamp(line);
        const char *msg = line + strlen("2026-11-27T22:10:55.123Z INFO  p [w] ");
        char c = msg[0];
        ck_assert_int_eq(strspn(msg, (char[]){c, '\0'}), 2999);
        ck_assert_int_eq(msg[2999], '\n');
    }
    free(s.buf);
    close(fds[0]);
}

/* ---- redaction ---- */

static void redacts(const char *in, const char *expect)
{
    char out[512];
    ck_assert_str_eq(log_redact_url(in, out, sizeof out), expect);
}

START_TEST(test_redact_hides_url_passwords)
{
    redacts("postgresql://herald:s3cret@db:5432/herald", "postgresql://herald:***@db:5432/herald");
    redacts("smtps://user:pw@mail.example.com:465", "smtps://user:***@mail.example.com:465");
    redacts("postgresql://herald:p@ss/w#rd@db/herald", "postgresql://herald:***@db/herald");
}

START_TEST(test_redact_keeps_urls_without_passwords)
{
    redacts("postgresql://127.0.0.1:55432/herald", "postgresql://127.0.0.1:55432/herald");
    redacts("postgresql://herald@db/herald", "postgresql://herald@db/herald");
    redacts("http://example.com/a?b=1#frag", "http://example.com/a?b=1#frag");
}

START_TEST(test_redact_hides_secret_query_parameters)
{
    redacts("postgresql://db/herald?user=h&password=s3cret&sslmode=require",
            "postgresql://db/herald?user=h&password=***&sslmode=require");
    redacts("https://api.example.com/send?auth_token=abc#x",
            "https://api.example.com/send?auth_token=***#x");
}

START_TEST(test_redact_hides_libpq_keyword_passwords)
{
    redacts("host=db user=herald password=s3cret dbname=herald",
            "host=db user=herald password=*** dbname=herald");
    redacts("host=db password = 'it\\'s a secret' dbname=x", "host=db password = *** dbname=x");
    redacts("password='a b\\' c' sslpassword=k port=5432",
            "password=*** sslpassword=*** port=5432");
    redacts("dbname=herald", "dbname=herald");
}

START_TEST(test_redact_truncates_safely)
{
    char out[16];
    log_redact_url("postgresql://u:secretsecret@host/db", out, sizeof out);
    ck_assert_int_eq(strlen(out), 15);
    ck_assert_ptr_null(strstr(out, "secret"));
    log_redact_url(NULL, out, sizeof out);
    ck_assert_str_eq(out, "");
    char one[1] = {'x'};
    log_redact_url("abc", one, sizeof one);
    ck_assert_int_eq(one[0], '\0');
}

static const test_case_entry cases[] = {
    TEST_ENTRY(test_text_line_has_time_level_program_ctx_and_message),
    TEST_ENTRY(test_text_line_without_ctx_has_no_brackets),
    TEST_ENTRY(test_text_escapes_line_breaks_so_input_cannot_forge_lines),
    TEST_ENTRY(test_json_line_has_all_fields_and_roundtrips_the_message),
    TEST_ENTRY(test_json_line_omits_absent_ctx),
    TEST_ENTRY(test_json_replaces_invalid_utf8_so_the_line_stays_valid),
    TEST_ENTRY(test_long_message_is_truncated_with_ellipsis),
    TEST_ENTRY(test_truncation_keeps_json_valid_and_characters_whole),
    TEST_ENTRY(test_disabled_level_skips_argument_evaluation),
    TEST_ENTRY(test_log_write_preserves_errno),
    TEST_ENTRY(test_level_and_format_names_parse),
    TEST_ENTRY(test_concurrent_lines_never_interleave_on_a_pipe),
    TEST_ENTRY(test_redact_hides_url_passwords),
    TEST_ENTRY(test_redact_keeps_urls_without_passwords),
    TEST_ENTRY(test_redact_hides_secret_query_parameters),
    TEST_ENTRY(test_redact_hides_libpq_keyword_passwords),
    TEST_ENTRY(test_redact_truncates_safely),
};

TEST_MAIN("log", cases)

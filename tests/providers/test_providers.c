/*
 * The test providers seen from outside: each case starts a server as a
 * subprocess on an ephemeral port, talks to it with libcurl (HTTP and SMTP)
 * or a raw socket, and asserts what a client sees and what the provider
 * recorded.  Every server is stopped with SIGTERM and must exit 0, which in
 * the sanitizer build also means it leaked nothing.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "ptime.h"
#include "test_certs.h"
#include "testsupport.h"
#include "testutil.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000

typedef struct server_proc {
    pid_t pid;
    int port;
    int control_port; /* the SMTP server's control API; the HTTP port otherwise */
    char record[128]; /* its --record file */
} server_proc;

typedef struct http_result {
    CURLcode rc;
    long status;
    char body[65536];
    size_t body_len;
    char retry_after[32];
    char www_authenticate[128];
    double seconds;
} http_result;

static void program_path(char *out, size_t outlen, const char *name, const char *built)
{
    const char *dir = getenv("HERALD_BIN_DIR");
    if (dir != NULL && *dir != '\0')
        snprintf(out, outlen, "%s/%s", dir, name);
    else
        snprintf(out, outlen, "%s", built);
    if (access(out, X_OK) != 0)
        snprintf(out, outlen, "%s", built);
}

/*
 * Starts a server with args (NULL-terminated, after the program name) plus
 * --record, and reads its "listening on ..." line for the ports.
 */
static void start_server(server_proc *sp, bool smtp, const char *const *args)
{
    char path[512];
    const char *argv[48];
    size_t n = 0;

    memset(sp, 0, sizeof(*sp));
    if (smtp)
        program_path(path, sizeof(path), "herald-test-smtp-server", SMTP_SERVER_PATH);
    else
        program_path(path, sizeof(path), "herald-test-http-provider", HTTP_PROVIDER_PATH);
    snprintf(sp->record, sizeof(sp->record), "/tmp/herald-providers-test-%ld-%ld.jsonl",
             (long)getpid(), (long)ptime_monotonic_ms());
    unlink(sp->record);

    argv[n++] = path;
    argv[n++] = "--record";
    argv[n++] = sp->record;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 46; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    int out = -1;
    sp->pid = testsupport_spawn_logged(path, (char *const *)argv, NULL, NULL, &out, true);
    ck_assert_int_gt(sp->pid, 0);
    char line[256];
    int rc = testsupport_read_listen_line(out, START_TIMEOUT_MS, &sp->port, &sp->control_port, line,
                                          sizeof(line));
    close(out);
    ck_assert_msg(rc == 0 && (!smtp || strstr(line, " control ") != NULL),
                  "%s did not report its port: \"%s\"", path, line);
}

/* SIGTERM, then the exit status, which must be 0. */
static int stop_server(server_proc *sp)
{
    kill(sp->pid, SIGTERM);
    return testsupport_wait(sp->pid, STOP_TIMEOUT_MS);
}

static void finish_server(server_proc *sp)
{
    int code = stop_server(sp);
    unlink(sp->record);
    ck_assert_msg(code == 0, "server exited with %d", code);
}

/* ---- HTTP client ---- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    http_result *r = arg;
    size_t n = size * nmemb;
    size_t room = sizeof(r->body) - 1 - r->body_len;
    size_t take = n < room ? n : room;
    memcpy(r->body + r->body_len, data, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
    http_result *r = arg;
    size_t n = size * nmemb;
    char line[256];
    size_t l = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
    memcpy(line, data, l);
    line[l] = '\0';
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "Retry-After: ", 13) == 0)
        snprintf(r->retry_after, sizeof(r->retry_after), "%.*s", (int)sizeof(r->retry_after) - 1,
                 line + 13);
    if (strncasecmp(line, "WWW-Authenticate: ", 18) == 0)
        snprintf(r->www_authenticate, sizeof(r->www_authenticate), "%.*s",
                 (int)sizeof(r->www_authenticate) - 1, line + 18);
    return n;
}

/*
 * One request.  headers: NULL-terminated "Name: value" list (may be NULL);
 * userpwd: basic auth "user:pass" (may be NULL).
 */
static void http_do(http_result *r, const char *method, int port, const char *path,
                    const char *body, const char *const *headers, const char *userpwd,
                    long timeout_ms)
{
    char url[512];
    struct curl_slist *hl = NULL;
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    /* Without an explicit type libcurl would say form-urlencoded. */
    hl = curl_slist_append(hl, "Content-Type:");
    hl = curl_slist_append(hl, "Expect:");
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (userpwd != NULL) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long t0 = ptime_monotonic_ms();
    r->rc = curl_easy_perform(h);
    r->seconds = (double)(ptime_monotonic_ms() - t0) / 1000.0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
}

static const char *const json_headers_k1[] = {"Content-Type: application/json",
                                              "Idempotency-Key: k1", NULL};

static const char sms_body_k1[] = "{\"to\":\"+15550001111\",\"body\":\"Your code is 123456\","
                                  "\"idempotency_key\":\"k1\",\"event_id\":\"e1\","
                                  "\"user_id\":\"u1\"}";

static void post_control(int port, const char *json)
{
    http_result r;
    http_do(&r, "POST", port, "/_control", json, NULL, NULL, 5000);
    ck_assert_int_eq(r.rc, CURLE_OK);
    ck_assert_msg(r.status == 200, "POST /_control %s: %ld %s", json, r.status, r.body);
}

/* GET a JSON document from the control API (caller decrefs). */
static json_t *get_json(int port, const char *path)
{
    http_result r;
    json_error_t jerr;
    http_do(&r, "GET", port, path, NULL, NULL, NULL, 5000);
    ck_assert_int_eq(r.rc, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, &jerr);
    ck_assert_msg(j != NULL, "GET %s: bad JSON: %s", path, r.body);
    return j;
}

static long stat_of(int port, const char *name)
{
    json_t *s = get_json(port, "/_stats");
    json_t *v = json_object_get(s, name);
    ck_assert_msg(json_is_integer(v), "no counter %s", name);
    long n = (long)json_integer_value(v);
    json_decref(s);
    return n;
}

/* Waits up to 5 s for a counter to reach want; returns its last value. */
static long wait_stat(int port, const char *name, long want)
{
    long v = stat_of(port, name);
    for (long deadline = ptime_monotonic_ms() + 5000;
         v < want && ptime_monotonic_ms() < deadline;) {
        ptime_sleep_ms(20);
        v = stat_of(port, name);
    }
    return v;
}

static const char *str_of(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "(missing)";
}

/* The record file as a JSON array, waiting up to 2 s for want lines. */
static json_t *read_record_file(const char *path, size_t want)
{
    json_t *arr = NULL;
    long deadline = ptime_monotonic_ms() + 2000;
    do {
        json_decref(arr);
        arr = json_array();
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            char line[65536];
            while (fgets(line, sizeof(line), f) != NULL) {
                json_t *rec = json_loads(line, 0, NULL);
                ck_assert_msg(rec != NULL, "record line is not JSON: %s", line);
                json_array_append_new(arr, rec);
            }
            fclose(f);
        }
        if (json_array_size(arr) >= want)
            break;
        ptime_sleep_ms(20);
    } while (ptime_monotonic_ms() < deadline);
    return arr;
}

/* ---- HTTP provider: generic SMS and push ---- */

START_TEST(test_sms_json_is_accepted_and_recorded)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);

    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.rc, CURLE_OK);
    ck_assert_msg(r.status >= 200 && r.status < 300, "status %ld: %s", r.status, r.body);

    json_t *recs = get_json(sp.port, "/_records?since=0");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(rec, "protocol"), "sms");
    ck_assert_str_eq(str_of(rec, "to"), "+15550001111");
    ck_assert_str_eq(str_of(rec, "body"), "Your code is 123456");
    ck_assert_str_eq(str_of(rec, "idempotency_key"), "k1");
    ck_assert_str_eq(str_of(rec, "body_idempotency_key"), "k1");
    ck_assert_str_eq(str_of(rec, "event_id"), "e1");
    ck_assert_int_eq(json_integer_value(json_object_get(rec, "status")), r.status);
    ck_assert(json_is_false(json_object_get(rec, "duplicate")));
    ck_assert(json_integer_value(json_object_get(rec, "received_at_ms")) > 1600000000000LL);
    json_decref(recs);

    /* The file is flushed within 100 ms, without waiting for shutdown. */
    json_t *lines = read_record_file(sp.record, 1);
    ck_assert_int_eq(json_array_size(lines), 1);
    ck_assert_str_eq(str_of(json_array_get(lines, 0), "to"), "+15550001111");
    json_decref(lines);

    ck_assert_int_eq(stat_of(sp.port, "accepted"), 1);
    finish_server(&sp);
}
END_TEST

START_TEST(test_sms_without_idempotency_key_header_is_rejected_400)
{
    static const char *const no_key[] = {"Content-Type: application/json", NULL};
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);

    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, no_key, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "missing_idempotency_key"));

    /* A missing field and a wrong Content-Type are malformed too. */
    http_do(&r, "POST", sp.port, "/sms", "{\"to\":\"+1555\",\"idempotency_key\":\"k1\"}",
            json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    static const char *const text_type[] = {"Content-Type: text/plain", "Idempotency-Key: k1",
                                            NULL};
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, text_type, NULL, 5000);
    ck_assert_int_eq(r.status, 400);

    ck_assert_int_eq(stat_of(sp.port, "rejected"), 3);
    ck_assert_int_eq(stat_of(sp.port, "records"), 0);
    finish_server(&sp);
}
END_TEST

START_TEST(test_injected_429_carries_retry_after_then_succeeds)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);
    post_control(sp.port, "{\"fail_status\":429,\"fail_count\":1,\"retry_after\":2}");

    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_eq(r.retry_after, "2");
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 202);
    ck_assert_str_eq(r.retry_after, "");

    ck_assert_int_eq(stat_of(sp.port, "failed_injected"), 1);
    ck_assert_int_eq(stat_of(sp.port, "accepted"), 1);
    /* The failed attempt was not a delivery: one key, no duplicate. */
    ck_assert_int_eq(stat_of(sp.port, "duplicates"), 0);
    finish_server(&sp);
}
END_TEST

START_TEST(test_same_idempotency_key_twice_is_accepted_and_counted_duplicate)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);
    for (int i = 0; i < 2; i++) {
        http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
        ck_assert_int_eq(r.status, 202);
    }
    ck_assert_int_eq(stat_of(sp.port, "accepted"), 2);
    ck_assert_int_eq(stat_of(sp.port, "distinct_keys"), 1);
    ck_assert_int_eq(stat_of(sp.port, "duplicates"), 1);
    json_t *recs = get_json(sp.port, "/_records?since=1");
    ck_assert_int_eq(json_array_size(recs), 1);
    ck_assert(json_is_true(json_object_get(json_array_get(recs, 0), "duplicate")));
    json_decref(recs);

    /* reset forgets keys and counters, not the records. */
    post_control(sp.port, "{\"reset\":true}");
    ck_assert_int_eq(stat_of(sp.port, "duplicates"), 0);
    ck_assert_int_eq(stat_of(sp.port, "accepted"), 0);
    ck_assert_int_eq(stat_of(sp.port, "records"), 2);
    finish_server(&sp);
}
END_TEST

START_TEST(test_bearer_token_is_required_when_configured)
{
    static const char *const args[] = {"--auth-token", "s3cret", NULL};
    static const char *const good[] = {"Content-Type: application/json", "Idempotency-Key: k1",
                                       "Authorization: Bearer s3cret", NULL};
    static const char *const bad[] = {"Content-Type: application/json", "Idempotency-Key: k1",
                                      "Authorization: Bearer nope", NULL};
    server_proc sp;
    http_result r;
    start_server(&sp, false, args);
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 401);
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, bad, NULL, 5000);
    ck_assert_int_eq(r.status, 401);
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, good, NULL, 5000);
    ck_assert_int_eq(r.status, 202);
    ck_assert_int_eq(stat_of(sp.port, "auth_failed"), 2);
    finish_server(&sp);
}
END_TEST

START_TEST(test_push_is_accepted_and_dead_token_gets_404)
{
    static const char *const args[] = {"--dead-tokens", "tok-dead", NULL};
    static const char push_live[] =
        "{\"token\":\"tok-live\",\"title\":\"Hi\",\"body\":\"There\",\"data\":{\"k\":\"v\"},"
        "\"idempotency_key\":\"k1\",\"event_id\":\"e1\",\"user_id\":\"u1\"}";
    static const char push_dead[] =
        "{\"token\":\"tok-dead\",\"title\":\"Hi\",\"body\":\"There\",\"data\":{},"
        "\"idempotency_key\":\"k2\",\"event_id\":\"e1\",\"user_id\":\"u1\"}";
    server_proc sp;
    http_result r;
    start_server(&sp, false, args);

    http_do(&r, "POST", sp.port, "/push", push_live, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 202);
    http_do(&r, "POST", sp.port, "/push", push_dead, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 404);

    /* A token can be declared dead at run time, answered 410 if asked. */
    post_control(sp.port, "{\"dead_tokens\":[\"tok-live\"],\"dead_status\":410}");
    http_do(&r, "POST", sp.port, "/push", push_live, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 410);

    json_t *recs = get_json(sp.port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(rec, "token"), "tok-live");
    ck_assert_str_eq(str_of(rec, "title"), "Hi");
    ck_assert_str_eq(str_of(json_object_get(rec, "data"), "k"), "v");
    json_decref(recs);
    ck_assert_int_eq(stat_of(sp.port, "dead_token"), 2);
    finish_server(&sp);
}
END_TEST

/* ---- HTTP provider: Twilio and FCM ---- */

static const char twilio_path[] = "/2010-04-01/Accounts/AC0123/Messages.json";
static const char *const form_headers[] = {"Content-Type: application/x-www-form-urlencoded", NULL};

START_TEST(test_twilio_form_with_basic_auth_is_accepted)
{
    static const char *const args[] = {"--twilio-sid", "AC0123", "--twilio-token", "tw-token",
                                       NULL};
    server_proc sp;
    http_result r;
    json_error_t jerr;
    start_server(&sp, false, args);

    http_do(&r, "POST", sp.port, twilio_path,
            "To=%2B15550001111&From=%2B15559990000&Body=Hello+there%21", form_headers,
            "AC0123:tw-token", 5000);
    ck_assert_int_eq(r.rc, CURLE_OK);
    ck_assert_msg(r.status == 201, "status %ld: %s", r.status, r.body);
    json_t *resp = json_loads(r.body, 0, &jerr);
    ck_assert_ptr_nonnull(resp);
    ck_assert_str_eq(str_of(resp, "status"), "queued");
    ck_assert_int_eq(strncmp(str_of(resp, "sid"), "SM", 2), 0);
    ck_assert_int_eq(strlen(str_of(resp, "sid")), 34);
    ck_assert_str_eq(str_of(resp, "to"), "+15550001111");
    json_decref(resp);

    json_t *recs = get_json(sp.port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(rec, "protocol"), "twilio");
    ck_assert_str_eq(str_of(rec, "from"), "+15559990000");
    ck_assert_str_eq(str_of(rec, "body"), "Hello there!");
    json_decref(recs);
    finish_server(&sp);
}
END_TEST

START_TEST(test_twilio_wrong_auth_is_401_with_twilio_error)
{
    static const char *const args[] = {"--twilio-sid", "AC0123", "--twilio-token", "tw-token",
                                       NULL};
    server_proc sp;
    http_result r;
    json_error_t jerr;
    start_server(&sp, false, args);

    http_do(&r, "POST", sp.port, twilio_path, "To=%2B1555&From=%2B1666&Body=x", form_headers,
            "AC0123:wrong", 5000);
    ck_assert_int_eq(r.status, 401);
    json_t *resp = json_loads(r.body, 0, &jerr);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(json_integer_value(json_object_get(resp, "code")), 20003);
    ck_assert_int_eq(json_integer_value(json_object_get(resp, "status")), 401);
    ck_assert_ptr_nonnull(json_object_get(resp, "more_info"));
    json_decref(resp);

    /* No auth at all, and a missing To, are refused too. */
    http_do(&r, "POST", sp.port, twilio_path, "To=%2B1555&From=%2B1666&Body=x", form_headers, NULL,
            5000);
    ck_assert_int_eq(r.status, 401);
    http_do(&r, "POST", sp.port, twilio_path, "From=%2B1666&Body=x", form_headers,
            "AC0123:tw-token", 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_int_eq(stat_of(sp.port, "records"), 0);
    finish_server(&sp);
}
END_TEST

/* ---- HTTP provider: Twilio status callbacks ---- */

/*
 * The receiver of status callbacks: a libmicrohttpd server on 127.0.0.1
 * that keeps every request it gets and answers 500 to the first fail_first
 * of them, 200 to the rest.
 */
#define RECEIVER_MAX 4096

typedef struct received_callback {
    char path[256];
    char content_type[128];
    char signature[64];
    char body[4096];
} received_callback;

typedef struct receiver {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    received_callback *got; /* RECEIVER_MAX of them */
    size_t count;
    long fail_first;
} receiver;

typedef struct receiver_body {
    char buf[4096];
    size_t len;
} receiver_body;

static enum MHD_Result receiver_request(void *cls, struct MHD_Connection *c, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    receiver *rv = cls;
    receiver_body *b = *con_cls;
    if (b == NULL) {
        b = calloc(1, sizeof(*b));
        *con_cls = b;
        return b != NULL ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size > 0) {
        size_t room = sizeof(b->buf) - 1 - b->len;
        size_t n = *upload_data_size < room ? *upload_data_size : room;
        memcpy(b->buf + b->len, upload_data, n);
        b->len += n;
        *upload_data_size = 0;
        return MHD_YES;
    }
    unsigned status = 200;
    pthread_mutex_lock(&rv->lock);
    if (strcmp(method, "POST") == 0 && rv->count < RECEIVER_MAX) {
        received_callback *g = &rv->got[rv->count++];
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Twilio-Signature");
        snprintf(g->path, sizeof(g->path), "%s", url);
        snprintf(g->content_type, sizeof(g->content_type), "%s", ct != NULL ? ct : "");
        snprintf(g->signature, sizeof(g->signature), "%s", sig != NULL ? sig : "");
        memcpy(g->body, b->buf, b->len);
        g->body[b->len] = '\0';
        if (rv->fail_first > 0) {
            rv->fail_first--;
            status = 500;
        }
    }
    pthread_mutex_unlock(&rv->lock);
    static const char answer[] = "<Response/>";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(answer) - 1, (void *)answer, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void receiver_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void receiver_start(receiver *rv, long fail_first)
{
    memset(rv, 0, sizeof(*rv));
    rv->got = calloc(RECEIVER_MAX, sizeof(*rv->got));
    ck_assert_ptr_nonnull(rv->got);
    pthread_mutex_init(&rv->lock, NULL);
    rv->fail_first = fail_first;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rv->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, receiver_request, rv,
                         MHD_OPTION_SOCK_ADDR, &sin, MHD_OPTION_NOTIFY_COMPLETED,
                         receiver_completed, rv, MHD_OPTION_THREAD_POOL_SIZE, 4U, MHD_OPTION_END);
    ck_assert_ptr_nonnull(rv->daemon);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(rv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    rv->port = info->port;
}

static void receiver_stop(receiver *rv)
{
    MHD_stop_daemon(rv->daemon);
    pthread_mutex_destroy(&rv->lock);
    free(rv->got);
}

/* Waits up to timeout_ms for want callbacks; returns how many came. */
static size_t receiver_wait_ms(receiver *rv, size_t want, long timeout_ms)
{
    size_t n = 0;
    for (long deadline = ptime_monotonic_ms() + timeout_ms;; ptime_sleep_ms(10)) {
        pthread_mutex_lock(&rv->lock);
        n = rv->count;
        pthread_mutex_unlock(&rv->lock);
        if (n >= want || ptime_monotonic_ms() > deadline)
            return n;
    }
}

/* Waits up to 5 s for want callbacks; returns how many came. */
static size_t receiver_wait(receiver *rv, size_t want)
{
    return receiver_wait_ms(rv, want, 5000);
}

/* A form body as a JSON object of its decoded fields (caller decrefs). */
static json_t *form_fields(const char *body)
{
    json_t *o = json_object();
    char *copy = strdup(body), *save = NULL;
    for (char *pair = strtok_r(copy, "&", &save); pair != NULL; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        ck_assert_ptr_nonnull(eq);
        *eq = '\0';
        for (char *q = eq + 1; *q != '\0'; q++)
            if (*q == '+')
                *q = ' ';
        char *name = curl_easy_unescape(NULL, pair, 0, NULL);
        char *value = curl_easy_unescape(NULL, eq + 1, 0, NULL);
        ck_assert_msg(json_object_get(o, name) == NULL, "%s twice in %s", name, body);
        json_object_set_new(o, name, json_string(value));
        curl_free(name);
        curl_free(value);
    }
    free(copy);
    return o;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * Twilio's signature as its security documentation describes it, written
 * here apart from the provider's: the URL, then each POST parameter sorted
 * by name, name immediately followed by value; HMAC-SHA1 under the auth
 * token; base64.
 */
static void twilio_sign(const char *token, const char *url, const json_t *params, char *out,
                        size_t outlen)
{
    const char *names[32];
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        ck_assert_uint_lt(n, 32);
        names[n++] = key;
    }
    qsort(names, n, sizeof(names[0]), name_cmp);
    char data[8192];
    size_t len = (size_t)snprintf(data, sizeof(data), "%s", url);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(data + len, sizeof(data) - len, "%s%s", names[i],
                                json_string_value(json_object_get(params, names[i])));
    ck_assert_uint_lt(len, sizeof(data));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    ck_assert_ptr_nonnull(
        HMAC(EVP_sha1(), token, (int)strlen(token), (unsigned char *)data, len, mac, &maclen));
    ck_assert_uint_lt((size_t)(4 * ((maclen + 2) / 3)), outlen);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
}

START_TEST(test_twilio_signature_algorithm_matches_twilios_examples)
{
    static const char url[] = "https://mycompany.com/myapp.php?foo=1&bar=2";
    char sig[64];
    /* The example of Twilio's request validation documentation. */
    json_t *p =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "CallSid", "CA1234567890ABCDE", "Caller",
                  "+12349013030", "Digits", "1234", "From", "+12349013030", "To", "+18005551212");
    twilio_sign("12345", url, p, sig, sizeof(sig));
    ck_assert_str_eq(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    json_decref(p);
    /* The same request with the numbers of twilio-python's validator tests. */
    p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "CallSid", "CA1234567890ABCDE", "Caller",
                  "+14158675309", "Digits", "1234", "From", "+14158675309", "To", "+18005551212");
    twilio_sign("12345", url, p, sig, sizeof(sig));
    ck_assert_str_eq(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    json_decref(p);
}
END_TEST

static const char *const twilio_args[] = {"--twilio-sid", "AC0123", "--twilio-token", "tw-token",
                                          NULL};

/* Sends one Twilio message, with StatusCallback when callback is not NULL;
 * returns its SID (caller frees). */
static char *twilio_send(int port, const char *to, const char *callback)
{
    char body[1024];
    http_result r;
    json_error_t jerr;
    char *esc = callback != NULL ? curl_easy_escape(NULL, callback, 0) : NULL;
    snprintf(body, sizeof(body), "To=%s&From=%%2B15559990000&Body=Your+code+is+1234%s%s", to,
             esc != NULL ? "&StatusCallback=" : "", esc != NULL ? esc : "");
    curl_free(esc);
    http_do(&r, "POST", port, twilio_path, body, form_headers, "AC0123:tw-token", 5000);
    ck_assert_int_eq(r.rc, CURLE_OK);
    ck_assert_msg(r.status == 201, "status %ld: %s", r.status, r.body);
    json_t *resp = json_loads(r.body, 0, &jerr);
    ck_assert_ptr_nonnull(resp);
    char *sid = strdup(str_of(resp, "sid"));
    json_decref(resp);
    return sid;
}

/* Checks one received callback: where it went, its fields, its signature;
 * returns its fields (caller decrefs). */
static json_t *check_callback(const received_callback *g, const char *url, const char *sid,
                              const char *status)
{
    char sig[64];
    ck_assert_str_eq(g->path, "/status");
    ck_assert_str_eq(g->content_type, "application/x-www-form-urlencoded");
    json_t *f = form_fields(g->body);
    ck_assert_str_eq(str_of(f, "MessageSid"), sid);
    ck_assert_str_eq(str_of(f, "SmsSid"), sid);
    ck_assert_str_eq(str_of(f, "MessageStatus"), status);
    ck_assert_str_eq(str_of(f, "SmsStatus"), status);
    ck_assert_str_eq(str_of(f, "AccountSid"), "AC0123");
    ck_assert_str_eq(str_of(f, "From"), "+15559990000");
    ck_assert_str_eq(str_of(f, "ApiVersion"), "2010-04-01");
    twilio_sign("tw-token", url, f, sig, sizeof(sig));
    ck_assert_msg(strcmp(g->signature, sig) == 0, "X-Twilio-Signature %s, expected %s for %s",
                  g->signature, sig, g->body);
    return f;
}

START_TEST(test_twilio_status_callbacks_come_in_order_and_signed)
{
    static const char *const args[] = {
        "--twilio-sid", "AC0123", "--twilio-token", "tw-token", "--callback-delay-ms", "20", NULL};
    server_proc sp;
    receiver rv;
    char url[128];
    receiver_start(&rv, 0);
    start_server(&sp, false, args);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status?tenant=t1&x=a%%20b", rv.port);

    char *sid = twilio_send(sp.port, "%2B15550001111", url);
    ck_assert_uint_eq(receiver_wait(&rv, 2), 2);
    json_t *f = check_callback(&rv.got[0], url, sid, "sent");
    ck_assert_str_eq(str_of(f, "To"), "+15550001111");
    ck_assert_ptr_null(json_object_get(f, "ErrorCode"));
    json_decref(f);
    json_decref(check_callback(&rv.got[1], url, sid, "delivered"));

    /* What the stand-in recorded of each attempt, and its counters. */
    json_t *recs = get_json(sp.port, "/_records");
    ck_assert_str_eq(str_of(json_array_get(recs, 0), "status_callback"), url);
    json_decref(recs);
    ck_assert_int_eq(wait_stat(sp.port, "callbacks_answered_2xx", 2), 2);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_sent"), 2);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_failed"), 0);
    json_t *att = get_json(sp.port, "/_callbacks");
    ck_assert_int_eq(json_array_size(att), 2);
    json_t *a = json_array_get(att, 1);
    ck_assert_str_eq(str_of(a, "message_sid"), sid);
    ck_assert_str_eq(str_of(a, "message_status"), "delivered");
    ck_assert_str_eq(str_of(a, "url"), url);
    ck_assert_str_eq(str_of(a, "signature"), rv.got[1].signature);
    ck_assert_int_eq(json_integer_value(json_object_get(a, "response_status")), 200);
    ck_assert_str_eq(str_of(a, "outcome"), "answered_2xx");
    json_decref(att);
    free(sid);
    finish_server(&sp);
    receiver_stop(&rv);
}
END_TEST

START_TEST(test_twilio_status_callbacks_duplicate_and_reorder_when_asked)
{
    server_proc sp;
    receiver rv;
    char url[128];
    receiver_start(&rv, 0);
    start_server(&sp, false, twilio_args);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", rv.port);
    post_control(sp.port, "{\"callback_duplicate_count\":1,\"callback_reorder_count\":1}");

    /* The first message: reversed, and its first callback twice. */
    char *sid = twilio_send(sp.port, "%2B15550001111", url);
    ck_assert_uint_eq(receiver_wait(&rv, 3), 3);
    json_decref(check_callback(&rv.got[0], url, sid, "delivered"));
    json_decref(check_callback(&rv.got[1], url, sid, "delivered"));
    ck_assert_str_eq(rv.got[0].body, rv.got[1].body);
    ck_assert_str_eq(rv.got[0].signature, rv.got[1].signature);
    json_decref(check_callback(&rv.got[2], url, sid, "sent"));
    free(sid);

    /* The counts are used up: the next message is told as it happened. */
    sid = twilio_send(sp.port, "%2B15550001111", url);
    ck_assert_uint_eq(receiver_wait(&rv, 5), 5);
    json_decref(check_callback(&rv.got[3], url, sid, "sent"));
    json_decref(check_callback(&rv.got[4], url, sid, "delivered"));
    free(sid);
    json_t *att = get_json(sp.port, "/_callbacks");
    ck_assert(json_is_true(json_object_get(json_array_get(att, 1), "repeat")));
    ck_assert(json_is_true(json_object_get(json_array_get(att, 2), "reordered")));
    ck_assert(json_is_false(json_object_get(json_array_get(att, 3), "reordered")));
    json_decref(att);
    finish_server(&sp);
    receiver_stop(&rv);
}
END_TEST

START_TEST(test_twilio_status_callback_answered_500_is_retried)
{
    static const char *const args[] = {"--twilio-sid",
                                       "AC0123",
                                       "--twilio-token",
                                       "tw-token",
                                       "--callback-statuses",
                                       "undelivered",
                                       "--callback-error-code",
                                       "30005",
                                       "--callback-retries",
                                       "3",
                                       "--callback-retry-ms",
                                       "50",
                                       NULL};
    server_proc sp;
    receiver rv;
    char url[128];
    receiver_start(&rv, 2);
    start_server(&sp, false, args);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", rv.port);

    char *sid = twilio_send(sp.port, "%2B15550001111", url);
    ck_assert_uint_eq(receiver_wait(&rv, 3), 3);
    for (int i = 0; i < 3; i++) {
        json_t *f = check_callback(&rv.got[i], url, sid, "undelivered");
        ck_assert_str_eq(str_of(f, "ErrorCode"), "30005");
        ck_assert_str_eq(str_of(f, "ErrorMessage"), "Unknown destination handset");
        json_decref(f);
        ck_assert_str_eq(rv.got[i].body, rv.got[0].body);
    }
    ck_assert_int_eq(wait_stat(sp.port, "callbacks_answered_2xx", 1), 1);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_sent"), 3);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_failed"), 2);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_retried"), 2);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_given_up"), 0);
    json_t *att = get_json(sp.port, "/_callbacks");
    ck_assert_int_eq(json_array_size(att), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *a = json_array_get(att, i);
        ck_assert_int_eq(json_integer_value(json_object_get(a, "attempt")), (long)i + 1);
        ck_assert_int_eq(json_integer_value(json_object_get(a, "response_status")),
                         i < 2 ? 500 : 200);
        ck_assert(json_is_boolean(json_object_get(a, "will_retry")) &&
                  json_is_true(json_object_get(a, "will_retry")) == (i < 2));
    }
    json_decref(att);
    free(sid);
    finish_server(&sp);
    receiver_stop(&rv);
}
END_TEST

#define MANY_MESSAGES 2000

/* Many messages' callbacks, sent by several threads, still arrive each
 * message's in order (sent before delivered), all signed, none lost, and
 * at about the rate the messages are accepted. */
START_TEST(test_twilio_status_callbacks_of_many_messages_keep_order_per_message)
{
    static const char *const args[] = {
        "--twilio-sid", "AC0123", "--twilio-token", "tw-token", "--callback-threads", "8", NULL};
    server_proc sp;
    receiver rv;
    char url[128];
    receiver_start(&rv, 0);
    start_server(&sp, false, args);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", rv.port);

    json_t *seen = json_object(); /* MessageSid -> statuses received so far */
    long t0 = ptime_monotonic_ms();
    for (int i = 0; i < MANY_MESSAGES; i++) {
        char *sid = twilio_send(sp.port, "%2B15550001111", url);
        json_object_set_new(seen, sid, json_integer(0));
        free(sid);
    }
    long sent_ms = ptime_monotonic_ms() - t0;
    ck_assert_uint_eq(receiver_wait_ms(&rv, 2 * MANY_MESSAGES, 20000), 2 * MANY_MESSAGES);
    long all_ms = ptime_monotonic_ms() - t0;
    fprintf(stderr, "%d messages accepted in %ld ms, their %d callbacks in by %ld ms\n",
            MANY_MESSAGES, sent_ms, 2 * MANY_MESSAGES, all_ms);

    pthread_mutex_lock(&rv.lock);
    ck_assert_uint_eq(rv.count, 2 * MANY_MESSAGES);
    for (size_t i = 0; i < rv.count; i++) {
        json_t *raw = form_fields(rv.got[i].body);
        const char *sid = str_of(raw, "MessageSid");
        json_t *n = json_object_get(seen, sid);
        ck_assert_msg(n != NULL, "a callback for %s, never sent", sid);
        /* Checks the signature too. */
        json_t *f =
            check_callback(&rv.got[i], url, sid, json_integer_value(n) == 0 ? "sent" : "delivered");
        json_decref(f);
        json_integer_set(n, json_integer_value(n) + 1);
        json_decref(raw);
    }
    pthread_mutex_unlock(&rv.lock);
    const char *key;
    json_t *n;
    json_object_foreach(seen, key, n)
    {
        ck_assert_msg(json_integer_value(n) == 2, "%s: %lld callbacks", key,
                      (long long)json_integer_value(n));
    }
    json_decref(seen);

    /* Bounded: the callbacks kept up with the messages (a lone sender at
     * 1 ms per callback would lag far behind). */
    ck_assert_int_lt(all_ms, sent_ms + 10000);
    ck_assert_int_eq(wait_stat(sp.port, "callbacks_answered_2xx", 2 * MANY_MESSAGES),
                     2 * MANY_MESSAGES);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_sent"), 2 * MANY_MESSAGES);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_dropped"), 0);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_pending"), 0);
    finish_server(&sp);
    receiver_stop(&rv);
}
END_TEST

START_TEST(test_twilio_message_without_status_callback_gets_none)
{
    server_proc sp;
    receiver rv;
    char url[128];
    http_result r;
    receiver_start(&rv, 0);
    start_server(&sp, false, twilio_args);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/status", rv.port);

    char *quiet = twilio_send(sp.port, "%2B15550001111", NULL);
    /* A later message that asks for callbacks: once its have come, any for
     * the first would have been queued before them, at its 201. */
    char *loud = twilio_send(sp.port, "%2B15550002222", url);
    ck_assert_uint_eq(receiver_wait(&rv, 2), 2);
    json_decref(check_callback(&rv.got[0], url, loud, "sent"));
    json_decref(check_callback(&rv.got[1], url, loud, "delivered"));
    ck_assert_int_eq(wait_stat(sp.port, "callbacks_answered_2xx", 2), 2);
    ck_assert_int_eq(stat_of(sp.port, "callbacks_sent"), 2);
    free(quiet);
    free(loud);

    /* A StatusCallback Twilio could not call is refused with the message. */
    http_do(&r, "POST", sp.port, twilio_path,
            "To=%2B1555&From=%2B1666&Body=x&StatusCallback=ftp%3A%2F%2Fexample.com", form_headers,
            "AC0123:tw-token", 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "21609"));

    /* Bad callback settings change nothing, fault's included. */
    http_do(&r, "POST", sp.port, "/_control",
            "{\"latency_ms\":500,\"callback_statuses\":\"sent,posted\"}", NULL, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "callback_statuses"));
    http_do(&r, "POST", sp.port, "/_control", "{\"latency_ms\":500,\"callback_nope\":1}", NULL,
            NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    json_t *st = get_json(sp.port, "/_control");
    json_t *set = json_object_get(st, "settings");
    ck_assert_int_eq(json_integer_value(json_object_get(set, "latency_ms")), 0);
    ck_assert_str_eq(str_of(set, "callback_statuses"), "sent,delivered");
    json_decref(st);

    /* Callbacks far off at shutdown are dropped: the stop stays prompt. */
    post_control(sp.port, "{\"callback_delay_ms\":600000}");
    free(twilio_send(sp.port, "%2B15550001111", url));
    long t0 = ptime_monotonic_ms();
    finish_server(&sp);
    ck_assert_int_lt(ptime_monotonic_ms() - t0, 5000);
    ck_assert_uint_eq(receiver_wait(&rv, 2), 2);
    receiver_stop(&rv);
}
END_TEST

static const char fcm_path[] = "/v1/projects/herald-test/messages:send";
static const char *const fcm_headers[] = {"Content-Type: application/json",
                                          "Authorization: Bearer fcm-access", NULL};

START_TEST(test_fcm_message_is_accepted)
{
    static const char *const args[] = {"--fcm-token", "fcm-access", NULL};
    static const char msg[] = "{\"message\":{\"token\":\"dev-1\",\"notification\":{\"title\":\"T\","
                              "\"body\":\"B\"},\"data\":{\"event_id\":\"e1\"}}}";
    server_proc sp;
    http_result r;
    json_error_t jerr;
    start_server(&sp, false, args);

    http_do(&r, "POST", sp.port, fcm_path, msg, fcm_headers, NULL, 5000);
    ck_assert_msg(r.status == 200, "status %ld: %s", r.status, r.body);
    json_t *resp = json_loads(r.body, 0, &jerr);
    ck_assert_ptr_nonnull(resp);
    ck_assert_int_eq(strncmp(str_of(resp, "name"), "projects/herald-test/messages/", 30), 0);
    json_decref(resp);

    /* Data values must be strings, as FCM demands. */
    http_do(&r, "POST", sp.port, fcm_path, "{\"message\":{\"token\":\"dev-1\",\"data\":{\"n\":1}}}",
            fcm_headers, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "INVALID_ARGUMENT"));

    json_t *recs = get_json(sp.port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(rec, "protocol"), "fcm");
    ck_assert_str_eq(str_of(rec, "token"), "dev-1");
    ck_assert_str_eq(str_of(rec, "title"), "T");
    ck_assert_str_eq(str_of(rec, "event_id"), "e1");
    json_decref(recs);
    finish_server(&sp);
}
END_TEST

START_TEST(test_fcm_dead_token_is_unregistered)
{
    static const char msg[] =
        "{\"message\":{\"token\":\"dev-dead\",\"notification\":{\"title\":\"T\",\"body\":\"B\"}}}";
    server_proc sp;
    http_result r;
    json_error_t jerr;
    start_server(&sp, false, NULL);
    post_control(sp.port, "{\"dead_tokens\":[\"dev-dead\"]}");

    http_do(&r, "POST", sp.port, fcm_path, msg, fcm_headers, NULL, 5000);
    ck_assert_int_eq(r.status, 404);
    json_t *resp = json_loads(r.body, 0, &jerr);
    ck_assert_ptr_nonnull(resp);
    json_t *err = json_object_get(resp, "error");
    ck_assert_str_eq(str_of(err, "status"), "NOT_FOUND");
    json_t *detail = json_array_get(json_object_get(err, "details"), 0);
    ck_assert_str_eq(str_of(detail, "errorCode"), "UNREGISTERED");
    json_decref(resp);
    ck_assert_int_eq(stat_of(sp.port, "records"), 0);
    finish_server(&sp);
}
END_TEST

/* ---- HTTP provider: latency and hangs ---- */

START_TEST(test_injected_latency_delays_the_answer)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);

    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 202);
    double fast = r.seconds;

    post_control(sp.port, "{\"latency_ms\":300}");
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_int_eq(r.status, 202);
    ck_assert_msg(r.seconds >= 0.29 && r.seconds < 3.0, "took %.3f s", r.seconds);
    ck_assert_msg(fast < 0.2, "an undelayed request took %.3f s", fast);

    /* The control API itself is never delayed. */
    long t0 = ptime_monotonic_ms();
    ck_assert_int_eq(stat_of(sp.port, "accepted"), 2);
    ck_assert_int_lt(ptime_monotonic_ms() - t0, 250);

    post_control(sp.port, "{\"reset\":true}");
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    ck_assert_msg(r.seconds < 0.2, "after reset took %.3f s", r.seconds);
    finish_server(&sp);
}
END_TEST

typedef struct held_call {
    int port;
    http_result result;
} held_call;

static void *held_call_run(void *arg)
{
    held_call *hc = arg;
    http_do(&hc->result, "POST", hc->port, "/sms", sms_body_k1, json_headers_k1, NULL, 5000);
    return NULL;
}

START_TEST(test_hang_holds_requests_until_lifted)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);
    post_control(sp.port, "{\"hang\":true}");

    /* A client that gives up sees a timeout. */
    http_do(&r, "POST", sp.port, "/sms", sms_body_k1, json_headers_k1, NULL, 300);
    ck_assert_int_eq(r.rc, CURLE_OPERATION_TIMEDOUT);

    /* A patient one is answered once the hang is lifted. */
    held_call hc = {.port = sp.port};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, held_call_run, &hc), 0);
    /* Held: the abandoned request and this one (a provider cannot tell
     * that a client went away while it holds the request). */
    long deadline = ptime_monotonic_ms() + 3000;
    while (stat_of(sp.port, "hung") < 2 && ptime_monotonic_ms() < deadline)
        ptime_sleep_ms(20);
    ck_assert_int_eq(stat_of(sp.port, "hung"), 2);
    ck_assert_int_eq(stat_of(sp.port, "records"), 0);
    ptime_sleep_ms(200);
    post_control(sp.port, "{\"hang\":false}");
    pthread_join(t, NULL);
    ck_assert_int_eq(hc.result.rc, CURLE_OK);
    ck_assert_int_eq(hc.result.status, 202);
    ck_assert_msg(hc.result.seconds >= 0.2, "answered after %.3f s", hc.result.seconds);
    finish_server(&sp);
}
END_TEST

START_TEST(test_control_rejects_unknown_settings)
{
    server_proc sp;
    http_result r;
    start_server(&sp, false, NULL);
    http_do(&r, "POST", sp.port, "/_control", "{\"latency\":5}", NULL, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(r.body, "latency"));
    http_do(&r, "POST", sp.port, "/_control", "{\"fail_status\":200}", NULL, NULL, 5000);
    ck_assert_int_eq(r.status, 400);
    json_t *ctl = get_json(sp.port, "/_control");
    json_t *settings = json_object_get(ctl, "settings");
    ck_assert_int_eq(json_integer_value(json_object_get(settings, "fail_status")), 500);
    ck_assert_ptr_nonnull(json_object_get(ctl, "stats"));
    json_decref(ctl);
    finish_server(&sp);
}
END_TEST

START_TEST(test_sigterm_flushes_the_record_file)
{
    server_proc sp;
    http_result r;
    char keyhdr[64], body[256];
    start_server(&sp, false, NULL);
    for (int i = 0; i < 50; i++) {
        snprintf(keyhdr, sizeof(keyhdr), "Idempotency-Key: key-%d", i);
        snprintf(body, sizeof(body),
                 "{\"to\":\"+1555\",\"body\":\"b\",\"idempotency_key\":\"key-%d\","
                 "\"event_id\":\"e\",\"user_id\":\"u\"}",
                 i);
        const char *const hdrs[] = {"Content-Type: application/json", keyhdr, NULL};
        http_do(&r, "POST", sp.port, "/sms", body, hdrs, NULL, 5000);
        ck_assert_int_eq(r.status, 202);
    }
    ck_assert_int_eq(stop_server(&sp), 0);
    json_t *lines = read_record_file(sp.record, 50);
    unlink(sp.record);
    ck_assert_int_eq(json_array_size(lines), 50);
    ck_assert_str_eq(str_of(json_array_get(lines, 49), "idempotency_key"), "key-49");
    json_decref(lines);
}
END_TEST

/* ---- SMTP server ---- */

typedef struct mail_source {
    const char *data;
    size_t len, off;
} mail_source;

static size_t mail_read(char *buf, size_t size, size_t nitems, void *arg)
{
    mail_source *m = arg;
    size_t room = size * nitems;
    size_t n = m->len - m->off < room ? m->len - m->off : room;
    memcpy(buf, m->data + m->off, n);
    m->off += n;
    return n;
}

/* How smtp_send_tls() reaches the server; zeroed: plain smtp://. */
typedef struct smtp_tls_opts {
    bool smtps;       /* TLS from the first byte */
    long use_ssl;     /* CURLUSESSL_* for smtp:// */
    const char *ca;   /* the CA bundle to trust (verification is never off) */
    const char *host; /* in the URL; "127.0.0.1" when NULL */
    long timeout_ms;  /* 10 s when 0 */
} smtp_tls_opts;

/* Sends msg with libcurl; returns curl's result and the last reply code. */
static CURLcode smtp_send_tls(const smtp_tls_opts *o, int port, const char *user, const char *pass,
                              const char *from, const char *const *rcpts, const char *msg,
                              long *code)
{
    char url[128];
    struct curl_slist *rl = NULL;
    mail_source src = {.data = msg, .len = strlen(msg)};
    snprintf(url, sizeof(url), "%s://%s:%d", o->smtps ? "smtps" : "smtp",
             o->host != NULL ? o->host : "127.0.0.1", port);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    for (size_t i = 0; rcpts[i] != NULL; i++)
        rl = curl_slist_append(rl, rcpts[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_USE_SSL, o->use_ssl);
    if (o->ca != NULL) {
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca);
        curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
    }
    if (user != NULL) {
        curl_easy_setopt(h, CURLOPT_USERNAME, user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, pass);
        curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=PLAIN");
    }
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rl);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, mail_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &src);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms > 0 ? o->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    *code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
    curl_easy_cleanup(h);
    curl_slist_free_all(rl);
    return rc;
}

static CURLcode smtp_send(int port, const char *user, const char *pass, const char *from,
                          const char *const *rcpts, const char *msg, long *code)
{
    static const smtp_tls_opts plain = {.use_ssl = CURLUSESSL_NONE};
    return smtp_send_tls(&plain, port, user, pass, from, rcpts, msg, code);
}

static const char *const smtp_auth_args[] = {"--user", "herald", "--password", "pw-1", NULL};
static const char *const two_rcpts[] = {"<ann@example.com>", "<bob@example.com>", NULL};
static const char test_mail[] = "From: Herald <noreply@example.com>\r\n"
                                "To: ann@example.com\r\n"
                                "Subject: =?UTF-8?B?V2VsY29tZSDinJM=?=\r\n"
                                "Message-ID: <idem-42@herald.example>\r\n"
                                "MIME-Version: 1.0\r\n"
                                "Content-Type: text/plain; charset=UTF-8\r\n"
                                "\r\n"
                                "Hello Ann,\r\n"
                                ".a line that starts with a dot\r\n"
                                "bye\r\n";

START_TEST(test_smtp_auth_plain_message_is_recorded_with_message_id_and_subject)
{
    server_proc sp;
    long code = 0;
    start_server(&sp, true, smtp_auth_args);

    CURLcode rc =
        smtp_send(sp.port, "herald", "pw-1", "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_msg(rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(rc), code);
    ck_assert_int_eq(code, 250);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(rec, "protocol"), "smtp");
    ck_assert_str_eq(str_of(rec, "from"), "noreply@example.com");
    ck_assert_str_eq(str_of(rec, "auth_user"), "herald");
    json_t *rcpt = json_object_get(rec, "rcpt");
    ck_assert_int_eq(json_array_size(rcpt), 2);
    ck_assert_str_eq(json_string_value(json_array_get(rcpt, 1)), "bob@example.com");
    ck_assert_str_eq(str_of(rec, "message_id"), "<idem-42@herald.example>");
    ck_assert_str_eq(str_of(rec, "subject"), "=?UTF-8?B?V2VsY29tZSDinJM=?=");
    /* Dot-stuffing by the client is undone: the raw text is what was sent. */
    ck_assert_str_eq(str_of(rec, "raw"), test_mail);
    json_decref(recs);

    json_t *lines = read_record_file(sp.record, 1);
    ck_assert_int_eq(json_array_size(lines), 1);
    ck_assert_str_eq(str_of(json_array_get(lines, 0), "message_id"), "<idem-42@herald.example>");
    json_decref(lines);
    ck_assert_int_eq(stat_of(sp.control_port, "distinct_keys"), 1);
    finish_server(&sp);
}
END_TEST

START_TEST(test_smtp_wrong_password_is_refused_535)
{
    server_proc sp;
    long code = 0;
    start_server(&sp, true, smtp_auth_args);
    CURLcode rc =
        smtp_send(sp.port, "herald", "wrong", "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_eq(rc, CURLE_LOGIN_DENIED);
    ck_assert_int_eq(code, 535);
    ck_assert_int_eq(stat_of(sp.control_port, "auth_failed"), 1);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 0);
    finish_server(&sp);
}
END_TEST

START_TEST(test_smtp_injected_451_at_end_of_data)
{
    server_proc sp;
    long code = 0;
    start_server(&sp, true, smtp_auth_args);
    post_control(sp.control_port, "{\"fail_status\":451,\"fail_count\":1,\"fail_stage\":\"data\"}");

    CURLcode rc =
        smtp_send(sp.port, "herald", "pw-1", "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_ne(rc, CURLE_OK);
    ck_assert_int_eq(code, 451);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 0);

    /* The next message goes through. */
    rc = smtp_send(sp.port, "herald", "pw-1", "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_eq(rc, CURLE_OK);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 1);
    ck_assert_int_eq(stat_of(sp.control_port, "failed_injected"), 1);
    finish_server(&sp);
}
END_TEST

START_TEST(test_smtp_injected_550_at_rcpt)
{
    static const char *const args[] = {"--fail-status", "550", "--fail-count", "1", "--fail-stage",
                                       "rcpt",          NULL};
    server_proc sp;
    long code = 0;
    start_server(&sp, true, args);
    CURLcode rc =
        smtp_send(sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_ne(rc, CURLE_OK);
    ck_assert_int_eq(code, 550);
    rc = smtp_send(sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_eq(rc, CURLE_OK);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 1);
    finish_server(&sp);
}
END_TEST

START_TEST(test_smtp_injected_latency_delays_the_final_reply)
{
    server_proc sp;
    long code = 0;
    start_server(&sp, true, NULL);
    post_control(sp.control_port, "{\"latency_ms\":300}");
    long t0 = ptime_monotonic_ms();
    CURLcode rc =
        smtp_send(sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_eq(rc, CURLE_OK);
    ck_assert_int_ge(ptime_monotonic_ms() - t0, 290);
    finish_server(&sp);
}
END_TEST

/* A raw session: what libcurl never sends. */
static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until a final reply line ("NNN " at a line start); returns its code. */
static int raw_reply(int fd, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    while (len < cap - 1) {
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
        /* The last complete line decides. */
        if (len >= 2 && out[len - 1] == '\n') {
            char *last = out + len - 2;
            while (last > out && last[-1] != '\n')
                last--;
            if (strlen(last) >= 4 && last[3] == ' ')
                return atoi(last);
        }
    }
    return -1;
}

static int raw_command(int fd, const char *cmd, char *out, size_t cap)
{
    ck_assert_int_eq(send(fd, cmd, strlen(cmd), MSG_NOSIGNAL), (ssize_t)strlen(cmd));
    return raw_reply(fd, out, cap);
}

/* A session past the greeting and EHLO (the EHLO reply left in out). */
static int raw_session(int port, const char *ehlo, char *out, size_t cap)
{
    int fd = raw_connect(port);
    ck_assert_int_eq(raw_reply(fd, out, cap), 220);
    ck_assert_int_eq(raw_command(fd, ehlo, out, cap), 250);
    return fd;
}

/* MAIL, RCPT and DATA one at a time, each accepted: the body comes next. */
static void raw_begin_data(int fd, char *out, size_t cap)
{
    ck_assert_int_eq(raw_command(fd, "MAIL FROM:<a@example.com>\r\n", out, cap), 250);
    ck_assert_int_eq(raw_command(fd, "RCPT TO:<b@example.com>\r\n", out, cap), 250);
    ck_assert_int_eq(raw_command(fd, "DATA\r\n", out, cap), 354);
}

START_TEST(test_smtp_pipelined_session_and_unadvertised_starttls)
{
    server_proc sp;
    char buf[4096];
    start_server(&sp, true, NULL);
    int fd = raw_session(sp.port, "EHLO client.test\r\n", buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "PIPELINING"));
    ck_assert_ptr_nonnull(strstr(buf, "8BITMIME"));
    ck_assert_ptr_null(strstr(buf, "STARTTLS"));
    ck_assert_ptr_null(strstr(buf, "AUTH"));
    ck_assert_int_eq(raw_command(fd, "STARTTLS\r\n", buf, sizeof(buf)), 502);
    ck_assert_int_eq(raw_command(fd, "RCPT TO:<x@example.com>\r\n", buf, sizeof(buf)), 503);

    /* MAIL, RCPT and DATA in one write, as a PIPELINING client does. */
    static const char batch[] = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
                                "DATA\r\n";
    ck_assert_int_eq(send(fd, batch, sizeof(batch) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(batch) - 1);
    long deadline = ptime_monotonic_ms() + 3000;
    buf[0] = '\0';
    size_t len = 0;
    while (strstr(buf, "354 ") == NULL && ptime_monotonic_ms() < deadline &&
           len < sizeof(buf) - 1) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    ck_assert_ptr_nonnull(strstr(buf, "250 2.1.0"));
    ck_assert_ptr_nonnull(strstr(buf, "250 2.1.5"));
    ck_assert_ptr_nonnull(strstr(buf, "354 "));
    ck_assert_int_eq(
        raw_command(fd, "Subject: raw\r\n\r\n..leading dot\r\n.\r\n", buf, sizeof(buf)), 250);
    ck_assert_int_eq(raw_command(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
    close(fd);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    ck_assert_str_eq(str_of(json_array_get(recs, 0), "raw"),
                     "Subject: raw\r\n\r\n.leading dot\r\n");
    ck_assert_str_eq(str_of(json_array_get(recs, 0), "helo"), "client.test");
    json_decref(recs);
    finish_server(&sp);
}
END_TEST

/* The replies to pipelined commands come back together (RFC 2920): one
 * write, so one read, rather than one round of the connection each. */
START_TEST(test_smtp_pipelined_replies_share_one_write)
{
    server_proc sp;
    char buf[4096];
    start_server(&sp, true, NULL);
    int fd = raw_session(sp.port, "EHLO client.test\r\n", buf, sizeof(buf));
    for (int i = 0; i < 3; i++) {
        static const char batch[] = "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
                                    "RCPT TO:<c@example.com>\r\nDATA\r\n";
        ck_assert_int_eq(send(fd, batch, sizeof(batch) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(batch) - 1);
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        ck_assert_int_gt(n, 0);
        buf[n] = '\0';
        ck_assert_msg(strncmp(buf, "250 2.1.0", 9) == 0 && strstr(buf, "\r\n354 ") != NULL,
                      "one read: %s", buf);
        /* The body and the next transaction's commands in one write too. */
        ck_assert_int_eq(
            raw_command(fd, "Subject: p\r\n\r\nbody\r\n.\r\nNOOP\r\n", buf, sizeof(buf)), 250);
        ck_assert_msg(strstr(buf, "queued") != NULL && strstr(buf, "250 2.0.0 Ok\r\n") != NULL,
                      "both replies: %s", buf);
    }
    ck_assert_int_eq(raw_command(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
    close(fd);
    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 3);
    ck_assert_int_eq(json_array_size(json_object_get(json_array_get(recs, 2), "rcpt")), 2);
    json_decref(recs);
    finish_server(&sp);
}
END_TEST

/* Records keep every byte a message had: invalid UTF-8 replaced in "raw"
 * and kept in "raw_base64", control characters and quotes escaped, folded
 * headers unfolded, the first value of a repeated header; a shorter message
 * after a longer one on the same session leaves nothing of it behind. */
START_TEST(test_smtp_record_escapes_and_keeps_raw_bytes)
{
    server_proc sp;
    char buf[4096];
    start_server(&sp, true, NULL);
    int fd = raw_session(sp.port, "EHLO c\"q\\t\r\n", buf, sizeof(buf));
    static const char msg1[] = "Subject: h\xc3\xa9 \"x\" \\ \r\nMessage-ID: <k1@herald>\r\n"
                               "X-A: 1\r\n  folded\r\nx-a: 2\r\nX-Ctl: a\x01"
                               "b\r\n\r\n"
                               "bad \xff\xfe bytes\r\n\ttab\r\n";
    raw_begin_data(fd, buf, sizeof(buf));
    ck_assert_int_eq(send(fd, msg1, sizeof(msg1) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(msg1) - 1);
    ck_assert_int_eq(raw_command(fd, ".\r\n", buf, sizeof(buf)), 250);
    raw_begin_data(fd, buf, sizeof(buf));
    ck_assert_int_eq(raw_command(fd, "Subject: 2\r\n\r\nok\r\n.\r\n", buf, sizeof(buf)), 250);
    ck_assert_int_eq(raw_command(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
    close(fd);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 2);
    json_t *r = json_array_get(recs, 0);
    ck_assert_str_eq(str_of(r, "helo"), "c\"q\\t");
    ck_assert_str_eq(str_of(r, "subject"), "h\xc3\xa9 \"x\" \\");
    ck_assert_str_eq(str_of(r, "message_id"), "<k1@herald>");
    json_t *h = json_object_get(r, "headers");
    ck_assert_str_eq(str_of(h, "x-a"), "1  folded");
    ck_assert_str_eq(str_of(h, "x-ctl"), "a\x01"
                                         "b");
    ck_assert_str_eq(str_of(h, "subject"), "h\xc3\xa9 \"x\" \\");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "size")), (json_int_t)sizeof(msg1) - 1);
    ck_assert_ptr_nonnull(strstr(str_of(r, "raw"), "bad ?? bytes\r\n\ttab"));
    size_t declen = 0;
    const char *b64 = str_of(r, "raw_base64");
    unsigned char *dec = base64_decode(b64, strlen(b64), &declen);
    ck_assert_ptr_nonnull(dec);
    ck_assert_int_eq(declen, sizeof(msg1) - 1);
    ck_assert_int_eq(memcmp(dec, msg1, declen), 0);
    free(dec);
    json_t *r2 = json_array_get(recs, 1);
    ck_assert_str_eq(str_of(r2, "raw"), "Subject: 2\r\n\r\nok\r\n");
    ck_assert_int_eq(json_integer_value(json_object_get(r2, "size")), 18);
    ck_assert_ptr_null(json_object_get(r2, "raw_base64"));
    ck_assert_ptr_null(json_object_get(json_object_get(r2, "headers"), "x-a"));
    ck_assert(json_is_null(json_object_get(r2, "message_id")));
    json_decref(recs);
    finish_server(&sp);
}
END_TEST

/* ---- SMTP server: TLS ---- */

/* Fresh certificates for one test (each test runs in its own process). */
static void make_certs(test_certs *c)
{
    char dir[128], err[512];
    snprintf(dir, sizeof(dir), "/tmp/herald-providers-certs-%ld-%ld", (long)getpid(),
             (long)ptime_monotonic_ms());
    ck_assert_msg(test_certs_make(dir, c, err, sizeof(err)) == 0, "certificates: %s", err);
}

/* Runs the SMTP server with args and returns its exit status (it must exit
 * within 5 s: these are flag errors). */
static int run_server_expecting_exit(const char *const *args)
{
    char path[512];
    const char *argv[24];
    size_t n = 0;
    program_path(path, sizeof(path), "herald-test-smtp-server", SMTP_SERVER_PATH);
    argv[n++] = path;
    for (size_t i = 0; args[i] != NULL && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDOUT_FILENO);
        dup2(devnull, STDERR_FILENO);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    long deadline = ptime_monotonic_ms() + 5000;
    while (waitpid(pid, &status, WNOHANG) != pid) {
        if (ptime_monotonic_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        ptime_sleep_ms(10);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

START_TEST(test_smtp_tls_flags_are_checked)
{
    test_certs c;
    make_certs(&c);
    const char *no_cert[] = {"--starttls", NULL};
    const char *both[] = {"--starttls", "--tls", "--cert", c.cert, "--key", c.key, NULL};
    const char *cert_alone[] = {"--cert", c.cert, "--key", c.key, NULL};
    const char *require_alone[] = {"--require-tls", NULL};
    const char *missing[] = {"--tls", "--cert", "/nonexistent.pem", "--key", c.key, NULL};
    const char *mismatch[] = {"--tls", "--cert", c.cert, "--key", c.rogue_key, NULL};
    ck_assert_int_eq(run_server_expecting_exit(no_cert), 2);
    ck_assert_int_eq(run_server_expecting_exit(both), 2);
    ck_assert_int_eq(run_server_expecting_exit(cert_alone), 2);
    ck_assert_int_eq(run_server_expecting_exit(require_alone), 2);
    ck_assert_int_eq(run_server_expecting_exit(missing), 2);
    ck_assert_int_eq(run_server_expecting_exit(mismatch), 2);
    test_certs_remove(&c);
}
END_TEST

START_TEST(test_smtp_starttls_with_auth_is_recorded_as_tls)
{
    test_certs c;
    server_proc sp;
    long code = 0;
    make_certs(&c);
    const char *args[] = {"--starttls", "--require-tls", "--cert",     c.cert, "--key", c.key,
                          "--user",     "herald",        "--password", "pw-1", NULL};
    start_server(&sp, true, args);
    smtp_tls_opts tls = {.use_ssl = CURLUSESSL_ALL, .ca = c.ca};
    CURLcode rc = smtp_send_tls(&tls, sp.port, "herald", "pw-1", "<noreply@example.com>", two_rcpts,
                                test_mail, &code);
    ck_assert_msg(rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(rc), code);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert(json_is_true(json_object_get(rec, "tls")));
    ck_assert_str_eq(str_of(rec, "tls_mode"), "starttls");
    ck_assert_msg(strncmp(str_of(rec, "tls_version"), "TLSv1.", 6) == 0, "version %s",
                  str_of(rec, "tls_version"));
    ck_assert_str_eq(str_of(rec, "auth_user"), "herald");
    ck_assert_str_eq(str_of(rec, "raw"), test_mail);
    json_decref(recs);
    ck_assert_int_eq(stat_of(sp.control_port, "tls_handshakes"), 1);

    /* In clear text the same server takes no mail. */
    rc = smtp_send(sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail, &code);
    ck_assert_int_ne(rc, CURLE_OK);
    ck_assert_int_eq(code, 530);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 1);
    ck_assert_int_eq(stat_of(sp.control_port, "received"), 1);
    finish_server(&sp);
    test_certs_remove(&c);
}
END_TEST

START_TEST(test_smtp_implicit_tls_is_recorded_as_tls)
{
    test_certs c;
    server_proc sp;
    long code = 0;
    make_certs(&c);
    const char *args[] = {"--tls", "--cert", c.cert, "--key", c.key, NULL};
    start_server(&sp, true, args);
    /* By name as well as by address: the certificate has both. */
    smtp_tls_opts tls = {.smtps = true, .ca = c.ca, .host = "localhost"};
    CURLcode rc = smtp_send_tls(&tls, sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts,
                                test_mail, &code);
    ck_assert_msg(rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(rc), code);
    tls.host = NULL;
    rc = smtp_send_tls(&tls, sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail,
                       &code);
    ck_assert_msg(rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(rc), code);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *rec = json_array_get(recs, i);
        ck_assert(json_is_true(json_object_get(rec, "tls")));
        ck_assert_str_eq(str_of(rec, "tls_mode"), "implicit");
        ck_assert_ptr_nonnull(json_object_get(rec, "tls_cipher"));
    }
    json_decref(recs);
    ck_assert_int_eq(stat_of(sp.control_port, "tls_handshakes"), 2);
    finish_server(&sp);
    test_certs_remove(&c);
}
END_TEST

START_TEST(test_smtp_refused_certificate_gets_no_mail)
{
    test_certs c;
    server_proc rogue, wrong_name;
    long code = 0;
    make_certs(&c);
    const char *rogue_args[] = {"--starttls", "--require-tls", "--cert", c.rogue_cert,
                                "--key",      c.rogue_key,     NULL};
    const char *name_args[] = {"--tls", "--cert", c.other_cert, "--key", c.other_key, NULL};
    start_server(&rogue, true, rogue_args);
    start_server(&wrong_name, true, name_args);

    /* A CA the client does not trust. */
    smtp_tls_opts tls = {.use_ssl = CURLUSESSL_ALL, .ca = c.ca};
    CURLcode rc = smtp_send_tls(&tls, rogue.port, NULL, NULL, "<noreply@example.com>", two_rcpts,
                                test_mail, &code);
    ck_assert_int_eq(rc, CURLE_PEER_FAILED_VERIFICATION);
    ck_assert_int_eq(wait_stat(rogue.control_port, "tls_failures", 1), 1);
    ck_assert_int_eq(stat_of(rogue.control_port, "received"), 0);
    ck_assert_int_eq(stat_of(rogue.control_port, "records"), 0);
    /* The server is none the worse: a client that trusts its CA gets through. */
    tls.ca = c.rogue_ca;
    rc = smtp_send_tls(&tls, rogue.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail,
                       &code);
    ck_assert_msg(rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(rc), code);
    ck_assert_int_eq(stat_of(rogue.control_port, "records"), 1);

    /* A trusted CA, but a certificate for another name. */
    smtp_tls_opts named = {.smtps = true, .ca = c.ca};
    rc = smtp_send_tls(&named, wrong_name.port, NULL, NULL, "<noreply@example.com>", two_rcpts,
                       test_mail, &code);
    ck_assert_int_eq(rc, CURLE_PEER_FAILED_VERIFICATION);
    ck_assert_int_eq(stat_of(wrong_name.control_port, "records"), 0);
    finish_server(&rogue);
    finish_server(&wrong_name);
    test_certs_remove(&c);
}
END_TEST

/* Reads one complete reply over TLS (blocking socket, 5 s receive timeout). */
static int tls_reply(SSL *ssl, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < 1000 && len < cap - 1; i++) {
        int n = SSL_read(ssl, out + len, (int)(cap - 1 - len));
        if (n <= 0)
            break;
        len += (size_t)n;
        out[len] = '\0';
        if (len >= 2 && out[len - 1] == '\n') {
            char *last = out + len - 2;
            while (last > out && last[-1] != '\n')
                last--;
            if (strlen(last) >= 4 && last[3] == ' ')
                return atoi(last);
        }
    }
    return -1;
}

static int tls_command(SSL *ssl, const char *cmd, char *out, size_t cap)
{
    ck_assert_int_eq(SSL_write(ssl, cmd, (int)strlen(cmd)), (int)strlen(cmd));
    return tls_reply(ssl, out, cap);
}

START_TEST(test_smtp_starttls_drops_clear_text_pipelined_behind_it)
{
    test_certs c;
    server_proc sp;
    char buf[4096];
    make_certs(&c);
    const char *args[] = {"--starttls", "--require-tls", "--cert", c.cert, "--key", c.key, NULL};
    start_server(&sp, true, args);
    int fd = raw_connect(sp.port);
    ck_assert_int_eq(raw_reply(fd, buf, sizeof(buf)), 220);
    ck_assert_int_eq(raw_command(fd, "EHLO client.test\r\n", buf, sizeof(buf)), 250);
    ck_assert_ptr_nonnull(strstr(buf, "250-STARTTLS"));
    ck_assert_int_eq(raw_command(fd, "MAIL FROM:<a@example.com>\r\n", buf, sizeof(buf)), 530);
    /* A command smuggled in clear text behind STARTTLS must never run. */
    ck_assert_int_eq(raw_command(fd, "STARTTLS\r\nRSET\r\n", buf, sizeof(buf)), 220);

    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, c.ca, NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    ck_assert_ptr_nonnull(ssl);
    SSL_set_fd(ssl, fd);
    ck_assert_int_eq(SSL_set1_host(ssl, "localhost"), 1);
    ck_assert_int_eq(SSL_connect(ssl), 1);
    /* The first answer over TLS is to EHLO: the RSET was dropped. */
    ck_assert_int_eq(tls_command(ssl, "EHLO client.test\r\n", buf, sizeof(buf)), 250);
    ck_assert_msg(strncmp(buf, "250-herald-test-smtp greets client.test", 39) == 0, "%s", buf);
    ck_assert_ptr_null(strstr(buf, "STARTTLS"));
    ck_assert_int_eq(tls_command(ssl, "STARTTLS\r\n", buf, sizeof(buf)), 503);
    ck_assert_int_eq(tls_command(ssl, "MAIL FROM:<a@example.com>\r\n", buf, sizeof(buf)), 250);
    ck_assert_int_eq(tls_command(ssl, "RCPT TO:<b@example.com>\r\n", buf, sizeof(buf)), 250);
    ck_assert_int_eq(tls_command(ssl, "DATA\r\n", buf, sizeof(buf)), 354);
    ck_assert_int_eq(tls_command(ssl, "Subject: over tls\r\n\r\nhi\r\n.\r\n", buf, sizeof(buf)),
                     250);
    ck_assert_int_eq(tls_command(ssl, "QUIT\r\n", buf, sizeof(buf)), 221);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);

    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert_int_eq(json_array_size(recs), 1);
    json_t *rec = json_array_get(recs, 0);
    ck_assert(json_is_true(json_object_get(rec, "tls")));
    ck_assert_str_eq(str_of(rec, "helo"), "client.test");
    json_decref(recs);
    finish_server(&sp);
    test_certs_remove(&c);
}
END_TEST

typedef struct held_mail {
    int port;
    const char *ca;
    CURLcode rc;
    long code;
} held_mail;

static void *held_mail_run(void *arg)
{
    held_mail *hm = arg;
    smtp_tls_opts tls = {.smtps = true, .ca = hm->ca};
    hm->rc = smtp_send_tls(&tls, hm->port, NULL, NULL, "<noreply@example.com>", two_rcpts,
                           test_mail, &hm->code);
    return NULL;
}

START_TEST(test_smtp_faults_apply_over_tls)
{
    test_certs c;
    server_proc sp;
    long code = 0;
    make_certs(&c);
    const char *args[] = {"--tls", "--cert", c.cert, "--key", c.key, NULL};
    start_server(&sp, true, args);
    smtp_tls_opts tls = {.smtps = true, .ca = c.ca};

    /* An injected 451 at the end of DATA. */
    post_control(sp.control_port, "{\"fail_status\":451,\"fail_count\":1,\"fail_stage\":\"data\"}");
    CURLcode rc = smtp_send_tls(&tls, sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts,
                                test_mail, &code);
    ck_assert_int_ne(rc, CURLE_OK);
    ck_assert_int_eq(code, 451);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 0);

    /* Latency before the final reply. */
    post_control(sp.control_port, "{\"latency_ms\":300}");
    long t0 = ptime_monotonic_ms();
    rc = smtp_send_tls(&tls, sp.port, NULL, NULL, "<noreply@example.com>", two_rcpts, test_mail,
                       &code);
    ck_assert_int_eq(rc, CURLE_OK);
    ck_assert_int_ge(ptime_monotonic_ms() - t0, 290);
    post_control(sp.control_port, "{\"reset\":true}");

    /* A hang at RCPT holds the TLS session until it is lifted. */
    post_control(sp.control_port, "{\"hang\":true,\"hang_stage\":\"rcpt\"}");
    held_mail hm = {.port = sp.port, .ca = c.ca};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, held_mail_run, &hm), 0);
    ck_assert_int_eq(wait_stat(sp.control_port, "received", 1), 1);
    ptime_sleep_ms(300);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 1);
    post_control(sp.control_port, "{\"hang\":false}");
    pthread_join(t, NULL);
    ck_assert_msg(hm.rc == CURLE_OK, "curl: %s (reply %ld)", curl_easy_strerror(hm.rc), hm.code);
    ck_assert_int_eq(stat_of(sp.control_port, "records"), 2);
    json_t *recs = get_json(sp.control_port, "/_records");
    ck_assert(json_is_true(json_object_get(json_array_get(recs, 1), "tls")));
    json_decref(recs);
    finish_server(&sp);
    test_certs_remove(&c);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_sms_json_is_accepted_and_recorded),
    TEST_ENTRY(test_sms_without_idempotency_key_header_is_rejected_400),
    TEST_ENTRY(test_injected_429_carries_retry_after_then_succeeds),
    TEST_ENTRY(test_same_idempotency_key_twice_is_accepted_and_counted_duplicate),
    TEST_ENTRY(test_bearer_token_is_required_when_configured),
    TEST_ENTRY(test_push_is_accepted_and_dead_token_gets_404),
    TEST_ENTRY(test_twilio_form_with_basic_auth_is_accepted),
    TEST_ENTRY(test_twilio_wrong_auth_is_401_with_twilio_error),
    TEST_ENTRY(test_twilio_signature_algorithm_matches_twilios_examples),
    TEST_ENTRY(test_twilio_status_callbacks_come_in_order_and_signed),
    TEST_ENTRY(test_twilio_status_callbacks_duplicate_and_reorder_when_asked),
    TEST_ENTRY(test_twilio_status_callback_answered_500_is_retried),
    TEST_ENTRY(test_twilio_status_callbacks_of_many_messages_keep_order_per_message),
    TEST_ENTRY(test_twilio_message_without_status_callback_gets_none),
    TEST_ENTRY(test_fcm_message_is_accepted),
    TEST_ENTRY(test_fcm_dead_token_is_unregistered),
    TEST_ENTRY(test_injected_latency_delays_the_answer),
    TEST_ENTRY(test_hang_holds_requests_until_lifted),
    TEST_ENTRY(test_control_rejects_unknown_settings),
    TEST_ENTRY(test_sigterm_flushes_the_record_file),
    TEST_ENTRY(test_smtp_auth_plain_message_is_recorded_with_message_id_and_subject),
    TEST_ENTRY(test_smtp_wrong_password_is_refused_535),
    TEST_ENTRY(test_smtp_injected_451_at_end_of_data),
    TEST_ENTRY(test_smtp_injected_550_at_rcpt),
    TEST_ENTRY(test_smtp_injected_latency_delays_the_final_reply),
    TEST_ENTRY(test_smtp_pipelined_session_and_unadvertised_starttls),
    TEST_ENTRY(test_smtp_pipelined_replies_share_one_write),
    TEST_ENTRY(test_smtp_record_escapes_and_keeps_raw_bytes),
    TEST_ENTRY(test_smtp_tls_flags_are_checked),
    TEST_ENTRY(test_smtp_starttls_with_auth_is_recorded_as_tls),
    TEST_ENTRY(test_smtp_implicit_tls_is_recorded_as_tls),
    TEST_ENTRY(test_smtp_refused_certificate_gets_no_mail),
    TEST_ENTRY(test_smtp_starttls_drops_clear_text_pipelined_behind_it),
    TEST_ENTRY(test_smtp_faults_apply_over_tls),
};

TEST_MAIN("providers", cases)

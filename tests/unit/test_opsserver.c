/*
 * opsserver: over real HTTP on an ephemeral loopback port, /metrics serves
 * the registry, /healthz and /readyz follow their checks, other paths and
 * methods get JSON errors, and bad listen addresses are refused clearly.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "opsserver.h"
#include "testutil.h"

typedef struct reply {
    long status;
    char body[8192];
    size_t len;
    char ctype[128];
    char allow[64];
} reply;

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    size_t room = sizeof(r->body) - 1 - r->len;
    size_t take = len < room ? len : room;
    memcpy(r->body + r->len, data, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    if (len > 6 && strncasecmp(data, "Allow:", 6) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(len - 6), data + 6);
    /* Trim the leading space and the CRLF. */
    char *p = r->allow;
    while (*p == ' ')
        memmove(p, p + 1, strlen(p));
    p[strcspn(p, "\r\n")] = '\0';
    return len;
}

/* Fetches http://host:port/path with method ("GET", "HEAD", "POST", ...). */
static reply fetch(const char *host, uint16_t port, const char *method, const char *path)
{
    reply r;
    memset(&r, 0, sizeof(r));
    char url[256];
    snprintf(url, sizeof(url), "http://%s:%u%s", host, (unsigned)port, path);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{}");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(h);
    ck_assert_msg(rc == CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    char *ct = NULL;
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct != NULL)
        snprintf(r.ctype, sizeof(r.ctype), "%s", ct);
    curl_easy_cleanup(h);
    return r;
}

/* Checks state the test flips between requests. */
typedef struct probe_state {
    atomic_bool healthy;
    atomic_bool ready;
    const char *reason;
} probe_state;

static bool health_check(void *ctx, char *reason, size_t reasonlen)
{
    probe_state *st = ctx;
    if (atomic_load(&st->healthy))
        return true;
    snprintf(reason, reasonlen, "%s", st->reason);
    return false;
}

static bool ready_check(void *ctx, char *reason, size_t reasonlen)
{
    probe_state *st = ctx;
    if (atomic_load(&st->ready))
        return true;
    snprintf(reason, reasonlen, "postgres: connection refused");
    return false;
}

static opsserver *start_ok(const char *addr, metrics_registry *reg, opsserver_check_fn h,
                           opsserver_check_fn r, void *ctx)
{
    char err[256] = "";
    opsserver *s = opsserver_start(addr, reg, h, r, ctx, err, sizeof(err));
    ck_assert_msg(s != NULL, "start %s: %s", addr, err);
    ck_assert_uint_ne(opsserver_port(s), 0);
    return s;
}

/* Parses body and returns the string at obj[k1][k2] (k2 may be NULL). */
static char *json_str(const char *body, const char *k1, const char *k2)
{
    json_error_t jerr;
    json_t *root = json_loads(body, 0, &jerr);
    ck_assert_msg(root != NULL, "not JSON: %s", body);
    json_t *v = json_object_get(root, k1);
    if (k2 != NULL)
        v = json_object_get(v, k2);
    char *s = json_is_string(v) ? strdup(json_string_value(v)) : NULL;
    json_decref(root);
    return s;
}

static void assert_json_field(const char *body, const char *k1, const char *k2, const char *want)
{
    char *got = json_str(body, k1, k2);
    ck_assert_msg(got != NULL && strcmp(got, want) == 0, "%s.%s: want %s in %s", k1, k2 ? k2 : "",
                  want, body);
    free(got);
}

START_TEST(test_opsserver_serves_metrics_on_an_ephemeral_port)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    metrics_registry *reg = metrics_registry_new();
    metrics_counter *c =
        metrics_counter_get(reg, "herald_sent_total", "Notifications sent.", "channel=\"email\"");
    metrics_counter_add(c, 41);
    opsserver *s = start_ok("127.0.0.1:0", reg, NULL, NULL, NULL);

    metrics_counter_inc(c);
    reply r = fetch("127.0.0.1", opsserver_port(s), "GET", "/metrics");
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0, "type %s", r.ctype);
    ck_assert_str_eq(r.body, "# HELP herald_sent_total Notifications sent.\n"
                             "# TYPE herald_sent_total counter\n"
                             "herald_sent_total{channel=\"email\"} 42\n");

    /* Query strings do not change the route. */
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/metrics?name=x");
    ck_assert_int_eq(r.status, 200);

    opsserver_stop(s);
    metrics_registry_free(reg);
    curl_global_cleanup();
}
END_TEST

START_TEST(test_opsserver_healthz_answers_200_then_503_with_the_reason)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    probe_state st = {.reason = "kafka: all brokers down"};
    atomic_init(&st.healthy, true);
    atomic_init(&st.ready, true);
    opsserver *s = start_ok("127.0.0.1:0", NULL, health_check, NULL, &st);
    uint16_t port = opsserver_port(s);

    reply r = fetch("127.0.0.1", port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.ctype, "application/json");
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");

    atomic_store(&st.healthy, false);
    r = fetch("127.0.0.1", port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 503);
    assert_json_field(r.body, "status", NULL, "unhealthy");
    assert_json_field(r.body, "reason", NULL, "kafka: all brokers down");

    /* A reason that is not UTF-8 still yields valid JSON. */
    st.reason = "bad \xff byte";
    r = fetch("127.0.0.1", port, "GET", "/healthz");
    ck_assert_int_eq(r.status, 503);
    assert_json_field(r.body, "status", NULL, "unhealthy");
    assert_json_field(r.body, "reason", NULL, "(reason not valid UTF-8)");

    /* HEAD answers like GET, without a body. */
    atomic_store(&st.healthy, true);
    r = fetch("127.0.0.1", port, "HEAD", "/healthz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_uint_eq(r.len, 0);

    opsserver_stop(s);
    curl_global_cleanup();
}
END_TEST

START_TEST(test_opsserver_readyz_follows_its_check_and_is_absent_without_one)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    probe_state st = {.reason = ""};
    atomic_init(&st.healthy, true);
    atomic_init(&st.ready, false);
    opsserver *s = start_ok("127.0.0.1:0", NULL, health_check, ready_check, &st);

    reply r = fetch("127.0.0.1", opsserver_port(s), "GET", "/readyz");
    ck_assert_int_eq(r.status, 503);
    assert_json_field(r.body, "status", NULL, "not_ready");
    assert_json_field(r.body, "reason", NULL, "postgres: connection refused");
    /* Liveness is separate from readiness. */
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    atomic_store(&st.ready, true);
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/readyz");
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.body, "{\"status\":\"ok\"}");
    opsserver_stop(s);

    /* No ready check and no registry: neither /readyz nor /metrics exists,
     * and /healthz with no check is simply alive. */
    s = start_ok("127.0.0.1:0", NULL, NULL, NULL, NULL);
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/readyz");
    ck_assert_int_eq(r.status, 404);
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/metrics");
    ck_assert_int_eq(r.status, 404);
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    opsserver_stop(s);
    curl_global_cleanup();
}
END_TEST

START_TEST(test_opsserver_unknown_path_is_a_json_404)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    metrics_registry *reg = metrics_registry_new();
    opsserver *s = start_ok("127.0.0.1:0", reg, NULL, NULL, NULL);
    static const char *const paths[] = {"/", "/metrics/", "/v1/events", "/healthzz"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        reply r = fetch("127.0.0.1", opsserver_port(s), "GET", paths[i]);
        ck_assert_msg(r.status == 404, "%s: %ld", paths[i], r.status);
        ck_assert_str_eq(r.ctype, "application/json");
        assert_json_field(r.body, "error", "code", "not_found");
        char *msg = json_str(r.body, "error", "message");
        ck_assert_ptr_nonnull(msg);
        ck_assert_ptr_nonnull(strstr(msg, "/metrics"));
        free(msg);
    }
    /* Unknown path wins over unknown method. */
    reply r = fetch("127.0.0.1", opsserver_port(s), "DELETE", "/nope");
    ck_assert_int_eq(r.status, 404);
    opsserver_stop(s);
    metrics_registry_free(reg);
    curl_global_cleanup();
}
END_TEST

START_TEST(test_opsserver_other_methods_are_405_with_allow)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    metrics_registry *reg = metrics_registry_new();
    opsserver *s = start_ok("127.0.0.1:0", reg, NULL, NULL, NULL);
    static const char *const methods[] = {"POST", "PUT", "DELETE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        reply r = fetch("127.0.0.1", opsserver_port(s), methods[i], "/metrics");
        ck_assert_msg(r.status == 405, "%s: %ld", methods[i], r.status);
        ck_assert_str_eq(r.allow, "GET, HEAD");
        assert_json_field(r.body, "error", "code", "method_not_allowed");
    }
    reply r = fetch("127.0.0.1", opsserver_port(s), "POST", "/healthz");
    ck_assert_int_eq(r.status, 405);
    /* The server is still fine afterwards. */
    r = fetch("127.0.0.1", opsserver_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    opsserver_stop(s);
    metrics_registry_free(reg);
    curl_global_cleanup();
}
END_TEST

START_TEST(test_opsserver_rejects_bad_addresses_with_a_clear_message)
{
    static const struct {
        const char *addr;
        const char *says;
    } bad[] = {
        {"", "empty listen address"},
        {"9100", "missing port"},
        {":9100", "missing host"},
        {"127.0.0.1", "missing port"},
        {"127.0.0.1:", "port must be 0..65535"},
        {"127.0.0.1:65536", "port must be 0..65535"},
        {"127.0.0.1:-1", "port must be 0..65535"},
        {"127.0.0.1:80x", "port must be 0..65535"},
        {"127.0.0.1:000009100", "port must be 0..65535"},
        {"256.0.0.1:80", "is not an IPv4 address"},
        {"example.com:80", "is not an IPv4 address"},
        {"::1:9100", "brackets"},
        {"[::1]9100", "expected host:port"},
        {"[::1:9100", "expected host:port"},
        {"[]:9100", "bad IPv6 address"},
        {"[zz::1]:9100", "is not an IPv6 address"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        opsserver *s = opsserver_start(bad[i].addr, NULL, NULL, NULL, NULL, err, sizeof(err));
        ck_assert_msg(s == NULL, "accepted %s", bad[i].addr);
        ck_assert_msg(strstr(err, bad[i].says) != NULL, "%s: %s", bad[i].addr, err);
        if (bad[i].addr[0] != '\0')
            ck_assert_msg(strstr(err, bad[i].addr) != NULL, "%s not named: %s", bad[i].addr, err);
    }
    /* err may be NULL. */
    ck_assert_ptr_null(opsserver_start("nope", NULL, NULL, NULL, NULL, NULL, 0));

    struct sockaddr_storage ss;
    socklen_t len;
    char err[256];
    ck_assert_int_eq(opsserver_parse_addr("localhost:9100", &ss, &len, err, sizeof(err)), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_uint_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9100);
    ck_assert_uint_eq(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), INADDR_LOOPBACK);
    ck_assert_int_eq(opsserver_parse_addr("0.0.0.0:65535", &ss, &len, err, sizeof(err)), 0);
    ck_assert_int_eq(opsserver_parse_addr("[::1]:0", &ss, &len, err, sizeof(err)), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    ck_assert_uint_eq(len, sizeof(struct sockaddr_in6));
}
END_TEST

START_TEST(test_opsserver_reports_a_port_already_in_use)
{
    opsserver *a = start_ok("127.0.0.1:0", NULL, NULL, NULL, NULL);
    char addr[64], err[256] = "";
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)opsserver_port(a));
    opsserver *b = opsserver_start(addr, NULL, NULL, NULL, NULL, err, sizeof(err));
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(err, "cannot listen on") != NULL && strstr(err, addr) != NULL, "%s", err);
    opsserver_stop(a);
    opsserver_stop(NULL);
}
END_TEST

/* Whether this host can bind the IPv6 loopback at all (containers often
 * cannot). */
static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
    close(fd);
    return ok;
}

START_TEST(test_opsserver_listens_on_ipv6_loopback)
{
    if (!have_ipv6_loopback()) {
        fprintf(stderr, "test_opsserver_listens_on_ipv6_loopback: no IPv6 loopback, skipped\n");
        return;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    opsserver *s = start_ok("[::1]:0", NULL, NULL, NULL, NULL);
    reply r = fetch("[::1]", opsserver_port(s), "GET", "/healthz");
    ck_assert_int_eq(r.status, 200);
    opsserver_stop(s);
    curl_global_cleanup();
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_opsserver_serves_metrics_on_an_ephemeral_port),
    TEST_ENTRY(test_opsserver_healthz_answers_200_then_503_with_the_reason),
    TEST_ENTRY(test_opsserver_readyz_follows_its_check_and_is_absent_without_one),
    TEST_ENTRY(test_opsserver_unknown_path_is_a_json_404),
    TEST_ENTRY(test_opsserver_other_methods_are_405_with_allow),
    TEST_ENTRY(test_opsserver_rejects_bad_addresses_with_a_clear_message),
    TEST_ENTRY(test_opsserver_reports_a_port_already_in_use),
    TEST_ENTRY(test_opsserver_listens_on_ipv6_loopback),
};

TEST_MAIN("opsserver", cases)

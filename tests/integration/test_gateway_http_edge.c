/*
 * The gateway's HTTP edge from a raw socket (docs/security.md): request
 * smuggling heads get one JSON 400 and the connection closes with nothing
 * after it run; slow clients cannot hold the connection limit; an answer
 * made before a large body was read reaches the client (Python's urllib
 * and a plain socket); and errors are one JSON answer.  The gateway keeps
 * serving other clients throughout.
 */
#include "gateway_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_port(const h_gateway *g)
{
    return atoi(strrchr(g->base, ':') + 1);
}

static int dial(const h_gateway *g)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port(g))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Sends what it can of data (the server may close early: errors are not
 * the client's business here). */
static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until the server closes, at most 10 s; true when it did close. */
static bool read_to_close(int fd, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < 100; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, out + len, cap - 1 - len, 0);
        if (n <= 0)
            return n == 0 || len > 0;
        len += (size_t)n;
        out[len] = '\0';
        if (len + 1 >= cap)
            return false;
    }
    return false;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

/* One answer, its status, and a JSON body {"error":{...}}. */
static void assert_one_json_error(const char *resp, int status, const char *what)
{
    char line[32];
    snprintf(line, sizeof line, "HTTP/1.1 %d ", status);
    ck_assert_msg(strncmp(resp, line, strlen(line)) == 0, "%s: %s", what, resp);
    ck_assert_msg(count(resp, "HTTP/1.") == 1, "%s: more than one answer: %s", what, resp);
    ck_assert_msg(strstr(resp, "Content-Type: application/json") != NULL, "%s: %s", what, resp);
    const char *body = strstr(resp, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    json_error_t je;
    json_t *doc = json_loads(body + 4, 0, &je);
    ck_assert_msg(doc != NULL && json_is_object(json_object_get(doc, "error")), "%s: %s", what,
                  resp);
    json_decref(doc);
}

static void assert_still_serving(h_gateway *g)
{
    h_resp r;
    h_http(g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
}

START_TEST(test_smuggling_heads_get_one_400_and_the_connection_closes)
{
    h_gateway g;
    h_start(&g, NULL);
    char smuggled[512];
    const char *ev = "{\"type\":\"edge.smuggled\",\"user_id\":\"u-edge\"}";
    snprintf(smuggled, sizeof smuggled,
             "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             h_pubkey, strlen(ev), ev);
    const char *heads[] = {
        "Content-Length: 0\r\nContent-Length: %zu\r\n",
        "Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: xchunked\r\nX-Len: %zu\r\n",
        "Transfer-Encoding: chunked, gzip\r\nX-Len: %zu\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\nX-Len: %zu\r\n",
        "Content-Length : %zu\r\n",
        "Authorization: Bearer a\r\nX-Len: %zu\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        char head[256], req[2048], resp[8192];
        snprintf(head, sizeof head, heads[i], strlen(smuggled));
        int n = snprintf(req, sizeof req,
                         "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                         "Content-Type: application/json\r\n%s\r\n%s",
                         h_pubkey, head, smuggled);
        int fd = dial(&g);
        send_all(fd, req, (size_t)n);
        ck_assert_msg(read_to_close(fd, resp, sizeof resp), "case %zu kept open: %s", i, resp);
        close(fd);
        assert_one_json_error(resp, 400, head);
        ck_assert_msg(strstr(resp, "malformed_request") != NULL, "%s", resp);
    }
    /* Lengths libmicrohttpd refuses itself (docs/security.md): it answers
     * and closes, and the smuggled request is not run either. */
    const char *mhd_heads[] = {"Content-Length: 5, %zu\r\n", "Content-Length: -%zu\r\n"};
    for (size_t i = 0; i < 2; i++) {
        char head[256], req[2048], resp[8192];
        snprintf(head, sizeof head, mhd_heads[i], strlen(smuggled));
        int n = snprintf(req, sizeof req, "POST /v1/events HTTP/1.1\r\nHost: x\r\n%s\r\n%s", head,
                         smuggled);
        int fd = dial(&g);
        send_all(fd, req, (size_t)n);
        ck_assert_msg(read_to_close(fd, resp, sizeof resp), "%s kept open: %s", head, resp);
        close(fd);
        ck_assert_msg(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s", resp);
        ck_assert_msg(strstr(resp, " 202 ") == NULL, "%s ran the smuggled request", head);
    }
    assert_still_serving(&g);
    h_stop(&g);
}
END_TEST

START_TEST(test_slow_clients_cannot_hold_the_connection_limit)
{
    h_gateway g;
    h_start(&g, "--http-max-connections", "8", "--http-header-timeout", "2s",
            "--http-min-body-rate", "1000", NULL);
    /* Eight connections, the limit: half dribble a head, half a body. */
    enum { N = 8 };
    int fd[N];
    bool closed[N] = {false};
    char resp[N][1024];
    for (int i = 0; i < N; i++) {
        fd[i] = dial(&g);
        resp[i][0] = '\0';
        if (i % 2 == 1) {
            char head[512];
            int n = snprintf(head, sizeof head,
                             "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                             "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
                             h_pubkey);
            send_all(fd[i], head, (size_t)n);
        } else {
            send_all(fd[i], "GET /healthz HTTP/1.1\r\n", 23);
        }
    }
    int open_left = N;
    for (int tick = 0; tick < 60 && open_left > 0; tick++) {
        for (int i = 0; i < N; i++) {
            if (closed[i])
                continue;
            send_all(fd[i], i % 2 == 1 ? "{" : "X", 1);
            struct pollfd p = {.fd = fd[i], .events = POLLIN};
            if (poll(&p, 1, 0) > 0) {
                size_t have = strlen(resp[i]);
                ssize_t n = recv(fd[i], resp[i] + have, sizeof resp[i] - 1 - have, 0);
                if (n > 0)
                    resp[i][have + (size_t)n] = '\0';
                else {
                    closed[i] = true;
                    open_left--;
                }
            }
        }
        testsupport_sleep_ms(500);
    }
    ck_assert_int_eq(open_left, 0);
    for (int i = 0; i < N; i++) {
        close(fd[i]);
        assert_one_json_error(resp[i], 408, "slow client");
        ck_assert_msg(strstr(resp[i], i % 2 == 1 ? "HERALD_HTTP_MIN_BODY_RATE"
                                                 : "HERALD_HTTP_HEADER_TIMEOUT") != NULL,
                      "%s", resp[i]);
    }
    /* The limit is free again for a normal client. */
    h_resp r;
    for (int i = 0; i < 50; i++) {
        h_http(&g, "GET", "/healthz", NULL, NULL, NULL, NULL, &r);
        if (r.status == 200)
            break;
        h_resp_clear(&r);
        testsupport_sleep_ms(100);
    }
    ck_assert_int_eq(r.status, 200);
    h_resp_clear(&r);
    h_stop(&g);
}
END_TEST

/* Posts a 2 MiB body with a plain socket, writing all of it before reading. */
static void plain_early_answer(h_gateway *g, const char *key, int status)
{
    size_t big = 2u << 20;
    char *body = malloc(big);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', big);
    char head[512], resp[8192];
    int n = snprintf(head, sizeof head,
                     "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     key, big);
    int fd = dial(g);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, big);
    free(body);
    ck_assert(read_to_close(fd, resp, sizeof resp));
    close(fd);
    assert_one_json_error(resp, status, "early answer");
}

START_TEST(test_early_answers_reach_the_client)
{
    h_gateway g;
    h_start(&g, NULL);
    for (int i = 0; i < 5; i++) {
        plain_early_answer(&g, h_pubkey, 413);
        plain_early_answer(&g, "hk_not_a_key", 401);
    }
    /* Python's urllib writes the whole body before it reads the answer. */
    char cmd[1024];
    snprintf(
        cmd, sizeof cmd,
        "/usr/bin/python3 -c '\n"
        "import sys, urllib.request, urllib.error\n"
        "ok = 0\n"
        "for i in range(10):\n"
        "    r = urllib.request.Request(sys.argv[1] + \"/v1/events\", data=b\"x\" * (2 << 20),\n"
        "        headers={\"Content-Type\": \"application/json\", \"Authorization\": \"Bearer \" + "
        "sys.argv[2]})\n"
        "    try:\n"
        "        urllib.request.urlopen(r, timeout=20)\n"
        "    except urllib.error.HTTPError as e:\n"
        "        ok += e.code == 413 and e.read().startswith(b\"{\\\"error\\\"\")\n"
        "    except OSError as e:\n"
        "        print(e, file=sys.stderr)\n"
        "print(ok)\n"
        "' %s %s",
        g.base, h_pubkey);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[32] = "";
    ck_assert_ptr_nonnull(fgets(out, sizeof out, p));
    pclose(p);
    ck_assert_int_eq(atoi(out), 10);
    assert_still_serving(&g);
    h_stop(&g);
}
END_TEST

static void raw_error(h_gateway *g, const char *req, int status, const char *must_say,
                      const char *must_not_say)
{
    char resp[16384];
    int fd = dial(g);
    send_all(fd, req, strlen(req));
    /* Keep-alive answers leave the connection open: read what came. */
    (void)read_to_close(fd, resp, sizeof resp);
    close(fd);
    assert_one_json_error(resp, status, req);
    if (must_say != NULL)
        ck_assert_msg(strstr(resp, must_say) != NULL, "%s", resp);
    if (must_not_say != NULL)
        ck_assert_msg(strstr(resp, must_not_say) == NULL, "%s", resp);
}

START_TEST(test_errors_are_one_json_answer)
{
    h_gateway g;
    h_start(&g, NULL);
    char req[1024];
    raw_error(&g,
              "GET /v1/events/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n"
              "Authorization: Bearer b\r\nConnection: close\r\n\r\n",
              400, "Authorization", NULL);
    raw_error(&g,
              "GET /v1/events/x HTTP/1.1\r\nHost: x\r\nAuthorization: Basic dTpw\r\n"
              "Connection: close\r\n\r\n",
              401, "must be Bearer", NULL);
    const char *bodies[][2] = {
        {"{\"type\":\"t\",\"user_id\":\"u\",\"data\":{\"n\":123456789012345678901234567890}}",
         "64 bits"},
        {"{\"type\":\"t\",\"user_id\":\"u\\u0000\"}", "NUL"},
    };
    for (size_t i = 0; i < 2; i++) {
        snprintf(req, sizeof req,
                 "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
                 "\r\n%s",
                 h_pubkey, strlen(bodies[i][0]), bodies[i][0]);
        raw_error(&g, req, 400, bodies[i][1], "JSON_ALLOW_NUL");
    }
    assert_still_serving(&g);
    h_stop(&g);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_smuggling_heads_get_one_400_and_the_connection_closes),
    TEST_ENTRY(test_slow_clients_cannot_hold_the_connection_limit),
    TEST_ENTRY(test_early_answers_reach_the_client),
    TEST_ENTRY(test_errors_are_one_json_answer),
};

TEST_MAIN_TIMEOUT("gateway_http_edge", cases, 120)

/*
 * e2e_harness: a whole Herald under test — the gateway, the dispatcher and
 * the three workers as child processes, exactly as an operator runs them,
 * on a scratch database and a topic prefix no other run uses, delivering to
 * the local test providers (herald-test-smtp-server for email,
 * herald-test-http-provider for SMS and push).
 *
 * A suite drives it only from the outside: the HTTP API with an admin key,
 * the providers' /_control and /_records, and the dead-letter topic.  Daemons
 * can be killed and restarted with the same configuration (e2e_kill,
 * e2e_restart) for failure tests.
 *
 * Every wait is bounded in count and time.  e2e_down() stops every child
 * (gracefully, reporting the exit status), deletes the topics, drops the
 * database and removes the scratch directory (kept with HERALD_TEST_KEEP=1).
 * Only 127.0.0.1 is used.
 */
#ifndef HERALD_TESTS_E2E_HARNESS_H
#define HERALD_TESTS_E2E_HARNESS_H

#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "apikey.h"
#include "ids.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "testsupport.h"
#include "testutil.h"
#include "timeutil.h"
#include "topics.h"

/* The longest any one phase of a suite may wait. */
#define E2E_PHASE_MS       120000L
#define E2E_PARTITIONS     "6"
#define E2E_PROVIDER_TOKEN "e2e-provider-token"
/* Signs the user tokens the gateway mints and herald-realtime checks. */
#define E2E_USER_TOKEN_SECRET "e2e-user-token-secret-of-32-bytes-or-more"
#define E2E_SMTP_USER         "herald"
#define E2E_SMTP_PASSWORD     "e2e-smtp-secret"

/*
 * The children.  e2e_up() starts the first nine; the second instances of
 * the dispatcher and the workers (same groups, their own ids) run only when
 * a suite adds them with e2e_add_instance(), and herald-webhooks only when
 * it calls e2e_add_webhooks().
 */
enum {
    E2E_SMTP,
    E2E_HTTP,
    E2E_DISPATCHER,
    E2E_EMAIL,
    E2E_SMS,
    E2E_PUSH,
    E2E_INAPP,
    E2E_GATEWAY,
    E2E_REALTIME,
    E2E_DISPATCHER_2,
    E2E_EMAIL_2,
    E2E_SMS_2,
    E2E_PUSH_2,
    E2E_REALTIME_2,
    E2E_WEBHOOKS,
    E2E_NPROCS
};

static const char *const e2e_proc_names[E2E_NPROCS] = {
    "smtp",           "http",         "dispatcher",    "worker-email", "worker-sms",
    "worker-push",    "worker-inapp", "gateway",       "realtime",     "dispatcher-2",
    "worker-email-2", "worker-sms-2", "worker-push-2", "realtime-2",   "webhooks"};

typedef struct e2e_proc {
    const char *name;
    pid_t pid;
    int starts;
    bool stopped; /* stopped on purpose (killed or terminated by the test), not crashed */
    int port;     /* SMTP / HTTP provider port, the gateway's HTTP port, a daemon's ops port */
    int live;     /* herald-realtime: its WebSocket and SSE port */
    int control;  /* the provider's control port (HTTP provider: port) */
    char log[300];
    char *argv[16];
    char *env[48];
} e2e_proc;

typedef struct e2e_env {
    const char *brokers;
    char *db_url;
    char prefix[40];
    char dir[128];
    char api_key[APIKEY_SIZE];
    char base[64]; /* http://127.0.0.1:PORT of the gateway */
    e2e_proc procs[E2E_NPROCS];
    CURL *curl;
} e2e_env;

/* ------------------------------------------------------------ small helpers */

static inline char *e2e_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *e2e_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/*
 * A suite's size from the environment (the soak variables, such as
 * HERALD_E2E_CRASH_EVENTS): a positive integer, or def when unset or
 * empty; anything outside [1, max] fails the case.
 */
static inline int e2e_env_count(const char *name, int def, int max)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    ck_assert_msg(*end == '\0' && n >= 1 && n <= max, "%s must be 1..%d, got \"%s\"", name, max, v);
    return (int)n;
}

/* Prints the last bytes of a child's log (for failure messages). */
static inline void e2e_dump_log(const e2e_proc *p)
{
    char tail[3001];
    if (access(p->log, R_OK) == 0)
        fprintf(stderr, "---- %s (last 3000 bytes)\n%s\n----\n", p->log,
                testsupport_file_tail(p->log, tail, sizeof tail));
}

/* Waits (bounded) for "<marker><port>" in a child's log; returns the port. */
static inline int e2e_port_from_log(e2e_proc *p, const char *marker, long timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 10000 && timeutil_monotonic_ms() < deadline; i++) {
        char *s = testsupport_read_file(p->log, NULL);
        const char *m = s ? strstr(s, marker) : NULL;
        int port = m ? atoi(m + strlen(marker)) : 0;
        free(s);
        if (port > 0)
            return port;
        if (p->pid > 0 && waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            break;
        }
        testsupport_sleep_ms(50);
    }
    e2e_dump_log(p);
    ck_abort_msg("%s did not log \"%s<port>\"", p->name, marker);
    return 0;
}

/* ------------------------------------------------------------ processes */

/*
 * Starts p (argv and env already filled: env entries "K=V" are added to this
 * process's environment).  Output goes to p->log; with listen, stdout is read
 * for the test providers' "listening on" line first.
 */
static inline void e2e_spawn(e2e_proc *p, bool listen)
{
    int listen_fd = -1;
    pid_t pid = testsupport_spawn_logged(p->argv[0], p->argv, (const char *const *)p->env, p->log,
                                         listen ? &listen_fd : NULL, false);
    ck_assert_int_gt(pid, 0);
    p->pid = pid;
    p->starts++;
    p->stopped = false;
    if (!listen)
        return;
    char line[512];
    int rc =
        testsupport_read_listen_line(listen_fd, 15000, &p->port, &p->control, line, sizeof line);
    close(listen_fd);
    ck_assert_msg(rc == 0, "%s did not report its port: \"%s\"", p->name, line);
}

/* Whether p still runs (reaps it when it does not). */
static inline bool e2e_alive(e2e_proc *p)
{
    if (p->pid <= 0)
        return false;
    int st;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        fprintf(stderr, "e2e: %s (pid %d) exited, status 0x%x\n", p->name, (int)p->pid, st);
        p->pid = 0;
        return false;
    }
    return true;
}

/*
 * Sends sig and waits up to timeout_ms, then SIGKILL.  Returns the exit code
 * (128+signal when killed by one, -1 when it had to be killed after the
 * timeout or was not running).
 */
static inline int e2e_stop(e2e_proc *p, int sig, long timeout_ms)
{
    int st = 0, rc = -1;
    if (p->pid <= 0)
        return -1;
    p->stopped = true;
    kill(p->pid, sig);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 100000; i++) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid || r < 0) {
            rc = r < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (timeutil_monotonic_ms() > deadline) {
            fprintf(stderr, "e2e: %s did not stop within %ld ms; killing it\n", p->name,
                    timeout_ms);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            break;
        }
        testsupport_sleep_ms(20);
    }
    p->pid = 0;
    return rc;
}

/* ------------------------------------------------------------ HTTP */

typedef struct e2e_buf {
    char *s;
    size_t len;
} e2e_buf;

static inline size_t e2e_collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
    e2e_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > 256u * 1024 * 1024)
        return 0; /* a cap, so a runaway answer fails the request */
    char *t = realloc(b->s, b->len + n + 1);
    if (t == NULL)
        return 0;
    memcpy(t + b->len, ptr, n);
    b->len += n;
    t[b->len] = '\0';
    b->s = t;
    return n;
}

/*
 * One request to url on the env's connection (kept alive between calls).
 * bearer may be NULL; body NULL sends none.  Returns the status; *json_out
 * (may be NULL) receives the parsed answer or NULL.
 */
static inline long e2e_request(e2e_env *e, const char *method, const char *url, const char *bearer,
                               const char *body, json_t **json_out)
{
    e2e_buf b = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    char auth[256];
    if (bearer) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", bearer);
        h = curl_slist_append(h, auth);
    }
    if (body)
        h = curl_slist_append(h, "Content-Type: application/json");
    CURL *c = e->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, e2e_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        free(b.s);
        ck_abort_msg("%s %s: %s", method, url, curl_easy_strerror(rc));
    }
    if (json_out)
        *json_out = b.s ? json_loads(b.s, 0, NULL) : NULL;
    free(b.s);
    return status;
}

/* A call to the gateway's API with the admin key; path like "/v1/users/u1". */
static inline long e2e_api(e2e_env *e, const char *method, const char *path, const char *body,
                           json_t **json_out)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", e->base, path);
    return e2e_request(e, method, url, e->api_key, body, json_out);
}

/* As e2e_api, asserting the status. */
static inline void e2e_api_expect(e2e_env *e, long want, const char *method, const char *path,
                                  const char *body)
{
    json_t *j = NULL;
    long st = e2e_api(e, method, path, body, &j);
    char *dump = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (st != want) {
        fprintf(stderr, "%s %s -> %ld %s\n", method, path, st, dump ? dump : "");
        free(dump);
        json_decref(j);
        ck_abort_msg("%s %s answered %ld, expected %ld", method, path, st, want);
    }
    free(dump);
    json_decref(j);
}

/* GET or POST (body) on a provider's control port; returns the parsed answer. */
static inline json_t *e2e_provider(e2e_env *e, const e2e_proc *p, const char *path,
                                   const char *body)
{
    char url[256];
    json_t *j = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", p->control, path);
    long st = e2e_request(e, body ? "POST" : "GET", url, NULL, body, &j);
    ck_assert_msg(st == 200 && j != NULL, "%s %s: %ld", p->name, path, st);
    return j;
}

static inline void e2e_control(e2e_env *e, int which, const char *json)
{
    json_decref(e2e_provider(e, &e->procs[which], "/_control", json));
}

/* Every record of a provider so far (a JSON array; caller decrefs). */
static inline json_t *e2e_records(e2e_env *e, int which)
{
    json_t *all = json_array();
    size_t since = 0;
    for (int page = 0; page < 1000; page++) {
        char path[96];
        snprintf(path, sizeof path, "/_records?since=%zu&limit=100000", since);
        json_t *r = e2e_provider(e, &e->procs[which], path, NULL);
        json_t *arr = json_is_array(r) ? r : json_object_get(r, "records");
        ck_assert_msg(json_is_array(arr), "%s: /_records is not an array", e->procs[which].name);
        size_t n = json_array_size(arr);
        json_array_extend(all, arr);
        json_decref(r);
        since += n;
        if (n < 100000)
            break;
    }
    return all;
}

/* A daemon's counter from its /metrics (sum over label sets); -1 if absent. */
static inline double e2e_metric(e2e_env *e, int which, const char *name)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", e->procs[which].port);
    e2e_buf b = {0};
    CURL *c = curl_easy_init();
    ck_assert_ptr_nonnull(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, e2e_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    ck_assert_msg(rc == CURLE_OK && b.s != NULL, "GET %s: %s", url, curl_easy_strerror(rc));
    double sum = -1;
    size_t nl = strlen(name);
    for (char *line = b.s; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (line[0] != '#' && strncmp(line, name, nl) == 0 &&
            (line[nl] == '{' || line[nl] == ' ')) {
            const char *v = strrchr(line, ' ');
            if (v) {
                if (sum < 0)
                    sum = 0;
                sum += strtod(v + 1, NULL);
            }
        }
        line = next;
    }
    free(b.s);
    return sum;
}

/* ------------------------------------------------------------ start and stop */

/*
 * For consumers: a killed consumer's partitions move to its restarted
 * successor once the group has noticed it is gone, after session.timeout.ms
 * (15 s by default, HERALD_KAFKA_SESSION_TIMEOUT_MS; these daemons have no
 * instance id).  The broker's minimum keeps failure tests short.
 */
#define E2E_CONSUMER_OPTS "HERALD_KAFKA_OPTS=session.timeout.ms=6000 heartbeat.interval.ms=1000"

/* Fills a daemon's environment: what every Herald program of this env reads. */
static inline int e2e_common_env(e2e_env *e, e2e_proc *p)
{
    int n = 0;
    p->env[n++] = e2e_printf("HERALD_KAFKA_BROKERS=%s", e->brokers);
    p->env[n++] = e2e_printf("HERALD_DATABASE_URL=%s", e->db_url);
    p->env[n++] = e2e_printf("HERALD_TOPIC_PREFIX=%s", e->prefix);
    p->env[n++] =
        e2e_printf("HERALD_LOG_LEVEL=%s",
                   getenv("HERALD_E2E_LOG_LEVEL") ? getenv("HERALD_E2E_LOG_LEVEL") : "info");
    p->env[n++] = e2e_printf("HERALD_METRICS_ADDR=127.0.0.1:0");
    p->env[n++] = e2e_printf("HERALD_KAFKA_OPTS=");
    return n;
}

static inline void e2e_bin(e2e_proc *p, const char *prog)
{
    char path[512];
    p->argv[0] = strdup(testsupport_bin(prog, path, sizeof path));
    ck_assert_msg(access(p->argv[0], X_OK) == 0, "%s is not built", p->argv[0]);
}

/* Starts (or restarts) a Herald daemon and waits until it answers. */
static inline void e2e_start_daemon(e2e_env *e, int which)
{
    e2e_proc *p = &e->procs[which];
    /* A fresh log per start, so the port found is this start's. */
    char old[320];
    snprintf(old, sizeof old, "%s.%d", p->log, p->starts);
    if (p->starts > 0)
        rename(p->log, old);
    e2e_spawn(p, false);
    char url[256];
    if (which == E2E_GATEWAY) {
        p->port = e2e_port_from_log(p, "listening on port ", 30000);
        snprintf(e->base, sizeof e->base, "http://127.0.0.1:%d", p->port);
        snprintf(url, sizeof url, "%s/readyz", e->base);
    } else {
        p->port = e2e_port_from_log(p, "opsserver 127.0.0.1:", 30000);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/readyz", p->port);
        if (which == E2E_REALTIME || which == E2E_REALTIME_2)
            p->live = e2e_port_from_log(p, "listening on port ", 30000);
    }
    int64_t deadline = timeutil_monotonic_ms() + 60000;
    long st = 0;
    for (int i = 0; i < 1000 && timeutil_monotonic_ms() < deadline; i++) {
        ck_assert_msg(e2e_alive(p), "%s exited at start (log %s)", p->name, p->log);
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_NOBODY, 0L);
        FILE *devnull = fopen("/dev/null", "w");
        curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
        st = 0;
        if (curl_easy_perform(c) == CURLE_OK)
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_cleanup(c);
        if (devnull)
            fclose(devnull);
        if (st == 200)
            return;
        testsupport_sleep_ms(100);
    }
    e2e_dump_log(p);
    ck_abort_msg("%s: %s did not answer 200 within 60 s (last %ld)", p->name, url, st);
}

/*
 * Brings up a whole Herald: scratch database, topics (heraldctl topics
 * create, `replicas` replicas each: 1 for the single broker of
 * dev/services; from 3, heraldctl gives them min.insync.replicas=2), an
 * admin key, the test providers, the dispatcher, the workers and the
 * gateway.  tag names the run in the database name.
 */
static inline void e2e_up_replicated(e2e_env *e, const char *tag, int replicas)
{
    char err[512];
    memset(e, 0, sizeof *e);
    e->brokers = test_require_env("HERALD_KAFKA_BROKERS");
    (void)test_require_env("HERALD_DATABASE_URL");
    (void)test_require_env("HERALD_BIN_DIR");
    e->curl = curl_easy_init();
    ck_assert_ptr_nonnull(e->curl);
    testsupport_topic_prefix(e->prefix, sizeof e->prefix);
    snprintf(e->dir, sizeof e->dir, "/tmp/herald-e2e-%s-%d", tag, (int)getpid());
    ck_assert_msg(mkdir(e->dir, 0700) == 0 || errno == EEXIST, "mkdir %s", e->dir);
    fprintf(stderr, "e2e: prefix %s, logs and records in %s\n", e->prefix, e->dir);

    e->db_url = testsupport_db_create(tag, 1);
    ck_assert_msg(e->db_url != NULL, "cannot create the scratch database");
    PGconn *c = PQconnectdb(e->db_url);
    int64_t id;
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    ck_assert_msg(
        apikey_db_create(c, "e2e", APIKEY_SCOPE_ADMIN, e->api_key, &id, err, sizeof err) == 0,
        "API key: %s", err);
    PQfinish(c);

    /* Topics the way an operator makes them. */
    char ctl[512], out[4096], errout[4096], prefix_env[80], brokers_env[300], rf[12];
    testsupport_bin("heraldctl", ctl, sizeof ctl);
    snprintf(rf, sizeof rf, "%d", replicas);
    snprintf(prefix_env, sizeof prefix_env, "HERALD_TOPIC_PREFIX=%s", e->prefix);
    snprintf(brokers_env, sizeof brokers_env, "HERALD_KAFKA_BROKERS=%s", e->brokers);
    char *const targv[] = {
        ctl, "topics", "create", "--partitions", E2E_PARTITIONS, "--replication-factor", rf, NULL};
    const char *const tenv[] = {prefix_env, brokers_env, NULL};
    int rc = testsupport_run(targv, tenv, out, sizeof out, errout, sizeof errout, 60000);
    ck_assert_msg(rc == 0, "heraldctl topics create: exit %d: %s%s", rc, out, errout);

    for (int i = 0; i < E2E_NPROCS; i++) {
        e->procs[i].name = e2e_proc_names[i];
        snprintf(e->procs[i].log, sizeof e->procs[i].log, "%s/%s.log", e->dir, e2e_proc_names[i]);
    }

    /* The providers. */
    e2e_proc *smtp = &e->procs[E2E_SMTP];
    e2e_bin(smtp, "herald-test-smtp-server");
    const char *sargs[] = {"--listen",    "127.0.0.1:0", "--control",       "127.0.0.1:0", "--user",
                           E2E_SMTP_USER, "--password",  E2E_SMTP_PASSWORD, "--record",    NULL};
    int n = 1;
    for (int i = 0; sargs[i]; i++)
        smtp->argv[n++] = strdup(sargs[i]);
    smtp->argv[n++] = e2e_printf("%s/smtp.jsonl", e->dir);
    e2e_spawn(smtp, true);

    e2e_proc *http = &e->procs[E2E_HTTP];
    e2e_bin(http, "herald-test-http-provider");
    const char *hargs[] = {"--listen",  "127.0.0.1:0", "--auth-token", E2E_PROVIDER_TOKEN,
                           "--threads", "4",           "--record",     NULL};
    n = 1;
    for (int i = 0; hargs[i]; i++)
        http->argv[n++] = strdup(hargs[i]);
    http->argv[n++] = e2e_printf("%s/http.jsonl", e->dir);
    e2e_spawn(http, true);

    /* The dispatcher: its own group, and one transactional id for every start
     * so that a restart fences its killed predecessor at once. */
    e2e_proc *d = &e->procs[E2E_DISPATCHER];
    e2e_bin(d, "herald-dispatcher");
    n = e2e_common_env(e, d);
    d->env[n++] = e2e_printf("%s", E2E_CONSUMER_OPTS);
    d->env[n++] = e2e_printf("HERALD_DISPATCHER_GROUP=%sdispatcher", e->prefix);
    d->env[n++] = e2e_printf("HERALD_DISPATCHER_TRANSACTIONAL_ID=%sdispatcher-1", e->prefix);
    e2e_start_daemon(e, E2E_DISPATCHER);

    /* The workers: a stable worker id, so a restarted worker takes over its
     * own leases at once, as a restarted pod with a stable name would. */
    static const char *const chans[4] = {"email", "sms", "push", "inapp"};
    for (int k = 0; k < 4; k++) {
        e2e_proc *w = &e->procs[E2E_EMAIL + k];
        e2e_bin(w, "herald-worker");
        w->argv[1] = strdup("--channel");
        w->argv[2] = strdup(chans[k]);
        n = e2e_common_env(e, w);
        w->env[n++] = e2e_printf("%s", E2E_CONSUMER_OPTS);
        w->env[n++] = e2e_printf("HERALD_WORKER_ID=%sworker-%s", e->prefix, chans[k]);
        w->env[n++] = e2e_printf("HERALD_WORKER_LEASE=20s");
        w->env[n++] = e2e_printf("HERALD_WORKER_DRAIN_TIMEOUT=5s");
        w->env[n++] = e2e_printf("HERALD_RETRY_BASE_MS=200");
        w->env[n++] = e2e_printf("HERALD_RETRY_MAX_MS=2s");
        w->env[n++] = e2e_printf("HERALD_PROVIDER_TIMEOUT=10s");
        w->env[n++] = e2e_printf("HERALD_EMAIL_PROVIDER=smtp");
        w->env[n++] = e2e_printf("HERALD_SMTP_URL=smtp://127.0.0.1:%d", smtp->port);
        w->env[n++] = e2e_printf("HERALD_SMTP_USERNAME=%s", E2E_SMTP_USER);
        w->env[n++] = e2e_printf("HERALD_SMTP_PASSWORD=%s", E2E_SMTP_PASSWORD);
        w->env[n++] = e2e_printf("HERALD_EMAIL_FROM=Herald E2E <e2e@herald.test>");
        w->env[n++] = e2e_printf("HERALD_SMS_PROVIDER=http");
        w->env[n++] = e2e_printf("HERALD_SMS_URL=http://127.0.0.1:%d/sms", http->port);
        w->env[n++] = e2e_printf("HERALD_SMS_AUTH_TOKEN=%s", E2E_PROVIDER_TOKEN);
        w->env[n++] = e2e_printf("HERALD_SMS_FROM=+15550000000");
        w->env[n++] = e2e_printf("HERALD_PUSH_PROVIDER=http");
        w->env[n++] = e2e_printf("HERALD_PUSH_URL=http://127.0.0.1:%d/push", http->port);
        w->env[n++] = e2e_printf("HERALD_PUSH_AUTH_TOKEN=%s", E2E_PROVIDER_TOKEN);
        w->env[n++] = e2e_printf("HERALD_OUTBOX_DIR=%s/outbox", e->dir);
        e2e_start_daemon(e, E2E_EMAIL + k);
    }

    e2e_proc *g = &e->procs[E2E_GATEWAY];
    e2e_bin(g, "herald-gateway");
    n = e2e_common_env(e, g);
    g->argv[1] = strdup("--http-addr");
    g->argv[2] = e2e_printf("127.0.0.1:0");
    g->env[n++] = e2e_printf("HERALD_ACCESS_LOG=false");
    g->env[n++] = e2e_printf("HERALD_AUTH_CACHE_TTL=1s");
    g->env[n++] = e2e_printf("HERALD_SHUTDOWN_TIMEOUT=5s");
    g->env[n++] = e2e_printf("HERALD_USER_TOKEN_SECRET=%s", E2E_USER_TOKEN_SECRET);
    e2e_start_daemon(e, E2E_GATEWAY);

    /* The live-update daemon, with the gateway's token secret. */
    e2e_proc *rt = &e->procs[E2E_REALTIME];
    e2e_bin(rt, "herald-realtime");
    n = e2e_common_env(e, rt);
    rt->env[n++] = e2e_printf("HERALD_REALTIME_LISTEN=127.0.0.1:0");
    rt->env[n++] = e2e_printf("HERALD_USER_TOKEN_SECRET=%s", E2E_USER_TOKEN_SECRET);
    rt->env[n++] = e2e_printf("HERALD_SHUTDOWN_TIMEOUT=5s");
    e2e_start_daemon(e, E2E_REALTIME);
}

/* e2e_up_replicated() with one replica, for dev/services' broker. */
static inline void e2e_up(e2e_env *e, const char *tag)
{
    e2e_up_replicated(e, tag, 1);
}

/*
 * Whether every daemon and provider that should run still runs: those never
 * started and those the test stopped on purpose (e2e_kill, e2e_stop) and
 * has not restarted yet are left out.
 */
static inline bool e2e_all_alive(e2e_env *e)
{
    bool ok = true;
    for (int i = 0; i < E2E_NPROCS; i++)
        if (e->procs[i].starts > 0 && !e->procs[i].stopped && !e2e_alive(&e->procs[i])) {
            ok = false;
            e2e_dump_log(&e->procs[i]);
        }
    return ok;
}

/*
 * Sets "NAME=value" in the environment the next start of p gets: replaces
 * the variable's entry when p has one (the first of duplicates is the one
 * a program reads), appends it otherwise.
 */
static inline void e2e_set_env(e2e_proc *p, const char *kv)
{
    const char *eq = strchr(kv, '=');
    ck_assert_ptr_nonnull(eq);
    size_t nlen = (size_t)(eq - kv) + 1;
    int n = 0;
    for (; n < 47 && p->env[n] != NULL; n++)
        if (strncmp(p->env[n], kv, nlen) == 0) {
            free(p->env[n]);
            p->env[n] = e2e_printf("%s", kv);
            return;
        }
    ck_assert_int_lt(n, 47);
    p->env[n] = e2e_printf("%s", kv);
}

/* SIGKILL, as a crash would. */
static inline void e2e_kill(e2e_env *e, int which)
{
    e2e_proc *p = &e->procs[which];
    ck_assert_msg(e2e_alive(p), "%s is not running", p->name);
    (void)e2e_stop(p, SIGKILL, 5000);
}

static inline void e2e_restart(e2e_env *e, int which)
{
    ck_assert_int_eq(e->procs[which].pid, 0);
    e2e_start_daemon(e, which);
}

/*
 * Starts herald-webhooks (E2E_WEBHOOKS) on the env's database and topics,
 * for the suites that test status webhooks; e2e_up() leaves it out.  Short
 * timeouts and retry delays, so that an outage of the receiver costs a
 * suite seconds, and a group of its own for the senders.  A restart after
 * e2e_kill() is e2e_restart(), as for the other daemons.
 */
static inline void e2e_add_webhooks(e2e_env *e)
{
    e2e_proc *p = &e->procs[E2E_WEBHOOKS];
    ck_assert_msg(p->starts == 0, "%s: already added", p->name);
    e2e_bin(p, "herald-webhooks");
    int n = e2e_common_env(e, p);
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_GROUP=%swebhooks", e->prefix);
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_TIMEOUT=2s");
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_RETRY_BASE=100ms");
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_RETRY_MAX=1s");
    /* With retries 1 s apart at most, the default 8 attempts give up after
     * about 5 s: an outage in a test on a busy machine outlasts that, and
     * the calls it dead-letters never arrive.  100 attempts outlast any phase. */
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_MAX_ATTEMPTS=100");
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_FEED_IDLE=100ms");
    p->env[n++] = e2e_printf("HERALD_WEBHOOKS_DRAIN_TIMEOUT=5s");
    e2e_set_env(p, E2E_CONSUMER_OPTS);
    e2e_start_daemon(e, E2E_WEBHOOKS);
}

/*
 * Starts the second instance of the dispatcher, of a worker or of
 * herald-realtime (which: E2E_DISPATCHER_2, E2E_EMAIL_2, E2E_SMS_2,
 * E2E_PUSH_2 or E2E_REALTIME_2) with the first one's configuration: the
 * same consumer group, but its own transactional id or worker id, as a
 * second pod of a deployment would have (herald-realtime has neither).  A restart after
 * e2e_kill() is e2e_restart(), as for the first instances.
 */
static inline void e2e_add_instance(e2e_env *e, int which)
{
    static const struct {
        int second, first;
        const char *id_var;
    } map[] = {
        {E2E_DISPATCHER_2, E2E_DISPATCHER, "HERALD_DISPATCHER_TRANSACTIONAL_ID="},
        {E2E_EMAIL_2, E2E_EMAIL, "HERALD_WORKER_ID="},
        {E2E_SMS_2, E2E_SMS, "HERALD_WORKER_ID="},
        {E2E_PUSH_2, E2E_PUSH, "HERALD_WORKER_ID="},
        {E2E_REALTIME_2, E2E_REALTIME, NULL},
    };
    size_t m = 0;
    while (m < sizeof map / sizeof map[0] && map[m].second != which)
        m++;
    ck_assert_msg(m < sizeof map / sizeof map[0], "%d is no second instance", which);
    e2e_proc *p = &e->procs[which];
    const e2e_proc *first = &e->procs[map[m].first];
    ck_assert_msg(p->starts == 0 && first->argv[0] != NULL, "%s: already added, or no %s", p->name,
                  first->name);
    for (int i = 0; i < 16 && first->argv[i] != NULL; i++)
        p->argv[i] = strdup(first->argv[i]);
    const char *id_var = map[m].id_var;
    size_t idlen = id_var != NULL ? strlen(id_var) : 0;
    bool renamed = id_var == NULL;
    for (int i = 0; i < 48 && first->env[i] != NULL; i++) {
        if (id_var != NULL && strncmp(first->env[i], id_var, idlen) == 0) {
            p->env[i] = e2e_printf("%s-2", first->env[i]);
            renamed = true;
        } else {
            p->env[i] = strdup(first->env[i]);
        }
    }
    ck_assert_msg(renamed, "%s has no %s", first->name, id_var);
    e2e_start_daemon(e, which);
}

/*
 * Whether a consumer daemon's log of its current start says the group gave
 * it partitions ("assigned N partition(s)", N > 0).  A member that joins a
 * group where others run, or where a killed member has not timed out yet,
 * gets its share only after a rebalance or two, and a failure test must
 * kill it while it has work.
 */
static inline bool e2e_assigned(e2e_env *e, int which)
{
    static const char marker[] = "] assigned ";
    char *s = testsupport_read_file(e->procs[which].log, NULL);
    bool got = false;
    for (const char *m = s; m != NULL && !got && (m = strstr(m, marker)) != NULL;) {
        m += sizeof marker - 1;
        got = atoi(m) > 0;
    }
    free(s);
    return got;
}

/* Waits (bounded) until e2e_assigned(). */
static inline void e2e_wait_assigned(e2e_env *e, int which, long timeout_ms)
{
    e2e_proc *p = &e->procs[which];
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    for (int i = 0; i < 10000 && timeutil_monotonic_ms() < deadline; i++) {
        if (e2e_assigned(e, which))
            return;
        ck_assert_msg(e2e_alive(p), "%s exited (log %s)", p->name, p->log);
        testsupport_sleep_ms(100);
    }
    e2e_dump_log(p);
    ck_abort_msg("%s was given no partition within %ld ms", p->name, timeout_ms);
}

/*
 * Stops everything, gateway first: SIGTERM, 30 s, then SIGKILL.  Returns the
 * number of Herald daemons that did not exit 0 on SIGTERM (each reported).
 */
static inline int e2e_down(e2e_env *e)
{
    static const int order[] = {E2E_GATEWAY,    E2E_WEBHOOKS,     E2E_REALTIME, E2E_REALTIME_2,
                                E2E_DISPATCHER, E2E_DISPATCHER_2, E2E_EMAIL,    E2E_EMAIL_2,
                                E2E_SMS,        E2E_SMS_2,        E2E_PUSH,     E2E_PUSH_2,
                                E2E_INAPP,      E2E_SMTP,         E2E_HTTP};
    int bad = 0;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        e2e_proc *p = &e->procs[order[i]];
        if (p->pid <= 0)
            continue;
        int rc = e2e_stop(p, SIGTERM, 30000);
        if (rc != 0) {
            fprintf(stderr, "e2e: %s exited %d on SIGTERM (expected 0)\n", p->name, rc);
            e2e_dump_log(p);
            bad++;
        }
    }
    for (int i = 0; i < E2E_NPROCS; i++) {
        for (int k = 0; k < 16; k++)
            free(e->procs[i].argv[k]);
        for (int k = 0; k < 48; k++)
            free(e->procs[i].env[k]);
        memset(e->procs[i].argv, 0, sizeof e->procs[i].argv);
        memset(e->procs[i].env, 0, sizeof e->procs[i].env);
    }
    if (e->prefix[0] != '\0') {
        char names[32][160];
        const char *list[32];
        size_t n = 0;
        for (size_t i = 0; topics_all[i].name != NULL && n < 32; i++, n++) {
            snprintf(names[n], sizeof names[n], "%s%s", e->prefix, topics_all[i].name);
            list[n] = names[n];
        }
        char err[512];
        if (kafka_topics_delete(e->brokers, NULL, list, n, 30000, err, sizeof err) != KAFKA_OK)
            fprintf(stderr, "e2e: topics of %s not deleted: %s\n", e->prefix, err);
    }
    if (e->db_url) {
        testsupport_db_drop(e->db_url);
        e->db_url = NULL;
    }
    if (e->curl) {
        curl_easy_cleanup(e->curl);
        e->curl = NULL;
    }
    const char *keep = getenv("HERALD_TEST_KEEP");
    if (e->dir[0] != '\0' && (keep == NULL || *keep == '\0' || strcmp(keep, "0") == 0)) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "e2e: could not remove %s\n", e->dir);
    }
    return bad;
}

/* ------------------------------------------------------------ the API, for tests */

/* PUT /v1/users/{id} with an email, a phone and push tokens (NULL: none). */
static inline void e2e_put_user(e2e_env *e, const char *user, const char *email, const char *phone,
                                const char *push_token)
{
    json_t *u = json_object();
    if (email)
        json_object_set_new(u, "email", json_string(email));
    if (phone)
        json_object_set_new(u, "phone", json_string(phone));
    if (push_token)
        json_object_set_new(u, "push_tokens", json_pack("[s]", push_token));
    json_object_set_new(u, "name", json_string(user));
    json_object_set_new(u, "timezone", json_string("UTC"));
    char *body = json_dumps(u, JSON_COMPACT);
    char path[256];
    snprintf(path, sizeof path, "/v1/users/%s", user);
    e2e_api_expect(e, 200, "PUT", path, body);
    free(body);
    json_decref(u);
}

static inline void e2e_put_template(e2e_env *e, const char *type, const char *channel,
                                    const char *subject, const char *body_text,
                                    const char *category)
{
    json_t *t = json_pack("{s:s}", "body", body_text);
    if (subject)
        json_object_set_new(t, "subject", json_string(subject));
    if (category)
        json_object_set_new(t, "category", json_string(category));
    char *body = json_dumps(t, JSON_COMPACT);
    char path[256];
    snprintf(path, sizeof path, "/v1/templates/%s/%s", type, channel);
    e2e_api_expect(e, 200, "PUT", path, body);
    free(body);
    json_decref(t);
}

/* Templates for type on all three channels, naming the event in the text. */
static inline void e2e_put_templates(e2e_env *e, const char *type)
{
    e2e_put_template(e, type, "email", "Hello {{user.name}}", "Event {{data.n}} for {{user.name}}",
                     NULL);
    e2e_put_template(e, type, "sms", NULL, "Event {{data.n}} for {{user.name}}", NULL);
    e2e_put_template(e, type, "push", "Hello", "Event {{data.n}} for {{user.name}}", NULL);
}

/* POST /v1/events; returns the event id (ID_UUID_SIZE) in id_out. */
static inline void e2e_publish(e2e_env *e, const char *body, char *id_out)
{
    json_t *j = NULL;
    long st = e2e_api(e, "POST", "/v1/events", body, &j);
    const char *id = json_string_value(json_object_get(j, "event_id"));
    ck_assert_msg(st == 202 && id != NULL, "POST /v1/events %s -> %ld", body, st);
    snprintf(id_out, ID_UUID_SIZE, "%s", id);
    json_decref(j);
}

/* GET /v1/events/{id}: the document, or NULL while 404. */
static inline json_t *e2e_event(e2e_env *e, const char *id)
{
    char path[128];
    json_t *j = NULL;
    snprintf(path, sizeof path, "/v1/events/%s", id);
    long st = e2e_api(e, "GET", path, NULL, &j);
    if (st == 404) {
        json_decref(j);
        return NULL;
    }
    ck_assert_msg(st == 200 && j != NULL, "GET %s -> %ld", path, st);
    return j;
}

/* Whether no delivery of the document is still pending, scheduled or retrying. */
static inline bool e2e_event_settled(json_t *doc, size_t want_deliveries)
{
    json_t *dl = json_object_get(doc, "deliveries");
    if (!json_is_array(dl) || json_array_size(dl) < want_deliveries)
        return false;
    size_t i;
    json_t *d;
    json_array_foreach(dl, i, d)
    {
        const char *s = json_string_value(json_object_get(d, "status"));
        if (s == NULL || strcmp(s, "pending") == 0 || strcmp(s, "scheduled") == 0 ||
            strcmp(s, "retrying") == 0)
            return false;
    }
    return true;
}

/* Counts the deliveries of doc with this channel (NULL: any) and status. */
static inline size_t e2e_count_deliveries(json_t *doc, const char *channel, const char *status)
{
    size_t i, n = 0;
    json_t *d;
    json_array_foreach(json_object_get(doc, "deliveries"), i, d)
    {
        const char *c = json_string_value(json_object_get(d, "channel"));
        const char *s = json_string_value(json_object_get(d, "status"));
        if (c && s && (channel == NULL || strcmp(c, channel) == 0) && strcmp(s, status) == 0)
            n++;
    }
    return n;
}

/* The first delivery of doc on channel, or NULL. */
static inline json_t *e2e_delivery(json_t *doc, const char *channel)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(doc, "deliveries"), i, d)
    {
        const char *c = json_string_value(json_object_get(d, "channel"));
        if (c && strcmp(c, channel) == 0)
            return d;
    }
    return NULL;
}

/*
 * Polls GET /v1/events/{id} every 200 ms until done(doc, arg) holds, or
 * timeout_ms; returns the last document (NULL if never 200).
 */
static inline json_t *e2e_poll_event(e2e_env *e, const char *id, long timeout_ms,
                                     bool (*done)(json_t *doc, const void *arg), const void *arg)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    json_t *doc = NULL;
    for (int i = 0; i < 100000; i++) {
        json_decref(doc);
        doc = e2e_event(e, id);
        if ((doc && done(doc, arg)) || timeutil_monotonic_ms() > deadline)
            break;
        testsupport_sleep_ms(200);
    }
    return doc;
}

static inline bool e2e_settled_pred(json_t *doc, const void *arg)
{
    return e2e_event_settled(doc, *(const size_t *)arg);
}

/* Until it is settled with at least want deliveries. */
static inline json_t *e2e_wait_event(e2e_env *e, const char *id, size_t want, long timeout_ms)
{
    return e2e_poll_event(e, id, timeout_ms, e2e_settled_pred, &want);
}

typedef struct e2e_status_want {
    const char *channel, *status;
    size_t n;
} e2e_status_want;

static inline bool e2e_status_pred(json_t *doc, const void *arg)
{
    const e2e_status_want *w = arg;
    return e2e_count_deliveries(doc, w->channel, w->status) >= w->n;
}

/*
 * Until want deliveries on channel have status: for a delivery that moves
 * from one final status to another (failed, then sent after a requeue),
 * where "settled" would stop at the first.
 */
static inline json_t *e2e_wait_status(e2e_env *e, const char *id, const char *channel,
                                      const char *status, size_t want, long timeout_ms)
{
    e2e_status_want w = {channel, status, want};
    return e2e_poll_event(e, id, timeout_ms, e2e_status_pred, &w);
}

/* ------------------------------------------------------------ runs with loss and re-send counts */

/*
 * A run: n events of one type, event i to user "<user prefix><i % users>"
 * (five digits), each user with an address on every channel, and templates
 * whose email subject is "Event <event id>", so that every notification a
 * provider records names its event (the HTTP provider records the event id
 * itself).  Then e2e_tally reads what the providers received and
 * e2e_expect_delivered() asserts that nothing was lost.
 */
#define E2E_SUBJECT_PREFIX "Event "

static inline void e2e_put_templates_by_id(e2e_env *e, const char *type)
{
    e2e_put_template(e, type, "email", E2E_SUBJECT_PREFIX "{{event.id}}",
                     "Event {{data.n}} for {{user.name}}", NULL);
    e2e_put_template(e, type, "sms", NULL, "Event {{data.n}} for {{user.name}}", NULL);
    e2e_put_template(e, type, "push", "Hello", "Event {{data.n}} for {{user.name}}", NULL);
}

/* Users <prefix>00000 .. <prefix><n-1> with an email, a phone and a push token. */
static inline void e2e_put_users(e2e_env *e, const char *prefix, int n)
{
    char user[64], email[96], phone[32], token[96];
    for (int i = 0; i < n; i++) {
        snprintf(user, sizeof user, "%s%05d", prefix, i);
        snprintf(email, sizeof email, "%s@e2e.test", user);
        snprintf(phone, sizeof phone, "+1555%07d", i);
        snprintf(token, sizeof token, "%s-token", user);
        e2e_put_user(e, user, email, phone, token);
    }
}

/*
 * Publishes events [from, from+n) of a run (see above) with POST
 * /v1/events/batch, each with the idempotency key "<user prefix>-<i>".
 * What the gateway refuses for the moment (503: Kafka or PostgreSQL away;
 * 409: the same key still in flight) is sent again, as a client would, for
 * up to retry_ms; the keys make a retry of an event that did get through
 * return its id instead of publishing it twice.  Stores the event ids in
 * ids[i]; returns how many requests were (wholly or partly) refused.
 */
static inline long e2e_publish_events(e2e_env *e, const char *type, const char *user_prefix,
                                      int users, int from, int n, char ids[][ID_UUID_SIZE],
                                      long retry_ms)
{
    int *todo = malloc(sizeof(int) * (size_t)n);
    ck_assert_ptr_nonnull(todo);
    int left = n;
    for (int k = 0; k < n; k++)
        todo[k] = from + k;
    long refused = 0;
    int64_t deadline = timeutil_monotonic_ms() + retry_ms;
    for (int attempt = 0; left > 0 && attempt < 10000; attempt++) {
        if (attempt > 0) {
            refused++;
            ck_assert_msg(timeutil_monotonic_ms() < deadline,
                          "events of %s still refused after %ld ms", user_prefix, retry_ms);
            testsupport_sleep_ms(250);
        }
        json_t *events = json_array();
        for (int k = 0; k < left; k++) {
            char user[64], key[96];
            snprintf(user, sizeof user, "%s%05d", user_prefix, todo[k] % users);
            snprintf(key, sizeof key, "%s-%d", user_prefix, todo[k]);
            json_array_append_new(events,
                                  json_pack("{s:s,s:s,s:s,s:{s:i}}", "type", type, "user_id", user,
                                            "idempotency_key", key, "data", "n", todo[k]));
        }
        json_t *req = json_pack("{s:o}", "events", events);
        char *body = json_dumps(req, JSON_COMPACT);
        json_decref(req);
        json_t *res = NULL;
        long st = e2e_api(e, "POST", "/v1/events/batch", body, &res);
        free(body);
        json_t *results = json_object_get(res, "results");
        if (st == 202 && json_array_size(results) == (size_t)left) {
            int still = 0;
            for (int k = 0; k < left; k++) {
                json_t *r = json_array_get(results, (size_t)k);
                const char *id = json_string_value(json_object_get(r, "event_id"));
                const char *code =
                    json_string_value(json_object_get(json_object_get(r, "error"), "code"));
                if (id != NULL) {
                    snprintf(ids[todo[k]], ID_UUID_SIZE, "%s", id);
                } else if (code != NULL && (strcmp(code, "broker_unavailable") == 0 ||
                                            strcmp(code, "queue_full") == 0 ||
                                            strcmp(code, "database_unavailable") == 0 ||
                                            strcmp(code, "idempotency_in_progress") == 0)) {
                    todo[still++] = todo[k];
                } else {
                    char *dump = json_dumps(r, JSON_COMPACT);
                    fprintf(stderr, "e2e: event %d refused: %s\n", todo[k], dump ? dump : "");
                    free(dump);
                    ck_abort_msg("event %d of %s was refused for good", todo[k], user_prefix);
                }
            }
            left = still;
        } else if (st != 503 && st != 409) {
            char *dump = res ? json_dumps(res, JSON_COMPACT) : NULL;
            fprintf(stderr, "e2e: POST /v1/events/batch -> %ld %s\n", st, dump ? dump : "");
            free(dump);
            ck_abort_msg("POST /v1/events/batch answered %ld", st);
        }
        json_decref(res);
    }
    free(todo);
    ck_assert_msg(left == 0, "%d events of %s never accepted", left, user_prefix);
    return refused;
}

/*
 * What the providers received, read incrementally from their /_records:
 * per channel, per event id, the idempotency keys it came with and how
 * often.  Only records for users of user_prefix count.
 */
enum { E2E_CH_EMAIL, E2E_CH_SMS, E2E_CH_PUSH, E2E_NCH };

typedef struct e2e_tally {
    char user_prefix[48];
    json_t *by_event[E2E_NCH]; /* event id -> {key -> count} */
    long records[E2E_NCH];
    long mismatched; /* no key, or different header and body keys */
    size_t since_smtp, since_http;
} e2e_tally;

static inline void e2e_tally_init(e2e_tally *t, const char *user_prefix)
{
    memset(t, 0, sizeof *t);
    snprintf(t->user_prefix, sizeof t->user_prefix, "%s", user_prefix);
    for (int c = 0; c < E2E_NCH; c++)
        t->by_event[c] = json_object();
}

static inline void e2e_tally_free(e2e_tally *t)
{
    for (int c = 0; c < E2E_NCH; c++) {
        json_decref(t->by_event[c]);
        t->by_event[c] = NULL;
    }
}

static inline void e2e_tally_add(e2e_tally *t, int ch, const char *event_id, const char *key)
{
    json_t *keys = json_object_get(t->by_event[ch], event_id);
    if (keys == NULL) {
        keys = json_object();
        json_object_set_new(t->by_event[ch], event_id, keys);
    }
    const char *k = key ? key : "";
    json_object_set_new(keys, k, json_integer(json_integer_value(json_object_get(keys, k)) + 1));
    t->records[ch]++;
}

/* Records of a provider from *since on (pages of up to 100000); advances *since. */
static inline json_t *e2e_records_since(e2e_env *e, int which, size_t *since)
{
    json_t *all = json_array();
    for (int page = 0; page < 1000; page++) {
        char path[96];
        snprintf(path, sizeof path, "/_records?since=%zu&limit=100000", *since);
        json_t *r = e2e_provider(e, &e->procs[which], path, NULL);
        json_t *arr = json_is_array(r) ? r : json_object_get(r, "records");
        ck_assert_msg(json_is_array(arr), "%s: /_records is not an array", e->procs[which].name);
        size_t n = json_array_size(arr);
        json_array_extend(all, arr);
        json_decref(r);
        *since += n;
        if (n < 100000)
            break;
    }
    return all;
}

/* Reads what the providers recorded since the last call. */
static inline void e2e_tally_read(e2e_env *e, e2e_tally *t)
{
    size_t plen = strlen(t->user_prefix), slen = strlen(E2E_SUBJECT_PREFIX), i;
    json_t *r, *h = e2e_records_since(e, E2E_HTTP, &t->since_http);
    json_array_foreach(h, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "protocol"));
        const char *u = json_string_value(json_object_get(r, "user_id"));
        const char *ev = json_string_value(json_object_get(r, "event_id"));
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        const char *bk = json_string_value(json_object_get(r, "body_idempotency_key"));
        if (!p || !u || strncmp(u, t->user_prefix, plen) != 0 || !ev)
            continue;
        int ch = strcmp(p, "sms") == 0 ? E2E_CH_SMS : strcmp(p, "push") == 0 ? E2E_CH_PUSH : -1;
        if (ch < 0)
            continue;
        if (!k || !bk || strcmp(k, bk) != 0)
            t->mismatched++;
        e2e_tally_add(t, ch, ev, k);
    }
    json_decref(h);
    json_t *m = e2e_records_since(e, E2E_SMTP, &t->since_smtp);
    json_array_foreach(m, i, r)
    {
        const char *rcpt = json_string_value(json_array_get(json_object_get(r, "rcpt"), 0));
        const char *subject = json_string_value(json_object_get(r, "subject"));
        const char *k = json_string_value(json_object_get(r, "message_id"));
        if (!rcpt || strncmp(rcpt, t->user_prefix, plen) != 0 || !subject ||
            strncmp(subject, E2E_SUBJECT_PREFIX, slen) != 0)
            continue;
        if (!k)
            t->mismatched++;
        e2e_tally_add(t, E2E_CH_EMAIL, subject + slen, k);
    }
    json_decref(m);
}

typedef struct e2e_outcome {
    long loss;              /* expected notifications no provider received */
    long resends;           /* records beyond the first of a notification */
    long rekeyed;           /* notifications received under more than one key */
    long received[E2E_NCH]; /* distinct notifications per channel */
} e2e_outcome;

/* Loss and re-sends of the n events ids[0..n) on every channel, as read so far. */
static inline e2e_outcome e2e_tally_outcome(const e2e_tally *t, int n, char ids[][ID_UUID_SIZE])
{
    e2e_outcome o = {0};
    for (int c = 0; c < E2E_NCH; c++) {
        for (int k = 0; k < n; k++)
            o.loss += json_object_get(t->by_event[c], ids[k]) == NULL;
        const char *ev;
        json_t *keys;
        json_object_foreach(t->by_event[c], ev, keys)
        {
            /* A second key would be a re-send no provider can recognise as one. */
            if (json_object_size(keys) != 1) {
                char *dump = json_dumps(keys, JSON_COMPACT);
                fprintf(stderr, "e2e: event %s received under several keys: %s\n", ev, dump);
                free(dump);
                o.rekeyed++;
            }
        }
        o.received[c] = (long)json_object_size(t->by_event[c]);
        o.resends += t->records[c] - o.received[c];
    }
    return o;
}

/*
 * Waits (bounded by deadline) until GET /v1/events/{id} reports each of the
 * n events sent on its three channels; returns the index of the first that
 * is not (printing its document), or -1.
 */
static inline int e2e_first_unsent(e2e_env *e, int n, char ids[][ID_UUID_SIZE], int64_t deadline)
{
    for (int i = 0; i < n; i++) {
        long left = (long)(deadline - timeutil_monotonic_ms());
        json_t *doc = e2e_wait_event(e, ids[i], 3, left > 0 ? left : 1);
        bool sent = doc != NULL && e2e_count_deliveries(doc, NULL, "sent") == 3;
        if (!sent) {
            char *dump = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
            fprintf(stderr, "e2e: event %d (%s) not sent on its three channels: %s\n", i, ids[i],
                    dump ? dump : "404");
            free(dump);
        }
        json_decref(doc);
        if (!sent)
            return i;
    }
    return -1;
}

/*
 * Waits (bounded by timeout_ms, and ending early when a daemon died) until
 * every notification of the n events reached its provider, then until the
 * API reports every event sent on its three channels, so that re-sends
 * still to come (a dead worker's deliveries, once its leases end) are
 * counted too.  Prints "<what>: loss=N resends=N" on stdout and asserts no
 * loss, one key per notification, nothing beyond the expected and every
 * event sent.  t0 is when the run began, for the times reported.
 */
static inline e2e_outcome e2e_expect_delivered(e2e_env *e, const char *what,
                                               const char *user_prefix, int n,
                                               char ids[][ID_UUID_SIZE], int64_t t0,
                                               long timeout_ms)
{
    e2e_tally t;
    e2e_tally_init(&t, user_prefix);
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    e2e_outcome o = {0};
    for (int i = 0; i < 100000; i++) {
        e2e_tally_read(e, &t);
        o = e2e_tally_outcome(&t, n, ids);
        if (o.loss == 0 || timeutil_monotonic_ms() > deadline || !e2e_all_alive(e))
            break;
        testsupport_sleep_ms(500);
    }
    int64_t delivered_ms = timeutil_monotonic_ms() - t0;
    /* What the API says of a few lost events, to tell where they stopped. */
    static const char *const chname[E2E_NCH] = {"email", "sms", "push"};
    for (int k = 0, shown = 0; o.loss > 0 && k < n && shown < 5; k++) {
        char missing[32] = "";
        for (int c = 0; c < E2E_NCH; c++)
            if (json_object_get(t.by_event[c], ids[k]) == NULL)
                snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s",
                         chname[c]);
        if (missing[0] == '\0')
            continue;
        json_t *doc = e2e_event(e, ids[k]);
        char *dump = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        fprintf(stderr, "e2e: %s: event %d (%s) lost on%s; GET /v1/events/{id}: %s\n", what, k,
                ids[k], missing, dump ? dump : "404");
        free(dump);
        json_decref(doc);
        shown++;
    }
    int unsent =
        o.loss == 0 ? e2e_first_unsent(e, n, ids, timeutil_monotonic_ms() + timeout_ms) : -1;
    int64_t settled_ms = timeutil_monotonic_ms() - t0;
    testsupport_sleep_ms(1000); /* late re-sends still count */
    e2e_tally_read(e, &t);
    o = e2e_tally_outcome(&t, n, ids);
    fprintf(stderr,
            "e2e: %s: %d events; email %ld records / %ld notifications, sms %ld / %ld, push "
            "%ld / %ld; all delivered %lld ms and reported sent %lld ms after the start\n",
            what, n, t.records[E2E_CH_EMAIL], o.received[E2E_CH_EMAIL], t.records[E2E_CH_SMS],
            o.received[E2E_CH_SMS], t.records[E2E_CH_PUSH], o.received[E2E_CH_PUSH],
            (long long)delivered_ms, (long long)settled_ms);
    printf("%s: loss=%ld resends=%ld\n", what, o.loss, o.resends);
    fflush(stdout);
    long mismatched = t.mismatched;
    e2e_tally_free(&t);
    ck_assert_msg(o.loss == 0, "%s: %ld of %d notifications never reached their provider", what,
                  o.loss, 3 * n);
    ck_assert_msg(o.rekeyed == 0, "%s: %ld notifications were re-sent under another key", what,
                  o.rekeyed);
    ck_assert_msg(mismatched == 0,
                  "%s: %ld requests carried no key or different header and body keys", what,
                  mismatched);
    for (int c = 0; c < E2E_NCH; c++)
        ck_assert_msg(o.received[c] == n, "%s: %ld notifications on channel %d for %d events", what,
                      o.received[c], c, n);
    ck_assert_msg(unsent < 0, "%s: event %s is not reported sent on its three channels", what,
                  ids[unsent < 0 ? 0 : unsent]);
    return o;
}

#endif

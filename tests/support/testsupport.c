/*
 * testsupport: see testsupport.h.
 */
#include "testsupport.h"

#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "migrate.h"
#include "timeutil.h"

extern char **environ;

static unsigned long long random_u64(void)
{
    unsigned long long v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
    return v;
}

static const char *base_url(void)
{
    const char *url = getenv("HERALD_DATABASE_URL");
    return (url && *url) ? url : "postgresql://127.0.0.1:55432/herald";
}

/* Connects to url (any libpq form) with dbname replaced when dbname != NULL. */
static PGconn *connect_to(const char *url, const char *dbname)
{
    const char *keys[] = {"dbname", "dbname", "connect_timeout", NULL};
    const char *vals[] = {url, dbname ? dbname : NULL, "10", NULL};
    if (dbname == NULL) {
        keys[1] = "connect_timeout";
        vals[1] = "10";
        keys[2] = NULL;
    }
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "testsupport: cannot connect: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

/* A keyword conninfo equal to conn's but for dbname. */
static char *conninfo_for(PGconn *conn, const char *dbname)
{
    static const char *const wanted[] = {"host",     "hostaddr", "port", "user",
                                         "password", "sslmode",  NULL};
    char buf[2048];
    size_t len = 0;
    PQconninfoOption *opts = PQconninfo(conn);
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        for (const char *const *w = wanted; *w; w++) {
            if (strcmp(o->keyword, *w) == 0 && o->val && *o->val)
                len +=
                    (size_t)snprintf(buf + len, sizeof(buf) - len, "%s='%s' ", o->keyword, o->val);
        }
    }
    PQconninfoFree(opts);
    snprintf(buf + len, sizeof(buf) - len, "dbname='%s'", dbname);
    return strdup(buf);
}

static int exec_simple(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "testsupport: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    return ok ? 0 : -1;
}

char *testsupport_db_create(const char *tag, int migrate)
{
    char dbname[96], sql[160], err[1024];
    char *url = NULL;
    migrate_set *set = NULL;
    PGconn *db = NULL;
    PGconn *admin = connect_to(base_url(), "postgres");
    if (admin == NULL)
        return NULL;
    snprintf(dbname, sizeof(dbname), "herald_test_%s_%llx", tag, random_u64() & 0xffffffffffULL);
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", dbname);
    if (exec_simple(admin, sql) != 0)
        goto out;
    url = conninfo_for(admin, dbname);
    if (!migrate)
        goto out;
    db = connect_to(url, NULL);
    set = migrate_set_embedded(err, sizeof(err));
    int applied = 0;
    if (db == NULL || set == NULL ||
        migrate_apply(db, set, &applied, NULL, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "testsupport: migrating %s: %s\n", dbname, err);
        PQfinish(db);
        db = NULL;
        testsupport_db_drop(url);
        url = NULL;
    }
out:
    migrate_set_free(set);
    PQfinish(db);
    PQfinish(admin);
    return url;
}

void testsupport_db_drop(char *url)
{
    if (url == NULL)
        return;
    const char *p = strstr(url, "dbname='");
    PGconn *admin = connect_to(base_url(), "postgres");
    if (p != NULL && admin != NULL) {
        char dbname[128], sql[256];
        p += strlen("dbname='");
        size_t n = strcspn(p, "'");
        snprintf(dbname, sizeof(dbname), "%.*s", (int)n, p);
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", dbname);
        (void)exec_simple(admin, sql);
    }
    PQfinish(admin);
    free(url);
}

long testsupport_db_count(const char *url, const char *sql)
{
    long n = -1;
    PGconn *conn = connect_to(url, NULL);
    if (conn == NULL)
        return -1;
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        n = PQntuples(res) == 1 && PQnfields(res) == 1 ? atol(PQgetvalue(res, 0, 0))
                                                       : PQntuples(res);
    else
        fprintf(stderr, "testsupport: %s: %s", sql, PQerrorMessage(conn));
    PQclear(res);
    PQfinish(conn);
    return n;
}

void testsupport_topic_prefix(char *out, size_t outlen)
{
    snprintf(out, outlen, "t%llx.", random_u64() & 0xffffffffffffULL);
}

char *testsupport_bin(const char *name, char *out, size_t outlen)
{
    const char *dir = getenv("HERALD_BIN_DIR");
    snprintf(out, outlen, "%s/%s", (dir && *dir) ? dir : "build/bin", name);
    return out;
}

/* Applies "K=V" (set) and "K=" (unset) entries in the child. */
static void apply_env(const char *const env[])
{
    for (size_t i = 0; env && env[i]; i++) {
        const char *eq = strchr(env[i], '=');
        if (eq == NULL)
            continue;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - env[i]), env[i]);
        if (eq[1] == '\0')
            unsetenv(name);
        else
            setenv(name, eq + 1, 1);
    }
}

pid_t testsupport_spawn(char *const argv[], const char *const env[], const char *stdout_path,
                        const char *stderr_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    apply_env(env);
    if (stdout_path) {
        int fd = open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 1);
    }
    if (stderr_path) {
        int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
    }
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

int testsupport_wait(pid_t pid, int timeout_ms)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return decode_status(status);
        if (r < 0)
            return -1;
        if (timeutil_monotonic_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return decode_status(status);
        }
        usleep(10 * 1000);
    }
}

pid_t testsupport_spawn_logged(const char *path, char *const argv[], const char *const env[],
                               const char *log, int *listen_fd, bool die_with_parent)
{
    int pipefd[2] = {-1, -1};
    if (listen_fd != NULL && pipe(pipefd) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The parent may have ended before the death signal was armed. */
        if (die_with_parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
            _exit(127);
        int fd = log != NULL ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;
        if (log != NULL && fd < 0)
            _exit(127);
        if (fd >= 0)
            dup2(fd, 2);
        if (listen_fd != NULL)
            dup2(pipefd[1], 1);
        else if (fd >= 0)
            dup2(fd, 1);
        if (listen_fd != NULL) {
            close(pipefd[0]);
            close(pipefd[1]);
        }
        if (fd >= 0)
            close(fd);
        setpgid(0, 0);
        for (size_t i = 0; env != NULL && env[i] != NULL; i++)
            putenv((char *)env[i]);
        execv(path, argv);
        _exit(127);
    }
    if (listen_fd != NULL) {
        close(pipefd[1]);
        if (pid < 0)
            close(pipefd[0]);
        else
            *listen_fd = pipefd[0];
    }
    return pid;
}

void testsupport_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

long testsupport_wait_count(PGconn *db, const char *sql, long want, long timeout_ms,
                            bool (*alive)(void *arg), void *arg)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    long v = -1;
    for (int i = 0; i < 100000; i++) {
        v = testsupport_sql_long(db, "%s", sql);
        if (v >= want || timeutil_monotonic_ms() > deadline || (alive != NULL && !alive(arg)))
            break;
        testsupport_sleep_ms(100);
    }
    return v;
}

char *testsupport_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *s = malloc(cap);
    for (size_t got; s != NULL && (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (n + 1 >= cap) {
            char *t = realloc(s, cap * 2);
            if (t == NULL) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s != NULL)
        s[n] = '\0';
    if (len != NULL)
        *len = s != NULL ? n : 0;
    return s;
}

const char *testsupport_file_tail(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return buf;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        long from = size > (long)cap - 1 ? size - ((long)cap - 1) : 0;
        if (fseek(f, from, SEEK_SET) == 0) {
            size_t n = fread(buf, 1, cap - 1, f);
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Runs argv with stdout on a pipe and stderr on a pipe or, with err_tty, a terminal. */
static int run_captured(char *const argv[], const char *const env[], char *out, size_t outlen,
                        char *errout, size_t errlen, int timeout_ms, bool err_tty)
{
    int po[2], pe[2];
    if (pipe(po) != 0)
        return -1;
    if ((err_tty ? openpty(&pe[0], &pe[1], NULL, NULL, NULL) : pipe(pe)) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        apply_env(env);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t olen = 0, elen = 0;
    if (out && outlen)
        out[0] = '\0';
    if (errout && errlen)
        errout[0] = '\0';
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    int open_fds = 2;
    while (open_fds > 0 && timeutil_monotonic_ms() < deadline) {
        if (poll(fds, 2, 100) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t r = read(fds[i].fd, buf, sizeof(buf));
            if (r <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            char *dst = i == 0 ? out : errout;
            size_t cap = i == 0 ? outlen : errlen;
            size_t *len = i == 0 ? &olen : &elen;
            if (dst && *len + 1 < cap) {
                size_t n = (size_t)r < cap - 1 - *len ? (size_t)r : cap - 1 - *len;
                memcpy(dst + *len, buf, n);
                *len += n;
                dst[*len] = '\0';
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    long long left = deadline - timeutil_monotonic_ms();
    return testsupport_wait(pid, left > 0 ? (int)left : 0);
}

int testsupport_run(char *const argv[], const char *const env[], char *out, size_t outlen,
                    char *errout, size_t errlen, int timeout_ms)
{
    return run_captured(argv, env, out, outlen, errout, errlen, timeout_ms, false);
}

int testsupport_run_tty(char *const argv[], const char *const env[], char *out, size_t outlen,
                        char *errout, size_t errlen, int timeout_ms)
{
    return run_captured(argv, env, out, outlen, errout, errlen, timeout_ms, true);
}

/* The statement fmt formats to, in a buffer the caller frees. */
static char *format_sql(const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    ck_assert_int_ge(n, 0);
    char *sql = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(sql);
    vsnprintf(sql, (size_t)n + 1, fmt, ap);
    return sql;
}

void testsupport_sql(PGconn *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *sql = format_sql(fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(db, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(db));
    PQclear(r);
    free(sql);
}

static char *sql_vtext(PGconn *db, const char *fmt, va_list ap)
{
    char *sql = format_sql(fmt, ap);
    PGresult *r = PQexec(db, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(db));
    char *v = strdup(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    free(sql);
    return v;
}

char *testsupport_sql_text(PGconn *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = sql_vtext(db, fmt, ap);
    va_end(ap);
    return v;
}

long testsupport_sql_long(PGconn *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *v = sql_vtext(db, fmt, ap);
    va_end(ap);
    long n = strtol(v, NULL, 10);
    free(v);
    return n;
}

int testsupport_read_listen_line(int fd, int timeout_ms, int *port, int *control, char *line,
                                 size_t linelen)
{
    static const char listening[] = "listening on 127.0.0.1:";
    static const char control_at[] = "control 127.0.0.1:";
    size_t used = 0;
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    line[0] = '\0';
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while (used + 1 < linelen && timeutil_monotonic_ms() <= deadline) {
        ssize_t r = read(fd, line + used, linelen - 1 - used);
        if (r > 0) {
            used += (size_t)r;
            line[used] = '\0';
            if (strchr(line, '\n'))
                break;
        } else if (r == 0) {
            break;
        } else {
            usleep(10 * 1000);
        }
    }
    const char *l = strstr(line, listening);
    if (l == NULL)
        return -1;
    *port = atoi(l + strlen(listening));
    const char *c = strstr(line, control_at);
    *control = c ? atoi(c + strlen(control_at)) : *port;
    return 0;
}

int testsupport_mail_header(const char *raw, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    const char *end = strstr(raw, "\r\n\r\n");
    if (end == NULL)
        end = raw + strlen(raw);
    for (const char *p = raw; p < end;) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL || eol > end)
            eol = end;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            size_t o = 0;
            while (*v == ' ' || *v == '\t')
                v++;
            /* Unfold: a line break followed by white space is white space. */
            for (; v < end; v++) {
                if (v[0] == '\r' && v[1] == '\n') {
                    if (v[2] != ' ' && v[2] != '\t')
                        break;
                    v++;
                    continue;
                }
                if (o + 1 >= outlen)
                    return -1;
                out[o++] = *v;
            }
            out[o] = '\0';
            return 0;
        }
        p = eol + 2;
    }
    return -1;
}

int testsupport_unsubscribe_link(const char *value, char *out, size_t outlen)
{
    for (const char *p = strchr(value, '<'); p != NULL; p = strchr(p + 1, '<')) {
        const char *gt = strchr(p, '>');
        if (gt == NULL)
            return -1;
        if (strncmp(p + 1, "http", 4) == 0 && (size_t)(gt - p - 1) < outlen) {
            snprintf(out, outlen, "%.*s", (int)(gt - p - 1), p + 1);
            return 0;
        }
    }
    return -1;
}

int testsupport_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

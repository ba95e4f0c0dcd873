/*
 * herald-test-smtp-server: a small real SMTP server (an RFC 5321 subset) that
 * stands in for the relay Herald's email worker talks to.
 *
 * It greets, takes EHLO/HELO, AUTH PLAIN and LOGIN (when --user/--password
 * are set), MAIL FROM, several RCPT TO, DATA with dot-unstuffing and a size
 * limit, RSET, NOOP and QUIT, and records each accepted message as a JSON
 * line (record_log) with its envelope, raw text, Message-ID and Subject.
 * With a certificate it speaks TLS (OpenSSL): STARTTLS (RFC 3207) with
 * --starttls, TLS from the first byte (smtps) with --tls, and with
 * --require-tls it refuses AUTH and MAIL in clear text; each record says
 * whether the message came over TLS and which version.
 * Misbehaviour is scripted through fault: 4xx/5xx at RCPT or at the end of
 * DATA, latency before the final reply, hangs at the greeting, RCPT or end of
 * DATA.  The control API (control.h) runs on its own HTTP port.
 *
 * One thread per connection, bounded by --max-conns: sessions block in
 * short waits so that latency and hangs are plain waits, and a stop request
 * is seen within 100 ms.  A clear-text session waits in recv() itself, with
 * a 100 ms receive timeout on the socket (one system call per read, where a
 * poll and a read were two).  Once TLS is up the socket is non-blocking and
 * every SSL_read/SSL_write/SSL_accept that wants to read or write waits in
 * short polls, so faults, idle timeouts and stops work alike.  Replies are
 * queued and sent when the session next waits, so the replies to pipelined
 * commands (RFC 2920, offered in the EHLO reply) share one segment.
 *
 * The benchmarks run this server next to the pipeline on the same cores, so
 * the per-message path avoids what costs there: a session keeps its message
 * buffer between messages, the body is copied a line at a time, and the
 * record is written as JSON text directly rather than built as a jansson
 * tree and serialised.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ptime.h"
#include "base64.h"
#include "control.h"
#include "fault.h"
#include "flags.h"
#include "listener.h"
#include "jtext.h"
#include "record_log.h"

#define PROGRAM "herald-test-smtp-server"

/* RFC 4954 allows 12288-octet AUTH lines; commands are far shorter. */
#define SMTP_MAX_LINE 16384
/* How often blocked sessions look at the stop flag. */
#define SMTP_POLL_MS      100
#define SHUTDOWN_DRAIN_MS 5000
/* A session keeps its message buffer up to this size between messages. */
#define SMTP_KEEP_DATA_BYTES (256 * 1024)

static volatile sig_atomic_t stop_requested;

typedef struct smtp_config {
    const char *listen;
    const char *control;
    const char *record;
    bool record_all;
    long keep;
    const char *user;
    const char *password;
    const char *hostname;
    long max_size;
    long max_rcpts;
    long max_conns;
    long idle_timeout_s;
    const char *fail_stage;
    const char *hang_stage;
    bool starttls;    /* offer and accept STARTTLS */
    bool tls;         /* TLS from the first byte (smtps) */
    bool require_tls; /* AUTH and MAIL only over TLS */
    const char *cert;
    const char *key;
    fault_settings fault;
} smtp_config;

typedef struct server {
    smtp_config cfg;
    fault *fault;
    record_log *records;
    control_counters counters;
    control_api api;
    control_server *ctl;
    atomic_bool stopping;
    atomic_long active;      /* live sessions */
    atomic_long connections; /* accepted since start */
    atomic_long next_queue_id;
    SSL_CTX *tls;               /* with --starttls or --tls */
    atomic_long tls_handshakes; /* completed */
    atomic_long tls_failures;   /* handshakes that failed (a client refusing the certificate) */
} server;

typedef enum {
    READ_OK = 1,
    READ_CLOSED = 0,    /* EOF, error, idle timeout or stop */
    READ_TOO_LONG = -1, /* the line was longer than the buffer (consumed) */
} read_result;

typedef struct session {
    server *srv;
    int fd;
    SSL *ssl;             /* NULL until TLS is up */
    const char *tls_mode; /* "starttls" or "implicit" once up */
    char buf[16384];
    size_t start, end;
    bool timed_out;
    /* Replies not sent yet: those to pipelined commands (RFC 2920) go out
     * together, when the commands read so far are done. */
    char out[2048];
    size_t outlen;

    char helo[256];
    bool greeted;
    char *auth_user;

    bool in_tx;
    char *mail_from;
    json_t *rcpts;
    bool tx_decided; /* the RCPT-stage fault decision was taken */
    int tx_injected; /* its injected status, 0 for none */

    struct data_buf *data; /* the message being received, its memory kept between messages */
} session;

/* ---- small utilities ---- */

/*
 * A JSON string of bytes from the wire: as is when valid UTF-8, otherwise
 * with each invalid byte replaced by '?', and *lossy set (may be NULL).
 */
static json_t *wire_string(const char *s, size_t len, bool *lossy)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = jt_utf8_seq(u + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    if (i == len)
        return json_stringn(s, len);
    if (lossy != NULL)
        *lossy = true;
    char *copy = malloc(len);
    if (copy == NULL)
        return NULL;
    for (i = 0; i < len;) {
        size_t n = jt_utf8_seq(u + i, len - i);
        if (n == 0) {
            copy[i++] = '?';
        } else {
            memcpy(copy + i, s + i, n);
            i += n;
        }
    }
    json_t *j = json_stringn(copy, len);
    free(copy);
    return j;
}

/* ---- the connection ---- */

static bool session_stopping(session *s)
{
    return atomic_load(&s->srv->stopping);
}

/* One short wait for what OpenSSL asked for (SSL_ERROR_WANT_READ or
 * _WRITE); false on a poll error. */
static bool tls_poll(session *s, int want)
{
    struct pollfd pfd = {.fd = s->fd, .events = want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN};
    return poll(&pfd, 1, SMTP_POLL_MS) >= 0 || errno == EINTR;
}

static bool session_flush(session *s);

/* Reads more bytes into the buffer, first sending the queued replies; false
 * on EOF, error, idle timeout or stop. */
static bool session_fill(session *s)
{
    /* Nothing complete is left to answer: what is queued goes out now. */
    if (!session_flush(s))
        return false;
    if (s->start > 0 && s->start == s->end)
        s->start = s->end = 0;
    if (s->end == sizeof(s->buf) && s->start > 0) {
        memmove(s->buf, s->buf + s->start, s->end - s->start);
        s->end -= s->start;
        s->start = 0;
    }
    int64_t idle_deadline = ptime_monotonic_ms() + s->srv->cfg.idle_timeout_s * 1000;
    for (;;) {
        if (session_stopping(s))
            return false;
        if (ptime_monotonic_ms() >= idle_deadline) {
            s->timed_out = true;
            return false;
        }
        if (s->ssl != NULL) {
            /* OpenSSL may hold decrypted bytes already: read before polling. */
            ERR_clear_error();
            int n = SSL_read(s->ssl, s->buf + s->end, (int)(sizeof(s->buf) - s->end));
            if (n > 0) {
                s->end += (size_t)n;
                return true;
            }
            int e = SSL_get_error(s->ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return false; /* close_notify, reset or a TLS error */
            if (!tls_poll(s, e))
                return false;
            continue;
        }
        /* The socket's receive timeout (SMTP_POLL_MS, set at accept) bounds
         * the wait: one system call per read, not a poll and a read. */
        ssize_t n = recv(s->fd, s->buf + s->end, sizeof(s->buf) - s->end, 0);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return false;
        s->end += (size_t)n;
        return true;
    }
}

/* Reads one command line (without CRLF, NUL-terminated) into line. */
static read_result session_read_line(session *s, char *line, size_t cap)
{
    size_t len = 0;
    bool too_long = false;
    for (;;) {
        char *nl = memchr(s->buf + s->start, '\n', s->end - s->start);
        size_t take = nl != NULL ? (size_t)(nl - (s->buf + s->start)) : s->end - s->start;
        if (!too_long && len + take < cap) {
            memcpy(line + len, s->buf + s->start, take);
            len += take;
        } else {
            too_long = true;
        }
        if (nl != NULL) {
            s->start += take + 1;
            if (too_long)
                return READ_TOO_LONG;
            if (len > 0 && line[len - 1] == '\r')
                len--;
            line[len] = '\0';
            return READ_OK;
        }
        s->start = s->end;
        if (!session_fill(s))
            return READ_CLOSED;
    }
}

static bool session_write(session *s, const char *text, size_t len)
{
    size_t off = 0;
    if (s->ssl != NULL) {
        /* A client that stops reading is given the idle timeout, as a
         * silent one is. */
        int64_t deadline = ptime_monotonic_ms() + s->srv->cfg.idle_timeout_s * 1000;
        while (off < len) {
            ERR_clear_error();
            int n = SSL_write(s->ssl, text + off, (int)(len - off));
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            int e = SSL_get_error(s->ssl, n);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return false;
            /* Retried with the same arguments, as OpenSSL requires. */
            if (session_stopping(s) || ptime_monotonic_ms() >= deadline || !tls_poll(s, e))
                return false;
        }
        return true;
    }
    while (off < len) {
        ssize_t n = send(s->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        off += (size_t)n;
    }
    return true;
}

/* Sends the queued replies; false when the connection failed. */
static bool session_flush(session *s)
{
    if (s->outlen == 0)
        return true;
    size_t n = s->outlen;
    s->outlen = 0;
    return session_write(s, s->out, n);
}

/* Queues a reply; it goes out before the session next waits for input (or
 * at any other wait), so a client that pipelines its commands gets their
 * replies in one segment rather than one each. */
static bool session_send(session *s, const char *text, size_t len)
{
    if (s->outlen + len > sizeof(s->out) && !session_flush(s))
        return false;
    if (len > sizeof(s->out))
        return session_write(s, text, len);
    memcpy(s->out + s->outlen, text, len);
    s->outlen += len;
    return true;
}

static bool reply(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool reply(session *s, const char *fmt, ...)
{
    char out[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof(out) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return false;
    if ((size_t)n > sizeof(out) - 3)
        n = (int)sizeof(out) - 3;
    out[n++] = '\r';
    out[n++] = '\n';
    return session_send(s, out, (size_t)n);
}

static void tx_reset(session *s)
{
    s->in_tx = false;
    free(s->mail_from);
    s->mail_from = NULL;
    json_decref(s->rcpts);
    s->rcpts = NULL;
    s->tx_decided = false;
    s->tx_injected = 0;
}

/* Waits while a hang covers stage; false when the server stops first. */
static bool wait_while_hanging(session *s, const char *stage)
{
    if (!fault_hanging(s->srv->fault, stage))
        return true;
    /* The replies so far go out before the wait, as they would unpipelined. */
    (void)session_flush(s);
    while (!fault_wait_released(s->srv->fault, stage, SMTP_POLL_MS)) {
        if (session_stopping(s))
            return false;
    }
    return true;
}

/* The reply text of an injected status. */
static bool reply_injected(session *s, int status, const char *stage)
{
    if (status == 421) {
        /* 421 means the server closes the connection after the reply. */
        reply(s, "421 4.3.2 Service not available, closing channel (injected)");
        return false;
    }
    if (status < 500)
        return reply(s, "%d 4.3.0 Temporary failure, try again later (injected)", status);
    if (strcmp(stage, "rcpt") == 0)
        return reply(s, "%d 5.1.1 Mailbox unavailable (injected)", status);
    return reply(s, "%d 5.3.0 Message rejected (injected)", status);
}

/* ---- TLS ---- */

/* The most recent OpenSSL error as text ("" when there is none). */
static void tls_error_text(char *out, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    out[0] = '\0';
    if (e != 0)
        ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

/*
 * Loads the certificate chain and key; NULL with err naming the flag.
 * TLS 1.2 is the floor, as for any relay set up today.
 */
static SSL_CTX *tls_context_new(const char *cert, const char *key, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        tls_error_text(why, sizeof(why));
        snprintf(err, errlen, "TLS: %s", why);
        return NULL;
    }
    /* OpenSSL's own reason for a missing file is "system lib". */
    if (access(cert, R_OK) != 0) {
        snprintf(err, errlen, "--cert: cannot read %s: %s", cert, strerror(errno));
        goto fail;
    }
    if (access(key, R_OK) != 0) {
        snprintf(err, errlen, "--key: cannot read %s: %s", key, strerror(errno));
        goto fail;
    }
    (void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_error_text(why, sizeof(why));
        snprintf(err, errlen, "--cert: cannot load %s: %s", cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_error_text(why, sizeof(why));
        snprintf(err, errlen, "--key: cannot load %s: %s", key, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        tls_error_text(why, sizeof(why));
        snprintf(err, errlen, "--key: %s does not match --cert: %s", key, why);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/*
 * Runs the server side of the handshake on the session's socket (made
 * non-blocking for good); false when it failed, timed out or the server is
 * stopping, and the connection must close.
 */
static bool tls_start(session *s, const char *mode)
{
    server *srv = s->srv;
    char why[256];
    SSL *ssl = SSL_new(srv->tls);
    int flags = fcntl(s->fd, F_GETFL);
    if (ssl == NULL || flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
        SSL_set_fd(ssl, s->fd) != 1) {
        tls_error_text(why, sizeof(why));
        fprintf(stderr, PROGRAM ": TLS setup failed: %s\n", why);
        SSL_free(ssl);
        return false;
    }
    int64_t deadline = ptime_monotonic_ms() + srv->cfg.idle_timeout_s * 1000;
    for (;;) {
        ERR_clear_error();
        int r = SSL_accept(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        bool again = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
                     !session_stopping(s) && ptime_monotonic_ms() < deadline && tls_poll(s, e);
        if (again)
            continue;
        tls_error_text(why, sizeof(why));
        if (ptime_monotonic_ms() >= deadline)
            snprintf(why, sizeof(why), "idle timeout");
        fprintf(stderr, PROGRAM ": TLS handshake (%s) failed: %s\n", mode,
                why[0] != '\0' ? why : "connection closed");
        atomic_fetch_add(&srv->tls_failures, 1);
        SSL_free(ssl);
        return false;
    }
    s->ssl = ssl;
    s->tls_mode = mode;
    atomic_fetch_add(&srv->tls_handshakes, 1);
    return true;
}

/* Says goodbye over TLS (best effort: one try, never waits) and frees. */
static void tls_end(session *s)
{
    if (s->ssl == NULL)
        return;
    ERR_clear_error();
    (void)SSL_shutdown(s->ssl);
    ERR_clear_error();
    SSL_free(s->ssl);
    s->ssl = NULL;
}

/* Whether a command that carries credentials or mail must wait for TLS. */
static bool tls_missing(const session *s)
{
    return s->srv->cfg.require_tls && s->ssl == NULL;
}

/* ---- arguments ---- */

/* Takes "<path>" after "FROM:" / "TO:" (spaces allowed before '<') and
 * stores the address; *rest points at the ESMTP parameters.  -1 on bad
 * syntax. */
static int parse_path(const char *arg, char *addr, size_t cap, const char **rest)
{
    while (*arg == ' ')
        arg++;
    if (*arg != '<')
        return -1;
    const char *close = strchr(arg, '>');
    if (close == NULL || (size_t)(close - arg - 1) >= cap)
        return -1;
    memcpy(addr, arg + 1, (size_t)(close - arg - 1));
    addr[close - arg - 1] = '\0';
    *rest = close + 1;
    return 0;
}

/* Checks MAIL FROM parameters; returns 0 or the reply already sent (-1). */
static int check_mail_params(session *s, const char *params)
{
    char copy[1024];
    snprintf(copy, sizeof(copy), "%s", params);
    char *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        if (strncasecmp(tok, "SIZE=", 5) == 0) {
            char *end = NULL;
            long long sz = strtoll(tok + 5, &end, 10);
            if (end == tok + 5 || *end != '\0') {
                reply(s, "501 5.5.4 Bad SIZE parameter");
                return -1;
            }
            if (sz > s->srv->cfg.max_size) {
                reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
                return -1;
            }
        } else if (strncasecmp(tok, "BODY=", 5) == 0 || strncasecmp(tok, "AUTH=", 5) == 0 ||
                   strcasecmp(tok, "SMTPUTF8") == 0 || strncasecmp(tok, "RET=", 4) == 0 ||
                   strncasecmp(tok, "ENVID=", 6) == 0) {
            continue;
        } else {
            reply(s, "555 5.5.4 Unsupported parameter %s", tok);
            return -1;
        }
    }
    return 0;
}

/* ---- AUTH ---- */

/* Reads one base64 line after a 334 challenge; NULL when the client
 * cancelled ("*") or the connection ended (*closed). */
static char *auth_read_response(session *s, bool *closed)
{
    char *line = malloc(SMTP_MAX_LINE);
    if (line == NULL)
        return NULL;
    read_result r = session_read_line(s, line, SMTP_MAX_LINE);
    if (r == READ_CLOSED)
        *closed = true;
    if (r != READ_OK || strcmp(line, "*") == 0) {
        free(line);
        return NULL;
    }
    return line;
}

static bool credentials_ok(const server *srv, const char *user, const char *pass)
{
    return strcmp(user, srv->cfg.user) == 0 && strcmp(pass, srv->cfg.password) == 0;
}

/* Handles AUTH; returns false when the connection must close. */
static bool cmd_auth(session *s, const char *arg)
{
    server *srv = s->srv;
    bool closed = false;
    char *resp = NULL;
    unsigned char *dec = NULL;
    unsigned char *dec2 = NULL;
    size_t declen = 0, dec2len = 0;
    bool ok = false;

    if (srv->cfg.user == NULL)
        return reply(s, "502 5.5.1 AUTH not available");
    if (!s->greeted)
        return reply(s, "503 5.5.1 Send EHLO first");
    if (tls_missing(s)) {
        atomic_fetch_add(&srv->counters.rejected, 1);
        return reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    }
    if (s->auth_user != NULL)
        return reply(s, "503 5.5.1 Already authenticated");
    if (s->in_tx)
        return reply(s, "503 5.5.1 AUTH not allowed during a mail transaction");

    char mech[32] = "";
    const char *initial = NULL;
    const char *sp = strchr(arg, ' ');
    size_t mlen = sp != NULL ? (size_t)(sp - arg) : strlen(arg);
    if (mlen == 0 || mlen >= sizeof(mech))
        return reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
    memcpy(mech, arg, mlen);
    mech[mlen] = '\0';
    if (sp != NULL)
        initial = sp + 1;

    if (strcasecmp(mech, "PLAIN") == 0) {
        if (initial == NULL) {
            if (!reply(s, "334 "))
                return false;
            resp = auth_read_response(s, &closed);
            if (resp == NULL)
                goto cancelled;
            initial = resp;
        }
        if (strcmp(initial, "=") == 0)
            initial = "";
        dec = base64_decode(initial, strlen(initial), &declen);
        if (dec == NULL)
            goto bad_encoding;
        /* authzid NUL authcid NUL passwd */
        const char *authcid = memchr(dec, '\0', declen);
        if (authcid == NULL)
            goto bad_encoding;
        authcid++;
        const char *passwd = memchr(authcid, '\0', declen - (size_t)(authcid - (char *)dec));
        if (passwd == NULL)
            goto bad_encoding;
        passwd++;
        ok = credentials_ok(srv, authcid, passwd);
    } else if (strcasecmp(mech, "LOGIN") == 0) {
        if (initial == NULL) {
            if (!reply(s, "334 VXNlcm5hbWU6")) /* "Username:" */
                return false;
            resp = auth_read_response(s, &closed);
            if (resp == NULL)
                goto cancelled;
            initial = resp;
        }
        dec = base64_decode(initial, strlen(initial), &declen);
        if (dec == NULL)
            goto bad_encoding;
        if (!reply(s, "334 UGFzc3dvcmQ6")) { /* "Password:" */
            closed = true;
            goto out;
        }
        free(resp);
        resp = auth_read_response(s, &closed);
        if (resp == NULL)
            goto cancelled;
        dec2 = base64_decode(resp, strlen(resp), &dec2len);
        if (dec2 == NULL)
            goto bad_encoding;
        ok = credentials_ok(srv, (char *)dec, (char *)dec2);
    } else {
        closed = !reply(s, "504 5.5.4 Unrecognized authentication type");
        goto out;
    }

    if (ok) {
        s->auth_user = strdup(srv->cfg.user);
        closed = !reply(s, "235 2.7.0 Authentication successful");
    } else {
        atomic_fetch_add(&srv->counters.auth_failed, 1);
        atomic_fetch_add(&srv->counters.rejected, 1);
        closed = !reply(s, "535 5.7.8 Authentication credentials invalid");
    }
    goto out;

bad_encoding:
    closed = !reply(s, "501 5.5.2 Cannot decode response");
    goto out;
cancelled:
    if (!closed)
        closed = !reply(s, "501 5.7.0 Authentication cancelled");

out:
    free(resp);
    free(dec);
    free(dec2);
    return !closed;
}

/* ---- DATA ---- */

typedef struct header_field {
    char name[128];    /* lower case */
    const char *value; /* in the arena, NUL-terminated */
} header_field;

typedef struct header_view {
    char *arena;     /* the unfolded values, one after another */
    header_field *f; /* the first value of each name, in order of appearance */
    size_t n, cap;
    const char *message_id; /* NULL when absent */
    const char *subject;
} header_view;

static void header_view_free(header_view *hv)
{
    free(hv->arena);
    free(hv->f);
}

/* Unfolds the header section of raw and keeps the first value of each
 * header, still encoded as sent (RFC 2047 words untouched).  Values go to
 * one arena (unfolding never makes them longer than the raw text), not an
 * allocation each. */
static void parse_headers(const char *raw, size_t len, header_view *hv)
{
    hv->arena = malloc(len + 1);
    if (hv->arena == NULL)
        return;
    size_t used = 0;
    size_t i = 0;
    while (i < len) {
        size_t eol = i;
        while (eol < len && raw[eol] != '\n')
            eol++;
        size_t line_end = eol > i && raw[eol - 1] == '\r' ? eol - 1 : eol;
        if (line_end == i)
            break; /* the empty line ending the header section */
        const char *colon = memchr(raw + i, ':', line_end - i);
        if (colon == NULL || raw[i] == ' ' || raw[i] == '\t') {
            i = eol + 1;
            continue;
        }
        size_t nlen = (size_t)(colon - (raw + i));
        /* Gather the value over continuation lines, dropping each CRLF. */
        char *value = hv->arena + used;
        size_t vlen = 0;
        size_t seg_start = (size_t)(colon - raw) + 1, seg_end = line_end;
        size_t next = eol + 1;
        for (;;) {
            memcpy(value + vlen, raw + seg_start, seg_end - seg_start);
            vlen += seg_end - seg_start;
            if (next >= len || (raw[next] != ' ' && raw[next] != '\t'))
                break;
            size_t e = next;
            while (e < len && raw[e] != '\n')
                e++;
            seg_start = next;
            seg_end = e > next && raw[e - 1] == '\r' ? e - 1 : e;
            next = e + 1;
        }
        value[vlen] = '\0';
        i = next;
        if (nlen == 0 || nlen >= sizeof(hv->f[0].name))
            continue;
        char *v = value;
        while (*v == ' ' || *v == '\t')
            v++;
        size_t l = strlen(v);
        while (l > 0 && (v[l - 1] == ' ' || v[l - 1] == '\t'))
            v[--l] = '\0';
        char name[sizeof(hv->f[0].name)];
        memcpy(name, colon - nlen, nlen);
        for (size_t k = 0; k < nlen; k++)
            if (name[k] >= 'A' && name[k] <= 'Z')
                name[k] = (char)(name[k] - 'A' + 'a');
        name[nlen] = '\0';
        bool seen = false;
        for (size_t k = 0; k < hv->n && !seen; k++)
            seen = strcmp(hv->f[k].name, name) == 0;
        if (seen)
            continue;
        if (hv->n == hv->cap) {
            size_t ncap = hv->cap == 0 ? 16 : hv->cap * 2;
            header_field *nf = realloc(hv->f, ncap * sizeof(*nf));
            if (nf == NULL)
                continue;
            hv->f = nf;
            hv->cap = ncap;
        }
        memcpy(hv->f[hv->n].name, name, nlen + 1);
        hv->f[hv->n].value = v;
        hv->n++;
        used = (size_t)(v - hv->arena) + l + 1; /* keep this value */
        if (strcmp(name, "message-id") == 0)
            hv->message_id = v;
        else if (strcmp(name, "subject") == 0)
            hv->subject = v;
    }
}

typedef struct data_buf {
    char *data;
    size_t len, cap;
    size_t total; /* bytes received, beyond the cap too */
    size_t max;
} data_buf;

/* Appends n bytes; past max only counts them. */
static void data_put_n(data_buf *d, const char *p, size_t n)
{
    size_t room = d->total < d->max ? d->max - d->total : 0;
    d->total += n;
    if (n > room)
        n = room;
    if (n == 0)
        return;
    if (d->len + n + 1 > d->cap) {
        size_t ncap = d->cap == 0 ? 8192 : d->cap;
        while (ncap < d->len + n + 1)
            ncap *= 2;
        char *nd = realloc(d->data, ncap);
        if (nd == NULL) {
            d->total = d->max + 1; /* treat as too large */
            return;
        }
        d->data = nd;
        d->cap = ncap;
    }
    memcpy(d->data + d->len, p, n);
    d->len += n;
}

static void data_put(data_buf *d, char ch)
{
    data_put_n(d, &ch, 1);
}

/* Reads the message up to the lone "." line, undoing dot-stuffing
 * (RFC 5321 4.5.2).  False when the connection ended first. */
static bool read_data(session *s, data_buf *d)
{
    enum { MID_LINE, LINE_START, DOT, DOT_CR } st = LINE_START;
    for (;;) {
        while (s->start < s->end) {
            if (st == MID_LINE) {
                /* The rest of a line goes in one copy. */
                const char *p = s->buf + s->start;
                const char *nl = memchr(p, '\n', s->end - s->start);
                size_t take = nl != NULL ? (size_t)(nl - p) + 1 : s->end - s->start;
                data_put_n(d, p, take);
                s->start += take;
                if (nl != NULL)
                    st = LINE_START;
                continue;
            }
            char ch = s->buf[s->start++];
            switch (st) {
            case LINE_START:
                if (ch == '.') {
                    st = DOT;
                    continue;
                }
                break;
            case DOT:
                if (ch == '\r') {
                    st = DOT_CR;
                    continue;
                }
                if (ch == '\n')
                    return true;
                break; /* a stuffed dot: drop it, keep ch */
            case DOT_CR:
                if (ch == '\n')
                    return true;
                data_put(d, '\r');
                break;
            case MID_LINE:
                break;
            }
            data_put(d, ch);
            st = ch == '\n' ? LINE_START : MID_LINE;
        }
        if (!session_fill(s))
            return false;
    }
}

/* ---- the record, written as JSON text ---- */

static void jt_wire_or_null(jtext *j, const char *s)
{
    if (s != NULL)
        jt_wire(j, s, strlen(s), NULL);
    else
        jt_str(j, "null");
}

/*
 * The record of one message, written directly rather than through a
 * jansson object and json_dumps(): at benchmark rates the tree of a few
 * dozen allocations per message was a sizeable part of the server's time.
 * Returns the text (caller frees), NULL when out of memory.
 */
static char *message_record(session *s, const data_buf *d, const header_view *hv,
                            int64_t received_ms, int status, const char *outcome, size_t *len)
{
    jtext j = {0};
    bool lossy = false;
    jt_str(&j, "{\"protocol\":\"smtp\",\"tls\":");
    jt_str(&j, s->ssl != NULL ? "true" : "false");
    if (s->ssl != NULL) {
        jt_str(&j, ",\"tls_mode\":");
        jt_wire_or_null(&j, s->tls_mode);
        jt_str(&j, ",\"tls_version\":");
        jt_wire_or_null(&j, SSL_get_version(s->ssl));
        jt_str(&j, ",\"tls_cipher\":");
        jt_wire_or_null(&j, SSL_get_cipher_name(s->ssl));
    }
    jt_str(&j, ",\"helo\":");
    jt_wire_or_null(&j, s->helo);
    jt_str(&j, ",\"auth_user\":");
    jt_wire_or_null(&j, s->auth_user);
    jt_str(&j, ",\"from\":");
    jt_wire_or_null(&j, s->mail_from);
    jt_str(&j, ",\"rcpt\":[");
    for (size_t k = 0; k < json_array_size(s->rcpts); k++) {
        json_t *r = json_array_get(s->rcpts, k);
        if (k > 0)
            jt_put(&j, ",", 1);
        jt_wire(&j, json_string_value(r), json_string_length(r), NULL);
    }
    jt_str(&j, "],\"message_id\":");
    jt_wire_or_null(&j, hv->message_id);
    jt_str(&j, ",\"subject\":");
    jt_wire_or_null(&j, hv->subject);
    jt_str(&j, ",\"headers\":{");
    for (size_t k = 0; k < hv->n; k++) {
        if (k > 0)
            jt_put(&j, ",", 1);
        jt_wire_or_null(&j, hv->f[k].name);
        jt_put(&j, ":", 1);
        jt_wire_or_null(&j, hv->f[k].value);
    }
    jt_str(&j, "},\"size\":");
    jt_long(&j, (long long)d->len);
    jt_str(&j, ",\"raw\":");
    jt_wire(&j, d->data != NULL ? d->data : "", d->len, &lossy);
    if (lossy) {
        char *b64 = base64_encode((const unsigned char *)d->data, d->len);
        if (b64 != NULL) {
            jt_str(&j, ",\"raw_base64\":\"");
            jt_str(&j, b64);
            jt_put(&j, "\"", 1);
        }
        free(b64);
    }
    jt_str(&j, ",\"received_at_ms\":");
    jt_long(&j, (long long)received_ms);
    jt_str(&j, ",\"status\":");
    jt_long(&j, status);
    if (outcome != NULL) {
        jt_str(&j, ",\"outcome\":");
        jt_wire_or_null(&j, outcome);
    }
    jt_put(&j, "}", 1);
    if (j.failed) {
        free(j.p);
        return NULL;
    }
    *len = j.len;
    return j.p;
}

/* Handles DATA through the final reply; false when the connection must
 * close. */
static bool cmd_data(session *s)
{
    server *srv = s->srv;
    if (s->data == NULL && (s->data = calloc(1, sizeof(*s->data))) == NULL)
        return reply(s, "451 4.3.0 Local error: out of memory");
    data_buf *d = s->data;
    d->len = 0;
    d->total = 0;
    d->max = (size_t)srv->cfg.max_size;
    header_view hv = {0};
    char *rec = NULL;
    size_t reclen = 0;
    bool keep_open = false;

    if (!s->in_tx)
        return reply(s, "503 5.5.1 Need MAIL command");
    if (json_array_size(s->rcpts) == 0)
        return reply(s, "554 5.5.1 No valid recipients");
    if (!reply(s, "354 End data with <CR><LF>.<CR><LF>"))
        return false;
    if (!read_data(s, d))
        goto out;
    int64_t received_ms = ptime_realtime_ms();

    if (d->total > d->max) {
        atomic_fetch_add(&srv->counters.rejected, 1);
        keep_open = reply(s, "552 5.3.4 Message size exceeds fixed maximum message size");
        goto out;
    }
    if (!wait_while_hanging(s, "data")) {
        reply(s, "421 4.3.2 Service shutting down");
        goto out;
    }
    parse_headers(d->data != NULL ? d->data : "", d->len, &hv);

    fault_decision fd;
    fault_decide(srv->fault, "data", &fd);
    if (fd.delay_ms > 0)
        (void)session_flush(s);
    /* The delay passes in steps of SMTP_POLL_MS so a stop is not held up by
     * it (a benchmark's 50 ms is one sleep, not three wake-ups); the message
     * is still answered, as it has been received. */
    for (int64_t until = ptime_monotonic_ms() + fd.delay_ms, left;
         (left = until - ptime_monotonic_ms()) > 0 && !session_stopping(s);)
        ptime_sleep_ms(left < SMTP_POLL_MS ? (long)left : SMTP_POLL_MS);

    if (fd.status != 0) {
        atomic_fetch_add(&srv->counters.failed_injected, 1);
        if (srv->cfg.record_all) {
            rec = message_record(s, d, &hv, received_ms, fd.status, "injected", &reclen);
            if (rec != NULL)
                (void)record_log_append_text(srv->records, rec, reclen, NULL, NULL);
        }
        keep_open = reply_injected(s, fd.status, "data");
        goto out;
    }

    rec = message_record(s, d, &hv, received_ms, 250, srv->cfg.record_all ? "accepted" : NULL,
                         &reclen);
    long seq =
        rec != NULL ? record_log_append_text(srv->records, rec, reclen, hv.message_id, NULL) : -1;
    if (seq < 0) {
        keep_open = reply(s, "451 4.3.0 Local error: out of memory");
        goto out;
    }
    atomic_fetch_add(&srv->counters.accepted, 1);
    keep_open = reply(s, "250 2.0.0 Ok: queued as %08lX", seq);

out:
    tx_reset(s);
    free(rec);
    header_view_free(&hv);
    /* One outsized message does not pin its memory for the session's life. */
    if (d->cap > SMTP_KEEP_DATA_BYTES) {
        free(d->data);
        d->data = NULL;
        d->cap = 0;
    }
    return keep_open;
}

/* ---- the session ---- */

static bool cmd_ehlo(session *s, const char *arg, bool extended)
{
    const server *srv = s->srv;
    if (*arg == '\0')
        return reply(s, "501 5.5.4 Syntax: %s hostname", extended ? "EHLO" : "HELO");
    tx_reset(s);
    snprintf(s->helo, sizeof(s->helo), "%s", arg);
    s->greeted = true;
    if (!extended)
        return reply(s, "250 %s", srv->cfg.hostname);
    char lines[512];
    int n = snprintf(lines, sizeof(lines),
                     "250-%s greets %s\r\n250-8BITMIME\r\n250-SIZE %ld\r\n250-PIPELINING\r\n"
                     "250-ENHANCEDSTATUSCODES\r\n",
                     srv->cfg.hostname, s->helo, srv->cfg.max_size);
    if (srv->cfg.starttls && s->ssl == NULL)
        n += snprintf(lines + n, sizeof(lines) - (size_t)n, "250-STARTTLS\r\n");
    /* As relays set up for TLS do: no AUTH offered where it would be refused. */
    if (srv->cfg.user != NULL && !tls_missing(s))
        n += snprintf(lines + n, sizeof(lines) - (size_t)n, "250-AUTH PLAIN LOGIN\r\n");
    snprintf(lines + n, sizeof(lines) - (size_t)n, "250 HELP\r\n");
    return session_send(s, lines, strlen(lines));
}

static bool cmd_mail(session *s, const char *arg)
{
    server *srv = s->srv;
    char addr[512];
    const char *params = NULL;
    if (!s->greeted)
        return reply(s, "503 5.5.1 Send EHLO first");
    if (tls_missing(s)) {
        atomic_fetch_add(&srv->counters.rejected, 1);
        return reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    }
    if (srv->cfg.user != NULL && s->auth_user == NULL)
        return reply(s, "530 5.7.0 Authentication required");
    if (s->in_tx)
        return reply(s, "503 5.5.1 Nested MAIL command");
    if (strncasecmp(arg, "FROM:", 5) != 0 || parse_path(arg + 5, addr, sizeof(addr), &params) != 0)
        return reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
    if (check_mail_params(s, params) != 0)
        return true;
    s->mail_from = strdup(addr);
    s->rcpts = json_array();
    if (s->mail_from == NULL || s->rcpts == NULL) {
        tx_reset(s);
        return reply(s, "451 4.3.0 Local error: out of memory");
    }
    s->in_tx = true;
    atomic_fetch_add(&srv->counters.received, 1);
    return reply(s, "250 2.1.0 Ok");
}

static bool cmd_rcpt(session *s, const char *arg)
{
    server *srv = s->srv;
    char addr[512];
    const char *params = NULL;
    if (!s->in_tx)
        return reply(s, "503 5.5.1 Need MAIL command");
    if (strncasecmp(arg, "TO:", 3) != 0 || parse_path(arg + 3, addr, sizeof(addr), &params) != 0 ||
        addr[0] == '\0')
        return reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
    if ((long)json_array_size(s->rcpts) >= srv->cfg.max_rcpts)
        return reply(s, "452 4.5.3 Too many recipients");
    if (!wait_while_hanging(s, "rcpt")) {
        reply(s, "421 4.3.2 Service shutting down");
        return false;
    }
    /* One decision per transaction: every RCPT of a failed message fails. */
    if (!s->tx_decided) {
        fault_decision fd;
        fault_decide(srv->fault, "rcpt", &fd);
        s->tx_decided = true;
        s->tx_injected = fd.status;
        if (fd.status != 0)
            atomic_fetch_add(&srv->counters.failed_injected, 1);
    }
    if (s->tx_injected != 0)
        return reply_injected(s, s->tx_injected, "rcpt");
    json_array_append_new(s->rcpts, wire_string(addr, strlen(addr), NULL));
    return reply(s, "250 2.1.5 Ok");
}

/* Handles STARTTLS (RFC 3207); false when the connection must close. */
static bool cmd_starttls(session *s, const char *arg)
{
    if (s->ssl != NULL)
        return reply(s, "503 5.5.1 TLS already active");
    if (!s->srv->cfg.starttls)
        return reply(s, "502 5.5.1 STARTTLS not supported");
    if (*arg != '\0')
        return reply(s, "501 5.5.4 Syntax: STARTTLS");
    if (!s->greeted)
        return reply(s, "503 5.5.1 Send EHLO first");
    if (!reply(s, "220 2.0.0 Ready to start TLS") || !session_flush(s))
        return false;
    /* Clear text pipelined after STARTTLS must not be read as if it had
     * come over TLS (the command injection of CVE-2011-0411): drop it. */
    s->start = s->end = 0;
    if (!tls_start(s, "starttls"))
        return false;
    /* RFC 3207 4.2: forget what the client said in clear; it greets again. */
    tx_reset(s);
    s->greeted = false;
    s->helo[0] = '\0';
    free(s->auth_user);
    s->auth_user = NULL;
    return true;
}

/* Runs one command; false when the connection must close. */
static bool session_command(session *s, char *line)
{
    char *arg = line;
    while (*arg != '\0' && *arg != ' ')
        arg++;
    size_t vlen = (size_t)(arg - line);
    while (*arg == ' ')
        arg++;
#define VERB_IS(v) (vlen == sizeof(v) - 1 && strncasecmp(line, v, vlen) == 0)
    if (VERB_IS("EHLO"))
        return cmd_ehlo(s, arg, true);
    if (VERB_IS("HELO"))
        return cmd_ehlo(s, arg, false);
    if (VERB_IS("MAIL"))
        return cmd_mail(s, arg);
    if (VERB_IS("RCPT"))
        return cmd_rcpt(s, arg);
    if (VERB_IS("DATA"))
        return cmd_data(s);
    if (VERB_IS("AUTH"))
        return cmd_auth(s, arg);
    if (VERB_IS("RSET")) {
        tx_reset(s);
        return reply(s, "250 2.0.0 Ok");
    }
    if (VERB_IS("NOOP"))
        return reply(s, "250 2.0.0 Ok");
    if (VERB_IS("QUIT")) {
        reply(s, "221 2.0.0 Bye");
        return false;
    }
    if (VERB_IS("VRFY"))
        return reply(s, "252 2.5.0 Cannot VRFY user, but will accept message");
    if (VERB_IS("HELP"))
        return reply(s,
                     "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT");
    if (VERB_IS("STARTTLS"))
        return cmd_starttls(s, arg);
#undef VERB_IS
    return reply(s, "500 5.5.2 Command not recognized");
}

static void *session_thread(void *arg)
{
    session *s = arg;
    server *srv = s->srv;
    char *line = malloc(SMTP_MAX_LINE);

    if (line == NULL)
        goto out;
    /* smtps: the handshake comes first, the greeting (and its hang) after. */
    if (srv->cfg.tls && !tls_start(s, "implicit"))
        goto out;
    if (!wait_while_hanging(s, "greeting")) {
        reply(s, "421 4.3.2 Service shutting down");
        goto out;
    }
    if (!reply(s, "220 %s ESMTP ready", srv->cfg.hostname))
        goto out;
    for (;;) {
        read_result r = session_read_line(s, line, SMTP_MAX_LINE);
        if (r == READ_CLOSED) {
            if (session_stopping(s))
                reply(s, "421 4.3.2 Service shutting down");
            else if (s->timed_out)
                reply(s, "421 4.4.2 Idle timeout, closing connection");
            break;
        }
        if (r == READ_TOO_LONG) {
            if (!reply(s, "500 5.5.6 Line too long"))
                break;
            continue;
        }
        if (!session_command(s, line))
            break;
    }

out:
    (void)session_flush(s); /* the last replies, 221 or 421 among them */
    free(line);
    tx_reset(s);
    if (s->data != NULL)
        free(s->data->data);
    free(s->data);
    free(s->auth_user);
    tls_end(s);
    close(s->fd);
    free(s);
    atomic_fetch_sub(&srv->active, 1);
    return NULL;
}

/* ---- program ---- */

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void add_stats(json_t *stats, void *arg)
{
    server *srv = arg;
    json_object_set_new(stats, "connections", json_integer(atomic_load(&srv->connections)));
    json_object_set_new(stats, "active_connections", json_integer(atomic_load(&srv->active)));
    json_object_set_new(stats, "tls_handshakes", json_integer(atomic_load(&srv->tls_handshakes)));
    json_object_set_new(stats, "tls_failures", json_integer(atomic_load(&srv->tls_failures)));
}

static void accept_one(server *srv, int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    atomic_fetch_add(&srv->connections, 1);
    if (atomic_load(&srv->active) >= srv->cfg.max_conns) {
        /* A smtps client expects a handshake, not text: it just sees the close. */
        static const char busy[] = "421 4.7.0 Too many connections, try again later\r\n";
        if (!srv->cfg.tls)
            (void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL);
        close(fd);
        return;
    }
    session *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        return;
    }
    s->srv = srv;
    s->fd = fd;
    struct timeval rcvtimeo = {.tv_sec = 0, .tv_usec = SMTP_POLL_MS * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcvtimeo, sizeof(rcvtimeo));
    /* Replies are already gathered into one write per turn (session_send):
     * Nagle would only hold back the next one, behind the client's delayed
     * ACK, when a pipelining client's replies need two writes. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    atomic_fetch_add(&srv->active, 1);
    if (pthread_create(&t, &attr, session_thread, s) != 0) {
        atomic_fetch_sub(&srv->active, 1);
        close(fd);
        free(s);
    }
    pthread_attr_destroy(&attr);
}

static const char usage[] =
    "Usage: " PROGRAM " [flags]\n"
    "\n"
    "A local SMTP server for Herald's tests (RFC 5321 subset: EHLO/HELO, AUTH PLAIN\n"
    "and LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT), recording each message as a\n"
    "JSON line, with the control API (/_control, /_records, /_stats) on its own\n"
    "HTTP port.  Plain SMTP by default; with --cert and --key, STARTTLS\n"
    "(--starttls) or TLS from the first byte (--tls, smtps), and --require-tls\n"
    "to refuse AUTH and MAIL in clear text.  Prints\n"
    "\"listening on HOST:PORT control HOST:PORT\" once ready.";

int main(int argc, char **argv)
{
    int exit_code = 1;
    int lfd = -1, cfd = -1;
    int port = 0, cport = 0;
    char err[256];
    server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return 1;
    }
    smtp_config *cfg = &srv->cfg;
    cfg->listen = "127.0.0.1:0";
    cfg->control = "127.0.0.1:0";
    cfg->keep = 100000;
    cfg->hostname = "herald-test-smtp";
    cfg->max_size = 10L * 1024 * 1024;
    cfg->max_rcpts = 100;
    cfg->max_conns = 512;
    cfg->idle_timeout_s = 300;
    cfg->fail_stage = "data";
    cfg->hang_stage = "data";
    fault_settings_defaults(FAULT_SMTP, &cfg->fault);

    const flag_spec flags[] = {
        {"listen", FLAG_STRING, &cfg->listen, "ADDR", "SMTP on HOST:PORT (port 0: any free port)",
         0, 0},
        {"control", FLAG_STRING, &cfg->control, "ADDR", "control API (HTTP) on HOST:PORT", 0, 0},
        {"record", FLAG_STRING, &cfg->record, "FILE",
         "append accepted messages to FILE as JSON lines", 0, 0},
        {"record-all", FLAG_BOOL, &cfg->record_all, NULL,
         "record messages failed by injection too, with \"outcome\"", 0, 0},
        {"keep", FLAG_LONG, &cfg->keep, "N", "records kept in memory for GET /_records", 0,
         100000000},
        {"user", FLAG_STRING, &cfg->user, "USER", "require AUTH PLAIN/LOGIN as USER", 0, 0},
        {"password", FLAG_STRING, &cfg->password, "PASS", "password of --user", 0, 0},
        {"hostname", FLAG_STRING, &cfg->hostname, "NAME", "name in the greeting and EHLO reply", 0,
         0},
        {"max-size", FLAG_LONG, &cfg->max_size, "BYTES", "largest message accepted (SIZE)", 1024,
         1073741824},
        {"max-rcpts", FLAG_LONG, &cfg->max_rcpts, "N", "recipients per message", 1, 10000},
        {"max-conns", FLAG_LONG, &cfg->max_conns, "N", "concurrent connections (one thread each)",
         1, 10000},
        {"idle-timeout", FLAG_LONG, &cfg->idle_timeout_s, "S",
         "close a silent connection after S seconds", 1, 86400},
        {"latency-ms", FLAG_LONG, &cfg->fault.latency_ms, "N",
         "delay before the reply to end of DATA", 0, 600000},
        {"latency-jitter-ms", FLAG_LONG, &cfg->fault.latency_jitter_ms, "N",
         "uniform extra delay 0..N", 0, 600000},
        {"fail-status", FLAG_LONG, &cfg->fault.fail_status, "N",
         "reply code of injected failures (4xx/5xx)", 400, 599},
        {"fail-count", FLAG_LONG, &cfg->fault.fail_count, "N", "fail the first N messages", 0,
         1000000000},
        {"fail-rate", FLAG_DOUBLE, &cfg->fault.fail_rate, "R",
         "then fail this fraction of messages", 0, 1},
        {"fail-stage", FLAG_STRING, &cfg->fail_stage, "STAGE",
         "where failures are injected: rcpt or data", 0, 0},
        {"hang", FLAG_BOOL, &cfg->fault.hang, NULL, "hold sessions until the hang is lifted", 0, 0},
        {"hang-stage", FLAG_STRING, &cfg->hang_stage, "STAGE",
         "where sessions hang: greeting, rcpt or data", 0, 0},
        {"starttls", FLAG_BOOL, &cfg->starttls, NULL,
         "offer and accept STARTTLS (needs --cert and --key)", 0, 0},
        {"tls", FLAG_BOOL, &cfg->tls, NULL,
         "TLS from the first byte, as smtps:// expects (needs --cert and --key)", 0, 0},
        {"require-tls", FLAG_BOOL, &cfg->require_tls, NULL,
         "refuse AUTH and MAIL before STARTTLS with 530", 0, 0},
        {"cert", FLAG_STRING, &cfg->cert, "FILE",
         "PEM certificate chain, the server's certificate first", 0, 0},
        {"key", FLAG_STRING, &cfg->key, "FILE", "PEM private key of --cert", 0, 0},
        {NULL, FLAG_BOOL, NULL, NULL, NULL, 0, 0},
    };
    flags_status fs = flags_parse(flags, argc, argv, usage, err, sizeof(err));
    if (fs == FLAGS_HELP) {
        exit_code = 0;
        goto out;
    }
    if (fs == FLAGS_ERROR) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        exit_code = 2;
        goto out;
    }
    if ((cfg->user == NULL) != (cfg->password == NULL)) {
        fprintf(stderr, PROGRAM ": --user and --password go together\n");
        exit_code = 2;
        goto out;
    }
    if (cfg->starttls && cfg->tls) {
        fprintf(stderr, PROGRAM ": --starttls and --tls exclude each other (one upgrades a plain "
                                "port, the other is TLS from the first byte)\n");
        exit_code = 2;
        goto out;
    }
    if ((cfg->starttls || cfg->tls) && (cfg->cert == NULL || cfg->key == NULL)) {
        fprintf(stderr, PROGRAM ": --%s needs --cert and --key\n", cfg->tls ? "tls" : "starttls");
        exit_code = 2;
        goto out;
    }
    if (!cfg->starttls && !cfg->tls &&
        (cfg->cert != NULL || cfg->key != NULL || cfg->require_tls)) {
        fprintf(stderr, PROGRAM ": --%s needs --starttls or --tls\n",
                cfg->require_tls    ? "require-tls"
                : cfg->cert != NULL ? "cert"
                                    : "key");
        exit_code = 2;
        goto out;
    }
    if (cfg->starttls || cfg->tls) {
        srv->tls = tls_context_new(cfg->cert, cfg->key, err, sizeof(err));
        if (srv->tls == NULL) {
            fprintf(stderr, PROGRAM ": %s\n", err);
            exit_code = 2;
            goto out;
        }
    }
    snprintf(cfg->fault.fail_stage, sizeof(cfg->fault.fail_stage), "%s", cfg->fail_stage);
    snprintf(cfg->fault.hang_stage, sizeof(cfg->fault.hang_stage), "%s", cfg->hang_stage);
    srv->fault = fault_new(FAULT_SMTP, &cfg->fault, NULL, err, sizeof(err));
    if (srv->fault == NULL) {
        fprintf(stderr, PROGRAM ": %s\n", err);
        exit_code = 2;
        goto out;
    }
    srv->records = record_log_open(cfg->record, cfg->keep, err, sizeof(err));
    if (srv->records == NULL) {
        fprintf(stderr, PROGRAM ": --record: %s\n", err);
        goto out;
    }
    srv->api = (control_api){.fault = srv->fault,
                             .records = srv->records,
                             .counters = &srv->counters,
                             .add_stats = add_stats,
                             .arg = srv};

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    listener_raise_fd_limit();

    lfd = listener_open(cfg->listen, &port, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, PROGRAM ": --listen: %s\n", err);
        goto out;
    }
    cfd = listener_open(cfg->control, &cport, err, sizeof(err));
    if (cfd < 0) {
        fprintf(stderr, PROGRAM ": --control: %s\n", err);
        goto out;
    }
    srv->ctl = control_server_start(&srv->api, cfd, err, sizeof(err));
    cfd = -1; /* taken by control_server_start either way */
    if (srv->ctl == NULL) {
        fprintf(stderr, PROGRAM ": --control: %s\n", err);
        goto out;
    }
    printf("listening on 127.0.0.1:%d control 127.0.0.1:%d\n", port, cport);
    fflush(stdout);

    /* Main loop: accept with a short poll, then the periodic record flush. */
    int64_t next_flush = ptime_monotonic_ms() + 50;
    while (!stop_requested) {
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) > 0)
            accept_one(srv, lfd);
        if (ptime_monotonic_ms() >= next_flush) {
            if (record_log_flush(srv->records) != 0)
                fprintf(stderr, PROGRAM ": writing %s failed\n", cfg->record);
            next_flush = ptime_monotonic_ms() + 50;
        }
    }

    /* Shutdown: stop intake, let sessions answer and leave, flush. */
    close(lfd);
    lfd = -1;
    atomic_store(&srv->stopping, true);
    int64_t deadline = ptime_monotonic_ms() + SHUTDOWN_DRAIN_MS;
    while (atomic_load(&srv->active) > 0 && ptime_monotonic_ms() < deadline)
        ptime_sleep_ms(5);
    if (atomic_load(&srv->active) > 0) {
        fprintf(stderr, PROGRAM ": %ld sessions still open at shutdown\n",
                atomic_load(&srv->active));
        /* Their threads still use the server: leave it allocated. */
        control_server_stop(srv->ctl);
        (void)record_log_flush(srv->records);
        return 1;
    }
    exit_code = 0;

out:
    if (lfd >= 0)
        close(lfd);
    if (cfd >= 0)
        close(cfd);
    control_server_stop(srv->ctl);
    record_log_close(srv->records);
    fault_free(srv->fault);
    SSL_CTX_free(srv->tls);
    free(srv);
    return exit_code;
}

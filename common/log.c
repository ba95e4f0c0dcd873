/*
 * log: one line per call, composed in a stack buffer and written with a
 * single write(2) to stderr.
 *
 * Lines are capped at PIPE_BUF (4096) bytes: POSIX makes writes of that
 * size atomic on pipes, so lines from concurrent threads and processes
 * sharing a log pipe (systemd, docker) never interleave, without a lock.
 * A longer message is cut at a character boundary and ends with "…".
 *
 * Messages are escaped for the output format: control characters and
 * invalid UTF-8 cannot forge a second line or break a JSON consumer, which
 * matters because messages quote user input (types, user ids, errors).
 */
#include "log.h"

#include "timeutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX    4096 /* PIPE_BUF on Linux */
#define LOG_CTX_MAX     256
#define LOG_PROGRAM_MAX 64

static const char ellipsis[] = "\xe2\x80\xa6"; /* U+2026 */

log_level log_min_level = LOG_LEVEL_INFO;

static char log_program[LOG_PROGRAM_MAX] = "herald";
static log_format log_out_format = LOG_FORMAT_TEXT;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const level_labels[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
static const char *const format_names[] = {"text", "json"};

void log_init(const char *program, log_level level, log_format format)
{
    if (program != NULL)
        snprintf(log_program, sizeof log_program, "%s", program);
    log_min_level = level;
    log_out_format = format;
}

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; s != NULL && i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_format_parse(const char *s, log_format *out)
{
    for (int i = 0; s != NULL && i < 2; i++) {
        if (strcasecmp(s, format_names[i]) == 0) {
            *out = (log_format)i;
            return 0;
        }
    }
    return -1;
}

/* A bounded line under construction; appends that do not fit are refused whole. */
typedef struct linebuf {
    char *buf;
    size_t cap;
    size_t len;
} linebuf;

static bool lb_put(linebuf *b, const char *s, size_t n, size_t limit)
{
    if (b->len + n > limit)
        return false;
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return true;
}

static bool lb_puts(linebuf *b, const char *s)
{
    return lb_put(b, s, strlen(s), b->cap);
}

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        len = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        len = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*
 * Appends src escaped for the format, stopping before the first unit that
 * would pass limit.  Returns false if src did not fit entirely.
 */
static bool lb_escaped(linebuf *b, const char *src, size_t srclen, bool json, size_t limit)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t i = 0;
    while (i < srclen) {
        char tmp[8];
        const char *out = tmp;
        size_t n;
        unsigned char c = s[i];
        size_t seq = utf8_seq(s + i, srclen - i);
        if (seq > 1) {
            out = (const char *)s + i;
            n = seq;
        } else if (seq == 0) {
            /* JSON strings must be valid UTF-8: substitute; text shows the raw byte. */
            n = (size_t)snprintf(tmp, sizeof tmp, json ? "\\ufffd" : "\\x%02x", c);
            seq = 1;
        } else if (c == '\n') {
            n = 2, out = "\\n";
        } else if (c == '\r') {
            n = 2, out = "\\r";
        } else if (c == '\t') {
            n = json ? 2 : 1, out = json ? "\\t" : "\t";
        } else if (json && (c == '"' || c == '\\')) {
            tmp[0] = '\\', tmp[1] = (char)c, n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            n = (size_t)snprintf(tmp, sizeof tmp, json ? "\\u%04x" : "\\x%02x", c);
        } else {
            tmp[0] = (char)c, n = 1;
        }
        if (!lb_put(b, out, n, limit))
            return false;
        i += seq;
    }
    return true;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere left to report a failing stderr */
        p += w;
        n -= (size_t)w;
    }
}

void log_write(log_level level, const char *ctx, const char *fmt, ...)
{
    int saved_errno = errno;
    if ((int)level < LOG_LEVEL_DEBUG || level > LOG_LEVEL_ERROR)
        level = LOG_LEVEL_ERROR;

    /* The message buffer is as large as the line, so a message long enough to be
     * cut by vsnprintf is always cut first, at a character boundary, by the line limit. */
    char msg[LOG_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    int mn = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t msglen = mn < 0 ? 0 : (size_t)mn < sizeof msg ? (size_t)mn : sizeof msg - 1;

    char ts[TIMEUTIL_RFC3339_SIZE];
    timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts);

    char line[LOG_LINE_MAX];
    linebuf b = {line, sizeof line, 0};
    bool json = log_out_format == LOG_FORMAT_JSON;
    const char *tail = json ? "\"}\n" : "\n";
    size_t reserve = strlen(tail) + sizeof ellipsis - 1;
    size_t ctxlen = ctx != NULL ? strnlen(ctx, LOG_CTX_MAX) : 0;
    bool whole;

    if (json) {
        lb_puts(&b, "{\"ts\":\"");
        lb_puts(&b, ts);
        lb_puts(&b, "\",\"level\":\"");
        lb_puts(&b, level_names[level]);
        lb_puts(&b, "\",\"program\":\"");
        lb_escaped(&b, log_program, strlen(log_program), true, b.cap - reserve);
        if (ctx != NULL) {
            lb_puts(&b, "\",\"ctx\":\"");
            lb_escaped(&b, ctx, ctxlen, true, b.cap - reserve);
        }
        lb_puts(&b, "\",\"msg\":\"");
        whole = lb_escaped(&b, msg, msglen, true, b.cap - reserve);
    } else {
        lb_puts(&b, ts);
        lb_puts(&b, " ");
        lb_puts(&b, level_labels[level]);
        lb_puts(&b, " ");
        lb_escaped(&b, log_program, strlen(log_program), false, b.cap - reserve);
        lb_puts(&b, " ");
        if (ctx != NULL) {
            lb_puts(&b, "[");
            lb_escaped(&b, ctx, ctxlen, false, b.cap - reserve);
            lb_puts(&b, "] ");
        }
        whole = lb_escaped(&b, msg, msglen, false, b.cap - reserve);
    }
    if (!whole || (mn >= 0 && (size_t)mn >= sizeof msg))
        lb_puts(&b, ellipsis);
    lb_puts(&b, tail);

    write_all(STDERR_FILENO, line, b.len);
    errno = saved_errno;
}

/* ---- redaction ---- */

/* An output that keeps the first outlen-1 bytes and always ends with a NUL. */
typedef struct redact_out {
    char *buf;
    size_t cap;
    size_t len;
} redact_out;

static void ro_put(redact_out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++)
        o->buf[o->len++] = s[i];
    o->buf[o->len] = '\0';
}

static bool ends_with_ci(const char *s, size_t n, const char *suffix)
{
    size_t m = strlen(suffix);
    return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

/* Keys whose values are credentials: password, sslpassword, auth_token, client_secret... */
static bool secret_key(const char *key, size_t n)
{
    return ends_with_ci(key, n, "password") || ends_with_ci(key, n, "secret") ||
           ends_with_ci(key, n, "token");
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_keychar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* libpq keyword/value form: key = value | key = 'quoted \' value'. */
static void redact_keywords(const char *s, redact_out *o)
{
    size_t i = 0;
    while (s[i] != '\0') {
        if (is_space(s[i])) {
            ro_put(o, s + i, 1);
            i++;
            continue;
        }
        size_t key_end = i;
        while (is_keychar(s[key_end]))
            key_end++;
        size_t v = key_end;
        while (is_space(s[v]))
            v++;
        if (key_end == i || s[v] != '=') {
            /* Not key=value: copy the word through. */
            size_t w = i;
            while (s[w] != '\0' && !is_space(s[w]))
                w++;
            ro_put(o, s + i, w - i);
            i = w;
            continue;
        }
        v++;
        while (is_space(s[v]))
            v++;
        size_t end = v;
        if (s[end] == '\'') {
            end++;
            while (s[end] != '\0' && s[end] != '\'') {
                if (s[end] == '\\' && s[end + 1] != '\0')
                    end++;
                end++;
            }
            if (s[end] == '\'')
                end++;
        } else {
            while (s[end] != '\0' && !is_space(s[end]))
                end++;
        }
        ro_put(o, s + i, v - i);
        if (secret_key(s + i, key_end - i))
            ro_put(o, "***", 3);
        else
            ro_put(o, s + v, end - v);
        i = end;
    }
}

/* URL query "a=1&password=x": the values of secret keys become ***. */
static void redact_query(const char *q, redact_out *o)
{
    while (*q != '\0' && *q != '#') {
        size_t n = strcspn(q, "&#");
        const char *eq = memchr(q, '=', n);
        if (eq != NULL && secret_key(q, (size_t)(eq - q))) {
            ro_put(o, q, (size_t)(eq - q) + 1);
            ro_put(o, "***", 3);
        } else {
            ro_put(o, q, n);
        }
        q += n;
        if (*q == '&') {
            ro_put(o, "&", 1);
            q++;
        }
    }
    ro_put(o, q, strlen(q));
}

char *log_redact_url(const char *url, char *out, size_t outlen)
{
    if (out == NULL || outlen == 0)
        return out;
    out[0] = '\0';
    if (url == NULL)
        return out;
    redact_out o = {out, outlen, 0};

    const char *sep = strstr(url, "://");
    if (sep == NULL) {
        redact_keywords(url, &o);
        return out;
    }
    const char *auth = sep + 3;
    ro_put(&o, url, (size_t)(auth - url));

    /* The userinfo ends at the last '@' before the query: a password with an
     * unencoded '/' or '@' must not end it early and leak its tail. */
    size_t before_query = strcspn(auth, "?");
    const char *at = NULL;
    for (size_t i = 0; i < before_query; i++)
        if (auth[i] == '@')
            at = auth + i;
    const char *rest = auth;
    if (at != NULL) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon != NULL) {
            ro_put(&o, auth, (size_t)(colon - auth) + 1);
            ro_put(&o, "***", 3);
            rest = at;
        }
    }
    size_t upto_query = strcspn(rest, "?");
    ro_put(&o, rest, upto_query);
    if (rest[upto_query] == '?') {
        ro_put(&o, "?", 1);
        redact_query(rest + upto_query + 1, &o);
    }
    return out;
}

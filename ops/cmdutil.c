/*
 * cmdutil: see cmdutil.h.
 */
#include "cmdutil.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "timeutil.h"

#define PROGRESS_EVERY_MS 200

int cmdutil_time_flag(const char *cmd, const char *flag, const char *value, int64_t *out_ms)
{
    char err[256];
    *out_ms = -1;
    if (value == NULL || *value == '\0')
        return 0;
    if (timeutil_parse_time(value, timeutil_now_ms(), out_ms, err, sizeof(err)) != 0) {
        /* err quotes the value and says what is expected. */
        fprintf(stderr, "heraldctl %s: --%s: %s\n", cmd, flag, err);
        *out_ms = -1;
        return -1;
    }
    return 0;
}

kafka_producer *cmdutil_producer(const ctl_context *ctx, const char *cmd, int timeout_ms)
{
    char err[512], timeout[32];
    /* A default: the operator's -X pairs win. */
    snprintf(timeout, sizeof(timeout), "%d", timeout_ms);
    config_kv timeout_kv = {(char *)"message.timeout.ms", timeout};
    config_kafka_props defaults = {&timeout_kv, 1};
    kafka_producer *p = kafka_producer_new(ctx->common.kafka_brokers, &defaults, &ctx->kafka_props,
                                           NULL, err, sizeof(err));
    if (p == NULL)
        cmdutil_kafka_error(ctx, cmd, "cannot create a producer", err);
    return p;
}

void cmdutil_progress_init(cmdutil_progress *p)
{
    *p = (cmdutil_progress){.tty = isatty(STDERR_FILENO) == 1};
}

void cmdutil_progress_update(cmdutil_progress *p, bool force, const char *fmt, ...)
{
    if (!p->tty)
        return;
    int64_t now = timeutil_monotonic_ms();
    if (!force && p->drawn && now - p->last_ms < PROGRESS_EVERY_MS)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* \r and erase-to-end-of-line: one line, redrawn in place. */
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->last_ms = now;
    p->drawn = true;
}

void cmdutil_progress_done(cmdutil_progress *p)
{
    if (p->tty && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->drawn = false;
}

void cmdutil_kafka_error(const ctl_context *ctx, const char *cmd, const char *what, const char *err)
{
    fprintf(stderr, "heraldctl %s: %s (Kafka at %s): %s\n", cmd, what, ctx->common.kafka_brokers,
            err);
}

/* The answer's bytes, capped: a gateway answer larger than any rule listing is refused. */
typedef struct http_answer {
    char *data;
    size_t len;
    bool over;
} http_answer;

static size_t keep_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    http_answer *a = userdata;
    size_t n = size * nmemb;
    if (a->over || a->len + n > CMDUTIL_GATEWAY_MAX_BODY) {
        a->over = true;
        return 0;
    }
    char *grown = realloc(a->data, a->len + n + 1);
    if (grown == NULL) {
        a->over = true;
        return 0;
    }
    memcpy(grown + a->len, ptr, n);
    a->data = grown;
    a->len += n;
    a->data[a->len] = '\0';
    return n;
}

int cmdutil_gateway_call(const cmdutil_gateway *g, const char *cmd, const char *method,
                         const char *path, const char *body, size_t body_len, long *status,
                         json_t **out)
{
    char url[1024], auth[512];
    http_answer a = {0};
    struct curl_slist *headers = NULL;
    int rc = -1;
    *status = 0;
    *out = NULL;
    size_t ulen = strlen(g->url);
    while (ulen > 0 && g->url[ulen - 1] == '/')
        ulen--;
    snprintf(url, sizeof(url), "%.*s%s", (int)ulen, g->url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", g->api_key != NULL ? g->api_key : "");
    CURL *c = curl_easy_init();
    if (c == NULL) {
        fprintf(stderr, "heraldctl %s: cannot create an HTTP client\n", cmd);
        return -1;
    }
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/json");
    if (body != NULL) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "heraldctl %s: cannot reach the gateway at %.*s: %s\n", cmd, (int)ulen,
                g->url, a.over ? "the answer is too large" : curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (a.len > 0)
        *out = json_loadb(a.data, a.len, 0, NULL);
    rc = 0;
out:
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    free(a.data);
    return rc;
}

int cmdutil_add_query(char *path, size_t len, const char *name, const char *value)
{
    if (value == NULL)
        return 0;
    char *esc = curl_easy_escape(NULL, value, 0);
    if (esc == NULL)
        return -1;
    size_t used = strlen(path);
    int n = snprintf(path + used, len - used, "&%s=%s", name, esc);
    curl_free(esc);
    return n < 0 || (size_t)n >= len - used ? -1 : 0;
}

void cmdutil_gateway_error(const char *cmd, long status, const json_t *answer)
{
    json_t *e = json_object_get(answer, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    fprintf(stderr, "heraldctl %s: HTTP %ld: %s", cmd, status, msg != NULL ? msg : "no message");
    /* The field, unless the message starts with it ("address must be ...",
     * "channels: ...", as the gateway's messages do). */
    size_t n = field != NULL ? strlen(field) : 0;
    if (n > 0 && (msg == NULL || strncmp(msg, field, n) != 0 || (msg[n] != ' ' && msg[n] != ':')))
        fprintf(stderr, " (field %s)", field);
    fprintf(stderr, "\n");
}

int cmdutil_gateway_request(const cmdutil_gateway *g, const char *cmd, const char *method,
                            const char *path, const char *body, size_t body_len, json_t **out)
{
    long status = 0;
    *out = NULL;
    if (cmdutil_gateway_call(g, cmd, method, path, body, body_len, &status, out) != 0)
        return -1;
    if (status >= 200 && status <= 299)
        return 0;
    cmdutil_gateway_error(cmd, status, *out);
    json_decref(*out);
    *out = NULL;
    return -1;
}

/* "list, add or remove" */
static void sub_names(const cmdutil_sub *subs, size_t nsubs, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nsubs && n < outlen; i++) {
        const char *sep = i == 0 ? "" : i + 1 == nsubs ? " or " : ", ";
        int w = snprintf(out + n, outlen - n, "%s%s", sep, subs[i].name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

int cmdutil_parse_sub(const char *cmd, const char *usage, const cmdutil_sub *subs, size_t nsubs,
                      const config_var *vars, void *flags, int argc, char **argv,
                      cmdutil_subcmd *out)
{
    char names[256];
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "%s\n", usage);
        return argc < 2 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
    }
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nsubs && out->sub == NULL; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            out->sub = &subs[i];
    if (out->sub == NULL) {
        sub_names(subs, nsubs, names, sizeof names);
        fprintf(stderr, "heraldctl %s: unknown subcommand \"%s\" (expected %s)\n", cmd, argv[1],
                names);
        return CTL_EXIT_USAGE;
    }
    snprintf(out->name, sizeof out->name, "%s %s", cmd, out->sub->name);
    int nargs = out->sub->nargs;
    for (int i = 0; i < nargs; i++) {
        const char *a = 2 + i < argc ? argv[2 + i] : NULL;
        if (a == NULL || a[0] == '-' || (out->sub->valid != NULL && !out->sub->valid(a))) {
            fprintf(stderr, "heraldctl %s: expected %s\n", out->name, out->sub->args);
            return CTL_EXIT_USAGE;
        }
    }
    out->args = argv + 2;
    /* The last positional (or the subcommand) stands where the parser expects a program name. */
    int skip = 1 + nargs, first = 0;
    config_status st =
        ctl_parse_flags(out->name, usage, vars, flags, argc - skip, argv + skip, &first);
    if (st != CONFIG_OK)
        return st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (first < argc - skip) {
        fprintf(stderr, "heraldctl %s: unexpected argument \"%s\"\n", out->name,
                argv[skip + first]);
        return CTL_EXIT_USAGE;
    }
    return -1;
}

bool cmdutil_have_key(const char *name, const char *api_key, const char *what)
{
    if (api_key != NULL && api_key[0] != '\0')
        return true;
    fprintf(stderr, "heraldctl %s: %s is needed (HERALD_API_KEY or --api-key)\n", name, what);
    return false;
}

void cmdutil_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}

void cmdutil_cell_text(const json_t *v, char *out, size_t outlen)
{
    out[0] = '\0';
    if (json_is_string(v)) {
        snprintf(out, outlen, "%s", json_string_value(v));
    } else if (json_is_integer(v)) {
        snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
    } else if (json_is_array(v)) {
        size_t i, o = 0;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            int n = snprintf(out + o, outlen - o, "%s%s", i > 0 ? "," : "",
                             json_is_string(x) ? json_string_value(x) : "?");
            if (n < 0 || (size_t)n >= outlen - o)
                break;
            o += (size_t)n;
        }
    } else if (json_is_boolean(v)) {
        snprintf(out, outlen, "%s", json_is_true(v) ? "true" : "false");
    } else {
        snprintf(out, outlen, "-");
    }
}

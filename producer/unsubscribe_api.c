/*
 * unsubscribe_api: GET and POST /v1/unsubscribe.
 */
#include "unsubscribe_api.h"

#include "buf.h"
#include "log.h"
#include "timeutil.h"
#include "unsubtoken.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The page holds no script, style or image and posts only back to itself. */
#define PAGE_CSP        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
#define ONE_CLICK_FIELD "List-Unsubscribe"
#define ONE_CLICK_VALUE "One-Click"

/* Headers of every answer: the token in the URL must not leak or be cached. */
static void private_headers(http_request *req)
{
    http_add_header(req, "Cache-Control", "no-store");
    http_add_header(req, "Referrer-Policy", "no-referrer");
}

/*
 * Answers a plain HTML page.  The text is Herald's own and the only names
 * in it (category, channel) are of [a-z0-9_.-], so nothing needs escaping.
 */
static void page(http_request *req, int status, const char *title, const char *text,
                 bool with_button)
{
    buf b;
    buf_init(&b, 0);
    private_headers(req);
    http_add_header(req, "Content-Security-Policy", PAGE_CSP);
    http_add_header(req, "X-Content-Type-Options", "nosniff");
    /* An empty action posts to this very URL, token included, wherever a
     * proxy mounts the gateway. */
    if (buf_printf(&b,
                   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                   "<title>%s</title>\n</head>\n<body>\n<h1>%s</h1>\n<p>%s</p>\n%s</body>\n"
                   "</html>\n",
                   title, title, text,
                   with_button ? "<form method=\"post\" action=\"\">\n<input type=\"hidden\" "
                                 "name=\"" ONE_CLICK_FIELD "\" value=\"" ONE_CLICK_VALUE "\">\n"
                                 "<button type=\"submit\">Unsubscribe</button>\n</form>\n"
                               : "") != 0) {
        buf_free(&b);
        http_respond_error(req, 503, "overloaded", "out of memory", NULL);
        return;
    }
    size_t len = 0;
    char *body = buf_steal(&b, &len);
    http_respond_take(req, status, "text/html; charset=utf-8", body, len);
}

/*
 * Reads and checks the query's token into *t.  Returns -1 after answering
 * (a page when html, JSON otherwise): 503 when links are not enabled, 400
 * for a missing, malformed or forged token, 410 for an expired one.
 */
static int read_token(api_env *env, http_request *req, bool html, unsubtoken *t)
{
    if (env->unsubscribe_secret == NULL) {
        if (html) {
            page(req, 503, "Unsubscribe", "Unsubscribe links are not enabled on this server.",
                 false);
            return -1;
        }
        private_headers(req);
        http_respond_error(req, 503, "unsubscribe_disabled",
                           "unsubscribe links are not enabled: HERALD_UNSUBSCRIBE_SECRET is not "
                           "set",
                           NULL);
        return -1;
    }
    const char *token = http_request_query(req, "token");
    signedtoken_result r = SIGNEDTOKEN_MALFORMED;
    if (token != NULL)
        r = unsubtoken_verify(env->unsubscribe_secret, env->unsubscribe_secret_len, token,
                              strlen(token), timeutil_now_ms() / 1000, t);
    if (r == SIGNEDTOKEN_OK)
        return 0;
    http_request_log_field(req, "unsubscribe_token",
                           r == SIGNEDTOKEN_EXPIRED ? "expired"
                           : token == NULL          ? "missing"
                                                    : "invalid");
    bool expired = r == SIGNEDTOKEN_EXPIRED;
    if (html) {
        page(req, expired ? 410 : 400, "Unsubscribe",
             expired ? "This unsubscribe link has expired. The preferences of your account still "
                       "let you turn these messages off."
                     : "This unsubscribe link is not valid. Please use the link from a recent "
                       "message.",
             false);
        return -1;
    }
    private_headers(req);
    if (expired)
        http_respond_error(req, 410, "token_expired", "the unsubscribe link has expired", "token");
    else
        http_respond_error(req, 400, "invalid_token",
                           token == NULL ? "token is required" : "invalid unsubscribe token",
                           "token");
    return -1;
}

/* "marketing messages by email": what a token turns off, for people. */
static void describe(const unsubtoken *t, char *out, size_t outlen)
{
    static const char *const how[DELIVERY_CHANNEL_COUNT] = {"by email", "by SMS",
                                                            "as push notifications", "in the app"};
    snprintf(out, outlen, "%s messages %s", t->category, how[t->channel]);
}

void unsubscribe_api_page(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call, (void)phase;
    unsubtoken t;
    char what[160], text[320];
    if (read_token(env, req, true, &t) != 0)
        return;
    describe(&t, what, sizeof what);
    snprintf(text, sizeof text, "Stop receiving %s? This takes effect at once.", what);
    page(req, 200, "Unsubscribe", text, true);
}

/* Whether the client would rather read a page (a browser's form post). */
static bool wants_html(http_request *req)
{
    const char *accept = http_request_header(req, "Accept");
    return accept != NULL && strstr(accept, "text/html") != NULL;
}

/* Whether Content-Type is one of the two form encodings (parameters allowed). */
static bool is_form(http_request *req)
{
    const char *ct = http_request_header(req, "Content-Type");
    static const char *const forms[] = {"application/x-www-form-urlencoded", "multipart/form-data"};
    for (size_t i = 0; ct != NULL && i < 2; i++) {
        size_t n = strlen(forms[i]);
        if (strncasecmp(ct, forms[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '))
            return true;
    }
    return false;
}

void unsubscribe_api_post(api_env *env, http_request *req, api_call *call, http_phase phase)
{
    (void)call, (void)phase;
    unsubtoken t;
    char err[256], value[32], what[160], text[320];
    bool changed = false;
    if (read_token(env, req, false, &t) != 0)
        return;
    /* RFC 8058 section 3.1: the POST carries exactly this one field. */
    if (!is_form(req)) {
        private_headers(req);
        http_respond_error(req, 415, "unsupported_media_type",
                           "the body must be a form: application/x-www-form-urlencoded or "
                           "multipart/form-data",
                           NULL);
        return;
    }
    if (http_request_form_value(req, ONE_CLICK_FIELD, value, sizeof value) != 1 ||
        strcmp(value, ONE_CLICK_VALUE) != 0) {
        private_headers(req);
        api_bad_field(req, ONE_CLICK_FIELD,
                      "the body must be List-Unsubscribe=One-Click (RFC 8058)");
        return;
    }
    pg_conn *c = api_db(env, req);
    if (c == NULL)
        return;
    const char *channel = delivery_channel_name(t.channel);
    store_status st =
        store_prefs_unsubscribe(c, t.user_id, t.category, channel, &changed, err, sizeof err);
    pgpool_release(env->pool, c);
    api_unsubscribe_result result = changed ? API_UNSUBSCRIBED : API_UNSUBSCRIBE_ALREADY;
    if (st == STORE_NOT_FOUND) {
        result = API_UNSUBSCRIBE_NO_USER; /* see unsubscribe_api.h */
    } else if (st != STORE_OK) {
        api_store_error(req, st, "user", err);
        return;
    }
    metrics_counter_inc(env->unsubscribes[result]);
    LOG_INFO(http_request_id(req), "unsubscribe: user %s, %s on %s: %s", t.user_id, t.category,
             channel,
             result == API_UNSUBSCRIBED          ? "turned off"
             : result == API_UNSUBSCRIBE_ALREADY ? "already off"
                                                 : "no such user");
    if (wants_html(req)) {
        describe(&t, what, sizeof what);
        snprintf(text, sizeof text, "You will no longer receive %s.", what);
        page(req, 200, "Unsubscribed", text, false);
        return;
    }
    private_headers(req);
    http_respond_json(
        req, 200,
        json_pack("{s:b,s:s,s:s}", "unsubscribed", 1, "category", t.category, "channel", channel));
}

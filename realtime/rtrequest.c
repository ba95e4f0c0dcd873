/*
 * rtrequest: see rtrequest.h.
 */
#include "rtrequest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "usertoken.h"

/* The {id} of /v1/users/{id}/live into user_out; -1 when path is another. */
static int live_path_user(const char *path, char *user_out)
{
    size_t plen = strlen(RTREQUEST_PREFIX), slen = strlen(RTREQUEST_SUFFIX), len = strlen(path);
    if (len <= plen + slen || strncmp(path, RTREQUEST_PREFIX, plen) != 0 ||
        strcmp(path + len - slen, RTREQUEST_SUFFIX) != 0)
        return -1;
    size_t ulen = len - plen - slen;
    if (ulen > VALIDATE_USER_ID_MAX || validate_user_id(path + plen, ulen, NULL, 0) != 0)
        return -1;
    memcpy(user_out, path + plen, ulen);
    user_out[ulen] = '\0';
    return 0;
}

/* The value of the first argument called name ("token="), or NULL. */
static const char *arg(const rtrequest *req, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < req->nargs; i++)
        if (strncmp(req->args[i], name, nlen) == 0)
            return req->args[i] + nlen;
    return NULL;
}

static const char *request_token(const rtrequest *req)
{
    const char *t = arg(req, "token=");
    if (t != NULL)
        return t;
    const char *h = req->authorization;
    return h != NULL && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : NULL;
}

static int parse_last_event_id(const rtrequest *req, int64_t *out)
{
    const char *v = req->last_event_header;
    *out = -1;
    if (v == NULL)
        v = arg(req, "last_event_id=");
    if (v == NULL)
        return 0;
    char *end = NULL;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n < 0)
        return -1;
    *out = n;
    return 0;
}

unsigned rtrequest_admit(const rtrequest *req, const char *secret, int64_t now_s,
                         rtrequest_admission *out, const char **why)
{
    char tokuser[VALIDATE_USER_ID_MAX + 1] = "";
    out->last_event_id = -1;
    out->token_refused = false;
    if (req->path == NULL || live_path_user(req->path, out->user_id) != 0) {
        *why = "no such path: expected /v1/users/{id}/live";
        return 404;
    }
    const char *token = request_token(req);
    int64_t expires = 0;
    usertoken_result tr = token == NULL ? USERTOKEN_MALFORMED
                                        : usertoken_verify(secret, strlen(secret), token,
                                                           strlen(token), now_s, tokuser, &expires);
    if (tr != USERTOKEN_OK || strcmp(tokuser, out->user_id) != 0) {
        out->token_refused = true;
        *why = token == NULL             ? "a user token is required"
               : tr == USERTOKEN_OK      ? "the token is another user's"
               : tr == USERTOKEN_EXPIRED ? "the token has expired"
                                         : "the token is not valid";
        return tr == USERTOKEN_OK ? 403 : 401;
    }
    if (parse_last_event_id(req, &out->last_event_id) != 0) {
        *why = "last_event_id (or Last-Event-ID): expected an integer >= 0";
        return 400;
    }
    return 0;
}

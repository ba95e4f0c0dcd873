/*
 * libFuzzer target for herald-realtime's admission of a live-stream
 * request (rtrequest): the path, query arguments and headers are the
 * client's, so deciding on them must neither crash, leak nor read out of
 * bounds, must answer only the documented statuses with a reason, and
 * must admit only the user the path names, with a token of that user.
 *
 * Input: lines separated by '\n': the path, the Authorization header, the
 * Last-Event-ID header (an empty line is no header), then one query
 * argument per line.  The seeds hold tokens signed with SECRET that are
 * valid at NOW.
 */
#include "rtrequest.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usertoken.h"

#define SECRET   "fuzz-realtime-secret-0123456789abcdef"
#define NOW      1796000000
#define MAX_ARGS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[3 + MAX_ARGS];
    size_t n = 0;
    for (char *p = text; n < 3 + MAX_ARGS;) {
        lines[n++] = p;
        char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    const char *args[MAX_ARGS];
    rtrequest req = {.path = lines[0], .args = args};
    if (n > 1 && lines[1][0] != '\0')
        req.authorization = lines[1];
    if (n > 2 && lines[2][0] != '\0')
        req.last_event_header = lines[2];
    for (size_t i = 3; i < n; i++)
        args[req.nargs++] = lines[i];

    rtrequest_admission a;
    const char *why = NULL;
    unsigned st = rtrequest_admit(&req, SECRET, NOW, &a, &why);
    if (st == 0) {
        /* The path is exactly the user's live path... */
        size_t plen = strlen(RTREQUEST_PREFIX), ulen = strlen(a.user_id);
        if (ulen == 0 || strlen(req.path) != plen + ulen + strlen(RTREQUEST_SUFFIX) ||
            strncmp(req.path + plen, a.user_id, ulen) != 0 || a.last_event_id < -1 ||
            a.token_refused)
            abort();
        /* ...and some token the request carries is that user's, valid now. */
        char user[VALIDATE_USER_ID_MAX + 1];
        int64_t exp = 0;
        int ok = 0;
        for (size_t i = 0; i < req.nargs && !ok; i++)
            if (strncmp(args[i], "token=", 6) == 0 &&
                usertoken_verify(SECRET, strlen(SECRET), args[i] + 6, strlen(args[i] + 6), NOW,
                                 user, &exp) == USERTOKEN_OK &&
                strcmp(user, a.user_id) == 0)
                ok = 1;
        if (!ok && req.authorization != NULL && strlen(req.authorization) > 7 &&
            usertoken_verify(SECRET, strlen(SECRET), req.authorization + 7,
                             strlen(req.authorization + 7), NOW, user, &exp) == USERTOKEN_OK &&
            strcmp(user, a.user_id) == 0)
            ok = 1;
        if (!ok)
            abort();
    } else if ((st != 400 && st != 401 && st != 403 && st != 404) || why == NULL ||
               why[0] == '\0' || (a.token_refused != (st == 401 || st == 403))) {
        abort();
    }
    free(text);
    return 0;
}

/*
 * heraldctl token: mints a user token (docs/inapp.md), as
 * POST /v1/users/{id}/tokens does, for support and scripts.
 *
 *   heraldctl token --user ID [--ttl SECONDS]
 *
 * The secret is the gateway's, HERALD_USER_TOKEN_SECRET, read from the
 * environment only (a flag would show it in ps).  The token goes to stdout
 * alone; the user is not looked up, so a token can be made for a user that
 * is created later.
 */
#include "cmd.h"
#include "error.h"

#include "timeutil.h"
#include "usertoken.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define TOKEN_USAGE "usage: heraldctl token --user ID [--ttl SECONDS]"

typedef struct token_flags {
    char *user;
    long ttl;
    char *secret;
} token_flags;

static const config_var token_vars[] = {
    {.flag = "user",
     .type = CONFIG_STRING,
     .offset = offsetof(token_flags, user),
     .flags = CONFIG_REQUIRED,
     .help = "the user id the token grants the inbox of"},
    {.flag = "ttl",
     .type = CONFIG_INT,
     .def = "3600",
     .offset = offsetof(token_flags, ttl),
     .min = USERTOKEN_TTL_MIN,
     .max = USERTOKEN_TTL_MAX,
     .help = "seconds the token is valid"},
    {.env = "HERALD_USER_TOKEN_SECRET",
     .type = CONFIG_STRING,
     .offset = offsetof(token_flags, secret),
     .flags = CONFIG_SECRET | CONFIG_REQUIRED,
     .check = usertoken_check_secret,
     .help = "the gateway's user token secret (environment only)"},
    {0},
};

int cmd_token(const ctl_context *ctx, int argc, char **argv)
{
    (void)ctx;
    token_flags f = {0};
    const config_table table = {token_vars, &f};
    char token[USERTOKEN_SIZE], err[256];
    int rc = ctl_parse_only_flags("token", TOKEN_USAGE, token_vars, &f, argc, argv);
    if (rc >= 0)
        goto out;
    rc = CTL_EXIT_USAGE;
    int64_t expires = timeutil_now_ms() / 1000 + f.ttl;
    if (usertoken_mint(f.secret, strlen(f.secret), f.user, expires, token, sizeof token, err,
                       sizeof err) != 0) {
        /* A user_id problem is one of --user, named as the flag. */
        const char *problem = error_after_field(err, "user_id");
        fprintf(stderr, "heraldctl token: %s%s\n", problem != err ? "--user: " : "", problem);
        goto out;
    }
    printf("%s\n", token);
    rc = CTL_EXIT_OK;
out:
    if (f.secret != NULL)
        memset(f.secret, 0, strlen(f.secret));
    config_free(&table, 1, NULL);
    return rc;
}

/*
 * cmd_apikey: heraldctl apikey create | list | revoke.
 *
 *   heraldctl apikey create --name NAME [--scope publish|admin]
 *       prints the new key alone on stdout (it is shown once, never stored)
 *   heraldctl apikey list [--json]
 *   heraldctl apikey revoke ID
 *
 * argv[0] is "apikey".  Returns CTL_EXIT_OK, CTL_EXIT_USAGE (bad arguments,
 * one line on stderr) or CTL_EXIT_FAILURE (database unreachable, no such key).
 */
#ifndef HERALD_CMD_APIKEY_H
#define HERALD_CMD_APIKEY_H

#include "ctl.h"

int cmd_apikey(const ctl_context *ctx, int argc, char **argv);

#endif

/*
 * cmd: the heraldctl commands, one file each (cmd_<name>.c).  Each takes
 * argv starting at the command's name and returns a CTL_EXIT_* code.
 */
#ifndef HERALD_CMD_H
#define HERALD_CMD_H

#include "ctl.h"

int cmd_migrate(const ctl_context *ctx, int argc, char **argv);
int cmd_topics(const ctl_context *ctx, int argc, char **argv);
int cmd_publish(const ctl_context *ctx, int argc, char **argv);
int cmd_replay(const ctl_context *ctx, int argc, char **argv);
int cmd_dlq(const ctl_context *ctx, int argc, char **argv);
int cmd_status(const ctl_context *ctx, int argc, char **argv);
int cmd_token(const ctl_context *ctx, int argc, char **argv);
int cmd_inbox(const ctl_context *ctx, int argc, char **argv);
int cmd_digest_rules(const ctl_context *ctx, int argc, char **argv);
int cmd_throttle_rules(const ctl_context *ctx, int argc, char **argv);
int cmd_followup_rules(const ctl_context *ctx, int argc, char **argv);
int cmd_digests(const ctl_context *ctx, int argc, char **argv);
int cmd_followups(const ctl_context *ctx, int argc, char **argv);
int cmd_suppress(const ctl_context *ctx, int argc, char **argv);
int cmd_event(const ctl_context *ctx, int argc, char **argv);
int cmd_webhooks(const ctl_context *ctx, int argc, char **argv);

#endif

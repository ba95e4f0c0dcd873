/*
 * cmdutil: see cmdutil.h.
 */
#include "cmdutil.h"

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
        fprintf(stderr,
                "heraldctl %s: --%s: expected RFC 3339 or a relative time like -15m, got "
                "\"%.64s\" (%s)\n",
                cmd, flag, value, err);
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

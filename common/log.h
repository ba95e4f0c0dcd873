/*
 * log: leveled log lines on stderr, as text or JSON.
 *
 * Every line carries a timestamp, the level, the program name and an
 * optional context prefix for the object at hand (topic/partition/offset,
 * event id, request id).  The LOG_* macros skip argument evaluation when the
 * level is disabled, so debug logging on hot paths costs one comparison.
 *
 * Secrets: log_redact_url() strips the password of a URL or libpq connection
 * string; config values flagged secret are never passed to the logger.
 */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stddef.h>

typedef enum {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
} log_level;

typedef enum {
    LOG_FORMAT_TEXT = 0,
    LOG_FORMAT_JSON = 1,
} log_format;

/* The level below which lines are dropped; read by the LOG_* macros. */
extern log_level log_min_level;

/* Sets the program name, level and format (not thread-safe: call at start). */
void log_init(const char *program, log_level level, log_format format);

/* "debug"/"info"/"warn"/"error" → level; returns -1 on an unknown name. */
int log_level_parse(const char *s, log_level *out);
/* "text"/"json" → format; returns -1 on an unknown name. */
int log_format_parse(const char *s, log_format *out);

/* Emits one line; ctx may be NULL.  Thread-safe (one write(2) per line). */
void log_write(log_level level, const char *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Copies url into out with any password replaced by "***": handles
 * scheme://user:pass@host URLs and libpq "password=..." keywords.
 * Always NUL-terminates (truncating if needed); returns out.
 */
char *log_redact_url(const char *url, char *out, size_t outlen);

#define LOG_AT(lvl, ctx, ...)                                                                      \
    do {                                                                                           \
        if ((lvl) >= log_min_level)                                                                \
            log_write((lvl), (ctx), __VA_ARGS__);                                                  \
    } while (0)

#define LOG_DEBUG(ctx, ...) LOG_AT(LOG_LEVEL_DEBUG, ctx, __VA_ARGS__)
#define LOG_INFO(ctx, ...)  LOG_AT(LOG_LEVEL_INFO, ctx, __VA_ARGS__)
#define LOG_WARN(ctx, ...)  LOG_AT(LOG_LEVEL_WARN, ctx, __VA_ARGS__)
#define LOG_ERROR(ctx, ...) LOG_AT(LOG_LEVEL_ERROR, ctx, __VA_ARGS__)

#endif

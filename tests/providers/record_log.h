/*
 * record_log: what a test provider received, as JSON lines.
 *
 * Every accepted message (and, when the server is asked to, every rejected
 * one) becomes one compact JSON object with two fields added in front:
 * "seq", its index from 0 in the order of arrival, and "duplicate", whether
 * its idempotency key had already been accepted since start or the last
 * record_log_forget_keys().  Lines go to two places:
 *   - the record file, appended (never truncated, so a provider restarted
 *     during a failure test keeps one history), written by
 *     record_log_flush(), which the server's main loop calls every 50 ms and
 *     once more on shutdown;
 *   - an in-memory ring of the last `keep` lines, served by
 *     record_log_range() for GET /_records.
 * Keys are remembered as 64-bit FNV-1a hashes so a benchmark of millions of
 * messages costs megabytes, not gigabytes; two distinct keys colliding is a
 * one-in-10^7 event at a million keys.  All functions are thread-safe.
 */
#ifndef PROVIDERS_RECORD_LOG_H
#define PROVIDERS_RECORD_LOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct record_log record_log;

typedef struct record_log_counts {
    long records;       /* lines appended since start: the next seq */
    long first_kept;    /* oldest seq record_log_range() still serves */
    long distinct_keys; /* keys seen since start or the last forget */
    long duplicates;    /* appends whose key had been seen before */
    long write_errors;  /* failed writes of the record file */
} record_log_counts;

/* Opens path for appending (path may be NULL: memory only); keep is the
 * size of the in-memory ring.  Returns NULL with err filled. */
record_log *record_log_open(const char *path, long keep, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Appends rec (an object; not modified, still owned by the caller).  key,
 * when not NULL, is checked and remembered for duplicate detection;
 * *duplicate (may be NULL) says whether it was seen before.  Returns the
 * record's seq, or -1 when out of memory.
 */
long record_log_append(record_log *log, const json_t *rec, const char *key, bool *duplicate);

/*
 * As record_log_append, with the record already serialised: body[0..len)
 * is one compact JSON object text (no line break), as a server that writes
 * its records directly produces them.
 */
long record_log_append_text(record_log *log, const char *body, size_t len, const char *key,
                            bool *duplicate);

/* Writes pending lines to the record file; returns 0, or -1 on a write
 * error (the lines stay pending and are retried on the next call). */
int record_log_flush(record_log *log);

/*
 * Returns a JSON array text of the lines with seq since..since+limit-1 that
 * exist (caller frees), "[]" when since is past the end.  Returns NULL and
 * sets *first_kept when since is older than the ring still holds, or NULL
 * with *first_kept = -1 when out of memory.
 */
char *record_log_range(record_log *log, long since, long limit, long *first_kept)
    __attribute__((warn_unused_result));

void record_log_counts_get(record_log *log, record_log_counts *out);

/* Forgets every key: duplicates are counted afresh (a control "reset"). */
void record_log_forget_keys(record_log *log);

/* Flushes and frees; NULL is a no-op. */
void record_log_close(record_log *log);

#endif

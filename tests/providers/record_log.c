/*
 * record_log: see record_log.h.
 */
#include "record_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Past this many unwritten bytes (a stalled disk) lines stop going to the
 * file rather than growing without bound; write_errors counts them. */
#define RECORD_LOG_PENDING_CAP (256u * 1024 * 1024)

typedef struct key_set {
    uint64_t *slots; /* 0 = empty */
    size_t cap;      /* power of two */
    size_t used;
} key_set;

struct record_log {
    pthread_mutex_t lock; /* everything below except fd */
    pthread_mutex_t flush_lock;
    int fd;

    char **ring;
    long keep;
    long count;

    key_set keys;
    long duplicates;
    long write_errors;

    char *pending;
    size_t pending_len, pending_cap;
};

static uint64_t key_hash(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h == 0 ? 1 : h;
}

static int key_set_grow(key_set *ks)
{
    size_t ncap = ks->cap == 0 ? 1024 : ks->cap * 2;
    uint64_t *ns = calloc(ncap, sizeof(*ns));
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < ks->cap; i++) {
        uint64_t h = ks->slots[i];
        if (h == 0)
            continue;
        size_t j = (size_t)h & (ncap - 1);
        while (ns[j] != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = h;
    }
    free(ks->slots);
    ks->slots = ns;
    ks->cap = ncap;
    return 0;
}

/* Returns 1 when the key was already there, 0 when added, -1 on ENOMEM. */
static int key_set_insert(key_set *ks, uint64_t h)
{
    if ((ks->used + 1) * 2 > ks->cap && key_set_grow(ks) != 0)
        return -1;
    size_t j = (size_t)h & (ks->cap - 1);
    while (ks->slots[j] != 0) {
        if (ks->slots[j] == h)
            return 1;
        j = (j + 1) & (ks->cap - 1);
    }
    ks->slots[j] = h;
    ks->used++;
    return 0;
}

record_log *record_log_open(const char *path, long keep, char *err, size_t errlen)
{
    record_log *ret = NULL;
    record_log *log = calloc(1, sizeof(*log));
    if (log == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    log->fd = -1;
    pthread_mutex_init(&log->lock, NULL);
    pthread_mutex_init(&log->flush_lock, NULL);
    log->keep = keep;
    if (keep > 0) {
        log->ring = calloc((size_t)keep, sizeof(*log->ring));
        if (log->ring == NULL) {
            snprintf(err, errlen, "out of memory for %ld kept records", keep);
            goto out;
        }
    }
    if (path != NULL) {
        log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (log->fd < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
    }
    ret = log;
    log = NULL;

out:
    record_log_close(log);
    return ret;
}

static int pending_append(record_log *log, const char *line, size_t len)
{
    size_t need = log->pending_len + len + 1;
    if (need > RECORD_LOG_PENDING_CAP)
        return -1;
    if (need > log->pending_cap) {
        size_t ncap = log->pending_cap == 0 ? 65536 : log->pending_cap;
        while (ncap < need)
            ncap *= 2;
        char *np = realloc(log->pending, ncap);
        if (np == NULL)
            return -1;
        log->pending = np;
        log->pending_cap = ncap;
    }
    memcpy(log->pending + log->pending_len, line, len);
    log->pending[log->pending_len + len] = '\n';
    log->pending_len += len + 1;
    return 0;
}

long record_log_append(record_log *log, const json_t *rec, const char *key, bool *duplicate)
{
    char *body = json_dumps(rec, JSON_COMPACT);
    if (body == NULL)
        return -1;
    long seq = record_log_append_text(log, body, strlen(body), key, duplicate);
    free(body);
    return seq;
}

long record_log_append_text(record_log *log, const char *body, size_t bodylen, const char *key,
                            bool *duplicate)
{
    long seq = -1;
    char *line = NULL;
    uint64_t h = key != NULL ? key_hash(key) : 0;

    /* seq and duplicate are spliced in front of the object's members. */
    line = malloc(bodylen + 64);
    if (line == NULL)
        goto out;

    pthread_mutex_lock(&log->lock);
    int seen = 0;
    if (key != NULL) {
        seen = key_set_insert(&log->keys, h);
        if (seen < 0)
            seen = 0; /* out of memory: the key is simply not remembered */
        if (seen > 0)
            log->duplicates++;
    }
    seq = log->count++;
    int n = snprintf(line, 64, "{\"seq\":%ld,\"duplicate\":%s%s", seq, seen > 0 ? "true" : "false",
                     bodylen > 2 ? "," : "}");
    size_t linelen = (size_t)n;
    if (bodylen > 2) {
        memcpy(line + n, body + 1, bodylen - 1);
        linelen += bodylen - 1;
    }
    line[linelen] = '\0';
    if (log->fd >= 0 && pending_append(log, line, linelen) != 0)
        log->write_errors++;
    if (log->keep > 0) {
        char **slot = &log->ring[seq % log->keep];
        free(*slot);
        *slot = line;
        line = NULL;
    }
    pthread_mutex_unlock(&log->lock);
    if (duplicate != NULL)
        *duplicate = seen > 0;

out:
    free(line);
    return seq;
}

int record_log_flush(record_log *log)
{
    int rc = 0;
    char *buf = NULL;
    size_t len = 0;

    if (log->fd < 0)
        return 0;
    pthread_mutex_lock(&log->flush_lock);
    pthread_mutex_lock(&log->lock);
    buf = log->pending;
    len = log->pending_len;
    log->pending = NULL;
    log->pending_len = 0;
    log->pending_cap = 0;
    pthread_mutex_unlock(&log->lock);

    size_t off = 0;
    while (off < len) {
        ssize_t w = write(log->fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)w;
    }
    if (rc != 0) {
        /* Put the unwritten tail back in front of what arrived meanwhile. */
        pthread_mutex_lock(&log->lock);
        log->write_errors++;
        char *rest = log->pending;
        size_t restlen = log->pending_len;
        log->pending = NULL;
        log->pending_len = 0;
        log->pending_cap = 0;
        if (pending_append(log, buf + off, len - off - 1) == 0 && restlen > 0)
            (void)pending_append(log, rest, restlen - 1);
        free(rest);
        pthread_mutex_unlock(&log->lock);
    }
    pthread_mutex_unlock(&log->flush_lock);
    free(buf);
    return rc;
}

char *record_log_range(record_log *log, long since, long limit, long *first_kept)
{
    char *out = NULL;
    size_t len = 1, cap = 4096;

    pthread_mutex_lock(&log->lock);
    long first = log->count > log->keep ? log->count - log->keep : 0;
    if (since < first) {
        *first_kept = first;
        goto out_unlock;
    }
    long end = log->count;
    if (limit >= 0 && since + limit < end)
        end = since + limit;
    for (long i = since; i < end; i++)
        cap += strlen(log->ring[i % log->keep]) + 1;
    out = malloc(cap);
    if (out == NULL) {
        *first_kept = -1;
        goto out_unlock;
    }
    out[0] = '[';
    for (long i = since; i < end; i++) {
        const char *line = log->ring[i % log->keep];
        size_t l = strlen(line);
        if (i > since)
            out[len++] = ',';
        memcpy(out + len, line, l);
        len += l;
    }
    out[len++] = ']';
    out[len] = '\0';

out_unlock:
    pthread_mutex_unlock(&log->lock);
    return out;
}

void record_log_counts_get(record_log *log, record_log_counts *out)
{
    pthread_mutex_lock(&log->lock);
    out->records = log->count;
    out->first_kept = log->count > log->keep ? log->count - log->keep : 0;
    out->distinct_keys = (long)log->keys.used;
    out->duplicates = log->duplicates;
    out->write_errors = log->write_errors;
    pthread_mutex_unlock(&log->lock);
}

void record_log_forget_keys(record_log *log)
{
    pthread_mutex_lock(&log->lock);
    free(log->keys.slots);
    memset(&log->keys, 0, sizeof(log->keys));
    log->duplicates = 0;
    pthread_mutex_unlock(&log->lock);
}

void record_log_close(record_log *log)
{
    if (log == NULL)
        return;
    if (log->fd >= 0) {
        (void)record_log_flush(log);
        close(log->fd);
    }
    if (log->ring != NULL) {
        for (long i = 0; i < log->keep; i++)
            free(log->ring[i]);
        free(log->ring);
    }
    free(log->keys.slots);
    free(log->pending);
    pthread_mutex_destroy(&log->lock);
    pthread_mutex_destroy(&log->flush_lock);
    free(log);
}

/*
 * provider_file: the development provider.  Each delivery becomes one JSON
 * line in $HERALD_OUTBOX_DIR/<channel>.jsonl, written with one write(2) on
 * an O_APPEND descriptor (so several workers may share the file) and made
 * durable by one fsync per loop pass before any of them is recorded sent.
 */
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "timeutil.h"

typedef struct file_state {
    int fd;
    bool dirty;
    char path[1024];
} file_state;

/* mkdir -p */
static int make_dirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *c = tmp + 1; *c; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *c = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

static int file_init(provider *p, char *err, size_t errlen)
{
    const char *dir = p->s.outbox_dir ? p->s.outbox_dir : ".herald/outbox";
    file_state *st = calloc(1, sizeof *st);
    if (st == NULL) {
        error_set(err, errlen, "out of memory");
        return -1;
    }
    st->fd = -1;
    p->impl = st;
    snprintf(st->path, sizeof st->path, "%s/%s.jsonl", dir, p->s.channel);
    if (make_dirs(dir) != 0) {
        error_set(err, errlen, "HERALD_OUTBOX_DIR: cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    st->fd = open(st->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (st->fd < 0) {
        error_set(err, errlen, "HERALD_OUTBOX_DIR: cannot open %s: %s", st->path, strerror(errno));
        return -1;
    }
    return 0;
}

static void file_send_now(provider *p, const provider_message *m, provider_result *out)
{
    file_state *st = p->impl;
    buf line;
    char ts[TIMEUTIL_RFC3339_SIZE];
    buf_init(&line, 0);
    timeutil_format_rfc3339(timeutil_now_ms(), ts, sizeof ts);
    int rc = 0;
    rc |= buf_append_str(&line, "{\"idempotency_key\":");
    rc |= provider_json_string(&line, m->idempotency_key);
    rc |= buf_append_str(&line, ",\"event_id\":");
    rc |= provider_json_string(&line, m->event_id);
    rc |= buf_append_str(&line, ",\"user_id\":");
    rc |= provider_json_string(&line, m->user_id);
    rc |= buf_append_str(&line, ",\"channel\":");
    rc |= provider_json_string(&line, m->channel);
    rc |= buf_append_str(&line, ",\"to\":");
    rc |= provider_json_string(&line, m->to);
    if (m->subject) {
        rc |= buf_append_str(&line, ",\"subject\":");
        rc |= provider_json_string(&line, m->subject);
    }
    rc |= buf_append_str(&line, ",\"body\":");
    rc |= provider_json_string(&line, m->body ? m->body : "");
    if (m->data_json && *m->data_json) {
        rc |= buf_append_str(&line, ",\"data\":");
        rc |= buf_append_str(&line, m->data_json);
    }
    rc |= buf_printf(&line, ",\"sent_at\":\"%s\"}\n", ts);
    if (rc != 0) {
        out->outcome = PROVIDER_PERMANENT;
        snprintf(out->message, sizeof out->message, "delivery too large for the outbox");
        goto out;
    }
    ssize_t n = write(st->fd, line.data, line.len);
    if (n < 0 || (size_t)n != line.len) {
        out->outcome = PROVIDER_TRANSIENT;
        out->provider_fault = true;
        snprintf(out->message, sizeof out->message, "write %.150s: %s", st->path,
                 n < 0 ? strerror(errno) : "short write");
        goto out;
    }
    st->dirty = true;
    out->outcome = PROVIDER_SENT;
    snprintf(out->message, sizeof out->message, "written to %.200s", st->path);
out:
    buf_free(&line);
}

static int file_flush(provider *p, char *err, size_t errlen)
{
    file_state *st = p->impl;
    if (!st->dirty)
        return 0;
    if (fsync(st->fd) != 0) {
        error_set(err, errlen, "fsync %s: %s", st->path, strerror(errno));
        return -1;
    }
    st->dirty = false;
    return 0;
}

static void file_destroy(provider *p)
{
    file_state *st = p->impl;
    if (st && st->fd >= 0)
        close(st->fd);
    free(st);
    p->impl = NULL;
}

const provider_ops provider_file_ops = {
    .name = "file",
    .init = file_init,
    .send_now = file_send_now,
    .flush = file_flush,
    .destroy = file_destroy,
};

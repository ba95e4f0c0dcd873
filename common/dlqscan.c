/*
 * dlqscan: see dlqscan.h.
 *
 * The page cursor is, in URL-safe base64, "v1:" followed by each
 * partition's next offset, comma-separated in partition order.  A page
 * reads every partition from its cursor offset, keeps at most limit + 1
 * matching records of each (and stops reading a partition once it has
 * them), then merges the partitions by timestamp.  A record kept but not
 * returned proves there is a next page; a partition read to its end moves
 * its cursor to that end.
 */
#include "dlqscan.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ids.h"
#include "kafka.h"

#define CURSOR_RAW_MAX (DLQSCAN_CURSOR_MAX * 3 / 4 - 8)

static dlqscan_status open_status(partread_status st)
{
    return st == PARTREAD_MISSING ? DLQSCAN_MISSING : DLQSCAN_UNREACHABLE;
}

/* The next record of r as a dlqrec (into *rec, zeroed); PARTREAD_* with err. */
static partread_status next_rec(partread *r, dlqrec *rec, bool *bad, char *err, size_t errlen)
{
    rd_kafka_message_t *m = NULL;
    *bad = false;
    partread_status st = partread_next(r, &m, err, errlen);
    if (st != PARTREAD_OK)
        return st;
    rd_kafka_headers_t *hdrs = kafka_message_headers(m);
    int ok = dlqrec_init(rec, m->partition, m->offset, rd_kafka_message_timestamp(m, NULL), m->key,
                         m->key_len, m->payload, m->len, hdrs, err, errlen);
    rd_kafka_message_destroy(m);
    if (ok != 0) {
        *bad = true;
        return PARTREAD_ERROR;
    }
    return PARTREAD_OK;
}

dlqscan_status dlqscan_run(const dlqscan_source *src, const partread_range *range,
                           const dlqrec_filter *f, dlqscan_visit_fn visit, void *opaque, char *err,
                           size_t errlen)
{
    partread *r = NULL;
    dlqscan_status rc = DLQSCAN_FAILED;
    partread_status st =
        partread_open(src->brokers, src->props, src->topic, range, &r, err, errlen);
    if (st != PARTREAD_OK) {
        rc = open_status(st);
        goto out;
    }
    for (;;) {
        dlqrec rec = {0};
        bool bad = false;
        st = next_rec(r, &rec, &bad, err, errlen);
        if (st == PARTREAD_END)
            break;
        if (st != PARTREAD_OK) {
            rc = bad ? DLQSCAN_FAILED : DLQSCAN_READ_FAILED;
            goto out;
        }
        int v = dlqrec_matches(&rec, f) ? visit(&rec, opaque) : 0;
        dlqrec_free(&rec);
        if (v < 0) {
            error_set(err, errlen, "%s", "");
            goto out;
        }
        if (v > 0)
            break;
    }
    rc = DLQSCAN_OK;
out:
    partread_close(r);
    return rc;
}

char *dlqscan_id(const dlqrec *r, char *out, size_t outlen)
{
    snprintf(out, outlen, "%d:%" PRId64, (int)r->partition, r->offset);
    return out;
}

/* ---------------------------------------------------------------- paging */

/* The records kept of one partition, oldest first; head is the next to return. */
typedef struct page_queue {
    dlqrec *recs;
    size_t n, head;
} page_queue;

/* The cursor's offsets into *starts (malloc'd), *n of them; -1 when it is not a cursor. */
static int cursor_decode(const char *after, int64_t **starts, int *n)
{
    char raw[CURSOR_RAW_MAX + 1];
    size_t len = 0, alen = strlen(after);
    *starts = NULL;
    *n = 0;
    if (alen == 0 || alen > DLQSCAN_CURSOR_MAX ||
        id_base64url_decode(after, alen, raw, sizeof(raw) - 1, &len) != 0)
        return -1;
    raw[len] = '\0';
    if (len < 4 || memchr(raw, '\0', len) != NULL || strncmp(raw, "v1:", 3) != 0)
        return -1;
    int count = 1;
    for (const char *c = raw + 3; *c != '\0'; c++)
        count += *c == ',';
    int64_t *v = calloc((size_t)count, sizeof(*v));
    if (v == NULL)
        return -1;
    const char *c = raw + 3;
    for (int i = 0; i < count; i++) {
        char *end = NULL;
        if (*c < '0' || *c > '9') {
            free(v);
            return -1;
        }
        v[i] = strtoll(c, &end, 10);
        if (v[i] < 0 || (*end != ',' && *end != '\0') || (*end == '\0') != (i == count - 1)) {
            free(v);
            return -1;
        }
        c = end + 1;
    }
    *starts = v;
    *n = count;
    return 0;
}

static int cursor_encode(const int64_t *next, int n, char *out, char *err, size_t errlen)
{
    char raw[CURSOR_RAW_MAX + 1];
    size_t len = (size_t)snprintf(raw, sizeof(raw), "v1:");
    for (int p = 0; p < n; p++) {
        int w = snprintf(raw + len, sizeof(raw) - len, "%s%" PRId64, p > 0 ? "," : "", next[p]);
        if (w < 0 || (size_t)w >= sizeof(raw) - len) {
            error_set(err, errlen, "a cursor for %d partitions does not fit", n);
            return -1;
        }
        len += (size_t)w;
    }
    if (id_base64url_encode(raw, len, out, DLQSCAN_CURSOR_MAX) != 0) {
        error_set(err, errlen, "a cursor for %d partitions does not fit", n);
        return -1;
    }
    return 0;
}

/* Whether a sorts before b: timestamp, then partition, then offset. */
static bool earlier(const dlqrec *a, const dlqrec *b)
{
    if (a->timestamp_ms != b->timestamp_ms)
        return a->timestamp_ms < b->timestamp_ms;
    if (a->partition != b->partition)
        return a->partition < b->partition;
    return a->offset < b->offset;
}

/* Reads each partition of r until it is done or holds keep matching records. */
static dlqscan_status fill_queues(partread *r, const dlqrec_filter *f, page_queue *q, int npart,
                                  size_t keep, char *err, size_t errlen)
{
    for (;;) {
        dlqrec rec = {0};
        bool bad = false;
        partread_status st = next_rec(r, &rec, &bad, err, errlen);
        if (st == PARTREAD_END)
            return DLQSCAN_OK;
        if (st != PARTREAD_OK)
            return bad ? DLQSCAN_FAILED : DLQSCAN_READ_FAILED;
        int32_t p = rec.partition;
        if (p < 0 || p >= npart || q[p].n >= keep || !dlqrec_matches(&rec, f)) {
            dlqrec_free(&rec);
            continue;
        }
        q[p].recs[q[p].n++] = rec;
        if (q[p].n >= keep)
            partread_stop(r, p);
    }
}

/* Takes the limit earliest heads into records; fills next[] from what is left. */
static dlqscan_status merge_queues(partread *r, page_queue *q, int npart, size_t limit,
                                   json_t *records, int64_t *next, bool *more)
{
    char id[48];
    for (size_t taken = 0; taken < limit; taken++) {
        int best = -1;
        for (int p = 0; p < npart; p++)
            if (q[p].head < q[p].n &&
                (best < 0 || earlier(&q[p].recs[q[p].head], &q[best].recs[q[best].head])))
                best = p;
        if (best < 0)
            break;
        const dlqrec *rec = &q[best].recs[q[best].head++];
        json_t *j = dlqrec_to_json(rec);
        if (j == NULL ||
            json_object_set_new(j, "id", json_string(dlqscan_id(rec, id, sizeof(id)))) != 0 ||
            json_array_append_new(records, j) != 0)
            return DLQSCAN_FAILED;
    }
    *more = false;
    for (int p = 0; p < npart; p++) {
        if (q[p].head < q[p].n) {
            next[p] = q[p].recs[q[p].head].offset;
            *more = true;
        } else {
            /* Read to the end of its range and all returned: go on after it. */
            next[p] = partread_end(r, p);
        }
    }
    return DLQSCAN_OK;
}

dlqscan_status dlqscan_page(const dlqscan_source *src, const dlqrec_filter *f, const char *after,
                            size_t limit, json_t **records, char *next, char *err, size_t errlen)
{
    partread *r = NULL;
    page_queue *q = NULL;
    int64_t *starts = NULL, *next_off = NULL;
    int nstarts = 0, npart = 0;
    dlqscan_status rc = DLQSCAN_FAILED;
    json_t *list = NULL;

    *records = NULL;
    next[0] = '\0';
    if (limit < 1 || limit > DLQSCAN_PAGE_MAX) {
        error_set(err, errlen, "limit must be from 1 to %d", DLQSCAN_PAGE_MAX);
        return DLQSCAN_FAILED;
    }
    if (after != NULL && cursor_decode(after, &starts, &nstarts) != 0) {
        error_set(err, errlen, "not a cursor of this DLQ");
        return DLQSCAN_BAD_CURSOR;
    }
    partread_range range = PARTREAD_ALL(src->timeout_ms);
    if (f != NULL) {
        range.from_ms = f->since_ms;
        range.to_ms = f->until_ms > 0 ? f->until_ms : -1;
    }
    range.starts = starts;
    range.nstarts = nstarts;
    partread_status st =
        partread_open(src->brokers, src->props, src->topic, &range, &r, err, errlen);
    if (st != PARTREAD_OK) {
        rc = open_status(st);
        goto out;
    }
    npart = partread_partitions(r);
    q = calloc((size_t)npart, sizeof(*q));
    next_off = calloc((size_t)npart, sizeof(*next_off));
    list = json_array();
    if (q == NULL || next_off == NULL || list == NULL) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    for (int p = 0; p < npart; p++)
        if ((q[p].recs = calloc(limit + 1, sizeof(dlqrec))) == NULL) {
            error_set(err, errlen, "out of memory");
            goto out;
        }
    rc = fill_queues(r, f, q, npart, limit + 1, err, errlen);
    if (rc != DLQSCAN_OK)
        goto out;
    bool more = false;
    rc = merge_queues(r, q, npart, limit, list, next_off, &more);
    if (rc != DLQSCAN_OK) {
        error_set(err, errlen, "out of memory");
        goto out;
    }
    if (more && cursor_encode(next_off, npart, next, err, errlen) != 0) {
        rc = DLQSCAN_FAILED;
        goto out;
    }
    *records = list;
    list = NULL;
out:
    for (int p = 0; q != NULL && p < npart; p++) {
        for (size_t i = 0; i < q[p].n; i++)
            dlqrec_free(&q[p].recs[i]);
        free(q[p].recs);
    }
    free(q);
    free(next_off);
    free(starts);
    json_decref(list);
    partread_close(r);
    return rc;
}

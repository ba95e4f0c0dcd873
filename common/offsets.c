/*
 * offsets: see offsets.h.  Each partition keeps its in-progress offsets in
 * a ring buffer in consumption order, so marking done is a binary search
 * and advancing the position pops finished records off the front.
 */
#include "offsets.h"
#include "vec.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int64_t offset;
    bool done;
} entry;

typedef struct part {
    char *topic;
    int32_t partition;
    entry *ring;
    size_t cap, head, count;
    int64_t next;     /* one past the last offset tracked; -1 before any */
    int64_t reported; /* position last returned by offsets_collect */
} part;

struct offsets {
    part *parts;
    size_t nparts, capparts;
    size_t in_progress;
};

offsets *offsets_new(void)
{
    return calloc(1, sizeof(offsets));
}

static void part_clear(part *p)
{
    free(p->topic);
    free(p->ring);
}

void offsets_free(offsets *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        part_clear(&t->parts[i]);
    free(t->parts);
    free(t);
}

static part *find(const offsets *t, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].partition == partition && strcmp(t->parts[i].topic, topic) == 0)
            return &t->parts[i];
    return NULL;
}

static part *find_or_add(offsets *t, const char *topic, int32_t partition)
{
    part *p = find(t, topic, partition);
    if (p)
        return p;
    if (t->nparts == t->capparts) {
        part *np = vec_grow(t->parts, &t->capparts, sizeof *np);
        if (np == NULL)
            return NULL;
        t->parts = np;
    }
    p = &t->parts[t->nparts];
    memset(p, 0, sizeof *p);
    p->topic = strdup(topic);
    if (p->topic == NULL)
        return NULL;
    p->partition = partition;
    p->next = -1;
    p->reported = -1;
    t->nparts++;
    return p;
}

static entry *at(const part *p, size_t i)
{
    return &p->ring[(p->head + i) % p->cap];
}

static void reset(offsets *t, part *p)
{
    t->in_progress -= p->count;
    p->count = 0;
    p->head = 0;
}

int offsets_track(offsets *t, const char *topic, int32_t partition, int64_t offset)
{
    part *p = find_or_add(t, topic, partition);
    if (p == NULL)
        return -1;
    if (p->next >= 0 && offset < p->next)
        reset(t, p); /* rewound: what was in progress will be seen again */
    if (p->count == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        entry *nr = malloc(ncap * sizeof *nr);
        if (nr == NULL)
            return -1;
        for (size_t i = 0; i < p->count; i++)
            nr[i] = *at(p, i);
        free(p->ring);
        p->ring = nr;
        p->cap = ncap;
        p->head = 0;
    }
    entry *e = &p->ring[(p->head + p->count) % p->cap];
    e->offset = offset;
    e->done = false;
    p->count++;
    p->next = offset + 1;
    t->in_progress++;
    return 0;
}

void offsets_done(offsets *t, const char *topic, int32_t partition, int64_t offset)
{
    part *p = find(t, topic, partition);
    if (p == NULL || p->count == 0)
        return;
    size_t lo = 0, hi = p->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (at(p, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->count || at(p, lo)->offset != offset || at(p, lo)->done)
        return;
    at(p, lo)->done = true;
    while (p->count && at(p, 0)->done) {
        p->head = (p->head + 1) % p->cap;
        p->count--;
        t->in_progress--;
    }
}

static int64_t position(const part *p)
{
    if (p->count)
        return at(p, 0)->offset;
    return p->next;
}

int64_t offsets_position_of(const offsets *t, const char *topic, int32_t partition)
{
    const part *p = find(t, topic, partition);
    return p ? position(p) : -1;
}

void offsets_advance_idle(offsets *t, const char *topic, int32_t partition, int64_t pos)
{
    part *p = (part *)find(t, topic, partition);
    if (p != NULL && p->count == 0 && pos > p->next)
        p->next = pos;
}

size_t offsets_collect(offsets *t, offsets_position *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nparts && n < max; i++) {
        part *p = &t->parts[i];
        int64_t pos = position(p);
        if (pos < 0 || pos == p->reported)
            continue;
        p->reported = pos;
        out[n].topic = p->topic;
        out[n].partition = p->partition;
        out[n].offset = pos;
        n++;
    }
    return n;
}

void offsets_forget(offsets *t, const char *topic, int32_t partition)
{
    part *p = find(t, topic, partition);
    if (p == NULL)
        return;
    t->in_progress -= p->count;
    part_clear(p);
    *p = t->parts[--t->nparts];
}

size_t offsets_in_progress(const offsets *t)
{
    return t->in_progress;
}

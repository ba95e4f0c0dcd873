/*
 * assignment: see assignment.h.
 */
#include "assignment.h"

#include <stdlib.h>
#include <string.h>

#include "vec.h"

void assignment_init(assignment *a, const char *const *topics, int ntopics)
{
    memset(a, 0, sizeof *a);
    if (ntopics > ASSIGNMENT_MAX_TOPICS)
        ntopics = ASSIGNMENT_MAX_TOPICS;
    for (int t = 0; t < ntopics; t++)
        a->topics[t] = topics[t];
    a->ntopics = ntopics;
}

void assignment_free(assignment *a)
{
    free(a->parts);
    a->parts = NULL;
    a->nparts = a->capparts = 0;
}

int assignment_topic(const assignment *a, const char *name)
{
    for (int t = 0; t < a->ntopics; t++)
        if (strcmp(a->topics[t], name) == 0)
            return t;
    return -1;
}

assignment_part *assignment_find(assignment *a, int topic, int32_t partition)
{
    for (size_t i = 0; i < a->nparts; i++)
        if (a->parts[i].topic == topic && a->parts[i].partition == partition)
            return &a->parts[i];
    return NULL;
}

bool assignment_live(assignment *a, int topic, int32_t partition, uint64_t epoch)
{
    const assignment_part *p = assignment_find(a, topic, partition);
    return p != NULL && p->epoch == epoch;
}

int assignment_rebalance(assignment *a, bool assigned_now, const rd_kafka_topic_partition_list_t *l,
                         offsets *offs)
{
    for (int i = 0; i < l->cnt; i++) {
        int t = assignment_topic(a, l->elems[i].topic);
        if (t < 0)
            continue;
        int32_t partition = l->elems[i].partition;
        assignment_part *p = assignment_find(a, t, partition);
        if (assigned_now) {
            if (p == NULL) {
                if (a->nparts == a->capparts) {
                    assignment_part *np = vec_grow(a->parts, &a->capparts, sizeof *np);
                    if (np == NULL)
                        return -1;
                    a->parts = np;
                }
                p = &a->parts[a->nparts++];
            }
            *p = (assignment_part){t, partition, ++a->epoch_seq, false};
        } else if (p != NULL) {
            if (offs != NULL)
                offsets_forget(offs, a->topics[t], partition);
            *p = a->parts[--a->nparts];
        }
    }
    return 0;
}

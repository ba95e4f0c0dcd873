/*
 * replay: see replay.h.
 */
#include "replay.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

replay_decision replay_check(const char *value, size_t len, int64_t timestamp_ms,
                             const replay_filter *f, replay_info *info)
{
    event ev = {0};
    char err[256];
    replay_decision d = REPLAY_SKIP;
    if (value == NULL || event_parse(value, len, &ev, err, sizeof(err)) != EVENT_OK)
        return REPLAY_INVALID;
    /* offsets_for_times finds the window's first offsets; timestamps decide
     * at its edges, where a producer's clock may disagree with the order. */
    if (timestamp_ms < f->from_ms || (f->to_ms >= 0 && timestamp_ms >= f->to_ms))
        goto out;
    if (f->user != NULL && (ev.user_id == NULL || strcmp(ev.user_id, f->user) != 0))
        goto out;
    if (f->type != NULL && strcmp(ev.type, f->type) != 0)
        goto out;
    d = REPLAY_MATCH;
    if (info != NULL) {
        snprintf(info->event_id, sizeof(info->event_id), "%s", ev.event_id);
        snprintf(info->type, sizeof(info->type), "%s", ev.type);
        event_kafka_key(&ev, info->target, sizeof(info->target));
        info->generation = ev.generation;
        info->created_at = ev.created_at;
    }
out:
    event_free(&ev);
    return d;
}

int replay_stamp(int64_t now_ms)
{
    int64_t s = now_ms / 1000 - REPLAY_STAMP_EPOCH_S;
    if (s < 1)
        return 1;
    return s > INT_MAX ? INT_MAX : (int)s;
}

int replay_rewrite(const char *value, size_t len, bool redeliver, int stamp, char **out,
                   size_t *outlen, int *generation)
{
    json_t *root = json_loadb(value, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = -1;
    *out = NULL;
    *outlen = 0;
    if (!json_is_object(root))
        goto out;
    json_t *g = json_object_get(root, "generation");
    json_int_t old = json_is_integer(g) ? json_integer_value(g) : 0;
    if (old < 0 || old > INT_MAX)
        goto out;
    if (!redeliver) {
        /* Byte for byte: nothing downstream may see a different event. */
        *out = malloc(len + 1);
        if (*out == NULL)
            goto out;
        memcpy(*out, value, len);
        (*out)[len] = '\0';
        *outlen = len;
        *generation = (int)old;
        rc = 0;
        goto out;
    }
    json_int_t gen = old + 1 > stamp ? old + 1 : stamp;
    if (gen > INT_MAX)
        goto out;
    if (json_object_set_new(root, "generation", json_integer(gen)) != 0)
        goto out;
    *out = json_dumps(root, JSON_COMPACT);
    if (*out == NULL)
        goto out;
    *outlen = strlen(*out);
    *generation = (int)gen;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

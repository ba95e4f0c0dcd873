/*
 * inbox_update: serialises the inbox.updates record.
 */
#include "inbox_update.h"

#include "timeutil.h"

#include <string.h>

char *inbox_update_json(const inbox_update *u, size_t *len)
{
    char at[32];
    size_t n = json_array_size(u->message_ids);
    json_t *ids = n <= INBOX_UPDATE_IDS_MAX ? json_deep_copy(u->message_ids) : json_array();
    if (ids == NULL)
        ids = json_array();
    json_t *doc = json_pack(
        "{s:s,s:I,s:s,s:o,s:I,s:I,s:s}", "user_id", u->user_id, "seq", (json_int_t)u->seq, "kind",
        u->kind, "message_ids", ids, "unread_count", (json_int_t)u->unread_count, "unseen_count",
        (json_int_t)u->unseen_count, "at", timeutil_format_rfc3339(u->at_ms, at, sizeof at));
    if (doc == NULL)
        return NULL;
    char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (s != NULL)
        *len = strlen(s);
    return s;
}

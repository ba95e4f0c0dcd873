/*
 * inbox_update: see inbox_update.h.
 */
#include "inbox_update.h"

#include "jsonw.h"
#include "timeutil.h"

const char *inbox_update_kind_name(inbox_update_kind k)
{
    return k == INBOX_UPDATE_STATE ? "state" : "message";
}

int inbox_update_write(buf *b, const inbox_update *u)
{
    char at[TIMEUTIL_RFC3339_SIZE];
    jsonw w;
    jsonw_begin(&w, b);
    jsonw_str(&w, JSONW_NAME("user_id"), u->user_id);
    jsonw_int(&w, JSONW_NAME("seq"), u->seq);
    jsonw_str(&w, JSONW_NAME("kind"), inbox_update_kind_name(u->kind));
    /* A large change lists no ids: the client refreshes from the inbox. */
    size_t n = u->nmessage_ids <= INBOX_UPDATE_IDS_MAX ? u->nmessage_ids : 0;
    jsonw_strs(&w, JSONW_NAME("message_ids"), u->message_ids, n);
    jsonw_int(&w, JSONW_NAME("unread_count"), u->unread_count);
    jsonw_int(&w, JSONW_NAME("unseen_count"), u->unseen_count);
    jsonw_str(&w, JSONW_NAME("at"), timeutil_format_rfc3339(u->at_ms, at, sizeof at));
    return jsonw_end(&w);
}

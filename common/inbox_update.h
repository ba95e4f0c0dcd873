/*
 * inbox_update: the record of one change to a user's in-app inbox, on
 * <prefix>inbox.updates (docs/inapp.md, "Update record").  Key: user_id.
 *
 *   {"user_id":"u42","seq":17,"kind":"message","message_ids":["5b3c..."],
 *    "unread_count":3,"unseen_count":5,"at":"2026-12-07T01:02:03.456Z"}
 *
 * The one writer of the record, for the worker that stores messages and
 * for whatever marks them.  A change that touched more than
 * INBOX_UPDATE_IDS_MAX messages lists none: the client refreshes instead.
 * Borrowed strings only; nothing to free.
 */
#ifndef HERALD_INBOX_UPDATE_H
#define HERALD_INBOX_UPDATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define INBOX_UPDATE_IDS_MAX 200

typedef enum {
    INBOX_UPDATE_MESSAGE = 0, /* new messages */
    INBOX_UPDATE_STATE = 1,   /* marks: seen, read, archived, ... */
} inbox_update_kind;

typedef struct inbox_update {
    const char *user_id;
    int64_t seq; /* the change's number in the user's inbox */
    inbox_update_kind kind;
    const char *const *message_ids; /* the messages the change touched */
    size_t nmessage_ids;
    long long unread_count, unseen_count; /* after the change */
    int64_t at_ms;                        /* when the change was committed */
} inbox_update;

/* "message" or "state". */
const char *inbox_update_kind_name(inbox_update_kind k);

/*
 * Appends u's compact JSON to b.  -1, with b as it was, when out of memory
 * or a string is not valid UTF-8.
 */
int inbox_update_write(buf *b, const inbox_update *u) __attribute__((warn_unused_result));

#endif

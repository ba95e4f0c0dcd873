/*
 * inbox_update: the record of one change of a user's inbox, as produced on
 * inbox.updates keyed by user id (docs/inapp.md, "Update record").
 *
 * The one writer of that record, for the gateway (marks) and the in-app
 * worker (new messages) alike, so that a live client reads one shape.
 */
#ifndef HERALD_INBOX_UPDATE_H
#define HERALD_INBOX_UPDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define INBOX_UPDATE_IDS_MAX 200 /* a larger change lists no ids: the client refreshes */

typedef struct inbox_update {
    const char *user_id;
    int64_t seq;
    const char *kind;          /* "message" or "state" */
    const json_t *message_ids; /* array of ids, borrowed; longer than the max: listed as [] */
    int64_t unread_count;
    int64_t unseen_count;
    int64_t at_ms; /* when the change was committed */
} inbox_update;

/* The record's value, compact JSON (malloc'd, *len its length); NULL when out of memory. */
char *inbox_update_json(const inbox_update *u, size_t *len) __attribute__((warn_unused_result));

#endif

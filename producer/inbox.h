/*
 * inbox: what an inbox request asks for, checked, and the paging cursor.
 *
 * Pure logic shared by inbox_api.c (which reads the query string and body)
 * and store.c (which turns it into SQL parameters): the filters of
 * GET /v1/users/{id}/inbox and of a mark with "all", the mark's action and
 * ids, and the opaque cursor, which is base64url of the position of a
 * message in the list order (created_at to the microsecond, message_id).
 * The rules themselves are docs/inapp.md's.
 */
#ifndef HERALD_INBOX_H
#define HERALD_INBOX_H

#include "bodies.h"
#include "ids.h"
#include "validate.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INBOX_PAGE_DEFAULT 50
#define INBOX_PAGE_MAX     200
#define INBOX_MARK_IDS_MAX 200
#define INBOX_CURSOR_SIZE  128
/* "YYYY-MM-DDTHH:MM:SS.ffffffZ": the cursor keeps PostgreSQL's precision. */
#define INBOX_TS_LEN 27

typedef enum {
    INBOX_STATUS_ALL = 0,
    INBOX_STATUS_UNREAD,
    INBOX_STATUS_READ,
    INBOX_STATUS_UNSEEN,
    INBOX_STATUS_SEEN,
} inbox_status;

typedef enum {
    INBOX_ARCHIVED_EXCLUDE = 0,
    INBOX_ARCHIVED_INCLUDE,
    INBOX_ARCHIVED_ONLY,
} inbox_archived;

typedef enum {
    INBOX_MARK_SEEN = 0,
    INBOX_MARK_READ,
    INBOX_MARK_UNREAD,
    INBOX_MARK_ARCHIVED,
    INBOX_MARK_UNARCHIVED,
    INBOX_MARK_INTERACTED,
} inbox_action;

typedef struct inbox_filter {
    inbox_status status;
    inbox_archived archived;
    bool has_category, has_since, has_until;
    char category[VALIDATE_CATEGORY_MAX + 1];
    int64_t since_ms; /* created_at >= since */
    int64_t until_ms; /* created_at < until */
} inbox_filter;

/* A position in the list: the message at it and everything past it. */
typedef struct inbox_cursor {
    char created_at[INBOX_TS_LEN + 1];
    char message_id[ID_UUID_SIZE];
} inbox_cursor;

typedef enum {
    INBOX_FROM_TOP = 0, /* the newest page */
    INBOX_AFTER,        /* the page older than the cursor */
    INBOX_BEFORE,       /* the page newer than the cursor */
} inbox_direction;

typedef struct inbox_query {
    inbox_filter filter;
    int page_size;
    inbox_direction direction;
    inbox_cursor cursor; /* unless INBOX_FROM_TOP */
} inbox_query;

typedef struct inbox_mark {
    inbox_action action;
    bool all;            /* every message the filter takes, else ids */
    inbox_filter filter; /* with all */
    size_t nids;
    char ids[INBOX_MARK_IDS_MAX][ID_UUID_SIZE];
} inbox_mark;

/* Where a request went wrong: the parameter or field, and why. */
/* What is wrong with a query or a mark, and where: the gateway's one error shape. */
typedef bodies_error inbox_error;

/* Reads one query-string parameter (NULL when absent). */
typedef const char *(*inbox_param_fn)(void *ctx, const char *name);

/* The query of a list request.  0, or -1 with e naming the parameter. */
int inbox_parse_query(inbox_param_fn param, void *ctx, inbox_query *q, inbox_error *e)
    __attribute__((warn_unused_result));

/* The body of a mark request.  0, or -1 with e naming the field. */
int inbox_parse_mark(const json_t *body, inbox_mark *m, inbox_error *e)
    __attribute__((warn_unused_result));

/* Writes c as an opaque cursor into out (INBOX_CURSOR_SIZE).  -1 if c is not a position. */
int inbox_cursor_encode(const inbox_cursor *c, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/* Reads a cursor made by inbox_cursor_encode.  -1 for anything else. */
int inbox_cursor_decode(const char *text, inbox_cursor *c) __attribute__((warn_unused_result));

/* The names used in the API and passed to SQL. */
const char *inbox_status_name(inbox_status s);
const char *inbox_archived_name(inbox_archived a);
const char *inbox_action_name(inbox_action a);

#endif

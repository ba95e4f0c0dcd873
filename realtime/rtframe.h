/*
 * rtframe: one event as herald-realtime sends it to a client, and the
 * writers of every event it sends (docs/inapp.md, "Live updates").
 *
 *   {"type":"counts","seq":17,"unread_count":3,"unseen_count":5}
 *   {"type":"message","seq":17,"message_ids":["5b3c..."],"unread_count":3,"unseen_count":5}
 *   {"type":"state","seq":18,"message_ids":[...],"unread_count":2,"unseen_count":5}
 *   {"type":"reset","seq":40,"unread_count":2,"unseen_count":5}
 *
 * A frame is built once and shared by every connection it goes to, so it
 * is reference-counted; the counting is not atomic, because only the
 * service thread holds references once a frame has been handed over.  Its
 * text follows RTFRAME_PRE bytes of headroom, which the WebSocket writer
 * fills with the frame header.  Pure logic: no I/O.
 */
#ifndef HERALD_RTFRAME_H
#define HERALD_RTFRAME_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "validate.h"

/* The headroom libwebsockets wants in front of what it writes (LWS_PRE). */
#define RTFRAME_PRE 16

typedef struct rtframe {
    unsigned refs;
    int64_t seq; /* the change's number; what a client gives back as last_event_id */
    size_t len;  /* of the text */
    char data[]; /* RTFRAME_PRE bytes, then the text, then a NUL */
} rtframe;

static inline char *rtframe_text(rtframe *f)
{
    return f->data + RTFRAME_PRE;
}

/* One more holder; returns f. */
rtframe *rtframe_ref(rtframe *f);

/* One holder less: frees f with the last.  NULL is a no-op. */
void rtframe_unref(rtframe *f);

typedef struct rtframe_counts {
    int64_t seq;
    long long unread, unseen;
} rtframe_counts;

/* {"type":"counts",...}; NULL when out of memory. */
rtframe *rtframe_counts_new(const rtframe_counts *c) __attribute__((warn_unused_result));

/* {"type":"reset",...}: the gap is too large to replay. */
rtframe *rtframe_reset_new(const rtframe_counts *c) __attribute__((warn_unused_result));

/*
 * {"type":kind,...} with message_ids (a JSON array of strings) and the
 * counts c; kind is "message" or "state".  NULL when out of memory or
 * message_ids is not an array.
 */
rtframe *rtframe_change_new(const char *kind, int64_t seq, const json_t *message_ids,
                            const rtframe_counts *c) __attribute__((warn_unused_result));

/*
 * Reads one inbox.updates record (docs/inapp.md, "Update record") and
 * builds the event for its user's clients.  On success: 0, the user id in
 * user_out (VALIDATE_USER_ID_MAX + 1 bytes) and the frame in *out, for the
 * caller to unref.  -1 with the reason in err when the record is not JSON,
 * lacks a field or has one of the wrong type or range.
 */
int rtframe_from_update(const char *json, size_t len, char *user_out, rtframe **out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

#endif

/*
 * callbacks: the status callbacks Twilio posts after accepting a message.
 *
 * A Twilio message request that carries StatusCallback=<url> is answered
 * 201 "queued"; later Twilio POSTs the message's status changes to that
 * URL, form-encoded, signed with X-Twilio-Signature = base64(HMAC-SHA1(auth
 * token, the URL followed by every POST parameter sorted by name, each name
 * immediately followed by its value)).  The HTTP provider hands each such
 * message to this module once its answer is out; background threads
 * (never a request thread) send the callbacks, each message's by one of
 * them (by a hash of its MessageSid) in due order, retry a
 * receiver that answers non-2xx or not at all with doubling waits, and
 * write one record per attempt (what was sent, what came back) to a
 * record_log of its own, served as GET /_callbacks.
 *
 * What is sent is scripted like fault: the statuses ("sent,delivered" by
 * default, or e.g. "sent,undelivered" with an ErrorCode), a delay before
 * each, duplicates (a callback sent twice) and reordering (a message's
 * statuses in reverse, delivered before sent), each as a count of the next
 * ones and then a probability.  Settings come from the flags at start and
 * from POST /_control fields named "callback_*".
 *
 * The queue is bounded: a callback that does not fit is dropped and
 * counted, so a flood of messages never blocks nor grows the server.
 * Stopping sends what is already due for a bounded time, then drops the
 * rest.  All functions are thread-safe.
 */
#ifndef PROVIDERS_CALLBACKS_H
#define PROVIDERS_CALLBACKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "record_log.h"

/* The prefix of the control fields this module owns. */
#define CALLBACKS_FIELD_PREFIX "callback_"

/* The sending threads at most; each keeps its own connections alive. */
#define CALLBACKS_MAX_THREADS 64

typedef struct callbacks_settings {
    char statuses[128];    /* comma-separated MessageStatus values, in order; "" = none */
    long error_code;       /* ErrorCode of "undelivered" and "failed" */
    long delay_ms;         /* before each callback of a message */
    long duplicate_count;  /* the next N callbacks are sent twice */
    double duplicate_rate; /* then each one is, with this probability */
    long reorder_count;    /* the next N messages get their statuses reversed */
    double reorder_rate;   /* then each one does, with this probability */
    long retries;          /* attempts after the first when not answered 2xx */
    long retry_ms;         /* wait before the first retry, doubled for each next */
    long timeout_ms;       /* one attempt, connection included */
} callbacks_settings;

/* One accepted message, as Twilio reports it back; strings are copied. */
typedef struct callbacks_message {
    const char *url;        /* the StatusCallback */
    const char *auth_token; /* the key of the signature */
    const char *message_sid;
    const char *account_sid;
    const char *from; /* may be NULL (a MessagingServiceSid was given) */
    const char *to;
    const char *messaging_service_sid; /* may be NULL */
} callbacks_message;

typedef struct callbacks callbacks;
typedef struct callbacks_job callbacks_job;

/* A well-behaved Twilio: "sent,delivered", no delay, 3 retries from 1 s. */
void callbacks_settings_defaults(callbacks_settings *s);

/*
 * Validates initial (copied) and starts threads (1..CALLBACKS_MAX_THREADS)
 * sending threads; queue_max bounds the callbacks waiting, all threads'
 * together.  Attempts are recorded to log (borrowed; must outlive the
 * module).  NULL with err naming the bad setting.
 */
callbacks *callbacks_start(const callbacks_settings *initial, long queue_max, long threads,
                           record_log *log, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Stops taking callbacks, sends those already due for up to drain_ms,
 * drops the rest (counted, and said on stderr), joins the threads and
 * frees.  NULL is a no-op.
 */
void callbacks_stop(callbacks *cb, long drain_ms);

/* Copies what the callbacks of m need; NULL when out of memory. */
callbacks_job *callbacks_job_new(const callbacks_message *m) __attribute__((warn_unused_result));

void callbacks_job_free(callbacks_job *job);

/*
 * Queues the callbacks of a message whose answer went out, with the
 * settings of now (takes ownership of *job and sets it to NULL).  Never
 * waits for the sending threads.
 */
void callbacks_submit(callbacks *cb, callbacks_job **job);

/*
 * Applies the "callback_*" fields of a control request (other fields are
 * ignored): with reset, first back to the start settings, the counters
 * zeroed and the queue emptied.  All or nothing; with check_only nothing
 * changes either way.  -1 with err naming the field.  The number of
 * threads is not a setting: it is fixed at start.
 */
int callbacks_apply_json(callbacks *cb, const json_t *req, bool reset, bool check_only, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* Adds the current settings, as "callback_*" fields, to settings. */
void callbacks_settings_to_json(callbacks *cb, json_t *settings);

/* Adds the counters, as "callbacks_*" fields, to stats. */
void callbacks_stats_to_json(callbacks *cb, json_t *stats);

#endif

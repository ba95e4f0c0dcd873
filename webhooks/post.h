/*
 * post: the signed POSTs of status webhook calls, many in flight at once
 * on one libcurl multi handle, and what an answer means
 * (docs/webhooks.md, "Retries").
 *
 * A request carries the call's body as application/json, the
 * Herald-Signature header (common/hsig.h) under the endpoint's secret,
 * Herald-Webhook-Id (the call's id, the same on every attempt) and
 * Herald-Webhook-Attempt.  Redirects are not followed: a webhook URL that
 * moved is the owner's to update.
 *
 * A 2xx answer is success; no answer (refused, reset, timed out), 408, 429
 * and 5xx are worth retrying (with a Retry-After as the least wait); any
 * other answer will not change by retrying and ends the call.
 *
 * The multi handle keeps a connection cache, so calls to one endpoint
 * reuse their connection.  Only the loop thread calls these; each
 * finished request is reported once, from post_poll().
 */
#ifndef HERALD_WEBHOOKS_POST_H
#define HERALD_WEBHOOKS_POST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    POST_OK = 0,
    POST_RETRY, /* transient: try again later */
    POST_DEAD,  /* permanent: dead-letter the call */
} post_outcome;

typedef struct post_result {
    post_outcome outcome;
    long status;            /* the HTTP status, 0 when there was no answer */
    int64_t latency_ms;     /* from sending to the end of the answer */
    int64_t retry_after_ms; /* the answer's Retry-After, 0 when none */
    char error[256];        /* why it failed, "" on success */
} post_result;

/* What an answer means: status 0 is no answer. */
post_outcome post_classify(long status);

typedef struct post_pool post_pool;

/* Called from post_poll() for each finished request with the opaque given to post_start(). */
typedef void (*post_done_cb)(void *ctx, void *opaque, const post_result *r);

post_pool *post_pool_new(int max_in_flight, long timeout_ms, post_done_cb cb, void *ctx, char *err,
                         size_t errlen) __attribute__((warn_unused_result));

/* Ends what is in flight without reporting it, and frees p.  NULL is a no-op. */
void post_pool_free(post_pool *p);

/*
 * Starts POSTing body (which must stay valid until reported) to url,
 * signed at now_ms (Unix ms).  -1 with err when it cannot start (the pool
 * is full, or out of memory): the caller tries again later.
 */
int post_start(post_pool *p, void *opaque, const char *url, const char *secret, const char *id,
               int attempt, const void *body, size_t len, int64_t now_ms, char *err, size_t errlen)
    __attribute__((warn_unused_result));

int post_in_flight(const post_pool *p);
bool post_full(const post_pool *p);

/* Moves the requests along, waiting up to timeout_ms for their sockets; reports the finished. */
void post_poll(post_pool *p, int timeout_ms);

#endif

/*
 * post: one signed POST of a status webhook call, and what its answer
 * means (docs/webhooks.md, "Retries").
 *
 * The request carries the call's body as application/json, the
 * Herald-Signature header (common/hsig.h) under the endpoint's secret,
 * Herald-Webhook-Id (the call's id, the same on every attempt) and
 * Herald-Webhook-Attempt.  Redirects are not followed: a webhook URL that
 * moved is the owner's to update.
 *
 * A 2xx answer is success; no answer (refused, reset, timed out), 408, 429
 * and 5xx are worth retrying (with a Retry-After as the least wait); any
 * other answer will not change by retrying and ends the call.
 *
 * The easy handle is reused, so calls to one endpoint keep their
 * connection.  Blocking, bounded by the timeout.
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

typedef struct post post;

post *post_new(long timeout_ms, char *err, size_t errlen) __attribute__((warn_unused_result));
void post_free(post *p);

/* POSTs body to url, signed at now_ms (Unix ms); the outcome in *out. */
void post_call(post *p, const char *url, const char *secret, const char *id, int attempt,
               const char *body, size_t len, int64_t now_ms, post_result *out);

#endif

/*
 * sender: many provider requests in flight at once on one libcurl multi
 * handle, driven from the worker's loop thread.
 *
 * The multi handle keeps a connection cache the size of the concurrency
 * limit, so consecutive requests to a provider reuse warm connections
 * (HTTP keep-alive, SMTP sessions, TLS).  Easy handles and their buffers
 * are pooled too.  sender_poll() waits on the transfers' sockets and on
 * extra descriptors the caller passes (the Kafka consumer's wake-up pipe),
 * so a quiet provider never delays intake and a slow one never stalls it.
 *
 * Transfers of a blocking provider (SMTP, see provider_ops.blocking) run
 * with curl_easy_perform() on a pool of threads started on demand, up to the
 * concurrency limit; they report back through the same wake-up descriptor.
 *
 * Each finished transfer is classified by its provider and handed to the
 * done callback with the caller's opaque, exactly once, on the loop thread;
 * sender_abort_all() ends the rest the same way with a TRANSIENT "aborted"
 * outcome.
 */
#ifndef HERALD_CHANNELS_SENDER_H
#define HERALD_CHANNELS_SENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "provider.h"

typedef struct sender sender;

/* latency_ms: from start to the end of the transfer. */
typedef void (*sender_done_cb)(void *ctx, void *opaque, provider *prov, const provider_result *res,
                               int64_t latency_ms);

/*
 * max_in_flight >= 1.  cb is called from sender_poll() and sender_abort_all().
 * wake_fd is written to when a pooled transfer finishes (the loop polls its
 * read end through sender_poll's extra descriptors).
 */
sender *sender_new(int max_in_flight, sender_done_cb cb, void *ctx, int wake_fd, char *err,
                   size_t errlen) __attribute__((warn_unused_result));

/* Frees s; call sender_abort_all() first if transfers may be in flight. */
void sender_free(sender *s);

/*
 * Starts sending m through the network provider p.  m's strings are copied
 * into the request before this returns.  Fails (err says why) when the
 * request cannot be built (e.g. an address with a line break): that is the
 * message's fault, so the caller treats it as permanent.
 */
int sender_start(sender *s, provider *p, const provider_message *m, void *opaque, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

int sender_in_flight(const sender *s);
bool sender_full(const sender *s);

/*
 * Waits up to timeout_ms for transfer sockets or one of the extra
 * descriptors, moves every transfer along and reports the finished ones.
 * Returns the number of transfers finished.  An extra descriptor stays
 * watched from the first call that passes it (up to 8 of them); the caller
 * reads it, this only wakes up for it.
 */
int sender_poll(sender *s, int timeout_ms, struct curl_waitfd *extra, unsigned nextra);

/* Ends every transfer in flight now, reporting each as TRANSIENT "aborted". */
void sender_abort_all(sender *s);

#endif

/*
 * whreceiver: a status-webhook receiver for tests, as a service that
 * registered an endpoint would run it: libmicrohttpd on 127.0.0.1, a few
 * URL paths each with its endpoint's secret, every request's
 * Herald-Signature checked with hsig_verify and its Herald-Webhook-Id
 * compared with the body's id, and the distinct call ids (with their
 * types) recorded as a receiver that deduplicates by id would.  A path can
 * be told to answer 503, 500, or nothing in time instead.
 */
#ifndef HERALD_WHRECEIVER_H
#define HERALD_WHRECEIVER_H

#include <stdbool.h>
#include <stddef.h>

typedef struct whreceiver whreceiver;

/* What a path answers. */
typedef enum {
    WHRECEIVER_OK = 0, /* 204 when the signature verifies, 401 otherwise; records the id */
    WHRECEIVER_503,
    WHRECEIVER_HANG, /* 503 after WHRECEIVER_HANG_MS: longer than a 500 ms client limit */
    WHRECEIVER_500,
} whreceiver_mode;

#define WHRECEIVER_PATHS   4
#define WHRECEIVER_HANG_MS 1500

/* A receiver listening on a free port of 127.0.0.1; NULL on failure. */
whreceiver *whreceiver_start(void);
/* Stops it and frees everything; NULL is accepted. */
void whreceiver_stop(whreceiver *rc);
int whreceiver_port(const whreceiver *rc);

/* Path i (0..WHRECEIVER_PATHS-1) answers at url_path, verifying with secret (both copied). */
void whreceiver_path(whreceiver *rc, int i, const char *url_path, const char *secret);
void whreceiver_set_mode(whreceiver *rc, int i, whreceiver_mode mode);

/* Distinct call ids path i answered 2xx; every request in *posts (may be NULL). */
int whreceiver_ids(whreceiver *rc, int i, int *posts);
/* Requests to path i whose signature (or id header) did not verify. */
int whreceiver_bad_signatures(whreceiver *rc, int i);
/* Whether path i recorded id; its type into type (may be NULL). */
bool whreceiver_has(whreceiver *rc, int i, const char *id, char *type, size_t typelen);

/*
 * Waits up to timeout_ms for path i to have want distinct ids, while
 * alive(arg) (alive may be NULL); returns how many it has.
 */
int whreceiver_wait(whreceiver *rc, int i, int want, long timeout_ms, bool (*alive)(void *arg),
                    void *arg);

#endif

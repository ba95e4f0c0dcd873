/*
 * store: the worker's rows in PostgreSQL — claiming deliveries before
 * sending, recording their outcomes, deleting dead push tokens.
 *
 * Claim: one statement per poll batch inserts the deliveries that have no
 * row yet and takes a lease (lease_owner, lease_until) on those whose row is
 * not done (sent or past it, or suppressed: store_status_done) and whose
 * lease is free, expired or already ours, bumping attempts.  It answers for
 * every key: claimed (send it), claimed but suppressed (the address is on
 * the suppression list: record 'suppressed', do not send), already sent
 * (never send it again) or leased by another worker (someone is sending it
 * now; look again when that lease ends).  The idempotency key is the
 * primary key, so two workers can never both hold the same lease.
 *
 * Record: one statement per batch of outcomes writes status, last_error,
 * provider and provider_message_id and drops the lease, and with them the
 * delivery's history (a row per attempt, a failed one that will be retried
 * included) and the suppression of an address the provider
 * refused ('bounced').  A done row
 * never moves back: recording 'sent' on a row a receipt already moved on
 * keeps the receipt's status.
 *
 * Every call is idempotent, so after PG_RETRY (connection lost and back) or
 * PG_DOWN the caller simply runs it again later.  Not thread-safe.
 */
#ifndef HERALD_CHANNELS_STORE_H
#define HERALD_CHANNELS_STORE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pg.h"

typedef struct store store;

typedef enum {
    STORE_CLAIMED = 0,
    STORE_ALREADY_SENT,
    STORE_LEASED,     /* by another worker, until lease_until_ms */
    STORE_SUPPRESSED, /* claimed, but the address is suppressed (why: suppressed) */
} store_claim_result;

typedef struct store_claim_item {
    /* in */
    const char *key;
    const char *event_id;
    const char *user_id;
    const char *address;
    bool fresh; /* requeued by an operator: attempts start again at 1 */
    /* out */
    store_claim_result result;
    int attempts;           /* CLAIMED: attempts including this one */
    int64_t lease_until_ms; /* LEASED: when the other worker's lease ends */
    char suppressed[160];   /* SUPPRESSED: the entry's reason and detail */
} store_claim_item;

typedef struct store_outcome {
    const char *key;
    const char *status;      /* "sent", "retrying", "failed", "bounced", "undelivered" or
                                "suppressed" */
    const char *error;       /* last_error; NULL to clear */
    const char *provider;    /* provider that handled the attempt; may be NULL */
    const char *provider_id; /* provider_message_id; may be NULL */
    int64_t not_before_ms;   /* retrying: when the next attempt is due; 0 otherwise */
} store_outcome;

/*
 * Connects (with pg's retry) and prepares the statements.  owner names this
 * worker in lease_owner; lease_ms is how long a claim holds.  stop is
 * checked while reconnecting (may be NULL).
 */
store *store_new(const char *url, const char *channel, const char *owner, int64_t lease_ms,
                 const volatile sig_atomic_t *stop, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void store_free(store *s);

/* Whether a delivery in this status is never to be sent again. */
bool store_status_done(const char *status);

/* Claims items[0..n) (keys must be distinct) and fills their out fields. */
pg_status store_claim(store *s, store_claim_item *items, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Writes outcomes[0..n). */
pg_status store_record(store *s, const store_outcome *outcomes, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Deletes the push tokens (user_ids[i], tokens[i]). */
pg_status store_delete_tokens(store *s, const char *const *user_ids, const char *const *tokens,
                              size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Gives back the leases of claimed deliveries that were never sent (at
 * shutdown), undoing the attempt their claim counted, so whoever reads
 * them next can send them at once instead of waiting for the lease to end.
 */
pg_status store_release(store *s, const char *const *keys, size_t n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

/*
 * wire: the bytes the gateway writes per published event.
 *
 * The event record is common/event.c's, the one writer
 * (event_serialize_at()); wire_event() hands it the timestamp from the
 * per-thread cache below.
 *
 * Also here: the ids and timestamps of those records, which would otherwise
 * cost a getrandom(2) and an snprintf(3) per event.
 */
#ifndef HERALD_WIRE_H
#define HERALD_WIRE_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

/* event_serialize(ev), with created_at from wire_rfc3339(). */
int wire_event(const event *ev, char **out, size_t *outlen) __attribute__((warn_unused_result));

/*
 * The SHA-256 of the request an event came from, for Idempotency-Key
 * reuse: its record as wire_event() writes it (defaults applied, data in
 * the publisher's member order) without the event id and creation time the
 * gateway assigns.  -1 when out of memory.
 */
int wire_request_hash(const event *ev, unsigned char out[ID_SHA256_LEN])
    __attribute__((warn_unused_result));

/*
 * A random (version 4) UUID, as id_uuid_v4(), from a small per-thread pool
 * of getrandom(2) bytes that is dropped in a forked child.  -1 when the
 * system has no randomness to give.
 */
int wire_event_id(char out[ID_UUID_SIZE]) __attribute__((warn_unused_result));

/* ms as timeutil_format_rfc3339() writes it, from a per-thread cache of the second. */
char *wire_rfc3339(int64_t ms, char *out, size_t outlen);

/*
 * {"event_id":"<id>"} into out (at least WIRE_ACCEPTED_SIZE bytes); returns
 * its length.  The 202 answer of a publish.
 */
#define WIRE_ACCEPTED_SIZE (sizeof "{\"event_id\":\"\"}" + ID_UUID_SIZE)
size_t wire_accepted(const char *event_id, char *out);

#endif

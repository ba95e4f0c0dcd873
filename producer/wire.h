/*
 * wire: the bytes the gateway writes per published event, built without a
 * JSON tree.
 *
 * event_serialize() (common/event.c) builds a jansson object of the
 * envelope and dumps it: a dozen allocations and a second walk per event,
 * which profiling showed to be the gateway's largest cost per publish after
 * the kernel's.  An event that passed event_from_request() has an envelope
 * of printable ASCII (names, user ids, idempotency keys are validated to
 * that), so only its "data" needs jansson's dumper; the rest is copied with
 * the two escapes printable ASCII can need.  The record is byte for byte
 * what event_serialize() writes (same members, order and escaping); an
 * event outside that fast path (a string with other bytes) is handed to
 * event_serialize() itself.
 *
 * Also here: the ids and timestamps of those records, which would otherwise
 * cost a getrandom(2) and an snprintf(3) per event.
 */
#ifndef HERALD_WIRE_H
#define HERALD_WIRE_H

#include "event.h"

#include <stddef.h>
#include <stdint.h>

/* The compact wire JSON of ev in *out (free() it) and its length; -1 as event_serialize(). */
int wire_event(const event *ev, char **out, size_t *outlen) __attribute__((warn_unused_result));

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

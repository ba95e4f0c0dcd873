/*
 * record: what the readers and JSON builders of Herald's record types
 * (events, deliveries; docs/interface.md section 2) share.
 */
#ifndef HERALD_RECORD_H
#define HERALD_RECORD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Parses json[0..len) as one JSON object, duplicate keys refused.  Returns
 * it (json_decref it), or NULL with err set: "invalid JSON: ..." with the
 * line and column (*not_json true; json NULL is an empty record), or
 * "<what> must be a JSON object" (what: "an event", "a delivery").
 */
json_t *record_load(const char *json, size_t len, const char *what, bool *not_json, char *err,
                    size_t errlen) __attribute__((warn_unused_result));

/* Adds a string member; a NULL value is left out.  key is a literal and is not checked.  -1 on
 * failure (o unchanged). */
int record_put_string(json_t *o, const char *key, const char *value)
    __attribute__((warn_unused_result));

/* The index of s among names[0..n), or -1 (also for NULL): an enum's wire name read back. */
int record_name_index(const char *const names[], int n, const char *s);

#endif

/*
 * error: filling a caller's error buffer, the `char *err, size_t errlen`
 * convention every Herald module follows (librdkafka's errstr habit).
 */
#ifndef HERALD_ERROR_H
#define HERALD_ERROR_H

#include <stddef.h>

/*
 * Formats into err (NULL or errlen 0: nothing is written; a long message is
 * truncated, always terminated).  Returns -1, so a failing function can end
 * with `return error_set(err, errlen, "...")`.
 */
int error_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * The problem of a "<field>: <problem>" message (what validation errors
 * look like): msg past "field: ", or msg itself when it does not start so
 * (field NULL or "" included).  For a caller that names the field its own
 * way (a flag) and must not name it twice.
 */
const char *error_after_field(const char *msg, const char *field);

#endif

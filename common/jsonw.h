/*
 * jsonw: JSON objects written straight into a buf, byte for byte what
 * jansson's compact dump makes of the same object (members in the order
 * written, its string escapes), without building a jansson tree.  The
 * record writers of common/ (delivery_write, event_serialize_at) use it on
 * the hot paths of the gateway and the dispatcher.
 *
 *   jsonw w;
 *   jsonw_begin(&w, b);
 *   jsonw_str(&w, JSONW_NAME("user_id"), user_id);   NULL: left out
 *   jsonw_int(&w, JSONW_NAME("attempt"), attempt);
 *   jsonw_json(&w, JSONW_NAME("data"), data);        a jansson value, dumped in place
 *   if (jsonw_end(&w) != 0) ...                      b is then as it was
 *
 * A failure (no memory, the buf's limit, a string that is not UTF-8, which
 * jansson refuses too) is remembered and makes the later writes no-ops, so
 * a writer checks once, at jsonw_end().
 */
#ifndef HERALD_JSONW_H
#define HERALD_JSONW_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "buf.h"

typedef struct jsonw {
    buf *b;
    size_t start; /* b->len at jsonw_begin */
    bool first;   /* no member written yet */
    bool failed;
} jsonw;

/* A member name as the literal ,"key": and its length, for the functions below. */
#define JSONW_NAME(key) ",\"" key "\":", sizeof(",\"" key "\":") - 1

/* Opens an object at the end of b. */
void jsonw_begin(jsonw *w, buf *b);

/* Closes the object.  0, or -1 with b truncated back to where it was. */
int jsonw_end(jsonw *w) __attribute__((warn_unused_result));

/* "name":"value"; a NULL value is left out. */
void jsonw_str(jsonw *w, const char *name, size_t namelen, const char *value);

/* "name":v */
void jsonw_int(jsonw *w, const char *name, size_t namelen, long long v);

/* "name":true or "name":false */
void jsonw_bool(jsonw *w, const char *name, size_t namelen, bool v);

/* "name":<v as jansson's compact dump>; a NULL v is written as {} when
 * empty_object, else left out. */
void jsonw_json(jsonw *w, const char *name, size_t namelen, const json_t *v, bool empty_object);

/* "name":["v0","v1",...], the n strings of v in order (n 0: []). */
void jsonw_strs(jsonw *w, const char *name, size_t namelen, const char *const *v, size_t n);

/* A JSON string with jansson's escapes; NULL-safe only through jsonw_str. */
void jsonw_string(jsonw *w, const char *s, size_t len);

#endif

/*
 * jtext: JSON text written directly, for the providers' records.
 *
 * At benchmark rates, building a record as a jansson tree and dumping it
 * cost more than the rest of a request, so the servers write their records
 * as text.  A jtext grows as needed; an allocation failure sets failed and
 * makes every later write a no-op, so a writer checks once at the end.
 */
#ifndef HERALD_TESTS_PROVIDERS_JTEXT_H
#define HERALD_TESTS_PROVIDERS_JTEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jtext {
    /* NUL-terminated; free(p) when done */
    char *p;
    size_t len, cap;
    bool failed; /* out of memory */
} jtext;

void jt_put(jtext *j, const char *p, size_t n);
void jt_str(jtext *j, const char *s);
void jt_long(jtext *j, long long v);

/*
 * Appends bytes from the wire as a JSON string: valid UTF-8 as is, each
 * invalid byte as '?' with *lossy set (lossy may be NULL); quotes,
 * backslashes and control characters escaped.  For printable ASCII the
 * text is exactly jansson's compact dump of the same string.
 */
void jt_wire(jtext *j, const char *s, size_t len, bool *lossy);

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
size_t jt_utf8_seq(const unsigned char *s, size_t len);

#endif

/*
 * buf: Herald's one growable byte buffer, with a hard cap (curl's dynbuf):
 * request and response bodies, rendered text, MIME messages, JSON records.
 *
 * The contents are always NUL-terminated so text can be used as a C
 * string.  A write that would pass the cap fails and leaves the buffer as
 * it was; the caller decides whether that is an error (a request body) or
 * a truncation worth ignoring (a response kept only for its error message).
 */
#ifndef HERALD_BUF_H
#define HERALD_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct buf {
    char *data; /* NUL-terminated; NULL until the first write */
    size_t len;
    size_t cap;   /* bytes allocated */
    size_t limit; /* largest len allowed */
} buf;

/* An empty buffer that may grow to limit bytes (0: 16 MiB). */
void buf_init(buf *b, size_t limit);

/* Frees the storage; the buffer is empty and usable again. */
void buf_free(buf *b);

/* Empties the buffer but keeps its storage. */
void buf_reset(buf *b);

/*
 * Makes room for extra more bytes (and the NUL) without writing them, for a
 * writer that fills b->data + b->len itself and then moves b->len.
 */
int buf_reserve(buf *b, size_t extra) __attribute__((warn_unused_result));

int buf_append(buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_append_str(buf *b, const char *s) __attribute__((warn_unused_result));
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((warn_unused_result));

/* Hands the contents to the caller (free() them) and empties b. */
char *buf_steal(buf *b, size_t *len);

#endif

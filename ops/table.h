/*
 * table: the human tables of heraldctl — columns padded to their widest
 * cell, each column capped at a width so that one long error message does
 * not wrap every line of a listing.
 *
 * Cells are sanitised for a terminal: control characters (a newline inside
 * an error message, an escape sequence in a payload) become spaces, and a
 * cell longer than its column's cap ends in "...".  Widths count UTF-8
 * characters, not bytes, and a cut never splits a character.
 */
#ifndef HERALD_OPS_TABLE_H
#define HERALD_OPS_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef struct table table;

/* A table with ncols columns named by headers (copied). NULL when out of memory. */
table *table_new(size_t ncols, const char *const *headers) __attribute__((warn_unused_result));

/* Caps column col at max characters (at least 4; 0: no cap, the default). */
void table_set_max(table *t, size_t col, size_t max);

/* Appends a row of ncols cells (copied; NULL reads as ""). -1 when out of memory. */
int table_add(table *t, const char *const *cells) __attribute__((warn_unused_result));

size_t table_rows(const table *t);

/* Prints the header line and every row; columns separated by two spaces. */
void table_print(const table *t, FILE *out);

/*
 * Writes s into out (outlen bytes) sanitised and cut to at most max
 * characters (0: no limit); returns its width in characters.  Exposed for
 * single-value displays such as `dlq show`.
 */
size_t table_cell(const char *s, size_t max, char *out, size_t outlen);

void table_free(table *t);

#endif

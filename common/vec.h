/*
 * vec: the growth rule of Herald's arrays.  Each owner keeps its typed
 * pointer, count and capacity (as git's ALLOC_GROW leaves them to their
 * structs); vec_grow is the one place that doubles and checks for overflow.
 *
 *     if (l->n == l->cap) {
 *         item *v = vec_grow(l->items, &l->cap, sizeof *v);
 *         if (v == NULL)
 *             return -1;
 *         l->items = v;
 *     }
 */
#ifndef HERALD_VEC_H
#define HERALD_VEC_H

#include <stddef.h>

/*
 * items (NULL when empty) regrown to twice *cap elements of elem_size bytes
 * (16 at first), contents kept, and *cap updated.  NULL when out of memory
 * or past SIZE_MAX bytes: then items is untouched and *cap as it was.
 */
void *vec_grow(void *items, size_t *cap, size_t elem_size) __attribute__((warn_unused_result));

#endif

/*
 * vec: see vec.h.
 */
#include "vec.h"

#include <stdint.h>
#include <stdlib.h>

#define VEC_FIRST 16

void *vec_grow(void *items, size_t *cap, size_t elem_size)
{
    size_t ncap = *cap ? *cap : VEC_FIRST / 2;
    if (ncap > SIZE_MAX / 2 / elem_size)
        return NULL;
    ncap *= 2;
    void *p = realloc(items, ncap * elem_size);
    if (p != NULL)
        *cap = ncap;
    return p;
}

/*
 * table: see table.h.  Rows are few (a listing is bounded by --limit), so
 * cells are kept sanitised and cut as they are added, and widths are
 * computed once at print time.
 */
#include "table.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_CELL_MAX 4096 /* bytes of one sanitised cell */

struct table {
    size_t ncols;
    size_t *max;    /* per column cap, 0 = none */
    char **headers; /* ncols */
    char **cells;   /* nrows * ncols */
    size_t *widths; /* characters of each cell, parallel to cells */
    size_t nrows, cap;
};

/* Bytes of the UTF-8 sequence starting at s (1 for an invalid lead byte). */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    size_t n = 1;
    if (s[0] >= 0xf0 && s[0] <= 0xf4)
        n = 4;
    else if (s[0] >= 0xe0)
        n = 3;
    else if (s[0] >= 0xc2 && s[0] < 0xe0)
        n = 2;
    if (n > avail)
        return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    return n;
}

size_t table_cell(const char *s, size_t max, char *out, size_t outlen)
{
    const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
    size_t len = strlen((const char *)p), i = 0, o = 0, chars = 0;
    size_t keep = max > 3 ? max - 3 : max; /* room for "..." when cut */
    size_t cut_at = 0, cut_chars = 0;
    bool cut = false;

    if (outlen == 0)
        return 0;
    while (i < len) {
        size_t n = utf8_seq_len(p + i, len - i);
        if (o + n + 4 > outlen) {
            cut = true;
            break;
        }
        if (chars == keep) {
            cut_at = o;
            cut_chars = chars;
        }
        if (max > 0 && chars == max) {
            cut = true;
            break;
        }
        if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] >= 0x80))
            out[o++] = p[i] >= 0x80 ? '?' : ' '; /* control or invalid UTF-8 */
        else {
            memcpy(out + o, p + i, n);
            o += n;
        }
        i += n;
        chars++;
    }
    if (cut && max > 3) {
        o = cut_at;
        chars = cut_chars;
    }
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
        chars += 3;
    }
    out[o] = '\0';
    return chars;
}

table *table_new(size_t ncols, const char *const *headers)
{
    table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->ncols = ncols;
    t->max = calloc(ncols, sizeof(*t->max));
    t->headers = calloc(ncols, sizeof(*t->headers));
    if (t->max == NULL || t->headers == NULL)
        goto fail;
    for (size_t c = 0; c < ncols; c++)
        if ((t->headers[c] = strdup(headers[c])) == NULL)
            goto fail;
    return t;
fail:
    table_free(t);
    return NULL;
}

void table_set_max(table *t, size_t col, size_t max)
{
    if (col < t->ncols)
        t->max[col] = max == 0 ? 0 : (max < 4 ? 4 : max);
}

int table_add(table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
        if (nc == NULL)
            return -1;
        t->cells = nc;
        size_t *nw = realloc(t->widths, cap * t->ncols * sizeof(*nw));
        if (nw == NULL)
            return -1;
        t->widths = nw;
        t->cap = cap;
    }
    char buf[TABLE_CELL_MAX];
    size_t base = t->nrows * t->ncols;
    for (size_t c = 0; c < t->ncols; c++) {
        t->widths[base + c] = table_cell(cells[c], t->max[c], buf, sizeof(buf));
        if ((t->cells[base + c] = strdup(buf)) == NULL) {
            while (c-- > 0)
                free(t->cells[base + c]);
            return -1;
        }
    }
    t->nrows++;
    return 0;
}

size_t table_rows(const table *t)
{
    return t->nrows;
}

static void print_padded(FILE *out, const char *s, size_t width, size_t target, bool last)
{
    fputs(s, out);
    if (!last)
        for (size_t i = width; i < target + 2; i++)
            fputc(' ', out);
}

void table_print(const table *t, FILE *out)
{
    size_t *w = calloc(t->ncols, sizeof(*w));
    char buf[TABLE_CELL_MAX];
    if (w == NULL)
        return;
    for (size_t c = 0; c < t->ncols; c++)
        w[c] = table_cell(t->headers[c], 0, buf, sizeof(buf));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++)
            if (t->widths[r * t->ncols + c] > w[c])
                w[c] = t->widths[r * t->ncols + c];
    for (size_t c = 0; c < t->ncols; c++)
        print_padded(out, t->headers[c], strlen(t->headers[c]), w[c], c + 1 == t->ncols);
    fputc('\n', out);
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++)
            print_padded(out, t->cells[r * t->ncols + c], t->widths[r * t->ncols + c], w[c],
                         c + 1 == t->ncols);
        fputc('\n', out);
    }
    free(w);
}

void table_free(table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    for (size_t c = 0; t->headers != NULL && c < t->ncols; c++)
        free(t->headers[c]);
    free(t->cells);
    free(t->widths);
    free(t->headers);
    free(t->max);
    free(t);
}

/*
 * promtext: one pass over the lines, matching the metric name exactly.
 */
#include "promtext.h"

#include <stdlib.h>
#include <string.h>

/* Whether the label set [from, to) holds label. */
static bool has_label(const char *from, const char *to, const char *label)
{
    size_t n = strlen(label);
    for (const char *p = from; p + n <= to; p++)
        if (memcmp(p, label, n) == 0 && (p == from || p[-1] == '{' || p[-1] == ',') &&
            (p[n] == ',' || p[n] == '}'))
            return true;
    return false;
}

/* The value of the sample line [p, eol) of metric name, when it is one and label matches. */
static bool sample_value(const char *p, const char *eol, const char *name, size_t nlen,
                         const char *label, double *v)
{
    char num[64];
    if ((size_t)(eol - p) <= nlen || memcmp(p, name, nlen) != 0)
        return false;
    const char *q = p + nlen;
    if (*q == '{') {
        const char *close = memchr(q, '}', (size_t)(eol - q));
        if (close == NULL || (label != NULL && !has_label(q, close + 1, label)))
            return false;
        q = close + 1;
    } else if (*q != ' ' || label != NULL) {
        return false;
    }
    while (q < eol && *q == ' ')
        q++;
    size_t vlen = strcspn(q, " \n");
    if (vlen == 0 || vlen >= sizeof num || q + vlen > eol)
        return false;
    memcpy(num, q, vlen);
    num[vlen] = '\0';
    char *end = NULL;
    *v = strtod(num, &end);
    return end != num && *end == '\0';
}

bool promtext_sum(const char *text, size_t len, const char *name, const char *label, double *sum)
{
    size_t nlen = strlen(name);
    bool found = false;
    const char *p = text, *stop = text + len;
    *sum = 0;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        if (eol == NULL)
            eol = stop;
        double v = 0;
        if (*p != '#' && sample_value(p, eol, name, nlen, label, &v)) {
            *sum += v;
            found = true;
        }
        p = eol + 1;
    }
    return found;
}

/*
 * template: compiler and renderer (see template.h).
 *
 * A compiled template is a list of parts: literal text (a slice of the kept
 * source) or a placeholder (a root and a list of path segments, also slices
 * of the source).  Rendering walks the list once into a capped buffer.
 */
#include "template.h"
#include "buf.h"
#include "error.h"
#include "validate.h"
#include "vec.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_MAX       128 /* characters in one path segment */
#define PATH_MAX_SEGMENTS 32

typedef enum { ROOT_USER, ROOT_DATA, ROOT_EVENT } root_kind;

static const char *const root_names[] = {"user", "data", "event"};

typedef struct segment {
    size_t off, len; /* slice of the source */
    bool is_index;   /* all digits: also usable as an array index */
    size_t index;
} segment;

typedef struct part {
    bool is_var;
    size_t off, len; /* text: slice of the source */
    root_kind root;
    size_t nsegs;
    segment *segs;
} part;

struct template
{
    char *src;
    size_t nparts;
    part *parts;
    size_t nvars;
};

/* ---- compiling --------------------------------------------------------- */

void template_free(template *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nparts; i++)
        free(t->parts[i].segs);
    free(t->parts);
    free(t->src);
    free(t);
}

size_t template_placeholder_count(const template *t)
{
    return t->nvars;
}

bool template_uses_root(const template *t, const char *root)
{
    if (t == NULL || root == NULL)
        return false;
    for (size_t i = 0; i < t->nparts; i++)
        if (t->parts[i].is_var && strcmp(root_names[t->parts[i].root], root) == 0)
            return true;
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_segment_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* c when it is printable ASCII, else '?', so an error stays one readable line. */
static char shown(char c)
{
    return (unsigned char)c >= 0x20 && (unsigned char)c < 0x7F ? c : '?';
}

typedef struct compiler {
    const char *src;
    size_t len;
    template *t;
    size_t cap_parts;
    size_t err_at;
    char *err;
    size_t errlen;
} compiler;

static int fail_at(compiler *c, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(compiler *c, size_t at, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->err_at = at;
    error_set(c->err, c->errlen, "offset %zu: %s", at, msg);
    return -1;
}

static part *add_part(compiler *c)
{
    template *t = c->t;
    if (t->nparts == c->cap_parts) {
        part *p = vec_grow(t->parts, &c->cap_parts, sizeof(*p));
        if (p == NULL)
            return NULL;
        t->parts = p;
    }
    part *p = &t->parts[t->nparts++];
    memset(p, 0, sizeof(*p));
    return p;
}

static int add_text(compiler *c, size_t off, size_t len)
{
    if (len == 0)
        return 0;
    part *p = add_part(c);
    if (p == NULL)
        return fail_at(c, off, "out of memory");
    p->off = off;
    p->len = len;
    return 0;
}

/* Parses the placeholder whose "{{" is at open; stores the offset past "}}". */
static int compile_placeholder(compiler *c, size_t open, size_t *next)
{
    const char *s = c->src;
    segment segs[PATH_MAX_SEGMENTS];
    size_t nsegs = 0;
    size_t i = open + 2;

    while (i < c->len && is_space(s[i]))
        i++;
    if (i + 1 < c->len && s[i] == '}' && s[i + 1] == '}')
        return fail_at(c, open, "empty placeholder");
    for (;;) {
        size_t start = i;
        while (i < c->len && is_segment_char(s[i]))
            i++;
        if (i == start) {
            if (i >= c->len)
                return fail_at(c, open, "'{{' is never closed");
            if (s[i] == '.' || is_space(s[i]) || s[i] == '}')
                return fail_at(c, i, "empty path segment");
            return fail_at(c, i,
                           "unexpected character '%c' in placeholder (a path is "
                           "letters, digits, '_' and '-' joined by '.')",
                           shown(s[i]));
        }
        if (i - start > SEGMENT_MAX)
            return fail_at(c, start, "path segment longer than %d characters", SEGMENT_MAX);
        if (nsegs == PATH_MAX_SEGMENTS)
            return fail_at(c, start, "path deeper than %d segments", PATH_MAX_SEGMENTS);
        segment *g = &segs[nsegs++];
        g->off = start;
        g->len = i - start;
        g->is_index = true;
        g->index = 0;
        for (size_t k = start; k < i; k++) {
            if (s[k] < '0' || s[k] > '9' || g->index > SIZE_MAX / 10 - 1) {
                g->is_index = false;
                break;
            }
            g->index = g->index * 10 + (size_t)(s[k] - '0');
        }
        if (i < c->len && s[i] == '.') {
            i++;
            continue;
        }
        break;
    }
    while (i < c->len && is_space(s[i]))
        i++;
    if (i >= c->len || (s[i] == '}' && (i + 1 >= c->len || s[i + 1] != '}')))
        return fail_at(c, open, "'{{' is never closed");
    if (s[i] != '}')
        return fail_at(c, i, "unexpected character '%c' in placeholder", shown(s[i]));

    int root = -1;
    for (int r = 0; r < 3; r++)
        if (segs[0].len == strlen(root_names[r]) &&
            memcmp(s + segs[0].off, root_names[r], segs[0].len) == 0)
            root = r;
    if (root < 0)
        return fail_at(c, segs[0].off, "unknown root '%.*s' (expected user, data or event)",
                       (int)segs[0].len, s + segs[0].off);
    if (nsegs == 1)
        return fail_at(c, segs[0].off, "'%s' needs a field, e.g. {{%s.%s}}", root_names[root],
                       root_names[root],
                       root == ROOT_DATA   ? "id"
                       : root == ROOT_USER ? "name"
                                           : "type");
    part *p = add_part(c);
    if (p == NULL || (p->segs = malloc((nsegs - 1) * sizeof(segment))) == NULL)
        return fail_at(c, open, "out of memory");
    p->is_var = true;
    p->root = (root_kind)root;
    p->nsegs = nsegs - 1;
    memcpy(p->segs, segs + 1, p->nsegs * sizeof(segment));
    c->t->nvars++;
    *next = i + 2;
    return 0;
}

int template_compile(const char *src, template **out, size_t *err_offset, char *err, size_t errlen)
{
    int rc = -1;
    compiler c = {.src = src, .len = strlen(src), .err = err, .errlen = errlen};
    size_t text_start = 0, i = 0;

    *out = NULL;
    if (c.len > TEMPLATE_MAX_SOURCE) {
        fail_at(&c, TEMPLATE_MAX_SOURCE, "template longer than %d bytes", TEMPLATE_MAX_SOURCE);
        goto out;
    }
    if ((c.t = calloc(1, sizeof(*c.t))) == NULL || (c.t->src = strdup(src)) == NULL) {
        fail_at(&c, 0, "out of memory");
        goto out;
    }
    while (i < c.len) {
        if (src[i] == '{' && i + 1 < c.len && src[i + 1] == '{') {
            if (add_text(&c, text_start, i - text_start) < 0 ||
                compile_placeholder(&c, i, &text_start) < 0)
                goto out;
            i = text_start;
            continue;
        }
        size_t n = validate_utf8_char(src + i, c.len - i);
        if (n == 0) {
            fail_at(&c, i, "invalid UTF-8");
            goto out;
        }
        i += n;
    }
    if (add_text(&c, text_start, c.len - text_start) < 0)
        goto out;
    *out = c.t;
    c.t = NULL;
    rc = 0;
out:
    if (rc < 0 && err_offset != NULL)
        *err_offset = c.err_at;
    template_free(c.t);
    return rc;
}

/* ---- rendering --------------------------------------------------------- */

/* The rendered text, bounded by TEMPLATE_MAX_OUTPUT, and the escaping it applies to values. */
typedef struct outbuf {
    buf text;
    template_escape esc;
    bool too_large; /* the failure was the bound, not memory */
} outbuf;

static int out_raw(outbuf *b, const char *s, size_t n)
{
    if (buf_append(&b->text, s, n) == 0)
        return 0;
    b->too_large = n > b->text.limit - b->text.len;
    return -1;
}

/* The HTML entity for c, or NULL when c is safe as is (in text and in quoted attributes). */
static const char *html_entity(char c)
{
    static const char *const entities[][2] = {
        {"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"},
    };
    for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++)
        if (entities[i][0][0] == c)
            return entities[i][1];
    return NULL;
}

/* Appends an inserted value, escaped as the mode requires. */
static int out_value(outbuf *b, const char *s, size_t n)
{
    if (b->esc == TEMPLATE_ESCAPE_NONE)
        return out_raw(b, s, n);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = html_entity(s[i]);
        if (rep == NULL)
            continue;
        if (out_raw(b, s + run, i - run) < 0 || out_raw(b, rep, strlen(rep)) < 0)
            return -1;
        run = i + 1;
    }
    return out_raw(b, s + run, n - run);
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return out_value(data, buffer, size);
}

/*
 * The shortest decimal form that reads back as the same double: the first
 * precision of %g, from 1 up, that round-trips.
 *
 * Most values need at most 15 digits, and then one try finds the answer:
 * when %.15g reads back as v, its P significant digits (trailing zeros
 * dropped) are the shortest that do.  Any decimal of fewer digits is at
 * least a unit of the P-th digit away from that one, far more than the half
 * ulp within which a decimal reads back as v, while rounding v to P digits
 * gives that very decimal.  That holds where a double has its full 53 bits,
 * so a subnormal value, like one needing 16 or 17 digits, takes the search
 * from 1.
 */
static void format_real(double v, char *out, size_t outlen)
{
    snprintf(out, outlen, "%.15g", v);
    if ((v == 0 || isnormal(v)) && strtod(out, NULL) == v) {
        int digits = 0, zeros = 0; /* significant digits so far, trailing zeros among them */
        for (const char *p = out; *p != '\0' && *p != 'e'; p++) {
            if (*p < '0' || *p > '9' || (*p == '0' && digits == 0))
                continue;
            digits++;
            zeros = *p == '0' ? zeros + 1 : 0;
        }
        int prec = digits - zeros > 0 ? digits - zeros : 1;
        if (prec != 15)
            snprintf(out, outlen, "%.*g", prec, v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, outlen, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static const json_t *lookup(const template *t, const part *p, const json_t *context)
{
    const json_t *v = json_object_get(context, root_names[p->root]);
    for (size_t i = 0; i < p->nsegs && v != NULL; i++) {
        const segment *g = &p->segs[i];
        if (json_is_object(v))
            v = json_object_getn(v, t->src + g->off, g->len);
        else if (json_is_array(v) && g->is_index)
            v = json_array_get(v, g->index);
        else
            v = NULL;
    }
    return v;
}

static int render_value(outbuf *b, const json_t *v)
{
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        return out_value(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return out_value(b, num, strlen(num));
    case JSON_REAL:
        format_real(json_real_value(v), num, sizeof(num));
        return out_value(b, num, strlen(num));
    case JSON_TRUE:
        return out_value(b, "true", 4);
    case JSON_FALSE:
        return out_value(b, "false", 5);
    case JSON_OBJECT:
    case JSON_ARRAY:
        return json_dump_callback(v, dump_cb, b, JSON_COMPACT) == 0 ? 0 : -1;
    case JSON_NULL:
        break;
    }
    return 0;
}

int template_render(const template *t, const json_t *context, template_escape esc, char **out,
                    size_t *outlen, int *missing, char *err, size_t errlen)
{
    int rc = -1;
    outbuf b = {.esc = esc};
    buf_init(&b.text, TEMPLATE_MAX_OUTPUT);
    int holes = 0;

    *out = NULL;
    if (out_raw(&b, "", 0) < 0) /* an empty result is "", not NULL */
        goto out;
    for (size_t i = 0; i < t->nparts; i++) {
        const part *p = &t->parts[i];
        if (!p->is_var) {
            if (out_raw(&b, t->src + p->off, p->len) < 0)
                goto out;
            continue;
        }
        const json_t *v = lookup(t, p, context);
        if (v == NULL || json_is_null(v)) {
            holes++;
            continue;
        }
        if (render_value(&b, v) < 0)
            goto out;
    }
    if (outlen != NULL)
        *outlen = b.text.len;
    *out = buf_steal(&b.text, NULL);
    if (missing != NULL)
        *missing = holes;
    rc = 0;
out:
    if (rc < 0 && b.too_large)
        error_set(err, errlen, "rendered text exceeds %d bytes", TEMPLATE_MAX_OUTPUT);
    else if (rc < 0)
        error_set(err, errlen, "out of memory");
    buf_free(&b.text);
    return rc;
}

json_t *template_context_new(json_t *event, json_t *user)
{
    int rc = -1;
    json_t *ctx = json_object();
    json_t *ev = json_object();
    json_t *data = json_object_get(event, "data");
    json_t *id = json_object_get(event, "event_id");
    const char *key;
    json_t *value;

    if (ctx == NULL || ev == NULL)
        goto out;
    json_object_foreach(event, key, value)
    {
        if (strcmp(key, "data") != 0 && json_object_set(ev, key, value) < 0)
            goto out;
    }
    /* Templates say {{event.id}}; the event JSON says event_id. */
    if (id != NULL && json_object_set(ev, "id", id) < 0)
        goto out;
    if (json_object_set(ctx, "event", ev) < 0 ||
        (json_is_object(user) && json_object_set(ctx, "user", user) < 0) ||
        (json_is_object(data) && json_object_set(ctx, "data", data) < 0))
        goto out;
    rc = 0;
out:
    json_decref(ev);
    if (rc < 0) {
        json_decref(ctx);
        ctx = NULL;
    }
    return ctx;
}

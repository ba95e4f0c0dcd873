/*
 * template: compiler and renderer (see template.h).
 *
 * A compiled template is a flat list of parts: literal text (a slice of the
 * kept source), a placeholder, or a section's opening or closing tag (each
 * a path of segments, also slices of the source).  An opening tag knows
 * where its section ends, so rendering walks the list into a capped buffer,
 * going through a section's parts once per repetition or skipping them.
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
#define SECTION_MAX_DEPTH 8

typedef enum { ROOT_USER, ROOT_DATA, ROOT_EVENT } root_kind;

static const char *const root_names[] = {"user", "data", "event"};

typedef struct segment {
    size_t off, len; /* slice of the source */
    bool is_index;   /* all digits: also usable as an array index */
    size_t index;
} segment;

typedef enum {
    PART_TEXT,     /* literal text */
    PART_VALUE,    /* {{path}} or {{.}} */
    PART_SECTION,  /* {{#path}} */
    PART_INVERTED, /* {{^path}} */
    PART_END,      /* {{/path}} */
} part_kind;

typedef struct part {
    part_kind kind;
    size_t off, len; /* text: slice of the source; a tag: its path as written ("." alone) */
    int root;        /* the root_kind the first segment names, or -1 */
    size_t nsegs;    /* 0 for "." (the current element) */
    segment *segs;   /* the whole path, first segment included */
    size_t end;      /* a section: index of its PART_END */
} part;

struct template
{
    char *src;
    size_t nparts;
    part *parts;
    size_t ntags;
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
    return t->ntags;
}

bool template_uses_root(const template *t, const char *root)
{
    if (t == NULL || root == NULL)
        return false;
    /* A path of two segments or more whose first names a root may read it, inside a
     * section too, when no element has a key of that name. */
    for (size_t i = 0; i < t->nparts; i++) {
        const part *p = &t->parts[i];
        if (p->kind != PART_TEXT && p->kind != PART_END && p->root >= 0 && p->nsegs >= 2 &&
            strcmp(root_names[p->root], root) == 0)
            return true;
    }
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

/* A section opened and not yet closed. */
typedef struct open_section {
    size_t part; /* index of its PART_SECTION or PART_INVERTED */
    size_t at;   /* offset of its "{{" */
} open_section;

typedef struct compiler {
    const char *src;
    size_t len;
    template *t;
    size_t cap_parts;
    open_section open[SECTION_MAX_DEPTH];
    size_t depth;     /* sections open */
    size_t nelements; /* of them, those that are not inverted: elements a path may name */
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

/*
 * Parses the path that starts at *pos, "." or segments joined by '.', into
 * segs (*nsegs of them, 0 for "."), and moves *pos past it.
 */
static int parse_path(compiler *c, size_t open, size_t *pos, segment *segs, size_t *nsegs)
{
    const char *s = c->src;
    size_t i = *pos;

    *nsegs = 0;
    if (s[i] == '.') {
        size_t k = i + 1;
        while (k < c->len && is_space(s[k]))
            k++;
        if (k >= c->len || s[k] == '}') {
            *pos = i + 1;
            return 0;
        }
    }
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
        if (*nsegs == PATH_MAX_SEGMENTS)
            return fail_at(c, start, "path deeper than %d segments", PATH_MAX_SEGMENTS);
        segment *g = &segs[(*nsegs)++];
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
        *pos = i;
        return 0;
    }
}

/*
 * Stores in *root the root a path's first segment names, or -1.  Outside
 * sections a path must start with a root and go further, so that no tag
 * dumps a whole record; inside one any first segment may be a key of an
 * element, and "." is the element.
 */
static int check_root(compiler *c, size_t open, const segment *segs, size_t nsegs, int *root)
{
    const char *s = c->src;

    *root = -1;
    if (nsegs == 0) {
        if (c->nelements == 0)
            return fail_at(c, open, "'{{.}}' is only valid inside a section");
        return 0;
    }
    for (int r = 0; r < 3; r++)
        if (segs[0].len == strlen(root_names[r]) &&
            memcmp(s + segs[0].off, root_names[r], segs[0].len) == 0)
            *root = r;
    if (c->nelements > 0)
        return 0;
    if (*root < 0)
        return fail_at(c, segs[0].off, "unknown root '%.*s' (expected user, data or event)",
                       (int)segs[0].len, s + segs[0].off);
    if (nsegs == 1)
        return fail_at(c, segs[0].off, "'%s' needs a field, e.g. {{%s.%s}}", root_names[*root],
                       root_names[*root],
                       *root == ROOT_DATA   ? "id"
                       : *root == ROOT_USER ? "name"
                                            : "type");
    return 0;
}

/* Closes the innermost section with the {{/...}} at open, whose path is name. */
static int close_section(compiler *c, size_t open, size_t name_off, size_t name_len)
{
    const char *s = c->src;

    if (c->depth == 0)
        return fail_at(c, open, "'{{/%.*s}}' closes no open section", (int)name_len, s + name_off);
    open_section *o = &c->open[c->depth - 1];
    const part *sec = &c->t->parts[o->part];
    if (sec->len != name_len || memcmp(s + sec->off, s + name_off, name_len) != 0)
        return fail_at(c, open, "'{{/%.*s}}' closes '%.*s' (opened at offset %zu)", (int)name_len,
                       s + name_off, (int)sec->len, s + sec->off, o->at);
    part *p = add_part(c);
    if (p == NULL)
        return fail_at(c, open, "out of memory");
    p->kind = PART_END;
    p->off = name_off;
    p->len = name_len;
    c->t->parts[o->part].end = c->t->nparts - 1;
    if (c->t->parts[o->part].kind == PART_SECTION)
        c->nelements--;
    c->depth--;
    return 0;
}

/* Parses the tag whose "{{" is at open; stores the offset past "}}". */
static int compile_tag(compiler *c, size_t open, size_t *next)
{
    const char *s = c->src;
    segment segs[PATH_MAX_SEGMENTS];
    size_t nsegs = 0;
    part_kind kind = PART_VALUE;
    size_t i = open + 2;
    int root;

    while (i < c->len && is_space(s[i]))
        i++;
    if (i < c->len && (s[i] == '#' || s[i] == '^' || s[i] == '/')) {
        kind = s[i] == '#' ? PART_SECTION : s[i] == '^' ? PART_INVERTED : PART_END;
        i++;
        while (i < c->len && is_space(s[i]))
            i++;
    }
    if (i + 1 < c->len && s[i] == '}' && s[i + 1] == '}')
        return fail_at(c, open, kind == PART_VALUE ? "empty placeholder" : "empty section name");
    size_t name_off = i;
    if (parse_path(c, open, &i, segs, &nsegs) < 0)
        return -1;
    size_t name_len = i - name_off;
    while (i < c->len && is_space(s[i]))
        i++;
    if (i >= c->len || (s[i] == '}' && (i + 1 >= c->len || s[i + 1] != '}')))
        return fail_at(c, open, "'{{' is never closed");
    if (s[i] != '}')
        return fail_at(c, i, "unexpected character '%c' in placeholder", shown(s[i]));
    *next = i + 2;
    c->t->ntags++;

    if (kind == PART_END)
        return close_section(c, open, name_off, name_len);
    if (check_root(c, open, segs, nsegs, &root) < 0)
        return -1;
    if (kind != PART_VALUE && c->depth == SECTION_MAX_DEPTH)
        return fail_at(c, open, "sections nested deeper than %d", SECTION_MAX_DEPTH);
    part *p = add_part(c);
    if (p == NULL || (nsegs > 0 && (p->segs = malloc(nsegs * sizeof(segment))) == NULL))
        return fail_at(c, open, "out of memory");
    p->kind = kind;
    p->off = name_off;
    p->len = name_len;
    p->root = root;
    p->nsegs = nsegs;
    if (nsegs > 0)
        memcpy(p->segs, segs, nsegs * sizeof(segment));
    if (kind != PART_VALUE) {
        c->open[c->depth].part = c->t->nparts - 1;
        c->open[c->depth].at = open;
        c->depth++;
        if (kind == PART_SECTION)
            c->nelements++;
    }
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
            if (add_text(&c, text_start, i - text_start) < 0 || compile_tag(&c, i, &text_start) < 0)
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
    if (c.depth > 0) {
        const open_section *o = &c.open[c.depth - 1];
        const part *p = &c.t->parts[o->part];
        fail_at(&c, o->at, "section '%.*s' is never closed", (int)p->len, src + p->off);
        goto out;
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

/* A rendering in progress: the output and the elements of the sections being rendered. */
typedef struct renderer {
    const template *t;
    const json_t *context;
    outbuf out;
    const json_t *elements[SECTION_MAX_DEPTH]; /* innermost last */
    size_t depth;
    size_t steps; /* parts and section repetitions rendered so far */
    int holes;
} renderer;

/* v's value at segs: an object's member by name, an array's element by index. */
static const json_t *walk(const template *t, const json_t *v, const segment *segs, size_t nsegs)
{
    for (size_t i = 0; i < nsegs && v != NULL; i++) {
        const segment *g = &segs[i];
        if (json_is_object(v))
            v = json_object_getn(v, t->src + g->off, g->len);
        else if (json_is_array(v) && g->is_index)
            v = json_array_get(v, g->index);
        else
            v = NULL;
    }
    return v;
}

/*
 * The value p's path names.  The first segment is a key of the innermost
 * element that is an object having it, else of the next one out, else a
 * root; the rest of the path is followed from there.  A single segment
 * names no whole root.
 */
static const json_t *lookup(const renderer *r, const part *p)
{
    const template *t = r->t;
    if (p->nsegs == 0)
        return r->depth > 0 ? r->elements[r->depth - 1] : NULL;
    const segment *first = &p->segs[0];
    for (size_t d = r->depth; d-- > 0;) {
        const json_t *v = json_object_getn(r->elements[d], t->src + first->off, first->len);
        if (v != NULL)
            return walk(t, v, p->segs + 1, p->nsegs - 1);
    }
    if (p->root < 0 || p->nsegs < 2)
        return NULL;
    return walk(t, json_object_get(r->context, root_names[p->root]), p->segs + 1, p->nsegs - 1);
}

/* Whether a section over v renders: not missing, null, false, 0, "", [] or {}. */
static bool is_truthy(const json_t *v)
{
    if (v == NULL)
        return false;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_TRUE:
        return true;
    case JSON_FALSE:
    case JSON_NULL:
        break;
    }
    return false;
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

/*
 * Counts one step of work.  The output bound alone does not bound the
 * work: nested sections over large arrays can repeat, many times over,
 * parts that render nothing.
 */
static int step(renderer *r)
{
    return ++r->steps > TEMPLATE_MAX_STEPS ? -1 : 0;
}

static int render_parts(renderer *r, size_t from, size_t to);

/* Renders the parts [from, to) once with element as the innermost one. */
static int render_with(renderer *r, const json_t *element, size_t from, size_t to)
{
    if (step(r) < 0)
        return -1;
    /* template_compile refuses sections nested deeper than the stack. */
    r->elements[r->depth++] = element;
    int rc = render_parts(r, from, to);
    r->depth--;
    return rc;
}

/* Renders the section whose opening tag is parts[at]. */
static int render_section(renderer *r, size_t at)
{
    const part *p = &r->t->parts[at];
    const json_t *v = lookup(r, p);

    if (p->kind == PART_INVERTED)
        return is_truthy(v) ? 0 : render_parts(r, at + 1, p->end);
    if (!is_truthy(v))
        return 0;
    if (!json_is_array(v))
        return render_with(r, v, at + 1, p->end);
    for (size_t i = 0; i < json_array_size(v); i++)
        if (render_with(r, json_array_get(v, i), at + 1, p->end) < 0)
            return -1;
    return 0;
}

static int render_parts(renderer *r, size_t from, size_t to)
{
    const template *t = r->t;
    for (size_t i = from; i < to; i++) {
        const part *p = &t->parts[i];
        if (step(r) < 0)
            return -1;
        switch (p->kind) {
        case PART_TEXT:
            if (out_raw(&r->out, t->src + p->off, p->len) < 0)
                return -1;
            break;
        case PART_VALUE: {
            const json_t *v = lookup(r, p);
            if (v == NULL || json_is_null(v))
                r->holes++;
            else if (render_value(&r->out, v) < 0)
                return -1;
            break;
        }
        case PART_SECTION:
        case PART_INVERTED:
            if (render_section(r, i) < 0)
                return -1;
            i = p->end;
            break;
        case PART_END: /* skipped with its section */
            break;
        }
    }
    return 0;
}

int template_render(const template *t, const json_t *context, template_escape esc, char **out,
                    size_t *outlen, int *missing, char *err, size_t errlen)
{
    int rc = -1;
    renderer r = {.t = t, .context = context, .out = {.esc = esc}};
    buf_init(&r.out.text, TEMPLATE_MAX_OUTPUT);

    *out = NULL;
    if (out_raw(&r.out, "", 0) < 0) /* an empty result is "", not NULL */
        goto out;
    if (render_parts(&r, 0, t->nparts) < 0)
        goto out;
    if (outlen != NULL)
        *outlen = r.out.text.len;
    *out = buf_steal(&r.out.text, NULL);
    if (missing != NULL)
        *missing = r.holes;
    rc = 0;
out:
    if (rc < 0 && r.steps > TEMPLATE_MAX_STEPS)
        error_set(err, errlen, "rendering takes more than %d steps (sections repeated too often)",
                  TEMPLATE_MAX_STEPS);
    else if (rc < 0 && r.out.too_large)
        error_set(err, errlen, "rendered text exceeds %d bytes", TEMPLATE_MAX_OUTPUT);
    else if (rc < 0)
        error_set(err, errlen, "out of memory");
    buf_free(&r.out.text);
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

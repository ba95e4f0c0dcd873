/*
 * template: placeholders and sections in notification templates.
 *
 * A template is text with placeholders {{root.path}}:
 *   {{user.name}} {{user.email}}      the recipient (user row as JSON)
 *   {{data.order.id}}                  a field of the event's data, nested
 *   {{data.items.0.name}}              a numeric segment indexes an array
 *   {{event.type}} {{event.id}}        the event itself
 * Whitespace inside the braces is allowed ("{{ user.name }}").  Roots are
 * user, data and event; a bare root ("{{data}}") is refused, because it
 * dumps a whole record, contact details included, into a message.  Segments
 * are 1..128 characters of [A-Za-z0-9_-].  A "}}" outside a placeholder is
 * ordinary text, as in Mustache, so inline CSS ("a{b:c}}") survives.
 *
 * Sections, as in Mustache, repeat or guard part of a template:
 *   {{#data.events}}...{{/data.events}}  once per element of an array, or
 *                                        once for any other value shown
 *   {{^data.events}}...{{/data.events}}  once exactly when the section
 *                                        above renders nothing
 * A section renders nothing for a missing value, null, false, 0, "", []
 * and {} (none of them counted as missing).  Otherwise the element (or the
 * value) is the innermost context of the text inside, where {{.}} renders
 * it whole ({{.}} outside a section is refused).  Inside a section, the
 * first segment of a path is a key of the innermost element that is an
 * object having it, else of the next element out, else a root; the rest
 * of the path is followed from there.  There, a path of one segment may
 * name an element's key but never a whole root, so {{data}} still dumps
 * no record.  Section paths resolve the same way, so sections nest, at
 * most 8 deep.  A digest whose events each look like
 * {"event_id":...,"type":...,"created_at":...,"data":{...}}, on one line:
 *   {{data.count}} new comments:{{#data.events}} - {{data.author}}:
 *   {{data.text}}{{/data.events}}{{^data.events}} none{{/data.events}}
 * reads data.count in the digest's data, data.author in each event's.
 *
 * Templates are compiled once (at load, and by the gateway on PUT to report
 * errors with their byte offset) and rendered per delivery.  Rendering is
 * pure: it reads a JSON context and writes a new string, nothing else.
 *
 * Values render as: strings verbatim; integers in decimal; reals in the
 * shortest form that reads back exactly (19.99, not 19.989999999999998);
 * true/false; objects and arrays as compact JSON; null and missing values
 * as nothing, counted in *missing so the caller can decide whether a message
 * with holes is worth sending.  The HTML mode escapes & < > " ' in inserted
 * values (never in the template's own text, which is trusted markup).
 */
#ifndef HERALD_TEMPLATE_H
#define HERALD_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct template template;

/* Largest template source and largest rendered output, in bytes. */
#define TEMPLATE_MAX_SOURCE (64 * 1024)
#define TEMPLATE_MAX_OUTPUT (64 * 1024)

/* Most parts rendered, each repetition of a section counted too. */
#define TEMPLATE_MAX_STEPS (1024 * 1024)

typedef enum {
    TEMPLATE_ESCAPE_NONE = 0, /* plain text, SMS, push, subjects */
    TEMPLATE_ESCAPE_HTML = 1, /* HTML mail bodies */
} template_escape;

/*
 * Compiles src (NUL-terminated UTF-8, at most TEMPLATE_MAX_SOURCE bytes).
 * On success *out is a template the caller owns (free with template_free).
 * On failure returns -1, *out is NULL and err says what and where, e.g.
 *   "offset 6: unknown root 'usr' (expected user, data or event)"
 *   "offset 0: '{{' is never closed"
 *   "offset 0: section 'data.events' is never closed"
 *   "offset 24: '{{/data.tags}}' closes 'data.events' (opened at offset 0)".
 * If err_offset is not NULL it receives the byte offset of the problem.
 */
int template_compile(const char *src, template **out, size_t *err_offset, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Frees a template; NULL is ignored. */
void template_free(template *t);

/*
 * Number of tags, {{...}} (for tests and diagnostics): placeholders, and a
 * section's opening and closing tags, each counted.
 */
size_t template_placeholder_count(const template *t);

/*
 * Whether a placeholder or section of t may read under root ("user", "data"
 * or "event"), so that a caller can leave out of the context what no
 * template reads.  A path inside a section that starts with a root counts,
 * since the elements may lack that key.  false for a NULL t.
 */
bool template_uses_root(const template *t, const char *root);

/*
 * Renders t against context, an object {"user":{...},"data":{...},
 * "event":{...}} (the caller keeps ownership).  On success *out is a new
 * NUL-terminated string the caller frees, *outlen its length (may be NULL),
 * and *missing (may be NULL) the number of placeholders that rendered empty
 * because the value was null or absent (each time, in a repeated section).
 * Fails with -1 when the output would exceed TEMPLATE_MAX_OUTPUT, rendering
 * would take more than TEMPLATE_MAX_STEPS, or memory runs out.
 */
int template_render(const template *t, const json_t *context, template_escape esc, char **out,
                    size_t *outlen, int *missing, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/*
 * Builds the context template_render expects for one event and recipient:
 *   {"user": user, "data": event.data,
 *    "event": every field of event but "data", plus "id" = event.event_id}
 * event is the event JSON, user the user record (either may be NULL).  Both
 * stay the caller's; the context holds its own references to their parts.
 * Returns a new object (json_decref it), or NULL when out of memory.
 */
json_t *template_context_new(json_t *event, json_t *user) __attribute__((warn_unused_result));

#endif

/*
 * libFuzzer target for the template engine: the input is a template's
 * source, as an administrator may PUT it.  Compiling must neither crash,
 * leak nor read out of bounds; a template that compiles renders against a
 * digest-like context, in both escape modes, within TEMPLATE_MAX_OUTPUT
 * and as one NUL-terminated string of the length reported.
 */
#include "template.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *digest_context(void)
{
    static const char ctx[] =
        "{\"user\":{\"name\":\"Ada\",\"email\":\"a@example.com\"},"
        " \"data\":{\"count\":2,\"a\":[1,2,3],\"o\":{\"a\":[\"<x>\",\"&\"],\"b\":\"\"},"
        "  \"events\":["
        "   {\"event_id\":\"e-1\",\"type\":\"t\",\"data\":{\"a\":[0,{}],\"tags\":[\"x\"]}},"
        "   {\"event_id\":\"e-2\",\"type\":\"t\",\"data\":{\"a\":null,\"tags\":[]}}]},"
        " \"event\":{\"id\":\"d-1\",\"type\":\"digest\"}}";
    return json_loads(ctx, 0, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    if (ctx == NULL && (ctx = digest_context()) == NULL)
        abort();
    char *src = malloc(size + 1);
    if (src == NULL)
        return 0;
    memcpy(src, data, size);
    src[size] = '\0';

    template *t = NULL;
    char err[256];
    size_t off = 0;
    if (template_compile(src, &t, &off, err, sizeof err) != 0) {
        if (t != NULL || off > strlen(src))
            abort();
        free(src);
        return 0;
    }
    for (int esc = TEMPLATE_ESCAPE_NONE; esc <= TEMPLATE_ESCAPE_HTML; esc++) {
        char *out = NULL;
        size_t len = 0;
        int missing = -1;
        if (template_render(t, ctx, (template_escape)esc, &out, &len, &missing, err, sizeof err) !=
            0) {
            if (out != NULL)
                abort();
            continue;
        }
        if (len > TEMPLATE_MAX_OUTPUT || strlen(out) != len || missing < 0)
            abort();
        free(out);
    }
    template_free(t);
    free(src);
    return 0;
}

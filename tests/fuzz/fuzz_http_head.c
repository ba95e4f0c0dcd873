/*
 * libFuzzer target for the gateway's request framing (httpframe.h):
 * whatever bytes a client sends, the framing must neither crash nor read
 * out of bounds, never take more bytes than it was given, and a refused
 * request always has a 4xx status, a code and a message.  The input is
 * fed in two pieces, split where its first byte says, as a connection
 * would deliver it; each complete request is followed by the next.
 */
#include "httpframe.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const httpframe *f)
{
    if (f->state == HTTPFRAME_ERROR &&
        (f->status < 400 || f->status > 499 || f->code == NULL || f->message[0] == '\0'))
        abort();
}

/* Feeds [p, p + n) to f, starting the next request after each one. */
static void feed(httpframe *f, const char *p, size_t n)
{
    for (int guard = 0; n > 0 && guard < 10000; guard++) {
        size_t k = httpframe_feed(f, p, n);
        if (k > n)
            abort();
        check(f);
        if (f->state == HTTPFRAME_ERROR)
            return;
        if (f->state == HTTPFRAME_DONE)
            httpframe_next(f);
        else if (k == 0)
            abort(); /* neither progress nor a verdict */
        p += k;
        n -= k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static httpframe f;
    if (size == 0)
        return 0;
    size_t split = data[0] % size;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (split > len)
        split = len;
    httpframe_init(&f, false);
    feed(&f, text, split);
    if (f.state != HTTPFRAME_ERROR)
        feed(&f, text + split, len - split);
    /* The same bytes as libmicrohttpd's answers: the response side. */
    httpframe_init(&f, true);
    feed(&f, text, len);
    return 0;
}

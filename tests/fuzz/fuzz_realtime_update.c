/*
 * libFuzzer target for herald-realtime's reading of inbox.updates: a
 * record is whatever is on the topic, so parsing it must neither crash,
 * leak nor read out of bounds, and a record it accepts must become an
 * event a client can parse, carrying the record's seq.
 */
#include "rtframe.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char user[VALIDATE_USER_ID_MAX + 1], err[256];
    rtframe *f = NULL;
    if (rtframe_from_update((const char *)data, size, user, &f, err, sizeof err) != 0) {
        if (f != NULL)
            abort();
        return 0;
    }
    json_t *j = json_loadb(rtframe_text(f), f->len, 0, NULL);
    if (j == NULL || json_integer_value(json_object_get(j, "seq")) != f->seq ||
        strlen(rtframe_text(f)) != f->len || user[0] == '\0')
        abort();
    json_decref(j);
    rtframe_unref(f);
    return 0;
}

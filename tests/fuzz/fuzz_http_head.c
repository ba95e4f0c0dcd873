/*
 * libFuzzer target for the gateway's request-head checks (httphead.h):
 * whatever fields a client sends, the checks must neither crash nor read
 * out of bounds, and a refused head always has a message.  The input is a
 * head as sent: lines "name: value" split at CRLF or LF, as a server would
 * hand them over.
 */
#include "httphead.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    httphead h;
    httphead_init(&h);
    char *line = text;
    for (int n = 0; n < MAX_FIELDS && line != NULL && *line != '\0'; n++) {
        char *next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
            size_t len = strlen(line);
            if (len > 0 && line[len - 1] == '\r')
                line[len - 1] = '\0';
        }
        char *colon = strchr(line, ':');
        if (colon != NULL) {
            *colon = '\0';
            char *value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            httphead_field(&h, line, value);
        }
        line = next;
    }
    char msg[160];
    const char *field;
    if (httphead_finish(&h, msg, sizeof msg, &field) != 0 && msg[0] == '\0')
        abort();
    free(text);
    return 0;
}

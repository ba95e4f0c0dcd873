/*
 * libFuzzer target for the urlencoded bodies of receipts (Twilio's status
 * callbacks) and the JSON of the generic HTTP provider's: whatever a
 * caller posts, parsing must neither crash, leak nor read out of bounds.
 * The first byte chooses the parser.
 */
#include "receipts_parse.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    char err[160];
    receipt r;
    if (data[0] % 2 == 0) {
        receipts_form f;
        if (receipts_form_parse(body, len, &f, err, sizeof err) == 0)
            (void)receipts_twilio(&f, "1b4e28ba-2fa1-41d2-883f-0016d3cca427", &r, err, sizeof err);
        receipts_form_free(&f);
        return 0;
    }
    json_t *doc = json_loadb(body, len, 0, NULL);
    if (doc != NULL)
        (void)receipts_http(doc, &r, err, sizeof err);
    json_decref(doc);
    return 0;
}

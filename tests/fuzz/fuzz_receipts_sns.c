/*
 * libFuzzer target for SNS messages and the SES notifications they carry:
 * the envelope, its canonical signed text and the receipts of its
 * Message must neither crash, leak nor read out of bounds.
 */
#include "buf.h"
#include "receipts_parse.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static receipt out[RECEIPTS_SES_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    receipts_sns m;
    char err[256];
    if (receipts_sns_parse((const char *)data, size, &m, err, sizeof err) == 0) {
        buf b;
        buf_init(&b, 1 << 20);
        (void)receipts_sns_string_to_sign(&m, &b);
        buf_free(&b);
        size_t n = 0;
        (void)receipts_ses(&m, out, RECEIPTS_SES_MAX, &n, err, sizeof err);
    }
    receipts_sns_free(&m);
    return 0;
}

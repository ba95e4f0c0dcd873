/*
 * libFuzzer target for SMTP bounces (RFC 3464 delivery status
 * notifications): whatever an MTA pipes in, parsing must neither crash
 * nor read out of bounds.  The first byte says whether the MTA named a
 * recipient (the VERP address) as well.
 */
#include "receipts_dsn.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static receipt out[RECEIPTS_DSN_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const char recipient[] = "bounces+1b4e28ba-2fa1-41d2-883f-0016d3cca427@mail.example.com";
    size_t n = 0;
    char err[160];
    (void)receipts_dsn((const char *)data + 1, size - 1, "bounces@mail.example.com",
                       data[0] % 2 ? recipient : NULL, out, RECEIPTS_DSN_MAX, &n, err, sizeof err);
    return 0;
}

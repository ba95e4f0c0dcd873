/*
 * libFuzzer target for the unsubscribe token (common/unsubtoken over
 * common/signedtoken): the token arrives in the query of an unauthenticated
 * gateway route, so verifying it must neither crash nor read out of
 * bounds, and a token it accepts must be exactly the one Herald mints for
 * the names and expiry it yields (nothing else verifies).
 *
 * Input: the token.  The seeds hold tokens signed with SECRET, valid at NOW.
 */
#include "unsubtoken.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "fuzz-unsubscribe-secret-0123456789abcdef"
#define NOW    1796000000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsubtoken t;
    char again[UNSUBTOKEN_SIZE], err[256];
    signedtoken_result r =
        unsubtoken_verify(SECRET, strlen(SECRET), (const char *)data, size, NOW, &t);
    if (r != SIGNEDTOKEN_OK && r != SIGNEDTOKEN_EXPIRED)
        return 0;
    if (unsubtoken_mint(SECRET, strlen(SECRET), t.user_id, t.category, t.channel, t.expires_unix,
                        again, sizeof again, err, sizeof err) != 0 ||
        strlen(again) != size || memcmp(again, data, size) != 0)
        abort(); /* accepted a token Herald would not have written */
    return 0;
}

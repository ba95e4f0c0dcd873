/*
 * mailkey: how an email names the delivery it carries, so that whatever
 * comes back (a bounce, a provider's notification) finds its delivery
 * without a lookup table (docs/receipts.md):
 *
 *   Message-ID: <IDEMPOTENCY_KEY@herald>       every email Herald sends
 *   Return-Path: LOCAL+IDEMPOTENCY_KEY@DOMAIN  with HERALD_EMAIL_BOUNCE_ADDRESS
 *                                              set to LOCAL@DOMAIN (VERP)
 *
 * Idempotency keys are canonical UUIDs (common/ids).  Pure logic.
 */
#ifndef HERALD_MAILKEY_H
#define HERALD_MAILKEY_H

#include "ids.h"

#include <stddef.h>

#define MAILKEY_MESSAGE_ID_DOMAIN "herald"
#define MAILKEY_ADDRESS_MAX       254 /* RFC 5321's path limit, less the brackets */
#define MAILKEY_LOCAL_MAX         64  /* RFC 5321's local part */

/*
 * The key of a Message-ID "<key@herald>" (angle brackets and surrounding
 * blanks optional) into key[ID_UUID_SIZE]; -1 when s[0..n) is not one.
 */
int mailkey_from_message_id(const char *s, size_t n, char key[ID_UUID_SIZE])
    __attribute__((warn_unused_result));

/*
 * The config check (config_var.check) of HERALD_EMAIL_BOUNCE_ADDRESS, for
 * the workers and the gateway alike: an address LOCAL@DOMAIN whose LOCAL
 * leaves room for "+<idempotency key>" in a local part's 64 bytes.
 */
int mailkey_check_bounce_address(const char *value, char *err, size_t errlen);

/* Writes the VERP address LOCAL+key@DOMAIN of bounce (LOCAL@DOMAIN); -1 if it does not fit. */
int mailkey_verp_address(const char *bounce, const char *key, char *out, size_t outlen)
    __attribute__((warn_unused_result));

/*
 * The key of addr[0..n), a VERP address of bounce (LOCAL+key@DOMAIN, the
 * local part and domain compared without case, angle brackets and an
 * "rfc822;" type allowed), into key[ID_UUID_SIZE]; -1 when it is not one.
 */
int mailkey_from_verp(const char *bounce, const char *addr, size_t n, char key[ID_UUID_SIZE])
    __attribute__((warn_unused_result));

#endif

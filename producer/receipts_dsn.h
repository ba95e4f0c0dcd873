/*
 * receipts_dsn: SMTP bounces, as an MTA hands them on (docs/receipts.md).
 *
 * A bounce is an RFC 5322 message that is an RFC 3464 delivery status
 * notification: multipart/report with a message/delivery-status part
 * (its per-recipient Action and Status) and, usually, the returned
 * message or its headers (message/rfc822, text/rfc822-headers).  The
 * delivery is named by the VERP address the bounce came back to (the
 * MTA's recipient, or its Delivered-To, X-Original-To or To header),
 * else by the returned message's Message-ID (common/mailkey).
 *
 *   Action failed, Status 5.x.x    bounced, permanent
 *   Action failed, Status 4.x.x    bounced, transient (else undetermined)
 *   delivered, relayed, expanded   delivered
 *   delayed                        ignored (status NULL)
 *
 * Pure logic: no I/O.
 */
#ifndef HERALD_RECEIPTS_DSN_H
#define HERALD_RECEIPTS_DSN_H

#include "receipts_parse.h"

#include <stddef.h>

#define RECEIPTS_DSN_MAX 16 /* recipients of one notification */

/*
 * Parses msg[0..len).  bounce is HERALD_EMAIL_BOUNCE_ADDRESS (NULL: no
 * VERP), recipient the address the MTA delivered the bounce to (NULL when
 * it did not say).  Fills out[0..*n), one receipt per recipient, each
 * with the key when one was found and the returned Message-ID as its
 * message id, receipt ids "<SHA-256 of msg>:<key>:<recipient>" so that
 * the same bounce piped twice is a duplicate.  -1, with err, when msg is
 * not a delivery status notification.
 */
int receipts_dsn(const char *msg, size_t len, const char *bounce, const char *recipient,
                 receipt *out, size_t max, size_t *n, char *err, size_t errlen)
    __attribute__((warn_unused_result));

#endif

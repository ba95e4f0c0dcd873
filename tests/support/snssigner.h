/*
 * snssigner: a stand-in for Amazon SNS in tests.  It makes an RSA key and
 * a self-signed certificate, writes the certificate as PEM (what
 * HERALD_SNS_CERT_FILE names) and signs SNS messages with it, version 1
 * (SHA1withRSA) or 2 (SHA256withRSA), over the canonical text as AWS
 * documents it, written here independently of the gateway's.
 */
#ifndef HERALD_SNSSIGNER_H
#define HERALD_SNSSIGNER_H

#include <stddef.h>

typedef struct snssigner snssigner;

/* A new key and certificate, the certificate written to cert_path.  NULL on failure. */
snssigner *snssigner_new(const char *cert_path);
void snssigner_free(snssigner *s);

/*
 * The JSON body of an SNS message (caller frees): type "Notification"
 * (message, subject may be NULL) or "SubscriptionConfirmation" (with
 * subscribe_url), signed with version 1 or 2.
 */
char *snssigner_message(const snssigner *s, int version, const char *type, const char *message_id,
                        const char *topic_arn, const char *subject, const char *message,
                        const char *subscribe_url);

#endif

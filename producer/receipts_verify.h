/*
 * receipts_verify: the signatures with which providers sign their
 * receipts (docs/receipts.md), on OpenSSL's libcrypto.
 *
 *   Twilio  X-Twilio-Signature: base64(HMAC-SHA1(auth token, the URL
 *           Twilio called, query included, then each POST parameter's
 *           name and value, sorted by name))
 *   SNS     Signature: base64 of an RSA signature (SignatureVersion 1:
 *           SHA1withRSA, 2: SHA256withRSA) over receipts_sns_string_to_sign,
 *           checked against the configured certificates, not the one the
 *           message points to
 *
 * The generic HTTP provider's Herald-Signature is common/hsig's.
 */
#ifndef HERALD_RECEIPTS_VERIFY_H
#define HERALD_RECEIPTS_VERIFY_H

#include "receipts_parse.h"

#include <stdbool.h>
#include <stddef.h>

#define RECEIPTS_TWILIO_SIG_SIZE 29 /* base64 of 20 bytes, and the NUL */

/* The signature Twilio sends for a POST of f to url, into out[RECEIPTS_TWILIO_SIG_SIZE]. */
int receipts_twilio_sign(const char *token, const char *url, const receipts_form *f, char *out,
                         size_t outlen) __attribute__((warn_unused_result));

/* Whether signature (the header's value; NULL: none) is that of f posted to url. */
bool receipts_twilio_verify(const char *token, const char *url, const receipts_form *f,
                            const char *signature);

/* The public keys of the PEM certificates SNS signs with. */
typedef struct receipts_sns_keys receipts_sns_keys;

/* Reads every certificate of the PEM file at path.  NULL, with err, when there is none. */
receipts_sns_keys *receipts_sns_keys_load(const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void receipts_sns_keys_free(receipts_sns_keys *k);

/* A config check (config_var.check): path is a readable PEM file of certificates. */
int receipts_sns_check_cert_file(const char *path, char *err, size_t errlen);

/* Whether m's Signature is one of keys' over its canonical text. */
bool receipts_sns_verify(const receipts_sns_keys *keys, const receipts_sns *m);

#endif

/* receipts_verify: see receipts_verify.h. */
#include "receipts_verify.h"

#include "buf.h"
#include "error.h"
#include "ids.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNS_KEYS_MAX 8

struct receipts_sns_keys {
    EVP_PKEY *keys[SNS_KEYS_MAX];
    size_t count;
};

/* ---- Twilio ---- */

static int by_name(const void *a, const void *b)
{
    const char *const *x = a, *const *y = b;
    int c = strcmp(x[0], y[0]);
    return c != 0 ? c : strcmp(x[1], y[1]);
}

int receipts_twilio_sign(const char *token, const char *url, const receipts_form *f, char *out,
                         size_t outlen)
{
    int rc = -1;
    buf text;
    buf_init(&text, 0);
    const char *pairs[RECEIPTS_FORM_MAX][2];
    for (size_t i = 0; i < f->count; i++) {
        pairs[i][0] = f->names[i];
        pairs[i][1] = f->values[i];
    }
    qsort(pairs, f->count, sizeof pairs[0], by_name);
    if (buf_append_str(&text, url) != 0)
        goto out;
    for (size_t i = 0; i < f->count; i++)
        if (buf_append_str(&text, pairs[i][0]) != 0 || buf_append_str(&text, pairs[i][1]) != 0)
            goto out;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)text.data, text.len, mac,
             &maclen) == NULL ||
        outlen < RECEIPTS_TWILIO_SIG_SIZE)
        goto out;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)maclen);
    rc = 0;
out:
    buf_free(&text);
    return rc;
}

bool receipts_twilio_verify(const char *token, const char *url, const receipts_form *f,
                            const char *signature)
{
    char want[RECEIPTS_TWILIO_SIG_SIZE];
    if (signature == NULL || strlen(signature) != RECEIPTS_TWILIO_SIG_SIZE - 1 ||
        receipts_twilio_sign(token, url, f, want, sizeof want) != 0)
        return false;
    return id_equal_ct(want, signature, RECEIPTS_TWILIO_SIG_SIZE - 1);
}

/* ---- SNS ---- */

receipts_sns_keys *receipts_sns_keys_load(const char *path, char *err, size_t errlen)
{
    receipts_sns_keys *k = calloc(1, sizeof *k);
    FILE *fp = fopen(path, "r");
    if (k == NULL || fp == NULL) {
        error_set(err, errlen, "cannot read %s", path);
        goto fail;
    }
    X509 *cert;
    while (k->count < SNS_KEYS_MAX && (cert = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL) {
        k->keys[k->count] = X509_get_pubkey(cert);
        X509_free(cert);
        if (k->keys[k->count] != NULL)
            k->count++;
    }
    if (k->count == 0) {
        error_set(err, errlen, "no PEM certificate in %s", path);
        goto fail;
    }
    fclose(fp);
    return k;
fail:
    if (fp != NULL)
        fclose(fp);
    receipts_sns_keys_free(k);
    return NULL;
}

void receipts_sns_keys_free(receipts_sns_keys *k)
{
    if (k == NULL)
        return;
    for (size_t i = 0; i < k->count; i++)
        EVP_PKEY_free(k->keys[i]);
    free(k);
}

int receipts_sns_check_cert_file(const char *path, char *err, size_t errlen)
{
    char why[256];
    receipts_sns_keys *k = receipts_sns_keys_load(path, why, sizeof why);
    if (k == NULL)
        return error_set(err, errlen, "expected a readable PEM certificate file (%s)", why);
    receipts_sns_keys_free(k);
    return 0;
}

static bool verify_with(EVP_PKEY *key, const EVP_MD *md, const unsigned char *sig, size_t siglen,
                        const buf *text)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
              EVP_DigestVerify(ctx, sig, siglen, (const unsigned char *)text->data, text->len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

bool receipts_sns_verify(const receipts_sns_keys *keys, const receipts_sns *m)
{
    bool ok = false;
    buf text;
    buf_init(&text, 0);
    size_t b64 = strlen(m->signature);
    unsigned char *sig = malloc(b64 / 4 * 3 + 3);
    if (keys == NULL || sig == NULL || b64 == 0 || b64 % 4 != 0 || b64 > 4096 ||
        receipts_sns_string_to_sign(m, &text) != 0)
        goto out;
    int n = EVP_DecodeBlock(sig, (const unsigned char *)m->signature, (int)b64);
    if (n < 0)
        goto out;
    /* EVP_DecodeBlock counts the padding's bytes too. */
    size_t len = (size_t)n;
    for (size_t i = b64; i > 0 && m->signature[i - 1] == '=' && len > 0; i--)
        len--;
    const EVP_MD *md = m->version == 2 ? EVP_sha256() : EVP_sha1();
    for (size_t i = 0; !ok && i < keys->count; i++)
        ok = verify_with(keys->keys[i], md, sig, len, &text);
out:
    free(sig);
    buf_free(&text);
    return ok;
}

/* snssigner: see snssigner.h. */
#include "snssigner.h"

#include <jansson.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct snssigner {
    EVP_PKEY *key;
};

snssigner *snssigner_new(const char *cert_path)
{
    snssigner *s = calloc(1, sizeof *s);
    X509 *x = X509_new();
    FILE *f = NULL;
    if (s == NULL || x == NULL)
        goto fail;
    s->key = EVP_RSA_gen(2048);
    if (s->key == NULL)
        goto fail;
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
    X509_set_pubkey(x, s->key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sns.test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, s->key, EVP_sha256()) == 0 || (f = fopen(cert_path, "w")) == NULL ||
        PEM_write_X509(f, x) != 1)
        goto fail;
    fclose(f);
    X509_free(x);
    return s;
fail:
    if (f != NULL)
        fclose(f);
    X509_free(x);
    snssigner_free(s);
    return NULL;
}

void snssigner_free(snssigner *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->key);
    free(s);
}

static void field(char *out, size_t outlen, const char *name, const char *value)
{
    size_t n = strlen(out);
    snprintf(out + n, outlen - n, "%s\n%s\n", name, value);
}

char *snssigner_message(const snssigner *s, int version, const char *type, const char *message_id,
                        const char *topic_arn, const char *subject, const char *message,
                        const char *subscribe_url)
{
    static const char ts[] = "2026-12-07T12:00:00.000Z", token[] = "tok-0123456789";
    bool notification = strcmp(type, "Notification") == 0;
    size_t cap = strlen(message) + 4096;
    char *text = calloc(1, cap), *out = NULL;
    unsigned char sig[512];
    char b64[1024];
    size_t siglen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (text == NULL || ctx == NULL)
        goto out;
    field(text, cap, "Message", message);
    field(text, cap, "MessageId", message_id);
    if (notification && subject != NULL)
        field(text, cap, "Subject", subject);
    if (!notification)
        field(text, cap, "SubscribeURL", subscribe_url);
    field(text, cap, "Timestamp", ts);
    if (!notification)
        field(text, cap, "Token", token);
    field(text, cap, "TopicArn", topic_arn);
    field(text, cap, "Type", type);
    if (EVP_DigestSignInit(ctx, NULL, version == 2 ? EVP_sha256() : EVP_sha1(), NULL, s->key) !=
            1 ||
        EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)text, strlen(text)) != 1)
        goto out;
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
    json_t *doc = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "Type", type, "MessageId",
                            message_id, "TopicArn", topic_arn, "Message", message, "Timestamp", ts,
                            "SignatureVersion", version == 2 ? "2" : "1", "Signature", b64,
                            "SigningCertURL", "https://sns.test/cert.pem");
    if (doc != NULL && subject != NULL && notification)
        json_object_set_new(doc, "Subject", json_string(subject));
    if (doc != NULL && !notification) {
        json_object_set_new(doc, "SubscribeURL", json_string(subscribe_url));
        json_object_set_new(doc, "Token", json_string(token));
    }
    out = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
out:
    EVP_MD_CTX_free(ctx);
    free(text);
    return out;
}

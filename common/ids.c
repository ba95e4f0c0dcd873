/*
 * ids: UUIDs v4/v5, random tokens, SHA-1 and SHA-256.
 *
 * The hash code favours clarity over speed: it hashes UUID names and API
 * keys of a few dozen bytes, never bulk data.
 */
#include "ids.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- SHA-1 and SHA-256 (FIPS 180-4) ---- */

static uint32_t rol32(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void store_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

typedef void (*block_fn)(uint32_t *state, const unsigned char block[64]);

/* Merkle–Damgård state shared by both hashes: whole blocks go to fn as they fill. */
typedef struct md_ctx {
    block_fn fn;
    uint32_t *state;
    unsigned char buf[64];
    size_t buflen;
    uint64_t total;
} md_ctx;

static void md_update(md_ctx *c, const void *data, size_t len)
{
    const unsigned char *p = data;
    c->total += len;
    while (len > 0) {
        size_t take = 64 - c->buflen < len ? 64 - c->buflen : len;
        memcpy(c->buf + c->buflen, p, take);
        c->buflen += take;
        p += take;
        len -= take;
        if (c->buflen == 64) {
            c->fn(c->state, c->buf);
            c->buflen = 0;
        }
    }
}

/* Padding: 0x80, zeros, then the message length in bits, big-endian, ending a block. */
static void md_final(md_ctx *c)
{
    uint64_t bits = c->total * 8;
    unsigned char pad[72] = {0x80};
    size_t padlen = (c->buflen < 56 ? 56 : 120) - c->buflen;
    for (int i = 0; i < 8; i++)
        pad[padlen + i] = (unsigned char)(bits >> (56 - 8 * i));
    md_update(c, pad, padlen + 8);
}

static void sha1_block(uint32_t *h, const unsigned char block[64])
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = rol32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);

    /* One loop per round function, no branch per round: v5 UUIDs are hashed per delivery. */
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], t;
#define SHA1_ROUND(f, k, i)                                                                        \
    do {                                                                                           \
        t = rol32(a, 5) + (f) + e + (k) + w[i];                                                    \
        e = d;                                                                                     \
        d = c;                                                                                     \
        c = rol32(b, 30);                                                                          \
        b = a;                                                                                     \
        a = t;                                                                                     \
    } while (0)
    for (int i = 0; i < 20; i++)
        SHA1_ROUND((b & c) | (~b & d), 0x5a827999u, i);
    for (int i = 20; i < 40; i++)
        SHA1_ROUND(b ^ c ^ d, 0x6ed9eba1u, i);
    for (int i = 40; i < 60; i++)
        SHA1_ROUND((b & c) | (b & d) | (c & d), 0x8f1bbcdcu, i);
    for (int i = 60; i < 80; i++)
        SHA1_ROUND(b ^ c ^ d, 0xca62c1d6u, i);
#undef SHA1_ROUND
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void id_sha1(const void *data, size_t len, unsigned char out[ID_SHA1_LEN])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    md_ctx c = {.fn = sha1_block, .state = h};
    md_update(&c, data, len);
    md_final(&c);
    for (int i = 0; i < 5; i++)
        store_be32(out + 4 * i, h[i]);
}

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t *h, const unsigned char block[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(block + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }

    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + s1 + ch + sha256_k[i] + w[i];
        uint32_t s0 = ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + maj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

void id_sha256(const void *data, size_t len, unsigned char out[ID_SHA256_LEN])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    md_ctx c = {.fn = sha256_block, .state = h};
    md_update(&c, data, len);
    md_final(&c);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, h[i]);
}

/* RFC 2104 over SHA-256: inner and outer hashes stream the padded key first. */
void id_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
                    unsigned char out[ID_SHA256_LEN])
{
    unsigned char k[64] = {0}, pad[64], inner[ID_SHA256_LEN];
    if (keylen > sizeof k)
        id_sha256(key, keylen, k);
    else if (keylen > 0)
        memcpy(k, key, keylen);
    for (int pass = 0; pass < 2; pass++) {
        uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        md_ctx c = {.fn = sha256_block, .state = h};
        for (size_t i = 0; i < sizeof pad; i++)
            pad[i] = k[i] ^ (pass == 0 ? 0x36 : 0x5c);
        md_update(&c, pad, sizeof pad);
        if (pass == 0)
            md_update(&c, data, len);
        else
            md_update(&c, inner, sizeof inner);
        md_final(&c);
        for (int i = 0; i < 8; i++)
            store_be32((pass == 0 ? inner : out) + 4 * i, h[i]);
    }
    memset(k, 0, sizeof k);
    memset(pad, 0, sizeof pad);
}

bool id_equal_ct(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

/* ---- base64url ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int id_base64url_encode(const void *data, size_t n, char *out, size_t outlen)
{
    const unsigned char *raw = data;
    size_t need = (n * 4 + 2) / 3;
    if (out == NULL || outlen < need + 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)raw[i + 1] << 8;
        if (i + 2 < n)
            v |= raw[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return 0;
}

static int b64url_value(char c)
{
    const char *p = c != '\0' ? strchr(b64url, c) : NULL;
    return p != NULL ? (int)(p - b64url) : -1;
}

int id_base64url_decode(const char *s, size_t len, void *out, size_t outlen, size_t *n)
{
    unsigned char *o = out;
    size_t k = 0;
    /* One leftover character carries 6 bits, less than a byte: never valid. */
    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        size_t chunk = len - i < 4 ? len - i : 4;
        uint32_t v = 0;
        for (size_t j = 0; j < 4; j++) {
            int d = j < chunk ? b64url_value(s[i + j]) : 0;
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        size_t bytes = chunk - 1;
        if (k + bytes > outlen)
            return -1;
        /* Unused low bits must be zero: one text per byte string. */
        if ((bytes == 1 && (v & 0xffff) != 0) || (bytes == 2 && (v & 0xff) != 0))
            return -1;
        for (size_t j = 0; j < bytes; j++)
            o[k++] = (unsigned char)(v >> (16 - 8 * j));
    }
    *n = k;
    return 0;
}

/* ---- randomness and identifiers ---- */

static ssize_t urandom_read(void *buf, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (unsigned char *)buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int saved = errno;
            close(fd);
            errno = r == 0 ? EIO : saved;
            return -1;
        }
        done += (size_t)r;
    }
    close(fd);
    return (ssize_t)done;
}

int id_random_bytes(void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = getrandom((unsigned char *)buf + done, n - done, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ENOSYS)
            return urandom_read((unsigned char *)buf + done, n - done) < 0 ? -1 : 0;
        if (r < 0)
            return -1;
        done += (size_t)r;
    }
    return 0;
}

char *id_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * n] = '\0';
    return out;
}

static void uuid_format(const unsigned char b[16], char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 0xf];
    }
    out[o] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int id_hex_digit(char c)
{
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return hex_value(c);
}

int id_url_decode(const char *s, size_t n, bool plus, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < n ? id_hex_digit(s[i + 1]) : -1;
            int lo = hi >= 0 ? id_hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= outlen)
            return -1;
        out[o++] = c;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return 0;
}

bool id_is_uuid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < ID_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (hex_value(s[i]) < 0) {
            return false;
        }
    }
    return s[ID_UUID_LEN] == '\0';
}

static int uuid_parse(const char *s, unsigned char b[16])
{
    if (!id_is_uuid(s))
        return -1;
    int n = 0;
    for (int i = 0; i < ID_UUID_LEN; i += 2) {
        if (s[i] == '-')
            i++;
        b[n++] = (unsigned char)(hex_value(s[i]) << 4 | hex_value(s[i + 1]));
    }
    return 0;
}

static void uuid_set_version(unsigned char b[16], int version)
{
    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

void id_uuid_v4_from(const unsigned char random[16], char *out)
{
    unsigned char b[16];
    memcpy(b, random, sizeof b);
    uuid_set_version(b, 4);
    uuid_format(b, out);
}

int id_uuid_v4(char *out)
{
    unsigned char b[16];
    if (id_random_bytes(b, sizeof b) != 0)
        return -1;
    id_uuid_v4_from(b, out);
    return 0;
}

int id_uuid_v5(const char *namespace_uuid, const void *name, size_t namelen, char *out)
{
    /*
     * The namespace is nearly always the same one: keep it parsed (per
     * thread) rather than parse it again for every name.
     */
    static _Thread_local char ns_text[ID_UUID_SIZE];
    static _Thread_local unsigned char ns_bytes[16];
    unsigned char ns[16];
    if (namespace_uuid != NULL && ns_text[0] != '\0' &&
        strncmp(ns_text, namespace_uuid, sizeof ns_text) == 0) {
        memcpy(ns, ns_bytes, sizeof ns);
    } else {
        if (uuid_parse(namespace_uuid, ns) != 0)
            return -1;
        memcpy(ns_text, namespace_uuid, sizeof ns_text);
        memcpy(ns_bytes, ns, sizeof ns_bytes);
    }

    /* RFC 4122 4.3: SHA-1 over the namespace's 16 bytes followed by the name. */
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    md_ctx c = {.fn = sha1_block, .state = h};
    md_update(&c, ns, sizeof ns);
    md_update(&c, name, namelen);
    md_final(&c);
    unsigned char digest[ID_SHA1_LEN];
    for (int i = 0; i < 5; i++)
        store_be32(digest + 4 * i, h[i]);
    uuid_set_version(digest, 5);
    uuid_format(digest, out);
    return 0;
}

int id_random_token(char *out, size_t outlen, size_t nbytes)
{
    unsigned char raw[256];
    size_t need = (nbytes * 4 + 2) / 3;
    if (out == NULL || nbytes == 0 || nbytes > sizeof raw || outlen < need + 1)
        return -1;
    if (id_random_bytes(raw, nbytes) != 0)
        return -1;
    int rc = id_base64url_encode(raw, nbytes, out, outlen);
    memset(raw, 0, sizeof raw);
    return rc;
}

char *id_sha256_hex(const void *data, size_t len, char *out)
{
    unsigned char digest[ID_SHA256_LEN];
    id_sha256(data, len, digest);
    return id_hex(digest, sizeof digest, out);
}

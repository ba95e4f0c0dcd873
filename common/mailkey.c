/* mailkey: see mailkey.h. */
#include "mailkey.h"

#include "error.h"
#include "validate.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* s[0..*n) without blanks around it and one pair of angle brackets. */
static const char *trim(const char *s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)s[0])) {
        s++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)s[*n - 1]))
        (*n)--;
    if (*n >= 2 && s[0] == '<' && s[*n - 1] == '>') {
        s++;
        *n -= 2;
    }
    return s;
}

/* Copies s[0..n) into key when it is a canonical UUID (Herald writes them lowercase). */
static int take_key(const char *s, size_t n, char key[ID_UUID_SIZE])
{
    char k[ID_UUID_SIZE];
    if (n != ID_UUID_LEN)
        return -1;
    for (size_t i = 0; i < n; i++)
        k[i] = (char)tolower((unsigned char)s[i]);
    k[n] = '\0';
    if (!id_is_uuid(k))
        return -1;
    memcpy(key, k, ID_UUID_SIZE);
    return 0;
}

int mailkey_from_message_id(const char *s, size_t n, char key[ID_UUID_SIZE])
{
    static const char dom[] = "@" MAILKEY_MESSAGE_ID_DOMAIN;
    const size_t dl = sizeof dom - 1;
    s = trim(s, &n);
    if (n <= dl || strncasecmp(s + n - dl, dom, dl) != 0)
        return -1;
    return take_key(s, n - dl, key);
}

/* Splits LOCAL@DOMAIN at its last '@'; NULL when either side is empty. */
static const char *at_sign(const char *s, size_t n)
{
    const char *at = NULL;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@')
            at = s + i;
    if (at == NULL || at == s || at == s + n - 1)
        return NULL;
    return at;
}

int mailkey_check_bounce_address(const char *value, char *err, size_t errlen)
{
    char why[160] = "";
    size_t n = strlen(value);
    const char *at = at_sign(value, n);
    if (validate_email(value, n, why, sizeof why) != 0 || at == NULL)
        return error_set(err, errlen, "expected LOCAL@DOMAIN: %s", why);
    /* LOCAL+<uuid> must stay within the 64 bytes of a local part. */
    if ((size_t)(at - value) + 1 + ID_UUID_LEN > MAILKEY_LOCAL_MAX)
        return error_set(err, errlen,
                         "expected a local part of at most %d bytes (a + and a "
                         "%d-character key are added to it)",
                         MAILKEY_LOCAL_MAX - 1 - ID_UUID_LEN, ID_UUID_LEN);
    return 0;
}

int mailkey_verp_address(const char *bounce, const char *key, char *out, size_t outlen)
{
    const char *at = at_sign(bounce, strlen(bounce));
    if (at == NULL)
        return -1;
    int w = snprintf(out, outlen, "%.*s+%s%s", (int)(at - bounce), bounce, key, at);
    return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

int mailkey_from_verp(const char *bounce, const char *addr, size_t n, char key[ID_UUID_SIZE])
{
    const char *bat = at_sign(bounce, strlen(bounce));
    if (bat == NULL)
        return -1;
    size_t local = (size_t)(bat - bounce), domain = strlen(bat);
    addr = trim(addr, &n);
    if (n > 7 && strncasecmp(addr, "rfc822;", 7) == 0) {
        addr += 7;
        n -= 7;
        addr = trim(addr, &n);
    }
    /* LOCAL "+" key "@DOMAIN" */
    if (n != local + 1 + ID_UUID_LEN + domain || strncasecmp(addr, bounce, local) != 0 ||
        addr[local] != '+' || strncasecmp(addr + n - domain, bat, domain) != 0)
        return -1;
    return take_key(addr + local + 1, ID_UUID_LEN, key);
}

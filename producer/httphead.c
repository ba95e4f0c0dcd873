/*
 * httphead: request-head checks in front of libmicrohttpd (see httphead.h).
 */
#include "httphead.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void httphead_init(httphead *h)
{
    memset(h, 0, sizeof *h);
}

/* RFC 9110 5.6.2 tchar. */
static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool valid_length(const char *v)
{
    size_t n = 0;
    for (; v[n] != '\0'; n++)
        if (v[n] < '0' || v[n] > '9')
            return false;
    return n > 0 && n <= 18;
}

/* Only "chunked" alone is understood: any other coding, or chunked that is
 * not the final one, leaves the body's length unknown. */
static bool valid_coding(const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n == 7 && strncasecmp(v, "chunked", 7) == 0;
}

void httphead_field(httphead *h, const char *name, const char *value)
{
    if (name == NULL)
        return;
    if (value == NULL)
        value = "";
    bool name_ok = name[0] != '\0';
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        if (!is_tchar(*p))
            name_ok = false;
    if (!name_ok && h->bad_field == NULL)
        h->bad_field = name;
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            if (h->folded == NULL)
                h->folded = name;
            break;
        }
    if (strcasecmp(name, "Content-Length") == 0) {
        h->content_lengths++;
        if (!valid_length(value))
            h->bad_length = true;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        h->transfer_encodings++;
        if (!valid_coding(value))
            h->bad_coding = true;
    } else if (strcasecmp(name, "Authorization") == 0) {
        h->authorizations++;
    }
}

int httphead_finish(const httphead *h, char *msg, size_t msglen, const char **field)
{
    *field = NULL;
    const char *m = NULL;
    if (h->bad_field != NULL) {
        m = "a header field name holds a character outside a token (whitespace before the "
            "colon?)";
    } else if (h->folded != NULL) {
        m = "a header value holds a control character (obsolete line folding is not accepted)";
        *field = h->folded;
    } else if (h->content_lengths > 1) {
        m = "Content-Length is given more than once";
        *field = "Content-Length";
    } else if (h->bad_length) {
        m = "Content-Length must be a decimal number of at most 18 digits";
        *field = "Content-Length";
    } else if (h->transfer_encodings > 0 && h->content_lengths > 0) {
        m = "Transfer-Encoding and Content-Length must not both be given";
        *field = "Transfer-Encoding";
    } else if (h->transfer_encodings > 1 || h->bad_coding) {
        m = "the only Transfer-Encoding accepted is chunked, alone";
        *field = "Transfer-Encoding";
    } else if (h->authorizations > 1) {
        m = "Authorization is given more than once";
        *field = "Authorization";
    }
    if (m == NULL)
        return 0;
    snprintf(msg, msglen, "%s", m);
    return -1;
}

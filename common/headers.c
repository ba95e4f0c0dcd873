/*
 * headers: see headers.h.
 */
#include "headers.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

int kafka_header_add_str(rd_kafka_headers_t *hdrs, const char *name, const char *value)
{
    if (hdrs == NULL || name == NULL)
        return -1;
    return rd_kafka_header_add(hdrs, name, -1, value, value != NULL ? -1 : 0) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR
               ? 0
               : -1;
}

int kafka_header_add_int64(rd_kafka_headers_t *hdrs, const char *name, int64_t value)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, value);
    return kafka_header_add_str(hdrs, name, buf);
}

bool hdr_has(const rd_kafka_headers_t *hdrs, const char *name)
{
    const void *v;
    size_t n;
    return hdrs != NULL && name != NULL &&
           rd_kafka_header_get_last(hdrs, name, &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

int hdr_get(const rd_kafka_headers_t *hdrs, const char *name, char *buf, size_t buflen)
{
    const void *val = NULL;
    size_t size = 0;

    if (buf != NULL && buflen > 0)
        buf[0] = '\0';
    if (hdrs == NULL || name == NULL)
        return -1;
    /* The last one: a re-produced message may carry an updated copy. */
    if (rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    if (val == NULL)
        size = 0;
    if (buf == NULL || buflen == 0)
        return -2;
    if (size >= buflen || size > INT_MAX) {
        memcpy(buf, val, buflen - 1);
        buf[buflen - 1] = '\0';
        return -2;
    }
    if (size > 0)
        memcpy(buf, val, size);
    buf[size] = '\0';
    return (int)size;
}

int hdr_get_int64(const rd_kafka_headers_t *hdrs, const char *name, int64_t *out)
{
    char buf[32];
    if (hdr_get(hdrs, name, buf, sizeof(buf)) <= 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

rd_kafka_headers_t *kafka_message_headers(rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (msg == NULL || rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return hdrs;
}

int kafka_header_get(rd_kafka_message_t *msg, const char *name, char *buf, size_t buflen)
{
    return hdr_get(kafka_message_headers(msg), name, buf, buflen);
}

int kafka_header_get_int64(rd_kafka_message_t *msg, const char *name, int64_t *out)
{
    return hdr_get_int64(kafka_message_headers(msg), name, out);
}

rd_kafka_headers_t *kafka_headers_copy(rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = kafka_message_headers(msg);
    if (hdrs == NULL)
        return rd_kafka_headers_new(8);
    return rd_kafka_headers_copy(hdrs);
}

rd_kafka_headers_t *hdr_copy_filtered(const rd_kafka_headers_t *hdrs, size_t extra,
                                      bool (*drop)(const char *name, void *arg), void *arg)
{
    rd_kafka_headers_t *out = rd_kafka_headers_new((hdrs ? rd_kafka_header_cnt(hdrs) : 0) + extra);
    const char *name;
    const void *val;
    size_t size;
    for (size_t i = 0;
         hdrs && rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (drop != NULL && drop(name, arg))
            continue;
        rd_kafka_header_add(out, name, -1, val, (ssize_t)size);
    }
    return out;
}

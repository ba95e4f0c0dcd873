/*
 * dlq: see dlq.h.
 */
#include "dlq.h"

#include <stdbool.h>

#include "timeutil.h"

/* Drops the failure headers and, unless *keep_original, herald.original.*. */
static bool drop_failure(const char *name, void *arg)
{
    const bool *keep_original = arg;
    return hdr_is_failure(name) || (!*keep_original && hdr_has_prefix(name, HDR_ORIGINAL_PREFIX));
}

static rd_kafka_headers_t *copy_without(const rd_kafka_headers_t *hdrs, bool keep_original)
{
    return hdr_copy_filtered(hdrs, 12, drop_failure, &keep_original);
}

static int add_original(rd_kafka_headers_t *h, const dlq_origin *o)
{
    int rc = 0;
    rc |= kafka_header_add_str(h, HDR_ORIGINAL_TOPIC, o->topic);
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_PARTITION, o->partition);
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_OFFSET, o->offset);
    rc |= kafka_header_add_int64(h, HDR_ORIGINAL_TIMESTAMP, o->timestamp_ms);
    return rc;
}

rd_kafka_headers_t *dlq_headers(const rd_kafka_headers_t *hdrs, const char *reason,
                                const char *error, const char *stage, const dlq_origin *o,
                                int attempts, int64_t failed_at_ms)
{
    bool have_orig = hdr_has(hdrs, HDR_ORIGINAL_TOPIC);
    rd_kafka_headers_t *h = copy_without(hdrs, have_orig);
    if (h == NULL)
        return NULL;
    char ts[TIMEUTIL_RFC3339_SIZE];
    int rc = 0;
    rc |= kafka_header_add_str(h, HDR_DLQ_REASON, reason);
    rc |= kafka_header_add_str(h, HDR_DLQ_ERROR, error ? error : "");
    rc |= kafka_header_add_str(h, HDR_DLQ_STAGE, stage);
    if (!have_orig)
        rc |= add_original(h, o);
    rc |= kafka_header_add_int64(h, HDR_ATTEMPTS, attempts);
    rc |= kafka_header_add_str(h, HDR_FAILED_AT,
                               timeutil_format_rfc3339(failed_at_ms, ts, sizeof ts));
    if (rc != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

rd_kafka_headers_t *dlq_retry_headers(const rd_kafka_headers_t *hdrs, const dlq_origin *o,
                                      int attempts, int64_t not_before_ms)
{
    bool have_orig = hdr_has(hdrs, HDR_ORIGINAL_TOPIC);
    rd_kafka_headers_t *h = copy_without(hdrs, have_orig);
    if (h == NULL)
        return NULL;
    int rc = 0;
    if (!have_orig)
        rc |= add_original(h, o);
    rc |= kafka_header_add_int64(h, HDR_RETRY_ATTEMPTS, attempts);
    rc |= kafka_header_add_int64(h, HDR_RETRY_NOT_BEFORE, not_before_ms);
    if (rc != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/*
 * webhook_call: see webhook_call.h.
 */
#include "webhook_call.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "headers.h"
#include "ids.h"

const char *const webhook_types[] = {
    "delivery.sent",       "delivery.delivered",   "delivery.bounced",
    "delivery.complained", "delivery.undelivered", "delivery.suppressed",
    "inbox.read",          "inbox.seen",           NULL,
};

bool webhook_type_valid(const char *s)
{
    for (size_t i = 0; s != NULL && webhook_types[i] != NULL; i++)
        if (strcmp(s, webhook_types[i]) == 0)
            return true;
    return false;
}

const char *webhook_type_of_status(const char *status)
{
    static const struct {
        const char *status, *type;
    } map[] = {
        {"sent", "delivery.sent"},
        {"delivered", "delivery.delivered"},
        {"undelivered", "delivery.undelivered"},
        {"failed", "delivery.undelivered"},
        {"bounced", "delivery.bounced"},
        {"complained", "delivery.complained"},
        {"suppressed", "delivery.suppressed"},
    };
    for (size_t i = 0; status != NULL && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(status, map[i].status) == 0)
            return map[i].type;
    return NULL;
}

const char *webhook_type_of_inbox(const char *change)
{
    if (change != NULL && strcmp(change, "read") == 0)
        return "inbox.read";
    if (change != NULL && strcmp(change, "seen") == 0)
        return "inbox.seen";
    return NULL;
}

int webhook_call_id(const char *source, int64_t row_id, const char *endpoint_id, char *out)
{
    char name[192];
    int n = snprintf(name, sizeof name, "webhook:%s:%" PRId64 ":%s", source, row_id, endpoint_id);
    if (n < 0 || (size_t)n >= sizeof name)
        return -1;
    return id_uuid_v5(ID_NAMESPACE_HERALD, name, (size_t)n, out);
}

int webhook_call_body(buf *b, const char *id, const char *type, const char *created_at,
                      const char *data_json)
{
    /* id, type and created_at are UUID, type-name and RFC 3339 characters
     * only: nothing in them needs escaping. */
    return buf_printf(b, "{\"id\":\"%s\",\"type\":\"%s\",\"created_at\":\"%s\",\"data\":%s}", id,
                      type, created_at, data_json);
}

rd_kafka_headers_t *webhook_call_headers(const char *id, const char *type)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);
    if (h == NULL)
        return NULL;
    if (kafka_header_add_str(h, HDR_WEBHOOK_ID, id) != 0 ||
        kafka_header_add_str(h, HDR_WEBHOOK_TYPE, type) != 0) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/*
 * wire: event records, ids and timestamps for the publish path.
 *
 * The member order below is event_to_json()'s; test_gateway_publish reads
 * the records back from Kafka, and the dispatcher parses them with
 * event_parse(), so a drift would show there.
 */
#include "wire.h"

#include "ids.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Big enough for the data of a typical event, so one dump suffices. */
#define WIRE_DATA_STACK 2048
/* Random bytes fetched per getrandom(2): 16 ids. */
#define WIRE_POOL_SIZE 256

/* ------------------------------------------------------------- records */

/* Bytes s takes as a JSON string body, or -1 when it is not printable ASCII. */
static long escaped_len(const char *s)
{
    long n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 0x20 || *p > 0x7e)
            return -1;
        n += (*p == '"' || *p == '\\') ? 2 : 1;
    }
    return n;
}

typedef struct out_buf {
    char *p;
    size_t len;
} out_buf;

static void put_raw(out_buf *o, const char *s, size_t n)
{
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

#define PUT_LIT(o, lit) put_raw((o), (lit), sizeof(lit) - 1)

static void put_escaped(out_buf *o, const char *s)
{
    for (const char *c = s; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\')
            o->p[o->len++] = '\\';
        o->p[o->len++] = *c;
    }
}

/* ,"name":"value" (no comma when first). */
static void put_member(out_buf *o, const char *name, const char *value, bool first)
{
    if (!first)
        o->p[o->len++] = ',';
    o->p[o->len++] = '"';
    put_raw(o, name, strlen(name));
    PUT_LIT(o, "\":\"");
    put_escaped(o, value);
    o->p[o->len++] = '"';
}

int wire_event(const event *ev, char **out, size_t *outlen)
{
    char stack[WIRE_DATA_STACK], ts[TIMEUTIL_RFC3339_SIZE];
    char *heap = NULL, *buf = NULL;
    const char *data = "{}";
    size_t dlen = 2;
    int rc = -1;

    *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    /* The fields only Herald's own producers set take the general path. */
    if (ev->broadcast_id[0] != '\0' || ev->generation != 0 || ev->type == NULL ||
        (ev->user_id == NULL) == (ev->topic == NULL))
        return event_serialize(ev, out, outlen);

    const char *strs[] = {ev->event_id,
                          ev->type,
                          ev->user_id != NULL ? ev->user_id : ev->topic,
                          event_priority_name(ev->priority),
                          ev->category,
                          ev->idempotency_key};
    size_t need = 0;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (strs[i] == NULL)
            continue;
        long n = escaped_len(strs[i]);
        if (n < 0)
            return event_serialize(ev, out, outlen);
        need += (size_t)n;
    }
    if (ev->data != NULL) {
        dlen = json_dumpb(ev->data, stack, sizeof stack, JSON_COMPACT);
        if (dlen == 0)
            goto out; /* not UTF-8, or no memory: as event_serialize() fails */
        if (dlen > sizeof stack) {
            if ((heap = malloc(dlen)) == NULL ||
                json_dumpb(ev->data, heap, dlen, JSON_COMPACT) != dlen)
                goto out;
            data = heap;
        } else {
            data = stack;
        }
    }
    wire_rfc3339(ev->created_at, ts, sizeof ts);
    /* Member names, quotes, separators and "generation":0 fit in 160 bytes. */
    need += dlen + strlen(ts) + 160;
    if ((buf = malloc(need + 1)) == NULL)
        goto out;

    out_buf o = {buf, 0};
    o.p[o.len++] = '{';
    put_member(&o, "event_id", ev->event_id, true);
    put_member(&o, "type", ev->type, false);
    if (ev->user_id != NULL)
        put_member(&o, "user_id", ev->user_id, false);
    else
        put_member(&o, "topic", ev->topic, false);
    PUT_LIT(&o, ",\"data\":");
    put_raw(&o, data, dlen);
    put_member(&o, "priority", event_priority_name(ev->priority), false);
    if (ev->category != NULL)
        put_member(&o, "category", ev->category, false);
    put_member(&o, "created_at", ts, false);
    if (ev->idempotency_key != NULL)
        put_member(&o, "idempotency_key", ev->idempotency_key, false);
    PUT_LIT(&o, ",\"generation\":0}");
    o.p[o.len] = '\0';

    *out = buf;
    buf = NULL;
    if (outlen != NULL)
        *outlen = o.len;
    rc = 0;
out:
    free(heap);
    free(buf);
    return rc;
}

size_t wire_accepted(const char *event_id, char *out)
{
    out_buf o = {out, 0};
    PUT_LIT(&o, "{\"event_id\":\"");
    put_raw(&o, event_id, strnlen(event_id, ID_UUID_LEN));
    PUT_LIT(&o, "\"}");
    o.p[o.len] = '\0';
    return o.len;
}

/* ------------------------------------------------------------------ ids */

/* Bumped in a forked child, so it never hands out its parent's bytes. */
static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void register_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static _Thread_local struct {
    unsigned char bytes[WIRE_POOL_SIZE];
    size_t used; /* WIRE_POOL_SIZE when empty */
    unsigned generation;
    bool init;
} pool;

int wire_event_id(char out[ID_UUID_SIZE])
{
    static const char digits[] = "0123456789abcdef";
    unsigned gen = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    if (!pool.init || pool.generation != gen) {
        pthread_once(&fork_once, register_fork_handler);
        pool.init = true;
        pool.generation = atomic_load(&fork_generation);
        pool.used = WIRE_POOL_SIZE;
    }
    if (pool.used + 16 > WIRE_POOL_SIZE) {
        if (id_random_bytes(pool.bytes, sizeof pool.bytes) != 0)
            return -1;
        pool.used = 0;
    }
    unsigned char b[16];
    memcpy(b, pool.bytes + pool.used, sizeof b);
    pool.used += sizeof b;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 0xf];
    }
    out[o] = '\0';
    return 0;
}

/* ---------------------------------------------------------- timestamps */

static _Thread_local struct {
    int64_t second; /* ms / 1000 of the cached text; INT64_MIN when none */
    char text[TIMEUTIL_RFC3339_SIZE];
    size_t len;
    bool init;
} clock_cache;

char *wire_rfc3339(int64_t ms, char *out, size_t outlen)
{
    if (ms < 0 || outlen < TIMEUTIL_RFC3339_SIZE)
        return timeutil_format_rfc3339(ms, out, outlen);
    int64_t second = ms / 1000;
    if (!clock_cache.init || clock_cache.second != second) {
        timeutil_format_rfc3339(second * 1000, clock_cache.text, sizeof clock_cache.text);
        clock_cache.len = strlen(clock_cache.text);
        clock_cache.second = second;
        clock_cache.init = true;
    }
    /* "...:SS.mmmZ": only the milliseconds differ within the second. */
    memcpy(out, clock_cache.text, clock_cache.len + 1);
    int milli = (int)(ms % 1000);
    if (clock_cache.len >= 4) {
        out[clock_cache.len - 4] = (char)('0' + milli / 100);
        out[clock_cache.len - 3] = (char)('0' + milli / 10 % 10);
        out[clock_cache.len - 2] = (char)('0' + milli % 10);
    }
    return out;
}

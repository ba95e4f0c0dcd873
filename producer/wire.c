/*
 * wire: event records, ids and timestamps for the publish path.
 *
 * The record itself is common/event.c's (event_serialize_at()); this only
 * hands it the cached timestamp.
 */
#include "wire.h"

#include "ids.h"
#include "timeutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Random bytes fetched per getrandom(2): 16 ids. */
#define WIRE_POOL_SIZE 256

/* ------------------------------------------------------------- records */

int wire_event(const event *ev, char **out, size_t *outlen)
{
    char ts[TIMEUTIL_RFC3339_SIZE];
    return event_serialize_at(ev, wire_rfc3339(ev->created_at, ts, sizeof ts), out, outlen);
}

int wire_request_hash(const event *ev, unsigned char out[ID_SHA256_LEN])
{
    event bare = *ev; /* a shallow copy: only its id is changed */
    char *text = NULL;
    size_t len = 0;
    bare.event_id[0] = '\0';
    if (event_serialize_at(&bare, "", &text, &len) != 0)
        return -1;
    id_sha256(text, len, out);
    free(text);
    return 0;
}

size_t wire_accepted(const char *event_id, char *out)
{
    static const char head[] = "{\"event_id\":\"";
    size_t n = strnlen(event_id, ID_UUID_LEN), len = sizeof head - 1;
    memcpy(out, head, len);
    memcpy(out + len, event_id, n);
    len += n;
    memcpy(out + len, "\"}", 3); /* with the NUL */
    return len + 2;
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
    id_uuid_v4_from(pool.bytes + pool.used, out);
    pool.used += 16;
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

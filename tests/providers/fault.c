/*
 * fault: see fault.h.
 */
#include "fault.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Large enough for any test, small enough that a typo cannot wedge a run. */
#define FAULT_MAX_LATENCY_MS 600000L

typedef struct token_list {
    char **items; /* sorted, for bsearch on the push hot path */
    size_t count;
} token_list;

struct fault {
    fault_kind kind;
    pthread_mutex_t lock;
    pthread_cond_t released;
    fault_settings initial;
    fault_settings cur;
    token_list initial_dead;
    token_list dead;
    uint64_t rng;
};

void fault_settings_defaults(fault_kind kind, fault_settings *s)
{
    memset(s, 0, sizeof(*s));
    s->fail_status = kind == FAULT_HTTP ? 500 : 451;
    s->dead_status = 404;
    snprintf(s->fail_stage, sizeof(s->fail_stage), "data");
    snprintf(s->hang_stage, sizeof(s->hang_stage), "data");
}

static uint64_t fault_next_random(fault *f)
{
    /* splitmix64: good enough for fail_rate and jitter, no global state. */
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void token_list_free(token_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static int token_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int token_list_add(token_list *l, const char *tok, size_t len)
{
    char **ni = realloc(l->items, (l->count + 1) * sizeof(*ni));
    if (ni == NULL)
        return -1;
    l->items = ni;
    l->items[l->count] = strndup(tok, len);
    if (l->items[l->count] == NULL)
        return -1;
    l->count++;
    return 0;
}

static int token_list_copy(token_list *dst, const token_list *src)
{
    memset(dst, 0, sizeof(*dst));
    for (size_t i = 0; i < src->count; i++) {
        if (token_list_add(dst, src->items[i], strlen(src->items[i])) != 0) {
            token_list_free(dst);
            return -1;
        }
    }
    return 0;
}

static bool stage_valid(const char *s, bool greeting_ok)
{
    return strcmp(s, "rcpt") == 0 || strcmp(s, "data") == 0 ||
           (greeting_ok && strcmp(s, "greeting") == 0);
}

static int settings_check(fault_kind kind, const fault_settings *s, char *err, size_t errlen)
{
    if (s->latency_ms < 0 || s->latency_ms > FAULT_MAX_LATENCY_MS) {
        snprintf(err, errlen, "latency_ms: expected 0..%ld", FAULT_MAX_LATENCY_MS);
        return -1;
    }
    if (s->latency_jitter_ms < 0 || s->latency_jitter_ms > FAULT_MAX_LATENCY_MS) {
        snprintf(err, errlen, "latency_jitter_ms: expected 0..%ld", FAULT_MAX_LATENCY_MS);
        return -1;
    }
    if (s->fail_status < 400 || s->fail_status > 599) {
        snprintf(err, errlen, "fail_status: expected a 4xx or 5xx status, got %ld", s->fail_status);
        return -1;
    }
    if (s->fail_count < 0) {
        snprintf(err, errlen, "fail_count: expected >= 0");
        return -1;
    }
    if (!(s->fail_rate >= 0.0 && s->fail_rate <= 1.0)) {
        snprintf(err, errlen, "fail_rate: expected 0..1");
        return -1;
    }
    if (s->retry_after_s < 0 || s->retry_after_s > 86400) {
        snprintf(err, errlen, "retry_after: expected 0..86400 seconds");
        return -1;
    }
    if (kind == FAULT_HTTP && s->dead_status != 404 && s->dead_status != 410) {
        snprintf(err, errlen, "dead_status: expected 404 or 410");
        return -1;
    }
    if (kind == FAULT_SMTP && !stage_valid(s->fail_stage, false)) {
        snprintf(err, errlen, "fail_stage: expected \"rcpt\" or \"data\"");
        return -1;
    }
    if (kind == FAULT_SMTP && !stage_valid(s->hang_stage, true)) {
        snprintf(err, errlen, "hang_stage: expected \"greeting\", \"rcpt\" or \"data\"");
        return -1;
    }
    return 0;
}

fault *fault_new(fault_kind kind, const fault_settings *initial, const char *dead_tokens_csv,
                 char *err, size_t errlen)
{
    fault *ret = NULL;
    fault *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    f->kind = kind;
    pthread_mutex_init(&f->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->released, &ca);
    pthread_condattr_destroy(&ca);
    f->initial = *initial;
    f->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (settings_check(kind, initial, err, errlen) != 0)
        goto out;

    for (const char *p = dead_tokens_csv; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len > 0 && token_list_add(&f->initial_dead, p, len) != 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        p = comma != NULL ? comma + 1 : p + len;
    }
    if (f->initial_dead.count > 0)
        qsort(f->initial_dead.items, f->initial_dead.count, sizeof(char *), token_cmp);
    if (token_list_copy(&f->dead, &f->initial_dead) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    f->cur = f->initial;
    ret = f;
    f = NULL;

out:
    fault_free(f);
    return ret;
}

void fault_free(fault *f)
{
    if (f == NULL)
        return;
    token_list_free(&f->initial_dead);
    token_list_free(&f->dead);
    pthread_cond_destroy(&f->released);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Which fields a kind accepts: a field the server cannot honour is an
 * error rather than silently ignored. */
static bool field_known(fault_kind kind, const char *key)
{
    static const char *const common[] = {"reset",       "latency_ms", "latency_jitter_ms",
                                         "fail_status", "fail_count", "fail_rate",
                                         "hang",        NULL};
    static const char *const http[] = {"retry_after", "dead_tokens", "dead_status", "match", NULL};
    static const char *const smtp[] = {"fail_stage", "hang_stage", NULL};
    for (const char *const *k = common; *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return true;
    for (const char *const *k = kind == FAULT_HTTP ? http : smtp; *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return true;
    return false;
}

static int get_long(const json_t *v, const char *key, long *out, char *err, size_t errlen)
{
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "%s: expected an integer", key);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

static int get_string(const json_t *v, const char *key, char *out, size_t outlen, char *err,
                      size_t errlen)
{
    if (!json_is_string(v) || json_string_length(v) >= outlen) {
        snprintf(err, errlen, "%s: expected a string shorter than %zu bytes", key, outlen);
        return -1;
    }
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int fault_apply_json(fault *f, const json_t *req, bool *reset, char *err, size_t errlen)
{
    int rc = -1;
    token_list dead = {0};
    bool locked = false;
    bool have_dead = false;
    bool do_reset = false;
    const char *key;
    json_t *v;

    if (!json_is_object(req)) {
        snprintf(err, errlen, "expected a JSON object");
        goto out;
    }
    json_object_foreach((json_t *)req, key, v)
    {
        if (!field_known(f->kind, key)) {
            snprintf(err, errlen, "%s: unknown setting", key);
            goto out;
        }
    }
    v = json_object_get(req, "reset");
    if (v != NULL) {
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "reset: expected true or false");
            goto out;
        }
        do_reset = json_is_true(v);
    }

    /* Held to the commit, so a fail_count consumed meanwhile is not lost. */
    pthread_mutex_lock(&f->lock);
    locked = true;
    fault_settings s = do_reset ? f->initial : f->cur;

    json_object_foreach((json_t *)req, key, v)
    {
        int r = 0;
        if (strcmp(key, "latency_ms") == 0) {
            r = get_long(v, key, &s.latency_ms, err, errlen);
        } else if (strcmp(key, "latency_jitter_ms") == 0) {
            r = get_long(v, key, &s.latency_jitter_ms, err, errlen);
        } else if (strcmp(key, "fail_status") == 0) {
            r = get_long(v, key, &s.fail_status, err, errlen);
        } else if (strcmp(key, "fail_count") == 0) {
            r = get_long(v, key, &s.fail_count, err, errlen);
        } else if (strcmp(key, "retry_after") == 0) {
            r = get_long(v, key, &s.retry_after_s, err, errlen);
        } else if (strcmp(key, "dead_status") == 0) {
            r = get_long(v, key, &s.dead_status, err, errlen);
        } else if (strcmp(key, "fail_rate") == 0) {
            if (!json_is_number(v)) {
                snprintf(err, errlen, "fail_rate: expected a number");
                r = -1;
            } else {
                s.fail_rate = json_number_value(v);
            }
        } else if (strcmp(key, "hang") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, errlen, "hang: expected true or false");
                r = -1;
            } else {
                s.hang = json_is_true(v);
            }
        } else if (strcmp(key, "match") == 0) {
            r = get_string(v, key, s.match, sizeof(s.match), err, errlen);
        } else if (strcmp(key, "fail_stage") == 0) {
            r = get_string(v, key, s.fail_stage, sizeof(s.fail_stage), err, errlen);
        } else if (strcmp(key, "hang_stage") == 0) {
            r = get_string(v, key, s.hang_stage, sizeof(s.hang_stage), err, errlen);
        } else if (strcmp(key, "dead_tokens") == 0) {
            size_t i;
            json_t *t;
            if (!json_is_array(v)) {
                snprintf(err, errlen, "dead_tokens: expected an array of strings");
                goto out;
            }
            have_dead = true;
            json_array_foreach(v, i, t)
            {
                if (!json_is_string(t) || json_string_length(t) == 0) {
                    snprintf(err, errlen, "dead_tokens[%zu]: expected a non-empty string", i);
                    goto out;
                }
                if (token_list_add(&dead, json_string_value(t), json_string_length(t)) != 0) {
                    snprintf(err, errlen, "out of memory");
                    goto out;
                }
            }
        }
        if (r != 0)
            goto out;
    }
    if (settings_check(f->kind, &s, err, errlen) != 0)
        goto out;
    if (have_dead && dead.count > 0)
        qsort(dead.items, dead.count, sizeof(char *), token_cmp);
    if (do_reset && !have_dead && token_list_copy(&dead, &f->initial_dead) != 0) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    f->cur = s;
    if (have_dead || do_reset) {
        token_list old = f->dead;
        f->dead = dead;
        memset(&dead, 0, sizeof(dead));
        token_list_free(&old);
    }
    if (!s.hang)
        pthread_cond_broadcast(&f->released);
    if (reset != NULL)
        *reset = do_reset;
    rc = 0;

out:
    if (locked)
        pthread_mutex_unlock(&f->lock);
    token_list_free(&dead);
    return rc;
}

json_t *fault_to_json(fault *f)
{
    pthread_mutex_lock(&f->lock);
    fault_settings s = f->cur;
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:f, s:b}", "latency_ms", (json_int_t)s.latency_ms,
                          "latency_jitter_ms", (json_int_t)s.latency_jitter_ms, "fail_status",
                          (json_int_t)s.fail_status, "fail_count", (json_int_t)s.fail_count,
                          "fail_rate", s.fail_rate, "hang", (int)s.hang);
    if (o != NULL && f->kind == FAULT_HTTP) {
        json_t *dead = json_array();
        for (size_t i = 0; dead != NULL && i < f->dead.count; i++)
            json_array_append_new(dead, json_string(f->dead.items[i]));
        json_object_set_new(o, "retry_after", json_integer(s.retry_after_s));
        json_object_set_new(o, "dead_tokens", dead != NULL ? dead : json_null());
        json_object_set_new(o, "dead_status", json_integer(s.dead_status));
        json_object_set_new(o, "match", json_string(s.match));
    } else if (o != NULL) {
        json_object_set_new(o, "fail_stage", json_string(s.fail_stage));
        json_object_set_new(o, "hang_stage", json_string(s.hang_stage));
    }
    pthread_mutex_unlock(&f->lock);
    return o;
}

/* Caller holds f->lock. */
static bool in_scope(const fault *f, const char *scope, bool for_hang)
{
    if (f->kind == FAULT_HTTP)
        return strncmp(scope, f->cur.match, strlen(f->cur.match)) == 0;
    return strcmp(scope, for_hang ? f->cur.hang_stage : f->cur.fail_stage) == 0;
}

bool fault_hanging(fault *f, const char *scope)
{
    pthread_mutex_lock(&f->lock);
    bool h = f->cur.hang && in_scope(f, scope, true);
    pthread_mutex_unlock(&f->lock);
    return h;
}

bool fault_wait_released(fault *f, const char *scope, long timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->lock);
    while (f->cur.hang && in_scope(f, scope, true)) {
        if (pthread_cond_timedwait(&f->released, &f->lock, &deadline) != 0)
            break;
    }
    bool released = !(f->cur.hang && in_scope(f, scope, true));
    pthread_mutex_unlock(&f->lock);
    return released;
}

void fault_decide(fault *f, const char *scope, fault_decision *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->lock);
    const fault_settings *s = &f->cur;
    bool slow = f->kind == FAULT_HTTP ? in_scope(f, scope, false) : strcmp(scope, "data") == 0;
    if (slow) {
        out->delay_ms = s->latency_ms;
        if (s->latency_jitter_ms > 0)
            out->delay_ms += (long)(fault_next_random(f) % (uint64_t)(s->latency_jitter_ms + 1));
    }
    if (in_scope(f, scope, false)) {
        bool fail = false;
        if (f->cur.fail_count > 0) {
            f->cur.fail_count--;
            fail = true;
        } else if (s->fail_rate > 0.0) {
            double r = (double)(fault_next_random(f) >> 11) / 9007199254740992.0;
            fail = r < s->fail_rate;
        }
        if (fail) {
            out->status = (int)s->fail_status;
            out->retry_after_s = s->retry_after_s;
        }
    }
    pthread_mutex_unlock(&f->lock);
}

bool fault_token_dead(fault *f, const char *token, int *status)
{
    pthread_mutex_lock(&f->lock);
    bool dead = f->dead.count > 0 &&
                bsearch(&token, f->dead.items, f->dead.count, sizeof(char *), token_cmp) != NULL;
    *status = (int)f->cur.dead_status;
    pthread_mutex_unlock(&f->lock);
    return dead;
}

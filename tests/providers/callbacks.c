/*
 * callbacks: see callbacks.h.
 */
#include "callbacks.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "jtext.h"
#include "ptime.h"

#define CALLBACKS_MAX_STATUSES 8
/* What a record keeps of the receiver's answer. */
#define CALLBACKS_ANSWER_MAX 1024
/* The longest wait between two attempts, whatever retry_ms and the count. */
#define CALLBACKS_MAX_BACKOFF_MS 60000L

/* Twilio's MessageStatus values a message can be reported in. */
static const char *const status_names[] = {"accepted",    "queued", "sending", "sent", "delivered",
                                           "undelivered", "failed", "read",    NULL};

struct callbacks_job {
    atomic_int refs;
    char *url, *auth_token, *message_sid, *account_sid, *from, *to, *service_sid;
};

/* One callback to send, or to send again. */
typedef struct cb_item {
    int64_t due_ms; /* monotonic */
    uint64_t order; /* ties keep the order of submission */
    callbacks_job *job;
    int status; /* index into status_names */
    int attempt;
    bool repeat;    /* the injected second copy */
    bool reordered; /* of a message whose statuses were reversed */
} cb_item;

/*
 * One sending thread and the callbacks it owns.  A message's callbacks all
 * go to the shard its MessageSid hashes to, so one thread sends them, one
 * after the other in due order, as a single sender would.
 */
typedef struct cb_shard {
    callbacks *cb;
    pthread_t thread;
    bool started;
    CURL *easy;
    pthread_cond_t wake;
    cb_item *heap; /* min-heap on (due_ms, order) */
    size_t count, cap;
} cb_shard;

struct callbacks {
    pthread_mutex_t lock; /* everything below but the atomics, the shards' heaps too */
    record_log *log;
    callbacks_settings initial, cur;
    uint64_t rng;

    cb_shard *shards;
    long nshards;
    size_t count, max; /* waiting in all the shards; at most max */
    uint64_t next_order;
    uint64_t generation; /* bumped by a reset: attempts in flight are not retried */

    long sent, answered_2xx, failed, retried, given_up, dropped;

    atomic_bool stopping;
    _Atomic int64_t drain_deadline_ms; /* monotonic, once stopping */
};

/* ---- settings ---- */

void callbacks_settings_defaults(callbacks_settings *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->statuses, sizeof(s->statuses), "sent,delivered");
    s->error_code = 30003;
    s->retries = 3;
    s->retry_ms = 1000;
    s->timeout_ms = 5000;
}

/* Splits statuses into indexes of status_names; -1 with err on an unknown one. */
static int parse_statuses(const char *list, int *out, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        int found = -1;
        for (int i = 0; status_names[i] != NULL; i++)
            if (strlen(status_names[i]) == len && strncmp(status_names[i], p, len) == 0)
                found = i;
        if (found < 0) {
            snprintf(err, errlen,
                     "callback_statuses: \"%.*s\" is not a Twilio message status (accepted, "
                     "queued, sending, sent, delivered, undelivered, failed, read)",
                     (int)len, p);
            return -1;
        }
        if (*n == CALLBACKS_MAX_STATUSES) {
            snprintf(err, errlen, "callback_statuses: at most %d statuses", CALLBACKS_MAX_STATUSES);
            return -1;
        }
        out[(*n)++] = found;
        p = comma != NULL ? comma + 1 : p + len;
    }
    return 0;
}

static int settings_check(const callbacks_settings *s, char *err, size_t errlen)
{
    int idx[CALLBACKS_MAX_STATUSES];
    size_t n;
    if (parse_statuses(s->statuses, idx, &n, err, errlen) != 0)
        return -1;
    struct {
        const char *name;
        long v, min, max;
    } longs[] = {
        {"callback_error_code", s->error_code, 0, 99999},
        {"callback_delay_ms", s->delay_ms, 0, 600000},
        {"callback_duplicate_count", s->duplicate_count, 0, 1000000000},
        {"callback_reorder_count", s->reorder_count, 0, 1000000000},
        {"callback_retries", s->retries, 0, 10},
        {"callback_retry_ms", s->retry_ms, 1, 600000},
        {"callback_timeout_ms", s->timeout_ms, 1, 600000},
    };
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
        if (longs[i].v < longs[i].min || longs[i].v > longs[i].max) {
            snprintf(err, errlen, "%s: expected %ld..%ld", longs[i].name, longs[i].min,
                     longs[i].max);
            return -1;
        }
    }
    if (!(s->duplicate_rate >= 0.0 && s->duplicate_rate <= 1.0)) {
        snprintf(err, errlen, "callback_duplicate_rate: expected 0..1");
        return -1;
    }
    if (!(s->reorder_rate >= 0.0 && s->reorder_rate <= 1.0)) {
        snprintf(err, errlen, "callback_reorder_rate: expected 0..1");
        return -1;
    }
    return 0;
}

static uint64_t next_random(callbacks *cb)
{
    /* splitmix64, as fault does: enough for rates, no global state. */
    uint64_t z = (cb->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Consumes one of *count, else draws against rate.  Caller holds the lock. */
static bool decide(callbacks *cb, long *count, double rate)
{
    if (*count > 0) {
        (*count)--;
        return true;
    }
    return rate > 0.0 && (double)(next_random(cb) >> 11) / 9007199254740992.0 < rate;
}

/* ---- the queue ---- */

static bool item_before(const cb_item *a, const cb_item *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void item_swap(cb_item *a, cb_item *b)
{
    cb_item t = *a;
    *a = *b;
    *b = t;
}

/* Caller holds the lock; -1 when the queue (all shards together) is full. */
static int heap_push(callbacks *cb, cb_shard *sh, cb_item *it)
{
    if (cb->count >= cb->max)
        return -1;
    if (sh->count == sh->cap) {
        size_t ncap = sh->cap == 0 ? 256 : sh->cap * 2;
        cb_item *nh = realloc(sh->heap, ncap * sizeof(*nh));
        if (nh == NULL)
            return -1;
        sh->heap = nh;
        sh->cap = ncap;
    }
    it->order = cb->next_order++;
    cb->count++;
    size_t i = sh->count++;
    sh->heap[i] = *it;
    while (i > 0 && item_before(&sh->heap[i], &sh->heap[(i - 1) / 2])) {
        item_swap(&sh->heap[i], &sh->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    return 0;
}

/* Caller holds the lock; sh is not empty. */
static cb_item heap_pop(callbacks *cb, cb_shard *sh)
{
    cb_item top = sh->heap[0];
    cb->count--;
    sh->heap[0] = sh->heap[--sh->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sh->count && item_before(&sh->heap[l], &sh->heap[m]))
            m = l;
        if (r < sh->count && item_before(&sh->heap[r], &sh->heap[m]))
            m = r;
        if (m == i)
            break;
        item_swap(&sh->heap[m], &sh->heap[i]);
        i = m;
    }
    return top;
}

/* The shard of a message: a hash (FNV-1a, folded) of its MessageSid. */
static cb_shard *shard_of(callbacks *cb, const callbacks_job *job)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)job->message_sid; *p != '\0'; p++)
        h = (h ^ *p) * 0x100000001b3ull;
    h ^= h >> 32; /* the low bits alone mix poorly */
    return &cb->shards[h % (uint64_t)cb->nshards];
}

/* Caller holds the lock. */
static void wake_all(callbacks *cb)
{
    for (long i = 0; i < cb->nshards; i++)
        pthread_cond_signal(&cb->shards[i].wake);
}

/* ---- jobs ---- */

callbacks_job *callbacks_job_new(const callbacks_message *m)
{
    callbacks_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    atomic_init(&j->refs, 1);
    j->url = strdup(m->url);
    j->auth_token = strdup(m->auth_token != NULL ? m->auth_token : "");
    j->message_sid = strdup(m->message_sid);
    j->account_sid = strdup(m->account_sid);
    j->to = strdup(m->to);
    j->from = m->from != NULL ? strdup(m->from) : NULL;
    j->service_sid = m->messaging_service_sid != NULL ? strdup(m->messaging_service_sid) : NULL;
    if (j->url == NULL || j->auth_token == NULL || j->message_sid == NULL ||
        j->account_sid == NULL || j->to == NULL || (m->from != NULL && j->from == NULL) ||
        (m->messaging_service_sid != NULL && j->service_sid == NULL)) {
        callbacks_job_free(j);
        return NULL;
    }
    return j;
}

void callbacks_job_free(callbacks_job *job)
{
    if (job == NULL || atomic_fetch_sub(&job->refs, 1) > 1)
        return;
    free(job->url);
    free(job->auth_token);
    free(job->message_sid);
    free(job->account_sid);
    free(job->from);
    free(job->to);
    free(job->service_sid);
    free(job);
}

/* Caller holds the lock. */
static void queue_clear(callbacks *cb, bool count_dropped)
{
    if (count_dropped)
        cb->dropped += (long)cb->count;
    for (long s = 0; s < cb->nshards; s++) {
        cb_shard *sh = &cb->shards[s];
        for (size_t i = 0; i < sh->count; i++)
            callbacks_job_free(sh->heap[i].job);
        sh->count = 0;
    }
    cb->count = 0;
}

void callbacks_submit(callbacks *cb, callbacks_job **jobp)
{
    callbacks_job *job = *jobp;
    *jobp = NULL;
    int idx[CALLBACKS_MAX_STATUSES];
    size_t n = 0;
    char err[160];

    pthread_mutex_lock(&cb->lock);
    cb_shard *sh = shard_of(cb, job);
    if (parse_statuses(cb->cur.statuses, idx, &n, err, sizeof(err)) != 0)
        n = 0; /* cannot happen: checked when set */
    if (atomic_load(&cb->stopping)) {
        cb->dropped += (long)n;
        n = 0;
    }
    bool reorder = n > 1 && decide(cb, &cb->cur.reorder_count, cb->cur.reorder_rate);
    int64_t now = ptime_monotonic_ms();
    for (size_t i = 0; i < n; i++) {
        cb_item it = {.due_ms = now + (int64_t)(i + 1) * cb->cur.delay_ms,
                      .job = job,
                      .status = idx[reorder ? n - 1 - i : i],
                      .attempt = 1,
                      .reordered = reorder};
        bool twice = decide(cb, &cb->cur.duplicate_count, cb->cur.duplicate_rate);
        for (int copy = 0; copy < (twice ? 2 : 1); copy++) {
            it.repeat = copy == 1;
            if (heap_push(cb, sh, &it) != 0) {
                cb->dropped++;
                continue;
            }
            atomic_fetch_add(&job->refs, 1);
        }
    }
    pthread_cond_signal(&sh->wake);
    pthread_mutex_unlock(&cb->lock);
    callbacks_job_free(job);
}

/* ---- one attempt ---- */

typedef struct cb_param {
    const char *name;
    const char *value;
} cb_param;

static int param_cmp(const void *a, const void *b)
{
    return strcmp(((const cb_param *)a)->name, ((const cb_param *)b)->name);
}

static const char *error_message(long code)
{
    switch (code) {
    case 30001:
        return "Queue overflow";
    case 30002:
        return "Account suspended";
    case 30003:
        return "Unreachable destination handset";
    case 30004:
        return "Message blocked";
    case 30005:
        return "Unknown destination handset";
    case 30006:
        return "Landline or unreachable carrier";
    case 30007:
        return "Message filtered";
    default:
        return "Unknown error";
    }
}

/* The parameters of one callback, sorted by name as the signature needs. */
static size_t callback_params(const cb_item *it, const char *error_code, cb_param *p)
{
    const callbacks_job *j = it->job;
    const char *status = status_names[it->status];
    size_t n = 0;
    p[n++] = (cb_param){"AccountSid", j->account_sid};
    p[n++] = (cb_param){"ApiVersion", "2010-04-01"};
    p[n++] = (cb_param){"MessageSid", j->message_sid};
    p[n++] = (cb_param){"MessageStatus", status};
    p[n++] = (cb_param){"SmsSid", j->message_sid};
    p[n++] = (cb_param){"SmsStatus", status};
    p[n++] = (cb_param){"To", j->to};
    if (j->from != NULL)
        p[n++] = (cb_param){"From", j->from};
    if (j->service_sid != NULL)
        p[n++] = (cb_param){"MessagingServiceSid", j->service_sid};
    if (strcmp(status, "undelivered") == 0 || strcmp(status, "failed") == 0) {
        p[n++] = (cb_param){"ErrorCode", error_code};
        p[n++] = (cb_param){"ErrorMessage", error_message(atol(error_code))};
    }
    qsort(p, n, sizeof(*p), param_cmp);
    return n;
}

/* base64(HMAC-SHA1(token, url + name1 + value1 + name2 + value2 ...)); NULL when out of memory. */
static char *sign(const char *token, const char *url, const cb_param *p, size_t n)
{
    jtext data = {0};
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    jt_str(&data, url);
    for (size_t i = 0; i < n; i++) {
        jt_str(&data, p[i].name);
        jt_str(&data, p[i].value);
    }
    char *sig = NULL;
    if (!data.failed && HMAC(EVP_sha1(), token, (int)strlen(token), (unsigned char *)data.p,
                             data.len, mac, &maclen) != NULL)
        sig = base64_encode(mac, maclen);
    free(data.p);
    return sig;
}

typedef struct cb_answer {
    char body[CALLBACKS_ANSWER_MAX + 1];
    size_t len;
} cb_answer;

static size_t on_answer(char *data, size_t size, size_t nmemb, void *arg)
{
    cb_answer *a = arg;
    size_t n = size * nmemb, room = CALLBACKS_ANSWER_MAX - a->len;
    memcpy(a->body + a->len, data, n < room ? n : room);
    a->len += n < room ? n : room;
    a->body[a->len] = '\0';
    return n;
}

/* Aborts a transfer still running when the stop's drain time is over. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    callbacks *cb = arg;
    return atomic_load(&cb->stopping) &&
           ptime_monotonic_ms() >= atomic_load(&cb->drain_deadline_ms);
}

static void record_member(jtext *t, const char *key, const char *v)
{
    jt_str(t, t->len > 1 ? ",\"" : "\"");
    jt_str(t, key);
    jt_str(t, "\":");
    jt_wire(t, v, strlen(v), NULL);
}

static void record_attempt(callbacks *cb, const cb_item *it, const cb_param *p, size_t n,
                           const char *sig, int64_t sent_at_ms, long status, const cb_answer *a,
                           const char *error, bool will_retry)
{
    jtext t = {0};
    jt_str(&t, "{");
    record_member(&t, "protocol", "twilio_callback");
    record_member(&t, "url", it->job->url);
    record_member(&t, "message_sid", it->job->message_sid);
    record_member(&t, "message_status", status_names[it->status]);
    jt_str(&t, ",\"attempt\":");
    jt_long(&t, it->attempt);
    jt_str(&t, it->repeat ? ",\"repeat\":true" : ",\"repeat\":false");
    jt_str(&t, it->reordered ? ",\"reordered\":true" : ",\"reordered\":false");
    jt_str(&t, ",\"params\":{");
    for (size_t i = 0; i < n; i++) {
        jt_str(&t, i > 0 ? ",\"" : "\"");
        jt_str(&t, p[i].name);
        jt_str(&t, "\":");
        jt_wire(&t, p[i].value, strlen(p[i].value), NULL);
    }
    jt_str(&t, "}");
    record_member(&t, "signature", sig);
    jt_str(&t, ",\"sent_at_ms\":");
    jt_long(&t, (long long)sent_at_ms);
    jt_str(&t, ",\"response_status\":");
    jt_long(&t, status);
    if (status != 0)
        record_member(&t, "response_body", a->body);
    if (error != NULL)
        record_member(&t, "error", error);
    record_member(&t, "outcome", status >= 200 && status <= 299 ? "answered_2xx" : "failed");
    jt_str(&t, will_retry ? ",\"will_retry\":true}" : ",\"will_retry\":false}");
    if (!t.failed && record_log_append_text(cb->log, t.p, t.len, NULL, NULL) < 0)
        fprintf(stderr, "callbacks: out of memory recording an attempt\n");
    free(t.p);
}

/* Posts one callback; returns the receiver's status, 0 when there was none. */
static long send_one(callbacks *cb, CURL *easy, const cb_item *it, const callbacks_settings *s,
                     bool may_retry)
{
    cb_param p[12];
    char code[24];
    char curl_err[CURL_ERROR_SIZE] = "";
    cb_answer answer = {.len = 0};
    struct curl_slist *headers = NULL;
    jtext body = {0};
    long status = 0;
    const char *error = NULL;

    snprintf(code, sizeof(code), "%ld", s->error_code);
    size_t n = callback_params(it, code, p);
    char *sig = sign(it->job->auth_token, it->job->url, p, n);
    for (size_t i = 0; i < n; i++) {
        char *esc = curl_easy_escape(easy, p[i].value, 0);
        if (esc == NULL) {
            body.failed = true;
            break;
        }
        jt_str(&body, i > 0 ? "&" : "");
        jt_str(&body, p[i].name);
        jt_str(&body, "=");
        jt_str(&body, esc);
        curl_free(esc);
    }
    char sig_header[96];
    snprintf(sig_header, sizeof(sig_header), "X-Twilio-Signature: %s", sig != NULL ? sig : "");
    headers = curl_slist_append(headers, "Content-Type: application/x-www-form-urlencoded");
    headers = curl_slist_append(headers, sig_header);
    headers = curl_slist_append(headers, "Expect:");
    int64_t sent_at = ptime_realtime_ms();
    if (sig == NULL || body.failed || headers == NULL) {
        error = "out of memory";
    } else {
        curl_easy_reset(easy);
        curl_easy_setopt(easy, CURLOPT_URL, it->job->url);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.p != NULL ? body.p : "");
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.len);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "TwilioProxy/1.1");
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, s->timeout_ms);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_answer);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &answer);
        curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(easy, CURLOPT_XFERINFODATA, cb);
        CURLcode rc = curl_easy_perform(easy);
        if (rc == CURLE_OK)
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        else
            error = curl_err[0] != '\0' ? curl_err : curl_easy_strerror(rc);
    }
    bool ok = status >= 200 && status <= 299;
    record_attempt(cb, it, p, n, sig != NULL ? sig : "", sent_at, status, &answer, error,
                   !ok && may_retry);
    curl_slist_free_all(headers);
    free(body.p);
    free(sig);
    return status;
}

/* ---- the threads ---- */

static void wait_until(callbacks *cb, cb_shard *sh, int64_t due_ms)
{
    struct timespec ts = {.tv_sec = (time_t)(due_ms / 1000),
                          .tv_nsec = (long)(due_ms % 1000) * 1000000L};
    (void)pthread_cond_timedwait(&sh->wake, &cb->lock, &ts);
}

/* Sends the callbacks of one shard with a curl handle of its own (its
 * connections kept alive from one callback to the next). */
static void *callbacks_thread(void *arg)
{
    cb_shard *sh = arg;
    callbacks *cb = sh->cb;
    CURL *easy = sh->easy;
    pthread_mutex_lock(&cb->lock);
    for (;;) {
        int64_t now = ptime_monotonic_ms();
        if (atomic_load(&cb->stopping) && (sh->count == 0 || sh->heap[0].due_ms > now ||
                                           now >= atomic_load(&cb->drain_deadline_ms)))
            break;
        if (sh->count == 0) {
            pthread_cond_wait(&sh->wake, &cb->lock);
            continue;
        }
        if (sh->heap[0].due_ms > now) {
            wait_until(cb, sh, sh->heap[0].due_ms);
            continue;
        }
        cb_item it = heap_pop(cb, sh);
        callbacks_settings s = cb->cur;
        uint64_t generation = cb->generation;
        bool may_retry = it.attempt <= s.retries;
        pthread_mutex_unlock(&cb->lock);

        long status = send_one(cb, easy, &it, &s, may_retry);

        pthread_mutex_lock(&cb->lock);
        if (generation != cb->generation) {
            callbacks_job_free(it.job); /* reset meanwhile: counters start afresh */
            continue;
        }
        cb->sent++;
        if (status >= 200 && status <= 299) {
            cb->answered_2xx++;
            callbacks_job_free(it.job);
            continue;
        }
        cb->failed++;
        if (!may_retry || atomic_load(&cb->stopping)) {
            cb->given_up++;
            callbacks_job_free(it.job);
            continue;
        }
        long wait = s.retry_ms;
        for (int i = 1; i < it.attempt && wait < CALLBACKS_MAX_BACKOFF_MS; i++)
            wait *= 2;
        it.due_ms = ptime_monotonic_ms() +
                    (wait < CALLBACKS_MAX_BACKOFF_MS ? wait : CALLBACKS_MAX_BACKOFF_MS);
        it.attempt++;
        if (heap_push(cb, sh, &it) == 0) {
            cb->retried++;
        } else {
            cb->dropped++;
            callbacks_job_free(it.job);
        }
    }
    pthread_mutex_unlock(&cb->lock);
    return NULL;
}

/* ---- lifecycle, control ---- */

/* Joins the started threads, drops what is left and frees. */
static void callbacks_free(callbacks *cb)
{
    for (long i = 0; i < cb->nshards; i++)
        if (cb->shards[i].started)
            pthread_join(cb->shards[i].thread, NULL);
    pthread_mutex_lock(&cb->lock);
    if (cb->count > 0)
        fprintf(stderr, "callbacks: %zu status callbacks dropped at shutdown\n", cb->count);
    queue_clear(cb, true);
    pthread_mutex_unlock(&cb->lock);
    for (long i = 0; i < cb->nshards; i++) {
        cb_shard *sh = &cb->shards[i];
        if (sh->easy != NULL)
            curl_easy_cleanup(sh->easy);
        free(sh->heap);
        pthread_cond_destroy(&sh->wake);
    }
    free(cb->shards);
    pthread_mutex_destroy(&cb->lock);
    free(cb);
}

callbacks *callbacks_start(const callbacks_settings *initial, long queue_max, long threads,
                           record_log *log, char *err, size_t errlen)
{
    if (settings_check(initial, err, errlen) != 0)
        return NULL;
    if (threads < 1 || threads > CALLBACKS_MAX_THREADS) {
        snprintf(err, errlen, "callback_threads: expected 1..%d", CALLBACKS_MAX_THREADS);
        return NULL;
    }
    callbacks *cb = calloc(1, sizeof(*cb));
    cb_shard *shards = calloc((size_t)threads, sizeof(*shards));
    if (cb == NULL || shards == NULL) {
        snprintf(err, errlen, "out of memory");
        free(cb);
        free(shards);
        return NULL;
    }
    cb->initial = cb->cur = *initial;
    cb->max = (size_t)(queue_max > 0 ? queue_max : 1);
    cb->log = log;
    cb->rng = (uint64_t)ptime_realtime_ms() ^ ((uint64_t)getpid() << 24);
    atomic_init(&cb->stopping, false);
    atomic_init(&cb->drain_deadline_ms, 0);
    pthread_mutex_init(&cb->lock, NULL);
    cb->shards = shards;
    cb->nshards = threads;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (long i = 0; i < threads; i++) {
        shards[i].cb = cb;
        pthread_cond_init(&shards[i].wake, &ca);
    }
    pthread_condattr_destroy(&ca);
    for (long i = 0; i < threads; i++) {
        shards[i].easy = curl_easy_init();
        if (shards[i].easy == NULL) {
            snprintf(err, errlen, "cannot make a curl handle for the status callbacks");
            goto fail;
        }
    }
    for (long i = 0; i < threads; i++) {
        if (pthread_create(&shards[i].thread, NULL, callbacks_thread, &shards[i]) != 0) {
            snprintf(err, errlen, "cannot start the status callback threads");
            goto fail;
        }
        shards[i].started = true;
    }
    return cb;

fail:
    pthread_mutex_lock(&cb->lock);
    atomic_store(&cb->stopping, true);
    wake_all(cb);
    pthread_mutex_unlock(&cb->lock);
    callbacks_free(cb);
    return NULL;
}

void callbacks_stop(callbacks *cb, long drain_ms)
{
    if (cb == NULL)
        return;
    pthread_mutex_lock(&cb->lock);
    atomic_store(&cb->drain_deadline_ms, ptime_monotonic_ms() + drain_ms);
    atomic_store(&cb->stopping, true);
    wake_all(cb);
    pthread_mutex_unlock(&cb->lock);
    callbacks_free(cb);
}

static int field_long(const json_t *v, const char *key, long *out, char *err, size_t errlen)
{
    if (!json_is_integer(v)) {
        snprintf(err, errlen, "%s: expected an integer", key);
        return -1;
    }
    *out = (long)json_integer_value(v);
    return 0;
}

static int field_rate(const json_t *v, const char *key, double *out, char *err, size_t errlen)
{
    if (!json_is_number(v)) {
        snprintf(err, errlen, "%s: expected a number", key);
        return -1;
    }
    *out = json_number_value(v);
    return 0;
}

/* callback_statuses: "sent,delivered" or ["sent","delivered"]. */
static int field_statuses(const json_t *v, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t i, len = 0;
    json_t *s;
    if (json_is_string(v) && json_string_length(v) < outlen) {
        memcpy(out, json_string_value(v), json_string_length(v) + 1);
        return 0;
    }
    if (!json_is_array(v))
        goto bad;
    out[0] = '\0';
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s) || len + json_string_length(s) + 2 > outlen)
            goto bad;
        len += (size_t)snprintf(out + len, outlen - len, "%s%s", i > 0 ? "," : "",
                                json_string_value(s));
    }
    return 0;
bad:
    snprintf(err, errlen,
             "callback_statuses: expected a comma-separated string or an array of "
             "statuses");
    return -1;
}

int callbacks_apply_json(callbacks *cb, const json_t *req, bool reset, bool check_only, char *err,
                         size_t errlen)
{
    const char *key;
    json_t *v;
    const size_t plen = strlen(CALLBACKS_FIELD_PREFIX);
    int rc = -1;
    pthread_mutex_lock(&cb->lock);
    callbacks_settings s = reset ? cb->initial : cb->cur;
    json_object_foreach((json_t *)req, key, v)
    {
        int r;
        if (strncmp(key, CALLBACKS_FIELD_PREFIX, plen) != 0)
            continue;
        const char *f = key + plen;
        if (strcmp(f, "statuses") == 0)
            r = field_statuses(v, s.statuses, sizeof(s.statuses), err, errlen);
        else if (strcmp(f, "error_code") == 0)
            r = field_long(v, key, &s.error_code, err, errlen);
        else if (strcmp(f, "delay_ms") == 0)
            r = field_long(v, key, &s.delay_ms, err, errlen);
        else if (strcmp(f, "duplicate_count") == 0)
            r = field_long(v, key, &s.duplicate_count, err, errlen);
        else if (strcmp(f, "duplicate_rate") == 0)
            r = field_rate(v, key, &s.duplicate_rate, err, errlen);
        else if (strcmp(f, "reorder_count") == 0)
            r = field_long(v, key, &s.reorder_count, err, errlen);
        else if (strcmp(f, "reorder_rate") == 0)
            r = field_rate(v, key, &s.reorder_rate, err, errlen);
        else if (strcmp(f, "retries") == 0)
            r = field_long(v, key, &s.retries, err, errlen);
        else if (strcmp(f, "retry_ms") == 0)
            r = field_long(v, key, &s.retry_ms, err, errlen);
        else if (strcmp(f, "timeout_ms") == 0)
            r = field_long(v, key, &s.timeout_ms, err, errlen);
        else {
            snprintf(err, errlen, "%s: unknown setting", key);
            r = -1;
        }
        if (r != 0)
            goto out;
    }
    if (settings_check(&s, err, errlen) != 0)
        goto out;
    rc = 0;
    if (check_only)
        goto out;
    cb->cur = s;
    if (reset) {
        queue_clear(cb, false);
        cb->generation++;
        cb->sent = cb->answered_2xx = cb->failed = cb->retried = cb->given_up = cb->dropped = 0;
    }
    wake_all(cb);

out:
    pthread_mutex_unlock(&cb->lock);
    return rc;
}

void callbacks_settings_to_json(callbacks *cb, json_t *o)
{
    pthread_mutex_lock(&cb->lock);
    callbacks_settings s = cb->cur;
    pthread_mutex_unlock(&cb->lock);
    json_object_set_new(o, "callback_statuses", json_string(s.statuses));
    json_object_set_new(o, "callback_error_code", json_integer(s.error_code));
    json_object_set_new(o, "callback_delay_ms", json_integer(s.delay_ms));
    json_object_set_new(o, "callback_duplicate_count", json_integer(s.duplicate_count));
    json_object_set_new(o, "callback_duplicate_rate", json_real(s.duplicate_rate));
    json_object_set_new(o, "callback_reorder_count", json_integer(s.reorder_count));
    json_object_set_new(o, "callback_reorder_rate", json_real(s.reorder_rate));
    json_object_set_new(o, "callback_retries", json_integer(s.retries));
    json_object_set_new(o, "callback_retry_ms", json_integer(s.retry_ms));
    json_object_set_new(o, "callback_timeout_ms", json_integer(s.timeout_ms));
}

void callbacks_stats_to_json(callbacks *cb, json_t *o)
{
    pthread_mutex_lock(&cb->lock);
    json_object_set_new(o, "callbacks_sent", json_integer(cb->sent));
    json_object_set_new(o, "callbacks_answered_2xx", json_integer(cb->answered_2xx));
    json_object_set_new(o, "callbacks_failed", json_integer(cb->failed));
    json_object_set_new(o, "callbacks_retried", json_integer(cb->retried));
    json_object_set_new(o, "callbacks_given_up", json_integer(cb->given_up));
    json_object_set_new(o, "callbacks_dropped", json_integer(cb->dropped));
    json_object_set_new(o, "callbacks_pending", json_integer((json_int_t)cb->count));
    pthread_mutex_unlock(&cb->lock);
}

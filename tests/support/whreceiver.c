/*
 * whreceiver: see whreceiver.h.
 */
#include "whreceiver.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsig.h"
#include "ids.h"
#include "testsupport.h"
#include "timeutil.h"
#include "webhook_call.h"

#define MAX_IDS  65536
#define MAX_BODY (1024 * 1024)
#define TYPE_LEN 32

typedef struct wh_id {
    char id[ID_UUID_SIZE];
    char type[TYPE_LEN];
} wh_id;

typedef struct wh_path {
    char *path;
    char *secret;
    whreceiver_mode mode;
    int posts;
    int bad_signatures;
    int nids;
    int cap;
    wh_id *ids;
} wh_path;

struct whreceiver {
    struct MHD_Daemon *daemon;
    int port;
    pthread_mutex_t lock;
    wh_path paths[WHRECEIVER_PATHS];
};

typedef struct upload {
    char *body;
    size_t len;
} upload;

/* Under rc->lock. */
static int find_id(const wh_path *p, const char *id)
{
    for (int i = 0; i < p->nids; i++)
        if (strcmp(p->ids[i].id, id) == 0)
            return i;
    return -1;
}

/* Under rc->lock. */
static void add_id(wh_path *p, const char *id, const char *type)
{
    if (find_id(p, id) >= 0 || p->nids >= MAX_IDS)
        return;
    if (p->nids == p->cap) {
        int cap = p->cap ? p->cap * 2 : 256;
        wh_id *n = realloc(p->ids, (size_t)cap * sizeof *n);
        if (n == NULL)
            return;
        p->ids = n;
        p->cap = cap;
    }
    snprintf(p->ids[p->nids].id, sizeof p->ids[p->nids].id, "%s", id);
    snprintf(p->ids[p->nids].type, sizeof p->ids[p->nids].type, "%s", type ? type : "");
    p->nids++;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state)
{
    whreceiver *rc = cls;
    (void)version;
    upload *u = *state;
    if (u == NULL) {
        u = calloc(1, sizeof *u);
        *state = u;
        return u ? MHD_YES : MHD_NO;
    }
    if (*size > 0) {
        if (u->len + *size > MAX_BODY)
            return MHD_NO;
        char *nb = realloc(u->body, u->len + *size + 1);
        if (nb == NULL)
            return MHD_NO;
        memcpy(nb + u->len, data, *size);
        u->body = nb;
        u->len += *size;
        u->body[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    const char *sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, HSIG_HEADER);
    const char *hid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, WEBHOOK_HTTP_ID);
    json_t *doc = u->body ? json_loadb(u->body, u->len, 0, NULL) : NULL;
    const char *bid = json_string_value(json_object_get(doc, "id"));
    const char *type = json_string_value(json_object_get(doc, "type"));

    pthread_mutex_lock(&rc->lock);
    wh_path *p = NULL;
    for (int i = 0; i < WHRECEIVER_PATHS; i++)
        if (rc->paths[i].path && strcmp(url, rc->paths[i].path) == 0)
            p = &rc->paths[i];
    if (p == NULL || strcmp(method, "POST") != 0) {
        pthread_mutex_unlock(&rc->lock);
        json_decref(doc);
        return answer(conn, 404);
    }
    /* The body's id is the header's. */
    bool ok = sig && hid && bid && strcmp(bid, hid) == 0 &&
              hsig_verify(sig, p->secret, strlen(p->secret), u->body ? u->body : "", u->len,
                          timeutil_now_ms(), HSIG_TOLERANCE_MS) == HSIG_OK;
    whreceiver_mode mode = p->mode;
    p->posts++;
    if (!ok)
        p->bad_signatures++;
    else if (mode == WHRECEIVER_OK)
        add_id(p, hid, type);
    pthread_mutex_unlock(&rc->lock);
    json_decref(doc);
    switch (mode) {
    case WHRECEIVER_OK:
        return answer(conn, ok ? 204 : 401);
    case WHRECEIVER_503:
        return answer(conn, 503);
    case WHRECEIVER_HANG:
        testsupport_sleep_ms(WHRECEIVER_HANG_MS);
        return answer(conn, 503);
    case WHRECEIVER_500:
        return answer(conn, 500);
    }
    return answer(conn, 500);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **state,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)conn, (void)why;
    upload *u = *state;
    if (u) {
        free(u->body);
        free(u);
    }
    *state = NULL;
}

whreceiver *whreceiver_start(void)
{
    whreceiver *rc = calloc(1, sizeof *rc);
    if (rc == NULL)
        return NULL;
    pthread_mutex_init(&rc->lock, NULL);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    rc->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
                                  0, NULL, NULL, on_request, rc, MHD_OPTION_SOCK_ADDR, &sa,
                                  MHD_OPTION_NOTIFY_COMPLETED, on_done, rc, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        rc->daemon ? MHD_get_daemon_info(rc->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (info == NULL) {
        whreceiver_stop(rc);
        return NULL;
    }
    rc->port = info->port;
    return rc;
}

void whreceiver_stop(whreceiver *rc)
{
    if (rc == NULL)
        return;
    if (rc->daemon)
        MHD_stop_daemon(rc->daemon);
    for (int i = 0; i < WHRECEIVER_PATHS; i++) {
        free(rc->paths[i].path);
        free(rc->paths[i].secret);
        free(rc->paths[i].ids);
    }
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}

int whreceiver_port(const whreceiver *rc)
{
    return rc->port;
}

void whreceiver_path(whreceiver *rc, int i, const char *url_path, const char *secret)
{
    pthread_mutex_lock(&rc->lock);
    wh_path *p = &rc->paths[i];
    free(p->path);
    free(p->secret);
    p->path = strdup(url_path);
    p->secret = strdup(secret);
    pthread_mutex_unlock(&rc->lock);
}

void whreceiver_set_mode(whreceiver *rc, int i, whreceiver_mode mode)
{
    pthread_mutex_lock(&rc->lock);
    rc->paths[i].mode = mode;
    pthread_mutex_unlock(&rc->lock);
}

int whreceiver_ids(whreceiver *rc, int i, int *posts)
{
    pthread_mutex_lock(&rc->lock);
    int n = rc->paths[i].nids;
    if (posts)
        *posts = rc->paths[i].posts;
    pthread_mutex_unlock(&rc->lock);
    return n;
}

int whreceiver_bad_signatures(whreceiver *rc, int i)
{
    pthread_mutex_lock(&rc->lock);
    int n = rc->paths[i].bad_signatures;
    pthread_mutex_unlock(&rc->lock);
    return n;
}

bool whreceiver_has(whreceiver *rc, int i, const char *id, char *type, size_t typelen)
{
    pthread_mutex_lock(&rc->lock);
    int k = find_id(&rc->paths[i], id);
    if (k >= 0 && type != NULL)
        snprintf(type, typelen, "%s", rc->paths[i].ids[k].type);
    pthread_mutex_unlock(&rc->lock);
    return k >= 0;
}

int whreceiver_wait(whreceiver *rc, int i, int want, long timeout_ms, bool (*alive)(void *arg),
                    void *arg)
{
    int64_t deadline = timeutil_monotonic_ms() + timeout_ms;
    int n = whreceiver_ids(rc, i, NULL);
    for (int k = 0; k < 100000 && n < want && timeutil_monotonic_ms() < deadline &&
                    (alive == NULL || alive(arg));
         k++) {
        testsupport_sleep_ms(50);
        n = whreceiver_ids(rc, i, NULL);
    }
    return n;
}

/*
 * listener: see listener.h.
 */
#include "listener.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LISTENER_MAX_CHANNELS 4
#define RETRY_MIN_MS          100
#define RETRY_MAX_MS          5000

struct listener {
    char *url;
    char *channels[LISTENER_MAX_CHANNELS];
    size_t nchannels;
    PGconn *conn;
    bool listening;
    bool reported_loss; /* LISTENER_RESET already returned for the current outage */
    int64_t next_attempt_ms;
    int64_t retry_ms;
};

listener *listener_new(const char *url, const char *const *channels)
{
    listener *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->url = strdup(url)) == NULL)
        goto fail;
    for (size_t i = 0; channels[i] != NULL && i < LISTENER_MAX_CHANNELS; i++) {
        if ((l->channels[i] = strdup(channels[i])) == NULL)
            goto fail;
        l->nchannels++;
    }
    l->retry_ms = RETRY_MIN_MS;
    /* The first connection is not a loss: nothing was cached before it. */
    l->reported_loss = true;
    return l;
fail:
    listener_free(l);
    return NULL;
}

static void drop(listener *l)
{
    if (l->conn != NULL)
        PQfinish(l->conn);
    l->conn = NULL;
    l->listening = false;
}

void listener_free(listener *l)
{
    if (l == NULL)
        return;
    drop(l);
    for (size_t i = 0; i < l->nchannels; i++)
        free(l->channels[i]);
    free(l->url);
    free(l);
}

bool listener_ok(const listener *l)
{
    return l->listening;
}

/* libpq prints server notices (such as the FATAL of a terminated backend) on stderr by default. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    LOG_DEBUG("listen", "server: %s", message);
}

static bool connect_and_listen(listener *l)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {l->url, "2", "herald-dispatcher-listen", NULL};
    char redacted[512];
    l->conn = PQconnectdbParams(keys, vals, 1);
    PQsetNoticeProcessor(l->conn, on_notice, NULL);
    if (PQstatus(l->conn) != CONNECTION_OK) {
        LOG_WARN("listen", "cannot connect to %s: %s",
                 log_redact_url(l->url, redacted, sizeof redacted), PQerrorMessage(l->conn));
        drop(l);
        return false;
    }
    for (size_t i = 0; i < l->nchannels; i++) {
        char *ident = PQescapeIdentifier(l->conn, l->channels[i], strlen(l->channels[i]));
        char sql[256];
        snprintf(sql, sizeof sql, "LISTEN %s", ident != NULL ? ident : "\"\"");
        PQfreemem(ident);
        PGresult *r = PQexec(l->conn, sql);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok) {
            LOG_WARN("listen", "%s failed: %s", sql, PQerrorMessage(l->conn));
            drop(l);
            return false;
        }
    }
    if (PQsetnonblocking(l->conn, 1) != 0) {
        drop(l);
        return false;
    }
    l->listening = true;
    return true;
}

listener_status listener_poll(listener *l, int64_t now_ms, listener_fn fn, void *ctx)
{
    listener_status st = LISTENER_OK;

    if (l->conn != NULL && (PQconsumeInput(l->conn) == 0 || PQstatus(l->conn) != CONNECTION_OK)) {
        LOG_WARN("listen", "notification connection lost: %s", PQerrorMessage(l->conn));
        drop(l);
    }
    if (l->conn == NULL) {
        if (!l->reported_loss) {
            l->reported_loss = true;
            st = LISTENER_RESET;
        }
        if (now_ms < l->next_attempt_ms)
            return st;
        if (!connect_and_listen(l)) {
            l->next_attempt_ms = now_ms + l->retry_ms;
            l->retry_ms = l->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : l->retry_ms * 2;
            return st;
        }
        LOG_INFO("listen", "listening for cache invalidations");
        l->retry_ms = RETRY_MIN_MS;
        l->reported_loss = false;
        /* Whatever was cached while deaf may be stale. */
        st = LISTENER_RESET;
    }
    PGnotify *n;
    while ((n = PQnotifies(l->conn)) != NULL) {
        if (fn != NULL)
            fn(ctx, n->relname, n->extra);
        PQfreemem(n);
    }
    return st;
}

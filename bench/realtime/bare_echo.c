/*
 * herald-bench-echo: the reference of bench/realtime/run.  A bare
 * WebSocket echo server on the same libwebsockets as herald-realtime, in
 * the style of lws's minimal echo server: each text message received is
 * sent back on its connection, and nothing else happens.  What it costs
 * per connection and per round trip is the library's floor, beside which
 * herald-realtime's figures are read.
 *
 *   herald-bench-echo [--port N] [--max-connections N]
 *
 * Prints "listening on port N" once ready; stops on SIGINT or SIGTERM.
 */
#include <libwebsockets.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Messages waiting to go back on one connection; more are dropped (the
 * bench sends one at a time per connection, so none are). */
#define QUEUE    4
#define MSG_MAX  512
#define MAX_CONN 20000

typedef struct msg {
    size_t len;
    unsigned char data[LWS_PRE + MSG_MAX];
} msg;

typedef struct session {
    msg q[QUEUE];
    unsigned head, count;
} session;

static volatile sig_atomic_t stop;
static unsigned long dropped;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_RECEIVE:
        if (len > MSG_MAX || s->count == QUEUE || !lws_is_final_fragment(wsi) ||
            !lws_is_first_fragment(wsi)) {
            dropped++;
            return 0;
        }
        msg *m = &s->q[(s->head + s->count++) % QUEUE];
        memcpy(m->data + LWS_PRE, in, len);
        m->len = len;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (s->count == 0)
            return 0;
        m = &s->q[s->head];
        if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
            return -1;
        s->head = (s->head + 1) % QUEUE;
        if (--s->count > 0)
            lws_callback_on_writable(wsi);
        return 0;
    default:
        return 0;
    }
}

int main(int argc, char **argv)
{
    int port = 0;
    unsigned max_conns = MAX_CONN;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-connections") == 0 && i + 1 < argc)
            max_conns = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            bool help = strcmp(argv[i], "--help") == 0;
            fprintf(help ? stdout : stderr, "usage: %s [--port N] [--max-connections N]\n",
                    argv[0]);
            return help ? 0 : 2;
        }
    }
    struct lws_protocols protocols[] = {
        {.name = "echo",
         .callback = callback,
         .per_session_data_size = sizeof(session),
         .rx_buffer_size = MSG_MAX},
        {0},
    };
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.fd_limit_per_thread = max_conns + 64;
    info.timeout_secs = 10;
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    struct lws_context *ctx = lws_create_context(&info);
    if (ctx == NULL) {
        fprintf(stderr, "herald-bench-echo: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(ctx, "default");
    int bound = vh != NULL ? lws_get_vhost_listen_port(vh) : -1;
    if (bound <= 0) {
        fprintf(stderr, "herald-bench-echo: no listening port\n");
        lws_context_destroy(ctx);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("listening on port %d\n", bound);
    fflush(stdout);
    for (long i = 0; !stop && i < LONG_MAX; i++)
        if (lws_service(ctx, 0) < 0)
            break;
    lws_context_destroy(ctx);
    if (dropped > 0)
        fprintf(stderr, "herald-bench-echo: %lu message(s) dropped\n", dropped);
    return 0;
}

/*
 * wsfleet: many WebSocket client connections (RFC 6455) on one epoll
 * loop, for the scale test of herald-realtime and bench/realtime.  Each
 * connection is a non-blocking socket to 127.0.0.1 that sends the upgrade
 * request, checks the 101 answer and then hands every text message to the
 * caller's callback; pings are answered, a close frame or EOF closes it.
 * What it sends is masked, as a client must.
 *
 * Small by design: server messages must fit WSFLEET_IN_MAX, fragmented
 * messages are not reassembled (the servers it talks to send whole ones),
 * and what cannot be written at once waits in a WSFLEET_OUT_MAX buffer.
 * Not thread-safe: one thread drives a fleet.
 */
#ifndef HERALD_TESTS_WSFLEET_H
#define HERALD_TESTS_WSFLEET_H

#include <stddef.h>
#include <stdint.h>

#define WSFLEET_IN_MAX  4096
#define WSFLEET_OUT_MAX 2048

typedef enum {
    WSFLEET_IDLE = 0,   /* not opened yet */
    WSFLEET_CONNECTING, /* TCP connect or upgrade in progress */
    WSFLEET_OPEN,       /* 101 received */
    WSFLEET_CLOSED,     /* refused, closed by the server, or failed */
} wsfleet_state;

typedef struct wsfleet wsfleet;

/* One text message of connection conn; text is NUL-terminated, valid for the call. */
typedef void (*wsfleet_text_cb)(void *ctx, size_t conn, const char *text, size_t len);

/* n connections, all idle.  NULL when out of memory or epoll fails. */
wsfleet *wsfleet_new(size_t n, wsfleet_text_cb cb, void *ctx);
/* Closes every socket and frees the fleet. */
void wsfleet_free(wsfleet *f);

/*
 * Starts connection i (idle or closed): connects to 127.0.0.1:port and sends
 * "GET target" with the upgrade.  -1 when the socket cannot be made (e.g.
 * out of file descriptors); the connection is then closed.
 */
int wsfleet_open(wsfleet *f, size_t i, int port, const char *target)
    __attribute__((warn_unused_result));

/* Waits up to timeout_ms for socket events and handles them; returns how many. */
int wsfleet_poll(wsfleet *f, int timeout_ms);

/* Sends one text message on open connection i; -1 when closed or its buffer is full. */
int wsfleet_send_text(wsfleet *f, size_t i, const void *text, size_t len)
    __attribute__((warn_unused_result));

/* Closes connection i at once (no close handshake). */
void wsfleet_close(wsfleet *f, size_t i);

wsfleet_state wsfleet_conn_state(const wsfleet *f, size_t i);
/* The HTTP status of i's upgrade answer (101 when open); 0 before one came. */
int wsfleet_conn_status(const wsfleet *f, size_t i);
/* The server's close code of i: 0 while open, -1 on EOF or error without one. */
int wsfleet_conn_close_code(const wsfleet *f, size_t i);

/* Connections in each state. */
size_t wsfleet_count(const wsfleet *f, wsfleet_state s);

#endif

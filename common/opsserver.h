/*
 * opsserver: the operations endpoint of the daemons (HERALD_METRICS_ADDR).
 *
 * A small HTTP listener on libmicrohttpd, with its own polling thread, that
 * serves
 *   GET /metrics  the registry in Prometheus text format 0.0.4
 *   GET /healthz  200 {"status":"ok"}, or 503 {"status":"unhealthy","reason":"..."}
 *   GET /readyz   200 {"status":"ok"}, or 503 {"status":"not_ready","reason":"..."}
 *                 (only when a readiness check is given; 404 otherwise)
 * HEAD is answered like GET without the body.  Other paths get 404 and other
 * methods 405 (with Allow), both as {"error":{"code":"...","message":"..."}}.
 *
 * Requests are handled one at a time on the listener's thread, so checks
 * never run concurrently with themselves, but they do run concurrently with
 * the rest of the daemon: they must read shared state safely (atomics or a
 * lock) and return quickly.  Connections are limited in number and time out
 * when idle, so a stuck scraper cannot pile up resources.
 */
#ifndef HERALD_OPSSERVER_H
#define HERALD_OPSSERVER_H

#include "metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct opsserver opsserver;

/* Returns true when healthy (or ready); otherwise writes a short,
 * NUL-terminated reason into reason (reasonlen > 0) and returns false. */
typedef bool (*opsserver_check_fn)(void *ctx, char *reason, size_t reasonlen);

/*
 * Parses a listen address (syntax: config_parse_addr) into a socket
 * address: "host:port" with host an IPv4 literal or
 * "localhost" (127.0.0.1), or "[v6]:port" with an IPv6 literal.  The port is
 * decimal 0..65535, 0 meaning any free port.  No name resolution.  Returns 0
 * and fills *out and *outlen, or -1 with a message naming addr in err.
 */
int opsserver_parse_addr(const char *addr, struct sockaddr_storage *out, socklen_t *outlen,
                         char *err, size_t errlen) __attribute__((warn_unused_result));

/*
 * Starts listening on addr (see opsserver_parse_addr).  reg may be NULL (no
 * /metrics), as may health (always healthy) and ready (no /readyz); ctx is
 * passed to both checks.  reg and ctx must outlive the server.  Returns the
 * server, or NULL with err set (bad address, port in use, ...).
 */
opsserver *opsserver_start(const char *addr, metrics_registry *reg, opsserver_check_fn health,
                           opsserver_check_fn ready, void *ctx, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The port actually bound (the ephemeral one when started with port 0). */
uint16_t opsserver_port(const opsserver *s);

/* Closes the listener, waits for its thread and frees the server.  NULL is
 * a no-op. */
void opsserver_stop(opsserver *s);

#endif

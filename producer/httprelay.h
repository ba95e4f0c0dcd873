/*
 * httprelay: the gateway's HTTP front.  It accepts the TCP connections
 * itself and hands each to libmicrohttpd through a socketpair, relaying
 * the bytes both ways in a few epoll threads, so that every request is
 * framed by httpframe.h before libmicrohttpd sees it:
 *   - a request the framing refuses is answered here with one JSON error
 *     (the pair end is closed, so libmicrohttpd drops the partial request
 *     unrun) and the connection is closed, lingering;
 *   - requests are served one at a time: after a complete request no more
 *     client bytes are read until its answer has been relayed, so a refused
 *     pipelined request is answered in order;
 *   - a request head must arrive within header_timeout_ms and a body at
 *     min_body_rate (408 JSON);
 *   - a connection libmicrohttpd closes is shut for writing and what the
 *     client still sends is read and dropped for a bounded time (lingering
 *     close, RFC 9112 9.6), so the client reads the answer;
 *   - at most max_connections are open; more are closed at accept.
 */
#ifndef HERALD_HTTPRELAY_H
#define HERALD_HTTPRELAY_H

#include <stddef.h>

struct MHD_Daemon;
typedef struct httprelay httprelay;

typedef struct httprelay_config {
    int listen_fd; /* listening, taken by the relay */
    struct MHD_Daemon *daemon;
    unsigned threads;
    unsigned max_connections;
    unsigned header_timeout_ms;
    unsigned min_body_rate; /* bytes/s once a body has had 5 s; 0 = none */
} httprelay_config;

httprelay *httprelay_start(const httprelay_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Closes every connection and the listener; NULL is a no-op. */
void httprelay_stop(httprelay *r);

#endif

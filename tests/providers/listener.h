/*
 * listener: the listening sockets of the test providers.
 *
 * Both servers bind "host:port" addresses given on the command line, where
 * port 0 asks the kernel for a free port; the chosen port is reported back
 * so the server can print it and a test can read it.  Only numeric IPv4
 * hosts are accepted: every test runs on 127.0.0.1.
 */
#ifndef PROVIDERS_LISTENER_H
#define PROVIDERS_LISTENER_H

#include <stddef.h>

/*
 * Binds and listens on addr ("127.0.0.1:8025", "127.0.0.1:0"); returns the
 * socket (close-on-exec, blocking) and stores the bound port in *port, or
 * returns -1 with err filled.
 */
int listener_open(const char *addr, int *port, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Raises the soft descriptor limit to the hard one: a benchmark opens
 * hundreds of keep-alive connections. */
void listener_raise_fd_limit(void);

#endif

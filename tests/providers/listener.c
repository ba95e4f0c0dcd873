/*
 * listener: see listener.h.
 */
#include "listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A deep backlog: -c512 benchmarks connect all at once. */
#define LISTENER_BACKLOG 4096

int listener_open(const char *addr, int *port, char *err, size_t errlen)
{
    int fd = -1;
    int ret = -1;
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host) || colon == addr) {
        snprintf(err, errlen, "expected host:port, got \"%s\"", addr);
        goto out;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || p < 0 || p > 65535) {
        snprintf(err, errlen, "bad port in \"%s\"", addr);
        goto out;
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)p);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "host must be a numeric IPv4 address, got \"%s\"", host);
        goto out;
    }

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        snprintf(err, errlen, "bind %s: %s", addr, strerror(errno));
        goto out;
    }
    if (listen(fd, LISTENER_BACKLOG) != 0) {
        snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
        goto out;
    }
    socklen_t salen = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &salen) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        goto out;
    }
    *port = ntohs(sa.sin_port);
    ret = fd;
    fd = -1;

out:
    if (fd >= 0)
        close(fd);
    return ret;
}

void listener_raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

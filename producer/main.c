/*
 * herald-gateway: parse the configuration, start the gateway, wait for
 * SIGTERM or SIGINT, stop gracefully.
 */
#include "gateway.h"
#include "log.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

int main(int argc, char **argv)
{
    gateway_config cfg = {0};
    gateway *gw = NULL;
    char err[512];
    int rc = 1;

    config_status st = gateway_config_load(&cfg, argc, argv, err, sizeof err);
    if (st != CONFIG_OK) {
        if (st == CONFIG_ERROR)
            fprintf(stderr, "herald-gateway: %s\n", err);
        rc = st == CONFIG_HELP ? 0 : 2;
        goto out;
    }
    log_init("herald-gateway", (log_level)cfg.common.log_level, (log_format)cfg.common.log_format);

    /* Blocked before any thread starts, so only sigtimedwait() sees them. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    gw = gateway_start(&cfg, err, sizeof err);
    if (gw == NULL) {
        LOG_ERROR("gateway", "%s", err);
        goto out;
    }
    const struct timespec tick = {1, 0};
    while (sigtimedwait(&stop_signals, NULL, &tick) < 0)
        ;
    LOG_INFO("gateway", "stopping");
    (void)gateway_stop(gw); /* leftovers were answered 503 and logged */
    rc = 0;
out:
    gateway_config_free(&cfg);
    return rc;
}

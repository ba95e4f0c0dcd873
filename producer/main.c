/*
 * herald-gateway: parse the configuration, start the gateway, wait for
 * SIGTERM or SIGINT, stop gracefully.
 */
#include "daemon.h"
#include "gateway.h"
#include "log.h"

#include <stdio.h>

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

    daemon_signals_init();

    gw = gateway_start(&cfg, err, sizeof err);
    if (gw == NULL) {
        LOG_ERROR("gateway", "%s", err);
        goto out;
    }
    daemon_wait_stop();
    LOG_INFO("gateway", "stopping");
    (void)gateway_stop(gw); /* leftovers were answered 503 and logged */
    rc = 0;
out:
    gateway_config_free(&cfg);
    return rc;
}

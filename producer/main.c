/*
 * herald-gateway: the HTTP API that takes events in (see gateway.h,
 * docs/gateway.md).
 */
#include "daemon.h"
#include "gateway.h"
#include "log.h"

static void *start(const void *cfg, const herald_common_config *common,
                   const config_kafka_props *props, int *config_error, char *err, size_t errlen)
{
    (void)common; /* inside cfg */
    (void)props;
    *config_error = 0;
    return gateway_start(cfg, err, errlen);
}

/* The gateway serves on its own threads until asked to stop. */
static int run(void *gw)
{
    (void)gw;
    daemon_wait_stop();
    LOG_INFO("gateway", "stopping");
    return 0;
}

static void stop(void *gw)
{
    (void)gateway_stop(gw); /* leftovers were answered 503 and logged */
}

int main(int argc, char **argv)
{
    gateway_config cfg = {0};
    const daemon_spec spec = {
        .prog = "herald-gateway",
        .usage = gateway_usage,
        .vars = gateway_config_vars,
        .cfg = &cfg,
        .common = &cfg.common,
        .props = &cfg.kafka_props,
        /* receipts (SNS confirmations), status health checks, the history sampler */
        .process_init = daemon_curl_init,
        .process_cleanup = daemon_curl_cleanup,
        .start = start,
        .run = run,
        .free = stop,
    };
    return daemon_main(&spec, argc, argv);
}

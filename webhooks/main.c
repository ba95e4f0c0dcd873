/*
 * herald-webhooks: makes status webhook calls from delivery_history and
 * POSTs them, signed, retried and dead-lettered (see webhooks.h,
 * docs/webhooks.md).
 */
#include <curl/curl.h>

#include "daemon.h"
#include "webhooks.h"
#include "webhooks_config.h"

DAEMON_ADAPTERS(webhooks_new, webhooks_run, webhooks_free)

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    webhooks_config cfg = {0};
    config_kafka_props props = {0};
    const daemon_spec spec = {
        .prog = "herald-webhooks",
        .usage = "usage: herald-webhooks [flags] [-X librdkafka.property=value ...]",
        .vars = webhooks_config_vars,
        .cfg = &cfg,
        .common = &common,
        .props = &props,
        .heartbeat = true,
        .group_member = true,
        .process_init = daemon_curl_init,
        .process_cleanup = daemon_curl_cleanup,
        .start = spec_start,
        .run = spec_run,
        .free = spec_free,
    };
    return daemon_main(&spec, argc, argv);
}

/*
 * herald-worker --channel email|sms|push: delivers one channel's
 * notifications through its provider (see worker.h, docs/channels.md).
 */
#include <curl/curl.h>

#include "daemon.h"
#include "worker.h"
#include "worker_config.h"

DAEMON_ADAPTERS(worker_new, worker_run, worker_free)

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    worker_config cfg = {.channel = -1};
    config_kafka_props props = {0};
    const daemon_spec spec = {
        .prog = "herald-worker",
        .usage = "usage: herald-worker --channel email|sms|push [flags] "
                 "[-X librdkafka.property=value ...]",
        .vars = worker_config_vars,
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

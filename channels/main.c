/*
 * herald-worker --channel email|sms|push: delivers one channel's
 * notifications through its provider (see worker.h, docs/channels.md).
 */
#include <curl/curl.h>

#include "daemon.h"
#include "worker.h"
#include "worker_config.h"

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void *start(const void *cfg, const herald_common_config *common,
                   const config_kafka_props *props, int *config_error, char *err, size_t errlen)
{
    return worker_new(cfg, common, props, &daemon_stop, config_error, err, errlen);
}

static int run(void *w)
{
    return worker_run(w);
}

static void free_worker(void *w)
{
    worker_free(w);
}

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
        .process_init = curl_init,
        .process_cleanup = curl_global_cleanup,
        .start = start,
        .run = run,
        .free = free_worker,
    };
    return daemon_main(&spec, argc, argv);
}

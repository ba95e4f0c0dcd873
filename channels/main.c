/*
 * herald-worker --channel email|sms|push: delivers one channel's
 * notifications through its provider (see worker.h, docs/channels.md).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "worker.h"
#include "worker_config.h"

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    worker_config cfg = {.channel = -1};
    config_kafka_props props = {0};
    const config_table tables[] = {{config_common_vars, &common}, {worker_config_vars, &cfg}};
    const size_t ntables = sizeof tables / sizeof tables[0];
    char err[512];
    int rc, config_error = 0;
    worker *w = NULL;

    rc = daemon_load_config("herald-worker", tables, ntables, argc, argv, &props,
                            "usage: herald-worker --channel email|sms|push [flags] "
                            "[-X librdkafka.property=value ...]",
                            &common);
    if (rc >= 0)
        goto out;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    daemon_signals_init();

    w = worker_new(&cfg, &common, &props, &daemon_stop, &config_error, err, sizeof err);
    if (w == NULL) {
        if (config_error)
            fprintf(stderr, "herald-worker: %s\n", err);
        else
            LOG_ERROR(NULL, "cannot start: %s", err);
        rc = config_error ? 2 : 1;
        goto cleanup;
    }
    rc = worker_run(w);
cleanup:
    worker_free(w);
    curl_global_cleanup();
out:
    config_free(tables, ntables, &props);
    return rc;
}

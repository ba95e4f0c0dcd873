/*
 * herald-dispatcher: turns events into per-channel deliveries (see
 * dispatcher.h, docs/dispatcher.md).
 */
#include <malloc.h>
#include <stdio.h>

#include "config.h"
#include "daemon.h"
#include "dispatcher.h"
#include "dispatcher_config.h"
#include "log.h"

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    dispatcher_config cfg = {0};
    config_kafka_props props = {0};
    const config_table tables[] = {{config_common_vars, &common}, {dispatcher_config_vars, &cfg}};
    const size_t ntables = sizeof tables / sizeof tables[0];
    char err[1024];
    int rc = 2, config_error = 0;
    dispatcher *d = NULL;

    rc = daemon_load_config("herald-dispatcher", tables, ntables, argc, argv, &props,
                            "usage: herald-dispatcher [flags] [-X librdkafka.property=value ...]",
                            &common);
    if (rc >= 0)
        goto out;
    /*
     * glibc gives each of librdkafka's threads its own malloc arena (up to 8
     * per core), each keeping freed memory; two arenas keep the footprint
     * close to what is in use, at no measurable cost here.
     */
    mallopt(M_ARENA_MAX, 2);
    daemon_signals_init();

    d = dispatcher_new(&cfg, &common, &props, &daemon_stop, &config_error, err, sizeof err);
    if (d == NULL) {
        if (config_error)
            fprintf(stderr, "herald-dispatcher: %s\n", err);
        else
            LOG_ERROR(NULL, "cannot start: %s", err);
        rc = config_error ? 2 : (daemon_stop ? 0 : 1);
        goto out;
    }
    rc = dispatcher_run(d);
out:
    dispatcher_free(d);
    config_free(tables, ntables, &props);
    return rc;
}

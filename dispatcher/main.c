/*
 * herald-dispatcher: turns events into per-channel deliveries (see
 * dispatcher.h, docs/dispatcher.md).
 */
#include <malloc.h>

#include "daemon.h"
#include "dispatcher.h"
#include "dispatcher_config.h"

/*
 * glibc gives each of librdkafka's threads its own malloc arena (up to 8 per
 * core), each keeping freed memory; two arenas keep the footprint close to
 * what is in use, at no measurable cost here.
 */
static void two_arenas(void)
{
    mallopt(M_ARENA_MAX, 2);
}

static void *start(const void *cfg, const herald_common_config *common,
                   const config_kafka_props *props, int *config_error, char *err, size_t errlen)
{
    return dispatcher_new(cfg, common, props, &daemon_stop, config_error, err, errlen);
}

static int run(void *d)
{
    return dispatcher_run(d);
}

static void free_dispatcher(void *d)
{
    dispatcher_free(d);
}

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    dispatcher_config cfg = {0};
    config_kafka_props props = {0};
    const daemon_spec spec = {
        .prog = "herald-dispatcher",
        .usage = "usage: herald-dispatcher [flags] [-X librdkafka.property=value ...]",
        .vars = dispatcher_config_vars,
        .cfg = &cfg,
        .common = &common,
        .props = &props,
        .heartbeat = true,
        .process_init = two_arenas,
        .start = start,
        .run = run,
        .free = free_dispatcher,
    };
    return daemon_main(&spec, argc, argv);
}

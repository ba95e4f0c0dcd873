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

DAEMON_ADAPTERS(dispatcher_new, dispatcher_run, dispatcher_free)

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
        .group_member = true,
        .process_init = two_arenas,
        .start = spec_start,
        .run = spec_run,
        .free = spec_free,
    };
    return daemon_main(&spec, argc, argv);
}

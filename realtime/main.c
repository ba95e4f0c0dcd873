/*
 * herald-realtime: pushes inbox changes to users' WebSocket connections
 * (see realtime.h, docs/inapp.md).
 */
#include "daemon.h"
#include "realtime.h"
#include "realtime_config.h"

DAEMON_ADAPTERS(realtime_new, realtime_run, realtime_free)

int main(int argc, char **argv)
{
    herald_common_config common = {0};
    realtime_config cfg = {0};
    config_kafka_props props = {0};
    const daemon_spec spec = {
        .prog = "herald-realtime",
        .usage = "usage: herald-realtime [flags] [-X librdkafka.property=value ...]",
        .vars = realtime_config_vars,
        .cfg = &cfg,
        .common = &common,
        .props = &props,
        .heartbeat = true,
        .start = spec_start,
        .run = spec_run,
        .free = spec_free,
    };
    return daemon_main(&spec, argc, argv);
}

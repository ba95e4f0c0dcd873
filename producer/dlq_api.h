/*
 * dlq_api: the dead-letter topic over HTTP, for operators and the console.
 * Every route is admin scope; each reads the DLQ on the request's worker
 * thread, with the broker calls bounded by the publish timeout.
 *
 *   GET  /v1/dlq?from=&to=&channel=&reason=&stage=&limit=&after=
 *        one page (dlqscan_page), oldest first across partitions
 *   GET  /v1/dlq/stats?from=&to=&channel=&reason=&stage=
 *        the counts of `heraldctl dlq stats --json`, rows by stage, reason
 *   GET  /v1/dlq/{position}   one record by "P:O"; 404 when absent
 *   POST /v1/dlq/requeue      {"ids":[...]} or {"filter":{...}}, "dry_run"
 *        the requeue of `heraldctl dlq requeue` (dlqrequeue.h), except that
 *        invalid_json records are skipped
 *
 * docs/openapi.yaml has the shapes; docs/operations.md the behaviour.
 */
#ifndef HERALD_DLQ_API_H
#define HERALD_DLQ_API_H

#include "api.h"
#include "config.h"

typedef struct dlq_env dlq_env;

/* Where the DLQ is and how to write back: copied from the common config and props. */
dlq_env *dlq_env_new(const herald_common_config *common, const config_kafka_props *props,
                     int timeout_ms, char *err, size_t errlen) __attribute__((warn_unused_result));
void dlq_env_free(dlq_env *d);

void dlq_api_list(api_env *env, http_request *req, api_call *call, http_phase phase);
void dlq_api_stats(api_env *env, http_request *req, api_call *call, http_phase phase);
void dlq_api_get(api_env *env, http_request *req, api_call *call, http_phase phase);
void dlq_api_requeue(api_env *env, http_request *req, api_call *call, http_phase phase);

#endif

/*
 * topics: see topics.h.  Retention: events and deliveries a week (enough to
 * replay an incident window), retries a week, dead letters 30 days so an
 * operator has time to inspect and requeue them (webhook calls alike); inbox updates a day (a
 * doorbell for live clients, not a history: docs/inapp.md).
 */
#include "topics.h"

#include <stdio.h>

#define DAY_MS   "86400000"
#define WEEK_MS  "604800000"
#define MONTH_MS "2592000000"

const topics_def topics_all[] = {
    {TOPICS_EVENTS, WEEK_MS, "events published by services"},
    {"deliveries.email", WEEK_MS, "email deliveries, rendered and addressed"},
    {"deliveries.sms", WEEK_MS, "SMS deliveries, rendered and addressed"},
    {"deliveries.push", WEEK_MS, "push deliveries, one per device token"},
    {"deliveries.inapp", WEEK_MS, "in-app deliveries, one per user"},
    {"retry.email", WEEK_MS, "email deliveries waiting for their next attempt"},
    {"retry.sms", WEEK_MS, "SMS deliveries waiting for their next attempt"},
    {"retry.push", WEEK_MS, "push deliveries waiting for their next attempt"},
    {"retry.inapp", WEEK_MS, "in-app deliveries waiting for their next attempt"},
    {TOPICS_DLQ, MONTH_MS, "dead letters from every stage"},
    {TOPICS_INBOX_UPDATES, DAY_MS, "in-app inbox changes, the doorbell of live clients"},
    {TOPICS_WEBHOOKS, WEEK_MS, "status webhook calls, keyed by endpoint"},
    {TOPICS_WEBHOOKS_RETRY, WEEK_MS, "status webhook calls waiting for their next attempt"},
    {NULL, NULL, NULL},
};

char *topics_deliveries(const char *channel, char *out, size_t outlen)
{
    snprintf(out, outlen, "deliveries.%s", channel);
    return out;
}

char *topics_retry(const char *channel, char *out, size_t outlen)
{
    snprintf(out, outlen, "retry.%s", channel);
    return out;
}

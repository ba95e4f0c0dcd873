/*
 * heraldctl topics create [--partitions N] [--replication-factor R]
 * heraldctl topics subscribers NAME [--after USER_ID] [--limit N] [--json]
 *
 * create makes every Kafka topic of topics.h under the prefix.  Idempotent:
 * topics that exist are reported and left as they are.
 *
 * subscribers lists one page of a broadcast topic's subscribers through the
 * gateway's GET /v1/topics/{topic}/subscribers (HERALD_GATEWAY_URL, an admin
 * HERALD_API_KEY); the last line gives the --after of the next page.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "cmdutil.h"
#include "table.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "topics.h"

typedef struct topics_flags {
    long partitions;
    long replication_factor;
    long timeout_ms;
} topics_flags;

static const config_var topics_vars[] = {
    {.flag = "partitions",
     .type = CONFIG_INT,
     .def = "12",
     .offset = offsetof(topics_flags, partitions),
     .min = 1,
     .max = 10000,
     .help = "partitions per topic (the upper bound on consumers per group)"},
    {.flag = "replication-factor",
     .type = CONFIG_INT,
     .def = "1",
     .offset = offsetof(topics_flags, replication_factor),
     .min = 1,
     .max = 32,
     .help = "copies of each partition; 3 in production"},
    {.flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "30s",
     .offset = offsetof(topics_flags, timeout_ms),
     .min = 1000,
     .max = 600000,
     .help = "how long to wait for the cluster"},
    {0},
};

#define TOPICS_USAGE                                                                               \
    "usage: heraldctl topics create [--partitions N] [--replication-factor R] [--timeout D] | "    \
    "subscribers NAME [--after USER_ID] [--limit N] [--json] [--gateway-url URL] [--api-key KEY]"

typedef struct subscribers_flags {
    char *gateway_url;
    char *api_key;
    char *after;
    long limit;
    bool json;
    long timeout_ms;
} subscribers_flags;

static const config_var subscribers_vars[] = {
    CMDUTIL_GATEWAY_FLAGS(subscribers_flags, gateway_url, api_key, timeout_ms,
                          "an admin API key (heraldctl apikey create --scope admin)"),
    {.flag = "after",
     .type = CONFIG_STRING,
     .offset = offsetof(subscribers_flags, after),
     .help = "the page after this user id (the previous page's last line says which)"},
    {.flag = "limit",
     .type = CONFIG_INT,
     .def = "100",
     .offset = offsetof(subscribers_flags, limit),
     .min = 1,
     .max = 1000,
     .help = "subscribers per page"},
    {.flag = "json",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = offsetof(subscribers_flags, json),
     .help = "print the gateway's JSON instead of a table"},
    {0},
};

/*
 * Describes the topics that already existed, all in one metadata request.
 * A topic created a moment ago may not be in the metadata yet: asked again
 * for up to two seconds while any is missing.  descs[i].err says what was
 * found; err is set when the cluster did not answer.
 */
static kafka_status describe_existing(const ctl_context *ctx, const topics_flags *f,
                                      const char *const *names, size_t n, kafka_topic_desc *descs,
                                      char *err, size_t errlen)
{
    kafka_status st = KAFKA_OK;
    for (int round = 0; round < 20 && n > 0; round++) {
        if (round > 0)
            nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
        st = kafka_topics_describe(ctx->common.kafka_brokers, &ctx->kafka_props, names, n,
                                   (int)f->timeout_ms, descs, err, errlen);
        bool missing = false;
        for (size_t i = 0; st == KAFKA_OK && i < n; i++)
            missing |= descs[i].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (!missing)
            break;
    }
    return st;
}

/*
 * An existing topic is left as it is: its shape is printed, and a shape
 * other than the one asked for is pointed out (partitions can only be added,
 * replicas moved with Kafka's reassignment tool).
 */
static void print_existing(const topics_flags *f, const char *name, const kafka_topic_desc *d,
                           const char *why)
{
    if (d == NULL || d->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        printf("exists   %s (not described: %s)\n", name,
               d == NULL ? why : rd_kafka_err2str(d->err));
        return;
    }
    bool other_partitions = d->partitions != f->partitions;
    bool other_rf = d->replication_factor != f->replication_factor;
    printf("exists   %s (%d partitions, replication factor %d)", name, d->partitions,
           d->replication_factor);
    if (other_partitions)
        printf(", not the %ld partitions asked for", f->partitions);
    if (other_rf)
        printf(", not the replication factor %ld asked for", f->replication_factor);
    printf("%s\n", other_partitions || other_rf ? ": left as it is" : "");
}

static int topics_create(const ctl_context *ctx, const topics_flags *f)
{
    enum { MAX_TOPICS = 32 };
    kafka_topic_spec specs[MAX_TOPICS] = {0};
    kafka_topic_result results[MAX_TOPICS] = {0};
    char names[MAX_TOPICS][256];
    kafka_topic_config configs[MAX_TOPICS][2] = {0};
    char err[512];
    size_t n = 0;

    /* With three or more copies a write survives one broker down: acks=all
     * then needs two in-sync replicas, so no acknowledged write lives on one
     * broker only. */
    const char *min_isr = f->replication_factor >= 3 ? "2" : "1";
    for (const topics_def *t = topics_all; t->name != NULL && n < MAX_TOPICS; t++, n++) {
        config_topic(&ctx->common, t->name, names[n], sizeof(names[n]));
        configs[n][0] = (kafka_topic_config){"retention.ms", t->retention_ms};
        configs[n][1] = (kafka_topic_config){"min.insync.replicas", min_isr};
        specs[n] = (kafka_topic_spec){
            .name = names[n],
            .partitions = (int)f->partitions,
            .replication_factor = (int)f->replication_factor,
            .configs = configs[n],
            .nconfigs = 2,
        };
    }

    kafka_status st = kafka_topics_create(ctx->common.kafka_brokers, &ctx->kafka_props, specs, n,
                                          (int)f->timeout_ms, results, err, sizeof(err));
    if (st != KAFKA_OK) {
        fprintf(stderr, "heraldctl topics: cannot create topics at %s: %s\n",
                ctx->common.kafka_brokers, err);
        return CTL_EXIT_FAILURE;
    }
    const char *existing[MAX_TOPICS];
    kafka_topic_desc descs[MAX_TOPICS];
    size_t nexisting = 0;
    for (size_t i = 0; i < n; i++)
        if (results[i].outcome == KAFKA_TOPIC_EXISTS)
            existing[nexisting++] = names[i];
    bool described =
        describe_existing(ctx, f, existing, nexisting, descs, err, sizeof(err)) == KAFKA_OK;

    int failed = 0, created = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        switch (results[i].outcome) {
        case KAFKA_TOPIC_CREATED:
            printf("created  %s (%ld partitions, replication factor %ld)\n", names[i],
                   f->partitions, f->replication_factor);
            created++;
            break;
        case KAFKA_TOPIC_EXISTS:
            print_existing(f, names[i], described ? &descs[k++] : NULL, err);
            break;
        case KAFKA_TOPIC_FAILED:
            printf("FAILED   %s: %s\n", names[i],
                   results[i].msg[0] ? results[i].msg : rd_kafka_err2str(results[i].err));
            failed++;
            break;
        }
    }
    printf("%d created, %d already existed, %d failed\n", created, (int)n - created - failed,
           failed);
    return failed ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}

static int topics_subscribers(const subscribers_flags *f, const char *topic)
{
    static const char *const headers[] = {"USER", "SUBSCRIBED"};
    char path[2048];
    char *esc = curl_easy_escape(NULL, topic, 0);
    int n = esc != NULL
                ? snprintf(path, sizeof path, "/v1/topics/%s/subscribers?limit=%ld", esc, f->limit)
                : -1;
    curl_free(esc);
    if (n < 0 || (size_t)n >= sizeof path ||
        cmdutil_add_query(path, sizeof path, "after", f->after) != 0) {
        fprintf(stderr, "heraldctl topics subscribers: the topic or --after is too long\n");
        return CTL_EXIT_USAGE;
    }
    cmdutil_gateway g = {.url = f->gateway_url, .api_key = f->api_key, .timeout_ms = f->timeout_ms};
    json_t *answer = NULL;
    if (cmdutil_gateway_request(&g, "topics subscribers", "GET", path, NULL, 0, &answer) != 0)
        return CTL_EXIT_FAILURE;
    int rc = CTL_EXIT_FAILURE;
    table *t = NULL;
    if (f->json) {
        cmdutil_print_json(answer);
        rc = CTL_EXIT_OK;
        goto out;
    }
    if ((t = table_new(2, headers)) == NULL)
        goto oom;
    json_t *subs = json_object_get(answer, "subscribers"), *e;
    size_t i;
    json_array_foreach(subs, i, e)
    {
        char user[512], since[64];
        cmdutil_cell_text(json_object_get(e, "user_id"), user, sizeof user);
        cmdutil_cell_text(json_object_get(e, "subscribed_at"), since, sizeof since);
        const char *cells[] = {user, since};
        if (table_add(t, cells) != 0)
            goto oom;
    }
    table_print(t, stdout);
    const char *next = json_string_value(json_object_get(answer, "next_after"));
    size_t count = json_array_size(subs);
    printf("%zu subscriber%s", count, count == 1 ? "" : "s");
    if (next != NULL)
        printf(" (more: --after %s)", next);
    printf("\n");
    rc = CTL_EXIT_OK;
    goto out;
oom:
    fprintf(stderr, "heraldctl topics subscribers: out of memory\n");
out:
    table_free(t);
    json_decref(answer);
    return rc;
}

static int cmd_topics_subscribers(int argc, char **argv)
{
    static const cmdutil_sub subs[] = {{"subscribers", 1, "a topic NAME", NULL}};
    subscribers_flags f = {0};
    const config_table ctable = {subscribers_vars, &f};
    cmdutil_subcmd c;
    int rc =
        cmdutil_parse_sub("topics", TOPICS_USAGE, subs, 1, subscribers_vars, &f, argc, argv, &c);
    if (rc < 0) {
        rc = CTL_EXIT_USAGE;
        if (cmdutil_have_key(c.name, f.api_key, "an admin API key"))
            rc = topics_subscribers(&f, c.args[0]);
    }
    config_free(&ctable, 1, NULL);
    return rc;
}

int cmd_topics(const ctl_context *ctx, int argc, char **argv)
{
    topics_flags flags = {0};
    int first = argc;
    int rc = CTL_EXIT_USAGE;

    if (argc >= 2 && strcmp(argv[1], "subscribers") == 0)
        return cmd_topics_subscribers(argc, argv);
    if (argc < 2 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "--help") != 0 &&
                     strcmp(argv[1], "-h") != 0)) {
        fprintf(stderr, "heraldctl topics: expected create or subscribers (%s)\n", TOPICS_USAGE);
        return CTL_EXIT_USAGE;
    }
    if (strcmp(argv[1], "create") != 0) {
        printf("%s\n", TOPICS_USAGE);
        return CTL_EXIT_OK;
    }
    config_status st = ctl_parse_flags("topics create", TOPICS_USAGE, topics_vars, &flags, argc - 1,
                                       argv + 1, &first);
    if (st != CONFIG_OK)
        return st == CONFIG_HELP ? CTL_EXIT_OK : CTL_EXIT_USAGE;
    if (first < argc - 1) {
        fprintf(stderr, "heraldctl topics create: unexpected argument \"%s\"\n", argv[first + 1]);
        return rc;
    }
    return topics_create(ctx, &flags);
}

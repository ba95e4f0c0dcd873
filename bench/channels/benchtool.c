/*
 * benchtool: the set-up half of bench/channels/run — scratch database,
 * topics and a pre-loaded backlog of deliveries, so that the worker's
 * figures are measured on its own work and not on the producer's.
 *
 *   benchtool setup    DB_ADMIN_URL DB_NAME MIGRATIONS_DIR BROKERS PREFIX CHANNEL PARTITIONS
 *   benchtool produce  BROKERS PREFIX CHANNEL COUNT
 *   benchtool teardown DB_ADMIN_URL DB_NAME BROKERS PREFIX CHANNEL
 *
 * Built by the run script against the build's libherald_common.a.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "delivery.h"
#include "kafka.h"
#include "kafka_admin.h"
#include "timeutil.h"

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

static int exec_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(stderr, "benchtool: %s\n", PQerrorMessage(c));
    PQclear(r);
    return ok ? 0 : -1;
}

static void db_url(const char *admin, const char *name, char *out, size_t outlen)
{
    const char *s = strstr(admin, "://");
    const char *slash = s ? strchr(s + 3, '/') : NULL;
    const char *q = strchr(admin, '?');
    size_t base = slash ? (size_t)(slash - admin) : (q ? (size_t)(q - admin) : strlen(admin));
    snprintf(out, outlen, "%.*s/%s%s", (int)base, admin, name, q ? q : "");
}

static void topic_names(const char *prefix, const char *ch, char t[3][256])
{
    snprintf(t[0], 256, "%sdeliveries.%s", prefix, ch);
    snprintf(t[1], 256, "%sretry.%s", prefix, ch);
    snprintf(t[2], 256, "%sdlq", prefix);
}

static int setup(char **a)
{
    char sql[256], url[1024], err[512], t[3][256];
    PGconn *c = PQconnectdb(a[0]);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", a[1]);
    if (PQstatus(c) != CONNECTION_OK || exec_sql(c, sql) != 0) {
        fprintf(stderr, "benchtool: %s\n", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    PQfinish(c);
    db_url(a[0], a[1], url, sizeof url);
    c = PQconnectdb(url);
    DIR *d = opendir(a[2]);
    char *names[128];
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL && n < 128)
        if (strlen(de->d_name) > 4 && strcmp(de->d_name + strlen(de->d_name) - 4, ".sql") == 0)
            names[n++] = strdup(de->d_name);
    if (d)
        closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    int rc = 0;
    exec_sql(c, "SET client_min_messages = warning");
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", a[2], names[i]);
        char *s = slurp(path);
        if (rc == 0 && (s == NULL || exec_sql(c, s) != 0))
            rc = 1;
        free(s);
        free(names[i]);
    }
    PQfinish(c);
    if (rc)
        return rc;
    topic_names(a[4], a[5], t);
    kafka_topic_spec specs[3];
    kafka_topic_result res[3];
    int parts = atoi(a[6]);
    for (int i = 0; i < 3; i++)
        specs[i] = (kafka_topic_spec){t[i], parts, 1, NULL, 0};
    if (kafka_topics_create(a[3], NULL, specs, 3, 30000, res, err, sizeof err) != KAFKA_OK) {
        fprintf(stderr, "benchtool: %s\n", err);
        return 1;
    }
    printf("%s\n", url);
    return 0;
}

static int produce(char **a)
{
    char err[512], t[3][256], user[32], addr[64];
    delivery_channel ch;
    if (delivery_channel_parse(a[2], &ch) != 0)
        return 2;
    long count = atol(a[3]);
    topic_names(a[1], a[2], t);
    config_kv kv[] = {{"linger.ms", "20"},
                      {"batch.num.messages", "10000"},
                      {"queue.buffering.max.messages", "1000000"}};
    config_kafka_props props = {kv, 3};
    kafka_producer *p = kafka_producer_new(a[0], NULL, &props, NULL, err, sizeof err);
    if (p == NULL) {
        fprintf(stderr, "benchtool: %s\n", err);
        return 1;
    }
    for (long i = 0; i < count; i++) {
        delivery d = {0};
        char *json = NULL;
        size_t len;
        if (id_uuid_v4(d.event_id) != 0)
            return 1;
        d.channel = ch;
        snprintf(user, sizeof user, "u-%ld", i);
        if (ch == DELIVERY_EMAIL)
            snprintf(addr, sizeof addr, "user%ld@example.com", i);
        else if (ch == DELIVERY_SMS)
            snprintf(addr, sizeof addr, "+1415%07ld", i % 10000000);
        else
            snprintf(addr, sizeof addr, "token-%ld", i);
        if (delivery_idempotency_key(d.event_id, ch, addr, 0, d.idempotency_key,
                                     sizeof d.idempotency_key) != 0)
            return 1;
        d.user_id = user;
        d.attempt = 1;
        d.address = addr;
        d.body = "Your order A-1 has shipped and will arrive on Tuesday.";
        if (ch == DELIVERY_EMAIL)
            d.subject = "Your order shipped";
        if (ch == DELIVERY_PUSH)
            d.title = "Order shipped";
        d.event_type = "order.shipped";
        d.created_at = timeutil_now_ms();
        if (delivery_serialize(&d, &json, &len) != 0)
            return 1;
        for (int tries = 0; tries < 1000; tries++) {
            kafka_status st =
                kafka_produce(p, t[0], user, strlen(user), json, len, NULL, NULL, err, sizeof err);
            if (st == KAFKA_OK)
                break;
            if (st != KAFKA_QUEUE_FULL) {
                fprintf(stderr, "benchtool: %s\n", err);
                return 1;
            }
            kafka_producer_poll(p, 10);
        }
        free(json);
        if (i % 1000 == 0)
            kafka_producer_poll(p, 0);
    }
    int left = kafka_producer_flush(p, 60000);
    kafka_producer_destroy(p);
    return left == 0 ? 0 : 1;
}

static int teardown(char **a)
{
    char sql[256], err[512], t[3][256];
    topic_names(a[3], a[4], t);
    const char *names[3] = {t[0], t[1], t[2]};
    if (kafka_topics_delete(a[2], NULL, names, 3, 30000, err, sizeof err) != KAFKA_OK)
        fprintf(stderr, "benchtool: %s\n", err);
    PGconn *c = PQconnectdb(a[0]);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", a[1]);
    int rc = PQstatus(c) == CONNECTION_OK ? exec_sql(c, sql) : -1;
    PQfinish(c);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 9 && strcmp(argv[1], "setup") == 0)
        return setup(argv + 2);
    if (argc == 6 && strcmp(argv[1], "produce") == 0)
        return produce(argv + 2);
    if (argc == 7 && strcmp(argv[1], "teardown") == 0)
        return teardown(argv + 2);
    fprintf(stderr, "usage: benchtool setup|produce|teardown ... (see the source)\n");
    return 2;
}

/* Unit tests of common/config: sources and precedence, flag forms, types, errors, secrets, -X. */
#include "testutil.h"

#include "config.h"
#include "log.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

typedef struct test_cfg {
    char *name;
    long workers;
    bool verbose;
    int mode;
    long timeout_ms;
    char *listen;
    long pin;
} test_cfg;

static const char *const modes[] = {"fast", "safe", NULL};

#define F(field) offsetof(test_cfg, field)

static const config_var test_vars[] = {
    {.env = "HERALD_TEST_NAME",
     .flag = "name",
     .type = CONFIG_STRING,
     .def = "alpha",
     .offset = F(name),
     .help = "a name"},
    {.env = "HERALD_TEST_WORKERS",
     .flag = "workers",
     .type = CONFIG_INT,
     .def = "4",
     .offset = F(workers),
     .help = "worker threads",
     .min = 1,
     .max = 100},
    {.env = "HERALD_TEST_VERBOSE",
     .flag = "verbose",
     .type = CONFIG_BOOL,
     .def = "false",
     .offset = F(verbose),
     .help = "say more"},
    {.env = "HERALD_TEST_MODE",
     .flag = "mode",
     .type = CONFIG_ENUM,
     .def = "safe",
     .offset = F(mode),
     .help = "how",
     .choices = modes},
    {.env = "HERALD_TEST_TIMEOUT",
     .flag = "timeout",
     .type = CONFIG_DURATION,
     .def = "5s",
     .offset = F(timeout_ms),
     .help = "request timeout",
     .min = 100,
     .max = 3600000},
    {.env = "HERALD_TEST_LISTEN",
     .flag = "listen",
     .type = CONFIG_ADDR,
     .def = "127.0.0.1:8080",
     .offset = F(listen),
     .help = "listen address"},
    {.env = "HERALD_TEST_PIN",
     .flag = "pin",
     .type = CONFIG_INT,
     .def = "1234",
     .offset = F(pin),
     .help = "a secret number",
     .flags = CONFIG_SECRET,
     .min = 0,
     .max = 9999},
    {0},
};

static test_cfg cfg;
static herald_common_config common;
static config_kafka_props props;
static char err[512];

static void clear_env(void)
{
    static const char *const names[] = {"HERALD_KAFKA_BROKERS",
                                        "HERALD_DATABASE_URL",
                                        "HERALD_TOPIC_PREFIX",
                                        "HERALD_LOG_LEVEL",
                                        "HERALD_LOG_FORMAT",
                                        "HERALD_KAFKA_OPTS",
                                        "HERALD_TEST_NAME",
                                        "HERALD_TEST_WORKERS",
                                        "HERALD_TEST_VERBOSE",
                                        "HERALD_TEST_MODE",
                                        "HERALD_TEST_TIMEOUT",
                                        "HERALD_TEST_LISTEN",
                                        "HERALD_TEST_PIN",
                                        "HERALD_TEST_REQ",
                                        "HERALD_KAFKA_GROUP_INSTANCE_ID",
                                        "HERALD_KAFKA_SESSION_TIMEOUT_MS"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
}

static config_table tables[2];

/* Loads both tables from "prog" + args (NULL-terminated). */
static config_status load_args(int *first, config_kafka_props *p, const char *const *args)
{
    char *argv[32] = {"prog"};
    int argc = 1;
    while (args != NULL && args[argc - 1] != NULL)
        argv[argc] = (char *)args[argc - 1], argc++;
    tables[0] = (config_table){config_common_vars, &common};
    tables[1] = (config_table){test_vars, &cfg};
    err[0] = '\0';
    return config_load(tables, 2, argc, argv, first, p, "usage: prog [options] COMMAND", err,
                       sizeof err);
}

#define LOAD(...) load_args(NULL, &props, (const char *const[]){__VA_ARGS__, NULL})

static void setup(void)
{
    clear_env();
    memset(&cfg, 0, sizeof cfg);
    memset(&common, 0, sizeof common);
    memset(&props, 0, sizeof props);
}

static void teardown(void)
{
    config_free(tables, 2, &props);
}

static void assert_error(config_status st, const char *expect)
{
    ck_assert_int_eq(st, CONFIG_ERROR);
    ck_assert_str_eq(err, expect);
}

/* Everything written to fd 1 while fn runs. */
static char *capture_stdout(config_status *st, const char *const *args)
{
    FILE *f = tmpfile();
    int saved = dup(STDOUT_FILENO);
    fflush(stdout);
    dup2(fileno(f), STDOUT_FILENO);
    *st = load_args(NULL, &props, args);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *buf = calloc(1, (size_t)n + 1);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), n);
    fclose(f);
    return buf;
}

START_TEST(test_defaults_apply_without_env_or_flags)
{
    setup();
    ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
    ck_assert_str_eq(common.kafka_brokers, "127.0.0.1:9092");
    ck_assert_str_eq(common.database_url, "postgresql://127.0.0.1:55432/herald");
    ck_assert_str_eq(common.topic_prefix, "herald.");
    ck_assert_int_eq(common.log_level, LOG_LEVEL_INFO);
    ck_assert_int_eq(common.log_format, LOG_FORMAT_TEXT);
    ck_assert_str_eq(cfg.name, "alpha");
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert(!cfg.verbose);
    ck_assert_int_eq(cfg.mode, 1);
    ck_assert_int_eq(cfg.timeout_ms, 5000);
    ck_assert_str_eq(cfg.listen, "127.0.0.1:8080");
    ck_assert_int_eq(props.count, 0);
    teardown();
}

START_TEST(test_env_overrides_default_and_flag_overrides_env)
{
    setup();
    setenv("HERALD_KAFKA_BROKERS", "k1:9092,k2:9092", 1);
    setenv("HERALD_TEST_WORKERS", "8", 1);
    setenv("HERALD_LOG_LEVEL", "debug", 1);
    ck_assert_int_eq(LOAD("--workers", "16"), CONFIG_OK);
    ck_assert_str_eq(common.kafka_brokers, "k1:9092,k2:9092");
    ck_assert_int_eq(common.log_level, LOG_LEVEL_DEBUG);
    ck_assert_int_eq(cfg.workers, 16);
    teardown();
}

START_TEST(test_flags_take_space_or_equals_forms)
{
    setup();
    ck_assert_int_eq(LOAD("--name", "beta", "--brokers=b:1", "--log-format=json", "--mode", "fast"),
                     CONFIG_OK);
    ck_assert_str_eq(cfg.name, "beta");
    ck_assert_str_eq(common.kafka_brokers, "b:1");
    ck_assert_int_eq(common.log_format, LOG_FORMAT_JSON);
    ck_assert_int_eq(cfg.mode, 0);
    teardown();
}

START_TEST(test_flag_value_may_start_with_a_dash)
{
    setup();
    ck_assert_int_eq(LOAD("--name", "-15m", "--name=--x"), CONFIG_OK);
    ck_assert_str_eq(cfg.name, "--x");
    teardown();
}

START_TEST(test_bool_flag_takes_no_value)
{
    setup();
    int first = -1;
    ck_assert_int_eq(load_args(&first, &props, (const char *const[]){"--verbose", "false", NULL}),
                     CONFIG_OK);
    ck_assert(cfg.verbose);
    ck_assert_int_eq(first, 2); /* "false" is the first positional */
    teardown();
}

START_TEST(test_bool_accepts_common_spellings)
{
    static const char *const yes[] = {"1", "true", "YES", "on"};
    static const char *const no[] = {"0", "False", "no", "OFF"};
    for (size_t i = 0; i < 4; i++) {
        setup();
        setenv("HERALD_TEST_VERBOSE", yes[i], 1);
        ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
        ck_assert_msg(cfg.verbose, "%s", yes[i]);
        teardown();
        setup();
        setenv("HERALD_TEST_VERBOSE", "true", 1);
        char flag[32];
        snprintf(flag, sizeof flag, "--verbose=%s", no[i]);
        ck_assert_int_eq(LOAD(flag), CONFIG_OK);
        ck_assert_msg(!cfg.verbose, "%s", no[i]);
        teardown();
    }
    setup();
    setenv("HERALD_TEST_VERBOSE", "maybe", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_TEST_VERBOSE: expected true or false (or 1/0, yes/no, on/off), got "
                 "\"maybe\"");
    teardown();
}

START_TEST(test_parsing_stops_at_first_positional)
{
    setup();
    int first = -1;
    ck_assert_int_eq(
        load_args(&first, &props,
                  (const char *const[]){"--workers", "2", "replay", "--from", "-15m", NULL}),
        CONFIG_OK);
    ck_assert_int_eq(first, 3);
    ck_assert_int_eq(cfg.workers, 2);
    teardown();

    setup();
    ck_assert_int_eq(load_args(&first, &props, (const char *const[]){"--", "--workers", NULL}),
                     CONFIG_OK);
    ck_assert_int_eq(first, 2);
    ck_assert_int_eq(cfg.workers, 4);
    teardown();

    setup();
    ck_assert_int_eq(load_args(&first, &props, (const char *const[]){"--verbose", NULL}),
                     CONFIG_OK);
    ck_assert_int_eq(first, 2); /* argc: no positional */
    teardown();

    setup();
    ck_assert_int_eq(load_args(&first, &props, (const char *const[]){"-", NULL}), CONFIG_OK);
    ck_assert_int_eq(first, 1);
    teardown();
}

START_TEST(test_positional_is_an_error_for_daemons)
{
    setup();
    assert_error(LOAD("--verbose", "extra"), "unexpected argument \"extra\" (see --help)");
    teardown();
}

START_TEST(test_help_prints_usage_and_every_setting)
{
    setup();
    config_status st;
    char *out = capture_stdout(&st, (const char *const[]){"--workers", "3", "--help", NULL});
    ck_assert_int_eq(st, CONFIG_HELP);
    ck_assert_ptr_nonnull(strstr(out, "usage: prog [options] COMMAND\n"));
    ck_assert_ptr_nonnull(strstr(out, "--brokers VALUE"));
    ck_assert_ptr_nonnull(strstr(out, "HERALD_KAFKA_BROKERS"));
    ck_assert_ptr_nonnull(strstr(out, "[default: 127.0.0.1:9092]"));
    ck_assert_ptr_nonnull(strstr(out, "--log-level debug|info|warn|error"));
    ck_assert_ptr_nonnull(strstr(out, "--workers N"));
    ck_assert_ptr_nonnull(strstr(out, "(1..100)"));
    ck_assert_ptr_nonnull(strstr(out, "(100ms..1h)"));
    ck_assert_ptr_nonnull(strstr(out, "-X KEY=VALUE"));
    ck_assert_ptr_nonnull(strstr(out, "HERALD_DATABASE_URL"));
    ck_assert_ptr_nonnull(strstr(out, "[default: (secret)]"));
    ck_assert_ptr_null(strstr(out, "55432"));
    ck_assert_ptr_null(strstr(out, "1234"));
    free(out);
    teardown();

    setup();
    out = capture_stdout(&st, (const char *const[]){"-h", NULL});
    ck_assert_int_eq(st, CONFIG_HELP);
    ck_assert_ptr_nonnull(strstr(out, "usage:"));
    free(out);
    teardown();
}

START_TEST(test_unknown_flag_is_an_error_naming_it)
{
    setup();
    assert_error(LOAD("--brokrs", "x"), "unknown flag --brokrs (see --help)");
    teardown();
    setup();
    assert_error(LOAD("--pim=4321"), "unknown flag --pim (see --help)");
    teardown();
    setup();
    assert_error(LOAD("-q"), "unknown flag -q (see --help)");
    teardown();
}

START_TEST(test_missing_flag_value_is_an_error)
{
    setup();
    assert_error(LOAD("--workers"), "--workers: expected a value");
    teardown();
}

START_TEST(test_bad_int_names_the_variable_and_range)
{
    static const char *const bad[] = {"abc", "0", "101", "5x", " 5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup();
        setenv("HERALD_TEST_WORKERS", bad[i], 1);
        char expect[256];
        snprintf(expect, sizeof expect,
                 "HERALD_TEST_WORKERS: expected an integer in 1..100, got \"%s\"", bad[i]);
        assert_error(load_args(NULL, &props, NULL), expect);
        teardown();
    }
    setup();
    assert_error(LOAD("--workers", "-1"), "--workers: expected an integer in 1..100, got \"-1\"");
    teardown();
}

START_TEST(test_bad_enum_names_the_variable_and_choices)
{
    setup();
    setenv("HERALD_LOG_LEVEL", "loud", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_LOG_LEVEL: expected one of debug|info|warn|error, got \"loud\"");
    teardown();
    setup();
    setenv("HERALD_LOG_LEVEL", "WARN", 1);
    ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
    ck_assert_int_eq(common.log_level, LOG_LEVEL_WARN);
    teardown();
}

START_TEST(test_duration_accepts_units_and_bare_milliseconds)
{
    static const struct {
        const char *text;
        long ms;
    } ok[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"1500", 1500}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setup();
        ck_assert_int_eq(LOAD("--timeout", ok[i].text), CONFIG_OK);
        ck_assert_int_eq(cfg.timeout_ms, ok[i].ms);
        teardown();
    }
}

START_TEST(test_duration_rejects_unknown_unit)
{
    static const char *const bad[] = {"5x", "5 s", "-5s", "s", "1.5s", "5sec", "", "5S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup();
        char expect[256];
        snprintf(expect, sizeof expect,
                 "--timeout: expected a duration from 100ms to 1h (like 250ms, 5s, 2m, 1h), got "
                 "\"%s\"",
                 bad[i]);
        assert_error(LOAD("--timeout", bad[i]), expect);
        teardown();
    }
}

START_TEST(test_duration_enforces_bounds)
{
    setup();
    setenv("HERALD_TEST_TIMEOUT", "50ms", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_TEST_TIMEOUT: expected a duration from 100ms to 1h (like 250ms, 5s, 2m, "
                 "1h), got \"50ms\"");
    teardown();
    setup();
    assert_error(LOAD("--timeout=2h"), "--timeout: expected a duration from 100ms to 1h (like "
                                       "250ms, 5s, 2m, 1h), got \"2h\"");
    teardown();
}

START_TEST(test_addr_requires_host_and_port_in_range_0_meaning_any)
{
    static const char *const good[] = {"0.0.0.0:80", "[::1]:8080", "localhost:65535",
                                       "127.0.0.1:0"};
    static const char *const bad[] = {"8080",  ":8080",    "host:-1",    "host:65536",
                                      "host:", "::1:8080", "[::1]8080",  "host:80x",
                                      "[]:80", "a b:80",   "host:123456"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setup();
        ck_assert_int_eq(LOAD("--listen", good[i]), CONFIG_OK);
        ck_assert_str_eq(cfg.listen, good[i]);
        teardown();
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup();
        setenv("HERALD_TEST_LISTEN", bad[i], 1);
        char expect[256];
        snprintf(expect, sizeof expect,
                 "HERALD_TEST_LISTEN: expected host:port with a port in 0..65535, got \"%s\"",
                 bad[i]);
        assert_error(load_args(NULL, &props, NULL), expect);
        teardown();
    }
}

START_TEST(test_secret_values_never_appear_in_errors)
{
    setup();
    setenv("HERALD_TEST_PIN", "hunter2", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_TEST_PIN: expected an integer in 0..9999, got (secret)");
    teardown();
    setup();
    assert_error(LOAD("--pin=hunter2"), "--pin: expected an integer in 0..9999, got (secret)");
    teardown();
}

START_TEST(test_dump_hides_secrets_and_url_passwords)
{
    setup();
    setenv("HERALD_DATABASE_URL", "postgresql://h:pw1@db/herald", 1);
    setenv("HERALD_TEST_NAME", "smtp://u:pw2@mail:25", 1);
    ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_dump(f, tables, 2);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "HERALD_DATABASE_URL=(secret)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "HERALD_TEST_NAME=smtp://u:***@mail:25\n"));
    ck_assert_ptr_nonnull(strstr(buf, "HERALD_TEST_PIN=(secret)\n"));
    ck_assert_ptr_nonnull(strstr(buf, "HERALD_TEST_TIMEOUT=5s\n"));
    ck_assert_ptr_nonnull(strstr(buf, "HERALD_LOG_LEVEL=info\n"));
    ck_assert_ptr_null(strstr(buf, "pw1"));
    ck_assert_ptr_null(strstr(buf, "pw2"));
    ck_assert_ptr_null(strstr(buf, "1234"));
    free(buf);
    teardown();
}

START_TEST(test_topic_prefix_is_validated)
{
    setup();
    setenv("HERALD_TOPIC_PREFIX", "bad prefix!", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_TOPIC_PREFIX: expected at most 100 characters of A-Z a-z 0-9 . _ -, got "
                 "\"bad prefix!\"");
    teardown();

    char long_prefix[102];
    memset(long_prefix, 'p', 101);
    long_prefix[101] = '\0';
    setup();
    ck_assert_int_eq(LOAD("--topic-prefix", long_prefix), CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "--topic-prefix: expected at most 100 characters"));
    ck_assert_ptr_nonnull(strstr(err, "...\"")); /* the quoted value is shortened */
    teardown();

    setup();
    ck_assert_int_eq(LOAD("--topic-prefix", "Prod.herald-v2_"), CONFIG_OK);
    ck_assert_str_eq(common.topic_prefix, "Prod.herald-v2_");
    teardown();
}

START_TEST(test_brokers_and_database_url_are_validated)
{
    const char *bad_brokers[] = {"", ",", "a:9092,", "a:9092,,b:9092", "a :9092"};
    for (size_t i = 0; i < sizeof bad_brokers / sizeof bad_brokers[0]; i++) {
        setup();
        setenv("HERALD_KAFKA_BROKERS", bad_brokers[i], 1);
        ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_ERROR);
        ck_assert_msg(strstr(err, "HERALD_KAFKA_BROKERS: expected host:port") == err, "%s", err);
        teardown();
    }
    setup();
    setenv("HERALD_KAFKA_BROKERS", "k1:9092,k2:9092", 1);
    setenv("HERALD_DATABASE_URL", "host=db user=h password=s3cret dbname=herald", 1);
    ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
    ck_assert_str_eq(common.kafka_brokers, "k1:9092,k2:9092");
    teardown();

    const char *bad_urls[] = {"postgresql://u:s3cret@db/herald?bogus=1", "host=db password",
                              "postgresql://u:s3cret@[db/herald"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        setup();
        setenv("HERALD_DATABASE_URL", bad_urls[i], 1);
        ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_ERROR);
        ck_assert_msg(strstr(err, "HERALD_DATABASE_URL: expected a libpq connection string") == err,
                      "%s", err);
        ck_assert_msg(strstr(err, "s3cret") == NULL, "%s", err);
        teardown();
    }
}
END_TEST

START_TEST(test_empty_env_counts_as_unset_except_for_strings)
{
    setup();
    setenv("HERALD_TEST_WORKERS", "", 1);
    setenv("HERALD_LOG_LEVEL", "", 1);
    setenv("HERALD_TOPIC_PREFIX", "", 1);
    ck_assert_int_eq(load_args(NULL, &props, NULL), CONFIG_OK);
    ck_assert_int_eq(cfg.workers, 4);
    ck_assert_int_eq(common.log_level, LOG_LEVEL_INFO);
    ck_assert_str_eq(common.topic_prefix, "");
    teardown();
}

START_TEST(test_config_topic_joins_prefix_and_name)
{
    herald_common_config c = {.topic_prefix = "herald."};
    char out[64], small[8];
    ck_assert_str_eq(config_topic(&c, "deliveries.email", out, sizeof out),
                     "herald.deliveries.email");
    ck_assert_str_eq(config_topic(&c, "events", small, sizeof small), "herald.");
    c.topic_prefix = NULL;
    ck_assert_str_eq(config_topic(&c, "dlq", out, sizeof out), "dlq");
}

START_TEST(test_x_pairs_collect_and_a_later_key_wins)
{
    setup();
    ck_assert_int_eq(
        LOAD("-X", "acks=all", "-Xlinger.ms=5", "-X", "acks=1", "-X", "sasl.jaas.config=a=b"),
        CONFIG_OK);
    ck_assert_int_eq(props.count, 3);
    ck_assert_str_eq(props.items[0].key, "acks");
    ck_assert_str_eq(props.items[0].value, "1");
    ck_assert_str_eq(props.items[1].key, "linger.ms");
    ck_assert_str_eq(props.items[1].value, "5");
    ck_assert_str_eq(props.items[2].key, "sasl.jaas.config");
    ck_assert_str_eq(props.items[2].value, "a=b");
    teardown();
}

START_TEST(test_kafka_opts_env_is_split_on_whitespace_and_flags_override_it)
{
    setup();
    setenv("HERALD_KAFKA_OPTS", "  linger.ms=5\tacks=all \n compression.type=zstd ", 1);
    ck_assert_int_eq(LOAD("-X", "acks=1"), CONFIG_OK);
    ck_assert_int_eq(props.count, 3);
    ck_assert_str_eq(props.items[0].key, "linger.ms");
    ck_assert_str_eq(props.items[1].key, "acks");
    ck_assert_str_eq(props.items[1].value, "1");
    ck_assert_str_eq(props.items[2].value, "zstd");
    teardown();
}

START_TEST(test_kafka_pair_without_equals_is_rejected_without_echo)
{
    setup();
    assert_error(LOAD("-X", "sasl.password"), "-X: expected key=value (a librdkafka property)");
    teardown();
    setup();
    assert_error(LOAD("-X"), "-X: expected key=value (a librdkafka property)");
    teardown();
    setup();
    setenv("HERALD_KAFKA_OPTS", "sasl.password= hunter2", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_KAFKA_OPTS (item 2): expected key=value (a librdkafka property)");
    teardown();
}

START_TEST(test_x_is_unknown_when_the_program_takes_no_kafka_props)
{
    setup();
    assert_error(load_args(NULL, NULL, (const char *const[]){"-X", "a=1", NULL}),
                 "unknown flag -X (see --help)");
    teardown();
}

START_TEST(test_required_setting_missing_is_an_error)
{
    typedef struct req_cfg {
        char *req;
    } req_cfg;
    static const config_var req_vars[] = {
        {.env = "HERALD_TEST_REQ",
         .flag = "req",
         .type = CONFIG_STRING,
         .offset = offsetof(req_cfg, req),
         .help = "needed",
         .flags = CONFIG_REQUIRED},
        {0},
    };
    clear_env();
    req_cfg rc = {0};
    config_table t = {req_vars, &rc};
    char *argv[] = {"prog", NULL};
    char e[256];
    ck_assert_int_eq(config_load(&t, 1, 1, argv, NULL, NULL, "", e, sizeof e), CONFIG_ERROR);
    ck_assert_str_eq(e, "HERALD_TEST_REQ: required, set it or pass --req");
    setenv("HERALD_TEST_REQ", "", 1);
    ck_assert_int_eq(config_load(&t, 1, 1, argv, NULL, NULL, "", e, sizeof e), CONFIG_ERROR);
    setenv("HERALD_TEST_REQ", "x", 1);
    ck_assert_int_eq(config_load(&t, 1, 1, argv, NULL, NULL, "", e, sizeof e), CONFIG_OK);
    ck_assert_str_eq(rc.req, "x");
    config_free(&t, 1, NULL);
    ck_assert_ptr_null(rc.req);
}

START_TEST(test_parse_value_applies_the_var_rules)
{
    setup();
    ck_assert_int_eq(config_parse_value(&test_vars[1], "7", &cfg, err, sizeof err), 0);
    ck_assert_int_eq(cfg.workers, 7);
    ck_assert_int_eq(config_parse_value(&test_vars[1], "x", &cfg, err, sizeof err), -1);
    ck_assert_str_eq(err, "--workers: expected an integer in 1..100, got \"x\"");
    ck_assert_int_eq(config_parse_value(&test_vars[0], "n1", &cfg, err, sizeof err), 0);
    ck_assert_int_eq(config_parse_value(&test_vars[0], "n2", &cfg, err, sizeof err), 0);
    ck_assert_str_eq(cfg.name, "n2");
    tables[0] = (config_table){config_common_vars, &common};
    tables[1] = (config_table){test_vars, &cfg};
    teardown();
}

START_TEST(test_loading_twice_replaces_strings_without_leaking)
{
    setup();
    ck_assert_int_eq(LOAD("--name", "one"), CONFIG_OK);
    ck_assert_int_eq(LOAD("--name", "two", "-X", "a=1"), CONFIG_OK);
    ck_assert_str_eq(cfg.name, "two");
    teardown();
    ck_assert_ptr_null(cfg.name);
    ck_assert_ptr_null(common.kafka_brokers);
    ck_assert_int_eq(props.count, 0);
}

START_TEST(test_error_quotes_control_characters_escaped)
{
    setup();
    setenv("HERALD_LOG_FORMAT", "js\"on\n", 1);
    assert_error(load_args(NULL, &props, NULL),
                 "HERALD_LOG_FORMAT: expected one of text|json, got \"js\\\"on\\x0a\"");
    teardown();
}

/* Loads the shared settings and a group member's, as a consumer daemon does. */
static config_status load_member(void)
{
    const config_table t[] = {{config_common_vars, &common}, {config_member_vars, &common}};
    err[0] = '\0';
    return config_load(t, 2, 1, (char *[]){"prog", NULL}, NULL, &props, "usage: prog", err,
                       sizeof err);
}

static void free_member(void)
{
    const config_table t[] = {{config_common_vars, &common}, {config_member_vars, &common}};
    config_free(t, 2, &props);
}

START_TEST(test_group_member_defaults_are_dynamic_with_a_15s_session)
{
    setup();
    ck_assert_int_eq(load_member(), CONFIG_OK);
    ck_assert_ptr_null(common.member.instance_id);
    ck_assert_int_eq(common.member.session_timeout_ms, 15000);
    free_member();
}
END_TEST

START_TEST(test_group_instance_id_follows_kafka_rules_and_names_the_variable)
{
    char longest[CONFIG_GROUP_INSTANCE_ID_MAX + 2];
    memset(longest, 'a', sizeof longest - 2);
    longest[sizeof longest - 2] = '\0';
    static const char *const good[] = {"herald-worker-email", "w.1_A-b", "0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        setup();
        setenv("HERALD_KAFKA_GROUP_INSTANCE_ID", good[i], 1);
        ck_assert_msg(load_member() == CONFIG_OK, "%s: %s", good[i], err);
        ck_assert_str_eq(common.member.instance_id, good[i]);
        free_member();
    }
    setup();
    setenv("HERALD_KAFKA_GROUP_INSTANCE_ID", longest, 1);
    ck_assert_int_eq(load_member(), CONFIG_OK);
    ck_assert_uint_eq(strlen(common.member.instance_id), CONFIG_GROUP_INSTANCE_ID_MAX);
    free_member();

    strcat(longest, "a"); /* 250 */
    const char *const bad[] = {"", "a b", "worker/1", "w:1", "w\u00e9", longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup();
        setenv("HERALD_KAFKA_GROUP_INSTANCE_ID", bad[i], 1);
        ck_assert_int_eq(load_member(), CONFIG_ERROR);
        static const char want[] = "HERALD_KAFKA_GROUP_INSTANCE_ID: expected 1 to 249 "
                                   "characters of A-Z a-z 0-9 . _ -, got \"";
        ck_assert_msg(strncmp(err, want, sizeof want - 1) == 0, "%s", err);
        free_member();
    }
}
END_TEST

START_TEST(test_session_timeout_is_bounded_and_names_the_variable)
{
    setup();
    setenv("HERALD_KAFKA_SESSION_TIMEOUT_MS", "45000", 1);
    ck_assert_int_eq(load_member(), CONFIG_OK);
    ck_assert_int_eq(common.member.session_timeout_ms, 45000);
    free_member();
    setup();
    setenv("HERALD_KAFKA_SESSION_TIMEOUT_MS", "30s", 1);
    ck_assert_int_eq(load_member(), CONFIG_OK);
    ck_assert_int_eq(common.member.session_timeout_ms, 30000);
    free_member();
    static const char *const bad[] = {"5999", "300001", "1h", "fast"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setup();
        setenv("HERALD_KAFKA_SESSION_TIMEOUT_MS", bad[i], 1);
        ck_assert_int_eq(load_member(), CONFIG_ERROR);
        char want[200];
        snprintf(want, sizeof want,
                 "HERALD_KAFKA_SESSION_TIMEOUT_MS: expected a duration from 6s to 5m (like 250ms, "
                 "5s, 2m, 1h), got \"%s\"",
                 bad[i]);
        ck_assert_str_eq(err, want);
        free_member();
    }
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_defaults_apply_without_env_or_flags),
    TEST_ENTRY(test_env_overrides_default_and_flag_overrides_env),
    TEST_ENTRY(test_flags_take_space_or_equals_forms),
    TEST_ENTRY(test_flag_value_may_start_with_a_dash),
    TEST_ENTRY(test_bool_flag_takes_no_value),
    TEST_ENTRY(test_bool_accepts_common_spellings),
    TEST_ENTRY(test_parsing_stops_at_first_positional),
    TEST_ENTRY(test_positional_is_an_error_for_daemons),
    TEST_ENTRY(test_help_prints_usage_and_every_setting),
    TEST_ENTRY(test_unknown_flag_is_an_error_naming_it),
    TEST_ENTRY(test_missing_flag_value_is_an_error),
    TEST_ENTRY(test_bad_int_names_the_variable_and_range),
    TEST_ENTRY(test_bad_enum_names_the_variable_and_choices),
    TEST_ENTRY(test_duration_accepts_units_and_bare_milliseconds),
    TEST_ENTRY(test_duration_rejects_unknown_unit),
    TEST_ENTRY(test_duration_enforces_bounds),
    TEST_ENTRY(test_addr_requires_host_and_port_in_range_0_meaning_any),
    TEST_ENTRY(test_secret_values_never_appear_in_errors),
    TEST_ENTRY(test_dump_hides_secrets_and_url_passwords),
    TEST_ENTRY(test_topic_prefix_is_validated),
    TEST_ENTRY(test_brokers_and_database_url_are_validated),
    TEST_ENTRY(test_empty_env_counts_as_unset_except_for_strings),
    TEST_ENTRY(test_config_topic_joins_prefix_and_name),
    TEST_ENTRY(test_x_pairs_collect_and_a_later_key_wins),
    TEST_ENTRY(test_kafka_opts_env_is_split_on_whitespace_and_flags_override_it),
    TEST_ENTRY(test_kafka_pair_without_equals_is_rejected_without_echo),
    TEST_ENTRY(test_x_is_unknown_when_the_program_takes_no_kafka_props),
    TEST_ENTRY(test_required_setting_missing_is_an_error),
    TEST_ENTRY(test_parse_value_applies_the_var_rules),
    TEST_ENTRY(test_loading_twice_replaces_strings_without_leaking),
    TEST_ENTRY(test_error_quotes_control_characters_escaped),
    TEST_ENTRY(test_group_member_defaults_are_dynamic_with_a_15s_session),
    TEST_ENTRY(test_group_instance_id_follows_kafka_rules_and_names_the_variable),
    TEST_ENTRY(test_session_timeout_is_bounded_and_names_the_variable),
};

TEST_MAIN("config", cases)

/*
 * cmdutil_parse_sub: "heraldctl CMD SUB [ARGS...] [flags]" finds the
 * subcommand and its arguments, parses the flags after them, and refuses
 * what is missing, unknown or extra with the usage exit code.
 */
#include <stddef.h>
#include <stdlib.h>

#include "cmdutil.h"
#include "config.h"
#include "testutil.h"

typedef struct flags {
    char *detail;
    bool json;
} flags;

static const config_var vars[] = {
    {.flag = "detail", .type = CONFIG_STRING, .offset = offsetof(flags, detail), .help = "d"},
    {.flag = "json", .type = CONFIG_BOOL, .offset = offsetof(flags, json), .help = "j"},
    {0},
};

static bool is_digit(const char *s)
{
    return s[0] >= '0' && s[0] <= '9';
}

static const cmdutil_sub subs[] = {
    {"list", 0, NULL, NULL},
    {"add", 2, "CHANNEL ADDRESS", NULL},
    {"show", 1, "a NUMBER", is_digit},
};

static int parse(flags *f, cmdutil_subcmd *c, int argc, char **argv)
{
    *f = (flags){0};
    return cmdutil_parse_sub("thing", "usage: thing", subs, 3, vars, f, argc, argv, c);
}

static void release(flags *f)
{
    const config_table t = {vars, f};
    config_free(&t, 1, NULL);
}

START_TEST(test_subcommand_arguments_and_flags_are_found)
{
    flags f;
    cmdutil_subcmd c;
    char *argv[] = {"thing", "add", "email", "a@example.com", "--detail", "why", "--json"};
    ck_assert_int_eq(parse(&f, &c, 7, argv), -1);
    ck_assert_str_eq(c.sub->name, "add");
    ck_assert_str_eq(c.name, "thing add");
    ck_assert_str_eq(c.args[0], "email");
    ck_assert_str_eq(c.args[1], "a@example.com");
    ck_assert_str_eq(f.detail, "why");
    ck_assert(f.json);
    release(&f);
}
END_TEST

START_TEST(test_missing_unknown_invalid_or_extra_is_a_usage_error)
{
    flags f;
    cmdutil_subcmd c;
    char *none[] = {"thing"};
    char *unknown[] = {"thing", "frob"};
    char *short_args[] = {"thing", "add", "email"};
    char *flag_as_arg[] = {"thing", "add", "email", "--json"};
    char *invalid[] = {"thing", "show", "x1"};
    char *extra[] = {"thing", "list", "more"};
    char *bad_flag[] = {"thing", "list", "--nope"};
    ck_assert_int_eq(parse(&f, &c, 1, none), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 2, unknown), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 3, short_args), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 4, flag_as_arg), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 3, invalid), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 3, extra), CTL_EXIT_USAGE);
    ck_assert_int_eq(parse(&f, &c, 3, bad_flag), CTL_EXIT_USAGE);
    release(&f);
}
END_TEST

START_TEST(test_help_exits_zero)
{
    flags f;
    cmdutil_subcmd c;
    char *help[] = {"thing", "--help"};
    char *sub_help[] = {"thing", "show", "7", "--help"};
    ck_assert_int_eq(parse(&f, &c, 2, help), CTL_EXIT_OK);
    ck_assert_int_eq(parse(&f, &c, 4, sub_help), CTL_EXIT_OK);
    release(&f);
}
END_TEST

static const test_case_entry cases[] = {
    TEST_ENTRY(test_subcommand_arguments_and_flags_are_found),
    TEST_ENTRY(test_missing_unknown_invalid_or_extra_is_a_usage_error),
    TEST_ENTRY(test_help_exits_zero),
};

TEST_MAIN("ctl_subcmd", cases)

/* `tessera`: the command-line tool. Subcommands: demo, info, version, help. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tessera_cli.h"

static int cli_version(int argc, char **argv);
static int cli_help(int argc, char **argv);

struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct cli_command commands[] = {
    {"demo", "run a blocked matrix multiply as a task graph and check it", cli_demo},
    {"info", "print the version, CPU workers, policy and backends built", cli_info},
    {"version", "print the library version", cli_version},
    {"help", "print this text", cli_help},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: tessera <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(out,
            "\n`tessera <command> --help` describes a command's options. The runtime\n"
            "reads TESSERA_NCPUS, TESSERA_SCHED, TESSERA_TRACE and TESSERA_LOG_LEVEL.\n");
}

static int cli_help(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    usage(stdout);
    return CLI_EXIT_OK;
}

static int cli_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "tessera version: takes no arguments\n");
        return CLI_EXIT_USAGE;
    }
    printf("tessera %s\n", tsr_version());
    return CLI_EXIT_OK;
}

void cli_print_error(const char *cmd, const char *what, tsr_status_t st)
{
    const char *detail = tsr_last_error();

    fprintf(stderr, "tessera %s: %s failed: %s%s%s\n", cmd, what, tsr_status_str(st),
            detail[0] != '\0' ? ": " : "", detail);
}

int cli_parse_long(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = text != NULL ? strtol(text, &end, 10) : 0;
    if (text == NULL || end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "tessera %s: %s needs an integer in [%ld, %ld], got '%s'\n", cmd, opt, lo,
                hi, text != NULL ? text : "");
        return 1;
    }
    *out = v;
    return 0;
}

int cli_parse_policy(const char *cmd, const char *text, tsr_sched_policy_t *out)
{
    if (text != NULL && strcmp(text, "eager") == 0) {
        *out = TSR_SCHED_EAGER;
        return 0;
    }
    if (text != NULL && strcmp(text, "ws") == 0) {
        *out = TSR_SCHED_WS;
        return 0;
    }
    fprintf(stderr, "tessera %s: --policy must be eager or ws, got '%s'\n", cmd,
            text != NULL ? text : "");
    return 1;
}

int main(int argc, char **argv)
{
    const char *name = argc > 1 ? argv[1] : NULL;

    if (name == NULL) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        return cli_help(argc - 1, argv + 1);
    }
    if (strcmp(name, "--version") == 0) {
        return cli_version(1, argv + 1);
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(name, commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "tessera: unknown command '%s' (see tessera --help)\n", name);
    return CLI_EXIT_USAGE;
}

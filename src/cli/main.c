/* main.c - the errgate binary: one program, subcommands dispatched here. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"serve", eg_cmd_serve, "run the gateway (errgate serve --config FILE)"},
    {"check-config", eg_cmd_check_config, "validate a gateway configuration file"},
    {"demo-upstream", eg_cmd_demo_upstream, "run the demo HTTP service for the gateway"},
    {"translate", eg_cmd_translate, "read an error body on stdin, write it in another dialect"},
    {"docs", eg_cmd_docs, "print the error reference generated from the catalog"},
    {"catalog", eg_cmd_catalog, "list the error catalog"},
    {"call", eg_cmd_call, "make an HTTP request, retrying as the error pages advise"},
    {"keys", eg_cmd_keys, "create, list, suspend, resume, revoke and rotate API keys"},
    {"validate", eg_cmd_validate, "check a JSON value on stdin against a JSON Schema"},
    {"alerts", eg_cmd_alerts, "print the alert rules, or write them as Prometheus alerting rules"},
    {"usage", eg_cmd_usage, "usage totals per key for a period (table, JSON, CSV for billing)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate <command> [options]\n       errgate --version\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'errgate <command> --help' for a command's options.\n"
               "Exit codes: 0 success, 2 bad arguments, 3 bad input, 70 internal failure\n"
               "('errgate call' documents its own).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EG_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("errgate %s\n", eg_version());
        return EG_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return EG_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    eg_cli_fail(EG_EXIT_USAGE, "unknown command '%s' (try 'errgate --help')", argv[1]);
    return EG_EXIT_USAGE;
}

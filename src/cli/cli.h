/* cli.h - what the subcommands share: loading the catalog and dialects the
 * user named, reading input, and reporting errors as one line on stderr. */
#ifndef EG_CLI_H
#define EG_CLI_H

#include <stddef.h>
#include <stdio.h>
#include "errgate/errgate.h"

/* Prints "errgate: <message>" on stderr and returns `code`. */
int eg_cli_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a report of several lines (a configuration's problems):
 * each line gets the prefix. */
int eg_cli_fail_lines(int code, const char *text);

/* The argument loop of the commands whose one option is --config FILE
 * (serve, check-config): sets *path from --config, leaves optind on the
 * first other argument. --help prints usage(stdout) and gives EG_EXIT_OK;
 * a bad option is "<cmd>: bad option '...' (see --help)" and
 * EG_EXIT_USAGE; -1: parsed, go on. */
int eg_cli_config_option(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                         const char **path);

/* Builds the built-in catalog and applies `file` (may be NULL). Returns an
 * exit code (EG_EXIT_OK on success) after printing any problem. */
int eg_cli_catalog(const char *file, eg_catalog_t **out);

/* Builds the built-in dialects plus the files given (may be 0). */
int eg_cli_dialects(char **files, size_t nfiles, eg_dialects_t **out);

/* Reads all of `f` into a malloc'd buffer (NUL-terminated) up to `max` bytes. */
int eg_cli_read_all(FILE *f, size_t max, char **out, size_t *len);

/* Parses an HTTP status 100..599; returns 0 on success. */
int eg_cli_parse_status(const char *s, int *out);

#endif

/* cli.c - helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

int eg_cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fputs("errgate: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int eg_cli_fail_lines(int code, const char *text)
{
    do {
        const char *nl = strchr(text, '\n');
        int n = nl ? (int)(nl - text) : (int)strlen(text);
        fprintf(stderr, "errgate: %.*s\n", n, text);
        text = nl ? nl + 1 : NULL;
    } while (text);
    return code;
}

int eg_cli_config_option(int argc, char **argv, const char *cmd, void (*usage)(FILE *),
                         const char **path)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        if (c == 'c') {
            *path = optarg;
        } else if (c == 'h') {
            usage(stdout);
            return EG_EXIT_OK;
        } else {
            return eg_cli_fail(EG_EXIT_USAGE, "%s: bad option '%s' (see --help)", cmd,
                               argv[optind - 1]);
        }
    }
    return -1;
}

int eg_cli_catalog(const char *file, eg_catalog_t **out)
{
    eg_catalog_t *cat = NULL;
    if (eg_catalog_new_builtin(&cat) != EG_OK) return eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
    if (file) {
        char err[512];
        int rc = eg_catalog_load_file(cat, file, err, sizeof(err));
        if (rc != EG_OK) {
            eg_catalog_free(cat);
            return eg_cli_fail(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, "%s", err);
        }
    }
    *out = cat;
    return EG_EXIT_OK;
}

int eg_cli_dialects(char **files, size_t nfiles, eg_dialects_t **out)
{
    eg_dialects_t *set = NULL;
    if (eg_dialects_new_builtin(&set) != EG_OK)
        return eg_cli_fail(EG_EXIT_SOFTWARE, "cannot load the built-in dialects");
    for (size_t i = 0; i < nfiles; i++) {
        char err[512];
        eg_dialect_t *d = NULL;
        int rc = eg_dialect_load_file(files[i], &d, err, sizeof(err));
        if (rc == EG_OK && (rc = eg_dialects_add(set, d)) != EG_OK) eg_dialect_free(d);
        if (rc != EG_OK) {
            eg_dialects_free(set);
            if (rc == EG_ENOMEM) return eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
            return eg_cli_fail(EG_EXIT_INPUT, "%s", err);
        }
    }
    *out = set;
    return EG_EXIT_OK;
}

int eg_cli_read_all(FILE *f, size_t max, char **out, size_t *len)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    if (!buf) return EG_ENOMEM;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= max + 1) {
                free(buf);
                return EG_ETOOBIG;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *p = realloc(buf, ncap);
            if (!p) {
                free(buf);
                return EG_ENOMEM;
            }
            buf = p;
            cap = ncap;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    if (ferror(f)) {
        free(buf);
        return EG_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return EG_OK;
}

int eg_cli_parse_status(const char *s, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !*s || *end || v < 100 || v > 599) return -1;
    *out = (int)v;
    return 0;
}

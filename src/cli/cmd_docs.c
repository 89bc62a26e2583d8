/* cmd_docs.c - `errgate docs`: the error reference page from the catalog. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate docs [--format markdown|html] [--dialect D] [--catalog FILE]\n"
               "                    [--dialect-file FILE]...\n\n"
               "Prints the error reference generated from the active catalog: the error\n"
               "format of dialect D (default problem), the status codes, every code with an\n"
               "example, and the retry strategy.\n"
               "Exit codes: 0 printed, 2 bad arguments, 3 bad catalog or dialect file.\n");
}

int eg_cmd_docs(int argc, char **argv)
{
    static const struct option opts[] = {
        {"format", required_argument, NULL, 'f'},       {"dialect", required_argument, NULL, 'D'},
        {"catalog", required_argument, NULL, 'c'},      {"dialect-file", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},               {NULL, 0, NULL, 0}};
    const char *dialect = "problem", *catalog_file = NULL;
    eg_docs_format_t fmt = EG_DOCS_MARKDOWN;
    char *dfiles[16];
    size_t ndfiles = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+f:D:c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "markdown") == 0) fmt = EG_DOCS_MARKDOWN;
            else if (strcmp(optarg, "html") == 0) fmt = EG_DOCS_HTML;
            else return eg_cli_fail(EG_EXIT_USAGE, "docs: --format must be markdown or html");
            break;
        case 'D': dialect = optarg; break;
        case 'c': catalog_file = optarg; break;
        case 'd':
            if (ndfiles == sizeof(dfiles) / sizeof(dfiles[0]))
                return eg_cli_fail(EG_EXIT_USAGE, "too many --dialect-file options");
            dfiles[ndfiles++] = optarg;
            break;
        case 'h': usage(stdout); return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "docs: bad option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "docs: unexpected argument '%s'", argv[optind]);
    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    char *page = NULL;
    size_t len = 0;
    int rc = eg_cli_catalog(catalog_file, &cat);
    if (!rc) rc = eg_cli_dialects(dfiles, ndfiles, &set);
    if (!rc) {
        const eg_dialect_t *d = eg_dialects_get(set, dialect);
        if (!d) rc = eg_cli_fail(EG_EXIT_USAGE, "docs: unknown dialect '%s'", dialect);
        else if (eg_docs_generate(cat, d, fmt, &page, &len) != EG_OK)
            rc = eg_cli_fail(EG_EXIT_SOFTWARE, "docs: out of memory");
        else {
            fwrite(page, 1, len, stdout);
            if (fflush(stdout) != 0) rc = EG_EXIT_INPUT;
        }
    }
    free(page);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return rc;
}

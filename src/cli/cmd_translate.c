/* cmd_translate.c - `errgate translate`: an error body from stdin, re-rendered
 * in another dialect. The same code path the gateway uses for upstream errors. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

#define TRANSLATE_MAX_BODY (16u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: errgate translate --to DIALECT [--from auto|DIALECT] [--status N]\n"
            "                         [--catalog FILE] [--dialect-file FILE]... [--strict]\n\n"
            "Reads an error body on stdin and writes it in DIALECT on stdout.\n"
            "Dialects: problem, jsonapi, envelope, typed, flat-camel, flat-snake, and any\n"
            "declared with --dialect-file. --from auto (the default) detects the dialect;\n"
            "a body that is not JSON (an HTML page, text) becomes the catalog's error for\n"
            "--status (default 502, bad_gateway: an upstream error the gateway cannot read)\n"
            "with an excerpt of the body as its message, unless --strict is given.\n\n"
            "Exit codes: 0 written, 2 bad arguments, 3 input unreadable, not JSON with\n"
            "--strict, or not in the --from dialect, 70 internal failure.\n");
}

int eg_cmd_translate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"to", required_argument, NULL, 't'},          {"from", required_argument, NULL, 'f'},
        {"status", required_argument, NULL, 's'},      {"catalog", required_argument, NULL, 'c'},
        {"dialect-file", required_argument, NULL, 'd'}, {"strict", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
    const char *to = NULL, *from = "auto", *catalog_file = NULL;
    char *dfiles[16];
    size_t ndfiles = 0;
    int status = 0, strict = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+t:f:s:c:d:Sh", opts, NULL)) != -1) {
        switch (c) {
        case 't': to = optarg; break;
        case 'f': from = optarg; break;
        case 's':
            if (eg_cli_parse_status(optarg, &status))
                return eg_cli_fail(EG_EXIT_USAGE, "--status must be 100..599, got '%s'", optarg);
            break;
        case 'c': catalog_file = optarg; break;
        case 'd':
            if (ndfiles == sizeof(dfiles) / sizeof(dfiles[0]))
                return eg_cli_fail(EG_EXIT_USAGE, "too many --dialect-file options");
            dfiles[ndfiles++] = optarg;
            break;
        case 'S': strict = 1; break;
        case 'h': usage(stdout); return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "translate: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "translate: unexpected argument '%s'", argv[optind]);
    if (!to) return eg_cli_fail(EG_EXIT_USAGE, "translate: --to DIALECT is required");

    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    char *body = NULL, *out = NULL;
    eg_error_t *e = NULL;
    size_t len = 0;
    int rc = eg_cli_catalog(catalog_file, &cat);
    if (rc) goto done;
    if ((rc = eg_cli_dialects(dfiles, ndfiles, &set))) goto done;
    const eg_dialect_t *target = eg_dialects_get(set, to);
    if (!target) {
        rc = eg_cli_fail(EG_EXIT_USAGE, "translate: unknown dialect '%s'", to);
        goto done;
    }
    const eg_dialect_t *source = NULL;
    if (strcmp(from, "auto") != 0 && !(source = eg_dialects_get(set, from))) {
        rc = eg_cli_fail(EG_EXIT_USAGE, "translate: unknown dialect '%s'", from);
        goto done;
    }
    int r = eg_cli_read_all(stdin, TRANSLATE_MAX_BODY, &body, &len);
    if (r != EG_OK) {
        rc = eg_cli_fail(r == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT,
                         "translate: cannot read stdin: %s", eg_strerror(r));
        goto done;
    }
    eg_body_info_t info;
    r = eg_parse_body(body, len, set, source, cat, status, &e, &info);
    if (r == EG_EPARSE) {
        rc = info.json_error[0]
                 ? eg_cli_fail(EG_EXIT_INPUT, "translate: stdin is not JSON: %s at line %d column %d",
                               info.json_error, info.json_line, info.json_column)
                 : eg_cli_fail(EG_EXIT_INPUT, "translate: stdin is not a %s error body", from);
        goto done;
    }
    if (r != EG_OK) {
        rc = eg_cli_fail(EG_EXIT_SOFTWARE, "translate: %s", eg_strerror(r));
        goto done;
    }
    if (strict && info.kind == EG_BODY_TEXT) {
        rc = eg_cli_fail(EG_EXIT_INPUT, "translate: stdin is not JSON: %s at line %d column %d",
                         info.json_error[0] ? info.json_error : "empty body", info.json_line,
                         info.json_column);
        goto done;
    }
    size_t cap = 4096, n;
    for (;;) {
        char *p = realloc(out, cap);
        if (!p) {
            rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
            goto done;
        }
        out = p;
        n = eg_render(e, target, cat, out, cap);
        if (n < cap) break;
        cap = n + 1;
    }
    fwrite(out, 1, n, stdout);
    fputc('\n', stdout);
    rc = fflush(stdout) == 0 ? EG_EXIT_OK : EG_EXIT_INPUT;
done:
    free(out);
    free(body);
    eg_error_free(e);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return rc;
}

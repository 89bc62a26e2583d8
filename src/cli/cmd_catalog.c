/* cmd_catalog.c - `errgate catalog list`: the codes the gateway knows. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate catalog list [--format table|json] [--catalog FILE]\n\n"
               "Lists every canonical code with status, type, retryable flag and title;\n"
               "json adds message, resolution, spellings and synonyms.\n"
               "Exit codes: 0 listed, 2 bad arguments, 3 bad catalog file.\n");
}

static json_t *entry_json(const eg_catalog_t *cat, const eg_catalog_entry_t *e)
{
    json_t *o = json_pack("{s:s, s:i, s:s?, s:s?, s:s?, s:s?, s:s?, s:b}", "code", e->code,
                          "status", e->status, "type", e->type, "title", e->title, "message",
                          e->message, "description", e->description, "resolution",
                          e->resolution, "retryable", e->retryable);
    if (!o) return NULL;
    json_t *sp = json_object(), *syn = json_array();
    for (size_t i = 0; sp && i < e->nspellings; i++)
        json_object_set_new(sp, e->spellings[i].dialect, json_string(e->spellings[i].spelling));
    for (size_t i = 0; syn && i < e->nsynonyms; i++)
        json_array_append_new(syn, json_string(e->synonyms[i]));
    json_object_set_new(o, "spellings", sp ? sp : json_null());
    json_object_set_new(o, "synonyms", syn ? syn : json_null());
    char url[512];
    if (eg_catalog_docs_url(cat, e, url, sizeof(url)) && strlen(url) < sizeof(url) - 1)
        json_object_set_new(o, "docs", json_string(url));
    return o;
}

int eg_cmd_catalog(int argc, char **argv)
{
    static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                         {"catalog", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return EG_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "list") != 0)
        return eg_cli_fail(EG_EXIT_USAGE, "catalog: expected 'list' (see errgate catalog --help)");
    const char *catalog_file = NULL;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc - 1, argv + 1, "+f:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "json") == 0) json = 1;
            else if (strcmp(optarg, "table") != 0)
                return eg_cli_fail(EG_EXIT_USAGE, "catalog: --format must be table or json");
            break;
        case 'c': catalog_file = optarg; break;
        case 'h': usage(stdout); return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "catalog: bad option '%s' (see --help)",
                               argv[optind]);
        }
    }
    if (optind < argc - 1)
        return eg_cli_fail(EG_EXIT_USAGE, "catalog: unexpected argument '%s'", argv[optind + 1]);
    eg_catalog_t *cat = NULL;
    int rc = eg_cli_catalog(catalog_file, &cat);
    if (rc) return rc;
    size_t n = eg_catalog_count(cat);
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            json_t *o = entry_json(cat, eg_catalog_at(cat, i));
            if (!o || json_array_append_new(arr, o)) {
                json_decref(arr);
                arr = NULL;
            }
        }
        char *s = arr ? json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(arr);
        if (!s) rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        else printf("%s\n", s);
        free(s);
    } else {
        printf("%-34s %-6s %-22s %-9s %s\n", "CODE", "STATUS", "TYPE", "RETRYABLE", "TITLE");
        for (size_t i = 0; i < n; i++) {
            const eg_catalog_entry_t *e = eg_catalog_at(cat, i);
            printf("%-34s %-6d %-22s %-9s %s\n", e->code, e->status, e->type ? e->type : "-",
                   e->retryable ? "yes" : "no", e->title ? e->title : "");
        }
    }
    eg_catalog_free(cat);
    if (fflush(stdout) != 0 && !rc) rc = EG_EXIT_INPUT;
    return rc;
}

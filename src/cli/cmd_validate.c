/* cmd_validate.c - `errgate validate`: a JSON instance on stdin checked
 * against a JSON Schema file, answered as the gateway answers an invalid
 * body (validation_error with its field errors, or invalid_json), so a
 * schema can be tried without running a gateway. The schema is compiled
 * and the instance read by the same library code the gateway uses.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "jsonr.h"
#include "schema.h"
#include "ytree.h"

#define VALIDATE_MAX_BODY   (16u << 20)
#define VALIDATE_MAX_FIELDS 100 /* field errors listed; the rest only counted */
#define VALIDATE_MAX_DOCS   64

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate validate --schema FILE [--dialect D] [--openapi30]\n"
               "                        [--catalog FILE] [--dialect-file FILE]...\n\n"
               "Reads one JSON value on stdin and checks it against the JSON Schema in FILE\n"
               "(JSON or YAML; draft 2020-12 as OpenAPI 3.1 uses it, or OpenAPI 3.0's dialect\n"
               "with --openapi30). When it is invalid, prints the error the gateway would\n"
               "answer (validation_error with one field error per problem, or invalid_json)\n"
               "in dialect D (default problem). Keywords the schema uses that errgate does\n"
               "not support are listed on stderr as warnings.\n\n"
               "Exit codes: 0 valid, 1 invalid (or not JSON), 2 bad arguments or a schema\n"
               "that cannot be loaded, 70 internal failure.\n");
}

/* Files reached through $ref, loaded once and freed after the schema. */
typedef struct {
    eg_ydoc_t *docs[VALIDATE_MAX_DOCS];
    size_t n;
} loader_t;

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

/* JSON files through the strict JSON reader (exact positions), the rest as YAML. */
static int load_doc(const char *path, eg_ydoc_t **out, char *err, size_t errlen)
{
    if (!has_suffix(path, ".json")) return eg_ydoc_load_file(path, out, err, errlen);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EG_EIO;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = eg_cli_read_all(f, VALIDATE_MAX_BODY, &text, &len);
    fclose(f);
    if (rc == EG_OK)
        rc = eg_ydoc_parse_json(text, len, path, out, err, errlen);
    else
        snprintf(err, errlen, "%s: cannot read: %s", path, eg_strerror(rc));
    free(text);
    return rc;
}

static int load_ref(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    loader_t *l = ctx;
    if (l->n == VALIDATE_MAX_DOCS) {
        snprintf(err, errlen, "too many files");
        return EG_ETOOBIG;
    }
    eg_ydoc_t *d = NULL;
    int rc = load_doc(path, &d, err, errlen);
    if (rc) return rc;
    l->docs[l->n++] = d;
    *doc = d;
    return EG_OK;
}

static void warn(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "errgate: warning: %s\n", msg);
}

static int print_error(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat)
{
    size_t cap = 4096, n;
    char *out = NULL;
    for (;;) {
        char *p = realloc(out, cap);
        if (!p) {
            free(out);
            return -1;
        }
        out = p;
        n = eg_render(e, d, cat, out, cap);
        if (n < cap) break;
        cap = n + 1;
    }
    fwrite(out, 1, n, stdout);
    fputc('\n', stdout);
    free(out);
    return 0;
}

int eg_cmd_validate(int argc, char **argv)
{
    static const struct option opts[] = {{"schema", required_argument, NULL, 's'},
                                         {"dialect", required_argument, NULL, 'd'},
                                         {"openapi30", no_argument, NULL, '3'},
                                         {"catalog", required_argument, NULL, 'c'},
                                         {"dialect-file", required_argument, NULL, 'D'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *schema_file = NULL, *dialect = "problem", *catalog_file = NULL;
    char *dfiles[16];
    size_t ndfiles = 0;
    int oas30 = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+s:d:3c:D:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            schema_file = optarg;
            break;
        case 'd':
            dialect = optarg;
            break;
        case '3':
            oas30 = 1;
            break;
        case 'c':
            catalog_file = optarg;
            break;
        case 'D':
            if (ndfiles == sizeof(dfiles) / sizeof(dfiles[0]))
                return eg_cli_fail(EG_EXIT_USAGE, "too many --dialect-file options");
            dfiles[ndfiles++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return EG_EXIT_OK;
        default:
            return eg_cli_fail(EG_EXIT_USAGE, "validate: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "validate: unexpected argument '%s'", argv[optind]);
    if (!schema_file) return eg_cli_fail(EG_EXIT_USAGE, "validate: --schema FILE is required");

    eg_catalog_t *cat = NULL;
    eg_dialects_t *set = NULL;
    eg_ydoc_t *doc = NULL;
    eg_schema_t *schema = NULL;
    eg_error_t *e = NULL;
    loader_t loader = {{NULL}, 0};
    char *body = NULL, err[1024];
    size_t len = 0;
    eg_jr_doc_t jd;
    int parsed = 0;
    int rc = eg_cli_catalog(catalog_file, &cat);
    if (rc) goto done;
    if ((rc = eg_cli_dialects(dfiles, ndfiles, &set))) goto done;
    const eg_dialect_t *target = eg_dialects_get(set, dialect);
    if (!target) {
        rc = eg_cli_fail(EG_EXIT_USAGE, "validate: unknown dialect '%s'", dialect);
        goto done;
    }
    int r = load_doc(schema_file, &doc, err, sizeof(err));
    if (r == EG_OK) {
        eg_schema_opts_t so = {oas30, load_ref, &loader, warn, NULL};
        r = eg_schema_compile(doc, NULL, &so, &schema, err, sizeof(err));
    }
    if (r != EG_OK) {
        rc = r == EG_ENOMEM ? eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory")
                            : eg_cli_fail(EG_EXIT_USAGE, "validate: %s", err);
        goto done;
    }
    if ((r = eg_cli_read_all(stdin, VALIDATE_MAX_BODY, &body, &len)) != EG_OK) {
        rc = eg_cli_fail(r == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_USAGE,
                         "validate: cannot read stdin: %s", eg_strerror(r));
        goto done;
    }
    if (eg_schema_fast(schema, body, len)) { /* as the gateway: surely valid, in one pass */
        rc = EG_EXIT_OK;
        goto done;
    }
    r = eg_jr_parse(&jd, body, len);
    parsed = 1;
    if (r == EG_EPARSE) {
        /* jansson words the problem; jsonr agrees with it on where */
        json_error_t je;
        json_t *j = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        json_decref(j);
        r = eg_error_invalid_json(cat, &je, &e);
        if (r == EG_OK) r = print_error(e, target, cat) ? EG_ENOMEM : EG_OK;
        rc = r == EG_OK ? 1 : eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto done;
    }
    if (r != EG_OK || (r = eg_error_from_catalog(cat, "validation_error", &e)) != EG_OK) {
        rc = eg_cli_fail(EG_EXIT_SOFTWARE, "validate: %s", eg_strerror(r));
        goto done;
    }
    eg_schema_report_t rep = {e, "", NULL, VALIDATE_MAX_FIELDS, 0};
    r = eg_schema_validate(schema, &jd, NULL, &rep);
    if (r == EG_OK) {
        rc = EG_EXIT_OK;
        goto done;
    }
    if (r == EG_ERANGE && rep.count > e->nfields) {
        json_t *d = eg_error_details(e);
        if (!d || json_object_set_new(d, "error_count", json_integer((json_int_t)rep.count)))
            r = EG_ENOMEM;
    }
    if (r != EG_ERANGE || print_error(e, target, cat)) {
        rc = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto done;
    }
    rc = fflush(stdout) == 0 ? 1 : EG_EXIT_SOFTWARE;
done:
    if (parsed) eg_jr_free(&jd);
    free(body);
    eg_error_free(e);
    eg_schema_free(schema);
    eg_ydoc_free(doc);
    for (size_t i = 0; i < loader.n; i++)
        eg_ydoc_free(loader.docs[i]);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return rc;
}

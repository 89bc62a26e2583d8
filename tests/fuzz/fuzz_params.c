/* fuzz_params.c - any bytes as a query string (or form body), a path
 * segment and a header value, against rules of every style (lib/params.c).
 * Invariants (abort() on violation): no read or write outside the input
 * (an exact-size heap copy, so ASan sees overruns), no leak; the verdict
 * does not depend on whether field errors are built (counting only stops
 * at the first problem: valid means valid both ways); at most `max` field
 * errors are built and `count` is at least their number; every field error
 * has a name and a message, and an echoed string value is at most
 * EG_PARAM_ECHO_MAX bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/errgate.h"
#include "params.h"

static eg_catalog_t *cat;
static eg_params_t q, path, hdr;

static void check(int ok)
{
    if (!ok) abort();
}

static void load(eg_params_t *p, const char *yaml, eg_param_in_t in)
{
    eg_ydoc_t *doc = NULL;
    char err[512];
    check(eg_ydoc_parse(yaml, strlen(yaml), "f.yaml", &doc, err, sizeof(err)) == EG_OK);
    const eg_ynode_t *root = eg_ydoc_root(doc);
    p->rules = calloc(root->n, sizeof(*p->rules));
    for (size_t i = 0; i < root->n; i++) {
        check(eg_param_rule_from_yaml(&p->rules[i], doc, root->items[2 * i + 1],
                                      root->items[2 * i]->str, in, cat, NULL, err,
                                      sizeof(err)) == EG_OK);
        p->n++;
    }
    eg_ydoc_free(doc);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    check(eg_catalog_new_builtin(&cat) == EG_OK);
    load(&q,
         "q: { required: true, type: string, minLength: 1, maxLength: 20 }\n"
         "num: { type: integer, minimum: 1, maximum: 100 }\n"
         "r: { type: number, exclusiveMinimum: 0 }\n"
         "b: { type: boolean }\n"
         "ids: { type: array, items: { type: integer } }\n"
         "csv: { type: array, items: { type: string }, explode: false }\n"
         "sp: { type: array, items: { type: string }, style: spaceDelimited }\n"
         "pp: { type: array, items: { type: number }, style: pipeDelimited }\n"
         "f: { type: object, style: deepObject, properties: { a: { type: integer } } }\n"
         "o: { type: object, explode: false }\n"
         "e: { enum: [a, b, c] }\n"
         "gl: { type: string, format: iso3166 }\n"
         "api_key: { type: string, pattern: \"^k_[a-z]+$\" }\n",
         EG_PIN_QUERY);
    load(&path,
         "s: { type: array, items: { type: integer } }\n"
         "l: { type: array, items: { type: integer }, style: label, explode: true }\n"
         "m: { type: array, items: { type: string }, style: matrix }\n"
         "mx: { type: object, style: matrix, explode: true }\n",
         EG_PIN_PATH);
    load(&hdr,
         "X-A: { type: array, items: { type: integer, maximum: 9 } }\n"
         "X-B: { type: string, format: uuid }\n"
         "Authorization: { type: string, minLength: 500 }\n",
         EG_PIN_HEADER);
    return 0;
}

static void fields_ok(const eg_error_t *e, const eg_params_report_t *r)
{
    check(e->nfields <= r->max && r->count >= e->nfields);
    for (size_t i = 0; i < e->nfields; i++) {
        const eg_field_error_t *f = &e->fields[i];
        check(f->s[EG_F_MESSAGE] != NULL);
        check(f->s[EG_F_PARAMETER] || f->s[EG_F_HEADER] || f->s[EG_F_FIELD]);
        if (json_is_string(f->value)) check(json_string_length(f->value) <= EG_PARAM_ECHO_MAX);
    }
}

typedef int (*checker_t)(const char *s, size_t n, eg_params_report_t *r);

static int cq(const char *s, size_t n, eg_params_report_t *r)
{
    return eg_params_check_query(&q, EG_PIN_QUERY, s, n, r);
}

static int cp(const char *s, size_t n, eg_params_report_t *r)
{
    eg_path_capture_t caps[4] = {{"s", s, 1, n}, {"l", s, 1, n}, {"m", s, 1, n}, {"mx", s, 2, n}};
    return eg_params_check_path(&path, caps, 4, r);
}

static int ch(const char *s, size_t n, eg_params_report_t *r)
{
    eg_http_header_t h[3] = {{"X-A", 3, s, n}, {"x-b", 3, s, n}, {"authorization", 13, s, n}};
    return eg_params_check_headers(&hdr, h, 3, r);
}

static void both_ways(checker_t f, const char *s, size_t n, size_t max)
{
    eg_params_report_t r0 = {NULL, 0, 0, NULL, 0};
    int rc0 = f(s, n, &r0);
    eg_error_t *e = eg_error_new();
    check(e != NULL);
    eg_params_report_t r1 = {e, max, 0, NULL, 0};
    int rc1 = f(s, n, &r1);
    if (rc0 != EG_ENOMEM && rc1 != EG_ENOMEM) {
        check(rc0 == rc1);
        check((r0.count == 0) == (r1.count == 0));
        check(rc1 == (r1.count ? EG_ERANGE : EG_OK));
    }
    fields_ok(e, &r1);
    eg_error_free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (!s) return 0;
    memcpy(s, data, size);
    size_t max = size ? data[0] % 8 : 3;
    both_ways(cq, s, size, max);
    both_ways(cp, s, size, max);
    both_ways(ch, s, size, max);
    free(s);
    return 0;
}

/* bench_params.c - ns to check six query parameters (lib/params.c) the way
 * the validation stage does for a valid request: counting only, no field
 * errors. The rules are a search endpoint's (the typed seed's q, num, gl,
 * hl, imgSize, tbs: a string, a bounded integer, two formats, two enums);
 * the query has all six. Also the same check when every parameter is wrong
 * (the refusal path: field errors built, messages worded). A benchmark, not
 * a test: it prints figures. Build with -DCMAKE_BUILD_TYPE=Release.
 *
 * usage: bench_params [iterations, default 500000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errgate/errgate.h"
#include "params.h"

static const char rules_yaml[] =
    "q: { required: true, type: string, minLength: 1, maxLength: 200 }\n"
    "num: { type: integer, minimum: 1, maximum: 100 }\n"
    "gl: { type: string, format: iso3166 }\n"
    "hl: { type: string, format: iso639 }\n"
    "imgSize: { enum: [large, medium, small, icon] }\n"
    "tbs: { enum: [\"qdr:h\", \"qdr:d\", \"qdr:w\", \"qdr:m\", \"qdr:y\"] }\n";

static const char good[] = "q=coffee+shops+near+me&num=10&gl=US&hl=en&imgSize=large&tbs=qdr%3Ad";
static const char bad[] = "num=150&gl=usa&hl=english&imgSize=huge&tbs=qdr:x";

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 500000;
    eg_catalog_t *cat = NULL;
    eg_ydoc_t *doc = NULL;
    char err[512];
    if (eg_catalog_new_builtin(&cat) ||
        eg_ydoc_parse(rules_yaml, sizeof(rules_yaml) - 1, "rules", &doc, err, sizeof(err))) {
        fprintf(stderr, "setup failed: %s\n", err);
        return 1;
    }
    const eg_ynode_t *root = eg_ydoc_root(doc);
    eg_params_t p = {calloc(root->n, sizeof(eg_param_rule_t)), 0, 0};
    for (size_t i = 0; i < root->n; i++) {
        if (eg_param_rule_from_yaml(&p.rules[i], doc, root->items[2 * i + 1], root->items[2 * i]->str,
                                    EG_PIN_QUERY, cat, NULL, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        p.n++;
    }
    eg_ydoc_free(doc);
    eg_params_report_t r = {NULL, 0, 0, NULL, 0};
    if (eg_params_check_query(&p, EG_PIN_QUERY, good, sizeof(good) - 1, &r) != EG_OK) {
        fprintf(stderr, "the valid query was refused\n");
        return 1;
    }
    double t0 = now_ns();
    long refused = 0;
    for (long i = 0; i < iters; i++) {
        r = (eg_params_report_t){NULL, 0, 0, NULL, 0};
        refused += eg_params_check_query(&p, EG_PIN_QUERY, good, sizeof(good) - 1, &r) != EG_OK;
    }
    double t1 = now_ns();
    printf("six query parameters, valid:   %8.1f ns per request%s\n", (t1 - t0) / (double)iters,
           refused ? " (refused?)" : "");
    long n2 = iters / 10 ? iters / 10 : 1;
    size_t fields = 0;
    t0 = now_ns();
    for (long i = 0; i < n2; i++) {
        eg_error_t *e = eg_error_new();
        r = (eg_params_report_t){e, 20, 0, NULL, 0};
        eg_params_check_query(&p, EG_PIN_QUERY, bad, sizeof(bad) - 1, &r);
        fields = e->nfields;
        eg_error_free(e);
    }
    t1 = now_ns();
    printf("six query parameters, all bad: %8.1f ns per request (%zu field errors)\n",
           (t1 - t0) / (double)n2, fields);
    eg_params_free(&p);
    eg_catalog_free(cat);
    return 0;
}

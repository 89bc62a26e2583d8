/* bench_openapi.c - what an OpenAPI document costs: loading it (with a rule
 * set per operation, as the configuration builds them) and routing a
 * request among its operations' routes, by the index the gateway uses
 * (ptrie.c, a step per segment) and, for comparison, by the router, which
 * scans its sorted routes (router.c) and so grows with their number. Documents of
 * R resources, each /resI (get, post) and /resI/{id} (get, put, delete)
 * with a query parameter, a path parameter and a JSON body schema, written
 * to a temporary file. A benchmark, not a test: it prints figures. Build
 * with -DCMAKE_BUILD_TYPE=Release.
 *
 * usage: bench_openapi [iterations per match, default 200000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "errgate/errgate.h"
#include "errgate/router.h"
#include "openapi.h"
#include "params.h"
#include "ptrie.h"

static int write_doc(const char *path, int resources)
{
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f,
            "openapi: 3.1.0\ninfo: {title: bench, version: '1'}\nservers: [{url: /v1}]\npaths:\n");
    for (int i = 0; i < resources; i++) {
        fprintf(f,
                "  /res%d:\n"
                "    get: {parameters: [{name: limit, in: query, schema: {type: integer, minimum: "
                "1, maximum: 100}}],"
                " responses: {'200': {description: ok}}}\n"
                "    post: {requestBody: {content: {application/json: {schema: {$ref: "
                "'#/components/schemas/Item'}}}},"
                " responses: {'201': {description: ok}}}\n"
                "  /res%d/{id}:\n"
                "    parameters: [{name: id, in: path, required: true, schema: {type: integer}}]\n"
                "    get: {responses: {'200': {description: ok}}}\n"
                "    put: {requestBody: {content: {application/json: {schema: {$ref: "
                "'#/components/schemas/Item'}}}},"
                " responses: {'200': {description: ok}}}\n"
                "    delete: {responses: {'204': {description: ok}}}\n",
                i, i);
    }
    fprintf(f, "components:\n  schemas:\n    Item:\n      type: object\n      required: [name]\n"
               "      properties: {name: {type: string, maxLength: 40}, qty: {type: integer, "
               "minimum: 0}}\n");
    return fclose(f);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    static const int sizes[] = {10, 100, 400};
    char path[] = "/tmp/bench_openapi_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    close(fd);
    printf("%-10s %-8s %-14s %-14s %-14s %-16s %-16s\n", "resources", "ops", "load+rules ms",
           "index first ns", "index last ns", "router first ns", "router last ns");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        if (write_doc(path, sizes[s])) return 1;
        char err[512];
        double t0 = now_ns();
        eg_openapi_t *oa = NULL;
        if (eg_openapi_load(path, &oa, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        size_t n = eg_openapi_nops(oa);
        eg_validation_t **vs = calloc(n, sizeof(*vs));
        eg_route_spec_t *specs = calloc(n, sizeof(*specs));
        char **paths = calloc(n, sizeof(*paths));
        for (size_t i = 0; i < n; i++) {
            const eg_oa_op_t *op = eg_openapi_op(oa, i);
            if (eg_openapi_validation(oa, op, 1 << 20, 0, &vs[i], err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            size_t len = strlen(op->base) + strlen(op->path) + 1;
            paths[i] = malloc(len);
            snprintf(paths[i], len, "%s%s", op->base, op->path);
            specs[i] = (eg_route_spec_t){paths[i], 0, op->method_bit};
        }
        double t1 = now_ns();
        eg_router_t *r = NULL;
        eg_ptrie_t *pt = NULL;
        if (eg_router_new(specs, n, &r) || eg_ptrie_new(&pt)) return 1;
        for (size_t i = 0; i < n; i++)
            if (eg_ptrie_add(pt, specs[i].path, specs[i].methods, i)) return 1;
        char first[64], last[64];
        snprintf(first, sizeof(first), "/v1/res0/42");
        snprintf(last, sizeof(last), "/v1/res%d/42", sizes[s] - 1);
        double ns[4];
        const char *targets[2] = {first, last};
        for (int k = 0; k < 4; k++) {
            size_t id = 0, hits = 0;
            unsigned allow = 0;
            const char *tg = targets[k % 2];
            size_t tl = strlen(tg);
            double a = now_ns();
            if (k < 2)
                for (long it = 0; it < iters; it++)
                    hits += eg_ptrie_match(pt, tg, tl, EG_M_PUT, &id, &allow) == EG_ROUTE_OK;
            else
                for (long it = 0; it < iters; it++)
                    hits += eg_router_match(r, tg, tl, EG_M_PUT, &id, &allow) == EG_ROUTE_OK;
            ns[k] = (now_ns() - a) / (double)iters;
            if (hits != (size_t)iters) return 1;
        }
        printf("%-10d %-8zu %-14.1f %-14.1f %-14.1f %-16.1f %-16.1f\n", sizes[s], n,
               (t1 - t0) / 1e6, ns[0], ns[1], ns[2], ns[3]);
        eg_router_free(r);
        eg_ptrie_free(pt);
        for (size_t i = 0; i < n; i++) {
            eg_validation_free(vs[i]);
            free(paths[i]);
        }
        free(vs);
        free(specs);
        free(paths);
        eg_openapi_free(oa);
    }
    unlink(path);
    return 0;
}

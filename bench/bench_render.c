/* bench_render.c - ns per render of a typical error (two field errors) in each
 * dialect, and ns per translate (parse + detect + render) of a ~1 KiB
 * upstream error body. A benchmark, not a test: it prints figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/errgate.h"
#include "bench.h"

static eg_error_t *typical(const eg_catalog_t *cat)
{
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(cat, "validation_error", &e)) exit(1);
    eg_error_set(e, EG_S_MESSAGE, "The request contains invalid parameters.");
    eg_error_set(e, EG_S_REQUEST_ID, "req_4f2a9c1e7b3d4e8f9a0b1c2d3e4f5a6b");
    eg_error_set(e, EG_S_TIMESTAMP, "2024-01-15T10:30:00Z");
    eg_field_error_t *f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "email");
    eg_field_set(e, f, EG_F_MESSAGE, "Invalid email format");
    f = eg_error_add_field(e);
    eg_field_set(e, f, EG_F_FIELD, "page");
    eg_field_set(e, f, EG_F_MESSAGE, "Must be a positive integer");
    return e;
}

static const char upstream[] = EG_BENCH_UPSTREAM;

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    eg_catalog_t *cat;
    eg_dialects_t *set;
    if (eg_catalog_new_builtin(&cat) || eg_dialects_new_builtin(&set)) return 1;
    eg_error_t *e = typical(cat);
    char buf[4096];
    volatile size_t sink = 0;
    printf("errgate render/translate benchmark (%ld iterations)\n", iters);
    printf("%-12s %10s %8s\n", "dialect", "ns/render", "bytes");
    for (size_t i = 0; i < eg_dialects_count(set); i++) {
        const eg_dialect_t *d = eg_dialects_at(set, i);
        for (long k = 0; k < iters / 10; k++) sink += eg_render(e, d, cat, buf, sizeof(buf));
        double t0 = now_ns();
        for (long k = 0; k < iters; k++) sink += eg_render(e, d, cat, buf, sizeof(buf));
        double dt = (now_ns() - t0) / (double)iters;
        printf("%-12s %10.1f %8zu\n", eg_dialect_name(d), dt, eg_render(e, d, cat, buf, sizeof(buf)));
    }
    long titers = iters / 10 > 0 ? iters / 10 : 1;
    const eg_dialect_t *to = eg_dialects_get(set, "problem");
    double t0 = now_ns();
    for (long k = 0; k < titers; k++) {
        eg_error_t *x = NULL;
        if (eg_parse_body(upstream, sizeof(upstream) - 1, set, NULL, cat, 429, &x, NULL)) return 1;
        sink += eg_render(x, to, cat, buf, sizeof(buf));
        eg_error_free(x);
    }
    double dt = (now_ns() - t0) / (double)titers;
    printf("translate %zu-byte typed body -> problem: %.1f ns (%.2f us)\n", sizeof(upstream) - 1,
           dt, dt / 1000.0);
    eg_error_free(e);
    eg_dialects_free(set);
    eg_catalog_free(cat);
    return sink == 0;
}

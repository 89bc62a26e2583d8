/* bench_jsonr.c - ns per parse of JSON error bodies with the tape reader (eg_jr_parse)
 * and with jansson (json_loadb + json_decref, what a translation pays today): the
 * 943-byte body bench_render.c translates (bench.h) and a ~10 KiB document. A
 * benchmark, not a test: it prints figures. Build with -DCMAKE_BUILD_TYPE=Release
 * for meaningful numbers.
 *
 * usage: bench_jsonr [iterations for the 1 KiB body, default 1000000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonr.h"
#include "bench.h"

static const char upstream[] = EG_BENCH_UPSTREAM;

/* A ~10 KiB JSON:API-style body: many field errors with escapes, non-ASCII text,
   integers and reals. */
static size_t big_body(char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "{\"errors\":[");
    for (int i = 0; o + 400 < cap && o < 10 * 1024 - 300; i++)
        o += (size_t)snprintf(buf + o, cap - o,
                              "%s{\"status\":\"422\",\"code\":\"invalid_attribute\",\"title\":\"Invalid "
                              "Attribute\",\"detail\":\"Field \\\"attr_%d\\\" must be between 1 and "
                              "100 (caf\xc3\xa9 \\u00e9)\",\"source\":{\"pointer\":\"/data/attributes/"
                              "attr_%d\"},\"meta\":{\"min\":1,\"max\":100,\"value\":-%d.5,\"strict\":"
                              "true,\"hint\":null}}",
                              i ? "," : "", i, i, i);
    o += (size_t)snprintf(buf + o, cap - o,
                          "],\"meta\":{\"request_id\":\"req_1234567890abcdef\",\"count\":42}}");
    return o;
}

static volatile size_t sink;

static void run(const char *name, const char *text, size_t len, long iters)
{
    eg_jr_doc_t doc;
    if (eg_jr_parse(&doc, text, len)) {
        fprintf(stderr, "bench_jsonr: %s does not parse\n", name);
        exit(1);
    }
    size_t ntoks = doc.ntoks;
    eg_jr_free(&doc);
    for (long k = 0; k < iters / 10; k++) {
        eg_jr_parse(&doc, text, len);
        sink += doc.ntoks;
        eg_jr_free(&doc);
    }
    double t0 = now_ns();
    for (long k = 0; k < iters; k++) {
        eg_jr_parse(&doc, text, len);
        sink += doc.ntoks;
        eg_jr_free(&doc);
    }
    double jr = (now_ns() - t0) / (double)iters;

    long jiters = iters / 5 > 0 ? iters / 5 : 1;
    json_error_t je;
    t0 = now_ns();
    for (long k = 0; k < jiters; k++) {
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        sink += json_object_size(j);
        json_decref(j);
    }
    double ja = (now_ns() - t0) / (double)jiters;
    printf("%-14s %6zu bytes %5zu tokens  eg_jr_parse %9.1f ns (%5.2f ns/byte)  "
           "json_loadb %9.1f ns (%5.2f ns/byte)  x%.1f\n",
           name, len, ntoks, jr, jr / (double)len, ja, ja / (double)len, ja / jr);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 1000000;
    static char big[16 * 1024];
    size_t blen = big_body(big, sizeof(big));
    printf("errgate JSON reader benchmark (%ld iterations for the 1 KiB body)\n", iters);
    run("error body", upstream, sizeof(upstream) - 1, iters);
    run("10 KiB body", big, blen, iters / 10 > 0 ? iters / 10 : 1);
    return sink == 0;
}

/* bench_jsonr.c - ns per parse of JSON error bodies with the tape reader (eg_jr_parse)
 * and with jansson (json_loadb + json_decref, what a translation pays today): the 943-byte
 * body of bench_render.c and a ~10 KiB document. A benchmark, not a test: it prints
 * figures. Build with -DCMAKE_BUILD_TYPE=Release for meaningful numbers.
 *
 * usage: bench_jsonr [iterations for the 1 KiB body, default 1000000]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonr.h"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* The ~1 KiB upstream error of bench_render.c (typed dialect, details and context). */
static const char upstream[] =
    "{\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limit exceeded. Please wait "
    "before making another request\",\"code\":\"RATE_LIMIT_EXCEEDED\",\"details\":{\"limit\":"
    "1000,\"window\":\"1 hour\",\"reset_time\":\"2024-01-15T14:00:00Z\",\"retry_after\":3600,"
    "\"request_id\":\"req_1234567890abcdef\",\"timestamp\":\"2024-01-15T12:34:56Z\","
    "\"plan\":\"starter\",\"endpoint\":\"/v1/search\",\"consumer\":\"acct_9f8e7d6c5b4a\","
    "\"suggestions\":[\"Upgrade your plan at https://example.com/pricing\",\"Spread requests "
    "evenly over the window\",\"Cache responses where possible\",\"Use batch endpoints for bulk "
    "work\"],\"usage\":{\"minute\":{\"used\":120,\"limit\":100},\"hour\":{\"used\":1000,"
    "\"limit\":1000},\"day\":{\"used\":8123,\"limit\":20000}},\"region\":\"eu-west-1\","
    "\"note\":\"Limits apply per API key across all endpoints of this product; requests that "
    "fail validation still count towards the limit. Contact support with the request id if you "
    "believe this is a mistake.\",\"policy\":\"https://example.com/docs/rate-limits\"}}}";

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

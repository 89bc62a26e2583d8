/* bench_schema.c - ns per JSON Schema validation of a request body: a ~1 KiB
 * order with 20 top-level properties (types, formats, patterns, enums, a
 * nested object, an array of objects) against the schema a typical OpenAPI
 * document declares for it. Prints the tape parse alone, validation alone
 * (the compiled schema on a parsed tape) and both together, which is what
 * the gateway pays per body; and the same for an invalid body that reports
 * five field errors. A benchmark, not a test: it prints figures. Build with
 * -DCMAKE_BUILD_TYPE=Release for meaningful numbers.
 *
 * usage: bench_schema [iterations, default 200000] [valid|stream|floor|fast]
 *                     [SCHEMA.yaml BODY.json]
 * ("valid": the valid body only, parse and validate on the tape; "fast":
 * the valid body through the accept-only fast path only, eg_schema_fast,
 * what the gateway pays for a valid whole body; "stream":
 * the valid body through the streaming validator only, eg_sv_*; "floor":
 * only a scan of the body that any JSON reader must at least do, finding
 * its structural bytes 16 at a time (see floor_scan); e.g. to count
 * instructions under callgrind; SCHEMA and BODY: a schema (YAML or JSON)
 * and a valid body of one's own instead of the built-in order, e.g. the
 * ones bench/validate.sh writes, measured the same way)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "errgate/errgate.h"
#include "jsonr.h"
#include "schema.h"
#include "ytree.h"
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

static const char schema_text[] =
    "{\"type\":\"object\",\"additionalProperties\":false,"
    "\"required\":[\"id\",\"email\",\"name\",\"country\",\"currency\",\"items\",\"shipping\"],"
    "\"properties\":{"
    "\"id\":{\"type\":\"string\",\"format\":\"uuid\"},"
    "\"email\":{\"type\":\"string\",\"format\":\"email\",\"maxLength\":254},"
    "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"phone\":{\"type\":\"string\",\"pattern\":\"^\\\\+[1-9][0-9]{6,14}$\"},"
    "\"country\":{\"type\":\"string\",\"format\":\"iso3166\"},"
    "\"language\":{\"type\":\"string\",\"format\":\"iso639\"},"
    "\"currency\":{\"enum\":[\"EUR\",\"USD\",\"GBP\",\"JPY\",\"CHF\"]},"
    "\"status\":{\"enum\":[\"pending\",\"paid\",\"shipped\",\"cancelled\"]},"
    "\"created_at\":{\"type\":\"string\",\"format\":\"date-time\"},"
    "\"delivery_date\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"total\":{\"type\":\"number\",\"minimum\":0,\"multipleOf\":0.01},"
    "\"quantity\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000},"
    "\"gift\":{\"type\":\"boolean\"},"
    "\"coupon\":{\"type\":[\"string\",\"null\"],\"pattern\":\"^[A-Z0-9]{4,12}$\"},"
    "\"tags\":{\"type\":\"array\",\"maxItems\":10,\"uniqueItems\":true,"
    "\"items\":{\"type\":\"string\",\"pattern\":\"^[a-z][a-z0-9-]*$\",\"maxLength\":32}},"
    "\"notes\":{\"type\":\"string\",\"maxLength\":500},"
    "\"referrer\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"client_ip\":{\"type\":\"string\",\"format\":\"ipv4\"},"
    "\"shipping\":{\"type\":\"object\",\"required\":[\"street\",\"city\",\"postcode\"],"
    "\"additionalProperties\":false,\"properties\":{"
    "\"street\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":200},"
    "\"city\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":100},"
    "\"postcode\":{\"type\":\"string\",\"pattern\":\"^[0-9A-Z -]{3,10}$\"},"
    "\"country\":{\"type\":\"string\",\"format\":\"iso3166\"}}},"
    "\"items\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":100,\"items\":{"
    "\"type\":\"object\",\"required\":[\"sku\",\"qty\",\"price\"],\"additionalProperties\":false,"
    "\"properties\":{\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-[0-9]{4}$\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":99},"
    "\"price\":{\"type\":\"number\",\"exclusiveMinimum\":0}}}}}}";

static const char valid_body[] =
    "{\"id\":\"7c9e6679-7425-40de-944b-e07fc1f90ae7\",\"email\":\"jane.doe@example.com\","
    "\"name\":\"Jane Doe\",\"phone\":\"+33612345678\",\"country\":\"FR\",\"language\":\"fr\","
    "\"currency\":\"EUR\",\"status\":\"paid\",\"created_at\":\"2024-01-15T12:34:56Z\","
    "\"delivery_date\":\"2024-01-20\",\"total\":149.97,\"quantity\":3,\"gift\":false,"
    "\"coupon\":\"WINTER2024\",\"tags\":[\"priority\",\"gift-wrap\",\"fragile\"],"
    "\"notes\":\"Please leave the parcel with the concierge if nobody answers the door; the "
    "building code is on the intercom panel. Call before delivery between 9 and 18, or leave a "
    "message with the reception desk on the ground floor.\","
    "\"referrer\":\"https://shop.example.com/campaigns/winter?utm_source=newsletter\","
    "\"client_ip\":\"203.0.113.42\",\"shipping\":{\"street\":\"12 rue de la Paix\","
    "\"city\":\"Paris\",\"postcode\":\"75002\",\"country\":\"FR\"},\"items\":["
    "{\"sku\":\"ABC-1234\",\"qty\":1,\"price\":49.99},{\"sku\":\"DEF-5678\",\"qty\":1,"
    "\"price\":59.99},{\"sku\":\"GHI-9012\",\"qty\":1,\"price\":39.99},{\"sku\":\"JKL-3456\","
    "\"qty\":2,\"price\":0.01},{\"sku\":\"MNO-7890\",\"qty\":1,\"price\":0.01}]}";

static volatile size_t sink;

/* The least a JSON reader must do with a body, as a lower bound for the
 * instructions a validation costs: look at every byte once and find the
 * structural ones (quotes, backslashes, brackets, ':' and ','), 16 bytes a
 * step with SSE2 (simdjson's first stage without its UTF-8 check and its
 * string masking), else one byte at a time through a class table, and
 * visit each of them once (an offset summed: one step of a tokenizer's
 * loop, so that nothing is optimised away). No value is read, no key
 * looked up, nothing checked. */
static size_t floor_scan(const char *text, size_t len)
{
    size_t n = 0, i = 0;
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), co = _mm_set1_epi8(':'),
                  cm = _mm_set1_epi8(','), low5 = _mm_set1_epi8((char)0xDF),
                  ob = _mm_set1_epi8('['), cb = _mm_set1_epi8(']');
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(text + i));
        /* '{' '}' are '[' ']' with bit 5 set: one mask folds them */
        __m128i f = _mm_and_si128(v, low5);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)),
                                   _mm_or_si128(_mm_cmpeq_epi8(v, co), _mm_cmpeq_epi8(v, cm)));
        hit = _mm_or_si128(hit, _mm_or_si128(_mm_cmpeq_epi8(f, ob), _mm_cmpeq_epi8(f, cb)));
        /* visit each structural byte, as a tokenizer's loop must: its offset */
        for (unsigned m = (unsigned)_mm_movemask_epi8(hit); m; m &= m - 1)
            n += i + (size_t)__builtin_ctz(m);
    }
#endif
    static const unsigned char cls[256] = {
        ['"'] = 1, ['\\'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1, [':'] = 1, [','] = 1};
    for (; i < len; i++)
        if (cls[(unsigned char)text[i]]) n += i;
    return n;
}

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "bench_schema: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* The whole file at path (malloc'd, NUL-terminated), its length in *n. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail("cannot open", path);
    size_t cap = 4096, len = 0;
    char *p = malloc(cap);
    for (size_t got; p && (got = fread(p + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len - 1 == 0) p = realloc(p, cap *= 2);
    }
    fclose(f);
    if (!p) fail("out of memory", NULL);
    p[len] = '\0';
    *n = len;
    return p;
}

/* Mean ns of `iters` runs of one measured step. */
typedef enum { PARSE, VALIDATE, BOTH, STREAM } step_t;

static double measure(const eg_schema_t *s, const char *text, size_t len, step_t step, long iters,
                      int with_errors)
{
    eg_jr_doc_t doc;
    int pre = step == VALIDATE;
    if (step == STREAM) { /* what the gateway pays now: the body streamed through eg_sv */
        /* one validator reset per body, as a gateway worker keeps one */
        eg_sv_t *sv = NULL;
        if (eg_sv_new(s, NULL, &sv)) fail("stream", NULL);
        double t0 = now_ns();
        for (long k = 0; k < iters; k++) {
            eg_error_t *e = with_errors ? eg_error_new() : NULL;
            eg_schema_report_t rep = {e, "", NULL, 20, 0};
            eg_sv_reset(sv, s, e ? &rep : NULL);
            if (eg_sv_feed(sv, text, len)) fail("stream", NULL);
            sink += (size_t)eg_sv_finish(sv) + rep.count;
            eg_error_free(e);
        }
        double ns = (now_ns() - t0) / (double)iters;
        eg_sv_free(sv);
        return ns;
    }
    if (pre && eg_jr_parse(&doc, text, len)) fail("body does not parse", NULL);
    double t0 = now_ns();
    for (long k = 0; k < iters; k++) {
        if (!pre && eg_jr_parse(&doc, text, len)) fail("body does not parse", NULL);
        if (step != PARSE) {
            eg_error_t *e = with_errors ? eg_error_new() : NULL;
            eg_schema_report_t rep = {e, "", NULL, 20, 0};
            sink += (size_t)eg_schema_validate(s, &doc, NULL, &rep) + rep.count;
            eg_error_free(e);
        }
        sink += doc.ntoks;
        if (!pre) eg_jr_free(&doc);
    }
    double ns = (now_ns() - t0) / (double)iters;
    if (pre) eg_jr_free(&doc);
    return ns;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    char err[512];
    eg_ydoc_t *ydoc = NULL;
    eg_schema_t *s = NULL;
    const char *vbody = valid_body;
    size_t vlen = sizeof(valid_body) - 1;
    char *own_schema = NULL, *own_body = NULL;
    int own = argc > 4;
    if (own) { /* a schema and a body of one's own */
        size_t sn;
        own_schema = slurp(argv[3], &sn);
        own_body = slurp(argv[4], &vlen);
        vbody = own_body;
        if (eg_ydoc_parse(own_schema, sn, argv[3], &ydoc, err, sizeof(err))) fail("schema", err);
    } else if (eg_ydoc_parse_json(schema_text, sizeof(schema_text) - 1, "bench.json", &ydoc, err,
                                  sizeof(err))) {
        fail("schema", err);
    }
    if (eg_schema_compile(ydoc, NULL, NULL, &s, err, sizeof(err))) fail("schema", err);
    eg_ydoc_free(ydoc);

    /* the invalid body: five problems (email, quantity, a sku, "City" not allowed and
     * "city" missing) */
    static char invalid_body[sizeof(valid_body) + 64];
    snprintf(invalid_body, sizeof(invalid_body), "%s", valid_body);
    memcpy(strstr(invalid_body, "jane.doe@"), "jane.doe ", 9);
    memcpy(strstr(invalid_body, "\"quantity\":3"), "\"quantity\":0", 12);
    memcpy(strstr(invalid_body, "ABC-1234"), "ABC_1234", 8);
    memcpy(strstr(invalid_body, "\"city\""), "\"City\"", 6);

    size_t ilen = strlen(invalid_body);
    eg_jr_doc_t d;
    eg_schema_report_t rep = {NULL, "", NULL, 0, 0};
    if (eg_jr_parse(&d, vbody, vlen) || eg_schema_validate(s, &d, NULL, &rep) != EG_OK)
        fail("the valid body does not validate", NULL);
    eg_jr_free(&d);
    if (!eg_schema_fast(s, vbody, vlen)) fail("the fast path is not sure of the valid body", NULL);
    if (own) goto measure;
    eg_error_t *e = eg_error_new();
    rep = (eg_schema_report_t){e, "", NULL, 20, 0};
    if (eg_jr_parse(&d, invalid_body, ilen) || eg_schema_validate(s, &d, NULL, &rep) != EG_ERANGE ||
        rep.count != 5)
        fail("the invalid body does not report its five problems", NULL);
    eg_jr_free(&d);
    eg_error_free(e);

    if (eg_schema_fast(s, invalid_body, ilen)) fail("the fast path accepts the invalid body", NULL);
measure:
    if (argc > 2 && strcmp(argv[2], "fast") == 0) { /* callgrind: the fast path alone */
        for (long k = 0; k < iters; k++)
            sink += (size_t)eg_schema_fast(s, vbody, vlen);
        goto done;
    }
    if (argc > 2 && strcmp(argv[2], "floor") == 0) { /* callgrind: the scan alone */
        for (long k = 0; k < iters; k++)
            sink += floor_scan(vbody, vlen);
        goto done;
    }
    if (argc > 2 && strcmp(argv[2], "stream") == 0) { /* callgrind: the stream alone */
        sink += (size_t)measure(s, vbody, vlen, STREAM, iters, 0);
        goto done;
    }
    measure(s, vbody, vlen, BOTH, iters / 10, 0); /* warm up */
    printf("errgate JSON Schema benchmark: %zu-byte body, 20 properties (%ld iterations)\n", vlen,
           iters);
    double p = measure(s, vbody, vlen, PARSE, iters, 0);
    double v = measure(s, vbody, vlen, VALIDATE, iters, 0);
    double b = measure(s, vbody, vlen, BOTH, iters, 0);
    double st = argc > 2 ? 0 : measure(s, vbody, vlen, STREAM, iters, 0);
    double t0 = now_ns();
    for (long k = 0; k < iters; k++)
        sink += (size_t)eg_schema_fast(s, vbody, vlen);
    double fa = (now_ns() - t0) / (double)iters;
    printf("valid body    parse %7.1f ns   validate %7.1f ns   parse+validate %7.1f ns   streamed "
           "%7.1f ns   fast path %7.1f ns\n",
           p, v, b, st, fa);
    if (own || (argc > 2 && strcmp(argv[2], "valid") == 0)) goto done;
    v = measure(s, invalid_body, ilen, VALIDATE, iters / 4, 1);
    b = measure(s, invalid_body, ilen, BOTH, iters / 4, 1);
    st = measure(s, invalid_body, ilen, STREAM, iters / 4, 1);
    printf("invalid body  (5 field errors built)    validate %7.1f ns   parse+validate %7.1f ns   "
           "streamed %7.1f ns\n",
           v, b, st);
done:
    eg_schema_free(s);
    free(own_schema);
    free(own_body);
    return sink == 0;
}

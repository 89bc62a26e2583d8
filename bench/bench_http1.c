/* bench_http1.c - ns per parse of a typical ~400-byte request head, of a
 * typical upstream response head, and ns per KiB of chunked body decoding.
 * A benchmark, not a test: it prints figures. Build with optimisation
 * (-DCMAKE_BUILD_TYPE=Release) for meaningful numbers.
 *
 * usage: bench_http1 [millions of iterations, default 5]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/http1.h"
#include "bench.h"

/* What an API client behind a browser-ish user agent sends: 8 headers, ~400 bytes. */
static const char request[] =
    "GET /v1/search?q=error+handling&num=20&page=2&lang=en HTTP/1.1\r\n"
    "Host: api.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0\r\n"
    "Accept: application/json\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2ln\r\n"
    "X-Request-Id: req_4f2a9c1e7b3d4e8f\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

static const char response[] =
    "HTTP/1.1 429 Too Many Requests\r\n"
    "Date: Mon, 15 Jan 2024 12:34:56 GMT\r\n"
    "Content-Type: application/problem+json\r\n"
    "Content-Length: 312\r\n"
    "Retry-After: 30\r\n"
    "X-RateLimit-Limit: 100\r\n"
    "X-RateLimit-Remaining: 0\r\n"
    "X-RateLimit-Reset: 1705322126\r\n"
    "Cache-Control: no-store\r\n"
    "\r\n";

int main(int argc, char **argv)
{
    long millions = argc > 1 ? atol(argv[1]) : 5;
    if (millions <= 0) millions = 5;
    long n = millions * 1000000L;
    const eg_http1_limits_t lim = {.max_head = 16384, .max_headers = 100, .max_uri = 8192};
    eg_http_header_t h[100];
    eg_http1_msg_t m;
    volatile size_t sink = 0;

    size_t rlen = sizeof(request) - 1;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        size_t scanned = 0;
        int rc = eg_http1_parse_request(request, rlen, &lim, h, 100, &scanned, &m);
        if (rc != (int)rlen) {
            fprintf(stderr, "request did not parse: %d (%s)\n", rc, m.why ? m.why : "");
            return 1;
        }
        sink += m.nheaders;
    }
    double t1 = now_ns();
    printf("request head  (%zu bytes, %zu headers): %6.1f ns/parse  %5.2f ns/byte\n", rlen,
           m.nheaders, (t1 - t0) / (double)n, (t1 - t0) / (double)n / (double)rlen);

    size_t plen = sizeof(response) - 1;
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        size_t scanned = 0;
        int rc = eg_http1_parse_response(response, plen, &lim, h, 100, &scanned, 0, &m);
        if (rc != (int)plen) {
            fprintf(stderr, "response did not parse: %d (%s)\n", rc, m.why ? m.why : "");
            return 1;
        }
        sink += m.nheaders;
    }
    t1 = now_ns();
    printf("response head (%zu bytes, %zu headers): %6.1f ns/parse  %5.2f ns/byte\n", plen,
           m.nheaders, (t1 - t0) / (double)n, (t1 - t0) / (double)n / (double)plen);

    /* a 16 KiB chunked body in 1 KiB chunks, validated as it streams through */
    enum { CHUNKS = 16, CHUNK = 1024 };
    static char body[CHUNKS * (CHUNK + 16) + 16];
    size_t bl = 0;
    for (int c = 0; c < CHUNKS; c++) {
        bl += (size_t)sprintf(body + bl, "%x\r\n", CHUNK);
        memset(body + bl, 'x', CHUNK);
        bl += CHUNK;
        memcpy(body + bl, "\r\n", 2);
        bl += 2;
    }
    memcpy(body + bl, "0\r\n\r\n", 5);
    bl += 5;
    long nb = n / 100 > 0 ? n / 100 : 1;
    t0 = now_ns();
    for (long i = 0; i < nb; i++) {
        eg_chunked_t st;
        memset(&st, 0, sizeof(st));
        size_t used = 0;
        if (eg_chunked_feed(&st, body, bl, 4096, &used) != EG_OK) {
            fprintf(stderr, "chunked body did not parse: %s\n", st.why ? st.why : "");
            return 1;
        }
        sink += used;
    }
    t1 = now_ns();
    printf("chunked body  (%zu bytes, %d chunks): %6.1f ns/body   %5.2f ns/KiB\n", bl, CHUNKS,
           (t1 - t0) / (double)nb, (t1 - t0) / (double)nb / ((double)bl / 1024.0));
    (void)sink;
    return 0;
}

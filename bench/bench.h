/* bench.h - what the benchmarks share: a monotonic clock in ns and the
 * ~1 KiB upstream error body that bench_render translates and bench_jsonr
 * parses, so both measure the same input. */
#ifndef EG_BENCH_H
#define EG_BENCH_H

#include <time.h>

static inline double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* A ~1 KiB upstream error in the typed dialect with details and a stack of context. */
#define EG_BENCH_UPSTREAM \
    "{\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limit exceeded. Please wait " \
    "before making another request\",\"code\":\"RATE_LIMIT_EXCEEDED\",\"details\":{\"limit\":" \
    "1000,\"window\":\"1 hour\",\"reset_time\":\"2024-01-15T14:00:00Z\",\"retry_after\":3600," \
    "\"request_id\":\"req_1234567890abcdef\",\"timestamp\":\"2024-01-15T12:34:56Z\"," \
    "\"plan\":\"starter\",\"endpoint\":\"/v1/search\",\"consumer\":\"acct_9f8e7d6c5b4a\"," \
    "\"suggestions\":[\"Upgrade your plan at https://example.com/pricing\",\"Spread requests " \
    "evenly over the window\",\"Cache responses where possible\",\"Use batch endpoints for bulk " \
    "work\"],\"usage\":{\"minute\":{\"used\":120,\"limit\":100},\"hour\":{\"used\":1000," \
    "\"limit\":1000},\"day\":{\"used\":8123,\"limit\":20000}},\"region\":\"eu-west-1\"," \
    "\"note\":\"Limits apply per API key across all endpoints of this product; requests that " \
    "fail validation still count towards the limit. Contact support with the request id if you " \
    "believe this is a mistake.\",\"policy\":\"https://example.com/docs/rate-limits\"}}}"

#endif

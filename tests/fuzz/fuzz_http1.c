/* fuzz_http1.c - any bytes as a request head, a response head and a chunked
 * body. Invariants checked (abort() on violation):
 *  - nothing is read outside the buffer (the input is copied to an exact-size
 *    heap block so ASan sees any overrun);
 *  - every slice of a parsed head lies inside the head, the head ends with
 *    CRLFCRLF, counts and lengths respect the limits, errors carry a reason;
 *  - the verdict does not depend on how the bytes were split across calls;
 *  - the chunked decoder gives the same data and verdict whether fed at once,
 *    in pieces, or decoded in place, and never claims more than it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/http1.h"

#define HCAP 16

static const eg_http1_limits_t lim = {.max_head = 2048, .max_headers = 12, .max_uri = 256};

static void check(int ok)
{
    if (!ok) abort();
}

static void check_slice(const char *buf, size_t len, const char *p, size_t n)
{
    if (n) check(p && p >= buf && p + n <= buf + len);
}

/* Invariants of one parse result over buf[0..size). */
static void check_result(const char *buf, size_t size, int rc, const eg_http1_msg_t *m,
                         const eg_http_header_t *h, int is_request)
{
    if (rc == EG_EAGAIN) {
        check(size < lim.max_head);
        return;
    }
    if (rc == EG_EPARSE) {
        check(m->why != NULL && m->error != EG_HTTP1_OK);
        check(m->error <= EG_HTTP1_VERSION_NOT_SUPPORTED);
        check(m->error_offset <= size);
        return;
    }
    check(rc > 0);
    size_t head = (size_t)rc;
    check(head <= size && head <= lim.max_head && m->head_len == head);
    check(head >= 4 && memcmp(buf + head - 4, "\r\n\r\n", 4) == 0);
    check(m->error == EG_HTTP1_OK && m->why == NULL);
    check(m->minor_version == 0 || m->minor_version == 1);
    check(m->headers == h && m->nheaders <= lim.max_headers && m->nheaders <= HCAP);
    for (size_t i = 0; i < m->nheaders; i++) {
        check(h[i].name_len > 0);
        check_slice(buf, head, h[i].name, h[i].name_len);
        check_slice(buf, head, h[i].value, h[i].value_len);
        check(h[i].value == NULL || h[i].value >= buf);
        if (h[i].value_len) {
            char first = h[i].value[0], last = h[i].value[h[i].value_len - 1];
            check(first != ' ' && first != '\t' && last != ' ' && last != '\t');
            check(memchr(h[i].value, '\r', h[i].value_len) == NULL);
            check(memchr(h[i].value, '\n', h[i].value_len) == NULL);
        }
    }
    check(m->framing <= EG_FRAMING_UNTIL_CLOSE);
    if (m->framing == EG_FRAMING_LENGTH) check(m->content_length <= 999999999999999999ULL);
    else check(m->content_length == 0);
    if (is_request) {
        check(m->method_len > 0 && m->target_len > 0 && m->target_len <= lim.max_uri);
        check_slice(buf, head, m->method, m->method_len);
        check_slice(buf, head, m->target, m->target_len);
        check(m->framing != EG_FRAMING_UNTIL_CLOSE);
        if (m->minor_version == 1) check(m->host != NULL);
        if (m->host) check_slice(buf, head, m->host, m->host_len);
    } else {
        check(m->status >= 100 && m->status <= 599);
        check_slice(buf, head, m->reason, m->reason_len);
        if (m->framing == EG_FRAMING_UNTIL_CLOSE) check(!m->keep_alive);
    }
}

static void check_same(int rc1, const eg_http1_msg_t *a, int rc2, const eg_http1_msg_t *b)
{
    check(rc1 == rc2 && a->error == b->error);
    if (rc1 == EG_EPARSE) {
        check(strcmp(a->why, b->why) == 0 && a->error_offset == b->error_offset);
        return;
    }
    if (rc1 < 0) return;
    check(a->method == b->method && a->method_len == b->method_len);
    check(a->target == b->target && a->target_len == b->target_len);
    check(a->status == b->status && a->reason == b->reason && a->reason_len == b->reason_len);
    check(a->minor_version == b->minor_version && a->nheaders == b->nheaders);
    check(a->framing == b->framing && a->content_length == b->content_length);
    check(a->keep_alive == b->keep_alive && a->expect_continue == b->expect_continue);
    check(a->upgrade == b->upgrade && a->head_len == b->head_len);
}

static int parse(const char *buf, size_t len, eg_http_header_t *h, size_t *scanned, int is_request,
                 int head_request, eg_http1_msg_t *m)
{
    return is_request ? eg_http1_parse_request(buf, len, &lim, h, HCAP, scanned, m)
                      : eg_http1_parse_response(buf, len, &lim, h, HCAP, scanned, head_request, m);
}

/* One-shot versus fed in three pieces at the cut points a <= b. */
static void fuzz_head(const char *buf, size_t size, size_t a, size_t b, int is_request, int head_request)
{
    eg_http_header_t h1[HCAP], h2[HCAP];
    eg_http1_msg_t whole, inc;
    size_t scanned = 0;
    int rc = parse(buf, size, h1, &scanned, is_request, head_request, &whole);
    check_result(buf, size, rc, &whole, h1, is_request);
    if (rc > 0) check(scanned == (size_t)rc);

    size_t s2 = 0;
    int r = parse(buf, a, h2, &s2, is_request, head_request, &inc);
    check_result(buf, a, r, &inc, h2, is_request);
    if (r != EG_EAGAIN) return; /* a verdict ends the message; the caller stops feeding */
    check(s2 <= a);
    r = parse(buf, b, h2, &s2, is_request, head_request, &inc);
    check_result(buf, b, r, &inc, h2, is_request);
    if (r != EG_EAGAIN) {
        /* a verdict on a prefix: a fresh parse of that prefix agrees */
        eg_http1_msg_t fresh;
        eg_http_header_t h3[HCAP];
        size_t s3 = 0;
        check_same(r, &inc, parse(buf, b, h3, &s3, is_request, head_request, &fresh), &fresh);
        return;
    }
    r = parse(buf, size, h2, &s2, is_request, head_request, &inc);
    check_same(r, &inc, rc, &whole);
}

/* Chunked: at once, in pieces of `step` bytes, and in place must agree. */
static void fuzz_chunked(const char *buf, size_t size, size_t step)
{
    char *once = malloc(size + 1), *pieces = malloc(size + 1), *inplace = malloc(size + 1);
    check(once && pieces && inplace);
    size_t max_line = 64;

    eg_chunked_t st1;
    memset(&st1, 0, sizeof(st1));
    size_t pos = 0, o1 = 0;
    int rc1 = EG_EAGAIN;
    while (pos < size) {
        size_t used = 0, dl = 0;
        const char *d = NULL;
        rc1 = eg_chunked_data(&st1, buf + pos, size - pos, max_line, &used, &d, &dl);
        check(used <= size - pos);
        check_slice(buf + pos, size - pos, d, dl);
        if (rc1 == EG_EPARSE) {
            check(st1.why != NULL && dl == 0);
            pos += used;
            break;
        }
        check(dl <= used);
        memcpy(once + o1, d ? d : "", dl);
        o1 += dl;
        pos += used;
        if (rc1 == EG_OK) break;
        check(used > 0);
    }
    check(st1.body_bytes == o1);
    size_t end1 = pos;

    /* the same in pieces */
    eg_chunked_t st2;
    memset(&st2, 0, sizeof(st2));
    size_t o2 = 0, fed = 0;
    int rc2 = EG_EAGAIN;
    pos = 0;
    while (pos < size && rc2 == EG_EAGAIN) {
        fed = size - pos < step ? size : pos + step;
        while (pos < fed) {
            size_t used = 0, dl = 0;
            const char *d = NULL;
            rc2 = eg_chunked_data(&st2, buf + pos, fed - pos, max_line, &used, &d, &dl);
            check(used <= fed - pos);
            check_slice(buf + pos, fed - pos, d, dl);
            memcpy(pieces + o2, d ? d : "", dl);
            o2 += dl;
            pos += used;
            if (rc2 != EG_EAGAIN) break;
        }
    }
    check(rc1 == rc2 && o1 == o2 && memcmp(once, pieces, o1) == 0);
    if (rc1 != EG_EAGAIN) check(pos == end1);
    if (rc1 == EG_EPARSE) check(strcmp(st1.why, st2.why) == 0);

    /* eg_chunked_feed agrees on where the body ends */
    eg_chunked_t st3;
    memset(&st3, 0, sizeof(st3));
    size_t consumed = 0;
    int rc3 = eg_chunked_feed(&st3, buf, size, max_line, &consumed);
    check(rc3 == rc1 && consumed <= size);
    if (rc1 != EG_EAGAIN) check(consumed == end1);
    else check(consumed == size);

    /* and decoding in place */
    memcpy(inplace, buf, size);
    eg_chunked_t st4;
    memset(&st4, 0, sizeof(st4));
    size_t len = size, rest = 0;
    int rc4 = eg_chunked_decode(&st4, inplace, &len, max_line, &rest);
    check(rc4 == rc1 && len == o1 && memcmp(inplace, once, o1) == 0);
    if (rc4 == EG_OK) check(rest == size - end1 && memcmp(inplace + len, buf + end1, rest) == 0);
    free(once);
    free(pieces);
    free(inplace);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    /* cut points and step from the input's ends, so they vary with it */
    unsigned seed = size ? (unsigned)data[0] * 131u + (unsigned)data[size - 1] * 7u + (unsigned)size : 0;
    size_t a = size ? seed % (size + 1) : 0;
    size_t b = a + (size - a ? (seed / 7) % (size - a + 1) : 0);
    fuzz_head(buf, size, a, b, 1, 0);
    fuzz_head(buf, size, a, b, 0, (int)(seed & 1));
    fuzz_chunked(buf, size, 1 + seed % 13);
    free(buf);
    return 0;
}

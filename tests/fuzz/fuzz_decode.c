/* fuzz_decode.c - any bytes as a compressed body, and as the plain body of
 * a round trip. Invariants checked (abort() on violation):
 *  - nothing is read or written outside the buffers (the input is an
 *    exact-size heap block, so ASan sees any overrun);
 *  - a decode that succeeds returns at most max_out bytes and at most
 *    max_ratio times the input, NUL-terminated; one that fails returns
 *    EG_EPARSE or EG_ETOOBIG (never EG_EINVAL for a supported coding) and
 *    leaves the outputs untouched;
 *  - the bytes deflated by zlib (gzip, zlib and raw) decode back to
 *    exactly themselves when the bounds allow them, and to EG_ETOOBIG when
 *    they do not;
 *  - the Content-Encoding parser never reads past its input and its result
 *    is one of the four codings.
 * The first byte picks the bounds, so small caps and ratios are explored.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "errgate/decode.h"

static void check(int ok)
{
    if (!ok) abort();
}

static void decode_any(eg_coding_t coding, const char *in, size_t n, size_t max_out, unsigned ratio)
{
    char sentinel = 0, *out = &sentinel;
    size_t len = 7;
    int rc = eg_decode_body(coding, in, n, max_out, ratio, &out, &len);
    if (rc == EG_OK) {
        check(len <= max_out && (!ratio || len <= (size_t)ratio * n) && out[len] == '\0');
        free(out);
    } else {
        check(rc == EG_EPARSE || rc == EG_ETOOBIG);
        check(out == &sentinel && len == 7);
    }
}

static void round_trip(const uint8_t *plain, size_t n, int wbits, eg_coding_t coding,
                       size_t max_out)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    check(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&z, (uLong)n);
    unsigned char *packed = malloc(cap ? cap : 1);
    check(packed != NULL);
    z.next_in = (unsigned char *)(uintptr_t)plain;
    z.avail_in = (uInt)n;
    z.next_out = packed;
    z.avail_out = (uInt)cap;
    check(deflate(&z, Z_FINISH) == Z_STREAM_END);
    size_t zn = cap - z.avail_out;
    deflateEnd(&z);
    char *back = NULL;
    size_t blen = 0;
    int rc = eg_decode_body(coding, (const char *)packed, zn, max_out, 0, &back, &blen);
    if (n <= max_out) {
        check(rc == EG_OK && blen == n && memcmp(back, plain, n) == 0);
        free(back);
    } else {
        check(rc == EG_ETOOBIG);
    }
    free(packed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const size_t caps[] = {0, 1, 64, 4096, 65536, 1u << 20};
    static const unsigned ratios[] = {0, 1, 3, 100};
    size_t max_out = caps[data[0] % 6];
    unsigned ratio = ratios[(data[0] >> 3) % 4];
    size_t n = size - 1;
    char *in = malloc(n ? n : 1);
    check(in != NULL);
    memcpy(in, data + 1, n);
    decode_any(EG_CODING_GZIP, in, n, max_out, ratio);
    decode_any(EG_CODING_DEFLATE, in, n, max_out, ratio);
    decode_any(EG_CODING_IDENTITY, in, n, max_out, ratio);
    eg_coding_t c = eg_content_coding(EG_CODING_IDENTITY, in, n);
    check(c == EG_CODING_IDENTITY || c == EG_CODING_GZIP || c == EG_CODING_DEFLATE ||
          c == EG_CODING_UNSUPPORTED);
    round_trip((const uint8_t *)in, n, 15 + 16, EG_CODING_GZIP, max_out);
    round_trip((const uint8_t *)in, n, 15, EG_CODING_DEFLATE, max_out);
    round_trip((const uint8_t *)in, n, -15, EG_CODING_DEFLATE, max_out);
    free(in);
    return 0;
}

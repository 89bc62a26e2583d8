/* decode.c - content codings with zlib (see decode.h).
 *
 * One inflate stream over the whole buffer: the output grows by doubling
 * up to the bound plus one byte, so exceeding the bound is seen without
 * ever holding more than it. "deflate" is meant to be zlib-wrapped (RFC
 * 9110 8.4.1.2) but servers have long sent raw deflate, so the wrapper is
 * recognised by its header check and raw deflate read otherwise, as
 * browsers and curl do.
 */
#include "errgate/decode.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

static int token_is(const char *t, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(t, name, n) == 0;
}

eg_coding_t eg_content_coding(eg_coding_t prev, const char *v, size_t n)
{
    size_t i = 0;
    while (i <= n) {
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        i++; /* past the comma (or the end) */
        if (a == b || token_is(v + a, b - a, "identity")) continue;
        eg_coding_t c = token_is(v + a, b - a, "gzip") || token_is(v + a, b - a, "x-gzip")
                            ? EG_CODING_GZIP
                        : token_is(v + a, b - a, "deflate") ? EG_CODING_DEFLATE
                                                            : EG_CODING_UNSUPPORTED;
        /* a second coding: decoding in reverse order is possible, but no
         * server sends it for an error body and each layer is a bomb of its own */
        prev = prev == EG_CODING_IDENTITY ? c : EG_CODING_UNSUPPORTED;
    }
    return prev;
}

const char *eg_coding_name(eg_coding_t coding)
{
    switch (coding) {
    case EG_CODING_IDENTITY:
        return "identity";
    case EG_CODING_GZIP:
        return "gzip";
    case EG_CODING_DEFLATE:
        return "deflate";
    default:
        return "unsupported";
    }
}

/* The two bytes of a zlib header (RFC 1950 2.2): method 8, check bits. */
static int zlib_header(const unsigned char *p, size_t n)
{
    return n >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0;
}

int eg_decode_body(eg_coding_t coding, const char *in, size_t n, size_t max_out, unsigned max_ratio,
                   char **out, size_t *outlen)
{
    if (coding == EG_CODING_UNSUPPORTED || (!in && n)) return EG_EINVAL;
    size_t limit = max_out;
    if (max_ratio && n <= SIZE_MAX / max_ratio && n * max_ratio < limit) limit = n * max_ratio;
    if (limit > UINT_MAX - 2) limit = UINT_MAX - 2; /* zlib counts in uInt */
    if (coding == EG_CODING_IDENTITY) {
        if (n > limit) return EG_ETOOBIG;
        char *p = malloc(n + 1);
        if (!p) return EG_ENOMEM;
        if (n) memcpy(p, in, n);
        p[n] = '\0';
        *out = p;
        *outlen = n;
        return EG_OK;
    }
    if (n > UINT_MAX) return EG_ETOOBIG;
    const unsigned char *src = (const unsigned char *)in;
    int wbits = coding == EG_CODING_GZIP ? 15 + 16 : zlib_header(src, n) ? 15 : -15;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, wbits) != Z_OK) return EG_ENOMEM;
    size_t cap = n < 1024 ? 4096 : n * 4; /* most error bodies fit at once */
    if (cap > limit + 1) cap = limit + 1;
    char *buf = malloc(cap + 1);
    int rc = buf ? EG_OK : EG_ENOMEM;
    size_t have = 0;
    z.next_in = (unsigned char *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    while (rc == EG_OK) {
        z.next_out = (unsigned char *)buf + have;
        z.avail_out = (uInt)(cap - have);
        int zr = inflate(&z, Z_NO_FLUSH);
        have = (size_t)((char *)z.next_out - buf);
        if (have > limit) {
            rc = EG_ETOOBIG;
        } else if (zr == Z_STREAM_END) {
            /* gzip: another member may follow (RFC 1952 2.2); else nothing may */
            if (z.avail_in == 0) break;
            if (coding == EG_CODING_GZIP && z.avail_in >= 2 && z.next_in[0] == 0x1f &&
                z.next_in[1] == 0x8b)
                rc = inflateReset(&z) == Z_OK ? EG_OK : EG_EPARSE;
            else
                rc = EG_EPARSE;
        } else if (zr == Z_OK || zr == Z_BUF_ERROR) {
            if (z.avail_out == 0) { /* full: grow towards the bound plus one */
                size_t ncap = cap * 2 < limit + 1 ? cap * 2 : limit + 1;
                char *p = ncap > cap ? realloc(buf, ncap + 1) : NULL;
                if (ncap <= cap)
                    rc = EG_ETOOBIG;
                else if (!p)
                    rc = EG_ENOMEM;
                else
                    buf = p, cap = ncap;
            } else if (z.avail_in == 0) {
                rc = EG_EPARSE; /* the input ended before the stream did: truncated */
            }
        } else {
            rc = zr == Z_MEM_ERROR ? EG_ENOMEM : EG_EPARSE;
        }
    }
    inflateEnd(&z);
    if (rc != EG_OK) {
        free(buf);
        return rc;
    }
    buf[have] = '\0';
    *out = buf;
    *outlen = have;
    return EG_OK;
}

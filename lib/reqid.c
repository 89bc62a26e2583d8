/* reqid.c - request ids and traceparent (see reqid.h). */
#include "errgate/reqid.h"

#include <string.h>

/* The bytes a request id may hold (A-Z a-z 0-9 + / = - _ .), one bit each:
 * every gateway error checks its id again before writing it into a head,
 * and a bit test is a third of the comparisons it replaces. */
static const uint64_t rid_bits[2] = {0x23ffe80000000000ull, 0x07fffffe87fffffeull};

int eg_reqid_valid(const char *s, size_t n)
{
    if (n < 1 || n > EG_REQID_MAX) return 0;
    uint64_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bad |= (c >> 7) | (~rid_bits[(c >> 6) & 1] >> (c & 63) & 1);
    }
    return bad == 0;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
/* Why SWAR: every request gets 16 random bytes as an id and a proxied one
 * 24 more as traceparent; a 2-byte copy per byte cost ~9 instructions a
 * byte, four bytes in one 64-bit word cost ~5. The bytes are spread to
 * every other byte of the word, split into nibbles (high nibble first in
 * memory: the lower byte of a little-endian word), and made digits: '0' +
 * nibble, plus 'a' - '0' - 10 where nibble + 6 carries into bit 4.
 * n is a multiple of 4. */
static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v;
        memcpy(&v, b + i, 4);
        uint64_t x = v;
        x = (x | x << 16) & 0x0000ffff0000ffffull;
        x = (x | x << 8) & 0x00ff00ff00ff00ffull;
        x = (x >> 4 & 0x000f000f000f000full) | (x & 0x000f000f000f000full) << 8;
        uint64_t letters = (x + 0x0606060606060606ull) >> 4 & 0x0101010101010101ull;
        x += 0x3030303030303030ull + letters * ('a' - '0' - 10);
        memcpy(out + 2 * i, &x, 8);
    }
}
#else
/* "000102...ff": two hex digits per byte value, one 2-byte copy per byte */
static const char hex2[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) memcpy(out + 2 * i, hex2 + 2 * b[i], 2);
}
#endif

void eg_reqid_generate(const uint8_t rnd[16], char *out)
{
    memcpy(out, "req_", 4);
    hex(rnd, 16, out + 4);
    out[EG_REQID_GEN_LEN] = '\0';
}

static int lowhex(const char *s, size_t n, int *allzero)
{
    *allzero = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
        if (c != '0') *allzero = 0;
    }
    return 1;
}

int eg_traceparent_valid(const char *s, size_t n)
{
    int z;
    if (n != EG_TRACEPARENT_LEN) return 0;
    if (s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-') return 0;
    if (!lowhex(s + 3, 32, &z) || z) return 0;
    if (!lowhex(s + 36, 16, &z) || z) return 0;
    return lowhex(s + 53, 2, &z);
}

void eg_traceparent_generate(const uint8_t rnd[24], char *out)
{
    uint8_t b[24];
    memcpy(b, rnd, sizeof(b));
    b[15] |= 1; /* never all zero */
    b[23] |= 1;
    memcpy(out, "00-", 3);
    hex(b, 16, out + 3);
    out[35] = '-';
    hex(b + 16, 8, out + 36);
    memcpy(out + 52, "-01", 3);
    out[EG_TRACEPARENT_LEN] = '\0';
}

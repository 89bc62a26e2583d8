/* jsonr_scan.h - the JSON reader's token scanners (private to the library),
 * shared by jsonr.c and the schema's fast path (schema_fast.c), so that both
 * accept exactly the same strings and whitespace: what jansson accepts
 * (jsonr.h). Static inline: each includer gets its own copy, inlined into
 * its loop.
 */
#ifndef EG_JSONR_SCAN_H
#define EG_JSONR_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "utf8.h"
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#define BAD ((size_t)-1) /* scan result: invalid token */

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EG_JR_SWAR_CTZ 1
#endif

/* the value of a hex digit (look only after is_hex()) */
static const signed char hexv[256] = {
    ['0'] = 0,  ['1'] = 1,  ['2'] = 2,  ['3'] = 3,  ['4'] = 4,  ['5'] = 5,  ['6'] = 6,  ['7'] = 7,
    ['8'] = 8,  ['9'] = 9,  ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
};

static inline int is_hex(unsigned c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The value of the 4 hex digits at s, or -1. */
static inline long hex4(const unsigned char *s)
{
    if (!is_hex(s[0]) || !is_hex(s[1]) || !is_hex(s[2]) || !is_hex(s[3])) return -1;
    return (long)hexv[s[0]] << 12 | (long)hexv[s[1]] << 8 | (long)hexv[s[2]] << 4 | hexv[s[3]];
}

static inline size_t skip_ws(const unsigned char *s, size_t n, size_t i)
{
    if (i < n && s[i] > ' ') return i; /* compact JSON: no whitespace between tokens */
    if (i + 1 < n && s[i] == ' ' && s[i + 1] > ' ') return i + 1; /* or one space: ", " ": " */
    while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

/* Scans a string's contents from i (just after the opening quote): the index of the
   closing quote, or BAD. Everything jansson checks is checked here, so that a token
   that passes never needs looking at again: escapes, \u hex digits, surrogate pairs,
   \u0000 (rejected in keys and, without JSON_ALLOW_NUL, in values), raw control
   characters and UTF-8. *esc is set when there is any escape. */
static size_t scan_string_slow(const unsigned char *s, size_t n, size_t i, uint8_t *esc)
{
    for (;;) {
#ifdef EG_JR_SWAR_CTZ
        while (i + 8 <= n) {
            uint64_t m = eg_json_special8(s + i);
            if (m) {
                i += (size_t)__builtin_ctzll(m) >> 3;
                break;
            }
            i += 8;
        }
#else
        while (i + 8 <= n && !eg_json_special8(s + i))
            i += 8;
#endif
        if (i >= n) return BAD;
        unsigned c = s[i];
        if (c == '"') return i;
        if (c == '\\') {
            if (n - i < 2) return BAD;
            switch (s[i + 1]) {
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                i += 2;
                break;
            case 'u': {
                if (n - i < 6) return BAD;
                long cp = hex4(s + i + 2);
                i += 6;
                if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
                    return BAD; /* bad hex, NUL, lone low */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (n - i < 6 || s[i] != '\\' || s[i + 1] != 'u') return BAD;
                    long lo = hex4(s + i + 2);
                    if (lo < 0xDC00 || lo > 0xDFFF) return BAD;
                    i += 6;
                }
                break;
            }
            default:
                return BAD;
            }
            *esc = 1;
        } else if (c < 0x20) {
            return BAD;
        } else if (c >= 0x80) {
            size_t k = eg_utf8_len(s + i, n - i);
            if (!k) return BAD;
            i += k;
        } else {
            i++; /* a plain byte in the last 7 */
        }
    }
}

/* scan_string_slow() with the common case inline: plain ASCII up to the closing quote,
   found 8 bytes at a time; anything else (an escape, a control or non-ASCII byte, the
   end of the input near) goes the slow way from where the scan stopped. */
static inline size_t scan_string(const unsigned char *s, size_t n, size_t i, uint8_t *esc)
{
#if defined(__SSE2__) && defined(__GNUC__)
    /* 16 bytes at a time: a quote, a backslash, or (signed) below 0x20, which takes in
       the control bytes and every non-ASCII one (negative as signed char) */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m) {
            i += (size_t)__builtin_ctz(m);
            if (s[i] == '"') return i;
            return scan_string_slow(s, n, i, esc);
        }
        i += 16;
    }
    if (i < n && n >= 16) {
        /* the tail: the last 16 bytes in one load, those before i left out
         * (a long string's end, near the end of the input) */
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                         _mm_cmplt_epi8(v, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit) >> (i + 16 - n);
        if (!m) return BAD; /* no closing quote */
        i += (size_t)__builtin_ctz(m);
        if (s[i] == '"') return i;
        return scan_string_slow(s, n, i, esc);
    }
#endif
#ifdef EG_JR_SWAR_CTZ
    while (i + 8 <= n) {
        uint64_t m = eg_json_special8(s + i);
        if (m) {
            i += (size_t)__builtin_ctzll(m) >> 3;
            if (s[i] == '"') return i;
            break;
        }
        i += 8;
    }
#endif
    return scan_string_slow(s, n, i, esc);
}

#endif

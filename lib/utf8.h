/* utf8.h - UTF-8 validation shared by the JSON reader, the JSON writer and
 * the excerpts of non-JSON bodies, and the 8-byte scan for bytes a JSON
 * string cannot hold as they are (private to the library). */
#ifndef EG_UTF8_H
#define EG_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the valid multi-byte UTF-8 sequence at s (n bytes left), or 0
 * if invalid or ASCII. RFC 3629, as jansson checks it: no overlongs, no
 * surrogates, nothing above U+10FFFF. */
static inline size_t eg_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c >= 0xC2 && c <= 0xDF) return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

/* The 8 bytes at u with bit 7 set in each byte that is a quote, backslash,
   control or non-ASCII (exact for the lowest such byte: borrows only reach
   upwards, which is all a scanner that stops at the first one needs); 0
   when all 8 can be copied into a JSON string as they are. */
static inline uint64_t eg_json_special8(const unsigned char *u)
{
    uint64_t v;
    memcpy(&v, u, 8);
    uint64_t ctl = (v - 0x2020202020202020ull) & ~v;
    uint64_t q = v ^ 0x2222222222222222ull, b = v ^ 0x5c5c5c5c5c5c5c5cull;
    uint64_t hit = ctl | ((q - 0x0101010101010101ull) & ~q) | ((b - 0x0101010101010101ull) & ~b) | v;
    return hit & 0x8080808080808080ull;
}

#endif

/* utf8.h - UTF-8 validation shared by the JSON reader, the JSON writer and
 * the excerpts of non-JSON bodies (private to the library). */
#ifndef EG_UTF8_H
#define EG_UTF8_H

#include <stddef.h>

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

#endif

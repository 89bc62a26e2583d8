/* jsonw.c - JSON output without allocation (see jsonw.h).
 *
 * String escaping validates UTF-8 as it goes (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF) so a hostile upstream body can never
 * make errgate emit invalid JSON. Runs of safe bytes are copied in one go.
 */
#include "jsonw.h"
#include "utf8.h"

#include <stdint.h>
#include <stdio.h>

/* 1 = byte needs attention (quote, backslash, control, non-ASCII). */
static const unsigned char special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

int eg_jsonw_is_plain(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    /* the common case, ASCII throughout: whole words, the last one
     * overlapping the one before instead of a byte loop for the tail */
    if (n >= 8) {
        while (i + 8 <= n && !eg_json_special8(s + i)) i += 8;
        if (i + 8 > n && !eg_json_special8(s + n - 8)) return 1;
    }
    while (i < n) {
        while (i + 8 <= n && !eg_json_special8(s + i)) i += 8;
        if (i >= n) break;
        if (s[i] >= 0x80) {
            size_t k = eg_utf8_len(s + i, n - i);
            if (!k) return 0;
            i += k;
        } else if (special[s[i]]) {
            return 0;
        } else {
            i++;
        }
    }
    return 1;
}

void eg_jsonw_str_body(eg_jsonw_t *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        /* eight bytes at a time while none is a quote, backslash, control or non-ASCII */
        while (run + 8 <= n && !eg_json_special8(s + run)) run += 8;
        while (run < n && !special[s[run]]) run++;
        if (run > i) eg_jsonw_put(w, str + i, run - i);
        i = run;
        if (i >= n) break;
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = eg_utf8_len(s + i, n - i);
            if (k) {
                eg_jsonw_put(w, str + i, k);
                i += k;
            } else {
                eg_jsonw_put(w, "\xEF\xBF\xBD", 3); /* U+FFFD for one bad byte */
                i++;
            }
            continue;
        }
        switch (c) {
        case '"': eg_jsonw_put(w, "\\\"", 2); break;
        case '\\': eg_jsonw_put(w, "\\\\", 2); break;
        case '\n': eg_jsonw_put(w, "\\n", 2); break;
        case '\r': eg_jsonw_put(w, "\\r", 2); break;
        case '\t': eg_jsonw_put(w, "\\t", 2); break;
        case '\b': eg_jsonw_put(w, "\\b", 2); break;
        case '\f': eg_jsonw_put(w, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            eg_jsonw_put(w, u, 6);
        }
        }
        i++;
    }
}

/* NUL-terminated strings: scan once for both the end and the bytes that
 * need escaping, instead of strlen() and then a second pass. */
void eg_jsonw_cstr(eg_jsonw_t *w, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    eg_jsonw_ch(w, '"');
    for (;;) {
        size_t run = i;
        while (!special[s[run]]) run++;
        if (run > i) eg_jsonw_put(w, str + i, run - i);
        if (s[run] == '\0') break;
        /* a byte that needs care: hand the rest to the general path */
        eg_jsonw_str_body(w, str + run, strlen(str + run));
        break;
    }
    eg_jsonw_ch(w, '"');
}

void eg_jsonw_str(eg_jsonw_t *w, const char *s, size_t n)
{
    /* fast path: a string with nothing to escape and room to spare is one
     * check over 8-byte words and one copy, without per-piece bounds checks */
    if (w->pos < w->cap && w->cap - w->pos > n + 2) {
        const unsigned char *u = (const unsigned char *)s;
        size_t i = 0;
        while (i + 8 <= n && !eg_json_special8(u + i)) i += 8;
        for (; i < n && !special[u[i]]; i++) {
        }
        if (i == n) {
            eg_jsonw_str_plain(w, s, n);
            return;
        }
    }
    eg_jsonw_ch(w, '"');
    eg_jsonw_str_body(w, s, n);
    eg_jsonw_ch(w, '"');
}

void eg_jsonw_int(eg_jsonw_t *w, long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    eg_jsonw_put(w, tmp + i, sizeof(tmp) - i);
}

void eg_jsonw_value(eg_jsonw_t *w, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        eg_jsonw_ch(w, '{');
        json_object_foreach((json_t *)v, k, x) {
            if (!first) eg_jsonw_ch(w, ',');
            first = 0;
            eg_jsonw_str(w, k, strlen(k));
            eg_jsonw_ch(w, ':');
            eg_jsonw_value(w, x);
        }
        eg_jsonw_ch(w, '}');
        break;
    }
    case JSON_ARRAY: {
        eg_jsonw_ch(w, '[');
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i) eg_jsonw_ch(w, ',');
            eg_jsonw_value(w, json_array_get(v, i));
        }
        eg_jsonw_ch(w, ']');
        break;
    }
    case JSON_STRING: eg_jsonw_str(w, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: eg_jsonw_int(w, (long long)json_integer_value(v)); break;
    case JSON_REAL: {
        char tmp[32];
        int k = snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(v));
        /* keep it a real on re-read: 1.0 must not become 1 */
        int has_dot = 0;
        for (int i = 0; i < k; i++)
            if (tmp[i] == '.' || tmp[i] == 'e' || tmp[i] == 'n' || tmp[i] == 'i') has_dot = 1;
        eg_jsonw_put(w, tmp, (size_t)k);
        if (!has_dot) eg_jsonw_put(w, ".0", 2);
        break;
    }
    case JSON_TRUE: eg_jsonw_put(w, "true", 4); break;
    case JSON_FALSE: eg_jsonw_put(w, "false", 5); break;
    case JSON_NULL: eg_jsonw_put(w, "null", 4); break;
    }
}

size_t eg_jsonw_finish(eg_jsonw_t *w)
{
    if (w->cap) w->buf[w->pos < w->cap ? w->pos : w->cap - 1] = '\0';
    return w->pos;
}

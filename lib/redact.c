/* redact.c - query parameters hidden from the access log (see redact.h). */
#include "redact.h"

#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One byte of a name as it is compared: ASCII lower case, and the bytes
 * PHP turns into '_' in parameter names turned into '_' here too. */
static unsigned char fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return (unsigned char)(c - 'A' + 'a');
    if (c == '.' || c == ' ') return '_';
    return c;
}

/* 1 when the decoded, folded segment equals one of the names, folded. */
static int listed(const unsigned char *seg, size_t n, char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++) {
        const unsigned char *w = (const unsigned char *)names[i];
        size_t k = 0;
        while (k < n && w[k] && fold(w[k]) == seg[k])
            k++;
        if (k == n && !w[k]) return 1;
    }
    return 0;
}

int eg_redact_name(const char *name, size_t n, char *const *names, size_t nnames)
{
    unsigned char dec[512];
    size_t d = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        int hi, lo;
        if (c == '%' && i + 2 < n && (hi = hexval((unsigned char)name[i + 1])) >= 0 &&
            (lo = hexval((unsigned char)name[i + 2])) >= 0) {
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+') {
            c = ' '; /* form encoding */
        }
        if (c == '\0') break;
        /* longer than anything worth comparing: hiding costs only a log value */
        if (d == sizeof(dec)) return 1;
        dec[d++] = fold(c);
    }
    /* "auth[api_key][]" is compared as "auth", "api_key" */
    for (size_t s = 0; s < d;) {
        size_t e = s;
        while (e < d && dec[e] != '[' && dec[e] != ']')
            e++;
        if (e > s && listed(dec + s, e - s, names, nnames)) return 1;
        s = e + 1;
    }
    return 0;
}

size_t eg_redact_target(const char *t, size_t n, char *const *names, size_t nnames, char *out,
                        size_t cap)
{
    const char *q = memchr(t, '?', n);
    size_t o = q ? (size_t)(q - t) : n;
    if (o > 600) o = 600;
    if (o > cap) o = cap;
    memcpy(out, t, o);
    if (!q || o == cap) return o;
    out[o++] = '?';
    const char *p = q + 1, *end = t + n;
    while (p < end) {
        const char *pe = p;
        while (pe < end && *pe != '&' && *pe != ';')
            pe++;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        size_t nlen = eq ? (size_t)(eq - p) : (size_t)(pe - p);
        int hide = eq && eg_redact_name(p, nlen, names, nnames);
        size_t take = hide ? nlen + 1 : (size_t)(pe - p);
        if (o + take + (hide ? 10 : 0) + (pe < end) > cap) break;
        memcpy(out + o, p, take);
        o += take;
        if (hide) {
            memcpy(out + o, "[REDACTED]", 10);
            o += 10;
        }
        if (pe < end) out[o++] = *pe;
        p = pe < end ? pe + 1 : end;
    }
    return o;
}

/* path.c - request-path normalization (see path.h).
 *
 * One left-to-right pass that writes as it reads, so the output can share
 * the input's buffer: decoding only shortens, so the write cursor never
 * passes the read cursor. Each segment is written out as it is decoded; when
 * it ends, it is classified ("." / ".." / other) and RFC 3986 5.2.4 is
 * applied to what was written: a "." is taken back, a ".." takes back itself
 * and the segment before it (a backward scan over bytes that are being
 * removed, so each byte is scanned back at most once: linear in total).
 * `depth` counts the segments the output holds, which is what decides that a
 * ".." climbs above the root; it is kept in pass-through mode too, where
 * nothing is rewritten but the refusals must not change.
 *
 * UTF-8 in percent-encoded bytes is checked by a small state machine fed one
 * decoded byte at a time (bytes still expected, range of the next one), as
 * RFC 3629's table says, so no look-ahead is needed.
 */
#include "errgate/path.h"

#include <stdint.h>
#include <string.h>

static const char HEX[] = "0123456789ABCDEF";

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* RFC 3986 2.3: the characters whose encoding means the same as themselves. */
static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void eg_path_opts_default(eg_path_opts_t *o)
{
    o->normalize = 1;
    o->merge_slashes = 1;
    o->reject_encoded_slash = 1;
}

/* A segment's decoded text, as far as dot-segments care: the number of
 * '.' seen while nothing else was, or OTHER. */
enum { SEG_EMPTY = 0, SEG_DOT = 1, SEG_DOTDOT = 2, SEG_OTHER = 3 };

static unsigned seg_feed(unsigned seg, unsigned char decoded)
{
    if (seg == SEG_OTHER) return SEG_OTHER;
    return decoded == '.' ? seg + 1 : SEG_OTHER; /* "..." is OTHER too */
}

/* Next UTF-8 state after the lead byte b: bytes still expected in *need and
 * the allowed range of the next one; 0 when b cannot start a sequence. */
static int utf8_lead(unsigned char b, unsigned *need, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        *need = 1;
    else if (b >= 0xE0 && b <= 0xEF)
        *need = 2;
    else if (b >= 0xF0 && b <= 0xF4)
        *need = 3;
    else
        return 0;              /* continuation without a lead, C0/C1 (overlong), F5+ */
    if (b == 0xE0) *lo = 0xA0; /* overlong */
    if (b == 0xED) *hi = 0x9F; /* surrogates */
    if (b == 0xF0) *lo = 0x90; /* overlong */
    if (b == 0xF4) *hi = 0x8F; /* above U+10FFFF */
    return 1;
}

/* The fast check is a three-state machine over the bytes after the first
 * '/': IN (the last byte was not '/'), SLASH (it was) and BAD (absorbing:
 * not a byte that passes as it is, or '/' or '.' right after a '/', which
 * starts a "//" or what may be a dot segment). States are premultiplied by
 * 256, so a state plus a byte indexes path_next: one load and one add a
 * byte. PN_PLAIN: unreserved, sub-delims, ':', '@' and '/' (RFC 3986 3.3). */
enum { PN_IN = 0, PN_SLASH = 256, PN_BAD = 512 };
#define PN_PLAIN(c)                                                                                \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') ||     \
     (c) == '-' || (c) == '.' || (c) == '_' || (c) == '~' || (c) == '!' || (c) == '$' ||           \
     ((c) >= '&' && (c) <= ',') || (c) == ';' || (c) == '=' || (c) == ':' || (c) == '@' ||         \
     (c) == '/')
#define PN_FROM_IN(c)    (!PN_PLAIN(c) ? PN_BAD : (c) == '/' ? PN_SLASH : PN_IN)
#define PN_FROM_SLASH(c) (!PN_PLAIN(c) || (c) == '/' || (c) == '.' ? PN_BAD : PN_IN)
#define PN_FROM_BAD(c)   PN_BAD
#define PN_R16(f, b)                                                                               \
    f(b), f(b + 1), f(b + 2), f(b + 3), f(b + 4), f(b + 5), f(b + 6), f(b + 7), f(b + 8),          \
        f(b + 9), f(b + 10), f(b + 11), f(b + 12), f(b + 13), f(b + 14), f(b + 15)
#define PN_ROW(f)                                                                                  \
    PN_R16(f, 0), PN_R16(f, 16), PN_R16(f, 32), PN_R16(f, 48), PN_R16(f, 64), PN_R16(f, 80),       \
        PN_R16(f, 96), PN_R16(f, 112), PN_R16(f, 128), PN_R16(f, 144), PN_R16(f, 160),             \
        PN_R16(f, 176), PN_R16(f, 192), PN_R16(f, 208), PN_R16(f, 224), PN_R16(f, 240)
static const uint16_t path_next[3 * 256] = {PN_ROW(PN_FROM_IN), PN_ROW(PN_FROM_SLASH),
                                            PN_ROW(PN_FROM_BAD)};

/* Why: nearly every path a gateway sees is already normal, and the full
 * machine costs ~35 instructions a byte; the state machine above says in
 * about four a byte whether anything could change or be refused. */
int eg_path_is_normal(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    if (n == 0 || s[0] != '/') return 0;
    unsigned st = PN_SLASH;
    size_t i = 1;
    for (; i + 4 <= n; i += 4) {
        st = path_next[st + s[i]];
        st = path_next[st + s[i + 1]];
        st = path_next[st + s[i + 2]];
        st = path_next[st + s[i + 3]];
    }
    for (; i < n; i++)
        st = path_next[st + s[i]];
    return st != PN_BAD;
}

int eg_path_normalize(const char *in, size_t n, const eg_path_opts_t *o, char *out, size_t cap,
                      size_t *out_len, const char **reason)
{
    eg_path_opts_t def;
    const unsigned char *s = (const unsigned char *)in;
    const char *why = NULL;
    size_t i = 0, w = 0, seg_start = 0, depth = 0;
    unsigned seg = SEG_EMPTY, need = 0;
    unsigned char lo = 0x80, hi = 0xBF;

    if (!in || !out || !out_len) return EG_EINVAL;
    if (cap < n) return EG_ERANGE;
    if (!o) {
        eg_path_opts_default(&def);
        o = &def;
    }
    if (n == 0 || s[0] != '/') {
        why = "path does not start with '/'";
        goto refuse;
    }
    if (eg_path_is_normal(in, n)) {
        if (out != in) memcpy(out, in, n);
        if (cap > n) out[n] = '\0';
        *out_len = n;
        if (reason) *reason = NULL;
        return EG_OK;
    }

    for (;;) {
        /* here s[i] is the '/' that opens a segment */
        out[w++] = '/';
        i++;
        if (o->merge_slashes)
            while (i < n && s[i] == '/')
                i++;
        seg_start = w;
        seg = SEG_EMPTY;

        while (i < n && s[i] != '/') {
            unsigned char c = s[i];
            if (c != '%') {
                if (need) goto bad_utf8; /* sequence cut by a literal byte */
                if (c <= 0x20 || c == 0x7F) {
                    why = "control character or space";
                    goto refuse;
                }
                if (c >= 0x80) {
                    why = "non-ASCII byte";
                    goto refuse;
                }
                if (c == '\\') {
                    why = "backslash";
                    goto refuse;
                }
                if (c == '?' || c == '#') {
                    why = "'?' or '#' in path";
                    goto refuse;
                }
                out[w++] = (char)c;
                seg = seg_feed(seg, c);
                i++;
                continue;
            }
            unsigned char c1 = i + 1 < n ? s[i + 1] : 0, c2 = i + 2 < n ? s[i + 2] : 0;
            int h1 = hexval(c1), h2 = hexval(c2);
            if (i + 2 >= n || h1 < 0 || h2 < 0) {
                why = "invalid percent-encoding";
                goto refuse;
            }
            unsigned char b = (unsigned char)(h1 << 4 | h2);
            if (need) {
                if (b < lo || b > hi) goto bad_utf8;
                need--;
                lo = 0x80;
                hi = 0xBF;
            } else if (b >= 0x80) {
                if (!utf8_lead(b, &need, &lo, &hi)) goto bad_utf8;
            } else if (b == 0) {
                why = "encoded NUL";
                goto refuse;
            } else if (b == '/' && o->reject_encoded_slash) {
                why = "encoded slash";
                goto refuse;
            } else if (b == '\\' && o->reject_encoded_slash) {
                why = "encoded backslash";
                goto refuse;
            }
            seg = seg_feed(seg, b);
            i += 3;
            /* c1, c2 and b are read: writing at w <= i - 3 is safe in place */
            if (!o->normalize) {
                out[w++] = '%';
                out[w++] = (char)c1;
                out[w++] = (char)c2;
            } else if (unreserved(b)) {
                out[w++] = (char)b;
            } else {
                out[w++] = '%';
                out[w++] = HEX[b >> 4];
                out[w++] = HEX[b & 15];
            }
        }
        if (need) goto bad_utf8; /* cut by '/' or by the end */

        int last = i >= n;
        if (seg == SEG_DOTDOT) {
            if (depth == 0) {
                why = "dot-segment above the root";
                goto refuse;
            }
            depth--;
            if (o->normalize) {
                /* drop "/.." and the segment before it with its '/' */
                w = seg_start - 1;
                while (out[w - 1] != '/')
                    w--;
                w--;
                if (last) w++; /* "/a/b/.." is "/a/": keep that '/' */
            }
        } else if (seg == SEG_DOT) {
            if (o->normalize) w = last ? seg_start : seg_start - 1;
        } else if (!last) {
            depth++;
        }
        if (last) break;
    }

    if (w < cap) out[w] = '\0';
    *out_len = w;
    if (reason) *reason = NULL;
    return EG_OK;

bad_utf8:
    why = "invalid UTF-8 in percent-encoding";
refuse:
    if (reason) *reason = why;
    return EG_EPARSE;
}

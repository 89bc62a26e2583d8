/* http1.c - strict, zero-copy, incremental HTTP/1.1 parsing (see http1.h).
 *
 * How a head is parsed. One function, parse_head(), checks a whole head in a
 * single forward pass: start line, then each field line, then the framing
 * headers collected on the way. It runs in one of two modes:
 *
 *  - optimistic: on the first call for a message (*scanned == 0) it parses
 *    the bytes directly, which is the common case where one read() brings
 *    the whole head. Success there is exactly what the careful path below
 *    would conclude (the pass only succeeds on a CRLF-only head ending at its
 *    first empty line, within max_head), so the fast answer is returned;
 *    anything else (incomplete, malformed) falls through to the careful path.
 *  - careful: the end of the head (CRLFCRLF) is first searched with memchr,
 *    from where the previous call stopped, refusing a bare LF on the way;
 *    the head is parsed once complete. Its verdict does not depend on how the
 *    bytes were split across calls, and a byte-by-byte client costs linear
 *    time. Limits are enforced on incomplete heads too (414, 431).
 *
 * Inner loops are table-driven (one static class table, no per-byte calls).
 * Field values, request-targets and field names, which are nearly all of a
 * head's bytes, are classified 16 bytes at a time with SSE2 where the
 * compiler targets it (every x86-64), else 8 at a time with portable word
 * tricks (SWAR); the table settles the byte where the fast scan stopped.
 *
 * The chunked decoder is a byte state machine over framing bytes and hands
 * out data runs as slices of the caller's buffer without touching them.
 */
#include "errgate/http1.h"

#include <limits.h>
#include <string.h>

/* Character classes (RFC 9110 5.6.2, 5.5; RFC 9112 3.2). */
#define C_TCHAR 1  /* token character */
#define C_VALUE 2  /* field value: VCHAR, SP, HTAB, obs-text */
#define C_TARGET 4 /* request-target: visible ASCII but '#' (no fragments) */
#define C_HEX 8    /* hex digit */
#define C_HOST 16  /* URI host byte: unreserved, sub-delims (RFC 3986 3.2.2; '%' apart) */

/* generated: C_TCHAR | C_VALUE | C_TARGET | C_HEX | C_HOST per byte */
static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 23, 6, 3, 23, 7, 23, 23, 22, 22, 23, 23, 22, 23, 23, 6, 31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 6, 22, 6, 22, 6, 6,
    6, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 6, 6, 6, 7, 23,
    7, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 6, 7, 6, 23, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Reasons shared by both parse modes (the careful path must say the same). */
static const char R_BARE_LF[] = "bare LF (lines must end with CRLF)";
static const char R_TARGET_LONG[] = "request-target too long";
static const char R_HEAD_LARGE[] = "header section too large";

/* --- scanning many bytes at a time -------------------------------------- */

/* Each scanner returns the offset of the first byte in [p, end) outside its
 * class, or end. With SSE2 (every x86-64) 16 bytes are classified per step
 * and the first outsider is found exactly; elsewhere a portable 8-byte
 * word test (SWAR) finds a candidate and the class table confirms it. */

#if defined(__SSE2__)
#include <emmintrin.h>

#define V16(c) _mm_set1_epi8((char)(c))
/* unsigned byte compares: x <= c and x >= c */
#define LE(x, c) _mm_cmpeq_epi8(_mm_min_epu8((x), V16(c)), (x))
#define GE(x, c) _mm_cmpeq_epi8(_mm_max_epu8((x), V16(c)), (x))

static inline __m128i load16(const char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

/* Why: field values are most of a head; skipping them 16 bytes at a time is
 * what makes the parser faster than a per-byte state machine. Stops at CTL
 * bytes other than HTAB, and at DEL. */
static size_t scan_value(const char *buf, size_t p, size_t end)
{
    while (end - p >= 16) {
        __m128i x = load16(buf + p);
        __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, V16('\t')), LE(x, 0x1f)),
                                   _mm_cmpeq_epi8(x, V16(0x7f)));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + (size_t)__builtin_ctz((unsigned)mask);
        p += 16;
    }
    while (p < end && IS(buf[p], C_VALUE)) p++;
    return p;
}

/* Request-target bytes: visible ASCII except '#'. */
static size_t scan_target(const char *buf, size_t p, size_t end)
{
    while (end - p >= 16) {
        __m128i x = load16(buf + p);
        __m128i bad = _mm_or_si128(_mm_or_si128(LE(x, 0x20), GE(x, 0x7f)), _mm_cmpeq_epi8(x, V16('#')));
        int mask = _mm_movemask_epi8(bad);
        if (mask) return p + (size_t)__builtin_ctz((unsigned)mask);
        p += 16;
    }
    while (p < end && IS(buf[p], C_TARGET)) p++;
    return p;
}

/* Field names: skips the common [A-Za-z0-9-] 16 at a time; the class table
 * takes over at the first other byte (usually the colon). */
static size_t scan_name(const char *buf, size_t p, size_t end)
{
    while (end - p >= 16) {
        __m128i x = load16(buf + p);
        __m128i low = _mm_or_si128(x, V16(0x20));
        __m128i alpha = LE(_mm_sub_epi8(low, V16('a')), 'z' - 'a');
        __m128i digit = LE(_mm_sub_epi8(x, V16('0')), 9);
        __m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(x, V16('-')));
        int mask = _mm_movemask_epi8(ok) ^ 0xffff;
        if (mask) {
            p += (size_t)__builtin_ctz((unsigned)mask);
            break;
        }
        p += 16;
    }
    while (p < end && IS(buf[p], C_TCHAR)) p++;
    return p;
}

#else /* portable word-at-a-time version */

#define L8 0x0101010101010101ULL
#define H8 0x8080808080808080ULL
/* High bit set in the lowest byte of x that is < n (n <= 128) or zero; the
 * lowest flagged byte is exact, bytes above it may be flagged spuriously. */
#define SWAR_LESS(x, n) (((x) - L8 * (n)) & ~(x) & H8)
#define SWAR_ZERO(x) (((x) - L8) & ~(x) & H8)

static inline uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8); /* one unaligned load */
    return x;
}

/* Offset of the first flagged byte; 0 where byte order makes that costly,
 * which only means the byte loop after it starts earlier. */
static inline size_t first_flag(uint64_t mask)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t)__builtin_ctzll(mask) >> 3;
#else
    (void)mask;
    return 0;
#endif
}

/* Why: see the SSE2 version. HTAB is valid but flagged by the word test, so
 * the byte loop resumes the word loop after at most 8 bytes. */
static size_t scan_value(const char *buf, size_t p, size_t end)
{
    for (;;) {
        while (end - p >= 8) {
            uint64_t x = load8(buf + p);
            uint64_t bad = SWAR_LESS(x, 0x20) | SWAR_ZERO(x ^ (L8 * 0x7f));
            if (bad) {
                p += first_flag(bad);
                break;
            }
            p += 8;
        }
        size_t stop = end - p > 8 ? p + 8 : end;
        while (p < stop && IS(buf[p], C_VALUE)) p++;
        if (p < stop || p == end) return p;
    }
}

static size_t scan_target(const char *buf, size_t p, size_t end)
{
    for (;;) {
        while (end - p >= 8) {
            uint64_t x = load8(buf + p);
            uint64_t bad = SWAR_LESS(x, 0x21) | (x & H8) | SWAR_ZERO(x ^ (L8 * 0x7f)) |
                           SWAR_ZERO(x ^ (L8 * '#'));
            if (bad) {
                p += first_flag(bad);
                break;
            }
            p += 8;
        }
        size_t stop = end - p > 8 ? p + 8 : end;
        while (p < stop && IS(buf[p], C_TARGET)) p++;
        if (p < stop || p == end) return p;
    }
}

static size_t scan_name(const char *buf, size_t p, size_t end)
{
    while (p < end && IS(buf[p], C_TCHAR)) p++;
    return p;
}
#endif

/* --- small helpers ------------------------------------------------------- */

/* Records why a head is refused; returns EG_EPARSE for the caller to pass up. */
static int fail(eg_http1_msg_t *m, eg_http1_error_t err, const char *why, size_t at)
{
    m->error = err;
    m->why = why;
    m->error_offset = at;
    return EG_EPARSE;
}

static inline int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Case-insensitive equality of two ASCII strings of length n, whatever the locale. */
static int ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i])) return 0;
    return 1;
}

/* Why by hand: strftime's %a and %b follow the locale, and gmtime_r may
 * consult time zone state; a Date header is always English and UTC.
 * Days to a civil date by the era method (400-year cycles of 146097 days,
 * years counted from March so the leap day is last). */
void eg_http1_date(int64_t t, char out[EG_HTTP1_DATE_LEN + 1])
{
    static const char wd[] = "ThuFriSatSunMonTueWed"; /* 1970-01-01 was a Thursday */
    static const char mon[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const int64_t max = 253402300799; /* 9999-12-31T23:59:59Z */
    if (t < 0) t = 0;
    if (t > max) t = max;
    int64_t days = t / 86400, sec = t % 86400;
    int64_t z = days + 719468, era = z / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int y = (int)(yoe + era * 400 + (m <= 2));
    int h = (int)(sec / 3600), mi = (int)(sec / 60 % 60), s = (int)(sec % 60);
    memcpy(out, wd + 3 * (days % 7), 3);
    out[3] = ',';
    out[4] = ' ';
    out[5] = (char)('0' + d / 10);
    out[6] = (char)('0' + d % 10);
    out[7] = ' ';
    memcpy(out + 8, mon + 3 * (m - 1), 3);
    out[11] = ' ';
    out[12] = (char)('0' + y / 1000);
    out[13] = (char)('0' + y / 100 % 10);
    out[14] = (char)('0' + y / 10 % 10);
    out[15] = (char)('0' + y % 10);
    out[16] = ' ';
    out[17] = (char)('0' + h / 10);
    out[18] = (char)('0' + h % 10);
    out[19] = ':';
    out[20] = (char)('0' + mi / 10);
    out[21] = (char)('0' + mi % 10);
    out[22] = ':';
    out[23] = (char)('0' + s / 10);
    out[24] = (char)('0' + s % 10);
    memcpy(out + 25, " GMT", 5);
}

int eg_http1_next_token(const char *v, size_t n, size_t *pos, const char **tok, size_t *len)
{
    size_t i = *pos;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s) {
            *pos = i;
            *tok = v + s;
            *len = e - s;
            return 1;
        }
    }
    *pos = i;
    return 0;
}

int eg_http1_has_token(const char *v, size_t n, const char *token)
{
    size_t tl = strlen(token), pos = 0, len;
    const char *t;
    while (eg_http1_next_token(v, n, &pos, &t, &len)) {
        if (len == tl && ascii_ieq(t, token, tl)) return 1;
    }
    return 0;
}

const eg_http_header_t *eg_http1_header(const eg_http1_msg_t *m, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < m->nheaders; i++) {
        const eg_http_header_t *h = &m->headers[i];
        if (h->name_len == n && ascii_ieq(h->name, name, n)) return h;
    }
    return NULL;
}

int eg_http1_error_status(eg_http1_error_t err)
{
    switch (err) {
    case EG_HTTP1_OK: return 0;
    case EG_HTTP1_URI_TOO_LONG: return 414;
    case EG_HTTP1_HEADERS_TOO_LARGE: return 431;
    case EG_HTTP1_VERSION_NOT_SUPPORTED: return 505;
    case EG_HTTP1_BAD_REQUEST: break;
    }
    return 400;
}

/* Why: RFC 9112 6.1 lets a response combine codings, but the final one must
 * be chunked or the body length is unknowable; a request may only say
 * "chunked" (anything else is 400 by our policy, not 501). Returns 1 when
 * the Transfer-Encoding value v[0..n) is acceptable. */
static int te_is_final_chunked(const char *v, size_t n, int is_request)
{
    if (is_request) return n == 7 && eg_http1_lower_eq(v, "chunked", 7);
    int chunked = 0, last = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
        size_t s = i;
        while (i < n && IS(v[i], C_TCHAR)) i++;
        if (i == s) return 0; /* empty member, parameters, garbage */
        last = i - s == 7 && eg_http1_lower_eq(v + s, "chunked", 7);
        chunked += last;
        while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
        if (i < n && v[i++] != ',') return 0;
        if (i == n && v[n - 1] == ',') return 0;
    }
    return chunked == 1 && last;
}

/* --- the head ------------------------------------------------------------ */

/* What the header loop collects for the framing decision. */
typedef struct {
    int n_cl, n_te, n_host;
    int conn_close, conn_keep, conn_upgrade, has_upgrade;
    size_t cl_at, te_at, host_at; /* offset of the last such header line */
    const char *cl, *te;
    size_t cl_len, te_len;
} fields_t;

/* The Connection options the framing depends on, in one pass over the list. */
static void connection_tokens(const char *v, size_t n, fields_t *f)
{
    size_t pos = 0, l;
    const char *t;
    while (eg_http1_next_token(v, n, &pos, &t, &l)) {
        if (l == 5 && eg_http1_lower_eq(t, "close", 5)) f->conn_close = 1;
        else if (l == 10 && eg_http1_lower_eq(t, "keep-alive", 10)) f->conn_keep = 1;
        else if (l == 7 && eg_http1_lower_eq(t, "upgrade", 7)) f->conn_upgrade = 1;
    }
}

/* Running out of bytes: malformed when the head is known to be complete,
 * otherwise more bytes may fix it. */
#define SHORT(why) return complete ? fail(m, EG_HTTP1_BAD_REQUEST, (why), p) : EG_EAGAIN

/* Parses field lines from buf[p] to the empty line that ends the head,
 * within buf[0..end). Returns the head length, EG_EAGAIN (only when
 * !complete) or EG_EPARSE. */
static int parse_fields(const char *buf, size_t p, size_t end, int complete,
                        const eg_http1_limits_t *lim, eg_http_header_t *hdrs, size_t hcap,
                        fields_t *f, eg_http1_msg_t *m)
{
    size_t cap = lim->max_headers < hcap ? lim->max_headers : hcap;
    size_t first = p;
    for (;;) {
        if (p >= end) SHORT("header section not terminated");
        size_t line = p;
        unsigned char c = (unsigned char)buf[p];
        if (c == '\r') {
            if (p + 1 >= end) SHORT("header section not terminated");
            if (buf[p + 1] != '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare CR in header", p);
            return (int)(p + 2);
        }
        p = scan_name(buf, p, end);
        if (p >= end) SHORT("invalid header name");
        if (buf[p] != ':') {
            unsigned char d = (unsigned char)buf[p];
            if (p == line && (d == ' ' || d == '\t'))
                return fail(m, EG_HTTP1_BAD_REQUEST,
                            line == first ? "whitespace before the first header" : "obsolete line folding", p);
            if (p > line && (d == ' ' || d == '\t'))
                return fail(m, EG_HTTP1_BAD_REQUEST, "whitespace before colon", p);
            if (d == '\n') return fail(m, EG_HTTP1_BAD_REQUEST, R_BARE_LF, p);
            if (d == '\r' && p > line) return fail(m, EG_HTTP1_BAD_REQUEST, "header line without colon", p);
            return fail(m, EG_HTTP1_BAD_REQUEST, "invalid header name", p);
        }
        if (p == line) return fail(m, EG_HTTP1_BAD_REQUEST, "empty header name", p);
        size_t name_len = p - line;
        p++;
        while (p < end && (buf[p] == ' ' || buf[p] == '\t')) p++;
        size_t vs = p;
        p = scan_value(buf, p, end);
        if (p >= end) SHORT("header section not terminated");
        if (buf[p] != '\r') {
            if (buf[p] == '\n') return fail(m, EG_HTTP1_BAD_REQUEST, R_BARE_LF, p);
            return fail(m, EG_HTTP1_BAD_REQUEST, "control character in header", p);
        }
        if (p + 1 >= end) SHORT("header section not terminated");
        if (buf[p + 1] != '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare CR in header", p);
        size_t ve = p;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t')) ve--;
        p += 2;
        if (m->nheaders >= cap) return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, "too many headers", line);
        eg_http_header_t *h = &hdrs[m->nheaders++];
        const char *nm = buf + line, *v = buf + vs;
        size_t vl = ve - vs;
        h->name = nm;
        h->name_len = name_len;
        h->value = v;
        h->value_len = vl;
        /* the few headers that frame the message, found by length first */
        switch (name_len) {
        case 4:
            if (eg_http1_lower_eq(nm, "host", 4)) {
                f->n_host++;
                f->host_at = line;
                m->host = v;
                m->host_len = vl;
            }
            break;
        case 6:
            if (eg_http1_lower_eq(nm, "expect", 6) && vl == 12 && eg_http1_lower_eq(v, "100-continue", 12))
                m->expect_continue = 1;
            break;
        case 7:
            if (eg_http1_lower_eq(nm, "upgrade", 7)) f->has_upgrade = 1;
            break;
        case 10:
            if (eg_http1_lower_eq(nm, "connection", 10)) {
                connection_tokens(v, vl, f);
                if (!m->connection) m->connection = h;
            }
            break;
        case 14:
            if (eg_http1_lower_eq(nm, "content-length", 14)) {
                f->n_cl++;
                f->cl_at = line;
                f->cl = v;
                f->cl_len = vl;
            }
            break;
        case 17:
            if (eg_http1_lower_eq(nm, "transfer-encoding", 17)) {
                f->n_te++;
                f->te_at = line;
                f->te = v;
                f->te_len = vl;
            }
            break;
        default:
            break;
        }
    }
}

/* uri-host [":" port] (RFC 9110 7.2), the form of a Host value and of an
 * absolute-form target's authority; an empty value is valid for Host.
 * Why: a Host with '/', '@', spaces or quotes is how host-header injection
 * and cache poisoning start, and RFC 9112 3.2 asks for 400. */
static int valid_authority(const char *s, size_t n)
{
    size_t i = 0;
    if (n && s[0] == '[') { /* IP-literal: hex, ':' and '.', or an IPvFuture */
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!IS(s[i], C_HOST) && s[i] != ':') return 0;
        if (i++ == n) return 0;
    } else {
        for (;;) { /* reg-name or IPv4, '%' only as pct-encoded */
            while (i < n && IS(s[i], C_HOST)) i++;
            if (i + 2 < n && s[i] == '%' && IS(s[i + 1], C_HEX) && IS(s[i + 2], C_HEX)) i += 3;
            else break;
        }
    }
    if (i < n && s[i++] != ':') return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* The authority of an absolute-form target ("http://a.example:8080/x"):
 * what follows the scheme up to the path or query. */
static void target_authority(const char *t, size_t tl, const char **a, size_t *al)
{
    size_t i = (t[4] == 's' || t[4] == 'S') ? 8 : 7, j = i;
    while (j < tl && t[j] != '/' && t[j] != '?') j++;
    *a = t + i;
    *al = j - i;
}

/* Why: the framing decision is where smuggling happens, so it is made once,
 * here, from all framing headers together, and every ambiguous combination
 * is refused rather than resolved. */
static int decide_framing(const char *buf, const fields_t *f, int is_request, eg_http1_msg_t *m)
{
    const eg_http1_error_t B = EG_HTTP1_BAD_REQUEST;
    if (f->n_te) {
        if (m->minor_version == 0)
            return fail(m, B, is_request ? "Transfer-Encoding in an HTTP/1.0 request"
                                         : "Transfer-Encoding in an HTTP/1.0 response", f->te_at);
        if (f->n_cl)
            return fail(m, B, "both Content-Length and Transfer-Encoding",
                        f->cl_at > f->te_at ? f->cl_at : f->te_at);
        if (f->n_te > 1) return fail(m, B, "several Transfer-Encoding headers", f->te_at);
        if (!te_is_final_chunked(f->te, f->te_len, is_request))
            return fail(m, B, "Transfer-Encoding other than a final chunked", (size_t)(f->te - buf));
        m->framing = EG_FRAMING_CHUNKED;
    } else if (f->n_cl) {
        if (f->n_cl > 1) return fail(m, B, "several Content-Length headers", f->cl_at);
        if (f->cl_len == 0 || f->cl_len > 18) /* 18 digits cannot overflow 64 bits */
            return fail(m, B, "invalid Content-Length", (size_t)(f->cl - buf));
        uint64_t v = 0;
        for (size_t i = 0; i < f->cl_len; i++) {
            unsigned d = (unsigned char)f->cl[i] - (unsigned)'0';
            if (d > 9) return fail(m, B, "invalid Content-Length", (size_t)(f->cl - buf) + i);
            v = v * 10 + d;
        }
        m->content_length = v;
        m->framing = EG_FRAMING_LENGTH;
    } else {
        m->framing = is_request ? EG_FRAMING_NONE : EG_FRAMING_UNTIL_CLOSE;
    }
    if (is_request) {
        if (f->n_host > 1) return fail(m, B, "several Host headers", f->host_at);
        if (f->n_host == 0 && m->minor_version == 1) return fail(m, B, "missing Host header", 0);
        if (m->host && !valid_authority(m->host, m->host_len))
            return fail(m, B, "invalid Host header", (size_t)(m->host - buf));
        if (m->target[0] != '/' && m->target[0] != '*') {
            /* absolute-form: the authority is the host (RFC 9110 7.2); a Host
             * that names another is refused rather than one of them chosen */
            const char *a;
            size_t al;
            target_authority(m->target, m->target_len, &a, &al);
            size_t at = (size_t)(a - buf);
            if (al == 0) return fail(m, B, "empty host in request-target", at);
            if (memchr(a, '@', al)) return fail(m, B, "userinfo in request-target", at);
            if (!valid_authority(a, al)) return fail(m, B, "invalid request-target", at);
            if (m->host && (m->host_len != al || !ascii_ieq(m->host, a, al)))
                return fail(m, B, "Host differs from the request-target's authority", f->host_at);
            m->host = a;
            m->host_len = al;
        }
    }
    m->keep_alive = m->minor_version == 1 ? !f->conn_close : (f->conn_keep && !f->conn_close);
    m->upgrade = f->has_upgrade && f->conn_upgrade;
    return EG_OK;
}

/* Parses "HTTP/1.x" at p, followed by `after`. Why two errors: a well-formed
 * version we do not speak deserves 505, garbage deserves 400. */
static int parse_version(const char *buf, size_t p, char after, eg_http1_msg_t *m)
{
    const char *v = buf + p;
    if (v[8] == after && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '1' || v[7] == '0')) {
        m->minor_version = v[7] - '0';
        return EG_OK;
    }
    if (v[8] == after && memcmp(v, "HTTP/", 5) == 0 && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
        v[7] >= '0' && v[7] <= '9')
        return fail(m, EG_HTTP1_VERSION_NOT_SUPPORTED, "unsupported HTTP version", p);
    return fail(m, EG_HTTP1_BAD_REQUEST, "invalid HTTP version", p);
}

/* Parses a request head in buf[0..end). complete: the caller found the end
 * of the head at `end`. Returns the head length, EG_EAGAIN or EG_EPARSE. */
static int parse_request_head(const char *buf, size_t end, int complete,
                              const eg_http1_limits_t *lim, eg_http_header_t *hdrs, size_t hcap,
                              eg_http1_msg_t *m)
{
    size_t p = 0;
    while (p < end && IS(buf[p], C_TCHAR)) p++;
    if (p >= end) SHORT("invalid method");
    if (p == 0 || buf[p] != ' ') return fail(m, EG_HTTP1_BAD_REQUEST, "invalid method", p);
    m->method = buf;
    m->method_len = p;
    size_t ts = ++p;
    p = scan_target(buf, p, end);
    if (p - ts > lim->max_uri) return fail(m, EG_HTTP1_URI_TOO_LONG, R_TARGET_LONG, ts);
    if (p >= end) SHORT("invalid request-target");
    if (buf[p] != ' ' || p == ts)
        return fail(m, EG_HTTP1_BAD_REQUEST,
                    buf[p] == '#' ? "fragment in request-target" : "invalid request-target", p);
    m->target = buf + ts;
    m->target_len = p - ts;
    /* origin-form, asterisk-form or absolute-form; authority-form (CONNECT)
     * is not something a gateway serves */
    const char *t = m->target;
    size_t tl = m->target_len;
    if (!(t[0] == '/' || (tl == 1 && t[0] == '*') ||
          (tl > 7 && eg_http1_lower_eq(t, "http://", 7)) || (tl > 8 && eg_http1_lower_eq(t, "https://", 8))))
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid request-target", ts);
    /* asterisk-form is for a server-wide OPTIONS only (RFC 9112 3.2.4) */
    if (t[0] == '*' && !(m->method_len == 7 && memcmp(m->method, "OPTIONS", 7) == 0))
        return fail(m, EG_HTTP1_BAD_REQUEST, "asterisk-form target with a method other than OPTIONS", ts);
    p++;
    if (end - p < 10) SHORT("invalid HTTP version");
    int rc = parse_version(buf, p, '\r', m);
    if (rc) return rc;
    if (buf[p + 9] != '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare CR in request line", p + 8);
    p += 10;
    fields_t f;
    memset(&f, 0, sizeof(f));
    int head = parse_fields(buf, p, end, complete, lim, hdrs, hcap, &f, m);
    if (head < 0) return head;
    rc = decide_framing(buf, &f, 1, m);
    if (rc) return rc;
    m->head_len = (size_t)head;
    return head;
}

/* Parses a response head in buf[0..end), like parse_request_head. */
static int parse_response_head(const char *buf, size_t end, int complete, int head_request,
                               const eg_http1_limits_t *lim, eg_http_header_t *hdrs, size_t hcap,
                               eg_http1_msg_t *m)
{
    size_t p = 0;
    if (end < 13) SHORT("invalid status line");
    int rc = parse_version(buf, 0, ' ', m);
    if (rc) return rc;
    const char *s = buf + 9;
    if (!(s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid status code", 9);
    m->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    p = 12;
    /* RFC 9112 4 requires the SP before an empty reason; some servers omit it */
    if (buf[p] == ' ') p++;
    else if (buf[p] != '\r') return fail(m, EG_HTTP1_BAD_REQUEST, "invalid status code", p);
    size_t rs = p;
    p = scan_value(buf, p, end);
    if (p >= end) SHORT("invalid reason phrase");
    if (buf[p] != '\r') {
        if (buf[p] == '\n') return fail(m, EG_HTTP1_BAD_REQUEST, R_BARE_LF, p);
        return fail(m, EG_HTTP1_BAD_REQUEST, "invalid reason phrase", p);
    }
    if (p + 1 >= end) SHORT("invalid reason phrase");
    if (buf[p + 1] != '\n') return fail(m, EG_HTTP1_BAD_REQUEST, "bare CR in status line", p);
    m->reason = buf + rs;
    m->reason_len = p - rs;
    p += 2;
    fields_t f;
    memset(&f, 0, sizeof(f));
    int head = parse_fields(buf, p, end, complete, lim, hdrs, hcap, &f, m);
    if (head < 0) return head;
    rc = decide_framing(buf, &f, 0, m);
    if (rc) return rc;
    if (m->status == 101) m->upgrade = 1;
    if (head_request || m->status < 200 || m->status == 204 || m->status == 304) {
        m->framing = EG_FRAMING_NONE;
        m->content_length = 0;
    }
    if (m->framing == EG_FRAMING_UNTIL_CLOSE) m->keep_alive = 0;
    m->head_len = (size_t)head;
    return head;
}

/* --- incremental driver -------------------------------------------------- */

/* Finds the end of the head, searching only bytes not seen before. Returns
 * 1 with *at = the head's length, 0 when incomplete, or -1 with *at at a
 * bare LF. */
static int find_head_end(const char *buf, size_t len, size_t *scanned, size_t *at)
{
    size_t from = *scanned;
    while (from < len) {
        const char *lf = memchr(buf + from, '\n', len - from);
        if (!lf) break;
        size_t i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r') {
            *at = i;
            return -1;
        }
        if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
            *scanned = *at = i + 1;
            return 1;
        }
        from = i + 1;
    }
    *scanned = len;
    return 0;
}

/* Length of the run of request-target bytes after "token SP" at the start
 * of buf[0..len), looking at no more than `cap` of them; *ts is where the
 * run starts. 0 when buf does not start like a request line. Methods longer
 * than 32 bytes are not looked through (bounded work per call). */
static size_t target_run(const char *buf, size_t len, size_t cap, size_t *ts)
{
    size_t p = 0, mlim = len < 32 ? len : 32;
    while (p < mlim && IS(buf[p], C_TCHAR)) p++;
    if (p == 0 || p >= mlim || buf[p] != ' ') return 0;
    *ts = ++p;
    size_t end = len - p > cap ? p + cap : len;
    return scan_target(buf, p, end) - p;
}

/* Why: a client streaming an endless head must be refused as soon as it
 * crosses a limit, not when (never) it completes. Called on an incomplete
 * head, or a complete one larger than max_head; says 414 when the target is
 * what is too long, 431 when the head is, EG_EAGAIN otherwise. */
static int over_limits(const char *buf, size_t len, int complete, size_t max_head,
                       const eg_http1_limits_t *lim, int is_request, eg_http1_msg_t *m)
{
    size_t ts = 0;
    if (is_request && len > lim->max_uri) {
        size_t run = target_run(buf, len, lim->max_uri + 1, &ts);
        if (run > lim->max_uri) return fail(m, EG_HTTP1_URI_TOO_LONG, R_TARGET_LONG, ts);
    }
    if (!complete && len < max_head) return EG_EAGAIN;
    if (is_request) {
        /* still in the request line, and the target is what fills it */
        size_t run = target_run(buf, len, max_head, &ts);
        if (run && ts + run >= max_head) return fail(m, EG_HTTP1_URI_TOO_LONG, R_TARGET_LONG, ts);
    }
    return fail(m, EG_HTTP1_HEADERS_TOO_LARGE, R_HEAD_LARGE, max_head);
}

/* Why one driver for both directions: requests and responses share the
 * optimistic/careful split and the limits; only the start line differs.
 * See the file comment for why the optimistic pass may answer alone. */
static int parse_any(const char *buf, size_t len, const eg_http1_limits_t *lim,
                     eg_http_header_t *headers, size_t hcap, size_t *scanned, int is_request,
                     int head_request, eg_http1_msg_t *m)
{
    size_t max_head = lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
    if (*scanned > len) *scanned = 0; /* a cursor from another buffer: start over */
    memset(m, 0, sizeof(*m));
    m->headers = headers;
    if (*scanned == 0) {
        size_t end = len < max_head ? len : max_head;
        int rc = is_request ? parse_request_head(buf, end, 0, lim, headers, hcap, m)
                            : parse_response_head(buf, end, 0, head_request, lim, headers, hcap, m);
        if (rc > 0) {
            *scanned = (size_t)rc;
            return rc;
        }
        memset(m, 0, sizeof(*m));
        m->headers = headers;
    }
    size_t head = 0;
    int found = find_head_end(buf, len, scanned, &head);
    if (found < 0) return fail(m, EG_HTTP1_BAD_REQUEST, R_BARE_LF, head);
    if (found == 0) return over_limits(buf, len, 0, max_head, lim, is_request, m);
    if (head > max_head) return over_limits(buf, head, 1, max_head, lim, is_request, m);
    return is_request ? parse_request_head(buf, head, 1, lim, headers, hcap, m)
                      : parse_response_head(buf, head, 1, head_request, lim, headers, hcap, m);
}

int eg_http1_parse_request(const char *buf, size_t len, const eg_http1_limits_t *lim,
                           eg_http_header_t *headers, size_t hcap, size_t *scanned,
                           eg_http1_msg_t *m)
{
    return parse_any(buf, len, lim, headers, hcap, scanned, 1, 0, m);
}

int eg_http1_parse_response(const char *buf, size_t len, const eg_http1_limits_t *lim,
                            eg_http_header_t *headers, size_t hcap, size_t *scanned,
                            int head_request, eg_http1_msg_t *m)
{
    return parse_any(buf, len, lim, headers, hcap, scanned, 0, head_request, m);
}

/* --- chunked bodies ------------------------------------------------------ */

/* chunk = size [ext] CRLF data CRLF; last-chunk = "0" [ext] CRLF; then
 * trailer fields and an empty line. Extensions: ;name or ;name=token or
 * ;name="quoted", nothing else (no BWS). */
enum {
    CK_SIZE = 0,   /* hex digits; zero-initialised state starts here */
    CK_EXT_NAME0,  /* after ';': first byte of a name */
    CK_EXT_NAME,   /* in a name: '=', ';' or CR may follow */
    CK_EXT_VAL0,   /* after '=': a token or a quoted string */
    CK_EXT_TOKEN,  /* in a token value */
    CK_EXT_QUOTED, /* in a quoted string */
    CK_EXT_QESC,   /* after a backslash in a quoted string */
    CK_EXT_QEND,   /* after the closing quote: ';' or CR */
    CK_SIZE_LF,    /* CR seen at the end of the size line */
    CK_DATA,
    CK_DATA_CR,
    CK_DATA_LF,
    CK_TR_START,   /* start of a trailer line (or the final empty line) */
    CK_TR_NAME,
    CK_TR_VALUE,
    CK_TR_LF,      /* CR seen at the end of a trailer line */
    CK_FINAL_LF,   /* CR of the final empty line seen */
    CK_DONE
};

/* Records why a chunked body is refused, and where. */
static int ck_fail(eg_chunked_t *st, const char *why, size_t at, size_t *consumed)
{
    st->why = why;
    *consumed = at;
    return EG_EPARSE;
}

/* Why a byte machine: framing bytes are few (a size line per chunk), and
 * resuming mid-line across reads is then trivial; data runs, the bulk, are
 * skipped whole. Stops after each data run so the caller can use it in
 * place; every line is bounded by max_line so a peer cannot stream an
 * endless extension or trailer. */
int eg_chunked_data(eg_chunked_t *st, const char *buf, size_t len, size_t max_line,
                    size_t *consumed, const char **data, size_t *data_len)
{
    size_t i = 0;
    *data = NULL;
    *data_len = 0;
    while (i < len) {
        unsigned char c = (unsigned char)buf[i];
        if (st->state == CK_DATA) {
            size_t take = (uint64_t)(len - i) < st->remaining ? len - i : (size_t)st->remaining;
            *data = buf + i;
            *data_len = take;
            st->remaining -= take;
            st->body_bytes += take;
            if (st->remaining == 0) st->state = CK_DATA_CR;
            *consumed = i + take;
            return EG_EAGAIN; /* hand this data run to the caller */
        }
        if (st->state == CK_DONE) {
            *consumed = i;
            return EG_OK;
        }
        /* a trailer line's bytes are kept for a caller that asked */
        if (st->keep && st->state >= CK_TR_START && st->state <= CK_TR_LF &&
            !(st->state == CK_TR_START && c == '\r')) {
            if (st->keep_len == st->keep_cap) return ck_fail(st, "trailer section too large", i, consumed);
            st->keep[st->keep_len++] = (char)c;
        }
        /* every other state reads one byte of a size or trailer line */
        if (st->state != CK_DATA_CR && st->state != CK_DATA_LF && ++st->line > max_line)
            return ck_fail(st, st->state >= CK_TR_START ? "trailer line too long" : "chunk-size line too long",
                           i, consumed);
        switch (st->state) {
        case CK_SIZE:
            if (cls[c] & C_HEX) {
                if (++st->digits > 16) return ck_fail(st, "chunk size too large", i, consumed);
                st->remaining = (st->remaining << 4) |
                                (uint64_t)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
            } else if (st->digits && c == ';') {
                st->state = CK_EXT_NAME0;
            } else if (st->digits && c == '\r') {
                st->state = CK_SIZE_LF;
            } else {
                return ck_fail(st, "invalid chunk size", i, consumed);
            }
            break;
        case CK_EXT_NAME0:
            if (!(cls[c] & C_TCHAR)) return ck_fail(st, "invalid chunk extension", i, consumed);
            st->state = CK_EXT_NAME;
            break;
        case CK_EXT_NAME:
        case CK_EXT_TOKEN:
            if (cls[c] & C_TCHAR) break;
            if (c == '=' && st->state == CK_EXT_NAME) st->state = CK_EXT_VAL0;
            else if (c == ';') st->state = CK_EXT_NAME0;
            else if (c == '\r') st->state = CK_SIZE_LF;
            else return ck_fail(st, "invalid chunk extension", i, consumed);
            break;
        case CK_EXT_VAL0:
            if (c == '"') st->state = CK_EXT_QUOTED;
            else if (cls[c] & C_TCHAR) st->state = CK_EXT_TOKEN;
            else return ck_fail(st, "invalid chunk extension", i, consumed);
            break;
        case CK_EXT_QUOTED:
            if (c == '"') st->state = CK_EXT_QEND;
            else if (c == '\\') st->state = CK_EXT_QESC;
            else if (!(cls[c] & C_VALUE)) return ck_fail(st, "invalid chunk extension", i, consumed);
            break;
        case CK_EXT_QESC:
            if (!(cls[c] & C_VALUE)) return ck_fail(st, "invalid chunk extension", i, consumed);
            st->state = CK_EXT_QUOTED;
            break;
        case CK_EXT_QEND:
            if (c == ';') st->state = CK_EXT_NAME0;
            else if (c == '\r') st->state = CK_SIZE_LF;
            else return ck_fail(st, "invalid chunk extension", i, consumed);
            break;
        case CK_SIZE_LF:
            if (c != '\n') return ck_fail(st, "bare CR after chunk size", i, consumed);
            st->line = 0;
            st->state = st->remaining ? CK_DATA : CK_TR_START;
            break;
        case CK_DATA_CR:
            if (c != '\r') return ck_fail(st, "missing CRLF after chunk data", i, consumed);
            st->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n') return ck_fail(st, "missing CRLF after chunk data", i, consumed);
            st->state = CK_SIZE;
            st->digits = 0;
            st->remaining = 0;
            st->line = 0;
            break;
        case CK_TR_START:
            if (c == '\r') st->state = CK_FINAL_LF;
            else if (c == ' ' || c == '\t')
                return ck_fail(st, "obsolete line folding in trailer", i, consumed);
            else if (cls[c] & C_TCHAR) st->state = CK_TR_NAME;
            else return ck_fail(st, "invalid trailer name", i, consumed);
            break;
        case CK_TR_NAME:
            if (cls[c] & C_TCHAR) break;
            if (c == ':') st->state = CK_TR_VALUE;
            else if (c == ' ' || c == '\t')
                return ck_fail(st, "whitespace before colon in trailer", i, consumed);
            else return ck_fail(st, "invalid trailer name", i, consumed);
            break;
        case CK_TR_VALUE:
            if (cls[c] & C_VALUE) break;
            if (c == '\r') st->state = CK_TR_LF;
            else return ck_fail(st, "control character in trailer", i, consumed);
            break;
        case CK_TR_LF:
            if (c != '\n') return ck_fail(st, "bare CR in trailer", i, consumed);
            st->trailers++;
            st->line = 0;
            st->state = CK_TR_START;
            break;
        case CK_FINAL_LF:
            if (c != '\n') return ck_fail(st, "bare CR at end of chunked body", i, consumed);
            st->state = CK_DONE;
            *consumed = i + 1;
            return EG_OK;
        default:
            return ck_fail(st, "invalid chunked decoder state", i, consumed);
        }
        i++;
    }
    *consumed = i;
    return st->state == CK_DONE ? EG_OK : EG_EAGAIN;
}

/* For a proxy forwarding the body as is: validation without decoding. */
int eg_chunked_feed(eg_chunked_t *st, const char *buf, size_t len, size_t max_line,
                    size_t *consumed)
{
    size_t total = 0;
    for (;;) {
        const char *d;
        size_t dl, used = 0;
        int rc = eg_chunked_data(st, buf + total, len - total, max_line, &used, &d, &dl);
        total += used;
        if (rc != EG_EAGAIN || total >= len) {
            *consumed = total;
            return rc;
        }
    }
}

/* For a caller that buffers the body (an upstream error to translate):
 * compacting in place needs no second buffer. */
int eg_chunked_decode(eg_chunked_t *st, char *buf, size_t *len, size_t max_line, size_t *rest)
{
    size_t n = *len, src = 0, dst = 0;
    *rest = 0;
    for (;;) {
        const char *d;
        size_t dl, used = 0;
        int rc = eg_chunked_data(st, buf + src, n - src, max_line, &used, &d, &dl);
        if (dl) {
            if (d != buf + dst) memmove(buf + dst, d, dl);
            dst += dl;
        }
        src += used;
        if (rc == EG_OK) {
            *rest = n - src;
            if (*rest && src != dst) memmove(buf + dst, buf + src, *rest);
            *len = dst;
            return EG_OK;
        }
        if (rc != EG_EAGAIN || src >= n) {
            *len = dst;
            return rc;
        }
    }
}

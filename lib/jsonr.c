/* jsonr.c - a strict JSON reader onto a flat token tape (see jsonr.h).
 *
 * One hand-written pass with no recursion: an open container's `end` field
 * links to its parent's index until the container closes, so the tape is
 * also the parser's stack. Strings are scanned 16 bytes at a time with SSE2
 * (x86-64's baseline), else 8 at a time in a 64-bit word; UTF-8 is
 * validated only where a byte is non-ASCII. Errors are located afterwards by
 * replaying, from the start of the offending token, how far jansson's lexer
 * would have read, so line/column/position match json_error_t.
 */
#include "jsonr.h"
#include "jsonr_scan.h"
#include "utf8.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define NOMEM ((size_t)-2)  /* scan result: out of memory */
#define SMALL_OBJECT 32 /* objects up to this many members check keys pairwise (on a Bloom
                           filter hit) as they arrive: a 20-member request body needs no
                           table at its close */

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static inline int is_alpha(unsigned c)
{
    return (c | 0x20) - 'a' < 26u;
}

/* strtod() on a number's text, as jansson's jsonp_strtod does it: with the locale's
   decimal point, and an overflow (HUGE_VAL with ERANGE) is an error. Slow path only. */
static size_t real_strtod(const unsigned char *s, size_t st, size_t i, double *out)
{
    char small[128], *buf = small;
    size_t len = i - st, rc = i;
    if (len >= sizeof(small) && !(buf = malloc(len + 1))) return NOMEM;
    memcpy(buf, s + st, len);
    buf[len] = '\0';
    const char *point = localeconv()->decimal_point;
    if (*point != '.') {
        char *dot = strchr(buf, '.');
        if (dot) *dot = *point;
    }
    errno = 0;
    double v = strtod(buf, NULL);
    if ((v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE) rc = BAD;
    *out = v;
    if (buf != small) free(buf);
    return rc;
}

/* Scans the number at i into t: the index just after it, BAD or NOMEM. The grammar is
   RFC 8259's; an integer (no fraction, no exponent) must fit in long long, as jansson's
   strtoll; a real is strtod()'s value, computed exactly without strtod() when the
   digits and exponent are small (Clinger's fast path: one correctly rounded operation). */
static size_t scan_number(const unsigned char *s, size_t n, size_t i, eg_jr_tok_t *t)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t st = i;
    int neg = s[i] == '-';
    uint64_t m = 0;
    size_t nd = 0; /* significant digits in m */
    i += (size_t)neg;
    if (i >= n || !is_digit(s[i])) return BAD;
    if (s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i])) return BAD; /* a leading zero */
    } else {
        while (i < n && is_digit(s[i])) m = m * 10 + (s[i++] - '0'); /* wraps: checked below */
        nd = i - st - (size_t)neg;
    }
    t->off = (uint32_t)st;
    t->escaped = 0;
    t->count = 0;
    if (i >= n || (s[i] != '.' && (s[i] | 0x20) != 'e')) {
        if (nd > 19 || m > (uint64_t)LLONG_MAX + (uint64_t)neg) return BAD;
        t->type = EG_JR_INT;
        t->ival = !neg ? (long long)m : m ? -(long long)(m - 1) - 1 : 0;
        t->len = (uint32_t)(i - st);
        return i;
    }
    int64_t e10 = 0; /* the value is m * 10^e10 (while nd <= 19) */
    if (s[i] == '.') {
        i++;
        if (i >= n || !is_digit(s[i])) return BAD;
        for (; i < n && is_digit(s[i]); i++) {
            if (nd < 19) {
                m = m * 10 + (s[i] - '0');
                nd += m != 0; /* leading zeros of 0.000123 are not significant */
                e10--;
            } else if (s[i] != '0') {
                nd = 99; /* more digits than the fast path takes */
            }
        }
    }
    if (i < n && (s[i] | 0x20) == 'e') {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        if (i >= n || !is_digit(s[i])) return BAD;
        int64_t x = 0;
        for (; i < n && is_digit(s[i]); i++)
            if (x < 100000) x = x * 10 + (s[i] - '0');
        e10 += eneg ? -x : x;
    }
    t->type = EG_JR_REAL;
    t->len = (uint32_t)(i - st);
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    if (nd <= 19 && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / p10[-e10] : v * p10[e10];
        t->dval = neg ? -v : v;
        return i;
    }
    if (m == 0 && nd <= 19) {
        t->dval = neg ? -0.0 : 0.0;
        return i;
    }
#else
    (void)p10;
#endif
    return real_strtod(s, st, i, &t->dval);
}

/* Decodes the escape at *pp (a backslash; the text was validated) into u, advances *pp
   past it, returns the number of UTF-8 bytes (1 to 4). */
static unsigned unescape1(const unsigned char **pp, unsigned char *u)
{
    const unsigned char *p = *pp;
    unsigned c = p[1];
    *pp = p + 2;
    switch (c) {
    case 'b': u[0] = '\b'; return 1;
    case 'f': u[0] = '\f'; return 1;
    case 'n': u[0] = '\n'; return 1;
    case 'r': u[0] = '\r'; return 1;
    case 't': u[0] = '\t'; return 1;
    case 'u': break;
    default: u[0] = (unsigned char)c; return 1;
    }
    unsigned long cp = (unsigned long)hex4(p + 2);
    *pp = p + 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)hex4(p + 8) - 0xDC00);
        *pp = p + 12;
    }
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | cp >> 18);
    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Reads an escaped string's value one byte at a time, so that comparisons need no buffer. */
typedef struct {
    const unsigned char *s, *e;
    unsigned char u[4];
    unsigned k, j;
} str_iter_t;

static void iter_init(str_iter_t *it, const eg_jr_doc_t *d, const eg_jr_tok_t *t)
{
    it->s = (const unsigned char *)d->text + t->off;
    it->e = it->s + t->len;
    it->k = it->j = 0;
}

static inline int iter_next(str_iter_t *it)
{
    if (it->j < it->k) return it->u[it->j++];
    if (it->s >= it->e) return -1;
    if (*it->s != '\\') return *it->s++;
    it->k = unescape1(&it->s, it->u);
    it->j = 1;
    return it->u[0];
}

/* Orders two string tokens by their unescaped bytes (memcmp order, a prefix first). */
static int key_cmp(const eg_jr_doc_t *d, const eg_jr_tok_t *a, const eg_jr_tok_t *b)
{
    if (!a->escaped && !b->escaped) {
        int c = memcmp(d->text + a->off, d->text + b->off, a->len < b->len ? a->len : b->len);
        return c ? c : (a->len > b->len) - (a->len < b->len);
    }
    str_iter_t x, y;
    iter_init(&x, d, a);
    iter_init(&y, d, b);
    for (;;) {
        int ca = iter_next(&x), cb = iter_next(&y);
        if (ca != cb) return ca < cb ? -1 : 1;
        if (ca < 0) return 0;
    }
}

static inline int key_eq(const eg_jr_doc_t *d, const eg_jr_tok_t *a, const eg_jr_tok_t *b)
{
    if (!a->escaped && !b->escaped)
        return a->len == b->len && memcmp(d->text + a->off, d->text + b->off, a->len) == 0;
    return key_cmp(d, a, b) == 0;
}

/* Stable bottom-up merge sort of token indices by key. */
static void sort_keys(const eg_jr_doc_t *d, uint32_t *a, uint32_t *tmp, size_t n)
{
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t x = lo, y = mid, o = lo;
            while (x < mid && y < hi)
                tmp[o++] = key_cmp(d, &d->toks[a[y]], &d->toks[a[x]]) < 0 ? a[y++] : a[x++];
            while (x < mid) tmp[o++] = a[x++];
            while (y < hi) tmp[o++] = a[y++];
        }
        memcpy(a, tmp, n * sizeof(*a));
    }
}

/* A 32-bit hash of an unescaped key's bytes: its length and its first and last 8 bytes
   (all of them when shorter), which tells apart the keys of real objects; equal hashes
   are then compared in full, so a poor spread costs time, never correctness. */
static inline uint32_t key_hash(const unsigned char *k, uint32_t len, size_t room)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, k, 8);
        memcpy(&b, k + len - 8, 8);
    }
#ifdef EG_JR_SWAR_CTZ
    else if (room >= 8) { /* the bytes after a short key are in the input: mask them off
                             (little-endian: the key's bytes are the low ones) */
        memcpy(&a, k, 8);
        a = len ? a & (~0ull >> (64 - 8 * len)) : 0;
    }
#endif
    else { /* the same value as the masked load: byte j at bits 8j */
        for (uint32_t j = 0; j < len; j++)
            a |= (uint64_t)k[j] << (8 * j);
    }
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull) ^ len) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

#define HASH_DUP_MAX 1024 /* members checked with a hash table on the stack */

/* earliest_dup() for an object of at most HASH_DUP_MAX members none of whose keys is
   escaped: one pass in document order through an open-addressing table of (hash, key
   token), so the first key found already there is the earliest duplicate. The hash is
   fixed, so keys can be made to collide: past 8 probes per member on average it gives
   up (*gave_up) and the caller sorts, which keeps the worst case O(n log n). */
static uint32_t earliest_dup_hashed(const eg_jr_doc_t *d, uint32_t o, uint32_t count,
                                    int *gave_up)
{
    size_t probes = 0, budget = 8 * (size_t)count + 64;
    uint32_t th[2 * HASH_DUP_MAX], tk[2 * HASH_DUP_MAX];
    uint32_t size = 32;
    while (size < 2 * count)
        size *= 2;
    memset(tk, 0xff, size * sizeof(tk[0])); /* NONE: an empty slot */
    const unsigned char *s = (const unsigned char *)d->text;
    uint32_t k = o + 1;
    for (uint32_t j = 0; j < count; j++) {
        const eg_jr_tok_t *t = &d->toks[k];
        uint32_t h = key_hash(s + t->off, t->len, d->len - t->off), slot = h & (size - 1);
        for (; tk[slot] != NONE; slot = (slot + 1) & (size - 1)) {
            const eg_jr_tok_t *u = &d->toks[tk[slot]];
            if (++probes > budget) {
                *gave_up = 1;
                return NONE;
            }
            if (th[slot] == h && u->len == t->len && memcmp(s + u->off, s + t->off, t->len) == 0)
                return k;
        }
        th[slot] = h;
        tk[slot] = k;
        k = d->toks[k + 1].end;
    }
    return NONE;
}

/* The key token of the first of object o's first `count` members whose key repeats an
   earlier one (where jansson stops), NONE when all differ. A hash table for the usual
   object; sorting keeps a hostile object of 100k members (or with escaped keys, whose
   raw bytes say nothing) O(n log n). Sets *rc to EG_ENOMEM when it cannot tell. */
static uint32_t earliest_dup(const eg_jr_doc_t *d, uint32_t o, uint32_t count, int *rc)
{
    if (count <= HASH_DUP_MAX) {
        uint32_t k = o + 1, j = 0;
        for (; j < count && !d->toks[k].escaped; j++)
            if (j + 1 < count) k = d->toks[k + 1].end;
        int gave_up = 0;
        uint32_t dup = j == count ? earliest_dup_hashed(d, o, count, &gave_up) : NONE;
        if (j == count && !gave_up) return dup;
    }
    uint32_t best = NONE;
    size_t bytes = 2 * sizeof(uint32_t) * (size_t)count;
    uint32_t *a = bytes / (2 * sizeof(uint32_t)) == count ? malloc(bytes) : NULL;
    if (!a) {
        *rc = EG_ENOMEM;
        goto out;
    }
    uint32_t k = o + 1;
    for (uint32_t j = 0; j < count; j++) {
        a[j] = k;
        if (j + 1 < count) k = d->toks[k + 1].end;
    }
    sort_keys(d, a, a + count, count);
    for (uint32_t j = 1; j < count; j++)
        if (a[j] < best && key_eq(d, &d->toks[a[j - 1]], &d->toks[a[j]])) best = a[j];
out:
    free(a);
    return best;
}

/* How far jansson's lexer reads (its stream position, before NUL bookkeeping) when it
   lexes the token that starts at p, whether the token is good or bad: jansson reports
   every error at that point. A multi-byte character counts when its first byte is read;
   an invalid one stops the stream before it. Only used on failure. */
static size_t lexer_stop(const unsigned char *s, size_t n, size_t p)
{
    if (p >= n) return n;
    unsigned c = s[p];
    size_t i = p;
    if (c >= 0x80) {
        size_t k = eg_utf8_len(s + p, n - p);
        return k ? p + k : p; /* an invalid token, read whole to quote it */
    }
    if (c == '"') {
        for (i = p + 1;;) {
            if (i >= n) return n;
            c = s[i];
            if (c == '"') return i + 1;
            if (c < 0x20) return i; /* put back */
            if (c >= 0x80) {
                size_t k = eg_utf8_len(s + i, n - i);
                if (!k) return i;
                i += k;
                continue;
            }
            i++;
            if (c != '\\') continue;
            if (i >= n) return n;
            c = s[i];
            if (c >= 0x80) return eg_utf8_len(s + i, n - i) ? i + 1 : i;
            i++;
            if (c == 'u') {
                for (int k = 0; k < 4; k++) {
                    if (i >= n) return n;
                    c = s[i];
                    if (c >= 0x80) return eg_utf8_len(s + i, n - i) ? i + 1 : i;
                    i++;
                    if (!is_hex(c)) return i;
                }
            } else if (!c || !strchr("\"\\/bfnrt", (int)c)) {
                return i;
            }
        }
    }
    if (c == '-' || is_digit(c)) {
        i += c == '-';
        if (i < n && s[i] == '0') {
            i++;
            if (i < n && is_digit(s[i])) return i;
        } else if (i < n && is_digit(s[i])) {
            while (i < n && is_digit(s[i])) i++;
        } else {
            return i;
        }
        if (i < n && s[i] == '.') {
            i++;
            if (i >= n || !is_digit(s[i])) return i;
            while (i < n && is_digit(s[i])) i++;
        }
        if (i < n && (s[i] | 0x20) == 'e') {
            i++;
            if (i < n && (s[i] == '+' || s[i] == '-')) i++;
            if (i >= n || !is_digit(s[i])) return i;
            while (i < n && is_digit(s[i])) i++;
        }
        return i;
    }
    if (is_alpha(c)) {
        while (i < n && is_alpha(s[i])) i++;
        return i;
    }
    return p + 1; /* punctuation, or any other byte as an invalid token */
}

/* Fills doc->line/column/position for a failure at the token starting at p, as
   json_error_t has them. cur is the innermost open container: objects bigger than
   SMALL_OBJECT check duplicates only when they close, so an earlier duplicate in
   an open one is where jansson would have stopped. A NUL that jansson's lexer put
   back after a number or literal (and then lost) is not counted. */
static void set_error(eg_jr_doc_t *d, uint32_t cur, size_t p)
{
    const unsigned char *s = (const unsigned char *)d->text;
    size_t start = p, stop = lexer_stop(s, d->len, p);
    int rc = 0; /* out of memory here only costs the exact position */
    for (uint32_t o = cur; o != NONE; o = d->toks[o].end) {
        const eg_jr_tok_t *t = &d->toks[o];
        if (t->type != EG_JR_OBJECT || t->count <= SMALL_OBJECT) continue;
        uint32_t k = earliest_dup(d, o, t->count, &rc);
        if (k == NONE) continue;
        size_t kend = (size_t)d->toks[k].off + d->toks[k].len + 1;
        if (kend < stop) {
            start = d->toks[k].off - 1;
            stop = kend;
        }
    }
    int line = 1, col = 0;
    size_t nul = 0;
    for (size_t i = 0; i < stop; i++) {
        if (s[i] == '\n') {
            line++;
            col = 0;
        } else if (!s[i] && i < start) {
            nul++;
        } else if ((s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    d->line = line;
    d->column = col;
    d->position = (long)(stop - nul);
}

/* The bit of a 64-bit Bloom filter that an unescaped key sets: from its length, first,
   middle and last bytes. An object's filter tells most new keys apart from all earlier
   ones with one test; only a hit costs a pairwise comparison. */
static inline uint64_t key_bit(const unsigned char *s, const eg_jr_tok_t *t)
{
    uint64_t h = t->len;
    if (t->len) {
        const unsigned char *k = s + t->off;
        h = h << 24 | (uint64_t)k[0] << 16 | (uint64_t)k[t->len / 2] << 8 | k[t->len - 1];
    }
    return 1ull << ((h * 0x9E3779B97F4A7C15ull) >> 58);
}

/* Doubles the tape; the first time, moves it out of doc->small. */
static int grow(eg_jr_doc_t *d, size_t nt)
{
    size_t ncap = d->cap * 2;
    eg_jr_tok_t *t;
    if (ncap > SIZE_MAX / sizeof(*t)) return EG_ENOMEM;
    if (d->toks == d->small) {
        t = malloc(ncap * sizeof(*t));
        if (!t) return EG_ENOMEM;
        memcpy(t, d->small, nt * sizeof(*t));
    } else {
        t = realloc(d->toks, ncap * sizeof(*t));
        if (!t) return EG_ENOMEM;
    }
    d->toks = t;
    d->cap = ncap;
    return 0;
}

/* The parser proper: a value, then what may follow it in the enclosing container. p is
   the start of the token being looked at, for set_error(). */
static int parse(eg_jr_doc_t *d)
{
    const unsigned char *s = (const unsigned char *)d->text;
    const size_t n = d->len;
    eg_jr_tok_t *tk = d->toks, *t;
    size_t nt = 0, cap = d->cap, i = 0, p = 0, q;
    uint32_t cur = NONE; /* innermost open container; its end links to its parent */
    unsigned depth = 0;
    int rc = EG_EPARSE;

value:
    i = skip_ws(s, n, i);
    p = i;
    if (depth >= EG_JR_MAX_DEPTH || i >= n) goto fail; /* depth counts the value itself */
    if (nt == cap) {
        if ((rc = grow(d, nt))) goto out;
        tk = d->toks;
        cap = d->cap;
    }
    t = &tk[nt];
    switch (s[i]) {
    case '"':
        t->escaped = 0;
        if ((q = scan_string(s, n, i + 1, &t->escaped)) == BAD) goto fail;
        t->type = EG_JR_STRING;
        t->off = (uint32_t)(i + 1);
        t->len = (uint32_t)(q - i - 1);
        t->count = 0;
        t->ival = 0;
        i = q + 1;
        break;
    case '{':
    case '[':
        *t = (eg_jr_tok_t){.type = s[i] == '{' ? EG_JR_OBJECT : EG_JR_ARRAY, .off = (uint32_t)i,
                           .end = cur};
        cur = (uint32_t)nt++;
        depth++;
        i = skip_ws(s, n, i + 1);
        if (i < n && s[i] == (t->type == EG_JR_OBJECT ? '}' : ']')) goto close;
        if (t->type == EG_JR_OBJECT) goto key;
        goto value;
    case 't':
    case 'f':
    case 'n': {
        static const char *const lit[] = {"null", "false", "true"};
        uint8_t ty = s[i] == 'n' ? EG_JR_NULL : s[i] == 'f' ? EG_JR_FALSE : EG_JR_TRUE;
        size_t l = ty == EG_JR_FALSE ? 5 : 4;
        if (n - i < l || memcmp(s + i, lit[ty], l) != 0) goto fail;
        *t = (eg_jr_tok_t){.type = ty, .off = (uint32_t)i, .len = (uint32_t)l};
        i += l;
        if (i < n && !s[i]) i++; /* jansson's lexer loses a NUL it puts back */
        break;
    }
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        q = scan_number(s, n, i, t);
        if (q == NOMEM) {
            rc = EG_ENOMEM;
            goto out;
        }
        if (q == BAD) goto fail;
        i = q;
        if (i < n && !s[i]) i++; /* as above */
        break;
    default: goto fail;
    }
    t->end = (uint32_t)++nt;

after: /* a value has just ended at i */
    if (cur == NONE) goto done;
    i = skip_ws(s, n, i);
    p = i;
    if (i >= n) goto fail;
    t = &tk[cur];
    if (t->type == EG_JR_ARRAY) {
        t->count++;
        if (s[i] == ',') {
            i++;
            goto value;
        }
        if (s[i] == ']') goto close;
    } else {
        if (s[i] == ',') {
            i = skip_ws(s, n, i + 1);
            goto key;
        }
        if (s[i] == '}') goto close;
    }
    goto fail;

close: /* s[i] closes tk[cur] */
    t = &tk[cur];
    if (t->type == EG_JR_OBJECT && t->count > SMALL_OBJECT) {
        int r = 0;
        p = i;
        d->ntoks = nt;
        if (earliest_dup(d, cur, t->count, &r) != NONE) goto fail;
        if ((rc = r)) goto out;
    }
    {
        uint32_t up = t->end;
        t->ival = 0;
        t->len = (uint32_t)(i + 1 - t->off);
        t->end = (uint32_t)nt;
        cur = up;
    }
    depth--;
    i++;
    goto after;

key: /* at i (past whitespace): a member's key in tk[cur] */
    p = i;
    if (i >= n || s[i] != '"') goto fail;
    if (nt == cap) {
        if ((rc = grow(d, nt))) goto out;
        tk = d->toks;
        cap = d->cap;
    }
    t = &tk[nt];
    t->escaped = 0;
    if ((q = scan_string(s, n, i + 1, &t->escaped)) == BAD) goto fail;
    t->type = EG_JR_STRING;
    t->off = (uint32_t)(i + 1);
    t->len = (uint32_t)(q - i - 1);
    t->end = (uint32_t)(nt + 1);
    t->count = 0;
    t->ival = 0;
    {
        /* while an object is open its ival holds the Bloom filter of its keys (all ones
           once a key is escaped: raw bytes say nothing then) */
        uint32_t c = tk[cur].count++;
        if (c < SMALL_OBJECT) { /* bigger objects sort their keys when they close */
            uint64_t bloom, bit = t->escaped ? ~0ull : key_bit(s, t);
            memcpy(&bloom, &tk[cur].ival, sizeof(bloom));
            if (bloom & bit) { /* maybe a duplicate: compare with the c keys before */
                uint32_t k = cur + 1;
                for (uint32_t j = 0; j < c; j++) {
                    if (key_eq(d, &tk[k], t)) goto fail;
                    k = tk[k + 1].end;
                }
            }
            bloom |= bit;
            memcpy(&tk[cur].ival, &bloom, sizeof(bloom));
        }
    }
    nt++;
    i = skip_ws(s, n, q + 1);
    p = i;
    if (i >= n || s[i] != ':') goto fail;
    i++;
    goto value;

done:
    i = skip_ws(s, n, i);
    p = i;
    if (i < n) goto fail;
    rc = 0;
    goto out;

fail:
    d->ntoks = nt;
    set_error(d, cur, p);
    rc = EG_EPARSE;
out:
    d->ntoks = nt;
    return rc;
}

int eg_jr_parse(eg_jr_doc_t *doc, const char *text, size_t len)
{
    doc->text = text ? text : "";
    doc->len = text ? len : 0;
    doc->toks = doc->small;
    doc->ntoks = 0;
    doc->cap = sizeof(doc->small) / sizeof(doc->small[0]);
    doc->line = doc->column = 0;
    doc->position = 0;
    if (doc->len >= UINT32_MAX) return EG_ENOMEM;
    return parse(doc);
}

void eg_jr_free(eg_jr_doc_t *doc)
{
    if (doc->toks != doc->small) free(doc->toks);
    doc->toks = doc->small;
    doc->ntoks = 0;
}

size_t eg_jr_unescape(const char *text, size_t len, char *buf, size_t cap)
{
    const unsigned char *s = (const unsigned char *)text, *e = s + len;
    size_t o = 0;
    while (s < e) {
        const unsigned char *r = memchr(s, '\\', (size_t)(e - s));
        size_t k = (size_t)((r ? r : e) - s);
        if (o < cap) memcpy(buf + o, s, k < cap - o ? k : cap - o);
        o += k;
        s += k;
        if (!r) break;
        unsigned char u[4];
        unsigned m = unescape1(&s, u);
        for (unsigned j = 0; j < m; j++, o++)
            if (o < cap) buf[o] = (char)u[j];
    }
    return o;
}

size_t eg_jr_str(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok, char *buf, size_t cap)
{
    const char *s = doc->text + tok->off;
    if (!tok->escaped) {
        size_t k = tok->len < cap ? tok->len : cap;
        if (k) memcpy(buf, s, k);
        return tok->len;
    }
    return eg_jr_unescape(s, tok->len, buf, cap);
}

int eg_jr_number(const char *text, size_t len, eg_jr_tok_t *t)
{
    size_t q = scan_number((const unsigned char *)text, len, 0, t);
    if (q == NOMEM) return EG_ENOMEM;
    return q == len ? 0 : EG_EPARSE;
}

size_t eg_jr_lexer_stop(const char *text, size_t len, size_t p)
{
    return lexer_stop((const unsigned char *)text, len, p);
}

int eg_jr_str_eq(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok, const char *s, size_t n)
{
    if (tok->type != EG_JR_STRING || n > tok->len) return 0;
    if (!n) return tok->len == 0; /* an escaped string is never empty */
    if (!tok->escaped) return n == tok->len && memcmp(doc->text + tok->off, s, n) == 0;
    str_iter_t it;
    iter_init(&it, doc, tok);
    for (size_t i = 0; i < n; i++)
        if (iter_next(&it) != (unsigned char)s[i]) return 0;
    return iter_next(&it) < 0;
}

const eg_jr_tok_t *eg_jr_get(const eg_jr_doc_t *doc, const eg_jr_tok_t *obj, const char *key,
                             size_t klen)
{
    if (obj->type != EG_JR_OBJECT) return NULL;
    const eg_jr_tok_t *k = obj + 1;
    for (uint32_t i = 0; i < obj->count; i++) {
        const eg_jr_tok_t *v = k + 1;
        if (eg_jr_key_is(doc, k, key, klen)) return v;
        k = doc->toks + v->end;
    }
    return NULL;
}

/* A string token's value as a malloc'd buffer when escaped (*owned set), else in place. */
static const char *str_value(const eg_jr_doc_t *d, const eg_jr_tok_t *t, size_t *len, char **owned)
{
    *owned = NULL;
    if (!t->escaped) {
        *len = t->len;
        return d->text + t->off;
    }
    if (!(*owned = malloc(t->len))) return NULL; /* an escaped string is never empty */
    *len = eg_jr_str(d, t, *owned, t->len);
    return *owned;
}

/* The members (or items) after container token c, added to the new container j. */
static int add_children(const eg_jr_doc_t *d, const eg_jr_tok_t *c, json_t *j)
{
    const eg_jr_tok_t *k = c + 1;
    int rc = 0;
    for (uint32_t i = 0; i < c->count && !rc; i++) {
        if (c->type == EG_JR_ARRAY) {
            rc = json_array_append_new(j, eg_jr_to_json(d, k)) ? EG_ENOMEM : 0;
            k = d->toks + k->end;
            continue;
        }
        const eg_jr_tok_t *v = k + 1;
        size_t klen;
        char *owned;
        const char *key = str_value(d, k, &klen, &owned);
        json_t *x = key ? eg_jr_to_json(d, v) : NULL;
        rc = !x || json_object_setn_new_nocheck(j, key, klen, x) ? EG_ENOMEM : 0;
        free(owned);
        k = d->toks + v->end;
    }
    return rc;
}

json_t *eg_jr_to_json(const eg_jr_doc_t *doc, const eg_jr_tok_t *tok)
{
    json_t *j = NULL;
    switch ((eg_jr_type_t)tok->type) {
    case EG_JR_NULL: j = json_null(); break;
    case EG_JR_FALSE: j = json_false(); break;
    case EG_JR_TRUE: j = json_true(); break;
    case EG_JR_INT: j = json_integer(tok->ival); break;
    case EG_JR_REAL: j = json_real(tok->dval); break;
    case EG_JR_STRING: {
        size_t len;
        char *owned;
        const char *v = str_value(doc, tok, &len, &owned);
        if (v) j = json_stringn_nocheck(v, len);
        free(owned);
        break;
    }
    case EG_JR_ARRAY:
    case EG_JR_OBJECT:
        j = tok->type == EG_JR_ARRAY ? json_array() : json_object();
        if (j && add_children(doc, tok, j)) {
            json_decref(j);
            j = NULL;
        }
        break;
    }
    return j;
}

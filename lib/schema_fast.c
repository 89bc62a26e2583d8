/* schema_fast.c - an accept-only fast path for a whole JSON body: one pass
 * over its bytes fused with the compiled schema, answering "valid" or "not
 * sure", never "invalid".
 *
 * Why: a valid body is the common case, and for it the exact path (jsonr's
 * tape, then the tree walk of schema_check.c) writes a token per value and
 * then reads it back. Here each value is checked as it is read: no tape, no
 * allocation, each key looked up once in its node's property table, and the
 * same key's property index doubling as the duplicate check (a bit per
 * declared property; undeclared keys are kept in a small list and compared).
 * Leaves are checked inline with the exact path's own helpers (formats,
 * patterns, multipleOf, the structural enum hash) on the same bytes.
 *
 * Soundness is the whole point: "valid" here must imply that eg_jr_parse
 * accepts the text and eg_schema_validate answers EG_OK. So the JSON is
 * read with jsonr's own scanners (jsonr_scan.h: strings, escapes, UTF-8,
 * whitespace) and numbers to jsonr's values (the common ones inline, as
 * scan_number computes them, the rest by eg_jr_number), and anything this
 * file does not decide exactly answers "not sure": every problem the schema
 * would report, invalid JSON, an escaped key, an escaped string over 256
 * bytes whose content a keyword reads, a NUL byte anywhere (jansson's lost
 * NUL included), applicators (allOf, anyOf, oneOf, not, if, a $ref with
 * siblings), patternProperties, propertyNames, dependencies, contains,
 * enum / const of a container, uniqueItems beyond 16 scalar items, more
 * than 256 properties in a node, 64 nested containers, 64 undeclared keys
 * in an object. The exact path's limits cannot be reached by what is
 * accepted: its depth (256 nodes) is bounded here at 200 plus a value's own
 * $ref chain (at most 16), and its work budget (100,000 + 64 a token) by
 * at most 16 nodes a value plus, for a uniqueItems array of k <= 16 items
 * (k + 1 tokens), k(k-1)/2 comparisons: under 64 a token. The caller then
 * runs the exact path, which words every error; test_schema_fast and
 * fuzz_schema check the implication.
 */
#include "jsonr_scan.h"
#include "schema_int.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__) && defined(__x86_64__) && defined(__BYTE_ORDER__) &&    \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define KEY_SSE2 1
/* keymask + 16 - k: k bytes of 0xff, then zeros (a short key's bytes) */
static const unsigned char keymask[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
#else
#define KEY_SSE2 0
#endif

/* eg_snode_t.fstr: what a string value is checked for, decided once (0:
 * nothing, it passes) */
#define FS_NOSTR   1u  /* "type" has no string: it fails */
#define FS_ENUMW   2u  /* a short string enum, by words (fenum) */
#define FS_ENUM    4u  /* const or another enum (in_enum) */
#define FS_LEN     8u  /* minLength or maxLength */
#define FS_PATTERN 16u /* pattern */
#define FS_FORMAT  32u /* format */

/* the separators after a key and after a member, read as a word */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SEP_WORDS 1
#else
#define SEP_WORDS 0
#endif

#define FAST_MAX_DEPTH  64  /* open containers */
#define FAST_MAX_PROPS  256 /* declared properties of an object's node */
#define FAST_MAX_UND    512 /* undeclared keys of the open objects */
#define FAST_MAX_UNDOBJ 64  /* ... of one object */
#define FAST_MAX_HOPS   16  /* $ref-only nodes followed for one value */
#define FAST_MAX_UNIQUE 16  /* items of a uniqueItems array (scalars only) */
#define FAST_SDEPTH     200 /* schema nodes nested (+ FAST_MAX_HOPS < EG_SCHEMA_MAX_DEPTH) */

/* what the fast path leaves to the exact one, wherever it appears */
#define K_UNSURE                                                                                   \
    (K_ALLOF | K_ANYOF | K_ONEOF | K_NOT | K_CONTAINS | K_PNAMES | K_DEPS | K_PPROPS | K_FALSE)

typedef struct {
    const eg_snode_t *nd; /* the container's node, NULL: anything goes */
    uint32_t count;       /* members or items so far */
    uint32_t und0;        /* this object's first undeclared key in und[] */
    uint16_t sdepth;
    uint8_t obj, uniq;
    uint64_t seen[FAST_MAX_PROPS / 64]; /* declared properties met (an object's) */
    const sfslot_t *ftab;               /* an object's property slots (NULL: none) */
    uint32_t pmask;                     /* ... and their mask */
} frame_t;

typedef struct {
    uint32_t off, len;
} ukey_t;

/* a scalar item of a uniqueItems array */
typedef struct {
    uint8_t type; /* eg_jr_type_t */
    uint32_t off, len;
    eg_jr_tok_t num;
} uitem_t;

typedef struct {
    const eg_schema_t *s;
    const char *text;
    size_t len;
    int vinit; /* vc set up (a pattern PCRE2 matches) */
    eg_schema_report_t vrep;
    eg_vctx_t vc;
} fctx_t;

/* The node deciding a value checked by `at`: $ref-only nodes followed,
 * SNONE when anything goes, EG_SFAST_EXACT when this file does not take it;
 * *hops: the nodes entered on the way, which the exact walk counts in its
 * depth and its work budget. */
static uint32_t resolve(const eg_schema_t *s, uint32_t at, uint32_t *hops)
{
    *hops = 0;
    while (at != SNONE) {
        const eg_snode_t *n = &s->nodes[at];
        if (!n->kw && n->if_ == SNONE) return SNONE;
        if (++*hops > FAST_MAX_HOPS || n->if_ != SNONE || (n->kw & K_UNSURE)) return EG_SFAST_EXACT;
        if (!(n->kw & K_REF)) return at;
        if (n->kw != K_REF) return EG_SFAST_EXACT; /* siblings of $ref: two nodes on one value */
        at = n->ref;
    }
    return SNONE;
}

int eg_schema_fast_prepare(eg_schema_t *s)
{
    size_t nslots = 0;
    for (size_t i = 0; i < s->nnodes; i++)
        if (s->nodes[i].nprops) nslots += (size_t)s->nodes[i].pmask + 1;
    if (nslots && !(s->fslots = malloc(nslots * sizeof(*s->fslots)))) return EG_ENOMEM;
    s->nfslots = nslots;
    for (size_t i = 0; i < s->nnodes; i++) {
        eg_snode_t *nd = &s->nodes[i];
        nd->fast = resolve(s, (uint32_t)i, &nd->fhops);
        nd->freq = 0;
        nd->freq_ok = 1;
        for (uint32_t r = 0; r < nd->nreq; r++) {
            uint32_t pi = s->reqs[nd->req + r].prop;
            if (pi == SNONE || pi >= 64) {
                nd->freq_ok = 0;
                break;
            }
            nd->freq |= 1ull << pi;
        }
    }
    /* short string enums as words, and the string lengths that need no
     * code point count */
    size_t nfe = 0;
    for (size_t i = 0; i < s->nnodes; i++) {
        eg_snode_t *nd = &s->nodes[i];
        nd->fenum_ok = 0;
        nd->flen_lo = 0;
        nd->flen_hi = UINT64_MAX;
        /* len / 4 < minlen, as string_keywords asks, is len < 4 * minlen */
        if (nd->kw & K_MINLEN)
            nd->flen_lo = nd->minlen > UINT64_MAX / 4 ? UINT64_MAX : 4 * nd->minlen;
        if (nd->kw & K_MAXLEN) nd->flen_hi = nd->maxlen;
        if (!(nd->kw & K_ENUM) || (nd->kw & K_CONST) || nd->neh) continue;
        int ok = 1;
        for (uint32_t e = 0; e < nd->nenum && ok; e++) {
            const cval_t *v = &s->cvals[s->idx[nd->enm + e]];
            ok = v->type == CV_STRING && v->len <= 16;
        }
        if (!ok) continue;
        nd->fenum_ok = 1;
        nd->fenum = (uint32_t)nfe;
        nfe += nd->nenum;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        eg_snode_t *nd = &s->nodes[i];
        unsigned fs = 0;
        if ((nd->kw & K_TYPE) && !(nd->types & EG_ST_STRING)) {
            fs = FS_NOSTR;
        } else {
            if (nd->fenum_ok)
                fs |= FS_ENUMW;
            else if (nd->kw & (K_CONST | K_ENUM))
                fs |= FS_ENUM;
            if (nd->kw & (K_MINLEN | K_MAXLEN)) fs |= FS_LEN;
            if (nd->kw & K_PATTERN) fs |= FS_PATTERN;
            if (nd->kw & K_FORMAT) fs |= FS_FORMAT;
        }
        nd->fstr = (uint8_t)fs;
    }
    if (nfe && !(s->fenums = malloc(nfe * sizeof(*s->fenums)))) return EG_ENOMEM;
    s->nfenums = nfe;
    for (size_t i = 0; i < s->nnodes; i++) {
        const eg_snode_t *nd = &s->nodes[i];
        for (uint32_t e = 0; nd->fenum_ok && e < nd->nenum; e++) {
            const cval_t *v = &s->cvals[s->idx[nd->enm + e]];
            sfenum_t *x = &s->fenums[nd->fenum + e];
            eg_schema_prop_words(v->s, v->len, &x->w0, &x->w1);
            x->len = v->len;
        }
    }
    for (size_t i = 0; i < s->nprops; i++) {
        s->props[i].fast = s->nodes[s->props[i].node].fast;
        s->props[i].fhops = s->nodes[s->props[i].node].fhops;
    }
    /* the property tables again, each slot with what a key needs */
    nslots = 0;
    for (size_t i = 0; i < s->nnodes; i++) {
        eg_snode_t *nd = &s->nodes[i];
        if (!nd->nprops) continue;
        nd->fptab = (uint32_t)nslots;
        for (uint32_t h = 0; h <= nd->pmask; h++) {
            sfslot_t *e = &s->fslots[nslots++];
            uint32_t pi = s->idx[nd->ptab + h];
            if (pi == SNONE) {
                memset(e, 0, sizeof(*e));
                e->len = UINT32_MAX;
                e->pi = SNONE;
                continue;
            }
            const sprop_t *p = &s->props[nd->props + pi];
            e->w0 = p->w0;
            e->w1 = p->w1;
            e->len = p->len;
            e->pi = pi;
            e->fast = p->fast;
            e->fhops = p->fhops;
        }
    }
    return EG_OK;
}

/* eg_schema_prop_find() on the node's fast slots: the slot of key k[0..len)
 * whose words (eg_schema_prop_words) are w0, w1, NULL when it is not
 * declared. */
static inline const sfslot_t *fslot_find(const eg_schema_t *s, const eg_snode_t *const *n,
                                         const sfslot_t *tab, uint32_t pmask, const char *k,
                                         size_t len, uint64_t w0, uint64_t w1)
{
    for (uint32_t h = eg_schema_prop_hash(w0, w1, len) & pmask;; h = (h + 1) & pmask) {
        const sfslot_t *e = &tab[h];
        if (e->len == len && e->w0 == w0 && e->w1 == w1 &&
            (len <= 16 || memcmp(k, s->props[(*n)->props + e->pi].name, len) == 0))
            return e;
        if (e->pi == SNONE) return NULL;
    }
}

static double num_of(const eg_jr_tok_t *t)
{
    return t->type == EG_JR_INT ? (double)t->ival : t->dval;
}

/* as schema_check.c's num_cmp */
static int num_cmp(const eg_jr_tok_t *t, const snum_t *b)
{
    if (t->type == EG_JR_INT && b->isint) return (t->ival > b->i) - (t->ival < b->i);
    double x = num_of(t);
    return (x > b->d) - (x < b->d);
}

/* A scalar equal to const/enum value v, as schema_check.c's cval_eq: a
 * string by its unescaped bytes p[0..n), a number by value (num). */
static int cv_eq(const cval_t *v, unsigned type, const char *p, size_t n, const eg_jr_tok_t *num)
{
    switch (v->type) {
    case CV_NULL:
        return type == EG_JR_NULL;
    case CV_TRUE:
        return type == EG_JR_TRUE;
    case CV_FALSE:
        return type == EG_JR_FALSE;
    case CV_NUM:
        return num && num_cmp(num, &v->n) == 0;
    case CV_STRING:
        return type == EG_JR_STRING && v->len == n && memcmp(v->s, p, n) == 0;
    default:
        return 0; /* a container equals no scalar */
    }
}

/* const and enum on a scalar: 1 when they pass (absent ones pass). */
static int in_enum(const eg_schema_t *s, const eg_snode_t *n, unsigned type, const char *p,
                   size_t len, const eg_jr_tok_t *num)
{
    if ((n->kw & K_CONST) && !cv_eq(&s->cvals[n->cnst], type, p, len, num)) return 0;
    if (!(n->kw & K_ENUM)) return 1;
    if (n->neh) { /* a long enum: the values sharing the instance's hash, as the exact walk */
        uint64_t h = type == EG_JR_NULL    ? 1
                     : type == EG_JR_FALSE ? 2
                     : type == EG_JR_TRUE  ? 3
                     : num                 ? eg_schema_hash_num(num_of(num))
                                           : eg_schema_hash_str(p, len);
        const sehash_t *e = s->ehash + n->eh;
        size_t lo = eg_sehash_lower(e, n->neh, h);
        for (; lo < n->neh && e[lo].hash == h; lo++)
            if (cv_eq(&s->cvals[e[lo].cval], type, p, len, num)) return 1;
        return 0;
    }
    for (uint32_t i = 0; i < n->nenum; i++)
        if (cv_eq(&s->cvals[s->idx[n->enm + i]], type, p, len, num)) return 1;
    return 0;
}

/* The string keywords of node n on the unescaped value p[0..len) (room:
 * bytes readable from p): 1 when they surely pass. */
static inline __attribute__((always_inline)) int
string_keywords(fctx_t *f, const eg_snode_t *n, const char *p, size_t len, size_t room)
{
    const eg_schema_t *s = f->s;
    unsigned fs = n->fstr;
    if (fs & FS_ENUMW) { /* in_enum() by the words: no call, no memcmp */
        if (len > 16) return 0;
        uint64_t w0, w1;
        eg_schema_prop_words_at(p, len, room, &w0, &w1);
        const sfenum_t *e = s->fenums + n->fenum, *end = e + n->nenum;
        while (e < end && !(e->len == len && e->w0 == w0 && e->w1 == w1))
            e++;
        if (e == end) return 0;
    } else if ((fs & FS_ENUM) && !in_enum(s, n, EG_JR_STRING, p, len, NULL)) {
        return 0;
    }
    if ((fs & FS_LEN) && (len < n->flen_lo || len > n->flen_hi)) {
        size_t cp = 0; /* code points, as schema_check.c counts them */
        for (size_t i = 0; i < len; i++)
            cp += ((unsigned char)p[i] & 0xc0) != 0x80;
        if ((n->kw & K_MINLEN) && cp < n->minlen) return 0;
        if ((n->kw & K_MAXLEN) && cp > n->maxlen) return 0;
    }
    if (fs & FS_PATTERN) {
        const eg_fastre_t *fr = s->res[n->pattern].fast;
        if (fr) {
            if (!eg_fastre_match(fr, p, len)) return 0;
        } else {
            if (!f->vinit) {
                eg_sc_init(&f->vc, s, &f->vrep);
                f->vinit = 1;
            }
            if (eg_sc_re_match(&f->vc, n->pattern, p, len) != 1) return 0;
        }
    }
    if ((fs & FS_FORMAT) && !eg_format_check((eg_format_t)n->fmt, p, len)) return 0;
    return 1;
}

/* An escaped string's value unescaped first (out of the common path: its
 * buffer costs every call a larger frame). */
static __attribute__((noinline)) int string_escaped(fctx_t *f, const eg_snode_t *n, const char *r,
                                                    size_t rn)
{
    char buf[256]; /* the unescaped value is never longer than the raw text */
    if (rn > sizeof(buf)) return 0;
    return string_keywords(f, n, buf, eg_jr_unescape(r, rn, buf, sizeof(buf)), 0);
}

/* Node `at` (resolved, not SNONE) on a string whose raw contents are
 * r[0..rn) (esc: with escapes; room: bytes readable from r): 1 when it
 * surely passes. */
static inline int check_string(fctx_t *f, uint32_t at, const char *r, size_t rn, int esc,
                               size_t room)
{
    const eg_snode_t *n = &f->s->nodes[at];
    unsigned fs = n->fstr;
    if (!fs) return 1;
    if (fs & FS_NOSTR) return 0;
    return esc ? string_escaped(f, n, r, rn) : string_keywords(f, n, r, rn, room);
}

/* isfinite(d) && d == floor(d), as schema_check.c asks, without a call to
 * floor: every double of magnitude 2^52 or more is an integer, and below
 * that the conversion to long long is exact when d is one (NaN goes the
 * first way). */
static inline int is_integral(double d)
{
    if (!(fabs(d) < 0x1p52)) return isfinite(d);
    return (double)(long long)d == d;
}

/* Node `at` on a number t whose text is at num: 1 when it surely passes. */
static inline __attribute__((always_inline)) int check_number(const eg_schema_t *s, uint32_t at,
                                                              const eg_jr_tok_t *t, const char *num)
{
    const eg_snode_t *n = &s->nodes[at];
    unsigned tt = EG_ST_NUMBER;
    if (t->type == EG_JR_INT || is_integral(t->dval)) tt |= EG_ST_INTEGER;
    if ((n->kw & K_TYPE) && !(n->types & tt)) return 0;
    if ((n->kw & (K_CONST | K_ENUM)) && !in_enum(s, n, t->type, NULL, 0, t)) return 0;
    if (!(n->kw & (K_NUMBER | K_FORMAT))) return 1;
    if ((n->kw & K_MIN) && num_cmp(t, &n->min) < 0) return 0;
    if ((n->kw & K_XMIN) && num_cmp(t, &n->xmin) <= 0) return 0;
    if ((n->kw & K_MAX) && num_cmp(t, &n->max) > 0) return 0;
    if ((n->kw & K_XMAX) && num_cmp(t, &n->xmax) >= 0) return 0;
    if ((n->kw & K_MULT) && !eg_sc_multiple_of(num, t, n)) return 0;
    if ((n->kw & K_FORMAT) && !eg_format_check_number((eg_format_t)n->fmt, num, t->len)) return 0;
    return 1;
}

/* Node `at` on null, true or false. */
static int check_literal(const eg_schema_t *s, uint32_t at, unsigned type)
{
    const eg_snode_t *n = &s->nodes[at];
    unsigned tt = type == EG_JR_NULL ? EG_ST_NULL : EG_ST_BOOLEAN;
    if ((n->kw & K_TYPE) && !(n->types & tt)) return 0;
    return !(n->kw & (K_CONST | K_ENUM)) || in_enum(s, n, type, NULL, 0, NULL);
}

/* Two scalar items equal as schema_check.c's tok_eq finds them. */
static int item_eq(const char *text, const uitem_t *a, const uitem_t *b)
{
    int an = a->type == EG_JR_INT || a->type == EG_JR_REAL;
    int bn = b->type == EG_JR_INT || b->type == EG_JR_REAL;
    if (an && bn) {
        if (a->type == EG_JR_INT && b->type == EG_JR_INT) return a->num.ival == b->num.ival;
        return num_of(&a->num) == num_of(&b->num);
    }
    if (a->type != b->type) return 0;
    if (a->type == EG_JR_STRING)
        return a->len == b->len && memcmp(text + a->off, text + b->off, a->len) == 0;
    return 1; /* null, true, false */
}

/* A number's characters: the span eg_jr_number is asked about. A span
 * longer than jsonr's number is followed, in jsonr, by a byte no value may
 * be followed by, so both refuse the text. */
static const unsigned char numch[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['-'] = 1, ['+'] = 1, ['.'] = 1, ['e'] = 1, ['E'] = 1,
};

/* The common numbers read inline, to the value scan_number (jsonr.c) gives
 * them: an integer of at most 18 digits, or one with a fraction and at
 * most 15 digits in all and no exponent (exact in a double, so one
 * correctly rounded division, as its Clinger path does). Anything else is
 * read by eg_jr_number. Returns the index after the number, 0 when the
 * bytes at i are not such a number. */
static size_t quick_number(const unsigned char *b, size_t n, size_t i, eg_jr_tok_t *t)
{
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t st = i;
    int neg = b[i] == '-';
    i += (size_t)neg;
    uint64_t m = 0;
    size_t d0 = i;
    if (i < n && b[i] == '0') {
        i++;
    } else {
        while (i < n && b[i] - (unsigned)'0' < 10u)
            m = m * 10 + (b[i++] - '0');
    }
    size_t nd = i - d0;
    if (!nd || nd > 18) return 0;
    if (i < n && b[i] == '.') {
        size_t f0 = ++i;
        while (i < n && b[i] - (unsigned)'0' < 10u)
            m = m * 10 + (b[i++] - '0');
        size_t fd = i - f0;
        if (!fd || nd + fd > 15 || (i < n && numch[b[i]])) return 0;
        double v = (double)m / p10[fd];
        t->type = EG_JR_REAL;
        t->dval = neg ? -v : v;
    } else {
        if (i < n && numch[b[i]]) return 0; /* an exponent, a leading zero's digit, ... */
        t->type = EG_JR_INT;
        t->ival = neg ? -(long long)m : (long long)m;
    }
    t->off = 0;
    t->len = (uint32_t)(i - st);
    t->escaped = 0;
    t->count = 0;
    return i;
#else
    (void)b, (void)n, (void)i, (void)t;
    return 0;
#endif
}

static int fast(fctx_t *f)
{
    const eg_schema_t *s = f->s;
    const unsigned char *b = (const unsigned char *)f->text;
    const size_t n = f->len;
    frame_t st[FAST_MAX_DEPTH];
    ukey_t und[FAST_MAX_UND];
    uitem_t uq[FAST_MAX_UNIQUE];
    int top = -1;
    uint32_t nund = 0, nuq = 0, node, hops, sub;
    unsigned sdepth = 0; /* schema nodes nested above the value */
    size_t i = 0, q;
    frame_t *fr = NULL; /* the innermost open container */
    uitem_t *it = NULL; /* where a uniqueItems array's item goes */
    int collect = 0;    /* fr is a uniqueItems array */

    node = s->nodes[s->root].fast;
    hops = s->nodes[s->root].fhops;
value: /* the value at i (whitespace before it not yet skipped), checked by node */
    i = skip_ws(b, n, i);
    if (i >= n || node == EG_SFAST_EXACT) return 0;
    if (collect) { /* a uniqueItems array keeps its (scalar) items */
        if (nuq == FAST_MAX_UNIQUE) return 0;
        it = &uq[nuq++];
    }
    switch (b[i]) {
    case '"': {
        uint8_t esc = 0;
        if ((q = scan_string(b, n, i + 1, &esc)) == BAD) return 0;
        if (node != SNONE &&
            !check_string(f, node, (const char *)b + i + 1, q - i - 1, esc, n - (i + 1)))
            return 0;
        if (collect) {
            if (esc) return 0;
            it->type = EG_JR_STRING;
            it->off = (uint32_t)(i + 1);
            it->len = (uint32_t)(q - i - 1);
        }
        i = q + 1;
        break;
    }
    case '{':
    case '[': {
        /* a scalar adds at most FAST_MAX_HOPS nodes: the depth is checked here */
        if (top + 1 >= FAST_MAX_DEPTH || collect || sdepth + hops > FAST_SDEPTH) return 0;
        int obj = b[i] == '{';
        const eg_snode_t *nd = node != SNONE ? &s->nodes[node] : NULL;
        if (nd) {
            if ((nd->kw & K_TYPE) && !(nd->types & (obj ? EG_ST_OBJECT : EG_ST_ARRAY))) return 0;
            if (nd->kw & (K_CONST | K_ENUM)) return 0; /* compared as a whole: the exact path */
            if (obj && nd->nprops > FAST_MAX_PROPS) return 0;
        }
        fr = &st[++top];
        fr->nd = nd;
        fr->count = 0;
        fr->obj = (uint8_t)obj;
        fr->uniq = !obj && nd && (nd->kw & K_UNIQUE);
        fr->und0 = nund;
        fr->ftab = obj && nd && nd->nprops ? s->fslots + nd->fptab : NULL;
        fr->pmask = fr->ftab ? nd->pmask : 0;
        fr->sdepth = (uint16_t)(sdepth + hops);
        collect = fr->uniq;
        nuq = 0;
        /* (inline stores: cheaper than a call to memset for a few words) */
        fr->seen[0] = fr->seen[1] = fr->seen[2] = fr->seen[3] = 0;
        i = skip_ws(b, n, i + 1);
        if (i < n && b[i] == (obj ? '}' : ']')) goto close;
        if (obj) goto key;
        goto item;
    }
    case 't':
    case 'f':
    case 'n': {
        unsigned ty = b[i] == 'n' ? EG_JR_NULL : b[i] == 'f' ? EG_JR_FALSE : EG_JR_TRUE;
        const char *lit = ty == EG_JR_NULL ? "null" : ty == EG_JR_FALSE ? "false" : "true";
        size_t l = ty == EG_JR_FALSE ? 5 : 4;
        if (n - i < l || memcmp(b + i, lit, l) != 0) return 0;
        if (node != SNONE && !check_literal(s, node, ty)) return 0;
        if (collect) it->type = (uint8_t)ty;
        i += l;
        break;
    }
    default: {
        eg_jr_tok_t t;
        size_t j = quick_number(b, n, i, &t);
        if (!j) {
            for (j = i; j < n && numch[b[j]]; j++)
                ;
            if (j == i || eg_jr_number(f->text + i, j - i, &t) != 0) return 0;
        }
        if (node != SNONE && !check_number(s, node, &t, f->text + i)) return 0;
        if (collect) {
            it->type = t.type;
            it->num = t;
        }
        i = j;
        break;
    }
    }
    /* (jansson's lost NUL after a number or a literal is neither whitespace
     * nor a byte that may follow a value here: left to the exact path) */

after: /* a value has just ended at i, inside fr */
    if (!fr) goto done;
    if (fr->obj) goto member_end;
    i = skip_ws(b, n, i);
    if (i >= n) return 0;
    fr->count++;
    if (b[i] == ']') goto close;
    if (b[i] != ',') return 0;
    i++;

item: /* an array's next item: its node */
    node = SNONE;
    hops = 0;
    if (fr->nd && (fr->nd->kw & (K_PREFIX | K_ITEMS))) {
        const eg_snode_t *nd = fr->nd;
        sub = fr->count < nd->nprefix ? s->idx[nd->prefix + fr->count] : nd->items;
        if (sub != SNONE) {
            node = s->nodes[sub].fast;
            hops = s->nodes[sub].fhops;
        }
    }
    sdepth = fr->sdepth;
    goto value;

key: /* at i: a member's key in the object fr */
    if (i >= n || b[i] != '"') return 0;
key_quote:; /* ... whose opening quote is at i (i < n) */
    {
        uint64_t w0, w1;
#if KEY_SSE2
        /* a key under 16 bytes of printable ASCII (most): its closing quote
         * and its words from one load, as scan_string's first step finds it */
        unsigned m = 0;
        __m128i v = _mm_setzero_si128();
        if (i + 17 <= n) {
            v = _mm_loadu_si128((const __m128i *)(const void *)(b + i + 1));
            m = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                             _mm_cmplt_epi8(v, _mm_set1_epi8(0x20))));
        }
        if (m && b[i + 1 + (unsigned)__builtin_ctz(m)] == '"') {
            unsigned kl = (unsigned)__builtin_ctz(m);
            v = _mm_and_si128(v,
                              _mm_loadu_si128((const __m128i *)(const void *)(keymask + 16 - kl)));
            w0 = (uint64_t)_mm_cvtsi128_si64(v);
            w1 = (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v));
            q = i + 1 + kl;
        } else
#endif
        {
            uint8_t esc = 0;
            if ((q = scan_string(b, n, i + 1, &esc)) == BAD || esc) return 0;
            eg_schema_prop_words_at(f->text + i + 1, q - i - 1, n - (i + 1), &w0, &w1);
        }
        node = SNONE;
        hops = 0;
        const char *k = (const char *)b + i + 1;
        uint32_t kl = (uint32_t)(q - i - 1);
        const sfslot_t *e = NULL;
        if (fr->ftab) e = fslot_find(s, &fr->nd, fr->ftab, fr->pmask, k, kl, w0, w1);
        if (e) {
            uint32_t pi = e->pi;
            uint64_t bit = 1ull << (pi % 64);
            if (fr->seen[pi / 64] & bit) return 0; /* a duplicate */
            fr->seen[pi / 64] |= bit;
            node = e->fast;
            hops = e->fhops;
        } else {
            for (uint32_t u = fr->und0; u < nund; u++)
                if (und[u].len == kl && memcmp(b + und[u].off, k, kl) == 0) return 0;
            if (nund >= FAST_MAX_UND || nund - fr->und0 >= FAST_MAX_UNDOBJ) return 0;
            und[nund].off = (uint32_t)(i + 1);
            und[nund++].len = kl;
            const eg_snode_t *nd = fr->nd;
            if (nd && (nd->kw & K_ADDL)) {
                node = s->nodes[nd->addl].fast;
                hops = s->nodes[nd->addl].fhops;
            }
        }
    }
    fr->count++;
    i = q + 1;
    if (i < n && b[i] == ':') { /* "key": as compact JSON and json.dumps write it */
        i++;
    } else {
        i = skip_ws(b, n, i);
        if (i >= n || b[i] != ':') return 0;
        i++;
    }
    if (i < n && b[i] == ' ') i++; /* ": " as json.dumps writes it */
    if (i < n && b[i] == '"') {
        /* a member's string (at i, i < n), the commonest value: as value:
         * takes it (collect is 0 in an object), without its dispatch */
        uint8_t esc = 0;
        if (node == EG_SFAST_EXACT || (q = scan_string(b, n, i + 1, &esc)) == BAD) return 0;
        if (node != SNONE &&
            !check_string(f, node, (const char *)b + i + 1, q - i - 1, esc, n - (i + 1)))
            return 0;
        i = q + 1;
        goto member_end;
    }
    sdepth = fr->sdepth;
    goto value;

member_end: /* a member's value has just ended at i, inside the object fr */
#if SEP_WORDS
    if (n - i >= 4) { /* ', "' or ',"' before the next key, the usual: one load */
        uint32_t w;
        memcpy(&w, b + i, 4);
        if ((w & 0xffff) == (',' | '"' << 8)) {
            i++;
            goto key_quote;
        }
        if ((w & 0xffffff) == (',' | ' ' << 8 | '"' << 16)) {
            i += 2;
            goto key_quote;
        }
    }
#endif
    if (i < n && b[i] == ',') { /* no whitespace before the comma: the usual */
        i = skip_ws(b, n, i + 1);
        goto key;
    }
    i = skip_ws(b, n, i);
    if (i >= n) return 0;
    if (b[i] == ',') {
        i = skip_ws(b, n, i + 1);
        goto key;
    }
    if (b[i] == '}') goto close;
    return 0;

close: /* b[i] closes fr */
    if (fr->nd) {
        const eg_snode_t *nd = fr->nd;
        if (fr->obj) {
            if ((nd->kw & K_MINPROPS) && fr->count < nd->minprops) return 0;
            if ((nd->kw & K_MAXPROPS) && fr->count > nd->maxprops) return 0;
            if (nd->freq_ok) {
                if ((fr->seen[0] & nd->freq) != nd->freq) return 0;
            } else {
                for (uint32_t r = 0; r < nd->nreq; r++) {
                    const sreq_t *rq = &s->reqs[nd->req + r];
                    if (rq->prop != SNONE) {
                        if (!(fr->seen[rq->prop / 64] >> (rq->prop % 64) & 1)) return 0;
                        continue;
                    }
                    uint32_t u = fr->und0;
                    while (u < nund && !(und[u].len == rq->len &&
                                         memcmp(b + und[u].off, rq->name, rq->len) == 0))
                        u++;
                    if (u == nund) return 0;
                }
            }
        } else {
            if ((nd->kw & K_MINITEMS) && fr->count < nd->minitems) return 0;
            if ((nd->kw & K_MAXITEMS) && fr->count > nd->maxitems) return 0;
            for (uint32_t x = 0; fr->uniq && x < nuq; x++)
                for (uint32_t y = x + 1; y < nuq; y++)
                    if (item_eq(f->text, &uq[x], &uq[y])) return 0;
        }
    }
    nund = fr->und0;
    top--;
    fr = top >= 0 ? &st[top] : NULL;
    collect = 0; /* a uniqueItems array holds no containers: its parent is not one */
    nuq = 0;
    i++;
    goto after;

done:
    i = skip_ws(b, n, i);
    return i == n;
}

/* The fast path's check of one scalar token (a parameter's value, as
 * params.c builds it: see schema.h). */
int eg_schema_fast_token(const eg_schema_t *s, const char *text, const eg_jr_tok_t *t)
{
    uint32_t node = s->nodes[s->root].fast;
    if (node == EG_SFAST_EXACT) return 0;
    if (node == SNONE) return 1;
    switch (t->type) {
    case EG_JR_STRING: {
        if (t->escaped) return 0;
        fctx_t f;
        f.s = s;
        f.text = text;
        f.len = 0;
        f.vinit = 0;
        int ok = check_string(&f, node, text + t->off, t->len, 0, t->len);
        if (f.vinit) eg_sc_fini(&f.vc);
        return ok;
    }
    case EG_JR_INT:
    case EG_JR_REAL:
        return check_number(s, node, t, text + t->off);
    case EG_JR_NULL:
    case EG_JR_TRUE:
    case EG_JR_FALSE:
        return check_literal(s, node, t->type);
    default:
        return 0;
    }
}

int eg_schema_fast(const eg_schema_t *s, const char *text, size_t len)
{
    if (!s || !text || len >= UINT32_MAX) return 0;
    fctx_t f;
    f.s = s;
    f.text = text;
    f.len = len;
    f.vinit = 0;
    int ok = fast(&f);
    if (f.vinit) eg_sc_fini(&f.vc);
    return ok;
}

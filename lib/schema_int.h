/* schema_int.h - the compiled form of a JSON Schema (private to schema_*.c).
 *
 * A schema is a flat array of nodes addressed by index, so compiling can grow
 * it with realloc and $ref cycles are just indices pointing back. A node keeps
 * a bit per keyword present and the keyword's operands inline; lists
 * (properties, prefixItems, allOf, enum values...) are ranges into shared
 * arrays of the schema. Nothing points into the source document.
 */
#ifndef EG_SCHEMA_INT_H
#define EG_SCHEMA_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format.h"
#include "schema.h"

#define EG_SCHEMA_MAX_DEPTH 256 /* applicator nesting per validation */
#define EG_SCHEMA_ECHO_MAX  64  /* bytes of a string value echoed in a field error */
/* work budget of one validation: schema nodes entered plus pairwise value
 * comparisons (uniqueItems over containers), at most MIN + PER_TOKEN x the
 * instance's tokens; past it the value is refused ("complexity") */
#define EG_SCHEMA_MIN_BUDGET       100000
#define EG_SCHEMA_BUDGET_PER_TOKEN 64
#define SNONE                      UINT32_MAX

/* keyword bits of eg_snode_t.kw (defines: bit 31 does not fit an int enum) */
#define K_TYPE     (1u << 0)
#define K_MIN      (1u << 1)
#define K_MAX      (1u << 2)
#define K_XMIN     (1u << 3)
#define K_XMAX     (1u << 4)
#define K_MULT     (1u << 5)
#define K_MINLEN   (1u << 6)
#define K_MAXLEN   (1u << 7)
#define K_PATTERN  (1u << 8)
#define K_FORMAT   (1u << 9)
#define K_MINITEMS (1u << 10)
#define K_MAXITEMS (1u << 11)
#define K_UNIQUE   (1u << 12)
#define K_PREFIX   (1u << 13)
#define K_ITEMS    (1u << 14)
#define K_MINPROPS (1u << 15)
#define K_MAXPROPS (1u << 16)
#define K_PROPS    (1u << 17)
#define K_PPROPS   (1u << 18)
#define K_ADDL     (1u << 19)
#define K_REQ      (1u << 20)
#define K_ENUM     (1u << 21)
#define K_CONST    (1u << 22)
#define K_ALLOF    (1u << 23)
#define K_ANYOF    (1u << 24)
#define K_ONEOF    (1u << 25)
#define K_NOT      (1u << 26)
#define K_REF      (1u << 27)
#define K_FALSE    (1u << 28)
#define K_CONTAINS (1u << 29) /* contains, with minContains / maxContains */
#define K_PNAMES   (1u << 30) /* propertyNames */
#define K_DEPS     (1u << 31) /* dependentRequired, dependentSchemas */
#define K_NUMBER   (K_MIN | K_MAX | K_XMIN | K_XMAX | K_MULT)
#define K_STRING   (K_MINLEN | K_MAXLEN | K_PATTERN)
#define K_ARRAY    (K_MINITEMS | K_MAXITEMS | K_UNIQUE | K_PREFIX | K_ITEMS | K_CONTAINS)
#define K_OBJECT   (K_MINPROPS | K_MAXPROPS | K_PROPS | K_PPROPS | K_ADDL | K_REQ | K_PNAMES | K_DEPS)

/* A number from the schema: its text (for messages and exact decimal
 * arithmetic), its double, and its integer value when it is one. */
typedef struct {
    const char *text;
    double d;
    long long i;
    int isint;
} snum_t;

/* A value of enum/const, flattened like a jsonr tape: a container is
 * followed by its items (an object's as key, value); `end` is the index
 * after the subtree. */
typedef enum { CV_NULL, CV_FALSE, CV_TRUE, CV_NUM, CV_STRING, CV_ARRAY, CV_OBJECT } cvtype_t;
typedef struct {
    uint8_t type;
    uint32_t end, count;
    const char *s; /* STRING: bytes (schema-owned) */
    size_t len;
    snum_t n;
} cval_t;

typedef struct {
    const char *name;
    uint32_t len;
    uint32_t node;
    uint64_t w0, w1;      /* eg_schema_prop_words(): names of up to 16 bytes compare by these */
    uint32_t fast, fhops; /* nodes[node].fast and .fhops (schema_fast.c), one load nearer */
} sprop_t;

/* A slot of a node's property table as the fast path reads it: the words
 * and length compared and the value's node in one 32-byte entry, so that a
 * key costs one load after its hash (empty: len UINT32_MAX, pi SNONE). */
typedef struct {
    uint64_t w0, w1;
    uint32_t len, pi;
    uint32_t fast, fhops;
} sfslot_t;

/* A string of a short enum as the fast path compares it: its words
 * (eg_schema_prop_words) and length. */
typedef struct {
    uint64_t w0, w1;
    uint64_t len;
} sfenum_t;

typedef struct {
    const char *name;
    uint32_t len;
    uint32_t prop; /* index in the node's sorted properties, or SNONE */
} sreq_t;

/* dependentRequired (reqs range into the schema's sreq_t) or
 * dependentSchemas (node), for when member `name` is present. */
typedef struct {
    const char *name;
    uint32_t len;
    uint32_t req, nreq;
    uint32_t node; /* SNONE for dependentRequired */
} sdep_t;

/* An enum value's structural hash (eg_schema_hash_*), for lookups in
 * long enums. */
typedef struct {
    uint64_t hash;
    uint32_t cval;
} sehash_t;

/* The first of e[0..n) (sorted by hash) whose hash is not below h: where
 * a long enum's candidates for an instance of hash h begin (the exact walk
 * and the fast path look them up alike). */
static inline size_t eg_sehash_lower(const sehash_t *e, size_t n, uint64_t h)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (e[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

typedef struct {
    uint32_t re; /* regex index */
    uint32_t node;
} spprop_t;

/* An anchored sequence of ASCII classes with counts (schema_fastre.c):
 * the common request patterns, matched without PCRE2. */
#define EG_FASTRE_MAX 16
typedef struct {
    uint64_t cls[2]; /* bit c: ASCII character c is in the class */
    uint32_t min, max;
} eg_fastre_atom_t;
typedef struct {
    uint32_t n;
    uint16_t in[256]; /* bit k: the byte is in atom k's class (one load a byte) */
    eg_fastre_atom_t atoms[];
} eg_fastre_t;

/* The pattern p[0..n) (ECMA source, as "pattern" has it) as an eg_fastre_t
 * (malloc'd) when it is one whose greedy match is exactly PCRE2's, else
 * NULL (PCRE2 matches it). */
eg_fastre_t *eg_fastre_compile(const char *p, size_t n);
/* 1 when s[0..n) (valid UTF-8) matches, else 0: PCRE2's verdict. */
int eg_fastre_match(const eg_fastre_t *f, const char *s, size_t n);

typedef struct {
    pcre2_code *code;
    const char *src;
    int jit;           /* JIT-compiled: matched with pcre2_jit_match, skipping the checks */
    eg_fastre_t *fast; /* when set, matched by eg_fastre_match instead */
} sregex_t;

struct eg_snode_s {
    uint32_t kw;
    uint8_t types; /* EG_ST_* of "type" (nullable folded in) */
    uint8_t fmt;   /* eg_format_t */
    uint8_t fstr;  /* fast path: what a string value is checked for (FS_*, schema_fast.c) */
    snum_t min, max, xmin, xmax, mult;
    uint64_t mult_m; /* multipleOf as mult_m * 10^mult_e, when mult_dec */
    long mult_e;
    int mult_dec;
    uint64_t minlen, maxlen, minitems, maxitems, minprops, maxprops;
    uint32_t pattern;
    uint32_t props, nprops;   /* sprop_t range, sorted by name */
    uint32_t ptab, pmask;     /* when nprops: a hash table of pmask + 1 slots in idx (see
                                 eg_schema_prop_hash), each a property's index or SNONE */
    uint32_t pprops, npprops; /* spprop_t range */
    uint32_t req, nreq;       /* sreq_t range */
    uint32_t addl, items, not_, ref;
    uint32_t if_, then_, else_;        /* SNONE when absent; then/else only count with if */
    uint32_t contains, pnames;         /* SNONE when absent */
    uint64_t mincontains, maxcontains; /* maxcontains UINT64_MAX: none */
    uint32_t dreq, ndreq, dsch, ndsch; /* sdep_t ranges: dependentRequired, dependentSchemas */
    uint32_t prefix, nprefix, allof, nallof, anyof, nanyof, oneof, noneof; /* idx ranges */
    uint32_t enm, nenum;
    uint32_t eh, neh;
    /* enums of more than 8 values: sehash_t range sorted by hash, else 0 */ /* idx range of
                                                                                cval roots */
    uint32_t cnst;                                                           /* cval root */
    /* for the fast path (schema_fast.c, set once compiled): the node a value
     * under this one is checked with (this one, the end of a chain of
     * $ref-only nodes, SNONE: anything goes, EG_SFAST_EXACT: left to the
     * exact path), and the nodes of that chain (the exact walk's depth) */
    uint32_t fast;
    uint32_t fhops;
    /* fast path: when freq_ok, the required names are all declared properties
     * among the first 64, freq their bits (one test at the object's end) */
    uint64_t freq;
    uint8_t freq_ok;
    uint32_t fptab; /* when nprops: its pmask + 1 slots in fslots (same places as ptab's) */
    /* fast path: when fenum_ok, the enum (no const) is of strings of at
     * most 16 bytes, fenums[fenum..fenum + nenum) their words */
    uint32_t fenum;
    uint8_t fenum_ok;
    /* fast path: a string of flen_lo..flen_hi bytes passes minLength and
     * maxLength without counting its code points */
    uint64_t flen_lo, flen_hi;
    json_t *jenum, *jconst; /* for field errors' extra */
    const char *file;       /* where it was written (compile errors only) */
    int line, col;
};

struct eg_schema_s {
    eg_snode_t *nodes;
    size_t nnodes, capnodes;
    sprop_t *props;
    size_t nprops, capprops;
    sreq_t *reqs;
    size_t nreqs, capreqs;
    sdep_t *deps;
    size_t ndeps, capdeps;
    sehash_t *ehash;
    size_t nehash, capehash;
    spprop_t *pprops;
    size_t npprops, cappprops;
    uint32_t *idx;
    size_t nidx, capidx;
    cval_t *cvals;
    size_t ncvals, capcvals;
    sregex_t *res;
    size_t nres, capres;
    char **strs; /* every string the schema owns */
    size_t nstrs, capstrs;
    pcre2_match_context *mctx;
    sfslot_t *fslots; /* the fast path's property tables (eg_schema_fast_prepare) */
    size_t nfslots;
    sfenum_t *fenums; /* the fast path's short string enums */
    size_t nfenums;
    uint32_t root;
};

/* The structural hash shared by enum values (compile) and instance values
 * (check): equal JSON values hash alike (1 and 1.0, objects in any member
 * order). Leaves are hashed by these; containers combine their items'
 * hashes with eg_schema_hash_array / eg_schema_hash_member. */
static inline uint64_t eg_schema_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static inline uint64_t eg_schema_hash_num(double d)
{
    uint64_t b;
    if (d == 0) d = 0; /* -0.0 is 0 */
    memcpy(&b, &d, sizeof(b));
    return eg_schema_mix64(b ^ 4);
}

static inline uint64_t eg_schema_hash_str(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return eg_schema_mix64(h ^ 5);
}

/* A property name as two little-endian words, its bytes 0-7 and 8-15
 * (zero-padded past its end; for up to 16 bytes they hold the whole name,
 * so equal words and lengths are equal names, and a longer one is compared
 * whole after them), and the hash that places it in its node's table, from
 * the words and the length: generated names (field_001..field_999) spread
 * like hand-written ones, and a collision only costs a probe. The fast
 * path takes a short key's words from the 16 bytes its string scan loads
 * (schema_fast.c). eg_schema_prop_words_at() gives the same words reading
 * whole ones when the bytes after the name may be read (room: bytes
 * readable from k). */
static inline void eg_schema_prop_words(const char *k, size_t len, uint64_t *w0, uint64_t *w1)
{
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i < len && i < 8; i++)
        a |= (uint64_t)(unsigned char)k[i] << (8 * i);
    for (size_t i = 8; i < len && i < 16; i++)
        b |= (uint64_t)(unsigned char)k[i] << (8 * (i - 8));
    *w0 = a;
    *w1 = b;
}

static inline void eg_schema_prop_words_at(const char *k, size_t len, size_t room, uint64_t *w0,
                                           uint64_t *w1)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (len >= 16 || (len > 8 && room >= 16)) {
        uint64_t b;
        memcpy(w0, k, 8);
        memcpy(&b, k + 8, 8);
        *w1 = len >= 16 ? b : b & (~0ull >> (128 - 8 * len));
        return;
    }
    if (len <= 8 && room >= 8) {
        uint64_t a;
        memcpy(&a, k, 8);
        *w0 = len ? a & (~0ull >> (64 - 8 * len)) : 0;
        *w1 = 0;
        return;
    }
#endif
    (void)room;
    eg_schema_prop_words(k, len, w0, w1);
}

static inline uint32_t eg_schema_prop_hash(uint64_t w0, uint64_t w1, size_t len)
{
    uint64_t h = (w0 ^ (w1 * 0x9E3779B97F4A7C15ull) ^ len) * 0xff51afd7ed558ccdull;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

/* Looks key up among the node's properties through its hash table (one
 * comparison for a declared name, usually none for another): its index
 * in the sorted properties or SNONE. */
static inline uint32_t eg_schema_prop_find(const eg_schema_t *s, const eg_snode_t *n, const char *k,
                                           size_t len, size_t room)
{
    const uint32_t *tab = s->idx + n->ptab;
    const sprop_t *p = s->props + n->props;
    uint64_t w0, w1;
    eg_schema_prop_words_at(k, len, room, &w0, &w1);
    for (uint32_t h = eg_schema_prop_hash(w0, w1, len) & n->pmask;; h = (h + 1) & n->pmask) {
        uint32_t pi = tab[h];
        if (pi == SNONE) return pi;
        if (p[pi].len == len && p[pi].w0 == w0 && p[pi].w1 == w1 &&
            (len <= 16 || memcmp(k, p[pi].name, len) == 0))
            return pi;
    }
}

/* A decimal number's text as m * 10^e; -1 when its digits do not fit in
 * 64 bits or its exponent is beyond +-400. */
int eg_schema_dec(const char *s, size_t n, uint64_t *m, long *e);

/* Compiles an ECMA-style pattern the way "pattern" does (also the regex
 * format's check). NULL when it does not compile: *errpos / msg say why. */
pcre2_code *eg_schema_regex(const char *src, size_t len, char *msg, size_t msglen, size_t *errpos);

/* ---- the validation walk, shared by schema_check.c (a parsed tape) and
 * schema_stream.c (a body as it streams in) ---- */

/* One segment of the instance path: a member name (its text as in the
 * input, `escaped` when it has backslash escapes) or an array index. */
typedef struct {
    const char *k;
    uint32_t len;
    uint32_t index;
    uint8_t key, escaped;
} eg_sseg_t;

static inline eg_sseg_t eg_sseg_key(const eg_jr_doc_t *doc, const eg_jr_tok_t *k)
{
    eg_sseg_t g = {doc->text + k->off, k->len, 0, 1, k->escaped};
    return g;
}

static inline eg_sseg_t eg_sseg_index(uint32_t i)
{
    eg_sseg_t g = {NULL, 0, i, 0, 0};
    return g;
}

/* PCRE2's match data lives in a small buffer on the stack (its general
 * context allocates from here), so matching a pattern costs no malloc;
 * anything larger (the interpreter's backtracking frames past its own
 * stack buffer) falls back to malloc and is freed with the match data. */
typedef struct {
    _Alignas(max_align_t) unsigned char buf[512];
    size_t used;
} eg_bump_t;

typedef struct {
    const eg_schema_t *s;
    const eg_jr_doc_t *doc; /* where the tokens being checked are */
    eg_schema_report_t *rep;
    int quiet; /* count nothing, stop at the first problem */
    int depth;
    int oom;
    int spent;            /* the work budget ran out: everything fails from here */
    size_t steps, budget; /* schema nodes entered and values compared so far, and the cap */
    size_t added;
    eg_sseg_t path[EG_SCHEMA_MAX_DEPTH + 2];
    size_t npath;
    eg_bump_t bump;
    pcre2_general_context *gctx;
    pcre2_match_data *md;
} eg_vctx_t;

/* Node `at` on the value t of c->doc, at the path c->path: 1 when it
 * failed (problems reported to c->rep). */
int eg_sc_validate(eg_vctx_t *c, uint32_t at, const eg_jr_tok_t *t);
/* One problem at the current path (plus `last`), reported as
 * schema_check.c reports its own; xval (the keyword's bound) is stolen. */
void eg_sc_problem(eg_vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                   const char *constraint, const char *xkey, json_t *xval, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
void eg_sc_type_problem(eg_vctx_t *c, const eg_jr_tok_t *t, unsigned types);
/* 1 when the next problem becomes a field error (build its bound only then) */
int eg_sc_writing(const eg_vctx_t *c);
#define EG_SFAST_EXACT (SNONE - 1)
/* Sets every node's fast / fhops, required mask and fast property slots
 * (eg_schema_compile, once compiled): 0, or EG_ENOMEM. */
int eg_schema_fast_prepare(eg_schema_t *s);

/* multipleOf of node n on the number t whose text (t->len bytes) is at num:
 * 1 when it is a multiple. */
int eg_sc_multiple_of(const char *num, const eg_jr_tok_t *t, const eg_snode_t *n);
/* Pattern `re` on p[0..n): 1 match, 0 none, -1 match limits hit. */
int eg_sc_re_match(eg_vctx_t *c, uint32_t re, const char *p, size_t n);
/* A context for rep (rep->count zeroed; no document yet, the minimum
 * budget); fini frees PCRE2's match data. */
void eg_sc_init(eg_vctx_t *c, const eg_schema_t *s, eg_schema_report_t *rep);
void eg_sc_fini(eg_vctx_t *c);

#endif

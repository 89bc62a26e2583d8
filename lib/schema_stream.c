/* schema_stream.c - a JSON body checked against a compiled schema as its
 * bytes arrive (schema.h: eg_sv_*), without building a tree.
 *
 * A push tokenizer that reads exactly what eg_jr_parse reads (jsonr.h): it
 * can stop at any byte and go on with the next chunk; a token cut by a
 * chunk's end is kept in a small buffer and finished from the next one
 * (strings resume at the last complete character, so feeding one byte at a
 * time stays linear). Duplicate keys are found as each key arrives (the
 * keys of the open objects are kept, unescaped, in an arena that never
 * moves: their pointers are the path's segments). A syntax error is placed
 * as jsonr places it: the offending token's start, then how far jansson's
 * lexer reads from there (eg_jr_lexer_stop on the bytes kept from that
 * token on), with line and column from counters kept on the way (newlines
 * only occur between tokens, multi-byte characters only in strings).
 *
 * The schema is fused in: each container value whose schema node can be
 * checked piecewise (type, properties, additionalProperties, required,
 * items, prefixItems, min/max items and properties, and $ref alone) is a
 * frame that decides, per member or item, which node its value gets; every
 * scalar value is checked when its token is complete, by schema_check.c's
 * own walk on a one-token document, so scalar keywords (formats, patterns,
 * enums, anyOf on a string...) say exactly what they say on a tape. A
 * container whose node needs the whole value (enum/const, allOf, anyOf,
 * oneOf, not, if, uniqueItems, contains, propertyNames, dependent*, $ref
 * with siblings, or a member that patternProperties may also match) is
 * captured - its bytes, bounded by what the caller feeds - and checked on
 * jsonr's tape by the tree validator when it closes. Problems come out in
 * the tree validator's order: a container's minItems / minProperties
 * (known at its end) are inserted where the container began, required
 * ones follow its members.
 */
#include "schema_int.h"
#include "utf8.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#endif

#define BAD  ((size_t)-1)
#define MORE ((size_t)-3)

enum { S_VALUE, S_ARR_FIRST, S_OBJ_FIRST, S_KEY, S_COLON, S_AFTER, S_DONE };
enum { P_NONE, P_STR, P_KEY, P_NUM, P_LIT };
enum { M_SKIP, M_STREAM, M_CAP };
enum { J_ROOT, J_ITEM, J_MEMBER };

#define SEEN_MAX   1024 /* as schema_check.c: properties tracked for required */
#define SMALL_KEYS 16   /* objects up to this many keys find duplicates pairwise */
#define ABLOCK     2048 /* arena block */

typedef struct {
    const char *p; /* unescaped, in the arena (8 readable bytes after it) */
    uint32_t len, h;
} skey_t;

typedef struct {
    uint8_t obj, mode, job, pushed;
    uint32_t chain; /* schema nodes entered (c->depth to give back) */
    uint32_t node;  /* M_STREAM: the node; M_CAP: the node of the job */
    uint32_t jidx;  /* M_CAP of an item: its index */
    uint32_t count; /* members (at their key) or items (at their start) so far */
    size_t fmark;   /* field errors when it opened */
    uint32_t key0;  /* its first key in keys[] */
    uint64_t bloom; /* of its keys, while few */
    uint32_t root;  /* past SMALL_KEYS: its keys in an AVL tree (keys[] index + 1; 0 none) */
    size_t seen0;   /* M_STREAM object with required: its bits in seen[] */
    int track;
    uint32_t pi;       /* the current member's property index, SNONE */
    size_t ablk, aoff; /* arena mark */
} frame_t;

struct eg_sv_s {
    const eg_schema_t *s;
    eg_schema_report_t *rep;
    eg_schema_report_t own; /* when the caller gives none: count only */
    int state, partial, err, efinal, schema_off, bad;
    int oom;
    /* the token being read across chunks */
    char *tb;
    size_t tbn, tbcap, tbscan;
    uint8_t tesc, nst, lit, lm;
    uint32_t tcont;
    int skipnul, partial_was_scalar;
    /* positions (absolute byte offsets) */
    uint64_t base, tstart, lstart, cont_l, nul_l, nul_total;
    long line;
    /* a syntax error: at ep, the bytes from there in tail */
    uint64_t ep, ecol0, enul;
    long eline0;
    char *tail;
    size_t tailn, tailcap, tailchk;
    long epos;
    int eline, ecol;
    /* containers */
    frame_t *fr;
    size_t nfr, capfr;
    skey_t *keys;
    size_t nkeys, capkeys;
    struct anode_s *avl; /* parallel to keys (anode_t) */
    size_t capavl;
    uint64_t *seen;
    size_t nseen, capseen;
    char **ablk;
    size_t *asz;
    size_t nablk, capablk, acur, aoff;
    /* a capture */
    int capturing;
    size_t capat, capfrom;
    char *cap;
    size_t capn, capcap;
    size_t ntok;
    eg_jr_tok_t stok;
    eg_vctx_t c;
    eg_jr_doc_t d;
};

/* ---- buffers ---- */

static int buf_add(char **b, size_t *n, size_t *cap, const void *p, size_t k)
{
    if (!k) return 0;
    if (*n + k > *cap) {
        size_t nc = *cap ? *cap : 256;
        while (nc < *n + k)
            nc *= 2;
        char *q = realloc(*b, nc);
        if (!q) return EG_ENOMEM;
        *b = q;
        *cap = nc;
    }
    memcpy(*b + *n, p, k);
    *n += k;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * sz);
    if (!q) return EG_ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

/* n bytes in the arena with 8 more readable after them (prop_find reads
 * whole words); blocks never move, so keys' pointers hold. */
static char *arena(eg_sv_t *v, size_t n)
{
    if (v->nablk && v->aoff + n + 8 <= v->asz[v->acur]) {
        char *p = v->ablk[v->acur] + v->aoff;
        v->aoff += n;
        return p;
    }
    size_t next = v->nablk ? v->acur + 1 : 0;
    if (next < v->nablk && v->asz[next] < n + 8) {
        free(v->ablk[next]);
        v->ablk[next] = NULL;
    }
    if (next >= v->nablk || !v->ablk[next]) {
        if (next >= v->nablk) {
            if (grow((void **)&v->ablk, &v->capablk, next + 1, sizeof(char *))) return NULL;
            size_t c2 = v->capablk;
            size_t *q = realloc(v->asz, c2 * sizeof(size_t));
            if (!q) return NULL;
            v->asz = q;
            v->nablk = next + 1;
        }
        size_t sz = n + 8 > ABLOCK ? n + 8 : ABLOCK;
        if (!(v->ablk[next] = malloc(sz))) return NULL;
        v->asz[next] = sz;
    }
    v->acur = next;
    v->aoff = n;
    return v->ablk[next];
}

/* ---- the schema side ---- */

static int active(const eg_sv_t *v, const frame_t *parent)
{
    if (v->schema_off || !v->s) return 0;
    return parent ? parent->mode == M_STREAM : 1;
}

static void after_check(eg_sv_t *v, int bad)
{
    if (bad) v->bad = 1;
    if (v->c.oom) v->oom = 1;
    if (v->bad && !v->rep->e) v->schema_off = 1; /* counting only: the first problem decides */
}

/* A problem about a container, known at its end, placed where the
 * container began (after the `k` placed there already), as the tree
 * validator reports it before the container's members. */
static void problem_at(eg_sv_t *v, size_t mark, size_t *k, const char *constraint, const char *xkey,
                       json_t *xval, const char *fmt, unsigned long long a, const char *b)
{
    eg_vctx_t *c = &v->c;
    eg_error_t *e = v->rep->e;
    size_t n0 = e ? e->nfields : 0;
    int bump = e && c->added >= v->rep->max;
    if (bump) v->rep->max++;
    eg_sc_problem(c, NULL, NULL, 0, constraint, xkey, xval, fmt, a, b);
    if (bump) v->rep->max--;
    if (!e || e->nfields != n0 + 1) return;
    size_t at = mark + *k;
    eg_field_error_t f = e->fields[n0];
    memmove(&e->fields[at + 1], &e->fields[at], (n0 - at) * sizeof(f));
    e->fields[at] = f;
    (*k)++;
    if (c->added > v->rep->max) { /* one too many now: the last goes, as it would have */
        eg_field_error_t *l = &e->fields[--e->nfields];
        json_decref(l->value);
        json_decref(l->extra);
        c->added--;
    }
}

static const eg_sseg_t *cur_key_seg(eg_sv_t *v, eg_sseg_t *g)
{
    const skey_t *k = &v->keys[v->nkeys - 1];
    *g = (eg_sseg_t){k->p, k->len, 0, 1, 0};
    return g;
}

/* check_object's work for one member whose value is whole (a scalar, or a
 * captured container on the tape): its property, the patterns, or
 * additionalProperties. */
static void member_check(eg_sv_t *v, const frame_t *f, const eg_jr_tok_t *t)
{
    eg_vctx_t *c = &v->c;
    const eg_schema_t *s = v->s;
    const eg_snode_t *n = &s->nodes[f->node];
    const skey_t *key = &v->keys[v->nkeys - 1];
    eg_sseg_t g;
    int bad = 0, matched = 0;
    if (!(n->kw & (K_PROPS | K_PPROPS | K_ADDL))) return;
    if (f->pi != SNONE) {
        matched = 1;
        c->path[c->npath++] = *cur_key_seg(v, &g);
        bad |= eg_sc_validate(c, s->props[n->props + f->pi].node, t);
        c->npath--;
    }
    for (uint32_t j = 0; j < n->npprops; j++) {
        const spprop_t *pp = &s->pprops[n->pprops + j];
        int m = eg_sc_re_match(c, pp->re, key->p, key->len);
        c->path[c->npath++] = *cur_key_seg(v, &g);
        if (m < 0) {
            eg_sc_problem(c, t, NULL, 0, "patternProperties", "pattern",
                          eg_sc_writing(c) ? json_string(s->res[pp->re].src) : NULL,
                          "could not be checked against the pattern '%s' (match limit reached)",
                          s->res[pp->re].src);
            bad = 1;
        } else if (m) {
            matched = 1;
            bad |= eg_sc_validate(c, pp->node, t);
        }
        c->npath--;
    }
    if (!matched && (n->kw & K_ADDL)) {
        c->path[c->npath++] = *cur_key_seg(v, &g);
        if (s->nodes[n->addl].kw == K_FALSE) {
            eg_sc_problem(c, t, NULL, 0, "additionalProperties", NULL, NULL, "is not allowed");
            bad = 1;
        } else {
            bad |= eg_sc_validate(c, n->addl, t);
        }
        c->npath--;
    }
    after_check(v, bad);
}

/* check_array's work for item idx, whole. */
static void item_check(eg_sv_t *v, const frame_t *f, uint32_t idx, const eg_jr_tok_t *t)
{
    eg_vctx_t *c = &v->c;
    const eg_schema_t *s = v->s;
    const eg_snode_t *n = &s->nodes[f->node];
    if (!(n->kw & (K_PREFIX | K_ITEMS))) return;
    uint32_t sub = idx < n->nprefix ? s->idx[n->prefix + idx] : n->items;
    if (sub == SNONE) return;
    int bad;
    c->path[c->npath++] = eg_sseg_index(idx);
    if (s->nodes[sub].kw == K_FALSE && idx >= n->nprefix) {
        eg_sc_problem(c, t, NULL, 0, "items", "maxItems",
                      eg_sc_writing(c) ? json_integer(n->nprefix) : NULL,
                      "is not allowed (at most %u item%s)", n->nprefix, n->nprefix == 1 ? "" : "s");
        bad = 1;
    } else {
        bad = eg_sc_validate(c, sub, t);
    }
    c->npath--;
    after_check(v, bad);
}

/* A whole value (scalar, or captured) to what its parent says of it. */
static void value_done(eg_sv_t *v, const frame_t *parent, int job, uint32_t node, uint32_t idx,
                       const eg_jr_tok_t *t)
{
    if (job == J_ROOT)
        after_check(v, eg_sc_validate(&v->c, node, t));
    else if (job == J_ITEM)
        item_check(v, parent, idx, t);
    else
        member_check(v, parent, t);
}

static void scalar(eg_sv_t *v, const char *text, size_t len)
{
    frame_t *p = v->nfr ? &v->fr[v->nfr - 1] : NULL;
    if (!active(v, p)) return;
    v->d.text = text;
    v->d.len = len;
    v->d.toks = &v->stok;
    v->d.ntoks = 1;
    v->c.doc = &v->d;
    v->c.budget = EG_SCHEMA_MIN_BUDGET + EG_SCHEMA_BUDGET_PER_TOKEN * v->ntok;
    if (!p)
        value_done(v, NULL, J_ROOT, v->s->root, 0, &v->stok);
    else if (!p->obj)
        value_done(v, p, J_ITEM, 0, p->count - 1, &v->stok);
    else
        value_done(v, p, J_MEMBER, 0, 0, &v->stok);
}

/* Whether node `at` can check a container of this kind piecewise (following
 * a $ref that stands alone). */
static int streamable(const eg_schema_t *s, uint32_t at, int obj)
{
    unsigned tt = obj ? EG_ST_OBJECT : EG_ST_ARRAY;
    for (int k = 0; k < 64; k++) {
        const eg_snode_t *n = &s->nodes[at];
        if (!n->kw && n->if_ == SNONE) return 1;
        if (n->kw & K_FALSE) return 1;
        if ((n->kw & K_TYPE) && !(n->types & tt)) return 1;
        if (n->kw == K_REF && n->if_ == SNONE) {
            at = n->ref;
            continue;
        }
        if (n->if_ != SNONE) return 0;
        uint32_t no = K_CONST | K_ENUM | K_REF | K_ALLOF | K_ANYOF | K_ONEOF | K_NOT |
                      (obj ? K_PNAMES | K_DEPS : K_UNIQUE | K_CONTAINS);
        return !(n->kw & no);
    }
    return 0;
}

/* A container opens (frame f pushed): what checks it. 1 when it is to be
 * captured. */
static int open_schema(eg_sv_t *v, frame_t *f, frame_t *parent)
{
    eg_vctx_t *c = &v->c;
    const eg_schema_t *s = v->s;
    uint32_t node;
    int job;
    eg_sseg_t seg;
    c->budget = EG_SCHEMA_MIN_BUDGET + EG_SCHEMA_BUDGET_PER_TOKEN * v->ntok;
    if (!parent) {
        node = s->root;
        job = J_ROOT;
        seg = eg_sseg_index(0);
    } else if (!parent->obj) {
        const eg_snode_t *pn = &s->nodes[parent->node];
        uint32_t idx = parent->count - 1;
        if (!(pn->kw & (K_PREFIX | K_ITEMS))) return 0;
        node = idx < pn->nprefix ? s->idx[pn->prefix + idx] : pn->items;
        if (node == SNONE) return 0;
        seg = eg_sseg_index(idx);
        if (s->nodes[node].kw == K_FALSE && idx >= pn->nprefix) {
            c->path[c->npath++] = seg;
            eg_sc_problem(c, NULL, NULL, 0, "items", "maxItems",
                          eg_sc_writing(c) ? json_integer(pn->nprefix) : NULL,
                          "is not allowed (at most %u item%s)", pn->nprefix,
                          pn->nprefix == 1 ? "" : "s");
            c->npath--;
            after_check(v, 1);
            return 0;
        }
        job = J_ITEM;
        f->jidx = idx;
    } else {
        const eg_snode_t *pn = &s->nodes[parent->node];
        if (!(pn->kw & (K_PROPS | K_PPROPS | K_ADDL))) return 0;
        job = J_MEMBER;
        cur_key_seg(v, &seg);
        if (pn->npprops) {
            f->job = J_MEMBER;
            return 1;
        }
        if (parent->pi != SNONE) {
            node = s->props[pn->props + parent->pi].node;
        } else if (pn->kw & K_ADDL) {
            node = pn->addl;
            if (s->nodes[node].kw == K_FALSE) {
                c->path[c->npath++] = seg;
                eg_sc_problem(c, NULL, NULL, 0, "additionalProperties", NULL, NULL,
                              "is not allowed");
                c->npath--;
                after_check(v, 1);
                return 0;
            }
        } else {
            return 0;
        }
    }
    f->job = (uint8_t)job;
    f->node = node;
    if (!streamable(s, node, f->obj)) return 1;
    if (parent) {
        c->path[c->npath++] = seg;
        f->pushed = 1;
    }
    /* validate()'s prologue, along a chain of lone $refs */
    unsigned tt = f->obj ? EG_ST_OBJECT : EG_ST_ARRAY;
    uint32_t at = node;
    for (;;) {
        const eg_snode_t *n = &s->nodes[at];
        if (!n->kw && n->if_ == SNONE) return 0;
        if (c->spent || ++c->steps > c->budget) {
            c->spent = 1;
            after_check(v, 1);
            return 0;
        }
        if (c->depth >= EG_SCHEMA_MAX_DEPTH) {
            eg_sc_problem(c, NULL, NULL, 0, "depth", "max_depth",
                          eg_sc_writing(c) ? json_integer(EG_SCHEMA_MAX_DEPTH) : NULL,
                          "is nested too deeply to be validated");
            after_check(v, 1);
            return 0;
        }
        c->depth++;
        f->chain++;
        if (n->kw & K_FALSE) {
            eg_sc_problem(c, NULL, NULL, 0, "false", NULL, NULL, "is not allowed");
            after_check(v, 1);
            return 0;
        }
        if ((n->kw & K_TYPE) && !(n->types & tt)) {
            eg_sc_type_problem(c, NULL, n->types);
            after_check(v, 1);
            return 0;
        }
        if (n->kw == K_REF && n->if_ == SNONE) {
            at = n->ref;
            continue;
        }
        break;
    }
    const eg_snode_t *n = &s->nodes[at];
    f->mode = M_STREAM;
    f->node = at;
    f->fmark = v->rep->e ? v->rep->e->nfields : 0;
    if (f->obj && (n->kw & K_REQ) && n->nprops && n->nprops <= SEEN_MAX) {
        size_t w = (n->nprops + 63) / 64;
        if (grow((void **)&v->seen, &v->capseen, v->nseen + w, sizeof(uint64_t))) {
            v->oom = 1;
            return 0;
        }
        memset(v->seen + v->nseen, 0, w * sizeof(uint64_t));
        f->seen0 = v->nseen;
        v->nseen += w;
        f->track = 1;
    }
    return 0;
}

static int obj_has(const eg_sv_t *v, const frame_t *f, const char *k, size_t len);
static uint32_t key_hash(const char *k, size_t len);

/* The checks a streamed container makes at its end. */
static void close_schema(eg_sv_t *v, frame_t *f)
{
    eg_vctx_t *c = &v->c;
    const eg_schema_t *s = v->s;
    const eg_snode_t *n = &s->nodes[f->node];
    size_t k = 0;
    int bad = 0;
    if (!f->obj) {
        if (!(n->kw & K_ARRAY)) return;
        if ((n->kw & K_MINITEMS) && f->count < n->minitems) {
            problem_at(v, f->fmark, &k, "minItems", "minItems",
                       json_integer((json_int_t)n->minitems), "must have at least %llu item%s",
                       (unsigned long long)n->minitems, n->minitems == 1 ? "" : "s");
            bad = 1;
        }
        if ((n->kw & K_MAXITEMS) && f->count > n->maxitems) {
            problem_at(v, f->fmark, &k, "maxItems", "maxItems",
                       json_integer((json_int_t)n->maxitems), "must have at most %llu item%s",
                       (unsigned long long)n->maxitems, n->maxitems == 1 ? "" : "s");
            bad = 1;
        }
        after_check(v, bad);
        return;
    }
    if (!(n->kw & K_OBJECT)) return;
    if ((n->kw & K_MINPROPS) && f->count < n->minprops) {
        problem_at(v, f->fmark, &k, "minProperties", "minProperties",
                   json_integer((json_int_t)n->minprops), "must have at least %llu propert%s",
                   (unsigned long long)n->minprops, n->minprops == 1 ? "y" : "ies");
        bad = 1;
    }
    if ((n->kw & K_MAXPROPS) && f->count > n->maxprops) {
        problem_at(v, f->fmark, &k, "maxProperties", "maxProperties",
                   json_integer((json_int_t)n->maxprops), "must have at most %llu propert%s",
                   (unsigned long long)n->maxprops, n->maxprops == 1 ? "y" : "ies");
        bad = 1;
    }
    for (uint32_t i = 0; i < n->nreq && !(bad && !v->rep->e); i++) {
        const sreq_t *r = &s->reqs[n->req + i];
        int present = f->track && r->prop != SNONE
                          ? (int)(v->seen[f->seen0 + r->prop / 64] >> (r->prop % 64) & 1)
                          : obj_has(v, f, r->name, r->len);
        if (!present) {
            eg_sc_problem(c, NULL, r->name, r->len, "required", NULL, NULL, "is required");
            bad = 1;
        }
    }
    after_check(v, bad);
}

/* The captured container is whole: on jsonr's tape, to the tree walk. */
static void close_capture(eg_sv_t *v, frame_t *f, frame_t *parent)
{
    eg_vctx_t *c = &v->c;
    int rc = eg_jr_parse(&v->d, v->cap, v->capn);
    if (rc) {
        eg_jr_free(&v->d);
        v->oom = 1; /* it read as JSON here: only memory can fail */
        return;
    }
    c->doc = &v->d;
    c->budget = EG_SCHEMA_MIN_BUDGET + EG_SCHEMA_BUDGET_PER_TOKEN * v->ntok;
    value_done(v, parent, f->job, f->node, f->jidx, v->d.toks);
    eg_jr_free(&v->d);
}

/* ---- keys ---- */

static uint32_t key_hash(const char *k, size_t len)
{
    uint64_t w0, w1;
    eg_schema_prop_words(k, len, &w0, &w1);
    return eg_schema_prop_hash(w0, w1, len);
}

static int key_eq(const skey_t *a, const char *k, size_t len, uint32_t h)
{
    return a->h == h && a->len == len && memcmp(a->p, k, len) == 0;
}

/* Past SMALL_KEYS members an object's keys go into an AVL tree (over
 * keys[], by hash, length, bytes): O(log n) a key whatever the keys are.
 * A hash table would be faster on average, but its hash is fixed (the
 * property tables' own), so keys crafted to collide would make a large
 * body quadratic; jsonr sorts in that case, which a stream cannot. */
typedef struct anode_s {
    uint32_t l, r; /* keys[] index + 1, 0 none */
    int h;
} anode_t;

static int kord(const skey_t *a, const skey_t *b)
{
    if (a->h != b->h) return a->h < b->h ? -1 : 1;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return memcmp(a->p, b->p, a->len);
}

static int aheight(const anode_t *t, uint32_t x)
{
    return x ? t[x - 1].h : 0;
}

static void afix(anode_t *t, uint32_t x)
{
    int a = aheight(t, t[x - 1].l), b = aheight(t, t[x - 1].r);
    t[x - 1].h = (a > b ? a : b) + 1;
}

static uint32_t arot_right(anode_t *t, uint32_t x)
{
    uint32_t y = t[x - 1].l;
    t[x - 1].l = t[y - 1].r;
    t[y - 1].r = x;
    afix(t, x);
    afix(t, y);
    return y;
}

static uint32_t arot_left(anode_t *t, uint32_t x)
{
    uint32_t y = t[x - 1].r;
    t[x - 1].r = t[y - 1].l;
    t[y - 1].l = x;
    afix(t, x);
    afix(t, y);
    return y;
}

static uint32_t abalance(anode_t *t, uint32_t x)
{
    afix(t, x);
    int bf = aheight(t, t[x - 1].l) - aheight(t, t[x - 1].r);
    if (bf > 1) {
        uint32_t l = t[x - 1].l;
        if (aheight(t, t[l - 1].l) < aheight(t, t[l - 1].r)) t[x - 1].l = arot_left(t, l);
        return arot_right(t, x);
    }
    if (bf < -1) {
        uint32_t r = t[x - 1].r;
        if (aheight(t, t[r - 1].r) < aheight(t, t[r - 1].l)) t[x - 1].r = arot_right(t, r);
        return arot_left(t, x);
    }
    return x;
}

/* Key k (index + 1) into the tree at x: the new root; *dup when an equal
 * key is there (the tree is then as it was). Depth: 1.44 log2 n. */
static uint32_t ainsert(const skey_t *keys, anode_t *t, uint32_t x, uint32_t k, int *dup)
{
    if (!x) {
        t[k - 1] = (anode_t){0, 0, 1};
        return k;
    }
    int c = kord(&keys[k - 1], &keys[x - 1]);
    if (c == 0) {
        *dup = 1;
        return x;
    }
    if (c < 0)
        t[x - 1].l = ainsert(keys, t, t[x - 1].l, k, dup);
    else
        t[x - 1].r = ainsert(keys, t, t[x - 1].r, k, dup);
    return *dup ? x : abalance(t, x);
}

static int obj_has(const eg_sv_t *v, const frame_t *f, const char *k, size_t len)
{
    skey_t q = {k, (uint32_t)len, key_hash(k, len)};
    for (uint32_t x = f->root; x;) {
        int c = kord(&q, &v->keys[x - 1]);
        if (!c) return 1;
        x = c < 0 ? v->avl[x - 1].l : v->avl[x - 1].r;
    }
    if (f->root) return 0;
    for (size_t i = f->key0; i < v->nkeys; i++)
        if (key_eq(&v->keys[i], k, len, q.h)) return 1;
    return 0;
}

/* schema_check.c's prop_find with the key's words and hash known. */
static inline uint32_t prop_lookup(const eg_schema_t *s, const eg_snode_t *n, const char *k,
                                   size_t len, uint64_t w0, uint64_t w1, uint32_t h)
{
    const uint32_t *tab = s->idx + n->ptab;
    const sprop_t *p = s->props + n->props;
    for (h &= n->pmask;; h = (h + 1) & n->pmask) {
        uint32_t pi = tab[h];
        if (pi == SNONE) return pi;
        if (p[pi].len == len && p[pi].w0 == w0 && p[pi].w1 == w1 &&
            (len <= 16 || memcmp(k, p[pi].name, len) == 0))
            return pi;
    }
}

/* A key of the innermost object: 1 when it is a duplicate (invalid JSON),
 * 0 when recorded, EG_ENOMEM. raw: its text between the quotes. */
static int add_key(eg_sv_t *v, frame_t *f, const char *raw, size_t rawlen, int esc)
{
    char *p = arena(v, rawlen);
    if (!p) return EG_ENOMEM;
    size_t len = esc ? eg_jr_unescape(raw, rawlen, p, rawlen) : rawlen;
    if (!esc && len) memcpy(p, raw, len);
    /* one hash for the duplicate check and the property's table: the
     * words of eg_schema_prop_words_at (the arena has 8 bytes after p) */
    uint64_t w0, w1;
    eg_schema_prop_words_at(p, len, len + 8, &w0, &w1);
    uint32_t h = eg_schema_prop_hash(w0, w1, len);
    uint32_t nk = (uint32_t)(v->nkeys - f->key0);
    if (!f->root && nk < SMALL_KEYS) {
        uint64_t bit = 1ull << (h >> 26 & 63);
        if (f->bloom & bit)
            for (size_t i = f->key0; i < v->nkeys; i++)
                if (key_eq(&v->keys[i], p, len, h)) return 1;
        f->bloom |= bit;
    }
    if (grow((void **)&v->keys, &v->capkeys, v->nkeys + 1, sizeof(skey_t))) return EG_ENOMEM;
    v->keys[v->nkeys++] = (skey_t){p, (uint32_t)len, h};
    if (f->root || nk >= SMALL_KEYS) {
        if (v->capavl < v->capkeys) {
            anode_t *t = realloc(v->avl, v->capkeys * sizeof(*t));
            if (!t) return EG_ENOMEM;
            v->avl = t;
            v->capavl = v->capkeys;
        }
        int dup = 0;
        for (size_t i = f->root ? v->nkeys - 1 : f->key0; i < v->nkeys && !dup; i++)
            f->root = ainsert(v->keys, v->avl, f->root, (uint32_t)i + 1, &dup);
        if (dup) {
            v->nkeys--;
            return 1;
        }
    }
    f->count++;
    if (f->mode == M_STREAM) {
        const eg_snode_t *n = &v->s->nodes[f->node];
        f->pi = SNONE;
        if ((n->kw & (K_PROPS | K_PPROPS | K_ADDL)) && n->nprops)
            f->pi = prop_lookup(v->s, n, p, len, w0, w1, h);
        if (f->track && f->pi != SNONE) v->seen[f->seen0 + f->pi / 64] |= 1ull << (f->pi % 64);
    }
    return 0;
}

/* ---- the tokenizer ---- */

static inline int is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static inline int is_hex(unsigned c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static long hex4(const unsigned char *s)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k];
        if (!is_hex(c)) return -1;
        v = v << 4 | (long)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* A string's contents from i (jsonr's scan_string, resumable): the index of
 * the closing quote, BAD, or MORE with *resume where to scan again once
 * more bytes are there. *cont counts UTF-8 continuation bytes. */
static size_t sscan(const unsigned char *s, size_t n, size_t i, uint8_t *esc, uint32_t *cont,
                    size_t *resume)
{
#if defined(__SSE2__) && defined(__GNUC__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                         _mm_cmplt_epi8(x, space));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m) {
            i += (size_t)__builtin_ctz(m);
            if (s[i] == '"') return i;
            break;
        }
        i += 16;
    }
#endif
    for (;;) {
        while (i + 8 <= n && !eg_json_special8(s + i))
            i += 8;
        if (i >= n) {
            *resume = n;
            return MORE;
        }
        unsigned c = s[i];
        if (c == '"') return i;
        if (c == '\\') {
            if (n - i < 2) goto more;
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
                if (n - i < 6) goto more;
                long cp = hex4(s + i + 2);
                if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return BAD;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (n - i < 12) goto more;
                    if (s[i + 6] != '\\' || s[i + 7] != 'u') return BAD;
                    long lo = hex4(s + i + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF) return BAD;
                    i += 6;
                }
                i += 6;
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
            if (!k) {
                if (n - i < 4) goto more;
                return BAD;
            }
            *cont += (uint32_t)(k - 1);
            i += k;
        } else {
            i++;
        }
    }
more:
    *resume = i;
    return MORE;
}

/* Advances a number's state over s[i..n): where it ended (the first byte
 * not its own), or n when it may go on. States: 0 after '-', 1 a leading
 * 0, 2 integer digits, 3 after '.', 4 fraction, 5 after 'e', 6 after the
 * exponent's sign, 7 exponent digits, 8 bad (as scan_number refuses). */
static size_t nscan(const unsigned char *s, size_t n, size_t i, uint8_t *st)
{
    for (; i < n; i++) {
        unsigned c = s[i];
        int d = is_digit(c), e = (c | 0x20) == 'e';
        switch (*st) {
        case 0:
            if (c == '0')
                *st = 1;
            else if (d)
                *st = 2;
            else
                goto bad;
            break;
        case 1:
            if (d) goto bad;
            if (c == '.')
                *st = 3;
            else if (e)
                *st = 5;
            else
                return i;
            break;
        case 2:
            if (d) break;
            if (c == '.')
                *st = 3;
            else if (e)
                *st = 5;
            else
                return i;
            break;
        case 3:
            if (!d) goto bad;
            *st = 4;
            break;
        case 4:
            if (d) break;
            if (e)
                *st = 5;
            else
                return i;
            break;
        case 5:
            if (c == '+' || c == '-')
                *st = 6;
            else if (d)
                *st = 7;
            else
                goto bad;
            break;
        case 6:
            if (!d) goto bad;
            *st = 7;
            break;
        default:
            if (!d) return i;
        }
    }
    return n;
bad:
    *st = 8;
    return i;
}

static int num_done(uint8_t st)
{
    return st == 1 || st == 2 || st == 4 || st == 7;
}

/* A syntax error at the token that starts at v->tstart: its bytes so far
 * are pre[0..pren) then s[from..n). */
static int fail(eg_sv_t *v, const char *pre, size_t pren, const unsigned char *s, size_t from,
                size_t n)
{
    v->err = 1;
    v->ep = pre ? v->tstart : v->base + from; /* a kept token started in an earlier chunk */
    v->eline0 = v->line;
    v->ecol0 = v->ep - v->lstart - v->cont_l - v->nul_l;
    v->enul = v->nul_total;
    v->tailn = 0;
    v->tailchk = 0;
    if (buf_add(&v->tail, &v->tailn, &v->tailcap, pre, pren) ||
        buf_add(&v->tail, &v->tailn, &v->tailcap, s + from, n - from))
        return EG_ENOMEM;
    return EG_EPARSE;
}

/* How far the failing token reads: settled when jansson's lexer stops
 * before the bytes kept (or at the end of input). */
static void settle(eg_sv_t *v, int eof)
{
    if (v->efinal) return;
    if (!eof && v->tailn < 2 * v->tailchk + 16) return; /* look again once it doubled */
    v->tailchk = v->tailn;
    size_t stop = eg_jr_lexer_stop(v->tail, v->tailn, 0);
    /* the lexer looks up to 4 bytes past where it stops (a UTF-8
     * character cut by the end of what is there reads as invalid) */
    if (stop + 4 > v->tailn && !eof) return;
    long line = v->eline0;
    uint64_t col = v->ecol0;
    for (size_t i = 0; i < stop; i++) {
        unsigned char b = (unsigned char)v->tail[i];
        if (b == '\n') {
            line++;
            col = 0;
        } else if ((b & 0xC0) != 0x80) {
            col++;
        }
    }
    v->efinal = 1;
    v->eline = (int)line;
    v->ecol = (int)col;
    v->epos = (long)(v->ep + stop - v->enul);
}

static int push_frame(eg_sv_t *v, int obj, size_t i)
{
    if (grow((void **)&v->fr, &v->capfr, v->nfr + 1, sizeof(frame_t))) return EG_ENOMEM;
    frame_t *parent = v->nfr ? &v->fr[v->nfr - 1] : NULL;
    frame_t *f = &v->fr[v->nfr++];
    memset(f, 0, sizeof(*f));
    f->obj = (uint8_t)obj;
    f->mode = M_SKIP;
    f->pi = SNONE;
    f->key0 = (uint32_t)v->nkeys;
    f->ablk = v->acur;
    f->aoff = v->aoff;
    if (v->capturing || !active(v, parent)) return 0;
    if (open_schema(v, f, parent)) {
        f->mode = M_CAP;
        v->capturing = 1;
        v->capat = v->nfr - 1;
        v->capn = 0;
        v->capfrom = i;
    }
    return v->oom ? EG_ENOMEM : 0;
}

static int pop_frame(eg_sv_t *v, const unsigned char *s, size_t i)
{
    frame_t *f = &v->fr[v->nfr - 1];
    frame_t *parent = v->nfr > 1 ? &v->fr[v->nfr - 2] : NULL;
    int mode = f->mode;
    if (mode == M_STREAM && !v->schema_off) close_schema(v, f);
    v->c.depth -= (int)f->chain;
    if (f->pushed) v->c.npath--;
    if (f->track) v->nseen = f->seen0;
    v->nkeys = f->key0; /* the parent's key is the last again */
    v->acur = f->ablk;
    v->aoff = f->aoff;
    if (mode == M_CAP) {
        v->capturing = 0;
        if (buf_add(&v->cap, &v->capn, &v->capcap, s + v->capfrom, i + 1 - v->capfrom))
            return EG_ENOMEM;
        if (!v->schema_off) close_capture(v, f, parent);
    }
    v->nfr--;
    return v->oom ? EG_ENOMEM : 0;
}

/* A whole token: a string (raw from its opening quote, len with both
 * quotes) as a value or a key. */
static int on_string(eg_sv_t *v, const char *raw, size_t len, int key)
{
    v->ntok++;
    if (key) {
        frame_t *f = &v->fr[v->nfr - 1];
        int r = add_key(v, f, raw + 1, len - 2, v->tesc);
        if (r) return r == 1 ? EG_EPARSE : r;
    } else {
        v->stok = (eg_jr_tok_t){.type = EG_JR_STRING,
                                .escaped = v->tesc,
                                .off = 1,
                                .len = (uint32_t)(len - 2),
                                .end = 1};
        scalar(v, raw, len);
    }
    v->cont_l += v->tcont;
    return v->oom ? EG_ENOMEM : 0;
}

static int on_number(eg_sv_t *v, const char *raw, size_t len)
{
    v->ntok++;
    int r = eg_jr_number(raw, len, &v->stok);
    if (r) return r;
    v->stok.off = 0;
    v->stok.end = 1;
    scalar(v, raw, len);
    return v->oom ? EG_ENOMEM : 0;
}

static int on_literal(eg_sv_t *v, uint8_t lit)
{
    static const char *const text[] = {"null", "false", "true"};
    v->ntok++;
    v->stok = (eg_jr_tok_t){.type = lit, .off = 0, .len = lit == EG_JR_FALSE ? 5 : 4, .end = 1};
    scalar(v, text[lit], v->stok.len);
    return v->oom ? EG_ENOMEM : 0;
}

/* Finishes the token kept in tb with s[0..n): how many bytes of s it took
 * (*done set when it is whole), or a negative error. */
static long resume_token(eg_sv_t *v, const unsigned char *s, size_t n, int eof, int *done)
{
    *done = 0;
    v->partial_was_scalar = v->partial == P_NUM || v->partial == P_LIT;
    if (v->partial == P_NUM) {
        size_t e = eof ? 0 : nscan(s, n, 0, &v->nst);
        if (v->nst == 8) return fail(v, v->tb, v->tbn, s, 0, n);
        if (buf_add(&v->tb, &v->tbn, &v->tbcap, s, e)) return EG_ENOMEM;
        if (e == n && !eof) return (long)n;
        if (!num_done(v->nst)) return fail(v, v->tb, v->tbn, s, e, n);
        v->partial = P_NONE;
        int r = on_number(v, v->tb, v->tbn);
        if (r == EG_EPARSE) return fail(v, v->tb, v->tbn, s, e, n);
        if (r) return r;
        *done = 1;
        return (long)e;
    }
    if (v->partial == P_LIT) {
        static const char *const text[] = {"null", "false", "true"};
        size_t l = v->lit == EG_JR_FALSE ? 5 : 4, k = 0;
        for (; k < n && v->lm < l; k++, v->lm++)
            if (s[k] != (unsigned char)text[v->lit][v->lm]) return fail(v, v->tb, v->tbn, s, 0, n);
        if (buf_add(&v->tb, &v->tbn, &v->tbcap, s, k)) return EG_ENOMEM;
        if (v->lm < l) {
            if (eof) return fail(v, v->tb, v->tbn, s, 0, n);
            return (long)k;
        }
        v->partial = P_NONE;
        int r = on_literal(v, v->lit);
        if (r) return r;
        *done = 1;
        return (long)k;
    }
    /* a string: add bytes up to the next quote, scan from where it stopped */
    size_t took = 0;
    for (;;) {
        size_t resume = 0;
        size_t q =
            sscan((const unsigned char *)v->tb, v->tbn, v->tbscan, &v->tesc, &v->tcont, &resume);
        if (q == BAD) return fail(v, v->tb, v->tbn, s, took, n);
        if (q != MORE) {
            /* whole: q is its closing quote in tb; tb may hold bytes past it */
            size_t extra = v->tbn - (q + 1);
            int key = v->partial == P_KEY;
            v->partial = P_NONE;
            int r = on_string(v, v->tb, q + 1, key);
            if (r == EG_EPARSE) return fail(v, v->tb, v->tbn, s, took, n);
            if (r) return r;
            *done = 1;
            return (long)(took - extra);
        }
        v->tbscan = resume;
        if (took == n) {
            if (eof) return fail(v, v->tb, v->tbn, s, n, n);
            return (long)n;
        }
        const unsigned char *qq = memchr(s + took, '"', n - took);
        size_t upto = qq ? (size_t)(qq - s) + 1 : n;
        if (buf_add(&v->tb, &v->tbn, &v->tbcap, s + took, upto - took)) return EG_ENOMEM;
        took = upto;
    }
}

/* Keeps s[i..n) as the start of a token cut by the chunk's end. */
static int keep(eg_sv_t *v, int kind, const unsigned char *s, size_t i, size_t n)
{
    v->partial = kind;
    v->tstart = v->base + i;
    v->tbn = 0;
    return buf_add(&v->tb, &v->tbn, &v->tbcap, s + i, n - i);
}

/* After a number or a literal: a NUL right there is skipped (jansson's
 * lexer loses a NUL it puts back, jsonr does the same); at the chunk's
 * end, the next chunk's first byte is looked at. */
static inline size_t skip_nul(eg_sv_t *v, const unsigned char *s, size_t n, size_t i)
{
    v->skipnul = i >= n;
    if (i < n && !s[i]) {
        i++;
        v->nul_l++;
        v->nul_total++;
    }
    return i;
}

/* Runs the state machine over s[0..n) (eof: the input ends after it). */
static int run(eg_sv_t *v, const unsigned char *s, size_t n, int eof)
{
    size_t i = 0;
    int r;
    int state = v->state; /* in a register: written back when the chunk is done */
    frame_t *top = v->nfr ? &v->fr[v->nfr - 1] : NULL;
    if (v->skipnul && n) /* a number or literal ended the last chunk */
        i = skip_nul(v, s, n, 0);
    if (v->partial) {
        int done;
        long k = resume_token(v, s, n, eof, &done);
        if (k < 0) return (int)k;
        i = (size_t)k;
        if (!done) goto out;
        if (v->partial_was_scalar) i = skip_nul(v, s, n, i);
        state = state == S_KEY ? S_COLON : top ? S_AFTER : S_DONE;
    }
    for (;;) {
        /* whitespace, as jsonr's skip_ws */
        while (i < n && s[i] <= ' ') {
            unsigned c = s[i];
            if (c == ' ' || c == '\t' || c == '\r') {
                i++;
            } else if (c == '\n') {
                v->line++;
                i++;
                v->lstart = v->base + i;
                v->cont_l = v->nul_l = 0;
            } else {
                break;
            }
        }
        if (i >= n) {
            if (!eof || state == S_DONE) goto out;
            return fail(v, NULL, 0, s, n, n);
        }
        unsigned c = s[i];
        switch (state) {
        case S_DONE:
            return fail(v, NULL, 0, s, i, n);
        case S_COLON:
            if (c != ':') return fail(v, NULL, 0, s, i, n);
            i++;
            state = S_VALUE;
            continue;
        case S_AFTER:
            if (c == ',') {
                i++;
                state = top->obj ? S_KEY : S_VALUE;
                continue;
            }
            if (c != (top->obj ? '}' : ']')) return fail(v, NULL, 0, s, i, n);
            goto close;
        case S_OBJ_FIRST:
            if (c == '}') goto close;
            state = S_KEY;
            /* fall through */
        case S_KEY:
            if (c != '"') return fail(v, NULL, 0, s, i, n);
            goto string;
        case S_ARR_FIRST:
            if (c == ']') goto close;
            state = S_VALUE;
            /* fall through */
        default: /* S_VALUE */
            break;
        }
        if (top) {
            if (v->nfr >= EG_JR_MAX_DEPTH) return fail(v, NULL, 0, s, i, n);
            if (!top->obj) top->count++; /* an item's index */
        }
        switch (c) {
        case '"':
            goto string;
        case '{':
        case '[':
            v->ntok++;
            if ((r = push_frame(v, c == '{', i))) return r;
            top = &v->fr[v->nfr - 1];
            state = c == '{' ? S_OBJ_FIRST : S_ARR_FIRST;
            i++;
            continue;
        case 't':
        case 'f':
        case 'n': {
            static const char *const text[] = {"null", "false", "true"};
            uint8_t lit = c == 'n' ? EG_JR_NULL : c == 'f' ? EG_JR_FALSE : EG_JR_TRUE;
            size_t l = lit == EG_JR_FALSE ? 5 : 4;
            if (n - i >= l) {
                if (memcmp(s + i, text[lit], l) != 0) return fail(v, NULL, 0, s, i, n);
                if ((r = on_literal(v, lit))) return r;
                i = skip_nul(v, s, n, i + l);
                state = top ? S_AFTER : S_DONE;
                continue;
            }
            size_t k = 0;
            for (; i + k < n; k++)
                if (s[i + k] != (unsigned char)text[lit][k]) return fail(v, NULL, 0, s, i, n);
            if (eof) return fail(v, NULL, 0, s, i, n);
            v->lit = lit;
            v->lm = (uint8_t)k;
            if ((r = keep(v, P_LIT, s, i, n))) return r;
            goto out;
        }
        default:
            if (c == '-' || is_digit(c)) {
                uint8_t st = c == '-' ? 0 : c == '0' ? 1 : 2;
                size_t e = nscan(s, n, i + 1, &st);
                if (st == 8) return fail(v, NULL, 0, s, i, n);
                if (e == n && !eof) {
                    v->nst = st;
                    if ((r = keep(v, P_NUM, s, i, n))) return r;
                    goto out;
                }
                if (!num_done(st)) return fail(v, NULL, 0, s, i, n);
                r = on_number(v, (const char *)s + i, e - i);
                if (r == EG_EPARSE) return fail(v, NULL, 0, s, i, n);
                if (r) return r;
                i = skip_nul(v, s, n, e);
                state = top ? S_AFTER : S_DONE;
                continue;
            }
            return fail(v, NULL, 0, s, i, n);
        }
    string : {
        size_t resume = 0;
        uint8_t esc = 0;
        uint32_t cont = 0;
        size_t q = sscan(s, n, i + 1, &esc, &cont, &resume);
        if (q == BAD) return fail(v, NULL, 0, s, i, n);
        if (q == MORE) {
            if (eof) return fail(v, NULL, 0, s, i, n);
            v->tesc = esc;
            v->tcont = cont;
            if ((r = keep(v, state == S_KEY ? P_KEY : P_STR, s, i, n))) return r;
            v->tbscan = resume - i;
            goto out;
        }
        v->tesc = esc;
        v->tcont = cont;
        r = on_string(v, (const char *)s + i, q + 1 - i, state == S_KEY);
        if (r == EG_EPARSE) return fail(v, NULL, 0, s, i, n);
        if (r) return r;
        i = q + 1;
        state = state == S_KEY ? S_COLON : top ? S_AFTER : S_DONE;
        continue;
    }
    close:
        if ((r = pop_frame(v, s, i))) return r;
        top = v->nfr ? &v->fr[v->nfr - 1] : NULL;
        i++;
        state = top ? S_AFTER : S_DONE;
        continue;
    }
out:
    v->state = state;
    if (v->capturing && buf_add(&v->cap, &v->capn, &v->capcap, s + v->capfrom, n - v->capfrom))
        return EG_ENOMEM;
    v->capfrom = 0;
    return 0;
}

/* ---- the API ---- */

#define KEEP_MAX (64 * 1024) /* a reset keeps buffers up to this size */

static void keep_or_free(char **b, size_t *cap)
{
    if (*cap > KEEP_MAX) {
        free(*b);
        *b = NULL;
        *cap = 0;
    }
}

/* Everything before `c` starts at zero, but the buffers, which a reset
 * keeps (bounded) for the next body. */
static void sv_init(eg_sv_t *v, const eg_schema_t *s, eg_schema_report_t *rep)
{
    keep_or_free(&v->tb, &v->tbcap);
    keep_or_free(&v->tail, &v->tailcap);
    keep_or_free(&v->cap, &v->capcap);
    char *tb = v->tb, *tail = v->tail, *cap = v->cap, **ablk = v->ablk;
    size_t tbcap = v->tbcap, tailcap = v->tailcap, capcap = v->capcap, *asz = v->asz;
    size_t nablk = v->nablk, capablk = v->capablk;
    frame_t *fr = v->fr;
    skey_t *keys = v->keys;
    anode_t *avl = v->avl;
    size_t capavl = v->capavl;
    uint64_t *seen = v->seen;
    size_t capfr = v->capfr, capkeys = v->capkeys, capseen = v->capseen;
    for (size_t i = 0; i < nablk; i++)
        if (asz[i] > ABLOCK) { /* a long key's own block */
            free(ablk[i]);
            ablk[i] = NULL;
            asz[i] = 0;
        }
    while (nablk > 8) /* past 16 KiB */
        free(ablk[--nablk]);
    if (capfr > 256) capfr = 0, free(fr), fr = NULL; /* a deep or wide body's arrays go */
    if (capkeys > 4096) capkeys = 0, free(keys), keys = NULL;
    if (capavl > 4096) capavl = 0, free(avl), avl = NULL;
    if (capseen > 1024) capseen = 0, free(seen), seen = NULL;
    memset(v, 0, offsetof(eg_sv_t, c));
    v->tb = tb, v->tbcap = tbcap, v->tail = tail, v->tailcap = tailcap;
    v->cap = cap, v->capcap = capcap;
    v->ablk = ablk, v->asz = asz, v->nablk = nablk, v->capablk = capablk;
    v->fr = fr, v->capfr = capfr, v->keys = keys, v->capkeys = capkeys;
    v->avl = avl, v->capavl = capavl;
    v->seen = seen, v->capseen = capseen;
    v->s = s;
    v->rep = rep ? rep : &v->own;
    v->line = 1;
    /* PCRE2's match data stays, in its bump buffer, for the next body */
    pcre2_match_data *md = v->c.md;
    pcre2_general_context *gctx = v->c.gctx;
    size_t used = v->c.bump.used;
    eg_sc_init(&v->c, s, v->rep);
    v->c.md = md, v->c.gctx = gctx, v->c.bump.used = used;
}

int eg_sv_new(const eg_schema_t *s, eg_schema_report_t *rep, eg_sv_t **out)
{
    /* not calloc: the validation context and the scratch document are
     * large and written before they are read */
    eg_sv_t *v = malloc(sizeof(*v));
    *out = v;
    if (!v) return EG_ENOMEM;
    memset(v, 0, offsetof(eg_sv_t, c));
    v->c.md = NULL;
    v->c.gctx = NULL;
    v->c.bump.used = 0;
    sv_init(v, s, rep);
    return EG_OK;
}

void eg_sv_reset(eg_sv_t *v, const eg_schema_t *s, eg_schema_report_t *rep)
{
    sv_init(v, s, rep);
}

int eg_sv_feed(eg_sv_t *v, const char *data, size_t n)
{
    if (v->err) {
        if (!v->efinal && buf_add(&v->tail, &v->tailn, &v->tailcap, data, n)) return EG_ENOMEM;
        settle(v, 0);
        return EG_EPARSE;
    }
    if (v->oom) return EG_ENOMEM;
    int r = run(v, (const unsigned char *)data, n, 0);
    v->base += n;
    if (r == EG_EPARSE) settle(v, 0);
    return r;
}

int eg_sv_finish(eg_sv_t *v)
{
    if (!v->err && !v->oom) {
        int r = run(v, (const unsigned char *)"", 0, 1);
        if (r && r != EG_EPARSE) return r;
    }
    if (v->err) {
        settle(v, 1);
        return EG_EPARSE;
    }
    if (v->oom || v->c.oom) return EG_ENOMEM;
    eg_vctx_t *c = &v->c;
    if (c->spent) {
        c->spent = 0;
        c->quiet = 0;
        c->npath = 0;
        eg_sc_problem(c, NULL, NULL, 0, "complexity", "max_steps",
                      json_integer((json_int_t)c->budget),
                      "could not be validated within the work limit");
        v->bad = 1;
    }
    if (v->bad && !v->rep->count) v->rep->count = 1;
    return c->oom ? EG_ENOMEM : v->bad ? EG_ERANGE : EG_OK;
}

void eg_sv_error(const eg_sv_t *v, long *position, int *line, int *column)
{
    *position = v->epos;
    *line = v->eline;
    *column = v->ecol;
}

void eg_sv_free(eg_sv_t *v)
{
    if (!v) return;
    free(v->fr);
    free(v->avl);
    free(v->keys);
    free(v->seen);
    for (size_t i = 0; i < v->nablk; i++)
        free(v->ablk[i]);
    free(v->ablk);
    free(v->asz);
    free(v->tb);
    free(v->tail);
    free(v->cap);
    eg_sc_fini(&v->c);
    free(v);
}

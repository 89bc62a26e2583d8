/* schema_check.c - a jsonr tape checked against a compiled schema.
 *
 * One recursive walk: a node's keywords are looked at only when the
 * instance's type can be concerned by them (the kw bits say which are
 * there). Problems go straight to the report with the instance path kept
 * as a stack of (key token | index) segments, turned into a JSON pointer
 * and a dotted name only when a field error is written, so a valid
 * instance costs no allocation. anyOf / oneOf / not evaluate their
 * branches "quietly" (stop at the first problem, report nothing) and then
 * report one problem of their own. The recursion is capped at
 * EG_SCHEMA_MAX_DEPTH: a deeper instance under a recursive schema is a
 * reported problem, not a stack overflow.
 */
#include "schema_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef eg_vctx_t vctx_t;
typedef eg_bump_t bump_t;

static void *bump_malloc(size_t n, void *ctx)
{
    bump_t *b = ctx;
    n = (n + 15) & ~(size_t)15;
    if (b->used + n <= sizeof(b->buf)) {
        void *p = b->buf + b->used;
        b->used += n;
        return p;
    }
    return malloc(n);
}

static void bump_free(void *p, void *ctx)
{
    bump_t *b = ctx;
    if (p && ((unsigned char *)p < b->buf || (unsigned char *)p >= b->buf + sizeof(b->buf)))
        free(p);
}

/* ---- strings ---- */

/* A string token's unescaped bytes: in place when it has no escapes, else
 * in buf, or in a malloc'd copy (*heap) when longer than buf. */
typedef struct {
    const char *p;
    size_t len;
    char *heap;
    char buf[256];
} strv_t;

static int str_get(const eg_jr_doc_t *doc, const eg_jr_tok_t *t, strv_t *v)
{
    v->heap = NULL;
    if (!t->escaped) {
        v->p = doc->text + t->off;
        v->len = t->len;
        return 0;
    }
    char *dst = v->buf;
    if (t->len > sizeof(v->buf)) {
        if (!(v->heap = malloc(t->len))) return EG_ENOMEM;
        dst = v->heap;
    }
    v->len = eg_jr_str(doc, t, dst, t->len);
    v->p = dst;
    return 0;
}

static size_t code_points(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)p[i] & 0xc0) != 0x80;
    return k;
}

/* ---- reporting ---- */

/* Appends s[0..n) to a growing buffer; -1 when out of memory. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static int sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *q = realloc(b->p, ncap);
        if (!q) return -1;
        b->p = q;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Writes the JSON pointer and the dotted name of the current path (plus
 * `last`, a member name not in the path, e.g. a missing required one). */
static int path_strings(vctx_t *c, const char *last, size_t lastlen, sbuf_t *ptr, sbuf_t *dot)
{
    const char *prefix = c->rep->prefix ? c->rep->prefix : "";
    int rc = sb_add(ptr, prefix, strlen(prefix)) | sb_add(dot, "", 0);
    for (size_t i = 0; i <= c->npath && !rc; i++) {
        strv_t v;
        char num[24];
        const char *seg;
        size_t n;
        int key = 1;
        v.heap = NULL;
        if (i == c->npath) {
            if (!last) break;
            seg = last, n = lastlen;
        } else if (c->path[i].key) {
            const eg_sseg_t *g = &c->path[i];
            if (!g->escaped) {
                seg = g->k, n = g->len;
            } else {
                char *dst = g->len > sizeof(v.buf) ? (v.heap = malloc(g->len)) : v.buf;
                if (!dst) return -1;
                n = eg_jr_unescape(g->k, g->len, dst, g->len);
                seg = dst;
            }
        } else {
            n = (size_t)snprintf(num, sizeof(num), "%u", c->path[i].index);
            seg = num;
            key = 0;
        }
        rc |= sb_add(ptr, "/", 1);
        for (size_t j = 0; j < n && !rc; j++) {
            if (seg[j] == '~')
                rc |= sb_add(ptr, "~0", 2);
            else if (seg[j] == '/')
                rc |= sb_add(ptr, "~1", 2);
            else
                rc |= sb_add(ptr, seg + j, 1);
        }
        if (key) {
            if (dot->len) rc |= sb_add(dot, ".", 1);
            rc |= sb_add(dot, seg, n);
        } else {
            rc |= sb_add(dot, "[", 1) | sb_add(dot, seg, n) | sb_add(dot, "]", 1);
        }
        free(v.heap);
    }
    if (!rc && !dot->len) {
        const char *root = c->rep->field_root ? c->rep->field_root : "body";
        rc = sb_add(dot, root, strlen(root));
    }
    return rc;
}

/* The offending value as echoed back: scalars only, strings cut. */
static json_t *echo(const eg_jr_doc_t *doc, const eg_jr_tok_t *t)
{
    switch (t->type) {
    case EG_JR_NULL:
        return json_null();
    case EG_JR_TRUE:
        return json_true();
    case EG_JR_FALSE:
        return json_false();
    case EG_JR_INT:
        return json_integer(t->ival);
    case EG_JR_REAL:
        return json_real(t->dval);
    case EG_JR_STRING: {
        char buf[EG_SCHEMA_ECHO_MAX + 4];
        size_t n = eg_jr_str(doc, t, buf, sizeof(buf));
        if (n > EG_SCHEMA_ECHO_MAX) {
            n = EG_SCHEMA_ECHO_MAX; /* back to a code point boundary */
            while (n && ((unsigned char)buf[n] & 0xc0) == 0x80)
                n--;
        }
        return json_stringn(buf, n);
    }
    default:
        return NULL;
    }
}

static json_t *num_json(const snum_t *n)
{
    return n->isint ? json_integer(n->i) : json_real(n->d);
}

/* 1 when the next problem becomes a field error: only then are its
 * message and extra built (a quiet anyOf branch, a count-only run or a
 * report past its bound allocate nothing). */
static int writing(const vctx_t *c)
{
    return !c->quiet && !c->spent && c->rep->e && c->added < c->rep->max;
}
#define WX(expr) (writing(c) ? (expr) : NULL)

/* One problem: counted; written as a field error while under max. `extra`
 * (stolen, may be NULL) is the keyword's bound under the name `xkey`. */
static void vproblem(vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                     const char *constraint, const char *xkey, json_t *xval, const char *fmt,
                     va_list ap) __attribute__((format(printf, 8, 0)));
static void vproblem(vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                     const char *constraint, const char *xkey, json_t *xval, const char *fmt,
                     va_list ap)
{
    sbuf_t ptr = {0}, dot = {0};
    eg_schema_report_t *rep = c->rep;
    if (c->quiet || c->spent) goto done; /* once spent, verdicts are not trustworthy */
    rep->count++;
    if (!rep->e || c->added >= rep->max) goto done;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    eg_field_error_t *f = eg_error_add_field(rep->e);
    if (!f || path_strings(c, last, lastlen, &ptr, &dot) ||
        eg_field_setn(rep->e, f, EG_F_POINTER, ptr.p, ptr.len) ||
        eg_field_setn(rep->e, f, EG_F_FIELD, dot.p, dot.len) ||
        eg_field_set(rep->e, f, EG_F_CONSTRAINT, constraint) ||
        eg_field_set(rep->e, f, EG_F_MESSAGE, msg)) {
        c->oom = 1;
        goto done;
    }
    c->added++;
    if (val) {
        json_t *v = echo(c->doc, val);
        if (v) eg_field_set_value(f, v);
    }
    if (xkey && xval) {
        json_t *x = eg_field_extra(f);
        if (!x || json_object_set_new(x, xkey, xval)) c->oom = 1;
        xval = NULL;
    }
done:
    json_decref(xval);
    free(ptr.p);
    free(dot.p);
}

static void problem(vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                    const char *constraint, const char *xkey, json_t *xval, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void problem(vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                    const char *constraint, const char *xkey, json_t *xval, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(c, val, last, lastlen, constraint, xkey, xval, fmt, ap);
    va_end(ap);
}

void eg_sc_problem(vctx_t *c, const eg_jr_tok_t *val, const char *last, size_t lastlen,
                   const char *constraint, const char *xkey, json_t *xval, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vproblem(c, val, last, lastlen, constraint, xkey, xval, fmt, ap);
    va_end(ap);
}

/* ---- comparisons ---- */

static double tok_num(const eg_jr_tok_t *t)
{
    return t->type == EG_JR_INT ? (double)t->ival : t->dval;
}

static int is_num(const eg_jr_tok_t *t)
{
    return t->type == EG_JR_INT || t->type == EG_JR_REAL;
}

/* <0, 0, >0 as the instance number t compares with the bound b. */
static int num_cmp(const eg_jr_tok_t *t, const snum_t *b)
{
    if (t->type == EG_JR_INT && b->isint) return (t->ival > b->i) - (t->ival < b->i);
    double x = tok_num(t);
    return (x > b->d) - (x < b->d);
}

int eg_schema_dec(const char *s, size_t n, uint64_t *m, long *e)
{
    uint64_t v = 0;
    long exp = 0;
    size_t i = 0;
    int frac = 0, digits = 0;
    if (i < n && s[i] == '-') i++;
    for (; i < n && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            frac = 1;
            continue;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (!v && !d) { /* leading zeros cost no digits */
            if (frac) exp--;
            continue;
        }
        if (++digits > 19) return -1;
        v = v * 10 + d;
        if (frac) exp--;
    }
    if (i < n) {
        char *end;
        long x = strtol(s + i + 1, &end, 10);
        if (x > 400 || x < -400) return -1;
        exp += x;
    }
    *m = v;
    *e = exp;
    return 0;
}

static int pow10_mul(uint64_t *v, long k)
{
    while (k-- > 0)
        if (__builtin_mul_overflow(*v, 10, v)) return -1;
    return 0;
}

/* multipleOf, exactly on the decimal texts when they fit in 64 bits (so
 * 0.0075 is a multiple of 0.0001), else on doubles with a tolerance. */
int eg_sc_multiple_of(const char *num, const eg_jr_tok_t *t, const eg_snode_t *n)
{
    const snum_t *d = &n->mult;
    if (t->type == EG_JR_INT && d->isint) return t->ival % d->i == 0;
    uint64_t mx, md = n->mult_m;
    long ex, ed = n->mult_e;
    if (n->mult_dec && !eg_schema_dec(num, t->len, &mx, &ex)) {
        if (!mx) return 1;
        long e = ex < ed ? ex : ed;
        uint64_t X = mx, D = md;
        int xo = pow10_mul(&X, ex - e), dov = pow10_mul(&D, ed - e);
        if (!xo && dov) return 0; /* D beyond 2^64 > X > 0 */
        if (!xo && !dov) return X % D == 0;
    }
    double q = tok_num(t) / d->d;
    if (!isfinite(q)) return fmod(tok_num(t), d->d) == 0; /* exact, unlike the quotient */
    return fabs(q - nearbyint(q)) <= 1e-9 * (fabs(q) > 1 ? fabs(q) : 1);
}

static int tok_eq(const eg_jr_doc_t *doc, const eg_jr_tok_t *a, const eg_jr_tok_t *b);

/* Instance value t equal to const value v (numbers by value: 1 == 1.0). */
static int cval_eq(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *t, uint32_t vi)
{
    const cval_t *v = &s->cvals[vi];
    switch (v->type) {
    case CV_NULL:
        return t->type == EG_JR_NULL;
    case CV_TRUE:
        return t->type == EG_JR_TRUE;
    case CV_FALSE:
        return t->type == EG_JR_FALSE;
    case CV_NUM:
        if (!is_num(t)) return 0;
        return num_cmp(t, &v->n) == 0;
    case CV_STRING:
        return t->type == EG_JR_STRING && eg_jr_str_eq(doc, t, v->s, v->len);
    case CV_ARRAY: {
        if (t->type != EG_JR_ARRAY || t->count != v->count) return 0;
        const eg_jr_tok_t *it = t + 1;
        uint32_t ci = vi + 1;
        for (uint32_t i = 0; i < v->count; i++) {
            if (!cval_eq(s, doc, it, ci)) return 0;
            it = doc->toks + it->end;
            ci = s->cvals[ci].end;
        }
        return 1;
    }
    case CV_OBJECT: {
        if (t->type != EG_JR_OBJECT || t->count != v->count) return 0;
        uint32_t ci = vi + 1;
        for (uint32_t i = 0; i < v->count; i++) {
            const cval_t *k = &s->cvals[ci];
            const eg_jr_tok_t *m = eg_jr_get(doc, t, k->s, k->len);
            if (!m || !cval_eq(s, doc, m, ci + 1)) return 0;
            ci = s->cvals[ci + 1].end;
        }
        return 1;
    }
    }
    return 0;
}

/* Two instance values equal as JSON values (for uniqueItems). */
static int tok_eq(const eg_jr_doc_t *doc, const eg_jr_tok_t *a, const eg_jr_tok_t *b)
{
    if (is_num(a) && is_num(b)) {
        if (a->type == EG_JR_INT && b->type == EG_JR_INT) return a->ival == b->ival;
        return tok_num(a) == tok_num(b);
    }
    if (a->type != b->type) return 0;
    switch (a->type) {
    case EG_JR_STRING: {
        if (!a->escaped) return eg_jr_str_eq(doc, b, doc->text + a->off, a->len);
        if (!b->escaped) return eg_jr_str_eq(doc, a, doc->text + b->off, b->len);
        strv_t v;
        if (str_get(doc, a, &v)) return 0;
        int eq = eg_jr_str_eq(doc, b, v.p, v.len);
        free(v.heap);
        return eq;
    }
    case EG_JR_ARRAY: {
        if (a->count != b->count) return 0;
        const eg_jr_tok_t *x = a + 1, *y = b + 1;
        for (uint32_t i = 0; i < a->count; i++) {
            if (!tok_eq(doc, x, y)) return 0;
            x = doc->toks + x->end;
            y = doc->toks + y->end;
        }
        return 1;
    }
    case EG_JR_OBJECT: {
        if (a->count != b->count) return 0;
        const eg_jr_tok_t *k = a + 1;
        for (uint32_t i = 0; i < a->count; i++) {
            const eg_jr_tok_t *v = k + 1, *m;
            if (!k->escaped) {
                m = eg_jr_get(doc, b, doc->text + k->off, k->len);
            } else {
                strv_t sv;
                if (str_get(doc, k, &sv)) return 0;
                m = eg_jr_get(doc, b, sv.p, sv.len);
                free(sv.heap);
            }
            if (!m || !tok_eq(doc, v, m)) return 0;
            k = doc->toks + v->end;
        }
        return 1;
    }
    default:
        return 1; /* null, true, false */
    }
}

/* ---- uniqueItems ---- */

/* A hash of the value at t that equal values share: numbers by value (1
 * and 1.0), strings unescaped, objects whatever their member order (the
 * members' hashes are added). */
static uint64_t tok_hash(const eg_jr_doc_t *doc, const eg_jr_tok_t *t, int *oom)
{
    switch (t->type) {
    case EG_JR_NULL:
        return 1;
    case EG_JR_FALSE:
        return 2;
    case EG_JR_TRUE:
        return 3;
    case EG_JR_INT:
    case EG_JR_REAL:
        return eg_schema_hash_num(tok_num(t));
    case EG_JR_STRING: {
        strv_t v;
        if (str_get(doc, t, &v)) {
            *oom = 1;
            return 0;
        }
        uint64_t h = eg_schema_hash_str(v.p, v.len);
        free(v.heap);
        return h;
    }
    case EG_JR_ARRAY: {
        uint64_t h = 6 + t->count;
        const eg_jr_tok_t *it = t + 1;
        for (uint32_t i = 0; i < t->count; i++, it = doc->toks + it->end)
            h = eg_schema_mix64(h * 31 + tok_hash(doc, it, oom));
        return h;
    }
    default: {
        uint64_t h = 7 + t->count;
        const eg_jr_tok_t *k = t + 1;
        for (uint32_t i = 0; i < t->count; i++) {
            const eg_jr_tok_t *v = k + 1;
            h += eg_schema_mix64(tok_hash(doc, k, oom) * 3 + tok_hash(doc, v, oom));
            k = doc->toks + v->end;
        }
        return eg_schema_mix64(h);
    }
    }
}

typedef struct {
    uint64_t hash;
    const eg_jr_tok_t *t;
    uint32_t index;
} uitem_t;

static int uitem_cmp(const void *pa, const void *pb)
{
    const uitem_t *a = pa, *b = pb;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* 1 with the indices of two equal items, 0 when all differ, -1 when out
 * of memory or of work budget. Short arrays compare pairwise; longer ones
 * are hashed and sorted by hash, so only items whose hashes collide are
 * compared (n log n, not n^2). Every comparison is charged to the budget. */
static int unique_items(vctx_t *c, const eg_jr_tok_t *t, uint32_t *di, uint32_t *dj)
{
    const eg_jr_doc_t *doc = c->doc;
    if (t->count > 16) {
        uitem_t *v = malloc(t->count * sizeof(*v));
        if (!v) {
            c->oom = 1;
            return -1;
        }
        int oom = 0, dup = 0;
        const eg_jr_tok_t *it = t + 1;
        for (uint32_t i = 0; i < t->count; i++, it = doc->toks + it->end)
            v[i] = (uitem_t){tok_hash(doc, it, &oom), it, i};
        qsort(v, t->count, sizeof(*v), uitem_cmp);
        for (uint32_t i = 0; i < t->count && !dup && !oom && !c->spent; i++) {
            for (uint32_t j = i + 1; j < t->count && v[j].hash == v[i].hash && !dup; j++) {
                if (++c->steps > c->budget) {
                    c->spent = 1;
                    break;
                }
                if (tok_eq(doc, v[i].t, v[j].t)) *di = v[i].index, *dj = v[j].index, dup = 1;
            }
        }
        free(v);
        if (oom) c->oom = 1;
        return oom || c->spent ? -1 : dup;
    }
    const eg_jr_tok_t *a = t + 1;
    for (uint32_t i = 0; i < t->count; i++) {
        const eg_jr_tok_t *b = doc->toks + a->end;
        for (uint32_t j = i + 1; j < t->count; j++) {
            if (++c->steps > c->budget) {
                c->spent = 1;
                return -1;
            }
            if (tok_eq(doc, a, b)) {
                *di = i, *dj = j;
                return 1;
            }
            b = doc->toks + b->end;
        }
        a = doc->toks + a->end;
    }
    return 0;
}

/* ---- patterns ---- */

/* 1 match, 0 no match, -1 the match limits were hit (or no memory). */
static int re_match(vctx_t *c, uint32_t re, const char *p, size_t n)
{
    const eg_fastre_t *f = c->s->res[re].fast;
    if (f) return eg_fastre_match(f, p, n);
    if (!c->md) {
        if (!c->gctx && !(c->gctx = pcre2_general_context_create(bump_malloc, bump_free, &c->bump)))
            return -1;
        if (!(c->md = pcre2_match_data_create(1, c->gctx))) return -1;
    }
    /* JIT code runs directly: pcre2_match would only check the options again */
    const sregex_t *x = &c->s->res[re];
    int r = x->jit
                ? pcre2_jit_match(x->code, (PCRE2_SPTR)p, n, 0, 0, c->md, c->s->mctx)
                : pcre2_match(x->code, (PCRE2_SPTR)p, n, 0, PCRE2_NO_UTF_CHECK, c->md, c->s->mctx);
    return r >= 0 ? 1 : r == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* ---- messages ---- */

static const char *type_name(unsigned bit)
{
    switch (bit) {
    case EG_ST_NULL:
        return "null";
    case EG_ST_BOOLEAN:
        return "boolean";
    case EG_ST_INTEGER:
        return "integer";
    case EG_ST_NUMBER:
        return "number";
    case EG_ST_STRING:
        return "string";
    case EG_ST_ARRAY:
        return "array";
    default:
        return "object";
    }
}

static const char *type_article(unsigned bit)
{
    return bit == EG_ST_INTEGER || bit == EG_ST_ARRAY || bit == EG_ST_OBJECT ? "an " : "a ";
}

static void type_problem(vctx_t *c, const eg_jr_tok_t *t, unsigned types)
{
    char msg[160] = "must be ";
    size_t o = strlen(msg);
    static const unsigned order[] = {EG_ST_STRING, EG_ST_INTEGER, EG_ST_NUMBER, EG_ST_BOOLEAN,
                                     EG_ST_ARRAY,  EG_ST_OBJECT,  EG_ST_NULL};
    int n = 0, total = __builtin_popcount(types);
    int w = writing(c);
    json_t *x = w && total > 1 ? json_array() : NULL;
    for (size_t i = 0; w && i < sizeof(order) / sizeof(order[0]); i++) {
        unsigned bit = order[i];
        if (!(types & bit)) continue;
        const char *sep = n == 0 ? "" : n == total - 1 ? " or " : ", ";
        o += (size_t)snprintf(msg + o, sizeof(msg) - o, "%s%s%s", sep,
                              bit == EG_ST_NULL ? "" : type_article(bit), type_name(bit));
        if (x) json_array_append_new(x, json_string(type_name(bit)));
        n++;
    }
    if (w && !x) x = json_string(type_name(types));
    problem(c, t, NULL, 0, "type", "type", x, "%s", msg);
}

static const char *format_words(eg_format_t f)
{
    switch (f) {
    case EG_FMT_DATE:
        return "a valid date (YYYY-MM-DD)";
    case EG_FMT_DATE_TIME:
        return "a valid date-time (RFC 3339)";
    case EG_FMT_TIME:
        return "a valid time (RFC 3339)";
    case EG_FMT_EMAIL:
        return "a valid email address";
    case EG_FMT_UUID:
        return "a valid UUID";
    case EG_FMT_URI:
        return "a valid URI";
    case EG_FMT_URI_REFERENCE:
        return "a valid URI reference";
    case EG_FMT_HOSTNAME:
        return "a valid hostname";
    case EG_FMT_IPV4:
        return "a valid IPv4 address";
    case EG_FMT_IPV6:
        return "a valid IPv6 address";
    case EG_FMT_REGEX:
        return "a valid regular expression";
    case EG_FMT_JSON_POINTER:
        return "a valid JSON pointer";
    case EG_FMT_INT32:
        return "a 32-bit integer";
    case EG_FMT_INT64:
        return "a 64-bit integer";
    case EG_FMT_ISO3166:
        return "a valid ISO 3166-1 alpha-2 country code";
    case EG_FMT_ISO639:
        return "a valid ISO 639-1 language code";
    default:
        return "valid";
    }
}

/* ---- validation ---- */

static int validate(vctx_t *c, uint32_t at, const eg_jr_tok_t *t);

/* Runs node `at` on t quietly: 1 when it passes. */
static int passes(vctx_t *c, uint32_t at, const eg_jr_tok_t *t)
{
    int q = c->quiet;
    c->quiet = 1;
    int bad = validate(c, at, t);
    c->quiet = q;
    return !bad;
}

/* validate() of a child value one path segment down. */
static int descend(vctx_t *c, uint32_t at, const eg_jr_tok_t *t, const eg_jr_tok_t *key,
                   uint32_t index)
{
    if (key)
        c->path[c->npath++] = eg_sseg_key(c->doc, key);
    else
        c->path[c->npath++] = eg_sseg_index(index);
    int bad = validate(c, at, t);
    c->npath--;
    return bad;
}

#define BAIL()                                                                                     \
    do {                                                                                           \
        bad = 1;                                                                                   \
        if (c->quiet || c->oom || !c->rep->e) return 1;                                            \
    } while (0)

static int check_string(vctx_t *c, const eg_snode_t *n, const eg_jr_tok_t *t)
{
    int bad = 0;
    strv_t v;
    if (str_get(c->doc, t, &v)) {
        c->oom = 1;
        return 1;
    }
    /* a UTF-8 string has between len/4 and len code points: most bounds
     * are settled by its byte length without counting */
    int need =
        ((n->kw & K_MAXLEN) && v.len > n->maxlen) || ((n->kw & K_MINLEN) && v.len / 4 < n->minlen);
    if (need) {
        size_t cp = code_points(v.p, v.len);
        if ((n->kw & K_MINLEN) && cp < n->minlen) {
            problem(c, t, NULL, 0, "minLength", "minLength",
                    WX(json_integer((json_int_t)n->minlen)),
                    "must be at least %llu character%s long", (unsigned long long)n->minlen,
                    n->minlen == 1 ? "" : "s");
            bad = 1;
        }
        if ((n->kw & K_MAXLEN) && cp > n->maxlen) {
            problem(c, t, NULL, 0, "maxLength", "maxLength",
                    WX(json_integer((json_int_t)n->maxlen)),
                    "must be at most %llu character%s long", (unsigned long long)n->maxlen,
                    n->maxlen == 1 ? "" : "s");
            bad = 1;
        }
    }
    if (!(bad && c->quiet) && (n->kw & K_PATTERN)) {
        int m = re_match(c, n->pattern, v.p, v.len);
        const char *src = c->s->res[n->pattern].src;
        if (m == 0)
            problem(c, t, NULL, 0, "pattern", "pattern", WX(json_string(src)),
                    "must match the pattern '%s'", src);
        else if (m < 0)
            problem(c, t, NULL, 0, "pattern", "pattern", WX(json_string(src)),
                    "could not be checked against the pattern '%s' (match limit reached)", src);
        bad |= m != 1;
    }
    if (!(bad && c->quiet) && (n->kw & K_FORMAT) &&
        !eg_format_check((eg_format_t)n->fmt, v.p, v.len)) {
        problem(c, t, NULL, 0, "format", "format",
                WX(json_string(eg_format_name((eg_format_t)n->fmt))), "must be %s",
                format_words((eg_format_t)n->fmt));
        bad = 1;
    }
    if (v.heap) free(v.heap);
    return bad;
}

static int check_number(vctx_t *c, const eg_snode_t *n, const eg_jr_tok_t *t)
{
    int bad = 0;
    if ((n->kw & K_MIN) && num_cmp(t, &n->min) < 0) {
        problem(c, t, NULL, 0, "minimum", "minimum", WX(num_json(&n->min)), "must be at least %s",
                n->min.text);
        BAIL();
    }
    if ((n->kw & K_XMIN) && num_cmp(t, &n->xmin) <= 0) {
        problem(c, t, NULL, 0, "exclusiveMinimum", "exclusiveMinimum", WX(num_json(&n->xmin)),
                "must be greater than %s", n->xmin.text);
        BAIL();
    }
    if ((n->kw & K_MAX) && num_cmp(t, &n->max) > 0) {
        problem(c, t, NULL, 0, "maximum", "maximum", WX(num_json(&n->max)), "must be at most %s",
                n->max.text);
        BAIL();
    }
    if ((n->kw & K_XMAX) && num_cmp(t, &n->xmax) >= 0) {
        problem(c, t, NULL, 0, "exclusiveMaximum", "exclusiveMaximum", WX(num_json(&n->xmax)),
                "must be less than %s", n->xmax.text);
        BAIL();
    }
    if ((n->kw & K_MULT) && !eg_sc_multiple_of(c->doc->text + t->off, t, n)) {
        problem(c, t, NULL, 0, "multipleOf", "multipleOf", WX(num_json(&n->mult)),
                "must be a multiple of %s", n->mult.text);
        BAIL();
    }
    if ((n->kw & K_FORMAT) &&
        !eg_format_check_number((eg_format_t)n->fmt, c->doc->text + t->off, t->len)) {
        problem(c, t, NULL, 0, "format", "format",
                WX(json_string(eg_format_name((eg_format_t)n->fmt))), "must be %s",
                format_words((eg_format_t)n->fmt));
        BAIL();
    }
    return bad;
}

static __attribute__((noinline)) int check_array(vctx_t *c, const eg_snode_t *n,
                                                 const eg_jr_tok_t *t)
{
    int bad = 0;
    if ((n->kw & K_MINITEMS) && t->count < n->minitems) {
        problem(c, t, NULL, 0, "minItems", "minItems", WX(json_integer((json_int_t)n->minitems)),
                "must have at least %llu item%s", (unsigned long long)n->minitems,
                n->minitems == 1 ? "" : "s");
        BAIL();
    }
    if ((n->kw & K_MAXITEMS) && t->count > n->maxitems) {
        problem(c, t, NULL, 0, "maxItems", "maxItems", WX(json_integer((json_int_t)n->maxitems)),
                "must have at most %llu item%s", (unsigned long long)n->maxitems,
                n->maxitems == 1 ? "" : "s");
        BAIL();
    }
    if (n->kw & K_UNIQUE) {
        uint32_t di = 0, dj = 0;
        int dup = unique_items(c, t, &di, &dj);
        if (dup < 0) return 1; /* out of memory or of budget */
        if (dup) {
            json_t *x = WX(json_array());
            if (x)
                json_array_append_new(x, json_integer(di)),
                    json_array_append_new(x, json_integer(dj));
            problem(c, t, NULL, 0, "uniqueItems", "duplicates", x,
                    "must not contain duplicate items (items %u and %u are equal)", di, dj);
            BAIL();
        }
    }
    if (n->kw & K_CONTAINS) {
        uint64_t k = 0;
        const eg_jr_tok_t *it = t + 1;
        for (uint32_t i = 0; i < t->count && !c->spent; i++, it = c->doc->toks + it->end)
            k += (uint64_t)passes(c, n->contains, it);
        if (c->spent) return 1;
        if (k < n->mincontains) {
            problem(c, t, NULL, 0, "contains", "minContains",
                    WX(json_integer((json_int_t)n->mincontains)),
                    "must contain at least %llu item%s matching the 'contains' schema",
                    (unsigned long long)n->mincontains, n->mincontains == 1 ? "" : "s");
            BAIL();
        }
        if (k > n->maxcontains) {
            problem(c, t, NULL, 0, "maxContains", "maxContains",
                    WX(json_integer((json_int_t)n->maxcontains)),
                    "must contain at most %llu item%s matching the 'contains' schema",
                    (unsigned long long)n->maxcontains, n->maxcontains == 1 ? "" : "s");
            BAIL();
        }
    }
    if (n->kw & (K_PREFIX | K_ITEMS)) {
        const eg_jr_tok_t *it = t + 1;
        for (uint32_t i = 0; i < t->count; i++, it = c->doc->toks + it->end) {
            uint32_t sub = i < n->nprefix ? c->s->idx[n->prefix + i] : n->items;
            if (sub == SNONE) continue;
            if (c->s->nodes[sub].kw == K_FALSE && i >= n->nprefix) {
                c->path[c->npath++] = eg_sseg_index(i);
                problem(c, it, NULL, 0, "items", "maxItems", WX(json_integer(n->nprefix)),
                        "is not allowed (at most %u item%s)", n->nprefix,
                        n->nprefix == 1 ? "" : "s");
                c->npath--;
                BAIL();
                continue;
            }
            if (descend(c, sub, it, NULL, i)) BAIL();
        }
    }
    return bad;
}

#define SEEN_MAX 1024 /* properties tracked for required in a stack bitset */

static __attribute__((noinline)) int check_object(vctx_t *c, const eg_snode_t *n,
                                                  const eg_jr_tok_t *t)
{
    int bad = 0;
    const eg_schema_t *s = c->s;
    if ((n->kw & K_MINPROPS) && t->count < n->minprops) {
        problem(c, t, NULL, 0, "minProperties", "minProperties",
                WX(json_integer((json_int_t)n->minprops)), "must have at least %llu propert%s",
                (unsigned long long)n->minprops, n->minprops == 1 ? "y" : "ies");
        BAIL();
    }
    if ((n->kw & K_MAXPROPS) && t->count > n->maxprops) {
        problem(c, t, NULL, 0, "maxProperties", "maxProperties",
                WX(json_integer((json_int_t)n->maxprops)), "must have at most %llu propert%s",
                (unsigned long long)n->maxprops, n->maxprops == 1 ? "y" : "ies");
        BAIL();
    }
    uint64_t seen[SEEN_MAX / 64];
    int track = (n->kw & K_REQ) && n->nprops <= SEEN_MAX;
    if (track) memset(seen, 0, ((n->nprops + 63) / 64) * sizeof(uint64_t));
    if (n->kw & (K_PROPS | K_PPROPS | K_ADDL)) {
        const eg_jr_tok_t *k = t + 1;
        for (uint32_t i = 0; i < t->count; i++) {
            const eg_jr_tok_t *v = k + 1;
            strv_t key;
            if (str_get(c->doc, k, &key)) {
                c->oom = 1;
                return 1;
            }
            int matched = 0;
            /* an unescaped key is read in place, and the input goes on after it */
            size_t room = k->escaped ? 0 : c->doc->len - k->off;
            uint32_t pi = n->nprops ? eg_schema_prop_find(s, n, key.p, key.len, room) : SNONE;
            if (pi != SNONE) {
                matched = 1;
                if (track) seen[pi / 64] |= 1ull << (pi % 64);
                if (descend(c, s->props[n->props + pi].node, v, k, 0)) bad = 1;
            }
            for (uint32_t j = 0; j < n->npprops && !(bad && c->quiet); j++) {
                const spprop_t *pp = &s->pprops[n->pprops + j];
                int m = re_match(c, pp->re, key.p, key.len);
                if (m < 0) {
                    c->path[c->npath++] = eg_sseg_key(c->doc, k);
                    problem(c, v, NULL, 0, "patternProperties", "pattern",
                            WX(json_string(s->res[pp->re].src)),
                            "could not be checked against the pattern '%s' (match limit reached)",
                            s->res[pp->re].src);
                    c->npath--;
                    bad = 1;
                } else if (m) {
                    matched = 1;
                    if (descend(c, pp->node, v, k, 0)) bad = 1;
                }
            }
            if (!matched && (n->kw & K_ADDL) && !(bad && c->quiet)) {
                if (s->nodes[n->addl].kw == K_FALSE) {
                    c->path[c->npath++] = eg_sseg_key(c->doc, k);
                    problem(c, v, NULL, 0, "additionalProperties", NULL, NULL, "is not allowed");
                    c->npath--;
                    bad = 1;
                } else if (descend(c, n->addl, v, k, 0)) {
                    bad = 1;
                }
            }
            if (key.heap) free(key.heap);
            if (bad && (c->quiet || c->oom || !c->rep->e)) return 1;
            k = c->doc->toks + v->end;
        }
    }
    for (uint32_t i = 0; i < n->nreq; i++) {
        const sreq_t *r = &s->reqs[n->req + i];
        int present = track && r->prop != SNONE ? (int)(seen[r->prop / 64] >> (r->prop % 64) & 1)
                                                : eg_jr_get(c->doc, t, r->name, r->len) != NULL;
        if (!present) {
            problem(c, NULL, r->name, r->len, "required", NULL, NULL, "is required");
            BAIL();
        }
    }
    if (n->kw & K_PNAMES) {
        const eg_jr_tok_t *k = t + 1;
        for (uint32_t i = 0; i < t->count; i++) {
            const eg_jr_tok_t *v = k + 1;
            if (!passes(c, n->pnames, k)) {
                c->path[c->npath++] = eg_sseg_key(c->doc, k);
                problem(c, k, NULL, 0, "propertyNames", NULL, NULL,
                        "is not an allowed property name");
                c->npath--;
                BAIL();
            }
            k = c->doc->toks + v->end;
        }
    }
    for (uint32_t i = 0; i < n->ndreq; i++) {
        const sdep_t *d = &s->deps[n->dreq + i];
        if (!eg_jr_get(c->doc, t, d->name, d->len)) continue;
        for (uint32_t j = 0; j < d->nreq; j++) {
            const sreq_t *r = &s->reqs[d->req + j];
            if (eg_jr_get(c->doc, t, r->name, r->len)) continue;
            problem(c, NULL, r->name, r->len, "dependentRequired", NULL, NULL,
                    "is required when '%s' is present", d->name);
            BAIL();
        }
    }
    for (uint32_t i = 0; i < n->ndsch; i++) {
        const sdep_t *d = &s->deps[n->dsch + i];
        if (eg_jr_get(c->doc, t, d->name, d->len) && validate(c, d->node, t)) BAIL();
    }
    return bad;
}

static int validate(vctx_t *c, uint32_t at, const eg_jr_tok_t *t)
{
    const eg_schema_t *s = c->s;
    const eg_snode_t *n = &s->nodes[at];
    int bad = 0;
    if (!n->kw && n->if_ == SNONE) return 0;
    if (c->spent || ++c->steps > c->budget) {
        c->spent = 1;
        return 1;
    }
    if (c->depth >= EG_SCHEMA_MAX_DEPTH) {
        problem(c, NULL, NULL, 0, "depth", "max_depth", WX(json_integer(EG_SCHEMA_MAX_DEPTH)),
                "is nested too deeply to be validated");
        return 1;
    }
    c->depth++;
    if (n->kw & K_FALSE) {
        problem(c, t, NULL, 0, "false", NULL, NULL, "is not allowed");
        bad = 1;
        goto done;
    }
    unsigned tt;
    switch (t->type) {
    case EG_JR_NULL:
        tt = EG_ST_NULL;
        break;
    case EG_JR_TRUE:
    case EG_JR_FALSE:
        tt = EG_ST_BOOLEAN;
        break;
    case EG_JR_INT:
        tt = EG_ST_INTEGER | EG_ST_NUMBER;
        break;
    case EG_JR_REAL:
        tt = EG_ST_NUMBER | (isfinite(t->dval) && t->dval == floor(t->dval) ? EG_ST_INTEGER : 0);
        break;
    case EG_JR_STRING:
        tt = EG_ST_STRING;
        break;
    case EG_JR_ARRAY:
        tt = EG_ST_ARRAY;
        break;
    default:
        tt = EG_ST_OBJECT;
        break;
    }
    if ((n->kw & K_TYPE) && !(n->types & tt)) {
        type_problem(c, t, n->types);
        bad = 1;
        /* the other keywords would only repeat it in other words */
        goto done;
    }
#undef BAIL
#define BAIL()                                                                                     \
    do {                                                                                           \
        bad = 1;                                                                                   \
        if (c->quiet || c->oom || !c->rep->e) goto done;                                           \
    } while (0)
    if (!(n->kw & (K_CONST | K_ENUM))) goto by_type;
    if (n->kw & K_CONST && !cval_eq(s, c->doc, t, n->cnst)) {
        problem(c, t, NULL, 0, "const", "const", WX(json_incref(n->jconst)),
                "must be equal to the constant");
        BAIL();
    }
    if (n->kw & K_ENUM) {
        int ok = 0;
        if (n->neh) {
            /* a long enum: only the values whose hash is the instance's */
            int oom = 0;
            uint64_t h = tok_hash(c->doc, t, &oom);
            const sehash_t *e = s->ehash + n->eh;
            size_t lo = eg_sehash_lower(e, n->neh, h);
            for (; lo < n->neh && e[lo].hash == h && !ok; lo++)
                ok = cval_eq(s, c->doc, t, e[lo].cval);
            if (oom) c->oom = 1;
        } else {
            for (uint32_t i = 0; i < n->nenum && !ok; i++)
                ok = cval_eq(s, c->doc, t, s->idx[n->enm + i]);
        }
        if (!ok) {
            char list[256] = "";
            size_t o = 0;
            for (size_t i = 0; writing(c) && i < json_array_size(n->jenum) && o < sizeof(list) - 8;
                 i++) {
                char *one = json_dumps(json_array_get(n->jenum, i), JSON_ENCODE_ANY | JSON_COMPACT);
                if (one) {
                    o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", one);
                    free(one);
                }
            }
            if (o >= sizeof(list) - 8) strcpy(list + sizeof(list) - 8, ", ...");
            problem(c, t, NULL, 0, "enum", "allowed", WX(json_incref(n->jenum)),
                    "must be one of: %s", list);
            BAIL();
        }
    }
by_type:
    if ((tt & EG_ST_NUMBER) && (n->kw & (K_NUMBER | K_FORMAT)) && check_number(c, n, t)) BAIL();
    if (tt == EG_ST_STRING && (n->kw & (K_STRING | K_FORMAT)) && check_string(c, n, t)) BAIL();
    if (tt == EG_ST_ARRAY && (n->kw & K_ARRAY) && check_array(c, n, t)) BAIL();
    if (tt == EG_ST_OBJECT && (n->kw & K_OBJECT) && check_object(c, n, t)) BAIL();
    /* the applicators are rare in request bodies: one test skips them all */
    if (!(n->kw & (K_REF | K_ALLOF | K_ANYOF | K_ONEOF | K_NOT)) && n->if_ == SNONE) goto done;
    if ((n->kw & K_REF) && validate(c, n->ref, t)) BAIL();
    for (uint32_t i = 0; i < n->nallof; i++)
        if (validate(c, s->idx[n->allof + i], t)) BAIL();
    if (n->kw & K_ANYOF) {
        int ok = 0;
        for (uint32_t i = 0; i < n->nanyof && !ok; i++)
            ok = passes(c, s->idx[n->anyof + i], t);
        if (!ok) {
            problem(c, t, NULL, 0, "anyOf", NULL, NULL,
                    "must match at least one of the allowed schemas");
            BAIL();
        }
    }
    if (n->kw & K_ONEOF) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < n->noneof && k < 2; i++)
            k += (uint32_t)passes(c, s->idx[n->oneof + i], t);
        if (k != 1) {
            problem(c, t, NULL, 0, "oneOf", "matched", WX(json_integer(k)),
                    k ? "must match exactly one of the allowed schemas, not several"
                      : "must match exactly one of the allowed schemas");
            BAIL();
        }
    }
    if ((n->kw & K_NOT) && passes(c, n->not_, t)) {
        problem(c, t, NULL, 0, "not", NULL, NULL, "must not match the schema");
        BAIL();
    }
    if (n->if_ != SNONE) {
        uint32_t next = passes(c, n->if_, t) ? n->then_ : n->else_;
        if (next != SNONE && validate(c, next, t)) BAIL();
    }
done:
    c->depth--;
    return bad;
}

void eg_sc_init(vctx_t *c, const eg_schema_t *s, eg_schema_report_t *rep)
{
    c->s = s;
    c->doc = NULL;
    c->rep = rep;
    c->quiet = 0;
    c->depth = 0;
    c->oom = 0;
    c->spent = 0;
    c->steps = 0;
    c->budget = EG_SCHEMA_MIN_BUDGET;
    c->added = 0;
    c->npath = 0;
    c->bump.used = 0;
    c->gctx = NULL;
    c->md = NULL;
    rep->count = 0;
}

void eg_sc_fini(vctx_t *c)
{
    /* most validations match no pattern: no calls into PCRE2 then */
    if (c->md) pcre2_match_data_free(c->md);
    if (c->gctx) pcre2_general_context_free(c->gctx);
    c->md = NULL;
    c->gctx = NULL;
}

int eg_sc_validate(vctx_t *c, uint32_t at, const eg_jr_tok_t *t)
{
    return validate(c, at, t);
}

void eg_sc_type_problem(vctx_t *c, const eg_jr_tok_t *t, unsigned types)
{
    type_problem(c, t, types);
}

int eg_sc_writing(const vctx_t *c)
{
    return writing(c);
}

int eg_sc_re_match(vctx_t *c, uint32_t re, const char *p, size_t n)
{
    return re_match(c, re, p, n);
}

int eg_schema_validate(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *tok,
                       eg_schema_report_t *rep)
{
    /* the context is large (the path stack): one per call on the stack */
    vctx_t c;
    eg_sc_init(&c, s, rep);
    c.doc = doc;
    /* linear in the instance: a schema whose applicators multiply (anyOf
     * of anyOf of ...) cannot make one body cost more than this */
    c.budget = EG_SCHEMA_MIN_BUDGET + EG_SCHEMA_BUDGET_PER_TOKEN * doc->ntoks;
    int bad = validate(&c, s->root, tok ? tok : doc->toks);
    if (c.spent) { /* one problem for the whole value */
        c.spent = 0;
        c.quiet = 0;
        c.npath = 0;
        problem(&c, NULL, NULL, 0, "complexity", "max_steps", json_integer((json_int_t)c.budget),
                "could not be validated within the work limit");
        bad = 1;
    }
    if (bad && !rep->count) rep->count = 1;
    eg_sc_fini(&c);
    return c.oom ? EG_ENOMEM : bad ? EG_ERANGE : EG_OK;
}

/* schema_compile.c - a JSON Schema (a ytree node) compiled into flat nodes.
 *
 * One recursive walk over the document. Every schema node met is memoised
 * by its ytree node, so a $ref target is compiled once and a recursive
 * schema ("#" inside properties) just points back at an index. After the
 * walk, a depth-first search over the in-place applicators ($ref, allOf,
 * anyOf, oneOf, not) refuses cycles that would recurse without ever
 * descending into the instance. Everything refused carries file:line:col;
 * everything not understood is told to opts->warn, never silently dropped.
 */
#include "schema_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMPILE_MAX_DEPTH 1000 /* recursion of the walk itself ($ref chains across files) */
#define MAX_DOCS          64   /* files one schema may reach through $ref */

typedef struct {
    const eg_ynode_t *y;
    uint32_t node;
} memo_t;

typedef struct {
    char *path;
    const eg_ydoc_t *doc;
} loaded_t;

typedef struct {
    eg_schema_t *s;
    const eg_schema_opts_t *opts;
    int oas30;
    char *err;
    size_t errlen;
    memo_t *memo; /* open addressing on the ytree node's address */
    size_t capmemo, nmemo;
    loaded_t docs[MAX_DOCS];
    size_t ndocs;
    int depth;
    const char *file; /* the last file name owned */
} cctx_t;

#define N(c, i) (&(c)->s->nodes[i])

/* Grows *arr (of elem-sized items) to hold one more; EG_ENOMEM when not. */
static int grow(void *arrp, size_t *cap, size_t n, size_t elem)
{
    void **arr = arrp;
    if (n < *cap) return EG_OK;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p) return EG_ENOMEM;
    *arr = p;
    *cap = ncap;
    return EG_OK;
}

static const char *own(eg_schema_t *s, const char *str, size_t len)
{
    if (grow(&s->strs, &s->capstrs, s->nstrs, sizeof(*s->strs))) return NULL;
    char *p = malloc(len + 1);
    if (!p) return NULL;
    memcpy(p, str, len);
    p[len] = '\0';
    s->strs[s->nstrs++] = p;
    return p;
}

static int cerr(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cerr(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return eg_yerr(doc, at, c->err, c->errlen, "%s", msg);
}

static void cwarn(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cwarn(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt, ...)
{
    if (!c->opts || !c->opts->warn) return;
    char msg[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    eg_yerr(doc, at, line, sizeof(line), "%s", msg);
    c->opts->warn(c->opts->warn_ctx, line);
}

/* ---- memo ---- */

static size_t memo_slot(const cctx_t *c, const eg_ynode_t *y)
{
    uintptr_t h = (uintptr_t)y;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (c->capmemo - 1);
}

static uint32_t memo_get(const cctx_t *c, const eg_ynode_t *y)
{
    if (!c->capmemo) return SNONE;
    for (size_t i = memo_slot(c, y);; i = (i + 1) & (c->capmemo - 1)) {
        if (!c->memo[i].y) return SNONE;
        if (c->memo[i].y == y) return c->memo[i].node;
    }
}

static int memo_put(cctx_t *c, const eg_ynode_t *y, uint32_t node)
{
    if ((c->nmemo + 1) * 2 > c->capmemo) {
        size_t ncap = c->capmemo ? c->capmemo * 2 : 64;
        memo_t *old = c->memo;
        size_t ocap = c->capmemo;
        if (!(c->memo = calloc(ncap, sizeof(*c->memo)))) {
            c->memo = old;
            return EG_ENOMEM;
        }
        c->capmemo = ncap;
        for (size_t i = 0; i < ocap; i++) {
            if (!old[i].y) continue;
            size_t j = memo_slot(c, old[i].y);
            while (c->memo[j].y)
                j = (j + 1) & (ncap - 1);
            c->memo[j] = old[i];
        }
        free(old);
    }
    size_t j = memo_slot(c, y);
    while (c->memo[j].y)
        j = (j + 1) & (c->capmemo - 1);
    c->memo[j].y = y;
    c->memo[j].node = node;
    c->nmemo++;
    return EG_OK;
}

/* ---- scalars ---- */

static int is_plain(const eg_ynode_t *y, const char *word)
{
    return y && y->kind == EG_Y_SCALAR && !y->quoted && strcmp(y->str, word) == 0;
}

static int scalar_bool(const eg_ynode_t *y, int *out)
{
    if (is_plain(y, "true"))
        *out = 1;
    else if (is_plain(y, "false"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* A JSON number's syntax (YAML plain scalars written like JSON numbers). */
static int number_syntax(const char *s)
{
    if (*s == '-') s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9')
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return 0;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static int scalar_num(eg_schema_t *s, const eg_ynode_t *y, snum_t *out)
{
    if (!y || y->kind != EG_Y_SCALAR || y->quoted || !number_syntax(y->str)) return 1;
    errno = 0;
    double d = strtod(y->str, NULL);
    if (errno == ERANGE && isinf(d)) return 1;
    snum_t n = {own(s, y->str, y->len), d, 0, 0};
    if (!n.text) return EG_ENOMEM;
    if (!strpbrk(y->str, ".eE")) {
        char *end;
        errno = 0;
        long long v = strtoll(y->str, &end, 10);
        if (!errno && !*end) {
            n.i = v;
            n.isint = 1;
        }
    }
    *out = n;
    return EG_OK;
}

/* scalar_num: EG_OK, EG_ENOMEM, or 1 when y is not a number. */

/* A non-negative integer (2.0 counts: the suite writes maxLength: 2.0). */
static int scalar_count(eg_schema_t *s, const eg_ynode_t *y, uint64_t *out)
{
    snum_t n;
    if (scalar_num(s, y, &n) != EG_OK || n.d < 0 || n.d != floor(n.d)) return -1;
    *out = n.isint ? (uint64_t)n.i : n.d >= 1.8e19 ? UINT64_MAX : (uint64_t)n.d;
    return 0;
}

/* ---- lists ---- */

static int idx_add(eg_schema_t *s, uint32_t v)
{
    if (grow(&s->idx, &s->capidx, s->nidx, sizeof(*s->idx))) return EG_ENOMEM;
    s->idx[s->nidx++] = v;
    return EG_OK;
}

/* The enum/const value y appended to the cval tape; *root its index. */
static int cval_add(cctx_t *c, const eg_ynode_t *y, uint32_t *root, int is_key)
{
    eg_schema_t *s = c->s;
    if (grow(&s->cvals, &s->capcvals, s->ncvals, sizeof(*s->cvals))) return EG_ENOMEM;
    uint32_t at = (uint32_t)s->ncvals++;
    cval_t v = {0};
    int rc = EG_OK;
    if (y->kind == EG_Y_SCALAR) {
        if (y->quoted || is_key)
            v.type = CV_STRING; /* keys are strings, even plain 1 */
        else if (!strcmp(y->str, "null") || !strcmp(y->str, "~") || !y->len)
            v.type = CV_NULL;
        else if (!strcmp(y->str, "true"))
            v.type = CV_TRUE;
        else if (!strcmp(y->str, "false"))
            v.type = CV_FALSE;
        else if (scalar_num(s, y, &v.n) == EG_OK)
            v.type = CV_NUM;
        else
            v.type = CV_STRING; /* a plain YAML word */
        if (v.type == CV_STRING) {
            v.len = y->len;
            if (!(v.s = own(s, y->str, y->len))) return EG_ENOMEM;
        }
    } else {
        v.type = y->kind == EG_Y_MAP ? CV_OBJECT : CV_ARRAY;
        v.count = (uint32_t)y->n;
        size_t slots = y->kind == EG_Y_MAP ? 2 * y->n : y->n;
        for (size_t i = 0; i < slots && rc == EG_OK; i++) {
            uint32_t child;
            rc = cval_add(c, y->items[i], &child, y->kind == EG_Y_MAP && i % 2 == 0);
        }
    }
    v.end = (uint32_t)s->ncvals;
    s->cvals[at] = v;
    *root = at;
    return rc;
}

/* ---- regexes ---- */

/* ECMA-262 spells General_Category values long ("\p{Letter}",
 * "\p{gc=Decimal_Number}") where PCRE2 knows only the short aliases. */
static const char *const gc_long[][2] = {
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"},
    {"Titlecase_Letter", "Lt"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Mark", "M"},
    {"Combining_Mark", "M"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Nonspacing_Mark", "Mn"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Close_Punctuation", "Pe"},
    {"Final_Punctuation", "Pf"},
    {"Initial_Punctuation", "Pi"},
    {"Other_Punctuation", "Po"},
    {"Open_Punctuation", "Ps"},
    {"Symbol", "S"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Math_Symbol", "Sm"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Space_Separator", "Zs"},
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Unassigned", "Cn"},
    {"Private_Use", "Co"},
    {"Surrogate", "Cs"},
};

/* The pattern with every \p{...} / \P{...} written the way PCRE2 reads it
 * (long General_Category names shortened, "gc=" / "General_Category=" /
 * "sc=" / "Script=" prefixes dropped); NULL when out of memory. Other
 * escapes are copied with their backslash so "\\p{Letter}" stays literal. */
static char *ecma_props(const char *src, size_t len, size_t *outlen)
{
    char *out = malloc(len + 1); /* rewriting only ever shortens */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        out[o++] = src[i];
        if (src[i] != '\\' || i + 1 >= len) continue;
        out[o++] = src[++i];
        if ((src[i] != 'p' && src[i] != 'P') || i + 1 >= len || src[i + 1] != '{') continue;
        const char *name = src + i + 2, *end = memchr(name, '}', len - (size_t)(name - src));
        if (!end) continue;
        size_t n = (size_t)(end - name);
        static const char *const prefixes[] = {"General_Category=", "gc=", "Script=", "sc="};
        for (size_t k = 0; k < 4; k++) {
            size_t pl = strlen(prefixes[k]);
            if (n > pl && strncmp(name, prefixes[k], pl) == 0) {
                name += pl;
                n -= pl;
                break;
            }
        }
        const char *alias = NULL;
        for (size_t k = 0; k < sizeof(gc_long) / sizeof(gc_long[0]) && !alias; k++)
            if (strlen(gc_long[k][0]) == n && strncmp(gc_long[k][0], name, n) == 0)
                alias = gc_long[k][1];
        size_t al = alias ? strlen(alias) : n;
        out[o++] = '{';
        memcpy(out + o, alias ? alias : name, al);
        o += al;
        out[o++] = '}';
        i = (size_t)(end - src);
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

pcre2_code *eg_schema_regex(const char *src, size_t len, char *msg, size_t msglen, size_t *errpos)
{
    /* ECMA-262 without the flags: UTF code points (what "." and lengths
     * mean in JSON), \d \w \b ASCII-only as in ECMA (so no PCRE2_UCP),
     * \uHHHH and \u{...} escapes, "$" only at the very end, no \C. */
    size_t n = 0;
    char *pat = ecma_props(src, len, &n);
    pcre2_compile_context *cc = pat ? pcre2_compile_context_create(NULL) : NULL;
    pcre2_code *re = NULL;
    int code = 0, nomem = !cc;
    PCRE2_SIZE off = 0;
    if (cc) {
        pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
        re = pcre2_compile((PCRE2_SPTR)pat, n,
                           PCRE2_UTF | PCRE2_ALT_BSUX | PCRE2_DOLLAR_ENDONLY |
                               PCRE2_NEVER_BACKSLASH_C,
                           &code, &off, cc);
        pcre2_compile_context_free(cc);
    }
    free(pat);
    if (!re) {
        if (msg && msglen) {
            if (nomem)
                snprintf(msg, msglen, "out of memory");
            else
                pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, msglen);
        }
        if (errpos) *errpos = off;
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* the interpreter runs when JIT is missing */
    return re;
}

static int regex_add(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *y, const char *what,
                     uint32_t *out)
{
    eg_schema_t *s = c->s;
    if (y->kind != EG_Y_SCALAR) return cerr(c, doc, y, "'%s' must be a string", what);
    char msg[256];
    size_t off = 0;
    pcre2_code *re = eg_schema_regex(y->str, y->len, msg, sizeof(msg), &off);
    if (!re) return cerr(c, doc, y, "invalid %s '%s': %s at offset %zu", what, y->str, msg, off);
    const char *src = own(s, y->str, y->len);
    if (!src || grow(&s->res, &s->capres, s->nres, sizeof(*s->res))) {
        pcre2_code_free(re);
        return EG_ENOMEM;
    }
    size_t jitsize = 0;
    pcre2_pattern_info(re, PCRE2_INFO_JITSIZE, &jitsize);
    /* NULL (no fast path) also when out of memory: PCRE2 still matches it */
    s->res[s->nres] = (sregex_t){re, src, jitsize > 0, eg_fastre_compile(y->str, y->len)};
    *out = (uint32_t)s->nres++;
    return EG_OK;
}

/* ---- $ref ---- */

/* Decodes %XX escapes of a URI fragment in place; -1 on a bad one. */
static int pct_decode(char *p)
{
    char *o = p;
    for (; *p; p++) {
        if (*p != '%') {
            *o++ = *p;
            continue;
        }
        unsigned v = 0;
        for (int k = 1; k <= 2; k++) {
            char h = p[k];
            v <<= 4;
            if (h >= '0' && h <= '9')
                v |= (unsigned)(h - '0');
            else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
                v |= (unsigned)((h | 0x20) - 'a' + 10);
            else
                return -1;
        }
        if (!v) return -1;
        *o++ = (char)v;
        p += 2;
    }
    *o = '\0';
    return 0;
}

/* The node at JSON pointer `ptr` (decoded, "" = root) under root, or NULL. */
static const eg_ynode_t *pointer_get(const eg_ynode_t *root, char *ptr)
{
    const eg_ynode_t *n = root;
    while (n && *ptr) {
        if (*ptr != '/') return NULL;
        char *tok = ++ptr, *o = tok;
        for (; *ptr && *ptr != '/'; ptr++) {
            if (*ptr == '~' && ptr[1] == '1')
                *o++ = '/', ptr++;
            else if (*ptr == '~' && ptr[1] == '0')
                *o++ = '~', ptr++;
            else
                *o++ = *ptr;
        }
        char saved = *ptr;
        *o = '\0';
        if (n->kind == EG_Y_MAP) {
            n = eg_ymap_get(n, tok);
        } else if (n->kind == EG_Y_SEQ) {
            char *end;
            errno = 0;
            unsigned long k = strtoul(tok, &end, 10);
            n = (!*tok || *end || errno || (tok[0] == '0' && tok[1]) || k >= n->n) ? NULL
                                                                                   : n->items[k];
        } else {
            n = NULL;
        }
        *ptr = saved;
    }
    return n;
}

static int compile_node(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *y, uint32_t *out);

/* The document `file` names, relative to `from`'s directory, through the loader. */
static int ref_doc(cctx_t *c, const eg_ydoc_t *from, const eg_ynode_t *at, const char *file,
                   const eg_ydoc_t **out)
{
    if (!c->opts || !c->opts->load)
        return cerr(c, from, at, "$ref to another file ('%s') needs a loader", file);
    const char *name = eg_ydoc_name(from);
    const char *slash = file[0] == '/' ? NULL : strrchr(name, '/');
    size_t dlen = slash ? (size_t)(slash - name) + 1 : 0;
    size_t flen = strlen(file);
    char *path = malloc(dlen + flen + 1);
    if (!path) return EG_ENOMEM;
    memcpy(path, name, dlen);
    memcpy(path + dlen, file, flen + 1);
    int rc = EG_OK;
    for (size_t i = 0; i < c->ndocs; i++) {
        if (strcmp(c->docs[i].path, path) == 0) {
            *out = c->docs[i].doc;
            goto done;
        }
    }
    if (c->ndocs == MAX_DOCS) {
        rc = cerr(c, from, at, "$ref reaches more than %d files", MAX_DOCS);
        goto done;
    }
    char lerr[512] = "";
    const eg_ydoc_t *d = NULL;
    rc = c->opts->load(c->opts->load_ctx, path, &d, lerr, sizeof(lerr));
    if (rc == EG_ENOMEM) goto done;
    if (rc != EG_OK || !d) {
        rc = cerr(c, from, at, "$ref '%s': %s", file, lerr[0] ? lerr : "cannot be loaded");
        goto done;
    }
    c->docs[c->ndocs].path = path;
    c->docs[c->ndocs++].doc = d;
    path = NULL;
    *out = d;
done:
    free(path);
    return rc;
}

static int compile_ref(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t *out)
{
    if (v->kind != EG_Y_SCALAR) return cerr(c, doc, v, "'$ref' must be a string");
    char *ref = strdup(v->str);
    if (!ref) return EG_ENOMEM;
    int rc = EG_OK;
    char *hash = strchr(ref, '#');
    char *frag = hash ? hash + 1 : ref + strlen(ref);
    if (hash) *hash = '\0';
    const eg_ydoc_t *target = doc;
    if (strstr(ref, "://") || strncmp(ref, "urn:", 4) == 0) {
        rc = cerr(c, doc, v, "$ref '%s': remote references are not supported", v->str);
        goto done;
    }
    if (*ref && (rc = ref_doc(c, doc, v, ref, &target)) != EG_OK) goto done;
    if (*frag && *frag != '/') {
        rc = cerr(c, doc, v, "$ref '%s': only JSON pointer fragments are supported, not anchors",
                  v->str);
        goto done;
    }
    if (pct_decode(frag)) {
        rc = cerr(c, doc, v, "$ref '%s': bad %%-escape", v->str);
        goto done;
    }
    const eg_ynode_t *t = pointer_get(eg_ydoc_root(target), frag);
    if (!t) {
        rc = cerr(c, doc, v, "$ref target '%s' does not exist", v->str);
        goto done;
    }
    rc = compile_node(c, target, t, out);
done:
    free(ref);
    return rc;
}

/* ---- keywords ---- */

static int type_bit(const eg_ynode_t *y, uint8_t *bit)
{
    static const char *const names[] = {"null",   "boolean", "integer", "number",
                                        "string", "array",   "object"};
    if (y->kind != EG_Y_SCALAR) return -1;
    for (unsigned i = 0; i < 7; i++)
        if (strcmp(y->str, names[i]) == 0) {
            *bit = (uint8_t)(1u << i);
            return 0;
        }
    return -1;
}

static int schema_list(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, const char *k,
                       uint32_t *off, uint32_t *n, int nonempty)
{
    if (v->kind != EG_Y_SEQ || (nonempty && v->n == 0))
        return cerr(c, doc, v, "'%s' must be a%s array of schemas", k,
                    nonempty ? " non-empty" : "n");
    uint32_t *tmp = malloc((v->n ? v->n : 1) * sizeof(*tmp));
    if (!tmp) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++)
        rc = compile_node(c, doc, v->items[i], &tmp[i]);
    *off = (uint32_t)c->s->nidx;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++)
        rc = idx_add(c->s, tmp[i]);
    *n = (uint32_t)v->n;
    free(tmp);
    return rc;
}

/* Properties are sorted by length, then bytes: a lookup mostly settles on
 * the lengths and calls memcmp only among names as long as the key. */
static int prop_cmp(const void *a, const void *b)
{
    const sprop_t *x = a, *y = b;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return memcmp(x->name, y->name, x->len);
}

static int compile_props(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t at)
{
    if (v->kind != EG_Y_MAP) return cerr(c, doc, v, "'properties' must be an object");
    eg_schema_t *s = c->s;
    sprop_t *tmp = malloc((v->n ? v->n : 1) * sizeof(*tmp));
    if (!tmp) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
        const eg_ynode_t *key = v->items[2 * i];
        tmp[i].len = (uint32_t)key->len;
        eg_schema_prop_words(key->str, key->len, &tmp[i].w0, &tmp[i].w1);
        if (!(tmp[i].name = own(s, key->str, key->len)))
            rc = EG_ENOMEM;
        else
            rc = compile_node(c, doc, v->items[2 * i + 1], &tmp[i].node);
    }
    if (rc == EG_OK) {
        qsort(tmp, v->n, sizeof(*tmp), prop_cmp);
        N(c, at)->props = (uint32_t)s->nprops;
        N(c, at)->nprops = (uint32_t)v->n;
        for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
            if ((rc = grow(&s->props, &s->capprops, s->nprops, sizeof(*s->props)))) break;
            s->props[s->nprops++] = tmp[i];
        }
        /* the lookup table: open addressing, at most half full */
        uint32_t size = 4;
        while (rc == EG_OK && size < 2 * v->n)
            size *= 2;
        uint32_t tab = (uint32_t)s->nidx;
        for (uint32_t i = 0; i < size && rc == EG_OK; i++)
            rc = idx_add(s, SNONE);
        for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
            uint32_t h = eg_schema_prop_hash(tmp[i].w0, tmp[i].w1, tmp[i].len) & (size - 1);
            while (s->idx[tab + h] != SNONE)
                h = (h + 1) & (size - 1);
            s->idx[tab + h] = (uint32_t)i;
        }
        N(c, at)->ptab = tab;
        N(c, at)->pmask = size - 1;
    }
    free(tmp);
    return rc;
}

static int compile_pprops(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t at)
{
    if (v->kind != EG_Y_MAP) return cerr(c, doc, v, "'patternProperties' must be an object");
    eg_schema_t *s = c->s;
    spprop_t *tmp = malloc((v->n ? v->n : 1) * sizeof(*tmp));
    if (!tmp) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
        rc = regex_add(c, doc, v->items[2 * i], "patternProperties pattern", &tmp[i].re);
        if (rc == EG_OK) rc = compile_node(c, doc, v->items[2 * i + 1], &tmp[i].node);
    }
    N(c, at)->pprops = (uint32_t)s->npprops;
    N(c, at)->npprops = (uint32_t)v->n;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
        if ((rc = grow(&s->pprops, &s->cappprops, s->npprops, sizeof(*s->pprops)))) break;
        s->pprops[s->npprops++] = tmp[i];
    }
    free(tmp);
    return rc;
}

static int compile_required(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t at)
{
    if (v->kind != EG_Y_SEQ) return cerr(c, doc, v, "'required' must be an array of strings");
    eg_schema_t *s = c->s;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *it = v->items[i];
        if (it->kind != EG_Y_SCALAR)
            return cerr(c, doc, it, "'required' must be an array of strings");
        for (size_t j = 0; j < i; j++)
            if (strcmp(v->items[j]->str, it->str) == 0)
                return cerr(c, doc, it, "'required' lists '%s' twice", it->str);
    }
    N(c, at)->req = (uint32_t)s->nreqs;
    N(c, at)->nreq = (uint32_t)v->n;
    for (size_t i = 0; i < v->n; i++) {
        if (grow(&s->reqs, &s->capreqs, s->nreqs, sizeof(*s->reqs))) return EG_ENOMEM;
        sreq_t r = {own(s, v->items[i]->str, v->items[i]->len), (uint32_t)v->items[i]->len, SNONE};
        if (!r.name) return EG_ENOMEM;
        s->reqs[s->nreqs++] = r;
    }
    return EG_OK;
}

/* cval i's structural hash, as tok_hash (schema_check.c) hashes an
 * instance value. */
static uint64_t cval_hash(const eg_schema_t *s, uint32_t i)
{
    const cval_t *v = &s->cvals[i];
    switch (v->type) {
    case CV_NULL:
        return 1;
    case CV_FALSE:
        return 2;
    case CV_TRUE:
        return 3;
    case CV_NUM:
        return eg_schema_hash_num(v->n.isint ? (double)v->n.i : v->n.d);
    case CV_STRING:
        return eg_schema_hash_str(v->s, v->len);
    case CV_ARRAY: {
        uint64_t h = 6 + v->count;
        uint32_t ci = i + 1;
        for (uint32_t k = 0; k < v->count; k++, ci = s->cvals[ci].end)
            h = eg_schema_mix64(h * 31 + cval_hash(s, ci));
        return h;
    }
    default: {
        uint64_t h = 7 + v->count;
        uint32_t ci = i + 1;
        for (uint32_t k = 0; k < v->count; k++, ci = s->cvals[ci + 1].end)
            h += eg_schema_mix64(cval_hash(s, ci) * 3 + cval_hash(s, ci + 1));
        return eg_schema_mix64(h);
    }
    }
}

static int sehash_cmp(const void *a, const void *b)
{
    const sehash_t *x = a, *y = b;
    return x->hash < y->hash ? -1 : x->hash > y->hash;
}

#define ENUM_HASHED 8 /* enums longer than this are looked up by hash */

static int compile_enum(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t at)
{
    if (v->kind != EG_Y_SEQ) return cerr(c, doc, v, "'enum' must be an array");
    uint32_t *tmp = malloc((v->n ? v->n : 1) * sizeof(*tmp));
    if (!tmp) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++)
        rc = cval_add(c, v->items[i], &tmp[i], 0);
    N(c, at)->enm = (uint32_t)c->s->nidx;
    N(c, at)->nenum = (uint32_t)v->n;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++)
        rc = idx_add(c->s, tmp[i]);
    eg_schema_t *s = c->s;
    if (rc == EG_OK && v->n > ENUM_HASHED) {
        N(c, at)->eh = (uint32_t)s->nehash;
        N(c, at)->neh = (uint32_t)v->n;
        for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
            if ((rc = grow(&s->ehash, &s->capehash, s->nehash, sizeof(*s->ehash)))) break;
            s->ehash[s->nehash++] = (sehash_t){cval_hash(s, tmp[i]), tmp[i]};
        }
        if (rc == EG_OK) qsort(s->ehash + N(c, at)->eh, v->n, sizeof(*s->ehash), sehash_cmp);
    }
    free(tmp);
    if (rc == EG_OK && !(N(c, at)->jenum = eg_ynode_to_json(v))) rc = EG_ENOMEM;
    return rc;
}

/* dependentRequired (schemas = 0: name -> [names]) or dependentSchemas
 * (schemas = 1: name -> schema), appended as one range once every
 * subschema is compiled (they append ranges of their own). */
static int compile_deps(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, uint32_t at,
                        int schemas)
{
    const char *k = schemas ? "dependentSchemas" : "dependentRequired";
    if (v->kind != EG_Y_MAP) return cerr(c, doc, v, "'%s' must be an object", k);
    eg_schema_t *s = c->s;
    sdep_t *tmp = calloc(v->n ? v->n : 1, sizeof(*tmp));
    if (!tmp) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
        const eg_ynode_t *key = v->items[2 * i], *val = v->items[2 * i + 1];
        tmp[i].len = (uint32_t)key->len;
        tmp[i].node = SNONE;
        if (!(tmp[i].name = own(s, key->str, key->len))) {
            rc = EG_ENOMEM;
            break;
        }
        if (schemas) {
            rc = compile_node(c, doc, val, &tmp[i].node);
            continue;
        }
        if (val->kind != EG_Y_SEQ) {
            rc = cerr(c, doc, val, "'%s' values must be arrays of strings", k);
            break;
        }
        tmp[i].req = (uint32_t)s->nreqs;
        tmp[i].nreq = (uint32_t)val->n;
        for (size_t j = 0; j < val->n && rc == EG_OK; j++) {
            const eg_ynode_t *it = val->items[j];
            if (it->kind != EG_Y_SCALAR) {
                rc = cerr(c, doc, it, "'%s' values must be arrays of strings", k);
            } else if (grow(&s->reqs, &s->capreqs, s->nreqs, sizeof(*s->reqs))) {
                rc = EG_ENOMEM;
            } else {
                sreq_t r = {own(s, it->str, it->len), (uint32_t)it->len, SNONE};
                if (!r.name)
                    rc = EG_ENOMEM;
                else
                    s->reqs[s->nreqs++] = r;
            }
        }
    }
    uint32_t off = (uint32_t)s->ndeps;
    for (size_t i = 0; i < v->n && rc == EG_OK; i++) {
        if ((rc = grow(&s->deps, &s->capdeps, s->ndeps, sizeof(*s->deps)))) break;
        s->deps[s->ndeps++] = tmp[i];
    }
    free(tmp);
    if (rc != EG_OK) return rc;
    eg_snode_t *nd = N(c, at);
    if (schemas)
        nd->dsch = off, nd->ndsch = (uint32_t)v->n;
    else
        nd->dreq = off, nd->ndreq = (uint32_t)v->n;
    nd->kw |= K_DEPS;
    return EG_OK;
}

/* Keywords that say something about a schema but assert nothing. */
static int is_annotation(const char *k, int root)
{
    static const char *const ann[] = {
        "title",     "description",  "default",  "examples",         "readOnly",
        "writeOnly", "deprecated",   "$comment", "$schema",          "discriminator",
        "xml",       "externalDocs", "example",  "contentMediaType", "contentEncoding"};
    if (strncmp(k, "x-", 2) == 0) return 1; /* OpenAPI specification extensions */
    if (root && strcmp(k, "$id") == 0) return 1;
    for (size_t i = 0; i < sizeof(ann) / sizeof(ann[0]); i++)
        if (strcmp(k, ann[i]) == 0) return 1;
    return 0;
}

static int num_kw(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, const char *k, snum_t *out)
{
    int rc = scalar_num(c->s, v, out);
    if (rc == EG_ENOMEM) return rc;
    if (rc) return cerr(c, doc, v, "'%s' must be a number", k);
    return EG_OK;
}

static int count_kw(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *v, const char *k,
                    uint64_t *out)
{
    if (scalar_count(c->s, v, out))
        return cerr(c, doc, v, "'%s' must be a non-negative integer", k);
    return EG_OK;
}

/* One keyword k with value v of the schema map compiled into node `at`. */
static int compile_kw(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *key, const eg_ynode_t *v,
                      uint32_t at, int *nullable, int *xmin_bool, int *xmax_bool)
{
    const char *k = key->str;
    int rc = EG_OK, b;
    uint32_t sub;
#define KW(name)  (strcmp(k, name) == 0)
#define SET(flag) (N(c, at)->kw |= (flag))
    if (KW("type")) {
        uint8_t t = 0, bit;
        if (v->kind == EG_Y_SCALAR) {
            if (type_bit(v, &bit)) return cerr(c, doc, v, "unknown type '%s'", v->str);
            t = bit;
        } else if (v->kind == EG_Y_SEQ && v->n) {
            for (size_t i = 0; i < v->n; i++) {
                if (type_bit(v->items[i], &bit))
                    return cerr(c, doc, v->items[i], "unknown type '%s'",
                                v->items[i]->kind == EG_Y_SCALAR ? v->items[i]->str
                                                                 : "(not a string)");
                t |= bit;
            }
        } else {
            return cerr(c, doc, v, "'type' must be a type name or an array of them");
        }
        N(c, at)->types = t;
        SET(K_TYPE);
    } else if (KW("properties")) {
        if ((rc = compile_props(c, doc, v, at)) == EG_OK) SET(K_PROPS);
    } else if (KW("patternProperties")) {
        if ((rc = compile_pprops(c, doc, v, at)) == EG_OK) SET(K_PPROPS);
    } else if (KW("additionalProperties")) {
        if ((rc = compile_node(c, doc, v, &sub)) == EG_OK) {
            N(c, at)->addl = sub;
            SET(K_ADDL);
        }
    } else if (KW("required")) {
        if ((rc = compile_required(c, doc, v, at)) == EG_OK) SET(K_REQ);
    } else if (KW("items")) {
        if (v->kind == EG_Y_SEQ)
            return cerr(c, doc, v, "'items' must be a schema%s",
                        c->oas30 ? "" : " (use prefixItems for tuples)");
        if ((rc = compile_node(c, doc, v, &sub)) == EG_OK) {
            N(c, at)->items = sub;
            SET(K_ITEMS);
        }
    } else if (KW("prefixItems") && !c->oas30) {
        uint32_t off, n;
        if ((rc = schema_list(c, doc, v, k, &off, &n, 1)) == EG_OK) {
            N(c, at)->prefix = off;
            N(c, at)->nprefix = n;
            SET(K_PREFIX);
        }
    } else if (KW("enum")) {
        if ((rc = compile_enum(c, doc, v, at)) == EG_OK) SET(K_ENUM);
    } else if (KW("const")) {
        if ((rc = cval_add(c, v, &sub, 0)) == EG_OK) {
            N(c, at)->cnst = sub;
            if (!(N(c, at)->jconst = eg_ynode_to_json(v))) return EG_ENOMEM;
            SET(K_CONST);
        }
    } else if (KW("minimum")) {
        if ((rc = num_kw(c, doc, v, k, &N(c, at)->min)) == EG_OK) SET(K_MIN);
    } else if (KW("maximum")) {
        if ((rc = num_kw(c, doc, v, k, &N(c, at)->max)) == EG_OK) SET(K_MAX);
    } else if (KW("exclusiveMinimum") || KW("exclusiveMaximum")) {
        int lo = KW("exclusiveMinimum");
        if (c->oas30 && scalar_bool(v, &b) == 0) {
            *(lo ? xmin_bool : xmax_bool) = b;
        } else if ((rc = num_kw(c, doc, v, k, lo ? &N(c, at)->xmin : &N(c, at)->xmax)) == EG_OK) {
            SET(lo ? K_XMIN : K_XMAX);
        }
    } else if (KW("multipleOf")) {
        if ((rc = num_kw(c, doc, v, k, &N(c, at)->mult)) != EG_OK) return rc;
        if (!(N(c, at)->mult.d > 0)) return cerr(c, doc, v, "'multipleOf' must be greater than 0");
        N(c, at)->mult_dec =
            eg_schema_dec(v->str, v->len, &N(c, at)->mult_m, &N(c, at)->mult_e) == 0;
        SET(K_MULT);
    } else if (KW("minLength")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->minlen)) == EG_OK) SET(K_MINLEN);
    } else if (KW("maxLength")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->maxlen)) == EG_OK) SET(K_MAXLEN);
    } else if (KW("minItems")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->minitems)) == EG_OK) SET(K_MINITEMS);
    } else if (KW("maxItems")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->maxitems)) == EG_OK) SET(K_MAXITEMS);
    } else if (KW("minProperties")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->minprops)) == EG_OK) SET(K_MINPROPS);
    } else if (KW("maxProperties")) {
        if ((rc = count_kw(c, doc, v, k, &N(c, at)->maxprops)) == EG_OK) SET(K_MAXPROPS);
    } else if (KW("uniqueItems")) {
        if (scalar_bool(v, &b)) return cerr(c, doc, v, "'uniqueItems' must be true or false");
        if (b) SET(K_UNIQUE);
    } else if (KW("pattern")) {
        if ((rc = regex_add(c, doc, v, "pattern", &sub)) == EG_OK) {
            N(c, at)->pattern = sub;
            SET(K_PATTERN);
        }
    } else if (KW("format")) {
        eg_format_t f;
        if (v->kind != EG_Y_SCALAR) return cerr(c, doc, v, "'format' must be a string");
        if (eg_format_lookup(v->str, v->len, &f) != EG_OK)
            return cerr(c, doc, v, "unknown format '%s'", v->str);
        N(c, at)->fmt = (uint8_t)f;
        if (f != EG_FMT_NONE && f != EG_FMT_ANNOTATION) SET(K_FORMAT);
    } else if (KW("allOf") || KW("anyOf") || KW("oneOf")) {
        uint32_t off, n;
        if ((rc = schema_list(c, doc, v, k, &off, &n, 1)) != EG_OK) return rc;
        eg_snode_t *nd = N(c, at);
        if (k[1] == 'l')
            nd->allof = off, nd->nallof = n, nd->kw |= K_ALLOF;
        else if (k[0] == 'a')
            nd->anyof = off, nd->nanyof = n, nd->kw |= K_ANYOF;
        else
            nd->oneof = off, nd->noneof = n, nd->kw |= K_ONEOF;
    } else if (KW("not")) {
        if ((rc = compile_node(c, doc, v, &sub)) == EG_OK) {
            N(c, at)->not_ = sub;
            SET(K_NOT);
        }
    } else if (KW("$ref")) {
        if ((rc = compile_ref(c, doc, v, &sub)) == EG_OK) {
            N(c, at)->ref = sub;
            SET(K_REF);
        }
    } else if (KW("$defs") || KW("definitions")) {
        /* compiled even when unused, so their mistakes are found at load */
        if (v->kind != EG_Y_MAP) return cerr(c, doc, v, "'%s' must be an object", k);
        for (size_t i = 0; i < v->n && rc == EG_OK; i++)
            rc = compile_node(c, doc, v->items[2 * i + 1], &sub);
    } else if (!c->oas30 &&
               (KW("contains") || KW("propertyNames") || KW("if") || KW("then") || KW("else"))) {
        /* 2020-12 applicators OpenAPI 3.0 does not have */
        if ((rc = compile_node(c, doc, v, &sub)) != EG_OK) return rc;
        eg_snode_t *nd = N(c, at);
        if (k[0] == 'c')
            nd->contains = sub, nd->kw |= K_CONTAINS;
        else if (k[0] == 'p')
            nd->pnames = sub, nd->kw |= K_PNAMES;
        else if (k[0] == 'i')
            nd->if_ = sub;
        else if (k[0] == 't')
            nd->then_ = sub;
        else
            nd->else_ = sub;
    } else if (!c->oas30 && (KW("minContains") || KW("maxContains"))) {
        uint64_t n64;
        if ((rc = count_kw(c, doc, v, k, &n64)) != EG_OK) return rc;
        if (k[1] == 'i')
            N(c, at)->mincontains = n64;
        else
            N(c, at)->maxcontains = n64;
    } else if (!c->oas30 && (KW("dependentRequired") || KW("dependentSchemas"))) {
        rc = compile_deps(c, doc, v, at, k[9] == 'S');
    } else if (KW("nullable") && c->oas30) {
        if (scalar_bool(v, nullable)) return cerr(c, doc, v, "'nullable' must be true or false");
    } else if (!is_annotation(k, at == 0)) {
        cwarn(c, doc, key, "keyword '%s' is not supported and is ignored", k);
    }
#undef KW
#undef SET
    return rc;
}

static uint32_t node_new(cctx_t *c)
{
    eg_schema_t *s = c->s;
    if (grow(&s->nodes, &s->capnodes, s->nnodes, sizeof(*s->nodes))) return SNONE;
    eg_snode_t *n = &s->nodes[s->nnodes];
    memset(n, 0, sizeof(*n));
    n->pattern = n->addl = n->items = n->not_ = n->ref = n->cnst = SNONE;
    n->if_ = n->then_ = n->else_ = n->contains = n->pnames = SNONE;
    n->mincontains = 1;
    n->maxcontains = UINT64_MAX;
    return (uint32_t)s->nnodes++;
}

static int compile_node(cctx_t *c, const eg_ydoc_t *doc, const eg_ynode_t *y, uint32_t *out)
{
    uint32_t at = memo_get(c, y);
    if (at != SNONE) {
        *out = at;
        return EG_OK;
    }
    if (c->depth >= COMPILE_MAX_DEPTH) return cerr(c, doc, y, "schema nested too deeply");
    if ((at = node_new(c)) == SNONE || memo_put(c, y, at)) return EG_ENOMEM;
    const char *name = eg_ydoc_name(doc);
    if (!c->file || strcmp(c->file, name) != 0) /* one copy per file, not per node */
        if (!(c->file = own(c->s, name, strlen(name)))) return EG_ENOMEM;
    N(c, at)->file = c->file;
    N(c, at)->line = y->line;
    N(c, at)->col = y->col;
    *out = at;
    int b;
    if (scalar_bool(y, &b) == 0) {
        if (!b) N(c, at)->kw = K_FALSE;
        return EG_OK;
    }
    if (y->kind != EG_Y_MAP) return cerr(c, doc, y, "a schema must be an object or a boolean");
    int rc = EG_OK, nullable = 0, xmin_bool = 0, xmax_bool = 0;
    c->depth++;
    for (size_t i = 0; i < y->n && rc == EG_OK; i++)
        rc = compile_kw(c, doc, y->items[2 * i], y->items[2 * i + 1], at, &nullable, &xmin_bool,
                        &xmax_bool);
    c->depth--;
    if (rc != EG_OK) return rc;
    eg_snode_t *n = N(c, at);
    /* OpenAPI 3.0: nullable widens an explicit type; boolean exclusive
     * bounds turn minimum/maximum exclusive */
    if (nullable && (n->kw & K_TYPE)) n->types |= EG_ST_NULL;
    if (xmin_bool && (n->kw & K_MIN)) n->xmin = n->min, n->kw = (n->kw & ~K_MIN) | K_XMIN;
    if (xmax_bool && (n->kw & K_MAX)) n->xmax = n->max, n->kw = (n->kw & ~K_MAX) | K_XMAX;
    /* required names that are declared properties are checked off while
     * the properties are walked; the others are looked up */
    for (uint32_t i = 0; i < n->nreq; i++) {
        sreq_t *r = &c->s->reqs[n->req + i];
        sprop_t key = {r->name, r->len, 0, 0, 0, 0, 0};
        sprop_t *p =
            n->nprops ? bsearch(&key, c->s->props + n->props, n->nprops, sizeof(sprop_t), prop_cmp)
                      : NULL;
        if (p) r->prop = (uint32_t)(p - (c->s->props + n->props));
    }
    return EG_OK;
}

/* ---- cycles ---- */

static int visit(cctx_t *c, uint32_t at, uint8_t *color)
{
    if (color[at] == 2) return EG_OK;
    eg_snode_t *n = N(c, at);
    if (color[at] == 1) {
        if (c->err && c->errlen)
            snprintf(c->err, c->errlen,
                     "%s:%d:%d: $ref cycle: this schema refers back to itself without checking "
                     "any value in between",
                     n->file, n->line, n->col);
        return EG_EPARSE;
    }
    color[at] = 1;
    int rc = EG_OK;
    const eg_schema_t *s = c->s;
    if (n->kw & K_REF) rc = visit(c, n->ref, color);
    if (!rc && (n->kw & K_NOT)) rc = visit(c, n->not_, color);
    for (uint32_t i = 0; !rc && i < n->nallof; i++)
        rc = visit(c, s->idx[n->allof + i], color);
    for (uint32_t i = 0; !rc && i < n->nanyof; i++)
        rc = visit(c, s->idx[n->anyof + i], color);
    for (uint32_t i = 0; !rc && i < n->noneof; i++)
        rc = visit(c, s->idx[n->oneof + i], color);
    const uint32_t inplace[] = {n->if_, n->then_, n->else_};
    for (size_t i = 0; !rc && i < 3; i++)
        if (inplace[i] != SNONE) rc = visit(c, inplace[i], color);
    for (uint32_t i = 0; !rc && i < n->ndsch; i++)
        rc = visit(c, s->deps[n->dsch + i].node, color);
    color[at] = 2;
    return rc;
}

/* Every node once; a grey node met again is a cycle of in-place applicators. */
static int find_cycles(cctx_t *c)
{
    uint8_t *color = calloc(c->s->nnodes ? c->s->nnodes : 1, 1);
    if (!color) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < c->s->nnodes && rc == EG_OK; i++)
        rc = visit(c, (uint32_t)i, color);
    free(color);
    return rc;
}

/* ---- public ---- */

void eg_schema_free(eg_schema_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nnodes; i++) {
        json_decref(s->nodes[i].jenum);
        json_decref(s->nodes[i].jconst);
    }
    for (size_t i = 0; i < s->nres; i++) {
        pcre2_code_free(s->res[i].code);
        free(s->res[i].fast);
    }
    for (size_t i = 0; i < s->nstrs; i++)
        free(s->strs[i]);
    pcre2_match_context_free(s->mctx);
    free(s->nodes);
    free(s->props);
    free(s->reqs);
    free(s->deps);
    free(s->ehash);
    free(s->pprops);
    free(s->idx);
    free(s->fslots);
    free(s->fenums);
    free(s->cvals);
    free(s->res);
    free(s->strs);
    free(s);
}

int eg_schema_compile(const eg_ydoc_t *doc, const eg_ynode_t *at, const eg_schema_opts_t *opts,
                      eg_schema_t **out, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    cctx_t c = {0};
    c.opts = opts;
    c.oas30 = opts && opts->openapi30;
    c.err = err;
    c.errlen = errlen;
    int rc = EG_ENOMEM;
    if (!(c.s = calloc(1, sizeof(*c.s)))) goto done;
    /* a pathological pattern stops at these bounds and fails its value */
    if (!(c.s->mctx = pcre2_match_context_create(NULL))) goto done;
    pcre2_set_match_limit(c.s->mctx, 100000);
    pcre2_set_depth_limit(c.s->mctx, 5000);
    pcre2_set_heap_limit(c.s->mctx, 2048); /* KiB */
    if (!at) at = eg_ydoc_root(doc);
    if (!at) {
        rc = eg_yerr(doc, NULL, err, errlen, "the schema document is empty");
        goto done;
    }
    if ((rc = compile_node(&c, doc, at, &c.s->root)) != EG_OK) goto done;
    rc = find_cycles(&c);
    if (rc == EG_OK) rc = eg_schema_fast_prepare(c.s);
done:
    for (size_t i = 0; i < c.ndocs; i++)
        free(c.docs[i].path);
    free(c.memo);
    if (rc != EG_OK) {
        eg_schema_free(c.s);
        return rc;
    }
    *out = c.s;
    return EG_OK;
}

/* The types a node admits as far as its own type/enum/const/$ref/allOf say. */
static unsigned node_types(const eg_schema_t *s, uint32_t at, int depth)
{
    if (at == SNONE || depth > 16) return 0;
    const eg_snode_t *n = &s->nodes[at];
    if (n->kw & K_TYPE) return n->types;
    if (n->kw & (K_ENUM | K_CONST)) {
        unsigned t = 0;
        uint32_t cnt = n->kw & K_ENUM ? n->nenum : 1;
        for (uint32_t i = 0; i < cnt; i++) {
            const cval_t *v = &s->cvals[n->kw & K_ENUM ? s->idx[n->enm + i] : n->cnst];
            static const unsigned map[] = {EG_ST_NULL,   EG_ST_BOOLEAN, EG_ST_BOOLEAN, 0,
                                           EG_ST_STRING, EG_ST_ARRAY,   EG_ST_OBJECT};
            t |= v->type == CV_NUM ? (v->n.isint ? EG_ST_INTEGER : EG_ST_NUMBER) : map[v->type];
        }
        return t;
    }
    if (n->kw & K_REF) return node_types(s, n->ref, depth + 1);
    for (uint32_t i = 0; i < n->nallof; i++) {
        unsigned t = node_types(s, s->idx[n->allof + i], depth + 1);
        if (t) return t;
    }
    return 0;
}

unsigned eg_schema_types(const eg_schema_t *s)
{
    return s ? node_types(s, s->root, 0) : 0;
}

unsigned eg_schema_item_types(const eg_schema_t *s)
{
    if (!s) return 0;
    uint32_t at = s->root;
    for (int d = 0; d < 16 && at != SNONE; d++) {
        const eg_snode_t *n = &s->nodes[at];
        if (n->kw & K_ITEMS) return node_types(s, n->items, 0);
        at = n->kw & K_REF ? n->ref : SNONE;
    }
    return 0;
}

/* catalog.c - the catalog of canonical error codes (see catalog.h).
 *
 * Entries live in one array; built-in ones point at static data, and
 * strings from catalog files live in a pool owned by the catalog. Every
 * spelling (canonical code, per-dialect spellings, synonyms) is indexed,
 * lower-cased, in one open-addressing hash table rebuilt after each load, so
 * the gateway's per-request lookups cost one hash and one compare and never
 * allocate. A catalog file is validated completely before anything is
 * applied, so a bad file leaves the catalog as it was.
 */
#include "errgate/catalog.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog_builtin.h"
#include "errgate/error.h"
#include "jsonw.h"
#include "ytree.h"

typedef struct {
    const char *key; /* any spelling, compared case-insensitively */
    uint32_t len;
    uint32_t idx; /* entry index + 1; 0 = empty slot */
} slot_t;

typedef struct pool_s {
    struct pool_s *next;
    char data[];
} pool_t;

struct eg_catalog_s {
    eg_catalog_entry_t *entries;
    int *generic; /* per entry */
    struct {
        const char *const *names;
        size_t n;
        int unlisted; /* eg_catalog_set_listed */
        const eg_spelling_t *answers; /* answered_as: {dialect, code} */
        size_t nanswers;
    } *safe; /* per entry: eg_catalog_safe_details, listing */
    size_t n, cap;
    slot_t *table;
    size_t tcap; /* power of two */
    int by_status[200]; /* 400..599 -> entry index + 1 */
    char *docs_template;
    pool_t *pool;
};

static uint32_t hash_ci(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint32_t)(unsigned char)tolower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}

static void *pool_alloc(eg_catalog_t *cat, size_t n)
{
    pool_t *p = malloc(sizeof(*p) + n);
    if (!p) return NULL;
    p->next = cat->pool;
    cat->pool = p;
    return p->data;
}

static const char *pool_str(eg_catalog_t *cat, const char *s)
{
    size_t n = strlen(s);
    char *p = pool_alloc(cat, n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

/* Inserts key -> idx unless the key is already taken (first wins). */
static void table_put(eg_catalog_t *cat, const char *key, size_t idx)
{
    size_t len = strlen(key);
    size_t mask = cat->tcap - 1;
    for (size_t i = hash_ci(key, len) & mask;; i = (i + 1) & mask) {
        slot_t *s = &cat->table[i];
        if (!s->idx) {
            s->key = key;
            s->len = (uint32_t)len;
            s->idx = (uint32_t)idx + 1;
            return;
        }
        if (s->len == len && strncasecmp(s->key, key, len) == 0) return;
    }
}

static int rebuild(eg_catalog_t *cat)
{
    size_t keys = 0;
    for (size_t i = 0; i < cat->n; i++)
        keys += 1 + cat->entries[i].nspellings + cat->entries[i].nsynonyms;
    size_t tcap = 64;
    while (tcap < keys * 2) tcap *= 2;
    slot_t *t = calloc(tcap, sizeof(*t));
    if (!t) return EG_ENOMEM;
    free(cat->table);
    cat->table = t;
    cat->tcap = tcap;
    /* canonical codes first so a spelling can never shadow a code */
    for (size_t i = 0; i < cat->n; i++) table_put(cat, cat->entries[i].code, i);
    for (size_t i = 0; i < cat->n; i++) {
        const eg_catalog_entry_t *e = &cat->entries[i];
        for (size_t k = 0; k < e->nspellings; k++) table_put(cat, e->spellings[k].spelling, i);
        for (size_t k = 0; k < e->nsynonyms; k++) table_put(cat, e->synonyms[k], i);
    }
    memset(cat->by_status, 0, sizeof(cat->by_status));
    for (size_t i = 0; i < cat->n; i++) {
        int st = cat->entries[i].status;
        if (st < 400 || st > 599) continue;
        int *slot = &cat->by_status[st - 400];
        if (!*slot || (cat->generic[i] && !cat->generic[*slot - 1])) *slot = (int)i + 1;
    }
    return EG_OK;
}

static int grow(eg_catalog_t *cat, size_t need)
{
    if (need <= cat->cap) return EG_OK;
    size_t ncap = cat->cap ? cat->cap * 2 : 64;
    while (ncap < need) ncap *= 2;
    eg_catalog_entry_t *e = realloc(cat->entries, ncap * sizeof(*e));
    if (!e) return EG_ENOMEM;
    cat->entries = e;
    int *g = realloc(cat->generic, ncap * sizeof(*g));
    if (!g) return EG_ENOMEM;
    cat->generic = g;
    void *sf = realloc(cat->safe, ncap * sizeof(*cat->safe));
    if (!sf) return EG_ENOMEM;
    cat->safe = sf;
    memset(cat->safe + cat->cap, 0, (ncap - cat->cap) * sizeof(*cat->safe));
    cat->cap = ncap;
    return EG_OK;
}

/* Which of the entry's strings an error may take without checking them
 * again for JSON escaping (see eg_error_t.plain), and their lengths: an
 * error made from the entry measures nothing. */
static void entry_plain(eg_catalog_entry_t *e)
{
    const char *s[] = {[EG_S_CODE] = e->code, [EG_S_TYPE] = e->type, [EG_S_TITLE] = e->title,
                       [EG_S_MESSAGE] = e->message};
    _Static_assert(sizeof(s) / sizeof(s[0]) == sizeof(e->len) / sizeof(e->len[0]), "one length per string");
    e->plain = 0;
    for (unsigned i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
        size_t n = s[i] ? strlen(s[i]) : 0;
        e->len[i] = n < UINT32_MAX ? (uint32_t)n : UINT32_MAX;
        if (s[i] && eg_jsonw_is_plain(s[i], n)) e->plain |= 1u << i;
    }
}

int eg_catalog_new_builtin(eg_catalog_t **out)
{
    eg_catalog_t *cat = calloc(1, sizeof(*cat));
    if (!cat) return EG_ENOMEM;
    int rc = grow(cat, eg__builtin_catalog_count);
    for (size_t i = 0; !rc && i < eg__builtin_catalog_count; i++) {
        cat->entries[i] = eg__builtin_catalog[i].e;
        entry_plain(&cat->entries[i]);
        cat->generic[i] = eg__builtin_catalog[i].generic;
        cat->n++;
    }
    for (size_t k = 0; !rc && k < eg__builtin_safe_count; k++)
        for (size_t i = 0; i < cat->n; i++)
            if (strcmp(cat->entries[i].code, eg__builtin_safe[k].code) == 0) {
                cat->safe[i].names = eg__builtin_safe[k].names;
                cat->safe[i].n = eg__builtin_safe[k].n;
            }
    if (!rc) rc = rebuild(cat);
    if (rc) {
        eg_catalog_free(cat);
        return rc;
    }
    *out = cat;
    return EG_OK;
}

void eg_catalog_free(eg_catalog_t *cat)
{
    if (!cat) return;
    for (pool_t *p = cat->pool, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    free(cat->entries);
    free(cat->generic);
    free(cat->safe);
    free(cat->table);
    free(cat->docs_template);
    free(cat);
}

static const eg_catalog_entry_t *lookup(const eg_catalog_t *cat, const char *code, size_t n)
{
    if (!cat || !code || !cat->tcap) return NULL;
    size_t mask = cat->tcap - 1;
    for (size_t i = hash_ci(code, n) & mask;; i = (i + 1) & mask) {
        const slot_t *s = &cat->table[i];
        if (!s->idx) return NULL;
        if (s->len == n && strncasecmp(s->key, code, n) == 0) return &cat->entries[s->idx - 1];
    }
}

const eg_catalog_entry_t *eg_catalog_find(const eg_catalog_t *cat, const char *code)
{
    if (!code) return NULL;
    const eg_catalog_entry_t *e = lookup(cat, code, strlen(code));
    return e && strcmp(e->code, code) == 0 ? e : NULL;
}

const eg_catalog_entry_t *eg_catalog_lookup(const eg_catalog_t *cat, const char *code, size_t n)
{
    return lookup(cat, code, n);
}

const eg_catalog_entry_t *eg_catalog_for_status(const eg_catalog_t *cat, int status)
{
    if (!cat || status < 400 || status > 599) return NULL;
    int i = cat->by_status[status - 400];
    if (!i) i = cat->by_status[status < 500 ? 0 : 100];
    return i ? &cat->entries[i - 1] : NULL;
}

const char *eg_catalog_spelling(const eg_catalog_entry_t *e, const char *dialect)
{
    /* the first byte tells most dialect names apart without a call */
    for (size_t i = 0; e && dialect && i < e->nspellings; i++)
        if (e->spellings[i].dialect[0] == dialect[0] && strcmp(e->spellings[i].dialect, dialect) == 0)
            return e->spellings[i].spelling;
    return NULL;
}

size_t eg_catalog_safe_details(const eg_catalog_t *cat, const eg_catalog_entry_t *e, const char *const **names)
{
    *names = NULL;
    if (!cat || !e || e < cat->entries || e >= cat->entries + cat->n) return 0;
    size_t i = (size_t)(e - cat->entries);
    *names = cat->safe[i].names;
    return cat->safe[i].n;
}

const char *eg_catalog_answered_as(const eg_catalog_t *cat, const eg_catalog_entry_t *e, const char *dialect)
{
    if (!cat || !e || !dialect || e < cat->entries || e >= cat->entries + cat->n) return NULL;
    size_t i = (size_t)(e - cat->entries);
    for (size_t k = 0; k < cat->safe[i].nanswers; k++)
        if (strcmp(cat->safe[i].answers[k].dialect, dialect) == 0) return cat->safe[i].answers[k].spelling;
    return NULL;
}

int eg_catalog_set_listed(eg_catalog_t *cat, const char *code, int listed)
{
    const eg_catalog_entry_t *e = eg_catalog_find(cat, code);
    if (!e) return EG_ENOENT;
    cat->safe[e - cat->entries].unlisted = !listed;
    return EG_OK;
}

int eg_catalog_listed(const eg_catalog_t *cat, const eg_catalog_entry_t *e)
{
    if (!cat || !e || e < cat->entries || e >= cat->entries + cat->n) return 0;
    return !cat->safe[e - cat->entries].unlisted;
}

size_t eg_catalog_count(const eg_catalog_t *cat)
{
    return cat ? cat->n : 0;
}

const eg_catalog_entry_t *eg_catalog_at(const eg_catalog_t *cat, size_t i)
{
    return cat && i < cat->n ? &cat->entries[i] : NULL;
}

const char *eg_catalog_docs_template(const eg_catalog_t *cat)
{
    return cat->docs_template;
}

int eg_catalog_set_docs_template(eg_catalog_t *cat, const char *tmpl)
{
    char *c = NULL;
    if (tmpl && !(c = strdup(tmpl))) return EG_ENOMEM;
    free(cat->docs_template);
    cat->docs_template = c;
    return EG_OK;
}

size_t eg_catalog_docs_url(const eg_catalog_t *cat, const eg_catalog_entry_t *e, char *buf,
                           size_t cap)
{
    const char *src = e && e->docs ? e->docs : cat ? cat->docs_template : NULL;
    if (!e || !src) {
        if (cap) buf[0] = '\0';
        return 0;
    }
    size_t len = 0, clen = strlen(e->code);
    for (const char *p = src; *p;) {
        const char *piece = p;
        size_t n = 1;
        if (!e->docs && strncmp(p, "{code}", 6) == 0) {
            piece = e->code;
            n = clen;
            p += 6;
        } else {
            p++;
        }
        for (size_t i = 0; i < n; i++, len++)
            if (len + 1 < cap) buf[len] = piece[i];
    }
    /* a template without {code} is one page: the code is its anchor */
    if (!e->docs && !strstr(src, "{code}"))
        for (size_t i = 0; i <= clen; i++, len++)
            if (len + 1 < cap) buf[len] = i ? e->code[i - 1] : '#';
    if (cap) buf[len < cap ? len : cap - 1] = '\0';
    return len;
}

/* --- catalog files --- */

static int is_code(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

typedef struct {
    eg_catalog_t *cat;
    const eg_ydoc_t *doc;
    char *err;
    size_t errlen;
    int apply; /* 0: validate only; 1: apply (already validated) */
} lctx_t;

static const eg_catalog_entry_t *find_any(const eg_catalog_t *cat, const char *s)
{
    return lookup(cat, s, strlen(s));
}

static int str_field(lctx_t *c, const eg_ynode_t *v, const char **dst)
{
    const char *s;
    int rc = eg_yscalar_str(c->doc, v, &s, c->err, c->errlen);
    if (rc) return rc;
    if (c->apply && !(*dst = pool_str(c->cat, s))) return EG_ENOMEM;
    return EG_OK;
}

/* One `code: {...}` entry: validate (apply == 0) or apply it. */
static int load_entry(lctx_t *c, const eg_ynode_t *k, const eg_ynode_t *v)
{
    eg_catalog_t *cat = c->cat;
    if (!is_code(k->str))
        return eg_yerr(c->doc, k, c->err, c->errlen,
                       "code '%s' must be snake_case (a-z, 0-9, _)", k->str);
    if (v->kind != EG_Y_MAP)
        return eg_yerr(c->doc, v, c->err, c->errlen, "code '%s' must be a map", k->str);
    const eg_catalog_entry_t *cur = eg_catalog_find(cat, k->str);
    const eg_catalog_entry_t *other = find_any(cat, k->str);
    if (!cur && other)
        return eg_yerr(c->doc, k, c->err, c->errlen, "code '%s' is already a spelling of '%s'",
                       k->str, other->code);
    if (!cur && !eg_ymap_get(v, "status"))
        return eg_yerr(c->doc, v, c->err, c->errlen, "new code '%s' needs a status", k->str);
    eg_catalog_entry_t e;
    size_t idx = cur ? (size_t)(cur - cat->entries) : cat->n;
    const char *const *safe_names = NULL;
    size_t nsafe = 0;
    int set_safe = 0;
    eg_spelling_t *answers = NULL;
    size_t nanswers = 0;
    int set_answers = 0;
    if (cur) e = *cur;
    else {
        memset(&e, 0, sizeof(e));
        e.code = k->str;
    }
    int rc;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *fk = v->items[2 * i], *fv = v->items[2 * i + 1];
        const char *f = fk->str;
        if (strcmp(f, "status") == 0) {
            long long st;
            if ((rc = eg_yscalar_int(c->doc, fv, 400, 599, &st, c->err, c->errlen))) return rc;
            e.status = (int)st;
        } else if (strcmp(f, "retryable") == 0) {
            if ((rc = eg_yscalar_bool(c->doc, fv, &e.retryable, c->err, c->errlen))) return rc;
        } else if (strcmp(f, "type") == 0) {
            if ((rc = str_field(c, fv, &e.type))) return rc;
        } else if (strcmp(f, "title") == 0) {
            if ((rc = str_field(c, fv, &e.title))) return rc;
        } else if (strcmp(f, "message") == 0) {
            if ((rc = str_field(c, fv, &e.message))) return rc;
        } else if (strcmp(f, "description") == 0) {
            if ((rc = str_field(c, fv, &e.description))) return rc;
        } else if (strcmp(f, "resolution") == 0) {
            if ((rc = str_field(c, fv, &e.resolution))) return rc;
        } else if (strcmp(f, "docs") == 0) {
            if ((rc = str_field(c, fv, &e.docs))) return rc;
        } else if (strcmp(f, "spellings") == 0) {
            if (fv->kind != EG_Y_MAP)
                return eg_yerr(c->doc, fv, c->err, c->errlen, "spellings: {dialect: SPELLING}");
            for (size_t j = 0; j < fv->n; j++) {
                const eg_ynode_t *sv = fv->items[2 * j + 1];
                if (sv->kind != EG_Y_SCALAR || !sv->len)
                    return eg_yerr(c->doc, sv, c->err, c->errlen, "a spelling must be a string");
                const eg_catalog_entry_t *o = find_any(cat, sv->str);
                if (o && o != cur)
                    return eg_yerr(c->doc, sv, c->err, c->errlen,
                                   "spelling '%s' already means '%s'", sv->str, o->code);
            }
            if (c->apply) {
                /* keep existing spellings for dialects the file does not mention */
                size_t n = fv->n + e.nspellings;
                eg_spelling_t *sp = pool_alloc(cat, n * sizeof(*sp));
                if (!sp) return EG_ENOMEM;
                size_t m = 0;
                for (size_t j = 0; j < fv->n; j++) {
                    sp[m].dialect = pool_str(cat, fv->items[2 * j]->str);
                    sp[m].spelling = pool_str(cat, fv->items[2 * j + 1]->str);
                    if (!sp[m].dialect || !sp[m].spelling) return EG_ENOMEM;
                    m++;
                }
                for (size_t j = 0; j < e.nspellings; j++)
                    if (!eg_ymap_get(fv, e.spellings[j].dialect)) sp[m++] = e.spellings[j];
                e.spellings = sp;
                e.nspellings = m;
            }
        } else if (strcmp(f, "answered_as") == 0) {
            if (fv->kind != EG_Y_MAP)
                return eg_yerr(c->doc, fv, c->err, c->errlen, "answered_as: {dialect: code}");
            for (size_t j = 0; j < fv->n; j++) {
                const eg_ynode_t *sv = fv->items[2 * j + 1];
                if (sv->kind != EG_Y_SCALAR || !is_code(sv->str))
                    return eg_yerr(c->doc, sv, c->err, c->errlen, "answered_as: a snake_case code");
            }
            if (c->apply) { /* the map given replaces the code's */
                if (!(answers = pool_alloc(cat, (fv->n ? fv->n : 1) * sizeof(*answers)))) return EG_ENOMEM;
                for (size_t j = 0; j < fv->n; j++) {
                    answers[j].dialect = pool_str(cat, fv->items[2 * j]->str);
                    answers[j].spelling = pool_str(cat, fv->items[2 * j + 1]->str);
                    if (!answers[j].dialect || !answers[j].spelling) return EG_ENOMEM;
                }
                nanswers = fv->n;
                set_answers = 1;
            }
        } else if (strcmp(f, "safe_details") == 0) {
            if (fv->kind != EG_Y_SEQ)
                return eg_yerr(c->doc, fv, c->err, c->errlen, "safe_details: [member, ...]");
            for (size_t j = 0; j < fv->n; j++)
                if (fv->items[j]->kind != EG_Y_SCALAR || !fv->items[j]->len)
                    return eg_yerr(c->doc, fv->items[j], c->err, c->errlen, "a safe_details member is a name");
            if (c->apply) { /* the list given replaces the code's */
                const char **names = pool_alloc(cat, (fv->n ? fv->n : 1) * sizeof(*names));
                if (!names) return EG_ENOMEM;
                for (size_t j = 0; j < fv->n; j++)
                    if (!(names[j] = pool_str(cat, fv->items[j]->str))) return EG_ENOMEM;
                safe_names = names;
                nsafe = fv->n;
                set_safe = 1;
            }
        } else if (strcmp(f, "synonyms") == 0) {
            if (fv->kind != EG_Y_SEQ)
                return eg_yerr(c->doc, fv, c->err, c->errlen, "synonyms: [code, ...]");
            for (size_t j = 0; j < fv->n; j++) {
                const eg_ynode_t *sv = fv->items[j];
                if (sv->kind != EG_Y_SCALAR || !sv->len)
                    return eg_yerr(c->doc, sv, c->err, c->errlen, "a synonym must be a string");
                const eg_catalog_entry_t *o = find_any(cat, sv->str);
                if (o && o != cur)
                    return eg_yerr(c->doc, sv, c->err, c->errlen,
                                   "synonym '%s' already means '%s'", sv->str, o->code);
            }
            if (c->apply) {
                size_t n = fv->n + e.nsynonyms;
                const char **syn = pool_alloc(cat, n * sizeof(*syn));
                if (!syn) return EG_ENOMEM;
                for (size_t j = 0; j < e.nsynonyms; j++) syn[j] = e.synonyms[j];
                for (size_t j = 0; j < fv->n; j++)
                    if (!(syn[e.nsynonyms + j] = pool_str(cat, fv->items[j]->str))) return EG_ENOMEM;
                e.synonyms = syn;
                e.nsynonyms = n;
            }
        } else {
            return eg_yerr(c->doc, fk, c->err, c->errlen,
                           "unknown attribute '%s' (status, type, title, message, description, "
                           "resolution, docs, retryable, spellings, synonyms, safe_details, answered_as)", f);
        }
    }
    if (!c->apply) return EG_OK;
    if (!cur) {
        if (!(e.code = pool_str(cat, k->str))) return EG_ENOMEM;
        if (!e.title) e.title = e.code;
        if ((rc = grow(cat, cat->n + 1))) return rc;
        cat->generic[cat->n] = 0;
        cat->n++;
    }
    cat->entries[idx] = e;
    entry_plain(&cat->entries[idx]);
    if (set_safe) {
        cat->safe[idx].names = safe_names;
        cat->safe[idx].n = nsafe;
    }
    if (set_answers) {
        cat->safe[idx].answers = answers;
        cat->safe[idx].nanswers = nanswers;
    }
    return EG_OK;
}

static int load_doc(lctx_t *c, const eg_ynode_t *root)
{
    int rc;
    if (!root) return EG_OK; /* an empty file changes nothing */
    if (root->kind != EG_Y_MAP)
        return eg_yerr(c->doc, root, c->err, c->errlen, "a catalog file is a map (docs_url, codes)");
    for (size_t i = 0; i < root->n; i++) {
        const eg_ynode_t *k = root->items[2 * i], *v = root->items[2 * i + 1];
        if (strcmp(k->str, "docs_url") == 0) {
            if (v->kind != EG_Y_SCALAR || !v->len)
                return eg_yerr(c->doc, v, c->err, c->errlen, "docs_url must be a URL template");
            if (c->apply && (rc = eg_catalog_set_docs_template(c->cat, v->str))) return rc;
        } else if (strcmp(k->str, "codes") == 0) {
            if (v->kind != EG_Y_MAP)
                return eg_yerr(c->doc, v, c->err, c->errlen, "codes must be a map of code: {...}");
            for (size_t j = 0; j < v->n; j++)
                if ((rc = load_entry(c, v->items[2 * j], v->items[2 * j + 1]))) return rc;
        } else {
            return eg_yerr(c->doc, k, c->err, c->errlen,
                           "unknown key '%s' (docs_url, codes)", k->str);
        }
    }
    return EG_OK;
}

static int load(eg_catalog_t *cat, eg_ydoc_t *doc, char *err, size_t errlen)
{
    lctx_t c = {cat, doc, err, errlen, 0};
    int rc = load_doc(&c, eg_ydoc_root(doc));
    if (rc == EG_OK) {
        c.apply = 1;
        rc = load_doc(&c, eg_ydoc_root(doc));
        if (rc == EG_OK) rc = rebuild(cat);
    }
    eg_ydoc_free(doc);
    return rc;
}

int eg_catalog_load_yaml(eg_catalog_t *cat, const char *text, size_t len, const char *name,
                         char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_parse(text, len, name, &doc, err, errlen);
    return rc ? rc : load(cat, doc, err, errlen);
}

int eg_catalog_load_file(eg_catalog_t *cat, const char *path, char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_load_file(path, &doc, err, errlen);
    return rc ? rc : load(cat, doc, err, errlen);
}

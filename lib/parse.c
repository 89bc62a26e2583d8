/* parse.c - reading a JSON error back into the model through a dialect's
 * template, and scoring how well a document fits one (detection).
 *
 * Parsing is the inverse walk of render.c: a member whose name and JSON type
 * match a template slot fills that slot (the first of its chain); anything
 * else is kept, in details where the template merges details, in the field
 * error's extra inside an item, otherwise in meta. Nothing is dropped.
 *
 * The walk reads jsonr's token tape, not a jansson tree: members kept in
 * details stay the JSON text they came as (eg_error_keep_detail_raw), so a
 * translated error never builds a tree for context it only passes on.
 */
#include "dialect_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "jsonr.h"

typedef eg_jr_tok_t tok_t;

typedef struct {
    eg_error_t *e;
    const eg_dialect_t *d;
    const eg_catalog_t *cat;
    const eg_jr_doc_t *doc;
    long fe;        /* index of the current field error, -1 outside items */
    int only_unset; /* later JSON:API items: error-level slots fill only gaps */
} pctx_t;

/* A string token's value. Unescaped strings point into the input; escaped
 * ones are decoded into `buf` when they fit, else into `*heap` (caller frees). */
typedef struct {
    const char *s;
    size_t n;
    char *heap;
    char buf[256];
} str_t;

static int str_of(const eg_jr_doc_t *doc, const tok_t *t, str_t *out)
{
    out->heap = NULL;
    if (!t->escaped) {
        out->s = doc->text + t->off;
        out->n = t->len;
        return EG_OK;
    }
    size_t n = eg_jr_str(doc, t, out->buf, sizeof(out->buf) - 1);
    if (n >= sizeof(out->buf)) {
        out->heap = malloc(n + 1);
        if (!out->heap) return EG_ENOMEM;
        eg_jr_str(doc, t, out->heap, n + 1);
        out->heap[n] = '\0';
        out->s = out->heap;
    } else {
        out->buf[n] = '\0';
        out->s = out->buf;
    }
    out->n = n;
    return EG_OK;
}

static void str_done(str_t *s)
{
    free(s->heap);
}

static int is_name(const eg_jr_doc_t *doc, const tok_t *k, const char *name)
{
    return eg_jr_key_is(doc, k, name, strlen(name));
}

/* The member `name` (n bytes) of an object token, or NULL. */
static const tok_t *member_n(const eg_jr_doc_t *doc, const tok_t *obj, const char *name, size_t n)
{
    return obj && obj->type == EG_JR_OBJECT ? eg_jr_get(doc, obj, name, n) : NULL;
}

/* The value's JSON text (a string with its quotes). */
static void raw_text(const eg_jr_doc_t *doc, const tok_t *v, const char **p, size_t *n)
{
    if (v->type == EG_JR_STRING) {
        *p = doc->text + v->off - 1;
        *n = (size_t)v->len + 2;
    } else {
        *p = doc->text + v->off;
        *n = v->len;
    }
}

static const tok_t *get(const pctx_t *c, const tok_t *obj, const char *name)
{
    return member_n(c->doc, obj, name, strlen(name));
}

/* The member a template member names. */
static const tok_t *get_m(const pctx_t *c, const tok_t *obj, const eg_tmember_t *m)
{
    return member_n(c->doc, obj, m->name, m->namelen);
}

static const tok_t *next_of(const pctx_t *c, const tok_t *v)
{
    return c->doc->toks + v->end;
}

static int keep(pctx_t *c, const eg_tnode_t *t, const tok_t *k, const tok_t *v);

static eg_field_error_t *cur_fe(pctx_t *c)
{
    return c->fe >= 0 ? &c->e->fields[c->fe] : NULL;
}

static int set_code(pctx_t *c, const char *s, size_t n)
{
    const eg_catalog_entry_t *ent = c->cat ? eg_catalog_lookup(c->cat, s, n) : NULL;
    if (!ent) return eg_error_setn(c->e, EG_S_CODE, s, n);
    int rc = eg_error_set(c->e, EG_S_CODE, ent->code);
    if (rc == EG_OK) { /* spares the renderer a second lookup */
        c->e->ent_cat = c->cat;
        c->e->ent = ent;
        c->e->ent_code = c->e->s[EG_S_CODE];
    }
    return rc;
}

static int parse_status(const eg_jr_doc_t *doc, const tok_t *v, int *out)
{
    long long st = -1;
    if (!v) return 0;
    if (v->type == EG_JR_INT) st = v->ival;
    else if (v->type == EG_JR_STRING && v->len <= 18) { /* "404", or escaped: "\u0034..." */
        char b[20];
        const char *s = doc->text + v->off;
        if (v->escaped) {
            if (eg_jr_str(doc, v, b, sizeof(b)) != 3) return 0;
            s = b;
        } else if (v->len != 3) {
            return 0;
        }
        if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
            isdigit((unsigned char)s[2]))
            st = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    }
    if (st < 100 || st > 599) return 0;
    *out = (int)st;
    return 1;
}

/* Assigns v to the slot; returns 1 when taken, 0 when it does not fit, <0 on error. */
static int assign_slot(pctx_t *c, const eg_tslot_t *sl, const tok_t *v)
{
    eg_error_t *e = c->e;
    for (int i = 0; i < sl->n; i++) {
        int id = sl->chain[i];
        eg_field_error_t *fe = cur_fe(c);
        if (id < EG_S__COUNT) {
            if (v->type != EG_JR_STRING) return 0;
            str_t s;
            int rc = str_of(c->doc, v, &s);
            if (rc) return rc;
            if (e->s[id] && c->only_unset) {
                rc = e->len[id] == s.n && !memcmp(e->s[id], s.s, s.n);
                str_done(&s);
                return rc;
            }
            rc = id == EG_S_CODE ? set_code(c, s.s, s.n) : eg_error_setn(e, (eg_str_t)id, s.s, s.n);
            str_done(&s);
            return rc ? rc : 1;
        }
        if (id == EG_SL_STATUS) {
            int st;
            if (!parse_status(c->doc, v, &st)) return 0;
            if (sl->as_string != (v->type == EG_JR_STRING)) return 0;
            if (c->only_unset && e->status) return st == e->status;
            e->status = st;
            return 1;
        }
        if (id == EG_SL_RETRY_AFTER) {
            if (v->type != EG_JR_INT || v->ival < 0) return 0;
            if (c->only_unset && e->retry_after >= 0) return v->ival == e->retry_after;
            e->retry_after = v->ival;
            return 1;
        }
        if (!fe) continue; /* a field slot outside a field error: try the next */
        if (id == EG_SL_F_VALUE) {
            json_t *j = eg_jr_to_json(c->doc, v);
            if (!j) return EG_ENOMEM;
            eg_field_set_value(fe, j);
            return 1;
        }
        if (id >= EG_SL_F_BASE && id < EG_SL_F_VALUE) {
            if (v->type != EG_JR_STRING) return 0;
            str_t s;
            int rc = str_of(c->doc, v, &s);
            if (!rc) rc = eg_field_setn(e, fe, (eg_fstr_t)(id - EG_SL_F_BASE), s.s, s.n);
            str_done(&s);
            return rc ? rc : 1;
        }
        return 0;
    }
    return 0;
}

static int parse_object(pctx_t *c, const eg_tnode_t *t, const tok_t *obj);

static const eg_tmember_t *find_member(const pctx_t *c, const eg_tnode_t *t, const tok_t *k)
{
    for (size_t i = 0; i < t->n; i++)
        if (eg_jr_key_is(c->doc, k, t->members[i].name, t->members[i].namelen)) return &t->members[i];
    return NULL;
}

static const eg_tmember_t *find_member_named(const eg_tnode_t *t, const char *k)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->members[i].name, k) == 0) return &t->members[i];
    return NULL;
}

static int new_fe(pctx_t *c)
{
    if (!eg_error_add_field(c->e)) return EG_ENOMEM;
    c->fe = (long)c->e->nfields - 1;
    return EG_OK;
}

static int list_fits(const pctx_t *c, const tok_t *arr)
{
    if (!arr || arr->type != EG_JR_ARRAY) return 0;
    const tok_t *v = arr + 1;
    for (uint32_t i = 0; i < arr->count; i++, v = next_of(c, v))
        if (v->type != EG_JR_OBJECT) return 0;
    return 1;
}

/* A list of field-error objects under an item template. */
static int parse_list(pctx_t *c, const eg_tnode_t *item, const tok_t *arr)
{
    long saved = c->fe;
    int rc = EG_OK;
    const tok_t *o = arr + 1;
    for (uint32_t i = 0; i < arr->count && !rc; i++, o = next_of(c, o)) {
        if ((rc = new_fe(c))) break;
        rc = parse_object(c, item, o);
    }
    c->fe = saved;
    return rc;
}

/* {"email": ["msg", ...]} (a single string is accepted too). */
static int map_fits(const pctx_t *c, const tok_t *obj)
{
    if (!obj || obj->type != EG_JR_OBJECT) return 0;
    const tok_t *k = obj + 1;
    for (uint32_t i = 0; i < obj->count; i++) {
        const tok_t *v = k + 1;
        if (v->type == EG_JR_ARRAY) {
            const tok_t *m = v + 1;
            for (uint32_t j = 0; j < v->count; j++, m = next_of(c, m))
                if (m->type != EG_JR_STRING) return 0;
        } else if (v->type != EG_JR_STRING) {
            return 0;
        }
        k = next_of(c, v);
    }
    return 1;
}

static int parse_map(pctx_t *c, const eg_tfields_t *f, const tok_t *obj)
{
    long saved = c->fe;
    int rc = EG_OK;
    const tok_t *k = obj + 1;
    for (uint32_t i = 0; i < obj->count && !rc; i++) {
        const tok_t *v = k + 1;
        size_t n = v->type == EG_JR_ARRAY ? v->count : 1;
        const tok_t *m = v->type == EG_JR_ARRAY ? v + 1 : v;
        for (size_t j = 0; j < n && !rc; j++, m = next_of(c, m)) {
            if ((rc = new_fe(c))) break;
            int r = assign_slot(c, &f->name, k); /* the key is a string token too */
            if (r < 0) rc = r;
            str_t s;
            if (!rc && !(rc = str_of(c->doc, m, &s))) {
                rc = eg_field_setn(c->e, cur_fe(c), EG_F_MESSAGE, s.s, s.n);
                str_done(&s);
            }
        }
        k = next_of(c, v);
    }
    c->fe = saved;
    return rc;
}

static int parse_split(pctx_t *c, const eg_tnode_t *item, const tok_t *arr);

/* Takes the member value v through template member m; 1 when it fit. */
static int take_member(pctx_t *c, const eg_tmember_t *m, const tok_t *v)
{
    switch (m->node->kind) {
    case EG_T_SLOT: return assign_slot(c, &m->node->slot, v);
    case EG_T_OBJECT: {
        if (v->type != EG_JR_OBJECT) return 0;
        int rc = parse_object(c, m->node, v);
        return rc ? rc : 1;
    }
    case EG_T_SPLIT: {
        if (!list_fits(c, v) || v->count == 0) return 0;
        int rc = parse_split(c, m->node->item, v);
        return rc ? rc : 1;
    }
    }
    return 0;
}

static int parse_object(pctx_t *c, const eg_tnode_t *t, const tok_t *obj)
{
    const eg_tfields_t *f = t->fields;
    const eg_tnode_t *flat = NULL; /* item members consumed by a flat field error */
    int rc = EG_OK;
    long saved = c->fe;
    if (f && f->style == EG_FS_FLAT && c->fe < 0) {
        const tok_t *marker = get(c, obj, f->key);
        if (marker && marker->type == EG_JR_STRING) {
            if ((rc = new_fe(c))) return rc;
            flat = f->item;
            const tok_t *k = obj + 1;
            for (uint32_t i = 0; i < obj->count; i++) {
                const tok_t *v = k + 1;
                const eg_tmember_t *m = find_member(c, flat, k);
                if (m && (rc = take_member(c, m, v)) < 0) break;
                rc = EG_OK;
                k = next_of(c, v);
            }
            c->fe = saved;
            if (rc) return rc;
        }
    }
    const tok_t *k = obj + 1;
    for (uint32_t i = 0; i < obj->count; i++, k = next_of(c, k + 1)) {
        const tok_t *v = k + 1;
        if (flat) {
            const eg_tmember_t *fm = find_member(c, flat, k);
            if (fm && fm->node->kind == EG_T_SLOT) {
                /* taken above unless the type did not fit */
                const eg_field_error_t *fe = &c->e->fields[c->e->nfields - 1];
                int id = fm->node->slot.chain[0];
                int had = id == EG_SL_F_VALUE ? fe->value != NULL
                          : id >= EG_SL_F_BASE && id < EG_SL_F_VALUE ? fe->s[id - EG_SL_F_BASE] != NULL
                                                                       : 0;
                if (had) continue;
            }
        }
        const eg_tmember_t *m = find_member(c, t, k);
        if (m) {
            int r = take_member(c, m, v);
            if (r < 0) return r;
            if (r > 0) continue;
        }
        if (f && f->style != EG_FS_FLAT && is_name(c->doc, k, f->key)) {
            if (f->style == EG_FS_LIST && list_fits(c, v)) {
                if ((rc = parse_list(c, f->item, v))) return rc;
                continue;
            }
            if (f->style == EG_FS_MAP && map_fits(c, v)) {
                if ((rc = parse_map(c, f, v))) return rc;
                continue;
            }
        }
        if (f && f->style == EG_FS_FLAT && !flat && c->fe < 0 && is_name(c->doc, k, f->list_key) &&
            list_fits(c, v)) {
            if ((rc = parse_list(c, f->item, v))) return rc;
            continue;
        }
        if ((rc = keep(c, t, k, v))) return rc;
    }
    return EG_OK;
}

/* Keeps a member the template has no slot for: details as JSON text, the
 * rest (meta, a field error's extra: rarer) as jansson values. */
static int keep(pctx_t *c, const eg_tnode_t *t, const tok_t *k, const tok_t *v)
{
    json_t *sink;
    eg_field_error_t *fe = cur_fe(c);
    str_t key;
    int rc = str_of(c->doc, k, &key);
    if (rc) return rc;
    if (!(t->merge_extra && fe) && t->merge_details) {
        const char *p;
        size_t n;
        raw_text(c->doc, v, &p, &n);
        size_t kn = key.n;
        const char *name = c->d->ndnames ? eg__dialect_detail_name(c->d, key.s, key.n, 0, &kn) : key.s;
        rc = eg_error_keep_detail_raw(c->e, name, kn, p, n);
        str_done(&key);
        return rc;
    }
    if (t->merge_extra && fe) sink = eg_field_extra(fe);
    else if (fe) sink = eg_field_extra(fe);
    else sink = eg_error_meta(c->e);
    json_t *j = sink ? eg_jr_to_json(c->doc, v) : NULL;
    /* keys are NUL-free (jsonr refuses \u0000), so the C string is whole */
    char *ks = j ? eg_error_strdup(c->e, key.s, key.n) : NULL;
    rc = ks && json_object_set_new(sink, ks, j) == 0 ? EG_OK : EG_ENOMEM;
    if (!ks) json_decref(j);
    str_done(&key);
    return rc;
}

static int item_has_source(const pctx_t *c, const eg_tnode_t *item, const tok_t *o)
{
    /* an item is about a field when a field slot of the template is present */
    for (size_t i = 0; i < item->n; i++) {
        const eg_tmember_t *m = &item->members[i];
        const tok_t *v = get_m(c, o, m);
        if (!v) continue;
        if (m->node->kind == EG_T_OBJECT && v->type == EG_JR_OBJECT && item_has_source(c, m->node, v))
            return 1;
        if (m->node->kind == EG_T_SLOT) {
            int id = m->node->slot.chain[0];
            if (id >= EG_SL_F_BASE && id != EG_SL_F_BASE + EG_F_MESSAGE) return 1;
        }
    }
    return 0;
}

/* JSON:API-style array: the first item is the error itself (and a field
 * error when it has a source); later items with the same code are field
 * errors; items with another code are kept whole in meta.errors. */
static int parse_split(pctx_t *c, const eg_tnode_t *item, const tok_t *arr)
{
    int rc = EG_OK;
    const eg_tmember_t *codem = find_member_named(item, "code");
    const eg_tmember_t *sm = find_member_named(item, "status");
    int first_status = 0, general = 0;
    const tok_t *o = arr + 1;
    for (uint32_t i = 0; i < arr->count && !rc; i++, o = next_of(c, o)) {
        const tok_t *codev = codem ? get_m(c, o, codem) : NULL;
        if (i > 0 && c->e->s[EG_S_CODE] && codev && codev->type == EG_JR_STRING) {
            str_t cs;
            if ((rc = str_of(c->doc, codev, &cs))) break;
            const eg_catalog_entry_t *ent = c->cat ? eg_catalog_lookup(c->cat, cs.s, cs.n) : NULL;
            const char *canon = ent ? ent->code : cs.s;
            size_t cn = ent ? strlen(ent->code) : cs.n;
            int same = cn == c->e->len[EG_S_CODE] && memcmp(canon, c->e->s[EG_S_CODE], cn) == 0;
            str_done(&cs);
            if (!same) {
                json_t *meta = eg_error_meta(c->e);
                json_t *others = meta ? json_object_get(meta, "errors") : NULL;
                if (meta && !others) {
                    others = json_array();
                    if (!others || json_object_set_new(meta, "errors", others)) return EG_ENOMEM;
                }
                json_t *j = meta ? eg_jr_to_json(c->doc, o) : NULL;
                if (!j || json_array_append_new(others, j)) return EG_ENOMEM;
                int st;
                if (sm && parse_status(c->doc, get_m(c, o, sm), &st) && st != first_status)
                    general = st >= 500 || first_status >= 500 ? 500 : 400;
                continue;
            }
        }
        long saved = c->fe;
        if (i > 0 || item_has_source(c, item, o))
            if ((rc = new_fe(c))) break;
        c->only_unset = i > 0;
        rc = parse_object(c, item, o);
        c->only_unset = 0;
        /* the first item's detail is also the error's message, for dialects
         * that have one message besides their field errors */
        eg_field_error_t *fe = cur_fe(c);
        if (!rc && i == 0 && fe && !c->e->s[EG_S_MESSAGE] && fe->s[EG_F_MESSAGE])
            rc = eg_error_set(c->e, EG_S_MESSAGE, fe->s[EG_F_MESSAGE]);
        c->fe = saved;
        if (i == 0) first_status = c->e->status;
    }
    if (general) c->e->status = general;
    return rc;
}

int eg__parse_tape(const eg_jr_doc_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                   int http_status, eg_error_t **out)
{
    if (doc->toks->type != EG_JR_OBJECT || eg__dialect_match_tape(d, doc) == 0) return EG_EPARSE;
    return eg__parse_tape_detected(doc, d, cat, http_status, out);
}

int eg__parse_tape_detected(const eg_jr_doc_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                            int http_status, eg_error_t **out)
{
    const tok_t *root = doc->toks;
    if (root->type != EG_JR_OBJECT) return EG_EPARSE;
    eg_error_t *e = eg_error_new();
    if (!e) return EG_ENOMEM;
    pctx_t c = {e, d, cat, doc, -1, 0};
    int rc = parse_object(&c, d->body, root);
    if (rc) {
        eg_error_free(e);
        return rc;
    }
    if (!e->status && http_status >= 100 && http_status <= 599) e->status = http_status;
    *out = e;
    return EG_OK;
}

/* The jansson-facing entry points serialise and read the text back: one
 * walk to maintain, and the hot path (eg_parse_body) never builds a tree. */
static int with_tape(const json_t *doc, eg_jr_doc_t *jd, char **text)
{
    *text = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!*text) return EG_ENOMEM;
    int rc = eg_jr_parse(jd, *text, strlen(*text));
    if (rc) {
        eg_jr_free(jd);
        free(*text);
    }
    return rc;
}

int eg_parse_json(const json_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                  int http_status, eg_error_t **out)
{
    if (!json_is_object(doc)) return EG_EPARSE;
    eg_jr_doc_t jd;
    char *text;
    int rc = with_tape(doc, &jd, &text);
    if (rc) return rc;
    rc = eg__parse_tape(&jd, d, cat, http_status, out);
    eg_jr_free(&jd);
    free(text);
    return rc;
}

/* --- detection --- */

static int slot_type_fits(const pctx_t *c, const eg_tslot_t *sl, const tok_t *v)
{
    int id = sl->chain[0];
    if (id == EG_SL_STATUS) {
        int st;
        return parse_status(c->doc, v, &st) && sl->as_string == (v->type == EG_JR_STRING) ? 1 : 0;
    }
    if (id == EG_SL_RETRY_AFTER) return v->type == EG_JR_INT;
    if (id == EG_SL_F_VALUE) return 1;
    if (v->type != EG_JR_STRING) return 0;
    if (id == EG_S_CODE && c->d->code_case != EG_CASE_KEEP) {
        /* a code in the dialect's casing is a strong hint (typed vs envelope) */
        str_t s;
        if (str_of(c->doc, v, &s) != EG_OK) return 0;
        int upper = 0, lower = 0;
        for (size_t i = 0; i < s.n; i++) {
            upper |= isupper((unsigned char)s.s[i]) != 0;
            lower |= islower((unsigned char)s.s[i]) != 0;
        }
        str_done(&s);
        if (c->d->code_case == EG_CASE_UPPER && upper && !lower) return 2;
        if (c->d->code_case == EG_CASE_LOWER && lower && !upper) return 2;
    }
    return 1;
}

/* Scores obj against template t. At the top (`root`), an object or array
 * member of the wrong type rules the dialect out: {"error": "x"} is not
 * typed's {"error": {...}}; a slot of the wrong type only scores nothing
 * (the member is kept as unknown). -1 = ruled out. */
static int match_object(const pctx_t *c, const eg_tnode_t *t, const tok_t *obj, int root)
{
    int score = 0;
    for (size_t i = 0; i < t->n; i++) {
        const eg_tmember_t *m = &t->members[i];
        const tok_t *v = get_m(c, obj, m);
        if (!v) continue;
        switch (m->node->kind) {
        case EG_T_SLOT: score += slot_type_fits(c, &m->node->slot, v); break;
        case EG_T_OBJECT:
            if (v->type == EG_JR_OBJECT) score += 1 + match_object(c, m->node, v, 0);
            else if (root) return -1;
            break;
        case EG_T_SPLIT:
            if (list_fits(c, v)) {
                if (v->count > 0) score += 1 + match_object(c, m->node->item, v + 1, 0);
            } else if (root) {
                return -1;
            }
            break;
        }
    }
    const eg_tfields_t *f = t->fields;
    if (f) {
        const tok_t *v = get(c, obj, f->style == EG_FS_FLAT ? f->list_key : f->key);
        if (f->style == EG_FS_MAP && v && map_fits(c, v)) score++;
        else if (f->style != EG_FS_MAP && v && list_fits(c, v)) score++;
    }
    return score;
}

int eg__dialect_match_tape(const eg_dialect_t *d, const eg_jr_doc_t *doc)
{
    const tok_t *root = doc->toks;
    if (root->type != EG_JR_OBJECT) return 0;
    pctx_t c = {NULL, d, NULL, doc, -1, 0};
    int score = match_object(&c, d->body, root, 1);
    return score < 0 ? 0 : score;
}

int eg_dialect_match(const eg_dialect_t *d, const json_t *doc)
{
    if (!json_is_object(doc)) return 0;
    eg_jr_doc_t jd;
    char *text;
    if (with_tape(doc, &jd, &text) != EG_OK) return 0;
    int score = eg__dialect_match_tape(d, &jd);
    eg_jr_free(&jd);
    free(text);
    return score;
}

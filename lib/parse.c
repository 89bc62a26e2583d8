/* parse.c - reading a JSON error back into the model through a dialect's
 * template, and scoring how well a document fits one (detection).
 *
 * Parsing is the inverse walk of render.c: a member whose name and JSON type
 * match a template slot fills that slot (the first of its chain); anything
 * else is kept, in details where the template merges details, in the field
 * error's extra inside an item, otherwise in meta. Nothing is dropped.
 */
#include "dialect_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    eg_error_t *e;
    const eg_dialect_t *d;
    const eg_catalog_t *cat;
    long fe;       /* index of the current field error, -1 outside items */
    int only_unset; /* later JSON:API items: error-level slots fill only gaps */
} pctx_t;

static int keep(pctx_t *c, const eg_tnode_t *t, const char *k, json_t *v);

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

static int parse_status(const json_t *v, int *out)
{
    long long st = -1;
    if (json_is_integer(v)) st = json_integer_value(v);
    else if (json_is_string(v) && json_string_length(v) == 3) {
        const char *s = json_string_value(v);
        if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
            isdigit((unsigned char)s[2]))
            st = atoi(s);
    }
    if (st < 100 || st > 599) return 0;
    *out = (int)st;
    return 1;
}

/* Assigns v to the slot; returns 1 when taken, 0 when it does not fit, <0 on error. */
static int assign_slot(pctx_t *c, const eg_tslot_t *sl, json_t *v)
{
    eg_error_t *e = c->e;
    for (int i = 0; i < sl->n; i++) {
        int id = sl->chain[i];
        eg_field_error_t *fe = cur_fe(c);
        if (id < EG_S__COUNT) {
            if (!json_is_string(v)) return 0;
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            if (e->s[id]) {
                if (c->only_unset) return strlen(e->s[id]) == n && !memcmp(e->s[id], s, n);
            }
            int rc = id == EG_S_CODE ? set_code(c, s, n) : eg_error_setn(e, (eg_str_t)id, s, n);
            return rc ? rc : 1;
        }
        if (id == EG_SL_STATUS) {
            int st;
            if (!parse_status(v, &st)) return 0;
            if (sl->as_string != json_is_string(v)) return 0;
            if (c->only_unset && e->status) return st == e->status;
            e->status = st;
            return 1;
        }
        if (id == EG_SL_RETRY_AFTER) {
            if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
            if (c->only_unset && e->retry_after >= 0) return json_integer_value(v) == e->retry_after;
            e->retry_after = json_integer_value(v);
            return 1;
        }
        if (!fe) continue; /* a field slot outside a field error: try the next */
        if (id == EG_SL_F_VALUE) {
            eg_field_set_value(fe, json_incref(v));
            return 1;
        }
        if (id >= EG_SL_F_BASE && id < EG_SL_F_VALUE) {
            if (!json_is_string(v)) return 0;
            int rc = eg_field_setn(e, fe, (eg_fstr_t)(id - EG_SL_F_BASE), json_string_value(v),
                                   json_string_length(v));
            return rc ? rc : 1;
        }
        return 0;
    }
    return 0;
}

static int parse_object(pctx_t *c, const eg_tnode_t *t, json_t *obj);

static const eg_tmember_t *find_member(const eg_tnode_t *t, const char *k)
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

/* A list of field-error objects under an item template. */
static int parse_list(pctx_t *c, const eg_tnode_t *item, json_t *arr)
{
    long saved = c->fe;
    int rc = EG_OK;
    for (size_t i = 0; i < json_array_size(arr) && !rc; i++) {
        json_t *o = json_array_get(arr, i);
        if (!json_is_object(o)) continue; /* checked by caller */
        if ((rc = new_fe(c))) break;
        rc = parse_object(c, item, o);
    }
    c->fe = saved;
    return rc;
}

static int list_fits(json_t *arr)
{
    if (!json_is_array(arr)) return 0;
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (!json_is_object(json_array_get(arr, i))) return 0;
    return 1;
}

/* {"email": ["msg", ...]} (a single string is accepted too). */
static int map_fits(json_t *obj)
{
    if (!json_is_object(obj)) return 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (json_is_string(v)) continue;
        if (!json_is_array(v)) return 0;
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_string(json_array_get(v, i))) return 0;
    }
    return 1;
}

static int parse_map(pctx_t *c, const eg_tfields_t *f, json_t *obj)
{
    const char *k;
    json_t *v;
    long saved = c->fe;
    int rc = EG_OK;
    json_object_foreach(obj, k, v) {
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n && !rc; i++) {
            json_t *m = json_is_array(v) ? json_array_get(v, i) : v;
            if ((rc = new_fe(c))) break;
            eg_field_error_t *fe = cur_fe(c);
            json_t *name = json_string(k);
            if (!name) rc = EG_ENOMEM;
            else {
                int r = assign_slot(c, &f->name, name);
                json_decref(name);
                if (r < 0) rc = r;
            }
            if (!rc) rc = eg_field_setn(c->e, fe, EG_F_MESSAGE, json_string_value(m),
                                        json_string_length(m));
        }
        if (rc) break;
    }
    c->fe = saved;
    return rc;
}

static int parse_split(pctx_t *c, const eg_tnode_t *item, json_t *arr);

/* Takes the member (k, v) through template member m; 1 when it fit. */
static int take_member(pctx_t *c, const eg_tmember_t *m, json_t *v)
{
    switch (m->node->kind) {
    case EG_T_SLOT: return assign_slot(c, &m->node->slot, v);
    case EG_T_OBJECT: {
        if (!json_is_object(v)) return 0;
        int rc = parse_object(c, m->node, v);
        return rc ? rc : 1;
    }
    case EG_T_SPLIT: {
        if (!list_fits(v) || json_array_size(v) == 0) return 0;
        int rc = parse_split(c, m->node->item, v);
        return rc ? rc : 1;
    }
    }
    return 0;
}

static int parse_object(pctx_t *c, const eg_tnode_t *t, json_t *obj)
{
    const eg_tfields_t *f = t->fields;
    const eg_tnode_t *flat = NULL; /* item members consumed by a flat field error */
    int rc = EG_OK;
    long saved = c->fe;
    if (f && f->style == EG_FS_FLAT && c->fe < 0 && json_is_string(json_object_get(obj, f->key))) {
        if ((rc = new_fe(c))) return rc;
        flat = f->item;
        const char *k;
        json_t *v;
        json_object_foreach(obj, k, v) {
            const eg_tmember_t *m = find_member(flat, k);
            if (m && (rc = take_member(c, m, v)) < 0) break;
            rc = EG_OK;
        }
        c->fe = saved;
        if (rc) return rc;
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        if (flat) {
            const eg_tmember_t *fm = find_member(flat, k);
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
        const eg_tmember_t *m = find_member(t, k);
        if (m) {
            int r = take_member(c, m, v);
            if (r < 0) return r;
            if (r > 0) continue;
        }
        if (f && f->style != EG_FS_FLAT && strcmp(k, f->key) == 0) {
            if (f->style == EG_FS_LIST && list_fits(v)) {
                if ((rc = parse_list(c, f->item, v))) return rc;
                continue;
            }
            if (f->style == EG_FS_MAP && map_fits(v)) {
                if ((rc = parse_map(c, f, v))) return rc;
                continue;
            }
        }
        if (f && f->style == EG_FS_FLAT && !flat && c->fe < 0 && strcmp(k, f->list_key) == 0 &&
            list_fits(v)) {
            if ((rc = parse_list(c, f->item, v))) return rc;
            continue;
        }
        if ((rc = keep(c, t, k, v))) return rc;
    }
    return EG_OK;
}

/* Keeps a member the template has no slot for. */
static int keep(pctx_t *c, const eg_tnode_t *t, const char *k, json_t *v)
{
    json_t *sink;
    eg_field_error_t *fe = cur_fe(c);
    if (t->merge_extra && fe) sink = eg_field_extra(fe);
    else if (t->merge_details) sink = eg_error_details(c->e);
    else if (fe) sink = eg_field_extra(fe);
    else sink = eg_error_meta(c->e);
    if (!sink) return EG_ENOMEM;
    return json_object_set(sink, k, v) == 0 ? EG_OK : EG_ENOMEM;
}

static int item_has_source(const eg_tnode_t *item, json_t *o)
{
    /* an item is about a field when a field slot of the template is present */
    for (size_t i = 0; i < item->n; i++) {
        const eg_tmember_t *m = &item->members[i];
        json_t *v = json_object_get(o, m->name);
        if (!v) continue;
        if (m->node->kind == EG_T_OBJECT && json_is_object(v) && item_has_source(m->node, v))
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
static int parse_split(pctx_t *c, const eg_tnode_t *item, json_t *arr)
{
    int rc = EG_OK;
    const eg_tmember_t *codem = find_member(item, "code");
    int first_status = 0, general = 0;
    for (size_t i = 0; i < json_array_size(arr) && !rc; i++) {
        json_t *o = json_array_get(arr, i);
        json_t *codev = codem ? json_object_get(o, codem->name) : NULL;
        if (i > 0 && c->e->s[EG_S_CODE] && json_is_string(codev)) {
            const char *cs = json_string_value(codev);
            const eg_catalog_entry_t *ent =
                c->cat ? eg_catalog_lookup(c->cat, cs, json_string_length(codev)) : NULL;
            if (strcmp(ent ? ent->code : cs, c->e->s[EG_S_CODE]) != 0) {
                json_t *meta = eg_error_meta(c->e);
                json_t *others = meta ? json_object_get(meta, "errors") : NULL;
                if (meta && !others) {
                    others = json_array();
                    if (!others || json_object_set_new(meta, "errors", others)) return EG_ENOMEM;
                }
                if (!meta || json_array_append(others, o)) return EG_ENOMEM;
                const eg_tmember_t *sm = find_member(item, "status");
                int st;
                if (sm && parse_status(json_object_get(o, sm->name), &st) && st != first_status)
                    general = st >= 500 || first_status >= 500 ? 500 : 400;
                continue;
            }
        }
        long saved = c->fe;
        if (i > 0 || item_has_source(item, o))
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

int eg_parse_json(const json_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                  int http_status, eg_error_t **out)
{
    if (!json_is_object(doc) || eg_dialect_match(d, doc) == 0) return EG_EPARSE;
    eg_error_t *e = eg_error_new();
    if (!e) return EG_ENOMEM;
    pctx_t c = {e, d, cat, -1, 0};
    int rc = parse_object(&c, d->body, (json_t *)doc);
    if (rc) {
        eg_error_free(e);
        return rc;
    }
    if (!e->status && http_status >= 100 && http_status <= 599) e->status = http_status;
    *out = e;
    return EG_OK;
}

/* --- detection --- */

static int slot_type_fits(const eg_dialect_t *d, const eg_tslot_t *sl, const json_t *v)
{
    int id = sl->chain[0];
    if (id == EG_SL_STATUS) {
        int st;
        return parse_status(v, &st) && sl->as_string == json_is_string(v) ? 1 : 0;
    }
    if (id == EG_SL_RETRY_AFTER) return json_is_integer(v);
    if (id == EG_SL_F_VALUE) return 1;
    if (!json_is_string(v)) return 0;
    if (id == EG_S_CODE && d->code_case != EG_CASE_KEEP) {
        /* a code in the dialect's casing is a strong hint (typed vs envelope) */
        const char *s = json_string_value(v);
        int upper = 0, lower = 0;
        for (; *s; s++) {
            upper |= isupper((unsigned char)*s) != 0;
            lower |= islower((unsigned char)*s) != 0;
        }
        if (d->code_case == EG_CASE_UPPER && upper && !lower) return 2;
        if (d->code_case == EG_CASE_LOWER && lower && !upper) return 2;
    }
    return 1;
}

static int match_object(const eg_dialect_t *d, const eg_tnode_t *t, const json_t *obj)
{
    int score = 0;
    for (size_t i = 0; i < t->n; i++) {
        const eg_tmember_t *m = &t->members[i];
        const json_t *v = json_object_get(obj, m->name);
        if (!v) continue;
        switch (m->node->kind) {
        case EG_T_SLOT: score += slot_type_fits(d, &m->node->slot, v); break;
        case EG_T_OBJECT:
            if (json_is_object(v)) score += 1 + match_object(d, m->node, v);
            break;
        case EG_T_SPLIT:
            if (list_fits((json_t *)v) && json_array_size(v) > 0)
                score += 1 + match_object(d, m->node->item, json_array_get(v, 0));
            break;
        }
    }
    const eg_tfields_t *f = t->fields;
    if (f) {
        const json_t *v = json_object_get(obj, f->style == EG_FS_FLAT ? f->list_key : f->key);
        if (f->style == EG_FS_MAP && v && map_fits((json_t *)v)) score++;
        else if (f->style != EG_FS_MAP && v && list_fits((json_t *)v)) score++;
    }
    return score;
}

int eg_dialect_match(const eg_dialect_t *d, const json_t *doc)
{
    if (!json_is_object(doc)) return 0;
    /* a top-level object or array of the template must have that type when
     * present: {"error": "x"} is not typed's {"error": {...}}. A slot of the
     * wrong type only scores nothing: the member is kept as unknown. */
    const eg_tnode_t *t = d->body;
    for (size_t i = 0; i < t->n; i++) {
        const json_t *v = json_object_get(doc, t->members[i].name);
        if (!v) continue;
        const eg_tnode_t *mn = t->members[i].node;
        if (mn->kind == EG_T_OBJECT && !json_is_object(v)) return 0;
        if (mn->kind == EG_T_SPLIT && !list_fits((json_t *)v)) return 0;
    }
    return match_object(d, t, doc);
}

/* dialect.c - compiling dialect files, dialect sets, status and code spelling.
 *
 * A dialect file is YAML (docs/dialects.md). Its `body:` is a template of the
 * JSON document: a member's value is a slot ("$message",
 * "$field.message|message", or { slot: status, as: string }), a nested
 * template object, or { $split: item } for JSON:API's array of errors.
 * Special keys inside an object: `$fields` (where field errors go), `$details`
 * / `$meta` / `$extra: merge` (where free-form members are merged).
 * The six built-in dialects are such files, compiled into the library.
 */
#include "dialect_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "embedded.h"
#include "jsonw.h"
#include "ytree.h"

static const char *const slot_names[EG_SL__COUNT] = {
    [EG_S_CODE] = "code",
    [EG_S_TYPE] = "type",
    [EG_S_TITLE] = "title",
    [EG_S_MESSAGE] = "message",
    [EG_S_REQUEST_ID] = "request_id",
    [EG_S_TIMESTAMP] = "timestamp",
    [EG_S_INSTANCE] = "instance",
    [EG_S_DOCS] = "docs",
    [EG_SL_STATUS] = "status",
    [EG_SL_RETRY_AFTER] = "retry_after",
    [EG_SL_F_BASE + EG_F_FIELD] = "field.field",
    [EG_SL_F_BASE + EG_F_POINTER] = "field.pointer",
    [EG_SL_F_BASE + EG_F_PARAMETER] = "field.parameter",
    [EG_SL_F_BASE + EG_F_HEADER] = "field.header",
    [EG_SL_F_BASE + EG_F_MESSAGE] = "field.message",
    [EG_SL_F_BASE + EG_F_CONSTRAINT] = "field.constraint",
    [EG_SL_F_VALUE] = "field.value",
    [EG_SL_FIELD_POINTER] = "field_pointer",
    [EG_SL_POINTER_FIELD] = "pointer_field",
};

const char *eg__slot_name(int slot)
{
    return slot >= 0 && slot < EG_SL__COUNT ? slot_names[slot] : "?";
}

/* Looks a slot up by name. A bare name after the first in a chain may name a
 * field attribute ("parameter" in "$field.parameter|field"), unless it is an
 * error attribute ("message" in "$field.message|message"). */
static int slot_by_name(const char *s, size_t n, int in_chain)
{
    for (int i = 0; i < EG_SL__COUNT; i++)
        if (strlen(slot_names[i]) == n && memcmp(slot_names[i], s, n) == 0) return i;
    if (in_chain) {
        for (int i = EG_SL_F_BASE; i <= EG_SL_F_VALUE; i++)
            if (strlen(slot_names[i]) == n + 6 && memcmp(slot_names[i] + 6, s, n) == 0) return i;
    }
    return -1;
}

static void node_free(eg_tnode_t *n);

static void fields_free(eg_tfields_t *f)
{
    if (!f) return;
    free(f->key);
    free(f->list_key);
    node_free(f->item);
    free(f->name.deflt);
    free(f);
}

static void node_free(eg_tnode_t *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) {
        free(n->members[i].name);
        free(n->members[i].key);
        node_free(n->members[i].node);
    }
    free(n->members);
    free(n->slot.deflt);
    fields_free(n->fields);
    node_free(n->item);
    free(n);
}

void eg_dialect_free(eg_dialect_t *d)
{
    if (!d) return;
    free(d->name);
    free(d->summary);
    free(d->media_type);
    free(d->pointer_prefix);
    for (size_t i = 0; i < d->noverrides; i++) free(d->overrides[i].code);
    free(d->overrides);
    for (size_t i = 0; i < d->ncmap; i++) {
        free(d->cmap[i].from);
        free(d->cmap[i].to);
    }
    free(d->cmap);
    for (size_t i = 0; i < d->ndnames; i++) {
        free(d->dnames[i].from);
        free(d->dnames[i].to);
    }
    free(d->dnames);
    node_free(d->body);
    free(d);
}

typedef struct {
    const eg_ydoc_t *doc;
    char *err;
    size_t errlen;
} cctx_t;

/* "$a|b|c" -> chain. */
static int compile_chain(cctx_t *c, const eg_ynode_t *at, const char *s, eg_tslot_t *out)
{
    if (s[0] != '$') return eg_yerr(c->doc, at, c->err, c->errlen, "slot must start with '$'");
    s++;
    out->n = 0;
    while (*s) {
        const char *bar = strchr(s, '|');
        size_t len = bar ? (size_t)(bar - s) : strlen(s);
        int id = slot_by_name(s, len, out->n > 0);
        if (id < 0)
            return eg_yerr(c->doc, at, c->err, c->errlen, "unknown slot '%.*s'", (int)len, s);
        if (out->n == EG_CHAIN_MAX)
            return eg_yerr(c->doc, at, c->err, c->errlen, "at most %d slots in a chain",
                           EG_CHAIN_MAX);
        if (out->n == 0 && (id == EG_SL_FIELD_POINTER || id == EG_SL_POINTER_FIELD))
            return eg_yerr(c->doc, at, c->err, c->errlen,
                           "'%.*s' can only follow another slot", (int)len, s);
        out->chain[out->n++] = id;
        s += len;
        if (*s == '|') s++;
    }
    if (out->n == 0) return eg_yerr(c->doc, at, c->err, c->errlen, "empty slot");
    return EG_OK;
}

static int compile_slot(cctx_t *c, const eg_ynode_t *n, eg_tslot_t *out)
{
    if (n->kind == EG_Y_SCALAR) return compile_chain(c, n, n->str, out);
    /* { slot: name|chain, as: string|number, fallback: catalog, default: literal } */
    const eg_ynode_t *slot = eg_ymap_get(n, "slot");
    if (!slot || slot->kind != EG_Y_SCALAR)
        return eg_yerr(c->doc, n, c->err, c->errlen, "slot object needs 'slot: NAME'");
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "$%s", slot->str);
    int rc = compile_chain(c, slot, tmp, out);
    if (rc) return rc;
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
        if (strcmp(k->str, "slot") == 0) continue;
        if (v->kind != EG_Y_SCALAR)
            return eg_yerr(c->doc, v, c->err, c->errlen, "'%s' must be a scalar", k->str);
        if (strcmp(k->str, "as") == 0) {
            if (strcmp(v->str, "string") == 0) out->as_string = 1;
            else if (strcmp(v->str, "number") != 0)
                return eg_yerr(c->doc, v, c->err, c->errlen, "'as' must be string or number");
            if (out->as_string && out->chain[0] != EG_SL_STATUS &&
                out->chain[0] != EG_SL_RETRY_AFTER)
                return eg_yerr(c->doc, v, c->err, c->errlen,
                               "'as' applies to status and retry_after only");
        } else if (strcmp(k->str, "fallback") == 0) {
            if (strcmp(v->str, "catalog") != 0)
                return eg_yerr(c->doc, v, c->err, c->errlen, "'fallback' must be catalog");
            out->fallback_catalog = 1;
        } else if (strcmp(k->str, "default") == 0) {
            if (!(out->deflt = strdup(v->str))) return EG_ENOMEM;
        } else if (strcmp(k->str, "when") == 0) {
            if (strcmp(v->str, "summary") != 0)
                return eg_yerr(c->doc, v, c->err, c->errlen, "'when' must be summary");
            out->when_summary = 1;
        } else {
            return eg_yerr(c->doc, k, c->err, c->errlen,
                           "unknown slot option '%s' (slot, as, fallback, default, when)", k->str);
        }
    }
    return EG_OK;
}

static int compile_object(cctx_t *c, const eg_ynode_t *n, int in_item, eg_tnode_t **out);

static int check_merge(cctx_t *c, const eg_ynode_t *v)
{
    if (v->kind != EG_Y_SCALAR || strcmp(v->str, "merge") != 0)
        return eg_yerr(c->doc, v, c->err, c->errlen, "expected 'merge'");
    return EG_OK;
}

static int dup_scalar(cctx_t *c, const eg_ynode_t *map, const char *key, int required,
                      char **out)
{
    const eg_ynode_t *v = eg_ymap_get(map, key);
    if (!v) {
        if (required) return eg_yerr(c->doc, map, c->err, c->errlen, "missing '%s'", key);
        return EG_OK;
    }
    if (v->kind != EG_Y_SCALAR || v->len == 0)
        return eg_yerr(c->doc, v, c->err, c->errlen, "'%s' must be a non-empty string", key);
    return (*out = strdup(v->str)) ? EG_OK : EG_ENOMEM;
}

static int compile_fields(cctx_t *c, const eg_ynode_t *n, eg_tfields_t **out)
{
    if (n->kind != EG_Y_MAP)
        return eg_yerr(c->doc, n, c->err, c->errlen, "$fields must be a map with 'style'");
    eg_tfields_t *f = calloc(1, sizeof(*f));
    if (!f) return EG_ENOMEM;
    int rc = EG_OK;
    const eg_ynode_t *style = eg_ymap_get(n, "style");
    for (size_t i = 0; i < n->n; i++) {
        const char *k = n->items[2 * i]->str;
        if (strcmp(k, "style") && strcmp(k, "key") && strcmp(k, "list") && strcmp(k, "item") &&
            strcmp(k, "name")) {
            rc = eg_yerr(c->doc, n->items[2 * i], c->err, c->errlen,
                         "unknown $fields option '%s' (style, key, list, item, name)", k);
            goto out;
        }
    }
    if (!style || style->kind != EG_Y_SCALAR) {
        rc = eg_yerr(c->doc, n, c->err, c->errlen, "$fields needs style: list, map or flat");
        goto out;
    }
    if (strcmp(style->str, "list") == 0) f->style = EG_FS_LIST;
    else if (strcmp(style->str, "map") == 0) f->style = EG_FS_MAP;
    else if (strcmp(style->str, "flat") == 0) f->style = EG_FS_FLAT;
    else {
        rc = eg_yerr(c->doc, style, c->err, c->errlen, "style must be list, map or flat");
        goto out;
    }
    if ((rc = dup_scalar(c, n, "key", 1, &f->key))) goto out;
    if (f->style == EG_FS_FLAT && (rc = dup_scalar(c, n, "list", 1, &f->list_key))) goto out;
    if (f->style == EG_FS_MAP) {
        const eg_ynode_t *name = eg_ymap_get(n, "name");
        if (!name) {
            rc = eg_yerr(c->doc, n, c->err, c->errlen, "map style needs 'name: $field.field'");
            goto out;
        }
        if ((rc = compile_slot(c, name, &f->name))) goto out;
    } else {
        const eg_ynode_t *item = eg_ymap_get(n, "item");
        if (!item) {
            rc = eg_yerr(c->doc, n, c->err, c->errlen, "%s style needs an 'item' template",
                         style->str);
            goto out;
        }
        if ((rc = compile_object(c, item, 1, &f->item))) goto out;
        if (f->style == EG_FS_FLAT) {
            int found = 0;
            for (size_t i = 0; i < f->item->n; i++)
                if (strcmp(f->item->members[i].name, f->key) == 0 &&
                    f->item->members[i].node->kind == EG_T_SLOT)
                    found = 1;
            if (!found) {
                rc = eg_yerr(c->doc, n, c->err, c->errlen,
                             "flat key '%s' must be a slot member of the item", f->key);
                goto out;
            }
        }
    }
out:
    if (rc) fields_free(f);
    else *out = f;
    return rc;
}

/* `,"name":` with the name escaped as JSON, built once at load time. */
static char *member_key(const char *name, size_t *len)
{
    char tmp[1];
    size_t nlen = strlen(name);
    eg_jsonw_t w = {tmp, 0, 0};
    eg_jsonw_str(&w, name, nlen);
    size_t need = w.pos + 2;
    char *k = calloc(1, need + 1 + EG_JSONW_PAD); /* padded: see eg_jsonw_put_padded */
    if (!k) return NULL;
    eg_jsonw_t w2 = {k + 1, need, 0};
    k[0] = ',';
    eg_jsonw_str(&w2, name, nlen);
    k[w2.pos + 1] = ':';
    k[need] = '\0';
    *len = need;
    return k;
}

static int compile_object(cctx_t *c, const eg_ynode_t *n, int in_item, eg_tnode_t **out)
{
    if (n->kind != EG_Y_MAP)
        return eg_yerr(c->doc, n, c->err, c->errlen, "expected a template object (a map)");
    eg_tnode_t *t = calloc(1, sizeof(*t));
    if (!t) return EG_ENOMEM;
    t->kind = EG_T_OBJECT;
    int rc = EG_OK;
    if (!(t->members = calloc(n->n ? n->n : 1, sizeof(*t->members)))) {
        rc = EG_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
        if (k->str[0] == '$') {
            if (strcmp(k->str, "$details") == 0) {
                if ((rc = check_merge(c, v))) goto out;
                t->merge_details = 1;
            } else if (strcmp(k->str, "$meta") == 0) {
                if ((rc = check_merge(c, v))) goto out;
                t->merge_meta = 1;
            } else if (strcmp(k->str, "$extra") == 0) {
                if ((rc = check_merge(c, v))) goto out;
                if (!in_item) {
                    rc = eg_yerr(c->doc, k, c->err, c->errlen,
                                 "$extra belongs in a field-error item template");
                    goto out;
                }
                t->merge_extra = 1;
            } else if (strcmp(k->str, "$fields") == 0) {
                if (in_item) {
                    rc = eg_yerr(c->doc, k, c->err, c->errlen, "$fields cannot nest");
                    goto out;
                }
                if (t->fields) {
                    rc = eg_yerr(c->doc, k, c->err, c->errlen, "one $fields per object");
                    goto out;
                }
                if ((rc = compile_fields(c, v, &t->fields))) goto out;
            } else {
                rc = eg_yerr(c->doc, k, c->err, c->errlen,
                             "unknown directive '%s' ($fields, $details, $meta, $extra)", k->str);
                goto out;
            }
            continue;
        }
        eg_tmember_t *m = &t->members[t->n];
        m->namelen = strlen(k->str);
        if (!(m->name = strdup(k->str)) || !(m->key = member_key(k->str, &m->keylen))) {
            rc = EG_ENOMEM;
            t->n++;
            goto out;
        }
        t->n++;
        const eg_ynode_t *split = v->kind == EG_Y_MAP ? eg_ymap_get(v, "$split") : NULL;
        if (split) {
            if (v->n != 1 || in_item) {
                rc = eg_yerr(c->doc, v, c->err, c->errlen,
                             "$split must be alone and at document level");
                goto out;
            }
            if (!(m->node = calloc(1, sizeof(*m->node)))) {
                rc = EG_ENOMEM;
                goto out;
            }
            m->node->kind = EG_T_SPLIT;
            if ((rc = compile_object(c, split, 1, &m->node->item))) goto out;
        } else if (v->kind == EG_Y_SCALAR ||
                   (v->kind == EG_Y_MAP && eg_ymap_get(v, "slot") != NULL)) {
            if (!(m->node = calloc(1, sizeof(*m->node)))) {
                rc = EG_ENOMEM;
                goto out;
            }
            m->node->kind = EG_T_SLOT;
            if ((rc = compile_slot(c, v, &m->node->slot))) goto out;
            int first = m->node->slot.chain[0];
            if (!in_item && first >= EG_SL_F_BASE) {
                rc = eg_yerr(c->doc, v, c->err, c->errlen,
                             "field slot '%s' outside a field-error item", eg__slot_name(first));
                goto out;
            }
        } else {
            if ((rc = compile_object(c, v, in_item, &m->node))) goto out;
        }
    }
out:
    if (rc) node_free(t);
    else *out = t;
    return rc;
}

/* Computes eg_tnode_t.needs bottom-up (see dialect_int.h). */
static uint32_t compute_needs(eg_tnode_t *t)
{
    uint32_t m = 0;
    if (t->kind == EG_T_SLOT) {
        for (int i = 0; i < t->slot.n; i++) m |= 1u << t->slot.chain[i];
        if (t->slot.fallback_catalog || t->slot.deflt || t->slot.chain[0] == EG_SL_STATUS)
            m |= EG_NEED_ALWAYS;
    } else if (t->kind == EG_T_SPLIT) {
        compute_needs(t->item);
        m = EG_NEED_ALWAYS; /* the array is always written */
    } else {
        for (size_t i = 0; i < t->n; i++) {
            eg_tmember_t *mb = &t->members[i];
            m |= mb->needs = compute_needs(mb->node);
            mb->kind = mb->node->kind;
            mb->slot = mb->node->slot;
        }
        if (t->merge_details) m |= EG_NEED_DETAILS;
        if (t->merge_meta) m |= EG_NEED_META;
        if (t->merge_extra) m |= EG_NEED_EXTRA;
        if (t->fields) {
            m |= EG_NEED_FIELDS;
            if (t->fields->item) compute_needs(t->fields->item);
        }
    }
    t->needs = m;
    return m;
}

static int compile_dialect(cctx_t *c, const eg_ynode_t *root, eg_dialect_t *d)
{
    static const char *const known[] = {"name", "summary", "media_type", "code_case",
                                        "status_overrides", "pointer_prefix", "body",
                                        "code_map", "detail_names"};
    int rc;
    if (!root || root->kind != EG_Y_MAP)
        return eg_yerr(c->doc, root, c->err, c->errlen, "a dialect file is a YAML map");
    for (size_t i = 0; i < root->n; i++) {
        const eg_ynode_t *k = root->items[2 * i];
        size_t j = 0;
        while (j < sizeof(known) / sizeof(known[0]) && strcmp(known[j], k->str)) j++;
        if (j == sizeof(known) / sizeof(known[0]))
            return eg_yerr(c->doc, k, c->err, c->errlen, "unknown key '%s'", k->str);
    }
    if ((rc = dup_scalar(c, root, "name", 1, &d->name))) return rc;
    for (const char *p = d->name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-' || *p == '_'))
            return eg_yerr(c->doc, eg_ymap_get(root, "name"), c->err, c->errlen,
                           "name must be lower-case letters, digits, '-' or '_'");
    if ((rc = dup_scalar(c, root, "summary", 0, &d->summary))) return rc;
    if ((rc = dup_scalar(c, root, "media_type", 0, &d->media_type))) return rc;
    if (!d->media_type && !(d->media_type = strdup("application/json; charset=utf-8")))
        return EG_ENOMEM;
    if ((rc = dup_scalar(c, root, "pointer_prefix", 0, &d->pointer_prefix))) return rc;
    if (!d->pointer_prefix && !(d->pointer_prefix = strdup("/"))) return EG_ENOMEM;
    const eg_ynode_t *cc = eg_ymap_get(root, "code_case");
    if (cc) {
        if (cc->kind == EG_Y_SCALAR && strcmp(cc->str, "upper") == 0) d->code_case = EG_CASE_UPPER;
        else if (cc->kind == EG_Y_SCALAR && strcmp(cc->str, "lower") == 0)
            d->code_case = EG_CASE_LOWER;
        else if (cc->kind != EG_Y_SCALAR || strcmp(cc->str, "keep") != 0)
            return eg_yerr(c->doc, cc, c->err, c->errlen, "code_case must be upper, lower or keep");
    }
    const eg_ynode_t *so = eg_ymap_get(root, "status_overrides");
    if (so) {
        if (so->kind != EG_Y_MAP)
            return eg_yerr(c->doc, so, c->err, c->errlen, "status_overrides: {code: status}");
        if (!(d->overrides = calloc(so->n ? so->n : 1, sizeof(*d->overrides)))) return EG_ENOMEM;
        for (size_t i = 0; i < so->n; i++) {
            long long st;
            if ((rc = eg_yscalar_int(c->doc, so->items[2 * i + 1], 100, 599, &st, c->err,
                                     c->errlen)))
                return rc;
            if (!(d->overrides[i].code = strdup(so->items[2 * i]->str))) return EG_ENOMEM;
            d->overrides[i].status = (int)st;
            d->noverrides++;
        }
    }
    const eg_ynode_t *cm = eg_ymap_get(root, "code_map");
    if (cm) {
        if (cm->kind != EG_Y_MAP)
            return eg_yerr(c->doc, cm, c->err, c->errlen, "code_map: {precise_code: page_code}");
        for (size_t i = 0; i < cm->n; i++) {
            const eg_ynode_t *to = cm->items[2 * i + 1];
            if (to->kind != EG_Y_SCALAR || !to->len)
                return eg_yerr(c->doc, to, c->err, c->errlen, "a code_map value is a code");
            if ((rc = eg_dialect_map_code(d, cm->items[2 * i]->str, to->str))) return rc;
        }
    }
    const eg_ynode_t *dn = eg_ymap_get(root, "detail_names");
    if (dn) {
        if (dn->kind != EG_Y_MAP)
            return eg_yerr(c->doc, dn, c->err, c->errlen, "detail_names: {model_name: this_dialects_name}");
        if (!(d->dnames = calloc(dn->n ? dn->n : 1, sizeof(*d->dnames)))) return EG_ENOMEM;
        for (size_t i = 0; i < dn->n; i++) {
            const eg_ynode_t *to = dn->items[2 * i + 1];
            if (to->kind != EG_Y_SCALAR || !to->len)
                return eg_yerr(c->doc, to, c->err, c->errlen, "a detail_names value is a member name");
            eg_codemap_t *m = &d->dnames[d->ndnames++];
            if (!(m->from = strdup(dn->items[2 * i]->str)) || !(m->to = strdup(to->str))) return EG_ENOMEM;
        }
    }
    const eg_ynode_t *body = eg_ymap_get(root, "body");
    if (!body) return eg_yerr(c->doc, root, c->err, c->errlen, "missing 'body' template");
    if ((rc = compile_object(c, body, 0, &d->body))) return rc;
    compute_needs(d->body);
    return EG_OK;
}

/* Compiles a parsed document into *out; frees the document either way. */
static int compile_doc(eg_ydoc_t *doc, eg_dialect_t **out, char *err, size_t errlen)
{
    eg_dialect_t *d = calloc(1, sizeof(*d));
    int rc = d ? EG_OK : EG_ENOMEM;
    if (d) {
        cctx_t c = {doc, err, errlen};
        rc = compile_dialect(&c, eg_ydoc_root(doc), d);
    }
    eg_ydoc_free(doc);
    if (rc) {
        eg_dialect_free(d);
        return rc;
    }
    *out = d;
    return EG_OK;
}

int eg_dialect_load_yaml(const char *text, size_t len, const char *name, eg_dialect_t **out,
                         char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_parse(text, len, name, &doc, err, errlen);
    return rc ? rc : compile_doc(doc, out, err, errlen);
}

int eg_dialect_load_file(const char *path, eg_dialect_t **out, char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_load_file(path, &doc, err, errlen);
    return rc ? rc : compile_doc(doc, out, err, errlen);
}

const char *eg_dialect_name(const eg_dialect_t *d)
{
    return d->name;
}

const char *eg_dialect_media_type(const eg_dialect_t *d)
{
    return d->media_type;
}

const char *eg_dialect_summary(const eg_dialect_t *d)
{
    return d->summary ? d->summary : "";
}

int eg__dialect_status_ent(const eg_dialect_t *d, const eg_catalog_entry_t *ent,
                           const eg_error_t *e)
{
    if (e->status >= 100 && e->status <= 599) return e->status;
    const char *code = e->s[EG_S_CODE];
    if (code) {
        for (size_t i = 0; i < d->noverrides; i++)
            if (strcmp(d->overrides[i].code, code) == 0) return d->overrides[i].status;
        if (!ent) return 500;
        /* the dialect's validation status covers the whole class (one
         * source for `errgate docs` and the gateway's answers) */
        if (d->noverrides && ent->status == 400 && ent->type && strcmp(ent->type, "validation_error") == 0 &&
            strcmp(ent->code, "invalid_json") != 0)
            for (size_t i = 0; i < d->noverrides; i++)
                if (strcmp(d->overrides[i].code, "validation_error") == 0) return d->overrides[i].status;
        return ent->status;
    }
    return 500;
}

const char *eg__dialect_detail_name(const eg_dialect_t *d, const char *name, size_t n, int to_dialect,
                                    size_t *outlen)
{
    for (size_t i = 0; i < d->ndnames; i++) {
        const char *a = to_dialect ? d->dnames[i].from : d->dnames[i].to;
        if (strlen(a) == n && memcmp(a, name, n) == 0) {
            const char *b = to_dialect ? d->dnames[i].to : d->dnames[i].from;
            *outlen = strlen(b);
            return b;
        }
    }
    *outlen = n;
    return name;
}

const char *eg__dialect_mapped(const eg_dialect_t *d, const char *code)
{
    for (size_t i = 0; code && i < d->ncmap; i++)
        if (d->cmap[i].from[0] == code[0] && strcmp(d->cmap[i].from, code) == 0) return d->cmap[i].to;
    return NULL;
}

const char *eg_dialect_mapped_code(const eg_dialect_t *d, const char *code)
{
    const char *to = eg__dialect_mapped(d, code);
    return to && strcmp(to, code) != 0 ? to : NULL;
}

const char *eg__dialect_answer(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_catalog_entry_t *ent,
                               const char *code)
{
    if (!code) return NULL;
    const char *to = d->ncmap ? eg__dialect_mapped(d, code) : NULL;
    if (to) return strcmp(to, code) != 0 ? to : NULL; /* a pair to itself: keep, whatever the catalog says */
    return ent ? eg_catalog_answered_as(cat, ent, d->name) : NULL;
}

const char *eg_dialect_answer_code(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code)
{
    return eg__dialect_answer(d, cat, cat && code ? eg_catalog_find(cat, code) : NULL, code);
}

int eg_dialect_map_code(eg_dialect_t *d, const char *from, const char *to)
{
    size_t i = 0;
    while (i < d->ncmap && strcmp(d->cmap[i].from, from) != 0) i++;
    /* keeping a code is a pair to itself: it overrides a catalog's answered_as too */
    if (!to) to = from;
    char *t = strdup(to);
    if (!t) return EG_ENOMEM;
    if (i < d->ncmap) {
        free(d->cmap[i].to);
        d->cmap[i].to = t;
        return EG_OK;
    }
    eg_codemap_t *p = realloc(d->cmap, (d->ncmap + 1) * sizeof(*p));
    char *f = strdup(from);
    if (!p || !f) {
        if (p) d->cmap = p;
        free(t);
        free(f);
        return EG_ENOMEM;
    }
    d->cmap = p;
    d->cmap[d->ncmap++] = (eg_codemap_t){f, t};
    return EG_OK;
}

int eg_dialect_code_status(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code)
{
    eg_error_t e;
    memset(&e, 0, sizeof(e));
    e.s[EG_S_CODE] = code;
    return eg_dialect_status(d, cat, &e);
}

/* The catalog entry of e's code: the one remembered when the code was set,
 * else a lookup. */
static const eg_catalog_entry_t *entry_of(const eg_catalog_t *cat, const eg_error_t *e)
{
    const char *code = e->s[EG_S_CODE];
    if (!code || !cat) return NULL;
    if (e->ent && e->ent_cat == cat && e->ent_code == code) return e->ent;
    return eg_catalog_find(cat, code);
}

int eg_dialect_status(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_error_t *e)
{
    return eg__dialect_status_ent(d, entry_of(cat, e), e);
}

const char *eg__dialect_code_src(const eg_dialect_t *d, const eg_catalog_entry_t *ent, const char *code,
                                 eg_case_t *cs)
{
    const char *sp = ent ? eg_catalog_spelling(ent, d->name) : NULL;
    *cs = sp || !ent ? EG_CASE_KEEP : d->code_case;
    return sp ? sp : code ? code : "";
}

void eg__code_recase(char *dst, const char *src, size_t n, eg_case_t cs)
{
    for (size_t i = 0; i < n; i++) {
        char ch = src[i];
        if (cs == EG_CASE_UPPER && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        else if (cs == EG_CASE_LOWER && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        dst[i] = ch;
    }
}

static size_t code_as(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_catalog_entry_t *ent,
                      const char *code, int map, char *buf, size_t cap)
{
    eg_case_t cs;
    const char *to = map ? eg__dialect_answer(d, cat, ent, code) : NULL;
    if (to) { /* the page's coarser code, as the body writes it */
        code = to;
        ent = eg_catalog_find(cat, to);
    }
    const char *src = eg__dialect_code_src(d, ent, code, &cs);
    size_t n = strlen(src);
    if (cap) {
        size_t k = n < cap ? n : cap - 1;
        eg__code_recase(buf, src, k, cs);
        buf[k] = '\0';
    }
    return n;
}

size_t eg_dialect_code(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code,
                       char *buf, size_t cap)
{
    return code_as(d, cat, cat && code ? eg_catalog_find(cat, code) : NULL, code, 0, buf, cap);
}

size_t eg_dialect_error_code(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_error_t *e,
                             char *buf, size_t cap)
{
    return code_as(d, cat, entry_of(cat, e), e->s[EG_S_CODE], 1, buf, cap);
}

/* --- sets --- */

struct eg_dialects_s {
    eg_dialect_t **items;
    size_t n, cap;
};

int eg_dialects_add(eg_dialects_t *set, eg_dialect_t *d)
{
    for (size_t i = 0; i < set->n; i++) {
        if (strcmp(set->items[i]->name, d->name) == 0) {
            eg_dialect_free(set->items[i]);
            set->items[i] = d;
            return EG_OK;
        }
    }
    if (set->n == set->cap) {
        size_t ncap = set->cap ? set->cap * 2 : 8;
        eg_dialect_t **p = realloc(set->items, ncap * sizeof(*p));
        if (!p) return EG_ENOMEM;
        set->items = p;
        set->cap = ncap;
    }
    set->items[set->n++] = d;
    return EG_OK;
}

void eg_dialects_free(eg_dialects_t *set)
{
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) eg_dialect_free(set->items[i]);
    free(set->items);
    free(set);
}

/* Built-ins in the order detection prefers them on a tie. */
static const char *const builtin_order[] = {"problem",  "jsonapi",    "envelope",
                                            "typed",    "flat-snake", "flat-camel"};

int eg_dialects_new_builtin(eg_dialects_t **out)
{
    eg_dialects_t *set = calloc(1, sizeof(*set));
    if (!set) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t k = 0; k < sizeof(builtin_order) / sizeof(builtin_order[0]) && !rc; k++) {
        for (size_t i = 0; i < eg__builtin_dialect_count; i++) {
            const eg__embedded_t *f = &eg__builtin_dialect[i];
            if (strcmp(f->name, builtin_order[k]) != 0) continue;
            /* a broken built-in is a build defect: the unit tests catch it */
            char err[256];
            eg_dialect_t *d = NULL;
            rc = eg_dialect_load_yaml(f->data, f->len, f->name, &d, err, sizeof(err));
            if (rc == EG_OK && (rc = eg_dialects_add(set, d)) != EG_OK) eg_dialect_free(d);
        }
    }
    if (rc == EG_OK && set->n != sizeof(builtin_order) / sizeof(builtin_order[0])) rc = EG_ENOENT;
    if (rc) {
        eg_dialects_free(set);
        return rc;
    }
    *out = set;
    return EG_OK;
}

eg_dialect_t *eg_dialects_get_mut(eg_dialects_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0) return set->items[i];
    return NULL;
}

const eg_dialect_t *eg_dialects_get(const eg_dialects_t *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0) return set->items[i];
    return NULL;
}

size_t eg_dialects_count(const eg_dialects_t *set)
{
    return set->n;
}

const eg_dialect_t *eg_dialects_at(const eg_dialects_t *set, size_t i)
{
    return i < set->n ? set->items[i] : NULL;
}

const eg_dialect_t *eg_dialects_detect(const eg_dialects_t *set, const json_t *doc)
{
    if (!json_is_object(doc)) return NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    if (!text) return NULL;
    eg_jr_doc_t jd;
    const eg_dialect_t *best = NULL;
    if (eg_jr_parse(&jd, text, strlen(text)) == EG_OK) best = eg__dialects_detect_tape(set, &jd);
    eg_jr_free(&jd);
    free(text);
    return best;
}

const eg_dialect_t *eg__dialects_detect_tape(const eg_dialects_t *set, const eg_jr_doc_t *doc)
{
    const eg_dialect_t *best = NULL;
    int best_score = 1; /* one matching member is not enough to call it a dialect */
    for (size_t i = 0; i < set->n; i++) {
        int s = eg__dialect_match_tape(set->items[i], doc);
        if (s > best_score) {
            best = set->items[i];
            best_score = s;
        }
    }
    return best;
}

/* Length of the media type's essence ("application/problem+json" of
 * "application/problem+json; charset=utf-8"). */
static size_t essence_len(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] != ';' && s[i] != ' ' && s[i] != '\t' && s[i] != ',') i++;
    return i;
}

/* q value of one Accept member's parameters ("; q=0.5"); 1000 = q=1. */
static int accept_q(const char *p, size_t n)
{
    for (size_t i = 0; i + 2 < n; i++) {
        if ((p[i] == 'q' || p[i] == 'Q') && p[i + 1] == '=' && (i == 0 || p[i - 1] == ';' ||
                                                                 p[i - 1] == ' ')) {
            const char *v = p + i + 2;
            size_t m = n - i - 2;
            if (m >= 1 && v[0] == '1') return 1000;
            if (m >= 1 && v[0] == '0') {
                int q = 0, scale = 100;
                for (size_t k = 2; k < m && k < 5 && v[1] == '.'; k++) {
                    if (v[k] < '0' || v[k] > '9') break;
                    q += (v[k] - '0') * scale;
                    scale /= 10;
                }
                return q;
            }
            return 0;
        }
    }
    return 1000;
}

const eg_dialect_t *eg_dialects_negotiate(const eg_dialects_t *set, const eg_dialect_t *dflt,
                                          const char *accept, size_t n)
{
    const eg_dialect_t *best = NULL;
    int best_q = 0;
    size_t i = 0;
    while (accept && i < n) {
        while (i < n && (accept[i] == ' ' || accept[i] == '\t' || accept[i] == ',')) i++;
        size_t start = i;
        while (i < n && accept[i] != ',') i++;
        const char *m = accept + start;
        size_t mlen = i - start, elen = essence_len(m, mlen);
        if (elen == 0) continue;
        int q = accept_q(m + elen, mlen - elen);
        if (q <= best_q) continue;
        for (size_t k = 0; k < set->n; k++) {
            const char *mt = set->items[k]->media_type;
            size_t mtlen = essence_len(mt, strlen(mt));
            if (mtlen == 16 && strncasecmp(mt, "application/json", 16) == 0) continue;
            if (mtlen == elen && strncasecmp(mt, m, elen) == 0) {
                best = set->items[k];
                best_q = q;
                break;
            }
        }
    }
    return best ? best : dflt;
}

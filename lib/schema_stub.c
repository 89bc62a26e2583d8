/* schema_stub.c - TEMPORARY: a small subset of schema.h (type, minimum,
 * maximum, exclusive bounds as numbers, minLength, maxLength, enum, format,
 * properties, required, additionalProperties: false, items), so that the
 * validation stage builds and its tests run before the JSON Schema engine
 * (branch `schema`) is merged. Every function is weak: the engine's
 * lib/schema.c replaces them when both are linked, and this file is deleted
 * in the commit that merges it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "schema.h"

struct eg_snode_s {
    unsigned types;
    int has_min, has_max, xmin, xmax;
    double min, max;
    long long minlen, maxlen;
    json_t *en;
    eg_format_t fmt;
    char **props;
    struct eg_snode_s **pschemas;
    size_t nprops;
    char **req;
    size_t nreq;
    int noadd;
    struct eg_snode_s *items;
};
struct eg_schema_s {
    struct eg_snode_s *root;
};

static unsigned tbit(const char *s)
{
    if (!strcmp(s, "null")) return EG_ST_NULL;
    if (!strcmp(s, "boolean")) return EG_ST_BOOLEAN;
    if (!strcmp(s, "integer")) return EG_ST_INTEGER;
    if (!strcmp(s, "number")) return EG_ST_NUMBER;
    if (!strcmp(s, "string")) return EG_ST_STRING;
    if (!strcmp(s, "array")) return EG_ST_ARRAY;
    if (!strcmp(s, "object")) return EG_ST_OBJECT;
    return 0;
}

static void nfree(struct eg_snode_s *n)
{
    if (!n) return;
    json_decref(n->en);
    for (size_t i = 0; i < n->nprops; i++) {
        free(n->props[i]);
        nfree(n->pschemas[i]);
    }
    free(n->props);
    free(n->pschemas);
    for (size_t i = 0; i < n->nreq; i++)
        free(n->req[i]);
    free(n->req);
    nfree(n->items);
    free(n);
}

static struct eg_snode_s *comp(const eg_ydoc_t *doc, const eg_ynode_t *y, char *err, size_t errlen,
                               int *rc)
{
    struct eg_snode_s *n = calloc(1, sizeof(*n));
    n->minlen = n->maxlen = -1;
    if (!y || y->kind != EG_Y_MAP) return n;
    for (size_t i = 0; i < y->n; i++) {
        const char *k = y->items[2 * i]->str;
        const eg_ynode_t *v = y->items[2 * i + 1];
        if (!strcmp(k, "type")) {
            if (v->kind == EG_Y_SCALAR) {
                n->types = tbit(v->str);
                if (!n->types) {
                    *rc = eg_yerr(doc, v, err, errlen, "unknown type '%s'", v->str);
                    return n;
                }
            } else
                for (size_t j = 0; j < v->n; j++)
                    n->types |= tbit(v->items[j]->str);
        } else if (!strcmp(k, "minimum"))
            n->has_min = 1, n->min = atof(v->str);
        else if (!strcmp(k, "maximum"))
            n->has_max = 1, n->max = atof(v->str);
        else if (!strcmp(k, "exclusiveMinimum"))
            n->has_min = n->xmin = 1, n->min = atof(v->str);
        else if (!strcmp(k, "exclusiveMaximum"))
            n->has_max = n->xmax = 1, n->max = atof(v->str);
        else if (!strcmp(k, "minLength"))
            n->minlen = atoll(v->str);
        else if (!strcmp(k, "maxLength"))
            n->maxlen = atoll(v->str);
        else if (!strcmp(k, "enum"))
            n->en = eg_ynode_to_json(v);
        else if (!strcmp(k, "format")) {
            if (eg_format_lookup(v->str, v->len, &n->fmt)) {
                *rc = eg_yerr(doc, v, err, errlen, "unknown format '%s'", v->str);
                return n;
            }
        } else if (!strcmp(k, "additionalProperties"))
            n->noadd = !strcmp(v->str ? v->str : "", "false");
        else if (!strcmp(k, "required")) {
            n->req = calloc(v->n + 1, sizeof(char *));
            for (size_t j = 0; j < v->n; j++)
                n->req[n->nreq++] = strdup(v->items[j]->str);
        } else if (!strcmp(k, "items"))
            n->items = comp(doc, v, err, errlen, rc);
        else if (!strcmp(k, "properties")) {
            n->props = calloc(v->n + 1, sizeof(char *));
            n->pschemas = calloc(v->n + 1, sizeof(void *));
            for (size_t j = 0; j < v->n; j++) {
                n->props[n->nprops] = strdup(v->items[2 * j]->str);
                n->pschemas[n->nprops++] = comp(doc, v->items[2 * j + 1], err, errlen, rc);
            }
        }
    }
    return n;
}

__attribute__((weak)) int eg_schema_compile(const eg_ydoc_t *doc, const eg_ynode_t *at,
                                            const eg_schema_opts_t *opts, eg_schema_t **out,
                                            char *err, size_t errlen)
{
    (void)opts;
    int rc = 0;
    eg_schema_t *s = calloc(1, sizeof(*s));
    s->root = comp(doc, at ? at : eg_ydoc_root(doc), err, errlen, &rc);
    if (rc) {
        eg_schema_free(s);
        return rc;
    }
    *out = s;
    return EG_OK;
}

__attribute__((weak)) void eg_schema_free(eg_schema_t *s)
{
    if (!s) return;
    nfree(s->root);
    free(s);
}

__attribute__((weak)) unsigned eg_schema_types(const eg_schema_t *s)
{
    return s->root->types;
}
__attribute__((weak)) unsigned eg_schema_item_types(const eg_schema_t *s)
{
    return s->root->items ? s->root->items->types : 0;
}

static void report(eg_schema_report_t *r, const char *ptr, const char *kw, const char *msg,
                   json_t *val)
{
    r->count++;
    if (!r->e || r->e->nfields >= r->max) {
        json_decref(val);
        return;
    }
    eg_field_error_t *f = eg_error_add_field(r->e);
    char p[512];
    snprintf(p, sizeof(p), "%s%s", r->prefix ? r->prefix : "", ptr);
    eg_field_set(r->e, f, EG_F_POINTER, p);
    char fld[512];
    const char *root = r->field_root ? r->field_root : "body";
    snprintf(fld, sizeof(fld), "%s", ptr[0] ? ptr + 1 : root);
    for (char *q = fld; *q; q++)
        if (*q == '/') *q = '.';
    eg_field_set(r->e, f, EG_F_FIELD, fld);
    eg_field_set(r->e, f, EG_F_CONSTRAINT, kw);
    eg_field_set(r->e, f, EG_F_MESSAGE, msg);
    if (val) eg_field_set_value(f, val);
}

static unsigned tok_type(const eg_jr_tok_t *t)
{
    switch (t->type) {
    case EG_JR_NULL:
        return EG_ST_NULL;
    case EG_JR_TRUE:
    case EG_JR_FALSE:
        return EG_ST_BOOLEAN;
    case EG_JR_INT:
        return EG_ST_INTEGER | EG_ST_NUMBER;
    case EG_JR_REAL:
        return ((t->dval > -1e15 && t->dval < 1e15 && t->dval == (double)(long long)t->dval) ? EG_ST_INTEGER : 0) | EG_ST_NUMBER;
    case EG_JR_STRING:
        return EG_ST_STRING;
    case EG_JR_ARRAY:
        return EG_ST_ARRAY;
    default:
        return EG_ST_OBJECT;
    }
}

static void val(const struct eg_snode_s *n, const eg_jr_doc_t *d, const eg_jr_tok_t *t,
                const char *ptr, eg_schema_report_t *r)
{
    if (!r->e && r->count) return;
    unsigned tt = tok_type(t);
    if (n->types && !(n->types & tt)) {
        report(r, ptr, "type", "has the wrong type", NULL);
        return;
    }
    if (tt & EG_ST_NUMBER) {
        double v = t->type == EG_JR_INT ? (double)t->ival : t->dval;
        if (n->has_min && (n->xmin ? v <= n->min : v < n->min))
            report(r, ptr, n->xmin ? "exclusiveMinimum" : "minimum", "is too small",
                   eg_jr_to_json(d, t));
        if (n->has_max && (n->xmax ? v >= n->max : v > n->max))
            report(r, ptr, n->xmax ? "exclusiveMaximum" : "maximum", "is too large",
                   eg_jr_to_json(d, t));
    }
    if (t->type == EG_JR_STRING) {
        char buf[4096];
        size_t len = eg_jr_str(d, t, buf, sizeof(buf));
        size_t cps = 0;
        for (size_t i = 0; i < len && i < sizeof(buf); i++)
            if (((unsigned char)buf[i] & 0xC0) != 0x80) cps++;
        if (n->minlen >= 0 && (long long)cps < n->minlen)
            report(r, ptr, "minLength", "is too short", eg_jr_to_json(d, t));
        if (n->maxlen >= 0 && (long long)cps > n->maxlen)
            report(r, ptr, "maxLength", "is too long", eg_jr_to_json(d, t));
        if (n->fmt && !eg_format_check(n->fmt, buf, len))
            report(r, ptr, "format", "must be a valid format", eg_jr_to_json(d, t));
    }
    if (n->en) {
        json_t *j = eg_jr_to_json(d, t);
        int ok = 0;
        size_t i;
        json_t *x;
        json_array_foreach(n->en, i, x) if (json_equal(x, j)) ok = 1;
        if (!ok)
            report(r, ptr, "enum", "must be one of the allowed values", j);
        else
            json_decref(j);
    }
    if (t->type == EG_JR_OBJECT) {
        for (size_t i = 0; i < n->nreq; i++)
            if (!eg_jr_get(d, t, n->req[i], strlen(n->req[i]))) {
                char p[512];
                snprintf(p, sizeof(p), "%s/%s", ptr, n->req[i]);
                report(r, p, "required", "is required", json_null());
            }
        const eg_jr_tok_t *k = t + 1;
        for (uint32_t i = 0; i < t->count; i++) {
            const eg_jr_tok_t *v = k + 1;
            char name[256];
            size_t kl = eg_jr_str(d, k, name, sizeof(name) - 1);
            name[kl < 255 ? kl : 255] = 0;
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", ptr, name);
            int found = 0;
            for (size_t j = 0; j < n->nprops; j++)
                if (!strcmp(n->props[j], name)) {
                    found = 1;
                    val(n->pschemas[j], d, v, p, r);
                }
            if (!found && n->noadd) report(r, p, "additionalProperties", "is not allowed", NULL);
            k = d->toks + v->end;
        }
    }
    if (t->type == EG_JR_ARRAY && n->items) {
        const eg_jr_tok_t *v = t + 1;
        for (uint32_t i = 0; i < t->count; i++) {
            char p[512];
            snprintf(p, sizeof(p), "%s/%u", ptr, i);
            val(n->items, d, v, p, r);
            v = d->toks + v->end;
        }
    }
}

__attribute__((weak)) int eg_schema_validate(const eg_schema_t *s, const eg_jr_doc_t *doc,
                                             const eg_jr_tok_t *tok, eg_schema_report_t *rep)
{
    size_t before = rep->count;
    val(s->root, doc, tok ? tok : doc->toks, "", rep);
    return rep->count > before ? EG_ERANGE : EG_OK;
}

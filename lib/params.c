/* params.c - OpenAPI parameter serialization, coercion and checking (see params.h).
 *
 * One pass per rule over its source (the query pairs, a captured path
 * segment, the header fields): the parameter's pieces are decoded into a
 * scratch buffer and appended, coerced, to a small JSON text (jb_t: a stack
 * buffer that moves to the heap only when a value outgrows it), which is
 * parsed onto a jsonr tape and given to eg_schema_validate, counting only.
 * When the schema says no, it is asked again with a scratch error to learn
 * which keyword failed, and the problem is worded here, in the seeds'
 * words, from what the rule read off its schema node (both bounds of a
 * range, the enum's values, the format's name). The rules that take their
 * name's first pair (most) find their pairs in one pass over the query;
 * a deepObject or an exploded array rule scans it on its own.
 */
#include "params.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonr.h"
#include "utf8.h"

/* ------------------------------------------------------------ rules */

int eg_param_style_parse(const char *s, eg_param_in_t in, eg_param_style_t *out)
{
    static const struct {
        const char *name;
        eg_param_style_t style;
        unsigned ins; /* bit per eg_param_in_t */
    } t[] = {
        {"form", EG_PSTYLE_FORM, 1u << EG_PIN_QUERY | 1u << EG_PIN_FORM},
        {"spaceDelimited", EG_PSTYLE_SPACE, 1u << EG_PIN_QUERY | 1u << EG_PIN_FORM},
        {"pipeDelimited", EG_PSTYLE_PIPE, 1u << EG_PIN_QUERY | 1u << EG_PIN_FORM},
        {"deepObject", EG_PSTYLE_DEEP, 1u << EG_PIN_QUERY | 1u << EG_PIN_FORM},
        {"simple", EG_PSTYLE_SIMPLE, 1u << EG_PIN_PATH | 1u << EG_PIN_HEADER},
        {"label", EG_PSTYLE_LABEL, 1u << EG_PIN_PATH},
        {"matrix", EG_PSTYLE_MATRIX, 1u << EG_PIN_PATH},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(s, t[i].name) == 0) {
            if (!(t[i].ins >> in & 1)) return EG_EINVAL;
            *out = t[i].style;
            return EG_OK;
        }
    return EG_EINVAL;
}

int eg_param_name_is_secret(const char *name, size_t n)
{
    static const char *const exact[] = {"authorization", "proxy-authorization", "cookie",
                                        "set-cookie"};
    static const char *const part[] = {"key",     "token",     "secret",     "password", "passwd",
                                       "session", "signature", "credential", "api-key",  "auth"};
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strlen(exact[i]) == n && strncasecmp(exact[i], name, n) == 0) return 1;
    for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++) {
        size_t k = strlen(part[i]);
        for (size_t j = 0; j + k <= n; j++)
            if (strncasecmp(name + j, part[i], k) == 0) return 1;
    }
    return 0;
}

int eg_param_rule_init(eg_param_rule_t *r, const char *name, size_t n, eg_param_in_t in)
{
    memset(r, 0, sizeof(*r));
    if (!(r->name = strndup(name, n))) return EG_ENOMEM;
    r->name_len = n;
    r->in = in;
    r->style = in == EG_PIN_PATH || in == EG_PIN_HEADER ? EG_PSTYLE_SIMPLE : EG_PSTYLE_FORM;
    r->explode = r->style == EG_PSTYLE_FORM;
    r->secret = eg_param_name_is_secret(name, n);
    r->min_len = r->max_len = -1;
    return EG_OK;
}

void eg_param_rule_free(eg_param_rule_t *r)
{
    if (!r) return;
    free(r->name);
    eg_schema_free(r->schema);
    json_decref(r->allowed);
    free(r->format);
    free(r->pattern);
    free(r->code);
    free(r->message);
    json_decref(r->details);
    memset(r, 0, sizeof(*r));
}

void eg_params_free(eg_params_t *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n; i++)
        eg_param_rule_free(&p->rules[i]);
    free(p->rules);
    memset(p, 0, sizeof(*p));
}

static int num_of(const eg_ynode_t *n, double *out)
{
    if (!n || n->kind != EG_Y_SCALAR || n->quoted) return 0;
    char *end;
    double v = strtod(n->str, &end);
    if (end == n->str || *end) return 0;
    *out = v;
    return 1;
}

/* What the messages need, read off an inline schema node (best effort:
 * the schema compiler has already said whether the node is right). */
static int read_wording(eg_param_rule_t *r, const eg_ynode_t *s)
{
    const eg_ynode_t *v;
    double d;
    if (!s || s->kind != EG_Y_MAP) return EG_OK;
    if (num_of(eg_ymap_get(s, "minimum"), &d)) r->has_min = 1, r->min = d;
    if (num_of(eg_ymap_get(s, "maximum"), &d)) r->has_max = 1, r->max = d;
    v = eg_ymap_get(s, "exclusiveMinimum");
    if (num_of(v, &d) && v->str[0] != 't' && v->str[0] != 'f')
        r->has_min = r->xmin = 1, r->min = d;
    else if (v && v->kind == EG_Y_SCALAR && strcmp(v->str, "true") == 0)
        r->xmin = 1;
    v = eg_ymap_get(s, "exclusiveMaximum");
    if (num_of(v, &d) && v->str[0] != 't' && v->str[0] != 'f')
        r->has_max = r->xmax = 1, r->max = d;
    else if (v && v->kind == EG_Y_SCALAR && strcmp(v->str, "true") == 0)
        r->xmax = 1;
    if (num_of(eg_ymap_get(s, "minLength"), &d)) r->min_len = (long long)d;
    if (num_of(eg_ymap_get(s, "maxLength"), &d)) r->max_len = (long long)d;
    if ((v = eg_ymap_get(s, "enum")) && v->kind == EG_Y_SEQ && !(r->allowed = eg_ynode_to_json(v)))
        return EG_ENOMEM;
    if ((v = eg_ymap_get(s, "format")) && v->kind == EG_Y_SCALAR && !(r->format = strdup(v->str)))
        return EG_ENOMEM;
    if ((v = eg_ymap_get(s, "pattern")) && v->kind == EG_Y_SCALAR && !(r->pattern = strdup(v->str)))
        return EG_ENOMEM;
    return EG_OK;
}

int eg_param_rule_set_schema(eg_param_rule_t *r, const eg_ydoc_t *doc, const eg_ynode_t *schema,
                             const eg_schema_opts_t *opts, char *err, size_t errlen)
{
    eg_schema_t *s = NULL;
    int rc = eg_schema_compile(doc, schema, opts, &s, err, errlen);
    if (rc) return rc;
    eg_schema_free(r->schema);
    r->schema = s;
    r->types = eg_schema_types(s);
    r->item_types = eg_schema_item_types(s);
    return read_wording(r, schema);
}

/* The rule keys that are not JSON Schema keywords. */
static int rule_key(const char *k)
{
    static const char *const keys[] = {"required", "style",   "explode", "code",
                                       "message",  "details", "schema",  NULL};
    for (const char *const *p = keys; *p; p++)
        if (strcmp(*p, k) == 0) return 1;
    return 0;
}

int eg_param_rule_from_yaml(eg_param_rule_t *r, const eg_ydoc_t *doc, const eg_ynode_t *node,
                            const char *name, eg_param_in_t in, const eg_catalog_t *cat,
                            const eg_schema_opts_t *opts, char *err, size_t errlen)
{
    int rc = eg_param_rule_init(r, name, strlen(name), in);
    if (rc) return rc;
    if (!node || node->kind != EG_Y_MAP)
        return eg_yerr(doc, node, err, errlen,
                       "parameter '%s' must be a map like { required: true, type: integer, "
                       "minimum: 1 }",
                       name);
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(node, "required")) &&
        (rc = eg_yscalar_bool(doc, v, &r->required, err, errlen)))
        return rc;
    if (in == EG_PIN_PATH && !r->required)
        r->required = 1; /* OpenAPI: path parameters always are */
    if ((v = eg_ymap_get(node, "style"))) {
        if (v->kind != EG_Y_SCALAR || eg_param_style_parse(v->str, in, &r->style) != EG_OK)
            return eg_yerr(doc, v, err, errlen, "style '%s' is not one for a %s parameter (%s)",
                           v->kind == EG_Y_SCALAR ? v->str : "",
                           in == EG_PIN_PATH     ? "path"
                           : in == EG_PIN_HEADER ? "header"
                                                 : "query",
                           in == EG_PIN_PATH ? "simple, label, matrix"
                           : in == EG_PIN_HEADER
                               ? "simple"
                               : "form, spaceDelimited, pipeDelimited, deepObject");
        r->explode = r->style == EG_PSTYLE_FORM || r->style == EG_PSTYLE_DEEP;
    }
    if ((v = eg_ymap_get(node, "explode")) &&
        (rc = eg_yscalar_bool(doc, v, &r->explode, err, errlen)))
        return rc;
    if ((v = eg_ymap_get(node, "code"))) {
        if (v->kind != EG_Y_SCALAR || !eg_catalog_find(cat, v->str))
            return eg_yerr(doc, v, err, errlen,
                           "code '%s' is not in the catalog (add it to the catalog file first)",
                           v->kind == EG_Y_SCALAR ? v->str : "");
        if (!(r->code = strdup(v->str))) return EG_ENOMEM;
    }
    if ((v = eg_ymap_get(node, "message"))) {
        if (v->kind != EG_Y_SCALAR || !v->len)
            return eg_yerr(doc, v, err, errlen, "message must be a non-empty string");
        if (!(r->message = strdup(v->str))) return EG_ENOMEM;
    }
    if ((v = eg_ymap_get(node, "details"))) {
        if (v->kind != EG_Y_MAP)
            return eg_yerr(doc, v, err, errlen, "details must be a map of members to add");
        if (!(r->details = eg_ynode_to_json(v))) return EG_ENOMEM;
    }
    const eg_ynode_t *sch = eg_ymap_get(node, "schema");
    /* the schema keywords beside the rule's own: a map of just them, whose
     * nodes are the document's (positions kept for the compiler's messages) */
    size_t nk = 0;
    for (size_t i = 0; i < node->n; i++)
        if (!rule_key(node->items[2 * i]->str)) nk++;
    if (sch && nk)
        return eg_yerr(doc, node->items[0], err, errlen,
                       "parameter '%s': give its schema keywords either beside required/style "
                       "or under schema:, not both",
                       name);
    eg_ynode_t flat = *node;
    eg_ynode_t **items = NULL;
    if (!sch && nk) {
        if (!(items = calloc(2 * nk, sizeof(*items)))) return EG_ENOMEM;
        size_t j = 0;
        for (size_t i = 0; i < node->n; i++)
            if (!rule_key(node->items[2 * i]->str)) {
                items[j++] = node->items[2 * i];
                items[j++] = node->items[2 * i + 1];
            }
        flat.n = nk;
        flat.items = items;
        sch = &flat;
    }
    if (sch) rc = eg_param_rule_set_schema(r, doc, sch, opts, err, errlen);
    free(items);
    if (rc) return rc;
    if ((r->types & EG_ST_OBJECT) && r->style == EG_PSTYLE_FORM && r->explode &&
        in != EG_PIN_HEADER && in != EG_PIN_PATH)
        return eg_yerr(doc, node, err, errlen,
                       "parameter '%s': an object in style form with explode: true spreads its "
                       "properties over the query; use style: deepObject or explode: false",
                       name);
    return EG_OK;
}

/* ------------------------------------------------------------ JSON text in a stack buffer */

#define JB_STACK 1024

typedef struct {
    char *p;
    size_t len, cap;
    int heap;
    int oom;
    char stack[JB_STACK];
} jb_t;

static void jb_init(jb_t *b)
{
    b->p = b->stack;
    b->len = 0;
    b->cap = sizeof(b->stack);
    b->heap = 0;
    b->oom = 0;
}

static void jb_free(jb_t *b)
{
    if (b->heap) free(b->p);
    jb_init(b);
}

static int jb_room(jb_t *b, size_t n)
{
    if (b->oom) return 0;
    if (b->len + n <= b->cap) return 1;
    size_t want = b->cap * 2;
    while (want < b->len + n)
        want *= 2;
    char *q = b->heap ? realloc(b->p, want) : malloc(want);
    if (!q) {
        b->oom = 1;
        return 0;
    }
    if (!b->heap) memcpy(q, b->p, b->len);
    b->p = q;
    b->cap = want;
    b->heap = 1;
    return 1;
}

static void jb_put(jb_t *b, const char *s, size_t n)
{
    if (!jb_room(b, n)) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_ch(jb_t *b, char c)
{
    jb_put(b, &c, 1);
}

/* s[0..n) (valid UTF-8) as a JSON string. */
static void jb_str(jb_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!jb_room(b, n * 6 + 2)) return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

/* ------------------------------------------------------------ decoding */

typedef enum { DEC_FORM = 0, DEC_PCT, DEC_NONE } dec_t;

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            if (u[i] == 0) return 0; /* no NUL: C code downstream stops there */
            i++;
            continue;
        }
        size_t k = eg_utf8_len(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

/* Decodes s[0..n) into out (room for n bytes): 0, or -1 for a bad escape
 * or a result that is not UTF-8 without NUL. */
static int decode(const char *s, size_t n, dec_t how, char *out, size_t *outn)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (how != DEC_NONE && c == '%') {
            int h, l;
            if (i + 2 >= n) return -1;
            if ((h = hexv(s[i + 1])) < 0 || (l = hexv(s[i + 2])) < 0) return -1;
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else if (how == DEC_FORM && c == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = c;
        }
    }
    *outn = o;
    return utf8_ok(out, o) ? 0 : -1;
}

/* Whether the raw name s[0..n) decodes to name[0..k) (no copy). */
static int name_is(const char *s, size_t n, const char *name, size_t k, dec_t how)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++, j++) {
        char c = s[i];
        if (how != DEC_NONE && c == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 &&
            hexv(s[i + 2]) >= 0) {
            c = (char)(hexv(s[i + 1]) << 4 | hexv(s[i + 2]));
            i += 2;
        } else if (how == DEC_FORM && c == '+') {
            c = ' ';
        }
        if (j >= k || c != name[j]) return 0;
    }
    return j == k;
}

/* ------------------------------------------------------------ coercion */

/* A JSON number literal; *integer: without fraction or exponent. */
static int number_literal(const char *s, size_t n, int *integer)
{
    size_t i = 0;
    if (i < n && s[i] == '-') i++;
    if (i >= n || !isdigit((unsigned char)s[i])) return 0;
    if (s[i] == '0' && i + 1 < n && isdigit((unsigned char)s[i + 1])) return 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++;
    *integer = 1;
    if (i < n && s[i] == '.') {
        *integer = 0;
        if (++i >= n || !isdigit((unsigned char)s[i])) return 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *integer = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || !isdigit((unsigned char)s[i])) return 0;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    if (i != n) return 0;
    if (*integer && n > 18) *integer = 0; /* beyond long long: a number, not an integer */
    return 1;
}

static const char *kind_of_text(const char *s, size_t n)
{
    int integer;
    if (number_literal(s, n, &integer)) return integer ? "integer" : "number";
    if ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0))
        return "boolean";
    return "string";
}

/* Appends the text s[0..n) as the JSON value the types ask for: 0, or -1
 * when it cannot be one of them (a type problem). */
static int coerce(jb_t *b, const char *s, size_t n, unsigned types)
{
    int integer;
    if (types & (EG_ST_INTEGER | EG_ST_NUMBER) && number_literal(s, n, &integer) &&
        (integer || (types & EG_ST_NUMBER))) {
        jb_put(b, s, n);
        return 0;
    }
    if (types & EG_ST_BOOLEAN &&
        ((n == 4 && memcmp(s, "true", 4) == 0) || (n == 5 && memcmp(s, "false", 5) == 0))) {
        jb_put(b, s, n);
        return 0;
    }
    if (types & EG_ST_NULL && n == 0 && !(types & EG_ST_STRING)) {
        jb_put(b, "null", 4);
        return 0;
    }
    if (!types || types & EG_ST_STRING) {
        jb_str(b, s, n);
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------ problems */

void eg_snake_name(const char *kw, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = kw; *p && o + 2 < cap; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            if (o) out[o++] = '_';
            out[o++] = (char)(*p - 'A' + 'a');
        } else {
            out[o++] = *p == '-' ? '_' : *p;
        }
    }
    out[o] = '\0';
}

void eg_constraint_name(const char *kw, const char *format, char *out, size_t cap)
{
    if (strcmp(kw, "format") == 0 && format && *format) {
        char f[48];
        eg_snake_name(format, f, sizeof(f));
        snprintf(out, cap, "%s_format", f);
        return;
    }
    eg_snake_name(kw, out, cap);
}

static const char *type_name(unsigned types)
{
    if (types & EG_ST_INTEGER && !(types & EG_ST_NUMBER)) return "integer";
    if (types & EG_ST_NUMBER) return "number";
    if (types & EG_ST_BOOLEAN) return "boolean";
    if (types & EG_ST_ARRAY) return "array";
    if (types & EG_ST_OBJECT) return "object";
    if (types & EG_ST_STRING) return "string";
    return "value";
}

static const char *article(const char *w)
{
    return strchr("aeiou", w[0]) ? "an" : "a";
}

static void num_text(double v, char *buf, size_t cap)
{
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v)
        snprintf(buf, cap, "%lld", (long long)v);
    else
        snprintf(buf, cap, "%g", v);
}

static json_t *num_json(double v)
{
    if (v > -1e15 && v < 1e15 && v == (double)(long long)v) return json_integer((json_int_t)v);
    return json_real(v);
}

static const char *format_words(const char *f)
{
    static const struct {
        const char *name, *words;
    } t[] = {
        {"iso3166", "ISO 3166-1 alpha-2 country code"},
        {"iso639", "ISO 639-1 language code"},
        {"email", "email address"},
        {"date", "date (YYYY-MM-DD)"},
        {"date-time", "RFC 3339 date-time"},
        {"time", "RFC 3339 time"},
        {"uuid", "UUID"},
        {"uri", "URI"},
        {"uri-reference", "URI reference"},
        {"hostname", "host name"},
        {"ipv4", "IPv4 address"},
        {"ipv6", "IPv6 address"},
        {"int32", "32-bit integer"},
        {"int64", "64-bit integer"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].name, f) == 0) return t[i].words;
    return f;
}

static const char *where(const eg_param_rule_t *r)
{
    return r->in == EG_PIN_HEADER ? "header" : r->in == EG_PIN_FORM ? "field" : "parameter";
}

/* Records one problem of rule r; value and extra are taken (may be NULL). */
static int add_problem(eg_params_report_t *rep, const eg_param_rule_t *r, const char *code,
                       const char *constraint, const char *msg, json_t *value, json_t *extra)
{
    int rc = EG_OK;
    if (!rep->count)
        rep->code = code;
    else if (rep->code && strcmp(rep->code, code) != 0)
        rep->mixed = 1;
    rep->count++;
    if (!rep->e || rep->e->nfields >= rep->max) goto out;
    eg_field_error_t *f = eg_error_add_field(rep->e);
    if (!f) {
        rc = EG_ENOMEM;
        goto out;
    }
    eg_fstr_t at = r->in == EG_PIN_HEADER ? EG_F_HEADER
                   : r->in == EG_PIN_FORM ? EG_F_FIELD
                                          : EG_F_PARAMETER;
    if (eg_field_setn(rep->e, f, at, r->name, r->name_len) ||
        eg_field_set(rep->e, f, EG_F_MESSAGE, r->message ? r->message : msg) ||
        eg_field_set(rep->e, f, EG_F_CONSTRAINT, constraint)) {
        rc = EG_ENOMEM;
        goto out;
    }
    if (value && !r->secret) {
        eg_field_set_value(f, value);
        value = NULL;
    }
    if (extra || r->details) {
        json_t *x = eg_field_extra(f);
        if (!x || (extra && json_object_update(x, extra)) ||
            (r->details && json_object_update(x, r->details)))
            rc = EG_ENOMEM;
    }
out:
    json_decref(value);
    json_decref(extra);
    return rc;
}

static int missing(eg_params_report_t *rep, const eg_param_rule_t *r)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s '%s' is required",
             r->in == EG_PIN_HEADER ? "Header"
             : r->in == EG_PIN_FORM ? "Field"
                                    : "Parameter",
             r->name);
    return add_problem(rep, r, "missing_parameter", "required", msg, NULL,
                       json_pack("{sb}", "required", 1));
}

static int bad_type(eg_params_report_t *rep, const eg_param_rule_t *r, unsigned types,
                    const char *text, size_t n, int item)
{
    char msg[256];
    const char *want = type_name(types);
    const char *got = text ? kind_of_text(text, n) : "string";
    if (item)
        snprintf(msg, sizeof(msg), "%s '%s' must be a list of %ss",
                 r->in == EG_PIN_HEADER ? "Header" : "Parameter", r->name, want);
    else
        snprintf(msg, sizeof(msg), "%s '%s' must be %s %s",
                 r->in == EG_PIN_HEADER ? "Header" : "Parameter", r->name, article(want), want);
    return add_problem(
        rep, r, r->code ? r->code : "invalid_parameter_type", "type", msg, NULL,
        json_pack("{ssss}", "expected_type", item ? "array" : want, "provided_type", got));
}

static int bad_encoding(eg_params_report_t *rep, const eg_param_rule_t *r)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "Invalid value for %s '%s'. It is not valid percent-encoded UTF-8",
             where(r), r->name);
    return add_problem(rep, r, r->code ? r->code : "invalid_parameter_value", "encoding", msg, NULL,
                       NULL);
}

/* The offending value for echoing: a scalar as it was coerced, a string
 * cut to EG_PARAM_ECHO_MAX bytes on a character boundary; containers not. */
static json_t *echo_of(const eg_jr_doc_t *d, const eg_jr_tok_t *t)
{
    if (t->type == EG_JR_ARRAY || t->type == EG_JR_OBJECT) return NULL;
    if (t->type != EG_JR_STRING) return eg_jr_to_json(d, t);
    char buf[EG_PARAM_ECHO_MAX + 4];
    size_t n = eg_jr_str(d, t, buf, sizeof(buf));
    if (n > EG_PARAM_ECHO_MAX) {
        n = EG_PARAM_ECHO_MAX;
        while (n && ((unsigned char)buf[n] & 0xC0) == 0x80)
            n--;
    }
    return json_stringn(buf, n);
}

/* The schema said no: which keyword, worded for a parameter. */
static int bad_value(eg_params_report_t *rep, const eg_param_rule_t *r, const eg_jr_doc_t *d)
{
    const char *kw = "schema", *smsg = NULL, *ptr = NULL;
    eg_error_t *scratch = eg_error_new();
    if (!scratch) return EG_ENOMEM;
    eg_schema_report_t sr = {scratch, "", r->name, 1, 0};
    if (eg_schema_validate(r->schema, d, NULL, &sr) == EG_ENOMEM) {
        eg_error_free(scratch);
        return EG_ENOMEM;
    }
    if (scratch->nfields) {
        const eg_field_error_t *f = &scratch->fields[0];
        if (f->s[EG_F_CONSTRAINT]) kw = f->s[EG_F_CONSTRAINT];
        smsg = f->s[EG_F_MESSAGE];
        ptr = f->s[EG_F_POINTER];
    }
    int in_item = ptr && ptr[0] == '/' && ptr[1];
    char msg[512], a[64], b[64];
    int len = snprintf(msg, sizeof(msg), "Invalid value for %s '%s'", where(r), r->name);
    json_t *extra = NULL;
    const char *code = r->code ? r->code : "invalid_parameter_value";
    if (in_item) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". Item %s %s", ptr + 1,
                 smsg ? smsg : "is not valid");
    } else if ((!strcmp(kw, "minimum") || !strcmp(kw, "maximum") ||
                !strcmp(kw, "exclusiveMinimum") || !strcmp(kw, "exclusiveMaximum")) &&
               (r->has_min || r->has_max)) {
        num_text(r->min, a, sizeof(a));
        num_text(r->max, b, sizeof(b));
        if (r->has_min && r->has_max && !r->xmin && !r->xmax) {
            snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be between %s and %s", a, b);
            char range[140];
            snprintf(range, sizeof(range), "%s-%s", a, b);
            extra = json_pack("{ss}", "valid_range", range);
        } else if (r->has_min && (!strcmp(kw, "minimum") || !strcmp(kw, "exclusiveMinimum"))) {
            snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be %s %s",
                     r->xmin ? "greater than" : "at least", a);
            extra = json_pack("{so}", r->xmin ? "exclusive_minimum" : "minimum", num_json(r->min));
        } else {
            snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be %s %s",
                     r->xmax ? "less than" : "at most", b);
            extra = json_pack("{so}", r->xmax ? "exclusive_maximum" : "maximum", num_json(r->max));
        }
    } else if ((!strcmp(kw, "enum") || !strcmp(kw, "const")) && r->allowed) {
        size_t at = (size_t)len;
        at += (size_t)snprintf(msg + at, sizeof(msg) - at, ". Must be one of: ");
        size_t i;
        json_t *x;
        json_array_foreach(r->allowed, i, x)
        {
            if (at >= sizeof(msg) - 8) break;
            char *t = json_is_string(x) ? NULL : json_dumps(x, JSON_ENCODE_ANY);
            at += (size_t)snprintf(msg + at, sizeof(msg) - at, "%s%s", i ? ", " : "",
                                   t ? t : json_string_value(x));
            free(t);
        }
        extra = json_pack("{sO}", "valid_values", r->allowed);
    } else if (!strcmp(kw, "format") && r->format) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be a valid %s",
                 format_words(r->format));
        extra = json_pack("{ss}", "expected_format", r->format);
    } else if (!strcmp(kw, "minLength") && r->min_len >= 0) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be at least %lld characters long",
                 r->min_len);
        extra = json_pack("{sI}", "min_length", (json_int_t)r->min_len);
    } else if (!strcmp(kw, "maxLength") && r->max_len >= 0) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must be at most %lld characters long",
                 r->max_len);
        extra = json_pack("{sI}", "max_length", (json_int_t)r->max_len);
    } else if (!strcmp(kw, "pattern") && r->pattern) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". Must match the pattern %s", r->pattern);
        extra = json_pack("{ss}", "pattern", r->pattern);
    } else if (smsg) {
        snprintf(msg + len, sizeof(msg) - (size_t)len, ". It %s", smsg);
    }
    char constraint[64];
    eg_constraint_name(kw, r->format, constraint, sizeof(constraint));
    eg_error_free(scratch);
    return add_problem(rep, r, code, constraint, msg, echo_of(d, d->toks), extra);
}

/* Parses the built JSON and checks it: the problems are reported. */
/* The token jsonr would make of b's text when it is one scalar built
 * here: a string with nothing escaped (decode() checked its UTF-8 and
 * that it has no NUL; controls, quotes and backslashes would be escaped),
 * a literal, or a number. 0: parse it (a container, an escape, a number
 * jsonr refuses). */
static int one_token(const jb_t *b, eg_jr_tok_t *t)
{
    const char *p = b->p;
    size_t n = b->len;
    memset(t, 0, sizeof(*t));
    t->end = 1;
    if (!n) return 0;
    switch (p[0]) {
    case '"':
        if (n < 2 || memchr(p + 1, '\\', n - 2)) return 0;
        t->type = EG_JR_STRING;
        t->off = 1;
        t->len = (uint32_t)(n - 2);
        return 1;
    case 't':
        t->type = EG_JR_TRUE;
        t->len = 4;
        return n == 4 && memcmp(p, "true", 4) == 0;
    case 'f':
        t->type = EG_JR_FALSE;
        t->len = 5;
        return n == 5 && memcmp(p, "false", 5) == 0;
    case 'n':
        t->type = EG_JR_NULL;
        t->len = 4;
        return n == 4 && memcmp(p, "null", 4) == 0;
    default:
        return (p[0] == '-' || (p[0] >= '0' && p[0] <= '9')) && eg_jr_number(p, n, t) == 0;
    }
}

static int check_json(eg_params_report_t *rep, const eg_param_rule_t *r, jb_t *b)
{
    if (b->oom) return EG_ENOMEM;
    if (!r->schema) return EG_OK;
    eg_jr_doc_t d;
    eg_jr_tok_t one;
    int rc = 0, parsed = 0;
    if (b->len < UINT32_MAX && one_token(b, &one)) {
        /* the usual valid value: surely valid by the fast path, no walk */
        if (eg_schema_fast_token(r->schema, b->p, &one)) return EG_OK;
        /* most parameters: no parse of the text just built */
        d.text = b->p;
        d.len = b->len;
        d.toks = &one;
        d.ntoks = 1;
        d.cap = 1;
    } else {
        parsed = 1;
        rc = eg_jr_parse(&d, b->p, b->len);
    }
    if (rc == EG_EPARSE) { /* the text was escaped here: only an over-deep or odd value */
        eg_jr_free(&d);
        return bad_encoding(rep, r);
    }
    if (rc) {
        eg_jr_free(&d);
        return rc;
    }
    eg_schema_report_t sr = {NULL, "", r->name, 0, 0};
    rc = eg_schema_validate(r->schema, &d, NULL, &sr);
    if (rc == EG_ERANGE)
        rc = rep->e ? bad_value(rep, r, &d)
                    : add_problem(rep, r, r->code ? r->code : "invalid_parameter_value", "schema",
                                  "", NULL, NULL);
    if (parsed) eg_jr_free(&d);
    return rc;
}

/* ------------------------------------------------------------ building values */

/* Appends one piece (raw bytes, decoded `how`) coerced to `types`:
 * 0, 1 when it was reported (bad encoding or type), or a negative code. */
static int piece(eg_params_report_t *rep, const eg_param_rule_t *r, jb_t *b, const char *raw,
                 size_t n, dec_t how, unsigned types, int item)
{
    char stackbuf[512];
    char *dec = n <= sizeof(stackbuf) ? stackbuf : malloc(n ? n : 1);
    if (!dec) return EG_ENOMEM;
    size_t dn = 0;
    int rc = 0;
    if (decode(raw, n, how, dec, &dn) != 0) {
        rc = bad_encoding(rep, r);
        if (!rc) rc = 1;
    } else if (coerce(b, dec, dn, types) != 0) {
        rc = bad_type(rep, r, types, dec, dn, item && (r->types & EG_ST_ARRAY));
        if (!rc) rc = 1;
    }
    if (dec != stackbuf) free(dec);
    return rc;
}

/* A piece that is a member name: always a string. */
static int key_piece(eg_params_report_t *rep, const eg_param_rule_t *r, jb_t *b, const char *raw,
                     size_t n, dec_t how)
{
    return piece(rep, r, b, raw, n, how, EG_ST_STRING, 1);
}

/* Splits raw[0..n) on delimiter `delim` (raw bytes, before decoding; for
 * space and pipe also their %20 / %7C / '+' spellings) and appends the
 * pieces as array items, or as alternating key, value members when
 * `object`. `kv`: members are "k=v" pieces (explode: true objects). */
static int split_into(eg_params_report_t *rep, const eg_param_rule_t *r, jb_t *b, const char *raw,
                      size_t n, dec_t how, char delim, int object, int kv)
{
    jb_ch(b, object ? '{' : '[');
    size_t start = 0, k = 0;
    int want_key = 1;
    for (size_t i = 0; i <= n; i++) {
        size_t skip = 1;
        int at_delim = i == n;
        if (!at_delim && raw[i] == delim) at_delim = 1;
        if (!at_delim && delim == ' ' && how == DEC_FORM && raw[i] == '+') at_delim = 1;
        if (!at_delim && i + 2 < n && raw[i] == '%' && how != DEC_NONE &&
            ((delim == ' ' && raw[i + 1] == '2' && raw[i + 2] == '0') ||
             (delim == '|' && raw[i + 1] == '7' && (raw[i + 2] == 'C' || raw[i + 2] == 'c')))) {
            at_delim = 1;
            skip = 3;
        }
        if (!at_delim) continue;
        const char *p = raw + start;
        size_t len = i - start;
        int rc;
        if (n == 0) break; /* an empty value: an empty list */
        if (!object) {
            if (k++) jb_ch(b, ',');
            rc = piece(rep, r, b, p, len, how, r->item_types, 1);
        } else if (kv) {
            const char *eq = memchr(p, '=', len);
            size_t kl = eq ? (size_t)(eq - p) : len;
            if (k++) jb_ch(b, ',');
            rc = key_piece(rep, r, b, p, kl, how);
            jb_ch(b, ':');
            if (!rc) rc = piece(rep, r, b, eq ? eq + 1 : p + len, eq ? len - kl - 1 : 0, how, 0, 1);
        } else if (want_key) {
            if (k++) jb_ch(b, ',');
            rc = key_piece(rep, r, b, p, len, how);
            jb_ch(b, ':');
            want_key = 0;
        } else {
            rc = piece(rep, r, b, p, len, how, 0, 1);
            want_key = 1;
        }
        if (rc) return rc;
        start = i + skip;
        i += skip - 1;
    }
    if (object && !want_key) jb_put(b, "\"\"", 2); /* k,v,k: the last key has an empty value */
    jb_ch(b, object ? '}' : ']');
    return 0;
}

/* One value as the rule's types want it (array, object or scalar). */
static int value_into(eg_params_report_t *rep, const eg_param_rule_t *r, jb_t *b, const char *raw,
                      size_t n, dec_t how, char delim)
{
    if (r->types & EG_ST_ARRAY) return split_into(rep, r, b, raw, n, how, delim, 0, 0);
    if (r->types & EG_ST_OBJECT) return split_into(rep, r, b, raw, n, how, delim, 1, r->explode);
    return piece(rep, r, b, raw, n, how, r->types, 0);
}

/* ------------------------------------------------------------ query and form */

typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
    int name_plain;  /* the name has nothing to decode ('%', '+'): it is its bytes */
    int value_plain; /* the value is printable ASCII without '%', '+', '"' or '\\' */
} pair_t;

/* Query bytes by what next_pair() notes of them, one load a byte. */
#define QC_AMP   1 /* ends a pair */
#define QC_EQ    2 /* ends a name */
#define QC_DEC   4 /* '%' '+': decoded */
#define QC_VALUE 8 /* not in a plain value */
/* (V: QC_VALUE, D: QC_DEC, A: QC_AMP, E: QC_EQ; controls, space, '"', '\\',
 * DEL and every non-ASCII byte are not in a plain value) */
#define V QC_VALUE
#define D QC_DEC
#define A QC_AMP
#define E QC_EQ
static const unsigned char qclass[256] = {
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* 00 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* 10 */
    V, 0, V, 0, 0, D | V, A, 0, 0, 0, 0, D | V, 0, 0, 0, 0, /* 20 */
    0, 0, 0, 0, 0, 0,     0, 0, 0, 0, 0, 0,     0, E, 0, 0, /* 30 */
    0, 0, 0, 0, 0, 0,     0, 0, 0, 0, 0, 0,     0, 0, 0, 0, /* 40 */
    0, 0, 0, 0, 0, 0,     0, 0, 0, 0, 0, 0,     V, 0, 0, 0, /* 50 */
    0, 0, 0, 0, 0, 0,     0, 0, 0, 0, 0, 0,     0, 0, 0, 0, /* 60 */
    0, 0, 0, 0, 0, 0,     0, 0, 0, 0, 0, 0,     0, 0, 0, V, /* 70 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* 80 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* 90 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* a0 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* b0 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* c0 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* d0 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* e0 */
    V, V, V, V, V, V,     V, V, V, V, V, V,     V, V, V, V, /* f0 */
};
#undef V
#undef D
#undef A
#undef E

/* The next pair of q at *at: 1, or 0 at the end. Empty pairs are skipped.
 * The name ends at the pair's first '=', the value at its '&'. */
static int next_pair(const char *q, size_t n, size_t *at, pair_t *p)
{
    const unsigned char *u = (const unsigned char *)q;
    size_t i = *at;
    while (i < n && u[i] == '&')
        i++;
    if (i >= n) return 0;
    size_t s = i;
    unsigned acc = 0, c = 0;
    for (; i < n && !((c = qclass[u[i]]) & (QC_AMP | QC_EQ)); i++)
        acc |= c;
    p->name = q + s;
    p->name_len = i - s;
    p->name_plain = !(acc & QC_DEC);
    acc = 0;
    if (i < n && (c & QC_EQ)) {
        size_t v = ++i;
        for (; i < n && !((c = qclass[u[i]]) & QC_AMP); i++)
            acc |= c;
        p->value = q + v;
        p->value_len = i - v;
    } else {
        p->value = q + i;
        p->value_len = 0;
    }
    p->value_plain = !(acc & QC_VALUE);
    *at = i;
    return 1;
}

/* deepObject: name[key]=value pairs; the key's raw span in *k. */
static int deep_key(const pair_t *p, const eg_param_rule_t *r, const char **k, size_t *kn)
{
    /* the name part before '[' (or %5B) decoded equals the rule's name */
    for (size_t i = 0; i < p->name_len; i++) {
        size_t open = 0;
        if (p->name[i] == '[')
            open = 1;
        else if (p->name[i] == '%' && i + 2 < p->name_len && p->name[i + 1] == '5' &&
                 (p->name[i + 2] == 'B' || p->name[i + 2] == 'b'))
            open = 3;
        if (!open) continue;
        if (!name_is(p->name, i, r->name, r->name_len, DEC_FORM)) return 0;
        const char *s = p->name + i + open;
        size_t rest = p->name_len - i - open;
        size_t close = 0, ks = rest;
        if (rest && s[rest - 1] == ']')
            ks = rest - 1, close = 1;
        else if (rest >= 3 && s[rest - 3] == '%' && s[rest - 2] == '5' &&
                 (s[rest - 1] == 'D' || s[rest - 1] == 'd'))
            ks = rest - 3, close = 1;
        if (!close) return 0;
        *k = s;
        *kn = ks;
        return 1;
    }
    return 0;
}

/* A scalar rule's plain value (printable ASCII with nothing to decode or
 * escape) checked without building its JSON text: the token piece(),
 * coerce() and one_token() would make of it, given to the fast path. 1:
 * surely valid (check_json would answer EG_OK); 0: not sure, take the
 * full path (which also words any problem). */
static int plain_scalar_ok(const eg_param_rule_t *r, const pair_t *p)
{
    const char *v = p->value;
    size_t n = p->value_len;
    if (!p->value_plain || !r->schema || !n || n > 256 || (r->types & (EG_ST_ARRAY | EG_ST_OBJECT)))
        return 0;
    unsigned types = r->types;
    eg_jr_tok_t t;
    memset(&t, 0, sizeof(t));
    if (types & (EG_ST_INTEGER | EG_ST_NUMBER) && n <= 18) {
        /* a plain integer (-?(0|[1-9][0-9]*), 18 bytes at most): the token
         * number_literal() and eg_jr_number() make of it, read here */
        size_t i = v[0] == '-', j = i;
        uint64_t m = 0;
        if (i < n && (v[i] != '0' || i + 1 == n)) {
            while (j < n && v[j] >= '0' && v[j] <= '9')
                m = m * 10 + (uint64_t)(v[j++] - '0');
        }
        if (j == n && j > i) {
            t.type = EG_JR_INT;
            t.ival = i ? -(long long)m : (long long)m;
            t.len = (uint32_t)n;
            return eg_schema_fast_token(r->schema, v, &t);
        }
    }
    int integer;
    if (types & (EG_ST_INTEGER | EG_ST_NUMBER) && number_literal(v, n, &integer) &&
        (integer || (types & EG_ST_NUMBER)))
        return eg_jr_number(v, n, &t) == 0 && eg_schema_fast_token(r->schema, v, &t);
    if (types & EG_ST_BOOLEAN &&
        ((n == 4 && memcmp(v, "true", 4) == 0) || (n == 5 && memcmp(v, "false", 5) == 0))) {
        t.type = n == 4 ? EG_JR_TRUE : EG_JR_FALSE;
        t.len = (uint32_t)n;
        return eg_schema_fast_token(r->schema, v, &t);
    }
    if (!types || types & EG_ST_STRING) {
        t.type = EG_JR_STRING;
        t.len = (uint32_t)n;
        return eg_schema_fast_token(r->schema, v, &t);
    }
    return 0;
}

/* A rule that takes the first pair of its name only (not deepObject, not
 * an exploded array): checked in one pass over the query for all such
 * rules (eg_params_check_query) instead of a scan of the query each. */
static int first_only(const eg_param_rule_t *r)
{
    return r->style != EG_PSTYLE_DEEP && !((r->types & EG_ST_ARRAY) && r->explode);
}

/* A first_only() rule on its pair p (NULL: absent). */
static int check_first(eg_params_report_t *rep, const eg_param_rule_t *r, const pair_t *p)
{
    if (!p) return r->required ? missing(rep, r) : EG_OK;
    if (plain_scalar_ok(r, p)) return EG_OK;
    jb_t b;
    jb_init(&b);
    char delim = r->style == EG_PSTYLE_SPACE ? ' ' : r->style == EG_PSTYLE_PIPE ? '|' : ',';
    int rc = value_into(rep, r, &b, p->value, p->value_len, DEC_FORM, delim);
    if (rc == 0) rc = check_json(rep, r, &b);
    jb_free(&b);
    return rc < 0 ? rc : EG_OK;
}

static int check_query_rule(eg_params_report_t *rep, const eg_param_rule_t *r, const char *q,
                            size_t n)
{
    jb_t b;
    jb_init(&b);
    pair_t p;
    size_t at = 0, found = 0;
    int rc = 0;
    if (r->style == EG_PSTYLE_DEEP) {
        jb_ch(&b, '{');
        while (!rc && next_pair(q, n, &at, &p)) {
            const char *k;
            size_t kn;
            if (!deep_key(&p, r, &k, &kn)) continue;
            if (found++) jb_ch(&b, ',');
            if (!(rc = key_piece(rep, r, &b, k, kn, DEC_FORM))) {
                jb_ch(&b, ':');
                /* a member's own type is the schema's to judge: numbers and
                 * booleans as literals, anything else a string */
                int integer;
                char tmp[512];
                size_t dn = 0;
                if (p.value_len <= sizeof(tmp) &&
                    decode(p.value, p.value_len, DEC_FORM, tmp, &dn) == 0 &&
                    (number_literal(tmp, dn, &integer) || (dn == 4 && !memcmp(tmp, "true", 4)) ||
                     (dn == 5 && !memcmp(tmp, "false", 5))))
                    jb_put(&b, tmp, dn);
                else
                    rc = piece(rep, r, &b, p.value, p.value_len, DEC_FORM, EG_ST_STRING, 1);
            }
        }
        jb_ch(&b, '}');
    } else if ((r->types & EG_ST_ARRAY) && r->explode) {
        /* a=1&a=2: every occurrence an item */
        jb_ch(&b, '[');
        while (!rc && next_pair(q, n, &at, &p)) {
            if (!name_is(p.name, p.name_len, r->name, r->name_len, DEC_FORM)) continue;
            if (found++) jb_ch(&b, ',');
            rc = piece(rep, r, &b, p.value, p.value_len, DEC_FORM, r->item_types, 1);
        }
        jb_ch(&b, ']');
    } else {
        jb_free(&b);
        while (next_pair(q, n, &at, &p))
            if (name_is(p.name, p.name_len, r->name, r->name_len, DEC_FORM))
                return check_first(rep, r, &p); /* the first one counts */
        return check_first(rep, r, NULL);
    }
    if (rc < 0 || rc == 1) {
        jb_free(&b);
        return rc < 0 ? rc : EG_OK;
    }
    if (!found) {
        jb_free(&b);
        return r->required ? missing(rep, r) : EG_OK;
    }
    rc = check_json(rep, r, &b);
    jb_free(&b);
    return rc;
}

static int verdict(const eg_params_report_t *rep, size_t before, int rc)
{
    if (rc < 0) return rc;
    return rep->count > before ? EG_ERANGE : EG_OK;
}

/* The most rules whose pairs one pass over the query finds. */
#define QPASS_MAX 32

int eg_params_check_query(const eg_params_t *p, eg_param_in_t in, const char *q, size_t n,
                          eg_params_report_t *rep)
{
    size_t before = rep->count;
    int rc = EG_OK;
    /* one pass over the pairs for every first_only() rule: each pair's name
     * compared as it is when it has nothing to decode (the common case),
     * else decoded by name_is(); the rest of the rules scan on their own */
    pair_t first[QPASS_MAX];
    uint32_t want = 0, got = 0; /* bit i: rule i is first_only, its pair is found */
    if (p->n <= QPASS_MAX) {
        for (size_t i = 0; i < p->n; i++)
            if (p->rules[i].in == in && first_only(&p->rules[i])) want |= 1u << i;
    }
    if (want) {
        pair_t pr;
        size_t at = 0;
        while (got != want && next_pair(q, n, &at, &pr)) {
            for (uint32_t m = want & ~got; m; m &= m - 1) {
                unsigned i = (unsigned)__builtin_ctz(m);
                const eg_param_rule_t *r = &p->rules[i];
                if (pr.name_plain
                        ? r->name_len == pr.name_len && memcmp(pr.name, r->name, r->name_len) == 0
                        : name_is(pr.name, pr.name_len, r->name, r->name_len, DEC_FORM)) {
                    first[i] = pr;
                    got |= 1u << i;
                }
            }
        }
    }
    for (size_t i = 0; i < p->n && rc >= 0; i++) {
        if (p->rules[i].in != in) continue;
        if (!rep->e && rep->count) break;
        if (want >> i & 1)
            rc = check_first(rep, &p->rules[i], got >> i & 1 ? &first[i] : NULL);
        else
            rc = check_query_rule(rep, &p->rules[i], q, n);
    }
    return verdict(rep, before, rc);
}

/* ------------------------------------------------------------ path */

static int check_path_rule(eg_params_report_t *rep, const eg_param_rule_t *r, const char *v,
                           size_t n)
{
    jb_t b;
    jb_init(&b);
    int rc = 0;
    if (r->style == EG_PSTYLE_LABEL) {
        if (!n || v[0] != '.') {
            rc = bad_type(rep, r, r->types, NULL, 0, 0);
            jb_free(&b);
            return rc;
        }
        v++, n--;
        /* .a.b.c (explode) or .a,b,c */
        rc = value_into(rep, r, &b, v, n, DEC_PCT, r->explode ? '.' : ',');
    } else if (r->style == EG_PSTYLE_MATRIX) {
        /* ;name=a;name=b (explode arrays), ;name=a,b, ;x=1;y=2 (explode objects) */
        if (!n || v[0] != ';') {
            jb_free(&b);
            return bad_type(rep, r, r->types, NULL, 0, 0);
        }
        if ((r->types & EG_ST_ARRAY) && r->explode) {
            jb_ch(&b, '[');
            size_t at = 1, k = 0;
            while (at <= n && !rc) {
                const char *semi = memchr(v + at, ';', n - at);
                size_t e = semi ? (size_t)(semi - v) : n;
                const char *eq = memchr(v + at, '=', e - at);
                if (!eq ||
                    !name_is(v + at, (size_t)(eq - (v + at)), r->name, r->name_len, DEC_PCT)) {
                    rc = bad_type(rep, r, r->types, NULL, 0, 0);
                    if (!rc) rc = 1;
                    break;
                }
                if (k++) jb_ch(&b, ',');
                rc = piece(rep, r, &b, eq + 1, (size_t)(v + e - (eq + 1)), DEC_PCT, r->item_types,
                           1);
                at = e + 1;
            }
            jb_ch(&b, ']');
        } else if ((r->types & EG_ST_OBJECT) && r->explode) {
            rc = split_into(rep, r, &b, v + 1, n - 1, DEC_PCT, ';', 1, 1);
        } else {
            const char *eq = memchr(v, '=', n);
            if (!eq || !name_is(v + 1, (size_t)(eq - v - 1), r->name, r->name_len, DEC_PCT)) {
                rc = bad_type(rep, r, r->types, NULL, 0, 0);
                if (!rc) rc = 1;
            } else {
                rc = value_into(rep, r, &b, eq + 1, (size_t)(v + n - (eq + 1)), DEC_PCT, ',');
            }
        }
    } else {
        rc = value_into(rep, r, &b, v, n, DEC_PCT, ',');
    }
    if (rc == 0) rc = check_json(rep, r, &b);
    jb_free(&b);
    return rc < 0 ? rc : EG_OK;
}

int eg_params_check_path(const eg_params_t *p, const eg_path_capture_t *caps, size_t ncaps,
                         eg_params_report_t *rep)
{
    size_t before = rep->count;
    int rc = EG_OK;
    for (size_t i = 0; i < p->n && rc >= 0; i++) {
        const eg_param_rule_t *r = &p->rules[i];
        if (r->in != EG_PIN_PATH) continue;
        if (!rep->e && rep->count) break;
        const eg_path_capture_t *c = NULL;
        for (size_t j = 0; j < ncaps && !c; j++)
            if (caps[j].name_len == r->name_len && !memcmp(caps[j].name, r->name, r->name_len))
                c = &caps[j];
        if (!c) {
            rc = r->required ? missing(rep, r) : EG_OK;
            continue;
        }
        rc = check_path_rule(rep, r, c->value, c->value_len);
    }
    return verdict(rep, before, rc);
}

/* ------------------------------------------------------------ headers */

int eg_params_check_headers(const eg_params_t *p, const eg_http_header_t *h, size_t nh,
                            eg_params_report_t *rep)
{
    size_t before = rep->count;
    int rc = EG_OK;
    for (size_t i = 0; i < p->n && rc >= 0; i++) {
        const eg_param_rule_t *r = &p->rules[i];
        if (r->in != EG_PIN_HEADER) continue;
        if (!rep->e && rep->count) break;
        /* repeated fields are one list (RFC 9110 5.3): joined with ", " */
        jb_t raw;
        jb_init(&raw);
        size_t found = 0;
        for (size_t j = 0; j < nh; j++) {
            if (h[j].name_len != r->name_len || strncasecmp(h[j].name, r->name, r->name_len) != 0)
                continue;
            if (found++) jb_put(&raw, ", ", 2);
            jb_put(&raw, h[j].value, h[j].value_len);
        }
        if (raw.oom) {
            jb_free(&raw);
            return EG_ENOMEM;
        }
        if (!found) {
            jb_free(&raw);
            rc = r->required ? missing(rep, r) : EG_OK;
            continue;
        }
        jb_t b;
        jb_init(&b);
        if (r->types & (EG_ST_ARRAY | EG_ST_OBJECT)) {
            /* "a, b": the items without the optional whitespace */
            size_t o = 0;
            for (size_t j = 0; j < raw.len; j++)
                if (!(raw.p[j] == ' ' && j && raw.p[j - 1] == ',')) raw.p[o++] = raw.p[j];
            raw.len = o;
        }
        rc = value_into(rep, r, &b, raw.p, raw.len, DEC_NONE, ',');
        if (rc == 0) rc = check_json(rep, r, &b);
        if (rc == 1) rc = 0;
        jb_free(&b);
        jb_free(&raw);
    }
    return verdict(rep, before, rc);
}

/* ------------------------------------------------------------ a route's validation */

void eg_validation_free(eg_validation_t *v)
{
    if (!v) return;
    eg_params_free(&v->params);
    for (size_t i = 0; i < v->ncontent_types; i++)
        free(v->content_types[i]);
    free(v->content_types);
    eg_schema_free(v->body);
    free(v->json_message);
    for (size_t i = 0; i < v->ndocs; i++)
        eg_ydoc_free(v->docs[i]);
    free(v->docs);
    free(v);
}

void eg_media_type_of(const char *ct, size_t n, const char **type, size_t *tlen)
{
    const char *semi = memchr(ct, ';', n);
    size_t e = semi ? (size_t)(semi - ct) : n, s = 0;
    while (s < e && (ct[s] == ' ' || ct[s] == '\t'))
        s++;
    while (e > s && (ct[e - 1] == ' ' || ct[e - 1] == '\t'))
        e--;
    *type = ct + s;
    *tlen = e - s;
}

int eg_media_type_in(const char *t, size_t n, char *const *patterns, size_t np)
{
    const char *slash = memchr(t, '/', n);
    if (!slash || slash == t || slash == t + n - 1) return 0;
    size_t major = (size_t)(slash - t);
    for (size_t i = 0; i < np; i++) {
        const char *p = patterns[i];
        size_t pn = strlen(p);
        if (pn == 3 && memcmp(p, "*/*", 3) == 0) return 1;
        if (pn == n && strncasecmp(p, t, n) == 0) return 1;
        /* type/ * : the whole major type */
        if (pn == major + 2 && p[major] == '/' && p[major + 1] == '*' &&
            strncasecmp(p, t, major) == 0)
            return 1;
        /* type/ *+suffix */
        const char *star = strstr(p, "/*+");
        if (star && (size_t)(star - p) == major && strncasecmp(p, t, major) == 0) {
            size_t sl = pn - (size_t)(star + 2 - p);
            if (n > major + 1 + sl && strncasecmp(t + n - sl, star + 2, sl) == 0) return 1;
        }
    }
    return 0;
}

/* s[0..8) equals lit[0..8) where the letters of lit (lower case) may be
 * in either case in s: each word's letters compared with bit 5 set (mask:
 * 0x20 where lit has a letter, 0 elsewhere), as strncasecmp finds them. */
static int ieq8(const char *s, const char *lit, const char *mask)
{
    uint64_t a, l, m;
    memcpy(&a, s, 8);
    memcpy(&l, lit, 8);
    memcpy(&m, mask, 8);
    return (a | m) == l;
}

int eg_media_type_is_json(const char *t, size_t n)
{
    /* "application/json" by two words instead of a call: the usual type */
    if (n == 16 && ieq8(t, "applicat", "\x20\x20\x20\x20\x20\x20\x20\x20") &&
        ieq8(t + 8, "ion/json", "\x20\x20\x20\x00\x20\x20\x20\x20"))
        return 1;
    const char *slash = memchr(t, '/', n);
    return slash && n > 5 && (size_t)(t + n - slash) > 5 && strncasecmp(t + n - 5, "+json", 5) == 0;
}

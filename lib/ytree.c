/* ytree.c - libyaml events folded into a tree of nodes with positions.
 *
 * Each node is one malloc'd struct; scalars keep a NUL-terminated copy of
 * their value. The tree is small (config and dialect files), so clarity wins
 * over pooling. Aliases are refused: configs are read by people, and anchors
 * make "where did this value come from" hard to answer in an error message.
 */
#include "ytree.h"
#include "jsonr.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct eg_ydoc_s {
    char *name;
    eg_ynode_t *root;
};

static void node_free(eg_ynode_t *n)
{
    if (!n) return;
    size_t count = n->kind == EG_Y_MAP ? n->n * 2 : n->n;
    for (size_t i = 0; i < count; i++) node_free(n->items[i]);
    free(n->items);
    free((char *)n->str);
    free(n);
}

void eg_ydoc_free(eg_ydoc_t *doc)
{
    if (!doc) return;
    node_free(doc->root);
    free(doc->name);
    free(doc);
}

const eg_ynode_t *eg_ydoc_root(const eg_ydoc_t *doc)
{
    return doc->root;
}

const char *eg_ydoc_name(const eg_ydoc_t *doc)
{
    return doc->name;
}

/* Copies raw into err (errlen bytes, always terminated) with every control
 * byte written as \n, \r, \t or \xNN. Messages quote values from the file
 * (and its name), and check-config prints them one a line: a raw newline in
 * a value would start a line of the file's choosing ("ok"), a raw escape
 * sequence would drive the terminal. An escape that does not fit whole is
 * left out, as is everything after it. */
static void escape_into(char *err, size_t errlen, const char *raw)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        char e[4];
        size_t n = 0;
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            e[n++] = '\\';
            e[n++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else if (*p < 0x20 || *p == 0x7f) {
            e[n++] = '\\';
            e[n++] = 'x';
            e[n++] = hex[*p >> 4];
            e[n++] = hex[*p & 15];
        } else {
            e[n++] = (char)*p;
        }
        if (o + n >= errlen) break;
        memcpy(err + o, e, n);
        o += n;
    }
    err[o] = '\0';
}

/* Formats "name:line:col: message" (or, with name NULL and line 0, just the
 * message) into err with control characters escaped. */
static int vformat(char *err, size_t errlen, const char *name, int line, int col, const char *fmt,
                   va_list ap)
{
    if (err && errlen) {
        char raw[4096];
        int k = 0;
        if (line) k = snprintf(raw, sizeof(raw), "%s:%d:%d: ", name ? name : "<yaml>", line, col);
        if (k >= 0 && (size_t)k < sizeof(raw)) vsnprintf(raw + k, sizeof(raw) - (size_t)k, fmt, ap);
        escape_into(err, errlen, raw);
    }
    return EG_EPARSE;
}

static int format(char *err, size_t errlen, const char *name, int line, int col,
                  const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int format(char *err, size_t errlen, const char *name, int line, int col,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(err, errlen, name, line, col, fmt, ap);
    va_end(ap);
    return EG_EPARSE;
}

int eg_yerr(const eg_ydoc_t *doc, const eg_ynode_t *at, char *err, size_t errlen,
            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(err, errlen, doc ? doc->name : NULL, at ? at->line : 1, at ? at->col : 1, fmt, ap);
    va_end(ap);
    return EG_EPARSE;
}

static eg_ynode_t *node_new(eg_ykind_t kind, const yaml_mark_t *m)
{
    eg_ynode_t *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->col = (int)m->column + 1;
    return n;
}

/* Builder state: a growable item list while a collection is open. */
typedef struct {
    eg_ynode_t **items;
    size_t len, cap;
} itemlist_t;

static int items_add(itemlist_t *l, eg_ynode_t *n)
{
    if (l->len == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        eg_ynode_t **p = realloc(l->items, ncap * sizeof(*p));
        if (!p) return EG_ENOMEM;
        l->items = p;
        l->cap = ncap;
    }
    l->items[l->len++] = n;
    return EG_OK;
}

/* Deeper nesting than any configuration needs is refused: the tree is
 * built (and freed) recursively, and "{{{{..." must be an error, not a
 * stack overflow (fuzz_config found it). */
#define YTREE_MAX_DEPTH 64

typedef struct {
    yaml_parser_t *p;
    const char *text; /* the input, to look at what libyaml stopped on */
    size_t len;
    const char *name;
    char *err;
    size_t errlen;
    int depth;
} ctx_t;

/* The column (0-based) of the first tab in the indentation of line `line`
 * (0-based) when the indentation has one and `col` lies within it, else -1.
 * libyaml reports a tab in indentation as "found character that cannot start
 * any token" or "found a tab character that violates indentation", which
 * does not tell a person what to change. Indentation is ASCII, so libyaml's
 * character columns are byte offsets there. */
static int indent_tab(const char *text, size_t len, size_t line, size_t col)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < len; i++)
        if (text[i] == '\n') l++;
    int tab = -1;
    for (size_t k = 0; i + k < len && (text[i + k] == ' ' || text[i + k] == '\t'); k++) {
        if (text[i + k] == '\t' && tab < 0) tab = (int)k;
        if (k == col) return tab;
    }
    return -1;
}

static int next_event(ctx_t *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(c->p, ev)) {
        const yaml_mark_t *m = &c->p->problem_mark;
        int tab = c->p->error == YAML_SCANNER_ERROR
                      ? indent_tab(c->text, c->len, m->line, m->column)
                      : -1;
        if (tab >= 0)
            return format(c->err, c->errlen, c->name, (int)m->line + 1, tab + 1,
                          "tabs are not allowed for indentation (use spaces)");
        return format(c->err, c->errlen, c->name, (int)m->line + 1, (int)m->column + 1, "%s%s%s",
                      c->p->problem ? c->p->problem : "invalid YAML",
                      c->p->context ? " " : "", c->p->context ? c->p->context : "");
    }
    return EG_OK;
}

static int parse_node(ctx_t *c, yaml_event_t *ev, eg_ynode_t **out);

/* Reads the children of a sequence or mapping until its end event. */
static int parse_children(ctx_t *c, eg_ynode_t *n, yaml_event_type_t end)
{
    itemlist_t l = {0};
    int rc = EG_OK;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(c, &ev)) != EG_OK) break;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        eg_ynode_t *child = NULL;
        rc = parse_node(c, &ev, &child);
        yaml_event_delete(&ev);
        if (rc == EG_OK) rc = items_add(&l, child);
        if (rc != EG_OK) {
            node_free(child);
            break;
        }
        if (n->kind == EG_Y_MAP && l.len % 2 == 1) {
            if (child->kind != EG_Y_SCALAR) {
                rc = format(c->err, c->errlen, c->name, child->line, child->col,
                            "map keys must be plain scalars");
                break;
            }
            for (size_t i = 0; i + 1 < l.len; i += 2) {
                if (strcmp(l.items[i]->str, child->str) == 0) {
                    rc = format(c->err, c->errlen, c->name, child->line, child->col,
                                "duplicate key '%s' (first at line %d)", child->str,
                                l.items[i]->line);
                    break;
                }
            }
            if (rc != EG_OK) break;
        }
    }
    n->items = l.items;
    n->n = n->kind == EG_Y_MAP ? l.len / 2 : l.len;
    if (rc != EG_OK && n->kind == EG_Y_MAP && l.len % 2 == 1) {
        /* free the dangling key that has no value */
        node_free(l.items[l.len - 1]);
    }
    return rc;
}

static int parse_node(ctx_t *c, yaml_event_t *ev, eg_ynode_t **out)
{
    eg_ynode_t *n = NULL;
    int rc = EG_OK;
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                          (int)ev->start_mark.column + 1, "anchors are not supported");
        /* a NUL ("\0" in a quoted scalar) would cut the string the rest of
         * the loader reads short of its length (fuzz_config found a read
         * past the end this way): refused */
        if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length))
            return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                          (int)ev->start_mark.column + 1, "a value may not contain a NUL character");
        if (!(n = node_new(EG_Y_SCALAR, &ev->start_mark))) return EG_ENOMEM;
        n->len = ev->data.scalar.length;
        n->str = strndup((const char *)ev->data.scalar.value, n->len);
        if (!n->str) rc = EG_ENOMEM;
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor
                                           : ev->data.sequence_start.anchor;
        if (anchor)
            return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                          (int)ev->start_mark.column + 1, "anchors are not supported");
        if (c->depth >= YTREE_MAX_DEPTH)
            return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                          (int)ev->start_mark.column + 1, "nesting deeper than %d levels", YTREE_MAX_DEPTH);
        if (!(n = node_new(is_map ? EG_Y_MAP : EG_Y_SEQ, &ev->start_mark))) return EG_ENOMEM;
        c->depth++;
        rc = parse_children(c, n, is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT);
        c->depth--;
        break;
    }
    case YAML_ALIAS_EVENT:
        return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                      (int)ev->start_mark.column + 1, "aliases are not supported");
    default:
        return format(c->err, c->errlen, c->name, (int)ev->start_mark.line + 1,
                      (int)ev->start_mark.column + 1, "unexpected YAML event");
    }
    if (rc != EG_OK) {
        node_free(n);
        return rc;
    }
    *out = n;
    return EG_OK;
}

int eg_ydoc_parse(const char *text, size_t len, const char *name, eg_ydoc_t **out, char *err,
                  size_t errlen)
{
    yaml_parser_t p;
    eg_ydoc_t *doc = calloc(1, sizeof(*doc));
    if (!doc) return EG_ENOMEM;
    doc->name = strdup(name ? name : "<yaml>");
    if (!doc->name || !yaml_parser_initialize(&p)) {
        eg_ydoc_free(doc);
        return EG_ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    ctx_t c = {&p, text, len, doc->name, err, errlen, 0};
    int rc = EG_OK;
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(&c, &ev)) != EG_OK) break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            rc = format(err, errlen, doc->name, (int)ev.start_mark.line + 1,
                        (int)ev.start_mark.column + 1, "only one YAML document is allowed");
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
            rc = parse_node(&c, &ev, &doc->root);
        }
        yaml_event_delete(&ev);
        if (rc != EG_OK) break;
    }
    yaml_parser_delete(&p);
    if (rc != EG_OK) {
        eg_ydoc_free(doc);
        return rc;
    }
    *out = doc;
    return EG_OK;
}

int eg_ydoc_load_file(const char *path, eg_ydoc_t **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        format(err, errlen, NULL, 0, 0, "%s: %s", path, strerror(errno));
        return EG_EIO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = EG_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            if (ncap > (64u << 20)) {
                format(err, errlen, NULL, 0, 0, "%s: file larger than 64 MiB", path);
                rc = EG_ETOOBIG;
                break;
            }
            char *p = realloc(buf, ncap);
            if (!p) {
                rc = EG_ENOMEM;
                break;
            }
            buf = p;
            cap = ncap;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) {
            if (ferror(f)) {
                format(err, errlen, NULL, 0, 0, "%s: read error", path);
                rc = EG_EIO;
            }
            break;
        }
    }
    fclose(f);
    if (rc == EG_OK) rc = eg_ydoc_parse(buf ? buf : "", len, path, out, err, errlen);
    free(buf);
    return rc;
}

const eg_ynode_t *eg_ymap_get(const eg_ynode_t *map, const char *key)
{
    if (!map || map->kind != EG_Y_MAP) return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->str, key) == 0) return map->items[2 * i + 1];
    return NULL;
}

int eg_yscalar_str(const eg_ydoc_t *doc, const eg_ynode_t *n, const char **out, char *err,
                   size_t errlen)
{
    if (!n || n->kind != EG_Y_SCALAR) return eg_yerr(doc, n, err, errlen, "expected a string");
    *out = n->str;
    return EG_OK;
}

int eg_yscalar_int(const eg_ydoc_t *doc, const eg_ynode_t *n, long long min, long long max,
                   long long *out, char *err, size_t errlen)
{
    if (!n || n->kind != EG_Y_SCALAR || n->len == 0)
        return eg_yerr(doc, n, err, errlen, "expected an integer");
    char *end = NULL;
    errno = 0;
    long long v = strtoll(n->str, &end, 10);
    if (errno || *end || end == n->str || n->str[0] == ' ' || n->str[0] == '+')
        return eg_yerr(doc, n, err, errlen, "expected an integer, got '%s'", n->str);
    if (v < min || v > max)
        return eg_yerr(doc, n, err, errlen, "%lld is out of range %lld..%lld", v, min, max);
    *out = v;
    return EG_OK;
}

int eg_yscalar_bool(const eg_ydoc_t *doc, const eg_ynode_t *n, int *out, char *err,
                    size_t errlen)
{
    if (n && n->kind == EG_Y_SCALAR && !n->quoted) {
        if (strcmp(n->str, "true") == 0) {
            *out = 1;
            return EG_OK;
        }
        if (strcmp(n->str, "false") == 0) {
            *out = 0;
            return EG_OK;
        }
    }
    return eg_yerr(doc, n, err, errlen, "expected true or false");
}

/* Plain scalars that look like YAML 1.2 core-schema values become that value. */
static json_t *scalar_to_json(const eg_ynode_t *n)
{
    if (!n->quoted) {
        const char *s = n->str;
        if (n->len == 0 || strcmp(s, "null") == 0 || strcmp(s, "~") == 0) return json_null();
        if (strcmp(s, "true") == 0) return json_true();
        if (strcmp(s, "false") == 0) return json_false();
        char *end = NULL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (!errno && *end == '\0' && end != s && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
            return json_integer(v);
        errno = 0;
        double d = strtod(s, &end);
        if (!errno && *end == '\0' && end != s && (s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
            return json_real(d);
    }
    return json_stringn(n->str, n->len);
}

json_t *eg_ynode_to_json(const eg_ynode_t *n)
{
    if (!n) return json_null();
    if (n->kind == EG_Y_SCALAR) return scalar_to_json(n);
    json_t *out = n->kind == EG_Y_MAP ? json_object() : json_array();
    if (!out) return NULL;
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *v = n->kind == EG_Y_MAP ? n->items[2 * i + 1] : n->items[i];
        json_t *jv = eg_ynode_to_json(v);
        int rc = jv ? 0 : -1;
        if (jv && n->kind == EG_Y_MAP) rc = json_object_set_new(out, n->items[2 * i]->str, jv);
        else if (jv) rc = json_array_append_new(out, jv);
        if (rc != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* JSON documents: jsonr checks the text strictly (the same acceptance as the
 * gateway's body reader) and leaves a tape of tokens with byte offsets; the
 * tape is in document order, so one cursor walks forward through the text
 * turning offsets into 1-based line and column (columns count code points,
 * like libyaml's). Nesting is capped at YTREE_MAX_DEPTH as for YAML, since
 * the tree is built and freed recursively. */
typedef struct {
    const eg_jr_doc_t *jd;
    const char *name;
    char *err;
    size_t errlen;
    size_t pos; /* cursor: byte offset whose line/col are below */
    int line, col;
} jctx_t;

static void jpos(jctx_t *c, size_t off, eg_ynode_t *n)
{
    const unsigned char *t = (const unsigned char *)c->jd->text;
    for (; c->pos < off; c->pos++) {
        if (t[c->pos] == '\n') {
            c->line++;
            c->col = 1;
        } else if ((t[c->pos] & 0xc0) != 0x80) {
            c->col++;
        }
    }
    n->line = c->line;
    n->col = c->col;
}

static int json_node(jctx_t *c, const eg_jr_tok_t *t, int depth, eg_ynode_t **out);

/* A string token (a value or a member name) as a quoted scalar. */
static int json_strnode(jctx_t *c, const eg_jr_tok_t *t, eg_ynode_t **out)
{
    eg_ynode_t *n = calloc(1, sizeof(*n));
    char *s = malloc((size_t)t->len + 1);
    if (!n || !s) {
        free(n);
        free(s);
        return EG_ENOMEM;
    }
    n->kind = EG_Y_SCALAR;
    n->quoted = 1;
    n->len = eg_jr_str(c->jd, t, s, t->len); /* never longer than the raw text */
    s[n->len] = '\0';
    n->str = s;
    jpos(c, t->off - 1, n); /* the opening quote */
    *out = n;
    return EG_OK;
}

static int json_node(jctx_t *c, const eg_jr_tok_t *t, int depth, eg_ynode_t **out)
{
    if (t->type == EG_JR_STRING) return json_strnode(c, t, out);
    int rc = EG_OK;
    eg_ynode_t *n = calloc(1, sizeof(*n));
    if (!n) return EG_ENOMEM;
    jpos(c, t->off, n);
    if (t->type != EG_JR_ARRAY && t->type != EG_JR_OBJECT) {
        n->kind = EG_Y_SCALAR;
        n->len = t->len;
        if (!(n->str = strndup(c->jd->text + t->off, t->len))) rc = EG_ENOMEM;
        goto done;
    }
    n->kind = t->type == EG_JR_OBJECT ? EG_Y_MAP : EG_Y_SEQ;
    if (depth >= YTREE_MAX_DEPTH) {
        rc = format(c->err, c->errlen, c->name, n->line, n->col, "nesting deeper than %d levels",
                    YTREE_MAX_DEPTH);
        goto done;
    }
    size_t slots = t->type == EG_JR_OBJECT ? 2 * (size_t)t->count : t->count;
    if (slots && !(n->items = calloc(slots, sizeof(*n->items)))) {
        rc = EG_ENOMEM;
        goto done;
    }
    n->n = t->count; /* node_free frees the slots filled so far (the rest are NULL) */
    const eg_jr_tok_t *k = t + 1;
    for (size_t i = 0; i < slots && rc == EG_OK; i++) {
        if (t->type == EG_JR_OBJECT && i % 2 == 0) {
            rc = json_strnode(c, k, &n->items[i]);
            k++;
            continue;
        }
        rc = json_node(c, k, depth + 1, &n->items[i]);
        k = c->jd->toks + k->end;
    }
done:
    if (rc != EG_OK) {
        node_free(n);
        return rc;
    }
    *out = n;
    return EG_OK;
}

int eg_ydoc_parse_json(const char *text, size_t len, const char *name, eg_ydoc_t **out, char *err,
                       size_t errlen)
{
    eg_jr_doc_t jd;
    int rc = eg_jr_parse(&jd, text, len);
    eg_ydoc_t *doc = calloc(1, sizeof(*doc));
    if (!doc || !(doc->name = strdup(name ? name : "<json>"))) {
        rc = EG_ENOMEM;
        goto done;
    }
    if (rc == EG_EPARSE) {
        /* jansson has the words for what is wrong; jsonr agrees on where */
        json_error_t je;
        json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
        json_decref(j);
        rc = format(err, errlen, doc->name, jd.line > 0 ? jd.line : 1,
                    jd.column > 0 ? jd.column : 1, "invalid JSON: %s",
                    j ? "rejected by the strict reader" : je.text);
        goto done;
    }
    if (rc != EG_OK) goto done;
    jctx_t c = {&jd, doc->name, err, errlen, 0, 1, 1};
    rc = json_node(&c, jd.toks, 0, &doc->root);
done:
    eg_jr_free(&jd);
    if (rc != EG_OK) {
        eg_ydoc_free(doc);
        return rc;
    }
    *out = doc;
    return EG_OK;
}

/* ${NAME} / ${NAME:-default} in one scalar, into a new string (*out, malloc'd;
 * NULL when the scalar has no "${"). "$${" is a literal "${"; any other "$"
 * stays as it is, so patterns like "^[0-9]+$" are untouched. */
static int expand_scalar(const eg_ydoc_t *doc, const eg_ynode_t *n, eg_yenv_fn lookup, void *ctx,
                         char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!strstr(n->str, "${")) return EG_OK;
    size_t cap = n->len + 64, len = 0;
    char *buf = malloc(cap);
    if (!buf) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < n->len;) {
        const char *piece = n->str + i;
        size_t pn = 1, adv = 1;
        if (n->str[i] == '$' && i + 2 < n->len && n->str[i + 1] == '$' && n->str[i + 2] == '{') {
            piece = "${", pn = 2, adv = 3;
        } else if (n->str[i] == '$' && i + 1 < n->len && n->str[i + 1] == '{') {
            const char *s = n->str + i + 2, *close = memchr(s, '}', n->len - i - 2);
            if (!close) {
                rc = eg_yerr(doc, n, err, errlen, "'${' without its closing '}'");
                goto fail;
            }
            size_t nl = 0;
            while (s + nl < close &&
                   (s[nl] == '_' || (s[nl] >= 'A' && s[nl] <= 'Z') ||
                    (s[nl] >= 'a' && s[nl] <= 'z') || (nl && s[nl] >= '0' && s[nl] <= '9')))
                nl++;
            const char *def = NULL;
            size_t dn = 0;
            if (s + nl + 1 < close && s[nl] == ':' && s[nl + 1] == '-')
                def = s + nl + 2, dn = (size_t)(close - def);
            else if (s + nl == close && nl > 0)
                def = NULL;
            else {
                rc = eg_yerr(doc, n, err, errlen,
                             "'%.*s' is not ${NAME} or ${NAME:-default} (NAME: letters, digits, _)",
                             (int)(close - s + 3 > 80 ? 80 : close - s + 3), n->str + i);
                goto fail;
            }
            if (nl == 0 || nl > 128) {
                rc = eg_yerr(doc, n, err, errlen,
                             "an environment variable's name is 1 to 128 letters, digits or _");
                goto fail;
            }
            char name[129];
            memcpy(name, s, nl);
            name[nl] = '\0';
            const char *v = lookup(ctx, name);
            if (v && (*v || !def))
                piece = v, pn = strlen(v);
            else if (def)
                piece = def, pn = dn;
            else {
                rc = eg_yerr(doc, n, err, errlen,
                             "environment variable %s is not set (${%s:-default} gives a default)",
                             name, name);
                goto fail;
            }
            adv = (size_t)(close - (n->str + i)) + 1;
        }
        if (len + pn + 1 > cap) {
            size_t ncap = (len + pn + 1) * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = EG_ENOMEM;
                goto fail;
            }
            buf = nb, cap = ncap;
        }
        memcpy(buf + len, piece, pn);
        len += pn;
        i += adv;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) { /* a variable cannot smuggle a NUL in */
        rc = eg_yerr(doc, n, err, errlen, "a value may not contain a NUL character");
        goto fail;
    }
    *out = buf;
    return EG_OK;
fail:
    free(buf);
    return rc;
}

static int expand_node(const eg_ydoc_t *doc, eg_ynode_t *n, eg_yenv_fn lookup, void *ctx, char *err,
                       size_t errlen)
{
    if (!n) return EG_OK;
    if (n->kind != EG_Y_SCALAR) {
        size_t count = n->kind == EG_Y_MAP ? n->n * 2 : n->n;
        for (size_t i = 0; i < count; i++) {
            int rc = expand_node(doc, n->items[i], lookup, ctx, err, errlen);
            if (rc) return rc;
        }
        return EG_OK;
    }
    char *v = NULL;
    int rc = expand_scalar(doc, n, lookup, ctx, &v, err, errlen);
    if (rc || !v) return rc;
    /* a value that is one ${...} and nothing else takes the type of what it
     * became, quoted or not: flow style needs the quotes ({ port: "${PORT}" }) */
    size_t ol = n->len;
    if (ol > 3 && n->str[0] == '$' && n->str[1] == '{' && n->str[ol - 1] == '}' &&
        memchr(n->str + 2, '}', ol - 3) == NULL)
        n->quoted = 0;
    free((char *)n->str);
    n->str = v;
    n->len = strlen(v);
    return EG_OK;
}

int eg_ydoc_expand_env(eg_ydoc_t *doc, eg_yenv_fn lookup, void *ctx, char *err, size_t errlen)
{
    return doc ? expand_node(doc, doc->root, lookup, ctx, err, errlen) : EG_OK;
}

/* openapi.c - OpenAPI 3.0 / 3.1 documents as operations (see openapi.h).
 *
 * One pass over `paths` builds the operation list; every object read here
 * has a list of the keys it knows, and any other key (x- extensions aside)
 * is a warning with its position, so nothing in a document is ignored
 * without a word. Files are cached by their real path: a document and the
 * siblings its $refs reach are each parsed once, kept until
 * eg_openapi_free, and must lie under the root document's directory (a
 * document from elsewhere cannot make the gateway read /etc/passwd). A
 * $ref chain is followed at most EG_OPENAPI_MAX_REF_DEPTH times, which also
 * ends cycles.
 */
#include "openapi.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errgate/router.h"
#include "params.h"

typedef struct {
    char *real; /* realpath: the cache key */
    eg_ydoc_t *doc;
} oa_file_t;

struct eg_openapi_s {
    oa_file_t files[EG_OPENAPI_MAX_FILES];
    size_t nfiles;
    size_t bytes;  /* read from all files, up to EG_OPENAPI_MAX_TOTAL */
    char *rootdir; /* realpath of the root document's directory, '/'-terminated */
    eg_oa_op_t *ops;
    size_t nops, capops;
    char **warnings;
    size_t nwarn, capwarn, dropped;
    char **strs; /* strings the operations point to that no document holds */
    size_t nstrs, capstrs;
    char version[32];
    int v30;
    const char *title;
    int doc_security; /* the root's security applies to operations without their own */
};

/* ------------------------------------------------------------ small helpers */

static int push_str(eg_openapi_t *oa, char *s)
{
    if (!s) return EG_ENOMEM;
    if (oa->nstrs == oa->capstrs) {
        size_t nc = oa->capstrs ? oa->capstrs * 2 : 16;
        char **p = realloc(oa->strs, nc * sizeof(*p));
        if (!p) {
            free(s);
            return EG_ENOMEM;
        }
        oa->strs = p;
        oa->capstrs = nc;
    }
    oa->strs[oa->nstrs++] = s;
    return EG_OK;
}

static void add_warning(eg_openapi_t *oa, const char *msg)
{
    if (oa->nwarn >= EG_OPENAPI_MAX_WARNINGS) {
        oa->dropped++;
        return;
    }
    if (oa->nwarn == oa->capwarn) {
        size_t nc = oa->capwarn ? oa->capwarn * 2 : 8;
        char **p = realloc(oa->warnings, (nc + 1) * sizeof(*p)); /* +1: the "more" line */
        if (!p) return;                                          /* a warning lost to no memory */
        oa->warnings = p;
        oa->capwarn = nc;
    }
    char *s = strdup(msg);
    if (!s) return;
    /* a name from the document cannot start a line of its own (check-config
     * prints a warning a line) nor drive a terminal */
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    oa->warnings[oa->nwarn++] = s;
}

void eg_openapi_warn(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt,
                     ...)
{
    char msg[768];
    int n = snprintf(msg, sizeof(msg), "%s:%d:%d: ", doc ? eg_ydoc_name(doc) : "openapi",
                     at ? at->line : 0, at ? at->col : 0);
    if (n < 0 || (size_t)n >= sizeof(msg)) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    add_warning(oa, msg);
}

static void schema_warn(void *ctx, const char *msg)
{
    add_warning(ctx, msg);
}

/* Warns of each key of map `n` not in `keys` (NULL-terminated) and not an
 * x- extension. */
static void warn_unknown(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *n,
                         const char *what, const char *const *keys)
{
    if (!n || n->kind != EG_Y_MAP) return;
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *k = n->items[2 * i];
        if (k->kind != EG_Y_SCALAR || strncmp(k->str, "x-", 2) == 0) continue;
        int ok = 0;
        for (const char *const *p = keys; *p && !ok; p++)
            ok = strcmp(*p, k->str) == 0;
        if (!ok) eg_openapi_warn(oa, doc, k, "unknown key '%s' in %s is ignored", k->str, what);
    }
}

static const char *scalar(const eg_ynode_t *n)
{
    return n && n->kind == EG_Y_SCALAR ? n->str : NULL;
}

static int get_bool(const eg_ydoc_t *doc, const eg_ynode_t *map, const char *key, int *out,
                    char *err, size_t errlen)
{
    const eg_ynode_t *v = eg_ymap_get(map, key);
    if (!v) return EG_OK;
    return eg_yscalar_bool(doc, v, out, err, errlen);
}

/* ------------------------------------------------------------ files */

static int read_text(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EG_EIO;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? EG_OK : EG_ENOMEM;
    while (!rc) {
        if (n + 1 >= cap) {
            if (cap > EG_OPENAPI_MAX_BYTES) {
                snprintf(err, errlen, "%s: larger than %u MiB (the cap on an OpenAPI file)", path,
                         EG_OPENAPI_MAX_BYTES >> 20);
                rc = EG_ETOOBIG;
                break;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                rc = EG_ENOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read error", path);
                rc = EG_EIO;
            }
            break;
        }
    }
    fclose(f);
    if (!rc && n > EG_OPENAPI_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %u MiB (the cap on an OpenAPI file)", path,
                 EG_OPENAPI_MAX_BYTES >> 20);
        rc = EG_ETOOBIG;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return EG_OK;
}

static int add_text(eg_openapi_t *oa, const char *text, size_t len, const char *path,
                    const char *real, const eg_ydoc_t **doc, char *err, size_t errlen);

/* The document at `path` (as named in messages), from the cache or read
 * now. `real` is its realpath, already checked to lie under rootdir. */
static int load_file(eg_openapi_t *oa, const char *path, const char *real, const eg_ydoc_t **doc,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < oa->nfiles; i++)
        if (strcmp(oa->files[i].real, real) == 0) {
            *doc = oa->files[i].doc;
            return EG_OK;
        }
    if (oa->nfiles == EG_OPENAPI_MAX_FILES) {
        snprintf(err, errlen, "%s: more than %d files referenced (the cap)", path,
                 EG_OPENAPI_MAX_FILES);
        return EG_ETOOBIG;
    }
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(path, &text, &len, err, errlen);
    if (rc) return rc;
    if (len > EG_OPENAPI_MAX_TOTAL - oa->bytes) {
        snprintf(err, errlen, "%s: the document's files are larger than %u MiB together (the cap)",
                 path, EG_OPENAPI_MAX_TOTAL >> 20);
        free(text);
        return EG_ETOOBIG;
    }
    oa->bytes += len;
    rc = add_text(oa, text, len, path, real, doc, err, errlen);
    free(text);
    return rc;
}

/* Parses a document (JSON when the name ends in .json, else YAML) into the
 * cache under `real`. */
static int add_text(eg_openapi_t *oa, const char *text, size_t len, const char *path,
                    const char *real, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    eg_ydoc_t *d = NULL;
    size_t pl = strlen(path);
    int rc;
    if (pl > 5 && strcasecmp(path + pl - 5, ".json") == 0)
        rc = eg_ydoc_parse_json(text, len, path, &d, err, errlen);
    else
        rc = eg_ydoc_parse(text, len, path, &d, err, errlen);
    if (rc) return rc;
    char *key = strdup(real);
    if (!key) {
        eg_ydoc_free(d);
        return EG_ENOMEM;
    }
    oa->files[oa->nfiles++] = (oa_file_t){key, d};
    *doc = d;
    return EG_OK;
}

/* `rel` joined to the directory of the document named `from_name`. */
static int join_dir(const char *from_name, const char *rel, char *out, size_t cap)
{
    const char *slash = strrchr(from_name, '/');
    int n = slash ? snprintf(out, cap, "%.*s/%s", (int)(slash - from_name), from_name, rel)
                  : snprintf(out, cap, "%s", rel);
    return n < 0 || (size_t)n >= cap ? EG_ERANGE : EG_OK;
}

/* A sibling file by its joined path: confined to the root's directory. */
static int load_sibling(eg_openapi_t *oa, const eg_ydoc_t *from, const eg_ynode_t *at,
                        const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (from)
            return eg_yerr(from, at, err, errlen, "$ref file '%s': %s", path, strerror(errno));
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EG_EPARSE;
    }
    if (strncmp(real, oa->rootdir, strlen(oa->rootdir)) != 0) {
        if (from)
            return eg_yerr(from, at, err, errlen,
                           "$ref file '%s' is outside the directory of the OpenAPI document", path);
        snprintf(err, errlen, "%s: outside the directory of the OpenAPI document", path);
        return EG_EPARSE;
    }
    char e2[512] = "";
    int rc = load_file(oa, path, real, doc, e2, sizeof(e2));
    if (rc == EG_EIO || rc == EG_ETOOBIG) {
        if (from) return eg_yerr(from, at, err, errlen, "$ref: %s", e2);
        snprintf(err, errlen, "%s", e2);
        return EG_EPARSE;
    }
    if (rc) snprintf(err, errlen, "%s", e2);
    return rc;
}

static int schema_load(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    return load_sibling(ctx, NULL, NULL, path, doc, err, errlen);
}

void eg_openapi_schema_opts(eg_openapi_t *oa, eg_schema_opts_t *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->openapi30 = oa->v30;
    opts->load = schema_load;
    opts->load_ctx = oa;
    opts->warn = schema_warn;
    opts->warn_ctx = oa;
}

/* ------------------------------------------------------------ $ref */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Walks the JSON pointer `ptr` ("/a/b~1c/0", percent-encoded as URI
 * fragments are) from `n`; NULL when a step does not exist. */
static const eg_ynode_t *walk(const eg_ynode_t *n, const char *ptr)
{
    char tok[512];
    while (n && *ptr) {
        if (*ptr != '/') return NULL;
        ptr++;
        size_t k = 0;
        while (*ptr && *ptr != '/') {
            char c = *ptr++;
            if (c == '%' && hexval(ptr[0]) >= 0 && hexval(ptr[1]) >= 0) {
                c = (char)(hexval(ptr[0]) * 16 + hexval(ptr[1]));
                ptr += 2;
            }
            if (c == '~') {
                char d = *ptr;
                if (d == '%' && hexval(ptr[1]) >= 0 && hexval(ptr[2]) >= 0) {
                    d = (char)(hexval(ptr[1]) * 16 + hexval(ptr[2]));
                    ptr += 2;
                }
                if (d != '0' && d != '1') return NULL;
                c = d == '0' ? '~' : '/';
                ptr++;
            }
            if (k + 1 >= sizeof(tok)) return NULL;
            tok[k++] = c;
        }
        tok[k] = '\0';
        if (n->kind == EG_Y_MAP) {
            n = eg_ymap_get(n, tok);
        } else if (n->kind == EG_Y_SEQ) {
            char *end;
            errno = 0;
            unsigned long i = strtoul(tok, &end, 10);
            if (!k || *end || errno || i >= n->n || (tok[0] == '0' && k > 1)) return NULL;
            n = n->items[i];
        } else {
            return NULL;
        }
    }
    return n;
}

int eg_openapi_resolve(eg_openapi_t *oa, const eg_ydoc_t *from, const eg_ynode_t *at,
                       const char *ref, const eg_ydoc_t **doc, const eg_ynode_t **node, char *err,
                       size_t errlen)
{
    const char *hash = strchr(ref, '#');
    size_t flen = hash ? (size_t)(hash - ref) : strlen(ref);
    const char *frag = hash ? hash + 1 : "";
    const eg_ydoc_t *d = from;
    if (flen) {
        if (memchr(ref, ':', flen) || ref[0] == '/')
            return eg_yerr(from, at, err, errlen,
                           "$ref '%s': only relative file references are supported (no URLs, no "
                           "absolute paths)",
                           ref);
        char rel[PATH_MAX], path[PATH_MAX];
        if (flen >= sizeof(rel))
            return eg_yerr(from, at, err, errlen, "$ref '%.64s...' is too long", ref);
        memcpy(rel, ref, flen);
        rel[flen] = '\0';
        if (join_dir(eg_ydoc_name(from), rel, path, sizeof(path)))
            return eg_yerr(from, at, err, errlen, "$ref '%.64s...' is too long", ref);
        int rc = load_sibling(oa, from, at, path, &d, err, errlen);
        if (rc) return rc;
    }
    if (*frag && *frag != '/')
        return eg_yerr(from, at, err, errlen,
                       "$ref '%s': only JSON pointer fragments (#/...) are supported", ref);
    const eg_ynode_t *n = walk(eg_ydoc_root(d), frag);
    if (!n) return eg_yerr(from, at, err, errlen, "$ref '%s' does not resolve", ref);
    *doc = d;
    *node = n;
    return EG_OK;
}

/* Follows $ref until an object without one: *doc and *n are updated. */
static int follow(eg_openapi_t *oa, const eg_ydoc_t **doc, const eg_ynode_t **n, char *err,
                  size_t errlen)
{
    for (int depth = 0;; depth++) {
        const eg_ynode_t *r = eg_ymap_get(*n, "$ref");
        if (!r) return EG_OK;
        if (r->kind != EG_Y_SCALAR) return eg_yerr(*doc, r, err, errlen, "$ref must be a string");
        if (depth == EG_OPENAPI_MAX_REF_DEPTH)
            return eg_yerr(*doc, r, err, errlen, "$ref chain longer than %d (a cycle?)",
                           EG_OPENAPI_MAX_REF_DEPTH);
        int rc = eg_openapi_resolve(oa, *doc, r, r->str, doc, n, err, errlen);
        if (rc) return rc;
    }
}

/* ------------------------------------------------------------ servers */

int eg_openapi_base_path(const char *url, const eg_ynode_t *vars, char *out, size_t cap)
{
    char full[2048];
    size_t n = 0;
    /* variables first: "{scheme}://{host}/{version}" */
    for (const char *p = url; *p; p++) {
        if (*p == '{') {
            const char *end = strchr(p, '}');
            if (!end) return EG_EINVAL;
            char name[128];
            size_t nl = (size_t)(end - p - 1);
            if (nl >= sizeof(name)) return EG_EINVAL;
            memcpy(name, p + 1, nl);
            name[nl] = '\0';
            const char *def = scalar(eg_ymap_get(eg_ymap_get(vars, name), "default"));
            if (!def) return EG_EINVAL;
            size_t dl = strlen(def);
            if (n + dl >= sizeof(full)) return EG_ERANGE;
            memcpy(full + n, def, dl);
            n += dl;
            p = end;
            continue;
        }
        if (n + 1 >= sizeof(full)) return EG_ERANGE;
        full[n++] = *p;
    }
    full[n] = '\0';
    const char *path = full;
    const char *scheme = strstr(full, "://");
    if (scheme) {
        path = strchr(scheme + 3, '/');
        if (!path) path = "";
    } else if (full[0] == '/' && full[1] == '/') { /* "//host/v1" */
        path = strchr(full + 2, '/');
        if (!path) path = "";
    }
    size_t len = strcspn(path, "?#");
    while (len && path[len - 1] == '/')
        len--;
    if (len && path[0] != '/') { /* relative ("v1"): under the root */
        if (len + 2 > cap) return EG_ERANGE;
        out[0] = '/';
        memcpy(out + 1, path, len);
        out[len + 1] = '\0';
        return EG_OK;
    }
    if (len + 1 > cap) return EG_ERANGE;
    memcpy(out, path, len);
    out[len] = '\0';
    return EG_OK;
}

/* The base path of the first server of a `servers` list into *out (NULL
 * when the list is absent or empty: the caller's default applies). */
static int servers_base(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *servers,
                        const char **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!servers) return EG_OK;
    if (servers->kind != EG_Y_SEQ)
        return eg_yerr(doc, servers, err, errlen, "servers must be a list");
    if (servers->n == 0) return EG_OK;
    const eg_ynode_t *s = servers->items[0];
    const char *url = scalar(eg_ymap_get(s, "url"));
    if (!url) return eg_yerr(doc, s, err, errlen, "a server needs url: ...");
    char base[1024];
    int rc = eg_openapi_base_path(url, eg_ymap_get(s, "variables"), base, sizeof(base));
    if (rc == EG_EINVAL)
        return eg_yerr(doc, s, err, errlen, "server url '%s': a {variable} without a default", url);
    if (rc) return eg_yerr(doc, s, err, errlen, "server url '%s' is too long", url);
    for (const char *p = base; *p; p++)
        if (*p == '{' || *p == '}' || (unsigned char)*p <= ' ')
            return eg_yerr(doc, s, err, errlen, "server url '%s': its path cannot be routed", url);
    if (servers->n > 1)
        eg_openapi_warn(oa, doc, servers->items[1],
                        "only the first server's base path is used; the others' are not routed");
    char *copy = strdup(base);
    if ((rc = push_str(oa, copy))) return rc;
    *out = copy;
    return EG_OK;
}

/* ------------------------------------------------------------ paths */

/* Checks a path template as the router takes it ({name} whole segments)
 * and calls back each name. -1 when it cannot be routed. */
static int template_names(const char *p, const char **names, size_t *lens, size_t max,
                          size_t *count)
{
    size_t k = 0;
    if (p[0] != '/') return -1;
    for (size_t i = 0; p[i]; i++) {
        if ((unsigned char)p[i] <= ' ' || p[i] == '?' || p[i] == '#') return -1;
        if (p[i] != '{' && p[i] != '}') continue;
        if (p[i] == '}' || p[i - 1] != '/') return -1;
        size_t j = i + 1;
        while (p[j] && p[j] != '}' && p[j] != '{' && p[j] != '/')
            j++;
        if (p[j] != '}' || j == i + 1 || (p[j + 1] && p[j + 1] != '/')) return -1;
        if (k < max) {
            names[k] = p + i + 1;
            lens[k] = j - i - 1;
        }
        k++;
        i = j;
    }
    *count = k;
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"get", EG_M_GET},       {"put", EG_M_PUT},         {"post", EG_M_POST},
               {"delete", EG_M_DELETE}, {"options", EG_M_OPTIONS}, {"head", EG_M_HEAD},
               {"patch", EG_M_PATCH},   {"trace", EG_M_TRACE}};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))

static int parse_in(const char *s, eg_oa_in_t *out)
{
    static const char *const names[] = {"query", "path", "header", "cookie"};
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (eg_oa_in_t)i;
            return 0;
        }
    return -1;
}

/* A parameter's style through params.h's table (the one the validation
 * stage reads): 0, -1 unknown, -2 a style of another location. Cookies
 * (not checked, only warned of) take form alone, as OpenAPI says. */
static int parse_style(const char *s, eg_oa_in_t in, eg_param_style_t *out)
{
    static const eg_param_in_t pin[] = {[EG_OA_QUERY] = EG_PIN_QUERY,
                                        [EG_OA_PATH] = EG_PIN_PATH,
                                        [EG_OA_HEADER] = EG_PIN_HEADER,
                                        [EG_OA_COOKIE] = EG_PIN_QUERY};
    eg_param_style_t st;
    if (eg_param_style_parse(s, pin[in], &st) == EG_OK && (in != EG_OA_COOKIE || st == EG_PSTYLE_FORM)) {
        *out = st;
        return 0;
    }
    for (eg_param_in_t other = EG_PIN_QUERY; other <= EG_PIN_HEADER; other++)
        if (eg_param_style_parse(s, other, &st) == EG_OK) return -2;
    return -1;
}

static const char *in_name(eg_oa_in_t in)
{
    static const char *const names[] = {"query", "path", "header", "cookie"};
    return names[in];
}

/* Reads one Parameter Object (after $ref). *skip: a parameter the
 * specification says to ignore. */
static int load_param(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *n, eg_oa_param_t *p,
                      int *skip, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "name",    "in",      "description",   "required", "deprecated", "allowEmptyValue",
        "style",   "explode", "allowReserved", "schema",   "example",    "examples",
        "content", NULL};
    *skip = 0;
    if (n->kind != EG_Y_MAP) return eg_yerr(doc, n, err, errlen, "a parameter must be a map");
    memset(p, 0, sizeof(*p));
    p->doc = doc;
    p->at = n;
    const eg_ynode_t *v = eg_ymap_get(n, "name");
    if (!scalar(v) || !v->len)
        return eg_yerr(doc, v ? v : n, err, errlen, "a parameter needs name: ...");
    p->name = v->str;
    v = eg_ymap_get(n, "in");
    if (parse_in(scalar(v), &p->in))
        return eg_yerr(doc, v ? v : n, err, errlen,
                       "parameter '%s': in must be query, path, header or cookie", p->name);
    warn_unknown(oa, doc, n, "a parameter", keys);
    int rc;
    if ((rc = get_bool(doc, n, "required", &p->required, err, errlen))) return rc;
    if ((rc = get_bool(doc, n, "allowEmptyValue", &p->allow_empty, err, errlen))) return rc;
    if ((rc = get_bool(doc, n, "allowReserved", &p->allow_reserved, err, errlen))) return rc;
    p->style =
        p->in == EG_OA_QUERY || p->in == EG_OA_COOKIE ? EG_PSTYLE_FORM : EG_PSTYLE_SIMPLE;
    if ((v = eg_ymap_get(n, "style"))) {
        int s = scalar(v) ? parse_style(v->str, p->in, &p->style) : -1;
        if (s == -2)
            return eg_yerr(doc, v, err, errlen,
                           "parameter '%s': style %s does not apply to %s parameters", p->name,
                           v->str, in_name(p->in));
        if (s) return eg_yerr(doc, v, err, errlen, "parameter '%s': unknown style", p->name);
    }
    p->explode = p->style == EG_PSTYLE_FORM;
    if ((rc = get_bool(doc, n, "explode", &p->explode, err, errlen))) return rc;
    if (p->in == EG_OA_PATH) {
        if (!p->required)
            eg_openapi_warn(
                oa, doc, n,
                "path parameter '%s' is not marked required: path parameters always are", p->name);
        p->required = 1;
    }
    if (p->in == EG_OA_HEADER &&
        (strcasecmp(p->name, "Accept") == 0 || strcasecmp(p->name, "Content-Type") == 0 ||
         strcasecmp(p->name, "Authorization") == 0)) {
        eg_openapi_warn(
            oa, doc, n,
            "header parameter '%s' is ignored, as the OpenAPI specification says (requestBody "
            "content, responses and the route's auth: cover it)",
            p->name);
        *skip = 1;
        return EG_OK;
    }
    if (p->in == EG_OA_COOKIE) {
        eg_openapi_warn(oa, doc, n, "cookie parameter '%s' is not checked by the gateway", p->name);
        *skip = 1;
        return EG_OK;
    }
    const eg_ynode_t *schema = eg_ymap_get(n, "schema"), *content = eg_ymap_get(n, "content");
    if (schema && content)
        return eg_yerr(doc, content, err, errlen, "parameter '%s' has both schema and content",
                       p->name);
    if (content) {
        p->content = 1;
        eg_openapi_warn(
            oa, doc, content,
            "parameter '%s' is described by content, not schema: its value is not checked%s",
            p->name, p->required ? " (its presence is)" : "");
    }
    if (schema) p->schema = (eg_oa_schema_t){doc, schema};
    return EG_OK;
}

static int same_param(const eg_oa_param_t *a, const eg_oa_param_t *b)
{
    if (a->in != b->in) return 0;
    return a->in == EG_OA_HEADER ? strcasecmp(a->name, b->name) == 0
                                 : strcmp(a->name, b->name) == 0;
}

/* Adds the parameters of list `n` to *ps, replacing one with the same name
 * and location (the operation's win over the path item's). */
static int load_params(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *n,
                       eg_oa_param_t **ps, size_t *np, size_t from, char *err, size_t errlen)
{
    if (!n) return EG_OK;
    if (n->kind != EG_Y_SEQ) return eg_yerr(doc, n, err, errlen, "parameters must be a list");
    for (size_t i = 0; i < n->n; i++) {
        const eg_ydoc_t *d = doc;
        const eg_ynode_t *x = n->items[i];
        int rc = follow(oa, &d, &x, err, errlen), skip = 0;
        if (rc) return rc;
        eg_oa_param_t p;
        if ((rc = load_param(oa, d, x, &p, &skip, err, errlen))) return rc;
        if (skip) continue;
        size_t j = 0;
        while (j < *np && !same_param(&(*ps)[j], &p))
            j++;
        if (j < *np && j >= from)
            return eg_yerr(d, x, err, errlen, "parameter '%s' in %s is declared twice", p.name,
                           in_name(p.in));
        if (j == *np) {
            eg_oa_param_t *q = realloc(*ps, (*np + 1) * sizeof(*q));
            if (!q) return EG_ENOMEM;
            *ps = q;
            (*np)++;
        }
        (*ps)[j] = p;
    }
    return EG_OK;
}

static int load_body(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *n, eg_oa_op_t *op,
                     char *err, size_t errlen)
{
    static const char *const keys[] = {"description", "content", "required", NULL};
    static const char *const mkeys[] = {"schema", "example", "examples", "encoding", NULL};
    int rc = follow(oa, &doc, &n, err, errlen);
    if (rc) return rc;
    if (n->kind != EG_Y_MAP) return eg_yerr(doc, n, err, errlen, "requestBody must be a map");
    warn_unknown(oa, doc, n, "requestBody", keys);
    op->has_body = 1;
    if ((rc = get_bool(doc, n, "required", &op->body_required, err, errlen))) return rc;
    const eg_ynode_t *c = eg_ymap_get(n, "content");
    if (!c || c->kind != EG_Y_MAP || c->n == 0)
        return eg_yerr(doc, c ? c : n, err, errlen,
                       "requestBody needs content: {media type: {schema: ...}}");
    if (!(op->media = calloc(c->n, sizeof(*op->media)))) return EG_ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        const eg_ynode_t *k = c->items[2 * i], *m = c->items[2 * i + 1];
        if (k->kind != EG_Y_SCALAR || !strchr(k->str, '/'))
            return eg_yerr(doc, k, err, errlen, "'%s' is not a media type",
                           scalar(k) ? k->str : "");
        if (m->kind != EG_Y_MAP)
            return eg_yerr(doc, m, err, errlen, "a media type object must be a map");
        warn_unknown(oa, doc, m, "a media type object", mkeys);
        const eg_ynode_t *enc = eg_ymap_get(m, "encoding");
        if (enc)
            eg_openapi_warn(oa, doc, enc, "encoding of '%s' is not checked by the gateway", k->str);
        const eg_ynode_t *s = eg_ymap_get(m, "schema");
        op->media[op->nmedia++] = (eg_oa_media_t){k->str, {doc, s}};
    }
    return EG_OK;
}

/* "/pets/{a}" and "/pets/{b}" are one path to the router: the template
 * with its names dropped. */
static char *shape_of(const char *base, const char *path)
{
    size_t n = strlen(base) + strlen(path) + 1;
    char *s = malloc(n), *o = s;
    if (!s) return NULL;
    for (const char *p = base; *p; p++)
        *o++ = *p;
    for (const char *p = path; *p; p++) {
        *o++ = *p;
        if (*p == '{') {
            while (*p && *p != '}')
                p++;
            *o++ = '}';
        }
    }
    *o = '\0';
    return s;
}

static int add_op(eg_openapi_t *oa, eg_oa_op_t *op, char *err, size_t errlen)
{
    if (oa->nops == EG_OPENAPI_MAX_OPS)
        return eg_yerr(op->doc, op->at, err, errlen, "more than %d operations (the cap)",
                       EG_OPENAPI_MAX_OPS);
    if (oa->nops == oa->capops) {
        size_t nc = oa->capops ? oa->capops * 2 : 16;
        eg_oa_op_t *p = realloc(oa->ops, nc * sizeof(*p));
        if (!p) return EG_ENOMEM;
        oa->ops = p;
        oa->capops = nc;
    }
    oa->ops[oa->nops++] = *op;
    return EG_OK;
}

static void op_free(eg_oa_op_t *op)
{
    free(op->params);
    free(op->media);
}

static int load_op(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *n, eg_oa_op_t *op,
                   const eg_oa_param_t *pparams, size_t npp, const char *base, const char **tnames,
                   const size_t *tlens, size_t ntpl, char *err, size_t errlen)
{
    static const char *const keys[] = {"tags",        "summary",    "description", "externalDocs",
                                       "operationId", "parameters", "requestBody", "responses",
                                       "callbacks",   "deprecated", "security",    "servers",
                                       NULL};
    if (n->kind != EG_Y_MAP) return eg_yerr(doc, n, err, errlen, "an operation must be a map");
    warn_unknown(oa, doc, n, "an operation", keys);
    op->doc = doc;
    op->at = n;
    op->operation_id = scalar(eg_ymap_get(n, "operationId"));
    op->summary = scalar(eg_ymap_get(n, "summary"));
    int rc;
    if ((rc = get_bool(doc, n, "deprecated", &op->deprecated, err, errlen))) return rc;
    const char *obase = NULL;
    if ((rc = servers_base(oa, doc, eg_ymap_get(n, "servers"), &obase, err, errlen))) return rc;
    op->base = obase ? obase : base;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "callbacks")))
        eg_openapi_warn(oa, doc, v,
                        "callbacks are requests the API makes: the gateway does not check them");
    op->security = oa->doc_security;
    if ((v = eg_ymap_get(n, "security"))) op->security = v->kind == EG_Y_SEQ && v->n > 0;
    if (npp) {
        if (!(op->params = malloc(npp * sizeof(*op->params)))) return EG_ENOMEM;
        memcpy(op->params, pparams, npp * sizeof(*op->params));
        op->nparams = npp;
    }
    if ((rc = load_params(oa, doc, eg_ymap_get(n, "parameters"), &op->params, &op->nparams, npp,
                          err, errlen)))
        return rc;
    if ((v = eg_ymap_get(n, "requestBody")) && (rc = load_body(oa, doc, v, op, err, errlen)))
        return rc;
    /* the template's names and the declared path parameters, both ways */
    for (size_t t = 0; t < ntpl; t++) {
        size_t j = 0;
        while (j < op->nparams &&
               !(op->params[j].in == EG_OA_PATH && strlen(op->params[j].name) == tlens[t] &&
                 memcmp(op->params[j].name, tnames[t], tlens[t]) == 0))
            j++;
        if (j == op->nparams)
            eg_openapi_warn(oa, doc, n,
                            "%s %s: path parameter '%.*s' is not declared: any value is accepted",
                            op->method, op->path, (int)tlens[t], tnames[t]);
    }
    for (size_t j = 0; j < op->nparams; j++) {
        if (op->params[j].in != EG_OA_PATH) continue;
        size_t t = 0;
        while (t < ntpl && !(strlen(op->params[j].name) == tlens[t] &&
                             memcmp(op->params[j].name, tnames[t], tlens[t]) == 0))
            t++;
        if (t == ntpl)
            return eg_yerr(op->params[j].doc, op->params[j].at, err, errlen,
                           "path parameter '%s' is not in the path %s", op->params[j].name,
                           op->path);
    }
    return EG_OK;
}

static int load_path_item(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *key,
                          const eg_ynode_t *n, const char *base, char *err, size_t errlen)
{
    static const char *const keys[] = {"$ref", "summary", "description", "servers", "parameters",
                                       "get",  "put",     "post",        "delete",  "options",
                                       "head", "patch",   "trace",       NULL};
    const char *path = key->str;
    const char *tnames[32];
    size_t tlens[32], ntpl = 0;
    if (template_names(path, tnames, tlens, 32, &ntpl) || ntpl > 32)
        return eg_yerr(
            doc, key, err, errlen,
            "path '%s' cannot be routed: it must start with '/' and a {parameter} must be a whole "
            "segment (/users/{id})",
            path);
    int rc = follow(oa, &doc, &n, err, errlen);
    if (rc) return rc;
    if (n->kind != EG_Y_MAP) return eg_yerr(doc, n, err, errlen, "a path item must be a map");
    warn_unknown(oa, doc, n, "a path item", keys);
    const char *pbase = NULL;
    if ((rc = servers_base(oa, doc, eg_ymap_get(n, "servers"), &pbase, err, errlen))) return rc;
    if (pbase) base = pbase;
    eg_oa_param_t *pparams = NULL;
    size_t npp = 0;
    if ((rc = load_params(oa, doc, eg_ymap_get(n, "parameters"), &pparams, &npp, 0, err, errlen)))
        goto out;
    for (size_t m = 0; m < NMETHODS; m++) {
        const eg_ynode_t *o = eg_ymap_get(n, methods[m].name);
        if (!o) continue;
        eg_oa_op_t op;
        memset(&op, 0, sizeof(op));
        op.method = methods[m].name;
        op.method_bit = methods[m].bit;
        op.path = path;
        rc = load_op(oa, doc, o, &op, pparams, npp, base, tnames, tlens, ntpl, err, errlen);
        if (!rc) rc = add_op(oa, &op, err, errlen);
        if (rc) {
            op_free(&op);
            goto out;
        }
    }
out:
    free(pparams);
    return rc;
}

/* Two operations the router cannot tell apart: one method on one path
 * shape ("/pets/{a}" and "/pets/{b}"). */
static int check_unique(eg_openapi_t *oa, char *err, size_t errlen)
{
    char **shapes = calloc(oa->nops ? oa->nops : 1, sizeof(*shapes));
    if (!shapes) return EG_ENOMEM;
    int rc = EG_OK;
    for (size_t i = 0; i < oa->nops && !rc; i++) {
        if (!(shapes[i] = shape_of(oa->ops[i].base, oa->ops[i].path))) {
            rc = EG_ENOMEM;
            break;
        }
        for (size_t j = 0; j < i; j++)
            if (oa->ops[j].method_bit == oa->ops[i].method_bit &&
                strcmp(shapes[i], shapes[j]) == 0) {
                rc = eg_yerr(oa->ops[i].doc, oa->ops[i].at, err, errlen,
                             "%s %s%s is the same route as %s%s (line %d): the router cannot tell "
                             "them apart",
                             oa->ops[i].method, oa->ops[i].base, oa->ops[i].path, oa->ops[j].base,
                             oa->ops[j].path, oa->ops[j].at->line);
                break;
            }
    }
    for (size_t i = 0; i < oa->nops; i++)
        free(shapes[i]);
    free(shapes);
    return rc;
}

static int load_root(eg_openapi_t *oa, const eg_ydoc_t *doc, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "openapi",      "info",     "servers",           "paths", "components", "security", "tags",
        "externalDocs", "webhooks", "jsonSchemaDialect", NULL};
    const eg_ynode_t *root = eg_ydoc_root(doc);
    if (!root || root->kind != EG_Y_MAP)
        return eg_yerr(doc, root, err, errlen,
                       "not an OpenAPI document: expected a map with openapi: 3.x");
    const eg_ynode_t *v = eg_ymap_get(root, "openapi");
    if (!v) {
        const eg_ynode_t *sw = eg_ymap_get(root, "swagger");
        if (sw)
            return eg_yerr(doc, sw, err, errlen,
                           "a Swagger %s document: errgate reads OpenAPI 3.0 and 3.1 (convert it "
                           "first, e.g. with "
                           "swagger2openapi)",
                           scalar(sw) ? sw->str : "2.0");
        return eg_yerr(doc, root, err, errlen,
                       "not an OpenAPI document: no 'openapi' field (3.0.x or 3.1.x)");
    }
    const char *ver = scalar(v);
    if (ver && strncmp(ver, "3.0", 3) == 0 && (ver[3] == '\0' || ver[3] == '.'))
        oa->v30 = 1;
    else if (!(ver && strncmp(ver, "3.1", 3) == 0 && (ver[3] == '\0' || ver[3] == '.')))
        return eg_yerr(doc, v, err, errlen,
                       "unsupported OpenAPI version '%s' (errgate reads 3.0.x and 3.1.x)",
                       ver ? ver : "");
    snprintf(oa->version, sizeof(oa->version), "%s", ver);
    warn_unknown(oa, doc, root, "the document", keys);
    oa->title = scalar(eg_ymap_get(eg_ymap_get(root, "info"), "title"));
    if ((v = eg_ymap_get(root, "webhooks")))
        eg_openapi_warn(oa, doc, v,
                        "webhooks are requests the API makes: they are not routes of the gateway");
    if ((v = eg_ymap_get(root, "jsonSchemaDialect")) && scalar(v) &&
        strcmp(v->str, "https://spec.openapis.org/oas/3.1/dialect/base") != 0 &&
        strcmp(v->str, "https://json-schema.org/draft/2020-12/schema") != 0)
        eg_openapi_warn(oa, doc, v, "jsonSchemaDialect '%s': schemas are read as draft 2020-12",
                        v->str);
    if ((v = eg_ymap_get(root, "security"))) oa->doc_security = v->kind == EG_Y_SEQ && v->n > 0;
    const char *base = NULL;
    int rc = servers_base(oa, doc, eg_ymap_get(root, "servers"), &base, err, errlen);
    if (rc) return rc;
    if (!base) base = "";
    const eg_ynode_t *paths = eg_ymap_get(root, "paths");
    if (!paths) {
        if (!oa->v30) return EG_OK; /* 3.1: a document of components or webhooks only */
        return eg_yerr(doc, root, err, errlen, "an OpenAPI 3.0 document needs paths:");
    }
    if (paths->kind != EG_Y_MAP) return eg_yerr(doc, paths, err, errlen, "paths must be a map");
    for (size_t i = 0; i < paths->n; i++) {
        const eg_ynode_t *k = paths->items[2 * i];
        if (k->kind == EG_Y_SCALAR && strncmp(k->str, "x-", 2) == 0) continue;
        if ((rc = load_path_item(oa, doc, k, paths->items[2 * i + 1], base, err, errlen)))
            return rc;
    }
    return check_unique(oa, err, errlen);
}

int eg_openapi_parse(const char *text, size_t len, const char *name, eg_openapi_t **out, char *err,
                     size_t errlen)
{
    if (errlen) err[0] = '\0';
    eg_openapi_t *oa = calloc(1, sizeof(*oa));
    if (!oa) return EG_ENOMEM;
    int rc = EG_OK;
    if (len > EG_OPENAPI_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than %u MiB (the cap on an OpenAPI file)", name,
                 EG_OPENAPI_MAX_BYTES >> 20);
        rc = EG_ETOOBIG;
        goto fail;
    }
    /* the directory as it really is, or as named when it does not exist
     * (no sibling then resolves under it) */
    const char *slash = strrchr(name, '/');
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - name) : 1, slash ? name : ".");
    if (!realpath(dir[0] ? dir : "/", real)) snprintf(real, sizeof(real), "%s", dir);
    size_t dl = strlen(real);
    if (!(oa->rootdir = malloc(dl + 2))) {
        rc = EG_ENOMEM;
        goto fail;
    }
    memcpy(oa->rootdir, real, dl);
    if (!dl || real[dl - 1] != '/') oa->rootdir[dl++] = '/';
    oa->rootdir[dl] = '\0';
    const eg_ydoc_t *doc = NULL;
    if ((rc = add_text(oa, text, len, name, name, &doc, err, errlen))) goto fail;
    if ((rc = load_root(oa, doc, err, errlen))) goto fail;
    *out = oa;
    return EG_OK;
fail:
    eg_openapi_free(oa);
    return rc;
}

int eg_openapi_load(const char *path, eg_openapi_t **out, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    eg_openapi_t *oa = calloc(1, sizeof(*oa));
    if (!oa) return EG_ENOMEM;
    char real[PATH_MAX];
    int rc;
    if (!realpath(path, real)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = EG_EIO;
        goto fail;
    }
    char *slash = strrchr(real, '/');
    size_t dl = slash ? (size_t)(slash - real) + 1 : 0;
    if (!(oa->rootdir = malloc(dl + 1))) {
        rc = EG_ENOMEM;
        goto fail;
    }
    memcpy(oa->rootdir, real, dl);
    oa->rootdir[dl] = '\0';
    const eg_ydoc_t *doc = NULL;
    if ((rc = load_file(oa, path, real, &doc, err, errlen))) goto fail;
    if ((rc = load_root(oa, doc, err, errlen))) goto fail;
    *out = oa;
    return EG_OK;
fail:
    eg_openapi_free(oa);
    return rc;
}

void eg_openapi_free(eg_openapi_t *oa)
{
    if (!oa) return;
    for (size_t i = 0; i < oa->nops; i++)
        op_free(&oa->ops[i]);
    free(oa->ops);
    for (size_t i = 0; i < oa->nfiles; i++) {
        free(oa->files[i].real);
        eg_ydoc_free(oa->files[i].doc);
    }
    for (size_t i = 0; i < oa->nwarn; i++)
        free(oa->warnings[i]);
    free(oa->warnings);
    for (size_t i = 0; i < oa->nstrs; i++)
        free(oa->strs[i]);
    free(oa->strs);
    free(oa->rootdir);
    free(oa);
}

const char *eg_openapi_version(const eg_openapi_t *oa)
{
    return oa->version;
}

int eg_openapi_is30(const eg_openapi_t *oa)
{
    return oa->v30;
}

const char *eg_openapi_title(const eg_openapi_t *oa)
{
    return oa->title ? oa->title : "";
}

size_t eg_openapi_nops(const eg_openapi_t *oa)
{
    return oa->nops;
}

const eg_oa_op_t *eg_openapi_op(const eg_openapi_t *oa, size_t i)
{
    return i < oa->nops ? &oa->ops[i] : NULL;
}

size_t eg_openapi_nwarnings(const eg_openapi_t *oa)
{
    return oa->nwarn + (oa->dropped ? 1 : 0);
}

const char *eg_openapi_warning(const eg_openapi_t *oa, size_t i)
{
    static const char more[] = "(more warnings not shown)";
    if (i < oa->nwarn) return oa->warnings[i];
    return i == oa->nwarn && oa->dropped ? more : NULL;
}

/* ------------------------------------------------------------ rule sets */

static int push_rule(eg_validation_t *v, eg_param_rule_t *r)
{
    eg_param_rule_t *p = realloc(v->params.rules, (v->params.n + 1) * sizeof(*p));
    if (!p) {
        eg_param_rule_free(r);
        return EG_ENOMEM;
    }
    v->params.rules = p;
    p[v->params.n++] = *r;
    return EG_OK;
}

static int in_list(const eg_ynode_t *req, const char *name)
{
    for (size_t i = 0; req && req->kind == EG_Y_SEQ && i < req->n; i++)
        if (req->items[i]->kind == EG_Y_SCALAR && strcmp(req->items[i]->str, name) == 0) return 1;
    return 0;
}

/* The fields of a form body's object schema, through $ref and allOf: a
 * rule each (a later declaration of a name makes it required if either
 * does, and its schema is the first one's). */
static int form_fields(eg_openapi_t *oa, eg_validation_t *v, const eg_ydoc_t *doc,
                       const eg_ynode_t *n, const eg_schema_opts_t *so, int depth, char *err,
                       size_t errlen)
{
    int rc = follow(oa, &doc, &n, err, errlen);
    if (rc) return rc;
    if (depth > EG_OPENAPI_MAX_REF_DEPTH)
        return eg_yerr(doc, n, err, errlen, "allOf nested deeper than %d",
                       EG_OPENAPI_MAX_REF_DEPTH);
    const eg_ynode_t *all = eg_ymap_get(n, "allOf");
    for (size_t i = 0; all && all->kind == EG_Y_SEQ && i < all->n; i++)
        if ((rc = form_fields(oa, v, doc, all->items[i], so, depth + 1, err, errlen))) return rc;
    const eg_ynode_t *props = eg_ymap_get(n, "properties"), *req = eg_ymap_get(n, "required");
    for (size_t i = 0; props && props->kind == EG_Y_MAP && i < props->n; i++) {
        const eg_ynode_t *k = props->items[2 * i];
        size_t j = 0;
        while (j < v->params.n && !(v->params.rules[j].in == EG_PIN_FORM &&
                                    strcmp(v->params.rules[j].name, k->str) == 0))
            j++;
        if (j < v->params.n) {
            v->params.rules[j].required |= in_list(req, k->str);
            continue;
        }
        eg_param_rule_t r;
        if ((rc = eg_param_rule_init(&r, k->str, k->len, EG_PIN_FORM))) return rc;
        r.required = in_list(req, k->str);
        if ((rc = eg_param_rule_set_schema(&r, doc, props->items[2 * i + 1], so, err, errlen))) {
            eg_param_rule_free(&r);
            return rc;
        }
        if ((rc = push_rule(v, &r))) return rc;
        v->has_form = 1;
    }
    /* a required name without a property of its own is still required */
    for (size_t i = 0; req && req->kind == EG_Y_SEQ && i < req->n; i++) {
        const eg_ynode_t *x = req->items[i];
        if (x->kind != EG_Y_SCALAR) continue;
        size_t j = 0;
        while (j < v->params.n && !(v->params.rules[j].in == EG_PIN_FORM &&
                                    strcmp(v->params.rules[j].name, x->str) == 0))
            j++;
        if (j < v->params.n) {
            v->params.rules[j].required = 1;
            continue;
        }
        eg_param_rule_t r;
        if ((rc = eg_param_rule_init(&r, x->str, x->len, EG_PIN_FORM))) return rc;
        r.required = 1;
        if ((rc = push_rule(v, &r))) return rc;
        v->has_form = 1;
    }
    return EG_OK;
}

static int body_rules(eg_openapi_t *oa, const eg_oa_op_t *op, eg_validation_t *v,
                      const eg_schema_opts_t *so, char *err, size_t errlen)
{
    int rc;
    v->body_required = op->body_required;
    if (!(v->content_types = calloc(op->nmedia, sizeof(char *)))) return EG_ENOMEM;
    const eg_oa_media_t *json = NULL;
    for (size_t i = 0; i < op->nmedia; i++) {
        const eg_oa_media_t *m = &op->media[i];
        /* "application/json; charset=utf-8" is application/json to the stage */
        const char *bare;
        size_t tl;
        eg_media_type_of(m->type, strlen(m->type), &bare, &tl);
        if (!(v->content_types[i] = strndup(bare, tl))) return EG_ENOMEM;
        v->ncontent_types++;
        const eg_ynode_t *at = m->schema.node ? m->schema.node : op->at;
        if (eg_media_type_is_json(bare, tl)) {
            if (!m->schema.node) continue;
            if (!json) {
                json = m;
                if ((rc = eg_schema_compile(m->schema.doc, m->schema.node, so, &v->body, err,
                                            errlen)))
                    return rc;
            } else if (json->schema.node != m->schema.node) {
                eg_openapi_warn(
                    oa, m->schema.doc, at,
                    "%s %s: the schema of '%s' is not checked: JSON bodies are checked against the "
                    "first JSON type's schema ('%s')",
                    op->method, op->path, m->type, json->type);
            }
        } else if (tl == 33 && strncasecmp(bare, "application/x-www-form-urlencoded", tl) == 0) {
            if (m->schema.node &&
                (rc = form_fields(oa, v, m->schema.doc, m->schema.node, so, 0, err, errlen)))
                return rc;
        } else if (m->schema.node) {
            eg_openapi_warn(oa, m->schema.doc, at,
                            "%s %s: the schema of '%s' is not checked (only JSON and form bodies "
                            "are): its media "
                            "type is",
                            op->method, op->path, m->type);
        }
    }
    return EG_OK;
}

int eg_openapi_validation(eg_openapi_t *oa, const eg_oa_op_t *op, uint64_t max_body, int status,
                          struct eg_validation_s **out, char *err, size_t errlen)
{
    eg_validation_t *v = calloc(1, sizeof(*v));
    if (!v) return EG_ENOMEM;
    v->max_body = max_body;
    v->status = status;
    v->json_details = EG_VJ_ALL;
    eg_schema_opts_t so;
    eg_openapi_schema_opts(oa, &so);
    int rc = EG_OK;
    for (size_t i = 0; !rc && i < op->nparams; i++) {
        const eg_oa_param_t *p = &op->params[i];
        eg_param_in_t in = p->in == EG_OA_PATH     ? EG_PIN_PATH
                           : p->in == EG_OA_HEADER ? EG_PIN_HEADER
                                                   : EG_PIN_QUERY;
        eg_param_rule_t r;
        if ((rc = eg_param_rule_init(&r, p->name, strlen(p->name), in))) break;
        r.style = p->style;
        r.explode = p->explode;
        r.required = p->required;
        if (p->schema.node &&
            (rc = eg_param_rule_set_schema(&r, p->schema.doc, p->schema.node, &so, err, errlen))) {
            eg_param_rule_free(&r);
            break;
        }
        rc = push_rule(v, &r);
    }
    if (!rc && op->has_body) rc = body_rules(oa, op, v, &so, err, errlen);
    if (rc) {
        eg_validation_free(v);
        return rc;
    }
    *out = v;
    return EG_OK;
}

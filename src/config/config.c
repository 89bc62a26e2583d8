/* config.c - loading and validating the gateway configuration (see config.h).
 *
 * The YAML tree keeps positions, so every check can say where the problem
 * is. Each section has a small function that knows its keys; unknown keys
 * are errors, because a misspelt "timeout" silently ignored is an outage.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "errgate/apikey.h"
#include "errgate/balance.h"
#include "errgate/units.h"
#include "openapi.h"
#include "ptrie.h"
#include "params.h"
#include "pg_copy.h"
#include "schema.h"
#include "ytree.h"

typedef struct {
    const eg_ydoc_t *doc;
    char *err; /* the problem at hand: every check writes its message here */
    size_t errlen;
    char *dir; /* directory of the config file, for relative paths */
    char *report; /* the caller's buffer: every problem found, one a line */
    size_t reportlen, used;
    int nproblems, shown, first_rc;
} cctx_t;

#define ERR(c, node, ...) eg_yerr((c)->doc, (node), (c)->err, (c)->errlen, __VA_ARGS__)

/* Loading goes on past a bad value so that one run of check-config shows
 * every problem, one per top-level section, upstream and route (the first
 * in each: what follows a bad value in the same block is often its echo).
 * Returns 0 to go on after adding c->err to the report, or rc itself when
 * nothing sensible can follow (out of memory). */
static int problem(cctx_t *c, int rc)
{
    if (rc == EG_OK) return EG_OK;
    if (rc == EG_ENOMEM) return rc;
    if (!c->first_rc) c->first_rc = rc;
    c->nproblems++;
    if (!c->err[0]) snprintf(c->err, c->errlen, "%s", eg_strerror(rc));
    size_t n = strlen(c->err);
    /* a line that does not fit whole, with room left for the count of the
     * hidden ones, is counted, not cut */
    if (c->shown < EG_CONFIG_MAX_PROBLEMS && c->used + n + 2 + 48 <= c->reportlen) {
        if (c->used) c->report[c->used++] = '\n';
        memcpy(c->report + c->used, c->err, n + 1);
        c->used += n;
        c->shown++;
    }
    c->err[0] = '\0';
    return EG_OK;
}

/* Checks that every key of map `n` is in the NULL-terminated list `keys`. */
static int known_keys(cctx_t *c, const eg_ynode_t *n, const char *what, const char *const *keys)
{
    if (!n || n->kind != EG_Y_MAP) return ERR(c, n, "%s must be a map", what);
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *k = n->items[2 * i];
        int ok = 0;
        for (const char *const *p = keys; *p; p++)
            if (strcmp(*p, k->str) == 0) ok = 1;
        if (!ok) {
            char list[512] = "";
            for (const char *const *p = keys; *p; p++) {
                if (*list) strncat(list, ", ", sizeof(list) - strlen(list) - 1);
                strncat(list, *p, sizeof(list) - strlen(list) - 1);
            }
            return ERR(c, k, "unknown key '%s' in %s (expected one of: %s)", k->str, what, list);
        }
    }
    return EG_OK;
}

static int get_str(cctx_t *c, const eg_ynode_t *n, char **out)
{
    if (!n || n->kind != EG_Y_SCALAR || n->len == 0) return ERR(c, n, "expected a non-empty string");
    free(*out);
    return (*out = strdup(n->str)) ? EG_OK : EG_ENOMEM;
}

static int get_bool(cctx_t *c, const eg_ynode_t *n, int *out)
{
    return eg_yscalar_bool(c->doc, n, out, c->err, c->errlen);
}

static int get_duration(cctx_t *c, const eg_ynode_t *n, uint64_t *out)
{
    if (!n || n->kind != EG_Y_SCALAR || eg_parse_duration_ms(n->str, out) != EG_OK)
        return ERR(c, n, "invalid duration '%s' (use e.g. 500ms, 2s, 1m, 1h)",
                   n && n->kind == EG_Y_SCALAR ? n->str : "");
    return EG_OK;
}

static int get_size(cctx_t *c, const eg_ynode_t *n, uint64_t *out)
{
    if (!n || n->kind != EG_Y_SCALAR || eg_parse_size(n->str, out) != EG_OK)
        return ERR(c, n, "invalid size '%s' (use e.g. 1024, 16KiB, 1MiB)",
                   n && n->kind == EG_Y_SCALAR ? n->str : "");
    return EG_OK;
}

static int get_int(cctx_t *c, const eg_ynode_t *n, long long min, long long max, int *out)
{
    long long v;
    int rc = eg_yscalar_int(c->doc, n, min, max, &v, c->err, c->errlen);
    if (!rc) *out = (int)v;
    return rc;
}

int eg_hostport_parse(const char *s, eg_hostport_t *out)
{
    const char *colon;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s))) return -1;
        hl = (size_t)(colon - s);
    }
    if (hl >= sizeof(out->host)) return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p < 1 || p > 65535) return -1;
    if (hl == 0) strcpy(out->host, "0.0.0.0");
    else {
        memcpy(out->host, h, hl);
        out->host[hl] = '\0';
    }
    out->port = (int)p;
    snprintf(out->addr, sizeof(out->addr), strchr(out->host, ':') ? "[%s]:%d" : "%s:%d", out->host,
             out->port);
    return 0;
}

static int get_hostport(cctx_t *c, const eg_ynode_t *n, eg_hostport_t *out)
{
    if (!n || n->kind != EG_Y_SCALAR || eg_hostport_parse(n->str, out) != 0)
        return ERR(c, n, "invalid address '%s' (use host:port, [v6]:port or :port)",
                   n && n->kind == EG_Y_SCALAR ? n->str : "");
    return EG_OK;
}

/* A path relative to the config file's directory. */
static int get_path(cctx_t *c, const eg_ynode_t *n, char **out)
{
    char *p = NULL;
    int rc = get_str(c, n, &p);
    if (rc) return rc;
    if (p[0] != '/' && c->dir) {
        size_t len = strlen(c->dir) + strlen(p) + 2;
        char *abs = malloc(len);
        if (!abs) {
            free(p);
            return EG_ENOMEM;
        }
        snprintf(abs, len, "%s/%s", c->dir, p);
        free(p);
        p = abs;
    }
    *out = p;
    return EG_OK;
}

/* One `precise: coarse` pair of errors.code_map for dialect d (every
 * dialect when d is NULL); `keep` removes a dialect's default. */
static int code_map_pair(cctx_t *c, const eg_ynode_t *k, const eg_ynode_t *v, eg_config_t *cfg, eg_dialect_t *d)
{
    for (const char *p = k->str; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return ERR(c, k, "code_map: '%s' is not a snake_case code", k->str);
    if (v->kind != EG_Y_SCALAR || !v->len) return ERR(c, v, "code_map: %s: needs a code (or keep)", k->str);
    const char *to = strcmp(v->str, "keep") == 0 ? NULL : v->str;
    if (to && !eg_catalog_find(cfg->catalog, to))
        return ERR(c, v, "code_map: '%s' is not a code of the catalog", to);
    for (size_t i = 0; i < eg_dialects_count(cfg->dialects); i++) {
        eg_dialect_t *x = d ? d : eg_dialects_get_mut(cfg->dialects, eg_dialect_name(eg_dialects_at(cfg->dialects, i)));
        if (eg_dialect_map_code(x, k->str, to) != EG_OK) return EG_ENOMEM;
        if (d) break;
    }
    return EG_OK;
}

/* errors.code_map: {precise: coarse} for every dialect, {dialect: {...}}
 * for one; per-dialect maps apply after the shared pairs. */
static int load_code_map(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    int rc;
    if (n->kind != EG_Y_MAP) return ERR(c, n, "code_map must be a map of code: code, or dialect: {code: code}");
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n->n; i++) {
            const eg_ynode_t *k = n->items[2 * i], *v = n->items[2 * i + 1];
            if ((v->kind == EG_Y_MAP) != pass) continue;
            if (!pass) {
                if ((rc = code_map_pair(c, k, v, cfg, NULL))) return rc;
                continue;
            }
            eg_dialect_t *d = eg_dialects_get_mut(cfg->dialects, k->str);
            if (!d) return ERR(c, k, "code_map: unknown dialect '%s'", k->str);
            for (size_t j = 0; j < v->n; j++)
                if ((rc = code_map_pair(c, v->items[2 * j], v->items[2 * j + 1], cfg, d))) return rc;
        }
    }
    return EG_OK;
}

/* errors.codes: {exclude: [...]} leaves codes out of the published
 * catalog (`errgate docs`), {include: [...]} lists only those; they stay
 * known to the gateway either way. */
static int load_listed_codes(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"include", "exclude", NULL};
    int rc;
    if ((rc = known_keys(c, n, "codes", keys))) return rc;
    const eg_ynode_t *inc = eg_ymap_get(n, "include"), *exc = eg_ymap_get(n, "exclude");
    if (inc && exc) return ERR(c, exc, "codes: give include or exclude, not both");
    const eg_ynode_t *list = inc ? inc : exc;
    if (!list) return EG_OK;
    if (list->kind != EG_Y_SEQ) return ERR(c, list, "codes: %s must be a list of codes", inc ? "include" : "exclude");
    if (inc)
        for (size_t i = 0; i < eg_catalog_count(cfg->catalog); i++)
            eg_catalog_set_listed(cfg->catalog, eg_catalog_at(cfg->catalog, i)->code, 0);
    for (size_t i = 0; i < list->n; i++) {
        const eg_ynode_t *x = list->items[i];
        if (x->kind != EG_Y_SCALAR || eg_catalog_set_listed(cfg->catalog, x->str, inc != NULL) != EG_OK)
            return ERR(c, x, "codes: '%s' is not a code of the catalog", x->kind == EG_Y_SCALAR ? x->str : "");
    }
    return EG_OK;
}

static int load_errors(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"dialect", "negotiate", "expose_internal", "docs_url",
                                       "catalog", "dialects", "max_translate_body", "code_map", "codes", NULL};
    int rc;
    if (n && (rc = known_keys(c, n, "errors", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "negotiate")) && (rc = get_bool(c, v, &cfg->negotiate))) return rc;
    if ((v = eg_ymap_get(n, "expose_internal")) && (rc = get_bool(c, v, &cfg->expose_internal)))
        return rc;
    if ((v = eg_ymap_get(n, "max_translate_body"))) {
        if ((rc = get_size(c, v, &cfg->max_translate_body))) return rc;
        if (cfg->max_translate_body > (16u << 20))
            return ERR(c, v, "max_translate_body must be at most 16MiB");
    }
    if ((v = eg_ymap_get(n, "catalog"))) {
        char *path = NULL;
        if ((rc = get_path(c, v, &path))) return rc;
        rc = eg_catalog_load_file(cfg->catalog, path, c->err, c->errlen);
        free(path);
        if (rc) return rc;
    }
    if ((v = eg_ymap_get(n, "docs_url"))) {
        /* without {code}, one page: each code is its anchor (url#code) */
        if (v->kind != EG_Y_SCALAR || !v->len)
            return ERR(c, v, "docs_url must be a URL (a page, or a template containing {code})");
        if ((rc = eg_catalog_set_docs_template(cfg->catalog, v->str))) return rc;
    }
    if ((v = eg_ymap_get(n, "dialects"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "dialects must be a list of files");
        for (size_t i = 0; i < v->n; i++) {
            char *path = NULL;
            eg_dialect_t *d = NULL;
            if ((rc = get_path(c, v->items[i], &path))) return rc;
            rc = eg_dialect_load_file(path, &d, c->err, c->errlen);
            free(path);
            if (rc) return rc;
            if ((rc = eg_dialects_add(cfg->dialects, d))) {
                eg_dialect_free(d);
                return rc;
            }
        }
    }
    if ((v = eg_ymap_get(n, "code_map")) && (rc = load_code_map(c, v, cfg))) return rc;
    if ((v = eg_ymap_get(n, "codes")) && (rc = load_listed_codes(c, v, cfg))) return rc;
    const char *name = "problem";
    if ((v = eg_ymap_get(n, "dialect"))) {
        if (v->kind != EG_Y_SCALAR) return ERR(c, v, "dialect must be a name");
        name = v->str;
    }
    if (!(cfg->dialect = eg_dialects_get(cfg->dialects, name)))
        return ERR(c, v, "unknown dialect '%s' (problem, jsonapi, envelope, typed, flat-camel, "
                         "flat-snake, or one declared under errors.dialects)", name);
    return EG_OK;
}

static int load_limits(cctx_t *c, const eg_ynode_t *n, eg_limits_t *l)
{
    static const char *const keys[] = {"header_timeout", "body_timeout", "idle_timeout",
                                       "write_timeout", "max_header_size", "max_headers",
                                       "max_uri", "max_body_size", "max_connections", NULL};
    int rc;
    if ((rc = known_keys(c, n, "limits", keys))) return rc;
    const eg_ynode_t *v;
    struct {
        const char *k;
        uint64_t *dst;
        int size;
    } f[] = {{"header_timeout", &l->header_timeout_ms, 0}, {"body_timeout", &l->body_timeout_ms, 0},
             {"idle_timeout", &l->idle_timeout_ms, 0},     {"write_timeout", &l->write_timeout_ms, 0},
             {"max_header_size", &l->max_header_size, 1},  {"max_uri", &l->max_uri, 1},
             {"max_body_size", &l->max_body_size, 1}};
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!(v = eg_ymap_get(n, f[i].k))) continue;
        if ((rc = f[i].size ? get_size(c, v, f[i].dst) : get_duration(c, v, f[i].dst))) return rc;
        if (*f[i].dst == 0) return ERR(c, v, "%s must be greater than zero", f[i].k);
    }
    int iv;
    if ((v = eg_ymap_get(n, "max_headers"))) {
        if ((rc = get_int(c, v, 1, 1000, &iv))) return rc;
        l->max_headers = (uint64_t)iv;
    }
    if ((v = eg_ymap_get(n, "max_connections"))) {
        if ((rc = get_int(c, v, 1, 1000000, &iv))) return rc;
        l->max_connections = (uint64_t)iv;
    }
    if (l->max_header_size < 256 || l->max_header_size > (1u << 20))
        return ERR(c, eg_ymap_get(n, "max_header_size"), "max_header_size must be 256..1MiB");
    if (l->max_uri >= l->max_header_size)
        return ERR(c, eg_ymap_get(n, "max_uri"), "max_uri must be smaller than max_header_size");
    return EG_OK;
}

static int ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return 0;
}

/* Request headers a log line may carry: never one that holds a secret.
 * Refused by name at load, not redacted later, so a misconfiguration is
 * seen at once (docs/operations.md). */
static int secret_header(const eg_config_t *cfg, const char *name)
{
    static const char *const exact[] = {"authorization", "proxy-authorization", "cookie",
                                        "set-cookie",    "x-api-key",           "api-key",
                                        "x-auth-token",  "x-csrf-token",        "x-xsrf-token",
                                        NULL};
    static const char *const parts[] = {"secret", "token", "password", "passwd", "key",
                                        "auth",   "session", "credential", "signature", NULL};
    for (size_t i = 0; exact[i]; i++)
        if (strcasecmp(name, exact[i]) == 0) return 1;
    if (cfg->key_header && strcasecmp(name, cfg->key_header) == 0) return 1;
    for (size_t i = 0; parts[i]; i++)
        if (ci_contains(name, parts[i])) return 1;
    return 0;
}

static int load_log_headers(cctx_t *c, const eg_ynode_t *v, eg_config_t *cfg)
{
    int rc;
    if (v->kind != EG_Y_SEQ) return ERR(c, v, "request_headers must be a list of header names");
    if (v->n > 16) return ERR(c, v, "request_headers: at most 16 headers");
    if (!(cfg->log_headers = calloc(v->n + 1, sizeof(char *)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *x = v->items[i];
        if (x->kind != EG_Y_SCALAR || !x->len || x->len > 64)
            return ERR(c, x, "request_headers: a header name of 1..64 characters");
        for (size_t k = 0; k < x->len; k++) {
            char ch = x->str[k];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '-' || ch == '_'))
                return ERR(c, x, "request_headers: '%s' is not a header name", x->str);
        }
        if (secret_header(cfg, x->str))
            return ERR(c, x,
                       "request_headers: '%s' may carry a secret (credentials, cookies, tokens, "
                       "keys) and is never logged",
                       x->str);
        if ((rc = get_str(c, x, &cfg->log_headers[i]))) return rc;
        cfg->nlog_headers++;
    }
    return EG_OK;
}

/* metrics: { enabled: true, buckets: [0.005, ...] } (docs/metrics.md) */
static int load_metrics(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"enabled", "buckets", NULL};
    int rc;
    if ((rc = known_keys(c, n, "metrics", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "enabled")) && (rc = get_bool(c, v, &cfg->metrics_enabled))) return rc;
    if ((v = eg_ymap_get(n, "buckets"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0 || v->n > 32)
            return ERR(c, v, "buckets must be a list of 1..32 bounds in seconds");
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            char *end = NULL;
            double d = x->kind == EG_Y_SCALAR ? strtod(x->str, &end) : -1;
            if (x->kind != EG_Y_SCALAR || end == x->str || *end || !(d > 0) || d > 86400)
                return ERR(c, x, "a bucket is a number of seconds, 0 < bound <= 86400");
            if (i && d <= cfg->metrics_buckets[i - 1])
                return ERR(c, x, "buckets must be in ascending order");
            cfg->metrics_buckets[i] = d;
        }
        cfg->nmetrics_buckets = v->n;
    }
    return EG_OK;
}

static int load_log(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"access", "errors", "redact_query", "request_headers", NULL};
    int rc;
    if ((rc = known_keys(c, n, "log", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "access")) && (rc = get_str(c, v, &cfg->access_log))) return rc;
    if ((v = eg_ymap_get(n, "errors")) && (rc = get_str(c, v, &cfg->error_log))) return rc;
    if ((v = eg_ymap_get(n, "redact_query"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "redact_query must be a list of parameter names");
        for (size_t i = 0; i < cfg->nredact; i++) free(cfg->redact_query[i]);
        free(cfg->redact_query);
        cfg->nredact = 0;
        if (!(cfg->redact_query = calloc(v->n + 1, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            if ((rc = get_str(c, v->items[i], &cfg->redact_query[i]))) return rc;
            cfg->nredact++;
        }
    }
    if ((v = eg_ymap_get(n, "request_headers")) && (rc = load_log_headers(c, v, cfg))) return rc;
    return EG_OK;
}

/* How the request path is made canonical before routing (docs/path.md):
 * every switch on by default, as Envoy recommends for a gateway in front of
 * access control. */
static int load_path(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"normalize", "merge_slashes", "reject_encoded_slash", NULL};
    int rc;
    if ((rc = known_keys(c, n, "path", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "normalize")) && (rc = get_bool(c, v, &cfg->path_normalize))) return rc;
    if ((v = eg_ymap_get(n, "merge_slashes")) && (rc = get_bool(c, v, &cfg->path_merge_slashes))) return rc;
    if ((v = eg_ymap_get(n, "reject_encoded_slash")) && (rc = get_bool(c, v, &cfg->path_reject_encoded_slash)))
        return rc;
    return EG_OK;
}

/* What of a request reaches the upstream beyond what routing needs. */
static int load_request(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"underscores_in_headers", "buffer_body", "forward_trailers", NULL};
    /* fields whose meaning the gateway sets or strips: never from a trailer */
    static const char *const controlled[] = {
        "content-length", "transfer-encoding", "host",       "trailer",       "te",
        "connection",     "keep-alive",        "upgrade",    "authorization", "x-consumer-id",
        "x-key-id",       "x-scopes",          "forwarded",  "x-forwarded-for", "x-forwarded-proto",
        "x-request-id",   "traceparent",       "expect",     "cookie",        NULL};
    int rc;
    if ((rc = known_keys(c, n, "request", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "underscores_in_headers")) && (rc = get_bool(c, v, &cfg->underscores_in_headers)))
        return rc;
    if ((v = eg_ymap_get(n, "buffer_body"))) {
        if ((rc = get_size(c, v, &cfg->buffer_body))) return rc;
        if (cfg->buffer_body > EG_BUFFER_BODY_MAX) return ERR(c, v, "buffer_body must be 0..64KiB");
    }
    if ((v = eg_ymap_get(n, "forward_trailers"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "forward_trailers must be a list of field names");
        if (!(cfg->forward_trailers = calloc(v->n + 1, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            if ((rc = get_str(c, x, &cfg->forward_trailers[i]))) return rc;
            cfg->nforward_trailers++;
            const char *name = cfg->forward_trailers[i];
            int ok = name[0] != '\0';
            for (const char *p = name; *p && ok; p++)
                ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-';
            if (!ok) return ERR(c, x, "forward_trailers: '%s' is not a field name (letters, digits, '-')", name);
            for (const char *const *k = controlled; *k; k++)
                if (strcasecmp(name, *k) == 0 || strncasecmp(name, "proxy-", 6) == 0 ||
                    strcasecmp(name, cfg->key_header) == 0)
                    return ERR(c, x, "forward_trailers: '%s' is a field the gateway controls; it is never forwarded "
                                     "from a trailer", name);
        }
    }
    return EG_OK;
}

/* openapi: FILE or {file: FILE, unknown: reject | pass}: the document,
 * loaded once per file for the whole configuration (cfg->openapis). */
static int load_openapi(cctx_t *c, const eg_ynode_t *v, eg_config_t *cfg, eg_openapi_t **out,
                        eg_openapi_use_t *use)
{
    static const char *const keys[] = {"file", "unknown", "max_body", "status", NULL};
    const eg_ynode_t *file = v;
    int rc;
    use->pass = 0;
    use->max_body = 1024 * 1024;
    use->status = 0;
    if (v->kind == EG_Y_MAP) {
        if ((rc = known_keys(c, v, "openapi", keys))) return rc;
        if (!(file = eg_ymap_get(v, "file"))) return ERR(c, v, "openapi needs file: FILE");
        const eg_ynode_t *u = eg_ymap_get(v, "unknown");
        if (u) {
            if (u->kind == EG_Y_SCALAR && strcmp(u->str, "reject") == 0) use->pass = 0;
            else if (u->kind == EG_Y_SCALAR && strcmp(u->str, "pass") == 0) use->pass = 1;
            else return ERR(c, u, "unknown must be reject (404/405 for what the document does not declare) or pass");
        }
        if ((u = eg_ymap_get(v, "max_body"))) {
            if ((rc = get_size(c, u, &use->max_body))) return rc;
            if (use->max_body > EG_STAGE_BODY_MAX)
                return ERR(c, u, "max_body must be at most 16MiB: the body is held in memory while it is checked");
        }
        if ((u = eg_ymap_get(v, "status"))) {
            if ((rc = get_int(c, u, 400, 422, &use->status))) return rc;
            if (use->status != 400 && use->status != 422) return ERR(c, u, "status must be 400 or 422");
        }
    }
    char *path = NULL;
    if ((rc = get_path(c, file, &path))) return rc;
    for (size_t i = 0; i < cfg->nopenapis; i++)
        if (strcmp(cfg->openapi_paths[i], path) == 0) {
            free(path);
            *out = cfg->openapis[i];
            return EG_OK;
        }
    eg_openapi_t **po = realloc(cfg->openapis, (cfg->nopenapis + 1) * sizeof(*po));
    if (po) cfg->openapis = po;
    char **pp = realloc(cfg->openapi_paths, (cfg->nopenapis + 1) * sizeof(*pp));
    if (pp) cfg->openapi_paths = pp;
    if (!po || !pp) {
        free(path);
        return EG_ENOMEM;
    }
    char derr[512] = "";
    eg_openapi_t *oa = NULL;
    if ((rc = eg_openapi_load(path, &oa, derr, sizeof(derr)))) {
        free(path);
        return rc == EG_ENOMEM ? rc : ERR(c, file, "openapi: %s", derr);
    }
    cfg->openapis[cfg->nopenapis] = oa;
    cfg->openapi_paths[cfg->nopenapis++] = path;
    *out = oa;
    return EG_OK;
}

/* A server: "host:port", "host:port weight=N", or {address, weight}. */
/* host:port after an optional http:// or https:// (the upstream loop
 * decides what the scheme means). */
static int get_server_addr(cctx_t *c, const eg_ynode_t *n, const char *text, eg_hostport_t *hp)
{
    if (strncmp(text, "https://", 8) == 0) text += 8;
    else if (strncmp(text, "http://", 7) == 0) text += 7;
    if (eg_hostport_parse(text, hp) != 0)
        return ERR(c, n, "invalid address '%s' (use host:port, [v6]:port, :port or https://host:port)", text);
    return EG_OK;
}

static int get_server(cctx_t *c, const eg_ynode_t *n, eg_hostport_t *hp, unsigned *weight)
{
    int rc, w = 1;
    *weight = 1;
    if (n && n->kind == EG_Y_MAP) {
        static const char *const keys[] = {"address", "weight", NULL};
        if ((rc = known_keys(c, n, "an upstream server", keys))) return rc;
        const eg_ynode_t *a = eg_ymap_get(n, "address"), *wn = eg_ymap_get(n, "weight");
        if (!a) return ERR(c, n, "an upstream server needs address: host:port");
        if (a->kind != EG_Y_SCALAR) return ERR(c, a, "address: host:port");
        if ((rc = get_server_addr(c, a, a->str, hp))) return rc;
        if (wn && (rc = get_int(c, wn, 1, EG_BALANCE_MAX_WEIGHT, &w))) return rc;
        *weight = (unsigned)w;
        return EG_OK;
    }
    const char *sp = n && n->kind == EG_Y_SCALAR ? strchr(n->str, ' ') : NULL;
    if (!sp) {
        if (!n || n->kind != EG_Y_SCALAR) return ERR(c, n, "a server is host:port or {address, weight}");
        return get_server_addr(c, n, n->str, hp);
    }
    char addr[300];
    size_t al = (size_t)(sp - n->str);
    const char *p = sp;
    while (*p == ' ') p++;
    char *end = NULL;
    long lw = 0;
    if (al < sizeof(addr) && strncmp(p, "weight=", 7) == 0) {
        errno = 0;
        lw = strtol(p + 7, &end, 10);
    }
    if (!end || errno || end == p + 7 || *end || lw < 1 || lw > EG_BALANCE_MAX_WEIGHT)
        return ERR(c, n, "invalid server '%s' (use host:port or \"host:port weight=N\", N from 1 to %d)",
                   n->str, EG_BALANCE_MAX_WEIGHT);
    memcpy(addr, n->str, al);
    addr[al] = '\0';
    if ((rc = get_server_addr(c, n, addr, hp))) return rc;
    *weight = (unsigned)lw;
    return EG_OK;
}

/* balance: and hash_on: (header:NAME, principal or ip). */
static int load_balance(cctx_t *c, const eg_ynode_t *n, eg_upstream_cfg_t *u)
{
    const eg_ynode_t *v = eg_ymap_get(n, "balance"), *h = eg_ymap_get(n, "hash_on");
    eg_balance_t b = EG_BALANCE_ROUND_ROBIN;
    if (v && (v->kind != EG_Y_SCALAR || eg_balance_parse(v->str, &b) != EG_OK))
        return ERR(c, v, "balance must be round_robin, least_conn, weighted or hash");
    u->balance = (int)b;
    if (h && b != EG_BALANCE_HASH) return ERR(c, h, "hash_on needs balance: hash");
    if (b != EG_BALANCE_HASH) return EG_OK;
    if (!h) return ERR(c, v, "balance: hash needs hash_on: header:NAME, principal or ip");
    if (h->kind == EG_Y_SCALAR && strcmp(h->str, "ip") == 0) u->hash_on = EG_HASH_ON_IP;
    else if (h->kind == EG_Y_SCALAR && strcmp(h->str, "principal") == 0) u->hash_on = EG_HASH_ON_PRINCIPAL;
    else if (h->kind == EG_Y_SCALAR && strncmp(h->str, "header:", 7) == 0 && h->str[7]) {
        for (const char *p = h->str + 7; *p; p++)
            if (*p <= ' ' || *p >= 0x7f || *p == ':') return ERR(c, h, "invalid header name in '%s'", h->str);
        u->hash_on = EG_HASH_ON_HEADER;
        if (!(u->hash_header = strdup(h->str + 7))) return EG_ENOMEM;
    } else
        return ERR(c, h, "hash_on must be header:NAME, principal or ip");
    return EG_OK;
}

/* expect: 200, 2xx, "200-299", or a list of them. */
static int get_expect_one(cctx_t *c, const eg_ynode_t *n, eg_health_check_cfg_t *hc)
{
    if (hc->nexpect == EG_HC_MAX_EXPECT) return ERR(c, n, "expect takes at most %d statuses or ranges", EG_HC_MAX_EXPECT);
    const char *s = n && n->kind == EG_Y_SCALAR ? n->str : "";
    long lo = 0, hi = 0;
    if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
        (s[2] == 'x' || s[2] == 'X')) {
        lo = (s[0] - '0') * 100;
        hi = lo + 99;
    } else {
        char *end;
        lo = hi = strtol(s, &end, 10);
        if (end == s) lo = 0;
        else if (*end == '-') {
            const char *h = end + 1;
            hi = strtol(h, &end, 10);
            if (end == h) lo = 0;
        }
        if (*end) lo = 0;
    }
    if (lo < 100 || hi > 599 || lo > hi)
        return ERR(c, n, "invalid expect '%s' (use a status like 200, a class like 2xx, or a range like 200-299)", s);
    hc->expect_lo[hc->nexpect] = (int)lo;
    hc->expect_hi[hc->nexpect++] = (int)hi;
    return EG_OK;
}

static int load_health_check(cctx_t *c, const eg_ynode_t *n, eg_upstream_cfg_t *u)
{
    static const char *const keys[] = {"path", "interval", "timeout", "expect", "rise", "fall", NULL};
    eg_health_check_cfg_t *hc = &u->hc;
    int rc;
    if ((rc = known_keys(c, n, "health_check", keys))) return rc;
    hc->enabled = 1;
    hc->interval_ms = 5000;
    hc->timeout_ms = 1000;
    hc->rise = 2;
    hc->fall = 3;
    const eg_ynode_t *v = eg_ymap_get(n, "path");
    if (v) {
        if ((rc = get_str(c, v, &hc->path))) return rc;
        if (hc->path[0] != '/') return ERR(c, v, "health_check path must start with /");
        for (const char *p = hc->path; *p; p++)
            if (*p <= ' ' || *p >= 0x7f) return ERR(c, v, "health_check path has a space or control byte");
    } else if (!(hc->path = strdup("/healthz")))
        return EG_ENOMEM;
    if ((v = eg_ymap_get(n, "interval")) && (rc = get_duration(c, v, &hc->interval_ms))) return rc;
    if ((v = eg_ymap_get(n, "timeout")) && (rc = get_duration(c, v, &hc->timeout_ms))) return rc;
    if (hc->interval_ms < 10 || hc->timeout_ms < 10)
        return ERR(c, n, "health_check interval and timeout must be at least 10ms");
    if ((v = eg_ymap_get(n, "rise")) && (rc = get_int(c, v, 1, 100, &hc->rise))) return rc;
    if ((v = eg_ymap_get(n, "fall")) && (rc = get_int(c, v, 1, 100, &hc->fall))) return rc;
    if ((v = eg_ymap_get(n, "expect"))) {
        if (v->kind == EG_Y_SEQ) {
            if (v->n == 0) return ERR(c, v, "expect needs at least one status");
            for (size_t i = 0; i < v->n; i++)
                if ((rc = get_expect_one(c, v->items[i], hc))) return rc;
        } else if ((rc = get_expect_one(c, v, hc)))
            return rc;
    } else {
        hc->expect_lo[0] = 200;
        hc->expect_hi[0] = 399;
        hc->nexpect = 1;
    }
    return EG_OK;
}

static int load_upstream(cctx_t *c, const eg_ynode_t *k, const eg_ynode_t *n, eg_config_t *cfg, eg_upstream_cfg_t *u)
{
    static const char *const keys[] = {"servers",         "connect_timeout", "timeout",      "read_timeout",
                                       "total_timeout",   "retries",         "retry_non_idempotent",
                                       "max_fails",       "fail_timeout",    "keepalive",
                                       "keepalive_timeout", "host",          "openapi", "tls",
                                       "balance",         "hash_on",         "health_check", NULL};
    int rc;
    if (!(u->name = strdup(k->str))) return EG_ENOMEM;
    u->connect_timeout_ms = 2000;
    u->timeout_ms = 30000;
    u->retries = 1;
    u->max_fails = 3;
    u->fail_timeout_ms = 10000;
    u->keepalive = 32;
    u->keepalive_timeout_ms = 60000;
    char what[300];
    snprintf(what, sizeof(what), "upstream '%s'", k->str);
    if ((rc = known_keys(c, n, what, keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "servers");
    if (!v || v->kind != EG_Y_SEQ || v->n == 0)
        return ERR(c, v ? v : n, "upstream '%s' needs servers: [host:port, ...]", k->str);
    if (v->n > EG_UPSTREAM_MAX_SERVERS)
        return ERR(c, v, "upstream '%s' has %zu servers: at most %d", k->str, v->n, EG_UPSTREAM_MAX_SERVERS);
    if (!(u->servers = calloc(v->n, sizeof(*u->servers))) || !(u->weights = calloc(v->n, sizeof(*u->weights))) ||
        !(u->server_ids = calloc(v->n, sizeof(*u->server_ids))))
        return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *x = v->items[i];
        const eg_ynode_t *ax = x->kind == EG_Y_MAP ? eg_ymap_get(x, "address") : x;
        int https = ax && ax->kind == EG_Y_SCALAR && strncmp(ax->str, "https://", 8) == 0;
        if (i > 0 && https != u->tls.on)
            return ERR(c, x, "upstream '%s' mixes https:// and plain servers", k->str);
        u->tls.on = https;
        if ((rc = get_server(c, x, &u->servers[i], &u->weights[i]))) return rc;
        u->server_ids[i] = eg_balance_hash(u->servers[i].addr, strlen(u->servers[i].addr));
        const char *h = u->servers[i].host;
        unsigned char tmp[16];
        if (strcmp(h, "localhost") != 0 && inet_pton(AF_INET, h, tmp) != 1 &&
            inet_pton(AF_INET6, h, tmp) != 1)
            return ERR(c, v->items[i], "upstream server '%s' must be an IP address or localhost "
                                       "(names are not resolved, so they cannot change under you)", h);
        u->nservers++;
    }
    if ((v = eg_ymap_get(n, "connect_timeout")) && (rc = get_duration(c, v, &u->connect_timeout_ms)))
        return rc;
    if ((v = eg_ymap_get(n, "timeout")) && (rc = get_duration(c, v, &u->timeout_ms))) return rc;
    u->read_timeout_ms = u->timeout_ms; /* nginx's proxy_read_timeout: the same wait, between reads */
    if ((v = eg_ymap_get(n, "read_timeout")) && (rc = get_duration(c, v, &u->read_timeout_ms))) return rc;
    if ((v = eg_ymap_get(n, "total_timeout")) && (rc = get_duration(c, v, &u->total_timeout_ms))) return rc;
    if (u->timeout_ms == 0 || u->read_timeout_ms == 0)
        return ERR(c, n, "upstream '%s': timeout and read_timeout must be greater than zero", k->str);
    if ((v = eg_ymap_get(n, "fail_timeout")) && (rc = get_duration(c, v, &u->fail_timeout_ms)))
        return rc;
    if ((v = eg_ymap_get(n, "keepalive_timeout")) &&
        (rc = get_duration(c, v, &u->keepalive_timeout_ms)))
        return rc;
    if ((v = eg_ymap_get(n, "retries")) && (rc = get_int(c, v, 0, 10, &u->retries))) return rc;
    if ((v = eg_ymap_get(n, "max_fails")) && (rc = get_int(c, v, 1, 1000, &u->max_fails))) return rc;
    if ((v = eg_ymap_get(n, "keepalive")) && (rc = get_int(c, v, 0, 10000, &u->keepalive))) return rc;
    if ((v = eg_ymap_get(n, "retry_non_idempotent")) && (rc = get_bool(c, v, &u->retry_non_idempotent)))
        return rc;
    if ((v = eg_ymap_get(n, "host"))) {
        if (v->kind != EG_Y_SCALAR || !v->len) return ERR(c, v, "host must be keep, rewrite or a host name");
        if (strcmp(v->str, "keep") == 0) u->host_mode = EG_HOST_KEEP;
        else if (strcmp(v->str, "rewrite") == 0) u->host_mode = EG_HOST_REWRITE;
        else {
            for (const char *p = v->str; *p; p++)
                if (*p <= ' ' || *p >= 0x7f) return ERR(c, v, "invalid host '%s'", v->str);
            u->host_mode = EG_HOST_FIXED;
            if (!(u->host = strdup(v->str))) return EG_ENOMEM;
        }
    }
    if ((v = eg_ymap_get(n, "openapi")) && (rc = load_openapi(c, v, cfg, &u->openapi, &u->openapi_use)))
        return rc;
    u->tls.verify = 1;
    if ((v = eg_ymap_get(n, "tls"))) {
        static const char *const tkeys[] = {"ca", "server_name", "cert", "key", "verify", NULL};
        const eg_ynode_t *x;
        if (!u->tls.on) return ERR(c, v, "upstream '%s': tls: is for https:// servers", k->str);
        if ((rc = known_keys(c, v, "upstream tls", tkeys))) return rc;
        if ((x = eg_ymap_get(v, "ca")) && (rc = get_path(c, x, &u->tls.ca))) return rc;
        if ((x = eg_ymap_get(v, "server_name")) && (rc = get_str(c, x, &u->tls.server_name))) return rc;
        if ((x = eg_ymap_get(v, "cert")) && (rc = get_path(c, x, &u->tls.cert))) return rc;
        if ((x = eg_ymap_get(v, "key")) && (rc = get_path(c, x, &u->tls.key))) return rc;
        if ((x = eg_ymap_get(v, "verify")) && (rc = get_bool(c, x, &u->tls.verify))) return rc;
        if (!u->tls.cert != !u->tls.key) return ERR(c, v, "upstream tls: cert: and key: go together");
    }
    if ((rc = load_balance(c, n, u))) return rc;
    if ((v = eg_ymap_get(n, "health_check")) && (rc = load_health_check(c, v, u))) return rc;
    if (u->hc.enabled && u->tls.on)
        return ERR(c, eg_ymap_get(n, "health_check"),
                   "health_check: probes speak plain HTTP/1.1, not yet TLS: not for https:// servers");
    return EG_OK;
}

/* Reads a whole small file (keys, JWKS) into a NUL-terminated buffer. */
static int read_file(const char *path, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return EG_EIO;
    size_t cap = 1 << 20, n;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return EG_ENOMEM;
    }
    n = fread(buf, 1, cap + 1, f);
    int bad = ferror(f) || n > cap;
    fclose(f);
    if (bad) {
        free(buf);
        return EG_EIO;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return EG_OK;
}

/* A list of scope tokens; the same characters `errgate keys` accepts. */
static int get_scopes(cctx_t *c, const eg_ynode_t *v, char ***out, size_t *n)
{
    if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "expected a list of scopes like [search:basic]");
    if (!(*out = calloc(v->n, sizeof(char *)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *x = v->items[i];
        if (x->kind != EG_Y_SCALAR || x->len == 0 || x->len > 200 ||
            strspn(x->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:._-/*") != x->len)
            return ERR(c, x, "invalid scope (letters, digits and :._-/* only)");
        if (!((*out)[i] = strdup(x->str))) return EG_ENOMEM;
        (*n)++;
    }
    return EG_OK;
}

/* auth, scopes, scopes_any, admin and allow_ips of a route. */
static int load_route_auth(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    int rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "auth"))) {
        static const char *const modes[] = {"none", "api_key", "jwt", "any", "client_cert"};
        size_t i = 0;
        if (v->kind == EG_Y_MAP) { /* {api_key: optional | required} */
            const eg_ynode_t *how = v->n == 1 ? v->items[1] : NULL;
            if (!how || how->kind != EG_Y_SCALAR ||
                (strcmp(how->str, "optional") != 0 && strcmp(how->str, "required") != 0))
                return ERR(c, v, "auth: {api_key|jwt|any: optional|required}");
            r->auth_optional = strcmp(how->str, "optional") == 0;
            v = v->items[0];
            i = 1;
        }
        while (i < 5 && !(v->kind == EG_Y_SCALAR && strcmp(v->str, modes[i]) == 0)) i++;
        if (i == 5) return ERR(c, v, "auth must be none, api_key, jwt, any or client_cert (or {api_key: optional})");
        if (r->auth_optional && i == 4) return ERR(c, v, "auth: client_cert cannot be optional");
        r->auth = (eg_authn_t)i;
        if ((r->auth == EG_AUTHN_JWT || r->auth == EG_AUTHN_ANY) && !cfg->jwt_keys)
            return ERR(c, v, "auth: %s needs auth.jwt with at least one key", v->str);
        if (r->auth == EG_AUTHN_API_KEY || r->auth == EG_AUTHN_ANY) cfg->uses_keys = 1;
    }
    if ((v = eg_ymap_get(n, "scopes")) && (rc = get_scopes(c, v, &r->scopes, &r->nscopes))) return rc;
    if ((v = eg_ymap_get(n, "scopes_any")) && (rc = get_scopes(c, v, &r->scopes_any, &r->nscopes_any)))
        return rc;
    if ((v = eg_ymap_get(n, "admin")) && (rc = get_bool(c, v, &r->admin))) return rc;
    if ((r->nscopes || r->nscopes_any || r->admin) && r->auth == EG_AUTHN_NONE)
        return ERR(c, n, "a route with scopes or admin: true needs auth: api_key, jwt or any");
    if ((r->nscopes || r->nscopes_any || r->admin) && r->auth_optional)
        return ERR(c, n, "scopes and admin: true need a credential: auth: optional cannot have them");
    if ((v = eg_ymap_get(n, "client_subjects"))) {
        if (r->auth != EG_AUTHN_CERT) return ERR(c, v, "client_subjects needs auth: client_cert");
        if (v->kind != EG_Y_SEQ || v->n == 0)
            return ERR(c, v, "client_subjects must be a list of subjects like \"CN=alice,O=Example\"");
        if (!(r->subjects = calloc(v->n, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            if ((rc = get_str(c, v->items[i], &r->subjects[i]))) return rc;
            r->nsubjects++;
        }
    }
    if ((v = eg_ymap_get(n, "allow_ips"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "allow_ips must be a list of IPs and CIDRs");
        size_t total = 0;
        for (size_t i = 0; i < v->n; i++) total += v->items[i]->len + 1;
        if (!(r->allow_ips = calloc(v->n, sizeof(*r->allow_ips))) || !(r->allow_ips_text = calloc(1, total + 1)))
            return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            if (x->kind != EG_Y_SCALAR || eg_cidr_parse(x->str, &r->allow_ips[i]) != EG_OK)
                return ERR(c, x, "'%s' is not an IP address or CIDR block (host bits must be zero)",
                           x->kind == EG_Y_SCALAR ? x->str : "");
            if (i) strcat(r->allow_ips_text, ",");
            strcat(r->allow_ips_text, x->str);
            r->nallow_ips++;
        }
    }
    return EG_OK;
}

/* A secret from a file (one trailing newline dropped) or an environment
 * variable: secrets stay out of the configuration file itself. */
static int get_secret(cctx_t *c, const eg_ynode_t *file, const eg_ynode_t *env, unsigned char **out,
                      size_t *len)
{
    char *data = NULL;
    size_t n = 0;
    if (file && env) return ERR(c, env, "give the secret as a file or an environment variable, not both");
    if (file) {
        char *path = NULL;
        int rc = get_path(c, file, &path);
        if (rc) return rc;
        FILE *f = fopen(path, "rb");
        if (!f) {
            rc = ERR(c, file, "cannot read %s: %s", path, strerror(errno));
            free(path);
            return rc;
        }
        data = malloc(4097);
        n = data ? fread(data, 1, 4097, f) : 0;
        fclose(f);
        free(path);
        if (!data) return EG_ENOMEM;
        if (n > 4096) {
            free(data);
            return ERR(c, file, "the secret file is larger than 4KiB");
        }
    } else {
        if (env->kind != EG_Y_SCALAR) return ERR(c, env, "expected an environment variable name");
        const char *val = getenv(env->str);
        if (!val) return ERR(c, env, "environment variable %s is not set", env->str);
        n = strlen(val);
        if (n > 4096) return ERR(c, env, "the secret in %s is longer than 4KiB", env->str);
        if (!(data = malloc(n + 1))) return EG_ENOMEM;
        memcpy(data, val, n);
    }
    if (n && data[n - 1] == '\n') n--;
    if (n && data[n - 1] == '\r') n--;
    if (n < 16) {
        free(data);
        return ERR(c, file ? file : env, "the secret is shorter than 16 bytes");
    }
    *out = (unsigned char *)data;
    *len = n;
    return EG_OK;
}

static int load_store(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"backend", "path", "refresh", "busy_timeout", "commit_every", "commit_interval", NULL};
    int rc;
    if ((rc = known_keys(c, n, "store", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "backend"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "memory") == 0) cfg->store_backend = EG_STORE_MEMORY;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "sqlite") == 0) cfg->store_backend = EG_STORE_SQLITE;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "redis") == 0)
            return ERR(c, v, "keys live in memory or sqlite; Redis holds shared traffic state (the top-level redis: section)");
        else return ERR(c, v, "backend must be memory or sqlite");
    }
    if ((v = eg_ymap_get(n, "path"))) {
        if (cfg->store_backend != EG_STORE_SQLITE) return ERR(c, v, "path is only for the sqlite backend");
        free(cfg->store_path);
        cfg->store_path = NULL;
        if ((rc = get_path(c, v, &cfg->store_path))) return rc;
    }
    if ((v = eg_ymap_get(n, "refresh")) && (rc = get_duration(c, v, &cfg->store_refresh_ms))) return rc;
    if ((v = eg_ymap_get(n, "busy_timeout")) && (rc = get_duration(c, v, &cfg->store_busy_timeout_ms)))
        return rc;
    /* group commits of quota and credit charges (docs/traffic.md) */
    if ((v = eg_ymap_get(n, "commit_every")) && (rc = get_int(c, v, 1, 65536, &cfg->store_commit_every))) return rc;
    if ((v = eg_ymap_get(n, "commit_interval"))) {
        if ((rc = get_duration(c, v, &cfg->store_commit_interval_ms))) return rc;
        if (cfg->store_commit_interval_ms < 1 || cfg->store_commit_interval_ms > 10000)
            return ERR(c, v, "commit_interval must be between 1ms and 10s");
    }
    return EG_OK;
}

static int load_jwt(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"secret_file", "secret_env",  "public_keys", "jwks_file",
                                       "issuer",      "audience",    "leeway",      "scope_claim",
                                       "algorithms",  "require_exp", NULL};
    int rc;
    if ((rc = known_keys(c, n, "auth.jwt", keys))) return rc;
    if ((rc = eg_jwt_keys_new(&cfg->jwt_keys))) return rc;
    const eg_ynode_t *v, *f = eg_ymap_get(n, "secret_file"), *e = eg_ymap_get(n, "secret_env");
    if (f || e) {
        unsigned char *secret = NULL;
        size_t len = 0;
        if ((rc = get_secret(c, f, e, &secret, &len))) return rc;
        rc = eg_jwt_keys_add_hmac(cfg->jwt_keys, NULL, secret, len);
        memset(secret, 0, len);
        free(secret);
        if (rc) return rc;
    }
    if ((v = eg_ymap_get(n, "public_keys"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "public_keys must be a list of PEM files");
        for (size_t i = 0; i < v->n; i++) {
            char *path = NULL, *text = NULL;
            size_t len = 0;
            if ((rc = get_path(c, v->items[i], &path))) return rc;
            rc = read_file(path, &text, &len);
            if (rc) {
                rc = ERR(c, v->items[i], "cannot read %s", path);
                free(path);
                return rc;
            }
            char why[200] = "";
            rc = eg_jwt_keys_add_pem(cfg->jwt_keys, NULL, text, len, why, sizeof(why));
            free(text);
            free(path);
            if (rc) return ERR(c, v->items[i], "not a usable public key: %s", why);
        }
    }
    if ((v = eg_ymap_get(n, "jwks_file"))) {
        char *path = NULL, *text = NULL;
        size_t len = 0;
        if ((rc = get_path(c, v, &path))) return rc;
        rc = read_file(path, &text, &len);
        free(path);
        if (rc) return ERR(c, v, "cannot read the JWKS file");
        char why[200] = "";
        rc = eg_jwt_keys_add_jwks(cfg->jwt_keys, text, len, why, sizeof(why));
        free(text);
        if (rc) return ERR(c, v, "bad JWKS: %s", why);
    }
    if (eg_jwt_keys_count(cfg->jwt_keys) == 0)
        return ERR(c, n, "auth.jwt needs a key: secret_file, secret_env, public_keys or jwks_file");
    if ((v = eg_ymap_get(n, "issuer")) && (rc = get_str(c, v, &cfg->jwt_issuer))) return rc;
    if ((v = eg_ymap_get(n, "audience")) && (rc = get_str(c, v, &cfg->jwt_audience))) return rc;
    if ((v = eg_ymap_get(n, "scope_claim")) && (rc = get_str(c, v, &cfg->jwt_scope_claim))) return rc;
    uint64_t leeway = 30000;
    if ((v = eg_ymap_get(n, "leeway")) && (rc = get_duration(c, v, &leeway))) return rc;
    /* a token without exp is good forever: refused unless this says otherwise */
    int require_exp = 1;
    if ((v = eg_ymap_get(n, "require_exp")) && (rc = get_bool(c, v, &require_exp))) return rc;
    cfg->jwt.allow_no_exp = !require_exp;
    if ((v = eg_ymap_get(n, "algorithms"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "algorithms must be a list like [RS256, ES256]");
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            const char *a = x->kind == EG_Y_SCALAR ? x->str : "";
            if (strcmp(a, "HS256") == 0) cfg->jwt.algs |= EG_JWT_HS256;
            else if (strcmp(a, "RS256") == 0) cfg->jwt.algs |= EG_JWT_RS256;
            else if (strcmp(a, "ES256") == 0) cfg->jwt.algs |= EG_JWT_ES256;
            else return ERR(c, x, "unsupported algorithm '%s' (HS256, RS256, ES256)", a);
        }
    }
    cfg->jwt.issuer = cfg->jwt_issuer;
    cfg->jwt.audience = cfg->jwt_audience;
    cfg->jwt.scope_claim = cfg->jwt_scope_claim;
    cfg->jwt.leeway_s = (long long)(leeway / 1000);
    return EG_OK;
}

static int load_auth(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"key_header",      "pepper_file",     "pepper_env", "rotation_grace",
                                       "realm",           "contact",         "admin_token_file",
                                       "admin_token_env", "jwt",             NULL};
    int rc;
    if ((rc = known_keys(c, n, "auth", keys))) return rc;
    const eg_ynode_t *v, *f, *e;
    if ((v = eg_ymap_get(n, "key_header"))) {
        if ((rc = get_str(c, v, &cfg->key_header))) return rc;
        if (strspn(v->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != v->len)
            return ERR(c, v, "key_header must be a header name");
    }
    f = eg_ymap_get(n, "pepper_file");
    e = eg_ymap_get(n, "pepper_env");
    if ((f || e) && (rc = get_secret(c, f, e, &cfg->pepper, &cfg->pepper_len))) return rc;
    if (cfg->pepper_len > 256) return ERR(c, f ? f : e, "the pepper is longer than 256 bytes");
    if ((v = eg_ymap_get(n, "rotation_grace")) && (rc = get_duration(c, v, &cfg->rotation_grace_ms))) return rc;
    if ((v = eg_ymap_get(n, "realm"))) {
        if ((rc = get_str(c, v, &cfg->realm))) return rc;
        if (strpbrk(v->str, "\"\\\r\n")) return ERR(c, v, "realm cannot contain quotes, backslashes or newlines");
    }
    if ((v = eg_ymap_get(n, "contact")) && (rc = get_str(c, v, &cfg->contact))) return rc;
    f = eg_ymap_get(n, "admin_token_file");
    e = eg_ymap_get(n, "admin_token_env");
    if (f || e) {
        unsigned char *tok = NULL;
        size_t len = 0;
        if ((rc = get_secret(c, f, e, &tok, &len))) return rc;
        rc = eg_apikey_hash(NULL, 0, (const char *)tok, len, cfg->admin_token_hash);
        memset(tok, 0, len);
        free(tok);
        if (rc) return rc;
        cfg->has_admin_token = 1;
    }
    if ((v = eg_ymap_get(n, "jwt")) && (rc = load_jwt(c, v, cfg))) return rc;
    return EG_OK;
}

/* "1 minute", "30 seconds": the seeds' spelling of a window, for names. */
static void window_name(uint64_t ms, char *out, size_t cap)
{
    if (ms % 86400000 == 0) snprintf(out, cap, "%llud", (unsigned long long)(ms / 86400000));
    else if (ms % 3600000 == 0) snprintf(out, cap, "%lluh", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0) snprintf(out, cap, "%llum", (unsigned long long)(ms / 60000));
    else if (ms % 1000 == 0) snprintf(out, cap, "%llus", (unsigned long long)(ms / 1000));
    else snprintf(out, cap, "%llums", (unsigned long long)ms);
}

/* One limit: { limit: 100, window: 1m, burst: 20, by: key, name: x }. */
static int get_limit(cctx_t *c, const eg_ynode_t *n, const char *plan, eg_rate_limit_cfg_t *out)
{
    static const char *const keys[] = {"limit", "window", "burst", "by", "name", NULL};
    int rc;
    if ((rc = known_keys(c, n, "rate_limit", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "limit");
    int limit = 0, burst = 0;
    uint64_t window = 0;
    if (!v) return ERR(c, n, "a rate limit needs limit: N");
    if ((rc = get_int(c, v, 1, 100000000, &limit))) return rc;
    if (!(v = eg_ymap_get(n, "window"))) return ERR(c, n, "a rate limit needs window: DURATION (e.g. 1m)");
    if ((rc = get_duration(c, v, &window))) return rc;
    if ((v = eg_ymap_get(n, "burst")) && (rc = get_int(c, v, 1, 100000000, &burst))) return rc;
    if (eg_gcra_init(&out->gcra, (uint32_t)limit, window, (uint32_t)burst) != EG_OK)
        return ERR(c, n, "rate limit out of range (window 1ms..366d, burst at most 10 x limit, "
                         "at most 1,000,000 per millisecond)");
    out->by = EG_RL_BY_KEY;
    if ((v = eg_ymap_get(n, "by"))) {
        if (plan) return ERR(c, v, "a plan's limits are always by key");
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "key") == 0) out->by = EG_RL_BY_KEY;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "ip") == 0) out->by = EG_RL_BY_IP;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "route") == 0) out->by = EG_RL_BY_ROUTE;
        else return ERR(c, v, "by must be key, ip or route");
    }
    char w[24];
    window_name(window, w, sizeof(w));
    static const char *const by[] = {"key", "ip", "route"};
    if ((v = eg_ymap_get(n, "name"))) {
        if (v->kind != EG_Y_SCALAR || v->len == 0 || v->len >= sizeof(out->name) ||
            strspn(v->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != v->len)
            return ERR(c, v, "name must be 1..47 of letters, digits and -_.");
        snprintf(out->name, sizeof(out->name), "%s", v->str);
    } else {
        snprintf(out->name, sizeof(out->name), "%.24s-%s", plan ? plan : by[out->by], w);
    }
    return EG_OK;
}

/* rate_limit: one map or a list of them. */
static int get_limits(cctx_t *c, const eg_ynode_t *v, const char *plan, eg_rate_limit_cfg_t **out, size_t *n)
{
    size_t cnt = v->kind == EG_Y_SEQ ? v->n : 1;
    if (v->kind == EG_Y_SEQ && (v->n == 0 || v->n > 8)) return ERR(c, v, "rate_limit takes 1 to 8 limits");
    if (!(*out = calloc(cnt, sizeof(**out)))) return EG_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        int rc = get_limit(c, v->kind == EG_Y_SEQ ? v->items[i] : v, plan, &(*out)[i]);
        if (rc) return rc;
        (*n)++;
    }
    return EG_OK;
}

/* credits: { cost: 3, purchase_url: ... } */
static int get_credits(cctx_t *c, const eg_ynode_t *v, long long *cost, char **purchase_url)
{
    static const char *const ck[] = {"cost", "purchase_url", NULL};
    const eg_ynode_t *x;
    int n = 0, rc;
    if ((rc = known_keys(c, v, "credits", ck))) return rc;
    if (!(x = eg_ymap_get(v, "cost"))) return ERR(c, v, "credits needs cost: N");
    if ((rc = get_int(c, x, 1, 1000000000, &n))) return rc;
    *cost = n;
    if ((x = eg_ymap_get(v, "purchase_url")) && (rc = get_str(c, x, purchase_url))) return rc;
    return EG_OK;
}

/* quota: { limit: 10000, period: month, upgrade_url: ... } */
static int get_quota(cctx_t *c, const eg_ynode_t *n, eg_quota_cfg_t *q)
{
    static const char *const keys[] = {"limit", "period", "upgrade_url", NULL};
    int rc, limit = 0;
    if ((rc = known_keys(c, n, "quota", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "limit");
    if (!v) return ERR(c, n, "a quota needs limit: N");
    if ((rc = get_int(c, v, 1, 2000000000, &limit))) return rc;
    q->limit = limit;
    q->period = EG_PERIOD_MONTH;
    if ((v = eg_ymap_get(n, "period"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "day") == 0) q->period = EG_PERIOD_DAY;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "month") == 0) q->period = EG_PERIOD_MONTH;
        else return ERR(c, v, "period must be day or month (UTC)");
    }
    if ((v = eg_ymap_get(n, "upgrade_url")) && (rc = get_str(c, v, &q->upgrade_url))) return rc;
    return EG_OK;
}

static int load_plans(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    if (n->kind != EG_Y_MAP) return ERR(c, n, "plans must be a map of name: {rate_limit, concurrency, quota, credits}");
    if (!(cfg->plans = calloc(n->n ? n->n : 1, sizeof(*cfg->plans)))) return EG_ENOMEM;
    for (size_t i = 0; i < n->n; i++) {
        static const char *const keys[] = {"rate_limit", "concurrency", "quota", "credits", NULL};
        const eg_ynode_t *k = n->items[2 * i], *v = n->items[2 * i + 1], *x;
        eg_plan_cfg_t *p = &cfg->plans[cfg->nplans++];
        int rc;
        if (!(p->name = strdup(k->str))) return EG_ENOMEM;
        if ((rc = known_keys(c, v, "plan", keys))) return rc;
        if ((x = eg_ymap_get(v, "rate_limit")) && (rc = get_limits(c, x, p->name, &p->limits, &p->nlimits))) return rc;
        int conc = 0;
        if ((x = eg_ymap_get(v, "concurrency")) && (rc = get_int(c, x, 1, 1000000, &conc))) return rc;
        p->concurrency = (uint32_t)conc;
        if ((x = eg_ymap_get(v, "quota"))) {
            if ((rc = get_quota(c, x, &p->quota))) return rc;
            cfg->uses_counters = 1;
        }
        if ((x = eg_ymap_get(v, "credits"))) {
            if ((rc = get_credits(c, x, &p->credit_cost, &p->purchase_url))) return rc;
            cfg->uses_counters = 1;
        }
    }
    return EG_OK;
}

static int load_redis(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"address", "db", "timeout", "on_failure", "prefix", NULL};
    int rc;
    if ((rc = known_keys(c, n, "redis", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "address");
    if (!v) return ERR(c, n, "redis needs address: host:port");
    if ((rc = get_hostport(c, v, &cfg->redis))) return rc;
    unsigned char tmp[16];
    const char *h = cfg->redis.host;
    if (strcmp(h, "localhost") != 0 && inet_pton(AF_INET, h, tmp) != 1 && inet_pton(AF_INET6, h, tmp) != 1)
        return ERR(c, v, "redis address '%s' must be an IP address or localhost (no DNS lookups on the workers)", h);
    if ((v = eg_ymap_get(n, "db")) && (rc = get_int(c, v, 0, 15, &cfg->redis_db))) return rc;
    if ((v = eg_ymap_get(n, "timeout"))) {
        if ((rc = get_duration(c, v, &cfg->redis_timeout_ms))) return rc;
        if (cfg->redis_timeout_ms == 0 || cfg->redis_timeout_ms > 10000)
            return ERR(c, v, "timeout must be 1ms..10s");
    }
    if ((v = eg_ymap_get(n, "on_failure"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "fail_open") == 0) cfg->redis_fail_open = 1;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "fail_closed") == 0) cfg->redis_fail_open = 0;
        else return ERR(c, v, "on_failure must be fail_open (serve, log, count) or fail_closed (503)");
    }
    if ((v = eg_ymap_get(n, "prefix"))) {
        free(cfg->redis_prefix);
        cfg->redis_prefix = NULL;
        if ((rc = get_str(c, v, &cfg->redis_prefix))) return rc;
        if (v->len > 64 || strpbrk(v->str, " \r\n")) return ERR(c, v, "prefix must be up to 64 characters without spaces");
    }
    cfg->has_redis = 1;
    return EG_OK;
}

static int load_rate_limits(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"headers", "reset", "quota_headers", "quota_header_names", NULL};
    int rc;
    if ((rc = known_keys(c, n, "rate_limits", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "quota_headers"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "quota_headers must be a list: [legacy, ietf], or []");
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            if (x->kind == EG_Y_SCALAR && strcmp(x->str, "legacy") == 0) cfg->quota_legacy_headers = 1;
            else if (x->kind == EG_Y_SCALAR && strcmp(x->str, "ietf") == 0) cfg->quota_ietf_headers = 1;
            else return ERR(c, x, "quota_headers are legacy (X-Quota-Limit, X-Quota-Remaining, X-Quota-Reset) "
                                  "or ietf (a quota policy in RateLimit-Policy, RateLimit)");
        }
    }
    if ((v = eg_ymap_get(n, "quota_header_names"))) {
        static const char *const hk[] = {"limit", "remaining", "reset", NULL};
        if ((rc = known_keys(c, v, "quota_header_names", hk))) return rc;
        char **dst[] = {&cfg->quota_hdr_limit, &cfg->quota_hdr_remaining, &cfg->quota_hdr_reset};
        for (size_t i = 0; i < 3; i++) {
            const eg_ynode_t *x = eg_ymap_get(v, hk[i]);
            if (!x) continue;
            int token = x->kind == EG_Y_SCALAR && x->len > 0 && x->len <= 64;
            for (size_t k = 0; token && k < x->len; k++)
                token = (x->str[k] >= 'a' && x->str[k] <= 'z') || (x->str[k] >= 'A' && x->str[k] <= 'Z') ||
                        (x->str[k] >= '0' && x->str[k] <= '9') || x->str[k] == '-';
            if (!token) return ERR(c, x, "a header name: letters, digits and '-', like X-Quota-Limit");
            if ((rc = get_str(c, x, dst[i]))) return rc;
        }
    }
    if ((v = eg_ymap_get(n, "headers"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "headers must be a list: [legacy, ietf], or []");
        cfg->rl_legacy_headers = cfg->rl_ietf_headers = 0;
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            if (x->kind == EG_Y_SCALAR && strcmp(x->str, "legacy") == 0) cfg->rl_legacy_headers = 1;
            else if (x->kind == EG_Y_SCALAR && strcmp(x->str, "ietf") == 0) cfg->rl_ietf_headers = 1;
            else return ERR(c, x, "headers are legacy (X-RateLimit-*) or ietf (RateLimit-Policy, RateLimit)");
        }
    }
    if ((v = eg_ymap_get(n, "reset"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "seconds") == 0) cfg->rl_reset_unix = 0;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "unix") == 0) cfg->rl_reset_unix = 1;
        else return ERR(c, v, "reset must be seconds (until the reset) or unix (the time of the reset)");
    }
    return EG_OK;
}

const eg_plan_cfg_t *eg_config_plan(const eg_config_t *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->nplans; i++)
        if (strcmp(cfg->plans[i].name, name) == 0) return &cfg->plans[i];
    return NULL;
}

/* A list of strings for a cors key, as an array of the nodes' own strings
 * (the spec copies them). */
static int cors_list(cctx_t *c, const eg_ynode_t *v, const char *key, const char ***out, size_t *n)
{
    if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "cors.%s must be a non-empty list of strings", key);
    if (!(*out = calloc(v->n, sizeof(**out)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != EG_Y_SCALAR || v->items[i]->len == 0)
            return ERR(c, v->items[i], "cors.%s[%zu] must be a non-empty string", key, i);
        (*out)[i] = v->items[i]->str;
    }
    *n = v->n;
    return EG_OK;
}

/* cors: (global or a route's) into a built policy (lib/cors.c checks it;
 * its message names the key, and points at that key's node here). */
static int load_cors(cctx_t *c, const eg_ynode_t *n, eg_cors_policy_t **out)
{
    static const char *const keys[] = {"origins", "methods", "headers", "expose", "max_age", "credentials", NULL};
    int rc;
    if ((rc = known_keys(c, n, "cors", keys))) return rc;
    eg_cors_spec_t spec;
    eg_cors_spec_init(&spec);
    const char **origins = NULL, **headers = NULL, **expose = NULL;
    const eg_ynode_t *v;
    if (!(v = eg_ymap_get(n, "origins"))) {
        rc = ERR(c, n, "cors needs origins: [\"https://app.example.com\", ...]");
        goto out;
    }
    if ((rc = cors_list(c, v, "origins", &origins, &spec.n_origins))) goto out;
    spec.origins = origins;
    if ((v = eg_ymap_get(n, "methods"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0) {
            rc = ERR(c, v, "cors.methods must be a list like [GET, POST]");
            goto out;
        }
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *m = v->items[i];
            unsigned bit = m->kind == EG_Y_SCALAR ? eg_method_bit(m->str, m->len) : EG_M_OTHER;
            if (bit == EG_M_OTHER) {
                rc = ERR(c, m, "cors.methods[%zu]: unknown method '%s' (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)",
                         i, m->kind == EG_Y_SCALAR ? m->str : "");
                goto out;
            }
            spec.methods |= bit;
        }
    }
    if ((v = eg_ymap_get(n, "headers"))) {
        if ((rc = cors_list(c, v, "headers", &headers, &spec.n_headers))) goto out;
        spec.headers = headers;
    }
    if ((v = eg_ymap_get(n, "expose"))) {
        if ((rc = cors_list(c, v, "expose", &expose, &spec.n_expose))) goto out;
        spec.expose = expose;
    }
    if ((v = eg_ymap_get(n, "max_age"))) {
        uint64_t ms = 0;
        int secs = 0;
        if (v->kind == EG_Y_SCALAR && eg_parse_duration_ms(v->str, &ms) == EG_OK) {
            if (ms % 1000 || ms / 1000 > EG_CORS_MAX_AGE_LIMIT) {
                rc = ERR(c, v, "cors.max_age: whole seconds from 0 to 86400 (browsers cap it: Chromium at 7200, "
                               "Firefox at 86400)");
                goto out;
            }
            spec.max_age = (long)(ms / 1000);
        } else {
            if ((rc = get_int(c, v, 0, EG_CORS_MAX_AGE_LIMIT, &secs))) goto out;
            spec.max_age = secs;
        }
    }
    if ((v = eg_ymap_get(n, "credentials")) && (rc = get_bool(c, v, &spec.credentials))) goto out;
    char why[512];
    rc = eg_cors_policy_new(&spec, out, why, sizeof(why));
    if (rc == EG_EINVAL) {
        /* the reason starts with the key it is about: point at that node */
        size_t k = strcspn(why, "[: ");
        char key[16] = "";
        if (k < sizeof(key)) memcpy(key, why, k), key[k] = '\0';
        const eg_ynode_t *at = *key ? eg_ymap_get(n, key) : NULL;
        rc = ERR(c, at ? at : n, "cors.%s", why);
    } else if (rc == EG_OK && eg_cors_headers_max(*out) > EG_CORS_LINES_LIMIT) {
        eg_cors_policy_free(*out);
        *out = NULL;
        rc = ERR(c, n, "cors: the origins, headers and expose lists are too long (their header lines would pass %d bytes)",
                 EG_CORS_LINES_LIMIT);
    }
out:
    free(origins);
    free(headers);
    free(expose);
    return rc;
}

/* idempotency: { methods: [POST, PATCH], required: false, ttl: 24h,
 * max_body: 1MiB }. The body is read whole before the upstream is asked
 * (a larger one into a per-request buffer of at most max_body), so
 * max_body bounds a connection's memory: EG_STAGE_BODY_MAX at most. */
static int load_idempotency(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    static const char *const keys[] = {"methods", "required", "ttl", "max_body", NULL};
    int rc;
    if (n->kind != EG_Y_MAP)
        return ERR(c, n, "idempotency must be a map like { methods: [POST, PATCH], ttl: 24h }");
    if ((rc = known_keys(c, n, "idempotency", keys))) return rc;
    const eg_ynode_t *v;
    r->idem_methods = EG_M_POST | EG_M_PATCH;
    r->idem_ttl_ms = 86400000;
    r->idem_max_body = EG_STAGE_BODY_DEFAULT;
    if ((v = eg_ymap_get(n, "methods"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "methods must be a list like [POST, PATCH]");
        r->idem_methods = 0;
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *m = v->items[i];
            unsigned bit = m->kind == EG_Y_SCALAR ? eg_method_bit(m->str, m->len) : EG_M_OTHER;
            if (bit == EG_M_OTHER || bit == EG_M_CONNECT)
                return ERR(c, m, "unknown method '%s' (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE)",
                           m->kind == EG_Y_SCALAR ? m->str : "");
            r->idem_methods |= bit;
        }
    }
    if ((v = eg_ymap_get(n, "required")) && (rc = get_bool(c, v, &r->idem_required))) return rc;
    if ((v = eg_ymap_get(n, "ttl"))) {
        if ((rc = get_duration(c, v, &r->idem_ttl_ms))) return rc;
        if (r->idem_ttl_ms == 0 || r->idem_ttl_ms > 31536000000ull) return ERR(c, v, "ttl must be 1ms..365d");
    }
    if ((v = eg_ymap_get(n, "max_body"))) {
        if ((rc = get_size(c, v, &r->idem_max_body))) return rc;
        if (r->idem_max_body > EG_STAGE_BODY_MAX)
            return ERR(c, v, "max_body must be at most 16MiB: the body is held in memory while it is fingerprinted");
    }
    cfg->uses_idempotency = 1;
    return EG_OK;
}

/* The schema compiler's loader for $ref to other files: the documents are
 * kept with the route's validation (freed with it). */
static int schema_load(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen)
{
    eg_validation_t *v = ctx;
    eg_ydoc_t *d = NULL;
    int rc = eg_ydoc_load_file(path, &d, err, errlen);
    if (rc) return rc;
    eg_ydoc_t **docs = realloc(v->docs, (v->ndocs + 1) * sizeof(*docs));
    if (!docs) {
        eg_ydoc_free(d);
        return EG_ENOMEM;
    }
    v->docs = docs;
    v->docs[v->ndocs++] = d;
    *doc = d;
    return EG_OK;
}

/* What the schema compiler could not use: in validate: a keyword it does
 * not know is refused, not ignored (a misspelt "maximun" would check
 * nothing). The first one is kept. */
typedef struct {
    char msg[512];
    int n;
} swarn_t;

static void schema_warn(void *ctx, const char *msg)
{
    swarn_t *w = ctx;
    if (w->n++) return;
    snprintf(w->msg, sizeof(w->msg), "%s", msg);
    char *tail = strstr(w->msg, " and is ignored");
    if (tail) snprintf(tail, sizeof(w->msg) - (size_t)(tail - w->msg), " (a misspelt keyword would check nothing)");
}

static int warned(cctx_t *c, const swarn_t *w)
{
    if (!w->n) return EG_OK;
    snprintf(c->err, c->errlen, "%s", w->msg);
    return EG_EPARSE;
}

/* query / path / headers / body.form: { name: RULE, ... } (params.h). */
static int load_param_rules(cctx_t *c, const eg_ynode_t *n, eg_param_in_t in, const char *what,
                            eg_validation_t *v, const eg_route_cfg_t *r, const eg_config_t *cfg)
{
    if (n->kind != EG_Y_MAP)
        return ERR(c, n, "%s must be a map of parameter names to rules, like { q: { required: true } }", what);
    eg_params_t *p = &v->params;
    eg_param_rule_t *rules = realloc(p->rules, (p->n + n->n) * sizeof(*rules));
    if (!rules) return EG_ENOMEM;
    p->rules = rules;
    swarn_t w = {.n = 0};
    eg_schema_opts_t opts = {.load = schema_load, .load_ctx = v, .warn = schema_warn, .warn_ctx = &w};
    for (size_t i = 0; i < n->n; i++) {
        const eg_ynode_t *k = n->items[2 * i];
        if (in == EG_PIN_PATH) {
            /* a path parameter is one of the route's {name} segments */
            char seg[300];
            snprintf(seg, sizeof(seg), "{%s}", k->str);
            if (!strstr(r->path, seg))
                return ERR(c, k, "path parameter '%s' is not a {%s} segment of the route's path %s",
                           k->str, k->str, r->path);
        }
        for (size_t j = 0; j < p->n; j++)
            if (p->rules[j].in == in && (in == EG_PIN_HEADER ? strcasecmp(p->rules[j].name, k->str)
                                                             : strcmp(p->rules[j].name, k->str)) == 0)
                return ERR(c, k, "%s '%s' is declared twice", what, k->str);
        int rc = eg_param_rule_from_yaml(&p->rules[p->n], c->doc, n->items[2 * i + 1], k->str, in,
                                         cfg->catalog, &opts, c->err, c->errlen);
        p->n++; /* freed with the rest, loaded or not */
        if (rc) return rc;
        if ((rc = warned(c, &w))) return rc;
        if (in == EG_PIN_FORM) v->has_form = 1;
    }
    return EG_OK;
}

/* validate: { query: {...}, path: {...}, headers: {...}, max_query_length: N,
 * content_types: [...], body: { schema, max_body, form, required,
 * invalid_json: { message, details: [json_error, position, line, column] } },
 * status: 400|422 } (docs/validation.md). */
static int load_validate(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    static const char *const keys[] = {"query", "path", "headers", "max_query_length",
                                       "content_types", "body", "status", NULL};
    int rc;
    if (n->kind != EG_Y_MAP)
        return ERR(c, n, "validate must be a map like { query: { q: { required: true } } }");
    if ((rc = known_keys(c, n, "validate", keys))) return rc;
    eg_validation_t *v = calloc(1, sizeof(*v));
    if (!v) return EG_ENOMEM;
    r->validate = v;
    v->max_body = 1024 * 1024;
    v->json_details = EG_VJ_ALL;
    const eg_ynode_t *x;
    if ((x = eg_ymap_get(n, "query")) && (rc = load_param_rules(c, x, EG_PIN_QUERY, "query", v, r, cfg)))
        return rc;
    if ((x = eg_ymap_get(n, "path")) && (rc = load_param_rules(c, x, EG_PIN_PATH, "path", v, r, cfg)))
        return rc;
    if ((x = eg_ymap_get(n, "headers")) &&
        (rc = load_param_rules(c, x, EG_PIN_HEADER, "headers", v, r, cfg)))
        return rc;
    if ((x = eg_ymap_get(n, "max_query_length"))) {
        int len = 0;
        if ((rc = get_int(c, x, 1, 1 << 20, &len))) return rc;
        v->params.max_query_length = (size_t)len;
    }
    if ((x = eg_ymap_get(n, "status"))) {
        if ((rc = get_int(c, x, 400, 422, &v->status))) return rc;
        if (v->status != 400 && v->status != 422) return ERR(c, x, "status must be 400 or 422");
    }
    if ((x = eg_ymap_get(n, "content_types"))) {
        if (x->kind != EG_Y_SEQ || x->n == 0)
            return ERR(c, x, "content_types must be a list like [application/json]");
        if (!(v->content_types = calloc(x->n, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < x->n; i++) {
            const eg_ynode_t *t = x->items[i];
            if (t->kind != EG_Y_SCALAR || !strchr(t->str, '/') || strchr(t->str, ';') || strchr(t->str, ' '))
                return ERR(c, t, "'%s' is not a media type like application/json",
                           t->kind == EG_Y_SCALAR ? t->str : "");
            if (!(v->content_types[i] = strdup(t->str))) return EG_ENOMEM;
            v->ncontent_types++;
        }
    }
    if ((x = eg_ymap_get(n, "body"))) {
        static const char *const bk[] = {"schema", "max_body", "form", "required", "invalid_json", NULL};
        if ((rc = known_keys(c, x, "validate.body", bk))) return rc;
        const eg_ynode_t *y;
        if ((y = eg_ymap_get(x, "schema"))) {
            swarn_t w = {.n = 0};
            eg_schema_opts_t opts = {.load = schema_load, .load_ctx = v, .warn = schema_warn, .warn_ctx = &w};
            if ((rc = eg_schema_compile(c->doc, y, &opts, &v->body, c->err, c->errlen))) return rc;
            if ((rc = warned(c, &w))) return rc;
        }
        if ((y = eg_ymap_get(x, "max_body"))) {
            if ((rc = get_size(c, y, &v->max_body))) return rc;
            if (v->max_body > EG_STAGE_BODY_MAX)
                return ERR(c, y, "max_body must be at most 16MiB: the body is held in memory while it is checked");
        }
        if ((y = eg_ymap_get(x, "required")) && (rc = get_bool(c, y, &v->body_required))) return rc;
        if ((y = eg_ymap_get(x, "form")) && (rc = load_param_rules(c, y, EG_PIN_FORM, "body.form", v, r, cfg)))
            return rc;
        if ((y = eg_ymap_get(x, "invalid_json"))) {
            static const char *const jk[] = {"message", "details", NULL};
            if ((rc = known_keys(c, y, "validate.body.invalid_json", jk))) return rc;
            const eg_ynode_t *z;
            if ((z = eg_ymap_get(y, "message")) && (rc = get_str(c, z, &v->json_message))) return rc;
            if ((z = eg_ymap_get(y, "details"))) {
                if (z->kind != EG_Y_SEQ) return ERR(c, z, "details must be a list of json_error, position, line, column");
                v->json_details = 0;
                for (size_t i = 0; i < z->n; i++) {
                    const eg_ynode_t *m = z->items[i];
                    const char *w = m->kind == EG_Y_SCALAR ? m->str : "";
                    if (!strcmp(w, "json_error")) v->json_details |= EG_VJ_JSON_ERROR;
                    else if (!strcmp(w, "position")) v->json_details |= EG_VJ_POSITION;
                    else if (!strcmp(w, "line")) v->json_details |= EG_VJ_LINE;
                    else if (!strcmp(w, "column")) v->json_details |= EG_VJ_COLUMN;
                    else return ERR(c, m, "unknown member '%s' (json_error, position, line, column)", w);
                }
            }
        }
    }
    return EG_OK;
}

/* routes[].upgrade: the protocols a route tunnels (docs/upgrades.md). A
 * protocol is an Upgrade token's name (RFC 9110 7.8), matched without case
 * and without its /version; h2c is never tunneled (the gateway serves such
 * a request over HTTP/1.1, route.c), so listing it is a mistake. */
static int load_upgrade(cctx_t *c, const eg_ynode_t *n, eg_route_cfg_t *r)
{
    static const char *const keys[] = {"protocols", "idle_timeout", "max_bytes", NULL};
    int rc;
    if (n->kind != EG_Y_MAP) return ERR(c, n, "upgrade must be a map like {protocols: [websocket]}");
    if ((rc = known_keys(c, n, "upgrade", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "protocols");
    if (!v || v->kind != EG_Y_SEQ || v->n == 0)
        return ERR(c, v ? v : n, "upgrade needs protocols: a list like [websocket]");
    if (!(r->upgrade_protocols = calloc(v->n, sizeof(char *)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        const eg_ynode_t *p = v->items[i];
        if (p->kind != EG_Y_SCALAR || p->len == 0 || p->len > 64)
            return ERR(c, p, "a protocol is a name like websocket");
        for (size_t k = 0; k < p->len; k++)
            if (!(isalnum((unsigned char)p->str[k]) || strchr("!#$%&'*+-.^_`|~", p->str[k])))
                return ERR(c, p, "invalid protocol name '%s' (a token like websocket, without /version)", p->str);
        if (strcasecmp(p->str, "h2c") == 0)
            return ERR(c, p, "h2c is not tunneled: an Upgrade: h2c request is served over HTTP/1.1");
        if (!(r->upgrade_protocols[r->nupgrade_protocols++] = strdup(p->str))) return EG_ENOMEM;
    }
    r->upgrade_idle_ms = 60000;
    if ((v = eg_ymap_get(n, "idle_timeout"))) {
        if ((rc = get_duration(c, v, &r->upgrade_idle_ms))) return rc;
        if (r->upgrade_idle_ms == 0) return ERR(c, v, "idle_timeout must be above 0");
    }
    if ((v = eg_ymap_get(n, "max_bytes")) && (rc = get_size(c, v, &r->upgrade_max_bytes))) return rc;
    return EG_OK;
}

/* An event type: api.request, custom.thing (letters, digits, '.', '_', '-'). */
static int event_type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* meter: true, or {event_type: api.request, cost: 1, bytes: false}
 * (stages/meter.c, docs/metering.md) */
static int load_meter(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    int rc;
    r->meter_cost = 1;
    if (n->kind == EG_Y_SCALAR) {
        if ((rc = get_bool(c, n, &r->meter))) return rc;
    } else {
        static const char *const keys[] = {"event_type", "cost", "bytes", NULL};
        if ((rc = known_keys(c, n, "meter", keys))) return rc;
        r->meter = 1;
        const eg_ynode_t *v;
        if ((v = eg_ymap_get(n, "event_type"))) {
            if ((rc = get_str(c, v, &r->meter_event))) return rc;
            if (!event_type_ok(r->meter_event))
                return ERR(c, v, "event_type must be a name like api.request or custom.search");
        }
        if ((v = eg_ymap_get(n, "cost"))) {
            char *end = NULL;
            double d = v->kind == EG_Y_SCALAR ? strtod(v->str, &end) : 0;
            if (v->kind != EG_Y_SCALAR || !end || *end || !(d > 0) || d > 1e12)
                return ERR(c, v, "cost must be a number above 0 (the quantity each request counts)");
            r->meter_cost = d;
        }
        if ((v = eg_ymap_get(n, "bytes")) && (rc = get_bool(c, v, &r->meter_bytes))) return rc;
    }
    if (r->meter && !r->meter_event && !(r->meter_event = strdup("api.request"))) return EG_ENOMEM;
    if (r->meter) cfg->uses_metering = 1;
    return EG_OK;
}

/* The metering API's keys of metering: {path, event_types, max_future,
 * max_age, max_metadata, max_body, check_users, scope} (docs/metering.md);
 * load_metering checked the key names. */
static int load_metering_api(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const api_keys[] = {"event_types", "max_future",  "max_age", "max_metadata",
                                           "max_body",    "check_users", "scope",   NULL};
    int rc;
    const eg_ynode_t *v = eg_ymap_get(n, "path");
    if (!v) {
        for (const char *const *k = api_keys; *k; k++)
            if ((v = eg_ymap_get(n, *k)))
                return ERR(c, v, "metering.%s is for the metering API: set metering.path too", *k);
        return EG_OK;
    }
    if (v->kind != EG_Y_SCALAR || v->str[0] != '/' || strpbrk(v->str, "?#*{} \t") || v->len > 200)
        return ERR(c, v, "metering.path must be a path like /v1/meter");
    if ((rc = get_str(c, v, &cfg->meter_path))) return rc;
    if ((v = eg_ymap_get(n, "event_types"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0)
            return ERR(c, v, "event_types must be a list like [api.request, custom.*]");
        if (!(cfg->meter_types = calloc(v->n, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *x = v->items[i];
            const char *star = x->kind == EG_Y_SCALAR ? strchr(x->str, '*') : NULL;
            if (x->kind != EG_Y_SCALAR || x->len == 0 || x->len > EG_METER_TYPE_MAX ||
                strspn(x->str, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-*") !=
                    x->len ||
                (star && (star != x->str + x->len - 1 || x->len < 3 || star[-1] != '.')))
                return ERR(c, x,
                           "an event type is letters, digits and _.:- (a pattern ends in .*, e.g. custom.*)");
            if (!(cfg->meter_types[i] = strdup(x->str))) return EG_ENOMEM;
            cfg->nmeter_types++;
        }
        cfg->meter_rules.event_types = (const char *const *)cfg->meter_types;
        cfg->meter_rules.nevent_types = cfg->nmeter_types;
    }
    uint64_t ms;
    if ((v = eg_ymap_get(n, "max_future"))) {
        if ((rc = get_duration(c, v, &ms))) return rc;
        if (ms > 86400000ull) return ERR(c, v, "max_future must be at most 1d");
        cfg->meter_rules.max_future_s = (int64_t)(ms / 1000);
    }
    if ((v = eg_ymap_get(n, "max_age"))) {
        if ((rc = get_duration(c, v, &ms))) return rc;
        if (ms < 60000 || ms > 400ull * 86400000ull) return ERR(c, v, "max_age must be 1m..400d");
        cfg->meter_rules.max_age_s = (int64_t)(ms / 1000);
    }
    uint64_t sz;
    if ((v = eg_ymap_get(n, "max_metadata"))) {
        if ((rc = get_size(c, v, &sz))) return rc;
        if (sz < 2 || sz > 65536) return ERR(c, v, "max_metadata must be 2..64KiB");
        cfg->meter_rules.max_metadata = (size_t)sz;
    }
    if ((v = eg_ymap_get(n, "max_body"))) {
        if ((rc = get_size(c, v, &cfg->meter_max_body))) return rc;
        if (cfg->meter_max_body < 1024 || cfg->meter_max_body > EG_STAGE_BODY_MAX)
            return ERR(c, v, "max_body must be 1KiB..16MiB");
    }
    if ((v = eg_ymap_get(n, "check_users")) && (rc = get_bool(c, v, &cfg->meter_check_users)))
        return rc;
    if ((v = eg_ymap_get(n, "scope"))) {
        if (v->kind != EG_Y_SCALAR || v->len == 0 || v->len > 200 || strpbrk(v->str, " \t\r\n"))
            return ERR(c, v, "scope must be one scope like meter:write");
        free(cfg->meter_scope);
        cfg->meter_scope = NULL;
        if ((rc = get_str(c, v, &cfg->meter_scope))) return rc;
    }
    if (cfg->meter_check_users) cfg->uses_keys = 1; /* user_id is looked up in the keyring */
    return EG_OK;
}

/* metering: { usage_path, commit_every, commit_interval, max_uncommitted,
 * retention, sink, sink_queue } (docs/metering.md) */
static int load_metering(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"usage_path", "commit_every", "commit_interval", "max_uncommitted",
                                       "retention", "path", "event_types", "max_future", "max_age",
                                       "max_metadata", "max_body", "check_users", "scope", "sink",
                                       "sink_queue", NULL};
    int rc;
    if ((rc = known_keys(c, n, "metering", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "usage_path"))) {
        if (v->kind != EG_Y_SCALAR || v->str[0] != '/' || strpbrk(v->str, "?#* \t") || v->len > 200)
            return ERR(c, v, "usage_path must be a path like /v1/usage");
        if ((rc = get_str(c, v, &cfg->usage_path))) return rc;
    }
    if ((v = eg_ymap_get(n, "commit_every")) && (rc = get_int(c, v, 1, 1000000, &cfg->metering_commit_every)))
        return rc;
    if ((v = eg_ymap_get(n, "commit_interval"))) {
        if ((rc = get_duration(c, v, &cfg->metering_commit_interval_ms))) return rc;
        if (cfg->metering_commit_interval_ms < 1 || cfg->metering_commit_interval_ms > 60000)
            return ERR(c, v, "commit_interval must be between 1ms and 60s");
    }
    if ((v = eg_ymap_get(n, "max_uncommitted")) &&
        (rc = get_int(c, v, 1, 100000000, &cfg->metering_max_uncommitted)))
        return rc;
    if ((v = eg_ymap_get(n, "retention"))) {
        uint64_t ms;
        if ((rc = get_duration(c, v, &ms))) return rc;
        if (ms < 86400000ull) return ERR(c, v, "retention must be a day at least (e.g. 400d)");
        cfg->metering_retention_s = ms / 1000;
    }
    /* the PostgreSQL sink's URL is checked here (libpq's parser), so a typo
     * fails the load; whether the server answers is the sink's business at
     * run time (the gateway starts without it and retries, as with upstreams) */
    if ((v = eg_ymap_get(n, "sink"))) {
        char why[300];
        if ((rc = get_str(c, v, &cfg->metering_sink))) return rc;
        if (eg_pg_url_check(v->str, why, sizeof(why)) != EG_OK) return ERR(c, v, "metering.%s", why);
    }
    if ((v = eg_ymap_get(n, "sink_queue"))) {
        long long q;
        if ((rc = eg_yscalar_int(c->doc, v, 1000, 100000000, &q, c->err, c->errlen))) return rc;
        if (!cfg->metering_sink) return ERR(c, v, "sink_queue needs sink: postgres://...");
        cfg->metering_sink_queue = (uint64_t)q;
    }
    return load_metering_api(c, n, cfg);
}

static int load_route(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    static const char *const keys[] = {"path",   "match",    "methods",    "upstream",
                                       "maintenance", "normalize", "auth", "dialect",
                                       "scopes", "scopes_any", "admin", "allow_ips",
                                       "client_subjects", "rate_limit", "concurrency", "quota", "credits", "cors",
                                       "idempotency", "openapi", "validate", "upgrade", "meter", NULL};
    int rc;
    if ((rc = known_keys(c, n, "route", keys))) return rc;
    r->normalize = 1;
    r->maintenance_retry_after = -1;
    const eg_ynode_t *v = eg_ymap_get(n, "path");
    if (!v || v->kind != EG_Y_SCALAR || v->str[0] != '/')
        return ERR(c, v ? v : n, "a route needs path: /... (starting with '/')");
    size_t len = v->len;
    int prefix = 0;
    if (len >= 2 && v->str[len - 1] == '*' && v->str[len - 2] == '/') {
        len--;
        prefix = 1;
    } else if (v->str[len - 1] == '/') {
        prefix = 1;
    }
    for (size_t i = 0; i < len; i++)
        if (v->str[i] <= ' ' || v->str[i] >= 0x7f || v->str[i] == '?' || v->str[i] == '*')
            return ERR(c, v, "invalid character in path '%s'", v->str);
    if (!(r->path = strndup(v->str, len))) return EG_ENOMEM;
    {
        /* {name} template segments (router.h): whole segments only */
        eg_route_spec_t one = {r->path, 0, 0};
        eg_router_t *probe = NULL;
        int prc = eg_router_new(&one, 1, &probe);
        eg_router_free(probe);
        if (prc == EG_ENOMEM) return prc;
        if (prc) return ERR(c, v, "invalid path '%s': a {name} parameter must be a whole segment, like /users/{id}", v->str);
    }
    if ((v = eg_ymap_get(n, "match"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "exact") == 0) prefix = 0;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "prefix") == 0) prefix = 1;
        else return ERR(c, v, "match must be exact or prefix");
    }
    r->prefix = prefix;
    if ((v = eg_ymap_get(n, "methods"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0) return ERR(c, v, "methods must be a list like [GET, POST]");
        for (size_t i = 0; i < v->n; i++) {
            const eg_ynode_t *m = v->items[i];
            unsigned bit = m->kind == EG_Y_SCALAR ? eg_method_bit(m->str, m->len) : EG_M_OTHER;
            if (bit == EG_M_OTHER)
                return ERR(c, m, "unknown method '%s' (GET, HEAD, POST, PUT, PATCH, DELETE, "
                                 "OPTIONS, TRACE, CONNECT)", m->kind == EG_Y_SCALAR ? m->str : "");
            r->methods |= bit;
        }
        /* a route that answers GET answers HEAD too, as every server does */
        if (r->methods & EG_M_GET) r->methods |= EG_M_HEAD;
    }
    v = eg_ymap_get(n, "upstream");
    if (!v || v->kind != EG_Y_SCALAR) return ERR(c, v ? v : n, "a route needs upstream: NAME");
    size_t u = 0;
    while (u < cfg->nupstreams && strcmp(cfg->upstreams[u].name, v->str) != 0) u++;
    /* with no upstreams at all, that problem is reported once, not per route */
    if (u == cfg->nupstreams && cfg->nupstreams) return ERR(c, v, "unknown upstream '%s'", v->str);
    r->upstream = u;
    if ((v = eg_ymap_get(n, "openapi"))) {
        const eg_ynode_t *x;
        /* one source of rules per route: a route of its own (a longer
         * path, declared rules) is how to add to what a document says */
        if ((x = eg_ymap_get(n, "validate")))
            return ERR(c, x, "a route has validate: or openapi:, not both (declare the rules the document "
                             "does not say on a route of their own)");
        if ((x = eg_ymap_get(n, "methods")))
            return ERR(c, x, "methods: and openapi: on one route: the document's operations say the methods");
        if ((x = eg_ymap_get(n, "match")) && x->kind == EG_Y_SCALAR && strcmp(x->str, "exact") == 0)
            return ERR(c, x, "a route with openapi: is a prefix (the document's paths are under it)");
        r->prefix = prefix = 1;
        if ((rc = load_openapi(c, v, cfg, &r->openapi, &r->oa_use))) return rc;
    } else if (!eg_ymap_get(n, "validate") && u < cfg->nupstreams && cfg->upstreams[u].openapi) {
        r->openapi = cfg->upstreams[u].openapi;
        r->oa_use = cfg->upstreams[u].openapi_use;
        r->oa_from_upstream = 1;
    }
    if ((v = eg_ymap_get(n, "normalize")) && (rc = get_bool(c, v, &r->normalize))) return rc;
    if ((rc = load_route_auth(c, n, cfg, r))) return rc;
    if ((v = eg_ymap_get(n, "rate_limit")) && (rc = get_limits(c, v, NULL, &r->limits, &r->nlimits))) return rc;
    if ((v = eg_ymap_get(n, "concurrency"))) {
        int conc = 0;
        if ((rc = get_int(c, v, 1, 1000000, &conc))) return rc;
        r->concurrency = (uint32_t)conc;
    }
    if ((v = eg_ymap_get(n, "quota"))) {
        if ((rc = get_quota(c, v, &r->quota))) return rc;
        if (r->auth == EG_AUTHN_NONE) return ERR(c, v, "a quota is per key: the route needs auth");
        if (r->auth == EG_AUTHN_CERT) /* counted in the key store, where certificates are not */
            return ERR(c, v, "a quota is per API key or token: not for auth: client_cert");
        cfg->uses_counters = 1;
    }
    if ((v = eg_ymap_get(n, "credits"))) {
        if ((rc = get_credits(c, v, &r->credit_cost, &r->purchase_url))) return rc;
        if (r->auth == EG_AUTHN_NONE) return ERR(c, v, "credits are per key: the route needs auth");
        if (r->auth == EG_AUTHN_CERT)
            return ERR(c, v, "credits are per API key or token: not for auth: client_cert");
        cfg->uses_counters = 1;
    }
    if ((v = eg_ymap_get(n, "idempotency")) && (rc = load_idempotency(c, v, cfg, r))) return rc;
    if ((v = eg_ymap_get(n, "dialect"))) {
        if (v->kind != EG_Y_SCALAR || !(r->dialect = eg_dialects_get(cfg->dialects, v->str)))
            return ERR(c, v, "unknown dialect '%s'", v->kind == EG_Y_SCALAR ? v->str : "");
    }
    if ((v = eg_ymap_get(n, "maintenance"))) {
        static const char *const mk[] = {"enabled", "from", "until", "retry_after", "message", "status_page", NULL};
        if ((rc = known_keys(c, v, "maintenance", mk))) return rc;
        const eg_ynode_t *x;
        r->maintenance = 1;
        if ((x = eg_ymap_get(v, "enabled")) && (rc = get_bool(c, x, &r->maintenance))) return rc;
        if ((x = eg_ymap_get(v, "until"))) {
            if ((rc = get_str(c, x, &r->maintenance_until))) return rc;
            struct tm tm;
            memset(&tm, 0, sizeof(tm));
            const char *end = strptime(x->str, "%Y-%m-%dT%H:%M:%SZ", &tm);
            if (!end || *end) return ERR(c, x, "until must be an RFC 3339 UTC time like 2024-01-15T15:00:00Z");
        }
        if ((x = eg_ymap_get(v, "from"))) {
            if ((rc = get_str(c, x, &r->maintenance_from))) return rc;
            struct tm tm;
            memset(&tm, 0, sizeof(tm));
            const char *end = strptime(x->str, "%Y-%m-%dT%H:%M:%SZ", &tm);
            if (!end || *end) return ERR(c, x, "from must be an RFC 3339 UTC time like 2024-01-15T10:00:00Z");
        }
        if ((x = eg_ymap_get(v, "status_page")) && (rc = get_str(c, x, &r->maintenance_status_page))) return rc;
        if ((x = eg_ymap_get(v, "retry_after"))) {
            uint64_t ms;
            if (x->kind == EG_Y_SCALAR && eg_parse_duration_ms(x->str, &ms) == EG_OK) {
                r->maintenance_retry_after = (long long)(ms / 1000);
            } else {
                int secs;
                if ((rc = get_int(c, x, 0, 31536000, &secs))) return rc;
                r->maintenance_retry_after = secs;
            }
        }
        if ((x = eg_ymap_get(v, "message")) && (rc = get_str(c, x, &r->maintenance_message))) return rc;
    }
    if ((v = eg_ymap_get(n, "cors")) && (rc = load_cors(c, v, &r->cors))) return rc;
    if ((v = eg_ymap_get(n, "validate")) && (rc = load_validate(c, v, cfg, r))) return rc;
    if ((v = eg_ymap_get(n, "upgrade")) && (rc = load_upgrade(c, v, r))) return rc;
    if ((v = eg_ymap_get(n, "meter")) && (rc = load_meter(c, v, cfg, r))) return rc;
    return EG_OK;
}

static int load_request_id(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"header", "trust_inbound", NULL};
    int rc;
    if ((rc = known_keys(c, n, "request_id", keys))) return rc;
    const eg_ynode_t *x;
    if ((x = eg_ymap_get(n, "header")) && (rc = get_str(c, x, &cfg->request_id_header))) return rc;
    if ((x = eg_ymap_get(n, "trust_inbound")) && (rc = get_bool(c, x, &cfg->trust_request_id))) return rc;
    return EG_OK;
}

/* One certificate and key (and its optional OCSP response) of a TLS listener. */
static int get_tls_cert(cctx_t *c, const eg_ynode_t *n, int check_keys, eg_tls_cert_cfg_t *out)
{
    static const char *const keys[] = {"cert", "key", "ocsp", NULL};
    int rc;
    const eg_ynode_t *v;
    if (check_keys && (rc = known_keys(c, n, "certificates item", keys))) return rc;
    if (!(v = eg_ymap_get(n, "cert")) || (rc = get_path(c, v, &out->cert)))
        return v ? rc : ERR(c, n, "a certificate needs cert: (a PEM chain file)");
    if (!(v = eg_ymap_get(n, "key")) || (rc = get_path(c, v, &out->key)))
        return v ? rc : ERR(c, n, "a certificate needs key: (its PEM private key file)");
    if ((v = eg_ymap_get(n, "ocsp")) && (rc = get_path(c, v, &out->ocsp))) return rc;
    return EG_OK;
}

/* listen.tls.hsts: `true` (a year) or {max_age, include_subdomains,
 * preload}; the header line is made here, once. preload is refused without
 * what the browsers' preload list requires (a year at least, subdomains),
 * since asking for it otherwise is a mistake found only much later. */
static int load_hsts(cctx_t *c, const eg_ynode_t *n, eg_tls_listen_cfg_t *t)
{
    static const char *const keys[] = {"max_age", "include_subdomains", "preload", NULL};
    const uint64_t year = 31536000;
    uint64_t age = year;
    int on = 1, sub = 0, preload = 0, rc;
    const eg_ynode_t *v;
    if (n->kind == EG_Y_SCALAR) {
        if ((rc = get_bool(c, n, &on))) return rc;
    } else {
        if ((rc = known_keys(c, n, "hsts", keys))) return rc;
        if ((v = eg_ymap_get(n, "max_age"))) {
            uint64_t ms;
            long long secs;
            if (v->kind == EG_Y_SCALAR && eg_parse_duration_ms(v->str, &ms) == EG_OK) {
                age = ms / 1000;
            } else {
                if ((rc = eg_yscalar_int(c->doc, v, 0, 1000000000, &secs, c->err, c->errlen))) return rc;
                age = (uint64_t)secs;
            }
        }
        if ((v = eg_ymap_get(n, "include_subdomains")) && (rc = get_bool(c, v, &sub))) return rc;
        if ((v = eg_ymap_get(n, "preload")) && (rc = get_bool(c, v, &preload))) return rc;
        if (preload && (!sub || age < year))
            return ERR(c, n, "preload needs include_subdomains: true and max_age of a year (365d) or more");
    }
    t->hsts[0] = '\0';
    if (on)
        snprintf(t->hsts, sizeof(t->hsts), "Strict-Transport-Security: max-age=%llu%s%s\r\n",
                 (unsigned long long)age, sub ? "; includeSubDomains" : "", preload ? "; preload" : "");
    return EG_OK;
}

/* listen.tls: the certificates (cert/key is the default, certificates: more
 * chosen by SNI), versions, ciphers, client certificates. The files are
 * read when the gateway builds its TLS contexts (server/tls.c), which
 * check-config and a reload do too, so a bad certificate is reported there. */
static int load_tls_listen(cctx_t *c, const eg_ynode_t *n, eg_tls_listen_cfg_t *t)
{
    static const char *const keys[] = {"cert", "key", "ocsp", "certificates", "min_version", "ciphers",
                                       "client_ca", "verify", "session_tickets", "h2", "hsts", NULL};
    int rc;
    const eg_ynode_t *v, *more = eg_ymap_get(n, "certificates");
    if ((rc = known_keys(c, n, "listen.tls", keys))) return rc;
    t->min_version = 12;
    t->session_tickets = 1;
    if (more && (more->kind != EG_Y_SEQ || more->n == 0))
        return ERR(c, more, "certificates must be a list of {cert, key}");
    size_t n_more = more ? more->n : 0;
    int has_default = eg_ymap_get(n, "cert") != NULL;
    if (!has_default && !n_more) return ERR(c, n, "listen.tls needs cert: and key: (or certificates:)");
    if (!(t->certs = calloc(n_more + 1, sizeof(*t->certs)))) return EG_ENOMEM;
    /* counted first: what a failed one holds is freed */
    if (has_default && (rc = get_tls_cert(c, n, 0, &t->certs[t->ncerts++]))) return rc;
    if (!has_default && (eg_ymap_get(n, "key") || eg_ymap_get(n, "ocsp")))
        return ERR(c, n, "key: and ocsp: go with cert:");
    for (size_t i = 0; i < n_more; i++) {
        if ((rc = get_tls_cert(c, more->items[i], 1, &t->certs[t->ncerts++]))) return rc;
    }
    if ((v = eg_ymap_get(n, "min_version"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "1.2") == 0) t->min_version = 12;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "1.3") == 0) t->min_version = 13;
        else return ERR(c, v, "min_version must be \"1.2\" or \"1.3\"");
    }
    if ((v = eg_ymap_get(n, "ciphers")) && (rc = get_str(c, v, &t->ciphers))) return rc;
    if ((v = eg_ymap_get(n, "client_ca")) && (rc = get_path(c, v, &t->client_ca))) return rc;
    if ((v = eg_ymap_get(n, "verify"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "optional") == 0) t->verify = EG_VERIFY_OPTIONAL;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "required") == 0) t->verify = EG_VERIFY_REQUIRED;
        else return ERR(c, v, "verify must be optional or required");
        if (!t->client_ca) return ERR(c, v, "verify: needs client_ca: (the CA client certificates lead to)");
    } else if (t->client_ca) {
        t->verify = EG_VERIFY_REQUIRED;
    }
    if ((v = eg_ymap_get(n, "session_tickets")) && (rc = get_bool(c, v, &t->session_tickets))) return rc;
    t->h2 = 1;
    if ((v = eg_ymap_get(n, "hsts")) && (rc = load_hsts(c, v, t))) return rc;
    if ((v = eg_ymap_get(n, "h2")) && (rc = get_bool(c, v, &t->h2))) return rc;
    return EG_OK;
}

/* One listen: item, "host:port" or {address, tls}. */
static int get_listener(cctx_t *c, const eg_ynode_t *n, eg_listener_cfg_t *l)
{
    static const char *const keys[] = {"address", "tls", "h2c", NULL};
    int rc;
    l->h2c = 1;
    if (n->kind == EG_Y_SCALAR) return get_hostport(c, n, &l->addr);
    if ((rc = known_keys(c, n, "listen", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "address");
    if (!v) return ERR(c, n, "listen needs address: host:port");
    if ((rc = get_hostport(c, v, &l->addr))) return rc;
    if ((v = eg_ymap_get(n, "tls"))) {
        if (!(l->tls = calloc(1, sizeof(*l->tls)))) return EG_ENOMEM;
        if ((rc = load_tls_listen(c, v, l->tls))) return rc;
    }
    if ((v = eg_ymap_get(n, "h2c"))) {
        if (l->tls) return ERR(c, v, "h2c: is for plain listeners; a TLS listener offers h2 by ALPN (tls.h2)");
        if ((rc = get_bool(c, v, &l->h2c))) return rc;
    }
    return EG_OK;
}

static void tls_listen_free(eg_tls_listen_cfg_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->ncerts; i++) {
        free(t->certs[i].cert);
        free(t->certs[i].key);
        free(t->certs[i].ocsp);
    }
    free(t->certs);
    free(t->ciphers);
    free(t->client_ca);
    free(t);
}

/* listen: "host:port", {address, tls}, or a list of them (plain and TLS
 * side by side); cfg->listen is the first. */
static int load_listen(cctx_t *c, const eg_ynode_t *root, eg_config_t *cfg)
{
    int rc;
    const eg_ynode_t *v = eg_ymap_get(root, "listen");
    if (!v) return ERR(c, root, "missing 'listen: host:port'");
    size_t n = v->kind == EG_Y_SEQ ? v->n : 1;
    if (n == 0 || n > 16) return ERR(c, v, "listen: between 1 and 16 addresses");
    if (!(cfg->listeners = calloc(n, sizeof(*cfg->listeners)))) return EG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const eg_ynode_t *x = v->kind == EG_Y_SEQ ? v->items[i] : v;
        cfg->nlisteners++; /* first: what a failed one holds is freed */
        if ((rc = get_listener(c, x, &cfg->listeners[i]))) return rc;
        for (size_t k = 0; k < i; k++)
            if (cfg->listeners[k].addr.port == cfg->listeners[i].addr.port &&
                strcmp(cfg->listeners[k].addr.host, cfg->listeners[i].addr.host) == 0)
                return ERR(c, x, "address %s is listed twice", cfg->listeners[i].addr.addr);
    }
    cfg->listen = cfg->listeners[0].addr;
    v = eg_ymap_get(root, "listen");
    if ((v = eg_ymap_get(root, "admin_listen"))) {
        if ((rc = get_hostport(c, v, &cfg->admin_listen))) return rc;
        /* ":PORT" binds loopback for the admin API (0.0.0.0 for `listen`):
         * /health, /ready and /keys reach the network only by an address */
        char lo[300];
        snprintf(lo, sizeof(lo), "127.0.0.1%s", v->str);
        if (v->str[0] == ':' && eg_hostport_parse(lo, &cfg->admin_listen) != 0)
            return ERR(c, v, "invalid address '%s'", v->str);
        cfg->has_admin = 1;
    }
    return EG_OK;
}

/* admin: the admin listener's own limits, so idle or slow admin clients
 * cannot take the process's descriptors and memory from the data plane,
 * and the dialect of its errors when it is not errors.dialect. */
static int load_admin(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"max_connections", "timeout", "dialect", NULL};
    int rc, iv;
    if ((rc = known_keys(c, n, "admin", keys))) return rc;
    const eg_ynode_t *v;
    /* after errors: (load_root's order), so declared dialects are known */
    if ((v = eg_ymap_get(n, "dialect")) &&
        (v->kind != EG_Y_SCALAR || !(cfg->admin_dialect = eg_dialects_get(cfg->dialects, v->str))))
        return ERR(c, v, "unknown dialect '%s'", v->kind == EG_Y_SCALAR ? v->str : "");
    if ((v = eg_ymap_get(n, "max_connections"))) {
        if ((rc = get_int(c, v, 1, 10000, &iv))) return rc;
        cfg->admin_max_connections = (uint64_t)iv;
    }
    if ((v = eg_ymap_get(n, "timeout"))) {
        if ((rc = get_duration(c, v, &cfg->admin_timeout_ms))) return rc;
        if (cfg->admin_timeout_ms == 0) return ERR(c, v, "timeout must be greater than zero");
    }
    return EG_OK;
}

/* ------------------------------------------------------------ openapi */

/* 1 when `full` is under the route path `p` (prefix: on a segment boundary). */
static int path_under(const char *p, int prefix, const char *full)
{
    size_t n = strlen(p);
    if (prefix && n && p[n - 1] == '/') n--;
    if (!prefix) return strcmp(p, full) == 0;
    if (n == 0) return 1;
    return strncmp(p, full, n) == 0 && (full[n] == '\0' || full[n] == '/');
}

/* The same route path to the router: "/pets/{a}" and "/pets/{b}" are. */
static int same_shape(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a == '{' && *b == '{') {
            while (*a && *a != '}') a++;
            while (*b && *b != '}') b++;
            continue;
        }
        if (*a++ != *b++) return 0;
    }
    return *a == *b;
}

/* The declared route that routing gives `full` to, were there no
 * documents: an exact one, else the longest prefix (routes[0..n)). */
static size_t owner_of(const eg_config_t *cfg, const char *full)
{
    size_t best = cfg->nroutes_declared, blen = 0;
    for (size_t i = 0; i < cfg->nroutes_declared; i++) {
        const eg_route_cfg_t *r = &cfg->routes[i];
        if (!path_under(r->path, r->prefix, full)) continue;
        if (!r->prefix) return i;
        size_t len = strlen(r->path);
        if (best == cfg->nroutes_declared || len > blen) {
            best = i;
            blen = len;
        }
    }
    return best;
}

static int append_route(eg_config_t *cfg, size_t *cap, size_t parent, const char *path, unsigned methods,
                        const eg_oa_op_t *op)
{
    if (cfg->nroutes == *cap) {
        size_t nc = *cap * 2 + 8;
        eg_route_cfg_t *p = realloc(cfg->routes, nc * sizeof(*p));
        if (!p) return EG_ENOMEM;
        cfg->routes = p;
        *cap = nc;
    }
    eg_route_cfg_t r = cfg->routes[parent];
    r.path = strdup(path);
    if (!r.path) return EG_ENOMEM;
    r.prefix = 0;
    r.methods = methods;
    r.oa_op = op;
    r.oa_catchall = 0;
    r.borrowed = 1;
    r.rl_policy = NULL;
    r.validate = NULL;
    r.oa_index = NULL;
    r.scope_path = cfg->routes[parent].path; /* a string realloc does not move */
    cfg->routes[cfg->nroutes++] = r;
    return EG_OK;
}

/* The operations of route `ri`'s document become routes: each at the
 * route's path (unless it is "/") followed by the document's path, or at
 * the server base path followed by it (a route at "/", an upstream's
 * document: the document's own URLs, which errgate forwards unchanged).
 * The declared route stays behind them for the rest of its prefix. */
static int expand_openapi(cctx_t *c, eg_config_t *cfg, size_t ri, size_t *cap, const eg_ynode_t *node)
{
    eg_openapi_t *oa = cfg->routes[ri].openapi;
    const char *rpath = cfg->routes[ri].path;
    int rprefix = cfg->routes[ri].prefix, pass = cfg->routes[ri].oa_use.pass;
    unsigned rmethods = cfg->routes[ri].methods;
    char mount[1024] = "";
    int use_base = 1;
    if (!cfg->routes[ri].oa_from_upstream && strcmp(rpath, "/") != 0) {
        snprintf(mount, sizeof(mount), "%s", rpath);
        size_t ml = strlen(mount);
        if (ml && mount[ml - 1] == '/') mount[ml - 1] = '\0';
        use_base = 0;
    }
    size_t first = cfg->nroutes, security = 0, outside = 0;
    const eg_oa_op_t *sec_op = NULL;
    for (size_t i = 0; i < eg_openapi_nops(oa); i++) {
        const eg_oa_op_t *op = eg_openapi_op(oa, i);
        char full[2048];
        int k = snprintf(full, sizeof(full), "%s%s%s", mount, use_base ? op->base : "", op->path);
        if (k < 0 || (size_t)k >= sizeof(full)) return ERR(c, node, "openapi: the path %s is too long", op->path);
        if (!path_under(rpath, rprefix, full)) {
            outside++;
            continue;
        }
        /* a more specific declared route has the path (an exact one, a
         * longer prefix): the operation is that route's to serve */
        if (owner_of(cfg, full) != ri) continue;
        unsigned m = op->method_bit;
        if (m == EG_M_GET) { /* GET answers HEAD too, unless the document says HEAD itself */
            int head = 0;
            for (size_t j = 0; j < eg_openapi_nops(oa); j++) {
                const eg_oa_op_t *o = eg_openapi_op(oa, j);
                head |= o->method_bit == EG_M_HEAD && same_shape(o->path, op->path) && strcmp(o->base, op->base) == 0;
            }
            if (!head) m |= EG_M_HEAD;
        }
        if (rmethods) m &= rmethods;
        if (!m) continue;
        for (size_t j = first; j < cfg->nroutes; j++)
            if (same_shape(cfg->routes[j].path, full) && (cfg->routes[j].methods & m))
                return ERR(c, node, "openapi: %s %s: two operations of the document on one route", op->method, full);
        int rc = append_route(cfg, cap, ri, full, m, op);
        if (rc) return rc;
        char derr[512] = "";
        const eg_openapi_use_t *use = &cfg->routes[ri].oa_use;
        if ((rc = eg_openapi_validation(oa, op, use->max_body, use->status, &cfg->routes[cfg->nroutes - 1].validate,
                                        derr, sizeof(derr))))
            return rc == EG_ENOMEM ? rc : ERR(c, node, "openapi: %s", derr);
        if (op->security && cfg->routes[ri].auth == EG_AUTHN_NONE && !security++) sec_op = op;
    }
    size_t last = cfg->nroutes;
    if (pass) {
        /* a declared path's other methods reach the upstream unchecked */
        for (size_t j = first; j < last; j++) {
            unsigned all = 0;
            size_t k = first;
            /* by shape: /x/{a} (GET) and /x/{b} (PUT) are one path */
            while (k < j && !same_shape(cfg->routes[k].path, cfg->routes[j].path))
                k++;
            if (k < j) continue; /* that path is done */
            for (k = j; k < last; k++)
                if (same_shape(cfg->routes[k].path, cfg->routes[j].path)) all |= cfg->routes[k].methods;
            unsigned rest = (rmethods ? rmethods : EG_M_ALL) & ~all;
            if (!rest) continue;
            char tmp[2048];
            snprintf(tmp, sizeof(tmp), "%s", cfg->routes[j].path);
            int rc = append_route(cfg, cap, ri, tmp, rest, NULL);
            if (rc) return rc;
        }
    } else {
        cfg->routes[ri].oa_catchall = 1;
    }
    /* the operations' routes by path, for the route stage once the router
     * has picked this route */
    if (cfg->nroutes > first) {
        eg_ptrie_t *t = NULL;
        int rc = eg_ptrie_new(&t);
        for (size_t j = first; !rc && j < cfg->nroutes; j++)
            rc = eg_ptrie_add(t, cfg->routes[j].path, cfg->routes[j].methods, j);
        if (rc) {
            eg_ptrie_free(t);
            return rc == EG_ENOMEM ? rc : ERR(c, node, "openapi: the operations' paths cannot be indexed");
        }
        cfg->routes[ri].oa_index = t;
    }
    if (sec_op)
        eg_openapi_warn(oa, sec_op->doc, sec_op->at,
                        "%zu operation(s) declare security (the first: %s %s%s) but the route %s has no auth: "
                        "the gateway authenticates from the route's auth:, not from the document",
                        security, sec_op->method, sec_op->base, sec_op->path, rpath);
    if (outside && last == first)
        eg_openapi_warn(oa, c->doc, node, "none of the document's %zu operations is under the route %s%s",
                        eg_openapi_nops(oa), rpath,
                        pass ? "" : ": with unknown: reject, every request to it is 404 not_found");
    return EG_OK;
}

/* ------------------------------------------------------------ alerts */

/* A fraction written as "5%" or as a number from 0 to 1. */
static int get_fraction(cctx_t *c, const eg_ynode_t *n, double *out)
{
    char *end = NULL;
    double d = n && n->kind == EG_Y_SCALAR ? strtod(n->str, &end) : -1;
    if (end && end != n->str && *end == '%' && end[1] == '\0')
        d /= 100;
    else if (!end || end == n->str || *end)
        d = -1;
    if (!(d >= 0 && d <= 1))
        return ERR(c, n, "invalid fraction '%s' (use e.g. 5%%, 0.5%% or 0.05)",
                   n && n->kind == EG_Y_SCALAR ? n->str : "");
    *out = d;
    return EG_OK;
}

/* A duration in whole seconds from 1s to 1h (a window). */
static int get_window(cctx_t *c, const eg_ynode_t *n, uint32_t *out)
{
    uint64_t ms;
    int rc = get_duration(c, n, &ms);
    if (rc) return rc;
    if (ms < 1000 || ms > EG_MONITOR_MAX_WINDOW_S * 1000ull || ms % 1000)
        return ERR(c, n, "a window is whole seconds from 1s to 1h");
    *out = (uint32_t)(ms / 1000);
    return EG_OK;
}

/* One alerts.rules item: a new rule, or one of the defaults (same name)
 * with what it sets changed. */
static int load_alert_rule(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"name",   "match", "route",    "threshold", "resolve",
                                       "min_requests", "window", "for", "severity",  NULL};
    int rc;
    if ((rc = known_keys(c, n, "an alert rule", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "name");
    if (!v || v->kind != EG_Y_SCALAR || v->len == 0 || v->len >= EG_ALERT_NAME_MAX - 1)
        return ERR(c, v ? v : n, "an alert rule needs a name (lowercase letters, digits, '_')");
    for (size_t k = 0; k < v->len; k++)
        if (!((v->str[k] >= 'a' && v->str[k] <= 'z') || (v->str[k] >= '0' && v->str[k] <= '9') ||
              v->str[k] == '_'))
            return ERR(c, v, "alert rule name '%s': use lowercase letters, digits and '_'", v->str);
    eg_alert_rule_t *r = NULL;
    for (size_t i = 0; i < cfg->nalert_rules; i++)
        if (strcmp(cfg->alert_rules[i].name, v->str) == 0) r = &cfg->alert_rules[i];
    int fresh = !r;
    if (fresh) {
        eg_alert_rule_t *more =
            realloc(cfg->alert_rules, (cfg->nalert_rules + 1) * sizeof(*cfg->alert_rules));
        if (!more) return EG_ENOMEM;
        cfg->alert_rules = more;
        r = &cfg->alert_rules[cfg->nalert_rules];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", v->str);
        r->route = EG_ALERT_EACH;
        r->min_requests = 20;
        r->window_s = 60;
        r->for_ms = 30000;
        r->severity = EG_ALERT_WARNING;
        r->resolve = -1;
    }
    if ((v = eg_ymap_get(n, "match"))) {
        if (v->kind != EG_Y_SCALAR || v->len >= sizeof(r->match_text) ||
            eg_alert_match_parse(v->str, &r->match) != EG_OK)
            return ERR(c, v,
                       "invalid match '%s' (use errors, a class like 5xx, a status like 429, or a "
                       "list: 401,403)",
                       v->kind == EG_Y_SCALAR ? v->str : "");
        snprintf(r->match_text, sizeof(r->match_text), "%s", v->str);
    } else if (fresh) {
        return ERR(c, n, "alert rule %s needs a match (errors, 5xx, 429, 401,403, ...)", r->name);
    }
    if ((v = eg_ymap_get(n, "threshold"))) {
        double old = r->threshold;
        if ((rc = get_fraction(c, v, &r->threshold))) return rc;
        /* a default's resolve follows a changed threshold unless set */
        if (!fresh && r->resolve == old / 2) r->resolve = r->threshold / 2;
    } else if (fresh) {
        return ERR(c, n, "alert rule %s needs a threshold (e.g. 5%%)", r->name);
    }
    if ((v = eg_ymap_get(n, "resolve"))) {
        if ((rc = get_fraction(c, v, &r->resolve))) return rc;
        if (r->resolve > r->threshold)
            return ERR(c, v, "resolve must not be above the threshold (it is the lower one)");
    }
    if (r->resolve < 0) r->resolve = r->threshold / 2;
    if ((v = eg_ymap_get(n, "route"))) {
        if (v->kind != EG_Y_SCALAR) return ERR(c, v, "route: each, all or a route's path");
        if (strcmp(v->str, "each") == 0) {
            r->route = EG_ALERT_EACH;
        } else if (strcmp(v->str, "all") == 0) {
            r->route = EG_ALERT_ALL;
        } else {
            long found = -1;
            for (size_t i = 0; i < cfg->nroutes && found < 0; i++)
                if (cfg->routes[i].path && strcmp(cfg->routes[i].path, v->str) == 0)
                    found = (long)i;
            if (found < 0)
                return ERR(c, v, "no route has the path '%s' (route: each, all or a route's path)",
                           v->str);
            r->route = found;
        }
    }
    if ((v = eg_ymap_get(n, "min_requests"))) {
        int iv;
        if ((rc = get_int(c, v, 1, 1000000000, &iv))) return rc;
        r->min_requests = (uint32_t)iv;
    }
    if ((v = eg_ymap_get(n, "window")) && (rc = get_window(c, v, &r->window_s))) return rc;
    if ((v = eg_ymap_get(n, "for")) && (rc = get_duration(c, v, &r->for_ms))) return rc;
    if ((v = eg_ymap_get(n, "severity"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "critical") == 0)
            r->severity = EG_ALERT_CRITICAL;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "warning") == 0)
            r->severity = EG_ALERT_WARNING;
        else if (v->kind == EG_Y_SCALAR && strcmp(v->str, "info") == 0)
            r->severity = EG_ALERT_INFO;
        else
            return ERR(c, v, "severity: critical, warning or info");
    }
    if (fresh) cfg->nalert_rules++;
    return EG_OK;
}

static int load_webhook(cctx_t *c, const eg_ynode_t *n, eg_webhook_cfg_t *w)
{
    static const char *const keys[] = {"url",     "format",       "secret_file", "secret_env",
                                       "timeout", "max_attempts", NULL};
    int rc;
    w->timeout_ms = 5000;
    w->max_attempts = 5;
    if ((rc = known_keys(c, n, "a webhook", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(n, "url");
    if (!v) return ERR(c, n, "a webhook needs a url (http:// or https://)");
    if ((rc = get_str(c, v, &w->url))) return rc;
    if (strncmp(w->url, "http://", 7) != 0 && strncmp(w->url, "https://", 8) != 0)
        return ERR(c, v, "a webhook url starts with http:// or https://");
    for (const char *p = w->url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return ERR(c, v, "a webhook url has no spaces or control characters");
    if ((v = eg_ymap_get(n, "format"))) {
        if (v->kind == EG_Y_SCALAR && strcmp(v->str, "alertmanager") == 0)
            w->alertmanager = 1;
        else if (!(v->kind == EG_Y_SCALAR && strcmp(v->str, "json") == 0))
            return ERR(c, v, "format: json or alertmanager");
    }
    const eg_ynode_t *f = eg_ymap_get(n, "secret_file"), *e = eg_ymap_get(n, "secret_env");
    if ((f || e) && (rc = get_secret(c, f, e, &w->secret, &w->secret_len))) return rc;
    if ((v = eg_ymap_get(n, "timeout"))) {
        if ((rc = get_duration(c, v, &w->timeout_ms))) return rc;
        if (w->timeout_ms == 0) return ERR(c, v, "timeout must be greater than zero");
    }
    if ((v = eg_ymap_get(n, "max_attempts")) && (rc = get_int(c, v, 1, 20, &w->max_attempts)))
        return rc;
    return EG_OK;
}

/* alerts: after routes (a rule may name one). */
static int load_alerts(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"enabled", "defaults", "windows", "evaluate_every",
                                       "rules",   "webhooks", NULL};
    int rc, defaults = 1;
    if ((rc = known_keys(c, n, "alerts", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "enabled")) && (rc = get_bool(c, v, &cfg->alerts_enabled))) return rc;
    if ((v = eg_ymap_get(n, "defaults")) && (rc = get_bool(c, v, &defaults))) return rc;
    if (!defaults) cfg->nalert_rules = 0;
    if ((v = eg_ymap_get(n, "windows"))) {
        if (v->kind != EG_Y_SEQ || v->n == 0 || v->n > 4)
            return ERR(c, v, "windows: a list of 1 to 4 durations, e.g. [1m, 5m]");
        cfg->nalert_windows = 0;
        for (size_t i = 0; i < v->n; i++)
            if ((rc = get_window(c, v->items[i], &cfg->alert_windows[cfg->nalert_windows++])))
                return rc;
    }
    if ((v = eg_ymap_get(n, "evaluate_every"))) {
        if ((rc = get_duration(c, v, &cfg->alert_interval_ms))) return rc;
        if (cfg->alert_interval_ms < 100 || cfg->alert_interval_ms > 60000)
            return ERR(c, v, "evaluate_every is from 100ms to 1m");
    }
    if ((v = eg_ymap_get(n, "rules"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "rules: a list of {name, match, threshold, ...}");
        for (size_t i = 0; i < v->n; i++)
            if ((rc = load_alert_rule(c, v->items[i], cfg))) return rc;
    }
    if ((v = eg_ymap_get(n, "webhooks"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "webhooks: a list of {url, format, ...}");
        if (!(cfg->webhooks = calloc(v->n ? v->n : 1, sizeof(*cfg->webhooks)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            cfg->nwebhooks++;
            if ((rc = load_webhook(c, v->items[i], &cfg->webhooks[i]))) return rc;
        }
    }
    char msg[256];
    if (eg_alert_rules_check(cfg->alert_rules, cfg->nalert_rules, cfg->nroutes, msg,
                             sizeof(msg)) != EG_OK)
        return ERR(c, n, "%s", msg);
    return EG_OK;
}

/* The metering path needs a route that serves it (its auth, limits and
 * dialect apply) and that authenticates callers (the scope is theirs). */
static int check_metering_route(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    size_t pl = strlen(cfg->meter_path);
    const eg_route_cfg_t *best = NULL; /* the router's pick: exact, else the longest prefix */
    for (size_t i = 0; i < cfg->nroutes_declared; i++) {
        const eg_route_cfg_t *r = &cfg->routes[i];
        size_t tl = r->path ? strlen(r->path) : 0;
        if (r->prefix && tl > 1 && r->path[tl - 1] == '/') tl--; /* "/v1/" covers "/v1/meter" */
        if (!r->path || (r->methods && !(r->methods & EG_M_POST)) ||
            !eg_path_template_match(r->path, tl, cfg->meter_path, pl, r->prefix, NULL, 0, NULL))
            continue;
        if (!best || (best->prefix && !r->prefix) ||
            (best->prefix == r->prefix && strlen(r->path) > strlen(best->path)))
            best = r;
    }
    if (best && (best->auth == EG_AUTHN_NONE || best->auth_optional))
        return ERR(c, n,
                   "metering.path %s is served by the route %s, which does not require "
                   "auth (the metering API needs callers with scope %s)",
                   cfg->meter_path, best->path, cfg->meter_scope);
    if (best && cfg->store_backend != EG_STORE_SQLITE && !cfg->has_redis)
        return ERR(c, n,
                   "metering needs the sqlite store or redis: event ids are deduplicated "
                   "durably, across workers and restarts");
    if (best) return EG_OK;
    return ERR(c, n,
               "metering.path %s: no route serves POST %s; declare one with auth "
               "(its rate limits and dialect apply to the metering API)",
               cfg->meter_path, cfg->meter_path);
}

/* Each section, upstream and route is checked even when an earlier one was
 * bad (see problem()); the result is EG_OK only when none was. */
/* http2: the limits of each HTTP/2 connection; every one has a default
 * (docs/http2.md), max_header_list_size limits.max_header_size's. */
static int load_http2(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"max_concurrent_streams", "max_header_list_size", "initial_window_size",
                                       "connection_window_size", "max_resets", "reset_window",
                                       "max_continuations", "max_settings", "max_outbound_ack", NULL};
    eg_http2_cfg_t *h = &cfg->http2;
    *h = (eg_http2_cfg_t){128, cfg->limits.max_header_size, 256 * 1024, 1024 * 1024, 200, 10000, 8, 32, 1000};
    if (!n) return EG_OK;
    int rc;
    if ((rc = known_keys(c, n, "http2", keys))) return rc;
    static const struct {
        const char *key;
        size_t off;
        int size;
        uint64_t min, max;
    } f[] = {
        {"max_concurrent_streams", offsetof(eg_http2_cfg_t, max_concurrent_streams), 0, 1, 65536},
        {"max_header_list_size", offsetof(eg_http2_cfg_t, max_header_list_size), 1, 256, 1u << 20},
        {"initial_window_size", offsetof(eg_http2_cfg_t, initial_window_size), 1, 1024, 0x7fffffff},
        {"connection_window_size", offsetof(eg_http2_cfg_t, connection_window_size), 1, 65535, 0x7fffffff},
        {"max_resets", offsetof(eg_http2_cfg_t, max_resets), 0, 1, 1000000},
        {"max_continuations", offsetof(eg_http2_cfg_t, max_continuations), 0, 1, 1000},
        {"max_settings", offsetof(eg_http2_cfg_t, max_settings), 0, 1, 1000},
        {"max_outbound_ack", offsetof(eg_http2_cfg_t, max_outbound_ack), 0, 1, 1000000},
    };
    const eg_ynode_t *v;
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!(v = eg_ymap_get(n, f[i].key))) continue;
        uint64_t *out = (uint64_t *)((char *)h + f[i].off);
        if (f[i].size) {
            if ((rc = get_size(c, v, out))) return rc;
        } else {
            int k;
            if ((rc = get_int(c, v, (long long)f[i].min, (long long)f[i].max, &k))) return rc;
            *out = (uint64_t)k;
        }
        if (*out < f[i].min || *out > f[i].max)
            return ERR(c, v, "%s must be %llu..%llu", f[i].key, (unsigned long long)f[i].min,
                       (unsigned long long)f[i].max);
    }
    if ((v = eg_ymap_get(n, "reset_window")) && (rc = get_duration(c, v, &h->reset_window_ms))) return rc;
    if (h->reset_window_ms == 0) return ERR(c, v, "reset_window must be more than 0");
    return EG_OK;
}

static int load_root(cctx_t *c, const eg_ynode_t *root, eg_config_t *cfg)
{
    static const char *const keys[] = {"listen", "admin_listen", "admin", "workers", "errors", "limits",
                                       "log", "request_id", "upstreams", "routes", "store", "auth",
                                       "plans", "rate_limits", "redis", "path", "request", "cors",
                                       "metrics", "health_path", "alerts", "metering", "http2", NULL};
    int rc;
    if (!root) return ERR(c, NULL, "the configuration is empty");
    if (root->kind != EG_Y_MAP) return known_keys(c, root, "the configuration", keys);
    if ((rc = problem(c, known_keys(c, root, "the configuration", keys)))) return rc;
    if ((rc = problem(c, load_listen(c, root, cfg)))) return rc;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cores > 0 ? (int)cores : 1;
    const eg_ynode_t *v = eg_ymap_get(root, "workers");
    if (v && !(v->kind == EG_Y_SCALAR && strcmp(v->str, "auto") == 0) &&
        (rc = problem(c, get_int(c, v, 1, 256, &cfg->workers))))
        return rc;
    if ((rc = problem(c, load_errors(c, eg_ymap_get(root, "errors"), cfg)))) return rc;
    if ((v = eg_ymap_get(root, "limits")) && (rc = problem(c, load_limits(c, v, &cfg->limits)))) return rc;
    if ((rc = problem(c, load_http2(c, eg_ymap_get(root, "http2"), cfg)))) return rc;
    if ((v = eg_ymap_get(root, "admin")) && (rc = problem(c, load_admin(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "metrics")) && (rc = problem(c, load_metrics(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "health_path"))) {
        if (v->kind != EG_Y_SCALAR || v->str[0] != '/' || strpbrk(v->str, "?#* \t") || v->len > 200) {
            if ((rc = problem(c, ERR(c, v, "health_path must be a path like /health")))) return rc;
        } else if ((rc = problem(c, get_str(c, v, &cfg->health_path)))) {
            return rc;
        }
    }
    if ((v = eg_ymap_get(root, "log")) && (rc = problem(c, load_log(c, v, cfg)))) return rc;
    cfg->path_normalize = cfg->path_merge_slashes = cfg->path_reject_encoded_slash = 1;
    cfg->buffer_body = EG_BUFFER_BODY_MAX;
    if ((v = eg_ymap_get(root, "path")) && (rc = problem(c, load_path(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "store")) && (rc = problem(c, load_store(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "auth")) && (rc = problem(c, load_auth(c, v, cfg)))) return rc;
    for (size_t i = 0; i < cfg->nlog_headers; i++) /* the key header is known now */
        if (cfg->key_header && strcasecmp(cfg->log_headers[i], cfg->key_header) == 0 &&
            (rc = problem(c, ERR(c, eg_ymap_get(eg_ymap_get(root, "log"), "request_headers"),
                                 "request_headers: '%s' is the API key header and is never logged",
                                 cfg->log_headers[i]))))
            return rc;
    /* after auth: forward_trailers may not name the configured key header */
    if ((v = eg_ymap_get(root, "request")) && (rc = problem(c, load_request(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "plans")) && (rc = problem(c, load_plans(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "rate_limits")) && (rc = problem(c, load_rate_limits(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "redis")) && (rc = problem(c, load_redis(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "metering")) && (rc = problem(c, load_metering(c, v, cfg)))) return rc;
    if (cfg->store_backend == EG_STORE_SQLITE && !cfg->store_path) {
        size_t len = (c->dir ? strlen(c->dir) : 1) + sizeof("/errgate.db");
        if (!(cfg->store_path = malloc(len))) return EG_ENOMEM;
        snprintf(cfg->store_path, len, "%s/errgate.db", c->dir ? c->dir : ".");
    }
    if ((v = eg_ymap_get(root, "request_id")) && (rc = problem(c, load_request_id(c, v, cfg)))) return rc;
    if ((v = eg_ymap_get(root, "cors")) && (rc = problem(c, load_cors(c, v, &cfg->cors)))) return rc;
    v = eg_ymap_get(root, "upstreams");
    if (!v || v->kind != EG_Y_MAP || v->n == 0) {
        if ((rc = problem(c, ERR(c, v ? v : root, "missing 'upstreams:' (a map of name: {servers: [...]})"))))
            return rc;
    } else {
        if (!(cfg->upstreams = calloc(v->n, sizeof(*cfg->upstreams)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            cfg->nupstreams++;
            if ((rc = problem(c, load_upstream(c, v->items[2 * i], v->items[2 * i + 1], cfg, &cfg->upstreams[i]))))
                return rc;
        }
    }
    v = eg_ymap_get(root, "routes");
    if (!v || v->kind != EG_Y_SEQ || v->n == 0) {
        if ((rc = problem(c, ERR(c, v ? v : root, "missing 'routes:' (a list of {path, upstream, ...})"))))
            return rc;
        return c->nproblems ? c->first_rc : EG_OK;
    }
    /* a route that did not load is left out of the duplicate check: its
     * path and methods may be half set */
    unsigned char *bad = calloc(v->n, 1);
    if (!bad || !(cfg->routes = calloc(v->n, sizeof(*cfg->routes)))) {
        free(bad);
        return EG_ENOMEM;
    }
    for (size_t i = 0; i < v->n; i++) {
        cfg->nroutes++;
        const int before = c->nproblems;
        if ((rc = problem(c, load_route(c, v->items[i], cfg, &cfg->routes[i])))) goto out;
        if (c->nproblems != before) {
            bad[i] = 1;
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            const eg_route_cfg_t *a = &cfg->routes[j], *b = &cfg->routes[i];
            if (!bad[j] && a->prefix == b->prefix && strcmp(a->path, b->path) == 0 &&
                (!a->methods || !b->methods || (a->methods & b->methods))) {
                if ((rc = problem(c, ERR(c, v->items[i], "route %s duplicates the route at line %d", b->path,
                                         v->items[j]->line))))
                    goto out;
                bad[i] = 1;
                break;
            }
        }
    }
    /* the documents' operations, after every declared route: the router
     * holds the declared ones, and each finds its operations through its
     * index (route stage) */
    cfg->nroutes_declared = cfg->nroutes;
    size_t cap = cfg->nroutes;
    for (size_t i = 0; i < cfg->nroutes_declared; i++)
        if (!bad[i] && cfg->routes[i].openapi &&
            (rc = problem(c, expand_openapi(c, cfg, i, &cap, v->items[i]))))
            goto out;
    if ((v = eg_ymap_get(root, "alerts")) && (rc = problem(c, load_alerts(c, v, cfg)))) goto out;
    if (cfg->meter_path && !c->nproblems &&
        (rc = problem(c, check_metering_route(c, eg_ymap_get(eg_ymap_get(root, "metering"), "path"), cfg))))
        goto out;
    /* the usage API answers under the route that covers its path: one that
     * knows who calls (its auth), the longest that matches */
    if (cfg->usage_path) {
        const eg_route_cfg_t *best = NULL;
        size_t up = strlen(cfg->usage_path);
        for (size_t i = 0; i < cfg->nroutes_declared; i++) {
            const eg_route_cfg_t *r = &cfg->routes[i];
            size_t rl = r->path ? strlen(r->path) : 0;
            if (!r->path || !(strcmp(r->path, cfg->usage_path) == 0 || (r->prefix && rl <= up && strncmp(cfg->usage_path, r->path, rl) == 0)))
                continue;
            if (!best || rl > strlen(best->path)) best = r;
        }
        const eg_ynode_t *mn = eg_ymap_get(eg_ymap_get(root, "metering"), "usage_path");
        if (!best && (rc = problem(c, ERR(c, mn, "metering.usage_path %s: no route covers it (declare one with auth:, "
                                                 "e.g. - {path: %s, upstream: ..., auth: api_key})",
                                          cfg->usage_path, cfg->usage_path))))
            goto out;
        if (best && (best->auth == EG_AUTHN_NONE || best->auth == EG_AUTHN_CERT) &&
            (rc = problem(c, ERR(c, mn, "metering.usage_path %s: its route %s needs auth: api_key, jwt or any "
                                        "(usage is the caller's own)", cfg->usage_path, best->path))))
            goto out;
    }
    /* usage is billed from it: kept in the SQLite file or Redis, never only in memory */
    if (cfg->uses_metering && !cfg->has_redis && cfg->store_backend != EG_STORE_SQLITE &&
        (rc = problem(c, ERR(c, eg_ymap_get(root, "store"),
                             "meter: needs a durable store: store.backend sqlite, or redis:"))))
        goto out;
    /* the sink copies what the SQLite usage writer commits (pg_sink.h) */
    if (cfg->metering_sink && cfg->has_redis &&
        (rc = problem(c, ERR(c, eg_ymap_get(eg_ymap_get(root, "metering"), "sink"),
                             "metering.sink copies the usage committed to SQLite: not available with redis: yet"))))
        goto out;
    rc = c->nproblems ? c->first_rc : EG_OK;
out:
    free(bad);
    return rc;
}

static eg_config_t *config_new(void)
{
    eg_config_t *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) return NULL;
    cfg->negotiate = 1;
    cfg->trust_request_id = 1;
    cfg->max_translate_body = 64 * 1024;
    cfg->limits = (eg_limits_t){.header_timeout_ms = 10000, .body_timeout_ms = 30000,
                                .idle_timeout_ms = 60000, .write_timeout_ms = 30000,
                                .max_header_size = 16384, .max_headers = 100, .max_uri = 8192,
                                .max_body_size = 10u << 20, .max_connections = 10000};
    /* credentials that clients put in query strings are never logged, unless
     * log.redact_query says otherwise */
    static const char *const redact[] = {"api_key", "apikey", "key", "token", "access_token", "secret", "password"};
    size_t nr = sizeof(redact) / sizeof(redact[0]);
    if (!(cfg->redact_query = calloc(nr + 1, sizeof(char *)))) {
        eg_config_free(cfg);
        return NULL;
    }
    for (size_t i = 0; i < nr; i++) {
        if (!(cfg->redact_query[i] = strdup(redact[i]))) {
            eg_config_free(cfg);
            return NULL;
        }
        cfg->nredact++;
    }
    cfg->store_backend = EG_STORE_SQLITE;
    cfg->rl_legacy_headers = cfg->rl_ietf_headers = 1;
    cfg->redis_timeout_ms = 50;
    cfg->metering_sink_queue = 1000000;
    eg_meter_rules_default(&cfg->meter_rules);
    cfg->meter_check_users = 1;
    cfg->meter_max_body = 4u << 20;
    if (!(cfg->meter_scope = strdup("meter:write"))) {
        eg_config_free(cfg);
        return NULL;
    }
    if (!(cfg->redis_prefix = strdup("errgate:"))) {
        eg_config_free(cfg);
        return NULL;
    }
    cfg->metrics_enabled = 1;
    {
        static const double dflt[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
        memcpy(cfg->metrics_buckets, dflt, sizeof(dflt));
        cfg->nmetrics_buckets = sizeof(dflt) / sizeof(dflt[0]);
    }
    cfg->admin_max_connections = 64;
    cfg->admin_timeout_ms = 10000;
    cfg->store_refresh_ms = 1000;
    cfg->store_busy_timeout_ms = 2000;
    cfg->store_commit_every = 256;
    cfg->store_commit_interval_ms = 50;
    if (!(cfg->quota_hdr_limit = strdup("X-Quota-Limit")) || !(cfg->quota_hdr_remaining = strdup("X-Quota-Remaining")) ||
        !(cfg->quota_hdr_reset = strdup("X-Quota-Reset"))) {
        eg_config_free(cfg);
        return NULL;
    }
    cfg->metering_commit_every = 1000;
    cfg->metering_commit_interval_ms = 100;
    cfg->metering_max_uncommitted = 10000;
    cfg->metering_retention_s = 400 * 86400;
    cfg->rotation_grace_ms = 24ull * 3600 * 1000;
    cfg->alerts_enabled = 1;
    cfg->alert_windows[0] = 60;
    cfg->alert_windows[1] = 300;
    cfg->nalert_windows = 2;
    cfg->alert_interval_ms = 1000;
    if (!(cfg->alert_rules = calloc(8, sizeof(*cfg->alert_rules)))) {
        eg_config_free(cfg);
        return NULL;
    }
    cfg->nalert_rules = eg_alert_rules_default(cfg->alert_rules, 8);
    if (eg_catalog_new_builtin(&cfg->catalog) || eg_dialects_new_builtin(&cfg->dialects) ||
        !(cfg->request_id_header = strdup("X-Request-ID")) || !(cfg->access_log = strdup("stderr")) ||
        !(cfg->error_log = strdup("stderr")) || !(cfg->key_header = strdup("X-API-Key")) ||
        !(cfg->realm = strdup("errgate"))) {
        eg_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void eg_config_free(eg_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nforward_trailers; i++) free(cfg->forward_trailers[i]);
    free(cfg->forward_trailers);
    for (size_t i = 0; i < cfg->nlisteners; i++) tls_listen_free(cfg->listeners[i].tls);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        free(cfg->upstreams[i].name);
        free(cfg->upstreams[i].servers);
        free(cfg->upstreams[i].host);
        free(cfg->upstreams[i].tls.ca);
        free(cfg->upstreams[i].tls.server_name);
        free(cfg->upstreams[i].tls.cert);
        free(cfg->upstreams[i].tls.key);
        free(cfg->upstreams[i].weights);
        free(cfg->upstreams[i].server_ids);
        free(cfg->upstreams[i].hash_header);
        free(cfg->upstreams[i].hc.path);
    }
    free(cfg->upstreams);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].path);
        free(cfg->routes[i].rl_policy);
        eg_validation_free(cfg->routes[i].validate); /* an operation's route has its own */
        if (cfg->routes[i].borrowed) continue; /* the rest is its declared route's */
        free(cfg->routes[i].maintenance_until);
        free(cfg->routes[i].maintenance_message);
        free(cfg->routes[i].maintenance_from);
        free(cfg->routes[i].maintenance_status_page);
        eg_route_cfg_t *r = &cfg->routes[i];
        for (size_t k = 0; k < r->nscopes; k++) free(r->scopes[k]);
        for (size_t k = 0; k < r->nscopes_any; k++) free(r->scopes_any[k]);
        free(r->scopes);
        free(r->scopes_any);
        free(r->allow_ips);
        free(r->allow_ips_text);
        for (size_t k = 0; k < r->nsubjects; k++) free(r->subjects[k]);
        free(r->subjects);
        free(r->limits);
        free(r->quota.upgrade_url);
        free(r->purchase_url);
        if (!r->borrowed) free(r->meter_event);
        eg_cors_policy_free(r->cors);
        eg_ptrie_free(r->oa_index);
        for (size_t k = 0; k < r->nupgrade_protocols; k++) free(r->upgrade_protocols[k]);
        free(r->upgrade_protocols);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nopenapis; i++) {
        eg_openapi_free(cfg->openapis[i]);
        free(cfg->openapi_paths[i]);
    }
    free(cfg->openapis);
    free(cfg->openapi_paths);
    for (size_t i = 0; i < cfg->nwarnings; i++) free(cfg->warnings[i]);
    free(cfg->warnings);
    eg_cors_policy_free(cfg->cors);
    for (size_t i = 0; i < cfg->nredact; i++) free(cfg->redact_query[i]);
    free(cfg->redact_query);
    for (size_t i = 0; i < cfg->nlog_headers; i++) free(cfg->log_headers[i]);
    free(cfg->log_headers);
    free(cfg->health_path);
    free(cfg->meter_path);
    free(cfg->meter_scope);
    for (size_t i = 0; i < cfg->nmeter_types; i++) free(cfg->meter_types[i]);
    free(cfg->meter_types);
    free(cfg->usage_path);
    free(cfg->quota_hdr_limit);
    free(cfg->quota_hdr_remaining);
    free(cfg->quota_hdr_reset);
    free(cfg->request_id_header);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg->path);
    eg_dialects_free(cfg->dialects);
    eg_catalog_free(cfg->catalog);
    free(cfg->store_path);
    free(cfg->redis_prefix);
    free(cfg->metering_sink);
    if (cfg->pepper) memset(cfg->pepper, 0, cfg->pepper_len);
    free(cfg->pepper);
    free(cfg->key_header);
    free(cfg->realm);
    free(cfg->contact);
    eg_jwt_keys_free(cfg->jwt_keys);
    for (size_t i = 0; i < cfg->nplans; i++) {
        free(cfg->plans[i].name);
        free(cfg->plans[i].limits);
        free(cfg->plans[i].quota.upgrade_url);
        free(cfg->plans[i].purchase_url);
    }
    free(cfg->plans);
    free(cfg->jwt_issuer);
    free(cfg->jwt_audience);
    free(cfg->jwt_scope_claim);
    free(cfg->alert_rules);
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        free(cfg->webhooks[i].url);
        if (cfg->webhooks[i].secret) memset(cfg->webhooks[i].secret, 0, cfg->webhooks[i].secret_len);
        free(cfg->webhooks[i].secret);
    }
    free(cfg->webhooks);
    free(cfg);
}

void eg_rate_policy_item(eg_sb_t *b, const eg_rate_limit_cfg_t *l, int first)
{
    if (!first) EG_SB_LIT(b, ", ");
    eg_sb_mem(b, "\"", 1);
    eg_sb_str(b, l->name);
    EG_SB_LIT(b, "\";q=");
    eg_sb_u64(b, l->gcra.limit);
    EG_SB_LIT(b, ";w=");
    eg_sb_u64(b, (l->gcra.window_ms + 999) / 1000);
}

/* The RateLimit-Policy value for a route's limits: the same on every
 * response of the route, so it is written once here, not per request. */
static int route_policy(eg_route_cfg_t *r)
{
    if (!r->nlimits) return EG_OK;
    size_t cap = r->nlimits * (sizeof(r->limits[0].name) + 48) + 1;
    char *out = malloc(cap);
    if (!out) return EG_ENOMEM;
    eg_sb_t b = eg_sb(out, cap);
    for (size_t i = 0; i < r->nlimits; i++) eg_rate_policy_item(&b, &r->limits[i], i == 0);
    if (b.over) {
        free(out);
        return EG_ERANGE;
    }
    r->rl_policy = out;
    r->rl_policy_len = b.len;
    return EG_OK;
}

/* A document's warnings join the configuration's (check-config, serve). */
static int collect_warnings(eg_config_t *cfg, const eg_openapi_t *oa)
{
    size_t n = eg_openapi_nwarnings(oa);
    if (!n) return EG_OK;
    char **w = realloc(cfg->warnings, (cfg->nwarnings + n) * sizeof(*w));
    if (!w) return EG_ENOMEM;
    cfg->warnings = w;
    for (size_t i = 0; i < n; i++) {
        if (!(w[cfg->nwarnings] = strdup(eg_openapi_warning(oa, i)))) return EG_ENOMEM;
        cfg->nwarnings++;
    }
    return EG_OK;
}

static const char *env_lookup(void *ctx, const char *name)
{
    (void)ctx;
    return getenv(name);
}

static int parse_doc(eg_ydoc_t *doc, const char *path, eg_config_t **out, char *err, size_t errlen)
{
    /* ${VAR} and ${VAR:-default} in any value (docs/configuration.md) */
    int erc = eg_ydoc_expand_env(doc, env_lookup, NULL, err, errlen);
    if (erc) {
        eg_ydoc_free(doc);
        return erc;
    }
    eg_config_t *cfg = config_new();
    if (!cfg) {
        eg_ydoc_free(doc);
        return EG_ENOMEM;
    }
    char *dircopy = path ? strdup(path) : NULL;
    char one[512] = "";
    cctx_t c = {doc, one, sizeof(one), dircopy ? dirname(dircopy) : NULL, err, errlen, 0, 0, 0, 0};
    if (errlen) err[0] = '\0';
    int rc = load_root(&c, eg_ydoc_root(doc), cfg);
    if (rc && !c.nproblems) {
        /* a problem that ends loading at once (an empty or non-map file, no memory) */
        snprintf(err, errlen, "%s", rc == EG_ENOMEM ? "out of memory" : one);
    } else if (c.nproblems > c.shown && errlen) {
        snprintf(err + c.used, errlen - c.used, "%s(%d more problems not shown)", c.used ? "\n" : "",
                 c.nproblems - c.shown);
    }
    for (size_t i = 0; !rc && i < cfg->nroutes; i++) rc = route_policy(&cfg->routes[i]);
    /* the CORS stage's per-request room: the longest lines any policy writes */
    for (size_t i = 0; !rc && i <= cfg->nroutes; i++) {
        const eg_cors_policy_t *p = i < cfg->nroutes ? cfg->routes[i].cors : cfg->cors;
        if (!p) continue;
        cfg->uses_cors = 1;
        if (eg_cors_headers_max(p) > cfg->cors_lines_max) cfg->cors_lines_max = eg_cors_headers_max(p);
    }
    if (!rc && path && !(cfg->path = strdup(path))) rc = EG_ENOMEM;
    for (size_t i = 0; !rc && i < cfg->nopenapis; i++) rc = collect_warnings(cfg, cfg->openapis[i]);
    free(dircopy);
    eg_ydoc_free(doc);
    if (rc) {
        eg_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return EG_OK;
}

int eg_config_parse(const char *text, size_t len, const char *name, eg_config_t **out, char *err,
                    size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_parse(text, len, name, &doc, err, errlen);
    return rc ? rc : parse_doc(doc, NULL, out, err, errlen);
}

int eg_config_load(const char *path, eg_config_t **out, char *err, size_t errlen)
{
    eg_ydoc_t *doc = NULL;
    int rc = eg_ydoc_load_file(path, &doc, err, errlen);
    return rc ? rc : parse_doc(doc, path, out, err, errlen);
}

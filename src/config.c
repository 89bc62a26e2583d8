/* config.c - loading and validating the gateway configuration (see config.h).
 *
 * The YAML tree keeps positions, so every check can say where the problem
 * is. Each section has a small function that knows its keys; unknown keys
 * are errors, because a misspelt "timeout" silently ignored is an outage.
 */
#define _XOPEN_SOURCE 700 /* strptime */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errgate/units.h"
#include "ytree.h"

typedef struct {
    const eg_ydoc_t *doc;
    char *err;
    size_t errlen;
    char *dir; /* directory of the config file, for relative paths */
} cctx_t;

#define ERR(c, node, ...) eg_yerr((c)->doc, (node), (c)->err, (c)->errlen, __VA_ARGS__)

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

static int load_errors(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"dialect", "negotiate", "expose_internal", "docs_url",
                                       "catalog", "dialects", "max_translate_body", NULL};
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
        if (v->kind != EG_Y_SCALAR || !strstr(v->str, "{code}"))
            return ERR(c, v, "docs_url must be a URL template containing {code}");
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

static int load_log(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg)
{
    static const char *const keys[] = {"access", "errors", "redact_query", NULL};
    int rc;
    if ((rc = known_keys(c, n, "log", keys))) return rc;
    const eg_ynode_t *v;
    if ((v = eg_ymap_get(n, "access")) && (rc = get_str(c, v, &cfg->access_log))) return rc;
    if ((v = eg_ymap_get(n, "errors")) && (rc = get_str(c, v, &cfg->error_log))) return rc;
    if ((v = eg_ymap_get(n, "redact_query"))) {
        if (v->kind != EG_Y_SEQ) return ERR(c, v, "redact_query must be a list of parameter names");
        if (!(cfg->redact_query = calloc(v->n + 1, sizeof(char *)))) return EG_ENOMEM;
        for (size_t i = 0; i < v->n; i++) {
            if ((rc = get_str(c, v->items[i], &cfg->redact_query[i]))) return rc;
            cfg->nredact++;
        }
    }
    return EG_OK;
}

static int load_upstream(cctx_t *c, const eg_ynode_t *k, const eg_ynode_t *n, eg_upstream_cfg_t *u)
{
    static const char *const keys[] = {"servers", "connect_timeout", "timeout", "retries",
                                       "retry_non_idempotent", "max_fails", "fail_timeout",
                                       "keepalive", "keepalive_timeout", "host", NULL};
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
    if (!(u->servers = calloc(v->n, sizeof(*u->servers)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        if ((rc = get_hostport(c, v->items[i], &u->servers[i]))) return rc;
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
    return EG_OK;
}

static int load_route(cctx_t *c, const eg_ynode_t *n, eg_config_t *cfg, eg_route_cfg_t *r)
{
    static const char *const keys[] = {"path", "match", "methods", "upstream", "maintenance",
                                       "normalize", "auth", "dialect", NULL};
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
    if (u == cfg->nupstreams) return ERR(c, v, "unknown upstream '%s'", v->str);
    r->upstream = u;
    if ((v = eg_ymap_get(n, "normalize")) && (rc = get_bool(c, v, &r->normalize))) return rc;
    if ((v = eg_ymap_get(n, "auth"))) {
        if (v->kind != EG_Y_SCALAR || (strcmp(v->str, "none") && strcmp(v->str, "api_key") &&
                                       strcmp(v->str, "jwt") && strcmp(v->str, "any")))
            return ERR(c, v, "auth must be none, api_key, jwt or any");
        if (strcmp(v->str, "none") != 0)
            return ERR(c, v, "auth '%s' is not available in this version (only none)", v->str);
        if ((rc = get_str(c, v, &r->auth))) return rc;
    }
    if ((v = eg_ymap_get(n, "dialect"))) {
        if (v->kind != EG_Y_SCALAR || !(r->dialect = eg_dialects_get(cfg->dialects, v->str)))
            return ERR(c, v, "unknown dialect '%s'", v->kind == EG_Y_SCALAR ? v->str : "");
    }
    if ((v = eg_ymap_get(n, "maintenance"))) {
        static const char *const mk[] = {"enabled", "until", "retry_after", "message", NULL};
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
    return EG_OK;
}

static int load_root(cctx_t *c, const eg_ynode_t *root, eg_config_t *cfg)
{
    static const char *const keys[] = {"listen", "admin_listen", "workers", "errors", "limits",
                                       "log", "request_id", "upstreams", "routes", "store", NULL};
    int rc;
    if (!root) return ERR(c, NULL, "the configuration is empty");
    if ((rc = known_keys(c, root, "the configuration", keys))) return rc;
    const eg_ynode_t *v = eg_ymap_get(root, "listen");
    if (!v) return ERR(c, root, "missing 'listen: host:port'");
    if ((rc = get_hostport(c, v, &cfg->listen))) return rc;
    if ((v = eg_ymap_get(root, "admin_listen"))) {
        if ((rc = get_hostport(c, v, &cfg->admin_listen))) return rc;
        cfg->has_admin = 1;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = cores > 0 ? (int)cores : 1;
    if ((v = eg_ymap_get(root, "workers")) && !(v->kind == EG_Y_SCALAR && strcmp(v->str, "auto") == 0))
        if ((rc = get_int(c, v, 1, 256, &cfg->workers))) return rc;
    if ((rc = load_errors(c, eg_ymap_get(root, "errors"), cfg))) return rc;
    if ((v = eg_ymap_get(root, "limits")) && (rc = load_limits(c, v, &cfg->limits))) return rc;
    if ((v = eg_ymap_get(root, "log")) && (rc = load_log(c, v, cfg))) return rc;
    if ((v = eg_ymap_get(root, "store")))
        return ERR(c, v, "store is not available in this version");
    if ((v = eg_ymap_get(root, "request_id"))) {
        static const char *const rk[] = {"header", "trust_inbound", NULL};
        if ((rc = known_keys(c, v, "request_id", rk))) return rc;
        const eg_ynode_t *x;
        if ((x = eg_ymap_get(v, "header")) && (rc = get_str(c, x, &cfg->request_id_header))) return rc;
        if ((x = eg_ymap_get(v, "trust_inbound")) && (rc = get_bool(c, x, &cfg->trust_request_id)))
            return rc;
    }
    v = eg_ymap_get(root, "upstreams");
    if (!v || v->kind != EG_Y_MAP || v->n == 0)
        return ERR(c, v ? v : root, "missing 'upstreams:' (a map of name: {servers: [...]})");
    if (!(cfg->upstreams = calloc(v->n, sizeof(*cfg->upstreams)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        cfg->nupstreams++;
        if ((rc = load_upstream(c, v->items[2 * i], v->items[2 * i + 1], &cfg->upstreams[i]))) return rc;
    }
    v = eg_ymap_get(root, "routes");
    if (!v || v->kind != EG_Y_SEQ || v->n == 0)
        return ERR(c, v ? v : root, "missing 'routes:' (a list of {path, upstream, ...})");
    if (!(cfg->routes = calloc(v->n, sizeof(*cfg->routes)))) return EG_ENOMEM;
    for (size_t i = 0; i < v->n; i++) {
        cfg->nroutes++;
        if ((rc = load_route(c, v->items[i], cfg, &cfg->routes[i]))) return rc;
        for (size_t j = 0; j < i; j++) {
            const eg_route_cfg_t *a = &cfg->routes[j], *b = &cfg->routes[i];
            if (a->prefix == b->prefix && strcmp(a->path, b->path) == 0 &&
                (!a->methods || !b->methods || (a->methods & b->methods)))
                return ERR(c, v->items[i], "route %s duplicates the route at line %d", b->path,
                           v->items[j]->line);
        }
    }
    return EG_OK;
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
    if (eg_catalog_new_builtin(&cfg->catalog) || eg_dialects_new_builtin(&cfg->dialects) ||
        !(cfg->request_id_header = strdup("X-Request-ID")) || !(cfg->access_log = strdup("stderr")) ||
        !(cfg->error_log = strdup("stderr"))) {
        eg_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void eg_config_free(eg_config_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        free(cfg->upstreams[i].name);
        free(cfg->upstreams[i].servers);
        free(cfg->upstreams[i].host);
    }
    free(cfg->upstreams);
    for (size_t i = 0; i < cfg->nroutes; i++) {
        free(cfg->routes[i].path);
        free(cfg->routes[i].maintenance_until);
        free(cfg->routes[i].maintenance_message);
        free(cfg->routes[i].auth);
    }
    free(cfg->routes);
    for (size_t i = 0; i < cfg->nredact; i++) free(cfg->redact_query[i]);
    free(cfg->redact_query);
    free(cfg->request_id_header);
    free(cfg->access_log);
    free(cfg->error_log);
    free(cfg->path);
    eg_dialects_free(cfg->dialects);
    eg_catalog_free(cfg->catalog);
    free(cfg);
}

static int parse_doc(eg_ydoc_t *doc, const char *path, eg_config_t **out, char *err, size_t errlen)
{
    eg_config_t *cfg = config_new();
    if (!cfg) {
        eg_ydoc_free(doc);
        return EG_ENOMEM;
    }
    char *dircopy = path ? strdup(path) : NULL;
    cctx_t c = {doc, err, errlen, dircopy ? dirname(dircopy) : NULL};
    int rc = load_root(&c, eg_ydoc_root(doc), cfg);
    if (!rc && path && !(cfg->path = strdup(path))) rc = EG_ENOMEM;
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

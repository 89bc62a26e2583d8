/* router.c - route matching (see router.h).
 *
 * Routes are few (tens), so a sorted array beats a trie in code and speed:
 * exact literal routes first, then exact templates ("/users/{id}", fewer
 * parameters first: OpenAPI's "concrete paths win"), then prefixes by
 * decreasing length. A literal route costs one length compare and one
 * memcmp; a template is matched segment by segment (eg_path_template_match)
 * and only for routes that have braces, so literal routes pay
 * nothing for them. The first path that matches decides 404 vs 405; a route
 * with the same path further down may still accept the method, so all
 * routes with an equal path are consulted before answering 405.
 */
#include "errgate/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *path;
    size_t len;
    int prefix;
    unsigned methods;
    size_t id;
    unsigned nparams; /* {name} segments; 0: a literal path */
} route_t;

struct eg_router_s {
    route_t *routes;
    size_t n;
};

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", EG_M_GET},         {"HEAD", EG_M_HEAD},   {"POST", EG_M_POST},
               {"PUT", EG_M_PUT},         {"PATCH", EG_M_PATCH}, {"DELETE", EG_M_DELETE},
               {"OPTIONS", EG_M_OPTIONS}, {"TRACE", EG_M_TRACE}, {"CONNECT", EG_M_CONNECT}};

unsigned eg_method_bit(const char *m, size_t n)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
            return methods[i].bit;
    return EG_M_OTHER;
}

size_t eg_methods_format(unsigned mask, char *buf, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (!(mask & methods[i].bit)) continue;
        int k = snprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, "%s%s",
                         len ? ", " : "", methods[i].name);
        if (k > 0) len += (size_t)k;
    }
    if (cap && len < cap)
        buf[len] = '\0';
    else if (cap)
        buf[cap - 1] = '\0';
    return len;
}

/* Exact before prefix; among exact routes literal ones before templates,
 * fewer parameters first; longer prefix first; then declaration order. */
static int cmp(const void *a, const void *b)
{
    const route_t *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix - y->prefix;
    if (!x->prefix && x->nparams != y->nparams) return x->nparams < y->nparams ? -1 : 1;
    if (x->prefix && x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The number of {name} segments of a route path, or -1 when a brace is
 * anywhere else ("/a{b}", "/{}", "/{a"). */
static int count_params(const char *p, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '{' && p[i] != '}') continue;
        if (p[i] == '}' || p[i - 1] != '/') return -1;
        size_t j = i + 1;
        while (j < n && p[j] != '}' && p[j] != '{' && p[j] != '/')
            j++;
        if (j >= n || p[j] != '}' || j == i + 1 || (j + 1 < n && p[j + 1] != '/')) return -1;
        k++;
        i = j;
    }
    return k;
}

int eg_path_template_match(const char *tpl, size_t tn, const char *path, size_t n, int prefix,
                           eg_path_capture_t *caps, size_t maxcaps, size_t *ncaps)
{
    size_t i = 0, j = 0, k = 0;
    while (i < tn) {
        if (tpl[i] == '{' && i > 0 && tpl[i - 1] == '/') {
            const char *name = tpl + i + 1;
            while (i < tn && tpl[i] != '}')
                i++;
            size_t nlen = (size_t)(tpl + i - name);
            i++; /* past '}' */
            size_t at = j;
            while (j < n && path[j] != '/')
                j++;
            if (j == at) return 0; /* an empty segment is no value */
            if (k < maxcaps && caps) {
                caps[k].name = name;
                caps[k].name_len = nlen;
                caps[k].value = path + at;
                caps[k].value_len = j - at;
            }
            k++;
            continue;
        }
        if (j >= n || path[j] != tpl[i]) return 0;
        i++;
        j++;
    }
    if (ncaps) *ncaps = k;
    if (j == n) return 1;
    if (!prefix) return 0;
    return tn == 1 || path[j] == '/';
}

int eg_router_new(const eg_route_spec_t *specs, size_t n, eg_router_t **out)
{
    eg_router_t *r = calloc(1, sizeof(*r));
    if (!r) return EG_ENOMEM;
    r->routes = calloc(n ? n : 1, sizeof(*r->routes));
    if (!r->routes) {
        free(r);
        return EG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        route_t *rt = &r->routes[i];
        if (!specs[i].path || specs[i].path[0] != '/') {
            r->n = i;
            eg_router_free(r);
            return EG_EINVAL;
        }
        rt->len = strlen(specs[i].path);
        /* "/v1/" as a prefix means the same as "/v1": match on segments */
        if (specs[i].prefix && rt->len > 1 && specs[i].path[rt->len - 1] == '/') rt->len--;
        if (!(rt->path = strndup(specs[i].path, rt->len))) {
            r->n = i;
            eg_router_free(r);
            return EG_ENOMEM;
        }
        rt->prefix = specs[i].prefix;
        int np = count_params(rt->path, rt->len);
        if (np < 0) {
            r->n = i + 1;
            eg_router_free(r);
            return EG_EINVAL;
        }
        rt->nparams = (unsigned)np;
        rt->methods = specs[i].methods ? specs[i].methods : EG_M_ALL;
        rt->id = i;
    }
    r->n = n;
    qsort(r->routes, n, sizeof(*r->routes), cmp);
    *out = r;
    return EG_OK;
}

void eg_router_free(eg_router_t *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++)
        free(r->routes[i].path);
    free(r->routes);
    free(r);
}

static int path_matches(const route_t *rt, const char *path, size_t n)
{
    if (rt->nparams)
        return eg_path_template_match(rt->path, rt->len, path, n, rt->prefix, NULL, 0, NULL);
    if (!rt->prefix) return n == rt->len && memcmp(path, rt->path, n) == 0;
    if (rt->len == 1) return 1; /* "/" prefix matches everything */
    if (n < rt->len || memcmp(path, rt->path, rt->len) != 0) return 0;
    return n == rt->len || path[rt->len] == '/';
}

eg_route_result_t eg_router_match(const eg_router_t *r, const char *path, size_t n,
                                  unsigned method_bit, size_t *id, unsigned *allow)
{
    const route_t *first = NULL;
    unsigned allowed = 0;
    for (size_t i = 0; i < r->n; i++) {
        const route_t *rt = &r->routes[i];
        if (first && (rt->prefix != first->prefix || rt->len != first->len ||
                      memcmp(rt->path, first->path, rt->len) != 0))
            continue; /* only routes with the best matching path count */
        if (!path_matches(rt, path, n)) continue;
        if (!first) first = rt;
        if (rt->methods & method_bit) {
            *id = rt->id;
            return EG_ROUTE_OK;
        }
        allowed |= rt->methods;
    }
    if (!first) return EG_ROUTE_NOT_FOUND;
    if (allow) *allow = allowed;
    return EG_ROUTE_METHOD_NOT_ALLOWED;
}

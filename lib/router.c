/* router.c - route matching (see router.h).
 *
 * Routes are few (tens), so a sorted array beats a trie in code and speed:
 * exact routes first, then prefixes by decreasing length, each checked with
 * one length compare and one memcmp. The first path that matches decides 404
 * vs 405; a route with the same path further down may still accept the
 * method, so all routes with an equal path are consulted before answering 405.
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
} route_t;

struct eg_router_s {
    route_t *routes;
    size_t n;
};

static const struct {
    const char *name;
    unsigned bit;
} methods[] = {{"GET", EG_M_GET},         {"HEAD", EG_M_HEAD},     {"POST", EG_M_POST},
               {"PUT", EG_M_PUT},         {"PATCH", EG_M_PATCH},   {"DELETE", EG_M_DELETE},
               {"OPTIONS", EG_M_OPTIONS}, {"TRACE", EG_M_TRACE},   {"CONNECT", EG_M_CONNECT}};

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
    if (cap && len < cap) buf[len] = '\0';
    else if (cap) buf[cap - 1] = '\0';
    return len;
}

/* Exact before prefix, longer prefix first, then declaration order. */
static int cmp(const void *a, const void *b)
{
    const route_t *x = a, *y = b;
    if (x->prefix != y->prefix) return x->prefix - y->prefix;
    if (x->prefix && x->len != y->len) return x->len < y->len ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
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
    for (size_t i = 0; i < r->n; i++) free(r->routes[i].path);
    free(r->routes);
    free(r);
}

static int path_matches(const route_t *rt, const char *path, size_t n)
{
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

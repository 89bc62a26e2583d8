/* ptrie.c - path templates indexed by segment (see ptrie.h).
 *
 * Nodes own their literal children in an array sorted by segment (binary
 * search when matching, an insertion when adding: adding is at load, once)
 * and one parameter child. A node where a template ends has a method mask
 * and an id per method bit. Matching recurses only where a literal and a
 * parameter child both exist, and never deeper than the longest template,
 * so a long request path costs no stack.
 */
#include "ptrie.h"

#include <stdlib.h>
#include <string.h>

#define NBITS 10 /* EG_M_GET .. EG_M_OTHER */

typedef struct pnode_s {
    char *seg; /* a literal child's segment, NULL for the parameter child */
    size_t len;
    struct pnode_s **lit; /* sorted by segment (length, then bytes) */
    size_t nlit, caplit;
    struct pnode_s *param;
    unsigned methods; /* where a template ends: its methods */
    size_t ids[NBITS];
} pnode_t;

struct eg_ptrie_s {
    pnode_t root;
    size_t depth; /* the most segments of a template */
};

int eg_ptrie_new(eg_ptrie_t **out)
{
    eg_ptrie_t *t = calloc(1, sizeof(*t));
    if (!t) return EG_ENOMEM;
    *out = t;
    return EG_OK;
}

static void node_free(pnode_t *n)
{
    for (size_t i = 0; i < n->nlit; i++) {
        node_free(n->lit[i]);
        free(n->lit[i]);
    }
    free(n->lit);
    free(n->seg);
    if (n->param) {
        node_free(n->param);
        free(n->param);
    }
}

void eg_ptrie_free(eg_ptrie_t *t)
{
    if (!t) return;
    node_free(&t->root);
    free(t);
}

static int seg_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn) return an < bn ? -1 : 1;
    return memcmp(a, b, an);
}

/* The index of the literal child `s` in n, or where it would go (*found 0). */
static size_t find(const pnode_t *n, const char *s, size_t len, int *found)
{
    size_t lo = 0, hi = n->nlit;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = seg_cmp(n->lit[mid]->seg, n->lit[mid]->len, s, len);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static pnode_t *literal_child(pnode_t *n, const char *s, size_t len)
{
    int found;
    size_t at = find(n, s, len, &found);
    if (found) return n->lit[at];
    if (n->nlit == n->caplit) {
        size_t nc = n->caplit ? n->caplit * 2 : 4;
        pnode_t **p = realloc(n->lit, nc * sizeof(*p));
        if (!p) return NULL;
        n->lit = p;
        n->caplit = nc;
    }
    pnode_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->seg = malloc(len + 1))) {
        free(c);
        return NULL;
    }
    memcpy(c->seg, s, len);
    c->seg[len] = '\0';
    c->len = len;
    memmove(n->lit + at + 1, n->lit + at, (n->nlit - at) * sizeof(*n->lit));
    n->lit[at] = c;
    n->nlit++;
    return c;
}

int eg_ptrie_add(eg_ptrie_t *t, const char *tpl, unsigned methods, size_t id)
{
    if (!tpl || tpl[0] != '/') return EG_EINVAL;
    pnode_t *n = &t->root;
    size_t depth = 0;
    const char *p = tpl;
    while (*p == '/') {
        const char *s = p + 1, *e = s;
        while (*e && *e != '/')
            e++;
        size_t len = (size_t)(e - s);
        int open = memchr(s, '{', len) != NULL, close = memchr(s, '}', len) != NULL;
        if (open || close) {
            /* a whole "{name}" segment and nothing else */
            if (len < 3 || s[0] != '{' || s[len - 1] != '}' || memchr(s + 1, '{', len - 2) ||
                memchr(s + 1, '}', len - 2))
                return EG_EINVAL;
            if (!n->param && !(n->param = calloc(1, sizeof(*n->param)))) return EG_ENOMEM;
            n = n->param;
        } else if (!(n = literal_child(n, s, len))) {
            return EG_ENOMEM;
        }
        depth++;
        p = e;
    }
    if (*p) return EG_EINVAL;
    if (n->methods & methods) return EG_ERANGE;
    for (unsigned b = 0; b < NBITS; b++)
        if (methods & (1u << b)) n->ids[b] = id;
    n->methods |= methods & ((1u << NBITS) - 1);
    if (depth > t->depth) t->depth = depth;
    return EG_OK;
}

static eg_route_result_t match(const pnode_t *n, const char *path, size_t pos, size_t end,
                               size_t depth, size_t maxdepth, unsigned bit, size_t *id,
                               unsigned *allow)
{
    for (;;) {
        if (pos == end) {
            if (!n->methods) return EG_ROUTE_NOT_FOUND;
            if (n->methods & bit) {
                unsigned b = 0;
                while (!(bit & (1u << b)))
                    b++;
                *id = n->ids[b];
                return EG_ROUTE_OK;
            }
            *allow = n->methods;
            return EG_ROUTE_METHOD_NOT_ALLOWED;
        }
        if (path[pos] != '/' || depth == maxdepth) return EG_ROUTE_NOT_FOUND;
        size_t s = pos + 1, e = s;
        while (e < end && path[e] != '/')
            e++;
        int found = 0;
        size_t at = n->nlit ? find(n, path + s, e - s, &found) : 0;
        const pnode_t *lit = found ? n->lit[at] : NULL;
        const pnode_t *par = e > s ? n->param : NULL;
        if (lit && par) { /* both: the literal way first, the parameter only if it leads nowhere */
            eg_route_result_t r = match(lit, path, e, end, depth + 1, maxdepth, bit, id, allow);
            if (r != EG_ROUTE_NOT_FOUND) return r;
            n = par;
        } else if (lit) {
            n = lit;
        } else if (par) {
            n = par;
        } else {
            return EG_ROUTE_NOT_FOUND;
        }
        pos = e;
        depth++;
    }
}

eg_route_result_t eg_ptrie_match(const eg_ptrie_t *t, const char *path, size_t n,
                                 unsigned method_bit, size_t *id, unsigned *allow)
{
    if (!n) return EG_ROUTE_NOT_FOUND;
    return match(&t->root, path, 0, n, 0, t->depth, method_bit, id, allow);
}

/* ptrie.h - path templates indexed by segment, for many routes (internal, pure).
 *
 * The router (router.h) scans its routes in order, which suits the tens
 * of routes a configuration declares; an OpenAPI document brings hundreds
 * or thousands of operations. eg_ptrie_t indexes such templates
 * ("/pets/{petId}/toys") in a trie of segments: each node has its literal
 * children sorted for a binary search and at most one parameter child
 * (every {name} at one place is the same to routing), so a match costs one
 * step per segment of the path, whatever the number of templates.
 *
 * Precedence is OpenAPI's "concrete paths win", segment by segment: at
 * each segment a literal child is tried before the parameter child, and
 * the parameter branch only when the literal one leads to no path at all.
 * The first path reached decides: the method's id, or 405 with the
 * methods that path has. A parameter matches one whole, non-empty segment.
 * Paths are matched as they are (no decoding); "/a" and "/a/" differ.
 */
#ifndef EG_PTRIE_H
#define EG_PTRIE_H

#include <stddef.h>

#include "errgate/router.h"

typedef struct eg_ptrie_s eg_ptrie_t;

int eg_ptrie_new(eg_ptrie_t **out);
void eg_ptrie_free(eg_ptrie_t *t);

/* Adds template `tpl` for the methods of mask `methods` (EG_M_*) as `id`.
 * EG_EINVAL: not a template ('/' first, braces only around a whole
 * segment); EG_ERANGE: a method of that path (by shape: /a/{x} and /a/{y}
 * are one) already has an id; EG_ENOMEM. */
int eg_ptrie_add(eg_ptrie_t *t, const char *tpl, unsigned methods, size_t id);

/* Matches path[0..n) and a method bit: EG_ROUTE_OK with *id, or
 * EG_ROUTE_METHOD_NOT_ALLOWED with *allow (the methods of the path found),
 * or EG_ROUTE_NOT_FOUND. Allocates nothing. */
eg_route_result_t eg_ptrie_match(const eg_ptrie_t *t, const char *path, size_t n,
                                 unsigned method_bit, size_t *id, unsigned *allow);

#endif

/* router.h - matching a request's method and path to a route, pure logic.
 *
 * Exact routes win over prefix routes; among prefixes the longest wins; a
 * prefix matches on segment boundaries ("/v1" matches "/v1" and "/v1/x", not
 * "/v1x"). A path may have template segments, "/users/{id}/posts" (OpenAPI's
 * path templating: a whole segment, one or more bytes, no '/'); as in
 * OpenAPI, concrete paths win over templated ones: exact literal routes
 * first, then exact templates with fewer parameters first (then in
 * declaration order), then prefixes (literal or templated) longest first. A path that matches but
 * not with this method yields 405 with the methods that would be allowed. The router copies what it
 * needs; it is immutable after building and may be shared by threads.
 */
#ifndef ERRGATE_ROUTER_H
#define ERRGATE_ROUTER_H

#include <stddef.h>
#include "common.h"

/* Method bits. EG_M_ALL: a route without a method list. */
enum {
    EG_M_GET = 1 << 0,
    EG_M_HEAD = 1 << 1,
    EG_M_POST = 1 << 2,
    EG_M_PUT = 1 << 3,
    EG_M_PATCH = 1 << 4,
    EG_M_DELETE = 1 << 5,
    EG_M_OPTIONS = 1 << 6,
    EG_M_TRACE = 1 << 7,
    EG_M_CONNECT = 1 << 8,
    EG_M_OTHER = 1 << 9, /* any other token */
    EG_M_ALL = (1 << 10) - 1,
};

/* Bit of a method token (case-sensitive, as RFC 9110 says); EG_M_OTHER if unknown. */
unsigned eg_method_bit(const char *m, size_t n);

/* Writes "GET, HEAD, POST" for a mask into buf; returns the length (snprintf-like). */
size_t eg_methods_format(unsigned mask, char *buf, size_t cap);

typedef struct eg_router_s eg_router_t;

typedef struct {
    const char *path; /* starts with '/' */
    int prefix;       /* 1: prefix match */
    unsigned methods; /* EG_M_* mask; 0 means all */
} eg_route_spec_t;

/* Builds a router from n specs; route ids are the spec indexes. EG_EINVAL
 * for a path not starting with '/' or with a brace outside a whole
 * "{name}" segment. */
int eg_router_new(const eg_route_spec_t *specs, size_t n, eg_router_t **out);
void eg_router_free(eg_router_t *r);

/* A template segment's value in a matched path (pointers into the path and
 * the template: nothing is copied, nothing allocated). The value is still
 * percent-encoded, as it was in the path. */
typedef struct {
    const char *name, *value;
    size_t name_len, value_len;
} eg_path_capture_t;

/* Matches `path` (n bytes) against the route path `tpl` (tn bytes, with
 * {name} segments; prefix: on segment boundaries): 1 when it matches, with
 * the first maxcaps values in caps and their number in *ncaps (either may
 * be NULL), else 0. */
int eg_path_template_match(const char *tpl, size_t tn, const char *path, size_t n, int prefix,
                           eg_path_capture_t *caps, size_t maxcaps, size_t *ncaps);

typedef enum { EG_ROUTE_OK = 0, EG_ROUTE_NOT_FOUND, EG_ROUTE_METHOD_NOT_ALLOWED } eg_route_result_t;

/* Matches `path` (n bytes, no query string) and `method_bit`. On EG_ROUTE_OK
 * *id is the route; on EG_ROUTE_METHOD_NOT_ALLOWED *allow is the mask of
 * methods the best matching path accepts. */
eg_route_result_t eg_router_match(const eg_router_t *r, const char *path, size_t n,
                                  unsigned method_bit, size_t *id, unsigned *allow);

#endif

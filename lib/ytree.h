/* ytree.h - YAML documents as a small tree that remembers where each node was.
 *
 * libyaml does the parsing; this module turns its events into scalars, maps
 * and sequences carrying 1-based line and column, so loaders (dialects,
 * catalogs, the gateway config) report "file:line:col: what is wrong".
 * Anchors and aliases are rejected; duplicate map keys are an error.
 * The document owns every node; nodes live until eg_ydoc_free().
 */
#ifndef EG_YTREE_H
#define EG_YTREE_H

#include <jansson.h>
#include <stddef.h>
#include "errgate/common.h"

typedef enum { EG_Y_SCALAR, EG_Y_MAP, EG_Y_SEQ } eg_ykind_t;

typedef struct eg_ynode_s {
    eg_ykind_t kind;
    int line, col;                /* 1-based position of the node's start */
    const char *str;              /* scalar value, NUL-terminated */
    size_t len;                   /* scalar length */
    int quoted;                   /* scalar was quoted or block: never null/bool/number */
    size_t n;                     /* map: number of pairs; seq: number of items */
    struct eg_ynode_s **items;    /* seq: items[i]; map: key items[2i], value items[2i+1] */
} eg_ynode_t;

typedef struct eg_ydoc_s eg_ydoc_t;

/* Parses one YAML document. `name` (copied) prefixes error messages.
 * Returns EG_OK, EG_EPARSE (message in err) or EG_ENOMEM. An empty document
 * has a NULL root. */
int eg_ydoc_parse(const char *text, size_t len, const char *name, eg_ydoc_t **out, char *err,
                  size_t errlen);
/* Parses one JSON document (strictly, as jsonr does) into the same tree,
 * with 1-based line and column from the text: JSON schema and OpenAPI files
 * then load like YAML ones. Strings are quoted scalars; numbers, true,
 * false and null unquoted ones. EG_OK, EG_EPARSE (err: "name:line:col:
 * message"), EG_ENOMEM. (Implemented with the schema module.) */
int eg_ydoc_parse_json(const char *text, size_t len, const char *name, eg_ydoc_t **out, char *err,
                       size_t errlen);
/* Looks up an environment variable: its value, or NULL when unset. */
typedef const char *(*eg_yenv_fn)(void *ctx, const char *name);
/* Replaces ${NAME} and ${NAME:-default} in every scalar of doc (shell
 * semantics: the default when NAME is unset or empty; "$${" is a literal
 * "${"; any other "$" is kept). A scalar that is exactly one ${...} takes
 * the type of its new text even when it was quoted, so flow style can write
 * { port: "${PORT}" }. An unset NAME without a default is an error at the
 * scalar's position. The lookup is the caller's (getenv in the daemon), so
 * the library reads no global state. EG_OK, EG_EPARSE, EG_ENOMEM. */
int eg_ydoc_expand_env(eg_ydoc_t *doc, eg_yenv_fn lookup, void *ctx, char *err, size_t errlen);
/* Reads and parses a file; EG_EIO when it cannot be read. */
int eg_ydoc_load_file(const char *path, eg_ydoc_t **out, char *err, size_t errlen);
void eg_ydoc_free(eg_ydoc_t *doc);
const eg_ynode_t *eg_ydoc_root(const eg_ydoc_t *doc);
const char *eg_ydoc_name(const eg_ydoc_t *doc);

/* Value of `key` in a map, or NULL (also when `map` is not a map). */
const eg_ynode_t *eg_ymap_get(const eg_ynode_t *map, const char *key);

/* Writes "name:line:col: <message>" into err and returns EG_EPARSE. */
int eg_yerr(const eg_ydoc_t *doc, const eg_ynode_t *at, char *err, size_t errlen,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Scalar helpers: return EG_OK or EG_EPARSE (with message) when the node is
 * not a scalar of that kind. */
int eg_yscalar_str(const eg_ydoc_t *doc, const eg_ynode_t *n, const char **out, char *err,
                   size_t errlen);
int eg_yscalar_int(const eg_ydoc_t *doc, const eg_ynode_t *n, long long min, long long max,
                   long long *out, char *err, size_t errlen);
int eg_yscalar_bool(const eg_ydoc_t *doc, const eg_ynode_t *n, int *out, char *err,
                    size_t errlen);

/* Converts a node to JSON: unquoted scalars become null, booleans, integers or
 * reals when they look like one, everything else a string. New reference;
 * NULL when out of memory. */
json_t *eg_ynode_to_json(const eg_ynode_t *n);

#endif

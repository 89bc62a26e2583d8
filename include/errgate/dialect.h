/* dialect.h - error dialects: rendering the model, parsing it back, detecting.
 *
 * A dialect is one JSON shape for errors (RFC 9457 problem, JSON:API,
 * envelope, typed, flat-camel, flat-snake, or one declared in YAML). Every
 * dialect, the built-in ones included, is a declarative template compiled
 * from YAML (see docs/dialects.md), so one engine renders and parses them all:
 *
 *   render: (error, dialect, catalog) -> JSON bytes in the caller's buffer
 *   parse:  (JSON, dialect, catalog)  -> error, with render(parse(x)) == x
 *
 * Dialects are immutable after loading and may be shared between threads.
 */
#ifndef ERRGATE_DIALECT_H
#define ERRGATE_DIALECT_H

#include <jansson.h>
#include <stddef.h>
#include "common.h"
#include "error.h"
#include "catalog.h"

typedef struct eg_dialect_s eg_dialect_t;

/* A set of dialects: the six built-ins plus any loaded from files. */
typedef struct eg_dialects_s eg_dialects_t;

/* eg_dialect_load_yaml compiles a dialect from YAML text. `name` is used in
 * error messages ("file:line:col: what" written to err). Returns EG_OK and
 * *out (free with eg_dialect_free), or EG_EPARSE / EG_ENOMEM. */
int eg_dialect_load_yaml(const char *text, size_t len, const char *name, eg_dialect_t **out,
                         char *err, size_t errlen);
int eg_dialect_load_file(const char *path, eg_dialect_t **out, char *err, size_t errlen);
void eg_dialect_free(eg_dialect_t *d);

const char *eg_dialect_name(const eg_dialect_t *d);
/* Media type for Content-Type, e.g. "application/problem+json". */
const char *eg_dialect_media_type(const eg_dialect_t *d);
/* One-line description from the dialect file. */
const char *eg_dialect_summary(const eg_dialect_t *d);

/* eg_dialect_status returns the HTTP status the error is answered with in this
 * dialect: e->status when set, else the dialect's override for the code
 * (e.g. validation_error is 422 in jsonapi), else the catalog's status, else 500.
 * A dialect's override for validation_error is its validation status: it
 * also holds for every other code of type validation_error whose catalog
 * status is 400 (missing_parameter, invalid_parameter_value, ...), except
 * invalid_json, which is a syntax error (400 in every seed). */
int eg_dialect_status(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_error_t *e);
/* The status code `code` has in this dialect when nothing else set one
 * (eg_dialect_status of an error with just that code); 500 when unknown. */
int eg_dialect_code_status(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code);

/* A dialect's code map answers the gateway's precise codes with the page's
 * coarser ones (jsonapi's `unauthorized` for missing_api_key): body and
 * X-Error-Code carry the mapped code, its catalog title, and the precise
 * code as details member "reason". eg_dialect_mapped_code returns the code
 * `code` is answered with, or NULL when the dialect keeps it.
 * eg_dialect_map_code sets (to != NULL) or removes (to == NULL or to ==
 * from) one pair; call it only before the dialect is shared between
 * threads (configuration load). EG_OK or EG_ENOMEM. */
const char *eg_dialect_mapped_code(const eg_dialect_t *d, const char *code);
/* The same, and when the dialect says nothing of `code`, the catalog's
 * `answered_as` for this dialect: what the body and X-Error-Code carry. */
const char *eg_dialect_answer_code(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code);
int eg_dialect_map_code(eg_dialect_t *d, const char *from, const char *to);
/* Dialects of a set, writable for configuration (NULL when absent). */
eg_dialect_t *eg_dialects_get_mut(eg_dialects_t *set, const char *name);

/* eg_dialect_code writes the code as this dialect spells it into buf
 * (catalog spelling, else the dialect's casing rule applied to e->code).
 * Returns the length like snprintf. Allocates nothing. */
size_t eg_dialect_code(const eg_dialect_t *d, const eg_catalog_t *cat, const char *code,
                       char *buf, size_t cap);
/* The same for e's code, using the catalog entry remembered when it was set,
 * after the dialect's code map (what the body and X-Error-Code carry);
 * eg_dialect_code spells a code without the map. */
size_t eg_dialect_error_code(const eg_dialect_t *d, const eg_catalog_t *cat, const eg_error_t *e,
                             char *buf, size_t cap);

/* eg_render writes the error as JSON in dialect `d` into buf (at most cap
 * bytes, NUL-terminated when it fits). `cat` (may be NULL) supplies
 * spellings, titles, types and docs links the error does not carry itself.
 * Returns the full length the JSON needs (excluding the NUL), like snprintf:
 * when it is >= cap the output was truncated; call again with a larger buffer.
 * Strings are escaped; invalid UTF-8 becomes U+FFFD. Allocates nothing. */
size_t eg_render(const eg_error_t *e, const eg_dialect_t *d, const eg_catalog_t *cat, char *buf,
                 size_t cap);

/* eg_parse_json reads `doc` as dialect `d` into a new error (*out, free with
 * eg_error_free). Codes are canonicalised through `cat` (may be NULL);
 * unknown codes are kept as sent; members the dialect does not know are kept
 * in details or meta. `http_status` (0 if unknown) is used when the body
 * carries no status. Returns EG_OK, EG_EPARSE (doc is not this dialect's
 * shape) or EG_ENOMEM. */
int eg_parse_json(const json_t *doc, const eg_dialect_t *d, const eg_catalog_t *cat,
                  int http_status, eg_error_t **out);

/* eg_dialect_match scores how well `doc` fits the dialect's shape: the number
 * of its members found with the right JSON type, 0 when it does not fit. */
int eg_dialect_match(const eg_dialect_t *d, const json_t *doc);

/* --- dialect sets --- */

/* eg_dialects_new_builtin makes a set holding the six built-in dialects. */
int eg_dialects_new_builtin(eg_dialects_t **out);
void eg_dialects_free(eg_dialects_t *set);
/* Takes ownership of d; a dialect with the same name replaces the old one. */
int eg_dialects_add(eg_dialects_t *set, eg_dialect_t *d);
/* Returns the dialect named `name` or NULL. */
const eg_dialect_t *eg_dialects_get(const eg_dialects_t *set, const char *name);
size_t eg_dialects_count(const eg_dialects_t *set);
const eg_dialect_t *eg_dialects_at(const eg_dialects_t *set, size_t i);
/* eg_dialects_detect returns the dialect that fits `doc` best, or NULL. */
const eg_dialect_t *eg_dialects_detect(const eg_dialects_t *set, const json_t *doc);

/* eg_dialects_negotiate picks the dialect for an Accept header value (n
 * bytes): the dialect whose specific media type (not plain application/json)
 * the client accepts with the highest q > 0, e.g. application/problem+json ->
 * problem, application/vnd.api+json -> jsonapi; otherwise `dflt`. */
const eg_dialect_t *eg_dialects_negotiate(const eg_dialects_t *set, const eg_dialect_t *dflt,
                                          const char *accept, size_t n);

/* --- bodies of unknown shape --- */

/* Why eg_parse_body produced what it did. */
typedef enum {
    EG_BODY_DIALECT = 0, /* JSON in a known dialect */
    EG_BODY_JSON,        /* JSON of no known shape: kept in details */
    EG_BODY_TEXT,        /* not JSON (HTML, text, truncated JSON, empty) */
} eg_body_kind_t;

typedef struct {
    eg_body_kind_t kind;
    const eg_dialect_t *dialect; /* the dialect read, for EG_BODY_DIALECT */
    int json_line, json_column;  /* where JSON parsing failed (EG_BODY_TEXT), else 0 */
    long json_position;          /* byte offset of the failure, -1 when not applicable */
    char json_error[160];        /* jansson's message, "" when not applicable */
} eg_body_info_t;

/* eg_parse_body turns any error body into the model. `from` forces a dialect
 * (NULL = detect among `set`). JSON of an unknown shape keeps every member in
 * details and picks message/code from common names; a body that is not JSON
 * becomes the catalog's error for `http_status` with a bounded, sanitized
 * excerpt of the body as its message. `info` (may be NULL) says which case
 * applied. Returns EG_OK, EG_EPARSE (only when `from` is forced and the body
 * does not fit it) or EG_ENOMEM. */
int eg_parse_body(const char *body, size_t len, const eg_dialects_t *set,
                  const eg_dialect_t *from, const eg_catalog_t *cat, int http_status,
                  eg_error_t **out, eg_body_info_t *info);

/* eg_excerpt writes a sanitized excerpt of `text` into buf: HTML tags and
 * control characters removed, whitespace collapsed, invalid UTF-8 dropped,
 * cut at a character boundary to at most cap-1 bytes with "..." when cut.
 * Returns the length written. */
size_t eg_excerpt(const char *text, size_t len, char *buf, size_t cap);

/* eg_error_invalid_json builds the catalog's invalid_json error for a jansson
 * error: details carry json_error, position, line and column. */
int eg_error_invalid_json(const eg_catalog_t *cat, const json_error_t *je, eg_error_t **out);

/* eg_error_from_catalog builds an error for canonical `code` with the
 * catalog's status, type, title and message (code kept as is when unknown).
 * The error refers to the catalog's strings: free it before the catalog. */
int eg_error_from_catalog(const eg_catalog_t *cat, const char *code, eg_error_t **out);

#endif

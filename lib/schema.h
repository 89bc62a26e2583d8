/* schema.h - JSON Schema compiled once at load, checked fast per request (internal).
 *
 * Vocabulary: draft 2020-12 as OpenAPI 3.1 uses it, and OpenAPI 3.0's
 * dialect of it (nullable, boolean exclusiveMinimum/Maximum) when asked:
 * type, properties, required, additionalProperties, patternProperties,
 * items, prefixItems, enum, const, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, multipleOf, minLength, maxLength (in code points),
 * pattern (PCRE2, ECMA-style, with match limits), format (format.h),
 * minItems, maxItems, uniqueItems, minProperties, maxProperties, allOf,
 * anyOf, oneOf, not, boolean schemas, $defs / definitions, (2020-12 only:
 * contains / minContains / maxContains, propertyNames, dependentRequired,
 * dependentSchemas, if / then / else), and $ref to
 * "#..." JSON pointers inside the document or to sibling files through
 * the caller's loader. Annotations (title, description, default,
 * examples, readOnly, writeOnly, deprecated, $comment, $schema, $id at the
 * root, OpenAPI's discriminator/xml/externalDocs/example) are accepted and
 * ignored. Any other keyword is reported to opts->warn with its
 * file:line:col (never silently ignored) and otherwise ignored. Refused at
 * compile time, with file:line:col in err: a keyword of the wrong type,
 * an unknown format, a pattern PCRE2 cannot compile, a $ref whose target
 * does not exist, a $ref cycle that never reaches a keyword (a: {$ref: b},
 * b: {$ref: a}).
 *
 * Sources are ytree nodes: YAML files and JSON files alike
 * (eg_ydoc_parse_json turns JSON text into the same tree with positions),
 * so every message says where. The compiled schema does not point into
 * the document: the document may be freed after compiling.
 *
 * Instances are jsonr tapes (jsonr.h): a body as parsed, or a small JSON
 * text a caller built (a query parameter coerced to its type). Validation
 * allocates nothing but the field errors it reports, and its time is
 * bounded by instance size times schema size (regexes have match limits).
 *
 * Ownership: eg_schema_compile allocates *out, eg_schema_free frees it and
 * every node; eg_snode_t pointers live as long as their schema.
 */
#ifndef EG_SCHEMA_H
#define EG_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/error.h"
#include "jsonr.h"
#include "ytree.h"

typedef struct eg_schema_s eg_schema_t;
typedef struct eg_snode_s eg_snode_t;

typedef struct {
    int openapi30; /* OpenAPI 3.0: nullable, boolean exclusiveMinimum/Maximum, no
                      prefixItems; 0: draft 2020-12 (OpenAPI 3.1) */
    /* Resolves a $ref to another file ("common.yaml#/components/schemas/Pet"):
     * loads `path` (relative to the referring document's directory, already
     * joined by the compiler) and returns the document, still owned by the
     * loader (which frees it after the schema is freed, or caches it).
     * NULL: such a $ref is a compile error. */
    int (*load)(void *ctx, const char *path, const eg_ydoc_t **doc, char *err, size_t errlen);
    void *load_ctx;
    /* Told of each keyword the compiler does not know or does not support
     * (msg: "file:line:col: keyword 'unevaluatedProperties' is not supported
     * and is ignored"). NULL: not reported. */
    void (*warn)(void *ctx, const char *msg);
    void *warn_ctx;
} eg_schema_opts_t;

/* Compiles the schema at node `at` of doc (NULL: the root); opts may be
 * NULL. "#/..." refs resolve against doc's root. EG_OK, EG_EPARSE (err:
 * "file:line:col: message"), EG_ENOMEM. */
int eg_schema_compile(const eg_ydoc_t *doc, const eg_ynode_t *at, const eg_schema_opts_t *opts,
                      eg_schema_t **out, char *err, size_t errlen);
void eg_schema_free(eg_schema_t *s);

/* Where a validation reports its problems. Each problem becomes one field
 * error of `e` (eg_error_add_field) with:
 *   EG_F_POINTER    the instance's JSON pointer, `prefix` prepended
 *                   ("/email", "/items/2/qty"),
 *   EG_F_FIELD      the same as a dotted name ("email", "items[2].qty";
 *                   the root is `field_root`, or "body"),
 *   EG_F_CONSTRAINT the keyword that failed ("required", "minimum",
 *                   "type", "format", ...),
 *   EG_F_MESSAGE    a sentence ("must be at most 100", "is required",
 *                   "must be a string", "must be a valid email address"),
 *   value           the offending value, bounded (strings over 64 bytes cut,
 *                   containers left out),
 *   extra           the keyword's bound ({"minimum": 1}, {"format": "uuid"},
 *                   {"allowed": [...]} for enum).
 * At most `max` field errors are added; `count` counts all problems found
 * (validation goes on to the end so the count is true, bounded by the
 * instance). e == NULL: only count (and stop at the first). */
typedef struct {
    eg_error_t *e;
    const char *prefix;     /* JSON pointer prefix, "" for a body */
    const char *field_root; /* dotted name of the root, NULL: "body" */
    size_t max;
    size_t count; /* out */
} eg_schema_report_t;

/* Validates the value at tok (NULL: the document's root) of a parsed doc.
 * Returns EG_OK when valid, EG_ERANGE when invalid (rep->count problems),
 * EG_ENOMEM when a field error could not be added. */
int eg_schema_validate(const eg_schema_t *s, const eg_jr_doc_t *doc, const eg_jr_tok_t *tok,
                       eg_schema_report_t *rep);

/* The accept-only fast path for a whole body (schema_fast.c): 1 when
 * text[0..len) is surely JSON that eg_jr_parse accepts and that s accepts
 * (eg_schema_validate would answer EG_OK); 0 when it cannot tell: the
 * body may be invalid, or uses what the fast path leaves to the exact one
 * (applicators, escaped keys, ...). It never says "invalid": on 0 the
 * caller parses and validates as before, which words the errors. No
 * allocation; one pass over the bytes. */
int eg_schema_fast(const eg_schema_t *s, const char *text, size_t len);
/* The same for one scalar token t of text, as eg_jr_parse would make it
 * (a parameter's value, built by its caller: params.c): 1 when
 * eg_schema_validate on it would answer EG_OK, 0 when not sure. */
int eg_schema_fast_token(const eg_schema_t *s, const char *text, const eg_jr_tok_t *t);

/* A JSON body checked as it streams in (schema_stream.c), without a tree:
 * feed it in chunks of any size, cut anywhere, then finish. The verdict,
 * the problems (same pointers, messages and order as eg_schema_validate on
 * the parsed body, into rep as there) and a syntax error's position, line
 * and column (as eg_jr_parse reports them) do not depend on where the
 * chunks were cut. s NULL: JSON syntax only. rep NULL: count only.
 * Containers whose schema needs the whole value (enum of objects, anyOf,
 * uniqueItems...) are kept, and checked when they close: memory is
 * bounded by what is fed, which the caller bounds (max_body).
 *   eg_sv_feed:   EG_OK, EG_EPARSE (invalid JSON: feeding more only
 *                 settles where the error is), EG_ENOMEM;
 *   eg_sv_finish: EG_OK valid, EG_ERANGE invalid (rep->count problems),
 *                 EG_EPARSE invalid JSON (eg_sv_error), EG_ENOMEM.
 * The work budget is eg_schema_validate's, counted on the tokens read so
 * far (a little stricter on a body whose first part is the costly one). */
typedef struct eg_sv_s eg_sv_t;
int eg_sv_new(const eg_schema_t *s, eg_schema_report_t *rep, eg_sv_t **out);
int eg_sv_feed(eg_sv_t *v, const char *data, size_t n);
int eg_sv_finish(eg_sv_t *v);
/* After EG_EPARSE from eg_sv_finish: as eg_jr_doc_t's position, line, column. */
void eg_sv_error(const eg_sv_t *v, long *position, int *line, int *column);
void eg_sv_free(eg_sv_t *v);
/* v made new for another body (s and rep as eg_sv_new's), keeping its
 * buffers (up to 64 KiB each): what a worker does between requests. */
void eg_sv_reset(eg_sv_t *v, const eg_schema_t *s, eg_schema_report_t *rep);

/* What the root declares, for callers that coerce text to the schema's
 * type first (query, path and header parameters): a bit set of
 * EG_ST_* types ("type": [..] or from enum/const; 0 = any). */
#define EG_ST_NULL (1u << 0)
#define EG_ST_BOOLEAN (1u << 1)
#define EG_ST_INTEGER (1u << 2)
#define EG_ST_NUMBER (1u << 3)
#define EG_ST_STRING (1u << 4)
#define EG_ST_ARRAY (1u << 5)
#define EG_ST_OBJECT (1u << 6)
unsigned eg_schema_types(const eg_schema_t *s);
/* The same for the array items' schema (items), 0 when none / any. */
unsigned eg_schema_item_types(const eg_schema_t *s);

#endif

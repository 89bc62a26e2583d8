/* openapi.h - OpenAPI 3.0 / 3.1 documents read as routes and request rules (internal).
 *
 * eg_openapi_load reads a document (YAML, or JSON for a .json file) and the
 * sibling files its $refs name, and lists its operations: the path
 * template, the method, the server base path that precedes the path, the
 * parameters (the path item's and the operation's merged, the operation's
 * winning by name and location, $refs to components/parameters followed),
 * and the request body (required, and a schema per media type). Schemas
 * stay ytree nodes here: the schema compiler (schema.h) turns them into
 * checks, resolving "#/components/schemas/..." against the node's own
 * document and other files through eg_openapi_schema_opts' loader, which is
 * this object's document cache. So every string and node an operation
 * points to lives as long as the eg_openapi_t.
 *
 * What the gateway does not enforce from a document is never silently
 * dropped: each such place becomes a warning "file:line:col: ..." in
 * eg_openapi_warnings (check-config prints them): callbacks and webhooks
 * (requests the API makes, not requests to it), security requirements
 * (auth comes from the route's auth:, not from the document), cookie
 * parameters and parameters described by `content` (their presence is
 * checked when required, their value is not), header parameters named
 * Accept, Content-Type or Authorization (ignored, as the specification
 * says), request body `encoding`, and unknown keys in the objects read
 * here. Responses, links, examples and descriptions are annotations: the
 * gateway checks requests only.
 *
 * Refused with "file:line:col: message": a document that is not OpenAPI 3.0.x
 * or 3.1.x (a Swagger 2.0 one, no `openapi`, another version), a path that is
 * not a template errgate can route ("{name}" must be a whole segment), a
 * $ref that leaves the document's directory, names a URL, or does not
 * resolve, and the caps: EG_OPENAPI_MAX_BYTES per file and
 * EG_OPENAPI_MAX_TOTAL for all of a document's files, EG_OPENAPI_MAX_FILES
 * files, EG_OPENAPI_MAX_REF_DEPTH $refs followed in a chain (cycles end
 * there too), EG_OPENAPI_MAX_OPS operations.
 */
#ifndef EG_OPENAPI_H
#define EG_OPENAPI_H

#include <stddef.h>
#include <stdint.h>

#include "params.h"
#include "schema.h"
#include "ytree.h"

#define EG_OPENAPI_MAX_BYTES     (8u << 20)
#define EG_OPENAPI_MAX_TOTAL     (32u << 20)
#define EG_OPENAPI_MAX_FILES     64
#define EG_OPENAPI_MAX_REF_DEPTH 32
#define EG_OPENAPI_MAX_OPS       4096
#define EG_OPENAPI_MAX_WARNINGS  200

typedef enum { EG_OA_QUERY = 0, EG_OA_PATH, EG_OA_HEADER, EG_OA_COOKIE } eg_oa_in_t;

/* A schema as written: its node and the document it is in (for $refs). */
typedef struct {
    const eg_ydoc_t *doc;
    const eg_ynode_t *node; /* NULL: none */
} eg_oa_schema_t;

typedef struct {
    const char *name;
    eg_oa_in_t in;
    int required; /* path parameters always */
    eg_param_style_t style; /* params.h: the validation stage's own */
    int explode;        /* default: 1 for form, else 0 */
    int allow_empty;    /* allowEmptyValue (query) */
    int allow_reserved; /* allowReserved (query) */
    int content;        /* described by `content`: the value is not checked */
    eg_oa_schema_t schema;
    const eg_ydoc_t *doc; /* where it is declared, for messages */
    const eg_ynode_t *at;
} eg_oa_param_t;

typedef struct {
    const char *type;      /* as written: "application/json", a range like "application/(star)" */
    eg_oa_schema_t schema; /* node NULL: any content of that type */
} eg_oa_media_t;

typedef struct eg_oa_op_s {
    const char *method;       /* lower case as in the document: "get" */
    unsigned method_bit;      /* EG_M_* */
    const char *path;         /* the document's template: "/pets/{petId}" */
    const char *base;         /* server base path: "" or "/v1" (no trailing '/') */
    const char *operation_id; /* NULL when none */
    const char *summary;      /* NULL when none */
    eg_oa_param_t *params;
    size_t nparams;
    int has_body; /* a requestBody is declared */
    int body_required;
    eg_oa_media_t *media;
    size_t nmedia;
    int security; /* some security requirement applies (not enforced from the document) */
    int deprecated;
    const eg_ydoc_t *doc; /* where the operation is */
    const eg_ynode_t *at;
} eg_oa_op_t;

typedef struct eg_openapi_s eg_openapi_t;

/* Loads the document at `path` and every file its parameter, request body
 * and path item $refs reach. EG_OK, EG_EPARSE (err: "file:line:col: ..."),
 * EG_EIO, EG_ETOOBIG, EG_ENOMEM. */
int eg_openapi_load(const char *path, eg_openapi_t **out, char *err, size_t errlen);
/* The same for a document in memory named `name` (a path: sibling files
 * are read next to it, confined to its directory; none when that directory
 * does not exist). */
int eg_openapi_parse(const char *text, size_t len, const char *name, eg_openapi_t **out, char *err,
                     size_t errlen);
void eg_openapi_free(eg_openapi_t *oa);

/* "3.0.3", "3.1.0"; 1 for a 3.0 document (nullable, boolean exclusive bounds). */
const char *eg_openapi_version(const eg_openapi_t *oa);
int eg_openapi_is30(const eg_openapi_t *oa);
/* info.title, or "" */
const char *eg_openapi_title(const eg_openapi_t *oa);

size_t eg_openapi_nops(const eg_openapi_t *oa);
const eg_oa_op_t *eg_openapi_op(const eg_openapi_t *oa, size_t i);

/* Warnings, "file:line:col: text", in document order; loading adds them,
 * and so does the schema compiler through eg_openapi_schema_opts. At most
 * EG_OPENAPI_MAX_WARNINGS, then one line saying how many more. */
size_t eg_openapi_nwarnings(const eg_openapi_t *oa);
const char *eg_openapi_warning(const eg_openapi_t *oa, size_t i);
/* Adds one (printf-like); for callers that find more to say (config). */
void eg_openapi_warn(eg_openapi_t *oa, const eg_ydoc_t *doc, const eg_ynode_t *at, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Options for eg_schema_compile of this document's schemas: the 3.0
 * dialect when the document is 3.0, sibling files through the document
 * cache (the same confinement and caps as loading), warnings into the list
 * above. */
void eg_openapi_schema_opts(eg_openapi_t *oa, eg_schema_opts_t *opts);

/* The request checks of one operation as the validate stage runs them
 * (params.h): a rule per query, path and header parameter (style, explode,
 * required, the schema compiled here); with a requestBody, the media types
 * it declares (others are 415), the first JSON type's schema as the body
 * schema, and an application/x-www-form-urlencoded schema's properties
 * (through $ref and allOf) as form-field rules. A parameter described by
 * content is checked for presence only. What a body rule set cannot say
 * (another JSON type with another schema, a schema for a type that is
 * neither JSON nor a form, multipart contents) is a warning. max_body and
 * status go into the set as given (status 0: the dialect's). EG_OK,
 * EG_EPARSE (err: file:line:col of the schema), EG_ENOMEM. */
struct eg_validation_s;
int eg_openapi_validation(eg_openapi_t *oa, const eg_oa_op_t *op, uint64_t max_body, int status,
                          struct eg_validation_s **out, char *err, size_t errlen);

/* The node a "$ref" value names, from the document `from`: "#/a/b",
 * "other.yaml#/a/b", "other.yaml". Loads the file when needed. EG_OK with
 * *doc and *node, EG_EPARSE (err with the ref's position `at`), EG_ENOMEM. */
int eg_openapi_resolve(eg_openapi_t *oa, const eg_ydoc_t *from, const eg_ynode_t *at,
                       const char *ref, const eg_ydoc_t **doc, const eg_ynode_t **node, char *err,
                       size_t errlen);

/* The path of a server URL ("https://h/v1/" -> "/v1", "/api" -> "/api",
 * "http://h" -> ""), {variables} replaced by their defaults from `vars`
 * (a Server Variables map, may be NULL). Writes into out (cap bytes).
 * EG_OK, EG_ERANGE when it does not fit, EG_EINVAL for a variable
 * without a default. */
int eg_openapi_base_path(const char *url, const eg_ynode_t *vars, char *out, size_t cap);

#endif

/* params.h - request parameters checked as OpenAPI 3 serializes them (internal, pure).
 *
 * A parameter rule (eg_param_rule_t) says where a parameter is (query,
 * path, header, or a field of an application/x-www-form-urlencoded body),
 * how it is serialized (OpenAPI's style and explode: query form (default,
 * explode true), spaceDelimited, pipeDelimited, deepObject; path simple
 * (default), label, matrix; header simple), whether it is required, and
 * its JSON Schema (schema.h), compiled once. A set of rules is one
 * route's: the declared `validate:` section fills it, and an OpenAPI
 * loader fills the same struct from a document's parameter objects.
 *
 * Checking a request: each rule's text is found (query pairs split on '&',
 * names and values percent-decoded, '+' as space in form style; a path
 * template's captured segment; the header's value), coerced to JSON by the
 * schema's declared type (eg_schema_types: an integer, number or boolean
 * as a bare literal when it is a valid one, else a type problem; a string
 * quoted and escaped; an array or deepObject object built item by item),
 * parsed onto a jsonr tape and checked with one eg_schema_validate. The
 * JSON text lives in a stack buffer when it fits (no allocation for
 * ordinary parameters); only a problem allocates (its field error).
 *
 * Problems become field errors of the caller's eg_error_t in the seeds'
 * words (typed: "Invalid value for parameter 'num'. Must be between 1 and
 * 100", details valid_range "1-100"), with EG_F_PARAMETER (EG_F_HEADER for
 * headers, EG_F_FIELD for form fields), EG_F_CONSTRAINT (the keyword),
 * the value (bounded; never for secret-looking names) and extra members.
 * Codes: missing_parameter, invalid_parameter_type,
 * invalid_parameter_value, or the rule's own `code` (any catalog code) for
 * its type and value problems.
 */
#ifndef EG_PARAMS_H
#define EG_PARAMS_H

#include <jansson.h>
#include <stddef.h>

#include "errgate/catalog.h"
#include "errgate/error.h"
#include "errgate/http1.h"
#include "errgate/router.h"
#include "schema.h"
#include "ytree.h"

typedef enum { EG_PIN_QUERY = 0, EG_PIN_PATH, EG_PIN_HEADER, EG_PIN_FORM } eg_param_in_t;

typedef enum {
    EG_PSTYLE_FORM = 0, /* query, form bodies: a=1&a=2 (explode) or a=1,2 */
    EG_PSTYLE_SPACE,    /* query: a=1%202 */
    EG_PSTYLE_PIPE,     /* query: a=1|2 */
    EG_PSTYLE_DEEP,     /* query: a[x]=1&a[y]=2 (objects) */
    EG_PSTYLE_SIMPLE,   /* path, header: 1,2 / x,1,y,2 / x=1,y=2 */
    EG_PSTYLE_LABEL,    /* path: .1.2 / .1,2 */
    EG_PSTYLE_MATRIX    /* path: ;a=1;a=2 / ;a=1,2 */
} eg_param_style_t;

/* The longest echoed string value (bytes, cut on a UTF-8 boundary). */
#define EG_PARAM_ECHO_MAX 64

typedef struct {
    char *name; /* as declared (headers compared without case) */
    size_t name_len;
    eg_param_in_t in;
    eg_param_style_t style;
    int explode;
    int required;
    int secret;          /* a value never echoed (Authorization, Cookie, *token*, *secret*...) */
    eg_schema_t *schema; /* owned; NULL: anything goes */
    unsigned types;      /* eg_schema_types(schema): EG_ST_* bits, 0 = any */
    unsigned item_types; /* eg_schema_item_types(schema) */
    /* What the messages say, read from the schema node when it is inline
     * (a $ref'd schema gets the generic wording): */
    int has_min, has_max, xmin, xmax; /* xmin/xmax: exclusive */
    double min, max;
    long long min_len, max_len; /* -1: none */
    json_t *allowed;            /* enum: the values, NULL = none */
    char *format;               /* format name, NULL = none */
    char *pattern;              /* pattern, NULL = none */
    /* The API's own vocabulary: */
    char *code;      /* catalog code for type and value problems, NULL = the defaults */
    char *message;   /* message for every problem of this parameter, NULL = generated */
    json_t *details; /* object merged over each problem's extra members, NULL = none */
} eg_param_rule_t;

typedef struct {
    eg_param_rule_t *rules;
    size_t n;
    size_t max_query_length; /* 0: no bound; else longer queries are query_too_long */
} eg_params_t;

/* What invalid_json's details say (bits of eg_validation_t.json_details). */
#define EG_VJ_JSON_ERROR 1u /* "Unexpected token '}' at position 45" */
#define EG_VJ_POSITION   2u /* byte offset */
#define EG_VJ_LINE       4u
#define EG_VJ_COLUMN     8u
#define EG_VJ_ALL        15u

/* A route's compiled validation: what the declared `validate:` section
 * says, and what an OpenAPI operation will say (the same struct). */
typedef struct eg_validation_s {
    eg_params_t params;   /* query, path, header and form-field rules; max_query_length */
    char **content_types; /* media types a body may have (exact, a whole type,
                             or a +json suffix form: eg_media_type_in); NULL: the
                             ones the rules imply (JSON with a body schema, the
                             form type with form rules), or any when none */
    size_t ncontent_types;
    eg_schema_t *body;     /* the JSON body's schema, NULL = none (a JSON body is not read) */
    int body_required;     /* a request without a body is a problem */
    int has_form;          /* some rule is in EG_PIN_FORM */
    uint64_t max_body;     /* bodies checked up to this size; larger are 413 */
    int status;            /* 400 or 422 for the problems; 0 = the dialect's validation status */
    char *json_message;    /* invalid_json's message, NULL = the catalog's */
    unsigned json_details; /* EG_VJ_* members of invalid_json's details */
    eg_ydoc_t **docs;      /* files a $ref loaded, kept while the schemas live */
    size_t ndocs;
} eg_validation_t;

void eg_validation_free(eg_validation_t *v);

/* The media type of a Content-Type value (no parameters, trimmed), in
 * *type / *tlen. */
void eg_media_type_of(const char *ct, size_t n, const char **type, size_t *tlen);
/* 1 when media type t[0..n) is one of the patterns: exact (case-insensitive),
 * a whole type ("text/" then a star), any type (star, slash, star), or a
 * suffix form ("application/" then star and "+json"). */
int eg_media_type_in(const char *t, size_t n, char *const *patterns, size_t npatterns);
/* 1 for application/json and any +json type. */
int eg_media_type_is_json(const char *t, size_t n);

/* Where the problems go: at most `max` field errors added to `e` (NULL:
 * only count, stopping at the first); `count` counts every problem;
 * `code` is the code of the first one (a rule's or a built-in literal);
 * reports may be reused across the check functions of one request. */
typedef struct {
    eg_error_t *e;
    size_t max;
    size_t count;
    const char *code; /* the first problem's */
    int mixed;        /* a later problem had another code */
} eg_params_report_t;

/* A rule with its defaults for `in` (style form/simple, explode as OpenAPI
 * says: true for form, false otherwise), nothing required, no schema. The
 * name is copied. EG_OK or EG_ENOMEM. */
int eg_param_rule_init(eg_param_rule_t *r, const char *name, size_t n, eg_param_in_t in);
/* Compiles the JSON Schema at `schema` of doc into the rule (the schema
 * module's errors, with file:line:col, in err), and reads what the messages
 * need from the node when it is a map. */
int eg_param_rule_set_schema(eg_param_rule_t *r, const eg_ydoc_t *doc, const eg_ynode_t *schema,
                             const eg_schema_opts_t *opts, char *err, size_t errlen);
/* A declared rule (the gateway config's `validate: {query: {name: RULE}}`):
 * a map of `required`, `style`, `explode`, `code`, `message`, `details` and
 * the JSON Schema keywords of the value (type, minimum, enum, format...),
 * or `schema: {...}` holding them. A code not in cat is refused; a style
 * that does not fit `in` too. EG_OK, EG_EPARSE (err: file:line:col), EG_ENOMEM. */
int eg_param_rule_from_yaml(eg_param_rule_t *r, const eg_ydoc_t *doc, const eg_ynode_t *node,
                            const char *name, eg_param_in_t in, const eg_catalog_t *cat,
                            const eg_schema_opts_t *opts, char *err, size_t errlen);
void eg_param_rule_free(eg_param_rule_t *r);
/* The style named s ("form", "deepObject"...) for `in`: EG_OK or EG_EINVAL. */
int eg_param_style_parse(const char *s, eg_param_in_t in, eg_param_style_t *out);

void eg_params_free(eg_params_t *p);

/* The query string (or a form body) q[0..n), without '?', against the
 * rules whose `in` is `in` (EG_PIN_QUERY or EG_PIN_FORM). EG_OK (valid),
 * EG_ERANGE (rep->count problems), EG_ENOMEM. */
int eg_params_check_query(const eg_params_t *p, eg_param_in_t in, const char *q, size_t n,
                          eg_params_report_t *rep);
/* The path rules against a matched template's captures (router.h). */
int eg_params_check_path(const eg_params_t *p, const eg_path_capture_t *caps, size_t ncaps,
                         eg_params_report_t *rep);
/* The header rules against a request's header fields (repeated fields are
 * one value joined with ", "). */
int eg_params_check_headers(const eg_params_t *p, const eg_http_header_t *h, size_t nh,
                            eg_params_report_t *rep);

/* The seeds' snake_case for a JSON Schema keyword ("minLength" ->
 * "min_length"); for "format", "<format>_format" ("email_format", the
 * flat-snake seed's word; "date_time_format"). */
void eg_constraint_name(const char *kw, const char *format, char *out, size_t cap);
/* camelCase or kebab-case to snake_case, into out (cap bytes, NUL-ended). */
void eg_snake_name(const char *kw, char *out, size_t cap);

/* 1 when a parameter or header of that name must not have its value echoed
 * (authorization, cookie, and names with key, token, secret, password,
 * session, signature or credential in them). */
int eg_param_name_is_secret(const char *name, size_t n);

#endif

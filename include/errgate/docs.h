/* docs.h - the error reference page, generated from the active catalog.
 *
 * `errgate docs` prints it: the error format of a dialect with a field table,
 * the status-code table, every code (status, title, description, resolution,
 * retryable, an example body) and the retry strategy. Generated from the same
 * catalog and dialect the gateway uses, so it cannot drift from behaviour.
 */
#ifndef ERRGATE_DOCS_H
#define ERRGATE_DOCS_H

#include <stddef.h>
#include "catalog.h"
#include "dialect.h"

typedef enum { EG_DOCS_MARKDOWN = 0, EG_DOCS_HTML } eg_docs_format_t;

/* eg_docs_generate writes the reference into a new NUL-terminated buffer
 * (*out, length *len; the caller frees it with free()). Returns EG_OK or
 * EG_ENOMEM. */
int eg_docs_generate(const eg_catalog_t *cat, const eg_dialect_t *d, eg_docs_format_t fmt,
                     char **out, size_t *len);

/* One error an operation can be answered with: its catalog code, the
 * status (0: the dialect's for the code; EG_DOCS_VALIDATION_STATUS: the
 * dialect's for validation_error, as the gateway answers every field
 * problem) and why ("a required parameter is missing"). */
#define EG_DOCS_VALIDATION_STATUS (-1)
typedef struct {
    const char *code;
    int status;
    const char *when;
} eg_docs_answer_t;

/* An API operation and the errors the gateway can answer for it (`errgate
 * docs --openapi`): method "GET", path "/v1/pets/{petId}", summary and
 * operation id (NULL when none). */
typedef struct {
    const char *method, *path, *summary, *operation_id;
    const eg_docs_answer_t *answers;
    size_t nanswers;
} eg_docs_operation_t;

/* eg_docs_generate's page with a section "Errors per operation" (a table
 * of status, code and cause for each of the n operations) before the code
 * list; `api` (NULL: none) names the API in that section's introduction. */
int eg_docs_generate_ops(const eg_catalog_t *cat, const eg_dialect_t *d, eg_docs_format_t fmt,
                         const char *api, const eg_docs_operation_t *ops, size_t n, char **out,
                         size_t *len);

#endif

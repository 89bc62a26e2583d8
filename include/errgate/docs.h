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

#endif

/* catalog.h - the catalog of canonical error codes.
 *
 * A catalog maps canonical snake_case codes ("rate_limit_exceeded") to their
 * status, type (category), title, default message, description, resolution,
 * retryable flag, docs link, spelling in each dialect ("RATE_LIMIT_EXCEEDED"
 * in typed) and upstream synonyms ("resource_not_found" -> "not_found").
 *
 * The built-in catalog holds the union of the codes of the five seed pages.
 * A catalog file (YAML, see docs/catalog.md) overrides status, title,
 * message, docs URL and friends of existing codes or adds new ones.
 *
 * Ownership: the catalog owns its entries; pointers returned by lookups stay
 * valid until eg_catalog_free(). A catalog is immutable after loading, so one
 * catalog may be shared by many threads.
 */
#ifndef ERRGATE_CATALOG_H
#define ERRGATE_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

typedef struct {
    const char *dialect;  /* dialect name, e.g. "typed" */
    const char *spelling; /* code as that dialect spells it, e.g. "INTERNAL_SERVER_ERROR" */
} eg_spelling_t;

typedef struct {
    const char *code;        /* canonical snake_case id */
    int status;              /* default HTTP status */
    const char *type;        /* category, e.g. "rate_limit_error" */
    const char *title;       /* e.g. "Too Many Requests" */
    const char *message;     /* default human-readable message */
    const char *description; /* when it is used */
    const char *resolution;  /* what the caller should do */
    const char *docs;        /* explicit docs URL or NULL (see eg_catalog_docs_url) */
    int retryable;           /* 1 when retrying the same request may succeed */
    const eg_spelling_t *spellings; /* per-dialect spellings (those that differ from casing) */
    size_t nspellings;
    const char *const *synonyms; /* other codes meaning the same, any case */
    size_t nsynonyms;
    unsigned plain;              /* set by the catalog: bit EG_S_CODE, _TYPE, _TITLE, _MESSAGE
                                    (error.h) when that string needs no JSON escaping */
    uint32_t len[4];             /* set by the catalog: strlen of code, type, title and
                                    message, indexed by EG_S_CODE.._MESSAGE (0 when NULL) */
} eg_catalog_entry_t;

typedef struct eg_catalog_s eg_catalog_t;

/* eg_catalog_new_builtin builds the built-in catalog into *out.
 * Returns EG_OK or EG_ENOMEM. Free with eg_catalog_free(). */
int eg_catalog_new_builtin(eg_catalog_t **out);

/* eg_catalog_load_file applies a YAML catalog file to `cat`: entries for
 * existing codes override the given attributes, new codes are added, and a
 * top-level `docs_url: "https://.../{code}"` sets the docs template.
 * On failure returns EG_EIO/EG_EPARSE/EG_ENOMEM, writes "file:line:col: what"
 * into err (NUL-terminated, at most errlen bytes) and leaves `cat` unchanged. */
int eg_catalog_load_file(eg_catalog_t *cat, const char *path, char *err, size_t errlen);
/* Same, from a buffer; `name` is used in error messages. */
int eg_catalog_load_yaml(eg_catalog_t *cat, const char *text, size_t len, const char *name,
                         char *err, size_t errlen);

void eg_catalog_free(eg_catalog_t *cat);

/* eg_catalog_find returns the entry whose canonical code is exactly `code`, or NULL. */
const eg_catalog_entry_t *eg_catalog_find(const eg_catalog_t *cat, const char *code);

/* eg_catalog_lookup resolves any spelling: canonical code, any dialect's spelling
 * or a synonym, compared case-insensitively ("NOT_FOUND", "resource_not_found").
 * `n` is the length of `code`. Returns NULL for unknown codes. */
const eg_catalog_entry_t *eg_catalog_lookup(const eg_catalog_t *cat, const char *code, size_t n);

/* eg_catalog_for_status returns the generic entry for an HTTP status
 * (404 -> not_found, 502 -> bad_gateway), falling back to the class
 * (4xx -> bad_request, 5xx -> internal_error). Never NULL for 400..599. */
const eg_catalog_entry_t *eg_catalog_for_status(const eg_catalog_t *cat, int status);

/* eg_catalog_spelling returns how `dialect` spells the entry's code, or NULL
 * when it has no special spelling (the dialect's casing rule applies). */
const char *eg_catalog_spelling(const eg_catalog_entry_t *e, const char *dialect);

/* eg_catalog_safe_details: the details members a translated 5xx of e's
 * code keeps (the seeds' status_page, timeout_duration, service...: a
 * catalog file's `safe_details`); every other member of a 5xx may be an
 * internal and is stripped. Sets *names (NULL when none), returns n. */
size_t eg_catalog_safe_details(const eg_catalog_t *cat, const eg_catalog_entry_t *e, const char *const **names);

/* eg_catalog_answered_as: the code dialect `dialect` answers e's code with
 * when the dialect's own code_map says nothing of it (a catalog file's
 * `answered_as: {jsonapi: unauthorized}`), or NULL. */
const char *eg_catalog_answered_as(const eg_catalog_t *cat, const eg_catalog_entry_t *e, const char *dialect);

/* Codes an API does not use can be left out of its published catalog
 * (`errors.codes.exclude` / `include`): they stay known (an upstream's
 * code is still read, the gateway's own still answered) but `errgate docs`
 * does not list them. eg_catalog_set_listed returns EG_OK, or EG_ENOENT
 * when `code` is not a canonical code of the catalog. */
int eg_catalog_set_listed(eg_catalog_t *cat, const char *code, int listed);
int eg_catalog_listed(const eg_catalog_t *cat, const eg_catalog_entry_t *e);

/* Entries in a stable order (as listed in the built-in catalog, then added ones). */
size_t eg_catalog_count(const eg_catalog_t *cat);
const eg_catalog_entry_t *eg_catalog_at(const eg_catalog_t *cat, size_t i);

/* eg_catalog_docs_template returns the docs URL template ("...{code}") or NULL. */
const char *eg_catalog_docs_template(const eg_catalog_t *cat);
/* eg_catalog_set_docs_template copies `tmpl` (NULL clears). */
int eg_catalog_set_docs_template(eg_catalog_t *cat, const char *tmpl);

/* eg_catalog_docs_url writes the docs URL of `e` into buf: e->docs if set, else the
 * template with {code} replaced. Returns the length (like snprintf) or 0 when
 * there is no docs URL. Allocates nothing. */
size_t eg_catalog_docs_url(const eg_catalog_t *cat, const eg_catalog_entry_t *e, char *buf,
                           size_t cap);

#endif

/* catalog_builtin.h - the built-in catalog data (private to catalog.c). */
#ifndef EG_CATALOG_BUILTIN_H
#define EG_CATALOG_BUILTIN_H

#include "errgate/catalog.h"

typedef struct {
    eg_catalog_entry_t e;
    int generic; /* the code answering its status when nothing more specific is known */
} eg__builtin_entry_t;

extern const eg__builtin_entry_t eg__builtin_catalog[];
extern const size_t eg__builtin_catalog_count;

/* Per code, the details members a translated 5xx keeps (catalog.h). */
typedef struct {
    const char *code;
    const char *const *names;
    size_t n;
} eg__builtin_safe_t;

extern const eg__builtin_safe_t eg__builtin_safe[];
extern const size_t eg__builtin_safe_count;

#endif

/* embedded.h - data files compiled into the library (see cmake/embed.cmake). */
#ifndef EG_EMBEDDED_H
#define EG_EMBEDDED_H
#include <stddef.h>

typedef struct {
    const char *name; /* file base name without extension */
    const char *data; /* NUL-terminated contents */
    size_t len;       /* length without the NUL */
} eg__embedded_t;

extern const eg__embedded_t eg__builtin_dialect[];
extern const size_t eg__builtin_dialect_count;

#endif

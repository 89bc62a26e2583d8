/* empty.c - keeps a library target valid while it has no sources. */
typedef int eg_empty_translation_unit_t;

/* format_tables.h - the ISO code lists of lib/format_tables.c (internal to format.c).
 *
 * Kept apart from format.h so that the contract stays the format names and
 * checks; these are how two of the checks are answered.
 */
#ifndef EG_FORMAT_TABLES_H
#define EG_FORMAT_TABLES_H

#include <stddef.h>

/* 1 when s[0..n) is an assigned ISO 3166-1 alpha-2 code (upper case). */
int eg__format_country(const char *s, size_t n);
/* 1 when s[0..n) is an ISO 639-1 code in force (lower case). */
int eg__format_language(const char *s, size_t n);
/* The same answers by a binary search of the lists (the reference for tests). */
int eg__format_country_listed(const char *s, size_t n);
int eg__format_language_listed(const char *s, size_t n);
/* The tables' sizes (249 and 183), for tests. */
size_t eg__format_country_count(void);
size_t eg__format_language_count(void);

#endif

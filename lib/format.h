/* format.h - the "format" values of JSON Schema and OpenAPI, checked (internal).
 *
 * One table of names: the ones that assert (date, date-time, time, email,
 * uuid, uri, uri-reference, hostname, ipv4, ipv6, regex, json-pointer,
 * int32, int64, and errgate's iso3166 / iso639 country and language codes,
 * whose code lists live in lib/format_tables.c) and the ones OpenAPI
 * defines as annotations only (float, double, byte, binary, password),
 * which are known but always pass. A name in neither is unknown: the
 * schema compiler refuses it at load. Checks are pure, allocate nothing
 * and take time linear in the input.
 */
#ifndef EG_FORMAT_H
#define EG_FORMAT_H

#include <stddef.h>

typedef enum {
    EG_FMT_NONE = 0, /* no format: everything passes */
    EG_FMT_DATE,     /* RFC 3339 full-date, real calendar days (2024-02-29 yes, 2023-02-29 no) */
    EG_FMT_DATE_TIME, /* RFC 3339 date-time with offset, leap second 23:59:60 only at UTC-adjusted 23:59 */
    EG_FMT_TIME,     /* RFC 3339 full-time (offset required) */
    EG_FMT_EMAIL,    /* RFC 5321 Mailbox: dot-atom or quoted local part, domain or [IP literal] */
    EG_FMT_UUID,     /* RFC 9562 textual form, 8-4-4-4-12 hex, any version */
    EG_FMT_URI,      /* RFC 3986 URI (scheme required) */
    EG_FMT_URI_REFERENCE, /* RFC 3986 URI-reference */
    EG_FMT_HOSTNAME, /* RFC 1123 host name: labels 1-63, total <= 253 */
    EG_FMT_IPV4,     /* dotted quad, no leading zeros */
    EG_FMT_IPV6,     /* RFC 4291 text forms, no zone id */
    EG_FMT_REGEX,    /* compiles as an ECMA-262 pattern (PCRE2 with ECMA-style options) */
    EG_FMT_JSON_POINTER, /* RFC 6901 */
    EG_FMT_INT32,    /* OpenAPI: an integer within int32 (asserted on numbers, not strings) */
    EG_FMT_INT64,    /* OpenAPI: an integer within int64 */
    EG_FMT_ISO3166,  /* ISO 3166-1 alpha-2 country code, upper case ("US") */
    EG_FMT_ISO639,   /* ISO 639-1 alpha-2 language code, lower case ("en") */
    EG_FMT_ANNOTATION /* known, never asserted: float, double, byte, binary, password */
} eg_format_t;

/* The format named name[0..n): EG_OK and *out, or EG_ENOENT when unknown. */
int eg_format_lookup(const char *name, size_t n, eg_format_t *out);
/* Its canonical name ("date-time"); "" for EG_FMT_NONE. */
const char *eg_format_name(eg_format_t f);
/* 1 when the string s[0..n) (UTF-8, not NUL-terminated) is valid for f,
 * 0 when not. Formats that apply to numbers (int32, int64) pass every
 * string; eg_format_check_number is theirs. */
int eg_format_check(eg_format_t f, const char *s, size_t n);
/* 1 when the number (its JSON text, already known valid) is valid for f:
 * int32 / int64 ranges; every other format passes numbers. */
int eg_format_check_number(eg_format_t f, const char *text, size_t n);

#endif

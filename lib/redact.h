/* redact.h - hiding secrets in the query string of a logged request target.
 *
 * The access log keeps the target a client sent, so an API key passed as
 * ?api_key=... would land in every log file and log shipper. A parameter
 * is hidden when the name a server would see is one of the configured
 * names: the name is compared percent-decoded (api%5Fkey) and without
 * regard to ASCII case (API_KEY, Api_Key); '.' and ' ' count as '_' (PHP
 * reads api.key as api_key); a decoded NUL ends it (C code stops there);
 * and any bracketed part counts (api_key[]=, auth[api_key]=). Both '&'
 * and ';' separate parameters (a=1;api_key=...), since servers split on
 * either. Erring toward hiding is cheap: only a log line loses a value.
 * Pure string work, no allocation: the caller gives the output buffer.
 */
#ifndef EG_REDACT_H
#define EG_REDACT_H

#include <stddef.h>

/* 1 when the raw (still percent-encoded) parameter name `name` of n bytes
 * names one of the nnames NUL-terminated `names`, as described above. */
int eg_redact_name(const char *name, size_t n, char *const *names, size_t nnames);

/* Copies the request target into out (cap bytes, no NUL written) with the
 * value of every hidden query parameter replaced by "[REDACTED]"; returns
 * the bytes written. The path keeps at most 600 bytes; a parameter that
 * does not fit whole is left out with everything after it, so a cut never
 * shows part of a secret. */
size_t eg_redact_target(const char *target, size_t n, char *const *names, size_t nnames, char *out,
                        size_t cap);

#endif

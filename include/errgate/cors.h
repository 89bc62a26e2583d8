/* cors.h - Cross-Origin Resource Sharing decisions and headers, pure logic.
 *
 * A policy (origins, methods, request headers, exposed headers, max_age,
 * credentials) is built and validated once at configuration time; on the
 * request path two functions turn the request's Origin (and, for a
 * preflight, Access-Control-Request-Method/-Headers) into the header lines
 * the gateway adds to its answer. They never allocate and write into a
 * caller buffer of eg_cors_headers_max(policy) bytes.
 *
 * Rules (Fetch standard, "CORS protocol"; RFC 6454 for origins):
 *  - An origin is compared as scheme://host[:port]: scheme and host
 *    case-insensitively, a port equal to the scheme's default (http/ws 80,
 *    https/wss 443) as no port. A listed origin may be "*" (any origin),
 *    "null" (the opaque origin, never matched otherwise, not even by "*"),
 *    or a wildcard: https:// then *.example.com (written as one string)
 *    stands for one or more labels before ".example.com", with the same
 *    scheme and port; it does not match example.com itself.
 *  - An Origin value that is not a valid serialized origin (control
 *    characters, spaces, a path, over EG_CORS_ORIGIN_MAX bytes...) is not
 *    allowed and is never echoed. An allowed origin is echoed byte for byte
 *    (browsers compare it byte for byte) unless the policy is "*" without
 *    credentials, which answers "*". With credentials "*" is never written:
 *    the policy builder refuses credentials with origins "*".
 *  - Every response whose Access-Control-Allow-Origin is not "*" (including
 *    the ones with no CORS headers at all) carries "Vary: Origin", so a
 *    shared cache never serves one origin's answer to another.
 *  - A disallowed request gets no Access-Control-* line at all.
 *
 * Output: zero or more "Name: value\r\n" lines, NUL-terminated. The caller
 * appends them to the head it is writing; the gateway's lines replace any
 * Access-Control-* field of the upstream's response (see eg_cors_is_cors_header).
 * A policy is immutable once built and may be shared by threads.
 */
#ifndef ERRGATE_CORS_H
#define ERRGATE_CORS_H

#include <stddef.h>

#include "errgate/common.h"
#include "errgate/router.h"

#define EG_CORS_ORIGIN_MAX          300   /* longest Origin value considered */
#define EG_CORS_REQUEST_HEADERS_MAX 1024  /* longest Access-Control-Request-Headers considered */
#define EG_CORS_MAX_AGE_DEFAULT     600   /* seconds, when the configuration says nothing */
#define EG_CORS_MAX_AGE_LIMIT       86400 /* Firefox's cap (Chromium caps at 7200) */
#define EG_CORS_NAME_MAX            128   /* longest header name in headers/expose */

/* Methods allowed when the spec says 0. */
#define EG_CORS_METHODS_DEFAULT                                                                    \
    (EG_M_GET | EG_M_HEAD | EG_M_POST | EG_M_PUT | EG_M_PATCH | EG_M_DELETE)

/* Request headers allowed when the spec lists none: what errgate's own
 * clients send. Usable as an array initializer, e.g. to add a custom key
 * header: const char *h[] = {EG_CORS_HEADERS_DEFAULT, "X-My-Key"}; */
#define EG_CORS_HEADERS_DEFAULT                                                                    \
    "Authorization", "Content-Type", "Idempotency-Key", "X-API-Key", "X-Request-ID",               \
        "traceparent", "tracestate"

/* Response headers always exposed (the spec's `expose` adds to them): the
 * ones errgate itself writes on its answers and errors. */
#define EG_CORS_EXPOSE_DEFAULT                                                                     \
    "X-Request-ID", "X-Error-Code", "Retry-After", "RateLimit", "RateLimit-Policy",                \
        "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Idempotent-Replayed"

/* A policy as plain C values (the configuration loader fills it from YAML).
 * Strings are copied by eg_cors_policy_new; the spec may be freed after. */
typedef struct {
    const char *const *origins; /* "https://app.example.com", "*", "null", or a wildcard (above) */
    size_t n_origins;           /* at least 1 */
    unsigned methods;           /* EG_M_* of GET HEAD POST PUT PATCH DELETE OPTIONS; 0: default */
    const char *const *headers; /* allowed request header names, or "*" (any); */
    size_t n_headers;           /* 0: EG_CORS_HEADERS_DEFAULT */
    const char *const *expose;  /* exposed response headers beyond EG_CORS_EXPOSE_DEFAULT, */
    size_t n_expose;            /* or "*" (all; not with credentials) */
    long max_age;               /* Access-Control-Max-Age seconds, 0..86400; -1: not sent */
    int credentials;            /* 1: Access-Control-Allow-Credentials: true */
} eg_cors_spec_t;

typedef struct eg_cors_policy_s eg_cors_policy_t;

/* Zeroes the spec and sets the defaults (methods 0, max_age 600). */
void eg_cors_spec_init(eg_cors_spec_t *spec);

/* Checks a spec without building it. EG_OK, or EG_EINVAL with the first
 * problem in err (NUL-terminated, at most errlen bytes), naming the key as
 * the configuration writes it, e.g. "origins[1] 'https://a.example.com/':
 * an origin has no path; write 'https://a.example.com'". */
int eg_cors_spec_check(const eg_cors_spec_t *spec, char *err, size_t errlen);

/* Validates (as eg_cors_spec_check) and builds a policy. EG_OK, EG_EINVAL
 * (reason in err) or EG_ENOMEM; *out is set only on EG_OK. */
int eg_cors_policy_new(const eg_cors_spec_t *spec, eg_cors_policy_t **out, char *err,
                       size_t errlen);
void eg_cors_policy_free(eg_cors_policy_t *p);

/* Bytes (NUL included) that `out` must hold for eg_cors_preflight and
 * eg_cors_response_headers on this policy, whatever the request sends. A
 * worker may size one scratch buffer with the largest over all policies. */
size_t eg_cors_headers_max(const eg_cors_policy_t *p);

/* 1 when `origin` (len bytes; NULL: no Origin header) is a valid origin the
 * policy allows. An absent Origin is never "allowed". */
int eg_cors_origin_allowed(const eg_cors_policy_t *p, const char *origin, size_t len);

typedef enum {
    EG_CORS_NOT_PREFLIGHT = 0, /* no Origin or no Access-Control-Request-Method: route it */
    EG_CORS_ALLOWED,           /* answer 204 with the lines written */
    EG_CORS_DENIED,            /* answer without any CORS line (nothing is written) */
} eg_cors_verdict_t;

/* Judges an OPTIONS request. origin, method (the Access-Control-Request-
 * Method value) and headers (the Access-Control-Request-Headers value) are
 * header values with their lengths, NULL when the header is absent. Writes
 * the lines of the 204 answer when allowed, nothing otherwise ("" and
 * *outlen 0). *verdict is set; *reason (optional) is a static phrase for
 * the log when denied ("origin not allowed", "method not allowed", ...),
 * NULL otherwise. Returns EG_OK, or EG_ERANGE when cap <
 * eg_cors_headers_max(p) (nothing is written then). */
int eg_cors_preflight(const eg_cors_policy_t *p, const char *origin, size_t origin_len,
                      const char *method, size_t method_len, const char *headers,
                      size_t headers_len, char *out, size_t cap, size_t *outlen,
                      eg_cors_verdict_t *verdict, const char **reason);

/* The lines for any other response on a route with this policy, the
 * gateway's own errors included: Access-Control-Allow-Origin, -Allow-
 * Credentials, -Expose-Headers and Vary: Origin when the origin is allowed;
 * only "Vary: Origin" when it is not (or absent), unless the policy answers
 * "*" to everyone, which writes the "*" lines even without an Origin.
 * Returns EG_OK or EG_ERANGE as eg_cors_preflight. */
int eg_cors_response_headers(const eg_cors_policy_t *p, const char *origin, size_t origin_len,
                             char *out, size_t cap, size_t *outlen);

/* 1 for a response field name the CORS policy owns ("Access-Control-*",
 * case-insensitive): the gateway drops the upstream's copies of these when
 * it applies a policy, so a browser never sees two Allow-Origin values. */
int eg_cors_is_cors_header(const char *name, size_t len);

#endif

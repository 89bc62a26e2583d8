/* reqid.h - request ids and W3C trace context, pure functions.
 *
 * A request keeps a valid inbound X-Request-ID (1 to 200 of letters, digits
 * and "+/=-_."), otherwise gets "req_" + 128 random bits in hex. A valid
 * `traceparent` (W3C Trace Context level 1) passes through; an absent or
 * invalid one is replaced by a new one. Randomness comes from the caller, so
 * the library stays free of I/O and the functions are testable.
 */
#ifndef ERRGATE_REQID_H
#define ERRGATE_REQID_H

#include <stddef.h>
#include <stdint.h>

#define EG_REQID_MAX 200
#define EG_REQID_GEN_LEN 36   /* "req_" + 32 hex */
#define EG_TRACEPARENT_LEN 55 /* "00-" 32 "-" 16 "-" 2 */

/* 1 when `s` (n bytes) is an acceptable inbound request id. */
int eg_reqid_valid(const char *s, size_t n);

/* Writes "req_" + hex of 16 random bytes and a NUL into out (>= 37 bytes). */
void eg_reqid_generate(const uint8_t rnd[16], char *out);

/* 1 when `s` (n bytes) is a valid version-00 traceparent with non-zero ids. */
int eg_traceparent_valid(const char *s, size_t n);

/* Writes a new traceparent "00-<trace>-<parent>-01" + NUL into out (>= 56
 * bytes) from 24 random bytes (16 trace id, 8 parent id); all-zero ids are
 * nudged to be valid. */
void eg_traceparent_generate(const uint8_t rnd[24], char *out);

#endif

/* decode.h - HTTP content codings (RFC 9110 8.4) of a whole body: gzip,
 * x-gzip and deflate, decoded with zlib under two bounds.
 *
 * The gateway translates an upstream's error body; a body sent with
 * Content-Encoding: gzip must be decoded first, or its compressed bytes
 * would be read as text. A decoder in front of untrusted input is a
 * decompression bomb's target (a few KiB can inflate to gigabytes), so
 * every decode has an absolute cap on what it produces and a cap on the
 * ratio of output to input; past either it stops at once.
 *
 * Pure: no I/O, no globals; the output is allocated and owned by the caller.
 */
#ifndef ERRGATE_DECODE_H
#define ERRGATE_DECODE_H

#include <stddef.h>
#include "common.h"

typedef enum {
    EG_CODING_IDENTITY = 0, /* no coding (absent, empty or "identity") */
    EG_CODING_GZIP,         /* "gzip" or "x-gzip" (RFC 1952; several members are one body) */
    EG_CODING_DEFLATE,      /* "deflate": zlib (RFC 1950), or raw deflate as some servers send */
    EG_CODING_UNSUPPORTED,  /* anything else ("br", "zstd", "compress"), or two codings stacked */
} eg_coding_t;

/* Folds one Content-Encoding field value into `prev` (start with
 * EG_CODING_IDENTITY and call once per field line): comma-separated tokens,
 * any case, optional whitespace; "identity" and empty tokens add nothing.
 * More than one coding in all is EG_CODING_UNSUPPORTED. */
eg_coding_t eg_content_coding(eg_coding_t prev, const char *value, size_t n);

/* The name of a coding, for log lines ("gzip", "deflate", ...). */
const char *eg_coding_name(eg_coding_t coding);

/* Decodes in[0..n) of the coding into a new buffer: *out (NUL-terminated,
 * free() it) and *outlen. The output may not exceed max_out bytes nor, when
 * max_ratio is not 0, max_ratio times n.
 * Returns EG_OK; EG_ETOOBIG past a bound (nothing is returned, the decoding
 * stopped there); EG_EPARSE for a corrupt or truncated stream, or bytes
 * after its end that are not another gzip member; EG_EINVAL for
 * EG_CODING_UNSUPPORTED; EG_ENOMEM. Identity copies (bounded by max_out). */
int eg_decode_body(eg_coding_t coding, const char *in, size_t n, size_t max_out, unsigned max_ratio,
                   char **out, size_t *outlen);

#endif

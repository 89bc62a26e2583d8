/* http1.h - a strict, zero-copy HTTP/1.1 parser for requests and responses.
 *
 * The parser never allocates and never copies: a parsed head is slices
 * (pointer + length) into the caller's buffer, and the header array is the
 * caller's. It is strict the way RFC 9112 asks a security-conscious
 * intermediary to be: anything that could be read two ways (request
 * smuggling) is rejected, each rejection with its own reason string so the
 * gateway can log and count it. Line endings must be CRLF.
 *
 * Incremental use: call eg_http1_parse_request() on all bytes received so
 * far; it returns EG_EAGAIN until the head is complete (only the new bytes
 * are searched for the end of the head, via `scanned`), then the head's
 * length. Bodies are framed by `framing`; chunked bodies are validated with
 * eg_chunked_feed() as they stream through.
 */
#ifndef ERRGATE_HTTP1_H
#define ERRGATE_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* without surrounding whitespace */
    size_t value_len;
} eg_http_header_t;

typedef struct {
    size_t max_head;    /* request/status line + headers + final CRLF (431 when exceeded) */
    size_t max_headers; /* number of header lines (431) */
    size_t max_uri;     /* request-target length (414) */
} eg_http1_limits_t;

typedef enum {
    EG_HTTP1_OK = 0,
    EG_HTTP1_BAD_REQUEST,         /* 400 (502 for a response) */
    EG_HTTP1_URI_TOO_LONG,        /* 414 */
    EG_HTTP1_HEADERS_TOO_LARGE,   /* 431 */
} eg_http1_error_t;

typedef enum {
    EG_FRAMING_NONE = 0,    /* no body */
    EG_FRAMING_LENGTH,      /* content_length bytes */
    EG_FRAMING_CHUNKED,     /* chunked transfer coding */
    EG_FRAMING_UNTIL_CLOSE, /* response body ends when the connection closes */
} eg_framing_t;

typedef struct {
    /* request line */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    /* status line */
    int status;
    const char *reason;
    size_t reason_len;
    int minor_version; /* HTTP/1.<minor>: 0 or 1 */
    eg_http_header_t *headers;
    size_t nheaders;
    eg_framing_t framing;
    uint64_t content_length;
    int keep_alive;      /* the connection may be reused after this message */
    int expect_continue; /* Expect: 100-continue */
    int upgrade;         /* Connection: upgrade with an Upgrade header */
    size_t head_len;
    /* when parsing failed */
    eg_http1_error_t error;
    const char *why;     /* static reason, e.g. "both Content-Length and Transfer-Encoding" */
    size_t error_offset; /* byte offset of the problem in the buffer */
} eg_http1_msg_t;

/* eg_http1_parse_request parses the head of a request in buf[0..len).
 * `headers` (capacity hcap, at least lim->max_headers) receives the header
 * slices. `*scanned` (start at 0, keep between calls on the same message)
 * remembers how far the end-of-head search got. Returns the head length
 * (> 0) with *msg filled, EG_EAGAIN when more bytes are needed, or EG_EPARSE
 * with msg->error / msg->why / msg->error_offset set. */
int eg_http1_parse_request(const char *buf, size_t len, const eg_http1_limits_t *lim,
                           eg_http_header_t *headers, size_t hcap, size_t *scanned,
                           eg_http1_msg_t *msg);

/* eg_http1_parse_response parses an upstream response head. `head_request`
 * says the request was HEAD (no body whatever the headers say). Same returns. */
int eg_http1_parse_response(const char *buf, size_t len, const eg_http1_limits_t *lim,
                            eg_http_header_t *headers, size_t hcap, size_t *scanned,
                            int head_request, eg_http1_msg_t *msg);

/* Case-insensitive lookup of the first header named `name`; NULL if absent. */
const eg_http_header_t *eg_http1_header(const eg_http1_msg_t *msg, const char *name);

/* 1 when the comma-separated list `value` contains `token` (case-insensitive). */
int eg_http1_has_token(const char *value, size_t n, const char *token);

/* Incremental, validating chunked-body reader. Zero-initialise to start. */
typedef struct {
    int state;
    uint64_t remaining;  /* data bytes left in the current chunk */
    int digits;          /* hex digits read for the current size */
    size_t line;         /* bytes in the current trailer line */
    uint64_t body_bytes; /* data bytes seen so far */
    const char *why;     /* reason when EG_EPARSE was returned */
} eg_chunked_t;

/* eg_chunked_feed consumes bytes of a chunked body; the bytes themselves are
 * left for the caller to forward or decode. Returns EG_OK when the body ended
 * (*consumed = bytes up to and including the final CRLF), EG_EAGAIN when all
 * `len` bytes were consumed and more are needed, EG_EPARSE on malformed
 * framing (st->why says what). `max_trailer` bounds each trailer line. */
int eg_chunked_feed(eg_chunked_t *st, const char *buf, size_t len, size_t max_trailer,
                    size_t *consumed);

/* eg_chunked_data is the decoding variant: it also reports where data bytes
 * are. It consumes at most up to the end of one data run and returns
 * EG_EAGAIN/EG_OK/EG_EPARSE like eg_chunked_feed; data and data_len (the
 * run may be empty) point into buf. */
int eg_chunked_data(eg_chunked_t *st, const char *buf, size_t len, size_t max_trailer,
                    size_t *consumed, const char **data, size_t *data_len);

#endif

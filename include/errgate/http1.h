/* http1.h - a strict, zero-copy, incremental HTTP/1.1 parser (RFC 9112) for
 * requests (the gateway's clients) and responses (its upstreams), and a
 * validating chunked-body decoder.
 *
 * Zero-copy: the parser never allocates and never copies. A parsed head is
 * slices (pointer + length) into the caller's buffer; the header array is the
 * caller's. Slices stay valid as long as the caller keeps the buffer.
 *
 * Strict: anything a second parser (an upstream, a cache) could read another
 * way is refused - request smuggling lives in those gaps. Line endings must
 * be CRLF (a bare LF is refused, not tolerated); obs-fold, whitespace before
 * a colon, control bytes, duplicate or malformed framing headers are refused.
 * Every rejection carries its own static reason string and the byte offset
 * of the problem, so the gateway can log and count each kind.
 *
 * Incremental: call the parse function on all bytes received so far for the
 * message, with the same `scanned` cursor each time. It returns EG_EAGAIN
 * until the head is complete (only the bytes added since the last call are
 * searched, so a slow client costs linear time), then the head's length.
 * The result of a sequence of calls never depends on how the bytes were
 * split. Limits (414, 431) are enforced before the head is complete.
 */
#ifndef ERRGATE_HTTP1_H
#define ERRGATE_HTTP1_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "common.h"

/* One header field: slices into the parsed buffer, not NUL-terminated. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value; /* without leading and trailing whitespace (OWS) */
    size_t value_len;
} eg_http_header_t;

/* Limits chosen by the caller; exceeding them is EG_HTTP1_URI_TOO_LONG or
 * EG_HTTP1_HEADERS_TOO_LARGE. */
typedef struct {
    size_t max_head;    /* start line + headers + final CRLF, in bytes (431) */
    size_t max_headers; /* number of header fields (431) */
    size_t max_uri;     /* request-target length in bytes (414) */
} eg_http1_limits_t;

/* Why a head was refused; eg_http1_error_status() maps it to a status. */
typedef enum {
    EG_HTTP1_OK = 0,
    EG_HTTP1_BAD_REQUEST,           /* 400 (502 when it is an upstream's response) */
    EG_HTTP1_URI_TOO_LONG,          /* 414 */
    EG_HTTP1_HEADERS_TOO_LARGE,     /* 431 */
    EG_HTTP1_VERSION_NOT_SUPPORTED, /* 505: well-formed HTTP/x.y other than 1.0 and 1.1 */
} eg_http1_error_t;

/* How the body after the head is delimited; computed once per head. */
typedef enum {
    EG_FRAMING_NONE = 0,    /* no body */
    EG_FRAMING_LENGTH,      /* content_length bytes */
    EG_FRAMING_CHUNKED,     /* chunked transfer coding (see eg_chunked_t) */
    EG_FRAMING_UNTIL_CLOSE, /* response body ends when the connection closes */
} eg_framing_t;

/* A parsed head. Every pointer is a slice into the caller's buffer, except
 * `headers` (the caller's array) and `why` (a static string). */
typedef struct {
    /* request line (requests only) */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    /* status line (responses only) */
    int status;
    const char *reason;
    size_t reason_len;
    int minor_version; /* HTTP/1.<minor>: 0 or 1 */
    eg_http_header_t *headers;
    size_t nheaders;
    /* derived once from the headers */
    eg_framing_t framing;
    uint64_t content_length; /* when framing is EG_FRAMING_LENGTH */
    int keep_alive;          /* the connection may carry another message after this one */
    int expect_continue;     /* Expect: 100-continue */
    int upgrade;             /* Connection: upgrade with an Upgrade header (or a 101 response) */
    const eg_http_header_t *connection; /* the first Connection field, NULL when absent */
    const char *host;        /* the Host value, NULL when absent (HTTP/1.0) */
    size_t host_len;
    size_t head_len;
    /* when parsing failed (EG_EPARSE) */
    eg_http1_error_t error;
    const char *why;     /* static reason, e.g. "both Content-Length and Transfer-Encoding" */
    size_t error_offset; /* byte offset of the problem in the buffer */
} eg_http1_msg_t;

/* eg_http1_parse_request parses the head of a request in buf[0..len).
 *
 * lim: the limits (required). headers/hcap: the caller's array receiving the
 * header slices; more than min(hcap, lim->max_headers) fields is 431.
 * scanned: the caller's cursor; set it to 0 for each new message and pass it
 * unchanged between calls for the same message (buf must keep the earlier
 * bytes at the same offsets). msg: always overwritten.
 *
 * Returns the head length (> 0; the body or the next pipelined message
 * starts there) with *msg filled; EG_EAGAIN when more bytes are needed; or
 * EG_EPARSE with msg->error, msg->why and msg->error_offset set. Nothing is
 * allocated; msg's slices point into buf. */
int eg_http1_parse_request(const char *buf, size_t len, const eg_http1_limits_t *lim,
                           eg_http_header_t *headers, size_t hcap, size_t *scanned,
                           eg_http1_msg_t *msg);

/* eg_http1_parse_response parses an upstream's response head, with the same
 * arguments and returns as eg_http1_parse_request (lim->max_uri is unused).
 * head_request: nonzero when the request was HEAD, so the response has no
 * body whatever its headers say (as 1xx, 204 and 304 responses). A response
 * with neither Content-Length nor Transfer-Encoding is read until close. */
int eg_http1_parse_response(const char *buf, size_t len, const eg_http1_limits_t *lim,
                            eg_http_header_t *headers, size_t hcap, size_t *scanned,
                            int head_request, eg_http1_msg_t *msg);

/* eg_http1_error_status maps a parse error to the HTTP status a server
 * answers with: 400, 414, 431 or 505 (0 for EG_HTTP1_OK). */
int eg_http1_error_status(eg_http1_error_t err);

/* eg_http1_header returns the first header of a parsed message whose name
 * equals `name` (a NUL-terminated string, compared case-insensitively), or
 * NULL. The result points into msg->headers. */
const eg_http_header_t *eg_http1_header(const eg_http1_msg_t *msg, const char *name);

/* eg_http1_lower_eq returns 1 when s[0..n) equals the lowercase literal
 * lit (letters, digits and '-' only, n bytes) ignoring case. Folding with
 * |0x20 is exact when s is a parsed header name or value: the only bytes
 * that fold onto a letter, digit or '-' besides its own case pair are
 * control bytes (CR, DLE, DC1...), which the parser never lets in. */
static inline int eg_http1_lower_eq(const char *s, const char *lit, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)(s[i] | 0x20) != (unsigned char)lit[i]) return 0;
    return 1;
}

/* eg_http1_name_is: header h's name is the lowercase literal lit. Inline,
 * so a literal's length is a constant: the proxy asks this of every header
 * in both directions. */
static inline int eg_http1_name_is(const eg_http_header_t *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && eg_http1_lower_eq(h->name, lit, n);
}

/* eg_http1_date writes Unix time t (seconds, clamped to years 1970-9999) as
 * an IMF-fixdate, the form RFC 9110 5.6.7 requires in a Date header:
 * "Sun, 06 Nov 1994 08:49:37 GMT", NUL-terminated, EG_HTTP1_DATE_LEN chars.
 * No locale and no libc time zone state are involved. */
#define EG_HTTP1_DATE_LEN 29
void eg_http1_date(int64_t t, char out[EG_HTTP1_DATE_LEN + 1]);

/* eg_http1_next_token yields the elements of a comma-separated list
 * value[0..n) one by one, trimmed of whitespace, empty ones skipped: start
 * with *pos = 0; returns 1 with *tok, *len set, or 0 at the end. */
int eg_http1_next_token(const char *value, size_t n, size_t *pos, const char **tok, size_t *len);

/* eg_http1_has_token returns 1 when the comma-separated list value[0..n)
 * (e.g. a Connection value) has a member equal to the NUL-terminated `token`,
 * ignoring case and surrounding whitespace; 0 otherwise. */
int eg_http1_has_token(const char *value, size_t n, const char *token);

/* Incremental, validating chunked-body decoder state. Zero-initialise it
 * before the first byte of a body; the fields are read-only for callers. */
typedef struct {
    int state;
    uint64_t remaining;  /* data bytes left in the current chunk */
    int digits;          /* hex digits of the current chunk size */
    size_t line;         /* bytes in the current chunk-size or trailer line */
    uint64_t body_bytes; /* data bytes seen so far */
    unsigned trailers;   /* trailer fields seen (validated, then discarded) */
    const char *why;     /* static reason when EG_EPARSE was returned */
    /* Optional, set by the caller before the first byte: the trailer
     * section's lines ("name: value\r\n" each, as received) are kept in
     * keep[0..keep_len) for a caller that forwards some of them; a section
     * larger than keep_cap is EG_EPARSE ("trailer section too large"). */
    char *keep;
    size_t keep_cap, keep_len;
} eg_chunked_t;

/* eg_chunked_feed validates chunked-body bytes buf[0..len) without decoding
 * them, for a caller that forwards the body as it is. max_line bounds each
 * chunk-size line (size plus extensions) and each trailer line.
 * Returns EG_OK when the body ended (*consumed = bytes up to and including
 * its final CRLF; what follows is the next message), EG_EAGAIN when all len
 * bytes were consumed and the body goes on, EG_EPARSE on malformed framing
 * (st->why says what, *consumed is the offset of the offending byte). */
int eg_chunked_feed(eg_chunked_t *st, const char *buf, size_t len, size_t max_line,
                    size_t *consumed);

/* eg_chunked_data is the zero-copy decoding step: like eg_chunked_feed, but
 * it stops after the first run of data bytes it meets and reports it in
 * *data / *data_len (a slice of buf; *data_len is 0 when the consumed bytes
 * were framing only). Call it again on buf + *consumed. Same returns. */
int eg_chunked_data(eg_chunked_t *st, const char *buf, size_t len, size_t max_line,
                    size_t *consumed, const char **data, size_t *data_len);

/* eg_chunked_decode decodes buf[0..*len) in place (like picohttpparser's
 * phr_decode_chunked): the data bytes are moved to the front of buf and *len
 * becomes their count. Returns EG_EAGAIN when all input was consumed and the
 * body goes on (decode the next bytes with the same st), EG_OK when the body
 * ended - the *rest bytes that followed it are moved to buf[*len..*len+*rest)
 * - or EG_EPARSE (st->why; *len decoded bytes are kept). */
int eg_chunked_decode(eg_chunked_t *st, char *buf, size_t *len, size_t max_line, size_t *rest);

#endif

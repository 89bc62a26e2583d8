/* h2.h - HTTP/2 on the client side (nghttp2), as a bridge to the HTTP/1.1
 * request path (docs/http2.md).
 *
 * One eg_h2_t per client connection that speaks h2 (ALPN "h2" over TLS, or
 * the connection preface on a plain listener). nghttp2 owns the framing,
 * HPACK, flow control and the protocol's checks; this file turns each
 * stream into an HTTP/1.1 request (the pseudo-headers become the request
 * line and Host, the DATA frames a Content-Length or chunked body) and
 * hands it to the host (proxy.c), which serves it as one request on a
 * connection of its own with no socket: the same parser, the same stages,
 * the same upstream pool, the same error bodies, by construction. What the
 * host writes back for the stream is an HTTP/1.1 response, parsed here and
 * sent as HEADERS and DATA (hop-by-hop fields dropped, as h2 forbids them).
 *
 * Backpressure both ways: a stream's request bytes are taken by the host
 * only while it reads (the flow-control window is given back to the client
 * as they are taken, so a slow upstream holds the client at its window);
 * a stream's response bytes wait here until the client's window lets them
 * go, and the host stops reading the upstream while they are above its
 * high water (eg_h2_stream_queued).
 *
 * The host's side is a table of callbacks, so the fuzzer drives a session
 * with no sockets at all.
 */
#ifndef EG_H2_H
#define EG_H2_H

#include <stddef.h>
#include <stdint.h>

typedef struct eg_h2_s eg_h2_t;
typedef struct eg_h2_stream_s eg_h2_stream_t;

/* The limits of one connection (http2: in the configuration). */
typedef struct {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list; /* SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 6.5.2 sizes); over: 431 */
    uint32_t
        stream_window; /* SETTINGS_INITIAL_WINDOW_SIZE: request body bytes per stream in flight */
    uint32_t conn_window; /* the connection's receive window */
    uint32_t max_resets;  /* RST_STREAM from the client within reset_window_ms before GOAWAY */
    uint64_t reset_window_ms;
    uint32_t max_continuations; /* CONTINUATION frames after one HEADERS */
    uint32_t max_settings;      /* entries in one SETTINGS frame */
    uint32_t max_outbound_ack;  /* PING and SETTINGS acks queued unsent (the client not reading) */
    size_t max_response_head;   /* a stream's response head, as the host writes it */
} eg_h2_limits_t;

/* Defaults for eg_h2_limits_t (config.c uses them too). */
#define EG_H2_DEFAULT_STREAMS         128
#define EG_H2_DEFAULT_STREAM_WINDOW   (256 * 1024)
#define EG_H2_DEFAULT_CONN_WINDOW     (1024 * 1024)
#define EG_H2_DEFAULT_MAX_RESETS      200
#define EG_H2_DEFAULT_RESET_WINDOW_MS 10000
#define EG_H2_DEFAULT_CONTINUATIONS   8
#define EG_H2_DEFAULT_SETTINGS        32
#define EG_H2_DEFAULT_OUTBOUND_ACK    1000

/* What the host does for the session. `host` is the data given to
 * eg_h2_new; `sc` a stream's connection as stream_open returned it. */
typedef struct {
    /* Bytes for the client (the connection's socket or TLS); 0 or -1. */
    int (*send)(void *host, const char *p, size_t n);
    /* Bytes sent and not yet taken by the socket: over the high water,
     * output waits (and nghttp2 queues acks, up to max_outbound_ack). */
    size_t (*queued)(void *host);
    /* A stream's request head is whole: make its connection. NULL refuses
     * the stream (REFUSED_STREAM). */
    void *(*stream_open)(void *host, eg_h2_stream_t *s);
    /* Room for request bytes in the stream's connection now (0: not reading). */
    size_t (*stream_room)(void *sc);
    /* n (<= room) request bytes for the stream's connection. */
    void (*stream_feed)(void *sc, const char *p, size_t n);
    /* The stream ended before its response did (the client reset it, or
     * the connection went): the stream's connection closes; h2 forgets it
     * first, so eg_h2_stream_detach is not called after this. */
    void (*stream_abort)(void *sc);
    /* The stream's response bytes went below the high water again. */
    void (*stream_drained)(void *sc);
} eg_h2_host_t;

#define EG_H2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define EG_H2_PREFACE_LEN 24

/* 1 when p[0..n) is the whole client preface, 0 when it is a prefix of it
 * (more bytes needed), -1 when it is not the preface. */
int eg_h2_preface(const char *p, size_t n);

/* A server session; the SETTINGS frame is queued. NULL when out of memory. */
eg_h2_t *eg_h2_new(const eg_h2_limits_t *lim, const eg_h2_host_t *host, void *data);
/* Aborts every stream still attached (stream_abort), frees everything. */
void eg_h2_free(eg_h2_t *h);
/* Frees everything without a call to the host: the loop is being torn
 * down (its handles closed in any order, the streams' connections too). */
void eg_h2_discard(eg_h2_t *h);
/* Bytes from the client. Returns 0, or -1 when the connection must end
 * (a protocol error or a flood: eg_h2_why says which; the GOAWAY, if any,
 * is queued: flush, then close). */
int eg_h2_feed(eg_h2_t *h, const char *p, size_t n);
/* Sends what the session has while the host's queue is below the high
 * water. Returns 1 when the session is over (GOAWAY sent and no stream
 * left, or both sides done), 0 when it goes on, -1 on a send failure. */
int eg_h2_flush(eg_h2_t *h);
/* A graceful end: GOAWAY with the last stream id; open streams finish. */
void eg_h2_goaway(eg_h2_t *h);
/* Streams open now (0: the connection is idle). */
size_t eg_h2_streams(const eg_h2_t *h);
/* Streams whose request is still being served (the rest only wait for
 * the client's window to take their response). */
size_t eg_h2_serving(const eg_h2_t *h);
/* Why eg_h2_feed failed ("" when it did not). */
const char *eg_h2_why(const eg_h2_t *h);

/* ---- from a stream's connection (the host) */

/* HTTP/1.1 response bytes for the stream; 0, or -1 when the stream is gone. */
int eg_h2_stream_write(eg_h2_stream_t *s, const char *p, size_t n);
/* The stream's response bytes waiting for the client's window, scaled to
 * the host's high water (docs/http2.md). */
size_t eg_h2_stream_queued(const eg_h2_stream_t *s);
/* The stream's connection has room again: request bytes waiting are fed. */
void eg_h2_stream_pull(eg_h2_stream_t *s);
/* The stream's connection is closing: its response ends here (whole, or
 * cut: then RST_STREAM INTERNAL_ERROR after what was sent). */
void eg_h2_stream_detach(eg_h2_stream_t *s);

#endif

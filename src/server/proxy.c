/* proxy.c - client connections and the reverse proxy (the request path).
 *
 *   read head -> parse (strict) -> request id -> route -> maintenance
 *     -> pick upstream server -> pooled or new connection -> send head
 *     -> stream request body -> parse response head -> stream response body
 *     -> log -> next pipelined request or close
 *
 * A client connection has one fixed buffer (max_header_size plus room for
 * body bytes): the parsed head stays at its start as zero-copy slices for the
 * whole request, body bytes pass through the space after it. A stage that
 * needs the whole body first (eg_req_read_body) gets one that does not fit
 * there, or a chunked one, moved into a per-request buffer (rbody, at most
 * the stage's max), forwarded from there. Bodies stream in both directions
 * with backpressure: reading from one side stops while the other side's
 * write queue is above EG_HIGH_WATER. Every failure before the response
 * started becomes a catalog error in the route's (or the negotiated)
 * dialect; after that, the connection is closed. An upstream
 * error body in gzip or deflate is decoded (bounded: lib/decode.c) before it
 * is translated; a 4xx that cannot be decoded goes on as it came, a 5xx
 * becomes the catalog's error (it may hold internals).
 *
 * The transport seam: bytes to and from either peer pass through
 * to_client/conn_send, to_up/up_send and the read callbacks, which use the
 * socket itself (plain: the path as it always was) or TLS over memory BIOs
 * (tls.h): ciphertext read goes into OpenSSL, the handshake runs on the
 * loop, plaintext lands where plain reads land, and what OpenSSL has to
 * send is queued on the socket like any other bytes, so backpressure
 * (the socket's write queue) is the same for both.
 *
 * Upgrades (docs/upgrades.md): a request the route stage let through with
 * c->upgrade set goes to the upstream with Connection: upgrade and those
 * Upgrade tokens; its 101 is relayed and both sockets move to a tunnel
 * (tunnel.h), once nothing is left queued on either; any other answer is
 * a response like any other. HSTS: a TLS listener's Strict-Transport-Security
 * line is in every response on it (hsts_line), errors included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "alerts.h"
#include "access.h"
#include "limiter.h"
#include "metrics.h"
#include "redis.h"
#include "ltimer.h"
#include "strbuild.h"
#include "store.h"

#include <hiredis/hiredis.h>
#include "errgate/balance.h"
#include "errgate/decode.h"
#include "errgate/http1.h"
#include "errgate/path.h"
#include "errgate/reqid.h"
#include "errgate/units.h"
#include "gateway.h"
#include "h2.h"
#include "respond.h"
#include "request.h"
#include "stage.h"
#include "tls.h"
#include "tunnel.h"

/* The plain path pays nothing for TLS (callgrind counts it): TLS work is
 * in functions kept out of line, and the helpers the plain path always
 * ran inlined stay inlined although TLS calls them too. */
#define EG_COLD __attribute__((noinline, cold))
#define EG_INLINE inline __attribute__((always_inline))

/* uv_hrtime's clock (CLOCK_MONOTONIC, in ns) read here without its call
 * and clock-type dispatch: a request reads it at its start, its upstream
 * attempt and its end (callgrind: 36 instructions a read through libuv). */
static EG_INLINE uint64_t clock_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0; /* as uv_hrtime */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define EG_HIGH_WATER (256 * 1024)
#define EG_BODY_ROOM EG_BUFFER_BODY_MAX
#define EG_UP_BUF (64 * 1024)
#define EG_MAX_TRAILER 8192
/* A compressed error body may inflate to at most this many times its size
 * (and never past max_translate_body): JSON errors compress 3 to 20 times;
 * a thousandfold is a decompression bomb. */
#define EG_DECODE_RATIO 100
/* rbody's first size (eg_req_read_body); one up to this size is kept for
 * the connection's next requests, a larger one freed when the request ends */
#define EG_RBODY_START (16 * 1024)

typedef struct conn_s conn_t;

typedef enum { UP_CONNECTING, UP_HEAD, UP_BODY, UP_IDLE, UP_CLOSING } upstate_t;
/* FAIL_CUT: the response ended before its framing said (EOF or reset in
 * the body); never retried, since the upstream did act on the request. */
/* FAIL_TLS: the TLS handshake with the upstream failed (its certificate,
 * most often); the log line says why (up_t.tls_why), the client hears 502. */
typedef enum { FAIL_CONNECT, FAIL_CONNECT_TIMEOUT, FAIL_TIMEOUT, FAIL_RESET, FAIL_STALE,
               FAIL_INVALID, FAIL_CUT, FAIL_TLS } failure_t;

typedef struct up_s {
    uv_tcp_t tcp;
    eg_tls_t *tls; /* https upstream: the seam as for clients (NULL: plain) */
    uv_idle_t kick;
    int has_kick;
    char tls_why[200];
    eg_ltimer_t timer;
    uv_connect_t creq;
    eg_worker_t *w;
    conn_t *c; /* NULL when idle in the pool */
    upstate_t state;
    int closes;
    int holds; /* store work in flight that points at this connection */
    int wpending;
    char key[300]; /* "host:port": the pool key */
    size_t sidx;   /* the server's index in the upstream of the current request */
    uint64_t keepalive_ms;
    int keepalive_max;
    eg_server_health_t *health;
    const eg_upstream_cfg_t *ucfg; /* valid while c holds its gw */
    char *buf;
    size_t len, scanned;
    eg_http1_msg_t resp;
    eg_http_header_t hdrs[128];
    eg_framing_t framing;
    uint64_t left;
    eg_chunked_t ck;
    int keep_alive;
    int reused;
    int got_bytes;
    int ninterim; /* 1xx responses forwarded for the current request */
    int dechunk;
    int reading; /* reads are on (off while a slow client holds the body back) */
    int xlate;   /* an error response being buffered for translation */
    char *xbuf;  /* its body, de-chunked (still in its content coding until translated) */
    eg_coding_t xcoding; /* its Content-Encoding */
    size_t xlen, xcap;
    /* taken from the head while its slices are valid (later reads reuse buf) */
    struct wreq_s *xhead; /* the untranslated response head, for a pass-through */
    size_t xhead_len;
    char xextra[1024];    /* upstream headers kept on the translated error */
    long long xretry;     /* Retry-After seconds, -1 when absent */
    uint64_t deadline;    /* loop time the whole response must be in by (total_timeout), 0 = none */
    uint64_t waited_ms;   /* the timeout that expired, for the 504's message */
    struct up_s *next;
} up_t;

typedef struct wreq_s {
    uv_write_t req;
    void *owner;
    eg_worker_t *w;
    size_t cap;
    int is_up;
    char data[];
} wreq_t;

/* Heads and short bodies fit this; such buffers are kept for reuse (the
 * size is above the allocator's per-thread cache, so each malloc and free
 * of one cost more than building the head it carries). */
#define EG_WREQ_CLASS 16384

static void conn_close(conn_t *c);
static void conn_finish(conn_t *c);
static void conn_process(conn_t *c);
static void proxy_start(conn_t *c);
static void forward_body(conn_t *c);
static void up_close(up_t *u);
static void up_failed(up_t *u, failure_t why);
static void up_reading(up_t *u, int on);
static void up_timer(up_t *u, uint64_t ms);
static EG_COLD void upgrade_switch(up_t *u, conn_t *c, size_t head);
static int is_rate_header(const eg_http_header_t *h);

/* The request no longer counts in its server's requests in flight
 * (least_conn): it ended, or a retry goes elsewhere. */
static void lb_release(conn_t *c)
{
    if (!c->lb_held) return;
    atomic_fetch_sub_explicit(&c->lb_held->inflight, 1, memory_order_relaxed);
    c->lb_held = NULL;
}

uint64_t eg_now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* The fixed hop-by-hop headers (RFC 9110 7.6.1), sorted out by length
 * first: this runs for every header in both directions (inline: the call
 * cost as much as the switch). */
static EG_INLINE int hop_by_hop_plain(const eg_http_header_t *h)
{
    switch (h->name_len) {
    case 2: return eg_http1_name_is(h, "te");
    case 7: return eg_http1_name_is(h, "trailer") || eg_http1_name_is(h, "upgrade");
    case 10: return eg_http1_name_is(h, "connection") || eg_http1_name_is(h, "keep-alive");
    case 16: return eg_http1_name_is(h, "proxy-connection");
    case 17: return eg_http1_name_is(h, "transfer-encoding");
    case 18: return eg_http1_name_is(h, "proxy-authenticate");
    case 19: return eg_http1_name_is(h, "proxy-authorization");
    default: return 0;
    }
}

/* Request headers the gateway writes itself (or drops): by length first,
 * since this runs for every header of every request. */
static int set_by_gateway(const eg_http_header_t *h)
{
    switch (h->name_len) {
    case 4: return eg_http1_name_is(h, "host");
    case 6: return eg_http1_name_is(h, "expect");
    case 9: return eg_http1_name_is(h, "forwarded");
    case 11: return eg_http1_name_is(h, "traceparent");
    case 14: return eg_http1_name_is(h, "content-length");
    case 17: return eg_http1_name_is(h, "x-forwarded-proto");
    default: return 0;
    }
}

/* The names a Connection header lists, split once per message: every
 * header is checked against them, and walking the headers again for each
 * one was the proxy's largest user-space cost. */
#define EG_CONN_TOKENS 8
typedef struct {
    const char *t[EG_CONN_TOKENS];
    size_t n[EG_CONN_TOKENS];
    int count;
    const eg_http_header_t *hdr; /* NULL: no Connection header */
    int overflow;                /* more tokens than kept: ask the header itself */
} conn_tokens_t;

static void conn_tokens(const eg_http_header_t *conn, conn_tokens_t *ct)
{
    ct->count = ct->overflow = 0;
    ct->hdr = conn;
    size_t pos = 0, len;
    const char *t;
    while (conn && eg_http1_next_token(conn->value, conn->value_len, &pos, &t, &len)) {
        if (ct->count == EG_CONN_TOKENS) {
            ct->overflow = 1;
            return;
        }
        ct->t[ct->count] = t;
        ct->n[ct->count++] = len;
    }
}

/* Headers that never cross the gateway: the fixed ones and any the
 * Connection header names. Inline, and a token's first byte (folded as in
 * is_rid_header) before strncasecmp: this runs for every header of both
 * heads, and Connection: keep-alive has Connection's length. */
static EG_INLINE int hop_by_hop(const eg_http_header_t *h, const conn_tokens_t *ct)
{
    if (hop_by_hop_plain(h)) return 1;
    if (!ct->hdr) return 0;
    if (ct->overflow) {
        if (h->name_len >= 64) return 0;
        char tok[64];
        memcpy(tok, h->name, h->name_len);
        tok[h->name_len] = '\0';
        return eg_http1_has_token(ct->hdr->value, ct->hdr->value_len, tok);
    }
    for (int i = 0; i < ct->count; i++)
        if (ct->n[i] == h->name_len && (ct->t[i][0] | 0x20) == (h->name[0] | 0x20) &&
            strncasecmp(ct->t[i], h->name, h->name_len) == 0)
            return 1;
    return 0;
}

/* ---------------------------------------------------------------- writes */

static void conn_write_done(conn_t *c);
static void up_write_done(up_t *u);

static void wreq_free(wreq_t *wr)
{
    eg_worker_t *w = wr->w;
    int n = (int)(sizeof(w->wcache) / sizeof(w->wcache[0]));
    if (wr->cap == EG_WREQ_CLASS && w->nwcache < n && !w->draining) w->wcache[w->nwcache++] = wr;
    else free(wr);
}

static void write_cb(uv_write_t *req, int status)
{
    wreq_t *wr = (wreq_t *)req;
    if (wr->is_up) {
        up_t *u = wr->owner;
        u->wpending--;
        if (status < 0 && u->state != UP_CLOSING) up_failed(u, u->got_bytes ? FAIL_RESET : FAIL_STALE);
        else if (u->state != UP_CLOSING) up_write_done(u);
    } else {
        conn_t *c = wr->owner;
        c->wpending--;
        if (status < 0 && c->state != C_CLOSING) conn_close(c);
        else if (c->state != C_CLOSING) conn_write_done(c);
    }
    wreq_free(wr);
}

/* A write buffer the caller fills in place (no second copy); NULL on OOM.
 * Free with wreq_free (plain free() is fine too, it just is not reused). */
static wreq_t *wreq_new(eg_worker_t *w, void *owner, int is_up, size_t cap)
{
    wreq_t *wr;
    if (cap <= EG_WREQ_CLASS && w->nwcache > 0) {
        wr = w->wcache[--w->nwcache];
    } else {
        if (cap < EG_WREQ_CLASS) cap = EG_WREQ_CLASS;
        wr = malloc(sizeof(*wr) + cap);
        if (!wr) return NULL;
        wr->cap = cap;
    }
    wr->owner = owner;
    wr->w = w;
    wr->is_up = is_up;
    return wr;
}

/* Sends wr's first n bytes. Most writes complete at once: uv_try_write()
 * then spares the write request, its callback and the epoll_ctl() libuv
 * does around every queued write. Whatever is left is queued in order. */
static int wreq_send(uv_stream_t *s, wreq_t *wr, size_t n, int *pending)
{
    size_t off = 0;
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)n);
    int k = uv_try_write(s, &b, 1);
    if (k == (int)n) {
        wreq_free(wr);
        return 0;
    }
    if (k > 0) off = (size_t)k;
    else if (k != UV_EAGAIN && k != UV_ENOSYS) {
        wreq_free(wr);
        return -1;
    }
    b = uv_buf_init(wr->data + off, (unsigned)(n - off));
    if (uv_write(&wr->req, s, &b, 1, write_cb) != 0) {
        wreq_free(wr);
        return -1;
    }
    (*pending)++;
    return 0;
}

/* Sends data on the stream, copying what cannot be written at once; -1 on error. */
static int queue(uv_stream_t *s, eg_worker_t *w, void *owner, int is_up, int *pending, const char *data,
                 size_t n)
{
    if (n == 0) return 0;
    size_t off = 0;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
    int k = uv_try_write(s, &b, 1);
    if (k == (int)n) return 0;
    if (k > 0) off = (size_t)k;
    else if (k != UV_EAGAIN && k != UV_ENOSYS) return -1;
    wreq_t *wr = wreq_new(w, owner, is_up, n - off);
    if (!wr) return -1;
    memcpy(wr->data, data + off, n - off);
    b = uv_buf_init(wr->data, (unsigned)(n - off));
    if (uv_write(&wr->req, s, &b, 1, write_cb) != 0) {
        wreq_free(wr);
        return -1;
    }
    (*pending)++;
    return 0;
}

/* Queues what OpenSSL has to send (records, alerts) on the socket. */
static EG_COLD int tls_flush(eg_tls_t *t, uv_stream_t *s, eg_worker_t *w, void *owner, int is_up, int *pending)
{
    size_t n;
    while ((n = eg_tls_out_pending(t)) > 0) {
        wreq_t *wr = wreq_new(w, owner, is_up, n);
        if (!wr) return -1;
        size_t got = eg_tls_out_take(t, wr->data, n < wr->cap ? n : wr->cap);
        if (wreq_send(s, wr, got, pending) != 0) return -1;
    }
    return 0;
}

/* Plaintext out over TLS: encrypted into the memory BIO, then queued. */
static EG_COLD int tls_out(eg_tls_t *t, uv_stream_t *s, eg_worker_t *w, void *owner, int is_up, int *pending,
                   const char *data, size_t n)
{
    if (n && eg_tls_write(t, data, n) != 0) return -1;
    return tls_flush(t, s, w, owner, is_up, pending);
}

static EG_COLD int stream_out(conn_t *c, const char *data, size_t n);

static int to_client(conn_t *c, const char *data, size_t n)
{
    c->bytes_out += n;
    if (c->is_stream) return stream_out(c, data, n);
    if (c->tls) return tls_out(c->tls, (uv_stream_t *)&c->tcp, c->w, c, 0, &c->wpending, data, n);
    return queue((uv_stream_t *)&c->tcp, c->w, c, 0, &c->wpending, data, n);
}

static int to_up(up_t *u, const char *data, size_t n)
{
    if (u->tls) return tls_out(u->tls, (uv_stream_t *)&u->tcp, u->w, u, 1, &u->wpending, data, n);
    return queue((uv_stream_t *)&u->tcp, u->w, u, 1, &u->wpending, data, n);
}

/* Sends a filled write buffer's first n bytes to the client (wreq_send's
 * contract: wr is the callee's). */
static EG_COLD int tls_send(eg_tls_t *t, uv_stream_t *s, void *owner, int is_up, int *pending, wreq_t *wr,
                            size_t n)
{
    int rc = tls_out(t, s, wr->w, owner, is_up, pending, wr->data, n);
    wreq_free(wr);
    return rc;
}

static EG_INLINE int conn_send(conn_t *c, wreq_t *wr, size_t n)
{
    if (c->is_stream) {
        int rc = stream_out(c, wr->data, n);
        wreq_free(wr);
        return rc;
    }
    if (!c->tls) return wreq_send((uv_stream_t *)&c->tcp, wr, n, &c->wpending);
    return tls_send(c->tls, (uv_stream_t *)&c->tcp, c, 0, &c->wpending, wr, n);
}

static EG_INLINE int up_send(up_t *u, wreq_t *wr, size_t n)
{
    if (!u->tls) return wreq_send((uv_stream_t *)&u->tcp, wr, n, &u->wpending);
    return tls_send(u->tls, (uv_stream_t *)&u->tcp, u, 1, &u->wpending, wr, n);
}

/* The worker's buffer TLS ciphertext is read into (one reader at a time:
 * libuv calls alloc and read back to back). */
#define EG_TLS_IN (32 * 1024)
static EG_COLD void tls_alloc(eg_worker_t *w, uv_buf_t *b)
{
    if (!w->tls_in) w->tls_in = malloc(EG_TLS_IN);
    b->base = w->tls_in;
    b->len = w->tls_in ? EG_TLS_IN : 0;
}

static size_t queued(uv_tcp_t *t)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)t);
}

/* The client side's write queue: a stream's is its response bytes waiting
 * for the client's window (h2.h). */
static EG_INLINE size_t conn_queued(conn_t *c)
{
    if (c->is_stream) return c->h2s ? eg_h2_stream_queued(c->h2s) : 0;
    return queued(&c->tcp);
}

/* ---------------------------------------------------------------- reading */

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    conn_t *c = h->data;
    if (c->tls) {
        tls_alloc(c->w, b);
        return;
    }
    b->base = c->buf + c->len;
    b->len = c->cap - c->len;
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void client_kick(uv_idle_t *h);
static EG_COLD void h2_wake(conn_t *p);

static void client_reading(conn_t *c, int on)
{
    if (c->state == C_CLOSING || on == c->reading) return;
    if (on && c->len == c->cap) return; /* no room: wait until bytes are consumed */
    if (c->is_stream) { /* the stream hands in what waits (not from within its own hand-in) */
        c->reading = on;
        if (on && c->h2s && !c->h2_feeding) {
            eg_h2_stream_pull(c->h2s);
            /* what it handed in went back to the client as window: the
             * WINDOW_UPDATE waits in the session until the connection sends */
            h2_wake(c->h2_parent);
        }
        return;
    }
    if (on) uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    else uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = on;
    /* plaintext OpenSSL decrypted before reading stopped would otherwise
     * wait for the client's next bytes */
    if (on && c->tls && eg_tls_buffered(c->tls)) uv_idle_start(&c->kick, client_kick);
}

/* ---------------------------------------------------------------- timers */

static void client_timeout(uv_timer_t *t);

static EG_INLINE void client_timer(conn_t *c, tmode_t mode)
{
    const eg_limits_t *l = &c->gw->cfg->limits;
    uint64_t ms = mode == T_IDLE ? l->idle_timeout_ms
                  : mode == T_HEADER || mode == T_HANDSHAKE ? l->header_timeout_ms
                  : mode == T_WRITE ? l->write_timeout_ms
                                    : l->body_timeout_ms;
    c->tmode = mode;
    if (mode == T_NONE) eg_ltimer_stop(&c->timer);
    else eg_ltimer_set(&c->timer, client_timeout, ms);
}

/* ---------------------------------------------------------------- logging */

/* The principal and the upstream's answer, in access and error lines
 * alike; now: the time of the line (uv_hrtime). */
static void log_common(conn_t *c, eg_logline_t *l, uint64_t now)
{
    if (c->up_status) {
        eg_logline_int(l, "upstream_status", c->up_status);
        eg_logline_int(l, "upstream_latency_us", (long long)((now - c->up_start_ns) / 1000));
    }
    if (c->access.authenticated) {
        const eg_principal_t *p = &c->access.p;
        eg_logline_str(l, "consumer", p->consumer, strlen(p->consumer));
        if (p->key_id[0]) eg_logline_str(l, "key_id", p->key_id, strlen(p->key_id));
        if (p->plan[0]) eg_logline_str(l, "plan", p->plan, strlen(p->plan));
    }
}

/* The request is over: its counters (metrics.h: the one place a request
 * is counted, whoever answered it: a stage, the upstream, the transport),
 * then its access line. */
static void log_access(conn_t *c)
{
    eg_pipeline_done(c);
    if (c->logged || !c->has_request) return;
    c->logged = 1;
    /* the monitor's count (alerts.h): the worker's own block, no lock */
    if (c->gw)
        eg_alert_count(c->gw->alert_counts, c->w->id,
                       c->route ? (long)(c->route - c->gw->cfg->routes) : -1, c->status);
    uint64_t now = clock_ns();
    eg_metrics_gen_t *mx = c->gw ? c->gw->metrics : NULL;
    if (mx) {
        const eg_mx_request_t q = {c->route ? c->route - c->gw->cfg->routes : -1,
                                   c->method_bit,
                                   c->status,
                                   c->code,
                                   c->code_entry,
                                   now - c->start_ns,
                                   c->up_status ? now - c->up_start_ns : 0};
        eg_metrics_request(mx, c->w->id, &q);
    }
    eg_log_t *log = eg_server_access_log(c->w->srv);
    if (!eg_log_enabled(log)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "access");
    eg_logline_str(&l, "request_id", c->reqid, strlen(c->reqid));
    if (c->req.method) {
        eg_logline_str(&l, "method", c->req.method, c->req.method_len);
        const eg_config_t *cfg = c->gw->cfg;
        eg_logline_path(&l, "path", c->req.target, c->req.target_len, cfg->redact_query, cfg->nredact);
    }
    if (c->route) eg_logline_str(&l, "route", c->route->path, strlen(c->route->path));
    eg_logline_int(&l, "status", c->status ? c->status : 499);
    if (c->code[0]) eg_logline_str(&l, "code", c->code, strlen(c->code));
    if (c->code[0] && c->message[0]) eg_logline_str(&l, "message", c->message, strlen(c->message));
    eg_logline_int(&l, "latency_us", (long long)((now - c->start_ns) / 1000));
    eg_logline_int(&l, "bytes_in", (long long)c->bytes_in);
    eg_logline_int(&l, "bytes_out", (long long)c->bytes_out);
    if (c->upstream[0]) eg_logline_str(&l, "upstream", c->upstream, strlen(c->upstream));
    if (c->cut) eg_logline_str(&l, "truncated", c->cut, strlen(c->cut));
    eg_logline_str(&l, "client", c->client_ip, strlen(c->client_ip));
    if (c->is_stream) eg_logline_str(&l, "proto", "h2", 2);
    log_common(c, &l, now);
    const eg_config_t *cfg = c->gw->cfg;
    if (cfg->nlog_headers && c->req.method) {
        /* only names the configuration lists, which cannot name a secret (config.c) */
        int any = 0;
        for (size_t i = 0; i < cfg->nlog_headers; i++) {
            const eg_http_header_t *h = eg_http1_header(&c->req, cfg->log_headers[i]);
            if (!h) continue;
            if (!any) eg_logline_object(&l, "headers");
            any = 1;
            eg_logline_str(&l, cfg->log_headers[i], h->value, h->value_len);
        }
        if (any) eg_logline_object_end(&l);
    }
    eg_logline_end(log, &l);
}

/* One line per code and second at most: a flood of refusals (a store or
 * Redis down, a connection limit) is one line a second with the count of
 * the others ("suppressed"), not a line per request (log.h). */
static void log_error(conn_t *c, const char *code, int status, const char *why)
{
    eg_log_t *log = eg_server_error_log(c->w->srv);
    uint64_t suppressed;
    if (!eg_log_enabled(log) || !eg_log_admit(log, code, &suppressed)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "error");
    eg_logline_str(&l, "request_id", c->reqid, strlen(c->reqid));
    eg_logline_str(&l, "code", code, strlen(code));
    eg_logline_int(&l, "status", status);
    if (suppressed) eg_logline_int(&l, "suppressed", (long long)suppressed);
    if (c->route) eg_logline_str(&l, "route", c->route->path, strlen(c->route->path));
    if (c->message[0]) eg_logline_str(&l, "message", c->message, strlen(c->message));
    if (why) eg_logline_str(&l, "why", why, strlen(why));
    if (c->upstream[0]) eg_logline_str(&l, "upstream", c->upstream, strlen(c->upstream));
    log_common(c, &l, uv_hrtime());
    eg_logline_end(log, &l);
}

/* ---------------------------------------------------------------- errors */

/* The listener's Strict-Transport-Security line ("...\r\n"), or "": only
 * over TLS (RFC 6797 7.2: never on plain HTTP, nor on the plain 400 a TLS
 * port gives plain HTTP, where c->tls is gone). An h2 stream has no TLS of
 * its own: its connection's is_tls says. */
static const char *hsts_line(const conn_t *c)
{
    if (!(c->tls || (c->is_stream && c->is_tls)) || !c->gw) return "";
    const eg_config_t *cfg = c->gw->cfg;
    if (c->listener >= cfg->nlisteners || !cfg->listeners[c->listener].tls) return "";
    return cfg->listeners[c->listener].tls->hsts;
}

/* A whole response the gateway made (buf: status line, head, body) to the
 * client, with the HSTS line after the status line when the listener has
 * one: every answer, whoever rendered it, passes here. */
static EG_COLD int to_client_hsts(conn_t *c, const char *buf, size_t n)
{
    const char *hsts = hsts_line(c);
    const char *eol = hsts[0] ? memchr(buf, '\n', n) : NULL;
    if (!eol) return to_client(c, buf, n);
    size_t first = (size_t)(eol + 1 - buf), hl = strlen(hsts);
    wreq_t *wr = wreq_new(c->w, c, 0, n + hl);
    if (!wr) return -1;
    memcpy(wr->data, buf, first);
    memcpy(wr->data + first, hsts, hl);
    memcpy(wr->data + first + hl, buf + first, n - first);
    c->bytes_out += n + hl;
    return conn_send(c, wr, n + hl);
}

static EG_INLINE int to_client_answer(conn_t *c, const char *buf, size_t n)
{
    if (!c->tls && !c->is_tls) return to_client(c, buf, n); /* plain: the path as it was */
    return to_client_hsts(c, buf, n);
}

/* The worker's error timestamp and Date header value, formatted once per
 * second of wall-clock time. Returns w. */
static eg_worker_t *worker_clock(eg_worker_t *w)
{
    time_t now = time(NULL);
    if (now != w->ts_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->ts, sizeof(w->ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        eg_http1_date((int64_t)now, w->date);
        w->ts_sec = now;
    }
    return w;
}

/* A gateway error with the request id and the time. Both are referred to,
 * not copied (a request id is letters, digits and +/=-_. only, the time
 * is ours: neither needs escaping): every caller hands the error to
 * send_error at once, which frees it before either can change. */
static eg_error_t *new_error(conn_t *c, const char *code)
{
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(c->gw->cfg->catalog, code, &e) != EG_OK) return NULL;
    eg_error_set_static(e, EG_S_REQUEST_ID, c->reqid, strlen(c->reqid), 1);
    eg_worker_t *w = worker_clock(c->w);
    eg_error_set_static(e, EG_S_TIMESTAMP, w->ts, strlen(w->ts), 1);
    return e;
}

/* Sends a gateway error's response (n bytes in buf, 0 when it could not be
 * made: the connection is closed), logs it, and goes on with the next
 * request. `why` is logged, and may point into the error the caller frees
 * after. */
static void answer_error(conn_t *c, const char *buf, size_t n, const eg_respond_info_t *info, const char *why)
{
    c->status = info->status;
    _Static_assert(sizeof(c->code) == sizeof(info->code), "code buffers");
    memcpy(c->code, info->code, sizeof(c->code));
    c->code_entry = info->entry;
    if (info->status >= 400) log_error(c, c->code, c->status, why); /* not a stage's 204 (CORS preflight) */
    c->response_started = 1;
    if (c->capture && n) eg_pipeline_capture(c, buf, n);
    eg_pipeline_done(c); /* before the answer: a client that saw it finds its slot free */
    if (n == 0 || to_client_answer(c, buf, n) != 0) {
        conn_close(c);
        return;
    }
    conn_finish(c);
}

/* Answers the request with a gateway error; takes ownership of e. */
static void send_error(conn_t *c, eg_error_t *e, const char *extra, const char *why)
{
    if (!e) {
        conn_close(c);
        return;
    }
    const eg_config_t *cfg = c->gw->cfg;
    const eg_dialect_t *d = c->dialect ? c->dialect : cfg->dialect;
    if (!c->body_done) c->keep_alive = 0; /* the unread body would be taken for a request */
    if (c->w->logs_on) { /* the message is for the log lines only */
        const char *msg = e->s[EG_S_MESSAGE];
        if (!msg) {
            const eg_catalog_entry_t *ent = e->s[EG_S_CODE] ? eg_catalog_find(cfg->catalog, e->s[EG_S_CODE]) : NULL;
            msg = ent ? ent->message : NULL;
        }
        snprintf(c->message, sizeof(c->message), "%s", msg ? msg : "");
    }
    char buf[16384], both[1400 + EG_CORS_LINES_LIMIT];
    const char *cors = c->cors_hdrs ? c->cors_hdrs : ""; /* the cors stage's lines: on errors too */
    if (c->rl_hdrs[0] || cors[0]) {
        snprintf(both, sizeof(both), "%s%s%s", extra ? extra : "", c->rl_hdrs, cors);
        extra = both;
    }
    eg_respond_info_t info;
    size_t n = eg_respond_error_info(e, d, cfg->catalog, worker_clock(c->w)->date, extra, c->keep_alive,
                                     c->method_bit == EG_M_HEAD, buf, sizeof(buf), &info);
    answer_error(c, buf, n, &info, why ? why : e->s[EG_S_MESSAGE]);
    eg_error_free(e);
}

static void send_simple_error(conn_t *c, const char *code, const char *message, const char *why)
{
    eg_error_t *e = new_error(c, code);
    if (e && message) eg_error_set(e, EG_S_MESSAGE, message);
    send_error(c, e, NULL, why);
}

/* A connection's memory, once both its handles are closed and no store
 * work holds it (conn_closed, or eg_req_wait_over for the last holder). */
static EG_COLD int stream_keep(conn_t *c);

static void conn_free(conn_t *c)
{
    if (c->is_stream && stream_keep(c)) return;
    eg_h2_discard(c->h2); /* set only when the loop's teardown closed it (a drain timeout) */
    eg_tls_free(c->tls);
    free(c->buf);
    free(c->rbody);
    free(c->hdrs);
    free(c->cors_hdrs);
    free(c->trailers);
    free(c);
}

/* ---------------------------------------------------------------- stages' API (stage.h) */

eg_error_t *eg_req_error(conn_t *c, const char *code)
{
    return new_error(c, code);
}

void eg_req_send_error(conn_t *c, eg_error_t *e, const char *extra, const char *why)
{
    send_error(c, e, extra, why);
}

void eg_req_send_simple(conn_t *c, const char *code, const char *message, const char *why)
{
    send_simple_error(c, code, message, why);
}

void eg_req_send_unavailable(conn_t *c, const char *message, const char *why)
{
    eg_error_t *e = new_error(c, "service_unavailable");
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, message);
        eg_error_set_retry_after(e, 1);
    }
    send_error(c, e, NULL, why);
}

void eg_req_send_json(conn_t *c, char *body, const char *why)
{
    if (!body) {
        eg_req_send_simple(c, "internal_error", NULL, why);
        return;
    }
    size_t blen = strlen(body),
           cap = blen + 1024 + sizeof(c->rl_hdrs) + (c->cors_hdrs ? strlen(c->cors_hdrs) : 0);
    char *buf = malloc(cap);
    size_t len = 0;
    eg_respond_info_t info = {.status = 200, .code = ""};
    if (buf) {
        eg_worker_t *w = worker_clock(c->w);
        int k = snprintf(buf, cap,
                         "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\n%s: %s\r\nCache-Control: no-store\r\n%s%s%s\r\n",
                         w->date, blen, c->gw->cfg->request_id_header, c->reqid, c->rl_hdrs,
                         c->cors_hdrs ? c->cors_hdrs : "", c->keep_alive ? "" : "Connection: close\r\n");
        if (k > 0 && (size_t)k + blen <= cap) {
            len = (size_t)k;
            if (c->method_bit != EG_M_HEAD) {
                memcpy(buf + len, body, blen);
                len += blen;
            }
        }
    }
    answer_error(c, buf, len, &info, NULL);
    free(buf);
    free(body);
}

void eg_req_answer(conn_t *c, const char *buf, size_t n, const eg_respond_info_t *info, const char *why)
{
    answer_error(c, buf, n, info, why);
}

void eg_req_log_error(conn_t *c, const char *code, int status, const char *why)
{
    log_error(c, code, status, why);
}

eg_worker_t *eg_req_clock(conn_t *c)
{
    return worker_clock(c->w);
}

/* Waits off the loop; the connection stays alive until the work returns. */
void eg_req_wait(conn_t *c, void *pending, uint64_t timeout_ms, void (*on_timeout)(conn_t *r))
{
    c->state = C_WAIT;
    c->pending = pending;
    c->on_wait_timeout = on_timeout;
    c->holds++;
    /* a body waits in the socket until we know; without one, reading stays
     * on (what comes is the next request, kept in the buffer; a client
     * that leaves is seen at once): turning it off and on again costs two
     * epoll_ctl calls a request, for a wait on Redis or the store */
    if (!c->body_done) client_reading(c, 0);
    if (timeout_ms) {
        c->tmode = T_STORE;
        eg_ltimer_set(&c->timer, client_timeout, timeout_ms);
    } else {
        client_timer(c, T_NONE);
    }
}

int eg_req_wait_over(conn_t *c)
{
    c->holds--;
    c->pending = NULL;
    c->on_wait_timeout = NULL;
    if (c->state == C_CLOSING) { /* the client left meanwhile */
        if (c->closes == 0) conn_free(c);
        return 0;
    }
    if (c->tmode == T_STORE) client_timer(c, T_NONE);
    return 1;
}

void eg_req_wake(conn_t *c)
{
    c->state = C_HEAD; /* the answer that follows sets what comes next */
}

/* Goes on after a wait; from a callback, the body that waited in the socket
 * flows again. Called from within the stage (an answer that came at once),
 * the runner goes on when the stage returns. */
void eg_req_resume(conn_t *c, int async)
{
    c->state = C_HEAD;
    if (c->in_stage) {
        c->resume_now = 1;
        return;
    }
    eg_pipeline_run(c);
    if (async && c->state == C_PROXY && c->up) forward_body(c);
    if (async) client_reading(c, 1);
}

static EG_COLD void h2_timeout(conn_t *c);

static void client_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->h2) {
        h2_timeout(c);
        return;
    }
    if (c->tmode == T_STORE) { /* a stage's wait (a Redis decision) took too long */
        c->tmode = T_NONE;
        if (c->state == C_WAIT && c->pending && c->on_wait_timeout) c->on_wait_timeout(c);
        return;
    }
    /* idle, or a client that stopped reading its response: nothing to answer;
     * a body a stage waits for (C_WAIT, buffering) is answered like one
     * that streams */
    int reading_body = c->state == C_WAIT && c->buffering && !c->pending;
    if (c->tmode == T_IDLE || c->tmode == T_WRITE || c->tmode == T_HANDSHAKE || c->response_started ||
        (c->state != C_HEAD && c->state != C_PROXY && !reading_body)) {
        conn_close(c);
        return;
    }
    c->keep_alive = 0;
    if (c->tmode == T_HEADER && !c->reqid[0]) {
        unsigned char r[16];
        eg_worker_random(c->w, r, 16);
        eg_reqid_generate(r, c->reqid);
    }
    if (c->up) {
        up_t *u = c->up;
        c->up = NULL;
        u->c = NULL;
        up_close(u);
    }
    send_simple_error(c, "request_timeout",
                      c->tmode == T_HEADER ? "The request headers were not received in time."
                                           : "The request body was not received in time.",
                      c->tmode == T_HEADER ? "header timeout" : "body timeout");
}

/* ---------------------------------------------------------------- connections */

static void conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->closes > 0 || c->holds) return;
    conn_free(c);
}

/* The worker's client connections, for draining. */
#define CONNS(w) (*(conn_t **)&(w)->conns)

static EG_COLD void h2_closing(conn_t *c);

static void conn_close(conn_t *c)
{
    if (c->state == C_CLOSING) return;
    /* a response that began and was not finished must not be logged as whole */
    if (c->response_started && !c->logged && !c->cut) c->cut = "connection closed before the response ended";
    log_access(c);
    lb_release(c);
    c->state = C_CLOSING;
    if (c->up) {
        up_t *u = c->up;
        c->up = NULL;
        u->c = NULL;
        up_close(u);
    }
    if (c->h2 || c->is_stream) h2_closing(c);
    if (c->prev) c->prev->next = c->next;
    else CONNS(c->w) = c->next;
    if (c->next) c->next->prev = c->prev;
    if (!c->is_stream) {
        c->w->nconns--;
        if (c->gw) eg_metrics_connection(c->gw->metrics, c->w->id, 0);
    }
    if (c->gw) eg_gw_unref(c->gw);
    c->gw = NULL;
    c->closes = 2 + c->has_kick - c->is_stream;
    if (!c->is_stream) uv_close((uv_handle_t *)&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer.h, conn_closed);
    if (c->has_kick) uv_close((uv_handle_t *)&c->kick, conn_closed);
}

/* Resets the per-request state and keeps unread bytes (pipelining). */
static void conn_next(conn_t *c)
{
    size_t rest = c->len - c->off;
    memmove(c->buf, c->buf + c->off, rest);
    c->len = rest;
    c->off = 0;
    c->scanned = 0;
    memset(&c->req, 0, sizeof(c->req));
    memset(&c->ck, 0, sizeof(c->ck));
    c->reqid[0] = c->traceparent[0] = c->code[0] = c->upstream[0] = '\0';
    c->code_entry = NULL;
    c->route = NULL;
    c->upgrade[0] = '\0';
    c->switching = 0;
    c->dialect = NULL;
    c->method_bit = 0; /* a request that cannot be parsed has no method: not the last one's */
    c->access.authenticated = 0;
    c->access.cred = NULL;
    c->rl_hdrs[0] = '\0';
    if (c->cors_hdrs) c->cors_hdrs[0] = '\0';
    c->body_left = 0;
    c->body_done = 0;
    c->body_sent = 0;
    c->buffering = 0;
    /* a large body's buffer is not kept while the connection idles */
    if (c->rbody_cap > EG_RBODY_START) {
        free(c->rbody);
        c->rbody = NULL;
        c->rbody_cap = 0;
    }
    c->rbody_len = c->rbody_sent = 0;
    c->rbody_moving = c->rbody_held = c->rbody_fin = 0;
    c->tried = 0;
    c->attempts = 0;
    c->response_started = 0;
    c->status = 0;
    c->bytes_in = rest;
    c->bytes_out = 0;
    c->logged = 0;
    c->up_start_ns = 0;
    c->up_status = 0;
    c->message[0] = '\0';
    c->cut = NULL;
    c->stage = 0;
    c->done_run = 0;
    c->capture = 0;
    c->on_wait_timeout = NULL;
    c->has_request = rest > 0;
    if (rest) c->start_ns = clock_ns(); /* else conn_process stamps the next request's first byte */
    c->state = C_HEAD;
    c->gw = eg_server_renew(c->w->srv, c->gw);
    client_timer(c, rest ? T_HEADER : T_IDLE);
    client_reading(c, 1);
}

/* How long a closing connection keeps reading what the client still sends. */
#define EG_LINGER_MS 2000

static void shut_done(uv_shutdown_t *req, int status)
{
    conn_t *c = req->data;
    if (c->state != C_LINGER) return; /* closed meanwhile (ECANCELED) */
    if (status < 0) conn_close(c);
}

/* nginx's lingering close: the answer is written, so the write side is shut
 * (the client reads it, then EOF), and what the client still sends is read
 * and dropped for a moment. Closing with unread bytes in the socket would
 * make the kernel send a reset, which can destroy the answer before the
 * client read it (a 413 or 503 to a client still sending its body). */
static void conn_linger(conn_t *c)
{
    if (c->body_done || c->is_stream) { /* nothing more is coming (nginx: lingering_close on) */
        conn_close(c);
        return;
    }
    c->state = C_LINGER;
    c->shut.data = c;
    if (c->tls) { /* close_notify before the FIN: the client knows the answer is whole */
        eg_tls_shutdown(c->tls);
        tls_flush(c->tls, (uv_stream_t *)&c->tcp, c->w, c, 0, &c->wpending);
    }
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, shut_done) != 0) {
        conn_close(c);
        return;
    }
    c->len = c->off = 0; /* nothing in the buffer is needed any more */
    c->tmode = T_IDLE;   /* its timeout closes */
    eg_ltimer_set(&c->timer, client_timeout, EG_LINGER_MS);
    client_reading(c, 1);
}

/* The whole response is queued: log, then close or go on with the next request. */
static void conn_finish(conn_t *c)
{
    log_access(c);
    lb_release(c);
    if (c->w->draining || c->is_stream) c->keep_alive = 0; /* a stream is one request */
    if (!c->keep_alive) {
        c->state = C_DONE_WRITING;
        client_reading(c, 0);
        client_timer(c, c->wpending ? T_WRITE : T_NONE);
        if (c->wpending == 0) conn_linger(c);
        return;
    }
    conn_next(c);
    if (!c->in_process && c->len) conn_process(c);
}

static EG_COLD void tunnel_go(conn_t *c);
static EG_COLD void h2_flush(conn_t *c);
static EG_COLD void log_h2_failure(conn_t *c, const char *why);

static void conn_write_done(conn_t *c)
{
    if (c->switching) { /* the writes before the 101 went: the tunnel can start */
        tunnel_go(c);
        return;
    }
    if (c->state == C_DONE_WRITING && c->wpending == 0) {
        conn_linger(c);
        return;
    }
    if (c->h2) { /* the socket drained: the session sends on */
        h2_flush(c);
        return;
    }
    /* the client is reading: its write timeout starts over */
    if (c->tmode == T_WRITE) client_timer(c, c->wpending ? T_WRITE : T_NONE);
    /* backpressure: the client drained, let the upstream talk again */
    if (c->up && c->up->state == UP_BODY && !c->up->reading && conn_queued(c) < EG_HIGH_WATER / 2) {
        up_reading(c->up, 1);
        up_timer(c->up, c->up->ucfg->read_timeout_ms);
    }
}

/* A complete head: what the transport needs to know of it, then the
 * pipeline's stages (stage.h), which end in eg_req_admit or an answer. */
static void handle_request(conn_t *c)
{
    c->keep_alive = c->req.keep_alive;
    c->method_bit = eg_method_bit(c->req.method, c->req.method_len);
    c->idempotent = (c->method_bit & (EG_M_GET | EG_M_HEAD | EG_M_PUT | EG_M_DELETE |
                                      EG_M_OPTIONS | EG_M_TRACE)) != 0;
    c->dialect = c->gw->cfg->dialect;
    switch (c->req.framing) {
    case EG_FRAMING_LENGTH:
        c->body_left = c->req.content_length;
        c->body_done = c->body_left == 0;
        break;
    case EG_FRAMING_CHUNKED:
        c->body_done = 0;
        /* trailer fields the configuration forwards are kept as they come */
        if (c->gw->cfg->nforward_trailers && (c->trailers || (c->trailers = malloc(EG_MAX_TRAILER)))) {
            c->ck.keep = c->trailers;
            c->ck.keep_cap = EG_MAX_TRAILER;
        }
        break;
    default: c->body_done = 1; break;
    }
    c->stage = 0;
    eg_pipeline_run(c);
}

/* Request buffering (request.buffer_body, as nginx's proxy_request_buffering
 * for bodies that fit the connection's buffer): a body of known small size,
 * or a chunked one, is read before an upstream is chosen, so a client that
 * sends slowly holds no upstream connection, a body that breaks its framing
 * is a 400 the upstream never sees, and a failed connect can be retried. */
static int buffers_body(const conn_t *c)
{
    uint64_t max = c->gw->cfg->buffer_body;
    if (max == 0) return 0;
    if (c->req.framing == EG_FRAMING_LENGTH) return c->req.content_length <= max;
    return c->req.framing == EG_FRAMING_CHUNKED;
}

/* Whether the whole request body is in the connection's buffer: the one
 * check behind request buffering (body_buffered) and stages that need the
 * body (eg_req_read_body), with the bound as parameter. 1 when it is (its
 * framed bytes at c->off, *framed of them; 0 when there is no body), 0 when
 * more is to come and the buffer has room for it, EG_ETOOBIG when the body
 * is larger than bound (a chunk's declared size counts before its bytes
 * come), EG_ERANGE when it cannot be whole in the buffer (larger than its
 * body room), EG_EPARSE on malformed chunks (c->ck.why says why). Chunked
 * bytes are validated on a copy of the decoder, so they stay as they came
 * for whoever consumes them (forward_body re-frames, body_move decodes). */
static int body_in_buf(conn_t *c, uint64_t bound, size_t *framed)
{
    size_t have = c->len - c->off;
    *framed = 0;
    if (c->body_done) return 1;
    if (c->req.framing == EG_FRAMING_LENGTH) {
        if (c->req.content_length > bound) return EG_ETOOBIG;
        if (c->req.content_length > c->cap - c->off) return EG_ERANGE;
        if (have < c->req.content_length) return 0;
        *framed = (size_t)c->req.content_length;
        return 1;
    }
    eg_chunked_t ck = c->ck;
    size_t used = 0;
    int rc = eg_chunked_feed(&ck, c->buf + c->off, have, EG_MAX_TRAILER, &used);
    if (rc == EG_EPARSE) {
        c->ck.why = ck.why;
        return EG_EPARSE;
    }
    if (ck.body_bytes > bound || ck.remaining > bound - ck.body_bytes) return EG_ETOOBIG;
    if (rc == EG_OK) {
        *framed = used;
        return 1;
    }
    return c->len == c->cap ? EG_ERANGE : 0;
}

/* Called as body bytes arrive while buffering: when the body is whole (or
 * a chunked one outgrew the buffer, and then streams), the upstream is
 * chosen. */
static void body_buffered(conn_t *c)
{
    uint64_t max = c->gw->cfg->limits.max_body_size;
    size_t framed;
    int rc = body_in_buf(c, max, &framed);
    if (rc == 0 && c->req.framing == EG_FRAMING_CHUNKED &&
        c->len - c->off >= c->gw->cfg->buffer_body)
        rc = EG_ERANGE; /* past what request.buffer_body holds back: it streams */
    if (rc == 0) return;
    if (rc == EG_EPARSE || rc == EG_ETOOBIG) {
        int over = rc == EG_ETOOBIG;
        c->buffering = 0;
        c->body_done = 1;
        c->keep_alive = 0;
        eg_error_t *e = new_error(c, over ? "payload_too_large" : "bad_request");
        if (e && over)
            eg_error_set_detail(e, "max_body_size", json_integer((json_int_t)max));
        else if (e)
            eg_error_setf(e, EG_S_MESSAGE, "Malformed chunked body: %s.", c->ck.why);
        send_error(c, e, NULL, over ? "chunked body over max_body_size" : c->ck.why);
        return;
    }
    c->buffering = 0;
    proxy_start(c);
}

/* Room in rbody for n more bytes, within bound: 0, EG_ETOOBIG or EG_ENOMEM.
 * It doubles from EG_RBODY_START, so a body costs O(size) copies. */
static int rbody_room(conn_t *c, size_t n, uint64_t bound)
{
    size_t need = c->rbody_len + n;
    if (need < n || need > bound) return EG_ETOOBIG;
    if (need <= c->rbody_cap) return 0;
    size_t cap = c->rbody_cap ? c->rbody_cap : EG_RBODY_START;
    while (cap < need)
        cap *= 2;
    if (cap > bound) cap = (size_t)bound;
    char *p = realloc(c->rbody, cap);
    if (!p) return EG_ENOMEM;
    c->rbody = p;
    c->rbody_cap = cap;
    return 0;
}

/* Moves the body bytes that arrived from buf to rbody: a Content-Length
 * body as it is (its whole length reserved at once), a chunked one decoded
 * on c->ck, which keeps its trailers for forward_held as forward_body
 * would. What follows the body (a pipelined request) stays at c->off.
 * 1 when the body is whole, 0 when more is to come, EG_ETOOBIG over bound,
 * EG_EPARSE (c->ck.why), EG_ENOMEM. */
static int body_move(conn_t *c, uint64_t bound)
{
    size_t have = c->len - c->off, used = 0;
    int rc = 0;
    if (c->req.framing == EG_FRAMING_LENGTH) {
        size_t take = have < c->body_left ? have : (size_t)c->body_left;
        if ((rc = rbody_room(c, (size_t)c->body_left, bound)) == 0) {
            memcpy(c->rbody + c->rbody_len, c->buf + c->off, take);
            c->rbody_len += take;
            c->body_left -= take;
            used = take;
            rc = c->body_left == 0;
        }
    } else {
        while (used < have) {
            const char *d;
            size_t dl = 0, k = 0;
            int r = eg_chunked_data(&c->ck, c->buf + c->off + used, have - used, EG_MAX_TRAILER, &k,
                                    &d, &dl);
            used += k;
            if (r == EG_EPARSE) {
                rc = EG_EPARSE;
                break;
            }
            if (c->ck.body_bytes > bound || c->ck.remaining > bound - c->ck.body_bytes) {
                rc = EG_ETOOBIG;
                break;
            }
            if (dl) {
                if ((rc = rbody_room(c, dl, bound)) != 0) break;
                memcpy(c->rbody + c->rbody_len, d, dl);
                c->rbody_len += dl;
            }
            if (r == EG_OK) {
                rc = 1;
                break;
            }
            if (k == 0) break;
        }
    }
    memmove(c->buf + c->off, c->buf + c->off + used, have - used);
    c->len -= used;
    if (rc == 1) {
        c->rbody_moving = 0;
        c->rbody_held = 1;
        c->body_done = 1; /* read whole from the client; forward_held sends it on */
    }
    return rc;
}

/* A stage that needs the whole body (stage.h). A Content-Length body that
 * fits the buffer's room is returned where it is; a larger one, or any
 * chunked one, moves to rbody as it arrives. While it is read, the request
 * waits in C_WAIT with c->buffering set: client_read runs the stage again
 * on each arrival (eg_req_resume), until the body is whole. */
int eg_req_read_body(conn_t *c, uint64_t max, const char **body, size_t *len)
{
    uint64_t bound = c->gw->cfg->limits.max_body_size;
    if (max < bound) bound = max;
    size_t framed = 0;
    int rc;
    c->buffering = 0;
    if (c->rbody_held) { /* read for an earlier stage, perhaps with a larger max */
        rc = c->rbody_len > bound ? EG_ETOOBIG : 1;
    } else if (c->rbody_moving) {
        rc = body_move(c, bound);
    } else {
        rc = body_in_buf(c, bound, &framed);
        if (rc == 1 && !c->body_done && c->req.framing == EG_FRAMING_CHUNKED)
            rc = EG_ERANGE; /* whole, but stages get data: decoded into rbody */
        if (rc == EG_ERANGE || (rc == 0 && c->req.framing == EG_FRAMING_CHUNKED)) {
            c->rbody_moving = 1;
            rc = body_move(c, bound);
        }
    }
    if (rc == 1) {
        *body = c->rbody_held && c->rbody ? c->rbody : c->buf + c->off;
        *len = c->rbody_held ? c->rbody_len : framed;
        return 1;
    }
    if (rc == EG_ENOMEM) {
        conn_close(c);
        return EG_EIO;
    }
    if (rc != 0) return rc;
    if (c->req.expect_continue) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        c->req.expect_continue = 0; /* eg_req_admit must not send it again */
        if (to_client(c, cont, sizeof(cont) - 1) != 0) {
            conn_close(c);
            return EG_EIO;
        }
    }
    c->stage--;
    c->state = C_WAIT;
    c->buffering = 1;
    client_timer(c, T_BODY);
    client_reading(c, 1);
    return 0;
}

/* The body bytes read so far while eg_req_read_body says 0 (stage.h). */
const char *eg_req_body_so_far(conn_t *c, size_t *len)
{
    if (c->rbody_moving || c->rbody_held) {
        *len = c->rbody_len;
        return c->rbody ? c->rbody : "";
    }
    size_t have = c->len - c->off;
    if (c->req.framing != EG_FRAMING_LENGTH) {
        *len = 0;
        return "";
    }
    *len = have < c->req.content_length ? have : (size_t)c->req.content_length;
    return c->buf + c->off;
}

/* A body eg_req_read_body returned whole, answered without the upstream (a
 * replay, a 409): one in the buffer is skipped (one in rbody was read off
 * it already), so the connection can carry the next request instead of
 * being closed for it. */
void eg_req_drop_body(conn_t *c, size_t len)
{
    (void)len; /* the transport knows where the body is */
    if (c->body_done || c->req.framing != EG_FRAMING_LENGTH || c->len - c->off < c->body_left)
        return;
    c->off += (size_t)c->body_left;
    c->body_left = 0;
    c->body_done = 1;
}

/* The request passed every stage: on to the upstream. */
void eg_req_admit(conn_t *c)
{
    const eg_http_header_t *h;
    if (c->req.expect_continue && !c->body_done) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        if (to_client(c, cont, sizeof(cont) - 1) != 0) {
            conn_close(c);
            return;
        }
    }
    /* trace context only matters to the upstream: made here, not for errors */
    h = eg_http1_header(&c->req, "traceparent");
    if (h && eg_traceparent_valid(h->value, h->value_len)) {
        memcpy(c->traceparent, h->value, h->value_len);
        c->traceparent[h->value_len] = '\0';
    } else {
        unsigned char r[24];
        eg_worker_random(c->w, r, sizeof(r));
        eg_traceparent_generate(r, c->traceparent);
    }
    c->state = C_PROXY;
    client_timer(c, c->body_done ? T_NONE : T_BODY);
    c->buffering = !c->body_done && buffers_body(c);
    if (c->buffering) {
        client_reading(c, 1);
        body_buffered(c); /* much of the time the body came with the head */
        return;
    }
    proxy_start(c);
}

static void conn_process(conn_t *c)
{
    c->in_process = 1;
    while (c->state == C_HEAD && c->len > 0) {
        const eg_limits_t *l = &c->gw->cfg->limits;
        eg_http1_limits_t lim = {l->max_header_size, l->max_headers, l->max_uri};
        if (!c->has_request) {
            c->has_request = 1;
            c->start_ns = clock_ns();
            client_timer(c, T_HEADER);
        }
        int rc = eg_http1_parse_request(c->buf, c->len, &lim, c->hdrs, c->hcap, &c->scanned, &c->req);
        if (rc == EG_EAGAIN && c->len == c->cap) {
            /* a reload raised max_header_size above this connection's buffer */
            rc = EG_EPARSE;
            c->req.error = EG_HTTP1_HEADERS_TOO_LARGE;
            c->req.why = "header section larger than the connection buffer";
        }
        if (rc == EG_EAGAIN) break;
        if (rc < 0) {
            unsigned char r[16];
            eg_worker_random(c->w, r, sizeof(r));
            eg_reqid_generate(r, c->reqid);
            c->keep_alive = 0;
            c->body_done = 1;
            const char *code = c->req.error == EG_HTTP1_URI_TOO_LONG ? "uri_too_long"
                               : c->req.error == EG_HTTP1_HEADERS_TOO_LARGE
                                   ? "request_header_fields_too_large"
                               : c->req.error == EG_HTTP1_VERSION_NOT_SUPPORTED
                                   ? "http_version_not_supported"
                                   : "bad_request";
            c->req.method = NULL; /* not a request we could log by method and path */
            c->dialect = c->gw->cfg->dialect;
            eg_error_t *e = new_error(c, code);
            if (e && c->req.error == EG_HTTP1_BAD_REQUEST)
                eg_error_setf(e, EG_S_MESSAGE, "Malformed request: %s.", c->req.why);
            send_error(c, e, NULL, c->req.why);
            break;
        }
        c->off = (size_t)rc;
        handle_request(c);
    }
    if (c->state == C_PROXY && c->up) forward_body(c);
    c->in_process = 0;
}

/* n bytes of the request stream landed at c->buf + c->len (plain or decrypted). */
static EG_COLD int h2_input(conn_t *c, size_t n);

static EG_INLINE void client_got(conn_t *c, size_t nread)
{
    if (c->state == C_LINGER) return; /* read and dropped: the buffer is reused as is */
    if (__builtin_expect(c->h2 != NULL || c->h2c_ok, 0) && h2_input(c, nread)) return;
    c->len += (size_t)nread;
    c->bytes_in += (uint64_t)nread;
    if (c->len == c->cap) client_reading(c, 0);
    if (c->state == C_PROXY && !c->body_done) client_timer(c, T_BODY);
    if (c->state == C_PROXY && c->buffering) body_buffered(c);
    else if (c->state == C_WAIT && c->buffering) eg_req_resume(c, 1); /* eg_req_read_body */
    else if (c->state == C_HEAD || c->state == C_PROXY) conn_process(c);
}

/* Plain HTTP on a TLS port: the connection goes on in plain text for one
 * answer, a 400 in the default dialect, then closes (nginx's 497, as a
 * catalog error). */
static void tls_refuse_plain(conn_t *c, const char *p, size_t n)
{
    eg_tls_free(c->tls);
    c->tls = NULL;
    (void)p;
    c->len = 0;
    c->has_request = 1;
    unsigned char r[16];
    eg_worker_random(c->w, r, sizeof(r));
    eg_reqid_generate(r, c->reqid);
    c->keep_alive = 0;
    c->dialect = c->gw->cfg->dialect;
    c->bytes_in += n;
    send_simple_error(c, "bad_request",
                      "This port speaks HTTPS: the request was sent as plain HTTP. Use https:// to reach it.",
                      "plain HTTP on a TLS port");
}

/* A connection refused for code: one line a second at most per worker log
 * and code (eg_log_admit), with the client's address and the reason, so an
 * operator can tell why a client was refused without scanners flooding it. */
static EG_COLD void log_conn_failure(conn_t *c, const char *code, const char *why)
{
    eg_log_t *log = eg_server_error_log(c->w->srv);
    uint64_t suppressed;
    if (!eg_log_enabled(log) || !eg_log_admit(log, code, &suppressed)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "error");
    eg_logline_str(&l, "code", code, strlen(code));
    if (suppressed) eg_logline_int(&l, "suppressed", (long long)suppressed);
    eg_logline_str(&l, "why", why, strlen(why));
    eg_logline_str(&l, "client", c->client_ip, strlen(c->client_ip));
    eg_logline_end(log, &l);
}

/* A failed client handshake (no client certificate, no common version or
 * cipher, not TLS at all), with OpenSSL's reason. */
static EG_COLD void log_tls_failure(conn_t *c, const char *why)
{
    log_conn_failure(c, "tls_handshake_failed", why);
}

/* Moves a TLS client connection on: the handshake, then plaintext into
 * c->buf while reading is on and there is room (what is left waits in
 * OpenSSL until client_reading turns reading on again). */
static EG_COLD int h2_start(conn_t *c);

static EG_COLD void tls_client_pump(conn_t *c)
{
    eg_tls_t *t = c->tls;
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    if (!eg_tls_done(t)) {
        int h = eg_tls_handshake(t);
        if (h < 0) log_tls_failure(c, eg_tls_why(t));
        if (tls_flush(t, s, c->w, c, 0, &c->wpending) != 0 || h < 0) {
            conn_close(c); /* the alert, if any, is queued; not a request: no access line */
            return;
        }
        if (h == 0) return;
        c->bytes_in = 0; /* the request's bytes are plaintext */
        c->alpn = (int)eg_tls_alpn(t);
        client_timer(c, T_IDLE);
        if (c->alpn == EG_ALPN_H2 && h2_start(c) != 0) {
            conn_close(c);
            return;
        }
    }
    while (c->state != C_CLOSING && c->reading && c->tls == t) {
        char *at = c->state == C_LINGER ? c->buf : c->buf + c->len;
        size_t room = c->state == C_LINGER ? c->cap : c->cap - c->len;
        ssize_t n = eg_tls_read(t, at, room);
        if (tls_flush(t, s, c->w, c, 0, &c->wpending) != 0 || n < 0) {
            conn_close(c);
            return;
        }
        if (n == 0) return;
        client_got(c, (size_t)n);
    }
}

static void client_kick(uv_idle_t *h)
{
    conn_t *c = h->data;
    uv_idle_stop(h);
    if (c->state != C_CLOSING && c->tls) tls_client_pump(c);
    if (c->state == C_HEAD && c->h2) h2_flush(c);
}

/* Ciphertext from a TLS client (nread > 0). */
static EG_COLD void client_tls_read(conn_t *c, ssize_t nread, const uv_buf_t *b)
{
    if (!c->tls_started) {
        if (eg_tls_looks_like_http(b->base, (size_t)nread)) {
            tls_refuse_plain(c, b->base, (size_t)nread);
            return;
        }
        c->tls_started = 1;
    }
    if (eg_tls_feed(c->tls, b->base, (size_t)nread) != 0) {
        conn_close(c);
        return;
    }
    tls_client_pump(c);
}

static void client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        conn_close(c); /* EOF or error: a request in flight is logged as 499 */
        return;
    }
    if (c->tls) {
        client_tls_read(c, nread, b);
        return;
    }
    client_got(c, (size_t)nread);
}

int eg_proxy_on_connection(eg_worker_t *w, int fd, size_t listener)
{
    conn_t *c = calloc(1, sizeof(*c));
    if (!c) return EG_ENOMEM;
    c->w = w;
    c->gw = eg_server_current(w->srv);
    const eg_limits_t *l = &c->gw->cfg->limits;
    c->cap = l->max_header_size + EG_BODY_ROOM;
    c->hcap = l->max_headers;
    c->npath_cap = l->max_uri + 1;
    c->buf = malloc(c->cap + c->npath_cap);
    c->npath = c->buf ? c->buf + c->cap : NULL;
    c->hdrs = calloc(c->hcap, sizeof(*c->hdrs));
    uv_tcp_init(&w->loop, &c->tcp);
    eg_ltimer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.h.data = c;
    c->next = CONNS(w);
    if (c->next) c->next->prev = c;
    CONNS(w) = c;
    w->nconns++;
    eg_metrics_connection(c->gw->metrics, w->id, 1);
    c->start_ns = uv_hrtime();
    c->listener = listener;
    eg_tls_server_t *ts = listener < c->gw->cfg->nlisteners ? c->gw->tls_listen[listener] : NULL;
    c->h2c_ok = !ts && listener < c->gw->cfg->nlisteners && c->gw->cfg->listeners[listener].h2c;
    if (ts) {
        c->is_tls = 1;
        c->tls = eg_tls_accept_new(ts);
        c->has_kick = uv_idle_init(&w->loop, &c->kick) == 0;
        c->kick.data = c;
    }
    if (!c->buf || !c->hdrs || (ts && (!c->tls || !c->has_kick)) || uv_tcp_open(&c->tcp, fd) != 0) {
        conn_close(c); /* fd was not taken: the caller closes it */
        return EG_ENOMEM;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)&ss, c->client_ip, sizeof(c->client_ip));
        else uv_ip4_name((struct sockaddr_in *)&ss, c->client_ip, sizeof(c->client_ip));
        c->has_client_addr = eg_ip_parse(c->client_ip, &c->client_addr) == EG_OK;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (w->draining || w->nconns > w->max_conns) {
        /* over the connection limit: answer and close rather than hang */
        c->has_request = 1;
        unsigned char r[16];
        eg_worker_random(w, r, sizeof(r));
        eg_reqid_generate(r, c->reqid);
        c->keep_alive = 0;
        c->body_done = 1;
        eg_error_t *e = new_error(c, "service_unavailable");
        if (e) {
            eg_error_set(e, EG_S_MESSAGE, "Too many connections; try again shortly.");
            eg_error_set_retry_after(e, 1);
        }
        if (c->tls) { /* no handshake for a connection refused anyway */
            conn_close(c);
            return EG_OK;
        }
        send_error(c, e, NULL, "connection limit");
        return EG_OK;
    }
    client_timer(c, c->tls ? T_HANDSHAKE : T_IDLE);
    client_reading(c, 1);
    return EG_OK;
}

static EG_COLD void h2_goaway(conn_t *c);

static void stream_spares_free(eg_worker_t *w);

void eg_proxy_drain(eg_worker_t *w)
{
    w->draining = 1;
    stream_spares_free(w);
    for (conn_t *c = CONNS(w), *next; c; c = next) {
        next = c->next;
        if (c->h2) h2_goaway(c); /* its streams finish, then it closes */
        else if (c->state == C_HEAD && !c->has_request) conn_close(c);
        else c->keep_alive = 0;
    }
    eg_tunnel_drain(w);
    eg_proxy_close_pool(w);
}

/* ---------------------------------------------------------------- HTTP/2 (h2.h) */

/* The seam: a connection that speaks h2 hands its bytes to its session
 * (h2.c); each stream is a connection with no socket (is_stream) whose
 * request bytes the session hands in and whose response bytes go back to
 * it, so everything above the transport is the HTTP/1.1 path unchanged. */

/* The session's output is sent from the loop's idle phase: the writes of
 * many streams in one loop turn leave in one send. */
static EG_COLD void h2_wake(conn_t *p)
{
    if (p && p->has_kick && p->state != C_CLOSING) uv_idle_start(&p->kick, client_kick);
}

static EG_COLD int stream_out(conn_t *c, const char *data, size_t n)
{
    if (!c->h2s) return -1; /* the stream went */
    int rc = eg_h2_stream_write(c->h2s, data, n);
    h2_wake(c->h2_parent);
    return rc;
}

static int h2_host_send(void *host, const char *p, size_t n)
{
    return to_client(host, p, n);
}

static size_t h2_host_queued(void *host)
{
    return queued(&((conn_t *)host)->tcp);
}

/* A stream's connection, once closed, is kept for the worker's next
 * stream with its buffers (a request head's buffer is tens of KiB: its
 * malloc and free per stream cost more than the stream's whole parse);
 * 64 at most, 6 MiB a worker with the default limits. */
#define EG_H2_SPARE 64
#define SPARE(w) (*(conn_t **)&(w)->h2_spare)

static EG_COLD int stream_keep(conn_t *c)
{
    eg_worker_t *w = c->w;
    if (w->draining || w->nh2_spare >= EG_H2_SPARE || !c->buf || !c->hdrs) return 0;
    free(c->rbody);
    free(c->cors_hdrs);
    free(c->trailers);
    c->next = SPARE(w);
    SPARE(w) = c;
    w->nh2_spare++;
    return 1;
}

/* Frees the kept connections (draining: none is kept after this). */
static void stream_spares_free(eg_worker_t *w)
{
    while (SPARE(w)) {
        conn_t *c = SPARE(w);
        SPARE(w) = c->next;
        free(c->buf);
        free(c->hdrs);
        free(c);
    }
    w->nh2_spare = 0;
}

/* A kept connection whose buffers fit this configuration, zeroed but for them. */
static conn_t *stream_spare(eg_worker_t *w, size_t cap, size_t hcap, size_t npath_cap)
{
    while (SPARE(w)) {
        conn_t *c = SPARE(w);
        SPARE(w) = c->next;
        w->nh2_spare--;
        if (c->cap == cap && c->hcap == hcap && c->npath_cap == npath_cap) {
            char *buf = c->buf;
            eg_http_header_t *hdrs = c->hdrs;
            memset(c, 0, sizeof(*c));
            c->buf = buf;
            c->hdrs = hdrs;
            return c;
        }
        free(c->buf); /* made for another configuration's limits */
        free(c->hdrs);
        free(c);
    }
    return NULL;
}

static void *h2_stream_open(void *host, eg_h2_stream_t *s)
{
    conn_t *p = host;
    eg_worker_t *w = p->w;
    eg_gw_t *gw = eg_server_current(w->srv);
    const eg_limits_t *l = &gw->cfg->limits;
    size_t cap = l->max_header_size + EG_BODY_ROOM, hcap = l->max_headers, npath_cap = l->max_uri + 1;
    conn_t *c = stream_spare(w, cap, hcap, npath_cap);
    if (!c && (c = calloc(1, sizeof(*c)))) {
        c->buf = malloc(cap + npath_cap);
        c->hdrs = calloc(hcap, sizeof(*c->hdrs));
    }
    if (!c) {
        eg_gw_unref(gw);
        return NULL;
    }
    c->w = w;
    c->gw = gw;
    c->cap = cap;
    c->hcap = hcap;
    c->npath_cap = npath_cap;
    c->npath = c->buf ? c->buf + c->cap : NULL;
    eg_ltimer_init(&w->loop, &c->timer);
    c->timer.h.data = c;
    c->is_stream = 1;
    c->h2s = s;
    c->h2_parent = p;
    c->is_tls = p->is_tls;
    c->alpn = p->alpn;
    memcpy(c->client_ip, p->client_ip, sizeof(c->client_ip));
    c->client_addr = p->client_addr;
    c->has_client_addr = p->has_client_addr;
    c->listener = p->listener; /* its HSTS line */
    c->next = CONNS(w);
    if (c->next) c->next->prev = c;
    CONNS(w) = c;
    c->start_ns = uv_hrtime();
    if (!c->buf || !c->hdrs) {
        c->h2s = NULL;
        conn_close(c);
        return NULL;
    }
    c->reading = 1;
    client_timer(c, T_HEADER);
    return c;
}

static size_t h2_stream_room(void *sc)
{
    conn_t *c = sc;
    return c->state != C_CLOSING && c->state != C_LINGER && c->reading ? c->cap - c->len : 0;
}

static void h2_stream_feed(void *sc, const char *p, size_t n)
{
    conn_t *c = sc;
    memcpy(c->buf + c->len, p, n);
    c->h2_feeding = 1;
    client_got(c, n);
    c->h2_feeding = 0;
}

static void h2_stream_abort(void *sc)
{
    conn_t *c = sc;
    c->h2s = NULL;
    c->h2_parent = NULL;
    conn_close(c); /* a request in flight is logged as 499 */
}

static void h2_stream_drained(void *sc)
{
    conn_t *c = sc;
    if (c->state != C_CLOSING) conn_write_done(c);
}

/* The session is over: what is queued goes, then the lingering close. */
static EG_COLD void h2_end(conn_t *c)
{
    c->state = C_DONE_WRITING;
    client_reading(c, 0);
    if (c->wpending == 0) conn_linger(c);
    else client_timer(c, T_WRITE);
}

static EG_COLD void h2_flush(conn_t *c)
{
    if (c->state != C_HEAD || !c->h2) return;
    uint64_t out = c->bytes_out;
    int rc = eg_h2_flush(c->h2);
    if (rc < 0) {
        conn_close(c);
        return;
    }
    if (rc > 0) {
        if (eg_h2_why(c->h2)[0]) log_h2_failure(c, eg_h2_why(c->h2)); /* it ended the session (rapid reset) */
        h2_end(c);
        return;
    }
    /* idle_timeout while no stream is open; write_timeout while streams
     * only wait for the client to read (a slow reader holding answers),
     * started over whenever it takes some */
    tmode_t want = eg_h2_streams(c->h2) == 0 ? T_IDLE : eg_h2_serving(c->h2) == 0 ? T_WRITE : T_NONE;
    if (want != c->tmode || (want == T_WRITE && c->bytes_out != out)) client_timer(c, want);
}

static EG_COLD void h2_goaway(conn_t *c)
{
    eg_h2_goaway(c->h2);
    h2_wake(c);
}

static EG_COLD void h2_timeout(conn_t *c)
{
    if (c->tmode == T_IDLE && c->state == C_HEAD) { /* idle: GOAWAY, then close */
        eg_h2_goaway(c->h2);
        if (eg_h2_flush(c->h2) >= 0) {
            h2_end(c);
            return;
        }
    }
    conn_close(c);
}

static EG_COLD int h2_start(conn_t *c)
{
    static const eg_h2_host_t host = {h2_host_send,   h2_host_queued,  h2_stream_open,   h2_stream_room,
                                      h2_stream_feed, h2_stream_abort, h2_stream_drained};
    const eg_config_t *cfg = c->gw->cfg;
    const eg_http2_cfg_t *h = &cfg->http2;
    eg_h2_limits_t lim = {
        .max_concurrent_streams = (uint32_t)h->max_concurrent_streams,
        .max_header_list = (uint32_t)h->max_header_list_size,
        .stream_window = (uint32_t)h->initial_window_size,
        .conn_window = (uint32_t)h->connection_window_size,
        .max_resets = (uint32_t)h->max_resets,
        .reset_window_ms = h->reset_window_ms,
        .max_continuations = (uint32_t)h->max_continuations,
        .max_settings = (uint32_t)h->max_settings,
        .max_outbound_ack = (uint32_t)h->max_outbound_ack,
        .max_response_head = EG_UP_BUF + cfg->limits.max_header_size,
    };
    if (!c->has_kick) {
        c->has_kick = uv_idle_init(&c->w->loop, &c->kick) == 0;
        c->kick.data = c;
        if (!c->has_kick) return EG_ENOMEM;
    }
    c->h2 = eg_h2_new(&lim, &host, c);
    if (!c->h2) return EG_ENOMEM;
    c->has_request = 1; /* not an idle HTTP/1.1 connection: draining sends GOAWAY */
    c->logged = 1;      /* its streams have the access lines */
    client_timer(c, T_IDLE);
    h2_flush(c); /* the server's SETTINGS */
    return EG_OK;
}

/* One line per connection an h2 session ended for a protocol error or a
 * flood (rate-limited like the TLS failures). */
static EG_COLD void log_h2_failure(conn_t *c, const char *why)
{
    log_conn_failure(c, "h2_protocol_error", why);
}

/* n bytes landed at c->buf + c->len: the preface on a plain listener
 * (then the session starts), or the session's input. Returns 0 when the
 * bytes are HTTP/1.1 after all. */
static EG_COLD int h2_input(conn_t *c, size_t n)
{
    if (c->h2c_ok) {
        size_t have = c->len + n;
        int pr = eg_h2_preface(c->buf, have);
        if (pr < 0) {
            c->h2c_ok = 0;
            return 0;
        }
        c->bytes_in += n;
        if (pr == 0) { /* a prefix of the preface so far */
            c->len = have;
            if (c->len == c->cap) client_reading(c, 0);
            client_timer(c, T_HEADER);
            return 1;
        }
        c->h2c_ok = 0;
        c->len = 0;
        if (h2_start(c) != 0) {
            conn_close(c);
            return 1;
        }
        n = have;
    }
    if (c->state != C_HEAD) return 1;
    if (eg_h2_feed(c->h2, c->buf + c->len, n) != 0) {
        log_h2_failure(c, eg_h2_why(c->h2));
        if (eg_h2_flush(c->h2) < 0) conn_close(c); /* the GOAWAY, if there is one */
        else h2_end(c);
        return 1;
    }
    h2_flush(c);
    return 1;
}

/* The connection or the stream is closing (conn_close). */
static EG_COLD void h2_closing(conn_t *c)
{
    if (c->h2) {
        eg_h2_t *h = c->h2;
        c->h2 = NULL;
        eg_h2_free(h); /* its streams' connections close */
    }
    if (c->h2s) {
        eg_h2_stream_t *s = c->h2s;
        c->h2s = NULL;
        eg_h2_stream_detach(s);
        h2_wake(c->h2_parent);
    }
}

/* ---------------------------------------------------------------- upstreams */

/* How long a connection over an upstream's `keepalive` count stays pooled. */
#define EG_POOL_SURPLUS_MS 1000

/* Idle upstream connections, one LIFO list per server ("host:port"), with
 * its length: returning a connection must not walk every idle one. */
typedef struct {
    char key[300];
    up_t *head;
    int n;
    SSL_SESSION *sess; /* https: the server's last session, offered on a new connection */
} pool_t;

typedef struct {
    pool_t *items;
    size_t n;
} pools_t;

/* The server's pool; made when `create` (NULL when out of memory or absent). */
static EG_INLINE pool_t *pool_of(eg_worker_t *w, const char *key, int create)
{
    pools_t *ps = w->idle;
    for (size_t i = 0; ps && i < ps->n; i++)
        if (strcmp(ps->items[i].key, key) == 0) return &ps->items[i];
    if (!create) return NULL;
    if (!ps && !(ps = w->idle = calloc(1, sizeof(*ps)))) return NULL;
    pool_t *items = realloc(ps->items, (ps->n + 1) * sizeof(*items));
    if (!items) return NULL;
    ps->items = items;
    pool_t *p = &items[ps->n++];
    snprintf(p->key, sizeof(p->key), "%s", key);
    p->head = NULL;
    p->n = 0;
    p->sess = NULL;
    return p;
}

static void up_closed(uv_handle_t *h)
{
    up_t *u = h->data;
    if (--u->closes > 0) return;
    eg_tls_free(u->tls);
    free(u->xhead);
    free(u->xbuf);
    free(u->buf);
    free(u);
}

static void pool_unlink(up_t *u)
{
    pool_t *pl = pool_of(u->w, u->key, 0);
    for (up_t **p = pl ? &pl->head : NULL; p && *p; p = &(*p)->next)
        if (*p == u) {
            *p = u->next;
            pl->n--;
            break;
        }
    u->next = NULL;
}

static void up_close(up_t *u)
{
    if (u->state == UP_CLOSING) return;
    if (u->state == UP_IDLE) pool_unlink(u);
    u->state = UP_CLOSING;
    u->closes = 2 + u->has_kick;
    uv_close((uv_handle_t *)&u->tcp, up_closed);
    uv_close((uv_handle_t *)&u->timer.h, up_closed);
    if (u->has_kick) uv_close((uv_handle_t *)&u->kick, up_closed);
}

void eg_proxy_close_pool(eg_worker_t *w)
{
    stream_spares_free(w);
    pools_t *ps = w->idle;
    for (size_t i = 0; ps && i < ps->n; i++)
        while (ps->items[i].head) up_close(ps->items[i].head);
    if (ps && w->draining) { /* nothing is pooled again once draining */
        for (size_t i = 0; i < ps->n; i++) SSL_SESSION_free(ps->items[i].sess);
        free(ps->items);
        free(ps);
        w->idle = NULL;
    }
    while (w->draining && w->nwcache > 0) free(w->wcache[--w->nwcache]);
}

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    up_t *u = h->data;
    if (u->tls) {
        tls_alloc(u->w, b);
        return;
    }
    b->base = u->buf + u->len;
    b->len = EG_UP_BUF - u->len;
}

static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);
static void up_kick(uv_idle_t *h);

static void up_reading(up_t *u, int on)
{
    if (u->state == UP_CLOSING) return;
    if (on) uv_read_start((uv_stream_t *)&u->tcp, up_alloc, up_read);
    else uv_read_stop((uv_stream_t *)&u->tcp);
    u->reading = on;
    if (on && u->tls && u->has_kick && eg_tls_buffered(u->tls)) uv_idle_start(&u->kick, up_kick);
}

static void up_timeout(uv_timer_t *t)
{
    up_t *u = t->data;
    if (u->state == UP_IDLE || !u->c) {
        up_close(u);
        return;
    }
    if (u->state == UP_HEAD || u->state == UP_BODY) {
        const eg_upstream_cfg_t *uc = u->ucfg;
        u->waited_ms = u->deadline && uv_now(&u->w->loop) >= u->deadline ? uc->total_timeout_ms
                       : u->state == UP_HEAD                            ? uc->timeout_ms
                                                                        : uc->read_timeout_ms;
    }
    up_failed(u, u->state == UP_CONNECTING ? FAIL_CONNECT_TIMEOUT : FAIL_TIMEOUT);
}

/* Arms the response timer for `ms` (the head's timeout, or read_timeout
 * between two reads of the body, as nginx's proxy_read_timeout), never
 * past the response's total_timeout deadline. Re-armed on every read, so a
 * slow but flowing body is not cut; ms 0 keeps only the deadline (reading
 * paused by a slow client, whose own write_timeout then applies). */
static void up_timer(up_t *u, uint64_t ms)
{
    if (u->deadline) {
        uint64_t now = uv_now(&u->w->loop);
        uint64_t left = u->deadline > now ? u->deadline - now : 1;
        if (ms == 0 || left < ms) ms = left;
    } else if (ms == 0) {
        eg_ltimer_stop(&u->timer);
        return;
    }
    eg_ltimer_set(&u->timer, up_timeout, ms);
}

/* Returns a connection to the worker's pool. Why a full pool still takes it,
 * for EG_POOL_SURPLUS_MS only: responses come back in bursts (one event-loop
 * pass can finish a hundred), and the clients' next requests come in the
 * next passes; closing what is over `keepalive` at once made a reconnect of
 * most requests above that many clients (63% at 200 clients with 64 kept,
 * against nginx's 10%). A surplus connection that is not taken again within
 * that time is closed, so no more than `keepalive` stay idle for longer
 * (every connection put while `keepalive` or more wait gets the short
 * lifetime, so at most `keepalive` can have the long one). */
static void pool_put(up_t *u)
{
    pool_t *pl = u->w->draining ? NULL : pool_of(u->w, u->key, 1);
    u->c = NULL;
    if (!pl || u->keepalive_max <= 0) {
        up_close(u);
        return;
    }
    uint64_t life = pl->n >= u->keepalive_max ? EG_POOL_SURPLUS_MS : u->keepalive_ms;
    if (life > u->keepalive_ms) life = u->keepalive_ms;
    u->state = UP_IDLE;
    u->len = u->scanned = 0;
    u->next = pl->head;
    pl->head = u;
    pl->n++;
    eg_ltimer_set(&u->timer, up_timeout, life);
    /* still reading: an idle connection that closes is noticed and dropped */
}

static up_t *pool_take(eg_worker_t *w, const char *key)
{
    pool_t *pl = pool_of(w, key, 0);
    up_t *u = pl ? pl->head : NULL;
    if (!u) return NULL;
    pl->head = u->next;
    pl->n--;
    u->next = NULL;
    eg_ltimer_stop(&u->timer);
    return u;
}

/* Appends "Name: value\r\n" to the head being built. */
static size_t hdr(char *out, size_t at, size_t cap, const char *n, size_t nl, const char *v, size_t vl)
{
    if (at + nl + vl + 4 > cap) return cap + 1;
    memcpy(out + at, n, nl);
    at += nl;
    out[at++] = ':';
    out[at++] = ' ';
    memcpy(out + at, v, vl);
    at += vl;
    out[at++] = '\r';
    out[at++] = '\n';
    return at;
}

#define HDR_LIT(out, at, cap, n, v, vl) hdr(out, at, cap, n, sizeof(n) - 1, v, vl)

/* h is the configured request id header (rid, ridlen bytes), without case.
 * The first bytes, folded by 0x20 (equal whenever strncasecmp would find
 * them equal), first: most names of its length differ there
 * (Content-Type against X-Request-ID). */
static EG_INLINE int is_rid_header(const eg_http_header_t *h, const char *rid, size_t ridlen)
{
    return h->name_len == ridlen && ridlen && (h->name[0] | 0x20) == (rid[0] | 0x20) &&
           strncasecmp(h->name, rid, ridlen) == 0;
}

/* A NUL-terminated string that may stand as a header value as it is
 * (RFC 9110 5.5: visible characters, spaces and tabs, not at its ends). */
static int field_value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0) return 0;
    if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
    }
    return 1;
}

/* The headers a credential can come in: the API key header and a bearer
 * Authorization. On a route with auth, none of them reaches the upstream,
 * whichever one was used (DESIGN.md: a secret is never forwarded). */
static int is_credential(const eg_config_t *cfg, const eg_http_header_t *h)
{
    if (eg_access_is_key_header(cfg, h)) return 1;
    return eg_http1_name_is(h, "authorization") && h->value_len >= 7 && strncasecmp(h->value, "bearer ", 7) == 0;
}

/* The request as the upstream sees it: hop-by-hop headers gone, the request
 * id, trace context and forwarding headers set by the gateway. */
/* Over TLS, the two headers send_request_head just wrote at `at` say
 * https (written again rather than branched on in the plain path). fwd is
 * the Forwarded value, ending in ";proto=http". */
static EG_COLD size_t forwarded_https(char *out, size_t at, size_t cap, const char *fwd, size_t n)
{
    char v[520];
    if (n + 1 >= sizeof(v)) return cap + 1;
    memcpy(v, fwd, n);
    v[n] = 's';
    at = HDR_LIT(out, at, cap, "X-Forwarded-Proto", "https", 5);
    return HDR_LIT(out, at, cap, "Forwarded", v, n + 1);
}

static int send_request_head(up_t *u, conn_t *c, const eg_hostport_t *srv)
{
    const eg_upstream_cfg_t *ucfg = &c->gw->cfg->upstreams[c->route->upstream];
    const eg_config_t *cfg = c->gw->cfg;
    size_t cap = c->off + 1024 + (c->access.authenticated ? sizeof(c->access.p) : 0) +
                 (c->upgrade[0] ? sizeof(c->upgrade) + 40 : 0);
    wreq_t *wr = wreq_new(u->w, u, 1, cap);
    if (!wr) return -1;
    char *out = wr->data;
    size_t at = 0;
    memcpy(out, c->req.method, c->req.method_len);
    at = c->req.method_len;
    out[at++] = ' ';
    size_t tl;
    const char *t = eg_req_origin_form(c, &tl);
    const char *q = memchr(t, '?', tl); /* the normalized path, then the query as it came */
    memcpy(out + at, c->path, c->path_len);
    at += c->path_len;
    if (q) {
        memcpy(out + at, q, tl - (size_t)(q - t));
        at += tl - (size_t)(q - t);
    }
    memcpy(out + at, " HTTP/1.1\r\n", 11);
    at += 11;
    const char *xff = NULL;
    size_t xffl = 0, ridlen = strlen(cfg->request_id_header);
    const char *host = c->req.host; /* the parser kept it */
    conn_tokens_t ct;
    conn_tokens(c->req.connection, &ct);
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const eg_http_header_t *h = &c->req.headers[i];
        if (hop_by_hop(h, &ct) || set_by_gateway(h) ||
            is_rid_header(h, cfg->request_id_header, ridlen))
            continue;
        if (h == c->access.cred || eg_access_is_principal_header(h)) continue;
        if (c->route->auth != EG_AUTHN_NONE && is_credential(cfg, h)) continue; /* never forwarded */
        if (!cfg->underscores_in_headers && memchr(h->name, '_', h->name_len)) continue;
        if (eg_http1_name_is(h, "x-forwarded-for")) {
            xff = h->value;
            xffl = h->value_len;
            continue;
        }
        at = hdr(out, at, cap, h->name, h->name_len, h->value, h->value_len);
    }
    char tmp[512];
    eg_sb_t b;
    if (ucfg->host_mode == EG_HOST_FIXED) {
        at = HDR_LIT(out, at, cap, "Host", ucfg->host, strlen(ucfg->host));
    } else if (ucfg->host_mode == EG_HOST_REWRITE || !host) {
        at = HDR_LIT(out, at, cap, "Host", srv->addr, strlen(srv->addr));
    } else {
        at = HDR_LIT(out, at, cap, "Host", host, c->req.host_len);
    }
    size_t iplen = strlen(c->client_ip);
    if (xff) {
        b = eg_sb(tmp, sizeof(tmp));
        eg_sb_mem(&b, xff, xffl > 400 ? 400 : xffl);
        EG_SB_LIT(&b, ", ");
        eg_sb_mem(&b, c->client_ip, iplen);
        at = HDR_LIT(out, at, cap, "X-Forwarded-For", tmp, b.len);
    } else {
        at = HDR_LIT(out, at, cap, "X-Forwarded-For", c->client_ip, iplen);
    }
    size_t proto_at = at;
    at = HDR_LIT(out, at, cap, "X-Forwarded-Proto", "http", 4);
    b = eg_sb(tmp, sizeof(tmp)); /* for=192.0.2.1;proto=http, or for="[2001:db8::1]" */
    int v6 = memchr(c->client_ip, ':', iplen) != NULL;
    EG_SB_LIT(&b, "for=");
    if (v6) EG_SB_LIT(&b, "\"[");
    eg_sb_mem(&b, c->client_ip, iplen);
    if (v6) EG_SB_LIT(&b, "]\"");
    EG_SB_LIT(&b, ";proto=http");
    at = HDR_LIT(out, at, cap, "Forwarded", tmp, b.len);
    if (c->is_tls) at = forwarded_https(out, proto_at, cap, tmp, b.len);
    at = hdr(out, at, cap, cfg->request_id_header, ridlen, c->reqid, strlen(c->reqid));
    /* eg_req_admit set it: a valid one (exactly EG_TRACEPARENT_LEN) or a new one */
    at = HDR_LIT(out, at, cap, "traceparent", c->traceparent,
                 c->traceparent[0] ? EG_TRACEPARENT_LEN : 0);
    if (c->req.framing == EG_FRAMING_LENGTH) {
        b = eg_sb(tmp, sizeof(tmp));
        eg_sb_u64(&b, c->req.content_length);
        at = HDR_LIT(out, at, cap, "Content-Length", tmp, b.len);
    } else if (c->req.framing == EG_FRAMING_CHUNKED) {
        at = HDR_LIT(out, at, cap, "Transfer-Encoding", "chunked", 7);
    }
    if (c->access.authenticated) {
        /* from a token's claims or the key store: a value that could split
         * the head is left out (access refuses such subjects before this) */
        const eg_principal_t *p = &c->access.p;
        if (field_value_ok(p->consumer)) at = HDR_LIT(out, at, cap, "X-Consumer-ID", p->consumer, strlen(p->consumer));
        if (p->key_id[0] && field_value_ok(p->key_id))
            at = HDR_LIT(out, at, cap, "X-Key-ID", p->key_id, strlen(p->key_id));
        if (field_value_ok(p->scopes)) at = HDR_LIT(out, at, cap, "X-Scopes", p->scopes, strlen(p->scopes));
    }
    /* no Connection header: keep-alive is HTTP/1.1's default, as with nginx;
     * an upgrade names it, with the tokens the route let through */
    if (c->upgrade[0]) {
        at = HDR_LIT(out, at, cap, "Connection", "upgrade", 7);
        at = HDR_LIT(out, at, cap, "Upgrade", c->upgrade, strlen(c->upgrade));
    }
    if (at + 2 > cap) {
        wreq_free(wr);
        return -1;
    }
    out[at++] = '\r';
    out[at++] = '\n';
    return up_send(u, wr, at);
}

/* The connection is usable: send the head, start streaming the body, wait for the answer. */
static void up_ready(up_t *u)
{
    conn_t *c = u->c;
    const eg_upstream_cfg_t *ucfg = &c->gw->cfg->upstreams[c->route->upstream];
    const eg_hostport_t *srv = &ucfg->servers[u->sidx];
    if (send_request_head(u, c, srv) != 0) {
        up_failed(u, FAIL_RESET);
        return;
    }
    u->state = UP_HEAD;
    u->ninterim = 0;
    u->dechunk = c->req.minor_version == 0;
    u->deadline = ucfg->total_timeout_ms ? uv_now(&u->w->loop) + ucfg->total_timeout_ms : 0;
    up_timer(u, ucfg->timeout_ms);
    up_reading(u, 1);
    forward_body(c);
    if (c->state == C_PROXY && !c->body_done) client_reading(c, 1);
}

static EG_INLINE void up_got(up_t *u, ssize_t nread);

/* A new session from an https upstream: kept in the server's pool entry
 * for the next new connection (TLS session reuse). */
static EG_COLD void up_session(void *data, SSL_SESSION *sess)
{
    up_t *u = data;
    pool_t *pl = u->w->draining ? NULL : pool_of(u->w, u->key, 1);
    if (!pl) {
        SSL_SESSION_free(sess);
        return;
    }
    SSL_SESSION_free(pl->sess);
    pl->sess = sess;
}

/* The https side of up_read: the handshake (then the request goes), then
 * plaintext into u->buf while reading is on. */
static EG_COLD void up_tls_pump(up_t *u)
{
    eg_tls_t *t = u->tls;
    uv_stream_t *s = (uv_stream_t *)&u->tcp;
    if (!eg_tls_done(t)) {
        int h = eg_tls_handshake(t);
        if (tls_flush(t, s, u->w, u, 1, &u->wpending) != 0 || h < 0) {
            snprintf(u->tls_why, sizeof(u->tls_why), "TLS handshake with the upstream failed: %s",
                     eg_tls_why(t));
            up_failed(u, FAIL_TLS);
            return;
        }
        if (h == 0) return;
        eg_ltimer_stop(&u->timer);
        if (!u->c) {
            up_close(u);
            return;
        }
        up_ready(u);
    }
    while (u->state != UP_CLOSING && u->reading) {
        ssize_t n = eg_tls_read(t, u->buf + u->len, EG_UP_BUF - u->len);
        if (tls_flush(t, s, u->w, u, 1, &u->wpending) != 0) n = -1;
        if (n == 0) return;
        up_got(u, n < 0 ? UV_EOF : n);
        if (n < 0) return;
    }
}

static void up_kick(uv_idle_t *h)
{
    up_t *u = h->data;
    uv_idle_stop(h);
    if (u->state != UP_CLOSING && u->tls) up_tls_pump(u);
}

static void up_connected(uv_connect_t *req, int status)
{
    up_t *u = req->data;
    if (u->state == UP_CLOSING) return;
    if (status < 0) {
        up_failed(u, FAIL_CONNECT);
        return;
    }
    uv_tcp_nodelay(&u->tcp, 1);
    if (!u->c) { /* the client went away while connecting */
        up_close(u);
        return;
    }
    if (u->tls) { /* the handshake, under the same connect_timeout */
        up_reading(u, 1);
        up_tls_pump(u);
        return;
    }
    eg_ltimer_stop(&u->timer);
    up_ready(u);
}

/* The key a hash balance hashes: the header's value, the principal, or the
 * client's address (also when the header is absent or nobody signed in, so
 * such clients still stay on one server). */
static uint64_t lb_key(conn_t *c, const eg_upstream_cfg_t *u)
{
    if (u->hash_on == EG_HASH_ON_HEADER) {
        const eg_http_header_t *h = eg_http1_header(&c->req, u->hash_header);
        if (h) return eg_balance_hash(h->value, h->value_len);
    } else if (u->hash_on == EG_HASH_ON_PRINCIPAL && c->access.authenticated) {
        return eg_balance_hash(c->access.p.consumer, strlen(c->access.p.consumer));
    }
    return eg_balance_hash(c->client_ip, strlen(c->client_ip));
}

/* Picks the next server of the route's upstream by its balance policy
 * (balance.h), among those not tried yet for this request and not down.
 * One server: every policy picks it while untried, down or not (the
 * fallback below), so neither its health nor the cursor is read. */
static int pick_server(conn_t *c, uint64_t now_ns, size_t *out)
{
    eg_gw_t *gw = c->gw;
    size_t ui = c->route->upstream;
    const eg_upstream_cfg_t *u = &gw->cfg->upstreams[ui];
    if (u->nservers == 1) {
        if (c->tried & 1u) return -1;
        *out = 0;
        return 0;
    }
    uint64_t now = now_ns / 1000000u;
    eg_balance_server_t s[EG_UPSTREAM_MAX_SERVERS];
    int untried = 0;
    for (size_t i = 0; i < u->nservers; i++) {
        eg_server_health_t *h = &gw->health[ui][i];
        int fresh = !(i < 32 && (c->tried & (1u << i)));
        s[i] = (eg_balance_server_t){u->server_ids[i], u->weights[i],
                                     (unsigned)atomic_load_explicit(&h->inflight, memory_order_relaxed),
                                     fresh && !eg_health_is_down(h, now)};
        untried |= fresh;
    }
    unsigned cursor = atomic_fetch_add_explicit(&gw->rr[ui], 1, memory_order_relaxed);
    uint64_t key = u->balance == EG_BALANCE_HASH ? lb_key(c, u) : 0;
    if (eg_balance_pick((eg_balance_t)u->balance, s, u->nservers, cursor, key, out) == EG_OK) return 0;
    if (!untried) return -1;
    /* every untried server is down: try one anyway rather than fail without trying */
    for (size_t i = 0; i < u->nservers; i++) s[i].usable = !(i < 32 && (c->tried & (1u << i)));
    return eg_balance_pick((eg_balance_t)u->balance, s, u->nservers, cursor, key, out) == EG_OK ? 0 : -1;
}

/* The TLS side of a new upstream connection, offering the server's last session. */
static EG_COLD int up_tls_new(up_t *u, SSL_CTX *tctx, const eg_hostport_t *srv, const eg_upstream_cfg_t *ucfg)
{
    pool_t *pl = pool_of(u->w, u->key, 0);
    u->tls = eg_tls_connect_new(tctx, srv->host, ucfg->tls.server_name, pl ? pl->sess : NULL, up_session, u);
    u->has_kick = uv_idle_init(&u->w->loop, &u->kick) == 0;
    return u->tls && u->has_kick ? 0 : -1;
}

static void proxy_start(conn_t *c)
{
    eg_gw_t *gw = c->gw;
    size_t ui = c->route->upstream, si;
    const eg_upstream_cfg_t *ucfg = &gw->cfg->upstreams[ui];
    uint64_t now_ns = clock_ns(); /* the server pick's clock, and the first attempt's start */
    lb_release(c); /* a retry's previous server no longer has this request */
    if (pick_server(c, now_ns, &si) != 0) {
        eg_error_t *e = new_error(c, "bad_gateway");
        if (e) eg_error_set_detail(e, "upstream_service", json_string(ucfg->name));
        send_error(c, e, NULL, "no upstream server left to try");
        return;
    }
    if (si < 32) c->tried |= 1u << si;
    if (ucfg->balance == EG_BALANCE_LEAST_CONN) { /* only it reads the count: no shared write otherwise */
        c->lb_held = &gw->health[ui][si];
        atomic_fetch_add_explicit(&c->lb_held->inflight, 1, memory_order_relaxed);
    }
    if (c->attempts == 0) c->up_start_ns = now_ns;
    else eg_metrics_upstream_retry(gw->metrics, c->w->id, ui);
    c->attempts++;
    const eg_hostport_t *srv = &ucfg->servers[si];
    const char *key = srv->addr;
    memcpy(c->upstream, key, strlen(key) + 1);
    if (ucfg->tls.on) key = gw->tls_keys[ui][si]; /* its own TLS settings: its own connections and sessions */
    /* a body waits in the socket until the upstream is ready (so a retry is safe) */
    if (!c->body_done) client_reading(c, 0);
    up_t *u = pool_take(c->w, key);
    if (u) {
        u->sidx = si;
        u->c = c;
        u->reused = 1;
        u->got_bytes = 0;
        u->ucfg = ucfg;
        u->health = &gw->health[ui][si];
        c->up = u;
        up_ready(u);
        return;
    }
    u = calloc(1, sizeof(*u));
    if (!u || !(u->buf = malloc(EG_UP_BUF))) {
        if (u) free(u);
        conn_close(c);
        return;
    }
    u->w = c->w;
    u->c = c;
    u->ucfg = ucfg;
    u->health = &gw->health[ui][si];
    u->keepalive_ms = ucfg->keepalive_timeout_ms;
    u->keepalive_max = ucfg->keepalive;
    u->sidx = si;
    snprintf(u->key, sizeof(u->key), "%s", key);
    uv_tcp_init(&c->w->loop, &u->tcp);
    eg_ltimer_init(&c->w->loop, &u->timer);
    u->tcp.data = u->timer.h.data = u->creq.data = u->kick.data = u;
    if (ucfg->tls.on && up_tls_new(u, gw->tls_up[ui], srv, ucfg) != 0) {
        u->state = UP_CONNECTING;
        c->up = NULL;
        u->c = NULL;
        up_close(u);
        conn_close(c);
        return;
    }
    u->state = UP_CONNECTING;
    c->up = u;
    struct sockaddr_storage ss;
    const char *hostname = strcmp(srv->host, "localhost") == 0 ? "127.0.0.1" : srv->host;
    int rc = strchr(hostname, ':') ? uv_ip6_addr(hostname, srv->port, (struct sockaddr_in6 *)&ss)
                                   : uv_ip4_addr(hostname, srv->port, (struct sockaddr_in *)&ss);
    if (rc == 0) rc = uv_tcp_connect(&u->creq, &u->tcp, (struct sockaddr *)&ss, up_connected);
    if (rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM) {
        /* out of descriptors or memory here: the upstream is not at fault
         * (no health mark, no retry elsewhere); the client may come back */
        c->up = NULL;
        u->c = NULL;
        up_close(u);
        eg_error_t *e = new_error(c, "service_unavailable");
        if (e) {
            eg_error_set(e, EG_S_MESSAGE, "The gateway is out of resources; try again shortly.");
            eg_error_set_retry_after(e, 1);
        }
        send_error(c, e, NULL, "no descriptor for an upstream connection");
        return;
    }
    if (rc != 0) {
        up_failed(u, FAIL_CONNECT);
        return;
    }
    eg_ltimer_set(&u->timer, up_timeout, ucfg->connect_timeout_ms);
}

/* Writes "<hex n>\r\n" at out; returns its length. */
static size_t chunk_line(char *out, uint64_t n)
{
    char tmp[16];
    size_t k = 0, at = 0;
    do {
        tmp[k++] = "0123456789abcdef"[n & 15];
        n >>= 4;
    } while (n);
    while (k) out[at++] = tmp[--k];
    out[at++] = '\r';
    out[at++] = '\n';
    return at;
}

/* A chunked request body is re-framed, not copied: each run of data bytes
 * leaves as a chunk of the gateway's making, so chunk extensions and
 * trailers (which bypass the header stripping: Host, Content-Length,
 * X-API-Key in a trailer) never reach the upstream (RFC 9112 7.1.2 lets a
 * proxy drop them), and a chunk declared larger than what max_body_size has
 * left is refused before a byte of it is sent. Reads in[0..n), writes the
 * chunks to out (room for n + 32 bytes: each run costs at most the framing
 * the input spent on it, plus one continued run and the last chunk), sets
 * *used and *olen. Returns EG_OK at the end of the body, EG_EAGAIN, EG_EPARSE
 * (st->why) or EG_ERANGE (over max_body). */
/* The kept trailer lines (st->keep) whose names request.forward_trailers
 * lists, copied to out; returns their length. */
static size_t allowed_trailers(const eg_config_t *cfg, const char *keep, size_t n, char *out)
{
    size_t o = 0;
    for (size_t at = 0; at < n;) {
        const char *eol = memchr(keep + at, '\n', n - at);
        size_t len = eol ? (size_t)(eol - (keep + at)) + 1 : n - at;
        const char *colon = memchr(keep + at, ':', len);
        size_t nl = colon ? (size_t)(colon - (keep + at)) : 0;
        for (size_t i = 0; nl && i < cfg->nforward_trailers; i++)
            if (strlen(cfg->forward_trailers[i]) == nl && strncasecmp(cfg->forward_trailers[i], keep + at, nl) == 0) {
                memcpy(out + o, keep + at, len);
                o += len;
                break;
            }
        at += len;
    }
    return o;
}

static int reframe_chunks(const eg_config_t *cfg, eg_chunked_t *st, uint64_t max_body, const char *in, size_t n,
                          char *out, size_t *used, size_t *olen)
{
    size_t pos = 0, o = 0;
    int rc = EG_EAGAIN;
    while (pos < n) {
        const char *d;
        size_t dl = 0, k = 0;
        rc = eg_chunked_data(st, in + pos, n - pos, EG_MAX_TRAILER, &k, &d, &dl);
        pos += k;
        if (rc == EG_EPARSE) break;
        if (st->body_bytes > max_body || st->remaining > max_body - st->body_bytes) {
            rc = EG_ERANGE;
            break;
        }
        if (dl) {
            o += chunk_line(out + o, dl);
            memcpy(out + o, d, dl);
            o += dl;
            out[o++] = '\r';
            out[o++] = '\n';
        }
        if (rc == EG_OK) { /* the last chunk, the trailers allowed, the end */
            memcpy(out + o, "0\r\n", 3);
            o += 3;
            if (st->keep) o += allowed_trailers(cfg, st->keep, st->keep_len, out + o);
            memcpy(out + o, "\r\n", 2);
            o += 2;
            break;
        }
        if (k == 0) break;
    }
    *used = pos;
    *olen = o;
    return rc;
}

/* The request body broke its framing or the body limit: the upstream, which
 * may have seen part of it, is dropped; the client gets the error when no
 * response started yet (docs/security.md: what the upstream saw). */
static void body_refused(conn_t *c, up_t *u, int too_large)
{
    c->up = NULL;
    u->c = NULL;
    up_close(u);
    c->body_done = 1;
    c->keep_alive = 0;
    if (c->response_started) {
        conn_close(c);
        return;
    }
    if (too_large) {
        eg_error_t *e = new_error(c, "payload_too_large");
        if (e) eg_error_set_detail(e, "max_body_size", json_integer((json_int_t)c->gw->cfg->limits.max_body_size));
        send_error(c, e, NULL, "chunked body over max_body_size");
        return;
    }
    eg_error_t *e = new_error(c, "bad_request");
    if (e) eg_error_setf(e, EG_S_MESSAGE, "Malformed chunked body: %s.", c->ck.why);
    send_error(c, e, NULL, c->ck.why);
}

/* Sends the body a stage moved to rbody (eg_req_read_body), a piece at a
 * time while the upstream's write queue has room (up_write_done sends the
 * rest), so the connection holds rbody and at most EG_HIGH_WATER +
 * EG_UP_BUF more: a Content-Length body as it came, a chunked one (decoded
 * in rbody) as chunks of the gateway's making with the trailers
 * request.forward_trailers allows, as forward_body re-frames one. rbody stays whole until the
 * request ends, so nothing is lost for a retry before the first byte. */
static void forward_held(conn_t *c, up_t *u)
{
    int chunked = c->req.framing == EG_FRAMING_CHUNKED;
    while (!c->rbody_fin && queued(&u->tcp) <= EG_HIGH_WATER) {
        size_t n = c->rbody_len - c->rbody_sent;
        if (n > EG_UP_BUF) n = EG_UP_BUF; /* a piece: at most EG_HIGH_WATER + EG_UP_BUF queued */
        int last = c->rbody_sent + n == c->rbody_len;
        if (!chunked) {
            if (to_up(u, c->rbody + c->rbody_sent, n) != 0) {
                up_failed(u, FAIL_RESET);
                return;
            }
        } else {
            size_t trail = last && c->ck.keep ? c->ck.keep_len : 0;
            wreq_t *wr = wreq_new(u->w, u, 1, n + 32 + trail);
            if (!wr) {
                conn_close(c);
                return;
            }
            size_t o = 0;
            if (n) {
                o = chunk_line(wr->data, n);
                memcpy(wr->data + o, c->rbody + c->rbody_sent, n);
                o += n;
                memcpy(wr->data + o, "\r\n", 2);
                o += 2;
            }
            if (last) {
                memcpy(wr->data + o, "0\r\n", 3);
                o += 3;
                if (trail)
                    o += allowed_trailers(c->gw->cfg, c->ck.keep, c->ck.keep_len, wr->data + o);
                memcpy(wr->data + o, "\r\n", 2);
                o += 2;
            }
            if (up_send(u, wr, o) != 0) {
                up_failed(u, FAIL_RESET);
                return;
            }
        }
        c->rbody_sent += n;
        c->body_sent = 1;
        c->rbody_fin = last;
    }
}

/* Streams request body bytes that are in the client buffer to the upstream. */
static void forward_body(conn_t *c)
{
    up_t *u = c->up;
    if (!u || u->state == UP_CONNECTING || u->state == UP_CLOSING) return;
    if (c->rbody_held) {
        forward_held(c, u);
        return;
    }
    if (c->body_done) return;
    size_t avail = c->len - c->off;
    if (avail == 0) return;
    size_t take = 0;
    if (c->req.framing == EG_FRAMING_LENGTH) {
        take = avail < c->body_left ? avail : (size_t)c->body_left;
        c->body_left -= take;
        if (c->body_left == 0) c->body_done = 1;
        if (take && to_up(u, c->buf + c->off, take) != 0) {
            up_failed(u, FAIL_RESET);
            return;
        }
        c->body_sent = c->body_sent || take > 0;
    } else {
        wreq_t *wr = wreq_new(u->w, u, 1, avail + 32 + (c->ck.keep ? c->ck.keep_cap : 0));
        if (!wr) {
            conn_close(c);
            return;
        }
        size_t olen = 0;
        int rc = reframe_chunks(c->gw->cfg, &c->ck, c->gw->cfg->limits.max_body_size, c->buf + c->off, avail,
                                wr->data, &take, &olen);
        if (rc == EG_EPARSE || rc == EG_ERANGE) {
            wreq_free(wr);
            body_refused(c, u, rc == EG_ERANGE);
            return;
        }
        if (rc == EG_OK) c->body_done = 1;
        if (olen == 0) {
            wreq_free(wr);
        } else {
            if (up_send(u, wr, olen) != 0) {
                up_failed(u, FAIL_RESET);
                return;
            }
            c->body_sent = 1;
        }
    }
    c->off += take;
    if (c->off == c->len) c->len = c->off = c->req.head_len; /* reuse the space after the head */
    if (c->body_done) client_timer(c, T_NONE);
    /* backpressure: a slow upstream stops the client; room again lets it go on */
    if (queued(&u->tcp) > EG_HIGH_WATER) client_reading(c, 0);
    else if (!c->body_done) client_reading(c, 1);
}

static void up_write_done(up_t *u)
{
    conn_t *c = u->c;
    if (c && c->switching) {
        tunnel_go(c);
        return;
    }
    if (c && c->up == u && c->rbody_held && !c->rbody_fin && queued(&u->tcp) < EG_HIGH_WATER / 2) {
        forward_body(c);
        return;
    }
    if (c && c->state == C_PROXY && !c->body_done && queued(&u->tcp) < EG_HIGH_WATER / 2)
        client_reading(c, 1);
}

/* The response is complete: pool the connection, finish the client's request. */
static void up_done(up_t *u)
{
    conn_t *c = u->c;
    lb_release(c); /* the server is done with it, before the client's last bytes leave */
    eg_ltimer_stop(&u->timer);
    c->up = NULL;
    if (!c->body_done) c->keep_alive = 0; /* the upstream answered before the body ended */
    /* an upstream that answered before it had the whole body is not reused */
    int sent = c->body_done && (!c->rbody_held || c->rbody_fin);
    /* an upgrade the upstream declined: its connection is not reused either */
    if (u->keep_alive && sent && u->framing != EG_FRAMING_UNTIL_CLOSE && !c->upgrade[0]) {
        pool_put(u);
    } else {
        u->c = NULL;
        up_close(u);
    }
    conn_finish(c);
}

/* Copies the response body bytes in data[0..n) that belong to this response
 * to out (which has room for n bytes), following the upstream's framing:
 * a Content-Length countdown, validated chunked bytes (decoded for HTTP/1.0
 * clients), or everything until close. *done is set at the end of the body.
 * Returns -1 when the upstream's framing is broken. */
static int frame_body(up_t *u, const char *data, size_t n, char *out, size_t *outlen, int *done)
{
    size_t o = 0;
    *done = 0;
    switch (u->framing) {
    case EG_FRAMING_NONE:
        if (n) u->keep_alive = 0; /* bytes where none belong (a body to HEAD): do not reuse */
        *done = 1;
        break;
    case EG_FRAMING_LENGTH: {
        size_t take = n < u->left ? n : (size_t)u->left;
        memcpy(out, data, take);
        o = take;
        u->left -= take;
        if (u->left == 0) {
            if (take < n) u->keep_alive = 0; /* bytes past the end: do not reuse */
            *done = 1;
        }
        break;
    }
    case EG_FRAMING_CHUNKED: {
        size_t pos = 0;
        while (pos < n) {
            const char *d;
            size_t dl = 0, used = 0;
            int rc;
            if (u->dechunk) {
                rc = eg_chunked_data(&u->ck, data + pos, n - pos, EG_MAX_TRAILER, &used, &d, &dl);
                memcpy(out + o, d ? d : "", dl);
                o += dl;
            } else {
                rc = eg_chunked_feed(&u->ck, data + pos, n - pos, EG_MAX_TRAILER, &used);
                memcpy(out + o, data + pos, used);
                o += used;
            }
            pos += used;
            if (rc == EG_EPARSE) return -1;
            if (rc == EG_OK) {
                if (pos < n) u->keep_alive = 0;
                *done = 1;
                break;
            }
            if (used == 0) break;
        }
        break;
    }
    case EG_FRAMING_UNTIL_CLOSE:
        memcpy(out, data, n);
        o = n;
        break;
    }
    *outlen = o;
    return 0;
}

/* Sends what frame_body() put after `at` bytes already in wr, then finishes
 * the response or applies backpressure. A body that breaks its framing in
 * the read that brought the head (at > 0) has sent the client nothing yet:
 * it becomes a 502; later, all that can be done is to cut the response. */
static void send_framed(up_t *u, wreq_t *wr, size_t at, const char *data, size_t n)
{
    conn_t *c = u->c;
    size_t o = 0;
    int done = 0;
    if (frame_body(u, data, n, wr->data + at, &o, &done) != 0) {
        wreq_free(wr);
        if (at) c->response_started = 0;
        up_failed(u, FAIL_INVALID); /* a 502 when nothing went out yet, else the response is cut */
        return;
    }
    c->bytes_out += at + o;
    if (c->capture && at + o) eg_pipeline_capture(c, wr->data, at + o);
    if (done) eg_pipeline_done(c); /* before the last bytes: see send_error */
    if (at + o == 0) wreq_free(wr);
    else if (conn_send(c, wr, at + o) != 0) {
        conn_close(c);
        return;
    }
    if (done) {
        up_done(u);
        return;
    }
    if (conn_queued(c) > EG_HIGH_WATER) {
        /* backpressure: a slow client stops the upstream, for write_timeout at most
         * (the upstream's read_timeout waits meanwhile: it is not the one slow) */
        up_reading(u, 0);
        up_timer(u, 0);
        client_timer(c, T_WRITE);
    }
}

static void stream_body(up_t *u, const char *data, size_t n)
{
    wreq_t *wr = wreq_new(u->c->w, u->c, 0, n ? n : 1);
    if (!wr) {
        conn_close(u->c);
        return;
    }
    send_framed(u, wr, 0, data, n);
}

/* Server and X-Powered-By name the software behind the gateway: they stay
 * in unless `expose_internal`. */
static int names_software(const eg_http_header_t *h)
{
    return eg_http1_name_is(h, "server") || eg_http1_name_is(h, "x-powered-by");
}

/* The status line of a relayed response, always as HTTP/1.1 (the version
 * the gateway speaks), the reason phrase cut at 128 bytes: at most 143
 * bytes at out. Returns its length. */
static size_t status_line(char *out, const eg_http1_msg_t *r)
{
    memcpy(out, "HTTP/1.1 ", 9);
    out[9] = (char)('0' + r->status / 100);
    out[10] = (char)('0' + r->status / 10 % 10);
    out[11] = (char)('0' + r->status % 10);
    out[12] = ' ';
    size_t at = 13, rl = r->reason_len < 128 ? r->reason_len : 128;
    memcpy(out + at, r->reason, rl);
    at += rl;
    out[at++] = '\r';
    out[at++] = '\n';
    return at;
}

/* RFC 9110 15.2: a proxy forwards the 1xx responses it did not ask for
 * itself (103 Early Hints, 102 Processing), without hop-by-hop fields. Not
 * forwarded: 100 Continue, which the gateway answers itself when a client
 * sends Expect (it never passes Expect on); 101, since the gateway switches
 * no protocols; anything to an HTTP/1.0 client, which cannot read them; and
 * past EG_INTERIM_MAX per request, so an upstream cannot keep the gateway
 * writing. Returns -1 when the client cannot be written to. */
#define EG_INTERIM_MAX 8
static int forward_interim(up_t *u, conn_t *c)
{
    const eg_http1_msg_t *r = &u->resp;
    if (r->status <= 101 || c->req.minor_version == 0 || u->ninterim >= EG_INTERIM_MAX) return 0;
    u->ninterim++;
    size_t cap = r->head_len + 160 + r->nheaders; /* a space after each colon */
    wreq_t *wr = wreq_new(c->w, c, 0, cap);
    if (!wr) return -1;
    char *out = wr->data;
    size_t at = status_line(out, r);
    conn_tokens_t ct;
    conn_tokens(r->connection, &ct);
    for (size_t i = 0; i < r->nheaders; i++) {
        const eg_http_header_t *h = &r->headers[i];
        if (hop_by_hop(h, &ct)) continue;
        if (!c->gw->cfg->expose_internal && names_software(h)) continue;
        at = hdr(out, at, cap, h->name, h->name_len, h->value, h->value_len);
    }
    if (at + 2 > cap) {
        wreq_free(wr);
        return -1;
    }
    out[at++] = '\r';
    out[at++] = '\n';
    c->bytes_out += at;
    return conn_send(c, wr, at);
}

/* Builds the response head for the client in a write buffer with room for
 * `room` body bytes after it: hop-by-hop headers removed, the request id
 * added, framing and connection re-stated for this hop. NULL on failure.
 * Reads the head's slices, so it must run before the next upstream read.
 * rh (NULL, or for a response of at most EG_RESP_HEAD_MAX fields): the head
 * in fields as written, for eg_pipeline_head; inlined into its two callers,
 * so that the usual one (NULL) has none of it. */
static EG_INLINE wreq_t *response_head(up_t *u, conn_t *c, size_t room, size_t *len, eg_resp_head_t *rh)
{
    const eg_http1_msg_t *r = &u->resp;
    const eg_config_t *cfg = c->gw->cfg;
    const char *cors = c->cors_hdrs ? c->cors_hdrs : "";
    size_t corslen = strlen(cors);
    size_t cap = r->head_len + 512 + sizeof(c->rl_hdrs) + corslen + 128 /* hsts */;
    wreq_t *wr = wreq_new(c->w, c, 0, cap + room);
    if (!wr) return NULL;
    char *out = wr->data;
    size_t at = status_line(out, r);
    conn_tokens_t ct;
    conn_tokens(r->connection, &ct);
    size_t ridlen = strlen(cfg->request_id_header);
    int has_date = 0;
    int switching = r->status == 101; /* up_got lets only an upgrade's 101 come here */
    const char *hsts = hsts_line(c);
    for (size_t i = 0; i < r->nheaders; i++) {
        const eg_http_header_t *h = &r->headers[i];
        if (h->name_len == 4 && eg_http1_name_is(h, "date")) has_date = 1;
        if (hop_by_hop(h, &ct) || is_rid_header(h, cfg->request_id_header, ridlen)) {
            if (switching && h->name_len == 7 && eg_http1_name_is(h, "upgrade")) /* the protocol switched to */
                at = hdr(out, at, cap, h->name, h->name_len, h->value, h->value_len);
            continue;
        }
        if (h->name_len == 25 && hsts[0] && eg_http1_name_is(h, "strict-transport-security"))
            continue; /* the listener's policy is the one in force */
        if (!cfg->expose_internal && names_software(h)) continue;
        if (c->rl_hdrs[0] && is_rate_header(h)) continue; /* the gateway's limits are the ones in force */
        if (corslen && eg_cors_is_cors_header(h->name, h->name_len)) continue; /* the policy's replace them */
        at = hdr(out, at, cap, h->name, h->name_len, h->value, h->value_len);
        if (rh) rh->relayed[rh->nrelayed++] = (uint16_t)i;
    }
    /* RFC 9110 6.6.1: a recipient with a clock adds the Date an origin left out */
    if (!has_date) at = hdr(out, at, cap, "Date", 4, worker_clock(c->w)->date, EG_HTTP1_DATE_LEN);
    at = hdr(out, at, cap, cfg->request_id_header, ridlen, c->reqid, strlen(c->reqid));
    size_t rlen = c->rl_hdrs[0] ? strlen(c->rl_hdrs) : 0;
    if (rlen && at + rlen < cap) {
        memcpy(out + at, c->rl_hdrs, rlen);
        at += rlen;
        if (rh) rh->added[0] = c->rl_hdrs, rh->added_len[0] = rlen;
    }
    if (corslen && at + corslen < cap) {
        memcpy(out + at, cors, corslen);
        at += corslen;
        if (rh) rh->added[1] = cors, rh->added_len[1] = corslen;
    }
    if (hsts[0] && at + strlen(hsts) < cap) {
        memcpy(out + at, hsts, strlen(hsts));
        at += strlen(hsts);
        if (rh) rh->added[2] = hsts, rh->added_len[2] = strlen(hsts);
    }
    if (switching) {
        at = HDR_LIT(out, at, cap, "Connection", "upgrade", 7);
        goto end;
    }
    if (u->framing == EG_FRAMING_CHUNKED && !u->dechunk)
        at = HDR_LIT(out, at, cap, "Transfer-Encoding", "chunked", 7);
    /* a chunked body de-chunked for an HTTP/1.0 client ends with the connection;
     * a length-framed one keeps its Content-Length and can stay open */
    if (u->framing == EG_FRAMING_UNTIL_CLOSE || (u->dechunk && u->framing == EG_FRAMING_CHUNKED))
        c->keep_alive = 0;
    at = c->keep_alive ? HDR_LIT(out, at, cap, "Connection", "keep-alive", 10)
                       : HDR_LIT(out, at, cap, "Connection", "close", 5);
end:
    if (at + 2 > cap) {
        wreq_free(wr);
        return NULL;
    }
    out[at++] = '\r';
    out[at++] = '\n';
    *len = at;
    return wr;
}

static wreq_t *build_response_head(up_t *u, conn_t *c, size_t room, size_t *len)
{
    return response_head(u, c, room, len, NULL);
}

/* send_response for a request whose response a stage keeps (r->capture):
 * the head in fields to it first (eg_pipeline_head), then as usual. Out
 * of line: send_response, inlined where the upstream is read, stays small. */
static __attribute__((noinline)) void send_captured(up_t *u, conn_t *c, const char *body, size_t blen)
{
    size_t at;
    eg_resp_head_t rh;
    int fields = u->resp.nheaders <= EG_RESP_HEAD_MAX;
    rh.nrelayed = 0;
    rh.added_len[0] = rh.added_len[1] = rh.added_len[2] = 0;
    wreq_t *wr = fields ? response_head(u, c, blen, &at, &rh) : build_response_head(u, c, blen, &at);
    if (!wr) {
        conn_close(c);
        return;
    }
    if (fields) {
        rh.status = u->resp.status;
        rh.headers = u->resp.headers;
        rh.chunked = u->framing == EG_FRAMING_CHUNKED && !u->dechunk;
        rh.bytes = wr->data;
        rh.len = at;
        eg_pipeline_head(c, &rh);
    }
    send_framed(u, wr, at, body, blen);
}

/* Sends the response head with the first body bytes in the same write. */
static void send_response(up_t *u, conn_t *c, const char *body, size_t blen)
{
    if (c->capture) {
        send_captured(u, c, body, blen);
        return;
    }
    size_t at;
    wreq_t *wr = build_response_head(u, c, blen, &at);
    if (!wr) {
        conn_close(c);
        return;
    }
    send_framed(u, wr, at, body, blen);
}

/* ---------------------------------------------------------------- translation */

/* An upstream error is translated when the route normalizes, it has a body
 * and that body is text of some kind (JSON, HTML, plain); other media pass. */
static EG_INLINE int should_translate(const up_t *u, const conn_t *c)
{
    if (u->resp.status < 400 || !c->route->normalize || u->framing == EG_FRAMING_NONE ||
        c->method_bit == EG_M_HEAD || c->gw->cfg->max_translate_body == 0)
        return 0;
    const eg_http_header_t *ct = eg_http1_header(&u->resp, "content-type");
    if (!ct) return 1;
    static const char *const textual[] = {"json", "text/", "xml", "html"};
    for (size_t i = 0; i < sizeof(textual) / sizeof(textual[0]); i++) {
        size_t n = strlen(textual[i]);
        for (size_t k = 0; k + n <= ct->value_len; k++)
            if (strncasecmp(ct->value + k, textual[i], n) == 0) return 1;
    }
    return 0;
}

static int is_rate_header(const eg_http_header_t *h)
{
    return (h->name_len >= 9 && (eg_http1_name_is(h, "ratelimit") || eg_http1_name_is(h, "ratelimit-policy") ||
                                 eg_http1_name_is(h, "ratelimit-limit") || eg_http1_name_is(h, "ratelimit-remaining") ||
                                 eg_http1_name_is(h, "ratelimit-reset"))) ||
           eg_http1_name_is(h, "x-ratelimit-limit") || eg_http1_name_is(h, "x-ratelimit-remaining") || eg_http1_name_is(h, "x-ratelimit-reset");
}

/* Upstream headers that keep their meaning on a translated error. */
static size_t kept_headers(const up_t *u, char *out, size_t cap)
{
    static const char *const keep[] = {"x-ratelimit-limit", "x-ratelimit-remaining",
                                       "x-ratelimit-reset", "ratelimit", "ratelimit-policy",
                                       "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset",
                                       "allow", "www-authenticate", NULL};
    size_t at = 0;
    int internal = u->c && u->c->gw->cfg->expose_internal;
    for (size_t i = 0; i < u->resp.nheaders; i++) {
        const eg_http_header_t *h = &u->resp.headers[i];
        int kept = internal && names_software(h);
        for (const char *const *k = keep; *k && !kept; k++) kept = eg_http1_name_is(h, *k);
        if (kept && u->c && u->c->rl_hdrs[0] && is_rate_header(h)) kept = 0; /* ours are added instead */
        if (kept) at = hdr(out, at, cap - 1, h->name, h->name_len, h->value, h->value_len);
    }
    if (at > cap - 1) at = 0;
    out[at] = '\0';
    return at;
}

static void log_upstream_error(conn_t *c, int status, const char *body, size_t n)
{
    eg_log_t *log = eg_server_error_log(c->w->srv);
    if (!eg_log_enabled(log)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "upstream_error");
    eg_logline_str(&l, "request_id", c->reqid, strlen(c->reqid));
    eg_logline_int(&l, "status", status);
    eg_logline_str(&l, "upstream", c->upstream, strlen(c->upstream));
    eg_logline_str(&l, "body", body, n > 2000 ? 2000 : n);
    eg_logline_end(log, &l);
}

/* One line saying why an upstream error was not translated. */
static void log_untranslated(conn_t *c, int status, const char *why)
{
    eg_log_t *log = eg_server_error_log(c->w->srv);
    if (!eg_log_enabled(log)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "upstream_error");
    eg_logline_str(&l, "request_id", c->reqid, strlen(c->reqid));
    eg_logline_int(&l, "status", status);
    eg_logline_str(&l, "why", why, strlen(why));
    eg_logline_end(log, &l);
}

/* The Content-Encoding of a response, every field line of it folded. */
static eg_coding_t response_coding(const eg_http1_msg_t *r)
{
    eg_coding_t coding = EG_CODING_IDENTITY;
    for (size_t i = 0; i < r->nheaders; i++)
        if (eg_http1_name_is(&r->headers[i], "content-encoding"))
            coding = eg_content_coding(coding, r->headers[i].value, r->headers[i].value_len);
    return coding;
}

/* The buffered error goes out as the upstream sent it, complete: the head
 * saved when the response began (its Content-Encoding and framing intact),
 * then the held body. */
static void pass_held(up_t *u, const char *why)
{
    conn_t *c = u->c;
    log_untranslated(c, u->resp.status, why);
    wreq_t *head = u->xhead;
    size_t hl = u->xhead_len;
    char *held = u->xbuf;
    size_t hlen = u->xlen;
    u->xbuf = NULL;
    u->xhead = NULL;
    u->xlate = 0;
    c->response_started = 1;
    c->bytes_out += hl;
    if (c->capture) {
        eg_pipeline_capture(c, head->data, hl);
        if (hlen) eg_pipeline_capture(c, held, hlen);
    }
    eg_pipeline_done(c); /* before the answer: see send_error */
    int rc = conn_send(c, head, hl);
    if (rc == 0 && hlen) rc = to_client(c, held, hlen);
    free(held);
    if (rc != 0) {
        conn_close(c);
        return;
    }
    up_done(u);
}

/* Decodes a gzip or deflate error body in place before it is translated.
 * Returns 0 to translate, 1 when the response was passed on as it came
 * (a corrupt stream, or a 4xx whose decoded size is past the bounds),
 * -1 when the connection was closed. A 5xx past the bounds is translated
 * from nothing, into the catalog's error, as one too large to read is. */
static int decode_held(up_t *u)
{
    conn_t *c = u->c;
    const eg_config_t *cfg = c->gw->cfg;
    char *plain = NULL, why[200];
    size_t plen = 0;
    const char *name = eg_coding_name(u->xcoding);
    int rc = eg_decode_body(u->xcoding, u->xbuf, u->xlen, cfg->max_translate_body, EG_DECODE_RATIO,
                            &plain, &plen);
    u->xcoding = EG_CODING_IDENTITY;
    if (rc == EG_OK) {
        free(u->xbuf);
        u->xbuf = plain;
        u->xlen = u->xcap = plen;
        return 0;
    }
    if (rc == EG_ENOMEM) {
        conn_close(c);
        return -1;
    }
    if (u->resp.status >= 500) {
        /* a 5xx never leaves as the upstream wrote it (it may hold internals):
         * what cannot be read becomes the catalog's error, as a body too large
         * to read does */
        if (rc == EG_ETOOBIG)
            snprintf(why, sizeof(why),
                     "%s error body decodes to more than max_translate_body or %d times its size: "
                     "answered with the catalog's error",
                     name, EG_DECODE_RATIO);
        else if (rc == EG_EINVAL) { /* br, zstd, stacked: say what it was */
            const eg_http_header_t *ce = eg_http1_header(&u->resp, "content-encoding");
            snprintf(why, sizeof(why),
                     "error body in Content-Encoding '%.*s' cannot be decoded: answered with the "
                     "catalog's error",
                     ce ? (int)(ce->value_len < 40 ? ce->value_len : 40) : 0, ce ? ce->value : "");
        } else
            snprintf(why, sizeof(why),
                     "%s error body cannot be decoded (corrupt or truncated): answered with the "
                     "catalog's error",
                     name);
        log_untranslated(c, u->resp.status, why);
        u->xlen = 0;
        return 0;
    }
    if (rc == EG_ETOOBIG)
        snprintf(
            why, sizeof(why),
            "%s error body decodes to more than max_translate_body or %d times its size: passed "
            "through untranslated",
            name, EG_DECODE_RATIO);
    else
        snprintf(why, sizeof(why),
                 "%s error body cannot be decoded (corrupt or truncated): passed "
                 "through untranslated",
                 name);
    pass_held(u, why);
    return 1;
}

/* Keeps internals in: a 5xx leaves with the catalog's generic message and
 * only the details its code's catalog entry lists as safe (the seeds'
 * status_page, timeout_duration, service...: an allow-list, since anything
 * else may be an internal); with expose_internal the removed parts go
 * under "debug". */
static void scrub(eg_error_t *e, const eg_config_t *cfg, int status)
{
    const eg_catalog_entry_t *ent = e->s[EG_S_CODE] ? eg_catalog_find(cfg->catalog, e->s[EG_S_CODE]) : NULL;
    if (!ent) ent = eg_catalog_for_status(cfg->catalog, status);
    json_t *details = eg_error_details_get(e);
    json_t *uid = details ? json_incref(json_object_get(details, "upstream_request_id")) : NULL;
    if (uid) json_object_del(details, "upstream_request_id");
    json_t *safe = NULL;
    const char *const *names;
    size_t nsafe = eg_catalog_safe_details(cfg->catalog, ent, &names);
    for (size_t i = 0; details && i < nsafe; i++) {
        json_t *v = json_object_get(details, names[i]);
        if (v && (safe || (safe = json_object()))) json_object_set(safe, names[i], v);
    }
    json_t *debug = NULL;
    if (cfg->expose_internal) {
        debug = json_object();
        if (e->s[EG_S_MESSAGE]) json_object_set_new(debug, "message", json_string(e->s[EG_S_MESSAGE]));
        if (details && json_object_size(details)) json_object_set(debug, "details", details);
        if (e->meta && json_object_size(e->meta)) json_object_set(debug, "meta", e->meta);
    }
    for (size_t i = 0; i < e->nfields; i++) {
        json_decref(e->fields[i].value);
        json_decref(e->fields[i].extra);
    }
    e->nfields = 0;
    eg_error_clear_details(e);
    json_decref(e->meta);
    e->meta = NULL;
    eg_error_set(e, EG_S_CODE, ent->code);
    eg_error_set(e, EG_S_MESSAGE, ent->message);
    eg_error_set(e, EG_S_TITLE, NULL);
    eg_error_set(e, EG_S_TYPE, NULL);
    eg_error_set(e, EG_S_INSTANCE, NULL);
    eg_error_set(e, EG_S_DOCS, NULL);
    if (uid) eg_error_set_detail(e, "upstream_request_id", uid);
    const char *k;
    json_t *v;
    json_object_foreach(safe, k, v) eg_error_set_detail(e, k, json_incref(v));
    json_decref(safe);
    if (debug && json_object_size(debug)) json_object_set_new(eg_error_meta(e), "debug", debug);
    else json_decref(debug);
}

/* The buffered upstream error, parsed in whatever dialect it came, leaves
 * in the client's dialect with the gateway's request id. */
static void translate_and_send(up_t *u)
{
    conn_t *c = u->c;
    const eg_config_t *cfg = c->gw->cfg;
    int status = u->resp.status;
    eg_error_t *e = NULL;
    if (u->xcoding != EG_CODING_IDENTITY && decode_held(u) != 0) return;
    if (eg_parse_body(u->xbuf, u->xlen, cfg->dialects, NULL, cfg->catalog, status, &e, NULL) != EG_OK) {
        conn_close(c);
        return;
    }
    e->status = status;
    /* validation is 400 in some dialects and 422 in others: an upstream's
     * 400 / 422 whose code the dialect answers with the other one (its
     * validation status, `errgate docs`) takes the dialect's
     * (docs/validation.md) */
    if ((status == 400 || status == 422) && e->s[EG_S_CODE]) {
        const eg_catalog_entry_t *ent = eg_catalog_find(cfg->catalog, e->s[EG_S_CODE]);
        int st = eg_dialect_code_status(c->dialect ? c->dialect : cfg->dialect, cfg->catalog, e->s[EG_S_CODE]);
        if (ent && st != ent->status && (st == 400 || st == 422)) e->status = st;
    }
    /* a title-only body (RFC 9457 allows it) keeps its words in dialects with one message */
    if (!e->s[EG_S_MESSAGE] && e->s[EG_S_TITLE]) eg_error_set(e, EG_S_MESSAGE, e->s[EG_S_TITLE]);
    /* a code that could not stand in a header as it is (CR/LF, quotes,
     * spaces, over 64 bytes) is the upstream's to fix, not the client's to
     * receive: the catalog's code for the status replaces it */
    if (e->s[EG_S_CODE] && !eg_error_code_valid(e->s[EG_S_CODE], strlen(e->s[EG_S_CODE])))
        eg_error_set(e, EG_S_CODE, NULL);
    if (!e->s[EG_S_CODE]) { /* a body without a code (RFC 9457 allows it): the status's */
        const eg_catalog_entry_t *ent = eg_catalog_for_status(cfg->catalog, status);
        if (ent) eg_error_set(e, EG_S_CODE, ent->code);
    }
    if (e->s[EG_S_REQUEST_ID] && strcmp(e->s[EG_S_REQUEST_ID], c->reqid) != 0)
        eg_error_set_detail(e, "upstream_request_id", json_string(e->s[EG_S_REQUEST_ID]));
    eg_error_set(e, EG_S_REQUEST_ID, c->reqid);
    if (u->xretry >= 0 && e->retry_after < 0) eg_error_set_retry_after(e, u->xretry);
    /* every error the gateway sends has a time (flat-snake's pages put one
     * on each): the upstream's when it gave one, else ours */
    if (!e->s[EG_S_TIMESTAMP]) eg_error_set(e, EG_S_TIMESTAMP, worker_clock(c->w)->ts);
    if (status >= 500) {
        log_upstream_error(c, status, u->xbuf, u->xlen);
        scrub(e, cfg, status);
    }
    char both[sizeof(u->xextra) + sizeof(c->rl_hdrs) + EG_CORS_LINES_LIMIT];
    snprintf(both, sizeof(both), "%s%s%s", u->xextra, c->rl_hdrs, c->cors_hdrs ? c->cors_hdrs : "");
    const char *extra = both;
    const eg_dialect_t *d = c->dialect ? c->dialect : cfg->dialect;
    size_t cap = 2048 + 4 * u->xlen, n = 0; /* head room + a generous body; doubled if short */
    char *out = NULL;
    while (cap <= (4u << 20)) {
        char *p = realloc(out, cap);
        if (!p) break;
        out = p;
        if ((n = eg_respond_error(e, d, cfg->catalog, worker_clock(c->w)->date, extra, c->keep_alive, 0,
                                  out, cap)) != 0)
            break;
        cap *= 2;
    }
    eg_dialect_error_code(d, cfg->catalog, e, c->code, sizeof(c->code));
    if (c->w->logs_on) snprintf(c->message, sizeof(c->message), "%s", e->s[EG_S_MESSAGE] ? e->s[EG_S_MESSAGE] : "");
    eg_error_free(e);
    free(u->xbuf);
    free(u->xhead);
    u->xbuf = NULL;
    u->xhead = NULL;
    u->xlate = 0;
    if (c->capture && n) eg_pipeline_capture(c, out, n);
    eg_pipeline_done(c); /* before the answer: see send_error */
    if (n == 0 || to_client_answer(c, out, n) != 0) {
        free(out);
        conn_close(c);
        return;
    }
    free(out);
    up_done(u);
}

/* Buffers body bytes of an upstream error; past the bound the response
 * goes through as it is (and a log line says so). */
static void collect(up_t *u, const char *data, size_t n)
{
    conn_t *c = u->c;
    size_t max = c->gw->cfg->max_translate_body;
    if (u->xlen + n > u->xcap && u->xcap < max && u->xlen + n <= max) {
        /* grow towards the bound: most error bodies are small */
        size_t ncap = u->xcap * 2 > u->xlen + n ? u->xcap * 2 : u->xlen + n;
        if (ncap > max) ncap = max;
        char *p = realloc(u->xbuf, ncap);
        if (!p) {
            conn_close(c);
            return;
        }
        u->xbuf = p;
        u->xcap = ncap;
    }
    if (u->xlen + n > u->xcap && u->resp.status >= 500) {
        /* a 5xx too large to read is not passed on with its internals (a
         * stack trace, a debug page): the generic error leaves, the log
         * keeps an excerpt of what was read, the rest is not read at all */
        u->keep_alive = 0;
        size_t room = u->xcap - u->xlen, o = 0;
        int done = 0;
        if (room && frame_body(u, data, n < room ? n : room, u->xbuf + u->xlen, &o, &done) == 0) u->xlen += o;
        if (u->xcoding != EG_CODING_IDENTITY) { /* a compressed excerpt says nothing */
            u->xcoding = EG_CODING_IDENTITY;
            u->xlen = 0;
        }
        translate_and_send(u);
        return;
    }
    if (u->xlen + n > u->xcap) {
        log_untranslated(c, u->resp.status,
                         "error body larger than max_translate_body: passed through untranslated");
        u->xlate = 0;
        char *held = u->xbuf;
        size_t hlen = u->xlen;
        wreq_t *head = u->xhead;
        u->xbuf = NULL;
        u->xhead = NULL;
        c->response_started = 1;
        send_framed(u, head, u->xhead_len, "", 0); /* the head saved when the response began */
        if (u->c == c && c->state == C_PROXY && hlen) {
            if (c->capture) eg_pipeline_capture(c, held, hlen);
            to_client(c, held, hlen);
        }
        free(held);
        if (u->c == c && u->state == UP_BODY) stream_body(u, data, n);
        return;
    }
    size_t o = 0;
    int done = 0;
    if (frame_body(u, data, n, u->xbuf + u->xlen, &o, &done) != 0) {
        up_failed(u, FAIL_INVALID);
        return;
    }
    u->xlen += o;
    if (done) translate_and_send(u);
}

/* ---------------------------------------------------------------- upgrades */

/* The tunnel ended: the request is done (its on_done hooks: a concurrency
 * slot was held as long as the tunnel) under the configuration it was
 * admitted by, and the connection's memory, kept for this, goes. */
static EG_COLD void tunnel_ended(void *data)
{
    conn_t *c = data;
    c->gw = c->tunnel_gw;
    c->tunnel_gw = NULL;
    c->done_run = 0;
    eg_pipeline_done(c);
    eg_gw_unref(c->gw);
    c->gw = NULL;
    if (--c->holds == 0 && c->closes == 0) conn_free(c);
}

/* The sockets go to a tunnel (tunnel.h) once neither has writes queued
 * (the write callbacks call again until then): the 101 is the request's
 * access line, and the connection objects close on their duplicated
 * descriptors, so the upstream connection never returns to the pool. The
 * request itself ends with the tunnel (tunnel_ended). */
static EG_COLD void tunnel_go(conn_t *c)
{
    up_t *u = c->up;
    if (c->wpending || u->wpending) {
        client_timer(c, T_WRITE); /* a client that does not read is not waited for */
        return;
    }
    const eg_route_cfg_t *r = c->route;
    uv_os_fd_t a, b;
    int cfd = uv_fileno((uv_handle_t *)&c->tcp, &a) == 0 ? dup(a) : -1;
    int ufd = uv_fileno((uv_handle_t *)&u->tcp, &b) == 0 ? dup(b) : -1;
    if (cfd < 0 || ufd < 0) {
        if (cfd >= 0) close(cfd);
        if (ufd >= 0) close(ufd);
        c->cut = "no descriptor for the tunnel";
        conn_close(c);
        return;
    }
    eg_tunnel_side_t cs = {cfd, c->tls, c->buf + c->off, c->len - c->off};
    eg_tunnel_side_t us = {ufd, u->tls, u->buf, u->len};
    eg_tunnel_opts_t o = {r->upgrade_idle_ms, r->upgrade_max_bytes, u->xhead->data, u->xhead_len,
                          c->reqid,           r->path,              c->upstream,    c->client_ip,
                          c->gw->metrics,     tunnel_ended,         c};
    c->switching = 0;
    c->bytes_out += u->xhead_len;
    c->done_run = 1; /* the on_done hooks wait for the tunnel's end */
    c->tunnel_gw = eg_gw_ref(c->gw);
    c->holds++;
    log_access(c);
    if (eg_tunnel_start(c->w, &cs, &us, &o) != 0) { /* it took the descriptors and TLS states anyway */
        c->holds--;
        eg_gw_unref(c->tunnel_gw);
        c->tunnel_gw = NULL;
        c->done_run = 0; /* conn_close runs the hooks */
    }
    c->tls = NULL;
    u->tls = NULL;
    c->up = NULL;
    u->c = NULL;
    up_close(u);
    conn_close(c);
}

/* The route tunnels protocol t (its /version not compared). */
static int route_upgrades_to(const eg_route_cfg_t *r, const char *t, size_t len)
{
    const char *slash = memchr(t, '/', len);
    size_t n = slash ? (size_t)(slash - t) : len;
    for (size_t i = 0; i < r->nupgrade_protocols; i++)
        if (strlen(r->upgrade_protocols[i]) == n && strncasecmp(r->upgrade_protocols[i], t, n) == 0) return 1;
    return 0;
}

/* The upstream switched protocols (head: its 101's length in u->buf). Its
 * Upgrade must name protocols the route tunnels (else it chose one it was
 * not offered: 502). The 101 for the client is built now, while the head's
 * slices are valid; what followed it stays in u->buf for the tunnel. */
static EG_COLD void upgrade_switch(up_t *u, conn_t *c, size_t head)
{
    const eg_http_header_t *h = eg_http1_header(&u->resp, "upgrade");
    int ok = h && h->value_len > 0;
    size_t pos = 0, len;
    const char *t;
    while (ok && eg_http1_next_token(h->value, h->value_len, &pos, &t, &len)) ok = route_upgrades_to(c->route, t, len);
    if (!ok) {
        up_failed(u, FAIL_INVALID);
        return;
    }
    eg_ltimer_stop(&u->timer);
    eg_health_success(u->health);
    c->up_status = c->status = 101;
    size_t hl;
    wreq_t *wr = build_response_head(u, c, 0, &hl);
    if (!wr) {
        conn_close(c);
        return;
    }
    free(u->xhead);
    u->xhead = wr;
    u->xhead_len = hl;
    memmove(u->buf, u->buf + head, u->len - head);
    u->len -= head;
    up_reading(u, 0);
    client_reading(c, 0);
    c->response_started = 1;
    c->switching = 1;
    tunnel_go(c);
}

/* Ciphertext from an https upstream, or its end. */
static EG_COLD void up_tls_read(up_t *u, ssize_t nread, const uv_buf_t *b)
{
    if (nread < 0) {
        if (eg_tls_done(u->tls)) {
            up_got(u, nread);
        } else {
            snprintf(u->tls_why, sizeof(u->tls_why),
                     "TLS handshake with the upstream failed: the connection closed during it");
            up_failed(u, FAIL_TLS);
        }
        return;
    }
    if (eg_tls_feed(u->tls, b->base, (size_t)nread) != 0) {
        up_failed(u, FAIL_RESET);
        return;
    }
    up_tls_pump(u);
}

static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    up_t *u = s->data;
    if (nread == 0) return;
    if (u->tls) {
        up_tls_read(u, nread, b);
        return;
    }
    up_got(u, nread);
}

/* nread bytes of the response landed at u->buf + u->len (plain or
 * decrypted), or the connection ended (nread < 0). */
static EG_INLINE void up_got(up_t *u, ssize_t nread)
{
    if (u->state == UP_IDLE || !u->c) {
        up_close(u); /* an idle pooled connection said something or closed */
        return;
    }
    conn_t *c = u->c;
    if (nread < 0) {
        if (u->state == UP_BODY && u->framing == EG_FRAMING_UNTIL_CLOSE && nread == UV_EOF) {
            u->keep_alive = 0;
            if (u->xlate) translate_and_send(u);
            else up_done(u);
        } else if (u->state == UP_HEAD) {
            up_failed(u, !u->got_bytes && u->reused ? FAIL_STALE : FAIL_RESET);
        } else {
            up_failed(u, FAIL_CUT); /* a 502 while nothing was sent (a buffered error), else cut */
        }
        return;
    }
    u->got_bytes = 1;
    u->len += (size_t)nread;
    if (u->state == UP_HEAD) {
        const eg_limits_t *l = &c->gw->cfg->limits;
        eg_http1_limits_t lim = {EG_UP_BUF, 128, l->max_uri};
        for (;;) {
            int rc = eg_http1_parse_response(u->buf, u->len, &lim, u->hdrs, 128, &u->scanned,
                                             c->method_bit == EG_M_HEAD, &u->resp);
            if (rc == EG_EAGAIN) {
                if (u->len == EG_UP_BUF) up_failed(u, FAIL_INVALID);
                return;
            }
            if (rc < 0) {
                up_failed(u, FAIL_INVALID);
                return;
            }
            if (u->resp.status == 101 && c->upgrade[0]) {
                upgrade_switch(u, c, (size_t)rc);
                return;
            }
            if (u->resp.status >= 100 && u->resp.status < 200) {
                if (forward_interim(u, c) != 0) {
                    conn_close(c);
                    return;
                }
                memmove(u->buf, u->buf + rc, u->len - (size_t)rc);
                u->len -= (size_t)rc;
                u->scanned = 0;
                if (u->len == 0) return;
                continue;
            }
            eg_ltimer_stop(&u->timer);
            eg_health_success(u->health);
            c->up_status = u->resp.status;
            u->framing = u->resp.framing;
            u->left = u->resp.content_length;
            u->keep_alive = u->resp.keep_alive;
            memset(&u->ck, 0, sizeof(u->ck));
            c->status = u->resp.status;
            u->state = UP_BODY;
            size_t rest = u->len - (size_t)rc;
            u->len = 0;
            size_t max = c->gw->cfg->max_translate_body;
            size_t first = u->framing == EG_FRAMING_LENGTH && u->left < max ? (size_t)u->left : 4096;
            if (first > max) first = max;
            int xl = should_translate(u, c);
            eg_coding_t coding = xl ? response_coding(&u->resp) : EG_CODING_IDENTITY;
            if (coding == EG_CODING_UNSUPPORTED && u->resp.status < 500) {
                /* br, zstd, stacked codings: not decoded here, so not read as text */
                const eg_http_header_t *ce = eg_http1_header(&u->resp, "content-encoding");
                char why[200];
                snprintf(why, sizeof(why),
                         "error body in Content-Encoding '%.*s' cannot be decoded: passed through "
                         "untranslated",
                         ce ? (int)(ce->value_len < 40 ? ce->value_len : 40) : 0,
                         ce ? ce->value : "");
                log_untranslated(c, u->resp.status, why);
                xl = 0;
            }
            if (xl && (u->xbuf = malloc(first ? first : 1))) {
                u->xcoding = coding;
                if (u->framing == EG_FRAMING_CHUNKED) u->dechunk = 1; /* collect the data */
                u->xhead = build_response_head(u, c, 0, &u->xhead_len);
                kept_headers(u, u->xextra, sizeof(u->xextra));
                u->xretry = -1;
                const eg_http_header_t *ra = eg_http1_header(&u->resp, "retry-after");
                if (ra && ra->value_len && ra->value_len < 10) {
                    long long v = 0;
                    size_t i = 0;
                    while (i < ra->value_len && ra->value[i] >= '0' && ra->value[i] <= '9')
                        v = v * 10 + (ra->value[i++] - '0');
                    if (i == ra->value_len) u->xretry = v;
                }
                if (!u->xhead) {
                    conn_close(c);
                    return;
                }
                u->xlate = 1;
                u->xcap = first;
                u->xlen = 0;
                collect(u, u->buf + rc, rest);
                if (u->state == UP_BODY && u->c) up_timer(u, u->ucfg->read_timeout_ms);
                return;
            }
            c->response_started = 1;
            send_response(u, c, u->buf + rc, rest);
            /* most responses end in their first read: a body timer only for the rest
             * (u stays valid here: handles are freed in their close callback) */
            if (u->state == UP_BODY && u->c && u->reading) up_timer(u, u->ucfg->read_timeout_ms);
            return;
        }
    }
    size_t n = u->len;
    u->len = 0;
    up_timer(u, u->ucfg->read_timeout_ms); /* bytes came: the wait between reads starts over */
    if (u->xlate) collect(u, u->buf, n);
    else stream_body(u, u->buf, n);
}

/* A failure on the upstream side. Before the response started it becomes a
 * retry on another server (when that is safe) or a 502/504 in the dialect. */
static void up_failed(up_t *u, failure_t why)
{
    conn_t *c = u->c;
    const eg_upstream_cfg_t *ucfg = u->ucfg;
    static const char *const whys[] = {"connect failed",          "connect timeout",  "response timeout",
                                       "connection reset",        "stale pooled connection",
                                       "invalid response",        "response cut before its end",
                                       "upstream TLS handshake failed"};
    char tls_why[200];
    snprintf(tls_why, sizeof(tls_why), "%s", u->tls_why[0] ? u->tls_why : whys[why]);
    uint64_t waited = u->waited_ms ? u->waited_ms : ucfg->timeout_ms;
    if (why == FAIL_CONNECT || why == FAIL_CONNECT_TIMEOUT || why == FAIL_TIMEOUT || why == FAIL_TLS ||
        why == FAIL_INVALID || why == FAIL_CUT || (why == FAIL_RESET && !u->reused))
        eg_health_failure(u->health, ucfg, eg_now_ms());
    u->c = NULL;
    up_close(u);
    if (!c) return;
    _Static_assert((int)FAIL_CUT == (int)EG_MX_UP_CUT && (int)FAIL_STALE == (int)EG_MX_UP_STALE,
                   "failure kinds are the metrics' kinds");
    eg_metrics_upstream_failure(c->gw->metrics, c->w->id, (size_t)(ucfg - c->gw->cfg->upstreams), u->sidx,
                                (eg_mx_upfail_t)why);
    c->up = NULL;
    if (c->response_started) {
        /* the client has part of it: all that is left is to end the
         * connection, and to say in the logs that the response is cut */
        c->cut = whys[why];
        log_error(c, "response_truncated", c->status, whys[why]);
        conn_close(c);
        return;
    }
    /* a stale pooled connection is not the server's fault: try again on a fresh one */
    int nothing_sent = !c->body_sent;
    int safe = c->idempotent || ucfg->retry_non_idempotent;
    if (why == FAIL_STALE && nothing_sent && safe && c->attempts < 8) {
        c->tried = 0;
        proxy_start(c);
        return;
    }
    int before_send = why == FAIL_CONNECT || why == FAIL_CONNECT_TIMEOUT || why == FAIL_TLS;
    if (why != FAIL_CUT && c->attempts <= ucfg->retries && nothing_sent && (before_send || safe) &&
        (unsigned)c->attempts < ucfg->nservers) {
        proxy_start(c);
        return;
    }
    const char *code = why == FAIL_CONNECT_TIMEOUT || why == FAIL_TIMEOUT ? "gateway_timeout" : "bad_gateway";
    eg_error_t *e = new_error(c, code);
    if (e) {
        eg_error_set_detail(e, "upstream_service", json_string(ucfg->name));
        if (why == FAIL_CONNECT_TIMEOUT || why == FAIL_TIMEOUT) {
            char d[32];
            eg_format_duration(why == FAIL_TIMEOUT ? waited : ucfg->connect_timeout_ms, d, sizeof(d));
            eg_error_set_detail(e, "timeout_duration", json_string(d));
            eg_error_set_detail(e, "retry_suggested", json_true()); /* the typed seed's 504 says so */
            eg_error_setf(e, EG_S_MESSAGE, "The upstream service did not %s within %s.",
                          why == FAIL_TIMEOUT ? "answer" : "accept the connection", d);
        } else {
            eg_error_set(e, EG_S_MESSAGE, why == FAIL_INVALID ? "The upstream service sent an invalid response."
                                          : why == FAIL_CUT   ? "The upstream service sent an incomplete response."
                                                              : "The upstream service is unavailable.");
        }
    }
    send_error(c, e, NULL, why == FAIL_TLS ? tls_why : whys[why]);
}

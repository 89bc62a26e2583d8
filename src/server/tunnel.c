/* tunnel.c - upgraded connections joined byte for byte (tunnel.h).
 *
 * Two ends, the client (0) and the upstream (1), each a socket of its own
 * (a duplicate descriptor proxy.c handed over) and, for a TLS side, its
 * OpenSSL state over memory BIOs as proxy.c used it. What one end reads is
 * written to the other: plain bytes as they came, a TLS side's ciphertext
 * decrypted first, and what goes to a TLS side encrypted. Nothing is parsed:
 * WebSocket frames, masks and pings are the two peers' business.
 *
 * Flow control is the proxy's: an end is not read while the other's write
 * queue is above EG_TUN_HIGH_WATER, and is read again below half of it, so
 * a tunnel holds at most about that much per direction whatever the peers
 * do. The idle timer starts over with every byte either way. A direction
 * that passes max_bytes ends the tunnel (what is under the limit is still
 * delivered). EOF (or close_notify) from one end is passed on as a shut
 * write side of the other once its queue drained; when both directions
 * ended, or on a limit, the idle timeout or a drain, the tunnel ends: reads
 * stop, both write sides are shut after what is queued (close_notify first
 * on TLS), and the handles close when both shutdowns are done or after
 * EG_TUN_LINGER_MS. A reset or a failed write closes at once.
 *
 * The read buffers are the worker's (libuv calls alloc and read back to
 * back), made with its first tunnel and freed with its last one.
 */
#include "tunnel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errgate/common.h"
#include "errgate/reqid.h"
#include "log.h"
#include "ltimer.h"
#include "metrics.h"
#include "tls.h"

#define EG_TUN_HIGH_WATER (256 * 1024)
#define EG_TUN_BUF        (64 * 1024)
#define EG_TUN_LINGER_MS  2000

typedef struct tunnel_s tunnel_t;

typedef struct {
    uv_tcp_t tcp;
    uv_shutdown_t sreq;
    eg_tls_t *tls;
    tunnel_t *t;
    int reading;
    int eof;        /* nothing more comes from it (EOF, close_notify) */
    int shut;       /* its write side is shut, or being shut */
    int wpending;   /* write requests in flight */
    uint64_t bytes; /* payload read from it */
} end_t;

struct tunnel_s {
    end_t e[2];        /* 0: the client, 1: the upstream */
    eg_ltimer_t timer; /* idle, then the linger once ending */
    eg_worker_t *w;
    uint64_t idle_ms, max_bytes, start_ns;
    int closing;  /* ending: no reads, shutdowns in flight */
    int shutting; /* shutdown requests in flight */
    int closed;   /* the handles are closing */
    int closes;   /* handles not closed yet */
    const char *why;
    void (*on_end)(void *data);
    void *data;
    char reqid[EG_REQID_MAX + 1], route[128], upstream[300], client[64];
    tunnel_t *prev, *next;
};

typedef struct {
    tunnel_t *head;
    size_t n;               /* tunnels not freed yet */
    char in[EG_TUN_BUF];    /* what a read brings (ciphertext on a TLS end) */
    char plain[EG_TUN_BUF]; /* a TLS end's plaintext */
} tunnels_t;

typedef struct {
    uv_write_t req;
    end_t *to;
    char data[];
} twr_t;

static void t_end(tunnel_t *t, const char *why);
static void t_close(tunnel_t *t, const char *why);

static end_t *other(end_t *e)
{
    return e == &e->t->e[0] ? &e->t->e[1] : &e->t->e[0];
}

static size_t queued(end_t *e)
{
    return uv_stream_get_write_queue_size((uv_stream_t *)&e->tcp);
}

/* ---------------------------------------------------------------- writes */

static void drained(end_t *to);

static void write_cb(uv_write_t *req, int status)
{
    twr_t *wr = (twr_t *)req;
    end_t *to = wr->to;
    free(wr);
    to->wpending--;
    if (to->t->closed) return; /* cancelled by the close */
    if (status < 0) {
        t_close(to->t, "write failed");
        return;
    }
    drained(to);
}

/* Writes what the socket takes at once, queues a copy of the rest. */
static int raw_send(end_t *to, const char *p, size_t n)
{
    if (n == 0) return 0;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    size_t off = 0;
    int k = to->wpending ? UV_EAGAIN : uv_try_write((uv_stream_t *)&to->tcp, &b, 1);
    if (k == (int)n) return 0;
    if (k > 0)
        off = (size_t)k;
    else if (k != UV_EAGAIN && k != UV_ENOSYS)
        return -1;
    twr_t *wr = malloc(sizeof(*wr) + n - off);
    if (!wr) return -1;
    wr->to = to;
    memcpy(wr->data, p + off, n - off);
    b = uv_buf_init(wr->data, (unsigned)(n - off));
    if (uv_write(&wr->req, (uv_stream_t *)&to->tcp, &b, 1, write_cb) != 0) {
        free(wr);
        return -1;
    }
    to->wpending++;
    return 0;
}

/* What OpenSSL has to send on a TLS end (records, alerts, key updates). */
static int flush(end_t *e)
{
    char tmp[16384];
    size_t n;
    while (e->tls && (n = eg_tls_out_pending(e->tls)) > 0) {
        size_t got = eg_tls_out_take(e->tls, tmp, n < sizeof(tmp) ? n : sizeof(tmp));
        if (got == 0 || raw_send(e, tmp, got) != 0) return -1;
    }
    return 0;
}

static int send_to(end_t *to, const char *p, size_t n)
{
    if (!to->tls) return raw_send(to, p, n);
    if (n && eg_tls_write(to->tls, p, n) != 0) return -1;
    return flush(to);
}

static void shut_cb(uv_shutdown_t *req, int status)
{
    (void)status;
    end_t *e = req->data;
    tunnel_t *t = e->t;
    t->shutting--;
    if (t->closed) return;
    if (t->closing && t->shutting == 0) t_close(t, NULL);
}

/* The end's write side ends after what is queued (close_notify first). */
static void shut(end_t *e)
{
    if (e->shut) return;
    e->shut = 1;
    if (e->tls) {
        eg_tls_shutdown(e->tls);
        if (flush(e) != 0) return;
    }
    e->sreq.data = e;
    if (uv_shutdown(&e->sreq, (uv_stream_t *)&e->tcp, shut_cb) == 0) e->t->shutting++;
}

/* ---------------------------------------------------------------- reads */

static void t_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    end_t *e = h->data;
    tunnels_t *ts = e->t->w->tunnels;
    b->base = ts->in;
    b->len = sizeof(ts->in);
}

static void t_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void reading(end_t *e, int on)
{
    if (on == e->reading || e->t->closed || (on && (e->t->closing || e->eof))) return;
    if (on)
        uv_read_start((uv_stream_t *)&e->tcp, t_alloc, t_read);
    else
        uv_read_stop((uv_stream_t *)&e->tcp);
    e->reading = on;
}

static void timer_cb(uv_timer_t *h)
{
    tunnel_t *t = h->data;
    if (t->closing)
        t_close(t, NULL); /* the linger is over */
    else
        t_end(t, "idle timeout");
}

/* Payload from end a goes to the other end, within max_bytes. */
static void forward(end_t *a, const char *p, size_t n)
{
    tunnel_t *t = a->t;
    end_t *b = other(a);
    if (t->closing || t->closed || n == 0) return;
    int over = 0;
    if (t->max_bytes && a->bytes + n > t->max_bytes) {
        n = (size_t)(t->max_bytes - a->bytes);
        over = 1;
    }
    a->bytes += n;
    eg_ltimer_set(&t->timer, timer_cb, t->idle_ms);
    if (n && send_to(b, p, n) != 0) {
        t_close(t, "write failed");
        return;
    }
    if (over) {
        t_end(t, a == &t->e[0] ? "client max_bytes" : "upstream max_bytes");
        return;
    }
    if (queued(b) > EG_TUN_HIGH_WATER) reading(a, 0); /* backpressure: b's writes resume it */
}

/* Nothing more comes from a: passed on to the other end once its queue drained. */
static void got_eof(end_t *a)
{
    tunnel_t *t = a->t;
    end_t *b = other(a);
    a->eof = 1;
    reading(a, 0);
    if (b->eof) {
        t_end(t, "closed");
        return;
    }
    if (b->wpending == 0) shut(b);
}

/* An end's writes went out: the other end is read again, or its EOF passed on. */
static void drained(end_t *to)
{
    tunnel_t *t = to->t;
    end_t *from = other(to);
    if (t->closing) return;
    if (!from->eof && !from->reading && queued(to) < EG_TUN_HIGH_WATER / 2) reading(from, 1);
    if (from->eof && to->wpending == 0) shut(to);
}

/* Plaintext OpenSSL has for a TLS end, forwarded. */
static void pump(end_t *a)
{
    tunnel_t *t = a->t;
    tunnels_t *ts = t->w->tunnels;
    while (!t->closing && !t->closed && !a->eof) {
        ssize_t n = eg_tls_read(a->tls, ts->plain, sizeof(ts->plain));
        if (flush(a) != 0) {
            t_close(t, "write failed");
            return;
        }
        if (n == 0) return;
        if (n < 0) { /* close_notify, or a record that does not decrypt: this direction ends */
            got_eof(a);
            return;
        }
        forward(a, ts->plain, (size_t)n);
    }
}

static void t_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    end_t *a = s->data;
    tunnel_t *t = a->t;
    if (nread == 0 || t->closed) return;
    if (nread < 0) {
        if (nread == UV_EOF)
            got_eof(a);
        else
            t_close(t, "connection reset");
        return;
    }
    if (!a->tls) {
        forward(a, b->base, (size_t)nread);
        return;
    }
    if (eg_tls_feed(a->tls, b->base, (size_t)nread) != 0) {
        t_close(t, "out of memory");
        return;
    }
    pump(a);
}

/* ---------------------------------------------------------------- ending */

static void release(tunnel_t *t)
{
    if (--t->closes > 0) return;
    /* from a close callback, never within eg_tunnel_start: its caller's
     * connection is closed by then */
    if (t->on_end) t->on_end(t->data);
    eg_worker_t *w = t->w;
    tunnels_t *ts = w->tunnels;
    eg_tls_free(t->e[0].tls);
    eg_tls_free(t->e[1].tls);
    free(t);
    if (--ts->n == 0) {
        free(ts);
        w->tunnels = NULL;
    }
}

static void end_closed(uv_handle_t *h)
{
    end_t *e = h->data;
    release(e->t);
}

static void timer_closed(uv_handle_t *h)
{
    release(h->data);
}

static void log_tunnel(tunnel_t *t)
{
    eg_log_t *log = eg_server_access_log(t->w->srv);
    if (!eg_log_enabled(log)) return;
    eg_logline_t l;
    eg_logline_begin(&l, "tunnel");
    eg_logline_str(&l, "request_id", t->reqid, strlen(t->reqid));
    eg_logline_str(&l, "route", t->route, strlen(t->route));
    eg_logline_str(&l, "upstream", t->upstream, strlen(t->upstream));
    eg_logline_str(&l, "client", t->client, strlen(t->client));
    eg_logline_int(&l, "duration_ms", (long long)((uv_hrtime() - t->start_ns) / 1000000u));
    eg_logline_int(&l, "bytes_from_client", (long long)t->e[0].bytes);
    eg_logline_int(&l, "bytes_from_upstream", (long long)t->e[1].bytes);
    const char *why = t->why ? t->why : "closed";
    eg_logline_str(&l, "end", why, strlen(why));
    eg_logline_end(log, &l);
}

/* Closes the handles now (what is queued is dropped). */
static void t_close(tunnel_t *t, const char *why)
{
    if (t->closed) return;
    if (!t->why) t->why = why;
    t->closed = 1;
    log_tunnel(t);
    eg_gw_t *gw = eg_server_current(t->w->srv);
    if (gw) {
        eg_metrics_tunnel(gw->metrics, t->w->id, 0, t->e[0].bytes, t->e[1].bytes);
        eg_gw_unref(gw);
    }

    tunnels_t *ts = t->w->tunnels;
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->head = t->next;
    if (t->next) t->next->prev = t->prev;
    t->w->nconns--;
    t->closes = 3;
    uv_close((uv_handle_t *)&t->e[0].tcp, end_closed);
    uv_close((uv_handle_t *)&t->e[1].tcp, end_closed);
    uv_close((uv_handle_t *)&t->timer.h, timer_closed);
}

/* Ends the tunnel cleanly: no more reads, both write sides shut after what
 * is queued, the handles closed when that is done or the linger is over. */
static void t_end(tunnel_t *t, const char *why)
{
    if (t->closing || t->closed) return;
    if (!t->why) t->why = why;
    reading(&t->e[0], 0);
    reading(&t->e[1], 0);
    t->closing = 1;
    shut(&t->e[0]);
    shut(&t->e[1]);
    if (t->shutting == 0) {
        t_close(t, NULL);
        return;
    }
    eg_ltimer_set(&t->timer, timer_cb, EG_TUN_LINGER_MS);
}

/* ---------------------------------------------------------------- start */

int eg_tunnel_start(eg_worker_t *w, const eg_tunnel_side_t *client, const eg_tunnel_side_t *up,
                    const eg_tunnel_opts_t *o)
{
    tunnels_t *ts = w->tunnels;
    tunnel_t *t = NULL;
    if (!ts && (ts = malloc(sizeof(*ts)))) {
        ts->head = NULL;
        ts->n = 0;
        w->tunnels = ts;
    }
    if (!ts || !(t = calloc(1, sizeof(*t)))) {
        if (ts && ts->n == 0) {
            free(ts);
            w->tunnels = NULL;
        }
        close(client->fd);
        close(up->fd);
        eg_tls_free(client->tls);
        eg_tls_free(up->tls);
        return EG_ENOMEM;
    }
    ts->n++;
    t->w = w;
    t->idle_ms = o->idle_ms;
    t->max_bytes = o->max_bytes;
    t->start_ns = uv_hrtime();
    t->on_end = o->on_end;
    t->data = o->data;
    snprintf(t->reqid, sizeof(t->reqid), "%s", o->request_id ? o->request_id : "");
    snprintf(t->route, sizeof(t->route), "%s", o->route ? o->route : "");
    snprintf(t->upstream, sizeof(t->upstream), "%s", o->upstream ? o->upstream : "");
    snprintf(t->client, sizeof(t->client), "%s", o->client ? o->client : "");
    t->next = ts->head;
    if (t->next) t->next->prev = t;
    ts->head = t;
    w->nconns++;
    eg_metrics_tunnel(o->metrics, w->id, 1, 0, 0);
    const eg_tunnel_side_t *sides[2] = {client, up};
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        end_t *e = &t->e[i];
        e->t = t;
        e->tls = sides[i]->tls;
        if (e->tls) eg_tls_drop_session_cb(e->tls); /* the pool entry it reported to is not ours */
        uv_tcp_init(&w->loop, &e->tcp);
        e->tcp.data = e;
        if (uv_tcp_open(&e->tcp, sides[i]->fd) != 0) {
            close(sides[i]->fd);
            ok = 0;
        }
    }
    eg_ltimer_init(&w->loop, &t->timer);
    t->timer.h.data = t;
    if (!ok) {
        t_close(t, "cannot take the sockets");
        return 0;
    }
    eg_ltimer_set(&t->timer, timer_cb, t->idle_ms);
    /* the 101 first, then what either side sent after its head, then what
     * OpenSSL already decrypted */
    if (send_to(&t->e[0], o->head, o->nhead) != 0) {
        t_close(t, "write failed");
        return 0;
    }
    forward(&t->e[1], up->early, up->nearly);
    forward(&t->e[0], client->early, client->nearly);
    for (int i = 0; i < 2; i++)
        if (t->e[i].tls) pump(&t->e[i]);
    for (int i = 0; i < 2; i++)
        if (queued(other(&t->e[i])) <= EG_TUN_HIGH_WATER) reading(&t->e[i], 1);
    if (w->draining) t_end(t, "draining"); /* its 101 came after the drain began */
    return 0;
}

void eg_tunnel_drain(eg_worker_t *w)
{
    tunnels_t *ts = w->tunnels;
    for (tunnel_t *t = ts ? ts->head : NULL, *next; t; t = next) {
        next = t->next;
        t_end(t, "draining");
    }
}

/* h2.c - HTTP/2 sessions over nghttp2, each stream bridged to an HTTP/1.1
 * request the host serves (h2.h, docs/http2.md).
 *
 * Why a bridge: every stage, every gateway error and the upstream pool
 * speak the HTTP/1.1 request path; a stream rendered as the request an
 * HTTP/1.1 client would have sent goes through exactly that path, so the
 * statuses, bodies and headers are the same by construction, and there is
 * one parser (lib/http1.c) deciding what a request is.
 *
 * nghttp2 checks what RFC 9113 8.2 and 8.3 ask (pseudo-headers,
 * connection-specific fields, uppercase names, Content-Length against the
 * DATA) and resets a malformed stream with PROTOCOL_ERROR; it enforces the
 * stream limit (REFUSED_STREAM), CONTINUATION, SETTINGS and ack floods.
 * This file adds the header list size (431 through the HTTP/1.1 parser,
 * in the dialect) and the rapid-reset bound (GOAWAY ENHANCE_YOUR_CALM).
 *
 * Nothing here is re-entered: nghttp2 runs only from eg_h2_feed and
 * eg_h2_flush, which the host never calls from a stream's callbacks, so a
 * stream is freed only where nghttp2 closes it (on_close) or in eg_h2_free.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "errgate/common.h"
#include "errgate/http1.h"
#include "h2.h"

/* The host's write queue above which output waits. */
#define H2_HIGH_WATER (256 * 1024)
/* A stream's response bytes count this many times in eg_h2_stream_queued:
 * the host stops its upstream at its high water (256 KiB), that is at
 * 64 KiB waiting per stream, so 128 streams hold 8 MiB at most. */
#define H2_QUEUE_SCALE  4
#define H2_OBUF         (64 * 1024)
#define H2_RESP_HEADERS 128

struct eg_h2_stream_s {
    eg_h2_t *h;
    int32_t id;
    void *sc; /* the stream's connection in the host, NULL: none (yet, or any more) */
    struct eg_h2_stream_s *prev, *next;
    /* the request head as it arrives */
    char *method, *path, *authority, *scheme;
    char *hb; /* regular fields, "name: value\r\n" each */
    size_t hlen, hcap;
    char *cookie; /* cookie fields joined with "; " (RFC 9113 8.2.3) */
    size_t clen, ccap;
    size_t list_size;
    int oversize; /* the header list passed max_header_list: a 431 */
    int has_cl;   /* a content-length field came */
    int has_host;
    int chunked;  /* the body goes to the host chunked (no content-length) */
    int req_end;  /* END_STREAM from the client */
    int fin_sent; /* the chunked body's last chunk went to the host */
    int is_head;
    /* bytes for the host: the head (head[hoff..hlen2)), then body data */
    char *head;
    size_t head_len, head_off;
    size_t filler_left; /* oversize: bytes of a never-ending field for the host's parser */
    char *in;
    size_t inlen, inoff, incap;
    size_t unconsumed; /* DATA bytes received and not yet given back as window */
    /* the response */
    char *rh;
    size_t rhlen, rhcap, scanned;
    int head_done;
    int submitted;
    eg_framing_t framing;
    uint64_t left;
    eg_chunked_t ck;
    char *out;
    size_t outlen, outoff, outcap;
    int out_eof;  /* the response body is whole */
    int cut;      /* the response ended early: RST_STREAM after what was sent */
    int deferred; /* nghttp2 waits for data (resume_data when some comes) */
    int above;    /* over the high water: the host was told to stop */
    int drained;  /* tell the host it went below */
};

struct eg_h2_s {
    nghttp2_session *session;
    eg_h2_limits_t lim;
    eg_h2_host_t host;
    void *data;
    eg_h2_stream_t *streams;
    size_t nstreams;
    uint32_t resets;
    uint64_t reset_start;
    char why[96];
    eg_http_header_t hdrs[H2_RESP_HEADERS];
    char scratch[H2_OBUF + 32];
    char obuf[H2_OBUF];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int eg_h2_preface(const char *p, size_t n)
{
    size_t k = n < EG_H2_PREFACE_LEN ? n : EG_H2_PREFACE_LEN;
    if (memcmp(p, EG_H2_PREFACE, k) != 0) return -1;
    return n >= EG_H2_PREFACE_LEN ? 1 : 0;
}

/* Appends n bytes to a growable buffer; -1 when out of memory. */
static int grow_append(char **b, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 1024;
        while (nc < *len + n)
            nc *= 2;
        char *nb = realloc(*b, nc);
        if (!nb) return -1;
        *b = nb;
        *cap = nc;
    }
    if (n) memcpy(*b + *len, p, n);
    *len += n;
    return 0;
}

static void stream_free(eg_h2_stream_t *s)
{
    free(s->method);
    free(s->path);
    free(s->authority);
    free(s->scheme);
    free(s->hb);
    free(s->cookie);
    free(s->head);
    free(s->in);
    free(s->rh);
    free(s->out);
    free(s);
}

static void stream_unlink(eg_h2_t *h, eg_h2_stream_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    h->nstreams--;
}

/* Gives n DATA bytes of the stream back to the client as window. */
static void give_back(eg_h2_stream_t *s, size_t n)
{
    if (n > s->unconsumed) n = s->unconsumed;
    if (!n) return;
    s->unconsumed -= n;
    if (nghttp2_session_consume(s->h->session, s->id, n) != 0)
        nghttp2_session_consume_connection(s->h->session, n);
}

/* ---------------------------------------------------------------- request side */

/* Feeds the host what it has room for: the head, then the body (re-framed
 * chunked when the client sent no content-length), then the last chunk. */
static void pump(eg_h2_stream_t *s)
{
    eg_h2_t *h = s->h;
    while (s->sc) {
        size_t room = h->host.stream_room(s->sc);
        if (room == 0) break;
        if (s->head_off < s->head_len) {
            size_t n = s->head_len - s->head_off;
            if (n > room) n = room;
            s->head_off += n;
            h->host.stream_feed(s->sc, s->head + s->head_off - n, n);
            continue;
        }
        if (s->oversize) { /* a field that never ends: the host's parser answers 431 */
            size_t n = room < 1024 ? room : 1024;
            if (n > s->filler_left) n = s->filler_left;
            if (n == 0) break;
            s->filler_left -= n;
            memset(h->scratch, 'a', n);
            h->host.stream_feed(s->sc, h->scratch, n);
            continue;
        }
        size_t avail = s->inlen - s->inoff;
        if (avail) {
            if (s->chunked) {
                if (room < 32) break;
                size_t n = avail < room - 24 ? avail : room - 24;
                if (n > H2_OBUF) n = H2_OBUF;
                int k = snprintf(h->scratch, 24, "%zx\r\n", n);
                memcpy(h->scratch + k, s->in + s->inoff, n);
                memcpy(h->scratch + k + n, "\r\n", 2);
                s->inoff += n;
                give_back(s, n);
                h->host.stream_feed(s->sc, h->scratch, (size_t)k + n + 2);
            } else {
                size_t n = avail < room ? avail : room;
                s->inoff += n;
                give_back(s, n);
                h->host.stream_feed(s->sc, s->in + s->inoff - n, n);
            }
            if (s->inoff == s->inlen) s->inoff = s->inlen = 0;
            continue;
        }
        if (s->req_end && s->chunked && !s->fin_sent) {
            if (room < 5) break;
            s->fin_sent = 1;
            h->host.stream_feed(s->sc, "0\r\n\r\n", 5);
            continue;
        }
        break;
    }
}

/* The request as an HTTP/1.1 head. */
static int build_head(eg_h2_stream_t *s, int end_stream)
{
    char *b = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    const char *m = s->method ? s->method : "GET";
    const char *p =
        s->path ? s->path : (s->authority && strcmp(m, "CONNECT") == 0 ? s->authority : "/");
    if (s->oversize) {
        m = "GET";
        p = "/";
    }
    rc |= grow_append(&b, &len, &cap, m, strlen(m));
    rc |= grow_append(&b, &len, &cap, " ", 1);
    rc |= grow_append(&b, &len, &cap, p, strlen(p));
    rc |= grow_append(&b, &len, &cap, " HTTP/1.1\r\n", 11);
    if (s->oversize) {
        rc |= grow_append(&b, &len, &cap, "X-Header-List: ", 15);
        /* until the host's parser refuses it (its limit, or its full buffer) */
        s->filler_left = (size_t)-1;
    } else {
        if (s->authority) {
            rc |= grow_append(&b, &len, &cap, "Host: ", 6);
            rc |= grow_append(&b, &len, &cap, s->authority, strlen(s->authority));
            rc |= grow_append(&b, &len, &cap, "\r\n", 2);
        }
        rc |= grow_append(&b, &len, &cap, s->hb, s->hlen);
        if (s->clen) {
            rc |= grow_append(&b, &len, &cap, "Cookie: ", 8);
            rc |= grow_append(&b, &len, &cap, s->cookie, s->clen);
            rc |= grow_append(&b, &len, &cap, "\r\n", 2);
        }
        if (!end_stream && !s->has_cl) {
            s->chunked = 1;
            rc |= grow_append(&b, &len, &cap, "Transfer-Encoding: chunked\r\n", 28);
        }
        rc |= grow_append(&b, &len, &cap, "\r\n", 2);
    }
    if (rc) {
        free(b);
        return -1;
    }
    s->head = b;
    s->head_len = len;
    s->is_head = strcmp(m, "HEAD") == 0;
    free(s->hb);
    s->hb = NULL;
    s->hlen = s->hcap = 0;
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    eg_h2_t *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    eg_h2_stream_t *s = calloc(1, sizeof(*s));
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->h = h;
    s->id = frame->hd.stream_id;
    if (nghttp2_session_set_stream_user_data(session, s->id, s) != 0) {
        free(s);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    s->next = h->streams;
    if (s->next) s->next->prev = s;
    h->streams = s;
    h->nstreams++;
    return 0;
}

static char *dupn(const uint8_t *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
    }
    return d;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: dropped */
    eg_h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s) return 0;
    s->list_size += nlen + vlen + 32;
    if (s->list_size > s->h->lim.max_header_list) s->oversize = 1;
    if (s->oversize) return 0;
    char **pseudo = NULL;
    if (nlen && name[0] == ':') {
        if (nlen == 7 && memcmp(name, ":method", 7) == 0)
            pseudo = &s->method;
        else if (nlen == 5 && memcmp(name, ":path", 5) == 0)
            pseudo = &s->path;
        else if (nlen == 10 && memcmp(name, ":authority", 10) == 0)
            pseudo = &s->authority;
        else if (nlen == 7 && memcmp(name, ":scheme", 7) == 0)
            pseudo = &s->scheme;
        if (!pseudo) return 0; /* nghttp2 refused unknown ones already */
        free(*pseudo);
        *pseudo = dupn(value, vlen);
        return *pseudo ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    int rc = 0;
    if (nlen == 6 && memcmp(name, "cookie", 6) == 0) {
        if (s->clen) rc |= grow_append(&s->cookie, &s->clen, &s->ccap, "; ", 2);
        rc |= grow_append(&s->cookie, &s->clen, &s->ccap, value, vlen);
        return rc ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
    }
    if (nlen == 4 && memcmp(name, "host", 4) == 0) {
        s->has_host = 1;
        if (s->authority) return 0; /* :authority wins (RFC 9113 8.3.1) */
    }
    if (nlen == 14 && memcmp(name, "content-length", 14) == 0) s->has_cl = 1;
    rc |= grow_append(&s->hb, &s->hlen, &s->hcap, name, nlen);
    rc |= grow_append(&s->hb, &s->hlen, &s->hcap, ": ", 2);
    rc |= grow_append(&s->hb, &s->hlen, &s->hcap, value, vlen);
    rc |= grow_append(&s->hb, &s->hlen, &s->hcap, "\r\n", 2);
    return rc ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* Drops the host lines of hb when :authority came after them. */
static void drop_host_lines(eg_h2_stream_t *s)
{
    size_t r = 0, wpos = 0;
    while (r < s->hlen) {
        char *eol = memchr(s->hb + r, '\n', s->hlen - r);
        size_t ln = eol ? (size_t)(eol - (s->hb + r)) + 1 : s->hlen - r;
        if (!(ln >= 6 && memcmp(s->hb + r, "host: ", 6) == 0)) {
            memmove(s->hb + wpos, s->hb + r, ln);
            wpos += ln;
        }
        r += ln;
    }
    s->hlen = wpos;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    eg_h2_t *h = user;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        /* CVE-2023-44487: each reset stream cost a request; a client
         * resetting faster than the bound goes (GOAWAY ENHANCE_YOUR_CALM) */
        uint64_t now = mono_ms();
        if (now - h->reset_start > h->lim.reset_window_ms) {
            h->reset_start = now;
            h->resets = 0;
        }
        if (++h->resets > h->lim.max_resets) {
            snprintf(h->why, sizeof(h->why), "rapid reset: more than %u RST_STREAM in %llu ms",
                     h->lim.max_resets, (unsigned long long)h->lim.reset_window_ms);
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM);
        }
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    eg_h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s) return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (s->has_host && s->authority) drop_host_lines(s);
        if (build_head(s, end) != 0) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (end) s->req_end = 1;
        s->sc = h->host.stream_open(h->data, s);
        if (!s->sc) {
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
        pump(s);
        return 0;
    }
    if (end) {
        s->req_end = 1;
        pump(s);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    (void)user;
    eg_h2_stream_t *s = nghttp2_session_get_stream_user_data(session, id);
    if (!s || !s->sc || s->oversize) { /* nobody reads it: the window goes back at once */
        if (nghttp2_session_consume(session, id, len) != 0)
            nghttp2_session_consume_connection(session, len);
        return 0;
    }
    if (s->inoff && s->inoff == s->inlen) s->inoff = s->inlen = 0;
    if (grow_append(&s->in, &s->inlen, &s->incap, data, len) != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    s->unconsumed += len;
    pump(s);
    return 0;
}

static int on_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    (void)error_code;
    eg_h2_t *h = user;
    eg_h2_stream_t *s = nghttp2_session_get_stream_user_data(session, id);
    if (!s) return 0;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    if (s->unconsumed) nghttp2_session_consume_connection(session, s->unconsumed);
    stream_unlink(h, s);
    void *sc = s->sc;
    s->sc = NULL;
    if (sc) h->host.stream_abort(sc);
    stream_free(s);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)user;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    eg_h2_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    /* the answer is whole and the client is still sending: it may stop
     * (RFC 9113 8.1, a 413 before the whole body) */
    if (s && !s->req_end)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    return 0;
}

/* ---------------------------------------------------------------- response side */

static ssize_t data_read(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)session;
    (void)id;
    (void)user;
    eg_h2_stream_t *s = src->ptr;
    size_t avail = s->outlen - s->outoff;
    size_t n = avail < length ? avail : length;
    if (n) memcpy(buf, s->out + s->outoff, n);
    s->outoff += n;
    if (s->outoff == s->outlen) s->outoff = s->outlen = 0;
    if (s->above && (s->outlen - s->outoff) * H2_QUEUE_SCALE < H2_HIGH_WATER / 2) {
        s->above = 0;
        s->drained = 1;
    }
    if (s->outlen - s->outoff == 0) {
        if (s->out_eof)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        else if (s->cut)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM INTERNAL_ERROR */
        else if (n == 0) {
            s->deferred = 1;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void wake(eg_h2_stream_t *s)
{
    if (s->deferred) {
        s->deferred = 0;
        nghttp2_session_resume_data(s->h->session, s->id);
    }
}

static int out_append(eg_h2_stream_t *s, const char *p, size_t n)
{
    if (s->outoff && s->outoff == s->outlen) s->outoff = s->outlen = 0;
    if (grow_append(&s->out, &s->outlen, &s->outcap, p, n) != 0) return -1;
    if ((s->outlen - s->outoff) * H2_QUEUE_SCALE > H2_HIGH_WATER) s->above = 1;
    return 0;
}

/* Response body bytes as the host framed them: the data goes out. */
static int body_in(eg_h2_stream_t *s, const char *p, size_t n)
{
    switch (s->framing) {
    case EG_FRAMING_LENGTH: {
        size_t k = n < s->left ? n : (size_t)s->left;
        if (out_append(s, p, k) != 0) return -1;
        s->left -= k;
        if (s->left == 0) s->out_eof = 1;
        break;
    }
    case EG_FRAMING_CHUNKED:
        while (n > 0 && !s->out_eof) {
            size_t used = 0, dlen = 0;
            const char *d = NULL;
            int rc = eg_chunked_data(&s->ck, p, n, 4096, &used, &d, &dlen);
            if (rc == EG_EPARSE) return -1;
            if (dlen && out_append(s, d, dlen) != 0) return -1;
            if (rc == EG_OK) s->out_eof = 1;
            p += used;
            n -= used;
        }
        break;
    case EG_FRAMING_UNTIL_CLOSE:
        if (out_append(s, p, n) != 0) return -1;
        break;
    default:
        break;
    }
    wake(s);
    return 0;
}

static int hop_by_hop(const eg_http_header_t *f, const eg_http_header_t *conn)
{
    if (eg_http1_name_is(f, "connection") || eg_http1_name_is(f, "keep-alive") ||
        eg_http1_name_is(f, "proxy-connection") || eg_http1_name_is(f, "transfer-encoding") ||
        eg_http1_name_is(f, "upgrade") || eg_http1_name_is(f, "te"))
        return 1;
    if (!conn) return 0;
    size_t pos = 0, tl;
    const char *tok;
    while (eg_http1_next_token(conn->value, conn->value_len, &pos, &tok, &tl))
        if (tl == f->name_len && strncasecmp(tok, f->name, tl) == 0) return 1;
    return 0;
}

/* The host's response head is whole: HEADERS (with END_STREAM when no body). */
static int submit_head(eg_h2_stream_t *s, const eg_http1_msg_t *m)
{
    nghttp2_nv nva[H2_RESP_HEADERS + 1];
    unsigned st = (unsigned)m->status % 1000; /* the parser took 3 digits */
    char status[3] = {(char)('0' + st / 100), (char)('0' + st / 10 % 10), (char)('0' + st % 10)};
    size_t nv = 0;
    nva[nv++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE};
    for (size_t i = 0; i < m->nheaders && nv <= H2_RESP_HEADERS; i++) {
        eg_http_header_t *f = &m->headers[i];
        if (hop_by_hop(f, m->connection)) continue;
        for (size_t k = 0; k < f->name_len; k++) {
            char ch = f->name[k];
            if (ch >= 'A' && ch <= 'Z') ((char *)f->name)[k] = (char)(ch + 32);
        }
        nva[nv++] = (nghttp2_nv){(uint8_t *)f->name, (uint8_t *)f->value, f->name_len, f->value_len,
                                 NGHTTP2_NV_FLAG_NONE};
    }
    if (m->status <
        200) /* an interim response (103 Early Hints, 100): HEADERS that do not end it */
        return m->status == 101 ? 0
                                : nghttp2_submit_headers(s->h->session, NGHTTP2_FLAG_NONE, s->id,
                                                         NULL, nva, nv, NULL) < 0;
    s->framing = m->framing;
    s->left = m->content_length;
    int body = m->framing != EG_FRAMING_NONE &&
               !(m->framing == EG_FRAMING_LENGTH && m->content_length == 0);
    nghttp2_data_provider prd = {.source.ptr = s, .read_callback = data_read};
    if (!body) s->out_eof = 1;
    if (nghttp2_submit_response(s->h->session, s->id, nva, nv, body ? &prd : NULL) != 0) return -1;
    s->submitted = 1;
    return 0;
}

int eg_h2_stream_write(eg_h2_stream_t *s, const char *p, size_t n)
{
    if (s->cut) return -1;
    if (s->head_done)
        return s->out_eof ? 0 : (body_in(s, p, n) == 0 ? 0 : (s->cut = 1, wake(s), -1));
    if (s->rhlen + n > s->h->lim.max_response_head + H2_OBUF) goto bad;
    if (grow_append(&s->rh, &s->rhlen, &s->rhcap, p, n) != 0) goto bad;
    for (;;) {
        eg_http1_limits_t lim = {s->h->lim.max_response_head, H2_RESP_HEADERS, 0};
        eg_http1_msg_t m;
        int rc = eg_http1_parse_response(s->rh, s->rhlen, &lim, s->h->hdrs, H2_RESP_HEADERS,
                                         &s->scanned, s->is_head, &m);
        if (rc == EG_EAGAIN) return 0;
        if (rc < 0) goto bad;
        size_t rest = s->rhlen - (size_t)rc;
        if (m.status < 200) { /* forwarded as the HTTP/1.1 client would get it (RFC 9110 15.2) */
            if (submit_head(s, &m) != 0) goto bad;
            memmove(s->rh, s->rh + rc, rest);
            s->rhlen = rest;
            s->scanned = 0;
            continue;
        }
        if (submit_head(s, &m) != 0) goto bad;
        s->head_done = 1;
        int brc = rest ? body_in(s, s->rh + rc, rest) : 0;
        free(s->rh);
        s->rh = NULL;
        s->rhlen = s->rhcap = 0;
        if (brc != 0) {
            s->cut = 1;
            wake(s);
            return -1;
        }
        return 0;
    }
bad:
    s->cut = 1;
    if (!s->submitted)
        nghttp2_submit_rst_stream(s->h->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_INTERNAL_ERROR);
    return -1;
}

size_t eg_h2_stream_queued(const eg_h2_stream_t *s)
{
    return (s->outlen - s->outoff) * H2_QUEUE_SCALE;
}

void eg_h2_stream_pull(eg_h2_stream_t *s)
{
    pump(s);
}

void eg_h2_stream_detach(eg_h2_stream_t *s)
{
    s->sc = NULL;
    if (!s->submitted) { /* the host closed without an answer */
        if (!s->cut)
            nghttp2_submit_rst_stream(s->h->session, NGHTTP2_FLAG_NONE, s->id,
                                      NGHTTP2_INTERNAL_ERROR);
        s->cut = 1;
        return;
    }
    if (!s->out_eof) {
        if (s->framing == EG_FRAMING_UNTIL_CLOSE)
            s->out_eof = 1;
        else
            s->cut = 1;
    }
    wake(s);
    /* request bytes nobody will read: their window goes back */
    s->inoff = s->inlen = 0;
    give_back(s, s->unconsumed);
}

/* ---------------------------------------------------------------- session */

eg_h2_t *eg_h2_new(const eg_h2_limits_t *lim, const eg_h2_host_t *host, void *data)
{
    eg_h2_t *h = calloc(1, sizeof(*h));
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    if (!h || nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) goto fail;
    h->lim = *lim;
    h->host = *host;
    h->data = data;
    h->reset_start = mono_ms();
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, lim->max_continuations);
    nghttp2_option_set_max_settings(opt, lim->max_settings);
    nghttp2_option_set_max_outbound_ack(opt, lim->max_outbound_ack);
    /* our own bound (on_frame_recv) is the one that speaks; nghttp2's
     * token bucket stays as a backstop above it */
    nghttp2_option_set_stream_reset_rate_limit(opt, (uint64_t)lim->max_resets * 2 + 1000, 1000);
    if (nghttp2_session_server_new2(&h->session, cb, h, opt) != 0) goto fail;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lim->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, lim->stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, lim->max_header_list},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        goto fail;
    if (lim->conn_window > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE &&
        nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                              (int32_t)lim->conn_window) != 0)
        goto fail;
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    return h;
fail:
    if (cb) nghttp2_session_callbacks_del(cb);
    if (opt) nghttp2_option_del(opt);
    if (h && h->session) nghttp2_session_del(h->session);
    free(h);
    return NULL;
}

void eg_h2_free(eg_h2_t *h)
{
    if (!h) return;
    while (h->streams) {
        eg_h2_stream_t *s = h->streams;
        stream_unlink(h, s);
        void *sc = s->sc;
        s->sc = NULL;
        if (sc) h->host.stream_abort(sc);
        stream_free(s);
    }
    nghttp2_session_del(h->session);
    free(h);
}

void eg_h2_discard(eg_h2_t *h)
{
    if (!h) return;
    for (eg_h2_stream_t *s = h->streams; s; s = s->next)
        s->sc = NULL;
    eg_h2_free(h);
}

int eg_h2_feed(eg_h2_t *h, const char *p, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, n);
    if (rv < 0) {
        if (!h->why[0])
            snprintf(h->why, sizeof(h->why), "%s",
                     rv == NGHTTP2_ERR_FLOODED ? "flood (acks or settings unread)"
                                               : nghttp2_strerror((int)rv));
        return -1;
    }
    return 0;
}

int eg_h2_flush(eg_h2_t *h)
{
    size_t olen = 0;
    int rc = 0;
    while (h->host.queued(h->data) + olen < H2_HIGH_WATER) {
        const uint8_t *d;
        ssize_t k = nghttp2_session_mem_send(h->session, &d);
        if (k < 0) {
            rc = -1;
            break;
        }
        if (k == 0) break;
        if (olen + (size_t)k > H2_OBUF) {
            if (h->host.send(h->data, h->obuf, olen) != 0) return -1;
            olen = 0;
        }
        if ((size_t)k >= H2_OBUF) {
            if (h->host.send(h->data, (const char *)d, (size_t)k) != 0) return -1;
        } else {
            memcpy(h->obuf + olen, d, (size_t)k);
            olen += (size_t)k;
        }
    }
    if (olen && h->host.send(h->data, h->obuf, olen) != 0) return -1;
    for (eg_h2_stream_t *s = h->streams; s; s = s->next) {
        if (s->drained && s->sc) {
            s->drained = 0;
            h->host.stream_drained(s->sc);
        }
    }
    if (rc < 0) return -1;
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session)) return 1;
    return 0;
}

void eg_h2_goaway(eg_h2_t *h)
{
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

size_t eg_h2_streams(const eg_h2_t *h)
{
    return h->nstreams;
}

size_t eg_h2_serving(const eg_h2_t *h)
{
    size_t n = 0;
    for (const eg_h2_stream_t *s = h->streams; s; s = s->next)
        n += s->sc != NULL;
    return n;
}

const char *eg_h2_why(const eg_h2_t *h)
{
    return h->why;
}

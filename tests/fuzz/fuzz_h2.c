/* fuzz_h2.c - any bytes as what a client sends to the server side of an
 * HTTP/2 session (src/server/h2.c): frames, HPACK, flow control, resets,
 * in pieces whose sizes the input chooses, with a host that takes every
 * stream and answers each with an HTTP/1.1 response made of input bytes
 * too (the response parser and the DATA source). Nothing may crash or leak,
 * whatever the order: streams opened, reset, answered, detached, the
 * session freed with streams open.
 *
 * Input: byte 0: bit 0 prepends the client preface (most inputs then get
 * past it), bits 1..7 the piece size (1..128); byte 1: where the response
 * bytes start (as a share of the rest); then the client's bytes, then the
 * response bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "h2.h"

#define SLOTS 512

static eg_h2_stream_t *g_slots[SLOTS];
static size_t g_nslots;
static const uint8_t *g_resp;
static size_t g_resp_len;
static size_t g_out;

static int f_send(void *host, const char *p, size_t n)
{
    (void)host;
    (void)p;
    g_out += n;
    return 0;
}

static size_t f_queued(void *host)
{
    (void)host;
    return 0;
}

static void *f_open(void *host, eg_h2_stream_t *s)
{
    (void)host;
    if (g_nslots == SLOTS) return NULL; /* refused */
    g_slots[g_nslots] = s;
    void *sc = &g_slots[g_nslots++];
    /* the answer, in two pieces (a head cut anywhere) */
    size_t half = g_resp_len / 2;
    if (eg_h2_stream_write(s, (const char *)g_resp, half) == 0)
        eg_h2_stream_write(s, (const char *)g_resp + half, g_resp_len - half);
    return sc;
}

static size_t f_room(void *sc)
{
    return *(eg_h2_stream_t **)sc ? 4096 : 0;
}

static void f_feed(void *sc, const char *p, size_t n)
{
    (void)sc;
    (void)p;
    (void)n;
}

static void f_abort(void *sc)
{
    *(eg_h2_stream_t **)sc = NULL;
}

static void f_drained(void *sc)
{
    (void)sc;
}

static const eg_h2_host_t g_host = {f_send, f_queued, f_open, f_room, f_feed, f_abort, f_drained};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int preface = data[0] & 1;
    size_t piece = (size_t)(data[0] >> 1) + 1;
    size_t rest = size - 2;
    size_t split = rest * data[1] / 256;
    const uint8_t *in = data + 2;
    g_resp = in + split;
    g_resp_len = rest - split;
    g_nslots = 0;
    eg_h2_limits_t lim = {
        .max_concurrent_streams = 16,
        .max_header_list = 4096,
        .stream_window = 65535,
        .conn_window = 1 << 20,
        .max_resets = 8,
        .reset_window_ms = 1000,
        .max_continuations = 4,
        .max_settings = 16,
        .max_outbound_ack = 64,
        .max_response_head = 8192,
    };
    eg_h2_t *h = eg_h2_new(&lim, &g_host, NULL);
    if (!h) return 0;
    int dead = 0;
    if (preface) dead = eg_h2_feed(h, EG_H2_PREFACE, EG_H2_PREFACE_LEN) != 0;
    for (size_t off = 0; off < split && !dead; off += piece) {
        size_t n = split - off < piece ? split - off : piece;
        if (eg_h2_feed(h, (const char *)in + off, n) != 0) dead = 1;
        if (eg_h2_flush(h) != 0) dead = 1;
        /* every other turn, the streams answered so far are done with */
        if ((off / piece) % 2)
            for (size_t i = 0; i < g_nslots; i++)
                if (g_slots[i]) {
                    eg_h2_stream_t *s = g_slots[i];
                    eg_h2_stream_pull(s);
                    if (g_slots[i] && eg_h2_stream_queued(s) == 0) {
                        g_slots[i] = NULL;
                        eg_h2_stream_detach(s);
                    }
                }
    }
    eg_h2_flush(h);
    eg_h2_goaway(h);
    eg_h2_flush(h);
    eg_h2_free(h);
    return 0;
}

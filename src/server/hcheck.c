/* hcheck.c - active health checks (hcheck.h).
 *
 * One repeating timer on the main loop, ticking at the shortest interval
 * configured (at most a second), starts a probe for each checked server
 * whose next probe is due and that has none in flight. A probe is one
 * connection: connect, write a GET of the health path with Connection:
 * close, read at most EG_HC_READ bytes until the status line is in, then
 * close. Everything about it is bounded by the upstream's timeout, so a
 * server that accepts and never answers costs one descriptor for that long.
 * A probe holds a reference to the configuration it checks and writes its
 * verdict to that configuration's health slots: after a reload the old
 * configuration's probes finish into slots nobody reads any more.
 */
#include "hcheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EG_HC_READ 512

typedef struct probe_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t creq;
    uv_write_t wreq;
    eg_hcheck_t *hc;
    eg_gw_t *gw;
    size_t ui, si;
    int closes;
    int done;
    char req[600];
    char buf[EG_HC_READ];
    size_t len;
    struct probe_s *prev, *next;
} probe_t;

struct eg_hcheck_s {
    uv_loop_t *loop;
    eg_server_t *srv;
    uv_timer_t tick;
    uint64_t tick_ms;
    int stopped;
    probe_t *probes; /* in flight */
};

int eg_hcheck_expected(const eg_health_check_cfg_t *hc, int status)
{
    for (int i = 0; i < hc->nexpect; i++)
        if (status >= hc->expect_lo[i] && status <= hc->expect_hi[i]) return 1;
    return 0;
}

static void hc_log(eg_hcheck_t *hc, const char *event, const eg_upstream_cfg_t *u, size_t si,
                   const char *why)
{
    eg_logline_t l;
    eg_logline_begin(&l, "server");
    eg_logline_str(&l, "event", event, strlen(event));
    eg_logline_str(&l, "upstream", u->name, strlen(u->name));
    eg_logline_str(&l, "server", u->servers[si].addr, strlen(u->servers[si].addr));
    eg_logline_str(&l, "detail", why, strlen(why));
    eg_logline_end(eg_server_error_log(hc->srv), &l);
}

static void probe_closed(uv_handle_t *h)
{
    probe_t *p = h->data;
    if (--p->closes > 0) return;
    eg_gw_unref(p->gw);
    free(p);
}

/* The probe's verdict (status 0: no answer; why says what happened), then
 * its connection closes. Runs once per probe. */
static void probe_end(probe_t *p, int status, const char *why)
{
    if (p->done) return;
    p->done = 1;
    eg_hcheck_t *hc = p->hc;
    if (p->prev)
        p->prev->next = p->next;
    else
        hc->probes = p->next;
    if (p->next) p->next->prev = p->prev;
    const eg_upstream_cfg_t *u = &p->gw->cfg->upstreams[p->ui];
    eg_server_health_t *h = &p->gw->health[p->ui][p->si];
    h->hc_busy = 0;
    h->hc_checked = 1;
    int pass = status && eg_hcheck_expected(&u->hc, status);
    if (status)
        snprintf(h->hc_last, sizeof(h->hc_last), "GET %.60s: %d", u->hc.path, status);
    else
        snprintf(h->hc_last, sizeof(h->hc_last), "GET %.40s: %s", u->hc.path, why);
    /* a stopped checker (draining) records nothing: the server did not fail */
    if (hc->stopped && !status) {
    } else if (pass) {
        h->hc_fail = 0;
        h->hc_ok++;
        if (atomic_load(&h->active_down) && h->hc_ok >= u->hc.rise) {
            atomic_store(&h->active_down, 0);
            /* rise passing probes prove it up: the passive count starts over too */
            eg_health_success(h);
            hc_log(hc, "upstream_server_up", u, p->si, h->hc_last);
        }
    } else {
        h->hc_ok = 0;
        h->hc_fail++;
        if (!atomic_load(&h->active_down) && h->hc_fail >= u->hc.fall) {
            atomic_store(&h->active_down, 1);
            hc_log(hc, "upstream_server_down", u, p->si, h->hc_last);
        }
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, probe_closed);
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

static void probe_timeout(uv_timer_t *t)
{
    probe_end(t->data, 0, "timed out");
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    probe_t *p = h->data;
    *buf = uv_buf_init(p->buf + p->len, (unsigned)(sizeof(p->buf) - p->len));
}

/* Reads until the status line is in: "HTTP/1.x NNN". */
static void probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    probe_t *p = s->data;
    if (p->done) return;
    if (nread < 0) {
        probe_end(p, 0, nread == UV_EOF ? "closed before the status line" : "connection reset");
        return;
    }
    p->len += (size_t)nread;
    const char *eol = memchr(p->buf, '\n', p->len);
    if (!eol && p->len < sizeof(p->buf)) return;
    int status = 0;
    if (eol && p->len >= 12 && memcmp(p->buf, "HTTP/1.", 7) == 0 && p->buf[8] == ' ' &&
        p->buf[9] >= '1' && p->buf[9] <= '5' && p->buf[10] >= '0' && p->buf[10] <= '9' &&
        p->buf[11] >= '0' && p->buf[11] <= '9')
        status = (p->buf[9] - '0') * 100 + (p->buf[10] - '0') * 10 + (p->buf[11] - '0');
    probe_end(p, status, "not an HTTP/1.x response");
}

static void probe_written(uv_write_t *w, int status)
{
    probe_t *p = w->data;
    if (p->done) return;
    if (status < 0) probe_end(p, 0, "write failed");
}

static void probe_connected(uv_connect_t *r, int status)
{
    probe_t *p = r->data;
    if (p->done) return;
    if (status < 0) {
        probe_end(p, 0, status == UV_ECONNREFUSED ? "connection refused" : "connect failed");
        return;
    }
    uv_buf_t b = uv_buf_init(p->req, (unsigned)strlen(p->req));
    if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, probe_written) != 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read) != 0)
        probe_end(p, 0, "write failed");
}

static void probe_start(eg_hcheck_t *hc, eg_gw_t *gw, size_t ui, size_t si)
{
    const eg_upstream_cfg_t *u = &gw->cfg->upstreams[ui];
    const eg_hostport_t *srv = &u->servers[si];
    probe_t *p = calloc(1, sizeof(*p));
    if (!p) return;
    p->hc = hc;
    p->gw = eg_gw_ref(gw);
    p->ui = ui;
    p->si = si;
    snprintf(p->req, sizeof(p->req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: errgate-health-check\r\nConnection: "
             "close\r\n\r\n",
             u->hc.path, srv->addr);
    uv_tcp_init(hc->loop, &p->tcp);
    uv_timer_init(hc->loop, &p->timer);
    p->tcp.data = p->timer.data = p->creq.data = p->wreq.data = p;
    p->closes = 2;
    p->next = hc->probes;
    if (hc->probes) hc->probes->prev = p;
    hc->probes = p;
    gw->health[ui][si].hc_busy = 1;
    uv_timer_start(&p->timer, probe_timeout, u->hc.timeout_ms, 0);
    struct sockaddr_storage ss;
    const char *host = strcmp(srv->host, "localhost") == 0 ? "127.0.0.1" : srv->host;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, srv->port, (struct sockaddr_in6 *)&ss)
                               : uv_ip4_addr(host, srv->port, (struct sockaddr_in *)&ss);
    if (rc == 0) rc = uv_tcp_connect(&p->creq, &p->tcp, (struct sockaddr *)&ss, probe_connected);
    if (rc != 0) probe_end(p, 0, "connect failed");
}

static void on_tick(uv_timer_t *t)
{
    eg_hcheck_t *hc = t->data;
    eg_gw_t *gw = eg_server_current(hc->srv);
    uint64_t now = uv_now(hc->loop);
    for (size_t i = 0; i < gw->cfg->nupstreams; i++) {
        const eg_upstream_cfg_t *u = &gw->cfg->upstreams[i];
        if (!u->hc.enabled) continue;
        for (size_t k = 0; k < u->nservers; k++) {
            eg_server_health_t *h = &gw->health[i][k];
            if (h->hc_busy || now < h->hc_next_ms) continue;
            h->hc_next_ms = now + u->hc.interval_ms;
            probe_start(hc, gw, i, k);
        }
    }
    eg_gw_unref(gw);
}

/* Ticks at the shortest interval (at most 1s) of the active configuration;
 * the first probes go out at once. */
static void arm(eg_hcheck_t *hc)
{
    eg_gw_t *gw = eg_server_current(hc->srv);
    uint64_t tick = 0;
    for (size_t i = 0; i < gw->cfg->nupstreams; i++) {
        const eg_health_check_cfg_t *c = &gw->cfg->upstreams[i].hc;
        if (c->enabled && (!tick || c->interval_ms < tick)) tick = c->interval_ms;
    }
    eg_gw_unref(gw);
    uv_timer_stop(&hc->tick);
    if (!tick || hc->stopped) return;
    hc->tick_ms = tick > 1000 ? 1000 : tick;
    uv_timer_start(&hc->tick, on_tick, 0, hc->tick_ms);
}

int eg_hcheck_start(uv_loop_t *loop, eg_server_t *srv, eg_hcheck_t **out)
{
    eg_hcheck_t *hc = calloc(1, sizeof(*hc));
    if (!hc) return EG_ENOMEM;
    hc->loop = loop;
    hc->srv = srv;
    uv_timer_init(loop, &hc->tick);
    hc->tick.data = hc;
    arm(hc);
    *out = hc;
    return EG_OK;
}

void eg_hcheck_reload(eg_hcheck_t *hc)
{
    if (hc) arm(hc);
}

void eg_hcheck_stop(eg_hcheck_t *hc)
{
    if (!hc) return;
    hc->stopped = 1;
    uv_timer_stop(&hc->tick);
    if (!uv_is_closing((uv_handle_t *)&hc->tick)) uv_close((uv_handle_t *)&hc->tick, NULL);
    while (hc->probes)
        probe_end(hc->probes, 0, "stopped");
}

void eg_hcheck_free(eg_hcheck_t *hc)
{
    free(hc);
}

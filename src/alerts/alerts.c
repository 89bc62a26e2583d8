/* alerts.c - the monitor's evaluator, transitions and GET /alerts (see
 * alerts.h). Everything here but the counting runs on the main thread. */
#include "alerts.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "errgate/apikey.h"
#include "errgate/client.h"
#include "errgate/monitor.h"
#include "metrics.h"
#include "webhook.h"

/* The dashboard's history: per 10 s, per scope, these slots (all, 1xx..5xx). */
#define HIST_STEP_S 10
#define HIST_LEN    360 /* one hour */
#define HIST_SLOTS  6

struct eg_alerts_s {
    eg_server_t *srv;
    uv_timer_t timer;
    uint64_t interval_ms;
    uint64_t generation; /* of the configuration the monitor was made for */
    eg_gw_t *gw;         /* that configuration, referenced */
    eg_monitor_t *monitor;
    uint64_t *prev;  /* [scope][slot]: the sums at the last look */
    uint64_t *cur;   /* scratch, [slot] */
    uint64_t *delta; /* scratch, [slot] */
    eg_webhooks_t *hooks;
    char instance[300];
    uint64_t transitions;
    /* history: hist[(i % HIST_LEN)][scope (routes, none, all)][HIST_SLOTS] */
    uint64_t *hist;
    uint64_t *hist_step; /* the 10 s step each row holds + 1, 0 = empty */
    size_t hist_scopes;
    /* latency history from the metrics' request-duration histograms (when
     * metrics are on): hdur[row][scope][bucket] counts per 10 s step */
    uint32_t *hdur;
    uint64_t *prev_dur; /* [route scope][bucket]: the sums at the last look */
    uint64_t *cur_dur;  /* scratch, [bucket] */
    size_t nbuckets;    /* the histogram's buckets, +Inf included; 0 = no latency */
    double bounds_s[EG_MX_BUCKETS_MAX];
    int curl_ok;
};

int eg_alert_counts_new(const eg_config_t *cfg, int nworkers, eg_alert_counts_t **out)
{
    *out = NULL;
    if (!cfg->alerts_enabled) return EG_OK;
    eg_alert_counts_t *c = calloc(1, sizeof(*c));
    if (!c) return EG_ENOMEM;
    uint16_t codes[EG_MONITOR_MAX_SLOTS];
    c->nslots = eg_alert_slot_map(cfg->alert_rules, cfg->nalert_rules, c->slot_of, codes);
    c->nworkers = nworkers;
    c->nscopes = cfg->nroutes + 1;
    c->stride = (c->nscopes * c->nslots + 7) / 8 * 8;
    size_t bytes = (size_t)nworkers * c->stride * sizeof(uint64_t);
    c->cells = aligned_alloc(64, bytes ? bytes : 64);
    if (!c->cells) {
        free(c);
        return EG_ENOMEM;
    }
    for (size_t i = 0; i < (size_t)nworkers * c->stride; i++)
        atomic_init(&c->cells[i], 0);
    *out = c;
    return EG_OK;
}

void eg_alert_counts_free(eg_alert_counts_t *c)
{
    if (!c) return;
    free(c->cells);
    free(c);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void drop_monitor(eg_alerts_t *a)
{
    eg_monitor_free(a->monitor);
    a->monitor = NULL;
    free(a->prev);
    free(a->cur);
    free(a->delta);
    free(a->hist);
    free(a->hist_step);
    free(a->hdur);
    free(a->prev_dur);
    free(a->cur_dur);
    a->prev = a->cur = a->delta = a->hist = a->hist_step = a->prev_dur = a->cur_dur = NULL;
    a->hdur = NULL;
    a->nbuckets = 0;
    eg_gw_unref(a->gw);
    a->gw = NULL;
}

/* A monitor for gw's configuration (its windows start empty: the counts
 * of the new generation start at zero too). */
/* The monitor of the configuration a reload replaced. */
typedef struct {
    eg_monitor_t *monitor;
    uint64_t *hist, *hist_step;
    uint32_t *hdur;
    size_t nbuckets, hist_scopes;
    eg_gw_t *gw;
} old_t;

/* The history scope of the new configuration for old scope sc, or -1. */
static long hist_scope_map(const eg_alerts_t *a, const old_t *o, size_t sc)
{
    const eg_config_t *oc = o->gw->cfg, *nc = a->gw->cfg;
    if (sc == o->hist_scopes - 1) return (long)a->hist_scopes - 1; /* all */
    if (sc == oc->nroutes) return (long)nc->nroutes;               /* no route */
    for (size_t i = 0; i < nc->nroutes; i++)
        if (strcmp(nc->routes[i].path, oc->routes[sc].path) == 0) return (long)i;
    return -1;
}

/* A reload keeps the windows, the alerts and the hour's history (by route
 * path; a route that went takes its share with it). */
static void carry(eg_alerts_t *a, const old_t *o)
{
    eg_monitor_carry(a->monitor, o->monitor);
    memcpy(a->hist_step, o->hist_step, HIST_LEN * sizeof(uint64_t));
    for (size_t row = 0; row < HIST_LEN; row++)
        for (size_t sc = 0; sc < o->hist_scopes; sc++) {
            long ns = hist_scope_map(a, o, sc);
            if (ns < 0) continue;
            memcpy(a->hist + (row * a->hist_scopes + (size_t)ns) * HIST_SLOTS,
                   o->hist + (row * o->hist_scopes + sc) * HIST_SLOTS,
                   HIST_SLOTS * sizeof(uint64_t));
            if (a->hdur && o->hdur && a->nbuckets == o->nbuckets)
                memcpy(a->hdur + (row * a->hist_scopes + (size_t)ns) * a->nbuckets,
                       o->hdur + (row * o->hist_scopes + sc) * o->nbuckets,
                       o->nbuckets * sizeof(uint32_t));
        }
}

static void build_monitor(eg_alerts_t *a, eg_gw_t *gw)
{
    /* what the running monitor knows is carried into the new one */
    old_t old = {a->monitor, a->hist, a->hist_step, a->hdur, a->nbuckets, a->hist_scopes, a->gw};
    a->monitor = NULL;
    a->hist = a->hist_step = NULL;
    a->hdur = NULL;
    a->gw = NULL;
    drop_monitor(a);
    a->generation = gw->generation;
    const eg_config_t *cfg = gw->cfg;
    if (!cfg->alerts_enabled || !gw->alert_counts) {
        eg_monitor_free(old.monitor);
        free(old.hist);
        free(old.hist_step);
        free(old.hdur);
        eg_gw_unref(old.gw);
        return;
    }
    const char **names = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(char *));
    uint32_t longest = 0;
    for (size_t i = 0; i < cfg->nalert_windows; i++)
        if (cfg->alert_windows[i] > longest) longest = cfg->alert_windows[i];
    for (size_t i = 0; names && i < cfg->nroutes; i++)
        names[i] = cfg->routes[i].path;
    eg_monitor_cfg_t mc = {cfg->alert_rules, cfg->nalert_rules, names, cfg->nroutes, longest};
    int rc = names ? eg_monitor_new(&mc, &a->monitor) : EG_ENOMEM;
    free(names);
    size_t ns = gw->alert_counts->nslots, nsc = gw->alert_counts->nscopes;
    a->hist_scopes = nsc + 1;
    if (rc == EG_OK &&
        (!(a->prev = calloc(nsc * ns, sizeof(uint64_t))) ||
         !(a->cur = calloc(ns, sizeof(uint64_t))) || !(a->delta = calloc(ns, sizeof(uint64_t))) ||
         !(a->hist = calloc((size_t)HIST_LEN * a->hist_scopes * HIST_SLOTS, sizeof(uint64_t))) ||
         !(a->hist_step = calloc(HIST_LEN, sizeof(uint64_t)))))
        rc = EG_ENOMEM;
    const eg_metrics_gen_t *g = gw->metrics;
    if (rc == EG_OK && g && g->nroutes == nsc) {
        a->nbuckets = g->nbuckets + 1;
        for (size_t i = 0; i < g->nbuckets; i++)
            a->bounds_s[i] = (double)g->bounds_ns[i] / 1e9;
        if (!(a->hdur =
                  calloc((size_t)HIST_LEN * a->hist_scopes * a->nbuckets, sizeof(uint32_t))) ||
            !(a->prev_dur = calloc(nsc * a->nbuckets, sizeof(uint64_t))) ||
            !(a->cur_dur = calloc(a->nbuckets, sizeof(uint64_t))))
            rc = EG_ENOMEM;
    }
    if (rc != EG_OK) {
        drop_monitor(a);
    } else {
        a->gw = eg_gw_ref(gw);
        if (old.monitor) carry(a, &old);
    }
    eg_monitor_free(old.monitor);
    free(old.hist);
    free(old.hist_step);
    free(old.hdur);
    eg_gw_unref(old.gw);
}

/* The history row of now's 10 s step, made current (zeroed when it held
 * an older step). */
static size_t hist_row(eg_alerts_t *a, uint64_t now_ms)
{
    uint64_t step = now_ms / 1000 / HIST_STEP_S;
    size_t row = (size_t)(step % HIST_LEN);
    if (a->hist_step[row] != step + 1) {
        memset(a->hist + row * a->hist_scopes * HIST_SLOTS, 0,
               a->hist_scopes * HIST_SLOTS * sizeof(uint64_t));
        if (a->hdur)
            memset(a->hdur + row * a->hist_scopes * a->nbuckets, 0,
                   a->hist_scopes * a->nbuckets * sizeof(uint32_t));
        a->hist_step[row] = step + 1;
    }
    return row;
}

/* Adds a count vector's first slots to the history row of now. */
static void hist_add(eg_alerts_t *a, size_t scope, const uint64_t *d, uint64_t now_ms)
{
    uint64_t *r = a->hist + (hist_row(a, now_ms) * a->hist_scopes) * HIST_SLOTS;
    for (size_t k = 0; k < HIST_SLOTS; k++) {
        r[scope * HIST_SLOTS + k] += d[k];
        r[(a->hist_scopes - 1) * HIST_SLOTS + k] += d[k];
    }
}

/* The request-duration histograms since the last look, into the row of now. */
static void hist_latency(eg_alerts_t *a, uint64_t now_ms)
{
    const eg_metrics_gen_t *g = a->gw->metrics;
    size_t B = a->nbuckets;
    if (!B || !g) return;
    uint32_t *row = NULL;
    for (size_t r = 0; r < g->nroutes; r++) {
        memset(a->cur_dur, 0, B * sizeof(uint64_t));
        for (int w = 0; w < g->nworkers; w++) {
            const eg_mx_ctr_t *p = eg_mx_block(g, w) + g->o_dur + r * B;
            for (size_t k = 0; k < B; k++)
                a->cur_dur[k] += atomic_load_explicit(&p[k], memory_order_relaxed);
        }
        uint64_t *prev = a->prev_dur + r * B;
        for (size_t k = 0; k < B; k++) {
            uint64_t d = a->cur_dur[k] - prev[k];
            prev[k] = a->cur_dur[k];
            if (!d) continue;
            if (!row) row = a->hdur + hist_row(a, now_ms) * a->hist_scopes * B;
            row[r * B + k] += (uint32_t)d;
            row[(a->hist_scopes - 1) * B + k] += (uint32_t)d;
        }
    }
}

/* Prometheus's histogram_quantile over one step's buckets, in ms; -1 when
 * the step has no request. */
static double quantile_ms(const eg_alerts_t *a, const uint32_t *c, double q)
{
    size_t B = a->nbuckets;
    uint64_t total = 0, cum = 0;
    for (size_t k = 0; k < B; k++)
        total += c[k];
    if (!total) return -1;
    double rank = q * (double)total;
    for (size_t k = 0; k < B; k++) {
        if ((double)(cum + c[k]) >= rank && c[k]) {
            if (k == B - 1) return (B >= 2 ? a->bounds_s[B - 2] : 0) * 1000; /* +Inf */
            double lo = k ? a->bounds_s[k - 1] : 0, hi = a->bounds_s[k];
            return (lo + (hi - lo) * (rank - (double)cum) / (double)c[k]) * 1000;
        }
        cum += c[k];
    }
    return -1;
}

static void on_transition(void *ctx, const eg_alert_t *al)
{
    eg_alerts_t *a = ctx;
    const eg_alert_rule_t *r = al->rule;
    const char *event = al->state == EG_ALERT_FIRING ? "alert.firing" : "alert.resolved";
    char summary[512];
    eg_alert_summary(al, summary, sizeof(summary));
    a->transitions++;
    eg_logline_t l;
    eg_logline_begin(&l, "alert");
    eg_logline_str(&l, "event", event, strlen(event));
    eg_logline_str(&l, "name", r->name, strlen(r->name));
    const char *sev = eg_alert_severity_name(r->severity);
    eg_logline_str(&l, "severity", sev, strlen(sev));
    if (al->route_name) eg_logline_str(&l, "route", al->route_name, strlen(al->route_name));
    eg_logline_str(&l, "match", r->match_text, strlen(r->match_text));
    eg_logline_num(&l, "value", al->value);
    eg_logline_num(&l, "threshold", al->state == EG_ALERT_RESOLVED ? r->resolve : r->threshold);
    eg_logline_int(&l, "requests", (long long)al->total);
    eg_logline_int(&l, "matched", (long long)al->matched);
    eg_logline_int(&l, "window_s", (long long)r->window_s);
    eg_logline_str(&l, "summary", summary, strlen(summary));
    eg_logline_end(eg_server_error_log(a->srv), &l);
    if (!a->gw || !a->gw->cfg->nwebhooks) return;
    unsigned char rnd[16];
    char id[48] = "evt_";
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) memset(rnd, 0, sizeof(rnd));
    eg_uuid4(rnd, id + 4);
    char gen[400];
    snprintf(gen, sizeof(gen), "http://%s/alerts",
             a->gw->cfg->has_admin ? a->gw->cfg->admin_listen.addr : a->instance);
    eg_webhooks_post(a->hooks, a->gw, event, eg_alert_event_json(al, id, a->instance, wall_ms()),
                     eg_alert_event_alertmanager(al, a->instance, gen));
}

/* Folds the counts since the last look (the workers' blocks of the
 * monitor's configuration) into the windows and the history. */
static void fold(eg_alerts_t *a, uint64_t now)
{
    const eg_alert_counts_t *c = a->gw->alert_counts;
    for (size_t s = 0; s < c->nscopes; s++) {
        memset(a->cur, 0, c->nslots * sizeof(uint64_t));
        for (int w = 0; w < c->nworkers; w++) {
            const _Atomic uint64_t *p = c->cells + (size_t)w * c->stride + s * c->nslots;
            for (size_t k = 0; k < c->nslots; k++)
                a->cur[k] += atomic_load_explicit(&p[k], memory_order_relaxed);
        }
        uint64_t *prev = a->prev + s * c->nslots;
        int any = 0;
        for (size_t k = 0; k < c->nslots; k++) {
            a->delta[k] = a->cur[k] - prev[k];
            any |= a->delta[k] != 0;
            prev[k] = a->cur[k];
        }
        if (!any) continue;
        eg_monitor_add(a->monitor, s, a->delta, now);
        hist_add(a, s, a->delta, now);
    }
    hist_latency(a, now);
}

static void tick(uv_timer_t *t)
{
    eg_alerts_t *a = t->data;
    eg_gw_t *gw = eg_server_current(a->srv);
    uint64_t now = wall_ms();
    if (gw->generation != a->generation || (!a->monitor && !a->gw && gw->cfg->alerts_enabled &&
                                            gw->alert_counts && a->generation == 0)) {
        /* the old configuration's last counts, then the new monitor */
        if (a->monitor) fold(a, now);
        build_monitor(a, gw);
        uint64_t every = gw->cfg->alert_interval_ms ? gw->cfg->alert_interval_ms : 1000;
        if (every != a->interval_ms) {
            a->interval_ms = every;
            uv_timer_start(&a->timer, tick, every, every);
        }
    }
    eg_gw_unref(gw);
    if (!a->monitor) return;
    fold(a, now);
    eg_monitor_eval(a->monitor, now, on_transition, a);
}

int eg_alerts_start(uv_loop_t *loop, eg_server_t *srv, eg_alerts_t **out)
{
    eg_alerts_t *a = calloc(1, sizeof(*a));
    if (!a) return EG_ENOMEM;
    a->srv = srv;
    /* curl's global set-up, once, before the webhook thread uses it */
    a->curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    eg_gw_t *gw = eg_server_current(srv);
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = '\0';
    snprintf(a->instance, sizeof(a->instance), "%s:%d", host, gw->cfg->listen.port);
    int rc = a->curl_ok ? eg_webhooks_new(eg_server_error_log(srv), &a->hooks) : EG_EIO;
    if (rc == EG_OK) {
        build_monitor(a, gw);
        a->interval_ms = gw->cfg->alert_interval_ms ? gw->cfg->alert_interval_ms : 1000;
        uv_timer_init(loop, &a->timer);
        a->timer.data = a;
        uv_timer_start(&a->timer, tick, a->interval_ms, a->interval_ms);
        uv_unref((uv_handle_t *)&a->timer);
    }
    eg_gw_unref(gw);
    if (rc != EG_OK) {
        if (a->curl_ok) curl_global_cleanup();
        free(a);
        return rc;
    }
    *out = a;
    return EG_OK;
}

void eg_alerts_stop(eg_alerts_t *a)
{
    if (!a) return;
    uv_timer_stop(&a->timer);
    if (!uv_is_closing((uv_handle_t *)&a->timer)) uv_close((uv_handle_t *)&a->timer, NULL);
    /* the webhook thread goes on delivering while the gateway drains; it
     * is joined in eg_alerts_free, off the signal's path */
}

void eg_alerts_free(eg_alerts_t *a)
{
    if (!a) return;
    eg_webhooks_free(a->hooks);
    drop_monitor(a);
    if (a->curl_ok) curl_global_cleanup();
    free(a);
}

int eg_alerts_is_path(const char *t, size_t n)
{
    return n >= 7 && memcmp(t, "/alerts", 7) == 0 && (n == 7 || t[7] == '?');
}

#define SESSION_S      (12 * 3600)
#define SESSION_COOKIE "errgate_admin="

/* The session MAC of an expiry, hex (65 bytes). */
static int session_mac(const eg_config_t *cfg, long long exp, char *hex)
{
    char msg[48];
    int n = snprintf(msg, sizeof(msg), "errgate-dashboard:%lld", exp);
    unsigned char mac[32];
    unsigned int ml = 0;
    if (!HMAC(EVP_sha256(), cfg->admin_token_hash, 32, (const unsigned char *)msg, (size_t)n, mac,
              &ml) ||
        ml != 32)
        return 0;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return 1;
}

void eg_alerts_session_cookie(const eg_config_t *cfg, long long now, char *out, size_t cap)
{
    char hex[65];
    out[0] = '\0';
    if (!cfg->has_admin_token || !session_mac(cfg, now + SESSION_S, hex)) return;
    snprintf(out, cap,
             "Set-Cookie: " SESSION_COOKIE "%lld.%s; Path=/; Max-Age=%d; HttpOnly; "
             "SameSite=Strict\r\n",
             now + SESSION_S, hex, SESSION_S);
}

/* A valid, unexpired session cookie among the Cookie header's pairs. */
static int session_ok(const eg_config_t *cfg, const eg_http1_msg_t *req)
{
    const eg_http_header_t *h = eg_http1_header(req, "cookie");
    if (!h) return 0;
    const char *p = h->value, *end = h->value + h->value_len;
    size_t cl = strlen(SESSION_COOKIE);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ';'))
            p++;
        const char *e = memchr(p, ';', (size_t)(end - p));
        if (!e) e = end;
        if ((size_t)(e - p) > cl && memcmp(p, SESSION_COOKIE, cl) == 0) {
            char v[100];
            size_t vl = (size_t)(e - p) - cl;
            if (vl >= sizeof(v)) return 0;
            memcpy(v, p + cl, vl);
            v[vl] = '\0';
            char *dot = strchr(v, '.'), *stop = NULL;
            if (!dot) return 0;
            *dot = '\0';
            long long exp = strtoll(v, &stop, 10);
            char hex[65];
            if (!stop || *stop || exp < (long long)time(NULL) || strlen(dot + 1) != 64 ||
                !session_mac(cfg, exp, hex))
                return 0;
            return CRYPTO_memcmp(hex, dot + 1, 64) == 0;
        }
        p = e;
    }
    return 0;
}

int eg_alerts_token_ok(const eg_config_t *cfg, const eg_http1_msg_t *req)
{
    if (!cfg->has_admin_token) return 1;
    if (session_ok(cfg, req)) return 1;
    const eg_http_header_t *h = eg_http1_header(req, "authorization");
    if (!h) return 0;
    const char *tok = NULL;
    size_t tl = 0;
    unsigned char dec[400];
    if (h->value_len > 7 && strncasecmp(h->value, "Bearer ", 7) == 0) {
        tok = h->value + 7;
        tl = h->value_len - 7;
    } else if (h->value_len > 6 && h->value_len - 6 < 512 &&
               strncasecmp(h->value, "Basic ", 6) == 0) {
        char in[520];
        size_t il = h->value_len - 6;
        memcpy(in, h->value + 6, il);
        in[il] = '\0';
        int n = EVP_DecodeBlock(dec, (const unsigned char *)in, (int)il);
        if (n < 0) return 0;
        while (il && in[il - 1] == '=' && n > 0) { /* DecodeBlock counts padding as zeros */
            il--;
            n--;
        }
        const unsigned char *colon = memchr(dec, ':', (size_t)n);
        if (!colon) return 0;
        tok = (const char *)colon + 1;
        tl = (size_t)n - (size_t)(colon + 1 - dec);
    }
    unsigned char digest[32];
    int ok = tok && tl > 0 && eg_apikey_hash(NULL, 0, tok, tl, digest) == EG_OK &&
             CRYPTO_memcmp(digest, cfg->admin_token_hash, 32) == 0;
    OPENSSL_cleanse(dec, sizeof(dec));
    return ok;
}

/* A window's counts as the document shows them. */
static json_t *window_json(const eg_monitor_t *m, const uint64_t *w)
{
    json_t *st = json_object();
    static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    for (size_t k = 1; k < 6; k++)
        json_object_set_new(st, classes[k], json_integer((json_int_t)w[k]));
    size_t ns = eg_monitor_nslots(m);
    for (size_t k = EG_MONITOR_SLOT_FIRST_CODE; k < ns; k++) {
        char code[8];
        snprintf(code, sizeof(code), "%d", eg_monitor_slot_status(m, k));
        json_object_set_new(st, code, json_integer((json_int_t)w[k]));
    }
    double all = (double)w[0];
    return json_pack("{s:I, s:f, s:f, s:o}", "requests", (json_int_t)w[0], "error_rate",
                     w[0] ? (double)(w[4] + w[5]) / all : 0.0, "server_error_rate",
                     w[0] ? (double)w[5] / all : 0.0, "status", st);
}

json_t *eg_alerts_json(eg_alerts_t *a, int history)
{
    char now[40];
    uint64_t nowms = wall_ms();
    time_t s = (time_t)(nowms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *doc = json_pack("{s:s, s:s, s:b}", "generated_at", now, "instance", a->instance,
                            "enabled", a->monitor != NULL);
    if (!doc || !a->monitor) return doc;
    const eg_config_t *cfg = a->gw->cfg;
    json_t *firing = json_array(), *all = json_array(), *rules = json_array();
    const eg_alert_t *al;
    size_t n = eg_monitor_alerts(a->monitor, &al);
    for (size_t i = 0; i < n; i++) {
        if (al[i].state == EG_ALERT_INACTIVE) continue;
        json_array_append_new(all, eg_alert_json(&al[i]));
        if (al[i].state == EG_ALERT_FIRING) json_array_append_new(firing, eg_alert_json(&al[i]));
    }
    for (size_t i = 0; i < cfg->nalert_rules; i++) {
        const eg_alert_rule_t *r = &cfg->alert_rules[i];
        const char *route = r->route == EG_ALERT_ALL    ? "all"
                            : r->route == EG_ALERT_EACH ? "each"
                                                        : cfg->routes[r->route].path;
        json_array_append_new(rules,
                              json_pack("{s:s, s:s, s:s, s:f, s:f, s:I, s:I, s:f, s:s}", "name",
                                        r->name, "match", r->match_text, "route", route,
                                        "threshold", r->threshold, "resolve_threshold", r->resolve,
                                        "min_requests", (json_int_t)r->min_requests, "window_s",
                                        (json_int_t)r->window_s, "for_s", (double)r->for_ms / 1000,
                                        "severity", eg_alert_severity_name(r->severity)));
    }
    json_object_set_new(doc, "firing", firing);
    json_object_set_new(doc, "alerts", all);
    json_object_set_new(doc, "rules", rules);
    /* the windows, all traffic and per route */
    json_t *windows = json_array();
    uint64_t *w = calloc(eg_monitor_nslots(a->monitor), sizeof(uint64_t));
    for (size_t i = 0; w && i < cfg->nalert_windows; i++) {
        uint32_t ws = cfg->alert_windows[i];
        eg_monitor_window(a->monitor, EG_ALERT_ALL, ws, nowms, w);
        json_t *one =
            json_pack("{s:I, s:o}", "window_s", (json_int_t)ws, "all", window_json(a->monitor, w));
        json_t *routes = json_array();
        for (size_t r = 0; r <= cfg->nroutes; r++) {
            eg_monitor_window(a->monitor, (long)r, ws, nowms, w);
            json_t *rj = window_json(a->monitor, w);
            json_object_set_new(rj, "route",
                                r < cfg->nroutes ? json_string(cfg->routes[r].path) : json_null());
            json_array_append_new(routes, rj);
        }
        json_object_set_new(one, "routes", routes);
        json_array_append_new(windows, one);
    }
    free(w);
    json_object_set_new(doc, "windows", windows);
    /* the last hour, per 10 s: requests and classes, all and per route */
    json_t *hist = json_object(), *times = json_array(), *series = json_array();
    uint64_t step = nowms / 1000 / HIST_STEP_S;
    for (size_t sc = 0; history && sc < a->hist_scopes; sc++) {
        json_t *one = json_object(), *req = json_array(), *e4 = json_array(), *e5 = json_array(),
               *p50 = json_array(), *p99 = json_array();
        for (uint64_t k = HIST_LEN; k-- > 0;) {
            uint64_t st = step - k;
            size_t row = (size_t)(st % HIST_LEN);
            const uint64_t *r = a->hist + (row * a->hist_scopes + sc) * HIST_SLOTS;
            int have = a->hist_step[row] == st + 1;
            if (sc == 0) json_array_append_new(times, json_integer((json_int_t)(st * HIST_STEP_S)));
            json_array_append_new(req, json_integer(have ? (json_int_t)r[0] : 0));
            json_array_append_new(e4, json_integer(have ? (json_int_t)r[4] : 0));
            json_array_append_new(e5, json_integer(have ? (json_int_t)r[5] : 0));
            if (a->hdur) {
                const uint32_t *c = a->hdur + (row * a->hist_scopes + sc) * a->nbuckets;
                double v50 = have ? quantile_ms(a, c, 0.5) : -1,
                       v99 = have ? quantile_ms(a, c, 0.99) : -1;
                json_array_append_new(p50, v50 < 0 ? json_null() : json_real(v50));
                json_array_append_new(p99, v99 < 0 ? json_null() : json_real(v99));
            }
        }
        json_object_set_new(one, "route",
                            sc < cfg->nroutes          ? json_string(cfg->routes[sc].path)
                            : sc == a->hist_scopes - 1 ? json_string("*")
                                                       : json_null());
        json_object_set_new(one, "requests", req);
        json_object_set_new(one, "4xx", e4);
        json_object_set_new(one, "5xx", e5);
        if (a->hdur) {
            json_object_set_new(one, "p50_ms", p50);
            json_object_set_new(one, "p99_ms", p99);
        } else {
            json_decref(p50);
            json_decref(p99);
        }
        json_array_append_new(series, one);
    }
    json_object_set_new(hist, "step_s", json_integer(HIST_STEP_S));
    json_object_set_new(hist, "t", times);
    json_object_set_new(hist, "series", series);
    if (history)
        json_object_set_new(doc, "history", hist);
    else
        json_decref(hist);
    eg_webhook_stats_t ws;
    eg_webhooks_stats(a->hooks, &ws);
    json_object_set_new(doc, "webhooks",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "configured",
                                  (json_int_t)cfg->nwebhooks, "delivered", (json_int_t)ws.delivered,
                                  "failed", (json_int_t)ws.failed, "retried",
                                  (json_int_t)ws.retried, "dropped", (json_int_t)ws.dropped,
                                  "queued", (json_int_t)ws.queued));
    return doc;
}

char *eg_alerts_admin(eg_alerts_t *a, const eg_config_t *cfg, const eg_http1_msg_t *req,
                      const char *reqid, size_t *outlen)
{
    int head;
    if (!eg_admin_is_get(req, &head)) return eg_admin_not_get(cfg, req, reqid, outlen);
    if (!eg_alerts_token_ok(cfg, req)) {
        char extra[200];
        snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer realm=\"%s-admin\"\r\n",
                 cfg->realm);
        return eg_admin_error(cfg, req, "unauthorized",
                              "/alerts needs Authorization: Bearer <admin token>.", extra, -1,
                              reqid, outlen);
    }
    /* ?history=0: without the hour's history (it is most of the document) */
    const char *q = memchr(req->target, '?', req->target_len);
    int history = 1;
    for (size_t i = q ? (size_t)(q - req->target) + 1 : req->target_len; i + 9 <= req->target_len;
         i++)
        if (memcmp(req->target + i, "history=0", 9) == 0 &&
            (req->target[i - 1] == '?' || req->target[i - 1] == '&'))
            history = 0;
    json_t *doc = a ? eg_alerts_json(a, history) : json_pack("{s:b}", "enabled", 0);
    char *body =
        doc ? json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(12)) : NULL;
    json_decref(doc);
    if (!body) return NULL;
    size_t blen = strlen(body);
    char *out = malloc(blen + 512);
    if (out) {
        char date[EG_HTTP1_DATE_LEN + 1];
        eg_http1_date((int64_t)time(NULL), date);
        int n = snprintf(out, 512,
                         "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nX-Request-ID: %s\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\n\r\n",
                         date, blen + 1, reqid);
        if (!head) {
            memcpy(out + n, body, blen);
            out[(size_t)n + blen] = '\n';
            *outlen = (size_t)n + blen + 1;
        } else {
            *outlen = (size_t)n;
        }
    }
    free(body);
    return out;
}

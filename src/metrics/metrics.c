/* metrics.c - counter blocks, their layout, the archive and snapshots
 * (see metrics.h).
 *
 * A snapshot is a table of series keyed by (family, sample, bucket, label
 * values), kept in insertion order with a hash index: generations and the
 * archive are folded into it by label values, never by index, which is
 * what lets a reload change the routes while counters keep their values.
 * Only series that counted something are inserted (a route never hit has
 * no series), as Prometheus client libraries do for labelled metrics.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errgate/catalog.h"
#include "errgate/common.h"
#include "strbuild.h"

/* --- statuses ------------------------------------------------------------ */

/* eg_mx_status_tab: a status to its index, 0 for one without its own
 * (eg_mx_status then takes its class: index 0..4, "1xx".."5xx"). */

#define S(code, i) [code - 100] = i
const uint8_t eg_mx_status_tab[500] = {
    S(100, 5),  S(101, 6),  S(103, 7),  S(200, 8),  S(201, 9),  S(202, 10), S(203, 11), S(204, 12),
    S(206, 13), S(301, 14), S(302, 15), S(303, 16), S(304, 17), S(307, 18), S(308, 19), S(400, 20),
    S(401, 21), S(402, 22), S(403, 23), S(404, 24), S(405, 25), S(406, 26), S(407, 27), S(408, 28),
    S(409, 29), S(410, 30), S(411, 31), S(412, 32), S(413, 33), S(414, 34), S(415, 35), S(416, 36),
    S(417, 37), S(421, 38), S(422, 39), S(423, 40), S(424, 41), S(425, 42), S(426, 43), S(428, 44),
    S(429, 45), S(431, 46), S(451, 47), S(499, 48), S(500, 49), S(501, 50), S(502, 51), S(503, 52),
    S(504, 53), S(505, 54), S(507, 55), S(508, 56)};
#undef S

const char *eg_mx_status_name(unsigned i)
{
    static const char *const names[EG_MX_STATUSES] = {
        "1xx", "2xx", "3xx", "4xx", "5xx", "100", "101", "103", "200", "201", "202", "203",
        "204", "206", "301", "302", "303", "304", "307", "308", "400", "401", "402", "403",
        "404", "405", "406", "407", "408", "409", "410", "411", "412", "413", "414", "415",
        "416", "417", "421", "422", "423", "424", "425", "426", "428", "429", "431", "451",
        "499", "500", "501", "502", "503", "504", "505", "507", "508",
    };
    return i < EG_MX_STATUSES ? names[i] : "5xx";
}

static const char *const method_names[EG_MX_METHODS] = {"GET",   "HEAD",   "POST",    "PUT",
                                                        "PATCH", "DELETE", "OPTIONS", "other"};
static const char *const upfail_names[EG_MX_UP_KINDS] = {
    "connect_failed", "connect_timeout", "timeout", "reset", "stale", "invalid", "cut"};
static const char *const refusal_names[EG_MX_REF_KINDS] = {"rate_limit", "concurrency", "quota",
                                                           "credits"};
static const char *const idem_names[EG_MX_IDEM_KINDS] = {"stored", "replayed", "conflict",
                                                         "mismatch", "missing"};
static const char *const store_names[EG_MX_STORES] = {"sqlite", "redis"};
static const char *const op_names[EG_MX_OPS] = {"traffic", "idempotency"};
static const double store_bounds[EG_MX_STORE_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                         0.025,  0.05,  0.1,    0.25,  1};

/* --- families ------------------------------------------------------------ */

typedef enum { T_COUNTER, T_GAUGE, T_HIST } mtype_t;

typedef struct {
    const char *name; /* counters without _total (OpenMetrics' family name) */
    const char *help;
    mtype_t type;
    int nlabels;
    const char *labels[3];
    int store_bounds; /* a histogram with the fixed store bounds */
} family_t;

enum {
    F_REQUESTS,
    F_ERRORS,
    F_DUR,
    F_UP,
    F_AUTH,
    F_VALID,
    F_REFUSALS,
    F_IDEM,
    F_UPFAIL,
    F_RETRIES,
    F_SERVER_UP,
    F_SERVER_FAILS,
    F_STORE,
    F_STORE_FAIL,
    F_CONN_OPEN,
    F_CONN,
    F_CONN_CLOSED,
    F_TUN_OPEN,
    F_TUN,
    F_TUN_CLOSED,
    F_TUN_BYTES,
    F_GEN,
    F_RELOADS,
    F_RELOAD_TS,
    F_BUILD,
    F_START,
    NFAMILIES
};

static const family_t families[NFAMILIES] = {
    [F_REQUESTS] = {"errgate_requests",
                    "Requests answered, by route, method and response status.",
                    T_COUNTER,
                    3,
                    {"route", "method", "status"},
                    0},
    [F_ERRORS] = {"errgate_errors",
                  "Error responses (with X-Error-Code), by route and catalog code.",
                  T_COUNTER,
                  2,
                  {"route", "code"},
                  0},
    [F_DUR] = {"errgate_request_duration_seconds",
               "Time from a request's first byte to its response's end, by route.",
               T_HIST,
               1,
               {"route"},
               0},
    [F_UP] = {"errgate_upstream_duration_seconds",
              "Time from a request's first upstream attempt to the end of the upstream's response "
              "(retries included), by route.",
              T_HIST,
              1,
              {"route"},
              0},
    [F_AUTH] = {"errgate_auth_failures",
                "Requests refused by the access stage (keys, tokens, scopes, addresses), by route "
                "and code.",
                T_COUNTER,
                2,
                {"route", "code"},
                0},
    [F_VALID] = {"errgate_validation_failures",
                 "Requests refused by the validation stage (parameters, bodies, media types), by "
                 "route and code.",
                 T_COUNTER,
                 2,
                 {"route", "code"},
                 0},
    [F_REFUSALS] = {"errgate_traffic_refusals",
                    "Requests refused by a rate limit, concurrency limit, quota or credits, by "
                    "route, kind and policy.",
                    T_COUNTER,
                    3,
                    {"route", "kind", "policy"},
                    0},
    [F_IDEM] = {"errgate_idempotency",
                "Idempotency-Key outcomes, by route and result.",
                T_COUNTER,
                2,
                {"route", "result"},
                0},
    [F_UPFAIL] = {"errgate_upstream_failures",
                  "Failed upstream attempts, by upstream, server and kind.",
                  T_COUNTER,
                  3,
                  {"upstream", "server", "kind"},
                  0},
    [F_RETRIES] = {"errgate_upstream_retries",
                   "Upstream attempts after the first for a request, by upstream.",
                   T_COUNTER,
                   1,
                   {"upstream"},
                   0},
    [F_SERVER_UP] = {"errgate_upstream_server_up",
                     "Whether an upstream server is in rotation (1) or marked down (0).",
                     T_GAUGE,
                     2,
                     {"upstream", "server"},
                     0},
    [F_SERVER_FAILS] = {"errgate_upstream_server_consecutive_failures",
                        "An upstream server's consecutive failures (max_fails marks it down).",
                        T_GAUGE,
                        2,
                        {"upstream", "server"},
                        0},
    [F_STORE] = {"errgate_store_duration_seconds",
                 "Store and Redis operations on the request path, by store and operation.",
                 T_HIST,
                 2,
                 {"store", "op"},
                 1},
    [F_STORE_FAIL] = {"errgate_store_failures",
                      "Store and Redis operations that failed, by store and operation.",
                      T_COUNTER,
                      2,
                      {"store", "op"},
                      0},
    [F_CONN_OPEN] =
        {"errgate_connections_open", "Client connections open now.", T_GAUGE, 0, {0}, 0},
    [F_CONN] = {"errgate_connections", "Client connections accepted.", T_COUNTER, 0, {0}, 0},
    [F_CONN_CLOSED] =
        {"errgate_connections_closed", "Client connections closed.", T_COUNTER, 0, {0}, 0},
    [F_TUN_OPEN] = {"errgate_tunnels_open", "Upgraded connections (WebSocket) tunneled now.", T_GAUGE, 0, {0},
                    0},
    [F_TUN] = {"errgate_tunnels", "Upgraded connections tunneled after an upstream's 101.", T_COUNTER, 0, {0}, 0},
    [F_TUN_CLOSED] = {"errgate_tunnels_closed", "Tunnels ended.", T_COUNTER, 0, {0}, 0},
    [F_TUN_BYTES] = {"errgate_tunnel_bytes",
                     "Bytes tunneled, by direction (from_client, from_upstream).",
                     T_COUNTER,
                     1,
                     {"direction"},
                     0},
    [F_GEN] = {"errgate_config_generation",
               "The configuration generation serving new requests (0 at start, +1 a reload).",
               T_GAUGE,
               0,
               {0},
               0},
    [F_RELOADS] = {"errgate_config_reloads",
                   "Configuration reloads (SIGHUP), by result.",
                   T_COUNTER,
                   1,
                   {"result"},
                   0},
    [F_RELOAD_TS] = {"errgate_config_last_reload_success_timestamp_seconds",
                     "When the running configuration was loaded (Unix time).",
                     T_GAUGE,
                     0,
                     {0},
                     0},
    [F_BUILD] =
        {"errgate_build_info", "errgate's version (the value is 1).", T_GAUGE, 1, {"version"}, 0},
    [F_START] =
        {"errgate_start_time_seconds", "When the gateway started (Unix time).", T_GAUGE, 0, {0}, 0},
};

/* --- snapshots: series by label values ---------------------------------- */

enum { K_VALUE = 0, K_BUCKET, K_SUM, K_COUNT };

typedef struct {
    uint8_t fam, kind, bucket;
    char *lab; /* the label values, each ending in '\0' */
    size_t lablen;
    double v;
} series_t;

struct eg_mx_snap_s {
    series_t *s;
    size_t n, cap;
    size_t *idx; /* hash: 1 + series index, 0 empty */
    size_t icap;
    int oom;
    size_t nbuckets;
    double bounds[EG_MX_BUCKETS_MAX];
};

static uint64_t series_hash(int fam, int kind, int bucket, const char *lab, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(fam << 16 | kind << 8 | bucket);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)lab[i]) * 1099511628211ull;
    return h;
}

static int snap_rehash(eg_mx_snap_t *s, size_t icap)
{
    size_t *idx = calloc(icap, sizeof(*idx));
    if (!idx) return -1;
    for (size_t i = 0; i < s->n; i++) {
        series_t *x = &s->s[i];
        size_t h = series_hash(x->fam, x->kind, x->bucket, x->lab, x->lablen) & (icap - 1);
        while (idx[h])
            h = (h + 1) & (icap - 1);
        idx[h] = i + 1;
    }
    free(s->idx);
    s->idx = idx;
    s->icap = icap;
    return 0;
}

/* Adds v to the series, made when new. */
static void snap_add(eg_mx_snap_t *s, int fam, int kind, int bucket, const char *lab, size_t lablen,
                     double v)
{
    if (s->oom) return;
    if ((s->n + 1) * 2 > s->icap && snap_rehash(s, s->icap ? s->icap * 2 : 256) != 0) {
        s->oom = 1;
        return;
    }
    size_t h = series_hash(fam, kind, bucket, lab, lablen) & (s->icap - 1);
    for (; s->idx[h]; h = (h + 1) & (s->icap - 1)) {
        series_t *x = &s->s[s->idx[h] - 1];
        if (x->fam == fam && x->kind == kind && x->bucket == bucket && x->lablen == lablen &&
            memcmp(x->lab, lab, lablen) == 0) {
            x->v += v;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 128;
        series_t *p = realloc(s->s, ncap * sizeof(*p));
        if (!p) {
            s->oom = 1;
            return;
        }
        s->s = p;
        s->cap = ncap;
    }
    char *l = malloc(lablen ? lablen : 1);
    if (!l) {
        s->oom = 1;
        return;
    }
    memcpy(l, lab, lablen);
    s->s[s->n] = (series_t){(uint8_t)fam, (uint8_t)kind, (uint8_t)bucket, l, lablen, v};
    s->idx[h] = ++s->n;
}

void eg_mx_snap_free(eg_mx_snap_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        free(s->s[i].lab);
    free(s->s);
    free(s->idx);
    free(s);
}

/* Label values, packed: up to three, each with its '\0'. */
typedef struct {
    char buf[1024];
    size_t n;
} labs_t;

static void set_labs(labs_t *l, int k, const char *a, const char *b, const char *c)
{
    const char *v[3] = {a, b, c};
    l->n = 0;
    for (int i = 0; i < k; i++) {
        size_t len = strlen(v[i]);
        if (len > 300) len = 300;
        memcpy(l->buf + l->n, v[i], len);
        l->n += len;
        l->buf[l->n++] = '\0';
    }
}

static void snap_value(eg_mx_snap_t *s, int fam, const labs_t *l, double v)
{
    snap_add(s, fam, K_VALUE, 0, l->buf, l->n, v);
}

/* A histogram's per-bucket counts (nb + 1, the last +Inf) and sum: the
 * cumulative buckets, the sum, the count; nothing when it counted nothing. */
static void snap_hist(eg_mx_snap_t *s, int fam, const labs_t *l, const uint64_t *counts, size_t nb,
                      double sum)
{
    uint64_t cum = 0;
    for (size_t b = 0; b <= nb; b++)
        cum += counts[b];
    if (!cum) return;
    cum = 0;
    for (size_t b = 0; b <= nb; b++) {
        cum += counts[b];
        snap_add(s, fam, K_BUCKET, (int)b, l->buf, l->n, (double)cum);
    }
    snap_add(s, fam, K_SUM, 0, l->buf, l->n, sum);
    snap_add(s, fam, K_COUNT, 0, l->buf, l->n, (double)cum);
}

static eg_mx_snap_t *snap_new(const eg_metrics_t *m);

/* --- the registry -------------------------------------------------------- */

struct eg_metrics_s {
    pthread_mutex_t lock;
    eg_mx_snap_t *archive; /* folded sums of freed generations */
    eg_metrics_gen_t *live;
    int nworkers;
    size_t nbuckets;
    double bounds[EG_MX_BUCKETS_MAX];
    uint64_t bounds_ns[EG_MX_BUCKETS_MAX];
    double start;
    _Atomic uint64_t reloads_ok, reloads_failed, generation;
    _Atomic int64_t loaded_ms; /* when the running configuration was loaded */
};

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int eg_metrics_new(int nworkers, const double *bounds, size_t nbounds, eg_metrics_t **out)
{
    *out = NULL;
    if (nworkers < 1 || nbounds > EG_MX_BUCKETS_MAX) return EG_EINVAL;
    eg_metrics_t *m = calloc(1, sizeof(*m));
    if (!m) return EG_ENOMEM;
    m->nworkers = nworkers;
    m->nbuckets = nbounds;
    for (size_t i = 0; i < nbounds; i++) {
        m->bounds[i] = bounds[i];
        m->bounds_ns[i] = (uint64_t)(bounds[i] * 1e9 + 0.5);
    }
    m->start = wall_now();
    atomic_init(&m->loaded_ms, (int64_t)(m->start * 1000));
    if (!(m->archive = snap_new(m))) {
        free(m);
        return EG_ENOMEM;
    }
    pthread_mutex_init(&m->lock, NULL);
    *out = m;
    return EG_OK;
}

void eg_metrics_free(eg_metrics_t *m)
{
    if (!m) return;
    eg_mx_snap_free(m->archive);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

int eg_metrics_bounds_differ(const eg_metrics_t *m, const double *bounds, size_t n)
{
    if (!m) return 0;
    if (n != m->nbuckets) return 1;
    for (size_t i = 0; i < n; i++)
        if (bounds[i] != m->bounds[i]) return 1;
    return 0;
}

void eg_metrics_reload(eg_metrics_t *m, int ok, uint64_t generation, double when)
{
    if (!m) return;
    if (ok) {
        atomic_fetch_add(&m->reloads_ok, 1);
        atomic_store(&m->generation, generation);
        atomic_store(&m->loaded_ms, (int64_t)(when * 1000));
    } else {
        atomic_fetch_add(&m->reloads_failed, 1);
    }
}

/* A worker's last few error codes as the dialect spelled them, with their
 * catalog index: a 404 flood asks the catalog once, not once a request
 * (the lookup was two thirds of counting a gateway 404). Direct-mapped on
 * length and last letter; owned by its worker like its block. */
#define EG_MX_CODECACHE 8
typedef struct {
    char code[40];
    uint32_t len, idx;
} codeslot_t;
struct eg_mx_codecache_s {
    codeslot_t slot[EG_MX_CODECACHE];
};

/* --- layout --------------------------------------------------------------- */

/* The refusal policies of a route, one index space for every route:
 *   [0, rl)                 the route's rate limits (rl: the most any route has)
 *   [rl, rl + pl)           the plans' rate limits (plan_base)
 *   c = rl + pl             the route's concurrency; c+1.. each plan's
 *   q = c + 1 + nplans      the route's quota; q+1.. each plan's
 *   q + 1 + nplans          credits */
static size_t max_route_limits(const eg_config_t *cfg)
{
    size_t rl = 0;
    for (size_t i = 0; i < cfg->nroutes; i++)
        if (cfg->routes[i].nlimits > rl) rl = cfg->routes[i].nlimits;
    return rl;
}

int eg_metrics_gen_new(eg_metrics_t *m, const eg_config_t *cfg, eg_metrics_gen_t **out)
{
    *out = NULL;
    eg_metrics_gen_t *g = calloc(1, sizeof(*g));
    if (!g) return EG_ENOMEM;
    g->reg = m;
    g->cfg = cfg;
    g->nworkers = m->nworkers;
    g->nroutes = cfg->nroutes + 1;
    g->ncodes = eg_catalog_count(cfg->catalog) + 1;
    g->code0 = eg_catalog_at(cfg->catalog, 0);
    g->nbuckets = m->nbuckets;
    memcpy(g->bounds_ns, m->bounds_ns, sizeof(g->bounds_ns));
    g->server_base = calloc(cfg->nupstreams + 1, sizeof(size_t));
    g->plan_base = calloc(cfg->nplans + 1, sizeof(size_t));
    if (!g->server_base || !g->plan_base) goto oom;
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        g->server_base[u] = g->nservers;
        g->nservers += cfg->upstreams[u].nservers;
    }
    size_t rl = max_route_limits(cfg), pl = 0;
    for (size_t p = 0; p < cfg->nplans; p++) {
        g->plan_base[p] = rl + pl;
        pl += cfg->plans[p].nlimits;
    }
    g->npolicies = rl + pl + 3 + 2 * cfg->nplans;
    size_t R = g->nroutes, B = g->nbuckets + 1, at = 0;
    g->o_requests = at, at += R * EG_MX_METHODS * EG_MX_STATUSES;
    g->o_errors = at, at += R * g->ncodes;
    g->o_auth = at, at += R * g->ncodes;
    g->o_valid = at, at += R * g->ncodes;
    g->o_dur = at, at += R * B;
    g->o_dur_sum = at, at += R;
    g->o_up = at, at += R * B;
    g->o_up_sum = at, at += R;
    g->o_refusals = at, at += R * g->npolicies;
    g->o_idem = at, at += R * EG_MX_IDEM_KINDS;
    g->o_upfail = at, at += g->nservers * EG_MX_UP_KINDS;
    g->o_retries = at, at += cfg->nupstreams;
    g->o_store = at, at += EG_MX_STORES * EG_MX_OPS * (EG_MX_STORE_BUCKETS + 1);
    g->o_store_sum = at, at += EG_MX_STORES * EG_MX_OPS;
    g->o_store_fail = at, at += EG_MX_STORES * EG_MX_OPS;
    g->o_conn_open = at++;
    g->o_conn_close = at++;
    g->o_tun_open = at++;
    g->o_tun_close = at++;
    g->o_tun_bytes = at, at += 2;
    g->stride = (at + 7) & ~(size_t)7; /* whole cache lines: no line is shared by two workers */
    size_t bytes = (size_t)g->nworkers * g->stride * sizeof(eg_mx_ctr_t);
    if (!(g->blocks = aligned_alloc(64, bytes))) goto oom;
    memset(g->blocks, 0, bytes); /* all-zero bits are a zero atomic counter here */
    _Static_assert(sizeof(struct eg_mx_codecache_s) % 64 == 0, "a worker's cache on its own lines");
    size_t cbytes = (size_t)g->nworkers * sizeof(struct eg_mx_codecache_s);
    if (!(g->codes = aligned_alloc(64, cbytes))) {
        free(g->blocks);
        goto oom;
    }
    memset(g->codes, 0, cbytes);
    pthread_mutex_lock(&m->lock);
    g->next = m->live;
    if (m->live) m->live->prev = g;
    m->live = g;
    pthread_mutex_unlock(&m->lock);
    *out = g;
    return EG_OK;
oom:
    free(g->server_base);
    free(g->plan_base);
    free(g);
    return EG_ENOMEM;
}

/* --- recording ------------------------------------------------------------ */

/* The catalog index of a code as a dialect spelled it (validation_error,
 * VALIDATION_ERROR, validationError); the last index ("other") when the
 * catalog does not know it. */
static size_t code_index(const eg_metrics_gen_t *g, const char *code)
{
    const eg_catalog_t *cat = g->cfg->catalog;
    size_t n = strlen(code);
    const eg_catalog_entry_t *e = eg_catalog_lookup(cat, code, n);
    if (!e && n < 64) {
        char snake[140];
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            char ch = code[i];
            if (ch >= 'A' && ch <= 'Z') {
                if (i && code[i - 1] >= 'a' && code[i - 1] <= 'z') snake[k++] = '_';
                ch = (char)(ch - 'A' + 'a');
            } else if (ch == '-' || ch == '.') {
                ch = '_';
            }
            snake[k++] = ch;
        }
        e = eg_catalog_lookup(cat, snake, k);
    }
    const eg_catalog_entry_t *first = eg_catalog_at(cat, 0);
    if (!e || !first) return g->ncodes - 1;
    size_t i = (size_t)(e - first);
    return i < g->ncodes - 1 ? i : g->ncodes - 1;
}

static size_t route_index(const eg_metrics_gen_t *g, const eg_route_cfg_t *route)
{
    if (!route) return g->nroutes - 1;
    size_t i = (size_t)(route - g->cfg->routes);
    return i < g->nroutes - 1 ? i : g->nroutes - 1;
}

static size_t code_index_cached(const eg_metrics_gen_t *g, int worker, const char *code)
{
    size_t n = strlen(code);
    if (n >= sizeof(((codeslot_t *)0)->code)) return code_index(g, code);
    codeslot_t *sl = &g->codes[worker].slot[(n + (unsigned char)code[n - 1]) % EG_MX_CODECACHE];
    if (sl->len == n && memcmp(sl->code, code, n) == 0) return sl->idx;
    size_t i = code_index(g, code);
    memcpy(sl->code, code, n);
    sl->len = (uint32_t)n;
    sl->idx = (uint32_t)i;
    return i;
}

void eg_mx_request_error(eg_metrics_gen_t *g, int worker, size_t r, const char *code,
                         const eg_catalog_entry_t *entry)
{
    size_t k = g->ncodes - 1;
    if (entry && g->code0) k = (size_t)(entry - g->code0);
    if (k >= g->ncodes - 1) k = code_index_cached(g, worker, code);
    eg_mx_add(eg_mx_block(g, worker) + g->o_errors + r * g->ncodes + k, 1);
}

void eg_metrics_refusal(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                        eg_mx_refusal_t kind, const eg_rate_limit_cfg_t *limit,
                        const eg_plan_cfg_t *plan)
{
    if (!g) return;
    const eg_config_t *cfg = g->cfg;
    size_t rl = max_route_limits(cfg), pl = g->npolicies - rl - 3 - 2 * cfg->nplans;
    size_t c = rl + pl, q = c + 1 + cfg->nplans, p = g->npolicies;
    size_t pi = plan ? (size_t)(plan - cfg->plans) : 0;
    if (plan && pi >= cfg->nplans) return;
    switch (kind) {
    case EG_MX_REF_RATE:
        if (!limit) return;
        /* (no pointer arithmetic on a list that is empty: its pointer is NULL) */
        if (route && route->nlimits && limit >= route->limits &&
            limit < route->limits + route->nlimits)
            p = (size_t)(limit - route->limits);
        for (size_t k = 0; p == g->npolicies && k < cfg->nplans; k++)
            if (cfg->plans[k].nlimits && limit >= cfg->plans[k].limits &&
                limit < cfg->plans[k].limits + cfg->plans[k].nlimits)
                p = g->plan_base[k] + (size_t)(limit - cfg->plans[k].limits);
        break;
    case EG_MX_REF_CONCURRENCY:
        p = plan ? c + 1 + pi : c;
        break;
    case EG_MX_REF_QUOTA:
        p = plan ? q + 1 + pi : q;
        break;
    case EG_MX_REF_CREDITS:
        p = g->npolicies - 1;
        break;
    default:
        return;
    }
    if (p >= g->npolicies) return;
    eg_mx_add(eg_mx_block(g, worker) + g->o_refusals + route_index(g, route) * g->npolicies + p, 1);
}

void eg_metrics_auth_failure(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                             const char *code)
{
    if (!g || !code) return;
    eg_mx_add(eg_mx_block(g, worker) + g->o_auth + route_index(g, route) * g->ncodes +
                  code_index(g, code),
              1);
}

void eg_metrics_validation_failure(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                                   const char *code)
{
    if (!g || !code) return;
    eg_mx_add(eg_mx_block(g, worker) + g->o_valid + route_index(g, route) * g->ncodes +
                  code_index(g, code),
              1);
}

void eg_metrics_idempotency(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                            eg_mx_idem_t what)
{
    if (!g || what >= EG_MX_IDEM_KINDS) return;
    eg_mx_add(eg_mx_block(g, worker) + g->o_idem + route_index(g, route) * EG_MX_IDEM_KINDS + what,
              1);
}

void eg_metrics_store(eg_metrics_gen_t *g, int worker, eg_mx_store_t store, eg_mx_op_t op,
                      uint64_t ns, int ok)
{
    if (!g || store >= EG_MX_STORES || op >= EG_MX_OPS) return;
    eg_mx_ctr_t *b = eg_mx_block(g, worker);
    size_t so = (size_t)store * EG_MX_OPS + op, k = 0;
    while (k < EG_MX_STORE_BUCKETS && (double)ns > store_bounds[k] * 1e9)
        k++;
    eg_mx_add(b + g->o_store + so * (EG_MX_STORE_BUCKETS + 1) + k, 1);
    eg_mx_add(b + g->o_store_sum + so, ns);
    if (!ok) eg_mx_add(b + g->o_store_fail + so, 1);
}

/* --- folding a generation into a snapshot --------------------------------- */

static const char *route_name(const eg_metrics_gen_t *g, size_t r)
{
    return r < g->nroutes - 1 ? g->cfg->routes[r].path : "(none)";
}

static const char *code_name(const eg_metrics_gen_t *g, size_t k)
{
    const eg_catalog_entry_t *e = k < g->ncodes - 1 ? eg_catalog_at(g->cfg->catalog, k) : NULL;
    return e ? e->code : "other";
}

/* The kind and policy labels of refusal policy p on route r; 0 when the
 * route has no such policy. */
static int policy_label(const eg_metrics_gen_t *g, size_t r, size_t p, const char **kind, char *buf,
                        size_t cap)
{
    const eg_config_t *cfg = g->cfg;
    size_t rl = max_route_limits(cfg), pl = g->npolicies - rl - 3 - 2 * cfg->nplans;
    size_t c = rl + pl, q = c + 1 + cfg->nplans;
    if (p < rl) {
        if (r >= cfg->nroutes || p >= cfg->routes[r].nlimits) return 0;
        *kind = refusal_names[EG_MX_REF_RATE];
        snprintf(buf, cap, "%s", cfg->routes[r].limits[p].name);
    } else if (p < c) {
        for (size_t k = 0; k < cfg->nplans; k++)
            if (p >= g->plan_base[k] && p < g->plan_base[k] + cfg->plans[k].nlimits) {
                *kind = refusal_names[EG_MX_REF_RATE];
                snprintf(buf, cap, "%s", cfg->plans[k].limits[p - g->plan_base[k]].name);
                return 1;
            }
        return 0;
    } else if (p < q) {
        *kind = refusal_names[EG_MX_REF_CONCURRENCY];
        if (p == c)
            snprintf(buf, cap, "route");
        else
            snprintf(buf, cap, "plan:%s", cfg->plans[p - c - 1].name);
    } else if (p < g->npolicies - 1) {
        *kind = refusal_names[EG_MX_REF_QUOTA];
        if (p == q)
            snprintf(buf, cap, "route");
        else
            snprintf(buf, cap, "plan:%s", cfg->plans[p - q - 1].name);
    } else {
        *kind = refusal_names[EG_MX_REF_CREDITS];
        snprintf(buf, cap, "credits");
    }
    return 1;
}

/* Adds the sums of g's blocks into s (caller holds the registry's lock). */
static void fold(eg_mx_snap_t *s, const eg_metrics_gen_t *g)
{
    size_t n = g->stride;
    uint64_t *sum = calloc(n, sizeof(*sum));
    if (!sum) {
        s->oom = 1;
        return;
    }
    for (int w = 0; w < g->nworkers; w++) {
        const eg_mx_ctr_t *b = eg_mx_block(g, w);
        for (size_t i = 0; i < n; i++)
            sum[i] += atomic_load_explicit(&b[i], memory_order_relaxed);
    }
    const eg_config_t *cfg = g->cfg;
    labs_t l;
    size_t R = g->nroutes, B = g->nbuckets + 1;
    for (size_t r = 0; r < R; r++) {
        const char *rn = route_name(g, r);
        const uint64_t *req = sum + g->o_requests + r * EG_MX_METHODS * EG_MX_STATUSES;
        for (size_t m = 0; m < EG_MX_METHODS; m++)
            for (size_t st = 0; st < EG_MX_STATUSES; st++) {
                uint64_t v = req[m * EG_MX_STATUSES + st];
                if (!v) continue;
                set_labs(&l, 3, rn, method_names[m], eg_mx_status_name((unsigned)st));
                snap_value(s, F_REQUESTS, &l, (double)v);
            }
        for (size_t k = 0; k < g->ncodes; k++) {
            uint64_t v = sum[g->o_errors + r * g->ncodes + k];
            uint64_t a = sum[g->o_auth + r * g->ncodes + k];
            uint64_t vf = sum[g->o_valid + r * g->ncodes + k];
            if (!v && !a && !vf) continue;
            set_labs(&l, 2, rn, code_name(g, k), NULL);
            if (v) snap_value(s, F_ERRORS, &l, (double)v);
            if (a) snap_value(s, F_AUTH, &l, (double)a);
            if (vf) snap_value(s, F_VALID, &l, (double)vf);
        }
        set_labs(&l, 1, rn, NULL, NULL);
        snap_hist(s, F_DUR, &l, sum + g->o_dur + r * B, g->nbuckets,
                  (double)sum[g->o_dur_sum + r] / 1e9);
        snap_hist(s, F_UP, &l, sum + g->o_up + r * B, g->nbuckets,
                  (double)sum[g->o_up_sum + r] / 1e9);
        for (size_t p = 0; p < g->npolicies; p++) {
            uint64_t v = sum[g->o_refusals + r * g->npolicies + p];
            char pname[200];
            const char *kind;
            if (!v || !policy_label(g, r, p, &kind, pname, sizeof(pname))) continue;
            set_labs(&l, 3, rn, kind, pname);
            snap_value(s, F_REFUSALS, &l, (double)v);
        }
        for (size_t k = 0; k < EG_MX_IDEM_KINDS; k++) {
            uint64_t v = sum[g->o_idem + r * EG_MX_IDEM_KINDS + k];
            if (!v) continue;
            set_labs(&l, 2, rn, idem_names[k], NULL);
            snap_value(s, F_IDEM, &l, (double)v);
        }
    }
    for (size_t u = 0; u < cfg->nupstreams; u++) {
        for (size_t sv = 0; sv < cfg->upstreams[u].nservers; sv++)
            for (size_t k = 0; k < EG_MX_UP_KINDS; k++) {
                uint64_t v = sum[g->o_upfail + (g->server_base[u] + sv) * EG_MX_UP_KINDS + k];
                if (!v) continue;
                set_labs(&l, 3, cfg->upstreams[u].name, cfg->upstreams[u].servers[sv].addr,
                         upfail_names[k]);
                snap_value(s, F_UPFAIL, &l, (double)v);
            }
        if (sum[g->o_retries + u]) {
            set_labs(&l, 1, cfg->upstreams[u].name, NULL, NULL);
            snap_value(s, F_RETRIES, &l, (double)sum[g->o_retries + u]);
        }
    }
    for (size_t st = 0; st < EG_MX_STORES; st++)
        for (size_t op = 0; op < EG_MX_OPS; op++) {
            size_t so = st * EG_MX_OPS + op;
            set_labs(&l, 2, store_names[st], op_names[op], NULL);
            snap_hist(s, F_STORE, &l, sum + g->o_store + so * (EG_MX_STORE_BUCKETS + 1),
                      EG_MX_STORE_BUCKETS, (double)sum[g->o_store_sum + so] / 1e9);
            if (sum[g->o_store_fail + so])
                snap_value(s, F_STORE_FAIL, &l, (double)sum[g->o_store_fail + so]);
        }
    set_labs(&l, 0, NULL, NULL, NULL);
    if (sum[g->o_conn_open]) snap_value(s, F_CONN, &l, (double)sum[g->o_conn_open]);
    if (sum[g->o_conn_close]) snap_value(s, F_CONN_CLOSED, &l, (double)sum[g->o_conn_close]);
    if (sum[g->o_tun_open]) snap_value(s, F_TUN, &l, (double)sum[g->o_tun_open]);
    if (sum[g->o_tun_close]) snap_value(s, F_TUN_CLOSED, &l, (double)sum[g->o_tun_close]);
    for (int d = 0; d < 2; d++) {
        if (!sum[g->o_tun_bytes + d]) continue;
        set_labs(&l, 1, d ? "from_upstream" : "from_client", NULL, NULL);
        snap_value(s, F_TUN_BYTES, &l, (double)sum[g->o_tun_bytes + d]);
    }
    free(sum);
}

void eg_metrics_gen_free(eg_metrics_gen_t *g)
{
    if (!g) return;
    eg_metrics_t *m = g->reg;
    pthread_mutex_lock(&m->lock);
    fold(m->archive, g);
    if (g->prev)
        g->prev->next = g->next;
    else
        m->live = g->next;
    if (g->next) g->next->prev = g->prev;
    pthread_mutex_unlock(&m->lock);
    free(g->blocks);
    free(g->codes);
    free(g->server_base);
    free(g->plan_base);
    free(g);
}

static eg_mx_snap_t *snap_new(const eg_metrics_t *m)
{
    eg_mx_snap_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->nbuckets = m->nbuckets;
    memcpy(s->bounds, m->bounds, sizeof(s->bounds));
    return s;
}

/* The value of one series, 0 when absent. */
static double snap_get(const eg_mx_snap_t *s, int fam, int kind, const labs_t *l)
{
    if (!s->icap) return 0;
    size_t h = series_hash(fam, kind, 0, l->buf, l->n) & (s->icap - 1);
    for (; s->idx[h]; h = (h + 1) & (s->icap - 1)) {
        const series_t *x = &s->s[s->idx[h] - 1];
        if (x->fam == fam && x->kind == kind && x->bucket == 0 && x->lablen == l->n &&
            memcmp(x->lab, l->buf, l->n) == 0)
            return x->v;
    }
    return 0;
}

eg_mx_snap_t *eg_metrics_snapshot(eg_metrics_t *m)
{
    eg_mx_snap_t *s = snap_new(m);
    if (!s) return NULL;
    labs_t l;
    set_labs(&l, 1, eg_version(), NULL, NULL);
    snap_value(s, F_BUILD, &l, 1);
    set_labs(&l, 0, NULL, NULL, NULL);
    snap_value(s, F_START, &l, m->start);
    snap_value(s, F_GEN, &l, (double)atomic_load(&m->generation));
    snap_value(s, F_RELOAD_TS, &l, (double)atomic_load(&m->loaded_ms) / 1000.0);
    set_labs(&l, 1, "success", NULL, NULL);
    snap_value(s, F_RELOADS, &l, (double)atomic_load(&m->reloads_ok));
    set_labs(&l, 1, "failure", NULL, NULL);
    snap_value(s, F_RELOADS, &l, (double)atomic_load(&m->reloads_failed));
    set_labs(&l, 0, NULL, NULL, NULL);
    snap_value(s, F_CONN_OPEN, &l, 0); /* set below, after the counters */
    snap_value(s, F_TUN_OPEN, &l, 0);
    pthread_mutex_lock(&m->lock);
    const eg_mx_snap_t *a = m->archive;
    for (size_t i = 0; i < a->n; i++)
        snap_add(s, a->s[i].fam, a->s[i].kind, a->s[i].bucket, a->s[i].lab, a->s[i].lablen,
                 a->s[i].v);
    for (const eg_metrics_gen_t *g = m->live; g; g = g->next)
        fold(s, g);
    pthread_mutex_unlock(&m->lock);
    double open = snap_get(s, F_CONN, K_VALUE, &l) - snap_get(s, F_CONN_CLOSED, K_VALUE, &l);
    snap_add(s, F_CONN_OPEN, K_VALUE, 0, l.buf, l.n, open > 0 ? open : 0);
    double tunnels = snap_get(s, F_TUN, K_VALUE, &l) - snap_get(s, F_TUN_CLOSED, K_VALUE, &l);
    snap_add(s, F_TUN_OPEN, K_VALUE, 0, l.buf, l.n, tunnels > 0 ? tunnels : 0);
    if (s->oom) {
        eg_mx_snap_free(s);
        return NULL;
    }
    return s;
}

int eg_mx_snap_server(eg_mx_snap_t *s, const char *upstream, const char *server, int up, int fails)
{
    labs_t l;
    set_labs(&l, 2, upstream, server, NULL);
    snap_value(s, F_SERVER_UP, &l, up ? 1 : 0);
    snap_value(s, F_SERVER_FAILS, &l, fails);
    return s->oom ? EG_ENOMEM : EG_OK;
}

double eg_mx_snap_value(const eg_mx_snap_t *s, const char *name, const char *const *lv, size_t nl)
{
    int kind = K_VALUE;
    for (int f = 0; f < NFAMILIES; f++) {
        const family_t *fm = &families[f];
        size_t fl = strlen(fm->name), n = strlen(name);
        if (strncmp(name, fm->name, fl) != 0) continue;
        const char *rest = name + fl;
        if (fm->type == T_COUNTER && strcmp(rest, "_total") == 0)
            kind = K_VALUE;
        else if (fm->type == T_GAUGE && !*rest)
            kind = K_VALUE;
        else if (fm->type == T_HIST && strcmp(rest, "_count") == 0)
            kind = K_COUNT;
        else if (fm->type == T_HIST && strcmp(rest, "_sum") == 0)
            kind = K_SUM;
        else
            continue;
        (void)n;
        if ((int)nl != fm->nlabels) return -1;
        labs_t l;
        set_labs(&l, (int)nl, nl > 0 ? lv[0] : NULL, nl > 1 ? lv[1] : NULL, nl > 2 ? lv[2] : NULL);
        if (!s->icap) return -1;
        size_t h = series_hash(f, kind, 0, l.buf, l.n) & (s->icap - 1);
        for (; s->idx[h]; h = (h + 1) & (s->icap - 1)) {
            const series_t *x = &s->s[s->idx[h] - 1];
            if (x->fam == f && x->kind == kind && x->bucket == 0 && x->lablen == l.n &&
                memcmp(x->lab, l.buf, l.n) == 0)
                return x->v;
        }
        return -1;
    }
    return -1;
}

/* --- rendering ------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->oom) return;
    if (o->n + n + 1 > o->cap) {
        size_t ncap = o->cap ? o->cap : 4096;
        while (o->n + n + 1 > ncap)
            ncap *= 2;
        char *p = realloc(o->p, ncap);
        if (!p) {
            o->oom = 1;
            return;
        }
        o->p = p;
        o->cap = ncap;
    }
    memcpy(o->p + o->n, s, n);
    o->n += n;
    o->p[o->n] = '\0';
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A label value with \, " and newline escaped (both formats). */
static void put_label_value(out_t *o, const char *v, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = v[i] == '\\'   ? "\\\\"
                          : v[i] == '"'  ? "\\\""
                          : v[i] == '\n' ? "\\n"
                                         : NULL;
        if (!esc) continue;
        put(o, v + from, i - from);
        puts_(o, esc);
        from = i + 1;
    }
    put(o, v + from, n - from);
}

/* The shortest of %.15g..%.17g that reads back as v (0.005, not
 * 0.0050000000000000001); integers as such. */
static void fmt_num(char *b, size_t cap, double v)
{
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v) {
        snprintf(b, cap, "%.0f", v);
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, cap, "%.*g", prec, v);
        if (strtod(b, NULL) == v) return;
    }
}

/* Most values are counts: written by hand, not by snprintf (a 100-route
 * scrape has thousands of them). */
static void put_num(out_t *o, double v)
{
    char b[64];
    if (v >= 0 && v < 1e19 && v == (double)(uint64_t)v) {
        uint64_t u = (uint64_t)v;
        size_t k = sizeof(b);
        do {
            b[--k] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        put(o, b + k, sizeof(b) - k);
        return;
    }
    fmt_num(b, sizeof(b), v);
    puts_(o, b);
}

/* The le values of both kinds of histogram, spelled once a render. */
typedef struct {
    char req[EG_MX_BUCKETS_MAX + 1][40];
    char store[EG_MX_STORE_BUCKETS + 1][40];
} bounds_text_t;

static void bound_text(char *t, size_t cap, double v, int om)
{
    fmt_num(t, cap, v);
    /* OpenMetrics wants a float spelled with a dot or exponent ("1.0") */
    if (om && !strpbrk(t, ".eE")) strcat(t, ".0");
}

static void bounds_text(bounds_text_t *bt, const eg_mx_snap_t *s, int om)
{
    for (size_t i = 0; i < s->nbuckets; i++)
        bound_text(bt->req[i], sizeof(bt->req[i]), s->bounds[i], om);
    strcpy(bt->req[s->nbuckets], "+Inf");
    for (size_t i = 0; i < EG_MX_STORE_BUCKETS; i++)
        bound_text(bt->store[i], sizeof(bt->store[i]), store_bounds[i], om);
    strcpy(bt->store[EG_MX_STORE_BUCKETS], "+Inf");
}

static void put_labels(out_t *o, const family_t *fm, const series_t *x, const bounds_text_t *bt)
{
    int any = fm->nlabels > 0 || x->kind == K_BUCKET;
    if (!any) return;
    puts_(o, "{");
    const char *v = x->lab;
    for (int i = 0; i < fm->nlabels; i++) {
        size_t len = strlen(v);
        if (i) puts_(o, ",");
        puts_(o, fm->labels[i]);
        puts_(o, "=\"");
        put_label_value(o, v, len);
        puts_(o, "\"");
        v += len + 1;
    }
    if (x->kind == K_BUCKET) {
        puts_(o, fm->nlabels ? ",le=\"" : "le=\"");
        size_t nb = fm->store_bounds ? EG_MX_STORE_BUCKETS : EG_MX_BUCKETS_MAX;
        size_t b = x->bucket <= nb ? x->bucket : nb;
        puts_(o, fm->store_bounds ? bt->store[b] : bt->req[b]);
        puts_(o, "\"");
    }
    puts_(o, "}");
}

/* The series of a snapshot, family by family, each in the order it was
 * first counted. */
static size_t *by_family(const eg_mx_snap_t *s, size_t start[NFAMILIES + 1])
{
    size_t *ord = malloc((s->n ? s->n : 1) * sizeof(*ord));
    if (!ord) return NULL;
    memset(start, 0, (NFAMILIES + 1) * sizeof(size_t));
    for (size_t i = 0; i < s->n; i++)
        start[s->s[i].fam + 1]++;
    for (int f = 0; f < NFAMILIES; f++)
        start[f + 1] += start[f];
    size_t fill[NFAMILIES];
    memcpy(fill, start, sizeof(fill));
    for (size_t i = 0; i < s->n; i++)
        ord[fill[s->s[i].fam]++] = i;
    return ord;
}

static char *render_text(const eg_mx_snap_t *s, int om, size_t *len)
{
    size_t start[NFAMILIES + 1];
    size_t *ord = by_family(s, start);
    if (!ord) return NULL;
    out_t o = {0};
    bounds_text_t bt;
    bounds_text(&bt, s, om);
    for (int f = 0; f < NFAMILIES; f++) {
        const family_t *fm = &families[f];
        if (start[f] == start[f + 1]) continue;
        const char *type = fm->type == T_COUNTER ? "counter"
                           : fm->type == T_GAUGE ? "gauge"
                                                 : "histogram";
        const char *suffix = fm->type == T_COUNTER && !om ? "_total" : "";
        puts_(&o, "# HELP ");
        puts_(&o, fm->name);
        puts_(&o, suffix);
        puts_(&o, " ");
        puts_(&o, fm->help);
        puts_(&o, "\n# TYPE ");
        puts_(&o, fm->name);
        puts_(&o, suffix);
        puts_(&o, " ");
        puts_(&o, type);
        puts_(&o, "\n");
        for (size_t k = start[f]; k < start[f + 1]; k++) {
            const series_t *x = &s->s[ord[k]];
            puts_(&o, fm->name);
            puts_(&o, fm->type == T_COUNTER ? "_total"
                      : x->kind == K_BUCKET ? "_bucket"
                      : x->kind == K_SUM    ? "_sum"
                      : x->kind == K_COUNT  ? "_count"
                                            : "");
            put_labels(&o, fm, x, &bt);
            puts_(&o, " ");
            put_num(&o, x->v);
            puts_(&o, "\n");
        }
    }
    if (om) puts_(&o, "# EOF\n");
    free(ord);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.n;
    return o.p;
}

static json_t *labels_json(const family_t *fm, const series_t *x)
{
    json_t *l = json_object();
    const char *v = x->lab;
    for (int i = 0; i < fm->nlabels; i++) {
        json_object_set_new(l, fm->labels[i], json_string(v));
        v += strlen(v) + 1;
    }
    return l;
}

json_t *eg_mx_snap_json(const eg_mx_snap_t *s)
{
    size_t start[NFAMILIES + 1];
    size_t *ord = by_family(s, start);
    if (!ord) return NULL;
    json_t *fams = json_object();
    for (int f = 0; f < NFAMILIES; f++) {
        const family_t *fm = &families[f];
        json_t *fam = json_object(), *names = json_array(), *series = json_array();
        char name[128];
        snprintf(name, sizeof(name), "%s%s", fm->name, fm->type == T_COUNTER ? "_total" : "");
        json_object_set_new(fam, "type",
                            json_string(fm->type == T_COUNTER ? "counter"
                                        : fm->type == T_GAUGE ? "gauge"
                                                              : "histogram"));
        json_object_set_new(fam, "help", json_string(fm->help));
        for (int i = 0; i < fm->nlabels; i++)
            json_array_append_new(names, json_string(fm->labels[i]));
        json_object_set_new(fam, "labels", names);
        if (fm->type == T_HIST) {
            json_t *b = json_array();
            size_t nb = fm->store_bounds ? EG_MX_STORE_BUCKETS : s->nbuckets;
            for (size_t i = 0; i < nb; i++)
                json_array_append_new(b,
                                      json_real(fm->store_bounds ? store_bounds[i] : s->bounds[i]));
            json_object_set_new(fam, "buckets", b);
        }
        json_t *cur = NULL, *counts = NULL;
        for (size_t k = start[f]; k < start[f + 1]; k++) {
            const series_t *x = &s->s[ord[k]];
            if (fm->type != T_HIST) {
                json_array_append_new(
                    series, json_pack("{s:o, s:f}", "labels", labels_json(fm, x), "value", x->v));
                continue;
            }
            /* a histogram's buckets, sum and count follow each other */
            if (x->kind == K_BUCKET && x->bucket == 0) {
                cur = json_pack("{s:o}", "labels", labels_json(fm, x));
                counts = json_array();
                json_object_set_new(cur, "counts", counts);
                json_array_append_new(series, cur);
            }
            if (!cur) continue;
            if (x->kind == K_BUCKET)
                json_array_append_new(counts, json_integer((json_int_t)x->v));
            else if (x->kind == K_SUM)
                json_object_set_new(cur, "sum", json_real(x->v));
            else if (x->kind == K_COUNT)
                json_object_set_new(cur, "count", json_integer((json_int_t)x->v));
        }
        json_object_set_new(fam, "series", series);
        json_object_set_new(fams, name, fam);
    }
    free(ord);
    return json_pack("{s:i, s:f, s:o}", "format", 1, "time", wall_now(), "metrics", fams);
}

char *eg_mx_snap_render(const eg_mx_snap_t *s, eg_mx_format_t f, size_t *len)
{
    if (f != EG_MX_JSON) return render_text(s, f == EG_MX_OPENMETRICS, len);
    json_t *doc = eg_mx_snap_json(s);
    char *body = doc ? json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body) *len = strlen(body);
    return body;
}

const char *eg_mx_content_type(eg_mx_format_t f)
{
    return f == EG_MX_OPENMETRICS ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
           : f == EG_MX_JSON      ? "application/json"
                                  : "text/plain; version=0.0.4; charset=utf-8";
}

eg_mx_format_t eg_mx_negotiate(const char *accept, size_t n)
{
    static const char om[] = "application/openmetrics-text";
    for (size_t i = 0; accept && i + sizeof(om) - 1 <= n; i++)
        if (strncasecmp(accept + i, om, sizeof(om) - 1) == 0) return EG_MX_OPENMETRICS;
    return EG_MX_TEXT;
}

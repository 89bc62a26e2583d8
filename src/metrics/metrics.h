/* metrics.h - the gateway's counters: per-worker blocks, summed on scrape.
 *
 * Who writes, who reads:
 *  - Workers count into a block of their own: one array of 64-bit counters
 *    per worker, each block starting on its own cache line and padded to a
 *    whole number of them, so no two workers ever write the same line and
 *    no counter takes a lock or a locked instruction. A worker adds with a
 *    relaxed load and a relaxed store (eg_mx_add): on x86-64 and arm64 that
 *    is a plain load, add and store; the atomics only make the reads of
 *    another thread defined.
 *  - A scrape (the admin thread) sums the blocks with relaxed loads. It may
 *    see a counter a few increments behind, never a torn value, and every
 *    counter only grows.
 *
 * Label sets are bounded by the configuration and the catalog, nothing a
 * client sends: route (the configured path, "(none)" before one matched),
 * method class (8), status (57 classes: the common codes, and "4xx"-style
 * buckets for the rest), error code (the catalog's, else "other"), upstream
 * and server (configured), policy (configured), store and operation
 * (fixed). Blocks are laid out at load from the configuration, one layout
 * per configuration generation (eg_metrics_gen_t, held by the gateway's
 * eg_gw_t): a request counts into the generation it started under. When a
 * generation is freed (a reload, and its last request ended), its sums are
 * folded into the registry's archive keyed by label values, so counters
 * survive reloads: a route that stays keeps counting from where it was.
 *
 * A scrape is a snapshot (eg_mx_snap_t): the archive plus every live
 * generation, as series keyed by family and label values, in a stable
 * order. It renders as Prometheus text 0.0.4, OpenMetrics 1.0, or JSON
 * (eg_mx_snap_json: the same numbers, for the dashboard and the alert
 * monitor; its shape is in docs/metrics.md). The registry adds what it
 * keeps (build, start time, configuration generation and reloads); the
 * server adds the gauges it owns (each upstream server's state) before
 * rendering.
 *
 * Every family, label and bound is listed in docs/metrics.md.
 */
#ifndef EG_METRICS_H
#define EG_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config.h"

typedef _Atomic uint64_t eg_mx_ctr_t;

/* Adds v to a counter of the caller's own block (single writer). */
static inline void eg_mx_add(eg_mx_ctr_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* --- dimensions ---------------------------------------------------------- */

#define EG_MX_METHODS     8  /* GET HEAD POST PUT PATCH DELETE OPTIONS other */
#define EG_MX_STATUSES    57 /* see eg_mx_status */
#define EG_MX_BUCKETS_MAX 32
#define EG_MX_SERVERS_MAX 4096

/* Upstream failures, as proxy.c tells them apart. */
typedef enum {
    EG_MX_UP_CONNECT = 0, /* refused, unreachable */
    EG_MX_UP_CONNECT_TIMEOUT,
    EG_MX_UP_TIMEOUT, /* the response (head, body, total) did not come in time */
    EG_MX_UP_RESET,   /* reset or closed before the response head */
    EG_MX_UP_STALE,   /* a pooled connection the server had closed (retried) */
    EG_MX_UP_INVALID, /* a response that is not valid HTTP */
    EG_MX_UP_CUT,     /* the response ended before its framing said */
    EG_MX_UP_KINDS
} eg_mx_upfail_t;

/* Traffic refusals (the traffic stage). */
typedef enum {
    EG_MX_REF_RATE = 0,
    EG_MX_REF_CONCURRENCY,
    EG_MX_REF_QUOTA,
    EG_MX_REF_CREDITS,
    EG_MX_REF_KINDS
} eg_mx_refusal_t;

/* Idempotency outcomes (the idempotency stage). */
typedef enum {
    EG_MX_IDEM_STORED = 0, /* a response kept for replay */
    EG_MX_IDEM_REPLAYED,   /* answered from a kept response */
    EG_MX_IDEM_CONFLICT,   /* 409: the same key in flight */
    EG_MX_IDEM_MISMATCH,   /* 422: the same key with another request */
    EG_MX_IDEM_MISSING,    /* 400: required and absent */
    EG_MX_IDEM_KINDS
} eg_mx_idem_t;

/* Store operations timed (the traffic and idempotency stages). */
typedef enum { EG_MX_STORE_SQLITE = 0, EG_MX_STORE_REDIS, EG_MX_STORES } eg_mx_store_t;
typedef enum { EG_MX_OP_TRAFFIC = 0, EG_MX_OP_IDEMPOTENCY, EG_MX_OPS } eg_mx_op_t;
#define EG_MX_STORE_BUCKETS 10 /* 0.5 ms .. 1 s, fixed */

/* The method class of an EG_M_* bit: 0..6 for GET..OPTIONS, 7 for others. */
static inline unsigned eg_mx_method(unsigned method_bit)
{
    if (method_bit == 0 || method_bit > (1u << 6)) return 7;
    return (unsigned)__builtin_ctz(method_bit);
}

/* The status index: a common code has its own, any other falls in its
 * class ("4xx"); 0 (no response: the client left) counts as 499. */
extern const uint8_t eg_mx_status_tab[500];
static inline unsigned eg_mx_status(int status)
{
    if (status == 0) status = 499;
    if (status < 100 || status > 599) return 4; /* "5xx": not a status a proxy should see */
    unsigned i = eg_mx_status_tab[status - 100];
    return i ? i : (unsigned)(status / 100 - 1);
}
/* The label value of a status index ("200", "4xx"). */
const char *eg_mx_status_name(unsigned i);

/* --- the registry and generations ---------------------------------------- */

typedef struct eg_metrics_s eg_metrics_t;

/* One configuration's layout and the workers' blocks (read-only layout,
 * blocks written by their workers). */
typedef struct eg_metrics_gen_s {
    eg_metrics_t *reg;
    const eg_config_t *cfg; /* the gateway's; outlives the generation */
    size_t nroutes;         /* cfg->nroutes + 1: the last is "(none)" */
    size_t ncodes;          /* catalog codes + 1: the last is "other" */
    const eg_catalog_entry_t *code0; /* the catalog's first entry (error counters' index 0) */
    size_t npolicies;       /* refusal policies per route (see metrics.c) */
    size_t nservers;        /* every upstream's servers, flattened */
    size_t *server_base;    /* per upstream: its first server's flat index */
    size_t *plan_base;      /* per plan: its first rate limit's policy index */
    size_t nbuckets;        /* request/upstream duration bounds (+Inf not counted) */
    uint64_t bounds_ns[EG_MX_BUCKETS_MAX];
    /* offsets of each family in a block, in counters */
    size_t o_requests, o_errors, o_auth, o_valid, o_dur, o_dur_sum, o_up, o_up_sum, o_refusals, o_idem,
        o_upfail, o_store, o_store_sum, o_store_fail, o_conn_open, o_conn_close, o_retries, o_tun_open,
        o_tun_close, o_tun_bytes;
    size_t stride; /* counters per worker block (a multiple of 8: 64 bytes) */
    int nworkers;
    eg_mx_ctr_t *blocks;             /* nworkers * stride, 64-byte aligned */
    struct eg_mx_codecache_s *codes; /* per worker: error codes as spelled -> index (metrics.c) */
    struct eg_metrics_gen_s *prev, *next; /* the registry's live generations */
} eg_metrics_gen_t;

/* nworkers blocks per generation; bounds (seconds, ascending, n <=
 * EG_MX_BUCKETS_MAX) fixed for the registry's life (metrics.buckets takes
 * effect on restart: changing them under live series would break the
 * histograms). */
int eg_metrics_new(int nworkers, const double *bounds, size_t nbounds, eg_metrics_t **out);
/* Frees the registry; every generation must be freed before. */
void eg_metrics_free(eg_metrics_t *m);

/* The layout of cfg's counters, its blocks zeroed, registered as live. */
int eg_metrics_gen_new(eg_metrics_t *m, const eg_config_t *cfg, eg_metrics_gen_t **out);
/* Folds the generation's sums into the archive and frees it (any thread;
 * takes the registry's lock). NULL is a no-op. */
void eg_metrics_gen_free(eg_metrics_gen_t *g);

static inline eg_mx_ctr_t *eg_mx_block(const eg_metrics_gen_t *g, int worker)
{
    return g->blocks + (size_t)worker * g->stride;
}

/* --- recording (a worker, into its own block) ---------------------------- */

/* One request, once, when it ends (proxy.c's log point). route: index into
 * cfg->routes, or -1 for none; code: X-Error-Code as the dialect spelled
 * it, or NULL/""; up_ns: first upstream attempt to the response's end, 0
 * when no upstream answered. */
typedef struct {
    long route;
    unsigned method_bit;
    int status;
    const char *code;
    const eg_catalog_entry_t
        *entry; /* code's entry in the generation's catalog, NULL: look it up */
    uint64_t dur_ns;
    uint64_t up_ns;
} eg_mx_request_t;

/* The error counter of a request with a code (metrics.c): r is the route's
 * index as eg_metrics_request clamps it. */
void eg_mx_request_error(eg_metrics_gen_t *g, int worker, size_t r, const char *code,
                         const eg_catalog_entry_t *entry);

static inline size_t eg_mx_bucket(const eg_metrics_gen_t *g, uint64_t ns)
{
    size_t b = 0;
    while (b < g->nbuckets && ns > g->bounds_ns[b])
        b++;
    return b;
}

/* Inline: every request ends here, and the call with its eg_mx_request_t
 * cost a third of the counting (callgrind); errors go out of line. */
static inline void eg_metrics_request(eg_metrics_gen_t *g, int worker, const eg_mx_request_t *q)
{
    eg_mx_ctr_t *b = eg_mx_block(g, worker);
    size_t r =
        q->route >= 0 && (size_t)q->route < g->nroutes - 1 ? (size_t)q->route : g->nroutes - 1;
    size_t B = g->nbuckets + 1;
    eg_mx_add(b + g->o_requests +
                  (r * EG_MX_METHODS + eg_mx_method(q->method_bit)) * EG_MX_STATUSES +
                  eg_mx_status(q->status),
              1);
    eg_mx_add(b + g->o_dur + r * B + eg_mx_bucket(g, q->dur_ns), 1);
    eg_mx_add(b + g->o_dur_sum + r, q->dur_ns);
    if (q->up_ns) {
        eg_mx_add(b + g->o_up + r * B + eg_mx_bucket(g, q->up_ns), 1);
        eg_mx_add(b + g->o_up_sum + r, q->up_ns);
    }
    if (q->code && q->code[0]) eg_mx_request_error(g, worker, r, q->code, q->entry);
}

static inline void eg_metrics_upstream_failure(eg_metrics_gen_t *g, int worker, size_t upstream,
                                               size_t server, eg_mx_upfail_t kind)
{
    if (!g || upstream >= g->cfg->nupstreams) return;
    size_t s = g->server_base[upstream] + server;
    if (s >= g->nservers) return;
    eg_mx_add(eg_mx_block(g, worker) + g->o_upfail + s * EG_MX_UP_KINDS + kind, 1);
}
/* Another upstream attempt for a request (a retry on another server). */
static inline void eg_metrics_upstream_retry(eg_metrics_gen_t *g, int worker, size_t upstream)
{
    if (g && upstream < g->cfg->nupstreams)
        eg_mx_add(eg_mx_block(g, worker) + g->o_retries + upstream, 1);
}
static inline void eg_metrics_connection(eg_metrics_gen_t *g, int worker, int opened)
{
    if (g) eg_mx_add(eg_mx_block(g, worker) + (opened ? g->o_conn_open : g->o_conn_close), 1);
}
/* A tunnel (tunnel.c) started, or ended with the bytes it carried each way. */
static inline void eg_metrics_tunnel(eg_metrics_gen_t *g, int worker, int opened, uint64_t from_client,
                                     uint64_t from_upstream)
{
    if (!g) return;
    eg_mx_ctr_t *b = eg_mx_block(g, worker);
    eg_mx_add(b + (opened ? g->o_tun_open : g->o_tun_close), 1);
    if (from_client) eg_mx_add(b + g->o_tun_bytes, from_client);
    if (from_upstream) eg_mx_add(b + g->o_tun_bytes + 1, from_upstream);
}
/* A refusal by the traffic stage. policy: for EG_MX_REF_RATE the limit
 * (in route->limits or a plan's limits); plan: the plan whose limit,
 * concurrency or quota refused (NULL: the route's). */
void eg_metrics_refusal(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                        eg_mx_refusal_t kind, const eg_rate_limit_cfg_t *limit,
                        const eg_plan_cfg_t *plan);
/* An authentication or authorization refusal by the access stage. */
void eg_metrics_auth_failure(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                             const char *code);
/* A request the validation stage refused, by the code it answered. */
void eg_metrics_validation_failure(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                                   const char *code);
void eg_metrics_idempotency(eg_metrics_gen_t *g, int worker, const eg_route_cfg_t *route,
                            eg_mx_idem_t what);
/* A store or Redis operation and how long it took; ok 0: it failed. */
void eg_metrics_store(eg_metrics_gen_t *g, int worker, eg_mx_store_t store, eg_mx_op_t op,
                      uint64_t ns, int ok);

/* 1 when bounds differ from the registry's (a reload that changed
 * metrics.buckets, which take effect on restart). */
int eg_metrics_bounds_differ(const eg_metrics_t *m, const double *bounds, size_t n);
/* Configuration reloads (the main thread). */
void eg_metrics_reload(eg_metrics_t *m, int ok, uint64_t generation, double when);

/* --- snapshots ----------------------------------------------------------- */

typedef struct eg_mx_snap_s eg_mx_snap_t;
typedef enum { EG_MX_TEXT = 0, EG_MX_OPENMETRICS, EG_MX_JSON } eg_mx_format_t;

/* The counters now: the archive and every live generation. NULL on OOM. */
eg_mx_snap_t *eg_metrics_snapshot(eg_metrics_t *m);
void eg_mx_snap_free(eg_mx_snap_t *s);
/* A gauge the server owns: an upstream server's state (up 1/0) and its
 * consecutive failures. */
int eg_mx_snap_server(eg_mx_snap_t *s, const char *upstream, const char *server, int up, int fails);
/* The formats: a malloc'd body and its length (NULL on OOM), and its
 * Content-Type. */
char *eg_mx_snap_render(const eg_mx_snap_t *s, eg_mx_format_t f, size_t *len);
const char *eg_mx_content_type(eg_mx_format_t f);
/* The snapshot as JSON (docs/metrics.md), a new reference. */
json_t *eg_mx_snap_json(const eg_mx_snap_t *s);
/* Which format an Accept header asks for (NULL: none): OpenMetrics when
 * it names application/openmetrics-text, else text. */
eg_mx_format_t eg_mx_negotiate(const char *accept, size_t n);

/* The sum over every worker and generation of one series, for tests and
 * the monitor: family name and label values in the family's order
 * ("route","method","status"...); -1 when absent. */
double eg_mx_snap_value(const eg_mx_snap_t *s, const char *name, const char *const *labels,
                        size_t nlabels);

#endif

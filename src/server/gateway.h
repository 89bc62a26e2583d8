/* gateway.h - the runtime of `errgate serve` (private to src/).
 *
 * Threads: the main thread owns the configuration, signals and the admin
 * listener; N worker threads each run their own libuv loop with their own
 * SO_REUSEPORT listener, connections and upstream connection pool, so the
 * request path never takes a lock. The active configuration is an
 * immutable, reference-counted eg_gw_t: a request holds a reference from its
 * first byte to its log line, and SIGHUP swaps in a new one without
 * disturbing requests in flight. Upstream server health is the only state
 * shared between workers, and it is atomics.
 */
#ifndef EG_GATEWAY_H
#define EG_GATEWAY_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "config.h"
#include "errgate/http1.h"
#include "log.h"

/* A server is in rotation when neither kind of check has it out: the
 * passive one (max_fails failures of real requests, out for fail_timeout)
 * and the active one (fall failed probes, out until rise probes pass). */
typedef struct {
    atomic_int fails;            /* consecutive failures */
    atomic_llong down_until_ms;  /* marked down until this time (uv_hrtime ms), 0 = up */
    atomic_int active_down;      /* out of rotation by the active checks (hcheck.c) */
    atomic_int inflight;         /* requests at this server now, all workers (counted for least_conn only) */
    /* the active checks' state, on the main loop only (hcheck.c, /ready) */
    int hc_ok, hc_fail;          /* consecutive passed and failed probes */
    int hc_busy;                 /* a probe is in flight */
    int hc_checked;              /* at least one probe finished */
    uint64_t hc_next_ms;         /* when the next probe is due */
    char hc_last[96];            /* the last probe's outcome, for /ready */
} eg_server_health_t;

/* Which pipeline stages run, bit i for stage i (h2o's binding: decided once
 * at load, not asked of every request; stages/pipeline.c). */
typedef struct {
    uint32_t unrouted; /* for every request until it has a route */
    uint32_t done;     /* the stages with an on_done hook */
    uint32_t bytes;    /* the stages with an on_response_bytes hook */
    uint32_t *routes;  /* per route of cfg: the stages its requests pass */
} eg_pipeline_masks_t;

/* One loaded configuration and everything derived from it. */
typedef struct eg_gw_s {
    atomic_int refs;
    eg_config_t *cfg;
    eg_router_t *router;
    eg_server_health_t **health; /* [upstream][server] */
    atomic_uint *rr;             /* round-robin cursor per upstream */
    uint64_t generation;
    /* the 404 for an unknown route, one template per dialect of cfg->dialects
     * (NULL where none could be made: respond.h) */
    struct eg_notfound_s **notfound;
    const eg_dialect_t **notfound_dialect;
    size_t nnotfound;
    eg_pipeline_masks_t stages;
    struct eg_metrics_gen_s *metrics; /* this configuration's counters; NULL when metrics are off */
    struct eg_alert_counts_s *alert_counts; /* per-worker counts for the monitor (alerts.h), NULL = off */
    /* TLS contexts made from cfg (tls.h): per listener (NULL: plain), per
     * upstream (NULL: plain http); a reload makes new ones, connections
     * keep theirs (OpenSSL counts the references) */
    struct eg_tls_server_s **tls_listen;
    struct ssl_ctx_st **tls_up;
    char ***tls_keys; /* [upstream][server]: an https server's pool key, "tls/NAME/ADDR" */
} eg_gw_t;

eg_gw_t *eg_gw_ref(eg_gw_t *gw);
void eg_gw_unref(eg_gw_t *gw);

typedef struct eg_server_s eg_server_t;
typedef struct eg_worker_s eg_worker_t;

/* Returns the active configuration with a reference the caller must drop. */
eg_gw_t *eg_server_current(eg_server_t *srv);
/* The configuration for a connection's next request, given the one it
 * holds (a reference): gw itself while no reload replaced it (one atomic
 * load: no lock, no reference counting per request), else the active one,
 * gw's reference dropped. */
eg_gw_t *eg_server_renew(eg_server_t *srv, eg_gw_t *gw);
eg_log_t *eg_server_access_log(eg_server_t *srv);
eg_log_t *eg_server_error_log(eg_server_t *srv);
/* Seconds added to the wall clock for rate limits and quota periods
 * (ERRGATE_CLOCK_OFFSET at start; tests use it to cross a period boundary). */
long long eg_server_clock_offset(const eg_server_t *srv);
/* The store (quotas, credits, keys); NULL when nothing needs one. */
struct eg_store_s *eg_server_store(eg_server_t *srv);
/* Rate-limit and concurrency state shared by the workers (limiter.h). */
struct eg_limiter_s *eg_server_limiter(eg_server_t *srv);
/* Usage totals (metering/usage.h), NULL when no route meters to SQLite. */
struct eg_usage_s *eg_server_usage(eg_server_t *srv);
/* The PostgreSQL sink (metering.sink, metering/pg_sink.h); NULL when not set.
 * Whatever commits usage outside eg_usage_t (the metering API) pushes its
 * committed events to it with eg_pg_sink_push. */
struct eg_pg_sink_s *eg_server_pg_sink(eg_server_t *srv);
/* Idempotency-Key entries (idem_store.h); NULL when no route used them at start. */
struct eg_idem_store_s *eg_server_idem_store(eg_server_t *srv);
/* Where the metering API records events (meter_store.h); NULL when
 * metering.path was not configured at start. */
struct eg_meter_store_s *eg_server_meter_store(eg_server_t *srv);
/* The counters' registry (metrics.h); NULL when metrics are off. */
struct eg_metrics_s *eg_server_metrics(eg_server_t *srv);
/* Whether the server is draining (SIGTERM), for /health. */
int eg_server_stopping(const eg_server_t *srv);
/* /health's document (server.c): *serve 0 when draining or unable to serve,
 * with *retry_after seconds. A new jansson reference. */
struct json_t *eg_server_health(eg_server_t *srv, int *serve, long long *retry_after);
/* The API keys (NULL when no route takes keys and no admin token is set). */
struct eg_keyring_s *eg_server_keyring(eg_server_t *srv);

/* Worker: the loop, the pool, the connection count, randomness. */
struct eg_worker_s {
    uv_loop_t loop;
    uv_async_t wake;
    uv_thread_t thread;
    int id;
    int draining;
    size_t nconns;
    size_t max_conns;
    eg_server_t *srv;
    void *idle;  /* idle upstream connections (proxy.c) */
    void *wcache[4]; /* free write buffers of the common size (proxy.c) */
    int nwcache;
    void *conns; /* client connections (proxy.c) */
    void *tunnels; /* upgraded connections and their buffers (tunnel.c), NULL when none */
    void *h2_spare; /* HTTP/2 streams' connections kept for the next streams (proxy.c) */
    int nh2_spare;
    time_t ts_sec;     /* second of the cached timestamp and date */
    char ts[24];       /* RFC 3339 UTC for ts_sec: error timestamps cost no strftime */
    char date[EG_HTTP1_DATE_LEN + 1]; /* IMF-fixdate for ts_sec, the Date header (eg_http1_date) */
    struct eg_apikey_hasher_s *hasher; /* API key hashing for this thread (keyring.h) */
    struct eg_jwt_mac_s *jwt_mac;      /* HS256 checks for this thread (jwt.h), made on first use */
    struct eg_redis_link_s *redis_link; /* this worker's Redis connection and its state (redis_link.h) */
    char *tls_in; /* ciphertext as read, before OpenSSL takes it (proxy.c), made on first use */
    unsigned char rnd[4096];
    size_t rnd_used;
    uint64_t requests;
    int logs_on; /* the access or the error log is on: messages are kept for their lines */
};

/* Refills the worker's buffer of random bytes (getrandom). */
void eg_worker_random_refill(eg_worker_t *w);
/* Fills out with n (<= 4096) random bytes from the worker's buffer. Inline:
 * every request takes 16 (its id) and a proxied one 24 more (traceparent),
 * and with n a constant the copy is two or three moves, not a call. */
static inline void eg_worker_random(eg_worker_t *w, unsigned char *out, size_t n)
{
    if (w->rnd_used + n > sizeof(w->rnd)) eg_worker_random_refill(w);
    memcpy(out, w->rnd + w->rnd_used, n);
    w->rnd_used += n;
}

/* proxy.c: a client connection the worker's listener accepted (server.c).
 * Returns 0 when the connection took fd, a negative EG_E* code when it did
 * not (the caller still owns fd and closes it). */
int eg_proxy_on_connection(eg_worker_t *w, int fd, size_t listener);
/* proxy.c: begin draining: idle connections are closed, busy ones after their response. */
void eg_proxy_drain(eg_worker_t *w);
/* proxy.c: closes every pooled upstream connection of the worker. */
void eg_proxy_close_pool(eg_worker_t *w);

/* Server health, shared by workers. */
/* Out of rotation: passively marked down, or failing its active checks. */
int eg_health_is_down(const eg_server_health_t *h, uint64_t now_ms);
void eg_health_failure(eg_server_health_t *h, const eg_upstream_cfg_t *u, uint64_t now_ms);
void eg_health_success(eg_server_health_t *h);

uint64_t eg_now_ms(void);

#endif

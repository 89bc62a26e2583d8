/* server.c - `errgate serve`: threads, listeners, signals, reload, admin.
 *
 * The main thread loads the configuration, starts the workers and then
 * runs a small loop of its own for signals and the admin listener:
 *   SIGTERM/SIGINT  stop accepting, let requests in flight finish, exit
 *   SIGHUP          load the configuration again; a bad one is reported and
 *                   the running one stays
 *   SIGUSR1         reopen the log files (rotation)
 * Workers are told through uv_async; they read the active configuration
 * under a mutex only when a connection or request starts.
 *
 * Descriptors are a budget: at start the soft open-file limit is raised to
 * the hard one and max_connections (and the admin listener's cap) clamped
 * to what is left of it; every listener accepts through an acceptor_t that
 * keeps a reserve descriptor and backs off instead of spinning when accept()
 * fails for want of descriptors. The admin listener has its own connection
 * cap and timeout, and its own loop's share of the same technique.
 * Before any worker binds (SO_REUSEPORT), each address is probed with a
 * plain bind, so that a second process on the same address is refused
 * (exit 4) instead of silently sharing the port (see probe_free).
 * Under systemd (Type=notify, packaging/systemd/) the main thread tells the
 * service manager READY=1 once every listener is bound, RELOADING=1 and
 * READY=1 around a SIGHUP reload, STOPPING=1 when the drain starts
 * (sd_notify: a no-op without NOTIFY_SOCKET).
 */
#define _GNU_SOURCE /* accept4 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "admin.h"
#include "alerts.h"
#include "errgate/balance.h"
#include "hcheck.h"
#include "dashboard.h"
#include "errgate/http1.h"
#include "errgate/jwt.h"
#include "errgate/reqid.h"
#include "gateway.h"
#include "idem_store.h"
#include "meter_store.h"
#include "usage.h"
#include "pg_sink.h"
#include "keyring.h"
#include "limiter.h"
#include "metrics.h"
#include "redis.h"
#include "redis_link.h"
#include "stage.h"
#include "respond.h"
#include "tls.h"

typedef struct acceptor_s acceptor_t;

/* A listening socket accepted from by hand on a uv_poll (see "accepting"). */
struct acceptor_s {
    uv_poll_t poll;
    uv_timer_t backoff;
    int fd;              /* the listening socket; -1 once stopped */
    int reserve;         /* given up when out of descriptors; -1 while lost */
    uint64_t backoff_ms; /* 0 while accepting normally */
    int inited;
    /* a new connection: 0 when it took fd, else fd is closed */
    int (*take)(acceptor_t *a, int fd);
    /* writes a short refusal on a connection there is no room for (not closed) */
    void (*refuse)(acceptor_t *a, int fd);
    void *data;
    eg_server_t *srv;
    size_t listener;         /* index into cfg->listeners (workers' acceptors) */
    int tls;                 /* a TLS listener: no plain-text refusal is written */
    long long exhausted_sec; /* second of the last fd_exhausted line (monotonic) */
    uint64_t exhausted;      /* connections refused since that line */
};

struct eg_server_s {
    pthread_mutex_t lock;
    eg_gw_t *gw; /* active configuration, guarded by lock */
    eg_log_t *access, *errors;
    eg_worker_t *workers;
    acceptor_t *acceptors; /* nlisteners per worker, on its loop: [worker * nlisteners + listener] */
    size_t nlisteners;     /* as at start (listen addresses change on restart only) */
    eg_tls_tickets_t *tickets; /* session ticket keys, rotated by ticket_timer */
    uv_timer_t ticket_timer;
    int nworkers;
    uv_loop_t loop; /* main thread: signals, admin */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    acceptor_t admin;
    int has_admin;
    size_t nadmin, admin_max; /* open admin connections, and the cap (clamped at start) */
    uint64_t admin_timeout_ms;
    int stopping;
    uv_timer_t drain_timer;
    char *config_path;
    uint64_t generation;
    atomic_ullong current_generation; /* srv->gw's, for eg_server_renew without the lock */
    eg_store_t *store;      /* opened at start when keys or the admin API need it */
    eg_keyring_t *keyring;  /* API keys for the workers, from the store */
    eg_limiter_t *limiter;  /* rate limits and concurrency slots */
    eg_idem_store_t *idem;  /* Idempotency-Key entries, opened at start when a route uses them */
    /* the metering API's events, opened at start or by the reload that sets
     * metering.path; the workers read it without the lock */
    eg_meter_store_t *_Atomic meter;
    /* usage totals (metering/usage.h): opened after the store when a route
     * meters (SQLite), or by the reload that brings the first such route;
     * closed after the workers with a last commit */
    eg_usage_t *_Atomic usage;
    eg_pg_sink_t *pg_sink; /* metering.sink: what usage commits, copied to PostgreSQL; closed
                              after usage (its last commit goes to the sink too) */
    eg_alerts_t *alerts;    /* the error-rate monitor and its webhooks (alerts.h) */
    eg_hcheck_t *hcheck;    /* active health checks of upstream servers (hcheck.h) */
    long long clock_offset; /* ERRGATE_CLOCK_OFFSET */
    uv_timer_t sweep_timer;
    uv_timer_t log_timer; /* reports rate-limited error lines once a second */
    /* the store probe (main loop): can the store still read and write? */
    uv_timer_t probe_timer;
    uv_work_t probe_req;
    int probe_busy;
    int probe_rc;        /* of the last probe: 0, or which call failed (1 read, 2 write) */
    char probe_err[256]; /* its message (the store keeps 256) */
    int store_reads_ok, store_writes_ok;
    char store_reason[300]; /* why not, for /ready */
    eg_metrics_t *metrics;  /* per-worker counters (metrics.h); NULL when off at start */
    time_t started;
    /* the admin listener answers while draining (/health: 503 draining) and
     * closes when the last worker's loop is done (workers_done) */
    uv_async_t workers_done;
    atomic_int workers_left;
};

eg_metrics_t *eg_server_metrics(eg_server_t *srv)
{
    return srv->metrics;
}

int eg_server_stopping(const eg_server_t *srv)
{
    return srv->stopping;
}

long long eg_server_clock_offset(const eg_server_t *srv)
{
    return srv->clock_offset;
}

eg_store_t *eg_server_store(eg_server_t *srv)
{
    return srv->store;
}

eg_idem_store_t *eg_server_idem_store(eg_server_t *srv)
{
    return srv->idem;
}

eg_meter_store_t *eg_server_meter_store(eg_server_t *srv)
{
    return atomic_load_explicit(&srv->meter, memory_order_acquire);
}

eg_usage_t *eg_server_usage(eg_server_t *srv)
{
    return atomic_load_explicit(&srv->usage, memory_order_acquire);
}

eg_pg_sink_t *eg_server_pg_sink(eg_server_t *srv)
{
    return srv->pg_sink;
}

eg_limiter_t *eg_server_limiter(eg_server_t *srv)
{
    return srv->limiter;
}

/* Forgets subjects back at a full allowance, so the table follows the
 * clients of the last minutes, not every address ever seen. */
static void sweep(uv_timer_t *t)
{
    eg_server_t *srv = t->data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    eg_limiter_sweep(srv->limiter, (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}

static void server_log(eg_server_t *srv, const char *event, const char *detail);

/* A listener's certificate close to its end is said at start and on every
 * reload (30 days: what testssl rates HIGH). */
static void tls_expiry_warnings(eg_server_t *srv, eg_gw_t *gw)
{
    char why[600];
    for (size_t i = 0; i < gw->cfg->nlisteners; i++)
        if (gw->tls_listen[i] && eg_tls_server_expiring(gw->tls_listen[i], 30, why, sizeof(why)))
            server_log(srv, "tls_certificate_expiring", why);
}

/* Session ticket keys rotate this often (tls.h: the previous key still
 * resumes for one more period). */
#define EG_TICKET_ROTATE_MS (3600 * 1000)

static void ticket_rotate(uv_timer_t *t)
{
    eg_server_t *srv = t->data;
    eg_tls_tickets_rotate(srv->tickets);
}

eg_keyring_t *eg_server_keyring(eg_server_t *srv)
{
    return srv->keyring;
}

/* ------------------------------------------------------------ configurations */

eg_gw_t *eg_gw_ref(eg_gw_t *gw)
{
    atomic_fetch_add(&gw->refs, 1);
    return gw;
}

static void notfound_free(eg_gw_t *gw)
{
    for (size_t i = 0; i < gw->nnotfound; i++)
        eg_notfound_free(gw->notfound[i]);
    free(gw->notfound);
    free(gw->notfound_dialect);
}

/* One 404 template per dialect a client can get; a dialect without one
 * (NULL) answers through the generic path, so only memory can fail here. */
static int notfound_build(eg_gw_t *gw)
{
    size_t n = eg_dialects_count(gw->cfg->dialects);
    gw->notfound = calloc(n ? n : 1, sizeof(*gw->notfound));
    gw->notfound_dialect = calloc(n ? n : 1, sizeof(*gw->notfound_dialect));
    if (!gw->notfound || !gw->notfound_dialect) return EG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        gw->notfound_dialect[i] = eg_dialects_at(gw->cfg->dialects, i);
        gw->notfound[i] = eg_notfound_new(gw->notfound_dialect[i], gw->cfg->catalog);
    }
    gw->nnotfound = n;
    return EG_OK;
}

/* The TLS contexts of gw's configuration (tls.h). */
static void gw_tls_free(eg_gw_t *gw, const eg_config_t *cfg)
{
    for (size_t i = 0; gw->tls_listen && i < cfg->nlisteners; i++) eg_tls_server_free(gw->tls_listen[i]);
    for (size_t i = 0; gw->tls_up && i < cfg->nupstreams; i++) SSL_CTX_free(gw->tls_up[i]);
    for (size_t i = 0; gw->tls_keys && i < cfg->nupstreams; i++) {
        for (size_t k = 0; gw->tls_keys[i] && k < cfg->upstreams[i].nservers; k++) free(gw->tls_keys[i][k]);
        free(gw->tls_keys[i]);
    }
    free(gw->tls_keys);
    gw->tls_keys = NULL;
    free(gw->tls_listen);
    free(gw->tls_up);
    gw->tls_listen = NULL;
    gw->tls_up = NULL;
}

/* Loads every certificate and key the configuration names: a bad one fails
 * the start or the reload (the running contexts stay), err saying why. */
static int gw_tls_build(eg_gw_t *gw, const eg_config_t *cfg, eg_tls_tickets_t *tk, char *err, size_t errlen)
{
    int rc = EG_OK;
    char why[600];
    gw->tls_listen = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof(*gw->tls_listen));
    gw->tls_up = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*gw->tls_up));
    gw->tls_keys = calloc(cfg->nupstreams ? cfg->nupstreams : 1, sizeof(*gw->tls_keys));
    if (!gw->tls_listen || !gw->tls_up || !gw->tls_keys) return EG_ENOMEM;
    for (size_t i = 0; !rc && i < cfg->nlisteners; i++) {
        if (!cfg->listeners[i].tls) continue;
        rc = eg_tls_server_new(cfg->listeners[i].tls, tk, &gw->tls_listen[i], why, sizeof(why));
        if (rc) snprintf(err, errlen, "listen %s: %s", cfg->listeners[i].addr.addr, why);
    }
    for (size_t i = 0; !rc && i < cfg->nupstreams; i++) {
        if (!cfg->upstreams[i].tls.on) continue;
        const eg_upstream_cfg_t *u = &cfg->upstreams[i];
        rc = eg_tls_client_ctx_new(&u->tls, &gw->tls_up[i], why, sizeof(why));
        if (rc) snprintf(err, errlen, "upstream '%s': %s", u->name, why);
        /* pool keys of their own: another upstream on the same address may
         * trust other CAs or present another client certificate */
        if (!rc && !(gw->tls_keys[i] = calloc(u->nservers, sizeof(char *)))) rc = EG_ENOMEM;
        for (size_t k = 0; !rc && k < u->nservers; k++) {
            char key[300];
            snprintf(key, sizeof(key), "tls/%.40s/%.250s", u->name, u->servers[k].addr);
            if (!(gw->tls_keys[i][k] = strdup(key))) rc = EG_ENOMEM;
        }
    }
    return rc;
}

void eg_gw_unref(eg_gw_t *gw)
{
    if (!gw || atomic_fetch_sub(&gw->refs, 1) != 1) return;
    eg_metrics_gen_free(gw->metrics); /* its sums go to the archive while cfg still names them */
    gw_tls_free(gw, gw->cfg);
    for (size_t i = 0; i < gw->cfg->nupstreams; i++)
        free(gw->health[i]);
    free(gw->health);
    free(gw->rr);
    eg_router_free(gw->router);
    free(gw->stages.routes);
    notfound_free(gw);
    eg_alert_counts_free(gw->alert_counts);
    eg_config_free(gw->cfg);
    free(gw);
}

/* metrics: the registry's counters for cfg, when there is a registry and
 * cfg keeps metrics on (NULL otherwise: nothing is counted). nworkers: the
 * blocks of the monitor's per-worker counters (the running server's count:
 * a reload does not change it). tk: the TLS ticket keys (NULL: check-config).
 * err: why it failed, always written when it did. */
static int gw_build(eg_config_t *cfg, eg_metrics_t *metrics, int nworkers, eg_tls_tickets_t *tk,
                    eg_gw_t **out, char *err, size_t errlen)
{
    eg_gw_t *gw = calloc(1, sizeof(*gw));
    if (!gw) return EG_ENOMEM;
    snprintf(err, errlen, "%s", eg_strerror(EG_ENOMEM));
    atomic_init(&gw->refs, 1);
    gw->cfg = cfg;
    eg_route_spec_t *specs = calloc(cfg->nroutes, sizeof(*specs));
    gw->health = calloc(cfg->nupstreams, sizeof(*gw->health));
    gw->rr = calloc(cfg->nupstreams, sizeof(*gw->rr));
    int rc = specs && gw->health && gw->rr ? EG_OK : EG_ENOMEM;
    for (size_t i = 0; !rc && i < cfg->nroutes; i++)
        specs[i] =
            (eg_route_spec_t){cfg->routes[i].path, cfg->routes[i].prefix, cfg->routes[i].methods};
    /* the declared routes; an OpenAPI operation's route is found through
     * its declared route's oa_index (stages/route.c) */
    if (!rc) rc = eg_router_new(specs, cfg->nroutes_declared ? cfg->nroutes_declared : cfg->nroutes, &gw->router);
    for (size_t i = 0; !rc && i < cfg->nupstreams; i++) {
        gw->health[i] = calloc(cfg->upstreams[i].nservers, sizeof(eg_server_health_t));
        if (!gw->health[i]) rc = EG_ENOMEM;
    }
    free(specs);
    if (!rc) rc = notfound_build(gw);
    if (!rc &&
        !(gw->stages.routes = calloc(cfg->nroutes ? cfg->nroutes : 1, sizeof(*gw->stages.routes))))
        rc = EG_ENOMEM;
    if (!rc) eg_pipeline_bind(cfg, &gw->stages);
    if (!rc && metrics && cfg->metrics_enabled) rc = eg_metrics_gen_new(metrics, cfg, &gw->metrics);
    if (!rc) rc = eg_alert_counts_new(cfg, nworkers, &gw->alert_counts);
    if (errlen) err[0] = '\0';
    if (!rc) rc = gw_tls_build(gw, cfg, tk, err, errlen);
    if (rc) {
        if (errlen && !err[0]) snprintf(err, errlen, "%s", eg_strerror(rc));
        eg_metrics_gen_free(gw->metrics);
        eg_alert_counts_free(gw->alert_counts);
        gw_tls_free(gw, cfg);
        gw->cfg = NULL;
        for (size_t i = 0; gw->health && i < cfg->nupstreams; i++)
            free(gw->health[i]);
        free(gw->health);
        free(gw->rr);
        eg_router_free(gw->router);
        notfound_free(gw);
        free(gw->stages.routes);
        free(gw);
        return rc;
    }
    *out = gw;
    return EG_OK;
}

eg_gw_t *eg_server_current(eg_server_t *srv)
{
    pthread_mutex_lock(&srv->lock);
    eg_gw_t *gw = eg_gw_ref(srv->gw);
    pthread_mutex_unlock(&srv->lock);
    return gw;
}

eg_gw_t *eg_server_renew(eg_server_t *srv, eg_gw_t *gw)
{
    if (gw &&
        gw->generation == atomic_load_explicit(&srv->current_generation, memory_order_acquire))
        return gw;
    eg_gw_unref(gw);
    return eg_server_current(srv);
}

eg_log_t *eg_server_access_log(eg_server_t *srv)
{
    return srv->access;
}

eg_log_t *eg_server_error_log(eg_server_t *srv)
{
    return srv->errors;
}

/* ------------------------------------------------------------ health */

int eg_health_is_down(const eg_server_health_t *h, uint64_t now_ms)
{
    if (atomic_load_explicit(&h->active_down, memory_order_relaxed)) return 1;
    long long until = atomic_load(&h->down_until_ms);
    return until && (uint64_t)until > now_ms;
}

void eg_health_failure(eg_server_health_t *h, const eg_upstream_cfg_t *u, uint64_t now_ms)
{
    int fails = atomic_fetch_add(&h->fails, 1) + 1;
    if (fails >= u->max_fails) {
        atomic_store(&h->down_until_ms, (long long)(now_ms + u->fail_timeout_ms));
        atomic_store(&h->fails, 0);
    }
}

void eg_health_success(eg_server_health_t *h)
{
    atomic_store(&h->fails, 0);
    atomic_store(&h->down_until_ms, 0);
}

/* ------------------------------------------------------------ workers */

void eg_worker_random_refill(eg_worker_t *w)
{
    size_t got = 0;
    while (got < sizeof(w->rnd)) {
        ssize_t k = getrandom(w->rnd + got, sizeof(w->rnd) - got, 0);
        if (k < 0) {
            if (errno == EINTR) continue;
            abort(); /* no randomness: request ids would repeat */
        }
        got += (size_t)k;
    }
    w->rnd_used = 0;
}

/* The socket address of host:port ("localhost" is 127.0.0.1); 0 or -1. */
static int sockaddr_of(const eg_hostport_t *hp, struct sockaddr_storage *ss, socklen_t *len,
                       char *err, size_t errlen)
{
    const char *host = strcmp(hp->host, "localhost") == 0 ? "127.0.0.1" : hp->host;
    int v6 = strchr(host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(host, hp->port, (struct sockaddr_in6 *)ss)
                : uv_ip4_addr(host, hp->port, (struct sockaddr_in *)ss);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s:%d: not an IP address", hp->host, hp->port);
        return -1;
    }
    *len = v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    return 0;
}

static void listen_error(const eg_hostport_t *hp, int e, char *err, size_t errlen)
{
    if (e == EADDRINUSE)
        snprintf(err, errlen,
                 "cannot listen on %s:%d: another process holds it (%s); is another errgate "
                 "serve running on it?",
                 hp->host, hp->port, strerror(e));
    else
        snprintf(err, errlen, "cannot listen on %s:%d: %s", hp->host, hp->port, strerror(e));
}

/* A listening socket of our own with SO_REUSEPORT, so every worker accepts
 * on the same port and the kernel spreads connections over them. */
static int listen_socket(const eg_hostport_t *hp, int reuseport, int *out_fd, char *err,
                         size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (sockaddr_of(hp, &ss, &sl, err, errlen) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 1024) != 0) {
        listen_error(hp, errno, err, errlen);
        if (fd >= 0) close(fd);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

/* SO_REUSEPORT lets any process of the same user bind the port again: a
 * second `errgate serve` on the same address would start without a word
 * and take half the connections (the kernel spreads them over every
 * socket of the group). So before the workers bind, a plain bind (no
 * SO_REUSEPORT; SO_REUSEADDR only, which TIME_WAIT leftovers of an earlier
 * run do not stop but a listening socket does) must succeed: it fails with
 * EADDRINUSE when any process listens on the address. The probe is closed
 * at once; our own workers bind after it, so they never meet it. Two
 * starts in the same few microseconds could both pass; an instance lock
 * would not close that either for two configuration files. */
static int probe_free(const eg_hostport_t *hp, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (sockaddr_of(hp, &ss, &sl, err, errlen) != 0) return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        listen_error(hp, errno, err, errlen);
        rc = -1;
    }
    if (fd >= 0) close(fd);
    return rc;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* ------------------------------------------------------------ accepting */

/* Every listener accepts by hand on a uv_poll of its socket, not through
 * uv_listen: libuv retries accept() in a loop while it fails with EMFILE,
 * and once its own reserve descriptor is gone (another thread took the
 * slot it freed) that loop never returns: 100% CPU, closed connections
 * never noticed, SIGTERM never seen. Here:
 *   - at most EG_ACCEPT_BATCH connections per wakeup, so the loop stays fair;
 *   - out of descriptors (EMFILE, ENFILE), the acceptor gives up its reserve
 *     descriptor for a moment to take one waiting connection, answers it
 *     with a short 503 (`refuse`), closes it and takes the reserve back (the
 *     libuv/nginx technique), so a client hears "busy" instead of nothing;
 *   - when even that fails (the slot went to another thread, or the kernel
 *     is short of memory), it stops polling and tries again after a backoff
 *     doubling from 10 ms to 1 s. Waiting connections stay in the backlog. */
#define EG_ACCEPT_BATCH   64
#define EG_BACKOFF_MIN_MS 10
#define EG_BACKOFF_MAX_MS 1000

static void acceptor_io(uv_poll_t *p, int status, int events);
static void server_log(eg_server_t *srv, const char *event, const char *detail);

static int reserve_open(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void acceptor_resume(uv_timer_t *t)
{
    acceptor_t *a = t->data;
    if (a->fd < 0) return;
    if (a->reserve < 0) a->reserve = reserve_open();
    uv_poll_start(&a->poll, UV_READABLE, acceptor_io);
}

static void acceptor_pause(acceptor_t *a)
{
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : EG_BACKOFF_MIN_MS;
    if (a->backoff_ms > EG_BACKOFF_MAX_MS) a->backoff_ms = EG_BACKOFF_MAX_MS;
    uv_poll_stop(&a->poll);
    uv_timer_start(&a->backoff, acceptor_resume, a->backoff_ms, 0);
}

/* One line a second at most while out of descriptors, with how many
 * connections were refused since the last. */
static void acceptor_exhausted(acceptor_t *a, int err)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    a->exhausted++;
    if ((long long)ts.tv_sec == a->exhausted_sec) return;
    a->exhausted_sec = (long long)ts.tv_sec;
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_NOFILE, &rl);
    char detail[300];
    snprintf(detail, sizeof(detail),
             "%s (open-file limit %llu): new connections get a 503 and are closed until "
             "descriptors free up; %llu since the last such line",
             err == ENFILE ? "the system is out of file descriptors" : "out of file descriptors",
             (unsigned long long)rl.rlim_cur, (unsigned long long)a->exhausted);
    a->exhausted = 0;
    server_log(a->srv, "fd_exhausted", detail);
}

/* Takes one waiting connection with the reserve descriptor's slot and
 * refuses it. 1 when one was refused, 0 when none was waiting, -1 when
 * there is no reserve or the slot went elsewhere. */
static int acceptor_shed(acceptor_t *a)
{
    if (a->reserve < 0) return -1;
    close(a->reserve);
    a->reserve = -1;
    int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int err = errno;
    if (fd >= 0) {
        a->refuse(a, fd);
        close(fd);
    }
    a->reserve = reserve_open();
    if (fd >= 0) return 1;
    return err == EAGAIN || err == EWOULDBLOCK ? 0 : -1;
}

static void acceptor_io(uv_poll_t *p, int status, int events)
{
    (void)events;
    acceptor_t *a = p->data;
    if (a->fd < 0) return;
    if (status < 0) {
        acceptor_pause(a);
        return;
    }
    for (int i = 0; i < EG_ACCEPT_BATCH && a->fd >= 0; i++) {
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            a->backoff_ms = 0;
            if (a->take(a, fd) != 0) close(fd);
            continue;
        }
        int err = errno;
        if (err == EINTR || err == ECONNABORTED || err == EPROTO) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        if (err == EMFILE || err == ENFILE) {
            acceptor_exhausted(a, err);
            int rc = acceptor_shed(a);
            if (rc > 0) continue;
            if (rc == 0) return;
        }
        acceptor_pause(a); /* no reserve, or ENOBUFS/ENOMEM: wait, do not spin */
        return;
    }
}

static int acceptor_init(acceptor_t *a, uv_loop_t *loop, int fd, eg_server_t *srv, void *data)
{
    a->fd = fd;
    a->srv = srv;
    a->data = data;
    a->reserve = reserve_open(); /* -1 is survivable: tried again on the next backoff */
    a->poll.data = a->backoff.data = a;
    if (uv_poll_init_socket(loop, &a->poll, fd) != 0) {
        if (a->reserve >= 0) close(a->reserve);
        return EG_EIO;
    }
    uv_timer_init(loop, &a->backoff);
    a->inited = 1;
    uv_poll_start(&a->poll, UV_READABLE, acceptor_io);
    return EG_OK;
}

/* Stops accepting: new connections are refused by the kernel from now on.
 * The handles close with the loop; the acceptor's memory must outlive that. */
static void acceptor_stop(acceptor_t *a)
{
    if (!a->inited || a->fd < 0) return;
    uv_poll_stop(&a->poll);
    uv_timer_stop(&a->backoff);
    close(a->fd);
    a->fd = -1;
    if (a->reserve >= 0) close(a->reserve);
    a->reserve = -1;
    if (!uv_is_closing((uv_handle_t *)&a->poll)) uv_close((uv_handle_t *)&a->poll, NULL);
    if (!uv_is_closing((uv_handle_t *)&a->backoff)) uv_close((uv_handle_t *)&a->backoff, NULL);
}

/* Closes what acceptor_stop did not, once the loop's handles are closed. */
static void acceptor_release(acceptor_t *a)
{
    if (!a->inited) return;
    if (a->fd >= 0) close(a->fd);
    if (a->reserve >= 0) close(a->reserve);
    a->fd = a->reserve = -1;
    a->inited = 0;
}

/* Sends a refusal on a connection about to be closed, without waiting: the
 * socket's buffer is empty, so a short answer goes out whole or not at all.
 * What the client already sent is read away first, so the close is a FIN
 * and not a reset that could destroy the answer before it is read. */
static void refuse_with(int fd, const char *resp, size_t n)
{
    char sink[4096];
    for (int i = 0; i < 4 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++) {
    }
    if (n) (void)!send(fd, resp, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
}

/* A worker's refusal when out of descriptors: a 503 service_unavailable in
 * the configured dialect (no request was read, so no negotiation), with a
 * request id and Retry-After: 1. Rendering is a few microseconds and needs
 * no descriptor; a response that cannot be made is a plain close. */
static void worker_refuse(acceptor_t *a, int fd)
{
    if (a->tls) { /* plain text would be garbage to a TLS client: only the close */
        refuse_with(fd, NULL, 0);
        return;
    }
    eg_worker_t *w = a->data;
    eg_gw_t *gw = eg_server_current(w->srv);
    char rid[EG_REQID_MAX + 1], ts[32], date[EG_HTTP1_DATE_LEN + 1], buf[4096];
    unsigned char r[16];
    eg_worker_random(w, r, sizeof(r));
    eg_reqid_generate(r, rid);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    eg_http1_date((int64_t)now, date);
    size_t n = 0;
    eg_error_t *e = NULL;
    if (eg_error_from_catalog(gw->cfg->catalog, "service_unavailable", &e) == EG_OK) {
        eg_error_set(e, EG_S_REQUEST_ID, rid);
        eg_error_set(e, EG_S_TIMESTAMP, ts);
        eg_error_set(e, EG_S_MESSAGE, "Too many connections; try again shortly.");
        eg_error_set_retry_after(e, 1);
        n = eg_respond_error(e, gw->cfg->dialect, gw->cfg->catalog, date, NULL, 0, 0, buf,
                             sizeof(buf));
    }
    eg_error_free(e);
    eg_gw_unref(gw);
    refuse_with(fd, buf, n);
}

static int worker_take(acceptor_t *a, int fd)
{
    return eg_proxy_on_connection(a->data, fd, a->listener);
}

static void worker_check_drained(eg_worker_t *w)
{
    if (w->draining && w->nconns == 0) {
        eg_proxy_close_pool(w);
        uv_stop(&w->loop);
    }
}

static void worker_wake(uv_async_t *a)
{
    eg_worker_t *w = a->data;
    if (w->srv->stopping && !w->draining) {
        for (size_t l = 0; l < w->srv->nlisteners; l++)
            acceptor_stop(&w->srv->acceptors[(size_t)w->id * w->srv->nlisteners + l]);
        eg_proxy_drain(w);
    }
    if (w->srv->stopping > 1) { /* drain timeout: stop now */
        uv_stop(&w->loop);
        return;
    }
    worker_check_drained(w);
}

static void worker_prepare(uv_prepare_t *p)
{
    worker_check_drained(p->data);
}

static void worker_main(void *arg)
{
    eg_worker_t *w = arg;
    uv_prepare_t prep;
    uv_prepare_init(&w->loop, &prep);
    prep.data = w;
    uv_prepare_start(&prep, worker_prepare);
    uv_unref((uv_handle_t *)&prep);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Redis first: hiredis closes its own poll handle (closing it twice
     * aborts libuv); requests still waiting on it get their failure answer */
    eg_redis_link_close(w->redis_link);
    /* close what is left (connections cut by the drain timeout) */
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    eg_apikey_hasher_free(w->hasher);
    w->hasher = NULL;
    eg_jwt_mac_free(w->jwt_mac);
    w->jwt_mac = NULL;
    eg_pipeline_worker_exit(w);
    if (atomic_fetch_sub(&w->srv->workers_left, 1) == 1) uv_async_send(&w->srv->workers_done);
}

/* Every worker loop ended: the admin listener closes too, and with it the
 * main loop. */
static void on_workers_done(uv_async_t *a)
{
    eg_server_t *srv = a->data;
    if (srv->has_admin) acceptor_stop(&srv->admin);
    uv_close((uv_handle_t *)a, NULL);
}

/* ------------------------------------------------------------ admin */

/* One admin connection: one request, one answer, closed. Its timer bounds
 * its whole life (admin.timeout), and at most admin.max_connections are
 * open, so idle or trickling clients cannot hold the process's descriptors
 * and 64 KiB buffers (20,000 of them were a gigabyte). */
typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    eg_server_t *srv;
    int handles;     /* open handles: freed when both have closed */
    char buf[65536]; /* head and body of one request */
    size_t len;
    int done;
    char *raw; /* a response from admin.c, freed with the connection */
} admin_conn_t;

static void admin_closed(uv_handle_t *h)
{
    admin_conn_t *a = h->data;
    if (--a->handles > 0) return;
    a->srv->nadmin--;
    free(a->raw);
    free(a);
}

static void admin_close(admin_conn_t *a)
{
    if (uv_is_closing((uv_handle_t *)&a->tcp)) return;
    uv_close((uv_handle_t *)&a->tcp, admin_closed);
    uv_close((uv_handle_t *)&a->timer, admin_closed);
}

static void admin_timeout(uv_timer_t *t)
{
    admin_close(t->data);
}

static void admin_written(uv_write_t *req, int status)
{
    (void)status;
    admin_conn_t *a = req->data;
    free(req);
    admin_close(a);
}

/* Sends a complete response the caller built (malloc'd; taken). */
static void admin_send_raw(admin_conn_t *a, char *resp, size_t n)
{
    uv_write_t *req = malloc(sizeof(*req));
    a->done = 1;
    if (!req || !resp) {
        free(req);
        free(resp);
        admin_close(a);
        return;
    }
    /* kept in a->raw until the connection is freed */
    req->data = a;
    uv_buf_t b = uv_buf_init(resp, (unsigned)n);
    a->raw = resp;
    if (uv_write(req, (uv_stream_t *)&a->tcp, &b, 1, admin_written) != 0) {
        free(req);
        admin_close(a);
    }
}

/* The head of an admin answer (its type, Date, its request id, no caching, closed after). */
static int admin_head(char *out, size_t cap, int status, const char *type, size_t blen,
                      const char *reqid)
{
    char date[EG_HTTP1_DATE_LEN + 1];
    eg_http1_date((int64_t)time(NULL), date);
    return snprintf(out, cap,
                    "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                    "Content-Length: %zu\r\nX-Request-ID: %s\r\nCache-Control: "
                    "no-store\r\nConnection: "
                    "close\r\n\r\n",
                    status, eg_reason_phrase(status), date, type, blen, reqid);
}

/* /health, /ready, /metrics: their documents, blen bytes of body of the
 * given type (errors go through admin_error); to HEAD, the head alone. */
static void admin_reply_typed(admin_conn_t *a, int status, const char *type, const char *body,
                              size_t blen, const char *reqid, int head_only)
{
    uv_write_t *req = malloc(sizeof(*req) + 512 + blen);
    if (!req) {
        admin_close(a);
        return;
    }
    char *out = (char *)(req + 1);
    int n = admin_head(out, 512, status, type, blen, reqid);
    if (head_only) blen = 0;
    memcpy(out + n, body, blen);
    req->data = a;
    uv_buf_t b = uv_buf_init(out, (unsigned)(n + (int)blen));
    a->done = 1;
    if (uv_write(req, (uv_stream_t *)&a->tcp, &b, 1, admin_written) != 0) {
        free(req);
        admin_close(a);
    }
}

static void admin_reply(admin_conn_t *a, int status, const char *body, const char *reqid,
                        int head_only)
{
    admin_reply_typed(a, status, "application/json", body, strlen(body), reqid, head_only);
}

/* An error of the admin listener: the catalog's, in the admin dialect, as
 * every error errgate writes (eg_admin_error). */
static void admin_error(admin_conn_t *a, const eg_config_t *cfg, const eg_http1_msg_t *m,
                        const char *code, const char *message, const char *extra, const char *reqid)
{
    size_t n = 0;
    char *resp = eg_admin_error(cfg, m, code, message, extra, -1, reqid, &n);
    admin_send_raw(a, resp, n);
}

/* Over the admin cap, or out of descriptors: 503 service_unavailable in the
 * admin dialect (no request was read: no negotiation), Retry-After: 1,
 * closed at once. A response that cannot be made is a plain close. */
static void admin_refuse(acceptor_t *acc, int fd)
{
    eg_server_t *srv = acc->srv;
    eg_gw_t *gw = eg_server_current(srv);
    char rid[EG_REQID_MAX + 1];
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) memset(r, 0, sizeof(r));
    eg_reqid_generate(r, rid);
    size_t n = 0;
    char *resp = eg_admin_error(
        gw->cfg, NULL, "service_unavailable",
        "Too many connections to the admin listener; try again in a second.", NULL, 1, rid, &n);
    eg_gw_unref(gw);
    refuse_with(fd, resp, resp ? n : 0);
    free(resp);
}

/* One server in /ready: "up" (in rotation, its last requests and probes
 * passed), "failing" (in rotation, but failures are counting towards
 * max_fails or fall), "down" (out of rotation, with why: the active checks,
 * or the passive mark for fail_timeout); and its active checks' state. */
static json_t *server_state(const eg_upstream_cfg_t *u, size_t k, const eg_server_health_t *h, uint64_t now)
{
    long long until = atomic_load(&h->down_until_ms);
    int active = atomic_load(&h->active_down), passive = until && (uint64_t)until > now;
    int fails = atomic_load(&h->fails);
    const char *state = active || passive                     ? "down"
                        : fails > 0 || (h->hc_fail > 0)       ? "failing"
                                                              : "up";
    json_t *o = json_pack("{s:s, s:s, s:i}", "address", u->servers[k].addr, "state", state,
                          "failures", fails);
    if (active || passive)
        json_object_set_new(o, "reason", json_string(active ? "health_check" : "passive"));
    if (passive) json_object_set_new(o, "down_for_ms", json_integer(until - (long long)now));
    if (u->hc.enabled) {
        const char *cs = !h->hc_checked ? "pending" : active || h->hc_fail ? "failing" : "passing";
        json_t *chk = json_pack("{s:s, s:i, s:i}", "state", cs, "passes", h->hc_ok, "fails", h->hc_fail);
        if (h->hc_checked) json_object_set_new(chk, "last", json_string(h->hc_last));
        json_object_set_new(o, "check", chk);
    }
    if (u->balance == EG_BALANCE_WEIGHTED || u->weights[k] != 1)
        json_object_set_new(o, "weight", json_integer(u->weights[k]));
    if (u->balance == EG_BALANCE_LEAST_CONN)
        json_object_set_new(o, "in_flight", json_integer(atomic_load(&h->inflight)));
    return o;
}

/* GET /ready: each upstream server's state, and ready when every upstream has one up. */
static char *ready_body(eg_server_t *srv, int *ready)
{
    eg_gw_t *gw = eg_server_current(srv);
    json_t *ups = json_object();
    uint64_t now = eg_now_ms();
    *ready = !srv->stopping;
    for (size_t i = 0; i < gw->cfg->nupstreams; i++) {
        const eg_upstream_cfg_t *u = &gw->cfg->upstreams[i];
        json_t *servers = json_array();
        int up = 0;
        for (size_t k = 0; k < u->nservers; k++) {
            up += !eg_health_is_down(&gw->health[i][k], now);
            json_array_append_new(servers, server_state(u, k, &gw->health[i][k], now));
        }
        if (!up) *ready = 0;
        json_object_set_new(ups, u->name,
                            json_pack("{s:s, s:s, s:o}", "state", up ? "up" : "down", "balance",
                                      eg_balance_name((eg_balance_t)u->balance), "servers", servers));
    }
    json_t *store = NULL;
    if (srv->keyring) {
        /* reads: the keyring's refresh; writes: the probe (store_probe). A
         * store that cannot write fails every request charged quota or
         * credits, so it makes the gateway not ready when some route or
         * plan charges them to the store (not to Redis); otherwise it is
         * reported and the gateway serves. */
        int reads = eg_keyring_healthy(srv->keyring), writes = srv->store_writes_ok;
        int charges = gw->cfg->uses_counters && !gw->cfg->has_redis;
        int ok = reads && (writes || !charges);
        if (!ok) *ready = 0;
        store = json_pack("{s:s, s:s, s:s, s:I}", "backend", eg_store_backend_name(srv->store),
                          "state", ok ? "up" : "down", "writes", writes ? "ok" : "failing", "keys",
                          (json_int_t)eg_keyring_count(srv->keyring));
        const char *reason = !reads && srv->store_reads_ok ? "cannot read the keys"
                             : !reads || !writes           ? srv->store_reason
                                                           : NULL;
        json_t *r = reason ? json_string(reason) : NULL;
        if (r) json_object_set_new(store, "reason", r);
    }
    json_t *doc =
        json_pack("{s:s, s:o}", "status", *ready ? "ready" : "not_ready", "upstreams", ups);
    if (store) json_object_set_new(doc, "store", store);
    if (srv->limiter) {
        json_t *tr =
            json_pack("{s:I}", "active_slots", (json_int_t)eg_limiter_active_total(srv->limiter));
        if (gw->cfg->has_redis) {
            uint64_t failures = 0;
            int up = 0, down = 0;
            for (int i = 0; i < srv->nworkers; i++) {
                int st;
                uint64_t f;
                eg_redis_link_status(srv->workers[i].redis_link, &st, &f);
                failures += f;
                up |= st > 0;
                down |= st < 0;
            }
            /* connections are made on first use: "idle" until a request needed one */
            const char *state = down ? "down" : up ? "up" : "idle";
            json_object_set_new(tr, "redis",
                                json_pack("{s:s, s:s, s:I}", "address", gw->cfg->redis.addr,
                                          "state", state, "failures", (json_int_t)failures));
        }
        json_object_set_new(doc, "traffic", tr);
    }
    if (srv->pg_sink) { /* reported, never a reason not to serve: rows wait in the queue */
        eg_pg_sink_stats_t st;
        eg_pg_sink_stats(srv->pg_sink, &st);
        json_object_set_new(doc, "metering_sink",
                            json_pack("{s:s, s:I, s:I, s:I, s:I}", "state", st.failing ? "failing" : "up",
                                      "queued", (json_int_t)st.queued, "exported", (json_int_t)st.exported,
                                      "dropped", (json_int_t)st.dropped, "failures",
                                      (json_int_t)st.failures));
    }
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(doc);
    eg_gw_unref(gw);
    return s;
}

/* /health (admin listener, and health_path on the API listener): the
 * state of upstreams, the store and Redis. *serve 0 when the gateway is
 * draining or cannot serve: every server of every upstream is marked down,
 * or the key store cannot be read while routes need keys; then
 * *retry_after says when to ask again (the soonest server back, 5 s when
 * draining). Anything less ("degraded": a server or an upstream down,
 * Redis down, store writes failing) still serves. A new reference. */
json_t *eg_server_health(eg_server_t *srv, int *serve, long long *retry_after)
{
    eg_gw_t *gw = eg_server_current(srv);
    const eg_config_t *cfg = gw->cfg;
    json_t *ups = json_object();
    uint64_t now = eg_now_ms();
    size_t ups_up = 0;
    int degraded = 0;
    long long soonest = -1;
    for (size_t i = 0; i < cfg->nupstreams; i++) {
        const eg_upstream_cfg_t *u = &cfg->upstreams[i];
        size_t up = 0;
        for (size_t k = 0; k < u->nservers; k++) {
            const eg_server_health_t *h = &gw->health[i][k];
            if (!eg_health_is_down(h, now)) {
                up++;
                continue;
            }
            /* back when the passive mark ends, or (active checks) after rise passing probes */
            long long back = atomic_load(&h->active_down)
                                 ? (long long)((u->hc.interval_ms * (uint64_t)u->hc.rise + 999) / 1000)
                                 : (atomic_load(&h->down_until_ms) - (long long)now + 999) / 1000;
            if (soonest < 0 || back < soonest) soonest = back;
        }
        ups_up += up > 0;
        degraded |= up < u->nservers;
        json_object_set_new(ups, u->name,
                            json_pack("{s:s, s:I, s:I}", "state", up ? "up" : "down", "servers_up",
                                      (json_int_t)up, "servers", (json_int_t)u->nservers));
    }
    int ok = cfg->nupstreams == 0 || ups_up > 0;
    json_t *doc = json_object();
    if (srv->keyring) {
        int reads = eg_keyring_healthy(srv->keyring), writes = srv->store_writes_ok;
        int needed = cfg->uses_keys || cfg->has_admin_token;
        if (!reads && needed) ok = 0;
        degraded |= !reads || !writes;
        json_object_set_new(doc, "store",
                            json_pack("{s:s, s:s, s:s}", "backend",
                                      eg_store_backend_name(srv->store), "state",
                                      reads ? "up" : "down", "writes", writes ? "ok" : "failing"));
    }
    if (cfg->has_redis) {
        int up = 0, down = 0;
        for (int i = 0; i < srv->nworkers; i++) {
            int st;
            uint64_t f;
            eg_redis_link_status(srv->workers[i].redis_link, &st, &f);
            up |= st > 0;
            down |= st < 0;
        }
        degraded |= down;
        json_object_set_new(doc, "redis",
                            json_pack("{s:s, s:s}", "address", cfg->redis.addr, "state",
                                      down ? "down"
                                      : up ? "up"
                                           : "idle"));
    }
    *serve = ok && !srv->stopping;
    *retry_after = srv->stopping ? 5 : soonest > 0 ? soonest : 1;
    const char *status = srv->stopping ? "draining"
                         : !ok         ? "unavailable"
                         : degraded    ? "degraded"
                                       : "ok";
    json_t *out = json_pack("{s:s, s:s, s:I, s:I, s:o}", "status", status, "version", eg_version(),
                            "uptime_seconds", (json_int_t)(time(NULL) - srv->started), "generation",
                            (json_int_t)gw->generation, "upstreams", ups);
    json_object_update(out, doc);
    json_decref(doc);
    eg_gw_unref(gw);
    return out;
}

static void admin_health(admin_conn_t *a, const eg_config_t *cfg, const eg_http1_msg_t *m,
                         const char *reqid, int head)
{
    int serve;
    long long retry;
    json_t *h = eg_server_health(a->srv, &serve, &retry);
    if (!serve) {
        size_t n = 0;
        const char *st = json_string_value(json_object_get(h, "status"));
        char msg[120];
        snprintf(msg, sizeof(msg), "The gateway %s.",
                 st && strcmp(st, "draining") == 0 ? "is shutting down"
                                                   : "cannot serve requests now");
        char *resp = eg_admin_error_details(cfg, m, "service_unavailable", msg, NULL, retry,
                                            json_pack("{s:o}", "health", h), reqid, &n);
        admin_send_raw(a, resp, n);
        return;
    }
    char *body = json_dumps(h, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(h);
    admin_reply(a, 200, body ? body : "{\"status\":\"ok\"}", reqid, head);
    free(body);
}

/* GET /metrics (Prometheus text, or OpenMetrics when Accept asks) and
 * /metrics.json: a snapshot of the counters with the upstream servers'
 * state added. */
static void admin_metrics(admin_conn_t *a, const eg_config_t *cfg, const eg_http1_msg_t *m,
                          const char *reqid, int head, int json)
{
    eg_server_t *srv = a->srv;
    if (!srv->metrics) {
        admin_error(a, cfg, m, "not_found",
                    "Metrics are off: metrics.enabled is false (it takes effect on restart).", NULL,
                    reqid);
        return;
    }
    const eg_http_header_t *acc = eg_http1_header(m, "accept");
    eg_mx_format_t f = json  ? EG_MX_JSON
                       : acc ? eg_mx_negotiate(acc->value, acc->value_len)
                             : EG_MX_TEXT;
    eg_mx_snap_t *snap = eg_metrics_snapshot(srv->metrics);
    eg_gw_t *gw = eg_server_current(srv);
    uint64_t now = eg_now_ms();
    for (size_t i = 0; snap && i < gw->cfg->nupstreams; i++) {
        const eg_upstream_cfg_t *u = &gw->cfg->upstreams[i];
        for (size_t k = 0; k < u->nservers; k++)
            eg_mx_snap_server(snap, u->name, u->servers[k].addr,
                              !eg_health_is_down(&gw->health[i][k], now),
                              atomic_load(&gw->health[i][k].fails));
    }
    eg_gw_unref(gw);
    size_t len = 0;
    char *body = snap ? eg_mx_snap_render(snap, f, &len) : NULL;
    eg_mx_snap_free(snap);
    if (!body) {
        admin_error(a, cfg, m, "internal_error", NULL, NULL, reqid);
        return;
    }
    admin_reply_typed(a, 200, eg_mx_content_type(f), body, len, reqid, head);
    free(body);
}

static void admin_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)s;
    admin_conn_t *a = h->data;
    b->base = a->buf + a->len;
    b->len = sizeof(a->buf) - a->len;
}

static void admin_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    admin_conn_t *a = s->data;
    if (a->done) return;
    if (nread < 0) {
        admin_close(a);
        return;
    }
    a->len += (size_t)nread;
    eg_http1_limits_t lim = {sizeof(a->buf), 64, 2048};
    eg_http_header_t h[64];
    eg_http1_msg_t m;
    size_t scanned = 0;
    int rc = eg_http1_parse_request(a->buf, a->len, &lim, h, 64, &scanned, &m);
    if (rc == EG_EAGAIN) return;
    uv_read_stop(s);
    eg_gw_t *gw = eg_server_current(a->srv);
    const eg_config_t *cfg = gw->cfg;
    const eg_http1_msg_t *req = rc < 0 ? NULL : &m;
    char reqid[EG_REQID_MAX + 1];
    unsigned char r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) memset(r, 0, sizeof(r));
    eg_admin_request_id(cfg, req, r, reqid);
    if (rc < 0) {
        admin_error(a, cfg, NULL, "bad_request", "The request is not valid HTTP/1.1.", NULL, reqid);
    } else if (eg_admin_is_keys_path(m.target, m.target_len)) {
        size_t head = (size_t)rc,
               blen = m.framing == EG_FRAMING_LENGTH ? (size_t)m.content_length : 0;
        if (m.framing == EG_FRAMING_CHUNKED || blen > sizeof(a->buf) - head) {
            char msg[120];
            snprintf(msg, sizeof(msg),
                     "The admin API takes bodies of up to %zu bytes, with a Content-Length.",
                     sizeof(a->buf) - head);
            admin_error(a, cfg, &m, "payload_too_large", msg, NULL, reqid);
        } else if (a->len < head + blen) {
            uv_read_start(s, admin_alloc, admin_read); /* the rest of the body */
        } else {
            size_t n = 0;
            char *resp = eg_admin_keys(cfg, a->srv->keyring, &m, a->buf + head, blen, reqid, &n);
            admin_send_raw(a, resp, n);
        }
    } else if (eg_admin_is_usage_path(m.target, m.target_len)) {
        size_t n = 0;
        char *resp = eg_admin_usage(cfg, eg_server_usage(a->srv), &m, reqid, &n);
        admin_send_raw(a, resp, n);
    } else if (eg_dashboard_is_path(m.target, m.target_len)) {
        size_t n = 0;
        char *resp = eg_dashboard_admin(cfg, &m, reqid, &n);
        admin_send_raw(a, resp, n);
    } else if (eg_alerts_is_path(m.target, m.target_len)) {
        size_t n = 0;
        char *resp = eg_alerts_admin(a->srv->alerts, cfg, &m, reqid, &n);
        admin_send_raw(a, resp, n);
    } else {
        int head;
        int get = eg_admin_is_get(&m, &head);
        int health = m.target_len == 7 && memcmp(m.target, "/health", 7) == 0;
        int ready = m.target_len == 6 && memcmp(m.target, "/ready", 6) == 0;
        /* a scraper may add a query (Prometheus' params): the path decides */
        const char *qs = memchr(m.target, '?', m.target_len);
        size_t plen = qs ? (size_t)(qs - m.target) : m.target_len;
        int metrics = plen == 8 && memcmp(m.target, "/metrics", 8) == 0;
        int mjson = plen == 13 && memcmp(m.target, "/metrics.json", 13) == 0;
        if (health && get) {
            admin_health(a, cfg, &m, reqid, head);
        } else if ((metrics || mjson) && get) {
            admin_metrics(a, cfg, &m, reqid, head, mjson);
        } else if (ready && get) {
            int up;
            char *body = ready_body(a->srv, &up);
            admin_reply(a, up ? 200 : 503, body ? body : "{}", reqid, head);
            free(body);
        } else if (health || ready || metrics || mjson) {
            size_t n = 0;
            admin_send_raw(a, eg_admin_not_get(cfg, &m, reqid, &n), n);
        } else {
            char msg[200];
            int pl = m.target_len < 100 ? (int)m.target_len : 100;
            snprintf(
                msg, sizeof(msg),
                "No admin resource at %.*s: the admin listener serves /health, /ready, /metrics, "
                "/metrics.json, /alerts, /keys, /usage and the dashboard at /.",
                pl, m.target);
            admin_error(a, cfg, &m, "not_found", msg, NULL, reqid);
        }
    }
    eg_gw_unref(gw);
}

static int admin_take(acceptor_t *acc, int fd)
{
    eg_server_t *srv = acc->srv;
    if (srv->nadmin >= srv->admin_max) {
        admin_refuse(acc, fd);
        return EG_ERANGE;
    }
    admin_conn_t *a = calloc(1, sizeof(*a));
    if (!a) return EG_ENOMEM;
    a->srv = srv;
    uv_tcp_init(&srv->loop, &a->tcp);
    uv_timer_init(&srv->loop, &a->timer);
    a->tcp.data = a->timer.data = a;
    a->handles = 2;
    srv->nadmin++;
    if (uv_tcp_open(&a->tcp, fd) != 0) {
        admin_close(a); /* fd was not taken */
        return EG_EIO;
    }
    uv_timer_start(&a->timer, admin_timeout, srv->admin_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&a->tcp, admin_alloc, admin_read);
    return EG_OK;
}

/* ------------------------------------------------------------ store probe */

/* Every store.refresh, off the main loop: can the store be read (its
 * version) and written? The write is an UPDATE of a key id that cannot
 * exist ("-"): it changes nothing, but SQLite must take its write lock for
 * it, so a database locked by another writer past busy_timeout, or opened
 * read-only, fails it just as it fails the charges of requests. /ready
 * reads the result; changes are logged once (store_write_failed,
 * store_write_recovered), not once per refused request. */
static void probe_work(uv_work_t *req)
{
    eg_server_t *srv = req->data;
    uint64_t v;
    int rc = eg_store_version(srv->store, &v) != EG_OK          ? 1
             : eg_store_key_touch(srv->store, "-", 0) == EG_EIO ? 2
                                                                : 0;
    srv->probe_rc = rc;
    /* the store's message, read right after the failing call */
    if (rc) snprintf(srv->probe_err, sizeof(srv->probe_err), "%s", eg_store_error(srv->store));
}

static void probe_done(uv_work_t *req, int status)
{
    eg_server_t *srv = req->data;
    srv->probe_busy = 0;
    if (status != 0) return;
    int reads = srv->probe_rc != 1, writes = srv->probe_rc == 0;
    if (srv->probe_rc)
        snprintf(srv->store_reason, sizeof(srv->store_reason), "cannot %s: %s",
                 reads ? "write" : "read", srv->probe_err);
    if (writes != srv->store_writes_ok)
        server_log(srv, writes ? "store_write_recovered" : "store_write_failed",
                   writes ? eg_store_backend_name(srv->store) : srv->store_reason);
    srv->store_reads_ok = reads;
    srv->store_writes_ok = writes;
}

static void store_probe(uv_timer_t *t)
{
    eg_server_t *srv = t->data;
    if (srv->probe_busy || srv->stopping) return;
    srv->probe_req.data = srv;
    if (uv_queue_work(&srv->loop, &srv->probe_req, probe_work, probe_done) == 0)
        srv->probe_busy = 1;
}

static void log_tick(uv_timer_t *t)
{
    eg_server_t *srv = t->data;
    eg_log_flush_suppressed(srv->errors, "error", 0);
}

/* ------------------------------------------------------------ signals */

static void server_log(eg_server_t *srv, const char *event, const char *detail)
{
    eg_logline_t l;
    eg_logline_begin(&l, "server");
    eg_logline_str(&l, "event", event, strlen(event));
    if (detail) eg_logline_str(&l, "detail", detail, strlen(detail));
    eg_logline_end(srv->errors, &l);
}

/* Usage totals for cfg, at start and on a reload (as nginx applies its
 * configuration on a reload): a configuration that meters to SQLite while
 * no usage store is open opens one (on a reload before its routes are
 * served, which would answer 503 without it; the file is migrated first
 * when no key store opened it at start); one already open takes cfg's
 * commit_every, commit_interval and max_uncommitted. The file stays the
 * one opened (store.path takes effect on restart). */
static int usage_apply(eg_server_t *srv, const eg_config_t *cfg, char *err, size_t errlen)
{
    eg_usage_t *u = atomic_load(&srv->usage);
    if (u) {
        eg_usage_retune(u, (size_t)cfg->metering_commit_every, cfg->metering_commit_interval_ms,
                        (size_t)cfg->metering_max_uncommitted);
        return EG_OK;
    }
    if (cfg->store_backend != EG_STORE_SQLITE || cfg->has_redis ||
        !(cfg->uses_metering || cfg->usage_path))
        return EG_OK;
    char e2[256] = "";
    int rc = EG_OK;
    if (!srv->store) { /* nothing opened the file at start: create and migrate it */
        eg_store_t *st = NULL;
        rc = eg_store_open(cfg->store_backend, cfg->store_path, cfg->store_busy_timeout_ms, &st, e2,
                           sizeof(e2));
        eg_store_close(st);
    }
    eg_usage_opts_t uo = {cfg->store_path, cfg->store_busy_timeout_ms,
                          (size_t)cfg->metering_commit_every, cfg->metering_commit_interval_ms,
                          (size_t)cfg->metering_max_uncommitted};
    if (rc == EG_OK) rc = eg_usage_open(&uo, &u, e2, sizeof(e2));
    if (rc != EG_OK) {
        snprintf(err, errlen, "usage: %s", e2);
        return rc;
    }
    /* a store opened by a reload feeds the running sink from its first commit */
    if (srv->pg_sink) eg_usage_set_tap(u, eg_pg_sink_tap, srv->pg_sink);
    atomic_store_explicit(&srv->usage, u, memory_order_release);
    return EG_OK;
}

/* The metering API's event store for cfg (metering.path), at start and
 * on the reload that sets the path first; once open it stays (its
 * backend, Redis prefix and expiries take effect on restart). */
static int meter_store_apply(eg_server_t *srv, const eg_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->meter_path || atomic_load(&srv->meter)) return EG_OK;
    char e2[256] = "";
    eg_meter_store_t *m = NULL;
    int64_t ttl = cfg->meter_rules.max_age_s + cfg->meter_rules.max_future_s + 120;
    int rc;
    if (cfg->has_redis) {
        rc = eg_meter_store_open_redis(cfg->redis_prefix, ttl, (int64_t)cfg->metering_retention_s,
                                       &m, e2, sizeof(e2));
    } else {
        rc = EG_OK;
        if (!srv->store) { /* the file is made and migrated by the key store */
            eg_store_t *st = NULL;
            rc = eg_store_open(cfg->store_backend, cfg->store_path, cfg->store_busy_timeout_ms, &st,
                               e2, sizeof(e2));
            eg_store_close(st);
        }
        if (rc == EG_OK)
            rc = eg_meter_store_open_sqlite(cfg->store_path, cfg->store_busy_timeout_ms, ttl, &m,
                                            e2, sizeof(e2));
    }
    if (rc != EG_OK) {
        snprintf(err, errlen, "metering store: %s", e2);
        return rc;
    }
    atomic_store_explicit(&srv->meter, m, memory_order_release);
    return EG_OK;
}

/* Tells systemd a reload has begun. MONOTONIC_USEC is what systemd >= 253
 * wants with RELOADING=1 (Type=notify-reload); older ones (Debian 12 has
 * 252) ignore the field and take RELOADING=1 alone. */
static void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nSTATUS=reloading the configuration\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ULL +
                   (unsigned long long)ts.tv_nsec / 1000ULL);
}

static void wake_workers(eg_server_t *srv)
{
    for (int i = 0; i < srv->nworkers; i++)
        uv_async_send(&srv->workers[i].wake);
}

static void drain_timeout(uv_timer_t *t)
{
    eg_server_t *srv = t->data;
    srv->stopping = 2;
    server_log(srv, "drain_timeout", "closing remaining connections");
    wake_workers(srv);
}

static void on_signal(uv_signal_t *s, int signum)
{
    eg_server_t *srv = s->data;
    if (signum == SIGTERM || signum == SIGINT) {
        if (srv->stopping) return;
        srv->stopping = 1;
        server_log(srv, "stopping", "draining in-flight requests");
        sd_notify(0, "STOPPING=1\nSTATUS=draining in-flight requests");
        wake_workers(srv);
        uv_timer_start(&srv->drain_timer, drain_timeout, 30000, 0);
        uv_unref((uv_handle_t *)&srv->drain_timer);
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
        uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        /* the admin listener stays up until the workers are done: /health
         * answers 503 draining meanwhile (on_workers_done closes it) */
        if (srv->store) uv_timer_stop(&srv->probe_timer);
        eg_alerts_stop(srv->alerts);
        eg_hcheck_stop(srv->hcheck);
    } else if (signum == SIGHUP) {
        char err[EG_CONFIG_ERRLEN];
        eg_config_t *cfg = NULL;
        eg_gw_t *gw = NULL;
        notify_reloading();
        int rc = eg_config_load(srv->config_path, &cfg, err, sizeof(err));
        if (rc == EG_OK &&
            (rc = gw_build(cfg, srv->metrics, srv->nworkers, srv->tickets, &gw, err, sizeof(err))) != EG_OK)
            eg_config_free(cfg);
        /* metering's stores before the configuration that needs them is
         * served; a failure keeps the running configuration */
        if (rc == EG_OK && ((rc = usage_apply(srv, cfg, err, sizeof(err))) != EG_OK ||
                            (rc = meter_store_apply(srv, cfg, err, sizeof(err))) != EG_OK))
            eg_gw_unref(gw);
        if (rc != EG_OK) {
            eg_metrics_reload(srv->metrics, 0, 0, 0);
            server_log(srv, "reload_failed", err);
            fprintf(stderr, "errgate: reload failed, keeping the running configuration:\n");
            eg_cli_fail_lines(0, err);
            /* systemd waits for READY=1 after RELOADING=1 either way */
            sd_notify(0, "READY=1\nSTATUS=reload failed: running the previous configuration");
            return;
        }
        gw->generation = ++srv->generation;
        pthread_mutex_lock(&srv->lock);
        eg_gw_t *old = srv->gw;
        srv->gw = gw;
        atomic_store_explicit(&srv->current_generation, gw->generation, memory_order_release);
        pthread_mutex_unlock(&srv->lock);
        eg_gw_unref(old);
        eg_hcheck_reload(srv->hcheck);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        eg_metrics_reload(srv->metrics, 1, gw->generation, (double)now.tv_sec + now.tv_nsec / 1e9);
        server_log(srv, "reloaded", srv->config_path);
        tls_expiry_warnings(srv, gw);
        for (size_t i = 0; i < gw->cfg->nwarnings; i++) server_log(srv, "config_warning", gw->cfg->warnings[i]);
        sd_notify(0, "READY=1\nSTATUS=serving (configuration reloaded)");
        if ((gw->cfg->uses_keys || gw->cfg->has_admin_token || gw->cfg->uses_counters ||
             gw->cfg->uses_metering || gw->cfg->meter_path) &&
            !srv->keyring)
            server_log(srv, "reload_warning",
                       "a key store is needed now: store settings take effect on restart");
        if (srv->pg_sink ? !eg_pg_sink_is(srv->pg_sink, gw->cfg->metering_sink) : gw->cfg->metering_sink != NULL)
            server_log(srv, "reload_warning", "metering.sink takes effect on restart: the running sink stays");
        if (eg_metrics_bounds_differ(srv->metrics, gw->cfg->metrics_buckets, gw->cfg->nmetrics_buckets))
            server_log(srv, "reload_warning", "metrics.buckets take effect on restart: the running ones stay");
        if (!srv->metrics && gw->cfg->metrics_enabled)
            server_log(srv, "reload_warning", "metrics.enabled takes effect on restart");
    } else if (signum == SIGUSR1) {
        eg_log_reopen(srv->access);
        if (srv->errors != srv->access) eg_log_reopen(srv->errors);
        server_log(srv, "logs_reopened", NULL);
    }
}

/* ------------------------------------------------------------ descriptors */

/* Descriptors the process may open after the count at start: SQLite's
 * journal and temporary files, a log file reopened before the old one is
 * closed, a stray /proc read; libuv's reserve per loop and a Redis
 * connection per worker are added to it. */
#define EG_FD_SPARE 8

/* Raises the soft open-file limit to the hard one: the usual soft default
 * (1024) is a tenth of max_connections' default, and nothing is gained by
 * running out early. Returns the limit in force. */
static unsigned long long raise_nofile(eg_server_t *srv)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            char detail[200];
            snprintf(detail, sizeof(detail),
                     "open-file limit raised from %llu to %llu (the hard limit)",
                     (unsigned long long)was, (unsigned long long)rl.rlim_cur);
            server_log(srv, "fd_limit_raised", detail);
        } else {
            rl.rlim_cur = was;
        }
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1ull << 30 : (unsigned long long)rl.rlim_cur;
}

/* Descriptors open now (/proc/self/fd's entries but the directory's own;
 * without /proc, those below the limit that fcntl knows). */
static long long fds_in_use(unsigned long long limit)
{
    long long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            n += e->d_name[0] != '.';
        closedir(d);
        return n - 1;
    }
    for (long long fd = 0; fd < (long long)(limit < 65536 ? limit : 65536); fd++)
        n += fcntl((int)fd, F_GETFD) != -1;
    return n;
}

/* Clamps max_connections and the admin cap to the open-file limit, and
 * logs each clamp. A client connection counts two descriptors, since each
 * may hold an upstream connection (pooled idle ones were some client's);
 * the admin listener gets at most a quarter of what is left. Past the
 * clamped max_connections a client gets the 503 the setting promises,
 * instead of the accept() failures an unreachable setting would bring. */
static void fit_limits(eg_server_t *srv, const eg_config_t *cfg, unsigned long long limit)
{
    long long used = fds_in_use(limit);
    long long spare = EG_FD_SPARE + srv->nworkers + 1 + (cfg->has_redis ? srv->nworkers : 0);
    long long avail = (long long)(limit > 1ull << 40 ? 1ull << 40 : limit) - used - spare;
    long long admin = cfg->has_admin ? (long long)cfg->admin_max_connections : 0;
    char detail[400];
    if (cfg->has_admin && admin > avail / 4) {
        long long was = admin;
        admin = avail / 4 > 1 ? avail / 4 : 1;
        snprintf(detail, sizeof(detail),
                 "admin.max_connections %lld is more than the open-file limit of %llu allows: "
                 "using %lld",
                 was, limit, admin);
        server_log(srv, "admin_max_connections_clamped", detail);
    }
    long long clients = (avail - admin) / 2;
    if (clients < 1) clients = 1;
    uint64_t max = cfg->limits.max_connections;
    if ((uint64_t)clients < max) {
        snprintf(detail, sizeof(detail),
                 "max_connections %llu is more than the open-file limit of %llu allows: using %lld "
                 "(two descriptors per connection; %lld in use at start, %lld kept spare, %lld for "
                 "the admin listener)",
                 (unsigned long long)max, limit, clients, used, spare, admin);
        server_log(srv, "max_connections_clamped", detail);
        max = (uint64_t)clients;
    }
    srv->admin_max = (size_t)admin;
    for (int i = 0; i < srv->nworkers; i++)
        srv->workers[i].max_conns = (max + (uint64_t)srv->nworkers - 1) / (uint64_t)srv->nworkers;
}

static int is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* ------------------------------------------------------------ serve */

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate serve --config FILE\n\n"
               "Runs the gateway. Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the\n"
               "configuration (a bad one is reported and the running one stays), SIGUSR1\n"
               "reopens the log files.\n"
               "Exit codes: 0 after a clean stop, 2 bad arguments, 3 bad configuration,\n"
               "4 cannot listen (the address is taken, by another serve too), 69 the store\n"
               "cannot be opened, 70 internal failure.\n");
}

int eg_cmd_serve(int argc, char **argv)
{
    const char *path = NULL;
    int done = eg_cli_config_option(argc, argv, "serve", usage, &path);
    if (done >= 0) return done;
    if (optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "serve: unexpected argument '%s'", argv[optind]);
    if (!path) return eg_cli_fail(EG_EXIT_USAGE, "serve: --config FILE is required");
    char err[EG_CONFIG_ERRLEN];
    eg_config_t *cfg = NULL;
    int rc = eg_config_load(path, &cfg, err, sizeof(err));
    if (rc != EG_OK)
        return eg_cli_fail_lines(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
    signal(SIGPIPE, SIG_IGN);
    eg_server_t *srv = calloc(1, sizeof(*srv));
    int exit_code = EG_EXIT_OK;
    if (!srv) return eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
    pthread_mutex_init(&srv->lock, NULL);
    srv->started = time(NULL);
    srv->config_path = strdup(path);
    if (eg_log_open(cfg->access_log, &srv->access) != EG_OK) {
        eg_config_free(cfg);
        free(srv->config_path);
        free(srv);
        return eg_cli_fail(EG_EXIT_INPUT, "cannot open access log '%s'", cfg->access_log);
    }
    if (strcmp(cfg->error_log, cfg->access_log) == 0)
        srv->errors = srv->access;
    else if (eg_log_open(cfg->error_log, &srv->errors) != EG_OK) {
        fprintf(stderr, "errgate: cannot open error log '%s'\n", cfg->error_log);
        eg_log_close(srv->access);
        eg_config_free(cfg);
        free(srv->config_path);
        free(srv);
        return EG_EXIT_INPUT;
    }
    /* the registry lives as long as the process: counters survive reloads
     * (metrics.enabled and buckets take effect on restart) */
    if (cfg->metrics_enabled && eg_metrics_new(cfg->workers, cfg->metrics_buckets,
                                               cfg->nmetrics_buckets, &srv->metrics) != EG_OK) {
        eg_config_free(cfg);
        exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto out_logs;
    }
    char gerr[EG_CONFIG_ERRLEN];
    if (!(srv->tickets = eg_tls_tickets_new())) {
        eg_config_free(cfg);
        exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto out_logs;
    }
    if ((rc = gw_build(cfg, srv->metrics, cfg->workers, srv->tickets, &srv->gw, gerr, sizeof(gerr))) != EG_OK) {
        eg_config_free(cfg);
        exit_code = eg_cli_fail(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, "%s", gerr);
        goto out_logs;
    }
    atomic_init(&srv->current_generation, srv->gw->generation);
    cfg = srv->gw->cfg;
    for (size_t i = 0; i < cfg->nwarnings; i++) server_log(srv, "config_warning", cfg->warnings[i]);
    tls_expiry_warnings(srv, srv->gw);
    unsigned long long nofile = raise_nofile(srv);
    if (cfg->uses_keys || cfg->has_admin_token || cfg->uses_counters || cfg->uses_metering || cfg->meter_path) {
        rc = eg_store_open(cfg->store_backend, cfg->store_path, cfg->store_busy_timeout_ms,
                           &srv->store, err, sizeof(err));
        if (rc == EG_OK &&
            (rc = eg_store_set_commit(srv->store, (size_t)cfg->store_commit_every, cfg->store_commit_interval_ms)) != EG_OK)
            snprintf(err, sizeof(err), "cannot start the store's writer");
        if (rc == EG_OK)
            rc = eg_keyring_new(srv->store, cfg->pepper, cfg->pepper_len, cfg->store_refresh_ms,
                                &srv->keyring, err, sizeof(err));
        if (rc == EG_OK) rc = eg_keyring_start(srv->keyring);
        if (rc != EG_OK) {
            exit_code = eg_cli_fail(EG_EXIT_UNAVAILABLE, "store: %s", err);
            goto out_gw;
        }
    }
    /* usage totals go to the store's SQLite file (migrated just now) unless
     * Redis holds the traffic state; the writer's last commit is at
     * shutdown, after the workers (their on_done hooks) have stopped */
    if (srv->store && (rc = usage_apply(srv, cfg, err, sizeof(err))) != EG_OK) {
        exit_code = eg_cli_fail(EG_EXIT_UNAVAILABLE, "%s", err);
        goto out_gw;
    }
    /* the sink connects on its own thread: a server that does not answer
     * now is logged and tried again (pg_sink_failed), the gateway serves */
    if (cfg->metering_sink) {
        eg_pg_sink_cfg_t pc = {.conninfo = cfg->metering_sink,
                               .log = srv->errors,
                               .max_queued = (size_t)cfg->metering_sink_queue};
        if (eg_pg_sink_open_cfg(&pc, &srv->pg_sink, err, sizeof(err)) != EG_OK) {
            exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "metering.sink: %s", err);
            goto out_gw;
        }
        /* before the first record: every commit's totals are copied */
        eg_usage_t *u = atomic_load(&srv->usage);
        if (u) eg_usage_set_tap(u, eg_pg_sink_tap, srv->pg_sink);
    }
    const char *off = getenv("ERRGATE_CLOCK_OFFSET");
    if (off) {
        char *end = NULL;
        srv->clock_offset = strtoll(off, &end, 10);
        if (!*off || *end || srv->clock_offset < -3153600000LL ||
            srv->clock_offset > 3153600000LL) {
            exit_code =
                eg_cli_fail(EG_EXIT_USAGE, "ERRGATE_CLOCK_OFFSET must be a number of seconds");
            goto out_gw;
        }
    }
    if (eg_limiter_new(&srv->limiter) != EG_OK) {
        exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto out_gw;
    }
    /* the idempotency store is the traffic state's: Redis when configured,
     * else the key store's backend (the same SQLite file, or memory) */
    if (cfg->uses_idempotency) {
        eg_idem_store_opts_t io = {.backend = cfg->has_redis                           ? EG_IDEM_REDIS
                                              : cfg->store_backend == EG_STORE_SQLITE ? EG_IDEM_SQLITE
                                                                                      : EG_IDEM_MEMORY,
                                   .path = cfg->store_path,
                                   .busy_timeout_ms = cfg->store_busy_timeout_ms,
                                   .redis_prefix = cfg->redis_prefix,
                                   .timeout_ms = cfg->redis_timeout_ms};
        if (eg_idem_store_open(&io, &srv->idem, err, sizeof(err)) != EG_OK) {
            exit_code = eg_cli_fail(EG_EXIT_UNAVAILABLE, "idempotency store: %s", err);
            goto out_gw;
        }
    }
    /* the metering API's events: Redis when configured (every node on one
     * set of ids), else the store's SQLite file (after the key store made
     * and migrated it) */
    if ((rc = meter_store_apply(srv, cfg, err, sizeof(err))) != EG_OK) {
        exit_code = eg_cli_fail(EG_EXIT_UNAVAILABLE, "%s", err);
        goto out_gw;
    }
    uv_loop_init(&srv->loop);
    uv_timer_init(&srv->loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    uv_timer_start(&srv->sweep_timer, sweep, 10000, 10000);
    uv_unref((uv_handle_t *)&srv->sweep_timer);
    uv_timer_init(&srv->loop, &srv->log_timer);
    srv->log_timer.data = srv;
    uv_timer_start(&srv->log_timer, log_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&srv->log_timer);
    if (srv->store) {
        /* optimistic until the first probe, which runs at once */
        srv->store_reads_ok = srv->store_writes_ok = 1;
        uv_timer_init(&srv->loop, &srv->probe_timer);
        srv->probe_timer.data = srv;
        uv_timer_start(&srv->probe_timer, store_probe, 0,
                       cfg->store_refresh_ms ? cfg->store_refresh_ms : 1000);
        uv_unref((uv_handle_t *)&srv->probe_timer);
    }
    srv->nworkers = cfg->workers;
    srv->nlisteners = cfg->nlisteners;
    srv->workers = calloc((size_t)srv->nworkers, sizeof(eg_worker_t));
    srv->acceptors = calloc((size_t)srv->nworkers * srv->nlisteners, sizeof(acceptor_t));
    /* new session ticket keys every hour; tickets of the previous hour still resume */
    uv_timer_init(&srv->loop, &srv->ticket_timer);
    srv->ticket_timer.data = srv;
    uv_timer_start(&srv->ticket_timer, ticket_rotate, EG_TICKET_ROTATE_MS, EG_TICKET_ROTATE_MS);
    uv_unref((uv_handle_t *)&srv->ticket_timer);
    if (!srv->workers || !srv->acceptors)
        exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
    /* both addresses first: no worker takes a connection it would drop */
    for (size_t l = 0; !exit_code && l < cfg->nlisteners; l++)
        if (probe_free(&cfg->listeners[l].addr, err, sizeof(err)) != 0)
            exit_code = eg_cli_fail(EG_EXIT_LISTEN, "%s", err);
    if (!exit_code && cfg->has_admin && probe_free(&cfg->admin_listen, err, sizeof(err)) != 0)
        exit_code = eg_cli_fail(EG_EXIT_LISTEN, "admin: %s", err);
    int started = 0;
    for (int i = 0; !exit_code && i < srv->nworkers; i++) {
        eg_worker_t *w = &srv->workers[i];
        w->id = i;
        w->srv = srv;
        w->logs_on = eg_log_enabled(srv->access) || eg_log_enabled(srv->errors);
        w->rnd_used = sizeof(w->rnd);
        unsigned char tag[8];
        eg_worker_random(w, tag, sizeof(tag));
        if (!(w->redis_link = eg_redis_link_new(tag))) {
            exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
            break;
        }
        uv_loop_init(&w->loop);
        for (size_t l = 0; !exit_code && l < srv->nlisteners; l++) {
            acceptor_t *a = &srv->acceptors[(size_t)i * srv->nlisteners + l];
            int fd;
            if (listen_socket(&cfg->listeners[l].addr, 1, &fd, err, sizeof(err)) != 0) {
                exit_code = eg_cli_fail(EG_EXIT_LISTEN, "%s", err);
                break;
            }
            a->take = worker_take;
            a->refuse = worker_refuse;
            a->listener = l;
            a->tls = cfg->listeners[l].tls != NULL;
            if (acceptor_init(a, &w->loop, fd, srv, w) != EG_OK) {
                close(fd);
                exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "cannot watch the listening socket");
            }
        }
        if (exit_code) {
            uv_walk(&w->loop, walk_close, NULL);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            uv_loop_close(&w->loop);
            for (size_t l = 0; l < srv->nlisteners; l++)
                acceptor_release(&srv->acceptors[(size_t)i * srv->nlisteners + l]);
            break;
        }
        uv_async_init(&w->loop, &w->wake, worker_wake);
        w->wake.data = w;
        started++;
    }
    if (!exit_code && cfg->has_admin) {
        int fd;
        srv->admin.take = admin_take;
        srv->admin.refuse = admin_refuse;
        srv->admin_timeout_ms = cfg->admin_timeout_ms;
        if (listen_socket(&cfg->admin_listen, 0, &fd, err, sizeof(err)) != 0) {
            exit_code = eg_cli_fail(EG_EXIT_LISTEN, "admin: %s", err);
        } else if (acceptor_init(&srv->admin, &srv->loop, fd, srv, srv) != EG_OK) {
            close(fd);
            exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "cannot watch the admin socket");
        } else {
            srv->has_admin = 1;
        }
    }
    if (exit_code) {
        for (int i = 0; i < started; i++) {
            uv_walk(&srv->workers[i].loop, walk_close, NULL);
            uv_run(&srv->workers[i].loop, UV_RUN_DEFAULT);
            uv_loop_close(&srv->workers[i].loop);
            for (size_t l = 0; l < srv->nlisteners; l++)
                acceptor_release(&srv->acceptors[(size_t)i * srv->nlisteners + l]);
        }
        uv_walk(&srv->loop, walk_close, NULL);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->loop);
        acceptor_release(&srv->admin);
        goto out_gw;
    }
    uv_signal_init(&srv->loop, &srv->sig_term);
    uv_signal_init(&srv->loop, &srv->sig_int);
    uv_signal_init(&srv->loop, &srv->sig_hup);
    uv_signal_init(&srv->loop, &srv->sig_usr1);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv->sig_usr1.data = srv;
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_hup, on_signal, SIGHUP);
    uv_signal_start(&srv->sig_usr1, on_signal, SIGUSR1);
    uv_timer_init(&srv->loop, &srv->drain_timer);
    srv->drain_timer.data = srv;
    /* everything that stays open is open now: what is left of the limit decides */
    fit_limits(srv, cfg, nofile);
    if (eg_alerts_start(&srv->loop, srv, &srv->alerts) != EG_OK)
        server_log(srv, "alerts_unavailable", "the alert monitor could not start");
    if (eg_hcheck_start(&srv->loop, srv, &srv->hcheck) != EG_OK)
        server_log(srv, "health_checks_unavailable", "the upstream health checks could not start");
    char detail[600];
    if (!is_loopback(cfg->admin_listen.host) && cfg->has_admin) {
        snprintf(detail, sizeof(detail),
                 "the admin listener on %s accepts connections from other hosts: /health, /ready "
                 "and /keys (behind the admin token) should not be public; use 127.0.0.1:PORT or "
                 ":PORT (loopback)",
                 cfg->admin_listen.addr);
        server_log(srv, "admin_exposed", detail);
    }
    uv_async_init(&srv->loop, &srv->workers_done, on_workers_done);
    srv->workers_done.data = srv;
    atomic_init(&srv->workers_left, srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    size_t dl = 0;
    for (size_t l = 0; l < cfg->nlisteners && dl < sizeof(detail); l++) {
        int k = snprintf(detail + dl, sizeof(detail) - dl, "%s%s%s:%d%s", l ? ", " : "listening on ",
                         cfg->listeners[l].tls ? "https://" : "", cfg->listeners[l].addr.host,
                         cfg->listeners[l].addr.port, "");
        if (k < 0) break;
        dl += (size_t)k;
    }
    if (dl < sizeof(detail))
        snprintf(detail + dl, sizeof(detail) - dl, " with %d workers%s", srv->nworkers,
                 cfg->has_admin ? ", admin listener up" : "");
    server_log(srv, "started", detail);
    sd_notifyf(0, "READY=1\nSTATUS=%s", detail);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_join(&srv->workers[i].thread);
    for (int i = 0; i < srv->nworkers; i++) {
        eg_worker_t *w = &srv->workers[i];
        uv_walk(&w->loop, walk_close, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    eg_alerts_stop(srv->alerts);
    eg_hcheck_stop(srv->hcheck);
    uv_walk(&srv->loop, walk_close, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    eg_alerts_free(srv->alerts);
    eg_hcheck_free(srv->hcheck);
    for (size_t i = 0; i < (size_t)srv->nworkers * srv->nlisteners; i++)
        acceptor_release(&srv->acceptors[i]);
    acceptor_release(&srv->admin);
    eg_log_flush_suppressed(srv->errors, "error", 1);
    server_log(srv, "stopped", NULL);
out_gw:
    eg_usage_close(atomic_load(&srv->usage)); /* the last commit */
    eg_idem_store_close(srv->idem);
    eg_meter_store_close(atomic_load(&srv->meter));
    eg_pg_sink_close(srv->pg_sink); /* after both: their last rows too, one last try */
    eg_limiter_free(srv->limiter);
    eg_keyring_free(srv->keyring);
    eg_store_close(srv->store);
    free(srv->acceptors);
    for (int i = 0; srv->workers && i < srv->nworkers; i++) {
        eg_redis_link_free(srv->workers[i].redis_link);
        free(srv->workers[i].tls_in);
    }
    free(srv->workers);
    eg_gw_unref(srv->gw);
    srv->gw = NULL;
out_logs:
    eg_metrics_free(srv->metrics); /* after the last generation */
    eg_tls_tickets_free(srv->tickets);
    if (srv->errors != srv->access) eg_log_close(srv->errors);
    eg_log_close(srv->access);
    pthread_mutex_destroy(&srv->lock);
    free(srv->config_path);
    free(srv);
    return exit_code;
}

static void check_config_usage(FILE *f)
{
    fprintf(f, "usage: errgate check-config --config FILE\n"
               "       errgate check-config FILE\n\n"
               "Validates a gateway configuration: prints a summary and exits 0,\n"
               "or prints file:line:col: what is wrong, a line for each problem, and exits 3\n"
               "(2 for bad arguments).\n");
}

int eg_cmd_check_config(int argc, char **argv)
{
    const char *path = NULL;
    int done = eg_cli_config_option(argc, argv, "check-config", check_config_usage, &path);
    if (done >= 0) return done;
    /* FILE alone as before, or --config FILE like serve and keys */
    if (!path && optind < argc) path = argv[optind++];
    if (!path || optind < argc)
        return eg_cli_fail(EG_EXIT_USAGE, "check-config: expected one FILE (see --help)");
    char err[EG_CONFIG_ERRLEN];
    eg_config_t *cfg = NULL;
    int rc = eg_config_load(path, &cfg, err, sizeof(err));
    if (rc != EG_OK)
        return eg_cli_fail_lines(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
    eg_gw_t gwt;
    memset(&gwt, 0, sizeof(gwt));
    rc = gw_tls_build(&gwt, cfg, NULL, err, sizeof(err)); /* certificates and keys load */
    gw_tls_free(&gwt, cfg);
    if (rc != EG_OK) {
        eg_config_free(cfg);
        return eg_cli_fail(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, "%s", err);
    }
    printf("%s: ok: listen %s:%d, %d workers, %zu upstreams, %zu routes", path, cfg->listen.host,
           cfg->listen.port, cfg->workers, cfg->nupstreams, cfg->nroutes_declared);
    if (cfg->nroutes > cfg->nroutes_declared)
        printf(" (+%zu from OpenAPI operations)", cfg->nroutes - cfg->nroutes_declared);
    printf(", dialect %s\n", eg_dialect_name(cfg->dialect));
    /* what the configuration names but the gateway does not enforce */
    for (size_t i = 0; i < cfg->nwarnings; i++)
        fprintf(stderr, "errgate: warning: %s\n", cfg->warnings[i]);
    if (cfg->has_admin && !is_loopback(cfg->admin_listen.host))
        fprintf(stderr,
                "errgate: warning: admin_listen %s accepts connections from other hosts; "
                "/health, /ready and /keys should not be public (use 127.0.0.1:PORT or :PORT)\n",
                cfg->admin_listen.addr);
    eg_config_free(cfg);
    return EG_EXIT_OK;
}

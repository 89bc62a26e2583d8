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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "admin.h"
#include "errgate/http1.h"
#include "errgate/jwt.h"
#include "errgate/reqid.h"
#include "gateway.h"
#include "keyring.h"
#include "limiter.h"
#include "redis.h"
#include "respond.h"

struct eg_server_s {
    pthread_mutex_t lock;
    eg_gw_t *gw; /* active configuration, guarded by lock */
    eg_log_t *access, *errors;
    eg_worker_t *workers;
    int nworkers;
    uv_loop_t loop; /* main thread: signals, admin */
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_tcp_t admin;
    int has_admin;
    int stopping;
    uv_timer_t drain_timer;
    char *config_path;
    uint64_t generation;
    eg_store_t *store;      /* opened at start when keys or the admin API need it */
    eg_keyring_t *keyring;  /* API keys for the workers, from the store */
    eg_limiter_t *limiter;  /* rate limits and concurrency slots */
    long long clock_offset; /* ERRGATE_CLOCK_OFFSET */
    uv_timer_t sweep_timer;
};

long long eg_server_clock_offset(const eg_server_t *srv)
{
    return srv->clock_offset;
}

eg_store_t *eg_server_store(eg_server_t *srv)
{
    return srv->store;
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

void eg_gw_unref(eg_gw_t *gw)
{
    if (!gw || atomic_fetch_sub(&gw->refs, 1) != 1) return;
    for (size_t i = 0; i < gw->cfg->nupstreams; i++)
        free(gw->health[i]);
    free(gw->health);
    free(gw->rr);
    eg_router_free(gw->router);
    notfound_free(gw);
    eg_config_free(gw->cfg);
    free(gw);
}

static int gw_build(eg_config_t *cfg, eg_gw_t **out)
{
    eg_gw_t *gw = calloc(1, sizeof(*gw));
    if (!gw) return EG_ENOMEM;
    atomic_init(&gw->refs, 1);
    gw->cfg = cfg;
    eg_route_spec_t *specs = calloc(cfg->nroutes, sizeof(*specs));
    gw->health = calloc(cfg->nupstreams, sizeof(*gw->health));
    gw->rr = calloc(cfg->nupstreams, sizeof(*gw->rr));
    int rc = specs && gw->health && gw->rr ? EG_OK : EG_ENOMEM;
    for (size_t i = 0; !rc && i < cfg->nroutes; i++)
        specs[i] =
            (eg_route_spec_t){cfg->routes[i].path, cfg->routes[i].prefix, cfg->routes[i].methods};
    if (!rc) rc = eg_router_new(specs, cfg->nroutes, &gw->router);
    for (size_t i = 0; !rc && i < cfg->nupstreams; i++) {
        gw->health[i] = calloc(cfg->upstreams[i].nservers, sizeof(eg_server_health_t));
        if (!gw->health[i]) rc = EG_ENOMEM;
    }
    free(specs);
    if (!rc) rc = notfound_build(gw);
    if (rc) {
        gw->cfg = NULL;
        for (size_t i = 0; gw->health && i < cfg->nupstreams; i++)
            free(gw->health[i]);
        free(gw->health);
        free(gw->rr);
        eg_router_free(gw->router);
        notfound_free(gw);
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

void eg_worker_random(eg_worker_t *w, unsigned char *out, size_t n)
{
    if (w->rnd_used + n > sizeof(w->rnd)) {
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
    memcpy(out, w->rnd + w->rnd_used, n);
    w->rnd_used += n;
}

/* A listening socket of our own with SO_REUSEPORT, so every worker accepts
 * on the same port and the kernel spreads connections over them. */
static int listen_socket(const eg_hostport_t *hp, int reuseport, int *out_fd, char *err,
                         size_t errlen)
{
    struct sockaddr_storage ss;
    const char *host = strcmp(hp->host, "localhost") == 0 ? "127.0.0.1" : hp->host;
    int v6 = strchr(host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(host, hp->port, (struct sockaddr_in6 *)&ss)
                : uv_ip4_addr(host, hp->port, (struct sockaddr_in *)&ss);
    if (rc) {
        snprintf(err, errlen, "cannot listen on %s:%d: not an IP address", hp->host, hp->port);
        return -1;
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
        bind(fd, (struct sockaddr *)&ss,
             v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) != 0 ||
        listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", hp->host, hp->port, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    *out_fd = fd;
    return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
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
        if (!uv_is_closing((uv_handle_t *)&w->listener))
            uv_close((uv_handle_t *)&w->listener, NULL);
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
    eg_redis_free(w->redis);
    w->redis = NULL;
    /* close what is left (connections cut by the drain timeout) */
    uv_walk(&w->loop, walk_close, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    eg_apikey_hasher_free(w->hasher);
    w->hasher = NULL;
    eg_jwt_mac_free(w->jwt_mac);
    w->jwt_mac = NULL;
}

/* ------------------------------------------------------------ admin */

typedef struct {
    uv_tcp_t tcp;
    eg_server_t *srv;
    char buf[65536]; /* head and body of one request */
    size_t len;
    int done;
    char *raw; /* a response from admin.c, freed with the connection */
} admin_conn_t;

static void admin_closed(uv_handle_t *h)
{
    admin_conn_t *a = h->data;
    free(a->raw);
    free(a);
}

static void admin_written(uv_write_t *req, int status)
{
    (void)status;
    admin_conn_t *a = req->data;
    free(req);
    uv_close((uv_handle_t *)&a->tcp, admin_closed);
}

/* Sends a complete response the caller built (malloc'd; taken). */
static void admin_send_raw(admin_conn_t *a, char *resp, size_t n)
{
    uv_write_t *req = malloc(sizeof(*req));
    a->done = 1;
    if (!req || !resp) {
        free(req);
        free(resp);
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
        return;
    }
    /* kept in a->raw until the connection is freed */
    req->data = a;
    uv_buf_t b = uv_buf_init(resp, (unsigned)n);
    a->raw = resp;
    if (uv_write(req, (uv_stream_t *)&a->tcp, &b, 1, admin_written) != 0) {
        free(req);
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
    }
}

static void admin_reply(admin_conn_t *a, int status, const char *body)
{
    size_t blen = strlen(body);
    uv_write_t *req = malloc(sizeof(*req) + 512 + blen);
    if (!req) {
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
        return;
    }
    char *out = (char *)(req + 1);
    char date[EG_HTTP1_DATE_LEN + 1];
    eg_http1_date((int64_t)time(NULL), date);
    int n = snprintf(
        out, 512,
        "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        status, eg_reason_phrase(status), date, blen);
    memcpy(out + n, body, blen);
    req->data = a;
    uv_buf_t b = uv_buf_init(out, (unsigned)(n + (int)blen));
    a->done = 1;
    if (uv_write(req, (uv_stream_t *)&a->tcp, &b, 1, admin_written) != 0) {
        free(req);
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
    }
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
            char addr[300];
            snprintf(addr, sizeof(addr), "%s:%d", u->servers[k].host, u->servers[k].port);
            int down = eg_health_is_down(&gw->health[i][k], now);
            up += !down;
            json_array_append_new(servers, json_pack("{s:s, s:s, s:i}", "address", addr, "state",
                                                     down ? "down" : "up", "failures",
                                                     atomic_load(&gw->health[i][k].fails)));
        }
        if (!up) *ready = 0;
        json_object_set_new(
            ups, u->name, json_pack("{s:s, s:o}", "state", up ? "up" : "down", "servers", servers));
    }
    json_t *store = NULL;
    if (srv->keyring) {
        int ok = eg_keyring_healthy(srv->keyring);
        if (!ok) *ready = 0;
        store = json_pack("{s:s, s:s, s:I}", "backend", eg_store_backend_name(srv->store), "state",
                          ok ? "up" : "down", "keys", (json_int_t)eg_keyring_count(srv->keyring));
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
                failures += atomic_load(&srv->workers[i].redis_failures);
                int st = atomic_load(&srv->workers[i].redis_up);
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
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(doc);
    eg_gw_unref(gw);
    return s;
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
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
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
    if (rc < 0) {
        admin_reply(a, 400, "{\"error\":\"bad_request\"}");
        return;
    }
    if (eg_admin_is_keys_path(m.target, m.target_len)) {
        size_t head = (size_t)rc,
               blen = m.framing == EG_FRAMING_LENGTH ? (size_t)m.content_length : 0;
        if (m.framing == EG_FRAMING_CHUNKED || blen > sizeof(a->buf) - head) {
            admin_reply(a, 413, "{\"error\":\"payload_too_large\"}");
            return;
        }
        if (a->len < head + blen) {
            uv_read_start(s, admin_alloc, admin_read); /* the rest of the body */
            return;
        }
        char reqid[EG_REQID_MAX + 1];
        unsigned char r[16];
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) memset(r, 0, sizeof(r));
        eg_reqid_generate(r, reqid);
        eg_gw_t *gw = eg_server_current(a->srv);
        size_t n = 0;
        char *resp = eg_admin_keys(gw->cfg, a->srv->keyring, &m, a->buf + head, blen, reqid, &n);
        eg_gw_unref(gw);
        admin_send_raw(a, resp, n);
        return;
    }
    int get = (m.method_len == 3 && memcmp(m.method, "GET", 3) == 0) ||
              (m.method_len == 4 && memcmp(m.method, "HEAD", 4) == 0);
    if (m.target_len == 7 && memcmp(m.target, "/health", 7) == 0 && get) {
        admin_reply(a, 200, "{\"status\":\"ok\"}");
    } else if (m.target_len == 6 && memcmp(m.target, "/ready", 6) == 0 && get) {
        int ready;
        char *body = ready_body(a->srv, &ready);
        admin_reply(a, ready ? 200 : 503, body ? body : "{}");
        free(body);
    } else if (m.target_len == 7 && memcmp(m.target, "/health", 7) == 0) {
        admin_reply(a, 405, "{\"error\":\"method_not_allowed\"}");
    } else {
        admin_reply(a, 404, "{\"error\":\"not_found\"}");
    }
}

static void admin_connection(uv_stream_t *l, int status)
{
    eg_server_t *srv = l->data;
    if (status < 0) return;
    admin_conn_t *a = calloc(1, sizeof(*a));
    if (!a) return;
    a->srv = srv;
    uv_tcp_init(&srv->loop, &a->tcp);
    a->tcp.data = a;
    if (uv_accept(l, (uv_stream_t *)&a->tcp) != 0) {
        uv_close((uv_handle_t *)&a->tcp, admin_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&a->tcp, admin_alloc, admin_read);
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
        wake_workers(srv);
        uv_timer_start(&srv->drain_timer, drain_timeout, 30000, 0);
        uv_unref((uv_handle_t *)&srv->drain_timer);
        uv_close((uv_handle_t *)&srv->sig_hup, NULL);
        uv_close((uv_handle_t *)&srv->sig_usr1, NULL);
        uv_close((uv_handle_t *)&srv->sig_term, NULL);
        uv_close((uv_handle_t *)&srv->sig_int, NULL);
        if (srv->has_admin) uv_close((uv_handle_t *)&srv->admin, NULL);
    } else if (signum == SIGHUP) {
        char err[EG_CONFIG_ERRLEN];
        eg_config_t *cfg = NULL;
        eg_gw_t *gw = NULL;
        int rc = eg_config_load(srv->config_path, &cfg, err, sizeof(err));
        if (rc == EG_OK && (rc = gw_build(cfg, &gw)) != EG_OK) {
            eg_config_free(cfg);
            snprintf(err, sizeof(err), "%s", eg_strerror(rc));
        }
        if (rc != EG_OK) {
            server_log(srv, "reload_failed", err);
            fprintf(stderr, "errgate: reload failed, keeping the running configuration:\n");
            eg_cli_fail_lines(0, err);
            return;
        }
        gw->generation = ++srv->generation;
        pthread_mutex_lock(&srv->lock);
        eg_gw_t *old = srv->gw;
        srv->gw = gw;
        pthread_mutex_unlock(&srv->lock);
        eg_gw_unref(old);
        server_log(srv, "reloaded", srv->config_path);
        if ((gw->cfg->uses_keys || gw->cfg->has_admin_token || gw->cfg->uses_counters) &&
            !srv->keyring)
            server_log(srv, "reload_warning",
                       "a key store is needed now: store settings take effect on restart");
    } else if (signum == SIGUSR1) {
        eg_log_reopen(srv->access);
        if (srv->errors != srv->access) eg_log_reopen(srv->errors);
        server_log(srv, "logs_reopened", NULL);
    }
}

/* ------------------------------------------------------------ serve */

static void usage(FILE *f)
{
    fprintf(f, "usage: errgate serve --config FILE\n\n"
               "Runs the gateway. Signals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the\n"
               "configuration (a bad one is reported and the running one stays), SIGUSR1\n"
               "reopens the log files.\n"
               "Exit codes: 0 after a clean stop, 2 bad arguments, 3 bad configuration,\n"
               "4 cannot listen, 70 internal failure.\n");
}

int eg_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
        if (c == 'c')
            path = optarg;
        else if (c == 'h') {
            usage(stdout);
            return EG_EXIT_OK;
        } else {
            return eg_cli_fail(EG_EXIT_USAGE, "serve: bad option '%s' (see --help)",
                               argv[optind - 1]);
        }
    }
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
    if (gw_build(cfg, &srv->gw) != EG_OK) {
        eg_config_free(cfg);
        exit_code = eg_cli_fail(EG_EXIT_SOFTWARE, "out of memory");
        goto out_logs;
    }
    cfg = srv->gw->cfg;
    if (cfg->uses_keys || cfg->has_admin_token || cfg->uses_counters) {
        rc = eg_store_open(cfg->store_backend, cfg->store_path, cfg->store_busy_timeout_ms,
                           &srv->store, err, sizeof(err));
        if (rc == EG_OK)
            rc = eg_keyring_new(srv->store, cfg->pepper, cfg->pepper_len, cfg->store_refresh_ms,
                                &srv->keyring, err, sizeof(err));
        if (rc == EG_OK) rc = eg_keyring_start(srv->keyring);
        if (rc != EG_OK) {
            exit_code = eg_cli_fail(EG_EXIT_UNAVAILABLE, "store: %s", err);
            goto out_gw;
        }
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
    uv_loop_init(&srv->loop);
    uv_timer_init(&srv->loop, &srv->sweep_timer);
    srv->sweep_timer.data = srv;
    uv_timer_start(&srv->sweep_timer, sweep, 10000, 10000);
    uv_unref((uv_handle_t *)&srv->sweep_timer);
    srv->nworkers = cfg->workers;
    srv->workers = calloc((size_t)srv->nworkers, sizeof(eg_worker_t));
    int started = 0;
    for (int i = 0; i < srv->nworkers; i++) {
        eg_worker_t *w = &srv->workers[i];
        w->id = i;
        w->srv = srv;
        w->max_conns = cfg->limits.max_connections / (uint64_t)srv->nworkers + 1;
        w->rnd_used = sizeof(w->rnd);
        uv_loop_init(&w->loop);
        int fd;
        if (listen_socket(&cfg->listen, 1, &fd, err, sizeof(err)) != 0) {
            exit_code = eg_cli_fail(4, "%s", err);
            uv_loop_close(&w->loop);
            break;
        }
        uv_tcp_init(&w->loop, &w->listener);
        uv_tcp_open(&w->listener, fd);
        w->listener.data = w;
        uv_listen((uv_stream_t *)&w->listener, 1024, eg_proxy_on_connection);
        uv_async_init(&w->loop, &w->wake, worker_wake);
        w->wake.data = w;
        started++;
    }
    if (!exit_code && cfg->has_admin) {
        int fd;
        if (listen_socket(&cfg->admin_listen, 0, &fd, err, sizeof(err)) != 0) {
            exit_code = eg_cli_fail(4, "admin: %s", err);
        } else {
            uv_tcp_init(&srv->loop, &srv->admin);
            uv_tcp_open(&srv->admin, fd);
            srv->admin.data = srv;
            uv_listen((uv_stream_t *)&srv->admin, 128, admin_connection);
            srv->has_admin = 1;
        }
    }
    if (exit_code) {
        for (int i = 0; i < started; i++) {
            uv_walk(&srv->workers[i].loop, walk_close, NULL);
            uv_run(&srv->workers[i].loop, UV_RUN_DEFAULT);
            uv_loop_close(&srv->workers[i].loop);
        }
        uv_walk(&srv->loop, walk_close, NULL);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->loop);
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
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]);
    char detail[600];
    snprintf(detail, sizeof(detail), "listening on %s:%d with %d workers%s", cfg->listen.host,
             cfg->listen.port, srv->nworkers, cfg->has_admin ? ", admin listener up" : "");
    server_log(srv, "started", detail);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < srv->nworkers; i++)
        uv_thread_join(&srv->workers[i].thread);
    for (int i = 0; i < srv->nworkers; i++) {
        eg_worker_t *w = &srv->workers[i];
        uv_walk(&w->loop, walk_close, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    uv_walk(&srv->loop, walk_close, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    server_log(srv, "stopped", NULL);
out_gw:
    eg_limiter_free(srv->limiter);
    eg_keyring_free(srv->keyring);
    eg_store_close(srv->store);
    free(srv->workers);
    eg_gw_unref(srv->gw);
out_logs:
    if (srv->errors != srv->access) eg_log_close(srv->errors);
    eg_log_close(srv->access);
    pthread_mutex_destroy(&srv->lock);
    free(srv->config_path);
    free(srv);
    return exit_code;
}

int eg_cmd_check_config(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: errgate check-config FILE\n\nValidates a gateway configuration: prints a "
               "summary and exits 0,\n"
               "or prints file:line:col: what is wrong, a line for each problem, and exits 3\n"
               "(2 for bad arguments).\n");
        return EG_EXIT_OK;
    }
    if (argc != 2)
        return eg_cli_fail(EG_EXIT_USAGE, "check-config: expected one FILE (see --help)");
    char err[EG_CONFIG_ERRLEN];
    eg_config_t *cfg = NULL;
    int rc = eg_config_load(argv[1], &cfg, err, sizeof(err));
    if (rc != EG_OK)
        return eg_cli_fail_lines(rc == EG_ENOMEM ? EG_EXIT_SOFTWARE : EG_EXIT_INPUT, err);
    printf("%s: ok: listen %s:%d, %d workers, %zu upstreams, %zu routes, dialect %s\n", argv[1],
           cfg->listen.host, cfg->listen.port, cfg->workers, cfg->nupstreams, cfg->nroutes,
           eg_dialect_name(cfg->dialect));
    eg_config_free(cfg);
    return EG_EXIT_OK;
}

/* config.h - the gateway configuration (YAML), validated completely at load.
 *
 * eg_config_load() reads the file, checks every key, type, range and
 * reference, and reports every problem it finds in err, one a line, as
 * "file:line:col: what is wrong" (the first of each top-level section,
 * upstream and route; at most EG_CONFIG_MAX_PROBLEMS lines, then how many
 * more; EG_CONFIG_ERRLEN is a buffer that holds them). It also builds what
 * the configuration names: the catalog (with the catalog file and docs_url
 * applied) and the dialect set (built-ins plus declared dialect files), so a
 * loaded config is ready to serve.
 * See docs/configuration.md for every key and default.
 */
#ifndef EG_CONFIG_H
#define EG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/cidr.h"
#include "errgate/cors.h"
#include "errgate/errgate.h"
#include "errgate/jwt.h"
#include "errgate/meter.h"
#include "errgate/monitor.h"
#include "errgate/ratelimit.h"
#include "errgate/router.h"
#include "store.h"
#include "strbuild.h"

typedef struct {
    char host[256]; /* numeric IPv4/IPv6 or localhost */
    int port;
    char addr[270]; /* "host:port", e.g. the upstream pool key and log value */
} eg_hostport_t;

/* How a configuration uses an OpenAPI document (openapi: {file, unknown,
 * max_body, status}; docs/openapi.md). */
typedef struct {
    int pass;          /* unknown: pass (0: reject, 404/405) */
    uint64_t max_body; /* bodies checked up to this size, default 1MiB */
    int status;        /* 400 or 422 for validation problems, 0 = the dialect's */
} eg_openapi_use_t;

typedef enum { EG_HOST_KEEP = 0, EG_HOST_REWRITE, EG_HOST_FIXED } eg_host_mode_t;

/* One certificate of a TLS listener: chosen by SNI among the names its
 * certificate carries (docs/tls.md). */
typedef struct {
    char *cert, *key; /* PEM files: the chain, and its private key */
    char *ocsp;       /* a DER OCSP response stapled to handshakes, NULL = none */
} eg_tls_cert_cfg_t;

typedef enum { EG_VERIFY_OFF = 0, EG_VERIFY_OPTIONAL, EG_VERIFY_REQUIRED } eg_verify_t;

/* listen: {address, tls: {...}}: TLS termination on one listener. */
typedef struct {
    eg_tls_cert_cfg_t *certs; /* certs[0] is the default (no SNI, or no name matched) */
    size_t ncerts;
    int min_version;          /* 12 (default) or 13 */
    char *ciphers;            /* TLS 1.2 cipher list, NULL = Mozilla intermediate */
    char *client_ca;          /* client certificates are asked for and checked against it */
    eg_verify_t verify;       /* optional | required when client_ca is set */
    int session_tickets;      /* default 1: resumption with the process's rotating keys */
    int h2;                   /* offer h2 by ALPN (default 1; docs/http2.md) */
    /* hsts: {max_age, include_subdomains, preload}: the Strict-Transport-Security
     * line every response on this listener carries ("" = none), made at load */
    char hsts[128];
} eg_tls_listen_cfg_t;

/* One listening address, plain or TLS. */
typedef struct {
    eg_hostport_t addr;
    eg_tls_listen_cfg_t *tls; /* NULL: plain HTTP */
    int h2c;                  /* plain: HTTP/2 by prior knowledge (the preface) is served, default 1 */
} eg_listener_cfg_t;

/* http2: the limits of every HTTP/2 connection (docs/http2.md). */
typedef struct {
    uint64_t max_concurrent_streams; /* default 128 */
    uint64_t max_header_list_size;   /* default limits.max_header_size */
    uint64_t initial_window_size;    /* a stream's receive window, default 256KiB */
    uint64_t connection_window_size; /* default 1MiB */
    uint64_t max_resets;             /* RST_STREAM per reset_window (rapid reset), default 200 */
    uint64_t reset_window_ms;        /* default 10s */
    uint64_t max_continuations;      /* default 8 */
    uint64_t max_settings;           /* entries per SETTINGS frame, default 32 */
    uint64_t max_outbound_ack;       /* unsent PING/SETTINGS acks, default 1000 */
} eg_http2_cfg_t;

/* upstreams.NAME with https:// servers: how the gateway connects. */
typedef struct {
    int on;            /* the servers are https:// */
    char *ca;          /* PEM bundle the server's chain must lead to, NULL = the system store */
    char *server_name; /* SNI and the name verified, NULL = the server's host */
    char *cert, *key;  /* a client certificate, optional */
    int verify;        /* default 1; 0 only by `verify: false` */
} eg_upstream_tls_cfg_t;
/* What a hash balance hashes (hash_on): a request header, the principal
 * (consumer of the key or the JWT's sub), or the client's address. */
typedef enum { EG_HASH_ON_IP = 0, EG_HASH_ON_HEADER, EG_HASH_ON_PRINCIPAL } eg_hash_on_t;

/* Servers per upstream: a pick looks at each on the stack. */
#define EG_UPSTREAM_MAX_SERVERS 256

/* Active health checks (health_check: {...}; docs/configuration.md). */
#define EG_HC_MAX_EXPECT 8
typedef struct {
    int enabled;
    char *path;            /* default /healthz */
    uint64_t interval_ms;  /* default 5s */
    uint64_t timeout_ms;   /* connect + answer, default 1s */
    int rise, fall;        /* default 2 and 3 */
    int expect_lo[EG_HC_MAX_EXPECT], expect_hi[EG_HC_MAX_EXPECT]; /* status ranges, default 200-399 */
    int nexpect;
} eg_health_check_cfg_t;

typedef struct {
    char *name;
    eg_hostport_t *servers;
    size_t nservers;
    uint64_t connect_timeout_ms; /* default 2s */
    uint64_t timeout_ms;         /* response head timeout, default 30s */
    uint64_t read_timeout_ms;    /* between two reads of the response body, default = timeout */
    uint64_t total_timeout_ms;   /* whole response, from the request sent; 0 (default) = none */
    int retries;                 /* other servers tried before any byte was sent, default 1 */
    int retry_non_idempotent;    /* default false */
    int max_fails;               /* failures that mark a server down, default 3 */
    uint64_t fail_timeout_ms;    /* how long it stays down, default 10s */
    int keepalive;               /* idle pooled connections per worker and server, default 32 */
    uint64_t keepalive_timeout_ms; /* default 60s */
    eg_host_mode_t host_mode;    /* keep (default), rewrite to the server, or a fixed host */
    char *host;                  /* EG_HOST_FIXED */
    struct eg_openapi_s *openapi; /* upstreams.NAME.openapi: for its routes without their own, NULL = none */
    eg_openapi_use_t openapi_use;
    eg_upstream_tls_cfg_t tls;   /* servers: [https://...] */
    int balance;                 /* eg_balance_t: round_robin (default), least_conn, weighted, hash */
    eg_hash_on_t hash_on;        /* balance: hash */
    char *hash_header;           /* EG_HASH_ON_HEADER: its name */
    unsigned *weights;           /* per server, 1 unless "host:port weight=N" or {address, weight} */
    uint64_t *server_ids;        /* per server, eg_balance_hash of its address (hash: stable keys) */
    eg_health_check_cfg_t hc;
} eg_upstream_cfg_t;

/* client_cert: the TLS client certificate (mTLS) is the credential. */
typedef enum { EG_AUTHN_NONE = 0, EG_AUTHN_API_KEY, EG_AUTHN_JWT, EG_AUTHN_ANY, EG_AUTHN_CERT } eg_authn_t;

/* Whose requests one rate limit counts. */
typedef enum { EG_RL_BY_KEY = 0, EG_RL_BY_IP, EG_RL_BY_ROUTE } eg_rl_by_t;

typedef struct {
    eg_gcra_t gcra;
    eg_rl_by_t by;  /* key: per authenticated consumer (skipped for anonymous requests) */
    char name[64];  /* in RateLimit-Policy / RateLimit, e.g. "key-1m" */
} eg_rate_limit_cfg_t;

/* Appends one limit as RateLimit-Policy lists it: `"name";q=100;w=60`,
 * preceded by ", " unless it is the first. */
void eg_rate_policy_item(eg_sb_t *b, const eg_rate_limit_cfg_t *l, int first);

/* A quota: requests per UTC day or calendar month, per key. */
typedef enum { EG_PERIOD_DAY = 0, EG_PERIOD_MONTH } eg_period_t;

typedef struct {
    long long limit;   /* 0 = no quota */
    eg_period_t period;
    char *upgrade_url; /* details.upgrade_url of quota_exceeded, optional */
} eg_quota_cfg_t;

/* A plan: limits every key on it has, across routes. */
typedef struct {
    char *name;
    eg_rate_limit_cfg_t *limits; /* always by key */
    size_t nlimits;
    uint32_t concurrency;        /* in-flight requests per key, 0 = unlimited */
    eg_quota_cfg_t quota;        /* per key, on all routes */
    long long credit_cost;       /* credits every request of the key takes, on top of the route's */
    char *purchase_url;          /* used when the route has none */
} eg_plan_cfg_t;

typedef struct {
    char *path;
    int prefix;
    unsigned methods;     /* EG_M_* mask, 0 = all */
    size_t upstream;      /* index into upstreams */
    int maintenance;
    char *maintenance_until;   /* RFC 3339, optional */
    long long maintenance_retry_after; /* seconds, -1 = none */
    char *maintenance_message;
    char *maintenance_from;        /* RFC 3339, optional: with until, details.maintenance_window */
    char *maintenance_status_page; /* URL, optional: details.status_page */
    int normalize;        /* default true */
    eg_authn_t auth;      /* none (default) | api_key | jwt | any */
    int auth_optional;    /* auth: {api_key: optional}: a request with no credential at all goes
                             on anonymous (by-ip limits); one with a bad credential is refused */
    char **scopes;        /* all of these are required */
    size_t nscopes;
    char **scopes_any;    /* at least one of these is required */
    size_t nscopes_any;
    int admin;            /* only principals with the "admin" scope */
    eg_cidr_t *allow_ips; /* route allow list, NULL = any address */
    size_t nallow_ips;
    char *allow_ips_text; /* as configured, for ip_not_allowed details */
    char **subjects;      /* auth: client_cert: the certificate subjects let in, NULL = any verified one */
    size_t nsubjects;
    eg_rate_limit_cfg_t *limits; /* rate_limit: one or a list */
    size_t nlimits;
    char *rl_policy;      /* the RateLimit-Policy value for exactly these limits, made at load */
    size_t rl_policy_len;
    uint32_t concurrency; /* in-flight requests per consumer (or client IP) on this route, 0 = unlimited */
    eg_quota_cfg_t quota; /* per key on this route */
    long long credit_cost; /* credits each request takes from the key's balance, 0 = none */
    char *purchase_url;   /* details.purchase_url of credits_depleted, optional */
    const eg_dialect_t *dialect; /* per-route dialect, NULL = the default */
    /* idempotency: the Idempotency-Key stage (src/stages/idempotency.c) */
    unsigned idem_methods; /* EG_M_* mask of methods it applies to, 0 = off */
    int idem_required;     /* 400 idempotency_key_missing without the header */
    uint64_t idem_ttl_ms;  /* how long a response is replayed, default 24h */
    uint64_t
        idem_max_body; /* larger bodies are 413 on those methods (default 1MiB, at most 16MiB) */
    eg_cors_policy_t *cors;      /* routes[].cors, replaces the global one; NULL = the global */
    /* openapi: (docs/openapi.md). The declared route holds the document and
     * stands, after its operations' routes, for the rest of its prefix:
     * oa_catchall (unknown: reject) answers 404 there. Each operation is a
     * route of its own made at load (oa_op set, `borrowed`: the pointers it
     * shares with the declared route, scopes to cors, are freed with that
     * one); with unknown: pass, a declared path's other methods are one
     * more borrowed route without oa_op. */
    struct eg_openapi_s *openapi;      /* owned by eg_config_t.openapis */
    const struct eg_oa_op_s *oa_op;    /* the operation this route is, NULL = none */
    struct eg_ptrie_s *oa_index;       /* the declared route's: its operations' routes by path (ptrie.h),
                                          matched after the router picked this route; NULL = none */
    eg_openapi_use_t oa_use;           /* unknown:, max_body, status */
    int oa_catchall;                   /* 404 for what the document does not declare */
    int oa_from_upstream;              /* the upstream's document: its own URL paths, not mounted */
    int borrowed;
    const char *scope_path;            /* rate-limit, slot and quota keys: the declared route's path (NULL = path) */
    struct eg_validation_s *validate; /* validate: (stages/validate.c, lib/params.h); NULL = none */
    /* upgrade: {protocols, idle_timeout, max_bytes} (docs/upgrades.md): the
     * Upgrade tokens tunneled to the upstream after its 101; NULL = none */
    char **upgrade_protocols;
    size_t nupgrade_protocols;
    uint64_t upgrade_idle_ms;   /* no byte either way for this long ends a tunnel (default 60s) */
    uint64_t upgrade_max_bytes; /* per direction; 0 = no limit */
    /* meter: (stages/meter.c, docs/metering.md): each served request recorded as usage */
    int meter;         /* 0 = not metered */
    char *meter_event; /* the event type, default "api.request" */
    double meter_cost; /* the quantity per request, default 1 */
    int meter_bytes;   /* request and response bytes too */
} eg_route_cfg_t;

/* alerts.webhooks[]: where alert transitions are POSTed (src/alerts/). */
typedef struct {
    char *url;                /* http:// or https:// */
    int alertmanager;         /* format: alertmanager (1) or json (0, default) */
    unsigned char *secret;    /* HMAC-SHA256 key of the signature header, NULL = unsigned */
    size_t secret_len;
    uint64_t timeout_ms;      /* per attempt, default 5s */
    int max_attempts;         /* default 5 */
} eg_webhook_cfg_t;

typedef struct {
    uint64_t header_timeout_ms, body_timeout_ms, idle_timeout_ms, write_timeout_ms;
    uint64_t max_header_size, max_headers, max_uri, max_body_size, max_connections;
} eg_limits_t;

typedef struct {
    char *path;           /* the file it was loaded from */
    eg_hostport_t listen;         /* listeners[0].addr */
    eg_listener_cfg_t *listeners; /* listen: one address, a map, or a list of them */
    size_t nlisteners;
    eg_http2_cfg_t http2;
    int has_admin;
    eg_hostport_t admin_listen;         /* ":PORT" is 127.0.0.1:PORT here (the admin API is not public) */
    uint64_t admin_max_connections;     /* admin.max_connections: open at once, default 64 */
    uint64_t admin_timeout_ms;          /* admin.timeout: a connection's whole life, default 10s */
    const eg_dialect_t
        *admin_dialect;   /* admin.dialect: its errors' dialect; NULL = errors.dialect */
    int workers;          /* resolved: auto = number of cores */
    /* errors */
    const eg_dialect_t *dialect; /* default dialect, owned by `dialects` */
    int negotiate, expose_internal;
    uint64_t max_translate_body; /* upstream error bodies up to this size are translated */
    eg_catalog_t *catalog;
    eg_dialects_t *dialects;
    /* request ids */
    char *request_id_header;
    int trust_request_id;
    /* logs */
    char *access_log, *error_log;
    char **redact_query;
    size_t nredact;
    char **log_headers; /* log.request_headers: request headers in access lines (never secrets) */
    size_t nlog_headers;
    /* metrics (src/metrics/, docs/metrics.md): on by default; duration
     * buckets in seconds, ascending (take effect on restart) */
    int metrics_enabled;
    double metrics_buckets[32];
    size_t nmetrics_buckets;
    /* health_path: /health answered on the API listener too (NULL: admin only) */
    char *health_path;
    eg_limits_t limits;
    /* path: routing sees the normalized path (lib/path.c), default all 1 */
    int path_normalize, path_merge_slashes, path_reject_encoded_slash;
    /* request: header names with '_' reach the upstream only when 1 (nginx's
     * underscores_in_headers; WSGI and PHP fold them onto '-' names) */
    int underscores_in_headers;
    /* request.buffer_body: bodies up to this size (and chunked ones while
     * they fit) are read before connecting upstream; 0 streams every body */
    uint64_t buffer_body;
    /* request.forward_trailers: the request trailer fields that reach the
     * upstream (none by default); names the gateway controls are refused */
    char **forward_trailers;
    size_t nforward_trailers;
    eg_upstream_cfg_t *upstreams;
    size_t nupstreams;
    eg_route_cfg_t *routes;
    size_t nroutes;
    /* metering: (docs/metering.md; the metering API's keys join these) */
    int uses_metering;                    /* some route has meter: */
    char *usage_path;                     /* metering.usage_path: GET answers the caller's usage, NULL = none */
    int metering_commit_every;            /* events that start a commit, default 1000 */
    uint64_t metering_commit_interval_ms; /* the longest an event waits for its commit, default 100ms */
    int metering_max_uncommitted;         /* events served and not committed at most, default 10000 */
    uint64_t metering_retention_s;        /* Redis totals' expiry, default 400 days */
    /* metering.sink: usage copied to PostgreSQL (src/metering/pg_sink.h), a
     * postgres:// URL checked at load; NULL = none. Read at start only. */
    char *metering_sink;
    uint64_t metering_sink_queue; /* metering.sink_queue: rows held for it, default 1000000 */
    /* store */
    eg_store_backend_t store_backend; /* default sqlite */
    char *store_path;                 /* default errgate.db next to the config */
    uint64_t store_refresh_ms;        /* how often the gateway looks for changes, default 1s */
    uint64_t store_busy_timeout_ms;   /* default 2s */
    int store_commit_every;           /* charges per group commit, default 256 (1 = one per request) */
    uint64_t store_commit_interval_ms; /* the longest a charge waits for its commit to start, default 50ms */
    /* auth */
    int uses_keys;                    /* some route accepts API keys */
    int uses_counters;                /* some route or plan has a quota or a credit cost */
    int uses_idempotency;             /* some route has an idempotency section */
    unsigned char *pepper;            /* HMAC key for stored key hashes, NULL = plain SHA-256 */
    size_t pepper_len;
    char *key_header;                 /* default X-API-Key */
    uint64_t rotation_grace_ms;       /* default 24h */
    char *realm;                      /* WWW-Authenticate realm, default "errgate" */
    char *contact;                    /* suspended_api_key details.contact, optional */
    int has_admin_token;
    unsigned char admin_token_hash[32]; /* SHA-256 of the admin API token */
    eg_jwt_keys_t *jwt_keys;          /* NULL when no jwt section */
    eg_jwt_policy_t jwt;              /* strings owned by the fields below */
    char *jwt_issuer, *jwt_audience, *jwt_scope_claim;
    /* traffic state shared through Redis (redis.h); has_redis 0 = in memory */
    int has_redis;
    eg_hostport_t redis;
    int redis_db;
    uint64_t redis_timeout_ms;        /* a decision not back by then is a failure, default 50ms */
    int redis_fail_open;              /* on failure: serve without limits (1) or 503 (0, default) */
    char *redis_prefix;               /* key prefix, default "errgate:" */
    /* traffic policy */
    eg_plan_cfg_t *plans;
    size_t nplans;
    int rl_legacy_headers, rl_ietf_headers; /* X-RateLimit-* and RateLimit-Policy/RateLimit, default both */
    int rl_reset_unix;                      /* X-RateLimit-Reset as Unix time (default: seconds until) */
    /* rate_limits.quota_headers: successful responses under a quota say what is left
     * (traffic.c): legacy (three fields, names below) and/or ietf (a quota policy in
     * RateLimit-Policy / RateLimit); default none */
    int quota_legacy_headers, quota_ietf_headers;
    char *quota_hdr_limit, *quota_hdr_remaining, *quota_hdr_reset; /* default X-Quota-Limit, ... */
    /* cors (stages/cors.c): the global policy, NULL = none; uses_cors: it or a
     * route's is set; cors_lines_max: the largest eg_cors_headers_max of them */
    eg_cors_policy_t *cors;
    int uses_cors;
    size_t cors_lines_max;
    /* OpenAPI documents (openapi.h), each loaded once, and what the
     * configuration loads but does not enforce: "file:line:col: text" lines
     * that check-config prints and serve logs (docs/openapi.md) */
    struct eg_openapi_s **openapis;
    char **openapi_paths;
    size_t nopenapis;
    size_t nroutes_declared; /* routes[0..nroutes_declared) are the file's (the router's); the rest
                                their documents' operations (each declared route's oa_index) */
    char **warnings;
    size_t nwarnings;
    /* alerts: the error-rate monitor (monitor.h, src/alerts/), on by default */
    int alerts_enabled;
    eg_alert_rule_t *alert_rules; /* the seed's defaults, replaced or extended by alerts.rules */
    size_t nalert_rules;
    uint32_t alert_windows[4];    /* alerts.windows in seconds, default 1m and 5m */
    size_t nalert_windows;
    uint64_t alert_interval_ms;   /* alerts.evaluate_every, default 1s */
    eg_webhook_cfg_t *webhooks;
    size_t nwebhooks;
    /* metering: the metering API (stages/meter_api.c, docs/metering.md):
     * POST meter_path on the route that serves it; NULL = off */
    char *meter_path;
    eg_meter_rules_t meter_rules; /* event_types point at meter_types (or the defaults) */
    char **meter_types;           /* metering.event_types, NULL = the defaults */
    size_t nmeter_types;
    char *meter_scope;            /* the scope a caller needs, default meter:write */
    int meter_check_users;        /* user_id must name a key or a key's owner, default 1 */
    uint64_t meter_max_body;      /* default 4 MiB (1000 events with metadata) */
} eg_config_t;

#define EG_BUFFER_BODY_MAX (64 * 1024) /* the body room of a connection's buffer (proxy.c) */
/* A body a stage reads whole (eg_req_read_body) is held in memory: the
 * default and the most a route may ask for (idempotency.max_body). */
#define EG_STAGE_BODY_DEFAULT (1024 * 1024)
#define EG_STAGE_BODY_MAX     (16 * 1024 * 1024)
/* The longest CORS header lines a policy may need (eg_cors_headers_max):
 * the transport keeps room for them on its error answers (proxy.c) */
#define EG_CORS_LINES_LIMIT 8192
#define EG_CONFIG_MAX_PROBLEMS 20
#define EG_CONFIG_ERRLEN 4096

int eg_config_load(const char *path, eg_config_t **out, char *err, size_t errlen);
int eg_config_parse(const char *text, size_t len, const char *name, eg_config_t **out, char *err,
                    size_t errlen);
void eg_config_free(eg_config_t *cfg);

/* The plan named, or NULL. */
const eg_plan_cfg_t *eg_config_plan(const eg_config_t *cfg, const char *name);

/* Parses "host:port", "[v6]:port" or ":port" (host 0.0.0.0). 0 on success. */
int eg_hostport_parse(const char *s, eg_hostport_t *out);

#endif

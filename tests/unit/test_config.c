/* test_config.c - the gateway configuration: defaults, values, and every
 * kind of problem reported with its position. */
#include "testutil.h"

#include <unistd.h>

#include "config.h"

static const char minimal[] = "listen: 127.0.0.1:8080\n"
                              "upstreams:\n"
                              "  a: { servers: [127.0.0.1:9000] }\n"
                              "routes:\n"
                              "  - { path: /v1/, upstream: a }\n";

static eg_config_t *parse_ok(const char *text)
{
    char err[512] = "";
    eg_config_t *cfg = NULL;
    int rc = eg_config_parse(text, strlen(text), "c.yaml", &cfg, err, sizeof(err));
    if (rc != EG_OK) fail_msg("rejected: %s", err);
    return cfg;
}

static void test_defaults(void **state)
{
    (void)state;
    eg_config_t *cfg = parse_ok(minimal);
    assert_string_equal(cfg->listen.host, "127.0.0.1");
    assert_int_equal(cfg->listen.port, 8080);
    assert_false(cfg->has_admin);
    assert_int_equal(cfg->workers, sysconf(_SC_NPROCESSORS_ONLN));
    assert_string_equal(eg_dialect_name(cfg->dialect), "problem");
    assert_true(cfg->negotiate);
    assert_false(cfg->expose_internal);
    assert_int_equal(cfg->limits.header_timeout_ms, 10000);
    assert_int_equal(cfg->limits.max_body_size, 10u << 20);
    assert_int_equal(cfg->limits.max_header_size, 16384);
    assert_string_equal(cfg->request_id_header, "X-Request-ID");
    const eg_upstream_cfg_t *u = &cfg->upstreams[0];
    assert_string_equal(u->name, "a");
    assert_int_equal(u->connect_timeout_ms, 2000);
    assert_int_equal(u->timeout_ms, 30000);
    assert_int_equal(u->retries, 1);
    assert_int_equal(u->max_fails, 3);
    assert_int_equal(u->keepalive, 32);
    assert_string_equal(u->servers[0].addr, "127.0.0.1:9000");
    const eg_route_cfg_t *r = &cfg->routes[0];
    assert_string_equal(r->path, "/v1/");
    assert_true(r->prefix);
    assert_int_equal(r->methods, 0);
    assert_true(r->normalize);
    assert_false(r->maintenance);
    eg_config_free(cfg);
}

static void test_demo_config_loads(void **state)
{
    (void)state;
    char err[512];
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_load("examples/demo.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_true(cfg->has_admin);
    assert_int_equal(cfg->admin_listen.port, 8081);
    assert_int_equal(cfg->nupstreams, 3);
    assert_int_equal(cfg->nroutes, 6);
    assert_int_equal(cfg->upstreams[1].timeout_ms, 1000);
    const eg_route_cfg_t *m = &cfg->routes[0];
    assert_true(m->maintenance);
    assert_int_equal(m->maintenance_retry_after, 300);
    assert_string_equal(m->maintenance_until, "2030-01-01T06:00:00Z");
    const eg_route_cfg_t *priv = &cfg->routes[1];
    assert_int_equal(priv->auth, EG_AUTHN_API_KEY);
    assert_int_equal(priv->nscopes, 1);
    assert_string_equal(priv->scopes[0], "demo:read");
    assert_int_equal(cfg->store_backend, EG_STORE_SQLITE);
    assert_string_equal(cfg->store_path, "examples/demo.db");
    assert_int_equal(cfg->routes[2].methods, EG_M_GET | EG_M_HEAD);
    assert_false(cfg->routes[2].prefix);
    assert_int_equal(cfg->nredact, 2);
    eg_config_free(cfg);
}

static void test_values_are_read(void **state)
{
    (void)state;
    eg_config_t *cfg = parse_ok(
        "listen: \"[::1]:8443\"\nadmin_listen: :9901\nworkers: 3\n"
        "errors: { dialect: typed, negotiate: false, docs_url: \"https://x/{code}\" }\n"
        "limits: { header_timeout: 500ms, max_body_size: 2MB, max_headers: 50, max_uri: 4KiB }\n"
        "request_id: { header: X-Correlation-ID, trust_inbound: false }\n"
        "upstreams:\n  b: { servers: [\"[::1]:9000\", localhost:9001], retries: 0, host: rewrite, keepalive: 0 }\n"
        "  c: { servers: [10.0.0.1:80], host: api.internal }\n"
        "routes:\n  - { path: /x/*, upstream: b, methods: [POST, DELETE], dialect: jsonapi }\n"
        "  - { path: /exact, match: exact, upstream: c, maintenance: { retry_after: 2m } }\n");
    assert_string_equal(cfg->listen.host, "::1");
    assert_string_equal(cfg->admin_listen.host, "127.0.0.1");
    assert_int_equal(cfg->workers, 3);
    assert_string_equal(eg_dialect_name(cfg->dialect), "typed");
    assert_false(cfg->negotiate);
    assert_string_equal(eg_catalog_docs_template(cfg->catalog), "https://x/{code}");
    assert_int_equal(cfg->limits.header_timeout_ms, 500);
    assert_int_equal(cfg->limits.max_body_size, 2000000);
    assert_int_equal(cfg->limits.max_uri, 4096);
    assert_string_equal(cfg->request_id_header, "X-Correlation-ID");
    assert_false(cfg->trust_request_id);
    assert_string_equal(cfg->upstreams[0].servers[0].addr, "[::1]:9000");
    assert_int_equal(cfg->upstreams[0].host_mode, EG_HOST_REWRITE);
    assert_int_equal(cfg->upstreams[1].host_mode, EG_HOST_FIXED);
    assert_string_equal(cfg->upstreams[1].host, "api.internal");
    assert_string_equal(cfg->routes[0].path, "/x/");
    assert_true(cfg->routes[0].prefix);
    assert_int_equal(cfg->routes[0].methods, EG_M_POST | EG_M_DELETE);
    assert_string_equal(eg_dialect_name(cfg->routes[0].dialect), "jsonapi");
    assert_int_equal(cfg->routes[1].maintenance_retry_after, 120);
    eg_config_free(cfg);
}

static void test_problems_are_reported_with_position(void **state)
{
    (void)state;
    setenv("EG_TEST_SHORT_SECRET", "short", 1);
    setenv("EG_TEST_LONG_SECRET", "a-secret-that-is-long-enough", 1);
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"", "c.yaml:1:1: the configuration is empty"},
        {"listen: 1.2.3.4\n", "c.yaml:1:9: invalid address '1.2.3.4'"},
        {"listen: :99999\n", "c.yaml:1:9: invalid address ':99999'"},
        {"listn: :80\n", "c.yaml:1:1: unknown key 'listn' in the configuration"},
        {"listen: :80\nupstreams: {}\n", "c.yaml:2:12: missing 'upstreams:'"},
        {"listen: :80\nupstreams:\n  a: { servers: [] }\nroutes: []\n", "c.yaml:3:17: upstream 'a' needs servers"},
        {"listen: :80\nupstreams:\n  a: { servers: [api.example.com:80] }\n", "c.yaml:3:18: upstream server 'api.example.com' must be an IP address"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1], timeout: 5 }\n", "c.yaml:3:41: invalid duration '5'"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1], tiemout: 5s }\n", "c.yaml:3:32: unknown key 'tiemout' in upstream 'a'"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1], retries: -1 }\n", "c.yaml:3:41: -1 is out of range 0..10"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: b }\n", "c.yaml:5:27: unknown upstream 'b'"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: x, upstream: a }\n", "c.yaml:5:13: a route needs path"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, methods: [FETCH] }\n", "c.yaml:5:40: unknown method 'FETCH'"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n  - { path: /x, upstream: a }\n", "c.yaml:6:5: route /x duplicates the route at line 5"},
        {"listen: :80\nerrors: { dialect: klingon }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n", "c.yaml:2:20: unknown dialect 'klingon'"},
        {"listen: :80\nlimits: { max_body_size: 1.5MiB }\n", "c.yaml:2:26: invalid size '1.5MiB'"},
        {"listen: :80\nlimits: { max_uri: 64KiB }\n", "c.yaml:2:20: max_uri must be smaller than max_header_size"},
        {"listen: :80\nworkers: many\n", "c.yaml:2:10: expected an integer, got 'many'"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, maintenance: { until: tomorrow } }\n", "c.yaml:5:52: until must be an RFC 3339 UTC time"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, auth: jwt }\n", "c.yaml:5:36: auth: jwt needs auth.jwt with at least one key"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, auth: basic }\n", "c.yaml:5:36: auth must be none, api_key, jwt, any or client_cert"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, scopes: [read] }\n", "c.yaml:5:5: a route with scopes or admin: true needs auth"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, auth: api_key, scopes: [\"a b\"] }\n", "c.yaml:5:54: invalid scope"},
        {"listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a, allow_ips: [10.0.0.1/8] }\n", "c.yaml:5:42: '10.0.0.1/8' is not an IP address or CIDR block"},
        {"listen: :80\nstore: { backend: postgres }\n", "c.yaml:2:19: backend must be memory or sqlite"},
        {"listen: :80\nstore: { backend: redis }\n", "c.yaml:2:19: keys live in memory or sqlite; Redis holds shared traffic state"},
        {"listen: :80\nredis: { db: 1 }\n", "c.yaml:2:8: redis needs address: host:port"},
        {"listen: :80\nredis: { address: redis.local:6379 }\n", "c.yaml:2:19: redis address 'redis.local' must be an IP address or localhost"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", db: 16 }\n", "c.yaml:2:41: 16 is out of range 0..15"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", timeout: 0ms }\n", "c.yaml:2:46: timeout must be 1ms..10s"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", timeout: 1m }\n", "c.yaml:2:46: timeout must be 1ms..10s"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", on_failure: ignore }\n", "c.yaml:2:49: on_failure must be fail_open"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", prefix: \"a b\" }\n", "c.yaml:2:45: prefix must be up to 64 characters"},
        {"listen: :80\nredis: { address: \"127.0.0.1:6379\", password: x }\n", "c.yaml:2:37: unknown key 'password' in redis"},
        {"listen: :80\nstore: { backend: memory, path: x.db }\n", "c.yaml:2:33: path is only for the sqlite backend"},
        {"listen: :80\nauth: { admin_token_env: EG_TEST_UNSET_VARIABLE }\n", "c.yaml:2:26: environment variable EG_TEST_UNSET_VARIABLE is not set"},
        {"listen: :80\nauth: { pepper_env: EG_TEST_SHORT_SECRET }\n", "c.yaml:2:21: the secret is shorter than 16 bytes"},
        {"listen: :80\nauth: { jwt: { issuer: x } }\n", "c.yaml:2:14: auth.jwt needs a key"},
        {"listen: :80\nauth: { jwt: { secret_env: EG_TEST_LONG_SECRET, algorithms: [HS512] } }\n", "c.yaml:2:62: unsupported algorithm 'HS512'"},
        {"listen: :80\nauth: { jwt: { public_keys: [/nonexistent.pem] } }\n", "c.yaml:2:30: cannot read /nonexistent.pem"},
        {"listen: :80\nauth: { realm: \"a\\\"b\" }\n", "c.yaml:2:16: realm cannot contain quotes"},
        {"listen: :80\nauth: { tokens: x }\n", "c.yaml:2:9: unknown key 'tokens' in auth"},
        {"listen: :80\nerrors: { catalog: /nonexistent/catalog.yaml }\n", "/nonexistent/catalog.yaml: No such file or directory"},
        /* TLS listeners and https upstreams (docs/tls.md) */
        {"listen: { address: \"127.0.0.1:443\", tls: { min_version: \"1.3\" } }\n", "c.yaml:1:42: listen.tls needs cert: and key: (or certificates:)"},
        {"listen: { address: \"127.0.0.1:443\", tls: { cert: a.pem } }\n", "c.yaml:1:42: a certificate needs key: (its PEM private key file)"},
        {"listen: { address: \"127.0.0.1:443\", tls: { cert: a.pem, key: a.key, min_version: \"1.1\" } }\n", "c.yaml:1:82: min_version must be \"1.2\" or \"1.3\""},
        {"listen: { address: \"127.0.0.1:443\", tls: { cert: a.pem, key: a.key, verify: required } }\n", "c.yaml:1:77: verify: needs client_ca:"},
        {"listen: { address: \"127.0.0.1:443\", tls: { cert: a.pem, key: a.key, h2: maybe } }\n", "c.yaml:1:73:"},
        {"listen: { address: \"127.0.0.1:443\", h2c: true, tls: { cert: a.pem, key: a.key } }\n", "c.yaml:1:42: h2c: is for plain listeners"},
        /* http2: (docs/http2.md) */
        {"listen: :80\nhttp2: { max_concurrent_streams: 0 }\n", "c.yaml:2:34:"},
        {"listen: :80\nhttp2: { max_resetz: 10 }\n", "c.yaml:2:10: unknown key 'max_resetz' in http2"},
        {"listen: :80\nhttp2: { initial_window_size: 10 }\n", "c.yaml:2:31: initial_window_size must be 1024..2147483647"},
        {"listen: { address: \"127.0.0.1:443\", tls: { cert: a.pem, key: a.key, ocsp_file: x } }\n", "c.yaml:1:69: unknown key 'ocsp_file' in listen.tls"},
        {"listen: [ \"0.0.0.0:80\", \":80\" ]\n", "c.yaml:1:25: address 0.0.0.0:80 is listed twice"},
        {"listen: :80\nupstreams: { a: { servers: [\"https://127.0.0.1:1\", \"127.0.0.1:2\"] } }\n", "c.yaml:2:52: upstream 'a' mixes https:// and plain servers"},
        {"listen: :80\nupstreams: { a: { servers: [\"127.0.0.1:1\"], tls: { ca: x.pem } } }\n", "c.yaml:2:50: upstream 'a': tls: is for https:// servers"},
        {"listen: :80\nupstreams: { a: { servers: [\"https://127.0.0.1:1\"], tls: { cert: c.pem } } }\n", "c.yaml:2:58: upstream tls: cert: and key: go together"},
        {"listen: :80\nupstreams: { a: { servers: [\"127.0.0.1:1\"] } }\nroutes:\n  - { path: /x, upstream: a, auth: client_cert, quota: { limit: 10, period: day } }\n", "c.yaml:4:56: a quota is per API key or token: not for auth: client_cert"},
        {"listen: :80\nupstreams: { a: { servers: [\"127.0.0.1:1\"] } }\nroutes:\n  - { path: /x, upstream: a, client_subjects: [\"CN=a\"] }\n", "c.yaml:4:47: client_subjects needs auth: client_cert"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        eg_config_t *cfg = NULL;
        int rc = eg_config_parse(cases[i].yaml, strlen(cases[i].yaml), "c.yaml", &cfg, err, sizeof(err));
        assert_int_not_equal(rc, EG_OK);
        assert_null(cfg);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got '%s'\n want '%s'", i, err, cases[i].want);
    }
}

/* One load reports every problem, in file order, the first of each section,
 * upstream and route; a bad route is left out of the duplicate check and a
 * missing upstreams: is not echoed by every route. */
static void test_every_problem_is_reported(void **state)
{
    (void)state;
    static const char yaml[] = "listen: 127.0.0.1:99999\n"
                               "workers: 0\n"
                               "limits: { max_body_size: 1.5MiB, max_uri: lots }\n"
                               "upstreams:\n"
                               "  a: { servers: [127.0.0.1:1], timeout: 5 }\n"
                               "  b: { servers: [127.0.0.1:2] }\n"
                               "routes:\n"
                               "  - { path: /x, upstream: a, methods: [FETCH] }\n"
                               "  - { path: /x, upstream: a, methods: [FETCH] }\n"
                               "  - { path: /y, upstream: b }\n"
                               "  - { path: /y, upstream: b }\n"
                               "  - { path: /z, upstream: c }\n"
                               "  - { path: /w, upstream: a, match: some }\n"
                               "  - { path: /w, upstream: a }\n";
    static const char *const want[] = {
        "c.yaml:1:9: invalid address '127.0.0.1:99999'",
        "c.yaml:2:10: 0 is out of range 1..256",
        "c.yaml:3:43: invalid size 'lots'", /* the first the section checks */
        "c.yaml:5:41: invalid duration '5'",
        "c.yaml:8:40: unknown method 'FETCH'",
        "c.yaml:9:40: unknown method 'FETCH'",
        "c.yaml:11:5: route /y duplicates the route at line 10",
        "c.yaml:12:27: unknown upstream 'c'",
        "c.yaml:13:37: match must be exact or prefix", /* and line 14 is not its duplicate */
    };
    char err[EG_CONFIG_ERRLEN] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_EPARSE);
    assert_null(cfg);
    const char *line = err;
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_non_null(line);
        if (strncmp(line, want[i], strlen(want[i])) != 0) fail_msg("line %zu: got '%s'\n want '%s'", i, line, want[i]);
        line = strchr(line, '\n');
        if (line) line++;
    }
    assert_null(line); /* nothing more */

    /* no upstreams: said once, not again by each route */
    static const char none[] = "listen: :80\nroutes:\n  - { path: /a, upstream: x }\n  - { path: b, upstream: x }\n";
    cfg = NULL;
    assert_int_equal(eg_config_parse(none, strlen(none), "c.yaml", &cfg, err, sizeof(err)), EG_EPARSE);
    assert_string_equal(err, "c.yaml:1:1: missing 'upstreams:' (a map of name: {servers: [...]})\n"
                             "c.yaml:4:13: a route needs path: /... (starting with '/')");
}

/* At most EG_CONFIG_MAX_PROBLEMS lines, then how many more; a buffer too
 * small for a line counts it rather than cutting it. */
static void test_problem_report_is_bounded(void **state)
{
    (void)state;
    char yaml[4096];
    int n = snprintf(yaml, sizeof(yaml), "listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n");
    for (int i = 0; i < EG_CONFIG_MAX_PROBLEMS + 5; i++)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "  - { path: /r%d, upstream: a, match: some }\n", i);
    char err[EG_CONFIG_ERRLEN] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_EPARSE);
    int lines = 1;
    for (const char *p = err; *p; p++) lines += *p == '\n';
    assert_int_equal(lines, EG_CONFIG_MAX_PROBLEMS + 1);
    assert_non_null(strstr(err, "c.yaml:24:39: match must be exact or prefix\n(5 more problems not shown)"));

    char small[120] = "";
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, small, sizeof(small)), EG_EPARSE);
    assert_string_equal(small, "c.yaml:5:38: match must be exact or prefix\n(24 more problems not shown)");
}

/* auth.jwt.require_exp: true by default; false lets tokens without exp in;
 * anything but a boolean is a problem. */
/* Issue 20: path normalization, request forwarding and upstream timeouts:
 * safe defaults, values read, and what is refused. */
static void test_path_request_and_timeouts(void **state)
{
    (void)state;
    eg_config_t *cfg = parse_ok(minimal);
    assert_true(cfg->path_normalize && cfg->path_merge_slashes && cfg->path_reject_encoded_slash);
    assert_false(cfg->underscores_in_headers);
    assert_int_equal(cfg->buffer_body, 65536);
    assert_int_equal(cfg->upstreams[0].timeout_ms, 30000);
    assert_int_equal(cfg->upstreams[0].read_timeout_ms, 30000); /* follows timeout */
    assert_int_equal(cfg->upstreams[0].total_timeout_ms, 0);
    eg_config_free(cfg);
    cfg = parse_ok("listen: 127.0.0.1:8080\n"
                   "path: { normalize: false, merge_slashes: false, reject_encoded_slash: false }\n"
                   "request: { underscores_in_headers: true, buffer_body: 0 }\n"
                   "upstreams:\n  a: { servers: [127.0.0.1:9000], timeout: 5s, total_timeout: 1m }\n"
                   "  b: { servers: [127.0.0.1:9000], timeout: 5s, read_timeout: 250ms }\n"
                   "routes:\n  - { path: /v1/, upstream: a }\n");
    assert_false(cfg->path_normalize || cfg->path_merge_slashes || cfg->path_reject_encoded_slash);
    assert_true(cfg->underscores_in_headers);
    assert_int_equal(cfg->buffer_body, 0);
    assert_int_equal(cfg->upstreams[0].read_timeout_ms, 5000);
    assert_int_equal(cfg->upstreams[0].total_timeout_ms, 60000);
    assert_int_equal(cfg->upstreams[1].read_timeout_ms, 250);
    eg_config_free(cfg);
    static const char *const bad[] = {
        "path: { normalise: true }\n",     "path: { merge_slashes: 2 }\n",
        "request: { buffer_body: 1MiB }\n", "request: { underscores: true }\n",
    };
    static const char *const want[] = {"unknown key 'normalise'", "expected true or false",
                                       "buffer_body must be 0..64KiB", "unknown key 'underscores'"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char yaml[512], err[1024] = "";
        snprintf(yaml, sizeof(yaml), "%s%s", minimal, bad[i]);
        eg_config_t *c = NULL;
        assert_int_not_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &c, err, sizeof(err)), EG_OK);
        assert_null(c);
        if (!strstr(err, want[i])) fail_msg("%s: got '%s'", bad[i], err);
    }
}

/* "{{{{..." is an error with its position, not a stack overflow (fuzz_config
 * found it: the YAML tree is built recursively). */
/* "\0" in a quoted value: refused, not a string shorter than its length
 * (fuzz_config found a read past the end of a method name this way). */
static void test_nul_in_a_value_is_refused(void **state)
{
    (void)state;
    static const char yaml[] = "listen: :80\nupstreams: { a: { servers: [127.0.0.1:1] } }\n"
                               "routes: [ { path: /x, upstream: a, methods: [\"GE\\0T\"] } ]\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_not_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_null(cfg);
    if (strncmp(err, "c.yaml:3:", 9) != 0 || !strstr(err, "may not contain a NUL")) fail_msg("got '%s'", err);
}

static void test_deep_nesting_is_refused(void **state)
{
    (void)state;
    char yaml[2100], err[512] = "";
    size_t n = 0;
    n += (size_t)snprintf(yaml, sizeof(yaml), "listen: :80\nx: ");
    for (int i = 0; i < 1000; i++) yaml[n++] = '{';
    yaml[n] = '\0';
    eg_config_t *cfg = NULL;
    assert_int_not_equal(eg_config_parse(yaml, n, "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_null(cfg);
    if (strncmp(err, "c.yaml:2:", 9) != 0 || !strstr(err, "nesting deeper than 64 levels")) fail_msg("got '%s'", err);
}

static void test_jwt_require_exp(void **state)
{
    (void)state;
    setenv("EG_TEST_JWT_SECRET", "a-secret-that-is-long-enough", 1);
    static const char *const texts[] = {"", ", require_exp: true", ", require_exp: false"};
    static const int allowed[] = {0, 0, 1};
    for (int i = 0; i < 3; i++) {
        char yaml[512];
        snprintf(yaml, sizeof(yaml),
                 "listen: :80\nauth: { jwt: { secret_env: EG_TEST_JWT_SECRET%s } }\n"
                 "upstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /j, upstream: "
                 "a, auth: jwt }\n",
                 texts[i]);
        eg_config_t *cfg = parse_ok(yaml);
        assert_int_equal(cfg->jwt.allow_no_exp, allowed[i]);
        eg_config_free(cfg);
    }
    static const char bad[] =
        "listen: :80\nauth: { jwt: { secret_env: EG_TEST_JWT_SECRET, require_exp: maybe } }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_not_equal(eg_config_parse(bad, strlen(bad), "c.yaml", &cfg, err, sizeof(err)),
                         EG_OK);
    assert_null(cfg);
    if (strncmp(err, "c.yaml:2:61: expected true or false\n", 36) != 0) fail_msg("got '%s'", err);
}

/* Messages quote values from the file; the report prints one a line. A
 * value with a newline must not start a line of its own (it could forge
 * "ok"), nor may any other control byte reach the reader: \n, \r, \t
 * and \xNN stand for them. */
static void test_quoted_values_are_escaped(void **state)
{
    (void)state;
    static const char yaml[] =
        "listen: :80\n"
        "upstreams:\n"
        "  a: { servers: [127.0.0.1:1], timeout: \"5\\nc.yaml: ok\" }\n"
        "routes:\n"
        "  - { path: /x, upstream: a, methods: [\"GET\\r\\t\\e[2J\\x7f\\x01\"] }\n"
        "\"bad\\nkey\": 1\n";
    /* the root's keys are checked first; each line is compared up to its list of expected names */
    static const char *const want[] = {
        "c.yaml:6:1: unknown key 'bad\\nkey' in the configuration (expected one of: listen,",
        "c.yaml:3:41: invalid duration '5\\nc.yaml: ok' (use e.g. 500ms, 2s, 1m, 1h)",
        "c.yaml:5:40: unknown method 'GET\\r\\t\\x1b[2J\\x7f\\x01' (GET, HEAD,",
    };
    char err[EG_CONFIG_ERRLEN] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)),
                     EG_EPARSE);
    assert_null(cfg);
    /* three problems, three lines: the quoted newlines are not line breaks */
    const char *line = err;
    for (size_t i = 0; i < 3; i++) {
        assert_non_null(line);
        if (strncmp(line, want[i], strlen(want[i])) != 0)
            fail_msg("line %zu: got:\n%s\nwant:\n%s", i, line, want[i]);
        line = strchr(line, '\n');
        if (line) line++;
    }
    assert_null(line);
    for (const char *p = err; *p; p++)
        if (*p != '\n' && ((unsigned char)*p < 0x20 || *p == 0x7f))
            fail_msg("control byte in '%s'", err);
    /* a file name is quoted too (check-config FILE, a catalog path) */
    assert_int_equal(eg_config_load("/nonexistent/a\nok\x1b.yaml", &cfg, err, sizeof(err)), EG_EIO);
    assert_string_equal(err, "/nonexistent/a\\nok\\x1b.yaml: No such file or directory");
    /* an escape that does not fit is left out whole, never cut in half */
    char small[20];
    assert_int_equal(eg_config_load("/nonexistent/\x01\x02", &cfg, small, sizeof(small)), EG_EIO);
    assert_string_equal(small, "/nonexistent/\\x01");
}

static void test_auth_settings(void **state)
{
    (void)state;
    setenv("EG_TEST_JWT_SECRET", "a-secret-that-is-long-enough", 1);
    static const char yaml[] =
        "listen: :80\n"
        "store: { backend: sqlite, refresh: 250ms }\n"
        "auth: { key_header: X-Key, rotation_grace: 1h, contact: ops@example.com,\n"
        "        jwt: { secret_env: EG_TEST_JWT_SECRET, audience: api, leeway: 10s, algorithms: [HS256] } }\n"
        "upstreams:\n  a: { servers: [127.0.0.1:1] }\n"
        "routes:\n"
        "  - { path: /k, upstream: a, auth: api_key, scopes: [read, write], scopes_any: [x, y], admin: true }\n"
        "  - { path: /j, upstream: a, auth: jwt, allow_ips: [10.0.0.0/8, \"2001:db8::/32\"] }\n"
        "  - { path: /o, upstream: a }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_int_equal(cfg->store_backend, EG_STORE_SQLITE);
    assert_string_equal(cfg->store_path, "./errgate.db"); /* next to the config; parsed text has no dir */
    assert_int_equal(cfg->store_refresh_ms, 250);
    assert_string_equal(cfg->key_header, "X-Key");
    assert_int_equal(cfg->rotation_grace_ms, 3600000);
    assert_true(cfg->uses_keys);
    assert_false(cfg->has_admin_token);
    assert_null(cfg->pepper);
    assert_int_equal(eg_jwt_keys_count(cfg->jwt_keys), 1);
    assert_int_equal(cfg->jwt.algs, EG_JWT_HS256);
    assert_int_equal(cfg->jwt.leeway_s, 10);
    assert_string_equal(cfg->jwt.audience, "api");
    assert_false(cfg->jwt.allow_no_exp); /* a token without exp is refused unless said otherwise */
    const eg_route_cfg_t *k = &cfg->routes[0], *j = &cfg->routes[1], *o = &cfg->routes[2];
    assert_int_equal(k->auth, EG_AUTHN_API_KEY);
    assert_int_equal(k->nscopes, 2);
    assert_string_equal(k->scopes[1], "write");
    assert_int_equal(k->nscopes_any, 2);
    assert_true(k->admin);
    assert_int_equal(j->auth, EG_AUTHN_JWT);
    assert_int_equal(j->nallow_ips, 2);
    assert_string_equal(j->allow_ips_text, "10.0.0.0/8,2001:db8::/32");
    assert_int_equal(o->auth, EG_AUTHN_NONE);
    /* credentials in query strings are redacted from logs by default */
    int has_api_key = 0;
    for (size_t i = 0; i < cfg->nredact; i++) has_api_key |= strcmp(cfg->redact_query[i], "api_key") == 0;
    assert_true(has_api_key);
    eg_config_free(cfg);
}

/* idempotency.max_body: 1MiB by default, up to 16MiB (the body is held in
 * memory while the stage reads it), more is refused; it used to be capped at
 * the connection buffer's 64KiB. */
static void test_idempotency_max_body(void **state)
{
    (void)state;
    static const char yaml[] = "listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n"
                               "  - { path: /x, upstream: a, idempotency: { } }\n"
                               "  - { path: /y, upstream: a, idempotency: { max_body: 16MiB } }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_int_equal(cfg->routes[0].idem_max_body, 1024 * 1024);
    assert_int_equal(cfg->routes[1].idem_max_body, 16 * 1024 * 1024);
    eg_config_free(cfg);
    static const char over[] = "listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n"
                               "  - { path: /y, upstream: a, idempotency: { max_body: 17MiB } }\n";
    cfg = NULL;
    assert_int_not_equal(eg_config_parse(over, strlen(over), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_null(cfg);
    assert_string_equal(err, "c.yaml:5:55: max_body must be at most 16MiB: the body is held in memory while it is "
                             "fingerprinted");
}

/* balance, weights, hash_on and health_check, and their problems */
static void test_upstream_balance_and_health_check(void **state)
{
    (void)state;
    static const char yaml[] =
        "listen: :80\nupstreams:\n"
        "  a: { servers: [127.0.0.1:1] }\n"
        "  w:\n    balance: weighted\n"
        "    servers: [{ address: 127.0.0.1:2, weight: 3 }, \"127.0.0.1:3 weight=2\", 127.0.0.1:4]\n"
        "  h:\n    balance: hash\n    hash_on: header:X-User\n    servers: [127.0.0.1:5]\n"
        "    health_check: { path: /ready, interval: 200ms, timeout: 50ms, expect: [2xx, 301, 400-404],"
        " rise: 4, fall: 5 }\n"
        "  d:\n    balance: least_conn\n    servers: [127.0.0.1:6]\n    health_check: {}\n"
        "routes:\n  - { path: /x, upstream: a }\n";
    eg_config_t *cfg = parse_ok(yaml);
    const eg_upstream_cfg_t *a = &cfg->upstreams[0], *w = &cfg->upstreams[1], *h = &cfg->upstreams[2],
                            *d = &cfg->upstreams[3];
    assert_int_equal(a->balance, 0); /* round_robin */
    assert_int_equal(a->weights[0], 1);
    assert_false(a->hc.enabled);
    assert_int_equal(w->balance, 2); /* weighted */
    assert_int_equal(w->weights[0], 3);
    assert_int_equal(w->weights[1], 2);
    assert_int_equal(w->weights[2], 1);
    assert_string_equal(w->servers[1].addr, "127.0.0.1:3");
    assert_int_equal(h->balance, 3);
    assert_int_equal(h->hash_on, EG_HASH_ON_HEADER);
    assert_string_equal(h->hash_header, "X-User");
    assert_true(h->hc.enabled);
    assert_string_equal(h->hc.path, "/ready");
    assert_int_equal(h->hc.interval_ms, 200);
    assert_int_equal(h->hc.timeout_ms, 50);
    assert_int_equal(h->hc.rise, 4);
    assert_int_equal(h->hc.fall, 5);
    assert_int_equal(h->hc.nexpect, 3);
    assert_int_equal(h->hc.expect_lo[0], 200);
    assert_int_equal(h->hc.expect_hi[0], 299);
    assert_int_equal(h->hc.expect_lo[1], 301);
    assert_int_equal(h->hc.expect_hi[1], 301);
    assert_int_equal(h->hc.expect_lo[2], 400);
    assert_int_equal(h->hc.expect_hi[2], 404);
    assert_int_equal(d->balance, 1);
    assert_string_equal(d->hc.path, "/healthz");
    assert_int_equal(d->hc.interval_ms, 5000);
    assert_int_equal(d->hc.timeout_ms, 1000);
    assert_int_equal(d->hc.rise, 2);
    assert_int_equal(d->hc.fall, 3);
    assert_int_equal(d->hc.expect_lo[0], 200);
    assert_int_equal(d->hc.expect_hi[0], 399);
    eg_config_free(cfg);
    static const struct {
        const char *up, *err;
    } bad[] = {
        {"{ servers: [127.0.0.1:1], balance: random }", "balance must be round_robin, least_conn, weighted or hash"},
        {"{ servers: [127.0.0.1:1], balance: hash }", "balance: hash needs hash_on: header:NAME, principal or ip"},
        {"{ servers: [127.0.0.1:1], hash_on: ip }", "hash_on needs balance: hash"},
        {"{ servers: [127.0.0.1:1], balance: hash, hash_on: cookie }", "hash_on must be header:NAME, principal or ip"},
        {"{ servers: [\"127.0.0.1:1 weight=0\"] }", "invalid server '127.0.0.1:1 weight=0'"},
        {"{ servers: [\"127.0.0.1:1 weight=x\"] }", "invalid server '127.0.0.1:1 weight=x'"},
        {"{ servers: [127.0.0.1:1], health_check: { expect: 600 } }", "invalid expect '600'"},
        {"{ servers: [127.0.0.1:1], health_check: { expect: 2xy } }", "invalid expect '2xy'"},
        {"{ servers: [127.0.0.1:1], health_check: { expect: 300-200 } }", "invalid expect '300-200'"},
        {"{ servers: [127.0.0.1:1], health_check: { path: healthz } }", "health_check path must start with /"},
        {"{ servers: [127.0.0.1:1], health_check: { fall: 0 } }", ""},
        {"{ servers: [127.0.0.1:1], health_check: { interval: 1ms } }", "at least 10ms"},
        {"{ servers: [127.0.0.1:1], health_check: { every: 1s } }", "unknown key 'every' in health_check"},
        {"{ servers: [\"https://127.0.0.1:1\"], health_check: {} }", "probes speak plain HTTP/1.1"},
        {"{ servers: [\"https://127.0.0.1:1 weight=2\", 127.0.0.1:2] }", "mixes https:// and plain servers"},
        {"{ servers: [\"https://127.0.0.1:1 weight=0\"] }", "invalid server 'https://127.0.0.1:1 weight=0'"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], err[512] = "";
        snprintf(text, sizeof(text), "listen: :80\nupstreams:\n  a: %s\nroutes:\n  - { path: /x, upstream: a }\n",
                 bad[i].up);
        eg_config_t *c = NULL;
        assert_int_not_equal(eg_config_parse(text, strlen(text), "c.yaml", &c, err, sizeof(err)), EG_OK);
        assert_null(c);
        if (!strstr(err, bad[i].err)) fail_msg("%s: got '%s', expected '%s'", bad[i].up, err, bad[i].err);
    }
}

/* https:// servers keep their scheme with a weight or in the map form */
static void test_https_servers_with_weights(void **state)
{
    (void)state;
    static const char yaml[] = "listen: :80\n"
                               "upstreams:\n  a:\n    balance: weighted\n"
                               "    servers: [\"https://127.0.0.1:8443 weight=3\", {address: \"https://127.0.0.1:8444\"}]\n"
                               "routes:\n  - { path: /x, upstream: a }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    const eg_upstream_cfg_t *a = &cfg->upstreams[0];
    assert_true(a->tls.on);
    assert_int_equal(a->nservers, 2);
    assert_int_equal(a->servers[0].port, 8443);
    assert_int_equal(a->weights[0], 3);
    assert_int_equal(a->servers[1].port, 8444);
    assert_int_equal(a->weights[1], 1);
    eg_config_free(cfg);
}

static void test_redis_settings(void **state)
{
    (void)state;
    static const char yaml[] = "listen: :80\n"
                               "redis: { address: \"127.0.0.1:6390\", db: 3, timeout: 20ms, on_failure: fail_open,\n"
                               "         prefix: \"api1:\" }\n"
                               "upstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_true(cfg->has_redis);
    assert_string_equal(cfg->redis.host, "127.0.0.1");
    assert_int_equal(cfg->redis.port, 6390);
    assert_int_equal(cfg->redis_db, 3);
    assert_int_equal(cfg->redis_timeout_ms, 20);
    assert_true(cfg->redis_fail_open);
    assert_string_equal(cfg->redis_prefix, "api1:");
    eg_config_free(cfg);
    /* defaults: no Redis; with an address only, 50ms, fail_closed, "errgate:" */
    static const char two[] = "listen: :80\nredis: { address: \"localhost:6379\" }\n"
                              "upstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n";
    assert_int_equal(eg_config_parse(two, strlen(two), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_int_equal(cfg->redis_timeout_ms, 50);
    assert_false(cfg->redis_fail_open);
    assert_string_equal(cfg->redis_prefix, "errgate:");
    eg_config_free(cfg);
    static const char none[] = "listen: :80\nupstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n";
    assert_int_equal(eg_config_parse(none, strlen(none), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_false(cfg->has_redis);
    eg_config_free(cfg);
}

/* metering.sink: a postgres:// URL libpq can parse, checked at load with
 * its position; its password never in a message. */
static void test_metering_sink(void **state)
{
    (void)state;
    static const char ok[] = "listen: :80\n"
                             "metering: { sink: \"postgres://eg:pw@127.0.0.1:5433/billing\", sink_queue: 5000 }\n"
                             "upstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n";
    char err[512] = "";
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_parse(ok, strlen(ok), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    assert_string_equal(cfg->metering_sink, "postgres://eg:pw@127.0.0.1:5433/billing");
    assert_int_equal(cfg->metering_sink_queue, 5000);
    eg_config_free(cfg);
    cfg = parse_ok(minimal);
    assert_null(cfg->metering_sink);
    assert_int_equal(cfg->metering_sink_queue, 1000000);
    eg_config_free(cfg);
    static const struct {
        const char *metering, *err;
    } bad[] = {
        {"{ sink: \"mysql://u@h/db\" }", "c.yaml:2:19: metering.sink must be a postgres:// URL"},
        {"{ sink: \"postgres://u:hunter2-pw@[::1/db\" }", "c.yaml:2:19: metering.sink is not a valid URL"},
        {"{ sink: \"postgres://u@h/db?bogus=1\" }",
         "c.yaml:2:19: metering.sink is not a valid URL: invalid URI query parameter"},
        {"{ sink: \"postgres://u@h:99999/db\" }", "c.yaml:2:19: metering.sink's port must be a number 1..65535"},
        {"{ sink: \"\" }", "c.yaml:2:19: expected a non-empty string"},
        {"{ sink_queue: 5000 }", "c.yaml:2:25: sink_queue needs sink"},
        {"{ sink: \"postgres://h/db\", sink_queue: 10 }", "c.yaml:2:50: 10 is out of range"},
        {"{ sinc: \"postgres://h/db\" }", "c.yaml:2:13: unknown key 'sinc' in metering"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "listen: :80\nmetering: %s\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
                 "routes:\n  - { path: /x, upstream: a }\n",
                 bad[i].metering);
        cfg = NULL;
        assert_int_not_equal(eg_config_parse(text, strlen(text), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
        assert_null(cfg);
        if (strncmp(err, bad[i].err, strlen(bad[i].err)) != 0)
            fail_msg("%s: got '%s', expected '%s'", bad[i].metering, err, bad[i].err);
        assert_null(strstr(err, "hunter2"));
    }
    /* the sink copies the SQLite usage writer's commits: not with Redis yet */
    static const char redis[] = "listen: :80\nredis: { address: \"127.0.0.1:6379\" }\n"
                                "metering: { sink: \"postgres://h/db\" }\n"
                                "upstreams:\n  a: { servers: [127.0.0.1:1] }\nroutes:\n  - { path: /x, upstream: a }\n";
    assert_int_not_equal(eg_config_parse(redis, strlen(redis), "c.yaml", &cfg, err, sizeof(err)), EG_OK);
    if (!strstr(err, "c.yaml:3:19: metering.sink copies the usage committed to SQLite"))
        fail_msg("got '%s'", err);
}

static void test_relative_catalog_path_and_its_errors(void **state)
{
    (void)state;
    char dir[] = "/tmp/eg-cfg-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cat[256], conf[256];
    snprintf(cat, sizeof(cat), "%s/cat.yaml", dir);
    snprintf(conf, sizeof(conf), "%s/gw.yaml", dir);
    FILE *f = fopen(cat, "w");
    fputs("codes:\n  out_of_stock: { status: 409 }\n", f);
    fclose(f);
    f = fopen(conf, "w");
    fprintf(f, "listen: :80\nerrors: { catalog: cat.yaml }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
               "routes:\n  - { path: /, upstream: a }\n");
    fclose(f);
    char err[512];
    eg_config_t *cfg = NULL;
    assert_int_equal(eg_config_load(conf, &cfg, err, sizeof(err)), EG_OK);
    assert_non_null(eg_catalog_find(cfg->catalog, "out_of_stock"));
    eg_config_free(cfg);
    f = fopen(cat, "w");
    fputs("codes:\n  out_of_stock: { status: 200 }\n", f);
    fclose(f);
    assert_int_equal(eg_config_load(conf, &cfg, err, sizeof(err)), EG_EPARSE);
    char want[300];
    snprintf(want, sizeof(want), "%s:2:27: 200 is out of range", cat);
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("got '%s'", err);
    unlink(cat);
    unlink(conf);
    rmdir(dir);
}

/* alerts: the seed's rules by default; a rule of the same name tunes a
 * default, a new name adds one; problems carry their position. */
static void test_alert_settings(void **state)
{
    (void)state;
    eg_config_t *cfg = parse_ok(minimal);
    assert_true(cfg->alerts_enabled);
    assert_int_equal(cfg->nalert_rules, 4);
    assert_string_equal(cfg->alert_rules[1].name, "server_errors");
    assert_int_equal(cfg->nalert_windows, 2);
    assert_int_equal(cfg->alert_windows[1], 300);
    assert_int_equal(cfg->nwebhooks, 0);
    eg_config_free(cfg);
    setenv("EG_TEST_HOOK_SECRET", "whsec-0123456789abcdef", 1);
    cfg = parse_ok("listen: 127.0.0.1:8080\n"
                   "upstreams:\n  a: { servers: [127.0.0.1:9000] }\n"
                   "routes:\n  - { path: /v1/, upstream: a }\n  - { path: /v2/, upstream: a }\n"
                   "alerts:\n"
                   "  windows: [30s, 10m]\n"
                   "  evaluate_every: 500ms\n"
                   "  rules:\n"
                   "    - { name: server_errors, threshold: 2% }\n"
                   "    - { name: v2_502, match: '502,504', route: /v2/, threshold: 0.5, resolve: 10%,\n"
                   "        min_requests: 5, window: 10s, for: 0s, severity: info }\n"
                   "  webhooks:\n"
                   "    - { url: 'http://127.0.0.1:9/hook', secret_env: EG_TEST_HOOK_SECRET }\n"
                   "    - { url: 'https://am.example/api/v2/alerts', format: alertmanager, timeout: 2s,\n"
                   "        max_attempts: 3 }\n");
    assert_int_equal(cfg->nalert_rules, 5);
    const eg_alert_rule_t *r = &cfg->alert_rules[1];
    assert_true(r->threshold == 0.02);
    assert_true(r->resolve == 0.01);
    assert_int_equal(r->route, EG_ALERT_EACH);
    r = &cfg->alert_rules[4];
    assert_string_equal(r->name, "v2_502");
    assert_int_equal(r->match.ncodes, 2);
    assert_int_equal(r->route, 1);
    assert_true(r->threshold == 0.5);
    assert_true(r->resolve == 0.1);
    assert_int_equal(r->min_requests, 5);
    assert_int_equal(r->window_s, 10);
    assert_int_equal(r->for_ms, 0);
    assert_int_equal(r->severity, EG_ALERT_INFO);
    assert_int_equal(cfg->alert_windows[0], 30);
    assert_int_equal(cfg->alert_windows[1], 600);
    assert_int_equal(cfg->alert_interval_ms, 500);
    assert_int_equal(cfg->nwebhooks, 2);
    assert_string_equal(cfg->webhooks[0].url, "http://127.0.0.1:9/hook");
    assert_int_equal(cfg->webhooks[0].secret_len, 22);
    assert_false(cfg->webhooks[0].alertmanager);
    assert_int_equal(cfg->webhooks[0].timeout_ms, 5000);
    assert_int_equal(cfg->webhooks[0].max_attempts, 5);
    assert_true(cfg->webhooks[1].alertmanager);
    assert_null(cfg->webhooks[1].secret);
    assert_int_equal(cfg->webhooks[1].timeout_ms, 2000);
    assert_int_equal(cfg->webhooks[1].max_attempts, 3);
    eg_config_free(cfg);
    cfg = parse_ok("listen: 127.0.0.1:8080\n"
                   "upstreams:\n  a: { servers: [127.0.0.1:9000] }\n"
                   "routes:\n  - { path: /v1/, upstream: a }\n"
                   "alerts: { enabled: false, defaults: false,\n"
                   "  rules: [ { name: any_5xx, match: 5xx, threshold: 0%, route: all } ] }\n");
    assert_false(cfg->alerts_enabled);
    assert_int_equal(cfg->nalert_rules, 1);
    assert_int_equal(cfg->alert_rules[0].route, EG_ALERT_ALL);
    assert_true(cfg->alert_rules[0].resolve == 0);
    eg_config_free(cfg);

    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"alerts: { rules: [ { name: x, match: 6xx, threshold: 1% } ] }\n", "c.yaml:6:38: invalid match '6xx'"},
        {"alerts: { rules: [ { name: x, match: 5xx, threshold: 150% } ] }\n", "c.yaml:6:54: invalid fraction '150%'"},
        {"alerts: { rules: [ { name: x, match: 5xx } ] }\n", "c.yaml:6:20: alert rule x needs a threshold"},
        {"alerts: { rules: [ { name: X, match: 5xx, threshold: 1% } ] }\n", "c.yaml:6:28: alert rule name 'X'"},
        {"alerts: { rules: [ { name: x, match: 5xx, threshold: 1%, resolve: 2% } ] }\n", "c.yaml:6:67: resolve must not be above the threshold"},
        {"alerts: { rules: [ { name: x, match: 5xx, threshold: 1%, route: /nope } ] }\n", "c.yaml:6:65: no route has the path '/nope'"},
        {"alerts: { rules: [ { name: x, match: 5xx, threshold: 1%, window: 2h } ] }\n", "c.yaml:6:66: a window is whole seconds from 1s to 1h"},
        {"alerts: { rules: [ { name: x, match: 5xx, threshold: 1%, severity: page } ] }\n", "c.yaml:6:68: severity: critical, warning or info"},
        {"alerts: { rules: [ { name: x, match: 5xx, treshold: 1% } ] }\n", "c.yaml:6:43: unknown key 'treshold' in an alert rule"},
        {"alerts: { webhooks: [ { url: 'ftp://x/' } ] }\n", "c.yaml:6:30: a webhook url starts with http:// or https://"},
        {"alerts: { webhooks: [ { url: 'http://x/', format: xml } ] }\n", "c.yaml:6:51: format: json or alertmanager"},
        {"alerts: { webhooks: [ { url: 'http://x/', secret_env: EG_TEST_SHORT_SECRET } ] }\n", "c.yaml:6:55: the secret is shorter than 16 bytes"},
        {"alerts: { windows: [1m, 1.5s] }\n", "c.yaml:6:25: invalid duration '1.5s'"},
        {"alerts: { evaluate_every: 10ms }\n", "c.yaml:6:27: evaluate_every is from 100ms to 1m"},
        {"alerts: { enabeld: true }\n", "c.yaml:6:11: unknown key 'enabeld' in alerts"},
    };
    setenv("EG_TEST_SHORT_SECRET", "short", 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[1024], err[EG_CONFIG_ERRLEN] = "";
        snprintf(yaml, sizeof(yaml), "%s%s", minimal, cases[i].yaml);
        eg_config_t *bad = NULL;
        if (eg_config_parse(yaml, strlen(yaml), "c.yaml", &bad, err, sizeof(err)) == EG_OK)
            fail_msg("accepted: %s", cases[i].yaml);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("for %s\n got: %s\nwant: %s", cases[i].yaml, err, cases[i].want);
    }
}

/* The metering API's keys of metering: (docs/metering.md). */
static void test_metering_api_settings(void **state)
{
    (void)state;
    static const char yaml[] =
        "listen: :80\n"
        "metering: { path: /v1/meter, event_types: [sms.sent, \"voice.*\"], max_future: 30s,\n"
        "            max_age: 2d, max_metadata: 1KiB, max_body: 2MiB, scope: usage:post }\n"
        "upstreams:\n  a: { servers: [127.0.0.1:1] }\n"
        "routes:\n  - { path: /v1/, upstream: a, auth: api_key }\n";
    eg_config_t *cfg = parse_ok(yaml);
    assert_string_equal(cfg->meter_path, "/v1/meter");
    assert_int_equal(cfg->meter_rules.nevent_types, 2);
    assert_true(eg_meter_type_allowed(&cfg->meter_rules, "voice.minutes", 13));
    assert_false(eg_meter_type_allowed(&cfg->meter_rules, "api.request", 11));
    assert_int_equal(cfg->meter_rules.max_future_s, 30);
    assert_int_equal(cfg->meter_rules.max_age_s, 2 * 86400);
    assert_int_equal(cfg->meter_rules.max_metadata, 1024);
    assert_int_equal(cfg->meter_max_body, 2u << 20);
    assert_string_equal(cfg->meter_scope, "usage:post");
    assert_true(cfg->meter_check_users);
    assert_true(cfg->uses_keys); /* user_id is looked up in the keyring */
    eg_config_free(cfg);
    /* defaults */
    static const char dflt[] = "listen: :80\nmetering: { path: /m }\n"
                               "upstreams:\n  a: { servers: [127.0.0.1:1] }\n"
                               "routes:\n  - { path: /m, upstream: a, auth: api_key }\n";
    cfg = parse_ok(dflt);
    assert_int_equal(cfg->meter_rules.nevent_types, 5);
    assert_int_equal(cfg->meter_rules.max_future_s, 60);
    assert_int_equal(cfg->meter_rules.max_age_s, 7 * 86400);
    assert_int_equal(cfg->meter_rules.max_events, 1000);
    assert_string_equal(cfg->meter_scope, "meter:write");
    eg_config_free(cfg);
    static const struct {
        const char *yaml, *says;
    } bad[] = {
        {"listen: :80\nmetering: { path: /m }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /x, upstream: a, auth: api_key }\n",
         "no route serves POST /m"},
        {"listen: :80\nmetering: { path: /m }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /, upstream: a }\n",
         "does not require auth"},
        {"listen: :80\nmetering: { path: /m }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /m, upstream: a, auth: { api_key: optional } }\n",
         "does not require auth"},
        {"listen: :80\nmetering: { path: /m, event_types: [\"a*b\"] }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /m, upstream: a, auth: api_key }\n",
         "a pattern ends in .*"},
        {"listen: :80\nmetering: { max_age: 1d }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /m, upstream: a, auth: api_key }\n",
         "set metering.path too"},
        {"listen: :80\nmetering: { path: /m, max_age: 30s }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /m, upstream: a, auth: api_key }\n",
         "max_age must be 1m..400d"},
        {"listen: :80\nstore: { backend: memory }\nmetering: { path: /m }\nupstreams:\n  a: { servers: [127.0.0.1:1] }\n"
         "routes:\n  - { path: /m, upstream: a, auth: api_key }\n",
         "needs the sqlite store or redis"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[1024] = "";
        eg_config_t *c = NULL;
        if (eg_config_parse(bad[i].yaml, strlen(bad[i].yaml), "c.yaml", &c, err, sizeof(err)) == EG_OK)
            fail_msg("accepted: %s", bad[i].yaml);
        if (!strstr(err, bad[i].says)) fail_msg("'%s' does not say '%s'", err, bad[i].says);
    }
}

/* meter:, metering: and the quota headers (docs/metering.md). */
static void test_metering(void **state)
{
    (void)state;
    eg_config_t *cfg = parse_ok(minimal);
    assert_int_equal(cfg->uses_metering, 0);
    assert_null(cfg->usage_path);
    assert_int_equal(cfg->metering_commit_every, 1000);
    assert_int_equal(cfg->metering_commit_interval_ms, 100);
    assert_int_equal(cfg->metering_max_uncommitted, 10000);
    assert_int_equal(cfg->quota_legacy_headers + cfg->quota_ietf_headers, 0);
    assert_string_equal(cfg->quota_hdr_remaining, "X-Quota-Remaining");
    assert_int_equal(cfg->routes[0].meter, 0);
    eg_config_free(cfg);
    cfg =
        parse_ok("listen: 127.0.0.1:8080\n"
                 "metering: { usage_path: /v1/usage, commit_every: 50, commit_interval: 2s, "
                 "max_uncommitted: 400, retention: 30d }\n"
                 "rate_limits: { quota_headers: [ietf], quota_header_names: { limit: Q-Limit } }\n"
                 "upstreams:\n  a: { servers: [127.0.0.1:9000] }\n"
                 "routes:\n"
                 "  - { path: /m/, upstream: a, meter: true }\n"
                 "  - { path: /c/, upstream: a, meter: { event_type: custom.render, cost: 2.5, "
                 "bytes: true } }\n"
                 "  - { path: /v1/, upstream: a, auth: api_key, meter: false }\n");
    assert_int_equal(cfg->uses_metering, 1);
    assert_string_equal(cfg->usage_path, "/v1/usage");
    assert_int_equal(cfg->metering_commit_every, 50);
    assert_int_equal(cfg->metering_commit_interval_ms, 2000);
    assert_int_equal(cfg->metering_max_uncommitted, 400);
    assert_int_equal(cfg->metering_retention_s, 30 * 86400);
    assert_int_equal(cfg->quota_ietf_headers, 1);
    assert_int_equal(cfg->quota_legacy_headers, 0);
    assert_string_equal(cfg->quota_hdr_limit, "Q-Limit");
    assert_int_equal(cfg->routes[0].meter, 1);
    assert_string_equal(cfg->routes[0].meter_event, "api.request");
    assert_true(cfg->routes[0].meter_cost == 1.0);
    assert_int_equal(cfg->routes[0].meter_bytes, 0);
    assert_string_equal(cfg->routes[1].meter_event, "custom.render");
    assert_true(cfg->routes[1].meter_cost == 2.5);
    assert_int_equal(cfg->routes[1].meter_bytes, 1);
    assert_int_equal(cfg->routes[2].meter, 0);
    eg_config_free(cfg);
    static const struct {
        const char *yaml, *want;
    } bad[] = {
        {"routes:\n  - { path: /m/, upstream: a, meter: { cost: 0 } }\n",
         "cost must be a number above 0"},
        {"routes:\n  - { path: /m/, upstream: a, meter: { event_type: \"a b\" } }\n",
         "event_type must be a name"},
        {"routes:\n  - { path: /m/, upstream: a, meter: { unit: x } }\n",
         "unknown key 'unit' in meter"},
        {"metering: { usage_path: usage }\nroutes:\n  - { path: /m/, upstream: a }\n",
         "usage_path must be a path"},
        {"metering: { usage_path: /u }\nroutes:\n  - { path: /m/, upstream: a }\n",
         "metering.usage_path /u: no route covers it"},
        {"metering: { usage_path: /m/u }\nroutes:\n  - { path: /m/, upstream: a }\n",
         "metering.usage_path /m/u: its route /m/ needs auth"},
        {"store: { backend: memory }\nroutes:\n  - { path: /m/, upstream: a, meter: true }\n",
         "meter: needs a durable store"},
        {"rate_limits: { quota_headers: [x] }\nroutes:\n  - { path: /m/, upstream: a }\n",
         "quota_headers are legacy"},
        {"rate_limits: { quota_header_names: { limit: \"X Q\" } }\nroutes:\n  - { path: /m/, "
         "upstream: a }\n",
         "a header name"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512], err[512] = "";
        snprintf(text, sizeof(text),
                 "listen: 127.0.0.1:8080\nupstreams:\n  a: { servers: [127.0.0.1:9000] }\n%s",
                 bad[i].yaml);
        eg_config_t *c = NULL;
        assert_int_not_equal(eg_config_parse(text, strlen(text), "c.yaml", &c, err, sizeof(err)),
                             EG_OK);
        if (strncmp(err, "c.yaml:", 7) != 0 || !strstr(err, bad[i].want))
            fail_msg("case %zu: got '%s'\n want '%s'", i, err, bad[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_demo_config_loads),
        cmocka_unit_test(test_values_are_read),
        cmocka_unit_test(test_problems_are_reported_with_position),
        cmocka_unit_test(test_every_problem_is_reported),
        cmocka_unit_test(test_problem_report_is_bounded),
        cmocka_unit_test(test_relative_catalog_path_and_its_errors),
        cmocka_unit_test(test_auth_settings),
        cmocka_unit_test(test_jwt_require_exp),
        cmocka_unit_test(test_deep_nesting_is_refused),
        cmocka_unit_test(test_nul_in_a_value_is_refused),
        cmocka_unit_test(test_path_request_and_timeouts),
        cmocka_unit_test(test_quoted_values_are_escaped),
        cmocka_unit_test(test_https_servers_with_weights),
        cmocka_unit_test(test_redis_settings),
        cmocka_unit_test(test_metering_sink),
        cmocka_unit_test(test_idempotency_max_body),
        cmocka_unit_test(test_alert_settings),
        cmocka_unit_test(test_metering_api_settings),
        cmocka_unit_test(test_upstream_balance_and_health_check),
        cmocka_unit_test(test_metering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

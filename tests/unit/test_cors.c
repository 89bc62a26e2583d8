/* test_cors.c - CORS policies: validation, origin matching, and the exact
 * header lines of preflight and actual responses. */
#include "testutil.h"

#include "errgate/cors.h"

#define EXPOSE_DEFAULT                                                                             \
    "Access-Control-Expose-Headers: X-Request-ID, X-Error-Code, Retry-After, RateLimit, "          \
    "RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "              \
    "Idempotent-Replayed\r\n"
#define APP "https://app.example.com"

static eg_cors_policy_t *build(const eg_cors_spec_t *s)
{
    eg_cors_policy_t *p = NULL;
    char err[256] = "";
    int rc = eg_cors_policy_new(s, &p, err, sizeof(err));
    if (rc != EG_OK) fail_msg("policy refused: %s", err);
    return p;
}

/* A policy of these origins, everything else default. */
static eg_cors_policy_t *with_origins(const char *const *origins, size_t n, int credentials)
{
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = origins;
    s.n_origins = n;
    s.credentials = credentials;
    return build(&s);
}

/* The response lines for `origin` (NULL: absent), in a static buffer. */
static const char *resp(const eg_cors_policy_t *p, const char *origin)
{
    static char buf[4096];
    size_t len = 12345;
    assert_true(eg_cors_headers_max(p) <= sizeof(buf));
    assert_int_equal(
        eg_cors_response_headers(p, origin, origin ? strlen(origin) : 0, buf, sizeof(buf), &len),
        EG_OK);
    assert_int_equal(len, strlen(buf));
    return buf;
}

typedef struct {
    eg_cors_verdict_t verdict;
    const char *reason;
    char out[4096];
} pf_t;

static const pf_t *preflight(const eg_cors_policy_t *p, const char *origin, const char *method,
                             const char *headers)
{
    static pf_t r;
    size_t len = 12345;
    memset(&r, 0, sizeof(r));
    r.reason = "unset";
    assert_int_equal(eg_cors_preflight(p, origin, origin ? strlen(origin) : 0, method,
                                       method ? strlen(method) : 0, headers,
                                       headers ? strlen(headers) : 0, r.out, sizeof(r.out), &len,
                                       &r.verdict, &r.reason),
                     EG_OK);
    assert_int_equal(len, strlen(r.out));
    if (r.verdict != EG_CORS_ALLOWED) assert_int_equal(len, 0);
    return &r;
}

static void assert_denied(const pf_t *r, const char *reason)
{
    assert_int_equal(r->verdict, EG_CORS_DENIED);
    assert_string_equal(r->out, "");
    assert_string_equal(r->reason, reason);
}

static void test_exact_origin(void **state)
{
    (void)state;
    const char *o[] = {APP, "http://localhost:3000"};
    eg_cors_policy_t *p = with_origins(o, 2, 0);
    assert_string_equal(resp(p, APP),
                        "Access-Control-Allow-Origin: https://app.example.com\r\n" EXPOSE_DEFAULT
                        "Vary: Origin\r\n");
    assert_string_equal(resp(p, "http://localhost:3000"),
                        "Access-Control-Allow-Origin: http://localhost:3000\r\n" EXPOSE_DEFAULT
                        "Vary: Origin\r\n");
    /* not allowed, or no Origin: no CORS line, but Vary for caches */
    const char *no[] = {"https://evil.example.com",
                        "http://app.example.com",
                        "https://app.example.com:8443",
                        "https://app.example.com.evil.com",
                        "https://app.example.co",
                        "http://localhost:3001",
                        "http://localhost",
                        "https://app.example.com/",
                        "https://app.example.com/x",
                        "https://user@app.example.com",
                        "app.example.com",
                        "",
                        "*",
                        "null",
                        "https://",
                        "https://app.example.com:",
                        "https://app.example.com:99999"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (strcmp(resp(p, no[i]), "Vary: Origin\r\n") != 0) fail_msg("allowed '%s'", no[i]);
        assert_false(eg_cors_origin_allowed(p, no[i], strlen(no[i])));
    }
    assert_string_equal(resp(p, NULL), "Vary: Origin\r\n");
    assert_false(eg_cors_origin_allowed(p, NULL, 0));
    eg_cors_policy_free(p);
}

static void test_case_and_default_port(void **state)
{
    (void)state;
    const char *o[] = {"HTTPS://App.Example.COM:443", "http://api.example.com:80",
                       "http://[::1]:8080"};
    eg_cors_policy_t *p = with_origins(o, 3, 0);
    /* scheme and host compare case-insensitively; the value is echoed as sent */
    assert_string_equal(resp(p, APP),
                        "Access-Control-Allow-Origin: https://app.example.com\r\n" EXPOSE_DEFAULT
                        "Vary: Origin\r\n");
    assert_string_equal(resp(p, "hTTps://APP.example.com"),
                        "Access-Control-Allow-Origin: hTTps://APP.example.com\r\n" EXPOSE_DEFAULT
                        "Vary: Origin\r\n");
    /* a default port is no port, either side */
    assert_true(eg_cors_origin_allowed(p, "https://app.example.com:443", 27));
    assert_true(eg_cors_origin_allowed(p, "http://api.example.com", 22));
    assert_false(eg_cors_origin_allowed(p, "https://api.example.com", 23));
    assert_false(eg_cors_origin_allowed(p, "http://app.example.com:443", 26));
    assert_true(eg_cors_origin_allowed(p, "http://[::1]:8080", 17));
    assert_false(eg_cors_origin_allowed(p, "http://[::1]", 12));
    assert_false(eg_cors_origin_allowed(p, "http://[::2]:8080", 17));
    eg_cors_policy_free(p);
}

static void test_wildcard_subdomain(void **state)
{
    (void)state;
    const char *o[] = {"https://*.example.com", "http://*.dev.example.org:8080"};
    eg_cors_policy_t *p = with_origins(o, 2, 0);
    const char *yes[] = {"https://a.example.com", "https://a.b.example.com",
                         "https://A-1.Example.Com", "http://x.dev.example.org:8080"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!eg_cors_origin_allowed(p, yes[i], strlen(yes[i]))) fail_msg("refused '%s'", yes[i]);
    assert_string_equal(resp(p, "https://a.b.example.com"),
                        "Access-Control-Allow-Origin: https://a.b.example.com\r\n" EXPOSE_DEFAULT
                        "Vary: Origin\r\n");
    const char *no[] = {"https://example.com",           "https://aexample.com",
                        "https://.example.com",          "https://a..example.com",
                        "https://a.example.com.",        "http://a.example.com",
                        "https://a.example.com:8443",    "https://a.example.com.evil.com",
                        "https://evil.com/.example.com", "https://*.example.com",
                        "http://x.dev.example.org",      "http://dev.example.org:8080"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (eg_cors_origin_allowed(p, no[i], strlen(no[i]))) fail_msg("allowed '%s'", no[i]);
    eg_cors_policy_free(p);
}

static void test_star(void **state)
{
    (void)state;
    const char *o[] = {"*"};
    eg_cors_policy_t *p = with_origins(o, 1, 0);
    const char *star = "Access-Control-Allow-Origin: *\r\n" EXPOSE_DEFAULT;
    assert_string_equal(resp(p, APP), star);
    assert_string_equal(resp(p, "http://anything.test:1234"), star);
    assert_string_equal(resp(p, NULL), star); /* static answer: no Vary needed */
    /* "*" does not cover the opaque origin nor an invalid value */
    assert_string_equal(resp(p, "null"), "Vary: Origin\r\n");
    assert_string_equal(resp(p, "https://a.test\r\nSet-Cookie: x=1"), "Vary: Origin\r\n");
    const pf_t *r = preflight(p, APP, "PUT", "content-type");
    assert_int_equal(r->verdict, EG_CORS_ALLOWED);
    assert_string_equal(r->out,
                        "Access-Control-Allow-Origin: *\r\n"
                        "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
                        "Access-Control-Allow-Headers: Authorization, Content-Type, "
                        "Idempotency-Key, X-API-Key, X-Request-ID, traceparent, tracestate\r\n"
                        "Access-Control-Max-Age: 600\r\n");
    assert_null(r->reason);
    eg_cors_policy_free(p);
}

static void test_null_origin(void **state)
{
    (void)state;
    const char *o1[] = {APP};
    eg_cors_policy_t *p = with_origins(o1, 1, 0);
    assert_string_equal(resp(p, "null"), "Vary: Origin\r\n");
    assert_denied(preflight(p, "null", "GET", NULL), "origin not allowed");
    eg_cors_policy_free(p);

    const char *o2[] = {"*", "null"};
    p = with_origins(o2, 2, 0);
    assert_string_equal(resp(p, "null"),
                        "Access-Control-Allow-Origin: null\r\n" EXPOSE_DEFAULT "Vary: Origin\r\n");
    assert_string_equal(resp(p, "NULL"), "Vary: Origin\r\n");
    eg_cors_policy_free(p);
}

static void test_credentials(void **state)
{
    (void)state;
    const char *o[] = {"https://*.example.com"};
    eg_cors_policy_t *p = with_origins(o, 1, 1);
    assert_string_equal(resp(p, APP), "Access-Control-Allow-Origin: https://app.example.com\r\n"
                                      "Access-Control-Allow-Credentials: true\r\n" EXPOSE_DEFAULT
                                      "Vary: Origin\r\n");
    assert_string_equal(resp(p, "https://evil.test"), "Vary: Origin\r\n");
    assert_string_equal(resp(p, NULL), "Vary: Origin\r\n");
    const pf_t *r = preflight(p, APP, "POST", "");
    assert_int_equal(r->verdict, EG_CORS_ALLOWED);
    assert_string_equal(r->out,
                        "Access-Control-Allow-Origin: https://app.example.com\r\n"
                        "Access-Control-Allow-Credentials: true\r\n"
                        "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, DELETE\r\n"
                        "Access-Control-Allow-Headers: Authorization, Content-Type, "
                        "Idempotency-Key, X-API-Key, X-Request-ID, traceparent, tracestate\r\n"
                        "Access-Control-Max-Age: 600\r\n"
                        "Vary: Origin\r\n");
    eg_cors_policy_free(p);
}

static eg_cors_policy_t *api_policy(void)
{
    static const char *o[] = {APP};
    static const char *h[] = {"Content-Type", "X-API-Key"};
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = 1;
    s.methods = EG_M_GET | EG_M_POST | EG_M_DELETE;
    s.headers = h;
    s.n_headers = 2;
    s.max_age = 7200;
    return build(&s);
}

#define API_ALLOWED                                                                                \
    "Access-Control-Allow-Origin: https://app.example.com\r\n"                                     \
    "Access-Control-Allow-Methods: GET, POST, DELETE\r\n"                                          \
    "Access-Control-Allow-Headers: Content-Type, X-API-Key\r\n"                                    \
    "Access-Control-Max-Age: 7200\r\n"                                                             \
    "Vary: Origin\r\n"

static void test_preflight_allowed(void **state)
{
    (void)state;
    eg_cors_policy_t *p = api_policy();
    const char *ok[][2] = {{"DELETE", "content-type,x-api-key"},
                           {"GET", NULL},
                           {"POST", ""},
                           {"POST", " Content-Type ,, X-Api-KEY ,"},
                           {"GET", "x-api-key"}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const pf_t *r = preflight(p, APP, ok[i][0], ok[i][1]);
        if (r->verdict != EG_CORS_ALLOWED)
            fail_msg("refused %s / %s: %s", ok[i][0], ok[i][1], r->reason);
        assert_string_equal(r->out, API_ALLOWED);
        assert_null(r->reason);
    }
    eg_cors_policy_free(p);
}

static void test_preflight_refused(void **state)
{
    (void)state;
    eg_cors_policy_t *p = api_policy();
    assert_denied(preflight(p, "https://evil.test", "GET", NULL), "origin not allowed");
    assert_denied(preflight(p, "", "GET", NULL), "origin not allowed");
    assert_denied(preflight(p, APP, "PUT", NULL), "method not allowed");
    assert_denied(preflight(p, APP, "PATCH", NULL), "method not allowed");
    assert_denied(preflight(p, APP, "delete", NULL), "method not allowed"); /* case-sensitive */
    assert_denied(preflight(p, APP, "PROPFIND", NULL), "method not allowed");
    assert_denied(preflight(p, APP, "TRACE", NULL), "method not allowed");
    assert_denied(preflight(p, APP, "", NULL), "invalid Access-Control-Request-Method");
    assert_denied(preflight(p, APP, "GET\r\nX: y", NULL), "invalid Access-Control-Request-Method");
    assert_denied(preflight(p, APP, "GET", "content-type, x-other"), "header not allowed");
    assert_denied(preflight(p, APP, "GET", "authorization"), "header not allowed");
    assert_denied(preflight(p, APP, "GET", "content-type\r\nSet-Cookie: a=b"),
                  "invalid Access-Control-Request-Headers");
    assert_denied(preflight(p, APP, "GET", "content type"),
                  "invalid Access-Control-Request-Headers");
    assert_denied(preflight(p, APP, "GET", "x-api-key;"), "invalid Access-Control-Request-Headers");
    char big[EG_CORS_REQUEST_HEADERS_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_denied(preflight(p, APP, "GET", big), "Access-Control-Request-Headers too long");

    /* not a preflight: no Origin, or no Access-Control-Request-Method */
    const pf_t *r = preflight(p, APP, NULL, "content-type");
    assert_int_equal(r->verdict, EG_CORS_NOT_PREFLIGHT);
    assert_string_equal(r->out, "");
    assert_null(r->reason);
    r = preflight(p, NULL, "GET", NULL);
    assert_int_equal(r->verdict, EG_CORS_NOT_PREFLIGHT);
    assert_string_equal(r->out, "");
    eg_cors_policy_free(p);
}

static void test_preflight_any_header(void **state)
{
    (void)state;
    const char *o[] = {APP};
    const char *h[] = {"*"};
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = 1;
    s.headers = h;
    s.n_headers = 1;
    s.methods = EG_M_PATCH;
    s.max_age = -1;
    eg_cors_policy_t *p = build(&s);
    /* the asked names are echoed (a literal "*" would not cover Authorization) */
    const pf_t *r = preflight(p, APP, "PATCH", "authorization,x-custom ,  idempotency-key");
    assert_int_equal(r->verdict, EG_CORS_ALLOWED);
    assert_string_equal(r->out,
                        "Access-Control-Allow-Origin: https://app.example.com\r\n"
                        "Access-Control-Allow-Methods: PATCH\r\n"
                        "Access-Control-Allow-Headers: authorization, x-custom, idempotency-key\r\n"
                        "Vary: Origin\r\n");
    r = preflight(p, APP, "PATCH", NULL);
    assert_string_equal(r->out, "Access-Control-Allow-Origin: https://app.example.com\r\n"
                                "Access-Control-Allow-Methods: PATCH\r\n"
                                "Vary: Origin\r\n");
    r = preflight(p, APP, "PATCH", " , ");
    assert_string_equal(r->out, "Access-Control-Allow-Origin: https://app.example.com\r\n"
                                "Access-Control-Allow-Methods: PATCH\r\n"
                                "Vary: Origin\r\n");
    assert_denied(preflight(p, APP, "PATCH", "a\nb"), "invalid Access-Control-Request-Headers");
    assert_denied(preflight(p, APP, "PATCH", "a:b"), "invalid Access-Control-Request-Headers");
    eg_cors_policy_free(p);
}

static void test_max_age(void **state)
{
    (void)state;
    const char *o[] = {APP};
    static const struct {
        long max_age;
        const char *line;
    } cases[] = {{-1, ""},
                 {0, "Access-Control-Max-Age: 0\r\n"},
                 {86400, "Access-Control-Max-Age: 86400\r\n"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eg_cors_spec_t s;
        eg_cors_spec_init(&s);
        assert_int_equal(s.max_age, 600);
        s.origins = o;
        s.n_origins = 1;
        s.methods = EG_M_GET;
        s.max_age = cases[i].max_age;
        eg_cors_policy_t *p = build(&s);
        char want[512];
        snprintf(want, sizeof(want),
                 "Access-Control-Allow-Origin: https://app.example.com\r\n"
                 "Access-Control-Allow-Methods: GET\r\n"
                 "Access-Control-Allow-Headers: Authorization, Content-Type, Idempotency-Key, "
                 "X-API-Key, X-Request-ID, traceparent, tracestate\r\n"
                 "%sVary: Origin\r\n",
                 cases[i].line);
        assert_string_equal(preflight(p, APP, "GET", NULL)->out, want);
        eg_cors_policy_free(p);
    }
}

static void test_expose(void **state)
{
    (void)state;
    const char *o[] = {APP};
    const char *e[] = {"X-Total-Count", "x-request-id", "ETag"};
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = 1;
    s.expose = e;
    s.n_expose = 3;
    eg_cors_policy_t *p = build(&s);
    assert_string_equal(resp(p, APP),
                        "Access-Control-Allow-Origin: https://app.example.com\r\n"
                        "Access-Control-Expose-Headers: X-Request-ID, X-Error-Code, Retry-After, "
                        "RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, "
                        "X-RateLimit-Reset, Idempotent-Replayed, X-Total-Count, ETag\r\n"
                        "Vary: Origin\r\n");
    eg_cors_policy_free(p);

    const char *all[] = {"*"};
    s.expose = all;
    s.n_expose = 1;
    p = build(&s);
    assert_string_equal(resp(p, APP), "Access-Control-Allow-Origin: https://app.example.com\r\n"
                                      "Access-Control-Expose-Headers: *\r\n"
                                      "Vary: Origin\r\n");
    eg_cors_policy_free(p);
}

/* Nothing from a bad Origin reaches the output, whatever the policy. */
static void test_hostile_origin(void **state)
{
    (void)state;
    const char *o[] = {"*", APP};
    eg_cors_policy_t *p = with_origins(o, 2, 0);
    static const char *bad[] = {APP "\r\nSet-Cookie: a=b",
                                APP "\n",
                                APP "\r",
                                "https://app.example.com\t",
                                " https://app.example.com",
                                "https://app.example.com ",
                                "https://app\x01.example.com",
                                "https://app.example.com\x7f",
                                "https://app.ex\xc3\xa9mple.com",
                                "https://app.example.com,https://b.test",
                                "https://app.example.com;x",
                                "https://app.example.com?x",
                                "https://app.example.com#x",
                                "https://[::1",
                                "https://[zz]",
                                "1https://a.test",
                                "https:/app.example.com",
                                "https//app.example.com"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (eg_cors_origin_allowed(p, bad[i], strlen(bad[i]))) fail_msg("allowed bad[%zu]", i);
        assert_string_equal(resp(p, bad[i]), "Vary: Origin\r\n");
        assert_denied(preflight(p, bad[i], "GET", NULL), "origin not allowed");
    }
    /* a NUL inside the value */
    assert_false(eg_cors_origin_allowed(p, APP "\0x", sizeof(APP) + 1));
    /* over EG_CORS_ORIGIN_MAX, even if well formed */
    char longo[EG_CORS_ORIGIN_MAX + 2];
    memcpy(longo, "https://", 8);
    memset(longo + 8, 'a', sizeof(longo) - 9);
    longo[sizeof(longo) - 1] = '\0';
    assert_int_equal(strlen(longo), EG_CORS_ORIGIN_MAX + 1);
    assert_false(eg_cors_origin_allowed(p, longo, strlen(longo)));
    longo[EG_CORS_ORIGIN_MAX] = '\0';
    assert_true(eg_cors_origin_allowed(p, longo, strlen(longo)));
    eg_cors_policy_free(p);
}

static void expect_refused(const eg_cors_spec_t *s, const char *want)
{
    char err[256] = "";
    eg_cors_policy_t *p = (eg_cors_policy_t *)(uintptr_t)1;
    assert_int_equal(eg_cors_policy_new(s, &p, err, sizeof(err)), EG_EINVAL);
    assert_ptr_equal(p, (eg_cors_policy_t *)(uintptr_t)1);
    assert_string_equal(err, want);
    char err2[256] = "";
    assert_int_equal(eg_cors_spec_check(s, err2, sizeof(err2)), EG_EINVAL);
    assert_string_equal(err2, want);
}

static void refuse_origin(const char *origin, const char *want)
{
    const char *o[] = {APP, origin};
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = 2;
    expect_refused(&s, want);
}

static void test_validation(void **state)
{
    (void)state;
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    expect_refused(&s, "origins: list the origins allowed, as in [\"https://app.example.com\"], or "
                       "\"*\" for any");

    refuse_origin("https://app.example.com/",
                  "origins[1] 'https://app.example.com/': an origin has no path; write "
                  "'https://app.example.com'");
    refuse_origin("https://a.test:8443/x/y",
                  "origins[1] 'https://a.test:8443/x/y': an origin has no path; write "
                  "'https://a.test:8443'");
    refuse_origin("app.example.com",
                  "origins[1] 'app.example.com': not an origin: write scheme://host[:port]");
    refuse_origin("", "origins[1]: empty");
    refuse_origin("https://*.com", "origins[1] 'https://*.com': a wildcard over a top-level domain "
                                   "allows every site under it; name your domain, as in "
                                   "https://*.example.com");
    refuse_origin("https://app*.example.com",
                  "origins[1] 'https://app*.example.com': a wildcard is only allowed as the whole "
                  "first label, as in https://*.example.com");
    refuse_origin("https://*", "origins[1] 'https://*': a wildcard is only allowed as the whole "
                               "first label, as in https://*.example.com");
    refuse_origin("https://a.*.example.com",
                  "origins[1] 'https://a.*.example.com': a wildcard is only allowed as the whole "
                  "first label, as in https://*.example.com");
    refuse_origin("*.example.com",
                  "origins[1] '*.example.com': not an origin: write scheme://host[:port]");
    refuse_origin("https://a.test:70000",
                  "origins[1] 'https://a.test:70000': the port must be a number from 0 to 65535");
    refuse_origin("https://u@a.test", "origins[1] 'https://u@a.test': an origin has no user name");
    refuse_origin("https://a b.test",
                  "origins[1] 'https://a b.test': invalid character in the host");
    refuse_origin("https://", "origins[1] 'https://': no host");

    const char *star[] = {"*"};
    s.origins = star;
    s.n_origins = 1;
    s.credentials = 1;
    expect_refused(&s, "credentials: true cannot go with origins \"*\": browsers refuse "
                       "Access-Control-Allow-Origin: * on credentialed requests, and echoing "
                       "every origin would let any site read your users' responses; list the "
                       "origins");

    const char *app[] = {APP};
    s.origins = app;
    const char *e[] = {"*"};
    s.expose = e;
    s.n_expose = 1;
    expect_refused(&s, "expose: \"*\" means a literal header named '*' on credentialed requests; "
                       "list the headers to expose");

    eg_cors_spec_init(&s);
    s.origins = app;
    s.n_origins = 1;
    s.methods = EG_M_GET | EG_M_TRACE;
    expect_refused(&s, "methods: only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS (browsers "
                       "never send TRACE or CONNECT)");
    s.methods = EG_M_OTHER;
    expect_refused(&s, "methods: only GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS (browsers "
                       "never send TRACE or CONNECT)");

    eg_cors_spec_init(&s);
    s.origins = app;
    s.n_origins = 1;
    const char *h[] = {"Content-Type", "X Bad"};
    s.headers = h;
    s.n_headers = 2;
    expect_refused(&s, "headers[1] 'X Bad': not a header name");
    s.n_headers = 0;
    const char *x[] = {"X-Ok", "X-Bad\r\nSet-Cookie: a"};
    s.expose = x;
    s.n_expose = 2;
    expect_refused(&s, "expose[1] 'X-Bad??Set-Cookie: a': not a header name");
    s.n_expose = 0;
    s.max_age = 86401;
    expect_refused(&s, "max_age: from 0 to 86400 seconds (browsers cap it: Chromium at 7200, "
                       "Firefox at 86400)");
    s.max_age = -2;
    expect_refused(&s, "max_age: from 0 to 86400 seconds (browsers cap it: Chromium at 7200, "
                       "Firefox at 86400)");

    /* accepted: a mix of forms */
    const char *mix[] = {"https://*.example.com:8443", "null", "chrome-extension://abcdef",
                         "http://127.0.0.1:5173", "https://[2001:db8::1]"};
    s.origins = mix;
    s.n_origins = 5;
    s.max_age = 0;
    char err[128] = "x";
    assert_int_equal(eg_cors_spec_check(&s, err, sizeof(err)), EG_OK);
    eg_cors_policy_t *p = build(&s);
    assert_true(eg_cors_origin_allowed(p, "chrome-extension://abcdef", 25));
    assert_true(eg_cors_origin_allowed(p, "http://127.0.0.1:5173", 21));
    assert_true(eg_cors_origin_allowed(p, "https://[2001:DB8::1]", 21));
    assert_true(eg_cors_origin_allowed(p, "https://x.example.com:8443", 26));
    eg_cors_policy_free(p);
}

/* The buffer contract: too small is refused before anything is written;
 * the largest request fits in eg_cors_headers_max. */
static void test_buffer(void **state)
{
    (void)state;
    const char *o[] = {"https://*.example.com"};
    const char *h[] = {"*"};
    eg_cors_spec_t s;
    eg_cors_spec_init(&s);
    s.origins = o;
    s.n_origins = 1;
    s.headers = h;
    s.n_headers = 1;
    s.credentials = 1;
    eg_cors_policy_t *p = build(&s);
    size_t max = eg_cors_headers_max(p);
    char *buf = malloc(max);
    assert_non_null(buf);
    memset(buf, 'x', max);
    size_t len = 7;
    eg_cors_verdict_t v = EG_CORS_ALLOWED;
    assert_int_equal(eg_cors_response_headers(p, APP, strlen(APP), buf, max - 1, &len), EG_ERANGE);
    assert_int_equal(
        eg_cors_preflight(p, APP, strlen(APP), "GET", 3, NULL, 0, buf, max - 1, &len, &v, NULL),
        EG_ERANGE);
    assert_int_equal(len, 7);
    assert_int_equal(v, EG_CORS_ALLOWED);
    assert_int_equal(buf[0], 'x');

    /* the longest origin and the longest list of one-letter names */
    char origin[EG_CORS_ORIGIN_MAX + 1];
    memcpy(origin, "https://", 8);
    memset(origin + 8, 'a', EG_CORS_ORIGIN_MAX - 8 - 12);
    memcpy(origin + EG_CORS_ORIGIN_MAX - 12, ".example.com", 12);
    origin[EG_CORS_ORIGIN_MAX] = '\0';
    char list[EG_CORS_REQUEST_HEADERS_MAX + 1];
    for (size_t i = 0; i < EG_CORS_REQUEST_HEADERS_MAX; i++)
        list[i] = i % 2 ? ',' : 'a';
    list[EG_CORS_REQUEST_HEADERS_MAX] = '\0';
    assert_int_equal(eg_cors_preflight(p, origin, strlen(origin), "DELETE", 6, list, strlen(list),
                                       buf, max, &len, &v, NULL),
                     EG_OK);
    assert_int_equal(v, EG_CORS_ALLOWED);
    assert_int_equal(len, strlen(buf));
    assert_true(len < max);
    /* 512 names "a" joined by ", " */
    const char *ah = strstr(buf, "Access-Control-Allow-Headers: ");
    assert_non_null(ah);
    assert_int_equal(strcspn(ah, "\r") - strlen("Access-Control-Allow-Headers: "), 512 + 511 * 2);
    assert_non_null(strstr(buf, "\r\nVary: Origin\r\n"));
    free(buf);
    eg_cors_policy_free(p);
}

static void test_is_cors_header(void **state)
{
    (void)state;
    assert_true(eg_cors_is_cors_header("Access-Control-Allow-Origin", 27));
    assert_true(eg_cors_is_cors_header("access-control-expose-headers", 29));
    assert_true(eg_cors_is_cors_header("ACCESS-CONTROL-MAX-AGE", 22));
    assert_false(eg_cors_is_cors_header("Access-Control-", 15));
    assert_false(eg_cors_is_cors_header("Vary", 4));
    assert_false(eg_cors_is_cors_header("X-Access-Control-Allow-Origin", 29));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_origin),
        cmocka_unit_test(test_case_and_default_port),
        cmocka_unit_test(test_wildcard_subdomain),
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_null_origin),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_preflight_allowed),
        cmocka_unit_test(test_preflight_refused),
        cmocka_unit_test(test_preflight_any_header),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_expose),
        cmocka_unit_test(test_hostile_origin),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_buffer),
        cmocka_unit_test(test_is_cors_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

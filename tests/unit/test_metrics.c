/* test_metrics.c - counter blocks, the fold across generations, and the
 * exposition writer (src/metrics/metrics.c). */
#include "testutil.h"

#include <math.h>

#include "config.h"
#include "errgate/catalog.h"
#include "metrics.h"

static const char *yaml =
    "listen: 127.0.0.1:1\n"
    "upstreams:\n  up: { servers: [\"127.0.0.1:2\", \"127.0.0.1:3\"] }\n"
    "routes:\n"
    "  - { path: /a/, upstream: up, rate_limit: { limit: 1, window: 1m, name: r1 } }\n"
    "  - { path: /b\"q, upstream: up }\n";

static eg_config_t *load(const char *text)
{
    eg_config_t *cfg = NULL;
    char err[EG_CONFIG_ERRLEN];
    int rc = eg_config_parse(text, strlen(text), "c.yaml", &cfg, err, sizeof(err));
    if (rc != EG_OK) fail_msg("%s", err);
    return cfg;
}

static double val(eg_mx_snap_t *s, const char *name, const char *a, const char *b, const char *c,
                  size_t n)
{
    const char *l[3] = {a, b, c};
    return eg_mx_snap_value(s, name, l, n);
}

static void test_blocks_are_aligned_and_apart(void **st)
{
    (void)st;
    eg_config_t *cfg = load(yaml);
    eg_metrics_t *m;
    const double b[] = {0.01, 0.1};
    assert_int_equal(eg_metrics_new(3, b, 2, &m), EG_OK);
    eg_metrics_gen_t *g;
    assert_int_equal(eg_metrics_gen_new(m, cfg, &g), EG_OK);
    assert_int_equal(g->stride % 8, 0); /* whole 64-byte lines */
    for (int w = 0; w < 3; w++)
        assert_int_equal((uintptr_t)eg_mx_block(g, w) % 64, 0);
    eg_metrics_gen_free(g);
    eg_metrics_free(m);
    eg_config_free(cfg);
}

static void test_workers_sum_and_survive_a_generation(void **st)
{
    (void)st;
    eg_config_t *c1 = load(yaml), *c2 = load(yaml);
    eg_metrics_t *m;
    const double b[] = {0.01, 0.1};
    assert_int_equal(eg_metrics_new(2, b, 2, &m), EG_OK);
    eg_metrics_gen_t *g1, *g2;
    assert_int_equal(eg_metrics_gen_new(m, c1, &g1), EG_OK);
    eg_mx_request_t ok = {.route = 0,
                          .method_bit = EG_M_GET,
                          .status = 200,
                          .dur_ns = 5000000,
                          .up_ns = 4000000}; /* 5 ms, upstream 4 ms */
    eg_mx_request_t nf = {.route = -1,
                          .method_bit = EG_M_POST,
                          .status = 404,
                          .code = "NOT_FOUND",
                          .dur_ns = 50000000};
    eg_mx_request_t camel = {.route = 1,
                             .method_bit = EG_M_GET,
                             .status = 429,
                             .code = "rateLimitExceeded",
                             .dur_ns = 200000000};
    eg_mx_request_t odd = {.route = 1,
                           .method_bit = EG_M_OTHER,
                           .status = 418,
                           .code = "no_such_code_here",
                           .dur_ns = 1};
    /* the answer's catalog entry, when it knew it, is used as it is (the spelling is not looked up)
     */
    eg_mx_request_t known = {.route = 1,
                             .method_bit = EG_M_GET,
                             .status = 404,
                             .code = "whatever-spelling",
                             .entry = eg_catalog_find(c2->catalog, "not_found"),
                             .dur_ns = 1};
    eg_metrics_request(g1, 0, &ok);
    eg_metrics_request(g1, 1, &ok);
    eg_metrics_request(g1, 1, &nf);
    eg_metrics_refusal(g1, 0, &c1->routes[0], EG_MX_REF_RATE, &c1->routes[0].limits[0], NULL);
    eg_metrics_upstream_failure(g1, 1, 0, 1, EG_MX_UP_TIMEOUT);
    eg_metrics_gen_free(g1); /* folded into the archive by label values */
    assert_int_equal(eg_metrics_gen_new(m, c2, &g2), EG_OK);
    eg_metrics_request(g2, 0, &ok);
    eg_metrics_request(g2, 0, &camel);
    eg_metrics_request(g2, 1, &odd);
    eg_metrics_request(g2, 1, &known);
    eg_mx_snap_t *s = eg_metrics_snapshot(m);
    assert_non_null(s);
    assert_true(val(s, "errgate_requests_total", "/a/", "GET", "200", 3) == 3);
    assert_true(val(s, "errgate_requests_total", "(none)", "POST", "404", 3) == 1);
    assert_true(val(s, "errgate_requests_total", "/b\"q", "GET", "429", 3) == 1);
    assert_true(val(s, "errgate_requests_total", "/b\"q", "other", "4xx", 3) == 1);
    assert_true(val(s, "errgate_errors_total", "(none)", "not_found", NULL, 2) == 1);
    assert_true(val(s, "errgate_errors_total", "/b\"q", "rate_limit_exceeded", NULL, 2) == 1);
    assert_true(val(s, "errgate_errors_total", "/b\"q", "other", NULL, 2) == 1);
    assert_true(val(s, "errgate_errors_total", "/b\"q", "not_found", NULL, 2) == 1);
    assert_true(val(s, "errgate_request_duration_seconds_count", "/a/", NULL, NULL, 1) == 3);
    assert_true(fabs(val(s, "errgate_request_duration_seconds_sum", "/a/", NULL, NULL, 1) - 0.015) <
                1e-9);
    assert_true(val(s, "errgate_upstream_duration_seconds_count", "/a/", NULL, NULL, 1) == 3);
    assert_true(val(s, "errgate_traffic_refusals_total", "/a/", "rate_limit", "r1", 3) == 1);
    assert_true(val(s, "errgate_upstream_failures_total", "up", "127.0.0.1:3", "timeout", 3) == 1);
    assert_true(val(s, "errgate_requests_total", "/a/", "GET", "500", 3) == -1);

    /* the text exposition: HELP/TYPE once, escaped labels, cumulative buckets */
    size_t len = 0;
    char *t = eg_mx_snap_render(s, EG_MX_TEXT, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_non_null(strstr(t, "# TYPE errgate_requests_total counter\n"));
    assert_non_null(
        strstr(t, "errgate_requests_total{route=\"/a/\",method=\"GET\",status=\"200\"} 3\n"));
    assert_non_null(
        strstr(t, "errgate_requests_total{route=\"/b\\\"q\",method=\"GET\",status=\"429\"} 1\n"));
    assert_non_null(
        strstr(t, "errgate_request_duration_seconds_bucket{route=\"/a/\",le=\"0.01\"} 3\n"));
    assert_non_null(
        strstr(t, "errgate_request_duration_seconds_bucket{route=\"(none)\",le=\"0.01\"} 0\n"));
    assert_non_null(
        strstr(t, "errgate_request_duration_seconds_bucket{route=\"(none)\",le=\"0.1\"} 1\n"));
    assert_non_null(
        strstr(t, "errgate_request_duration_seconds_bucket{route=\"(none)\",le=\"+Inf\"} 1\n"));
    assert_null(strstr(t, "# EOF"));
    char *p = strstr(t, "# HELP errgate_requests_total");
    assert_non_null(p);
    assert_null(strstr(p + 1, "# HELP errgate_requests_total"));
    free(t);
    t = eg_mx_snap_render(s, EG_MX_OPENMETRICS, &len);
    assert_non_null(strstr(t, "# TYPE errgate_requests counter\n"));
    assert_non_null(strstr(t, "le=\"0.01\""));
    assert_int_equal(strcmp(t + len - 6, "# EOF\n"), 0);
    free(t);
    json_t *j = eg_mx_snap_json(s);
    json_t *h = json_object_get(json_object_get(j, "metrics"), "errgate_request_duration_seconds");
    assert_int_equal(json_array_size(json_object_get(h, "buckets")), 2);
    json_decref(j);
    eg_mx_snap_free(s);
    eg_metrics_gen_free(g2);
    eg_metrics_free(m);
    eg_config_free(c1);
    eg_config_free(c2);
}

static void test_status_and_method_classes(void **st)
{
    (void)st;
    assert_string_equal(eg_mx_status_name(eg_mx_status(200)), "200");
    assert_string_equal(eg_mx_status_name(eg_mx_status(0)), "499");
    assert_string_equal(eg_mx_status_name(eg_mx_status(299)), "2xx");
    assert_string_equal(eg_mx_status_name(eg_mx_status(599)), "5xx");
    assert_string_equal(eg_mx_status_name(eg_mx_status(429)), "429");
    /* every status maps to its own name or its class, never another code */
    for (int sc = 100; sc < 600; sc++) {
        const char *n = eg_mx_status_name(eg_mx_status(sc));
        char own[4], cls[4];
        snprintf(own, sizeof(own), "%d", sc);
        snprintf(cls, sizeof(cls), "%dxx", sc / 100);
        if (strcmp(n, own) != 0 && strcmp(n, cls) != 0) fail_msg("%d counted as %s", sc, n);
    }
    assert_int_equal(eg_mx_method(EG_M_GET), 0);
    assert_int_equal(eg_mx_method(EG_M_OPTIONS), 6);
    assert_int_equal(eg_mx_method(EG_M_TRACE), 7);
    assert_int_equal(eg_mx_negotiate("application/openmetrics-text;version=1.0.0", 42),
                     EG_MX_OPENMETRICS);
    assert_int_equal(eg_mx_negotiate("text/plain", 10), EG_MX_TEXT);
}

/* Workers count while a scrape sums: every snapshot sees each worker's
 * count somewhere between its last two values (never torn, never going
 * back), and the last one sees them all. */
#include <pthread.h>

#define RACE_WORKERS 3
#define RACE_N       200000

typedef struct {
    eg_metrics_gen_t *g;
    int w;
} racer_t;

static void *race_worker(void *arg)
{
    racer_t *r = arg;
    eg_mx_request_t q = {.route = r->w, .method_bit = EG_M_GET, .status = 200, .dur_ns = 1000};
    for (int i = 0; i < RACE_N; i++)
        eg_metrics_request(r->g, r->w, &q);
    return NULL;
}

static void test_scrapes_while_workers_count(void **st)
{
    (void)st;
    eg_config_t *cfg =
        load("listen: 127.0.0.1:1\nupstreams:\n  up: { servers: [\"127.0.0.1:2\"] }\n"
             "routes:\n  - { path: /0/, upstream: up }\n  - { path: /1/, upstream: up }\n"
             "  - { path: /2/, upstream: up }\n");
    eg_metrics_t *m;
    const double b[] = {0.01};
    assert_int_equal(eg_metrics_new(RACE_WORKERS, b, 1, &m), EG_OK);
    eg_metrics_gen_t *g;
    assert_int_equal(eg_metrics_gen_new(m, cfg, &g), EG_OK);
    pthread_t t[RACE_WORKERS];
    racer_t r[RACE_WORKERS];
    for (int i = 0; i < RACE_WORKERS; i++) {
        r[i] = (racer_t){g, i};
        assert_int_equal(pthread_create(&t[i], NULL, race_worker, &r[i]), 0);
    }
    const char *routes[RACE_WORKERS] = {"/0/", "/1/", "/2/"};
    double last[RACE_WORKERS] = {0};
    for (int k = 0; k < 200; k++) {
        eg_mx_snap_t *s = eg_metrics_snapshot(m);
        assert_non_null(s);
        for (int i = 0; i < RACE_WORKERS; i++) {
            double v = val(s, "errgate_requests_total", routes[i], "GET", "200", 3);
            if (v < 0) v = 0; /* not counted yet */
            assert_true(v >= last[i] && v <= RACE_N);
            last[i] = v;
        }
        eg_mx_snap_free(s);
    }
    for (int i = 0; i < RACE_WORKERS; i++)
        pthread_join(t[i], NULL);
    eg_mx_snap_t *s = eg_metrics_snapshot(m);
    for (int i = 0; i < RACE_WORKERS; i++) {
        assert_true(val(s, "errgate_requests_total", routes[i], "GET", "200", 3) == RACE_N);
        assert_true(val(s, "errgate_request_duration_seconds_count", routes[i], NULL, NULL, 1) ==
                    RACE_N);
    }
    eg_mx_snap_free(s);
    eg_metrics_gen_free(g);
    eg_metrics_free(m);
    eg_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blocks_are_aligned_and_apart),
        cmocka_unit_test(test_workers_sum_and_survive_a_generation),
        cmocka_unit_test(test_status_and_method_classes),
        cmocka_unit_test(test_scrapes_while_workers_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_monitor.c - sliding windows, rules, the alert state machine and its
 * hysteresis, with the clock passed in (lib/monitor.c). */
#include "testutil.h"

#include "errgate/monitor.h"

#define T0 1800000000000ull /* a Unix time in ms, on a second boundary */

typedef struct {
    int n;
    eg_alert_state_t states[16];
    char names[16][64];
    long routes[16];
    double values[16];
} events_t;

static void on_event(void *ctx, const eg_alert_t *a)
{
    events_t *e = ctx;
    if (e->n >= 16) return;
    e->states[e->n] = a->state;
    snprintf(e->names[e->n], 64, "%s", a->rule->name);
    e->routes[e->n] = a->route;
    e->values[e->n] = a->value;
    e->n++;
}

static eg_alert_rule_t rule(const char *name, const char *match, double thr, double res,
                            uint32_t minreq, uint32_t window_s, uint64_t for_ms, long route)
{
    eg_alert_rule_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "%s", name);
    snprintf(r.match_text, sizeof(r.match_text), "%s", match);
    assert_int_equal(eg_alert_match_parse(match, &r.match), EG_OK);
    r.threshold = thr;
    r.resolve = res;
    r.min_requests = minreq;
    r.window_s = window_s;
    r.for_ms = for_ms;
    r.route = route;
    r.severity = EG_ALERT_CRITICAL;
    return r;
}

static eg_monitor_t *monitor(const eg_alert_rule_t *rules, size_t n, size_t nroutes)
{
    static const char *const names[] = {"/a", "/b", "/c"};
    eg_monitor_cfg_t cfg = {rules, n, names, nroutes, 300};
    eg_monitor_t *m = NULL;
    assert_int_equal(eg_monitor_new(&cfg, &m), EG_OK);
    return m;
}

static void test_match_parse(void **state)
{
    (void)state;
    eg_alert_match_t m;
    assert_int_equal(eg_alert_match_parse("errors", &m), EG_OK);
    assert_int_equal(m.classes, (1u << 4) | (1u << 5));
    assert_int_equal(m.ncodes, 0);
    assert_int_equal(eg_alert_match_parse("5xx", &m), EG_OK);
    assert_int_equal(m.classes, 1u << 5);
    assert_int_equal(eg_alert_match_parse("401, 403", &m), EG_OK);
    assert_int_equal(m.classes, 0);
    assert_int_equal(m.ncodes, 2);
    assert_int_equal(m.codes[0], 401);
    assert_int_equal(m.codes[1], 403);
    assert_int_equal(eg_alert_match_parse("5xx,429", &m), EG_OK);
    assert_int_equal(m.classes, 1u << 5);
    assert_int_equal(m.codes[0], 429);
    const char *bad[] = {"", "6xx", "600", "099", "4xx,", "40", "errors 5xx", "abc", "4x4", NULL};
    for (int i = 0; bad[i]; i++)
        if (eg_alert_match_parse(bad[i], &m) != EG_EINVAL) fail_msg("'%s' accepted", bad[i]);
}

static void test_defaults_are_the_seed(void **state)
{
    (void)state;
    eg_alert_rule_t r[8];
    assert_int_equal(eg_alert_rules_default(r, 8), 4);
    assert_string_equal(r[0].name, "error_rate");
    assert_true(r[0].threshold == 0.05);
    assert_int_equal(r[0].match.classes, (1u << 4) | (1u << 5));
    assert_int_equal(r[0].severity, EG_ALERT_WARNING);
    assert_string_equal(r[1].name, "server_errors");
    assert_true(r[1].threshold == 0.01);
    assert_int_equal(r[1].severity, EG_ALERT_CRITICAL);
    assert_string_equal(r[2].name, "rate_limited");
    assert_true(r[2].threshold == 0.10);
    assert_int_equal(r[2].match.codes[0], 429);
    assert_string_equal(r[3].name, "auth_failures");
    assert_true(r[3].threshold == 0.20);
    assert_int_equal(r[3].match.ncodes, 2);
    for (int i = 0; i < 4; i++) {
        assert_true(r[i].resolve < r[i].threshold);
        assert_int_equal(r[i].window_s, 60);
        assert_int_equal(r[i].route, EG_ALERT_EACH);
    }
    char err[200];
    assert_int_equal(eg_alert_rules_check(r, 4, 0, err, sizeof(err)), EG_OK);
}

static void test_rules_check(void **state)
{
    (void)state;
    char err[200];
    eg_alert_rule_t r[2] = {rule("a", "5xx", 0.1, 0.05, 1, 60, 0, EG_ALERT_ALL),
                            rule("a", "5xx", 0.1, 0.05, 1, 60, 0, EG_ALERT_ALL)};
    assert_int_equal(eg_alert_rules_check(r, 2, 0, err, sizeof(err)), EG_EINVAL);
    assert_non_null(strstr(err, "no other rule"));
    r[1] = rule("b", "5xx", 0.1, 0.2, 1, 60, 0, EG_ALERT_ALL);
    assert_int_equal(eg_alert_rules_check(r, 2, 0, err, sizeof(err)), EG_EINVAL);
    assert_non_null(strstr(err, "resolve"));
    r[1] = rule("Bad-Name", "5xx", 0.1, 0.05, 1, 60, 0, EG_ALERT_ALL);
    assert_int_equal(eg_alert_rules_check(r, 2, 0, err, sizeof(err)), EG_EINVAL);
    r[1] = rule("b", "5xx", 0.1, 0.05, 1, 60, 0, 3);
    assert_int_equal(eg_alert_rules_check(r, 2, 3, err, sizeof(err)), EG_EINVAL);
    assert_int_equal(eg_alert_rules_check(r, 2, 4, err, sizeof(err)), EG_OK);
    r[1] = rule("b", "5xx", 0.1, 0.05, 1, 3601, 0, EG_ALERT_ALL);
    assert_int_equal(eg_alert_rules_check(r, 2, 0, err, sizeof(err)), EG_EINVAL);
}

/* The window covers exactly its last window_s seconds, per route and overall. */
static void test_window_slides(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("x", "429", 0.5, 0.25, 1, 60, 0, EG_ALERT_ALL);
    eg_monitor_t *m = monitor(&r, 1, 2);
    size_t ns = eg_monitor_nslots(m);
    assert_int_equal(ns, 7);
    assert_int_equal(eg_monitor_slot_of(m, 429), 6);
    assert_int_equal(eg_monitor_slot_of(m, 500), 0);
    assert_int_equal(eg_monitor_slot_status(m, 6), 429);
    uint64_t w[8];
    for (int s = 0; s < 120; s++) {
        eg_monitor_add_status(m, 0, 200, 10, T0 + (uint64_t)s * 1000);
        eg_monitor_add_status(m, 1, 503, 1, T0 + (uint64_t)s * 1000 + 500);
    }
    eg_monitor_add_status(m, 2, 404, 7, T0 + 119000); /* no route */
    eg_monitor_add_status(m, 1, 429, 3, T0 + 119999);
    /* the 60 s ending with second 119: seconds 60..119 */
    eg_monitor_window(m, 0, 60, T0 + 119500, w);
    assert_int_equal(w[0], 600);
    assert_int_equal(w[2], 600);
    eg_monitor_window(m, 1, 60, T0 + 119500, w);
    assert_int_equal(w[0], 63);
    assert_int_equal(w[5], 60);
    assert_int_equal(w[4], 3);
    assert_int_equal(w[6], 3);
    eg_monitor_window(m, EG_ALERT_ALL, 60, T0 + 119500, w);
    assert_int_equal(w[0], 600 + 63 + 7);
    assert_int_equal(w[4], 10);
    eg_monitor_window(m, EG_ALERT_ALL, 1, T0 + 119000, w);
    assert_int_equal(w[0], 10 + 1 + 7 + 3);
    /* 30 s later with no traffic: half the window has gone */
    eg_monitor_window(m, 0, 60, T0 + 149000, w);
    assert_int_equal(w[0], 300);
    /* 5 min window: the 120 s there were */
    eg_monitor_window(m, 0, 300, T0 + 149000, w);
    assert_int_equal(w[0], 1200);
    /* much later: all gone, though the ring's buckets were never swept */
    eg_monitor_window(m, EG_ALERT_ALL, 300, T0 + 1000000, w);
    assert_int_equal(w[0], 0);
    /* a count for a second the ring no longer holds is dropped */
    eg_monitor_add_status(m, 0, 200, 5, T0 + 1000000);
    eg_monitor_add_status(m, 0, 200, 5, T0 + 1000000 - 300000); /* its bucket holds 1000 */
    eg_monitor_window(m, 0, 300, T0 + 1000000, w);
    assert_int_equal(w[0], 5);
    eg_monitor_free(m);
}

/* inactive -> pending -> firing after `for`, then resolved only below the
 * lower threshold: a rate between the two keeps it firing (no flapping). */
static void test_pending_firing_hysteresis_resolved(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("server_errors", "5xx", 0.10, 0.05, 20, 10, 3000, EG_ALERT_ALL);
    eg_monitor_t *m = monitor(&r, 1, 1);
    events_t ev = {0};
    const eg_alert_t *alerts;
    assert_int_equal(eg_monitor_alerts(m, &alerts), 1);
    uint64_t t = T0;
    /* healthy: 100 a second, no errors */
    for (int s = 0; s < 10; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 200, 100, t);
        assert_int_equal(eg_monitor_eval(m, t, on_event, &ev), 0);
    }
    assert_int_equal(alerts[0].state, EG_ALERT_INACTIVE);
    /* 80% 5xx: pending at once (24% of the window), firing 3 s later */
    for (int s = 0; s < 3; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 200, 70, t);
        eg_monitor_add_status(m, 0, 502, 300, t);
        eg_monitor_eval(m, t, on_event, &ev);
    }
    assert_int_equal(ev.n, 0);
    assert_int_equal(alerts[0].state, EG_ALERT_PENDING);
    eg_monitor_add_status(m, 0, 200, 70, t);
    eg_monitor_add_status(m, 0, 502, 300, t);
    assert_int_equal(eg_monitor_eval(m, t, on_event, &ev), 1);
    assert_int_equal(ev.states[0], EG_ALERT_FIRING);
    assert_string_equal(ev.names[0], "server_errors");
    assert_int_equal(ev.routes[0], EG_ALERT_ALL);
    assert_int_equal(alerts[0].fired_at_ms, t);
    assert_int_equal(alerts[0].active_at_ms, t - 3000);
    t += 1000;
    /* 7% 5xx: below the threshold, above the resolve threshold: still firing */
    for (int s = 0; s < 30; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 200, 93, t);
        eg_monitor_add_status(m, 0, 500, 7, t);
        assert_int_equal(eg_monitor_eval(m, t, on_event, &ev), 0);
    }
    assert_int_equal(alerts[0].state, EG_ALERT_FIRING);
    assert_true(alerts[0].value > 0.069 && alerts[0].value < 0.071);
    /* 4%: the window mixes 7% and 4% seconds; it resolves on the first
     * evaluation under 5% (the 7th second: 6.7% - 0.3% a second) */
    for (int s = 0;; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 200, 96, t);
        eg_monitor_add_status(m, 0, 500, 4, t);
        size_t n = eg_monitor_eval(m, t, on_event, &ev);
        if (s < 6) {
            assert_int_equal(n, 0);
            continue;
        }
        assert_int_equal(n, 1);
        break;
    }
    assert_int_equal(ev.states[1], EG_ALERT_RESOLVED);
    assert_true(ev.values[1] < 0.05 && ev.values[1] > 0.048);
    assert_int_equal(alerts[0].state, EG_ALERT_RESOLVED);
    assert_int_equal(alerts[0].resolved_at_ms, t);
    eg_monitor_free(m);
}

/* A condition shorter than `for` never fires; below min_requests nothing does. */
static void test_for_and_min_requests(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("errs", "errors", 0.05, 0.02, 50, 5, 5000, EG_ALERT_ALL);
    eg_monitor_t *m = monitor(&r, 1, 1);
    events_t ev = {0};
    const eg_alert_t *alerts;
    eg_monitor_alerts(m, &alerts);
    uint64_t t = T0;
    /* 100% errors but 5 a second: 25 in the window, under min_requests 50 */
    for (int s = 0; s < 20; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 404, 5, t);
        eg_monitor_eval(m, t, on_event, &ev);
    }
    assert_int_equal(ev.n, 0);
    assert_int_equal(alerts[0].state, EG_ALERT_INACTIVE);
    assert_int_equal(alerts[0].total, 25);
    /* a 3 s spike (for is 5 s), then healthy: pending, then back to inactive */
    for (int s = 0; s < 3; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 500, 100, t);
        eg_monitor_eval(m, t, on_event, &ev);
    }
    assert_int_equal(alerts[0].state, EG_ALERT_PENDING);
    for (int s = 0; s < 10; s++, t += 1000) {
        eg_monitor_add_status(m, 0, 200, 10000, t);
        eg_monitor_eval(m, t, on_event, &ev);
    }
    assert_int_equal(ev.n, 0);
    assert_int_equal(alerts[0].state, EG_ALERT_INACTIVE);
    eg_monitor_free(m);
}

/* for 0 fires on the first evaluation; traffic stopping resolves it. */
static void test_for_zero_and_silence_resolves(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("rl", "429", 0.10, 0.05, 10, 60, 0, EG_ALERT_ALL);
    eg_monitor_t *m = monitor(&r, 1, 1);
    events_t ev = {0};
    eg_monitor_add_status(m, 0, 429, 20, T0);
    eg_monitor_add_status(m, 0, 200, 20, T0);
    assert_int_equal(eg_monitor_eval(m, T0 + 10, on_event, &ev), 1);
    assert_int_equal(ev.states[0], EG_ALERT_FIRING);
    assert_true(ev.values[0] == 0.5);
    assert_int_equal(eg_monitor_eval(m, T0 + 59000, on_event, &ev), 0);
    assert_int_equal(eg_monitor_eval(m, T0 + 60000, on_event, &ev), 1);
    assert_int_equal(ev.states[1], EG_ALERT_RESOLVED);
    /* and fires again on the next burst */
    eg_monitor_add_status(m, 0, 429, 20, T0 + 70000);
    assert_int_equal(eg_monitor_eval(m, T0 + 70000, on_event, &ev), 1);
    assert_int_equal(ev.states[2], EG_ALERT_FIRING);
    eg_monitor_free(m);
}

/* An EG_ALERT_EACH rule is one alert a route; a route rule sees its route only. */
static void test_per_route(void **state)
{
    (void)state;
    eg_alert_rule_t r[2] = {rule("auth", "401,403", 0.20, 0.10, 10, 60, 0, EG_ALERT_EACH),
                            rule("c_5xx", "5xx", 0.01, 0.005, 10, 60, 0, 2)};
    eg_monitor_t *m = monitor(r, 2, 3);
    const eg_alert_t *alerts;
    assert_int_equal(eg_monitor_alerts(m, &alerts), 4);
    assert_string_equal(alerts[1].route_name, "/b");
    events_t ev = {0};
    eg_monitor_add_status(m, 0, 200, 100, T0);
    eg_monitor_add_status(m, 1, 401, 15, T0);
    eg_monitor_add_status(m, 1, 403, 10, T0);
    eg_monitor_add_status(m, 1, 200, 75, T0);
    eg_monitor_add_status(m, 0, 500, 50, T0); /* 5xx on /a: not /c's rule */
    eg_monitor_add_status(m, 2, 200, 100, T0);
    assert_int_equal(eg_monitor_eval(m, T0, on_event, &ev), 1);
    assert_string_equal(ev.names[0], "auth");
    assert_int_equal(ev.routes[0], 1);
    assert_true(ev.values[0] == 0.25);
    eg_monitor_add_status(m, 2, 504, 2, T0 + 1000);
    assert_int_equal(eg_monitor_eval(m, T0 + 1000, on_event, &ev), 1);
    assert_string_equal(ev.names[1], "c_5xx");
    assert_int_equal(ev.routes[1], 2);
    eg_monitor_free(m);
}

/* A rule at 0% fires on the first match and resolves only when none is left. */
static void test_zero_threshold(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("any_502", "502", 0, 0, 1, 10, 0, EG_ALERT_ALL);
    eg_monitor_t *m = monitor(&r, 1, 1);
    events_t ev = {0};
    eg_monitor_add_status(m, 0, 200, 1000, T0);
    assert_int_equal(eg_monitor_eval(m, T0, on_event, &ev), 0);
    eg_monitor_add_status(m, 0, 502, 1, T0 + 1000);
    assert_int_equal(eg_monitor_eval(m, T0 + 1000, on_event, &ev), 1);
    assert_int_equal(eg_monitor_eval(m, T0 + 10000, on_event, &ev), 0);
    assert_int_equal(eg_monitor_eval(m, T0 + 11000, on_event, &ev), 1);
    assert_int_equal(ev.states[1], EG_ALERT_RESOLVED);
    eg_monitor_free(m);
}

/* The signature is Stripe's scheme: HMAC-SHA256 over "<t>.<body>" (the
 * expected value from Python's hmac module). */
static void test_webhook_signature(void **state)
{
    (void)state;
    char sig[EG_WEBHOOK_SIG_MAX];
    const char *secret = "whsec_0123456789abcdef";
    assert_int_equal(eg_webhook_signature((const unsigned char *)secret, strlen(secret), 1800000000,
                                          "{\"a\":1}", 7, sig),
                     EG_OK);
    assert_string_equal(
        sig, "t=1800000000,v1=0cce34cc4ceb50514f7750d02eb315ceeef28c45ee42851f4611ac00df3d49fe");
}

static void test_event_bodies(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("server_errors", "5xx", 0.01, 0.005, 20, 60, 30000, EG_ALERT_EACH);
    eg_alert_t a = {.rule = &r,
                    .route = 0,
                    .route_name = "/v1/",
                    .state = EG_ALERT_FIRING,
                    .value = 0.25,
                    .total = 120,
                    .matched = 30,
                    .active_at_ms = T0 - 30000,
                    .fired_at_ms = T0 + 5};
    char *body = eg_alert_event_json(&a, "evt_1", "gw-1", T0 + 7);
    assert_non_null(body);
    json_error_t je;
    json_t *doc = json_loads(body, 0, &je);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "event")), "alert.firing");
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "evt_1");
    assert_string_equal(json_string_value(json_object_get(doc, "sent_at")),
                        "2027-01-15T08:00:00.007Z");
    json_t *al = json_object_get(doc, "alert");
    assert_string_equal(json_string_value(json_object_get(al, "name")), "server_errors");
    assert_string_equal(json_string_value(json_object_get(al, "state")), "firing");
    assert_string_equal(json_string_value(json_object_get(al, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(al, "route")), "/v1/");
    assert_true(json_real_value(json_object_get(al, "value")) == 0.25);
    assert_int_equal(json_integer_value(json_object_get(al, "requests")), 120);
    assert_int_equal(json_integer_value(json_object_get(al, "matched")), 30);
    assert_string_equal(json_string_value(json_object_get(al, "fired_at")),
                        "2027-01-15T08:00:00.005Z");
    assert_true(json_is_null(json_object_get(al, "resolved_at")));
    assert_string_equal(json_string_value(json_object_get(al, "summary")),
                        "5xx at 25% of 120 requests over 1m on /v1/ (threshold 1%)");
    json_decref(doc);
    free(body);

    a.state = EG_ALERT_RESOLVED;
    a.resolved_at_ms = T0 + 60000;
    a.route_name = NULL;
    a.route = EG_ALERT_ALL;
    body = eg_alert_event_alertmanager(&a, "gw-1", "http://127.0.0.1:8081/alerts");
    assert_non_null(body);
    doc = json_loads(body, 0, &je);
    assert_true(json_is_array(doc));
    al = json_array_get(doc, 0);
    json_t *labels = json_object_get(al, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "alertname")), "server_errors");
    assert_string_equal(json_string_value(json_object_get(labels, "severity")), "critical");
    assert_string_equal(json_string_value(json_object_get(labels, "service")), "errgate");
    assert_null(json_object_get(labels, "route"));
    assert_string_equal(json_string_value(json_object_get(al, "startsAt")),
                        "2027-01-15T08:00:00.005Z");
    assert_string_equal(json_string_value(json_object_get(al, "endsAt")),
                        "2027-01-15T08:01:00.000Z");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(al, "annotations"), "summary")),
        "5xx at 25% of 120 requests over 1m on all routes (resolved below 0.5%)");
    json_decref(doc);
    free(body);
}

static void test_prometheus_names_and_rules(void **state)
{
    (void)state;
    char name[80];
    eg_alert_prometheus_name("server_errors", name, sizeof(name));
    assert_string_equal(name, "ErrgateServerErrors");
    eg_alert_prometheus_name("v2_502", name, sizeof(name));
    assert_string_equal(name, "ErrgateV2502");
    eg_alert_rule_t r[2] = {rule("x", "5xx,429", 0.10, 0.05, 10, 300, 90000, 1),
                            rule("y", "errors", 0.05, 0.01, 5, 60, 0, EG_ALERT_ALL)};
    const char *routes[] = {"/a", "/b\"q"};
    char *text = eg_alert_rules_prometheus(r, 2, routes, 2, "m_total");
    assert_non_null(text);
    assert_non_null(strstr(
        text,
        "(sum by (route) (rate(m_total{route=\\\"/b\\\\\\\"q\\\", status=~\\\"5..|429\\\"}[5m])) "
        "/ sum by (route) (rate(m_total{route=\\\"/b\\\\\\\"q\\\"}[5m])))"));
    assert_non_null(strstr(text, "for: \"90s\""));
    assert_non_null(
        strstr(text, "(sum (rate(m_total{status=~\\\"4..|5..\\\"}[1m])) / sum "
                     "(rate(m_total[1m]))) > 0.05 and on () sum (increase(m_total[1m])) >= 5"));
    assert_non_null(strstr(text, "> 0.01 and on () ALERTS{alertname=\\\"ErrgateY\\\", "
                                 "alertstate=\\\"firing\\\"}"));
    free(text);
}

/* A reload: windows by route name, alert states by rule and route name. */
static void test_carry_across_a_reload(void **state)
{
    (void)state;
    eg_alert_rule_t r1 = rule("server_errors", "5xx", 0.10, 0.05, 10, 60, 0, EG_ALERT_EACH);
    static const char *const old_names[] = {"/a", "/b"};
    eg_monitor_cfg_t c1 = {&r1, 1, old_names, 2, 300};
    eg_monitor_t *m1 = NULL;
    assert_int_equal(eg_monitor_new(&c1, &m1), EG_OK);
    events_t ev = {0};
    for (int s = 0; s < 5; s++) {
        eg_monitor_add_status(m1, 0, 200, 10, T0 + (uint64_t)s * 1000);
        eg_monitor_add_status(m1, 1, 503, 4, T0 + (uint64_t)s * 1000);
        eg_monitor_add_status(m1, 1, 200, 6, T0 + (uint64_t)s * 1000);
        eg_monitor_add_status(m1, 2, 404, 1, T0 + (uint64_t)s * 1000);
    }
    assert_int_equal(eg_monitor_eval(m1, T0 + 4000, on_event, &ev), 1);
    /* the new configuration: /b first, /a gone, /c new, a rule on 429 too */
    eg_alert_rule_t r2[2] = {rule("server_errors", "5xx", 0.10, 0.05, 10, 60, 0, EG_ALERT_EACH),
                             rule("limited", "429", 0.10, 0.05, 10, 60, 0, EG_ALERT_ALL)};
    static const char *const new_names[] = {"/b", "/c"};
    eg_monitor_cfg_t c2 = {r2, 2, new_names, 2, 300};
    eg_monitor_t *m2 = NULL;
    assert_int_equal(eg_monitor_new(&c2, &m2), EG_OK);
    eg_monitor_carry(m2, m1);
    eg_monitor_free(m1);
    uint64_t w[8];
    eg_monitor_window(m2, 0, 60, T0 + 4000, w); /* /b */
    assert_int_equal(w[0], 50);
    assert_int_equal(w[5], 20);
    assert_int_equal(w[6], 0);                  /* 429: no slot before */
    eg_monitor_window(m2, 1, 60, T0 + 4000, w); /* /c */
    assert_int_equal(w[0], 0);
    eg_monitor_window(m2, 2, 60, T0 + 4000, w); /* no route */
    assert_int_equal(w[0], 5);
    eg_monitor_window(m2, EG_ALERT_ALL, 60, T0 + 4000, w);
    assert_int_equal(w[0], 50 + 50 + 5);
    const eg_alert_t *al;
    assert_int_equal(eg_monitor_alerts(m2, &al), 3);
    assert_string_equal(al[0].route_name, "/b");
    assert_int_equal(al[0].state, EG_ALERT_FIRING);
    assert_int_equal(al[0].fired_at_ms, T0 + 4000);
    assert_int_equal(al[1].state, EG_ALERT_INACTIVE);
    /* still firing on the carried window: no second firing, no resolve */
    assert_int_equal(eg_monitor_eval(m2, T0 + 5000, on_event, &ev), 0);
    assert_int_equal(al[0].state, EG_ALERT_FIRING);
    eg_monitor_free(m2);
}

/* A route's path is bytes; what goes out is valid UTF-8 (found by fuzz_monitor). */
static void test_invalid_utf8_in_a_route(void **state)
{
    (void)state;
    eg_alert_rule_t r = rule("x", "5xx", 0.01, 0.005, 1, 60, 0, 0);
    eg_alert_t a = {.rule = &r,
                    .route = 0,
                    .route_name = "/caf\xc3\xa9/\xeb",
                    .state = EG_ALERT_FIRING,
                    .value = 1,
                    .total = 3,
                    .matched = 3,
                    .fired_at_ms = T0};
    json_t *j = eg_alert_json(&a);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "route")), "/caf\xc3\xa9/?");
    json_decref(j);
    char *am = eg_alert_event_alertmanager(&a, "i", NULL);
    assert_non_null(am);
    assert_non_null(strstr(am, "\"route\":\"/caf\xc3\xa9/?\""));
    free(am);
    const char *routes[] = {"/\xff"};
    char *text = eg_alert_rules_prometheus(&r, 1, routes, 1, "m_total");
    assert_non_null(text);
    assert_non_null(strstr(text, "route=\\\"/?\\\""));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_parse),
        cmocka_unit_test(test_defaults_are_the_seed),
        cmocka_unit_test(test_rules_check),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_pending_firing_hysteresis_resolved),
        cmocka_unit_test(test_for_and_min_requests),
        cmocka_unit_test(test_for_zero_and_silence_resolves),
        cmocka_unit_test(test_per_route),
        cmocka_unit_test(test_zero_threshold),
        cmocka_unit_test(test_webhook_signature),
        cmocka_unit_test(test_event_bodies),
        cmocka_unit_test(test_prometheus_names_and_rules),
        cmocka_unit_test(test_carry_across_a_reload),
        cmocka_unit_test(test_invalid_utf8_in_a_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

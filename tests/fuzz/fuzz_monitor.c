/* fuzz_monitor.c - the monitor (lib/monitor.c) against a naive model, and
 * the rule exports on arbitrary text.
 *
 * Input: a match text (first line), a route name (second line), then
 * operations of 4 bytes: route, status (two bytes), count, and a clock step.
 * The monitor's window sums (each route and all traffic) must equal what
 * a list of every (second, route, status, count) says; each alert's value
 * stays in [0, 1] with matched <= total, a firing alert has fired_at set and
 * a resolved one resolved_at; the Prometheus export and the JSON bodies of
 * every transition are made and are valid (each YAML value a JSON string,
 * each body JSON). A match text the parser refuses ends the run. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errgate/monitor.h"

#define MAX_OPS 1500
#define NROUTES 2

typedef struct {
    uint64_t sec;
    size_t route;
    int status;
    uint64_t n;
} op_t;

static void check_json(const char *s, const char *what)
{
    if (!s) abort(); /* no allocation fails under the fuzzer */
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY, &e);
    if (!j) {
        fprintf(stderr, "fuzz_monitor: %s is not JSON: %s\n%s\n", what, e.text, s);
        abort();
    }
    json_decref(j);
}

static void on_event(void *ctx, const eg_alert_t *a)
{
    (void)ctx;
    if (a->state == EG_ALERT_FIRING && !a->fired_at_ms) abort();
    if (a->state == EG_ALERT_RESOLVED && !a->resolved_at_ms) abort();
    char *b = eg_alert_event_json(a, "evt", "inst", a->fired_at_ms);
    check_json(b, "the json body");
    free(b);
    b = eg_alert_event_alertmanager(a, "inst", "http://x/alerts");
    check_json(b, "the alertmanager body");
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl || (size_t)(nl - data) >= 64) return 0;
    char match[64];
    memcpy(match, data, (size_t)(nl - data));
    match[nl - data] = '\0';
    eg_alert_rule_t r;
    memset(&r, 0, sizeof(r));
    if (eg_alert_match_parse(match, &r.match) != EG_OK) return 0;
    snprintf(r.match_text, sizeof(r.match_text), "%s", match);
    size_t rest = size - (size_t)(nl - data) - 1;
    const uint8_t *p = nl + 1;
    const uint8_t *nl2 = memchr(p, '\n', rest);
    if (!nl2 || (size_t)(nl2 - p) >= 64) return 0;
    char rname[64];
    memcpy(rname, p, (size_t)(nl2 - p));
    rname[nl2 - p] = '\0';
    rest -= (size_t)(nl2 - p) + 1;
    p = nl2 + 1;
    if (rest < 4) return 0;
    snprintf(r.name, sizeof(r.name), "fuzz_rule");
    r.window_s = 1 + p[0] % 90;
    r.threshold = (p[1] % 101) / 100.0;
    r.resolve = r.threshold * (p[2] % 101) / 100.0;
    r.min_requests = p[3] % 30;
    r.for_ms = (uint64_t)(p[3] / 30) * 700;
    r.route = p[0] & 0x80 ? EG_ALERT_EACH : p[1] & 0x80 ? EG_ALERT_ALL : 1;
    p += 4;
    rest -= 4;

    const char *names[NROUTES] = {"/a", rname};
    char *prom = eg_alert_rules_prometheus(&r, 1, names, NROUTES, "m_total");
    if (!prom) abort();
    for (char *line = strtok(prom, "\n"); line; line = strtok(NULL, "\n")) {
        const char *keys[] = {"expr: ", "summary: ", "alert: ", "for: "};
        for (size_t k = 0; k < 4; k++) {
            const char *at = strstr(line, keys[k]);
            if (at && at == line + strspn(line, " -")) check_json(at + strlen(keys[k]), keys[k]);
        }
    }
    free(prom);

    eg_monitor_cfg_t cfg = {&r, 1, names, NROUTES, 0};
    eg_monitor_t *m = NULL;
    if (eg_monitor_new(&cfg, &m) != EG_OK) abort();
    static op_t ops[MAX_OPS];
    size_t nops = 0;
    uint64_t now = 1800000000000ull;
    uint64_t w[EG_MONITOR_MAX_SLOTS];
    for (; rest >= 4 && nops < MAX_OPS; p += 4, rest -= 4) {
        size_t route = p[0] % (NROUTES + 1);
        int status = 100 + (int)(((unsigned)p[1] << 8 | p[2]) % 500);
        uint64_t n = p[3] & 0x3f;
        eg_monitor_add_status(m, route, status, n, now);
        ops[nops++] = (op_t){now / 1000, route, status, n};
        now += (uint64_t)(p[3] >> 6) * 900 + (p[0] >> 2);
        eg_monitor_eval(m, now, on_event, NULL);
        const eg_alert_t *al;
        size_t na = eg_monitor_alerts(m, &al);
        for (size_t i = 0; i < na; i++)
            if (!(al[i].value >= 0 && al[i].value <= 1) || al[i].matched > al[i].total) abort();
    }
    /* the windows against the model */
    for (long scope = -1; scope <= NROUTES; scope++) {
        uint64_t want = 0, want5 = 0;
        uint64_t cur = now / 1000;
        for (size_t i = 0; i < nops; i++) {
            if (ops[i].sec + r.window_s <= cur || ops[i].sec > cur) continue;
            if (scope >= 0 && ops[i].route != (size_t)scope) continue;
            want += ops[i].n;
            if (ops[i].status / 100 == 5) want5 += ops[i].n;
        }
        eg_monitor_window(m, scope < 0 ? EG_ALERT_ALL : scope, r.window_s, now, w);
        if (w[0] != want || w[5] != want5) {
            fprintf(stderr, "fuzz_monitor: scope %ld window %u: %llu/%llu, model %llu/%llu\n",
                    scope, r.window_s, (unsigned long long)w[0], (unsigned long long)w[5],
                    (unsigned long long)want, (unsigned long long)want5);
            abort();
        }
    }
    eg_monitor_free(m);
    return 0;
}

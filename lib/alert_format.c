/* alert_format.c - alerts as the outside sees them: JSON, webhook bodies
 * (errgate's own and Alertmanager's), the webhook signature, and the rules
 * as a Prometheus alerting-rules file (see monitor.h).
 *
 * Everything here is a pure function of its arguments (times are passed
 * in), so the bodies and the rules file are checked byte for byte in unit
 * tests and by promtool. The rules file is written as YAML whose strings
 * are JSON strings (YAML's double-quoted scalars are a superset of them),
 * so no value, however odd a route's path, can break its structure.
 */
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/monitor.h"
#include "utf8.h"

/* A growable string; after a failed allocation it only counts (oom). */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} eg_lsb_t;

static void eg_lsb_mem(eg_lsb_t *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void eg_lsb_puts(eg_lsb_t *b, const char *s)
{
    eg_lsb_mem(b, s, strlen(s));
}

static void eg_lsb_putc(eg_lsb_t *b, char c)
{
    eg_lsb_mem(b, &c, 1);
}

__attribute__((format(printf, 2, 3))) static void eg_lsb_printf(eg_lsb_t *b, const char *fmt, ...)
{
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = 1;
        return;
    }
    eg_lsb_mem(b, tmp, (size_t)n);
}

/* The string built (the caller frees it), or NULL after a failure; b is
 * empty after. */
static char *eg_lsb_take(eg_lsb_t *b)
{
    char *p = b->oom ? NULL : b->p ? b->p : strdup("");
    if (b->oom) free(b->p);
    memset(b, 0, sizeof(*b));
    return p;
}

/* A copy of s with every byte that does not start a valid UTF-8 sequence
 * replaced by '?': jansson refuses invalid UTF-8, and a route's path is
 * bytes (malloc'd; NULL when out of memory). */
static char *utf8_clean(const char *s)
{
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : eg_utf8_len((const unsigned char *)s + i, n - i);
        if (!k) {
            o[i++] = '?';
            continue;
        }
        memcpy(o + i, s + i, k);
        i += k;
    }
    o[n] = '\0';
    return o;
}

/* ms since the epoch as RFC 3339 with milliseconds, UTC. */
static void rfc3339(uint64_t ms, char out[32])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

static json_t *time_or_null(uint64_t ms)
{
    char buf[32];
    if (!ms) return json_null();
    rfc3339(ms, buf);
    return json_string(buf);
}

/* "1%", "0.5%", "12.5%" */
static void percent(double f, char *out, size_t cap)
{
    snprintf(out, cap, "%.4g%%", f * 100);
}

/* "30s", "1m", "1h", "90s" */
static void duration(uint64_t s, char *out, size_t cap)
{
    if (s && s % 3600 == 0)
        snprintf(out, cap, "%lluh", (unsigned long long)(s / 3600));
    else if (s && s % 60 == 0)
        snprintf(out, cap, "%llum", (unsigned long long)(s / 60));
    else
        snprintf(out, cap, "%llus", (unsigned long long)s);
}

void eg_alert_summary(const eg_alert_t *a, char *out, size_t cap)
{
    char v[32], t[32], w[32];
    char *route = a->route_name ? utf8_clean(a->route_name) : NULL;
    percent(a->value, v, sizeof(v));
    percent(a->state == EG_ALERT_RESOLVED ? a->rule->resolve : a->rule->threshold, t, sizeof(t));
    duration(a->rule->window_s, w, sizeof(w));
    snprintf(out, cap, "%s at %s of %llu requests over %s on %s (%s %s)", a->rule->match_text, v,
             (unsigned long long)a->total, w,
             route           ? route
             : a->route_name ? "?"
                             : "all routes",
             a->state == EG_ALERT_RESOLVED ? "resolved below" : "threshold", t);
    free(route);
    /* a cut may have split the last sequence: drop it */
    size_t n = strlen(out), k = n;
    while (k && ((unsigned char)out[k - 1] & 0xC0) == 0x80)
        k--;
    if (k && (unsigned char)out[k - 1] >= 0xC0 &&
        !eg_utf8_len((const unsigned char *)out + k - 1, n - k + 1))
        out[k - 1] = '\0';
}

json_t *eg_alert_json(const eg_alert_t *a)
{
    const eg_alert_rule_t *r = a->rule;
    char summary[512];
    eg_alert_summary(a, summary, sizeof(summary));
    char *route = a->route_name ? utf8_clean(a->route_name) : NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:o, s:s, s:f, s:f, s:f, s:I, s:f, s:I, s:I, s:I, s:o, "
                          "s:o, s:o, s:s}",
                          "name", r->name, "state", eg_alert_state_name(a->state), "severity",
                          eg_alert_severity_name(r->severity), "route",
                          route ? json_string(route) : json_null(), "match", r->match_text, "value",
                          a->value, "threshold", r->threshold, "resolve_threshold", r->resolve,
                          "window_s", (json_int_t)r->window_s, "for_s", (double)r->for_ms / 1000,
                          "min_requests", (json_int_t)r->min_requests, "requests",
                          (json_int_t)a->total, "matched", (json_int_t)a->matched, "active_at",
                          time_or_null(a->active_at_ms), "fired_at", time_or_null(a->fired_at_ms),
                          "resolved_at", time_or_null(a->resolved_at_ms), "summary", summary);
    free(route);
    return j;
}

char *eg_alert_event_json(const eg_alert_t *a, const char *id, const char *instance,
                          uint64_t now_ms)
{
    char sent[32];
    rfc3339(now_ms, sent);
    json_t *alert = eg_alert_json(a);
    if (!alert) return NULL;
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "version", "1", "event",
                            a->state == EG_ALERT_RESOLVED ? "alert.resolved" : "alert.firing", "id",
                            id ? id : "", "sent_at", sent, "instance", instance ? instance : "",
                            "alert", alert);
    if (!doc) return NULL;
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(doc);
    return s;
}

char *eg_alert_event_alertmanager(const eg_alert_t *a, const char *instance,
                                  const char *generator_url)
{
    const eg_alert_rule_t *r = a->rule;
    char summary[512], v[32], t[32];
    eg_alert_summary(a, summary, sizeof(summary));
    percent(a->value, v, sizeof(v));
    percent(r->threshold, t, sizeof(t));
    json_t *labels = json_pack("{s:s, s:s, s:s, s:s}", "alertname", r->name, "severity",
                               eg_alert_severity_name(r->severity), "service", "errgate",
                               "instance", instance ? instance : "");
    char *route = a->route_name ? utf8_clean(a->route_name) : NULL;
    if (labels && route) json_object_set_new(labels, "route", json_string(route));
    free(route);
    json_t *ann = json_pack("{s:s, s:s, s:s}", "summary", summary, "value", v, "threshold", t);
    json_t *one = json_pack("{s:o, s:o, s:o}", "labels", labels, "annotations", ann, "startsAt",
                            time_or_null(a->fired_at_ms));
    if (one && a->state == EG_ALERT_RESOLVED)
        json_object_set_new(one, "endsAt", time_or_null(a->resolved_at_ms));
    if (one && generator_url) json_object_set_new(one, "generatorURL", json_string(generator_url));
    json_t *doc = one ? json_pack("[o]", one) : NULL;
    if (!doc) return NULL;
    char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(12));
    json_decref(doc);
    return s;
}

int eg_webhook_signature(const unsigned char *secret, size_t secret_len, long long t,
                         const char *body, size_t blen, char *out)
{
    char head[32];
    int hn = snprintf(head, sizeof(head), "%lld.", t);
    char *msg = malloc((size_t)hn + blen + 1);
    if (!msg) return EG_ENOMEM;
    memcpy(msg, head, (size_t)hn);
    memcpy(msg + hn, body, blen);
    unsigned char mac[32];
    unsigned int ml = 0;
    int ok = HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg,
                  (size_t)hn + blen, mac, &ml) != NULL &&
             ml == 32;
    free(msg);
    if (!ok) return EG_EIO;
    int n = snprintf(out, EG_WEBHOOK_SIG_MAX, "t=%lld,v1=", t);
    for (int i = 0; i < 32; i++)
        snprintf(out + n + 2 * i, 3, "%02x", mac[i]);
    return EG_OK;
}

void eg_alert_prometheus_name(const char *name, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "Errgate");
    int up = 1;
    for (const char *p = name; *p && o + 1 < cap; p++) {
        if (*p == '_') {
            up = 1;
            continue;
        }
        out[o++] = up && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        up = 0;
    }
    if (o < cap) out[o] = '\0';
}

/* The PromQL regex of a match: "4..|5..|429" (a class also matches
 * errgate's class labels, "5xx"). */
static void match_regex(const eg_alert_match_t *m, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int c = 1; c <= 5; c++)
        if (m->classes & (1u << c))
            o += (size_t)snprintf(out + o, cap - o, "%s%d..", o ? "|" : "", c);
    for (size_t i = 0; i < m->ncodes && o < cap; i++)
        if (!(m->classes & (1u << (m->codes[i] / 100))))
            o += (size_t)snprintf(out + o, cap - o, "%s%u", o ? "|" : "", m->codes[i]);
}

/* A PromQL string literal's inside: backslash and quote escaped. */
static void promql_escape(eg_lsb_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') eg_lsb_putc(b, '\\');
        eg_lsb_putc(b, *s);
    }
}

/* Appends s as a JSON string (a YAML double-quoted scalar). */
static void yaml_str(eg_lsb_t *b, const char *s)
{
    char *c = utf8_clean(s);
    json_t *j = c ? json_string(c) : NULL;
    free(c);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!t) {
        b->oom = 1;
        return;
    }
    eg_lsb_puts(b, t);
    free(t);
}

char *eg_alert_rules_prometheus(const eg_alert_rule_t *rules, size_t n,
                                const char *const *route_names, size_t nroutes, const char *metric)
{
    eg_lsb_t b = {0};
    eg_lsb_puts(&b, "# errgate alerting rules (errgate alerts --format prometheus-rules)\n"
                    "# The same rules as the gateway's monitor, over ");
    eg_lsb_puts(&b, metric);
    eg_lsb_puts(&b, ".\ngroups:\n  - name: \"errgate\"\n    rules:\n");
    for (size_t i = 0; i < n; i++) {
        const eg_alert_rule_t *r = &rules[i];
        char name[EG_ALERT_NAME_MAX + 16], re[128], w[16], f[32], t[32], res[32];
        eg_alert_prometheus_name(r->name, name, sizeof(name));
        match_regex(&r->match, re, sizeof(re));
        duration(r->window_s, w, sizeof(w));
        percent(r->threshold, t, sizeof(t));
        percent(r->resolve, res, sizeof(res));
        /* the selector of the route(s) and the grouping */
        eg_lsb_t sel = {0}, by = {0}, on = {0};
        if (r->route >= 0 && (size_t)r->route < nroutes) {
            eg_lsb_puts(&sel, "route=\"");
            promql_escape(&sel, route_names[r->route]);
            eg_lsb_puts(&sel, "\"");
        }
        eg_lsb_puts(&by, r->route == EG_ALERT_ALL ? "sum" : "sum by (route)");
        eg_lsb_puts(&on, r->route == EG_ALERT_ALL ? "on ()" : "on (route)");
        eg_lsb_t e = {0};
        char *sels = eg_lsb_take(&sel), *bys = eg_lsb_take(&by), *ons = eg_lsb_take(&on);
        const char *s = sels ? sels : "";
        char ratio[1024], all[512];
        snprintf(all, sizeof(all), *s ? "%s{%s}" : "%s%s", metric, s);
        snprintf(ratio, sizeof(ratio),
                 "(%s (rate(%s{%s%sstatus=~\"%s\"}[%s])) / %s (rate(%s[%s])))", bys, metric, s,
                 *s ? ", " : "", re, w, bys, all, w);
        eg_lsb_printf(&e, "(%s > %.10g and %s %s (increase(%s[%s])) >= %u)", ratio, r->threshold,
                      ons, bys, all, w, r->min_requests);
        eg_lsb_printf(&e, " or (%s > %.10g and %s ALERTS{alertname=\"%s\", alertstate=\"firing\"})",
                      ratio, r->resolve, ons, name);
        free(sels);
        free(bys);
        free(ons);
        char *expr = eg_lsb_take(&e);
        char summary[512];
        snprintf(summary, sizeof(summary),
                 "%s at {{ $value | humanizePercentage }} of requests over %s on %s (threshold "
                 "%s, resolves below %s)",
                 r->match_text, w, r->route == EG_ALERT_ALL ? "all routes" : "{{ $labels.route }}",
                 t, res);
        duration((r->for_ms + 999) / 1000, f, sizeof(f));
        eg_lsb_puts(&b, "      - alert: ");
        yaml_str(&b, name);
        eg_lsb_puts(&b, "\n        expr: ");
        yaml_str(&b, expr ? expr : "");
        eg_lsb_puts(&b, "\n        for: ");
        yaml_str(&b, f);
        eg_lsb_puts(&b, "\n        labels:\n          severity: ");
        yaml_str(&b, eg_alert_severity_name(r->severity));
        eg_lsb_puts(&b, "\n          errgate_rule: ");
        yaml_str(&b, r->name);
        eg_lsb_puts(&b, "\n        annotations:\n          summary: ");
        yaml_str(&b, summary);
        eg_lsb_puts(&b, "\n");
        if (!expr) b.oom = 1;
        free(expr);
    }
    return eg_lsb_take(&b);
}

/* monitor.c - sliding windows and alert rules (see monitor.h).
 *
 * Memory is laid out once in eg_monitor_new(): the ring is nbuckets
 * seconds, each second a row of scopes (routes, "no route", all), each
 * scope nslots uint64 counts. The second a bucket holds is kept beside it,
 * so a stale bucket is recognised (and zeroed) when its slot of the ring
 * comes round again instead of being swept on a timer.
 */
#include "errgate/monitor.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOT_ALL        0
#define SLOT_FIRST_CODE EG_MONITOR_SLOT_FIRST_CODE
#define MAX_CODES       (EG_MONITOR_MAX_SLOTS - SLOT_FIRST_CODE)

struct eg_monitor_s {
    eg_alert_rule_t *rules;
    size_t nrules;
    char **route_names;
    size_t nroutes, nscopes; /* nscopes = nroutes + 2: "no route" and all */
    uint16_t codes[MAX_CODES];
    size_t ncodes, nslots;
    uint8_t slot_of[600]; /* status -> exact slot, 0 = none */
    uint32_t nbuckets;
    uint64_t *bucket_sec; /* second + 1 a bucket holds, 0 = empty */
    uint64_t *counts;     /* [bucket][scope][slot] */
    eg_alert_t *alerts;
    size_t nalerts;
    uint64_t *scratch; /* nslots */
};

size_t eg_alert_rules_default(eg_alert_rule_t *out, size_t cap)
{
    static const struct {
        const char *name, *match;
        double threshold;
        eg_alert_severity_t sev;
    } d[] = {
        {"error_rate", "errors", 0.05, EG_ALERT_WARNING},
        {"server_errors", "5xx", 0.01, EG_ALERT_CRITICAL},
        {"rate_limited", "429", 0.10, EG_ALERT_WARNING},
        {"auth_failures", "401,403", 0.20, EG_ALERT_WARNING},
    };
    size_t n = sizeof(d) / sizeof(d[0]);
    for (size_t i = 0; i < n && i < cap; i++) {
        eg_alert_rule_t *r = &out[i];
        memset(r, 0, sizeof(*r));
        snprintf(r->name, sizeof(r->name), "%s", d[i].name);
        snprintf(r->match_text, sizeof(r->match_text), "%s", d[i].match);
        eg_alert_match_parse(d[i].match, &r->match);
        r->route = EG_ALERT_EACH;
        r->threshold = d[i].threshold;
        r->resolve = d[i].threshold / 2;
        r->min_requests = 20;
        r->window_s = 60;
        r->for_ms = 30000;
        r->severity = d[i].sev;
    }
    return n;
}

int eg_alert_match_parse(const char *text, eg_alert_match_t *out)
{
    eg_alert_match_t m = {0};
    const char *p = text;
    if (!p || !*p) return EG_EINVAL;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *s = p;
        while (*p && *p != ',' && *p != ' ')
            p++;
        size_t n = (size_t)(p - s);
        while (*p == ' ')
            p++;
        if (*p == ',') {
            p++;
            if (!*p) return EG_EINVAL;
        } else if (*p) {
            return EG_EINVAL;
        }
        if (n == 6 && memcmp(s, "errors", 6) == 0) {
            m.classes |= 1u << 4 | 1u << 5;
        } else if (n == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
                   (s[2] == 'x' || s[2] == 'X')) {
            m.classes |= 1u << (s[0] - '0');
        } else if (n == 3 && s[0] >= '1' && s[0] <= '5' && isdigit((unsigned char)s[1]) &&
                   isdigit((unsigned char)s[2])) {
            int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
            int dup = 0;
            for (size_t i = 0; i < m.ncodes; i++)
                dup |= m.codes[i] == code;
            if (!dup) {
                if (m.ncodes == EG_MONITOR_MAX_CODES) return EG_EINVAL;
                m.codes[m.ncodes++] = (uint16_t)code;
            }
        } else {
            return EG_EINVAL;
        }
    }
    *out = m;
    return EG_OK;
}

const char *eg_alert_severity_name(eg_alert_severity_t s)
{
    return s == EG_ALERT_CRITICAL ? "critical" : s == EG_ALERT_WARNING ? "warning" : "info";
}

const char *eg_alert_state_name(eg_alert_state_t s)
{
    static const char *const names[] = {"inactive", "pending", "firing", "resolved"};
    return (unsigned)s < 4 ? names[s] : "inactive";
}

int eg_alert_rules_check(const eg_alert_rule_t *rules, size_t n, size_t nroutes, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        const eg_alert_rule_t *r = &rules[i];
        const char *why = NULL;
        size_t nl = strnlen(r->name, sizeof(r->name));
        if (nl == 0 || nl >= sizeof(r->name) - 1) why = "a name of 1 to 62 characters";
        for (size_t k = 0; !why && k < nl; k++)
            if (!(islower((unsigned char)r->name[k]) || isdigit((unsigned char)r->name[k]) ||
                  r->name[k] == '_'))
                why = "a name of lowercase letters, digits and '_'";
        for (size_t j = 0; !why && j < i; j++)
            if (strcmp(rules[j].name, r->name) == 0) why = "a name no other rule has";
        if (!why && !r->match.classes && !r->match.ncodes) why = "a match";
        if (!why && !(r->threshold >= 0 && r->threshold <= 1))
            why = "a threshold between 0% and 100%";
        if (!why && !(r->resolve >= 0 && r->resolve <= r->threshold))
            why = "a resolve threshold between 0% and its threshold";
        if (!why && (r->window_s < 1 || r->window_s > EG_MONITOR_MAX_WINDOW_S))
            why = "a window between 1s and 1h";
        if (!why && r->route != EG_ALERT_ALL && r->route != EG_ALERT_EACH &&
            (r->route < 0 || (size_t)r->route >= nroutes))
            why = "a route the configuration has";
        if (why) {
            snprintf(err, errlen, "alert rule %zu (%s) needs %s", i + 1, r->name, why);
            return EG_EINVAL;
        }
    }
    return EG_OK;
}

void eg_monitor_free(eg_monitor_t *m)
{
    if (!m) return;
    for (size_t i = 0; m->route_names && i < m->nroutes; i++)
        free(m->route_names[i]);
    free(m->route_names);
    free(m->rules);
    free(m->bucket_sec);
    free(m->counts);
    free(m->alerts);
    free(m->scratch);
    free(m);
}

/* Exact statuses get slots in the order the rules name them; those a
 * rule's classes already cover still need one ("5xx,429" with a rule on
 * 503 alone). */
size_t eg_alert_slot_map(const eg_alert_rule_t *rules, size_t n, uint8_t *slot_of, uint16_t *codes)
{
    size_t ncodes = 0;
    memset(slot_of, 0, 600);
    for (size_t r = 0; r < n; r++) {
        const eg_alert_match_t *mt = &rules[r].match;
        for (size_t i = 0; i < mt->ncodes && i < EG_MONITOR_MAX_CODES; i++) {
            int c = mt->codes[i];
            if (c < 100 || c > 599 || slot_of[c] || ncodes == MAX_CODES) continue;
            codes[ncodes] = (uint16_t)c;
            slot_of[c] = (uint8_t)(SLOT_FIRST_CODE + ncodes);
            ncodes++;
        }
    }
    return SLOT_FIRST_CODE + ncodes;
}

int eg_monitor_new(const eg_monitor_cfg_t *cfg, eg_monitor_t **out)
{
    char err[160];
    if (eg_alert_rules_check(cfg->rules, cfg->nrules, cfg->nroutes, err, sizeof(err)) != EG_OK)
        return EG_EINVAL;
    if (cfg->history_s > EG_MONITOR_MAX_WINDOW_S) return EG_EINVAL;
    eg_monitor_t *m = calloc(1, sizeof(*m));
    if (!m) return EG_ENOMEM;
    int rc = EG_ENOMEM;
    m->nroutes = cfg->nroutes;
    m->nscopes = cfg->nroutes + 2;
    m->nrules = cfg->nrules;
    m->nbuckets = cfg->history_s ? cfg->history_s : 1;
    size_t nalerts = 0;
    for (size_t i = 0; i < cfg->nrules; i++) {
        const eg_alert_rule_t *r = &cfg->rules[i];
        if (r->window_s > m->nbuckets) m->nbuckets = r->window_s;
        nalerts += r->route == EG_ALERT_EACH ? cfg->nroutes : 1;
    }
    m->nslots = eg_alert_slot_map(cfg->rules, cfg->nrules, m->slot_of, m->codes);
    m->ncodes = m->nslots - SLOT_FIRST_CODE;
    if (!(m->rules = calloc(cfg->nrules ? cfg->nrules : 1, sizeof(*m->rules)))) goto out;
    if (cfg->nrules) memcpy(m->rules, cfg->rules, cfg->nrules * sizeof(*m->rules));
    if (!(m->route_names = calloc(m->nroutes ? m->nroutes : 1, sizeof(char *)))) goto out;
    for (size_t i = 0; i < m->nroutes; i++)
        if (!(m->route_names[i] = strdup(cfg->route_names[i] ? cfg->route_names[i] : ""))) goto out;
    if (!(m->bucket_sec = calloc(m->nbuckets, sizeof(uint64_t)))) goto out;
    if (!(m->counts = calloc((size_t)m->nbuckets * m->nscopes * m->nslots, sizeof(uint64_t))))
        goto out;
    if (!(m->scratch = calloc(m->nslots, sizeof(uint64_t)))) goto out;
    if (!(m->alerts = calloc(nalerts ? nalerts : 1, sizeof(eg_alert_t)))) goto out;
    for (size_t i = 0; i < m->nrules; i++) {
        const eg_alert_rule_t *r = &m->rules[i];
        size_t k = r->route == EG_ALERT_EACH ? m->nroutes : 1;
        for (size_t j = 0; j < k; j++) {
            eg_alert_t *a = &m->alerts[m->nalerts++];
            a->rule = r;
            a->route = r->route == EG_ALERT_EACH ? (long)j : r->route;
            a->route_name = a->route >= 0 ? m->route_names[a->route] : NULL;
        }
    }
    rc = EG_OK;
out:
    if (rc) {
        eg_monitor_free(m);
        return rc;
    }
    *out = m;
    return EG_OK;
}

size_t eg_monitor_nslots(const eg_monitor_t *m)
{
    return m->nslots;
}

size_t eg_monitor_slot_of(const eg_monitor_t *m, int status)
{
    return status >= 100 && status <= 599 ? m->slot_of[status] : 0;
}

int eg_monitor_slot_status(const eg_monitor_t *m, size_t slot)
{
    return slot >= SLOT_FIRST_CODE && slot < m->nslots ? m->codes[slot - SLOT_FIRST_CODE] : 0;
}

void eg_monitor_count(const eg_monitor_t *m, int status, uint64_t n, uint64_t *slots)
{
    memset(slots, 0, m->nslots * sizeof(uint64_t));
    slots[SLOT_ALL] = n;
    if (status >= 100 && status <= 599) {
        slots[status / 100] = n;
        if (m->slot_of[status]) slots[m->slot_of[status]] = n;
    }
}

/* The counts of one scope in the bucket of second sec, made current
 * (zeroed when it held an older second); NULL when sec is older than the
 * ring's newest second minus its length (too late to count). */
static uint64_t *bucket(eg_monitor_t *m, uint64_t sec, size_t scope)
{
    size_t b = (size_t)(sec % m->nbuckets);
    if (m->bucket_sec[b] != sec + 1) {
        if (m->bucket_sec[b] > sec + 1) return NULL;
        memset(m->counts + (size_t)b * m->nscopes * m->nslots, 0,
               m->nscopes * m->nslots * sizeof(uint64_t));
        m->bucket_sec[b] = sec + 1;
    }
    return m->counts + ((size_t)b * m->nscopes + scope) * m->nslots;
}

void eg_monitor_add(eg_monitor_t *m, size_t route, const uint64_t *slots, uint64_t now_ms)
{
    if (route > m->nroutes) return;
    uint64_t sec = now_ms / 1000;
    uint64_t *r = bucket(m, sec, route), *all = bucket(m, sec, m->nscopes - 1);
    if (!r || !all) return;
    for (size_t i = 0; i < m->nslots; i++) {
        r[i] += slots[i];
        all[i] += slots[i];
    }
}

void eg_monitor_add_status(eg_monitor_t *m, size_t route, int status, uint64_t n, uint64_t now_ms)
{
    eg_monitor_count(m, status, n, m->scratch);
    eg_monitor_add(m, route, m->scratch, now_ms);
}

void eg_monitor_window(const eg_monitor_t *m, long route, uint32_t window_s, uint64_t now_ms,
                       uint64_t *out)
{
    memset(out, 0, m->nslots * sizeof(uint64_t));
    size_t scope = route == EG_ALERT_ALL ? m->nscopes - 1 : (size_t)route;
    if (route != EG_ALERT_ALL && (route < 0 || (size_t)route > m->nroutes)) return;
    uint64_t now = now_ms / 1000;
    if (window_s > m->nbuckets) window_s = m->nbuckets;
    for (uint32_t i = 0; i < window_s && i <= now; i++) {
        uint64_t sec = now - i;
        size_t b = (size_t)(sec % m->nbuckets);
        if (m->bucket_sec[b] != sec + 1) continue;
        const uint64_t *c = m->counts + ((size_t)b * m->nscopes + scope) * m->nslots;
        for (size_t k = 0; k < m->nslots; k++)
            out[k] += c[k];
    }
}

/* The scope of `to` for scope sc of `from`, or -1 (a route that went). */
static long scope_map(const eg_monitor_t *to, const eg_monitor_t *from, size_t sc)
{
    if (sc == from->nscopes - 1) return (long)to->nscopes - 1; /* all */
    if (sc == from->nroutes) return (long)to->nroutes;         /* no route */
    for (size_t i = 0; i < to->nroutes; i++)
        if (strcmp(to->route_names[i], from->route_names[sc]) == 0) return (long)i;
    return -1;
}

void eg_monitor_carry(eg_monitor_t *to, const eg_monitor_t *from)
{
    /* the buckets, oldest second first, so a shorter ring keeps the newest */
    uint64_t newest = 0;
    for (uint32_t b = 0; b < from->nbuckets; b++)
        if (from->bucket_sec[b] > newest) newest = from->bucket_sec[b];
    for (uint64_t k = from->nbuckets; newest && k-- > 0;) {
        if (newest < k + 1) continue;
        uint64_t sec = newest - 1 - k;
        size_t b = (size_t)(sec % from->nbuckets);
        if (from->bucket_sec[b] != sec + 1) continue;
        for (size_t sc = 0; sc < from->nscopes; sc++) {
            long ts = scope_map(to, from, sc);
            if (ts < 0) continue;
            uint64_t *dst = bucket(to, sec, (size_t)ts);
            if (!dst) continue;
            const uint64_t *src = from->counts + ((size_t)b * from->nscopes + sc) * from->nslots;
            for (size_t i = 0; i < SLOT_FIRST_CODE; i++)
                dst[i] += src[i];
            for (size_t i = SLOT_FIRST_CODE; i < from->nslots; i++) {
                int st = from->codes[i - SLOT_FIRST_CODE];
                if (to->slot_of[st]) dst[to->slot_of[st]] += src[i];
            }
        }
    }
    for (size_t i = 0; i < to->nalerts; i++) {
        eg_alert_t *a = &to->alerts[i];
        for (size_t j = 0; j < from->nalerts; j++) {
            const eg_alert_t *o = &from->alerts[j];
            int same_route = (a->route_name == NULL) == (o->route_name == NULL) &&
                             (!a->route_name || strcmp(a->route_name, o->route_name) == 0);
            if (!same_route || strcmp(a->rule->name, o->rule->name) != 0) continue;
            a->state = o->state;
            a->value = o->value;
            a->total = o->total;
            a->matched = o->matched;
            a->active_at_ms = o->active_at_ms;
            a->fired_at_ms = o->fired_at_ms;
            a->resolved_at_ms = o->resolved_at_ms;
            break;
        }
    }
}

/* The responses a match counts in a window's slots: its classes, plus its
 * exact statuses outside those classes. */
static uint64_t matched(const eg_monitor_t *m, const eg_alert_match_t *mt, const uint64_t *w)
{
    uint64_t n = 0;
    for (int c = 1; c <= 5; c++)
        if (mt->classes & (1u << c)) n += w[c];
    for (size_t i = 0; i < mt->ncodes; i++) {
        int code = mt->codes[i];
        if (!(mt->classes & (1u << (code / 100))) && m->slot_of[code]) n += w[m->slot_of[code]];
    }
    return n;
}

size_t eg_monitor_eval(eg_monitor_t *m, uint64_t now_ms, eg_alert_cb cb, void *ctx)
{
    size_t events = 0;
    for (size_t i = 0; i < m->nalerts; i++) {
        eg_alert_t *a = &m->alerts[i];
        const eg_alert_rule_t *r = a->rule;
        eg_monitor_window(m, a->route, r->window_s, now_ms, m->scratch);
        a->total = m->scratch[SLOT_ALL];
        a->matched = matched(m, &r->match, m->scratch);
        a->value = a->total ? (double)a->matched / (double)a->total : 0.0;
        int holds = a->total >= r->min_requests && a->total > 0 && a->value > r->threshold;
        switch (a->state) {
        case EG_ALERT_INACTIVE:
        case EG_ALERT_RESOLVED:
            if (!holds) break;
            a->active_at_ms = now_ms;
            a->state = EG_ALERT_PENDING;
            /* fall through - with for 0 it fires at once */
        case EG_ALERT_PENDING:
            if (!holds) {
                a->state = a->resolved_at_ms ? EG_ALERT_RESOLVED : EG_ALERT_INACTIVE;
            } else if (now_ms - a->active_at_ms >= r->for_ms) {
                a->state = EG_ALERT_FIRING;
                a->fired_at_ms = now_ms;
                events++;
                if (cb) cb(ctx, a);
            }
            break;
        case EG_ALERT_FIRING:
            /* hysteresis: it stays firing until the rate is under the lower
             * threshold (an empty window is a rate of 0) */
            if (a->value < r->resolve || (r->resolve == 0 && a->matched == 0)) {
                a->state = EG_ALERT_RESOLVED;
                a->resolved_at_ms = now_ms;
                events++;
                if (cb) cb(ctx, a);
            }
            break;
        }
    }
    return events;
}

size_t eg_monitor_alerts(const eg_monitor_t *m, const eg_alert_t **out)
{
    *out = m->alerts;
    return m->nalerts;
}

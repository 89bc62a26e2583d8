/* monitor.h - the error-rate monitor: sliding windows, alert rules and
 * their state machine, driven by an explicit clock.
 *
 * Counts arrive per route and second as "slots": slot 0 counts every
 * response, slots 1..5 the status classes 1xx..5xx, and one slot more for
 * each exact status a rule names (401, 403, 429 with the default rules;
 * eg_monitor_slot_of() maps a status to its exact slot). The windows are
 * one ring of per-second buckets per scope (each route, the requests no
 * route took, and all of them), as long as the longest window: a window's
 * sum is the buckets whose second it covers, so a window slides by the
 * second and never needs a reset.
 *
 * A rule is "matched / all responses over its window > threshold"; it
 * applies to all traffic, to each route separately (one alert a route) or
 * to one route. Its state machine: inactive -> pending (the condition
 * holds with at least min_requests responses in the window) -> firing (it
 * held for `for`) -> resolved (the rate fell below the lower `resolve`
 * threshold: hysteresis, so a rate hovering at the threshold does not
 * flap) -> pending again when it next holds. Pending that stops holding
 * goes back to inactive silently; firing and resolved are the transitions
 * reported. Nothing here reads a clock, allocates after eg_monitor_new()
 * or takes a lock: the caller owns the thread.
 */
#ifndef ERRGATE_MONITOR_H
#define ERRGATE_MONITOR_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

#define EG_MONITOR_MAX_CODES    8 /* exact statuses a rule may name */
#define EG_MONITOR_MAX_WINDOW_S 3600
#define EG_ALERT_NAME_MAX       64

typedef enum { EG_ALERT_INFO = 0, EG_ALERT_WARNING, EG_ALERT_CRITICAL } eg_alert_severity_t;

/* Which responses a rule counts. */
typedef struct {
    unsigned classes; /* bit c: status class c (1..5) */
    uint16_t codes[EG_MONITOR_MAX_CODES];
    size_t ncodes;
} eg_alert_match_t;

/* Which traffic a rule watches. */
#define EG_ALERT_ALL  (-1) /* all responses together */
#define EG_ALERT_EACH (-2) /* every route separately */

typedef struct {
    char name[EG_ALERT_NAME_MAX]; /* [a-z0-9_], unique */
    char match_text[64];          /* as written: "errors", "5xx", "401,403" (for people) */
    eg_alert_match_t match;
    long route;            /* EG_ALERT_ALL, EG_ALERT_EACH or a route index */
    double threshold;      /* fraction of responses, fires above it */
    double resolve;        /* resolves below it (<= threshold) */
    uint32_t min_requests; /* responses in the window before it may fire */
    uint32_t window_s;     /* 1..EG_MONITOR_MAX_WINDOW_S */
    uint64_t for_ms;       /* how long the condition holds before firing */
    eg_alert_severity_t severity;
} eg_alert_rule_t;

/* The seed's thresholds: error rate (4xx and 5xx) > 5% warning, 5xx > 1%
 * critical, 429 > 10% warning, 401/403 > 20% warning; each route
 * separately, 1 min window, at least 20 responses, for 30 s, resolving
 * below half the threshold. Writes up to cap rules, returns how many exist (4). */
size_t eg_alert_rules_default(eg_alert_rule_t *out, size_t cap);

/* Parses a match: "errors" (4xx and 5xx), "5xx" (a class), "429" (a
 * status) or a comma-separated list of them ("401,403"). EG_EINVAL when
 * it is not one. */
int eg_alert_match_parse(const char *text, eg_alert_match_t *out);

const char *eg_alert_severity_name(eg_alert_severity_t s);

/* Validates a rule set (names unique and well-formed, thresholds in
 * [0, 1] with resolve <= threshold, windows in range, route indexes below
 * nroutes). EG_OK or EG_EINVAL with a message in err. */
int eg_alert_rules_check(const eg_alert_rule_t *rules, size_t n, size_t nroutes, char *err,
                         size_t errlen);

typedef enum {
    EG_ALERT_INACTIVE = 0,
    EG_ALERT_PENDING,
    EG_ALERT_FIRING,
    EG_ALERT_RESOLVED
} eg_alert_state_t;

const char *eg_alert_state_name(eg_alert_state_t s);

/* One alert: a rule on one scope (one route for an EG_ALERT_EACH rule). */
typedef struct {
    const eg_alert_rule_t *rule;
    long route;             /* route index, or EG_ALERT_ALL */
    const char *route_name; /* the route's name, NULL for EG_ALERT_ALL */
    eg_alert_state_t state;
    double value;            /* the rate at the last evaluation */
    uint64_t total, matched; /* responses, and matched ones, in the window then */
    uint64_t active_at_ms;   /* when it went pending (its condition began holding) */
    uint64_t fired_at_ms;    /* when it last fired, 0 = never */
    uint64_t resolved_at_ms; /* when it last resolved, 0 = never */
} eg_alert_t;

typedef struct eg_monitor_s eg_monitor_t;

#define EG_MONITOR_SLOT_FIRST_CODE 6
#define EG_MONITOR_MAX_SLOTS       (EG_MONITOR_SLOT_FIRST_CODE + 64)

/* The slot layout of a rule set, as eg_monitor_new() makes it: slot_of[s]
 * is the exact slot of status s (0 = none; 600 entries), codes[i] the
 * status of slot EG_MONITOR_SLOT_FIRST_CODE + i (64 entries). Returns the
 * number of slots. Counters kept elsewhere (per worker) use the same
 * layout, so a count vector moves between them unchanged. */
size_t eg_alert_slot_map(const eg_alert_rule_t *rules, size_t n, uint8_t *slot_of, uint16_t *codes);

typedef struct {
    const eg_alert_rule_t *rules; /* copied */
    size_t nrules;
    const char *const *route_names; /* nroutes names, copied (a route's path) */
    size_t nroutes;
    uint32_t history_s; /* the longest window kept besides the rules' (0: just theirs) */
} eg_monitor_cfg_t;

int eg_monitor_new(const eg_monitor_cfg_t *cfg, eg_monitor_t **out);
void eg_monitor_free(eg_monitor_t *m);

/* The slots of a count vector (6 + the exact statuses the rules name). */
size_t eg_monitor_nslots(const eg_monitor_t *m);
/* The exact slot of a status (>= 6), or 0 when no rule names it. */
size_t eg_monitor_slot_of(const eg_monitor_t *m, int status);
/* The status an exact slot counts (slot >= 6), 0 otherwise. */
int eg_monitor_slot_status(const eg_monitor_t *m, size_t slot);

/* Fills a count vector (nslots entries) for n responses of one status:
 * slot 0, the class slot and the exact slot. */
void eg_monitor_count(const eg_monitor_t *m, int status, uint64_t n, uint64_t *slots);

/* Adds a count vector (nslots) to a route's bucket for the second of
 * now_ms; route == nroutes is the requests no route took. Counts for a
 * second older than the ring are dropped. */
void eg_monitor_add(eg_monitor_t *m, size_t route, const uint64_t *slots, uint64_t now_ms);
/* Adds n responses of one status (tests, simple callers). */
void eg_monitor_add_status(eg_monitor_t *m, size_t route, int status, uint64_t n, uint64_t now_ms);

/* Sums a window of window_s seconds ending with the second of now_ms into
 * out (nslots): route in [0, nroutes], or EG_ALERT_ALL. */
void eg_monitor_window(const eg_monitor_t *m, long route, uint32_t window_s, uint64_t now_ms,
                       uint64_t *out);

/* Carries what `from` knows into a new monitor `to` (a reloaded
 * configuration): window counts by route name (and the no-route and
 * all-traffic scopes), the counts of the statuses both lay out, and each
 * alert's state and times where a rule of the same name watches a route of
 * the same name. An alert firing before a reload is still firing after it,
 * and resolves only as its rule says. */
void eg_monitor_carry(eg_monitor_t *to, const eg_monitor_t *from);

/* Called for each firing and resolved transition. */
typedef void (*eg_alert_cb)(void *ctx, const eg_alert_t *a);

/* Evaluates every rule at now_ms; returns the number of transitions
 * reported through cb (which may be NULL). */
size_t eg_monitor_eval(eg_monitor_t *m, uint64_t now_ms, eg_alert_cb cb, void *ctx);

/* The alerts, for listing: *out points at n entries owned by m, valid
 * until the next eval; entries never active are in it as inactive. */
size_t eg_monitor_alerts(const eg_monitor_t *m, const eg_alert_t **out);

/* --- what the outside sees (lib/alert_format.c) ------------------------- */

/* One line for people: "5xx at 25.0% of 120 requests over 1m on /v1/
 * (threshold 1%)". Writes at most cap bytes (NUL included). */
void eg_alert_summary(const eg_alert_t *a, char *out, size_t cap);

/* An alert as JSON (/alerts and the webhook body): name, state, severity,
 * route (null for all), match, value, threshold, resolve_threshold,
 * window_s, for_s, min_requests, requests, matched, active_at, fired_at,
 * resolved_at (RFC 3339 or null), summary. A new reference, NULL on OOM. */
json_t *eg_alert_json(const eg_alert_t *a);

/* The webhook body of a transition, format json: {"version": "1",
 * "event": "alert.firing" | "alert.resolved", "id", "sent_at",
 * "instance", "alert": eg_alert_json}. id: unique per event (the caller's,
 * e.g. a UUID). malloc'd, NULL on OOM. */
char *eg_alert_event_json(const eg_alert_t *a, const char *id, const char *instance,
                          uint64_t now_ms);

/* The same transition as an Alertmanager v2 alert list (POST
 * /api/v2/alerts): labels alertname, severity, route, service "errgate",
 * instance; annotations summary, value, threshold; startsAt; endsAt when
 * resolved. malloc'd, NULL on OOM. */
char *eg_alert_event_alertmanager(const eg_alert_t *a, const char *instance,
                                  const char *generator_url);

/* The signature header's value for body sent at Unix time t:
 * "t=<t>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>" (Stripe's scheme).
 * out holds EG_WEBHOOK_SIG_MAX bytes. EG_OK, EG_EIO when OpenSSL fails,
 * EG_ENOMEM. */
#define EG_WEBHOOK_SIG_MAX 96
int eg_webhook_signature(const unsigned char *secret, size_t secret_len, long long t,
                         const char *body, size_t blen, char *out);

/* The rules as a Prometheus alerting-rules file (YAML, one group
 * "errgate") over the counter `metric` (labels route and status, status a
 * code like "503" or a class like "5xx", as errgate_requests_total): the
 * matched share of rate() over the rule's window above the threshold with
 * at least min_requests in the window, for the rule's `for`; hysteresis as
 * "above the threshold, or above the resolve threshold while already
 * firing" (ALERTS). route_names name the routes (nroutes of them, for a
 * rule on one route). malloc'd, NULL on OOM. */
char *eg_alert_rules_prometheus(const eg_alert_rule_t *rules, size_t n,
                                const char *const *route_names, size_t nroutes, const char *metric);

/* The Prometheus name of a rule: "Errgate" + CamelCase of its name
 * ("server_errors" -> "ErrgateServerErrors"). */
void eg_alert_prometheus_name(const char *name, char *out, size_t cap);

#endif

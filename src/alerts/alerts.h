/* alerts.h - the error-rate monitor at runtime (the rules and windows are
 * lib/monitor.c).
 *
 * Counting: each configuration generation (eg_gw_t) carries an
 * eg_alert_counts_t, one block of cumulative counters per worker in the
 * monitor's slot layout (all, the five classes, the statuses the rules
 * name) per route. A worker adds to its own block when a request ends,
 * with a relaxed load and store: no lock, no locked instruction, no cache
 * line shared with another worker.
 *
 * Evaluating: a timer on the main loop (alerts.evaluate_every, 1 s by
 * default) sums the blocks, feeds the change since its last look into the
 * monitor's windows and evaluates the rules. A transition is written to the
 * error log as one JSON line, kept for GET /alerts on the admin listener,
 * and handed to the webhook thread (webhook.h). A reload that brings a new
 * configuration gets a new monitor, into which the old one's windows,
 * alert states and history are carried by route path and rule name.
 */
#ifndef EG_ALERTS_H
#define EG_ALERTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errgate/http1.h"
#include "gateway.h"

typedef struct eg_alert_counts_s {
    int nworkers;
    size_t nscopes; /* routes + 1 (no route) */
    size_t nslots;
    size_t stride; /* counters per worker block, a multiple of 8 (64 bytes) */
    uint8_t slot_of[600];
    _Atomic uint64_t *cells; /* [worker][scope][slot], 64-byte aligned */
} eg_alert_counts_t;

/* NULL in *out when alerts are disabled (nothing is counted). */
int eg_alert_counts_new(const eg_config_t *cfg, int nworkers, eg_alert_counts_t **out);
void eg_alert_counts_free(eg_alert_counts_t *c);

static inline void eg_alert_bump(_Atomic uint64_t *p)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* One response (a worker, into its own block): route index or -1 for none;
 * status 0 (the client left before an answer) counts as 499. */
static inline void eg_alert_count(eg_alert_counts_t *c, int worker, long route, int status)
{
    if (!c || worker < 0 || worker >= c->nworkers) return;
    if (status == 0) status = 499;
    if (status < 100 || status > 599) return;
    size_t scope = route < 0 || (size_t)route >= c->nscopes - 1 ? c->nscopes - 1 : (size_t)route;
    _Atomic uint64_t *p = c->cells + (size_t)worker * c->stride + scope * c->nslots;
    eg_alert_bump(p);
    eg_alert_bump(p + status / 100);
    if (c->slot_of[status]) eg_alert_bump(p + c->slot_of[status]);
}

typedef struct eg_alerts_s eg_alerts_t;

/* Starts the evaluator on loop (the main thread's) and the webhook thread. */
int eg_alerts_start(uv_loop_t *loop, eg_server_t *srv, eg_alerts_t **out);
/* Stops the evaluator (its timer's handle closes on the loop). */
void eg_alerts_stop(eg_alerts_t *a);
/* Stops the webhook thread (a delivery under way ends by its timeout) and
 * frees everything, once the loop has run the close callbacks. */
void eg_alerts_free(eg_alerts_t *a);

/* 1 for the admin paths this module answers (/alerts). */
int eg_alerts_is_path(const char *target, size_t len);
/* The answer to an admin request for /alerts: a malloc'd complete HTTP
 * response, or NULL when out of memory. */
char *eg_alerts_admin(eg_alerts_t *a, const eg_config_t *cfg, const eg_http1_msg_t *req,
                      const char *reqid, size_t *outlen);

/* The admin token check shared by /alerts and the dashboard: 1 when no
 * token is configured, or the request carries it as "Authorization:
 * Bearer <token>" or as the password of "Authorization: Basic" (what a
 * browser sends after its login prompt). */
int eg_alerts_token_ok(const eg_config_t *cfg, const eg_http1_msg_t *req);

/* The dashboard's session: a browser that opened the page with the token
 * gets a cookie "errgate_admin=<expiry>.<hex HMAC-SHA256 keyed with the
 * token's SHA-256 over the expiry>" (12 h, HttpOnly, SameSite=Strict), so
 * that the page's own requests (/alerts) pass without the token in
 * script. eg_alerts_token_ok accepts it; the key API (/keys) does not.
 * Writes the Set-Cookie line ("Set-Cookie: ...\r\n") into out (256 bytes);
 * "" when no token is configured. */
void eg_alerts_session_cookie(const eg_config_t *cfg, long long now, char *out, size_t cap);

/* The /alerts document (also the dashboard's), a new reference; history 0
 * leaves the hour's history out (/alerts?history=0). */
json_t *eg_alerts_json(eg_alerts_t *a, int history);

#endif

/* usage.c - the usage stage: GET metering.usage_path answers the calling
 * key's usage (docs/metering.md).
 *
 * The path is served under the route that covers it, so that route's
 * authentication, scopes, allow_ips and rate limits apply first (the stage
 * runs after traffic); config.c refuses a usage_path no authenticated route
 * covers. The answer is the caller's totals per event type for a period
 * (`from`, `to`: dates or RFC 3339 times, UTC; default the current quota
 * period), optionally `group_by=day|route`, and each quota that applies to
 * the key with its limit, use and what remains. Bad parameters are 400s
 * in the route's dialect (invalid_parameter_value, invalid_time_range).
 *
 * Reading waits on disk or Redis, so it runs on libuv's thread pool while
 * the request waits (eg_req_wait): SQLite first commits what this process
 * recorded (a caller sees its own last requests), then reads `usage`;
 * Redis is read with a blocking connection of the work's own. The work
 * holds copies of everything it needs: a request that goes away meanwhile
 * (and the configuration it held) is not touched.
 */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"
#include "strbuild.h"
#include "usage_redis.h"
#include "usage_report.h"

#define MAXQ 8

typedef struct {
    char scope[8];  /* "plan" | "route" */
    char name[200]; /* the plan's name or the route's path */
    char subject[420], period[16];
    int day;
    long long limit, used;
    time_t end;
} quota_t;

typedef struct {
    uv_work_t work;
    eg_req_t *c;
    eg_usage_t *u;     /* SQLite: commit before reading */
    eg_store_t *store; /* SQLite quota counters */
    int redis;
    eg_redis_target_t tgt;
    char host[256], prefix[72];
    char *path;
    uint64_t busy_ms;
    char subject[200];
    eg_usage_query_t q;
    quota_t quotas[MAXQ];
    size_t nquotas;
    eg_usage_row_t *rows;
    size_t n;
    int rc;
    char err[256];
} pending_t;

static void bad_param(eg_req_t *c, const char *code, const char *param, const char *message)
{
    eg_error_t *e = eg_req_error(c, code);
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, message);
        eg_error_set_detail(e, "parameter", json_string(param));
    }
    eg_req_send_error(c, e, NULL, message);
}

/* The period containing now: its text as traffic.c keys quota counters,
 * its start and end. */
static void period_at(int day, time_t now, char *text, size_t cap, time_t *start, time_t *end)
{
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(text, cap, day ? "%Y-%m-%d" : "%Y-%m", &tm);
    int64_t s = 0, e = 0;
    eg_usage_period_at(day, (int64_t)now, &s, &e);
    *start = (time_t)s;
    *end = (time_t)e;
}

static void add_quota(pending_t *pd, const eg_quota_cfg_t *q, const char *scope, const char *name,
                      const char *key_subject, time_t now)
{
    if (pd->nquotas == MAXQ) return;
    quota_t *x = &pd->quotas[pd->nquotas++];
    time_t start;
    snprintf(x->scope, sizeof(x->scope), "%s", scope);
    snprintf(x->name, sizeof(x->name), "%s", name);
    /* traffic.c's counter: "<q|p>:<route path|plan>|<key id or consumer>" */
    snprintf(x->subject, sizeof(x->subject), "%s:%s|%s", scope[0] == 'p' ? "p" : "q", name,
             key_subject);
    x->day = q->period == EG_PERIOD_DAY;
    x->limit = q->limit;
    period_at(x->day, now, x->period, sizeof(x->period), &start, &x->end);
}

static void work(uv_work_t *w)
{
    pending_t *pd = w->data;
    /* this process's events not committed yet: in, so a caller sees its last requests */
    if (pd->u) eg_usage_sync(pd->u, 2000);
    pd->rc = pd->redis ? eg_usage_redis_query(&pd->tgt, &pd->q, &pd->rows, &pd->n, pd->err,
                                              sizeof(pd->err))
                       : eg_usage_query(pd->path, pd->busy_ms, &pd->q, &pd->rows, &pd->n, pd->err,
                                        sizeof(pd->err));
    for (size_t i = 0; pd->rc == EG_OK && i < pd->nquotas; i++) {
        quota_t *x = &pd->quotas[i];
        if (pd->redis)
            pd->rc = eg_usage_redis_quota(&pd->tgt, x->subject, x->period, &x->used, pd->err,
                                          sizeof(pd->err));
        else if (pd->store &&
                 eg_store_quota_get(pd->store, x->subject, x->period, &x->used) != EG_OK) {
            snprintf(pd->err, sizeof(pd->err), "%s", eg_store_error(pd->store));
            pd->rc = EG_EIO;
        }
    }
}

static void pending_free(pending_t *pd)
{
    eg_usage_rows_free(pd->rows, pd->n);
    free(pd->path);
    free(pd);
}

static void answer(eg_req_t *c, pending_t *pd)
{
    json_t *doc = eg_usage_report_json(pd->rows, pd->n, pd->q.from, pd->q.to, pd->q.group, 1);
    if (doc) {
        json_object_set_new(doc, "subject", json_string(pd->subject));
        if (c->access.p.key_id[0])
            json_object_set_new(doc, "key_id", json_string(c->access.p.key_id));
        json_t *qs = json_array();
        for (size_t i = 0; qs && i < pd->nquotas; i++) {
            const quota_t *x = &pd->quotas[i];
            char reset[32];
            eg_usage_time_text((int64_t)x->end, reset, sizeof(reset));
            long long left = x->limit > x->used ? x->limit - x->used : 0;
            json_array_append_new(qs, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "scope",
                                                x->scope, "name", x->name, "period",
                                                x->day ? "day" : "month", "limit",
                                                (json_int_t)x->limit, "used", (json_int_t)x->used,
                                                "remaining", (json_int_t)left, "reset", reset));
        }
        json_object_set_new(doc, "quotas", qs ? qs : json_array());
    }
    char *body = doc ? json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
    json_decref(doc);
    eg_req_send_json(c, body, "usage: out of memory");
}

static void work_done(uv_work_t *w, int status)
{
    pending_t *pd = w->data;
    eg_req_t *c = pd->c;
    if (!eg_req_wait_over(c)) { /* the client left */
        pending_free(pd);
        return;
    }
    eg_req_wake(c);
    if (status != 0 || pd->rc != EG_OK) {
        eg_error_t *e = eg_req_error(c, "service_unavailable");
        if (e) {
            eg_error_set(e, EG_S_MESSAGE, "Usage is temporarily unavailable.");
            eg_error_set_retry_after(e, 1);
        }
        eg_req_send_error(c, e, NULL, pd->err[0] ? pd->err : "usage: reading failed");
    } else {
        answer(c, pd);
    }
    pending_free(pd);
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    size_t up = strlen(cfg->usage_path);
    if (c->path_len != up || memcmp(c->path, cfg->usage_path, up) != 0) return EG_STAGE_CONTINUE;
    if (!(c->method_bit & (EG_M_GET | EG_M_HEAD))) {
        eg_error_t *e = eg_req_error(c, "method_not_allowed");
        if (e) eg_error_setf(e, EG_S_MESSAGE, "%s answers GET and HEAD only.", cfg->usage_path);
        eg_req_send_error(c, e, "Allow: GET, HEAD\r\n", "usage: method");
        return EG_STAGE_ANSWERED;
    }
    pending_t *pd = calloc(1, sizeof(*pd));
    if (!pd) {
        eg_req_send_simple(c, "internal_error", NULL, "usage: out of memory");
        return EG_STAGE_ANSWERED;
    }
    /* the caller: the meter stage's subject */
    const eg_principal_t *p = &c->access.p;
    eg_sb_t b = eg_sb(pd->subject, sizeof(pd->subject));
    if (c->access.authenticated && p->key_id[0]) {
        EG_SB_LIT(&b, "k:");
        eg_sb_str(&b, p->key_id);
    } else if (c->access.authenticated) {
        EG_SB_LIT(&b, "u:");
        eg_sb_str(&b, p->consumer);
    } else {
        EG_SB_LIT(&b, "ip:");
        eg_sb_str(&b, c->client_ip);
    }
    pd->q.subject = pd->subject;
    /* the quotas of the key: its plan's, and every route's */
    time_t now = time(NULL) + (time_t)eg_server_clock_offset(c->w->srv);
    if (c->access.authenticated) {
        const char *ks = p->key_id[0] ? p->key_id : p->consumer;
        const eg_plan_cfg_t *plan = eg_config_plan(cfg, p->plan);
        if (plan && plan->quota.limit) add_quota(pd, &plan->quota, "plan", plan->name, ks, now);
        for (size_t i = 0; i < cfg->nroutes; i++) {
            const eg_route_cfg_t *r = &cfg->routes[i];
            if (r->quota.limit && !r->borrowed && r->auth != EG_AUTHN_NONE)
                add_quota(pd, &r->quota, "route", r->path, ks, now);
        }
    }
    /* the period: the current one of the key's plan quota (the one that
     * spans its routes), else the calendar month */
    time_t ps, pe;
    char tmp[16];
    int plan_day = pd->nquotas && pd->quotas[0].scope[0] == 'p' && pd->quotas[0].day;
    period_at(plan_day, now, tmp, sizeof(tmp), &ps, &pe);
    pd->q.from = ps;
    pd->q.to = pe;
    size_t tn;
    const char *t = eg_req_origin_form(c, &tn);
    const char *qm = memchr(t, '?', tn);
    const char *qs = qm ? qm + 1 : "";
    size_t qn = qm ? tn - (size_t)(qm + 1 - t) : 0;
    char v[80];
    int got;
    const char *msg = NULL, *param = NULL, *code = "invalid_parameter_value";
    if ((got = eg_usage_query_param(qs, qn, "from", v, sizeof(v))) != 0 &&
        (got < 0 || eg_usage_parse_time(v, 0, &pd->q.from) != EG_OK)) {
        param = "from";
        msg = "from must be a date like 2026-12-01 or a UTC time like 2026-12-01T10:00:00Z.";
    } else if ((got = eg_usage_query_param(qs, qn, "to", v, sizeof(v))) != 0 &&
               (got < 0 || eg_usage_parse_time(v, 1, &pd->q.to) != EG_OK)) {
        param = "to";
        msg = "to must be a date like 2026-12-31 or a UTC time like 2026-12-31T10:00:00Z.";
    } else if ((got = eg_usage_query_param(qs, qn, "group_by", v, sizeof(v))) != 0 &&
               (got < 0 || eg_usage_group_parse(v, &pd->q.group) != EG_OK || !v[0])) {
        param = "group_by";
        msg = "group_by must be day or route.";
    } else if (pd->q.from >= pd->q.to) {
        param = "from";
        code = "invalid_time_range";
        msg = "from must come before to.";
    }
    if (msg) {
        free(pd);
        bad_param(c, code, param, msg);
        return EG_STAGE_ANSWERED;
    }
    pd->redis = cfg->has_redis;
    if (pd->redis) {
        snprintf(pd->host, sizeof(pd->host), "%s", cfg->redis.host);
        snprintf(pd->prefix, sizeof(pd->prefix), "%s", cfg->redis_prefix);
        pd->tgt = (eg_redis_target_t){pd->host, cfg->redis.port, cfg->redis_db,
                                      cfg->redis_timeout_ms < 1000 ? 1000 : cfg->redis_timeout_ms,
                                      pd->prefix};
    } else {
        pd->u = eg_server_usage(c->w->srv);
        pd->store = eg_server_store(c->w->srv);
        pd->busy_ms = cfg->store_busy_timeout_ms;
        if (cfg->store_backend != EG_STORE_SQLITE || !(pd->path = strdup(cfg->store_path))) {
            free(pd);
            eg_req_send_simple(c, "service_unavailable",
                               "Usage is kept in the SQLite store or Redis.",
                               "usage: no usage store");
            return EG_STAGE_ANSWERED;
        }
    }
    pd->c = c;
    pd->work.data = pd;
    eg_req_wait(c, pd, 0, NULL); /* bounded by the store's busy timeout, Redis's timeout */
    if (uv_queue_work(&c->w->loop, &pd->work, work, work_done) != 0) {
        eg_req_wait_over(c);
        eg_req_wake(c);
        pending_free(pd);
        eg_req_send_simple(c, "internal_error", NULL, "usage: cannot queue the work");
        return EG_STAGE_ANSWERED;
    }
    return EG_STAGE_SUSPENDED;
}

/* Bound to the routes that can reach usage_path: it is answered there. */
static int applies(const eg_config_t *cfg, const eg_route_cfg_t *r)
{
    if (!cfg->usage_path || !r) return 0;
    size_t rl = strlen(r->path);
    return strcmp(r->path, cfg->usage_path) == 0 ||
           (r->prefix && strncmp(cfg->usage_path, r->path, rl) == 0);
}

const eg_stage_t eg_stage_usage = {.name = "usage", .on_request = on_request, .applies = applies};

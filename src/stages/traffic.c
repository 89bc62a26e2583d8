/* traffic.c - the traffic stage: rate limits (GCRA), concurrency slots,
 * quotas and credits, from the route and the key's plan. Without Redis the
 * memory limiter decides at once and quota/credit charges go to the store
 * (SQLite on the thread pool: the request is suspended); with Redis one
 * script decides everything atomically for all nodes. The rate-limit
 * headers it computes ride on every response of the request (r->rl_hdrs);
 * the slots it took are given back in on_done. See docs/traffic.md. */
#include "metrics.h"
#include "stage.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "limiter.h"
#include "redis.h"
#include "redis_link.h"
#include "store.h"
#include "strbuild.h"
#include "errgate/units.h"

static void redis_release(eg_redis_t *r, const char *prefix, const char *key, const char *token);

static void release_slots(eg_req_t *c)
{
    eg_redis_t *r = eg_redis_link_current(c->w->redis_link);
    if (c->slots_redis && c->nslots && r && c->gw) {
        for (int i = 0; i < c->nslots; i++)
            redis_release(r, c->gw->cfg->redis_prefix, c->slots[i], c->slot_token);
    } else if (!c->slots_redis) {
        eg_limiter_t *l = eg_server_limiter(c->w->srv);
        for (int i = 0; i < c->nslots; i++) eg_limiter_release(l, c->slots[i]);
    }
    c->nslots = 0;
    c->slots_redis = 0;
}

/* Wall-clock time for rate limits, quota periods and their headers: Unix
 * time plus the server's clock offset (ERRGATE_CLOCK_OFFSET, for tests of
 * period rollover; 0 otherwise). */
static uint64_t wall_us(const eg_req_t *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)((long long)ts.tv_sec + eg_server_clock_offset(c->w->srv)) * 1000000u +
           (uint64_t)ts.tv_nsec / 1000u;
}

static time_t wall_s(const eg_req_t *c)
{
    return time(NULL) + (time_t)eg_server_clock_offset(c->w->srv);
}

/* The seeds' spelling of a window: "1 minute", "30 seconds". */
static void window_text(uint64_t ms, char *out, size_t cap)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } u[] = {{86400000, "day"}, {3600000, "hour"}, {60000, "minute"}, {1000, "second"}, {1, "millisecond"}};
    for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
        if (ms % u[i].ms == 0) {
            unsigned long long n = ms / u[i].ms;
            snprintf(out, cap, "%llu %s%s", n, u[i].unit, n == 1 ? "" : "s");
            return;
        }
    }
}

/* X-RateLimit-* and the IETF fields for the reported limit, and the
 * policies of every limit that applied. */
static void rate_headers(eg_req_t *c, const eg_rate_limit_cfg_t *const *lims, const eg_gcra_result_t *res,
                         size_t n, size_t rep)
{
    const eg_config_t *cfg = c->gw->cfg;
    eg_sb_t b = eg_sb(c->rl_hdrs, sizeof(c->rl_hdrs));
    unsigned long long reset = (res[rep].reset_ms + 999) / 1000;
    if (cfg->rl_legacy_headers) {
        EG_SB_LIT(&b, "X-RateLimit-Limit: ");
        eg_sb_u64(&b, res[rep].limit);
        EG_SB_LIT(&b, "\r\nX-RateLimit-Remaining: ");
        eg_sb_u64(&b, res[rep].remaining);
        EG_SB_LIT(&b, "\r\nX-RateLimit-Reset: ");
        eg_sb_u64(&b, cfg->rl_reset_unix ? (unsigned long long)wall_s(c) + reset : reset);
        EG_SB_LIT(&b, "\r\n");
        if (b.over) b = eg_sb(c->rl_hdrs, sizeof(c->rl_hdrs));
    }
    if (cfg->rl_ietf_headers) {
        size_t start = b.len;
        EG_SB_LIT(&b, "RateLimit-Policy: ");
        /* exactly the route's limits (no plan's, none skipped): made at load */
        const eg_route_cfg_t *r = c->route;
        int whole = r && r->rl_policy && n == r->nlimits;
        for (size_t i = 0; whole && i < n; i++) whole = lims[i] == &r->limits[i];
        if (whole) eg_sb_mem(&b, r->rl_policy, r->rl_policy_len);
        for (size_t i = 0; !whole && i < n; i++) eg_rate_policy_item(&b, lims[i], i == 0);
        EG_SB_LIT(&b, "\r\nRateLimit: \"");
        eg_sb_str(&b, lims[rep]->name);
        EG_SB_LIT(&b, "\";r=");
        eg_sb_u64(&b, res[rep].remaining);
        EG_SB_LIT(&b, ";t=");
        eg_sb_u64(&b, reset);
        EG_SB_LIT(&b, "\r\n");
        if (b.over) { /* too many policies to say: leave the IETF fields out */
            b.over = 0;
            b.len = start;
            c->rl_hdrs[start] = '\0';
        }
    }
}

/* ------------------------------------------------------------ traffic policy */

/* Everything traffic policy asks of one request, gathered once for either
 * backend: the memory limiter and the store, or one Redis script. */
typedef struct {
    size_t nrates, nslots, ncharges;
    const eg_rate_limit_cfg_t *which[16];
    uint32_t slot_max[2];
    eg_charge_t charges[3];
    const eg_quota_cfg_t *quota[3]; /* the quota behind each charge, NULL for credits */
    time_t period_end[3];
    /* in the order of need: a decision in Redis keeps what comes before
     * slot_keys and its slot keys (its keys and limits went out with the
     * command; which[] has the limits), under 1 KB without slots, so
     * glibc's per-thread cache serves it; a charge on the store all but
     * the rate keys (policy_copy) */
    char slot_keys[2][320];
    eg_limit_req_t rates[16]; /* the memory limiter's */
    char subjects[3][400];
    char periods[3][16];
    char rate_keys[16][320];
} policy_t;

/* The quota with the least left, on a successful response
 * (rate_limits.quota_headers): X-Quota-Limit / -Remaining / -Reset (names
 * configurable; Reset in seconds, or Unix time with rate_limits.reset:
 * unix), and/or a quota policy in the IETF fields (draft-ietf-httpapi-
 * ratelimit-headers: `"quota-month";q=1000;w=2678400;qu="request"` and
 * `"quota-month";r=42;t=86400`, lists a field may split across lines).
 * value_before 0: each charge's value is the usage after this request
 * (memory, SQLite), or before it (Redis: the script's GET). */
static void quota_headers(eg_req_t *c, const policy_t *pol, int value_before)
{
    const eg_config_t *cfg = c->gw->cfg;
    if (!cfg->quota_legacy_headers && !cfg->quota_ietf_headers) return;
    size_t best = pol->ncharges;
    long long left = 0;
    for (size_t i = 0; i < pol->ncharges; i++) {
        const eg_charge_t *ch = &pol->charges[i];
        if (ch->kind != EG_CHARGE_QUOTA) continue;
        long long used = ch->value + (value_before ? ch->cost : 0);
        long long l = ch->limit > used ? ch->limit - used : 0;
        if (best == pol->ncharges || l < left) {
            best = i;
            left = l;
        }
    }
    if (best == pol->ncharges) return;
    const eg_charge_t *ch = &pol->charges[best];
    const eg_quota_cfg_t *q = pol->quota[best];
    time_t now = wall_s(c), end = pol->period_end[best];
    unsigned long long reset = end > now ? (unsigned long long)(end - now) : 0;
    size_t start = strlen(c->rl_hdrs);
    eg_sb_t b = eg_sb(c->rl_hdrs + start, sizeof(c->rl_hdrs) - start);
    if (cfg->quota_legacy_headers) {
        eg_sb_str(&b, cfg->quota_hdr_limit);
        EG_SB_LIT(&b, ": ");
        eg_sb_u64(&b, (uint64_t)ch->limit);
        EG_SB_LIT(&b, "\r\n");
        eg_sb_str(&b, cfg->quota_hdr_remaining);
        EG_SB_LIT(&b, ": ");
        eg_sb_u64(&b, (uint64_t)left);
        EG_SB_LIT(&b, "\r\n");
        eg_sb_str(&b, cfg->quota_hdr_reset);
        EG_SB_LIT(&b, ": ");
        eg_sb_u64(&b, cfg->rl_reset_unix ? (unsigned long long)end : reset);
        EG_SB_LIT(&b, "\r\n");
    }
    if (cfg->quota_ietf_headers) {
        /* the window: the period's length (a calendar month's own) */
        const char *name = q->period == EG_PERIOD_DAY ? "quota-day" : "quota-month";
        long long window = q->period == EG_PERIOD_DAY ? 86400 : 0;
        if (!window) {
            struct tm tm;
            time_t last = end - 1;
            gmtime_r(&last, &tm);
            window = (long long)tm.tm_mday * 86400;
        }
        EG_SB_LIT(&b, "RateLimit-Policy: \"");
        eg_sb_str(&b, name);
        EG_SB_LIT(&b, "\";q=");
        eg_sb_u64(&b, (uint64_t)ch->limit);
        EG_SB_LIT(&b, ";w=");
        eg_sb_u64(&b, (uint64_t)window);
        EG_SB_LIT(&b, ";qu=\"request\"\r\nRateLimit: \"");
        eg_sb_str(&b, name);
        EG_SB_LIT(&b, "\";r=");
        eg_sb_u64(&b, (uint64_t)left);
        EG_SB_LIT(&b, ";t=");
        eg_sb_u64(&b, reset);
        EG_SB_LIT(&b, "\r\n");
    }
    if (b.over) c->rl_hdrs[start] = '\0'; /* no room left: the rate limits' fields stay whole */
}

/* Remembers a slot the request now holds (policy keys and c->slots are the
 * same size). */
static void hold_slot(eg_req_t *c, const char *key)
{
    _Static_assert(sizeof(c->slots[0]) == sizeof(((policy_t *)0)->slot_keys[0]), "slot key sizes");
    memcpy(c->slots[c->nslots++], key, strlen(key) + 1);
}

/* The work a request waits for off the loop (C_WAIT): the store's charge
 * on the thread pool, or the Redis script. */
typedef struct {
    uv_work_t work;
    eg_req_t *c;          /* NULL once the request stopped waiting (timeout) */
    eg_store_t *store;
    int redis;
    struct eg_redis_s *r; /* the worker's connection the script went out on */
    char prefix[72];
    char token[40]; /* the member its slots are held under */
    int rc;
    uint64_t t0; /* when the store or Redis work began (metrics: store latency) */
    policy_t pol;
} pending_t;

static const char *subject_of(const eg_req_t *c)
{
    return c->access.p.key_id[0] ? c->access.p.key_id : c->access.p.consumer;
}

/* "2026-11" or "2026-11-25", and the Unix time the period ends. The last
 * answer of each kind is kept per thread: gmtime, strftime and timegm cost
 * more than a quota decision in memory, and a period lasts a day at least. */
static time_t period_of(eg_period_t p, time_t now, char *out, size_t cap)
{
    static _Thread_local struct {
        time_t from, until;
        char text[16];
    } last[2];
    int k = p == EG_PERIOD_DAY;
    if (now >= last[k].from && now < last[k].until && cap >= sizeof(last[k].text)) {
        memcpy(out, last[k].text, sizeof(last[k].text));
        return last[k].until;
    }
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, cap, p == EG_PERIOD_DAY ? "%Y-%m-%d" : "%Y-%m", &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (p == EG_PERIOD_DAY) {
        tm.tm_mday++;
    } else {
        tm.tm_mday = 1;
        tm.tm_mon++;
    }
    time_t end = timegm(&tm);
    if (cap >= sizeof(last[k].text) && strlen(out) < sizeof(last[k].text)) {
        /* the period's start: the same fields, one day or month back */
        if (p == EG_PERIOD_DAY) tm.tm_mday--;
        else tm.tm_mon--;
        last[k].from = timegm(&tm);
        last[k].until = end;
        memset(last[k].text, 0, sizeof(last[k].text));
        memcpy(last[k].text, out, strlen(out));
    }
    return end;
}

static void add_quota(eg_req_t *c, policy_t *pol, const eg_quota_cfg_t *q, const char *scope, const char *name,
                      time_t now)
{
    size_t i = pol->ncharges++;
    pol->period_end[i] = period_of(q->period, now, pol->periods[i], sizeof(pol->periods[0]));
    eg_sb_t b = eg_sb(pol->subjects[i], sizeof(pol->subjects[0])); /* "<scope>:<name>|<subject>" */
    eg_sb_str(&b, scope);
    EG_SB_LIT(&b, ":");
    eg_sb_str(&b, name);
    EG_SB_LIT(&b, "|");
    eg_sb_str(&b, subject_of(c));
    if (b.over) snprintf(pol->subjects[i], sizeof(pol->subjects[0]), "%s:%s|%s", scope, name, subject_of(c));
    pol->charges[i] = (eg_charge_t){EG_CHARGE_QUOTA, pol->subjects[i], pol->periods[i], q->limit, 1, 0, 0};
    pol->quota[i] = q;
}

/* Gathers the route's and the plan's (the caller looked it up: NULL
 * without a key) limits, slots, quotas and credits. */
static void collect_policy(eg_req_t *c, const eg_plan_cfg_t *plan, policy_t *pol)
{
    const eg_route_cfg_t *r = c->route;
    const eg_principal_t *p = &c->access.p;
    int authed = c->access.authenticated;
    pol->nrates = pol->nslots = pol->ncharges = 0;
    /* a route with optional auth: a caller with a key gets the key's limits,
     * an anonymous one the address's (flat-snake's 100/min and 10/min) */
    int keyed = 0;
    for (size_t i = 0; r->auth_optional && authed && i < r->nlimits; i++) keyed |= r->limits[i].by == EG_RL_BY_KEY;
    for (size_t i = 0; i < r->nlimits && pol->nrates < 16; i++) {
        const eg_rate_limit_cfg_t *l = &r->limits[i];
        if (l->by == EG_RL_BY_KEY && !authed) continue; /* anonymous callers: the by-ip limits apply */
        if (l->by == EG_RL_BY_IP && keyed) continue;
        size_t n = pol->nrates++;
        eg_sb_t b = eg_sb(pol->rate_keys[n], sizeof(pol->rate_keys[0])); /* "R<path>#<i>|i:<ip>" */
        eg_sb_mem(&b, "R", 1);
        eg_sb_str(&b, r->scope_path ? r->scope_path : r->path); /* an operation counts with its route */
        eg_sb_mem(&b, "#", 1);
        eg_sb_u64(&b, i);
        if (l->by == EG_RL_BY_KEY) {
            EG_SB_LIT(&b, "|k:");
            eg_sb_str(&b, p->consumer);
        } else if (l->by == EG_RL_BY_IP) {
            EG_SB_LIT(&b, "|i:");
            eg_sb_str(&b, c->client_ip);
        } else {
            EG_SB_LIT(&b, "|-");
        }
        pol->rates[n] = (eg_limit_req_t){pol->rate_keys[n], l->gcra, 1};
        pol->which[n] = l;
    }
    for (size_t i = 0; plan && i < plan->nlimits && pol->nrates < 16; i++) {
        size_t n = pol->nrates++;
        snprintf(pol->rate_keys[n], sizeof(pol->rate_keys[0]), "P%s#%zu|k:%s", plan->name, i, p->consumer);
        pol->rates[n] = (eg_limit_req_t){pol->rate_keys[n], plan->limits[i].gcra, 1};
        pol->which[n] = &plan->limits[i];
    }
    /* concurrency: the route's, per consumer (or address), and the plan's, per key */
    if (r->concurrency) {
        eg_sb_t b = eg_sb(pol->slot_keys[pol->nslots], sizeof(pol->slot_keys[0])); /* "C<path>|<who>" */
        eg_sb_mem(&b, "C", 1);
        eg_sb_str(&b, r->scope_path ? r->scope_path : r->path);
        eg_sb_mem(&b, "|", 1);
        eg_sb_str(&b, authed ? p->consumer : c->client_ip);
        pol->slot_max[pol->nslots++] = r->concurrency;
    }
    if (plan && plan->concurrency) {
        snprintf(pol->slot_keys[pol->nslots], sizeof(pol->slot_keys[0]), "CP%s|%s", plan->name, p->consumer);
        pol->slot_max[pol->nslots++] = plan->concurrency;
    }
    if (!authed) return; /* quotas and credits are per key */
    time_t now = wall_s(c);
    if (r->quota.limit) add_quota(c, pol, &r->quota, "q", r->scope_path ? r->scope_path : r->path, now);
    if (plan && plan->quota.limit) add_quota(c, pol, &plan->quota, "p", plan->name, now);
    /* the route's and the plan's costs are one charge on the one balance */
    long long cost = r->credit_cost + (plan ? plan->credit_cost : 0);
    if (cost) {
        size_t i = pol->ncharges++;
        snprintf(pol->subjects[i], sizeof(pol->subjects[0]), "%s", subject_of(c));
        pol->charges[i] = (eg_charge_t){EG_CHARGE_CREDITS, pol->subjects[i], NULL, 0, cost, 0, 0};
        pol->quota[i] = NULL;
    }
}

/* What of a policy outlives on_request (the pending record's copy): for
 * Redis, up to its slot keys (its keys and numbers went out with the
 * command, the reply is read against the rest); for the store, up to the
 * charges' subjects and periods. Copying the whole 8 KB cost more than the
 * rest of the stage's work. */
static size_t policy_kept(const policy_t *p, int redis)
{
    return redis ? offsetof(policy_t, slot_keys) + p->nslots * sizeof(p->slot_keys[0])
                 : offsetof(policy_t, rate_keys);
}

/* A policy's keys point into its own arrays: a copy points into its own
 * (NULL for what it did not keep). */
static void policy_copy(policy_t *dst, const policy_t *src, int redis)
{
    memcpy(dst, src, policy_kept(src, redis));
    for (size_t i = 0; !redis && i < dst->nrates; i++) dst->rates[i].key = NULL;
    for (size_t i = 0; i < dst->ncharges; i++) {
        dst->charges[i].subject = redis ? NULL : dst->subjects[i];
        if (dst->charges[i].period) dst->charges[i].period = redis ? NULL : dst->periods[i];
    }
}

static void refuse_rate(eg_req_t *c, const policy_t *pol, const eg_gcra_result_t *res, size_t rep)
{
    const eg_rate_limit_cfg_t *l = pol->which[rep];
    eg_error_t *e = eg_req_error(c, "rate_limit_exceeded");
    if (e) {
        char win[40], reset[32];
        window_text(l->gcra.window_ms, win, sizeof(win));
        time_t rt = wall_s(c) + (time_t)((res[rep].reset_ms + 999) / 1000);
        struct tm tm;
        gmtime_r(&rt, &tm);
        strftime(reset, sizeof(reset), "%Y-%m-%dT%H:%M:%SZ", &tm);
        long long secs = (long long)((res[rep].retry_after_ms + 999) / 1000);
        eg_error_set_retry_after(e, secs);
        /* in the words of the seeds (jsonapi's "Try again in 15 seconds.") */
        eg_error_setf(e, EG_S_MESSAGE, "Rate limit exceeded. Try again in %lld second%s.", secs, secs == 1 ? "" : "s");
        eg_error_set_detail(e, "limit", json_integer(res[rep].limit));
        eg_error_set_detail(e, "window", json_string(win));
        eg_error_set_detail(e, "reset_time", json_string(reset));
        eg_error_set_detail(e, "policy", json_string(l->name));
    }
    eg_metrics_refusal(c->gw->metrics, c->w->id, c->route, EG_MX_REF_RATE, l, NULL);
    eg_req_send_error(c, e, NULL, l->name);
}

/* slot: the index of the refusing slot in the policy (the route's comes
 * first when it has one, then the plan's). */
static void refuse_slot(eg_req_t *c, size_t slot, uint32_t max, uint32_t active)
{
    const eg_plan_cfg_t *plan = slot == 1 || !c->route->concurrency
                                    ? eg_config_plan(c->gw->cfg, c->access.p.plan)
                                    : NULL;
    eg_metrics_refusal(c->gw->metrics, c->w->id, c->route, EG_MX_REF_CONCURRENCY, NULL, plan);
    eg_error_t *e = eg_req_error(c, "concurrent_limit");
    if (e) {
        eg_error_setf(e, EG_S_MESSAGE, "Too many requests in flight: at most %u at a time.", max);
        eg_error_set_detail(e, "limit", json_integer(max));
        eg_error_set_detail(e, "active", json_integer(active));
        eg_error_set_retry_after(e, 1);
    }
    eg_req_send_error(c, e, NULL, "concurrency limit");
}

static void refuse_charge(eg_req_t *c, const policy_t *pol)
{
    size_t i = 0;
    while (i < pol->ncharges && pol->charges[i].ok) i++;
    if (i == pol->ncharges) i = 0;
    const eg_charge_t *it = &pol->charges[i];
    eg_error_t *e;
    if (it->kind == EG_CHARGE_QUOTA) {
        const eg_quota_cfg_t *q = pol->quota[i];
        eg_metrics_refusal(c->gw->metrics, c->w->id, c->route, EG_MX_REF_QUOTA, NULL,
                           q == &c->route->quota ? NULL : eg_config_plan(c->gw->cfg, c->access.p.plan));
        char reset[32];
        time_t end = pol->period_end[i];
        struct tm tm;
        gmtime_r(&end, &tm);
        strftime(reset, sizeof(reset), "%Y-%m-%dT%H:%M:%SZ", &tm);
        if ((e = eg_req_error(c, "quota_exceeded"))) {
            eg_error_set_detail(e, "current_usage", json_integer(it->value));
            eg_error_set_detail(e, "quota_limit", json_integer(it->limit));
            eg_error_set_detail(e, "quota_period", json_string(q->period == EG_PERIOD_DAY ? "daily" : "monthly"));
            eg_error_set_detail(e, "reset_date", json_string(reset));
            if (q->upgrade_url) eg_error_set_detail(e, "upgrade_url", json_string(q->upgrade_url));
            eg_error_set_retry_after(e, (long long)(end - wall_s(c)));
        }
        eg_req_send_error(c, e, NULL, "quota exhausted");
    } else {
        eg_metrics_refusal(c->gw->metrics, c->w->id, c->route, EG_MX_REF_CREDITS, NULL, NULL);
        if ((e = eg_req_error(c, "credits_depleted"))) {
            eg_error_set_detail(e, "remaining_credits", json_integer(it->value));
            eg_error_set_detail(e, "required_credits", json_integer(it->cost));
            const eg_plan_cfg_t *plan = eg_config_plan(c->gw->cfg, c->access.p.plan);
            const char *url = c->route->purchase_url ? c->route->purchase_url : plan ? plan->purchase_url : NULL;
            if (url) eg_error_set_detail(e, "purchase_url", json_string(url));
        }
        eg_req_send_error(c, e, NULL, "credits depleted");
    }
}

static void unavailable(eg_req_t *c, const char *why)
{
    eg_req_send_unavailable(c, "Usage accounting is temporarily unavailable.", why);
}

/* Leaves C_WAIT: on with the next stage, or (ok 0) to the answer that follows. */
static void resume(eg_req_t *c, int ok, int async)
{
    if (ok) eg_req_resume(c, async);
    else eg_req_wake(c);
}

static void redis_timed_out(eg_req_t *c);

/* The work returned. 1 when the request should go on with pd. */
static int wait_over(pending_t *pd)
{
    return pd->c ? eg_req_wait_over(pd->c) : 0; /* NULL: timed out earlier and already answered */
}

/* ---- memory limiter + store */

static int memory_rates_and_slots(eg_req_t *c, policy_t *pol)
{
    eg_limiter_t *lim = eg_server_limiter(c->w->srv);
    if (pol->nrates) {
        eg_gcra_result_t res[16];
        size_t rep = 0;
        int ok = eg_limiter_decide(lim, pol->rates, pol->nrates, wall_us(c), res, &rep);
        if (ok < 0) {
            eg_req_send_simple(c, "internal_error", NULL, "rate limiter out of memory");
            return 0;
        }
        rate_headers(c, pol->which, res, pol->nrates, rep);
        if (!ok) {
            refuse_rate(c, pol, res, rep);
            return 0;
        }
    }
    for (size_t i = 0; i < pol->nslots; i++) {
        uint32_t active = 0;
        int got = eg_limiter_acquire(lim, pol->slot_keys[i], pol->slot_max[i], &active);
        if (got == 1) {
            hold_slot(c, pol->slot_keys[i]);
            continue;
        }
        release_slots(c);
        if (got < 0) eg_req_send_simple(c, "internal_error", NULL, "rate limiter out of memory");
        else refuse_slot(c, i, pol->slot_max[i], active);
        return 0;
    }
    return 1;
}

static void charge_work(uv_work_t *w)
{
    pending_t *pd = w->data;
    pd->rc = eg_store_charge(pd->store, pd->pol.charges, pd->pol.ncharges);
}

static void charge_answer(eg_req_t *c, pending_t *pd, int async)
{
    if (pd->rc == 1) {
        quota_headers(c, &pd->pol, 0);
        resume(c, 1, async);
    }
    else if (pd->rc == 0) {
        resume(c, 0, async);
        refuse_charge(c, &pd->pol);
    } else {
        resume(c, 0, async);
        unavailable(c, "store failed charging quota or credits");
    }
}

static void charge_done(uv_work_t *w, int status)
{
    pending_t *pd = w->data;
    if (wait_over(pd)) {
        if (status != 0) pd->rc = EG_EIO;
        eg_metrics_store(pd->c->gw->metrics, pd->c->w->id, EG_MX_STORE_SQLITE, EG_MX_OP_TRAFFIC,
                         uv_hrtime() - pd->t0, pd->rc >= 0);
        charge_answer(pd->c, pd, 1);
    }
    free(pd);
}

/* Counts the request against its quotas and takes its credits, all or
 * nothing. The memory store, and sqlite with group commits once the
 * counters are loaded, decide at once in memory (eg_store_charge_now);
 * otherwise the charge may wait for disk, another writer or the writer
 * thread's commit, so it runs on libuv's thread pool while the request
 * waits (C_WAIT) without holding up the loop. Takes pd. */
static void charge_start(eg_req_t *c, pending_t *pd)
{
    eg_store_t *store = eg_server_store(c->w->srv);
    if (!store) {
        free(pd);
        unavailable(c, "no store for quotas and credits");
        return;
    }
    pd->store = store;
    int now = eg_store_charge_now(store, pd->pol.charges, pd->pol.ncharges);
    if (now != EG_EAGAIN) {
        pd->rc = now;
        charge_answer(c, pd, 0);
        free(pd);
        return;
    }
    pd->c = c;
    pd->work.data = pd;
    pd->t0 = uv_hrtime();
    eg_req_wait(c, pd, 0, NULL); /* bounded by the store's busy timeout */
    if (uv_queue_work(&c->w->loop, &pd->work, charge_work, charge_done) != 0) {
        wait_over(pd);
        free(pd);
        resume(c, 0, 0);
        eg_req_send_simple(c, "internal_error", NULL, "cannot queue store work");
    }
}

/* ---- Redis: one script decides everything, atomically */

/* One script decides a batch of requests (redis_link.h: all the requests
 * a worker has waiting go in one EVALSHA), each atomically and in order.
 * KEYS: per group its rate buckets, slot sets, quota/credit counters.
 * ARGV: the number of groups, now_us (the batch's time); then per group
 * (requests with the same keys and arguments, redis_link.h) its count, its
 * policy, and with slots the token. A policy is one argument of numbers,
 * each a little-endian signed 64-bit integer (struct.unpack reads them
 * all at once; strtod and string.gmatch cost Redis ~3,500 instructions a
 * number): nrates nslots ncharges [slot_ttl_ms] {interval_us burst
 * cost}*nrates {max}*nslots {limit cost expire_at_ms}*ncharges
 * (expire_at_ms 0: a credit balance, else a quota; a credit's limit is
 * unused). Consecutive groups with the same policy (many subjects under
 * one limit) read it once, and Redis pays for each argument it hands the
 * script.
 *
 * The requests of a group are identical, so they are decided at once:
 * once one is refused, every one after it is too (a refusal changes
 * nothing), and the first k are admitted, k the least of what each key
 * allows (a bucket: (tolerance - (TAT - now)) / (interval * cost); a quota:
 * (limit - used) / cost; credits: balance / cost; a slot set: max - active;
 * the arithmetic is exact, every number below 2^53). Returns per group k,
 * then the state the group started from: per rate TAT - now (at least 0),
 * per slot the slots active, per charge the counter's value. From these the
 * gateway derives each request's own answer by its place in the group
 * (redis_done: what deciding them one after the other would give). A group
 * with slots is one request (its token is its own).
 *
 * A slot is a member of a sorted set scored by its expiry: a release that
 * never comes (a node that died) ends with the entry's own expiry, and a
 * release replayed late or twice removes nothing else.
 * Cheap on purpose, since every redis.call and every number converted
 * costs Redis more than the arithmetic (and each table it makes, more than
 * a line): a rate bucket or counter is read (GET) once a batch, decided on
 * in V, and what changed (M: true for a bucket, the sum for a counter) is
 * written once when the batch ends (one SET ... PX per bucket, one INCRBY per counter:
 * the script is atomic, so nobody sees the values in between); a quota's
 * expiry is set when its counter is made (INCRBY returned the change), not
 * on every request (a period's counter never goes down). Numbers go to
 * redis.call as strings made with %d: Redis turns a Lua number into text
 * with printf's %.17g, which cost more than the call itself. */
static const char admit_lua[] =
    "local call=redis.call local num=tonumber local K=KEYS local A=ARGV\n"
    "local ceil=math.ceil local floor=math.floor local fmt=string.format\n"
    "local now=num(A[2]) local nowms\n"
    "local V={} local M={} local E local out={} local o=0 local a=3 local kb=0 local lps,P\n"
    "for g=1,num(A[1]) do\n"
    "  local k=num(A[a]) local ps=A[a+1] a=a+2\n"
    "  if ps~=lps then P={struct.unpack('<'..string.rep('i8',#ps/8),ps)} lps=ps end\n"
    "  local nr,ns,nc=P[1],P[2],P[3] local p=4 local ttl,tok\n"
    "  if ns>0 then ttl=P[4] p=5 tok=A[a] a=a+1 if k>1 then k=1 end end\n"
    "  local p0=p o=o+1 local at=o\n"
    "  for i=1,nr do\n"
    "    local key=K[kb+i] local iv=P[p] local tol=iv*P[p+1] local d=iv*P[p+2] p=p+3\n"
    "    local t=V[key] if not t then t=num(call('GET',key) or '0') V[key]=t end\n"
    "    local rel=t-now if rel<0 then rel=0 end\n"
    "    o=o+1 out[o]=rel\n"
    "    if d>0 then local n=floor((tol-rel)/d) if n<k then k=n end elseif rel>tol then k=0 end\n"
    "  end\n"
    "  if ns>0 then nowms=nowms or fmt('%d',floor(now/1000)) end\n"
    "  for i=1,ns do\n"
    "    local key=K[kb+nr+i]\n"
    "    call('ZREMRANGEBYSCORE',key,'-inf',nowms)\n"
    "    local cur=call('ZCARD',key)\n"
    "    o=o+1 out[o]=cur if P[p]-cur<k then k=P[p]-cur end p=p+1\n"
    "  end\n"
    "  local pc=p\n"
    "  for i=1,nc do\n"
    "    local key=K[kb+nr+ns+i] local lim,cost,exp=P[p],P[p+1],P[p+2] p=p+3\n"
    "    local v=V[key] if not v then v=num(call('GET',key) or '0') V[key]=v end\n"
    "    o=o+1 out[o]=v local n\n"
    "    if exp>0 then if cost>0 then n=floor((lim-v)/cost) elseif v>lim then n=0 end\n"
    "    elseif cost>0 then n=floor(v/cost) elseif v<0 then n=0 end\n"
    "    if n and n<k then k=n end\n"
    "  end\n"
    "  if k<0 then k=0 end\n"
    "  out[at]=k\n"
    "  if k>0 then\n"
    "    for i=1,nr do local key=K[kb+i] V[key]=now+out[at+i]+k*P[p0+3*i-3]*P[p0+3*i-1] M[key]=true end\n"
    "    for i=1,ns do local key=K[kb+nr+i]\n"
    "      call('ZADD',key,fmt('%d',floor(now/1000)+ttl),tok) call('PEXPIRE',key,fmt('%d',ttl)) end\n"
    "    for i=1,nc do local key=K[kb+nr+ns+i] local d=k*P[pc+3*i-2] local exp=P[pc+3*i-1]\n"
    "      if exp>0 then E=E or {} E[key]=exp else d=-d end\n"
    "      V[key]=V[key]+d M[key]=(M[key] or 0)+d end\n"
    "  end\n"
    "  kb=kb+nr+ns+nc\n"
    "end\n"
    "for key,m in pairs(M) do\n"
    "  if m==true then local t=V[key] call('SET',key,fmt('%d',t),'PX',fmt('%d',ceil((t-now)/1000)+1000))\n"
    "  elseif m~=0 then local v=call('INCRBY',key,fmt('%d',m))\n"
    "    if E and E[key] and v==m then call('PEXPIREAT',key,fmt('%d',E[key])) end end\n"
    "end\n"
    "return out\n";

static eg_redis_t *worker_redis(eg_req_t *c)
{
    return eg_redis_link_get(c->w->redis_link, &c->w->loop, c->gw->cfg);
}

/* Redis did not answer in time or at all: the configured policy. */
static void redis_failed(eg_req_t *c, int async)
{
    const eg_config_t *cfg = c->gw->cfg;
    if (eg_redis_link_failed(c->w->redis_link, uv_now(&c->w->loop))) /* a line a second, not one per request */
        eg_req_log_error(c, cfg->redis_fail_open ? "fail_open" : "fail_closed", 0, "redis unavailable");
    if (cfg->redis_fail_open) {
        c->rl_hdrs[0] = '\0';
        resume(c, 1, async);
    } else {
        resume(c, 0, async);
        eg_req_send_unavailable(c, "Rate limiting is temporarily unavailable.",
                                "redis unavailable (fail_closed)");
    }
}

static void redis_release(eg_redis_t *r, const char *prefix, const char *key, const char *token)
{
    char k[400];
    int n = snprintf(k, sizeof(k), "%sc:%s", prefix, key);
    const char *argv[] = {"ZREM", k, token};
    size_t lens[] = {4, (size_t)n, strlen(token)};
    eg_redis_fire(r, 3, argv, lens);
}

/* One request's answer from its group's (admit_lua): the first k of the
 * group are admitted; request `index` sees every key as it was after
 * min(index, k) requests of the group, which is what the script would have
 * decided for it one request after the other. */
static void redis_done(void *arg, void *reply, size_t index)
{
    pending_t *pd = arg;
    redisReply *rep = reply;
    policy_t *pol = &pd->pol;
    size_t want = 1 + pol->nrates + pol->nslots + pol->ncharges;
    int valid = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == want;
    for (size_t i = 0; valid && i < want; i++) /* a count, TATs and slots are never negative */
        valid = rep->element[i]->type == REDIS_REPLY_INTEGER &&
                (rep->element[i]->integer >= 0 || i > pol->nrates + pol->nslots);
    eg_req_t *c = pd->c;
    long long k = valid ? rep->element[0]->integer : 0;
    int ok = valid && (long long)index < k;
    if (!wait_over(pd)) {
        /* nobody waits any more (a timeout answered, or the client left):
         * give back the slots the script took */
        for (size_t i = 0; ok && i < pol->nslots; i++) redis_release(pd->r, pd->prefix, pol->slot_keys[i], pd->token);
        free(pd);
        return;
    }
    eg_metrics_store(c->gw->metrics, c->w->id, EG_MX_STORE_REDIS, EG_MX_OP_TRAFFIC, uv_hrtime() - pd->t0,
                     valid);
    if (!valid) {
        redis_failed(c, 1);
        free(pd);
        return;
    }
    eg_redis_link_succeeded(c->w->redis_link);
    uint64_t m = (uint64_t)((long long)index < k ? (long long)index : k); /* the group's requests before it that counted */
    size_t at = 1;
    eg_gcra_result_t res[16];
    size_t rep_i = 0;
    for (size_t i = 0; i < pol->nrates; i++, at++) {
        const eg_gcra_t *g = &pol->which[i]->gcra; /* a request costs 1 (collect_policy) */
        uint64_t tat;
        /* TAT - now as the group started, then m steps on: now is 0 here */
        eg_gcra_decide(g, (uint64_t)rep->element[at]->integer + m * g->interval_us, 0, 1, &tat, &res[i]);
        if (i && eg_gcra_more_restrictive(&res[rep_i], &res[i])) rep_i = i;
    }
    if (pol->nrates) rate_headers(c, pol->which, res, pol->nrates, rep_i);
    uint32_t slot_ok[2] = {1, 1}, slot_active[2] = {0, 0};
    for (size_t i = 0; i < pol->nslots; i++, at++) {
        uint64_t cur = (uint64_t)rep->element[at]->integer + m;
        slot_ok[i] = cur < pol->slot_max[i];
        slot_active[i] = (uint32_t)(slot_ok[i] ? cur + 1 : cur);
    }
    for (size_t i = 0; i < pol->ncharges; i++, at++) {
        eg_charge_t *ch = &pol->charges[i];
        long long v = rep->element[at]->integer, step = (long long)m * ch->cost;
        if (ch->kind == EG_CHARGE_QUOTA) {
            v += step;
            ch->ok = v + ch->cost <= ch->limit;
        } else {
            v -= step;
            ch->ok = v >= ch->cost;
        }
        ch->value = v;
    }
    if (ok) {
        quota_headers(c, pol, 1);
        for (size_t i = 0; i < pol->nslots; i++) hold_slot(c, pol->slot_keys[i]);
        c->slots_redis = 1;
        memcpy(c->slot_token, pd->token, sizeof(c->slot_token));
        resume(c, 1, 1);
    } else if (pol->nrates && !res[rep_i].allowed) {
        resume(c, 0, 1);
        refuse_rate(c, pol, res, rep_i);
    } else if (pol->nslots && (!slot_ok[0] || !slot_ok[1])) {
        size_t i = slot_ok[0] ? 1 : 0;
        resume(c, 0, 1);
        refuse_slot(c, i, pol->slot_max[i], slot_active[i]);
    } else {
        resume(c, 0, 1);
        refuse_charge(c, pol);
    }
    free(pd);
}

/* v as 8 bytes, little-endian (struct.unpack's "<i8"), at p + at; at + 8. */
static size_t put_i64(char *p, size_t at, long long v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++, u >>= 8) p[at + (size_t)i] = (char)(u & 0xff);
    return at + 8;
}

/* One EVALSHA with every key the request touches, from pol (on_request's:
 * pd keeps only what the reply is read against). Takes pd. */
static void redis_start(eg_req_t *c, pending_t *pd, const policy_t *pol)
{
    const eg_config_t *cfg = c->gw->cfg;
    eg_redis_t *r = worker_redis(c);
    enum { MAXA = 16 + 2 + 3 + 2 }; /* keys, the policy, a token */
    char buf[MAXA][420], pbuf[64 * 8]; /* pbuf: the policy, up to 63 numbers */
    const char *args[MAXA];
    size_t lens[MAXA], n = 0;
    /* keys and numbers without printf: this runs for every request */
#define KEY3(a, b, c3)                                                                                  \
    do {                                                                                           \
        eg_sb_t b_ = eg_sb(buf[n], sizeof(buf[0]));                                                \
        eg_sb_str(&b_, cfg->redis_prefix);                                                         \
        eg_sb_str(&b_, a);                                                                         \
        eg_sb_str(&b_, b);                                                                         \
        eg_sb_str(&b_, c3);                                                                        \
        lens[n] = b_.len, args[n] = buf[n], n++;                                                   \
    } while (0)
    for (size_t i = 0; i < pol->nrates; i++) KEY3("r:", pol->rate_keys[i], "");
    for (size_t i = 0; i < pol->nslots; i++) KEY3("c:", pol->slot_keys[i], "");
    for (size_t i = 0; i < pol->ncharges; i++) {
        const eg_charge_t *ch = &pol->charges[i];
        if (ch->kind == EG_CHARGE_QUOTA) { /* "<prefix>q:<subject>:<period>" */
            eg_sb_t b_ = eg_sb(buf[n], sizeof(buf[0]));
            eg_sb_str(&b_, cfg->redis_prefix);
            EG_SB_LIT(&b_, "q:");
            eg_sb_str(&b_, ch->subject);
            EG_SB_LIT(&b_, ":");
            eg_sb_str(&b_, ch->period);
            lens[n] = b_.len, args[n] = buf[n], n++;
        } else {
            KEY3("cr:", ch->subject, "");
        }
    }
    int nkeys = (int)n;
    /* the policy: one argument (admit_lua), the same for every subject
     * under the same limits */
    size_t pl = 0;
#define PNUM(v) (pl = put_i64(pbuf, pl, (long long)(v)))
    PNUM(pol->nrates);
    PNUM(pol->nslots);
    PNUM(pol->ncharges);
    if (pol->nslots) PNUM(600000); /* a slot held by a gateway that died expires after 10 minutes */
    for (size_t i = 0; i < pol->nrates; i++) {
        PNUM(pol->which[i]->gcra.interval_us);
        PNUM(pol->which[i]->gcra.burst);
        PNUM(1); /* a request costs 1 (collect_policy; redis_done) */
    }
    for (size_t i = 0; i < pol->nslots; i++) PNUM(pol->slot_max[i]);
    for (size_t i = 0; i < pol->ncharges; i++) {
        const eg_charge_t *ch = &pol->charges[i];
        if (ch->kind == EG_CHARGE_QUOTA) {
            PNUM(ch->limit > 0 ? ch->limit : 0);
            PNUM(ch->cost > 0 ? ch->cost : 0);
            PNUM(((long long)pol->period_end[i] + 86400) * 1000); /* kept a day past the period */
        } else {
            PNUM(0);
            PNUM(ch->cost > 0 ? ch->cost : 0);
            PNUM(0); /* credits */
        }
    }
#undef PNUM
    lens[n] = pl, args[n] = pbuf, n++;
    if (pol->nslots) {
        eg_redis_link_token(c->w->redis_link, buf[n], sizeof(buf[0]));
        lens[n] = strlen(buf[n]);
        args[n] = buf[n];
        n++;
        memcpy(pd->token, buf[n - 1], lens[n - 1] + 1);
    }
#undef KEY3
    pd->c = c;
    pd->redis = 1;
    pd->r = r;
    pd->t0 = uv_hrtime();
    size_t plen = strlen(cfg->redis_prefix);
    if (plen >= sizeof(pd->prefix)) plen = sizeof(pd->prefix) - 1;
    memcpy(pd->prefix, cfg->redis_prefix, plen);
    pd->prefix[plen] = '\0';
    eg_req_wait(c, pd, cfg->redis_timeout_ms, redis_timed_out);
    if (!r) {
        redis_done(pd, NULL, 0);
        return;
    }
    size_t want = 1 + pol->nrates + pol->nslots + pol->ncharges; /* a group's answer */
    eg_redis_link_batch(c->w->redis_link, &c->w->loop, cfg, admit_lua, wall_us(c), nkeys, args, lens, (int)n - nkeys,
                        args + nkeys, lens + nkeys, want, redis_done, pd);
}

/* A Redis decision outlived its timeout: answer now by the failure
 * policy; the late reply, if any, finds the request gone (the transport
 * stopped the wait: holds and pending are undone). */
static void redis_timed_out(eg_req_t *c)
{
    pending_t *pd = c->pending;
    c->holds--;
    c->pending = NULL;
    pd->c = NULL; /* freed by redis_done when the reply (or the disconnect) comes */
    eg_metrics_store(c->gw->metrics, c->w->id, EG_MX_STORE_REDIS, EG_MX_OP_TRAFFIC, uv_hrtime() - pd->t0, 0);
    redis_failed(c, 1);
}

/* Rate limits, concurrency, quotas and credits: decided at once in memory,
 * or suspended on the store's charge or the Redis script. */
static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    const eg_plan_cfg_t *plan = c->access.authenticated ? eg_config_plan(c->gw->cfg, c->access.p.plan) : NULL;
    if (!r->nlimits && !r->concurrency && !r->quota.limit && !r->credit_cost &&
        !(plan && (plan->nlimits || plan->concurrency || plan->quota.limit || plan->credit_cost)))
        return EG_STAGE_CONTINUE;
    /* on the stack: the memory limiter answers at once, and only work that
     * waits (Redis, the store's charge) needs the policy on the heap */
    policy_t pol;
    collect_policy(c, plan, &pol);
    if (!pol.nrates && !pol.nslots && !pol.ncharges) return EG_STAGE_CONTINUE;
    int redis = c->gw->cfg->has_redis;
    if (!redis && !memory_rates_and_slots(c, &pol)) return EG_STAGE_ANSWERED;
    if (!redis && !pol.ncharges) return EG_STAGE_CONTINUE;
    if (!redis && eg_server_store(c->w->srv)) {
        /* decided in memory at once (the usual case): no copy of the policy */
        int now = eg_store_charge_now(eg_server_store(c->w->srv), pol.charges, pol.ncharges);
        if (now == 1) {
            quota_headers(c, &pol, 0);
            return EG_STAGE_CONTINUE;
        }
        if (now != EG_EAGAIN) {
            release_slots(c);
            if (now == 0) refuse_charge(c, &pol);
            else unavailable(c, "store failed charging quota or credits");
            return EG_STAGE_ANSWERED;
        }
    }
    pending_t *pd = malloc(offsetof(pending_t, pol) + policy_kept(&pol, redis));
    if (!pd) {
        release_slots(c);
        eg_req_send_simple(c, "internal_error", NULL, "out of memory");
        return EG_STAGE_ANSWERED;
    }
    memset(pd, 0, offsetof(pending_t, pol));
    policy_copy(&pd->pol, &pol, redis);
    if (redis) redis_start(c, pd, &pol);
    else charge_start(c, pd);
    return EG_STAGE_SUSPENDED; /* or answered already: the runner tells */
}

/* Gives back the request's concurrency slots: on completion, upstream
 * failure, client disconnect and timeout alike. */
static void on_done(eg_req_t *c)
{
    release_slots(c);
}

/* A route with no limit of its own may still be limited by a key's plan:
 * then the stage applies to any route that authenticates. */
static int applies(const eg_config_t *cfg, const eg_route_cfg_t *r)
{
    int plans = 0;
    for (size_t i = 0; i < cfg->nplans && !plans; i++) {
        const eg_plan_cfg_t *p = &cfg->plans[i];
        plans = p->nlimits || p->concurrency || p->quota.limit || p->credit_cost;
    }
    return r->nlimits || r->concurrency || r->quota.limit || r->credit_cost || (plans && r->auth != EG_AUTHN_NONE);
}

const eg_stage_t eg_stage_traffic = {
    .name = "traffic", .on_request = on_request, .on_done = on_done, .applies = applies};


/* meter.c - the meter stage: on routes with `meter:`, every served request
 * is one usage event (docs/metering.md).
 *
 * What counts as served, as a billing team counts it: a request every
 * stage admitted that went to the upstream and got a response (whatever
 * its status: the status class is recorded, so a report or an invoice can
 * leave 5xx out). What the gateway refused (401, 403, 429, quota, 400/422
 * of validation, an idempotent replay answered from the store) is not
 * usage: the customer is not billed for refusals. The stage runs after
 * validate and before traffic: a request refused there never reached the
 * upstream and only gives its place back.
 *
 * SQLite (usage.h): on_request takes one of metering.max_uncommitted
 * places (503 when they are all held: serving it could not be metered
 * within the bound a kill -9 may lose); on_done records the event into
 * the process's totals in memory, which a writer thread commits in
 * batches. No allocation per request, and little work: the route's part
 * of the key (event type, route) is hashed once per route (fixed_of), the
 * subject is two copies, the clock the loop's (now_s).
 * Redis (the traffic store when `redis:` is configured): on_done sends
 * HINCRBYFLOAT/HINCRBY to the subject's hourly hash, batched with the
 * worker's other calls of the loop iteration (redis_link.h).
 */
#include "stage.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "redis_link.h"
#include "strbuild.h"
#include "usage.h"

#define SUBJECT_CAP 200

/* "k:<key id>", "u:<subject>" or "ip:<address>" into out, its length
 * returned. Every metered request makes one: each source is a fixed-size
 * array, copied whole (a few vector moves, no call) and cut at its end. */
static size_t subject_of(const eg_req_t *c, char out[static SUBJECT_CAP])
{
    const eg_principal_t *p = &c->access.p;
    _Static_assert(sizeof(c->client_ip) + 4 <= SUBJECT_CAP &&
                       sizeof(p->key_id) + 3 <= SUBJECT_CAP &&
                       sizeof(p->consumer) + 3 <= SUBJECT_CAP,
                   "a subject fits");
    size_t n;
    if (!c->access.authenticated) {
        memcpy(out, "ip:", 4);
        memcpy(out + 3, c->client_ip, sizeof(c->client_ip));
        n = 3 + strnlen(c->client_ip, sizeof(c->client_ip) - 1);
    } else if (p->key_id[0]) {
        memcpy(out, "k:", 3);
        memcpy(out + 2, p->key_id, sizeof(p->key_id));
        n = 2 + strnlen(p->key_id, sizeof(p->key_id) - 1);
    } else {
        memcpy(out, "u:", 3);
        memcpy(out + 2, p->consumer, sizeof(p->consumer));
        n = 2 + strnlen(p->consumer, sizeof(p->consumer) - 1);
    }
    out[n] = '\0';
    return n;
}

/* Per worker thread: each metered route's eg_usage_fixed_t, made on its
 * first request in a configuration generation (a route's address alone
 * could be reused by a reload's configuration; with the generation it is
 * not), and the wall clock read at most every 100 ms of the loop's cached
 * time: an event's hour is off by no more than that at an hour's turn. */
typedef struct {
    const eg_route_cfg_t *route;
    uint64_t generation;
    eg_usage_fixed_t f;
} fixed_slot_t;
static _Thread_local fixed_slot_t fixed_cache[32];
static _Thread_local uint64_t clock_at_ms;
static _Thread_local int64_t clock_s;

static eg_usage_fixed_t *fixed_of(const eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    fixed_slot_t *s = &fixed_cache[((uintptr_t)r / sizeof(*r)) & 31];
    if (s->route != r || s->generation != c->gw->generation) {
        s->route = r;
        s->generation = c->gw->generation;
        eg_usage_fixed_init(&s->f, r->meter_event, r->scope_path ? r->scope_path : r->path);
    }
    return &s->f;
}

/* The usage store: once open it stays until the workers have stopped (a
 * reload may open it, never closes it), so each worker keeps the pointer
 * it saw. */
static _Thread_local eg_usage_t *usage_seen;

static eg_usage_t *usage_of(eg_req_t *c)
{
    if (!usage_seen) usage_seen = eg_server_usage(c->w->srv);
    return usage_seen;
}

static int64_t now_s(eg_req_t *c)
{
    uint64_t ms = uv_now(&c->w->loop);
    if (!clock_at_ms || ms - clock_at_ms >= 100) {
        clock_at_ms = ms ? ms : 1;
        clock_s = (int64_t)time(NULL) + eg_server_clock_offset(c->w->srv);
    }
    return clock_s;
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    if (c->gw->cfg->has_redis) {
        c->meter_held = 1; /* nothing to reserve: on_done sends the event */
        return EG_STAGE_CONTINUE;
    }
    eg_usage_t *u = usage_of(c);
    if (u && eg_usage_reserve(u)) {
        c->meter_held = 1;
        return EG_STAGE_CONTINUE;
    }
    /* no usage store (a reload added meter:) or the uncommitted bound is
     * reached (the store is failing): not served unmetered */
    eg_error_t *e = eg_req_error(c, "service_unavailable");
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, "Usage metering is temporarily unavailable.");
        eg_error_set_retry_after(e, 1);
    }
    eg_req_send_error(c, e, NULL,
                      u ? "metering backlog full (metering.max_uncommitted)" : "no usage store");
    return EG_STAGE_ANSWERED;
}

/* ---- Redis: the spec's layout (metering-spec.md), one script call per
 * event, batched per loop iteration. KEYS: the hour's hash per event;
 * ARGV: the number of events, then per event: field, quantity, bytes in,
 * bytes out, expire-at (Unix seconds). */
/* KEYS: a hash per group; ARGV: {groups, stamp, then per group: its count
 * (identical events sent once, redis_link.h), field, quantity, bytes in,
 * bytes out, expiry}; one 1 per group (redis_link.h: its events share it). */
static const char usage_lua[] = "local call=redis.call local A=ARGV local out={} local a=3 local o=0\n"
                                "for i=1,tonumber(A[1]) do\n"
                                "  local k=KEYS[i] local n=tonumber(A[a]) local f=A[a+1]\n"
                                "  call('HINCRBYFLOAT',k,f,n==1 and A[a+2] or tonumber(A[a+2])*n)\n"
                                "  call('HINCRBY',k,'#'..f,n)\n"
                                "  if A[a+3]~='0' then call('HINCRBY',k,'<'..f,tonumber(A[a+3])*n) end\n"
                                "  if A[a+4]~='0' then call('HINCRBY',k,'>'..f,tonumber(A[a+4])*n) end\n"
                                "  call('EXPIREAT',k,A[a+5]) a=a+6\n"
                                "  o=o+1 out[o]=1\n"
                                "end\n"
                                "return out\n";

static void redis_recorded(void *arg, void *reply, size_t index)
{
    eg_req_t *unused = arg;
    (void)unused;
    (void)index;
    (void)reply; /* a failed write is lost: the bound with Redis is what Redis did not take */
}

static void record_redis(eg_req_t *c, const eg_usage_event_t *ev)
{
    const eg_config_t *cfg = c->gw->cfg;
    eg_redis_t *r = eg_redis_link_get(c->w->redis_link, &c->w->loop, cfg);
    if (!r) {
        eg_req_log_error(c, "usage_lost", 0, "redis unavailable: a usage event was not recorded");
        return;
    }
    char key[600], field[300], q[32], bi[24], bo[24], exp[24];
    eg_sb_t b = eg_sb(key, sizeof(key)); /* "<prefix>u:{<subject>}:<hour>" */
    eg_sb_str(&b, cfg->redis_prefix);
    EG_SB_LIT(&b, "u:{");
    eg_sb_str(&b, ev->subject);
    EG_SB_LIT(&b, "}:");
    eg_sb_u64(&b, (uint64_t)ev->ts / 3600);
    eg_sb_t f = eg_sb(field, sizeof(field)); /* "<event_type>|<route>|<status_class>" */
    eg_sb_str(&f, ev->event_type);
    EG_SB_LIT(&f, "|");
    eg_sb_str(&f, ev->route);
    EG_SB_LIT(&f, "|");
    eg_sb_u64(&f, (uint64_t)ev->status_class);
    if (b.over || f.over) return;
    int nq = snprintf(q, sizeof(q), "%.17g", ev->quantity);
    eg_sb_t x = eg_sb(bi, sizeof(bi));
    eg_sb_u64(&x, ev->bytes_in);
    eg_sb_t y = eg_sb(bo, sizeof(bo));
    eg_sb_u64(&y, ev->bytes_out);
    eg_sb_t z = eg_sb(exp, sizeof(exp));
    eg_sb_u64(&z, (uint64_t)ev->ts + cfg->metering_retention_s);
    const char *keys[] = {key};
    size_t klens[] = {b.len};
    const char *args[] = {field, q, bi, bo, exp};
    size_t alens[] = {f.len, (size_t)nq, x.len, y.len, z.len};
    eg_redis_link_batch(c->w->redis_link, &c->w->loop, cfg, usage_lua, 0, 1, keys, klens, 5, args,
                        alens, 1, redis_recorded, NULL);
    /* sent at the end of this iteration, not after the answer to the batch
     * in flight: a crash loses at most this iteration's events
     * (docs/metering.md) */
    eg_redis_link_now(c->w->redis_link);
}

/* The event of a served request on Redis: kept out of on_done, whose
 * SQLite path is the one every metered request takes without Redis. */
static __attribute__((noinline)) void on_done_redis(eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    char subject[SUBJECT_CAP];
    subject_of(c, subject);
    eg_usage_event_t ev = {subject,
                           r->meter_event,
                           r->scope_path ? r->scope_path : r->path,
                           c->status / 100,
                           r->meter_cost,
                           now_s(c),
                           r->meter_bytes ? c->bytes_in : 0,
                           r->meter_bytes ? c->bytes_out : 0};
    record_redis(c, &ev);
}

/* The response is complete (or the request ended): one event when the
 * upstream served it, else the place goes back. */
static void on_done(eg_req_t *c)
{
    if (!c->meter_held) return;
    c->meter_held = 0;
    int served = c->up_start_ns && c->status >= 100 && c->status <= 599;
    if (c->gw->cfg->has_redis) {
        if (served) on_done_redis(c);
        return;
    }
    eg_usage_t *u = usage_of(c);
    if (!u) return;
    if (!served) {
        eg_usage_unreserve(u);
        return;
    }
    const eg_route_cfg_t *r = c->route;
    char subject[SUBJECT_CAP];
    size_t ls = subject_of(c, subject);
    int bytes = r->meter_bytes;
    if (eg_usage_record_fixed(u, fixed_of(c), subject, ls, c->status / 100, r->meter_cost, now_s(c),
                              bytes ? c->bytes_in : 0, bytes ? c->bytes_out : 0) != EG_OK)
        eg_req_log_error(c, "usage_lost", 0, "out of memory: a usage event was not recorded");
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *r)
{
    (void)cfg;
    return r && r->meter;
}

const eg_stage_t eg_stage_meter = {
    .name = "meter", .on_request = on_request, .on_done = on_done, .applies = applies};

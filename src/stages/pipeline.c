/* pipeline.c - the stage table and its runner (see stage.h).
 *
 * The table is the request path: read it and you know what a request goes
 * through before the upstream. Adding a stage is one file in src/stages/,
 * one line here, one config section (docs/architecture.md).
 */
#include "stage.h"

static const eg_stage_t *const stages[] = {
    &eg_stage_request_id, /* X-Request-ID, the error dialect */
    &eg_stage_health,     /* health_path on the API listener (when configured) */
    &eg_stage_cors,       /* preflights answered; Access-Control-* for every answer */
    &eg_stage_route,      /* 413, canonical path, 404/405, the route */
    &eg_stage_maintenance,
    &eg_stage_access,  /* keys, JWTs, scopes, allow_ips */
    &eg_stage_validate, /* validate: parameters, bodies (before traffic: no quota burnt) */
    &eg_stage_meter,    /* meter: a usage place held; the served request recorded in on_done */
    &eg_stage_traffic, /* rate limits, concurrency, quotas, credits */
    &eg_stage_usage,   /* metering.usage_path: the caller's usage (after its rate limits) */
    &eg_stage_idempotency, /* Idempotency-Key: reserve, replay, 409/422 */
    &eg_stage_meter_api,   /* metering.path answered by the gateway (after access and limits) */
};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

_Static_assert(NSTAGES < 32, "a mask holds a bit a stage, and 1u << NSTAGES is defined");

static size_t route_index(void)
{
    for (size_t s = 0; s < NSTAGES; s++)
        if (stages[s] == &eg_stage_route) return s;
    return NSTAGES;
}

void eg_pipeline_bind(const eg_config_t *cfg, eg_pipeline_masks_t *m)
{
    /* bit s: stage s runs (one without applies() always does); up to the
     * route stage, the same for every request (asked with no route) */
    size_t rs = route_index();
    m->unrouted = 0;
    m->done = 0;
    m->bytes = 0;
    for (size_t s = 0; s < NSTAGES; s++) {
        if (s <= rs && (!stages[s]->applies || stages[s]->applies(cfg, NULL)))
            m->unrouted |= 1u << s;
        if (stages[s]->on_done) m->done |= 1u << s;
        if (stages[s]->on_response_bytes) m->bytes |= 1u << s;
    }
    for (size_t i = 0; i < cfg->nroutes; i++) {
        m->routes[i] = m->unrouted;
        for (size_t s = rs + 1; s < NSTAGES; s++)
            if (!stages[s]->applies || stages[s]->applies(cfg, &cfg->routes[i]))
                m->routes[i] |= 1u << s;
    }
}

/* The stages that run for r: the unrouted ones until it is routed, then
 * its route's. */
static inline uint32_t bound_of(const eg_req_t *r)
{
    const eg_pipeline_masks_t *m = &r->gw->stages;
    return r->route ? m->routes[r->route - r->gw->cfg->routes] : m->unrouted;
}

/* Why bits: a plain route runs three of the seven stages; the runner goes
 * from one bound stage to the next (count trailing zeros) instead of asking
 * every stage's bit in turn. */
void eg_pipeline_run(eg_req_t *r)
{
    int routed = r->route != NULL;
    uint32_t todo = bound_of(r) & ~((1u << r->stage) - 1);
    while (todo) {
        unsigned i = (unsigned)__builtin_ctz(todo);
        r->stage = i + 1;
        r->in_stage = 1;
        r->resume_now = 0;
        eg_stage_rc_t rc = stages[i]->on_request(r);
        r->in_stage = 0;
        if (rc == EG_STAGE_CONTINUE || (rc == EG_STAGE_SUSPENDED && r->resume_now)) {
            /* (suspended, but the work answered before on_request returned:
             * the stage already asked to go on) */
            r->resume_now = 0;
            if (!routed && r->route) { /* just routed: the route's stages from here */
                routed = 1;
                todo = bound_of(r) & ~((1u << r->stage) - 1);
            } else {
                todo &= todo - 1;
            }
            continue;
        }
        return;
    }
    r->stage = NSTAGES;
    eg_req_admit(r);
}

void eg_pipeline_done(eg_req_t *r)
{
    if (r->done_run) return;
    r->done_run = 1;
    /* the stages that ran and have a hook, last first */
    uint32_t ran = bound_of(r) & r->gw->stages.done & ((1u << r->stage) - 1);
    while (ran) {
        unsigned i = 31u - (unsigned)__builtin_clz(ran);
        ran &= ~(1u << i);
        stages[i]->on_done(r);
    }
}

/* Every piece of a captured response comes here: the hooked stages before
 * r's current one, from their mask (not every stage's pointer in turn). */
void eg_pipeline_capture(eg_req_t *r, const char *data, size_t n)
{
    uint32_t want = r->gw->stages.bytes & ((1u << r->stage) - 1);
    while (want) {
        unsigned i = (unsigned)__builtin_ctz(want);
        want &= want - 1;
        stages[i]->on_response_bytes(r, data, n);
    }
}

void eg_pipeline_head(eg_req_t *r, const eg_resp_head_t *h)
{
    uint32_t want = r->gw->stages.bytes & ((1u << r->stage) - 1);
    while (want) {
        unsigned i = (unsigned)__builtin_ctz(want);
        want &= want - 1;
        if (stages[i]->on_response_head) stages[i]->on_response_head(r, h);
    }
}

void eg_pipeline_worker_exit(eg_worker_t *w)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->worker_exit) stages[i]->worker_exit(w);
}

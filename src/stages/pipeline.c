/* pipeline.c - the stage table and its runner (see stage.h).
 *
 * The table is the request path: read it and you know what a request goes
 * through before the upstream. Adding a stage is one file in src/stages/,
 * one line here, one config section (docs/architecture.md).
 */
#include "stage.h"

static const eg_stage_t *const stages[] = {
    &eg_stage_request_id, /* X-Request-ID, the error dialect */
    &eg_stage_cors,       /* preflights answered; Access-Control-* for every answer */
    &eg_stage_route,      /* 413, canonical path, 404/405, the route */
    &eg_stage_maintenance,
    &eg_stage_access,  /* keys, JWTs, scopes, allow_ips */
    &eg_stage_validate, /* validate: parameters, bodies (before traffic: no quota burnt) */
    &eg_stage_traffic, /* rate limits, concurrency, quotas, credits */
    &eg_stage_idempotency, /* Idempotency-Key: reserve, replay, 409/422 */
};
#define NSTAGES (sizeof(stages) / sizeof(stages[0]))

_Static_assert(NSTAGES <= 32, "route_stages holds a bit a stage");

void eg_pipeline_bind(const eg_config_t *cfg, uint32_t *masks)
{
    /* bit s: stage s runs for the route's requests (one without applies()
     * always does) */
    for (size_t i = 0; i < cfg->nroutes; i++) {
        masks[i] = 0;
        for (size_t s = 0; s < NSTAGES; s++)
            if (!stages[s]->applies || stages[s]->applies(cfg, &cfg->routes[i])) masks[i] |= 1u << s;
    }
}

/* The stages that run for r: all until it is routed, then its route's. */
static uint32_t bound_of(const eg_req_t *r)
{
    return r->route ? r->gw->route_stages[r->route - r->gw->cfg->routes] : UINT32_MAX;
}

void eg_pipeline_run(eg_req_t *r)
{
    uint32_t run = bound_of(r);
    while (r->stage < NSTAGES) {
        unsigned i = r->stage++;
        if (!(run >> i & 1)) continue; /* nothing to do on this route */
        r->in_stage = 1;
        r->resume_now = 0;
        eg_stage_rc_t rc = stages[i]->on_request(r);
        r->in_stage = 0;
        if (rc == EG_STAGE_CONTINUE || (rc == EG_STAGE_SUSPENDED && r->resume_now)) {
            /* (suspended, but the work answered before on_request returned:
             * the stage already asked to go on) */
            r->resume_now = 0;
            if (run == UINT32_MAX && r->route) run = bound_of(r); /* just routed */
            continue;
        }
        return;
    }
    eg_req_admit(r);
}

void eg_pipeline_done(eg_req_t *r)
{
    if (r->done_run) return;
    r->done_run = 1;
    uint32_t ran = bound_of(r) & ((1u << r->stage) - 1);
    for (unsigned i = r->stage; i-- > 0;)
        if ((ran >> i & 1) && stages[i]->on_done) stages[i]->on_done(r);
}

void eg_pipeline_capture(eg_req_t *r, const char *data, size_t n)
{
    for (unsigned i = 0; i < r->stage; i++)
        if (stages[i]->on_response_bytes) stages[i]->on_response_bytes(r, data, n);
}

void eg_pipeline_worker_exit(eg_worker_t *w)
{
    for (size_t i = 0; i < NSTAGES; i++)
        if (stages[i]->worker_exit) stages[i]->worker_exit(w);
}

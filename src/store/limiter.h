/* limiter.h - rate-limit and concurrency state shared by every worker.
 *
 * The memory backend of traffic policy: a table of GCRA arrival times and
 * in-flight counters keyed by bucket name ("route:/v1/search#0|key:AbCd1234"),
 * split into shards with a mutex each so workers rarely meet. Several
 * limits of one request are decided together: every shard involved is
 * locked (in a fixed order), and either all limits count the request or
 * none does, so a request refused by its hourly limit does not use up its
 * per-second one. Entries that have returned to a full allowance and hold
 * no slot are dropped by eg_limiter_sweep.
 */
#ifndef EG_LIMITER_H
#define EG_LIMITER_H

#include <stddef.h>
#include <stdint.h>

#include "errgate/ratelimit.h"

typedef struct {
    const char *key;  /* bucket name */
    eg_gcra_t gcra;
    uint32_t cost;
} eg_limit_req_t;

typedef struct eg_limiter_s eg_limiter_t;

int eg_limiter_new(eg_limiter_t **out);
void eg_limiter_free(eg_limiter_t *l);

/* Decides n (at most 16) limits at now_us. Fills results[i]; *report is
 * the index to tell the client about (the most restrictive). Returns 1
 * when the request may go on, 0 when refused, EG_ENOMEM. */
int eg_limiter_decide(eg_limiter_t *l, const eg_limit_req_t *reqs, size_t n, uint64_t now_us,
                      eg_gcra_result_t *results, size_t *report);

/* Takes a slot when fewer than max are held: 1 taken, 0 full; *active is
 * the count after (or the count that refused). EG_ENOMEM. */
int eg_limiter_acquire(eg_limiter_t *l, const char *key, uint32_t max, uint32_t *active);
/* Gives back a slot taken with eg_limiter_acquire. */
void eg_limiter_release(eg_limiter_t *l, const char *key);
/* Slots held under key (tests, /ready). */
uint32_t eg_limiter_active(eg_limiter_t *l, const char *key);
/* Slots held under all keys. */
uint64_t eg_limiter_active_total(eg_limiter_t *l);

/* Drops entries back at a full allowance with no slot held; returns how many remain. */
size_t eg_limiter_sweep(eg_limiter_t *l, uint64_t now_us);

#endif

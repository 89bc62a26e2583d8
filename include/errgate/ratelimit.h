/* ratelimit.h - GCRA, the generic cell rate algorithm, as pure arithmetic.
 *
 * A limit of `limit` requests per `window` with `burst` is one number of
 * state per subject: the theoretical arrival time (TAT). Each request
 * moves the TAT by window/limit; a request is allowed when the TAT, after
 * moving, is no further ahead of now than burst * (window/limit). Unlike a
 * fixed window there is no boundary at which twice the limit gets through,
 * and unlike a sliding log there is nothing to store but the TAT, which is
 * what lets a Redis script or a shared table decide atomically.
 *
 * Where the state lives (memory, Redis) is the caller's business; this
 * module only computes. Times are milliseconds on any monotonic scale the
 * caller keeps consistent (the gateway uses Unix time, so Redis and
 * several nodes agree).
 */
#ifndef ERRGATE_RATELIMIT_H
#define ERRGATE_RATELIMIT_H

#include <stdint.h>

#include "errgate/common.h"

typedef struct {
    uint32_t limit;      /* requests per window */
    uint32_t burst;      /* requests allowed at once (default: limit) */
    uint64_t window_ms;
    uint64_t interval_us; /* window / limit, in microseconds (the emission interval) */
} eg_gcra_t;

typedef struct {
    int allowed;
    uint32_t limit;        /* the limit (for headers: X-RateLimit-Limit, q=) */
    uint32_t remaining;    /* requests left right now */
    uint64_t reset_ms;     /* until the subject is back to a full allowance */
    uint64_t retry_after_ms; /* refused: until one request is allowed again; 0 when allowed */
} eg_gcra_result_t;

/* EG_EINVAL for limit 0, window 0 or over 366 days, or burst over 10 x limit. burst 0 = limit. */
int eg_gcra_init(eg_gcra_t *g, uint32_t limit, uint64_t window_ms, uint32_t burst);

/* Decides one request of `cost` units at now_us, given the stored TAT (0 =
 * never seen). Writes the TAT to store in *new_tat (unchanged when refused). */
void eg_gcra_decide(const eg_gcra_t *g, uint64_t tat_us, uint64_t now_us, uint32_t cost,
                    uint64_t *new_tat_us, eg_gcra_result_t *r);

/* Which of two results a client should be told about: a refusal over an
 * allowance, then the longer wait, then the fewer remaining. 1 when b wins. */
int eg_gcra_more_restrictive(const eg_gcra_result_t *a, const eg_gcra_result_t *b);

#endif

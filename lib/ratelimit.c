/* ratelimit.c - GCRA arithmetic (see ratelimit.h). */
#include "errgate/ratelimit.h"

int eg_gcra_init(eg_gcra_t *g, uint32_t limit, uint64_t window_ms, uint32_t burst)
{
    if (!g || limit == 0 || window_ms == 0 || window_ms > 366ull * 86400 * 1000) return EG_EINVAL;
    if (burst == 0) burst = limit;
    if (burst > 10ull * limit) return EG_EINVAL;
    uint64_t iv = window_ms * 1000 / limit;
    if (iv == 0) return EG_EINVAL; /* more than a million per millisecond */
    g->limit = limit;
    g->burst = burst;
    g->window_ms = window_ms;
    g->interval_us = iv;
    return EG_OK;
}

static uint64_t ceil_ms(uint64_t us)
{
    return (us + 999) / 1000;
}

void eg_gcra_decide(const eg_gcra_t *g, uint64_t tat_us, uint64_t now_us, uint32_t cost,
                    uint64_t *new_tat_us, eg_gcra_result_t *r)
{
    uint64_t tat = tat_us > now_us ? tat_us : now_us;
    uint64_t inc = g->interval_us * (cost ? cost : 1);
    uint64_t tolerance = g->interval_us * g->burst; /* how far ahead of now the TAT may run */
    uint64_t next = tat + inc;
    r->limit = g->limit;
    if (next - now_us > tolerance) {
        /* refused: allowed again once the TAT is within tolerance */
        r->allowed = 0;
        r->remaining = 0;
        r->retry_after_ms = ceil_ms(next - now_us - tolerance);
        r->reset_ms = ceil_ms(tat - now_us);
        *new_tat_us = tat_us;
        return;
    }
    uint64_t left = (tolerance - (next - now_us)) / g->interval_us;
    r->allowed = 1;
    r->remaining = left > g->burst ? g->burst : (uint32_t)left;
    r->retry_after_ms = 0;
    r->reset_ms = ceil_ms(next - now_us);
    *new_tat_us = next;
}

int eg_gcra_more_restrictive(const eg_gcra_result_t *a, const eg_gcra_result_t *b)
{
    if (a->allowed != b->allowed) return !b->allowed;
    if (!a->allowed) return b->retry_after_ms > a->retry_after_ms;
    return b->remaining < a->remaining;
}

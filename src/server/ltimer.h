/* ltimer.h - timers that are cheap to re-arm.
 *
 * Every request moves a connection's deadline several times (header, body,
 * upstream response, idle), and each uv_timer_start/stop is a heap removal
 * and insertion: about 3% of the gateway's CPU under load. A lazy timer
 * keeps its libuv timer armed and only records the new deadline; when the
 * libuv timer fires early it re-arms for what is left, and a stopped timer
 * fires once and does nothing. A deadline moved earlier re-arms at once.
 */
#ifndef EG_LTIMER_H
#define EG_LTIMER_H

#include <stdint.h>
#include <uv.h>

typedef struct {
    uv_timer_t h;  /* first: the callback gets &h, and h.data is the owner's */
    uint64_t due;  /* loop time (ms) the callback is wanted at; 0 = stopped */
    uv_timer_cb cb;
} eg_ltimer_t;

static inline void eg__ltimer_fire(uv_timer_t *h)
{
    eg_ltimer_t *t = (eg_ltimer_t *)h;
    if (!t->due) return;
    uint64_t now = uv_now(h->loop);
    if (now < t->due) {
        uv_timer_start(h, eg__ltimer_fire, t->due - now, 0);
        return;
    }
    t->due = 0;
    t->cb(h);
}

static inline int eg_ltimer_init(uv_loop_t *loop, eg_ltimer_t *t)
{
    t->due = 0;
    t->cb = NULL;
    return uv_timer_init(loop, &t->h);
}

/* Calls cb(&t->h) in ms from now (loop time), replacing any earlier setting. */
static inline void eg_ltimer_set(eg_ltimer_t *t, uv_timer_cb cb, uint64_t ms)
{
    uint64_t now = uv_now(t->h.loop);
    t->cb = cb;
    t->due = now + ms;
    if (t->due == 0) t->due = 1;
    /* armed to fire no later than wanted: it re-arms itself for the rest */
    if (uv_is_active((uv_handle_t *)&t->h) && uv_timer_get_due_in(&t->h) <= ms) return;
    uv_timer_start(&t->h, eg__ltimer_fire, ms, 0);
}

static inline void eg_ltimer_stop(eg_ltimer_t *t)
{
    t->due = 0;
}

static inline int eg_ltimer_active(const eg_ltimer_t *t)
{
    return t->due != 0;
}

#endif

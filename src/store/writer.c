/* writer.c - the group-commit writer (see writer.h).
 *
 * One mutex guards the queue; producers signal the thread only when it has
 * something to do about it (the commit_every-th item ends a batch, a waiter
 * wants it now), so a busy gateway does not pay a wake-up per request. The
 * interval needs no signal: idle, the thread wakes every interval anyway.
 * The queue is swapped out whole under the lock and written with the lock
 * released.
 *
 * What waits is counted, not kept: pushed (the last ticket) less base (the
 * last ticket a swap took, moved back when its flush fails). A NULL item
 * is therefore one atomic addition and no lock (the SQLite store pushes
 * one per admitted charge, already under its own lock); only the batch's
 * first (its time starts the interval) and its commit_every-th (a signal,
 * under the mutex so the thread cannot miss it) do more. A producer that
 * reads base while a swap moves it may take itself for a batch's first and
 * restart the interval early: a commit then comes sooner, never later.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/common.h"

struct eg_writer_s {
    eg_writer_cfg_t cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t work, done; /* work: for the thread; done: for waiters */
    void **items;
    size_t n, cap;
    _Atomic uint64_t base;     /* pushes up to this one were swapped out: pushed - base wait */
    _Atomic uint64_t first_ms; /* when the oldest of those waiting arrived */
    _Atomic size_t every;      /* cfg.commit_every, read by producers without the lock */
    int waiters, stopping;
    _Atomic uint64_t pushed, committed;
    atomic_int failing;
};

/* Pushes waiting for a swap (NULL ones included). */
static size_t waiting(const eg_writer_t *w)
{
    return (size_t)(atomic_load(&((eg_writer_t *)w)->pushed) - atomic_load(&((eg_writer_t *)w)->base));
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void deadline_at(struct timespec *ts, uint64_t at_ms)
{
    ts->tv_sec = (time_t)(at_ms / 1000u);
    ts->tv_nsec = (long)(at_ms % 1000u) * 1000000L;
}

/* Puts back a batch that failed, in front of what came meanwhile, and
 * counts it as waiting again (base back to where the swap found it). */
static int requeue(eg_writer_t *w, void **items, size_t n, uint64_t prev_base)
{
    atomic_store(&w->base, prev_base);
    atomic_store(&w->first_ms, mono_ms());
    if (n) {
        if (w->n + n > w->cap) {
            size_t cap = w->n + n;
            void **ni = realloc(w->items, cap * sizeof(*ni));
            if (!ni) return EG_ENOMEM;
            w->items = ni;
            w->cap = cap;
        }
        memmove(w->items + n, w->items, w->n * sizeof(*w->items));
        memcpy(w->items, items, n * sizeof(*items));
        w->n += n;
    }
    return EG_OK;
}

static void *run(void *arg)
{
    eg_writer_t *w = arg;
    uint64_t idle_ms = w->cfg.commit_interval_ms;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        uint64_t now = mono_ms(), last_tick = now;
        /* wait for a full batch, the interval, a waiter or the stop */
        size_t counted;
        while (!w->stopping && !w->waiters && (counted = waiting(w)) < w->cfg.commit_every &&
               !(counted && now >= atomic_load(&w->first_ms) + w->cfg.commit_interval_ms) &&
               !(!counted && now >= last_tick + idle_ms)) {
            struct timespec ts;
            deadline_at(&ts, counted ? atomic_load(&w->first_ms) + w->cfg.commit_interval_ms
                                     : last_tick + idle_ms);
            /* CLOCK_MONOTONIC is set on the condition at start */
            pthread_cond_timedwait(&w->work, &w->lock, &ts);
            now = mono_ms();
        }
        counted = waiting(w);
        if (w->stopping && !counted) break;
        void **items = w->items;
        size_t n = w->n;
        /* items are pushed with their tickets under the lock: all up to
         * upto are in items[] (NULL ones after upto are left for the next) */
        uint64_t upto = atomic_load(&w->pushed), prev_base = atomic_load(&w->base);
        atomic_store(&w->base, upto);
        counted = (size_t)(upto - prev_base);
        w->items = NULL;
        w->n = w->cap = 0;
        pthread_mutex_unlock(&w->lock);
        int rc = w->cfg.flush(w->cfg.ctx, items, n);
        pthread_mutex_lock(&w->lock);
        if (rc == EG_OK) {
            free(items);
            if (counted) atomic_store(&w->committed, upto);
            atomic_store(&w->failing, 0);
        } else {
            atomic_store(&w->failing, 1);
            requeue(w, items, n, prev_base); /* out of memory: the items are lost, counted as failing */
            free(items);
        }
        pthread_cond_broadcast(&w->done);
        if (w->stopping && (rc != EG_OK || !waiting(w))) break; /* one last try, then give up */
        if (rc != EG_OK) { /* retry after an interval, not in a tight loop */
            struct timespec ts;
            deadline_at(&ts, mono_ms() + w->cfg.commit_interval_ms);
            if (!w->stopping) pthread_cond_timedwait(&w->work, &w->lock, &ts);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

void eg_writer_retune(eg_writer_t *w, size_t commit_every, uint64_t commit_interval_ms)
{
    if (!commit_every || !commit_interval_ms) return;
    pthread_mutex_lock(&w->lock);
    w->cfg.commit_every = commit_every;
    atomic_store(&w->every, commit_every);
    w->cfg.commit_interval_ms = commit_interval_ms;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
}

int eg_writer_start(const eg_writer_cfg_t *cfg, eg_writer_t **out)
{
    if (!cfg->flush || !cfg->commit_every || !cfg->commit_interval_ms) return EG_EINVAL;
    eg_writer_t *w = calloc(1, sizeof(*w));
    if (!w) return EG_ENOMEM;
    w->cfg = *cfg;
    atomic_store(&w->every, cfg->commit_every);
    atomic_store(&w->first_ms, mono_ms());
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int ok = pthread_mutex_init(&w->lock, NULL) == 0;
    ok = ok && pthread_cond_init(&w->work, &ca) == 0;
    ok = ok && pthread_cond_init(&w->done, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok || pthread_create(&w->thread, NULL, run, w) != 0) {
        free(w);
        return EG_ENOMEM;
    }
    *out = w;
    return EG_OK;
}

void eg_writer_stop(eg_writer_t *w)
{
    eg_writer_stop_drain(w, NULL);
}

void eg_writer_stop_drain(eg_writer_t *w, void (*drop)(void *ctx, void *item))
{
    if (!w) return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    /* items a failing flush never wrote: opaque here, so only the owner's
     * drop callback can free them (and count them lost) */
    if (drop)
        for (size_t i = 0; i < w->n; i++) drop(w->cfg.ctx, w->items[i]);
    free(w->items);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->done);
    free(w);
}

/* After a push took ticket t: the batch's first starts the interval
 * without waking the thread (it sleeps at most one interval when idle, and
 * on waking finds the batch and waits out what is left of first_ms +
 * interval: a wake-up a commit less, a futex call and a context switch);
 * the commit_every-th wakes it. */
static void pushed_one(eg_writer_t *w, uint64_t t, int locked)
{
    uint64_t nth = t - atomic_load(&w->base);
    if (nth == 1) {
        atomic_store(&w->first_ms, mono_ms());
    } else if (nth == atomic_load_explicit(&w->every, memory_order_relaxed)) {
        if (!locked) pthread_mutex_lock(&w->lock);
        pthread_cond_signal(&w->work);
        if (!locked) pthread_mutex_unlock(&w->lock);
    }
}

int eg_writer_push(eg_writer_t *w, void *item, uint64_t *ticket)
{
    if (!item) { /* counted only: no lock (see the top of the file) */
        /* the bound is checked before the addition: pushers racing past it
         * at once overshoot it by at most their number */
        if (w->cfg.max_queued && waiting(w) >= w->cfg.max_queued) return EG_EAGAIN;
        uint64_t t = atomic_fetch_add(&w->pushed, 1) + 1;
        pushed_one(w, t, 0);
        if (ticket) *ticket = t;
        return EG_OK;
    }
    pthread_mutex_lock(&w->lock);
    if (w->cfg.max_queued && waiting(w) >= w->cfg.max_queued) { /* exact among items (NULL ones race) */
        pthread_mutex_unlock(&w->lock);
        return EG_EAGAIN;
    }
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        void **ni = realloc(w->items, cap * sizeof(*ni));
        if (!ni) {
            pthread_mutex_unlock(&w->lock);
            return EG_ENOMEM;
        }
        w->items = ni;
        w->cap = cap;
    }
    w->items[w->n++] = item;
    uint64_t t = atomic_fetch_add(&w->pushed, 1) + 1;
    pushed_one(w, t, 1);
    pthread_mutex_unlock(&w->lock);
    if (ticket) *ticket = t;
    return EG_OK;
}

uint64_t eg_writer_committed(const eg_writer_t *w)
{
    return atomic_load(&((eg_writer_t *)w)->committed);
}

uint64_t eg_writer_pushed(const eg_writer_t *w)
{
    return atomic_load(&((eg_writer_t *)w)->pushed);
}

int eg_writer_failing(const eg_writer_t *w)
{
    return atomic_load(&((eg_writer_t *)w)->failing);
}

int eg_writer_wait(eg_writer_t *w, uint64_t ticket, uint64_t timeout_ms)
{
    uint64_t until = mono_ms() + timeout_ms;
    int rc = EG_OK;
    pthread_mutex_lock(&w->lock);
    w->waiters++;
    pthread_cond_signal(&w->work);
    while (atomic_load(&w->committed) < ticket) {
        if (atomic_load(&w->failing) || mono_ms() >= until) {
            rc = EG_EIO;
            break;
        }
        struct timespec ts;
        deadline_at(&ts, until);
        pthread_cond_timedwait(&w->done, &w->lock, &ts);
    }
    w->waiters--;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

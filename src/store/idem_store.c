/* idem_store.c - the idempotency store interface: dispatch, ops and their
 * callback contract (see idem_store.h).
 *
 * An op lives until everything holding it let go (refs): its timer (the
 * deferred answer of the memory store, the Redis deadline), its thread-pool
 * work (sqlite), a Redis reply still due. Its answer is given once, by
 * eg_idem_op_finish; a cancelled op's answer goes nowhere, except that a
 * reservation it made is released, so a client that left does not hold the
 * key until the lock expires.
 */
#include "idem_store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* The coarse clock (the last tick's time, a few ms behind): expiries are of
 * seconds, and it is read twice a request without the TSC. */
static uint64_t wall_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void eg_idem_store_init(eg_idem_store_t *s, const eg_idem_ops_t *ops, const eg_idem_store_opts_t *o)
{
    s->ops = ops;
    s->clock_ms = o->clock_ms ? o->clock_ms : wall_ms;
    s->clock_arg = o->clock_ms ? o->clock_arg : NULL;
    s->purge_every_ms = o->purge_every_ms ? o->purge_every_ms : 60000;
    atomic_init(&s->failures, 0);
    atomic_init(&s->seq, 0);
    /* owners must differ between processes and nodes; a failed getrandom
     * falls back on the clock and the address, still unlikely to repeat */
    if (getrandom(s->instance, sizeof(s->instance), 0) != (ssize_t)sizeof(s->instance)) {
        uint64_t t = wall_ms(NULL) ^ (uint64_t)(uintptr_t)s;
        memcpy(s->instance, &t, sizeof(t));
    }
    atomic_init(&s->last_purge_ms, s->clock_ms(s->clock_arg));
}

uint64_t eg_idem_now(eg_idem_store_t *s)
{
    return s->clock_ms(s->clock_arg);
}

void eg_idem_failed(eg_idem_store_t *s)
{
    atomic_fetch_add(&s->failures, 1);
}

int eg_idem_store_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                       size_t errlen)
{
    if (!o || !out) return EG_EINVAL;
    switch (o->backend) {
    case EG_IDEM_MEMORY:
        return eg_idem_memory_open(o, out, err, errlen);
    case EG_IDEM_SQLITE:
        return eg_idem_sqlite_open(o, out, err, errlen);
    case EG_IDEM_REDIS:
        return eg_idem_redis_open(o, out, err, errlen);
    }
    snprintf(err, errlen, "unknown idempotency store backend");
    return EG_EINVAL;
}

void eg_idem_store_close(eg_idem_store_t *s)
{
    if (s) s->ops->close(s);
}

const char *eg_idem_store_backend_name(const eg_idem_store_t *s)
{
    return s->ops->name;
}

uint64_t eg_idem_store_failures(const eg_idem_store_t *s)
{
    return atomic_load(&((eg_idem_store_t *)s)->failures);
}

void eg_idem_op_error(eg_idem_op_t *op, const char *fmt, const char *what)
{
    snprintf(op->why, sizeof(op->why), fmt, what ? what : "");
    op->res.state = EG_IDEM_ERROR;
    op->res.why = op->why;
    op->res.record = NULL;
    op->res.len = 0;
}

static void release_for(eg_idem_op_t *op)
{
    eg_idem_io_t io = {op->loop, op->redis};
    if (op->s->ops->release(op->s, &io, &op->req) != EG_OK) eg_idem_failed(op->s);
}

void eg_idem_op_finish(eg_idem_op_t *op)
{
    if (op->delivered) {
        /* a late answer nobody waits for: do not keep what it took */
        if (op->res.state == EG_IDEM_RESERVED) release_for(op);
        return;
    }
    op->delivered = 1;
    if (op->cancelled) {
        if (op->res.state == EG_IDEM_RESERVED) release_for(op);
        return;
    }
    op->cb(op->arg, &op->res);
}

void eg_idem_op_unref(eg_idem_op_t *op)
{
    if (--op->refs > 0) return;
    free(op->record);
    free(op);
}

void eg_idem_op_timer_closed(uv_handle_t *h)
{
    eg_idem_op_unref(h->data);
}

/* A purge, at most once per purge_every_ms across every thread: the
 * first caller past the interval takes it. */
static void maybe_purge(eg_idem_store_t *s, uv_loop_t *loop)
{
    if (!s->ops->purge_later) return;
    uint64_t now = eg_idem_now(s), last = atomic_load(&s->last_purge_ms);
    if (now < last + s->purge_every_ms) return;
    if (atomic_compare_exchange_strong(&s->last_purge_ms, &last, now)) s->ops->purge_later(s, loop);
}

/* A key, or scope bytes for a backend that takes them (a scope bound for
 * another backend would leave it without a key). */
static int req_ok(const eg_idem_store_t *s, const eg_idem_req_t *req)
{
    if (req->scope) return s->ops->takes_scope && req->scope_len > 0;
    size_t n = strnlen(req->key, sizeof(req->key));
    return n > 0 && n <= EG_IDEM_SCOPED_LEN;
}

/* A begin's owner: this process's random instance, then the sequence
 * number big-endian (one store on a little-endian host, not eight). */
static void owner_of(const eg_idem_store_t *s, uint64_t seq, unsigned char owner[16])
{
    memcpy(owner, s->instance, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    seq = __builtin_bswap64(seq);
    memcpy(owner + 8, &seq, 8);
#else
    for (int i = 0; i < 8; i++)
        owner[8 + i] = (unsigned char)(seq >> (56 - 8 * i));
#endif
}

int eg_idem_store_takes_scope(const eg_idem_store_t *s)
{
    return s && s->ops->takes_scope;
}

int eg_idem_begin(eg_idem_store_t *s, const eg_idem_io_t *io, eg_idem_req_t *req, uint64_t lock_ms,
                  eg_idem_cb cb, void *arg, eg_idem_op_t **opp)
{
    if (!s || !io || !io->loop || !req || !cb || lock_ms == 0 || !req_ok(s, req)) return EG_EINVAL;
    eg_idem_op_t *op = calloc(1, sizeof(*op));
    if (!op) return EG_ENOMEM;
    op->s = s;
    op->loop = io->loop;
    op->redis = io->redis;
    op->cb = cb;
    op->arg = arg;
    op->lock_ms = lock_ms;
    /* the owner: this process's random instance and a sequence number */
    uint64_t seq = atomic_fetch_add(&s->seq, 1) + 1;
    op->req = *req;
    owner_of(s, seq, op->req.owner);
    int rc = s->ops->begin(s, op);
    if (rc != EG_OK) {
        free(op);
        return rc;
    }
    memcpy(req->owner, op->req.owner, sizeof(req->owner));
    req->scope_hash = op->req.scope_hash;
    req->hint = op->req.hint;
    if (opp) *opp = op;
    maybe_purge(s, io->loop);
    return EG_OK;
}

int eg_idem_begin_now(eg_idem_store_t *s, eg_idem_req_t *req, uint64_t lock_ms,
                      eg_idem_result_t *res, unsigned char **record)
{
    if (!s || !req || !res || !record || lock_ms == 0 || !req_ok(s, req)) return EG_EINVAL;
    if (!s->ops->decide) return EG_EAGAIN;
    /* no op: the decision is written straight into the caller's structs */
    uint64_t seq = atomic_fetch_add(&s->seq, 1) + 1;
    owner_of(s, seq, req->owner);
    memset(res, 0, sizeof(*res));
    *record = NULL;
    return s->ops->decide(s, req, lock_ms, res, record);
}

void eg_idem_prefetch(eg_idem_store_t *s, eg_idem_req_t *req)
{
    if (s && req && s->ops->prefetch && req_ok(s, req)) s->ops->prefetch(s, req);
}

void eg_idem_cancel(eg_idem_op_t *op)
{
    if (op) op->cancelled = 1;
}

int eg_idem_complete(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                     const unsigned char *record, size_t len, uint64_t ttl_ms)
{
    if (!s || !io || !io->loop || !req || !record || !len || !ttl_ms || !req_ok(s, req))
        return EG_EINVAL;
    return s->ops->complete(s, io, req, record, len, ttl_ms);
}

int eg_idem_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req)
{
    if (!s || !io || !io->loop || !req || !req_ok(s, req)) return EG_EINVAL;
    return s->ops->release(s, io, req);
}

int eg_idem_purge(eg_idem_store_t *s, size_t *n)
{
    size_t k = 0;
    int rc = s->ops->purge(s, &k);
    if (n) *n = k;
    return rc;
}

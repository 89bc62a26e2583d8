/* idem_store_impl.h - what the idempotency store backends share (private
 * to idem_store*.c): the store's common part, the op and the vtable. */
#ifndef EG_IDEM_STORE_IMPL_H
#define EG_IDEM_STORE_IMPL_H

#include <stdatomic.h>

#include "idem_store.h"

typedef struct {
    const char *name;
    /* Starts op (loop thread). 0: the backend will finish it (eg_idem_op_finish)
     * and drop each reference it took; negative: nothing started, op untouched. */
    int (*begin)(eg_idem_store_t *s, eg_idem_op_t *op);
    /* Decides a begin at once into *res (and *record, the caller's to free,
     * when COMPLETED; res->why a static string when ERROR), no op, no
     * delivery; req->owner is set. NULL for a backend that cannot
     * (eg_idem_begin_now answers EG_EAGAIN). */
    int (*decide)(eg_idem_store_t *s, eg_idem_req_t *req, uint64_t lock_ms, eg_idem_result_t *res,
                  unsigned char **record);
    /* eg_idem_prefetch; NULL for none */
    void (*prefetch)(eg_idem_store_t *s, eg_idem_req_t *req);
    int (*complete)(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                    const unsigned char *record, size_t len, uint64_t ttl_ms);
    int (*release)(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req);
    /* blocking purge (eg_idem_purge) */
    int (*purge)(eg_idem_store_t *s, size_t *n);
    /* a purge without blocking the loop; NULL when the backend needs none */
    void (*purge_later)(eg_idem_store_t *s, uv_loop_t *loop);
    void (*close)(eg_idem_store_t *s);
    /* 1: entries may be named by eg_idem_req_t.scope instead of key */
    int takes_scope;
} eg_idem_ops_t;

struct eg_idem_store_s {
    const eg_idem_ops_t *ops;
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
    uint64_t purge_every_ms;
    atomic_uint_fast64_t last_purge_ms;
    atomic_uint_fast64_t failures;
    atomic_uint_fast64_t seq;  /* owners: instance || ++seq */
    unsigned char instance[8]; /* random per open: owners differ across processes */
};

struct eg_idem_op_s {
    eg_idem_store_t *s;
    uv_loop_t *loop;
    struct eg_redis_s *redis;
    eg_idem_cb cb;
    void *arg;
    eg_idem_req_t req;
    uint64_t lock_ms;
    int cancelled; /* eg_idem_cancel was called */
    int delivered; /* the answer was given (or dropped, cancelled) */
    int refs;      /* what still holds the op: its timer, its work, a Redis reply */
    int in_begin;  /* redis: inside eg_redis_eval */
    eg_idem_result_t res;
    unsigned char *record; /* res.record's buffer, owned */
    char why[160];
    uv_timer_t timer;
    uv_work_t work;
};

/* Fills the common part from the options. */
void eg_idem_store_init(eg_idem_store_t *s, const eg_idem_ops_t *ops,
                        const eg_idem_store_opts_t *o);
uint64_t eg_idem_now(eg_idem_store_t *s);
void eg_idem_failed(eg_idem_store_t *s);

/* Sets op->res to ERROR with a message (fmt with one %s). */
void eg_idem_op_error(eg_idem_op_t *op, const char *fmt, const char *what);
/* Gives op->res to the caller, once: the callback, or, when the op was
 * cancelled, the release of what it reserved. A second call (a late Redis
 * reply after a timeout) only releases a reservation. Loop thread. */
void eg_idem_op_finish(eg_idem_op_t *op);
/* Drops one reference; the last frees the op. */
void eg_idem_op_unref(eg_idem_op_t *op);
/* Frees an op whose timer was closed: the close callback. */
void eg_idem_op_timer_closed(uv_handle_t *h);

int eg_idem_memory_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                        size_t errlen);
/* The memory store's chunks (mapped, of them empty and kept) and entries
 * outside them (malloc'd): for tests. 0, or EG_EINVAL for another backend. */
int eg_idem_memory_usage(eg_idem_store_t *s, size_t *chunks, size_t *free_chunks, size_t *big);
/* Tests: from now on every name hashes to one value, so that the memory
 * store's probes, removals and name comparisons meet full collisions. */
int eg_idem_memory_collide(eg_idem_store_t *s);
int eg_idem_sqlite_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                        size_t errlen);
int eg_idem_redis_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                       size_t errlen);

#endif

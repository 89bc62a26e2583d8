/* idem_store.h - where Idempotency-Key entries live: memory, SQLite or
 * Redis, asked from the worker loops without blocking them.
 *
 * An entry is found by its scoped key (eg_idem_scope_key: principal, route,
 * method and key hashed) and holds the request's fingerprint and either a
 * reservation (in flight: its owner and an expiry, lock_ms after it was
 * made) or the response to replay (completed: a record from
 * eg_idem_record_encode, kept ttl_ms). One request's life:
 *
 *   eg_idem_begin  -> RESERVED: forward it; then eg_idem_complete with the
 *                     response, or eg_idem_release (5xx, 408, 429, no
 *                     response at all) so that a retry may run it again
 *                  -> IN_FLIGHT (same fingerprint, reserved by another
 *                     request and not expired): 409, Retry-After
 *                  -> COMPLETED (same fingerprint): replay the record
 *                  -> MISMATCH (another fingerprint, in flight or done): 422
 *                  -> ERROR: the store failed; the caller's policy decides
 *
 * The reservation is atomic in every backend: of any number of concurrent
 * begins on one key (threads, processes, gateway nodes on one Redis), one
 * gets RESERVED. A reservation whose owner never completes or releases it
 * (the gateway was killed) expires by itself after lock_ms; a completed
 * entry after ttl_ms. Complete and release act only on the caller's own
 * reservation (req->owner): a request that outlived its reservation cannot
 * release a later request's, nor overwrite a response already stored.
 * Complete stores the record also when the entry expired meanwhile (the
 * response exists: a retry should get it, not run the request again).
 *
 * Backends (see docs/idempotency.md, "Idempotency store"):
 * - memory: one hash map per process, shared by every worker thread under a
 *   mutex; answers at once (still through the callback, on the next loop
 *   iteration); expired entries are dropped as they are met and swept
 *   incrementally; a cap on the bytes it holds.
 * - sqlite: a table `idempotency` in the store's database file (its own
 *   connection: WAL, a busy timeout, the file created 0600); calls run on
 *   libuv's thread pool; expired rows purged in the background.
 * - redis: one string key per entry, <prefix>idem:<scoped key>; begin is
 *   one Lua script (SET NX PX lock_ms in effect), complete and release are
 *   scripts sent on the worker's connection (redis.h) without waiting.
 *
 * Threads: a store is shared by every worker. Each call is made on the
 * thread running io->loop, and its callback runs on that loop. */
#ifndef EG_IDEM_STORE_H
#define EG_IDEM_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errgate/common.h"
#include "errgate/idempotency.h"

struct eg_redis_s;

typedef enum { EG_IDEM_MEMORY = 0, EG_IDEM_SQLITE, EG_IDEM_REDIS } eg_idem_backend_t;

typedef struct {
    eg_idem_backend_t backend;
    const char *path;         /* sqlite: the database file (the key store's); copied */
    uint64_t busy_timeout_ms; /* sqlite: the longest a call waits for another writer (0: 5 s) */
    const char *redis_prefix; /* redis: key prefix (NULL: "errgate:"); copied */
    uint64_t timeout_ms;      /* redis: a begin unanswered by then is ERROR (0: 50 ms) */
    size_t max_bytes;         /* memory: the most it holds, records included (0: 64 MiB) */
    uint64_t purge_every_ms;  /* memory, sqlite: a purge of expired entries this often (0: 60 s) */
    /* memory, sqlite: the wall clock in ms that expiries are measured on
     * (NULL: CLOCK_REALTIME). Called from any thread. For tests. */
    uint64_t (*clock_ms)(void *arg);
    void *clock_arg;
} eg_idem_store_opts_t;

typedef struct eg_idem_store_s eg_idem_store_t;
typedef struct eg_idem_op_s eg_idem_op_t;

/* Where a call runs: the calling worker's loop and, for the redis backend,
 * that worker's Redis connection (made by whoever owns it; the store never
 * makes, frees or reconfigures it). Read during the call only. */
typedef struct {
    uv_loop_t *loop;
    struct eg_redis_s *redis; /* redis: required; memory, sqlite: ignored */
} eg_idem_io_t;

/* One request's entry. The caller fills key (or, for a backend that takes
 * it, scope) and fp; eg_idem_begin writes owner (unique to this begin
 * across processes and nodes). Complete and release take the same struct
 * back.
 *
 * scope: the scope's bytes themselves (eg_idem_scope_bytes), for the
 * memory backend only (eg_idem_store_takes_scope): it hashes them with its
 * own keyed hash and compares them whole on every lookup, so the scoped
 * key needs no SHA-256 and no two scopes can share an entry. The bytes
 * must stay valid until the call's answer (begin) or return (complete,
 * release). NULL: key names the entry (every backend). */
typedef struct {
    char key[EG_IDEM_SCOPED_LEN + 1];   /* eg_idem_scope_key, or "" with scope */
    unsigned char fp[EG_IDEM_HASH_LEN]; /* eg_idem_fingerprint */
    unsigned char owner[16];            /* out of eg_idem_begin */
    const unsigned char *scope;         /* NULL, or scope_len bytes */
    size_t scope_len;
    uint64_t scope_hash; /* the store's: 0 at first, set by begin for complete and release */
    /* the store's: where a begin that reserved put the entry (memory), for
     * eg_idem_prefetch before the complete; never dereferenced by it */
    const void *hint;
    size_t hint_slot; /* the store's: the slot that begin put it in (memory) */
} eg_idem_req_t;

typedef enum {
    EG_IDEM_RESERVED = 0, /* the caller holds the key: forward, then complete or release */
    EG_IDEM_IN_FLIGHT,    /* another request holds it: 409 with retry_after_ms */
    EG_IDEM_COMPLETED,    /* record is the response to replay */
    EG_IDEM_MISMATCH,     /* the key was used with another fingerprint: 422 */
    EG_IDEM_ERROR         /* the store failed or timed out: why says how */
} eg_idem_state_t;

/* What a begin found. record and why belong to the store and are valid
 * only until the callback returns (copy what is kept). */
typedef struct {
    eg_idem_state_t state;
    const unsigned char *record; /* COMPLETED: the stored record (eg_idem_record_decode) */
    size_t len;
    uint64_t retry_after_ms; /* IN_FLIGHT: until the reservation expires (>= 1) */
    const char *why;         /* ERROR: for the log, e.g. "redis timed out" */
} eg_idem_result_t;

typedef void (*eg_idem_cb)(void *arg, const eg_idem_result_t *res);

/* Opens a store; on failure writes a one-line reason to err. sqlite
 * creates the file (0600) and the table if missing, and purges expired
 * rows once before returning. */
int eg_idem_store_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                       size_t errlen);
/* Frees the store. Only once nothing is pending on it: every loop that
 * used it has run until its callbacks, timers and thread-pool work are done
 * (uv_run until it returns 0 does it). */
void eg_idem_store_close(eg_idem_store_t *s);
const char *eg_idem_store_backend_name(const eg_idem_store_t *s);
/* Whether the backend names entries by eg_idem_req_t.scope (memory): 1 or 0. */
int eg_idem_store_takes_scope(const eg_idem_store_t *s);
/* Completes and releases that failed (they are not waited for, so this is
 * where their failures are seen), and background purges that failed. */
uint64_t eg_idem_store_failures(const eg_idem_store_t *s);

/* Looks the key up and, if it is free (absent or expired), reserves it for
 * lock_ms (>= 1) with req->fp. Returns 0 and writes req->owner and *op
 * (may be NULL when the caller will never cancel): cb will be called
 * exactly once on io->loop, never before this returns, unless the op is
 * cancelled first. Returns a negative EG_E* code when it could not start
 * (EG_EINVAL, EG_ENOMEM, EG_ETOOBIG: the memory store is full, EG_EIO:
 * no Redis connection up): cb is never called. The store copies req; it
 * keeps no pointer to it or to io. redis: the answer comes within
 * timeout_ms (ERROR "redis timed out" when Redis is late; a late reply
 * that reserved the key releases it). sqlite: within the busy timeout. */
int eg_idem_begin(eg_idem_store_t *s, const eg_idem_io_t *io, eg_idem_req_t *req, uint64_t lock_ms,
                  eg_idem_cb cb, void *arg, eg_idem_op_t **op);

/* eg_idem_begin for a backend that decides at once (memory): the same
 * decision, answered in *res now, with no callback, timer or loop
 * iteration (a gateway's request then needs no wait: half of the stage's
 * cost on the memory store). Returns EG_OK with *res (res->record, when
 * COMPLETED, is *record, which the caller frees), EG_EAGAIN when the
 * backend only answers through eg_idem_begin (sqlite, redis), or the
 * errors of eg_idem_begin. Writes req->owner as eg_idem_begin does. */
int eg_idem_begin_now(eg_idem_store_t *s, eg_idem_req_t *req, uint64_t lock_ms,
                      eg_idem_result_t *res, unsigned char **record);

/* A hint before a begin on req (scope or key set): a backend that looks
 * it up in memory (memory) hashes it now (req->scope_hash) and starts
 * fetching its table slot, so that the fingerprint's SHA-256 runs while
 * the slot comes from memory. Before a complete (the same req back): the
 * slot and the entry the begin reserved, out of the caches by then (the
 * upstream's round trip and the other requests came between). Any other
 * backend: nothing. */
void eg_idem_prefetch(eg_idem_store_t *s, eg_idem_req_t *req);

/* The request went away before its answer: cb will not be called, and if
 * the begin reserved the key, the reservation is released by the store.
 * Only between a successful begin and its callback (the op is the store's
 * and is freed after either). */
void eg_idem_cancel(eg_idem_op_t *op);

/* Stores the response of the caller's reservation (record[0..len) from
 * eg_idem_record_encode, copied; the caller keeps its buffer) for ttl_ms
 * (>= 1), when the entry is still the caller's reservation or no longer
 * exists. Not waited for: returns 0 once started (a failure later is
 * counted in eg_idem_store_failures), or a negative code when it could not
 * start. memory: done before it returns; EG_ETOOBIG when the record does
 * not fit the memory cap (the entry is removed instead: the key is free). */
int eg_idem_complete(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                     const unsigned char *record, size_t len, uint64_t ttl_ms);

/* Frees the key when the entry is still the caller's reservation (the
 * upstream answered 5xx, 408 or 429, or did not answer). Not waited for,
 * like complete. */
int eg_idem_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req);

/* Removes expired entries now, blocking (memory, sqlite; redis expires its
 * keys itself: 0). For tests and the CLI, not the worker loops. *n (may
 * be NULL): how many were removed. */
int eg_idem_purge(eg_idem_store_t *s, size_t *n);

#endif

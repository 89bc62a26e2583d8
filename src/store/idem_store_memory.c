/* idem_store_memory.c - idempotency entries in this process's memory.
 *
 * One chained hash map shared by every worker thread under one mutex: a
 * begin is a lookup and perhaps an insert, so the lock is held for
 * microseconds (plus the copy of a record being replayed). The answer is
 * known before eg_idem_begin returns but is given through the callback on
 * the loop's next iteration (a zero timer), so the contract is the same as
 * for the backends that really wait.
 *
 * Expiry: an expired entry is dropped when a call meets it, every call
 * also sweeps the next 16 buckets, and a full sweep runs every
 * purge_every_ms (from a begin) or when the map is full. The map holds at
 * most max_bytes (entries and records): a begin that would pass it is
 * refused (EG_ETOOBIG), a record that would pass it is not kept (the entry
 * goes, the key is free again). Everything is lost with the process.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idem_store_impl.h"

/* Two buckets swept a call keep up with one insert a call (the table grows
 * to a load of one): more only walked cold memory on every request. */
enum { SWEEP_BUCKETS = 2, MIN_BUCKETS = 1024, FULL_RETRY_MS = 1000 };

typedef struct ent_s {
    struct ent_s *next;
    uint64_t hash;
    uint64_t expires_ms;
    int completed;
    unsigned char fp[EG_IDEM_HASH_LEN];
    unsigned char owner[16];
    unsigned char *record;
    size_t len;
    char key[EG_IDEM_SCOPED_LEN + 1];
} ent_t;

typedef struct {
    eg_idem_store_t base;
    pthread_mutex_t lock;
    ent_t **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    size_t bytes, max_bytes;
    size_t cursor;          /* the next bucket to sweep */
    uint64_t full_purge_ms; /* the last sweep made because the map was full */
} mem_t;

/* Scoped keys are SHA-256 in hex (eg_idem_scope_key): their first 16
 * digits are already a uniform 64-bit hash. Anything else is FNV-1a'd. */
static uint64_t hash_key(const char *k)
{
    uint64_t h = 0;
    size_t i = 0;
    for (; i < 16; i++) {
        unsigned char c = (unsigned char)k[i];
        unsigned v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 16;
        if (v == 16) break;
        h = h << 4 | v;
    }
    if (i == 16) return h;
    h = 1469598103934665603ULL;
    for (; *k; k++)
        h = (h ^ (unsigned char)*k) * 1099511628211ULL;
    return h;
}

static size_t cost(const ent_t *e)
{
    return sizeof(*e) + e->len;
}

static void unlink_free(mem_t *m, ent_t **at)
{
    ent_t *e = *at;
    *at = e->next;
    m->count--;
    m->bytes -= cost(e);
    free(e->record);
    free(e);
}

/* Drops the expired entries of bucket b. */
static size_t sweep_bucket(mem_t *m, size_t b, uint64_t now)
{
    size_t n = 0;
    for (ent_t **at = &m->buckets[b]; *at;) {
        if ((*at)->expires_ms <= now) {
            unlink_free(m, at);
            n++;
        } else {
            at = &(*at)->next;
        }
    }
    return n;
}

static size_t sweep_all(mem_t *m, uint64_t now)
{
    size_t n = 0;
    for (size_t b = 0; b < m->nbuckets; b++)
        n += sweep_bucket(m, b, now);
    return n;
}

static void sweep_some(mem_t *m, uint64_t now)
{
    for (int i = 0; i < SWEEP_BUCKETS; i++) {
        sweep_bucket(m, m->cursor, now);
        m->cursor = (m->cursor + 1) & (m->nbuckets - 1);
    }
}

/* The live entry for key (an expired one met on the way is dropped), and
 * where it is linked. */
static ent_t **find(mem_t *m, const char *key, uint64_t h, uint64_t now)
{
    for (ent_t **at = &m->buckets[h & (m->nbuckets - 1)]; *at;) {
        ent_t *e = *at;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            if (e->expires_ms > now) return at;
            unlink_free(m, at);
            return NULL;
        }
        at = &e->next;
    }
    return NULL;
}

/* Doubles the buckets when entries outnumber them (a failed allocation
 * keeps the old size: longer chains, still correct). */
static void grow(mem_t *m)
{
    if (m->count <= m->nbuckets) return;
    size_t n = m->nbuckets * 2;
    ent_t **nb = calloc(n, sizeof(*nb));
    if (!nb) return;
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (ent_t *e = m->buckets[b], *next; e; e = next) {
            next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->nbuckets = n;
    m->cursor &= n - 1;
}

/* Room for add more bytes, sweeping everything first when the map is full
 * (at most once a second: a full map under load must not sweep per call). */
static int room(mem_t *m, size_t add, uint64_t now)
{
    if (m->bytes + add <= m->max_bytes) return 1;
    if (now - m->full_purge_ms >= FULL_RETRY_MS) {
        m->full_purge_ms = now;
        sweep_all(m, now);
    }
    return m->bytes + add <= m->max_bytes;
}

static ent_t *insert(mem_t *m, const eg_idem_req_t *req, uint64_t h)
{
    ent_t *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->hash = h;
    snprintf(e->key, sizeof(e->key), "%s", req->key);
    memcpy(e->fp, req->fp, sizeof(e->fp));
    ent_t **b = &m->buckets[h & (m->nbuckets - 1)];
    e->next = *b;
    *b = e;
    m->count++;
    m->bytes += cost(e);
    grow(m);
    return e;
}

/* The answer, known now, given on the loop's next iteration. */
static void deliver(uv_timer_t *t)
{
    eg_idem_op_t *op = t->data;
    eg_idem_op_finish(op);
    uv_close((uv_handle_t *)t, eg_idem_op_timer_closed);
}

/* The decision, under the lock; op->res and op->record hold the answer. */
static int mem_decide(eg_idem_store_t *s, eg_idem_op_t *op)
{
    mem_t *m = (mem_t *)s;
    const eg_idem_req_t *req = &op->req;
    uint64_t now = eg_idem_now(s), h = hash_key(req->key);
    int rc = EG_OK;
    pthread_mutex_lock(&m->lock);
    sweep_some(m, now);
    ent_t **at = find(m, req->key, h, now), *e = at ? *at : NULL;
    if (e && memcmp(e->fp, req->fp, sizeof(e->fp)) != 0) {
        op->res.state = EG_IDEM_MISMATCH;
    } else if (e && !e->completed) {
        op->res.state = EG_IDEM_IN_FLIGHT;
        op->res.retry_after_ms = e->expires_ms - now;
    } else if (e) {
        if ((op->record = malloc(e->len))) {
            memcpy(op->record, e->record, e->len);
            op->res.state = EG_IDEM_COMPLETED;
            op->res.record = op->record;
            op->res.len = e->len;
        } else {
            eg_idem_op_error(op, "memory store: out of memory%s", NULL);
        }
    } else if (!room(m, sizeof(ent_t), now)) {
        rc = EG_ETOOBIG;
    } else if (!(e = insert(m, req, h))) {
        rc = EG_ENOMEM;
    } else {
        memcpy(e->owner, req->owner, sizeof(e->owner));
        e->expires_ms = now + op->lock_ms;
        op->res.state = EG_IDEM_RESERVED;
    }
    pthread_mutex_unlock(&m->lock);
    if (rc != EG_OK) {
        free(op->record);
        op->record = NULL;
    }
    return rc;
}

static int mem_begin(eg_idem_store_t *s, eg_idem_op_t *op)
{
    int rc = mem_decide(s, op);
    if (rc != EG_OK) return rc;
    uv_timer_init(op->loop, &op->timer);
    op->timer.data = op;
    op->refs = 1;
    uv_timer_start(&op->timer, deliver, 0, 0);
    return EG_OK;
}

static int mem_complete(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                        const unsigned char *record, size_t len, uint64_t ttl_ms)
{
    (void)io;
    mem_t *m = (mem_t *)s;
    uint64_t now = eg_idem_now(s), h = hash_key(req->key);
    int rc = EG_OK;
    pthread_mutex_lock(&m->lock);
    ent_t **at = find(m, req->key, h, now), *e = at ? *at : NULL;
    if (e && (e->completed || memcmp(e->owner, req->owner, sizeof(e->owner)) != 0))
        goto out; /* not the caller's any more: the stored answer stays */
    /* e, when there is one, is live: a sweep leaves it (not at) in place */
    size_t had = e ? cost(e) : 0, need = sizeof(ent_t) + len;
    unsigned char *copy = NULL;
    if (m->bytes - had + need > m->max_bytes && now - m->full_purge_ms >= FULL_RETRY_MS) {
        m->full_purge_ms = now;
        sweep_all(m, now);
    }
    if (m->bytes - had + need > m->max_bytes)
        rc = EG_ETOOBIG;
    else if (!(copy = malloc(len)))
        rc = EG_ENOMEM;
    else if (!e && !(e = insert(m, req, h)))
        rc = EG_ENOMEM;
    if (rc != EG_OK) {
        free(copy);
        /* a reservation that cannot become a replay frees the key */
        if ((at = find(m, req->key, h, now))) unlink_free(m, at);
        goto out;
    }
    memcpy(copy, record, len);
    m->bytes -= cost(e);
    free(e->record);
    e->record = copy;
    e->len = len;
    m->bytes += cost(e);
    e->completed = 1;
    memset(e->owner, 0, sizeof(e->owner));
    e->expires_ms = now + ttl_ms;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req)
{
    (void)io;
    mem_t *m = (mem_t *)s;
    uint64_t now = eg_idem_now(s), h = hash_key(req->key);
    pthread_mutex_lock(&m->lock);
    ent_t **at = find(m, req->key, h, now);
    if (at && !(*at)->completed && memcmp((*at)->owner, req->owner, sizeof(req->owner)) == 0)
        unlink_free(m, at);
    pthread_mutex_unlock(&m->lock);
    return EG_OK;
}

static int mem_purge(eg_idem_store_t *s, size_t *n)
{
    mem_t *m = (mem_t *)s;
    pthread_mutex_lock(&m->lock);
    *n = sweep_all(m, eg_idem_now(s));
    pthread_mutex_unlock(&m->lock);
    return EG_OK;
}

static void mem_purge_later(eg_idem_store_t *s, uv_loop_t *loop)
{
    (void)loop;
    size_t n;
    mem_purge(s, &n);
}

static void mem_close(eg_idem_store_t *s)
{
    mem_t *m = (mem_t *)s;
    for (size_t b = 0; b < m->nbuckets; b++)
        while (m->buckets[b])
            unlink_free(m, &m->buckets[b]);
    free(m->buckets);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const eg_idem_ops_t mem_ops = {
    .name = "memory",
    .begin = mem_begin,
    .decide = mem_decide,
    .complete = mem_complete,
    .release = mem_release,
    .purge = mem_purge,
    .purge_later = mem_purge_later,
    .close = mem_close};

int eg_idem_memory_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                        size_t errlen)
{
    mem_t *m = calloc(1, sizeof(*m));
    if (m) m->buckets = calloc(MIN_BUCKETS, sizeof(*m->buckets));
    if (!m || !m->buckets || pthread_mutex_init(&m->lock, NULL) != 0) {
        if (m) free(m->buckets);
        free(m);
        snprintf(err, errlen, "memory idempotency store: out of memory");
        return EG_ENOMEM;
    }
    eg_idem_store_init(&m->base, &mem_ops, o);
    m->nbuckets = MIN_BUCKETS;
    m->max_bytes = o->max_bytes ? o->max_bytes : (size_t)64 << 20;
    *out = &m->base;
    return EG_OK;
}

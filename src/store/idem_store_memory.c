/* idem_store_memory.c - idempotency entries in this process's memory.
 *
 * One open-addressing hash map (linear probing, the hash and expiry in the
 * table) shared by every worker thread under one mutex: a begin is a
 * lookup and perhaps an insert, so the lock is held for well under a
 * microsecond (plus the copy of a record being replayed). The answer is
 * known before eg_idem_begin returns but is given through the callback on
 * the loop's next iteration (a zero timer), so the contract is the same as
 * for the backends that really wait.
 *
 * An entry is named by the scope's bytes (eg_idem_req_t.scope: principal,
 * route, method and key, length-prefixed), or by a scoped key string for
 * callers without them. Its slot holds a SipHash-1-3 of those bytes under
 * a random key of this store (so no client can choose keys that pile up
 * on one probe sequence), and a lookup compares the bytes whole: a hash
 * collision costs a probe, never another scope's entry. No SHA-256 of the
 * scope is needed on this path (SQLite and Redis keep the SHA-256 key:
 * it is persisted and shared between processes).
 *
 * Entries are cut one after the other from 2 MiB chunks (huge pages), the
 * table's slots are in huge pages too: a new key costs one random access
 * (its slot) and writes that stream, no malloc (see chunk_t below).
 *
 * Expiry: an expired entry is dropped when a call meets it, every call
 * also sweeps the next 4 slots, and a full sweep runs every
 * purge_every_ms (from a begin) or when the map is full. The map holds at
 * most max_bytes (entries and records): a begin that would pass it is
 * refused (EG_ETOOBIG), a record that would pass it is not kept (the entry
 * goes, the key is free again). Everything is lost with the process.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "idem_store_impl.h"

/* Under AddressSanitizer, a chunk's bytes outside its live entries are
 * poisoned: a read or write past an entry, or of an entry already freed
 * (a chunk's memory is reused, not returned to malloc), is reported like
 * one of malloc'd memory. */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EG_ASAN)
#define EG_ASAN 1
#endif
#ifdef EG_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
/* not evaluated: POISON's size reads the entry, which only a sanitizer
 * build may afford */
#define POISON(p, n)   ((void)0)
#define UNPOISON(p, n) ((void)0)
#endif

/* Four slots swept a call keep up with one insert a call at a load of at
 * most one half; they are adjacent, so the sweep reads one or two cache
 * lines and touches an entry only to free it. */
enum { SWEEP_SLOTS = 4, MIN_SLOTS = 2048, FULL_RETRY_MS = 1000 };

/* Entries are cut from chunks of 2 MiB (one huge page, aligned to its
 * size), one after the other: a request's entry is written just after the
 * last one, so the writes stream (the prefetcher fetches ahead, one TLB
 * entry covers thousands of entries) where a reused freed entry was a
 * cold line somewhere else (its writes were a tenth of the stage's CPU
 * under load, most of it waiting at the lock's release). A chunk counts
 * its live entries; freeing one finds its chunk by masking the address
 * (the entry itself is not read: 2 s old, it is in no cache), and a chunk
 * whose last entry goes is reused from its start. Entries expire in about
 * the order they were made, so chunks empty in that order too. An entry
 * longer than ARENA_MAX_ENT, or one made when the chunks reach their
 * bound (twice max_bytes, so that long-lived entries pinning mostly dead
 * chunks cannot hold more than that), is malloc'd. */
#define CHUNK_BYTES   ((size_t)2 << 20)
#define CHUNK_HEAD    64
#define ARENA_MAX_ENT ((size_t)64 << 10)
/* Empty chunks kept for reuse; more are unmapped. */
enum { KEEP_FREE_CHUNKS = 4 };
/* The most name and record a reservation is made with room for. */
#define RESERVE_MAX ((size_t)4096)

typedef struct chunk_s {
    struct chunk_s *prev, *next; /* every chunk of the store; an empty one also on free_chunks */
    struct chunk_s *free_next;
    size_t live; /* entries cut from it and not freed */
    size_t used; /* the next entry's offset */
} chunk_t;

typedef struct {
    int completed;
    unsigned char fp[EG_IDEM_HASH_LEN];
    unsigned char owner[16];
    size_t len;           /* completed: the record's bytes, after the name */
    size_t room;          /* bytes after the struct (name and record) */
    size_t nlen;          /* the name's bytes: the scope, or the key string */
    unsigned char name[]; /* nlen bytes, then the record */
} ent_t;

/* An open-addressing slot: the hash and the expiry live in the table, so a
 * lookup that misses and a sweep that finds nothing expired never touch an
 * entry; and so does the entry's cost, so that dropping an expired entry
 * does not read it either. The table is in huge pages: its one random
 * access a request (the probe) then costs a cache miss, not also a page
 * walk (under a hypervisor's nested paging, several more misses). */
typedef struct {
    uint64_t hash;
    uint64_t expires_ms;
    ent_t *e;      /* NULL: empty */
    uint32_t cost; /* cost(e), what it counts against max_bytes */
    uint32_t big;  /* e was malloc'd, not cut from a chunk */
} slot_t;

typedef struct {
    eg_idem_store_t base;
    pthread_mutex_t lock;
    slot_t *slots;
    size_t nslots; /* a power of two, at least twice count */
    size_t count;
    size_t bytes, max_bytes;
    size_t cursor;          /* the next slot to sweep */
    uint64_t full_purge_ms; /* the last sweep made because the map was full */
    uint64_t k0, k1;        /* the hash's key, random per store */
    int collide;            /* tests: every name hashes alike (eg_idem_memory_collide) */
    uint64_t moves;         /* slots moved (removal, growth): a probe's hole is stale */
    /* the last record stored: a reservation is made with room for one as
     * large, so that its response is written into it (one entry a request) */
    size_t hint;
    chunk_t *cur;         /* where entries are cut */
    chunk_t *chunks;      /* all of them (prev/next) */
    chunk_t *free_chunks; /* empty, for reuse */
    size_t nchunks, nfree, max_chunks;
} mem_t;

/* An entry's name as a lookup sees it. */
typedef struct {
    const unsigned char *p;
    size_t n;
    uint64_t h;
} name_t;

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

/* SipHash-1-3 (the reduced-round variant Rust's and Python's hash maps
 * use): a keyed hash for the table, not a fingerprint; what keeps one
 * scope from another is the whole-name comparison in find. */
static __attribute__((noinline)) uint64_t siphash13(uint64_t k0, uint64_t k1,
                                                    const unsigned char *p, size_t n)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    uint64_t b = (uint64_t)n << 56, m;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&m, p + i, 8); /* host order: the hash stays in this process */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n >= 8 && i < n) { /* the last n - i bytes: the top of the last eight */
        memcpy(&m, p + n - 8, 8);
        b |= m >> (64 - 8 * (n - i));
    } else
#endif
        for (size_t k = 0; i + k < n; k++)
            b |= (uint64_t)p[i + k] << (8 * k);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

static inline __attribute__((always_inline)) name_t name_of(const mem_t *m,
                                                            const eg_idem_req_t *req)
{
    name_t k;
    if (req->scope) {
        k.p = req->scope;
        k.n = req->scope_len;
    } else {
        k.p = (const unsigned char *)req->key;
        k.n = strnlen(req->key, sizeof(req->key));
    }
    /* begin left the scope's hash in the request: complete and release
     * reuse it (a key string is short and not worth keeping) */
    k.h = req->scope && req->scope_hash ? req->scope_hash : siphash13(m->k0, m->k1, k.p, k.n);
    if (m->collide) k.h = 0x5eed; /* tests only: one probe run for every name */
    return k;
}

/* The bytes after an entry for n, rounded so that the next entry cut
 * after it stays aligned. */
static size_t room_for(size_t n)
{
    return ((sizeof(ent_t) + n + 15) & ~(size_t)15) - sizeof(ent_t);
}

/* What an entry of room bytes (after it) holding a name of nlen bytes and a
 * record of len counts against max_bytes: what is allocated for it, and its
 * name at least the 65 bytes of the hex key it stands for (a cap admits no
 * more entries with short names than with scoped keys). */
static size_t cost_in(size_t room, size_t nlen, size_t len)
{
    size_t named = len + (nlen > EG_IDEM_SCOPED_LEN + 1 ? nlen : EG_IDEM_SCOPED_LEN + 1);
    return sizeof(ent_t) + (room > named ? room : named);
}

static size_t cost_of(size_t nlen, size_t len)
{
    return cost_in(room_for(nlen + len), nlen, len);
}

static size_t cost(const ent_t *e)
{
    return cost_in(e->room, e->nlen, e->len);
}

static chunk_t *chunk_of(const void *p)
{
    return (chunk_t *)((uintptr_t)p & ~(uintptr_t)(CHUNK_BYTES - 1));
}

/* A chunk from the free ones, or mapped (aligned to its size, advised to
 * be a huge page); NULL at the bound or when the system has none. */
static chunk_t *chunk_get(mem_t *m)
{
    chunk_t *c = m->free_chunks;
    if (c) {
        m->free_chunks = c->free_next;
        m->nfree--;
    } else {
        if (m->nchunks >= m->max_chunks) return NULL;
        unsigned char *p =
            mmap(NULL, 2 * CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return NULL;
        uintptr_t a = ((uintptr_t)p + CHUNK_BYTES - 1) & ~(uintptr_t)(CHUNK_BYTES - 1);
        if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
        if ((uintptr_t)p + 2 * CHUNK_BYTES > a + CHUNK_BYTES)
            munmap((void *)(a + CHUNK_BYTES), (uintptr_t)p + 2 * CHUNK_BYTES - a - CHUNK_BYTES);
        c = (chunk_t *)a;
        (void)madvise(c, CHUNK_BYTES, MADV_HUGEPAGE); /* advice: without it, small pages */
        c->prev = NULL;
        c->next = m->chunks;
        if (m->chunks) m->chunks->prev = c;
        m->chunks = c;
        m->nchunks++;
    }
    c->free_next = NULL;
    c->live = 0;
    c->used = CHUNK_HEAD;
    POISON((unsigned char *)c + CHUNK_HEAD, CHUNK_BYTES - CHUNK_HEAD);
    return c;
}

/* Unmaps c (empty, not current, not on the free list). */
static void chunk_unmap(mem_t *m, chunk_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        m->chunks = c->next;
    if (c->next) c->next->prev = c->prev;
    m->nchunks--;
    UNPOISON(c, CHUNK_BYTES); /* the next mapping there starts clean */
    munmap(c, CHUNK_BYTES);
}

/* room bytes after a new entry: cut after the last one in the current
 * chunk, or malloc'd (*big). */
static ent_t *ent_alloc(mem_t *m, size_t room, uint32_t *big)
{
    size_t need = sizeof(ent_t) + room;
    if (need <= ARENA_MAX_ENT) {
        chunk_t *c = m->cur;
        if (c && c->used + need > CHUNK_BYTES) {
            if (c->live == 0) {
                c->used = CHUNK_HEAD; /* nothing left in it: from its start */
            } else {
                chunk_t *n = chunk_get(m);
                if (n)
                    m->cur = c = n; /* the old one goes when its last entry does */
                else
                    c = NULL;
            }
        } else if (!c) {
            c = m->cur = chunk_get(m);
        }
        if (c && c->used + need <= CHUNK_BYTES) {
            ent_t *e = (ent_t *)((unsigned char *)c + c->used);
            UNPOISON(e, need);
            c->used += need;
            /* the next entry, likely as long, goes just after this one: its
             * lines fetched for writing now are in cache by the next begin
             * (else each of its stores waits for its line, and the lock's
             * release waits for every store before it), and this entry's
             * record room, written at complete, was fetched so by the
             * begin before */
            const unsigned char *nx = (const unsigned char *)c + c->used;
            for (size_t o = 0; o < need && c->used + o < CHUNK_BYTES; o += 64)
                __builtin_prefetch(nx + o, 1);
            c->live++;
            *big = 0;
            e->room = room;
            return e;
        }
    }
    ent_t *e = malloc(need);
    if (e) e->room = room;
    *big = 1;
    return e;
}

/* Frees e without reading it: its chunk's count (the chunk header, shared
 * by thousands of entries freed in turn), or free() when big. */
static void ent_free(mem_t *m, ent_t *e, uint32_t big)
{
    if (!e) return;
    if (big) {
        free(e);
        return;
    }
    chunk_t *c = chunk_of(e);
    POISON(e, sizeof(*e) + e->room); /* a sanitizer build only: e is read */
    if (--c->live > 0) return;
    if (c == m->cur) {
        c->used = CHUNK_HEAD;
        return;
    }
    if (m->nfree < KEEP_FREE_CHUNKS) {
        c->free_next = m->free_chunks;
        m->free_chunks = c;
        m->nfree++;
        return;
    }
    chunk_unmap(m, c);
}

/* The slots' memory: huge pages when there are enough of them (a mapping
 * of whole 2 MiB pages, advised), else calloc. Zeroed. */
static slot_t *slots_alloc(size_t n)
{
    size_t bytes = n * sizeof(slot_t);
    if (bytes < CHUNK_BYTES) return calloc(n, sizeof(slot_t));
    unsigned char *p =
        mmap(NULL, bytes + CHUNK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)p + CHUNK_BYTES - 1) & ~(uintptr_t)(CHUNK_BYTES - 1);
    if (a > (uintptr_t)p) munmap(p, a - (uintptr_t)p);
    if ((uintptr_t)p + bytes + CHUNK_BYTES > a + bytes)
        munmap((void *)(a + bytes), (uintptr_t)p + bytes + CHUNK_BYTES - a - bytes);
    (void)madvise((void *)a, bytes, MADV_HUGEPAGE);
    return (slot_t *)a;
}

static void slots_free(slot_t *s, size_t n)
{
    size_t bytes = n * sizeof(slot_t);
    if (bytes < CHUNK_BYTES)
        free(s);
    else if (s)
        munmap(s, bytes);
}

/* Frees slot i's entry and closes the gap (linear probing's backward
 * shift, Knuth's algorithm R): a later slot moves into the gap unless its
 * home lies cyclically after the gap. Slot i may hold another entry after. */
static void slot_remove(mem_t *m, size_t i)
{
    m->count--;
    m->bytes -= m->slots[i].cost;
    m->moves++;
    ent_free(m, m->slots[i].e, m->slots[i].big);
    size_t mask = m->nslots - 1;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].e) break;
        size_t home = m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].e = NULL;
}

/* Drops slot i's entry when it expired (and the entries moved into i after
 * it); returns how many. */
static size_t sweep_slot(mem_t *m, size_t i, uint64_t now)
{
    size_t n = 0;
    while (m->slots[i].e && m->slots[i].expires_ms <= now) {
        slot_remove(m, i);
        n++;
    }
    return n;
}

static size_t sweep_all(mem_t *m, uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nslots; i++)
        n += sweep_slot(m, i, now);
    return n;
}

static void sweep_some(mem_t *m, uint64_t now)
{
    /* the sweep walks the table a few slots a call, its lines cold (met a
     * table's length of calls ago): fetched eight calls ahead */
    __builtin_prefetch(&m->slots[(m->cursor + 8 * SWEEP_SLOTS) & (m->nslots - 1)]);
    for (int k = 0; k < SWEEP_SLOTS; k++) {
        sweep_slot(m, m->cursor, now);
        m->cursor = (m->cursor + 1) & (m->nslots - 1);
    }
}

/* The slot of k's live entry (an expired one met is dropped), or -1; on -1,
 * *hole is the empty slot that ended the probe, where k would go (valid
 * while m->moves is unchanged). The name is compared whole: equal hashes
 * are not equal names. */
static long find(mem_t *m, const name_t *k, uint64_t now, size_t *hole)
{
    size_t mask = m->nslots - 1, i = k->h & mask;
    for (; m->slots[i].e; i = (i + 1) & mask) {
        slot_t *sl = &m->slots[i];
        if (sl->hash != k->h || sl->e->nlen != k->n || memcmp(sl->e->name, k->p, k->n) != 0)
            continue;
        if (sl->expires_ms > now) return (long)i;
        slot_remove(m, i);
        return -1; /* m->moves changed: the hole is not known */
    }
    if (hole) *hole = i;
    return -1;
}

/* Doubles the slots when they are more than half full (a failed
 * allocation keeps the old size: longer probes, still correct). Only the
 * table is read: the hashes are in it. */
static void grow(mem_t *m)
{
    if (m->count * 2 <= m->nslots) return;
    size_t n = m->nslots * 2, mask = n - 1;
    slot_t *ns = slots_alloc(n);
    if (!ns) return;
    for (size_t i = 0; i < m->nslots; i++) {
        if (!m->slots[i].e) continue;
        size_t j = m->slots[i].hash & mask;
        while (ns[j].e)
            j = (j + 1) & mask;
        ns[j] = m->slots[i];
    }
    slots_free(m->slots, m->nslots);
    /* mem_prefetch reads the two without the lock */
    __atomic_store_n(&m->slots, ns, __ATOMIC_RELAXED);
    __atomic_store_n(&m->nslots, n, __ATOMIC_RELAXED);
    m->cursor &= mask;
    m->moves++;
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

/* An entry for req named k, with room for extra record bytes after it. */
static ent_t *ent_new(mem_t *m, const eg_idem_req_t *req, const name_t *k, size_t extra,
                      uint32_t *big)
{
    size_t room = room_for(k->n + extra);
    ent_t *e = ent_alloc(m, room, big);
    if (!e) return NULL;
    e->completed = 0;
    e->len = 0;
    e->nlen = k->n;
    memcpy(e->name, k->p, k->n);
    memcpy(e->fp, req->fp, sizeof(e->fp));
    return e;
}

/* Puts e (whose key is not in the map) in a slot, expiring at expires:
 * the hole a find left when nothing moved since (moves), else the end of
 * a new probe; its slot, or -1 when the table could not grow. */
static long place(mem_t *m, uint64_t h, uint64_t expires, ent_t *e, uint32_t big, size_t hole,
                  uint64_t moves)
{
    m->count++;
    grow(m);
    m->count--;
    if (m->count + 1 >= m->nslots) return -1; /* an empty slot must remain */
    size_t mask = m->nslots - 1, i = h & mask;
    if (moves == m->moves) {
        i = hole;
    } else {
        while (m->slots[i].e)
            i = (i + 1) & mask;
    }
    m->slots[i] = (slot_t){h, expires, e, (uint32_t)cost(e), big};
    m->count++;
    m->bytes += m->slots[i].cost;
    return (long)i;
}

/* The record room a reservation named k is made with: the last record's
 * size, when the entry stays within RESERVE_MAX (a large record is not
 * made room for in every reservation) and its cost fits the cap now (a
 * reservation is never refused for the room). */
static size_t reserve_room(const mem_t *m, const name_t *k)
{
    if (k->n + m->hint > RESERVE_MAX) return 0;
    return m->bytes + cost_of(k->n, m->hint) <= m->max_bytes ? m->hint : 0;
}

/* Hashes req's name and fetches its home slot ahead (eg_idem_prefetch),
 * without the lock: the table read may be one being replaced by a growth
 * (prefetching a line of it is harmless, and the lookup under the lock
 * reads the current one). */
static void mem_prefetch(eg_idem_store_t *s, eg_idem_req_t *req)
{
    mem_t *m = (mem_t *)s;
    name_t k = name_of(m, req);
    if (req->scope) req->scope_hash = k.h;
    slot_t *slots = __atomic_load_n(&m->slots, __ATOMIC_RELAXED);
    size_t n = __atomic_load_n(&m->nslots, __ATOMIC_RELAXED);
    __builtin_prefetch(&slots[k.h & (n - 1)]);
    if (req->hint) { /* before a complete: the entry, its head and name */
        __builtin_prefetch(req->hint);
        __builtin_prefetch((const unsigned char *)req->hint + 64);
    }
}

/* The answer, known now, given on the loop's next iteration. */
static void deliver(uv_timer_t *t)
{
    eg_idem_op_t *op = t->data;
    eg_idem_op_finish(op);
    uv_close((uv_handle_t *)t, eg_idem_op_timer_closed);
}

/* The decision, under the lock, into *res (and *record, the caller's to
 * free, when COMPLETED). */
static int mem_decide(eg_idem_store_t *s, eg_idem_req_t *req, uint64_t lock_ms,
                      eg_idem_result_t *res, unsigned char **record)
{
    mem_t *m = (mem_t *)s;
    uint64_t now = eg_idem_now(s);
    name_t k = name_of(m, req);
    if (req->scope) req->scope_hash = k.h;
    int rc = EG_OK;
    size_t hole = 0;
    pthread_mutex_lock(&m->lock);
    sweep_some(m, now);
    uint64_t moves = m->moves;
    long at = find(m, &k, now, &hole);
    ent_t *e = at >= 0 ? m->slots[at].e : NULL;
    if (e && memcmp(e->fp, req->fp, sizeof(e->fp)) != 0) {
        res->state = EG_IDEM_MISMATCH;
    } else if (e && !e->completed) {
        res->state = EG_IDEM_IN_FLIGHT;
        res->retry_after_ms = m->slots[at].expires_ms - now;
    } else if (e) {
        if ((*record = malloc(e->len))) {
            memcpy(*record, e->name + e->nlen, e->len);
            res->state = EG_IDEM_COMPLETED;
            res->record = *record;
            res->len = e->len;
        } else {
            res->state = EG_IDEM_ERROR;
            res->why = "memory store: out of memory";
        }
    } else if (!room(m, cost_of(k.n, 0), now)) {
        rc = EG_ETOOBIG;
    } else {
        uint32_t big = 0;
        ent_t *n = ent_new(m, req, &k, reserve_room(m, &k), &big);
        if (n) memcpy(n->owner, req->owner, sizeof(req->owner));
        if (!n || (at = place(m, k.h, now + lock_ms, n, big, hole, moves)) < 0) {
            ent_free(m, n, big);
            rc = EG_ENOMEM;
        } else {
            res->state = EG_IDEM_RESERVED;
            req->hint = n;
            req->hint_slot = (size_t)at;
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (rc != EG_OK) {
        free(*record);
        *record = NULL;
    }
    return rc;
}

static int mem_begin(eg_idem_store_t *s, eg_idem_op_t *op)
{
    int rc = mem_decide(s, &op->req, op->lock_ms, &op->res, &op->record);
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
    uint64_t now = eg_idem_now(s);
    name_t k = name_of(m, req);
    int rc = EG_OK;
    size_t hole = 0;
    pthread_mutex_lock(&m->lock);
    uint64_t moves = m->moves;
    /* the begin's entry, live, still in the slot it was put in (slots
     * move, entries do not; the owner is unique to that begin, so it is
     * this request's reservation and names k): no probe, no comparison of
     * the name. Else the lookup. */
    size_t hs = req->hint_slot;
    long at;
    if (req->hint && hs < m->nslots && m->slots[hs].e == req->hint &&
        m->slots[hs].expires_ms > now && !m->slots[hs].e->completed &&
        memcmp(m->slots[hs].e->owner, req->owner, sizeof(req->owner)) == 0)
        at = (long)hs;
    else
        at = find(m, &k, now, &hole);
    ent_t *e = at >= 0 ? m->slots[at].e : NULL;
    if (e && (e->completed || memcmp(e->owner, req->owner, sizeof(e->owner)) != 0))
        goto out; /* not the caller's any more: the stored answer stays */
    m->hint = len;
    /* the reservation was made with room for the record: it becomes the
     * answer where it is (no second entry, no copy of the name) */
    int inplace = e && e->room - e->nlen >= len;
    size_t had = e ? m->slots[at].cost : 0,
           need = inplace ? cost_in(e->room, e->nlen, len) : cost_of(k.n, len);
    ent_t *n = NULL; /* the completed entry, the record after its name */
    uint32_t big = 0;
    if (m->bytes - had + need > m->max_bytes && now - m->full_purge_ms >= FULL_RETRY_MS) {
        m->full_purge_ms = now;
        sweep_all(m, now); /* e is live and stays; its slot may move */
        if (e) at = find(m, &k, now, NULL);
    }
    if (len > UINT32_MAX / 2 || m->bytes - had + need > m->max_bytes) { /* slot_t.cost: 32 bits */
        rc = EG_ETOOBIG;
    } else if (inplace) {
        e->len = len;
        memcpy(e->name + e->nlen, record, len);
        e->completed = 1;
        m->bytes += need - had;
        m->slots[at].cost = (uint32_t)need;
        m->slots[at].expires_ms = now + ttl_ms;
        goto out;
    } else if (!(n = ent_new(m, req, &k, len, &big))) {
        rc = EG_ENOMEM;
    }
    if (n) {
        n->len = len;
        memcpy(n->name + n->nlen, record, len);
        n->completed = 1;
    }
    if (rc == EG_OK && !e && (at = place(m, k.h, now + ttl_ms, n, big, hole, moves)) < 0)
        rc = EG_ENOMEM;
    if (rc != EG_OK) {
        ent_free(m, n, big);
        /* a reservation that cannot become a replay frees the key */
        if ((at = find(m, &k, now, NULL)) >= 0) slot_remove(m, (size_t)at);
        goto out;
    }
    if (e) { /* the reservation gives way to the response */
        m->bytes += cost(n) - m->slots[at].cost;
        ent_free(m, e, m->slots[at].big);
        m->slots[at].e = n;
        m->slots[at].cost = (uint32_t)cost(n);
        m->slots[at].big = big;
    }
    m->slots[at].expires_ms = now + ttl_ms;
out:
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static int mem_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req)
{
    (void)io;
    mem_t *m = (mem_t *)s;
    uint64_t now = eg_idem_now(s);
    name_t k = name_of(m, req);
    pthread_mutex_lock(&m->lock);
    long at = find(m, &k, now, NULL);
    if (at >= 0 && !m->slots[at].e->completed &&
        memcmp(m->slots[at].e->owner, req->owner, sizeof(req->owner)) == 0)
        slot_remove(m, (size_t)at);
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
    for (size_t i = 0; i < m->nslots; i++)
        if (m->slots[i].e && m->slots[i].big) free(m->slots[i].e);
    while (m->chunks) {
        chunk_t *c = m->chunks;
        m->chunks = c->next;
        UNPOISON(c, CHUNK_BYTES);
        munmap(c, CHUNK_BYTES);
    }
    slots_free(m->slots, m->nslots);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const eg_idem_ops_t mem_ops = {.name = "memory",
                                      .begin = mem_begin,
                                      .decide = mem_decide,
                                      .prefetch = mem_prefetch,
                                      .complete = mem_complete,
                                      .release = mem_release,
                                      .purge = mem_purge,
                                      .purge_later = mem_purge_later,
                                      .close = mem_close,
                                      .takes_scope = 1};

int eg_idem_memory_usage(eg_idem_store_t *s, size_t *chunks, size_t *free_chunks, size_t *big)
{
    if (!s || s->ops != &mem_ops) return EG_EINVAL;
    mem_t *m = (mem_t *)s;
    pthread_mutex_lock(&m->lock);
    *chunks = m->nchunks;
    *free_chunks = m->nfree;
    *big = 0;
    for (size_t i = 0; i < m->nslots; i++)
        *big += m->slots[i].e && m->slots[i].big;
    pthread_mutex_unlock(&m->lock);
    return EG_OK;
}

int eg_idem_memory_collide(eg_idem_store_t *s)
{
    if (!s || s->ops != &mem_ops) return EG_EINVAL;
    ((mem_t *)s)->collide = 1;
    return EG_OK;
}

int eg_idem_memory_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                        size_t errlen)
{
    mem_t *m = calloc(1, sizeof(*m));
    if (m) m->slots = slots_alloc(MIN_SLOTS);
    if (!m || !m->slots || pthread_mutex_init(&m->lock, NULL) != 0) {
        if (m) slots_free(m->slots, MIN_SLOTS);
        free(m);
        snprintf(err, errlen, "memory idempotency store: out of memory");
        return EG_ENOMEM;
    }
    eg_idem_store_init(&m->base, &mem_ops, o);
    m->nslots = MIN_SLOTS;
    m->max_bytes = o->max_bytes ? o->max_bytes : (size_t)64 << 20;
    /* entries in chunks up to twice the cap (a few chunks at least): long-
     * lived entries scattered in mostly dead chunks cannot pin more */
    m->max_chunks = 2 * m->max_bytes / CHUNK_BYTES + 2;
    /* a failed getrandom leaves a guessable key: the table still works,
     * only its defence against chosen collisions is weaker */
    uint64_t key[2];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        key[0] = eg_idem_now(&m->base) ^ (uint64_t)(uintptr_t)m;
        key[1] = (uint64_t)(uintptr_t)&key ^ 0x9e3779b97f4a7c15ULL;
    }
    m->k0 = key[0];
    m->k1 = key[1];
    *out = &m->base;
    return EG_OK;
}

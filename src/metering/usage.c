/* usage.c - usage totals recorded through a group commit (see usage.h).
 *
 * The totals waiting for a commit live in a hash table of `agg_t`, one per
 * key (subject, event type, route, status class, hour), each holding its
 * strings in the same allocation. A record is one lock, a hash lookup and
 * a few additions; an entry is allocated the first time its key is seen
 * and kept while it is used, so a steady stream of requests allocates
 * nothing. The writer (writer.h) is only told (NULL items) of a batch's
 * first event, which starts its interval, and of every commit_every-th,
 * which commits at once: one lock per request, not two. Its flush swaps
 * the pending sums out of the dirty entries under the lock, writes them
 * with the lock released (one UPSERT per entry, one transaction), and
 * puts them back when the commit fails. Entries are
 * freed on the writer thread only (trim), so the flush may read their
 * strings without the lock.
 * The served requests' path (eg_usage_record_fixed) is the one counted in
 * instructions (docs/metering.md, Cost): a route's event type and path
 * come hashed (eg_usage_fixed_t, one per route and worker), and the entry
 * the worker added to last on the route is tried first (its memo, valid
 * until the next trim), so a repeated subject costs a compare, not a hash
 * and a lookup.
 */
#define _GNU_SOURCE /* timegm */
#include "usage.h"

#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errgate/common.h"
#include "sqlite_conn.h"
#include "writer.h"

typedef struct agg_s {
    struct agg_s *next; /* hash chain */
    uint64_t hash;
    int64_t hour;
    int status_class;
    int dirty;
    size_t ls, lt, lr; /* the strings' lengths */
    uint64_t fid;      /* the eg_usage_fixed_t whose strings it last matched (agg_find) */
    double quantity;   /* pending: not handed to the writer yet */
    uint64_t events, bytes_in, bytes_out;
    char *subject, *event_type, *route; /* in the same allocation */
} agg_t;

typedef struct {
    agg_t *e;
    double quantity;
    uint64_t events, bytes_in, bytes_out;
} swap_t;

struct eg_usage_s {
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback, *add;
    eg_writer_t *writer;
    atomic_flag lock; /* the table: a spin lock (held for a few additions; see lock()) */
    agg_t **buckets;
    size_t nbuckets, nagg;
    agg_t **dirty;
    size_t ndirty, dirty_cap;
    _Atomic size_t max_held; /* a reload may change it (eg_usage_retune) */
    uint64_t trims;          /* trim() runs: an eg_usage_fixed_t's memo older than one is stale */
    size_t pending;          /* events since the last swap (the writer is told of some) */
    size_t commit_every;     /* events that start a commit (under the lock: a reload changes it) */
    _Atomic uint64_t held;   /* reserved or recorded, not committed */
    eg_usage_tap_fn tap;
    void *tap_ctx;
};

/* The table's lock is taken once per metered request and held for a hash
 * lookup and a few additions (the writer's swap, a new key's allocation
 * and the rare trim are the long holds): a spin lock costs a tenth of an
 * uncontended mutex, and a waiter that does not get it soon yields. */
static void lock(eg_usage_t *u)
{
    for (int spins = 0; atomic_flag_test_and_set_explicit(&u->lock, memory_order_acquire); spins++)
        if (spins >= 64) sched_yield();
}

static void unlock(eg_usage_t *u)
{
    atomic_flag_clear_explicit(&u->lock, memory_order_release);
}

/* A string's first and last 8 bytes and its length: this runs for every
 * metered request, and the entry's compare checks the rest. */
static uint64_t ends_hash(uint64_t h, const char *s, size_t n)
{
    const uint64_t k = 0x9E3779B97F4A7C15ull;
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    } else {
        for (size_t i = 0; i < n; i++)
            a = a << 8 | (unsigned char)s[i];
    }
    h = (h ^ a ^ ((uint64_t)n << 56)) * k;
    h = (h ^ (h >> 29) ^ b) * k;
    return h ^ (h >> 32);
}

/* memcmp(a, b, n) == 0 for a key's strings (a subject is a few dozen
 * bytes): 8 bytes at a time, the last word overlapping, no call. */
static inline int same(const char *a, const char *b, size_t n)
{
    if (n < 8) return memcmp(a, b, n) == 0;
    uint64_t x, y;
    for (size_t i = 0; i + 8 < n; i += 8) {
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return 0;
    }
    memcpy(&x, a + n - 8, 8);
    memcpy(&y, b + n - 8, 8);
    return x == y;
}

/* The event type's and route's part of a key's hash: what a route's
 * eg_usage_fixed_t computes once. */
static uint64_t fixed_hash(const char *event_type, size_t lt, const char *route, size_t lr)
{
    return ends_hash(ends_hash(1469598103934665603ull, event_type, lt), route, lr);
}

/* An event's key: its strings, their lengths measured once for the hash
 * and the compares, and fid, the eg_usage_fixed_t it came with (0: none). */
typedef struct {
    const char *subject, *event_type, *route;
    size_t ls, lt, lr;
    int64_t hour;
    int status_class;
    uint64_t fid;
    uint64_t hash;
} ukey_t;

static void key_hash(ukey_t *k, uint64_t fixed)
{
    uint64_t h = fixed ^ (uint64_t)k->hour ^ ((uint64_t)k->status_class << 40);
    k->hash = ends_hash(h, k->subject, k->ls);
}

/* Under the lock. An entry that matched the key's route part (fid) once
 * skips comparing its event type and route again. */
static agg_t *agg_find(eg_usage_t *u, const ukey_t *k)
{
    if (!u->nbuckets) return NULL;
    for (agg_t *e = u->buckets[k->hash & (u->nbuckets - 1)]; e; e = e->next) {
        if (e->hash != k->hash || e->hour != k->hour || e->status_class != k->status_class ||
            e->ls != k->ls || !same(e->subject, k->subject, k->ls))
            continue;
        if (k->fid && e->fid == k->fid) return e;
        if (e->lt == k->lt && e->lr == k->lr && memcmp(e->event_type, k->event_type, k->lt) == 0 &&
            memcmp(e->route, k->route, k->lr) == 0) {
            if (k->fid) e->fid = k->fid;
            return e;
        }
    }
    return NULL;
}

/* Under the lock: a new entry for the event's key. */
static agg_t *agg_new(eg_usage_t *u, const ukey_t *k)
{
    uint64_t h = k->hash;
    if (u->nagg >= u->nbuckets) {
        size_t nb = u->nbuckets ? u->nbuckets * 2 : 256;
        agg_t **b = calloc(nb, sizeof(*b));
        if (!b) return NULL;
        for (size_t i = 0; i < u->nbuckets; i++)
            for (agg_t *e = u->buckets[i], *next; e; e = next) {
                next = e->next;
                e->next = b[e->hash & (nb - 1)];
                b[e->hash & (nb - 1)] = e;
            }
        free(u->buckets);
        u->buckets = b;
        u->nbuckets = nb;
    }
    size_t ls = k->ls + 1, lt = k->lt + 1, lr = k->lr + 1;
    agg_t *e = calloc(1, sizeof(*e) + ls + lt + lr);
    if (!e) return NULL;
    e->subject = (char *)(e + 1);
    e->event_type = e->subject + ls;
    e->route = e->event_type + lt;
    memcpy(e->subject, k->subject, k->ls);
    memcpy(e->event_type, k->event_type, k->lt);
    memcpy(e->route, k->route, k->lr);
    e->hash = h;
    e->hour = k->hour;
    e->ls = k->ls;
    e->lt = k->lt;
    e->lr = k->lr;
    e->fid = k->fid;
    e->status_class = k->status_class;
    e->next = u->buckets[h & (u->nbuckets - 1)];
    u->buckets[h & (u->nbuckets - 1)] = e;
    u->nagg++;
    return e;
}

/* Under the lock: the entry joins the next commit. */
static int mark_dirty(eg_usage_t *u, agg_t *e)
{
    if (e->dirty) return EG_OK;
    if (u->ndirty == u->dirty_cap) {
        size_t cap = u->dirty_cap ? u->dirty_cap * 2 : 256;
        agg_t **d = realloc(u->dirty, cap * sizeof(*d));
        if (!d) return EG_ENOMEM;
        u->dirty = d;
        u->dirty_cap = cap;
    }
    e->dirty = 1;
    u->dirty[u->ndirty++] = e;
    return EG_OK;
}

/* On the writer thread, both locks free: forgets entries with nothing
 * pending, so a table of keys and hours that came and went stays small. */
static void trim(eg_usage_t *u)
{
    lock(u);
    u->trims++;
    for (size_t i = 0; i < u->nbuckets; i++) {
        agg_t **pp = &u->buckets[i];
        while (*pp) {
            agg_t *e = *pp;
            if (e->dirty) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free(e);
            u->nagg--;
        }
    }
    unlock(u);
}

static int step(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? EG_OK : EG_EIO;
}

/* The writer's callback: every dirty entry's sums in one transaction. */
static int flush(void *ctx, void **items, size_t nitems)
{
    (void)items;
    eg_usage_t *u = ctx;
    lock(u);
    size_t n = u->ndirty;
    swap_t *sw = n ? malloc(n * sizeof(*sw)) : NULL;
    if (n && !sw) {
        unlock(u);
        return EG_ENOMEM;
    }
    uint64_t events = 0;
    for (size_t i = 0; i < n; i++) {
        agg_t *e = u->dirty[i];
        sw[i] = (swap_t){e, e->quantity, e->events, e->bytes_in, e->bytes_out};
        events += e->events;
        e->quantity = 0;
        e->events = e->bytes_in = e->bytes_out = 0;
        e->dirty = 0;
    }
    u->ndirty = 0;
    u->pending = 0;
    unlock(u);
    if (!n) {
        if (!nitems && u->nagg > 4096) trim(u); /* idle: a good time */
        return EG_OK;
    }
    int rc = step(u->begin);
    for (size_t i = 0; rc == EG_OK && i < n; i++) {
        const agg_t *e = sw[i].e;
        sqlite3_stmt *st = u->add;
        sqlite3_bind_text(st, 1, e->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->event_type, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, e->route, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, e->status_class);
        sqlite3_bind_int64(st, 5, e->hour);
        sqlite3_bind_double(st, 6, sw[i].quantity);
        sqlite3_bind_int64(st, 7, (sqlite3_int64)sw[i].events);
        sqlite3_bind_int64(st, 8, (sqlite3_int64)sw[i].bytes_in);
        sqlite3_bind_int64(st, 9, (sqlite3_int64)sw[i].bytes_out);
        rc = step(st);
    }
    if (rc == EG_OK) rc = step(u->commit);
    if (rc != EG_OK) {
        if (!sqlite3_get_autocommit(u->db)) step(u->rollback);
        lock(u); /* not written: pending again */
        for (size_t i = 0; i < n; i++) {
            agg_t *e = sw[i].e;
            e->quantity += sw[i].quantity;
            e->events += sw[i].events;
            e->bytes_in += sw[i].bytes_in;
            e->bytes_out += sw[i].bytes_out;
            mark_dirty(u, e); /* cannot fail: the list had room for all of them */
        }
        unlock(u);
        free(sw);
        return EG_EIO;
    }
    atomic_fetch_sub(&u->held, events);
    for (size_t i = 0; u->tap && i < n; i++) {
        const agg_t *e = sw[i].e;
        eg_usage_event_t ev = {e->subject,     e->event_type,  e->route,       e->status_class,
                               sw[i].quantity, e->hour * 3600, sw[i].bytes_in, sw[i].bytes_out};
        u->tap(u->tap_ctx, &ev, sw[i].events);
    }
    free(sw);
    if (u->nagg > 4096) trim(u);
    return EG_OK;
}

static void disconnect(eg_usage_t *u)
{
    sqlite3_finalize(u->begin);
    sqlite3_finalize(u->commit);
    sqlite3_finalize(u->rollback);
    sqlite3_finalize(u->add);
    sqlite3_close(u->db);
}

int eg_usage_open(const eg_usage_opts_t *o, eg_usage_t **out, char *err, size_t errlen)
{
    eg_usage_t *u = calloc(1, sizeof(*u));
    if (!u) return EG_ENOMEM;
    atomic_flag_clear(&u->lock);
    u->max_held = o->max_uncommitted ? o->max_uncommitted : 10000;
    int rc = EG_EIO;
    /* the store made the file and its tables (eg_store_open): never create it here */
    const eg_sqlite_stmt_t stmts[] = {
        {&u->begin, "BEGIN IMMEDIATE"},
        {&u->commit, "COMMIT"},
        {&u->rollback, "ROLLBACK"},
        {&u->add,
         "INSERT INTO usage (subject, event_type, route, status_class, hour, quantity, events,"
         " bytes_in, bytes_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
         " ON CONFLICT (subject, event_type, route, status_class, hour) DO UPDATE SET"
         " quantity = quantity + excluded.quantity, events = events + excluded.events,"
         " bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out"},
    };
    if (eg_sqlite_connect(o->path, o->busy_timeout_ms ? o->busy_timeout_ms : 2000, NULL, stmts,
                          sizeof(stmts) / sizeof(stmts[0]), &u->db, err, errlen) != EG_OK)
        goto fail;
    /* the writer is told twice a batch (eg_usage_record): the first push
     * starts the interval, the second (commit_every events) commits */
    u->commit_every = o->commit_every ? o->commit_every : 256;
    eg_writer_cfg_t wc = {u->commit_every == 1 ? 1 : 2,
                          o->commit_interval_ms ? o->commit_interval_ms : 50, 0, flush, u};
    if ((rc = eg_writer_start(&wc, &u->writer)) != EG_OK) {
        snprintf(err, errlen, "cannot start the usage writer");
        goto fail;
    }
    *out = u;
    return EG_OK;
fail:
    disconnect(u);
    free(u);
    return rc;
}

void eg_usage_close(eg_usage_t *u)
{
    if (!u) return;
    eg_writer_stop(u->writer); /* the last commit */
    disconnect(u);
    for (size_t i = 0; i < u->nbuckets; i++)
        for (agg_t *e = u->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(u->buckets);
    free(u->dirty);
    free(u);
}

void eg_usage_retune(eg_usage_t *u, size_t commit_every, uint64_t commit_interval_ms,
                     size_t max_uncommitted)
{
    lock(u);
    u->commit_every = commit_every ? commit_every : 256;
    unlock(u);
    atomic_store(&u->max_held, max_uncommitted ? max_uncommitted : 10000);
    eg_writer_retune(u->writer, commit_every == 1 ? 1 : 2,
                     commit_interval_ms ? commit_interval_ms : 50);
}

void eg_usage_set_tap(eg_usage_t *u, eg_usage_tap_fn fn, void *ctx)
{
    u->tap = fn;
    u->tap_ctx = ctx;
}

int eg_usage_reserve(eg_usage_t *u)
{
    uint64_t h = atomic_fetch_add(&u->held, 1);
    if (h < atomic_load_explicit(&u->max_held, memory_order_relaxed)) return 1;
    atomic_fetch_sub(&u->held, 1);
    return 0;
}

void eg_usage_unreserve(eg_usage_t *u)
{
    atomic_fetch_sub(&u->held, 1);
}

/* Under the lock: the entry f's thread added to last, while no trim may
 * have freed it, when it has k's hour, status class and subject (its event
 * type and route matched f's when it was found). */
static agg_t *memo_of(const eg_usage_t *u, const eg_usage_fixed_t *f, const ukey_t *k)
{
    agg_t *e = f->memo;
    if (!e || f->memo_u != u || f->memo_trims != u->trims || e->hour != k->hour ||
        e->status_class != k->status_class || e->ls != k->ls ||
        !same(e->subject, k->subject, k->ls))
        return NULL;
    return e;
}

/* The events of a key: the one lock of a record. Inlined in both
 * callers: the served requests' path counts its instructions. With f
 * (that path), a request like the thread's previous one on the route
 * (same subject, hour, status class) skips the hash and the lookup, and
 * a key is hashed only when it is not. */
static inline __attribute__((always_inline)) int add(eg_usage_t *u, ukey_t *k, eg_usage_fixed_t *f,
                                                     double quantity, uint64_t bytes_in,
                                                     uint64_t bytes_out, int reserved)
{
    lock(u);
    agg_t *e = f ? memo_of(u, f, k) : NULL;
    if (!e) {
        if (f) key_hash(k, f->hash);
        e = agg_find(u, k);
        if (!e) e = agg_new(u, k);
        if (e && f) {
            f->memo = e;
            f->memo_u = u;
            f->memo_trims = u->trims;
        }
    }
    if (!e || mark_dirty(u, e) != EG_OK) {
        unlock(u);
        if (reserved) eg_usage_unreserve(u);
        return EG_ENOMEM;
    }
    e->quantity += quantity;
    e->events++;
    e->bytes_in += bytes_in;
    e->bytes_out += bytes_out;
    if (!reserved) atomic_fetch_add(&u->held, 1);
    /* the writer hears of the batch's first event (which starts its
     * interval) and of every commit_every-th (a commit now), not of each:
     * one lock per request, not two */
    size_t nth = ++u->pending, every = u->commit_every;
    unlock(u);
    if (nth == 1 || nth % every == 0) eg_writer_push(u->writer, NULL, NULL);
    return EG_OK;
}

static int64_t hour_of(int64_t ts)
{
    return ts >= 0 ? ts / 3600 : -((-ts + 3599) / 3600);
}

int eg_usage_record(eg_usage_t *u, const eg_usage_event_t *ev, int reserved)
{
    if (!ev->subject || !ev->event_type || !ev->route || !(ev->quantity > 0)) {
        if (reserved) eg_usage_unreserve(u);
        return EG_EINVAL;
    }
    ukey_t k = {ev->subject,
                ev->event_type,
                ev->route,
                strlen(ev->subject),
                strlen(ev->event_type),
                strlen(ev->route),
                hour_of(ev->ts),
                ev->status_class,
                0,
                0};
    key_hash(&k, fixed_hash(k.event_type, k.lt, k.route, k.lr));
    return add(u, &k, NULL, ev->quantity, ev->bytes_in, ev->bytes_out, reserved);
}

void eg_usage_fixed_init(eg_usage_fixed_t *f, const char *event_type, const char *route)
{
    static _Atomic uint64_t ids;
    f->event_type = event_type;
    f->route = route;
    f->lt = strlen(event_type);
    f->lr = strlen(route);
    f->hash = fixed_hash(event_type, f->lt, route, f->lr);
    f->id = atomic_fetch_add(&ids, 1) + 1;
    f->memo = NULL;
    f->memo_u = NULL;
    f->memo_trims = 0;
}

int eg_usage_record_fixed(eg_usage_t *u, eg_usage_fixed_t *f, const char *subject, size_t ls,
                          int status_class, double quantity, int64_t ts, uint64_t bytes_in,
                          uint64_t bytes_out)
{
    if (!(quantity > 0)) {
        eg_usage_unreserve(u);
        return EG_EINVAL;
    }
    ukey_t k = {subject, f->event_type, f->route,     ls,    f->lt,
                f->lr,   hour_of(ts),   status_class, f->id, 0};
    return add(u, &k, f, quantity, bytes_in, bytes_out, 1);
}

int eg_usage_sync(eg_usage_t *u, uint64_t timeout_ms)
{
    return eg_writer_wait(u->writer, eg_writer_pushed(u->writer), timeout_ms);
}

uint64_t eg_usage_held(const eg_usage_t *u)
{
    return atomic_load(&((eg_usage_t *)u)->held);
}

int eg_usage_failing(const eg_usage_t *u)
{
    return eg_writer_failing(u->writer);
}

/* ------------------------------------------------------------ reading */

void eg_usage_rows_free(eg_usage_row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(rows[i].subject);
        free(rows[i].event_type);
        free(rows[i].group);
    }
    free(rows);
}

int eg_usage_rows_add(eg_usage_row_t **rows, size_t *n, size_t *cap, const eg_usage_row_t *row)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        eg_usage_row_t *nr = realloc(*rows, nc * sizeof(*nr));
        if (!nr) return EG_ENOMEM;
        *rows = nr;
        *cap = nc;
    }
    eg_usage_row_t *r = &(*rows)[*n];
    *r = *row;
    r->subject = strdup(row->subject ? row->subject : "");
    r->event_type = strdup(row->event_type ? row->event_type : "");
    r->group = strdup(row->group ? row->group : "");
    if (!r->subject || !r->event_type || !r->group) {
        free(r->subject);
        free(r->event_type);
        free(r->group);
        return EG_ENOMEM;
    }
    (*n)++;
    return EG_OK;
}

static int row_cmp(const void *a, const void *b)
{
    const eg_usage_row_t *x = a, *y = b;
    int c = strcmp(x->subject, y->subject);
    if (!c) c = strcmp(x->event_type, y->event_type);
    if (!c) c = strcmp(x->group, y->group);
    if (!c) c = (x->status_class > y->status_class) - (x->status_class < y->status_class);
    return c;
}

void eg_usage_rows_sort(eg_usage_row_t *rows, size_t *n)
{
    if (!*n) return;
    qsort(rows, *n, sizeof(*rows), row_cmp);
    size_t k = 0;
    for (size_t i = 1; i < *n; i++) {
        if (row_cmp(&rows[k], &rows[i]) == 0) {
            rows[k].quantity += rows[i].quantity;
            rows[k].events += rows[i].events;
            rows[k].bytes_in += rows[i].bytes_in;
            rows[k].bytes_out += rows[i].bytes_out;
            free(rows[i].subject);
            free(rows[i].event_type);
            free(rows[i].group);
        } else {
            rows[++k] = rows[i];
        }
    }
    *n = k + 1;
}

int eg_usage_query(const char *path, uint64_t busy_timeout_ms, const eg_usage_query_t *q,
                   eg_usage_row_t **rows, size_t *n, char *err, size_t errlen)
{
    static const char *const group_sql[] = {"''", "strftime('%Y-%m-%d', hour * 3600, 'unixepoch')",
                                            "route"};
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    eg_usage_row_t *out = NULL;
    size_t cnt = 0, cap = 0;
    int rc = EG_EIO;
    *rows = NULL;
    *n = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(db, (int)(busy_timeout_ms > 60000 ? 60000
                                   : busy_timeout_ms       ? busy_timeout_ms
                                                           : 2000));
    char sql[512];
    const char *g = group_sql[q->group <= EG_USAGE_GROUP_ROUTE ? q->group : 0];
    snprintf(
        sql, sizeof(sql),
        "SELECT subject, event_type, %s, status_class, sum(quantity), sum(events), sum(bytes_in),"
        " sum(bytes_out) FROM usage WHERE hour >= ?1 AND hour < ?2%s GROUP BY 1, 2, 3, 4",
        g, q->subject ? " AND subject = ?3" : "");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        if (strstr(sqlite3_errmsg(db), "no such table"))
            rc = EG_OK; /* an older file: no usage yet */
        else
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    int64_t from_h = q->from >= 0 ? q->from / 3600 : -((-q->from + 3599) / 3600);
    int64_t to_h = q->to >= 0 ? (q->to + 3599) / 3600 : -(-q->to / 3600);
    sqlite3_bind_int64(st, 1, from_h);
    sqlite3_bind_int64(st, 2, to_h);
    if (q->subject) sqlite3_bind_text(st, 3, q->subject, -1, SQLITE_STATIC);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        eg_usage_row_t r = {
            (char *)sqlite3_column_text(st, 0),    (char *)sqlite3_column_text(st, 1),
            (char *)sqlite3_column_text(st, 2),    sqlite3_column_int(st, 3),
            sqlite3_column_double(st, 4),          (uint64_t)sqlite3_column_int64(st, 5),
            (uint64_t)sqlite3_column_int64(st, 6), (uint64_t)sqlite3_column_int64(st, 7)};
        if (eg_usage_rows_add(&out, &cnt, &cap, &r) != EG_OK) {
            rc = EG_ENOMEM;
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (s != SQLITE_DONE) {
        snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(db));
        goto out;
    }
    eg_usage_rows_sort(out, &cnt);
    rc = EG_OK;
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (rc == EG_OK) {
        *rows = out;
        *n = cnt;
    } else {
        eg_usage_rows_free(out, cnt);
    }
    return rc;
}

int eg_usage_parse_time(const char *s, int end, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (!rest || rest - s != 10) return EG_EINVAL;
    int date_only = *rest == '\0';
    if (!date_only) {
        rest = strptime(rest, "T%H:%M:%S", &tm);
        if (!rest || (strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)) return EG_EINVAL;
    }
    int mday = tm.tm_mday, mon = tm.tm_mon;
    time_t t = timegm(&tm);
    struct tm back;
    /* 2026-02-31 is not a date: timegm moved it into March */
    if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mon != mon || back.tm_mday != mday)
        return EG_EINVAL;
    *out = (int64_t)t + (date_only && end ? 86400 : 0);
    return EG_OK;
}

void eg_usage_period_at(int day, int64_t now, int64_t *start, int64_t *end)
{
    time_t t = (time_t)now;
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    if (!day) tm.tm_mday = 1;
    *start = (int64_t)timegm(&tm);
    if (day)
        tm.tm_mday++;
    else
        tm.tm_mon++;
    *end = (int64_t)timegm(&tm);
}

/* meter_store.c - the metering API's batches recorded in SQLite or Redis
 * (see meter_store.h for what is atomic and why).
 *
 * sqlite: a connection of its own to the store's file (as the idempotency
 * store has: its batches do not queue behind the key store's lock), WAL,
 * synchronous=NORMAL (a committed batch survives the process being killed),
 * the store's busy timeout. A batch is one uv_queue_work: the connection's
 * mutex, BEGIN IMMEDIATE (the write lock first, so two processes never
 * both read before writing), the statements, COMMIT; on any failure
 * ROLLBACK and nothing of the batch is recorded.
 *
 * Ids are purged once no event with them could be accepted again (see
 * meter_store.h): the first batch recorded at or after next_purge claims
 * the purge (one compare-and-swap, so one worker) and queues it as work of
 * its own, so no batch's answer waits for it. The purge deletes rows in
 * steps of PURGE_STEP, each its own short transaction under the
 * connection's mutex, so API batches run between the steps. It reads rows
 * in rowid (insertion) order and deletes, of the first PURGE_STEP, those
 * received before the cutoff: a step reads at most PURGE_STEP rows, with no
 * index on a column (none is needed, nor a migration), whatever the
 * table's size.
 *
 * redis: one EVALSHA per batch with every event's arguments (6 an event):
 * Lua runs it whole before any other command, on every node's behalf.
 */
#include "meter_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"
#include "sqlite_conn.h"

typedef enum { B_SQLITE = 0, B_REDIS } backend_t;

struct eg_meter_store_s {
    backend_t backend;
    /* sqlite */
    pthread_mutex_t lock;
    int has_lock;
    sqlite3 *db;
    sqlite3_stmt *begin, *commit, *rollback, *insert, *add, *purge;
    int64_t id_ttl_s;           /* how long an id is kept after its receipt */
    _Atomic int64_t next_purge; /* Unix time (the caller's clock) */
    /* redis */
    char *prefix;
    char id_ttl[24];
    int64_t retention_s;
};

typedef struct {
    uv_work_t work;
    eg_meter_store_t *s;
    const eg_meter_item_t *items;
    size_t n;
    int64_t received;
    unsigned char *fresh;
    eg_meter_store_cb cb;
    void *arg;
    int rc;
    int in_call; /* redis: inside eg_redis_eval (a failure it reports at once) */
    int failed_at_once;
    char why[160];
} op_t;

const char *eg_meter_store_backend(const eg_meter_store_t *s)
{
    return s->backend == B_REDIS ? "redis" : "sqlite";
}

/* ------------------------------------------------------------ sqlite */

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? EG_OK : EG_EIO;
}

/* A batch's new events summed per usage row (subject, event type, hour):
 * one UPSERT a row, not an event (a batch is mostly one user's). Open
 * addressing over item indices; the table is twice the batch. */
typedef struct {
    size_t *slot; /* item index + 1 of the row's first event, 0 = empty */
    double *sum;
    int64_t *count;
    size_t cap;
} agg_t;

static uint64_t row_hash(const eg_meter_item_t *it)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(it->ts / 3600);
    for (const char *p = it->subject; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
    for (const char *p = it->event_type; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static int same_row(const eg_meter_item_t *a, const eg_meter_item_t *b)
{
    return a->ts / 3600 == b->ts / 3600 && strcmp(a->subject, b->subject) == 0 &&
           strcmp(a->event_type, b->event_type) == 0;
}

/* Adds item i to its row (the table has room: twice the items). */
static void agg_add(agg_t *g, const eg_meter_item_t *items, size_t i)
{
    size_t at = (size_t)(row_hash(&items[i]) % g->cap);
    while (g->slot[at] && !same_row(&items[g->slot[at] - 1], &items[i]))
        at = (at + 1) % g->cap;
    if (!g->slot[at]) g->slot[at] = i + 1;
    g->sum[at] += items[i].quantity;
    g->count[at]++;
}

/* The batch in one transaction (thread pool). */
static void sq_work(uv_work_t *w)
{
    op_t *op = w->data;
    eg_meter_store_t *s = op->s;
    agg_t g = {calloc(2 * op->n, sizeof(size_t)), calloc(2 * op->n, sizeof(double)),
               calloc(2 * op->n, sizeof(int64_t)), 2 * op->n};
    if (!g.slot || !g.sum || !g.count) {
        op->rc = EG_EIO;
        snprintf(op->why, sizeof(op->why), "metering store: out of memory");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    op->rc = EG_EIO;
    if (step_done(s->begin) != EG_OK) goto fail;
    for (size_t i = 0; i < op->n; i++) {
        const eg_meter_item_t *it = &op->items[i];
        sqlite3_stmt *st = s->insert;
        sqlite3_bind_text(st, 1, it->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, it->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, it->event_type, -1, SQLITE_STATIC);
        sqlite3_bind_double(st, 4, it->quantity);
        sqlite3_bind_int64(st, 5, it->ts);
        if (it->metadata) sqlite3_bind_text(st, 6, it->metadata, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, op->received);
        if (step_done(st) != EG_OK) goto fail;
        op->fresh[i] = sqlite3_changes(s->db) == 1;
        if (op->fresh[i]) agg_add(&g, op->items, i); /* a duplicate adds nothing */
    }
    for (size_t at = 0; at < g.cap; at++) {
        if (!g.slot[at]) continue;
        const eg_meter_item_t *it = &op->items[g.slot[at] - 1];
        sqlite3_stmt *st = s->add;
        sqlite3_bind_text(st, 1, it->subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, it->event_type, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, it->ts / 3600);
        sqlite3_bind_double(st, 4, g.sum[at]);
        sqlite3_bind_int64(st, 5, g.count[at]);
        if (step_done(st) != EG_OK) goto fail;
    }
    if (step_done(s->commit) != EG_OK) goto fail;
    op->rc = EG_OK;
    pthread_mutex_unlock(&s->lock);
    goto out;
fail:
    snprintf(op->why, sizeof(op->why), "metering store: %s", sqlite3_errmsg(s->db));
    if (!sqlite3_get_autocommit(s->db)) step_done(s->rollback);
    pthread_mutex_unlock(&s->lock);
out:
    free(g.slot);
    free(g.sum);
    free(g.count);
}

static void sq_after(uv_work_t *w, int status)
{
    op_t *op = w->data;
    if (status != 0) {
        op->rc = EG_EIO;
        snprintf(op->why, sizeof(op->why), "metering store: the work was cancelled");
    }
    op->cb(op->arg, op->rc, op->rc == EG_OK ? NULL : op->why);
    free(op);
}

/* How many rows a purge step reads and at most deletes, and how many
 * steps one purge takes at most (then the next batch's purge goes on). */
#define PURGE_STEP    1000 /* the LIMIT of the purge statement */
#define PURGE_STEPS   1000
#define PURGE_EVERY_S 60

typedef struct {
    uv_work_t work;
    eg_meter_store_t *s;
    int64_t cutoff;
    int64_t now;
} purge_t;

/* Steps of PURGE_STEP rows (thread pool), the mutex taken for each alone;
 * a failed step (the file locked past the busy timeout) ends the purge
 * until the next minute's. */
static void purge_work(uv_work_t *w)
{
    purge_t *p = w->data;
    eg_meter_store_t *s = p->s;
    for (int i = 0; i < PURGE_STEPS; i++) {
        pthread_mutex_lock(&s->lock);
        sqlite3_bind_int64(s->purge, 1, p->cutoff);
        int ok = step_done(s->purge) == EG_OK;
        int n = ok ? sqlite3_changes(s->db) : 0;
        pthread_mutex_unlock(&s->lock);
        if (!ok || n < PURGE_STEP) return; /* the old rows at the table's head are gone */
    }
    atomic_store(&s->next_purge, p->now); /* a backlog: go on with the next batch */
}

static void purge_after(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

/* Queues a purge when one is due (at most every PURGE_EVERY_S of the
 * caller's clock, and one at a time). */
static void maybe_purge(eg_meter_store_t *s, uv_loop_t *loop, int64_t now)
{
    int64_t due = atomic_load(&s->next_purge);
    if (now < due || !atomic_compare_exchange_strong(&s->next_purge, &due, now + PURGE_EVERY_S))
        return;
    purge_t *p = calloc(1, sizeof(*p));
    if (!p) return; /* the next minute's batch tries again */
    *p = (purge_t){.s = s, .cutoff = now - s->id_ttl_s, .now = now};
    p->work.data = p;
    if (uv_queue_work(loop, &p->work, purge_work, purge_after) != 0) free(p);
}

int eg_meter_store_open_sqlite(const char *path, uint64_t busy_timeout_ms, int64_t id_ttl_s,
                               eg_meter_store_t **out, char *err, size_t errlen)
{
    eg_meter_store_t *s = calloc(1, sizeof(*s));
    if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        snprintf(err, errlen, "metering store: out of memory");
        return EG_ENOMEM;
    }
    s->has_lock = 1;
    s->backend = B_SQLITE;
    s->id_ttl_s = id_ttl_s > 0 ? id_ttl_s : 1;
    atomic_init(&s->next_purge, 0);
    /* the key store opened (and made) the file first, 0600, and its
     * migration 3 made the tables (store_sqlite.c) */
    const eg_sqlite_stmt_t stmts[] = {
        {&s->begin, "BEGIN IMMEDIATE"},
        {&s->commit, "COMMIT"},
        {&s->rollback, "ROLLBACK"},
        {&s->insert, "INSERT OR IGNORE INTO meter_events (id, subject, event_type, quantity, ts,"
                     " metadata, received) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
        {&s->add, "INSERT INTO usage (subject, event_type, route, status_class, hour, quantity,"
                  " events) VALUES (?1, ?2, '', 0, ?3, ?4, ?5)"
                  " ON CONFLICT (subject, event_type, route, status_class, hour) DO UPDATE SET"
                  " quantity = quantity + excluded.quantity, events = events + excluded.events"},
        {&s->purge, "DELETE FROM meter_events WHERE rowid IN (SELECT rowid FROM (SELECT rowid,"
                    " received FROM meter_events ORDER BY rowid LIMIT 1000) WHERE received < ?1)"},
    };
    if (eg_sqlite_connect(path, busy_timeout_ms ? busy_timeout_ms : 5000,
                          "SELECT 1 FROM meter_events, usage LIMIT 0", stmts,
                          sizeof(stmts) / sizeof(stmts[0]), &s->db, err, errlen) != EG_OK)
        goto fail;
    *out = s;
    return EG_OK;
fail:
    eg_meter_store_close(s);
    return EG_EIO;
}

/* ------------------------------------------------------------ redis */

/* ARGV: prefix, id ttl, then per event: id, subject, event_type, hour,
 * quantity, expire-at (ts + metering.retention, as the meter stage sets
 * it). One 1 or 0 per event: recorded now, or the id was claimed before
 * (nothing added). The totals' layout is the meter stage's (the spec's):
 * <prefix>u:{<subject>}:<hour>, fields <event_type>|<route>|<status_class>
 * and #<same>; route '' and status class 0 for the metering API. Claimed
 * events are summed per hash and field in the script first: one
 * HINCRBYFLOAT, one HINCRBY and one EXPIREAT (the latest) per hash, not per
 * event (a 1000-event batch of one user took 12.7 ms of Redis's time with
 * four calls an event). Sums are written with 17 significant digits. */
static const char record_lua[] =
    "local p, ttl = ARGV[1], tonumber(ARGV[2])\n"
    "local out, sum, cnt, exp = {}, {}, {}, {}\n"
    "for b = 3, #ARGV, 6 do\n"
    "  if redis.call('SET', p .. 'me:' .. ARGV[b], '1', 'NX', 'EX', ttl) then\n"
    "    local k = p .. 'u:{' .. ARGV[b + 1] .. '}:' .. ARGV[b + 3]\n"
    "    local f = ARGV[b + 2] .. '||0'\n"
    "    if not sum[k] then sum[k] = {}; cnt[k] = {}; exp[k] = 0 end\n"
    "    sum[k][f] = (sum[k][f] or 0) + tonumber(ARGV[b + 4])\n"
    "    cnt[k][f] = (cnt[k][f] or 0) + 1\n"
    "    local e = tonumber(ARGV[b + 5])\n"
    "    if e > exp[k] then exp[k] = e end\n"
    "    out[#out + 1] = 1\n"
    "  else\n"
    "    out[#out + 1] = 0\n"
    "  end\n"
    "end\n"
    "for k, fs in pairs(sum) do\n"
    "  for f, q in pairs(fs) do\n"
    "    redis.call('HINCRBYFLOAT', k, f, string.format('%.17g', q))\n"
    "    redis.call('HINCRBY', k, '#' .. f, cnt[k][f])\n"
    "  end\n"
    "  redis.call('EXPIREAT', k, string.format('%d', exp[k]))\n"
    "end\n"
    "return out\n";

static void rd_reply(void *arg, void *reply)
{
    op_t *op = arg;
    redisReply *r = reply;
    op->rc = EG_EIO;
    if (!r) {
        snprintf(op->why, sizeof(op->why), "metering store: no Redis connection");
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != op->n) {
        snprintf(op->why, sizeof(op->why), "metering store: Redis answered %.100s",
                 r->type == REDIS_REPLY_ERROR && r->str ? r->str : "something else");
    } else {
        op->rc = EG_OK;
        for (size_t i = 0; i < op->n; i++)
            op->fresh[i] =
                r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    }
    if (op->in_call) { /* reported by eg_redis_eval's caller, after it returns */
        op->failed_at_once = 1;
        return;
    }
    op->cb(op->arg, op->rc, op->rc == EG_OK ? NULL : op->why);
    free(op);
}

static void rd_record(op_t *op, struct eg_redis_s *redis)
{
    eg_meter_store_t *s = op->s;
    size_t nargs = 2 + 6 * op->n;
    const char **args = malloc(nargs * sizeof(*args));
    size_t *lens = malloc(nargs * sizeof(*lens));
    char(*num)[3][32] = malloc(op->n * sizeof(*num)); /* hour, quantity, expire-at */
    if (!args || !lens || !num || !redis) {
        free(args);
        free(lens);
        free(num);
        snprintf(op->why, sizeof(op->why),
                 redis ? "metering store: out of memory" : "metering store: no Redis connection");
        op->cb(op->arg, EG_EIO, op->why);
        free(op);
        return;
    }
    args[0] = s->prefix;
    args[1] = s->id_ttl;
    for (size_t i = 0; i < op->n; i++) {
        const eg_meter_item_t *it = &op->items[i];
        snprintf(num[i][0], sizeof(num[i][0]), "%lld", (long long)(it->ts / 3600));
        snprintf(num[i][1], sizeof(num[i][1]), "%.17g", it->quantity);
        snprintf(num[i][2], sizeof(num[i][2]), "%lld", (long long)(it->ts + s->retention_s));
        const char **a = args + 2 + 6 * i;
        a[0] = it->id;
        a[1] = it->subject;
        a[2] = it->event_type;
        a[3] = num[i][0];
        a[4] = num[i][1];
        a[5] = num[i][2];
    }
    for (size_t i = 0; i < nargs; i++)
        lens[i] = strlen(args[i]);
    op->in_call = 1;
    int rc = eg_redis_eval(redis, record_lua, 0, (int)nargs, args, lens, rd_reply, op);
    op->in_call = 0;
    free(args);
    free(lens);
    free(num);
    if (rc != 0 || op->failed_at_once) {
        op->cb(op->arg, EG_EIO, op->why[0] ? op->why : "metering store: Redis call failed");
        free(op);
    }
}

int eg_meter_store_open_redis(const char *prefix, int64_t id_ttl_s, int64_t retention_s,
                              eg_meter_store_t **out, char *err, size_t errlen)
{
    eg_meter_store_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->prefix = strdup(prefix ? prefix : "errgate:"))) {
        free(s);
        snprintf(err, errlen, "metering store: out of memory");
        return EG_ENOMEM;
    }
    s->backend = B_REDIS;
    snprintf(s->id_ttl, sizeof(s->id_ttl), "%lld", (long long)(id_ttl_s > 0 ? id_ttl_s : 1));
    s->retention_s = retention_s;
    *out = s;
    return EG_OK;
}

/* ------------------------------------------------------------ both */

void eg_meter_store_record(eg_meter_store_t *s, uv_loop_t *loop, struct eg_redis_s *redis,
                           const eg_meter_item_t *items, size_t n, int64_t received,
                           unsigned char *fresh, eg_meter_store_cb cb, void *arg)
{
    op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        cb(arg, EG_EIO, "metering store: out of memory");
        return;
    }
    *op = (op_t){
        .s = s, .items = items, .n = n, .received = received, .fresh = fresh, .cb = cb, .arg = arg};
    op->work.data = op;
    if (s->backend == B_REDIS) {
        rd_record(op, redis);
        return;
    }
    if (uv_queue_work(loop, &op->work, sq_work, sq_after) != 0) {
        free(op);
        cb(arg, EG_EIO, "metering store: cannot queue work");
        return;
    }
    maybe_purge(s, loop, received);
}

void eg_meter_store_close(eg_meter_store_t *s)
{
    if (!s) return;
    sqlite3_stmt *st[] = {s->begin, s->commit, s->rollback, s->insert, s->add, s->purge};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        sqlite3_finalize(st[i]);
    if (s->db) sqlite3_close(s->db);
    if (s->has_lock) pthread_mutex_destroy(&s->lock);
    free(s->prefix);
    free(s);
}

/* store_sqlite.c - the sqlite backend: one file, WAL, versioned schema.
 *
 * WAL lets the gateway read while `errgate keys` writes from another
 * process; the busy timeout bounds how long a call waits for a writer.
 * Migrations are a list of SQL steps; schema_version records how many ran,
 * and a file written by a newer errgate is refused rather than guessed at.
 * PRAGMA data_version changes when another connection commits, which is how
 * the gateway notices keys changed by the CLI without reading them all.
 *
 * Charges (store.h, eg_store_set_commit): with commit_every 1 each is one
 * IMMEDIATE transaction. Above 1, quota and credit counters are loaded
 * into a table in memory (one mutex, ctr_lock, held for a decision only)
 * where every admission is decided exactly; each counter keeps the sum of
 * its changes not yet written (pending), and the writer thread (writer.h)
 * swaps those sums out and adds them in one transaction, so a hot key
 * costs one UPSERT per commit whatever the request rate. Writing deltas
 * (used = used + n), never values, keeps other processes' changes. The
 * in-memory value is always the file's value plus pending: after another
 * connection committed (data_version moved) the writer reads the cached
 * counters back and re-adds pending. Lock order: the store's lock (the
 * connection), then ctr_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store_impl.h"
#include "writer.h"

/* A counter decided in memory. */
typedef struct ctr_s {
    struct ctr_s *next; /* hash chain */
    uint64_t hash;
    int kind, dirty;
    long long value;   /* what decisions see: the file's value plus pending */
    long long pending; /* changes not handed to the writer yet */
    char *subject, *period; /* period NULL for credits */
} ctr_t;

typedef struct {
    eg_store_t base;
    sqlite3 *db;
    sqlite3_stmt *get, *list, *insert, *update, *touch, *data_version;
    sqlite3_stmt *begin, *commit, *rollback, *quota_get, *quota_add, *credits_get, *credits_add;
    uint64_t own_writes;
    char *path;
    uint64_t busy_ms;
    dev_t dev; /* the file we opened: a removed or replaced file is noticed */
    ino_t ino;
    uint64_t epoch; /* reconnections, part of the version */
    /* group commits (NULL writer: one transaction per charge) */
    eg_writer_t *writer;
    size_t commit_every;
    pthread_mutex_t ctr_lock;
    ctr_t **buckets;
    size_t nbuckets, nctr;
    ctr_t **dirty;
    size_t ndirty, dirty_cap;
    long long seen_dv; /* data_version the counters were last read at */
    uint64_t seen_epoch;
    uint64_t commit_interval_ms;
    uint64_t dv_at_ms; /* when data_version was last read (monotonic) */
    uint64_t serial;   /* this store among all opened in the process (ctr_memo) */
    uint64_t trims;    /* ctr_trim runs: a thread's memo older than one is stale */
} sql_t;

/* The counters a thread decided on last, by position in the charge: a
 * request like its previous one (same subjects, same period) compares
 * strings instead of hashing them and walking a chain. An entry holds
 * while its store (serial: a store opened later at the same address is
 * another) has not trimmed since; counters are freed only by a trim or
 * when the store closes. Read and written under ctr_lock. */
static _Thread_local struct {
    uint64_t serial, trims;
    ctr_t *e;
} ctr_memo[4];
static _Atomic uint64_t serials;

static void disconnect(sql_t *q);
static ctr_t *ctr_find(sql_t *q, int kind, const char *subject, const char *period);
static int connect_db(sql_t *q, int create, char *err, size_t errlen);

static const char *const migrations[] = {
    /* 1: API keys */
    "CREATE TABLE api_keys ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT, plan TEXT, scopes TEXT, ips TEXT,"
    " status INTEGER NOT NULL, reason TEXT, expires INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL, last_used INTEGER NOT NULL DEFAULT 0,"
    " hash BLOB NOT NULL, prev_hash BLOB, prev_until INTEGER NOT NULL DEFAULT 0,"
    " env TEXT NOT NULL DEFAULT 'live'"
    ") WITHOUT ROWID;",
    /* 2: quotas and credits */
    "CREATE TABLE quota_usage (subject TEXT NOT NULL, period TEXT NOT NULL, used INTEGER NOT NULL,"
    " PRIMARY KEY (subject, period)) WITHOUT ROWID;"
    "CREATE TABLE credits (subject TEXT PRIMARY KEY, balance INTEGER NOT NULL) WITHOUT ROWID;",
    /* 3: metering (src/metering/usage.h): hourly usage totals, and the
     * metering API's events (one row each; the id deduplicates) */
    "CREATE TABLE usage (subject TEXT NOT NULL, event_type TEXT NOT NULL, route TEXT NOT NULL,"
    " status_class INTEGER NOT NULL, hour INTEGER NOT NULL,"
    " quantity REAL NOT NULL, events INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL DEFAULT 0, bytes_out INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (subject, event_type, route, status_class, hour)) WITHOUT ROWID;"
    "CREATE TABLE meter_events (id TEXT PRIMARY KEY, subject TEXT NOT NULL, event_type TEXT NOT NULL,"
    " quantity REAL NOT NULL, ts INTEGER NOT NULL, metadata TEXT, received INTEGER NOT NULL);",
};
#define NMIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

#define COLS "id, name, owner, plan, scopes, ips, status, reason, expires, created, last_used, hash, prev_hash, prev_until, env"

static int fail(sql_t *q, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "%s: %s", what, sqlite3_errmsg(q->db));
    eg_store_fail(&q->base, "sqlite store: %s", msg);
    return EG_EIO;
}

static int col_str(sqlite3_stmt *st, int i, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    *out = NULL;
    return (!t || (*out = strdup((const char *)t))) ? EG_OK : EG_ENOMEM;
}

static void col_blob(sqlite3_stmt *st, int i, unsigned char out[EG_APIKEY_HASH_LEN])
{
    const void *b = sqlite3_column_blob(st, i);
    memset(out, 0, EG_APIKEY_HASH_LEN);
    if (b && sqlite3_column_bytes(st, i) == EG_APIKEY_HASH_LEN) memcpy(out, b, EG_APIKEY_HASH_LEN);
}

static int row_to_key(sqlite3_stmt *st, eg_key_t *k)
{
    memset(k, 0, sizeof(*k));
    const unsigned char *id = sqlite3_column_text(st, 0);
    snprintf(k->id, sizeof(k->id), "%s", id ? (const char *)id : "");
    if (col_str(st, 1, &k->name) || col_str(st, 2, &k->owner) || col_str(st, 3, &k->plan) ||
        col_str(st, 4, &k->scopes) || col_str(st, 5, &k->ips) || col_str(st, 7, &k->reason)) {
        eg_key_clear(k);
        return EG_ENOMEM;
    }
    int status = sqlite3_column_int(st, 6);
    k->status = status == 1 ? EG_KEY_SUSPENDED : status == 2 ? EG_KEY_REVOKED : EG_KEY_ACTIVE;
    k->expires = sqlite3_column_int64(st, 8);
    k->created = sqlite3_column_int64(st, 9);
    k->last_used = sqlite3_column_int64(st, 10);
    col_blob(st, 11, k->hash);
    col_blob(st, 12, k->prev_hash);
    k->prev_until = sqlite3_column_int64(st, 13);
    const unsigned char *env = sqlite3_column_text(st, 14);
    snprintf(k->env, sizeof(k->env), "%s", env && strcmp((const char *)env, "test") == 0 ? "test" : "live");
    return EG_OK;
}

static void bind_opt(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

/* Binds the record in COLS order, starting at parameter 1. */
static void bind_key(sqlite3_stmt *st, const eg_key_t *k)
{
    sqlite3_bind_text(st, 1, k->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->name ? k->name : "", -1, SQLITE_STATIC);
    bind_opt(st, 3, k->owner);
    bind_opt(st, 4, k->plan);
    bind_opt(st, 5, k->scopes);
    bind_opt(st, 6, k->ips);
    sqlite3_bind_int(st, 7, (int)k->status);
    bind_opt(st, 8, k->reason);
    sqlite3_bind_int64(st, 9, k->expires);
    sqlite3_bind_int64(st, 10, k->created);
    sqlite3_bind_int64(st, 11, k->last_used);
    sqlite3_bind_blob(st, 12, k->hash, EG_APIKEY_HASH_LEN, SQLITE_STATIC);
    if (k->prev_until) sqlite3_bind_blob(st, 13, k->prev_hash, EG_APIKEY_HASH_LEN, SQLITE_STATIC);
    else sqlite3_bind_null(st, 13);
    sqlite3_bind_int64(st, 14, k->prev_until);
    sqlite3_bind_text(st, 15, k->env[0] ? k->env : "live", -1, SQLITE_STATIC);
}

/* Runs a prepared write statement once and resets it. */
static int step_write(sql_t *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_CONSTRAINT) return EG_EEXIST;
    if (rc != SQLITE_DONE) return fail(q, what);
    return EG_OK;
}

/* The open connection still names the file at path. SQLite keeps using
 * an unlinked file, so a deleted database would otherwise go unnoticed
 * while the gateway honours keys nobody can see or revoke any more. A
 * file put back (a restore) is reopened; a missing one is never recreated
 * here, since an empty store would quietly turn every key invalid. */
static int check_file(sql_t *q)
{
    struct stat st;
    if (q->db && stat(q->path, &st) == 0 && st.st_dev == q->dev && st.st_ino == q->ino) return EG_OK;
    if (stat(q->path, &st) != 0) {
        eg_store_fail(&q->base, "sqlite store: %s was removed", q->path);
        return EG_EIO;
    }
    char err[256];
    disconnect(q);
    if (connect_db(q, 0, err, sizeof(err)) != EG_OK) {
        eg_store_fail(&q->base, "sqlite store: reopening: %s", err);
        return EG_EIO;
    }
    q->epoch++;
    return EG_OK;
}

static int sql_version(eg_store_t *s, uint64_t *out)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    int rc = sqlite3_step(q->data_version);
    uint64_t v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q->data_version, 0) : 0;
    sqlite3_reset(q->data_version);
    if (rc != SQLITE_ROW) return fail(q, "data_version");
    /* another connection's commits move data_version; our own, own_writes */
    *out = (q->epoch << 56) + (v << 32) + q->own_writes;
    return EG_OK;
}

static int sql_insert(eg_store_t *s, const eg_key_t *k)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    bind_key(q->insert, k);
    int rc = step_write(q, q->insert, "insert key");
    if (rc == EG_OK) q->own_writes++;
    return rc;
}

static int sql_update(eg_store_t *s, const eg_key_t *k)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    bind_key(q->update, k);
    int rc = step_write(q, q->update, "update key");
    if (rc == EG_OK && sqlite3_changes(q->db) == 0) return EG_ENOENT;
    if (rc == EG_OK) q->own_writes++;
    return rc;
}

static int sql_get(eg_store_t *s, const char *id, eg_key_t *out)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    sqlite3_bind_text(q->get, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q->get), ret;
    if (rc == SQLITE_ROW) ret = row_to_key(q->get, out);
    else if (rc == SQLITE_DONE) ret = EG_ENOENT;
    else ret = fail(q, "read key");
    sqlite3_reset(q->get);
    sqlite3_clear_bindings(q->get);
    return ret;
}

static int sql_list(eg_store_t *s, eg_key_t **out, size_t *n)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    eg_key_t *all = NULL;
    size_t cnt = 0, cap = 0;
    int rc, ret = EG_OK;
    while ((rc = sqlite3_step(q->list)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            eg_key_t *nk = realloc(all, cap * sizeof(*nk));
            if (!nk) {
                ret = EG_ENOMEM;
                break;
            }
            all = nk;
        }
        if ((ret = row_to_key(q->list, &all[cnt])) != EG_OK) break;
        cnt++;
    }
    if (ret == EG_OK && rc != SQLITE_DONE) ret = fail(q, "list keys");
    sqlite3_reset(q->list);
    if (ret != EG_OK) {
        for (size_t i = 0; i < cnt; i++) eg_key_clear(&all[i]);
        free(all);
        return ret;
    }
    *out = all ? all : calloc(1, sizeof(eg_key_t));
    if (!*out) return EG_ENOMEM;
    *n = cnt;
    return EG_OK;
}

static int sql_touch(eg_store_t *s, const char *id, long long when)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    sqlite3_bind_int64(q->touch, 1, when);
    sqlite3_bind_text(q->touch, 2, id, -1, SQLITE_STATIC);
    return step_write(q, q->touch, "record key use");
}

/* Runs a one-row SELECT of one integer; 0 when there is no row. */
static int get_int(sql_t *q, sqlite3_stmt *st, const char *a, const char *b, long long *out)
{
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b) sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? EG_OK : fail(q, "read a counter");
}

static int add_int(sql_t *q, sqlite3_stmt *st, const char *a, const char *b, long long v)
{
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b) sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, b ? 3 : 2, v);
    return step_write(q, st, "update a counter");
}

/* One IMMEDIATE transaction: the write lock is taken before anything is
 * read, so two gateways (or two threads) cannot both see room for the last
 * request of a quota. */
static int sql_charge(eg_store_t *s, eg_charge_t *items, size_t n)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    if (step_write(q, q->begin, "begin") != EG_OK) return EG_EIO;
    int all = 1, rc = EG_OK;
    for (size_t i = 0; rc == EG_OK && i < n; i++) {
        eg_charge_t *it = &items[i];
        long long v = 0;
        rc = it->kind == EG_CHARGE_QUOTA ? get_int(q, q->quota_get, it->subject, it->period, &v)
                                         : get_int(q, q->credits_get, it->subject, NULL, &v);
        it->value = v;
        it->ok = it->kind == EG_CHARGE_QUOTA ? v + it->cost <= it->limit : v >= it->cost;
        all &= it->ok;
    }
    for (size_t i = 0; rc == EG_OK && all && i < n; i++) {
        eg_charge_t *it = &items[i];
        rc = it->kind == EG_CHARGE_QUOTA ? add_int(q, q->quota_add, it->subject, it->period, it->cost)
                                         : add_int(q, q->credits_add, it->subject, NULL, -it->cost);
        it->value += it->kind == EG_CHARGE_QUOTA ? it->cost : -it->cost;
    }
    if (rc == EG_OK && all) {
        if (step_write(q, q->commit, "commit") != EG_OK) {
            step_write(q, q->rollback, "rollback");
            return EG_EIO;
        }
        return 1;
    }
    step_write(q, q->rollback, "rollback");
    return rc == EG_OK ? 0 : EG_EIO;
}

static int sql_credits_add(eg_store_t *s, const char *subject, long long amount, long long *balance)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    if (step_write(q, q->begin, "begin") != EG_OK) return EG_EIO;
    int rc = add_int(q, q->credits_add, subject, NULL, amount);
    if (rc == EG_OK) rc = get_int(q, q->credits_get, subject, NULL, balance);
    if (rc == EG_OK && step_write(q, q->commit, "commit") == EG_OK) {
        /* the cached balance moves with the file, under the store's lock so
         * the writer's read-back cannot count the top-up twice */
        pthread_mutex_lock(&q->ctr_lock);
        ctr_t *e = ctr_find(q, EG_CHARGE_CREDITS, subject, NULL);
        if (e) {
            e->value += amount;
            *balance = e->value;
        }
        pthread_mutex_unlock(&q->ctr_lock);
        return EG_OK;
    }
    step_write(q, q->rollback, "rollback");
    return EG_EIO;
}

/* The cached value (charges not yet committed included), when there is one. */
static int ctr_get(sql_t *q, int kind, const char *subject, const char *period, long long *out)
{
    pthread_mutex_lock(&q->ctr_lock);
    ctr_t *e = ctr_find(q, kind, subject, period);
    if (e) *out = e->value;
    pthread_mutex_unlock(&q->ctr_lock);
    return e != NULL;
}

static int sql_credits_get(eg_store_t *s, const char *subject, long long *balance)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    if (ctr_get(q, EG_CHARGE_CREDITS, subject, NULL, balance)) return EG_OK;
    return get_int(q, q->credits_get, subject, NULL, balance);
}

static int sql_quota_get(eg_store_t *s, const char *subject, const char *period, long long *used)
{
    sql_t *q = (sql_t *)s;
    if (check_file(q) != EG_OK) return EG_EIO;
    if (ctr_get(q, EG_CHARGE_QUOTA, subject, period, used)) return EG_OK;
    return get_int(q, q->quota_get, subject, period, used);
}

/* ------------------------------------------------------------ group commits */

/* Mixes one string into h eight bytes at a time (FNV, a byte at a time,
 * was most of the counter lookup's cost); the length goes in too, so
 * "ab"+"c" and "a"+"bc" differ. */
static uint64_t hash_str(uint64_t h, const char *s)
{
    size_t n = strlen(s);
    h ^= n;
    for (; n >= 8; n -= 8, s += 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 32);
}

static uint64_t ctr_hash(int kind, const char *subject, const char *period)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)kind;
    return hash_str(hash_str(h, subject), period ? period : "");
}

/* The cached counter of a charge, or NULL; under ctr_lock. */
static ctr_t *ctr_find(sql_t *q, int kind, const char *subject, const char *period)
{
    if (!q->nbuckets) return NULL;
    uint64_t h = ctr_hash(kind, subject, period);
    for (ctr_t *e = q->buckets[h & (q->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->kind == kind && strcmp(e->subject, subject) == 0 &&
            (period ? e->period && strcmp(e->period, period) == 0 : !e->period))
            return e;
    return NULL;
}

/* Adds a counter read from the file; under ctr_lock. */
static int ctr_add(sql_t *q, int kind, const char *subject, const char *period, long long value)
{
    if (ctr_find(q, kind, subject, period)) return EG_OK; /* another thread loaded it meanwhile */
    if (q->nctr >= q->nbuckets) {
        size_t nb = q->nbuckets ? q->nbuckets * 2 : 1024;
        ctr_t **b = calloc(nb, sizeof(*b));
        if (!b) return EG_ENOMEM;
        for (size_t i = 0; i < q->nbuckets; i++)
            for (ctr_t *e = q->buckets[i], *next; e; e = next) {
                next = e->next;
                e->next = b[e->hash & (nb - 1)];
                b[e->hash & (nb - 1)] = e;
            }
        free(q->buckets);
        q->buckets = b;
        q->nbuckets = nb;
    }
    ctr_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->subject = strdup(subject)) || (period && !(e->period = strdup(period)))) {
        if (e) free(e->subject);
        free(e);
        return EG_ENOMEM;
    }
    e->kind = kind;
    e->hash = ctr_hash(kind, subject, period);
    e->value = value;
    e->next = q->buckets[e->hash & (q->nbuckets - 1)];
    q->buckets[e->hash & (q->nbuckets - 1)] = e;
    q->nctr++;
    return EG_OK;
}

static void ctr_free_all(sql_t *q)
{
    for (size_t i = 0; i < q->nbuckets; i++)
        for (ctr_t *e = q->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e->subject);
            free(e->period);
            free(e);
        }
    free(q->buckets);
    free(q->dirty);
    q->buckets = q->dirty = NULL;
    q->nbuckets = q->nctr = q->ndirty = q->dirty_cap = 0;
}

/* Forgets counters with nothing pending (they are read again on next
 * use): bounds the table when keys and periods come and go. Under both
 * locks, on the writer thread. */
static void ctr_trim(sql_t *q)
{
    for (size_t i = 0; i < q->nbuckets; i++) {
        ctr_t **pp = &q->buckets[i];
        while (*pp) {
            ctr_t *e = *pp;
            if (e->dirty) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            free(e->subject);
            free(e->period);
            free(e);
            q->nctr--;
        }
    }
    q->trims++; /* every thread's memo is stale */
}

static int ctr_read(sql_t *q, int kind, const char *subject, const char *period, long long *v)
{
    return kind == EG_CHARGE_QUOTA ? get_int(q, q->quota_get, subject, period, v)
                                   : get_int(q, q->credits_get, subject, NULL, v);
}

/* Loads the counters of a charge that are not cached yet (store lock held). */
static int ctr_load(sql_t *q, const eg_charge_t *items, size_t n)
{
    if (check_file(q) != EG_OK) return EG_EIO;
    for (size_t i = 0; i < n; i++) {
        const eg_charge_t *it = &items[i];
        const char *period = it->kind == EG_CHARGE_QUOTA ? it->period : NULL;
        pthread_mutex_lock(&q->ctr_lock);
        int have = ctr_find(q, it->kind, it->subject, period) != NULL;
        pthread_mutex_unlock(&q->ctr_lock);
        if (have) continue;
        long long v = 0;
        if (ctr_read(q, it->kind, it->subject, period, &v) != EG_OK) return EG_EIO;
        pthread_mutex_lock(&q->ctr_lock);
        int rc = ctr_add(q, it->kind, it->subject, period, v);
        pthread_mutex_unlock(&q->ctr_lock);
        if (rc != EG_OK) return rc;
    }
    return EG_OK;
}

/* The counter of charge i from this thread's memo, else looked up (and
 * memoised); NULL when not cached. Under ctr_lock. */
static ctr_t *ctr_of(sql_t *q, size_t i, const eg_charge_t *it)
{
    const char *period = it->kind == EG_CHARGE_QUOTA ? it->period : NULL;
    if (i < 4 && ctr_memo[i].serial == q->serial && ctr_memo[i].trims == q->trims) {
        ctr_t *e = ctr_memo[i].e;
        if (e->kind == (int)it->kind && strcmp(e->subject, it->subject) == 0 &&
            (period ? e->period && strcmp(e->period, period) == 0 : !e->period))
            return e;
    }
    ctr_t *e = ctr_find(q, it->kind, it->subject, period);
    if (e && i < 4) {
        ctr_memo[i].serial = q->serial;
        ctr_memo[i].trims = q->trims;
        ctr_memo[i].e = e;
    }
    return e;
}

/* Decides a charge in memory. 1 admitted (*ticket set), 0 refused,
 * EG_EAGAIN a counter is missing or (!may_block) the uncommitted bound
 * is reached. Under ctr_lock. */
static int ctr_decide(sql_t *q, eg_charge_t *items, size_t n, int may_block, uint64_t *ticket)
{
    ctr_t *e[8];
    if (n > 8) return EG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        e[i] = ctr_of(q, i, &items[i]);
        if (!e[i]) return EG_EAGAIN;
    }
    if (!may_block && eg_writer_pushed(q->writer) - eg_writer_committed(q->writer) + 1 >= q->commit_every)
        return EG_EAGAIN;
    int all = 1;
    for (size_t i = 0; i < n; i++) {
        eg_charge_t *it = &items[i];
        it->value = e[i]->value;
        it->ok = it->kind == EG_CHARGE_QUOTA ? it->value + it->cost <= it->limit : it->value >= it->cost;
        all &= it->ok;
    }
    if (!all) return 0;
    if (q->ndirty + n > q->dirty_cap) {
        size_t cap = q->dirty_cap ? q->dirty_cap * 2 : 256;
        ctr_t **d = realloc(q->dirty, cap * sizeof(*d));
        if (!d) return EG_ENOMEM;
        q->dirty = d;
        q->dirty_cap = cap;
    }
    /* the ticket first: a writer that cannot take it must not see the change */
    int rc = eg_writer_push(q->writer, NULL, ticket);
    if (rc != EG_OK) return rc;
    for (size_t i = 0; i < n; i++) {
        eg_charge_t *it = &items[i];
        long long d = it->kind == EG_CHARGE_QUOTA ? it->cost : -it->cost;
        e[i]->value += d;
        e[i]->pending += d;
        it->value += d;
        if (!e[i]->dirty) {
            e[i]->dirty = 1;
            q->dirty[q->ndirty++] = e[i];
        }
    }
    return 1;
}

static int sql_charge(eg_store_t *s, eg_charge_t *items, size_t n);

/* Charges without the store's lock: in memory when the counters are cached
 * (the worker loop's path), else loading them (may_block). A request that
 * would be the commit_every-th admitted and uncommitted waits for the
 * writer instead (may_block; EG_EAGAIN otherwise). */
static int sql_charge_nl(eg_store_t *s, eg_charge_t *items, size_t n, int may_block)
{
    sql_t *q = (sql_t *)s;
    if (!q->writer) {
        if (!may_block) return EG_EAGAIN;
        pthread_mutex_lock(&s->lock);
        int rc = sql_charge(s, items, n);
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    if (eg_writer_failing(q->writer)) return EG_EIO; /* fail closed: the error is in the store */
    for (int tries = 0; tries < 3; tries++) {
        uint64_t ticket = 0;
        pthread_mutex_lock(&q->ctr_lock);
        int rc = ctr_decide(q, items, n, may_block, &ticket);
        pthread_mutex_unlock(&q->ctr_lock);
        if (rc == 1 && may_block && ticket >= q->commit_every &&
            eg_writer_wait(q->writer, ticket - (q->commit_every - 1), q->busy_ms + 1000) != EG_OK) {
            /* admitted in memory, not durable in time: refuse; the charge
             * stays counted (an over-count, never an under-count) */
            return EG_EIO;
        }
        if (rc != EG_EAGAIN || !may_block) return rc;
        pthread_mutex_lock(&s->lock);
        rc = ctr_load(q, items, n);
        pthread_mutex_unlock(&s->lock);
        if (rc != EG_OK) return rc == EG_ENOMEM ? rc : EG_EIO;
    }
    return EG_EIO;
}

typedef struct {
    ctr_t *e;
    long long delta;
} swap_t;

/* Reads every cached counter back after another connection committed:
 * value = the file's + pending. Store lock held. */
static int ctr_reload(sql_t *q)
{
    pthread_mutex_lock(&q->ctr_lock);
    size_t n = q->nctr, k = 0;
    ctr_t **all = malloc((n ? n : 1) * sizeof(*all));
    for (size_t i = 0; all && i < q->nbuckets; i++)
        for (ctr_t *e = q->buckets[i]; e; e = e->next) all[k++] = e;
    pthread_mutex_unlock(&q->ctr_lock);
    if (!all) return EG_ENOMEM;
    long long *v = malloc((n ? n : 1) * sizeof(*v));
    int rc = v ? EG_OK : EG_ENOMEM;
    /* one read transaction: a consistent view */
    if (rc == EG_OK && sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) rc = fail(q, "begin");
    for (size_t i = 0; rc == EG_OK && i < n; i++) rc = ctr_read(q, all[i]->kind, all[i]->subject, all[i]->period, &v[i]);
    if (sqlite3_get_autocommit(q->db) == 0) sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
    if (rc == EG_OK) {
        /* counters are only freed on this thread (ctr_trim): all[] is valid */
        pthread_mutex_lock(&q->ctr_lock);
        for (size_t i = 0; i < n; i++) all[i]->value = v[i] + all[i]->pending;
        pthread_mutex_unlock(&q->ctr_lock);
    }
    free(v);
    free(all);
    return rc;
}

/* The writer's callback: the pending changes of every dirty counter in one
 * transaction; then, if another connection committed, the counters read
 * back. Items are unused (the counters hold the changes). */
static int sql_flush(void *ctx, void **items, size_t nitems)
{
    (void)items;
    (void)nitems;
    sql_t *q = ctx;
    int rc = EG_OK;
    pthread_mutex_lock(&q->ctr_lock);
    int idle = q->nctr == 0; /* nothing cached: nothing to write or read back */
    pthread_mutex_unlock(&q->ctr_lock);
    if (idle) return EG_OK;
    pthread_mutex_lock(&q->base.lock);
    if (check_file(q) != EG_OK) {
        pthread_mutex_unlock(&q->base.lock);
        return EG_EIO;
    }
    pthread_mutex_lock(&q->ctr_lock);
    size_t n = q->ndirty;
    swap_t *sw = n ? malloc(n * sizeof(*sw)) : NULL;
    if (n && !sw) rc = EG_ENOMEM;
    for (size_t i = 0; sw && i < n; i++) {
        sw[i] = (swap_t){q->dirty[i], q->dirty[i]->pending};
        q->dirty[i]->pending = 0;
        q->dirty[i]->dirty = 0;
    }
    if (sw) q->ndirty = 0;
    pthread_mutex_unlock(&q->ctr_lock);
    if (rc == EG_OK && n) {
        rc = step_write(q, q->begin, "begin");
        for (size_t i = 0; rc == EG_OK && i < n; i++) {
            ctr_t *e = sw[i].e;
            if (!sw[i].delta) continue;
            rc = e->kind == EG_CHARGE_QUOTA ? add_int(q, q->quota_add, e->subject, e->period, sw[i].delta)
                                            : add_int(q, q->credits_add, e->subject, NULL, sw[i].delta);
        }
        if (rc == EG_OK) rc = step_write(q, q->commit, "commit");
        if (rc != EG_OK) {
            rc = EG_EIO;
            if (sqlite3_get_autocommit(q->db) == 0) step_write(q, q->rollback, "rollback");
            pthread_mutex_lock(&q->ctr_lock); /* not written: pending again */
            for (size_t i = 0; i < n; i++) {
                ctr_t *e = sw[i].e;
                e->pending += sw[i].delta;
                if (!e->dirty && q->ndirty < q->dirty_cap) {
                    e->dirty = 1;
                    q->dirty[q->ndirty++] = e;
                }
            }
            pthread_mutex_unlock(&q->ctr_lock);
        }
    }
    free(sw);
    /* other connections' commits are looked for at most twice a
     * commit_interval (so still within one: an idle writer flushes once an
     * interval), not after every commit: reading data_version is a read
     * transaction of its own (four fcntl locks, half a busy commit's system
     * calls); this process's own changes (epoch) at once */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (rc == EG_OK &&
        (q->epoch != q->seen_epoch || 2 * (now_ms - q->dv_at_ms) >= q->commit_interval_ms)) {
        q->dv_at_ms = now_ms;
        long long dv = 0;
        int st = sqlite3_step(q->data_version);
        if (st == SQLITE_ROW) dv = sqlite3_column_int64(q->data_version, 0);
        sqlite3_reset(q->data_version);
        if (st == SQLITE_ROW && (dv != q->seen_dv || q->epoch != q->seen_epoch) && ctr_reload(q) == EG_OK) {
            q->seen_dv = dv;
            q->seen_epoch = q->epoch;
        }
    }
    if (rc == EG_OK) {
        pthread_mutex_lock(&q->ctr_lock);
        if (q->nctr > 100000) ctr_trim(q);
        pthread_mutex_unlock(&q->ctr_lock);
    }
    pthread_mutex_unlock(&q->base.lock);
    return rc;
}

static int sql_set_commit(eg_store_t *s, size_t commit_every, uint64_t commit_interval_ms)
{
    sql_t *q = (sql_t *)s;
    if (q->writer || commit_every <= 1) return EG_OK; /* set once, at start */
    if (commit_every > 65536 || !commit_interval_ms) return EG_EINVAL;
    pthread_mutex_lock(&s->lock);
    int st = sqlite3_step(q->data_version);
    q->seen_dv = st == SQLITE_ROW ? sqlite3_column_int64(q->data_version, 0) : -1;
    sqlite3_reset(q->data_version);
    q->seen_epoch = q->epoch;
    pthread_mutex_unlock(&s->lock);
    q->commit_every = commit_every;
    q->commit_interval_ms = commit_interval_ms;
    /* a commit starts when three quarters of the bound wait: a commit
     * costs the writer thread ~12 system calls and a wake-up whatever its
     * size (0.5 us a request in batches of half the bound, 0.4 at three
     * quarters), and the quarter left is room for the requests that come
     * while it is on its way (a request that meets the bound waits off the
     * loop) */
    size_t room = commit_every / 4 ? commit_every / 4 : 1;
    eg_writer_cfg_t cfg = {commit_every - room, commit_interval_ms, 0, sql_flush, q};
    return eg_writer_start(&cfg, &q->writer);
}

/* The writer's last commit, while the store's lock still exists. */
static void sql_stop(eg_store_t *s)
{
    sql_t *q = (sql_t *)s;
    eg_writer_stop(q->writer);
    q->writer = NULL;
}

static void disconnect(sql_t *q)
{
    sqlite3_stmt **all[] = {&q->get,       &q->list,      &q->insert,    &q->update,
                            &q->touch,     &q->data_version, &q->begin,  &q->commit,
                            &q->rollback,  &q->quota_get, &q->quota_add, &q->credits_get,
                            &q->credits_add};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        sqlite3_finalize(*all[i]);
        *all[i] = NULL;
    }
    sqlite3_close(q->db);
    q->db = NULL;
}

static void sql_close(eg_store_t *s)
{
    sql_t *q = (sql_t *)s;
    sql_stop(s);
    ctr_free_all(q);
    pthread_mutex_destroy(&q->ctr_lock);
    disconnect(q);
    free(q->path);
    free(q);
}

static const eg_store_ops_t sql_ops = {"sqlite",        sql_version,     sql_insert,    sql_update,
                                       sql_get,         sql_list,        sql_touch,     sql_charge,
                                       sql_credits_add, sql_credits_get, sql_quota_get, sql_close,
                                       sql_charge_nl,   sql_set_commit,  sql_stop};

/* Applies the migrations this file has not seen, each in a transaction. */
static int migrate(sql_t *q, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(q->db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                     NULL, NULL, &msg) != SQLITE_OK)
        goto fail;
    sqlite3_stmt *st = NULL;
    long long have = 0;
    if (sqlite3_prepare_v2(q->db, "SELECT coalesce(max(version), 0) FROM schema_version", -1, &st,
                           NULL) != SQLITE_OK)
        goto fail;
    if (sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (have > (long long)NMIGRATIONS) {
        snprintf(err, errlen, "database schema version %lld is newer than this errgate knows (%zu)",
                 have, NMIGRATIONS);
        return EG_EINVAL;
    }
    for (size_t i = (size_t)have; i < NMIGRATIONS; i++) {
        char ver[96];
        snprintf(ver, sizeof(ver), "INSERT INTO schema_version (version) VALUES (%zu)", i + 1);
        if (sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) goto fail;
        if (sqlite3_exec(q->db, migrations[i], NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(q->db, ver, NULL, NULL, &msg) != SQLITE_OK ||
            sqlite3_exec(q->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
            sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
            goto fail;
        }
    }
    return EG_OK;
fail:
    snprintf(err, errlen, "migrating the schema: %s", msg ? msg : sqlite3_errmsg(q->db));
    sqlite3_free(msg);
    return EG_EIO;
}

/* Key hashes and usage live in the file: SQLite would create it 0644 less
 * the umask, and it gives the -wal and -shm files the database's own mode.
 * So a missing file is created here first, empty and 0600 whatever the
 * umask, and all three stay the owner's. An existing file keeps the mode
 * it has (an operator may have shared it with a group on purpose). */
static int create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EG_EIO;
    }
    /* open() applied the umask: 0600 only loses bits, but say it exactly */
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return EG_EIO;
    }
    if (fd >= 0) close(fd);
    return EG_OK;
}

/* Opens the file, applies migrations and prepares statements; on failure
 * leaves q without a connection. create 0 refuses to make a new file. */
static int connect_db(sql_t *q, int create, char *err, size_t errlen)
{
    int rc = EG_EIO;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    if (create && (rc = create_private(q->path, err, errlen)) != EG_OK) goto out;
    rc = EG_EIO;
    if (sqlite3_open_v2(q->path, &q->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", q->path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(q->db, (int)(q->busy_ms > 60000 ? 60000 : q->busy_ms));
    char *msg = NULL;
    if (sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", q->path, msg ? msg : sqlite3_errmsg(q->db));
        sqlite3_free(msg);
        goto out;
    }
    if ((rc = migrate(q, err, errlen)) != EG_OK) {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", err);
        snprintf(err, errlen, "%s: %s", q->path, tmp);
        goto out;
    }
    rc = EG_EIO;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&q->get, "SELECT " COLS " FROM api_keys WHERE id = ?1"},
        {&q->list, "SELECT " COLS " FROM api_keys ORDER BY id"},
        {&q->insert, "INSERT INTO api_keys (" COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"},
        {&q->update, "UPDATE api_keys SET name=?2, owner=?3, plan=?4, scopes=?5, ips=?6, status=?7, "
                     "reason=?8, expires=?9, created=?10, last_used=?11, hash=?12, prev_hash=?13, "
                     "prev_until=?14, env=?15 WHERE id=?1"},
        {&q->touch, "UPDATE api_keys SET last_used=?1 WHERE id=?2 AND last_used < ?1"},
        {&q->data_version, "PRAGMA data_version"},
        {&q->begin, "BEGIN IMMEDIATE"},
        {&q->commit, "COMMIT"},
        {&q->rollback, "ROLLBACK"},
        {&q->quota_get, "SELECT used FROM quota_usage WHERE subject = ?1 AND period = ?2"},
        {&q->quota_add, "INSERT INTO quota_usage (subject, period, used) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (subject, period) DO UPDATE SET used = used + excluded.used"},
        {&q->credits_get, "SELECT balance FROM credits WHERE subject = ?1"},
        {&q->credits_add, "INSERT INTO credits (subject, balance) VALUES (?1, ?2) "
                          "ON CONFLICT (subject) DO UPDATE SET balance = balance + excluded.balance"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        if (sqlite3_prepare_v3(q->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st, NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", q->path, sqlite3_errmsg(q->db));
            goto out;
        }
    }
    struct stat st;
    if (stat(q->path, &st) == 0) {
        q->dev = st.st_dev;
        q->ino = st.st_ino;
    }
    return EG_OK;
out:
    disconnect(q);
    return rc;
}

int eg_store_sqlite_open(const char *path, uint64_t busy_timeout_ms, eg_store_t **out, char *err,
                         size_t errlen)
{
    sql_t *q = calloc(1, sizeof(*q));
    if (!q) return EG_ENOMEM;
    if (eg_store_init(&q->base, &sql_ops) != EG_OK || !(q->path = strdup(path))) {
        free(q);
        return EG_ENOMEM;
    }
    q->busy_ms = busy_timeout_ms;
    q->serial = atomic_fetch_add(&serials, 1) + 1;
    pthread_mutex_init(&q->ctr_lock, NULL);
    int rc = connect_db(q, 1, err, errlen);
    if (rc != EG_OK) {
        sql_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return EG_OK;
}

/* idem_store_sqlite.c - idempotency entries in a table of the store's
 * SQLite file, reached from libuv's thread pool.
 *
 * The table lives beside the keys, quotas and credits (one file to back up)
 * but is used through a connection of its own: its writes are short and do
 * not queue behind the key store's lock, and it needs no migration of the
 * store's schema (CREATE TABLE IF NOT EXISTS). The file is opened as the
 * key store opens it: created 0600 if missing, WAL (readers never wait for
 * the writer), synchronous=NORMAL (a committed row survives the process
 * being killed; a power cut may lose the last commits), a busy timeout
 * bounding each call's wait for another writer (another gateway on the
 * file, `errgate keys`).
 *
 * Every decision is one statement, atomic in SQLite without an explicit
 * transaction: a begin reserves with an upsert that only replaces an
 * expired row; when that changed nothing, a live row holds the key and is
 * read for the answer (a replay costs a write attempt, a first request one
 * statement). Complete is an upsert that only replaces the caller's own
 * reservation or an expired row; release a delete of the caller's own
 * reservation. Rows carry their expiry (Unix ms): a reservation left by a
 * gateway that died is free again lock_ms after it was made, and expired
 * rows are deleted in the background, 500 to a transaction, every
 * purge_every_ms and once at open.
 *
 * Calls run on libuv's thread pool (uv_queue_work) and take the
 * connection's mutex: one statement at a time, which is all SQLite's single
 * writer allows anyway. Answers come back on the caller's loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idem_store_impl.h"

enum { PURGE_BATCH = 500 };

typedef struct {
    eg_idem_store_t base;
    pthread_mutex_t lock;
    sqlite3 *db;
    sqlite3_stmt *get, *reserve, *complete, *release, *purge;
} sq_t;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS idempotency ("
    " key TEXT PRIMARY KEY NOT NULL," /* eg_idem_scope_key */
    " fp BLOB NOT NULL,"              /* the request's fingerprint */
    " owner BLOB,"                    /* in flight: who reserved it */
    " state INTEGER NOT NULL,"        /* 0 in flight, 1 completed */
    " expires INTEGER NOT NULL,"      /* Unix ms */
    " record BLOB) WITHOUT ROWID;"    /* completed: the response */
    "CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency (expires);";

/* ---- statements (the caller holds the lock) */

static void reset(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static int step_write(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    reset(st);
    return rc == SQLITE_DONE ? EG_OK : EG_EIO;
}

/* Reads the live row of op's key into op->res: 1 when there was one, 0
 * when there is none (or it expired), EG_EIO. */
static int read_row(sq_t *q, eg_idem_op_t *op, uint64_t now)
{
    sqlite3_stmt *st = q->get;
    sqlite3_bind_text(st, 1, op->req.key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_DONE) goto out;
    if (rc != SQLITE_ROW) {
        ret = EG_EIO;
        goto out;
    }
    uint64_t expires = (uint64_t)sqlite3_column_int64(st, 2);
    if (expires <= now) goto out;
    ret = 1;
    const void *fp = sqlite3_column_blob(st, 0);
    if (sqlite3_column_bytes(st, 0) != EG_IDEM_HASH_LEN || !fp ||
        memcmp(fp, op->req.fp, EG_IDEM_HASH_LEN) != 0) {
        op->res.state = EG_IDEM_MISMATCH;
    } else if (sqlite3_column_int(st, 1) == 0) {
        op->res.state = EG_IDEM_IN_FLIGHT;
        op->res.retry_after_ms = expires - now;
    } else {
        const void *rec = sqlite3_column_blob(st, 3);
        int len = sqlite3_column_bytes(st, 3);
        if (!rec || len <= 0) {
            eg_idem_op_error(op, "sqlite store: a completed entry without a response%s", NULL);
        } else if (!(op->record = malloc((size_t)len))) {
            eg_idem_op_error(op, "sqlite store: out of memory%s", NULL);
        } else {
            memcpy(op->record, rec, (size_t)len);
            op->res.state = EG_IDEM_COMPLETED;
            op->res.record = op->record;
            op->res.len = (size_t)len;
        }
    }
out:
    reset(st);
    return ret;
}

/* Reserves op's key unless a live row holds it: 1 reserved, 0 not, EG_EIO. */
static int reserve(sq_t *q, eg_idem_op_t *op, uint64_t now)
{
    sqlite3_stmt *st = q->reserve;
    sqlite3_bind_text(st, 1, op->req.key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, op->req.fp, EG_IDEM_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, op->req.owner, sizeof(op->req.owner), SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)(now + op->lock_ms));
    sqlite3_bind_int64(st, 5, (sqlite3_int64)now);
    if (step_write(st) != EG_OK) return EG_EIO;
    return sqlite3_changes(q->db) == 1;
}

static void begin_work(uv_work_t *w)
{
    eg_idem_op_t *op = w->data;
    sq_t *q = (sq_t *)op->s;
    pthread_mutex_lock(&q->lock);
    uint64_t now = eg_idem_now(op->s);
    int rc = 0;
    /* the reservation first: it changes nothing when a live row holds the
     * key, which is then read for the answer; twice at most, for a row
     * released between the two statements */
    for (int i = 0; i < 2 && rc == 0; i++) {
        if ((rc = reserve(q, op, now)) == 1) op->res.state = EG_IDEM_RESERVED;
        if (rc == 0) rc = read_row(q, op, now);
    }
    if (rc == 0) eg_idem_op_error(op, "sqlite store: the key changed hands twice%s", NULL);
    if (rc < 0) eg_idem_op_error(op, "sqlite store: %s", sqlite3_errmsg(q->db));
    pthread_mutex_unlock(&q->lock);
}

static void begin_done(uv_work_t *w, int status)
{
    eg_idem_op_t *op = w->data;
    if (status != 0) { /* cancelled by libuv: never ran */
        free(op->record);
        op->record = NULL;
        eg_idem_op_error(op, "sqlite store: work cancelled%s", NULL);
    }
    eg_idem_op_finish(op);
    eg_idem_op_unref(op);
}

static int sq_begin(eg_idem_store_t *s, eg_idem_op_t *op)
{
    op->work.data = op;
    op->refs = 1;
    return uv_queue_work(op->loop, &op->work, begin_work, begin_done) == 0 ? EG_OK : EG_EIO;
}

/* ---- writes nobody waits for */

typedef enum { JOB_COMPLETE, JOB_RELEASE, JOB_PURGE } job_kind_t;

typedef struct {
    uv_work_t work;
    sq_t *q;
    job_kind_t kind;
    eg_idem_req_t req;
    uint64_t ttl_ms;
    size_t len;
    unsigned char record[]; /* complete */
} job_t;

static int purge_locked(sq_t *q, uint64_t now, size_t *n)
{
    *n = 0;
    for (;;) {
        sqlite3_bind_int64(q->purge, 1, (sqlite3_int64)now);
        if (step_write(q->purge) != EG_OK) return EG_EIO;
        int k = sqlite3_changes(q->db);
        *n += (size_t)k;
        if (k < PURGE_BATCH) return EG_OK;
    }
}

static void job_work(uv_work_t *w)
{
    job_t *j = w->data;
    sq_t *q = j->q;
    sqlite3_stmt *st;
    int rc;
    size_t n;
    pthread_mutex_lock(&q->lock);
    uint64_t now = eg_idem_now(&q->base);
    switch (j->kind) {
    case JOB_COMPLETE:
        st = q->complete;
        sqlite3_bind_text(st, 1, j->req.key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, j->req.fp, EG_IDEM_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, j->req.owner, sizeof(j->req.owner), SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)(now + j->ttl_ms));
        sqlite3_bind_blob64(st, 5, j->record, j->len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)now);
        rc = step_write(st);
        break;
    case JOB_RELEASE:
        st = q->release;
        sqlite3_bind_text(st, 1, j->req.key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, j->req.owner, sizeof(j->req.owner), SQLITE_STATIC);
        rc = step_write(st);
        break;
    default:
        rc = purge_locked(q, now, &n);
        break;
    }
    pthread_mutex_unlock(&q->lock);
    if (rc != EG_OK) eg_idem_failed(&q->base);
}

static void job_done(uv_work_t *w, int status)
{
    job_t *j = w->data;
    if (status != 0) eg_idem_failed(&j->q->base);
    free(j);
}

static int queue_job(sq_t *q, uv_loop_t *loop, job_kind_t kind, const eg_idem_req_t *req,
                     const unsigned char *record, size_t len, uint64_t ttl_ms)
{
    job_t *j = malloc(sizeof(*j) + len);
    if (!j) return EG_ENOMEM;
    j->work.data = j;
    j->q = q;
    j->kind = kind;
    if (req) j->req = *req;
    j->ttl_ms = ttl_ms;
    j->len = len;
    if (len) memcpy(j->record, record, len);
    if (uv_queue_work(loop, &j->work, job_work, job_done) != 0) {
        free(j);
        return EG_EIO;
    }
    return EG_OK;
}

static int sq_complete(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                       const unsigned char *record, size_t len, uint64_t ttl_ms)
{
    return queue_job((sq_t *)s, io->loop, JOB_COMPLETE, req, record, len, ttl_ms);
}

static int sq_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req)
{
    return queue_job((sq_t *)s, io->loop, JOB_RELEASE, req, NULL, 0, 0);
}

static void sq_purge_later(eg_idem_store_t *s, uv_loop_t *loop)
{
    if (queue_job((sq_t *)s, loop, JOB_PURGE, NULL, NULL, 0, 0) != EG_OK) eg_idem_failed(s);
}

static int sq_purge(eg_idem_store_t *s, size_t *n)
{
    sq_t *q = (sq_t *)s;
    pthread_mutex_lock(&q->lock);
    int rc = purge_locked(q, eg_idem_now(s), n);
    pthread_mutex_unlock(&q->lock);
    return rc;
}

/* ---- opening */

static void sq_close(eg_idem_store_t *s)
{
    sq_t *q = (sq_t *)s;
    sqlite3_stmt *all[] = {q->get, q->reserve, q->complete, q->release, q->purge};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(q->db);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

static const eg_idem_ops_t sq_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .complete = sq_complete,
    .release = sq_release,
    .purge = sq_purge,
    .purge_later = sq_purge_later,
    .close = sq_close};

/* As the key store does (store_sqlite.c): a missing file is made empty and
 * 0600 whatever the umask, and SQLite gives its -wal and -shm files the
 * same mode; an existing file keeps the mode it has. */
static int create_private(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EG_EIO;
    }
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return EG_EIO;
    }
    if (fd >= 0) close(fd);
    return EG_OK;
}

int eg_idem_sqlite_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                        size_t errlen)
{
    if (!o->path || !*o->path) {
        snprintf(err, errlen, "sqlite idempotency store: no database file");
        return EG_EINVAL;
    }
    sq_t *q = calloc(1, sizeof(*q));
    if (!q || pthread_mutex_init(&q->lock, NULL) != 0) {
        free(q);
        snprintf(err, errlen, "sqlite idempotency store: out of memory");
        return EG_ENOMEM;
    }
    eg_idem_store_init(&q->base, &sq_ops, o);
    int rc = create_private(o->path, err, errlen);
    if (rc != EG_OK) goto fail;
    rc = EG_EIO;
    if (sqlite3_open_v2(o->path, &q->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", o->path, q->db ? sqlite3_errmsg(q->db) : "out of memory");
        goto fail;
    }
    uint64_t busy = o->busy_timeout_ms ? o->busy_timeout_ms : 5000;
    sqlite3_busy_timeout(q->db, (int)(busy > 60000 ? 60000 : busy));
    char *msg = NULL;
    if (sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL,
                     &msg) != SQLITE_OK ||
        sqlite3_exec(q->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", o->path, msg ? msg : sqlite3_errmsg(q->db));
        sqlite3_free(msg);
        goto fail;
    }
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } stmts[] = {
        {&q->get, "SELECT fp, state, expires, record FROM idempotency WHERE key = ?1"},
        /* only an expired row is replaced: a live one keeps its owner */
        {&q->reserve, "INSERT INTO idempotency (key, fp, owner, state, expires, record)"
                      " VALUES (?1, ?2, ?3, 0, ?4, NULL) ON CONFLICT (key) DO UPDATE SET"
                      " fp = excluded.fp, owner = excluded.owner, state = 0,"
                      " expires = excluded.expires, record = NULL"
                      " WHERE idempotency.expires <= ?5"},
        /* the caller's own reservation, or an expired row, becomes the response */
        {&q->complete, "INSERT INTO idempotency (key, fp, owner, state, expires, record)"
                       " VALUES (?1, ?2, NULL, 1, ?4, ?5) ON CONFLICT (key) DO UPDATE SET"
                       " fp = excluded.fp, owner = NULL, state = 1, expires = excluded.expires,"
                       " record = excluded.record"
                       " WHERE (idempotency.state = 0 AND idempotency.owner = ?3)"
                       " OR idempotency.expires <= ?6"},
        {&q->release, "DELETE FROM idempotency WHERE key = ?1 AND state = 0 AND owner = ?2"},
        {&q->purge, "DELETE FROM idempotency WHERE key IN (SELECT key FROM idempotency"
                    " WHERE expires <= ?1 LIMIT 500)"},
    };
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        if (sqlite3_prepare_v3(q->db, stmts[i].sql, -1, SQLITE_PREPARE_PERSISTENT, stmts[i].st,
                               NULL) != SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", o->path, sqlite3_errmsg(q->db));
            goto fail;
        }
    }
    size_t n;
    if (sq_purge(&q->base, &n) != EG_OK) {
        snprintf(err, errlen, "%s: purging expired idempotency keys: %s", o->path,
                 sqlite3_errmsg(q->db));
        goto fail;
    }
    *out = &q->base;
    return EG_OK;
fail:
    sq_close(&q->base);
    return rc;
}

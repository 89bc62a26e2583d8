/* pg_sink.c - the PostgreSQL sink (see pg_sink.h).
 *
 * One group-commit writer (store/writer.h) a sink: producers push rendered
 * COPY lines; the writer thread owns the libpq connection and sends each
 * batch as
 *
 *     BEGIN; INSERT INTO usage_export_batches (batch_id, events) ...;
 *     COPY usage_events (...) FROM STDIN; <lines>; COMMIT
 *
 * A failed batch is left to the writer, which puts it back in front of the
 * queue and calls again one interval later (with what came meanwhile behind
 * it). The only step whose outcome can be unknown is COMMIT (the connection
 * broke before its answer): the batch id is then kept, and the next attempt
 * first asks usage_export_batches whether it is there; if so, the front of
 * the queue (that batch's events, in the same order) is skipped. Every
 * other failure rolled the transaction back, so sending again is right.
 *
 * The queue bound is the sink's own count of events not yet committed
 * (queued), not the writer's: the writer's counts restart at every batch
 * taken, which would let twice the bound wait while one is being sent.
 */
#include "pg_sink.h"

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "errgate/common.h"
#include "log.h"
#include "pg_copy.h"
#include "writer.h"

/* The tables, created when missing (docs/metering.md shows them). ts is a
 * timestamptz (UTC); quantity double precision, as SQLite's REAL. */
#define EG_PG_SCHEMA                                                                               \
    "CREATE TABLE IF NOT EXISTS usage_events ("                                                    \
    " subject text NOT NULL, event_type text NOT NULL, route text NOT NULL,"                       \
    " status_class smallint NOT NULL, quantity double precision NOT NULL,"                         \
    " events bigint NOT NULL DEFAULT 1, ts timestamptz NOT NULL,"                                  \
    " bytes_in bigint NOT NULL DEFAULT 0, bytes_out bigint NOT NULL DEFAULT 0, event_id text,"     \
    " exported_at timestamptz NOT NULL DEFAULT now());"                                            \
    "CREATE INDEX IF NOT EXISTS usage_events_subject_ts ON usage_events (subject, ts);"            \
    "CREATE TABLE IF NOT EXISTS usage_export_batches ("                                            \
    " batch_id text PRIMARY KEY, events integer NOT NULL,"                                         \
    " exported_at timestamptz NOT NULL DEFAULT now())"

/* A failure that repeats is logged again after this long (with a count). */
#define EG_PG_RELOG_MS       60000u
#define EG_PG_BACKOFF_MAX_MS 30000u

struct eg_pg_sink_s {
    char *conninfo;
    char desc[256]; /* user@host:port/db, for log lines */
    eg_log_t *log;
    size_t max_queued;
    eg_writer_t *w;
    /* the writer thread's alone */
    PGconn *conn;
    uint64_t instance, seq;   /* batch ids: <instance>-<seq> */
    size_t known;             /* events at the queue's front already committed */
    char doubt_id[48];        /* a batch whose COMMIT got no answer */
    size_t doubt_n;           /* ... and its events (after `known`); 0: none */
    uint64_t next_connect_ms; /* when idle and disconnected: the next try */
    uint64_t backoff_ms;
    int failing;
    char reason[512];         /* the last failure's reason */
    uint64_t logged_ms;       /* when it was logged */
    uint64_t repeats;         /* failures since, with the same reason */
    uint64_t fails_in_outage; /* failed attempts since the last success */
    uint64_t drops_logged;
    uint64_t drops_logged_ms;
    /* any thread */
    _Atomic uint64_t pushed, exported, dropped, failures, lost;
    _Atomic uint64_t queued;
    atomic_int failing_flag;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void log_begin(eg_pg_sink_t *s, eg_logline_t *l, const char *event)
{
    eg_logline_begin(l, "metering");
    eg_logline_str(l, "event", event, strlen(event));
    eg_logline_str(l, "sink", s->desc, strlen(s->desc));
}

/* Sets s->reason from a libpq message (first line, the password masked). */
static void set_reason(eg_pg_sink_t *s, const char *what, const char *msg)
{
    char m[400];
    snprintf(m, sizeof(m), "%s", msg && *msg ? msg : "no details");
    m[strcspn(m, "\n")] = '\0';
    eg_pg_redact(s->conninfo, m);
    snprintf(s->reason, sizeof(s->reason), "%s: %s", what, m);
}

/* Logs a failed attempt: the first of an outage, a new reason, and a known
 * one again once a minute (with how often it repeated). */
static void failed(eg_pg_sink_t *s, const char *prev_reason, size_t queued)
{
    uint64_t now = mono_ms();
    atomic_fetch_add(&s->failures, 1);
    atomic_store(&s->failing_flag, 1);
    s->fails_in_outage++;
    int same = s->failing && strcmp(prev_reason, s->reason) == 0;
    s->failing = 1;
    if (same && now - s->logged_ms < EG_PG_RELOG_MS) {
        s->repeats++;
        return;
    }
    eg_logline_t l;
    log_begin(s, &l, "pg_sink_failed");
    eg_logline_str(&l, "reason", s->reason, strlen(s->reason));
    eg_logline_int(&l, "queued", (long long)queued);
    if (same) eg_logline_int(&l, "repeated", (long long)s->repeats);
    eg_logline_end(s->log, &l);
    s->logged_ms = now;
    s->repeats = 0;
}

static void drop_conn(eg_pg_sink_t *s)
{
    if (s->conn) PQfinish(s->conn);
    s->conn = NULL;
}

/* Runs sql (no rows expected); 0 or EG_EIO with s->reason set. */
static int exec(eg_pg_sink_t *s, const char *what, const char *sql)
{
    PGresult *r = PQexec(s->conn, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_reason(s, what, r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    return ok ? EG_OK : EG_EIO;
}

/* Connects and creates the tables when missing. *fresh: a new connection. */
static int ensure_conn(eg_pg_sink_t *s, int *fresh)
{
    *fresh = 0;
    if (s->conn && PQstatus(s->conn) == CONNECTION_OK) return EG_OK;
    drop_conn(s);
    /* the URL (dbname, expanded) comes last: what it sets wins */
    static const char *const keys[] = {
        "connect_timeout", "application_name", "client_encoding", "keepalives",
        "keepalives_idle", "tcp_user_timeout", "dbname",          NULL};
    const char *vals[] = {"5", "errgate", "UTF8", "1", "30", "30000", s->conninfo, NULL};
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        set_reason(s, "connect", s->conn ? PQerrorMessage(s->conn) : "out of memory");
        drop_conn(s);
        return EG_EIO;
    }
    /* a NOTICE for every existing table would go to stderr */
    PQsetNoticeProcessor(s->conn, NULL, NULL);
    /* tables made beforehand let the sink's role do without CREATE on the
     * schema (least privilege: INSERT, and SELECT on the batches) */
    PGresult *r = PQexec(s->conn, "SELECT to_regclass('usage_events') IS NOT NULL AND "
                                  "to_regclass('usage_export_batches') IS NOT NULL");
    int have = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
               strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK)
        set_reason(s, "look up tables", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    int looked = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!looked || (!have && exec(s, "create table", EG_PG_SCHEMA) != EG_OK)) {
        drop_conn(s);
        return EG_EIO;
    }
    *fresh = 1;
    eg_logline_t l;
    log_begin(s, &l, "pg_sink_connected");
    eg_logline_end(s->log, &l);
    return EG_OK;
}

/* Whether the batch of unknown outcome was committed: 0 (*found set) or EG_EIO.
 */
static int lookup_doubt(eg_pg_sink_t *s, int *found)
{
    const char *params[1] = {s->doubt_id};
    PGresult *r = PQexecParams(s->conn, "SELECT 1 FROM usage_export_batches WHERE batch_id = $1", 1,
                               NULL, params, NULL, NULL, 0);
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK;
    if (ok)
        *found = PQntuples(r) > 0;
    else
        set_reason(s, "look up batch", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    return ok ? EG_OK : EG_EIO;
}

/* Sends lines[0..n) in one transaction. *begun: the first statement was
 * sent and answered (a failure before it may be a connection that broke
 * while idle). Sets the doubt when COMMIT got no answer. */
static int copy_batch(eg_pg_sink_t *s, void **lines, size_t n, int *answered)
{
    char id[48], sql[160];
    *answered = 0;
    snprintf(id, sizeof(id), "%016llx-%llu", (unsigned long long)s->instance,
             (unsigned long long)++s->seq);
    snprintf(sql, sizeof(sql),
             "BEGIN; INSERT INTO usage_export_batches (batch_id, events) VALUES "
             "('%s', %zu)",
             id, n);
    if (exec(s, "begin", sql) != EG_OK) return EG_EIO;
    *answered = 1;
    PGresult *r = PQexec(s->conn, "COPY usage_events (" EG_PG_COPY_COLUMNS ") FROM STDIN");
    int ok = r && PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) set_reason(s, "copy", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    if (!ok) return EG_EIO;
    /* lines gathered into 64 KiB messages: one CopyData per row costs a
     * message header and a call each */
    char buf[65536];
    size_t used = 0;
    for (size_t i = 0; i < n && ok; i++) {
        const char *line = lines[i];
        size_t len = strlen(line);
        if (used + len > sizeof(buf) && used) {
            ok = PQputCopyData(s->conn, buf, (int)used) == 1;
            used = 0;
        }
        if (!ok) break;
        if (len > sizeof(buf)) {
            ok = PQputCopyData(s->conn, line, (int)len) == 1;
        } else {
            memcpy(buf + used, line, len);
            used += len;
        }
    }
    if (ok && used) ok = PQputCopyData(s->conn, buf, (int)used) == 1;
    if (!ok || PQputCopyEnd(s->conn, NULL) != 1) {
        set_reason(s, "copy", PQerrorMessage(s->conn));
        return EG_EIO;
    }
    r = PQgetResult(s->conn);
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_reason(s, "copy", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
    PQclear(r);
    while ((r = PQgetResult(s->conn)))
        PQclear(r);
    if (!ok) return EG_EIO;
    r = PQexec(s->conn, "COMMIT");
    /* a transaction that failed answers COMMIT with ROLLBACK, not an error */
    ok = r && PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0;
    if (!ok) {
        set_reason(s, "commit", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
        if (!r || PQstatus(s->conn) != CONNECTION_OK) { /* committed or not: ask later */
            snprintf(s->doubt_id, sizeof(s->doubt_id), "%s", id);
            s->doubt_n = n;
        }
    }
    PQclear(r);
    return ok ? EG_OK : EG_EIO;
}

/* Drops counted by push, logged from here at most once a second. */
static void report_drops(eg_pg_sink_t *s, uint64_t now)
{
    uint64_t d = atomic_load(&s->dropped);
    if (d == s->drops_logged || now - s->drops_logged_ms < 1000) return;
    eg_logline_t l;
    log_begin(s, &l, "pg_sink_dropped");
    eg_logline_int(&l, "dropped", (long long)(d - s->drops_logged));
    eg_logline_int(&l, "dropped_total", (long long)d);
    eg_logline_int(&l, "max_queued", (long long)s->max_queued);
    eg_logline_str(&l, "why", "the queue is full (PostgreSQL down or too slow)", 46);
    eg_logline_end(s->log, &l);
    s->drops_logged = d;
    s->drops_logged_ms = now;
}

static void recovered(eg_pg_sink_t *s, size_t sent)
{
    atomic_store(&s->failing_flag, 0);
    s->backoff_ms = 0;
    if (!s->failing) return;
    s->failing = 0;
    eg_logline_t l;
    log_begin(s, &l, "pg_sink_recovered");
    eg_logline_int(&l, "failed_attempts", (long long)s->fails_in_outage);
    eg_logline_int(&l, "exported", (long long)sent);
    eg_logline_end(s->log, &l);
    s->fails_in_outage = 0;
}

/* The writer's callback: one batch (n > 0), or an idle call (n == 0) that
 * connects ahead of the first events, with a backoff while it cannot. */
static int flush(void *ctx, void **items, size_t n)
{
    eg_pg_sink_t *s = ctx;
    uint64_t now = mono_ms();
    char prev[sizeof(s->reason)];
    memcpy(prev, s->reason, sizeof(prev));
    report_drops(s, now);
    int fresh = 0;
    if (n == 0) {
        if (s->conn || now < s->next_connect_ms) return EG_OK;
        if (ensure_conn(s, &fresh) == EG_OK) {
            recovered(s, 0);
        } else {
            s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 1000;
            if (s->backoff_ms > EG_PG_BACKOFF_MAX_MS) s->backoff_ms = EG_PG_BACKOFF_MAX_MS;
            s->next_connect_ms = now + s->backoff_ms;
            failed(s, prev, 0);
        }
        return EG_OK; /* nothing was to be written */
    }
    for (int attempt = 0;; attempt++) {
        int rc = ensure_conn(s, &fresh);
        size_t k = s->known;
        if (rc == EG_OK && s->doubt_n) {
            int found = 0;
            if ((rc = lookup_doubt(s, &found)) == EG_OK) {
                if (found) { /* it made it: those events are exported */
                    k += s->doubt_n;
                    atomic_fetch_add(&s->exported, s->doubt_n);
                }
                s->doubt_n = 0;
                s->known = k;
            }
        }
        if (k > n) k = n; /* cannot be: the writer gives the same front back */
        int answered = 1;
        if (rc == EG_OK && n > k) rc = copy_batch(s, items + k, n - k, &answered);
        if (rc == EG_OK) {
            for (size_t i = 0; i < n; i++)
                free(items[i]);
            atomic_fetch_sub(&s->queued, n);
            atomic_fetch_add(&s->exported, n - k);
            s->known = 0;
            recovered(s, n - k);
            return EG_OK;
        }
        drop_conn(s); /* whatever broke, the next attempt starts clean */
        /* a connection that broke while idle (a server restarted) fails at
         * its first statement: one new connection at once, not in a second */
        if (!answered && !fresh && attempt == 0) continue;
        failed(s, prev, (size_t)atomic_load(&s->queued));
        return EG_EIO;
    }
}

/* eg_writer_stop: what the last try could not send. */
static void drop_item(void *ctx, void *item)
{
    eg_pg_sink_t *s = ctx;
    free(item);
    atomic_fetch_add(&s->lost, 1);
}

int eg_pg_sink_open_cfg(const eg_pg_sink_cfg_t *cfg, eg_pg_sink_t **out, char *err, size_t errlen)
{
    int rc = eg_pg_url_check(cfg->conninfo, err, errlen);
    if (rc != EG_OK) return rc;
    eg_pg_sink_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->conninfo = strdup(cfg->conninfo))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return EG_ENOMEM;
    }
    eg_pg_url_describe(cfg->conninfo, s->desc, sizeof(s->desc));
    s->log = cfg->log;
    s->max_queued = cfg->max_queued ? cfg->max_queued : EG_PG_SINK_MAX_QUEUED;
    if (getrandom(&s->instance, sizeof(s->instance), 0) != (ssize_t)sizeof(s->instance))
        s->instance = (uint64_t)time(NULL) ^ ((uint64_t)mono_ms() << 20);
    eg_writer_cfg_t wc = {.commit_every = cfg->batch ? cfg->batch : 5000,
                          .commit_interval_ms = cfg->interval_ms ? cfg->interval_ms : 1000,
                          .flush = flush,
                          .ctx = s};
    if ((rc = eg_writer_start(&wc, &s->w)) != EG_OK) {
        free(s->conninfo);
        free(s);
        snprintf(err, errlen, "cannot start the sink's thread");
        return rc;
    }
    *out = s;
    return EG_OK;
}

int eg_pg_sink_open(const char *conninfo, eg_pg_sink_t **out, char *err, size_t errlen)
{
    eg_pg_sink_cfg_t cfg = {.conninfo = conninfo};
    return eg_pg_sink_open_cfg(&cfg, out, err, errlen);
}

/* One row: an event, or a commit's sum of `events` of them. */
static int push_row(eg_pg_sink_t *s, const eg_usage_event_t *ev, uint64_t events,
                    const char *event_id)
{
    if (atomic_load(&s->queued) >= s->max_queued) {
        atomic_fetch_add(&s->dropped, 1);
        return EG_EAGAIN;
    }
    eg_pg_row_t row = {.subject = ev->subject,
                       .event_type = ev->event_type,
                       .route = ev->route,
                       .event_id = event_id,
                       .status_class = ev->status_class,
                       .quantity = ev->quantity,
                       .events = events,
                       .ts = ev->ts,
                       .bytes_in = ev->bytes_in,
                       .bytes_out = ev->bytes_out};
    char *line;
    size_t len;
    int rc = eg_pg_copy_row(&row, &line, &len);
    if (rc != EG_OK) return rc;
    atomic_fetch_add(&s->queued, 1);
    if ((rc = eg_writer_push(s->w, line, NULL)) != EG_OK) {
        atomic_fetch_sub(&s->queued, 1);
        atomic_fetch_add(&s->dropped, 1);
        free(line);
        return rc;
    }
    atomic_fetch_add(&s->pushed, 1);
    return EG_OK;
}

int eg_pg_sink_push(eg_pg_sink_t *s, const eg_usage_event_t *ev, const char *event_id)
{
    return push_row(s, ev, 1, event_id);
}

void eg_pg_sink_tap(void *ctx, const eg_usage_event_t *ev, uint64_t events)
{
    push_row(ctx, ev, events, NULL); /* a refusal is counted and logged as dropped */
}

void eg_pg_sink_stats(const eg_pg_sink_t *s, eg_pg_sink_stats_t *out)
{
    eg_pg_sink_t *m = (eg_pg_sink_t *)s; /* atomics read only */
    out->pushed = atomic_load(&m->pushed);
    out->exported = atomic_load(&m->exported);
    out->dropped = atomic_load(&m->dropped);
    out->failures = atomic_load(&m->failures);
    out->queued = atomic_load(&m->queued);
    out->failing = atomic_load(&m->failing_flag);
}

int eg_pg_sink_is(const eg_pg_sink_t *s, const char *conninfo)
{
    return conninfo && strcmp(s->conninfo, conninfo) == 0;
}

void eg_pg_sink_close(eg_pg_sink_t *s)
{
    if (!s) return;
    eg_writer_stop_drain(s->w, drop_item); /* one last try with what is queued */
    uint64_t lost = atomic_load(&s->lost);
    report_drops(s, mono_ms() + 1000);
    if (lost) {
        eg_logline_t l;
        log_begin(s, &l, "pg_sink_lost");
        eg_logline_int(&l, "events", (long long)lost);
        eg_logline_str(&l, "reason", s->reason, strlen(s->reason));
        eg_logline_str(&l, "why", "the gateway stopped while PostgreSQL could not take them", 56);
        eg_logline_end(s->log, &l);
    }
    drop_conn(s);
    free(s->conninfo);
    free(s);
}

/* usage.h - usage events and their hourly totals (issue 24; docs/metering.md).
 *
 * Two halves:
 *  - recording (eg_usage_t, owned by the server: opened at start when a
 *    route meters, closed at shutdown with a last commit): the meter stage
 *    records one event per served request. An event is added to a totals
 *    table in memory (one short lock, no allocation once its key was seen)
 *    and counted by a group-commit writer (writer.h); the writer thread
 *    adds the batch's totals to the `usage` table with one UPSERT per key
 *    in one transaction. So a batch's events with the same key (subject,
 *    event type, route, status class, hour) cost one row write.
 *  - reading (eg_usage_query): totals for a period, by day or route, from
 *    the `usage` table of a SQLite file, for the usage API, the admin API
 *    and `errgate usage`. Redis totals are read by usage_redis.c into the
 *    same rows.
 *
 * The bound on what a kill -9 loses: events are "held" from the moment a
 * request is admitted under a meter (eg_usage_reserve) until their commit;
 * at most max_uncommitted are held at once (the meter stage refuses with
 * 503 beyond that), so a crash loses at most max_uncommitted served
 * requests, and in practice those of the last commit_interval.
 *
 * The tables (store_sqlite.c, migration 3) are the shared spec's
 * (/work/notes/metering-spec.md): `usage` (hourly totals) and
 * `meter_events` (metering-API events, one row each, written by the
 * metering API in the same transaction as its totals).
 */
#ifndef EG_USAGE_H
#define EG_USAGE_H

#include <stddef.h>
#include <stdint.h>

/* One usage event: a served request (the meter stage) or an event posted
 * to the metering API. Strings are borrowed for the call only. */
typedef struct {
    const char *subject;          /* "k:<key id>" | "u:<JWT subject / consumer>" | "ip:<address>" */
    const char *event_type;       /* "api.request", "compute.minutes", ..., "custom.x" */
    const char *route;            /* the route's name; "" for metering-API events */
    int status_class;             /* 2..5 for served requests; 0 for metering-API events */
    double quantity;              /* > 0 */
    int64_t ts;                   /* Unix seconds of the event */
    uint64_t bytes_in, bytes_out; /* 0 unless the route meters bytes */
} eg_usage_event_t;

typedef struct eg_usage_s eg_usage_t;

typedef struct {
    const char *path;            /* the store's SQLite file (migrated: eg_store_open) */
    uint64_t busy_timeout_ms;    /* default 2s */
    size_t commit_every;         /* events that start a commit, default 256 */
    uint64_t commit_interval_ms; /* the longest an event waits for its commit, default 50 ms */
    size_t max_uncommitted;      /* events held uncommitted at most, default 10000 */
} eg_usage_opts_t;

/* Opens its own connection to the file and starts the writer thread. */
int eg_usage_open(const eg_usage_opts_t *o, eg_usage_t **out, char *err, size_t errlen);
/* A reload's metering.commit_every, commit_interval and max_uncommitted
 * (0: the default), applied from the next event on; the path stays. */
void eg_usage_retune(eg_usage_t *u, size_t commit_every, uint64_t commit_interval_ms,
                     size_t max_uncommitted);
/* The last commit (everything recorded), then closes; NULL is fine. */
void eg_usage_close(eg_usage_t *u);

/* Takes one of the max_uncommitted places for a request about to be
 * served: 1, or 0 when they are all held (the caller refuses the request:
 * serving it could not be metered within the bound). Lock-free. */
int eg_usage_reserve(eg_usage_t *u);
/* Gives a place back: the request was not served after all. */
void eg_usage_unreserve(eg_usage_t *u);
/* Records one event, copied; `reserved` 1 when it takes the place of an
 * eg_usage_reserve. Never waits on the disk. EG_ENOMEM, EG_EINVAL. */
int eg_usage_record(eg_usage_t *u, const eg_usage_event_t *ev, int reserved);
/* The part of a served request's key that is constant per route, its
 * event type and route, measured and hashed once (the meter stage keeps
 * one per route and configuration generation): a request then hashes only
 * its subject, and an entry that matched a route once skips comparing
 * those strings (id: unique per init). The strings are borrowed. */
typedef struct {
    const char *event_type, *route;
    size_t lt, lr;
    uint64_t hash, id;
    /* the entry its thread added to last (usage.c's memo): one thread
     * records with an eg_usage_fixed_t */
    void *memo;
    const void *memo_u;
    uint64_t memo_trims;
} eg_usage_fixed_t;
void eg_usage_fixed_init(eg_usage_fixed_t *f, const char *event_type, const char *route);
/* eg_usage_record(reserved = 1) of a served request on f's route, its
 * subject ls bytes (no terminator needed), on the thread that owns f. */
int eg_usage_record_fixed(eg_usage_t *u, eg_usage_fixed_t *f, const char *subject, size_t ls,
                          int status_class, double quantity, int64_t ts, uint64_t bytes_in,
                          uint64_t bytes_out);
/* Waits until everything recorded so far is committed (tests, the usage
 * API reading its own writes); EG_EIO when a commit fails or timeout. */
int eg_usage_sync(eg_usage_t *u, uint64_t timeout_ms);
/* Events recorded or reserved and not committed yet. */
uint64_t eg_usage_held(const eg_usage_t *u);
/* 1 while the last commit failed. */
int eg_usage_failing(const eg_usage_t *u);

/* Called on the writer thread after each commit, once per row it added
 * to: ev holds the row's key, its hour as ts (hour * 3600) and the sums
 * of quantity and bytes; events is how many events the sums hold (the
 * PostgreSQL sink copies these). Set before the first record. */
typedef void (*eg_usage_tap_fn)(void *ctx, const eg_usage_event_t *ev, uint64_t events);
void eg_usage_set_tap(eg_usage_t *u, eg_usage_tap_fn fn, void *ctx);

/* ---- reading */

typedef enum { EG_USAGE_GROUP_NONE = 0, EG_USAGE_GROUP_DAY, EG_USAGE_GROUP_ROUTE } eg_usage_group_t;

/* One total: per subject, event type, group ("" ungrouped, "2026-12-07",
 * or the route) and status class. Strings owned (eg_usage_rows_free). */
typedef struct {
    char *subject, *event_type, *group;
    int status_class;
    double quantity;
    uint64_t events, bytes_in, bytes_out;
} eg_usage_row_t;

typedef struct {
    const char *subject; /* NULL: every subject */
    int64_t from, to;    /* Unix seconds, [from, to): whole hours (from rounded down, to up) */
    eg_usage_group_t group;
} eg_usage_query_t;

/* Totals from the SQLite file at path, sorted by subject, event type,
 * group, status class. A file without the usage table has none. */
int eg_usage_query(const char *path, uint64_t busy_timeout_ms, const eg_usage_query_t *q,
                   eg_usage_row_t **rows, size_t *n, char *err, size_t errlen);
void eg_usage_rows_free(eg_usage_row_t *rows, size_t n);
/* Adds a row to a list being built (usage_redis.c); EG_ENOMEM. */
int eg_usage_rows_add(eg_usage_row_t **rows, size_t *n, size_t *cap, const eg_usage_row_t *row);
/* Sorts rows as eg_usage_query does and merges equal keys. */
void eg_usage_rows_sort(eg_usage_row_t *rows, size_t *n);

/* "2026-12-07" or "2026-12-07T10:00:00Z" into Unix seconds; a date is the
 * day's start, or (end 1) the next day's start, so to=DATE includes the
 * day. EG_EINVAL. */
int eg_usage_parse_time(const char *s, int end, int64_t *out);
/* The UTC calendar month (day 0) or day (day 1) containing now: its first
 * second and the next period's, the default period of the usage views. */
void eg_usage_period_at(int day, int64_t now, int64_t *start, int64_t *end);

#endif

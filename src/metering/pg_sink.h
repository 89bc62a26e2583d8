/* pg_sink.h - usage events copied to PostgreSQL (metering.sink:
 * postgres://...).
 *
 * The gateway's own store (SQLite) keeps the record; the sink copies what
 * it commits to a PostgreSQL table, usage_events, for a billing system or
 * for when one node is outgrown: served requests as the usage writer's
 * per-commit sums (one row per subject, event type, route, status class
 * and hour a commit added to, with its count of events), metering-API
 * events one row each with their id. Events are rendered as COPY text
 * lines when pushed (pg_copy.h) and queued on a group-commit writer
 * (store/writer.h), whose thread sends each batch with one COPY in one
 * transaction. The gateway never waits for PostgreSQL: a push takes one
 * short lock; a server that is down or slow only makes the queue longer.
 *
 * Failures: a batch that fails stays queued, in order, and is retried about
 * once a second, on a new connection when the old one broke; so an outage
 * of PostgreSQL loses nothing as long as the queue has room (max_queued
 * events; beyond it pushes are refused and counted as dropped, logged once a
 * second at most). A batch whose COMMIT got no answer (the connection broke
 * right then) is looked up by its batch id in usage_export_batches before it
 * is sent again, so it is never copied twice. What is still queued when the
 * gateway stops and PostgreSQL stays unreachable is lost (logged with its
 * count): the gateway's store still has it (docs/metering.md, reconciling).
 */
#ifndef EG_PG_SINK_H
#define EG_PG_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "usage.h"

typedef struct eg_pg_sink_s eg_pg_sink_t;
struct eg_log_s;

typedef struct {
    const char *conninfo; /* the postgres:// URL (checked with eg_pg_url_check) */
    struct eg_log_s *log; /* the errors log (connected, failed, dropped...); NULL: none */
    size_t max_queued;    /* 0: EG_PG_SINK_MAX_QUEUED */
    size_t batch;         /* a COPY starts once this many wait; 0: 5000 */
    uint64_t interval_ms; /* ... or this long after the first; also the retry
                             delay; 0: 1000 */
} eg_pg_sink_cfg_t;

#define EG_PG_SINK_MAX_QUEUED 1000000u

typedef struct {
    uint64_t pushed;   /* rows accepted by push */
    uint64_t exported; /* rows committed in PostgreSQL */
    uint64_t dropped;  /* rows refused: the queue was full */
    uint64_t failures; /* attempts that failed (each retried) */
    uint64_t queued;   /* rows waiting (pushed, not yet committed or lost) */
    int failing;       /* 1 while the last attempt failed */
} eg_pg_sink_stats_t;

/* Starts the sink's thread. It connects (and creates the table when it is
 * missing) on its own, at once and again after failures: an unreachable
 * server is not an error here, only logged. err: why it could not start
 * (a bad URL, out of memory). */
int eg_pg_sink_open(const char *conninfo, eg_pg_sink_t **out, char *err, size_t errlen);
int eg_pg_sink_open_cfg(const eg_pg_sink_cfg_t *cfg, eg_pg_sink_t **out, char *err, size_t errlen);
/* Queues one event (copied); never blocks. event_id NULL for served requests.
 * EG_EAGAIN (counted as dropped) when the queue is full, EG_EINVAL for a
 * quantity that is not > 0. Safe from any thread. The metering API calls
 * it for each event it accepted, once its transaction committed. */
int eg_pg_sink_push(eg_pg_sink_t *s, const eg_usage_event_t *ev, const char *event_id);
/* The usage writer's tap (usage.h, eg_usage_set_tap(u, eg_pg_sink_tap,
 * sink)): one row a committed total, `events` the events it sums, ts the
 * hour's start. */
void eg_pg_sink_tap(void *ctx, const eg_usage_event_t *ev, uint64_t events);
void eg_pg_sink_stats(const eg_pg_sink_t *s, eg_pg_sink_stats_t *out);
/* 1 when the sink sends to conninfo (a reload that changes it is told
 * that it takes effect on restart). */
int eg_pg_sink_is(const eg_pg_sink_t *s, const char *conninfo);
/* Flushes what is queued (one last try), then stops the thread and frees. */
void eg_pg_sink_close(eg_pg_sink_t *s);

#endif

/* meter_store.h - where the metering API records a batch's events: the
 * usage tables of the store's SQLite file, or Redis (docs/metering.md).
 *
 * Recording a batch does two things at once for each event: it claims the
 * event's id (a duplicate, in this batch, an earlier one, another worker's
 * or another node's, claims nothing) and, only when the claim succeeded,
 * adds the quantity to the hourly totals. Both happen in one atomic step
 * per batch, so an accepted event is counted exactly once even across a
 * crash, and of any number of concurrent posts of one id exactly one is
 * accepted:
 *  - sqlite: one BEGIN IMMEDIATE transaction per batch on the store's file
 *    (its own connection, on libuv's thread pool, never the loop): INSERT OR
 *    IGNORE into meter_events (a row not inserted is a duplicate) and an
 *    UPSERT into usage (route '', status_class 0) for each row inserted.
 *    SQLite's single writer orders the batches of every worker and every
 *    process on the file. A row is kept id_ttl_s (max_age + max_future +
 *    2 minutes, as in Redis) after it was received, then purged (at most
 *    every minute, off the loop, in steps of 1000 rows): by then its
 *    timestamp is older than max_age + 2 minutes (it was at most
 *    max_future ahead of its receipt), so a resend of the event is refused
 *    by its timestamp (invalid_timestamp) before its id is looked up.
 *  - redis: one Lua script per batch on the worker's connection: SET NX EX
 *    of <prefix>me:<id> then, for a claimed id, HINCRBYFLOAT and HINCRBY on
 *    the hour's totals hash (the spec's layout). An id is kept for max_age
 *    + max_future + 2 minutes: an older resend is refused by its timestamp.
 */
#ifndef EG_METER_STORE_H
#define EG_METER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "errgate/common.h"

struct eg_redis_s;

typedef struct eg_meter_store_s eg_meter_store_t;

/* One event to record; strings are the caller's and must stay valid until
 * the callback. */
typedef struct {
    const char *id;
    const char *subject; /* "k:<key id>" or "u:<owner>" (usage.h's subjects) */
    const char *event_type;
    double quantity;
    int64_t ts;
    const char *metadata; /* JSON text or NULL */
} eg_meter_item_t;

/* rc EG_OK with fresh[i] 1 for each event recorded now and 0 for each
 * whose id was recorded before; EG_EIO when nothing was recorded (why says
 * what failed; the caller answers 503). On the caller's loop. */
typedef void (*eg_meter_store_cb)(void *arg, int rc, const char *why);

/* id_ttl_s: how long an event's row is kept after its receipt. */
int eg_meter_store_open_sqlite(const char *path, uint64_t busy_timeout_ms, int64_t id_ttl_s,
                               eg_meter_store_t **out, char *err, size_t errlen);
/* prefix: the redis: section's; id_ttl_s how long an id is kept;
 * retention_s how long totals are kept after an event (metering.retention). */
int eg_meter_store_open_redis(const char *prefix, int64_t id_ttl_s, int64_t retention_s,
                              eg_meter_store_t **out, char *err, size_t errlen);
/* Only once nothing is pending (the workers' loops have run dry). */
void eg_meter_store_close(eg_meter_store_t *s);
const char *eg_meter_store_backend(const eg_meter_store_t *s);

/* Records items[0..n) at Unix time received, writing fresh[0..n); with
 * sqlite, queues the purge of expired ids on loop when one is due
 * (received is the clock the purge goes by). loop is
 * the calling worker's; redis its connection (redis backend; NULL there
 * fails at once). cb is called exactly once, on loop, perhaps before this
 * returns (a failure to start). */
void eg_meter_store_record(eg_meter_store_t *s, uv_loop_t *loop, struct eg_redis_s *redis,
                           const eg_meter_item_t *items, size_t n, int64_t received,
                           unsigned char *fresh, eg_meter_store_cb cb, void *arg);

#endif

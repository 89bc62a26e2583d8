/* redis_link.h - each worker's Redis connection, for the stages that keep
 * shared state in Redis (traffic; idempotency).
 *
 * One link per worker thread, made with the worker (eg_redis_link_new) and
 * freed after its loop stopped. The connection itself (redis.h) is made on
 * first use and made again when a reload moves `redis.address`. The link
 * also keeps what /ready reports across threads (up or failing, decisions
 * Redis did not make) and the tag that makes this worker's slot tokens
 * unique across nodes. All calls but eg_redis_link_status run on the
 * worker's thread.
 */
#ifndef EG_REDIS_LINK_H
#define EG_REDIS_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "redis.h"

typedef struct eg_redis_link_s eg_redis_link_t;

/* rnd: 8 random bytes for the tag. NULL when out of memory. */
eg_redis_link_t *eg_redis_link_new(const unsigned char rnd[8]);
/* Closes the connection: on the worker's thread, once its loop stopped
 * running requests (requests still waiting on Redis get their failure
 * answer). The link stays readable by eg_redis_link_status. */
void eg_redis_link_close(eg_redis_link_t *l);
/* Frees the link (closing its connection if still open); NULL is fine. */
void eg_redis_link_free(eg_redis_link_t *l);
/* The connection for cfg's redis: section, made or remade as needed; NULL
 * when it cannot be made (the caller's failure policy applies). */
eg_redis_t *eg_redis_link_get(eg_redis_link_t *l, uv_loop_t *loop, const eg_config_t *cfg);
/* The connection as it is (NULL when none was made): for releases. */
eg_redis_t *eg_redis_link_current(eg_redis_link_t *l);
/* A decision Redis did not make: counted; returns 1 when it is time for a
 * log line (once a second). */
int eg_redis_link_failed(eg_redis_link_t *l, uint64_t now_ms);
/* A decision Redis made. */
void eg_redis_link_succeeded(eg_redis_link_t *l);
/* A new slot token "<tag>:<seq hex>" into out. */
void eg_redis_link_token(eg_redis_link_t *l, char *out, size_t cap);
/* A batched call's answer: reply is its group's part of the batch's reply
 * (an array of nreply elements, valid during the call only), or NULL when
 * the batch failed or the connection is gone, or an error reply; index is
 * the call's place in its group (0 for the first). */
typedef void (*eg_redis_link_cb)(void *arg, void *reply, size_t index);
/* Batched script calls: every call queued while the loop handles one
 * round of I/O goes to Redis together, as one EVALSHA, when the round ends
 * (a uv_check handle), so a busy worker makes one round trip per loop
 * iteration, not one per request. Consecutive calls with the same keys,
 * arguments and nreply form a group, sent once with its count. The script
 * must take KEYS = every group's keys in order and ARGV = {number of
 * groups, stamp (the largest of the calls' stamps: the batch's time), then
 * per group its count and its arguments}, decide each group's count calls
 * one after the other, and return one flat array in which each group has
 * exactly nreply elements, in order: one answer a group, from which each of
 * its calls reads its own by its index. cb(arg, reply, index) is called
 * once per call (the caller's failure policy applies to a NULL reply);
 * perhaps before this returns. keys and args are copied. */
void eg_redis_link_batch(eg_redis_link_t *l, uv_loop_t *loop, const eg_config_t *cfg,
                         const char *script, uint64_t stamp, int nkeys, const char *const *keys,
                         const size_t *klens, int nargs, const char *const *args,
                         const size_t *alens, size_t nreply, eg_redis_link_cb cb, void *arg);
/* The calls gathered so far go to Redis at the end of this loop iteration
 * even while a batch is in flight (writes that nothing waits for, whose
 * loss on a crash must stay within the iteration that made them: usage
 * events). Without it they wait for the batch in flight's answer. */
void eg_redis_link_now(eg_redis_link_t *l);
/* Calls batched so far, and EVALSHAs that carried them (for /ready and benchmarks). */
void eg_redis_link_batch_stats(eg_redis_link_t *l, uint64_t *calls, uint64_t *batches);
/* From any thread: *up 1 connected, -1 lost or failing, 0 not used yet;
 * *failures decisions Redis did not make. */
void eg_redis_link_status(eg_redis_link_t *l, int *up, uint64_t *failures);

#endif

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
/* From any thread: *up 1 connected, -1 lost or failing, 0 not used yet;
 * *failures decisions Redis did not make. */
void eg_redis_link_status(eg_redis_link_t *l, int *up, uint64_t *failures);

#endif

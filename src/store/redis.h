/* redis.h - shared traffic state in Redis, from the worker loops.
 *
 * With `redis:` configured, rate limits, concurrency slots, quotas and
 * credits live in Redis so that several gateway processes enforce one
 * limit. Each decision is one Lua script run (atomic in Redis: two nodes
 * can never both take the last request). Each worker has its own
 * non-blocking connection (hiredis async on the worker's libuv loop); a
 * request waits for the reply without holding up the loop, bounded by the
 * configured timeout. A connection that breaks (EOF, a reset, a poll
 * error) or stalls (commands left unanswered past the timeout, a health
 * PING unanswered) is torn down and made again by itself, at once and then
 * after 100 ms doubling to 1 s; a new one counts as up once it has answered
 * PING with PONG. What happens to requests while Redis is slow or down
 * (serve unlimited, or refuse with 503) is the caller's policy: this module
 * reports failure, never blocks, never crashes.
 */
#ifndef EG_REDIS_H
#define EG_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct eg_redis_s eg_redis_t;

/* reply is a hiredis redisReply*, or NULL when the call failed (no
 * connection, a lost connection, an error reply is passed as is). */
typedef void (*eg_redis_cb)(void *arg, void *reply);

/* Told when a connection comes up (answered PONG: 1) or is lost, refused
 * or torn down (0), so the owner can report readiness. */
typedef void (*eg_redis_state_cb)(void *arg, int up);

int eg_redis_new(uv_loop_t *loop, const char *host, int port, int db, eg_redis_state_cb on_state,
                 void *arg, eg_redis_t **out);
/* Closes the connection; pending callbacks are called with NULL. The memory
 * is released by the loop's next run (a timer handle closes). */
void eg_redis_free(eg_redis_t *r);

/* The per-command timeout (the configuration's): a command unanswered by
 * then counts as a failure of the connection; three in a row, with nothing
 * back for a second, tear it down. 50 ms until set. */
void eg_redis_set_timeout(eg_redis_t *r, uint64_t timeout_ms);

/* Runs a Lua script (EVALSHA, falling back to EVAL the first time a server
 * does not know it); script must live as long as the program (a static
 * string: its SHA-1 is cached by address). cb is called exactly once, perhaps before this
 * returns (no connection, and none may be tried yet), with the reply even
 * when it comes after the timeout (the caller decides what a late one
 * means), or with NULL when the connection is lost first. Returns 0, or -1
 * when cb was already called. */
int eg_redis_eval(eg_redis_t *r, const char *script, int nkeys, int nargs, const char *const *args,
                  const size_t *lens, eg_redis_cb cb, void *arg);

/* A command whose answer nobody waits for (releasing slots); it must be
 * idempotent. Issued while there is no connection up, or lost with one
 * before Redis answered, it is kept (up to 65,536) and sent once one is up
 * again. */
void eg_redis_fire(eg_redis_t *r, int argc, const char *const *argv, const size_t *lens);

/* Between cork and uncork, commands are queued and not written; uncork
 * writes them at once, in one write (a batch: not a loop iteration later,
 * when the loop says the socket is writable). No-ops without a connection
 * up. */
void eg_redis_cork(eg_redis_t *r);
void eg_redis_uncork(eg_redis_t *r);

/* 1 when a connection is up. */
int eg_redis_connected(const eg_redis_t *r);

/* Where the shared state lives, for the blocking helper below. */
typedef struct {
    const char *host;
    int port, db;
    uint64_t timeout_ms;
    const char *prefix; /* "errgate:" */
} eg_redis_target_t;

/* Blocking, for the CLI and the admin API (not the workers): adds `add`
 * (may be 0 or negative) to a key's credit balance in Redis, atomically and
 * never below zero. Returns 0 with *balance after; -2 when the balance
 * cannot cover a negative add (*balance is the balance, nothing changed);
 * -1 with err when Redis failed. */
int eg_redis_sync_credits(const eg_redis_target_t *t, const char *key_id, long long add,
                          long long *balance, char *err, size_t errlen);

#endif

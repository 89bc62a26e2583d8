/* writer.h - a group-commit writer: many small durable writes, one
 * transaction, on a thread of its own.
 *
 * Producers (worker loops) push items and never wait on the disk; the
 * writer thread hands everything queued to the owner's flush callback,
 * which writes it in one transaction. A commit starts once `commit_every`
 * items wait, or `commit_interval_ms` after the first of them arrived, or
 * at once when somebody waits for a ticket (eg_writer_wait). Each push gets
 * a ticket (1, 2, 3, ...); eg_writer_committed says up to which ticket
 * everything is durable, so an owner can bound how much a crash may lose.
 *
 * Items are opaque pointers owned by the queue until the callback has them:
 * an owner that keeps its own state (the SQLite store's counters) pushes
 * NULL, which is only counted. The callback runs on the writer thread; it
 * is also called with n == 0 about every commit_interval when idle, so the
 * owner can look for changes made by other processes. If it fails, the
 * items are queued again in front and retried one commit_interval later
 * (the owner decides what failing means for its callers: eg_writer_failing).
 * Used by the SQLite store for quota and credit charges; metering events
 * can use it as is (push one event per request, write them in the callback).
 */
#ifndef EG_WRITER_H
#define EG_WRITER_H

#include <stddef.h>
#include <stdint.h>

typedef struct eg_writer_s eg_writer_t;

/* Writes items[0..n) in one transaction; 0 or a negative EG_E* code. On
 * success the callback has consumed (freed) the items, on failure it must
 * leave them as they were. */
typedef int (*eg_writer_flush_fn)(void *ctx, void **items, size_t n);

typedef struct {
    size_t commit_every;         /* >= 1 */
    uint64_t commit_interval_ms; /* >= 1 */
    size_t max_queued;           /* push refuses beyond this many waiting; 0 = no limit */
    eg_writer_flush_fn flush;
    void *ctx;
} eg_writer_cfg_t;

int eg_writer_start(const eg_writer_cfg_t *cfg, eg_writer_t **out);
/* A reload's new commit_every and commit_interval_ms (both >= 1; the
 * running wait is re-evaluated). */
void eg_writer_retune(eg_writer_t *w, size_t commit_every, uint64_t commit_interval_ms);
/* Commits everything still queued (one last try), then stops the thread. */
void eg_writer_stop(eg_writer_t *w);
/* The same, and hands each item the last try could not write to drop(ctx,
 * item) (to free it and count it lost); eg_writer_stop drops them as they
 * are, which leaks items that own memory. */
void eg_writer_stop_drain(eg_writer_t *w, void (*drop)(void *ctx, void *item));

/* Queues item (NULL: counted only); *ticket is its number. EG_EAGAIN when
 * max_queued items wait (for NULL items, that many plus those pushed at
 * the same instant). Never blocks on the disk: one short lock for an item,
 * an atomic addition for NULL. Safe from any thread. */
int eg_writer_push(eg_writer_t *w, void *item, uint64_t *ticket);
/* Every ticket up to this one is committed (an atomic read). */
uint64_t eg_writer_committed(const eg_writer_t *w);
/* The last ticket handed out (an atomic read). */
uint64_t eg_writer_pushed(const eg_writer_t *w);
/* Blocks until ticket is committed, asking for a commit now; EG_EIO when
 * the flush fails or timeout_ms passes first. */
int eg_writer_wait(eg_writer_t *w, uint64_t ticket, uint64_t timeout_ms);
/* 1 while the last flush failed (cleared by the next that works). */
int eg_writer_failing(const eg_writer_t *w);

#endif

/* test_writer.c - the group-commit writer (src/store/writer.c): items reach
 * the callback in order and in batches, a failed flush is retried with the
 * same items, tickets say what is committed, stop commits what is left. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "errgate/common.h"
#include "writer.h"

typedef struct {
    pthread_mutex_t lock;
    int fail_next; /* flushes to fail before one works */
    int seen[64];
    size_t nseen, flushes, failures, dropped;
} sink_t;

static int flush(void *ctx, void **items, size_t n)
{
    sink_t *s = ctx;
    pthread_mutex_lock(&s->lock);
    int rc = EG_OK;
    if (n && s->fail_next > 0) {
        s->fail_next--;
        s->failures++;
        rc = EG_EIO; /* the items must come back */
    } else {
        for (size_t i = 0; i < n; i++) {
            if (s->nseen < 64) s->seen[s->nseen++] = *(int *)items[i];
            free(items[i]);
        }
        if (n) s->flushes++;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static void push_int(eg_writer_t *w, int v, uint64_t *ticket)
{
    int *p = malloc(sizeof(*p));
    assert_non_null(p);
    *p = v;
    assert_int_equal(eg_writer_push(w, p, ticket), EG_OK);
}

static void test_order_tickets_and_retry(void **state)
{
    (void)state;
    sink_t s = {.fail_next = 1};
    pthread_mutex_init(&s.lock, NULL);
    eg_writer_t *w = NULL;
    /* a long interval: commits come from the count or a waiter only */
    eg_writer_cfg_t cfg = {4, 10000, 0, flush, &s};
    assert_int_equal(eg_writer_start(&cfg, &w), EG_OK);
    uint64_t t = 0;
    for (int i = 1; i <= 3; i++)
        push_int(w, i, &t);
    assert_int_equal(t, 3);
    /* the first flush fails: the waiter is told, the items are kept */
    push_int(w, 4, &t); /* the fourth: a commit starts */
    assert_int_equal(eg_writer_wait(w, 4, 5000), EG_EIO);
    /* retried one interval later would be 10 s: a waiter asks for it now */
    while (eg_writer_committed(w) < 4)
        eg_writer_wait(w, 4, 5000);
    assert_int_equal(eg_writer_failing(w), 0);
    pthread_mutex_lock(&s.lock);
    assert_int_equal(s.failures, 1);
    assert_int_equal(s.nseen, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(s.seen[i], i + 1);
    pthread_mutex_unlock(&s.lock);
    /* NULL items are counted, not handed over */
    assert_int_equal(eg_writer_push(w, NULL, &t), EG_OK);
    assert_int_equal(t, 5);
    push_int(w, 6, &t);
    eg_writer_stop(w); /* commits what is left */
    assert_int_equal(s.nseen, 5);
    assert_int_equal(s.seen[4], 6);
    pthread_mutex_destroy(&s.lock);
}

static void test_queue_bound(void **state)
{
    (void)state;
    sink_t s = {0};
    pthread_mutex_init(&s.lock, NULL);
    eg_writer_t *w = NULL;
    eg_writer_cfg_t cfg = {1000, 10000, 2, flush, &s};
    assert_int_equal(eg_writer_start(&cfg, &w), EG_OK);
    assert_int_equal(eg_writer_push(w, NULL, NULL), EG_OK);
    assert_int_equal(eg_writer_push(w, NULL, NULL), EG_OK);
    assert_int_equal(eg_writer_push(w, NULL, NULL), EG_EAGAIN);
    assert_int_equal(eg_writer_wait(w, 2, 5000), EG_OK);
    assert_int_equal(eg_writer_push(w, NULL, NULL), EG_OK);
    eg_writer_stop(w);
    pthread_mutex_destroy(&s.lock);
}

static void drop(void *ctx, void *item)
{
    sink_t *s = ctx;
    s->dropped += (size_t) * (int *)item; /* the values: each item once */
    free(item);
}

/* What the last try at stop cannot write goes to eg_writer_stop_drain's
 * callback, each item once (the PostgreSQL sink frees and counts them). */
static void test_stop_drops_what_failed(void **state)
{
    (void)state;
    sink_t s = {.fail_next = 1000};
    pthread_mutex_init(&s.lock, NULL);
    eg_writer_t *w = NULL;
    eg_writer_cfg_t cfg = {1000, 10000, 0, flush, &s};
    assert_int_equal(eg_writer_start(&cfg, &w), EG_OK);
    push_int(w, 1, NULL);
    push_int(w, 2, NULL);
    push_int(w, 4, NULL);
    eg_writer_stop_drain(w, drop);
    assert_int_equal(s.nseen, 0);
    assert_int_equal(s.dropped, 7);
    assert_true(s.failures >= 1);
    pthread_mutex_destroy(&s.lock);
}

/* NULL items from many threads at once (no lock on their path): every
 * ticket is handed out once, 1..N with none missing, and all of them are
 * committed, in batches of commit_every, with items mixed in. */
enum { PUSHERS = 4, PUSHES = 5000 };

typedef struct {
    eg_writer_t *w;
    uint64_t *tickets;
} pusher_t;

static void *pusher(void *arg)
{
    pusher_t *p = arg;
    for (int i = 0; i < PUSHES; i++) assert_int_equal(eg_writer_push(p->w, NULL, &p->tickets[i]), EG_OK);
    return NULL;
}

static void test_null_pushes_from_many_threads(void **state)
{
    (void)state;
    sink_t s = {0};
    pthread_mutex_init(&s.lock, NULL);
    eg_writer_t *w = NULL;
    /* a long interval: commits come from the count (or the final wait) only */
    eg_writer_cfg_t cfg = {64, 10000, 0, flush, &s};
    assert_int_equal(eg_writer_start(&cfg, &w), EG_OK);
    static uint64_t tickets[PUSHERS][PUSHES];
    pthread_t th[PUSHERS];
    pusher_t ps[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        ps[i] = (pusher_t){w, tickets[i]};
        assert_int_equal(pthread_create(&th[i], NULL, pusher, &ps[i]), 0);
    }
    push_int(w, 7, NULL); /* an item among them */
    for (int i = 0; i < PUSHERS; i++) pthread_join(th[i], NULL);
    uint64_t total = (uint64_t)PUSHERS * PUSHES + 1;
    assert_int_equal(eg_writer_pushed(w), total);
    static unsigned char seen[(size_t)PUSHERS * PUSHES + 2];
    for (int i = 0; i < PUSHERS; i++)
        for (int j = 0; j < PUSHES; j++) {
            assert_true(tickets[i][j] >= 1 && tickets[i][j] <= total);
            assert_int_equal(seen[tickets[i][j]]++, 0);
            if (j) assert_true(tickets[i][j] > tickets[i][j - 1]); /* a thread's own in order */
        }
    assert_int_equal(eg_writer_wait(w, total, 10000), EG_OK);
    assert_true(eg_writer_committed(w) >= total);
    pthread_mutex_lock(&s.lock);
    assert_int_equal(s.nseen, 1);
    assert_int_equal(s.seen[0], 7);
    pthread_mutex_unlock(&s.lock);
    eg_writer_stop(w);
    pthread_mutex_destroy(&s.lock);
}

/* A batch is committed once commit_every wait, with no waiter and the
 * interval far away: the commit_every-th push wakes the thread. */
static void test_batch_commits_by_count(void **state)
{
    (void)state;
    sink_t s = {0};
    pthread_mutex_init(&s.lock, NULL);
    eg_writer_t *w = NULL;
    eg_writer_cfg_t cfg = {8, 100000, 0, flush, &s};
    assert_int_equal(eg_writer_start(&cfg, &w), EG_OK);
    uint64_t t = 0;
    for (int i = 0; i < 7; i++) assert_int_equal(eg_writer_push(w, NULL, &t), EG_OK);
    assert_int_equal(eg_writer_committed(w), 0);
    assert_int_equal(eg_writer_push(w, NULL, &t), EG_OK);
    assert_int_equal(t, 8);
    /* polled, not waited for (a waiter would ask for the commit itself) */
    for (int i = 0; i < 10000 && eg_writer_committed(w) < 8; i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(eg_writer_committed(w), 8);
    eg_writer_stop(w);
    pthread_mutex_destroy(&s.lock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_tickets_and_retry),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_stop_drops_what_failed),
        cmocka_unit_test(test_null_pushes_from_many_threads),
        cmocka_unit_test(test_batch_commits_by_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

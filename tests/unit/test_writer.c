/* test_writer.c - the group-commit writer (src/store/writer.c): items reach
 * the callback in order and in batches, a failed flush is retried with the
 * same items, tickets say what is committed, stop commits what is left. */
#include "testutil.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_tickets_and_retry),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_stop_drops_what_failed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

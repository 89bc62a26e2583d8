/* test_ltimer.c - lazy timers fire when their latest deadline says, not
 * when the libuv timer they ride on was first armed. */
#include "testutil.h"

#include "ltimer.h"

typedef struct {
    eg_ltimer_t t;
    int fired;
    uint64_t at; /* loop time of the callback */
} probe_t;

static void on_fire(uv_timer_t *h)
{
    probe_t *p = h->data;
    p->fired++;
    p->at = uv_now(h->loop);
}

/* Runs the loop until the probe fired or `ms` passed. */
static void run_for(uv_loop_t *loop, uint64_t ms)
{
    uint64_t end = uv_now(loop) + ms;
    while (uv_now(loop) < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(loop);
    }
}

static void setup(uv_loop_t *loop, probe_t *p)
{
    memset(p, 0, sizeof(*p));
    assert_int_equal(uv_loop_init(loop), 0);
    assert_int_equal(eg_ltimer_init(loop, &p->t), 0);
    p->t.h.data = p;
}

static void teardown(uv_loop_t *loop, probe_t *p)
{
    uv_close((uv_handle_t *)&p->t.h, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_a_deadline_moved_later_is_kept(void **state)
{
    (void)state;
    uv_loop_t loop;
    probe_t p;
    setup(&loop, &p);
    uint64_t t0 = uv_now(&loop);
    eg_ltimer_set(&p.t, on_fire, 20);
    eg_ltimer_set(&p.t, on_fire, 150); /* the libuv timer stays at 20 ms */
    run_for(&loop, 100);
    assert_int_equal(p.fired, 0);
    run_for(&loop, 150);
    assert_int_equal(p.fired, 1);
    assert_true(p.at >= t0 + 150);
    teardown(&loop, &p);
}

static void test_a_deadline_moved_earlier_fires_early(void **state)
{
    (void)state;
    uv_loop_t loop;
    probe_t p;
    setup(&loop, &p);
    uint64_t t0 = uv_now(&loop);
    eg_ltimer_set(&p.t, on_fire, 60000);
    eg_ltimer_set(&p.t, on_fire, 10);
    run_for(&loop, 200);
    assert_int_equal(p.fired, 1);
    assert_true(p.at >= t0 + 10);
    assert_false(eg_ltimer_active(&p.t));
    teardown(&loop, &p);
}

static void test_a_stopped_timer_never_calls_back(void **state)
{
    (void)state;
    uv_loop_t loop;
    probe_t p;
    setup(&loop, &p);
    eg_ltimer_set(&p.t, on_fire, 10);
    assert_true(eg_ltimer_active(&p.t));
    eg_ltimer_stop(&p.t);
    assert_false(eg_ltimer_active(&p.t));
    run_for(&loop, 60);
    assert_int_equal(p.fired, 0);
    /* and it can be set again after its libuv timer went off for nothing */
    eg_ltimer_set(&p.t, on_fire, 5);
    run_for(&loop, 60);
    assert_int_equal(p.fired, 1);
    teardown(&loop, &p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_deadline_moved_later_is_kept),
        cmocka_unit_test(test_a_deadline_moved_earlier_fires_early),
        cmocka_unit_test(test_a_stopped_timer_never_calls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

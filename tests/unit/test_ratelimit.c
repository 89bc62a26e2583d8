/* test_ratelimit.c - GCRA: exact limits, bursts, recovery, no boundary double burst. */
#include "testutil.h"

#include "errgate/ratelimit.h"

#define SEC 1000000ull

/* Runs n requests at time t (us) against one TAT; returns how many passed. */
static int burst_at(const eg_gcra_t *g, uint64_t *tat, uint64_t t, int n, eg_gcra_result_t *last)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        eg_gcra_decide(g, *tat, t, 1, tat, last);
        ok += last->allowed;
    }
    return ok;
}

static void test_limit_then_refuse_then_recover(void **state)
{
    (void)state;
    eg_gcra_t g;
    assert_int_equal(eg_gcra_init(&g, 100, 60000, 0), EG_OK); /* 100/min, burst 100 */
    uint64_t tat = 0, t0 = 1700000000ull * SEC;
    eg_gcra_result_t r;
    eg_gcra_decide(&g, tat, t0, 1, &tat, &r);
    assert_true(r.allowed);
    assert_int_equal(r.limit, 100);
    assert_int_equal(r.remaining, 99);
    assert_int_equal(r.reset_ms, 600); /* one interval to be full again */
    assert_int_equal(burst_at(&g, &tat, t0, 99, &r), 99);
    assert_int_equal(r.remaining, 0);
    assert_int_equal(r.reset_ms, 60000);
    eg_gcra_result_t refused;
    uint64_t before = tat;
    eg_gcra_decide(&g, tat, t0, 1, &tat, &refused);
    assert_false(refused.allowed);
    assert_int_equal(tat, before); /* a refusal costs nothing */
    assert_int_equal(refused.retry_after_ms, 600);
    assert_int_equal(refused.reset_ms, 60000);
    /* just before the retry time: still refused; at it: allowed, and only one */
    assert_int_equal(burst_at(&g, &tat, t0 + 599 * 1000, 1, &r), 0);
    assert_int_equal(burst_at(&g, &tat, t0 + 600 * 1000, 5, &r), 1);
    /* after a whole window of quiet, the full allowance is back */
    assert_int_equal(burst_at(&g, &tat, t0 + 61 * SEC, 150, &r), 100);
}

static void test_no_double_burst_at_a_boundary(void **state)
{
    (void)state;
    /* a fixed window lets 2x through around its edge; GCRA never more than
     * burst + elapsed/interval in any span */
    eg_gcra_t g;
    assert_int_equal(eg_gcra_init(&g, 10, 60000, 0), EG_OK);
    uint64_t tat = 0, t0 = 1700000059ull * SEC; /* one second before a minute boundary */
    eg_gcra_result_t r;
    assert_int_equal(burst_at(&g, &tat, t0, 20, &r), 10);
    assert_int_equal(burst_at(&g, &tat, t0 + 2 * SEC, 20, &r), 0); /* after the boundary */
    assert_int_equal(burst_at(&g, &tat, t0 + 6 * SEC, 20, &r), 1);  /* one interval (6 s) later */
    /* from a full allowance, a client hammering every second for a minute
     * gets the burst, then exactly the sustained rate: 10 + one per 6 s */
    uint64_t t = t0 + 100 * SEC;
    int passed = 0, first_two_seconds = 0;
    for (int s = 0; s < 60; s++) {
        int n = burst_at(&g, &tat, t + (uint64_t)s * SEC, 5, &r);
        passed += n;
        if (s < 2) first_two_seconds += n;
    }
    assert_int_equal(first_two_seconds, 10);
    assert_int_equal(passed, 19);
}

static void test_burst_and_cost(void **state)
{
    (void)state;
    eg_gcra_t g;
    assert_int_equal(eg_gcra_init(&g, 60, 60000, 5), EG_OK); /* 1/s, at most 5 at once */
    uint64_t tat = 0, t0 = 1000 * SEC;
    eg_gcra_result_t r;
    assert_int_equal(burst_at(&g, &tat, t0, 10, &r), 5);
    assert_int_equal(r.retry_after_ms, 1000);
    assert_int_equal(burst_at(&g, &tat, t0 + 3 * SEC, 10, &r), 3);
    /* a request costing 3 units needs 3 free */
    tat = 0;
    eg_gcra_decide(&g, tat, t0, 3, &tat, &r);
    assert_true(r.allowed);
    assert_int_equal(r.remaining, 2);
    eg_gcra_decide(&g, tat, t0, 3, &tat, &r);
    assert_false(r.allowed);
    assert_int_equal(r.retry_after_ms, 1000);
    /* bad settings */
    assert_int_equal(eg_gcra_init(&g, 0, 1000, 0), EG_EINVAL);
    assert_int_equal(eg_gcra_init(&g, 10, 0, 0), EG_EINVAL);
    assert_int_equal(eg_gcra_init(&g, 10, 1000, 100000), EG_EINVAL);
    assert_int_equal(eg_gcra_init(&g, 4000000, 1, 0), EG_EINVAL);
}

static void test_most_restrictive(void **state)
{
    (void)state;
    eg_gcra_result_t a = {1, 100, 50, 1000, 0}, b = {1, 10, 3, 1000, 0}, c = {0, 1000, 0, 5000, 4000},
                     d = {0, 10, 0, 9000, 9000};
    assert_true(eg_gcra_more_restrictive(&a, &b));
    assert_false(eg_gcra_more_restrictive(&b, &a));
    assert_true(eg_gcra_more_restrictive(&b, &c));
    assert_false(eg_gcra_more_restrictive(&c, &b));
    assert_true(eg_gcra_more_restrictive(&c, &d));
    assert_false(eg_gcra_more_restrictive(&d, &c));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_then_refuse_then_recover),
        cmocka_unit_test(test_no_double_burst_at_a_boundary),
        cmocka_unit_test(test_burst_and_cost),
        cmocka_unit_test(test_most_restrictive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_limiter.c - the shared limiter: exact under threads, all-or-nothing
 * across limits, slots that come back, sweeping. */
#include "testutil.h"

#include <pthread.h>

#include "limiter.h"

#define SEC 1000000ull

static eg_limiter_t *shared;
static eg_gcra_t per_minute;
static int allowed_total;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static void *hammer(void *arg)
{
    (void)arg;
    int mine = 0;
    for (int i = 0; i < 2000; i++) {
        eg_limit_req_t r = {"R/x#0|k:one", per_minute, 1};
        eg_gcra_result_t res;
        size_t rep;
        mine += eg_limiter_decide(shared, &r, 1, 1000 * SEC, &res, &rep) == 1;
        uint32_t active;
        if (eg_limiter_acquire(shared, "C/x|one", 3, &active) == 1) eg_limiter_release(shared, "C/x|one");
    }
    pthread_mutex_lock(&count_lock);
    allowed_total += mine;
    pthread_mutex_unlock(&count_lock);
    return NULL;
}

static void test_exact_under_threads(void **state)
{
    (void)state;
    assert_int_equal(eg_limiter_new(&shared), EG_OK);
    assert_int_equal(eg_gcra_init(&per_minute, 500, 60000, 0), EG_OK);
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    assert_int_equal(allowed_total, 500); /* 16,000 tries at one instant: exactly the limit */
    assert_int_equal(eg_limiter_active(shared, "C/x|one"), 0);
    eg_limiter_free(shared);
}

static void test_all_or_nothing(void **state)
{
    (void)state;
    eg_limiter_t *l;
    assert_int_equal(eg_limiter_new(&l), EG_OK);
    eg_gcra_t sec, hour;
    assert_int_equal(eg_gcra_init(&sec, 2, 1000, 0), EG_OK);
    assert_int_equal(eg_gcra_init(&hour, 3, 3600000, 0), EG_OK);
    eg_limit_req_t r[2] = {{"hour", hour, 1}, {"sec", sec, 1}};
    eg_gcra_result_t res[2];
    size_t rep;
    uint64_t t = 5000 * SEC;
    assert_int_equal(eg_limiter_decide(l, r, 2, t, res, &rep), 1);
    assert_int_equal(rep, 1); /* sec has 1 left, hour 2: sec is reported */
    assert_int_equal(eg_limiter_decide(l, r, 2, t, res, &rep), 1);
    assert_int_equal(eg_limiter_decide(l, r, 2, t, res, &rep), 0); /* sec refuses */
    assert_int_equal(rep, 1);
    assert_true(res[0].allowed); /* hour would have allowed it ... */
    /* ... and was not charged: one more is left on it after sec recovers */
    assert_int_equal(eg_limiter_decide(l, r, 2, t + 2 * SEC, res, &rep), 1);
    assert_int_equal(res[0].remaining, 0);
    assert_int_equal(eg_limiter_decide(l, r, 2, t + 4 * SEC, res, &rep), 0);
    assert_int_equal(rep, 0); /* now the hourly limit is the one in the way */
    eg_limiter_free(l);
}

static void test_slots_and_sweep(void **state)
{
    (void)state;
    eg_limiter_t *l;
    assert_int_equal(eg_limiter_new(&l), EG_OK);
    uint32_t active;
    assert_int_equal(eg_limiter_acquire(l, "a", 2, &active), 1);
    assert_int_equal(eg_limiter_acquire(l, "a", 2, &active), 1);
    assert_int_equal(active, 2);
    assert_int_equal(eg_limiter_acquire(l, "a", 2, &active), 0);
    assert_int_equal(eg_limiter_acquire(l, "b", 2, &active), 1);
    assert_int_equal(eg_limiter_active_total(l), 3);
    eg_limiter_release(l, "a");
    eg_limiter_release(l, "nobody"); /* harmless */
    assert_int_equal(eg_limiter_acquire(l, "a", 2, &active), 1);
    /* sweeping keeps what holds slots or has not recovered */
    eg_gcra_t g;
    assert_int_equal(eg_gcra_init(&g, 1, 1000, 0), EG_OK);
    char key[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "ip:%d", i);
        eg_limit_req_t r = {key, g, 1};
        eg_gcra_result_t res;
        size_t rep;
        assert_int_equal(eg_limiter_decide(l, &r, 1, 100 * SEC, &res, &rep), 1);
    }
    assert_int_equal(eg_limiter_sweep(l, 100 * SEC), 1002);
    assert_int_equal(eg_limiter_sweep(l, 102 * SEC), 2); /* only the slot holders */
    eg_limiter_release(l, "a");
    eg_limiter_release(l, "a");
    eg_limiter_release(l, "b");
    assert_int_equal(eg_limiter_sweep(l, 102 * SEC), 0);
    eg_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_under_threads),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_slots_and_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_retry.c - the retry policy, with time and randomness passed in. */
#include "testutil.h"

#include "errgate/retry.h"

static eg_retry_input_t input(const char *method, int status, int attempt)
{
    eg_retry_input_t in;
    memset(&in, 0, sizeof(in));
    in.method = method;
    in.status = status;
    in.attempt = attempt;
    in.now_unix_ms = 784111777000ull; /* Sun, 06 Nov 1994 08:49:37 GMT */
    return in;
}

static void test_defaults(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    assert_int_equal(p.max_attempts, 3);
    assert_int_equal(p.base_ms, 1000);
    assert_int_equal(p.cap_ms, 30000);
    assert_int_equal(p.nstatuses, 5);
    eg_retry_budget_t b;
    eg_retry_budget_init(&b, 0);
    assert_int_equal(b.tokens, 500);
}

static void test_retryable_statuses_and_transport_failures(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    int yes[] = {0, 408, 429, 500, 502, 503, 504};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        eg_retry_input_t in = input("GET", yes[i], 1);
        eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
        if (d.action != EG_RETRY_WAIT) fail_msg("status %d not retried (%s)", yes[i], d.reason);
    }
    int no[] = {400, 401, 403, 404, 409, 422, 501};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        eg_retry_input_t in = input("GET", no[i], 1);
        if (eg_retry_decide(&p, NULL, &in).action != EG_RETRY_STOP)
            fail_msg("status %d retried", no[i]);
    }
}

static void test_409_in_progress_and_401_refresh(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_error_t *e = eg_error_new();
    eg_error_set(e, EG_S_CODE, "idempotency_key_in_use");
    eg_retry_input_t in = input("POST", 409, 1);
    in.error = e;
    in.has_idempotency_key = 1;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
    eg_error_set(e, EG_S_CODE, "invalid_token");
    in = input("GET", 401, 1);
    in.error = e;
    eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
    assert_int_equal(d.action, EG_RETRY_REFRESH);
    eg_error_set(e, EG_S_CODE, "missing_api_key");
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_STOP);
    eg_error_free(e);
}

static void test_full_jitter_backoff_bounds(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    p.max_attempts = 10;
    uint64_t ceil[] = {1000, 2000, 4000, 8000, 16000, 30000, 30000};
    for (int attempt = 1; attempt <= 7; attempt++) {
        eg_retry_input_t in = input("GET", 503, attempt);
        in.random = UINT64_MAX; /* the top of the range */
        uint64_t hi = 0;
        for (uint64_t r = 0; r < 200000; r += 977) {
            in.random = r * 7919;
            eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
            assert_int_equal(d.action, EG_RETRY_WAIT);
            assert_true(d.delay_ms <= ceil[attempt - 1]);
            if (d.delay_ms > hi) hi = d.delay_ms;
        }
        in.random = ceil[attempt - 1];
        assert_int_equal(eg_retry_decide(&p, NULL, &in).delay_ms, ceil[attempt - 1]);
        assert_true(hi > ceil[attempt - 1] / 2); /* jitter spreads over the range */
    }
}

static void test_retry_after_seconds_and_dates_take_precedence(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_retry_input_t in = input("GET", 429, 1);
    in.random = 12345;
    in.retry_after = "2";
    eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
    assert_int_equal(d.delay_ms, 2000);
    assert_string_equal(d.reason, "Retry-After");
    const char *dates[] = {"Sun, 06 Nov 1994 08:49:47 GMT", "Sunday, 06-Nov-94 08:49:47 GMT",
                           "Sun Nov  6 08:49:47 1994"};
    for (int i = 0; i < 3; i++) {
        in.retry_after = dates[i];
        d = eg_retry_decide(&p, NULL, &in);
        if (d.delay_ms != 10000)
            fail_msg("'%s' gave %llu ms", dates[i], (unsigned long long)d.delay_ms);
    }
    in.retry_after = "Sun, 06 Nov 1994 08:00:00 GMT"; /* in the past: no wait */
    assert_int_equal(eg_retry_decide(&p, NULL, &in).delay_ms, 0);
    in.retry_after = "soon"; /* invalid: backoff */
    d = eg_retry_decide(&p, NULL, &in);
    assert_string_equal(d.reason, "backoff");
    in.retry_after = "3600"; /* over the ceiling: stop */
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_STOP);
}

static void test_http_dates_strictly(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(eg_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29, &t), EG_OK);
    assert_int_equal(t, 784111777);
    assert_int_equal(eg_http_date_parse("Thu, 01 Jan 1970 00:00:00 GMT", 29, &t), EG_OK);
    assert_int_equal(t, 0);
    const char *bad[] = {"Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
                         "1994-11-06T08:49:37Z",          "",
                         "Sun Nov  6 08:49:37 94"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (eg_http_date_parse(bad[i], strlen(bad[i]), &t) == EG_OK)
            fail_msg("accepted '%s'", bad[i]);
    uint64_t ms;
    assert_int_equal(eg_retry_after_parse(" 120 ", 5, 0, &ms), EG_OK);
    assert_int_equal(ms, 120000);
    assert_int_equal(eg_retry_after_parse("-1", 2, 0, &ms), EG_EINVAL);
}

static void test_body_retry_after_and_ratelimit_reset(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_error_t *e = eg_error_new();
    eg_error_set_retry_after(e, 15);
    eg_retry_input_t in = input("GET", 503, 1);
    in.error = e;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).delay_ms, 15000);
    eg_error_free(e);
    in = input("GET", 429, 1);
    in.ratelimit_reset = "30"; /* seconds from now */
    assert_int_equal(eg_retry_decide(&p, NULL, &in).delay_ms, 30000);
    in.ratelimit_reset = "784111797"; /* Unix time, 20 s ahead */
    assert_int_equal(eg_retry_decide(&p, NULL, &in).delay_ms, 20000);
}

/* A 429 for a used-up quota or balance is final unless the server names a
 * wait; a rate limit's 429 is retried with or without one (issue 27). */
static void test_429_that_waiting_does_not_cure(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_error_t *e = eg_error_new();
    eg_retry_input_t in = input("GET", 429, 1);
    in.error = e;
    const char *final[] = {"credits_depleted", "CREDITS_DEPLETED", "quota_exceeded",
                           "QUOTA_EXCEEDED"};
    for (size_t i = 0; i < sizeof(final) / sizeof(final[0]); i++) {
        eg_error_set(e, EG_S_CODE, final[i]);
        eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
        if (d.action != EG_RETRY_STOP) fail_msg("429 %s retried (%s)", final[i], d.reason);
        assert_string_equal(d.reason,
                            "waiting will not help: the quota or the credits are used up");
    }
    /* a wait the server names is honoured: the quota resets in 30 s */
    eg_error_set(e, EG_S_CODE, "quota_exceeded");
    in.retry_after = "30";
    eg_retry_decision_t d = eg_retry_decide(&p, NULL, &in);
    assert_int_equal(d.action, EG_RETRY_WAIT);
    assert_int_equal(d.delay_ms, 30000);
    in.retry_after = "soon"; /* not a wait */
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_STOP);
    in.retry_after = NULL;
    eg_error_set_retry_after(e, 12); /* retry_after in the body */
    d = eg_retry_decide(&p, NULL, &in);
    assert_int_equal(d.action, EG_RETRY_WAIT);
    assert_int_equal(d.delay_ms, 12000);
    eg_error_free(e);
    /* rate limits and concurrency limits pass with time: retried with backoff */
    const char *waitable[] = {"rate_limit_exceeded", "concurrent_limit"};
    for (size_t i = 0; i < sizeof(waitable) / sizeof(waitable[0]); i++) {
        e = eg_error_new();
        eg_error_set(e, EG_S_CODE, waitable[i]);
        in = input("GET", 429, 1);
        in.error = e;
        in.random = 7;
        d = eg_retry_decide(&p, NULL, &in);
        if (d.action != EG_RETRY_WAIT) fail_msg("429 %s not retried (%s)", waitable[i], d.reason);
        eg_error_free(e);
    }
    /* the code matters only on a 429: a 503 credits_depleted (odd) is retried */
    e = eg_error_new();
    eg_error_set(e, EG_S_CODE, "credits_depleted");
    in = input("GET", 503, 1);
    in.error = e;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
    /* a policy without the list retries them as any 429 */
    p.no_wait_codes = NULL;
    in.status = 429;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
    eg_error_free(e);
}

static void test_writes_need_an_idempotency_key(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_retry_input_t in = input("POST", 503, 1);
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_STOP);
    in.has_idempotency_key = 1;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
    in = input("PATCH", 0, 1);
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_STOP);
    in = input("PUT", 0, 1);
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
}

static void test_attempts_deadline_and_budget(void **state)
{
    (void)state;
    eg_retry_policy_t p;
    eg_retry_policy_default(&p);
    eg_retry_input_t in = input("GET", 503, 3);
    assert_string_equal(eg_retry_decide(&p, NULL, &in).reason, "attempts exhausted");
    p.deadline_ms = 5000;
    in = input("GET", 503, 1);
    in.retry_after = "2";
    in.elapsed_ms = 2500;
    assert_int_equal(eg_retry_decide(&p, NULL, &in).action, EG_RETRY_WAIT);
    in.elapsed_ms = 3500;
    assert_string_equal(eg_retry_decide(&p, NULL, &in).reason, "deadline reached");
    p.deadline_ms = 0;
    eg_retry_budget_t b;
    eg_retry_budget_init(&b, 12);
    in = input("GET", 503, 1);
    assert_int_equal(eg_retry_decide(&p, &b, &in).action, EG_RETRY_WAIT); /* 12 -> 7 */
    assert_int_equal(eg_retry_decide(&p, &b, &in).action, EG_RETRY_WAIT); /* 7 -> 2 */
    assert_string_equal(eg_retry_decide(&p, &b, &in).reason, "retry budget exhausted");
    for (int i = 0; i < 3; i++)
        eg_retry_budget_success(&b); /* 2 -> 5 */
    assert_int_equal(eg_retry_decide(&p, &b, &in).action, EG_RETRY_WAIT);
    in.timed_out = 1;
    in.status = 0;
    eg_retry_budget_init(&b, 9);
    assert_string_equal(eg_retry_decide(&p, &b, &in).reason,
                        "retry budget exhausted"); /* costs 10 */
    for (int i = 0; i < 100; i++)
        eg_retry_budget_success(&b);
    assert_int_equal(b.tokens, 9); /* never above capacity */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_retryable_statuses_and_transport_failures),
        cmocka_unit_test(test_409_in_progress_and_401_refresh),
        cmocka_unit_test(test_full_jitter_backoff_bounds),
        cmocka_unit_test(test_retry_after_seconds_and_dates_take_precedence),
        cmocka_unit_test(test_http_dates_strictly),
        cmocka_unit_test(test_body_retry_after_and_ratelimit_reset),
        cmocka_unit_test(test_429_that_waiting_does_not_cure),
        cmocka_unit_test(test_writes_need_an_idempotency_key),
        cmocka_unit_test(test_attempts_deadline_and_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

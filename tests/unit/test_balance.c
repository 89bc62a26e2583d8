/* test_balance.c - the server pick of each balancing policy: round robin
 * turns, weighted shares, least_conn's choice, and consistent hashing's
 * stability (the same key, the same server; one server out moves only its
 * own keys). */
#include "testutil.h"

#include "errgate/balance.h"

static void servers(eg_balance_server_t *s, size_t n)
{
    memset(s, 0, n * sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "127.0.0.1:%zu", 9000 + i);
        s[i].id = eg_balance_hash(addr, strlen(addr));
        s[i].weight = 1;
        s[i].usable = 1;
    }
}

static size_t pick(eg_balance_t p, const eg_balance_server_t *s, size_t n, uint64_t cursor,
                   uint64_t key)
{
    size_t out = 999;
    assert_int_equal(eg_balance_pick(p, s, n, cursor, key, &out), EG_OK);
    assert_true(out < n);
    return out;
}

static void test_round_robin_turns_and_skips(void **state)
{
    (void)state;
    eg_balance_server_t s[3];
    servers(s, 3);
    for (uint64_t c = 0; c < 6; c++)
        assert_int_equal(pick(EG_BALANCE_ROUND_ROBIN, s, 3, c, 0), c % 3);
    s[1].usable = 0;
    size_t counts[3] = {0};
    for (uint64_t c = 0; c < 300; c++)
        counts[pick(EG_BALANCE_ROUND_ROBIN, s, 3, c, 0)]++;
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[0] + counts[2], 300);
    s[0].usable = s[2].usable = 0;
    size_t out = 7;
    assert_int_equal(eg_balance_pick(EG_BALANCE_ROUND_ROBIN, s, 3, 0, 0, &out), EG_ENOENT);
    assert_int_equal(out, 7); /* untouched on failure */
}

static void test_weighted_shares(void **state)
{
    (void)state;
    eg_balance_server_t s[3];
    servers(s, 3);
    s[0].weight = 3;
    s[1].weight = 1;
    s[2].weight = 6;
    size_t counts[3] = {0};
    uint64_t start = 12345; /* any window of consecutive picks */
    for (uint64_t c = start; c < start + 1000; c++)
        counts[pick(EG_BALANCE_WEIGHTED, s, 3, c, 0)]++;
    /* 1000 picks over a total weight of 10: each share exact to within one round */
    assert_true(labs((long)counts[0] - 300) <= 3);
    assert_true(labs((long)counts[1] - 100) <= 1);
    assert_true(labs((long)counts[2] - 600) <= 6);
    /* a server out: the others keep their ratio between them (3:6) */
    s[1].usable = 0;
    memset(counts, 0, sizeof(counts));
    for (uint64_t c = 0; c < 900; c++)
        counts[pick(EG_BALANCE_WEIGHTED, s, 3, c, 0)]++;
    assert_int_equal(counts[1], 0);
    assert_int_equal(counts[0], 300);
    assert_int_equal(counts[2], 600);
}

static void test_least_conn_picks_least_loaded(void **state)
{
    (void)state;
    eg_balance_server_t s[3];
    servers(s, 3);
    s[0].load = 5;
    s[1].load = 2;
    s[2].load = 7;
    for (uint64_t c = 0; c < 10; c++)
        assert_int_equal(pick(EG_BALANCE_LEAST_CONN, s, 3, c, 0), 1);
    s[1].usable = 0; /* the least loaded is down: the next least */
    assert_int_equal(pick(EG_BALANCE_LEAST_CONN, s, 3, 0, 0), 0);
    /* per unit of weight: 6 in flight over weight 3 (2 each) beats 3 over weight 1 */
    s[1].usable = 1;
    s[0].load = 6;
    s[0].weight = 3;
    s[1].load = 3;
    assert_int_equal(pick(EG_BALANCE_LEAST_CONN, s, 3, 0, 0), 0);
    /* ties share the work: equal loads go round the servers */
    servers(s, 3);
    size_t counts[3] = {0};
    for (uint64_t c = 0; c < 30; c++)
        counts[pick(EG_BALANCE_LEAST_CONN, s, 3, c, 0)]++;
    assert_int_equal(counts[0], 10);
    assert_int_equal(counts[1], 10);
    assert_int_equal(counts[2], 10);
}

#define NKEYS 10000

/* |got - n p| < k standard deviations of a binomial(n, p), squared to need no libm */
static int within_sd(size_t got, size_t n, double p, double k)
{
    double d = (double)got - (double)n * p;
    return d * d < k * k * (double)n * p * (1 - p);
}

static uint64_t key_of(int i)
{
    char k[32];
    snprintf(k, sizeof(k), "client-%d", i);
    return eg_balance_hash(k, strlen(k));
}

static void test_hash_is_stable_and_moves_only_the_lost_keys(void **state)
{
    (void)state;
    eg_balance_server_t s[4];
    servers(s, 4);
    static size_t before[NKEYS];
    size_t counts[4] = {0};
    for (int i = 0; i < NKEYS; i++) {
        before[i] = pick(EG_BALANCE_HASH, s, 4, (uint64_t)i, key_of(i));
        counts[before[i]]++;
        /* the same key, the same server, whatever the cursor */
        assert_int_equal(pick(EG_BALANCE_HASH, s, 4, (uint64_t)i * 7 + 3, key_of(i)), before[i]);
    }
    /* spread: each server near a quarter, within 5 standard deviations */
    for (int k = 0; k < 4; k++)
        assert_true(within_sd(counts[k], NKEYS, 0.25, 5));
    /* server 2 out: its keys move, every other key stays */
    s[2].usable = 0;
    size_t moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        size_t now = pick(EG_BALANCE_HASH, s, 4, 0, key_of(i));
        assert_int_not_equal(now, 2);
        if (before[i] != 2)
            assert_int_equal(now, before[i]);
        else
            moved++;
    }
    assert_int_equal(moved, counts[2]);
    /* back in: every key returns to where it was */
    s[2].usable = 1;
    for (int i = 0; i < NKEYS; i++)
        assert_int_equal(pick(EG_BALANCE_HASH, s, 4, 0, key_of(i)), before[i]);
    /* the order of the servers does not matter (ids, not indexes) */
    eg_balance_server_t r[4] = {s[3], s[2], s[1], s[0]};
    for (int i = 0; i < NKEYS; i++)
        assert_int_equal(pick(EG_BALANCE_HASH, r, 4, 0, key_of(i)), 3 - before[i]);
}

static void test_hash_weights(void **state)
{
    (void)state;
    eg_balance_server_t s[2];
    servers(s, 2);
    s[0].weight = 3;
    size_t counts[2] = {0};
    for (int i = 0; i < NKEYS; i++)
        counts[pick(EG_BALANCE_HASH, s, 2, 0, key_of(i))]++;
    assert_true(within_sd(counts[0], NKEYS, 0.75, 5));
}

static void test_parse_names(void **state)
{
    (void)state;
    eg_balance_t p;
    assert_int_equal(eg_balance_parse("least_conn", &p), EG_OK);
    assert_int_equal(p, EG_BALANCE_LEAST_CONN);
    assert_int_equal(eg_balance_parse("hash", &p), EG_OK);
    assert_int_equal(p, EG_BALANCE_HASH);
    assert_int_equal(eg_balance_parse("random", &p), EG_EINVAL);
    assert_string_equal(eg_balance_name(EG_BALANCE_WEIGHTED), "weighted");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_robin_turns_and_skips),
        cmocka_unit_test(test_weighted_shares),
        cmocka_unit_test(test_least_conn_picks_least_loaded),
        cmocka_unit_test(test_hash_is_stable_and_moves_only_the_lost_keys),
        cmocka_unit_test(test_hash_weights),
        cmocka_unit_test(test_parse_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* test_usage.c - usage totals (src/metering/usage.c): events with the same
 * key are one row, a commit adds to what the file holds, close commits
 * what is left, the uncommitted bound holds, queries group by day and
 * route, and dates parse (or are refused) as the usage API needs. */
#include "testutil.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errgate/common.h"
#include "store.h"
#include "usage.h"

#define T0 1796601600 /* 2026-12-07T00:00:00Z */

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof(path), "/tmp/eg_usage_%d.db", (int)getpid());
    unlink(path);
    char err[256];
    eg_store_t *s = NULL;
    /* the store makes the file and the tables (migration 3) */
    assert_int_equal(eg_store_open(EG_STORE_SQLITE, path, 2000, &s, err, sizeof(err)), EG_OK);
    eg_store_close(s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[80];
    unlink(path);
    snprintf(p, sizeof(p), "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", path);
    unlink(p);
    return 0;
}

static eg_usage_t *open_usage(size_t max_uncommitted)
{
    char err[256];
    eg_usage_t *u = NULL;
    /* commits only when asked (sync) or at close: an interval of 10s */
    eg_usage_opts_t o = {path, 2000, 100000, 10000, max_uncommitted};
    assert_int_equal(eg_usage_open(&o, &u, err, sizeof(err)), EG_OK);
    return u;
}

static void rec(eg_usage_t *u, const char *subject, const char *route, int sc, double q, int64_t ts)
{
    eg_usage_event_t ev = {subject, "api.request", route, sc, q, ts, 10, 100};
    assert_int_equal(eg_usage_record(u, &ev, 0), EG_OK);
}

static long long count_rows(void)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM usage", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void query(const char *subject, eg_usage_group_t g, eg_usage_row_t **rows, size_t *n)
{
    char err[256];
    eg_usage_query_t q = {subject, T0, T0 + 2 * 86400, g};
    assert_int_equal(eg_usage_query(path, 2000, &q, rows, n, err, sizeof(err)), EG_OK);
}

static void test_batch_aggregates_and_adds(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(0);
    for (int i = 0; i < 3; i++)
        rec(u, "k:a", "/v1/x", 2, 1, T0 + 10 + i);
    rec(u, "k:a", "/v1/x", 4, 1, T0 + 20);          /* another status class */
    rec(u, "k:a", "/v1/x", 2, 2.5, T0 + 86400 + 5); /* the next day */
    rec(u, "k:b", "/v1/y", 2, 1, T0 + 30);
    assert_int_equal(eg_usage_held(u), 6);
    assert_int_equal(eg_usage_sync(u, 5000), EG_OK);
    assert_int_equal(eg_usage_held(u), 0);
    /* three events with one key: one row */
    assert_int_equal(count_rows(), 4);
    /* a second batch adds to the rows */
    rec(u, "k:a", "/v1/x", 2, 1, T0 + 40);
    assert_int_equal(eg_usage_sync(u, 5000), EG_OK);
    assert_int_equal(count_rows(), 4);
    eg_usage_close(u);

    eg_usage_row_t *rows;
    size_t n;
    query("k:a", EG_USAGE_GROUP_NONE, &rows, &n);
    assert_int_equal(n, 2); /* status classes 2 and 4 */
    assert_string_equal(rows[0].subject, "k:a");
    assert_string_equal(rows[0].event_type, "api.request");
    assert_string_equal(rows[0].group, "");
    assert_int_equal(rows[0].status_class, 2);
    assert_int_equal(rows[0].events, 5);
    assert_true(rows[0].quantity > 6.49 && rows[0].quantity < 6.51); /* 3 + 2.5 + 1 */
    assert_int_equal(rows[0].bytes_in, 50);
    assert_int_equal(rows[0].bytes_out, 500);
    assert_int_equal(rows[1].status_class, 4);
    assert_int_equal(rows[1].events, 1);
    eg_usage_rows_free(rows, n);

    query("k:a", EG_USAGE_GROUP_DAY, &rows, &n);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].group, "2026-12-07");
    assert_int_equal(rows[0].status_class, 2);
    assert_int_equal(rows[0].events, 4);
    assert_string_equal(rows[1].group, "2026-12-07");
    assert_int_equal(rows[1].status_class, 4);
    assert_string_equal(rows[2].group, "2026-12-08");
    assert_int_equal(rows[2].events, 1);
    eg_usage_rows_free(rows, n);

    query(NULL, EG_USAGE_GROUP_ROUTE, &rows, &n);
    assert_int_equal(n, 3);
    assert_string_equal(rows[2].subject, "k:b");
    assert_string_equal(rows[2].group, "/v1/y");
    eg_usage_rows_free(rows, n);

    /* a period that ends before the next day leaves it out */
    char err[256];
    eg_usage_query_t q = {"k:a", T0, T0 + 86400, EG_USAGE_GROUP_NONE};
    assert_int_equal(eg_usage_query(path, 2000, &q, &rows, &n, err, sizeof(err)), EG_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].events, 4);
    eg_usage_rows_free(rows, n);
}

static void test_close_commits_the_rest(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(0);
    for (int i = 0; i < 7; i++)
        rec(u, "u:alice", "/r", 2, 1, T0 + i);
    eg_usage_close(u); /* no sync: the interval is 10s; close commits */
    eg_usage_row_t *rows;
    size_t n;
    query("u:alice", EG_USAGE_GROUP_NONE, &rows, &n);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].events, 7);
    eg_usage_rows_free(rows, n);
}

static void test_uncommitted_bound(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(2);
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_reserve(u), 0); /* two held: the third is refused */
    eg_usage_unreserve(u);                    /* a request not served */
    assert_int_equal(eg_usage_reserve(u), 1);
    eg_usage_event_t ev = {"k:a", "api.request", "/r", 2, 1, T0, 0, 0};
    assert_int_equal(eg_usage_record(u, &ev, 1), EG_OK);
    assert_int_equal(eg_usage_record(u, &ev, 1), EG_OK);
    assert_int_equal(eg_usage_held(u), 2);
    assert_int_equal(eg_usage_reserve(u), 0); /* recorded, not committed: still held */
    assert_int_equal(eg_usage_sync(u, 5000), EG_OK);
    assert_int_equal(eg_usage_held(u), 0);
    assert_int_equal(eg_usage_reserve(u), 1);
    eg_usage_unreserve(u);
    /* a bad event gives its place back */
    assert_int_equal(eg_usage_reserve(u), 1);
    eg_usage_event_t bad = {"k:a", "api.request", "/r", 2, 0, T0, 0, 0};
    assert_int_equal(eg_usage_record(u, &bad, 1), EG_EINVAL);
    assert_int_equal(eg_usage_held(u), 0);
    eg_usage_close(u);
}

/* The served requests' path (a route's precomputed part, the subject by
 * length) adds to the same rows as eg_usage_record: one row per key
 * whichever path and whichever eg_usage_fixed_t (a reload makes new ones
 * with the same strings); another route or event type is another row. */
static void test_fixed_path_same_rows(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(0);
    eg_usage_fixed_t f1, f2, g;
    char route[] = "/v1/x";
    eg_usage_fixed_init(&f1, "api.request", route);
    eg_usage_fixed_init(&f2, "api.request", "/v1/x"); /* same strings, another id */
    eg_usage_fixed_init(&g, "custom.y", route);
    assert_true(f1.id != f2.id && f1.hash == f2.hash);
    const char *subj = "ip:10.0.0.1xxxx"; /* the subject is its first 11 bytes */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(eg_usage_reserve(u), 1);
        assert_int_equal(eg_usage_record_fixed(u, i == 1 ? &f2 : &f1, subj, 11, 2, 1, T0 + i, 5, 7),
                         EG_OK);
    }
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_record_fixed(u, &g, subj, 11, 2, 2, T0, 0, 0), EG_OK);
    eg_usage_event_t ev = {"ip:10.0.0.1", "api.request", "/v1/x", 2, 1, T0 + 5, 5, 7};
    assert_int_equal(eg_usage_record(u, &ev, 0), EG_OK);
    assert_int_equal(eg_usage_held(u), 5);
    /* a bad quantity gives the place back */
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_record_fixed(u, &f1, subj, 11, 2, 0, T0, 0, 0), EG_EINVAL);
    assert_int_equal(eg_usage_held(u), 5);
    assert_int_equal(eg_usage_sync(u, 5000), EG_OK);
    assert_int_equal(count_rows(), 2);
    eg_usage_close(u);
    eg_usage_row_t *rows;
    size_t n;
    query("ip:10.0.0.1", EG_USAGE_GROUP_ROUTE, &rows, &n);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].event_type, "api.request");
    assert_string_equal(rows[0].group, "/v1/x");
    assert_int_equal(rows[0].events, 4);
    assert_int_equal(rows[0].bytes_in, 20);
    assert_int_equal(rows[0].bytes_out, 28);
    assert_string_equal(rows[1].event_type, "custom.y");
    assert_int_equal(rows[1].events, 1);
    assert_true(rows[1].quantity > 1.99 && rows[1].quantity < 2.01);
    eg_usage_rows_free(rows, n);
}

/* A reload's max_uncommitted applies to the next reservation. */
static void test_retune_bound(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(1);
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_reserve(u), 0);
    eg_usage_retune(u, 100000, 10000, 3);
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_reserve(u), 1);
    assert_int_equal(eg_usage_reserve(u), 0);
    for (int i = 0; i < 3; i++)
        eg_usage_unreserve(u);
    eg_usage_close(u);
}

typedef struct {
    int rows;
    uint64_t events;
    double quantity;
    int64_t ts;
} tap_t;

static void tap(void *ctx, const eg_usage_event_t *ev, uint64_t events)
{
    tap_t *t = ctx;
    t->rows++;
    t->events += events;
    t->quantity += ev->quantity;
    t->ts = ev->ts;
}

static void test_tap_sees_committed_rows(void **state)
{
    (void)state;
    eg_usage_t *u = open_usage(0);
    tap_t t = {0};
    eg_usage_set_tap(u, tap, &t);
    rec(u, "k:a", "/r", 2, 2, T0 + 3700);
    /* the same key in strings at other addresses: the same entry */
    char *subject = strdup("k:a"), *type = strdup("api.request"), *route = strdup("/r");
    eg_usage_event_t ev = {subject, type, route, 2, 3, T0 + 3800, 10, 100};
    assert_int_equal(eg_usage_record(u, &ev, 0), EG_OK);
    free(subject);
    free(type);
    free(route);
    assert_int_equal(eg_usage_sync(u, 5000), EG_OK);
    eg_usage_close(u);
    assert_int_equal(t.rows, 1);
    assert_int_equal(t.events, 2);
    assert_true(t.quantity > 4.99 && t.quantity < 5.01);
    assert_int_equal(t.ts, T0 + 3600); /* the hour */
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(eg_usage_parse_time("2026-12-07", 0, &t), EG_OK);
    assert_int_equal(t, T0);
    assert_int_equal(eg_usage_parse_time("2026-12-07", 1, &t), EG_OK);
    assert_int_equal(t, T0 + 86400); /* to=DATE includes the day */
    assert_int_equal(eg_usage_parse_time("2026-12-07T01:00:00Z", 1, &t), EG_OK);
    assert_int_equal(t, T0 + 3600);
    assert_int_equal(eg_usage_parse_time("2026-02-31", 0, &t), EG_EINVAL);
    assert_int_equal(eg_usage_parse_time("2026-13-01", 0, &t), EG_EINVAL);
    assert_int_equal(eg_usage_parse_time("yesterday", 0, &t), EG_EINVAL);
    assert_int_equal(eg_usage_parse_time("2026-12-07T01:00:00", 0, &t), EG_EINVAL);
    assert_int_equal(eg_usage_parse_time("2026-12-07x", 0, &t), EG_EINVAL);
    assert_int_equal(eg_usage_parse_time("", 0, &t), EG_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_aggregates_and_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_commits_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommitted_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tap_sees_committed_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixed_path_same_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retune_bound, setup, teardown),
        cmocka_unit_test(test_parse_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

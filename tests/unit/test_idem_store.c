/* test_idem_store.c - the idempotency stores (src/idem_store*.c) on a real
 * libuv loop: memory and SQLite with the test's clock, Redis against a
 * redis-server started on a free port (skipped when /usr/bin/redis-server
 * is missing). The same contract runs on every backend: first request,
 * in flight, completed, mismatch, release, ownership, expiry, cancel; then
 * what is each backend's own: concurrent begins (threads, two handles on
 * one SQLite file, two Redis connections) give exactly one RESERVED, the
 * SQLite table survives closing and a process killed with SIGKILL, purges,
 * the memory cap, a Redis that is down or never answers. */
#include "testutil.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "errgate/idempotency.h"
#include "idem_store.h"
#include "idem_store_impl.h"
#include "redis.h"

static char dbpath[256];
static atomic_uint_fast64_t fake_now;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void rm_db(void)
{
    char p[300];
    unlink(dbpath);
    snprintf(p, sizeof(p), "%s-wal", dbpath);
    unlink(p);
    snprintf(p, sizeof(p), "%s-shm", dbpath);
    unlink(p);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof(dbpath), "/tmp/eg_test_idem_store_%d.db", (int)getpid());
    rm_db();
    atomic_store(&fake_now, 1700000000000ULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_db();
    return 0;
}

/* ---- a Redis server of our own */

static pid_t redis_pid;
static int redis_port;

static int redis_ping(int port)
{
    struct timeval tv = {0, 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r) freeReplyObject(r);
    }
    if (c) redisFree(c);
    return ok;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* 1 when a server answers PONG (within 10 s of its start). */
static int start_redis(void)
{
    if (redis_pid) return 1;
    if (access("/usr/bin/redis-server", X_OK) != 0) return 0;
    redis_port = free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", redis_port);
    redis_pid = fork();
    assert_true(redis_pid >= 0);
    if (redis_pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end;) {
        if (redis_ping(redis_port)) return 1;
        int st;
        if (waitpid(redis_pid, &st, WNOHANG) == redis_pid) fail_msg("redis-server exited");
        usleep(20000); /* polling for readiness, not a wait for a state */
    }
    fail_msg("redis-server on port %d never answered PING", redis_port);
    return 0;
}

static void stop_redis(void)
{
    if (!redis_pid) return;
    kill(redis_pid, SIGTERM);
    waitpid(redis_pid, NULL, 0);
    redis_pid = 0;
}

/* ---- a loop and a store */

typedef struct {
    eg_idem_backend_t backend;
    eg_idem_store_t *s;
    uv_loop_t loop;
    eg_redis_t *redis;
    uv_timer_t guard; /* keeps UV_RUN_ONCE from blocking past a deadline */
    int fake;         /* the store's clock is fake_now */
} fx_t;

typedef struct {
    int called;
    eg_idem_state_t state;
    unsigned char rec[4096];
    size_t len;
    uint64_t retry;
    char why[200];
} answer_t;

static void on_answer(void *arg, const eg_idem_result_t *r)
{
    answer_t *a = arg;
    a->called++;
    a->state = r->state;
    a->retry = r->retry_after_ms;
    a->len = r->len;
    if (r->len) {
        assert_true(r->len <= sizeof(a->rec));
        memcpy(a->rec, r->record, r->len);
    }
    snprintf(a->why, sizeof(a->why), "%s", r->why ? r->why : "");
}

static void guard_tick(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag is nonzero or ms pass; 1 when it became so. */
static int run_until(fx_t *fx, const int *flag, uint64_t ms)
{
    uv_timer_start(&fx->guard, guard_tick, 20, 20);
    uint64_t end = mono_ms() + ms;
    while (!*flag && mono_ms() < end)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->guard);
    return *flag != 0;
}

static eg_idem_io_t io_of(fx_t *fx)
{
    eg_idem_io_t io = {&fx->loop, fx->redis};
    return io;
}

static eg_idem_state_t begin_wait(fx_t *fx, eg_idem_req_t *req, uint64_t lock_ms, answer_t *a)
{
    memset(a, 0, sizeof(*a));
    eg_idem_io_t io = io_of(fx);
    int rc = eg_idem_begin(fx->s, &io, req, lock_ms, on_answer, a, NULL);
    if (rc != EG_OK) fail_msg("begin: %d", rc);
    assert_int_equal(a->called, 0); /* never before begin returns */
    if (!run_until(fx, &a->called, 10000)) fail_msg("no answer within 10 s");
    assert_int_equal(a->called, 1);
    return a->state;
}

/* Lets what was started finish: thread-pool work (memory, sqlite) or, on
 * Redis, every reply due and the releases they send (two round trips on
 * the one connection, which Redis answers in order). */
static void settle(fx_t *fx)
{
    if (fx->backend != EG_IDEM_REDIS) {
        uv_run(&fx->loop, UV_RUN_DEFAULT);
        return;
    }
    for (int i = 0; i < 2; i++) {
        eg_idem_req_t r;
        memset(&r, 0, sizeof(r));
        snprintf(r.key, sizeof(r.key), "settle-%d-%llu", i, (unsigned long long)mono_ms());
        answer_t a;
        assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_RESERVED);
        eg_idem_io_t io = io_of(fx);
        assert_int_equal(eg_idem_release(fx->s, &io, &r), EG_OK);
    }
}

static void fx_open(fx_t *fx, eg_idem_backend_t b, size_t max_bytes)
{
    memset(fx, 0, sizeof(*fx));
    fx->backend = b;
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->guard);
    eg_idem_store_opts_t o = {.backend = b,
                              .path = dbpath,
                              .busy_timeout_ms = 5000,
                              .timeout_ms = 3000,
                              .max_bytes = max_bytes,
                              .purge_every_ms = 1000,
                              .redis_prefix = "egtest:"};
    if (b != EG_IDEM_REDIS) {
        o.clock_ms = fake_clock;
        fx->fake = 1;
    }
    char err[256] = "";
    if (eg_idem_store_open(&o, &fx->s, err, sizeof(err)) != EG_OK) fail_msg("open: %s", err);
    if (b == EG_IDEM_REDIS) {
        assert_int_equal(
            eg_redis_new(&fx->loop, "127.0.0.1", redis_port, 0, NULL, NULL, &fx->redis), 0);
        eg_redis_set_timeout(fx->redis, 3000);
    }
}

static void fx_close(fx_t *fx)
{
    settle(fx);
    if (fx->redis) eg_redis_free(fx->redis);
    uv_close((uv_handle_t *)&fx->guard, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    eg_idem_store_close(fx->s);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static eg_idem_req_t mkreq(const char *key, int fp)
{
    eg_idem_req_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.key, sizeof(r.key), "%s-%llu", key, (unsigned long long)atomic_load(&fake_now));
    memset(r.fp, fp, sizeof(r.fp));
    return r;
}

/* A request named key exactly (no clock suffix), fingerprint bytes fp. */
static eg_idem_req_t req_named(const char *key, int fp)
{
    eg_idem_req_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.key, sizeof(r.key), "%s", key);
    memset(r.fp, fp, sizeof(r.fp));
    return r;
}

/* A record as the stage would store it. */
static size_t mkrecord(unsigned char *buf, size_t cap, int status, const char *body)
{
    eg_http_header_t hs[] = {{"Content-Type", 12, "application/json", 16},
                             {"Location", 8, "/c/9", 4}};
    eg_idem_record_t r = {status, hs, 2, (const unsigned char *)body, strlen(body)};
    size_t len = 0;
    assert_int_equal(eg_idem_record_encode(&r, buf, cap, &len), EG_OK);
    return len;
}

/* ---- the contract, on every backend */

static void contract(fx_t *fx)
{
    eg_idem_io_t io = io_of(fx);
    answer_t a;
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 201, "{\"id\":\"ch_1\"}");

    /* first request: reserved; a retry meanwhile: in flight */
    eg_idem_req_t first = mkreq("k1", 1);
    assert_int_equal(begin_wait(fx, &first, 60000, &a), EG_IDEM_RESERVED);
    eg_idem_req_t retry = first;
    assert_int_equal(begin_wait(fx, &retry, 60000, &a), EG_IDEM_IN_FLIGHT);
    assert_true(a.retry >= 1 && a.retry <= 60000);
    if (fx->fake) assert_int_equal(a.retry, 60000); /* the clock did not move */
    assert_memory_not_equal(retry.owner, first.owner, sizeof(first.owner));
    /* another body with the same key: mismatch, in flight or not */
    eg_idem_req_t other = mkreq("k1", 2);
    assert_int_equal(begin_wait(fx, &other, 60000, &a), EG_IDEM_MISMATCH);

    /* someone else's complete or release does not touch the reservation */
    assert_int_equal(eg_idem_release(fx->s, &io, &retry), EG_OK);
    assert_int_equal(eg_idem_complete(fx->s, &io, &retry, rec, rlen, 60000), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &retry, 60000, &a), EG_IDEM_IN_FLIGHT);

    /* completed: the record, byte for byte */
    assert_int_equal(eg_idem_complete(fx->s, &io, &first, rec, rlen, 60000), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &retry, 60000, &a), EG_IDEM_COMPLETED);
    assert_int_equal(a.len, rlen);
    assert_memory_equal(a.rec, rec, rlen);
    assert_int_equal(begin_wait(fx, &other, 60000, &a), EG_IDEM_MISMATCH);
    /* a second complete (a replayed command) does not replace it */
    unsigned char rec2[256];
    size_t rlen2 = mkrecord(rec2, sizeof(rec2), 200, "{\"other\":1}");
    assert_int_equal(eg_idem_complete(fx->s, &io, &first, rec2, rlen2, 60000), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &retry, 60000, &a), EG_IDEM_COMPLETED);
    assert_memory_equal(a.rec, rec, rlen);
    /* the stored record decodes */
    eg_http_header_t hs[4];
    eg_idem_record_t d;
    assert_int_equal(eg_idem_record_decode(a.rec, a.len, hs, 4, &d), EG_OK);
    assert_int_equal(d.status, 201);
    assert_memory_equal(d.body, "{\"id\":\"ch_1\"}", d.body_len);

    /* release (a 503 upstream): the key is free again, for any body */
    eg_idem_req_t r2 = mkreq("k2", 3);
    assert_int_equal(begin_wait(fx, &r2, 60000, &a), EG_IDEM_RESERVED);
    assert_int_equal(eg_idem_release(fx->s, &io, &r2), EG_OK);
    settle(fx);
    eg_idem_req_t r2b = mkreq("k2", 4);
    assert_int_equal(begin_wait(fx, &r2b, 60000, &a), EG_IDEM_RESERVED);
    /* the old owner's release after that frees nothing */
    assert_int_equal(eg_idem_release(fx->s, &io, &r2), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &r2b, 60000, &a), EG_IDEM_IN_FLIGHT);

    /* cancel before the answer: no callback, and the reservation goes */
    eg_idem_req_t r3 = mkreq("k3", 5);
    memset(&a, 0, sizeof(a));
    eg_idem_op_t *op = NULL;
    assert_int_equal(eg_idem_begin(fx->s, &io, &r3, 60000, on_answer, &a, &op), EG_OK);
    assert_non_null(op);
    eg_idem_cancel(op);
    settle(fx);
    assert_int_equal(a.called, 0);
    assert_int_equal(begin_wait(fx, &r3, 60000, &a), EG_IDEM_RESERVED);

    /* complete with no entry left (it expired, or was purged): stored */
    eg_idem_req_t r4 = mkreq("k4", 6);
    memset(r4.owner, 0x77, sizeof(r4.owner));
    assert_int_equal(eg_idem_complete(fx->s, &io, &r4, rec, rlen, 60000), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &r4, 60000, &a), EG_IDEM_COMPLETED);
    assert_memory_equal(a.rec, rec, rlen);

    /* arguments refused without a callback */
    eg_idem_req_t bad;
    memset(&bad, 0, sizeof(bad));
    memset(&a, 0, sizeof(a));
    assert_int_equal(eg_idem_begin(fx->s, &io, &bad, 1000, on_answer, &a, NULL), EG_EINVAL);
    assert_int_equal(eg_idem_begin(fx->s, &io, &r4, 0, on_answer, &a, NULL), EG_EINVAL);
    assert_int_equal(eg_idem_complete(fx->s, &io, &r4, rec, 0, 1000), EG_EINVAL);
    settle(fx);
    assert_int_equal(a.called, 0);
}

/* Expiry on the test's clock (memory, sqlite). */
static void expiry(fx_t *fx)
{
    eg_idem_io_t io = io_of(fx);
    answer_t a;
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 201, "{}");
    eg_idem_req_t r = mkreq("exp", 1), late = r;
    assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_RESERVED);
    atomic_fetch_add(&fake_now, 999);
    assert_int_equal(begin_wait(fx, &late, 1000, &a), EG_IDEM_IN_FLIGHT);
    assert_int_equal(a.retry, 1);
    atomic_fetch_add(&fake_now, 1); /* lock_ms after the reservation: free */
    assert_int_equal(begin_wait(fx, &late, 1000, &a), EG_IDEM_RESERVED);
    /* the first owner, back late, neither completes nor releases it */
    assert_int_equal(eg_idem_complete(fx->s, &io, &r, rec, rlen, 5000), EG_OK);
    assert_int_equal(eg_idem_release(fx->s, &io, &r), EG_OK);
    settle(fx);
    assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_IN_FLIGHT);
    /* the new owner's response lives ttl_ms */
    assert_int_equal(eg_idem_complete(fx->s, &io, &late, rec, rlen, 5000), EG_OK);
    settle(fx);
    atomic_fetch_add(&fake_now, 4999);
    assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_COMPLETED);
    atomic_fetch_add(&fake_now, 1);
    eg_idem_req_t again = mkreq("exp", 9);
    memcpy(again.key, r.key, sizeof(r.key));
    assert_int_equal(begin_wait(fx, &again, 1000, &a), EG_IDEM_RESERVED); /* even another body */
    settle(fx);
}

/* Purges: expired entries go, live ones stay; one in the background every
 * purge_every_ms (1 s here). */
static void purge(fx_t *fx)
{
    eg_idem_io_t io = io_of(fx);
    answer_t a;
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 200, "{}");
    size_t n = 99;
    settle(fx);
    atomic_fetch_add(&fake_now, 100000); /* what earlier parts left is expired */
    assert_int_equal(eg_idem_purge(fx->s, NULL), EG_OK);
    char name[16];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        eg_idem_req_t r = mkreq(name, 1);
        assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_RESERVED);
    }
    eg_idem_req_t keep = mkreq("keep", 1);
    assert_int_equal(begin_wait(fx, &keep, 1000, &a), EG_IDEM_RESERVED);
    assert_int_equal(eg_idem_complete(fx->s, &io, &keep, rec, rlen, 10000), EG_OK);
    settle(fx);
    assert_int_equal(eg_idem_purge(fx->s, &n), EG_OK);
    assert_int_equal(n, 0);
    atomic_fetch_add(&fake_now, 2000);
    assert_int_equal(eg_idem_purge(fx->s, &n), EG_OK);
    assert_int_equal(n, 3);
    assert_int_equal(begin_wait(fx, &keep, 1000, &a), EG_IDEM_COMPLETED);
    /* in the background: a begin past purge_every_ms starts one */
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "q%d", i);
        eg_idem_req_t r = mkreq(name, 1);
        assert_int_equal(begin_wait(fx, &r, 1000, &a), EG_IDEM_RESERVED);
    }
    atomic_fetch_add(&fake_now, 2000);
    eg_idem_req_t trigger = mkreq("trigger", 1);
    assert_int_equal(begin_wait(fx, &trigger, 60000, &a), EG_IDEM_RESERVED);
    settle(fx);
    assert_int_equal(eg_idem_purge(fx->s, &n), EG_OK);
    assert_int_equal(n, 0);
    assert_int_equal(eg_idem_store_failures(fx->s), 0);
}

static void test_memory_contract(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    assert_string_equal(eg_idem_store_backend_name(fx.s), "memory");
    contract(&fx);
    expiry(&fx);
    purge(&fx);
    fx_close(&fx);
}

static void test_sqlite_contract(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_SQLITE, 0);
    assert_string_equal(eg_idem_store_backend_name(fx.s), "sqlite");
    struct stat st;
    assert_int_equal(stat(dbpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    contract(&fx);
    expiry(&fx);
    purge(&fx);
    fx_close(&fx);
}

/* ---- eg_idem_begin_now: the memory store decides at once, the others say
 * EG_EAGAIN; the answers are eg_idem_begin's */

static void test_begin_now(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    eg_idem_io_t io = io_of(&fx);
    eg_idem_req_t first = mkreq("now", 1), again = first, other = mkreq("now", 2);
    eg_idem_result_t res;
    unsigned char *rec = NULL;
    assert_int_equal(eg_idem_begin_now(fx.s, &first, 60000, &res, &rec), EG_OK);
    assert_int_equal(res.state, EG_IDEM_RESERVED);
    assert_null(rec);
    assert_int_equal(eg_idem_begin_now(fx.s, &again, 60000, &res, &rec), EG_OK);
    assert_int_equal(res.state, EG_IDEM_IN_FLIGHT);
    assert_true(res.retry_after_ms >= 1 && res.retry_after_ms <= 60000);
    assert_int_equal(eg_idem_begin_now(fx.s, &other, 60000, &res, &rec), EG_OK);
    assert_int_equal(res.state, EG_IDEM_MISMATCH);
    unsigned char buf[512];
    size_t len = mkrecord(buf, sizeof(buf), 201, "{\"id\":9}");
    assert_int_equal(eg_idem_complete(fx.s, &io, &first, buf, len, 60000), EG_OK);
    assert_int_equal(eg_idem_begin_now(fx.s, &again, 60000, &res, &rec), EG_OK);
    assert_int_equal(res.state, EG_IDEM_COMPLETED);
    assert_non_null(rec);
    assert_true(res.record == rec && res.len == len && memcmp(rec, buf, len) == 0);
    free(rec);
    fx_close(&fx);
    fx_open(&fx, EG_IDEM_SQLITE, 0);
    eg_idem_req_t q = mkreq("now-sq", 1);
    assert_int_equal(eg_idem_begin_now(fx.s, &q, 60000, &res, &rec), EG_EAGAIN);
    fx_close(&fx);
}

/* ---- memory: the cap */

/* ---- memory: the map against a model

 * Thousands of begins, completes and releases on keys made to collide
 * (many share their home slot, so probe runs are long and removals shift
 * entries back), with the clock moving on: after every step the store
 * answers what a plain list of entries says it must. */
typedef struct {
    char key[EG_IDEM_SCOPED_LEN + 1];
    int state; /* 0 none, 1 in flight, 2 completed */
    uint64_t expires;
    unsigned char fp;
    eg_idem_req_t req; /* with the owner of the reservation */
} model_t;

static void test_memory_map_model(void **state)
{
    (void)state;
    enum { NKEYS = 600, STEPS = 30000 };
    static model_t m[NKEYS];
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    eg_idem_io_t io = io_of(&fx);
    unsigned seed = 12345;
    for (int i = 0; i < NKEYS; i++) {
        /* hex keys: their first 16 digits are the hash; two thirds share home slot 0 */
        unsigned long long h =
            i % 3 ? (unsigned long long)i << 20 : (unsigned long long)i * 2654435761u;
        snprintf(m[i].key, sizeof(m[i].key), "%016llx%048d", h, i);
        m[i].state = 0;
    }
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 201, "{}");
    for (int step = 0; step < STEPS; step++) {
        uint64_t now = atomic_load(&fake_now);
        model_t *k = &m[rand_r(&seed) % NKEYS];
        int live = k->state && k->expires > now;
        int op = rand_r(&seed) % 10;
        if (op < 6) { /* begin */
            eg_idem_req_t req;
            memset(&req, 0, sizeof(req));
            memcpy(req.key, k->key, sizeof(req.key));
            unsigned char fp = (unsigned char)(1 + rand_r(&seed) % 2);
            memset(req.fp, fp, sizeof(req.fp));
            uint64_t lock = 1 + (uint64_t)(rand_r(&seed) % 400);
            eg_idem_result_t res;
            unsigned char *r = NULL;
            assert_int_equal(eg_idem_begin_now(fx.s, &req, lock, &res, &r), EG_OK);
            eg_idem_state_t want = !live           ? EG_IDEM_RESERVED
                                   : k->fp != fp   ? EG_IDEM_MISMATCH
                                   : k->state == 1 ? EG_IDEM_IN_FLIGHT
                                                   : EG_IDEM_COMPLETED;
            if (res.state != want)
                fail_msg("step %d key %s: state %d, want %d", step, k->key, res.state, want);
            if (want == EG_IDEM_RESERVED) {
                k->state = 1;
                k->expires = now + lock;
                k->fp = fp;
                k->req = req;
            } else if (want == EG_IDEM_IN_FLIGHT) {
                assert_int_equal(res.retry_after_ms, k->expires - now);
            } else if (want == EG_IDEM_COMPLETED) {
                assert_true(res.len == rlen && memcmp(r, rec, rlen) == 0);
            }
            free(r);
        } else if (op < 8) { /* complete the last reservation made on the key */
            if (!k->req.key[0]) continue;
            assert_int_equal(eg_idem_complete(fx.s, &io, &k->req, rec, rlen, 300), EG_OK);
            int mine = live && k->state == 1; /* the live reservation is always k->req's */
            if (!live || mine) {
                k->state = 2;
                k->expires = now + 300;
                k->fp = k->req.fp[0];
            }
            memset(k->req.owner, 0, sizeof(k->req.owner)); /* never again */
        } else if (op < 9) {                               /* release it */
            if (!k->req.key[0]) continue;
            assert_int_equal(eg_idem_release(fx.s, &io, &k->req), EG_OK);
            if (live && k->state == 1) k->state = 0;
            memset(k->req.owner, 0, sizeof(k->req.owner));
        } else {
            atomic_fetch_add(&fake_now, (uint64_t)(rand_r(&seed) % 60));
        }
    }
    fx_close(&fx);
}

/* The memory store named by scope bytes (what the gateway's stage gives
 * it): the bytes are compared whole, so another principal's scope, or a
 * prefix of one, is another entry; a key-named entry is yet another. A
 * store that needs a key (sqlite, redis) refuses a scope. */
static void test_memory_scope(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    eg_idem_io_t io = io_of(&fx);
    answer_t a;
    unsigned char sa[128], sb[128], rec[256];
    size_t na = 0, nb = 0, rlen = mkrecord(rec, sizeof(rec), 201, "{\"id\":\"ch_1\"}");
    assert_int_equal(
        eg_idem_scope_bytes("k:a", 3, "/r/", 3, "POST", 4, "key1", 4, sa, sizeof(sa), &na), EG_OK);
    assert_int_equal(
        eg_idem_scope_bytes("k:b", 3, "/r/", 3, "POST", 4, "key1", 4, sb, sizeof(sb), &nb), EG_OK);
    eg_idem_req_t ra = mkreq("unused", 1), rb = ra, rp = ra, rk = mkreq("key1", 1);
    ra.key[0] = rb.key[0] = rp.key[0] = '\0';
    ra.scope = sa;
    ra.scope_len = na;
    rb.scope = sb;
    rb.scope_len = nb;
    rp.scope = sa;
    rp.scope_len = na - 1; /* a prefix of a's scope */
    eg_idem_req_t ra2 = ra;
    assert_int_equal(begin_wait(&fx, &ra, 60000, &a), EG_IDEM_RESERVED);
    assert_int_equal(begin_wait(&fx, &ra2, 60000, &a), EG_IDEM_IN_FLIGHT);
    assert_int_equal(begin_wait(&fx, &rb, 60000, &a), EG_IDEM_RESERVED);
    assert_int_equal(begin_wait(&fx, &rp, 60000, &a), EG_IDEM_RESERVED);
    assert_int_equal(begin_wait(&fx, &rk, 60000, &a), EG_IDEM_RESERVED);
    /* a's response is a's alone */
    assert_int_equal(eg_idem_complete(fx.s, &io, &ra, rec, rlen, 60000), EG_OK);
    ra2 = ra;
    assert_int_equal(begin_wait(&fx, &ra2, 60000, &a), EG_IDEM_COMPLETED);
    assert_int_equal(a.len, rlen);
    eg_idem_req_t rb2 = rb;
    assert_int_equal(begin_wait(&fx, &rb2, 60000, &a), EG_IDEM_IN_FLIGHT);
    /* the same scope in another buffer names the same entry */
    unsigned char copy[128];
    memcpy(copy, sa, na);
    eg_idem_req_t rc = ra;
    rc.scope = copy;
    assert_int_equal(begin_wait(&fx, &rc, 60000, &a), EG_IDEM_COMPLETED);
    assert_true(eg_idem_store_takes_scope(fx.s));
    fx_close(&fx);

    fx_open(&fx, EG_IDEM_SQLITE, 0);
    io = io_of(&fx);
    assert_false(eg_idem_store_takes_scope(fx.s));
    memset(&a, 0, sizeof(a));
    eg_idem_req_t rs = ra;
    assert_int_equal(eg_idem_begin(fx.s, &io, &rs, 1000, on_answer, &a, NULL), EG_EINVAL);
    fx_close(&fx);
}

static void test_memory_cap(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 2000);
    eg_idem_io_t io = io_of(&fx);
    answer_t a;
    int n = 0, rc = EG_OK;
    eg_idem_req_t r;
    char name[16];
    while (n < 100) {
        snprintf(name, sizeof(name), "cap%d", n);
        r = mkreq(name, 1);
        memset(&a, 0, sizeof(a));
        if ((rc = eg_idem_begin(fx.s, &io, &r, 1000, on_answer, &a, NULL)) != EG_OK) break;
        assert_true(run_until(&fx, &a.called, 10000));
        assert_int_equal(a.state, EG_IDEM_RESERVED);
        n++;
    }
    assert_int_equal(rc, EG_ETOOBIG);
    assert_true(n >= 2 && n < 100);
    assert_int_equal(a.called, 0); /* refused: no callback */
    /* expired entries make room again (a full sweep, at most once a second) */
    atomic_fetch_add(&fake_now, 2000);
    eg_idem_req_t big = mkreq("big", 1), big2 = big;
    assert_int_equal(begin_wait(&fx, &big, 1000, &a), EG_IDEM_RESERVED);
    /* a record too big for the cap is not kept, and frees the key */
    unsigned char rec[4096];
    memset(rec, 'x', sizeof(rec));
    assert_int_equal(eg_idem_complete(fx.s, &io, &big, rec, sizeof(rec), 60000), EG_ETOOBIG);
    assert_int_equal(begin_wait(&fx, &big2, 1000, &a), EG_IDEM_RESERVED);
    assert_int_equal(eg_idem_release(fx.s, &io, &big2), EG_OK);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "again%d", i);
        eg_idem_req_t x = mkreq(name, 1);
        assert_int_equal(begin_wait(&fx, &x, 1000, &a), EG_IDEM_RESERVED);
    }
    fx_close(&fx);
}

/* Fills a capped memory store with answered keys (begin, then complete:
 * in place once the store knows the record's size) until it refuses; how
 * many fit. */
static int fill_answered(fx_t *fx, const char *prefix, const unsigned char *rec, size_t rlen)
{
    eg_idem_io_t io = io_of(fx);
    answer_t a;
    char name[32];
    for (int n = 0; n < 1000; n++) {
        snprintf(name, sizeof(name), "%s%d", prefix, n);
        eg_idem_req_t r = mkreq(name, 1);
        eg_idem_result_t res;
        unsigned char *got = NULL;
        int rc = eg_idem_begin_now(fx->s, &r, 1000, &res, &got);
        if (rc == EG_ETOOBIG) return n;
        assert_int_equal(rc, EG_OK);
        assert_int_equal(res.state, EG_IDEM_RESERVED);
        if (eg_idem_complete(fx->s, &io, &r, rec, rlen, 1000) == EG_ETOOBIG) return n;
        eg_idem_req_t again = mkreq(name, 1);
        assert_int_equal(begin_wait(fx, &again, 1000, &a), EG_IDEM_COMPLETED);
        assert_int_equal(a.len, rlen);
    }
    fail_msg("the cap never refused");
    return -1;
}

/* What an answered entry counts against the cap is given back whole when
 * it expires (the cost is kept in its slot: a drift would shrink the
 * store round after round), whether its response was written into its
 * reservation or into an entry of its own. */
static void test_memory_cap_accounting(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 8000);
    unsigned char rec[512];
    size_t rlen = mkrecord(rec, sizeof(rec), 201, "{\"id\":\"ch_1\",\"status\":\"created\"}");
    int first = fill_answered(&fx, "a", rec, rlen); /* the first reservations had no size yet */
    size_t n = 0;
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
    assert_int_equal(n, (size_t)first);
    int second = fill_answered(&fx, "b", rec, rlen);
    assert_true(second >= first && second > 4);
    for (int round = 0; round < 5; round++) {
        atomic_fetch_add(&fake_now, 5000);
        assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
        char prefix[8];
        snprintf(prefix, sizeof(prefix), "r%d-", round);
        assert_int_equal(fill_answered(&fx, prefix, rec, rlen), second);
    }
    /* a larger record than the reservations were made for: its own entry */
    unsigned char big[2048];
    size_t blen = mkrecord(big, sizeof(big), 201,
                           "{\"pad\":"
                           "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                           "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}");
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
    int large = fill_answered(&fx, "big", big, blen);
    assert_true(large > 0 && large < second);
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
    assert_int_equal(n, (size_t)large);
    assert_int_equal(fill_answered(&fx, "big2-", big, blen), large);
    fx_close(&fx);
}

/* ---- memory: entries cut from chunks */

/* Begins key (fresh, so RESERVED) and completes it with rec for ttl. */
static void answered(fx_t *fx, const char *key, const unsigned char *rec, size_t rlen, uint64_t ttl)
{
    eg_idem_io_t io = io_of(fx);
    eg_idem_req_t r = req_named(key, 7);
    eg_idem_result_t res;
    unsigned char *got = NULL;
    assert_int_equal(eg_idem_begin_now(fx->s, &r, 5000, &res, &got), EG_OK);
    if (res.state != EG_IDEM_RESERVED) fail_msg("%s: state %d", key, res.state);
    assert_int_equal(eg_idem_complete(fx->s, &io, &r, rec, rlen, ttl), EG_OK);
}

/* key's stored answer is rec, byte for byte. */
static void replays(fx_t *fx, const char *key, const unsigned char *rec, size_t rlen)
{
    eg_idem_req_t r = req_named(key, 7);
    eg_idem_result_t res;
    unsigned char *got = NULL;
    assert_int_equal(eg_idem_begin_now(fx->s, &r, 5000, &res, &got), EG_OK);
    if (res.state != EG_IDEM_COMPLETED) fail_msg("%s: state %d, want a replay", key, res.state);
    assert_int_equal(res.len, rlen);
    assert_memory_equal(got, rec, rlen);
    free(got);
}

/* Round after round of short-lived answers, each round more than a chunk
 * (2 MiB) of them, expiring between rounds: the chunks they emptied are
 * reused (their number stays bounded, where cutting from new ones would
 * add one a round), and entries that live on in them (a long ttl, a
 * reservation still in flight) are never overwritten by the reuse. A
 * record larger than a chunk takes (64 KiB) is malloc'd and freed. */
static void test_memory_chunks(void **state)
{
    (void)state;
    enum { ROUNDS = 6, PER_ROUND = 9000 };
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    eg_idem_io_t io = io_of(&fx);
    unsigned char keep[512], rec[512], mid[512];
    size_t klen = mkrecord(keep, sizeof(keep), 201, "{\"id\":\"kept-for-a-day\"}"),
           rlen =
               mkrecord(rec, sizeof(rec), 201,
                        "{\"id\":\"ch_1\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"),
           mlen = mkrecord(mid, sizeof(mid), 200, "{\"round\":\"middle\"}");
    answered(&fx, "keep", keep, klen, 86400000);
    size_t chunks = 0, nfree = 0, big = 0, most = 0;
    char key[64];
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PER_ROUND; i++) {
            snprintf(key, sizeof(key), "r%d-%d", round, i);
            if (i == PER_ROUND / 2 && round % 3 == 0) { /* rounds 0 and 3: one lives on */
                answered(&fx, key, mid, mlen, 86400000);
                continue;
            }
            answered(&fx, key, rec, rlen, 1000);
            if (i % 997 == 0) replays(&fx, key, rec, rlen);
        }
        /* a reservation left in flight across the expiry */
        eg_idem_req_t fl;
        memset(&fl, 0, sizeof(fl));
        snprintf(fl.key, sizeof(fl.key), "flight-%d", round);
        memset(fl.fp, 7, sizeof(fl.fp));
        eg_idem_result_t res;
        unsigned char *got = NULL;
        assert_int_equal(eg_idem_begin_now(fx.s, &fl, 3000, &res, &got), EG_OK);
        assert_int_equal(res.state, EG_IDEM_RESERVED);
        atomic_fetch_add(&fake_now, 2000);
        size_t n = 0;
        assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
        /* the answers (but the one living on) and the last round's flight */
        if (round > 0) assert_int_equal(n, PER_ROUND - (round % 3 == 0) + 1);
        assert_int_equal(eg_idem_memory_usage(fx.s, &chunks, &nfree, &big), EG_OK);
        if (chunks > most) most = chunks;
        replays(&fx, "keep", keep, klen);
        for (int r = 0; r <= round; r += 3) {
            snprintf(key, sizeof(key), "r%d-%d", r, PER_ROUND / 2);
            replays(&fx, key, mid, mlen);
        }
        /* the flight is still this request's: it completes in its entry */
        assert_int_equal(eg_idem_complete(fx.s, &io, &fl, mid, mlen, 1000), EG_OK);
        replays(&fx, fl.key, mid, mlen);
    }
    /* six rounds of more than a chunk each (eight or more without reuse),
     * two of them pinned by what lives on */
    if (most > 5) fail_msg("%zu chunks for %d rounds: emptied chunks are not reused", most, ROUNDS);
    assert_int_equal(big, 0);
    /* a record over 64 KiB: malloc'd, replayed, freed when it expires */
    static unsigned char huge[80 * 1024];
    static char body[70 * 1024];
    memset(body, 'y', sizeof(body) - 1);
    body[0] = '"';
    body[sizeof(body) - 2] = '"';
    body[sizeof(body) - 1] = '\0';
    size_t hlen = mkrecord(huge, sizeof(huge), 201, body);
    answered(&fx, "huge", huge, hlen, 1000);
    assert_int_equal(eg_idem_memory_usage(fx.s, &chunks, &nfree, &big), EG_OK);
    assert_int_equal(big, 1);
    replays(&fx, "huge", huge, hlen);
    atomic_fetch_add(&fake_now, 2000);
    size_t n = 0;
    assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
    assert_int_equal(eg_idem_memory_usage(fx.s, &chunks, &nfree, &big), EG_OK);
    assert_int_equal(big, 0);
    replays(&fx, "keep", keep, klen);
    fx_close(&fx);
}

/* The chunks' bound (twice the cap): with every chunk pinned by an entry
 * that lives on, new entries are malloc'd instead of mapping more, and
 * every answer is still right. */
static void test_memory_chunk_bound(void **state)
{
    (void)state;
    enum { ROUNDS = 8, PER_ROUND = 7000 };
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, (size_t)3 << 20); /* 3 MiB: at most 5 chunks */
    unsigned char rec[512], pin[512];
    size_t rlen =
               mkrecord(rec, sizeof(rec), 201,
                        "{\"id\":\"ch_1\",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}"),
           plen = mkrecord(pin, sizeof(pin), 200, "{\"pinned\":true}");
    size_t chunks = 0, nfree = 0, big = 0, most = 0, most_big = 0;
    char key[64];
    for (int round = 0; round < ROUNDS; round++) {
        snprintf(key, sizeof(key), "pin-%d", round);
        answered(&fx, key, pin, plen, 86400000);
        for (int i = 0; i < PER_ROUND; i++) {
            snprintf(key, sizeof(key), "c%d-%d", round, i);
            answered(&fx, key, rec, rlen, 1000);
            if (i % 1499 == 0) replays(&fx, key, rec, rlen);
        }
        assert_int_equal(eg_idem_memory_usage(fx.s, &chunks, &nfree, &big), EG_OK);
        if (chunks > most) most = chunks;
        if (big > most_big) most_big = big;
        atomic_fetch_add(&fake_now, 2000);
        size_t n = 0;
        assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
        for (int r = 0; r <= round; r++) {
            snprintf(key, sizeof(key), "pin-%d", r);
            replays(&fx, key, pin, plen);
        }
    }
    if (most > 5) fail_msg("%zu chunks mapped, the bound is 5", most);
    assert_true(most_big > 0); /* the bound was met: entries went to malloc */
    fx_close(&fx);
}

/* Every name with the same hash (a full 64-bit collision, which no client
 * can aim at: the hash is keyed): lookups tell entries apart by their
 * names alone, along one probe run of all of them, and removals in the
 * middle of the run (releases, expiries) leave every other entry found. */
static void test_memory_collisions(void **state)
{
    (void)state;
    enum { N = 150 };
    fx_t fx;
    fx_open(&fx, EG_IDEM_MEMORY, 0);
    assert_int_equal(eg_idem_memory_collide(fx.s), EG_OK);
    eg_idem_io_t io = io_of(&fx);
    unsigned char rec[N][128];
    size_t rlen[N];
    eg_idem_req_t held[N];
    char key[32], body[32];
    for (int i = 0; i < N; i++) {
        snprintf(body, sizeof(body), "{\"n\":%d}", i);
        rlen[i] = mkrecord(rec[i], sizeof(rec[i]), 201, body);
        snprintf(key, sizeof(key), "col-%d", i);
        memset(&held[i], 0, sizeof(held[i]));
        snprintf(held[i].key, sizeof(held[i].key), "%s", key);
        memset(held[i].fp, 7, sizeof(held[i].fp));
        eg_idem_result_t res;
        unsigned char *got = NULL;
        /* a third answered for long, a third for 1 s, a third left in flight */
        assert_int_equal(eg_idem_begin_now(fx.s, &held[i], 5000, &res, &got), EG_OK);
        assert_int_equal(res.state, EG_IDEM_RESERVED);
        if (i % 3 != 2)
            assert_int_equal(
                eg_idem_complete(fx.s, &io, &held[i], rec[i], rlen[i], i % 3 ? 1000 : 60000),
                EG_OK);
    }
    /* release every other reservation: holes in the middle of the run */
    for (int i = 2; i < N; i += 6)
        assert_int_equal(eg_idem_release(fx.s, &io, &held[i]), EG_OK);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "col-%d", i);
        eg_idem_req_t r = req_named(key, 7);
        eg_idem_result_t res;
        unsigned char *got = NULL;
        assert_int_equal(eg_idem_begin_now(fx.s, &r, 5000, &res, &got), EG_OK);
        eg_idem_state_t want = i % 3 != 2   ? EG_IDEM_COMPLETED
                               : i % 6 == 2 ? EG_IDEM_RESERVED /* released: free again */
                                            : EG_IDEM_IN_FLIGHT;
        if (res.state != want) fail_msg("%s: state %d, want %d", key, res.state, want);
        if (want == EG_IDEM_COMPLETED) {
            assert_int_equal(res.len, rlen[i]);
            assert_memory_equal(got, rec[i], rlen[i]);
        }
        free(got);
    }
    /* the 1 s answers expire (dropped when met, and by the purge): the
     * long ones, spread along the run, are still found whole */
    atomic_fetch_add(&fake_now, 2000);
    size_t n = 0;
    assert_int_equal(eg_idem_purge(fx.s, &n), EG_OK);
    assert_int_equal(n, N / 3);
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof(key), "col-%d", i);
        replays(&fx, key, rec[i], rlen[i]);
    }
    fx_close(&fx);
}

/* ---- concurrency: exactly one RESERVED */

enum { NTHREADS = 6, NKEYS = 1000 };

typedef struct {
    eg_idem_store_t *s;
    pthread_barrier_t *start;
    int reserved[NKEYS];
    int in_flight[NKEYS];
    int other;
} racer_t;

static void *racer(void *arg)
{
    racer_t *rc = arg;
    uv_loop_t loop;
    uv_loop_init(&loop);
    answer_t *a = calloc(NKEYS, sizeof(*a));
    pthread_barrier_wait(rc->start);
    for (int k = 0; k < NKEYS; k++) {
        eg_idem_req_t r;
        memset(&r, 0, sizeof(r));
        snprintf(r.key, sizeof(r.key), "race-%d", k);
        memset(r.fp, 1, sizeof(r.fp));
        eg_idem_io_t io = {&loop, NULL};
        if (eg_idem_begin(rc->s, &io, &r, 60000, on_answer, &a[k], NULL) != EG_OK) rc->other++;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int k = 0; k < NKEYS; k++) {
        if (a[k].called != 1)
            rc->other++;
        else if (a[k].state == EG_IDEM_RESERVED)
            rc->reserved[k]++;
        else if (a[k].state == EG_IDEM_IN_FLIGHT)
            rc->in_flight[k]++;
        else
            rc->other++;
    }
    uv_loop_close(&loop);
    free(a);
    return NULL;
}

/* Every thread begins every key at once; stores[i % nstores] is thread
 * i's handle (several handles: several processes on one file). */
static void race(eg_idem_store_t **stores, int nstores)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    racer_t rs[NTHREADS];
    pthread_t th[NTHREADS];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < NTHREADS; i++) {
        rs[i].s = stores[i % nstores];
        rs[i].start = &start;
        assert_int_equal(pthread_create(&th[i], NULL, racer, &rs[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (int k = 0; k < NKEYS; k++) {
        int res = 0, inf = 0;
        for (int i = 0; i < NTHREADS; i++) {
            res += rs[i].reserved[k];
            inf += rs[i].in_flight[k];
        }
        if (res != 1) fail_msg("key %d: %d RESERVED", k, res);
        assert_int_equal(inf, NTHREADS - 1);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(rs[i].other, 0);
}

static void test_memory_concurrent(void **state)
{
    (void)state;
    eg_idem_store_opts_t o = {.backend = EG_IDEM_MEMORY};
    eg_idem_store_t *s;
    char err[256];
    assert_int_equal(eg_idem_store_open(&o, &s, err, sizeof(err)), EG_OK);
    race(&s, 1);
    eg_idem_store_close(s);
}

static void test_sqlite_concurrent(void **state)
{
    (void)state;
    /* two handles on one file: two gateways sharing the store */
    eg_idem_store_opts_t o = {.backend = EG_IDEM_SQLITE, .path = dbpath, .busy_timeout_ms = 10000};
    eg_idem_store_t *s[2];
    char err[256];
    for (int i = 0; i < 2; i++)
        if (eg_idem_store_open(&o, &s[i], err, sizeof(err)) != EG_OK) fail_msg("%s", err);
    race(s, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(eg_idem_store_failures(s[i]), 0);
        eg_idem_store_close(s[i]);
    }
}

/* ---- sqlite: what survives */

static void test_sqlite_survives_close(void **state)
{
    (void)state;
    fx_t fx;
    fx_open(&fx, EG_IDEM_SQLITE, 0);
    eg_idem_io_t io = io_of(&fx);
    answer_t a;
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 201, "{\"kept\":true}");
    eg_idem_req_t done = mkreq("done", 1), held = mkreq("held", 2);
    assert_int_equal(begin_wait(&fx, &done, 60000, &a), EG_IDEM_RESERVED);
    assert_int_equal(eg_idem_complete(fx.s, &io, &done, rec, rlen, 86400000), EG_OK);
    assert_int_equal(begin_wait(&fx, &held, 5000, &a), EG_IDEM_RESERVED);
    fx_close(&fx);

    fx_open(&fx, EG_IDEM_SQLITE, 0);
    assert_int_equal(begin_wait(&fx, &done, 60000, &a), EG_IDEM_COMPLETED);
    assert_int_equal(a.len, rlen);
    assert_memory_equal(a.rec, rec, rlen);
    eg_idem_req_t again = held;
    assert_int_equal(begin_wait(&fx, &again, 5000, &a), EG_IDEM_IN_FLIGHT);
    assert_int_equal(a.retry, 5000);
    atomic_fetch_add(&fake_now, 5000);
    assert_int_equal(begin_wait(&fx, &again, 5000, &a), EG_IDEM_RESERVED);
    fx_close(&fx);
}

/* A process killed with SIGKILL right after reserving and completing:
 * both are on disk, and the reservation is free once lock_ms is over. */
static void test_sqlite_kill9(void **state)
{
    (void)state;
    eg_idem_req_t done = mkreq("k9done", 1), held = mkreq("k9held", 2);
    unsigned char rec[256];
    size_t rlen = mkrecord(rec, sizeof(rec), 200, "{\"before\":\"kill\"}");
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* no cmocka here: a failed assertion would run the other tests in
         * the child */
        uv_loop_t loop;
        eg_idem_store_opts_t o = {
            .backend = EG_IDEM_SQLITE, .path = dbpath, .clock_ms = fake_clock};
        eg_idem_store_t *s;
        char err[256];
        answer_t a1, a2;
        memset(&a1, 0, sizeof(a1));
        memset(&a2, 0, sizeof(a2));
        if (uv_loop_init(&loop) != 0 || eg_idem_store_open(&o, &s, err, sizeof(err)) != EG_OK)
            _exit(3);
        eg_idem_io_t io = {&loop, NULL};
        if (eg_idem_begin(s, &io, &done, 60000, on_answer, &a1, NULL) != EG_OK) _exit(4);
        uv_run(&loop, UV_RUN_DEFAULT);
        if (a1.called != 1 || a1.state != EG_IDEM_RESERVED) _exit(5);
        if (eg_idem_complete(s, &io, &done, rec, rlen, 60000) != EG_OK) _exit(6);
        if (eg_idem_begin(s, &io, &held, 3000, on_answer, &a2, NULL) != EG_OK) _exit(7);
        uv_run(&loop, UV_RUN_DEFAULT); /* the complete is committed, held reserved */
        char c = a2.called == 1 && a2.state == EG_IDEM_RESERVED ? 'y' : 'n';
        if (write(pipefd[1], &c, 1) != 1) _exit(2);
        for (;;)
            pause(); /* killed here, store open */
    }
    close(pipefd[1]);
    char c = 0;
    assert_int_equal(read(pipefd[0], &c, 1), 1);
    close(pipefd[0]);
    assert_int_equal(c, 'y');
    kill(pid, SIGKILL);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

    fx_t fx;
    fx_open(&fx, EG_IDEM_SQLITE, 0);
    answer_t a;
    assert_int_equal(begin_wait(&fx, &done, 60000, &a), EG_IDEM_COMPLETED);
    assert_memory_equal(a.rec, rec, rlen);
    eg_idem_req_t retry = held;
    assert_int_equal(begin_wait(&fx, &retry, 3000, &a), EG_IDEM_IN_FLIGHT);
    atomic_fetch_add(&fake_now, 3000);
    assert_int_equal(begin_wait(&fx, &retry, 3000, &a), EG_IDEM_RESERVED);
    fx_close(&fx);
}

static void test_sqlite_bad_path(void **state)
{
    (void)state;
    eg_idem_store_opts_t o = {.backend = EG_IDEM_SQLITE, .path = "/nonexistent-dir/x.db"};
    eg_idem_store_t *s = NULL;
    char err[256] = "";
    assert_int_equal(eg_idem_store_open(&o, &s, err, sizeof(err)), EG_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "/nonexistent-dir/x.db"));
    o.path = NULL;
    assert_int_equal(eg_idem_store_open(&o, &s, err, sizeof(err)), EG_EINVAL);
}

/* ---- redis */

/* Waits for the connection to be up (it is made on first use). */
static int connected(fx_t *fx, eg_redis_t *r)
{
    eg_idem_req_t req = mkreq("connect", 1);
    snprintf(req.key, sizeof(req.key), "connect-%llu", (unsigned long long)mono_ms());
    eg_idem_io_t io = {&fx->loop, r};
    answer_t a;
    memset(&a, 0, sizeof(a));
    if (eg_idem_begin(fx->s, &io, &req, 1000, on_answer, &a, NULL) == EG_OK)
        run_until(fx, &a.called, 10000);
    uv_timer_start(&fx->guard, guard_tick, 20, 20);
    for (uint64_t end = mono_ms() + 10000; !eg_redis_connected(r) && mono_ms() < end;)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->guard);
    return eg_redis_connected(r);
}

static int redis_or_skip(void)
{
    if (start_redis()) return 1;
    print_message("/usr/bin/redis-server not found: Redis store not tested\n");
    skip();
    return 0;
}

static void test_redis_contract(void **state)
{
    (void)state;
    if (!redis_or_skip()) return;
    fx_t fx;
    fx_open(&fx, EG_IDEM_REDIS, 0);
    assert_string_equal(eg_idem_store_backend_name(fx.s), "redis");
    assert_true(connected(&fx, fx.redis));
    contract(&fx);

    /* expiry on Redis's clock: polled, with a deadline */
    answer_t a;
    eg_idem_req_t r = mkreq("rexp", 1), late = r;
    snprintf(r.key, sizeof(r.key), "rexp-%llu", (unsigned long long)mono_ms());
    late = r;
    assert_int_equal(begin_wait(&fx, &r, 300, &a), EG_IDEM_RESERVED);
    eg_idem_state_t st = EG_IDEM_IN_FLIGHT;
    for (uint64_t end = mono_ms() + 10000; st == EG_IDEM_IN_FLIGHT && mono_ms() < end;) {
        st = begin_wait(&fx, &late, 60000, &a);
        if (st == EG_IDEM_IN_FLIGHT) assert_true(a.retry >= 1 && a.retry <= 300);
    }
    assert_int_equal(st, EG_IDEM_RESERVED);
    /* the key and its value, as docs/idempotency.md describes them */
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    assert_true(c && !c->err);
    redisReply *rep = redisCommand(c, "GET egtest:idem:%s", late.key);
    assert_true(rep && rep->type == REDIS_REPLY_STRING && rep->len == 49);
    assert_int_equal(rep->str[0], 'i');
    assert_memory_equal(rep->str + 1, late.fp, 32);
    assert_memory_equal(rep->str + 33, late.owner, 16);
    freeReplyObject(rep);
    rep = redisCommand(c, "PTTL egtest:idem:%s", late.key);
    assert_true(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 50000 &&
                rep->integer <= 60000);
    freeReplyObject(rep);
    redisFree(c);
    fx_close(&fx);
}

/* Two connections (two gateway nodes) begin the same keys at once. */
static void test_redis_two_nodes(void **state)
{
    (void)state;
    if (!redis_or_skip()) return;
    fx_t fx;
    fx_open(&fx, EG_IDEM_REDIS, 0);
    eg_redis_t *second;
    assert_int_equal(eg_redis_new(&fx.loop, "127.0.0.1", redis_port, 0, NULL, NULL, &second), 0);
    eg_redis_set_timeout(second, 3000);
    assert_true(connected(&fx, fx.redis));
    assert_true(connected(&fx, second));
    static answer_t a[2][NKEYS];
    memset(a, 0, sizeof(a));
    for (int k = 0; k < NKEYS; k++) {
        eg_idem_req_t r = mkreq("node", 1);
        snprintf(r.key, sizeof(r.key), "node-%d-%llu", k, (unsigned long long)mono_ms());
        for (int n = 0; n < 2; n++) {
            eg_idem_io_t io = {&fx.loop, n ? second : fx.redis};
            assert_int_equal(eg_idem_begin(fx.s, &io, &r, 60000, on_answer, &a[n][k], NULL), EG_OK);
        }
    }
    int all = 0;
    uv_timer_start(&fx.guard, guard_tick, 20, 20);
    for (uint64_t end = mono_ms() + 10000; !all && mono_ms() < end;) {
        uv_run(&fx.loop, UV_RUN_ONCE);
        all = 1;
        for (int k = 0; k < NKEYS; k++)
            all &= a[0][k].called && a[1][k].called;
    }
    uv_timer_stop(&fx.guard);
    assert_true(all);
    for (int k = 0; k < NKEYS; k++) {
        int res = (a[0][k].state == EG_IDEM_RESERVED) + (a[1][k].state == EG_IDEM_RESERVED);
        int inf = (a[0][k].state == EG_IDEM_IN_FLIGHT) + (a[1][k].state == EG_IDEM_IN_FLIGHT);
        if (res != 1 || inf != 1) fail_msg("key %d: %d reserved, %d in flight", k, res, inf);
    }
    eg_redis_free(second);
    fx_close(&fx);
}

/* A server that accepts and never answers: ERROR within timeout_ms, and
 * no callback after a cancel. No server at all: EG_EIO or ERROR. */
static void test_redis_unavailable(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(lfd, 16), 0); /* the kernel accepts; nobody reads */
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    eg_idem_store_opts_t o = {.backend = EG_IDEM_REDIS, .timeout_ms = 200};
    eg_idem_store_t *s;
    char err[256];
    assert_int_equal(eg_idem_store_open(&o, &s, err, sizeof(err)), EG_OK);
    eg_redis_t *r;
    assert_int_equal(eg_redis_new(&loop, "127.0.0.1", ntohs(sa.sin_port), 0, NULL, NULL, &r), 0);
    eg_idem_io_t io = {&loop, r};
    eg_idem_req_t req = mkreq("mute", 1);
    answer_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    eg_idem_op_t *op;
    assert_int_equal(eg_idem_begin(s, &io, &req, 1000, on_answer, &a, NULL), EG_OK);
    assert_int_equal(eg_idem_begin(s, &io, &req, 1000, on_answer, &b, &op), EG_OK);
    eg_idem_cancel(op);
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_tick, 20, 20);
    for (uint64_t end = mono_ms() + 10000; !a.called && mono_ms() < end;)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(a.called, 1);
    assert_int_equal(a.state, EG_IDEM_ERROR);
    assert_string_equal(a.why, "redis timed out");
    assert_int_equal(b.called, 0);
    /* no begin without a connection object */
    eg_idem_io_t none = {&loop, NULL};
    assert_int_equal(eg_idem_begin(s, &none, &req, 1000, on_answer, &a, NULL), EG_EINVAL);
    uv_timer_stop(&guard);
    eg_redis_free(r); /* the replies still due come back as NULL: no callback */
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(a.called, 1);
    assert_int_equal(b.called, 0);
    close(lfd);

    /* nobody listening on the port any more */
    assert_int_equal(eg_redis_new(&loop, "127.0.0.1", ntohs(sa.sin_port), 0, NULL, NULL, &r), 0);
    io.redis = r;
    memset(&a, 0, sizeof(a));
    int rc = eg_idem_begin(s, &io, &req, 1000, on_answer, &a, NULL);
    if (rc == EG_OK) {
        uv_timer_init(&loop, &guard);
        uv_timer_start(&guard, guard_tick, 20, 20);
        for (uint64_t end = mono_ms() + 10000; !a.called && mono_ms() < end;)
            uv_run(&loop, UV_RUN_ONCE);
        uv_close((uv_handle_t *)&guard, NULL);
        assert_int_equal(a.called, 1);
        assert_int_equal(a.state, EG_IDEM_ERROR);
    } else {
        assert_int_equal(rc, EG_EIO);
        assert_int_equal(a.called, 0);
    }
    eg_redis_free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    eg_idem_store_close(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static int group_teardown(void **state)
{
    (void)state;
    stop_redis();
    return 0;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_memory_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_cap_accounting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_map_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_chunk_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin_now, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_survives_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_bad_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_contract, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_two_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_unavailable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}

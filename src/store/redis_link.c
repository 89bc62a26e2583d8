/* redis_link.c - each worker's Redis connection (see redis_link.h).
 *
 * Batches: the calls of one loop iteration are kept in one growing list
 * (their keys and arguments copied into one arena) and sent from a
 * uv_check handle, which libuv runs right after the iteration's I/O
 * callbacks: every request parsed in that round is in the list by then.
 * The handle runs only while calls wait, so an idle worker pays nothing.
 * A call whose keys and arguments are those of the call before it (many
 * requests of one subject in one round: a busy key, a route-wide limit)
 * joins that call's group instead of being copied and sent again: Redis
 * parses its arguments once, the script decides the whole group at once
 * on values it read once, and answers once for the group; each call gets
 * that answer and its place in the group.
 */
#include "redis_link.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eg_redis_link_s {
    eg_redis_t *redis; /* made on first use */
    char addr[270];    /* the address it was made for */
    atomic_ullong failures;
    atomic_int up;
    uint64_t logged_ms;
    char tag[17];
    uint64_t seq;
    /* the batch being gathered (see the file's comment) */
    uv_check_t check;
    int check_init;
    const char *script;
    uint64_t stamp; /* the largest of the calls' */
    struct bcall *calls;
    size_t ncalls, cap_calls;
    struct bgroup *groups;
    size_t ngroups, cap_groups;
    struct bstr *keys, *args; /* every group's, in order */
    size_t nkeys, nargs, cap_keys, cap_args;
    char *arena; /* their bytes: one buffer a batch, not an allocation a string */
    size_t arena_len, arena_cap;
    int inflight; /* batches sent and not answered */
    int now;      /* the batch goes at the iteration's end even so (eg_redis_link_now) */
    int closing;
    atomic_ullong batched_calls, batches;
};

/* one queued call; its strings live in the key and argument lists */
struct bcall {
    size_t nreply; /* its group's answer: elements */
    size_t index;  /* its place in its group, from 0 */
    eg_redis_link_cb cb;
    void *arg;
};

struct bstr { /* a string in the batch's arena */
    size_t off, len;
};

/* consecutive calls with the same keys and arguments: sent once, with a count */
struct bgroup {
    size_t count;
    size_t key0, nkeys, arg0, nargs; /* in keys[] and args[] */
};

/* a batch on its way: what the reply is split among */
typedef struct {
    eg_redis_link_t *l;
    struct bcall *calls;
    size_t n;
} inflight_t;

eg_redis_link_t *eg_redis_link_new(const unsigned char rnd[8])
{
    eg_redis_link_t *l = calloc(1, sizeof(*l));
    if (!l) return NULL;
    for (size_t i = 0; i < 8; i++)
        snprintf(l->tag + 2 * i, 3, "%02x", rnd[i]);
    return l;
}

static void batch_fail_all(eg_redis_link_t *l);

void eg_redis_link_close(eg_redis_link_t *l)
{
    if (!l) return;
    l->closing = 1;
    batch_fail_all(l);
    if (l->check_init && !uv_is_closing((uv_handle_t *)&l->check))
        uv_close((uv_handle_t *)&l->check, NULL);
    eg_redis_free(l->redis);
    l->redis = NULL;
}

void eg_redis_link_free(eg_redis_link_t *l)
{
    if (!l) return;
    eg_redis_link_close(l);
    free(l->calls);
    free(l->groups);
    free(l->keys);
    free(l->args);
    free(l->arena);
    free(l);
}

static void on_state(void *arg, int up)
{
    eg_redis_link_t *l = arg;
    atomic_store(&l->up, up ? 1 : -1);
}

eg_redis_t *eg_redis_link_get(eg_redis_link_t *l, uv_loop_t *loop, const eg_config_t *cfg)
{
    if (l->redis && strcmp(l->addr, cfg->redis.addr) != 0) { /* a reload moved it */
        eg_redis_free(l->redis);
        l->redis = NULL;
    }
    if (!l->redis) {
        if (eg_redis_new(loop, cfg->redis.host, cfg->redis.port, cfg->redis_db, on_state, l,
                         &l->redis) != 0)
            return NULL;
        snprintf(l->addr, sizeof(l->addr), "%s", cfg->redis.addr);
    }
    eg_redis_set_timeout(l->redis, cfg->redis_timeout_ms); /* a reload may change it */
    return l->redis;
}

eg_redis_t *eg_redis_link_current(eg_redis_link_t *l)
{
    return l ? l->redis : NULL;
}

int eg_redis_link_failed(eg_redis_link_t *l, uint64_t now_ms)
{
    atomic_fetch_add(&l->failures, 1);
    atomic_store(&l->up, -1);
    if (now_ms - l->logged_ms < 1000) return 0;
    l->logged_ms = now_ms;
    return 1;
}

void eg_redis_link_succeeded(eg_redis_link_t *l)
{
    atomic_store(&l->up, 1);
}

/* Without printf: once a request on a route with slots. */
void eg_redis_link_token(eg_redis_link_t *l, char *out, size_t cap)
{
    static const char hx[] = "0123456789abcdef";
    char tmp[40];
    size_t n = 0;
    memcpy(tmp, l->tag, 16);
    n = 16;
    tmp[n++] = ':';
    uint64_t v = ++l->seq;
    char digits[16];
    size_t d = 0;
    do
        digits[d++] = hx[v & 15];
    while ((v >>= 4));
    while (d)
        tmp[n++] = digits[--d];
    if (!cap) return;
    if (n >= cap) n = cap - 1;
    memcpy(out, tmp, n);
    out[n] = '\0';
}

void eg_redis_link_status(eg_redis_link_t *l, int *up, uint64_t *failures)
{
    *up = l ? atomic_load(&l->up) : 0;
    *failures = l ? atomic_load(&l->failures) : 0;
}

/* ------------------------------------------------------------ batches */

/* Decimal digits of v into out (24 bytes); their count. snprintf cost
 * more than the rest of a batch's bookkeeping. */
static size_t put_num(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *np = realloc(*p, n * size);
    if (!np) return -1;
    *p = np;
    *cap = n;
    return 0;
}

static int copy_strs(eg_redis_link_t *l, struct bstr *dst, int n, const char *const *src,
                     const size_t *lens)
{
    size_t need = l->arena_len;
    for (int i = 0; i < n; i++)
        need += lens[i];
    if (grow((void **)&l->arena, &l->arena_cap, need, 1)) return -1;
    for (int i = 0; i < n; i++) {
        memcpy(l->arena + l->arena_len, src[i], lens[i]);
        dst[i] = (struct bstr){l->arena_len, lens[i]};
        l->arena_len += lens[i];
    }
    return 0;
}

static void reset_batch(eg_redis_link_t *l)
{
    l->ncalls = l->ngroups = l->nkeys = l->nargs = l->arena_len = 0;
    l->stamp = 0;
    l->now = 0;
}

/* 1 when the n strings equal those at dst in the arena. */
static int same_strs(const eg_redis_link_t *l, const struct bstr *dst, int n,
                     const char *const *src, const size_t *lens)
{
    for (int i = 0; i < n; i++)
        if (dst[i].len != lens[i] || memcmp(l->arena + dst[i].off, src[i], lens[i]) != 0) return 0;
    return 1;
}

/* Every queued call is answered NULL (no connection, closing). */
static void batch_fail_all(eg_redis_link_t *l)
{
    size_t n = l->ncalls;
    struct bcall *calls = n ? malloc(n * sizeof(*calls)) : NULL;
    if (calls) memcpy(calls, l->calls, n * sizeof(*calls));
    reset_batch(l);
    if (l->check_init) uv_check_stop(&l->check);
    for (size_t i = 0; calls && i < n; i++)
        calls[i].cb(calls[i].arg, NULL, calls[i].index);
    free(calls);
}

static void on_check(uv_check_t *h);

/* The batch's reply: each call gets its group's slice, as an array of its
 * own, and its place in the group. */
static void batch_done(void *arg, void *reply)
{
    inflight_t *in = arg;
    redisReply *rep = reply;
    size_t want = 0;
    for (size_t i = 0; i < in->n; i++)
        if (in->calls[i].index == 0) want += in->calls[i].nreply;
    int ok = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == want;
    size_t at = 0;
    for (size_t i = 0; i < in->n; i++) {
        const struct bcall *bc = &in->calls[i];
        if (!ok) {
            bc->cb(bc->arg, rep && rep->type == REDIS_REPLY_ERROR ? rep : NULL, bc->index);
            continue;
        }
        if (i && bc->index == 0) at += in->calls[i - 1].nreply; /* the next group's */
        redisReply sub = {
            .type = REDIS_REPLY_ARRAY, .elements = bc->nreply, .element = rep->element + at};
        bc->cb(bc->arg, &sub, bc->index);
    }
    eg_redis_link_t *l = in->l;
    l->inflight--;
    /* what gathered meanwhile goes at the end of this loop iteration (with
     * what the iteration adds), on the connection current then */
    if (l->ncalls && !l->closing && l->check_init) uv_check_start(&l->check, on_check);
    free(in->calls);
    free(in);
}

/* Sends what the iteration gathered: one EVALSHA. ARGV: the number of
 * groups, the stamp, then per group its count and its arguments. */
static void batch_send(eg_redis_link_t *l)
{
    size_t n = l->ncalls, ng = l->ngroups;
    if (!n) return;
    eg_redis_t *r = l->redis;
    inflight_t *in = malloc(sizeof(*in));
    size_t total = l->nkeys + 2 + ng + l->nargs;
    const char **argv = malloc(total * sizeof(*argv));
    size_t *lens = malloc(total * sizeof(*lens));
    struct bcall *calls = malloc(n * sizeof(*calls));
    char(*counts)[24] = malloc((ng + 2) * sizeof(*counts));
    if (!r || !in || !argv || !lens || !calls || !counts) {
        free(in);
        free(argv);
        free(lens);
        free(calls);
        free(counts);
        batch_fail_all(l);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->nkeys; i++, k++)
        argv[k] = l->arena + l->keys[i].off, lens[k] = l->keys[i].len;
    lens[k] = put_num(counts[ng], ng);
    argv[k++] = counts[ng];
    lens[k] = put_num(counts[ng + 1], l->stamp);
    argv[k++] = counts[ng + 1];
    for (size_t g = 0; g < ng; g++) {
        const struct bgroup *gr = &l->groups[g];
        lens[k] = put_num(counts[g], gr->count);
        argv[k++] = counts[g];
        for (size_t i = gr->arg0; i < gr->arg0 + gr->nargs; i++, k++)
            argv[k] = l->arena + l->args[i].off, lens[k] = l->args[i].len;
    }
    memcpy(calls, l->calls, n * sizeof(*calls));
    in->l = l;
    in->calls = calls;
    in->n = n;
    l->inflight++;
    atomic_fetch_add(&l->batched_calls, n);
    atomic_fetch_add(&l->batches, 1);
    /* the batch leaves the link before the send (which copies it): a reply
     * given at once may start the next batch (a pipelined request) */
    char *arena = l->arena;
    size_t nk = l->nkeys, arena_cap = l->arena_cap;
    l->arena = NULL;
    l->arena_cap = 0;
    reset_batch(l);
    eg_redis_cork(r);
    eg_redis_eval(r, l->script, (int)nk, (int)total, argv, lens, batch_done,
                  in); /* keys included */
    eg_redis_uncork(r);
    free(argv);
    free(lens);
    free(counts);
    if (!l->arena) { /* keep the buffer for the next batch */
        l->arena = arena;
        l->arena_cap = arena_cap;
    } else {
        free(arena);
    }
}

/* At the end of a loop iteration: the batch goes, unless one is still on
 * its way; then it waits for that one's answer (batch_done), gathering
 * more. A busy worker so has one batch in flight, and its batches grow
 * with the load instead of their number: Redis's cost and the worker's
 * system calls are paid once a batch, and an idle worker's call goes at
 * once. A batch marked by eg_redis_link_now goes at the end of its
 * iteration whatever is in flight. */
static void on_check(uv_check_t *h)
{
    eg_redis_link_t *l = h->data;
    uv_check_stop(h);
    if (l->inflight > 0 && !l->now) return;
    batch_send(l);
}

void eg_redis_link_now(eg_redis_link_t *l)
{
    if (l && l->ncalls) l->now = 1;
}

/* Beyond this many calls a batch goes at once (a script's run blocks
 * Redis; thousands of decisions in one would delay everyone else's). */
#define BATCH_MAX 256

void eg_redis_link_batch(eg_redis_link_t *l, uv_loop_t *loop, const eg_config_t *cfg,
                         const char *script, uint64_t stamp, int nkeys, const char *const *keys,
                         const size_t *klens, int nargs, const char *const *args,
                         const size_t *alens, size_t nreply, eg_redis_link_cb cb, void *arg)
{
    eg_redis_t *r = eg_redis_link_get(l, loop, cfg);
    if (!r || (l->ncalls && l->script != script)) {
        if (r) batch_send(l); /* another script: this batch goes first */
        if (!r) {
            cb(arg, NULL, 0);
            return;
        }
    }
    if (!l->check_init) {
        uv_check_init(loop, &l->check);
        l->check.data = l;
        l->check_init = 1;
    }
    struct bgroup *last = l->ngroups ? &l->groups[l->ngroups - 1] : NULL;
    int same = last && last->nkeys == (size_t)nkeys && last->nargs == (size_t)nargs &&
               l->calls[l->ncalls - 1].nreply == nreply &&
               same_strs(l, l->keys + last->key0, nkeys, keys, klens) &&
               same_strs(l, l->args + last->arg0, nargs, args, alens);
    if (grow((void **)&l->calls, &l->cap_calls, l->ncalls + 1, sizeof(*l->calls))) {
        cb(arg, NULL, 0);
        return;
    }
    size_t index = 0;
    if (same) {
        index = last->count++;
    } else if (grow((void **)&l->groups, &l->cap_groups, l->ngroups + 1, sizeof(*l->groups)) ||
               grow((void **)&l->keys, &l->cap_keys, l->nkeys + (size_t)nkeys, sizeof(*l->keys)) ||
               grow((void **)&l->args, &l->cap_args, l->nargs + (size_t)nargs, sizeof(*l->args)) ||
               copy_strs(l, l->keys + l->nkeys, nkeys, keys, klens) ||
               copy_strs(l, l->args + l->nargs, nargs, args, alens)) {
        cb(arg, NULL, 0);
        return;
    } else {
        l->groups[l->ngroups++] =
            (struct bgroup){1, l->nkeys, (size_t)nkeys, l->nargs, (size_t)nargs};
        l->nkeys += (size_t)nkeys;
        l->nargs += (size_t)nargs;
    }
    l->calls[l->ncalls++] = (struct bcall){nreply, index, cb, arg};
    l->script = script;
    if (stamp > l->stamp) l->stamp = stamp;
    if (l->ncalls >= BATCH_MAX) {
        uv_check_stop(&l->check);
        batch_send(l);
    } else if (l->ncalls == 1) {
        uv_check_start(&l->check, on_check);
    }
}

void eg_redis_link_batch_stats(eg_redis_link_t *l, uint64_t *calls, uint64_t *batches)
{
    *calls = l ? atomic_load(&l->batched_calls) : 0;
    *batches = l ? atomic_load(&l->batches) : 0;
}

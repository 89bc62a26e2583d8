/* redis.c - per-worker async Redis connections (see redis.h).
 *
 * hiredis's async context on the worker's libuv loop, through this file's
 * own libuv adapter: hiredis 0.14's returns without a word on a poll error,
 * and a connection reset under load (Redis killed with commands unread)
 * then stayed "connected" on a dead socket for good. The socket is not the
 * only judge of a connection: every command sent is tracked with a
 * deadline; three in a row past it with nothing at all back for a second
 * tear the connection down; a PING goes out when it has been quiet for a
 * second (every 200 ms while commands are late); and a new connection is
 * up only once it has answered PING with PONG (not while Redis is loading
 * its data). A lost connection is made again at once, then after 100 ms
 * doubling to 1 s. One 100 ms timer per worker drives all of it.
 */
#include "redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    TICK_MS = 100,
    BACKOFF_MIN_MS = 100,
    BACKOFF_MAX_MS = 1000,
    CONNECT_MS = 1000,     /* a connection not up (PONG) and silent this long is abandoned */
    STALL_MS = 1000,       /* ... and an up one with late commands */
    FAILURES_MAX = 3,      /* commands in a row past their deadline */
    PING_IDLE_MS = 1000,   /* quiet this long: a PING */
    PING_FAILING_MS = 200, /* the same while commands are late */
    BACKLOG_MAX = 65536,
    DEFAULT_TIMEOUT_MS = 50 /* the configuration's default, until eg_redis_set_timeout */
};

/* A command sent and not answered yet (hiredis's privdata for its reply);
 * the first member of each kind's own record. */
typedef struct pend_s {
    struct pend_s *prev, *next;
    eg_redis_t *r;
    uint64_t deadline_ms;
    int late; /* counted as a failure already */
} pend_t;

struct eg_redis_s {
    uv_loop_t *loop;
    redisAsyncContext *ac; /* NULL while there is no connection */
    char host[256];
    int port, db;
    int connected; /* ac answered PONG */
    int closing;   /* eg_redis_free was called */
    uint64_t timeout_ms;
    uint64_t backoff_ms;      /* the wait after the next failed attempt */
    uint64_t next_attempt_ms; /* no connect before this */
    uint64_t alive_ms;        /* ac's last sign of life: its start, or a reply */
    uint64_t last_ping_ms;
    int pings;           /* PINGs in flight on ac */
    int failures;        /* commands in a row that passed their deadline */
    pend_t *head, *tail; /* in flight on ac, oldest first */
    eg_redis_state_cb on_state;
    void *state_arg;
    uv_timer_t tick;
    /* idempotent fire-and-forget commands (slot releases) to send once a
     * connection is up: issued while there was none, or lost with one */
    char **backlog;
    size_t *backlog_len;
    size_t nbacklog;
    size_t capbacklog;
    /* the SHA-1 of the scripts eg_redis_eval ran, by address (they are
     * static strings): computing it cost more than the rest of a call */
    const char *sha_of[8];
    char sha[8][41];
    unsigned nsha;
};

/* ---- the libuv adapter: hiredis's adapters/libuv.h, but a poll error is
 * a broken connection. libuv stops the handle and reports UV_EBADF when
 * epoll says EPOLLERR (a reset, or a refused connect). */

typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    uv_poll_t handle;
    int events;
    int corked;     /* eg_redis_cork: a write waits for eg_redis_uncork */
    int want_write; /* ... and one was asked for meanwhile */
} ev_t;

static void drop(eg_redis_t *r);

static void ev_poll(uv_poll_t *h, int status, int events)
{
    ev_t *e = h->data;
    if (status < 0) {
        eg_redis_t *r = e->ac ? e->ac->data : NULL; /* NULL: a context already let go of */
        if (r && r->ac == e->ac) drop(r);
        return;
    }
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void ev_set(ev_t *e, int events)
{
    e->events = events;
    if (events)
        uv_poll_start(&e->handle, events, ev_poll);
    else
        uv_poll_stop(&e->handle);
}

/* Only changes: libuv re-arms the descriptor (two epoll_ctl) on every
 * uv_poll_start, even with the same events, and hiredis asks for reading
 * after every write. */
static void ev_add_read(void *p)
{
    ev_t *e = p;
    if (!(e->events & UV_READABLE)) ev_set(e, e->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    ev_t *e = p;
    if (e->events & UV_READABLE) ev_set(e, e->events & ~UV_READABLE);
}

static void ev_add_write(void *p)
{
    ev_t *e = p;
    if (e->corked) {
        e->want_write = 1;
        return;
    }
    if (!(e->events & UV_WRITABLE)) ev_set(e, e->events | UV_WRITABLE);
}

static void ev_del_write(void *p)
{
    ev_t *e = p;
    e->want_write = 0;
    if (e->events & UV_WRITABLE) ev_set(e, e->events & ~UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *p)
{
    ev_t *e = p;
    e->ac = NULL;
    if (!uv_is_closing((uv_handle_t *)&e->handle)) uv_close((uv_handle_t *)&e->handle, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    ev_t *e = calloc(1, sizeof(*e));
    if (!e) return -1;
    if (uv_poll_init(loop, &e->handle, ac->c.fd) != 0) {
        free(e);
        return -1;
    }
    e->ac = ac;
    e->handle.data = e;
    ac->ev.data = e;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

/* ---- replies without a malloc per element: hiredis's reader builds each
 * reply from these, as its own do, but takes the reply objects from a
 * per-thread list of freed ones (a batch's reply is an element or two per
 * request: calloc and free were a tenth of a Redis decision's cost in the
 * worker). Strings and element vectors are allocated as hiredis does. The
 * list lives while the thread has a connection object (users), so nothing
 * is left in it when the thread ends. */

typedef struct pobj_s {
    redisReply r; /* first: the object hiredis and callers see */
    struct pobj_s *next;
} pobj_t;

static _Thread_local struct {
    pobj_t *free;
    size_t n;
    int users;
} pool;

enum { POOL_MAX = 4096 };

static redisReply *pobj_new(int type)
{
    pobj_t *o = pool.free;
    if (o) {
        pool.free = o->next;
        pool.n--;
    } else if (!(o = malloc(sizeof(*o)))) {
        return NULL;
    }
    memset(&o->r, 0, sizeof(o->r));
    o->r.type = type;
    return &o->r;
}

static void pobj_put(redisReply *r)
{
    pobj_t *o = (pobj_t *)r;
    if (pool.users > 0 && pool.n < POOL_MAX) {
        o->next = pool.free;
        pool.free = o;
        pool.n++;
    } else {
        free(o);
    }
}

static void pool_drain(void)
{
    while (pool.free) {
        pobj_t *o = pool.free;
        pool.free = o->next;
        free(o);
    }
    pool.n = 0;
}

static void *link_parent(const redisReadTask *task, redisReply *r)
{
    if (r && task->parent) {
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    return r;
}

static void *p_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = pobj_new(task->type);
    char *buf = r ? malloc(len + 1) : NULL;
    if (!buf) {
        if (r) pobj_put(r);
        return NULL;
    }
    memcpy(buf, str, len);
    buf[len] = '\0';
    r->str = buf;
    r->len = len;
    return link_parent(task, r);
}

static void *p_array(const redisReadTask *task, int elements)
{
    redisReply *r = pobj_new(REDIS_REPLY_ARRAY);
    if (r && elements > 0 && !(r->element = calloc((size_t)elements, sizeof(*r->element)))) {
        pobj_put(r);
        return NULL;
    }
    if (r) r->elements = (size_t)(elements > 0 ? elements : 0);
    return link_parent(task, r);
}

static void *p_integer(const redisReadTask *task, long long value)
{
    redisReply *r = pobj_new(REDIS_REPLY_INTEGER);
    if (r) r->integer = value;
    return link_parent(task, r);
}

static void *p_nil(const redisReadTask *task)
{
    return link_parent(task, pobj_new(REDIS_REPLY_NIL));
}

static void p_free(void *reply)
{
    redisReply *r = reply;
    if (!r) return;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; r->element && i < r->elements; i++)
            p_free(r->element[i]);
        free(r->element);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
               r->type == REDIS_REPLY_ERROR) {
        free(r->str);
    }
    pobj_put(r);
}

static redisReplyObjectFunctions pool_fns = {.createString = p_string,
                                             .createArray = p_array,
                                             .createInteger = p_integer,
                                             .createNil = p_nil,
                                             .freeObject = p_free};

/* ---- commands in flight */

static void track(eg_redis_t *r, pend_t *p)
{
    p->r = r;
    p->late = 0;
    p->deadline_ms = uv_now(r->loop) + r->timeout_ms;
    p->next = NULL;
    p->prev = r->tail;
    if (r->tail)
        r->tail->next = p;
    else
        r->head = p;
    r->tail = p;
}

static void untrack(pend_t *p)
{
    eg_redis_t *r = p->r;
    if (p->prev)
        p->prev->next = p->next;
    else if (r->head == p)
        r->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else if (r->tail == p)
        r->tail = p->prev;
    p->prev = p->next = NULL;
}

/* Plans the next connect: at once after a connection that was up, then
 * 100 ms doubling to 1 s while attempts fail. */
static void retry_later(eg_redis_t *r)
{
    r->next_attempt_ms = uv_now(r->loop) + r->backoff_ms;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (r->backoff_ms > BACKOFF_MAX_MS) r->backoff_ms = BACKOFF_MAX_MS;
    if (r->on_state) r->on_state(r->state_arg, 0);
}

/* The current connection is gone or going (hiredis frees it, or drop()
 * does): forget it. Its commands in flight are answered with NULL by the
 * free, which calls no callback of ours on the context itself any more. */
static void lost(eg_redis_t *r)
{
    r->ac->data = NULL;
    r->ac = NULL;
    r->connected = 0;
    r->failures = 0;
    r->pings = 0;
    retry_later(r);
}

/* Tears the current connection down (dead, stalled, or never up). */
static void drop(eg_redis_t *r)
{
    redisAsyncContext *ac = r->ac;
    lost(r);
    redisAsyncFree(ac);
}

/* What every reply means for the connection, before its own handling.
 * 1 when reply is a reply on the current connection. */
static int seen(pend_t *p, redisAsyncContext *ac, void *reply)
{
    eg_redis_t *r = p->r;
    untrack(p);
    if (ac != r->ac) return 0; /* a connection already let go of */
    if (!reply) {              /* hiredis is freeing it: the connection broke */
        lost(r);
        return 0;
    }
    r->failures = 0;
    r->alive_ms = uv_now(r->loop);
    return 1;
}

static void keep(eg_redis_t *r, char *cmd, size_t len)
{
    if (r->nbacklog == BACKLOG_MAX || r->closing)
        goto drop; /* away for long: the entries' own expiry takes over */
    if (r->nbacklog == r->capbacklog) {
        size_t cap = r->capbacklog ? r->capbacklog * 2 : 64;
        char **b = realloc(r->backlog, cap * sizeof(*b));
        if (!b) goto drop;
        r->backlog = b;
        size_t *bl = realloc(r->backlog_len, cap * sizeof(*bl));
        if (!bl) goto drop;
        r->backlog_len = bl;
        r->capbacklog = cap;
    }
    r->backlog[r->nbacklog] = cmd;
    r->backlog_len[r->nbacklog++] = len;
    return;
drop:
    redisFreeCommand(cmd);
}

typedef struct {
    pend_t p;
    char *cmd; /* formatted, kept to be sent again if the connection breaks first */
    size_t len;
} fire_t;

static void on_fired(redisAsyncContext *ac, void *reply, void *priv)
{
    fire_t *f = priv;
    eg_redis_t *r = f->p.r;
    seen(&f->p, ac, reply);
    /* no answer: the connection broke, perhaps before Redis ran it; the
     * command is idempotent, so it goes again on the next connection */
    if (!reply)
        keep(r, f->cmd, f->len);
    else
        redisFreeCommand(f->cmd);
    free(f);
}

/* Takes cmd when it returns 0. */
static int send_fire(eg_redis_t *r, char *cmd, size_t len)
{
    fire_t *f = malloc(sizeof(*f));
    if (!f) return -1;
    f->cmd = cmd;
    f->len = len;
    track(r, &f->p);
    if (redisAsyncFormattedCommand(r->ac, on_fired, f, cmd, len) != REDIS_OK) {
        untrack(&f->p);
        free(f);
        return -1;
    }
    return 0;
}

static void flush_backlog(eg_redis_t *r)
{
    if (!r->nbacklog) return;
    size_t i = 0;
    while (i < r->nbacklog && r->connected && send_fire(r, r->backlog[i], r->backlog_len[i]) == 0)
        i++;
    memmove(r->backlog, r->backlog + i, (r->nbacklog - i) * sizeof(*r->backlog));
    memmove(r->backlog_len, r->backlog_len + i, (r->nbacklog - i) * sizeof(*r->backlog_len));
    r->nbacklog -= i;
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    pend_t *p = priv;
    eg_redis_t *r = p->r;
    if (ac == r->ac) r->pings--;
    int current = seen(p, ac, reply);
    free(p);
    if (!current || r->connected) return;
    /* a new connection: up on PONG; an error (LOADING) is a server alive
     * but not ready, asked again on the next tick */
    const redisReply *rep = reply;
    if (rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, "PONG") == 0) {
        r->connected = 1;
        r->backoff_ms = 0;
        if (r->on_state) r->on_state(r->state_arg, 1);
        flush_backlog(r);
    }
}

static void send_ping(eg_redis_t *r)
{
    pend_t *p = malloc(sizeof(*p));
    if (!p) return;
    track(r, p);
    if (redisAsyncCommand(r->ac, on_ping, p, "PING") != REDIS_OK) {
        untrack(p);
        free(p);
        return;
    }
    r->pings++;
    r->last_ping_ms = uv_now(r->loop);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    eg_redis_t *r = ac->data;
    if (!r || ac != r->ac) return;
    if (status != REDIS_OK)
        lost(r); /* hiredis frees the context after a failed connect */
    else
        r->alive_ms = uv_now(r->loop);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    eg_redis_t *r = ac->data;
    if (r && ac == r->ac) lost(r);
}

/* A connection to queue commands on: the current one (up or being made),
 * or a new one when the backoff allows. 0 when there is one. */
static int ensure(eg_redis_t *r)
{
    if (r->ac) return 0;
    if (r->closing || uv_now(r->loop) < r->next_attempt_ms) return -1;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err || ev_attach(ac, r->loop) != 0) {
        if (ac) redisAsyncFree(ac);
        retry_later(r);
        return -1;
    }
    ac->data = r;
    ac->c.reader->fn = &pool_fns;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->connected = 0;
    r->failures = 0;
    r->pings = 0;
    r->alive_ms = uv_now(r->loop);
    /* queued until connected, ahead of whatever comes next */
    if (r->db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db);
    send_ping(r);
    return 0;
}

/* Every 100 ms: deadlines, the health check, reconnection. */
static void on_tick(uv_timer_t *t)
{
    eg_redis_t *r = t->data;
    if (!r->ac) {
        ensure(r); /* by itself, without waiting for a request */
        return;
    }
    uint64_t now = uv_now(r->loop);
    for (pend_t *p = r->head; p && p->deadline_ms <= now; p = p->next)
        if (!p->late) {
            p->late = 1;
            r->failures++;
        }
    uint64_t quiet = now - r->alive_ms;
    if (r->connected ? r->failures >= FAILURES_MAX && quiet >= STALL_MS : quiet >= CONNECT_MS) {
        drop(r);
        return;
    }
    uint64_t every = r->failures ? PING_FAILING_MS : PING_IDLE_MS;
    if (r->connected ? quiet >= every && now - r->last_ping_ms >= every : !r->pings) send_ping(r);
}

int eg_redis_new(uv_loop_t *loop, const char *host, int port, int db, eg_redis_state_cb on_state,
                 void *arg, eg_redis_t **out)
{
    eg_redis_t *r = calloc(1, sizeof(*r));
    if (!r) return -1;
    r->loop = loop;
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;
    r->db = db;
    r->timeout_ms = DEFAULT_TIMEOUT_MS;
    r->on_state = on_state;
    r->state_arg = arg;
    pool.users++;
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_start(&r->tick, on_tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&r->tick); /* never keeps a loop alive */
    *out = r;
    return 0;
}

void eg_redis_set_timeout(eg_redis_t *r, uint64_t timeout_ms)
{
    if (r && timeout_ms) r->timeout_ms = timeout_ms;
}

static void on_tick_closed(uv_handle_t *h)
{
    eg_redis_t *r = h->data;
    for (size_t i = 0; i < r->nbacklog; i++)
        redisFreeCommand(r->backlog[i]);
    free(r->backlog);
    free(r->backlog_len);
    free(r);
}

void eg_redis_free(eg_redis_t *r)
{
    if (!r) return;
    r->closing = 1;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        ac->data = NULL;
        r->ac = NULL;
        r->connected = 0;
        redisAsyncFree(ac); /* what is in flight is answered with NULL */
    }
    if (--pool.users == 0) pool_drain();
    uv_close((uv_handle_t *)&r->tick, on_tick_closed); /* frees r */
}

void eg_redis_cork(eg_redis_t *r)
{
    if (r && r->ac && r->connected) ((ev_t *)r->ac->ev.data)->corked = 1;
}

/* Writes what was queued while corked, now, from this call: the socket is
 * writable in all but rare cases, and asking the loop to say so costs a
 * loop iteration and four epoll_ctl calls a batch (libuv re-arms a poll
 * handle whose events change). What does not go waits for writability as
 * usual. A failed write tears the connection down here (hiredis answers
 * what was in flight with NULL). */
void eg_redis_uncork(eg_redis_t *r)
{
    if (!r || !r->ac) return;
    ev_t *e = r->ac->ev.data;
    if (!e->corked) return;
    e->corked = 0;
    if (!e->want_write) return;
    e->want_write = 0;
    if (r->connected)
        redisAsyncHandleWrite(r->ac);
    else
        ev_add_write(e);
}

int eg_redis_connected(const eg_redis_t *r)
{
    return r && r->connected;
}

static void sha1_hex(const char *s, char out[41])
{
    static const char hx[] = "0123456789abcdef";
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[40] = '\0';
}

/* The script's SHA-1 in hex, from r's cache when it ran before. */
static const char *script_sha(eg_redis_t *r, const char *script, char tmp[41])
{
    unsigned n = r->nsha < 8 ? r->nsha : 8;
    for (unsigned i = 0; i < n; i++)
        if (r->sha_of[i] == script) return r->sha[i];
    unsigned at = r->nsha++ % 8;
    sha1_hex(script, tmp);
    r->sha_of[at] = script;
    memcpy(r->sha[at], tmp, 41);
    return tmp;
}

typedef struct {
    pend_t p;
    eg_redis_cb cb;
    void *arg;
    int tried_eval;
    const char *script; /* the caller's, static */
    /* the EVALSHA command as sent (RESP), kept for the EVAL fallback:
     * everything from `rest` on (numkeys, keys, arguments) is the same */
    char *cmd;
    size_t len, rest;
    int argc;
} call_t;

static void call_free(call_t *c)
{
    free(c->cmd);
    free(c);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

static int send_eval(eg_redis_t *r, call_t *c, const char *cmd, size_t len)
{
    track(r, &c->p);
    if (redisAsyncFormattedCommand(r->ac, on_reply, c, cmd, len) == REDIS_OK) return 0;
    untrack(&c->p);
    return -1;
}

/* Decimal digits of v into p; their count. */
static size_t put_u(char *p, size_t v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++)
        p[i] = tmp[n - 1 - i];
    return n;
}

/* "$<len>\r\n<s>\r\n" at p; its length. */
static size_t put_bulk(char *p, const char *s, size_t n)
{
    size_t at = 0;
    p[at++] = '$';
    at += put_u(p + at, n);
    p[at++] = '\r', p[at++] = '\n';
    memcpy(p + at, s, n);
    at += n;
    p[at++] = '\r', p[at++] = '\n';
    return at;
}

/* What put_bulk writes for n bytes, at most. */
#define BULK_MAX(n) ((n) + 26)

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    call_t *c = priv;
    eg_redis_t *r = c->p.r;
    const redisReply *rep = reply;
    if (seen(&c->p, ac, reply) && rep->type == REDIS_REPLY_ERROR && !c->tried_eval &&
        strncmp(rep->str, "NOSCRIPT", 8) == 0) {
        /* first use on this server: the same command with the script itself */
        c->tried_eval = 1;
        size_t slen = strlen(c->script);
        char *ev = malloc(32 + BULK_MAX(4) + BULK_MAX(slen) + (c->len - c->rest));
        if (ev) {
            size_t at = 0;
            ev[at++] = '*';
            at += put_u(ev + at, (size_t)c->argc);
            ev[at++] = '\r', ev[at++] = '\n';
            at += put_bulk(ev + at, "EVAL", 4);
            at += put_bulk(ev + at, c->script, slen);
            memcpy(ev + at, c->cmd + c->rest, c->len - c->rest);
            at += c->len - c->rest;
            int sent = send_eval(r, c, ev, at) == 0; /* hiredis copied it */
            free(ev);
            if (sent) return;
        }
    }
    c->cb(c->arg, reply);
    call_free(c);
}

/* The command is formatted here into one buffer (RESP) rather than by
 * hiredis from an argument vector: a batch of decisions has hundreds of
 * arguments, and hiredis's formatter and per-argument copies cost more
 * than the rest of a request. */
int eg_redis_eval(eg_redis_t *r, const char *script, int nkeys, int nargs, const char *const *args,
                  const size_t *lens, eg_redis_cb cb, void *arg)
{
    call_t *c = calloc(1, sizeof(*c));
    size_t cap = 32 + BULK_MAX(7) + BULK_MAX(40) + BULK_MAX(12);
    for (int i = 0; i < nargs; i++)
        cap += BULK_MAX(lens[i]);
    if (c) c->cmd = malloc(cap);
    if (!c || !c->cmd || ensure(r) != 0) {
        if (c) call_free(c);
        cb(arg, NULL);
        return -1;
    }
    c->cb = cb;
    c->arg = arg;
    c->script = script;
    c->argc = 3 + nargs;
    char tmp[41], nk[16];
    const char *sha = script_sha(r, script, tmp);
    size_t at = 0;
    c->cmd[at++] = '*';
    at += put_u(c->cmd + at, (size_t)c->argc);
    c->cmd[at++] = '\r', c->cmd[at++] = '\n';
    at += put_bulk(c->cmd + at, "EVALSHA", 7);
    at += put_bulk(c->cmd + at, sha, 40);
    c->rest = at;
    at += put_bulk(c->cmd + at, nk, put_u(nk, (size_t)(nkeys < 0 ? 0 : nkeys)));
    for (int i = 0; i < nargs; i++)
        at += put_bulk(c->cmd + at, args[i], lens[i]);
    c->len = at;
    if (send_eval(r, c, c->cmd, c->len) != 0) {
        call_free(c);
        cb(arg, NULL);
        return -1;
    }
    return 0;
}

void eg_redis_fire(eg_redis_t *r, int argc, const char *const *argv, const size_t *lens)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, lens);
    if (len < 0) return;
    if (r->connected && send_fire(r, cmd, (size_t)len) == 0) return;
    /* not up: a command queued on a connection being made is lost if the
     * connect fails, so it waits here until one is up */
    ensure(r);
    keep(r, cmd, (size_t)len);
}

int eg_redis_sync_credits(const eg_redis_target_t *t, const char *key_id, long long add,
                          long long *balance, char *err, size_t errlen)
{
    static const char script[] =
        "local v=tonumber(redis.call('GET',KEYS[1]) or '0') local a=tonumber(ARGV[1])\n"
        "if v+a<0 then return {0,v} end\n"
        "if a~=0 then v=redis.call('INCRBY',KEYS[1],a) end return {1,v}\n";
    struct timeval tv = {(time_t)(t->timeout_ms / 1000),
                         (suseconds_t)(t->timeout_ms % 1000 * 1000)};
    redisContext *c = redisConnectWithTimeout(t->host, t->port, tv);
    int rc = -1;
    redisReply *rep = NULL;
    char key[400];
    snprintf(key, sizeof(key), "%scr:%s", t->prefix, key_id);
    if (!c || c->err) {
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port, c ? c->errstr : "out of memory");
        goto out;
    }
    redisSetTimeout(c, tv);
    if (t->db) {
        rep = redisCommand(c, "SELECT %d", t->db);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis %s:%d: SELECT %d failed", t->host, t->port, t->db);
            goto out;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "EVAL %s 1 %s %lld", script, key, add);
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                 : c->errstr[0]                        ? c->errstr
                                                       : "unexpected reply");
        goto out;
    }
    *balance = rep->element[1]->integer;
    rc = rep->element[0]->integer == 1 ? 0 : -2;
out:
    if (rep) freeReplyObject(rep);
    if (c) redisFree(c);
    return rc;
}

/* redis.c - per-worker async Redis connections (see redis.h). */
#include "redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include <hiredis/adapters/libuv.h>
#pragma GCC diagnostic pop

struct eg_redis_s {
    uv_loop_t *loop;
    redisAsyncContext *ac;
    char host[256];
    int port, db;
    int connected;
    uint64_t last_attempt_ms;
    eg_redis_state_cb on_state;
    void *state_arg;
    uv_timer_t retry; /* reconnects a lost connection without waiting for a request */
    /* fire-and-forget commands (slot releases) issued while disconnected,
     * sent once connected again, oldest first */
    char **backlog;
    size_t *backlog_len;
    size_t nbacklog;
    size_t capbacklog;
};

#define BACKLOG_MAX 65536

static void flush_backlog(eg_redis_t *r)
{
    if (!r->nbacklog) return;
    size_t i = 0;
    for (; i < r->nbacklog && r->ac && r->connected; i++) {
        redisAsyncFormattedCommand(r->ac, NULL, NULL, r->backlog[i], r->backlog_len[i]);
        redisFreeCommand(r->backlog[i]);
    }
    memmove(r->backlog, r->backlog + i, (r->nbacklog - i) * sizeof(*r->backlog));
    memmove(r->backlog_len, r->backlog_len + i, (r->nbacklog - i) * sizeof(*r->backlog_len));
    r->nbacklog -= i;
}

static int ensure(eg_redis_t *r);

/* Runs once a second while not connected. A connect still pending after a
 * second is given up: hiredis 0.14's libuv adapter ignores poll errors, so
 * a refused connect would otherwise hang there for good, and an address
 * that drops SYNs would hold it for minutes. */
static void on_retry(uv_timer_t *t)
{
    eg_redis_t *r = t->data;
    if (r->ac && !r->connected && uv_now(r->loop) - r->last_attempt_ms >= 1000) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        ac->data = NULL; /* no callbacks into r from the free below */
        redisAsyncFree(ac); /* queued commands are answered with NULL */
        if (r->on_state) r->on_state(r->state_arg, 0);
    }
    if (!r->ac) ensure(r);
}

static void set_state(eg_redis_t *r, int up)
{
    r->connected = up;
    if (r->on_state) r->on_state(r->state_arg, up);
    if (up) uv_timer_stop(&r->retry);
    else uv_timer_start(&r->retry, on_retry, 1000, 1000); /* once a second until it is back */
}

typedef struct {
    eg_redis_t *r;
    eg_redis_cb cb;
    void *arg;
    int tried_eval;
    /* kept for the EVAL fallback */
    int nargs;
    char **args;
    size_t *lens;
} call_t;

static void call_free(call_t *c)
{
    for (int i = 0; c->args && i < c->nargs; i++) free(c->args[i]);
    free(c->args);
    free(c->lens);
    free(c);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    eg_redis_t *r = ac->data;
    if (!r) return;
    if (status != REDIS_OK) {
        r->ac = NULL; /* hiredis frees the context after a failed connect */
        set_state(r, 0);
        return;
    }
    set_state(r, 1);
    flush_backlog(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    eg_redis_t *r = ac->data;
    if (!r) return;
    r->ac = NULL;
    set_state(r, 0);
}

static int ensure(eg_redis_t *r)
{
    if (r->ac) return 0;
    uint64_t now = uv_now(r->loop);
    if (r->last_attempt_ms && now - r->last_attempt_ms < 1000) return -1; /* at most once a second */
    r->last_attempt_ms = now;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err) goto fail;
    ac->data = r;
    if (redisLibuvAttach(ac, r->loop) != REDIS_OK) goto fail;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    if (r->db) redisAsyncCommand(ac, NULL, NULL, "SELECT %d", r->db); /* queued until connected */
    if (!uv_is_active((uv_handle_t *)&r->retry)) uv_timer_start(&r->retry, on_retry, 1000, 1000);
    return 0;
fail:
    if (ac) redisAsyncFree(ac);
    set_state(r, 0);
    return -1;
}

int eg_redis_new(uv_loop_t *loop, const char *host, int port, int db, eg_redis_state_cb on_state, void *arg,
                 eg_redis_t **out)
{
    eg_redis_t *r = calloc(1, sizeof(*r));
    if (!r) return -1;
    r->loop = loop;
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;
    r->db = db;
    r->on_state = on_state;
    r->state_arg = arg;
    uv_timer_init(loop, &r->retry);
    r->retry.data = r;
    uv_unref((uv_handle_t *)&r->retry); /* never keeps a loop alive */
    *out = r;
    return 0;
}

static void on_retry_closed(uv_handle_t *h)
{
    eg_redis_t *r = h->data;
    for (size_t i = 0; i < r->nbacklog; i++) redisFreeCommand(r->backlog[i]);
    free(r->backlog);
    free(r->backlog_len);
    free(r);
}

void eg_redis_free(eg_redis_t *r)
{
    if (!r) return;
    if (r->ac) {
        r->ac->data = NULL;
        redisAsyncFree(r->ac); /* pending callbacks get NULL replies */
    }
    uv_close((uv_handle_t *)&r->retry, on_retry_closed); /* frees r */
}

int eg_redis_connected(const eg_redis_t *r)
{
    return r && r->connected;
}

static void sha1_hex(const char *s, char out[41])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, strlen(s), md);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

static int send_eval(call_t *c)
{
    eg_redis_t *r = c->r;
    if (!r->ac) return -1;
    return redisAsyncCommandArgv(r->ac, on_reply, c, c->nargs, (const char **)c->args, c->lens) == REDIS_OK ? 0 : -1;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    call_t *c = priv;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR && !c->tried_eval && strncmp(rep->str, "NOSCRIPT", 8) == 0 &&
        c->r && c->r->ac) {
        /* first use on this server: send the script itself (args[1] holds it) */
        c->tried_eval = 1;
        free(c->args[0]);
        c->args[0] = strdup("EVAL");
        c->lens[0] = 4;
        char *script = c->args[c->nargs]; /* the text, kept past the end of the argument list */
        free(c->args[1]);
        c->args[1] = script;
        c->args[c->nargs] = NULL;
        c->lens[1] = strlen(script);
        if (c->args[0] && send_eval(c) == 0) return;
    }
    c->cb(c->arg, reply);
    c->nargs++; /* free the kept script slot too */
    call_free(c);
}

int eg_redis_eval(eg_redis_t *r, const char *script, int nkeys, int nargs, const char *const *args,
                  const size_t *lens, eg_redis_cb cb, void *arg)
{
    call_t *c = calloc(1, sizeof(*c));
    int total = 3 + nargs;
    if (c) {
        c->args = calloc((size_t)total + 1, sizeof(char *));
        c->lens = calloc((size_t)total + 1, sizeof(size_t));
    }
    if (!c || !c->args || !c->lens || ensure(r) != 0) {
        if (c) {
            c->nargs = total + 1;
            call_free(c);
        }
        cb(arg, NULL);
        return -1;
    }
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->nargs = total;
    char sha[41], nk[16];
    sha1_hex(script, sha);
    snprintf(nk, sizeof(nk), "%d", nkeys);
    c->args[0] = strdup("EVALSHA");
    c->args[1] = strdup(sha);
    c->args[2] = strdup(nk);
    c->lens[0] = 7;
    c->lens[1] = 40;
    c->lens[2] = strlen(nk);
    int ok = c->args[0] && c->args[1] && c->args[2];
    for (int i = 0; ok && i < nargs; i++) {
        c->args[3 + i] = malloc(lens[i] + 1);
        ok = c->args[3 + i] != NULL;
        if (ok) {
            memcpy(c->args[3 + i], args[i], lens[i]);
            c->args[3 + i][lens[i]] = '\0';
            c->lens[3 + i] = lens[i];
        }
    }
    c->args[total] = ok ? strdup(script) : NULL;
    if (!ok || !c->args[total] || send_eval(c) != 0) {
        c->nargs = total + 1;
        call_free(c);
        cb(arg, NULL);
        return -1;
    }
    return 0;
}

void eg_redis_fire(eg_redis_t *r, int argc, const char *const *argv, const size_t *lens)
{
    if (r->ac && r->connected) {
        redisAsyncCommandArgv(r->ac, NULL, NULL, argc, (const char **)argv, lens);
        return;
    }
    /* not connected: a command queued on a connecting context is lost if
     * the connect fails, so keep it here until a connection is up */
    ensure(r);
    if (r->nbacklog == BACKLOG_MAX) return; /* Redis away for long: the entries' own expiry takes over */
    if (r->nbacklog == r->capbacklog) {
        size_t cap = r->capbacklog ? r->capbacklog * 2 : 64;
        char **b = realloc(r->backlog, cap * sizeof(*b));
        if (!b) return;
        r->backlog = b;
        size_t *bl = realloc(r->backlog_len, cap * sizeof(*bl));
        if (!bl) return;
        r->backlog_len = bl;
        r->capbacklog = cap;
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, (const char **)argv, lens);
    if (len < 0) return;
    r->backlog[r->nbacklog] = cmd;
    r->backlog_len[r->nbacklog++] = (size_t)len;
}

int eg_redis_sync_credits(const eg_redis_target_t *t, const char *key_id, long long add, long long *balance,
                          char *err, size_t errlen)
{
    static const char script[] =
        "local v=tonumber(redis.call('GET',KEYS[1]) or '0') local a=tonumber(ARGV[1])\n"
        "if v+a<0 then return {0,v} end\n"
        "if a~=0 then v=redis.call('INCRBY',KEYS[1],a) end return {1,v}\n";
    struct timeval tv = {(time_t)(t->timeout_ms / 1000), (suseconds_t)(t->timeout_ms % 1000 * 1000)};
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
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errlen, "redis %s:%d: %s", t->host, t->port,
                 rep && rep->type == REDIS_REPLY_ERROR ? rep->str : c->errstr[0] ? c->errstr : "unexpected reply");
        goto out;
    }
    *balance = rep->element[1]->integer;
    rc = rep->element[0]->integer == 1 ? 0 : -2;
out:
    if (rep) freeReplyObject(rep);
    if (c) redisFree(c);
    return rc;
}

/* idem_store_redis.c - idempotency entries in Redis, shared by gateway nodes.
 *
 * One string key per entry, <prefix>idem:<scoped key>, whose value is
 *
 *   kind (1 byte: 'i' in flight, 'c' completed) | fingerprint (32) |
 *   owner (16) | record (completed only)
 *
 * with Redis's own expiry: PX lock_ms for a reservation, PX ttl_ms for a
 * response, so a reservation left by a node that died goes by itself, on
 * Redis's clock (the nodes' clocks never matter). Begin is one Lua script,
 * atomic in Redis: GET, then SET NX PX when there is nothing, else the
 * answer (PTTL for one in flight, the record for one completed). Complete
 * and release are scripts too (they check the owner) and go out with
 * eg_redis_fire: nobody waits, and one issued while the connection is down
 * is sent once it is up again (both are idempotent: a second run finds the
 * entry no longer the caller's reservation and does nothing).
 *
 * The connection is the calling worker's (io->redis, redis.h). A begin is
 * answered within timeout_ms: Redis late or down is ERROR, and a reply that
 * comes after that and reserved the key releases it at once.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idem_store_impl.h"
#include "redis.h"

typedef struct {
    eg_idem_store_t base;
    char *prefix;
    uint64_t timeout_ms;
} rd_t;

/* KEYS[1] the entry; ARGV fingerprint, owner, lock_ms. Returns {0}
 * reserved, {1, pttl} in flight, {2, record} completed, {3} mismatch. */
static const char begin_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then\n"
    "  redis.call('SET', KEYS[1], 'i' .. ARGV[1] .. ARGV[2], 'PX', ARGV[3], 'NX')\n"
    "  return {0}\n"
    "end\n"
    "if string.sub(v, 2, 33) ~= ARGV[1] then return {3} end\n"
    "if string.sub(v, 1, 1) == 'i' then return {1, redis.call('PTTL', KEYS[1])} end\n"
    "return {2, string.sub(v, 50)}\n";

/* ARGV fingerprint, owner, record, ttl_ms: stores the response unless the
 * entry is there and is not the caller's reservation. */
static const char complete_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and (string.sub(v, 1, 1) ~= 'i' or string.sub(v, 34, 49) ~= ARGV[2]) then return 0 end\n"
    "redis.call('SET', KEYS[1], 'c' .. ARGV[1] .. ARGV[2] .. ARGV[3], 'PX', ARGV[4])\n"
    "return 1\n";

/* ARGV owner: deletes the entry when it is the caller's reservation. */
static const char release_lua[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and string.sub(v, 1, 1) == 'i' and string.sub(v, 34, 49) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

static size_t entry_key(const rd_t *r, const eg_idem_req_t *req, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%sidem:%s", r->prefix, req->key);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

/* Reads a reply into op->res; record slices point into the reply. */
static void parse(eg_idem_op_t *op, const redisReply *rep)
{
    op->res.record = NULL;
    op->res.len = 0;
    if (!rep) {
        eg_idem_op_error(op, "redis unavailable%s", NULL);
        return;
    }
    if (rep->type == REDIS_REPLY_ERROR) {
        eg_idem_op_error(op, "redis: %s", rep->str);
        return;
    }
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
        rep->element[0]->type != REDIS_REPLY_INTEGER)
        goto bad;
    switch (rep->element[0]->integer) {
    case 0:
        op->res.state = EG_IDEM_RESERVED;
        return;
    case 1:
        if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_INTEGER) goto bad;
        op->res.state = EG_IDEM_IN_FLIGHT;
        /* -1 (no expiry) or -2 (gone since): at least a millisecond */
        op->res.retry_after_ms =
            rep->element[1]->integer > 0 ? (uint64_t)rep->element[1]->integer : 1;
        return;
    case 2:
        if (rep->elements != 2 || rep->element[1]->type != REDIS_REPLY_STRING ||
            rep->element[1]->len == 0)
            goto bad;
        op->res.state = EG_IDEM_COMPLETED;
        op->res.record = (const unsigned char *)rep->element[1]->str;
        op->res.len = rep->element[1]->len;
        return;
    case 3:
        op->res.state = EG_IDEM_MISMATCH;
        return;
    }
bad:
    eg_idem_op_error(op, "redis: unexpected reply to the idempotency script%s", NULL);
}

static void on_deadline(uv_timer_t *t)
{
    eg_idem_op_t *op = t->data;
    if (!op->delivered) {
        eg_idem_op_error(op, "redis timed out%s", NULL);
        eg_idem_op_finish(op);
    }
    uv_close((uv_handle_t *)t, eg_idem_op_timer_closed);
}

static void on_reply(void *arg, void *reply)
{
    eg_idem_op_t *op = arg;
    if (op->in_begin) return; /* a failure inside eg_redis_eval: begin says so */
    if (!uv_is_closing((uv_handle_t *)&op->timer))
        uv_close((uv_handle_t *)&op->timer, eg_idem_op_timer_closed);
    parse(op, reply);
    eg_idem_op_finish(op); /* the callback, or only a release when it came too late */
    op->res.record = NULL; /* the reply is freed after this returns */
    op->res.len = 0;
    eg_idem_op_unref(op);
}

static int rd_begin(eg_idem_store_t *s, eg_idem_op_t *op)
{
    rd_t *r = (rd_t *)s;
    if (!op->redis) return EG_EINVAL;
    char key[512], ms[24];
    size_t klen = entry_key(r, &op->req, key, sizeof(key));
    if (!klen) return EG_EINVAL;
    int mlen = snprintf(ms, sizeof(ms), "%llu", (unsigned long long)op->lock_ms);
    const char *args[] = {key, (const char *)op->req.fp, (const char *)op->req.owner, ms};
    size_t lens[] = {klen, EG_IDEM_HASH_LEN, sizeof(op->req.owner), (size_t)mlen};
    op->refs = 1; /* the reply */
    op->in_begin = 1;
    int rc = eg_redis_eval(op->redis, begin_lua, 1, 4, args, lens, on_reply, op);
    op->in_begin = 0;
    if (rc != 0) return EG_EIO; /* on_reply was called already and did nothing */
    /* the reply cannot come before the loop runs again: the deadline is
     * in place first */
    uv_timer_init(op->loop, &op->timer);
    op->timer.data = op;
    op->refs++;
    uv_timer_start(&op->timer, on_deadline, r->timeout_ms, 0);
    return EG_OK;
}

static int rd_complete(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req,
                       const unsigned char *record, size_t len, uint64_t ttl_ms)
{
    rd_t *r = (rd_t *)s;
    char key[512], ttl[24];
    size_t klen = entry_key(r, req, key, sizeof(key));
    if (!io->redis || !klen) return EG_EINVAL;
    int tlen = snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_ms);
    const char *argv[] = {"EVAL",
                          complete_lua,
                          "1",
                          key,
                          (const char *)req->fp,
                          (const char *)req->owner,
                          (const char *)record,
                          ttl};
    size_t lens[] = {
        4,           sizeof(complete_lua) - 1, 1, klen, EG_IDEM_HASH_LEN, sizeof(req->owner), len,
        (size_t)tlen};
    eg_redis_fire(io->redis, 8, argv, lens);
    return EG_OK;
}

static int rd_release(eg_idem_store_t *s, const eg_idem_io_t *io, const eg_idem_req_t *req)
{
    rd_t *r = (rd_t *)s;
    char key[512];
    size_t klen = entry_key(r, req, key, sizeof(key));
    if (!io->redis || !klen) return EG_EINVAL;
    const char *argv[] = {"EVAL", release_lua, "1", key, (const char *)req->owner};
    size_t lens[] = {4, sizeof(release_lua) - 1, 1, klen, sizeof(req->owner)};
    eg_redis_fire(io->redis, 5, argv, lens);
    return EG_OK;
}

static int rd_purge(eg_idem_store_t *s, size_t *n)
{
    (void)s;
    *n = 0; /* Redis expires its keys itself */
    return EG_OK;
}

static void rd_close(eg_idem_store_t *s)
{
    rd_t *r = (rd_t *)s;
    free(r->prefix);
    free(r);
}

static const eg_idem_ops_t rd_ops = {
    .name = "redis",
    .begin = rd_begin,
    .complete = rd_complete,
    .release = rd_release,
    .purge = rd_purge,
    .purge_later = NULL,
    .close = rd_close};

int eg_idem_redis_open(const eg_idem_store_opts_t *o, eg_idem_store_t **out, char *err,
                       size_t errlen)
{
    rd_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->prefix = strdup(o->redis_prefix ? o->redis_prefix : "errgate:"))) {
        free(r);
        snprintf(err, errlen, "redis idempotency store: out of memory");
        return EG_ENOMEM;
    }
    if (strlen(r->prefix) > 300) {
        snprintf(err, errlen, "redis idempotency store: key prefix longer than 300 bytes");
        rd_close(&r->base);
        return EG_EINVAL;
    }
    eg_idem_store_init(&r->base, &rd_ops, o);
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : 50;
    *out = &r->base;
    return EG_OK;
}

/* idempotency.c - the Idempotency-Key stage (draft-ietf-httpapi-idempotency-
 * key-header-07, as Stripe's idempotent requests): on a route's configured
 * methods, the first request with a key reserves it in the idempotency
 * store and goes on; its response, when final (not 5xx, 408 or 429), is
 * stored and replayed to every retry with the same key and request; a retry
 * while the first is in flight is 409, the key with another request 422.
 *
 * The whole body is needed before the store is asked (the fingerprint
 * hashes it): the stage asks the transport for it (eg_req_read_body), which
 * holds up to max_body (1 MiB by default) before the upstream is contacted,
 * a chunked body decoded. The response is captured as it leaves (r->capture)
 * and stored as a record in on_done: a forwarded one's record is written
 * from its head's fields as the transport relays them (on_response_head)
 * and only its body's bytes are kept; any other answer's head is split from
 * its bytes. One entry per request lives in
 * r->idem from the begin to on_done; while the store's answer is pending
 * the entry belongs to that callback (the client may leave meanwhile).
 * Keys are scoped by principal, route and method (eg_idem_scope_key), so a
 * key never replays another caller's response. See docs/idempotency.md. */
#include "metrics.h"
#include "stage.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "errgate/idempotency.h"
#include "idem_store.h"
#include "redis_link.h"
#include "strbuild.h"

/* The most of a response that is kept for replay (head and body as sent):
 * a larger one is not stored, and its key is released. */
#define IDEM_MAX_RESPONSE (1024 * 1024)
/* Added to the upstream's timeouts for how long a reservation holds. */
#define IDEM_LOCK_MARGIN_MS 2000
/* The longest scope kept as bytes (a principal and a key of 255 each, the
 * route's path, the method); a longer one is named by its SHA-256. */
#define IDEM_SCOPE_MAX 1024

typedef struct eg_idem_ctx_s {
    eg_req_t *c;
    eg_worker_t *w;
    eg_idem_store_t *store;
    int waiting;  /* the begin's callback has not come yet: it owns the entry */
    int reserved; /* this request holds the key: complete or release it */
    uint64_t ttl_ms;
    /* the response as sent, when r->capture; or, after a head in fields
     * (on_response_head), its record's start and the body after it */
    char *cap;
    size_t caplen, capcap;
    size_t wire;           /* the response's bytes so far (IDEM_MAX_RESPONSE) */
    int over;              /* the response outgrew IDEM_MAX_RESPONSE */
    int fields;            /* cap is the record from a head in fields */
    size_t skip;           /* the head's bytes, at the start of the next capture */
    const char *headp;     /* ... from there (else it is not that head) */
    size_t boff;           /* fields: the body's offset in cap */
    int hstatus, hframing; /* fields: the status, the body's framing */
    uint64_t hcl;          /* fields: its Content-Length */
    size_t blen;           /* the request body's length (eg_req_drop_body) */
    uint64_t t0;           /* when an asynchronous begin was sent (metrics: store latency) */
    /* cleared by ctx_new but for key, fp and owner (each written before
     * it is read: entry_of, eg_idem_begin) */
    eg_idem_req_t req;
    /* req.scope's bytes (a store that takes them); last: not cleared */
    unsigned char scope[IDEM_SCOPE_MAX];
} ctx_t;

/* One hasher per worker thread (idempotency.h: not thread-safe). */
static _Thread_local eg_idem_hasher_t *hasher;

/* Per worker thread, so that a request allocates nothing it can reuse:
 * spare entries (with their capture buffers), and the header arrays and
 * record buffer store_response fills (the store copies the record). An
 * entry is made and freed on its worker's thread (the store's callbacks
 * run on its loop). Freed by worker_exit. */
#define IDEM_SPARES   32
#define IDEM_KEEP_BUF (64 * 1024) /* a larger buffer is not kept */
static _Thread_local struct eg_idem_ctx_s *spares[IDEM_SPARES];
static _Thread_local int nspares;
static _Thread_local eg_http_header_t *scratch_hdrs, *scratch_keep;
static _Thread_local size_t scratch_hcap;
static _Thread_local unsigned char *scratch_rec;
static _Thread_local size_t scratch_reccap;

/* s[0..n) equals the lowercase literal lit (n bytes: letters, digits,
 * '-') with eg_http1_lower_eq's folding (exact for parsed names: see
 * http1.h), eight bytes at a time: this runs for every header of every
 * stored response, and a name is one or two words. */
static inline uint64_t ld8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline int name_eq(const char *s, const char *lit, size_t n)
{
    const uint64_t fold = 0x2020202020202020ULL;
    if (n < 8) return eg_http1_lower_eq(s, lit, n);
    for (size_t i = 0; i + 8 < n; i += 8)
        if ((ld8(s + i) | fold) != ld8(lit + i)) return 0;
    return (ld8(s + n - 8) | fold) == ld8(lit + n - 8); /* the last word, overlapping */
}

#define NAME_IS(h, lit) name_eq((h)->name, lit, sizeof(lit) - 1)

static eg_idem_io_t io_of(eg_worker_t *w, eg_idem_store_t *s, const eg_config_t *cfg)
{
    eg_idem_io_t io = {&w->loop, NULL};
    /* memory, the one backend that takes scopes, needs no Redis: no strcmp */
    if (!eg_idem_store_takes_scope(s) && strcmp(eg_idem_store_backend_name(s), "redis") == 0)
        io.redis = cfg ? eg_redis_link_get(w->redis_link, &w->loop, cfg)
                       : eg_redis_link_current(w->redis_link);
    return io;
}

static ctx_t *ctx_new(void)
{
    if (nspares == 0) return calloc(1, sizeof(ctx_t));
    ctx_t *x = spares[--nspares];
    char *cap = x->cap;
    size_t capcap = x->capcap;
    memset(x, 0, offsetof(ctx_t, req));
    x->cap = cap;
    x->capcap = capcap;
    x->req.key[0] = '\0';
    x->req.scope = NULL;
    x->req.scope_len = 0;
    x->req.scope_hash = 0;
    x->req.hint = NULL;
    x->req.hint_slot = 0;
    return x;
}

static void ctx_free(ctx_t *x)
{
    if (nspares < IDEM_SPARES && x->capcap <= IDEM_KEEP_BUF) {
        spares[nspares++] = x;
        return;
    }
    free(x->cap);
    free(x);
}

static eg_stage_rc_t refuse(eg_req_t *c, const char *code, const char *message, const char *why)
{
    eg_req_send_simple(c, code, message, why);
    return EG_STAGE_ANSWERED;
}

static eg_stage_rc_t unavailable(eg_req_t *c, const char *why)
{
    eg_req_send_unavailable(c, "Idempotency keys are temporarily unavailable.", why);
    return EG_STAGE_ANSWERED;
}

/* memcpy for the short strings of a request and its response's fields (a
 * method, a principal, a key, a field's name): up to 32 bytes by words that
 * overlap, without a call (every read within s[0..n)). */
static inline void copy_short(unsigned char *d, const void *src, size_t n)
{
    const unsigned char *s = src;
    uint64_t a, b, c, e;
    if (n >= 8 && n <= 16) {
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
    } else if (n > 16 && n <= 32) {
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        memcpy(&c, s + n - 16, 8);
        memcpy(&e, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + 8, &b, 8);
        memcpy(d + n - 16, &c, 8);
        memcpy(d + n - 8, &e, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else if (n > 32) {
        memcpy(d, s, n);
    } else {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

static inline void be32(unsigned char *o, uint32_t v)
{
    o[0] = (unsigned char)(v >> 24);
    o[1] = (unsigned char)(v >> 16);
    o[2] = (unsigned char)(v >> 8);
    o[3] = (unsigned char)v;
}

/* The store key and fingerprint of the request: the fingerprint one
 * SHA-256 pass over the method, path, query and body (the body is whole:
 * eg_req_read_body, a chunked one decoded); the key's scope as bytes for a
 * store that compares them whole (memory), else their SHA-256. The scope
 * comes first, so that the store starts fetching its slot
 * (eg_idem_prefetch) while the body is hashed. */
static int entry_of(eg_req_t *c, ctx_t *x, const char *key, size_t klen, const char *body,
                    size_t blen)
{
    eg_idem_req_t *out = &x->req;
    const eg_principal_t *p = &c->access.p;
    const char *id = !c->access.authenticated ? c->client_ip
                     : p->key_id[0]           ? p->key_id
                                              : p->consumer;
    const char *tag = !c->access.authenticated ? "ip:" : p->key_id[0] ? "k:" : "u:";
    size_t tl = tag[1] == ':' ? 2 : 3, il = strlen(id);
    if (il > 255 - tl) il = 255 - tl; /* a principal of at most 255 bytes, as it always was */
    const char *route = c->route->path;
    size_t rl = strlen(route), ml = c->req.method_len;
    int rc;
    if (eg_idem_store_takes_scope(x->store) && 16 + tl + il + rl + ml + klen <= sizeof(x->scope)) {
        /* eg_idem_scope_bytes(principal, route, method, key), written in
         * place: each part a 4-byte big-endian length and its bytes */
        unsigned char *o = x->scope;
        be32(o, (uint32_t)(tl + il));
        memcpy(o + 4, tag, 3); /* its third byte is overwritten or the id's */
        copy_short(o + 4 + tl, id, il);
        o += 4 + tl + il;
        be32(o, (uint32_t)rl);
        copy_short(o + 4, route, rl);
        o += 4 + rl;
        be32(o, (uint32_t)ml);
        copy_short(o + 4, c->req.method, ml);
        o += 4 + ml;
        be32(o, (uint32_t)klen);
        copy_short(o + 4, key, klen);
        out->scope = x->scope;
        out->scope_len = (size_t)(o + 4 + klen - x->scope);
        out->key[0] = '\0';
        eg_idem_prefetch(x->store, out);
    } else {
        char who[256];
        memcpy(who, tag, tl);
        memcpy(who + tl, id, il);
        if ((rc = eg_idem_scope_key(hasher, who, tl + il, route, rl, c->req.method, ml, key, klen,
                                    out->key)) != EG_OK)
            return rc;
    }
    size_t tlen;
    const char *t = eg_req_origin_form(c, &tlen);
    const char *q = memchr(t, '?', tlen);
    size_t qlen = q ? tlen - (size_t)(q - t) - 1 : 0;
    return eg_idem_fingerprint_body(hasher, c->req.method, c->req.method_len, c->path, c->path_len,
                                    q ? q + 1 : NULL, qlen, body, blen, out->fp);
}

/* ------------------------------------------------------------ replay */

static int scratch_headers(size_t n);

/* The stored response again, with this request's id, Date and limits. A
 * record may hold up to EG_IDEM_RECORD_MAX_HEADERS fields (max_headers):
 * past the 128 on the stack, the thread's header array takes them. */
static void replay(eg_req_t *c, const unsigned char *rec, size_t len)
{
    eg_http_header_t hdrs[128];
    eg_idem_record_t r;
    int rc = eg_idem_record_decode(rec, len, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &r);
    if (rc == EG_ERANGE && scratch_headers(EG_IDEM_RECORD_MAX_HEADERS))
        rc = eg_idem_record_decode(rec, len, scratch_hdrs, EG_IDEM_RECORD_MAX_HEADERS, &r);
    if (rc != EG_OK) {
        unavailable(c, "idempotency store returned a record that does not decode");
        return;
    }
    const eg_config_t *cfg = c->gw->cfg;
    size_t cap = 512 + strlen(c->rl_hdrs) + r.body_len;
    for (size_t i = 0; i < r.nheaders; i++)
        cap += r.headers[i].name_len + r.headers[i].value_len + 4;
    char *buf = malloc(cap);
    if (!buf) {
        eg_req_send_simple(c, "internal_error", NULL, "out of memory");
        return;
    }
    /* the body, if any, is still in the buffer: it would be taken for a request */
    if (!c->body_done) c->keep_alive = 0;
    int bodyless = r.status < 200 || r.status == 204 || r.status == 304;
    eg_sb_t b = eg_sb(buf, cap);
    EG_SB_LIT(&b, "HTTP/1.1 ");
    eg_sb_u64(&b, (unsigned)r.status);
    EG_SB_LIT(&b, " ");
    eg_sb_str(&b, eg_reason_phrase(r.status));
    EG_SB_LIT(&b, "\r\n");
    for (size_t i = 0; i < r.nheaders; i++) {
        eg_sb_mem(&b, r.headers[i].name, r.headers[i].name_len);
        EG_SB_LIT(&b, ": ");
        eg_sb_mem(&b, r.headers[i].value, r.headers[i].value_len);
        EG_SB_LIT(&b, "\r\n");
    }
    EG_SB_LIT(&b, "Date: ");
    eg_sb_str(&b, eg_req_clock(c)->date);
    EG_SB_LIT(&b, "\r\n");
    eg_sb_str(&b, cfg->request_id_header);
    EG_SB_LIT(&b, ": ");
    eg_sb_str(&b, c->reqid);
    EG_SB_LIT(&b, "\r\nIdempotent-Replayed: true\r\n");
    eg_sb_str(&b, c->rl_hdrs);
    if (!bodyless) {
        EG_SB_LIT(&b, "Content-Length: ");
        eg_sb_u64(&b, r.body_len);
        EG_SB_LIT(&b, "\r\n");
    }
    if (c->keep_alive)
        EG_SB_LIT(&b, "Connection: keep-alive\r\n\r\n");
    else
        EG_SB_LIT(&b, "Connection: close\r\n\r\n");
    if (!bodyless && c->method_bit != EG_M_HEAD) eg_sb_mem(&b, (const char *)r.body, r.body_len);
    eg_respond_info_t info = {.status = r.status};
    eg_req_answer(c, buf, b.over ? 0 : b.len, &info, "idempotent replay");
    free(buf);
}

/* ------------------------------------------------------------ the store's answer */

/* What the store said, at once or from its callback: go on (the key is
 * this request's; its response is captured) or answer now. */
static eg_stage_rc_t answer_of(eg_req_t *c, ctx_t *x, const eg_idem_result_t *res)
{
    switch (res->state) {
    case EG_IDEM_RESERVED:
        x->reserved = 1;
        c->capture = 1;
        return EG_STAGE_CONTINUE;
    default:
        break;
    }
    eg_req_drop_body(c, x->blen); /* answered here: the connection goes on */
    switch (res->state) {
    case EG_IDEM_RESERVED:
        return EG_STAGE_CONTINUE; /* not reached */
    case EG_IDEM_COMPLETED:
        eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_REPLAYED);
        replay(c, res->record, res->len);
        return EG_STAGE_ANSWERED;
    case EG_IDEM_IN_FLIGHT: {
        eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_CONFLICT);
        eg_error_t *e = eg_req_error(c, "idempotency_key_in_use");
        if (e) eg_error_set_retry_after(e, (long long)((res->retry_after_ms + 999) / 1000));
        eg_req_send_error(c, e, NULL, "idempotency key in flight");
        return EG_STAGE_ANSWERED;
    }
    case EG_IDEM_MISMATCH:
        eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_MISMATCH);
        eg_req_send_simple(c, "idempotency_key_mismatch", NULL,
                           "idempotency key used for another request");
        return EG_STAGE_ANSWERED;
    case EG_IDEM_ERROR:
    default:
        return unavailable(c, res->why ? res->why : "idempotency store failed");
    }
}

static void begin_done(void *arg, const eg_idem_result_t *res)
{
    ctx_t *x = arg;
    eg_req_t *c = x->c;
    x->waiting = 0;
    if (!eg_req_wait_over(c)) { /* the client left: on_done ran and left us the entry */
        if (res->state == EG_IDEM_RESERVED) {
            eg_idem_io_t io = io_of(x->w, x->store, NULL);
            eg_idem_release(x->store, &io, &x->req);
        }
        ctx_free(x);
        return;
    }
    eg_metrics_store(c->gw->metrics, c->w->id,
                     strcmp(eg_idem_store_backend_name(x->store), "redis") == 0
                         ? EG_MX_STORE_REDIS
                         : EG_MX_STORE_SQLITE,
                     EG_MX_OP_IDEMPOTENCY, uv_hrtime() - x->t0, res->state != EG_IDEM_ERROR);
    if (res->state != EG_IDEM_RESERVED) eg_req_wake(c); /* an answer follows */
    if (answer_of(c, x, res) == EG_STAGE_CONTINUE) eg_req_resume(c, 1);
}

/* ------------------------------------------------------------ the stage */

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    if (!(r->idem_methods & c->method_bit)) return EG_STAGE_CONTINUE;
    const eg_http_header_t *h = NULL;
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const eg_http_header_t *x = &c->req.headers[i];
        /* a parsed name: the folding is exact */
        if (x->name_len != 15 || !NAME_IS(x, "idempotency-key")) continue;
        if (h)
            return refuse(c, "invalid_idempotency_key",
                          "Send one Idempotency-Key header, not several.",
                          "two Idempotency-Key headers");
        h = x;
    }
    if (!h) {
        if (!r->idem_required) return EG_STAGE_CONTINUE;
        eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_MISSING);
        return refuse(c, "idempotency_key_missing", NULL,
                      "no Idempotency-Key on a route that requires it");
    }
    char key[EG_IDEM_KEY_MAX + 1];
    size_t klen = 0;
    if (eg_idem_key_parse(h->value, h->value_len, key, &klen) != EG_OK)
        return refuse(c, "invalid_idempotency_key", NULL, "malformed Idempotency-Key");
    eg_idem_store_t *store = eg_server_idem_store(c->w->srv);
    if (!store)
        return unavailable(
            c, "no idempotency store (idempotency was configured after start: restart)");
    const char *body = NULL;
    size_t blen = 0;
    int rc = eg_req_read_body(c, r->idem_max_body, &body, &blen);
    if (rc == 0) return EG_STAGE_SUSPENDED; /* on_request runs again with more of the body */
    if (rc == EG_ETOOBIG) {
        eg_error_t *e = eg_req_error(c, "payload_too_large");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE,
                          "The body is larger than the %llu bytes an idempotent request may have.",
                          (unsigned long long)r->idem_max_body);
            eg_error_set_detail(e, "max_body", json_integer((json_int_t)r->idem_max_body));
        }
        eg_req_send_error(c, e, NULL, "body over the idempotency max_body");
        return EG_STAGE_ANSWERED;
    }
    if (rc == EG_EPARSE)
        return refuse(c, "bad_request", "Malformed chunked body.", "malformed chunked body");
    if (rc < 0) return EG_STAGE_ANSWERED; /* the client is gone: closed */
    if (!hasher && eg_idem_hasher_new(&hasher) != EG_OK)
        return unavailable(c, "cannot make a SHA-256 hasher");
    ctx_t *x = ctx_new();
    if (!x) return refuse(c, "internal_error", NULL, "out of memory");
    x->c = c;
    x->w = c->w;
    x->store = store;
    x->ttl_ms = r->idem_ttl_ms;
    x->blen = blen;
    if (entry_of(c, x, key, klen, body, blen) != EG_OK) {
        ctx_free(x);
        return unavailable(c, "cannot fingerprint the request");
    }
    const eg_config_t *cfg = c->gw->cfg;
    const eg_upstream_cfg_t *u = &cfg->upstreams[r->upstream];
    uint64_t lock_ms = u->connect_timeout_ms + u->timeout_ms;
    if (u->total_timeout_ms > lock_ms) lock_ms = u->total_timeout_ms;
    lock_ms += IDEM_LOCK_MARGIN_MS;
    c->idem = x; /* on_done frees it, whatever the answer */
    /* a store that decides at once (memory) answers without a wait */
    eg_idem_result_t now;
    unsigned char *rec = NULL;
    if ((rc = eg_idem_begin_now(store, &x->req, lock_ms, &now, &rec)) == EG_OK) {
        eg_stage_rc_t out = answer_of(c, x, &now);
        free(rec);
        return out;
    }
    c->idem = NULL;
    eg_idem_io_t io = io_of(c->w, store, cfg);
    x->t0 = uv_hrtime();
    if (rc == EG_EAGAIN) rc = eg_idem_begin(store, &io, &x->req, lock_ms, begin_done, x, NULL);
    if (rc != EG_OK) {
        ctx_free(x);
        return unavailable(c, rc == EG_EIO ? "idempotency store unreachable"
                                           : "idempotency store refused a begin");
    }
    c->idem = x;
    x->waiting = 1;
    eg_req_wait(c, x, 0, NULL); /* the store answers within its own timeout */
    return EG_STAGE_SUSPENDED;
}

/* cap with room for n bytes in all; 0 when out of memory. */
static int cap_room(ctx_t *x, size_t n)
{
    if (n <= x->capcap) return 1;
    size_t want = x->capcap ? x->capcap * 2 : 4096;
    while (want < n)
        want *= 2;
    char *p = realloc(x->cap, want);
    if (!p) return 0;
    x->cap = p;
    x->capcap = want;
    return 1;
}

/* The response's bytes: after a head in fields, the body's are kept after
 * the record's start (the head's own are skipped); else all of them, split
 * in on_done. */
static void on_response_bytes(eg_req_t *c, const char *data, size_t n)
{
    ctx_t *x = c->idem;
    if (!x || x->over) return;
    if (x->skip) {
        if (data == x->headp && n >= x->skip) {
            data += x->skip;
            n -= x->skip;
            x->wire = x->skip;
        } else { /* not the head given in fields (the transport answered otherwise) */
            x->fields = 0;
            x->caplen = 0;
            x->wire = 0;
        }
        x->skip = 0;
    }
    if (x->wire + n > IDEM_MAX_RESPONSE) {
        x->over = 1;
        return;
    }
    x->wire += n;
    if (!cap_room(x, x->caplen + n)) {
        x->over = 1;
        return;
    }
    memcpy(x->cap + x->caplen, data, n);
    x->caplen += n;
}

/* field_kind() past the names it knows by length: Proxy-*, X-RateLimit-*, the
 * request id and what Connection names. */
static inline __attribute__((always_inline)) int
kept_rest(const eg_http_header_t *h, const eg_http_header_t *conn, const char *rid, size_t rid_len)
{
    /* the names were parsed (here, or by the gateway when they came in):
     * no control bytes, so the folding is exact for them */
    char c0 = (char)(h->name[0] | 0x20);
    if (c0 == 'p' && h->name_len >= 6 && name_eq(h->name, "proxy-", 6)) return 0;
    if (c0 == 'x' && h->name_len >= 12 && name_eq(h->name, "x-ratelimit-", 12)) return 0;
    /* the gateway writes the request id's name as configured: memcmp first */
    if (h->name_len == rid_len && c0 == (char)(rid[0] | 0x20) &&
        (memcmp(h->name, rid, rid_len) == 0 || strncasecmp(h->name, rid, rid_len) == 0))
        return 0;
    if (conn) {
        char name[256];
        if (h->name_len >= sizeof(name)) return 1;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        if (eg_http1_has_token(conn->value, conn->value_len, name)) return 0;
    }
    return 1;
}

/* What a field of a head means for its record: 1 kept (replayed), 0 not
 * (hop-by-hop, framing, per response, what Connection (conn) names), -1 what
 * the record's fast paths do not take (two Content-Lengths or a bad one, a
 * coding other than chunked, a Connection naming more than keep-alive or
 * close: the head is parsed fully then). Content-Length and chunked are
 * noted in *cl, *has_cl and *chunked. */
static inline __attribute__((always_inline)) int field_kind(const eg_http_header_t *h,
                                                            const eg_http_header_t *conn,
                                                            const char *rid, size_t rid_len,
                                                            uint64_t *cl, int *has_cl, int *chunked)
{
    switch (h->name_len) { /* sorted by length first: this runs for every field of every response */
    case 2:
        if (NAME_IS(h, "te")) return 0;
        break;
    case 4:
        if (NAME_IS(h, "date")) return 0;
        break;
    case 7:
        if (NAME_IS(h, "trailer") || NAME_IS(h, "upgrade")) return 0;
        break;
    case 9:
        if (NAME_IS(h, "ratelimit")) return 0;
        break;
    case 10:
        if (NAME_IS(h, "keep-alive")) return 0;
        if (!NAME_IS(h, "connection")) break;
        if (!((h->value_len == 10 && eg_http1_lower_eq(h->value, "keep-alive", 10)) ||
              (h->value_len == 5 && eg_http1_lower_eq(h->value, "close", 5))))
            return -1;
        return 0;
    case 14:
        if (!NAME_IS(h, "content-length")) break;
        if (*has_cl || !h->value_len || h->value_len > 15) return -1;
        uint64_t v = 0;
        for (size_t i = 0; i < h->value_len; i++) {
            unsigned dg = (unsigned)(h->value[i] - '0');
            if (dg > 9) return -1;
            v = v * 10 + dg;
        }
        *cl = v;
        *has_cl = 1;
        return 0;
    case 16:
        if (NAME_IS(h, "ratelimit-policy")) return 0;
        break;
    case 17:
        if (!NAME_IS(h, "transfer-encoding")) break;
        if (*chunked || h->value_len != 7 || !eg_http1_lower_eq(h->value, "chunked", 7)) return -1;
        *chunked = 1;
        return 0;
    default:
        break;
    }
    return kept_rest(h, conn, rid, rid_len);
}

/* Hop-by-hop and per-response fields are not replayed: the replay frames
 * its body and has its own request id, date and rate-limit state. One list
 * of names for both ways a record is made: field_kind(). */
static inline __attribute__((always_inline)) int
kept(const eg_http_header_t *h, const eg_http_header_t *conn, const char *rid, size_t rid_len)
{
    uint64_t cl = 0;
    int has_cl = 0, chunked = 0;
    return field_kind(h, conn, rid, rid_len, &cl, &has_cl, &chunked) == 1;
}

/* Whether a Connection field lists only keep-alive (what upstreams send):
 * a field of that name is dropped anyway, so no other one needs to be
 * looked up in it. */
static int conn_names_nothing(const eg_http_header_t *conn)
{
    size_t pos = 0, len;
    const char *tok;
    while (eg_http1_next_token(conn->value, conn->value_len, &pos, &tok, &len) == 1)
        if (len != 10 || strncasecmp(tok, "keep-alive", 10) != 0) return 0;
    return 1;
}

/* The thread's header arrays, at least n long; 0 when out of memory. */
static int scratch_headers(size_t n)
{
    if (scratch_hcap >= n) return 1;
    eg_http_header_t *a = realloc(scratch_hdrs, n * sizeof(*a));
    if (a) scratch_hdrs = a;
    eg_http_header_t *b = a ? realloc(scratch_keep, n * sizeof(*b)) : NULL;
    if (b) scratch_keep = b;
    if (!a || !b) return 0;
    scratch_hcap = n;
    return 1;
}

/* eg_idem_record_put, inline (a name and a value a header kept). */
static inline unsigned char *put(unsigned char *o, const char *p, size_t n)
{
    o[0] = (unsigned char)(n >> 24);
    o[1] = (unsigned char)(n >> 16);
    o[2] = (unsigned char)(n >> 8);
    o[3] = (unsigned char)n;
    copy_short(o + 4, p, n);
    return o + 4 + n;
}

/* The head the gateway wrote, as store_response needs it. */
typedef struct {
    int status;
    eg_framing_t framing;
    uint64_t content_length;
    size_t head; /* its length */
} head_t;

/* The thread's record buffer, at least n bytes; 0 when out of memory. */
static int scratch_record(size_t n)
{
    if (scratch_reccap >= n) return 1;
    size_t want = scratch_reccap ? scratch_reccap : 1024;
    while (want < n)
        want *= 2;
    unsigned char *p = realloc(scratch_rec, want);
    if (!p) return 0;
    scratch_rec = p;
    scratch_reccap = want;
    return 1;
}

/* Cuts the "Name: value" line at *line (before end) into *h and moves *line
 * past it: 1; 0 at the empty line that ends a head; -1 for a line the
 * gateway would not have written (folded, without a colon, not ended by
 * CRLF). The value is trimmed (the gateway writes it trimmed: the loops
 * only run for a head written otherwise). */
static inline int cut_line(const char **line, const char *end, eg_http_header_t *h)
{
    const char *l = *line, *nl = memchr(l, '\n', (size_t)(end - l));
    if (!nl || nl == l || nl[-1] != '\r') return -1;
    if (nl == l + 1) {
        *line = nl + 1;
        return 0;
    }
    const char *colon = memchr(l, ':', (size_t)(nl - l));
    if (!colon || colon == l || l[0] == ' ' || l[0] == '\t' || colon[-1] == ' ') return -1;
    const char *v = colon + 1, *ve = nl - 1;
    if (v < ve && *v == ' ') v++;
    if (__builtin_expect(v < ve && (*v == ' ' || *v == '\t'), 0))
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
    if (__builtin_expect(ve > v && (ve[-1] == ' ' || ve[-1] == '\t'), 0))
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
    *h = (eg_http_header_t){l, (size_t)(colon - l), v, (size_t)(ve - v)};
    *line = nl + 1;
    return 1;
}

/* The framing of a stored response's body, as the head says. */
static eg_framing_t framing_of(int head_req, int status, int chunked, int has_cl)
{
    if (head_req || status < 200 || status == 204 || status == 304) return EG_FRAMING_NONE;
    if (chunked) return EG_FRAMING_CHUNKED;
    return has_cl ? EG_FRAMING_LENGTH : EG_FRAMING_UNTIL_CLOSE;
}

/* Writes the record of a captured head p[0..n) into scratch_rec as it
 * splits it, without the HTTP parser: every head the transport sends (the
 * upstream's re-written, a translated error, a gateway error) was written
 * by the gateway, one "Name: value" line each, from fields whose bytes its
 * parser had already checked (names tokens, values without control bytes:
 * what the record allows), or from its own configuration. So the lines are
 * only cut at CRLF and colon, and the headers to replay written to the
 * record as they are met (the record is checked again where it is read
 * back, eg_idem_record_decode, before any replay). Anything unexpected (a
 * folded or colon-less line, field_kind's -1, too many headers) returns 0:
 * the caller parses the head fully then. On success the record's headers
 * are written (*rlen bytes; the body's length and body are the caller's)
 * and *out holds the head's status, framing and length. */
static int split_record(const char *p, size_t n, int head_req, const char *rid, size_t rid_len,
                        size_t hmax, head_t *out, size_t *rlen)
{
    if (n < 16 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '1' && p[7] != '0') || p[8] != ' ')
        return 0;
    unsigned d0 = (unsigned)(p[9] - '0'), d1 = (unsigned)(p[10] - '0'),
             d2 = (unsigned)(p[11] - '0');
    if (d0 - 1 > 4 || d1 > 9 || d2 > 9 || (p[12] != ' ' && p[12] != '\r')) return 0;
    int status = (int)(d0 * 100 + d1 * 10 + d2), chunked = 0, has_cl = 0;
    uint64_t cl = 0;
    size_t nk = 0;
    const char *end = p + n, *line = memchr(p + 12, '\n', n - 12);
    if (!line || line[-1] != '\r') return 0;
    if (!scratch_record(EG_IDEM_RECORD_START)) return 0;
    eg_idem_record_start(scratch_rec, status);
    size_t off = EG_IDEM_RECORD_START; /* scratch_rec may move as it grows */
    for (line++;;) {
        eg_http_header_t h;
        int got = cut_line(&line, end, &h);
        if (got < 0) return 0;
        if (got == 0) { /* the empty line: the head's end */
            out->status = status;
            out->content_length = cl;
            out->head = (size_t)(line - p);
            out->framing = framing_of(head_req, status, chunked, has_cl);
            eg_idem_record_count(scratch_rec, nk);
            *rlen = off;
            return 1;
        }
        int k = field_kind(&h, NULL, rid, rid_len, &cl, &has_cl, &chunked);
        if (k < 0) return 0;
        if (!k) continue;
        size_t need = off + 8 + h.name_len + h.value_len;
        if (nk == hmax || (need > scratch_reccap && !scratch_record(need))) return 0;
        nk++;
        off = (size_t)(put(put(scratch_rec + off, h.name, h.name_len), h.value, h.value_len) -
                       scratch_rec);
    }
}

/* The most headers a record is written with (limits.max_headers). */
static size_t record_hmax(const eg_config_t *cfg)
{
    size_t hcap = cfg->limits.max_headers ? cfg->limits.max_headers : 100;
    return hcap > EG_IDEM_RECORD_MAX_HEADERS ? EG_IDEM_RECORD_MAX_HEADERS : hcap;
}

/* A forwarded response's head in fields (see stage.h): the record's start
 * is written from them into cap (what split_record would write from the
 * head's bytes: the same fields, by field_kind, in the same order), and the
 * head's bytes are skipped when they come, so that only the body is kept
 * after it. Anything split_record would refuse leaves the bytes to it. */
static void on_response_head(eg_req_t *c, const eg_resp_head_t *h)
{
    ctx_t *x = c->idem;
    if (!x || x->over || x->caplen || x->fields || h->status < 100 || h->status > 599) return;
    const eg_config_t *cfg = c->gw->cfg;
    size_t hmax = record_hmax(cfg), nk = 0;
    /* a line of the head, "Name: value\r\n", is at most 4 bytes shorter
     * than its field in the record */
    if (h->len > IDEM_MAX_RESPONSE || !cap_room(x, EG_IDEM_RECORD_START + 4 + 2 * h->len)) return;
    unsigned char *rec = (unsigned char *)x->cap, *o = rec + EG_IDEM_RECORD_START;
    uint64_t cl = 0;
    int has_cl = 0, chunked = 0;
    /* the transport relays no field named as the request id: no name
     * has the length 0 */
    for (size_t i = 0; i < h->nrelayed; i++) {
        const eg_http_header_t *f = &h->headers[h->relayed[i]];
        int k = field_kind(f, NULL, NULL, 0, &cl, &has_cl, &chunked);
        if (k < 0) return;
        if (!k) continue;
        if (nk++ == hmax) return;
        o = put(put(o, f->name, f->name_len), f->value, f->value_len);
    }
    /* Date and the request id (not kept) come between them and these */
    const char *rid = cfg->request_id_header;
    int added = (h->added_len[0] | h->added_len[1] | h->added_len[2]) != 0;
    size_t rid_len = added ? strlen(rid) : 0;
    for (int a = 0; added && a < 3; a++) {
        if (!h->added_len[a]) continue;
        const char *line = h->added[a], *end = line + h->added_len[a];
        while (line < end) {
            eg_http_header_t f;
            if (cut_line(&line, end, &f) <= 0) return;
            int k = field_kind(&f, NULL, rid, rid_len, &cl, &has_cl, &chunked);
            if (k < 0) return;
            if (!k) continue;
            if (nk++ == hmax) return;
            o = put(put(o, f.name, f.name_len), f.value, f.value_len);
        }
    }
    if (h->chunked) { /* the "Transfer-Encoding: chunked" the head ends with */
        if (chunked) return;
        chunked = 1;
    }
    eg_idem_record_start(rec, h->status);
    eg_idem_record_count(rec, nk);
    x->fields = 1;
    x->skip = h->len;
    x->headp = h->bytes;
    x->hstatus = h->status;
    x->hframing = framing_of(c->method_bit == EG_M_HEAD, h->status, chunked, has_cl);
    x->hcl = cl;
    x->boff = (size_t)(o - rec) + 4; /* the body's length, then the body */
    x->caplen = x->boff;
}

/* The head parsed fully (what split_record does not take) and its record's
 * headers written with eg_idem_record_encode: 1, or 0 when it does not parse
 * or cannot be recorded. */
static int parse_record(const char *p, size_t n, int head_req, const eg_config_t *cfg,
                        size_t rid_len, size_t hcap, head_t *out, size_t *rlen)
{
    if (!scratch_headers(hcap)) return 0;
    eg_http_header_t *hdrs = scratch_hdrs, *keep = scratch_keep; /* the parser fills what it uses */
    eg_http1_limits_t lim = {n, hcap, 0};
    eg_http1_msg_t m;
    size_t scanned = 0, nk = 0;
    int h = eg_http1_parse_response(p, n, &lim, hdrs, hcap, &scanned, head_req, &m);
    if (h <= 0) return 0;
    /* "Connection: keep-alive", the usual one, names no other field */
    const eg_http_header_t *conn = m.connection;
    if (conn && conn_names_nothing(conn)) conn = NULL;
    for (size_t i = 0; i < m.nheaders; i++)
        if (kept(&m.headers[i], conn, cfg->request_id_header, rid_len)) keep[nk++] = m.headers[i];
    out->head = (size_t)h;
    out->status = m.status;
    out->framing = m.framing;
    out->content_length = m.content_length;
    /* the headers alone (no body yet): encode checks them */
    eg_idem_record_t r = {m.status, keep, nk, NULL, 0};
    size_t need = eg_idem_record_size(&r), len = 0;
    if (!need || !scratch_record(need) ||
        eg_idem_record_encode(&r, scratch_rec, need, &len) != EG_OK)
        return 0;
    *rlen = len - 4; /* without the empty body's length */
    return 1;
}

/* The captured response as a record: 1 when stored, 0 when it is not to
 * be (incomplete, not final, too large) and the key is released. */
static int store_response(eg_req_t *c, ctx_t *x)
{
    /* skip: the head given in fields never came as bytes (not sent) */
    if (x->over || !x->caplen || c->cut || x->skip) return 0;
    const eg_config_t *cfg = c->gw ? c->gw->cfg : NULL;
    if (!cfg) return 0;
    int stored = 0;
    head_t hd;
    unsigned char *rec; /* the record: its start, rlen bytes, then the body's length and body */
    size_t rlen = 0;
    if (x->fields) { /* written already, the body after it */
        rec = (unsigned char *)x->cap;
        rlen = x->boff - 4;
        hd = (head_t){x->hstatus, (eg_framing_t)x->hframing, x->hcl, x->boff};
    } else {
        size_t hcap = record_hmax(cfg), rid_len = strlen(cfg->request_id_header);
        int head_req = c->method_bit == EG_M_HEAD;
        if (!split_record(x->cap, x->caplen, head_req, cfg->request_id_header, rid_len, hcap, &hd,
                          &rlen) &&
            !parse_record(x->cap, x->caplen, head_req, cfg, rid_len, hcap, &hd, &rlen))
            goto out;
        rec = scratch_rec;
    }
    if (hd.status >= 500 || hd.status == 408 || hd.status == 429 || hd.status < 200) goto out;
    char *body = x->cap + hd.head;
    size_t blen = x->caplen - hd.head;
    if (hd.framing == EG_FRAMING_LENGTH) {
        if (blen < hd.content_length) goto out;
        blen = (size_t)hd.content_length;
    } else if (hd.framing == EG_FRAMING_CHUNKED) {
        eg_chunked_t ck;
        memset(&ck, 0, sizeof(ck));
        size_t rest = 0;
        if (eg_chunked_decode(&ck, body, &blen, 8192, &rest) != EG_OK) goto out;
    } else if (hd.framing == EG_FRAMING_NONE) {
        blen = 0;
    }
    if (blen > UINT32_MAX) goto out;
    size_t len;
    if (x->fields) { /* the body is in place (decoded in place when chunked) */
        len = rlen + 4 + blen;
        rec[rlen] = (unsigned char)(blen >> 24);
        rec[rlen + 1] = (unsigned char)(blen >> 16);
        rec[rlen + 2] = (unsigned char)(blen >> 8);
        rec[rlen + 3] = (unsigned char)blen;
    } else {
        if (!scratch_record(rlen + 4 + blen)) goto out;
        rec = scratch_rec;
        len = (size_t)(eg_idem_record_put(rec + rlen, body, blen) - rec);
    }
    eg_idem_io_t io = io_of(x->w, x->store, cfg);
    stored = eg_idem_complete(x->store, &io, &x->req, rec, len, x->ttl_ms) == EG_OK;
    if (stored) eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_STORED);
out:
    if (scratch_reccap > IDEM_KEEP_BUF) { /* a large record's buffer is not kept */
        free(scratch_rec);
        scratch_rec = NULL;
        scratch_reccap = 0;
    }
    return stored;
}

/* The response is whole (store it, if final) or there is none (release). */
static void on_done(eg_req_t *c)
{
    ctx_t *x = c->idem;
    if (!x || x->waiting) return; /* waiting: the begin's callback has it */
    /* the store's slot and entry come from memory while the head is split */
    if (x->reserved) eg_idem_prefetch(x->store, &x->req);
    c->idem = NULL;
    c->capture = 0;
    if (x->reserved && !store_response(c, x)) {
        eg_idem_io_t io = io_of(x->w, x->store, c->gw ? c->gw->cfg : NULL);
        eg_idem_release(x->store, &io, &x->req);
    }
    ctx_free(x);
}

static void worker_exit(eg_worker_t *w)
{
    (void)w;
    eg_idem_hasher_free(hasher);
    hasher = NULL;
    while (nspares > 0) {
        ctx_t *x = spares[--nspares];
        free(x->cap);
        free(x);
    }
    free(scratch_hdrs);
    free(scratch_keep);
    free(scratch_rec);
    scratch_hdrs = scratch_keep = NULL;
    scratch_rec = NULL;
    scratch_hcap = scratch_reccap = 0;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    (void)cfg;
    return route->idem_methods != 0;
}

const eg_stage_t eg_stage_idempotency = {.name = "idempotency",
                                         .applies = applies,
                                         .on_request = on_request,
                                         .on_done = on_done,
                                         .on_response_bytes = on_response_bytes,
                                         .on_response_head = on_response_head,
                                         .worker_exit = worker_exit};

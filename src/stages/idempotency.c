/* idempotency.c - the Idempotency-Key stage (draft-ietf-httpapi-idempotency-
 * key-header-07, as Stripe's idempotent requests): on a route's configured
 * methods, the first request with a key reserves it in the idempotency
 * store and goes on; its response, when final (not 5xx, 408 or 429), is
 * stored and replayed to every retry with the same key and request; a retry
 * while the first is in flight is 409, the key with another request 422.
 *
 * The whole body is needed before the store is asked (the fingerprint
 * hashes it): the stage asks the transport for it (eg_req_read_body), which
 * keeps it in the connection's buffer, so max_body is at most that buffer's
 * body room (64 KiB). The response is captured as it leaves (r->capture)
 * and turned into a record in on_done. One entry per request lives in
 * r->idem from the begin to on_done; while the store's answer is pending
 * the entry belongs to that callback (the client may leave meanwhile).
 * Keys are scoped by principal, route and method (eg_idem_scope_key), so a
 * key never replays another caller's response. See docs/idempotency.md. */
#include "metrics.h"
#include "stage.h"

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

typedef struct eg_idem_ctx_s {
    eg_req_t *c;
    eg_worker_t *w;
    eg_idem_store_t *store;
    eg_idem_req_t req;
    int waiting;  /* the begin's callback has not come yet: it owns the entry */
    int reserved; /* this request holds the key: complete or release it */
    uint64_t ttl_ms;
    char *cap; /* the response as sent, when r->capture */
    size_t caplen, capcap;
    int over; /* the response outgrew IDEM_MAX_RESPONSE */
    size_t framed; /* the request body's bytes in the buffer, as framed */
    uint64_t t0; /* when an asynchronous begin was sent (metrics: store latency) */
} ctx_t;

/* One hasher per worker thread (idempotency.h: not thread-safe). */
static _Thread_local eg_idem_hasher_t *hasher;

static eg_idem_io_t io_of(eg_worker_t *w, eg_idem_store_t *s, const eg_config_t *cfg)
{
    eg_idem_io_t io = {&w->loop, NULL};
    if (strcmp(eg_idem_store_backend_name(s), "redis") == 0)
        io.redis = cfg ? eg_redis_link_get(w->redis_link, &w->loop, cfg)
                       : eg_redis_link_current(w->redis_link);
    return io;
}

static void ctx_free(ctx_t *x)
{
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
    eg_error_t *e = eg_req_error(c, "service_unavailable");
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, "Idempotency keys are temporarily unavailable.");
        eg_error_set_retry_after(e, 1);
    }
    eg_req_send_error(c, e, NULL, why);
    return EG_STAGE_ANSWERED;
}

/* The body's SHA-256: its bytes, or a chunked body's data. */
static int hash_body(eg_req_t *c, const char *body, size_t n, unsigned char out[EG_IDEM_HASH_LEN])
{
    eg_idem_body_hash_t b;
    int rc = eg_idem_body_hash_init(hasher, &b);
    if (rc) return rc;
    if (c->req.framing == EG_FRAMING_CHUNKED) {
        eg_chunked_t ck;
        memset(&ck, 0, sizeof(ck));
        size_t at = 0;
        while (at < n && rc == 0) {
            size_t used = 0, dlen = 0;
            const char *d = NULL;
            int r = eg_chunked_data(&ck, body + at, n - at, 8192, &used, &d, &dlen);
            if (r == EG_EPARSE)
                rc = EG_EPARSE;
            else if (dlen)
                rc = eg_idem_body_hash_update(&b, d, dlen);
            at += used;
            if (r == EG_OK) break;
        }
    } else if (n) {
        rc = eg_idem_body_hash_update(&b, body, n);
    }
    if (rc) {
        eg_idem_body_hash_clear(&b);
        return rc;
    }
    return eg_idem_body_hash_final(&b, out);
}

/* The store key and fingerprint of the request. */
static int entry_of(eg_req_t *c, const char *key, size_t klen, const char *body, size_t blen,
                    eg_idem_req_t *out)
{
    unsigned char bh[EG_IDEM_HASH_LEN];
    int rc = hash_body(c, body, blen, bh);
    if (rc) return rc;
    size_t tlen;
    const char *t = eg_req_origin_form(c, &tlen);
    const char *q = memchr(t, '?', tlen);
    size_t qlen = q ? tlen - (size_t)(q - t) - 1 : 0;
    rc = eg_idem_fingerprint(hasher, c->req.method, c->req.method_len, c->path, c->path_len,
                             q ? q + 1 : NULL, qlen, bh, out->fp);
    if (rc) return rc;
    char who[256];
    const eg_principal_t *p = &c->access.p;
    int n = !c->access.authenticated ? snprintf(who, sizeof(who), "ip:%s", c->client_ip)
            : p->key_id[0]           ? snprintf(who, sizeof(who), "k:%s", p->key_id)
                                     : snprintf(who, sizeof(who), "u:%s", p->consumer);
    if (n < 0 || (size_t)n >= sizeof(who)) n = (int)strlen(who);
    const char *route = c->route->path;
    return eg_idem_scope_key(hasher, who, (size_t)n, route, strlen(route), c->req.method,
                             c->req.method_len, key, klen, out->key);
}

/* ------------------------------------------------------------ replay */

/* The stored response again, with this request's id, Date and limits. */
static void replay(eg_req_t *c, const unsigned char *rec, size_t len)
{
    eg_http_header_t hdrs[128];
    eg_idem_record_t r;
    if (eg_idem_record_decode(rec, len, hdrs, sizeof(hdrs) / sizeof(hdrs[0]), &r) != EG_OK) {
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
    eg_req_drop_body(c, x->framed); /* answered here: the connection goes on */
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
        eg_req_send_simple(c, "idempotency_key_mismatch", NULL, "idempotency key used for another request");
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
                     strcmp(eg_idem_store_backend_name(x->store), "redis") == 0 ? EG_MX_STORE_REDIS
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
        if (x->name_len != 15 || strncasecmp(x->name, "idempotency-key", 15) != 0) continue;
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
    ctx_t *x = calloc(1, sizeof(*x));
    if (!x) return refuse(c, "internal_error", NULL, "out of memory");
    x->c = c;
    x->w = c->w;
    x->store = store;
    x->ttl_ms = r->idem_ttl_ms;
    x->framed = blen;
    if (entry_of(c, key, klen, body, blen, &x->req) != EG_OK) {
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

static void on_response_bytes(eg_req_t *c, const char *data, size_t n)
{
    ctx_t *x = c->idem;
    if (!x || x->over) return;
    if (x->caplen + n > IDEM_MAX_RESPONSE) {
        x->over = 1;
        return;
    }
    if (x->caplen + n > x->capcap) {
        size_t want = x->capcap ? x->capcap * 2 : 4096;
        while (want < x->caplen + n)
            want *= 2;
        char *p = realloc(x->cap, want);
        if (!p) {
            x->over = 1;
            return;
        }
        x->cap = p;
        x->capcap = want;
    }
    memcpy(x->cap + x->caplen, data, n);
    x->caplen += n;
}

/* Hop-by-hop and per-response fields are not replayed: the replay frames
 * its body and has its own request id, date and rate-limit state. */
static int kept(const eg_http_header_t *h, const eg_http_header_t *conn, const char *rid)
{
    static const char *const drop[] = {"connection", "keep-alive",      "transfer-encoding", "te",
                                       "trailer",    "upgrade",         "content-length",    "date",
                                       "ratelimit",  "ratelimit-policy"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        if (h->name_len == strlen(drop[i]) && strncasecmp(h->name, drop[i], h->name_len) == 0)
            return 0;
    if (h->name_len >= 6 && strncasecmp(h->name, "proxy-", 6) == 0) return 0;
    if (h->name_len >= 12 && strncasecmp(h->name, "x-ratelimit-", 12) == 0) return 0;
    if (h->name_len == strlen(rid) && strncasecmp(h->name, rid, h->name_len) == 0) return 0;
    if (conn) {
        char name[256];
        if (h->name_len >= sizeof(name)) return 1;
        memcpy(name, h->name, h->name_len);
        name[h->name_len] = '\0';
        if (eg_http1_has_token(conn->value, conn->value_len, name)) return 0;
    }
    return 1;
}

/* The captured response as a record: 1 when stored, 0 when it is not to
 * be (incomplete, not final, too large) and the key is released. */
static int store_response(eg_req_t *c, ctx_t *x)
{
    if (x->over || !x->caplen || c->cut) return 0;
    const eg_config_t *cfg = c->gw ? c->gw->cfg : NULL;
    if (!cfg) return 0;
    size_t hcap = cfg->limits.max_headers ? cfg->limits.max_headers : 100;
    if (hcap > EG_IDEM_RECORD_MAX_HEADERS) hcap = EG_IDEM_RECORD_MAX_HEADERS;
    eg_http_header_t *hdrs = malloc(hcap * sizeof(*hdrs)); /* the parser fills what it uses */
    eg_http_header_t *keep = malloc(hcap * sizeof(*keep));
    unsigned char *rec = NULL;
    int stored = 0;
    if (!hdrs || !keep) goto out;
    eg_http1_limits_t lim = {x->caplen, hcap, 0};
    eg_http1_msg_t m;
    size_t scanned = 0;
    int head = eg_http1_parse_response(x->cap, x->caplen, &lim, hdrs, hcap, &scanned,
                                       c->method_bit == EG_M_HEAD, &m);
    if (head <= 0) goto out;
    if (m.status >= 500 || m.status == 408 || m.status == 429 || m.status < 200) goto out;
    char *body = x->cap + head;
    size_t blen = x->caplen - (size_t)head;
    if (m.framing == EG_FRAMING_LENGTH) {
        if (blen < m.content_length) goto out;
        blen = (size_t)m.content_length;
    } else if (m.framing == EG_FRAMING_CHUNKED) {
        eg_chunked_t ck;
        memset(&ck, 0, sizeof(ck));
        size_t rest = 0;
        if (eg_chunked_decode(&ck, body, &blen, 8192, &rest) != EG_OK) goto out;
    } else if (m.framing == EG_FRAMING_NONE) {
        blen = 0;
    }
    size_t nk = 0;
    for (size_t i = 0; i < m.nheaders; i++)
        if (kept(&m.headers[i], m.connection, cfg->request_id_header)) keep[nk++] = m.headers[i];
    eg_idem_record_t r = {m.status, keep, nk, (const unsigned char *)body, blen};
    size_t need = eg_idem_record_size(&r), len = 0;
    if (!need || !(rec = malloc(need))) goto out;
    if (eg_idem_record_encode(&r, rec, need, &len) != EG_OK) goto out;
    eg_idem_io_t io = io_of(x->w, x->store, cfg);
    stored = eg_idem_complete(x->store, &io, &x->req, rec, len, x->ttl_ms) == EG_OK;
    if (stored) eg_metrics_idempotency(c->gw->metrics, c->w->id, c->route, EG_MX_IDEM_STORED);
out:
    free(rec);
    free(keep);
    free(hdrs);
    return stored;
}

/* The response is whole (store it, if final) or there is none (release). */
static void on_done(eg_req_t *c)
{
    ctx_t *x = c->idem;
    if (!x || x->waiting) return; /* waiting: the begin's callback has it */
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
                                         .worker_exit = worker_exit};

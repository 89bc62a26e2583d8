/* meter_api.c - the metering API stage: POST metering.path answered by the
 * gateway itself (docs/metering.md).
 *
 * It sits last, after access, validate, traffic and idempotency, so the
 * route that serves the path decides who may call it (keys or JWTs), its
 * rate limits and quotas count the call, and an Idempotency-Key replays the
 * answer; it binds only to routes that can serve the path, and answers only
 * for exactly that path (other paths of a prefix route go upstream).
 *
 * A call: the scope (metering.scope, default meter:write: 403
 * insufficient_scope), the body read whole (metering.max_body), the batch
 * parsed and checked in the library (lib/meter.c: one verdict per event),
 * each user_id looked up in the keyring (422 user_not_found), then the
 * acceptable events recorded in one atomic step per batch
 * (metering/meter_store.h: the id claimed and the totals added together;
 * an id claimed before is 409 duplicate_event), off the loop. The answer:
 *   every event recorded          201, {"data": [{type, id}...], "meta": {accepted, rejected}}
 *   some recorded, some rejected  202, meta counts and one error per rejected event
 *   none recorded                 409 duplicate_event when every rejection is a duplicate,
 *                                 else 422 (the single code, or validation_error when mixed)
 * In the jsonapi dialect the errors are JSON:API error objects, each with
 * its own status, code, title and source.pointer ("/data/3/attributes/
 * quantity"), rendered here (a dialect error carries one code); in another
 * dialect they are that dialect's field errors, rendered by respond.c.
 */
#include "stage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "access.h"
#include "errgate/meter.h"
#include "jsonw.h"
#include "keyring.h"
#include "meter_store.h"
#include "pg_sink.h"
#include "params.h"
#include "redis_link.h"
#include "strbuild.h"

/* One call's state, from the store's start to its callback (which owns it
 * while the request may go away). */
typedef struct {
    eg_req_t *c;
    eg_meter_batch_t b;
    eg_meter_item_t *items; /* the events that passed every check so far */
    size_t *at;             /* items[k] is event at[k] */
    size_t nitems;
    char *subj; /* the subjects of the items, one after another */
    unsigned char *fresh;
    size_t blen;
    eg_pg_sink_t *sink; /* metering.sink, NULL = none: read while the request is there */
} call_t;

static void call_free(call_t *x)
{
    if (!x) return;
    eg_meter_batch_free(&x->b);
    free(x->items);
    free(x->at);
    free(x->subj);
    free(x->fresh);
    free(x);
}

static const eg_dialect_t *dialect_of(const eg_req_t *c)
{
    return c->dialect ? c->dialect : c->gw->cfg->dialect;
}

static int is_jsonapi(const eg_req_t *c)
{
    return strcmp(eg_dialect_name(dialect_of(c)), "jsonapi") == 0;
}

/* The head of an answer this stage renders, then body[0..blen); sent. */
static void send_doc(eg_req_t *c, int status, const char *code, const char *body, size_t blen)
{
    eg_worker_t *w = eg_req_clock(c);
    const char *cors = c->cors_hdrs ? c->cors_hdrs : "";
    size_t cap = blen + 1024 + strlen(c->rl_hdrs) + strlen(cors);
    char *buf = malloc(cap);
    eg_respond_info_t info = {.status = status};
    snprintf(info.code, sizeof(info.code), "%s", code ? code : "");
    size_t len = 0;
    if (buf) {
        int k =
            snprintf(buf, cap,
                     "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: application/vnd.api+json\r\n"
                     "Content-Length: %zu\r\n%s: %s\r\n%s%s%s%s%sCache-Control: no-store\r\n"
                     "Connection: %s\r\n\r\n",
                     status, eg_reason_phrase(status), w->date, blen, c->gw->cfg->request_id_header,
                     c->reqid, code ? "X-Error-Code: " : "", code ? code : "", code ? "\r\n" : "",
                     c->rl_hdrs, cors, c->keep_alive ? "keep-alive" : "close");
        /* (the rate-limit and CORS lines end in CRLF each) */
        if (k > 0 && (size_t)k + blen <= cap) {
            memcpy(buf + k, body, blen);
            len = (size_t)k + blen;
        }
    }
    eg_req_answer(c, buf, len, &info, code ? "metering: events rejected" : NULL);
    free(buf);
}

/* The dialect's error (field errors, details) rendered into a buffer as
 * large as it needs: a batch may reject 1000 events. */
static void send_dialect(eg_req_t *c, eg_error_t *e)
{
    const eg_config_t *cfg = c->gw->cfg;
    const char *cors = c->cors_hdrs ? c->cors_hdrs : "";
    size_t xl = strlen(c->rl_hdrs) + strlen(cors) + 1;
    char *extra = malloc(xl);
    size_t cap = 16384 + 600 * e->nfields, n = 0;
    char *buf = NULL;
    eg_respond_info_t info = {0};
    if (extra) snprintf(extra, xl, "%s%s", c->rl_hdrs, cors);
    for (int tries = 0; extra && tries < 4 && n == 0; tries++, cap *= 2) {
        free(buf);
        if (!(buf = malloc(cap))) break;
        n = eg_respond_error_info(e, dialect_of(c), cfg->catalog, eg_req_clock(c)->date, extra,
                                  c->keep_alive, 0, buf, cap, &info);
    }
    if (n == 0) info.status = 500;
    eg_req_answer(c, buf, n, &info, "metering: events rejected");
    free(buf);
    free(extra);
    eg_error_free(e);
}

static int status_of(const char *code)
{
    return strcmp(code, "duplicate_event") == 0 ? 409 : 422;
}

/* 201: {"data": [{"type": "usage_events", "id": ...}...], "meta": {...}},
 * written straight into a buffer (a 1000-event batch built as a jansson
 * tree cost more than the parse of its request). */
#define JW_LIT(w, lit) eg_jsonw_put((w), (lit), sizeof(lit) - 1)

static void send_created(eg_req_t *c, const eg_meter_batch_t *b)
{
    size_t cap = 256 + strlen(c->reqid);
    for (size_t i = 0; i < b->n; i++)
        cap += 2 * strlen(b->ev[i].id) + 48;
    for (int tries = 0; tries < 2; tries++) {
        char *buf = malloc(cap);
        if (!buf) break;
        eg_jsonw_t w = {buf, cap, 0};
        static const char item[] = "{\"type\":\"usage_events\",\"id\":";
        JW_LIT(&w, "{\"data\":[");
        for (size_t i = 0; i < b->n; i++) {
            if (i) eg_jsonw_ch(&w, ',');
            eg_jsonw_put(&w, item, sizeof(item) - 1);
            eg_jsonw_cstr(&w, b->ev[i].id);
            eg_jsonw_ch(&w, '}');
        }
        char meta[96];
        int k = snprintf(meta, sizeof(meta), "],\"meta\":{\"accepted\":%zu,\"rejected\":0,", b->n);
        eg_jsonw_put(&w, meta, (size_t)k);
        JW_LIT(&w, "\"request_id\":");
        eg_jsonw_cstr(&w, c->reqid);
        JW_LIT(&w, "}}");
        if (w.pos < cap) {
            send_doc(c, 201, NULL, buf, w.pos);
            free(buf);
            return;
        }
        free(buf);
        cap = w.pos + 1;
    }
    eg_req_send_simple(c, "internal_error", NULL, "metering: out of memory");
}

/* The answer once every event has its verdict. */
static void answer(eg_req_t *c, call_t *x)
{
    const eg_config_t *cfg = c->gw->cfg;
    eg_meter_batch_t *b = &x->b;
    size_t rejected = b->rejected, accepted = b->n - rejected, dups = 0;
    const char *one = NULL; /* the code of the first rejection */
    int mixed = 0;          /* and another code too */
    for (size_t i = 0; i < b->n; i++) {
        const char *k = b->ev[i].code;
        if (!k) continue;
        dups += strcmp(k, "duplicate_event") == 0;
        if (!one)
            one = k;
        else if (strcmp(one, k) != 0)
            mixed = 1;
    }
    eg_req_drop_body(c, x->blen);
    /* none rejected 201; some 202; all of them duplicates 409, else 422 */
    int status = !rejected ? 201 : accepted ? 202 : dups == rejected ? 409 : 422;
    const char *code = !rejected ? NULL : mixed ? "validation_error" : one;
    if (rejected && !is_jsonapi(c)) {
        eg_error_t *e = eg_req_error(c, code);
        if (!e) {
            eg_req_send_error(c, NULL, NULL, NULL);
            return;
        }
        eg_error_set_status(e, status);
        if (accepted)
            eg_error_setf(e, EG_S_MESSAGE, "%zu of %zu events were recorded; %zu were rejected.",
                          accepted, b->n, rejected);
        else
            eg_error_setf(e, EG_S_MESSAGE, "None of the %zu events was recorded.", b->n);
        eg_error_set_detail_int(e, "accepted", (long long)accepted);
        eg_error_set_detail_int(e, "rejected", (long long)rejected);
        for (size_t i = 0; i < b->n; i++) {
            const eg_meter_event_t *ev = &b->ev[i];
            if (!ev->code) continue;
            eg_field_error_t *f = eg_error_add_field(e);
            char name[sizeof(ev->pointer)];
            snprintf(name, sizeof(name), "%s", ev->pointer + 1);
            for (char *p = name; *p; p++)
                if (*p == '/') *p = '.';
            if (!f || eg_field_set(e, f, EG_F_FIELD, name) ||
                eg_field_set(e, f, EG_F_POINTER, ev->pointer) ||
                eg_field_set(e, f, EG_F_MESSAGE, ev->message) ||
                eg_field_set(e, f, EG_F_CONSTRAINT, ev->code))
                break;
            if (ev->id) json_object_set_new(eg_field_extra(f), "event_id", json_string(ev->id));
        }
        send_dialect(c, e);
        return;
    }
    if (!rejected) { /* the common answer, written without a tree */
        send_created(c, b);
        return;
    }
    json_t *doc = json_object(), *meta = json_object();
    json_object_set_new(meta, "accepted", json_integer((json_int_t)accepted));
    json_object_set_new(meta, "rejected", json_integer((json_int_t)rejected));
    json_object_set_new(meta, "request_id", json_string(c->reqid));
    json_t *errs = json_array();
    for (size_t i = 0; i < b->n; i++) {
        const eg_meter_event_t *ev = &b->ev[i];
        if (!ev->code) continue;
        const eg_catalog_entry_t *ent = eg_catalog_find(cfg->catalog, ev->code);
        char st[8];
        snprintf(st, sizeof(st), "%d", status_of(ev->code));
        json_t *o = json_object(), *m = json_object();
        json_object_set_new(o, "status", json_string(st));
        json_object_set_new(o, "code", json_string(ev->code));
        if (ent && ent->title) json_object_set_new(o, "title", json_string(ent->title));
        json_object_set_new(o, "detail", json_string(ev->message));
        json_object_set_new(o, "source", json_pack("{s:s}", "pointer", ev->pointer));
        if (ev->id) json_object_set_new(m, "event_id", json_string(ev->id));
        json_object_set_new(o, "meta", m);
        json_array_append_new(errs, o);
    }
    json_object_set_new(doc, "errors", errs);
    json_object_set_new(doc, "meta", meta);
    char *body = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(doc);
    if (!body) {
        eg_req_send_simple(c, "internal_error", NULL, "metering: out of memory");
        return;
    }
    send_doc(c, status, code, body, strlen(body));
    free(body);
}

static eg_stage_rc_t unavailable(eg_req_t *c, const char *why)
{
    eg_req_send_simple(c, "service_unavailable", "Usage events cannot be recorded now; retry.",
                       why);
    return EG_STAGE_ANSWERED;
}

/* The events this batch recorded now (committed: SQLite's transaction or
 * Redis's script is done) go to the PostgreSQL sink, each once: a
 * duplicate was not recorded, so it is not copied either. */
static void to_sink(call_t *x, eg_pg_sink_t *sink)
{
    for (size_t k = 0; sink && k < x->nitems; k++) {
        if (!x->fresh[k]) continue;
        const eg_meter_item_t *it = &x->items[k];
        eg_usage_event_t ev = {it->subject, it->event_type, "", 0, it->quantity, it->ts, 0, 0};
        eg_pg_sink_push(sink, &ev, it->id); /* a full queue counts it as dropped */
    }
}

static void recorded(void *arg, int rc, const char *why)
{
    call_t *x = arg;
    eg_req_t *c = x->c;
    if (rc == EG_OK) to_sink(x, x->sink); /* even if the client left */
    if (!eg_req_wait_over(c)) { /* the client left: what was recorded stays recorded */
        call_free(x);
        return;
    }
    eg_req_wake(c);
    if (rc != EG_OK) {
        eg_req_drop_body(c, x->blen);
        unavailable(c, why);
        call_free(x);
        return;
    }
    for (size_t k = 0; k < x->nitems; k++)
        if (!x->fresh[k])
            eg_meter_reject(&x->b, x->at[k], "duplicate_event", "/id",
                            "An event with this id was already recorded.");
    answer(c, x);
    call_free(x);
}

/* 400 invalid_json, or validation_error (the dialect's status): the document itself. */
static eg_stage_rc_t refuse_doc(eg_req_t *c, const eg_meter_doc_error_t *d, size_t blen)
{
    eg_req_drop_body(c, blen);
    eg_error_t *e = eg_req_error(c, d->code);
    if (e) {
        eg_error_set(e, EG_S_MESSAGE, d->message);
        if (strcmp(d->code, "invalid_json") == 0) {
            eg_error_set_detail_int(e, "position", d->position);
            eg_error_set_detail_int(e, "line", d->line);
            eg_error_set_detail_int(e, "column", d->column);
        } else {
            /* the dialect's validation status, as the validation stage
             * answers (422 in jsonapi, 400 in typed and the flat ones) */
            eg_error_set_status(
                e, eg_dialect_code_status(dialect_of(c), c->gw->cfg->catalog, "validation_error"));
            eg_field_error_t *f = eg_error_add_field(e);
            if (f) {
                eg_field_set(e, f, EG_F_POINTER, d->pointer);
                eg_field_set(e, f, EG_F_FIELD, d->pointer[0] ? d->pointer + 1 : "body");
                eg_field_set(e, f, EG_F_MESSAGE, d->message);
            }
            eg_error_set_detail_int(e, "max_events", (long long)c->gw->cfg->meter_rules.max_events);
        }
    }
    eg_req_send_error(c, e, NULL, "metering: the batch document was refused");
    return EG_STAGE_ANSWERED;
}

static int content_type_ok(const eg_req_t *c)
{
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const eg_http_header_t *h = &c->req.headers[i];
        if (h->name_len != 12 || strncasecmp(h->name, "content-type", 12) != 0) continue;
        const char *t;
        size_t tl;
        eg_media_type_of(h->value, h->value_len, &t, &tl);
        return eg_media_type_is_json(t, tl);
    }
    return 0;
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    size_t pl = strlen(cfg->meter_path);
    if (c->path_len != pl || memcmp(c->path, cfg->meter_path, pl) != 0) return EG_STAGE_CONTINUE;
    if (c->method_bit != EG_M_POST) {
        eg_error_t *e = eg_req_error(c, "method_not_allowed");
        eg_req_send_error(c, e, "Allow: POST\r\n", "metering: not a POST");
        return EG_STAGE_ANSWERED;
    }
    if (!c->access.authenticated || !eg_access_has_scope(c->access.p.scopes, cfg->meter_scope)) {
        eg_error_t *e = eg_req_error(c, "insufficient_scope");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE, "Posting usage events needs the scope %s.",
                          cfg->meter_scope);
            eg_error_set_detail_str(e, "required_permission", cfg->meter_scope,
                                    strlen(cfg->meter_scope));
            json_t *cur = json_array();
            const char *p = c->access.authenticated ? c->access.p.scopes : "";
            while (*p) {
                const char *sp = strchr(p, ' ');
                size_t n = sp ? (size_t)(sp - p) : strlen(p);
                if (n) json_array_append_new(cur, json_stringn(p, n));
                p += n + (sp != NULL);
            }
            eg_error_set_detail(e, "current_permissions", cur);
        }
        eg_req_send_error(c, e, NULL, "metering: the caller lacks the scope");
        return EG_STAGE_ANSWERED;
    }
    eg_meter_store_t *store = eg_server_meter_store(c->w->srv);
    if (!store)
        return unavailable(c, "no metering store (metering was configured after start: restart)");
    if (!content_type_ok(c)) {
        eg_error_t *e = eg_req_error(c, "unsupported_media_type");
        if (e)
            eg_error_set(e, EG_S_MESSAGE,
                         "Send the batch as application/vnd.api+json (or application/json).");
        eg_req_send_error(c, e, NULL, "metering: not a JSON body");
        return EG_STAGE_ANSWERED;
    }
    const char *body = NULL;
    size_t blen = 0;
    int rc = eg_req_read_body(c, cfg->meter_max_body, &body, &blen);
    if (rc == 0) return EG_STAGE_SUSPENDED; /* on_request runs again with more of the body */
    if (rc == EG_ETOOBIG) {
        eg_error_t *e = eg_req_error(c, "payload_too_large");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE, "A batch may have at most %llu bytes.",
                          (unsigned long long)cfg->meter_max_body);
            eg_error_set_detail_int(e, "max_body", (long long)cfg->meter_max_body);
        }
        eg_req_send_error(c, e, NULL, "metering: body over max_body");
        return EG_STAGE_ANSWERED;
    }
    if (rc == EG_EPARSE) {
        eg_req_send_simple(c, "bad_request", "Malformed chunked body.", "malformed chunked body");
        return EG_STAGE_ANSWERED;
    }
    if (rc < 0) return EG_STAGE_ANSWERED; /* the client is gone */
    int64_t now = (int64_t)time(NULL) + eg_server_clock_offset(c->w->srv);
    call_t *x = calloc(1, sizeof(*x));
    if (!x) return unavailable(c, "metering: out of memory");
    x->c = c;
    x->blen = blen;
    eg_meter_doc_error_t derr;
    rc = eg_meter_parse(&cfg->meter_rules, body, blen, now, &x->b, &derr);
    if (rc == EG_EPARSE) {
        call_free(x);
        return refuse_doc(c, &derr, blen);
    }
    size_t n = x->b.n;
    if (rc != EG_OK || !(x->items = calloc(n, sizeof(*x->items))) ||
        !(x->at = calloc(n, sizeof(*x->at))) || !(x->fresh = calloc(n, 1))) {
        call_free(x);
        eg_req_drop_body(c, blen);
        return unavailable(c, "metering: out of memory");
    }
    /* who each event is for: a key, or a key's owner; a run of events for
     * one user (the usual batch) is looked up once */
    eg_keyring_t *kr = cfg->meter_check_users ? eg_server_keyring(c->w->srv) : NULL;
    size_t room = 0, used = 0;
    for (size_t i = 0; i < n; i++)
        if (!x->b.ev[i].code) room += strlen(x->b.ev[i].user_id) + 3;
    if (room && !(x->subj = malloc(room))) {
        call_free(x);
        eg_req_drop_body(c, blen);
        return unavailable(c, "metering: out of memory");
    }
    const char *last_user = NULL, *last_subj = NULL; /* last_subj NULL: not found */
    for (size_t i = 0; i < n; i++) {
        eg_meter_event_t *ev = &x->b.ev[i];
        if (ev->code) continue;
        if (!last_user || strcmp(last_user, ev->user_id) != 0) {
            char *subj = x->subj + used;
            size_t cap = room - used;
            int found = 1;
            if (!cfg->meter_check_users)
                snprintf(subj, cap, "u:%s", ev->user_id);
            else if ((found = kr ? eg_keyring_user(kr, ev->user_id, subj, cap) : EG_EIO) < 0) {
                call_free(x);
                eg_req_drop_body(c, blen);
                return unavailable(c, "metering: the key store is unavailable");
            }
            last_user = ev->user_id;
            last_subj = found ? subj : NULL;
            if (found) used += strlen(subj) + 1;
        }
        if (!last_subj) {
            char m[200];
            snprintf(m, sizeof(m), "No key or consumer named '%.*s'.",
                     (int)eg_meter_utf8_cut(ev->user_id, strlen(ev->user_id), 64), ev->user_id);
            eg_meter_reject(&x->b, i, "user_not_found", "/attributes/user_id", m);
            continue;
        }
        x->items[x->nitems] = (eg_meter_item_t){ev->id,       last_subj, ev->event_type,
                                                ev->quantity, ev->ts,    ev->metadata};
        x->at[x->nitems++] = i;
    }
    if (!x->nitems) { /* nothing to record */
        answer(c, x);
        call_free(x);
        return EG_STAGE_ANSWERED;
    }
    eg_redis_t *redis = NULL;
    if (strcmp(eg_meter_store_backend(store), "redis") == 0)
        redis = eg_redis_link_get(c->w->redis_link, &c->w->loop, cfg);
    x->sink = eg_server_pg_sink(c->w->srv);
    eg_req_wait(c, x, 0, NULL); /* the store answers within its own bound (busy timeout, Redis) */
    eg_meter_store_record(store, &c->w->loop, redis, x->items, x->nitems, now, x->fresh, recorded,
                          x);
    return EG_STAGE_SUSPENDED;
}

static int applies(const eg_config_t *cfg, const eg_route_cfg_t *route)
{
    if (!cfg->meter_path || !route || (route->methods && !(route->methods & EG_M_POST))) return 0;
    size_t tl = strlen(route->path);
    if (route->prefix && tl > 1 && route->path[tl - 1] == '/') tl--; /* "/v1/" covers "/v1/meter" */
    return eg_path_template_match(route->path, tl, cfg->meter_path, strlen(cfg->meter_path),
                                  route->prefix, NULL, 0, NULL);
}

const eg_stage_t eg_stage_meter_api = {
    .name = "meter_api", .on_request = on_request, .applies = applies};

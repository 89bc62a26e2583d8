/* route.c - the route stage: what the request asks for. A declared body
 * over max_body_size is 413; the path is made canonical (lib/path.c: the
 * router, the access rules and the upstream all see the same one) or
 * refused with 400; then the router picks the route (404, 405 with Allow),
 * the route's dialect applies, and protocol upgrades are 501. */
#include "stage.h"

#include <stdio.h>
#include <strings.h>

#include "errgate/path.h"
#include "errgate/router.h"
#include "ptrie.h"

/* The path of the target ("/" for "http://a" and "http://a?q"). */
static const char *path_of(const eg_req_t *c, size_t *n)
{
    size_t len;
    const char *t = eg_req_origin_form(c, &len);
    const char *q = memchr(t, '?', len);
    *n = q ? (size_t)(q - t) : len;
    if (*n == 0) {
        *n = 1;
        return "/";
    }
    return t;
}

/* 404 for an unknown route: from the dialect's template when there is one
 * and no rate-limit headers ride along, else through the error model. */
static void send_not_found(eg_req_t *c, const char *path, size_t plen)
{
    const eg_dialect_t *d = c->dialect ? c->dialect : c->gw->cfg->dialect;
    const eg_notfound_t *t = NULL;
    for (size_t i = 0; i < c->gw->nnotfound && !t; i++)
        if (c->gw->notfound_dialect[i] == d) t = c->gw->notfound[i];
    eg_worker_t *w = eg_req_clock(c);
    if (!t || c->rl_hdrs[0] || (c->cors_hdrs && c->cors_hdrs[0])) {
        eg_req_send_error(c, eg_notfound_error(c->gw->cfg->catalog, c->reqid, w->ts, path, plen), NULL, NULL);
        return;
    }
    if (!c->body_done) c->keep_alive = 0; /* as send_error: the unread body would be taken for a request */
    char buf[4096];
    eg_respond_info_t info;
    size_t n = eg_notfound_respond(t, w->date, c->reqid, w->ts, path, plen, c->keep_alive,
                                   c->method_bit == EG_M_HEAD, buf, sizeof(buf), &info);
    if (n == 0) {
        eg_req_send_error(c, eg_notfound_error(c->gw->cfg->catalog, c->reqid, w->ts, path, plen), NULL, NULL);
        return;
    }
    /* the message the generic path logs, made only when it is logged */
    char msg[EG_NOT_FOUND_MESSAGE_MAX];
    msg[0] = '\0';
    if (eg_log_enabled(eg_server_error_log(c->w->srv))) eg_notfound_message(path, plen, msg);
    eg_req_answer(c, buf, n, &info, msg);
}

/* Makes c->path the canonical path: the target's own bytes when they are
 * already normal (nearly always: no copy), else normalized into c->npath.
 * 0, or -1 when the request was answered. The cors stage, which runs
 * first, calls it too: it routes a preflight by the same path. */
int eg_req_canonical_path(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    size_t plen;
    const char *path = path_of(c, &plen);
    if (eg_path_is_normal(path, plen)) {
        c->path = path;
        c->path_len = plen;
        return 0;
    }
    if (plen >= c->npath_cap) { /* a reload raised max_uri above this connection's buffer */
        eg_req_send_simple(c, "uri_too_long", "The request path is too long.", "path over the connection's buffer");
        return -1;
    }
    eg_path_opts_t po = {cfg->path_normalize, cfg->path_merge_slashes, cfg->path_reject_encoded_slash};
    const char *why = NULL;
    if (eg_path_normalize(path, plen, &po, c->npath, c->npath_cap, &c->path_len, &why) != EG_OK) {
        c->keep_alive = 0;
        eg_error_t *e = eg_req_error(c, "bad_request");
        if (e) eg_error_setf(e, EG_S_MESSAGE, "The request path cannot be accepted: %s.", why ? why : "invalid");
        eg_req_send_error(c, e, NULL, why ? why : "invalid path");
        return -1;
    }
    c->path = c->npath;
    return 0;
}

/* 1 when every protocol the request's Upgrade headers offer is h2c (what
 * `curl --http2` sends on http://): RFC 9113 3.2 lets a server that does not
 * speak h2c ignore it, so the request is served over HTTP/1.1 (Upgrade and
 * HTTP2-Settings are hop-by-hop and never forwarded). Any other upgrade
 * (WebSocket) is refused in the dialect. */
static int only_h2c(const eg_http1_msg_t *m)
{
    int seen = 0;
    for (size_t i = 0; i < m->nheaders; i++) {
        const eg_http_header_t *h = &m->headers[i];
        if (!eg_http1_name_is(h, "upgrade")) continue;
        size_t pos = 0, len;
        const char *t;
        while (eg_http1_next_token(h->value, h->value_len, &pos, &t, &len)) {
            if (len != 3 || strncasecmp(t, "h2c", 3) != 0) return 0;
            seen = 1;
        }
    }
    return seen;
}

static eg_stage_rc_t on_request(eg_req_t *c)
{
    const eg_config_t *cfg = c->gw->cfg;
    if (c->req.framing == EG_FRAMING_LENGTH && c->req.content_length > cfg->limits.max_body_size) {
        eg_error_t *e = eg_req_error(c, "payload_too_large");
        if (e) {
            eg_error_set_detail(e, "max_body_size", json_integer((json_int_t)cfg->limits.max_body_size));
            eg_error_set_detail(e, "content_length", json_integer((json_int_t)c->req.content_length));
        }
        eg_req_send_error(c, e, NULL, "Content-Length over max_body_size");
        return EG_STAGE_ANSWERED;
    }
    if (eg_req_canonical_path(c) != 0) return EG_STAGE_ANSWERED;
    size_t id = 0;
    unsigned allow = 0;
    eg_route_result_t rr = eg_router_match(c->gw->router, c->path, c->path_len, c->method_bit, &id, &allow);
    if (rr == EG_ROUTE_NOT_FOUND) {
        send_not_found(c, c->path, c->path_len);
        return EG_STAGE_ANSWERED;
    }
    if (rr == EG_ROUTE_OK && (cfg->routes[id].oa_index || cfg->routes[id].oa_catchall)) {
        /* a route with an OpenAPI document: the operation by path and
         * method; what the document does not declare is 404/405 (unknown:
         * reject) or stays with the route (pass) */
        const eg_route_cfg_t *d = &cfg->routes[id];
        size_t op = 0;
        unsigned oallow = 0;
        eg_route_result_t orr =
            d->oa_index ? eg_ptrie_match(d->oa_index, c->path, c->path_len, c->method_bit, &op, &oallow)
                        : EG_ROUTE_NOT_FOUND;
        if (orr == EG_ROUTE_OK) {
            id = op;
        } else if (d->oa_catchall && orr == EG_ROUTE_METHOD_NOT_ALLOWED) {
            rr = EG_ROUTE_METHOD_NOT_ALLOWED;
            allow = oallow;
        } else if (d->oa_catchall) {
            send_not_found(c, c->path, c->path_len);
            return EG_STAGE_ANSWERED;
        }
    }
    if (rr == EG_ROUTE_METHOD_NOT_ALLOWED) {
        char allowed[128], extra[160];
        eg_methods_format(allow, allowed, sizeof(allowed));
        snprintf(extra, sizeof(extra), "Allow: %s\r\n", allowed);
        eg_error_t *e = eg_req_error(c, "method_not_allowed");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE, "%.*s is not allowed here; use %s", (int)c->req.method_len,
                          c->req.method, allowed);
            eg_error_set_detail(e, "method", json_stringn_nocheck(c->req.method, c->req.method_len));
            eg_error_set_detail(e, "allowed", json_string(allowed));
        }
        eg_req_send_error(c, e, extra, NULL);
        return EG_STAGE_ANSWERED;
    }
    c->route = &cfg->routes[id];
    if (c->route->dialect && !(cfg->negotiate && c->dialect != cfg->dialect)) c->dialect = c->route->dialect;
    if (c->req.upgrade && !only_h2c(&c->req)) {
        eg_req_send_simple(c, "not_implemented", "Protocol upgrades are not supported.", "upgrade");
        return EG_STAGE_ANSWERED;
    }
    return EG_STAGE_CONTINUE;
}

const eg_stage_t eg_stage_route = {.name = "route", .on_request = on_request};

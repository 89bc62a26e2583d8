/* route.c - the route stage: what the request asks for. A declared body
 * over max_body_size is 413; the path is made canonical (lib/path.c: the
 * router, the access rules and the upstream all see the same one) or
 * refused with 400; then the router picks the route (404, 405 with Allow),
 * the route's dialect applies, and a protocol upgrade is checked against
 * what the route tunnels (docs/upgrades.md): refused in the dialect, or
 * its tokens kept for the upstream (c->upgrade) and the WebSocket
 * handshake's shape checked (RFC 6455 4.1). */
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
 * (WebSocket) is for check_upgrade. */
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

/* A 400 bad_request for an upgrade that cannot be one; extra: header lines. */
static void bad_upgrade(eg_req_t *c, const char *message, const char *extra)
{
    c->keep_alive = 0;
    eg_error_t *e = eg_req_error(c, "bad_request");
    if (e) eg_error_set(e, EG_S_MESSAGE, message);
    eg_req_send_error(c, e, extra, message);
}

/* The route allows protocol t (an Upgrade token; its /version is not compared). */
static int allowed(const eg_route_cfg_t *r, const char *t, size_t len)
{
    const char *slash = memchr(t, '/', len);
    size_t n = slash ? (size_t)(slash - t) : len;
    for (size_t i = 0; i < r->nupgrade_protocols; i++)
        if (strlen(r->upgrade_protocols[i]) == n && strncasecmp(r->upgrade_protocols[i], t, n) == 0) return 1;
    return 0;
}

/* A Sec-WebSocket-Key is 16 bytes in base64: 22 characters and "==". */
static int ws_key_ok(const eg_http_header_t *h)
{
    if (!h || h->value_len != 24 || h->value[22] != '=' || h->value[23] != '=') return 0;
    for (size_t i = 0; i < 22; i++) {
        char ch = h->value[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
              ch == '/'))
            return 0;
    }
    return 1;
}

/* An upgrade on HTTP/1.1 (HTTP/1.0's is ignored, RFC 9110 7.8): the
 * protocols offered that the route tunnels go to the upstream (the others
 * are left out, h2c is ignored as without upgrade:); none is 400
 * upgrade_not_allowed; a WebSocket handshake must have RFC 6455's shape.
 * Returns 0 to go on, -1 when answered. */
static int check_upgrade(eg_req_t *c)
{
    const eg_route_cfg_t *r = c->route;
    char first[65] = "", allowed_list[512] = "";
    size_t at = 0;
    int websocket = 0, any = 0;
    for (size_t i = 0; i < c->req.nheaders; i++) {
        const eg_http_header_t *h = &c->req.headers[i];
        if (!eg_http1_name_is(h, "upgrade")) continue;
        size_t pos = 0, len;
        const char *t;
        while (eg_http1_next_token(h->value, h->value_len, &pos, &t, &len)) {
            if (len == 3 && strncasecmp(t, "h2c", 3) == 0) continue;
            if (!first[0]) snprintf(first, sizeof(first), "%.*s", (int)(len < 64 ? len : 64), t);
            if (!allowed(r, t, len) || at + len + 2 >= sizeof(c->upgrade)) continue;
            if (at) {
                memcpy(c->upgrade + at, ", ", 2);
                at += 2;
            }
            memcpy(c->upgrade + at, t, len);
            at += len;
            any = 1;
            websocket |= len == 9 && strncasecmp(t, "websocket", 9) == 0;
        }
    }
    c->upgrade[at] = '\0';
    if (!first[0]) {
        bad_upgrade(c, "The Upgrade header names no protocol.", NULL);
        return -1;
    }
    if (!any) {
        size_t o = 0;
        for (size_t i = 0; i < r->nupgrade_protocols && o < sizeof(allowed_list) - 70; i++)
            o += (size_t)snprintf(allowed_list + o, sizeof(allowed_list) - o, "%s%s", i ? ", " : "",
                                  r->upgrade_protocols[i]);
        c->keep_alive = 0;
        eg_error_t *e = eg_req_error(c, "upgrade_not_allowed");
        if (e) {
            eg_error_setf(e, EG_S_MESSAGE, "This route does not accept an upgrade to %s.", first);
            eg_error_set_detail(e, "protocol", json_string(first));
            json_t *list = json_array();
            for (size_t i = 0; list && i < r->nupgrade_protocols; i++)
                json_array_append_new(list, json_string(r->upgrade_protocols[i]));
            if (list) eg_error_set_detail(e, "allowed", list);
        }
        eg_req_send_error(c, e, NULL, allowed_list[0] ? allowed_list : "route has no upgrade:");
        return -1;
    }
    if (c->req.framing != EG_FRAMING_NONE && !(c->req.framing == EG_FRAMING_LENGTH && c->req.content_length == 0)) {
        bad_upgrade(c, "An upgrade request has no body.", NULL);
        return -1;
    }
    if (!websocket) return 0;
    if (c->method_bit != EG_M_GET) {
        bad_upgrade(c, "A WebSocket handshake is a GET request.", NULL);
        return -1;
    }
    if (!ws_key_ok(eg_http1_header(&c->req, "sec-websocket-key"))) {
        bad_upgrade(c, "A WebSocket handshake needs Sec-WebSocket-Key: 16 bytes in base64.", NULL);
        return -1;
    }
    const eg_http_header_t *v = eg_http1_header(&c->req, "sec-websocket-version");
    if (!v || v->value_len != 2 || memcmp(v->value, "13", 2) != 0) {
        bad_upgrade(c, "A WebSocket handshake needs Sec-WebSocket-Version: 13.", "Sec-WebSocket-Version: 13\r\n");
        return -1;
    }
    return 0;
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
    if (c->req.upgrade && c->req.minor_version == 1 && !only_h2c(&c->req) && check_upgrade(c) != 0)
        return EG_STAGE_ANSWERED;
    return EG_STAGE_CONTINUE;
}

const eg_stage_t eg_stage_route = {.name = "route", .on_request = on_request};
